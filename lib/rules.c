/* rules.c: the rules file, compiled patterns on folded text, and
 * extraction cut from the original text (see classify.h, classify_p.h). */
#include "classify_p.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- patterns ---- */

/* regexec fills at most this many spans; a value group must be below. */
#define MAX_SPANS 16

static void fold_append(struct buf *out, const char *s, size_t n)
{
	if (n == 0)
		return;
	struct folded f;
	text_fold(s, n, false, &f);
	buf_add(out, f.s, f.len);
	folded_free(&f);
}

/* Past a bracket expression starting at src[i] == '['; returns the index
 * of its closing ']' (or n if unterminated: regcomp will say so). */
static size_t bracket_end(const char *src, size_t n, size_t i)
{
	size_t j = i + 1;
	if (j < n && src[j] == '^')
		j++;
	if (j < n && src[j] == ']')
		j++;
	for (; j < n; j++) {
		if (src[j] == '[' && j + 1 < n && strchr(":.=", src[j + 1]) && src[j + 1] != '\0') {
			const char *close = NULL;
			char term[3] = { src[j + 1], ']', '\0' };
			close = strstr(src + j + 2, term);
			if (close == NULL)
				return n;
			j = (size_t)(close - src) + 1;
			continue;
		}
		if (src[j] == ']')
			return j;
	}
	return n;
}

/* Fold the pattern's text, keep escapes (\W is not \w) as written, turn
 * (?: into ( and note which group is the first that captures. */
static int pattern_rewrite(const char *src, struct buf *out, int *value_group, char **err)
{
	size_t n = strlen(src), seg = 0;
	int ngroups = 0;
	*value_group = 0;
	for (size_t i = 0; i < n; i++) {
		if (src[i] == '[') {
			i = bracket_end(src, n, i);
			if (i >= n)
				break;
			continue;
		}
		if (src[i] == '\\' && i + 1 < n) {
			fold_append(out, src + seg, i - seg);
			buf_add(out, src + i, 2);
			seg = ++i + 1;
			continue;
		}
		if (src[i] != '(')
			continue;
		ngroups++;
		if (i + 2 < n && src[i + 1] == '?' && src[i + 2] == ':') {
			fold_append(out, src + seg, i + 1 - seg);
			i += 2;
			seg = i + 1;
		} else if (*value_group == 0) {
			*value_group = ngroups;
		}
	}
	fold_append(out, src + seg, n - seg);
	if (*value_group >= MAX_SPANS)
		return seterr(err, "the value group comes after too many groups (%d)", *value_group);
	return 0;
}

int pattern_compile(struct pattern *p, const char *src, bool lines, char **err)
{
	memset(p, 0, sizeof(*p));
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	if (pattern_rewrite(src, &b, &p->group, err) < 0) {
		buf_free(&b);
		return -1;
	}
	p->nosub = !lines;
	int rc = regcomp(&p->re, b.p, REG_EXTENDED | (lines ? REG_NEWLINE : REG_NOSUB));
	buf_free(&b);
	if (rc != 0) {
		char msg[256];
		regerror(rc, &p->re, msg, sizeof(msg));
		return seterr(err, "bad pattern '%s': %s", src, msg);
	}
	if ((size_t)p->group > p->re.re_nsub) {
		regfree(&p->re);
		return seterr(err, "bad pattern '%s': group count mismatch", src);
	}
	p->src = xstrdup(src);
	return 0;
}

void pattern_free(struct pattern *p)
{
	if (p->src) {
		regfree(&p->re);
		free(p->src);
	}
	memset(p, 0, sizeof(*p));
}

