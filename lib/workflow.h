/*
 * workflow.h: the seed's process as state: transitions, the notices each
 * step sends, reminders, escalations, expiry and the whole-process alarm.
 *
 * Everything here happens inside a store transaction the caller owns:
 * state changes and the notices they cause are written together, so
 * either both are durable or neither is. The workflow never sends; it
 * queues notices in the outbox (outbox_queue) and the caller commits and
 * kicks the outbox.
 *
 * Transitions (DESIGN.md "The workflow"):
 *   request letter      (new)                          -> requested
 *   ONAY  approve       requested                      -> approved
 *   RED   reject        requested, approved            -> rejected (reason)
 *   GONDERILDI submitted approved, expired             -> submitted
 *   KAMUSM credentials  approved, submitted            -> credentials_issued
 *   KAMUSM information  approved, submitted            -> credentials_issued
 *   TESLIM delivered    credentials_issued             -> commitment_received
 *   POSTA posted        commitment_received            -> posted
 *   KAMUSM shipment     credentials_issued, commitment_received, posted -> shipped
 *   AKTIF activated     shipped                        -> activated
 *   IPTAL cancel        any open state                 -> cancelled
 *   (time) expiry       credentials_issued (password)  -> expired
 * Anything else changes nothing and is refused with the current state
 * named: to the officer by mail (at most once per sender, application and
 * day), or as an error to eimzactl.
 *
 * Time: an event happens at its `at` time (the message's Date bounded by
 * arrival, or the CLI's clock); reminder clocks run from there. Reminders
 * and escalations by e-mail go as one digest per recipient per reminder
 * pass ([workflow] reminder_passes on working days); SMS only in SMS hours.
 * Every timer is idempotent: each app document records its clock (count,
 * next due), the "meta/timers" document the last pass, and notices carry
 * dedupe keys, so a restart never repeats a reminder and never skips one
 * that was due.
 *
 * Ownership: struct wf borrows everything it points to.
 */
#ifndef EIMZA_WORKFLOW_H
#define EIMZA_WORKFLOW_H

#include "app.h"
#include "calendar.h"
#include "config.h"
#include "event.h"
#include "outbox.h"
#include "store.h"
#include "template.h"

struct wf {
	const struct config *conf;
	struct store *store;
	struct apps *apps;
	struct outbox *outbox;
	const struct templates *tpl;
	const struct calendar *cal;
	/* Catch-up mode for the current event: record the change, queue no
	 * notices, start clocks at catchup_now instead of the event's time. */
	bool catchup;
	time_t catchup_now;
	/* Cache of meta/timers "last_pass" (0 = not read yet). */
	time_t last_pass;
};

/* Who asked, for history, refusals and audit. */
struct wf_origin {
	const char *actor;     /* an address, "cli:<unix user>", "kamusm", "timer" */
	const char *source;    /* Message-ID, or "cli" */
	const char *reply_to;  /* where refusals go (mail), NULL for the CLI */
};

/*
 * Results, for eimzactl output and tests: report is a JSON array that
 * each call appends objects to: {"app", "ok", "from", "to", "message"}.
 * It may be NULL.
 */

/* A classified mail. Returns 0 (also when it changed nothing: problems go
 * to the report and to officers) or -1 with *err on an internal failure. */
int wf_event(struct wf *wf, struct txn *t, const struct event *ev, time_t now,
	     json_object *report, char **err);

/* An officer's command on one application (eimzactl, or resolved from a
 * mail). Returns 0 when applied, 1 when refused (reason in the report and,
 * for mail, to the sender), -1 on internal failure. */
int wf_command(struct wf *wf, struct txn *t, const char *app_id, enum cmd_verb verb,
	       const char *reason, const struct wf_origin *o, time_t at,
	       json_object *report, char **err);

/* Create applications from rows (import, request letters). `state` and
 * `since` per row come from the import's optional columns (state NULL =
 * the default: requested for letters, submitted for imports). A row whose
 * TC or e-mail matches an open application fills that application's
 * missing fields and reports conflicting ones instead of creating a second. */
struct wf_row {
	struct applicant a;
	const char *unit_name;
	const char *unit_reply_to;
	enum app_state state;
	time_t since;          /* 0 = at */
};
int wf_create(struct wf *wf, struct txn *t, const struct wf_row *rows, size_t n,
	      const struct wf_origin *o, time_t at, json_object *report,
	      char ***created, char **err);

/* Fix an applicant's contact data (eimzactl edit): field is one of name,
 * email, mobile, tc, title, unit; the value is validated as on import. */
int wf_edit(struct wf *wf, struct txn *t, const char *app_id, const char *field,
	    const char *value, const struct wf_origin *o, time_t at, json_object *report,
	    char **err);

/* Timers due at `now`: expiry of access passwords, and when a reminder
 * pass is due, that pass (reminders, escalations, password warnings, the
 * whole-process alarm). Returns the number of notices queued, or -1. */
int wf_timers(struct wf *wf, struct txn *t, time_t now, char **err);
/* When wf_timers next has something to do (never later than an hour). */
time_t wf_next_timer(struct wf *wf, time_t now);

/* Outbox hooks (outbox_hooks): state lookup, dead letters, sent notices. */
void wf_outbox_hooks(struct wf *wf, struct outbox_hooks *h);

/* KVKK purge: remove personal data of applications closed before
 * now - retention (keeping an anonymous record of states and times) and
 * the notices about them. Appends one report entry per application. */
int wf_purge(struct wf *wf, struct txn *t, time_t now, bool dry_run, json_object *report,
	     char **err);

#endif
