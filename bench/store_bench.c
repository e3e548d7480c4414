/*
 * store_bench: figures for the state store and the outbox.
 *
 *   store_bench [-n DOCS] [-d DIR] [-k]
 *
 * In a state directory under DIR (default $TMPDIR or /tmp; removed unless
 * -k), with first 100 and then DOCS (default 100000) application-sized
 * documents (~2 KB), it measures:
 *   - the latency of one commit (an application document and a notice,
 *     one fdatasync), median and 90th percentile over 200 commits, beside
 *     a peer: the same two documents written each with file_write_atomic
 *     (temp file, fsync, rename, fsync of the folder);
 *   - documents materialised per second while the store is filled
 *     (transactions of 1,000 documents: journal + files);
 *   - the RSS of the process holding the store open, before and after a
 *     walk over every document;
 *   - replay: documents per second when a writer opens a journal of
 *     10,000 committed documents;
 *   - the outbox's drain rate to an in-process channel that accepts
 *     everything at once (2 SMTP slots, 1 SMS slot).
 * Output: one "name: value unit" line per figure.
 */
#include "log.h"
#include "outbox.h"
#include "store_p.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long rss_kib(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return kib;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An application-like document of about 2 KB. */
static json_object *app_doc(long i)
{
	char buf[64];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(1));
	snprintf(buf, sizeof(buf), "EIMZA-2026-%06ld", i);
	json_object_object_add(o, "id", json_object_new_string(buf));
	json_object_object_add(o, "state", json_object_new_string("credentials_issued"));
	json_object_object_add(o, "name", json_object_new_string("Ayşe Yılmaz (synthetic)"));
	json_object_object_add(o, "email", json_object_new_string("ayse.yilmaz@example.edu.tr"));
	json_object_object_add(o, "phone", json_object_new_string("+905320000000"));
	json_object_object_add(o, "unit", json_object_new_string("Bilgi İşlem Daire Başkanlığı"));
	json_object *h = json_object_new_array();
	for (int k = 0; k < 12; k++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "at", json_object_new_string("2026-11-25T10:00:00Z"));
		json_object_object_add(e, "event", json_object_new_string("reminder_sent"));
		json_object_object_add(e, "by", json_object_new_string("eimzad"));
		json_object_object_add(e, "note", json_object_new_string(
			"Hatırlatma gönderildi / reminder sent to the applicant"));
		json_object_array_add(h, e);
	}
	json_object_object_add(o, "history", h);
	return o;
}

static void die(const char *what, char *err)
{
	fprintf(stderr, "store_bench: %s: %s\n", what, err ? err : "?");
	exit(1);
}

static void fill(struct store *s, long from, long to)
{
	double t0 = now_ms();
	for (long i = from; i < to; i += 1000) {
		struct txn *t = store_begin(s);
		char id[32];
		for (long k = i; k < to && k < i + 1000; k++) {
			snprintf(id, sizeof(id), "A%07ld", k);
			txn_put(t, "apps", id, app_doc(k));
		}
		char *err = NULL;
		if (txn_commit(t, &err) != 0)
			die("fill", err);
	}
	double ms = now_ms() - t0;
	if (to - from >= 1000)
		printf("store.materialise: %.0f docs/s (%ld documents in transactions of 1000)\n",
		       (double)(to - from) / (ms / 1e3), to - from);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define ROUNDS 200

/* One commit: an application document and a notice. */
static double one_commit(struct store *s, int r)
{
	double t0 = now_ms();
	struct txn *t = store_begin(s);
	txn_put(t, "apps", "A0000042", app_doc(r));
	json_object *n = app_doc(r);
	json_object_object_add(n, "kind", json_object_new_string("reminder"));
	txn_put(t, "notices", "n0123456789abcdef0123456789abcdef", n);
	char *err = NULL;
	if (txn_commit(t, &err) != 0)
		die("commit", err);
	return now_ms() - t0;
}

/* The peer: each of the two documents written durably on its own. */
static double one_peer(const char *dir, int r)
{
	char *p1 = xasprintf("%s/peer-app.json", dir), *p2 = xasprintf("%s/peer-notice.json", dir);
	json_object *o = app_doc(r);
	size_t len;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PRETTY, &len);
	double t0 = now_ms();
	if (file_write_atomic(p1, text, len, 0600, NULL) < 0 ||
	    file_write_atomic(p2, text, len, 0600, NULL) < 0)
		die("peer write", NULL);
	double ms = now_ms() - t0;
	json_object_put(o);
	free(p1);
	free(p2);
	return ms;
}

