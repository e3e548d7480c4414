/* classify_builtin.c: auto-replies and bounces, recognised by structure
 * (see classify_p.h). */
#include "classify_p.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- auto-replies ---- */

/* Folded subject fragments of vacation replies (Outlook, Exchange, Gmail,
 * Turkish clients). */
static const char *const vacation_subjects[] = {
	"out of office", "automatic reply", "autoreply", "auto-reply", "otomatik yanit",
	"otomatik cevap", "ofis disinda", "izindeyim",
};

/* The first token of a header value, lowercased, in buf. */
static const char *first_token(const char *v, char *buf, size_t len)
{
	size_t n = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	while (*v && *v != ';' && *v != ' ' && *v != '(' && n + 1 < len)
		buf[n++] = (char)tolower((unsigned char)*v++);
	buf[n] = '\0';
	return buf;
}

static enum auto_level header_level(const struct message *m)
{
	char tok[32];
	const char *v = message_header(m, "Auto-Submitted");
	enum auto_level lvl = AUTO_NONE;
	if (v && strcmp(first_token(v, tok, sizeof(tok)), "no") != 0)
		lvl = strcmp(tok, "auto-replied") == 0 ? AUTO_STRONG : AUTO_WEAK;
	if (lvl == AUTO_STRONG)
		return lvl;
	static const char *const strong_hdrs[] = { "X-Autoreply", "X-Autorespond" };
	for (size_t i = 0; i < ARRAY_LEN(strong_hdrs); i++) {
		v = message_header(m, strong_hdrs[i]);
		if (v && strcmp(first_token(v, tok, sizeof(tok)), "no") != 0)
			return AUTO_STRONG;
	}
	v = message_header(m, "Precedence");
	if (v) {
		first_token(v, tok, sizeof(tok));
		if (strcmp(tok, "auto_reply") == 0)
			return AUTO_STRONG;
		if (strcmp(tok, "bulk") == 0 || strcmp(tok, "junk") == 0 || strcmp(tok, "list") == 0)
			lvl = AUTO_WEAK;
	}
	if (lvl == AUTO_NONE && message_header(m, "X-Auto-Response-Suppress"))
		lvl = AUTO_HINT;
	return lvl;
}

/* A read receipt (RFC 8098): never a command, never a bounce. */
static bool read_receipt(const struct message *m)
{
	for (size_t i = 0; i < m->nparts; i++)
		if (m->parts[i].content_type &&
		    strcmp(m->parts[i].content_type, "message/disposition-notification") == 0)
			return true;
	return false;
}

enum auto_level autoreply_level(const struct message *m)
{
	enum auto_level lvl = header_level(m);
	if (lvl == AUTO_STRONG || read_receipt(m))
		return AUTO_STRONG;
	char *subj = text_fold_str(m->subject ? m->subject : "");
	for (size_t i = 0; i < ARRAY_LEN(vacation_subjects); i++)
		if (strstr(subj, vacation_subjects[i])) {
			lvl = AUTO_STRONG;
			break;
		}
	free(subj);
	return lvl;
}

/* ---- bounces ---- */

static const char *const daemon_locals[] = { "mailer-daemon", "postmaster", "mail-daemon" };

static const char *const bounce_subjects[] = {
	"undelivered mail", "delivery status notification", "mail delivery failed",
	"undeliverable", "returned mail", "delivery failure", "failure notice",
	"delivery has failed", "iletilemedi", "teslim edilemedi", "teslim edilemeyen",
};

static bool daemon_sender(const struct message *m)
{
	const char *e = m->from.email;
	const char *at = e ? strchr(e, '@') : NULL;
	if (at == NULL)
		return e == NULL || *e == '\0';   /* "<>" senders */
	for (size_t i = 0; i < ARRAY_LEN(daemon_locals); i++)
		if ((size_t)(at - e) == strlen(daemon_locals[i]) &&
		    strncasecmp(e, daemon_locals[i], (size_t)(at - e)) == 0)
			return true;
	return false;
}

static bool bounce_subject(const struct message *m)
{
	char *subj = text_fold_str(m->subject ? m->subject : "");
	bool hit = false;
	for (size_t i = 0; i < ARRAY_LEN(bounce_subjects) && !hit; i++)
		hit = strstr(subj, bounce_subjects[i]) != NULL;
	free(subj);
	return hit;
}

/* "Name: value" fields of a DSN block: the value of `name` in the lines
 * [s, end), unfolded, or NULL. */
static char *dsn_field(const char *s, const char *end, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = s; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			struct buf b = BUF_INIT;
			buf_add(&b, p + n + 1, (size_t)(le - p - (ptrdiff_t)n - 1));
			/* continuation lines */
			while (nl && nl + 1 < end && (nl[1] == ' ' || nl[1] == '\t')) {
				const char *q = nl + 1;
				nl = memchr(q, '\n', (size_t)(end - q));
				buf_add(&b, q, (size_t)((nl ? nl : end) - q));
			}
			char *v = xstrdup(str_trim(b.p));
			buf_free(&b);
			char *cr = strchr(v, '\r');
			if (cr)
				*cr = '\0';
			return v;
		}
		p = nl ? nl + 1 : end;
	}
	return NULL;
}

