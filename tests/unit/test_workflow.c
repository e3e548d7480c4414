/* Unit tests of the workflow: the transition table (every state and verb),
 * and each rule of DESIGN's workflow against the real store, templates
 * and calendar, with the outbox opened to queue only (nothing is sent;
 * the queued notices are what the tests read). */
#include "testutil.h"

#include "eimzad.h"
#include "jsonutil.h"
#include "workflow_p.h"

#include <stdlib.h>
#include <string.h>

struct transition;
const struct transition *wf_transition(enum wf_verb verb, enum app_state from);

/* ---- the transition table ---- */

static void test_transition_matrix(void **state)
{
	(void)state;
	/* allowed[verb] = states it may start from (R=requested ...). */
	static const struct { enum wf_verb verb; const char *from; } allowed[] = {
		{ WV_APPROVE, "requested" },
		{ WV_REJECT, "requested approved" },
		{ WV_SUBMITTED, "approved expired" },
		{ WV_CREDENTIALS, "approved submitted" },
		{ WV_INFO, "approved submitted" },
		{ WV_DELIVERED, "credentials_issued" },
		{ WV_POSTED, "commitment_received" },
		{ WV_SHIPPED, "credentials_issued commitment_received posted" },
		{ WV_ACTIVATED, "shipped" },
		{ WV_CANCEL, "requested approved submitted credentials_issued commitment_received "
			     "posted shipped expired" },
		{ WV_EXPIRE, "credentials_issued" },
	};
	int checked = 0;
	for (size_t v = 0; v < ARRAY_LEN(allowed); v++) {
		for (int s = 0; s < ST__COUNT; s++) {
			const char *name = app_state_name((enum app_state)s);
			char *padded = xasprintf(" %s ", allowed[v].from), *needle = xasprintf(" %s ", name);
			bool want = strstr(padded, needle) != NULL;
			bool got = wf_transition(allowed[v].verb, (enum app_state)s) != NULL;
			if (want != got)
				fail_msg("verb %d from %s: expected %s", (int)allowed[v].verb, name,
					 want ? "allowed" : "refused");
			free(padded);
			free(needle);
			checked++;
		}
	}
	assert_int_equal(checked, 11 * ST__COUNT);
}

/* ---- a workflow over a real store ---- */

struct fx {
	char *dir;
	struct eimzad ez;
	time_t now;
};

#define CONF_TEXT \
	"[general]\nstate_dir = state\ntemplates_dir = %s/templates\nrules_file = %s/conf/rules.conf\n" \
	"holidays_file = %s/conf/holidays.conf\ninstitution_domains = example.edu.tr\n" \
	"institution_name = Test\n" \
	"[officers]\nebys = ebys@example.edu.tr\nesign = esign@example.edu.tr\n" \
	"escalate_to = head@example.edu.tr\n" \
	"[trust]\nauthserv_id = mx.example.edu.tr\n" \
	"[source]\ntype = maildir\nmaildir = mail\n" \
	"[smtp]\nchannel = file\nfrom = eimza@example.edu.tr\nreply_to = eimza@example.edu.tr\n" \
	"[sms]\nchannel = file\n[outbox]\nfile_dir = out\n"

