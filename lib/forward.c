/*
 * forward.c: inline forwards (message_p.h).
 *
 * Mail clients forward inline by writing a separator line and a block of
 * "Label: value" lines above the original's text. What they write, in
 * Turkish and English, is data: the two tables below (separators, labels),
 * matched on folded text (text.h), so "İLETİLEN İLETİ" and "iletilen
 * ileti" are one. The sources of the rows are in the project's notes on
 * forwards (Thunderbird's own Turkish strings, captured client output);
 * rows marked as plausible are reported only in application code and
 * kept because a wrong row costs nothing when it never matches.
 *
 * The original is rebuilt as a struct message: headers from the labels,
 * body from the text below the block (de-quoted), and copies of the
 * forwarding message's attachments, which carry the original's.
 */
#include "message_p.h"

#include <stdlib.h>
#include <string.h>

/* Also written above quoted replies: not a forward when the subject says
 * reply ("RE:", "YNT:") and not forward ("FW:", "İLT:"). */
#define SEP_REPLY 1u

struct fwd_sep {
	int dashes;               /* leading dashes as written; 0 none; -1 underscores */
	const char *text;         /* folded, without dashes and trailing ':' */
	const char *client;
	const char *client_tr;    /* if the block's labels are Turkish (NULL: client) */
	const char *client_oneline;  /* if the labels follow on the same line */
	unsigned flags;
};

static const struct fwd_sep separators[] = {
	/* Thunderbird: composeMsgs.properties / mime.properties */
	{ 8, "iletilen ileti", "thunderbird-tr", NULL, NULL, 0 },
	{ 8, "forwarded message", "thunderbird-en", NULL, NULL, 0 },
	{ 8, "ozgun ileti", "thunderbird-tr", NULL, NULL, SEP_REPLY },
	/* Gmail keeps its English separator in every locale; a Turkish one
	 * is rumoured only (plausible) */
	{ 10, "forwarded message", "gmail-en", "gmail-tr", NULL, 0 },
	{ 10, "yonlendirilen ileti", "gmail-tr", NULL, NULL, 0 },
	/* Outlook desktop; the Turkish ones are plausible, not captured */
	{ 5, "original message", "outlook-en", "outlook-tr", NULL, SEP_REPLY },
	{ 5, "ozgun ileti", "outlook-tr", NULL, NULL, SEP_REPLY },
	{ 5, "orijinal ileti", "outlook-tr", NULL, NULL, SEP_REPLY },
	/* Roundcube */
	{ 8, "original message", "roundcube-en", NULL, NULL, SEP_REPLY },
	{ 8, "orijinal mesaj", "roundcube-tr", NULL, NULL, SEP_REPLY },
	/* Yahoo (labels on the separator's line) and Zimbra (one per line) */
	{ 5, "forwarded message", "zimbra-en", NULL, "yahoo-en", 0 },
	{ 5, "iletilmis mesaj", "yahoo-tr", NULL, "yahoo-tr", 0 },
	{ 5, "orijinal mesaj", "zimbra-tr", NULL, NULL, SEP_REPLY },
	/* Apple Mail */
	{ 0, "begin forwarded message", "apple-en", NULL, NULL, 0 },
	{ 0, "ileti baslangici", "apple-tr", NULL, NULL, 0 },
	/* Outlook on the web: a line of 32 underscores */
	{ -1, "", "outlook-web", NULL, NULL, SEP_REPLY },
};

struct fwd_label {
	const char *text;         /* folded, without ':' */
	enum fwd_field field;
	bool turkish;
};

static const struct fwd_label labels[] = {
	{ "from", FF_FROM, false },     { "kimden", FF_FROM, true },
	/* Gmail's Turkish From; Thunderbird's Sender (resolved later) */
	{ "gonderen", FF_SENDER, true }, { "sender", FF_SENDER, false },
	{ "to", FF_TO, false },         { "kime", FF_TO, true },
	{ "cc", FF_CC, false },         { "bilgi", FF_CC, true },
	{ "date", FF_DATE, false },     { "sent", FF_DATE, false },
	{ "tarih", FF_DATE, true },     { "gonderildi", FF_DATE, true },
	{ "gonderilen", FF_DATE, true },
	{ "subject", FF_SUBJECT, false }, { "konu", FF_SUBJECT, true },
	{ "reply-to", FF_REPLY_TO, false }, { "yanit adresi", FF_REPLY_TO, true },
	{ "bcc", FF_OTHER, false },     { "gizli", FF_OTHER, true },
	{ "organization", FF_OTHER, false }, { "kurum", FF_OTHER, true },
	{ "importance", FF_OTHER, false }, { "onem derecesi", FF_OTHER, true },
};

