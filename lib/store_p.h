/*
 * store_p.h: the state store's insides, shared by store.c (documents,
 * transactions, checkpoints) and store_journal.c (the journal's record
 * format and its replay). Not for other modules; tests and the crash tool
 * use the hooks at the end.
 *
 * Journal record format (one JSON object per line, written plain):
 *   {"v":1,"t":7,"op":"put","c":"apps","id":"X","doc":{...},"crc":"1a2b3c4d"}
 *   {"v":1,"t":7,"op":"del","c":"apps","id":"X","crc":"..."}
 *   {"v":1,"t":7,"op":"seen","h":"0123456789abcdef","crc":"..."}
 *   {"v":1,"t":7,"op":"commit","n":3,"crc":"..."}
 * "t" numbers the transaction, "n" counts its records before the commit
 * marker, and "crc" is the CRC-32 (IEEE) of the line's bytes up to, not
 * including, the ',"crc":' that ends it. A transaction is applied on
 * replay only if its records are contiguous, all intact, and followed by
 * its commit marker with the right count.
 *
 * The journal ends at its first NUL byte or at the end of the file: the
 * daemon zero-fills the space after the end ahead of time and writes each
 * commit in place (pwrite at the end, then fdatasync). Invariant: after
 * the end there are only zeros, or the torn bytes of the one write whose
 * sync did not return (never acknowledged). A writer's open therefore
 * empties (truncates) a journal whose file is longer than its content
 * once it has replayed it, before a new transaction could be written
 * in front of such bytes. A program that knows no NUL end reads the
 * zeros as a torn tail and truncates: older versions stay compatible.
 *
 * Damage policy on replay:
 * - a torn tail (an incomplete last line, bad records or a transaction
 *   without its commit marker at the end) is what a crash during a commit
 *   leaves: it is ignored with a warning naming its offset;
 * - a damaged record followed by intact ones (corruption in the middle:
 *   media error, editing) drops the transaction it belongs to, keeps the
 *   later ones (each record replaces a whole document, so later documents
 *   are right), logs the offset, and a writer saves the journal as
 *   journal.corrupt.<time> before checkpointing;
 * - an intact record of an unknown version stops the open: a newer
 *   program wrote it, and dropping it would lose committed data.
 */
#ifndef EIMZA_STORE_P_H
#define EIMZA_STORE_P_H

#include "hashmap.h"
#include "store.h"

#define STORE_FORMAT_VERSION 1
/* Checkpoint automatically once the journal is larger than this. It bounds
 * the replay after a crash (about a second per 20 MiB here), and the
 * number of times a long burst of work (a first start on a full mailbox)
 * stops to write its files and sync the filesystem: at 4 MiB, the
 * 10,000-message backlog checkpointed 2-3 times, wrote every queue entry
 * it was about to delete, and spent ~40% of its time doing so. */
#define STORE_CHECKPOINT_BYTES (32u << 20)
/* Write the pending documents (without a checkpoint) once the overlay
 * holds more text than this: the bound on its memory. */
#define STORE_OVERLAY_BYTES (16u << 20)
/* Write-behind: pending documents are written as files once no commit came
 * for FLUSH_IDLE_MS, or once the oldest has waited FLUSH_MAX_MS (a steady
 * trickle of commits), whichever is first; after a failed flush, not
 * again before FLUSH_RETRY_MS. */
#define STORE_FLUSH_IDLE_MS 500
#define STORE_FLUSH_MAX_MS 5000
#define STORE_FLUSH_RETRY_MS 5000
/* The daemon keeps this much zeroed space after the journal's end, and
 * tops it up (at idle time) when less than PREZERO_LOW is left: a commit
 * then overwrites allocated, zeroed blocks in place, so its fdatasync()
 * writes the data without a filesystem journal commit for a new file
 * size (measured here: median 0.53 -> 0.39 ms, p99 1.7-4.8 -> 1.0-2.5 ms
 * for a commit). */
#define STORE_PREZERO_BYTES (4u << 20)
#define STORE_PREZERO_LOW (1u << 20)
/* store_tick() writes at most this many documents a call (~20-40 ms). */
#define STORE_TICK_DOCS 256
/* Threads that write a flush's document files (the caller's included). */
#define STORE_APPLY_THREADS 4
/* Documents larger than this are treated as damaged. */
#define STORE_MAX_DOC (64u << 20)

