/*
 * channel_p.h: helpers shared by the channel implementations (private to
 * channel*.c; not part of the channel contract).
 */
#ifndef EIMZA_CHANNEL_P_H
#define EIMZA_CHANNEL_P_H

#include "channel.h"
#include "phone.h"

#include <signal.h>

/* Fill d (cleared first): outcome, retry_after and a formatted detail. */
void delivery_set(struct delivery *d, enum dlv_outcome o, int retry_after, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

/*
 * A write to a socket the peer has closed raises SIGPIPE, which kills the
 * process unless it is ignored. libesmtp writes with write(2), and libcurl
 * runs with CURLOPT_NOSIGNAL (required with threads). So a send() blocks
 * SIGPIPE in its own thread for its duration and discards any that became
 * pending before restoring the mask, whatever the process does with the
 * signal.
 */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};
void sigpipe_block(struct sigpipe_guard *g);
void sigpipe_restore(struct sigpipe_guard *g);

/* Copy of a server's or provider's text fit for a detail: control
 * characters turned into spaces, cut at max bytes (on a UTF-8 boundary),
 * and every occurrence of `secret` (if not NULL) replaced by "***". */
char *detail_text(const char *s, size_t len, size_t max, const char *secret);

/* The SMS text as it will go out under [sms] encoding, max_segments and
 * truncate (sms_fit), or NULL with d set to PERMFAIL when it does not fit. */
char *channel_sms_text(const struct config *c, const struct notice *n, struct sms_info *info,
		       struct delivery *d);

#endif
