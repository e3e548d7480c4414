/* Unit tests of officers' commands: the verbs with and without Turkish
 * letters in any case, tags on the command line and in the subject,
 * RED's reason over several lines up to the quoted part or a signature,
 * the officer's own mail to KAMUSM, and what must not be a command. */
#include "testutil.h"

#include "classify_p.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static struct config C;
static struct rules *R;

static int setup(void **state)
{
	(void)state;
	config_defaults(&C);
	C.general.institution_domains = strv_add(NULL, "example.edu.tr");
	C.officers.ebys = strv_add(NULL, "ebys.officer@example.edu.tr");
	C.officers.esign = strv_add(NULL, "esign.officer@example.edu.tr");
	C.trust.authserv_ids = strv_add(NULL, "mx.example.edu.tr");
	free(C.smtp.reply_to);
	C.smtp.reply_to = xstrdup("E-İmza <eimza@example.edu.tr>");
	free(C.smtp.message_id_domain);
	C.smtp.message_id_domain = xstrdup("eimza.example.edu.tr");
	C.trust.require_auth = false;
	char *path = xasprintf("%s/conf/rules.conf", tu_srcdir());
	struct conf_errors errs = { 0 };
	assert_int_equal(rules_load(path, &R, &errs), 0);
	free(path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rules_free(R);
	config_free(&C);
	return 0;
}

/* ---- the first line alone ---- */

static const struct {
	const char *top;
	enum cmd_verb verb;       /* CMD_NONE: not a command */
	const char *apps;         /* space separated, or NULL */
	const char *reason;
} lines[] = {
	{ "ONAY", CMD_APPROVE, NULL, NULL },
	{ "onay", CMD_APPROVE, NULL, NULL },
	{ "  Onay.  \n", CMD_APPROVE, NULL, NULL },
	{ "*ONAY*", CMD_APPROVE, NULL, NULL },
	{ "\n\n   \nONAY\n", CMD_APPROVE, NULL, NULL },
	{ "Onaylıyorum", CMD_NONE, NULL, NULL },
	{ "ONAY1", CMD_NONE, NULL, NULL },
	{ "Merhaba\nONAY", CMD_NONE, NULL, NULL },
	{ "", CMD_NONE, NULL, NULL },
	{ "ONAY EIMZA-2026-0042 EIMZA-2026-0043", CMD_APPROVE, "EIMZA-2026-0042 EIMZA-2026-0043", NULL },
	{ "onay eİmza-2026-0042", CMD_APPROVE, "EIMZA-2026-0042", NULL },
	{ "ONAY [EIMZA-2026-0042],[EIMZA-2026-0042]", CMD_APPROVE, "EIMZA-2026-0042", NULL },
	{ "RED", CMD_REJECT, NULL, NULL },
	{ "RED gerekçe", CMD_REJECT, NULL, "gerekçe" },
	{ "red: Gerekçe Büyük Harfle", CMD_REJECT, NULL, "Gerekçe Büyük Harfle" },
	{ "RED EIMZA-2026-0043: gerekçe", CMD_REJECT, "EIMZA-2026-0043", "gerekçe" },
	{ "RED EIMZA-2026-0043, EIMZA-2026-0044 gerekçe", CMD_REJECT, "EIMZA-2026-0043 EIMZA-2026-0044",
	  "gerekçe" },
	{ "RED [EIMZA-2026-0043] - gerekçe\nikinci satır\n\nüçüncü\n-- \nİmza", CMD_REJECT,
	  "EIMZA-2026-0043", "gerekçe\nikinci satır\n\nüçüncü" },
	{ "RED \xe2\x80\x93 uzun gerekçe", CMD_REJECT, NULL, "uzun gerekçe" },
	{ "RED\r\ngerekçe satırı\r\n", CMD_REJECT, NULL, "gerekçe satırı" },
	{ "REDDEDİLDİ", CMD_NONE, NULL, NULL },
	{ "GONDERILDI", CMD_SUBMITTED, NULL, NULL },
	{ "GÖNDERİLDİ", CMD_SUBMITTED, NULL, NULL },
	{ "gönderildi", CMD_SUBMITTED, NULL, NULL },
	{ "GÖNDERILDI", CMD_SUBMITTED, NULL, NULL },
	{ "Gönderıldı EIMZA-2026-0050", CMD_SUBMITTED, "EIMZA-2026-0050", NULL },
	{ "TESLİM", CMD_DELIVERED, NULL, NULL },
	{ "teslım", CMD_DELIVERED, NULL, NULL },
	{ "Teslim edildi", CMD_DELIVERED, NULL, NULL },
	{ "POSTA", CMD_POSTED, NULL, NULL },
	{ "Posta", CMD_POSTED, NULL, NULL },
	{ "AKTİF", CMD_ACTIVATED, NULL, NULL },
	{ "aktıf", CMD_ACTIVATED, NULL, NULL },
	{ "İPTAL", CMD_CANCEL, NULL, NULL },
	{ "IPTAL", CMD_CANCEL, NULL, NULL },
	{ "ıptal", CMD_CANCEL, NULL, NULL },
};

static void test_first_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
		struct event ev;
		event_init(&ev);
		bool is = command_parse("EIMZA", lines[i].top, &ev);
		if (is != (lines[i].verb != CMD_NONE) || ev.command.verb != lines[i].verb)
			fail_msg("'%s': command %d verb %s", lines[i].top, is, cmd_verb_name(ev.command.verb));
		char **want = NULL;
		if (lines[i].apps) {
			char *copy = xstrdup(lines[i].apps), *save = NULL;
			for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
				want = strv_add(want, t);
			free(copy);
		}
		assert_int_equal(strv_len(ev.command.apps), strv_len(want));
		for (size_t k = 0; want && want[k]; k++)
			assert_string_equal(ev.command.apps[k], want[k]);
		if (lines[i].reason == NULL && ev.command.reason)
			fail_msg("'%s': unexpected reason '%s'", lines[i].top, ev.command.reason);
		if (lines[i].reason)
			assert_non_null(ev.command.reason), assert_string_equal(ev.command.reason, lines[i].reason);
		strv_free(want);
		event_free(&ev);
	}
}

