/* trust.c: Authentication-Results (RFC 8601), the trust decisions of
 * classify.h, and link checks (see classify_p.h). */
#include "classify_p.h"
#include "log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- Authentication-Results parsing ---- */

struct lex {
	const char *p;
};

/* Skip folding white space and (nested) comments. */
static void skip_cfws(struct lex *lx)
{
	for (;;) {
		while (*lx->p && isspace((unsigned char)*lx->p))
			lx->p++;
		if (*lx->p != '(')
			return;
		int depth = 0;
		for (; *lx->p; lx->p++) {
			if (*lx->p == '\\' && lx->p[1]) {
				lx->p++;
				continue;
			}
			if (*lx->p == '(')
				depth++;
			else if (*lx->p == ')' && --depth == 0) {
				lx->p++;
				break;
			}
		}
	}
}

/* A word (up to space, ';', '=', '(' or '"') or a quoted string; NULL at
 * a special character or the end. */
static char *lex_value(struct lex *lx)
{
	skip_cfws(lx);
	if (*lx->p == '"') {
		struct buf b = BUF_INIT;
		buf_adds(&b, "");
		for (lx->p++; *lx->p && *lx->p != '"'; lx->p++) {
			if (*lx->p == '\\' && lx->p[1])
				lx->p++;
			buf_addc(&b, *lx->p);
		}
		if (*lx->p == '"')
			lx->p++;
		return buf_steal(&b);
	}
	const char *s = lx->p;
	while (*lx->p && !isspace((unsigned char)*lx->p) && !strchr(";=(\"", *lx->p))
		lx->p++;
	return lx->p > s ? xstrndup(s, (size_t)(lx->p - s)) : NULL;
}

static bool lex_char(struct lex *lx, char c)
{
	skip_cfws(lx);
	if (*lx->p != c)
		return false;
	lx->p++;
	return true;
}

/* Skip to just past the next ';' (or the end): resynchronise after junk. */
static void lex_next_resinfo(struct lex *lx)
{
	while (*lx->p && *lx->p != ';') {
		if (*lx->p == '(' || isspace((unsigned char)*lx->p)) {
			skip_cfws(lx);
			continue;
		}
		char *w = lex_value(lx);
		if (w == NULL)
			lx->p++;
		free(w);
	}
}

/* "ptype.property = value" pairs after a method's result. */
static void parse_props(struct lex *lx, struct ar_result *r)
{
	for (;;) {
		skip_cfws(lx);
		if (*lx->p == '\0' || *lx->p == ';')
			return;
		char *name = lex_value(lx);
		if (name == NULL) {
			lx->p++;
			continue;
		}
		char *val = lex_char(lx, '=') ? lex_value(lx) : NULL;
		if (val && strchr(name, '.') && strcmp(str_lower_ascii(name), "reason") != 0) {
			char *pv = xasprintf("%s=%s", name, val);
			r->props = strv_add(r->props, pv);
			free(pv);
		}
		free(name);
		free(val);
	}
}

static bool parse_resinfo(struct lex *lx, struct ar_header *h)
{
	char *method = lex_value(lx);
	if (method == NULL)
		return false;
	if (strcmp(str_lower_ascii(method), "none") == 0) {
		free(method);
		return false;
	}
	char *slash = strchr(method, '/');
	if (slash)
		*slash = '\0';
	char *result = lex_char(lx, '=') ? lex_value(lx) : NULL;
	if (result == NULL) {
		free(method);
		lex_next_resinfo(lx);
		return true;
	}
	h->res = xreallocarray(h->res, h->nres + 1, sizeof(*h->res));
	struct ar_result *r = &h->res[h->nres++];
	r->method = method;
	r->result = str_lower_ascii(result);
	r->props = NULL;
	parse_props(lx, r);
	return true;
}