/* Subject prefixes (folded) that say reply, and that say forward. */
static const char *const reply_prefixes[] = { "re:", "ynt:", "yanit:", "cvp:", "cevap:",
					       "aw:", "sv:", "antw:" };
static const char *const fwd_prefixes[] = { "fw:", "fwd:", "ilt:", "ilet:", "yonlendir:",
					     "wg:", "tr:" };

/* ---- labels ---- */

static bool sp(char c)
{
	return c == ' ' || c == '\t';
}

enum fwd_field fwd_label_at(const char *s, size_t len, size_t *vstart)
{
	size_t i = 0;
	while (i < len && s[i] == '*')
		i++;
	for (size_t k = 0; k < ARRAY_LEN(labels); k++) {
		size_t tl = strlen(labels[k].text), j = i + tl;
		if (j > len || memcmp(s + i, labels[k].text, tl) != 0)
			continue;
		while (j < len && (s[j] == '*' || sp(s[j])))
			j++;
		if (j >= len || s[j] != ':')
			continue;
		j++;
		while (j < len && (s[j] == '*' || sp(s[j])))
			j++;
		if (j + 1 < len && s[j] == '|' && sp(s[j + 1]))
			j += 2;             /* an HTML table cell turned into text */
		while (j < len && sp(s[j]))
			j++;
		*vstart = j;
		return labels[k].field;
	}
	return FF_NONE;
}

static bool label_is_turkish(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && s[i] == '*')
		i++;
	for (size_t k = 0; k < ARRAY_LEN(labels); k++) {
		size_t tl = strlen(labels[k].text);
		if (i + tl <= len && memcmp(s + i, labels[k].text, tl) == 0)
			return labels[k].turkish;
	}
	return false;
}

/* ---- separators ---- */

static bool underscores(const char *s, size_t len)
{
	if (len < 30)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '_')
			return false;
	return true;
}

/* Match a folded, trimmed line; *rest is where text after the separator
 * starts (Yahoo writes the labels there). */
static const struct fwd_sep *sep_match(const char *s, size_t len, size_t *rest)
{
	*rest = len;
	if (underscores(s, len))
		return &separators[ARRAY_LEN(separators) - 1];
	size_t i = 0;
	while (i < len && s[i] == '-')
		i++;
	int dashes = (int)i;
	while (i < len && sp(s[i]))
		i++;
	size_t cs = i;
	while (i < len && !(s[i] == '-' && i + 1 < len && s[i + 1] == '-'))
		i++;
	size_t ce = i;
	while (ce > cs && (sp(s[ce - 1]) || s[ce - 1] == ':'))
		ce--;
	while (i < len && (s[i] == '-' || sp(s[i])))
		i++;
	if (ce == cs || (dashes == 0 && i < len) || (dashes > 0 && i == ce))
		return NULL;         /* no text, or "--- text" without closing dashes */
	const struct fwd_sep *any = NULL;
	for (size_t k = 0; k < ARRAY_LEN(separators); k++) {
		const struct fwd_sep *r = &separators[k];
		if (r->dashes < 0 || strlen(r->text) != ce - cs || memcmp(r->text, s + cs, ce - cs))
			continue;
		if ((r->dashes > 0) != (dashes > 0))
			continue;
		if (r->dashes == dashes) {
			*rest = i;
			return r;
		}
		if (!any)
			any = r;
	}
	if (any)
		*rest = i;
	return any;
}

const char *fwd_separator_client(const char *s, size_t len)
{
	size_t rest;
	const struct fwd_sep *r = sep_match(s, len, &rest);
	return r ? r->client : NULL;
}

/* ---- lines ---- */

