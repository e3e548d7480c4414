/*
 * mime_hdr.c: header blocks, RFC 2047 words, RFC 2231 parameters,
 * message ids and addresses (message.h, message_p.h).
 *
 * Headers are scanned here rather than taken from libetpan's parsed
 * fields because the rules want every header as written (name and value),
 * and because a scanner that only looks for line ends stays linear and
 * bounded on hostile input (1 MB lines, NUL bytes, endless folding).
 */
#include "message_p.h"

#include <libetpan/libetpan.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Beyond this many headers the rest is ignored (a problem, not a limit). */
#define MAX_HEADERS 5000
/* Addresses kept from one list. */
#define MAX_ADDRS 1000

/* ---- header scanning ---- */

static bool hdr_name_ok(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c >= 127)
			return false;
	}
	return true;
}

/* Append bytes to the value being built, dropping NULs, within max. */
static void val_add(struct buf *b, const char *p, size_t n, size_t max, bool *too_long)
{
	const char *end = p + n;
	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t k = (size_t)((z ? z : end) - p);
		if (b->len + k > max) {
			buf_add(b, p, max - b->len);
			*too_long = true;
			return;
		}
		buf_add(b, p, k);
		p += k + (z != NULL);
	}
}

static void hdr_push(struct raw_headers *h, const char *name, size_t nlen, struct buf *val)
{
	if (h->n >= MAX_HEADERS) {
		h->too_many = true;
		buf_free(val);
		return;
	}
	h->v = xreallocarray(h->v, h->n + 1, sizeof(*h->v));
	h->v[h->n].name = xstrndup(name, nlen);
	char *v = buf_steal(val);
	char *t = str_trim(v);
	if (t != v)
		memmove(v, t, strlen(t) + 1);
	h->v[h->n].value = v;
	h->n++;
}

void hdr_scan(const char *raw, size_t len, size_t max_header, struct raw_headers *out)
{
	const char *p = raw, *end = raw + len;
	const char *name = NULL;
	size_t nlen = 0;
	struct buf val = BUF_INIT;

	memset(out, 0, sizeof(*out));
	if (max_header == 0)
		max_header = 65536;
	/* An mbox "From " line is not a header. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', len);
		p = nl ? nl + 1 : end;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
		size_t ll = (size_t)(le - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			p = next;
			break;
		}
		if (p[0] == ' ' || p[0] == '\t') {
			if (name)
				val_add(&val, p, ll, max_header, &out->too_long);
			p = next;
			continue;
		}
		const char *colon = memchr(p, ':', ll);
		size_t nl_len = colon ? (size_t)(colon - p) : 0;
		while (nl_len > 0 && (p[nl_len - 1] == ' ' || p[nl_len - 1] == '\t'))
			nl_len--;
		if (!colon || !hdr_name_ok(p, nl_len))
			break;           /* not a header: the body starts here */
		if (name)
			hdr_push(out, name, nlen, &val);
		name = p;
		nlen = nl_len;
		buf_reset(&val);
		val_add(&val, colon + 1, ll - (size_t)(colon + 1 - p), max_header, &out->too_long);
		p = next;
	}
	if (name)
		hdr_push(out, name, nlen, &val);
	buf_free(&val);
	out->body_off = (size_t)(p - raw);
}

void hdr_scan_free(struct raw_headers *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* ---- RFC 2047 ---- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Lenient base64: skips what is not in the alphabet, stops at '='. */
static void b64_decode(struct buf *o, const char *p, size_t n)
{
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '=')
			break;
		int v = b64val((unsigned char)p[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addc(o, (char)((acc >> bits) & 0xFF));
		}
	}
}

static void q_decode(struct buf *o, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '_') {
			buf_addc(o, ' ');
		} else if (p[i] == '=' && i + 2 < n && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0) {
			buf_addc(o, (char)(hex_value(p[i + 1]) * 16 + hex_value(p[i + 2])));
			i += 2;
		} else {
			buf_addc(o, p[i]);
		}
	}
}

/* One encoded word at p: "=?cs?X?text?=". */
struct eword {
	char cs[48];
	char enc;
	const char *text;
	size_t tlen;
	const char *end;         /* after "?=" */
};

/* Returns 1 and fills w, 0 if p does not start a word, -1 if no "?="
 * follows anywhere (then no later word can end either). */