bool pattern_search(const struct pattern *p, const char *s, size_t len, size_t from,
		    size_t *vso, size_t *veo, size_t *mend)
{
	regmatch_t m[MAX_SPANS];
	if (from > len)
		return false;
	m[0].rm_so = (regoff_t)from;
	m[0].rm_eo = (regoff_t)len;
	if (regexec(&p->re, s, (size_t)p->group + 1, m, REG_STARTEND) != 0)
		return false;
	if (p->nosub) {
		if (vso || veo || mend)
			fatalx("rules: a condition pattern has no spans");
		return true;
	}
	int g = m[p->group].rm_so >= 0 ? p->group : 0;
	if (vso)
		*vso = (size_t)m[g].rm_so;
	if (veo)
		*veo = (size_t)m[g].rm_eo;
	if (mend)
		*mend = (size_t)m[0].rm_eo;
	return true;
}

static bool pattern_match(const struct pattern *p, const char *s)
{
	return s && pattern_search(p, s, strlen(s), 0, NULL, NULL, NULL);
}

static void plist_free(struct plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		pattern_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int plist_add(struct plist *l, const char *src, bool lines, char **err)
{
	struct pattern p;
	if (pattern_compile(&p, src, lines, err) < 0)
		return -1;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = p;
	return 0;
}

/* ---- the rules file ---- */

static void rule_free(struct rule *r)
{
	free(r->name);
	strv_free(r->from);
	strv_free(r->to);
	plist_free(&r->subject);
	plist_free(&r->body);
	plist_free(&r->text);
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		pattern_free(&r->headers[i].pat);
	}
	free(r->headers);
	for (int i = 0; i < RX__COUNT; i++)
		plist_free(&r->extract[i]);
}

void rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		rule_free(&r->v[i]);
	free(r->v);
	free(r);
}

size_t rules_count(const struct rules *r)
{
	return r ? r->n : 0;
}

static const char *const addr_lists[] = { "$kamusm_senders", "$institution_domains", "$officers" };

static int set_kind(struct rule *r, const char *v, char **err)
{
	if (msg_kind_parse(v, &r->kind) < 0 || r->kind == MK_UNREADABLE)
		return seterr(err, "kind: '%s' is not one of request, kamusm.credentials, kamusm.info, "
			      "kamusm.shipped, kamusm.expiry, command, bounce, auto_reply, other", v);
	r->has_kind = true;
	return 0;
}

static int add_addrs(char ***list, const char *v, char **err)
{
	char *copy = xstrdup(v), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		bool known = t[0] != '$';
		for (size_t i = 0; i < ARRAY_LEN(addr_lists); i++)
			known |= strcmp(t, addr_lists[i]) == 0;
		if (!known || (t[0] != '$' && strchr(t, '@') == NULL)) {
			rc = seterr(err, "'%s' is not an address pattern (a@b, *@b, *@*.b, "
				    "$kamusm_senders, $institution_domains, $officers)", t);
			break;
		}
		*list = strv_add(*list, t);
	}
	free(copy);
	return rc;
}

static int add_header(struct rule *r, const char *v, char **err)
{
	const char *colon = strchr(v, ':');
	if (colon == NULL || colon == v)
		return seterr(err, "header: expected 'Name: pattern'");
	struct pattern p;
	const char *pat = colon + 1;
	while (*pat == ' ' || *pat == '\t')
		pat++;
	if (pattern_compile(&p, pat, false, err) < 0)
		return -1;
	r->headers = xreallocarray(r->headers, r->nheaders + 1, sizeof(*r->headers));
	char *name = xstrndup(v, (size_t)(colon - v));
	r->headers[r->nheaders].name = xstrdup(str_trim(name));
	free(name);
	r->headers[r->nheaders++].pat = p;
	return 0;
}

