/* Unit tests of the outbox with a fake channel whose outcomes are
 * scripted per recipient: sent, retries and their timing, retry_after,
 * dead letters, a channel that is down, max_age, dedupe, refused
 * recipients, notices whose reason passed, and closing with notices in
 * flight. */
#include "testutil.h"

#include "log.h"
#include "outbox.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 ((time_t)1795600800)         /* 2026-11-25 10:00 UTC */

/* ---- the fake channel ---- */

struct script {
	const char *to;
	enum dlv_outcome seq[6];        /* outcome of attempt 1, 2, ...; the last repeats */
	int nseq;
	int retry_after;
};

/* Test-global: workers of every outbox instance reach it from send(). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct script *scripts;
	size_t nscripts;
	int tries[32];                  /* per script */
	int sends;                      /* notices handed to send() */
	int opens, closes;
	bool block;                     /* hold send() until cleared */
	int blocked;
	int busy, max_busy;             /* send() calls under way */
	int entered;                    /* send() calls begun */
	char log[4096];                 /* "to;" per notice, in order */
} fake = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void fake_reset(const struct script *s, size_t n)
{
	pthread_mutex_lock(&fake.mu);
	fake.scripts = s;
	fake.nscripts = n;
	memset(fake.tries, 0, sizeof(fake.tries));
	fake.sends = 0;
	fake.block = false;
	fake.max_busy = 0;
	fake.log[0] = '\0';
	pthread_mutex_unlock(&fake.mu);
}

static int fake_open(struct channel *ch, char **err)
{
	(void)ch;
	(void)err;
	pthread_mutex_lock(&fake.mu);
	fake.opens++;
	pthread_mutex_unlock(&fake.mu);
	return 0;
}

static void fake_close(struct channel *ch)
{
	(void)ch;
	pthread_mutex_lock(&fake.mu);
	fake.closes++;
	pthread_cond_broadcast(&fake.cv);
	pthread_mutex_unlock(&fake.mu);
}

static void fake_one(const struct notice *n, struct delivery *d)
{
	d->outcome = DLV_SENT;
	for (size_t i = 0; i < fake.nscripts; i++) {
		const struct script *s = &fake.scripts[i];
		if (strcmp(s->to, n->to) != 0)
			continue;
		int k = fake.tries[i]++;
		d->outcome = s->seq[k < s->nseq ? k : s->nseq - 1];
		d->retry_after = s->retry_after;
	}
	d->detail = xasprintf("fake %s", d->outcome == DLV_SENT ? "ok" : "failure");
	if (d->outcome == DLV_SENT)
		d->provider_id = xasprintf("fake-%d", fake.sends);
	size_t len = strlen(fake.log);
	snprintf(fake.log + len, sizeof(fake.log) - len, "%s;", n->to);
}

static void fake_send(struct channel *ch, struct notice *const *batch, size_t n,
		      struct delivery *out)
{
	(void)ch;
	pthread_mutex_lock(&fake.mu);
	fake.entered++;
	if (++fake.busy > fake.max_busy)
		fake.max_busy = fake.busy;
	fake.blocked++;
	pthread_cond_broadcast(&fake.cv);
	while (fake.block)
		pthread_cond_wait(&fake.cv, &fake.mu);
	fake.blocked--;
	pthread_mutex_unlock(&fake.mu);
	usleep(2000);                   /* long enough for others to overlap */
	pthread_mutex_lock(&fake.mu);
	for (size_t i = 0; i < n; i++, fake.sends++)
		fake_one(batch[i], &out[i]);
	fake.busy--;
	pthread_mutex_unlock(&fake.mu);
}

static const struct channel_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.send = fake_send,
	.close = fake_close,
};

/* ---- the test environment ---- */

struct env {
	char *dir;
	struct config c;
	struct store *st;
	struct channel mail, sms;
	struct outbox *ob;
	struct outbox_hooks hooks;
	bool sms_off;
	/* hooks' records */
	int dead_calls, sent_calls;
	const char *app_state;          /* what app_state() answers for "A1" */
	bool follow_up;                 /* on_dead queues a notice to the officer */
};

static const char *h_app_state(void *ctx, const char *app_id)
{
	struct env *e = ctx;
	return strcmp(app_id, "A1") == 0 ? e->app_state : NULL;
}

