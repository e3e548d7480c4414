/* Unit tests of applicant tables: CSV dialects (delimiters, quoting,
 * BOM, windows-1254), header synonyms, row validation with masked
 * reasons, extra columns, HTML tables and the plain-text shapes. All
 * names, numbers and addresses are invented. */
#include "testutil.h"

#include "applicants.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static struct config C;

static int setup(void **state)
{
	(void)state;
	config_defaults(&C);
	C.general.institution_domains = strv_add(NULL, "example.edu.tr");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	config_free(&C);
	return 0;
}

static void csv(const char *data, struct applicant_table *t)
{
	char *err = NULL;
	if (applicants_from_csv(data, strlen(data), &C, t, &err) < 0)
		fail_msg("csv: %s", err);
}

static void want_row(const struct applicant_table *t, size_t i, int row, const char *name,
		     const char *email, const char *mobile, const char *tc)
{
	assert_true(i < t->nrows);
	const struct applicant *a = &t->rows[i];
	assert_int_equal(a->row, row);
	assert_string_equal(a->name, name);
	assert_string_equal(a->email, email);
	if (mobile)
		assert_string_equal(a->mobile, mobile);
	else
		assert_null(a->mobile);
	if (tc)
		assert_string_equal(a->tc, tc);
	else
		assert_null(a->tc);
}

static void want_error(const struct applicant_table *t, size_t i, int row, const char *words)
{
	assert_true(i < t->nerrors);
	if (t->errors[i].row != row || strstr(t->errors[i].reason, words) == NULL)
		fail_msg("error %zu: row %d '%s', want row %d '%s'", i, t->errors[i].row,
			 t->errors[i].reason, row, words);
}

static void test_csv_semicolon_bom(void **state)
{
	(void)state;
	struct applicant_table t;
	csv("\xef\xbb\xbf" "Adı Soyadı;T.C. Kimlik No;Kurumsal E-posta;Cep Telefonu;Ünvan;Bölüm\n"
	    "Ayşegül Deneme;10000000078;aysegul.deneme@example.edu.tr;0532 000 00 01;Uzman;Fizik\n"
	    ";;;;;\n"
	    "Çağrı  Örnekoğlu;;Cagri.Ornekoglu@EXAMPLE.EDU.TR;;;\n", &t);
	assert_int_equal(t.source, APPL_CSV);
	assert_int_equal(t.nrows, 2);
	assert_int_equal(t.nerrors, 0);
	want_row(&t, 0, 2, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", "+905320000001",
		 "10000000078");
	assert_string_equal(t.rows[0].title, "Uzman");
	assert_string_equal(t.rows[0].unit, "Fizik");
	/* the blank record 3 is skipped but counted; the domain lowercased,
	 * the local part and the squeezed name kept */
	want_row(&t, 1, 4, "Çağrı Örnekoğlu", "Cagri.Ornekoglu@example.edu.tr", NULL, NULL);
	assert_int_equal(strv_len(t.columns), 6);
	assert_int_equal(t.nextra, 0);
	applicant_table_free(&t);
}

static void test_csv_quotes_comma_crlf(void **state)
{
	(void)state;
	struct applicant_table t;
	csv("Name,Email,Title,Phone\r\n"
	    "\"Deneme, Ayşegül\",aysegul.deneme@example.edu.tr,\"Bölüm \"\"Başkanı\"\"\",\r\n"
	    "\"Gülşen\nTestçi\",gulsen.testci@cs.example.edu.tr,\"çok\nsatırlı\",+90 533 000 00 04\r\n"
	    "İlker Sınamaoğlu,ilker.sinamaoglu@example.edu.tr,,\r\n", &t);
	assert_int_equal(t.nrows, 3);
	want_row(&t, 0, 2, "Deneme, Ayşegül", "aysegul.deneme@example.edu.tr", NULL, NULL);
	assert_string_equal(t.rows[0].title, "Bölüm \"Başkanı\"");
	/* a quoted field spanning lines is one record; subdomains are inside */
	want_row(&t, 1, 3, "Gülşen Testçi", "gulsen.testci@cs.example.edu.tr", "+905330000004", NULL);
	want_row(&t, 2, 4, "İlker Sınamaoğlu", "ilker.sinamaoglu@example.edu.tr", NULL, NULL);
	applicant_table_free(&t);
}

