/* ingest_pool.c: classification of a batch on worker threads, in parallel
 * with whatever the caller does meanwhile (see ingest_p.h).
 *
 * One mutex guards the queue and every job's bookkeeping (which messages
 * are taken, which are done); a message's classification itself runs
 * outside it. A batch costs two lock round trips per message, nothing
 * beside the ~200 us its classification takes. */
#include "ingest_p.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct ingest_pool {
	pthread_mutex_t mu;
	pthread_cond_t work;         /* a job was queued, or stop */
	pthread_cond_t done;         /* a message was classified */
	struct ingest_job *head;     /* jobs with messages nobody took yet */
	size_t jobs;                 /* submitted and not yet freed */
	bool stop;
	const struct config *conf;
	const struct rules *rules;   /* the original; each worker copies it */
	pthread_t *threads;
	unsigned nthreads;
};

struct ingest_job {
	struct ingest_pool *pool;    /* NULL: classified on demand */
	const struct raw_msg *msgs;
	size_t n;
	struct ingest_item *items;
	bool *done;                  /* with a pool: under pool->mu */
	size_t next;                 /* the first message nobody has taken */
	size_t busy;                 /* taken, not yet done */
	struct ingest_job *qnext;    /* in pool->head's list while next < n */
};

void ingest_classify(const struct classify_ctx *ctx, const struct raw_msg *m,
		     struct ingest_item *it)
{
	struct classify_ctx cc = *ctx;
	cc.arrival = m->arrival;
	event_init(&it->ev);
	if (m->data == NULL)
		it->ev.kind = MK_UNREADABLE;
	else
		classify_raw(&cc, m->data, m->len, &it->ev);
	/* The key a message is remembered by: its Message-ID, or a hash of
	 * its bytes when it has none. */
	if (!str_empty(it->ev.message_id)) {
		it->key = xstrdup(it->ev.message_id);
	} else {
		char hex[65];
		sha256_hex(m->data ? m->data : "", m->len, hex);
		it->key = xasprintf("sha256:%s", hex);
	}
}

unsigned ingest_workers_default(void)
{
	cpu_set_t set;
	long n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > INGEST_WORKERS_MAX ? INGEST_WORKERS_MAX : (unsigned)n;
}

/* ---- the queue (under pool->mu) ---- */

static void dequeue(struct ingest_pool *p, struct ingest_job *j)
{
	for (struct ingest_job **pp = &p->head; *pp; pp = &(*pp)->qnext)
		if (*pp == j) {
			*pp = j->qnext;
			j->qnext = NULL;
			return;
		}
}

/* Take j's next message; false when nobody is left to take. */
static bool take(struct ingest_job *j, size_t *i)
{
	if (j->next >= j->n)
		return false;
	*i = j->next++;
	j->busy++;
	if (j->next == j->n)
		dequeue(j->pool, j);
	return true;
}

static void finished(struct ingest_job *j, size_t i)
{
	j->done[i] = true;
	j->busy--;
	pthread_cond_broadcast(&j->pool->done);
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
	struct ingest_pool *p = arg;
	pthread_setname_np(pthread_self(), "classify");   /* for top -H, perf */
	/* Linux keeps a nice value per thread; a new thread starts with its
	 * creator's. Measured on the backlog (2 CPUs, Dovecot on the same
	 * machine): 10-25% less time to the last commit than at the same
	 * priority while commits write every document (the workers took CPU
	 * from the fetch and the commit); no difference once a commit only
	 * appends to the journal. */
	errno = 0;
	int prio = getpriority(PRIO_PROCESS, 0);
	if (errno == 0)
		setpriority(PRIO_PROCESS, (id_t)gettid(), prio + INGEST_WORKER_NICE);
	struct rules *own = rules_dup(p->rules);
	struct classify_ctx ctx = { .conf = p->conf, .rules = own };
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct ingest_job *j = p->head;
		size_t i;
		if (j == NULL || !take(j, &i)) {
			if (p->stop)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		ingest_classify(&ctx, &j->msgs[i], &j->items[i]);
		pthread_mutex_lock(&p->mu);
		finished(j, i);
	}
	pthread_mutex_unlock(&p->mu);
	rules_free(own);
	return NULL;
}

struct ingest_pool *ipool_new(unsigned workers, const struct config *conf,
			      const struct rules *rules)
{
	struct ingest_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->conf = conf;
	p->rules = rules;
	p->threads = xcalloc(workers ? workers : 1, sizeof(*p->threads));
	/* Signals are the daemon loop's (signalfd): never a worker's. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < (workers ? workers : 1); i++) {
		int e = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
		if (e != 0) {
			errno = e;
			log_warn("ingest: starting a classification thread");
			break;
		}
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads == 0) {
		ipool_free(p);
		return NULL;
	}
	return p;
}

void ipool_free(struct ingest_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->jobs)
		fatalx("ingest: pool freed with %zu batch(es) outstanding", p->jobs);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

unsigned ipool_workers(const struct ingest_pool *p)
{
	return p ? p->nthreads : 0;
}

/* ---- jobs ---- */

struct ingest_job *ingest_job_new(const struct raw_msg *msgs, size_t n)
{
	struct ingest_job *j = xcalloc(1, sizeof(*j));
	j->msgs = msgs;
	j->n = n;
	j->items = xcalloc(n ? n : 1, sizeof(*j->items));
	j->done = xcalloc(n ? n : 1, sizeof(*j->done));
	return j;
}

struct ingest_job *ipool_submit(struct ingest_pool *p, const struct raw_msg *msgs, size_t n)
{
	struct ingest_job *j = ingest_job_new(msgs, n);
	if (n == 0)
		return j;
	j->pool = p;
	pthread_mutex_lock(&p->mu);
	struct ingest_job **tail = &p->head;
	while (*tail)
		tail = &(*tail)->qnext;
	*tail = j;
	p->jobs++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	return j;
}

struct ingest_item *ingest_job_item(struct ingest_job *j, size_t i,
				    const struct classify_ctx *own)
{
	if (i >= j->n)
		fatalx("ingest: message %zu of a batch of %zu", i, j->n);
	struct ingest_pool *p = j->pool;
	if (p == NULL) {
		if (!j->done[i]) {
			ingest_classify(own, &j->msgs[i], &j->items[i]);
			j->done[i] = true;
		}
		return &j->items[i];
	}
	pthread_mutex_lock(&p->mu);
	while (!j->done[i]) {
		size_t k;
		if (!take(j, &k)) {
			pthread_cond_wait(&p->done, &p->mu);
			continue;
		}
		/* Rather than sleep until a worker gets to it: the next
		 * message nobody took (k <= i, they are taken in order). */
		pthread_mutex_unlock(&p->mu);
		ingest_classify(own, &j->msgs[k], &j->items[k]);
		pthread_mutex_lock(&p->mu);
		finished(j, k);
	}
	pthread_mutex_unlock(&p->mu);
	return &j->items[i];
}

void ingest_job_free(struct ingest_job *j)
{
	if (j == NULL)
		return;
	struct ingest_pool *p = j->pool;
	if (p) {
		pthread_mutex_lock(&p->mu);
		if (j->next < j->n)
			dequeue(p, j);
		j->next = j->n;
		while (j->busy)
			pthread_cond_wait(&p->done, &p->mu);
		p->jobs--;
		pthread_mutex_unlock(&p->mu);
	}
	for (size_t i = 0; i < j->n; i++) {
		event_free(&j->items[i].ev);
		free(j->items[i].key);
	}
	free(j->items);
	free(j->done);
	free(j);
}
