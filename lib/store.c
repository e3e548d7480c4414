/* store.c: the state store: documents, transactions, checkpoints, the
 * lock and the seen set (see store.h; the journal format is in
 * store_journal.c). */
#include "store_p.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MODE 0700
#define FILE_MODE 0600
#define COLL_MAX 64

/* ---- names ---- */

bool store_id_valid(const char *id)
{
	size_t n = 0;
	if (id == NULL || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
			c == '+' || c == '-';
		if (!ok)
			return false;
	}
	return n >= 1 && n <= 128;
}

static bool coll_valid(const char *coll)
{
	size_t n = 0;
	for (const char *p = coll; p && *p; p++, n++)
		if (*p < 'a' || *p > 'z')
			return false;
	return n >= 1 && n <= COLL_MAX;
}

/* "coll/id": the key of the overlay and of a transaction's writes. */
static char *doc_key(const char *coll, const char *id)
{
	return xasprintf("%s/%s", coll, id);
}

/* Split a key: the collection into coll, the id returned. */
static const char *key_split(const char *key, char coll[COLL_MAX + 1])
{
	const char *slash = strchr(key, '/');
	size_t n = (size_t)(slash - key);
	memcpy(coll, key, n);
	coll[n] = '\0';
	return slash + 1;
}

/* ---- the seen set ---- */

bool hashset_has(const struct hashset *h, uint64_t v)
{
	if (h->cap == 0)
		return false;
	for (size_t i = v & (h->cap - 1); h->slots[i] != 0; i = (i + 1) & (h->cap - 1))
		if (h->slots[i] == v)
			return true;
	return false;
}

static void hashset_grow(struct hashset *h)
{
	struct hashset g = { .cap = h->cap ? h->cap * 2 : 1024 };
	g.slots = xcalloc(g.cap, sizeof(*g.slots));
	for (size_t i = 0; i < h->cap; i++)
		if (h->slots[i] != 0)
			hashset_add(&g, h->slots[i]);
	free(h->slots);
	*h = g;
}

bool hashset_add(struct hashset *h, uint64_t v)
{
	if ((h->n + 1) * 10 > h->cap * 7)
		hashset_grow(h);
	size_t i = v & (h->cap - 1);
	for (; h->slots[i] != 0; i = (i + 1) & (h->cap - 1))
		if (h->slots[i] == v)
			return false;
	h->slots[i] = v;
	h->n++;
	return true;
}

void hashset_free(struct hashset *h)
{
	free(h->slots);
	memset(h, 0, sizeof(*h));
}

/* 64 bits of SHA-256: the text is not kept, and a collision (a message
 * wrongly taken as seen) would need ~2^64 work against a given id. */
uint64_t store_seen_hash(const char *message_id)
{
	const char *p = message_id;
	while (*p == ' ' || *p == '\t' || *p == '<')
		p++;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' ||
			 p[n - 1] == '\n' || p[n - 1] == '>'))
		n--;
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, d) < 0)
		fatalx("store: SHA-256 is not available");
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h = (h << 8) | d[i];
	return h ? h : 1;
}

static void seen_new_add(struct store *s, uint64_t h)
{
	if (s->n_seen_new == s->cap_seen_new) {
		s->cap_seen_new = s->cap_seen_new ? s->cap_seen_new * 2 : 64;
		s->seen_new = xreallocarray(s->seen_new, s->cap_seen_new, sizeof(*s->seen_new));
	}
	s->seen_new[s->n_seen_new++] = h;
}

/* Record a committed seen hash: in memory, and (writer) for the seen file. */
static void seen_commit(struct store *s, uint64_t h)
{
	if (hashset_add(&s->seen, h) && s->mode != STORE_READER)
		seen_new_add(s, h);
}

