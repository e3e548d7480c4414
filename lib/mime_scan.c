/*
 * mime_scan.c: a cheap look at a message's MIME shape before libetpan
 * parses it (message_p.h).
 *
 * libetpan's mailmime_parse() recurses once per nesting level and rescans
 * the rest of the message at each level, so 5,000 nested multiparts take
 * seconds and a few more levels exhaust the stack. This scan follows the
 * boundaries line by line, linear in the input and with a bounded stack,
 * and counts nesting depth and parts, so that a hostile message is
 * refused before libetpan sees it.
 *
 * It does not have to agree with libetpan in every detail: each level
 * libetpan enters starts at a part header naming a multipart or message
 * type, after its parent's boundary, and this scan sees the same headers.
 *
 * On the way it notes the stretches of binary attachments' bodies that
 * libetpan need not see (struct mime_cut): most of libetpan's time on
 * ordinary mail goes on base64 PDFs, which it scans byte by byte for
 * boundaries once per nesting level. A stretch is cut only if it consists
 * of whole, non-empty lines of base64 characters alone, all with the same
 * line end, and lies strictly inside a body, with such a line kept after
 * it. Those bytes hold nothing any of libetpan's parsers stops at: no
 * "\n-" for its boundary search, no ':', blank line or leading space for
 * a header parse that ran on, no "?=" for its search for the end of an
 * encoded word (which does run on past the header block). Taking them out
 * changes no decision libetpan makes, only the length of what holds them.
 * mime.c checks libetpan's tree of the cut copy before trusting it: every
 * cut must lie in a part it never reads.
 */
#include "message_p.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCAN_MAX_BOUNDARY 200     /* RFC 2046 says 70 */
#define SCAN_CT_MAX 4096          /* Content-Type bytes looked at */
/* Shorter stretches are not worth a cut (a differential test may lower it). */
#ifndef SCAN_CUT_MIN_RUN
#define SCAN_CUT_MIN_RUN 256
#endif

struct level {
	char bnd[SCAN_MAX_BOUNDARY + 1];  /* empty for a message/rfc822 level */
	size_t blen;
};

/* The body of a leaf part whose lines may be cut: the last base64 line
 * seen is held back (pend) until the next line shows that it is not the
 * last one of the stretch. */
struct cutter {
	bool on;                  /* inside such a body */
	bool first;               /* the next line is the body's first */
	bool crlf;                /* the line end of the lines held */
	size_t run_off, run_end;  /* the stretch being built, [off, end) */
	size_t pend_off, pend_end;/* the line held back; empty if equal */
	struct mime_cut *v;
	size_t n, cap;
	size_t bytes;
};

struct scan {
	struct level *lv;
	int depth;
	int max_depth;
	size_t parts;
	size_t max_parts;
	bool root_multi;          /* the message itself is a multipart */
	bool root_seen;           /* and its boundary turned up */
	char ct[SCAN_CT_MAX + 1];
	size_t ctlen;
	bool in_ct;
	bool csv;                 /* "csv" somewhere in this header block */
	struct cutter cut;
};

/* The boundary parameter of a Content-Type value, lowercase-insensitive
 * name, quoted or token value. */
static size_t ct_boundary(const char *ct, char *out)
{
	const char *p = ct;
	while ((p = strcasestr(p, "boundary")) != NULL) {
		const char *q = p + 8;
		p = q;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=')
			continue;
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		size_t n = 0;
		if (*q == '"') {
			q++;
			while (q[n] && q[n] != '"' && n < SCAN_MAX_BOUNDARY)
				n++;
		} else {
			while (q[n] && q[n] != ';' && q[n] != ' ' && q[n] != '\t' &&
			       n < SCAN_MAX_BOUNDARY)
				n++;
		}
		memcpy(out, q, n);
		out[n] = '\0';
		return n;
	}
	return 0;
}

static bool ct_is(const char *ct, const char *type)
{
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return strncasecmp(ct, type, strlen(type)) == 0;
}

/* Types whose parts mime.c never decodes, whatever their name: binary
 * documents, archives and media. Not octet-stream or vnd.ms-excel (the
 * labels a CSV file gets from Windows clients), nor text, message or
 * multipart types. A row ending in '/' or '.' is a prefix. */
static const char *const binary_types[] = {
	"application/pdf",
	"application/zip",
	"application/x-zip-compressed",
	"application/gzip",
	"application/x-7z-compressed",
	"application/vnd.rar",
	"application/x-rar-compressed",
	"application/msword",
	"application/vnd.ms-powerpoint",
	"application/vnd.openxmlformats-officedocument.",
	"application/vnd.oasis.opendocument.",
	"image/",
	"audio/",
	"video/",
};

