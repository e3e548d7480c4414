/* ingest.c: a batch of raw messages into one transaction (see eimzad.h). */
#include "eimzad.h"
#include "hashmap.h"
#include "jsonutil.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key a message is remembered by: its Message-ID, or a hash of its
 * bytes when it has none. */
static char *seen_key(const struct event *ev, const struct raw_msg *m)
{
	if (!str_empty(ev->message_id))
		return xstrdup(ev->message_id);
	char hex[65];
	sha256_hex(m->data ? m->data : "", m->len, hex);
	return xasprintf("sha256:%s", hex);
}

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

/* One message: classify, apply, remember. Returns its kind. */
static enum msg_kind ingest_one(struct eimzad *ez, struct txn *t, const struct raw_msg *m,
				struct hashmap *batch_seen, time_t now, time_t cut, bool *dup,
				uint64_t *caught)
{
	struct classify_ctx cc;
	ez_classify_ctx(ez, &cc, m->arrival);
	struct event ev;
	event_init(&ev);
	if (m->data == NULL)
		ev.kind = MK_UNREADABLE;
	else
		classify_raw(&cc, m->data, m->len, &ev);
	char *key = seen_key(&ev, m);
	*dup = store_seen(ez->store, key) || hm_get(batch_seen, key) != NULL;
	enum msg_kind kind = ev.kind;
	if (!*dup) {
		hm_put(batch_seen, key, batch_seen);
		ez->wf.catchup = cut && m->arrival && m->arrival < cut;
		ez->wf.catchup_now = now;
		if (ez->wf.catchup)
			(*caught)++;
		char *err = NULL;
		if (wf_event(&ez->wf, t, &ev, now, NULL, &err) < 0) {
			log_warnx("ingest: %s", err);
			free(err);
		}
		ez->wf.catchup = false;
		txn_mark_seen(t, key);
	} else {
		log_debug("ingest: message %s already handled", key);
	}
	if (kind == MK_UNREADABLE)
		log_warnx("ingest: uid %u unreadable: %s", m->uid,
			  ev.problems && ev.problems[0] ? ev.problems[0] : "no detail");
	free(key);
	event_free(&ev);
	return kind;
}

int ez_ingest(struct eimzad *ez, const struct raw_msg *msgs, size_t n, uint32_t uidvalidity,
	      uint32_t last_uid, struct ez_result *results, char **err)
{
	time_t now = ez_now(ez);
	struct txn *t = store_begin(ez->store);
	json_object *src = source_doc(t, now);
	time_t cut = catchup_before(ez, src);
	struct hashmap *batch_seen = hm_new();
	uint64_t kinds[MK__COUNT] = { 0 }, caught = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup;
		enum msg_kind k = ingest_one(ez, t, &msgs[i], batch_seen, now, cut, &dup, &caught);
		results[i].kind = k;
		results[i].duplicate = dup;
		if (!dup)
			kinds[k]++;
	}
	hm_free(batch_seen);
	if (uidvalidity) {
		jset_int(src, "uidvalidity", uidvalidity);
		if ((uint32_t)jget_int(src, "last_uid") < last_uid || jget_int(src, "uidvalidity") != uidvalidity)
			jset_int(src, "last_uid", last_uid);
	}
	if (caught) {
		jset_int(src, "catchup.messages", jget_int(src, "catchup.messages") + (int64_t)caught);
		jset_time(src, "catchup.before", cut);
	}
	jset_time(src, "last_poll", now);
	txn_put(t, "meta", "source", src);
	count_kinds(t, kinds);
	if (txn_commit(t, err) < 0) {
		/* The index already holds the batch's changes: rebuild it from
		 * what is really stored. */
		apps_free(ez->apps);
		ez->apps = NULL;
		char *e2 = NULL;
		if (apps_load(ez->store, &ez->apps, &e2) < 0)
			fatalx("ingest: commit failed and the index cannot be rebuilt: %s", e2);
		ez->wf.apps = ez->apps;
		return -1;
	}
	for (int k = 0; k < MK__COUNT; k++)
		ez->stats.kinds[k] += kinds[k];
	ez->stats.batches++;
	ez->stats.messages += n;
	ez->stats.last_poll = now;
	if (ez->outbox)
		outbox_kick(ez->outbox, now);
	return 0;
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
		apps_free(ez->apps);
		char *e2 = NULL;
		if (apps_load(ez->store, &ez->apps, &e2) < 0)
			fatalx("timers: commit failed and the index cannot be rebuilt: %s", e2);
		ez->wf.apps = ez->apps;
		ez->wf.last_pass = 0;
		return -1;
	}
	if (ez->outbox)
		outbox_kick(ez->outbox, now);
	return n;
}