static int seen_load(struct store *s, char **err)
{
	int fd = openat(s->dirfd, "seen", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : seterr(err, "%s/seen: %s", s->dir, strerror(errno));
	FILE *fp = fdopen(fd, "r");
	if (fp == NULL) {
		close(fd);
		return seterr(err, "%s/seen: %s", s->dir, strerror(errno));
	}
	char *line = NULL;
	size_t cap = 0, lineno = 0, bad = 0;
	while (getline(&line, &cap, fp) > 0) {
		lineno++;
		char *end;
		errno = 0;
		uint64_t h = strtoull(line, &end, 16);
		if (errno != 0 || end == line || (*end != '\n' && *end != '\0') || h == 0)
			bad++;
		else
			hashset_add(&s->seen, h);
	}
	free(line);
	fclose(fp);
	if (bad)
		log_warnx("store: %s/seen: %zu malformed lines of %zu ignored", s->dir, bad, lineno);
	return 0;
}

bool store_seen(struct store *s, const char *message_id)
{
	return hashset_has(&s->seen, store_seen_hash(message_id));
}

/* ---- files ---- */

/* Create a folder under the state directory with DIR_MODE whatever the
 * umask. */
static int mkdir_private(int dirfd, const char *rel)
{
	if (mkdirat(dirfd, rel, DIR_MODE) < 0)
		return errno == EEXIST ? 0 : -1;
	return fchmodat(dirfd, rel, DIR_MODE, 0);
}

/* Open (creating) a private file relative to the state directory. */
static int open_private(int dirfd, const char *rel, int flags)
{
	int fd = openat(dirfd, rel, flags | O_CREAT | O_CLOEXEC, FILE_MODE);
	if (fd >= 0 && fchmod(fd, FILE_MODE) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Does the process's umask take bits from FILE_MODE (so that a new file
 * needs an fchmod)? Read from /proc: umask() itself cannot be read without
 * changing it for every thread. Unknown: yes. */
static bool umask_bites(void)
{
	FILE *fp = fopen("/proc/self/status", "re");
	char line[128];
	unsigned mask = 0777;
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return (mask & FILE_MODE) != 0;
}

static int ensure_coll(struct store *s, const char *coll, char **err)
{
	if (json_object_object_get_ex(s->colls, coll, NULL))
		return 0;
	if (mkdir_private(s->dirfd, coll) < 0)
		return seterr(err, "%s/%s: mkdir: %s", s->dir, coll, strerror(errno));
	json_object_object_add(s->colls, coll, NULL);
	return 0;
}

/* A document's file contents: pretty, for jq and people, with a final
 * newline. */
static char *doc_text(json_object *doc, size_t *len)
{
	size_t n;
	const char *text = json_object_to_json_string_length(
		doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
		&n);
	char *out = xmalloc(n + 2);
	memcpy(out, text, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	*len = n + 1;
	return out;
}

/* Replace coll/id.json with text: temp file, rename; no fsync (the journal
 * holds the change until the next checkpoint's syncfs). Touches nothing
 * but the filesystem, so helper threads may run it. */
static int file_write_text(const struct store *s, const char *coll, const char *id,
			   const char *text, size_t n, char **err)
{
	char *tmp = xasprintf("%s/.%s.json.tmp", coll, id);
	char *dst = xasprintf("%s/%s.json", coll, id);
	int rc = -1;
	/* the one file created per document written: skip the fchmod when
	 * the umask leaves 0600 alone (one metadata update fewer) */
	int fd = s->chmod_files ? open_private(s->dirfd, tmp, O_WRONLY | O_TRUNC)
		: openat(s->dirfd, tmp, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, FILE_MODE);
	if (fd < 0) {
		seterr(err, "%s/%s: %s", s->dir, tmp, strerror(errno));
		goto out;
	}
	bool ok = fd_write_all(fd, text, n) == 0;
	int e = errno;
	if (close(fd) < 0 && ok) {
		ok = false;
		e = errno;
	}
	if (!ok || renameat(s->dirfd, tmp, s->dirfd, dst) < 0) {
		seterr(err, "%s/%s: %s", s->dir, dst, strerror(ok ? errno : e));
		unlinkat(s->dirfd, tmp, 0);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(dst);
	return rc;
}

static int file_del(const struct store *s, const char *coll, const char *id, char **err)
{
	char *rel = xasprintf("%s/%s.json", coll, id);
	int rc = 0;
	if (unlinkat(s->dirfd, rel, 0) < 0 && errno != ENOENT)
		rc = seterr(err, "%s/%s: unlink: %s", s->dir, rel, strerror(errno));
	free(rel);
	return rc;
}

/* ---- the overlay: committed documents not written as files yet ---- */

/* A NUL-terminated copy of n bytes. */
static char *mem_dup(const char *p, size_t n)
{
	char *c = xmalloc(n + 1);
	memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

static void pending_free(struct pending_doc *p)
{
	if (p != NULL)
		free(p->text);
	free(p);
}

/* Record the committed state of key: text (taken over; NULL for a delete)
 * replaces whatever the overlay held. */
static void overlay_set(struct store *s, const char *key, char *text, size_t len)
{
	struct pending_doc *p = xmalloc(sizeof(*p));
	p->text = text;
	p->len = len;
	if (hm_count(s->overlay) == 0)
		s->pending_since_ms = mono_ms();
	struct pending_doc *old = hm_put(s->overlay, key, p);
	if (old != NULL)
		s->overlay_bytes -= old->len;
	s->overlay_bytes += len;
	pending_free(old);
}

static int free_pending(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	pending_free(value);
	return 0;
}

static void overlay_free(struct store *s)
{
	if (s->overlay != NULL)
		hm_foreach(s->overlay, free_pending, NULL);
	hm_free(s->overlay);
	s->overlay = NULL;
}

static struct pending_doc *overlay_find(const struct store *s, const char *coll, const char *id)
{
	if (hm_count(s->overlay) == 0)
		return NULL;
	char key[COLL_MAX + 1 + 160];
	snprintf(key, sizeof(key), "%s/%s", coll, id);
	return hm_get(s->overlay, key);
}

/* Make a committed change of the journal visible (replay at open): into
 * the overlay, for a reader as for a writer (whose open then flushes). */
static void apply_doc(struct store *s, const char *coll, const char *id, json_object *doc)
{
	char *key = doc_key(coll, id);
	size_t len = 0;
	char *text = NULL;
	if (doc != NULL) {
		const char *plain = json_object_to_json_string_length(
			doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
		text = mem_dup(plain, len);
	}
	overlay_set(s, key, text, len);
	free(key);
}

int store_apply_record(struct store *s, json_object *rec, char **err)
{
	json_object *v;
	const char *op = json_object_object_get_ex(rec, "op", &v) ? json_object_get_string(v) : "";
	const char *coll = json_object_object_get_ex(rec, "c", &v) ? json_object_get_string(v) : "";
	const char *id = json_object_object_get_ex(rec, "id", &v) ? json_object_get_string(v) : "";
	if (strcmp(op, "seen") == 0) {
		const char *h = json_object_object_get_ex(rec, "h", &v) ? json_object_get_string(v) : "";
		uint64_t hash = strtoull(h, NULL, 16);
		if (hash != 0)
			seen_commit(s, hash);
		return 0;
	}
	bool put = strcmp(op, "put") == 0;
	json_object *doc = NULL;
	if (put && (!json_object_object_get_ex(rec, "doc", &doc) ||
		    !json_object_is_type(doc, json_type_object)))
		doc = NULL;
	if (!coll_valid(coll) || !store_id_valid(id) || (put && doc == NULL) ||
	    (!put && strcmp(op, "del") != 0)) {
		log_warnx("store: %s/journal: malformed %s record skipped", s->dir, op);
		return 0;
	}
	(void)err;
	apply_doc(s, coll, id, doc);
	return 0;
}

/* ---- reading documents ---- */

/* Move a damaged document aside: <coll>/corrupt/<id>.json.<time>. */
static void quarantine(struct store *s, const char *coll, const char *id, const char *why)
{
	char *src = xasprintf("%s/%s.json", coll, id);
	if (s->mode == STORE_READER) {
		log_warnx("store: %s/%s: %s; treated as absent", s->dir, src, why);
		free(src);
		return;
	}
	char *cdir = xasprintf("%s/corrupt", coll);
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	char *dst = NULL;
	int rc = mkdir_private(s->dirfd, cdir);
	/* never over an earlier damaged copy: add .1, .2 ... if needed */
	for (int i = 0; rc == 0 && i < 100; i++) {
		free(dst);
		dst = i ? xasprintf("%s/%s.json.%s.%d", cdir, id, stamp, i)
			: xasprintf("%s/%s.json.%s", cdir, id, stamp);
		rc = renameat2(s->dirfd, src, s->dirfd, dst, RENAME_NOREPLACE);
		if (rc < 0 && errno == EINVAL) {        /* no RENAME_NOREPLACE here */
			if (faccessat(s->dirfd, dst, F_OK, 0) == 0)
				errno = EEXIST;
			else
				rc = renameat(s->dirfd, src, s->dirfd, dst);
		}
		if (rc == 0 || errno != EEXIST)
			break;
		rc = i < 99 ? 0 : -1;
	}
	if (rc == 0)
		log_warnx("store: %s/%s: %s; moved to %s/%s", s->dir, src, why, s->dir, dst);
	else
		log_warn("store: %s/%s: %s; could not move it aside", s->dir, src, why);
	free(dst);
	free(cdir);
	free(src);
}

/* Read coll/id.json; NULL if absent or damaged (then moved aside). */
static json_object *file_get(struct store *s, const char *coll, const char *id)
{
	char *rel = xasprintf("%s/%s.json", coll, id);
	int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC);
	free(rel);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			log_warn("store: %s/%s/%s.json", s->dir, coll, id);
		return NULL;
	}
	struct stat st;
	struct buf b = BUF_INIT;
	const char *why = NULL;
	if (fstat(fd, &st) < 0 || st.st_size > STORE_MAX_DOC) {
		why = "unreadable or too large";
	} else {
		buf_reserve(&b, (size_t)st.st_size);
		ssize_t r;
		while ((r = read(fd, b.p + b.len, b.cap - b.len - 1)) > 0 || (r < 0 && errno == EINTR)) {
			if (r > 0)
				b.len += (size_t)r;
			if (b.len + 1 >= b.cap)
				buf_reserve(&b, 4096);
		}
		if (r < 0)
			why = "unreadable";
	}
	close(fd);
	json_object *doc = why ? NULL : store_parse_object(b.p, b.len);
	buf_free(&b);
	if (doc == NULL)
		quarantine(s, coll, id, why ? why : "not a JSON object");
	return doc;
}

/* What the overlay says about coll/id, parsed: *found tells whether it
 * knows the key (then NULL means deleted). */
static json_object *overlay_get(struct store *s, const char *coll, const char *id, bool *found)
{
	struct pending_doc *p = overlay_find(s, coll, id);
	*found = p != NULL;
	if (p == NULL || p->text == NULL)
		return NULL;
	json_object *doc = store_parse_object(p->text, p->len);
	if (doc == NULL)        /* json-c printed what it cannot read back */
		log_warnx("store: %s/%s/%s: the committed document does not parse; "
			  "treated as absent", s->dir, coll, id);
	return doc;
}

json_object *store_get(struct store *s, const char *coll, const char *id)
{
	if (!coll_valid(coll) || !store_id_valid(id))
		return NULL;
	bool found;
	json_object *doc = overlay_get(s, coll, id, &found);
	return found ? doc : file_get(s, coll, id);
}

/* Is coll/id there (a damaged file counts as there)? */
static bool store_exists(struct store *s, const char *coll, const char *id)
{
	struct pending_doc *p = overlay_find(s, coll, id);
	if (p != NULL)
		return p->text != NULL;
	char *rel = xasprintf("%s/%s.json", coll, id);
	bool there = faccessat(s->dirfd, rel, F_OK, 0) == 0;
	free(rel);
	return there;
}

/* Open a folder under the state directory for reading; NULL if it is
 * absent or cannot be read. */
static DIR *opendir_at(int dirfd, const char *rel)
{
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL && fd >= 0)
		close(fd);
	return d;
}

/* The id of a directory entry that is a document, or NULL. */
static const char *entry_id(const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	if (name[0] == '.' || n <= 5 || n - 5 >= len || strcmp(name + n - 5, ".json") != 0)
		return NULL;
	memcpy(out, name, n - 5);
	out[n - 5] = '\0';
	return store_id_valid(out) ? out : NULL;
}

static bool in_overlay(const struct store *s, const char *coll, const char *id)
{
	return overlay_find(s, coll, id) != NULL;
}

struct ids_ctx {
	const char *coll;
	size_t cl;
	bool all;
	char **ids;
};

static int collect_id(void *vctx, const char *key, void *value)
{
	struct ids_ctx *c = vctx;
	const struct pending_doc *p = value;
	if ((c->all || p->text != NULL) && strncmp(key, c->coll, c->cl) == 0 && key[c->cl] == '/')
		c->ids = strv_add(c->ids, key + c->cl + 1);
	return 0;
}

/* The overlay's ids in coll that hold a document, or (all) that it knows
 * of, deleted ones included. A copy: callbacks may commit, which changes
 * the overlay. */
static char **overlay_ids(struct store *s, const char *coll, bool all)
{
	struct ids_ctx c = { .coll = coll, .cl = strlen(coll), .all = all };
	if (hm_count(s->overlay) > 0)
		hm_foreach(s->overlay, collect_id, &c);
	return c.ids;
}

/* Walk the collection's folder (streaming: nothing is kept), then the
 * documents the overlay held when the walk began. Those are skipped in
 * the folder, and the folder's others are read through the overlay, so
 * that each document is visited once, as it is when visited, even if a
 * callback commits. */
int store_foreach(struct store *s, const char *coll,
		  int (*cb)(void *ctx, const char *id, json_object *doc), void *ctx)
{
	if (!coll_valid(coll))
		return 0;
	int rc = 0;
	char **ids = overlay_ids(s, coll, true);
	struct hashmap *later = hm_new();
	for (size_t i = 0; ids && ids[i]; i++)
		hm_put(later, ids[i], ids[i]);
	DIR *d = opendir_at(s->dirfd, coll);
	struct dirent *e;
	char idbuf[160];
	while (d != NULL && rc == 0 && (e = readdir(d)) != NULL) {
		const char *id = entry_id(e->d_name, idbuf, sizeof(idbuf));
		if (id == NULL || hm_get(later, id) != NULL)
			continue;
		json_object *doc = store_get(s, coll, id);
		if (doc == NULL)
			continue;
		rc = cb(ctx, id, doc);
		json_object_put(doc);
	}
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; ids && ids[i] && rc == 0; i++) {
		json_object *doc = store_get(s, coll, ids[i]);
		if (doc != NULL)
			rc = cb(ctx, ids[i], doc);
		json_object_put(doc);
	}
	hm_free(later);
	strv_free(ids);
	return rc;
}

size_t store_count(struct store *s, const char *coll)
{
	if (!coll_valid(coll))
		return 0;
	size_t n = 0;
	DIR *d = opendir_at(s->dirfd, coll);
	struct dirent *e;
	char idbuf[160];
	while (d != NULL && (e = readdir(d)) != NULL) {
		const char *id = entry_id(e->d_name, idbuf, sizeof(idbuf));
		if (id != NULL && !in_overlay(s, coll, id))
			n++;
	}
	if (d != NULL)
		closedir(d);
	char **ids = overlay_ids(s, coll, false);
	n += strv_len(ids);
	strv_free(ids);
	return n;
}

/* ---- transactions ---- */

struct txn_hook {
	void (*fn)(void *ctx, bool committed);
	void *ctx;
};

struct txn {
	struct store *s;
	json_object *ops;       /* "coll/id" -> document, or NULL for a delete */
	uint64_t *seen;
	size_t nseen, capseen;
	char *bad;              /* the first misuse; the commit refuses */
	struct txn_hook *hooks;
	size_t nhooks;
};

struct txn *store_begin(struct store *s)
{
	struct txn *t = xcalloc(1, sizeof(*t));
	t->s = s;
	t->ops = json_object_new_object();
	return t;
}

static void txn_misuse(struct txn *t, const char *what, const char *coll, const char *id)
{
	log_warnx("store: %s %s/%s refused", what, coll ? coll : "(null)", id ? id : "(null)");
	if (t->bad == NULL)
		t->bad = xasprintf("%s %s/%s refused", what, coll ? coll : "(null)",
				   id ? id : "(null)");
}

void txn_put(struct txn *t, const char *coll, const char *id, json_object *doc)
{
	if (!coll_valid(coll) || !store_id_valid(id) || doc == NULL ||
	    !json_object_is_type(doc, json_type_object)) {
		txn_misuse(t, doc ? "invalid document" : "null document", coll, id);
		json_object_put(doc);
		return;
	}
	char *key = doc_key(coll, id);
	json_object_object_add(t->ops, key, doc);
	free(key);
}

void txn_del(struct txn *t, const char *coll, const char *id)
{
	if (!coll_valid(coll) || !store_id_valid(id)) {
		txn_misuse(t, "invalid delete", coll, id);
		return;
	}
	char *key = doc_key(coll, id);
	json_object_object_add(t->ops, key, NULL);
	free(key);
}

void txn_mark_seen(struct txn *t, const char *message_id)
{
	if (t->nseen == t->capseen) {
		t->capseen = t->capseen ? t->capseen * 2 : 8;
		t->seen = xreallocarray(t->seen, t->capseen, sizeof(*t->seen));
	}
	t->seen[t->nseen++] = store_seen_hash(message_id);
}

/* What the transaction itself says about coll/id: *found if it wrote it. */
static json_object *txn_own(struct txn *t, const char *coll, const char *id, bool *found)
{
	char *key = doc_key(coll, id);
	json_object *v = NULL;
	*found = json_object_object_get_ex(t->ops, key, &v);
	free(key);
	return v;
}

json_object *txn_get(struct txn *t, const char *coll, const char *id)
{
	if (!coll_valid(coll) || !store_id_valid(id))
		return NULL;
	bool found;
	json_object *v = txn_own(t, coll, id, &found), *copy = NULL;
	if (!found)
		return store_get(t->s, coll, id);
	/* a copy, so that changing it does not change the pending write */
	if (v != NULL && json_object_deep_copy(v, &copy, NULL) < 0)
		fatalx("store: cannot copy a document");
	return copy;
}

bool txn_exists(struct txn *t, const char *coll, const char *id)
{
	if (!coll_valid(coll) || !store_id_valid(id))
		return false;
	bool found;
	json_object *v = txn_own(t, coll, id, &found);
	return found ? v != NULL : store_exists(t->s, coll, id);
}

bool txn_empty(const struct txn *t)
{
	return json_object_object_length(t->ops) == 0 && t->nseen == 0;
}

void txn_on_done(struct txn *t, void (*fn)(void *ctx, bool committed), void *ctx)
{
	t->hooks = xreallocarray(t->hooks, t->nhooks + 1, sizeof(*t->hooks));
	t->hooks[t->nhooks++] = (struct txn_hook){ .fn = fn, .ctx = ctx };
}

static void txn_free(struct txn *t, bool committed)
{
	for (size_t i = 0; i < t->nhooks; i++)
		t->hooks[i].fn(t->hooks[i].ctx, committed);
	free(t->hooks);
	json_object_put(t->ops);
	free(t->seen);
	free(t->bad);
	free(t);
}

void txn_abort(struct txn *t)
{
	if (t != NULL)
		txn_free(t, false);
}

static void step(struct store *s, const char *name)
{
	if (s->step != NULL)
		s->step(s->step_ctx, name);
}

/* The transaction's journal records, commit marker last; spans[i] says
 * where the i-th document's text lies in b (offset, length). */
static size_t txn_encode(struct txn *t, uint64_t seq, struct buf *b, size_t (*spans)[2])
{
	size_t n = 0;
	json_object_object_foreach(t->ops, key, doc) {
		char coll[COLL_MAX + 1];
		const char *id = key_split(key, coll);
		if (doc != NULL)
			journal_add_put_span(b, seq, coll, id, doc, &spans[n][0], &spans[n][1]);
		else
			journal_add_del(b, seq, coll, id);
		n++;
	}
	for (size_t i = 0; i < t->nseen; i++, n++)
		journal_add_seen(b, seq, t->seen[i]);
	journal_add_commit(b, seq, n);
	return n;
}

/* Write all of p at off (retrying short writes and EINTR): 0 or -1. */
static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Cut the journal file back to before: what follows the end must be
 * zeros or nothing (see store_p.h). */
static int journal_cut(struct store *s, size_t before)
{
	if (s->journal_zeroed > before)
		s->journal_zeroed = before;
	return ftruncate(s->journal_fd, (off_t)before);
}

/* Write at the end and sync: the one fdatasync of a commit. */
static int journal_append(struct store *s, const struct buf *b, char **err)
{
	size_t before = s->journal_bytes;
	if (pwrite_all(s->journal_fd, b->p, b->len, (off_t)before) < 0) {
		int e = errno;
		/* take the partial transaction back out, or a later commit
		 * would follow a torn line */
		if (journal_cut(s, before) < 0)
			s->broken = true;
		return seterr(err, "%s/journal: write: %s", s->dir, strerror(e));
	}
	step(s, "journal_written");
	s->stats.fsyncs++;
	if (fdatasync(s->journal_fd) < 0) {
		int e = errno;
		/* after a failed sync the page cache cannot be trusted: stop */
		s->broken = true;
		if (journal_cut(s, before) < 0)
			log_warn("store: %s/journal: truncate after a failed sync", s->dir);
		return seterr(err, "%s/journal: fdatasync: %s", s->dir, strerror(e));
	}
	s->journal_bytes += b->len;
	step(s, "journal_synced");
	return 0;
}

/* Empty the journal: truncate and sync (its content is in the files). */
static int journal_reset(struct store *s, char **err)
{
	s->stats.fsyncs++;
	if (journal_cut(s, 0) < 0 || fsync(s->journal_fd) < 0)
		return seterr(err, "%s/journal: truncate: %s", s->dir, strerror(errno));
	s->journal_bytes = 0;
	return 0;
}

/* The daemon's zeroed space after the journal's end (see
 * STORE_PREZERO_BYTES): topped up when it runs low, not while closing. A
 * failure only costs speed: commits then extend the file. */
static void journal_prezero(struct store *s)
{
	static const char zeros[64 * 1024];
	if (s->mode != STORE_DAEMON || s->closing || s->broken ||
	    s->journal_zeroed >= s->journal_bytes + STORE_PREZERO_LOW ||
	    s->journal_zeroed > s->checkpoint_bytes)
		return;
	size_t off = s->journal_zeroed > s->journal_bytes ? s->journal_zeroed : s->journal_bytes;
	/* no further than a checkpoint will let the journal grow */
	size_t ahead = s->checkpoint_bytes + 65536 < STORE_PREZERO_BYTES
		? s->checkpoint_bytes + 65536 : STORE_PREZERO_BYTES;
	size_t end = s->journal_bytes + ahead;
	for (; off < end; off += sizeof(zeros))
		if (pwrite_all(s->journal_fd, zeros, sizeof(zeros), (off_t)off) < 0)
			break;
	s->stats.fsyncs++;
	if (off < end || fdatasync(s->journal_fd) < 0) {
		log_warn("store: %s/journal: zero-filling ahead", s->dir);
		return;
	}
	s->journal_zeroed = off;
	step(s, "journal_zeroed");
}

/* After the sync: the committed documents into the overlay (copies of
 * their journal text, located by spans[]), the seen set. */
static void txn_publish(struct txn *t, const struct buf *b, const size_t (*spans)[2])
{
	struct store *s = t->s;
	size_t i = 0;
	json_object_object_foreach(t->ops, key, doc) {
		const size_t *sp = spans[i++];
		overlay_set(s, key, doc ? mem_dup(b->p + sp[0], sp[1]) : NULL, doc ? sp[1] : 0);
	}
	for (i = 0; i < t->nseen; i++)
		seen_commit(s, t->seen[i]);
}

/* Housekeeping after a commit: a checkpoint once the journal is large, a
 * flush once the overlay is. Failures are logged: the commit stands. */
static void after_commit(struct store *s)
{
	char *e = NULL;
	s->last_commit_ms = mono_ms();
	if (s->journal_bytes > s->checkpoint_bytes) {
		if (store_checkpoint(s, &e) < 0)
			log_warnx("store: checkpoint: %s", e);
	} else if (s->overlay_bytes > STORE_OVERLAY_BYTES) {
		if (store_flush(s, &e) < 0)
			log_warnx("store: flush: %s", e);
	}
	free(e);
}

int txn_commit(struct txn *t, char **err)
{
	struct store *s = t->s;
	int rc = 0;
	if (t->bad != NULL)
		rc = seterr(err, "store: %s", t->bad);
	else if (txn_empty(t))
		rc = 0;
	else if (s->mode == STORE_READER)
		rc = seterr(err, "store: %s: opened read-only", s->dir);
	else if (s->broken)
		rc = seterr(err, "store: %s: a journal write failed earlier; restart needed", s->dir);
	if (rc < 0 || txn_empty(t)) {
		txn_free(t, rc == 0);
		return rc;
	}
	struct buf b = BUF_INIT;
	uint64_t seq = s->next_txn++;
	size_t nops = (size_t)json_object_object_length(t->ops);
	size_t (*spans)[2] = xcalloc(nops ? nops : 1, sizeof(*spans));
	size_t nrec = txn_encode(t, seq, &b, spans);
	rc = journal_append(s, &b, err);
	if (rc == 0) {
		s->stats.commits++;
		s->stats.records += nrec;
		txn_publish(t, &b, spans);
	}
	buf_free(&b);
	free(spans);
	txn_free(t, rc == 0);
	if (rc == 0) {
		step(s, "committed");
		after_commit(s);
	}
	return rc;
}

/* ---- write-behind: the documents as files ---- */

/* One document file to write or remove at a flush. */
struct apply_job {
	char coll[COLL_MAX + 1];
	char *key;                      /* "coll/id" */
	const char *id;                 /* inside key */
	const struct pending_doc *p;    /* the overlay's, unchanged during the flush */
	int rc;
	char *err;
};

struct apply_run {
	struct store *s;
	struct apply_job *jobs;
	size_t n, next;
	pthread_mutex_t mu;
};

/* Write one job's file: the journal's plain text pretty-printed for jq
 * and people. Touches nothing but its job and the filesystem. */
static int apply_one(const struct store *s, struct apply_job *j)
{
	if (j->p->text == NULL)
		return file_del(s, j->coll, j->id, &j->err);
	json_object *doc = store_parse_object(j->p->text, j->p->len);
	if (doc == NULL)
		return seterr(&j->err, "%s/%s: the committed document does not parse", s->dir,
			      j->key);
	size_t n;
	char *text = doc_text(doc, &n);
	json_object_put(doc);
	int rc = file_write_text(s, j->coll, j->id, text, n, &j->err);
	free(text);
	return rc;
}

static void *apply_loop(void *arg)
{
	struct apply_run *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		size_t i = r->next++;
		pthread_mutex_unlock(&r->mu);
		if (i >= r->n)
			return NULL;
		struct apply_job *j = &r->jobs[i];
		if (j->rc == 0)
			j->rc = apply_one(r->s, j);
		pthread_mutex_lock(&r->mu);
		step(r->s, "applied");
		pthread_mutex_unlock(&r->mu);
	}
}

/*
 * Write a flush's files with a few threads. Without fsync a replacement
 * costs CPU in the kernel (inode allocation, the folder's lock) more than
 * waits: measured here, replacing 3,000 documents in three folders went
 * 6,500/s with one thread, 9,000 with 2, 10,800 with 4 and 10,900 with 8,
 * at ~90 us of CPU each and 5-15% more with each doubling (the threads
 * spin on the folder's lock). The threads touch only the filesystem and
 * their jobs; the bookkeeping stays on the caller's thread.
 */
static void apply_parallel(struct store *s, struct apply_job *jobs, size_t n)
{
	struct apply_run r = { .s = s, .jobs = jobs, .n = n };
	pthread_t th[STORE_APPLY_THREADS];
	size_t nth = 0;
	pthread_mutex_init(&r.mu, NULL);
	while (nth + 1 < STORE_APPLY_THREADS && nth + 1 < n &&
	       pthread_create(&th[nth], NULL, apply_loop, &r) == 0)
		nth++;
	apply_loop(&r);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&r.mu);
}

