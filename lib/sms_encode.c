/*
 * sms_encode.c: how long an SMS is, and how it is cut (see phone.h).
 *
 * Character sets (3GPP TS 23.038):
 * - the GSM 7-bit default alphabet (6.2.1): one septet per character;
 * - its extension table (6.2.1.1), reached through the escape septet
 *   0x1B: two septets per character ({ } [ ] ~ \ | ^ € and form feed);
 * - the Turkish national language single shift table (A.2.1), which
 *   replaces the extension table when the UDH names it: it holds every
 *   character of the extension table plus Ğ İ Ş ç ğ ı ş, two septets each.
 *   (The default alphabet already has Ç Ö Ü ö ü; it has no ç, only Ç.)
 * - UCS-2 (UTF-16 on the wire): one unit per BMP character, two for a
 *   character outside it (a surrogate pair).
 *
 * Capacities. The user data of one SMS is 140 octets = 1120 bits. A user
 * data header (UDH) of h octets (its length octet included) takes 8h bits
 * and, with 7-bit text, the text starts at the next septet boundary, so
 * a part holds floor((1120 - 8h) / 7) septets:
 *   no UDH                                   h = 0:  160 septets
 *   concatenation (IEI 00, 8-bit ref)        h = 6:  153
 *   single shift alone (IEI 24, 3 octets)    h = 4:  155
 *   concatenation + single shift             h = 9:  149  (72 bits -> 11
 *                                                      septets used)
 * (phone.h once said 150 for the last case; 149 is what 9 octets leave.)
 * UCS-2: (140 - h) / 2 units: 70 single, 67 per concatenated part.
 *
 * Counting parts: a two-septet escape pair and a surrogate pair are never
 * split across two parts (handsets and SMSCs refuse or garble them), so
 * parts are filled greedily character by character, not by dividing the
 * total.
 */
#include "phone.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

enum {
	GSM_SINGLE = 160, GSM_MULTI = 153,
	TR_SINGLE = 155, TR_MULTI = 149,
	UCS2_SINGLE = 70, UCS2_MULTI = 67,
};

/* The default alphabet, by septet value. */
static const uint16_t gsm_default[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
	0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
	0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
	0x03A3, 0x0398, 0x039E, 0xFFFF /* escape */, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
	0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
	0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
	0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
	0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
	0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,
	0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
	0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
	0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
	0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* The default extension table (6.2.1.1); also all in the Turkish one. */
static const uint16_t gsm_extension[] = {
	0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D, 0x007C, 0x20AC,
};

/* What the Turkish single shift table (A.2.1) adds to the extension table. */
static const uint16_t gsm_turkish_shift[] = {
	0x011E /* Ğ */, 0x0130 /* İ */, 0x015E /* Ş */, 0x00E7 /* ç */,
	0x011F /* ğ */, 0x0131 /* ı */, 0x015F /* ş */,
};

/* ASCII stand-ins for SMS_ENC_ASCII. Turkish letters first; a few
 * typographic marks that templates tend to contain after them. */
static const struct { uint32_t cp; const char *ascii; } translit[] = {
	{ 0x00E7, "c" }, { 0x00C7, "C" }, { 0x011F, "g" }, { 0x011E, "G" },
	{ 0x0131, "i" }, { 0x0130, "I" }, { 0x00F6, "o" }, { 0x00D6, "O" },
	{ 0x015F, "s" }, { 0x015E, "S" }, { 0x00FC, "u" }, { 0x00DC, "U" },
	{ 0x00E2, "a" }, { 0x00C2, "A" }, { 0x00EE, "i" }, { 0x00CE, "I" },
	{ 0x00FB, "u" }, { 0x00DB, "U" },
	{ 0x2018, "'" }, { 0x2019, "'" }, { 0x201C, "\"" }, { 0x201D, "\"" },
	{ 0x2013, "-" }, { 0x2014, "-" }, { 0x2026, "..." }, { 0x00A0, " " },
};

static bool in_list(const uint16_t *list, size_t n, uint32_t cp)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == cp)
			return true;
	return false;
}

/* Septets a character costs: 1 (default alphabet), 2 (through the
 * extension or Turkish shift table), or 0 if it cannot be sent as GSM. */
