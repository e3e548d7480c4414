/* Unit tests of the notice templates: rendering tables over the example
 * templates in tests/fixtures/templates (tr, en), section semantics,
 * escaping, and load-time errors with file:line. */
#include "testutil.h"

#include "template.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *const langs_tr_en[] = { "tr", "en", NULL };
static char *const langs_tr[] = { "tr", NULL };

static int setup(void **state)
{
	char *dir = xasprintf("%s/tests/fixtures/templates", tu_srcdir());
	struct conf_errors e = { 0 };
	struct templates *t;
	if (templates_load(dir, langs_tr_en, &t, &e) < 0)
		fail_msg("templates_load: %s", e.n ? e.msgs[0] : "?");
	free(dir);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	templates_free(*state);
	return 0;
}

static json_object *vars_of(const char *json)
{
	json_object *v = json_tokener_parse(json);
	if (v == NULL)
		fail_msg("bad test JSON: %s", json);
	return v;
}

struct render_row {
	const char *name;
	enum medium m;
	const char *vars;
	const char *subject;    /* NULL: none expected (SMS) */
	const char *body;       /* NULL: an error expected, containing `error` */
	const char *error;
};

static const char decision_vars[] =
	"{\"unit\":\"Bilgi İşlem Daire Başkanlığı\",\"count\":2,\"tag\":\"OUTER\","
	"\"applicants\":[{\"name\":\"Ayşe Yılmaz\",\"title\":\"Şef\",\"tag\":\"EIMZA-2026-0001\"},"
	"{\"name\":\"İsmail Öztürk\",\"title\":\"Mühendis\",\"tag\":\"EIMZA-2026-0002\"}],"
	"\"note\":\"Acil\"}";