static void test_csv_tab_first_last(void **state)
{
	(void)state;
	struct applicant_table t;
	csv("Sicil\tAd\tSoyad\tTCKN\te-mail\tGSM\n"
	    "S-1\tAyşegül\tDeneme\t20000000046\taysegul.deneme@example.edu.tr\t5320000001\n", &t);
	assert_int_equal(t.nrows, 1);
	want_row(&t, 0, 2, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", "+905320000001",
		 "20000000046");
	assert_int_equal(t.nextra, 1);
	assert_string_equal(t.extra_names[0], "Sicil");
	assert_string_equal(applicant_table_extra(&t, 0, "sicil"), "S-1");
	applicant_table_free(&t);
}

static void test_csv_windows_1254(void **state)
{
	(void)state;
	/* "Adı Soyadı;E-posta;Ünvan" and "Şükrü Öğretmenoğlu;...;Müdür"
	 * in windows-1254 bytes, as Turkish Excel writes them */
	const char *data = "Ad\xfd Soyad\xfd;E-posta;\xdcnvan\r\n"
			   "\xde\xfckr\xfc \xd6\xf0retmeno\xf0lu;sukru.ogretmenoglu@example.edu.tr;M\xfc" "d\xfc" "r\r\n";
	struct applicant_table t;
	csv(data, &t);
	assert_int_equal(t.nrows, 1);
	want_row(&t, 0, 2, "Şükrü Öğretmenoğlu", "sukru.ogretmenoglu@example.edu.tr", NULL, NULL);
	assert_string_equal(t.rows[0].title, "Müdür");
	assert_string_equal(t.columns[0], "Adı Soyadı");
	applicant_table_free(&t);
}

