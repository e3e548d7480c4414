/*
 * outbox.c: the durable queue between the workflow and the channels (see
 * outbox.h).
 *
 * In the store: "notices/<id>" holds every notice (its history),
 * "outq/<id>" one small document per unfinished notice (medium and next
 * attempt: what a start needs without reading every notice ever sent),
 * "outdead/<id>" one per dead letter not yet re-queued.
 *
 * In memory, per medium (a "lane"): a min-heap of (id, due) for pending
 * notices (24 bytes each), the channel's worker threads, and the pause
 * state of the channel. A full struct notice exists only while a notice
 * is in flight: loaded from the store when handed to a worker, freed once
 * its outcome is recorded.
 *
 * Threads: workers touch only their own slot, their channel instance and
 * the shared outcome list (under sh->mu); everything else, the store
 * included, belongs to the owner thread.
 */
#include "outbox.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#define C_NOTICES "notices"
#define C_OUTQ "outq"
#define C_DEAD "outdead"
#define OUTQ_VERSION 1
#define ID_BYTES 16
/* Notices kept in memory from their commit to their first hand-out. */
#define FRESH_MAX 64

/* ---- ids: "n" + 32 hex <-> 16 bytes ---- */

static bool id_parse(const char *s, uint8_t out[ID_BYTES])
{
	if (s == NULL || s[0] != 'n' || strlen(s) != 1 + 2 * ID_BYTES)
		return false;
	for (int i = 0; i < ID_BYTES; i++) {
		int v = 0;
		for (int k = 1; k <= 2; k++) {
			char c = s[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		out[i] = (uint8_t)v;
	}
	return true;
}

#define ID_STR 34
static char *id_fmt(const uint8_t id[ID_BYTES], char out[ID_STR])
{
	static const char hex[] = "0123456789abcdef";
	out[0] = 'n';
	for (int i = 0; i < ID_BYTES; i++) {
		out[1 + 2 * i] = hex[id[i] >> 4];
		out[2 + 2 * i] = hex[id[i] & 15];
	}
	out[ID_STR - 1] = '\0';
	return out;
}

/* ---- a set of ids (in flight), open addressing, all-zero = empty ---- */

struct idset {
	uint8_t (*k)[ID_BYTES];
	size_t cap, n;
};

static bool id_zero(const uint8_t *k)
{
	static const uint8_t z[ID_BYTES];
	return memcmp(k, z, ID_BYTES) == 0;
}

/* ids are SHA-256 prefixes: their first bytes are a good hash */
static size_t id_home(const uint8_t *id, size_t cap)
{
	uint64_t h;
	memcpy(&h, id, sizeof(h));
	return (size_t)h & (cap - 1);
}

static size_t idset_find(const struct idset *s, const uint8_t *id)
{
	for (size_t i = s->cap ? id_home(id, s->cap) : 0; s->cap && !id_zero(s->k[i]);
	     i = (i + 1) & (s->cap - 1))
		if (memcmp(s->k[i], id, ID_BYTES) == 0)
			return i;
	return SIZE_MAX;
}

static bool idset_has(const struct idset *s, const uint8_t *id)
{
	return idset_find(s, id) != SIZE_MAX;
}

static void idset_add(struct idset *s, const uint8_t *id);

static void idset_grow(struct idset *s)
{
	struct idset g = { .cap = s->cap ? s->cap * 2 : 64 };
	g.k = xcalloc(g.cap, ID_BYTES);
	for (size_t i = 0; i < s->cap; i++)
		if (!id_zero(s->k[i]))
			idset_add(&g, s->k[i]);
	free(s->k);
	*s = g;
}

static void idset_add(struct idset *s, const uint8_t *id)
{
	if ((s->n + 1) * 2 > s->cap)
		idset_grow(s);
	size_t i = id_home(id, s->cap);
	for (; !id_zero(s->k[i]); i = (i + 1) & (s->cap - 1))
		if (memcmp(s->k[i], id, ID_BYTES) == 0)
			return;
	memcpy(s->k[i], id, ID_BYTES);
	s->n++;
}

/* Delete with backward shift, so that probes need no tombstones. */
static void idset_del(struct idset *s, const uint8_t *id)
{
	size_t i = idset_find(s, id), mask = s->cap - 1;
	if (i == SIZE_MAX)
		return;
	memset(s->k[i], 0, ID_BYTES);
	s->n--;
	for (size_t j = (i + 1) & mask; !id_zero(s->k[j]); j = (j + 1) & mask) {
		size_t home = id_home(s->k[j], s->cap);
		/* move k[j] into the hole unless its home lies in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		memcpy(s->k[i], s->k[j], ID_BYTES);
		memset(s->k[j], 0, ID_BYTES);
		i = j;
	}
}

/* ---- the pending heap, by due time ---- */

struct qent {
	uint8_t id[ID_BYTES];
	time_t due;
};

struct heap {
	struct qent *v;
	size_t n, cap;
};

static void heap_push(struct heap *h, const uint8_t *id, time_t due)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	size_t i = h->n++;
	struct qent e = { .due = due };
	memcpy(e.id, id, ID_BYTES);
	while (i > 0 && h->v[(i - 1) / 2].due > due) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = e;
}

static struct qent heap_pop(struct heap *h)
{
	struct qent top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].due < h->v[c].due)
			c++;
		if (h->v[c].due >= last.due)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
	return top;
}

/* ---- outcomes, workers and the state they share ---- */

enum result_kind {
	R_DELIVERY,     /* a channel's outcome */
	R_EXPIRED,      /* older than max_age before an attempt */
	R_DROP,         /* its application moved on */
	R_UNINDEX,      /* the pending entry has no sendable notice behind it */
};

/* What a result changes in its notice, kept to undo a failed commit. */
struct undo {
	enum notice_state state;
	int attempts;
	time_t next_attempt, done_at;
	char *last_error, *provider_id;
};

struct result {
	enum result_kind kind;
	enum medium medium;
	uint8_t id[ID_BYTES];
	struct notice *n;       /* NULL for R_UNINDEX */
	struct delivery d;
	char *why;              /* R_DROP, R_UNINDEX */
	struct undo undo;
	time_t requeue_at;      /* after recording: back into the heap at, or 0 */
	struct result *next;
};

struct shared {
	pthread_mutex_t mu;
	int refs;               /* the outbox and each worker thread */
	int efd;
	struct result *head, **tail;
	bool stop;
};

struct worker {
	struct shared *sh;
	struct channel ch;      /* this slot's own instance of the channel */
	bool ch_open;
	int weight;             /* its transfers, toward global_concurrency */
	pthread_t thread;       /* running: worker_start() returns only started ones */
	pthread_cond_t cv;
	struct notice **batch;  /* assigned by the owner while idle */
	size_t nbatch;
	bool busy;              /* a batch assigned, its outcomes not posted yet */
	bool exited, abandoned;
};

struct lane {
	struct channel *proto;  /* the caller's channel: ops, conf, medium */
	struct heap q;
	struct worker **w;
	size_t nw;
	size_t batch_max;
	time_t paused_until;
	int down_count;
	size_t unindexed;       /* pending notices of a switched-off medium */
};

struct outbox {
	struct store *st;
	const struct config *c;
	struct outbox_hooks hooks;
	struct shared *sh;
	struct lane lanes[2];
	struct idset inflight;  /* handed out or posted, not yet recorded */
	struct result *retry;   /* outcomes whose commit failed */
	time_t retry_at;        /* when to try recording them again */
	uint64_t rng;
	int64_t max_age, retry_min, retry_max;
	struct outbox_stats stats;
	bool closing;
	bool queue_only;        /* opened without channels: eimzactl queues, the daemon sends */
	/* Notices of the last commit, as recorded, so that handing them to a
	 * worker right after it needs no read back from the store. Valid
	 * only while that commit is the store's last (fresh_commit): any
	 * later commit may have changed them. */
	struct fresh {
		uint8_t id[ID_BYTES];
		struct notice *n;
	} fresh[FRESH_MAX];
	size_t nfresh;
	uint64_t fresh_commit;
};

static void delivery_free(struct delivery *d)
{
	free(d->detail);
	free(d->provider_id);
	d->detail = d->provider_id = NULL;
}

static void result_free(struct result *r)
{
	notice_free(r->n);
	delivery_free(&r->d);
	free(r->why);
	free(r);
}

static void results_free(struct result *r)
{
	while (r != NULL) {
		struct result *next = r->next;
		result_free(r);
		r = next;
	}
}

static struct shared *shared_new(void)
{
	struct shared *sh = xcalloc(1, sizeof(*sh));
	pthread_mutex_init(&sh->mu, NULL);
	sh->refs = 1;
	sh->tail = &sh->head;
	sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->efd < 0)
		fatal("outbox: eventfd");
	return sh;
}