/* The body, folded once, with its lines. */
struct ftext {
	const char *orig;
	struct folded f;
	size_t *ls;               /* line starts in folded text */
	size_t nl;
};

static void ftext_init(struct ftext *t, const char *body, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->orig = body;
	text_fold(body, len, true, &t->f);
	size_t cap = 64;
	t->ls = xreallocarray(NULL, cap, sizeof(*t->ls));
	t->ls[t->nl++] = 0;
	for (size_t i = 0; i < t->f.len; i++)
		if (t->f.s[i] == '\n') {
			if (t->nl + 1 >= cap) {
				cap *= 2;
				t->ls = xreallocarray(t->ls, cap, sizeof(*t->ls));
			}
			t->ls[t->nl++] = i + 1;
		}
	t->ls[t->nl] = t->f.len + 1;    /* sentinel: one past the last '\n' */
}

static void ftext_free(struct ftext *t)
{
	folded_free(&t->f);
	free(t->ls);
}

/* Line i of the folded text without its quote markers and outer spaces:
 * off and len within f.s, returns the quote depth. */
static int line_get(const struct ftext *t, size_t i, size_t *off, size_t *len)
{
	size_t a = t->ls[i], b = t->ls[i + 1] - 1;
	if (b > t->f.len)
		b = t->f.len;
	int q = 0;
	while (a < b && (sp(t->f.s[a]) || t->f.s[a] == '>')) {
		q += t->f.s[a] == '>';
		a++;
	}
	while (b > a && (sp(t->f.s[b - 1]) || t->f.s[b - 1] == '\r'))
		b--;
	*off = a;
	*len = b - a;
	return q;
}

/* The original bytes for folded range [a, b), trimmed. */
static char *orig_range(const struct ftext *t, size_t a, size_t b)
{
	size_t oa = t->f.map[a], ob = t->f.map[b];
	while (oa < ob && (sp(t->orig[oa]) || t->orig[oa] == '*'))
		oa++;
	while (ob > oa && (sp(t->orig[ob - 1]) || t->orig[ob - 1] == '*' || t->orig[ob - 1] == '\r'))
		ob--;
	return xstrndup(t->orig + oa, ob - oa);
}

/* ---- the block ---- */

#define NFIELDS (FF_OTHER + 1)

struct fblock {
	char *val[NFIELDS];
	int nlabels;
	bool turkish;
	size_t body_line;         /* first line after the block */
	int quote;                /* quote depth of the block */
};

static void fblock_free(struct fblock *b)
{
	for (int i = 0; i < NFIELDS; i++)
		free(b->val[i]);
}

static void fblock_set(struct fblock *b, enum fwd_field f, char *v)
{
	b->nlabels++;
	if (b->val[f] || f == FF_NONE)
		free(v);
	else
		b->val[f] = v;
}

/* Labels one per line from line i; stops at a blank or unlabelled line. */
static void block_lines(const struct ftext *t, size_t i, struct fblock *b)
{
	size_t off, len;
	/* up to two blank lines may separate the separator from the block */
	for (int skip = 0; skip < 3 && i < t->nl; skip++, i++) {
		line_get(t, i, &off, &len);
		if (len)
			break;
	}
	b->quote = i < t->nl ? line_get(t, i, &off, &len) : 0;
	for (; i < t->nl; i++) {
		int q = line_get(t, i, &off, &len);
		size_t vs;
		enum fwd_field f = len && q == b->quote ? fwd_label_at(t->f.s + off, len, &vs)
							  : FF_NONE;
		if (f == FF_NONE)
			break;
		b->turkish |= label_is_turkish(t->f.s + off, len);
		fblock_set(b, f, orig_range(t, off + vs, off + len));
	}
	b->body_line = i;
}

/* Yahoo: "Kimden: a <a@b>Kime: c@d Gönderilen: ... Konu: subject" on one
 * line; a label starts wherever its text follows a non-letter. */