static const struct render_row render_rows[] = {
	/* fields; Turkish letters intact; the languages joined */
	{ "plain", MEDIUM_MAIL,
	  "{\"title\":\"Deneme\",\"name\":\"Ayşe Çağrı Işık\",\"message\":\"İğdır ğüşöçı ĞÜŞÖÇİ\"}",
	  "Bildirim: Deneme / Notice: Deneme",
	  "Merhaba Ayşe Çağrı Işık,\nİğdır ğüşöçı ĞÜŞÖÇİ\n\nSaygılarımızla\n\n----\n\n"
	  "Hello Ayşe Çağrı Işık,\nİğdır ğüşöçı ĞÜŞÖÇİ\n\nRegards\n", NULL },
	/* CR/LF leave values in the subject, not in the body; numbers, null */
	{ "plain", MEDIUM_MAIL,
	  "{\"title\":\"Satır\\r\\nİki\\n\",\"name\":null,\"message\":\"a\\nb\",\"x\":1}",
	  "Bildirim: Satırİki / Notice: Satırİki",
	  "Merhaba ,\na\nb\n\nSaygılarımızla\n\n----\n\nHello ,\na\nb\n\nRegards\n", NULL },
	/* NUL bytes (JSON allows them) never reach the text */
	{ "plain", MEDIUM_MAIL, "{\"title\":\"a\\u0000b\",\"name\":\"c\\u0000d\",\"message\":\"\"}",
	  "Bildirim: ab / Notice: ab",
	  "Merhaba cd,\n\n\nSaygılarımızla\n\n----\n\nHello cd,\n\n\nRegards\n", NULL },
	{ "plain", MEDIUM_MAIL, "{\"title\":3,\"name\":true,\"message\":2.5}",
	  "Bildirim: 3 / Notice: 3",
	  "Merhaba true,\n2.5\n\nSaygılarımızla\n\n----\n\nHello true,\n2.5\n\nRegards\n", NULL },
	/* a list rendered once per element, outer fields visible, the inner
	 * field shadowing the outer one; a section on a non-empty string */
	{ "decision", MEDIUM_MAIL, decision_vars,
	  "Onay bekleyen başvurular: Bilgi İşlem Daire Başkanlığı / "
	  "Applications awaiting approval: Bilgi İşlem Daire Başkanlığı",
	  "Sayın yetkili,\n\n"
	  "Bilgi İşlem Daire Başkanlığı biriminden 2 e-imza başvurusu onayınızı bekliyor:\n"
	  "- Ayşe Yılmaz (Şef), Bilgi İşlem Daire Başkanlığı: [EIMZA-2026-0001]\n"
	  "- İsmail Öztürk (Mühendis), Bilgi İşlem Daire Başkanlığı: [EIMZA-2026-0002]\n"
	  "\nNot: Acil\n\n"
	  "Onaylamak için ONAY, reddetmek için RED <gerekçe> yazarak yanıtlayın.\n"
	  "\n----\n\n"
	  "Dear officer,\n\n"
	  "2 e-signature applications from Bilgi İşlem Daire Başkanlığı await your decision:\n"
	  "- Ayşe Yılmaz (Şef), Bilgi İşlem Daire Başkanlığı: [EIMZA-2026-0001]\n"
	  "- İsmail Öztürk (Mühendis), Bilgi İşlem Daire Başkanlığı: [EIMZA-2026-0002]\n"
	  "\nNote: Acil\n\n"
	  "Reply with ONAY to approve, or RED <reason> to refuse.\n", NULL },
	/* inverted section on an empty list; an empty string hides a section */
	{ "decision", MEDIUM_MAIL, "{\"unit\":\"BİDB\",\"count\":0,\"applicants\":[],\"note\":\"\"}",
	  "Onay bekleyen başvurular: BİDB / Applications awaiting approval: BİDB",
	  "Sayın yetkili,\n\nBİDB biriminden 0 e-imza başvurusu onayınızı bekliyor:\n"
	  "Listede başvuru yok.\n\n"
	  "Onaylamak için ONAY, reddetmek için RED <gerekçe> yazarak yanıtlayın.\n"
	  "\n----\n\n"
	  "Dear officer,\n\n0 e-signature applications from BİDB await your decision:\n"
	  "There are no applications in the list.\n\n"
	  "Reply with ONAY to approve, or RED <reason> to refuse.\n", NULL },
	/* SMS: the first language only, no trailing newline, no subject */
	{ "credentials", MEDIUM_SMS,
	  "{\"name\":\"Şule Güneş\",\"helpdesk\":\"Bilgi İşlem (B blok, 112)\",\"tag\":\"EIMZA-2026-0007\"}",
	  NULL,
	  "Sayın Şule Güneş, e-imza başvuru bağlantınız e-postanıza gönderildi. İmzalı "
	  "taahhütnameyi Bilgi İşlem (B blok, 112) birimine teslim ediniz. [EIMZA-2026-0007]", NULL },
	/* unknown fields: the template, the line and the field are named */
	{ "plain", MEDIUM_MAIL, "{\"title\":\"x\",\"message\":\"y\"}", NULL, NULL,
	  "template tr/plain.mail:3: unknown field 'name'" },
	{ "plain", MEDIUM_MAIL, "{\"name\":\"x\",\"message\":\"y\"}", NULL, NULL,
	  "template tr/plain.mail:1: unknown field 'title'" },
	{ "decision", MEDIUM_MAIL,
	  "{\"unit\":\"u\",\"count\":1,\"applicants\":[{\"name\":\"a\",\"tag\":\"t\"}]}", NULL, NULL,
	  "template tr/decision.mail:7: unknown field 'title'" },
	{ "plain", MEDIUM_MAIL, "{\"title\":[1],\"name\":\"x\",\"message\":\"y\"}", NULL, NULL,
	  "field 'title' is a list" },
	{ "credentials", MEDIUM_MAIL, "{}", NULL, NULL, "no template 'credentials' for mail" },
	{ "nosuch", MEDIUM_SMS, "{}", NULL, NULL, "no template 'nosuch' for sms" },
	{ "plain", MEDIUM_MAIL, "[1,2]", NULL, NULL, "not a JSON object" },
};

