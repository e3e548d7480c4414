/*
 * text_html.c: html_to_text() (text.h).
 *
 * A single forward pass over the bytes, no DOM: tags are recognised, the
 * few that shape text (line breaks, table cells, links, quotes) act on the
 * output, the rest vanish. Linear in the input whatever it holds; an
 * unterminated tag or comment simply ends the text.
 */
#include "text.h"

#include <stdlib.h>
#include <string.h>

struct h2t {
	struct buf out;
	int skip_depth;          /* inside script/style/head/title */
	const char *skip_tag;    /* which one ends the skip */
	int quote;               /* blockquote depth */
	int pre;                 /* inside <pre> */
	bool pending_space;
	int pending_nl;          /* newlines wanted before the next text */
	int cells;               /* cells seen in the current table row */
	char *href;              /* the open <a>'s href, or NULL */
	size_t link_start;       /* where the open <a>'s text starts in out */
};

/* ---- entities ---- */

static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
	{ "nbsp", ' ' }, { "ensp", ' ' }, { "emsp", ' ' }, { "thinsp", ' ' },
	{ "shy", 0 }, { "zwnj", 0 }, { "zwj", 0 }, { "lrm", 0 }, { "rlm", 0 },
	{ "copy", 0xA9 }, { "reg", 0xAE }, { "trade", 0x2122 }, { "deg", 0xB0 },
	{ "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "sbquo", 0x201A },
	{ "ldquo", 0x201C }, { "rdquo", 0x201D }, { "bdquo", 0x201E },
	{ "laquo", 0xAB }, { "raquo", 0xBB }, { "bull", 0x2022 }, { "middot", 0xB7 },
	{ "euro", 0x20AC }, { "pound", 0xA3 }, { "cent", 0xA2 }, { "yen", 0xA5 },
	{ "sect", 0xA7 }, { "para", 0xB6 }, { "times", 0xD7 }, { "divide", 0xF7 },
	{ "plusmn", 0xB1 }, { "frac12", 0xBD }, { "frac14", 0xBC }, { "frac34", 0xBE },
	{ "iexcl", 0xA1 }, { "iquest", 0xBF }, { "ordf", 0xAA }, { "ordm", 0xBA },
	{ "sup1", 0xB9 }, { "sup2", 0xB2 }, { "sup3", 0xB3 }, { "micro", 0xB5 },
	/* Turkish letters */
	{ "Ccedil", 0xC7 }, { "ccedil", 0xE7 }, { "Gbreve", 0x11E }, { "gbreve", 0x11F },
	{ "Idot", 0x130 }, { "imath", 0x131 }, { "inodot", 0x131 }, { "dotlessi", 0x131 },
	{ "Ouml", 0xD6 }, { "ouml", 0xF6 }, { "Scedil", 0x15E }, { "scedil", 0x15F },
	{ "Uuml", 0xDC }, { "uuml", 0xFC }, { "Acirc", 0xC2 }, { "acirc", 0xE2 },
	{ "Icirc", 0xCE }, { "icirc", 0xEE }, { "Ucirc", 0xDB }, { "ucirc", 0xFB },
	/* other Latin-1 letters that turn up in names */
	{ "Agrave", 0xC0 }, { "Aacute", 0xC1 }, { "Atilde", 0xC3 }, { "Auml", 0xC4 },
	{ "Aring", 0xC5 }, { "AElig", 0xC6 }, { "Egrave", 0xC8 }, { "Eacute", 0xC9 },
	{ "Ecirc", 0xCA }, { "Euml", 0xCB }, { "Igrave", 0xCC }, { "Iacute", 0xCD },
	{ "Iuml", 0xCF }, { "Ntilde", 0xD1 }, { "Ograve", 0xD2 }, { "Oacute", 0xD3 },
	{ "Ocirc", 0xD4 }, { "Otilde", 0xD5 }, { "Oslash", 0xD8 }, { "Ugrave", 0xD9 },
	{ "Uacute", 0xDA }, { "szlig", 0xDF }, { "agrave", 0xE0 }, { "aacute", 0xE1 },
	{ "atilde", 0xE3 }, { "auml", 0xE4 }, { "aring", 0xE5 }, { "aelig", 0xE6 },
	{ "egrave", 0xE8 }, { "eacute", 0xE9 }, { "ecirc", 0xEA }, { "euml", 0xEB },
	{ "igrave", 0xEC }, { "iacute", 0xED }, { "iuml", 0xEF }, { "ntilde", 0xF1 },
	{ "ograve", 0xF2 }, { "oacute", 0xF3 }, { "ocirc", 0xF4 }, { "otilde", 0xF5 },
	{ "oslash", 0xF8 }, { "ugrave", 0xF9 }, { "uacute", 0xFA }, { "yuml", 0xFF },
};

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Numeric character reference after "&#"; 0 if none. */
static size_t numeric_entity(const char *p, const char *end, uint32_t *cp)
{
	const char *q = p;
	uint32_t v = 0;
	bool hex = q < end && (*q == 'x' || *q == 'X');
	int digits = 0;
	if (hex)
		q++;
	for (; q < end; q++) {
		int d = hex ? hex_value(*q) : (*q >= '0' && *q <= '9' ? *q - '0' : -1);
		if (d < 0)
			break;
		if (v < 0x110000)
			v = v * (hex ? 16 : 10) + (uint32_t)d;
		digits++;
	}
	if (digits == 0)
		return 0;
	if (q < end && *q == ';')
		q++;
	if (v == 0 || v >= 0x110000 || (v >= 0xD800 && v <= 0xDFFF))
		v = 0xFFFD;
	else if (v >= 0x80 && v <= 0x9F)
		v = 0xFFFD;     /* C1 controls: the HTML spec maps them to 1252, rare */
	*cp = v;
	return (size_t)(q - p);
}