static struct notice *mk(const char *to, const char *key, enum medium m);

static void h_on_dead(void *ctx, struct txn *t, const struct notice *n)
{
	struct env *e = ctx;
	e->dead_calls++;
	if (e->follow_up) {
		char *key = xasprintf("dead-alert:%s", n->id);
		outbox_queue(e->ob, t, mk("officer@example.edu.tr", key, MEDIUM_MAIL));
		free(key);
	}
}

static void h_on_sent(void *ctx, struct txn *t, const struct notice *n)
{
	(void)t;
	(void)n;
	((struct env *)ctx)->sent_calls++;
}

static void env_outbox(struct env *e)
{
	struct channel *ch[2] = { &e->mail, e->sms_off ? NULL : &e->sms };
	char *err = NULL;
	if (outbox_open(e->st, &e->c, ch, &e->hooks, &e->ob, &err) != 0)
		fail_msg("outbox_open: %s", err);
}

static void env_open(struct env *e)
{
	char *err = NULL;
	if (store_open(e->dir, STORE_DAEMON, &e->st, &err) != 0)
		fail_msg("store_open: %s", err);
	env_outbox(e);
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dir = tu_tmpdir();
	config_defaults(&e->c);
	e->c.general.institution_domains = strv_add(NULL, "example.edu.tr");
	e->c.smtp.mail_channel = CHANNEL_SMTP;
	e->c.smtp.sessions = 2;
	e->c.sms.sms_channel = CHANNEL_SMS;
	e->c.outbox.retry_min = (struct period){ PERIOD_SECONDS, 60 };
	e->c.outbox.retry_max = (struct period){ PERIOD_SECONDS, 3600 };
	e->c.outbox.max_age = (struct period){ PERIOD_SECONDS, 3 * 86400 };
	e->mail = (struct channel){ .ops = &fake_ops, .conf = &e->c, .medium = MEDIUM_MAIL };
	e->sms = (struct channel){ .ops = &fake_ops, .conf = &e->c, .medium = MEDIUM_SMS };
	e->hooks = (struct outbox_hooks){ .ctx = e, .app_state = h_app_state,
					  .on_dead = h_on_dead, .on_sent = h_on_sent };
	e->app_state = "approved";
	env_open(e);
}

static void env_close(struct env *e)
{
	outbox_close(e->ob, 5000);
	store_close(e->st);
	e->ob = NULL;
	e->st = NULL;
}

static void env_free(struct env *e)
{
	env_close(e);
	config_free(&e->c);
	tu_rmtree(e->dir);
	free(e->dir);
}

static struct notice *mk(const char *to, const char *key, enum medium m)
{
	struct notice *n = notice_new();
	n->medium = m;
	n->to = xstrdup(to);
	n->kind = xstrdup("credentials_issued");
	n->subject = m == MEDIUM_MAIL ? xstrdup("E-imza başvurunuz / Your e-signature application") : NULL;
	n->body = xstrdup("Merhaba / Hello");
	n->dedupe = xstrdup(key);
	n->app_id = xstrdup("A1");
	n->created = T0;
	return n;
}

static enum queue_result queue1(struct env *e, struct notice *n)
{
	struct txn *t = store_begin(e->st);
	enum queue_result r = outbox_queue(e->ob, t, n);
	char *err = NULL;
	if (txn_commit(t, &err) != 0)
		fail_msg("commit: %s", err);
	return r;
}

/* Kick at now and record every outcome; returns the number recorded. */
static int pump(struct env *e, time_t now)
{
	int total = 0;
	outbox_kick(e->ob, now);
	for (int guard = 0; outbox_in_flight(e->ob) > 0 && guard < 1000; guard++) {
		struct pollfd p = { .fd = outbox_fd(e->ob), .events = POLLIN };
		if (poll(&p, 1, 5000) != 1)
			fail_msg("no outcome within 5 s");
		char *err = NULL;
		int n = outbox_collect(e->ob, now, &err);
		if (n < 0)
			fail_msg("collect: %s", err);
		total += n;
	}
	if (outbox_in_flight(e->ob) > 0)
		fail_msg("%zu notices still in flight after 1000 collects",
			 outbox_in_flight(e->ob));
	return total;
}