static void report(const char *name, long ndocs, double *v, const char *extra)
{
	qsort(v, ROUNDS, sizeof(double), cmp_double);
	printf("%s[%ld docs]: median %.3f ms, p90 %.3f ms%s\n", name, ndocs, v[ROUNDS / 2],
	       v[ROUNDS * 9 / 10], extra);
}

/* Commits into the small and the large store in turn (the machine's
 * noise falls on both alike), beside the peer. */
static void commit_latency(const char *dir, const char *small, long nsmall, const char *large,
			   long nlarge)
{
	static double a[ROUNDS], b[ROUNDS], p[ROUNDS];
	struct store *sa, *sb;
	char *err = NULL;
	if (store_open(small, STORE_DAEMON, &sa, &err) != 0 ||
	    store_open(large, STORE_DAEMON, &sb, &err) != 0)
		die("open", err);
	struct store_stats a0, a1, b0, b1;
	store_stats(sa, &a0);
	store_stats(sb, &b0);
	for (int r = 0; r < ROUNDS; r++) {
		a[r] = one_commit(sa, r);
		b[r] = one_commit(sb, r);
		p[r] = one_peer(dir, r);
	}
	store_stats(sa, &a1);
	store_stats(sb, &b1);
	char extra[128];
	snprintf(extra, sizeof(extra), ", %.2f fsyncs/commit",
		 (double)(a1.fsyncs - a0.fsyncs) / ROUNDS);
	report("store.commit_latency", nsmall, a, extra);
	snprintf(extra, sizeof(extra), ", %.2f fsyncs/commit",
		 (double)(b1.fsyncs - b0.fsyncs) / ROUNDS);
	report("store.commit_latency", nlarge, b, extra);
	report("peer.two_atomic_writes", 0, p, " (file_write_atomic x2: fsync, rename, fsync dir)");
	store_close(sa);
	store_close(sb);
}

static int walk_cb(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	(void)doc;
	(*(long *)ctx)++;
	return 0;
}

/* In a fresh process (store_bench -r DIR N), so that what the filling
 * left in this one's heap does not count. */
static int rss_figures(const char *sdir, long ndocs)
{
	struct store *s;
	char *err = NULL;
	long before = rss_kib();
	if (store_open(sdir, STORE_DAEMON, &s, &err) != 0)
		die("open", err);
	long opened = rss_kib();
	long n = 0;
	double t0 = now_ms();
	store_foreach(s, "apps", walk_cb, &n);
	double ms = now_ms() - t0;
	printf("store.rss[%ld docs]: %ld KiB before open, %ld KiB open, %ld KiB after walking "
	       "%ld documents (%.0f docs/s read)\n", ndocs, before, opened, rss_kib(), n,
	       (double)n / (ms / 1e3));
	store_close(s);
	return 0;
}

static void rss_in_child(const char *sdir, long ndocs)
{
	char n[32];
	snprintf(n, sizeof(n), "%ld", ndocs);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "store_bench", "-r", sdir, n, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
}

/* A writer opening a journal of committed transactions whose files were
 * never written (as after a crash right after the syncs). */
