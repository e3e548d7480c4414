/*
 * mime.c: message_parse() and friends (message.h).
 *
 * The top-level headers are scanned by mime_hdr.c; the MIME tree comes
 * from libetpan's mailmime_parse(), after mime_scan.c has checked that
 * its shape is within the limits; text parts are transfer-decoded with
 * mailmime_part_parse() and converted to UTF-8 with text_to_utf8().
 * Parts nobody reads (images, PDFs, octet-streams) are never decoded.
 *
 * libetpan is not even shown the bodies of large binary attachments:
 * mime_scan.c marks stretches of them that can go without changing the
 * tree libetpan makes, mime_compact() copies the message without them,
 * and leaf() adds their lengths back to the parts' sizes. A message with
 * little to cut is parsed as it is, uncopied.
 */
#include "message_p.h"

#include <libetpan/libetpan.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One parse: the message being built and what the walk needs. */
struct pctx {
	struct message *m;
	const struct mime_limits *lim;
	int fwd_depth;            /* forwards unwrapped above this message */
	int depth_left;           /* MIME nesting still allowed */
	struct buf body;
	bool body_plain;          /* a text/plain piece went into body */
	bool body_html;           /* an html piece went into body */
	bool in_report;           /* inside multipart/report */
	bool have_fwd;            /* a message/rfc822 was taken as the forward */
	int cur_depth;            /* nesting of the part being read */
	const char *raw;          /* the bytes libetpan parsed */
	const char *raw_end;      /* and their end */
	const struct mime_cut *cuts; /* cut out of raw (offsets into it) */
	size_t ncuts;
};

/* Compact a message only when this many bytes can go: below it the copy
 * costs about what it saves. A differential test may lower it. */
#ifndef MIME_CUT_MIN
#define MIME_CUT_MIN 4096
#endif

/* ---- the message object ---- */

struct message *msg_new(void)
{
	struct message *m = xcalloc(1, sizeof(*m));
	m->subject = xstrdup("");
	m->body = xstrdup("");
	return m;
}

static void strv_push_owned(char ***v, char *s)
{
	size_t n = strv_len(*v);
	*v = xreallocarray(*v, n + 2, sizeof(**v));
	(*v)[n] = s;
	(*v)[n + 1] = NULL;
}

void msg_problem(struct message *m, const char *fmt, ...)
{
	va_list ap;
	if (strv_len(m->problems) >= 100)
		return;          /* enough said */
	va_start(ap, fmt);
	strv_push_owned(&m->problems, xvasprintf(fmt, ap));
	va_end(ap);
}

void msg_unreadable(struct message *m, const char *fmt, ...)
{
	va_list ap;
	m->unreadable = true;
	if (m->unreadable_reason)
		return;
	va_start(ap, fmt);
	m->unreadable_reason = xvasprintf(fmt, ap);
	va_end(ap);
}

void msg_add_header(struct message *m, const char *name, const char *value)
{
	m->headers = xreallocarray(m->headers, m->nheaders + 1, sizeof(*m->headers));
	m->headers[m->nheaders].name = xstrdup(name);
	m->headers[m->nheaders].value = xstrdup(value ? value : "");
	m->nheaders++;
}

static void addr_clear(struct addr *a)
{
	free(a->name);
	free(a->email);
}

static void parts_free(struct part *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].content_type);
		free(p[i].filename);
		free(p[i].charset);
		free(p[i].text);
	}
	free(p);
}

void message_free(struct message *m)
{
	while (m) {
		struct message *next = m->forwarded;
		for (size_t i = 0; i < m->nheaders; i++) {
			free(m->headers[i].name);
			free(m->headers[i].value);
		}
		free(m->headers);
		addr_clear(&m->from);
		addr_free_array(m->to, m->nto);
		addr_free_array(m->cc, m->ncc);
		addr_clear(&m->reply_to);
		addr_clear(&m->sender);
		free(m->subject);
		free(m->message_id);
		free(m->in_reply_to);
		strv_free(m->references);
		free(m->date_raw);
		free(m->body);
		free(m->html);
		parts_free(m->parts, m->nparts);
		free(m->fwd_client);
		strv_free(m->problems);
		free(m->unreadable_reason);
		free(m);
		m = next;
	}
}