/* One row per key of a [rule NAME] section. */
enum key_type { KEY_KIND, KEY_FROM, KEY_TO, KEY_COND, KEY_HEADER, KEY_EXTRACT };
static const struct rule_key {
	const char *name;
	enum key_type type;
	size_t off;             /* KEY_COND: offset of the plist in struct rule */
	int field;              /* KEY_EXTRACT: enum rule_field */
} rule_keys[] = {
	{ "kind", KEY_KIND, 0, 0 },
	{ "from", KEY_FROM, 0, 0 },
	{ "to", KEY_TO, 0, 0 },
	{ "subject", KEY_COND, offsetof(struct rule, subject), 0 },
	{ "body", KEY_COND, offsetof(struct rule, body), 0 },
	{ "text", KEY_COND, offsetof(struct rule, text), 0 },
	{ "header", KEY_HEADER, 0, 0 },
	{ "link", KEY_EXTRACT, 0, RX_LINK },
	{ "code", KEY_EXTRACT, 0, RX_CODE },
	{ "tracking", KEY_EXTRACT, 0, RX_TRACKING },
	{ "expiry", KEY_EXTRACT, 0, RX_EXPIRY },
};

static int rule_set(struct rule *r, const char *key, const char *value, char **err)
{
	for (size_t i = 0; i < ARRAY_LEN(rule_keys); i++) {
		const struct rule_key *k = &rule_keys[i];
		if (strcmp(k->name, key) != 0)
			continue;
		if (k->type != KEY_FROM && k->type != KEY_TO && *value == '\0')
			return seterr(err, "%s: empty value", key);
		switch (k->type) {
		case KEY_KIND:
			return set_kind(r, value, err);
		case KEY_FROM:
			return add_addrs(&r->from, value, err);
		case KEY_TO:
			return add_addrs(&r->to, value, err);
		case KEY_COND:
			return plist_add((struct plist *)((char *)r + k->off), value, false, err);
		case KEY_HEADER:
			return add_header(r, value, err);
		case KEY_EXTRACT:
			return plist_add(&r->extract[k->field], value, true, err);
		}
	}
	return seterr(err, "unknown key '%s' (kind, from, to, subject, body, text, header, "
		      "link, code, tracking, expiry)", key);
}

struct load_ctx {
	struct rules *r;
	bool in_rule;           /* the current section is a good [rule NAME] */
};

static int rules_section(struct load_ctx *ctx, const char *section, const char *name,
			 const char *file, int line, struct conf_errors *errs)
{
	ctx->in_rule = false;
	if (strcmp(section, "rule") != 0 || name == NULL) {
		conf_errors_add(errs, file, line, "unknown section [%s%s%s]: rules are [rule NAME]",
				section, name ? " " : "", name ? name : "");
		return -1;
	}
	for (size_t i = 0; i < ctx->r->n; i++)
		if (strcmp(ctx->r->v[i].name, name) == 0) {
			conf_errors_add(errs, file, line, "rule '%s' is defined twice (first at line %d)",
					name, ctx->r->v[i].line);
			return -1;
		}
	ctx->r->v = xreallocarray(ctx->r->v, ctx->r->n + 1, sizeof(*ctx->r->v));
	struct rule *ru = &ctx->r->v[ctx->r->n++];
	memset(ru, 0, sizeof(*ru));
	ru->name = xstrdup(name);
	ru->line = line;
	ctx->in_rule = true;
	return 0;
}