int ar_parse(const char *value, struct ar_header *out)
{
	memset(out, 0, sizeof(*out));
	struct lex lx = { value ? value : "" };
	out->authserv_id = lex_value(&lx);
	if (out->authserv_id == NULL)
		return -1;
	str_lower_ascii(out->authserv_id);
	skip_cfws(&lx);
	if (*lx.p && *lx.p != ';')
		free(lex_value(&lx));          /* authres-version */
	while (lex_char(&lx, ';'))
		if (!parse_resinfo(&lx, out))
			break;
	return 0;
}

void ar_free(struct ar_header *h)
{
	free(h->authserv_id);
	for (size_t i = 0; i < h->nres; i++) {
		free(h->res[i].method);
		free(h->res[i].result);
		strv_free(h->res[i].props);
	}
	free(h->res);
	memset(h, 0, sizeof(*h));
}

const char *ar_prop(const struct ar_result *r, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; r->props && r->props[i]; i++)
		if (strncasecmp(r->props[i], name, n) == 0 && r->props[i][n] == '=')
			return r->props[i] + n + 1;
	return NULL;
}

/* ---- alignment and the verdict ---- */

/* "gov.tr", "com.tr", "co.uk": a registry's suffix, which no
 * organisation owns. Not the Public Suffix List: only the shape "common
 * second-level label + a two-letter country code", enough to keep a
 * parent-domain match from reaching past the organisation. */
static bool registry_suffix(const char *d)
{
	static const char *const sld[] = { "ac", "av", "bbs", "bel", "biz", "co", "com", "dr",
					   "edu", "gen", "gov", "info", "k12", "kep", "mil", "name",
					   "net", "or", "org", "pol", "tel", "tsk", "web" };
	const char *dot = strchr(d, '.');
	if (dot == NULL || strchr(dot + 1, '.') || strlen(dot + 1) != 2)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(sld); i++)
		if ((size_t)(dot - d) == strlen(sld[i]) && strncasecmp(d, sld[i], (size_t)(dot - d)) == 0)
			return true;
	return false;
}

bool domain_within(const char *base, const char *d)
{
	if (base == NULL || d == NULL || *base == '\0')
		return false;
	size_t nb = strlen(base), nd = strlen(d);
	if (nb == nd)
		return strcasecmp(base, d) == 0;
	return nd > nb && d[nd - nb - 1] == '.' && strcasecmp(d + nd - nb, base) == 0;
}

bool domain_aligned(const char *domain, const char *sender_domain)
{
	if (domain == NULL || sender_domain == NULL || strchr(domain, '.') == NULL)
		return false;
	if (strcasecmp(domain, sender_domain) == 0)
		return true;
	return !registry_suffix(domain) && domain_within(domain, sender_domain);
}

static const char *domain_of(const char *s)
{
	const char *at = s ? strrchr(s, '@') : NULL;
	return at ? at + 1 : s;
}

/* An aligned pass in one result? Fills *prop with the property that
 * made it so ("header.d=kamusm.gov.tr"), NULL for dmarc without one. */
static bool result_passes(const struct config *c, const struct ar_result *r, const char *from,
			  char **prop)
{
	static const struct {
		const char *method;
		const char *props[2];
	} aligned[] = {
		{ "dkim", { "header.d", "header.i" } },
		{ "spf", { "smtp.mailfrom", NULL } },
		{ "dmarc", { "header.from", NULL } },
	};
	const char *sd = domain_of(from);
	*prop = NULL;
	if (strcmp(r->result, "pass") != 0)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(aligned); i++) {
		if (strcmp(r->method, aligned[i].method) != 0)
			continue;
		for (size_t k = 0; k < 2 && aligned[i].props[k]; k++) {
			const char *v = ar_prop(r, aligned[i].props[k]);
			if (v && domain_aligned(domain_of(v), sd)) {
				*prop = xasprintf("%s=%s", aligned[i].props[k], v);
				return true;
			}
		}
		/* dmarc is about the From domain by definition */
		return strcmp(r->method, "dmarc") == 0 && ar_prop(r, "header.from") == NULL;
	}
	if (strcmp(r->method, "auth") == 0) {
		/* SMTP AUTH at our own server: the login must be the sender
		 * (or its local part, for a sender in our domains). */
		const char *v = ar_prop(r, "smtp.auth");
		if (v == NULL)
			return false;
		size_t n = strlen(v);
		bool ok = strchr(v, '@') ? strcasecmp(v, from) == 0
			: conf_domain_allowed(c, from) && strncasecmp(v, from, n) == 0 && from[n] == '@';
		if (ok)
			*prop = xasprintf("smtp.auth=%s", v);
		return ok;
	}
	return false;
}

