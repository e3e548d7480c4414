/*
 * store.h: the state store: JSON documents in collections under one state
 * directory, made durable by a write-ahead journal with group commit.
 *
 * Layout of the state directory (all files mode 0600, folders 0700):
 *   lock                 fcntl lock: held by the daemon for its lifetime
 *   journal              committed transactions not yet checkpointed
 *                        (JSON lines, each with a CRC), written in order;
 *                        while the daemon runs, followed by zeroed space
 *                        that the next commits overwrite in place
 *   <coll>/<id>.json     the current document, one file each, readable
 *                        with jq; replaced atomically (temp + rename)
 *   seen                 Message-IDs already handled, one hash per line
 *
 * Commit: txn_commit() appends the transaction's records and a commit
 * marker to the journal and makes them durable with one fdatasync(); that
 * is the commit's only disk work. The committed documents are then served
 * from memory (an overlay of the files: store_get(), txn_get(),
 * store_foreach() and store_count() see them at once) and the txn_on_done
 * hooks run, before txn_commit() returns.
 *
 * Write-behind: the documents are written as files later, each replaced
 * atomically (temp + rename, no fsync of its own: the journal holds the
 * change until the next checkpoint's syncfs), only the newest version of
 * each, by store_flush(): when the owner calls store_tick() (the daemon,
 * once per loop iteration) and no commit came for 0.5 s, or a pending
 * document has waited 5 s under a steady flow of commits; at each
 * checkpoint; when the overlay passes a size; and at close. A document
 * created and deleted between two flushes (the outbox's queue entries)
 * never reaches the disk. So jq on the state directory sees the state of
 * a running daemon about half a second after the last change (5 s at most
 * while changes keep coming; eimzactl, through the daemon, at once); the
 * journal and a STORE_READER see every committed transaction at once.
 *
 * Checkpoint (store_checkpoint(), automatically when the journal passes a
 * size, and at close): flush, syncfs() once, then truncate the journal.
 * Opening the store replays complete transactions of the journal
 * (idempotent; a writer then checkpoints, so the files hold them), ignores
 * a torn tail (logged with its offset), and reports
 * a corrupt record. Damage policy (details in store_p.h): a damaged record
 * followed by intact ones drops only the transaction it belongs to; later
 * complete transactions are applied (each record holds a whole document),
 * the offset is logged and a writer keeps the journal as
 * journal.corrupt.<time>; a record of an unknown format version makes
 * store_open() fail, leaving the journal untouched.
 * So: a commit costs one fdatasync and no file operation whatever the
 * number of documents, and a crash at any point (before, during or after
 * a flush) loses no committed transaction: the journal holds every change
 * whose file is not yet known to be durable.
 *
 * A document whose file does not parse is moved to <coll>/corrupt/ with a
 * log line and is then absent; the store keeps working.
 *
 * Every document carries "version": the store writes the journal record
 * format version itself; the documents' own "version" is their owner's.
 *
 * Locking: STORE_DAEMON and STORE_WRITER take the lock without waiting and
 * fail with STORE_EBUSY (reporting the holder's pid) if another process
 * holds it (a second open in the same process is refused too). The holder
 * writes its pid into the lock file. STORE_READER takes no lock and never
 * writes (it replays the journal in memory so it sees committed state: at
 * least what was committed when it opened).
 *
 * Threads: a store is used from one thread at a time. (Inside
 * store_flush(), a few short-lived threads write the document files in
 * parallel; they are joined before it returns.)
 *
 * Memory: the overlay holds the text (plain JSON, as journaled) of each
 * document changed since the last flush: at most STORE_OVERLAY_BYTES
 * (16 MiB; then a flush empties it). The journal grows to at most
 * STORE_CHECKPOINT_BYTES (32 MiB) between checkpoints: what a start after
 * a crash replays.
 *
 * Ownership: store_get() returns a new reference (json_object_put() it).
 * txn_put() takes over the caller's reference to doc.
 */
#ifndef EIMZA_STORE_H
#define EIMZA_STORE_H