/* Monday 2026-03-02 10:00 local (Europe/Istanbul). */
static time_t at(const char *local)
{
	time_t t;
	assert_int_equal(cal_parse_local(local, &t), 0);
	return t;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	char *src = realpath(tu_srcdir(), NULL);
	char *text = xasprintf(CONF_TEXT, src, src, src);
	char *path = tu_write(f->dir, "eimzad.conf", text);
	struct conf_errors e = { 0 };
	ez_init(&f->ez);
	if (ez_load(&f->ez, path, &e) < 0)
		fail_msg("config: %s", e.msgs[0]);
	char *err = NULL;
	if (ez_open(&f->ez, EZ_TOOL, &err) != 0)
		fail_msg("open: %s", err);
	f->now = at("2026-03-02 10:00");
	free(src);
	free(text);
	free(path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ez_close(&f->ez);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

typedef void (*txn_fn)(struct fx *f, struct txn *t, void *arg);

static void in_txn(struct fx *f, txn_fn fn, void *arg)
{
	struct txn *t = store_begin(f->ez.store);
	fn(f, t, arg);
	char *err = NULL;
	if (txn_commit(t, &err) < 0)
		fail_msg("commit: %s", err);
}

static void create_cb(struct fx *f, struct txn *t, void *arg)
{
	struct wf_row *r = arg;
	struct wf_origin o = { .actor = "cli:test", .source = "cli" };
	assert_int_equal(wf_create(&f->ez.wf, t, r, 1, &o, f->now, NULL, NULL, NULL), 0);
}

static void create(struct fx *f, const char *name, const char *email, const char *mobile,
		   enum app_state st)
{
	struct wf_row r = { .a = { .name = (char *)name, .email = (char *)email,
				   .mobile = (char *)mobile, .row = 2 },
			    .unit_name = "Test Birimi", .unit_reply_to = "unit@example.edu.tr",
			    .state = st };
	in_txn(f, create_cb, &r);
}

struct cmd_arg {
	const char *id;
	enum cmd_verb verb;
	const char *reason;
	int rc;
	json_object *report;
};

static void cmd_cb(struct fx *f, struct txn *t, void *arg)
{
	struct cmd_arg *c = arg;
	struct wf_origin o = { .actor = "cli:test", .source = "cli" };
	c->rc = wf_command(&f->ez.wf, t, c->id, c->verb, c->reason, &o, f->now, c->report, NULL);
}

static int command(struct fx *f, const char *id, enum cmd_verb verb, const char *reason)
{
	struct cmd_arg c = { id, verb, reason, -1, NULL };
	in_txn(f, cmd_cb, &c);
	return c.rc;
}

static void event_cb(struct fx *f, struct txn *t, void *arg)
{
	assert_int_equal(wf_event(&f->ez.wf, t, arg, f->now, NULL, NULL), 0);
}

static void apply_event(struct fx *f, struct event *ev)
{
	in_txn(f, event_cb, ev);
	event_free(ev);
}

static const char *state_of(struct fx *f, const char *id)
{
	struct app_entry *e = apps_find(f->ez.apps, id);
	return e ? app_state_name(e->state) : "(none)";
}

struct count {
	const char *kind, *to, *medium, *state;
	int n;
};

static int count_cb(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	struct count *c = ctx;
	const char *k = jget_str(doc, "kind"), *to = jget_str(doc, "to"), *m = jget_str(doc, "medium");
	const char *st = jget_str(doc, "state");
	if ((!c->kind || (k && strcmp(k, c->kind) == 0)) && (!c->to || (to && strcmp(to, c->to) == 0)) &&
	    (!c->medium || (m && strcmp(m, c->medium) == 0)) &&
	    (!c->state || (st && strcmp(st, c->state) == 0)))
		c->n++;
	return 0;
}

/* Notices in the store of a kind to a recipient over a medium (NULL = any). */
static int notices(struct fx *f, const char *kind, const char *to, const char *medium)
{
	struct count c = { kind, to, medium, NULL, 0 };
	store_foreach(f->ez.store, "notices", count_cb, &c);
	return c.n;
}

static struct event *kamusm(struct event *ev, enum msg_kind kind, const char *email, const char *code)
{
	event_init(ev);
	ev->kind = kind;
	ev->trusted = true;
	ev->from = xstrdup("bilgi@kamusm.gov.tr");
	ev->applicant.email = xstrdup(email);
	if (code)
		ev->access_code = xstrdup(code);
	ev->link = xstrdup("https://basvuru.kamusm.gov.tr/x");
	static int seq;
	ev->message_id = xasprintf("kamusm-%d@test", ++seq);
	return ev;
}

static struct event *officer_cmd(struct event *ev, enum cmd_verb verb, const char *from,
				 const char *reason, const char *tag, const char *in_reply_to)
{
	event_init(ev);
	ev->kind = MK_COMMAND;
	ev->trusted = strcmp(from, "ebys@example.edu.tr") == 0 || strcmp(from, "esign@example.edu.tr") == 0;
	ev->trust_reason = xstrdup(ev->trusted ? "officer, dkim pass" : "not an officer");
	ev->from = xstrdup(from);
	ev->command.verb = verb;
	if (reason)
		ev->command.reason = xstrdup(reason);
	if (tag)
		ev->command.apps = strv_add(NULL, tag);
	if (in_reply_to)
		ev->in_reply_to = xstrdup(in_reply_to);
	static int seq;
	ev->message_id = xasprintf("cmd-%d@test", ++seq);
	return ev;
}

static void test_illegal_transition_changes_nothing(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", "+905550000001", ST_SUBMITTED);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
	assert_int_equal(command(f, "EIMZA-2026-0001", CMD_ACTIVATED, NULL), 1);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
	assert_int_equal(command(f, "EIMZA-2026-0099", CMD_APPROVE, NULL), 1);
	assert_int_equal(notices(f, NULL, NULL, NULL), 0);
}

static void test_reject_needs_reason_and_tells_unit(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_REQUESTED);
	assert_int_equal(command(f, "EIMZA-2026-0001", CMD_REJECT, ""), 1);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "requested");
	assert_int_equal(command(f, "EIMZA-2026-0001", CMD_REJECT, "görev tanımı gerektirmiyor"), 0);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "rejected");
	assert_int_equal(notices(f, "rejected", "unit@example.edu.tr", "mail"), 1);
	json_object *doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	assert_string_equal(jget_str(doc, "reject_reason"), "görev tanımı gerektirmiyor");
	json_object_put(doc);
}

