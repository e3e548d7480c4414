/* workflow_timers.c: reminders, escalations, password warnings and expiry,
 * and the whole-process alarm (see workflow.h "Time").
 *
 * Each application's document carries its clock:
 *   clock.since        when the current state's clock started
 *   clock.due          next reminder or escalation (0: none in this state)
 *   clock.reminders    reminders sent in this state
 *   clock.escalations  escalations sent in this state
 *   clock.next         the earliest of due, the alarm, the password warning
 *                      and the password's expiry: what the index keys on
 *   alarm.last         last whole-process alarm
 *   credentials.warned the password warning went out
 * A pass at time P handles every clock whose time is <= P, advances it
 * from P, and records P as meta/timers "last_pass" in the same transaction.
 */
#include "workflow_p.h"
#include "hashmap.h"
#include "jsonutil.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct reminder_rule {
	enum app_state state;
	size_t first;           /* offsetof(struct conf_workflow, ...) */
	size_t repeat;          /* 0: repeat at the first interval */
	const char *sms_kind;   /* SMS reminder to the applicant, or NULL */
};

#define WO(f) offsetof(struct conf_workflow, f)
static const struct reminder_rule reminder_rules[] = {
	{ ST_REQUESTED, WO(remind_requested), 0, NULL },
	{ ST_APPROVED, WO(remind_approved), 0, NULL },
	{ ST_SUBMITTED, WO(remind_submitted), 0, NULL },
	{ ST_CREDENTIALS_ISSUED, WO(remind_credentials), WO(repeat_credentials), "reminder_credentials" },
	{ ST_COMMITMENT_RECEIVED, WO(remind_commitment), 0, NULL },
	{ ST_POSTED, WO(remind_posted), 0, NULL },
	{ ST_SHIPPED, WO(remind_shipped), 0, "reminder_shipped" },
};
#undef WO

static const struct reminder_rule *rule_for(enum app_state s)
{
	for (size_t i = 0; i < ARRAY_LEN(reminder_rules); i++)
		if (reminder_rules[i].state == s)
			return &reminder_rules[i];
	return NULL;
}

static const struct period *period_at(const struct wf *wf, size_t off)
{
	return (const struct period *)((const char *)&wf->conf->workflow + off);
}

static time_t first_due(struct wf *wf, enum app_state s, time_t since)
{
	const struct reminder_rule *r = rule_for(s);
	if (r == NULL || period_is_zero(period_at(wf, r->first)))
		return 0;
	/* Taahhütnames go by post in weekly batches: remind the working day
	 * after the posting day, not a fixed time after the hand-in. */
	if (s == ST_COMMITMENT_RECEIVED)
		return cal_day_after_weekday(wf->cal, since, wf->conf->workflow.posting_day);
	return cal_add(wf->cal, since, period_at(wf, r->first));
}

/* The next reminder after one sent at `from`: the state's repeat interval,
 * and never sooner than one working day. Taahhütnames wait for the weekly
 * post: that reminder repeats after the next posting day, not daily. */
static time_t repeat_due(struct wf *wf, enum app_state s, time_t from)
{
	const struct reminder_rule *r = rule_for(s);
	if (r == NULL)
		return 0;
	if (s == ST_COMMITMENT_RECEIVED)
		return cal_day_after_weekday(wf->cal, from, wf->conf->workflow.posting_day);
	const struct period *p = period_at(wf, r->repeat ? r->repeat : r->first);
	static const struct period one_day = { PERIOD_WORK_DAYS, 1 };
	time_t a = cal_add(wf->cal, from, p), b = cal_add(wf->cal, from, &one_day);
	return a > b ? a : b;
}

static time_t alarm_due(struct wf *wf, json_object *doc)
{
	const struct conf_workflow *w = &wf->conf->workflow;
	if (period_is_zero(&w->stale_after) || !app_state_open(app_doc_state(doc)))
		return 0;
	time_t opened = jget_time(doc, "opened");
	time_t last = jget_time(doc, "alarm.last");
	time_t a = opened ? cal_add(wf->cal, opened, &w->stale_after) : 0;
	time_t b = last ? cal_add(wf->cal, last, &w->stale_interval) : 0;
	return a > b ? a : b;
}

