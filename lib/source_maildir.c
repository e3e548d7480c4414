/*
 * source_maildir.c: a local Maildir as the source (the embedded default).
 *
 * Mail is what sits in new/. fetch() returns those files oldest first (by
 * name, which a Maildir writer starts with the delivery time), mark()
 * renames new/X to cur/X:2,S (handled) or cur/X:2, (other), so a handled
 * file never comes back. Writers deliver through tmp/ and rename into
 * new/, so a file in new/ is complete.
 *
 * UIDs are given per connection, in the order files are first seen. A file
 * returned once and not yet marked is not returned again while the caller's
 * `after` is at or past its uid; a file never returned is always returned
 * (across a reconnect the numbering starts again, and a persisted `after`
 * from an earlier connection must not hide new mail).
 *
 * Waiting: an inotify watch on new/ (IN_MOVED_TO | IN_CREATE) is set up at
 * connect() and kept, so a delivery between a fetch() and the next
 * wait_start() is still queued on the fd and wakes the caller at once.
 *
 * Durability of mark(): a rename lost in a crash only means the file is
 * fetched again; the daemon's Message-ID set skips it. No fsync here.
 */
#include "source.h"
#include "hashmap.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct maildir_src {
	int ino_fd;              /* inotify on new/, -1 when disconnected */
	uint32_t next_uid;
	struct hashmap *given;   /* file name -> uid (never 0), returned and not marked */
};

/* A file of new/ considered by one fetch. */
struct md_entry {
	char *name;
	uint32_t uid;
};

static struct maildir_src *md(struct source *s)
{
	if (s->priv == NULL) {
		struct maildir_src *m = xcalloc(1, sizeof(*m));
		m->ino_fd = -1;
		m->next_uid = 1;
		s->priv = m;
	}
	return s->priv;
}

static int md_connect(struct source *s, char **err)
{
	struct maildir_src *m = md(s);
	const char *dir = s->conf->imap.maildir;
	static const char *const subs[] = { "tmp", "new", "cur" };

	if (str_empty(dir))
		return seterr(err, "maildir: [source] maildir is not set");
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		int rc = mkdir_p(p, 0700, err);
		free(p);
		if (rc < 0)
			return -1;
	}
	if (m->given == NULL)
		m->given = hm_new();
	if (m->ino_fd < 0) {
		char *p = xasprintf("%s/new", dir);
		m->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (m->ino_fd < 0 || inotify_add_watch(m->ino_fd, p, IN_MOVED_TO | IN_CREATE) < 0) {
			seterr(err, "maildir: inotify on %s: %s", p, strerror(errno));
			free(p);
			if (m->ino_fd >= 0)
				close(m->ino_fd);
			m->ino_fd = -1;
			return -1;
		}
		free(p);
	}
	s->uidvalidity = 0;
	s->uidnext = m->next_uid;
	return 0;
}

/* The uid is stored as the value itself: uids start at 1, so NULL
 * (absent) is never a uid. */
static bool given_get(struct maildir_src *m, const char *name, uint32_t *uid)
{
	void *v = hm_get(m->given, name);
	if (v == NULL)
		return false;
	*uid = (uint32_t)(uintptr_t)v;
	return true;
}

static void given_set(struct maildir_src *m, const char *name, uint32_t uid)
{
	hm_put(m->given, name, (void *)(uintptr_t)uid);
}

static void given_del(struct maildir_src *m, const char *name)
{
	hm_del(m->given, name);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct md_entry *)a)->name, ((const struct md_entry *)b)->name);
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct md_entry *)a)->uid, y = ((const struct md_entry *)b)->uid;
	return x < y ? -1 : x > y;
}

/* The names in new/ (no dot files), sorted; uids not yet set. */
static int list_new(const char *dir, struct md_entry **out, size_t *n, char **err)
{
	char *p = xasprintf("%s/new", dir);
	DIR *d = opendir(p);
	if (d == NULL) {
		seterr(err, "maildir: %s: %s", p, strerror(errno));
		free(p);
		return -1;
	}
	free(p);
	struct md_entry *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[len].name = xstrdup(de->d_name);
		v[len++].uid = 0;
	}
	closedir(d);
	if (len > 1)
		qsort(v, len, sizeof(*v), cmp_name);
	*out = v;
	*n = len;
	return 0;
}

/* Read one file into m; 1 if read, 0 if it vanished, -1 on error. */
static int read_one(struct source *s, const struct md_entry *e, struct raw_msg *r, char **err)
{
	char *p = xasprintf("%s/new/%s", s->conf->imap.maildir, e->name);
	struct stat st;
	int rc = 1;
	memset(r, 0, sizeof(*r));
	if (stat(p, &st) < 0) {
		rc = errno == ENOENT ? 0 : seterr(err, "maildir: %s: %s", p, strerror(errno));
		goto out;
	}
	r->uid = e->uid;
	r->size = (size_t)st.st_size;
	r->arrival = st.st_mtime;
	r->key = xstrdup(e->name);
	if (r->size > s->conf->imap.max_message_size) {
		r->oversize = true;
		log_warnx("maildir: %s: %zu bytes, over max_message_size: not read", e->name, r->size);
		goto out;
	}
	struct buf b = BUF_INIT;
	if (file_read(p, 0, &b, err) < 0) {
		buf_free(&b);
		free(r->key);
		r->key = NULL;
		rc = -1;
		if (access(p, F_OK) < 0) {      /* vanished meanwhile: not an error */
			rc = 0;
			if (err != NULL) {
				free(*err);
				*err = NULL;
			}
		}
		goto out;
	}
	r->len = b.len;
	r->data = buf_steal(&b);
out:
	free(p);
	return rc;
}

