/*
 * store_crash: commits numbered transactions into a state store, and can
 * die (SIGKILL) at a named persistence step, for
 * tests/integration/test_store_crash.py.
 *
 *   store_crash run DIR N [STEP COUNT]
 *       continue from the last transaction found in DIR up to N; print
 *       "committed K" (unbuffered) after each txn_commit returned 0; with
 *       STEP, kill itself at the COUNT-th time the store reaches STEP
 *       (journal_written, journal_synced, committed, applied, flushed,
 *       checkpoint_synced, checkpoint_truncated, journal_zeroed).
 *       Checkpoints are made frequent on purpose (so is the daemon's
 *       zero-filling of the journal's space ahead, which follows each),
 *       and the documents are written as files (store_flush(), as the
 *       daemon does when idle) after every third transaction, so that
 *       kills fall before, during and after flushes.
 *   store_crash verify DIR reader|writer
 *       open, check that the state is exactly what transactions 1..L
 *       make (L = the last one found), print "state L DIGEST", exit 1 and
 *       say why if anything is half-applied.
 *
 * Transaction k writes apps/a<k%13> and notices/n<k%7> (value k), deletes
 * apps/a<(k+6)%13> when k%5 == 0, marks <msg-k@crash.test> seen and sets
 * meta/last to k: all of it or none of it must be there after a crash.
 */
#include "log.h"
#include "store.h"
#include "store_p.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define APP_SLOTS 13
#define NOTICE_SLOTS 7

struct killer {
	const char *step;
	long count;
};

static void maybe_die(void *ctx, const char *step)
{
	struct killer *k = ctx;
	if (k->step != NULL && strcmp(step, k->step) == 0 && --k->count == 0)
		raise(SIGKILL);
}

static json_object *doc_txn(long k)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "txn", json_object_new_int64(k));
	/* vary the size so records straddle checkpoints differently */
	char pad[300];
	size_t n = (size_t)(k * 37 % 250);
	memset(pad, 'p', n);
	pad[n] = '\0';
	json_object_object_add(o, "pad", json_object_new_string(pad));
	return o;
}

/* The txn value of a document, 0 if absent, -1 if malformed. */
static long txn_of(struct store *s, const char *coll, const char *id)
{
	json_object *o = store_get(s, coll, id), *v;
	long r = 0;
	if (o != NULL)
		r = json_object_object_get_ex(o, "txn", &v) ? (long)json_object_get_int64(v) : -1;
	json_object_put(o);
	return r;
}

static void msgid(long k, char *buf, size_t len)
{
	snprintf(buf, len, "<msg-%ld@crash.test>", k);
}

static int run(const char *dir, long n, struct killer *kill)
{
	struct store *s;
	char *err = NULL;
	if (store_open(dir, STORE_DAEMON, &s, &err) != 0) {
		fprintf(stderr, "store_crash: %s\n", err);
		return 1;
	}
	store_set_step_hook(s, maybe_die, kill);
	store_set_checkpoint_bytes(s, 6000);
	for (long k = txn_of(s, "meta", "last") + 1; k <= n; k++) {
		struct txn *t = store_begin(s);
		char id[64];
		snprintf(id, sizeof(id), "a%ld", k % APP_SLOTS);
		txn_put(t, "apps", id, doc_txn(k));
		snprintf(id, sizeof(id), "n%ld", k % NOTICE_SLOTS);
		txn_put(t, "notices", id, doc_txn(k));
		if (k % 5 == 0) {
			snprintf(id, sizeof(id), "a%ld", (k + 6) % APP_SLOTS);
			txn_del(t, "apps", id);
		}
		msgid(k, id, sizeof(id));
		txn_mark_seen(t, id);
		txn_put(t, "meta", "last", doc_txn(k));
		if (txn_commit(t, &err) != 0) {
			fprintf(stderr, "store_crash: commit %ld: %s\n", k, err);
			return 1;
		}
		char line[64];
		int len = snprintf(line, sizeof(line), "committed %ld\n", k);
		if (write(1, line, (size_t)len) != len)
			return 1;
		if (k % 3 == 0 && store_flush(s, &err) != 0) {
			fprintf(stderr, "store_crash: flush after %ld: %s\n", k, err);
			return 1;
		}
	}
	store_close(s);
	return 0;
}

/* The last transaction (<= last) that wrote or deleted an app slot:
 * positive for a put, negative for a delete, 0 for none. */
static long expect_app(long slot, long last)
{
	for (long k = last; k >= 1; k--) {
		if (k % APP_SLOTS == slot)
			return k;
		if (k % 5 == 0 && (k + 6) % APP_SLOTS == slot)
			return -k;
	}
	return 0;
}

static int check(struct store *s, long last, struct buf *digest)
{
	char id[64];
	for (long j = 0; j < APP_SLOTS; j++) {
		long want = expect_app(j, last), got;
		want = want < 0 ? 0 : want;
		snprintf(id, sizeof(id), "a%ld", j);
		if ((got = txn_of(s, "apps", id)) != want)
			return fprintf(stdout, "bad apps/%s: %ld, want %ld (last %ld)\n", id, got, want, last), 1;
		buf_printf(digest, "%ld,", got);
	}
	for (long j = 0; j < NOTICE_SLOTS; j++) {
		long want = 0, got;
		for (long k = last; k >= 1 && want == 0; k--)
			if (k % NOTICE_SLOTS == j)
				want = k;
		snprintf(id, sizeof(id), "n%ld", j);
		if ((got = txn_of(s, "notices", id)) != want)
			return fprintf(stdout, "bad notices/%s: %ld, want %ld\n", id, got, want), 1;
		buf_printf(digest, "%ld,", got);
	}
	for (long k = 1; k <= last + 2; k++) {
		msgid(k, id, sizeof(id));
		if (store_seen(s, id) != (k <= last))
			return fprintf(stdout, "bad seen %ld (last %ld)\n", k, last), 1;
	}
	return 0;
}

static int verify(const char *dir, const char *how)
{
	struct store *s;
	char *err = NULL;
	enum store_mode mode = strcmp(how, "reader") == 0 ? STORE_READER : STORE_WRITER;
	if (store_open(dir, mode, &s, &err) != 0) {
		fprintf(stdout, "bad open: %s\n", err);
		return 1;
	}
	long last = txn_of(s, "meta", "last");
	struct buf digest = BUF_INIT;
	int rc = last < 0 ? 1 : check(s, last, &digest);
	if (rc == 0)
		printf("state %ld %s\n", last, digest.p ? digest.p : "");
	buf_free(&digest);
	store_close(s);
	return rc;
}

int main(int argc, char **argv)
{
	log_init("store_crash", false);
	if (argc >= 4 && strcmp(argv[1], "run") == 0) {
		struct killer k = { 0 };
		if (argc >= 6) {
			k.step = argv[4];
			k.count = atol(argv[5]);
		}
		return run(argv[2], atol(argv[3]), &k);
	}
	if (argc == 4 && strcmp(argv[1], "verify") == 0)
		return verify(argv[2], argv[3]);
	fprintf(stderr, "usage: store_crash run DIR N [STEP COUNT] | verify DIR reader|writer\n");
	return 2;
}
