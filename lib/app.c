/* app.c: see app.h. */
#include "app.h"
#include "hashmap.h"
#include "jsonutil.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[ST__COUNT] = {
	[ST_REQUESTED] = "requested",
	[ST_REJECTED] = "rejected",
	[ST_APPROVED] = "approved",
	[ST_SUBMITTED] = "submitted",
	[ST_CREDENTIALS_ISSUED] = "credentials_issued",
	[ST_COMMITMENT_RECEIVED] = "commitment_received",
	[ST_POSTED] = "posted",
	[ST_SHIPPED] = "shipped",
	[ST_ACTIVATED] = "activated",
	[ST_CANCELLED] = "cancelled",
	[ST_EXPIRED] = "expired",
};

const char *app_state_name(enum app_state s)
{
	return (unsigned)s < ST__COUNT ? state_names[s] : "unknown";
}

int app_state_parse(const char *s, enum app_state *out)
{
	for (int i = 0; i < ST__COUNT; i++)
		if (s && strcmp(s, state_names[i]) == 0) {
			*out = (enum app_state)i;
			return 0;
		}
	return -1;
}

bool app_state_open(enum app_state s)
{
	return (ST_OPEN_MASK & ST_BIT(s)) != 0;
}

struct apps {
	struct hashmap *by_id;      /* id -> struct app_entry * (owned) */
	struct hashmap *by_email;   /* email -> entry (open ones only) */
	struct hashmap *by_tc;      /* tc -> entry (open ones only) */
};

struct apps *apps_new(void)
{
	struct apps *a = xcalloc(1, sizeof(*a));
	/* The maps borrow their keys from the entries (e->id, e->email,
	 * e->tc): three copies of every key cost ~10 MB at 100,000
	 * applications. apps_index() unlinks an entry before freeing its
	 * strings and links it again with the new ones. */
	a->by_id = hm_new_borrowed();
	a->by_email = hm_new_borrowed();
	a->by_tc = hm_new_borrowed();
	return a;
}

static void entry_free(struct app_entry *e)
{
	free(e->id);
	free(e->email);
	free(e->tc);
	free(e->name);
	free(e->unit);
	free(e);
}

static int free_one(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	entry_free(value);
	return 0;
}

void apps_free(struct apps *a)
{
	if (a == NULL)
		return;
	hm_foreach(a->by_id, free_one, NULL);
	hm_free(a->by_id);
	hm_free(a->by_email);
	hm_free(a->by_tc);
	free(a);
}

size_t apps_count(const struct apps *a)
{
	return hm_count(a->by_id);
}

/* An empty field is no key. */
static char *nonempty_dup(const char *s)
{
	return str_empty(s) ? NULL : xstrdup(s);
}

/* Drop e from the secondary maps if they point at it. */
static void unlink_secondary(struct apps *a, struct app_entry *e)
{
	if (e->email && hm_get(a->by_email, e->email) == e)
		hm_del(a->by_email, e->email);
	if (e->tc && hm_get(a->by_tc, e->tc) == e)
		hm_del(a->by_tc, e->tc);
}

/* Newer id wins when two open applications share an address. */
static void link_secondary(struct hashmap *h, const char *key, struct app_entry *e)
{
	if (key == NULL || !app_state_open(e->state))
		return;
	struct app_entry *cur = hm_get(h, key);
	if (cur == NULL || strcmp(cur->id, e->id) <= 0)
		hm_put(h, key, e);
}

void apps_index(struct apps *a, json_object *doc)
{
	const char *id = jget_str(doc, "id");
	if (id == NULL)
		return;
	struct app_entry *e = hm_get(a->by_id, id);
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->id = xstrdup(id);
		hm_put(a->by_id, e->id, e);
	} else {
		unlink_secondary(a, e);
		free(e->email);
		free(e->tc);
		free(e->name);
		free(e->unit);
	}
	e->state = app_doc_state(doc);
	e->unreachable = jget(doc, "unreachable") != NULL;
	e->email = nonempty_dup(jget_str(doc, "applicant.email"));
	if (e->email)
		str_lower_ascii(e->email);
	e->tc = nonempty_dup(jget_str(doc, "applicant.tc"));
	e->name = nonempty_dup(jget_str(doc, "applicant.name"));
	e->unit = nonempty_dup(jget_str(doc, "unit.name"));
	if (e->unit == NULL)
		e->unit = nonempty_dup(jget_str(doc, "applicant.unit"));
	e->opened = jget_time(doc, "opened");
	e->state_since = jget_time(doc, "state_since");
	e->next_due = jget_time(doc, "clock.next");
	e->reminders = (int)(jget_int(doc, "clock.reminders") + jget_int(doc, "clock.escalations"));
	link_secondary(a->by_email, e->email, e);
	link_secondary(a->by_tc, e->tc, e);
}