struct flush_ctx {
	struct store *s;
	struct apply_job *jobs;
	size_t n, max;
};

static int flush_job(void *vctx, const char *key, void *value)
{
	struct flush_ctx *c = vctx;
	if (c->n == c->max)
		return 1;
	struct apply_job *j = &c->jobs[c->n++];
	j->key = xstrdup(key);
	j->id = key_split(j->key, j->coll);
	j->p = value;
	/* a delete needs no folder: a document created and deleted since
	 * the last flush leaves no trace on disk */
	if (j->p->text != NULL)
		j->rc = ensure_coll(c->s, j->coll, &j->err);
	return 0;
}

/* After the files: drop what was written from the overlay; keep what was
 * not (the journal still holds it) and say so once. */
static int flush_settle(struct store *s, struct apply_job *jobs, size_t n, char **err)
{
	size_t failed = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct apply_job *j = &jobs[i];
		if (j->rc == 0) {
			struct pending_doc *p = hm_del(s->overlay, j->key);
			s->overlay_bytes -= p->len;
			pending_free(p);
			json_object_object_add(s->touched, j->key, NULL);
			s->stats.files_written++;
		} else if (failed++ == 0) {
			rc = seterr(err, "%s", j->err);
		}
		free(j->key);
		free(j->err);
	}
	if (failed > 0)
		log_warnx("store: %zu document file(s) not written (%s); kept in memory and in "
			  "the journal, retried later", failed, *err ? *err : "?");
	return rc;
}