static void test_render(void **state)
{
	const struct templates *t = *state;
	for (size_t i = 0; i < ARRAY_LEN(render_rows); i++) {
		const struct render_row *r = &render_rows[i];
		json_object *vars = vars_of(r->vars);
		char *subject = (char *)"unset", *body = NULL, *err = NULL;
		int rc = template_render(t, r->name, r->m, vars, &subject, &body, &err);
		json_object_put(vars);
		if (r->body == NULL) {
			if (rc != -1 || err == NULL || strstr(err, r->error) == NULL)
				fail_msg("row %zu: want error '%s', got %d '%s'", i, r->error, rc,
					 err ? err : "");
			free(err);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu: %s", i, err);
		if (r->subject == NULL)
			assert_null(subject);
		else if (strcmp(subject, r->subject) != 0)
			fail_msg("row %zu: subject\n'%s'\nwant\n'%s'", i, subject, r->subject);
		if (strcmp(body, r->body) != 0)
			fail_msg("row %zu: body\n'%s'\nwant\n'%s'", i, body, r->body);
		free(subject);
		free(body);
	}
}

/* {{#x}}yes{{/x}}{{^x}}no{{/x}} for each kind of value. */
static void test_section_values(void **state)
{
	(void)state;
	static const struct {
		const char *vars, *want;
	} rows[] = {
		{ "{}", "no" }, { "{\"x\":null}", "no" }, { "{\"x\":false}", "no" },
		{ "{\"x\":true}", "yes" }, { "{\"x\":0}", "no" }, { "{\"x\":7}", "yes" },
		{ "{\"x\":\"\"}", "no" }, { "{\"x\":\"a\"}", "yes" }, { "{\"x\":[]}", "no" },
		{ "{\"x\":[{},{}]}", "yesyes" }, { "{\"x\":{}}", "yes" },
	};
	char *dir = tu_tmpdir();
	char *tr = xasprintf("%s/tr", dir);
	mkdir(tr, 0700);
	free(tu_write(tr, "s.sms", "{{#x}}yes{{/x}}{{^x}}no{{/x}}\n"));
	struct conf_errors e = { 0 };
	struct templates *t;
	assert_int_equal(templates_load(dir, langs_tr, &t, &e), 0);
	assert_true(templates_has(t, "s", MEDIUM_SMS));
	assert_false(templates_has(t, "s", MEDIUM_MAIL));
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		json_object *vars = vars_of(rows[i].vars);
		char *body = NULL, *err = NULL;
		if (template_render(t, "s", MEDIUM_SMS, vars, NULL, &body, &err) < 0)
			fail_msg("row %zu: %s", i, err);
		if (strcmp(body, rows[i].want) != 0)
			fail_msg("row %zu (%s): '%s', want '%s'", i, rows[i].vars, body, rows[i].want);
		free(body);
		json_object_put(vars);
	}
	templates_free(t);
	tu_rmtree(dir);
	free(tr);
	free(dir);
}

static void test_html(void **state)
{
	const struct templates *t = *state;
	json_object *vars = vars_of("{\"title\":\"x\",\"name\":\"Ali & Ayşe\","
				    "\"message\":\"<b>\\\"Tom\\\" & 'Jerry'</b>\\nikinci satır\"}");
	char *body = NULL, *err = NULL;
	assert_int_equal(template_render(t, "plain", MEDIUM_MAIL, vars, NULL, &body, &err), 0);
	char *html = template_body_html(body);
	free(body);
	assert_string_equal(html,
		"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
		"<p>Merhaba Ali &amp; Ayşe,<br>\n"
		"&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;<br>\n"
		"ikinci satır</p>\n"
		"<p>Saygılarımızla</p>\n"
		"<hr>\n"
		"<p>Hello Ali &amp; Ayşe,<br>\n"
		"&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;<br>\n"
		"ikinci satır</p>\n"
		"<p>Regards</p>\n"
		"</body></html>\n");
	free(html);
	json_object_put(vars);
	assert_int_equal(template_render(t, "credentials", MEDIUM_MAIL, NULL, NULL, &body, &err), -1);
	free(err);
}