static int eword_parse(const char *p, const char *end, struct eword *w)
{
	if (end - p < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	const char *q = p + 2, *cs = q;
	while (q < end && *q != '?' && *q > ' ' && q - cs < 47)
		q++;
	if (q >= end || *q != '?' || q == cs)
		return 0;
	size_t cl = (size_t)(q - cs);
	memcpy(w->cs, cs, cl);
	w->cs[cl] = '\0';
	char *star = strchr(w->cs, '*');     /* RFC 2231 language suffix */
	if (star)
		*star = '\0';
	q++;
	if (end - q < 3 || q[1] != '?')
		return 0;
	w->enc = (char)(q[0] | 0x20);
	if (w->enc != 'q' && w->enc != 'b')
		return 0;
	w->text = q + 2;
	const char *e = memmem(w->text, (size_t)(end - w->text), "?=", 2);
	if (!e)
		return -1;
	w->tlen = (size_t)(e - w->text);
	w->end = e + 2;
	return 1;
}

/* Decoded bytes of adjacent words in one charset are joined before
 * conversion: encoders split multi-byte characters across words. */
struct hdec {
	struct buf out;
	struct buf pend;
	char pend_cs[48];
	bool fallback;
	char **bad_cs;
};

static void hdec_flush(struct hdec *d)
{
	if (d->pend.len == 0)
		return;
	bool fb = false;
	size_t n;
	char *u = text_to_utf8(d->pend_cs, d->pend.p, d->pend.len, &n, &fb);
	buf_add(&d->out, u, n);
	free(u);
	if (fb) {
		d->fallback = true;
		if (d->bad_cs && !*d->bad_cs)
			*d->bad_cs = xstrdup(d->pend_cs[0] ? d->pend_cs : "(none)");
	}
	buf_reset(&d->pend);
}

static void hdec_plain(struct hdec *d, const char *p, size_t n)
{
	if (n == 0)
		return;
	hdec_flush(d);
	bool fb = false;
	size_t on;
	char *u = text_to_utf8(NULL, p, n, &on, &fb);
	buf_add(&d->out, u, on);
	free(u);
	d->fallback |= fb;
}

static bool only_space(const char *p, const char *e)
{
	for (; p < e; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

char *hdr_decode(const char *value, bool *fallback, char **bad_cs)
{
	struct hdec d;
	const char *p = value, *end = value + strlen(value), *plain = value;
	bool last_was_word = false;

	memset(&d, 0, sizeof(d));
	d.bad_cs = bad_cs;
	buf_reserve(&d.out, (size_t)(end - p));
	d.out.p[0] = '\0';
	while (p < end) {
		const char *eq = memmem(p, (size_t)(end - p), "=?", 2);
		struct eword w;
		if (!eq)
			break;
		int r = eword_parse(eq, end, &w);
		if (r < 0)
			break;
		if (r == 0) {
			p = eq + 2;
			continue;
		}
		/* Whitespace between two encoded words is dropped (RFC 2047 6.2). */
		if (!(last_was_word && only_space(plain, eq)))
			hdec_plain(&d, plain, (size_t)(eq - plain));
		if (d.pend.len && strcasecmp(d.pend_cs, w.cs) != 0)
			hdec_flush(&d);
		memcpy(d.pend_cs, w.cs, sizeof(w.cs));
		if (w.enc == 'b')
			b64_decode(&d.pend, w.text, w.tlen);
		else
			q_decode(&d.pend, w.text, w.tlen);
		p = plain = w.end;
		last_was_word = true;
	}
	hdec_plain(&d, plain, (size_t)(end - plain));
	hdec_flush(&d);
	buf_free(&d.pend);
	if (fallback)
		*fallback = d.fallback;
	/* Control characters (but tab) in a header value are noise. */
	for (size_t i = 0; i < d.out.len; i++)
		if ((unsigned char)d.out.p[i] < ' ' && d.out.p[i] != '\t')
			d.out.p[i] = ' ';
	return buf_steal(&d.out);
}

/* ---- RFC 2231 ---- */

static void pct_decode(struct buf *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '%' && hex_value(s[1]) >= 0 && hex_value(s[2]) >= 0) {
			buf_addc(o, (char)(hex_value(s[1]) * 16 + hex_value(s[2])));
			s += 2;
		} else {
			buf_addc(o, *s);
		}
	}
}

/* "charset'lang'rest": copies the charset, returns rest (or s if no
 * two quotes). */
static const char *split_ext(const char *s, char *cs, size_t cslen)
{
	const char *q1 = strchr(s, '\'');
	const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	if (!q2)
		return s;
	size_t n = (size_t)(q1 - s) < cslen - 1 ? (size_t)(q1 - s) : cslen - 1;
	memcpy(cs, s, n);
	cs[n] = '\0';
	return q2 + 1;
}

#define MAX_SEGMENTS 64

/* Parameter `pname` is a continuation of `name`: "name*N" or "name*N*". */
static int segment_index(const char *name, const char *pname, bool *ext)
{
	size_t nl = strlen(name);
	if (strncasecmp(pname, name, nl) != 0 || pname[nl] != '*')
		return -1;
	const char *q = pname + nl + 1;
	if (*q < '0' || *q > '9')
		return -1;
	int idx = 0;
	while (*q >= '0' && *q <= '9' && idx < 1000)
		idx = idx * 10 + (*q++ - '0');
	*ext = *q == '*';
	if (*q && !(q[0] == '*' && q[1] == '\0'))
		return -1;
	return idx < MAX_SEGMENTS ? idx : -1;
}

static char *param_segments(const char *name, const char *const *pn, const char *const *pv,
			    size_t n)
{
	const char *seg[MAX_SEGMENTS] = { 0 };
	bool segext[MAX_SEGMENTS] = { 0 };
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		bool ext;
		int k = segment_index(name, pn[i], &ext);
		if (k >= 0 && !seg[k]) {
			seg[k] = pv[i];
			segext[k] = ext;
			any = true;
		}
	}
	if (!any)
		return NULL;
	struct buf raw = BUF_INIT;
	char cs[48] = "";
	for (int k = 0; k < MAX_SEGMENTS && seg[k]; k++) {
		const char *v = seg[k];
		if (segext[k]) {
			if (k == 0)
				v = split_ext(v, cs, sizeof(cs));
			pct_decode(&raw, v);
		} else {
			buf_adds(&raw, v);
		}
	}
	char *r = text_to_utf8(cs, raw.p ? raw.p : "", raw.len, NULL, NULL);
	buf_free(&raw);
	return r;
}