/* Decode the entity at p ('&'); returns the bytes consumed (0: not one). */
static size_t html_entity(const char *p, const char *end, uint32_t *cp)
{
	if (p + 1 >= end)
		return 0;
	if (p[1] == '#') {
		size_t n = numeric_entity(p + 2, end, cp);
		return n ? n + 2 : 0;
	}
	const char *q = p + 1;
	while (q < end && is_alnum(*q) && q - p < 12)
		q++;
	size_t n = (size_t)(q - p - 1);
	if (n == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(entities); i++) {
		if (strlen(entities[i].name) == n && memcmp(entities[i].name, p + 1, n) == 0) {
			*cp = entities[i].cp;
			return n + 1 + (q < end && *q == ';');
		}
	}
	return 0;
}

/* ---- output ---- */

static void out_line_start(struct h2t *h)
{
	for (int i = 0; i < h->quote && i < 20; i++)
		buf_adds(&h->out, "> ");
}

/* Flush pending breaks and spaces before real text. */
static void out_prepare(struct h2t *h)
{
	if (h->pending_nl && h->out.len > 0) {
		while (h->out.len > 0 && h->out.p[h->out.len - 1] == ' ')
			h->out.len--;
		int n = h->pending_nl > 2 ? 2 : h->pending_nl;
		for (int i = 0; i < n; i++)
			buf_addc(&h->out, '\n');
		out_line_start(h);
	} else if (h->out.len == 0 && h->quote) {
		out_line_start(h);
	} else if (h->pending_space && h->out.len > 0) {
		char last = h->out.p[h->out.len - 1];
		if (last != ' ' && last != '\n')
			buf_addc(&h->out, ' ');
	}
	h->pending_nl = 0;
	h->pending_space = false;
}

static void out_text(struct h2t *h, const char *s, size_t n)
{
	out_prepare(h);
	buf_add(&h->out, s, n);
}

static void out_cp(struct h2t *h, uint32_t cp)
{
	if (cp == 0)
		return;
	if (cp == ' ' && !h->pre) {
		h->pending_space = true;
		return;
	}
	out_prepare(h);
	utf8_put(&h->out, cp);
}

static void want_nl(struct h2t *h, int n)
{
	if (h->pending_nl < n)
		h->pending_nl = n;
}

/* ---- tags ---- */

struct tag {
	char name[12];
	bool closing;
	bool selfclose;
	char *href;          /* allocated, for <a> */
};

/* Parse the attribute list up to '>' (already bounded by end); fills href. */
static const char *tag_attrs(const char *p, const char *end, struct tag *t)
{
	while (p < end && *p != '>') {
		while (p < end && (is_space(*p) || *p == '/')) {
			if (*p == '/' && p + 1 < end && p[1] == '>')
				t->selfclose = true;
			p++;
		}
		const char *an = p;
		while (p < end && !is_space(*p) && *p != '=' && *p != '>' && *p != '/')
			p++;
		size_t anl = (size_t)(p - an);
		while (p < end && is_space(*p))
			p++;
		if (p >= end || *p != '=') {
			if (anl == 0 && p < end && *p != '>')
				p++;
			continue;
		}
		p++;
		while (p < end && is_space(*p))
			p++;
		const char *v = p, *ve;
		if (p < end && (*p == '"' || *p == '\'')) {
			char qc = *p++;
			v = p;
			while (p < end && *p != qc)
				p++;
			ve = p;
			if (p < end)
				p++;
		} else {
			while (p < end && !is_space(*p) && *p != '>')
				p++;
			ve = p;
		}
		if (anl == 4 && strncasecmp(an, "href", 4) == 0 && !t->href) {
			struct buf hb = BUF_INIT;
			for (const char *q = v; q < ve; ) {
				uint32_t cp;
				size_t n = *q == '&' ? html_entity(q, ve, &cp) : 0;
				if (n) {
					utf8_put(&hb, cp);
					q += n;
				} else {
					if (!is_space(*q))
						buf_addc(&hb, *q);
					q++;
				}
			}
			t->href = buf_steal(&hb);
		}
	}
	return p;
}

