/* ctl.c: eimzactl's commands (see ctl.h). */
#include "ctl.h"
#include "jsonutil.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

static json_object *answer(bool ok, int code)
{
	json_object *r = json_object_new_object();
	jset_bool(r, "ok", ok);
	jset_int(r, "code", code);
	return r;
}

static json_object *failure(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);
static json_object *failure(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	json_object *r = answer(false, code);
	jset_str(r, "error", msg);
	free(msg);
	return r;
}

/* ---- reading ---- */

static bool entry_overdue(const struct app_entry *e, time_t now)
{
	return app_state_open(e->state) && (e->reminders > 0 || (e->next_due && e->next_due <= now));
}

static json_object *entry_json(const struct app_entry *e, time_t now)
{
	json_object *o = json_object_new_object();
	jset_str(o, "id", e->id);
	jset_str(o, "state", app_state_name(e->state));
	jset_str(o, "name", e->name);
	jset_str(o, "email", e->email);
	jset_str(o, "unit", e->unit);
	jset_time(o, "since", e->state_since);
	jset_time(o, "opened", e->opened);
	jset_bool(o, "overdue", entry_overdue(e, now));
	jset_bool(o, "unreachable", e->unreachable);
	jset_int(o, "reminders", e->reminders);
	return o;
}

static json_object *cmd_list(struct eimzad *ez, json_object *req, const char *user)
{
	(void)user;
	const char *state = jget_str(req, "state");
	const char *unit = jget_str(req, "unit");
	bool overdue = jget_bool(req, "overdue");
	enum app_state want;
	if (state && app_state_parse(state, &want) < 0)
		return failure(EX_USAGE, "unknown state '%s'", state);
	time_t now = ez_now(ez);
	size_t n;
	struct app_entry **v = apps_sorted(ez->apps, &n);
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		if (state && v[i]->state != want)
			continue;
		if (unit && (v[i]->unit == NULL || strcasestr(v[i]->unit, unit) == NULL))
			continue;
		if (overdue && !entry_overdue(v[i], now))
			continue;
		json_object_array_add(list, entry_json(v[i], now));
	}
	free(v);
	json_object *r = answer(true, EX_OK);
	jset(r, "apps", list);
	return r;
}

static json_object *notice_summary(json_object *n)
{
	json_object *o = json_object_new_object();
	static const char *const keys[] = { "id", "kind", "medium", "to", "state", "created",
					    "done_at", "next_attempt", "last_error", "subject",
					    "app_id" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		json_object *v = jget(n, keys[i]);
		if (v)
			jset(o, keys[i], json_object_get(v));
	}
	jset_int(o, "attempts", jget_int(n, "attempts"));
	return o;
}

static json_object *app_notices(struct eimzad *ez, json_object *doc)
{
	json_object *out = json_object_new_array();
	json_object *h = jget(doc, "history");
	for (size_t i = 0; h && i < json_object_array_length(h); i++) {
		json_object *ids = jget(json_object_array_get_idx(h, i), "notices");
		for (size_t k = 0; ids && k < json_object_array_length(ids); k++) {
			const char *id = json_object_get_string(json_object_array_get_idx(ids, k));
			json_object *n = id ? store_get(ez->store, "notices", id) : NULL;
			if (n)
				json_object_array_add(out, notice_summary(n));
			json_object_put(n);
		}
	}
	return out;
}

static json_object *cmd_show(struct eimzad *ez, json_object *req, const char *user)
{
	(void)user;
	const char *id = jget_str(req, "id");
	json_object *doc = id && store_id_valid(id) ? store_get(ez->store, "apps", id) : NULL;
	if (doc == NULL)
		return failure(EX_NOINPUT, "no application %s", id ? id : "(none given)");
	if (jget(doc, "access_code") && !jget_bool(req, "show_secrets"))
		jset_str(doc, "access_code", "******");
	jset(doc, "credentials.code_hash", NULL);
	json_object *r = answer(true, EX_OK);
	jset(r, "notices", app_notices(ez, doc));
	jset(r, "app", doc);
	return r;
}