/* Give uids to unseen files, keep those not already handed out at or
 * below `after`, oldest first. Frees the names it drops. */
static size_t pick(struct maildir_src *m, struct md_entry *v, size_t n, uint32_t after)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t uid;
		if (!given_get(m, v[i].name, &uid)) {
			uid = m->next_uid++;
			given_set(m, v[i].name, uid);
		} else if (uid <= after) {
			free(v[i].name);
			continue;
		}
		v[i].uid = uid;
		v[k++] = v[i];
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_uid);
	return k;
}

static int md_fetch(struct source *s, uint32_t after, size_t max,
		    struct raw_msg **out, size_t *n, char **err)
{
	struct maildir_src *m = md(s);
	struct md_entry *v;
	size_t nv;
	*out = NULL;
	*n = 0;
	if (m->given == NULL)
		return seterr(err, "maildir: not connected");
	if (list_new(s->conf->imap.maildir, &v, &nv, err) < 0)
		return -1;
	nv = pick(m, v, nv, after);
	struct raw_msg *r = xcalloc(nv ? (nv < max ? nv : max) : 1, sizeof(*r));
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < nv; i++) {
		int got = (rc == 0 && k < max) ? read_one(s, &v[i], &r[k], err) : 0;
		if (got < 0)
			rc = -1;
		else if (got > 0)
			k++;
		else if (rc == 0 && k < max)
			given_del(m, v[i].name);   /* vanished */
		free(v[i].name);
	}
	free(v);
	if (rc < 0) {
		raw_msgs_free(r, k);
		return -1;
	}
	s->uidnext = m->next_uid;
	*out = r;
	*n = k;
	return 0;
}

/* new/X -> cur/X:2,<flags>. A file already gone from new/ but present in
 * cur/ counts as done (a repeated mark). */
static int mark_one(struct source *s, const struct raw_msg *r, enum src_mark how, char **err)
{
	const char *dir = s->conf->imap.maildir;
	if (r->key == NULL || strchr(r->key, '/') != NULL)
		return seterr(err, "maildir: mark: not a maildir message");
	size_t base = strcspn(r->key, ":");
	char *from = xasprintf("%s/new/%s", dir, r->key);
	char *to = xasprintf("%s/cur/%.*s:2,%s", dir, (int)base, r->key,
			     how == MARK_HANDLED ? "S" : "");
	int rc = 0;
	if (rename(from, to) < 0) {
		struct stat st;
		if (errno != ENOENT || stat(to, &st) < 0)
			rc = seterr(err, "maildir: mark %s: %s", r->key, strerror(errno));
	}
	if (rc == 0)
		given_del(md(s), r->key);
	free(from);
	free(to);
	return rc;
}

static int md_mark_many(struct source *s, const struct raw_msg *const *v, size_t n,
			enum src_mark how, char **err)
{
	if (md(s)->given == NULL)
		return seterr(err, "maildir: not connected");
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char *e = NULL;
		if (mark_one(s, v[i], how, &e) < 0) {
			log_warnx("%s", e);
			if (rc == 0)
				seterr(err, "%s", e);
			rc = -1;
		}
		free(e);
	}
	return rc;
}

static int md_mark(struct source *s, const struct raw_msg *m, enum src_mark how, char **err)
{
	return md_mark_many(s, &m, 1, how, err);
}

static int md_wait_start(struct source *s, int *fd, char **err)
{
	struct maildir_src *m = md(s);
	if (m->ino_fd < 0)
		return seterr(err, "maildir: not connected");
	*fd = m->ino_fd;
	return 0;
}

/* Drain the inotify queue; any event (or an overflow) may mean new mail. */
static int md_wait_done(struct source *s, bool *maybe_new, char **err)
{
	struct maildir_src *m = md(s);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	*maybe_new = false;
	if (m->ino_fd < 0)
		return seterr(err, "maildir: not connected");
	for (;;) {
		ssize_t r = read(m->ino_fd, buf, sizeof(buf));
		if (r > 0) {
			*maybe_new = true;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != EAGAIN)
			return seterr(err, "maildir: inotify: %s", strerror(errno));
		return 0;
	}
}

static void md_disconnect(struct source *s)
{
	struct maildir_src *m = s->priv;
	if (m == NULL)
		return;
	if (m->ino_fd >= 0)
		close(m->ino_fd);
	m->ino_fd = -1;
	hm_free(m->given);
	m->given = NULL;
	m->next_uid = 1;
}

static void md_destroy(struct source *s)
{
	if (s == NULL)
		return;
	md_disconnect(s);
	free(s->priv);
	free(s);
}

const struct source_ops source_maildir_ops = {
	.name = "maildir",
	.connect = md_connect,
	.fetch = md_fetch,
	.mark = md_mark,
	.mark_many = md_mark_many,
	.wait_start = md_wait_start,
	.wait_done = md_wait_done,
	.disconnect = md_disconnect,
	.destroy = md_destroy,
};
