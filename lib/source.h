/*
 * source.h: where mail comes from. One small vtable, two implementations
 * in sibling files:
 *   source_imap.c     an IMAP mailbox (libetpan): TLS / STARTTLS / plain on
 *                     loopback, LOGIN, SELECT, UID FETCH in ranges, IDLE
 *   source_maildir.c  a local Maildir (new/ -> cur/), for the local demo
 *
 * Position. The caller (the daemon) owns the position: for IMAP, the
 * UIDVALIDITY and the highest UID handled, persisted in the store in the
 * same transaction as the events those messages caused. fetch() returns
 * messages after a UID; if the server's UIDVALIDITY differs from the one
 * the caller remembers, the caller re-scans from 0 and relies on the
 * store's Message-ID set to skip what it has seen. A Maildir has no UIDs
 * (uidvalidity 0): uid is a per-connection sequence number given to a file
 * when first seen; fetch() returns what is in new/ in name (= delivery)
 * order, skipping only files this connection already returned with a uid
 * at or below `after` (so a persisted `after` never hides new mail), and
 * mark() moves the file to cur/.
 *
 * Waiting. wait_start() begins waiting for new mail (IMAP IDLE when the
 * server offers it and [source] idle = yes; inotify on new/ for Maildir)
 * and returns an fd to poll for readability, or -1 when the caller should
 * simply poll every [source] poll_interval. wait_done() ends the wait
 * (IDLE DONE) and says whether new mail may be there. IDLE is re-issued by
 * the caller at least every 25 minutes (wait_done + wait_start). Call
 * fetch() until it returns nothing before waiting: new mail the server
 * announced meanwhile (in a STORE's answer, say) makes wait_start() return
 * an fd that is readable at once, since IDLE would not announce it again.
 *
 * Errors. Every function returns 0 or -1 with *err; -1 from any IMAP call
 * means the connection is unusable: the caller calls disconnect() and
 * reconnects with capped exponential backoff. A TLS certificate that does
 * not verify (chain against the system store or [source] ca_file, and the
 * host name) is a refused connection with the reason in *err, never a
 * downgrade.
 *
 * Too large. A message whose size exceeds [source] max_message_size is
 * still returned, in its place in UID order, but with data NULL, len 0 and
 * `oversize` set (`size` says how big it is); its body is never kept in
 * memory (nor fetched, on the listing path; the one-round-trip IDLE path
 * reads it past and drops it). The caller records it as unreadable and marks it like any other, so it
 * does not come back. (A message the server cannot deliver at all, e.g.
 * expunged between the listing and the body fetch, is simply not returned.)
 *
 * Batches. fetch() costs at most two round trips for a batch (a listing of
 * UIDs and sizes, then one UID FETCH of the bodies as a UID set); the
 * listing is kept and reused by later calls on the same connection until
 * it is used up, so a backlog of N messages costs one listing and N/max
 * body fetches. Mail announced during IDLE is fetched in one round trip.
 * mark_many() marks a whole set in one command (IMAP: one UID STORE, or
 * one UID MOVE, or COPY + STORE \Deleted + UID EXPUNGE without MOVE; the
 * other folder is created if missing); mark() is mark_many() for one.
 * Folder names are UTF-8 in the config and sent as modified UTF-7.
 *
 * SIGPIPE: libetpan writes to its sockets (and GnuTLS to its) without
 * MSG_NOSIGNAL, so a program using the IMAP source must ignore SIGPIPE
 * (signal(SIGPIPE, SIG_IGN)); a dead server is then an EPIPE and -1 here.
 *
 * Ownership: fetched messages (struct raw_msg array and their data) are
 * owned by the caller and freed with raw_msgs_free(). The pointers passed
 * to mark() / mark_many() are only read during the call.
 */
#ifndef EIMZA_SOURCE_H
#define EIMZA_SOURCE_H

#include "config.h"

struct raw_msg {
	uint32_t uid;
	char *data;
	size_t len;
	time_t arrival;          /* INTERNALDATE / file mtime; 0 if unknown */
	char *key;               /* maildir: file name; imap: NULL */
	size_t size;             /* RFC822.SIZE / file size, in bytes */
	bool oversize;           /* size > max_message_size: data NULL, len 0 */
};
void raw_msgs_free(struct raw_msg *v, size_t n);

enum src_mark {
	MARK_HANDLED,            /* imap: \Seen; maildir: new/ -> cur/ with S */
	MARK_OTHER,              /* imap: move to other_folder if set, else
				  * leave untouched; maildir: to cur/ unflagged */
};

struct source;

struct source_ops {
	const char *name;
	int (*connect)(struct source *s, char **err);
	/* Up to max messages with UID > after, oldest first. */
	int (*fetch)(struct source *s, uint32_t after, size_t max,
		     struct raw_msg **out, size_t *n, char **err);
	int (*mark)(struct source *s, const struct raw_msg *m, enum src_mark how, char **err);
	/* The same for n messages at once (one command on IMAP). */
	int (*mark_many)(struct source *s, const struct raw_msg *const *v, size_t n,
			 enum src_mark how, char **err);
	int (*wait_start)(struct source *s, int *fd, char **err);
	int (*wait_done)(struct source *s, bool *maybe_new, char **err);
	void (*disconnect)(struct source *s);
	void (*destroy)(struct source *s);
};

struct source {
	const struct source_ops *ops;
	const struct config *conf;
	uint32_t uidvalidity;    /* after connect(); 0 for maildir */
	uint32_t uidnext;        /* after connect(), if the server said */
	void *priv;
};

extern const struct source_ops source_imap_ops;
extern const struct source_ops source_maildir_ops;

/* Make the configured source (not connected). */
struct source *source_create(const struct config *c);

#endif
