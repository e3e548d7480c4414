/* Unit tests of the RFC 5322 rendering (mailfmt.c): RFC 2047 subjects
 * decoded back by an independent decoder, quoted-printable bodies, line
 * lengths, header injection, threading and auto-reply headers. */
#include "testutil.h"

#include "mailfmt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- small independent decoders ---- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

static void b64_decode(const char *s, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *p = strchr(tab, s[i]);
		assert_non_null(p);
		acc = (acc << 6) | (uint32_t)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addc(out, (char)((acc >> bits) & 0xFF));
		}
	}
}

static bool utf8_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if (((unsigned char)s[i + j] & 0xC0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

/* Decode one header's value (after "Name:"): unfold, then turn each
 * encoded-word back into UTF-8, dropping the white space between two
 * adjacent words. Checks that every word is a whole UTF-8 string. */
static char *decode_header_value(const char *raw)
{
	struct buf unf = BUF_INIT, out = BUF_INIT;
	for (const char *p = raw; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			p++;
			continue;
		}
		buf_addc(&unf, *p);
	}
	const char *p = unf.p;
	while (*p == ' ')
		p++;
	bool prev_ew = false;
	while (*p) {
		if (str_startswith(p, "=?UTF-8?")) {
			char kind = p[8];
			const char *text = p + 10, *end = strstr(text, "?=");
			assert_non_null(end);
			assert_true(end - p + 2 <= 75);
			struct buf w = BUF_INIT;
			if (kind == 'B') {
				b64_decode(text, (size_t)(end - text), &w);
			} else {
				assert_int_equal(kind, 'Q');
				for (const char *q = text; q < end; q++) {
					if (*q == '_') {
						buf_addc(&w, ' ');
					} else if (*q == '=') {
						buf_addc(&w, (char)(hexval(q[1]) * 16 + hexval(q[2])));
						q += 2;
					} else {
						buf_addc(&w, *q);
					}
				}
			}
			if (w.len && !utf8_ok(w.p, w.len))
				fail_msg("encoded-word splits a UTF-8 sequence");
			if (w.len)
				buf_add(&out, w.p, w.len);
			buf_free(&w);
			p = end + 2;
			prev_ew = true;
			continue;
		}
		if (*p == ' ' && prev_ew) {
			const char *q = p;
			while (*q == ' ')
				q++;
			if (str_startswith(q, "=?UTF-8?")) {
				p = q;
				continue;
			}
		}
		prev_ew = false;
		buf_addc(&out, *p++);
	}
	buf_free(&unf);
	return out.p ? buf_steal(&out) : xstrdup("");
}

static char *qp_decode(const char *s)
{
	struct buf out = BUF_INIT;
	for (const char *p = s; *p; p++) {
		if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
			p += 2;
		} else if (p[0] == '=') {
			assert_true(hexval(p[1]) >= 0 && hexval(p[2]) >= 0);
			buf_addc(&out, (char)(hexval(p[1]) * 16 + hexval(p[2])));
			p += 2;
		} else if (p[0] == '\r' && p[1] == '\n') {
			buf_addc(&out, '\n');
			p++;
		} else {
			buf_addc(&out, *p);
		}
	}
	return out.p ? buf_steal(&out) : xstrdup("");
}

/* Every CRLF-terminated line at most max characters; no bare CR or LF. */
static void check_lines(const char *s, size_t max)
{
	const char *line = s;
	for (const char *p = s; *p; p++) {
		if (*p == '\n') {
			assert_true(p > s && p[-1] == '\r');
			size_t len = (size_t)(p - line) - 1;
			if (len > max)
				fail_msg("line of %zu > %zu: %.*s", len, max, (int)len, line);
			line = p + 1;
		} else if (*p == '\r') {
			assert_int_equal(p[1], '\n');
		}
	}
}

/* ---- subjects ---- */

static void roundtrip_subject(const char *subject, size_t max_line)
{
	struct buf b = BUF_INIT;
	mailfmt_header_text(&b, "Subject", subject);
	assert_true(str_startswith(b.p, "Subject:"));
	assert_true(str_endswith(b.p, "\r\n"));
	check_lines(b.p, max_line);
	char *raw = xstrndup(b.p + 8, b.len - 10);
	char *dec = decode_header_value(raw);
	if (strcmp(dec, subject) != 0)
		fail_msg("round trip:\n in  [%s]\n out [%s]\n raw [%s]", subject, dec, b.p);
	free(dec);
	free(raw);
	buf_free(&b);
}

