/* ingest.c: a batch of raw messages into one transaction (see eimzad.h).
 * Classification runs on the pool's workers or on demand (ingest_pool.c,
 * ingest_p.h); everything from the events on runs here, on the caller's
 * thread, in UID order. */
#include "eimzad.h"
#include "hashmap.h"
#include "ingest_p.h"
#include "jsonutil.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ez_batch {
	struct ingest_job *job;
	const struct raw_msg *msgs;
	size_t n;
};

/* meta/source: mailbox position, go-live time and what was caught up. */
static json_object *source_doc(struct txn *t, time_t now)
{
	json_object *src = txn_get(t, "meta", "source");
	if (src == NULL) {
		src = json_object_new_object();
		jset_int(src, "version", 1);
		jset_time(src, "go_live", now);
	}
	return src;
}

static time_t catchup_before(const struct eimzad *ez, json_object *src)
{
	const struct period *p = &ez->conf->general.catchup_cutoff;
	time_t go_live = jget_time(src, "go_live");
	if (period_is_zero(p) || go_live == 0)
		return 0;
	return cal_sub(go_live, p);
}

static void count_kinds(struct txn *t, const uint64_t *kinds)
{
	json_object *st = txn_get(t, "meta", "stats");
	if (st == NULL) {
		st = json_object_new_object();
		jset_int(st, "version", 1);
	}
	json_object *counts = jget(st, "kinds");
	if (counts == NULL || !json_object_is_type(counts, json_type_object)) {
		counts = json_object_new_object();
		jset(st, "kinds", counts);
	}
	/* Kind names hold dots ("kamusm.info"): members, not paths. */
	for (int k = 0; k < MK__COUNT; k++) {
		if (kinds[k] == 0)
			continue;
		const char *name = msg_kind_name((enum msg_kind)k);
		json_object *cur = NULL;
		json_object_object_get_ex(counts, name, &cur);
		json_object_object_add(counts, name,
				       json_object_new_int64(json_object_get_int64(cur) + (int64_t)kinds[k]));
	}
	txn_put(t, "meta", "stats", st);
}

/* What applying one batch needs beside the transaction. */
struct apply {
	struct hashmap *seen;        /* keys met earlier in this batch */
	time_t now, cut;
	uint64_t kinds[MK__COUNT], caught;
};

/* One classified message: apply, remember. Returns its kind. */
static enum msg_kind ingest_one(struct eimzad *ez, struct txn *t, const struct raw_msg *m,
				struct ingest_item *it, struct apply *a, bool *dup)
{
	const struct event *ev = &it->ev;
	*dup = store_seen(ez->store, it->key) || hm_get(a->seen, it->key) != NULL;
	if (!*dup) {
		hm_put(a->seen, it->key, a->seen);
		ez->wf.catchup = a->cut && m->arrival && m->arrival < a->cut;
		ez->wf.catchup_now = a->now;
		if (ez->wf.catchup)
			a->caught++;
		char *err = NULL;
		if (wf_event(&ez->wf, t, ev, a->now, NULL, &err) < 0) {
			log_warnx("ingest: %s", err);
			free(err);
		}
		ez->wf.catchup = false;
		txn_mark_seen(t, it->key);
	} else {
		log_debug("ingest: message %s already handled", it->key);
	}
	if (ev->kind == MK_UNREADABLE)
		log_warnx("ingest: uid %u unreadable: %s", m->uid,
			  ev->problems && ev->problems[0] ? ev->problems[0] : "no detail");
	return ev->kind;
}

/* The pool, made by the first batch worth a hand-off: an eimzactl or a
 * daemon that only ever sees single messages never starts a thread. */
static struct ingest_pool *pool_for(struct eimzad *ez, size_t n)
{
	if (n < INGEST_POOL_MIN || ez->ingest_workers < 0)
		return NULL;
	if (ez->pool == NULL) {
		unsigned w = ez->ingest_workers > 0 ? (unsigned)ez->ingest_workers
						     : ingest_workers_default();
		ez->pool = ipool_new(w, ez->conf, ez->rules);
		if (ez->pool)
			log_debug("ingest: %u classification thread(s)", ipool_workers(ez->pool));
	}
	return ez->pool;
}

