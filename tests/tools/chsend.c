/*
 * chsend: drive one channel from the command line, for integration tests
 * and benchmarks.
 *
 *   chsend [-v] [-q] [-m mail|sms] [-b batch] [-r repeat] [-t threads] CONFIG NOTICES.json
 *
 * Reads a config file and a JSON array of notices ({"id", "medium", "to",
 * "subject", "body", "body_html", "message_id", "in_reply_to",
 * "references", "created"}), creates the channel of the medium (-m, else
 * the first notice's), sends the notices in batches of -b (default: all in
 * one batch), -r times over, and prints one JSON object. With -t N the
 * notices are split into N slices sent from N threads at once on the one
 * channel instance (the outbox's [smtp] sessions workers do that).
 *   {"results": [{"id", "outcome", "detail", "provider_id",
 *                 "retry_after"}...],            (omitted with -q)
 *    "counts": {"sent": n, ...}, "elapsed_ms": t, "notices": n}
 * An open() failure prints {"open_error": "..."} and exits 3; a bad
 * config or notices file exits 2. -v logs at debug level to stderr.
 */
#include "channel.h"
#include "config.h"
#include "log.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A notice from the notices file's simpler shape (not notice_from_json's
 * stored form: no version, state or RFC 3339 times). */
static struct notice *tnotice(json_object *o)
{
	struct notice *n = notice_new();
	static const struct { const char *key; size_t off; } strs[] = {
		{ "id", offsetof(struct notice, id) },
		{ "to", offsetof(struct notice, to) },
		{ "subject", offsetof(struct notice, subject) },
		{ "body", offsetof(struct notice, body) },
		{ "body_html", offsetof(struct notice, body_html) },
		{ "message_id", offsetof(struct notice, message_id) },
		{ "in_reply_to", offsetof(struct notice, in_reply_to) },
		{ "references", offsetof(struct notice, references) },
		{ "kind", offsetof(struct notice, kind) },
	};
	for (size_t i = 0; i < ARRAY_LEN(strs); i++) {
		json_object *v;
		if (json_object_object_get_ex(o, strs[i].key, &v) && !json_object_is_type(v, json_type_null))
			*(char **)((char *)n + strs[i].off) = xstrdup(json_object_get_string(v));
	}
	json_object *v;
	n->medium = json_object_object_get_ex(o, "medium", &v) &&
		strcmp(json_object_get_string(v), "sms") == 0 ? MEDIUM_SMS : MEDIUM_MAIL;
	if (json_object_object_get_ex(o, "created", &v))
		n->created = (time_t)json_object_get_int64(v);
	return n;
}

static json_object *result_json(const struct notice *n, const struct delivery *d)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "id", json_object_new_string(n->id ? n->id : ""));
	json_object_object_add(r, "outcome", json_object_new_string(dlv_outcome_name(d->outcome)));
	json_object_object_add(r, "detail", d->detail ? json_object_new_string(d->detail) : NULL);
	json_object_object_add(r, "provider_id", d->provider_id ? json_object_new_string(d->provider_id) : NULL);
	json_object_object_add(r, "retry_after", json_object_new_int(d->retry_after));
	return r;
}

/* Send ns[] in batches, `repeat` times; counts outcomes, and returns the
 * per-notice results (an empty array when quiet). */
static json_object *send_all(struct channel *ch, struct notice **ns, size_t n, size_t batch,
			     int repeat, bool quiet, size_t counts[4])
{
	struct delivery *out = xcalloc(n ? n : 1, sizeof(*out));
	json_object *results = json_object_new_array();
	for (int r = 0; r < repeat; r++) {
		for (size_t i = 0; i < n; i += batch) {
			size_t k = n - i < batch ? n - i : batch;
			ch->ops->send(ch, ns + i, k, out + i);
			for (size_t j = i; j < i + k; j++) {
				counts[out[j].outcome]++;
				if (!quiet)
					json_object_array_add(results, result_json(ns[j], &out[j]));
				delivery_clear(&out[j]);
			}
		}
	}
	free(out);
	return results;
}

struct slice {
	struct channel *ch;
	struct notice **ns;
	size_t n, batch;
	int repeat;
	bool quiet;
	size_t counts[4];
	json_object *results;
};

static void *slice_main(void *arg)
{
	struct slice *s = arg;
	s->results = send_all(s->ch, s->ns, s->n, s->batch, s->repeat, s->quiet, s->counts);
	return NULL;
}