static void test_credentials_resend_and_new_password(void **state)
{
	struct fx *f = *state;
	create(f, "Ayşe Test", "ayse@example.edu.tr", "+905550000002", ST_SUBMITTED);
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "Ayse@Example.edu.tr", "SYNTH-1"));
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "credentials_issued");
	assert_int_equal(notices(f, "credentials_issued", "ayse@example.edu.tr", "mail"), 1);
	assert_int_equal(notices(f, "credentials_issued", "+905550000002", "sms"), 1);
	json_object *doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	time_t exp1 = jget_time(doc, "credentials.expires");
	assert_true(exp1 > f->now + 180 * 86400 - 86400 * 5);
	assert_null(jget(doc, "access_code"));   /* not stored by default */
	json_object_put(doc);
	/* KAMUSM's weekly re-send of the same password changes nothing. */
	f->now += 7 * 86400;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ayse@example.edu.tr", "SYNTH-1"));
	assert_int_equal(notices(f, "credentials_issued", NULL, NULL), 2);
	doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	assert_int_equal(jget_time(doc, "credentials.expires"), exp1);
	json_object_put(doc);
	/* A new password resets the validity and tells the applicant again. */
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ayse@example.edu.tr", "SYNTH-2"));
	assert_int_equal(notices(f, "credentials_issued", NULL, NULL), 4);
	doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	assert_true(jget_time(doc, "credentials.expires") > exp1);
	json_object_put(doc);
}

static void test_unmatched_kamusm_mail_tells_officer(void **state)
{
	struct fx *f = *state;
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "nobody@example.edu.tr", "X"));
	assert_int_equal(notices(f, "unmatched", "esign@example.edu.tr", "mail"), 1);
	/* Untrusted KAMUSM mail: nothing at all. */
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_SUBMITTED);
	kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "X");
	ev.trusted = false;
	apply_event(f, &ev);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
	assert_int_equal(notices(f, NULL, NULL, NULL), 1);
}

static struct event *letter(struct event *ev, int n)
{
	static const char *const names[] = { "Ali Bir", "Ayşe İki", "Can Üç" };
	static const char *const mails[] = { "ali@example.edu.tr", "ayse@example.edu.tr",
					     "can@example.edu.tr" };
	event_init(ev);
	ev->kind = MK_REQUEST;
	ev->trusted = true;
	ev->from = xstrdup("dekan@example.edu.tr");
	ev->unit_name = xstrdup("Fen Fakültesi");
	ev->unit_reply_to = xstrdup("dekan@example.edu.tr");
	ev->subject = xstrdup("E-imza talebi");
	ev->message_id = xasprintf("letter-%d@test", n);
	ev->applicants = xcalloc((size_t)n, sizeof(*ev->applicants));
	for (int i = 0; i < n; i++) {
		ev->applicants[i].name = xstrdup(names[i]);
		ev->applicants[i].email = xstrdup(mails[i]);
		ev->applicants[i].tc = i == 0 ? xstrdup("10000000146") : NULL;
		ev->applicants[i].row = i + 2;
	}
	ev->napplicants = (size_t)n;
	return ev;
}

