/* Unit tests of the pipelined ingest (ingest.c, ingest_pool.c): batches
 * classified on worker threads, applied in order on the caller's.
 *
 * The corpus: every fixture mail twice (the second time a duplicate, by
 * Message-ID or by hash), and for APPS applicants four mails each that
 * only work in order (KAMUSM's information mail, the officer's TESLIM,
 * POSTA, then KAMUSM's shipment notice: submitted -> credentials_issued
 * -> commitment_received -> posted -> shipped), interleaved so that each
 * applicant's four land in different batches, plus a mail repeated inside
 * one batch. It goes through two installations: one classifying every
 * batch on the caller's thread with ez_ingest(), one with three workers,
 * two batches in flight (start k+1, then finish k) and batches from 1 to
 * 64 messages. Both must end in the same state, document by document,
 * with the same outcome for every message; and every applicant shipped. */
#include "testutil.h"

#include "eimzad.h"
#include "ingest_p.h"
#include "jsonutil.h"

#include "log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPS 30
#define NOW "2026-03-16 10:00"

#define CONF_TEXT \
	"[general]\nstate_dir = state\ntemplates_dir = %s/templates\nrules_file = %s/conf/rules.conf\n" \
	"holidays_file = %s/conf/holidays.conf\ninstitution_domains = example.edu.tr\n" \
	"institution_name = Test\ntag_prefix = EIMZA\n" \
	"[officers]\nebys = ebys.officer@example.edu.tr\nesign = esign.officer@example.edu.tr\n" \
	"escalate_to = head@example.edu.tr\n" \
	"[trust]\nauthserv_id = mx.example.edu.tr\n" \
	"[source]\ntype = maildir\nmaildir = mail\n" \
	"[smtp]\nchannel = file\nfrom = eimza@example.edu.tr\nreply_to = eimza@example.edu.tr\n" \
	"message_id_domain = eimza.example.edu.tr\n" \
	"[sms]\nchannel = file\n[outbox]\nfile_dir = out\n"

/* ---- the corpus ---- */

struct corpus {
	struct raw_msg *v;
	size_t n, cap;
};

static void corpus_add(struct corpus *c, char *data, size_t len)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
	}
	c->v[c->n] = (struct raw_msg){ .uid = (uint32_t)c->n + 1, .data = data, .len = len,
				       .size = len };
	c->n++;
}