static json_object *notice_doc(struct env *e, const char *key)
{
	char *id = notice_id_for(key);
	json_object *o = store_get(e->st, "notices", id);
	free(id);
	return o;
}

static const char *doc_str(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int doc_int(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int(v) : -1;
}

/* State, attempts and next_attempt of a notice. */
static void expect(struct env *e, const char *key, const char *state, int attempts,
		   time_t *next)
{
	json_object *o = notice_doc(e, key);
	assert_non_null(o);
	assert_string_equal(doc_str(o, "state"), state);
	assert_int_equal(doc_int(o, "attempts"), attempts);
	if (next != NULL)
		assert_int_equal(time_parse_rfc3339(doc_str(o, "next_attempt"), next), 0);
	json_object_put(o);
	char *id = notice_id_for(key);
	json_object *q = store_get(e->st, "outq", id);
	assert_int_equal(q != NULL, strcmp(state, "queued") == 0);
	json_object_put(q);
	free(id);
}

/* ---- tests ---- */

static void test_notice_json(void **state)
{
	(void)state;
	struct notice *n = mk("a@example.edu.tr", "k1", MEDIUM_MAIL);
	n->id = notice_id_for("k1");
	n->app_ids = strv_add(strv_add(NULL, "A1"), "A2");
	n->next_attempt = T0 + 60;
	n->attempts = 2;
	n->state = NS_DEAD;
	json_object *o = notice_to_json(n);
	assert_int_equal(doc_int(o, "version"), NOTICE_VERSION);
	assert_string_equal(doc_str(o, "created"), "2026-11-25T10:00:00Z");
	assert_string_equal(doc_str(o, "state"), "dead");
	char *err = NULL;
	struct notice *m = notice_from_json(o, &err);
	assert_non_null(m);
	assert_string_equal(m->id, n->id);
	assert_string_equal(m->subject, n->subject);
	assert_string_equal(m->app_ids[1], "A2");
	assert_int_equal(m->next_attempt, T0 + 60);
	assert_int_equal(m->state, NS_DEAD);
	assert_int_equal(m->attempts, 2);
	assert_int_equal(m->medium, MEDIUM_MAIL);
	notice_free(m);
	/* another version, a missing field, a wrong type: refused */
	static const struct { const char *key; const char *json; } bad[] = {
		{ "version", "2" }, { "to", NULL }, { "created", "\"yesterday\"" },
		{ "medium", "\"pigeon\"" }, { "attempts", "\"two\"" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_object *c = NULL;
		json_object_deep_copy(o, &c, NULL);
		if (bad[i].json == NULL)
			json_object_object_del(c, bad[i].key);
		else
			json_object_object_add(c, bad[i].key, json_tokener_parse(bad[i].json));
		assert_null(notice_from_json(c, &err));
		assert_non_null(err);
		free(err);
		err = NULL;
		json_object_put(c);
	}
	json_object_put(o);
	/* id: "n" and 32 hex digits of SHA-256 */
	char *id = notice_id_for("abc");
	assert_string_equal(id, "nba7816bf8f01cfea414140de5dae2223");
	free(id);
	notice_free(n);
	assert_string_equal(medium_name(MEDIUM_SMS), "sms");
	assert_string_equal(notice_state_name(NS_DROPPED), "dropped");
}

static void test_sent(void **state)
{
	(void)state;
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	assert_int_equal(queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL)), QUEUED);
	assert_int_equal(outbox_next_due(e.ob), T0);
	assert_int_equal(pump(&e, T0), 1);
	expect(&e, "k1", "sent", 1, NULL);
	json_object *o = notice_doc(&e, "k1");
	assert_string_equal(doc_str(o, "done_at"), "2026-11-25T10:00:00Z");
	assert_string_equal(doc_str(o, "provider_id"), "fake-0");
	json_object_put(o);
	assert_int_equal(e.sent_calls, 1);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.queued, 0);
	assert_int_equal(outbox_next_due(e.ob), 0);
	env_free(&e);
}

