/* workflow.c: transitions, events from mail, commands, creation, edits,
 * purge. See workflow.h for the rules; notices are built in
 * workflow_notify.c and timers run in workflow_timers.c. */
#include "workflow_p.h"
#include "classify.h"
#include "jsonutil.h"
#include "log.h"
#include "phone.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct transition {
	enum wf_verb verb;
	uint32_t from;          /* ST_BIT mask */
	enum app_state to;
	const char *event;      /* history name */
};

#define B(s) ST_BIT(ST_##s)
static const struct transition transitions[] = {
	{ WV_APPROVE, B(REQUESTED), ST_APPROVED, "approve" },
	{ WV_REJECT, B(REQUESTED) | B(APPROVED), ST_REJECTED, "reject" },
	{ WV_SUBMITTED, B(APPROVED) | B(EXPIRED), ST_SUBMITTED, "submitted" },
	{ WV_CREDENTIALS, B(APPROVED) | B(SUBMITTED), ST_CREDENTIALS_ISSUED, "kamusm.credentials" },
	{ WV_INFO, B(APPROVED) | B(SUBMITTED), ST_CREDENTIALS_ISSUED, "kamusm.info" },
	{ WV_DELIVERED, B(CREDENTIALS_ISSUED), ST_COMMITMENT_RECEIVED, "delivered" },
	{ WV_POSTED, B(COMMITMENT_RECEIVED), ST_POSTED, "posted" },
	{ WV_SHIPPED, B(CREDENTIALS_ISSUED) | B(COMMITMENT_RECEIVED) | B(POSTED), ST_SHIPPED,
	  "kamusm.shipped" },
	{ WV_ACTIVATED, B(SHIPPED), ST_ACTIVATED, "activated" },
	{ WV_CANCEL, ST_OPEN_MASK, ST_CANCELLED, "cancel" },
	{ WV_EXPIRE, B(CREDENTIALS_ISSUED), ST_EXPIRED, "expired" },
};
#undef B

/* The transition for verb from state, or NULL when not allowed. */
const struct transition *wf_transition(enum wf_verb verb, enum app_state from);
const struct transition *wf_transition(enum wf_verb verb, enum app_state from)
{
	for (size_t i = 0; i < ARRAY_LEN(transitions); i++)
		if (transitions[i].verb == verb && (transitions[i].from & ST_BIT(from)))
			return &transitions[i];
	return NULL;
}

/* Which states a verb may start from, in words, for refusals. */
static char *allowed_from(enum wf_verb verb)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < ARRAY_LEN(transitions); i++) {
		if (transitions[i].verb != verb)
			continue;
		for (int s = 0; s < ST__COUNT; s++)
			if (transitions[i].from & ST_BIT(s))
				buf_printf(&b, "%s%s", b.len ? ", " : "", app_state_name(s));
	}
	return buf_steal(&b);
}

static const char *verb_word(enum wf_verb v)
{
	static const char *const words[WV__COUNT] = {
		[WV_APPROVE] = "ONAY", [WV_REJECT] = "RED", [WV_SUBMITTED] = "GONDERILDI",
		[WV_DELIVERED] = "TESLIM", [WV_POSTED] = "POSTA", [WV_ACTIVATED] = "AKTIF",
		[WV_CANCEL] = "IPTAL", [WV_CREDENTIALS] = "KAMUSM credentials mail",
		[WV_INFO] = "KAMUSM information mail", [WV_SHIPPED] = "KAMUSM shipment notice",
		[WV_EXPIRE] = "expiry",
	};
	return (unsigned)v < WV__COUNT && words[v] ? words[v] : "?";
}

