/* Unit tests of the Maildir source (lib/source_maildir.c): order, limits,
 * marking, inotify wake-ups, modes. Every message here is synthetic. */
#include "testutil.h"

#include "config.h"
#include "source.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct fix {
	char *dir;               /* the test's temp folder */
	char *md;                /* the Maildir inside it */
	struct config c;
	struct source *s;
};

static int setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	f->md = xasprintf("%s/Maildir", f->dir);
	config_defaults(&f->c);
	f->c.imap.type = SOURCE_MAILDIR;
	free(f->c.imap.maildir);
	f->c.imap.maildir = xstrdup(f->md);
	f->s = source_create(&f->c);
	char *err = NULL;
	if (f->s->ops->connect(f->s, &err) < 0)
		fail_msg("connect: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	f->s->ops->destroy(f->s);
	config_free(&f->c);
	tu_rmtree(f->dir);
	free(f->md);
	free(f->dir);
	free(f);
	return 0;
}

/* Deliver like an MTA: write in tmp/, rename into new/; mtime set. */
static void deliver(struct fix *f, const char *name, const char *text, time_t mtime)
{
	char *tmpdir = xasprintf("%s/tmp", f->md);
	char *tmp = tu_write(tmpdir, name, text);
	struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };
	utimes(tmp, tv);
	char *dst = xasprintf("%s/new/%s", f->md, name);
	assert_int_equal(rename(tmp, dst), 0);
	free(tmpdir);
	free(tmp);
	free(dst);
}

static bool exists(struct fix *f, const char *sub, const char *name)
{
	char *p = xasprintf("%s/%s/%s", f->md, sub, name);
	bool ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

static void fetch(struct fix *f, uint32_t after, size_t max, struct raw_msg **v, size_t *n)
{
	char *err = NULL;
	if (f->s->ops->fetch(f->s, after, max, v, n, &err) < 0)
		fail_msg("fetch: %s", err);
}

#define MSG_A "X-Synthetic: yes\nSubject: a\n\nbir\n"
#define MSG_B "X-Synthetic: yes\nSubject: b\n\niki\n"
#define MSG_C "X-Synthetic: yes\nSubject: c\n\nuc\n"

static void test_creates_folders_private(void **state)
{
	struct fix *f = *state;
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		char *p = xasprintf("%s/%s", f->md, subs[i]);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
		free(p);
	}
	assert_int_equal(f->s->uidvalidity, 0);
}

static void test_fetch_order_and_fields(void **state)
{
	struct fix *f = *state;
	deliver(f, "1700000003.M3P1.host", MSG_C, 1700000003);
	deliver(f, "1700000001.M1P1.host", MSG_A, 1700000001);
	deliver(f, "1700000002.M2P1.host", MSG_B, 1700000002);
	struct raw_msg *v;
	size_t n;
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].key, "1700000001.M1P1.host");
	assert_string_equal(v[1].key, "1700000002.M2P1.host");
	assert_string_equal(v[2].key, "1700000003.M3P1.host");
	assert_true(v[0].uid < v[1].uid && v[1].uid < v[2].uid);
	assert_int_equal(v[0].arrival, 1700000001);
	assert_int_equal(v[0].len, strlen(MSG_A));
	assert_int_equal(v[0].size, strlen(MSG_A));
	assert_memory_equal(v[0].data, MSG_A, strlen(MSG_A));
	assert_false(v[0].oversize);
	raw_msgs_free(v, n);
}

static void test_fetch_max_and_after(void **state)
{
	struct fix *f = *state;
	deliver(f, "1700000001.M1P1.host", MSG_A, 1700000001);
	deliver(f, "1700000002.M2P1.host", MSG_B, 1700000002);
	deliver(f, "1700000003.M3P1.host", MSG_C, 1700000003);
	struct raw_msg *v, *w;
	size_t n, m;
	fetch(f, 0, 2, &v, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[1].key, "1700000002.M2P1.host");
	fetch(f, v[1].uid, 2, &w, &m);
	assert_int_equal(m, 1);
	assert_string_equal(w[0].key, "1700000003.M3P1.host");
	/* Not marked yet, but already handed out at or below `after`. */
	uint32_t last = w[0].uid;
	raw_msgs_free(w, m);
	fetch(f, last, 10, &w, &m);
	assert_int_equal(m, 0);
	raw_msgs_free(w, m);
	/* A caller that starts over gets them all again. */
	fetch(f, 0, 10, &w, &m);
	assert_int_equal(m, 3);
	raw_msgs_free(w, m);
	raw_msgs_free(v, n);
}

