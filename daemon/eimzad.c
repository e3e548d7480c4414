/*
 * eimzad: the daemon. Set-up, the event loop, signals.
 *
 * One thread runs this loop; the outbox runs its delivery workers in
 * threads of their own. The loop waits (poll) on: the mailbox (IMAP IDLE
 * or inotify on a Maildir), the outbox's results, the control socket,
 * signals (signalfd), and the next timer. Everything that changes state
 * happens here, so the store has a single writer.
 */
#include "ctl.h"
#include "eimzad.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define EIMZAD_VERSION "0.1"
#define IDLE_REFRESH_MS (25 * 60 * 1000)   /* RFC 2177: re-issue IDLE before 29 min */

struct mailbox {
	struct source *src;
	bool connected;
	bool waiting;
	int wait_fd;
	int64_t wait_since;
	int64_t next_try;        /* mono ms */
	int backoff_s;
	bool need_fetch;
	int64_t next_poll;       /* mono ms, when polling instead of IDLE */
	uint32_t uidvalidity, last_uid;
	/* Marks owed to committed messages: the connection failed before
	 * they were made (see mb_fetch_all). Made at the next connect. */
	struct raw_msg *owed;    /* uid and key only */
	enum src_mark *owed_how;
	size_t n_owed;
};

struct daemon {
	struct eimzad ez;
	const char *conf_path;
	struct mailbox mb;
	int sig_fd;
	int ctl_fd;
	bool once;
	bool stop;
	uint64_t watchdog_usec;
	int64_t next_watchdog;
	time_t timer_at;         /* when wf_timers next has work (clock time) */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: eimzad [-nv] [-c file] [--once] [--now 'YYYY-MM-DD HH:MM']\n"
		"  -c file    configuration (default %s/eimzad/eimzad.conf)\n"
		"  -n         check the configuration and exit\n"
		"  -v         log debug messages\n"
		"  --once     handle what is in the mailbox and every due timer, deliver, exit\n"
		"  --now T    run with the clock set to local time T (tests, replays)\n",
		SYSCONFDIR);
}

static int print_errors(struct conf_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->msgs[i]);
	int rc = e->n ? EX_CONFIG : EX_OK;
	conf_errors_free(e);
	return rc;
}

/* ---- the mailbox ---- */

static void mb_fail(struct daemon *d, const char *what, char *err)
{
	struct mailbox *mb = &d->mb;
	log_warnx("source: %s: %s", what, err ? err : "failed");
	free(err);
	mb->src->ops->disconnect(mb->src);
	mb->connected = mb->waiting = false;
	int max = (int)d->ez.first_conf->imap.backoff_max.n;
	mb->backoff_s = mb->backoff_s ? mb->backoff_s * 2 : 1;
	if (mb->backoff_s > max)
		mb->backoff_s = max > 0 ? max : 1;
	mb->next_try = mono_ms() + (int64_t)mb->backoff_s * 1000;
	log_info("source: next attempt in %d s", mb->backoff_s);
}

static enum src_mark mark_for(const struct ez_result *r)
{
	if (r->duplicate)
		return MARK_HANDLED;
	switch (r->kind) {
	case MK_OTHER:
	case MK_AUTO_REPLY:
	case MK_UNREADABLE:
		return MARK_OTHER;
	default:
		return MARK_HANDLED;
	}
}

/* Mark messages: one command per kind of mark. Returns 0, or -1 with
 * *err when a command failed (the connection is then unusable, see
 * source.h, and nothing more is sent); undone[how] says which kinds of
 * mark failed or were not tried. */
static int mark_set(struct source *src, const struct raw_msg *msgs, const enum src_mark *how,
		    size_t n, bool undone[2], char **err)
{
	const struct raw_msg **v = xcalloc(n ? n : 1, sizeof(*v));
	int rc = 0;
	for (int h = MARK_HANDLED; h <= MARK_OTHER; h++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (how[i] == (enum src_mark)h)
				v[k++] = &msgs[i];
		undone[h] = rc < 0;
		if (rc == 0 && k > 0 && src->ops->mark_many(src, v, k, (enum src_mark)h, err) < 0) {
			undone[h] = true;
			rc = -1;
		}
	}
	free(v);
	return rc;
}

