/* Unit tests of the classifier over the synthetic corpus
 * (the .eml files of tests/fixtures/mail, expectations in expected.json, written by
 * make_fixtures.py), plus the rules file, tags, TC numbers, dates, event
 * JSON and event time. */
#include "testutil.h"

#include "classify_p.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct env {
	struct config conf;
	struct rules *rules;
	json_object *expected;
};

static struct env E;

static char *src_path(const char *rel)
{
	return xasprintf("%s/%s", tu_srcdir(), rel);
}

static void env_load(void)
{
	struct conf_errors errs = { 0 };
	char *conf = src_path("tests/fixtures/mail/test.conf");
	char *rules = src_path("conf/rules.conf");
	char *exp = src_path("tests/fixtures/mail/expected.json");
	config_defaults(&E.conf);
	if (config_load(&E.conf, conf, &errs) < 0 || rules_load(rules, &E.rules, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, "cannot load the test configuration\n");
		exit(1);
	}
	E.expected = json_object_from_file(exp);
	if (E.expected == NULL) {
		fprintf(stderr, "cannot read %s\n", exp);
		exit(1);
	}
	conf_errors_free(&errs);
	free(conf);
	free(rules);
	free(exp);
}

static void env_free(void)
{
	json_object_put(E.expected);
	rules_free(E.rules);
	config_free(&E.conf);
}

static void classify_file(const char *name, struct event *ev, time_t arrival)
{
	char *rel = xasprintf("tests/fixtures/mail/%s", name);
	char *path = src_path(rel);
	struct buf b = BUF_INIT;
	char *err = NULL;
	if (file_read(path, 0, &b, &err) < 0)
		fail_msg("%s: %s", path, err);
	struct classify_ctx ctx = { .conf = &E.conf, .rules = E.rules, .arrival = arrival };
	classify_raw(&ctx, b.p ? b.p : "", b.len, ev);
	buf_free(&b);
	free(path);
	free(rel);
}

/* ---- expectations ---- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v) : NULL;
}

static bool jhas(json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

/* A string field: equal when expected, absent (NULL) when not. */
static void want_str(json_object *e, const char *key, const char *got, bool must_be_null_if_absent)
{
	const char *want = jstr(e, key);
	if (want)
		assert_non_null(got), assert_string_equal(got, want);
	else if (must_be_null_if_absent)
		assert_null(got);
}

/* A list: equal when expected; when not, empty if `strict`. */
static void want_strv(json_object *e, const char *key, char *const *got, bool strict)
{
	json_object *a;
	if (!json_object_object_get_ex(e, key, &a)) {
		if (strict && strv_len(got))
			fail_msg("%s: unexpected '%s'", key, got[0]);
		return;
	}
	size_t n = json_object_array_length(a);
	assert_int_equal(strv_len(got), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(got[i], json_object_get_string(json_object_array_get_idx(a, i)));
}

static bool contains(char *const *v, const char *needle)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strstr(v[i], needle))
			return true;
	return false;
}

