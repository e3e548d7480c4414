/* notice.c: notices and their JSON form (see notice.h). */
#include "notice.h"
#include "log.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const medium_names[] = {
	[MEDIUM_MAIL] = "mail",
	[MEDIUM_SMS] = "sms",
};

static const char *const state_names[] = {
	[NS_QUEUED] = "queued",
	[NS_SENT] = "sent",
	[NS_DEAD] = "dead",
	[NS_DROPPED] = "dropped",
};

const char *medium_name(enum medium m)
{
	return (size_t)m < ARRAY_LEN(medium_names) ? medium_names[m] : "?";
}

const char *notice_state_name(enum notice_state s)
{
	return (size_t)s < ARRAY_LEN(state_names) ? state_names[s] : "?";
}

/* Index of name in a name table, or -1. */
static int name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

struct notice *notice_new(void)
{
	struct notice *n = xcalloc(1, sizeof(*n));
	n->state = NS_QUEUED;
	n->medium = MEDIUM_MAIL;
	return n;
}

void notice_free(struct notice *n)
{
	if (n == NULL)
		return;
	free(n->id);
	free(n->app_id);
	strv_free(n->app_ids);
	free(n->kind);
	free(n->to);
	free(n->subject);
	free(n->body);
	free(n->body_html);
	free(n->message_id);
	free(n->in_reply_to);
	free(n->references);
	free(n->dedupe);
	free(n->valid_state);
	free(n->last_error);
	free(n->provider_id);
	free(n);
}

char *notice_id_for(const char *dedupe)
{
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, dedupe, strlen(dedupe), d) < 0)
		fatalx("notice: SHA-256 is not available");
	char *id = xmalloc(1 + 32 + 1);
	id[0] = 'n';
	for (int i = 0; i < 16; i++) {
		static const char hex[] = "0123456789abcdef";
		id[1 + 2 * i] = hex[d[i] >> 4];
		id[2 + 2 * i] = hex[d[i] & 15];
	}
	id[33] = '\0';
	return id;
}

/* The string fields, in the order they are written. Required ones make a
 * document without them unreadable. */
static const struct {
	const char *key;
	size_t off;
	bool required;
} str_fields[] = {
	{ "id", offsetof(struct notice, id), true },
	{ "app_id", offsetof(struct notice, app_id), false },
	{ "kind", offsetof(struct notice, kind), true },
	{ "to", offsetof(struct notice, to), true },
	{ "subject", offsetof(struct notice, subject), false },
	{ "body", offsetof(struct notice, body), true },
	{ "body_html", offsetof(struct notice, body_html), false },
	{ "message_id", offsetof(struct notice, message_id), false },
	{ "in_reply_to", offsetof(struct notice, in_reply_to), false },
	{ "references", offsetof(struct notice, references), false },
	{ "dedupe", offsetof(struct notice, dedupe), false },
	{ "valid_state", offsetof(struct notice, valid_state), false },
	{ "last_error", offsetof(struct notice, last_error), false },
	{ "provider_id", offsetof(struct notice, provider_id), false },
};

/* Times are RFC 3339 UTC strings; 0 (not set) is left out. */
static const struct {
	const char *key;
	size_t off;
} time_fields[] = {
	{ "created", offsetof(struct notice, created) },
	{ "next_attempt", offsetof(struct notice, next_attempt) },
	{ "expires", offsetof(struct notice, expires) },
	{ "done_at", offsetof(struct notice, done_at) },
};

#define FIELD(n, type, off) (*(type *)((char *)(n) + (off)))
#define CFIELD(n, type, off) (*(const type *)((const char *)(n) + (off)))