static int gsm_cost(uint32_t cp, bool turkish)
{
	if (cp < 0xFFFF) {
		for (size_t i = 0; i < ARRAY_LEN(gsm_default); i++)
			if (gsm_default[i] == cp)
				return 1;
	}
	if (in_list(gsm_extension, ARRAY_LEN(gsm_extension), cp))
		return 2;
	if (turkish && in_list(gsm_turkish_shift, ARRAY_LEN(gsm_turkish_shift), cp))
		return 2;
	return 0;
}

/* A text as code points (invalid UTF-8 already replaced). */
struct cps {
	uint32_t *v;
	size_t n;
};

static void cps_from_utf8(const char *text, struct cps *out)
{
	size_t len = strlen(text);
	out->v = xcalloc(len + 1, sizeof(uint32_t));
	out->n = 0;
	const char *p = text, *end = text + len;
	while (p < end)
		out->v[out->n++] = utf8_next(&p, end);
}

static char *cps_to_utf8(const uint32_t *v, size_t n)
{
	struct buf b = BUF_INIT;
	buf_reserve(&b, n + 1);
	for (size_t i = 0; i < n; i++)
		utf8_put(&b, v[i]);
	if (b.p == NULL)
		return xstrdup("");
	return buf_steal(&b);
}

/* SMS_ENC_ASCII: replace Turkish letters and typographic marks by ASCII,
 * anything else that GSM cannot carry by '?'. */
static void transliterate(struct cps *t)
{
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < t->n; i++) {
		uint32_t cp = t->v[i];
		const char *rep = NULL;
		for (size_t k = 0; k < ARRAY_LEN(translit) && rep == NULL; k++)
			if (translit[k].cp == cp)
				rep = translit[k].ascii;
		if (rep == NULL && gsm_cost(cp, false) == 0)
			rep = "?";
		if (rep == NULL)
			utf8_put(&out, cp);
		else
			buf_adds(&out, rep);
	}
	free(t->v);
	char *s = out.p ? buf_steal(&out) : xstrdup("");
	cps_from_utf8(s, t);
	free(s);
}

/* Cost of each character under an encoding (septets or UTF-16 units). */
static int unit_cost(uint32_t cp, enum sms_encoding enc)
{
	if (enc == SMS_ENC_UCS2)
		return cp > 0xFFFF ? 2 : 1;
	return gsm_cost(cp, enc == SMS_ENC_GSM7_TR);
}

/* Parts needed when filling greedily; never splits one character. */
static int count_parts(const struct cps *t, enum sms_encoding enc, size_t single, size_t multi,
		       size_t *units)
{
	size_t total = 0;
	for (size_t i = 0; i < t->n; i++)
		total += (size_t)unit_cost(t->v[i], enc);
	*units = total;
	if (total <= single)
		return 1;
	int parts = 1;
	size_t cur = 0;
	for (size_t i = 0; i < t->n; i++) {
		size_t c = (size_t)unit_cost(t->v[i], enc);
		if (cur + c > multi) {
			parts++;
			cur = 0;
		}
		cur += c;
	}
	return parts;
}

/* Which encoding the text actually needs, given the configured one. */
static enum sms_encoding pick_encoding(const struct cps *t, enum sms_encoding want)
{
	if (want == SMS_ENC_UCS2)
		return SMS_ENC_UCS2;
	bool need_shift = false;
	for (size_t i = 0; i < t->n; i++) {
		uint32_t cp = t->v[i];
		if (gsm_cost(cp, false) > 0)
			continue;
		if (want == SMS_ENC_GSM7_TR && gsm_cost(cp, true) > 0) {
			need_shift = true;
			continue;
		}
		return SMS_ENC_UCS2;
	}
	/* Without a Turkish-only letter the shift table's UDH would only
	 * cost space: send plain GSM. */
	return need_shift ? SMS_ENC_GSM7_TR : SMS_ENC_GSM7;
}

static void measure_cps(const struct cps *t, enum sms_encoding want, struct sms_info *info)
{
	enum sms_encoding enc = pick_encoding(t, want);
	size_t single, multi;
	switch (enc) {
	case SMS_ENC_GSM7_TR:
		single = TR_SINGLE;
		multi = TR_MULTI;
		break;
	case SMS_ENC_UCS2:
		single = UCS2_SINGLE;
		multi = UCS2_MULTI;
		break;
	default:
		single = GSM_SINGLE;
		multi = GSM_MULTI;
		break;
	}
	info->encoding = enc;
	info->segments = count_parts(t, enc, single, multi, &info->units);
	info->per_segment = info->segments == 1 ? single : multi;
}