/* Write up to max pending documents. */
static int flush_some(struct store *s, size_t max, char **err)
{
	size_t n = hm_count(s->overlay);
	if (s->mode == STORE_READER || n == 0)
		return 0;
	n = n < max ? n : max;
	struct flush_ctx c = { .s = s, .jobs = xcalloc(n, sizeof(*c.jobs)), .max = n };
	hm_foreach(s->overlay, flush_job, &c);
	apply_parallel(s, c.jobs, c.n);
	char *e = NULL;
	int rc = flush_settle(s, c.jobs, c.n, &e);
	free(c.jobs);
	s->stats.flushes++;
	if (hm_count(s->overlay) == 0) {
		/* a fresh map: after a burst the old one is large and all
		 * tombstones */
		hm_free(s->overlay);
		s->overlay = hm_new();
		s->pending_since_ms = 0;
	}
	step(s, "flushed");
	if (rc < 0) {
		s->flush_retry_ms = mono_ms() + STORE_FLUSH_RETRY_MS;
		if (err != NULL)
			*err = e;
		else
			free(e);
	}
	return rc;
}

int store_flush(struct store *s, char **err)
{
	return flush_some(s, SIZE_MAX, err);
}

int64_t store_flush_due(const struct store *s)
{
	if (s->mode == STORE_READER || hm_count(s->overlay) == 0)
		return 0;
	int64_t idle = s->last_commit_ms + s->flush_idle_ms;
	int64_t oldest = s->pending_since_ms + s->flush_max_ms;
	int64_t due = idle < oldest ? idle : oldest;
	return due > s->flush_retry_ms ? due : s->flush_retry_ms;
}

