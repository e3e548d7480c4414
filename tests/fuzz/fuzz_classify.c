/* libFuzzer target: the classifier on arbitrary bytes: classify_raw()
 * with the shipped rules and the corpus's test configuration, the explain
 * JSON, and the pieces that read untrusted text directly (applicant
 * tables from CSV, HTML and text; Authentication-Results; links; command
 * lines). Built and run by tests/fuzz/run-classify. */
#include "applicants.h"
#include "classify_p.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config conf;
static struct rules *rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct conf_errors errs = { 0 };
	const char *root = getenv("EIMZA_SRCDIR") ? getenv("EIMZA_SRCDIR") : ".";
	char *cpath = xasprintf("%s/tests/fixtures/mail/test.conf", root);
	char *rpath = xasprintf("%s/conf/rules.conf", root);
	config_defaults(&conf);
	if (config_load(&conf, cpath, &errs) < 0 || rules_load(rpath, &rules, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		abort();
	}
	conf_errors_free(&errs);
	free(cpath);
	free(rpath);
	log_setlevel(LOG_LVL_ERR);
	return 0;
}

static void tables(const char *s, size_t n)
{
	struct applicant_table t;
	int (*const fns[])(const char *, size_t, const struct config *, struct applicant_table *,
			   char **) = { applicants_from_csv, applicants_from_html, applicants_from_text };
	for (size_t i = 0; i < ARRAY_LEN(fns); i++) {
		char *err = NULL;
		fns[i](s, n, &conf, &t, &err);
		for (size_t r = 0; r < t.nrows; r++)
			for (size_t j = 0; j < t.nextra; j++)
				(void)applicant_table_extra(&t, r, t.extra_names[j]);
		applicant_table_free(&t);
		free(err);
	}
}

static void strings(const char *s)
{
	struct ar_header h;
	if (ar_parse(s, &h) == 0)
		ar_free(&h);
	char *reason = NULL;
	link_check(&conf, s, &reason);
	free(reason);
	struct event ev;
	event_init(&ev);
	command_parse("EIMZA", s, &ev);
	event_free(&ev);
	strv_free(tags_find("EIMZA", s));
	(void)text_date_parse(s);
	(void)tc_valid(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct classify_ctx ctx = { .conf = &conf, .rules = rules, .arrival = 1773100000 };
	struct event ev;
	classify_raw(&ctx, raw, size, &ev);
	json_object *o = event_to_json(&ev, true);
	(void)json_object_to_json_string(o);
	json_object_put(o);
	event_free(&ev);
	if (size < 8192) {
		tables(raw, size);
		char *s = xstrndup(raw, size);
		strings(s);
		free(s);
	}
	return 0;
}
