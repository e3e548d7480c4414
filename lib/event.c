/* event.c: events, their names, and the `eimzactl explain --json` object
 * (see event.h). */
#include "event.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names in enum order; the JSON and the rules file use them. */
static const char *const kind_names[MK__COUNT] = {
	[MK_OTHER] = "other",
	[MK_REQUEST] = "request",
	[MK_KAMUSM_CREDENTIALS] = "kamusm.credentials",
	[MK_KAMUSM_INFO] = "kamusm.info",
	[MK_KAMUSM_SHIPPED] = "kamusm.shipped",
	[MK_KAMUSM_EXPIRY] = "kamusm.expiry",
	[MK_COMMAND] = "command",
	[MK_BOUNCE] = "bounce",
	[MK_AUTO_REPLY] = "auto_reply",
	[MK_UNREADABLE] = "unreadable",
};

static const char *const verb_names[CMD__COUNT] = {
	[CMD_NONE] = "none",
	[CMD_APPROVE] = "approve",
	[CMD_REJECT] = "reject",
	[CMD_SUBMITTED] = "submitted",
	[CMD_DELIVERED] = "delivered",
	[CMD_POSTED] = "posted",
	[CMD_ACTIVATED] = "activated",
	[CMD_CANCEL] = "cancel",
};

const char *msg_kind_name(enum msg_kind k)
{
	return (unsigned)k < MK__COUNT ? kind_names[k] : "?";
}

int msg_kind_parse(const char *s, enum msg_kind *out)
{
	for (int k = 0; s && k < MK__COUNT; k++)
		if (strcmp(s, kind_names[k]) == 0) {
			*out = (enum msg_kind)k;
			return 0;
		}
	return -1;
}

const char *cmd_verb_name(enum cmd_verb v)
{
	return (unsigned)v < CMD__COUNT ? verb_names[v] : "?";
}

int cmd_verb_parse(const char *s, enum cmd_verb *out)
{
	for (int v = 0; s && v < CMD__COUNT; v++)
		if (strcmp(s, verb_names[v]) == 0) {
			*out = (enum cmd_verb)v;
			return 0;
		}
	return -1;
}

void applicant_free(struct applicant *a)
{
	free(a->name);
	free(a->email);
	free(a->mobile);
	free(a->tc);
	free(a->title);
	free(a->unit);
	memset(a, 0, sizeof(*a));
}

void applicant_copy(struct applicant *dst, const struct applicant *src)
{
	dst->name = xstrdup_opt(src->name);
	dst->email = xstrdup_opt(src->email);
	dst->mobile = xstrdup_opt(src->mobile);
	dst->tc = xstrdup_opt(src->tc);
	dst->title = xstrdup_opt(src->title);
	dst->unit = xstrdup_opt(src->unit);
	dst->row = src->row;
}

void event_init(struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
}

void event_free(struct event *ev)
{
	free(ev->rule);
	free(ev->trust_reason);
	free(ev->forwarded_by);
	free(ev->from);
	strv_free(ev->to);
	free(ev->subject);
	free(ev->message_id);
	free(ev->in_reply_to);
	strv_free(ev->references);
	free(ev->link);
	secure_free(ev->access_code);
	free(ev->tracking_no);
	applicant_free(&ev->applicant);
	for (size_t i = 0; i < ev->napplicants; i++)
		applicant_free(&ev->applicants[i]);
	free(ev->applicants);
	for (size_t i = 0; i < ev->nrow_errors; i++)
		free(ev->row_errors[i].reason);
	free(ev->row_errors);
	free(ev->unit_name);
	free(ev->unit_reply_to);
	free(ev->command.reason);
	strv_free(ev->command.apps);
	strv_free(ev->command.subject_apps);
	free(ev->bounce.recipient);
	free(ev->bounce.status);
	free(ev->bounce.notice);
	free(ev->bounce.diagnostic);
	strv_free(ev->problems);
	memset(ev, 0, sizeof(*ev));
}

void event_add_problem(struct event *ev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	/* The same problem twice says nothing new (a link repeated in a
	 * mail is refused once). */
	if (!strv_contains(ev->problems, s))
		ev->problems = strv_add(ev->problems, s);
	free(s);
}

