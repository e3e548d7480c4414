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
 *
 * Pipelined ingest: ez_ingest_start() hands a batch to classification
 * threads and returns at once, so that the caller can fetch the next
 * batch meanwhile; ez_ingest_finish() then applies it exactly as
 * ez_ingest() does (which is start + finish). Classification (parse,
 * decoding, rules, trust) is a pure function of the bytes, the
 * configuration and the rules; the events are applied to the workflow and
 * the store on the caller's thread only, in the batch's order (the caller
 * finishes batches in the order it started them). A batch of fewer
 * than a few messages (mail announced in IDLE) is classified by
 * ez_ingest_finish() itself: no hand-off on the latency path.
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

struct ingest_pool;

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
	/* Classification threads: started by the first batch that needs
	 * them, stopped by ez_reload() and ez_close(). ingest_workers: 0 for
	 * one per CPU (capped), n > 0 for n, < 0 for none (every batch
	 * classified on the caller's thread). */
	struct ingest_pool *pool;
	int ingest_workers;
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

/* After a transaction that changed the application index was aborted or
 * failed to commit: the index holds its changes; rebuild it from what is
 * really stored (fatal if the store cannot be read). who names the caller
 * in that message. */
void ez_index_rebuild(struct eimzad *ez, const char *who);

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

/* Pipelined ingest (see above). ez_ingest_start() never fails; msgs must
 * stay valid and unchanged until the batch is finished or cancelled. At
 * most a few batches should be started and not finished at a time (each
 * holds its messages): the daemon keeps two. ez_ingest_finish() takes the
 * batch (freed whatever the outcome) and returns what ez_ingest() would;
 * ez_ingest_cancel() drops a batch without applying anything. Between
 * start and finish the caller may fetch, mark, and commit other batches,
 * but must not ez_reload(), ez_ingest_stop() or ez_close() (fatal: the
 * threads read the configuration and the rules). */
struct ez_batch;
struct ez_batch *ez_ingest_start(struct eimzad *ez, const struct raw_msg *msgs, size_t n);
int ez_ingest_finish(struct eimzad *ez, struct ez_batch *b, uint32_t uidvalidity,
		     uint32_t last_uid, struct ez_result *results, char **err);
void ez_ingest_cancel(struct eimzad *ez, struct ez_batch *b);
/* Stop the classification threads (they start again when needed). */
void ez_ingest_stop(struct eimzad *ez);

/* Due timers (reminder passes, expiry): one transaction. Returns the
 * number of notices queued or -1. */
int ez_timers(struct eimzad *ez, char **err);

/* The mailbox position recorded in the store. */
void ez_position(struct eimzad *ez, uint32_t *uidvalidity, uint32_t *last_uid);

#endif