static bool trusted_id(const struct config *c, const char *id)
{
	for (size_t i = 0; c->trust.authserv_ids && c->trust.authserv_ids[i]; i++)
		if (strcasecmp(c->trust.authserv_ids[i], id) == 0)
			return true;
	return false;
}

/* Look at one trusted header; true on an aligned pass (how filled). */
static bool verdict_from(const struct config *c, const struct ar_header *h, const char *from,
			 struct buf *seen, char **how)
{
	for (size_t i = 0; i < h->nres; i++) {
		const struct ar_result *r = &h->res[i];
		char *prop = NULL;
		if (result_passes(c, r, from, &prop)) {
			*how = xasprintf("%s=pass%s%s at %s", r->method, prop ? " " : "",
					 prop ? prop : "", h->authserv_id);
			free(prop);
			return true;
		}
		buf_printf(seen, "%s%s=%s", seen->len ? ", " : "", r->method, r->result);
	}
	return false;
}

/*
 * The topmost header from a trusted authserv-id is ours; more of ours may
 * follow (one per milter), but a Received line ends our hop: anything
 * below it came with the mail and may be forged. This assumes the MTA
 * adds its Authentication-Results to every message it accepts (or strips
 * foreign ones with its authserv-id, RFC 8601 section 5): a message it
 * left without one would expose a forged header further down.
 */
void auth_check(const struct config *c, const struct message *m, struct auth_verdict *out)
{
	memset(out, 0, sizeof(*out));
	const char *from = m->from.email;
	if (from == NULL || strchr(from, '@') == NULL) {
		out->how = xstrdup("no sender address");
		return;
	}
	struct buf seen = BUF_INIT;
	for (size_t i = 0; i < m->nheaders && !out->pass; i++) {
		const struct header *hd = &m->headers[i];
		if (out->found && str_ieq(hd->name, "Received"))
			break;
		if (!str_ieq(hd->name, "Authentication-Results"))
			continue;
		struct ar_header h;
		if (ar_parse(hd->value, &h) == 0 && trusted_id(c, h.authserv_id)) {
			out->found = true;
			out->pass = verdict_from(c, &h, from, &seen, &out->how);
		}
		ar_free(&h);
	}
	if (!out->found)
		out->how = strv_len(c->trust.authserv_ids) == 0
			? xstrdup("trust.authserv_id is not configured")
			: xasprintf("no Authentication-Results from %s", c->trust.authserv_ids[0]);
	else if (!out->pass)
		out->how = xasprintf("no aligned pass for %s (%s)", domain_of(from),
				     seen.len ? seen.p : "no results");
	buf_free(&seen);
}

void auth_verdict_free(struct auth_verdict *v)
{
	free(v->how);
	memset(v, 0, sizeof(*v));
}

/* ---- links ---- */

/* A DNS name of letters, digits and hyphens, at least two labels, the
 * last alphabetic: this refuses IP literals in every spelling. */
static int host_shape(const char *host, char **reason)
{
	const char *label = host;
	for (const char *p = host;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
				return seterr(reason, "host '%s' is not a valid name", host);
			if (strncmp(label, "xn--", 4) == 0)
				return seterr(reason, "host '%s' has a punycode label", host);
			if (*p == '\0')
				break;
			label = p + 1;
			continue;
		}
		unsigned char ch = (unsigned char)*p;
		if (ch >= 0x80)
			return seterr(reason, "host has non-ASCII characters");
		if (!isalnum(ch) && ch != '-')
			return seterr(reason, "host '%s' has a '%c'", host, ch);
	}
	const char *tld = strrchr(host, '.');
	if (tld == NULL)
		return seterr(reason, "host '%s' is not a full domain name", host);
	for (const char *p = tld + 1; *p; p++)
		if (!isalpha((unsigned char)*p))
			return seterr(reason, "host '%s' is an IP address", host);
	return 0;
}