const char *message_header(const struct message *m, const char *name)
{
	for (size_t i = 0; m && i < m->nheaders; i++)
		if (strcasecmp(m->headers[i].name, name) == 0)
			return m->headers[i].value;
	return NULL;
}

size_t message_headers(const struct message *m, const char *name, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; m && i < m->nheaders; i++)
		if (strcasecmp(m->headers[i].name, name) == 0) {
			if (n < max && out)
				out[n] = m->headers[i].value;
			n++;
		}
	return n;
}

/* ---- envelope ---- */

static const char *raw_get(const struct raw_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	return NULL;
}

static void first_addr(const struct raw_headers *h, const char *name, struct addr *out)
{
	struct addr *v;
	size_t n = addr_parse_list(raw_get(h, name), &v);
	if (n > 0) {
		*out = v[0];
		v[0].name = v[0].email = NULL;
	}
	addr_free_array(v, n);
}

/* Addresses kept per field, over all its headers. */
#define MAX_FIELD_ADDRS 1000

/* Every header of that name contributes its addresses (To: may repeat). */
static void all_addrs(const struct raw_headers *h, const char *name, struct addr **out,
		      size_t *nout)
{
	for (size_t i = 0; i < h->n && *nout < MAX_FIELD_ADDRS; i++) {
		if (strcasecmp(h->v[i].name, name) != 0)
			continue;
		struct addr *v;
		size_t n = addr_parse_list(h->v[i].value, &v);
		if (n == 0) {
			free(v);
			continue;
		}
		*out = xreallocarray(*out, *nout + n, sizeof(**out));
		memcpy(*out + *nout, v, n * sizeof(*v));
		*nout += n;
		free(v);
	}
}

void msg_fill_envelope(struct message *m, const struct raw_headers *h)
{
	first_addr(h, "From", &m->from);
	all_addrs(h, "To", &m->to, &m->nto);
	all_addrs(h, "Cc", &m->cc, &m->ncc);
	first_addr(h, "Reply-To", &m->reply_to);
	first_addr(h, "Sender", &m->sender);
	const char *s = raw_get(h, "Subject");
	if (s) {
		free(m->subject);
		m->subject = hdr_decode(s, NULL, NULL);
	}
	m->message_id = msgid_clean(raw_get(h, "Message-ID"));
	m->in_reply_to = msgid_clean(raw_get(h, "In-Reply-To"));
	m->references = msgid_list(raw_get(h, "References"));
	s = raw_get(h, "Date");
	if (s) {
		m->date_raw = xstrdup(s);
		m->date = mail_date_parse(s);
	}
}

/* Decode the raw headers into m->headers, noting charset guesses. */
static void headers_decode(struct message *m, const struct raw_headers *h)
{
	m->headers = xcalloc(h->n ? h->n : 1, sizeof(*m->headers));
	for (size_t i = 0; i < h->n; i++) {
		bool fb = false;
		char *bad = NULL;
		m->headers[i].name = xstrdup(h->v[i].name);
		m->headers[i].value = hdr_decode(h->v[i].value, &fb, &bad);
		if (fb)
			msg_problem(m, "header %s: %s, read as %s", h->v[i].name,
				    bad ? "unknown charset" : "8-bit text without a charset",
				    "UTF-8 if valid, else windows-1254");
		free(bad);
	}
	m->nheaders = h->n;
}

/* ---- parts ---- */