void apps_forget(struct apps *a, const char *id)
{
	struct app_entry *e = hm_del(a->by_id, id);
	if (e == NULL)
		return;
	unlink_secondary(a, e);
	entry_free(e);
}

struct app_entry *apps_find(struct apps *a, const char *id)
{
	return id ? hm_get(a->by_id, id) : NULL;
}

struct app_entry *apps_find_open_by_email(struct apps *a, const char *email)
{
	if (email == NULL)
		return NULL;
	char *low = str_lower_ascii(xstrdup(email));
	struct app_entry *e = hm_get(a->by_email, low);
	free(low);
	return e;
}

struct app_entry *apps_find_open_by_tc(struct apps *a, const char *tc)
{
	return tc ? hm_get(a->by_tc, tc) : NULL;
}

static int index_one(void *ctx, const char *id, json_object *doc)
{
	struct apps *a = ctx;
	int64_t v = jget_int(doc, "version");
	if (v != APP_VERSION) {
		log_warnx("apps: %s: unknown document version %lld, skipped", id, (long long)v);
		return 0;
	}
	apps_index(a, doc);
	return 0;
}

int apps_load(struct store *st, struct apps **out, char **err)
{
	struct apps *a = apps_new();
	if (store_foreach(st, "apps", index_one, a) != 0) {
		apps_free(a);
		return seterr(err, "apps: cannot read the applications");
	}
	*out = a;
	return 0;
}

struct collect {
	struct app_entry **v;
	size_t n, cap;
	time_t due_by;           /* 0: every entry; else open ones due by then */
};

static int collect_one(void *ctx, const char *key, void *value)
{
	(void)key;
	struct collect *c = ctx;
	struct app_entry *e = value;
	if (c->due_by && !(e->next_due && e->next_due <= c->due_by && app_state_open(e->state)))
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xreallocarray(c->v, c->cap + 1, sizeof(*c->v));
	}
	c->v[c->n++] = e;
	return 0;
}


static int by_id_cmp(const void *a, const void *b)
{
	const struct app_entry *x = *(struct app_entry *const *)a;
	const struct app_entry *y = *(struct app_entry *const *)b;
	return strcmp(x->id, y->id);
}

static struct app_entry **collect_sorted(struct apps *a, time_t due_by, size_t *n)
{
	size_t cap = due_by ? 0 : hm_count(a->by_id);
	struct collect c = { xcalloc(cap + 1, sizeof(*c.v)), 0, cap, due_by };
	hm_foreach(a->by_id, collect_one, &c);
	qsort(c.v, c.n, sizeof(*c.v), by_id_cmp);
	*n = c.n;
	return c.v;
}

struct app_entry **apps_sorted(struct apps *a, size_t *n)
{
	return collect_sorted(a, 0, n);
}

struct app_entry **apps_due(struct apps *a, time_t t, size_t *n)
{
	return collect_sorted(a, t > 0 ? t : 1, n);
}

char *apps_next_id(struct txn *t, const char *prefix, int year)
{
	json_object *doc = txn_get(t, "meta", "counters");
	if (doc == NULL) {
		doc = json_object_new_object();
		jset_int(doc, "version", 1);
	}
	char key[32];
	snprintf(key, sizeof(key), "apps.%d", year);
	int64_t n = jget_int(doc, key) + 1;
	jset_int(doc, key, n);
	txn_put(t, "meta", "counters", doc);
	return xasprintf("%s-%d-%04lld", prefix, year, (long long)n);
}

json_object *app_doc_new(const char *id, enum app_state state, time_t now)
{
	json_object *doc = json_object_new_object();
	jset_int(doc, "version", APP_VERSION);
	jset_str(doc, "id", id);
	jset_str(doc, "state", app_state_name(state));
	jset_time(doc, "created", now);
	jset(doc, "applicant", json_object_new_object());
	jset(doc, "history", json_object_new_array());
	return doc;
}

enum app_state app_doc_state(json_object *doc)
{
	enum app_state s = ST_REQUESTED;
	if (app_state_parse(jget_str(doc, "state"), &s) < 0)
		log_warnx("apps: %s: unknown state '%s'", jget_str(doc, "id"), jget_str(doc, "state"));
	return s;
}

json_object *app_history_add(json_object *doc, time_t at, const char *event, const char *from,
			     const char *to, const char *actor, const char *source, const char *detail)
{
	json_object *h = jget(doc, "history");
	if (h == NULL || !json_object_is_type(h, json_type_array)) {
		h = json_object_new_array();
		jset(doc, "history", h);
	}
	json_object *rec = json_object_new_object();
	jset_time(rec, "at", at);
	jset_str(rec, "event", event);
	jset_str(rec, "from", from);
	jset_str(rec, "to", to);
	jset_str(rec, "actor", actor);
	jset_str(rec, "source", source);
	jset_str(rec, "detail", detail);
	json_object_array_add(h, rec);
	return rec;
}