static void replay_rate(const char *dir)
{
	char *sdir = xasprintf("%s/replay", dir);
	char *err = NULL;
	struct store *s;
	if (store_open(sdir, STORE_DAEMON, &s, &err) != 0)
		die("open", err);
	store_close(s);
	struct buf j = BUF_INIT;
	long total = 10000;
	for (long i = 0; i < total; i += 100) {
		char id[32];
		for (long k = i; k < i + 100; k++) {
			json_object *d = app_doc(k);
			snprintf(id, sizeof(id), "R%07ld", k);
			journal_add_put(&j, (uint64_t)(i / 100 + 1), "apps", id, d);
			json_object_put(d);
		}
		journal_add_commit(&j, (uint64_t)(i / 100 + 1), 100);
	}
	char *jp = xasprintf("%s/journal", sdir);
	if (file_write_atomic(jp, j.p, j.len, 0600, &err) < 0)
		die("journal", err);
	log_setlevel(LOG_LVL_WARN);
	double t0 = now_ms();
	if (store_open(sdir, STORE_DAEMON, &s, &err) != 0)
		die("replay open", err);
	double ms = now_ms() - t0;
	log_setlevel(LOG_LVL_INFO);
	printf("store.replay: %.0f docs/s (%ld documents, %.1f MB of journal, open took %.0f ms)\n",
	       (double)total / (ms / 1e3), total, (double)j.len / 1e6, ms);
	store_close(s);
	buf_free(&j);
	free(jp);
	free(sdir);
}

/* ---- the outbox against a channel that accepts at once ---- */

static int fast_open(struct channel *ch, char **err)
{
	(void)ch;
	(void)err;
	return 0;
}

static void fast_send(struct channel *ch, struct notice *const *batch, size_t n,
		      struct delivery *out)
{
	(void)ch;
	(void)batch;
	for (size_t i = 0; i < n; i++)
		out[i].outcome = DLV_SENT;
}

static void fast_close(struct channel *ch)
{
	(void)ch;
}

static const struct channel_ops fast_ops = {
	.name = "fast", .open = fast_open, .send = fast_send, .close = fast_close,
};

/* The peer for the drain rate: what one bare file replacement (create a
 * temp file, write 1 KB, rename over) costs on this filesystem right now.
 * A notice's life costs about four such operations (notice and pending
 * entry written at queue time; notice rewritten, entry removed after). */
static double file_replace_us(const char *dir)
{
	char *d = xasprintf("%s/peer-replace", dir);
	mkdir(d, 0700);
	char buf[1024];
	memset(buf, 'x', sizeof(buf));
	int n = 1000;
	double t0 = now_ms();
	for (int i = 0; i < n; i++) {
		char *tmp = xasprintf("%s/.f%d.tmp", d, i % 100), *dst = xasprintf("%s/f%d", d, i % 100);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || close(fd) < 0 ||
		    rename(tmp, dst) < 0)
			die("peer replace", NULL);
		free(tmp);
		free(dst);
	}
	double us = (now_ms() - t0) * 1e3 / n;
	rmtree(d);
	free(d);
	return us;
}