static char *ctype_str(const struct mailmime_content *c)
{
	if (!c || !c->ct_type)
		return xstrdup("text/plain");
	const char *type = "application";
	if (c->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		struct mailmime_discrete_type *d = c->ct_type->tp_data.tp_discrete_type;
		static const char *const names[] = { "application", "text", "image", "audio",
						     "video", "application" };
		if (d->dt_type == MAILMIME_DISCRETE_TYPE_EXTENSION && d->dt_extension)
			type = d->dt_extension;
		else if (d->dt_type >= 0 && d->dt_type < (int)ARRAY_LEN(names))
			type = names[d->dt_type];
	} else {
		struct mailmime_composite_type *t = c->ct_type->tp_data.tp_composite_type;
		if (t->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE)
			type = "message";
		else if (t->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART)
			type = "multipart";
		else if (t->ct_token)
			type = t->ct_token;
	}
	char *s = xasprintf("%s/%s", type, c->ct_subtype ? c->ct_subtype : "octet-stream");
	return str_lower_ascii(s);
}

/* Parameters as parallel arrays for param_decode(). */
struct params {
	const char *names[64];
	const char *values[64];
	size_t n;
};

static void params_add(struct params *p, const struct mailmime_parameter *mp)
{
	if (p->n < ARRAY_LEN(p->names) && mp && mp->pa_name && mp->pa_value) {
		p->names[p->n] = mp->pa_name;
		p->values[p->n++] = mp->pa_value;
	}
}

/* What a part's MIME headers say about it. */
struct partinfo {
	char *ctype;
	char *charset;
	char *filename;
	int disposition;          /* MAILMIME_DISPOSITION_TYPE_*, 0 if none */
	int encoding;             /* MAILMIME_MECHANISM_* */
};

static void disposition_info(const struct mailmime_disposition *d, struct params *dp,
			     struct partinfo *pi)
{
	pi->disposition = d->dsp_type ? d->dsp_type->dsp_type : 0;
	for (clistiter *it = clist_begin(d->dsp_parms); it; it = clist_next(it)) {
		struct mailmime_disposition_parm *p = clist_content(it);
		if (p->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME && p->pa_data.pa_filename &&
		    dp->n < ARRAY_LEN(dp->names)) {
			dp->names[dp->n] = "filename";
			dp->values[dp->n++] = p->pa_data.pa_filename;
		} else if (p->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER) {
			params_add(dp, p->pa_data.pa_parameter);
		}
	}
}

static void partinfo_get(const struct mailmime *mm, struct partinfo *pi)
{
	struct params cp = { .n = 0 }, dp = { .n = 0 };
	memset(pi, 0, sizeof(*pi));
	pi->ctype = ctype_str(mm->mm_content_type);
	pi->encoding = MAILMIME_MECHANISM_8BIT;
	if (mm->mm_content_type)
		for (clistiter *it = clist_begin(mm->mm_content_type->ct_parameters); it;
		     it = clist_next(it))
			params_add(&cp, clist_content(it));
	if (mm->mm_mime_fields) {
		for (clistiter *it = clist_begin(mm->mm_mime_fields->fld_list); it;
		     it = clist_next(it)) {
			struct mailmime_field *f = clist_content(it);
			if (f->fld_type == MAILMIME_FIELD_DISPOSITION && f->fld_data.fld_disposition)
				disposition_info(f->fld_data.fld_disposition, &dp, pi);
			else if (f->fld_type == MAILMIME_FIELD_TRANSFER_ENCODING &&
				 f->fld_data.fld_encoding)
				pi->encoding = f->fld_data.fld_encoding->enc_type;
		}
	}
	char *cs = param_decode("charset", cp.names, cp.values, cp.n);
	if (cs) {
		pi->charset = str_lower_ascii(cs);
		if (!*cs) {
			free(cs);
			pi->charset = NULL;
		}
	}
	pi->filename = param_decode("filename", dp.names, dp.values, dp.n);
	if (!pi->filename)
		pi->filename = param_decode("name", cp.names, cp.values, cp.n);
	if (pi->filename && !*pi->filename) {
		free(pi->filename);
		pi->filename = NULL;
	}
}

static bool is_body_type(const char *ct)
{
	return strcmp(ct, "text/plain") == 0 || strcmp(ct, "text/html") == 0;
}

/* Which parts are read: text, delivery reports, embedded messages. */
static bool is_read_type(const char *ct)
{
	return strncmp(ct, "text/", 5) == 0 || strcmp(ct, "message/delivery-status") == 0 ||
	       strcmp(ct, "message/global-delivery-status") == 0 ||
	       strcmp(ct, "message/disposition-notification") == 0 ||
	       strcmp(ct, "message/rfc822") == 0 || strcmp(ct, "message/global") == 0;
}

