/*
 * classify_bench: the classifier over a corpus of .eml files.
 *
 *   classify_bench [-c CONF] [-r RULES] [-n ROUNDS] [--explain [--show-secrets]]
 *                  [--raw-once] FILE...
 *
 * Default: messages per second through classify_raw(), through
 * message_parse() alone, and through classify() alone (on messages parsed
 * beforehand), ROUNDS times over the files. --explain prints each file's
 * event as the `eimzactl explain --json` object instead. --raw-once runs
 * classify_raw() once per file and nothing else: the shape to measure
 * under callgrind (see classify_bench.sh), where message_parse and
 * classify then show their inclusive instruction counts side by side.
 */
#include "classify.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct corpus {
	struct buf *v;
	char **names;
	size_t n;
};

static void load(struct corpus *c, char **files, int n)
{
	c->v = xcalloc((size_t)n, sizeof(*c->v));
	c->names = files;
	for (int i = 0; i < n; i++) {
		char *err = NULL;
		if (file_read(files[i], 0, &c->v[i], &err) < 0)
			fatalx("%s: %s", files[i], err);
	}
	c->n = (size_t)n;
}

static double per_sec(size_t n, int64_t ms)
{
	return ms > 0 ? (double)n * 1000.0 / (double)ms : 0;
}

static void bench(const struct classify_ctx *ctx, const struct corpus *c, int rounds)
{
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	size_t total = c->n * (size_t)rounds, bytes = 0;
	for (size_t i = 0; i < c->n; i++)
		bytes += c->v[i].len;
	int64_t t0 = mono_ms();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < c->n; i++) {
			struct event ev;
			classify_raw(ctx, c->v[i].p, c->v[i].len, &ev);
			event_free(&ev);
		}
	int64_t t_raw = mono_ms() - t0;
	t0 = mono_ms();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < c->n; i++) {
			struct message *m = NULL;
			if (message_parse(c->v[i].p, c->v[i].len, &lim, &m, NULL) == 0)
				message_free(m);
		}
	int64_t t_parse = mono_ms() - t0;
	struct message **ms = xcalloc(c->n, sizeof(*ms));
	for (size_t i = 0; i < c->n; i++)
		message_parse(c->v[i].p, c->v[i].len, &lim, &ms[i], NULL);
	t0 = mono_ms();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < c->n; i++) {
			struct event ev;
			if (ms[i] == NULL)
				continue;
			classify(ctx, ms[i], &ev);
			event_free(&ev);
		}
	int64_t t_cls = mono_ms() - t0;
	for (size_t i = 0; i < c->n; i++)
		if (ms[i])
			message_free(ms[i]);
	free(ms);
	printf("corpus: %zu messages, %zu bytes, %d rounds\n", c->n, bytes, rounds);
	printf("classify_raw:       %8.0f msg/s  (%.1f us/msg)\n", per_sec(total, t_raw),
	       (double)t_raw * 1000.0 / (double)total);
	printf("message_parse only: %8.0f msg/s  (%.1f us/msg)\n", per_sec(total, t_parse),
	       (double)t_parse * 1000.0 / (double)total);
	printf("classify only:      %8.0f msg/s  (%.1f us/msg)\n", per_sec(total, t_cls),
	       (double)t_cls * 1000.0 / (double)total);
	printf("classify / parse:   %.2f\n", t_parse ? (double)t_cls / (double)t_parse : 0);
}

static void explain(const struct classify_ctx *ctx, const struct corpus *c, bool secrets)
{
	for (size_t i = 0; i < c->n; i++) {
		struct event ev;
		classify_raw(ctx, c->v[i].p, c->v[i].len, &ev);
		json_object *o = event_to_json(&ev, secrets);
		printf("%s: %s\n", c->names[i],
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		event_free(&ev);
	}
}

int main(int argc, char **argv)
{
	const char *conf_path = "tests/fixtures/mail/test.conf", *rules_path = "conf/rules.conf";
	int rounds = 20, i = 1;
	bool do_explain = false, secrets = false, once = false;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf_path = argv[++i];
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			rules_path = argv[++i];
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--explain") == 0)
			do_explain = true;
		else if (strcmp(argv[i], "--show-secrets") == 0)
			secrets = true;
		else if (strcmp(argv[i], "--raw-once") == 0)
			once = true;
		else
			fatalx("usage: classify_bench [-c CONF] [-r RULES] [-n ROUNDS] "
			       "[--explain [--show-secrets]] [--raw-once] FILE...");
	}
	log_init("classify_bench", false);
	struct config conf;
	struct conf_errors errs = { 0 };
	config_defaults(&conf);
	struct rules *rules = NULL;
	if (config_load(&conf, conf_path, &errs) < 0 || rules_load(rules_path, &rules, &errs) < 0) {
		for (size_t k = 0; k < errs.n; k++)
			fprintf(stderr, "%s\n", errs.msgs[k]);
		return 1;
	}
	struct corpus c;
	load(&c, argv + i, argc - i);
	struct classify_ctx ctx = { .conf = &conf, .rules = rules, .arrival = 0 };
	if (do_explain) {
		explain(&ctx, &c, secrets);
	} else if (once) {
		for (size_t k = 0; k < c.n; k++) {
			struct event ev;
			classify_raw(&ctx, c.v[k].p, c.v[k].len, &ev);
			event_free(&ev);
		}
	} else {
		bench(&ctx, &c, rounds);
	}
	for (size_t k = 0; k < c.n; k++)
		buf_free(&c.v[k]);
	free(c.v);
	rules_free(rules);
	config_free(&conf);
	conf_errors_free(&errs);
	return 0;
}