/* ---- whole messages ---- */

static struct event classify_str(const char *raw)
{
	struct classify_ctx ctx = { .conf = &C, .rules = R };
	struct event ev;
	classify_raw(&ctx, raw, strlen(raw), &ev);
	return ev;
}

static struct event run(const char *from, const char *subject, const char *extra_headers,
			const char *body)
{
	char *raw = xasprintf("From: %s\nTo: eimza@example.edu.tr\nSubject: %s\n"
			      "Date: Thu, 12 Mar 2026 11:00:00 +0300\nMessage-ID: <t@example.edu.tr>\n"
			      "%sX-Synthetic: yes\nMIME-Version: 1.0\n"
			      "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s",
			      from, subject, extra_headers, body);
	struct event ev = classify_str(raw);
	free(raw);
	return ev;
}

#define REPLY "In-Reply-To: <n.1@eimza.example.edu.tr>\nReferences: <n.1@eimza.example.edu.tr>\n"
#define EBYS "EBYS <ebys.officer@example.edu.tr>"

static void test_reason_ends_at_quote(void **state)
{
	(void)state;
	static const char *const quotes[] = {
		"On Thu, 12 Mar 2026 at 10:00, E-İmza <eimza@example.edu.tr> wrote:\n> RED için gerekçe yazınız\n",
		"12 Mar 2026 Per, 10:00 tarihinde E-İmza <eimza@example.edu.tr> şunu yazdı:\n> eski\n",
		"-----Original Message-----\nFrom: E-İmza <eimza@example.edu.tr>\nSent: Thursday\n"
		"Subject: [EIMZA-2026-0042]\n\nRED için gerekçe\n",
		"> [EIMZA-2026-0042] karar bekliyor\n> RED <gerekçe>\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(quotes); i++) {
		char *body = xasprintf("RED EIMZA-2026-0043: Kadro imza yetkisi\ngerektirmiyor.\n\n%s",
				       quotes[i]);
		struct event ev = run(EBYS, "Re: [EIMZA-2026-0042] Karar", REPLY, body);
		assert_int_equal(ev.kind, MK_COMMAND);
		assert_int_equal(ev.command.verb, CMD_REJECT);
		if (ev.command.reason == NULL ||
		    strcmp(ev.command.reason, "Kadro imza yetkisi\ngerektirmiyor.") != 0)
			fail_msg("quote %zu: reason '%s'", i, ev.command.reason);
		/* tags on the line and in the subject are kept apart */
		assert_int_equal(strv_len(ev.command.apps), 1);
		assert_string_equal(ev.command.apps[0], "EIMZA-2026-0043");
		assert_int_equal(strv_len(ev.command.subject_apps), 1);
		assert_string_equal(ev.command.subject_apps[0], "EIMZA-2026-0042");
		assert_true(ev.trusted);
		event_free(&ev);
		free(body);
	}
}