/* A file named *.csv is read as text whatever its declared type: Windows
 * clients send CSV as application/vnd.ms-excel or octet-stream, and a
 * unit's applicant list is exactly such a file. */
static bool csv_named(const char *filename)
{
	size_t n = filename ? strlen(filename) : 0;
	return n > 4 && strcasecmp(filename + n - 4, ".csv") == 0;
}

/* Does leaf() decode a part of this type and file name? The cuts made
 * before parsing must never fall in such a part (cuts_claimed()). */
static bool is_read_part(const char *ctype, const char *filename)
{
	return is_read_type(ctype) || csv_named(filename);
}

static enum part_role role_of(const struct partinfo *pi)
{
	if (pi->disposition == MAILMIME_DISPOSITION_TYPE_ATTACHMENT)
		return PART_ATTACHMENT;
	if (is_body_type(pi->ctype) && !pi->filename)
		return PART_BODY;
	if (pi->filename && strncmp(pi->ctype, "text/", 5) == 0)
		return PART_ATTACHMENT;
	if (pi->disposition == MAILMIME_DISPOSITION_TYPE_INLINE)
		return PART_INLINE;
	return pi->filename ? PART_ATTACHMENT : PART_INLINE;
}

/* libetpan's decoders look up to two bytes past the data they are given
 * ("=" at the very end of quoted-printable), so data that ends the
 * buffer is decoded from a copy with a few zero bytes after it. */
#define DECODE_SLACK 4

/* Transfer-decode at most what max_text decoded bytes need (all of it if
 * max_text is 0); *cut when the data was longer. Returns the decoded
 * bytes: *owned says whether they are libetpan's
 * (mailmime_decoded_part_free) or borrowed from data. */
static char *transfer_decode(const struct pctx *c, const char *data, size_t len, int enc,
			     size_t max_text, size_t *outlen, bool *owned, bool *cut)
{
	size_t cap = max_text;
	if (max_text == 0 || max_text > SIZE_MAX / 4)
		cap = SIZE_MAX;
	else if (enc == MAILMIME_MECHANISM_BASE64)
		cap = max_text / 3 * 4 + max_text / 16 + 16;
	else if (enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE)
		cap = max_text * 3;
	*cut = false;
	if (len > cap) {
		len = cap;
		*cut = true;
	}
	*owned = false;
	if (enc != MAILMIME_MECHANISM_BASE64 && enc != MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
		*outlen = len;
		return (char *)data;
	}
	char *copy = NULL;
	if ((size_t)(c->raw_end - data) < len + DECODE_SLACK) {
		copy = xmalloc(len + DECODE_SLACK);
		memcpy(copy, data, len);
		memset(copy + len, 0, DECODE_SLACK);
		data = copy;
	}
	size_t idx = 0, rl = 0;
	char *res = NULL;
	int r = mailmime_part_parse(data, len, &idx, enc, &res, &rl);
	free(copy);
	if (r != MAILIMF_NO_ERROR || !res) {
		*outlen = 0;
		return NULL;
	}
	*owned = true;
	*outlen = rl;
	return res;
}

/* Cut UTF-8 text at max bytes on a character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* Line ends become "\n" in every text we keep (mail has CRLF, libetpan's
 * quoted-printable decoder writes CRLF). In place; returns the new length. */
static size_t crlf_to_lf(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			s[o++] = s[i];
	s[o] = '\0';
	return o;
}

static void body_append(struct pctx *c, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (c->body.len > 0 && c->body.p[c->body.len - 1] != '\n')
		buf_addc(&c->body, '\n');
	buf_add(&c->body, s, n);
}

