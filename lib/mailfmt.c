/* mailfmt.c: RFC 5322 rendering of mail notices (see mailfmt.h). */
#include "mailfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5322 recommends 78; lines with encoded-words must stay within 76
 * (RFC 2047 section 2), and an encoded-word within 75. */
#define LINE_SOFT 78
#define LINE_EW 76
#define EW_MAX 75
#define QP_LINE 76

char *mailfmt_clean(const char *s)
{
	if (s == NULL)
		return xstrdup("");
	char *c = xstrdup(s);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = ' ';
	return c;
}

/* ---- addresses ---- */

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		(c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool dot_atom_ok(const char *s, size_t n, bool domain)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			continue;
		}
		if (domain ? !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			       (c >= '0' && c <= '9') || c == '-')
			   : !is_atext(c))
			return false;
	}
	return true;
}

bool mailfmt_addr_ok(const char *addr)
{
	if (addr == NULL)
		return false;
	size_t n = strlen(addr);
	const char *at = strchr(addr, '@');
	if (n < 3 || n > 254 || at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	return dot_atom_ok(addr, (size_t)(at - addr), false) &&
		dot_atom_ok(at + 1, strlen(at + 1), true);
}

int mailfmt_parse_mailbox(const char *s, char **name, char **addr, char **err)
{
	*name = NULL;
	*addr = NULL;
	if (s == NULL)
		return seterr(err, "no address");
	char *copy = mailfmt_clean(s);
	char *t = str_trim(copy);
	char *lt = strrchr(t, '<');
	size_t n = strlen(t);
	if (lt != NULL && n > 0 && t[n - 1] == '>') {
		t[n - 1] = '\0';
		*addr = xstrdup(str_trim(lt + 1));
		*lt = '\0';
		char *nm = str_trim(t);
		size_t nn = strlen(nm);
		if (nn >= 2 && nm[0] == '"' && nm[nn - 1] == '"') {
			nm[nn - 1] = '\0';
			nm++;
			char *o = nm;     /* undo quoted-pair escapes */
			for (char *p = nm; *p; p++) {
				if (*p == '\\' && p[1])
					p++;
				*o++ = *p;
			}
			*o = '\0';
		}
		if (*nm)
			*name = xstrdup(nm);
	} else {
		*addr = xstrdup(t);
	}
	free(copy);
	if (!mailfmt_addr_ok(*addr)) {
		seterr(err, "'%s' is not a usable mail address", *addr);
		free(*name);
		free(*addr);
		*name = *addr = NULL;
		return -1;
	}
	return 0;
}

int mailfmt_envelope_from(const struct config *c, char **addr, char **err)
{
	char *name = NULL, *e = NULL;
	if (mailfmt_parse_mailbox(c->smtp.from, &name, addr, &e) < 0) {
		seterr(err, "[smtp] from: %s", e);
		free(e);
		return -1;
	}
	free(name);
	return 0;
}

/* ---- header writing with folding ---- */

struct hdr {
	struct buf *out;
	size_t col;
};

static void hdr_begin(struct hdr *h, struct buf *out, const char *name)
{
	h->out = out;
	buf_printf(out, "%s:", name);
	h->col = strlen(name) + 1;
}

/* Append " tok", folding first if the line would pass `limit`. */
static void hdr_token(struct hdr *h, const char *tok, size_t len, size_t limit)
{
	if (h->col + 1 + len > limit && h->col > 1) {
		buf_adds(h->out, "\r\n");
		h->col = 0;
	}
	buf_addc(h->out, ' ');
	buf_add(h->out, tok, len);
	h->col += 1 + len;
}

static void hdr_end(struct hdr *h)
{
	buf_adds(h->out, "\r\n");
}

/* ---- RFC 2047 encoded-words ---- */

static bool q_plain(unsigned char c)
{
	/* RFC 2047 5(3): the characters safe in a phrase, hence anywhere. */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_cost(unsigned char c)
{
	return q_plain(c) || c == ' ' ? 1 : 3;
}

static size_t utf8_seq_len(const unsigned char *p)
{
	size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 :
		(*p & 0xF8) == 0xF0 ? 4 : 1;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 1;   /* broken sequence: move on byte by byte */
	return n;
}

static void q_encode(struct buf *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		if (q_plain(p[i])) {
			buf_addc(b, (char)p[i]);
		} else if (p[i] == ' ') {
			buf_addc(b, '_');
		} else {
			char e[3] = { '=', hex[p[i] >> 4], hex[p[i] & 15] };
			buf_add(b, e, 3);
		}
	}
}

static void b64_encode(struct buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char e[4] = { tab[v >> 18], tab[(v >> 12) & 63],
			      i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
		buf_add(b, e, 4);
	}
}

/* Encoded length of n bytes in one word. */
static size_t ew_payload(bool q, const unsigned char *p, size_t n)
{
	if (!q)
		return (n + 2) / 3 * 4;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += q_cost(p[i]);
	return len;
}

static void ew_emit(struct hdr *h, bool q, const unsigned char *p, size_t n)
{
	struct buf w = BUF_INIT;
	buf_adds(&w, q ? "=?UTF-8?Q?" : "=?UTF-8?B?");
	if (q)
		q_encode(&w, p, n);
	else
		b64_encode(&w, p, n);
	buf_adds(&w, "?=");
	hdr_token(h, w.p, w.len, LINE_EW);
	buf_free(&w);
}

/* The whole text as encoded-words, cut only between UTF-8 sequences.
 * The first word shares the header name's line when there is room. */
static void put_encoded_words(struct hdr *h, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t len = strlen(text);
	bool q = ew_payload(true, p, len) <= ew_payload(false, p, len);
	const size_t frame = 12;     /* "=?UTF-8?Q?" + "?=" */
	bool first = true;
	size_t start = 0, end = 0;
	while (end < len) {
		size_t room = EW_MAX;
		if (first && LINE_EW > h->col + 1 + frame + 12 && LINE_EW - h->col - 1 < EW_MAX)
			room = LINE_EW - h->col - 1;
		size_t step = utf8_seq_len(p + end);
		if (end + step > len)
			step = len - end;
		if (end > start && frame + ew_payload(q, p + start, end - start + step) > room) {
			ew_emit(h, q, p + start, end - start);
			first = false;
			start = end;
			continue;
		}
		end += step;
	}
	if (end > start || len == 0)
		ew_emit(h, q, p + start, end - start);
}

/* Plain ASCII is written as is, folded at spaces; anything else, or a
 * word too long to fold, or something that looks like an encoded-word,
 * is encoded. */
static bool plain_ok(const char *s)
{
	size_t word = 0;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
			return false;
		word = *p == ' ' ? 0 : word + 1;
		if (word > LINE_SOFT - 12)
			return false;
	}
	return strstr(s, "=?") == NULL;
}