void wf_report(json_object *report, const char *app, bool ok, const char *from, const char *to,
	       const char *fmt, ...)
{
	if (report == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	jset_str(o, "app", app);
	jset_bool(o, "ok", ok);
	jset_str(o, "from", from);
	jset_str(o, "to", to);
	jset_str(o, "message", msg);
	json_object_array_add(report, o);
	free(msg);
}

void wf_put(struct wf *wf, struct txn *t, json_object *doc)
{
	apps_index(wf->apps, doc);
	txn_put(t, "apps", jget_str(doc, "id"), doc);
}

/* Load an application for change (a new reference), or NULL. */
static json_object *load_app(struct wf *wf, struct txn *t, const char *id)
{
	if (id == NULL || !store_id_valid(id))
		return NULL;
	json_object *doc = txn_get(t, "apps", id);
	if (doc != NULL && jget_int(doc, "version") != APP_VERSION) {
		log_warnx("workflow: %s: unknown document version", id);
		json_object_put(doc);
		return NULL;
	}
	return doc;
}

/* Verb-specific checks and data before a transition; returns NULL when
 * fine or a refusal reason (static). */
static const char *pre_transition(enum wf_verb verb, const char *detail)
{
	if (verb == WV_REJECT && str_empty(detail))
		return "RED needs a reason: write it after the word, e.g. "
		       "\"RED görev tanımı e-imza gerektirmiyor\"";
	return NULL;
}

/*
 * Apply verb to the document (a reference the caller hands over). On
 * success the document is stored and its notices queued. Returns 0, or 1
 * when refused (reported).
 */
int wf_apply(struct wf *wf, struct txn *t, json_object *doc, enum wf_verb verb,
		 const char *detail, const struct wf_origin *o, time_t at, time_t now,
		 json_object *report)
{
	const char *id = jget_str(doc, "id");
	enum app_state from = app_doc_state(doc);
	const struct transition *tr = wf_transition(verb, from);
	const char *why = tr ? pre_transition(verb, detail) : NULL;
	if (tr == NULL || why != NULL) {
		char *allowed = allowed_from(verb);
		char *reason = why ? xstrdup(why)
				   : xasprintf("%s is not possible in state %s (only from: %s)",
					       verb_word(verb), app_state_name(from), allowed);
		wf_refuse(wf, t, o, id, app_state_name(from), reason, now, report);
		free(reason);
		free(allowed);
		json_object_put(doc);
		return 1;
	}
	jset_str(doc, "state", app_state_name(tr->to));
	jset_time(doc, "state_since", at);
	if (!app_state_open(tr->to))
		jset_time(doc, "closed_at", at);
	if (verb == WV_REJECT)
		jset_str(doc, "reject_reason", detail);
	json_object *hist = app_history_add(doc, at, tr->event, app_state_name(from),
					    app_state_name(tr->to), o->actor, o->source,
					    verb == WV_REJECT ? detail : NULL);
	wf_enter(wf, t, doc, tr->to, at, now, hist);
	wf_report(report, id, true, app_state_name(from), app_state_name(tr->to), "%s: %s -> %s",
		  verb_word(verb), app_state_name(from), app_state_name(tr->to));
	log_info("workflow: %s: %s -> %s (%s by %s)", id, app_state_name(from),
		 app_state_name(tr->to), tr->event, o->actor);
	wf_put(wf, t, doc);
	return 0;
}

int wf_command(struct wf *wf, struct txn *t, const char *app_id, enum cmd_verb verb,
	       const char *reason, const struct wf_origin *o, time_t at, json_object *report,
	       char **err)
{
	time_t now = at;
	json_object *doc = load_app(wf, t, app_id);
	if (doc == NULL) {
		char *msg = xasprintf("no application %s", app_id ? app_id : "(none)");
		wf_refuse(wf, t, o, app_id, NULL, msg, now, report);
		free(msg);
		return 1;
	}
	if (verb <= CMD_NONE || verb >= CMD__COUNT) {
		json_object_put(doc);
		return seterr(err, "workflow: unknown command verb %d", (int)verb);
	}
	return wf_apply(wf, t, doc, (enum wf_verb)verb, reason, o, at, now, report);
}

/* ---- KAMUSM mail ---- */

/* Record what KAMUSM's credentials mail says; returns true if the access
 * password is new (first one, or a different one: validity restarts). */
static bool note_credentials(struct wf *wf, json_object *doc, const struct event *ev, time_t at)
{
	bool online = ev->kind == MK_KAMUSM_INFO;
	char hash[65] = "";
	if (ev->access_code)
		sha256_hex(ev->access_code, strlen(ev->access_code), hash);
	const char *old = jget_str(doc, "credentials.code_hash");
	bool fresh = jget(doc, "credentials") == NULL ||
		     (hash[0] && (old == NULL || strcmp(old, hash) != 0));
	jset_str(doc, "credentials.flow", online ? "online" : "password");
	jset_time(doc, "credentials.last_seen", at);
	if (ev->link)
		jset_str(doc, "credentials.link", ev->link);
	if (!fresh)
		return false;
	jset_time(doc, "credentials.first_seen", at);
	if (hash[0])
		jset_str(doc, "credentials.code_hash", hash);
	if (wf->conf->general.store_access_codes && ev->access_code)
		jset_str(doc, "access_code", ev->access_code);
	jset_bool(doc, "credentials.warned", false);
	if (!online && !period_is_zero(&wf->conf->workflow.password_validity))
		jset_time(doc, "credentials.expires",
			  cal_add(wf->cal, at, &wf->conf->workflow.password_validity));
	else
		jset(doc, "credentials.expires", NULL);
	return true;
}

/* KAMUSM's weekly re-send of the password, or a new password for an
 * application already in credentials_issued. */
static void credentials_again(struct wf *wf, struct txn *t, json_object *doc,
			      const struct event *ev, const struct wf_origin *o, time_t at,
			      time_t now, json_object *report)
{
	const char *id = jget_str(doc, "id");
	bool fresh = note_credentials(wf, doc, ev, at);
	json_object *hist = app_history_add(doc, at, fresh ? "kamusm.credentials.new"
						      : "kamusm.credentials.resend",
					    "credentials_issued", "credentials_issued", o->actor,
					    o->source, NULL);
	if (fresh) {
		jset_time(doc, "state_since", at);
		wf_enter(wf, t, doc, ST_CREDENTIALS_ISSUED, at, now, hist);
	}
	wf_report(report, id, true, "credentials_issued", "credentials_issued", "%s",
		  fresh ? "new access password: validity restarts"
			: "same access password sent again: nothing changes");
	wf_put(wf, t, doc);
}

static enum wf_verb kamusm_verb(enum msg_kind k)
{
	switch (k) {
	case MK_KAMUSM_CREDENTIALS: return WV_CREDENTIALS;
	case MK_KAMUSM_INFO: return WV_INFO;
	case MK_KAMUSM_SHIPPED: return WV_SHIPPED;
	default: return WV__COUNT;
	}
}

static void kamusm_unmatched(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
			     json_object *report)
{
	const char *who = ev->applicant.email ? ev->applicant.email : "(no recipient found)";
	log_warnx("workflow: %s mail for %s matches no open application", msg_kind_name(ev->kind), who);
	wf_report(report, NULL, false, NULL, NULL,
		  "%s for %s matches no open application: check the applicant's address "
		  "(eimzactl edit) or import the application", msg_kind_name(ev->kind), who);
	json_object *vars = json_object_new_object();
	jput_str(vars, "recipient", who);
	jput_str(vars, "kind", msg_kind_name(ev->kind));
	jput_str(vars, "subject", ev->subject);
	char *dedupe = xasprintf("unmatched:%s", ev->message_id ? ev->message_id : who);
	wf_notify_all(wf, t, wf_officers(wf, ACTOR_ESIGN), "unmatched", NULL, NULL, dedupe, vars,
		      now, NULL);
	free(dedupe);
	json_object_put(vars);
}

static void kamusm_expiry(struct wf *wf, struct txn *t, const struct event *ev, json_object *doc,
			  time_t now, json_object *report)
{
	json_object *vars = doc ? wf_app_vars(wf, doc) : json_object_new_object();
	char day[16] = "";
	if (ev->expiry)
		cal_fmt_date(ev->expiry, day, sizeof(day));
	jput_str(vars, "expiry", day);
	jput_str(vars, "recipient", ev->applicant.email);
	char *dedupe = xasprintf("kamusm-expiry:%s:%s", ev->applicant.email ? ev->applicant.email : "",
				 day);
	wf_notify_all(wf, t, wf_officers(wf, ACTOR_ESIGN), "kamusm_expiry", doc, NULL, dedupe, vars,
		      now, NULL);
	free(dedupe);
	json_object_put(vars);
	wf_report(report, doc ? jget_str(doc, "id") : NULL, true, NULL, NULL,
		  "certificate expiry warning for %s (%s) passed to the e-signature officers",
		  ev->applicant.email ? ev->applicant.email : "?", day[0] ? day : "no date");
}

/* The first refused link of a KAMUSM mail, or NULL. A mail that points
 * anywhere but the allow-listed hosts is not believed, whoever sent it:
 * the applicant must never be sent after a phishing link. */
static const char *refused_link(const struct event *ev)
{
	for (size_t i = 0; ev->problems && ev->problems[i]; i++)
		if (str_startswith(ev->problems[i], "link refused"))
			return ev->problems[i];
	return NULL;
}

static void handle_kamusm(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
			  json_object *report)
{
	const char *bad = refused_link(ev);
	if (bad && ev->kind != MK_KAMUSM_EXPIRY) {
		log_warnx("workflow: %s mail for %s not applied: %s", msg_kind_name(ev->kind),
			  ev->applicant.email ? ev->applicant.email : "?", bad);
		wf_report(report, NULL, false, NULL, NULL, "not applied: %s", bad);
		return;
	}
	struct wf_origin o = { .actor = ev->forwarded_by ? ev->forwarded_by : "kamusm",
			       .source = ev->message_id };
	struct app_entry *e = apps_find_open_by_email(wf->apps, ev->applicant.email);
	json_object *doc = e ? load_app(wf, t, e->id) : NULL;
	if (ev->kind == MK_KAMUSM_EXPIRY) {
		kamusm_expiry(wf, t, ev, doc, now, report);
		json_object_put(doc);
		return;
	}
	if (doc == NULL) {
		kamusm_unmatched(wf, t, ev, now, report);
		return;
	}
	time_t at = ev->date ? ev->date : now;
	enum wf_verb verb = kamusm_verb(ev->kind);
	enum app_state st = app_doc_state(doc);
	if ((verb == WV_CREDENTIALS || verb == WV_INFO) && st == ST_CREDENTIALS_ISSUED) {
		credentials_again(wf, t, doc, ev, &o, at, now, report);
		return;
	}
	if ((verb == WV_CREDENTIALS || verb == WV_INFO) && wf_transition(verb, st))
		note_credentials(wf, doc, ev, at);
	if (verb == WV_SHIPPED && ev->tracking_no && wf_transition(verb, st))
		jset_str(doc, "tracking_no", ev->tracking_no);
	wf_apply(wf, t, doc, verb, NULL, &o, at, now, report);
}

/* ---- commands by mail ---- */

/* Applications and kind of the notice a Message-ID names, if it is one of
 * ours ("<notice id>@<our domain>"). */
static json_object *notice_of(struct wf *wf, struct txn *t, const char *msgid)
{
	if (msgid == NULL)
		return NULL;
	const char *at = strchr(msgid, '@');
	if (at == NULL || at == msgid || (size_t)(at - msgid) > 64)
		return NULL;
	char id[80];
	snprintf(id, sizeof(id), "%.*s", (int)(at - msgid), msgid);
	if (!store_id_valid(id))
		return NULL;
	return txn_get(t, "notices", id);
}

/* Kinds of notice whose reply may not be applied to all of its
 * applications: digests list applications in different states. */
static bool is_digest(const char *kind)
{
	return kind && (strcmp(kind, "digest") == 0);
}

static char **strv_copy(char *const *v)
{
	char **out = NULL;
	for (size_t i = 0; v && v[i]; i++)
		if (!strv_contains(out, v[i]))
			out = strv_add(out, v[i]);
	return out;
}

/* Applications a notice was about (its app_id, or its app_ids). */
static char **notice_apps(json_object *n)
{
	char **out = NULL;
	json_object *ids = jget(n, "app_ids");
	for (size_t i = 0; ids && i < json_object_array_length(ids); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(ids, i));
		if (s && !strv_contains(out, s))
			out = strv_add(out, s);
	}
	const char *one = jget_str(n, "app_id");
	if (out == NULL && one)
		out = strv_add(out, one);
	return out;
}