/* "*.x" matches x itself and every name under it: the apex belongs to the
 * same owner as its subdomains, so admitting it opens nothing. */
static bool host_allowed(char *const *pats, const char *host)
{
	for (size_t i = 0; pats && pats[i]; i++) {
		const char *p = pats[i];
		if (str_startswith(p, "*.")) {
			if (domain_within(p + 2, host))
				return true;
		} else if (strcasecmp(p, host) == 0) {
			return true;
		}
	}
	return false;
}

/* Split "https://authority/..." and check the authority. */
static int authority_check(const struct config *c, const char *auth, size_t n, char **reason)
{
	if (memchr(auth, '@', n))
		return seterr(reason, "user info ('@') before the host");
	if (n > 0 && auth[0] == '[')
		return seterr(reason, "host is an IP address");
	char *host = xstrndup(auth, n);
	char *colon = strchr(host, ':');
	int rc = 0;
	if (colon) {
		*colon = '\0';
		if (strcmp(colon + 1, "443") != 0)
			rc = seterr(reason, "port '%.10s' (only 443)", colon + 1);
	}
	str_lower_ascii(host);
	if (rc == 0)
		rc = host_shape(host, reason);
	if (rc == 0 && !host_allowed(c->trust.link_hosts, host))
		rc = seterr(reason, "host '%s' is not allow-listed (trust.link_hosts)", host);
	free(host);
	return rc;
}

int link_check(const struct config *c, const char *url, char **reason)
{
	size_t len = strlen(url);
	if (len > 2048)
		return seterr(reason, "link longer than 2048 bytes");
	if (strncasecmp(url, "https://", 8) != 0)
		return seterr(reason, "not an https link");
	for (const char *p = url; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\\')
			return seterr(reason, "backslash in the link");
		if (ch <= 0x20 || ch == 0x7f || ch == '"' || ch == '<' || ch == '>')
			return seterr(reason, "space, control character or quote in the link");
	}
	const char *auth = url + 8;
	size_t n = strcspn(auth, "/?#");
	if (n == 0)
		return seterr(reason, "no host");
	return authority_check(c, auth, n, reason);
}

/* ---- decisions ---- */

static void set_trust(struct event *ev, bool ok, char *reason)
{
	ev->trusted = ok;
	free(ev->trust_reason);
	ev->trust_reason = reason;
}

/* The sender's authentication, or "not required". *ok false: refused. */
static char *auth_words(const struct config *c, const struct message *m, bool *ok)
{
	struct auth_verdict v;
	auth_check(c, m, &v);
	char *s;
	if (v.pass) {
		*ok = true;
		s = v.how, v.how = NULL;
	} else if (!c->trust.require_auth) {
		*ok = true;
		s = xasprintf("authentication not required (trust.require_auth = no; %s)", v.how);
	} else {
		*ok = false;
		s = v.how, v.how = NULL;
	}
	auth_verdict_free(&v);
	return s;
}

static const char *addr_or(const char *a)
{
	return a ? a : "(none)";
}

/* The verdict on a sender who passed the allow-lists: "<who>: <how>",
 * or "<who><refused>: <how>" when m's authentication is refused. Takes
 * who. */
static void trust_by_auth(const struct config *c, const struct message *m, char *who,
			  const char *refused, struct event *ev)
{
	bool ok;
	char *how = auth_words(c, m, &ok);
	set_trust(ev, ok, xasprintf("%s%s: %s", who, ok ? "" : refused, how));
	free(how);
	free(who);
}