static void test_subject_roundtrip(void **state)
{
	(void)state;
	static const char *const subjects[] = {
		"Başvurunuz: KAMUSM bağlantısı geldi [EIMZA-2026-0001]",
		"İĞÜŞÖÇ ığüşöç ÂÎÛ âîû",
		"E-imza başvurusu için hatırlatma: taahhütnamenizi imzalayıp Bilgi İşlem Daire "
		"Başkanlığına teslim etmeniz gerekiyor; son gün yaklaşıyor, lütfen gecikmeyin "
		"(ikinci hatırlatma) [EIMZA-2026-0042]",
		"ğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğğ",
		"Emoji 😀 in a subject 🎉 and Turkish ş",
		"plain ascii with =? inside it",
		"",
		"inner  double  spaces",
		"a_b=c?d",
	};
	for (size_t i = 0; i < ARRAY_LEN(subjects); i++)
		roundtrip_subject(subjects[i], 76);
}

/* Leading and trailing white space is not kept (readers strip it, and
 * trailing space on a header line does not survive transport). */
static void test_subject_trimmed(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mailfmt_header_text(&b, "Subject", "  boşluklu konu \t ");
	char *raw = xstrndup(b.p + 8, b.len - 10);
	char *dec = decode_header_value(raw);
	assert_string_equal(dec, "boşluklu konu");
	free(dec);
	free(raw);
	buf_free(&b);
}

static void test_subject_plain_folding(void **state)
{
	(void)state;
	const char *s = "Reminder: the signed commitment form for application EIMZA-2026-0042 "
			"is overdue, please hand it in at the IT department this week";
	struct buf b = BUF_INIT;
	mailfmt_header_text(&b, "Subject", s);
	assert_null(strstr(b.p, "=?"));          /* plain ASCII stays readable */
	check_lines(b.p, 78);
	assert_non_null(strstr(b.p, "\r\n "));    /* it was folded */
	buf_free(&b);
	roundtrip_subject(s, 78);
}

static void test_no_injection(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mailfmt_header_text(&b, "Subject", "Hello\r\nBcc: victim@example.com\nX: y");
	assert_null(strstr(b.p, "\nBcc:"));
	assert_null(strstr(b.p, "\nX:"));
	/* exactly one line ending, at the end */
	assert_ptr_equal(strstr(b.p, "\r\n"), b.p + b.len - 2);
	buf_free(&b);
	char *c = mailfmt_clean("a\rb\nc\td\x7f" "e");
	assert_string_equal(c, "a b c d e");
	free(c);
}

/* ---- bodies ---- */

static void roundtrip_qp(const char *text, const char *expect_decoded)
{
	struct buf b = BUF_INIT;
	mailfmt_qp(&b, text);
	check_lines(b.p, 76);
	char *dec = qp_decode(b.p);
	if (strcmp(dec, expect_decoded) != 0)
		fail_msg("qp round trip:\n in  [%s]\n out [%s]\n enc [%s]", text, dec, b.p);
	free(dec);
	buf_free(&b);
}

static void test_qp(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mailfmt_qp(&b, "a=b  \nsonra\t\nşey");
	assert_string_equal(b.p, "a=3Db =20\r\nsonra=09\r\n=C5=9Fey\r\n");
	buf_free(&b);

	char *longline = xstrdup("Sayın Ayşe Yılmaz, e-imza başvurunuz için KAMUSM'un gönderdiği bağlantı "
				 "geldi; formu doldurup yazdırın, imzalayın ve taahhütnameyi Bilgi İşlem "
				 "Daire Başkanlığına teslim edin. = işareti ve sondaki boşluk   ");
	char *want = xasprintf("%s\n", longline);
	roundtrip_qp(longline, want);
	free(want);
	free(longline);

	roundtrip_qp("line1\r\nline2\rline3\n\nline5\n", "line1\nline2\nline3\n\nline5\n");
	roundtrip_qp("", "\n");
	char *eq = xasprintf("%0100d", 0);
	for (char *p = eq; *p; p++)
		*p = '=';
	want = xasprintf("%s\n", eq);
	roundtrip_qp(eq, want);
	free(want);
	free(eq);
	/* a 76-character line stays one line; 77 needs a soft break */
	char *l76 = xasprintf("%076d", 0), *l77 = xasprintf("%077d", 0);
	b = (struct buf)BUF_INIT;
	mailfmt_qp(&b, l76);
	assert_null(strstr(b.p, "=\r\n"));
	buf_reset(&b);
	mailfmt_qp(&b, l77);
	assert_non_null(strstr(b.p, "=\r\n"));
	buf_free(&b);
	free(l76);
	free(l77);
}

/* ---- whole messages ---- */