static void test_tempfail_backoff(void **state)
{
	(void)state;
	/* fail 9 times, then go: retry_min 60 s doubling to retry_max 3600 s */
	static const struct script s[] = {
		{ "a@example.edu.tr", { DLV_TEMPFAIL, DLV_TEMPFAIL, DLV_TEMPFAIL, DLV_TEMPFAIL,
				       DLV_TEMPFAIL, DLV_SENT }, 6, 0 },
	};
	static const int base[] = { 60, 120, 240, 480, 960 };
	struct env e;
	env_init(&e);
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL));
	time_t now = T0;
	for (size_t k = 0; k < ARRAY_LEN(base); k++) {
		assert_int_equal(pump(&e, now), 1);
		time_t next;
		expect(&e, "k1", "queued", (int)k + 1, &next);
		/* +1: a whole-second clock never cuts the backoff short */
		if (next < now + base[k] * 8 / 10 || next > now + base[k] * 12 / 10 + 1)
			fail_msg("attempt %zu: retry after %lld s, want %d +-20%% (+1)", k + 1,
				 (long long)(next - now), base[k]);
		assert_int_equal(outbox_next_due(e.ob), next);
		/* not before its time */
		assert_int_equal(pump(&e, next - 1), 0);
		now = next;
	}
	assert_int_equal(pump(&e, now), 1);
	expect(&e, "k1", "sent", 6, NULL);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_int_equal(st.tempfail, 5);
	assert_int_equal(st.sent, 1);
	env_free(&e);
}

static void test_backoff_cap(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "a@example.edu.tr", { DLV_TEMPFAIL }, 1, 0 },
	};
	struct env e;
	env_init(&e);
	e.c.outbox.max_age = (struct period){ PERIOD_SECONDS, 0 };     /* never expires */
	env_close(&e);
	env_open(&e);
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL));
	time_t now = T0, next = 0;
	for (int k = 1; k <= 10; k++) {
		pump(&e, now);
		expect(&e, "k1", "queued", k, &next);
		now = next;
	}
	/* 60 * 2^9 is far above the cap: 3600 +-20% */
	json_object *o = notice_doc(&e, "k1");
	assert_null(doc_str(o, "expires"));
	json_object_put(o);
	time_t prev = 0;
	expect(&e, "k1", "queued", 10, &prev);
	pump(&e, prev);
	expect(&e, "k1", "queued", 11, &next);
	assert_true(next - prev >= 2880 && next - prev <= 4320 + 1);   /* +1: whole seconds */
	env_free(&e);
}

static void test_retry_after(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "+905321234567", { DLV_TEMPFAIL, DLV_SENT }, 2, 7200 },
	};
	struct env e;
	env_init(&e);
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("+905321234567", "s1", MEDIUM_SMS));
	pump(&e, T0);
	time_t next;
	expect(&e, "s1", "queued", 1, &next);
	/* Retry-After 7200 from a clock of whole seconds: one more second,
	 * so the wait is never cut short. */
	assert_int_equal(next, T0 + 7201);
	assert_int_equal(pump(&e, T0 + 7200), 0);
	assert_int_equal(pump(&e, T0 + 7201), 1);
	expect(&e, "s1", "sent", 2, NULL);
	env_free(&e);
}

static void test_permfail_dead_and_requeue(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "gone@example.edu.tr", { DLV_PERMFAIL, DLV_SENT }, 2, 0 },
	};
	struct env e;
	env_init(&e);
	e.follow_up = true;
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("gone@example.edu.tr", "k1", MEDIUM_MAIL));
	pump(&e, T0);
	expect(&e, "k1", "dead", 1, NULL);
	assert_int_equal(e.dead_calls, 1);
	json_object *o = notice_doc(&e, "k1");
	assert_string_equal(doc_str(o, "last_error"), "fake failure");
	json_object_put(o);
	/* the follow-up queued by on_dead in the same transaction goes out */
	pump(&e, T0);
	char *fid = notice_id_for("k1"), *fkey = xasprintf("dead-alert:%s", fid);
	expect(&e, fkey, "sent", 1, NULL);
	free(fkey);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_int_equal(st.dead, 1);
	assert_int_equal(st.permfail, 1);
	assert_int_equal(e.dead_calls, 1);               /* once */
	/* the dead-letter index survives a restart */
	env_close(&e);
	env_open(&e);
	outbox_stats(e.ob, &st);
	assert_int_equal(st.dead, 1);
	/* eimzactl resend */
	struct txn *t = store_begin(e.st);
	char *err = NULL;
	assert_int_equal(outbox_requeue(e.ob, t, fid, T0 + 100, &err), 0);
	assert_int_equal(txn_commit(t, &err), 0);
	pump(&e, T0 + 100);
	expect(&e, "k1", "sent", 1, NULL);
	outbox_stats(e.ob, &st);
	assert_int_equal(st.dead, 0);
	assert_null(store_get(e.st, "outdead", fid));
	/* a sent notice is not re-queued */
	t = store_begin(e.st);
	assert_int_equal(outbox_requeue(e.ob, t, fid, T0, &err), -1);
	assert_non_null(strstr(err, "sent"));
	free(err);
	txn_abort(t);
	free(fid);
	env_free(&e);
}