/* An open-addressed set of 64-bit hashes (0 marks an empty slot). */
struct hashset {
	uint64_t *slots;
	size_t cap;     /* a power of two, or 0 */
	size_t n;
};
bool hashset_has(const struct hashset *h, uint64_t v);
bool hashset_add(struct hashset *h, uint64_t v);   /* true if it was new */
void hashset_free(struct hashset *h);

typedef void (*store_step_fn)(void *ctx, const char *step);

/* A committed document not written as a file yet (writer), or what the
 * journal says (reader): its plain JSON text as in the journal record (a
 * copy of the bytes just synced: no second serialisation on the commit's
 * path), or NULL for a delete. Text rather than a json_object: immutable
 * (a caller cannot change it after the commit), compact, and safe to hand
 * to the flush's threads, which pretty-print it for the file. */
struct pending_doc {
	char *text;
	size_t len;
};

struct store {
	char *dir;
	enum store_mode mode;
	int dirfd;
	int lock_fd;
	int journal_fd;                 /* -1 for a reader without a journal */
	size_t journal_bytes;           /* its content: where the next commit goes */
	size_t journal_zeroed;          /* the file is zero-filled up to here */
	uint64_t next_txn;
	/* "coll/id" -> struct pending_doc: for a reader, what the journal holds;
	 * for a writer, committed changes not written as files yet (the
	 * next flush writes them). Reads look here first. */
	struct hashmap *overlay;
	size_t overlay_bytes;           /* the text it holds */
	int64_t last_commit_ms;         /* mono ms of the last commit */
	int64_t pending_since_ms;       /* when the overlay last became non-empty */
	int64_t flush_retry_ms;         /* after a failed flush: not before */
	int flush_idle_ms, flush_max_ms;
	json_object *touched;           /* "coll/id" written since the checkpoint */
	json_object *colls;             /* collection folders known to exist */
	struct hashset seen;
	uint64_t *seen_new;             /* seen hashes not yet in the seen file */
	size_t n_seen_new, cap_seen_new;
	struct store_stats stats;
	bool broken;                    /* a journal sync failed: refuse commits */
	bool closing;                   /* store_close(): no zero-filling ahead */
	bool chmod_files;               /* the umask would narrow FILE_MODE */
	size_t checkpoint_bytes;
	store_step_fn step;
	void *step_ctx;
};

/* The hash kept for a Message-ID (<> and surrounding space ignored). */
uint64_t store_seen_hash(const char *message_id);

/* CRC-32 (IEEE 802.3), as zlib's crc32(0, p, n). */
uint32_t store_crc32(const void *p, size_t n);

/* Encoding of journal records into b (store_journal.c). */
void journal_add_put(struct buf *b, uint64_t t, const char *coll, const char *id,
		     json_object *doc);
/* The same, telling where the document's text (plain JSON) lies in b. */
void journal_add_put_span(struct buf *b, uint64_t t, const char *coll, const char *id,
			  json_object *doc, size_t *doc_off, size_t *doc_len);
void journal_add_del(struct buf *b, uint64_t t, const char *coll, const char *id);
void journal_add_seen(struct buf *b, uint64_t t, uint64_t hash);
void journal_add_commit(struct buf *b, uint64_t t, size_t nrecords);

/* What a replay found. */
struct replay_result {
	size_t txns;            /* committed transactions applied */
	size_t records;
	uint64_t last_txn;
	bool corrupt;           /* damage before intact records */
	bool torn;              /* a damaged or incomplete tail */
};
/* Replay the journal bytes, calling store_apply_record() for each record
 * of each complete transaction, in order. -1 with *err if a record has
 * an unknown version or applying failed. */
int journal_replay(struct store *s, const char *data, size_t len,
		   struct replay_result *res, char **err);

/* Apply one intact record of a committed transaction (store.c). */
int store_apply_record(struct store *s, json_object *rec, char **err);

/* Parse exactly one JSON object from p[0..len) (trailing space allowed). */
json_object *store_parse_object(const char *p, size_t len);

/* Test hooks: step(ctx, name) is called at each persistence step
 * ("journal_written", "journal_synced", "committed" (the overlay updated,
 * the hooks run), "applied" (one document file written by a flush),
 * "flushed", "checkpoint_synced", "checkpoint_truncated",
 * "journal_zeroed"), so a test can stop the process there. */
void store_set_step_hook(struct store *s, store_step_fn fn, void *ctx);
void store_set_checkpoint_bytes(struct store *s, size_t n);
/* The write-behind delays (STORE_FLUSH_IDLE_MS, STORE_FLUSH_MAX_MS). */
void store_set_flush_delays(struct store *s, int idle_ms, int max_ms);

#endif