/* Resolve the applications a command means: tags on its line, else in
 * the subject, else those of the notice it answers (In-Reply-To, then
 * References, newest first). Returns a vector (caller frees) or NULL;
 * *ambiguous when it answers a digest about several applications. */
static char **command_targets(struct wf *wf, struct txn *t, const struct event *ev, bool *ambiguous)
{
	*ambiguous = false;
	if (ev->command.apps)
		return strv_copy(ev->command.apps);
	if (ev->command.subject_apps)
		return strv_copy(ev->command.subject_apps);
	size_t nref = strv_len(ev->references);
	for (size_t i = 0; i <= nref; i++) {
		const char *mid = i == 0 ? ev->in_reply_to : ev->references[nref - i];
		json_object *n = notice_of(wf, t, mid);
		if (n == NULL)
			continue;
		char **apps = notice_apps(n);
		*ambiguous = is_digest(jget_str(n, "kind")) && strv_len(apps) > 1;
		json_object_put(n);
		if (*ambiguous) {
			strv_free(apps);
			return NULL;
		}
		if (apps)
			return apps;
	}
	return NULL;
}

static void command_unresolved(struct wf *wf, struct txn *t, const struct wf_origin *o,
			       bool ambiguous, time_t now, json_object *report)
{
	const char *why = ambiguous
		? "this reply answers a reminder about several applications: write the tags the "
		  "command is meant for on its line, e.g. \"ONAY EIMZA-2026-0042, EIMZA-2026-0043\""
		: "no application tag found: reply to one of our notices, or name the tags on the "
		  "command line, e.g. \"TESLIM EIMZA-2026-0042\"";
	wf_refuse(wf, t, o, NULL, NULL, why, now, report);
}

