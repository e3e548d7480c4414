/*
 * hashmap.h: a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied and owned by the map; values are borrowed pointers the
 * caller manages. Iteration order is unspecified; the map must not be
 * changed during hm_foreach except through hm_del of the current key.
 */
#ifndef EIMZA_HASHMAP_H
#define EIMZA_HASHMAP_H

#include "util.h"

struct hashmap;

struct hashmap *hm_new(void);
/* A map that borrows its keys instead of copying them (for big indexes
 * whose values hold their own keys: 100,000 applications, three maps).
 * The caller keeps each key alive and unchanged while it is in the map;
 * hm_put() over an existing key stores the new key pointer with the new
 * value, so a key always belongs to its value. */
struct hashmap *hm_new_borrowed(void);
void hm_free(struct hashmap *h);
/* Insert or replace; returns the previous value or NULL. */
void *hm_put(struct hashmap *h, const char *key, void *value);
void *hm_get(const struct hashmap *h, const char *key);
/* Remove; returns the value or NULL. */
void *hm_del(struct hashmap *h, const char *key);
size_t hm_count(const struct hashmap *h);
/* Calls fn for every entry; stops when fn returns non-zero (and returns it). */
int hm_foreach(struct hashmap *h, int (*fn)(void *ctx, const char *key, void *value), void *ctx);

/* FNV-1a 64-bit, exposed for callers that key by hash. */
uint64_t hash64(const void *data, size_t n);

#endif
