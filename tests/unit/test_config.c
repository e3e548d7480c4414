/* Unit tests of the configuration parser: values, errors with file:line,
 * and the address helpers. */
#include "testutil.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void load_text(const char *text, struct config *c, struct conf_errors *e, char **dirp)
{
	char *dir = tu_tmpdir();
	char *path = tu_write(dir, "t.conf", text);
	config_defaults(c);
	config_load(c, path, e);
	free(path);
	*dirp = dir;
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_string_equal(c.general.timezone, "Europe/Istanbul");
	assert_int_equal(c.workflow.remind_requested.unit, PERIOD_WORK_MINUTES);
	assert_int_equal(c.workflow.remind_requested.n, 240);
	assert_int_equal(c.workflow.posting_day, 5);
	assert_int_equal(c.workflow.reminder_passes[0], 9 * 60);
	assert_int_equal(c.workflow.reminder_passes[1], 14 * 60);
	assert_int_equal(c.workflow.reminder_passes[2], -1);
	assert_int_equal(c.workflow.password_validity.unit, PERIOD_MONTHS);
	assert_int_equal(strv_len(c.trust.kamusm_senders), 3);
	config_free(&c);
}

static void test_values_and_lists(void **state)
{
	(void)state;
	struct config c;
	struct conf_errors e = { 0 };
	char *dir;
	load_text("# comment\n[general]\nstate_dir = state\n"
		  "institution_domains = example.edu.tr, ornek.edu.tr\n"
		  "institution_domains = third.edu.tr\n"
		  "institution_name = \"Örnek \\\"Üniversitesi\\\"\"\n"
		  "[source]\nport = 143\ntls = STARTTLS\nidle = no\n"
		  "[workflow]\nremind_shipped = 10wd\nposting_day = cuma\n", &c, &e, &dir);
	assert_int_equal(e.n, 0);
	char *want = xasprintf("%s/state", dir);
	assert_string_equal(c.general.state_dir, want);
	free(want);
	assert_int_equal(strv_len(c.general.institution_domains), 3);
	assert_string_equal(c.general.institution_domains[2], "third.edu.tr");
	assert_string_equal(c.general.institution_name, "Örnek \"Üniversitesi\"");
	assert_int_equal(c.imap.port, 143);
	assert_int_equal(c.imap.tls, TLS_STARTTLS);
	assert_false(c.imap.idle);
	assert_int_equal(c.workflow.remind_shipped.unit, PERIOD_WORK_DAYS);
	assert_int_equal(c.workflow.remind_shipped.n, 10);
	assert_int_equal(c.workflow.posting_day, 5);
	config_free(&c);
	tu_rmtree(dir);
	free(dir);
}

static void test_errors_have_lines(void **state)
{
	(void)state;
	struct config c;
	struct conf_errors e = { 0 };
	char *dir;
	load_text("[general]\n"
		  "state_dir = /x\n"
		  "no_such_option = 1\n"          /* line 3 */
		  "[source]\n"
		  "port = 99999\n"                /* line 5 */
		  "tls = maybe\n"                 /* line 6 */
		  "this line is broken\n"         /* line 7 */
		  "[nosuch]\n"                    /* line 8 */
		  "[workflow]\n"
		  "remind_requested = 4 hours\n"  /* line 10 */
		  "work_start = 25:00\n", &c, &e, &dir); /* line 11 */
	assert_int_equal(e.n, 7);
	const int lines[] = { 3, 5, 6, 7, 8, 10, 11 };
	for (size_t i = 0; i < e.n; i++) {
		char *needle = xasprintf("t.conf:%d: ", lines[i]);
		if (strstr(e.msgs[i], needle) == NULL)
			fail_msg("error %zu '%s' lacks '%s'", i, e.msgs[i], needle);
		free(needle);
	}
	assert_non_null(strstr(e.msgs[0], "unknown option 'no_such_option'"));
	assert_non_null(strstr(e.msgs[1], "out of range"));
	assert_non_null(strstr(e.msgs[2], "tls, starttls, none"));
	conf_errors_free(&e);
	config_free(&c);
	tu_rmtree(dir);
	free(dir);
}