static int count_notice(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	json_object *counts = ctx;
	const char *st = jget_str(doc, "state");
	if (st)
		jset_int(counts, st, jget_int(counts, st) + 1);
	return 0;
}

static json_object *cmd_status(struct eimzad *ez, json_object *req, const char *user)
{
	(void)req;
	(void)user;
	time_t now = ez_now(ez);
	size_t n;
	struct app_entry **v = apps_sorted(ez->apps, &n);
	json_object *states = json_object_new_object();
	for (int s = 0; s < ST__COUNT; s++)
		jset_int(states, app_state_name((enum app_state)s), 0);
	int64_t overdue = 0, unreachable = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = app_state_name(v[i]->state);
		jset_int(states, name, jget_int(states, name) + 1);
		overdue += entry_overdue(v[i], now);
		unreachable += v[i]->unreachable;
	}
	free(v);
	json_object *r = answer(true, EX_OK);
	jset(r, "states", states);
	jset_int(r, "applications", (int64_t)n);
	jset_int(r, "overdue", overdue);
	jset_int(r, "unreachable", unreachable);
	json_object *notices = json_object_new_object();
	store_foreach(ez->store, "notices", count_notice, notices);
	jset(r, "notices", notices);
	jset(r, "source", store_get(ez->store, "meta", "source"));
	json_object *st = store_get(ez->store, "meta", "stats");
	jset(r, "kinds", st ? json_object_get(jget(st, "kinds")) : json_object_new_object());
	json_object_put(st);
	jset_bool(r, "daemon", ez->mode == EZ_DAEMON);
	if (ez->outbox) {
		struct outbox_stats os;
		outbox_stats(ez->outbox, &os);
		jset_int(r, "outbox.queued", (int64_t)os.queued);
		jset_int(r, "outbox.in_flight", (int64_t)os.in_flight);
		jset_int(r, "outbox.dead", (int64_t)os.dead);
	}
	return r;
}

struct outbox_filter {
	const char *want;
	json_object *list;
};

static int pick_notice(void *ctx, const char *id, json_object *doc)
{
	(void)id;
	struct outbox_filter *f = ctx;
	const char *st = jget_str(doc, "state");
	bool all = strcmp(f->want, "all") == 0;
	bool pending = strcmp(f->want, "pending") == 0 && st && strcmp(st, "queued") == 0;
	bool match = all || pending || (st && strcmp(f->want, st) == 0);
	if (match)
		json_object_array_add(f->list, notice_summary(doc));
	return 0;
}

static int by_created(const void *a, const void *b)
{
	json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
	const char *p = jget_str(x, "created"), *q = jget_str(y, "created");
	return strcmp(p ? p : "", q ? q : "");
}

static json_object *cmd_outbox(struct eimzad *ez, json_object *req, const char *user)
{
	(void)user;
	const char *want = jget_str(req, "filter");
	if (want == NULL)
		want = "pending";
	static const char *const ok[] = { "pending", "dead", "sent", "dropped", "all" };
	bool known = false;
	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		known |= strcmp(want, ok[i]) == 0;
	if (!known)
		return failure(EX_USAGE, "unknown filter '%s' (pending, dead, sent, dropped, all)", want);
	struct outbox_filter f = { want, json_object_new_array() };
	store_foreach(ez->store, "notices", pick_notice, &f);
	json_object_array_sort(f.list, by_created);
	json_object *r = answer(true, EX_OK);
	jset(r, "notices", f.list);
	return r;
}

/* ---- changing ---- */

static void audit(struct eimzad *ez, const char *user, json_object *req, bool ok)
{
	char *path = xasprintf("%s/audit.log", ez->conf->general.state_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0) {
		log_warn("ctl: audit.log");
		return;
	}
	json_object *rec = json_object_new_object();
	jset_time(rec, "at", ez_now(ez));
	jset_str(rec, "user", user);
	jset_bool(rec, "ok", ok);
	/* Imports carry personal data: the audit keeps only their size. */
	json_object *copy = jcopy(req);
	json_object *rows = jget(copy, "rows");
	if (rows)
		jset_int(copy, "rows", (int64_t)json_object_array_length(rows));
	jset(rec, "request", copy);
	const char *line = jtext(rec);
	ssize_t w = write(fd, line, strlen(line));
	w += write(fd, "\n", 1);
	(void)w;
	fsync(fd);
	close(fd);
	json_object_put(rec);
}

