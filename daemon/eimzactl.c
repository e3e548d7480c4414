/*
 * eimzactl: see and move applications from the shell.
 *
 * Each command becomes one request (ctl.h). While eimzad runs, requests
 * go over its control socket, so the daemon stays the store's only
 * writer; when it does not run, eimzactl opens the state itself (taking
 * the same lock for changes). Output is a table for people, or the
 * answer object with --json. Exit codes are sysexits(3).
 */
#include "applicants.h"
#include "classify.h"
#include "ctl.h"
#include "jsonutil.h"
#include "log.h"
#include "text.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

struct opts {
	const char *conf;
	const char *now;
	bool json;
	bool show_secrets;
	bool dry_run;
	bool overdue;
	const char *state;
	const char *unit;
	const char *reason;
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: eimzactl [-c file] [--json] [--now 'YYYY-MM-DD HH:MM'] COMMAND ...\n"
		"  list [--state S] [--unit U] [--overdue]   applications\n"
		"  show ID                                   one application and its timeline\n"
		"  status                                    counts, overdue, outbox, mailbox\n"
		"  outbox [pending|dead|sent|dropped|all]    notices\n"
		"  approve ID                                step 2: ONAY\n"
		"  reject ID --reason TEXT                   step 2a: RED, the unit is told why\n"
		"  mark ID submitted|commitment|posted|activated\n"
		"  cancel ID\n"
		"  import FILE.csv                           applicants (optional state, since)\n"
		"  edit ID FIELD=VALUE                       name, email, mobile, tc, title, unit\n"
		"  resend ID NOTICE                          a notice id or kind, again\n"
		"  purge [--dry-run]                         KVKK: personal data past retention\n"
		"  explain FILE.eml|- [--show-secrets]       how one message is understood\n");
}

static char *unix_user(void)
{
	struct passwd *pw = getpwuid(getuid());
	return pw ? xstrdup(pw->pw_name) : xasprintf("uid%u", (unsigned)getuid());
}

/* ---- output for people ---- */

static const char *when(json_object *o, const char *key, char *buf, size_t len)
{
	time_t t = jget_time(o, key);
	return t ? cal_fmt_datetime(t, buf, len) : "-";
}

static const char *or_dash(const char *s)
{
	return str_empty(s) ? "-" : s;
}

/* Print s in a column of `width` characters (not bytes: names carry
 * Turkish letters), cut at a character boundary, padded with spaces. */
static void cell(const char *s, size_t width)
{
	s = or_dash(s);
	const char *p = s, *end = s + strlen(s);
	size_t n = 0;
	while (p < end && n < width) {
		utf8_next(&p, end);
		n++;
	}
	fwrite(s, 1, (size_t)(p - s), stdout);
	for (; n < width + 1; n++)
		putchar(' ');
}

static void print_list(json_object *r)
{
	json_object *apps = jget(r, "apps");
	size_t n = apps ? json_object_array_length(apps) : 0;
	printf("%-16s %-20s %-28s %-24s %-16s %s\n", "ID", "STATE", "NAME", "UNIT", "SINCE", "FLAGS");
	/* columns: id 16, state 20, name 28, unit 24, since 16 */
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(apps, i);
		char b[32];
		struct buf flags = BUF_INIT;
		if (jget_bool(a, "overdue"))
			buf_printf(&flags, "overdue(%lld) ", (long long)jget_int(a, "reminders"));
		if (jget_bool(a, "unreachable"))
			buf_adds(&flags, "cannot-reach-applicant");
		cell(jget_str(a, "id"), 16);
		cell(jget_str(a, "state"), 20);
		cell(jget_str(a, "name"), 28);
		cell(jget_str(a, "unit"), 24);
		cell(when(a, "since", b, sizeof(b)), 16);
		printf("%s\n", flags.p ? flags.p : "");
		buf_free(&flags);
	}
	printf("%zu application(s)\n", n);
}

static void print_timeline(json_object *app)
{
	json_object *h = jget(app, "history");
	printf("\nTimeline:\n");
	for (size_t i = 0; h && i < json_object_array_length(h); i++) {
		json_object *e = json_object_array_get_idx(h, i);
		char b[32];
		printf("  %-16s %-26s", when(e, "at", b, sizeof(b)), jget_str(e, "event"));
		if (jget_str(e, "to") && jget_str(e, "from"))
			printf(" %s -> %s", jget_str(e, "from"), jget_str(e, "to"));
		else if (jget_str(e, "to"))
			printf(" -> %s", jget_str(e, "to"));
		if (jget_str(e, "actor"))
			printf("  by %s", jget_str(e, "actor"));
		if (jget_str(e, "detail"))
			printf("  (%s)", jget_str(e, "detail"));
		json_object *ns = jget(e, "notices");
		if (ns && json_object_array_length(ns))
			printf("  [%zu notice(s)]", json_object_array_length(ns));
		printf("\n");
	}
}