static void handle_command(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
			   json_object *report)
{
	struct wf_origin o = { .actor = ev->from, .source = ev->message_id, .reply_to = ev->from };
	if (!ev->trusted) {
		log_warnx("workflow: command %s from %s not obeyed: %s",
			  cmd_verb_name(ev->command.verb), ev->from ? ev->from : "?",
			  ev->trust_reason ? ev->trust_reason : "not trusted");
		char *why = xasprintf("commands are accepted only from the configured officers, "
				      "with their mail authenticated (%s)",
				      ev->trust_reason ? ev->trust_reason : "not trusted");
		wf_refuse(wf, t, &o, NULL, NULL, why, now, report);
		free(why);
		return;
	}
	bool ambiguous;
	char **apps = command_targets(wf, t, ev, &ambiguous);
	if (apps == NULL) {
		command_unresolved(wf, t, &o, ambiguous, now, report);
		return;
	}
	time_t at = ev->date ? ev->date : now;
	for (size_t i = 0; apps[i]; i++) {
		char *err = NULL;
		if (wf_command(wf, t, apps[i], ev->command.verb, ev->command.reason, &o, at, report,
			       &err) < 0) {
			log_warnx("workflow: %s", err);
			free(err);
		}
	}
	strv_free(apps);
}

/* ---- bounces ---- */

