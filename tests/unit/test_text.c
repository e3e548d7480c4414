/* Unit tests of text.h: folding (with its byte map), charsets, HTML to
 * text, quoted-reply stripping. Every sample text is synthetic. */
#include "testutil.h"

#include "text.h"

#include <stdlib.h>
#include <string.h>

/* ---- folding ---- */

static const struct {
	const char *in, *want;
} fold_cases[] = {
	{ "TESLİM", "teslim" },
	{ "Teslim", "teslim" },
	{ "teslım", "teslim" },
	{ "IŞIK ışık Işık", "isik isik isik" },
	{ "İstanbul ISTANBUL ıstanbul", "istanbul istanbul istanbul" },
	{ "Başvuru BAŞVURU başvuru", "basvuru basvuru basvuru" },
	{ "ĞÜŞİÖÇ ğüşıöç", "gusioc gusioc" },
	{ "Âdil âlem Îmân Ûmit ûmit", "adil alem iman umit umit" },
	{ "Erişim Parolası", "erisim parolasi" },
	{ "e-İmza: ONAY", "e-imza: onay" },
	/* decomposed (NFD) letters fold like composed ones */
	{ "s\xcc\xa7" "ifre I\xcc\x87" "ptal", "sifre iptal" },
	/* other scripts and symbols are copied */
	{ "€ 5 — ß é", "€ 5 — ß é" },
	{ "", "" },
};

static void test_fold(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fold_cases); i++) {
		char *f = text_fold_str(fold_cases[i].in);
		assert_string_equal(f, fold_cases[i].want);
		free(f);
	}
}

/* Each folded byte maps back to the original byte it came from, so a
 * match in folded text can be cut from the original. */
static void test_fold_map(void **state)
{
	(void)state;
	const char *in = "Ak İŞ: ÇağrI x";
	struct folded f;
	text_fold(in, strlen(in), true, &f);
	assert_string_equal(f.s, "ak is: cagri x");
	assert_non_null(f.map);
	assert_int_equal(f.map[f.len], strlen(in));
	/* "is" starts at the İ (byte 3) and ends before ':' */
	const char *hit = strstr(f.s, "is");
	size_t a = f.map[hit - f.s], b = f.map[hit - f.s + 2];
	assert_int_equal(a, 3);
	assert_memory_equal(in + a, "İŞ", b - a);
	/* "cagri" is cut back to "Çağr" + "I" */
	hit = strstr(f.s, "cagri");
	a = f.map[hit - f.s];
	b = f.map[hit - f.s + 5];
	assert_int_equal(b - a, strlen("ÇağrI"));
	assert_memory_equal(in + a, "ÇağrI", b - a);
	/* the map is monotonic */
	for (size_t i = 1; i <= f.len; i++)
		assert_true(f.map[i] >= f.map[i - 1]);
	folded_free(&f);

	/* invalid bytes are copied and mapped one to one */
	text_fold("a\xffZ", 3, true, &f);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.s, "a\xffz", 3);
	assert_int_equal(f.map[1], 1);
	assert_int_equal(f.map[3], 3);
	folded_free(&f);
}

/* ---- charsets ---- */