static void block_oneline(const struct ftext *t, size_t off, size_t len, struct fblock *b)
{
	const char *s = t->f.s + off;
	size_t pos = 0, vstart = 0;
	enum fwd_field cur = FF_NONE;
	while (pos < len) {
		size_t vs;
		enum fwd_field f = FF_NONE;
		if (cur != FF_SUBJECT && (pos == 0 || !(s[pos - 1] >= 'a' && s[pos - 1] <= 'z')))
			f = fwd_label_at(s + pos, len - pos, &vs);
		if (f == FF_NONE) {
			pos++;
			continue;
		}
		if (cur != FF_NONE)
			fblock_set(b, cur, orig_range(t, off + vstart, off + pos));
		b->turkish |= label_is_turkish(s + pos, len - pos);
		cur = f;
		vstart = pos + vs;
		pos = vstart;
	}
	if (cur != FF_NONE)
		fblock_set(b, cur, orig_range(t, off + vstart, off + len));
}

static bool block_ok(const struct fblock *b, bool bare)
{
	if (!b->val[FF_FROM] && !b->val[FF_SENDER])
		return false;
	int more = (b->val[FF_DATE] != NULL) + (b->val[FF_TO] != NULL) +
		   (b->val[FF_SUBJECT] != NULL);
	return more >= (bare ? 2 : 1);
}

/* ---- the rebuilt original ---- */

/* Text from line i on, with `quote` levels of "> " removed; for a quoted
 * block it ends where the quoting does. */
static char *body_below(const struct ftext *t, size_t i, int quote)
{
	struct buf o = BUF_INIT;
	size_t off, len;
	while (i < t->nl && (line_get(t, i, &off, &len), len == 0))
		i++;
	for (; i < t->nl; i++) {
		int q = line_get(t, i, &off, &len);
		if (quote > 0 && q < quote && len > 0)
			break;
		size_t a = t->ls[i], b = t->ls[i + 1] - 1;
		if (b > t->f.len)
			b = t->f.len;
		for (int k = 0; k < quote && a < b; k++) {
			while (a < b && sp(t->f.s[a]))
				a++;
			if (a < b && t->f.s[a] == '>')
				a++;
			if (a < b && t->f.s[a] == ' ')
				a++;
		}
		size_t oa = t->f.map[a], ob = t->f.map[b];
		buf_add(&o, t->orig + oa, ob - oa);
		buf_addc(&o, '\n');
	}
	while (o.len > 0 && (o.p[o.len - 1] == '\n' || sp(o.p[o.len - 1]) ||
			     o.p[o.len - 1] == '>'))
		o.len--;
	if (o.p) {
		o.p[o.len] = '\0';
		if (o.len)
			buf_addc(&o, '\n');
	}
	return buf_steal(&o);
}

static void copy_attachments(const struct message *from, struct message *to)
{
	for (size_t i = 0; i < from->nparts; i++) {
		const struct part *p = &from->parts[i];
		if (p->role != PART_ATTACHMENT)
			continue;
		to->parts = xreallocarray(to->parts, to->nparts + 1, sizeof(*to->parts));
		struct part *q = &to->parts[to->nparts++];
		*q = *p;
		q->content_type = xstrdup(p->content_type);
		q->filename = p->filename ? xstrdup(p->filename) : NULL;
		q->charset = p->charset ? xstrdup(p->charset) : NULL;
		q->text = p->text ? xstrndup(p->text, p->text_len) : NULL;
	}
}

static const char *const field_names[NFIELDS] = {
	[FF_FROM] = "From", [FF_SENDER] = "Sender", [FF_TO] = "To", [FF_CC] = "Cc",
	[FF_DATE] = "Date", [FF_SUBJECT] = "Subject", [FF_REPLY_TO] = "Reply-To",
};

static struct message *rebuild(const struct message *outer, struct fblock *b, char *body)
{
	struct message *f = msg_new();
	struct raw_headers h = { .n = 0 };
	struct raw_header hv[NFIELDS];
	if (!b->val[FF_FROM]) {           /* Gmail's "Gönderen:" is the From */
		b->val[FF_FROM] = b->val[FF_SENDER];
		b->val[FF_SENDER] = NULL;
	}
	for (int k = FF_FROM; k < FF_OTHER; k++) {
		if (!b->val[k] || !field_names[k])
			continue;
		hv[h.n].name = (char *)field_names[k];
		hv[h.n].value = b->val[k];
		h.n++;
		msg_add_header(f, field_names[k], b->val[k]);
	}
	h.v = hv;
	msg_fill_envelope(f, &h);
	free(f->body);
	f->body = body;
	f->body_len = strlen(body);
	copy_attachments(outer, f);
	return f;
}