struct find_notice {
	const char *kind;
	char *message_id;
};

static int find_cb(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	struct find_notice *fn = ctx;
	if (strcmp(jget_str(doc, "kind"), fn->kind) == 0 && fn->message_id == NULL)
		fn->message_id = xstrdup(jget_str(doc, "message_id"));
	return 0;
}

static char *message_id_of(struct fx *f, const char *kind)
{
	struct find_notice fn = { kind, NULL };
	store_foreach(f->ez.store, "notices", find_cb, &fn);
	assert_non_null(fn.message_id);
	return fn.message_id;
}

static void test_letter_decision_by_reply(void **state)
{
	struct fx *f = *state;
	struct event ev;
	apply_event(f, letter(&ev, 2));
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "requested");
	assert_string_equal(state_of(f, "EIMZA-2026-0002"), "requested");
	assert_int_equal(notices(f, "decision_request", "ebys@example.edu.tr", "mail"), 1);
	char *mid = message_id_of(f, "decision_request");
	/* A bare ONAY in reply to the decision request approves both. */
	apply_event(f, officer_cmd(&ev, CMD_APPROVE, "ebys@example.edu.tr", NULL, NULL, mid));
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "approved");
	assert_string_equal(state_of(f, "EIMZA-2026-0002"), "approved");
	assert_int_equal(notices(f, "approved", "esign@example.edu.tr", "mail"), 2);
	/* The same letter again attaches, never duplicates. */
	apply_event(f, letter(&ev, 3));
	assert_int_equal(apps_count(f->ez.apps), 3);
	assert_string_equal(state_of(f, "EIMZA-2026-0003"), "requested");
	free(mid);
}

static void test_command_refusals(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_SUBMITTED);
	struct event ev;
	/* Not an officer: not obeyed, answered once a day. */
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "someone@example.edu.tr", NULL,
				   "EIMZA-2026-0001", NULL));
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "someone@example.edu.tr", NULL,
				   "EIMZA-2026-0001", NULL));
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
	assert_int_equal(notices(f, "command_refused", "someone@example.edu.tr", NULL), 1);
	/* Outside the institution: never answered. */
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "x@evil.example", NULL, "EIMZA-2026-0001", NULL));
	assert_int_equal(notices(f, "command_refused", NULL, NULL), 1);
	/* An officer, an illegal step: told once per day, naming the state. */
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "ebys@example.edu.tr", NULL, "EIMZA-2026-0001", NULL));
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "ebys@example.edu.tr", NULL, "EIMZA-2026-0001", NULL));
	assert_int_equal(notices(f, "command_refused", "ebys@example.edu.tr", NULL), 1);
	f->now += 86400;
	apply_event(f, officer_cmd(&ev, CMD_ACTIVATED, "ebys@example.edu.tr", NULL, "EIMZA-2026-0001", NULL));
	assert_int_equal(notices(f, "command_refused", "ebys@example.edu.tr", NULL), 2);
	/* No tag anywhere: asked which. */
	apply_event(f, officer_cmd(&ev, CMD_DELIVERED, "ebys@example.edu.tr", NULL, NULL, NULL));
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
	assert_int_equal(notices(f, "command_refused", "ebys@example.edu.tr", NULL), 3);
}

/* Reminders: credentials_issued on Monday 10:00 -> first reminder due
 * after 2 working days (Wednesday 10:00), sent at the 14:00 pass; then
 * every 3 working days; the 4th due becomes an escalation. */
