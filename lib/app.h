/*
 * app.h: applications: the document each one is stored as, and the small
 * in-memory index the daemon keeps of all of them.
 *
 * The document (store collection "apps", id = the tag "EIMZA-2026-0001"):
 *   version       APP_VERSION
 *   id, state     see enum app_state
 *   applicant     {name, email, mobile, tc, title, unit}
 *   unit          {name, reply_to}
 *   opened        when the process began (request letter, or import `since`)
 *   state_since   when the current state was entered (the event's time)
 *   clock         {since, reminders, escalations, due, next}: the reminder
 *                  clock of the current state
 *   alarm         {last}: the "open for too long" escalation
 *   credentials   {flow: "password"|"online", first_seen, last_seen,
 *                  expires, warned, code_hash, link}
 *   access_code   only with [general] store_access_codes = yes
 *   tracking_no, unreachable {at, reason}, thread (first notice's
 *   Message-ID), closed_at, purged
 *   history       [{at, event, from, to, actor, source, detail, notices[]}]
 *
 * The index holds, per application, what lists, lookups and timers need
 * without reading documents: id, state, unreachable flag, email, tc,
 * name, unit, opened, state_since, next_due. It is rebuilt from the store
 * at start (apps_load) and kept current by apps_index() after each change.
 *
 * Ownership: the index owns its entries; pointers returned by lookups
 * stay valid until the next apps_index()/apps_forget() of that id or
 * apps_free().
 */
#ifndef EIMZA_APP_H
#define EIMZA_APP_H

#include "store.h"

#include <json-c/json.h>

#define APP_VERSION 1

enum app_state {
	ST_REQUESTED,
	ST_REJECTED,
	ST_APPROVED,
	ST_SUBMITTED,
	ST_CREDENTIALS_ISSUED,
	ST_COMMITMENT_RECEIVED,
	ST_POSTED,
	ST_SHIPPED,
	ST_ACTIVATED,
	ST_CANCELLED,
	ST_EXPIRED,
	ST__COUNT
};
#define ST_BIT(s) (1u << (s))
#define ST_OPEN_MASK (~(ST_BIT(ST_REJECTED) | ST_BIT(ST_ACTIVATED) | ST_BIT(ST_CANCELLED)) & \
		      ((1u << ST__COUNT) - 1))

const char *app_state_name(enum app_state s);
int app_state_parse(const char *s, enum app_state *out);
bool app_state_open(enum app_state s);

struct app_entry {
	char *id;
	enum app_state state;
	bool unreachable;
	char *email;           /* lowercased */
	char *tc;
	char *name;
	char *unit;
	time_t opened;
	time_t state_since;
	time_t next_due;       /* next timer, 0 = none */
	int reminders;         /* reminders + escalations sent in this state */
};

struct apps;

int apps_load(struct store *st, struct apps **out, char **err);
struct apps *apps_new(void);
void apps_free(struct apps *a);
size_t apps_count(const struct apps *a);

/* Update the index from a document just written (or insert it). */
void apps_index(struct apps *a, json_object *doc);
void apps_forget(struct apps *a, const char *id);

struct app_entry *apps_find(struct apps *a, const char *id);
/* The open application of this address / TC number, or NULL. When
 * several are open (which the workflow avoids), the newest. */
struct app_entry *apps_find_open_by_email(struct apps *a, const char *email);
struct app_entry *apps_find_open_by_tc(struct apps *a, const char *tc);

/* Entries sorted by id; the array is the caller's (free()), entries are
 * borrowed. */
struct app_entry **apps_sorted(struct apps *a, size_t *n);
/* The same for the open applications whose next_due is set and <= t
 * only (what the timers look at after every batch: no copy of the rest). */
struct app_entry **apps_due(struct apps *a, time_t t, size_t *n);

/* Allocate the next tag of the year from the "meta/counters" document in
 * transaction t: "<prefix>-<year>-<NNNN>". */
char *apps_next_id(struct txn *t, const char *prefix, int year);

/* A new document in ST_REQUESTED (or `state`) for an applicant. */
json_object *app_doc_new(const char *id, enum app_state state, time_t now);
enum app_state app_doc_state(json_object *doc);
/* Append a history record; returns it (borrowed) so notices can be added. */
json_object *app_history_add(json_object *doc, time_t at, const char *event,
			     const char *from, const char *to, const char *actor,
			     const char *source, const char *detail);

#endif