static void handle_bounce(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
			  json_object *report)
{
	json_object *n = notice_of(wf, t, ev->bounce.notice);
	const char *app_id = n ? jget_str(n, "app_id") : NULL;
	json_object *doc = app_id ? load_app(wf, t, app_id) : NULL;
	const char *rcpt = ev->bounce.recipient;
	const char *email = doc ? jget_str(doc, "applicant.email") : NULL;
	if (!ev->bounce.permanent || doc == NULL || rcpt == NULL || email == NULL ||
	    strcasecmp(rcpt, email) != 0) {
		log_info("workflow: bounce for %s (%s, %s) recorded, nothing to change",
			 rcpt ? rcpt : "?", ev->bounce.status ? ev->bounce.status : "no status",
			 ev->bounce.permanent ? "permanent" : "temporary");
		wf_report(report, app_id, true, NULL, NULL, "bounce for %s: %s", rcpt ? rcpt : "?",
			  ev->bounce.permanent ? "permanent, not an applicant's address" : "temporary");
		json_object_put(doc);
		json_object_put(n);
		return;
	}
	char *reason = xasprintf("%s %s", ev->bounce.status ? ev->bounce.status : "5.0.0",
				 ev->bounce.diagnostic ? ev->bounce.diagnostic : "permanent failure");
	jset_time(doc, "unreachable.at", ev->date ? ev->date : now);
	jset_str(doc, "unreachable.reason", reason);
	json_object *hist = app_history_add(doc, ev->date ? ev->date : now, "unreachable", NULL, NULL,
					    rcpt, ev->message_id, reason);
	json_object *vars = wf_app_vars(wf, doc);
	jput_str(vars, "reason", reason);
	char *dedupe = xasprintf("unreachable:%s", app_id);
	wf_notify_all(wf, t, wf_officers(wf, ACTOR_EBYS), "unreachable", doc, NULL, dedupe, vars, now,
		      hist);
	free(dedupe);
	json_object_put(vars);
	wf_report(report, app_id, true, NULL, NULL, "cannot reach applicant: %s", reason);
	free(reason);
	wf_put(wf, t, doc);
	json_object_put(n);
}

void wf_refuse(struct wf *wf, struct txn *t, const struct wf_origin *o, const char *app_id,
	       const char *state, const char *reason, time_t now, json_object *report)
{
	wf_report(report, app_id, false, state, NULL, "%s", reason);
	log_warnx("workflow: %s%srefused for %s: %s", app_id ? app_id : "", app_id ? ": " : "",
		  o->actor ? o->actor : "?", reason);
	if (o->reply_to == NULL || !conf_domain_allowed(wf->conf, o->reply_to))
		return;
	json_object *doc = app_id ? load_app(wf, t, app_id) : NULL;
	json_object *vars = doc ? wf_app_vars(wf, doc) : json_object_new_object();
	jput_str(vars, "reason", reason);
	jput_str(vars, "current_state", state);
	char day[16];
	cal_fmt_date(now, day, sizeof(day));
	/* One answer per sender, application and day: the dedupe key says so. */
	char *dedupe = xasprintf("refusal:%s:%s:%s", o->reply_to, app_id ? app_id : "-", day);
	struct wf_notice n = { .kind = "command_refused", .medium = MEDIUM_MAIL, .to = o->reply_to,
			       .doc = doc, .dedupe = dedupe };
	free(wf_notify(wf, t, &n, vars, now));
	free(dedupe);
	json_object_put(vars);
	json_object_put(doc);
}

/* ---- request letters and imports ---- */

static const char *const applicant_fields[] = { "name", "email", "mobile", "tc", "title", "unit" };

static const char *applicant_field(const struct applicant *a, size_t i)
{
	const char *v[] = { a->name, a->email, a->mobile, a->tc, a->title, a->unit };
	return v[i];
}

/* Fill missing fields of an open application from a second letter; list
 * the conflicting ones. Returns the number of conflicts. */
static int merge_applicant(json_object *doc, const struct applicant *a, struct buf *conflicts)
{
	int n = 0;
	for (size_t i = 0; i < ARRAY_LEN(applicant_fields); i++) {
		const char *nv = applicant_field(a, i);
		if (str_empty(nv))
			continue;
		char path[32];
		snprintf(path, sizeof(path), "applicant.%s", applicant_fields[i]);
		const char *ov = jget_str(doc, path);
		if (str_empty(ov)) {
			jset_str(doc, path, nv);
		} else if (strcasecmp(ov, nv) != 0) {
			buf_printf(conflicts, "%s%s", n ? ", " : "", applicant_fields[i]);
			n++;
		}
	}
	return n;
}

static void set_applicant(json_object *doc, const struct applicant *a)
{
	for (size_t i = 0; i < ARRAY_LEN(applicant_fields); i++) {
		char path[32];
		snprintf(path, sizeof(path), "applicant.%s", applicant_fields[i]);
		const char *v = applicant_field(a, i);
		if (!str_empty(v))
			jset_str(doc, path, v);
	}
	const char *email = jget_str(doc, "applicant.email");
	if (email) {
		char *low = str_lower_ascii(xstrdup(email));
		jset_str(doc, "applicant.email", low);
		free(low);
	}
}

static struct app_entry *find_open(struct wf *wf, const struct applicant *a)
{
	struct app_entry *e = a->tc ? apps_find_open_by_tc(wf->apps, a->tc) : NULL;
	return e ? e : apps_find_open_by_email(wf->apps, a->email);
}

