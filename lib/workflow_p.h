/*
 * workflow_p.h: what the workflow's files share (workflow.c: events and
 * transitions; workflow_notify.c: building notices; workflow_timers.c:
 * reminders and alarms). Not part of any other module's contract.
 */
#ifndef EIMZA_WORKFLOW_P_H
#define EIMZA_WORKFLOW_P_H

#include "workflow.h"

/* Internal verbs: the officer's commands plus what KAMUSM's mail and time do. */
enum wf_verb {
	WV_APPROVE = CMD_APPROVE,
	WV_REJECT = CMD_REJECT,
	WV_SUBMITTED = CMD_SUBMITTED,
	WV_DELIVERED = CMD_DELIVERED,
	WV_POSTED = CMD_POSTED,
	WV_ACTIVATED = CMD_ACTIVATED,
	WV_CANCEL = CMD_CANCEL,
	WV_CREDENTIALS = CMD__COUNT,
	WV_INFO,
	WV_SHIPPED,
	WV_EXPIRE,
	WV__COUNT
};

/* Who must act in a state, for reminders. */
enum wf_actor { ACTOR_NONE, ACTOR_EBYS, ACTOR_ESIGN, ACTOR_APPLICANT };

/* Labels of a state for people (tr, en) and its actor. */
struct state_info {
	const char *tr;
	const char *en;
	enum wf_actor actor;
	const char *todo_tr;    /* what the actor must do, for reminders */
	const char *todo_en;
};
const struct state_info *wf_state_info(enum app_state s);

/* A notice to queue. */
struct wf_notice {
	const char *kind;          /* template name */
	enum medium medium;
	const char *to;
	json_object *doc;          /* the application (threading), or NULL */
	char **app_ids;            /* digests / letters: every application listed */
	const char *dedupe;
	const char *valid_state;   /* drop unsent if the application leaves it */
	time_t not_before;         /* 0 = now (SMS: moved into SMS hours) */
};

/* Render `kind` with vars (common fields are added) and queue it. Returns
 * the notice id (caller frees) or NULL when not queued (catch-up, duplicate,
 * refused, bad template: logged). In catch-up mode nothing is queued. */
char *wf_notify(struct wf *wf, struct txn *t, const struct wf_notice *n, json_object *vars,
		time_t now);
/* Template fields describing an application (tag, name, state, unit...). */
json_object *wf_app_vars(struct wf *wf, json_object *doc);
/* Queue one notice of `kind` to each address in a list. */
void wf_notify_all(struct wf *wf, struct txn *t, char *const *to, const char *kind,
		   json_object *doc, char **app_ids, const char *dedupe_base,
		   json_object *vars, time_t now, json_object *hist);
/* The officers who must act for an actor (a NULL-terminated borrowed list). */
char *const *wf_officers(struct wf *wf, enum wf_actor a);

/* Apply verb to an application document (the reference is taken): the
 * transition, its history, notices and clock. 0 applied, 1 refused. */
int wf_apply(struct wf *wf, struct txn *t, json_object *doc, enum wf_verb verb,
	     const char *detail, const struct wf_origin *o, time_t at, time_t now,
	     json_object *report);

/* Entering a state: queue its notices and start its reminder clock. */
void wf_enter(struct wf *wf, struct txn *t, json_object *doc, enum app_state to,
	      time_t at, time_t now, json_object *hist);
/* Start the reminder clock of the document's current state at `since`. */
void wf_clock_start(struct wf *wf, json_object *doc, time_t since);
/* Recompute clock.next from the clock's parts. */
void wf_clock_next(struct wf *wf, json_object *doc);

/* Store an app document and update the index. Takes the reference. */
void wf_put(struct wf *wf, struct txn *t, json_object *doc);
/* Append to a report (may be NULL). */
void wf_report(json_object *report, const char *app, bool ok, const char *from,
	       const char *to, const char *fmt, ...) PRINTF_LIKE(6, 7);

/* Record a refusal: to the report, the log, and (mail origin) the sender,
 * at most once per sender, application and day. */
void wf_refuse(struct wf *wf, struct txn *t, const struct wf_origin *o, const char *app_id,
	       const char *state, const char *reason, time_t now, json_object *report);

#endif