static struct part *part_new(struct pctx *c, struct partinfo *pi)
{
	struct message *m = c->m;
	m->parts = xreallocarray(m->parts, m->nparts + 1, sizeof(*m->parts));
	struct part *p = &m->parts[m->nparts++];
	memset(p, 0, sizeof(*p));
	p->content_type = pi->ctype;
	p->charset = pi->charset;
	p->filename = pi->filename;
	p->role = role_of(pi);
	pi->ctype = pi->charset = pi->filename = NULL;
	return p;
}

static void forward_from_bytes(struct pctx *c, const char *raw, size_t len);

/* Read a text-like part: decode, convert, keep; feed the body. */
static void leaf_text(struct pctx *c, struct part *p, const char *data, size_t len, int enc,
		      bool chosen)
{
	bool owned, cut, fb = false;
	size_t dl;
	size_t max = c->lim->max_text;
	size_t pn = (size_t)(p - c->m->parts) + 1;
	bool is_msg = strncmp(p->content_type, "message/rfc822", 14) == 0 ||
		      strcmp(p->content_type, "message/global") == 0;
	/* an embedded message is parsed whole (under its own limits); only
	 * its text copy in parts[] is cut at max_text */
	char *dec = transfer_decode(c, data, len, enc, is_msg ? 0 : max, &dl, &owned, &cut);

	if (is_msg && !c->have_fwd && !c->in_report && dec) {
		c->have_fwd = true;
		forward_from_bytes(c, dec, dl);
	}
	char *cs = is_msg ? NULL : p->charset;
	size_t conv = dec ? dl : 0;
	if (conv > max + 4) {          /* only an embedded message gets here */
		conv = max + 4;
		cut = true;
	}
	p->text = text_to_utf8(cs, dec ? dec : "", conv, &p->text_len, &fb);
	p->text_len = crlf_to_lf(p->text, p->text_len);
	p->size = dl;
	p->charset_fallback = fb && !is_msg;
	if (owned)
		mailmime_decoded_part_free(dec);
	if (p->charset_fallback)
		msg_problem(c->m, "part %zu (%s): charset %s, read as UTF-8 if valid, "
			    "else windows-1254", pn, p->content_type,
			    p->charset ? p->charset : "missing");
	if (cut || p->text_len > max) {
		p->text_len = utf8_cut(p->text, p->text_len, max);
		p->text[p->text_len] = '\0';
		if (is_msg)
			msg_problem(c->m, "part %zu (%s): text copy cut at %zu bytes", pn,
				    p->content_type, max);
		else
			msg_unreadable(c->m, "part %zu (%s): text longer than %zu bytes, cut",
				       pn, p->content_type, max);
	}
	if (p->role != PART_BODY)
		return;
	if (strcmp(p->content_type, "text/html") == 0) {
		if (!c->m->html)
			c->m->html = xstrndup(p->text, p->text_len);
		if (chosen) {
			char *t = html_to_text(p->text, p->text_len);
			body_append(c, t, strlen(t));
			free(t);
			c->body_html = true;
		}
	} else if (chosen) {
		body_append(c, p->text, p->text_len);
		c->body_plain = true;
	}
}

/* Index of the first cut starting after offset off (cuts are sorted). */
static size_t cut_after(const struct mime_cut *v, size_t n, size_t off)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Bytes cut out of the data [data, data + len) of a part. A cut lies
 * after the data's first line, and before its last line or at its very
 * end: libetpan drops the line end before a boundary, so when the body's
 * last line is empty the cut ends the data. */
static size_t cut_bytes_in(const struct pctx *c, const char *data, size_t len)
{
	if (c->ncuts == 0 || !data)
		return 0;
	size_t off = (size_t)(data - c->raw), sum = 0;
	for (size_t i = cut_after(c->cuts, c->ncuts, off);
	     i < c->ncuts && c->cuts[i].off <= off + len; i++)
		sum += c->cuts[i].len;
	return sum;
}

static struct mailmime_data *leaf_data(struct mailmime *mm)
{
	return mm->mm_type == MAILMIME_SINGLE ? mm->mm_data.mm_single : mm->mm_body;
}