static void owed_free(struct mailbox *mb)
{
	raw_msgs_free(mb->owed, mb->n_owed);
	free(mb->owed_how);
	mb->owed = NULL;
	mb->owed_how = NULL;
	mb->n_owed = 0;
}

/* Owe the marks of msgs[i] whose kind of mark is in `which` (their
 * bodies are freed, the rest moves to mb->owed). */
static void owe(struct mailbox *mb, struct raw_msg *msgs, const enum src_mark *how, size_t n,
		const bool which[2])
{
	mb->owed = xreallocarray(mb->owed, mb->n_owed + n + 1, sizeof(*mb->owed));
	mb->owed_how = xreallocarray(mb->owed_how, mb->n_owed + n + 1, sizeof(*mb->owed_how));
	for (size_t i = 0; i < n; i++) {
		if (!which[how[i]])
			continue;
		free(msgs[i].data);
		mb->owed[mb->n_owed] = msgs[i];
		mb->owed[mb->n_owed].data = NULL;
		mb->owed[mb->n_owed].len = 0;
		mb->owed_how[mb->n_owed++] = how[i];
		memset(&msgs[i], 0, sizeof(msgs[i]));
	}
}

/* The marks owed since the connection failed. They are tried once: if
 * that fails too, they are given up (the messages stay as they are; the
 * position and the Message-IDs are recorded, so nothing is handled
 * twice) rather than tried at every connect. After a new UIDVALIDITY the
 * re-scan marks them as duplicates instead. */
static int pay_owed(struct daemon *d, bool rescan)
{
	struct mailbox *mb = &d->mb;
	bool undone[2];
	char *err = NULL;
	int rc = 0;
	if (mb->n_owed && !rescan &&
	    mark_set(mb->src, mb->owed, mb->owed_how, mb->n_owed, undone, &err) < 0) {
		log_warnx("source: %zu message(s) stay unmarked", mb->n_owed);
		mb_fail(d, "mark", err);
		rc = -1;
	}
	owed_free(mb);
	return rc;
}

static int mb_connect(struct daemon *d)
{
	struct mailbox *mb = &d->mb;
	char *err = NULL;
	if (mb->src->ops->connect(mb->src, &err) < 0) {
		mb_fail(d, "connect", err);
		return -1;
	}
	mb->connected = true;
	mb->backoff_s = 0;
	mb->need_fetch = true;
	ez_position(&d->ez, &mb->uidvalidity, &mb->last_uid);
	bool rescan = mb->src->uidvalidity && mb->uidvalidity && mb->uidvalidity != mb->src->uidvalidity;
	if (rescan) {
		log_warnx("source: UIDVALIDITY changed (%u -> %u): scanning the folder again; "
			  "messages already handled are recognised by Message-ID",
			  mb->uidvalidity, mb->src->uidvalidity);
		mb->last_uid = 0;
	}
	mb->uidvalidity = mb->src->uidvalidity;
	log_info("source: connected (%s)", mb->src->ops->name);
	return pay_owed(d, rescan);
}

/* A fetched batch on its way: classified by the ingest's threads while
 * the next one is fetched, then applied and marked. */
struct inflight {
	struct raw_msg *msgs;
	size_t n;
	uint32_t top;            /* the highest UID in it */
	struct ez_batch *b;
};

static void inflight_free(struct daemon *d, struct inflight *f)
{
	ez_ingest_cancel(&d->ez, f->b);
	raw_msgs_free(f->msgs, f->n);
	memset(f, 0, sizeof(*f));
}

/* Fetch the batch after `after` and hand it to classification. Returns
 * the number of messages, or -1 with *err when the connection failed. */