struct ez_batch *ez_ingest_start(struct eimzad *ez, const struct raw_msg *msgs, size_t n)
{
	struct ez_batch *b = xcalloc(1, sizeof(*b));
	struct ingest_pool *p = pool_for(ez, n);
	b->job = p ? ipool_submit(p, msgs, n) : ingest_job_new(msgs, n);
	b->msgs = msgs;
	b->n = n;
	return b;
}

void ez_ingest_cancel(struct eimzad *ez, struct ez_batch *b)
{
	if (b == NULL)
		return;
	ingest_job_free(b->job);
	free(b);
}

/* The batch's events, in order, into t; then the batch is freed. */
static void apply_batch(struct eimzad *ez, struct txn *t, struct ez_batch *b, struct apply *a,
			struct ez_result *results)
{
	struct classify_ctx own;
	ez_classify_ctx(ez, &own, 0);
	for (size_t i = 0; i < b->n; i++) {
		struct ingest_item *it = ingest_job_item(b->job, i, &own);
		bool dup;
		enum msg_kind k = ingest_one(ez, t, &b->msgs[i], it, a, &dup);
		results[i].kind = k;
		results[i].duplicate = dup;
		if (!dup)
			a->kinds[k]++;
		/* Done with it: free it now rather than with the batch. */
		event_free(&it->ev);
		free(it->key);
		it->key = NULL;
	}
	ez_ingest_cancel(ez, b);
}

int ez_ingest_finish(struct eimzad *ez, struct ez_batch *b, uint32_t uidvalidity,
		     uint32_t last_uid, struct ez_result *results, char **err)
{
	time_t now = ez_now(ez);
	size_t n = b->n;
	struct txn *t = store_begin(ez->store);
	json_object *src = source_doc(t, now);
	struct apply a = { .seen = hm_new(), .now = now, .cut = catchup_before(ez, src) };
	apply_batch(ez, t, b, &a, results);
	hm_free(a.seen);
	if (uidvalidity) {
		jset_int(src, "uidvalidity", uidvalidity);
		if ((uint32_t)jget_int(src, "last_uid") < last_uid || jget_int(src, "uidvalidity") != uidvalidity)
			jset_int(src, "last_uid", last_uid);
	}
	if (a.caught) {
		jset_int(src, "catchup.messages", jget_int(src, "catchup.messages") + (int64_t)a.caught);
		jset_time(src, "catchup.before", a.cut);
	}
	jset_time(src, "last_poll", now);
	txn_put(t, "meta", "source", src);
	count_kinds(t, a.kinds);
	if (txn_commit(t, err) < 0) {
		ez_index_rebuild(ez, "ingest");
		return -1;
	}
	for (int k = 0; k < MK__COUNT; k++)
		ez->stats.kinds[k] += a.kinds[k];
	ez->stats.batches++;
	ez->stats.messages += n;
	ez->stats.last_poll = now;
	if (ez->outbox)
		outbox_kick(ez->outbox, now);
	return 0;
}

int ez_ingest(struct eimzad *ez, const struct raw_msg *msgs, size_t n, uint32_t uidvalidity,
	      uint32_t last_uid, struct ez_result *results, char **err)
{
	return ez_ingest_finish(ez, ez_ingest_start(ez, msgs, n), uidvalidity, last_uid, results, err);
}

void ez_ingest_stop(struct eimzad *ez)
{
	ipool_free(ez->pool);
	ez->pool = NULL;
}

int ez_timers(struct eimzad *ez, char **err)
{
	time_t now = ez_now(ez);
	struct txn *t = store_begin(ez->store);
	int n = wf_timers(&ez->wf, t, now, err);
	if (n < 0) {
		txn_abort(t);
		return -1;
	}
	if (txn_empty(t)) {
		txn_abort(t);
		return 0;
	}
	if (txn_commit(t, err) < 0) {
		ez_index_rebuild(ez, "timers");
		ez->wf.last_pass = 0;
		return -1;
	}
	if (ez->outbox)
		outbox_kick(ez->outbox, now);
	return n;
}
