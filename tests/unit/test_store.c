/* Unit tests of the state store: documents across reopen, transactions,
 * the lock, readers, journal damage, damaged documents, file modes and
 * the cost of a commit. */
#include "testutil.h"

#include "log.h"
#include "store.h"
#include "store_p.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static json_object *doc_x(int x)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "x", json_object_new_int(x));
	json_object_object_add(o, "path", json_object_new_string("a/b ş"));
	return o;
}

/* x of coll/id, or -1 if absent. */
static int get_x(struct store *s, const char *coll, const char *id)
{
	json_object *o = store_get(s, coll, id), *v;
	int x = -1;
	if (o != NULL && json_object_object_get_ex(o, "x", &v))
		x = json_object_get_int(v);
	json_object_put(o);
	return x;
}

static struct store *open_ok(const char *dir, enum store_mode mode)
{
	struct store *s = NULL;
	char *err = NULL;
	int rc = store_open(dir, mode, &s, &err);
	if (rc != 0)
		fail_msg("store_open %s: %s", dir, err ? err : "?");
	return s;
}

static void commit_ok(struct txn *t)
{
	char *err = NULL;
	if (txn_commit(t, &err) != 0)
		fail_msg("commit: %s", err ? err : "?");
}

/* One transaction putting doc_x(x) as coll/id, committed. */
static void put_ok(struct store *s, const char *coll, const char *id, int x)
{
	struct txn *t = store_begin(s);
	txn_put(t, coll, id, doc_x(x));
	commit_ok(t);
}

static int count_cb(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	(void)doc;
	(*(int *)ctx)++;
	return 0;
}

static int foreach_count(struct store *s, const char *coll)
{
	int n = 0;
	store_foreach(s, coll, count_cb, &n);
	return n;
}