/* ---- JSON ---- */

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *jstrv(char *const *v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* Add a string member only when the value exists. */
static void put_opt(json_object *o, const char *key, const char *s)
{
	if (s)
		json_object_object_add(o, key, json_object_new_string(s));
}

static json_object *applicant_json(const struct applicant *a, bool show_secrets)
{
	json_object *o = json_object_new_object();
	put_opt(o, "name", a->name);
	put_opt(o, "email", a->email);
	put_opt(o, "mobile", a->mobile);
	if (a->tc) {
		char masked[32];
		put_opt(o, "tc", show_secrets ? a->tc : mask_tc(a->tc, masked, sizeof(masked)));
	}
	put_opt(o, "title", a->title);
	put_opt(o, "unit", a->unit);
	return o;
}

static bool applicant_empty(const struct applicant *a)
{
	return !a->name && !a->email && !a->mobile && !a->tc && !a->title && !a->unit;
}

static json_object *original_json(const struct event *ev)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "from", jstr(ev->from));
	json_object_object_add(o, "to", jstrv(ev->to));
	char buf[40];
	json_object_object_add(o, "date", ev->date ? jstr(time_fmt_utc(ev->date, buf, sizeof(buf))) : NULL);
	json_object_object_add(o, "subject", jstr(ev->subject ? ev->subject : ""));
	return o;
}

static json_object *command_json(const struct event *ev)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "verb", jstr(cmd_verb_name(ev->command.verb)));
	json_object_object_add(o, "reason", jstr(ev->command.reason));
	json_object_object_add(o, "applications", jstrv(ev->command.apps));
	json_object_object_add(o, "subject_applications", jstrv(ev->command.subject_apps));
	return o;
}

static json_object *bounce_json(const struct event *ev)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "recipient", jstr(ev->bounce.recipient));
	json_object_object_add(o, "permanent", json_object_new_boolean(ev->bounce.permanent));
	json_object_object_add(o, "status", jstr(ev->bounce.status));
	json_object_object_add(o, "notice", jstr(ev->bounce.notice));
	return o;
}

static void add_applicants(json_object *f, const struct event *ev, bool show_secrets)
{
	if (!applicant_empty(&ev->applicant))
		json_object_object_add(f, "applicant", applicant_json(&ev->applicant, show_secrets));
	if (ev->napplicants) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < ev->napplicants; i++)
			json_object_array_add(a, applicant_json(&ev->applicants[i], show_secrets));
		json_object_object_add(f, "applicants", a);
	}
	if (ev->unit_name || ev->unit_reply_to) {
		json_object *u = json_object_new_object();
		json_object_object_add(u, "name", jstr(ev->unit_name));
		json_object_object_add(u, "reply_to", jstr(ev->unit_reply_to));
		json_object_object_add(f, "unit", u);
	}
	if (ev->nrow_errors) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < ev->nrow_errors; i++) {
			json_object *r = json_object_new_object();
			json_object_object_add(r, "row", json_object_new_int(ev->row_errors[i].row));
			json_object_object_add(r, "reason", jstr(ev->row_errors[i].reason));
			json_object_array_add(a, r);
		}
		json_object_object_add(f, "row_errors", a);
	}
}

static json_object *fields_json(const struct event *ev, bool show_secrets)
{
	json_object *f = json_object_new_object();
	put_opt(f, "link", ev->link);
	if (ev->access_code)
		put_opt(f, "access_code", show_secrets ? ev->access_code : "******");
	put_opt(f, "tracking_no", ev->tracking_no);
	if (ev->expiry) {
		char buf[16];
		struct tm tm;
		gmtime_r(&ev->expiry, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
		put_opt(f, "expiry", buf);
	}
	add_applicants(f, ev, show_secrets);
	if (ev->kind == MK_COMMAND || ev->command.verb != CMD_NONE)
		json_object_object_add(f, "command", command_json(ev));
	if (ev->kind == MK_BOUNCE)
		json_object_object_add(f, "bounce", bounce_json(ev));
	return f;
}

json_object *event_to_json(const struct event *ev, bool show_secrets)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "kind", jstr(msg_kind_name(ev->kind)));
	json_object_object_add(o, "trusted", json_object_new_boolean(ev->trusted));
	json_object_object_add(o, "trust_reason", jstr(ev->trust_reason ? ev->trust_reason : ""));
	json_object_object_add(o, "rule", jstr(ev->rule));
	json_object_object_add(o, "forwarded_by", jstr(ev->forwarded_by));
	json_object_object_add(o, "original", original_json(ev));
	json_object_object_add(o, "fields", fields_json(ev, show_secrets));
	json_object_object_add(o, "problems", jstrv(ev->problems));
	return o;
}