static bool has_prefix(const char *folded_subject, const char *const *v, size_t n)
{
	const char *s = folded_subject;
	while (*s == ' ' || *s == '[')
		s++;
	for (size_t i = 0; i < n; i++)
		if (strncmp(s, v[i], strlen(v[i])) == 0)
			return true;
	return false;
}

/* A reply quoting its original looks like an Outlook forward. */
static bool subject_says_reply(const struct message *m)
{
	char *s = text_fold_str(m->subject);
	bool r = has_prefix(s, reply_prefixes, ARRAY_LEN(reply_prefixes)) &&
		 !has_prefix(s, fwd_prefixes, ARRAY_LEN(fwd_prefixes));
	free(s);
	return r;
}

static bool subject_says_forward(const struct message *m)
{
	char *s = text_fold_str(m->subject);
	bool r = has_prefix(s, fwd_prefixes, ARRAY_LEN(fwd_prefixes));
	free(s);
	return r;
}

/* ---- detection ---- */

struct found {
	struct fblock b;
	const char *client;
};

/* Try line i as a separator followed by a block. */
static bool try_separator(const struct ftext *t, size_t i, bool reply, struct found *fd)
{
	size_t off, len, rest;
	line_get(t, i, &off, &len);
	const struct fwd_sep *r = len ? sep_match(t->f.s + off, len, &rest) : NULL;
	if (!r || (reply && (r->flags & SEP_REPLY)))
		return false;
	memset(&fd->b, 0, sizeof(fd->b));
	bool oneline = rest < len;
	if (oneline) {
		block_oneline(t, off + rest, len - rest, &fd->b);
		fd->b.body_line = i + 1;
		fd->b.quote = line_get(t, i, &off, &len);
	} else {
		block_lines(t, i + 1, &fd->b);
	}
	if (!block_ok(&fd->b, false)) {
		fblock_free(&fd->b);
		return false;
	}
	fd->client = oneline && r->client_oneline ? r->client_oneline
		     : fd->b.turkish && r->client_tr ? r->client_tr : r->client;
	return true;
}

/* Try line i as a block without a separator (New Outlook, Outlook). */
static bool try_bare(const struct ftext *t, size_t i, bool reply, struct found *fd)
{
	size_t off, len, vs;
	line_get(t, i, &off, &len);
	if (reply || !len || fwd_label_at(t->f.s + off, len, &vs) != FF_FROM)
		return false;
	memset(&fd->b, 0, sizeof(fd->b));
	block_lines(t, i, &fd->b);
	if (!block_ok(&fd->b, true)) {
		fblock_free(&fd->b);
		return false;
	}
	fd->client = fd->b.turkish ? "outlook-tr" : "outlook-en";
	return true;
}

/* The subject without its forward prefixes ("FW: İLT: x" -> "x"). */
static char *subject_unprefixed(const char *subject)
{
	struct folded f;
	text_fold(subject, strlen(subject), true, &f);
	size_t i = 0;
	for (bool again = true; again; ) {
		again = false;
		while (i < f.len && (f.s[i] == ' ' || f.s[i] == '['))
			i++;
		for (size_t k = 0; k < ARRAY_LEN(fwd_prefixes); k++)
			if (strncmp(f.s + i, fwd_prefixes[k], strlen(fwd_prefixes[k])) == 0) {
				i += strlen(fwd_prefixes[k]);
				again = true;
			}
	}
	char *r = xstrdup(subject + f.map[i]);
	folded_free(&f);
	return r;
}

/* Split an attribution's "who, when" (original text): the address ends
 * at its '>', or at the first ", " before a digit. */
static void split_who_when(const char *s, size_t n, struct fblock *b)
{
	const char *gt = NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '>')
			gt = s + i;
	size_t cut = gt ? (size_t)(gt - s) + 1 : n;
	for (size_t i = 0; !gt && i + 2 < n; i++)
		if (s[i] == ',' && s[i + 1] == ' ' && s[i + 2] >= '0' && s[i + 2] <= '9') {
			cut = i;
			break;
		}
	size_t d = cut;
	while (d < n && (s[d] == ',' || sp(s[d])))
		d++;
	fblock_set(b, FF_FROM, xstrndup(s, cut));
	if (d < n)
		fblock_set(b, FF_DATE, xstrndup(s + d, n - d));
}