static void leaf(struct pctx *c, struct mailmime *mm, bool chosen)
{
	struct partinfo pi;
	if (c->m->nparts >= c->lim->max_parts) {
		msg_unreadable(c->m, "more than %zu MIME parts", c->lim->max_parts);
		return;
	}
	partinfo_get(mm, &pi);
	struct part *p = part_new(c, &pi);
	struct mailmime_data *d = leaf_data(mm);
	const char *data = d && d->dt_type == MAILMIME_DATA_TEXT ? d->dt_data.dt_text.dt_data : NULL;
	size_t len = data ? d->dt_data.dt_text.dt_length : 0;
	int enc = mm->mm_type == MAILMIME_MESSAGE ? MAILMIME_MECHANISM_8BIT : pi.encoding;

	if (!data || !is_read_part(p->content_type, p->filename)) {
		p->size = len + cut_bytes_in(c, data, len);  /* encoded size: never decoded */
		return;
	}
	leaf_text(c, p, data, len, enc, chosen);
}

/* ---- the tree ---- */

static bool data_blank(const struct mailmime_data *d)
{
	if (!d || d->dt_type != MAILMIME_DATA_TEXT)
		return true;
	for (size_t i = 0; i < d->dt_data.dt_text.dt_length; i++) {
		char ch = d->dt_data.dt_text.dt_data[i];
		if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			return false;
	}
	return true;
}

/* In multipart/alternative: plain text if it says anything, else HTML,
 * else a structured child (related/mixed), else the first. */
static struct mailmime *choose_alternative(struct mailmime *mm)
{
	struct mailmime *best = NULL;
	int best_score = -1;
	for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list); it;
	     it = clist_next(it)) {
		struct mailmime *ch = clist_content(it);
		int score = 0;
		char *ct = ctype_str(ch->mm_content_type);
		if (ch->mm_type == MAILMIME_SINGLE && strcmp(ct, "text/plain") == 0)
			score = data_blank(ch->mm_data.mm_single) ? 1 : 3;
		else if (ch->mm_type == MAILMIME_SINGLE && strcmp(ct, "text/html") == 0)
			score = 2;
		else if (ch->mm_type == MAILMIME_MULTIPLE)
			score = 2;
		free(ct);
		if (score > best_score) {
			best = ch;
			best_score = score;
		}
	}
	return best;
}

static void walk(struct pctx *c, struct mailmime *mm, int depth, bool chosen);

static void walk_multi(struct pctx *c, struct mailmime *mm, int depth, bool chosen)
{
	const char *sub = mm->mm_content_type && mm->mm_content_type->ct_subtype
			  ? mm->mm_content_type->ct_subtype : "mixed";
	struct mailmime *pick = NULL;
	bool alt = strcasecmp(sub, "alternative") == 0;
	bool related = strcasecmp(sub, "related") == 0;
	bool report = strcasecmp(sub, "report") == 0;
	bool was_report = c->in_report;
	if (alt)
		pick = choose_alternative(mm);
	c->in_report |= report;
	bool first = true;
	for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list); it;
	     it = clist_next(it)) {
		struct mailmime *ch = clist_content(it);
		bool ch_chosen = chosen && (alt ? ch == pick : related ? first : true);
		walk(c, ch, depth + 1, ch_chosen);
		first = false;
	}
	c->in_report = was_report;
}

static void walk(struct pctx *c, struct mailmime *mm, int depth, bool chosen)
{
	if (!mm)
		return;
	if (depth > c->depth_left) {
		msg_unreadable(c->m, "MIME nesting deeper than %d levels", c->lim->max_depth);
		return;
	}
	c->cur_depth = depth;
	switch (mm->mm_type) {
	case MAILMIME_SINGLE:
		leaf(c, mm, chosen);
		break;
	case MAILMIME_MULTIPLE:
		walk_multi(c, mm, depth, chosen);
		break;
	case MAILMIME_MESSAGE:
		/* an embedded message is one part here; it is parsed on its own */
		leaf(c, mm, chosen);
		break;
	default:
		break;
	}
}

/* ---- forwards ---- */