/* A bounded part at a time, so that the owner's loop stays responsive
 * after a burst (thousands of documents take a second or so); while more
 * is pending the deadline stays passed and the loop comes back at once. */
void store_tick(struct store *s)
{
	int64_t due = store_flush_due(s);
	if (due == 0 || mono_ms() < due)
		return;
	char *e = NULL;
	if (flush_some(s, STORE_TICK_DOCS, &e) < 0)
		log_warnx("store: flush: %s", e);
	free(e);
	journal_prezero(s);             /* idle: top the zeroed space up */
}

/* ---- checkpoint ---- */

static int seen_flush(struct store *s, char **err)
{
	if (s->n_seen_new == 0)
		return 0;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < s->n_seen_new; i++)
		buf_printf(&b, "%016" PRIx64 "\n", s->seen_new[i]);
	int fd = open_private(s->dirfd, "seen", O_WRONLY | O_APPEND);
	int rc = 0;
	if (fd < 0 || fd_write_all(fd, b.p, b.len) < 0)
		rc = seterr(err, "%s/seen: %s", s->dir, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = seterr(err, "%s/seen: close: %s", s->dir, strerror(errno));
	buf_free(&b);
	return rc;
}

static int fsync_rel(struct store *s, const char *rel, int flags, char **err)
{
	int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return errno == ENOENT ? 0 : seterr(err, "%s/%s: %s", s->dir, rel, strerror(errno));
	int rc = fsync(fd) < 0 ? seterr(err, "%s/%s: fsync: %s", s->dir, rel, strerror(errno)) : 0;
	close(fd);
	return rc;
}

