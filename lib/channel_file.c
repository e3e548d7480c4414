/*
 * channel_file.c: the local demo's channel. Nothing leaves the machine:
 *   mail -> <file_dir>/mail/<notice id>.eml, the exact message the SMTP
 *           channel would submit (mailfmt.c), written atomically (temp
 *           file, fsync, rename, fsync of the folder), mode 0600;
 *   SMS  -> one JSON object per line appended to <file_dir>/sms.jsonl:
 *           {"to", "text", "segments", "encoding", "id", "time"}, with
 *           the text as sms_fit() would send it. Each line goes out in
 *           one write(2) on an O_APPEND descriptor, and the batch is
 *           fsync'ed before any of its notices counts as sent.
 * A notice that cannot be rendered (bad address, SMS too long) is
 * PERMFAIL; a file that cannot be written makes the channel DOWN.
 */
#include "channel_p.h"
#include "log.h"
#include "mailfmt.h"
#include "phone.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct file_priv {
	char *mail_dir;
	char *sms_path;
	pthread_mutex_t lock;     /* one appender at a time on sms.jsonl */
};

static int file_open(struct channel *ch, char **err)
{
	const struct config *c = ch->conf;
	if (str_empty(c->outbox.file_dir))
		return seterr(err, "[outbox] file_dir is required for the file channel");
	struct file_priv *p = xcalloc(1, sizeof(*p));
	p->mail_dir = xasprintf("%s/mail", c->outbox.file_dir);
	p->sms_path = xasprintf("%s/sms.jsonl", c->outbox.file_dir);
	pthread_mutex_init(&p->lock, NULL);
	const char *dir = ch->medium == MEDIUM_MAIL ? p->mail_dir : c->outbox.file_dir;
	if (mkdir_p(dir, 0700, err) < 0) {
		pthread_mutex_destroy(&p->lock);
		free(p->mail_dir);
		free(p->sms_path);
		free(p);
		return -1;
	}
	ch->priv = p;
	return 0;
}

static void file_close(struct channel *ch)
{
	struct file_priv *p = ch->priv;
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->mail_dir);
	free(p->sms_path);
	free(p);
	ch->priv = NULL;
}

/* A notice id as a file name: letters, digits, '-', '_', '.' only. */
static bool id_ok(const char *id)
{
	if (str_empty(id) || id[0] == '.')
		return false;
	for (const char *s = id; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void send_mail(struct file_priv *p, const struct config *c, const struct notice *n,
		      struct delivery *d)
{
	if (!id_ok(n->id)) {
		delivery_set(d, DLV_PERMFAIL, 0, "notice id unusable as a file name");
		return;
	}
	struct buf msg = BUF_INIT;
	char *err = NULL;
	if (mailfmt_render(c, n, time(NULL), &msg, &err) < 0) {
		delivery_set(d, DLV_PERMFAIL, 0, "%s", err);
		free(err);
		buf_free(&msg);
		return;
	}
	char *path = xasprintf("%s/%s.eml", p->mail_dir, n->id);
	if (file_write_atomic(path, msg.p, msg.len, 0600, &err) < 0) {
		delivery_set(d, DLV_DOWN, 0, "%s", err);
		free(err);
	} else {
		delivery_set(d, DLV_SENT, 0, "written to %s", path);
		d->provider_id = xasprintf("%s.eml", n->id);
	}
	free(path);
	buf_free(&msg);
}

static const char *enc_name(enum sms_encoding e)
{
	static const char *const names[] = { "gsm7-turkish", "gsm7", "ucs2", "ascii" };
	return (unsigned)e < ARRAY_LEN(names) ? names[e] : "?";
}

/* The JSON line for one SMS, or NULL with d set to PERMFAIL. */
static char *sms_line(const struct config *c, const struct notice *n, struct delivery *d)
{
	struct sms_info info;
	char *text = channel_sms_text(c, n, &info, d);
	if (text == NULL)
		return NULL;
	char ts[32];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "to", json_object_new_string(n->to ? n->to : ""));
	json_object_object_add(o, "text", json_object_new_string(text));
	json_object_object_add(o, "segments", json_object_new_int(info.segments));
	json_object_object_add(o, "encoding", json_object_new_string(enc_name(info.encoding)));
	json_object_object_add(o, "id", json_object_new_string(n->id ? n->id : ""));
	json_object_object_add(o, "time", json_object_new_string(time_fmt_utc(time(NULL), ts, sizeof(ts))));
	char *line = xasprintf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	free(text);
	return line;
}

/* Append every SMS of the batch, fsync once, then count them sent. */
static void send_sms_batch(struct file_priv *p, const struct config *c,
			   struct notice *const *batch, const size_t *idx, size_t k,
			   struct delivery *out)
{
	pthread_mutex_lock(&p->lock);
	int fd = open(p->sms_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	const char *failed = fd < 0 ? "open" : NULL;
	bool *wrote = xcalloc(k, sizeof(bool));
	for (size_t i = 0; i < k; i++) {
		if (failed)
			continue;
		char *line = sms_line(c, batch[idx[i]], &out[idx[i]]);
		if (line == NULL)
			continue;
		if (fd_write_all(fd, line, strlen(line)) < 0)
			failed = "write";
		else
			wrote[i] = true;
		free(line);
	}
	if (!failed && fsync(fd) < 0)
		failed = "fsync";
	int saved = errno;
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < k; i++) {
		struct delivery *d = &out[idx[i]];
		if (failed && (wrote[i] || d->detail == NULL))
			delivery_set(d, DLV_DOWN, 0, "%s: %s: %s", p->sms_path, failed, strerror(saved));
		else if (wrote[i])
			delivery_set(d, DLV_SENT, 0, "appended to %s", p->sms_path);
	}
	free(wrote);
}

static void file_send(struct channel *ch, struct notice *const *batch, size_t n,
		      struct delivery *out)
{
	struct file_priv *p = ch->priv;
	size_t *sms = xcalloc(n ? n : 1, sizeof(size_t));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (batch[i]->medium == MEDIUM_MAIL)
			send_mail(p, ch->conf, batch[i], &out[i]);
		else
			sms[k++] = i;
	}
	if (k > 0)
		send_sms_batch(p, ch->conf, batch, sms, k, out);
	free(sms);
}

const struct channel_ops channel_file_ops = {
	.name = "file",
	.open = file_open,
	.send = file_send,
	.close = file_close,
};
