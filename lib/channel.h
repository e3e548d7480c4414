/*
 * channel.h: the ways a notice leaves eimzad. One small vtable, three
 * implementations in sibling files:
 *   channel_smtp.c  mail through an SMTP server (libesmtp)
 *   channel_sms.c   SMS through a provider's HTTP API (libcurl multi)
 *   channel_file.c  .eml files and a JSON-lines file, for the local demo
 *
 * Threads: each channel instance is driven by one outbox worker thread at
 * a time; send() blocks until every notice of the batch has an outcome.
 * A channel must not touch the store or any other shared state. The SMTP
 * and file channels also allow several threads in send() at once on one
 * instance (one SMTP session each: [smtp] sessions); the SMS channel does
 * not (its one worker drives [sms] concurrency transfers itself).
 * send() blocks SIGPIPE in its own thread while it runs and discards one
 * its writes raised, so the process need not ignore SIGPIPE for it.
 *
 * Outcomes (graded, as a mail queue grades them):
 *   DLV_SENT      accepted; provider_id may be filled
 *   DLV_TEMPFAIL  try this notice again later (retry_after > 0: not before)
 *   DLV_PERMFAIL  this notice will never go: dead-letter it
 *   DLV_DOWN      the channel itself failed (connect, TLS, DNS, auth):
 *                 this notice was not attempted meaningfully; pause the
 *                 channel with backoff
 *
 * Ownership: the batch's notices are borrowed; strings in struct delivery
 * are allocated by the channel and freed by the caller (delivery_clear).
 */
#ifndef EIMZA_CHANNEL_H
#define EIMZA_CHANNEL_H

#include "config.h"
#include "notice.h"

enum dlv_outcome { DLV_SENT, DLV_TEMPFAIL, DLV_PERMFAIL, DLV_DOWN };
const char *dlv_outcome_name(enum dlv_outcome o);

struct delivery {
	enum dlv_outcome outcome;
	int retry_after;        /* seconds; 0 = use the outbox's backoff */
	char *detail;           /* server reply or error, secrets redacted */
	char *provider_id;
};
void delivery_clear(struct delivery *d);

struct channel;

struct channel_ops {
	const char *name;
	/* Read secrets, prepare handles. No network traffic here. On failure
	 * nothing is left allocated (ch->priv stays NULL). */
	int (*open)(struct channel *ch, char **err);
	/* Fills out[i] for every batch[i]. out[] must hold no strings on
	 * entry (zeroed, or delivery_clear()ed after the previous use). */
	void (*send)(struct channel *ch, struct notice *const *batch, size_t n,
		     struct delivery *out);
	void (*close)(struct channel *ch);
};

struct channel {
	const struct channel_ops *ops;
	const struct config *conf;
	enum medium medium;
	void *priv;
};

extern const struct channel_ops channel_smtp_ops;
extern const struct channel_ops channel_sms_ops;
extern const struct channel_ops channel_file_ops;

/* Make a channel of the configured kind for a medium (mail: [smtp] channel,
 * sms: [sms] channel), or NULL for "none" (returning 0). open() is called;
 * -1 with *err if it fails or the kind cannot carry the medium. */
int channel_create(const struct config *c, enum medium m, struct channel **out, char **err);
void channel_destroy(struct channel *ch);

#endif