static void test_channel_down(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "a@example.edu.tr", { DLV_DOWN, DLV_DOWN, DLV_SENT }, 3, 0 },
	};
	struct env e;
	env_init(&e);
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL));
	pump(&e, T0);
	time_t next;
	expect(&e, "k1", "queued", 0, &next);            /* no attempt burned */
	assert_int_equal(next, T0);
	time_t resume = outbox_next_due(e.ob);
	assert_true(resume >= T0 + 48 && resume <= T0 + 72);
	/* paused: mail waits, SMS still goes */
	queue1(&e, mk("b@example.edu.tr", "k2", MEDIUM_MAIL));
	queue1(&e, mk("+905321234567", "s1", MEDIUM_SMS));
	assert_int_equal(pump(&e, resume - 1), 1);
	expect(&e, "s1", "sent", 1, NULL);
	expect(&e, "k2", "queued", 0, NULL);
	/* down again: a longer pause */
	pump(&e, resume);
	expect(&e, "k1", "queued", 0, NULL);
	time_t resume2 = outbox_next_due(e.ob);
	assert_true(resume2 >= resume + 96 && resume2 <= resume + 144);
	pump(&e, resume2);
	expect(&e, "k1", "sent", 1, NULL);
	expect(&e, "k2", "sent", 1, NULL);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_true(st.down >= 2);
	env_free(&e);
}

/* DOWN with a retry_after (a provider's 429): the pause lasts that long. */
static void test_channel_down_retry_after(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "+905321234567", { DLV_DOWN, DLV_SENT }, 2, 900 },
	};
	struct env e;
	env_init(&e);
	fake_reset(s, ARRAY_LEN(s));
	queue1(&e, mk("+905321234567", "s1", MEDIUM_SMS));
	pump(&e, T0);
	assert_int_equal(outbox_next_due(e.ob), T0 + 901);
	assert_int_equal(pump(&e, T0 + 900), 0);
	pump(&e, T0 + 901);
	expect(&e, "s1", "sent", 1, NULL);
	env_free(&e);
}

static void test_max_age(void **state)
{
	(void)state;
	static const struct script s[] = {
		{ "a@example.edu.tr", { DLV_TEMPFAIL }, 1, 0 },
	};
	struct env e;
	env_init(&e);
	e.c.outbox.max_age = (struct period){ PERIOD_SECONDS, 100 };
	env_close(&e);
	env_open(&e);
	fake_reset(s, ARRAY_LEN(s));
	/* retries that would pass max_age give up */
	queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL));
	pump(&e, T0);
	time_t next;
	expect(&e, "k1", "queued", 1, &next);
	pump(&e, next);
	expect(&e, "k1", "dead", 2, NULL);
	assert_int_equal(e.dead_calls, 1);
	/* a notice already too old when due is dead without an attempt */
	struct notice *n = mk("b@example.edu.tr", "k2", MEDIUM_MAIL);
	n->next_attempt = T0 + 500;             /* deferred, say to working hours */
	queue1(&e, n);
	pump(&e, T0 + 500);
	expect(&e, "k2", "dead", 0, NULL);
	json_object *o = notice_doc(&e, "k2");
	assert_non_null(strstr(doc_str(o, "last_error"), "max_age"));
	json_object_put(o);
	assert_int_equal(e.dead_calls, 2);
	assert_int_equal(fake.sends, 2);
	env_free(&e);
}