static void print_notices(json_object *list)
{
	size_t n = list ? json_object_array_length(list) : 0;
	if (n == 0)
		return;
	printf("\n%-34s %-22s %-6s %-32s %-8s %-3s %s\n", "NOTICE", "KIND", "MEDIUM", "TO", "STATE",
	       "TRY", "DONE/NEXT");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(list, i);
		char b[32], masked[48];
		const char *to = jget_str(o, "to");
		if (to && to[0] == '+')
			to = mask_phone(to, masked, sizeof(masked));
		const char *state = jget_str(o, "state");
		const char *t = when(o, state && strcmp(state, "queued") == 0 ? "next_attempt" : "done_at",
				     b, sizeof(b));
		cell(jget_str(o, "id"), 34);
		cell(jget_str(o, "kind"), 22);
		cell(jget_str(o, "medium"), 6);
		cell(to, 32);
		cell(state, 8);
		printf("%-3lld %s%s%s\n", (long long)jget_int(o, "attempts"), t,
		       jget_str(o, "last_error") ? "  " : "",
		       jget_str(o, "last_error") ? jget_str(o, "last_error") : "");
	}
}

static void print_show(json_object *r)
{
	json_object *a = jget(r, "app");
	char b[32];
	printf("%s  %s\n", jget_str(a, "id"), jget_str(a, "state"));
	static const char *const fields[] = { "name", "email", "mobile", "tc", "title", "unit" };
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		char path[32];
		snprintf(path, sizeof(path), "applicant.%s", fields[i]);
		printf("  %-12s %s\n", fields[i], or_dash(jget_str(a, path)));
	}
	printf("  %-12s %s (%s)\n", "unit office", or_dash(jget_str(a, "unit.name")),
	       or_dash(jget_str(a, "unit.reply_to")));
	printf("  %-12s %s\n", "opened", when(a, "opened", b, sizeof(b)));
	printf("  %-12s %s\n", "state since", when(a, "state_since", b, sizeof(b)));
	printf("  %-12s %s\n", "next timer", when(a, "clock.next", b, sizeof(b)));
	if (jget(a, "credentials"))
		printf("  %-12s %s, expires %s\n", "credentials", or_dash(jget_str(a, "credentials.flow")),
		       when(a, "credentials.expires", b, sizeof(b)));
	if (jget_str(a, "tracking_no"))
		printf("  %-12s %s\n", "tracking no", jget_str(a, "tracking_no"));
	if (jget(a, "unreachable"))
		printf("  %-12s %s\n", "UNREACHABLE", or_dash(jget_str(a, "unreachable.reason")));
	if (jget_str(a, "reject_reason"))
		printf("  %-12s %s\n", "reason", jget_str(a, "reject_reason"));
	print_timeline(a);
	print_notices(jget(r, "notices"));
}

static int print_kv(void *ctx, const char *key, json_object *v)
{
	(void)ctx;
	printf("  %-22s %s\n", key, json_object_get_string(v));
	return 0;
}

static void print_object(const char *title, json_object *o)
{
	if (o == NULL)
		return;
	printf("%s\n", title);
	json_object_object_foreach(o, key, v)
		print_kv(NULL, key, v);
}

static void print_status(json_object *r)
{
	char b[32];
	printf("applications: %lld (overdue %lld, cannot reach applicant %lld)\n",
	       (long long)jget_int(r, "applications"), (long long)jget_int(r, "overdue"),
	       (long long)jget_int(r, "unreachable"));
	print_object("by state:", jget(r, "states"));
	print_object("notices:", jget(r, "notices"));
	json_object *src = jget(r, "source");
	printf("mailbox: last poll %s, uid %lld (uidvalidity %lld), live since %s\n",
	       when(src, "last_poll", b, sizeof(b)), (long long)jget_int(src, "last_uid"),
	       (long long)jget_int(src, "uidvalidity"), when(src, "go_live", b, sizeof(b)));
	if (jget(src, "catchup"))
		printf("caught up on the first start: %lld message(s) older than %s recorded without "
		       "notices\n", (long long)jget_int(src, "catchup.messages"),
		       when(src, "catchup.before", b, sizeof(b)));
	print_object("messages by kind:", jget(r, "kinds"));
	if (jget(r, "outbox"))
		print_object("outbox (daemon):", jget(r, "outbox"));
	printf("daemon: %s\n", jget_bool(r, "daemon") ? "running" : "not running");
}