static void test_reminders_then_escalation(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", "+905550000001", ST_SUBMITTED);
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "C1"));
	struct { const char *when; int digests_ali; int escalations; } steps[] = {
		{ "2026-03-02 14:00", 0, 0 },   /* Monday pass: nothing due yet */
		{ "2026-03-04 09:00", 0, 0 },   /* Wednesday 09:00: due at 10:00 */
		{ "2026-03-04 14:00", 1, 0 },   /* reminder 1 */
		{ "2026-03-05 09:00", 1, 0 },
		{ "2026-03-09 14:00", 2, 0 },   /* + 3 working days: Monday */
		{ "2026-03-12 14:00", 3, 0 },   /* reminder 3: Thursday */
		{ "2026-03-17 14:00", 4, 1 },   /* the 4th: an escalation (copied to Ali) */
	};
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		struct txn *t = store_begin(f->ez.store);
		assert_true(wf_timers(&f->ez.wf, t, at(steps[i].when), NULL) >= 0);
		assert_int_equal(txn_commit(t, NULL), 0);
		int d = notices(f, "digest", "ali@example.edu.tr", "mail");
		if (d != steps[i].digests_ali)
			fail_msg("at %s: %d digests to the applicant, expected %d", steps[i].when, d,
				 steps[i].digests_ali);
		assert_int_equal(notices(f, "digest", "head@example.edu.tr", "mail"), steps[i].escalations);
	}
	/* SMS reminders go with the first three. */
	assert_int_equal(notices(f, "reminder_credentials", "+905550000001", "sms"), 3);
	/* A restart (a fresh workflow view of the same store) repeats nothing. */
	f->ez.wf.last_pass = 0;
	struct txn *t = store_begin(f->ez.store);
	wf_timers(&f->ez.wf, t, at("2026-03-17 14:30"), NULL);
	assert_int_equal(txn_commit(t, NULL), 0);
	assert_int_equal(notices(f, "digest", "ali@example.edu.tr", "mail"), 4);
}

static void test_password_expiry(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_SUBMITTED);
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "C1"));
	struct txn *t = store_begin(f->ez.store);
	wf_timers(&f->ez.wf, t, at("2026-09-03 10:00"), NULL);
	assert_int_equal(txn_commit(t, NULL), 0);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "expired");
	assert_int_equal(notices(f, "expired", "esign@example.edu.tr", "mail"), 1);
	/* The officer resubmits: expired -> submitted. */
	f->now = at("2026-09-04 10:00");
	assert_int_equal(command(f, "EIMZA-2026-0001", CMD_SUBMITTED, NULL), 0);
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "submitted");
}

struct body_find {
	const char *to, *needle;
	int n;
};

static int body_cb(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	struct body_find *b = ctx;
	const char *to = jget_str(doc, "to"), *body = jget_str(doc, "body");
	if (to && strcmp(to, b->to) == 0 && body && strstr(body, b->needle))
		b->n++;
	return 0;
}

/* The officer is warned once, 30 days before the access password expires. */
static void test_password_warning_once(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_SUBMITTED);
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "C1"));
	const char *passes[] = { "2026-08-03 09:00", "2026-08-03 14:00", "2026-08-04 14:00" };
	int want[] = { 0, 1, 1 };
	for (size_t i = 0; i < ARRAY_LEN(passes); i++) {
		struct txn *t = store_begin(f->ez.store);
		wf_timers(&f->ez.wf, t, at(passes[i]), NULL);
		assert_int_equal(txn_commit(t, NULL), 0);
		struct body_find b = { "esign@example.edu.tr", "2026-09-02", 0 };
		store_foreach(f->ez.store, "notices", body_cb, &b);
		if (b.n != want[i])
			fail_msg("at %s: %d warnings naming the expiry, expected %d", passes[i], b.n, want[i]);
	}
	assert_string_equal(state_of(f, "EIMZA-2026-0001"), "credentials_issued");
	/* A new password restarts the validity: its expiry is warned about too. */
	f->now = at("2026-08-05 10:00");
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "C2"));
	json_object *doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	time_t exp = jget_time(doc, "credentials.expires");
	json_object_put(doc);
	char day[16];
	cal_fmt_date(exp, day, sizeof(day));
	struct txn *t = store_begin(f->ez.store);
	wf_timers(&f->ez.wf, t, exp - 86400, NULL);
	assert_int_equal(txn_commit(t, NULL), 0);
	struct body_find b = { "esign@example.edu.tr", day, 0 };
	store_foreach(f->ez.store, "notices", body_cb, &b);
	if (b.n != 1)
		fail_msg("%d warnings naming the new expiry %s, expected 1", b.n, day);
}