static void corpus_adds(struct corpus *c, char *text)
{
	corpus_add(c, text, strlen(text));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **fixture_paths(size_t *n)
{
	char *dir = xasprintf("%s/tests/fixtures/mail", tu_srcdir());
	DIR *d = opendir(dir);
	assert_non_null(d);
	char **v = NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (str_endswith(e->d_name, ".eml"))
			v = strv_add(v, e->d_name);
	closedir(d);
	*n = strv_len(v);
	qsort(v, *n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < *n; i++) {
		char *p = xasprintf("%s/%s", dir, v[i]);
		free(v[i]);
		v[i] = p;
	}
	free(dir);
	return v;
}

static char *fixture(const char *path, size_t *len)
{
	struct buf b = BUF_INIT;
	char *err = NULL;
	if (file_read(path, 0, &b, &err) < 0)
		fail_msg("%s", err);
	*len = b.len;
	return b.p ? buf_steal(&b) : xstrdup("");
}

#define KAMUSM_HEAD \
	"Authentication-Results: mx.example.edu.tr;\n" \
	"\tdkim=pass header.d=kamusm.gov.tr header.s=synth;\n" \
	"\tspf=pass smtp.mailfrom=bilgi@kamusm.gov.tr\n" \
	"Received: from mail.kamusm.gov.tr (mail.kamusm.gov.tr [192.0.2.10])\n" \
	"\tby mx.example.edu.tr (Postfix) with ESMTPS id SYNTH01\n" \
	"\tfor <eimza@example.edu.tr>; Mon, 16 Mar 2026 09:00:02 +0300 (+03)\n" \
	"From: KAMUSM (sentetik) <bilgi@kamusm.gov.tr>\n" \
	"To: <app%03d@example.edu.tr>\n"

#define OFFICER_HEAD \
	"Authentication-Results: mx.example.edu.tr; auth=pass smtp.auth=ebys.officer@example.edu.tr;\n" \
	"\tdkim=pass header.d=example.edu.tr header.s=synth\n" \
	"Received: from [10.0.0.5] (ws5.example.edu.tr [10.0.0.5])\n" \
	"\tby mx.example.edu.tr (Postfix) with ESMTPSA id SYNTH02\n" \
	"\tfor <eimza@example.edu.tr>; Mon, 16 Mar 2026 09:00:02 +0300 (+03)\n" \
	"From: EBYS Sorumlusu (sentetik) <ebys.officer@example.edu.tr>\n" \
	"To: eimza@example.edu.tr\n"

#define TAIL \
	"Date: Mon, 16 Mar 2026 09:00:00 +0300\nMessage-ID: <gen.%d.%03d@example.invalid>\n" \
	"X-Synthetic: yes\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n\n"

/* Step s (0-3) of applicant k's way, as a mail. */
static char *step_mail(int s, int k)
{
	switch (s) {
	case 0:
		return xasprintf(KAMUSM_HEAD "Subject: Nitelikli Elektronik Sertifika Başvurusu "
			"Bilgilendirme\n" TAIL "Sayın Sentetik Kişi,\n\nNitelikli Elektronik Sertifika "
			"ön başvurunuz alınmıştır. Başvurunuzu tamamlamak için e-Devlet ile Online "
			"İşlemler sayfasına giriş yapıp Başvurularım bölümünden formu doldurunuz: "
			"https://onlineislemler.kamusm.gov.tr/landing\n", k, s, k);
	case 1:
	case 2:
		return xasprintf(OFFICER_HEAD "Subject: Re: Taahhütname\n" TAIL "%s EIMZA-2026-%04d\n\n"
			"İyi çalışmalar\n", s, k, s == 1 ? "teslim" : "posta", k);
	default:
		return xasprintf(KAMUSM_HEAD "Subject: Sertifikanız kuryeye verildi\n" TAIL
			"Sayın Sentetik Kişi,\n\nNitelikli elektronik sertifikanız ve kart "
			"okuyucunuz anlaşmalı kurye firmasına teslim edilmiştir.\n\nGönderi "
			"numaranız: SYNTH-TRK-%06d\n", k, s, k, k);
	}
}

/* The mixed backlog described at the top. */
static void corpus_make(struct corpus *c)
{
	size_t nf;
	char **paths = fixture_paths(&nf);
	size_t f = 0;
	for (int s = 0; s < 4; s++)
		for (int k = 1; k <= APPS; k++) {
			corpus_adds(c, step_mail(s, k));
			if (s == 1 && k == 7)
				corpus_adds(c, step_mail(s, k));       /* a duplicate in the batch */
			if (k % 2 == 0) {
				size_t len;
				char *raw = fixture(paths[f % nf], &len);
				corpus_add(c, raw, len);
				f++;
			}
		}
	for (; f < 2 * nf; f++) {
		size_t len;
		char *raw = fixture(paths[f % nf], &len);
		corpus_add(c, raw, len);
	}
	strv_free(paths);
}

static void corpus_free(struct corpus *c)
{
	raw_msgs_free(c->v, c->n);
	memset(c, 0, sizeof(*c));
}

/* ---- an installation ---- */

struct inst {
	char *dir;
	struct eimzad ez;
};

static void inst_open(struct inst *in, int workers)
{
	in->dir = tu_tmpdir();
	char *src = realpath(tu_srcdir(), NULL);
	char *text = xasprintf(CONF_TEXT, src, src, src);
	char *path = tu_write(in->dir, "eimzad.conf", text);
	struct conf_errors e = { 0 };
	char *err = NULL;
	ez_init(&in->ez);
	if (ez_load(&in->ez, path, &e) < 0)
		fail_msg("config: %s", e.msgs[0]);
	if (ez_set_now(&in->ez, NOW, &err) < 0 || ez_open(&in->ez, EZ_TOOL, &err) != 0)
		fail_msg("open: %s", err);
	in->ez.ingest_workers = workers;
	struct txn *t = store_begin(in->ez.store);
	for (int k = 1; k <= APPS; k++) {
		char email[64];
		snprintf(email, sizeof(email), "app%03d@example.edu.tr", k);
		struct wf_row r = { .a = { .name = "Sentetik Kişi", .email = email, .row = k + 1 },
				    .unit_name = "Test Birimi", .unit_reply_to = "unit@example.edu.tr",
				    .state = ST_SUBMITTED };
		struct wf_origin o = { .actor = "cli:test", .source = "cli" };
		assert_int_equal(wf_create(&in->ez.wf, t, &r, 1, &o, ez_now(&in->ez), NULL, NULL, NULL), 0);
	}
	if (txn_commit(t, &err) < 0)
		fail_msg("commit: %s", err);
	free(src);
	free(text);
	free(path);
}

static void inst_close(struct inst *in)
{
	ez_close(&in->ez);
	tu_rmtree(in->dir);
	free(in->dir);
}

/* Batch sizes, in turn: single messages (classified on the caller's
 * thread), small and large batches (the pool). */
static const size_t sizes[] = { 1, 5, 64, 2, 17, 33, 1, 40, 3, 64, 9 };

static size_t batch_len(size_t k, size_t left)
{
	size_t n = sizes[k % ARRAY_LEN(sizes)];
	return n < left ? n : left;
}

static uint32_t top_uid(const struct raw_msg *v, size_t n)
{
	return v[n - 1].uid;
}

static void run_serial(struct inst *in, const struct corpus *c, struct ez_result *res)
{
	char *err = NULL;
	for (size_t at = 0, k = 0; at < c->n; k++) {
		size_t n = batch_len(k, c->n - at);
		if (ez_ingest(&in->ez, c->v + at, n, 7, top_uid(c->v + at, n), res + at, &err) < 0)
			fail_msg("ingest: %s", err);
		at += n;
	}
}

/* As the daemon does: start batch k+1, then finish batch k. */
static void run_pipelined(struct inst *in, const struct corpus *c, struct ez_result *res)
{
	char *err = NULL;
	struct ez_batch *prev = NULL;
	size_t prev_at = 0, prev_n = 0;
	for (size_t at = 0, k = 0; at < c->n || prev; k++) {
		size_t n = at < c->n ? batch_len(k, c->n - at) : 0;
		struct ez_batch *cur = n ? ez_ingest_start(&in->ez, c->v + at, n) : NULL;
		if (prev && ez_ingest_finish(&in->ez, prev, 7, top_uid(c->v + prev_at, prev_n),
					     res + prev_at, &err) < 0)
			fail_msg("ingest: %s", err);
		prev = cur;
		prev_at = at;
		prev_n = n;
		at += n;
	}
}

/* ---- comparing two stores ---- */

/* Times differ between two runs (the clock runs on): blank them. */
static void blank_times(json_object *o)
{
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			time_t t;
			if (json_object_is_type(val, json_type_string) &&
			    time_parse_rfc3339(json_object_get_string(val), &t) == 0)
				json_object_object_add(o, key, json_object_new_string("T"));
			else
				blank_times(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			blank_times(json_object_array_get_idx(o, i));
	}
}

struct docs {
	char **lines;            /* "id doc", one per document */
};

static int dump_cb(void *ctx, const char *id, json_object *doc)
{
	struct docs *d = ctx;
	json_object *copy = NULL;
	json_object_deep_copy(doc, &copy, NULL);
	blank_times(copy);
	char *line = xasprintf("%s %s", id, json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PRETTY));
	d->lines = strv_add(d->lines, line);
	free(line);
	json_object_put(copy);
	return 0;
}