char *param_decode(const char *name, const char *const *pn, const char *const *pv, size_t n)
{
	size_t nl = strlen(name);
	const char *plain = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncasecmp(pn[i], name, nl) != 0)
			continue;
		if (pn[i][nl] == '*' && pn[i][nl + 1] == '\0') {
			char cs[48] = "";
			struct buf raw = BUF_INIT;
			pct_decode(&raw, split_ext(pv[i], cs, sizeof(cs)));
			char *r = text_to_utf8(cs, raw.p ? raw.p : "", raw.len, NULL, NULL);
			buf_free(&raw);
			return r;
		}
		if (pn[i][nl] == '\0' && !plain)
			plain = pv[i];
	}
	char *r = param_segments(name, pn, pv, n);
	if (r)
		return r;
	return plain ? hdr_decode(plain, NULL, NULL) : NULL;
}

/* ---- message ids ---- */

char *msgid_clean(const char *s)
{
	if (!s)
		return NULL;
	const char *lt = strchr(s, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	if (lt && gt && gt > lt + 1)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, " \t<>");
	return n ? xstrndup(s, n) : NULL;
}

char **msgid_list(const char *s)
{
	char **v = NULL;
	size_t n = 0;
	while (s && (s = strchr(s, '<')) != NULL && n < 1000) {
		const char *gt = strchr(s, '>');
		if (!gt)
			break;
		if (gt > s + 1) {
			char *id = xstrndup(s + 1, (size_t)(gt - s - 1));
			v = strv_add(v, id);
			free(id);
			n++;
		}
		s = gt + 1;
	}
	return v;
}

/* ---- addresses ---- */

static char *email_norm(const char *e, size_t n)
{
	while (n > 0 && (*e == ' ' || *e == '<' || *e == '"')) {
		e++;
		n--;
	}
	while (n > 0 && (e[n - 1] == ' ' || e[n - 1] == '>' || e[n - 1] == '"' || e[n - 1] == '.'))
		n--;
	if (n >= 7 && strncasecmp(e, "mailto:", 7) == 0) {
		e += 7;
		n -= 7;
	}
	char *r = xstrndup(e, n);
	char *at = strrchr(r, '@');
	if (at)
		str_lower_ascii(at);
	return r;
}

/* Display name: RFC 2047 decoded, quotes and stray '*' (bold markers
 * from plain-text renderings) removed, spaces squeezed. */
static char *name_norm(const char *s, size_t n)
{
	char *raw = xstrndup(s, n), *dec = hdr_decode(raw, NULL, NULL);
	struct buf o = BUF_INIT;
	for (const char *p = dec; *p; p++) {
		if (*p == '"' || (*p == '\\' && p[1]))
			continue;
		buf_addc(&o, *p);
	}
	free(raw);
	free(dec);
	char *sq = text_squeeze(o.p ? o.p : "");
	buf_free(&o);
	size_t l = strlen(sq), a = 0;
	while (a < l && (sq[a] == '*' || sq[a] == '\''))
		a++;
	while (l > a && (sq[l - 1] == '*' || sq[l - 1] == '\'' || sq[l - 1] == ','))
		l--;
	char *r = l > a ? xstrndup(sq + a, l - a) : NULL;
	free(sq);
	return r;
}