/* When the officer is warned that the access password runs out. */
static time_t pw_warn_due(struct wf *wf, json_object *doc)
{
	time_t exp = jget_time(doc, "credentials.expires");
	if (exp == 0 || app_doc_state(doc) != ST_CREDENTIALS_ISSUED || jget_bool(doc, "credentials.warned"))
		return 0;
	return cal_sub(exp, &wf->conf->workflow.password_warn);
}

static time_t min_nonzero(time_t a, time_t b)
{
	return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

void wf_clock_next(struct wf *wf, json_object *doc)
{
	time_t next = jget_time(doc, "clock.due");
	next = min_nonzero(next, alarm_due(wf, doc));
	next = min_nonzero(next, pw_warn_due(wf, doc));
	if (app_doc_state(doc) == ST_CREDENTIALS_ISSUED)
		next = min_nonzero(next, jget_time(doc, "credentials.expires"));
	jset_time(doc, "clock.next", next);
}

void wf_clock_start(struct wf *wf, json_object *doc, time_t since)
{
	enum app_state s = app_doc_state(doc);
	jset_time(doc, "clock.since", since);
	jset_int(doc, "clock.reminders", 0);
	jset_int(doc, "clock.escalations", 0);
	jset_time(doc, "clock.due", app_state_open(s) ? first_due(wf, s, since) : 0);
	/* Catch-up: old mail starts clocks at go-live and raises no alarm now. */
	if (wf->catchup && jget(doc, "alarm.last") == NULL)
		jset_time(doc, "alarm.last", wf->catchup_now);
	wf_clock_next(wf, doc);
}

/* ---- the pass: digests per recipient ---- */

struct digest {
	struct hashmap *by_rcpt;      /* recipient -> json array of items */
	char **rcpts;                 /* insertion order, for stable output */
};

static void digest_add(struct digest *d, const char *rcpt, json_object *item)
{
	if (rcpt == NULL)
		return;
	char *low = str_lower_ascii(xstrdup(rcpt));
	json_object *list = hm_get(d->by_rcpt, low);
	if (list == NULL) {
		list = json_object_new_array();
		hm_put(d->by_rcpt, low, list);
		d->rcpts = strv_add(d->rcpts, low);
	}
	json_object_array_add(list, json_object_get(item));
	free(low);
}

static void digest_add_all(struct digest *d, char *const *rcpts, json_object *item)
{
	for (size_t i = 0; rcpts && rcpts[i]; i++)
		digest_add(d, rcpts[i], item);
}

static json_object *item_for(struct wf *wf, json_object *doc, const char *kind, int64_t count,
			     time_t pass)
{
	json_object *it = wf_app_vars(wf, doc);
	jput_str(it, "kind", kind);
	jset_bool(it, "is_escalation", strcmp(kind, "escalation") == 0);
	jset_bool(it, "is_alarm", strcmp(kind, "alarm") == 0);
	jset_bool(it, "is_password_warning", strcmp(kind, "password_warning") == 0);
	jset_int(it, "count", count);
	time_t since = jget_time(doc, "state_since");
	jset_int(it, "days", since && pass > since ? (int64_t)((pass - since) / 86400) : 0);
	time_t opened = jget_time(doc, "opened");
	jset_int(it, "days_open", opened && pass > opened ? (int64_t)((pass - opened) / 86400) : 0);
	return it;
}

/* The actor of a state as addresses (a vector the caller frees). */
static char **actor_rcpts(struct wf *wf, json_object *doc)
{
	enum wf_actor a = wf_state_info(app_doc_state(doc))->actor;
	if (a == ACTOR_APPLICANT) {
		const char *e = jget_str(doc, "applicant.email");
		return e ? strv_add(NULL, e) : NULL;
	}
	char **v = NULL;
	char *const *src = a == ACTOR_NONE ? NULL : wf_officers(wf, a);
	for (size_t i = 0; src && src[i]; i++)
		v = strv_add(v, src[i]);
	return v;
}

static void escalation_rcpts(struct wf *wf, struct digest *d, json_object *item)
{
	const struct conf_officers *o = &wf->conf->officers;
	digest_add_all(d, o->ebys, item);
	digest_add_all(d, o->esign, item);
	digest_add_all(d, o->escalate_to, item);
}

static void sms_reminder(struct wf *wf, struct txn *t, json_object *doc, int64_t n, time_t now)
{
	const struct reminder_rule *r = rule_for(app_doc_state(doc));
	const char *mobile = jget_str(doc, "applicant.mobile");
	if (r == NULL || r->sms_kind == NULL || mobile == NULL)
		return;
	json_object *vars = wf_app_vars(wf, doc);
	json_object *h = jget(doc, "history");
	char *dedupe = xasprintf("sms-reminder:%s:%zu:%lld", jget_str(doc, "id"),
				 h ? json_object_array_length(h) : 0, (long long)n);
	struct wf_notice spec = { .kind = r->sms_kind, .medium = MEDIUM_SMS, .to = mobile, .doc = doc,
				  .dedupe = dedupe, .valid_state = jget_str(doc, "state") };
	free(wf_notify(wf, t, &spec, vars, now));
	free(dedupe);
	json_object_put(vars);
}

/* Reminder or escalation of one application at pass P. */
static void remind_one(struct wf *wf, struct txn *t, struct digest *d, json_object *doc, time_t pass,
		       time_t now)
{
	enum app_state s = app_doc_state(doc);
	int64_t n = jget_int(doc, "clock.reminders");
	int64_t k = jget_int(doc, "clock.escalations");
	char **actor = actor_rcpts(wf, doc);
	if (n < wf->conf->workflow.reminders_before_escalation) {
		json_object *it = item_for(wf, doc, "reminder", n + 1, pass);
		digest_add_all(d, actor, it);
		json_object_put(it);
		sms_reminder(wf, t, doc, n + 1, now);
		jset_int(doc, "clock.reminders", n + 1);
		jset_time(doc, "clock.due", repeat_due(wf, s, pass));
	} else {
		json_object *it = item_for(wf, doc, "escalation", k + 1, pass);
		escalation_rcpts(wf, d, it);
		digest_add_all(d, actor, it);     /* copied to whoever must act */
		json_object_put(it);
		jset_int(doc, "clock.escalations", k + 1);
		jset_time(doc, "clock.due", cal_add(wf->cal, pass, &wf->conf->workflow.escalation_interval));
	}
	strv_free(actor);
}

static void pass_one(struct wf *wf, struct txn *t, struct digest *d, json_object *doc, time_t pass,
		     time_t now)
{
	time_t due = jget_time(doc, "clock.due");
	if (due && due <= pass)
		remind_one(wf, t, d, doc, pass, now);
	time_t alarm = alarm_due(wf, doc);
	if (alarm && alarm <= pass) {
		json_object *it = item_for(wf, doc, "alarm", 0, pass);
		escalation_rcpts(wf, d, it);
		json_object_put(it);
		jset_time(doc, "alarm.last", pass);
	}
	time_t warn = pw_warn_due(wf, doc);
	if (warn && warn <= pass) {
		json_object *it = item_for(wf, doc, "password_warning", 0, pass);
		digest_add_all(d, wf_officers(wf, ACTOR_ESIGN), it);
		json_object_put(it);
		jset_bool(doc, "credentials.warned", true);
	}
	wf_clock_next(wf, doc);
}

/* Queue one recipient's digest of the pass; true if queued. */
static bool send_digest_one(struct wf *wf, struct txn *t, const char *rcpt, json_object *items,
			    time_t pass, time_t now)
{
	char **ids = NULL;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		const char *tag = jget_str(json_object_array_get_idx(items, i), "tag");
		if (tag && !strv_contains(ids, tag))
			ids = strv_add(ids, tag);
	}
	json_object *vars = json_object_new_object();
	jset(vars, "items", json_object_get(items));
	jset_int(vars, "count", (int64_t)json_object_array_length(items));
	char when[32];
	jput_str(vars, "pass", cal_fmt_datetime(pass, when, sizeof(when)));
	char *dedupe = xasprintf("digest:%s:%lld", rcpt, (long long)pass);
	/* A pass run late (the daemon was down at its time) still mails only
	 * in working time. */
	struct wf_notice spec = { .kind = "digest", .medium = MEDIUM_MAIL, .to = rcpt,
				  .app_ids = ids, .dedupe = dedupe,
				  .not_before = cal_next_working_time(wf->cal, now) };
	char *id = wf_notify(wf, t, &spec, vars, now);
	bool queued = id != NULL;
	free(id);
	free(dedupe);
	strv_free(ids);
	json_object_put(vars);
	return queued;
}