/* Run fn inside one transaction and commit; the report becomes the answer. */
typedef int (*change_fn)(struct eimzad *ez, struct txn *t, json_object *req,
			 const struct wf_origin *o, time_t now, json_object *report, char **err);

static json_object *run_change(struct eimzad *ez, json_object *req, const char *user, change_fn fn)
{
	if (ez->mode == EZ_READ)
		return failure(EX_SOFTWARE, "internal: a changing command on a read-only view");
	char *actor = xasprintf("cli:%s", user ? user : "?");
	struct wf_origin o = { .actor = actor, .source = "cli" };
	time_t now = ez_now(ez);
	struct txn *t = store_begin(ez->store);
	json_object *report = json_object_new_array();
	char *err = NULL;
	int r = fn(ez, t, req, &o, now, report, &err);
	json_object *res;
	if (r < 0) {
		txn_abort(t);
		res = failure(EX_DATAERR, "%s", err ? err : "failed");
		ez_index_rebuild(ez, "ctl");
	} else if (txn_commit(t, &err) < 0) {
		res = failure(EX_IOERR, "cannot record the change: %s", err);
		ez_index_rebuild(ez, "ctl");
	} else {
		bool refused = r == 1;
		res = answer(!refused, refused ? EX_DATAERR : EX_OK);
		if (refused && json_object_array_length(report) > 0)
			jset_str(res, "error", jget_str(json_object_array_get_idx(report, 0), "message"));
		if (ez->outbox)
			outbox_kick(ez->outbox, now);
	}
	jset(res, "report", report);
	audit(ez, user, req, jget_bool(res, "ok"));
	free(err);
	free(actor);
	return res;
}

static int do_verb(struct eimzad *ez, struct txn *t, json_object *req, const struct wf_origin *o,
		   time_t now, json_object *report, char **err)
{
	enum cmd_verb verb;
	if (cmd_verb_parse(jget_str(req, "verb"), &verb) < 0)
		return seterr(err, "unknown command verb");
	return wf_command(&ez->wf, t, jget_str(req, "id"), verb, jget_str(req, "reason"), o, now,
			  report, err);
}

static int do_import(struct eimzad *ez, struct txn *t, json_object *req, const struct wf_origin *o,
		     time_t now, json_object *report, char **err)
{
	json_object *rows = jget(req, "rows");
	size_t n = rows ? json_object_array_length(rows) : 0;
	struct wf_row *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		struct applicant *a = &v[i].a;
		a->name = (char *)jget_str(r, "name");
		a->email = (char *)jget_str(r, "email");
		a->mobile = (char *)jget_str(r, "mobile");
		a->tc = (char *)jget_str(r, "tc");
		a->title = (char *)jget_str(r, "title");
		a->unit = (char *)jget_str(r, "unit");
		a->row = (int)jget_int(r, "row");
		v[i].unit_name = a->unit;
		v[i].unit_reply_to = jget_str(r, "unit_email");
		v[i].state = ST_SUBMITTED;
		if (jget_str(r, "state") && app_state_parse(jget_str(r, "state"), &v[i].state) < 0) {
			free(v);
			return seterr(err, "row %d: unknown state '%s'", a->row, jget_str(r, "state"));
		}
		v[i].since = jget_time(r, "since");
	}
	int rc = wf_create(&ez->wf, t, v, n, o, now, report, NULL, err);
	free(v);
	return rc;
}

static int do_edit(struct eimzad *ez, struct txn *t, json_object *req, const struct wf_origin *o,
		   time_t now, json_object *report, char **err)
{
	const char *field = jget_str(req, "field"), *value = jget_str(req, "value");
	if (field == NULL || value == NULL)
		return seterr(err, "edit needs FIELD=VALUE");
	return wf_edit(&ez->wf, t, jget_str(req, "id"), field, value, o, now, report, err);
}