static void test_dedupe(void **state)
{
	(void)state;
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	struct txn *t = store_begin(e.st);
	assert_int_equal(outbox_queue(e.ob, t, mk("a@example.edu.tr", "k1", MEDIUM_MAIL)), QUEUED);
	assert_int_equal(outbox_queue(e.ob, t, mk("b@example.edu.tr", "k1", MEDIUM_MAIL)),
			 QUEUE_DUPLICATE);
	assert_int_equal(txn_commit(t, NULL), 0);
	assert_int_equal(queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL)), QUEUE_DUPLICATE);
	pump(&e, T0);
	assert_int_equal(queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL)), QUEUE_DUPLICATE);
	env_close(&e);
	env_open(&e);
	assert_int_equal(queue1(&e, mk("a@example.edu.tr", "k1", MEDIUM_MAIL)), QUEUE_DUPLICATE);
	/* an aborted transaction queued nothing */
	t = store_begin(e.st);
	assert_int_equal(outbox_queue(e.ob, t, mk("a@example.edu.tr", "k2", MEDIUM_MAIL)), QUEUED);
	txn_abort(t);
	assert_int_equal(pump(&e, T0), 0);
	assert_int_equal(queue1(&e, mk("a@example.edu.tr", "k2", MEDIUM_MAIL)), QUEUED);
	pump(&e, T0);
	assert_int_equal(fake.sends, 2);
	env_free(&e);
}

struct queue_ctx {
	struct env *e;
	int refused;
};

static void queue_refused(void *p)
{
	struct queue_ctx *q = p;
	static const struct { const char *to; enum medium m; enum queue_result want; } cases[] = {
		{ "a@example.edu.tr", MEDIUM_MAIL, QUEUED },
		{ "a@sub.example.edu.tr", MEDIUM_MAIL, QUEUED },
		{ "a@gmail.com", MEDIUM_MAIL, QUEUE_REFUSED },
		{ "a@example.edu.tr.evil.com", MEDIUM_MAIL, QUEUE_REFUSED },
		{ "Ad Soyad <a@example.edu.tr>", MEDIUM_MAIL, QUEUE_REFUSED },
		{ "a@example.edu.tr, b@example.edu.tr", MEDIUM_MAIL, QUEUE_REFUSED },
		{ "noat.example.edu.tr", MEDIUM_MAIL, QUEUE_REFUSED },
		{ "+905321234567", MEDIUM_SMS, QUEUED },
		{ "+447700900123", MEDIUM_SMS, QUEUED },
		{ "05321234568", MEDIUM_SMS, QUEUE_REFUSED },
		{ "+90 532 123 45 69", MEDIUM_SMS, QUEUE_REFUSED },
		{ "+9053212", MEDIUM_SMS, QUEUE_REFUSED },
		{ "+0905321234560", MEDIUM_SMS, QUEUE_REFUSED },
		{ "+9053212345671234", MEDIUM_SMS, QUEUE_REFUSED },
	};
	struct txn *t = store_begin(q->e->st);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char key[16];
		snprintf(key, sizeof(key), "r%zu", i);
		enum queue_result r = outbox_queue(q->e->ob, t, mk(cases[i].to, key, cases[i].m));
		if (r != cases[i].want)
			fail_msg("%s: %d, want %d", cases[i].to, r, cases[i].want);
		q->refused += r == QUEUE_REFUSED;
	}
	/* incomplete: no dedupe key */
	struct notice *n = mk("a@example.edu.tr", "x", MEDIUM_MAIL);
	free(n->dedupe);
	n->dedupe = NULL;
	assert_int_equal(outbox_queue(q->e->ob, t, n), QUEUE_REFUSED);
	assert_int_equal(txn_commit(t, NULL), 0);
}