#include "util.h"

#include <json-c/json.h>

enum store_mode { STORE_DAEMON, STORE_WRITER, STORE_READER };
#define STORE_EBUSY (-2)

struct store;
struct txn;

/* Opens (creating the directory if needed). Returns 0, -1 with *err, or
 * STORE_EBUSY with *err naming the holder. */
int store_open(const char *dir, enum store_mode mode, struct store **out, char **err);
void store_close(struct store *s);      /* checkpoints if writable */
const char *store_dir(const struct store *s);

/* Document ids: [A-Za-z0-9._@+-]{1,128}, not starting with '.'.
 * Collection names: [a-z]+. */
bool store_id_valid(const char *id);

/* The committed document, or NULL if absent. */
json_object *store_get(struct store *s, const char *coll, const char *id);
/* Calls cb for each document of the collection (order unspecified); a
 * non-zero return from cb stops and is returned. doc is borrowed. The
 * folder is streamed (nothing is kept in memory); cb may commit, and a
 * document added meanwhile may or may not be seen. */
int store_foreach(struct store *s, const char *coll,
		  int (*cb)(void *ctx, const char *id, json_object *doc), void *ctx);
/* Number of documents in a collection (reads the folder: O(n)). */
size_t store_count(struct store *s, const char *coll);

/* Has a Message-ID been recorded as handled? Angle brackets and
 * surrounding space are ignored; 64 bits of its SHA-256 are kept. */
bool store_seen(struct store *s, const char *message_id);

struct txn *store_begin(struct store *s);
void txn_put(struct txn *t, const char *coll, const char *id, json_object *doc);
void txn_del(struct txn *t, const char *coll, const char *id);
void txn_mark_seen(struct txn *t, const char *message_id);
/* Reads see the transaction's own writes: */
json_object *txn_get(struct txn *t, const char *coll, const char *id);
/* Whether the document exists, seen the same way, without parsing it. */
bool txn_exists(struct txn *t, const char *coll, const char *id);
bool txn_empty(const struct txn *t);
/* Call fn(ctx, committed) once when the transaction ends: committed is
 * true after txn_commit() made it durable and visible, false after
 * txn_abort() or a failed commit. For work that may start only once a
 * change is durable (the outbox hands queued notices to the channels). */
void txn_on_done(struct txn *t, void (*fn)(void *ctx, bool committed), void *ctx);
/* Durable on return 0 (one fdatasync) and visible to reads; the hooks
 * have run; the txn is freed either way. The documents' files are written
 * later (store_flush()). */
int txn_commit(struct txn *t, char **err);
void txn_abort(struct txn *t);

/* Write every pending document as its file now (temp + rename, no fsync).
 * A document that cannot be written stays pending (and in the journal)
 * and makes it return -1 with *err; the others are written. Nothing to do
 * for a reader. */
int store_flush(struct store *s, char **err);
/* When store_tick() will flush: a CLOCK_MONOTONIC time in ms (mono_ms()),
 * or 0 if nothing is pending. For an event loop's poll timeout. */
int64_t store_flush_due(const struct store *s);
/* Cheap; call from the owner's loop: once store_flush_due() has passed,
 * writes pending documents, a bounded number a call (so that the loop
 * stays responsive after a burst; store_flush_due() stays passed while
 * more is pending). A failure is logged and retried a few seconds later
 * (the changes stay in the journal meanwhile). */
void store_tick(struct store *s);
/* Flush, syncfs, truncate the journal. */
int store_checkpoint(struct store *s, char **err);

/* Statistics for `eimzactl status` and benchmarks. */
struct store_stats {
	uint64_t commits;
	uint64_t records;
	uint64_t fsyncs;
	size_t journal_bytes;
	uint64_t flushes;       /* store_flush() runs that wrote something */
	uint64_t files_written; /* document files replaced or removed */
	size_t pending;         /* documents not written as files yet */
};
void store_stats(const struct store *s, struct store_stats *out);

#endif