static void forward_from_bytes(struct pctx *c, const char *raw, size_t len)
{
	if (c->fwd_depth >= c->lim->forward_depth) {
		msg_problem(c->m, "forwarded message not unwrapped: more than %d forwards",
			    c->lim->forward_depth);
		return;
	}
	struct mime_limits sub = *c->lim;
	sub.max_depth = c->depth_left - c->cur_depth;
	struct message *f = msg_parse_nested(raw, len, &sub, c->fwd_depth + 1);
	c->m->forwarded = f;
	c->m->fwd_style = FWD_RFC822;
	if (f->unreadable)
		msg_problem(c->m, "forwarded message: %s",
			    f->unreadable_reason ? f->unreadable_reason : "unreadable");
}

/* ---- the whole ---- */

/* Not MIME we can walk: keep the raw body as text. */
static void body_raw(struct pctx *c, const char *raw, size_t len)
{
	size_t n = len > c->lim->max_text ? c->lim->max_text : len;
	size_t ol;
	bool fb;
	char *t = text_to_utf8(NULL, raw, n, &ol, &fb);
	ol = crlf_to_lf(t, ol);
	body_append(c, t, ol);
	free(t);
}

/* libetpan's tree of raw, or NULL if it could not make one. */
static struct mailmime *etpan_parse(const char *raw, size_t len)
{
	size_t idx = 0;
	struct mailmime *mime = NULL;
	if (mailmime_parse(raw, len, &idx, &mime) != MAILIMF_NO_ERROR)
		return NULL;
	return mime;
}

/* Where walk() starts: libetpan wraps a whole message in a message node. */
static struct mailmime *tree_root(struct mailmime *mime)
{
	return mime->mm_type == MAILMIME_MESSAGE ? mime->mm_data.mm_message.mm_msg_mime : mime;
}

/* Does leaf() decode this single part? */
static bool single_is_read(const struct mailmime *mm)
{
	struct partinfo pi;
	partinfo_get(mm, &pi);
	bool read = is_read_part(pi.ctype, pi.filename);
	free(pi.ctype);
	free(pi.charset);
	free(pi.filename);
	return read;
}

/* How many of c's cuts lie inside the data of single parts of the tree
 * that leaf() does not decode; *bad if one lies in a part it decodes. A
 * cut inside an embedded message, a preamble or anything else is not
 * counted. */
static size_t cuts_claimed(const struct pctx *c, struct mailmime *mm, int depth, bool *bad)
{
	size_t n = 0;
	if (!mm || depth > c->depth_left + 1)
		return 0;
	if (mm->mm_type == MAILMIME_MULTIPLE) {
		for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list); it;
		     it = clist_next(it))
			n += cuts_claimed(c, clist_content(it), depth + 1, bad);
		return n;
	}
	struct mailmime_data *d = mm->mm_type == MAILMIME_SINGLE ? mm->mm_data.mm_single : NULL;
	if (!d || d->dt_type != MAILMIME_DATA_TEXT)
		return 0;
	size_t off = (size_t)(d->dt_data.dt_text.dt_data - c->raw);
	size_t end = off + d->dt_data.dt_text.dt_length;
	for (size_t i = cut_after(c->cuts, c->ncuts, off); i < c->ncuts && c->cuts[i].off <= end;
	     i++)
		n++;
	if (n > 0 && single_is_read(mm))
		*bad = true;
	return n;
}

/* libetpan's tree of the message without sh's cuts, if there is enough to
 * cut and the tree confirms that every cut lies in a part nobody reads;
 * then c->raw is the copy (*copy, for the caller to free) and c->cuts are
 * set. NULL otherwise: parse raw as it is. */
static struct mailmime *parse_compact(struct pctx *c, const char *raw, size_t len,
				      struct mime_shape *sh, char **copy)
{
	size_t clen;
	if (sh->cut_bytes < MIME_CUT_MIN)
		return NULL;
	*copy = mime_compact(raw, len, sh, &clen);
	c->raw = *copy;
	c->raw_end = *copy + clen;
	c->cuts = sh->cuts;
	c->ncuts = sh->ncuts;
	struct mailmime *mime = etpan_parse(*copy, clen);
	bool bad = false;
	if (mime && cuts_claimed(c, tree_root(mime), 1, &bad) == sh->ncuts && !bad) {
		c->m->cut_bytes = sh->cut_bytes;
		return mime;
	}
	if (mime)
		mailmime_free(mime);
	free(*copy);
	*copy = NULL;
	c->cuts = NULL;
	c->ncuts = 0;
	return NULL;
}