static int mb_fetch_batch(struct daemon *d, uint32_t after, struct inflight *f, char **err)
{
	struct source *src = d->mb.src;
	size_t max = (size_t)d->ez.first_conf->imap.fetch_batch;
	memset(f, 0, sizeof(*f));
	if (src->ops->fetch(src, after, max, &f->msgs, &f->n, err) < 0) {
		raw_msgs_free(f->msgs, f->n);
		memset(f, 0, sizeof(*f));
		return -1;
	}
	f->top = after;
	for (size_t i = 0; i < f->n; i++)
		if (f->msgs[i].uid > f->top)
			f->top = f->msgs[i].uid;
	if (f->n)
		f->b = ez_ingest_start(&d->ez, f->msgs, f->n);
	return (int)f->n;
}

/* The connection state of one pass of mb_fetch_all: once a command has
 * failed, nothing more is sent, and `why` says what failed. */
struct pass {
	bool broken;
	const char *what;
	char *why;
};

/* Apply a fetched batch (one commit), then mark it; when the connection
 * is broken (before or by these marks), the marks are owed to the next
 * connect. Returns 0, or -1 when the commit failed (nothing recorded:
 * mb_fail() has been called). */
static int mb_apply(struct daemon *d, struct inflight *f, struct pass *ps)
{
	struct mailbox *mb = &d->mb;
	struct ez_result *res = xcalloc(f->n, sizeof(*res));
	struct ez_batch *b = f->b;
	char *err = NULL;
	f->b = NULL;
	if (ez_ingest_finish(&d->ez, b, mb->uidvalidity, f->top, res, &err) < 0) {
		/* Nothing recorded (a full or failing disk): leave the messages
		 * unmarked and come back after the reconnect backoff, rather
		 * than fetching the same batch again in a tight loop. */
		free(res);
		inflight_free(d, f);
		char *why = xasprintf("batch not recorded: %s", err);
		free(err);
		mb_fail(d, "ingest", why);
		return -1;
	}
	mb->last_uid = f->top;
	log_info("source: %zu message(s) handled, up to uid %u", f->n, f->top);
	enum src_mark *how = xcalloc(f->n, sizeof(*how));
	for (size_t i = 0; i < f->n; i++)
		how[i] = mark_for(&res[i]);
	bool owed[2] = { true, true };
	if (!ps->broken && mark_set(mb->src, f->msgs, how, f->n, owed, &ps->why) < 0) {
		ps->broken = true;
		ps->what = "mark";
	}
	if (ps->broken)
		owe(mb, f->msgs, how, f->n, owed);
	free(how);
	free(res);
	inflight_free(d, f);
	return 0;
}

static void collect_outbox(struct daemon *d)
{
	char *err = NULL;
	if (outbox_collect(d->ez.outbox, ez_now(&d->ez), &err) < 0) {
		log_warnx("outbox: %s", err ? err : "failed");
		free(err);
	}
	outbox_kick(d->ez.outbox, ez_now(&d->ez));
}

static void watchdog(struct daemon *d)
{
	if (d->watchdog_usec == 0 || mono_ms() < d->next_watchdog)
		return;
	sd_notify(0, "WATCHDOG=1");
	d->next_watchdog = mono_ms() + (int64_t)(d->watchdog_usec / 2000);
}

/* Is a SIGTERM or SIGINT waiting for the loop's signalfd? (They are
 * blocked, so they stay pending; this leaves them for handle_signal().) */
static bool stop_pending(void)
{
	sigset_t set;
	return sigpending(&set) == 0 &&
	       (sigismember(&set, SIGTERM) == 1 || sigismember(&set, SIGINT) == 1);
}

/* Fetch and handle everything new, as a pipeline: batch k+1 is fetched
 * while the ingest's threads classify batch k, then k is applied (one
 * commit) and marked. At most two batches are held at a time. A batch
 * shorter than fetch_batch ends an IMAP listing: nothing left to overlap
 * with, it is applied at once (the path of mail announced in IDLE). When
 * the connection fails, the batches already fetched are still applied
 * and their marks made after the reconnect. */