static bool path_exists(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static mode_t mode_of(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	if (stat(p, &st) < 0)
		fail_msg("stat %s", p);
	free(p);
	return st.st_mode & 07777;
}

/* Run fn with stderr going to a buffer; returns what was written. */
static char *capture_stderr(void (*fn)(void *), void *ctx)
{
	char *dir = tu_tmpdir();
	char *path = xasprintf("%s/err", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int saved = dup(2);
	dup2(fd, 2);
	fn(ctx);
	dup2(saved, 2);
	close(saved);
	close(fd);
	struct buf b = BUF_INIT;
	file_read(path, 0, &b, NULL);
	free(path);
	tu_rmtree(dir);
	free(dir);
	return buf_steal(&b);
}

static void write_file(const char *dir, const char *rel, const char *data, size_t n)
{
	char *p = xasprintf("%s/%s", dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n)
		fail_msg("write %s", p);
	close(fd);
	free(p);
}

/* ---- tests ---- */

static void test_id_valid(void **state)
{
	(void)state;
	static const struct { const char *id; bool ok; } cases[] = {
		{ "EIMZA-2026-0001", true }, { "n0123abcdef", true }, { "a@b.c+d_e", true },
		{ "", false }, { ".hidden", false }, { "a/b", false }, { "a b", false },
		{ "ş", false }, { "..", false }, { "a.json", true },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		assert_int_equal(store_id_valid(cases[i].id), cases[i].ok);
	char long_id[200];
	memset(long_id, 'a', sizeof(long_id));
	long_id[128] = '\0';
	assert_true(store_id_valid(long_id));
	long_id[128] = 'a';
	long_id[129] = '\0';
	assert_false(store_id_valid(long_id));
}

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(store_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(store_crc32("", 0), 0);
}

static void test_put_get_across_reopen(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *sdir = xasprintf("%s/state", dir);
	struct store *s = open_ok(sdir, STORE_DAEMON);
	struct txn *t = store_begin(s);
	txn_put(t, "apps", "A1", doc_x(1));
	txn_put(t, "apps", "A2", doc_x(2));
	txn_put(t, "notices", "n1", doc_x(3));
	txn_mark_seen(t, "<m1@example.org>");
	commit_ok(t);
	assert_int_equal(get_x(s, "apps", "A1"), 1);
	assert_true(store_seen(s, "m1@example.org"));
	assert_true(store_seen(s, " <m1@example.org> "));
	assert_false(store_seen(s, "<m2@example.org>"));
	assert_int_equal(foreach_count(s, "apps"), 2);
	assert_int_equal(store_count(s, "apps"), 2);
	assert_int_equal(store_count(s, "nothing"), 0);
	store_close(s);

	s = open_ok(sdir, STORE_DAEMON);
	assert_int_equal(get_x(s, "apps", "A2"), 2);
	assert_int_equal(get_x(s, "notices", "n1"), 3);
	assert_true(store_seen(s, "<m1@example.org>"));
	t = store_begin(s);
	txn_del(t, "apps", "A1");
	txn_put(t, "apps", "A2", doc_x(22));
	commit_ok(t);
	store_close(s);

	s = open_ok(sdir, STORE_WRITER);
	assert_int_equal(get_x(s, "apps", "A1"), -1);
	assert_int_equal(get_x(s, "apps", "A2"), 22);
	assert_int_equal(store_count(s, "apps"), 1);
	/* the files are what jq reads: pretty, unescaped slashes */
	struct buf b = BUF_INIT;
	char *p = xasprintf("%s/apps/A2.json", sdir);
	assert_int_equal(file_read(p, 0, &b, NULL), 0);
	assert_non_null(strstr(b.p, "\"path\": \"a/b ş\""));
	assert_non_null(strchr(b.p, '\n'));
	buf_free(&b);
	free(p);
	store_close(s);
	free(sdir);
	tu_rmtree(dir);
	free(dir);
}

static void test_txn_reads_own_writes(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	put_ok(s, "apps", "A", 1);

	struct txn *t = store_begin(s);
	assert_true(txn_empty(t));
	json_object *o = txn_get(t, "apps", "A");
	assert_non_null(o);
	json_object_object_add(o, "x", json_object_new_int(5));
	txn_put(t, "apps", "A", o);
	assert_false(txn_empty(t));
	json_object *o2 = txn_get(t, "apps", "A");
	/* a copy: changing it leaves the pending write alone */
	json_object_object_add(o2, "x", json_object_new_int(99));
	json_object_put(o2);
	assert_int_equal(get_x(s, "apps", "A"), 1);        /* not committed yet */
	json_object *o3 = txn_get(t, "apps", "A"), *v;
	assert_true(json_object_object_get_ex(o3, "x", &v));
	assert_int_equal(json_object_get_int(v), 5);
	json_object_put(o3);
	txn_put(t, "apps", "B", doc_x(2));
	assert_true(txn_exists(t, "apps", "B"));
	txn_del(t, "apps", "B");
	assert_false(txn_exists(t, "apps", "B"));
	assert_null(txn_get(t, "apps", "B"));
	txn_abort(t);
	assert_int_equal(get_x(s, "apps", "A"), 1);
	assert_false(path_exists(dir, "apps/B.json"));

	/* a misuse makes the commit refuse, and nothing is written */
	t = store_begin(s);
	txn_put(t, "apps", "C", doc_x(3));
	txn_put(t, "apps", "../x", doc_x(4));
	char *err = NULL;
	assert_int_equal(txn_commit(t, &err), -1);
	assert_non_null(err);
	free(err);
	assert_int_equal(get_x(s, "apps", "C"), -1);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

struct done_log {
	int committed, aborted;
};

static void on_done(void *ctx, bool committed)
{
	struct done_log *d = ctx;
	if (committed)
		d->committed++;
	else
		d->aborted++;
}

static void test_txn_on_done(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	struct done_log d = { 0 };
	struct txn *t = store_begin(s);
	txn_on_done(t, on_done, &d);
	txn_put(t, "apps", "A", doc_x(1));
	commit_ok(t);
	t = store_begin(s);
	txn_on_done(t, on_done, &d);
	txn_abort(t);
	t = store_begin(s);
	txn_on_done(t, on_done, &d);
	txn_del(t, "BAD", "x");
	assert_int_equal(txn_commit(t, NULL), -1);
	assert_int_equal(d.committed, 1);
	assert_int_equal(d.aborted, 2);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

static void test_lock_busy(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s = NULL;
		char c = store_open(dir, STORE_DAEMON, &s, NULL) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(2);
		store_close(s);
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	char want[32];
	snprintf(want, sizeof(want), "process %ld", (long)pid);
	static const enum store_mode modes[] = { STORE_DAEMON, STORE_WRITER };
	for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
		struct store *s = NULL;
		char *err = NULL;
		assert_int_equal(store_open(dir, modes[i], &s, &err), STORE_EBUSY);
		assert_non_null(err);
		assert_non_null(strstr(err, want));
		free(err);
	}
	struct store *r = open_ok(dir, STORE_READER);      /* a reader needs no lock */
	store_close(r);
	assert_int_equal(write(go[1], "x", 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* free again; and a second open within one process is refused too */
	struct store *s = open_ok(dir, STORE_DAEMON), *s2 = NULL;
	char *err = NULL;
	assert_int_equal(store_open(dir, STORE_WRITER, &s2, &err), STORE_EBUSY);
	snprintf(want, sizeof(want), "process %ld", (long)getpid());
	assert_non_null(strstr(err, want));
	free(err);
	store_close(s);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	tu_rmtree(dir);
	free(dir);
}

/* Step hook of a child: die right after the journal sync of the 2nd
 * commit, before any document file is written. */
static int die_after_sync_count;
static void die_after_sync(void *ctx, const char *stepname)
{
	(void)ctx;
	if (strcmp(stepname, "journal_synced") == 0 && --die_after_sync_count == 0)
		_exit(0);
}

static void test_reader_sees_journal_only(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	pid_t pid = fork();
	if (pid == 0) {
		struct store *s = open_ok(dir, STORE_DAEMON);
		die_after_sync_count = 2;
		store_set_step_hook(s, die_after_sync, NULL);
		struct txn *t = store_begin(s);
		txn_put(t, "apps", "A", doc_x(1));
		txn_put(t, "apps", "B", doc_x(2));
		commit_ok(t);
		if (store_flush(s, NULL) < 0)
			_exit(4);
		t = store_begin(s);
		txn_put(t, "apps", "C", doc_x(3));
		txn_put(t, "apps", "A", doc_x(11));
		txn_del(t, "apps", "B");
		txn_mark_seen(t, "<m@x>");
		txn_commit(t, NULL);
		_exit(3);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* the second transaction is only in the journal */
	assert_false(path_exists(dir, "apps/C.json"));
	assert_true(path_exists(dir, "apps/B.json"));

	struct store *r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "A"), 11);
	assert_int_equal(get_x(r, "apps", "B"), -1);
	assert_int_equal(get_x(r, "apps", "C"), 3);
	assert_true(store_seen(r, "m@x"));
	assert_int_equal(foreach_count(r, "apps"), 2);
	assert_int_equal(store_count(r, "apps"), 2);
	assert_int_equal(txn_commit(store_begin(r), NULL), 0);   /* empty: fine */
	struct txn *t = store_begin(r);
	txn_put(t, "apps", "D", doc_x(4));
	assert_int_equal(txn_commit(t, NULL), -1);               /* read-only */
	store_close(r);
	assert_false(path_exists(dir, "apps/C.json"));            /* a reader never writes */

	struct store *s = open_ok(dir, STORE_WRITER);             /* replays onto files */
	assert_true(path_exists(dir, "apps/C.json"));
	assert_false(path_exists(dir, "apps/B.json"));
	assert_int_equal(get_x(s, "apps", "A"), 11);
	assert_true(store_seen(s, "m@x"));
	struct store_stats ss;
	store_stats(s, &ss);
	assert_int_equal(ss.journal_bytes, 0);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

/* A journal written by hand: txn 1 puts A=1 and B=1; txn 2 puts A=2 and
 * C=2, deletes B and marks a message seen. */
static void build_journal(struct buf *b, size_t *txn2_start)
{
	json_object *d;
	journal_add_put(b, 1, "apps", "A", d = doc_x(1));
	json_object_put(d);
	journal_add_put(b, 1, "apps", "B", d = doc_x(1));
	json_object_put(d);
	journal_add_commit(b, 1, 2);
	*txn2_start = b->len;
	journal_add_put(b, 2, "apps", "A", d = doc_x(2));
	json_object_put(d);
	journal_add_put(b, 2, "apps", "C", d = doc_x(2));
	json_object_put(d);
	journal_add_del(b, 2, "apps", "B");
	journal_add_seen(b, 2, store_seen_hash("<t2@x>"));
	journal_add_commit(b, 2, 4);
}

/* 1 if the state is txn 1's, 2 if txn 2's, 0 if neither (half-applied). */
static int which_state(struct store *s)
{
	int a = get_x(s, "apps", "A"), b = get_x(s, "apps", "B"), c = get_x(s, "apps", "C");
	bool seen = store_seen(s, "t2@x");
	if (a == 1 && b == 1 && c == -1 && !seen && store_count(s, "apps") == 2)
		return 1;
	if (a == 2 && b == -1 && c == 2 && seen && store_count(s, "apps") == 2)
		return 2;
	return 0;
}

static void quiet(void)
{
	log_setlevel(LOG_LVL_ERR);
}

static void test_torn_tail_every_offset(void **state)
{
	(void)state;
	quiet();
	struct buf j = BUF_INIT;
	size_t start;
	build_journal(&j, &start);
	char *dir = tu_tmpdir();
	struct buf padded = BUF_INIT;
	for (size_t cut = start; cut <= j.len; cut++) {
		char *sdir = xasprintf("%s/s%zu", dir, cut);
		mkdir(sdir, 0700);
		/* the daemon's journal: the content, then zeroed space */
		buf_reset(&padded);
		buf_add(&padded, j.p, cut);
		buf_reserve(&padded, 700);
		memset(padded.p + padded.len, 0, 700);
		padded.len += 700;
		write_file(sdir, "journal", padded.p, padded.len);
		struct store *r = open_ok(sdir, STORE_READER);
		int want = cut == j.len ? 2 : 1;
		if (which_state(r) != want)
			fail_msg("reader, zero-padded journal cut at %zu of %zu: state %d", cut, j.len,
				 which_state(r));
		store_close(r);
		write_file(sdir, "journal", j.p, cut);
		r = open_ok(sdir, STORE_READER);
		if (which_state(r) != want)
			fail_msg("reader, journal cut at %zu of %zu: state %d", cut, j.len,
				 which_state(r));
		store_close(r);
		/* a writer at some offsets (each open syncs the filesystem) */
		if (cut == start || cut == j.len || cut == j.len - 1 || cut % 41 == 0) {
			struct store *s = open_ok(sdir, STORE_WRITER);
			assert_int_equal(which_state(s), want);
			store_close(s);
			s = open_ok(sdir, STORE_WRITER);    /* and again: nothing changes */
			assert_int_equal(which_state(s), want);
			put_ok(s, "apps", "D", 9);      /* the journal takes new commits */
			store_close(s);
			s = open_ok(sdir, STORE_READER);
			assert_int_equal(get_x(s, "apps", "D"), 9);
			store_close(s);
		}
		tu_rmtree(sdir);
		free(sdir);
	}
	buf_free(&padded);
	buf_free(&j);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

struct open_ctx {
	const char *dir;
	struct store *s;
	int rc;
};

static void open_in(void *p)
{
	struct open_ctx *c = p;
	c->rc = store_open(c->dir, STORE_WRITER, &c->s, NULL);
}

/* Policy: a damaged record followed by intact ones drops its transaction,
 * keeps the later ones, names the offset, and keeps a copy of the journal. */
static void test_corrupt_middle(void **state)
{
	(void)state;
	struct buf j = BUF_INIT;
	size_t start;
	build_journal(&j, &start);
	json_object *d;
	journal_add_put(&j, 3, "apps", "E", d = doc_x(3));
	json_object_put(d);
	journal_add_commit(&j, 3, 1);
	/* damage txn 2's second record (put C) */
	char *rec = strstr(j.p + start, "\"id\":\"C\"");
	rec[7] = 'X';
	size_t bad_off = start;          /* the start of the damaged line */
	for (const char *p = j.p + start; p < rec; p++)
		if (*p == '\n')
			bad_off = (size_t)(p - j.p) + 1;
	char *dir = tu_tmpdir();
	write_file(dir, "journal", j.p, j.len);
	struct open_ctx c = { .dir = dir };
	char *log = capture_stderr(open_in, &c);
	assert_int_equal(c.rc, 0);
	char want[64];
	snprintf(want, sizeof(want), "offset %zu", bad_off);
	if (strstr(log, want) == NULL)
		fail_msg("log does not name %s:\n%s", want, log);
	free(log);
	/* txn 1 and txn 3 are there, txn 2 not at all */
	assert_int_equal(get_x(c.s, "apps", "A"), 1);
	assert_int_equal(get_x(c.s, "apps", "B"), 1);
	assert_int_equal(get_x(c.s, "apps", "C"), -1);
	assert_int_equal(get_x(c.s, "apps", "E"), 3);
	assert_false(store_seen(c.s, "t2@x"));
	store_close(c.s);
	DIR *dd = opendir(dir);
	struct dirent *e;
	int saved = 0;
	while ((e = readdir(dd)) != NULL)
		saved += str_startswith(e->d_name, "journal.corrupt.");
	closedir(dd);
	assert_int_equal(saved, 1);
	tu_rmtree(dir);
	free(dir);
	buf_free(&j);
}

static void test_unknown_version_refused(void **state)
{
	(void)state;
	quiet();
	struct buf j = BUF_INIT;
	size_t start = j.len;
	buf_adds(&j, "{\"v\":2,\"t\":1,\"op\":\"commit\",\"n\":0");
	uint32_t crc = store_crc32(j.p + start, j.len - start);
	buf_printf(&j, ",\"crc\":\"%08x\"}\n", crc);
	char *dir = tu_tmpdir();
	write_file(dir, "journal", j.p, j.len);
	struct store *s = NULL;
	char *err = NULL;
	assert_int_equal(store_open(dir, STORE_WRITER, &s, &err), -1);
	assert_non_null(strstr(err, "version 2"));
	free(err);
	/* the journal is left alone */
	assert_int_equal(mode_of(dir, "journal") & 0777, 0600);
	struct stat st;
	char *p = xasprintf("%s/journal", dir);
	stat(p, &st);
	free(p);
	assert_int_equal((size_t)st.st_size, j.len);
	buf_free(&j);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

static void test_corrupt_document(void **state)
{
	(void)state;
	quiet();
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	struct txn *t = store_begin(s);
	txn_put(t, "apps", "good", doc_x(1));
	txn_put(t, "apps", "bad1", doc_x(2));
	txn_put(t, "apps", "bad2", doc_x(3));
	commit_ok(t);
	assert_int_equal(store_flush(s, NULL), 0);          /* the files, then damage them */
	write_file(dir, "apps/bad1.json", "{\"x\": 1,", 8);
	write_file(dir, "apps/bad2.json", "[1, 2]\n", 7);
	write_file(dir, "apps/bad3.json", "{} trailing", 11);
	assert_int_equal(foreach_count(s, "apps"), 1);
	assert_null(store_get(s, "apps", "bad1"));
	assert_false(path_exists(dir, "apps/bad1.json"));
	char *cdir = xasprintf("%s/apps/corrupt", dir);
	DIR *d = opendir(cdir);
	free(cdir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += str_startswith(e->d_name, "bad");
	closedir(d);
	assert_int_equal(n, 3);
	assert_int_equal(mode_of(dir, "apps/corrupt"), 0700);
	assert_int_equal(get_x(s, "apps", "good"), 1);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

static void check_modes(const char *sdir)
{
	static const struct { const char *rel; mode_t mode; } want[] = {
		{ "", 0700 }, { "apps", 0700 }, { "apps/A.json", 0600 }, { "journal", 0600 },
		{ "lock", 0600 }, { "seen", 0600 },
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++)
		if (mode_of(sdir, want[i].rel) != want[i].mode)
			fail_msg("%s/%s: mode %03o, want %03o", sdir, want[i].rel,
				 (unsigned)mode_of(sdir, want[i].rel), (unsigned)want[i].mode);
}

static void test_modes_whatever_the_umask(void **state)
{
	(void)state;
	static const mode_t masks[] = { 0, 0022, 0277 };
	char *dir = tu_tmpdir();
	for (size_t i = 0; i < ARRAY_LEN(masks); i++) {
		mode_t old = umask(masks[i]);
		char *sdir = xasprintf("%s/state%zu/deeper", dir, i);
		struct store *s = open_ok(sdir, STORE_DAEMON);
		struct txn *t = store_begin(s);
		txn_put(t, "apps", "A", doc_x(1));
		txn_mark_seen(t, "m");
		commit_ok(t);
		store_close(s);
		umask(old);
		check_modes(sdir);
		free(sdir);
	}
	tu_rmtree(dir);
	free(dir);
}

/* A commit costs one fdatasync whether the store holds 10 or 1,000
 * documents. */
static void test_commit_cost(void **state)
{
	(void)state;
	static const int sizes[] = { 10, 1000 };
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		char *dir = tu_tmpdir();
		struct store *s = open_ok(dir, STORE_DAEMON);
		struct txn *t = store_begin(s);
		for (int k = 0; k < sizes[i]; k++) {
			char id[32];
			snprintf(id, sizeof(id), "A%d", k);
			txn_put(t, "apps", id, doc_x(k));
		}
		commit_ok(t);
		for (int round = 0; round < 5; round++) {
			struct store_stats before, after;
			store_stats(s, &before);
			t = store_begin(s);
			txn_put(t, "apps", "A3", doc_x(round));
			txn_put(t, "notices", "n1", doc_x(round));
			txn_mark_seen(t, "x");
			commit_ok(t);
			store_stats(s, &after);
			assert_int_equal(after.fsyncs - before.fsyncs, 1);
			assert_int_equal(after.commits - before.commits, 1);
			assert_int_equal(after.records - before.records, 3);
			/* and no document file: they wait for the next flush */
			assert_int_equal(after.files_written, before.files_written);
		}
		assert_int_equal(store_count(s, "apps"), (size_t)sizes[i]);
		store_close(s);
		tu_rmtree(dir);
		free(dir);
	}
}

static void test_checkpoint(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	store_set_checkpoint_bytes(s, 2000);
	struct store_stats st;
	for (int k = 0; k < 50; k++) {
		struct txn *t = store_begin(s);
		char mid[32];
		snprintf(mid, sizeof(mid), "<m%d@x>", k);
		txn_put(t, "apps", "A", doc_x(k));
		txn_mark_seen(t, mid);
		commit_ok(t);
		store_stats(s, &st);
		assert_true(st.journal_bytes <= 2000);
	}
	assert_true(st.fsyncs > 50);            /* checkpoints happened */
	store_close(s);
	s = open_ok(dir, STORE_READER);
	for (int k = 0; k < 50; k++) {
		char mid[32];
		snprintf(mid, sizeof(mid), "m%d@x", k);
		assert_true(store_seen(s, mid));
	}
	assert_int_equal(get_x(s, "apps", "A"), 49);
	store_close(s);
	/* the seen file holds one hash per line */
	struct buf b = BUF_INIT;
	char *p = xasprintf("%s/seen", dir);
	assert_int_equal(file_read(p, 0, &b, NULL), 0);
	assert_int_equal(b.len, 50 * 17);
	buf_free(&b);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

static void test_temp_files_cleaned(void **state)
{
	(void)state;
	quiet();
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	put_ok(s, "apps", "A", 1);
	store_close(s);
	/* what a crash during an apply leaves: a temp file and the journal */
	write_file(dir, "apps/.B.json.tmp", "{\"x\":", 5);
	struct buf j = BUF_INIT;
	json_object *d;
	journal_add_put(&j, 7, "apps", "B", d = doc_x(2));
	json_object_put(d);
	journal_add_commit(&j, 7, 1);
	write_file(dir, "journal", j.p, j.len);
	buf_free(&j);
	s = open_ok(dir, STORE_DAEMON);
	assert_false(path_exists(dir, "apps/.B.json.tmp"));
	assert_int_equal(get_x(s, "apps", "B"), 2);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}


/* x as the file on disk says (what jq sees), -1 if there is no file. */
static int file_x(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct buf b = BUF_INIT;
	int x = -1;
	if (file_read(p, 0, &b, NULL) == 0) {
		json_object *o = json_tokener_parse(b.p), *v;
		if (o != NULL && json_object_object_get_ex(o, "x", &v))
			x = json_object_get_int(v);
		json_object_put(o);
	}
	buf_free(&b);
	free(p);
	return x;
}

static size_t pending_of(struct store *s)
{
	struct store_stats st;
	store_stats(s, &st);
	return st.pending;
}

/* Write-behind: a commit writes the journal only; every read sees the
 * committed documents at once; files appear at a flush, with only the
 * newest version; a reader sees what is pending through the journal. */
static void test_write_behind(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	struct txn *t = store_begin(s);
	txn_put(t, "apps", "A", doc_x(1));
	txn_put(t, "apps", "B", doc_x(2));
	commit_ok(t);
	assert_false(path_exists(dir, "apps"));             /* not even the folder */
	assert_int_equal(pending_of(s), 2);
	assert_int_equal(get_x(s, "apps", "A"), 1);
	assert_int_equal(foreach_count(s, "apps"), 2);
	assert_int_equal(store_count(s, "apps"), 2);
	t = store_begin(s);
	assert_true(txn_exists(t, "apps", "B"));
	json_object *o = txn_get(t, "apps", "B"), *v;
	assert_true(json_object_object_get_ex(o, "path", &v));
	assert_string_equal(json_object_get_string(v), "a/b ş");
	json_object_put(o);
	txn_put(t, "apps", "A", doc_x(11));
	txn_del(t, "apps", "B");
	commit_ok(t);
	assert_int_equal(get_x(s, "apps", "A"), 11);
	assert_int_equal(get_x(s, "apps", "B"), -1);
	assert_int_equal(store_count(s, "apps"), 1);
	assert_int_equal(pending_of(s), 2);

	/* a reader (eimzactl with the daemon stopped) sees it through the journal */
	struct store *r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "A"), 11);
	assert_int_equal(get_x(r, "apps", "B"), -1);
	store_close(r);

	struct store_stats st;
	assert_int_equal(store_flush(s, NULL), 0);
	store_stats(s, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.files_written, 2);              /* A written, B: nothing to remove */
	assert_int_equal(st.flushes, 1);
	assert_true(st.journal_bytes > 0);                  /* a flush is no checkpoint */
	assert_int_equal(file_x(dir, "apps/A.json"), 11);
	assert_false(path_exists(dir, "apps/B.json"));
	assert_int_equal(mode_of(dir, "apps/A.json"), 0600);
	assert_int_equal(get_x(s, "apps", "A"), 11);         /* now from the file */
	assert_int_equal(store_count(s, "apps"), 1);

	/* a change waits in memory; the file keeps the previous version */
	put_ok(s, "apps", "A", 12);
	assert_int_equal(file_x(dir, "apps/A.json"), 11);
	assert_int_equal(get_x(s, "apps", "A"), 12);
	assert_int_equal(foreach_count(s, "apps"), 1);
	store_close(s);                                     /* close writes it */
	assert_int_equal(file_x(dir, "apps/A.json"), 12);
	assert_false(path_exists(dir, "apps/.A.json.tmp"));
	tu_rmtree(dir);
	free(dir);
}

/* The names that inotify reported for a folder (read without waiting). */
static char **inotify_names(int fd)
{
	char **names = NULL;
	char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(fd, ev, sizeof(ev))) > 0) {
		for (char *p = ev; p < ev + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->len > 0)
				names = strv_add(names, e->name);
			p += sizeof(*e) + e->len;
		}
	}
	return names;
}

/* A document created and deleted between two flushes (the outbox's queue
 * entries) never reaches the disk, not even as a temp file. */
static void test_created_and_deleted_never_on_disk(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	put_ok(s, "outq", "keep", 1);
	assert_int_equal(store_flush(s, NULL), 0);
	char *folder = xasprintf("%s/outq", dir);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(in >= 0);
	assert_true(inotify_add_watch(in, folder, IN_CREATE | IN_MOVED_TO | IN_DELETE |
				      IN_MODIFY) >= 0);
	struct txn *t;
	for (int k = 0; k < 3; k++) {
		t = store_begin(s);
		txn_put(t, "outq", "q1", doc_x(k));
		txn_put(t, "notices", "n1", doc_x(k));
		commit_ok(t);
		assert_int_equal(get_x(s, "outq", "q1"), k);
		t = store_begin(s);
		txn_del(t, "outq", "q1");
		txn_put(t, "notices", "n1", doc_x(10 + k));
		commit_ok(t);
	}
	/* and one created in the same transaction that deletes it */
	t = store_begin(s);
	txn_put(t, "outq", "q2", doc_x(5));
	txn_del(t, "outq", "q2");
	commit_ok(t);
	assert_int_equal(get_x(s, "outq", "q1"), -1);
	assert_int_equal(store_count(s, "outq"), 1);
	assert_int_equal(store_flush(s, NULL), 0);
	char **names = inotify_names(in);
	if (names != NULL)
		fail_msg("outq/ saw %s (and %zu more)", names[0], strv_len(names) - 1);
	assert_int_equal(file_x(dir, "notices/n1.json"), 12);
	assert_false(path_exists(dir, "outq/q1.json"));
	assert_int_equal(store_count(s, "outq"), 1);
	close(in);
	free(folder);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

/* When store_tick() flushes: ~1 s after the last commit, or once the
 * oldest pending document waited its longest, never for a reader. */
static void test_flush_due(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	assert_int_equal(store_flush_due(s), 0);            /* nothing pending */
	int64_t before = mono_ms();
	put_ok(s, "apps", "A", 1);
	int64_t after = mono_ms(), due = store_flush_due(s);
	assert_true(due >= before + STORE_FLUSH_IDLE_MS && due <= after + STORE_FLUSH_IDLE_MS);
	store_tick(s);                                      /* not due yet */
	assert_int_equal(pending_of(s), 1);
	store_set_flush_delays(s, 0, 60000);                /* idle at once */
	store_tick(s);
	assert_int_equal(pending_of(s), 0);
	assert_int_equal(store_flush_due(s), 0);
	assert_true(path_exists(dir, "apps/A.json"));

	/* under a steady flow: the oldest pending document's age decides */
	store_set_flush_delays(s, 60000, 0);
	put_ok(s, "apps", "B", 2);
	assert_true(store_flush_due(s) <= mono_ms());
	store_tick(s);
	assert_true(path_exists(dir, "apps/B.json"));

	/* after a burst, a bounded part a tick, and the deadline stays passed */
	struct txn *t = store_begin(s);
	for (int k = 0; k < STORE_TICK_DOCS * 2 + 10; k++) {
		char id[16];
		snprintf(id, sizeof(id), "N%d", k);
		txn_put(t, "notices", id, doc_x(k));
	}
	commit_ok(t);
	store_tick(s);
	assert_int_equal(pending_of(s), STORE_TICK_DOCS + 10);
	assert_true(store_flush_due(s) <= mono_ms());
	store_tick(s);
	store_tick(s);
	assert_int_equal(pending_of(s), 0);
	assert_int_equal(store_count(s, "notices"), STORE_TICK_DOCS * 2 + 10);

	struct store *r = open_ok(dir, STORE_READER);
	assert_int_equal(store_flush_due(r), 0);
	assert_int_equal(store_flush(r, NULL), 0);
	store_close(r);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

/* A document whose file cannot be written stays pending and in the
 * journal (no checkpoint truncates it); the others are written; a later
 * flush writes it; a flush failure backs off store_tick(). */
static void test_flush_failure_keeps_journal(void **state)
{
	(void)state;
	quiet();
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	put_ok(s, "apps", "A", 1);
	assert_int_equal(store_flush(s, NULL), 0);
	char *blocker = xasprintf("%s/apps/X.json", dir);
	assert_int_equal(mkdir(blocker, 0700), 0);          /* rename onto it fails */
	struct txn *t = store_begin(s);
	txn_put(t, "apps", "X", doc_x(7));
	txn_put(t, "apps", "Y", doc_x(8));
	commit_ok(t);
	char *err = NULL;
	assert_int_equal(store_flush(s, &err), -1);
	assert_non_null(strstr(err, "X.json"));
	free(err);
	err = NULL;
	assert_int_equal(pending_of(s), 1);
	assert_int_equal(file_x(dir, "apps/Y.json"), 8);
	assert_int_equal(get_x(s, "apps", "X"), 7);
	assert_true(store_flush_due(s) >= mono_ms() + STORE_FLUSH_RETRY_MS - 1000);
	assert_int_equal(store_checkpoint(s, &err), -1);
	free(err);
	struct store_stats st;
	store_stats(s, &st);
	assert_true(st.journal_bytes > 0);
	/* a reader still sees X through the journal */
	struct store *r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "X"), 7);
	store_close(r);
	assert_int_equal(rmdir(blocker), 0);
	assert_int_equal(store_checkpoint(s, NULL), 0);
	assert_int_equal(file_x(dir, "apps/X.json"), 7);
	store_stats(s, &st);
	assert_int_equal(st.journal_bytes, 0);
	assert_int_equal(st.pending, 0);
	free(blocker);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

/* Step hook of a child: SIGKILL right after the n-th commit returned to
 * the store's bookkeeping (journal synced, hooks run, no file written). */
static int kill_after_commits;
static void kill_after_commit(void *ctx, const char *stepname)
{
	(void)ctx;
	if (strcmp(stepname, "committed") == 0 && --kill_after_commits == 0)
		raise(SIGKILL);
}

/* kill -9 between commit and flush: nothing committed is lost, and the
 * writer's open puts every file in place. */
static void test_kill_between_commit_and_flush(void **state)
{
	(void)state;
	quiet();
	char *dir = tu_tmpdir();
	pid_t pid = fork();
	if (pid == 0) {
		struct store *s = open_ok(dir, STORE_DAEMON);
		kill_after_commits = 3;
		store_set_step_hook(s, kill_after_commit, NULL);
		for (int k = 1; k <= 5; k++) {
			struct txn *t = store_begin(s);
			char id[16];
			snprintf(id, sizeof(id), "A%d", k);
			txn_put(t, "apps", id, doc_x(k));
			txn_put(t, "outq", "q", doc_x(k));
			if (k == 3)
				txn_del(t, "outq", "q");
			commit_ok(t);
		}
		_exit(3);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_false(path_exists(dir, "apps"));             /* nothing written but the journal */
	struct store *s = open_ok(dir, STORE_WRITER);
	for (int k = 1; k <= 3; k++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "apps/A%d.json", k);
		assert_int_equal(file_x(dir, rel), k);
	}
	assert_false(path_exists(dir, "apps/A4.json"));
	assert_false(path_exists(dir, "outq/q.json"));
	assert_int_equal(pending_of(s), 0);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

struct visit_ctx {
	struct store *s;
	char **seen;
};

/* Count the visit and change the document (a commit per visit). */
static int visit_and_commit(void *vctx, const char *id, json_object *doc)
{
	struct visit_ctx *c = vctx;
	json_object *v;
	if (strv_contains(c->seen, id))
		fail_msg("%s visited twice", id);
	c->seen = strv_add(c->seen, id);
	assert_true(json_object_object_get_ex(doc, "x", &v));
	assert_true(json_object_get_int(v) < 100);
	struct txn *t = store_begin(c->s);
	txn_put(t, "apps", id, doc_x(100 + json_object_get_int(v)));
	commit_ok(t);
	return 0;
}

/* A callback that commits changes neither the set of documents visited
 * nor how often: once each, whether its file was written yet or not. */
static void test_foreach_while_committing(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir, STORE_DAEMON);
	struct txn *t = store_begin(s);
	for (int k = 0; k < 6; k++) {
		char id[16];
		snprintf(id, sizeof(id), "F%d", k);
		txn_put(t, "apps", id, doc_x(k));
	}
	commit_ok(t);
	assert_int_equal(store_flush(s, NULL), 0);
	t = store_begin(s);
	txn_put(t, "apps", "P1", doc_x(7));
	txn_put(t, "apps", "P2", doc_x(8));
	txn_put(t, "apps", "F5", doc_x(9));                 /* pending over its file */
	txn_del(t, "apps", "F4");                           /* deleted, its file still there */
	commit_ok(t);
	struct visit_ctx c = { .s = s };
	assert_int_equal(store_foreach(s, "apps", visit_and_commit, &c), 0);
	assert_int_equal(strv_len(c.seen), 7);
	assert_false(strv_contains(c.seen, "F4"));
	assert_int_equal(get_x(s, "apps", "F5"), 109);
	strv_free(c.seen);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

static off_t size_of(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	if (stat(p, &st) < 0)
		fail_msg("stat %s", p);
	free(p);
	return st.st_size;
}

/* The daemon writes each commit in place into zeroed space (no new file
 * size to sync); whatever follows the content is never taken for it. */
static void test_journal_zero_filled(void **state)
{
	(void)state;
	quiet();
	char *dir = tu_tmpdir();
	pid_t pid = fork();
	if (pid == 0) {
		struct store *s = open_ok(dir, STORE_DAEMON);
		if (size_of(dir, "journal") != STORE_PREZERO_BYTES)
			_exit(4);
		for (int k = 1; k <= 3; k++) {
			put_ok(s, "apps", "A", k);
		}
		if (size_of(dir, "journal") != STORE_PREZERO_BYTES)
			_exit(5);               /* written in place */
		_exit(0);                       /* a crash: no close */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	struct store *r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "A"), 3);
	store_close(r);
	struct store *s = open_ok(dir, STORE_WRITER);       /* replays, empties */
	assert_int_equal(get_x(s, "apps", "A"), 3);
	assert_int_equal(size_of(dir, "journal"), 0);
	put_ok(s, "apps", "B", 4);
	store_close(s);
	assert_int_equal(size_of(dir, "journal"), 0);       /* closed: checkpointed, empty */
	s = open_ok(dir, STORE_DAEMON);
	assert_int_equal(get_x(s, "apps", "B"), 4);
	store_close(s);
	assert_int_equal(size_of(dir, "journal"), 0);

	/* no content, but a complete old transaction after zeros (the torn
	 * bytes of an unacknowledged write could look like that): never
	 * replayed, and a writer's open clears it before writing in front */
	struct buf j = BUF_INIT;
	json_object *d;
	buf_reserve(&j, 4096);
	memset(j.p, 0, 4096);
	j.len = 4096;
	journal_add_put(&j, 1, "apps", "Z", d = doc_x(99));
	json_object_put(d);
	journal_add_commit(&j, 1, 1);
	write_file(dir, "journal", j.p, j.len);
	r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "Z"), -1);
	store_close(r);
	s = open_ok(dir, STORE_DAEMON);
	struct txn *t = store_begin(s);
	char big[6000];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object *o = doc_x(5);
	json_object_object_add(o, "big", json_object_new_string(big));
	txn_put(t, "apps", "C", o);                         /* covers the old bytes */
	commit_ok(t);
	r = open_ok(dir, STORE_READER);
	assert_int_equal(get_x(r, "apps", "Z"), -1);
	assert_int_equal(get_x(r, "apps", "C"), 5);
	store_close(r);
	store_close(s);
	buf_free(&j);
	tu_rmtree(dir);
	free(dir);
	log_setlevel(LOG_LVL_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_put_get_across_reopen),
		cmocka_unit_test(test_txn_reads_own_writes),
		cmocka_unit_test(test_txn_on_done),
		cmocka_unit_test(test_lock_busy),
		cmocka_unit_test(test_reader_sees_journal_only),
		cmocka_unit_test(test_torn_tail_every_offset),
		cmocka_unit_test(test_corrupt_middle),
		cmocka_unit_test(test_unknown_version_refused),
		cmocka_unit_test(test_corrupt_document),
		cmocka_unit_test(test_modes_whatever_the_umask),
		cmocka_unit_test(test_commit_cost),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_temp_files_cleaned),
		cmocka_unit_test(test_write_behind),
		cmocka_unit_test(test_created_and_deleted_never_on_disk),
		cmocka_unit_test(test_flush_due),
		cmocka_unit_test(test_flush_failure_keeps_journal),
		cmocka_unit_test(test_kill_between_commit_and_flush),
		cmocka_unit_test(test_foreach_while_committing),
		cmocka_unit_test(test_journal_zero_filled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