/* Parse a tag at p ('<'); returns the byte after '>' or NULL if p does
 * not start a tag. */
static const char *tag_parse(const char *p, const char *end, struct tag *t)
{
	const char *q = p + 1;
	memset(t, 0, sizeof(*t));
	if (q < end && *q == '/') {
		t->closing = true;
		q++;
	}
	if (q >= end || !((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
		return NULL;
	size_t n = 0;
	while (q < end && is_alnum(*q)) {
		if (n + 1 < sizeof(t->name))
			t->name[n++] = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
		q++;
	}
	t->name[n] = '\0';
	q = tag_attrs(q, end, t);
	return q < end ? q + 1 : NULL;    /* unterminated: not a tag */
}

enum tag_act { ACT_NONE, ACT_BLOCK, ACT_BR, ACT_PARA, ACT_CELL, ACT_ROW, ACT_LINK,
	       ACT_SKIP, ACT_QUOTE, ACT_PRE };

static const struct {
	const char *name;
	enum tag_act act;
} tag_acts[] = {
	{ "br", ACT_BR }, { "p", ACT_PARA }, { "div", ACT_BLOCK }, { "li", ACT_BLOCK },
	{ "tr", ACT_ROW }, { "td", ACT_CELL }, { "th", ACT_CELL }, { "table", ACT_BLOCK },
	{ "h1", ACT_PARA }, { "h2", ACT_PARA }, { "h3", ACT_PARA }, { "h4", ACT_PARA },
	{ "h5", ACT_PARA }, { "h6", ACT_PARA }, { "ul", ACT_BLOCK }, { "ol", ACT_BLOCK },
	{ "dl", ACT_BLOCK }, { "dt", ACT_BLOCK }, { "dd", ACT_BLOCK }, { "hr", ACT_BLOCK },
	{ "section", ACT_BLOCK }, { "article", ACT_BLOCK }, { "header", ACT_BLOCK },
	{ "footer", ACT_BLOCK }, { "center", ACT_BLOCK }, { "caption", ACT_BLOCK },
	{ "tbody", ACT_NONE }, { "address", ACT_BLOCK }, { "form", ACT_BLOCK },
	{ "a", ACT_LINK }, { "script", ACT_SKIP }, { "style", ACT_SKIP },
	{ "head", ACT_SKIP }, { "title", ACT_SKIP }, { "noscript", ACT_SKIP },
	{ "template", ACT_SKIP }, { "blockquote", ACT_QUOTE }, { "pre", ACT_PRE },
};

static enum tag_act tag_act(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(tag_acts); i++)
		if (strcmp(tag_acts[i].name, name) == 0)
			return tag_acts[i].act;
	return ACT_NONE;
}

/* The href adds nothing when the link text already says it. */
static bool href_redundant(const char *href, const char *text, size_t tlen)
{
	const char *h = href;
	if (strncasecmp(h, "mailto:", 7) == 0)
		h += 7;
	size_t hl = strlen(h);
	while (hl > 0 && h[hl - 1] == '/')
		hl--;
	while (tlen > 0 && (text[tlen - 1] == '/' || text[tlen - 1] == ' '))
		tlen--;
	while (tlen > 0 && *text == ' ')
		text++, tlen--;
	if (hl == tlen && strncasecmp(h, text, hl) == 0)
		return true;
	return h[0] == '#' || strncasecmp(h, "javascript:", 11) == 0 || hl == 0;
}

static void link_close(struct h2t *h)
{
	if (!h->href)
		return;
	size_t start = h->link_start <= h->out.len ? h->link_start : h->out.len;
	if (!href_redundant(h->href, h->out.p ? h->out.p + start : "", h->out.len - start)) {
		out_prepare(h);
		buf_printf(&h->out, " <%s>", h->href);
	}
	free(h->href);
	h->href = NULL;
}

static void tag_apply(struct h2t *h, struct tag *t)
{
	enum tag_act a = tag_act(t->name);
	switch (a) {
	case ACT_NONE:
		break;
	case ACT_BR:
		if (h->pending_nl < 2)
			h->pending_nl++;
		break;
	case ACT_BLOCK:
		want_nl(h, 1);
		break;
	case ACT_PARA:
		want_nl(h, 2);
		break;
	case ACT_ROW:
		want_nl(h, 1);
		h->cells = 0;
		break;
	case ACT_CELL:
		if (!t->closing) {
			if (h->cells++ > 0 && h->pending_nl == 0) {
				out_prepare(h);
				buf_adds(&h->out, " | ");
			}
		}
		break;
	case ACT_LINK:
		link_close(h);
		if (!t->closing && t->href) {
			h->href = t->href;
			t->href = NULL;
			out_prepare(h);
			h->link_start = h->out.len;
		}
		break;
	case ACT_QUOTE:
		want_nl(h, 1);
		h->quote += t->closing ? (h->quote > 0 ? -1 : 0) : 1;
		break;
	case ACT_PRE:
		want_nl(h, 1);
		h->pre += t->closing ? (h->pre > 0 ? -1 : 0) : 1;
		break;
	case ACT_SKIP:
		if (!t->closing && !t->selfclose) {
			h->skip_depth = 1;
			h->skip_tag = t->name[0] == 's' ? (t->name[1] == 'c' ? "script" : "style")
				     : t->name[0] == 'h' ? "head" : t->name[0] == 't' ?
				       (t->name[1] == 'i' ? "title" : "template") : "noscript";
		}
		break;
	}
}

/* Skip to the end of a comment, doctype or processing instruction. */
static const char *skip_markup(const char *p, const char *end)
{
	if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
		const char *q = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
		return q ? q + 3 : end;
	}
	const char *q = memchr(p, '>', (size_t)(end - p));
	return q ? q + 1 : end;
}

/* Inside script/style/head: find the matching close tag. */
static const char *skip_element(struct h2t *h, const char *p, const char *end)
{
	size_t tl = strlen(h->skip_tag);
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt)
			return end;
		if (end - lt >= (ptrdiff_t)(tl + 2) && lt[1] == '/' &&
		    strncasecmp(lt + 2, h->skip_tag, tl) == 0) {
			const char *gt = memchr(lt, '>', (size_t)(end - lt));
			h->skip_depth = 0;
			return gt ? gt + 1 : end;
		}
		p = lt + 1;
	}
	return end;
}

