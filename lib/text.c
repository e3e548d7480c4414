/*
 * text.c: folding, charset conversion and small UTF-8 tools (text.h).
 * HTML to text lives in text_html.c, reply stripping in text_quote.c.
 */
#include "text.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---- */

uint32_t utf8_next(const char **pp, const char *end)
{
	const unsigned char *p = (const unsigned char *)*pp;
	const unsigned char *e = (const unsigned char *)end;
	uint32_t cp, min;
	int n;

	if (p[0] < 0x80) {
		*pp += 1;
		return p[0];
	}
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 1; cp = p[0] & 0x1F; min = 0x80;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 2; cp = p[0] & 0x0F; min = 0x800;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 3; cp = p[0] & 0x07; min = 0x10000;
	} else {
		*pp += 1;
		return 0xFFFD;
	}
	if (e - p <= n) {
		*pp += 1;
		return 0xFFFD;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			*pp += 1;
			return 0xFFFD;
		}
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
		*pp += 1;
		return 0xFFFD;
	}
	*pp += n + 1;
	return cp;
}

/* Length of the valid sequence at p, or 0 if the bytes there are not one. */
static size_t utf8_seqlen(const char *p, const char *end)
{
	const char *q = p;
	uint32_t cp = utf8_next(&q, end);
	if (cp == 0xFFFD && !(q - p == 3 && (unsigned char)p[0] == 0xEF))
		return 0;
	return (size_t)(q - p);
}