static void test_csv_bad_rows(void **state)
{
	(void)state;
	struct applicant_table t;
	csv("Ad Soyad;TC;E-posta;Cep Telefonu\n"
	    "Kötü Tece;10000000077;kotu.tece@example.edu.tr;\n"
	    "Kısa Tece;12345;kisa.tece@example.edu.tr;\n"
	    "Dış Adres;;dis.adres@mail.example;\n"
	    ";;isimsiz@example.edu.tr;\n"
	    "Adres Yok;;;\n"
	    "Sabit Hat;;sabit.hat@example.edu.tr;0312 000 00 99\n"
	    "Harf Telefon;;harf.telefon@example.edu.tr;0532 ABC\n"
	    "İki Adres;;a@example.edu.tr b@example.edu.tr;\n"
	    "Bozuk Adres;;bozuk@;\n"
	    "Ayşegül Deneme;;aysegul.deneme@example.edu.tr;\n"
	    "Ayşegül Tekrar;;AYSEGUL.DENEME@example.edu.tr;\n"
	    "Çok Hata;10000000077;;0312 000 00 99\n", &t);
	assert_int_equal(t.nrows, 1);
	want_row(&t, 0, 11, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", NULL, NULL);
	assert_int_equal(t.nerrors, 11);
	want_error(&t, 0, 2, "TC kimlik no 10*******77 fails the checksum");
	want_error(&t, 1, 3, "TC kimlik no 12*45 is not 11 digits");
	want_error(&t, 2, 4, "dis.adres@mail.example is not in the institution's domains");
	want_error(&t, 3, 5, "no name");
	want_error(&t, 4, 6, "no e-mail address");
	want_error(&t, 5, 7, "mobile *********99: not a mobile number (area code 312 is a landline)");
	want_error(&t, 6, 8, "mobile ");
	want_error(&t, 7, 9, "more than one e-mail address");
	want_error(&t, 8, 10, "not an e-mail address");
	want_error(&t, 9, 12, "the same e-mail as row 11");
	/* every problem of a row, joined */
	want_error(&t, 10, 13, "no e-mail address; TC kimlik no 10*******77 fails the checksum; mobile");
	/* masked: no full TC or phone number in any reason */
	for (size_t i = 0; i < t.nerrors; i++) {
		assert_null(strstr(t.errors[i].reason, "10000000077"));
		assert_null(strstr(t.errors[i].reason, "3120000099"));
	}
	applicant_table_free(&t);
}

static void test_csv_extras_state_since(void **state)
{
	(void)state;
	struct applicant_table t;
	csv("name;email;state;since;Not\n"
	    "Ayşegül Deneme;aysegul.deneme@example.edu.tr;submitted;2026-02-01;\n"
	    "Bad Row;bad@mail.example;posted;2026-01-01;x\n"
	    "Gülşen Testçi;gulsen.testci@example.edu.tr;credentials_issued;2026-01-15;acil\n", &t);
	assert_int_equal(t.nrows, 2);
	assert_int_equal(t.nextra, 3);
	assert_string_equal(applicant_table_extra(&t, 0, "state"), "submitted");
	assert_string_equal(applicant_table_extra(&t, 0, "SINCE"), "2026-02-01");
	assert_string_equal(applicant_table_extra(&t, 0, "not"), "");
	assert_string_equal(applicant_table_extra(&t, 1, "State"), "credentials_issued");
	assert_string_equal(applicant_table_extra(&t, 1, "Not"), "acil");
	assert_null(applicant_table_extra(&t, 1, "missing"));
	assert_null(applicant_table_extra(&t, 2, "state"));
	assert_int_equal(t.nerrors, 1);
	want_error(&t, 0, 3, "not in the institution's domains");
	applicant_table_free(&t);
}

static void test_csv_no_header(void **state)
{
	(void)state;
	struct applicant_table t;
	char *err = NULL;
	const char *d = "Ayşegül Deneme;aysegul.deneme@example.edu.tr\n";
	assert_int_equal(applicants_from_csv(d, strlen(d), &C, &t, &err), -1);
	assert_non_null(strstr(err, "no header"));
	applicant_table_free(&t);
	free(err);
	err = NULL;
	assert_int_equal(applicants_from_csv("", 0, &C, &t, &err), -1);
	applicant_table_free(&t);
	free(err);
	err = NULL;
	/* a name column without e-mail is not an applicant table */
	d = "Ad Soyad;Unvan\nX Y;Z\n";
	assert_int_equal(applicants_from_csv(d, strlen(d), &C, &t, &err), -1);
	applicant_table_free(&t);
	free(err);
}

static void test_html_tables(void **state)
{
	(void)state;
	const char *html =
		"<html><body><table><tr><td>layout"
		"<table border=1><tr><th colspan=4>Personel listesi</th></tr>"
		"<tr><th>Ad&#305; Soyad&#305;</th><th>E-Posta</th><th>GSM</th><th>B&ouml;l&uuml;m</th></tr>"
		"<tr><td>Ay&#351;eg&uuml;l Deneme</td><td><a href=\"mailto:aysegul.deneme@example.edu.tr\">"
		"aysegul.deneme@example.edu.tr</a></td><td>0532 000 00 01</td><td>Fizik</td></tr>"
		"<tr><td></td><td></td><td></td><td></td></tr>"
		"<tr><td>D&#305;&#351; Ki&#351;i</td><td>dis@mail.example</td><td></td><td></td></tr>"
		"</table></td></tr></table>"
		"<table><tr><td>Imza</td></tr></table></body></html>";
	struct applicant_table t;
	char *err = NULL;
	assert_int_equal(applicants_from_html(html, strlen(html), &C, &t, &err), 0);
	assert_int_equal(t.source, APPL_HTML);
	assert_int_equal(t.nrows, 1);
	want_row(&t, 0, 3, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", "+905320000001", NULL);
	assert_string_equal(t.rows[0].unit, "Fizik");
	assert_int_equal(t.nerrors, 1);
	want_error(&t, 0, 5, "not in the institution's domains");
	applicant_table_free(&t);
	assert_int_equal(applicants_from_html("<p>no table</p>", 15, &C, &t, &err), -1);
	applicant_table_free(&t);
	free(err);
}

static void test_text_delimited(void **state)
{
	(void)state;
	const char *txt = "Sayın Bilgi İşlem,\n\nEkte liste:\n\n"
			  "Ad Soyad | E-posta | Unvan\n"
			  "Ayşegül Deneme | aysegul.deneme@example.edu.tr | Dekan\n"
			  "Gülşen Testçi | gulsen.testci@example.edu.tr | Şef\n"
			  "\nSaygılarımla\n";
	struct applicant_table t;
	assert_int_equal(applicants_from_text(txt, strlen(txt), &C, &t, NULL), 0);
	assert_int_equal(t.source, APPL_TEXT);
	assert_int_equal(t.nrows, 2);
	want_row(&t, 0, 6, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", NULL, NULL);
	want_row(&t, 1, 7, "Gülşen Testçi", "gulsen.testci@example.edu.tr", NULL, NULL);
	assert_string_equal(t.rows[1].title, "Şef");
	applicant_table_free(&t);
}

static void test_text_label_blocks(void **state)
{
	(void)state;
	const char *txt = "Birim: Kimya\nKonu: e-imza\n\n"
			  "Adı Soyadı: Ayşegül Deneme\nTC Kimlik No: 10000000078\n"
			  "E-posta: aysegul.deneme@example.edu.tr\nSicil No: 11\n"
			  "Adı Soyadı: Gülşen Testçi\nE-posta: gulsen.testci@example.edu.tr\n"
			  "Cep Tel: 0533 000 00 04\nOda: B-12\n\n"
			  "Ad Soyad: Eksik Kişi\n";
	struct applicant_table t;
	assert_int_equal(applicants_from_text(txt, strlen(txt), &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 2);
	want_row(&t, 0, 4, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", NULL, "10000000078");
	/* a repeated label starts the next block */
	want_row(&t, 1, 8, "Gülşen Testçi", "gulsen.testci@example.edu.tr", "+905330000004", NULL);
	assert_int_equal(t.nextra, 2);
	assert_string_equal(applicant_table_extra(&t, 0, "sicil no"), "11");
	assert_string_equal(applicant_table_extra(&t, 0, "oda"), "");
	assert_string_equal(applicant_table_extra(&t, 1, "oda"), "B-12");
	assert_string_equal(applicant_table_extra(&t, 1, "Sicil No"), "");
	assert_int_equal(t.nerrors, 1);
	want_error(&t, 0, 13, "no e-mail address");
	applicant_table_free(&t);
}

static void test_text_shaped_lines(void **state)
{
	(void)state;
	const char *txt = "Aşağıdaki personel:\n"
			  "1) Ayşegül Deneme, 10000000078, aysegul.deneme@example.edu.tr, Dekan, Fizik\n"
			  "- Gülşen Testçi - gulsen.testci@example.edu.tr - 0533 000 00 04\n"
			  "> Alıntı Kişi; 20000000046; alinti@example.edu.tr\n"
			  "İletişim: Bilgi İşlem | bidb@example.edu.tr\n"
			  "Yalnız Ad, yalniz.ad@example.edu.tr\n"
			  "-- \nİmza Sahibi; 20000000046; imza@example.edu.tr\n";
	struct applicant_table t;
	assert_int_equal(applicants_from_text(txt, strlen(txt), &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 2);
	want_row(&t, 0, 2, "Ayşegül Deneme", "aysegul.deneme@example.edu.tr", NULL, "10000000078");
	assert_string_equal(t.rows[0].title, "Dekan");
	assert_string_equal(t.rows[0].unit, "Fizik");
	want_row(&t, 1, 3, "Gülşen Testçi", "gulsen.testci@example.edu.tr", "+905330000004", NULL);
	assert_int_equal(t.nerrors, 0);
	applicant_table_free(&t);
	char *err = NULL;
	const char *plain = "Merhaba,\nbilgi için bidb@example.edu.tr\n";
	assert_int_equal(applicants_from_text(plain, strlen(plain), &C, &t, &err), -1);
	assert_non_null(err);
	applicant_table_free(&t);
	free(err);
}

static void test_bounds(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "Ad Soyad;E-posta\n");
	for (int i = 0; i < 200010; i++)
		buf_printf(&b, "Kişi Numara;k%d@example.edu.tr\n", i);
	struct applicant_table t;
	assert_int_equal(applicants_from_csv(b.p, b.len, &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 200000);
	assert_int_equal(t.nerrors, 1);
	want_error(&t, 0, 200002, "more than 200000 rows");
	applicant_table_free(&t);
	/* label blocks with ever-new labels: at most 64 extra columns */
	buf_reset(&b);
	for (int i = 0; i < 300; i++)
		buf_printf(&b, "Ad Soyad: Kişi Numara\nE-posta: k%d@example.edu.tr\nEk%d: x\n\n", i, i);
	assert_int_equal(applicants_from_text(b.p, b.len, &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 300);
	assert_int_equal(t.nextra, 64);
	assert_string_equal(applicant_table_extra(&t, 63, "Ek63"), "x");
	assert_null(applicant_table_extra(&t, 64, "Ek64"));
	applicant_table_free(&t);
	buf_free(&b);
}

/* Shapes that would cost quadratic work if the code grew arrays one by
 * one: many lines, many tables, very wide rows. They must simply finish. */
static void test_pathological_shapes(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct applicant_table t;
	for (int i = 0; i < 200000; i++)
		buf_adds(&b, "x;y\n");
	assert_int_equal(applicants_from_text(b.p, b.len, &C, &t, NULL), -1);
	applicant_table_free(&t);
	buf_reset(&b);
	for (int i = 0; i < 20000; i++)
		buf_adds(&b, "<table><tr><td>x</td></tr></table>");
	assert_int_equal(applicants_from_html(b.p, b.len, &C, &t, NULL), -1);
	applicant_table_free(&t);
	buf_reset(&b);
	buf_adds(&b, "<table><tr><th>Ad Soyad</th><th>E-posta</th>");
	for (int i = 0; i < 20000; i++)
		buf_adds(&b, "<td>x</td>");
	buf_adds(&b, "</tr><tr><td>Ayşegül Deneme</td><td>aysegul.deneme@example.edu.tr</td></tr></table>");
	assert_int_equal(applicants_from_html(b.p, b.len, &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 1);
	assert_true(strv_len(t.columns) <= 256);
	applicant_table_free(&t);
	buf_reset(&b);
	buf_adds(&b, "Ad Soyad;E-posta");
	for (int i = 0; i < 100000; i++)
		buf_adds(&b, ";c");
	buf_adds(&b, "\nAyşegül Deneme;aysegul.deneme@example.edu.tr\n");
	assert_int_equal(applicants_from_csv(b.p, b.len, &C, &t, NULL), 0);
	assert_int_equal(t.nrows, 1);
	applicant_table_free(&t);
	buf_free(&b);
}

int main(void)
{
	log_init("test_applicants", false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_csv_semicolon_bom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_quotes_comma_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_tab_first_last, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_windows_1254, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_bad_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_extras_state_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_no_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_html_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_delimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_label_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_shaped_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pathological_shapes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