static bool ct_binary(const char *ct)
{
	while (*ct == ' ' || *ct == '\t')
		ct++;
	for (size_t i = 0; i < ARRAY_LEN(binary_types); i++) {
		const char *t = binary_types[i];
		size_t n = strlen(t);
		if (strncasecmp(ct, t, n) != 0)
			continue;
		char next = ct[n];
		if (t[n - 1] == '/' || t[n - 1] == '.' || next == '\0' || next == ';' ||
		    next == ' ' || next == '\t' || next == '(')
			return true;
	}
	return false;
}

/* Does p[0..n) contain "csv" in any case? */
static bool has_csv(const char *p, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i++)
		if ((p[i] | 0x20) == 'c' && (p[i + 1] | 0x20) == 's' && (p[i + 2] | 0x20) == 'v')
			return true;
	return false;
}

/* May the body that follows this leaf's header block be cut? Only inside
 * multiparts (an embedded message's bytes are read whole), only for a
 * binary type, and not if the headers mention csv anywhere: mime.c reads
 * any file named *.csv, and a filename may be encoded past recognition. */
static bool cuttable(const struct scan *s, bool blank)
{
	if (!blank || s->depth < 1 || s->csv || !ct_binary(s->ct))
		return false;
	for (int k = 0; k < s->depth; k++)
		if (s->lv[k].blen == 0)
			return false;
	return true;
}

/* A header block ended (blank: with an empty line): open the level its
 * Content-Type asks for. Returns true if the next lines are again a
 * header block (the headers of an embedded message). */
static bool block_end(struct scan *s, bool blank, int *err)
{
	s->ct[s->ctlen] = '\0';
	bool multi = ct_is(s->ct, "multipart/");
	bool msg = ct_is(s->ct, "message/rfc822") || ct_is(s->ct, "message/global");
	if (!multi && !msg && cuttable(s, blank)) {
		s->cut.on = true;
		s->cut.first = true;
	}
	s->ctlen = 0;
	s->in_ct = false;
	s->csv = false;
	if (!multi && !msg)
		return false;
	if (s->depth + 1 > s->max_depth) {
		*err = 1;
		return false;
	}
	if (s->depth == 0 && s->parts == 1)
		s->root_multi = multi;
	struct level *l = &s->lv[s->depth++];
	l->blen = multi ? ct_boundary(s->ct, l->bnd) : 0;
	return msg;
}

/* ---- cuts ---- */

static void cut_close(struct cutter *c)
{
	size_t n = c->run_end - c->run_off;
	if (n >= SCAN_CUT_MIN_RUN) {
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 8;
			c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
		}
		c->v[c->n].off = c->run_off;
		c->v[c->n++].len = n;
		c->bytes += n;
	}
	c->run_off = c->run_end = c->pend_off = c->pend_end = 0;
}

static bool b64_char(unsigned char c)
{
	unsigned char l = c | 0x20;
	return (l >= 'a' && l <= 'z') || (c >= '/' && c <= '9') || c == '+' || c == '=';
}

/* Sixteen bytes at a time (gcc and clang vector extensions: SSE2 code on
 * amd64), as this runs over every byte libetpan is spared. Signed bytes:
 * those from 0x80 up are negative and fail every range. */
typedef signed char b64_vec __attribute__((vector_size(16)));

static bool b64_vec_ok(const char *p)
{
	b64_vec x, y;
	uint64_t half[2];
	memcpy(&x, p, sizeof(x));
	y = x | 0x20;
	b64_vec ok = ((y >= 'a') & (y <= 'z')) | ((x >= '/') & (x <= '9')) | (x == '+') |
		     (x == '=');
	memcpy(half, &ok, sizeof(half));
	return (half[0] & half[1]) == UINT64_MAX;
}

/* A non-empty line of base64 characters ([A-Za-z0-9+/=]) only. */
static bool b64_line(const char *p, size_t n)
{
	size_t i = 0;
	if (n < sizeof(b64_vec)) {
		for (; i < n; i++)
			if (!b64_char((unsigned char)p[i]))
				return false;
		return n > 0;
	}
	for (; i + sizeof(b64_vec) <= n; i += sizeof(b64_vec))
		if (!b64_vec_ok(p + i))
			return false;
	/* the last sixteen, overlapping */
	return i == n || b64_vec_ok(p + n - sizeof(b64_vec));
}

/* One body line [off, next) of a cuttable body, n bytes before its line
 * end; nl: it has a line end, crlf: "\r\n". A line starting with '-' (a
 * boundary or not) ends the cuttable body. Any other line that is not a
 * base64 line (or ends differently) ends the stretch: the line held back
 * stays. */