static void test_reject_without_reason(void **state)
{
	(void)state;
	struct event ev = run(EBYS, "Re: [EIMZA-2026-0042]", REPLY, "RED\n\n> alıntı\n");
	assert_int_equal(ev.command.verb, CMD_REJECT);
	assert_null(ev.command.reason);
	bool found = false;
	for (size_t i = 0; ev.problems && ev.problems[i]; i++)
		found |= strstr(ev.problems[i], "RED without a reason") != NULL;
	assert_true(found);
	event_free(&ev);
}

static void test_gonderildi_turkish_subject_tags(void **state)
{
	(void)state;
	struct event ev = run("E-imza <esign.officer@example.edu.tr>",
			      "=?utf-8?q?YNT=3A_=5BE=C4=B0MZA-2026-0051=5D_Form?=", REPLY,
			      "GÖNDERİLDİ\n");
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_int_equal(ev.command.verb, CMD_SUBMITTED);
	assert_null(ev.command.apps);
	assert_int_equal(strv_len(ev.command.subject_apps), 1);
	assert_string_equal(ev.command.subject_apps[0], "EIMZA-2026-0051");
	event_free(&ev);
}

static void test_officer_mail_to_kamusm(void **state)
{
	(void)state;
	static const struct {
		const char *to, *cc, *subject;
		bool command;
	} t[] = {
		{ "basvuru@kamusm.gov.tr", "eimza@example.edu.tr", "[EIMZA-2026-0046] Form", true },
		{ "BASVURU@KAMUSM.GOV.TR", "E-İmza <eimza@example.edu.tr>", "EIMZA-2026-0046 form", true },
		{ "basvuru@kamusm.gov.tr", "eimza@example.edu.tr", "Form (no tag)", false },
		{ "basvuru@kamusm.gov.tr", "someone@example.edu.tr", "[EIMZA-2026-0046] Form", false },
		{ "basvuru@kamusm-gov.tr", "eimza@example.edu.tr", "[EIMZA-2026-0046] Form", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		char *raw = xasprintf("From: esign.officer@example.edu.tr\nTo: %s\nCc: %s\nSubject: %s\n"
				      "X-Synthetic: yes\n\nSayın Yetkili, formlar ektedir.\n",
				      t[i].to, t[i].cc, t[i].subject);
		struct event ev = classify_str(raw);
		bool is = ev.kind == MK_COMMAND && ev.command.verb == CMD_SUBMITTED;
		if (is != t[i].command)
			fail_msg("case %zu: kind %s verb %s", i, msg_kind_name(ev.kind),
				 cmd_verb_name(ev.command.verb));
		if (is)
			assert_string_equal(ev.command.subject_apps[0], "EIMZA-2026-0046");
		event_free(&ev);
		free(raw);
	}
	/* not from an officer: no command */
	struct event ev = run("birim@example.edu.tr", "[EIMZA-2026-0046] Form", "Cc: eimza@example.edu.tr\n",
			      "Formlar ektedir.\n");
	assert_int_not_equal(ev.kind, MK_COMMAND);
	event_free(&ev);
}

static void test_not_commands(void **state)
{
	(void)state;
	/* an officer's vacation reply that begins with a verb */
	struct event ev = run(EBYS, "Re: [EIMZA-2026-0042]", REPLY "Auto-Submitted: auto-replied\n",
			      "ONAY işlemleri için 23 Mart'tan sonra yazınız.\n");
	assert_int_equal(ev.kind, MK_AUTO_REPLY);
	event_free(&ev);
	/* a notification system's mail never commands */
	ev = run(EBYS, "Rapor", "Auto-Submitted: auto-generated\n", "ONAY bekleyen 3 evrak var.\n");
	assert_int_not_equal(ev.kind, MK_COMMAND);
	event_free(&ev);
	/* KAMUSM's mail starting with "Onay" goes to the rules */
	ev = run("bilgi@kamusm.gov.tr", "Onay", "", "Onay kodunuz: 123456\n");
	assert_int_not_equal(ev.kind, MK_COMMAND);
	event_free(&ev);
	/* a unit's new letter starting with "Onay ..." is a request, not a
	 * refused command */
	ev = run("Fizik Bölümü <fizik@example.edu.tr>", "E-imza talebi", "",
		 "Onay için: aşağıdaki personel için e-imza talebimizi sunarız.\n\n"
		 "Ad Soyad: Ayşegül Deneme\nE-posta: aysegul.deneme@example.edu.tr\n");
	assert_int_equal(ev.kind, MK_REQUEST);
	assert_int_equal(ev.napplicants, 1);
	event_free(&ev);
	/* but a non-officer's reply to a notice is a command, refused */
	ev = run("Ayşegül <aysegul.deneme@example.edu.tr>", "Re: [EIMZA-2026-0042] E-imza talebi", REPLY,
		 "ONAY\n");
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_false(ev.trusted);
	assert_non_null(strstr(ev.trust_reason, "not an officer"));
	event_free(&ev);
}

/* Exchange may mark a person's own mail with X-Auto-Response-Suppress:
 * an officer's command still counts; unclaimed mail so marked does not. */
static void test_suppress_header(void **state)
{
	(void)state;
	struct event ev = run(EBYS, "Re: [EIMZA-2026-0042]", REPLY "X-Auto-Response-Suppress: All\n",
			      "ONAY\n");
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_int_equal(ev.command.verb, CMD_APPROVE);
	event_free(&ev);
	ev = run("someone@mail.example", "Hello", "X-Auto-Response-Suppress: All\n", "Hello\n");
	assert_int_equal(ev.kind, MK_AUTO_REPLY);
	event_free(&ev);
}

static void test_html_command(void **state)
{
	(void)state;
	const char *raw = "From: " EBYS "\nTo: eimza@example.edu.tr\nSubject: Re: [EIMZA-2026-0042]\n"
			  REPLY "X-Synthetic: yes\nMIME-Version: 1.0\n"
			  "Content-Type: text/html; charset=utf-8\n\n"
			  "<html><body><p><b>RED</b> EIMZA-2026-0042: Yetki&nbsp;yok.</p>"
			  /* Gmail's reply: the attribution, then the old mail quoted */
			  "<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">"
			  "26 Kas 2026 Per, 10:00 tarihinde E-\xC4\xB0mza &lt;eimza@example.edu.tr&gt;"
			  " \xC5\x9Funu yazd\xC4\xB1:<br></div>"
			  "<blockquote class=\"gmail_quote\">eski ileti</blockquote></div></body></html>\n";
	struct event ev = classify_str(raw);
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_int_equal(ev.command.verb, CMD_REJECT);
	assert_string_equal(ev.command.apps[0], "EIMZA-2026-0042");
	assert_non_null(ev.command.reason);
	assert_string_equal(ev.command.reason, "Yetki yok.");
	event_free(&ev);
}

int main(void)
{
	log_init("test_commands", false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_line),
		cmocka_unit_test_setup_teardown(test_reason_ends_at_quote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_without_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gonderildi_turkish_subject_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_officer_mail_to_kamusm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suppress_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_html_command, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