/* Every document of the collections the ingest writes, in id order. */
static char *dump(struct inst *in)
{
	static const char *const colls[] = { "apps", "notices", "outq", "meta" };
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < ARRAY_LEN(colls); i++) {
		struct docs d = { NULL };
		store_foreach(in->ez.store, colls[i], dump_cb, &d);
		size_t n = strv_len(d.lines);
		assert_true(n > 0);
		qsort(d.lines, n, sizeof(*d.lines), cmp_str);
		for (size_t k = 0; k < n; k++)
			buf_printf(&out, "%s/%s\n", colls[i], d.lines[k]);
		strv_free(d.lines);
	}
	return buf_steal(&out);
}

static void same_text(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return;
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	size_t from = i > 300 ? i - 300 : 0;
	fail_msg("the stores differ at byte %zu:\nserial:    ...%.400s\npipelined: ...%.400s", i,
		 a + from, b + from);
}

/* ---- tests ---- */

static void test_pipelined_same_as_serial(void **state)
{
	(void)state;
	struct corpus c = { 0 };
	corpus_make(&c);
	time_t base;
	assert_int_equal(cal_parse_local("2026-03-16 09:00", &base), 0);
	for (size_t i = 0; i < c.n; i++)
		c.v[i].arrival = base + (time_t)i;
	struct ez_result *r1 = xcalloc(c.n, sizeof(*r1)), *r2 = xcalloc(c.n, sizeof(*r2));
	struct inst a, b;
	inst_open(&a, -1);
	inst_open(&b, 3);
	run_serial(&a, &c, r1);
	run_pipelined(&b, &c, r2);
	assert_null(a.ez.pool);
	assert_int_equal(ipool_workers(b.ez.pool), 3);
	size_t dups = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (r1[i].kind != r2[i].kind || r1[i].duplicate != r2[i].duplicate)
			fail_msg("uid %u: serial %s%s, pipelined %s%s", c.v[i].uid,
				 msg_kind_name(r1[i].kind), r1[i].duplicate ? " (dup)" : "",
				 msg_kind_name(r2[i].kind), r2[i].duplicate ? " (dup)" : "");
		dups += r1[i].duplicate;
	}
	/* Every fixture's second copy, and the one repeated in a batch. */
	assert_int_equal(dups, (c.n - 4 * APPS - 1) / 2 + 1);
	for (int k = 1; k <= APPS; k++) {
		char id[32];
		snprintf(id, sizeof(id), "EIMZA-2026-%04d", k);
		struct app_entry *e = apps_find(b.ez.apps, id);
		assert_non_null(e);
		if (e->state != ST_SHIPPED)
			fail_msg("%s: %s, not shipped", id, app_state_name(e->state));
	}
	assert_int_equal(b.ez.stats.messages, c.n);
	char *da = dump(&a), *db = dump(&b);
	same_text(da, db);
	free(da);
	free(db);
	inst_close(&a);
	inst_close(&b);
	free(r1);
	free(r2);
	corpus_free(&c);
}

