/* classify.c: from a decoded message to an event (see classify.h, whose
 * comment gives the order of recognition and the trust rules; the pieces
 * live in classify_builtin.c, classify_cmd.c, classify_request.c,
 * rules.c and trust.c). */
#include "classify_p.h"
#include "log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define RULE_KINDS (KIND_BIT(MK_OTHER) | KIND_BIT(MK_REQUEST) | KIND_BIT(MK_KAMUSM_CREDENTIALS) | \
		    KIND_BIT(MK_KAMUSM_INFO) | KIND_BIT(MK_KAMUSM_SHIPPED) | KIND_BIT(MK_KAMUSM_EXPIRY))

static bool kamusm_kind(enum msg_kind k)
{
	return k == MK_KAMUSM_CREDENTIALS || k == MK_KAMUSM_INFO || k == MK_KAMUSM_SHIPPED ||
	       k == MK_KAMUSM_EXPIRY;
}

static void fill_outer(struct event *ev, const struct message *m)
{
	ev->message_id = xstrdup_opt(m->message_id);
	ev->in_reply_to = xstrdup_opt(m->in_reply_to);
	for (size_t i = 0; m->references && m->references[i]; i++)
		ev->references = strv_add(ev->references, m->references[i]);
	for (const struct message *x = m; x; x = x->forwarded)
		for (size_t i = 0; x->problems && x->problems[i]; i++)
			event_add_problem(ev, "%s", x->problems[i]);
}

static void fill_original(struct event *ev, const struct message *m)
{
	free(ev->from);
	free(ev->subject);
	strv_free(ev->to);
	ev->to = NULL;
	ev->from = xstrdup_opt(m->from.email);
	ev->subject = xstrdup(m->subject ? m->subject : "");
	for (size_t i = 0; i < m->nto; i++)
		if (m->to[i].email)
			ev->to = strv_add(ev->to, m->to[i].email);
}

/* The original's Date, else the forward's, else arrival; never later
 * than arrival (a sender's clock is no reason to delay a timer). */
static time_t event_time(const struct message *orig, const struct message *outer, time_t arrival)
{
	time_t t = orig->date ? orig->date : outer->date ? outer->date : arrival;
	if (arrival && (t == 0 || t > arrival))
		t = arrival;
	return t;
}

static bool from_kamusm(const struct config *c, const struct message *m)
{
	return m->from.email && conf_addr_match(c->trust.kamusm_senders, m->from.email);
}

/* Our own notices (a copy, a Cc to the mailbox) must never act: that is
 * how mail loops start. */
static bool own_mail(const struct config *c, const struct message *m)
{
	const char *from = m->from.email;
	const char *addrs[] = { c->smtp.from, c->smtp.reply_to };
	for (size_t i = 0; from && i < ARRAY_LEN(addrs); i++) {
		if (str_empty(addrs[i]))
			continue;
		const char *lt = strrchr(addrs[i], '<');
		const char *s = lt ? lt + 1 : addrs[i];
		size_t n = strcspn(s, "> \t");
		if (n == strlen(from) && strncasecmp(s, from, n) == 0)
			return true;
	}
	return false;
}

static void set_rule(struct event *ev, enum msg_kind k, const struct rule *ru)
{
	ev->kind = k;
	free(ev->rule);
	ev->rule = ru ? xstrdup(ru->name) : NULL;
}

static bool try_command(const struct classify_ctx *ctx, const struct message *m, struct event *ev)
{
	char *top = text_strip_quoted(m->body ? m->body : "");
	bool ok = command_parse(ctx->conf->general.tag_prefix, top, ev);
	free(top);
	return ok;
}

static void command_done(const struct classify_ctx *ctx, const struct message *m, struct event *ev)
{
	ev->kind = MK_COMMAND;
	ev->command.subject_apps = tags_find(ctx->conf->general.tag_prefix, m->subject);
	if (ev->command.verb == CMD_REJECT && ev->command.reason == NULL)
		event_add_problem(ev, "RED without a reason");
	if (ev->command.verb == CMD_NONE)
		event_add_problem(ev, "no command on the first line");
}

/* Officers' commands: their own mail to KAMUSM, a verb on the first
 * line, or a configured command rule. */
