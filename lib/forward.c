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
	size_t len;
	enum fwd_field field;
	bool turkish;
};

#define L(s) s, sizeof(s) - 1
static const struct fwd_label labels[] = {
	{ L("from"), FF_FROM, false },     { L("kimden"), FF_FROM, true },
	/* Gmail's Turkish From; Thunderbird's Sender (resolved later) */
	{ L("gonderen"), FF_SENDER, true }, { L("sender"), FF_SENDER, false },
	{ L("to"), FF_TO, false },         { L("kime"), FF_TO, true },
	{ L("cc"), FF_CC, false },         { L("bilgi"), FF_CC, true },
	{ L("date"), FF_DATE, false },     { L("sent"), FF_DATE, false },
	{ L("tarih"), FF_DATE, true },     { L("gonderildi"), FF_DATE, true },
	{ L("gonderilen"), FF_DATE, true },
	{ L("subject"), FF_SUBJECT, false }, { L("konu"), FF_SUBJECT, true },
	{ L("reply-to"), FF_REPLY_TO, false }, { L("yanit adresi"), FF_REPLY_TO, true },
	{ L("bcc"), FF_OTHER, false },     { L("gizli"), FF_OTHER, true },
	{ L("organization"), FF_OTHER, false }, { L("kurum"), FF_OTHER, true },
	{ L("importance"), FF_OTHER, false }, { L("onem derecesi"), FF_OTHER, true },
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
		size_t tl = labels[k].len, j = i + tl;
		if (j > len || s[i] != labels[k].text[0] || memcmp(s + i, labels[k].text, tl) != 0)
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
		size_t tl = labels[k].len;
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

/* Label lines read into one block at most. */
#define MAX_BLOCK_LINES 30

/* Lines longer than this are prose: never a separator or a label. */
#define LINE_MAX_FOLD 4096

/* The body and where its lines start. Lines are folded one at a time when
 * looked at, so a large body costs no folded copy and map of itself. */
struct ftext {
	const char *orig;
	size_t len;
	size_t *ls;               /* line starts in orig; ls[nl] = len + 1 */
	size_t nl;
};

/* One line: s/len is its folded text without quote markers and outer
 * spaces; map offsets of f.s lead back into the line's original bytes. */
struct lview {
	struct folded f;
	size_t base;              /* the line's start in orig */
	const char *s;
	size_t len;
	int quote;
	bool blank;
};

static void ftext_init(struct ftext *t, const char *body, size_t len)
{
	size_t cap = 64;
	memset(t, 0, sizeof(*t));
	t->orig = body;
	t->len = len;
	t->ls = xreallocarray(NULL, cap, sizeof(*t->ls));
	t->ls[t->nl++] = 0;
	for (const char *p = body, *e = body + len; (p = memchr(p, '\n', (size_t)(e - p))); p++) {
		if (t->nl + 1 >= cap) {
			cap *= 2;
			t->ls = xreallocarray(t->ls, cap, sizeof(*t->ls));
		}
		t->ls[t->nl++] = (size_t)(p - body) + 1;
	}
	t->ls[t->nl] = len + 1;
}

static void ftext_free(struct ftext *t)
{
	free(t->ls);
}

/* Bytes of line i in orig, without its '\n'. */
static void line_span(const struct ftext *t, size_t i, size_t *a, size_t *b)
{
	*a = t->ls[i];
	*b = t->ls[i + 1] - 1;
	if (*b > t->len)
		*b = t->len;
}

/* Quote depth of original bytes [a, b) and where the text after it starts. */
static int quote_depth(const char *s, size_t a, size_t b, size_t *after)
{
	int q = 0;
	while (a < b && (sp(s[a]) || s[a] == '>')) {
		q += s[a] == '>';
		a++;
	}
	*after = a;
	return q;
}

/* Is line i empty but for quote markers and spaces? Its quote depth in
 * *quote. No folding: the bytes that make a line blank are ASCII. */
static bool line_blank(const struct ftext *t, size_t i, int *quote)
{
	size_t a, b, c;
	line_span(t, i, &a, &b);
	*quote = quote_depth(t->orig, a, b, &c);
	while (c < b && (sp(t->orig[c]) || t->orig[c] == '\r'))
		c++;
	return c == b;
}

/* Every separator, label line and attribution has a ':' or starts with
 * dashes or underscores: other lines need not be folded at all. */
static bool line_candidate(const struct ftext *t, size_t i)
{
	size_t a, b, c;
	line_span(t, i, &a, &b);
	quote_depth(t->orig, a, b, &c);
	if (c < b && (t->orig[c] == '-' || t->orig[c] == '_'))
		return true;
	return b - c <= LINE_MAX_FOLD && memchr(t->orig + c, ':', b - c) != NULL;
}

static void lview_get(const struct ftext *t, size_t i, struct lview *v)
{
	size_t a, b, c;
	memset(v, 0, sizeof(*v));
	line_span(t, i, &a, &b);
	v->base = a;
	v->quote = quote_depth(t->orig, a, b, &c);
	while (b > c && (sp(t->orig[b - 1]) || t->orig[b - 1] == '\r'))
		b--;
	v->blank = b == c;
	if (b - c > LINE_MAX_FOLD)
		b = c;                    /* long: looked at as text without labels */
	text_fold(t->orig + a, b - a, true, &v->f);
	size_t off = 0;
	while (off < v->f.len && v->f.map[off] < c - a)
		off++;
	v->s = v->f.s + off;
	v->len = v->f.len - off;
}

static void lview_free(struct lview *v)
{
	folded_free(&v->f);
}

/* The original bytes for [a, b) of v->s, trimmed of spaces and '*'. */
static char *lview_orig(const struct ftext *t, const struct lview *v, size_t a, size_t b)
{
	size_t off = (size_t)(v->s - v->f.s);
	size_t oa = v->base + v->f.map[off + a], ob = v->base + v->f.map[off + b];
	const char *o = t->orig;
	while (oa < ob && (sp(o[oa]) || o[oa] == '*'))
		oa++;
	while (ob > oa && (sp(o[ob - 1]) || o[ob - 1] == '*' || o[ob - 1] == '\r'))
		ob--;
	return xstrndup(o + oa, ob - oa);
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
	struct lview v;
	/* up to two blank lines may separate the separator from the block */
	for (int skip = 0; skip < 3 && i < t->nl && line_blank(t, i, &b->quote); skip++)
		i++;
	/* real blocks have a handful of labels; the bound keeps a body of
	 * thousands of "From:" lines linear */
	for (size_t n = 0; i < t->nl && n < MAX_BLOCK_LINES; i++, n++) {
		size_t vs;
		lview_get(t, i, &v);
		enum fwd_field f = !v.blank && v.quote == b->quote ? fwd_label_at(v.s, v.len, &vs)
								   : FF_NONE;
		if (f != FF_NONE) {
			b->turkish |= label_is_turkish(v.s, v.len);
			fblock_set(b, f, lview_orig(t, &v, vs, v.len));
		}
		lview_free(&v);
		if (f == FF_NONE)
			break;
	}
	b->body_line = i;
}

/* Yahoo: "Kimden: a <a@b>Kime: c@d Gönderilen: ... Konu: subject" on one
 * line (from `from` in v->s on); a label starts wherever its text follows
 * a non-letter. */
static void block_oneline(const struct ftext *t, const struct lview *v, size_t from,
			  struct fblock *b)
{
	const char *s = v->s;
	size_t pos = from, vstart = 0, len = v->len;
	enum fwd_field cur = FF_NONE;
	while (pos < len) {
		size_t vs;
		enum fwd_field f = FF_NONE;
		if (cur != FF_SUBJECT && (pos == from || !(s[pos - 1] >= 'a' && s[pos - 1] <= 'z')))
			f = fwd_label_at(s + pos, len - pos, &vs);
		if (f == FF_NONE) {
			pos++;
			continue;
		}
		if (cur != FF_NONE)
			fblock_set(b, cur, lview_orig(t, v, vstart, pos));
		b->turkish |= label_is_turkish(s + pos, len - pos);
		cur = f;
		vstart = pos + vs;
		pos = vstart;
	}
	if (cur != FF_NONE)
		fblock_set(b, cur, lview_orig(t, v, vstart, len));
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
	const char *s = t->orig;
	size_t a, b;
	int q;
	while (i < t->nl && line_blank(t, i, &q))    /* leading blank lines */
		i++;
	for (; i < t->nl; i++) {
		if (quote > 0 && !line_blank(t, i, &q) && q < quote)
			break;
		line_span(t, i, &a, &b);
		for (int k = 0; k < quote && a < b; k++) {
			while (a < b && sp(s[a]))
				a++;
			if (a < b && s[a] == '>')
				a++;
			if (a < b && s[a] == ' ')
				a++;
		}
		buf_add(&o, s + a, b - a);
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
		q->filename = xstrdup_opt(p->filename);
		q->charset = xstrdup_opt(p->charset);
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
static bool try_separator(const struct ftext *t, size_t i, const struct lview *v, bool reply,
			  struct found *fd)
{
	size_t rest;
	bool ok = false;
	const struct fwd_sep *r = v->len ? sep_match(v->s, v->len, &rest) : NULL;
	if (r && !(reply && (r->flags & SEP_REPLY))) {
		memset(&fd->b, 0, sizeof(fd->b));
		bool oneline = rest < v->len;
		if (oneline) {
			block_oneline(t, v, rest, &fd->b);
			fd->b.body_line = i + 1;
			fd->b.quote = v->quote;
		} else {
			block_lines(t, i + 1, &fd->b);
		}
		ok = block_ok(&fd->b, false);
		if (!ok)
			fblock_free(&fd->b);
		else
			fd->client = oneline && r->client_oneline ? r->client_oneline
				     : fd->b.turkish && r->client_tr ? r->client_tr : r->client;
	}
	return ok;
}

/* Try line i as a block without a separator (New Outlook, Outlook). */
static bool try_bare(const struct ftext *t, size_t i, const struct lview *v, bool reply,
		     struct found *fd)
{
	size_t vs;
	if (reply || !v->len || fwd_label_at(v->s, v->len, &vs) != FF_FROM)
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

static bool has_tail(const struct lview *v, const char *tail)
{
	size_t n = strlen(tail);
	return v->len > n && memcmp(v->s + v->len - n, tail, n) == 0;
}

/* Outlook 2019 forwards with a reply's attribution and an indented body
 * ("\"A\" <a@b>, 28/10/2021 12:46 tarihinde şunu yazdı:"), so does an
 * English "On <date>, A <a@b> wrote:"; only taken as a forward when the
 * subject says forward. */
static bool try_attribution(const struct ftext *t, size_t i, const struct lview *lv,
			    const struct message *m, struct found *fd)
{
	static const char tr_tail[] = " tarihinde sunu yazdi:", en_tail[] = " wrote:";
	bool tr = has_tail(lv, tr_tail);
	bool en = !tr && lv->len > 10 && memcmp(lv->s, "on ", 3) == 0 && has_tail(lv, en_tail);
	if (!tr && !en)
		return false;
	memset(&fd->b, 0, sizeof(fd->b));
	char *who_when = lview_orig(t, lv, en ? 3 : 0, lv->len - strlen(tr ? tr_tail : en_tail));
	const char *lt = strchr(who_when, '<');
	if (tr) {
		split_who_when(who_when, strlen(who_when), &fd->b);
	} else if (lt) {
		fblock_set(&fd->b, FF_DATE, xstrndup(who_when, (size_t)(lt - who_when)));
		fblock_set(&fd->b, FF_FROM, xstrdup(lt));
	}
	free(who_when);
	if (!fd->b.val[FF_FROM]) {
		fblock_free(&fd->b);
		return false;
	}
	fblock_set(&fd->b, FF_SUBJECT, subject_unprefixed(m->subject));
	fd->b.body_line = i + 1;
	for (size_t j = i + 1; j < t->nl && line_blank(t, j, &fd->b.quote); j++)
		;
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
	for (size_t i = 0; i < t.nl && !hit; i++) {
		struct lview v;
		if (!line_candidate(&t, i))
			continue;
		lview_get(&t, i, &v);
		hit = try_separator(&t, i, &v, reply, &fd) || try_bare(&t, i, &v, reply, &fd) ||
		      (fwd_subject && try_attribution(&t, i, &v, m, &fd));
		lview_free(&v);
	}
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
