/* Unit tests of SMS measuring and fitting (sms_encode.c): part counts at
 * the capacity edges, the extension and Turkish shift tables, UCS-2 with
 * surrogate pairs, ASCII transliteration and truncation. */
#include "testutil.h"

#include "phone.h"

#include <stdlib.h>
#include <string.h>

/* n copies of s. */
static char *rep(const char *s, int n)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < n; i++)
		buf_adds(&b, s);
	return b.p ? buf_steal(&b) : xstrdup("");
}

static char *cat3(const char *a, const char *b, const char *c)
{
	return xasprintf("%s%s%s", a, b, c);
}

struct mcase {
	const char *what;
	char *text;              /* owned */
	enum sms_encoding enc;
	enum sms_encoding want_enc;
	size_t units;
	int segments;
	size_t per_segment;
};

static void check_case(const struct mcase *c)
{
	struct sms_info info;
	char *out = NULL;
	sms_measure(c->text, c->enc, &info, &out);
	if (info.encoding != c->want_enc || info.units != c->units || info.segments != c->segments ||
	    info.per_segment != c->per_segment)
		fail_msg("%s: got enc %d units %zu segments %d per %zu; want enc %d units %zu segments %d per %zu",
			 c->what, info.encoding, info.units, info.segments, info.per_segment,
			 c->want_enc, c->units, c->segments, c->per_segment);
	free(out);
}

static void run_cases(struct mcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		check_case(&cases[i]);
		free(cases[i].text);
	}
}

static void test_ascii_edges(void **state)
{
	(void)state;
	struct mcase cases[] = {
		{ "160 ascii", rep("a", 160), SMS_ENC_GSM7, SMS_ENC_GSM7, 160, 1, 160 },
		{ "161 ascii", rep("a", 161), SMS_ENC_GSM7, SMS_ENC_GSM7, 161, 2, 153 },
		{ "306 ascii", rep("a", 306), SMS_ENC_GSM7, SMS_ENC_GSM7, 306, 2, 153 },
		{ "307 ascii", rep("a", 307), SMS_ENC_GSM7, SMS_ENC_GSM7, 307, 3, 153 },
		/* gsm7-turkish without a Turkish-only letter: no shift UDH */
		{ "160 ascii tr", rep("a", 160), SMS_ENC_GSM7_TR, SMS_ENC_GSM7, 160, 1, 160 },
		{ "161 ascii tr", rep("a", 161), SMS_ENC_GSM7_TR, SMS_ENC_GSM7, 161, 2, 153 },
		{ "empty", xstrdup(""), SMS_ENC_GSM7_TR, SMS_ENC_GSM7, 0, 1, 160 },
		/* Ç Ö Ü ö ü are in the default alphabet, one septet each */
		{ "default Turkish", xstrdup("ÇÖÜöü"), SMS_ENC_GSM7, SMS_ENC_GSM7, 5, 1, 160 },
		/* backtick is in no GSM table */
		{ "backtick", xstrdup("a`b"), SMS_ENC_GSM7, SMS_ENC_UCS2, 3, 1, 70 },
	};
	run_cases(cases, ARRAY_LEN(cases));
}

static void test_extension(void **state)
{
	(void)state;
	char *a158 = rep("a", 158), *a159 = rep("a", 159), *a152 = rep("a", 152);
	struct mcase cases[] = {
		{ "158+{", cat3(a158, "{", ""), SMS_ENC_GSM7, SMS_ENC_GSM7, 160, 1, 160 },
		{ "159+{", cat3(a159, "{", ""), SMS_ENC_GSM7, SMS_ENC_GSM7, 161, 2, 153 },
		{ "158+euro", cat3(a158, "€", ""), SMS_ENC_GSM7, SMS_ENC_GSM7, 160, 1, 160 },
		{ "all ext", xstrdup("{}[]~\\|^€\f"), SMS_ENC_GSM7, SMS_ENC_GSM7, 20, 1, 160 },
		/* 306 septets but the escape pair may not straddle parts 1 and 2 */
		{ "escape at boundary", cat3(a152, "{", a152), SMS_ENC_GSM7, SMS_ENC_GSM7, 306, 3, 153 },
		/* the Turkish table keeps the extension characters */
		{ "tr shift + {", xstrdup("ş{"), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 4, 1, 155 },
	};
	run_cases(cases, ARRAY_LEN(cases));
	free(a158);
	free(a159);
	free(a152);
}