static void mb_fetch_all(struct daemon *d)
{
	struct mailbox *mb = &d->mb;
	size_t max = (size_t)d->ez.first_conf->imap.fetch_batch;
	bool maildir = mb->src->ops == &source_maildir_ops;
	struct inflight prev = { 0 }, cur = { 0 };
	struct pass ps = { 0 };
	uint32_t after = mb->last_uid;
	bool more = true, cut = false;
	while (more || prev.n) {
		int n = more ? mb_fetch_batch(d, after, &cur, &ps.why) : 0;
		if (n < 0) {
			ps.broken = true;
			ps.what = "fetch";
		}
		if (prev.n && mb_apply(d, &prev, &ps) < 0) {
			inflight_free(d, &cur);
			free(ps.why);
			return;
		}
		more = n > 0 && !ps.broken && (maildir || (size_t)n >= max);
		if (more && stop_pending()) {
			/* SIGTERM in a long backlog: the batches in hand are
			 * applied, the rest waits for the next start. */
			more = false;
			cut = true;
		}
		/* A long backlog keeps the watchdog fed. The outcomes of the
		 * notices already out wait for the loop: recording them here
		 * (a commit between two fetches) made a 10,000-message first
		 * start 1.6x slower to classify and no faster to deliver. */
		if (more)
			watchdog(d);
		prev = cur;
		after = cur.n ? cur.top : after;
		memset(&cur, 0, sizeof(cur));
	}
	if (ps.broken)
		mb_fail(d, ps.what, ps.why);
	else if (!cut)
		mb->need_fetch = false;
}

static void mb_wait_start(struct daemon *d)
{
	struct mailbox *mb = &d->mb;
	char *err = NULL;
	int fd = -1;
	if (mb->src->ops->wait_start(mb->src, &fd, &err) < 0) {
		mb_fail(d, "idle", err);
		return;
	}
	mb->waiting = true;
	mb->wait_fd = fd;
	mb->wait_since = mono_ms();
	if (fd < 0)
		mb->next_poll = mono_ms() + d->ez.first_conf->imap.poll_interval.n * 1000;
}

static void mb_wait_done(struct daemon *d)
{
	struct mailbox *mb = &d->mb;
	bool maybe = true;
	char *err = NULL;
	mb->waiting = false;
	if (mb->src->ops->wait_done(mb->src, &maybe, &err) < 0) {
		mb_fail(d, "idle done", err);
		return;
	}
	if (maybe)
		mb->need_fetch = true;
}

/* ---- timers, outbox, signals ---- */

static void run_timers(struct daemon *d)
{
	char *err = NULL;
	if (ez_timers(&d->ez, &err) < 0) {
		log_warnx("timers: %s", err ? err : "failed");
		free(err);
	}
	d->timer_at = wf_next_timer(&d->ez.wf, ez_now(&d->ez));
}

static void reload(struct daemon *d)
{
	struct conf_errors e = { 0 };
	sd_notify(0, "RELOADING=1");
	if (ez_reload(&d->ez, d->conf_path, &e) < 0) {
		log_warnx("reload: configuration has errors, keeping the running one:");
		for (size_t i = 0; i < e.n; i++)
			log_warnx("reload: %s", e.msgs[i]);
	} else {
		log_info("reload: configuration reloaded from %s", d->conf_path);
		d->timer_at = 0;         /* new calendar or passes: look again now */
	}
	conf_errors_free(&e);
	sd_notify(0, "READY=1");
}

static void handle_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else {
			log_info("signal %u: draining and exiting", si.ssi_signo);
			d->stop = true;
		}
	}
}

