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
 */
#include "message_p.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCAN_MAX_BOUNDARY 200     /* RFC 2046 says 70 */
#define SCAN_CT_MAX 4096          /* Content-Type bytes looked at */

struct level {
	char bnd[SCAN_MAX_BOUNDARY + 1];  /* empty for a message/rfc822 level */
	size_t blen;
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

/* A header block ended: open the level its Content-Type asks for.
 * Returns true if the next lines are again a header block (the headers
 * of an embedded message). */
static bool block_end(struct scan *s, int *err)
{
	s->ct[s->ctlen] = '\0';
	bool multi = ct_is(s->ct, "multipart/");
	bool msg = ct_is(s->ct, "message/rfc822") || ct_is(s->ct, "message/global");
	s->ctlen = 0;
	s->in_ct = false;
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

/* One header line (without its line end). */
static void header_line(struct scan *s, const char *p, size_t n)
{
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
		 bool *lost_boundary, char **why)
{
	struct scan s;
	const char *p = raw, *end = raw + len;
	bool in_headers = true;
	int err = 0;

	/* no memset: the Content-Type buffer is written before it is read */
	s.depth = 0;
	s.ctlen = 0;
	s.in_ct = false;
	s.root_multi = s.root_seen = false;
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
				in_headers = block_end(&s, &err);
			else
				header_line(&s, p, n);
			if (n != 0 && !in_headers && !err) {
				/* a non-header line ended the block: read it as body */
				continue;
			}
		} else if (n >= 2 && p[0] == '-' && p[1] == '-') {
			in_headers = boundary_line(&s, p, n);
		}
		p = next;
	}
	if (in_headers && !err)
		block_end(&s, &err);
	free(s.lv);
	*lost_boundary = s.root_multi && !s.root_seen;
	if (err) {
		*why = xasprintf("MIME nesting deeper than %d levels", s.max_depth);
		return -1;
	}
	if (s.parts > s.max_parts) {
		*why = xasprintf("more than %zu MIME parts", s.max_parts);
		return -1;
	}
	return 0;
}