static int free_list(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	json_object_put(value);
	return 0;
}

/* Entries whose clock is due at or before t (ids; caller frees). */
static char **due_ids(struct wf *wf, time_t t)
{
	size_t n;
	struct app_entry **v = apps_due(wf->apps, t, &n);
	char **ids = n ? xcalloc(n + 1, sizeof(*ids)) : NULL;
	for (size_t i = 0; i < n; i++)
		ids[i] = xstrdup(v[i]->id);
	free(v);
	return ids;
}

/* A reminder pass at time `pass` (clocks advance from it), run at `now`
 * (notices are timed from it: a late pass sends nothing outside hours). */
static int run_pass(struct wf *wf, struct txn *t, time_t pass, time_t now)
{
	struct digest d = { hm_new(), NULL };
	char **ids = due_ids(wf, pass);
	for (size_t i = 0; ids && ids[i]; i++) {
		json_object *doc = txn_get(t, "apps", ids[i]);
		if (doc == NULL)
			continue;
		pass_one(wf, t, &d, doc, pass, now);
		wf_put(wf, t, doc);
	}
	int queued = 0;
	for (size_t i = 0; d.rcpts && d.rcpts[i]; i++)
		queued += send_digest_one(wf, t, d.rcpts[i], hm_get(d.by_rcpt, d.rcpts[i]), pass,
					  now);
	log_info("workflow: reminder pass: %zu applications due, %d digests", strv_len(ids), queued);
	hm_foreach(d.by_rcpt, free_list, NULL);
	hm_free(d.by_rcpt);
	strv_free(d.rcpts);
	strv_free(ids);
	return queued;
}