/* 136 characters, 14 of them Turkish-only (ş ı ğ İ): 150 septets. */
#define TR136 "Sayın Ayşe Yılmaz, KAMUSM başvuru bağlantınız geldi. Formu doldurup imzalayın, " \
	      "taahhütnameyi Bilgi İşlem Daire Başkanlığına teslim edin."
/* 152 characters, 15 Turkish-only letters: 167 septets. */
#define TR152 "Sayın Ayşe Yılmaz, e-imza başvurunuz için KAMUSM bağlantısı geldi. Formu doldurup " \
	      "imzalayın ve taahhütnameyi Bilgi İşlem Daire Başkanlığına teslim edin."

static void test_turkish(void **state)
{
	(void)state;
	char *a153 = rep("a", 153), *a148 = rep("a", 148), *a150 = rep("a", 150);
	struct mcase cases[] = {
		{ "TR136 tr", xstrdup(TR136), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 150, 1, 155 },
		{ "TR152 tr", xstrdup(TR152), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 167, 2, 149 },
		/* plain gsm7 has no ş ı ğ İ: the whole text goes UCS-2 */
		{ "TR136 gsm7", xstrdup(TR136), SMS_ENC_GSM7, SMS_ENC_UCS2, 136, 3, 67 },
		{ "TR152 ucs2", xstrdup(TR152), SMS_ENC_UCS2, SMS_ENC_UCS2, 152, 3, 67 },
		/* 155 septets is the single-part edge with the shift UDH */
		{ "153+ş", cat3(a153, "ş", ""), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 155, 1, 155 },
		{ "153+şa", cat3(a153, "ş", "a"), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 156, 2, 149 },
		/* 147 + ı = 149 septets fill part 1, 149 more fill part 2 */
		{ "147+ı+149", cat3(a148 + 1, "ı", a150 + 1), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 298, 2, 149 },
		/* one septet earlier the pair no longer fits part 1: three parts */
		{ "148+ı+148", cat3(a148, "ı", a148), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 298, 3, 149 },
		{ "lowercase ç", xstrdup("ç"), SMS_ENC_GSM7, SMS_ENC_UCS2, 1, 1, 70 },
		{ "lowercase ç tr", xstrdup("ç"), SMS_ENC_GSM7_TR, SMS_ENC_GSM7_TR, 2, 1, 155 },
		/* â is in no GSM table */
		{ "circumflex", xstrdup("hâlâ"), SMS_ENC_GSM7_TR, SMS_ENC_UCS2, 4, 1, 70 },
	};
	run_cases(cases, ARRAY_LEN(cases));
	free(a153);
	free(a148);
	free(a150);
}

static void test_ucs2(void **state)
{
	(void)state;
	char *a69 = rep("a", 69), *a66 = rep("a", 66);
	struct mcase cases[] = {
		{ "70 ucs2", rep("a", 70), SMS_ENC_UCS2, SMS_ENC_UCS2, 70, 1, 70 },
		{ "71 ucs2", rep("a", 71), SMS_ENC_UCS2, SMS_ENC_UCS2, 71, 2, 67 },
		{ "134 ucs2", rep("a", 134), SMS_ENC_UCS2, SMS_ENC_UCS2, 134, 2, 67 },
		{ "135 ucs2", rep("a", 135), SMS_ENC_UCS2, SMS_ENC_UCS2, 135, 3, 67 },
		/* an emoji is a surrogate pair: two units */
		{ "emoji", xstrdup("😀"), SMS_ENC_GSM7_TR, SMS_ENC_UCS2, 2, 1, 70 },
		{ "35 emoji", rep("😀", 35), SMS_ENC_GSM7_TR, SMS_ENC_UCS2, 70, 1, 70 },
		{ "69+emoji", cat3(a69, "😀", ""), SMS_ENC_GSM7, SMS_ENC_UCS2, 71, 2, 67 },
		/* 66 + pair + 66 = 134 units, but the pair may not be split */
		{ "pair at boundary", cat3(a66, "😀", a66), SMS_ENC_UCS2, SMS_ENC_UCS2, 134, 3, 67 },
		/* invalid UTF-8 becomes U+FFFD, which GSM cannot carry */
		{ "invalid utf8", xstrdup("ab\xff"), SMS_ENC_GSM7, SMS_ENC_UCS2, 3, 1, 70 },
	};
	run_cases(cases, ARRAY_LEN(cases));
	free(a69);
	free(a66);
}