static int rules_handler(void *vctx, const char *section, const char *name, const char *key,
			 const char *value, const char *file, int line, struct conf_errors *errs)
{
	struct load_ctx *ctx = vctx;
	if (key == NULL)
		return rules_section(ctx, section, name, file, line, errs);
	if (!ctx->in_rule)
		return -1;      /* the section's own error was reported */
	char *err = NULL;
	if (rule_set(&ctx->r->v[ctx->r->n - 1], key, value, &err) < 0) {
		conf_errors_add(errs, file, line, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

static void rules_check(const struct rules *r, const char *path, struct conf_errors *errs)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		if (!ru->has_kind)
			conf_errors_add(errs, path, ru->line, "rule '%s' has no kind", ru->name);
		if (!ru->from && !ru->to && !ru->subject.n && !ru->body.n && !ru->text.n && !ru->nheaders)
			conf_errors_add(errs, path, ru->line,
					"rule '%s' has no condition (from, to, subject, body, text, header): "
					"it would match every message", ru->name);
	}
}

int rules_load(const char *path, struct rules **out, struct conf_errors *errs)
{
	size_t before = errs->n;
	struct load_ctx ctx = { .r = xcalloc(1, sizeof(struct rules)) };
	*out = NULL;
	if (ini_read(path, rules_handler, &ctx, errs) == 0)
		rules_check(ctx.r, path, errs);
	if (errs->n != before) {
		rules_free(ctx.r);
		return -1;
	}
	*out = ctx.r;
	return 0;
}

/* ---- copies ---- */

/* glibc's regexec() locks the compiled pattern for the whole search, so
 * threads sharing one struct rules take turns at every pattern. A copy
 * compiles every pattern again from its source (a regex_t cannot be
 * copied): each classifying thread gets its own. */
static void pattern_dup(struct pattern *dst, const struct pattern *src)
{
	char *err = NULL;
	if (pattern_compile(dst, src->src, !src->nosub, &err) < 0)
		fatalx("rules: recompiling '%s': %s", src->src, err);
}

static void plist_dup(struct plist *dst, const struct plist *src)
{
	dst->n = src->n;
	dst->v = src->n ? xcalloc(src->n, sizeof(*dst->v)) : NULL;
	for (size_t i = 0; i < src->n; i++)
		pattern_dup(&dst->v[i], &src->v[i]);
}

static char **strv_dup(char *const *v)
{
	char **out = NULL;
	for (size_t i = 0; v && v[i]; i++)
		out = strv_add(out, v[i]);
	return out;
}

static void rule_dup(struct rule *dst, const struct rule *src)
{
	*dst = (struct rule){ .name = xstrdup(src->name), .line = src->line, .kind = src->kind,
			      .has_kind = src->has_kind, .from = strv_dup(src->from),
			      .to = strv_dup(src->to), .nheaders = src->nheaders };
	plist_dup(&dst->subject, &src->subject);
	plist_dup(&dst->body, &src->body);
	plist_dup(&dst->text, &src->text);
	dst->headers = src->nheaders ? xcalloc(src->nheaders, sizeof(*dst->headers)) : NULL;
	for (size_t i = 0; i < src->nheaders; i++) {
		dst->headers[i].name = xstrdup(src->headers[i].name);
		pattern_dup(&dst->headers[i].pat, &src->headers[i].pat);
	}
	for (int i = 0; i < RX__COUNT; i++)
		plist_dup(&dst->extract[i], &src->extract[i]);
}

struct rules *rules_dup(const struct rules *r)
{
	struct rules *c = xcalloc(1, sizeof(*c));
	c->n = r->n;
	c->v = r->n ? xcalloc(r->n, sizeof(*c->v)) : NULL;
	for (size_t i = 0; i < r->n; i++)
		rule_dup(&c->v[i], &r->v[i]);
	return c;
}

/* ---- views ---- */

void view_init(struct view *v, const struct message *m)
{
	memset(v, 0, sizeof(*v));
	v->m = m;
	v->text = m->body ? m->body : "";
	v->text_len = m->body ? m->body_len : 0;
}

void view_use_top(struct view *v)
{
	folded_free(&v->body);
	free(v->own);
	v->own = text_strip_quoted(v->m->body ? v->m->body : "");
	v->text = v->own;
	v->text_len = strlen(v->own);
}

void view_free(struct view *v)
{
	free(v->subject);
	free(v->own);
	folded_free(&v->body);
	memset(v, 0, sizeof(*v));
}

const char *view_subject(struct view *v)
{
	if (v->subject == NULL)
		v->subject = text_fold_str(v->m->subject ? v->m->subject : "");
	return v->subject;
}

const struct folded *view_body(struct view *v)
{
	if (v->body.s == NULL)
		text_fold(v->text, v->text_len, true, &v->body);
	return &v->body;
}

/* ---- matching ---- */

bool rule_addr_match(char *const *pats, const struct config *c, const char *addr)
{
	if (addr == NULL)
		return false;
	for (size_t i = 0; pats && pats[i]; i++) {
		const char *p = pats[i];
		bool ok;
		if (strcmp(p, "$kamusm_senders") == 0)
			ok = conf_addr_match(c->trust.kamusm_senders, addr);
		else if (strcmp(p, "$institution_domains") == 0)
			ok = conf_domain_allowed(c, addr);
		else if (strcmp(p, "$officers") == 0)
			ok = conf_is_officer(c, addr);
		else {
			char *one[2] = { (char *)p, NULL };
			ok = conf_addr_match(one, addr);
		}
		if (ok)
			return true;
	}
	return false;
}

static bool to_match(const struct rule *ru, const struct config *c, const struct message *m)
{
	for (size_t i = 0; i < m->nto; i++)
		if (rule_addr_match(ru->to, c, m->to[i].email))
			return true;
	for (size_t i = 0; i < m->ncc; i++)
		if (rule_addr_match(ru->to, c, m->cc[i].email))
			return true;
	return false;
}

static bool header_match(const struct rule_header *h, const struct message *m)
{
	const char *vals[32];
	size_t n = message_headers(m, h->name, vals, ARRAY_LEN(vals));
	for (size_t i = 0; i < n && i < ARRAY_LEN(vals); i++) {
		char *f = text_fold_str(vals[i]);
		bool ok = pattern_match(&h->pat, f);
		free(f);
		if (ok)
			return true;
	}
	return false;
}

static bool all_match(const struct plist *l, const char *s, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (!pattern_search(&l->v[i], s, len, 0, NULL, NULL, NULL))
			return false;
	return true;
}

/* Cheap conditions first: addresses, headers, the subject, then the body. */
static bool rule_matches(const struct rule *ru, const struct config *c, struct view *v)
{
	const struct message *m = v->m;
	if (ru->from && !rule_addr_match(ru->from, c, m->from.email))
		return false;
	if (ru->to && !to_match(ru, c, m))
		return false;
	for (size_t i = 0; i < ru->nheaders; i++)
		if (!header_match(&ru->headers[i], m))
			return false;
	if (ru->subject.n) {
		const char *s = view_subject(v);
		if (!all_match(&ru->subject, s, strlen(s)))
			return false;
	}
	for (size_t i = 0; i < ru->text.n; i++) {
		const char *s = view_subject(v);
		if (pattern_search(&ru->text.v[i], s, strlen(s), 0, NULL, NULL, NULL))
			continue;
		const struct folded *b = view_body(v);
		if (!pattern_search(&ru->text.v[i], b->s, b->len, 0, NULL, NULL, NULL))
			return false;
	}
	if (ru->body.n) {
		const struct folded *b = view_body(v);
		if (!all_match(&ru->body, b->s, b->len))
			return false;
	}
	return true;
}

const struct rule *rules_first(const struct rules *r, const struct config *c, struct view *v,
			       unsigned kinds)
{
	for (size_t i = 0; r && i < r->n; i++)
		if ((kinds & KIND_BIT(r->v[i].kind)) && rule_matches(&r->v[i], c, v))
			return &r->v[i];
	return NULL;
}

/* ---- extraction ---- */

char *folded_cut(const struct folded *f, const char *orig, size_t so, size_t eo)
{
	size_t a = f->map[so], b = f->map[eo];
	return xstrndup(orig + a, b > a ? b - a : 0);
}

/* The value of the first alternative that matches, trimmed; NULL if none. */
static char *extract_first(const struct plist *l, const struct folded *f, const char *orig)
{
	for (size_t i = 0; i < l->n; i++) {
		size_t so, eo;
		if (!pattern_search(&l->v[i], f->s, f->len, 0, &so, &eo, NULL))
			continue;
		char *raw = folded_cut(f, orig, so, eo);
		char *val = xstrdup(str_trim(raw));
		free(raw);
		if (*val)
			return val;
		free(val);
	}
	return NULL;
}

/* Links: every match of every alternative is checked; the first that
 * passes is kept, each refused one is a problem. Bounded, so a mail of
 * ten thousand links costs no more than fifty. */
static void extract_links(const struct plist *l, const struct config *c, const struct folded *f,
			  const char *orig, struct event *ev)
{
	int budget = 50;
	for (size_t i = 0; i < l->n && budget > 0; i++) {
		size_t from = 0, so, eo, end;
		while (budget-- > 0 && pattern_search(&l->v[i], f->s, f->len, from, &so, &eo, &end)) {
			from = end > from ? end : from + 1;
			if (eo == so)
				continue;
			char *url = folded_cut(f, orig, so, eo);
			char *reason = NULL;
			if (link_check(c, url, &reason) == 0) {
				if (ev->link == NULL)
					ev->link = url, url = NULL;
			} else {
				event_add_problem(ev, "link refused: %s", reason);
			}
			free(reason);
			free(url);
		}
	}
}

void rule_extract(const struct rule *ru, const struct config *c, struct view *v, struct event *ev)
{
	const char *orig = v->text;
	const struct folded *f = NULL;
	for (int i = 0; i < RX__COUNT; i++)
		if (ru->extract[i].n)
			f = view_body(v);
	if (f == NULL)
		return;
	extract_links(&ru->extract[RX_LINK], c, f, orig, ev);
	char *code = extract_first(&ru->extract[RX_CODE], f, orig);
	if (code) {
		secure_free(ev->access_code);
		ev->access_code = code;
	}
	char *trk = extract_first(&ru->extract[RX_TRACKING], f, orig);
	if (trk) {
		free(ev->tracking_no);
		ev->tracking_no = trk;
	}
	char *exp = extract_first(&ru->extract[RX_EXPIRY], f, orig);
	if (exp) {
		ev->expiry = text_date_parse(exp);
		if (ev->expiry == 0)
			event_add_problem(ev, "expiry date '%.40s' not understood", exp);
		free(exp);
	}
}

/* ---- dates in text ---- */

static int month_number(const char *word)
{
	static const char *const tr[] = { "ocak", "subat", "mart", "nisan", "mayis", "haziran",
					  "temmuz", "agustos", "eylul", "ekim", "kasim", "aralik" };
	static const char *const en[] = { "jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec" };
	for (int i = 0; i < 12; i++)
		if (strcmp(word, tr[i]) == 0 || strncmp(word, en[i], 3) == 0)
			return i + 1;
	return 0;
}

static time_t ymd(int y, int mo, int d)
{
	if (y < 100)
		y += 2000;
	if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return 0;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d };
	time_t t = timegm(&tm);
	struct tm back;
	gmtime_r(&t, &back);
	if (back.tm_mday != d || back.tm_mon != mo - 1)
		return 0;       /* 31.02. */
	return t;
}

time_t text_date_parse(const char *s)
{
	char *f = text_fold_str(s);
	time_t t = 0;
	for (char *p = f; *p && t == 0; p++) {
		if (!isdigit((unsigned char)*p) || (p > f && isdigit((unsigned char)p[-1])))
			continue;
		int a, b, c, n = 0;
		char sep1, sep2, word[16];
		if (sscanf(p, "%4d%c%2d%c%4d%n", &a, &sep1, &b, &sep2, &c, &n) == 5 && sep1 == sep2 &&
		    strchr(".-/", sep1)) {
			t = a > 31 ? ymd(a, b, c) : ymd(c, b, a);
		} else if (sscanf(p, "%2d %15[a-z] %4d", &a, word, &c) == 3) {
			t = ymd(c, month_number(word), a);
		}
	}
	free(f);
	return t;
}