/* Without syncfs(): every file written since the last checkpoint, their
 * folders and the state directory itself. */
static int sync_touched(struct store *s, char **err)
{
	int rc = fsync_rel(s, "seen", 0, err);
	json_object_object_foreach(s->touched, key, unused) {
		(void)unused;
		char *rel = xasprintf("%s.json", key);
		if (rc == 0)
			rc = fsync_rel(s, rel, 0, err);
		free(rel);
	}
	json_object_object_foreach(s->colls, coll, unused2) {
		(void)unused2;
		if (rc == 0)
			rc = fsync_rel(s, coll, O_DIRECTORY, err);
	}
	if (rc == 0 && fsync(s->dirfd) < 0)
		rc = seterr(err, "%s: fsync: %s", s->dir, strerror(errno));
	return rc;
}

int store_checkpoint(struct store *s, char **err)
{
	if (s->mode == STORE_READER)
		return 0;
	if (s->broken)
		return seterr(err, "%s: a journal write failed earlier; restart needed", s->dir);
	if (s->journal_bytes == 0 && s->n_seen_new == 0 && hm_count(s->overlay) == 0)
		return 0;
	if (store_flush(s, err) < 0 || seen_flush(s, err) < 0)
		return -1;
	s->stats.fsyncs++;
	if (syncfs(s->dirfd) < 0) {
		if (errno != ENOSYS)
			return seterr(err, "%s: syncfs: %s", s->dir, strerror(errno));
		if (sync_touched(s, err) < 0)
			return -1;
	}
	step(s, "checkpoint_synced");
	if (journal_reset(s, err) < 0)
		return -1;
	step(s, "checkpoint_truncated");
	s->n_seen_new = 0;
	json_object_put(s->touched);
	s->touched = json_object_new_object();
	journal_prezero(s);
	return 0;
}