static void test_bounce_marks_unreachable_once(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", NULL, ST_SUBMITTED);
	struct event ev;
	apply_event(f, kamusm(&ev, MK_KAMUSM_CREDENTIALS, "ali@example.edu.tr", "C1"));
	char *mid = message_id_of(f, "credentials_issued");
	for (int i = 0; i < 2; i++) {
		event_init(&ev);
		ev.kind = MK_BOUNCE;
		ev.bounce.recipient = xstrdup("ali@example.edu.tr");
		ev.bounce.permanent = true;
		ev.bounce.status = xstrdup("5.1.1");
		ev.bounce.notice = xstrdup(mid);
		ev.message_id = xasprintf("bounce-%d@test", i);
		apply_event(f, &ev);
	}
	assert_true(apps_find(f->ez.apps, "EIMZA-2026-0001")->unreachable);
	assert_int_equal(notices(f, "unreachable", "ebys@example.edu.tr", "mail"), 1);
	free(mid);
}

static void test_purge_removes_personal_data(void **state)
{
	struct fx *f = *state;
	create(f, "Ali Test", "ali@example.edu.tr", "+905550000001", ST_REQUESTED);
	assert_int_equal(command(f, "EIMZA-2026-0001", CMD_REJECT, "no"), 0);
	struct txn *t = store_begin(f->ez.store);
	json_object *rep = json_object_new_array();
	wf_purge(&f->ez.wf, t, f->now + 100 * 86400, false, rep, NULL);
	assert_int_equal(json_object_array_length(rep), 0);    /* not yet past retention */
	/* A dry run reports what it would remove and removes nothing. */
	wf_purge(&f->ez.wf, t, f->now + 400 * 86400, true, rep, NULL);
	assert_int_equal(json_object_array_length(rep), 1);
	assert_int_equal(txn_commit(t, NULL), 0);
	json_object *doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	assert_string_equal(jget_str(doc, "applicant.name"), "Ali Test");
	assert_false(jget_bool(doc, "purged"));
	json_object_put(doc);
	assert_int_equal(notices(f, "rejected", "unit@example.edu.tr", "mail"), 1);
	t = store_begin(f->ez.store);
	wf_purge(&f->ez.wf, t, f->now + 400 * 86400, false, rep, NULL);
	assert_int_equal(json_object_array_length(rep), 2);
	assert_int_equal(txn_commit(t, NULL), 0);
	json_object_put(rep);
	doc = store_get(f->ez.store, "apps", "EIMZA-2026-0001");
	assert_null(jget_str(doc, "applicant.name"));
	assert_null(jget_str(doc, "applicant.email"));
	assert_null(jget_str(doc, "applicant.mobile"));
	assert_null(jget(doc, "unit.reply_to"));
	assert_null(jget(doc, "reject_reason"));
	assert_null(jget(doc, "thread"));
	assert_string_equal(jget_str(doc, "state"), "rejected");
	assert_true(jget_bool(doc, "purged"));
	json_object *h = jget(doc, "history");
	assert_true(json_object_array_length(h) >= 2);
	for (size_t i = 0; i < json_object_array_length(h); i++) {
		json_object *r = json_object_array_get_idx(h, i);
		assert_non_null(jget_str(r, "event"));
		assert_null(jget(r, "actor"));
		assert_null(jget(r, "detail"));
		assert_null(jget(r, "notices"));
	}
	json_object_put(doc);
	assert_int_equal(notices(f, NULL, NULL, NULL), 0);
}

int main(void)
{
	setenv("TZ", "Europe/Istanbul", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_matrix),
		cmocka_unit_test_setup_teardown(test_illegal_transition_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_needs_reason_and_tells_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_resend_and_new_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmatched_kamusm_mail_tells_officer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_letter_decision_by_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reminders_then_escalation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_warning_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_marks_unreachable_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_removes_personal_data, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