static bool officer_command(const struct classify_ctx *ctx, const struct message *m,
			    struct view *ov, struct event *ev)
{
	const struct config *c = ctx->conf;
	if (!m->from.email || !conf_is_officer(c, m->from.email))
		return false;
	const struct rule *ru = NULL;
	if (!command_kamusm_copy(c, m, ev) && !try_command(ctx, m, ev) &&
	    (ru = rules_first(ctx->rules, c, ov, KIND_BIT(MK_COMMAND))) == NULL)
		return false;
	set_rule(ev, MK_COMMAND, ru);
	command_done(ctx, m, ev);
	return true;
}

/* Bounces, certain auto-replies, officers' commands: what the outer
 * message is by its structure. */
static bool classify_builtin(const struct classify_ctx *ctx, const struct message *m,
			     enum auto_level lvl, struct event *ev)
{
	const struct config *c = ctx->conf;
	struct view ov;
	view_init(&ov, m);
	const struct rule *ru = NULL;
	bool done = true;
	enum report rep = bounce_detect(ctx, m, ev);
	if (rep == REPORT_BOUNCE) {
		set_rule(ev, MK_BOUNCE, NULL);
	} else if (rep == REPORT_RECEIPT) {
		set_rule(ev, MK_AUTO_REPLY, NULL);
		event_add_problem(ev, "a delivery report without a failure (a receipt)");
	} else if ((ru = rules_first(ctx->rules, c, &ov, KIND_BIT(MK_BOUNCE)))) {
		set_rule(ev, MK_BOUNCE, ru);
		bounce_fill(ctx, m, ev);
	} else if (lvl == AUTO_STRONG) {
		set_rule(ev, MK_AUTO_REPLY, NULL);
	} else if ((ru = rules_first(ctx->rules, c, &ov, KIND_BIT(MK_AUTO_REPLY)))) {
		set_rule(ev, MK_AUTO_REPLY, ru);
	} else {
		done = lvl <= AUTO_HINT && !from_kamusm(c, m) && officer_command(ctx, m, &ov, ev);
	}
	view_free(&ov);
	return done;
}

static void apply_rule(const struct classify_ctx *ctx, const struct rule *ru, struct view *v,
		       const struct message *outer, struct event *ev)
{
	const struct message *orig = v->m;
	set_rule(ev, ru->kind, ru);
	fill_original(ev, orig);
	if (orig != outer)
		ev->forwarded_by = xstrdup_opt(outer->from.email);
	rule_extract(ru, ctx->conf, v, ev);
	if (ru->kind == MK_REQUEST)
		request_extract(ctx, orig, outer, ev);
	if (kamusm_kind(ru->kind))
		kamusm_addressee(ctx->conf, orig, ev);
	if (ru->kind == MK_KAMUSM_CREDENTIALS && ev->link == NULL)
		event_add_problem(ev, "no allow-listed link found");
}

/* A reply to one of our notices: it names our Message-ID or a tag. */
static bool reply_to_us(const struct config *c, const struct message *m)
{
	const char *dom = c->smtp.message_id_domain;
	const char *ids[64];
	size_t n = 0;
	if (m->in_reply_to)
		ids[n++] = m->in_reply_to;
	for (size_t i = 0; m->references && m->references[i] && n < ARRAY_LEN(ids); i++)
		ids[n++] = m->references[i];
	for (size_t i = 0; i < n && !str_empty(dom); i++) {
		const char *at = strrchr(ids[i], '@');
		if (at && strcasecmp(at + 1, dom) == 0)
			return true;
	}
	char **tags = tags_find(c->general.tag_prefix, m->subject);
	strv_free(tags);
	return tags != NULL;
}

/* The configured rules, innermost forwarded original first. Returns the
 * message they matched (NULL if none). */
static const struct message *classify_rules(const struct classify_ctx *ctx,
					    const struct message *m, struct event *ev)
{
	const struct message *lv[12];
	size_t n = 0;
	int depth = ctx->conf->trust.forward_depth;
	for (const struct message *x = m; x && n < ARRAY_LEN(lv) && (int)n <= depth; x = x->forwarded)
		lv[n++] = x;
	while (n-- > 0) {
		struct view v;
		view_init(&v, lv[n]);
		if (n == 0 && !m->forwarded && (m->in_reply_to || m->references))
			view_use_top(&v);
		const struct rule *ru = rules_first(ctx->rules, ctx->conf, &v, RULE_KINDS);
		if (ru)
			apply_rule(ctx, ru, &v, m, ev);
		/* "Re: [EIMZA-..] E-imza talebi": a reply to a notice carries
		 * the request's words in its subject; without a row it is no
		 * new letter */
		if (ru && ru->kind == MK_REQUEST && n == 0 && reply_to_us(ctx->conf, m) &&
		    ev->napplicants == 0 && ev->nrow_errors == 0) {
			set_rule(ev, MK_OTHER, NULL);
			event_add_problem(ev, "a reply to a notice, without applicants: not a request letter");
		}
		view_free(&v);
		if (ru)
			return lv[n];
	}
	return NULL;
}