/* "rfc822; <a@b>" -> "a@b" */
static char *after_type(const char *v)
{
	const char *semi = strchr(v, ';');
	const char *s = semi ? semi + 1 : v;
	while (*s == ' ' || *s == '<')
		s++;
	size_t n = strcspn(s, "> \t\r");
	return n ? xstrndup(s, n) : NULL;
}

static void set_status(struct event *ev, const char *status)
{
	char tok[16];
	first_token(status, tok, sizeof(tok));
	if (isdigit((unsigned char)tok[0]) && tok[1] == '.') {
		free(ev->bounce.status);
		ev->bounce.status = xstrdup(tok);
		ev->bounce.permanent = tok[0] == '5';
	}
}

/* Failed first, then delayed, then a block without a known action; a
 * success (delivered, relayed, expanded) last: below 2 is a receipt. */
static int action_rank(const char *rcpt, const char *action)
{
	static const struct {
		const char *action;
		int rank;
	} ranks[] = { { "failed", 4 }, { "delayed", 2 }, { "delivered", 1 }, { "relayed", 1 },
		      { "expanded", 1 } };
	if (rcpt == NULL)
		return 0;
	for (size_t i = 0; action && i < ARRAY_LEN(ranks); i++)
		if (strcasecmp(action, ranks[i].action) == 0)
			return ranks[i].rank;
	return 3;
}

/* The blocks of a message/delivery-status part: the first recipient
 * block with Action failed (else delayed, else the first one). Returns
 * REPORT_RECEIPT when no recipient failed or was delayed. */
static enum report dsn_parse(const char *txt, struct event *ev)
{
	const char *best = NULL, *best_end = NULL;
	int best_rank = 0;
	for (const char *p = txt; *p;) {
		const char *e = strstr(p, "\n\n");
		const char *e2 = strstr(p, "\r\n\r\n");
		if (e2 && (!e || e2 < e))
			e = e2;
		const char *end = e ? e : p + strlen(p);
		char *action = dsn_field(p, end, "Action");
		char *rcpt = dsn_field(p, end, "Final-Recipient");
		int rank = action_rank(rcpt, action);
		if (rank > best_rank)
			best = p, best_end = end, best_rank = rank;
		free(action);
		free(rcpt);
		p = e ? e + (e[0] == '\r' ? 4 : 2) : end;
	}
	if (best == NULL)
		return REPORT_NONE;
	if (best_rank < 2)
		return REPORT_RECEIPT;
	char *rcpt = dsn_field(best, best_end, "Final-Recipient");
	char *status = dsn_field(best, best_end, "Status");
	char *action = dsn_field(best, best_end, "Action");
	ev->bounce.recipient = after_type(rcpt);
	ev->bounce.permanent = action && strcasecmp(action, "failed") == 0;
	if (status)
		set_status(ev, status);
	char *diag = dsn_field(best, best_end, "Diagnostic-Code");
	if (diag) {
		char *semi = strchr(diag, ';');
		ev->bounce.diagnostic = xstrndup(str_trim(semi ? semi + 1 : diag), 200);
		free(diag);
	}
	free(rcpt);
	free(status);
	free(action);
	return ev->bounce.recipient ? REPORT_BOUNCE : REPORT_NONE;
}

/* A "Message-ID:" / "In-Reply-To:" line in returned headers (text). */
static char *header_in_text(const char *txt, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = txt; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncasecmp(p, name, n) != 0 || p[n] != ':')
			continue;
		const char *s = p + n + 1;
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '<')
			s++;
		size_t len = strcspn(s, "> \t\r\n");
		return len ? xstrndup(s, len) : NULL;
	}
	return NULL;
}

static bool ours(const struct config *c, const char *id)
{
	const char *dom = c->smtp.message_id_domain;
	const char *at = id ? strrchr(id, '@') : NULL;
	return id && (str_empty(dom) || (at && strcasecmp(at + 1, dom) == 0));
}

/* Our Message-ID, from the returned message: its Message-ID, or its
 * In-Reply-To when only that one is ours. */