static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Block the signals the loop reads from a signalfd. This must happen
 * before any thread starts (the outbox's workers inherit the mask), or
 * the kernel may deliver SIGTERM to a worker and end the process. */
static void block_signals(void)
{
	sigset_t set;
	handled_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
}

static int setup_signals(struct daemon *d)
{
	sigset_t set;
	handled_signals(&set);
	d->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return d->sig_fd < 0 ? -1 : 0;
}

/* Milliseconds until the earliest thing the loop must do by itself. */
static int loop_timeout(struct daemon *d)
{
	int64_t now_ms = mono_ms();
	time_t now = ez_now(&d->ez);
	int64_t wake = now_ms + 60000;
	time_t onext = outbox_next_due(d->ez.outbox);
	if (d->timer_at) {
		int64_t t = now_ms + (d->timer_at > now ? (int64_t)(d->timer_at - now) * 1000 : 0);
		wake = t < wake ? t : wake;
	}
	if (onext) {
		int64_t o = now_ms + (onext > now ? (int64_t)(onext - now) * 1000 : 0);
		wake = o < wake ? o : wake;
	}
	struct mailbox *mb = &d->mb;
	if (!mb->connected)
		wake = mb->next_try < wake ? mb->next_try : wake;
	else if (mb->waiting && mb->wait_fd < 0)
		wake = mb->next_poll < wake ? mb->next_poll : wake;
	else if (mb->waiting)
		wake = mb->wait_since + IDLE_REFRESH_MS < wake ? mb->wait_since + IDLE_REFRESH_MS : wake;
	if (d->watchdog_usec)
		wake = d->next_watchdog < wake ? d->next_watchdog : wake;
	int64_t flush = store_flush_due(d->ez.store);     /* write-behind of documents */
	if (flush)
		wake = flush < wake ? flush : wake;
	int64_t ms = wake - now_ms;
	return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

enum { PFD_SIG, PFD_CTL, PFD_OUTBOX, PFD_MAIL, PFD__N };

static void loop_once(struct daemon *d)
{
	struct mailbox *mb = &d->mb;
	if (!mb->connected && mono_ms() >= mb->next_try)
		mb_connect(d);
	if (mb->connected && mb->need_fetch) {
		mb_fetch_all(d);
		run_timers(d);
	}
	if (mb->connected && !mb->waiting && !mb->need_fetch)
		mb_wait_start(d);
	struct pollfd p[PFD__N] = {
		[PFD_SIG] = { d->sig_fd, POLLIN, 0 },
		[PFD_CTL] = { d->ctl_fd, POLLIN, 0 },
		[PFD_OUTBOX] = { outbox_fd(d->ez.outbox), POLLIN, 0 },
		[PFD_MAIL] = { mb->waiting ? mb->wait_fd : -1, POLLIN, 0 },
	};
	int r = poll(p, PFD__N, loop_timeout(d));
	if (r < 0 && errno != EINTR)
		fatal("poll");
	if (p[PFD_SIG].revents)
		handle_signal(d);
	if (p[PFD_OUTBOX].revents)
		collect_outbox(d);
	if (p[PFD_CTL].revents)
		ctl_serve(&d->ez, d->ctl_fd);
	if (mb->waiting && (p[PFD_MAIL].revents ||
			    (mb->wait_fd < 0 && mono_ms() >= mb->next_poll) ||
			    mono_ms() - mb->wait_since >= IDLE_REFRESH_MS))
		mb_wait_done(d);
	if (ez_now(&d->ez) >= d->timer_at)
		run_timers(d);
	outbox_kick(d->ez.outbox, ez_now(&d->ez));
	store_tick(d->ez.store);
	watchdog(d);
}

/* --once: mailbox, timers, then deliver what is due now, bounded. */
static int run_once(struct daemon *d)
{
	if (mb_connect(d) < 0)
		return EX_TEMPFAIL;
	mb_fetch_all(d);
	run_timers(d);
	outbox_kick(d->ez.outbox, ez_now(&d->ez));
	int64_t deadline = mono_ms() + 120000;
	while (mono_ms() < deadline) {
		time_t now = ez_now(&d->ez);
		time_t due = outbox_next_due(d->ez.outbox);
		if (outbox_in_flight(d->ez.outbox) == 0 && (due == 0 || due > now))
			break;
		struct pollfd p = { outbox_fd(d->ez.outbox), POLLIN, 0 };
		poll(&p, 1, 200);
		collect_outbox(d);
	}
	collect_outbox(d);
	return EX_OK;
}

static int start(struct daemon *d)
{
	char *err = NULL;
	int r = ez_open(&d->ez, EZ_DAEMON, &err);
	if (r == STORE_EBUSY) {
		log_warnx("%s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	if (r < 0) {
		log_warnx("cannot start: %s", err);
		free(err);
		return EX_SOFTWARE;
	}
	d->mb.src = source_create(d->ez.first_conf);
	if (setup_signals(d) < 0)
		fatal("signals");
	char *path = ctl_socket_path(d->ez.first_conf);
	d->ctl_fd = ctl_listen(path, &err);
	if (d->ctl_fd < 0) {
		log_warnx("control socket: %s (eimzactl will work only while eimzad is stopped)", err);
		free(err);
	}
	free(path);
	return EX_OK;
}

static void finish(struct daemon *d)
{
	sd_notify(0, "STOPPING=1");
	if (d->mb.waiting)
		mb_wait_done(d);
	owed_free(&d->mb);
	if (d->mb.src) {
		d->mb.src->ops->disconnect(d->mb.src);
		d->mb.src->ops->destroy(d->mb.src);
	}
	if (d->ctl_fd >= 0) {
		char *path = ctl_socket_path(d->ez.first_conf);
		close(d->ctl_fd);
		unlink(path);
		free(path);
	}
	if (d->ez.outbox)
		collect_outbox(d);
	ez_close(&d->ez);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
}

static int parse_args(struct daemon *d, int argc, char **argv, bool *check, const char **now)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'O' }, { "now", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool verbose = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:nvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': d->conf_path = optarg; break;
		case 'n': *check = true; break;
		case 'v': verbose = true; break;
		case 'O': d->once = true; break;
		case 'N': *now = optarg; break;
		case 'V': printf("eimzad %s\n", EIMZAD_VERSION); exit(EX_OK);
		case 'h': usage(); exit(EX_OK);
		default: usage(); return -1;
		}
	}
	log_init("eimzad", verbose);
	return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct daemon d = { .conf_path = SYSCONFDIR "/eimzad/eimzad.conf", .sig_fd = -1, .ctl_fd = -1 };
	bool check = false;
	const char *now = NULL;
	if (parse_args(&d, argc, argv, &check, &now) < 0)
		return EX_USAGE;
	ez_init(&d.ez);
	struct conf_errors e = { 0 };
	if (ez_load(&d.ez, d.conf_path, &e) < 0 || check) {
		if (check && e.n == 0)
			config_check_secrets(d.ez.conf, &e);
		int rc = print_errors(&e);
		if (rc == EX_OK)
			printf("configuration OK\n");
		ez_close(&d.ez);
		return rc;
	}
	char *err = NULL;
	if (now && ez_set_now(&d.ez, now, &err) < 0) {
		fprintf(stderr, "eimzad: %s\n", err);
		free(err);
		ez_close(&d.ez);
		return EX_USAGE;
	}
	block_signals();
	int rc = start(&d);
	if (rc != EX_OK) {
		ez_close(&d.ez);
		return rc;
	}
	if (d.once) {
		rc = run_once(&d);
	} else {
		sd_watchdog_enabled(0, &d.watchdog_usec);
		sd_notify(0, "READY=1\nSTATUS=watching the mailbox");
		log_info("eimzad %s started (%s)", EIMZAD_VERSION, d.conf_path);
		while (!d.stop)
			loop_once(&d);
	}
	finish(&d);
	log_info("stopped");
	return rc;
}