/* Every malformed file is reported, each as file:line: message. */
static void test_syntax_errors(void **state)
{
	(void)state;
	static const struct {
		const char *file, *text, *want;
	} rows[] = {
		{ "a.mail", "Subject: x\n\n{{#a}}\nbody\n", "a.mail:3: '{{#a}}' is never closed" },
		{ "b.mail", "Subject: x\n\nline\n{{/a}}\n", "b.mail:4: '{{/a}}' closes no section" },
		{ "c.mail", "Subject: x\n\n{{#a}}\n{{#b}}\n{{/a}}\n{{/b}}\n",
		  "c.mail:5: '{{/a}}' does not close '{{#b}}' (line 4)" },
		{ "d.mail", "Subject: x\n\nok {{a}}\nHello {{name\n", "d.mail:4: unclosed '{{'" },
		{ "e.mail", "Hello\n\nbody\n", "e.mail:1: a .mail template must start with a 'Subject: '" },
		{ "f.mail", "Subject: x\nbody at once\n", "f.mail:2: expected a blank line" },
		{ "g.sms", "Hi {{na me}}\n", "g.sms:1: bad field name 'na me'" },
		{ "h.mail", "Subject: {{#a}}x\n\nbody {{/a}}\n", "h.mail:1: '{{#a}}' is never closed" },
		{ "i.sms", "x\ny\n{{}}\n", "i.sms:3: bad field name ''" },
		{ "j.sms", "{{^a}}\n{{x}\n{{/a}}\n", "j.sms:2: unclosed '{{'" },
		{ "k-1.sms", "{{#a}}{{/a}}{{/a}}\n", "k-1.sms:1: '{{/a}}' closes no section" },
	};
	char *dir = tu_tmpdir();
	char *tr = xasprintf("%s/tr", dir);
	mkdir(tr, 0700);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		free(tu_write(tr, rows[i].file, rows[i].text));
	free(tu_write(tr, "fine.mail", "Subject: ok\n\n{{#a}}\nx\n{{/a}}\n"));
	free(tu_write(tr, "notes.txt", "not a template {{\n"));
	struct conf_errors e = { 0 };
	struct templates *t = (struct templates *)&e;
	assert_int_equal(templates_load(dir, langs_tr, &t, &e), -1);
	assert_null(t);
	/* files are read in name order; c.mail and h.mail have a second error
	 * (crossed sections: each close tag is reported) */
	size_t k = 0;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		char *want = xasprintf("%s/%s", tr, rows[i].want);
		if (k >= e.n || strstr(e.msgs[k], want) == NULL)
			fail_msg("row %zu: want '%s', got '%s'", i, want, k < e.n ? e.msgs[k] : "-");
		free(want);
		k += strcmp(rows[i].file, "h.mail") == 0 || strcmp(rows[i].file, "c.mail") == 0 ? 2 : 1;
	}
	assert_int_equal(e.n, k);
	conf_errors_free(&e);
	tu_rmtree(dir);
	free(tr);
	free(dir);
}

static void test_missing_language(void **state)
{
	(void)state;
	char *fixtures = xasprintf("%s/tests/fixtures/templates", tu_srcdir());
	char *const langs[] = { "tr", "en", "de", NULL };
	struct conf_errors e = { 0 };
	struct templates *t;
	assert_int_equal(templates_load(fixtures, langs, &t, &e), -1);
	char *want = xasprintf("%s/de: cannot open the language folder", fixtures);
	assert_int_equal(e.n, 1);       /* not once more per template */
	if (strstr(e.msgs[0], want) == NULL)
		fail_msg("'%s' lacks '%s'", e.msgs[0], want);
	free(want);
	conf_errors_free(&e);

	/* a mail needs each language; an SMS only the first */
	char *dir = tu_tmpdir();
	char *tr = xasprintf("%s/tr", dir), *en = xasprintf("%s/en", dir);
	mkdir(tr, 0700);
	mkdir(en, 0700);
	free(tu_write(tr, "x.mail", "Subject: x\n\nx\n"));
	free(tu_write(tr, "y.sms", "y\n"));
	free(tu_write(en, "z.sms", "z\n"));
	assert_int_equal(templates_load(dir, langs_tr_en, &t, &e), -1);
	assert_int_equal(e.n, 2);
	assert_non_null(strstr(e.msgs[0], "en/x.mail is missing"));
	assert_non_null(strstr(e.msgs[1], "tr/z.sms is missing"));
	conf_errors_free(&e);
	assert_int_equal(templates_load(dir, (char *const[]){ NULL }, &t, &e), -1);
	assert_non_null(strstr(e.msgs[0], "no notice languages"));
	conf_errors_free(&e);
	tu_rmtree(dir);
	free(tr);
	free(en);
	free(dir);
	free(fixtures);
}

/* CRLF files and a byte order mark load like plain ones. */
static void test_crlf_and_bom(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *tr = xasprintf("%s/tr", dir);
	mkdir(tr, 0700);
	free(tu_write(tr, "w.mail", "\xEF\xBB\xBFSubject: Merhaba {{a}}\r\n\r\n"
				    "{{#a}}\r\nsatır {{a}}\r\n{{/a}}\r\nson\r\n"));
	struct conf_errors e = { 0 };
	struct templates *t;
	assert_int_equal(templates_load(dir, langs_tr, &t, &e), 0);
	json_object *vars = vars_of("{\"a\":\"İ\"}");
	char *subject, *body, *err = NULL;
	assert_int_equal(template_render(t, "w", MEDIUM_MAIL, vars, &subject, &body, &err), 0);
	assert_string_equal(subject, "Merhaba İ");
	assert_string_equal(body, "satır İ\nson\n");
	free(subject);
	free(body);
	json_object_put(vars);
	templates_free(t);
	tu_rmtree(dir);
	free(tr);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_section_values),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_missing_language),
		cmocka_unit_test(test_crlf_and_bom),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