static void shared_unref(struct shared *sh)
{
	pthread_mutex_lock(&sh->mu);
	bool last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (!last)
		return;
	results_free(sh->head);
	close(sh->efd);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

/* Append results (a chain ending in *last) and wake the owner. Called with
 * sh->mu held. */
static void post_locked(struct shared *sh, struct result *first, struct result *last)
{
	*sh->tail = first;
	sh->tail = &last->next;
	uint64_t one = 1;
	if (write(sh->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("outbox: eventfd");
}

static void post(struct shared *sh, struct result *r)
{
	pthread_mutex_lock(&sh->mu);
	post_locked(sh, r, r);
	pthread_mutex_unlock(&sh->mu);
}

static void worker_free(struct worker *w)
{
	for (size_t i = 0; i < w->nbatch; i++)
		notice_free(w->batch[i]);
	free(w->batch);
	if (w->ch_open && w->ch.ops->close != NULL)
		w->ch.ops->close(&w->ch);
	pthread_cond_destroy(&w->cv);
	free(w);
}

/* Send one batch (the lock is not held) and post its outcomes. */
static void worker_send(struct worker *w, struct notice **batch, size_t n)
{
	struct delivery *out = xcalloc(n, sizeof(*out));
	w->ch.ops->send(&w->ch, batch, n, out);
	struct result *first = NULL, **tail = &first, *last = NULL;
	for (size_t i = 0; i < n; i++) {
		struct result *r = xcalloc(1, sizeof(*r));
		r->kind = R_DELIVERY;
		r->medium = batch[i]->medium;
		r->n = batch[i];
		r->d = out[i];
		if (!id_parse(r->n->id, r->id))
			fatalx("outbox: notice with a malformed id in flight");
		*tail = last = r;
		tail = &r->next;
	}
	free(out);
	free(batch);
	pthread_mutex_lock(&w->sh->mu);
	post_locked(w->sh, first, last);
	w->busy = false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	pthread_mutex_lock(&sh->mu);
	for (;;) {
		while (w->nbatch == 0 && !sh->stop)
			pthread_cond_wait(&w->cv, &sh->mu);
		if (sh->stop)
			break;          /* an assigned batch not begun stays queued */
		struct notice **batch = w->batch;
		size_t n = w->nbatch;
		w->batch = NULL;
		w->nbatch = 0;
		pthread_mutex_unlock(&sh->mu);
		worker_send(w, batch, n);       /* returns with the lock held */
	}
	w->exited = true;
	bool self_free = w->abandoned;
	pthread_mutex_unlock(&sh->mu);
	if (self_free)
		worker_free(w);
	shared_unref(sh);
	return NULL;
}

/* ---- time ---- */

/* A period as seconds. The outbox counts calendar time; working-time
 * units are taken at face value (1wh = 1h, 1wd = 1d, 1mo = 30d). */
static int64_t period_secs(const struct period *p)
{
	switch (p->unit) {
	case PERIOD_SECONDS: return p->n;
	case PERIOD_WORK_MINUTES: return p->n * 60;
	case PERIOD_WORK_DAYS: return p->n * 86400;
	case PERIOD_MONTHS: return p->n * 30 * 86400;
	}
	return p->n;
}

/* splitmix64: a private generator, so the jitter needs no global state. */
static double rng_unit(struct outbox *ob)
{
	uint64_t z = (ob->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / (double)(1ull << 53);
}

/* retry_min * 2^(k-1), capped at retry_max, +-20% jitter. */
static time_t backoff(struct outbox *ob, int k)
{
	double base = (double)ob->retry_min;
	for (int i = 1; i < k && base < (double)ob->retry_max; i++)
		base *= 2;
	if (base > (double)ob->retry_max)
		base = (double)ob->retry_max;
	time_t d = (time_t)(base * (0.8 + 0.4 * rng_unit(ob)) + 0.5);
	return d < 1 ? 1 : d;
}

/* ---- recipients ---- */

static bool mail_address_ok(const char *a)
{
	const char *at = strchr(a, '@');
	if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') || strlen(a) > 254)
		return false;
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p <= ' ' || strchr("<>,;:\"()[]\\", *p))
			return false;
	return true;
}

static bool e164_ok(const char *s)
{
	size_t n = 0;
	if (s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	for (const char *p = s + 1; *p; p++, n++)
		if (*p < '0' || *p > '9')
			return false;
	return n >= 8 && n <= 15;
}

/* The recipient as it may appear in a log line. */
static const char *who(const struct notice *n, char *buf, size_t len)
{
	if (n->to == NULL)
		return "(none)";
	return n->medium == MEDIUM_SMS ? mask_phone(n->to, buf, len) : n->to;
}

/* Is a medium on? With channels: a channel was given for it. Queue-only
 * (no channels at all): the configuration says whether the daemon has one. */
static bool medium_on(const struct outbox *ob, enum medium m)
{
	if (!ob->queue_only)
		return ob->lanes[m].proto != NULL;
	return (m == MEDIUM_MAIL ? ob->c->smtp.mail_channel : ob->c->sms.sms_channel) != CHANNEL_NONE;
}

/* NULL if the notice may be queued, else why not. */
static const char *refusal(const struct outbox *ob, const struct notice *n)
{
	if ((unsigned)n->medium > MEDIUM_SMS)
		return "unknown medium";
	if (!medium_on(ob, n->medium))
		return "the medium is switched off";
	if (str_empty(n->dedupe) || str_empty(n->kind) || str_empty(n->to) || n->body == NULL)
		return "incomplete notice (dedupe, kind, to and body are required)";
	if (n->medium == MEDIUM_MAIL) {
		if (!mail_address_ok(n->to))
			return "not a plain e-mail address";
		if (!conf_domain_allowed(ob->c, n->to))
			return "outside the institution's domains";
	} else if (!e164_ok(n->to)) {
		return "not an E.164 number (+ and 8 to 15 digits)";
	}
	return NULL;
}

/* ---- queueing ---- */

static json_object *outq_doc(enum medium m, time_t due)
{
	char buf[32];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(OUTQ_VERSION));
	json_object_object_add(o, "medium", json_object_new_string(medium_name(m)));
	json_object_object_add(o, "next_attempt",
			       json_object_new_string(time_fmt_utc(due, buf, sizeof(buf))));
	return o;
}

/* ---- notices just committed ---- */

static uint64_t store_commits(struct store *st)
{
	struct store_stats ss;
	store_stats(st, &ss);
	return ss.commits;
}

static void fresh_clear(struct outbox *ob)
{
	for (size_t i = 0; i < ob->nfresh; i++)
		notice_free(ob->fresh[i].n);
	ob->nfresh = 0;
}

/* Keep n (taken over), committed by the store's last commit. */
static void fresh_keep(struct outbox *ob, const uint8_t *id, struct notice *n)
{
	uint64_t now = store_commits(ob->st);
	if (ob->fresh_commit != now) {
		fresh_clear(ob);
		ob->fresh_commit = now;
	}
	if (ob->queue_only || ob->nfresh == FRESH_MAX) {
		notice_free(n);
		return;
	}
	memcpy(ob->fresh[ob->nfresh].id, id, ID_BYTES);
	ob->fresh[ob->nfresh++].n = n;
}

/* The notice as its commit recorded it, if that is still the store's last
 * commit; else NULL (read it from the store). */
static struct notice *fresh_take(struct outbox *ob, const uint8_t *id)
{
	if (ob->nfresh == 0)
		return NULL;
	if (ob->fresh_commit != store_commits(ob->st)) {
		fresh_clear(ob);
		return NULL;
	}
	for (size_t i = 0; i < ob->nfresh; i++) {
		if (memcmp(ob->fresh[i].id, id, ID_BYTES) != 0)
			continue;
		struct notice *n = ob->fresh[i].n;
		ob->fresh[i] = ob->fresh[--ob->nfresh];
		return n;
	}
	return NULL;
}

/* A queued notice waits for its transaction: indexed once it commits. */
struct staged {
	struct outbox *ob;
	uint8_t id[ID_BYTES];
	enum medium medium;
	time_t due;
	bool was_dead;
	struct notice *n;       /* as recorded: kept for the first hand-out */
};

static void staged_done(void *ctx, bool committed)
{
	struct staged *sg = ctx;
	if (committed) {
		heap_push(&sg->ob->lanes[sg->medium].q, sg->id, sg->due);
		if (sg->was_dead && sg->ob->stats.dead > 0)
			sg->ob->stats.dead--;
		fresh_keep(sg->ob, sg->id, sg->n);
		sg->n = NULL;
	}
	notice_free(sg->n);
	free(sg);
}

/* Stage notice n (taken over) into t. */
static void stage(struct outbox *ob, struct txn *t, struct notice *n, bool was_dead)
{
	struct staged *sg = xcalloc(1, sizeof(*sg));
	sg->ob = ob;
	if (!id_parse(n->id, sg->id))
		fatalx("outbox: malformed notice id %s", n->id);
	sg->medium = n->medium;
	sg->due = n->next_attempt;
	sg->was_dead = was_dead;
	txn_put(t, C_NOTICES, n->id, notice_to_json(n));
	txn_put(t, C_OUTQ, n->id, outq_doc(n->medium, n->next_attempt));
	sg->n = n;
	txn_on_done(t, staged_done, sg);
}

enum queue_result outbox_queue(struct outbox *ob, struct txn *t, struct notice *n)
{
	char masked[32];
	const char *why = refusal(ob, n);
	if (why != NULL) {
		log_warnx("outbox: %s notice \"%s\" to %s refused: %s", medium_name(n->medium),
			  n->kind ? n->kind : "?", who(n, masked, sizeof(masked)), why);
		notice_free(n);
		return QUEUE_REFUSED;
	}
	char *id = notice_id_for(n->dedupe);
	if (txn_exists(t, C_NOTICES, id)) {
		log_debug("outbox: notice %s (%s) was queued before", id, n->dedupe);
		free(id);
		notice_free(n);
		return QUEUE_DUPLICATE;
	}
	free(n->id);
	n->id = id;
	n->state = NS_QUEUED;
	n->attempts = 0;
	n->created = n->created ? n->created : time(NULL);
	n->next_attempt = n->next_attempt ? n->next_attempt : n->created;
	if (n->expires == 0 && ob->max_age > 0)
		n->expires = n->created + (time_t)ob->max_age;
	n->done_at = 0;
	free(n->last_error);
	n->last_error = NULL;
	stage(ob, t, n, false);
	return QUEUED;
}

int outbox_requeue(struct outbox *ob, struct txn *t, const char *notice_id, time_t now, char **err)
{
	json_object *doc = store_id_valid(notice_id) ? txn_get(t, C_NOTICES, notice_id) : NULL;
	if (doc == NULL)
		return seterr(err, "no notice %s", notice_id);
	struct notice *n = notice_from_json(doc, err);
	json_object_put(doc);
	if (n == NULL)
		return -1;
	int rc = 0;
	if (n->state != NS_DEAD && n->state != NS_DROPPED)
		rc = seterr(err, "notice %s is %s; only dead or dropped notices are re-queued",
			    notice_id, notice_state_name(n->state));
	else if (!medium_on(ob, n->medium))
		rc = seterr(err, "notice %s: %s is switched off", notice_id, medium_name(n->medium));
	if (rc == 0) {
		bool was_dead = n->state == NS_DEAD;
		n->state = NS_QUEUED;
		n->attempts = 0;
		n->next_attempt = now;
		n->expires = ob->max_age > 0 ? now + (time_t)ob->max_age : 0;
		n->done_at = 0;
		if (was_dead)
			txn_del(t, C_DEAD, n->id);
		log_info("outbox: notice %s re-queued", n->id);
		stage(ob, t, n, was_dead);
		return 0;
	}
	notice_free(n);
	return rc;
}

/* ---- handing notices to workers ---- */

/* NULL if the notice should still go, else why it is dropped. */
static char *moved_on(struct outbox *ob, const struct notice *n)
{
	if (n->valid_state == NULL || n->app_id == NULL || ob->hooks.app_state == NULL)
		return NULL;
	const char *now_state = ob->hooks.app_state(ob->hooks.ctx, n->app_id);
	if (now_state != NULL && strcmp(now_state, n->valid_state) == 0)
		return NULL;
	return xasprintf("application %s is %s now, the notice was for %s", n->app_id,
			 now_state ? now_state : "gone", n->valid_state);
}

/* An outcome decided on the owner thread, posted like a worker's. */
static void post_local(struct outbox *ob, enum result_kind kind, const uint8_t *id,
		       enum medium m, struct notice *n, char *why)
{
	struct result *r = xcalloc(1, sizeof(*r));
	r->kind = kind;
	r->medium = m;
	memcpy(r->id, id, ID_BYTES);
	r->n = n;
	r->why = why;
	idset_add(&ob->inflight, id);
	post(ob->sh, r);
}

/* The notice behind a due entry, ready to send, or NULL (then an outcome
 * saying why was posted, or it is already in flight). */
static struct notice *take_due(struct outbox *ob, const struct qent *e, enum medium m, time_t now)
{
	char ids[ID_STR], *err = NULL;
	if (idset_has(&ob->inflight, e->id))
		return NULL;    /* a duplicate entry; the one in flight decides */
	id_fmt(e->id, ids);
	struct notice *n = fresh_take(ob, e->id);
	if (n == NULL) {
		json_object *doc = store_get(ob->st, C_NOTICES, ids);
		n = doc ? notice_from_json(doc, &err) : NULL;
		json_object_put(doc);
	}
	if (n == NULL || n->state != NS_QUEUED || n->medium != m || strcmp(n->id, ids) != 0) {
		char *why = n == NULL ? xasprintf("notice %s unreadable: %s", ids, err ? err : "absent")
			: xasprintf("notice %s is %s", ids, notice_state_name(n->state));
		free(err);
		notice_free(n);
		post_local(ob, R_UNINDEX, e->id, m, NULL, why);
		return NULL;
	}
	char *why;
	if (n->expires != 0 && now >= n->expires) {
		post_local(ob, R_EXPIRED, e->id, m, n, NULL);
	} else if ((why = moved_on(ob, n)) != NULL) {
		post_local(ob, R_DROP, e->id, m, n, why);
	} else {
		idset_add(&ob->inflight, e->id);
		return n;
	}
	return NULL;
}

/* Transfers under way, toward [outbox] global_concurrency. Lock held. */
static int busy_weight(const struct outbox *ob)
{
	int sum = 0;
	for (int m = 0; m < 2; m++)
		for (size_t i = 0; i < ob->lanes[m].nw; i++)
			if (ob->lanes[m].w[i]->busy)
				sum += ob->lanes[m].w[i]->weight;
	return sum;
}

/* Fill a batch from the due entries and hand it to an idle worker.
 * Returns false when the lane has nothing due. */
static bool feed(struct outbox *ob, struct lane *l, struct worker *w, enum medium m, time_t now)
{
	struct notice **batch = NULL;
	size_t n = 0, cap = 0;
	while (n < l->batch_max && l->q.n > 0 && l->q.v[0].due <= now) {
		struct qent e = heap_pop(&l->q);
		struct notice *nt = take_due(ob, &e, m, now);
		if (nt == NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			batch = xreallocarray(batch, cap, sizeof(*batch));
		}
		batch[n++] = nt;
	}
	if (n == 0) {
		free(batch);
		return false;
	}
	/* the worker reads its batch under the lock, so it never sees a
	 * half-built one */
	pthread_mutex_lock(&ob->sh->mu);
	w->batch = batch;
	w->nbatch = n;
	w->busy = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&ob->sh->mu);
	return true;
}

void outbox_kick(struct outbox *ob, time_t now)
{
	if (ob->closing)
		return;
	if (ob->retry != NULL && now >= ob->retry_at) {
		/* outcomes whose commit failed: wake the owner to collect */
		uint64_t one = 1;
		if (write(ob->sh->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("outbox: eventfd");
	}
	int cap = ob->c->outbox.global_concurrency;
	for (int m = 0; m < 2; m++) {
		struct lane *l = &ob->lanes[m];
		if (l->proto == NULL || l->paused_until > now)
			continue;
		for (size_t i = 0; i < l->nw && l->q.n > 0 && l->q.v[0].due <= now; i++) {
			struct worker *w = l->w[i];
			pthread_mutex_lock(&ob->sh->mu);
			bool idle = !w->busy && w->nbatch == 0;
			int busy = busy_weight(ob);
			pthread_mutex_unlock(&ob->sh->mu);
			if (!idle)
				continue;
			if (busy > 0 && busy + w->weight > cap)
				return;
			if (!feed(ob, l, w, (enum medium)m, now))
				break;
		}
	}
}

/* ---- recording outcomes ---- */

static void undo_save(struct result *r)
{
	struct notice *n = r->n;
	r->undo = (struct undo){
		.state = n->state, .attempts = n->attempts, .next_attempt = n->next_attempt,
		.done_at = n->done_at, .last_error = n->last_error, .provider_id = n->provider_id,
	};
	/* the notice gets copies; the saved pointers are freed once recorded */
	n->last_error = xstrdup_opt(n->last_error);
	n->provider_id = xstrdup_opt(n->provider_id);
}

static void undo_restore(struct result *r)
{
	struct notice *n = r->n;
	if (n == NULL)
		return;
	free(n->last_error);
	free(n->provider_id);
	n->state = r->undo.state;
	n->attempts = r->undo.attempts;
	n->next_attempt = r->undo.next_attempt;
	n->done_at = r->undo.done_at;
	n->last_error = r->undo.last_error;
	n->provider_id = r->undo.provider_id;
	memset(&r->undo, 0, sizeof(r->undo));
	r->requeue_at = 0;
}

static void undo_forget(struct result *r)
{
	free(r->undo.last_error);
	free(r->undo.provider_id);
	memset(&r->undo, 0, sizeof(r->undo));
}

static void set_error(struct notice *n, char *text)
{
	free(n->last_error);
	n->last_error = text;
}

static json_object *dead_doc(const struct notice *n, time_t now)
{
	char buf[32];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(OUTQ_VERSION));
	json_object_object_add(o, "at", json_object_new_string(time_fmt_utc(now, buf, sizeof(buf))));
	json_object_object_add(o, "medium", json_object_new_string(medium_name(n->medium)));
	json_object_object_add(o, "kind", json_object_new_string(n->kind));
	return o;
}

/* A notice reached an end (sent, dead or dropped): its document, its
 * pending entry gone. */
static void record_done(struct txn *t, struct notice *n, enum notice_state st, time_t now)
{
	n->state = st;
	n->done_at = now;
	txn_put(t, C_NOTICES, n->id, notice_to_json(n));
	txn_del(t, C_OUTQ, n->id);
}

static void record_dead(struct outbox *ob, struct txn *t, struct notice *n, time_t now, char *why)
{
	char masked[32];
	set_error(n, why);
	record_done(t, n, NS_DEAD, now);
	txn_put(t, C_DEAD, n->id, dead_doc(n, now));
	log_warnx("outbox: %s notice %s (%s) to %s dead-lettered: %s", medium_name(n->medium),
		  n->id, n->kind, who(n, masked, sizeof(masked)), why);
	if (ob->hooks.on_dead != NULL)
		ob->hooks.on_dead(ob->hooks.ctx, t, n);
}

static void record_tempfail(struct outbox *ob, struct txn *t, struct result *r, time_t now)
{
	struct notice *n = r->n;
	const char *detail = r->d.detail ? r->d.detail : "temporary failure";
	/* Clock times here are whole seconds and `now` may be up to one
	 * second behind the reply: one more second, so that neither the
	 * backoff nor a Retry-After is ever cut short. */
	time_t next = now + backoff(ob, n->attempts) + 1;
	if (r->d.retry_after > 0 && now + r->d.retry_after + 1 > next)
		next = now + r->d.retry_after + 1;
	if (n->expires != 0 && next >= n->expires) {
		record_dead(ob, t, n, now, xasprintf("gave up after %d attempts within max_age: %s",
						     n->attempts, detail));
		return;
	}
	char masked[32], when[32];
	set_error(n, xstrdup(detail));
	n->next_attempt = next;
	txn_put(t, C_NOTICES, n->id, notice_to_json(n));
	txn_put(t, C_OUTQ, n->id, outq_doc(n->medium, next));
	r->requeue_at = next;
	log_info("outbox: %s notice %s to %s: %s; attempt %d failed, next at %s",
		 medium_name(n->medium), n->id, who(n, masked, sizeof(masked)), detail,
		 n->attempts, time_fmt_utc(next, when, sizeof(when)));
}

static void record_delivery(struct outbox *ob, struct txn *t, struct result *r, time_t now)
{
	struct notice *n = r->n;
	char masked[32];
	if (r->d.outcome == DLV_DOWN) {
		r->requeue_at = n->next_attempt > 0 ? n->next_attempt : now;
		return;         /* not attempted: nothing changes in the store */
	}
	n->attempts++;
	switch (r->d.outcome) {
	case DLV_SENT:
		if (r->d.provider_id != NULL) {
			free(n->provider_id);
			n->provider_id = xstrdup(r->d.provider_id);
		}
		record_done(t, n, NS_SENT, now);
		log_debug("outbox: %s notice %s (%s) to %s sent", medium_name(n->medium), n->id,
			  n->kind, who(n, masked, sizeof(masked)));
		if (ob->hooks.on_sent != NULL)
			ob->hooks.on_sent(ob->hooks.ctx, t, n);
		break;
	case DLV_TEMPFAIL:
		record_tempfail(ob, t, r, now);
		break;
	default:
		record_dead(ob, t, n, now, xstrdup(r->d.detail ? r->d.detail : "permanent failure"));
		break;
	}
}

/* Phase one: the result's changes into t (undone if the commit fails). */
static void record(struct outbox *ob, struct txn *t, struct result *r, time_t now)
{
	char ids[ID_STR];
	if (r->n != NULL)
		undo_save(r);
	switch (r->kind) {
	case R_UNINDEX:
		log_warnx("outbox: %s; removed from the queue", r->why);
		txn_del(t, C_OUTQ, id_fmt(r->id, ids));
		break;
	case R_EXPIRED:
		record_dead(ob, t, r->n, now,
			    xasprintf("not delivered within max_age (%d attempts%s%s)", r->n->attempts,
				      r->n->last_error ? "; last error: " : "",
				      r->n->last_error ? r->n->last_error : ""));
		break;
	case R_DROP:
		log_info("outbox: notice %s (%s) dropped: %s", r->n->id, r->n->kind, r->why);
		set_error(r->n, xstrdup(r->why));
		record_done(t, r->n, NS_DROPPED, now);
		break;
	case R_DELIVERY:
		record_delivery(ob, t, r, now);
		break;
	}
}

/* What a collect learnt about each channel. */
struct pace {
	bool down[2], up[2];
	int down_after[2];      /* the largest retry_after given with DOWN */
};

/* Phase two, after the commit: counters, the heap, the channel's pause. */
static void settle(struct outbox *ob, struct result *r, struct pace *pc)
{
	idset_del(&ob->inflight, r->id);
	if (r->requeue_at != 0)
		heap_push(&ob->lanes[r->medium].q, r->id, r->requeue_at);
	if (r->n != NULL && r->n->state == NS_DEAD)
		ob->stats.dead++;
	if (r->kind == R_DROP)
		ob->stats.dropped++;
	if (r->kind != R_DELIVERY)
		return;
	static const size_t counter[] = {
		[DLV_SENT] = offsetof(struct outbox_stats, sent),
		[DLV_TEMPFAIL] = offsetof(struct outbox_stats, tempfail),
		[DLV_PERMFAIL] = offsetof(struct outbox_stats, permfail),
		[DLV_DOWN] = offsetof(struct outbox_stats, down),
	};
	(*(uint64_t *)((char *)&ob->stats + counter[r->d.outcome]))++;
	if (r->d.outcome != DLV_DOWN) {
		pc->up[r->medium] = true;
		return;
	}
	pc->down[r->medium] = true;
	if (r->d.retry_after > pc->down_after[r->medium])
		pc->down_after[r->medium] = r->d.retry_after;
}

/* A channel said DOWN: pause it with its own backoff (or longer, if it
 * asked with a retry_after); any other outcome says it works again. */
static void pace_lanes(struct outbox *ob, const struct pace *pc, time_t now)
{
	char when[32];
	for (int m = 0; m < 2; m++) {
		struct lane *l = &ob->lanes[m];
		if (pc->down[m]) {
			l->paused_until = now + backoff(ob, ++l->down_count);
			if (pc->down_after[m] > 0 && now + pc->down_after[m] + 1 > l->paused_until)
				l->paused_until = now + pc->down_after[m] + 1;
			log_warnx("outbox: %s channel down; paused until %s (%d in a row)",
				  medium_name((enum medium)m),
				  time_fmt_utc(l->paused_until, when, sizeof(when)), l->down_count);
		} else if (pc->up[m] && l->down_count > 0) {
			log_info("outbox: %s channel works again", medium_name((enum medium)m));
			l->down_count = 0;
			l->paused_until = 0;
		}
	}
}

static void log_down_details(struct result *list)
{
	bool said[2] = { false, false };
	for (struct result *r = list; r != NULL; r = r->next) {
		if (r->kind != R_DELIVERY || r->d.outcome != DLV_DOWN || said[r->medium])
			continue;
		said[r->medium] = true;
		log_warnx("outbox: %s channel: %s", medium_name(r->medium),
			  r->d.detail ? r->d.detail : "down");
	}
}

/* Take what workers posted, after what is left from a failed commit. */
static struct result *take_results(struct outbox *ob)
{
	uint64_t v;
	while (read(ob->sh->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&ob->sh->mu);
	struct result *got = ob->sh->head;
	ob->sh->head = NULL;
	ob->sh->tail = &ob->sh->head;
	pthread_mutex_unlock(&ob->sh->mu);
	struct result **end = &ob->retry;
	while (*end != NULL)
		end = &(*end)->next;
	*end = got;
	struct result *list = ob->retry;
	ob->retry = NULL;
	return list;
}

int outbox_collect(struct outbox *ob, time_t now, char **err)
{
	struct result *list = take_results(ob);
	if (list == NULL) {
		outbox_kick(ob, now);
		return 0;
	}
	struct txn *t = store_begin(ob->st);
	int n = 0;
	for (struct result *r = list; r != NULL; r = r->next, n++)
		record(ob, t, r, now);
	if (txn_commit(t, err) < 0) {
		for (struct result *r = list; r != NULL; r = r->next)
			undo_restore(r);
		ob->retry = list;
		ob->retry_at = now + 5;
		return -1;
	}
	struct pace pc = { .down = { false, false } };
	log_down_details(list);
	while (list != NULL) {
		struct result *next = list->next;
		settle(ob, list, &pc);
		undo_forget(list);
		result_free(list);
		list = next;
	}
	pace_lanes(ob, &pc, now);
	outbox_kick(ob, now);
	return n;
}

/* ---- open and close ---- */

static struct worker *worker_start(struct outbox *ob, const struct channel *proto, int weight,
				   char **err)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->sh = ob->sh;
	w->weight = weight;
	pthread_cond_init(&w->cv, NULL);
	w->ch = (struct channel){ .ops = proto->ops, .conf = proto->conf, .medium = proto->medium };
	if (w->ch.ops->open != NULL && w->ch.ops->open(&w->ch, err) < 0) {
		worker_free(w);
		return NULL;
	}
	w->ch_open = true;
	pthread_mutex_lock(&ob->sh->mu);
	ob->sh->refs++;
	pthread_mutex_unlock(&ob->sh->mu);
	int e = pthread_create(&w->thread, NULL, worker_main, w);
	if (e != 0) {
		pthread_mutex_lock(&ob->sh->mu);
		ob->sh->refs--;
		pthread_mutex_unlock(&ob->sh->mu);
		worker_free(w);
		seterr(err, "outbox: starting a worker: %s", strerror(e));
		return NULL;
	}
	return w;
}

/* One worker per slot: [smtp] sessions for SMTP, one for SMS (which runs
 * [sms] concurrency transfers itself), one for the file channel. */
static int lane_open(struct outbox *ob, enum medium m, struct channel *proto, char **err)
{
	struct lane *l = &ob->lanes[m];
	const struct config *c = ob->c;
	size_t slots = 1;
	int weight = 1;
	l->proto = proto;
	if (proto == NULL)
		return 0;
	if (m == MEDIUM_MAIL) {
		l->batch_max = (size_t)c->smtp.batch;
		if (c->smtp.mail_channel == CHANNEL_SMTP)
			slots = (size_t)c->smtp.sessions;
	} else {
		l->batch_max = (size_t)c->sms.concurrency * 4;
		if (c->sms.sms_channel == CHANNEL_SMS)
			weight = c->sms.concurrency;
	}
	l->batch_max = l->batch_max ? l->batch_max : 1;
	l->w = xcalloc(slots ? slots : 1, sizeof(*l->w));
	for (size_t i = 0; i < slots; i++) {
		if ((l->w[i] = worker_start(ob, proto, weight, err)) == NULL)
			return -1;
		l->nw++;
	}
	return 0;
}

/* Index one pending entry (outq/<id>) at start. */
static int load_pending(void *ctx, const char *id, json_object *doc)
{
	struct outbox *ob = ctx;
	json_object *v;
	uint8_t raw[ID_BYTES];
	time_t due = 0;
	const char *med = json_object_object_get_ex(doc, "medium", &v) ? json_object_get_string(v) : "";
	const char *next = json_object_object_get_ex(doc, "next_attempt", &v)
		? json_object_get_string(v) : "";
	int m = strcmp(med, "mail") == 0 ? MEDIUM_MAIL : strcmp(med, "sms") == 0 ? MEDIUM_SMS : -1;
	bool version_ok = json_object_object_get_ex(doc, "version", &v) &&
		json_object_get_int(v) == OUTQ_VERSION;
	if (!version_ok || m < 0 || !id_parse(id, raw) || time_parse_rfc3339(next, &due) < 0) {
		log_warnx("outbox: %s/%s/%s.json: not a pending entry this program knows; left alone",
			  store_dir(ob->st), C_OUTQ, id);
		return 0;
	}
	if (ob->lanes[m].proto == NULL)
		ob->lanes[m].unindexed++;
	else
		heap_push(&ob->lanes[m].q, raw, due);
	return 0;
}

int outbox_open(struct store *st, const struct config *c, struct channel *channels[2],
		const struct outbox_hooks *hooks, struct outbox **out, char **err)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob));
	ob->st = st;
	ob->c = c;
	if (hooks != NULL)
		ob->hooks = *hooks;
	ob->sh = shared_new();
	ob->queue_only = channels == NULL;
	if (getrandom(&ob->rng, sizeof(ob->rng), 0) != (ssize_t)sizeof(ob->rng))
		ob->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	ob->max_age = period_secs(&c->outbox.max_age);
	ob->retry_min = period_secs(&c->outbox.retry_min);
	ob->retry_min = ob->retry_min > 0 ? ob->retry_min : 1;
	ob->retry_max = period_secs(&c->outbox.retry_max);
	ob->retry_max = ob->retry_max > ob->retry_min ? ob->retry_max : ob->retry_min;
	for (int m = 0; m < 2; m++) {
		if (lane_open(ob, (enum medium)m, channels ? channels[m] : NULL, err) < 0) {
			outbox_close(ob, 1000);
			return -1;
		}
	}
	store_foreach(st, C_OUTQ, load_pending, ob);
	ob->stats.dead = store_count(st, C_DEAD);
	if (!ob->queue_only)     /* what a restart will (re)try, first of all */
		log_info("outbox: %zu notice(s) pending at start (mail %zu, sms %zu)",
			 ob->lanes[MEDIUM_MAIL].q.n + ob->lanes[MEDIUM_SMS].q.n, ob->lanes[MEDIUM_MAIL].q.n,
			 ob->lanes[MEDIUM_SMS].q.n);
	for (int m = 0; m < 2; m++)
		if (ob->lanes[m].unindexed > 0 && !ob->queue_only)
			log_warnx("outbox: %zu %s notices wait: %s is switched off",
				  ob->lanes[m].unindexed, medium_name((enum medium)m),
				  medium_name((enum medium)m));
	*out = ob;
	return 0;
}