static void print_report(json_object *r)
{
	json_object *rep = jget(r, "report");
	for (size_t i = 0; rep && i < json_object_array_length(rep); i++) {
		json_object *it = json_object_array_get_idx(rep, i);
		printf("%s %s%s%s\n", jget_bool(it, "ok") ? "ok     " : "refused",
		       jget_str(it, "app") ? jget_str(it, "app") : "",
		       jget_str(it, "app") ? ": " : "", or_dash(jget_str(it, "message")));
	}
}

static void print_answer(const char *cmd, json_object *r, bool json)
{
	if (json) {
		printf("%s\n", jpretty(r));
		return;
	}
	if (!jget_bool(r, "ok") && jget(r, "report") == NULL) {
		fprintf(stderr, "eimzactl: %s\n", or_dash(jget_str(r, "error")));
		return;
	}
	if (strcmp(cmd, "list") == 0)
		print_list(r);
	else if (strcmp(cmd, "show") == 0)
		print_show(r);
	else if (strcmp(cmd, "status") == 0)
		print_status(r);
	else if (strcmp(cmd, "outbox") == 0)
		print_notices(jget(r, "notices"));
	else
		print_report(r);
}

/* ---- explain: local, no state ---- */

static int explain(struct eimzad *ez, const char *file, const struct opts *o)
{
	struct buf b = BUF_INIT;
	char *err = NULL;
	int rc = strcmp(file, "-") == 0 ? file_read("/dev/stdin", 0, &b, &err)
					: file_read(file, 0, &b, &err);
	if (rc < 0) {
		fprintf(stderr, "eimzactl: %s\n", err);
		free(err);
		buf_free(&b);
		return EX_NOINPUT;
	}
	struct classify_ctx cc;
	ez_classify_ctx(ez, &cc, 0);
	struct event ev;
	event_init(&ev);
	classify_raw(&cc, b.p, b.len, &ev);
	json_object *j = event_to_json(&ev, o->show_secrets);
	if (o->json) {
		printf("%s\n", jpretty(j));
	} else {
		printf("kind:         %s\n", jget_str(j, "kind"));
		printf("rule:         %s\n", or_dash(jget_str(j, "rule")));
		printf("trusted:      %s (%s)\n", jget_bool(j, "trusted") ? "yes" : "no",
		       or_dash(jget_str(j, "trust_reason")));
		printf("forwarded by: %s\n", or_dash(jget_str(j, "forwarded_by")));
		printf("original:     %s\n", jtext(jget(j, "original")));
		printf("fields:       %s\n", jpretty(jget(j, "fields")));
		json_object *p = jget(j, "problems");
		for (size_t i = 0; p && i < json_object_array_length(p); i++)
			printf("problem:      %s\n", json_object_get_string(json_object_array_get_idx(p, i)));
	}
	json_object_put(j);
	event_free(&ev);
	buf_free(&b);
	return EX_OK;
}

/* ---- building requests ---- */

static json_object *req_new(const char *cmd)
{
	json_object *r = json_object_new_object();
	jset_str(r, "cmd", cmd);
	return r;
}

static int need_args(int argc, int want, const char *cmd)
{
	if (argc < want) {
		fprintf(stderr, "eimzactl: %s: missing arguments (see eimzactl --help)\n", cmd);
		return -1;
	}
	return 0;
}

static json_object *build_request(int argc, char **argv, const struct opts *o, struct eimzad *ez,
				  int *rc);