static const struct {
	const char *charset;
	const char *in;
	size_t len;
	const char *want;
	bool fallback;
} cs_cases[] = {
	{ "utf-8", "Şifre ğüİı", 0, "Şifre ğüİı", false },
	{ "UTF8", "abc", 0, "abc", false },
	/* ISO-8859-9: Ğ=D0 ğ=F0 İ=DD ı=FD Ş=DE ş=FE */
	{ "iso-8859-9", "\xd0\xf0\xdd\xfd\xde\xfe", 0, "ĞğİıŞş", false },
	{ "latin5", "\xde" "ifre", 0, "Şifre", false },
	/* ISO-8859-9 labels with windows-1254 quotes in 0x80-0x9F (a common
	 * mislabel): read as windows-1254, as browsers do */
	{ "iso-8859-9", "\x93" "a\x94 \x96", 0, "“a” –", false },
	{ "\"ISO-8859-9\"", "\xfe", 0, "ş", false },
	/* windows-1254 with its 0x80-0x9F range: € ‚ „ … “ ” – — ™ Š Œ */
	{ "windows-1254", "\x80\x82\x84\x85\x93\x94\x96\x97\x99\x8a\x8c", 0,
	  "€‚„…“”–—™ŠŒ", false },
	{ "cp1254", "\xe7\xf6\xfc", 0, "çöü", false },
	{ "x-cp1254", "\xfd", 0, "ı", false },
	/* undefined in windows-1254: U+FFFD */
	{ "windows-1254", "a\x81z", 0, "a\xef\xbf\xbdz", false },
	/* unknown or missing charset: UTF-8 kept, else windows-1254 */
	{ "x-unknown-cs", "Ça\xc4\x9f", 0, "Çağ", true },
	{ "x-unknown-cs", "\xc7" "a\xf0", 0, "Çağ", true },
	{ NULL, "\xdd" "stanbul", 0, "İstanbul", true },
	{ "", "plain ascii", 0, "plain ascii", false },
	/* declared ASCII but 8-bit inside: a mislabel, guessed */
	{ "us-ascii", "\xfe", 0, "ş", true },
	/* invalid UTF-8 in declared UTF-8 becomes U+FFFD */
	{ "utf-8", "a\xc3(b\xff", 0, "a\xef\xbf\xbd(b\xef\xbf\xbd", false },
	/* NUL bytes are dropped */
	{ "utf-8", "a\0b", 3, "ab", false },
	{ "iso-8859-9", "a\0\xfe", 3, "aş", false },
	/* a charset iconv knows although we list no alias */
	{ "iso-8859-2", "\xb9", 0, "š", false },
	{ "utf-16le", "a\0b\0", 4, "ab", false },
};

static void test_charsets(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cs_cases); i++) {
		size_t len = cs_cases[i].len ? cs_cases[i].len : strlen(cs_cases[i].in);
		size_t outlen = 99;
		bool fb = !cs_cases[i].fallback;
		char *u = text_to_utf8(cs_cases[i].charset, cs_cases[i].in, len, &outlen, &fb);
		if (strcmp(u, cs_cases[i].want) != 0)
			fail_msg("case %zu (%s): got [%s]", i, cs_cases[i].charset, u);
		assert_int_equal(outlen, strlen(cs_cases[i].want));
		if (fb != cs_cases[i].fallback)
			fail_msg("case %zu: fallback %d", i, fb);
		assert_true(utf8_valid(u, outlen));
		free(u);
	}
}

static void test_utf8_tools(void **state)
{
	(void)state;
	assert_true(utf8_valid("Şş", 4));
	assert_false(utf8_valid("\xc3", 1));
	assert_false(utf8_valid("\xed\xa0\x80", 3));       /* a surrogate */
	assert_false(utf8_valid("\xc0\xaf", 2));           /* overlong */
	assert_int_equal(utf8_len("İş", 4), 2);
	assert_int_equal(utf8_len("a\xffz", 3), 3);
	const char *s = "ğ\xff", *p = s;
	assert_int_equal(utf8_next(&p, s + 3), 0x11F);
	assert_int_equal(utf8_next(&p, s + 3), 0xFFFD);
	assert_ptr_equal(p, s + 3);
	struct buf b = BUF_INIT;
	utf8_put(&b, 0x131);
	utf8_put(&b, 0x1F600);
	utf8_put(&b, 0xD800);
	assert_string_equal(b.p, "ı\xf0\x9f\x98\x80\xef\xbf\xbd");
	buf_free(&b);
	char *q = text_squeeze("  a \t\n b  c ");
	assert_string_equal(q, "a b c");
	free(q);
}

/* ---- HTML ---- */