/* Send from `threads` threads at once (slices of ns), merge the results. */
static json_object *send_threads(struct channel *ch, struct notice **ns, size_t n, size_t batch,
				 int repeat, bool quiet, int threads, size_t counts[4])
{
	struct slice *sl = xcalloc((size_t)threads, sizeof(*sl));
	pthread_t *tid = xcalloc((size_t)threads, sizeof(*tid));
	size_t per = (n + (size_t)threads - 1) / (size_t)threads;
	for (int t = 0; t < threads; t++) {
		size_t from = (size_t)t * per < n ? (size_t)t * per : n;
		size_t k = n - from < per ? n - from : per;
		sl[t] = (struct slice){ .ch = ch, .ns = ns + from, .n = k,
					.batch = batch < k || k == 0 ? batch : k,
					.repeat = repeat, .quiet = quiet };
		pthread_create(&tid[t], NULL, slice_main, &sl[t]);
	}
	json_object *all = json_object_new_array();
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		for (int k = 0; k < 4; k++)
			counts[k] += sl[t].counts[k];
		for (size_t i = 0; i < json_object_array_length(sl[t].results); i++)
			json_object_array_add(all, json_object_get(json_object_array_get_idx(sl[t].results, i)));
		json_object_put(sl[t].results);
	}
	free(tid);
	free(sl);
	return all;
}

/* Send and print the summary object. */
static void run(struct channel *ch, struct notice **ns, size_t n, size_t batch, int repeat,
		bool quiet, int threads)
{
	if (batch == 0 || batch > n)
		batch = n ? n : 1;
	size_t counts[4] = { 0 };
	int64_t t0 = mono_ms();
	json_object *results = threads > 1
		? send_threads(ch, ns, n, batch, repeat, quiet, threads, counts)
		: send_all(ch, ns, n, batch, repeat, quiet, counts);
	int64_t elapsed = mono_ms() - t0;
	json_object *o = json_object_new_object(), *cj = json_object_new_object();
	for (int k = 0; k < 4; k++)
		json_object_object_add(cj, dlv_outcome_name((enum dlv_outcome)k),
				       json_object_new_int64((int64_t)counts[k]));
	if (!quiet)
		json_object_object_add(o, "results", results);
	else
		json_object_put(results);
	json_object_object_add(o, "counts", cj);
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(elapsed));
	json_object_object_add(o, "notices", json_object_new_int64((int64_t)(n * (size_t)repeat)));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static int load(const char *conf_path, const char *notices_path, struct config *c,
		json_object **arr)
{
	struct conf_errors e = { 0 };
	config_defaults(c);
	if (config_load(c, conf_path, &e) < 0) {
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "%s\n", e.msgs[i]);
		conf_errors_free(&e);
		return -1;
	}
	*arr = json_object_from_file(notices_path);
	if (*arr == NULL || !json_object_is_type(*arr, json_type_array)) {
		fprintf(stderr, "%s: not a JSON array of notices\n", notices_path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool verbose = false, quiet = false;
	const char *medium = NULL;
	size_t batch = 0;
	int repeat = 1, threads = 1, opt;
	while ((opt = getopt(argc, argv, "vqm:b:r:t:")) != -1) {
		switch (opt) {
		case 'v': verbose = true; break;
		case 'q': quiet = true; break;
		case 'm': medium = optarg; break;
		case 'b': batch = (size_t)atol(optarg); break;
		case 'r': repeat = atoi(optarg); break;
		case 't': threads = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		default: fprintf(stderr, "usage: chsend [-v] [-q] [-m mail|sms] [-b n] [-r n] [-t n] CONFIG NOTICES\n"); return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: chsend [-v] [-q] [-m mail|sms] [-b n] [-r n] [-t n] CONFIG NOTICES\n");
		return 2;
	}
	log_init("chsend", verbose);
	struct config c;
	json_object *arr = NULL;
	if (load(argv[optind], argv[optind + 1], &c, &arr) < 0)
		return 2;
	size_t n = json_object_array_length(arr);
	struct notice **ns = xcalloc(n ? n : 1, sizeof(*ns));
	for (size_t i = 0; i < n; i++)
		ns[i] = tnotice(json_object_array_get_idx(arr, i));
	enum medium m = medium ? (strcmp(medium, "sms") == 0 ? MEDIUM_SMS : MEDIUM_MAIL)
			       : (n ? ns[0]->medium : MEDIUM_MAIL);
	struct channel *ch = NULL;
	char *err = NULL;
	int rc = 3;
	if (channel_create(&c, m, &ch, &err) < 0 || ch == NULL) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "open_error", json_object_new_string(err ? err : "channel is none"));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		free(err);
	} else {
		run(ch, ns, n, batch ? batch : n, repeat, quiet, threads);
		rc = 0;
	}
	channel_destroy(ch);
	for (size_t i = 0; i < n; i++)
		notice_free(ns[i]);
	free(ns);
	json_object_put(arr);
	config_free(&c);
	return rc;
}
