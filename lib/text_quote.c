/*
 * text_quote.c: text_strip_quoted() (text.h).
 *
 * A reply's own words are on top; below come an attribution line
 * ("On ... wrote:", "... tarihinde şunu yazdı:", KMail's "... şunları
 * yazmıştı:", Thunderbird's "#1 yazdı:"), a separator ("-----Original
 * Message-----", "-------- Özgün İleti --------", the forward table in
 * forward.c) or an Outlook header block ("From:/Kimden:" and more labels),
 * and the quoted original. Lines are compared folded (text.h).
 */
#include "message_p.h"

#include <stdlib.h>
#include <string.h>

/* Folded endings of attribution lines. */
static const char *const attribution_ends[] = {
	"wrote:", "yazdi:", "yazmisti:", "yazdi :", "writes:",
};

/* Longest attribution line looked at; longer lines are prose. */
#define ATTR_MAX 300
/* An attribution's last line alone ("tarihinde şunu yazdı:") when wrapped. */
#define ATTR_TAIL_MAX 40

struct qline {
	size_t a, b;              /* folded range, trimmed */
};

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t l = strlen(suf);
	return n >= l && memcmp(s + n - l, suf, l) == 0;
}

static bool is_attribution(const char *s, size_t n)
{
	if (n == 0 || n > ATTR_MAX)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(attribution_ends); i++)
		if (ends_with(s, n, attribution_ends[i]))
			return true;
	return false;
}

static struct qline qline_get(const struct folded *f, size_t a, size_t b)
{
	while (a < b && (f->s[a] == ' ' || f->s[a] == '\t'))
		a++;
	while (b > a && (f->s[b - 1] == ' ' || f->s[b - 1] == '\t' || f->s[b - 1] == '\r'))
		b--;
	return (struct qline){ a, b };
}

/* A "From:" / "Kimden:" line followed within a few lines by another label. */
static bool is_header_block(const struct folded *f, const struct qline *ln, size_t i, size_t n)
{
	size_t vs;
	if (fwd_label_at(f->s + ln[i].a, ln[i].b - ln[i].a, &vs) != FF_FROM)
		return false;
	for (size_t j = i + 1; j < n && j <= i + 4; j++) {
		size_t len = ln[j].b - ln[j].a;
		if (len && fwd_label_at(f->s + ln[j].a, len, &vs) != FF_NONE)
			return true;
	}
	return false;
}

/* Where the quoted tail starts (a line index), or n. */
static size_t cut_line(const struct folded *f, const struct qline *ln, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = f->s + ln[i].a;
		size_t len = ln[i].b - ln[i].a;
		if (len == 0 || s[0] == '>')
			continue;
		if (fwd_separator_client(s, len) || is_header_block(f, ln, i, n))
			return i;
		if (is_attribution(s, len)) {
			/* a wrapped attribution starts on the line above */
			if (len <= ATTR_TAIL_MAX && i > 0 && ln[i - 1].b > ln[i - 1].a &&
			    f->s[ln[i - 1].a] != '>')
				return i - 1;
			return i;
		}
	}
	return n;
}

char *text_strip_quoted(const char *body)
{
	struct folded f;
	size_t blen = body ? strlen(body) : 0;
	text_fold(body ? body : "", blen, true, &f);

	size_t n = 0, cap = 64;
	struct qline *ln = xreallocarray(NULL, cap, sizeof(*ln));
	size_t *raw = xreallocarray(NULL, cap, sizeof(*raw));   /* untrimmed starts */
	for (size_t a = 0; a <= f.len; ) {
		const char *nl = memchr(f.s + a, '\n', f.len - a);
		size_t b = nl ? (size_t)(nl - f.s) : f.len;
		if (n + 1 >= cap) {
			cap *= 2;
			ln = xreallocarray(ln, cap, sizeof(*ln));
			raw = xreallocarray(raw, cap, sizeof(*raw));
		}
		raw[n] = a;
		ln[n++] = qline_get(&f, a, b);
		a = b + 1;
	}
	size_t cut = cut_line(&f, ln, n);

	struct buf o = BUF_INIT;
	for (size_t i = 0; i < cut; i++) {
		if (ln[i].b > ln[i].a && f.s[ln[i].a] == '>')
			continue;
		size_t b = ln[i].b;
		size_t oa = f.map[raw[i]], ob = f.map[b];
		buf_add(&o, body + oa, ob - oa);
		buf_addc(&o, '\n');
	}
	while (o.len > 0 && (o.p[o.len - 1] == '\n' || o.p[o.len - 1] == ' ' ||
			     o.p[o.len - 1] == '\t' || o.p[o.len - 1] == '\r'))
		o.len--;
	if (o.p)
		o.p[o.len] = '\0';
	free(ln);
	free(raw);
	folded_free(&f);
	return buf_steal(&o);
}