static struct notice *mk_notice(void)
{
	struct notice *n = notice_new();
	n->id = xstrdup("n0123456789abcdef0123456789abcdef");
	n->medium = MEDIUM_MAIL;
	n->to = xstrdup("ayse.yilmaz@example.edu.tr");
	n->subject = xstrdup("E-imza başvurunuz: bağlantı geldi [EIMZA-2026-0001]");
	n->body = xstrdup("Sayın Ayşe Yılmaz,\n\nKAMUSM bağlantınız geldi.\n");
	n->created = 1795000000;
	return n;
}

static void mk_config(struct config *c)
{
	config_defaults(c);
	free(c->smtp.from);
	c->smtp.from = xstrdup("E-İmza Birimi <eimza@example.edu.tr>");
	free(c->smtp.reply_to);
	c->smtp.reply_to = xstrdup("eimza-kutu@example.edu.tr");
	free(c->smtp.message_id_domain);
	c->smtp.message_id_domain = xstrdup("eimzad.example.edu.tr");
}

/* The value of header `name` (unfolded raw text), or NULL. */
static char *header_of(const char *msg, const char *name)
{
	size_t nl = strlen(name);
	const char *end = strstr(msg, "\r\n\r\n");
	for (const char *p = msg; p && p < end; p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *q = v;
			while (!(q[0] == '\r' && q[1] == '\n' && q[2] != ' ' && q[2] != '\t'))
				q++;
			return xstrndup(v, (size_t)(q - v));
		}
	}
	return NULL;
}

static void test_render(void **state)
{
	(void)state;
	struct config c;
	mk_config(&c);
	struct notice *n = mk_notice();
	n->message_id = xstrdup("eimza-2026-0001.credentials");
	n->in_reply_to = xstrdup("<orig.123@kamusm.gov.tr>");
	n->references = xstrdup("<a.1@example.edu.tr> <orig.123@kamusm.gov.tr>");
	struct buf b = BUF_INIT;
	char *err = NULL;
	assert_int_equal(mailfmt_render(&c, n, 0, &b, &err), 0);
	check_lines(b.p, 78);

	char *v = header_of(b.p, "Date");
	assert_string_equal(v, " Wed, 18 Nov 2026 11:06:40 +0000");
	free(v);
	v = header_of(b.p, "Message-ID");
	assert_string_equal(v, " <eimza-2026-0001.credentials@eimzad.example.edu.tr>");
	free(v);
	v = header_of(b.p, "In-Reply-To");
	assert_string_equal(v, " <orig.123@kamusm.gov.tr>");
	free(v);
	v = header_of(b.p, "References");
	assert_string_equal(v, " <a.1@example.edu.tr> <orig.123@kamusm.gov.tr>");
	free(v);
	v = header_of(b.p, "To");
	assert_string_equal(v, " <ayse.yilmaz@example.edu.tr>");
	free(v);
	v = header_of(b.p, "From");
	char *dec = decode_header_value(v);
	assert_string_equal(dec, "E-İmza Birimi <eimza@example.edu.tr>");
	free(dec);
	free(v);
	v = header_of(b.p, "Subject");
	dec = decode_header_value(v);
	assert_string_equal(dec, n->subject);
	free(dec);
	free(v);
	v = header_of(b.p, "Auto-Submitted");
	assert_string_equal(v, " auto-generated");
	free(v);
	v = header_of(b.p, "X-Auto-Response-Suppress");
	assert_string_equal(v, " All");
	free(v);
	assert_null(header_of(b.p, "Precedence"));
	v = header_of(b.p, "Reply-To");
	assert_string_equal(v, " <eimza-kutu@example.edu.tr>");
	free(v);
	assert_non_null(strstr(b.p, "Content-Type: text/plain; charset=UTF-8\r\n"));
	assert_non_null(strstr(b.p, "Content-Transfer-Encoding: quoted-printable\r\n"));
	char *body = qp_decode(strstr(b.p, "\r\n\r\n") + 4);
	assert_string_equal(body, n->body);
	free(body);
	buf_free(&b);
	notice_free(n);
	config_free(&c);
}