/* The newest notice of an application with this id or kind. */
static char *find_notice(struct eimzad *ez, const char *app_id, const char *which)
{
	json_object *doc = store_get(ez->store, "apps", app_id);
	if (doc == NULL)
		return NULL;
	json_object *list = app_notices(ez, doc);
	char *found = NULL;
	for (size_t i = json_object_array_length(list); i-- > 0 && !found;) {
		json_object *n = json_object_array_get_idx(list, i);
		const char *id = jget_str(n, "id"), *kind = jget_str(n, "kind");
		if ((id && strcmp(id, which) == 0) || (kind && strcmp(kind, which) == 0))
			found = xstrdup(id);
	}
	json_object_put(list);
	json_object_put(doc);
	return found;
}

static int do_resend(struct eimzad *ez, struct txn *t, json_object *req, const struct wf_origin *o,
		     time_t now, json_object *report, char **err)
{
	(void)o;
	const char *app = jget_str(req, "id"), *which = jget_str(req, "notice");
	if (app == NULL || which == NULL || !store_id_valid(app))
		return seterr(err, "resend needs ID and NOTICE (a notice id or kind)");
	char *nid = find_notice(ez, app, which);
	if (nid == NULL)
		return seterr(err, "%s has no notice '%s' (see eimzactl show %s)", app, which, app);
	int r = outbox_requeue(ez->outbox, t, nid, now, err);
	if (r == 0) {
		json_object *it = json_object_new_object();
		jset_str(it, "app", app);
		jset_bool(it, "ok", true);
		char *msg = xasprintf("notice %s queued again", nid);
		jset_str(it, "message", msg);
		free(msg);
		json_object_array_add(report, it);
	}
	free(nid);
	return r;
}

static int do_purge(struct eimzad *ez, struct txn *t, json_object *req, const struct wf_origin *o,
		    time_t now, json_object *report, char **err)
{
	(void)o;
	return wf_purge(&ez->wf, t, now, jget_bool(req, "dry_run"), report, err);
}

static json_object *cmd_verb(struct eimzad *ez, json_object *req, const char *user)
{
	return run_change(ez, req, user, do_verb);
}

static json_object *cmd_approve(struct eimzad *ez, json_object *req, const char *user)
{
	jset_str(req, "verb", "approve");
	return cmd_verb(ez, req, user);
}

static json_object *cmd_reject(struct eimzad *ez, json_object *req, const char *user)
{
	if (str_empty(jget_str(req, "reason")))
		return failure(EX_USAGE, "reject needs --reason TEXT: the unit is told the reason");
	jset_str(req, "verb", "reject");
	return cmd_verb(ez, req, user);
}

static json_object *cmd_cancel(struct eimzad *ez, json_object *req, const char *user)
{
	jset_str(req, "verb", "cancel");
	return cmd_verb(ez, req, user);
}

static json_object *cmd_mark(struct eimzad *ez, json_object *req, const char *user)
{
	static const struct { const char *step; const char *verb; } steps[] = {
		{ "submitted", "submitted" }, { "commitment", "delivered" },
		{ "delivered", "delivered" }, { "posted", "posted" }, { "activated", "activated" },
	};
	const char *step = jget_str(req, "step");
	for (size_t i = 0; step && i < ARRAY_LEN(steps); i++)
		if (strcmp(step, steps[i].step) == 0) {
			jset_str(req, "verb", steps[i].verb);
			return cmd_verb(ez, req, user);
		}
	return failure(EX_USAGE, "mark: unknown step '%s' (submitted, commitment, posted, activated)",
		       step ? step : "");
}

#define CHANGE(name, fn) \
	static json_object *cmd_##name(struct eimzad *ez, json_object *req, const char *user) \
	{ return run_change(ez, req, user, fn); }
CHANGE(import, do_import)
CHANGE(edit, do_edit)
CHANGE(resend, do_resend)
CHANGE(purge, do_purge)