static void attach_existing(struct wf *wf, struct txn *t, struct app_entry *e,
			    const struct wf_row *r, const struct wf_origin *o, time_t at,
			    json_object *report)
{
	json_object *doc = load_app(wf, t, e->id);
	if (doc == NULL)
		return;
	struct buf conflicts = BUF_INIT;
	int n = merge_applicant(doc, &r->a, &conflicts);
	app_history_add(doc, at, "letter.again", NULL, NULL, o->actor, o->source,
			n ? conflicts.p : "no conflicting fields");
	if (n)
		wf_report(report, e->id, false, app_state_name(e->state), NULL,
			  "already open for this applicant; conflicting fields not changed: %s "
			  "(fix with eimzactl edit if the new values are right)", conflicts.p);
	else
		wf_report(report, e->id, true, app_state_name(e->state), NULL,
			  "already open for this applicant; missing fields filled in");
	buf_free(&conflicts);
	wf_put(wf, t, doc);
}

static char *create_one(struct wf *wf, struct txn *t, const struct wf_row *r,
			const struct wf_origin *o, time_t at)
{
	time_t since = r->since ? r->since : at;
	struct tm tm;
	localtime_r(&since, &tm);
	char *id = apps_next_id(t, wf->conf->general.tag_prefix, tm.tm_year + 1900);
	json_object *doc = app_doc_new(id, r->state, at);
	set_applicant(doc, &r->a);
	if (!str_empty(r->unit_name))
		jset_str(doc, "unit.name", r->unit_name);
	else if (!str_empty(r->a.unit))
		jset_str(doc, "unit.name", r->a.unit);
	if (!str_empty(r->unit_reply_to))
		jset_str(doc, "unit.reply_to", r->unit_reply_to);
	jset_time(doc, "opened", since);
	jset_time(doc, "state_since", since);
	app_history_add(doc, since, o->source && strcmp(o->source, "cli") == 0 ? "imported" : "requested",
			NULL, app_state_name(r->state), o->actor, o->source, NULL);
	wf_clock_start(wf, doc, wf->catchup ? wf->catchup_now : since);
	wf_put(wf, t, doc);
	log_info("workflow: %s: created in state %s", id, app_state_name(r->state));
	return id;
}

int wf_create(struct wf *wf, struct txn *t, const struct wf_row *rows, size_t n,
	      const struct wf_origin *o, time_t at, json_object *report, char ***created,
	      char **err)
{
	(void)err;
	for (size_t i = 0; i < n; i++) {
		const struct wf_row *r = &rows[i];
		if (str_empty(r->a.email) || str_empty(r->a.name)) {
			wf_report(report, NULL, false, NULL, NULL, "row %d: name and e-mail are required",
				  r->a.row);
			continue;
		}
		struct app_entry *e = find_open(wf, &r->a);
		if (e != NULL) {
			attach_existing(wf, t, e, r, o, at, report);
			continue;
		}
		char *id = create_one(wf, t, r, o, at);
		wf_report(report, id, true, NULL, app_state_name(r->state), "row %d: created %s",
			  r->a.row, id);
		if (created)
			*created = strv_add(*created, id);
		free(id);
	}
	return 0;
}

/* Entries of a letter's own report that were not simple creations. */
static json_object *letter_notes(json_object *local)
{
	json_object *notes = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(local); i++) {
		json_object *it = json_object_array_get_idx(local, i);
		if (!jget_bool(it, "ok") || jget_str(it, "from") != NULL) {
			json_object *n = json_object_new_object();
			jset_str(n, "app", jget_str(it, "app"));
			jset_str(n, "message", jget_str(it, "message"));
			json_object_array_add(notes, n);
		}
	}
	return notes;
}

static json_object *applicant_list(struct wf *wf, struct txn *t, char **ids)
{
	json_object *list = json_object_new_array();
	for (size_t i = 0; ids && ids[i]; i++) {
		json_object *doc = load_app(wf, t, ids[i]);
		if (doc == NULL)
			continue;
		json_object_array_add(list, wf_app_vars(wf, doc));
		json_object_put(doc);
	}
	return list;
}

static void request_problems(struct wf *wf, struct txn *t, const struct event *ev, time_t now)
{
	json_object *rows = json_object_new_array();
	for (size_t i = 0; i < ev->nrow_errors; i++) {
		json_object *r = json_object_new_object();
		jset_int(r, "row", ev->row_errors[i].row);
		jset_str(r, "reason", ev->row_errors[i].reason);
		json_object_array_add(rows, r);
	}
	json_object *vars = json_object_new_object();
	jset(vars, "rows", rows);
	jput_str(vars, "subject", ev->subject);
	jput_str(vars, "unit_name", ev->unit_name);
	char *dedupe = xasprintf("request-problems:%s", ev->message_id ? ev->message_id : "?");
	const char *to = ev->unit_reply_to ? ev->unit_reply_to : ev->from;
	struct wf_notice n = { .kind = "request_problems", .medium = MEDIUM_MAIL, .to = to,
			       .dedupe = dedupe };
	if (to && conf_domain_allowed(wf->conf, to))
		free(wf_notify(wf, t, &n, vars, now));
	free(dedupe);
	json_object_put(vars);
}