/* A non-officer's reply to a notice with a command: recognised (to be
 * refused and answered) before the rules, which would otherwise read the
 * notice's own words in the subject. */
static bool other_command(const struct classify_ctx *ctx, const struct message *m,
			  enum auto_level lvl, struct event *ev)
{
	if (lvl > AUTO_HINT || from_kamusm(ctx->conf, m) || !try_command(ctx, m, ev))
		return false;
	set_rule(ev, MK_COMMAND, NULL);
	command_done(ctx, m, ev);
	return true;
}

/* Nothing claimed it: a non-officer's command, automatic mail, or other. */
static void classify_rest(const struct classify_ctx *ctx, const struct message *m,
			  enum auto_level lvl, struct event *ev)
{
	if (!other_command(ctx, m, lvl, ev))
		set_rule(ev, lvl != AUTO_NONE ? MK_AUTO_REPLY : MK_OTHER, NULL);
}

void classify(const struct classify_ctx *ctx, const struct message *m, struct event *ev)
{
	event_init(ev);
	fill_outer(ev, m);
	fill_original(ev, m);
	const struct message *level = m;
	if (m->unreadable) {
		ev->kind = MK_UNREADABLE;
		event_add_problem(ev, "unreadable: %s", m->unreadable_reason ? m->unreadable_reason : "?");
	} else {
		enum auto_level lvl = autoreply_level(m);
		if (classify_builtin(ctx, m, lvl, ev)) {
			/* a bounce, an auto-reply or an officer's command */
		} else if (own_mail(ctx->conf, m)) {
			set_rule(ev, MK_OTHER, NULL);
			event_add_problem(ev, "our own mail (smtp.from / smtp.reply_to): never acted on");
		} else if (reply_to_us(ctx->conf, m) && other_command(ctx, m, lvl, ev)) {
			/* a non-officer's command in reply to a notice */
		} else {
			level = classify_rules(ctx, m, ev);
			if (level == NULL) {
				level = m;
				classify_rest(ctx, m, lvl, ev);
			}
		}
	}
	ev->date = event_time(level, m, ctx->arrival);
	trust_decide(ctx, m, level, ev);
}

static void unreadable_event(const struct classify_ctx *ctx, struct event *ev, const char *why)
{
	event_init(ev);
	ev->kind = MK_UNREADABLE;
	ev->date = ctx->arrival;
	ev->subject = xstrdup("");
	event_add_problem(ev, "unreadable: %s", why);
	struct message empty = { .subject = "", .body = "" };
	trust_decide(ctx, &empty, &empty, ev);
}

void classify_raw(const struct classify_ctx *ctx, const char *raw, size_t len, struct event *ev)
{
	const struct config *c = ctx->conf;
	if (c->imap.max_message_size && len > c->imap.max_message_size) {
		char *why = xasprintf("%zu bytes, more than source.max_message_size", len);
		unreadable_event(ctx, ev, why);
		free(why);
		return;
	}
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	lim.forward_depth = c->trust.forward_depth;
	struct message *m = NULL;
	char *err = NULL;
	if (message_parse(raw, len, &lim, &m, &err) < 0 || m == NULL) {
		unreadable_event(ctx, ev, err ? err : "not a message");
		free(err);
		return;
	}
	classify(ctx, m, ev);
	message_free(m);
}

bool tc_valid(const char *tc)
{
	if (tc == NULL || strlen(tc) != 11 || strspn(tc, "0123456789") != 11 || tc[0] == '0')
		return false;
	int d[11];
	for (int i = 0; i < 11; i++)
		d[i] = tc[i] - '0';
	int odd = d[0] + d[2] + d[4] + d[6] + d[8];
	int even = d[1] + d[3] + d[5] + d[7];
	int d10 = ((odd * 7 - even) % 10 + 10) % 10;
	int sum = 0;
	for (int i = 0; i < 10; i++)
		sum += d[i];
	return d[9] == d10 && d[10] == sum % 10;
}