static const struct ctl_cmd {
	const char *name;
	json_object *(*fn)(struct eimzad *ez, json_object *req, const char *user);
	bool change;
} ctl_cmds[] = {
	{ "list", cmd_list, false },     { "show", cmd_show, false },
	{ "status", cmd_status, false }, { "outbox", cmd_outbox, false },
	{ "approve", cmd_approve, true }, { "reject", cmd_reject, true },
	{ "mark", cmd_mark, true },      { "cancel", cmd_cancel, true },
	{ "import", cmd_import, true },  { "edit", cmd_edit, true },
	{ "resend", cmd_resend, true },  { "purge", cmd_purge, true },
};

static const struct ctl_cmd *cmd_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_LEN(ctl_cmds); i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

bool ctl_is_change(const char *cmd)
{
	const struct ctl_cmd *c = cmd_find(cmd);
	return c && c->change;
}

json_object *ctl_execute(struct eimzad *ez, json_object *req, const char *user)
{
	const struct ctl_cmd *c = cmd_find(jget_str(req, "cmd"));
	if (c == NULL)
		return failure(EX_USAGE, "unknown command '%s'", jget_str(req, "cmd") ? jget_str(req, "cmd") : "");
	return c->fn(ez, req, user);
}

/* ---- the socket ---- */

char *ctl_socket_path(const struct config *c)
{
	if (!str_empty(c->general.control_socket))
		return xstrdup(c->general.control_socket);
	return xasprintf("%s/control.sock", c->general.state_dir);
}

static int sun_for(const char *path, struct sockaddr_un *sun, char **err)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return seterr(err, "%s: socket path too long", path);
	strcpy(sun->sun_path, path);
	return 0;
}

int ctl_listen(const char *path, char **err)
{
	struct sockaddr_un sun;
	if (sun_for(path, &sun, err) < 0)
		return -1;
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);     /* stale: the store lock says no daemon owns it */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return seterr(err, "control socket: %s", strerror(errno));
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		seterr(err, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int read_line(int fd, struct buf *b, size_t max)
{
	char chunk[4096];
	while (memchr(b->p ? b->p : "", '\n', b->len) == NULL) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return b->len ? 0 : -1;
		buf_add(b, chunk, (size_t)r);
		if (b->len > max)
			return -1;
	}
	return 0;
}

static char *peer_user(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return xstrdup("?");
	struct passwd pw, *res = NULL;
	char buf[1024];
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		return xstrdup(res->pw_name);
	return xasprintf("uid%u", (unsigned)cred.uid);
}

void ctl_serve(struct eimzad *ez, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct buf b = BUF_INIT;
	json_object *req = NULL;
	if (read_line(fd, &b, 64u << 20) == 0)
		req = json_tokener_parse(b.p);
	json_object *res;
	if (req == NULL || !json_object_is_type(req, json_type_object)) {
		res = failure(EX_PROTOCOL, "malformed request");
	} else {
		char *user = peer_user(fd);
		res = ctl_execute(ez, req, user);
		free(user);
	}
	const char *out = jtext(res);
	if (fd_write_all(fd, out, strlen(out)) == 0)
		fd_write_all(fd, "\n", 1);
	json_object_put(res);
	json_object_put(req);
	buf_free(&b);
	close(fd);
}

json_object *ctl_call(const char *path, json_object *req, bool *unreachable, char **err)
{
	*unreachable = false;
	struct sockaddr_un sun;
	if (sun_for(path, &sun, err) < 0)
		return NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		*unreachable = errno == ENOENT || errno == ECONNREFUSED;
		seterr(err, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct timeval tv = { 120, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	const char *line = jtext(req);
	struct buf b = BUF_INIT;
	json_object *res = NULL;
	if (fd_write_all(fd, line, strlen(line)) == 0 && fd_write_all(fd, "\n", 1) == 0 &&
	    read_line(fd, &b, 256u << 20) == 0)
		res = json_tokener_parse(b.p);
	if (res == NULL)
		seterr(err, "%s: no answer from the daemon", path);
	buf_free(&b);
	close(fd);
	return res;
}