static void test_ascii_transliteration(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "İstanbul'da ışık", "Istanbul'da isik" },
		{ "ŞŞ şş ĞĞ ğğ ÇÇ çç ÖÖ öö ÜÜ üü", "SS ss GG gg CC cc OO oo UU uu" },
		{ "Kâğıt “tırnak” – …", "Kagit \"tirnak\" - ..." },
		{ "emoji 😀 and ✓", "emoji ? and ?" },
		{ "GSM kept: é £ @ {x}", "GSM kept: é £ @ {x}" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct sms_info info;
		char *out = NULL;
		sms_measure(cases[i].in, SMS_ENC_ASCII, &info, &out);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(info.encoding, SMS_ENC_GSM7);
		free(out);
	}
}

static void test_fit(void **state)
{
	(void)state;
	struct sms_info info;
	char *out = NULL, *err = NULL;
	char *a500 = rep("a", 500);

	/* fits: the text comes back unchanged */
	assert_int_equal(sms_fit(TR136, SMS_ENC_GSM7_TR, 1, false, &out, &info, &err), 0);
	assert_string_equal(out, TR136);
	free(out);

	/* too long, truncation not allowed */
	assert_int_equal(sms_fit(a500, SMS_ENC_GSM7, 2, false, &out, &info, &err), -1);
	assert_non_null(strstr(err, "max_segments = 2"));
	free(err);
	err = NULL;

	/* truncated: 303 a + "..." = 306 septets in two parts */
	assert_int_equal(sms_fit(a500, SMS_ENC_GSM7, 2, true, &out, &info, &err), 0);
	assert_int_equal(strlen(out), 306);
	assert_true(str_endswith(out, "aaa..."));
	assert_int_equal(info.segments, 2);
	free(out);

	/* UCS-2 text ends with the one-unit "…" */
	char *e100 = rep("ş😀", 100);
	assert_int_equal(sms_fit(e100, SMS_ENC_GSM7_TR, 1, true, &out, &info, &err), 0);
	assert_true(str_endswith(out, "…"));
	assert_int_equal(info.encoding, SMS_ENC_UCS2);
	assert_int_equal(info.segments, 1);
	assert_true(info.units <= 70);
	free(out);
	free(e100);

	/* cutting off the only non-GSM character turns the text back to GSM */
	char *a300e = cat3(a500 + 200, "😀", "");
	assert_int_equal(sms_fit(a300e, SMS_ENC_GSM7_TR, 2, true, &out, &info, &err), 0);
	assert_int_equal(info.encoding, SMS_ENC_GSM7);
	assert_int_equal(strlen(out), 303);
	assert_true(str_endswith(out, "a..."));
	free(out);
	free(a300e);
	free(a500);
}

static void test_fit_word_boundary(void **state)
{
	(void)state;
	struct sms_info info;
	char *out = NULL, *err = NULL;
	char *words = rep("kelime ", 60);   /* 420 characters */
	assert_int_equal(sms_fit(words, SMS_ENC_GSM7_TR, 1, true, &out, &info, &err), 0);
	assert_true(str_endswith(out, "kelime..."));
	assert_int_equal(info.segments, 1);
	assert_true(info.units <= 160);
	assert_true(info.units > 145);
	free(out);

	/* ASCII mode truncates the transliterated text */
	char *tr = rep("şişe ", 80);
	assert_int_equal(sms_fit(tr, SMS_ENC_ASCII, 1, true, &out, &info, &err), 0);
	assert_true(str_startswith(out, "sise sise"));
	assert_true(str_endswith(out, "sise..."));
	assert_int_equal(info.encoding, SMS_ENC_GSM7);
	free(out);
	free(tr);
	free(words);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_edges),
		cmocka_unit_test(test_extension),
		cmocka_unit_test(test_turkish),
		cmocka_unit_test(test_ucs2),
		cmocka_unit_test(test_ascii_transliteration),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_fit_word_boundary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