static void handle_request(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
			   json_object *report)
{
	struct wf_origin o = { .actor = ev->from, .source = ev->message_id,
			       .reply_to = ev->unit_reply_to ? ev->unit_reply_to : ev->from };
	if (!ev->trusted) {
		log_warnx("workflow: request letter from %s ignored: %s", ev->from ? ev->from : "?",
			  ev->trust_reason ? ev->trust_reason : "not trusted");
		wf_report(report, NULL, false, NULL, NULL, "request letter not trusted: %s",
			  ev->trust_reason ? ev->trust_reason : "?");
		return;
	}
	time_t at = ev->date ? ev->date : now;
	struct wf_row *rows = xcalloc(ev->napplicants + 1, sizeof(*rows));
	for (size_t i = 0; i < ev->napplicants; i++) {
		rows[i].a = ev->applicants[i];
		rows[i].unit_name = ev->unit_name;
		rows[i].unit_reply_to = ev->unit_reply_to ? ev->unit_reply_to : ev->from;
		rows[i].state = ST_REQUESTED;
	}
	json_object *local = json_object_new_array();
	char **created = NULL;
	wf_create(wf, t, rows, ev->napplicants, &o, at, local, &created, NULL);
	free(rows);
	if (ev->nrow_errors)
		request_problems(wf, t, ev, now);
	json_object *notes = letter_notes(local);
	if (created || json_object_array_length(notes) > 0) {
		json_object *vars = json_object_new_object();
		jset(vars, "applicants", applicant_list(wf, t, created));
		jset(vars, "notes", notes);
		notes = NULL;
		jput_str(vars, "unit_name", ev->unit_name);
		jput_str(vars, "letter_subject", ev->subject);
		jset_int(vars, "count", (int64_t)strv_len(created));
		char *dedupe = xasprintf("decision:%s", ev->message_id ? ev->message_id
						       : (created ? created[0] : "?"));
		wf_notify_all(wf, t, wf_officers(wf, ACTOR_EBYS), "decision_request", NULL, created,
			      dedupe, vars, now, NULL);
		free(dedupe);
		json_object_put(vars);
	}
	json_object_put(notes);
	for (size_t i = 0; i < json_object_array_length(local); i++)
		if (report)
			json_object_array_add(report, json_object_get(json_object_array_get_idx(local, i)));
	json_object_put(local);
	strv_free(created);
}