void store_stats(const struct store *s, struct store_stats *out)
{
	*out = s->stats;
	out->journal_bytes = s->journal_bytes;
	out->pending = hm_count(s->overlay);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

void store_set_step_hook(struct store *s, store_step_fn fn, void *ctx)
{
	s->step = fn;
	s->step_ctx = ctx;
}

void store_set_checkpoint_bytes(struct store *s, size_t n)
{
	s->checkpoint_bytes = n;
}

void store_set_flush_delays(struct store *s, int idle_ms, int max_ms)
{
	s->flush_idle_ms = idle_ms;
	s->flush_max_ms = max_ms;
}

/* ---- open and close ---- */

/* The pid written in the lock file by the holder, or 0. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/*
 * An open file description lock (F_OFD_SETLK): unlike a classic fcntl
 * lock it also conflicts within one process, and closing another
 * descriptor of the file does not drop it. Its holder's pid is not
 * reported by F_OFD_GETLK, so the holder writes it into the file.
 */
static int take_lock(struct store *s, char **err)
{
	s->lock_fd = open_private(s->dirfd, "lock", O_RDWR);
	if (s->lock_fd < 0)
		return seterr(err, "%s/lock: %s", s->dir, strerror(errno));
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(s->lock_fd, F_OFD_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES)
			return seterr(err, "%s/lock: %s", s->dir, strerror(errno));
		long pid = lock_holder(s->lock_fd);
		seterr(err, "state directory %s is in use by process %ld (lock held on %s/lock)",
		       s->dir, pid, s->dir);
		return STORE_EBUSY;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		return seterr(err, "%s/lock: %s", s->dir, strerror(errno));
	return 0;
}

/* The state directory, 0700 whatever the umask. */
static int open_dir(struct store *s, char **err)
{
	if (s->mode != STORE_READER) {
		if (mkdir_p(s->dir, DIR_MODE, err) < 0)
			return -1;
		struct stat st;
		if (stat(s->dir, &st) == 0 && (st.st_mode & 07777) != DIR_MODE &&
		    chmod(s->dir, DIR_MODE) < 0)
			log_warn("store: %s: chmod 0700", s->dir);
	}
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return seterr(err, "%s: %s", s->dir, strerror(errno));
	return 0;
}

/* Leftover temp files of an interrupted apply (dot-files in a collection). */
static void remove_temp_files(struct store *s)
{
	DIR *top = opendir(s->dir);
	struct dirent *e;
	while (top != NULL && (e = readdir(top)) != NULL) {
		if (!coll_valid(e->d_name))
			continue;
		DIR *d = opendir_at(s->dirfd, e->d_name);
		struct dirent *f;
		while (d != NULL && (f = readdir(d)) != NULL)
			if (f->d_name[0] == '.' && str_endswith(f->d_name, ".json.tmp"))
				unlinkat(dirfd(d), f->d_name, 0);
		if (d != NULL)
			closedir(d);
	}
	if (top != NULL)
		closedir(top);
}

/* Keep a damaged journal for inspection before the checkpoint empties it. */
static void save_corrupt_journal(struct store *s, const struct buf *data)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	char *path = xasprintf("%s/journal.corrupt.%s", s->dir, stamp);
	char *e = NULL;
	if (file_write_atomic(path, data->p, data->len, FILE_MODE, &e) < 0) {
		log_warnx("store: saving the damaged journal: %s", e);
		free(e);
	} else {
		log_warnx("store: damaged journal saved as %s", path);
	}
	free(path);
}

