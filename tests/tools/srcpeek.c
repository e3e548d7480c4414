/*
 * srcpeek: drive a configured source (lib/source.h) from a test.
 *
 *   srcpeek -c eimzad.conf [-a AFTER] [-b BATCH] [-n MAX] [-m handled|other]
 *           [-w SECONDS] [-W]
 *
 * Connects, prints {"uidvalidity":..,"uidnext":..}, then fetches messages
 * with UID > AFTER in batches of BATCH (default [source] fetch_batch) until
 * a batch comes back empty or MAX messages were printed, one JSON line per
 * message: {"uid","size","arrival","oversize","len","first"} where first is
 * the message's first line. -m marks every fetched message (one mark_many
 * per batch) and prints {"marked":N}.
 *
 * -w SECONDS: afterwards start waiting (IDLE), print {"waiting":FD} and
 * wait for one wake-up, then wait_done + fetch and print
 * {"woke_at":EPOCH, "maybe_new":b, "ours_us":..., "cpu_us":...} followed by
 * the messages: ours_us is the wall time from the fd turning readable to
 * the messages being in memory, cpu_us this process's CPU time for it.
 * -W: -w, but on a timeout print {"timeout":true} instead of failing.
 * -R: fetch every batch twice with the same `after` and print
 * {"same":true} if both calls returned the same UIDs (false otherwise).
 * -S SECONDS: after fetching, print {"sleeping":S}, sleep, then mark the
 * last fetched message handled again (a STORE whose answer carries news
 * of mail that came meanwhile), print {"remarked":UID}; then -w as usual.
 * -k SECONDS: when the wait fails (server gone), print the error, then
 * disconnect and try to connect again every 100 ms for up to SECONDS; once
 * back, print {"reconnected":true,"uidvalidity":..} and fetch again.
 *
 * Errors: {"error":"..."} on stdout, exit 1.
 */
#include "config.h"
#include "log.h"
#include "source.h"

#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
	const char *conf;
	uint32_t after;
	size_t batch;
	size_t max;
	int mark;                /* -1 none */
	int wait_secs;
	bool wait_soft;
	int reconnect_secs;
	bool repeat;
	int sleep_secs;
	uint32_t last_uid;       /* the last message fetched */
};

static void emit(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static int fail(const char *what, char *err)
{
	json_object *o = json_object_new_object();
	char *m = xasprintf("%s: %s", what, err ? err : "failed");
	json_object_object_add(o, "error", json_object_new_string(m));
	emit(o);
	free(m);
	free(err);
	return 1;
}

static void print_msg(const struct raw_msg *m)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "uid", json_object_new_int64(m->uid));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)m->size));
	json_object_object_add(o, "arrival", json_object_new_int64((int64_t)m->arrival));
	json_object_object_add(o, "oversize", json_object_new_boolean(m->oversize));
	json_object_object_add(o, "len", json_object_new_int64((int64_t)m->len));
	size_t n = m->data ? strcspn(m->data, "\r\n") : 0;
	if (n > 200)
		n = 200;
	json_object_object_add(o, "first", json_object_new_string_len(m->data ? m->data : "", (int)n));
	emit(o);
}

static int mark_batch(struct source *s, struct raw_msg *v, size_t n, int how)
{
	const struct raw_msg **pv = xcalloc(n ? n : 1, sizeof(*pv));
	for (size_t i = 0; i < n; i++)
		pv[i] = &v[i];
	char *err = NULL;
	int rc = s->ops->mark_many(s, pv, n, (enum src_mark)how, &err);
	free(pv);
	if (rc < 0)
		return fail("mark", err);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "marked", json_object_new_int64((int64_t)n));
	emit(o);
	return 0;
}

/* The same fetch again must give the same UIDs. */
static int repeat_check(struct source *s, struct opts *o, size_t want,
			const struct raw_msg *v, size_t n)
{
	struct raw_msg *w;
	size_t m;
	char *err = NULL;
	if (s->ops->fetch(s, o->after, want, &w, &m, &err) < 0) {
		fail("fetch again", err);
		return -1;
	}
	bool same = m == n;
	for (size_t i = 0; same && i < n; i++)
		same = v[i].uid == w[i].uid && v[i].len == w[i].len;
	raw_msgs_free(w, m);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "same", json_object_new_boolean(same));
	emit(j);
	return 0;
}

/* Sleep, then STORE \Seen on the last message again. */
static int sleep_and_remark(struct source *s, struct opts *o)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "sleeping", json_object_new_int(o->sleep_secs));
	emit(j);
	struct timespec ts = { o->sleep_secs, 0 };
	nanosleep(&ts, NULL);
	struct raw_msg m = { .uid = o->last_uid };
	const struct raw_msg *pm = &m;
	char *err = NULL;
	if (s->ops->mark_many(s, &pm, 1, MARK_HANDLED, &err) < 0)
		return fail("mark again", err);
	j = json_object_new_object();
	json_object_object_add(j, "remarked", json_object_new_int64(o->last_uid));
	emit(j);
	return 0;
}

/* Fetch and print until empty or max; *after advances. */
static int drain(struct source *s, struct opts *o, size_t *printed)
{
	for (;;) {
		size_t want = o->batch;
		if (o->max && o->max - *printed < want)
			want = o->max - *printed;
		if (want == 0)
			return 0;
		struct raw_msg *v;
		size_t n;
		char *err = NULL;
		if (s->ops->fetch(s, o->after, want, &v, &n, &err) < 0)
			return fail("fetch", err);
		if (o->repeat && repeat_check(s, o, want, v, n) < 0) {
			raw_msgs_free(v, n);
			return 1;
		}
		if (n)
			o->last_uid = v[n - 1].uid;
		for (size_t i = 0; i < n; i++) {
			print_msg(&v[i]);
			if (v[i].uid > o->after)
				o->after = v[i].uid;
		}
		*printed += n;
		int rc = (n && o->mark >= 0) ? mark_batch(s, v, n, o->mark) : 0;
		raw_msgs_free(v, n);
		if (rc || n == 0)
			return rc;
	}
}