static void test_periods(void **state)
{
	(void)state;
	struct { const char *in; enum period_unit unit; int64_t n; int ok; } cases[] = {
		{ "30s", PERIOD_SECONDS, 30, 1 }, { "5m", PERIOD_SECONDS, 300, 1 },
		{ "4h", PERIOD_SECONDS, 14400, 1 }, { "7d", PERIOD_SECONDS, 604800, 1 },
		{ "4wh", PERIOD_WORK_MINUTES, 240, 1 }, { "2wd", PERIOD_WORK_DAYS, 2, 1 },
		{ "6mo", PERIOD_MONTHS, 6, 1 }, { "0", PERIOD_SECONDS, 0, 1 },
		{ "x", 0, 0, 0 }, { "-1d", 0, 0, 0 }, { "3 days", 0, 0, 0 }, { "5y", 0, 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct period p;
		char *err = NULL;
		int r = period_parse(cases[i].in, &p, &err);
		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(p.unit, cases[i].unit);
			assert_int_equal(p.n, cases[i].n);
		} else {
			assert_int_equal(r, -1);
			assert_non_null(err);
		}
		free(err);
	}
}

static void test_check_requires(void **state)
{
	(void)state;
	struct config c;
	struct conf_errors e = { 0 };
	config_defaults(&c);
	assert_int_equal(config_check(&c, &e), -1);
	int found_domains = 0, found_host = 0;
	for (size_t i = 0; i < e.n; i++) {
		found_domains |= strstr(e.msgs[i], "institution_domains") != NULL;
		found_host |= strstr(e.msgs[i], "[source] host") != NULL;
	}
	assert_true(found_domains);
	assert_true(found_host);
	conf_errors_free(&e);
	config_free(&c);
}

/* eimzad -n: the secret files in use exist and are private. */
static void test_check_secrets(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *pw = xasprintf("%s/imap.pw", dir);
	char *text = xasprintf("[source]\ntype = imap\npassword_file = %s\n"
			       "[smtp]\nchannel = file\n[sms]\nchannel = file\n", pw);
	struct config c;
	struct conf_errors e = { 0 };
	char *cdir;
	load_text(text, &c, &e, &cdir);
	assert_int_equal(e.n, 0);
	assert_int_equal(config_check_secrets(&c, &e), -1);     /* missing */
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.msgs[0], "[source] password_file"));
	free(tu_write(dir, "imap.pw", "synthetic-secret\n"));
	assert_int_equal(chmod(pw, 0644), 0);
	assert_int_equal(config_check_secrets(&c, &e), -1);     /* readable by others */
	assert_int_equal(e.n, 2);
	assert_non_null(strstr(e.msgs[1], "chmod 600"));
	assert_int_equal(chmod(pw, 0600), 0);
	assert_int_equal(config_check_secrets(&c, &e), 0);
	assert_int_equal(e.n, 2);
	conf_errors_free(&e);
	config_free(&c);
	tu_rmtree(cdir);
	tu_rmtree(dir);
	free(cdir);
	free(dir);
	free(pw);
	free(text);
}

static void test_addresses(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	c.general.institution_domains = strv_add(NULL, "example.edu.tr");
	assert_true(conf_domain_allowed(&c, "ali@example.edu.tr"));
	assert_true(conf_domain_allowed(&c, "ali@bidb.example.edu.tr"));
	assert_true(conf_domain_allowed(&c, "ALI@EXAMPLE.EDU.TR"));
	assert_false(conf_domain_allowed(&c, "ali@example.edu.tr.evil.com"));
	assert_false(conf_domain_allowed(&c, "ali@notexample.edu.tr"));
	assert_false(conf_domain_allowed(&c, "ali"));
	char *pats[] = { "*@kamusm.gov.tr", "officer@example.edu.tr", NULL };
	assert_true(conf_addr_match(pats, "bilgi@kamusm.gov.tr"));
	assert_true(conf_addr_match(pats, "Officer@Example.edu.tr"));
	assert_false(conf_addr_match(pats, "bilgi@kamusm.gov.tr.evil.com"));
	assert_false(conf_addr_match(pats, "other@example.edu.tr"));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_and_lists),
		cmocka_unit_test(test_errors_have_lines),
		cmocka_unit_test(test_periods),
		cmocka_unit_test(test_check_requires),
		cmocka_unit_test(test_check_secrets),
		cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