/* Access passwords past their validity: credentials_issued -> expired. */
static int run_expiry(struct wf *wf, struct txn *t, time_t now)
{
	int n = 0;
	char **ids = due_ids(wf, now);
	for (size_t i = 0; ids && ids[i]; i++) {
		struct app_entry *e = apps_find(wf->apps, ids[i]);
		if (e == NULL || e->state != ST_CREDENTIALS_ISSUED)
			continue;
		json_object *doc = txn_get(t, "apps", ids[i]);
		time_t exp = doc ? jget_time(doc, "credentials.expires") : 0;
		if (exp == 0 || exp > now) {
			json_object_put(doc);
			continue;
		}
		struct wf_origin o = { .actor = "timer", .source = "expiry" };
		if (wf_apply(wf, t, doc, WV_EXPIRE, NULL, &o, exp, now, NULL) == 0)
			n++;
	}
	strv_free(ids);
	return n;
}

static void set_last_pass(struct wf *wf, struct txn *t, time_t pass)
{
	json_object *m = txn_get(t, "meta", "timers");
	if (m == NULL) {
		m = json_object_new_object();
		jset_int(m, "version", 1);
	}
	jset_time(m, "last_pass", pass);
	txn_put(t, "meta", "timers", m);
	wf->last_pass = pass;
}

/* The last pass run; on a first start, now (recorded: nothing is owed
 * from before the daemon ever ran). */
static time_t last_pass(struct wf *wf, struct txn *t, time_t now)
{
	if (wf->last_pass)
		return wf->last_pass;
	json_object *m = txn_get(t, "meta", "timers");
	time_t lp = m ? jget_time(m, "last_pass") : 0;
	json_object_put(m);
	if (lp == 0) {
		set_last_pass(wf, t, now);
		return now;
	}
	wf->last_pass = lp;
	return lp;
}

int wf_timers(struct wf *wf, struct txn *t, time_t now, char **err)
{
	(void)err;
	int n = run_expiry(wf, t, now);
	time_t lp = last_pass(wf, t, now);
	time_t p = cal_next_pass(wf->cal, lp);
	if (p == 0 || p > now)
		return n;
	/* Passes missed while the daemon was down collapse into the latest:
	 * what was due is sent once, not once per missed pass. */
	for (time_t q; (q = cal_next_pass(wf->cal, p)) != 0 && q <= now;)
		p = q;
	n += run_pass(wf, t, p, now);
	set_last_pass(wf, t, p);
	return n;
}

time_t wf_next_timer(struct wf *wf, time_t now)
{
	time_t next = now + 3600 - now % 3600;
	time_t p = cal_next_pass(wf->cal, wf->last_pass ? wf->last_pass : now);
	return p && p < next ? (p > now ? p : now) : next;
}