static const struct {
	const char *html, *want;
} html_cases[] = {
	{ "<p>Merhaba</p><p>D&uuml;nya</p>", "Merhaba\n\nDünya\n" },
	{ "Say&#305;n &Idot;lgili, &scedil;ifre &Scedil;&Ccedil;&gbreve;&#x131;",
	  "Sayın İlgili, şifre ŞÇğı\n" },
	{ "a&nbsp;b &amp; c &lt;d&gt; &quot;e&quot; &bogus; &#0; &#xD800;",
	  "a b & c <d> \"e\" &bogus; \xef\xbf\xbd \xef\xbf\xbd\n" },
	{ "line1<br>line2<br/>line3<BR >end", "line1\nline2\nline3\nend\n" },
	{ "<div>one</div><div>two</div>", "one\ntwo\n" },
	{ "<ul><li>a</li><li>b</li></ul>", "a\nb\n" },
	{ "<table><tr><th>Ad</th><th>TC</th></tr><tr><td>Ali</td><td>1</td></tr></table>",
	  "Ad | TC\nAli | 1\n" },
	{ "<head><title>T</title><style>p{color:red}</style></head><body>x"
	  "<script>alert('<p>no</p>')</script>y</body>", "xy\n" },
	{ "<!-- hidden <p>x</p> -->shown", "shown\n" },
	{ "<a href=\"https://basvuru.example.org/x?a=1&amp;b=2\">buraya tıklayın</a>",
	  "buraya tıklayın <https://basvuru.example.org/x?a=1&b=2>\n" },
	{ "<a href='https://e.example.org/'>https://e.example.org</a>",
	  "https://e.example.org\n" },
	{ "<a href=\"mailto:ali@example.org\">ali@example.org</a>", "ali@example.org\n" },
	{ "<p>a</p>\n\n<p></p><p></p><br><br><br><p>b</p>", "a\n\nb\n" },
	{ "<blockquote>quoted<br>text</blockquote>after", "> quoted\n> text\nafter\n" },
	{ "<pre>a  b\n c</pre>", "a  b\n c\n" },
	{ "x < y and a<b", "x < y and a\n" },
	{ "unterminated <a href=\"x", "unterminated\n" },
	{ "<b>Kimden:</b> Ali &lt;<a href=\"mailto:ali@example.org\">ali@example.org</a>&gt;<br>",
	  "Kimden: Ali <ali@example.org>\n" },
	{ "", "" },
};

static void test_html(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(html_cases); i++) {
		char *t = html_to_text(html_cases[i].html, strlen(html_cases[i].html));
		if (strcmp(t, html_cases[i].want) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, t, html_cases[i].want);
		free(t);
	}
}

/* ---- quoted replies ---- */

static const struct {
	const char *in, *want;
} quote_cases[] = {
	{ "ONAY\n\nOn Wed, Oct 27, 2021 at 9:31 AM Ali <ali@example.org> wrote:\n> old\n",
	  "ONAY" },
	{ "RED eksik belge\n\nAli Veli <ali@example.org>, 27 Eki 2021 Çar, 09:31 tarihinde "
	  "şunu yazdı:\n> eski metin\n", "RED eksik belge" },
	/* Gmail wraps a long attribution: the tail alone on the next line */
	{ "GONDERILDI\n\nAli Veli <ali@example.org>, 27 Eki 2021 Çar, 09:31\n"
	  "tarihinde şunu yazdı:\n> eski\n", "GONDERILDI" },
	/* Thunderbird: "#1, #2 #3 tarihinde yazdı:" */
	{ "Tamam.\nAli Veli, 28.10.2021 12:46 tarihinde yazdı:\n> x\n", "Tamam." },
	/* KMail */
	{ "AKTIF\n11 Eki 2006 Çar 22:00 tarihinde, Ali şunları yazmıştı:\n> x\n", "AKTIF" },
	{ "TESLIM\n\n-----Original Message-----\nFrom: eimzad\nSent: today\n", "TESLIM" },
	{ "IPTAL\n-------- Özgün İleti --------\nKonu: x\n", "IPTAL" },
	{ "POSTA\n\n-------- ÖZGÜN İLETİ --------\n", "POSTA" },
	/* Outlook's header block without a separator */
	{ "ONAY\n\nKimden: eimzad <eimzad@example.org>\nGönderildi: 28 Ekim 2021\n"
	  "Kime: ali@example.org\nKonu: x\n\nmetin\n", "ONAY" },
	{ "ONAY\n________________________________\nFrom: x\n", "ONAY" },
	/* interleaved quoting: quoted lines dropped, own lines kept */
	{ "> soru 1\ncevap 1\n> soru 2\ncevap 2\n", "cevap 1\ncevap 2" },
	/* a sentence that merely mentions From: is kept */
	{ "From: is a header name.\nNothing else.\n", "From: is a header name.\nNothing else." },
	{ "", "" },
};

static void test_strip_quoted(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(quote_cases); i++) {
		char *t = text_strip_quoted(quote_cases[i].in);
		if (strcmp(t, quote_cases[i].want) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, t, quote_cases[i].want);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_fold_map),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_utf8_tools),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_strip_quoted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