static void addr_push(struct addr **v, size_t *n, char *name, char *email)
{
	if (*n >= MAX_ADDRS || !email || !strchr(email, '@')) {
		free(name);
		free(email);
		return;
	}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n].name = name;
	(*v)[*n].email = email;
	(*n)++;
}

static void imf_mailbox(struct mailimf_mailbox *mb, struct addr **v, size_t *n)
{
	if (!mb || !mb->mb_addr_spec)
		return;
	char *name = mb->mb_display_name ? name_norm(mb->mb_display_name,
						      strlen(mb->mb_display_name)) : NULL;
	addr_push(v, n, name, email_norm(mb->mb_addr_spec, strlen(mb->mb_addr_spec)));
}

static bool imf_parse(const char *s, struct addr **v, size_t *n)
{
	size_t idx = 0, len = strlen(s);
	struct mailimf_address_list *al = NULL;
	if (mailimf_address_list_parse(s, len, &idx, &al) != MAILIMF_NO_ERROR)
		return false;
	bool whole = only_space(s + idx, s + len);
	if (whole) {
		for (clistiter *it = clist_begin(al->ad_list); it; it = clist_next(it)) {
			struct mailimf_address *a = clist_content(it);
			if (a->ad_type == MAILIMF_ADDRESS_MAILBOX) {
				imf_mailbox(a->ad_data.ad_mailbox, v, n);
			} else if (a->ad_data.ad_group && a->ad_data.ad_group->grp_mb_list) {
				clist *l = a->ad_data.ad_group->grp_mb_list->mb_list;
				for (clistiter *j = clist_begin(l); j; j = clist_next(j))
					imf_mailbox(clist_content(j), v, n);
			}
		}
	}
	mailimf_address_list_free(al);
	return whole;
}

/* One piece of a lenient split: "Name <a@b>", "a@b (Name)",
 * "Name [mailto:a@b]", "a@b". */
static void lenient_one(const char *p, size_t n, struct addr **v, size_t *cnt)
{
	const char *lt = NULL, *gt = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!lt && (p[i] == '<' || p[i] == '[')) {
			lt = p + i;
		} else if (lt && !gt && (p[i] == '>' || p[i] == ']')) {
			gt = p + i;
		}
	}
	if (lt && gt && memchr(lt, '@', (size_t)(gt - lt))) {
		char *name = name_norm(p, (size_t)(lt - p));
		addr_push(v, cnt, name, email_norm(lt + 1, (size_t)(gt - lt - 1)));
		return;
	}
	/* The token holding '@' is the address; the rest is the name. */
	const char *at = memchr(p, '@', n);
	if (!at)
		return;
	const char *a = at, *b = at;
	while (a > p && a[-1] != ' ' && a[-1] != '\t' && a[-1] != '<' && a[-1] != '(')
		a--;
	while (b < p + n && *b != ' ' && *b != '\t' && *b != '>' && *b != ')')
		b++;
	struct buf nm = BUF_INIT;
	buf_add(&nm, p, (size_t)(a - p));
	buf_add(&nm, b, (size_t)(p + n - b));
	for (size_t i = 0; i < nm.len; i++)
		if (nm.p[i] == '(' || nm.p[i] == ')' || nm.p[i] == '<' || nm.p[i] == '>')
			nm.p[i] = ' ';
	char *name = name_norm(nm.p, nm.len);
	buf_free(&nm);
	addr_push(v, cnt, name, email_norm(a, (size_t)(b - a)));
}

static void lenient_parse(const char *s, struct addr **v, size_t *n)
{
	const char *start = s;
	bool quoted = false;
	int angle = 0, paren = 0;
	for (const char *p = s;; p++) {
		char c = *p;
		if (c == '\0' || (!quoted && !angle && !paren && (c == ',' || c == ';'))) {
			lenient_one(start, (size_t)(p - start), v, n);
			if (c == '\0')
				break;
			start = p + 1;
			continue;
		}
		if (c == '\\' && p[1]) {
			p++;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (!quoted) {
			angle += c == '<' ? 1 : c == '>' && angle ? -1 : 0;
			paren += c == '(' ? 1 : c == ')' && paren ? -1 : 0;
		}
	}
}

size_t addr_parse_list(const char *s, struct addr **out)
{
	struct addr *v = NULL;
	size_t n = 0;
	*out = NULL;
	if (str_empty(s))
		return 0;
	if (!imf_parse(s, &v, &n) || n == 0) {
		addr_free_array(v, n);
		v = NULL;
		n = 0;
		lenient_parse(s, &v, &n);
	}
	*out = v;
	return n;
}

void addr_free_array(struct addr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].email);
	}
	free(v);
}