static void check_kamusm(json_object *e, const struct event *ev)
{
	want_str(e, "link", ev->link, true);
	want_str(e, "access_code", ev->access_code, true);
	want_str(e, "tracking_no", ev->tracking_no, true);
	want_str(e, "applicant_email", ev->applicant.email, false);
	want_str(e, "applicant_name", ev->applicant.name, false);
	const char *exp = jstr(e, "expiry");
	if (exp) {
		char buf[16];
		struct tm tm;
		gmtime_r(&ev->expiry, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
		assert_string_equal(buf, exp);
	} else {
		assert_int_equal(ev->expiry, 0);
	}
}

static void check_command(json_object *e, const struct event *ev)
{
	const char *verb = jstr(e, "verb");
	if (verb)
		assert_string_equal(cmd_verb_name(ev->command.verb), verb);
	bool cmd = ev->kind == MK_COMMAND;
	want_strv(e, "apps", ev->command.apps, cmd);
	want_strv(e, "subject_apps", ev->command.subject_apps, cmd);
	want_str(e, "reason", ev->command.reason, false);
}

static void check_bounce(json_object *e, const struct event *ev)
{
	want_str(e, "bounce_recipient", ev->bounce.recipient, false);
	want_str(e, "bounce_status", ev->bounce.status, false);
	want_str(e, "bounce_notice", ev->bounce.notice, false);
	json_object *p;
	if (json_object_object_get_ex(e, "bounce_permanent", &p))
		assert_int_equal(ev->bounce.permanent, json_object_get_boolean(p));
}

static void check_request(json_object *e, const struct event *ev)
{
	want_str(e, "unit_name", ev->unit_name, false);
	want_str(e, "unit_reply_to", ev->unit_reply_to, false);
	json_object *a;
	if (json_object_object_get_ex(e, "applicants", &a)) {
		assert_int_equal(ev->napplicants, json_object_array_length(a));
		for (size_t i = 0; i < ev->napplicants; i++)
			assert_string_equal(ev->applicants[i].email,
					    json_object_get_string(json_object_array_get_idx(a, i)));
	}
	if (json_object_object_get_ex(e, "row_errors", &a)) {
		assert_int_equal(ev->nrow_errors, json_object_array_length(a));
		for (size_t i = 0; i < ev->nrow_errors; i++)
			assert_int_equal(ev->row_errors[i].row,
					 json_object_get_int(json_object_array_get_idx(a, i)));
	}
	if (jhas(e, "applicant0_mobile"))
		want_str(e, "applicant0_mobile", ev->applicants[0].mobile, false);
	if (jhas(e, "applicant0_tc"))
		want_str(e, "applicant0_tc", ev->applicants[0].tc, false);
}

static void test_fixture(void **state)
{
	const char *name = *state;
	json_object *e = NULL;
	assert_true(json_object_object_get_ex(E.expected, name, &e));
	struct event ev;
	classify_file(name, &ev, 0);
	assert_string_equal(msg_kind_name(ev.kind), jstr(e, "kind"));
	json_object *t;
	assert_true(json_object_object_get_ex(e, "trusted", &t));
	if (ev.trusted != json_object_get_boolean(t))
		fail_msg("%s: trusted %d, want %d (%s)", name, ev.trusted, json_object_get_boolean(t),
			 ev.trust_reason);
	assert_non_null(ev.trust_reason);
	want_str(e, "rule", ev.rule, false);
	want_str(e, "forwarded_by", ev.forwarded_by, ev.kind != MK_OTHER);
	want_str(e, "original_from", ev.from, false);
	want_str(e, "subject", ev.subject, false);
	const char *date = jstr(e, "date");
	if (date) {
		char buf[40];
		assert_string_equal(time_fmt_utc(ev.date, buf, sizeof(buf)), date);
	}
	check_kamusm(e, &ev);
	check_command(e, &ev);
	check_bounce(e, &ev);
	check_request(e, &ev);
	const char *pc = jstr(e, "problems_contains");
	if (pc && !contains(ev.problems, pc))
		fail_msg("%s: no problem mentions '%s'", name, pc);
	const char *tc = jstr(e, "trust_reason_contains");
	if (tc && !strstr(ev.trust_reason, tc))
		fail_msg("%s: trust_reason '%s' lacks '%s'", name, ev.trust_reason, tc);
	event_free(&ev);
}

/* ---- beyond the corpus ---- */

static void test_corpus_size(void **state)
{
	(void)state;
	/* the brief asks for at least 60 messages, each labelled synthetic */
	assert_true(json_object_object_length(E.expected) >= 60);
	json_object_object_foreach(E.expected, name, val) {
		(void)val;
		char *rel = xasprintf("tests/fixtures/mail/%s", name);
		char *path = src_path(rel);
		struct buf b = BUF_INIT;
		assert_int_equal(file_read(path, 0, &b, NULL), 0);
		if (b.len > 0 && memmem(b.p, b.len, "X-Synthetic: yes", 16) == NULL)
			fail_msg("%s has no X-Synthetic: yes header", name);
		buf_free(&b);
		free(path);
		free(rel);
	}
}

static void test_time_bounded_by_arrival(void **state)
{
	(void)state;
	struct event ev;
	/* Date 2026-03-10T07:15:00Z; arrival earlier bounds it */
	time_t arrival = 1773100000;      /* 2026-03-09 */
	classify_file("01-cred-utf8-qp.eml", &ev, arrival);
	assert_int_equal(ev.date, arrival);
	event_free(&ev);
	classify_file("01-cred-utf8-qp.eml", &ev, arrival + 86400 * 10);
	assert_int_equal(ev.date, 1773126900);
	event_free(&ev);
}

static void test_json_shape(void **state)
{
	(void)state;
	struct event ev;
	classify_file("63-req-csv-utf8-bom.eml", &ev, 0);
	json_object *o = event_to_json(&ev, false);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(s, "\"kind\":\"request\""));
	assert_non_null(strstr(s, "\"tc\":\"10*******78\""));
	assert_null(strstr(s, "10000000078"));
	assert_non_null(strstr(s, "\"mobile\":\"+905320000001\""));
	json_object *f, *u;
	assert_true(json_object_object_get_ex(o, "fields", &f));
	assert_true(json_object_object_get_ex(f, "unit", &u));
	assert_string_equal(jstr(u, "reply_to"), "fen.dekanlik@example.edu.tr");
	json_object_put(o);
	o = event_to_json(&ev, true);
	assert_non_null(strstr(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "10000000078"));
	json_object_put(o);
	event_free(&ev);

	classify_file("01-cred-utf8-qp.eml", &ev, 0);
	o = event_to_json(&ev, false);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(s, "\"access_code\":\"******\""));
	assert_null(strstr(s, "SYNTH-TEST-1234"));
	assert_non_null(strstr(s, "\"date\":\"2026-03-10T07:15:00Z\""));
	assert_non_null(strstr(s, "\"rule\":\"kamusm_credentials\""));
	assert_non_null(strstr(s, "\"forwarded_by\":null"));
	json_object_put(o);
	o = event_to_json(&ev, true);
	assert_non_null(strstr(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "SYNTH-TEST-1234"));
	json_object_put(o);
	event_free(&ev);

	classify_file("53-bounce-dsn-postfix.eml", &ev, 0);
	o = event_to_json(&ev, false);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(s, "\"bounce\":{\"recipient\":\"eski.personel@example.edu.tr\","
			       "\"permanent\":true,\"status\":\"5.1.1\""));
	json_object_put(o);
	event_free(&ev);

	classify_file("42-cmd-red-multiline.eml", &ev, 0);
	o = event_to_json(&ev, false);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(s, "\"command\":{\"verb\":\"reject\""));
	assert_non_null(strstr(s, "\"applications\":[\"EIMZA-2026-0043\"]"));
	json_object_put(o);
	event_free(&ev);
}