bool utf8_valid(const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	while (p < end) {
		if ((unsigned char)*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seqlen(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

size_t utf8_len(const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	size_t n = 0;
	while (p < end) {
		utf8_next(&p, end);
		n++;
	}
	return n;
}

void utf8_put(struct buf *b, uint32_t cp)
{
	char o[4];
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		buf_add(b, o, 2);
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		buf_add(b, o, 3);
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		buf_add(b, o, 4);
	}
}

/* ---- folding ---- */

static bool isalpha_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The letters that fold to ASCII; everything else non-ASCII is copied. */
static const struct {
	uint32_t cp;
	char to;
} fold_map[] = {
	{ 0x00C2, 'a' }, { 0x00E2, 'a' },   /* Â â */
	{ 0x00C7, 'c' }, { 0x00E7, 'c' },   /* Ç ç */
	{ 0x00CE, 'i' }, { 0x00EE, 'i' },   /* Î î */
	{ 0x00D6, 'o' }, { 0x00F6, 'o' },   /* Ö ö */
	{ 0x00DB, 'u' }, { 0x00FB, 'u' },   /* Û û */
	{ 0x00DC, 'u' }, { 0x00FC, 'u' },   /* Ü ü */
	{ 0x011E, 'g' }, { 0x011F, 'g' },   /* Ğ ğ */
	{ 0x0130, 'i' }, { 0x0131, 'i' },   /* İ ı */
	{ 0x015E, 's' }, { 0x015F, 's' },   /* Ş ş */
};

static char fold_cp(uint32_t cp)
{
	for (size_t i = 0; i < ARRAY_LEN(fold_map); i++)
		if (fold_map[i].cp == cp)
			return fold_map[i].to;
	return 0;
}

/* Combining marks that decomposed (NFD) Turkish text uses: circumflex,
 * breve, dot above, diaeresis, cedilla. Dropped after a letter so that
 * NFD and NFC spellings fold alike. */
static bool is_turkish_mark(uint32_t cp)
{
	return cp == 0x0302 || cp == 0x0306 || cp == 0x0307 || cp == 0x0308 || cp == 0x0327;
}

/* Folding never makes text longer (a two-byte letter becomes one byte,
 * everything else is copied), so the output and map are sized up front. */
void text_fold(const char *in, size_t len, bool want_map, struct folded *out)
{
	char *o = xmalloc(len + 1);
	size_t *map = want_map ? xreallocarray(NULL, len + 1, sizeof(*map)) : NULL;
	const char *p = in, *end = in + len;
	size_t n = 0;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		size_t at = (size_t)(p - in);
		if (c < 0x80) {
			if (map)
				map[n] = at;
			o[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			p++;
			continue;
		}
		const char *q = p;
		uint32_t cp = utf8_next(&q, end);
		char f = fold_cp(cp);
		if (f) {
			if (map)
				map[n] = at;
			o[n++] = f;
		} else if (!(is_turkish_mark(cp) && n > 0 && isalpha_ascii(o[n - 1]))) {
			for (const char *r = p; r < q; r++) {
				if (map)
					map[n] = (size_t)(r - in);
				o[n++] = *r;
			}
		}   /* else a combining mark: the letter before it stands for it */
		p = q;
	}
	o[n] = '\0';
	if (map)
		map[n] = len;
	out->s = o;
	out->len = n;
	out->map = map;
}

void folded_free(struct folded *f)
{
	if (!f)
		return;
	free(f->s);
	free(f->map);
	f->s = NULL;
	f->map = NULL;
	f->len = 0;
}

char *text_fold_str(const char *s)
{
	struct folded f;
	text_fold(s ? s : "", s ? strlen(s) : 0, false, &f);
	return f.s;
}

/* ---- charsets ---- */

/* windows-1254, 0x80-0xFF. ISO-8859-9 is read with it too: the two agree
 * from 0xA0 up, and mail labelled ISO-8859-9 that uses 0x80-0x9F means
 * windows-1254's quotes and dashes, not C1 controls (browsers do the
 * same, per the WHATWG encoding standard). Undefined bytes: U+FFFD. */
static const uint16_t cp1254_high[128] = {
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0xFFFD, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0xFFFD, 0x0178,
	0x00A0, 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7,
	0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x00AF,
	0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x00B4, 0x00B5, 0x00B6, 0x00B7,
	0x00B8, 0x00B9, 0x00BA, 0x00BB, 0x00BC, 0x00BD, 0x00BE, 0x00BF,
	0x00C0, 0x00C1, 0x00C2, 0x00C3, 0x00C4, 0x00C5, 0x00C6, 0x00C7,
	0x00C8, 0x00C9, 0x00CA, 0x00CB, 0x00CC, 0x00CD, 0x00CE, 0x00CF,
	0x011E, 0x00D1, 0x00D2, 0x00D3, 0x00D4, 0x00D5, 0x00D6, 0x00D7,
	0x00D8, 0x00D9, 0x00DA, 0x00DB, 0x00DC, 0x0130, 0x015E, 0x00DF,
	0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7,
	0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF,
	0x011F, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x00F7,
	0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x0131, 0x015F, 0x00FF,
};

/* Copy the run of ASCII bytes other than NUL at p; returns where it
 * stopped (end, a NUL or a byte from 0x80 up). */
static const char *ascii_run(struct buf *o, const char *p, const char *end)
{
	const char *run = p;
	while (p < end && (unsigned char)*p < 0x80 && *p != '\0')
		p++;
	buf_add(o, run, (size_t)(p - run));
	return p;
}

/* The Turkish charsets are the common case: a table, not iconv. */
static void cp1254_to_utf8(struct buf *o, const char *in, size_t len)
{
	const char *p = in, *end = in + len;
	while ((p = ascii_run(o, p, end)) < end) {
		if (*p != '\0')
			utf8_put(o, cp1254_high[(unsigned char)*p - 0x80]);
		p++;
	}
}

/* CS_TURKISH: windows-1254 and ISO-8859-9 (cp1254_to_utf8); CS_LATIN: an
 * ASCII superset iconv converts (pure ASCII input needs no conversion);
 * CS_ICONV: any other name iconv may know (UTF-16, ...). */
enum cs_kind { CS_UTF8, CS_ASCII, CS_TURKISH, CS_LATIN, CS_ICONV, CS_UNKNOWN };

/* Aliases we normalise ourselves; anything else is tried with iconv. */
static const struct {
	const char *name;
	enum cs_kind kind;
	const char *iconv_name;
} cs_alias[] = {
	{ "utf-8", CS_UTF8, NULL },
	{ "utf8", CS_UTF8, NULL },
	{ "unicode-1-1-utf-8", CS_UTF8, NULL },
	{ "us-ascii", CS_ASCII, NULL },
	{ "ascii", CS_ASCII, NULL },
	{ "ansi_x3.4-1968", CS_ASCII, NULL },
	{ "iso-8859-9", CS_TURKISH, NULL },
	{ "iso8859-9", CS_TURKISH, NULL },
	{ "iso_8859-9", CS_TURKISH, NULL },
	{ "iso-8859-9:1989", CS_TURKISH, NULL },
	{ "latin5", CS_TURKISH, NULL },
	{ "l5", CS_TURKISH, NULL },
	{ "iso-ir-148", CS_TURKISH, NULL },
	{ "csisolatin5", CS_TURKISH, NULL },
	{ "turkish", CS_TURKISH, NULL },
	{ "windows-1254", CS_TURKISH, NULL },
	{ "cp1254", CS_TURKISH, NULL },
	{ "x-cp1254", CS_TURKISH, NULL },
	{ "win-1254", CS_TURKISH, NULL },
	{ "ms-turk", CS_TURKISH, NULL },
	{ "iso-8859-1", CS_LATIN, "ISO-8859-1" },
	{ "latin1", CS_LATIN, "ISO-8859-1" },
	{ "windows-1252", CS_LATIN, "WINDOWS-1252" },
	{ "cp1252", CS_LATIN, "WINDOWS-1252" },
	{ "x-mac-turkish", CS_LATIN, "MACTURKISH" },
	{ "ks_c_5601-1987", CS_LATIN, "CP949" },
	{ "gb2312", CS_LATIN, "GBK" },
};

/* Lowercased, trimmed, unquoted charset name into out (bounded). */
static void cs_norm(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	while (*in == ' ' || *in == '\t' || *in == '"' || *in == '\'')
		in++;
	for (; *in && n + 1 < outlen; in++) {
		char c = *in;
		if (c == '"' || c == '\'' || c == ' ' || c == '\t' || c == ';')
			break;
		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
}

/* Copy UTF-8 bytes, replacing invalid sequences and dropping NULs. */
static void utf8_clean(struct buf *o, const char *in, size_t len)
{
	const char *p = in, *end = in + len;
	while ((p = ascii_run(o, p, end)) < end) {
		if (*p == '\0') {
			p++;
			continue;
		}
		size_t n = utf8_seqlen(p, end);
		if (n == 0) {
			utf8_put(o, 0xFFFD);
			p++;
		} else {
			buf_add(o, p, n);
			p += n;
		}
	}
}

/* Convert with iconv; invalid input bytes become U+FFFD, one per byte.
 * Returns false if iconv does not know the charset. */
static bool iconv_to_utf8(struct buf *o, const char *cs, const char *in, size_t len)
{
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return false;
	char tmp[4096];
	char *ip = (char *)in;
	size_t il = len;
	while (il > 0) {
		char *op = tmp;
		size_t ol = sizeof(tmp);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int e = errno;
		for (char *q = tmp; q < op; ) {       /* NULs are dropped */
			char *z = memchr(q, '\0', (size_t)(op - q));
			char *stop = z ? z : op;
			buf_add(o, q, (size_t)(stop - q));
			q = z ? z + 1 : op;
		}
		if (r != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated at the end): skip one byte. */
		utf8_put(o, 0xFFFD);
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	iconv_close(cd);
	return true;
}

static bool all_ascii(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)in[i] >= 0x80)
			return false;
	return true;
}

static enum cs_kind cs_lookup(const char *name, const char **iconv_name)
{
	for (size_t i = 0; i < ARRAY_LEN(cs_alias); i++)
		if (strcmp(cs_alias[i].name, name) == 0) {
			*iconv_name = cs_alias[i].iconv_name;
			return cs_alias[i].kind;
		}
	*iconv_name = name;
	return name[0] ? CS_ICONV : CS_UNKNOWN;
}

/* Undeclared or unusable charset: keep valid UTF-8, else windows-1254.
 * Pure ASCII needs no guess, so it does not count as a fallback. */
static void guess_to_utf8(struct buf *o, const char *in, size_t len, bool *fallback)
{
	if (all_ascii(in, len)) {
		utf8_clean(o, in, len);
		return;
	}
	*fallback = true;
	if (utf8_valid(in, len))
		utf8_clean(o, in, len);
	else
		cp1254_to_utf8(o, in, len);
}

char *text_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen, bool *fallback)
{
	struct buf o = BUF_INIT;
	char name[64];
	bool fb = false;
	const char *iname = NULL;

	buf_reserve(&o, len + len / 8 + 1);
	o.p[0] = '\0';
	cs_norm(charset ? charset : "", name, sizeof(name));
	switch (cs_lookup(name, &iname)) {
	case CS_UTF8:
		utf8_clean(&o, in, len);
		break;
	case CS_ASCII:
		/* Declared ASCII with 8-bit bytes in it is a mislabel. */
		guess_to_utf8(&o, in, len, &fb);
		break;
	case CS_TURKISH:
		cp1254_to_utf8(&o, in, len);
		break;
	case CS_LATIN:
		if (all_ascii(in, len))
			utf8_clean(&o, in, len);
		else
			iconv_to_utf8(&o, iname, in, len);
		break;
	case CS_ICONV:
		if (!iconv_to_utf8(&o, iname, in, len)) {
			guess_to_utf8(&o, in, len, &fb);
			fb = true;    /* the declared name was unknown */
		}
		break;
	case CS_UNKNOWN:
		guess_to_utf8(&o, in, len, &fb);
		break;
	}
	if (outlen)
		*outlen = o.len;
	if (fallback)
		*fallback = fb;
	if (!o.p)
		return xstrdup("");
	return buf_steal(&o);
}

/* ---- small tools ---- */

char *text_squeeze(const char *s)
{
	struct buf o = BUF_INIT;
	bool space = false;
	buf_reserve(&o, strlen(s) + 1);
	o.p[0] = '\0';
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v') {
			space = o.len > 0;
			continue;
		}
		if (space)
			buf_addc(&o, ' ');
		space = false;
		buf_addc(&o, *s);
	}
	return buf_steal(&o);
}