static void cut_line(struct cutter *c, const char *raw, size_t off, size_t next, size_t n,
		     bool nl, bool crlf)
{
	if (!nl || (n > 0 && raw[off] == '-')) {
		cut_close(c);
		c->on = false;
		return;
	}
	if (c->first) {
		c->first = false;     /* the first line stays */
		return;
	}
	if (!b64_line(raw + off, n)) {
		cut_close(c);
		return;
	}
	if (c->pend_end > c->pend_off && crlf == c->crlf) {
		if (c->run_end == c->run_off)
			c->run_off = c->pend_off;
		c->run_end = c->pend_end;
	} else {
		cut_close(c);
	}
	c->pend_off = off;
	c->pend_end = next;
	c->crlf = crlf;
}

/* One header line (without its line end). */
static void header_line(struct scan *s, const char *p, size_t n)
{
	if (s->depth > 0 && !s->csv)
		s->csv = has_csv(p, n);
	if (p[0] == ' ' || p[0] == '\t') {
		if (!s->in_ct)
			return;
	} else {
		s->in_ct = n >= 13 && strncasecmp(p, "content-type:", 13) == 0;
		if (!s->in_ct)
			return;
		p += 13;
		n -= 13;
		s->ctlen = 0;
	}
	size_t room = SCAN_CT_MAX - s->ctlen;
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++)
		s->ct[s->ctlen++] = p[i] ? p[i] : ' ';
}

/* A body line starting with "--": a boundary of some open level? */
static bool boundary_line(struct scan *s, const char *p, size_t n)
{
	while (n > 2 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	for (int k = s->depth - 1; k >= 0; k--) {
		struct level *l = &s->lv[k];
		if (l->blen == 0 || n < l->blen + 2 || memcmp(p + 2, l->bnd, l->blen) != 0)
			continue;
		s->root_seen |= k == 0;
		if (n == l->blen + 2) {
			s->depth = k + 1;
			s->parts++;
			return true;        /* a new part: its headers follow */
		}
		if (n == l->blen + 4 && p[n - 2] == '-' && p[n - 1] == '-') {
			s->depth = k;
			return false;
		}
	}
	return false;
}

int mime_prescan(const char *raw, size_t len, int max_depth, size_t max_parts,
		 struct mime_shape *out, char **why)
{
	struct scan s;
	const char *p = raw, *end = raw + len;
	bool in_headers = true;
	int err = 0;

	/* no memset: the Content-Type buffer is written before it is read */
	s.depth = 0;
	s.ctlen = 0;
	s.in_ct = s.csv = false;
	s.root_multi = s.root_seen = false;
	memset(&s.cut, 0, sizeof(s.cut));
	s.max_depth = max_depth > 0 ? max_depth : 20;
	s.max_parts = max_parts ? max_parts : 1000;
	s.lv = xreallocarray(NULL, (size_t)s.max_depth + 1, sizeof(*s.lv));
	s.parts = 1;
	while (p < end && !err && s.parts <= s.max_parts) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (in_headers) {
			if (n == 0 || (p[0] != ' ' && p[0] != '\t' && !memchr(p, ':', n)))
				in_headers = block_end(&s, n == 0, &err);
			else
				header_line(&s, p, n);
			if (n != 0 && !in_headers && !err) {
				/* a non-header line ended the block: read it as body */
				continue;
			}
		} else {
			if (s.cut.on)
				cut_line(&s.cut, raw, (size_t)(p - raw), (size_t)(next - raw), n,
					 nl != NULL, nl && (size_t)(nl - p) > n);
			if (n >= 2 && p[0] == '-' && p[1] == '-')
				in_headers = boundary_line(&s, p, n);
		}
		p = next;
	}
	if (in_headers && !err)
		block_end(&s, false, &err);
	cut_close(&s.cut);
	free(s.lv);
	memset(out, 0, sizeof(*out));
	if (err || s.parts > s.max_parts) {
		free(s.cut.v);
		if (err)
			*why = xasprintf("MIME nesting deeper than %d levels", s.max_depth);
		else
			*why = xasprintf("more than %zu MIME parts", s.max_parts);
		return -1;
	}
	out->lost_boundary = s.root_multi && !s.root_seen;
	out->cuts = s.cut.v;
	out->ncuts = s.cut.n;
	out->cut_bytes = s.cut.bytes;
	return 0;
}

void mime_shape_free(struct mime_shape *sh)
{
	free(sh->cuts);
	memset(sh, 0, sizeof(*sh));
}

char *mime_compact(const char *raw, size_t len, struct mime_shape *sh, size_t *outlen)
{
	char *copy = xmalloc(len - sh->cut_bytes + 1);
	size_t from = 0, to = 0;
	for (size_t i = 0; i < sh->ncuts; i++) {
		struct mime_cut *c = &sh->cuts[i];
		memcpy(copy + to, raw + from, c->off - from);
		to += c->off - from;
		from = c->off + c->len;
		c->off = to;
	}
	memcpy(copy + to, raw + from, len - from);
	to += len - from;
	copy[to] = '\0';
	*outlen = to;
	return copy;
}