/* Join a worker by the deadline, or leave it to finish and free itself
 * (its notices stay queued in the store and go at the next start). */
static void stop_worker(struct outbox *ob, struct worker *w, const struct timespec *deadline)
{
	if (pthread_timedjoin_np(w->thread, NULL, deadline) == 0) {
		worker_free(w);
		return;
	}
	pthread_mutex_lock(&ob->sh->mu);
	bool exited = w->exited;
	w->abandoned = !exited;
	pthread_mutex_unlock(&ob->sh->mu);
	if (exited) {
		pthread_join(w->thread, NULL);
		worker_free(w);
		return;
	}
	pthread_detach(w->thread);
	log_warnx("outbox: a %s worker is still sending after the close timeout; "
		  "its notices stay queued and go again at the next start",
		  medium_name(w->ch.medium));
}

void outbox_close(struct outbox *ob, int timeout_ms)
{
	if (ob == NULL)
		return;
	ob->closing = true;
	pthread_mutex_lock(&ob->sh->mu);
	ob->sh->stop = true;
	for (int m = 0; m < 2; m++)
		for (size_t i = 0; i < ob->lanes[m].nw; i++)
			pthread_cond_signal(&ob->lanes[m].w[i]->cv);
	pthread_mutex_unlock(&ob->sh->mu);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (int m = 0; m < 2; m++)
		for (size_t i = 0; i < ob->lanes[m].nw; i++)
			stop_worker(ob, ob->lanes[m].w[i], &deadline);
	/* record the outcomes of the batches that finished */
	char *e = NULL;
	if (outbox_collect(ob, time(NULL), &e) < 0) {
		log_warnx("outbox: close: %s", e);
		free(e);
	}
	results_free(ob->retry);
	fresh_clear(ob);
	for (int m = 0; m < 2; m++) {
		free(ob->lanes[m].q.v);
		free(ob->lanes[m].w);
	}
	free(ob->inflight.k);
	shared_unref(ob->sh);
	free(ob);
}