/* Forwarded KAMUSM mail is as good as the officer who forwarded it. */
static void trust_forward(const struct config *c, const struct message *outer,
			  const struct message *orig, struct event *ev)
{
	const char *fwd = outer->from.email;
	if (fwd == NULL || !conf_is_officer(c, fwd)) {
		set_trust(ev, false, xasprintf("forwarded by %s, who is not an officer", addr_or(fwd)));
		return;
	}
	if (!conf_addr_match(c->trust.kamusm_senders, addr_or(orig->from.email))) {
		set_trust(ev, false, xasprintf("forwarded by officer %s, but the original sender %s "
					       "is not an allow-listed KAMUSM sender (trust.kamusm_senders)",
					       fwd, addr_or(orig->from.email)));
		return;
	}
	trust_by_auth(c, outer, xasprintf("forwarded by officer %s", fwd),
		      ", but the forward is not authenticated", ev);
}

static void trust_kamusm(const struct config *c, const struct message *m, struct event *ev)
{
	const char *from = m->from.email;
	if (from == NULL || !conf_addr_match(c->trust.kamusm_senders, from)) {
		set_trust(ev, false, xasprintf("sender %s is not an allow-listed KAMUSM sender "
					       "(trust.kamusm_senders)", addr_or(from)));
		return;
	}
	trust_by_auth(c, m, xasprintf("KAMUSM sender %s", from), " is not authenticated", ev);
}

static void trust_command(const struct config *c, const struct message *m, struct event *ev)
{
	const char *from = m->from.email;
	if (from == NULL || !conf_is_officer(c, from)) {
		set_trust(ev, false, xasprintf("%s is not an officer", addr_or(from)));
		return;
	}
	trust_by_auth(c, m, xasprintf("officer %s", from), " is not authenticated", ev);
}

static void trust_request(const struct config *c, const struct message *m, bool forwarded,
			  struct event *ev)
{
	const char *from = m->from.email;
	const char *who = forwarded ? "forwarded by" : "sender";
	if (from == NULL || !conf_domain_allowed(c, from)) {
		set_trust(ev, false, xasprintf("%s %s, outside the institution's domains", who,
					       addr_or(from)));
		return;
	}
	trust_by_auth(c, m, xasprintf("%s %s of the institution", who, from), ", not authenticated",
		      ev);
}

/* A bounce is never authenticated; it counts only when it names one of
 * our own notices, which the workflow then looks up. */
static void trust_bounce(const struct config *c, struct event *ev)
{
	const char *dom = c->smtp.message_id_domain;
	const char *id = ev->bounce.notice;
	if (id == NULL) {
		set_trust(ev, false, xstrdup("bounce names no Message-ID of ours"));
		return;
	}
	const char *at = strrchr(id, '@');
	if (!str_empty(dom) && (at == NULL || strcasecmp(at + 1, dom) != 0)) {
		set_trust(ev, false, xasprintf("bounced Message-ID is not from %s", dom));
		return;
	}
	set_trust(ev, true, xstrdup("bounce of one of our notices (matched by its Message-ID)"));
}

void trust_decide(const struct classify_ctx *ctx, const struct message *outer,
		  const struct message *orig, struct event *ev)
{
	const struct config *c = ctx->conf;
	bool fwd = orig != outer;
	switch (ev->kind) {
	case MK_KAMUSM_CREDENTIALS:
	case MK_KAMUSM_INFO:
	case MK_KAMUSM_SHIPPED:
	case MK_KAMUSM_EXPIRY:
		if (fwd)
			trust_forward(c, outer, orig, ev);
		else
			trust_kamusm(c, outer, ev);
		return;
	case MK_REQUEST:
		/* whoever put the letter in the mailbox, forwarded or not, must
		 * be inside the institution and authenticated */
		trust_request(c, outer, fwd, ev);
		return;
	case MK_COMMAND:
		trust_command(c, outer, ev);
		return;
	case MK_BOUNCE:
		trust_bounce(c, ev);
		return;
	case MK_AUTO_REPLY:
		set_trust(ev, false, xstrdup("automatic reply: never acted on"));
		return;
	case MK_UNREADABLE:
		set_trust(ev, false, xstrdup("unreadable: never acted on"));
		return;
	default:
		set_trust(ev, false, xstrdup("no rule matched: never acted on"));
		return;
	}
}