static void test_refused_recipients(void **state)
{
	(void)state;
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	struct queue_ctx q = { .e = &e };
	/* the log names addresses but never a whole phone number */
	char *dir = tu_tmpdir();
	char *path = xasprintf("%s/log", dir);
	FILE *fp = fopen(path, "w+");
	int saved = dup(2);
	dup2(fileno(fp), 2);
	queue_refused(&q);
	dup2(saved, 2);
	close(saved);
	fclose(fp);
	struct buf b = BUF_INIT;
	file_read(path, 0, &b, NULL);
	assert_non_null(strstr(b.p, "a@gmail.com"));
	assert_non_null(strstr(b.p, "outside the institution's domains"));
	assert_null(strstr(b.p, "5321234568"));
	assert_null(strstr(b.p, "1234569"));
	buf_free(&b);
	free(path);
	tu_rmtree(dir);
	free(dir);
	assert_int_equal(q.refused, 10);
	pump(&e, T0);
	assert_int_equal(fake.sends, 4);
	env_close(&e);
	/* SMS switched off: refused */
	e.sms_off = true;
	env_open(&e);
	assert_int_equal(queue1(&e, mk("+905321234567", "off1", MEDIUM_SMS)), QUEUE_REFUSED);
	env_free(&e);
}

static void test_valid_state_drop(void **state)
{
	(void)state;
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	struct notice *n = mk("+905321234567", "s1", MEDIUM_SMS);
	n->valid_state = xstrdup("credentials_issued");
	n->next_attempt = T0 + 3600;            /* deferred to working hours */
	queue1(&e, n);
	n = mk("+905321234567", "s2", MEDIUM_SMS);
	n->valid_state = xstrdup("credentials_issued");
	queue1(&e, n);
	e.app_state = "credentials_issued";
	pump(&e, T0);
	expect(&e, "s2", "sent", 1, NULL);
	/* the application moved on before the deferred one was due */
	e.app_state = "commitment_received";
	pump(&e, T0 + 3600);
	expect(&e, "s1", "dropped", 0, NULL);
	json_object *o = notice_doc(&e, "s1");
	assert_non_null(strstr(doc_str(o, "last_error"), "commitment_received"));
	json_object_put(o);
	assert_int_equal(fake.sends, 1);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_int_equal(st.dropped, 1);
	env_free(&e);
}

/* Wait (5 s at most) until n send() calls are held. */
static void wait_blocked(int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&fake.mu);
	int rc = 0;
	while (fake.blocked < n && rc == 0)
		rc = pthread_cond_timedwait(&fake.cv, &fake.mu, &until);
	int got = fake.blocked;
	pthread_mutex_unlock(&fake.mu);
	if (got < n)
		fail_msg("%d batches held, want %d", got, n);
}

/* Close while a batch is still being sent (past the timeout), reopen:
 * the notices go again, none is lost. */
static void test_close_in_flight(void **state)
{
	(void)state;
	log_setlevel(LOG_LVL_ERR);
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	struct txn *t = store_begin(e.st);
	for (int i = 0; i < 3; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		outbox_queue(e.ob, t, mk("a@example.edu.tr", key, MEDIUM_MAIL));
	}
	assert_int_equal(txn_commit(t, NULL), 0);
	pthread_mutex_lock(&fake.mu);
	fake.block = true;
	int closes = fake.closes;
	pthread_mutex_unlock(&fake.mu);
	outbox_kick(e.ob, T0);
	wait_blocked(1);
	assert_int_equal(outbox_in_flight(e.ob), 3);
	outbox_close(e.ob, 100);         /* the worker is stuck: left behind */
	e.ob = NULL;
	expect(&e, "k0", "queued", 0, NULL);
	expect(&e, "k2", "queued", 0, NULL);
	store_close(e.st);
	env_open(&e);
	/* release the old worker: it finishes, frees itself, records nothing */
	pthread_mutex_lock(&fake.mu);
	fake.block = false;
	pthread_cond_broadcast(&fake.cv);
	while (fake.closes < closes + 1)
		pthread_cond_wait(&fake.cv, &fake.mu);
	pthread_mutex_unlock(&fake.mu);
	usleep(50 * 1000);
	pump(&e, T0 + 10);
	for (int i = 0; i < 3; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		expect(&e, key, "sent", 1, NULL);
	}
	assert_int_equal(fake.sends, 6);        /* at least once: twice here */

	/* a batch under way that finishes within the timeout is recorded at
	 * close (one not yet begun would stay queued) */
	queue1(&e, mk("a@example.edu.tr", "k9", MEDIUM_MAIL));
	pthread_mutex_lock(&fake.mu);
	int entered = fake.entered;
	pthread_mutex_unlock(&fake.mu);
	outbox_kick(e.ob, T0);
	pthread_mutex_lock(&fake.mu);
	while (fake.entered == entered)
		pthread_cond_wait(&fake.cv, &fake.mu);
	pthread_mutex_unlock(&fake.mu);
	outbox_close(e.ob, 5000);
	e.ob = NULL;
	expect(&e, "k9", "sent", 1, NULL);
	env_outbox(&e);
	pump(&e, T0);
	assert_int_equal(fake.sends, 7);
	env_free(&e);
	log_setlevel(LOG_LVL_INFO);
}