int wf_event(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
	     json_object *report, char **err)
{
	(void)err;
	switch (ev->kind) {
	case MK_REQUEST:
		handle_request(wf, t, ev, now, report);
		break;
	case MK_KAMUSM_CREDENTIALS:
	case MK_KAMUSM_INFO:
	case MK_KAMUSM_SHIPPED:
	case MK_KAMUSM_EXPIRY:
		if (!ev->trusted) {
			log_warnx("workflow: %s mail from %s not trusted: %s", msg_kind_name(ev->kind),
				  ev->from ? ev->from : "?", ev->trust_reason ? ev->trust_reason : "?");
			wf_report(report, NULL, false, NULL, NULL, "%s not trusted: %s",
				  msg_kind_name(ev->kind), ev->trust_reason ? ev->trust_reason : "?");
			break;
		}
		handle_kamusm(wf, t, ev, now, report);
		break;
	case MK_COMMAND:
		handle_command(wf, t, ev, now, report);
		break;
	case MK_BOUNCE:
		handle_bounce(wf, t, ev, now, report);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- edits ---- */

static int validate_field(struct wf *wf, const char *field, const char *value, char **out,
			  char **err)
{
	if (strcmp(field, "mobile") == 0)
		return phone_normalize(value, wf->conf->sms.default_country, out, err);
	if (strcmp(field, "tc") == 0 && !tc_valid(value))
		return seterr(err, "not a valid TC kimlik number (checksum)");
	if (strcmp(field, "email") == 0 && !conf_domain_allowed(wf->conf, value))
		return seterr(err, "%s is not inside the institution's domains", value);
	if (str_empty(value) && strcmp(field, "title") != 0 && strcmp(field, "unit") != 0)
		return seterr(err, "%s may not be empty", field);
	*out = xstrdup(value);
	if (strcmp(field, "email") == 0)
		str_lower_ascii(*out);
	return 0;
}

int wf_edit(struct wf *wf, struct txn *t, const char *app_id, const char *field, const char *value,
	    const struct wf_origin *o, time_t at, json_object *report, char **err)
{
	bool known = false;
	for (size_t i = 0; i < ARRAY_LEN(applicant_fields); i++)
		known |= strcmp(field, applicant_fields[i]) == 0;
	if (!known)
		return seterr(err, "unknown field '%s' (name, email, mobile, tc, title, unit)", field);
	json_object *doc = load_app(wf, t, app_id);
	if (doc == NULL)
		return seterr(err, "no application %s", app_id);
	char *clean = NULL;
	if (validate_field(wf, field, value, &clean, err) < 0) {
		json_object_put(doc);
		return -1;
	}
	char path[32];
	snprintf(path, sizeof(path), "applicant.%s", field);
	/* The history keeps that a field changed, not the personal data. */
	app_history_add(doc, at, "edit", NULL, NULL, o->actor, o->source, field);
	jset_str(doc, path, clean);
	if (strcmp(field, "email") == 0 || strcmp(field, "mobile") == 0)
		jset(doc, "unreachable", NULL);
	wf_report(report, app_id, true, NULL, NULL, "%s changed", field);
	free(clean);
	wf_put(wf, t, doc);
	return 0;
}

/* ---- purge (KVKK) ---- */

struct purge_ctx {
	struct wf *wf;
	struct txn *t;
	time_t cutoff;
	bool dry_run;
	json_object *report;
	char **ids;
};

static int purge_pick(void *vctx, const char *id, json_object *doc)
{
	struct purge_ctx *c = vctx;
	time_t closed = jget_time(doc, "closed_at");
	if (closed && closed <= c->cutoff && !jget_bool(doc, "purged") &&
	    !app_state_open(app_doc_state(doc)))
		c->ids = strv_add(c->ids, id);
	return 0;
}

static int purge_notice(void *vctx, const char *id, json_object *doc)
{
	struct purge_ctx *c = vctx;
	const char *app = jget_str(doc, "app_id");
	if (app && strv_contains(c->ids, app))
		txn_del(c->t, "notices", id);
	return 0;
}

static void purge_one(struct purge_ctx *c, const char *id)
{
	json_object *doc = load_app(c->wf, c->t, id);
	if (doc == NULL)
		return;
	wf_report(c->report, id, true, jget_str(doc, "state"), NULL,
		  "%s personal data (closed %s)", c->dry_run ? "would remove" : "removed",
		  jget_str(doc, "closed_at"));
	if (c->dry_run) {
		json_object_put(doc);
		return;
	}
	static const char *const personal[] = {
		"unit.reply_to", "access_code", "credentials.code_hash", "credentials.link",
		"tracking_no", "reject_reason", "unreachable", "thread",
	};
	/* Keep the timeline's shape (events and times), drop who and why. */
	static const char *const who_why[] = { "actor", "source", "detail", "notices" };
	jset(doc, "applicant", json_object_new_object());
	for (size_t k = 0; k < ARRAY_LEN(personal); k++)
		jset(doc, personal[k], NULL);
	json_object *h = jget(doc, "history");
	for (size_t i = 0; h && i < json_object_array_length(h); i++)
		for (size_t k = 0; k < ARRAY_LEN(who_why); k++)
			jset(json_object_array_get_idx(h, i), who_why[k], NULL);
	jset_bool(doc, "purged", true);
	wf_put(c->wf, c->t, doc);
}

int wf_purge(struct wf *wf, struct txn *t, time_t now, bool dry_run, json_object *report,
	     char **err)
{
	(void)err;
	time_t cutoff = cal_sub(now, &wf->conf->general.retention);
	struct purge_ctx c = { wf, t, cutoff, dry_run, report, NULL };
	store_foreach(wf->store, "apps", purge_pick, &c);
	for (size_t i = 0; c.ids && c.ids[i]; i++)
		purge_one(&c, c.ids[i]);
	if (c.ids && !dry_run)
		store_foreach(wf->store, "notices", purge_notice, &c);
	strv_free(c.ids);
	return 0;
}

/* ---- outbox hooks ---- */

static const char *hook_state(void *ctx, const char *app_id)
{
	struct wf *wf = ctx;
	struct app_entry *e = apps_find(wf->apps, app_id);
	return e ? app_state_name(e->state) : NULL;
}

static void hook_dead(void *ctx, struct txn *t, const struct notice *n)
{
	struct wf *wf = ctx;
	if (n->kind && strcmp(n->kind, "dead_letter") == 0)
		return;     /* never alert about an alert */
	json_object *doc = n->app_id ? load_app(wf, t, n->app_id) : NULL;
	json_object *vars = doc ? wf_app_vars(wf, doc) : json_object_new_object();
	jput_str(vars, "notice_kind", n->kind);
	jput_str(vars, "medium", medium_name(n->medium));
	jput_str(vars, "recipient", n->to);
	jput_str(vars, "reason", n->last_error ? n->last_error : "gave up");
	char *dedupe = xasprintf("dead:%s", n->id);
	time_t now = n->done_at ? n->done_at : time(NULL);
	wf_notify_all(wf, t, wf_officers(wf, ACTOR_EBYS), "dead_letter", doc, NULL, dedupe, vars, now,
		      NULL);
	free(dedupe);
	json_object_put(vars);
	if (doc) {
		app_history_add(doc, now, "notice.dead", NULL, NULL, n->to, n->id,
				n->last_error ? n->last_error : "gave up");
		wf_put(wf, t, doc);
	}
}

void wf_outbox_hooks(struct wf *wf, struct outbox_hooks *h)
{
	h->ctx = wf;
	h->app_state = hook_state;
	h->on_dead = hook_dead;
	/* Sent notices need no follow-up: the timeline reads their state
	 * from the notices themselves (eimzactl show). */
	h->on_sent = NULL;
}