static void test_mark_handled_and_other(void **state)
{
	struct fix *f = *state;
	deliver(f, "1700000001.M1P1.host", MSG_A, 1700000001);
	deliver(f, "1700000002.M2P1.host", MSG_B, 1700000002);
	deliver(f, "1700000003.M3P1.host", MSG_C, 1700000003);
	struct raw_msg *v;
	size_t n;
	char *err = NULL;
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 3);
	assert_int_equal(f->s->ops->mark(f->s, &v[0], MARK_HANDLED, &err), 0);
	const struct raw_msg *pv[] = { &v[1], &v[2] };
	assert_int_equal(f->s->ops->mark_many(f->s, pv, 2, MARK_OTHER, &err), 0);
	assert_false(exists(f, "new", "1700000001.M1P1.host"));
	assert_true(exists(f, "cur", "1700000001.M1P1.host:2,S"));
	assert_true(exists(f, "cur", "1700000002.M2P1.host:2,"));
	assert_true(exists(f, "cur", "1700000003.M3P1.host:2,"));
	/* Marking again is harmless; the file keeps its private mode. */
	assert_int_equal(f->s->ops->mark(f->s, &v[0], MARK_HANDLED, &err), 0);
	char *p = xasprintf("%s/cur/1700000001.M1P1.host:2,S", f->md);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(p);
	raw_msgs_free(v, n);
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 0);
	raw_msgs_free(v, n);
}

static void test_mark_refuses_bad_keys(void **state)
{
	struct fix *f = *state;
	struct raw_msg m = { .uid = 1, .key = (char *)"../escape" };
	struct raw_msg none = { .uid = 2 };
	char *err = NULL;
	assert_int_equal(f->s->ops->mark(f->s, &m, MARK_HANDLED, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(f->s->ops->mark(f->s, &none, MARK_HANDLED, &err), -1);
	free(err);
}

static void test_oversize(void **state)
{
	struct fix *f = *state;
	f->c.imap.max_message_size = 20;
	deliver(f, "1700000001.M1P1.host", MSG_A, 1700000001);
	struct raw_msg *v;
	size_t n;
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 1);
	assert_true(v[0].oversize);
	assert_null(v[0].data);
	assert_int_equal(v[0].len, 0);
	assert_int_equal(v[0].size, strlen(MSG_A));
	assert_string_equal(v[0].key, "1700000001.M1P1.host");
	raw_msgs_free(v, n);
}

static void test_inotify_wakes(void **state)
{
	struct fix *f = *state;
	int fd;
	bool maybe_new = true;
	char *err = NULL;
	assert_int_equal(f->s->ops->wait_start(f->s, &fd, &err), 0);
	assert_true(fd >= 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(f->s->ops->wait_done(f->s, &maybe_new, &err), 0);
	assert_false(maybe_new);

	assert_int_equal(f->s->ops->wait_start(f->s, &fd, &err), 0);
	deliver(f, "1700000009.M9P1.host", MSG_A, 1700000009);
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(f->s->ops->wait_done(f->s, &maybe_new, &err), 0);
	assert_true(maybe_new);
	assert_int_equal(poll(&p, 1, 0), 0);          /* drained */

	/* A delivery while not waiting is still seen by the next wait. */
	deliver(f, "1700000010.M1P1.host", MSG_B, 1700000010);
	assert_int_equal(f->s->ops->wait_start(f->s, &fd, &err), 0);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(f->s->ops->wait_done(f->s, &maybe_new, &err), 0);
	assert_true(maybe_new);
}

static void test_reconnect_numbers_again(void **state)
{
	struct fix *f = *state;
	deliver(f, "1700000001.M1P1.host", MSG_A, 1700000001);
	struct raw_msg *v;
	size_t n;
	char *err = NULL;
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 1);
	uint32_t old = v[0].uid;
	raw_msgs_free(v, n);
	f->s->ops->disconnect(f->s);
	assert_int_equal(f->s->ops->fetch(f->s, 0, 10, &v, &n, &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(f->s->ops->connect(f->s, &err), 0);
	/* A persisted `after` from the old connection must not hide it. */
	fetch(f, old + 100, 10, &v, &n);
	assert_int_equal(n, 1);
	raw_msgs_free(v, n);
}

static void test_dot_files_ignored(void **state)
{
	struct fix *f = *state;
	deliver(f, ".hidden", MSG_A, 1700000001);
	struct raw_msg *v;
	size_t n;
	fetch(f, 0, 10, &v, &n);
	assert_int_equal(n, 0);
	raw_msgs_free(v, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_creates_folders_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_order_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_max_and_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_handled_and_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_refuses_bad_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inotify_wakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_numbers_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_files_ignored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