static void put_plain_words(struct hdr *h, const char *text)
{
	const char *p = text;
	for (;;) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);
		hdr_token(h, p, n, LINE_SOFT);
		if (sp == NULL)
			break;
		p = sp + 1;
	}
}

void mailfmt_header_text(struct buf *out, const char *name, const char *value)
{
	char *copy = mailfmt_clean(value);
	char *v = str_trim(copy);
	struct hdr h;
	hdr_begin(&h, out, name);
	if (plain_ok(v))
		put_plain_words(&h, v);
	else
		put_encoded_words(&h, v);
	hdr_end(&h);
	free(copy);
}

/* "Name <addr>" with the name as atoms, a quoted string or encoded-words. */
static void header_mailbox(struct buf *out, const char *hname, const char *name, const char *addr)
{
	struct hdr h;
	hdr_begin(&h, out, hname);
	if (name != NULL) {
		bool ascii = true, atoms = true;
		for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
			ascii &= *p >= 0x20 && *p < 0x7F;
			atoms &= *p == ' ' || is_atext(*p);
		}
		if (ascii && atoms && plain_ok(name)) {
			put_plain_words(&h, name);
		} else if (ascii && plain_ok(name)) {
			struct buf q = BUF_INIT;
			buf_addc(&q, '"');
			for (const char *p = name; *p; p++) {
				if (*p == '"' || *p == '\\')
					buf_addc(&q, '\\');
				buf_addc(&q, *p);
			}
			buf_addc(&q, '"');
			hdr_token(&h, q.p, q.len, LINE_SOFT);
			buf_free(&q);
		} else {
			put_encoded_words(&h, name);
		}
	}
	char *a = xasprintf("<%s>", addr);
	hdr_token(&h, a, strlen(a), LINE_SOFT);
	free(a);
	hdr_end(&h);
}