json_object *notice_to_json(const struct notice *n)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(NOTICE_VERSION));
	for (size_t i = 0; i < ARRAY_LEN(str_fields); i++) {
		const char *v = CFIELD(n, char *, str_fields[i].off);
		if (v != NULL)
			json_object_object_add(o, str_fields[i].key, json_object_new_string(v));
	}
	if (n->app_ids != NULL) {
		json_object *a = json_object_new_array();
		for (char **p = n->app_ids; *p; p++)
			json_object_array_add(a, json_object_new_string(*p));
		json_object_object_add(o, "app_ids", a);
	}
	json_object_object_add(o, "medium", json_object_new_string(medium_name(n->medium)));
	json_object_object_add(o, "state", json_object_new_string(notice_state_name(n->state)));
	json_object_object_add(o, "attempts", json_object_new_int(n->attempts));
	for (size_t i = 0; i < ARRAY_LEN(time_fields); i++) {
		time_t t = CFIELD(n, time_t, time_fields[i].off);
		char buf[32];
		if (t != 0)
			json_object_object_add(o, time_fields[i].key,
					       json_object_new_string(time_fmt_utc(t, buf, sizeof(buf))));
	}
	return o;
}

/* A string member, NULL if absent; -1 if present with another type. */
static int get_str(json_object *doc, const char *key, const char **out)
{
	json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(doc, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	return 0;
}

static int read_strings(json_object *doc, struct notice *n, char **err)
{
	for (size_t i = 0; i < ARRAY_LEN(str_fields); i++) {
		const char *v;
		if (get_str(doc, str_fields[i].key, &v) < 0)
			return seterr(err, "notice: \"%s\" is not a string", str_fields[i].key);
		if (v == NULL && str_fields[i].required)
			return seterr(err, "notice: \"%s\" is missing", str_fields[i].key);
		if (v != NULL)
			FIELD(n, char *, str_fields[i].off) = xstrdup(v);
	}
	json_object *a;
	if (json_object_object_get_ex(doc, "app_ids", &a) && a != NULL) {
		if (!json_object_is_type(a, json_type_array))
			return seterr(err, "notice: \"app_ids\" is not an array");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *e = json_object_array_get_idx(a, i);
			if (!json_object_is_type(e, json_type_string))
				return seterr(err, "notice: \"app_ids\" holds a non-string");
			n->app_ids = strv_add(n->app_ids, json_object_get_string(e));
		}
	}
	return 0;
}

static int read_times(json_object *doc, struct notice *n, char **err)
{
	for (size_t i = 0; i < ARRAY_LEN(time_fields); i++) {
		const char *v;
		time_t t = 0;
		if (get_str(doc, time_fields[i].key, &v) < 0 ||
		    (v != NULL && time_parse_rfc3339(v, &t) < 0))
			return seterr(err, "notice: \"%s\" is not an RFC 3339 time",
				      time_fields[i].key);
		FIELD(n, time_t, time_fields[i].off) = t;
	}
	return 0;
}

static int read_enums(json_object *doc, struct notice *n, char **err)
{
	const char *v;
	int i;
	if (get_str(doc, "medium", &v) < 0 ||
	    (i = name_index(medium_names, ARRAY_LEN(medium_names), v)) < 0)
		return seterr(err, "notice: unknown medium");
	n->medium = (enum medium)i;
	if (get_str(doc, "state", &v) < 0 ||
	    (i = name_index(state_names, ARRAY_LEN(state_names), v)) < 0)
		return seterr(err, "notice: unknown state");
	n->state = (enum notice_state)i;
	json_object *a;
	if (json_object_object_get_ex(doc, "attempts", &a)) {
		if (!json_object_is_type(a, json_type_int))
			return seterr(err, "notice: \"attempts\" is not a number");
		n->attempts = json_object_get_int(a);
	}
	return 0;
}

struct notice *notice_from_json(json_object *doc, char **err)
{
	json_object *v;
	if (doc == NULL || !json_object_is_type(doc, json_type_object)) {
		seterr(err, "notice: not a JSON object");
		return NULL;
	}
	if (!json_object_object_get_ex(doc, "version", &v) || !json_object_is_type(v, json_type_int)) {
		seterr(err, "notice: no version");
		return NULL;
	}
	if (json_object_get_int64(v) != NOTICE_VERSION) {
		seterr(err, "notice: version %lld is not known (this program knows %d)",
		       (long long)json_object_get_int64(v), NOTICE_VERSION);
		return NULL;
	}
	struct notice *n = notice_new();
	if (read_strings(doc, n, err) < 0 || read_enums(doc, n, err) < 0 ||
	    read_times(doc, n, err) < 0) {
		notice_free(n);
		return NULL;
	}
	return n;
}