/* Outlook 2019 forwards with a reply's attribution and an indented body
 * ("\"A\" <a@b>, 28/10/2021 12:46 tarihinde şunu yazdı:"), so does an
 * English "On <date>, A <a@b> wrote:"; only taken as a forward when the
 * subject says forward. */
static bool try_attribution(const struct ftext *t, size_t i, const struct message *m,
			    struct found *fd)
{
	static const char tr_tail[] = " tarihinde sunu yazdi:", en_tail[] = " wrote:";
	size_t off, len;
	line_get(t, i, &off, &len);
	const char *s = t->f.s + off;
	bool tr = len > sizeof(tr_tail) && memcmp(s + len - (sizeof(tr_tail) - 1), tr_tail,
						     sizeof(tr_tail) - 1) == 0;
	bool en = !tr && len > 10 && memcmp(s, "on ", 3) == 0 &&
		  memcmp(s + len - (sizeof(en_tail) - 1), en_tail, sizeof(en_tail) - 1) == 0;
	if (!tr && !en)
		return false;
	memset(&fd->b, 0, sizeof(fd->b));
	size_t a = t->f.map[off + (en ? 3 : 0)];
	size_t z = t->f.map[off + len - (tr ? sizeof(tr_tail) : sizeof(en_tail)) + 1];
	const char *o = t->orig + a;
	if (tr) {
		split_who_when(o, z - a, &fd->b);
	} else {
		const char *lt = memchr(o, '<', z - a);
		if (!lt)
			return false;
		fblock_set(&fd->b, FF_DATE, xstrndup(o, (size_t)(lt - o)));
		fblock_set(&fd->b, FF_FROM, xstrndup(lt, z - a - (size_t)(lt - o)));
	}
	fblock_set(&fd->b, FF_SUBJECT, subject_unprefixed(m->subject));
	fd->b.body_line = i + 1;
	for (size_t j = i + 1; j < t->nl; j++)
		if ((fd->b.quote = line_get(t, j, &off, &len)), len)
			break;
	fd->client = tr ? "outlook-2019-tr" : "attribution-en";
	return true;
}

/* Remove the indentation every non-blank line shares (Outlook 2019
 * indents the forwarded text). In place. */
static void dedent(char *s)
{
	size_t min = SIZE_MAX;
	for (char *p = s; *p; ) {
		size_t n = 0;
		while (p[n] == ' ')
			n++;
		if (p[n] && p[n] != '\n' && n < min)
			min = n;
		char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	if (min == 0 || min == SIZE_MAX)
		return;
	char *w = s;
	for (char *p = s; *p; ) {
		size_t n = 0;
		while (n < min && p[n] == ' ')
			n++;
		p += n;
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
		memmove(w, p, l);
		w += l;
		p += l;
	}
	*w = '\0';
}

void fwd_detect_inline(struct message *m, const struct mime_limits *lim, int fwd_depth)
{
	if (m->body_len == 0 || fwd_depth >= lim->forward_depth)
		return;
	struct ftext t;
	struct found fd;
	bool reply = subject_says_reply(m), hit = false;
	bool fwd_subject = subject_says_forward(m);
	ftext_init(&t, m->body, m->body_len);
	for (size_t i = 0; i < t.nl && !hit; i++)
		hit = try_separator(&t, i, reply, &fd) || try_bare(&t, i, reply, &fd) ||
		      (fwd_subject && try_attribution(&t, i, m, &fd));
	if (hit) {
		char *body = body_below(&t, fd.b.body_line, fd.b.quote);
		dedent(body);
		struct message *f = rebuild(m, &fd.b, body);
		fblock_free(&fd.b);
		m->forwarded = f;
		m->fwd_style = FWD_INLINE;
		m->fwd_client = xstrdup(fd.client);
		fwd_detect_inline(f, lim, fwd_depth + 1);
	}
	ftext_free(&t);
}