/* The pool alone: items as the caller's own classification makes them,
 * asked for in order, backwards, and partly before the job is dropped. */
struct pool_fx {
	struct config conf;
	struct rules *rules;
	struct corpus c;
	char **want;             /* per message: its key and event as JSON */
};

static char *item_text(const struct ingest_item *it)
{
	json_object *o = event_to_json(&it->ev, true);
	char *s = xasprintf("%s %s", it->key, json_object_to_json_string(o));
	json_object_put(o);
	return s;
}

static int pool_setup(void **state)
{
	struct pool_fx *f = xcalloc(1, sizeof(*f));
	struct conf_errors e = { 0 };
	char *conf = xasprintf("%s/tests/fixtures/mail/test.conf", tu_srcdir());
	char *rules = xasprintf("%s/conf/rules.conf", tu_srcdir());
	config_defaults(&f->conf);
	if (config_load(&f->conf, conf, &e) < 0 || rules_load(rules, &f->rules, &e) < 0)
		fail_msg("%s", e.msgs[0]);
	corpus_make(&f->c);
	struct classify_ctx ctx = { .conf = &f->conf, .rules = f->rules };
	for (size_t i = 0; i < f->c.n; i++) {
		struct ingest_item it = { 0 };
		ingest_classify(&ctx, &f->c.v[i], &it);
		f->want = strv_add(f->want, "");
		free(f->want[i]);
		f->want[i] = item_text(&it);
		event_free(&it.ev);
		free(it.key);
	}
	free(conf);
	free(rules);
	*state = f;
	return 0;
}

static int pool_teardown(void **state)
{
	struct pool_fx *f = *state;
	rules_free(f->rules);
	config_free(&f->conf);
	corpus_free(&f->c);
	strv_free(f->want);
	free(f);
	return 0;
}

static void check_item(struct pool_fx *f, struct ingest_job *j, size_t i, size_t off,
		       const struct classify_ctx *own)
{
	char *got = item_text(ingest_job_item(j, i, own));
	assert_string_equal(got, f->want[off + i]);
	free(got);
}