/* Read the journal's content into out: up to its first NUL byte (the
 * zeroed space after it is not content); *file_len: the file's length. */
static int read_journal(struct store *s, struct buf *out, size_t *file_len, char **err)
{
	int flags = s->mode == STORE_READER ? O_RDONLY : O_RDWR;
	*file_len = 0;
	s->journal_fd = s->mode == STORE_READER
		? openat(s->dirfd, "journal", flags | O_CLOEXEC)
		: open_private(s->dirfd, "journal", flags);
	if (s->journal_fd < 0)
		return s->mode == STORE_READER && errno == ENOENT
			? 0 : seterr(err, "%s/journal: %s", s->dir, strerror(errno));
	struct stat st;
	if (fstat(s->journal_fd, &st) == 0)
		*file_len = (size_t)st.st_size;
	for (;;) {
		buf_reserve(out, 65536);
		ssize_t r = pread(s->journal_fd, out->p + out->len, out->cap - out->len - 1,
				  (off_t)out->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return seterr(err, "%s/journal: read: %s", s->dir, strerror(errno));
		if (r == 0)
			break;
		const char *nul = memchr(out->p + out->len, '\0', (size_t)r);
		if (nul != NULL) {
			out->len = (size_t)(nul - out->p);
			break;
		}
		out->len += (size_t)r;
	}
	out->p[out->len] = '\0';
	return 0;
}

/* Bring the committed transactions of the journal in: into the overlay,
 * then (writer) onto the files by a checkpoint. */
static int recover(struct store *s, char **err)
{
	struct buf data = BUF_INIT;
	struct replay_result res;
	size_t file_len;
	int rc = read_journal(s, &data, &file_len, err);
	if (rc == 0 && data.len > 0)
		rc = journal_replay(s, data.p, data.len, &res, err);
	if (rc == 0 && data.len > 0) {
		s->next_txn = res.last_txn + 1;
		if (res.txns > 0 && s->mode != STORE_READER)
			log_info("store: %s: %zu committed transactions (%zu records) replayed "
				 "from the journal", s->dir, res.txns, res.records);
		if (s->mode != STORE_READER) {
			if (res.corrupt)
				save_corrupt_journal(s, &data);
			remove_temp_files(s);
			s->journal_bytes = data.len;
			rc = store_checkpoint(s, err);
		}
	} else if (rc == 0 && s->mode != STORE_READER && file_len > 0) {
		/* no content, but zeros or the torn bytes of a write never
		 * acknowledged: nothing may follow a new transaction */
		rc = journal_reset(s, err);
	}
	buf_free(&data);
	return rc;
}

int store_open(const char *dir, enum store_mode mode, struct store **out, char **err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->mode = mode;
	s->dirfd = s->lock_fd = s->journal_fd = -1;
	s->next_txn = 1;
	s->overlay = hm_new();
	s->flush_idle_ms = STORE_FLUSH_IDLE_MS;
	s->flush_max_ms = STORE_FLUSH_MAX_MS;
	s->touched = json_object_new_object();
	s->colls = json_object_new_object();
	s->checkpoint_bytes = STORE_CHECKPOINT_BYTES;
	s->chmod_files = umask_bites();
	int rc = open_dir(s, err);
	if (rc == 0 && mode != STORE_READER)
		rc = take_lock(s, err);
	if (rc == 0)
		rc = seen_load(s, err);
	if (rc == 0)
		rc = recover(s, err);
	if (rc == 0)
		journal_prezero(s);
	if (rc != 0) {
		s->mode = STORE_READER;         /* nothing to checkpoint */
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->mode != STORE_READER && s->journal_fd >= 0) {
		char *e = NULL;
		s->closing = true;              /* leaves an empty journal file */
		if (store_checkpoint(s, &e) < 0) {
			log_warnx("store: close: %s", e);
			free(e);
		} else if (s->journal_bytes == 0 && s->journal_zeroed > 0 &&
			   journal_cut(s, 0) < 0) {
			log_warn("store: %s/journal: truncate", s->dir);
		}
	}
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	overlay_free(s);
	json_object_put(s->touched);
	json_object_put(s->colls);
	hashset_free(&s->seen);
	free(s->seen_new);
	free(s->dir);
	free(s);
}
