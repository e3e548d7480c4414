/*
 * notice.h: one message to one recipient over one medium, as queued in
 * the outbox and handed to a channel.
 *
 * A notice is complete when queued: rendered subject and body, recipient,
 * headers. Nothing is rendered at send time, so what was recorded is what
 * is sent. Stored as a JSON document in the store's "notices" collection
 * (notice_to_json / notice_from_json), id = notice_id_for(dedupe key).
 *
 * Ownership: a struct notice owns its strings; notice_free() frees the
 * strings and the struct.
 */
#ifndef EIMZA_NOTICE_H
#define EIMZA_NOTICE_H

#include "util.h"

#include <json-c/json.h>

enum medium { MEDIUM_MAIL, MEDIUM_SMS };
const char *medium_name(enum medium m);          /* "mail", "sms" */

enum notice_state {
	NS_QUEUED,      /* waiting for an attempt (maybe deferred) */
	NS_SENT,        /* accepted by the server / provider */
	NS_DEAD,        /* permanent failure or gave up: dead-lettered */
	NS_DROPPED,     /* no longer relevant (state moved on) or refused */
};
const char *notice_state_name(enum notice_state s);

#define NOTICE_VERSION 1

struct notice {
	char *id;               /* "n" + 32 hex of the dedupe key's hash */
	char *app_id;           /* the application, or NULL (digests, officer mail) */
	char **app_ids;         /* digests: every application listed, or NULL */
	char *kind;             /* template name: "credentials_issued", "reminder", ... */
	enum medium medium;
	char *to;               /* address (mail) or E.164 number (sms) */
	char *subject;          /* mail only */
	char *body;             /* UTF-8 text */
	char *body_html;        /* optional HTML alternative (mail) */
	char *message_id;       /* mail: our Message-ID, without <> */
	char *in_reply_to;      /* mail: threading, without <> */
	char *references;       /* mail: space-separated, with <> */
	char *dedupe;           /* the key; same key -> never queued twice */
	char *valid_state;      /* if set, drop unsent when app_id's state differs */

	enum notice_state state;
	int attempts;
	time_t created;
	time_t next_attempt;    /* not before this (retry backoff, SMS hours) */
	time_t expires;         /* give up (dead-letter) after this */
	time_t done_at;         /* sent/dead/dropped time */
	char *last_error;       /* in words; never a secret */
	char *provider_id;      /* SMS provider's message id, SMTP queue id */
};

struct notice *notice_new(void);
void notice_free(struct notice *n);
/* Derive the id from the dedupe key (SHA-256, first 16 bytes, hex). */
char *notice_id_for(const char *dedupe);
json_object *notice_to_json(const struct notice *n);
/* Returns NULL (and *err) for a document of an unknown version or shape. */
struct notice *notice_from_json(json_object *doc, char **err);

#endif