/* ---- the owner's view ---- */

int outbox_fd(const struct outbox *ob)
{
	return ob->sh->efd;
}

size_t outbox_in_flight(const struct outbox *ob)
{
	return ob->inflight.n;
}

/* Can the lane start a batch now (an idle worker that fits the cap)? */
static bool lane_can_start(const struct outbox *ob, const struct lane *l)
{
	bool ok = false;
	pthread_mutex_lock(&ob->sh->mu);
	int busy = busy_weight(ob);
	for (size_t i = 0; i < l->nw && !ok; i++) {
		const struct worker *w = l->w[i];
		ok = !w->busy && w->nbatch == 0 &&
			(busy == 0 || busy + w->weight <= ob->c->outbox.global_concurrency);
	}
	pthread_mutex_unlock(&ob->sh->mu);
	return ok;
}

time_t outbox_next_due(const struct outbox *ob)
{
	time_t best = ob->retry != NULL ? ob->retry_at : 0;
	for (int m = 0; m < 2; m++) {
		const struct lane *l = &ob->lanes[m];
		/* busy workers: the collect of their outcomes kicks again */
		if (l->proto == NULL || l->q.n == 0 || !lane_can_start(ob, l))
			continue;
		time_t t = l->q.v[0].due > l->paused_until ? l->q.v[0].due : l->paused_until;
		if (best == 0 || t < best)
			best = t;
	}
	return best;
}

void outbox_stats(const struct outbox *ob, struct outbox_stats *out)
{
	*out = ob->stats;
	out->queued = ob->lanes[0].q.n + ob->lanes[1].q.n + ob->lanes[0].unindexed +
		ob->lanes[1].unindexed;
	out->in_flight = ob->inflight.n;
}
