/*
 * eimzad.h: the program's context: configuration, rules, templates,
 * calendar, store, application index, channels, outbox, source and the
 * workflow wired together. The daemon owns one; eimzactl builds one when
 * the daemon is not running (or only the read-only part of one).
 *
 * Life cycle:
 *   ez_init -> ez_load (config, rules, templates, calendar; errors as
 *   file:line) -> ez_open (store, index, outbox, channels) -> ... ->
 *   ez_close. ez_reload swaps in a new configuration (SIGHUP) only when
 *   the whole new set loads without error.
 *
 * Ingest: ez_ingest() turns a batch of raw messages into events, applies
 * them in ONE store transaction together with the mailbox position and
 * the seen Message-IDs (group commit), then kicks the outbox. Only after
 * the commit does the caller mark the messages in the mailbox.
 */
#ifndef EIMZA_EIMZAD_H
#define EIMZA_EIMZAD_H

#include "app.h"
#include "calendar.h"
#include "channel.h"
#include "classify.h"
#include "config.h"
#include "outbox.h"
#include "source.h"
#include "store.h"
#include "template.h"
#include "workflow.h"

enum ez_open_mode {
	EZ_DAEMON,      /* store locked for life, channels and workers running */
	EZ_TOOL,        /* store locked for this command, notices queued only */
	EZ_READ,        /* read-only view, no lock */
};

struct ez_stats {
	uint64_t kinds[MK__COUNT];   /* messages seen per kind since start */
	uint64_t batches, messages;
	time_t last_poll;
};

struct eimzad {
	struct config *conf;         /* the current configuration */
	struct config *first_conf;   /* the one channels/outbox run on: kept
				      * until close, whatever reloads do */
	struct rules *rules;
	struct templates *tpl;
	struct calendar *cal;
	struct store *store;
	struct apps *apps;
	struct channel *channels[2];
	struct outbox *outbox;
	struct wf wf;
	enum ez_open_mode mode;
	time_t clock_offset;         /* --now: added to the real clock */
	struct ez_stats stats;
};

void ez_init(struct eimzad *ez);
/* Configuration and everything read from files next to it. */
int ez_load(struct eimzad *ez, const char *conf_path, struct conf_errors *errs);
/* State: returns 0, -1 (*err), or STORE_EBUSY when another process holds
 * the store (EZ_DAEMON / EZ_TOOL). */
int ez_open(struct eimzad *ez, enum ez_open_mode mode, char **err);
void ez_close(struct eimzad *ez);
/* SIGHUP: load a new configuration; on any error keep the old one and
 * return -1 with the errors. Store and outbox stay open. */
int ez_reload(struct eimzad *ez, const char *conf_path, struct conf_errors *errs);

time_t ez_now(const struct eimzad *ez);
/* Set the clock for this run ("YYYY-MM-DD HH:MM", local time). */
int ez_set_now(struct eimzad *ez, const char *when, char **err);

/* The classification context for this configuration. */
void ez_classify_ctx(const struct eimzad *ez, struct classify_ctx *c, time_t arrival);

/* Outcome of one message in a batch, for marking it in the mailbox. */
struct ez_result {
	enum msg_kind kind;
	bool duplicate;              /* Message-ID already handled */
};

/* Apply a batch (see above). uidvalidity/last_uid: the mailbox position to
 * record with it (0/0 for a Maildir). Returns 0 when committed (results
 * filled), -1 with *err when the commit failed (nothing recorded: the
 * caller must not mark the messages and will see them again). */
int ez_ingest(struct eimzad *ez, const struct raw_msg *msgs, size_t n, uint32_t uidvalidity,
	      uint32_t last_uid, struct ez_result *results, char **err);

/* Due timers (reminder passes, expiry): one transaction. Returns the
 * number of notices queued or -1. */
int ez_timers(struct eimzad *ez, char **err);

/* The mailbox position recorded in the store. */
void ez_position(struct eimzad *ez, uint32_t *uidvalidity, uint32_t *last_uid);

#endif
