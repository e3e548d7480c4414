/* store_journal.c: the journal's record format and its replay (see
 * store_p.h for the format and the damage policy). */
#include "store_p.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Half-byte table of the reflected polynomial 0xEDB88320: small, and fast
 * enough (a 4 MiB journal in ~10 ms). */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t store_crc32(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		crc ^= c[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}

/* ---- encoding ---- */

/* The CRC suffix: ,"crc":"xxxxxxxx"} */
#define CRC_SUFFIX_LEN 18

/* Close the record begun at b->p[start]: b holds it without its final
 * '}'; append the CRC of those bytes, the brace and the newline. */
static void end_record(struct buf *b, size_t start)
{
	uint32_t crc = store_crc32(b->p + start, b->len - start);
	buf_printf(b, ",\"crc\":\"%08" PRIx32 "\"}\n", crc);
}

static size_t begin_record(struct buf *b, uint64_t t, const char *op)
{
	size_t start = b->len;
	buf_printf(b, "{\"v\":%d,\"t\":%" PRIu64 ",\"op\":\"%s\"", STORE_FORMAT_VERSION, t, op);
	return start;
}

/* Collection names and ids are validated to characters that need no JSON
 * escaping, so they are written as they are. */
void journal_add_put_span(struct buf *b, uint64_t t, const char *coll, const char *id,
			  json_object *doc, size_t *doc_off, size_t *doc_len)
{
	size_t start = begin_record(b, t, "put");
	buf_printf(b, ",\"c\":\"%s\",\"id\":\"%s\",\"doc\":", coll, id);
	size_t n;
	const char *s = json_object_to_json_string_length(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	*doc_off = b->len;
	*doc_len = n;
	buf_add(b, s, n);
	end_record(b, start);
}

void journal_add_put(struct buf *b, uint64_t t, const char *coll, const char *id,
		     json_object *doc)
{
	size_t off, len;
	journal_add_put_span(b, t, coll, id, doc, &off, &len);
}

void journal_add_del(struct buf *b, uint64_t t, const char *coll, const char *id)
{
	size_t start = begin_record(b, t, "del");
	buf_printf(b, ",\"c\":\"%s\",\"id\":\"%s\"", coll, id);
	end_record(b, start);
}

void journal_add_seen(struct buf *b, uint64_t t, uint64_t hash)
{
	size_t start = begin_record(b, t, "seen");
	buf_printf(b, ",\"h\":\"%016" PRIx64 "\"", hash);
	end_record(b, start);
}

void journal_add_commit(struct buf *b, uint64_t t, size_t nrecords)
{
	size_t start = begin_record(b, t, "commit");
	buf_printf(b, ",\"n\":%zu", nrecords);
	end_record(b, start);
}

/* ---- decoding ---- */

json_object *store_parse_object(const char *p, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, p, (int)len);
	bool ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
		json_object_is_type(o, json_type_object);
	if (ok) {
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
				ok = false;
	}
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Check one line's CRC and parse it; NULL if damaged. */
static json_object *decode_line(const char *line, size_t len)
{
	if (len <= CRC_SUFFIX_LEN || line[len - 1] != '}' || line[len - 2] != '"' ||
	    memcmp(line + len - CRC_SUFFIX_LEN, ",\"crc\":\"", 8) != 0)
		return NULL;
	char hex[9];
	memcpy(hex, line + len - 10, 8);
	hex[8] = '\0';
	char *end;
	unsigned long want = strtoul(hex, &end, 16);
	if (*end != '\0' || store_crc32(line, len - CRC_SUFFIX_LEN) != (uint32_t)want)
		return NULL;
	return store_parse_object(line, len);
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The transaction being gathered during a replay. */
struct pending {
	int64_t t;
	size_t start;           /* offset of its first record */
	json_object *recs;      /* array of records, or NULL */
};

static void pending_drop(struct pending *p)
{
	json_object_put(p->recs);
	p->recs = NULL;
	p->t = -1;
}

static int pending_apply(struct store *s, struct pending *p, struct replay_result *res,
			 char **err)
{
	size_t n = json_object_array_length(p->recs);
	for (size_t i = 0; i < n; i++)
		if (store_apply_record(s, json_object_array_get_idx(p->recs, i), err) < 0)
			return -1;
	res->txns++;
	res->records += n;
	res->last_txn = (uint64_t)p->t;
	pending_drop(p);
	return 0;
}

/* Scanner state over the journal's lines. */
struct scan {
	struct store *s;
	struct pending p;
	size_t bad_off;         /* first damaged line not yet followed by an intact one */
	bool have_bad;
	bool quiet;             /* a reader racing a writer sees torn tails */
};

/* One intact record at offset off. */
static int scan_record(struct scan *sc, json_object *rec, size_t off,
		       struct replay_result *res, char **err)
{
	int64_t v = get_int(rec, "v"), t = get_int(rec, "t");
	const char *op = get_str(rec, "op");
	if (v != STORE_FORMAT_VERSION)
		return seterr(err, "%s/journal: record at offset %zu has version %lld; "
			      "this program knows %d", sc->s->dir, off, (long long)v,
			      STORE_FORMAT_VERSION);
	if (sc->have_bad) {
		log_warnx("store: %s/journal: damaged record at offset %zu: its transaction "
			  "is dropped, later ones are kept", sc->s->dir, sc->bad_off);
		res->corrupt = true;
		sc->have_bad = false;
	}
	if (op != NULL && strcmp(op, "commit") == 0) {
		if (sc->p.recs != NULL && sc->p.t == t &&
		    get_int(rec, "n") == (int64_t)json_object_array_length(sc->p.recs)) {
			return pending_apply(sc->s, &sc->p, res, err);
		}
		log_warnx("store: %s/journal: commit marker at offset %zu does not match "
			  "the records before it; transaction dropped", sc->s->dir, off);
		res->corrupt = true;
		pending_drop(&sc->p);
		return 0;
	}
	if (sc->p.recs != NULL && sc->p.t != t) {
		log_warnx("store: %s/journal: transaction at offset %zu has no commit marker; "
			  "dropped", sc->s->dir, sc->p.start);
		res->corrupt = true;
		pending_drop(&sc->p);
	}
	if (sc->p.recs == NULL) {
		sc->p.recs = json_object_new_array();
		sc->p.t = t;
		sc->p.start = off;
	}
	json_object_array_add(sc->p.recs, json_object_get(rec));
	return 0;
}

static void scan_bad(struct scan *sc, size_t off)
{
	if (!sc->have_bad) {
		sc->have_bad = true;
		sc->bad_off = off;
	}
	/* the transaction it belongs to can no longer be complete */
	if (sc->p.recs != NULL)
		pending_drop(&sc->p);
}

static void scan_finish(struct scan *sc, struct replay_result *res)
{
	size_t tail = SIZE_MAX;
	if (sc->p.recs != NULL)
		tail = sc->p.start;
	if (sc->have_bad && sc->bad_off < tail)
		tail = sc->bad_off;
	if (tail != SIZE_MAX) {
		res->torn = true;
		if (sc->quiet)
			log_debug("store: %s/journal: incomplete tail at offset %zu ignored",
				  sc->s->dir, tail);
		else
			log_warnx("store: %s/journal: torn tail at offset %zu ignored "
				  "(an interrupted commit)", sc->s->dir, tail);
	}
	pending_drop(&sc->p);
}

int journal_replay(struct store *s, const char *data, size_t len,
		   struct replay_result *res, char **err)
{
	struct scan sc = {
		.s = s,
		.p = { .t = -1 },
		.quiet = s->mode == STORE_READER,
	};
	memset(res, 0, sizeof(*res));
	size_t off = 0;
	int rc = 0;
	while (off < len && rc == 0) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - data) : len;
		json_object *rec = nl ? decode_line(data + off, end - off) : NULL;
		if (rec == NULL)
			scan_bad(&sc, off);
		else
			rc = scan_record(&sc, rec, off, res, err);
		json_object_put(rec);
		off = end + 1;
	}
	if (rc == 0)
		scan_finish(&sc, res);
	pending_drop(&sc.p);
	return rc;
}