static const char *text_run(struct h2t *h, const char *p, const char *end)
{
	char c = *p;
	if (c == '&') {
		uint32_t cp;
		size_t n = html_entity(p, end, &cp);
		if (n) {
			out_cp(h, cp);
			return p + n;
		}
		out_text(h, p, 1);
		return p + 1;
	}
	if (is_space(c)) {
		if (h->pre) {
			if (c == '\n') {
				buf_addc(&h->out, '\n');
				out_line_start(h);
			} else if (c != '\r') {
				out_text(h, p, 1);
			}
		} else {
			h->pending_space = true;
		}
		return p + 1;
	}
	const char *q = p;
	while (q < end && *q != '<' && *q != '&' && !is_space(*q) && *q != '\0')
		q++;
	if (q == p) {       /* a NUL */
		return p + 1;
	}
	out_text(h, p, (size_t)(q - p));
	return q;
}

/* Drop trailing spaces on lines and runs of blank lines. */
static char *tidy(struct buf *in)
{
	struct buf o = BUF_INIT;
	int blank = 0;
	const char *p = in->p ? in->p : "", *end = p + in->len;
	buf_reserve(&o, in->len);
	o.p[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		bool is_blank = true;
		for (size_t i = 0; i < n; i++)
			if (p[i] != ' ' && p[i] != '>')
				is_blank = false;
		if (is_blank) {
			blank++;
		} else {
			if (o.len > 0)
				buf_adds(&o, blank ? "\n\n" : "\n");
			buf_add(&o, p, n);
			blank = 0;
		}
		p = nl ? nl + 1 : end;
	}
	if (o.len > 0)
		buf_addc(&o, '\n');
	return buf_steal(&o);
}

char *html_to_text(const char *html, size_t len)
{
	struct h2t h;
	const char *p = html, *end = html + len;
	memset(&h, 0, sizeof(h));
	buf_reserve(&h.out, len / 2 + 16);
	h.out.p[0] = '\0';
	while (p < end) {
		if (h.skip_depth) {
			p = skip_element(&h, p, end);
			continue;
		}
		if (*p != '<') {
			p = text_run(&h, p, end);
			continue;
		}
		if (p + 1 < end && (p[1] == '!' || p[1] == '?')) {
			p = skip_markup(p, end);
			continue;
		}
		struct tag t;
		const char *q = tag_parse(p, end, &t);
		if (!q && t.name[0]) {
			free(t.href);
			break;          /* a tag cut off at the end: drop the rest */
		}
		if (!q) {
			out_text(&h, p, 1);
			p++;
			continue;
		}
		tag_apply(&h, &t);
		free(t.href);
		p = q;
	}
	link_close(&h);
	char *r = tidy(&h.out);
	buf_free(&h.out);
	return r;
}