/* [outbox] global_concurrency: with 1, one batch at a time across both
 * channels; with the default, both SMTP sessions and SMS together. */
static void test_global_concurrency(void **state)
{
	(void)state;
	static const struct { int cap; int want_max; } cases[] = { { 1, 1 }, { 16, 3 } };
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		struct env e;
		env_init(&e);
		e.c.outbox.global_concurrency = cases[k].cap;
		e.c.smtp.batch = 10;
		e.c.sms.concurrency = 2;
		env_close(&e);
		env_open(&e);
		fake_reset(NULL, 0);
		struct txn *t = store_begin(e.st);
		for (int i = 0; i < 60; i++) {
			char key[16];
			snprintf(key, sizeof(key), "g%d", i);
			outbox_queue(e.ob, t, mk(i % 3 ? "a@example.edu.tr" : "+905321234567", key,
						 i % 3 ? MEDIUM_MAIL : MEDIUM_SMS));
		}
		assert_int_equal(txn_commit(t, NULL), 0);
		/* hold the batches until as many as allowed have begun */
		pthread_mutex_lock(&fake.mu);
		fake.block = true;
		pthread_mutex_unlock(&fake.mu);
		outbox_kick(e.ob, T0);
		wait_blocked(cases[k].want_max);
		usleep(20 * 1000);
		pthread_mutex_lock(&fake.mu);
		fake.block = false;
		pthread_cond_broadcast(&fake.cv);
		pthread_mutex_unlock(&fake.mu);
		assert_int_equal(pump(&e, T0), 60);
		if (fake.max_busy != cases[k].want_max)
			fail_msg("cap %d: %d batches at once, want %d", cases[k].cap, fake.max_busy,
				 cases[k].want_max);
		env_free(&e);
	}
}

/* Not a timed test: many notices through a few batches, each batch one
 * commit (bench/store_bench.c measures the rate). */
static void test_many(void **state)
{
	(void)state;
	struct env e;
	env_init(&e);
	fake_reset(NULL, 0);
	struct txn *t = store_begin(e.st);
	for (int i = 0; i < 1000; i++) {
		char key[16];
		snprintf(key, sizeof(key), "m%d", i);
		outbox_queue(e.ob, t, mk(i % 2 ? "a@example.edu.tr" : "+905321234567", key,
					 i % 2 ? MEDIUM_MAIL : MEDIUM_SMS));
	}
	assert_int_equal(txn_commit(t, NULL), 0);
	struct store_stats before, after;
	store_stats(e.st, &before);
	assert_int_equal(pump(&e, T0), 1000);
	store_stats(e.st, &after);
	struct outbox_stats st;
	outbox_stats(e.ob, &st);
	assert_int_equal(st.sent, 1000);
	assert_int_equal(fake.sends, 1000);
	/* group commit: 500 mails in batches of 100, 500 SMS in batches of 16 */
	assert_true(after.commits - before.commits <= 5 + 32);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notice_json),
		cmocka_unit_test(test_sent),
		cmocka_unit_test(test_tempfail_backoff),
		cmocka_unit_test(test_backoff_cap),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_permfail_dead_and_requeue),
		cmocka_unit_test(test_channel_down),
		cmocka_unit_test(test_channel_down_retry_after),
		cmocka_unit_test(test_max_age),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_refused_recipients),
		cmocka_unit_test(test_valid_state_drop),
		cmocka_unit_test(test_close_in_flight),
		cmocka_unit_test(test_global_concurrency),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