static void outbox_rate(const char *dir)
{
	char *sdir = xasprintf("%s/outbox", dir), *err = NULL;
	struct config c;
	config_defaults(&c);
	c.general.institution_domains = strv_add(NULL, "example.edu.tr");
	c.smtp.mail_channel = CHANNEL_SMTP;
	c.sms.sms_channel = CHANNEL_SMS;
	struct channel mail = { .ops = &fast_ops, .conf = &c, .medium = MEDIUM_MAIL };
	struct channel sms = { .ops = &fast_ops, .conf = &c, .medium = MEDIUM_SMS };
	struct channel *chs[2] = { &mail, &sms };
	struct store *s;
	struct outbox *ob;
	if (store_open(sdir, STORE_DAEMON, &s, &err) != 0 ||
	    outbox_open(s, &c, chs, NULL, &ob, &err) != 0)
		die("outbox", err);
	long total = 5000;
	double t0 = now_ms();
	struct txn *t = store_begin(s);
	for (long i = 0; i < total; i++) {
		struct notice *n = notice_new();
		n->medium = i % 3 ? MEDIUM_MAIL : MEDIUM_SMS;
		n->to = xstrdup(n->medium == MEDIUM_SMS ? "+905320000000" : "a@example.edu.tr");
		n->kind = xstrdup("credentials_issued");
		n->subject = xstrdup("E-imza başvurunuz / Your e-signature application");
		n->body = xstrdup("Merhaba, başvuru bağlantınız geldi. / Hello, your link has come.");
		n->dedupe = xasprintf("bench:%ld", i);
		outbox_queue(ob, t, n);
	}
	if (txn_commit(t, &err) != 0)
		die("queue commit", err);
	double queued = now_ms() - t0;
	struct store_stats st0, st1;
	store_stats(s, &st0);
	double t1 = now_ms();
	time_t now = time(NULL);
	double replace_us = file_replace_us(dir);
	double waiting = 0, t2;
	outbox_kick(ob, now);
	while (outbox_in_flight(ob) > 0) {
		struct pollfd p = { .fd = outbox_fd(ob), .events = POLLIN };
		t2 = now_ms();
		poll(&p, 1, 5000);
		waiting += now_ms() - t2;
		if (outbox_collect(ob, now, &err) < 0)
			die("collect", err);
	}
	double ms = now_ms() - t1;
	printf("outbox.drain_split: %.0f ms waiting for outcomes, %.0f ms recording and "
	       "dispatching\n", waiting, ms - waiting);
	printf("peer.file_replace: %.0f us (create, write 1 KB, rename); a drained notice cost "
	       "%.1f of them\n", replace_us, ms * 1e3 / (double)total / replace_us);
	store_stats(s, &st1);
	struct outbox_stats os;
	outbox_stats(ob, &os);
	printf("outbox.queue: %.0f notices/s (%ld in one transaction)\n",
	       (double)total / (queued / 1e3), total);
	printf("outbox.drain: %.0f notices/s (%llu sent in %.0f ms, %llu commits, %.1f notices "
	       "per commit)\n", (double)os.sent / (ms / 1e3), (unsigned long long)os.sent, ms,
	       (unsigned long long)(st1.commits - st0.commits),
	       (double)os.sent / (double)(st1.commits - st0.commits));
	outbox_close(ob, 5000);
	store_close(s);
	config_free(&c);
	free(sdir);
}

int main(int argc, char **argv)
{
	long ndocs = 100000;
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	bool keep = false;
	int opt;
	log_init("store_bench", false);
	while ((opt = getopt(argc, argv, "n:d:kr:")) != -1) {
		switch (opt) {
		case 'r': return rss_figures(optarg, optind < argc ? atol(argv[optind]) : 0);
		case 'n': ndocs = atol(optarg); break;
		case 'd': base = optarg; break;
		case 'k': keep = true; break;
		default:
			fprintf(stderr, "usage: store_bench [-n DOCS] [-d DIR] [-k]\n");
			return 2;
		}
	}
	char *dir = xasprintf("%s/store-bench-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", NULL);
	char *small = xasprintf("%s/small", dir), *large = xasprintf("%s/large", dir), *err = NULL;
	struct store *s;
	if (store_open(small, STORE_DAEMON, &s, &err) != 0)
		die("open", err);
	fill(s, 0, 100);
	store_close(s);
	if (store_open(large, STORE_DAEMON, &s, &err) != 0)
		die("open", err);
	fill(s, 0, ndocs);
	store_close(s);
	sync();         /* let the filling's writeback finish before timing */
	commit_latency(dir, small, 100, large, ndocs);
	rss_in_child(large, ndocs);
	replay_rate(dir);
	outbox_rate(dir);
	if (!keep)
		rmtree(dir);
	else
		printf("kept: %s\n", dir);
	free(small);
	free(large);
	free(dir);
	return 0;
}
