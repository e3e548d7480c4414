/* hashmap.c: see hashmap.h. Tombstones mark deleted slots so that probe
 * chains stay intact; the table grows (and drops tombstones) at 70% load. */
#include "hashmap.h"

#include <stdlib.h>

#include <string.h>

struct slot {
	char *key;          /* NULL: empty; TOMB: deleted */
	void *value;
	uint64_t hash;
};

static char tomb_mark;
#define TOMB (&tomb_mark)

struct hashmap {
	struct slot *slots;
	size_t cap;         /* power of two */
	size_t count;       /* live entries */
	size_t used;        /* live + tombstones */
	bool borrowed;      /* keys are the caller's (hm_new_borrowed) */
};

uint64_t hash64(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

struct hashmap *hm_new(void)
{
	struct hashmap *h = xcalloc(1, sizeof(*h));
	h->cap = 16;
	h->slots = xcalloc(h->cap, sizeof(*h->slots));
	return h;
}

struct hashmap *hm_new_borrowed(void)
{
	struct hashmap *h = hm_new();
	h->borrowed = true;
	return h;
}

void hm_free(struct hashmap *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; !h->borrowed && i < h->cap; i++)
		if (h->slots[i].key && h->slots[i].key != TOMB)
			free(h->slots[i].key);
	free(h->slots);
	free(h);
}

/* The slot holding key, or the first free slot of its chain. */
static struct slot *find(const struct hashmap *h, const char *key, uint64_t hv, bool for_insert)
{
	size_t mask = h->cap - 1;
	struct slot *first_tomb = NULL;
	for (size_t i = hv & mask;; i = (i + 1) & mask) {
		struct slot *s = &h->slots[i];
		if (s->key == NULL)
			return (for_insert && first_tomb) ? first_tomb : s;
		if (s->key == TOMB) {
			if (first_tomb == NULL)
				first_tomb = s;
			continue;
		}
		if (s->hash == hv && strcmp(s->key, key) == 0)
			return s;
	}
}

static void grow(struct hashmap *h)
{
	struct slot *old = h->slots;
	size_t oldcap = h->cap;
	if (h->count * 2 >= h->cap)
		h->cap *= 2;
	h->slots = xcalloc(h->cap, sizeof(*h->slots));
	h->used = h->count;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == NULL || old[i].key == TOMB)
			continue;
		struct slot *s = find(h, old[i].key, old[i].hash, true);
		*s = old[i];
	}
	free(old);
}

void *hm_put(struct hashmap *h, const char *key, void *value)
{
	if ((h->used + 1) * 10 >= h->cap * 7)
		grow(h);
	uint64_t hv = hash64(key, strlen(key));
	struct slot *s = find(h, key, hv, false);
	if (s->key != NULL) {
		void *prev = s->value;
		s->value = value;
		if (h->borrowed)
			s->key = (char *)key;
		return prev;
	}
	s = find(h, key, hv, true);
	if (s->key == NULL)
		h->used++;
	s->key = h->borrowed ? (char *)key : xstrdup(key);
	s->value = value;
	s->hash = hv;
	h->count++;
	return NULL;
}

void *hm_get(const struct hashmap *h, const char *key)
{
	struct slot *s = find(h, key, hash64(key, strlen(key)), false);
	return s->key ? s->value : NULL;
}

void *hm_del(struct hashmap *h, const char *key)
{
	struct slot *s = find(h, key, hash64(key, strlen(key)), false);
	if (s->key == NULL)
		return NULL;
	void *v = s->value;
	if (!h->borrowed)
		free(s->key);
	s->key = TOMB;
	s->value = NULL;
	h->count--;
	return v;
}

size_t hm_count(const struct hashmap *h)
{
	return h->count;
}

int hm_foreach(struct hashmap *h, int (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
	for (size_t i = 0; i < h->cap; i++) {
		struct slot *s = &h->slots[i];
		if (s->key == NULL || s->key == TOMB)
			continue;
		int r = fn(ctx, s->key, s->value);
		if (r)
			return r;
	}
	return 0;
}
