/*
 * event.h: what one message means: the typed event that classification
 * produces and the workflow consumes. Also used for eimzactl's actions,
 * which enter the workflow as events of the same shape.
 *
 * Ownership: an event owns all of its strings and arrays; event_free()
 * releases them (not the struct itself, which is usually on the stack).
 * event_init() zeroes it.
 */
#ifndef EIMZA_EVENT_H
#define EIMZA_EVENT_H

#include "util.h"

#include <json-c/json.h>

enum msg_kind {
	MK_OTHER,               /* "other" */
	MK_REQUEST,             /* "request": a unit's request letter (step 1) */
	MK_KAMUSM_CREDENTIALS,  /* "kamusm.credentials": access password + link (step 4, older flow) */
	MK_KAMUSM_INFO,         /* "kamusm.info": Online İşlemler information mail (step 4, newer flow) */
	MK_KAMUSM_SHIPPED,      /* "kamusm.shipped": shipment notice (step 9) */
	MK_KAMUSM_EXPIRY,       /* "kamusm.expiry": certificate expiry warning (renewals) */
	MK_COMMAND,             /* "command": an officer's command */
	MK_BOUNCE,              /* "bounce": DSN or non-standard bounce */
	MK_AUTO_REPLY,          /* "auto_reply": RFC 3834 / vacation */
	MK_UNREADABLE,          /* "unreadable": a limit was hit, not MIME, ... */
	MK__COUNT
};
const char *msg_kind_name(enum msg_kind k);
int msg_kind_parse(const char *s, enum msg_kind *out);   /* 0 / -1 */

enum cmd_verb {
	CMD_NONE,
	CMD_APPROVE,      /* ONAY        "approve"    step 2 */
	CMD_REJECT,       /* RED <reason> "reject"    step 2a */
	CMD_SUBMITTED,    /* GONDERILDI  "submitted"  step 3 */
	CMD_DELIVERED,    /* TESLIM      "delivered"  step 6: taahhütname handed in */
	CMD_POSTED,       /* POSTA       "posted"     step 7 */
	CMD_ACTIVATED,    /* AKTIF       "activated"  step 10 */
	CMD_CANCEL,       /* IPTAL       "cancel" */
	CMD__COUNT
};
const char *cmd_verb_name(enum cmd_verb v);     /* the JSON names above */
int cmd_verb_parse(const char *s, enum cmd_verb *out);

/* One applicant as found in a request letter, a CSV import, or a KAMUSM
 * mail (where only email, and maybe name, are known). Any field may be
 * NULL. mobile is E.164 when valid; tc has passed its checksum. */
struct applicant {
	char *name;
	char *email;
	char *mobile;
	char *tc;
	char *title;
	char *unit;
	int row;                /* source row/line for reports, 0 if none */
};
void applicant_free(struct applicant *a);
void applicant_copy(struct applicant *dst, const struct applicant *src);

/* A row of a request letter or CSV that could not be used. */
struct row_error {
	int row;
	char *reason;           /* in words; TC and phone masked */
};

struct event {
	enum msg_kind kind;
	char *rule;             /* name of the rule that matched, or NULL */

	/* Trust: only trusted events may move an application. */
	bool trusted;
	char *trust_reason;     /* why (not) trusted, in words */
	char *forwarded_by;     /* the officer/applicant who forwarded it, or NULL */

	/* The message the rules saw (the original, through forwards). */
	char *from;             /* bare address */
	char **to;              /* bare addresses, NULL-terminated */
	char *subject;
	time_t date;            /* the event's time: the original's Date, bounded
				 * by the server's arrival time */
	char *message_id;       /* of the outer message (what arrived) */
	char *in_reply_to;      /* of the outer message */
	char **references;      /* of the outer message, NULL-terminated */

	/* Extracted fields; NULL / 0 where not found. */
	char *link;             /* https, allow-listed host */
	char *access_code;      /* secret: never logged */
	char *tracking_no;
	time_t expiry;          /* the date found, at 00:00 UTC */
	struct applicant applicant;          /* KAMUSM kinds: the addressee */
	struct applicant *applicants;        /* request: the rows */
	size_t napplicants;
	struct row_error *row_errors;        /* request: refused rows */
	size_t nrow_errors;
	char *unit_name;                     /* request: the requesting unit */
	char *unit_reply_to;                 /* request: where to answer the unit */

	struct {
		enum cmd_verb verb;
		char *reason;              /* RED's reason, verbatim, may span lines */
		char **apps;               /* tags named on the command line */
		char **subject_apps;       /* tags found in the subject */
	} command;

	struct {
		char *recipient;           /* the address that failed */
		bool permanent;            /* 5.x.x vs 4.x.x */
		char *status;              /* "5.1.1" */
		char *notice;              /* our Message-ID that bounced, if found */
		char *diagnostic;
	} bounce;

	char **problems;               /* what was wrong or refused, in words */
};

void event_init(struct event *ev);
void event_free(struct event *ev);
void event_add_problem(struct event *ev, const char *fmt, ...) PRINTF_LIKE(2, 3);

/*
 * The documented `eimzactl explain --json` object:
 *   { "kind": "request" | "kamusm.credentials" | "kamusm.info" |
 *             "kamusm.shipped" | "kamusm.expiry" | "command" | "bounce" |
 *             "auto_reply" | "other" | "unreadable",
 *     "trusted": bool, "trust_reason": string,
 *     "rule": string | null, "forwarded_by": address | null,
 *     "original": { "from": address | null, "to": [address...],
 *                   "date": RFC 3339 UTC | null, "subject": string },
 *     "fields": {        only the members that were found:
 *        "link", "access_code", "tracking_no", "expiry" (YYYY-MM-DD),
 *        "applicant": {name, email, mobile (E.164), tc, title, unit},
 *        "applicants": [ the same ], "unit": {name, reply_to},
 *        "row_errors": [ {row, reason} ],
 *        "command": {verb: approve | reject | submitted | delivered |
 *                    posted | activated | cancel | none, reason | null,
 *                    applications: [tag], subject_applications: [tag]},
 *        "bounce": {recipient, permanent, status, notice} },
 *     "problems": [string] }
 * Applicant members appear only when set. access_code is "******" and a
 * tc is masked like in logs ("10*******78") unless show_secrets. The
 * caller owns the object (json_object_put).
 */
json_object *event_to_json(const struct event *ev, bool show_secrets);

#endif