void sms_measure(const char *text, enum sms_encoding enc, struct sms_info *info, char **out_text)
{
	struct cps t;
	cps_from_utf8(text ? text : "", &t);
	if (enc == SMS_ENC_ASCII)
		transliterate(&t);
	measure_cps(&t, enc, info);
	if (out_text)
		*out_text = cps_to_utf8(t.v, t.n);
	free(t.v);
}

static bool is_space(uint32_t cp)
{
	return cp == ' ' || cp == '\n' || cp == '\r' || cp == '\t' || cp == 0xA0;
}

/* The first k characters of t plus an ellipsis, as a new text. Trailing
 * space before the ellipsis is dropped. */
static void prefix_with_ellipsis(const struct cps *t, size_t k, bool unicode_ellipsis,
				 struct cps *out)
{
	while (k > 0 && is_space(t->v[k - 1]))
		k--;
	out->v = xcalloc(k + 4, sizeof(uint32_t));
	memcpy(out->v, t->v, k * sizeof(uint32_t));
	out->n = k;
	if (unicode_ellipsis) {
		out->v[out->n++] = 0x2026;
	} else {
		for (int i = 0; i < 3; i++)
			out->v[out->n++] = '.';
	}
}

/* The first k characters plus an ellipsis, measured: "..." when the
 * result is GSM, "…" (one unit, not a GSM character) when it is UCS-2. */
static void candidate(const struct cps *t, size_t k, enum sms_encoding enc, struct cps *cand,
		      struct sms_info *info)
{
	prefix_with_ellipsis(t, k, false, cand);
	measure_cps(cand, enc, info);
	if (info->encoding == SMS_ENC_UCS2) {
		free(cand->v);
		prefix_with_ellipsis(t, k, true, cand);
		measure_cps(cand, enc, info);
	}
}

/* Longest prefix (in characters) that fits with its ellipsis; prefers to
 * cut at a word boundary when one is within the last 15 characters. */
static void truncate_fit(const struct cps *t, enum sms_encoding enc, int max_segments,
			 struct cps *out, struct sms_info *info)
{
	/* Every character costs at least one unit: no longer prefix can fit. */
	size_t k = t->n;
	if (k > (size_t)max_segments * GSM_SINGLE)
		k = (size_t)max_segments * GSM_SINGLE;
	for (;; k--) {
		candidate(t, k, enc, out, info);
		if (info->segments <= max_segments || k == 0)
			break;
		free(out->v);
	}
	size_t cut = k;
	while (cut > 0 && k - cut < 15 && !is_space(t->v[cut - 1]))
		cut--;
	if (cut > 0 && cut < k && is_space(t->v[cut - 1])) {
		free(out->v);
		candidate(t, cut, enc, out, info);
	}
}

static const char *enc_name(enum sms_encoding e)
{
	static const char *const names[] = { "gsm7-turkish", "gsm7", "ucs2", "ascii" };
	return (unsigned)e < ARRAY_LEN(names) ? names[e] : "?";
}

int sms_fit(const char *text, enum sms_encoding enc, int max_segments, bool truncate,
	    char **out, struct sms_info *info, char **err)
{
	struct cps t;
	cps_from_utf8(text ? text : "", &t);
	if (enc == SMS_ENC_ASCII)
		transliterate(&t);
	measure_cps(&t, enc, info);
	if (info->segments <= max_segments) {
		*out = cps_to_utf8(t.v, t.n);
		free(t.v);
		return 0;
	}
	if (!truncate) {
		seterr(err, "text needs %d SMS parts (%zu %s at %s), more than max_segments = %d, "
		       "and truncate is off", info->segments, info->units,
		       info->encoding == SMS_ENC_UCS2 ? "UTF-16 units" : "septets",
		       enc_name(info->encoding), max_segments);
		free(t.v);
		return -1;
	}
	struct cps fitted;
	truncate_fit(&t, enc, max_segments, &fitted, info);
	*out = cps_to_utf8(fitted.v, fitted.n);
	free(fitted.v);
	free(t.v);
	return 0;
}