static void find_notice(const struct config *c, const struct message *m, struct event *ev)
{
	char *cand[8] = { NULL };
	size_t n = 0;
	if (m->forwarded) {
		cand[n++] = xstrdup_opt(m->forwarded->message_id);
		cand[n++] = xstrdup_opt(m->forwarded->in_reply_to);
	}
	for (size_t i = 0; i < m->nparts && n + 2 <= ARRAY_LEN(cand); i++) {
		const struct part *pt = &m->parts[i];
		if (pt->text && (strcmp(pt->content_type, "text/rfc822-headers") == 0 ||
				 strcmp(pt->content_type, "message/rfc822") == 0 ||
				 strcmp(pt->content_type, "message/rfc822-headers") == 0)) {
			cand[n++] = header_in_text(pt->text, "Message-ID");
			cand[n++] = header_in_text(pt->text, "In-Reply-To");
		}
	}
	if (n + 2 <= ARRAY_LEN(cand)) {
		cand[n++] = header_in_text(m->body, "Message-ID");
		cand[n++] = header_in_text(m->body, "In-Reply-To");
	}
	for (size_t i = 0; i < n && ev->bounce.notice == NULL; i++)
		if (ours(c, cand[i]))
			ev->bounce.notice = xstrdup(cand[i]);
	for (size_t i = 0; i < n; i++)
		free(cand[i]);
}

/* The first address in a text that is not the daemon's own. */
static char *first_address(const char *s, const char *skip)
{
	for (const char *at = strchr(s, '@'); at; at = strchr(at + 1, '@')) {
		const char *a = at;
		while (a > s && (isalnum((unsigned char)a[-1]) || strchr("._%+-", a[-1])))
			a--;
		const char *e = at + 1;
		while (isalnum((unsigned char)*e) || *e == '.' || *e == '-')
			e++;
		while (e > at + 1 && e[-1] == '.')
			e--;
		if (a == at || e == at + 1 || !memchr(at, '.', (size_t)(e - at)))
			continue;
		char *addr = xstrndup(a, (size_t)(e - a));
		str_lower_ascii(strchr(addr, '@'));
		bool daemonish = strncasecmp(addr, "mailer-daemon@", 14) == 0 ||
				 strncasecmp(addr, "postmaster@", 11) == 0;
		if (!daemonish && !(skip && strcasecmp(addr, skip) == 0))
			return addr;
		free(addr);
	}
	return NULL;
}

/* An enhanced status code ("5.1.1") in the text, and its line. */
static void status_in_text(const char *s, struct event *ev)
{
	for (const char *p = s; *p; p++) {
		if (!(p[0] == '4' || p[0] == '5') || p[1] != '.' || !isdigit((unsigned char)p[2]))
			continue;
		if (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '.'))
			continue;
		const char *q = p + 2;
		while (isdigit((unsigned char)*q))
			q++;
		if (*q != '.' || !isdigit((unsigned char)q[1]))
			continue;
		q++;
		while (isdigit((unsigned char)*q))
			q++;
		char *st = xstrndup(p, (size_t)(q - p));
		set_status(ev, st);
		free(st);
		const char *ls = p, *le = strchr(p, '\n');
		while (ls > s && ls[-1] != '\n')
			ls--;
		char *line = xstrndup(ls, le ? (size_t)(le - ls) : strlen(ls));
		ev->bounce.diagnostic = xstrndup(str_trim(line), 200);
		free(line);
		return;
	}
}

/* Non-standard bounces: the wording and the daemon's text. */
static void bounce_text(const struct message *m, struct event *ev)
{
	char *top = text_strip_quoted(m->body);
	ev->bounce.recipient = first_address(top, m->from.email);
	if (ev->bounce.recipient == NULL)
		ev->bounce.recipient = first_address(m->body, m->from.email);
	status_in_text(m->body, ev);
	if (ev->bounce.status == NULL) {
		char *f = text_fold_str(top);
		static const char *const temporary[] = { "delay", "will retry", "temporar", "gecik",
							 "tekrar denenecek" };
		ev->bounce.permanent = true;
		for (size_t i = 0; i < ARRAY_LEN(temporary); i++)
			if (strstr(f, temporary[i]))
				ev->bounce.permanent = false;
		free(f);
	}
	free(top);
}

static const struct part *dsn_part(const struct message *m)
{
	for (size_t i = 0; i < m->nparts; i++) {
		const char *ct = m->parts[i].content_type;
		if (ct && (strcmp(ct, "message/delivery-status") == 0 ||
			   strcmp(ct, "message/global-delivery-status") == 0))
			return &m->parts[i];
	}
	return NULL;
}

enum report bounce_detect(const struct classify_ctx *ctx, const struct message *m, struct event *ev)
{
	const struct part *dsn = dsn_part(m);
	if (dsn == NULL && !(daemon_sender(m) && bounce_subject(m)))
		return REPORT_NONE;
	enum report r = dsn && dsn->text ? dsn_parse(dsn->text, ev) : REPORT_NONE;
	if (r == REPORT_RECEIPT)
		return r;
	if (r == REPORT_NONE)
		bounce_text(m, ev);
	find_notice(ctx->conf, m, ev);
	return REPORT_BOUNCE;
}

/* Used when a configured bounce rule matched a mail the shapes above do
 * not know. */
void bounce_fill(const struct classify_ctx *ctx, const struct message *m, struct event *ev)
{
	bounce_text(m, ev);
	find_notice(ctx->conf, m, ev);
}