static void test_render_html_and_defaults(void **state)
{
	(void)state;
	struct config c;
	mk_config(&c);
	struct notice *n = mk_notice();
	n->body_html = xstrdup("<p>Sayın <b>Ayşe</b> Yılmaz</p>");
	struct buf b = BUF_INIT;
	char *err = NULL;
	assert_int_equal(mailfmt_render(&c, n, 0, &b, &err), 0);
	/* no message_id: made from the notice id */
	char *v = header_of(b.p, "Message-ID");
	assert_string_equal(v, " <n0123456789abcdef0123456789abcdef@eimzad.example.edu.tr>");
	free(v);
	assert_null(header_of(b.p, "In-Reply-To"));
	assert_null(header_of(b.p, "References"));
	v = header_of(b.p, "Content-Type");
	assert_non_null(strstr(v, "multipart/alternative"));
	assert_non_null(strstr(v, "boundary=\"=_eimza_n0123456789abcdef0123456789abcdef\""));
	free(v);
	assert_non_null(strstr(b.p, "\r\n--=_eimza_n0123456789abcdef0123456789abcdef\r\n"
			       "Content-Type: text/html; charset=UTF-8\r\n"));
	assert_true(str_endswith(b.p, "\r\n--=_eimza_n0123456789abcdef0123456789abcdef--\r\n"));
	assert_non_null(strstr(b.p, "=C5=9Eekil") == NULL ? "ok" : NULL);
	check_lines(b.p, 78);
	buf_free(&b);
	notice_free(n);
	config_free(&c);
}

static void test_render_injection(void **state)
{
	(void)state;
	struct config c;
	mk_config(&c);
	free(c.smtp.from);
	c.smtp.from = xstrdup("\"Bilgi \\\"İşlem\\\"\" <eimza@example.edu.tr>\r\nBcc: x@evil.example");
	struct notice *n = mk_notice();
	free(n->subject);
	n->subject = xstrdup("Konu\r\nBcc: victim@evil.example");
	n->in_reply_to = xstrdup("<a@b>\r\nBcc: victim@evil.example");
	n->references = xstrdup("<a@b>\nBcc: victim@evil.example");
	n->message_id = xstrdup("x\r\nBcc: y@evil.example");
	struct buf b = BUF_INIT;
	char *err = NULL;
	/* the from value with a header in it is no longer one address */
	assert_int_equal(mailfmt_render(&c, n, 0, &b, &err), -1);
	free(err);
	err = NULL;
	buf_reset(&b);
	free(c.smtp.from);
	c.smtp.from = xstrdup("\"Bilgi \\\"İşlem\\\"\" <eimza@example.edu.tr>");
	assert_int_equal(mailfmt_render(&c, n, 0, &b, &err), 0);
	assert_null(strstr(b.p, "\nBcc:"));
	assert_null(header_of(b.p, "Bcc"));
	char *v = header_of(b.p, "From");
	char *dec = decode_header_value(v);
	assert_string_equal(dec, "Bilgi \"İşlem\" <eimza@example.edu.tr>");
	free(dec);
	free(v);
	check_lines(b.p, 78);
	buf_free(&b);

	/* a recipient with a line break is refused outright */
	free(n->to);
	n->to = xstrdup("a@example.edu.tr>\r\nRCPT TO:<b@evil.example");
	assert_int_equal(mailfmt_render(&c, n, 0, &b, &err), -1);
	assert_non_null(strstr(err, "not a usable mail address"));
	free(err);
	buf_free(&b);
	notice_free(n);
	config_free(&c);
}

static void test_addresses(void **state)
{
	(void)state;
	static const struct { const char *a; bool ok; } cases[] = {
		{ "ali@example.edu.tr", true },
		{ "ali.veli+eimza@bidb.example.edu.tr", true },
		{ "a@b", true },
		{ "ali@@example.edu.tr", false },
		{ "ali@", false },
		{ "@example.edu.tr", false },
		{ "ali veli@example.edu.tr", false },
		{ "ali@exa mple.edu.tr", false },
		{ "ali@example..edu.tr", false },
		{ ".ali@example.edu.tr", false },
		{ "ali>@example.edu.tr", false },
		{ "ali@example.edu.tr\r\n", false },
		{ "ayşe@example.edu.tr", false },
		{ "ali@ex_ample.edu.tr", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (mailfmt_addr_ok(cases[i].a) != cases[i].ok)
			fail_msg("%s: want %d", cases[i].a, cases[i].ok);
	char *name, *addr, *err = NULL;
	assert_int_equal(mailfmt_parse_mailbox("E-İmza Birimi <eimza@example.edu.tr>", &name, &addr, &err), 0);
	assert_string_equal(name, "E-İmza Birimi");
	assert_string_equal(addr, "eimza@example.edu.tr");
	free(name);
	free(addr);
	assert_int_equal(mailfmt_parse_mailbox("eimza@example.edu.tr", &name, &addr, &err), 0);
	assert_null(name);
	assert_string_equal(addr, "eimza@example.edu.tr");
	free(addr);
	assert_int_equal(mailfmt_parse_mailbox("Birim <bozuk>", &name, &addr, &err), -1);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subject_roundtrip),
		cmocka_unit_test(test_subject_trimmed),
		cmocka_unit_test(test_subject_plain_folding),
		cmocka_unit_test(test_no_injection),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_html_and_defaults),
		cmocka_unit_test(test_render_injection),
		cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