/* Send the request to the daemon, or run it here when none is running. */
static json_object *execute(struct eimzad *ez, json_object *req, const struct opts *o, int *rc)
{
	char *path = ctl_socket_path(ez->conf);
	bool unreachable = false;
	char *err = NULL;
	json_object *res = ctl_call(path, req, &unreachable, &err);
	free(path);
	if (res != NULL || !unreachable) {
		if (res == NULL) {
			fprintf(stderr, "eimzactl: %s\n", err);
			*rc = EX_UNAVAILABLE;
		}
		free(err);
		return res;
	}
	free(err);
	err = NULL;
	bool change = ctl_is_change(jget_str(req, "cmd"));
	int r = ez_open(ez, change ? EZ_TOOL : EZ_READ, &err);
	if (r == STORE_EBUSY) {
		fprintf(stderr, "eimzactl: eimzad holds the state directory but its control socket "
				"does not answer: %s\n", err);
		*rc = EX_TEMPFAIL;
	} else if (r < 0) {
		fprintf(stderr, "eimzactl: %s\n", err);
		*rc = EX_IOERR;
	}
	free(err);
	if (r != 0)
		return NULL;
	char *user = unix_user();
	res = ctl_execute(ez, req, user);
	free(user);
	(void)o;
	return res;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' }, { "now", required_argument, NULL, 'N' },
		{ "show-secrets", no_argument, NULL, 'S' }, { "dry-run", no_argument, NULL, 'D' },
		{ "overdue", no_argument, NULL, 'o' }, { "state", required_argument, NULL, 's' },
		{ "unit", required_argument, NULL, 'u' }, { "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int ch;
	/* "+" would stop at the command; options may follow it, so permute. */
	while ((ch = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->conf = optarg; break;
		case 'j': o->json = true; break;
		case 'N': o->now = optarg; break;
		case 'S': o->show_secrets = true; break;
		case 'D': o->dry_run = true; break;
		case 'o': o->overdue = true; break;
		case 's': o->state = optarg; break;
		case 'u': o->unit = optarg; break;
		case 'r': o->reason = optarg; break;
		case 'h': usage(stdout); exit(EX_OK);
		default: usage(stderr); return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .conf = SYSCONFDIR "/eimzad/eimzad.conf" };
	if (parse_opts(argc, argv, &o) < 0)
		return EX_USAGE;
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	log_init("eimzactl", false);
	log_setlevel(LOG_LVL_WARN);
	struct eimzad ez;
	ez_init(&ez);
	struct conf_errors e = { 0 };
	if (ez_load(&ez, o.conf, &e) < 0) {
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "%s\n", e.msgs[i]);
		conf_errors_free(&e);
		ez_close(&ez);
		return EX_CONFIG;
	}
	char *err = NULL;
	if (o.now && ez_set_now(&ez, o.now, &err) < 0) {
		fprintf(stderr, "eimzactl: %s\n", err);
		free(err);
		ez_close(&ez);
		return EX_USAGE;
	}
	int rc = EX_OK;
	if (strcmp(argv[0], "explain") == 0) {
		rc = need_args(argc, 2, "explain") < 0 ? EX_USAGE : explain(&ez, argv[1], &o);
		ez_close(&ez);
		return rc;
	}
	json_object *req = build_request(argc, argv, &o, &ez, &rc);
	json_object *res = req ? execute(&ez, req, &o, &rc) : NULL;
	if (res) {
		print_answer(argv[0], res, o.json);
		rc = (int)jget_int(res, "code");
	}
	json_object_put(res);
	json_object_put(req);
	ez_close(&ez);
	return rc;
}

/* ---- import: parse here (the file is the caller's), send rows ---- */

/* One accepted row as the request carries it; -1 for a bad state/since. */
static int import_row(const struct applicant_table *tab, size_t i, json_object *rows,
		      const char *file)
{
	const struct applicant *a = &tab->rows[i];
	json_object *r = json_object_new_object();
	jset_str(r, "name", a->name);
	jset_str(r, "email", a->email);
	jset_str(r, "mobile", a->mobile);
	jset_str(r, "tc", a->tc);
	jset_str(r, "title", a->title);
	jset_str(r, "unit", a->unit);
	jset_int(r, "row", a->row);
	const char *state = applicant_table_extra(tab, i, "state");
	const char *since = applicant_table_extra(tab, i, "since");
	const char *unit_email = applicant_table_extra(tab, i, "unit_email");
	enum app_state st;
	if (!str_empty(state) && app_state_parse(state, &st) < 0) {
		fprintf(stderr, "%s:%d: unknown state '%s' (row skipped)\n", file, a->row, state);
		json_object_put(r);
		return -1;
	}
	time_t t = 0;
	if (!str_empty(since) && cal_parse_local(since, &t) < 0) {
		fprintf(stderr, "%s:%d: since '%s' is not YYYY-MM-DD (row skipped)\n", file, a->row, since);
		json_object_put(r);
		return -1;
	}
	if (!str_empty(state))
		jset_str(r, "state", state);
	if (t)
		jset_time(r, "since", t);
	if (!str_empty(unit_email))
		jset_str(r, "unit_email", unit_email);
	json_object_array_add(rows, r);
	return 0;
}

static json_object *build_import(const char *file, struct eimzad *ez, const struct opts *o, int *rc)
{
	(void)o;
	struct buf b = BUF_INIT;
	char *err = NULL;
	if (file_read(file, 64u << 20, &b, &err) < 0) {
		fprintf(stderr, "eimzactl: %s\n", err);
		free(err);
		buf_free(&b);
		*rc = EX_NOINPUT;
		return NULL;
	}
	struct applicant_table tab;
	int r = applicants_from_csv(b.p, b.len, ez->conf, &tab, &err);
	buf_free(&b);
	if (r < 0) {
		fprintf(stderr, "eimzactl: %s: %s\n", file, err);
		free(err);
		applicant_table_free(&tab);
		*rc = EX_DATAERR;
		return NULL;
	}
	for (size_t i = 0; i < tab.nerrors; i++)
		fprintf(stderr, "%s:%d: %s (row skipped)\n", file, tab.errors[i].row, tab.errors[i].reason);
	json_object *rows = json_object_new_array();
	size_t bad = tab.nerrors;
	for (size_t i = 0; i < tab.nrows; i++)
		bad += import_row(&tab, i, rows, file) < 0;
	applicant_table_free(&tab);
	if (json_object_array_length(rows) == 0) {
		fprintf(stderr, "eimzactl: %s: no usable rows\n", file);
		json_object_put(rows);
		*rc = EX_DATAERR;
		return NULL;
	}
	json_object *req = req_new("import");
	jset(req, "rows", rows);
	jset_int(req, "skipped", (int64_t)bad);
	return req;
}

/* Verb commands: approve ID, cancel ID, reject ID, mark ID STEP. */
static json_object *build_simple(int argc, char **argv, const struct opts *o, int *rc)
{
	const char *cmd = argv[0];
	int want = strcmp(cmd, "mark") == 0 || strcmp(cmd, "edit") == 0 ||
		   strcmp(cmd, "resend") == 0 ? 3 : 2;
	if (need_args(argc, want, cmd) < 0) {
		*rc = EX_USAGE;
		return NULL;
	}
	json_object *r = req_new(cmd);
	jset_str(r, "id", argv[1]);
	if (strcmp(cmd, "reject") == 0)
		jset_str(r, "reason", o->reason);
	if (strcmp(cmd, "mark") == 0)
		jset_str(r, "step", argv[2]);
	if (strcmp(cmd, "resend") == 0)
		jset_str(r, "notice", argv[2]);
	if (strcmp(cmd, "show") == 0 && o->show_secrets)
		jset_bool(r, "show_secrets", true);
	if (strcmp(cmd, "edit") == 0) {
		char *eq = strchr(argv[2], '=');
		if (eq == NULL) {
			fprintf(stderr, "eimzactl: edit: write FIELD=VALUE\n");
			json_object_put(r);
			*rc = EX_USAGE;
			return NULL;
		}
		char *field = xstrndup(argv[2], (size_t)(eq - argv[2]));
		jset_str(r, "field", field);
		jset_str(r, "value", eq + 1);
		free(field);
	}
	return r;
}

static json_object *build_request(int argc, char **argv, const struct opts *o, struct eimzad *ez,
				  int *rc)
{
	const char *cmd = argv[0];
	static const char *const simple[] = { "approve", "reject", "mark", "cancel", "edit", "resend",
					      "show" };
	for (size_t i = 0; i < ARRAY_LEN(simple); i++)
		if (strcmp(cmd, simple[i]) == 0)
			return build_simple(argc, argv, o, rc);
	if (strcmp(cmd, "import") == 0) {
		if (need_args(argc, 2, cmd) < 0) {
			*rc = EX_USAGE;
			return NULL;
		}
		return build_import(argv[1], ez, o, rc);
	}
	json_object *r = req_new(cmd);
	if (strcmp(cmd, "list") == 0) {
		jset_str(r, "state", o->state);
		jset_str(r, "unit", o->unit);
		jset_bool(r, "overdue", o->overdue);
	} else if (strcmp(cmd, "outbox") == 0) {
		jset_str(r, "filter", argc > 1 ? argv[1] : "pending");
	} else if (strcmp(cmd, "purge") == 0) {
		jset_bool(r, "dry_run", o->dry_run);
	} else if (strcmp(cmd, "status") != 0) {
		fprintf(stderr, "eimzactl: unknown command '%s' (see eimzactl --help)\n", cmd);
		json_object_put(r);
		*rc = EX_USAGE;
		return NULL;
	}
	if (o->show_secrets)
		jset_bool(r, "show_secrets", true);
	return r;
}
