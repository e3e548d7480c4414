/*
 * ingest_p.h: private to the ingest (ingest.c, ingest_pool.c): the
 * classification of a batch, on worker threads or on the caller's.
 *
 * Classifying a message (classify_raw(): MIME parse, decoding, rules,
 * trust, and the key it is remembered by) depends only on its bytes, the
 * configuration and the rules, so it may run anywhere; applying the event
 * to the workflow and the store stays on the one thread that owns them.
 *
 * A job is one batch. ipool_submit() queues it for the pool's workers and
 * returns at once; ingest_job_item(j, i) then hands out message i
 * classified, in any order the caller likes (ingest.c asks 0, 1, 2, ...):
 * it waits for a worker that is on it, or, when nobody has taken it yet,
 * classifies the next untaken message of the job on the calling thread
 * rather than sleep. A job made by ingest_job_new() without a pool is
 * classified that way entirely, on demand: what a batch too small to be
 * worth a hand-off (one message announced in IDLE) gets.
 *
 * Threads. The workers run at a lower priority (nice +INGEST_WORKER_NICE)
 * than the thread that starts them: that thread's fetch, commit and
 * delivery are the critical path, and what it leaves of the CPU is what
 * classification needs. When the workers fall behind, the caller
 * classifies for itself (see above): never slower than no pool at all.
 * Each worker classifies with its own copy of the rules
 * (rules_dup(): glibc's regexec() locks a compiled pattern for the whole
 * search); the calling thread uses the rules it passes. The configuration
 * and the rules the pool was made with are read by the workers while any
 * job is outstanding: they must not change or be freed until the pool is
 * (ingest.c frees the pool before a reload swaps them). Everything else a
 * worker touches is the job's: its messages (read only, the caller's until
 * ingest_job_free()) and its items.
 *
 * Ownership: items belong to the job; ingest_job_free() waits for any
 * worker still on one of its messages and frees them all. A pool must
 * have no job left when freed (fatal otherwise).
 */
#ifndef EIMZA_INGEST_P_H
#define EIMZA_INGEST_P_H

#include "classify.h"
#include "source.h"

/* Batches smaller than this are classified on the caller's thread: a
 * hand-off would only add a worker's wake-up to the latency path. */
#define INGEST_POOL_MIN 4
/* Workers: one per CPU the process may run on, within these bounds. */
#define INGEST_WORKERS_MAX 4
/* How much nicer than the thread that starts them the workers run (see
 * ingest_pool.c). */
#define INGEST_WORKER_NICE 10

/* One message, classified. */
struct ingest_item {
	struct event ev;
	char *key;               /* Message-ID, or "sha256:" and a hash of the bytes */
};

struct ingest_pool;
struct ingest_job;

/* How many workers this machine warrants: the CPUs of the process's
 * affinity mask, 1 to INGEST_WORKERS_MAX. */
unsigned ingest_workers_default(void);

/* Start `workers` threads (at least 1) that classify with conf and a
 * copy each of rules. Signals are blocked in them. */
struct ingest_pool *ipool_new(unsigned workers, const struct config *conf,
			      const struct rules *rules);
/* Stop and join the workers; no job may be outstanding. NULL is fine. */
void ipool_free(struct ingest_pool *p);
unsigned ipool_workers(const struct ingest_pool *p);

/* Queue msgs[0..n) for the workers (n >= 1). */
struct ingest_job *ipool_submit(struct ingest_pool *p, const struct raw_msg *msgs, size_t n);
/* A job without a pool: every message is classified on demand by
 * ingest_job_item() with the ctx it is given. */
struct ingest_job *ingest_job_new(const struct raw_msg *msgs, size_t n);

/* Message i classified (see above). own: the calling thread's
 * configuration and rules (arrival is filled in per message). The item is
 * the job's; the caller may take its event and key (and zero them). */
struct ingest_item *ingest_job_item(struct ingest_job *j, size_t i,
				    const struct classify_ctx *own);
/* Wait for any worker still on one of the job's messages (those nobody
 * has taken are dropped) and free the job. NULL is fine. */
void ingest_job_free(struct ingest_job *j);

/* Classify one message into it (what both the workers and the caller
 * run): an oversize or unreadable message gives MK_UNREADABLE. */
void ingest_classify(const struct classify_ctx *ctx, const struct raw_msg *m,
		     struct ingest_item *it);

#endif