static void test_names(void **state)
{
	(void)state;
	for (int k = 0; k < MK__COUNT; k++) {
		enum msg_kind back;
		assert_int_equal(msg_kind_parse(msg_kind_name((enum msg_kind)k), &back), 0);
		assert_int_equal(back, k);
	}
	for (int v = 0; v < CMD__COUNT; v++) {
		enum cmd_verb back;
		assert_int_equal(cmd_verb_parse(cmd_verb_name((enum cmd_verb)v), &back), 0);
		assert_int_equal(back, v);
	}
	enum msg_kind k;
	assert_int_equal(msg_kind_parse("kamusm", &k), -1);
	assert_string_equal(msg_kind_name(MK_KAMUSM_SHIPPED), "kamusm.shipped");
	assert_string_equal(cmd_verb_name(CMD_SUBMITTED), "submitted");
}

static void test_tc_valid(void **state)
{
	(void)state;
	static const struct {
		const char *tc;
		bool ok;
	} t[] = {
		{ "10000000078", true }, { "10000000077", false }, { "00000000078", false },
		{ "1000000007", false }, { "100000000780", false }, { "1000000007a", false },
		{ "", false }, { "20000000046", true }, { "20000000045", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (tc_valid(t[i].tc) != t[i].ok)
			fail_msg("tc_valid(%s) != %d", t[i].tc, t[i].ok);
	assert_false(tc_valid(NULL));
}

static void test_tags_find(void **state)
{
	(void)state;
	char **v = tags_find("EIMZA", "Re: [EIMZA-2026-0042] and eimza-2026-0043, EİMZA-2027-12345; "
				      "XEIMZA-2026-0001 EIMZA-26-0001 EIMZA-2026-001 [EIMZA-2026-0042]");
	assert_int_equal(strv_len(v), 3);
	assert_string_equal(v[0], "EIMZA-2026-0042");
	assert_string_equal(v[1], "EIMZA-2026-0043");
	assert_string_equal(v[2], "EIMZA-2027-12345");
	strv_free(v);
	assert_null(tags_find("EIMZA", "no tags here"));
	assert_null(tags_find("EIMZA", NULL));
	v = tags_find("BIDB", "[BIDB-2026-0007]");
	assert_string_equal(v[0], "BIDB-2026-0007");
	strv_free(v);
	/* at most 64 tags are read */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 200; i++)
		buf_printf(&b, "EIMZA-2026-%04d ", i);
	v = tags_find("EIMZA", b.p);
	assert_int_equal(strv_len(v), 64);
	strv_free(v);
	buf_free(&b);
}

static void test_text_dates(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *want;
	} t[] = {
		{ "17.04.2027", "2027-04-17" }, { "tarih: 3/5/2027 saat", "2027-05-03" },
		{ "2027-04-17", "2027-04-17" }, { "17 Nisan 2027", "2027-04-17" },
		{ "3 MAYIS 2027", "2027-05-03" }, { "1 Ağustos 2027", "2027-08-01" },
		{ "12 Dec 2027", "2027-12-12" }, { "31.02.2027", NULL }, { "no date", NULL },
		{ "17 Foo 2027", NULL },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		time_t d = text_date_parse(t[i].s);
		if (t[i].want == NULL) {
			assert_int_equal(d, 0);
			continue;
		}
		char buf[16];
		struct tm tm;
		gmtime_r(&d, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
		assert_string_equal(buf, t[i].want);
	}
}

static void test_patterns(void **state)
{
	(void)state;
	struct pattern p;
	size_t so, eo, end;
	char *err = NULL;
	/* (?: does not count; the value is the first capturing group */
	assert_int_equal(pattern_compile(&p, "(?:PAROLA|Şifre)[a-z]*: ([^ ]+)", true, &err), 0);
	assert_int_equal(p.group, 2);      /* the regex's own numbering */
	const char *s = "erisim sifreniz: abc-12 ve";
	assert_true(pattern_search(&p, s, strlen(s), 0, &so, &eo, &end));
	assert_int_equal(eo - so, 6);
	assert_memory_equal(s + so, "abc-12", 6);
	pattern_free(&p);
	/* escapes keep their case: \W is not \w */
	assert_int_equal(pattern_compile(&p, "a\\Wb", false, &err), 0);
	assert_true(pattern_search(&p, "a-b", 3, 0, NULL, NULL, NULL));
	assert_false(pattern_search(&p, "axb", 3, 0, NULL, NULL, NULL));
	pattern_free(&p);
	/* brackets are not groups; [(] is a literal */
	assert_int_equal(pattern_compile(&p, "[(]x[)] (y)", false, &err), 0);
	assert_int_equal(p.group, 1);
	pattern_free(&p);
	assert_int_equal(pattern_compile(&p, "(unbalanced", false, &err), -1);
	assert_non_null(strstr(err, "unbalanced"));
	free(err);
}

static void test_fold_cut(void **state)
{
	(void)state;
	/* the value is cut from the original: case and diacritics intact */
	struct folded f;
	const char *orig = "Erişim Parolası: ŞİFRE-Çok-1";
	text_fold(orig, strlen(orig), true, &f);
	struct pattern p;
	assert_int_equal(pattern_compile(&p, "parolasi: ([^ ]+)", true, NULL), 0);
	size_t so, eo;
	assert_true(pattern_search(&p, f.s, f.len, 0, &so, &eo, NULL));
	char *v = folded_cut(&f, orig, so, eo);
	assert_string_equal(v, "ŞİFRE-Çok-1");
	free(v);
	pattern_free(&p);
	folded_free(&f);
}

static void test_rules_errors(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *path = tu_write(dir, "r.conf",
			      "[rule ok]\nkind = kamusm.info\nfrom = $kamusm_senders\n"
			      "[rule bad_kind]\nkind = kamusm.nope\nsubject = x\n"
			      "[rule bad_re]\nkind = other\nbody = (unclosed\n"
			      "[rule bad_key]\nkind = other\nsubject = x\nsender = y\n"
			      "[rule no_cond]\nkind = other\n"
			      "[rule bad_addr]\nkind = other\nfrom = $nobody\n"
			      "[rule ok]\nkind = other\nsubject = y\n"
			      "[general]\nx = 1\n");
	struct rules *r = (struct rules *)1;
	struct conf_errors errs = { 0 };
	assert_int_equal(rules_load(path, &r, &errs), -1);
	assert_null(r);
	static const char *const want[] = {
		"r.conf:5: kind: 'kamusm.nope'", "r.conf:9: bad pattern '(unclosed'",
		"r.conf:13: unknown key 'sender'", "r.conf:19: rule 'ok' is defined twice",
		"r.conf:22: unknown section [general]", "r.conf:14: rule 'no_cond' has no condition",
		"r.conf:18: '$nobody' is not an address pattern", "r.conf:4: rule 'bad_kind' has no kind",
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		bool found = false;
		for (size_t k = 0; k < errs.n && !found; k++)
			found = strstr(errs.msgs[k], want[i]) != NULL;
		if (!found) {
			for (size_t k = 0; k < errs.n; k++)
				fprintf(stderr, "# %s\n", errs.msgs[k]);
			fail_msg("no error like '%s'", want[i]);
		}
	}
	conf_errors_free(&errs);
	free(path);
	path = tu_write(dir, "good.conf",
			"# comment\n[rule a]\nkind = other\nsubject = ^x\n[rule b]\nkind = request\n"
			"from = *@example.edu.tr, $officers\ntext = talep\n");
	assert_int_equal(rules_load(path, &r, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(rules_count(r), 2);
	rules_free(r);
	assert_int_equal(rules_count(E.rules), 5);
	free(path);
	assert_int_equal(rules_load("/nonexistent/rules.conf", &r, &errs), -1);
	assert_int_equal(errs.n, 1);
	conf_errors_free(&errs);
	tu_rmtree(dir);
	free(dir);
}

/* A configured rule of a built-in kind adds a shape: here a bounce that
 * the built-in recognition would not know. */
static void test_rule_adds_builtin_shape(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *path = tu_write(dir, "r.conf", "[rule odd_bounce]\nkind = bounce\n"
			      "from = *@relay.example\nsubject = ^gonderilemeyen ileti\n");
	struct rules *r = NULL;
	struct conf_errors errs = { 0 };
	assert_int_equal(rules_load(path, &r, &errs), 0);
	const char *raw = "From: relay@relay.example\nTo: eimza@example.edu.tr\n"
			  "Subject: Gönderilemeyen ileti\nX-Synthetic: yes\n\n"
			  "Alici yok: ornek@example.edu.tr reddetti: 550 5.1.1\n";
	struct classify_ctx ctx = { .conf = &E.conf, .rules = r };
	struct event ev;
	classify_raw(&ctx, raw, strlen(raw), &ev);
	assert_int_equal(ev.kind, MK_BOUNCE);
	assert_string_equal(ev.rule, "odd_bounce");
	assert_string_equal(ev.bounce.status, "5.1.1");
	assert_true(ev.bounce.permanent);
	event_free(&ev);
	ctx.rules = E.rules;
	classify_raw(&ctx, raw, strlen(raw), &ev);
	assert_int_equal(ev.kind, MK_OTHER);
	event_free(&ev);
	rules_free(r);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	log_init("test_classify", false);
	log_setlevel(LOG_LVL_ERR);
	env_load();
	size_t n = (size_t)json_object_object_length(E.expected);
	struct CMUnitTest *tests = xcalloc(n + 16, sizeof(*tests));
	char **names = xcalloc(n + 1, sizeof(char *));
	size_t k = 0;
	json_object_object_foreach(E.expected, name, val) {
		(void)val;
		names[k] = xstrdup(name);
		tests[k] = (struct CMUnitTest){ names[k], test_fixture, NULL, NULL, names[k] };
		k++;
	}
	static const struct CMUnitTest more[] = {
		cmocka_unit_test(test_corpus_size),
		cmocka_unit_test(test_time_bounded_by_arrival),
		cmocka_unit_test(test_json_shape),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_tc_valid),
		cmocka_unit_test(test_tags_find),
		cmocka_unit_test(test_text_dates),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_fold_cut),
		cmocka_unit_test(test_rules_errors),
		cmocka_unit_test(test_rule_adds_builtin_shape),
	};
	for (size_t i = 0; i < ARRAY_LEN(more); i++)
		tests[k++] = more[i];
	int rc = _cmocka_run_group_tests("classify", tests, k, NULL, NULL);
	free(tests);
	strv_free(names);
	env_free();
	return rc;
}