static void test_pool_items(void **state)
{
	struct pool_fx *f = *state;
	struct classify_ctx own = { .conf = &f->conf, .rules = f->rules };
	struct ingest_pool *p = ipool_new(2, &f->conf, f->rules);
	assert_int_equal(ipool_workers(p), 2);
	size_t half = f->c.n / 2;
	struct ingest_job *a = ipool_submit(p, f->c.v, half);
	struct ingest_job *b = ipool_submit(p, f->c.v + half, f->c.n - half);
	for (size_t i = 0; i < half; i++)
		check_item(f, a, i, 0, &own);
	for (size_t i = f->c.n - half; i-- > 0;)
		check_item(f, b, i, half, &own);
	ingest_job_free(a);
	ingest_job_free(b);
	/* Without a pool: on demand, on this thread. */
	struct ingest_job *c = ingest_job_new(f->c.v, 3);
	for (size_t i = 0; i < 3; i++)
		check_item(f, c, i, 0, &own);
	ingest_job_free(c);
	ipool_free(p);
}

static void test_pool_drop(void **state)
{
	struct pool_fx *f = *state;
	struct classify_ctx own = { .conf = &f->conf, .rules = f->rules };
	struct ingest_pool *p = ipool_new(3, &f->conf, f->rules);
	for (int round = 0; round < 5; round++) {
		struct ingest_job *a = ipool_submit(p, f->c.v, f->c.n);
		struct ingest_job *b = ipool_submit(p, f->c.v, f->c.n);
		check_item(f, a, (size_t)round * 7, 0, &own);
		ingest_job_free(b);     /* dropped untouched, a still in progress */
		ingest_job_free(a);
	}
	struct ingest_job *a = ipool_submit(p, f->c.v, 10);
	check_item(f, a, 9, 0, &own);
	ingest_job_free(a);
	ipool_free(p);
	ipool_free(NULL);
	ingest_job_free(NULL);
}

/* A batch of a few messages starts no thread: nothing is handed off on
 * the latency path; a larger one starts the pool, which ez_ingest_stop()
 * (a reload) stops and the next large batch starts again. */
static void test_small_batches_inline(void **state)
{
	(void)state;
	struct corpus c = { 0 };
	for (int k = 1; k <= 12; k++)
		corpus_adds(&c, step_mail(0, k));
	struct inst in;
	inst_open(&in, 0);
	struct ez_result res[12];
	char *err = NULL;
	for (size_t i = 0; i < INGEST_POOL_MIN - 1; i++)
		assert_int_equal(ez_ingest(&in.ez, c.v + i, 1, 7, c.v[i].uid, res + i, &err), 0);
	assert_null(in.ez.pool);
	struct ez_batch *b = ez_ingest_start(&in.ez, c.v + 3, 4);
	assert_non_null(in.ez.pool);
	assert_int_equal(ipool_workers(in.ez.pool), ingest_workers_default());
	assert_int_equal(ez_ingest_finish(&in.ez, b, 7, 7, res + 3, &err), 0);
	ez_ingest_stop(&in.ez);
	assert_null(in.ez.pool);
	b = ez_ingest_start(&in.ez, c.v + 7, 5);
	assert_non_null(in.ez.pool);
	ez_ingest_cancel(&in.ez, b);    /* nothing recorded */
	assert_int_equal(in.ez.stats.messages, 7);
	b = ez_ingest_start(&in.ez, c.v + 7, 5);
	assert_int_equal(ez_ingest_finish(&in.ez, b, 7, 12, res + 7, &err), 0);
	for (int k = 1; k <= 12; k++) {
		char id[32];
		snprintf(id, sizeof(id), "EIMZA-2026-%04d", k);
		struct app_entry *e = apps_find(in.ez.apps, id);
		assert_non_null(e);
		assert_int_equal(e->state, ST_CREDENTIALS_ISSUED);
	}
	inst_close(&in);
	corpus_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_same_as_serial),
		cmocka_unit_test(test_small_batches_inline),
		cmocka_unit_test_setup_teardown(test_pool_items, pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(test_pool_drop, pool_setup, pool_teardown),
	};
	log_init("test_ingest", false);
	log_setlevel(LOG_LVL_ERR);      /* hostile fixtures and refused commands warn */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