static int64_t now_us(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int wait_once(struct source *s, struct opts *o)
{
	int fd;
	char *err = NULL;
	if (s->ops->wait_start(s, &fd, &err) < 0)
		return fail("wait_start", err);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "waiting", json_object_new_int(fd));
	emit(j);
	if (fd >= 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, o->wait_secs * 1000);
		if (r == 0 && o->wait_soft) {
			j = json_object_new_object();
			json_object_object_add(j, "timeout", json_object_new_boolean(true));
			emit(j);
			return 0;
		}
		if (r <= 0)
			return fail("wait", xstrdup(r == 0 ? "no notification in time" : "poll failed"));
	}
	int64_t t0 = now_us(CLOCK_MONOTONIC), c0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	double woke = (double)now_us(CLOCK_REALTIME) / 1e6;
	bool maybe_new;
	if (s->ops->wait_done(s, &maybe_new, &err) < 0)
		return fail("wait_done", err);
	struct raw_msg *v;
	size_t n;
	if (s->ops->fetch(s, o->after, o->batch, &v, &n, &err) < 0)
		return fail("fetch", err);
	int64_t t1 = now_us(CLOCK_MONOTONIC), c1 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	j = json_object_new_object();
	json_object_object_add(j, "woke_at", json_object_new_double(woke));
	json_object_object_add(j, "maybe_new", json_object_new_boolean(maybe_new));
	json_object_object_add(j, "ours_us", json_object_new_int64(t1 - t0));
	json_object_object_add(j, "cpu_us", json_object_new_int64(c1 - c0));
	emit(j);
	for (size_t i = 0; i < n; i++)
		print_msg(&v[i]);
	raw_msgs_free(v, n);
	return 0;
}

/* The caller's side of "-1 means reconnect": disconnect, then retry. */
static int reconnect(struct source *s, struct opts *o)
{
	int64_t end = mono_ms() + (int64_t)o->reconnect_secs * 1000;
	char *err = NULL;
	s->ops->disconnect(s);
	while (s->ops->connect(s, &err) < 0) {
		if (mono_ms() > end)
			return fail("reconnect", err);
		free(err);
		err = NULL;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	json_object *j = json_object_new_object();
	json_object_object_add(j, "reconnected", json_object_new_boolean(true));
	json_object_object_add(j, "uidvalidity", json_object_new_int64(s->uidvalidity));
	emit(j);
	size_t printed = 0;
	return drain(s, o, &printed);
}

static int load_conf(const char *path, struct config *c)
{
	struct conf_errors e = { 0 };
	config_defaults(c);
	config_load(c, path, &e);     /* no config_check(): only [source] matters here */
	if (e.n == 0)
		return 0;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < e.n; i++)
		buf_printf(&b, "%s%s", i ? "; " : "", e.msgs[i]);
	conf_errors_free(&e);
	return fail("config", buf_steal(&b));
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int ch;
	while ((ch = getopt(argc, argv, "c:a:b:n:m:w:W:k:RS:")) != -1) {
		switch (ch) {
		case 'c': o->conf = optarg; break;
		case 'a': o->after = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': o->batch = strtoul(optarg, NULL, 10); break;
		case 'n': o->max = strtoul(optarg, NULL, 10); break;
		case 'm': o->mark = strcmp(optarg, "other") == 0 ? MARK_OTHER : MARK_HANDLED; break;
		case 'w': o->wait_secs = atoi(optarg); break;
		case 'W': o->wait_secs = atoi(optarg); o->wait_soft = true; break;
		case 'k': o->reconnect_secs = atoi(optarg); break;
		case 'R': o->repeat = true; break;
		case 'S': o->sleep_secs = atoi(optarg); break;
		default: return -1;
		}
	}
	return o->conf ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o = { .mark = -1 };
	struct config c;
	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: srcpeek -c conf [-a after] [-b batch] [-n max] "
			"[-m handled|other] [-R] [-S secs] [-w|-W secs] [-k secs]\n");
		return 2;
	}
	log_init("srcpeek", getenv("SRCPEEK_DEBUG") != NULL);
	signal(SIGPIPE, SIG_IGN);   /* as source.h asks of every program */
	if (load_conf(o.conf, &c))
		return 1;
	if (o.batch == 0)
		o.batch = (size_t)c.imap.fetch_batch;
	struct source *s = source_create(&c);
	char *err = NULL;
	int rc = 0;
	if (s->ops->connect(s, &err) < 0) {
		rc = fail("connect", err);
		goto out;
	}
	json_object *j = json_object_new_object();
	json_object_object_add(j, "uidvalidity", json_object_new_int64(s->uidvalidity));
	json_object_object_add(j, "uidnext", json_object_new_int64(s->uidnext));
	emit(j);
	size_t printed = 0;
	rc = drain(s, &o, &printed);
	if (rc == 0 && o.sleep_secs > 0 && o.last_uid > 0)
		rc = sleep_and_remark(s, &o);
	if (rc == 0 && o.wait_secs > 0)
		rc = wait_once(s, &o);
	if (rc != 0 && o.reconnect_secs > 0)
		rc = reconnect(s, &o);
out:
	s->ops->destroy(s);
	config_free(&c);
	return rc;
}