/* ---- dates, ids ---- */

void mailfmt_date(struct buf *out, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	gmtime_r(&t, &tm);
	buf_printf(out, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
		   months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Keep what a msg-id's dot-atoms may hold (plus the one '@'). */
static char *msgid_clean(const char *s)
{
	char *c = xstrdup(s ? s : "");
	char *o = c;
	for (const char *p = c; *p; p++)
		if (is_atext((unsigned char)*p) || *p == '.' || *p == '@')
			*o++ = *p;
	*o = '\0';
	return c;
}

static char *msgid_domain(const struct config *c)
{
	if (!str_empty(c->smtp.message_id_domain))
		return msgid_clean(c->smtp.message_id_domain);
	char *addr = NULL;
	if (mailfmt_envelope_from(c, &addr, NULL) == 0) {
		char *d = xstrdup(strchr(addr, '@') + 1);
		free(addr);
		return d;
	}
	return xstrdup("eimzad.invalid");
}

/* "<local@domain>": the notice's id, or a made-up one if it has none. */
static char *message_id(const struct config *c, const struct notice *n)
{
	char *local = msgid_clean(n->message_id && *n->message_id ? n->message_id :
				  n->id ? n->id : "");
	char *id;
	if (strchr(local, '@') && local[0] != '@' && str_endswith(local, "@") == false) {
		id = xasprintf("<%s>", local);
	} else {
		char *dom = msgid_domain(c);
		char *at = strchr(local, '@');
		if (at)
			*at = '\0';
		if (*local == '\0') {
			free(local);
			local = xasprintf("eimzad.%lld.%lld", (long long)time(NULL), (long long)mono_ms());
		}
		id = xasprintf("<%s@%s>", local, dom);
		free(dom);
	}
	free(local);
	return id;
}

static void header_line(struct buf *out, const char *name, const char *value)
{
	char *v = mailfmt_clean(value);
	buf_printf(out, "%s: %s\r\n", name, v);
	free(v);
}

/* References: space-separated msg-ids, folded between them. */
static void header_references(struct buf *out, const char *refs)
{
	char *v = mailfmt_clean(refs);
	struct hdr h;
	hdr_begin(&h, out, "References");
	char *save = NULL;
	for (char *t = strtok_r(v, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *id = msgid_clean(t);
		if (*id) {
			char *w = xasprintf("<%s>", id);
			hdr_token(&h, w, strlen(w), LINE_SOFT);
			free(w);
		}
		free(id);
	}
	hdr_end(&h);
	free(v);
}

/* ---- body ---- */

static void qp_line(struct buf *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		char tok[3];
		size_t tl = 1;
		bool last = i + 1 == n;
		if ((c == ' ' || c == '\t') && !last) {
			tok[0] = (char)c;
		} else if (c > 32 && c < 127 && c != '=') {
			tok[0] = (char)c;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		}
		/* Room for the token and, unless the line ends here, a soft
		 * break's '='. */
		if (col + tl + (last ? 0 : 1) > QP_LINE) {
			buf_adds(out, "=\r\n");
			col = 0;
		}
		buf_add(out, tok, tl);
		col += tl;
	}
	buf_adds(out, "\r\n");
}

void mailfmt_qp(struct buf *out, const char *text)
{
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	size_t len = strlen((const char *)p);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '\n' && p[i] != '\r')
			continue;
		if (i == len && start == len && len > 0)
			break;   /* text ended with a line break */
		qp_line(out, p + start, i - start);
		if (i < len && p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			i++;
		start = i + 1;
	}
}

/* ---- the message ---- */

static int render_headers(const struct config *c, const struct notice *n, time_t now,
			  struct buf *out, char **err)
{
	char *fname = NULL, *faddr = NULL, *e = NULL;
	if (!mailfmt_addr_ok(n->to))
		return seterr(err, "recipient '%s' is not a usable mail address",
			      n->to ? n->to : "(none)");
	if (mailfmt_parse_mailbox(c->smtp.from, &fname, &faddr, &e) < 0) {
		seterr(err, "[smtp] from: %s", e);
		free(e);
		return -1;
	}
	buf_adds(out, "Date: ");
	mailfmt_date(out, n->created ? n->created : now);
	buf_adds(out, "\r\n");
	header_mailbox(out, "From", fname, faddr);
	free(fname);
	free(faddr);
	if (!str_empty(c->smtp.reply_to) &&
	    mailfmt_parse_mailbox(c->smtp.reply_to, &fname, &faddr, NULL) == 0) {
		header_mailbox(out, "Reply-To", fname, faddr);
		free(fname);
		free(faddr);
	}
	header_mailbox(out, "To", NULL, n->to);
	mailfmt_header_text(out, "Subject", n->subject ? n->subject : "");
	char *mid = message_id(c, n);
	header_line(out, "Message-ID", mid);
	free(mid);
	if (!str_empty(n->in_reply_to)) {
		char *irt = msgid_clean(n->in_reply_to);
		char *v = xasprintf("<%s>", irt);
		header_line(out, "In-Reply-To", v);
		free(v);
		free(irt);
	}
	if (!str_empty(n->references))
		header_references(out, n->references);
	header_line(out, "Auto-Submitted", "auto-generated");
	header_line(out, "X-Auto-Response-Suppress", "All");
	if (n->id)
		header_line(out, "X-Eimza-Notice", n->id);
	header_line(out, "MIME-Version", "1.0");
	return 0;
}

static void text_part_headers(struct buf *out, const char *subtype)
{
	buf_printf(out, "Content-Type: text/%s; charset=UTF-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n", subtype);
}

int mailfmt_render(const struct config *c, const struct notice *n, time_t now,
		   struct buf *out, char **err)
{
	if (render_headers(c, n, now, out, err) < 0)
		return -1;
	if (str_empty(n->body_html)) {
		text_part_headers(out, "plain");
		buf_adds(out, "\r\n");
		mailfmt_qp(out, n->body);
		return 0;
	}
	/* "=_" never occurs in quoted-printable output, so this boundary
	 * cannot collide with the parts' content. */
	char *id = msgid_clean(n->id ? n->id : "x");
	char *boundary = xasprintf("=_eimza_%s", id);
	free(id);
	buf_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", boundary);
	/* The CRLF before a delimiter belongs to the delimiter (RFC 2046
	 * 5.1.1), hence the blank line after each part's last line break. */
	buf_printf(out, "--%s\r\n", boundary);
	text_part_headers(out, "plain");
	buf_adds(out, "\r\n");
	mailfmt_qp(out, n->body);
	buf_printf(out, "\r\n--%s\r\n", boundary);
	text_part_headers(out, "html");
	buf_adds(out, "\r\n");
	mailfmt_qp(out, n->body_html);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	free(boundary);
	return 0;
}
