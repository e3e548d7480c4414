/*
 * outbox.h: the durable queue between the workflow and the channels.
 *
 * Guarantee: a notice is written to the store (as part of the caller's
 * transaction) before any attempt, and its outcome after. Delivery is
 * at-least-once: after a crash, every notice not recorded as done is
 * attempted again, so the only notices that can go twice are those that
 * were in flight (handed to a server, outcome not yet committed).
 *
 * Threads: the outbox runs one worker thread per channel slot (smtp:
 * [smtp] sessions, sms: 1 driving [sms] concurrency transfers in parallel,
 * file: 1). Workers take batches of due notices, call channel send(), and
 * post the outcomes back; the owner thread (the daemon's loop) collects
 * them with outbox_collect(), which records them in one transaction (group
 * commit) and schedules retries. All store access happens on the owner
 * thread.
 *
 * Retry policy: TEMPFAIL -> next attempt after retry_min * 2^(attempts-1)
 * capped at retry_max, with +-20% jitter, or the channel's retry_after if
 * later. DOWN -> the channel pauses (same backoff on the channel) and the
 * notice keeps its place. PERMFAIL, or an age beyond [outbox] max_age ->
 * NS_DEAD and the on_dead hook (the workflow alerts the officers once).
 * Before an attempt, a notice with valid_state whose application has moved
 * to another state is dropped (NS_DROPPED).
 *
 * Concurrency: [outbox] global_concurrency caps the transfers under way
 * across channels: an SMTP worker counts 1, the SMS worker counts [sms]
 * concurrency, a file worker 1; a batch starts only if it fits (or if
 * nothing else is sending).
 *
 * In the store: "notices/<id>" (every notice, its history), "outq/<id>"
 * (one small entry per unfinished notice: medium and next attempt, so a
 * start reads only those), "outdead/<id>" (one per dead letter until it
 * is re-queued). Memory holds 24 bytes per pending notice; a full notice
 * only while in flight, and the notices of the store's last commit (up to
 * 64) until they are handed to a worker, so that the first attempt needs
 * no read back from the store.
 *
 * Channels: the outbox opens its own instance of a channel for each
 * worker slot (ops->open() on a struct channel with the given channel's
 * ops, conf and medium; ops->close() at the end). The channels passed to
 * outbox_open() serve as templates and are not used to send.
 *
 * Times: outbox_queue() keeps a notice's created, next_attempt and
 * expires if the caller set them (non-zero), else uses time(NULL), created
 * and created + max_age ("0" = never expires). Periods are counted in
 * calendar time (1wd = 1 day).
 *
 * Ownership: outbox_queue() takes ownership of the notice. Transactions
 * holding queued notices must end before outbox_close().
 */
#ifndef EIMZA_OUTBOX_H
#define EIMZA_OUTBOX_H

#include "channel.h"
#include "notice.h"
#include "store.h"

struct outbox;

struct outbox_hooks {
	void *ctx;
	/* The current state name of an application, or NULL if unknown. */
	const char *(*app_state)(void *ctx, const char *app_id);
	/* A notice was dead-lettered (called on the owner thread, inside the
	 * transaction that records it, so that follow-up notices are queued
	 * atomically with it). */
	void (*on_dead)(void *ctx, struct txn *t, const struct notice *n);
	/* A notice was sent (for the application's history). */
	void (*on_sent)(void *ctx, struct txn *t, const struct notice *n);
};

/* Loads unfinished notices from the store. channels[MEDIUM_MAIL] and
 * channels[MEDIUM_SMS] may be NULL (medium switched off: notices for it
 * are refused at queue time). channels itself NULL opens the outbox to
 * queue only (eimzactl while the daemon is stopped): no workers, nothing
 * sent, and a medium counts as on when the configuration gives it a
 * channel, since the daemon will deliver it. The outbox does not own the
 * channels. */
int outbox_open(struct store *st, const struct config *c, struct channel *channels[2],
		const struct outbox_hooks *hooks, struct outbox **out, char **err);
/* Stop workers after their current batch (bounded by timeout_ms), record
 * the outcomes of the batches that finished (one last collect: hooks are
 * called), then free. A worker still sending at the deadline is left to
 * finish on its own and free itself; its notices stay queued in the store
 * and are attempted again at the next start (the at-least-once window). */
void outbox_close(struct outbox *ob, int timeout_ms);

enum queue_result { QUEUED, QUEUE_DUPLICATE, QUEUE_REFUSED };
/*
 * Add a notice to transaction t: checks the recipient (mail: inside the
 * institution's domains; sms: an E.164 number), fills id (from dedupe),
 * created, expires, state. A notice whose dedupe key was ever queued
 * before (committed or earlier in t) is QUEUE_DUPLICATE and freed; a
 * refused one is logged with the reason and freed. The notice becomes
 * eligible for sending only after t commits and outbox_kick() is called.
 */
enum queue_result outbox_queue(struct outbox *ob, struct txn *t, struct notice *n);

/* Hand due notices to idle workers; call after each commit and on timer. */
void outbox_kick(struct outbox *ob, time_t now);
/* Readable when workers have posted outcomes (an eventfd). */
int outbox_fd(const struct outbox *ob);
/* Record posted outcomes in one transaction and schedule retries, then
 * kick; returns the number recorded, or -1 with *err if the commit failed
 * (the outcomes are kept, recorded on a later call, and outbox_next_due()
 * and outbox_kick() bring the owner back for them). */
int outbox_collect(struct outbox *ob, time_t now, char **err);
/* Earliest time something becomes due, or 0 if nothing is waiting. A
 * channel whose workers are all busy is left out: collecting their
 * outcomes kicks again. */
time_t outbox_next_due(const struct outbox *ob);
/* Notices handed to workers and not yet collected. */
size_t outbox_in_flight(const struct outbox *ob);

/* Re-queue a dead-lettered or dropped notice (eimzactl resend). */
int outbox_requeue(struct outbox *ob, struct txn *t, const char *notice_id, time_t now, char **err);

struct outbox_stats {
	size_t queued, in_flight, dead;         /* now (dead: not re-queued) */
	/* since open: */
	uint64_t sent, tempfail, permfail, down, dropped;
};
void outbox_stats(const struct outbox *ob, struct outbox_stats *out);

#endif
