/*
 * srcbench: measure the source (lib/source.h); driven by bench/imap_fetch.py.
 *
 *   srcbench backlog -c conf [-b batch]
 *       connect, fetch every message after UID 0 in batches, discard them;
 *       print {"msgs","bytes","secs","batches","max_batch_bytes",
 *       "peak_rss_kib","rss_before_kib"} (RSS from /proc/self/status VmHWM).
 *   srcbench idle -c conf -n N
 *       connect, fetch everything there is, then N times: wait_start, print
 *       {"waiting":i} (the driver then APPENDs one message), poll, and time
 *       wait_done + fetch of the new message; print one
 *       {"wall_us","cpu_us","uid"} per wake-up.
 */
#include "config.h"
#include "log.h"
#include "source.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int64_t us(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* User and system CPU of this process so far, in microseconds. */
static void cpu_split(int64_t *user, int64_t *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
	*sys = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, k) == 0)
			v = strtol(line + k + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int die(const char *what, char *err)
{
	printf("{\"error\":\"%s: %s\"}\n", what, err ? err : "failed");
	free(err);
	return 1;
}

static int backlog(struct source *s, size_t batch)
{
	char *err = NULL;
	long rss0 = status_kib("VmRSS:");
	size_t msgs = 0, bytes = 0, batches = 0, max_batch = 0;
	uint32_t after = 0;
	int64_t t0 = us(CLOCK_MONOTONIC);
	for (;;) {
		struct raw_msg *v;
		size_t n, b = 0;
		if (s->ops->fetch(s, after, batch, &v, &n, &err) < 0)
			return die("fetch", err);
		for (size_t i = 0; i < n; i++) {
			b += v[i].len;
			after = v[i].uid;
		}
		raw_msgs_free(v, n);
		if (n == 0)
			break;
		msgs += n;
		bytes += b;
		batches++;
		if (b > max_batch)
			max_batch = b;
	}
	double secs = (double)(us(CLOCK_MONOTONIC) - t0) / 1e6;
	printf("{\"msgs\":%zu,\"bytes\":%zu,\"secs\":%.4f,\"batches\":%zu,"
	       "\"max_batch_bytes\":%zu,\"peak_rss_kib\":%ld,\"rss_before_kib\":%ld}\n",
	       msgs, bytes, secs, batches, max_batch, status_kib("VmHWM:"), rss0);
	return 0;
}

static int drain(struct source *s, uint32_t *after)
{
	char *err = NULL;
	for (;;) {
		struct raw_msg *v;
		size_t n;
		if (s->ops->fetch(s, *after, 500, &v, &n, &err) < 0)
			return die("fetch", err);
		for (size_t i = 0; i < n; i++)
			*after = v[i].uid;
		raw_msgs_free(v, n);
		if (n == 0)
			return 0;
	}
}

static int one_wake(struct source *s, int i, uint32_t *after)
{
	char *err = NULL;
	int fd;
	if (s->ops->wait_start(s, &fd, &err) < 0)
		return die("wait_start", err);
	if (fd < 0)
		return die("wait_start", xstrdup("no IDLE"));
	printf("{\"waiting\":%d}\n", i);
	fflush(stdout);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1)
		return die("poll", xstrdup("no wake-up within 10 s"));
	int64_t t0 = us(CLOCK_MONOTONIC), c0 = us(CLOCK_PROCESS_CPUTIME_ID), u0, s0, u1, s1;
	cpu_split(&u0, &s0);
	bool maybe_new;
	struct raw_msg *v;
	size_t n;
	if (s->ops->wait_done(s, &maybe_new, &err) < 0)
		return die("wait_done", err);
	if (s->ops->fetch(s, *after, 500, &v, &n, &err) < 0)
		return die("fetch", err);
	int64_t t1 = us(CLOCK_MONOTONIC), c1 = us(CLOCK_PROCESS_CPUTIME_ID);
	cpu_split(&u1, &s1);
	for (size_t k = 0; k < n; k++)
		*after = v[k].uid;
	printf("{\"wall_us\":%lld,\"cpu_us\":%lld,\"user_us\":%lld,\"sys_us\":%lld,"
	       "\"msgs\":%zu,\"uid\":%u}\n", (long long)(t1 - t0), (long long)(c1 - c0),
	       (long long)(u1 - u0), (long long)(s1 - s0), n, n ? v[n - 1].uid : 0);
	fflush(stdout);
	raw_msgs_free(v, n);
	return 0;
}

static int idle(struct source *s, int count)
{
	uint32_t after = 0;
	if (drain(s, &after))
		return 1;
	for (int i = 0; i < count; i++)
		if (one_wake(s, i, &after))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	size_t batch = 0;
	int count = 10, ch;
	if (argc < 2)
		goto usage;
	const char *mode = argv[1];
	optind = 2;
	while ((ch = getopt(argc, argv, "c:b:n:")) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'b': batch = strtoul(optarg, NULL, 10); break;
		case 'n': count = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (conf == NULL)
		goto usage;
	log_init("srcbench", false);
	signal(SIGPIPE, SIG_IGN);
	struct config c;
	struct conf_errors e = { 0 };
	config_defaults(&c);
	if (config_load(&c, conf, &e) < 0) {
		fprintf(stderr, "%s\n", e.n ? e.msgs[0] : "config error");
		return 1;
	}
	struct source *s = source_create(&c);
	char *err = NULL;
	int rc;
	if (s->ops->connect(s, &err) < 0)
		rc = die("connect", err);
	else if (strcmp(mode, "backlog") == 0)
		rc = backlog(s, batch ? batch : (size_t)c.imap.fetch_batch);
	else
		rc = idle(s, count);
	s->ops->destroy(s);
	config_free(&c);
	conf_errors_free(&e);
	return rc;
usage:
	fprintf(stderr, "usage: srcbench backlog|idle -c conf [-b batch] [-n count]\n");
	return 2;
}