static void parse_mime(struct pctx *c, const char *raw, size_t len, size_t body_off)
{
	char *why = NULL, *copy = NULL;
	struct mime_shape sh;
	if (mime_prescan(raw, len, c->depth_left, c->lim->max_parts, &sh, &why) < 0) {
		msg_unreadable(c->m, "%s", why);
		free(why);
		return;
	}
	if (sh.lost_boundary) {
		/* libetpan would make up a part from the first "--" line */
		msg_problem(c->m, "multipart boundary not found; body read as plain text");
		body_raw(c, raw + body_off, len - body_off);
		mime_shape_free(&sh);
		return;
	}
	struct mailmime *mime = parse_compact(c, raw, len, &sh, &copy);
	if (!mime) {
		c->raw = raw;
		c->raw_end = raw + len;
		mime = etpan_parse(raw, len);
	}
	if (!mime) {
		msg_unreadable(c->m, "MIME structure could not be parsed");
		body_raw(c, raw + body_off, len - body_off);
	} else {
		walk(c, tree_root(mime), 1, true);
		mailmime_free(mime);
	}
	free(copy);
	mime_shape_free(&sh);
}

static void finish_body(struct pctx *c)
{
	struct message *m = c->m;
	free(m->body);
	m->body_len = c->body.len;
	m->body = buf_steal(&c->body);
	m->body_from_html = c->body_html && !c->body_plain;
}

struct message *msg_parse_nested(const char *raw, size_t len, const struct mime_limits *lim,
				 int fwd_depth)
{
	struct pctx c;
	struct raw_headers h;
	memset(&c, 0, sizeof(c));
	c.m = msg_new();
	c.lim = lim;
	c.fwd_depth = fwd_depth;
	c.depth_left = lim->max_depth;

	hdr_scan(raw, len, lim->max_header, &h);
	headers_decode(c.m, &h);
	msg_fill_envelope(c.m, &h);
	if (h.too_long)
		msg_unreadable(c.m, "a header line is longer than %zu bytes", lim->max_header);
	if (h.too_many)
		msg_problem(c.m, "too many header lines; the rest ignored");
	if (h.n == 0) {
		msg_unreadable(c.m, "no header found: not a mail message");
		body_raw(&c, raw + h.body_off, len - h.body_off);
	} else if (h.body_off >= len) {
		/* headers only: nothing for libetpan, which would read the
		 * unterminated header block as the body */
	} else if (c.depth_left < 1) {
		msg_unreadable(c.m, "MIME nesting deeper than the limit");
	} else {
		parse_mime(&c, raw, len, h.body_off);
	}
	hdr_scan_free(&h);
	finish_body(&c);
	if (!c.m->forwarded && fwd_depth < lim->forward_depth && !c.m->unreadable)
		fwd_detect_inline(c.m, lim, fwd_depth);
	return c.m;
}

static const struct mime_limits default_limits = MIME_LIMITS_DEFAULT;

int message_parse(const char *raw, size_t len, const struct mime_limits *lim,
		  struct message **out, char **err)
{
	*out = NULL;
	if (!raw || len == 0)
		return seterr(err, "empty message");
	struct mime_limits l = lim ? *lim : default_limits;
	if (l.max_depth <= 0)
		l.max_depth = default_limits.max_depth;
	if (l.max_parts == 0)
		l.max_parts = default_limits.max_parts;
	if (l.max_header == 0)
		l.max_header = default_limits.max_header;
	if (l.max_text == 0)
		l.max_text = default_limits.max_text;
	if (l.forward_depth < 0)
		l.forward_depth = 0;
	*out = msg_parse_nested(raw, len, &l, 0);
	return 0;
}
