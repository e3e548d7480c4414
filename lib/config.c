/* config.c: see config.h. */
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum conf_type {
	CT_STR,      /* char * */
	CT_PATH,     /* char *, relative to the config file's folder */
	CT_INT,      /* int, [min, max] */
	CT_SIZE,     /* size_t, with k/M suffixes */
	CT_DOUBLE,   /* double, [min, max] */
	CT_BOOL,     /* bool: yes/no/true/false/on/off/1/0 */
	CT_PERIOD,   /* struct period */
	CT_LIST,     /* char **, repeatable, space or comma separated */
	CT_ENUM,     /* int, index into names */
	CT_CLOCK,    /* int minutes, HH:MM */
	CT_CLOCKLIST,/* int *, -1 terminated */
	CT_WEEKDAY,  /* int 0..6 */
};

struct conf_opt {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *defval;
	long min, max;
	const char *const *names;     /* CT_ENUM: names, NULL-terminated */
};

static const char *const source_names[] = { "imap", "maildir", NULL };
static const char *const tls_names[] = { "tls", "starttls", "none", NULL };
static const char *const mail_channel_names[] = { "smtp", "sms", "file", "none", NULL };
static const char *const sms_auth_names[] = { "none", "basic", "bearer", "header", NULL };
static const char *const sms_enc_names[] = { "gsm7-turkish", "gsm7", "ucs2", "ascii", NULL };

#define OFF(f) offsetof(struct config, f)
#define STR(s, n, f, d) { s, n, CT_STR, OFF(f), d, 0, 0, NULL }
#define PATH(s, n, f, d) { s, n, CT_PATH, OFF(f), d, 0, 0, NULL }
#define INT(s, n, f, d, lo, hi) { s, n, CT_INT, OFF(f), d, lo, hi, NULL }
#define SIZE(s, n, f, d) { s, n, CT_SIZE, OFF(f), d, 0, 0, NULL }
#define DBL(s, n, f, d, lo, hi) { s, n, CT_DOUBLE, OFF(f), d, lo, hi, NULL }
#define BOOL(s, n, f, d) { s, n, CT_BOOL, OFF(f), d, 0, 0, NULL }
#define PER(s, n, f, d) { s, n, CT_PERIOD, OFF(f), d, 0, 0, NULL }
#define LIST(s, n, f, d) { s, n, CT_LIST, OFF(f), d, 0, 0, NULL }
#define ENUM(s, n, f, d, names) { s, n, CT_ENUM, OFF(f), d, 0, 0, names }
#define CLOCK(s, n, f, d) { s, n, CT_CLOCK, OFF(f), d, 0, 0, NULL }
#define CLOCKS(s, n, f, d) { s, n, CT_CLOCKLIST, OFF(f), d, 0, 0, NULL }
#define WDAY(s, n, f, d) { s, n, CT_WEEKDAY, OFF(f), d, 0, 0, NULL }

/* Every option, one row each. Defaults follow DESIGN's workflow table. */
static const struct conf_opt conf_opts[] = {
	PATH("general", "state_dir", general.state_dir, "/var/lib/eimzad"),
	PATH("general", "templates_dir", general.templates_dir, "/usr/local/share/eimzad/templates"),
	PATH("general", "rules_file", general.rules_file, "rules.conf"),
	PATH("general", "holidays_file", general.holidays_file, "holidays.conf"),
	STR("general", "timezone", general.timezone, "Europe/Istanbul"),
	STR("general", "institution_name", general.institution_name, ""),
	LIST("general", "institution_domains", general.institution_domains, ""),
	LIST("general", "languages", general.languages, "tr en"),
	STR("general", "tag_prefix", general.tag_prefix, "EIMZA"),
	PER("general", "catchup_cutoff", general.catchup_cutoff, "30d"),
	PER("general", "retention", general.retention, "365d"),
	BOOL("general", "store_access_codes", general.store_access_codes, "no"),
	PATH("general", "control_socket", general.control_socket, ""),
	STR("general", "helpdesk", general.helpdesk, ""),

	LIST("officers", "ebys", officers.ebys, ""),
	LIST("officers", "esign", officers.esign, ""),
	LIST("officers", "escalate_to", officers.escalate_to, ""),

	LIST("trust", "authserv_id", trust.authserv_ids, ""),
	LIST("trust", "kamusm_senders", trust.kamusm_senders,
	     "bilgilendirme@kamusm.gov.tr bilgi@kamusm.gov.tr basvuru@kamusm.gov.tr"),
	LIST("trust", "link_hosts", trust.link_hosts, "*.kamusm.gov.tr"),
	BOOL("trust", "require_auth", trust.require_auth, "yes"),
	INT("trust", "forward_depth", trust.forward_depth, "3", 0, 10),

	ENUM("source", "type", imap.type, "imap", source_names),
	STR("source", "host", imap.host, ""),
	INT("source", "port", imap.port, "993", 1, 65535),
	ENUM("source", "tls", imap.tls, "tls", tls_names),
	PATH("source", "ca_file", imap.ca_file, ""),
	STR("source", "user", imap.user, ""),
	PATH("source", "password_file", imap.password_file, ""),
	STR("source", "folder", imap.folder, "INBOX"),
	STR("source", "other_folder", imap.other_folder, ""),
	PATH("source", "maildir", imap.maildir, ""),
	BOOL("source", "idle", imap.idle, "yes"),
	PER("source", "poll_interval", imap.poll_interval, "60s"),
	PER("source", "timeout", imap.timeout, "60s"),
	PER("source", "backoff_max", imap.backoff_max, "300s"),
	INT("source", "fetch_batch", imap.fetch_batch, "500", 1, 100000),
	BOOL("source", "allow_plain_loopback", imap.allow_plain_loopback, "no"),
	SIZE("source", "max_message_size", imap.max_message_size, "50M"),

	ENUM("smtp", "channel", smtp.mail_channel, "smtp", mail_channel_names),
	STR("smtp", "host", smtp.host, ""),
	INT("smtp", "port", smtp.port, "587", 1, 65535),
	/* starttls (required, port 587), tls (implicit, port 465: through
	 * channel_smtp.c's tunnel), none (loopback hosts only) */
	ENUM("smtp", "tls", smtp.tls, "starttls", tls_names),
	PATH("smtp", "ca_file", smtp.ca_file, ""),
	STR("smtp", "user", smtp.user, ""),
	PATH("smtp", "password_file", smtp.password_file, ""),
	STR("smtp", "from", smtp.from, ""),
	STR("smtp", "reply_to", smtp.reply_to, ""),
	STR("smtp", "helo", smtp.helo, ""),
	STR("smtp", "message_id_domain", smtp.message_id_domain, ""),
	PER("smtp", "timeout", smtp.timeout, "60s"),
	INT("smtp", "sessions", smtp.sessions, "2", 1, 32),
	INT("smtp", "batch", smtp.batch, "100", 1, 10000),

	ENUM("sms", "channel", sms.sms_channel, "sms", mail_channel_names),
	STR("sms", "profile", sms.profile, "json"),
	STR("sms", "url", sms.url, ""),
	STR("sms", "method", sms.method, "POST"),
	ENUM("sms", "auth", sms.auth, "none", sms_auth_names),
	STR("sms", "auth_header", sms.auth_header, "X-API-Key"),
	STR("sms", "user", sms.user, ""),
	PATH("sms", "secret_file", sms.secret_file, ""),
	STR("sms", "sender", sms.sender, ""),
	STR("sms", "content_type", sms.content_type, "application/json"),
	STR("sms", "body_template", sms.body_template,
	    "{\"to\":\"{{to}}\",\"from\":\"{{sender}}\",\"text\":\"{{text}}\"}"),
	STR("sms", "success_status", sms.success_status, "2xx"),
	STR("sms", "success_field", sms.success_field, ""),
	STR("sms", "id_field", sms.id_field, ""),
	ENUM("sms", "encoding", sms.encoding, "gsm7-turkish", sms_enc_names),
	INT("sms", "max_segments", sms.max_segments, "3", 1, 10),
	BOOL("sms", "truncate", sms.truncate, "no"),
	STR("sms", "default_country", sms.default_country, "TR"),
	DBL("sms", "rate", sms.rate, "5", 0, 100000),
	INT("sms", "concurrency", sms.concurrency, "4", 1, 256),
	PER("sms", "connect_timeout", sms.connect_timeout, "10s"),
	PER("sms", "timeout", sms.timeout, "30s"),
	PATH("sms", "ca_file", sms.ca_file, ""),

	PATH("outbox", "file_dir", outbox.file_dir, ""),
	PER("outbox", "max_age", outbox.max_age, "3d"),
	PER("outbox", "retry_min", outbox.retry_min, "60s"),
	PER("outbox", "retry_max", outbox.retry_max, "3600s"),
	INT("outbox", "global_concurrency", outbox.global_concurrency, "16", 1, 1024),

	PER("workflow", "remind_requested", workflow.remind_requested, "4wh"),
	PER("workflow", "remind_approved", workflow.remind_approved, "1wd"),
	PER("workflow", "remind_submitted", workflow.remind_submitted, "7d"),
	PER("workflow", "remind_credentials", workflow.remind_credentials, "2wd"),
	PER("workflow", "repeat_credentials", workflow.repeat_credentials, "3wd"),
	PER("workflow", "remind_commitment", workflow.remind_commitment, "1wd"),
	PER("workflow", "remind_posted", workflow.remind_posted, "30d"),
	PER("workflow", "remind_shipped", workflow.remind_shipped, "15d"),
	INT("workflow", "reminders_before_escalation", workflow.reminders_before_escalation, "3", 1, 100),
	PER("workflow", "escalation_interval", workflow.escalation_interval, "5wd"),
	PER("workflow", "stale_after", workflow.stale_after, "60d"),
	PER("workflow", "stale_interval", workflow.stale_interval, "7d"),
	PER("workflow", "password_validity", workflow.password_validity, "6mo"),
	PER("workflow", "password_warn", workflow.password_warn, "30d"),
	WDAY("workflow", "posting_day", workflow.posting_day, "friday"),
	CLOCK("workflow", "work_start", workflow.work_start, "08:30"),
	CLOCK("workflow", "work_end", workflow.work_end, "17:30"),
	CLOCK("workflow", "sms_start", workflow.sms_start, "09:00"),
	CLOCK("workflow", "sms_end", workflow.sms_end, "19:00"),
	CLOCKS("workflow", "reminder_passes", workflow.reminder_passes, "09:00 14:00"),
	BOOL("workflow", "notify_unit", workflow.notify_unit, "yes"),
};

void conf_errors_add(struct conf_errors *e, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	e->msgs = xreallocarray(e->msgs, e->n + 1, sizeof(*e->msgs));
	if (line > 0)
		e->msgs[e->n++] = xasprintf("%s:%d: %s", file, line, msg);
	else
		e->msgs[e->n++] = xasprintf("%s: %s", file, msg);
	free(msg);
}

void conf_errors_free(struct conf_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* ---- value parsers ---- */

int period_parse(const char *s, struct period *out, char **err)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (end == s || errno || n < 0)
		return seterr(err, "'%s' is not a duration (like 30s, 5m, 4h, 7d, 4wh, 2wd, 6mo)", s);
	static const struct { const char *suffix; enum period_unit unit; int64_t mult; } units[] = {
		{ "s", PERIOD_SECONDS, 1 }, { "", PERIOD_SECONDS, 1 },
		{ "m", PERIOD_SECONDS, 60 }, { "h", PERIOD_SECONDS, 3600 },
		{ "d", PERIOD_SECONDS, 86400 }, { "w", PERIOD_SECONDS, 7 * 86400 },
		{ "wh", PERIOD_WORK_MINUTES, 60 }, { "wm", PERIOD_WORK_MINUTES, 1 },
		{ "wd", PERIOD_WORK_DAYS, 1 }, { "mo", PERIOD_MONTHS, 1 },
	};
	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (n > INT64_MAX / units[i].mult / 2)
			return seterr(err, "'%s' is too long a duration", s);
		out->unit = units[i].unit;
		out->n = n * units[i].mult;
		return 0;
	}
	return seterr(err, "'%s': unknown unit '%s' (use s, m, h, d, w, wh, wd, mo)", s, end);
}

char *period_fmt(const struct period *p, char *buf, size_t len)
{
	switch (p->unit) {
	case PERIOD_SECONDS:
		if (p->n % 86400 == 0 && p->n)
			snprintf(buf, len, "%lldd", (long long)(p->n / 86400));
		else if (p->n % 3600 == 0 && p->n)
			snprintf(buf, len, "%lldh", (long long)(p->n / 3600));
		else if (p->n % 60 == 0 && p->n)
			snprintf(buf, len, "%lldm", (long long)(p->n / 60));
		else
			snprintf(buf, len, "%llds", (long long)p->n);
		break;
	case PERIOD_WORK_MINUTES:
		if (p->n % 60 == 0)
			snprintf(buf, len, "%lldwh", (long long)(p->n / 60));
		else
			snprintf(buf, len, "%lldwm", (long long)p->n);
		break;
	case PERIOD_WORK_DAYS:
		snprintf(buf, len, "%lldwd", (long long)p->n);
		break;
	case PERIOD_MONTHS:
		snprintf(buf, len, "%lldmo", (long long)p->n);
		break;
	}
	return buf;
}

bool period_is_zero(const struct period *p)
{
	return p->n == 0;
}

int clock_parse(const char *s, int *minutes, char **err)
{
	int h, m;
	char tail;
	if (sscanf(s, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
	    (h == 24 && m != 0))
		return seterr(err, "'%s' is not a time of day (HH:MM)", s);
	*minutes = h * 60 + m;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (str_ieq(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (str_ieq(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int parse_weekday(const char *s, int *out)
{
	static const char *const en[] = { "sunday", "monday", "tuesday", "wednesday",
					  "thursday", "friday", "saturday" };
	static const char *const tr[] = { "pazar", "pazartesi", "sali", "carsamba",
					  "persembe", "cuma", "cumartesi" };
	for (int i = 0; i < 7; i++)
		if (str_ieq(s, en[i]) || str_ieq(s, tr[i]) || (strlen(s) == 3 && strncasecmp(s, en[i], 3) == 0)) {
			*out = i;
			return 0;
		}
	return -1;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || errno)
		return -1;
	unsigned long long mult = 1;
	if (str_ieq(end, "k") || str_ieq(end, "kb"))
		mult = 1024;
	else if (str_ieq(end, "m") || str_ieq(end, "mb"))
		mult = 1024 * 1024;
	else if (str_ieq(end, "g") || str_ieq(end, "gb"))
		mult = 1024ULL * 1024 * 1024;
	else if (*end)
		return -1;
	*out = (size_t)(n * mult);
	return 0;
}

/* Split on spaces and commas, appending to *v. Quoted values are one item. */
static char **list_add_all(char **v, const char *value)
{
	char *copy = xstrdup(value), *save = NULL;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save))
		v = strv_add(v, t);
	free(copy);
	return v;
}

static char *resolve_path(const char *base_dir, const char *value)
{
	if (value[0] == '\0' || value[0] == '/' || base_dir == NULL)
		return xstrdup(value);
	return xasprintf("%s/%s", base_dir, value);
}

/* Set one option from a string; 0 or -1 with *err. `initial` marks the
 * defaults pass, where lists are replaced rather than extended. */
static int opt_set(struct config *c, const struct conf_opt *o, const char *value,
		   const char *base_dir, bool initial, char **err)
{
	void *f = (char *)c + o->offset;
	switch (o->type) {
	case CT_STR:
		free(*(char **)f);
		*(char **)f = xstrdup(value);
		return 0;
	case CT_PATH:
		free(*(char **)f);
		*(char **)f = resolve_path(base_dir, value);
		return 0;
	case CT_INT: {
		char *end;
		errno = 0;
		long n = strtol(value, &end, 10);
		if (end == value || *end || errno)
			return seterr(err, "%s: '%s' is not a number", o->name, value);
		if (n < o->min || n > o->max)
			return seterr(err, "%s: %ld is out of range (%ld to %ld)", o->name, n, o->min, o->max);
		*(int *)f = (int)n;
		return 0;
	}
	case CT_SIZE:
		if (parse_size(value, (size_t *)f) < 0)
			return seterr(err, "%s: '%s' is not a size (like 512k, 50M)", o->name, value);
		return 0;
	case CT_DOUBLE: {
		char *end;
		double d = strtod(value, &end);
		if (end == value || *end)
			return seterr(err, "%s: '%s' is not a number", o->name, value);
		if (d < (double)o->min || d > (double)o->max)
			return seterr(err, "%s: %g is out of range (%ld to %ld)", o->name, d, o->min, o->max);
		*(double *)f = d;
		return 0;
	}
	case CT_BOOL:
		if (parse_bool(value, (bool *)f) < 0)
			return seterr(err, "%s: '%s' is not yes or no", o->name, value);
		return 0;
	case CT_PERIOD: {
		char *e = NULL;
		if (period_parse(value, (struct period *)f, &e) < 0) {
			seterr(err, "%s: %s", o->name, e);
			free(e);
			return -1;
		}
		return 0;
	}
	case CT_LIST:
		if (initial) {
			strv_free(*(char ***)f);
			*(char ***)f = NULL;
		}
		*(char ***)f = list_add_all(*(char ***)f, value);
		return 0;
	case CT_ENUM:
		for (int i = 0; o->names[i]; i++)
			if (str_ieq(value, o->names[i])) {
				*(int *)f = i;
				return 0;
			}
		{
			struct buf b = BUF_INIT;
			for (int i = 0; o->names[i]; i++)
				buf_printf(&b, "%s%s", i ? ", " : "", o->names[i]);
			seterr(err, "%s: '%s' is not one of: %s", o->name, value, b.p);
			buf_free(&b);
		}
		return -1;
	case CT_CLOCK: {
		char *e = NULL;
		if (clock_parse(value, (int *)f, &e) < 0) {
			seterr(err, "%s: %s", o->name, e);
			free(e);
			return -1;
		}
		return 0;
	}
	case CT_CLOCKLIST: {
		char **items = list_add_all(NULL, value);
		size_t n = strv_len(items);
		int *v = xcalloc(n + 1, sizeof(int));
		for (size_t i = 0; i < n; i++) {
			char *e = NULL;
			if (clock_parse(items[i], &v[i], &e) < 0) {
				seterr(err, "%s: %s", o->name, e);
				free(e);
				free(v);
				strv_free(items);
				return -1;
			}
		}
		v[n] = -1;
		strv_free(items);
		free(*(int **)f);
		*(int **)f = v;
		return 0;
	}
	case CT_WEEKDAY:
		if (parse_weekday(value, (int *)f) < 0)
			return seterr(err, "%s: '%s' is not a day of the week", o->name, value);
		return 0;
	}
	return seterr(err, "%s: internal: unknown option type", o->name);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_LEN(conf_opts); i++) {
		char *err = NULL;
		if (opt_set(c, &conf_opts[i], conf_opts[i].defval, NULL, true, &err) < 0)
			fatalx("config: bad built-in default: %s", err);
	}
}

static const struct conf_opt *opt_find(const char *section, const char *key)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_opts); i++)
		if (strcmp(conf_opts[i].section, section) == 0 && strcmp(conf_opts[i].name, key) == 0)
			return &conf_opts[i];
	return NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_opts); i++)
		if (strcmp(conf_opts[i].section, section) == 0)
			return true;
	return false;
}

struct load_ctx {
	struct config *c;
	char *base_dir;
	/* Lists are replaced on their first assignment in the file, then
	 * extended by repeated lines. */
	const struct conf_opt **seen;
	size_t nseen;
};

static int config_handler(void *vctx, const char *section, const char *name, const char *key,
			  const char *value, const char *file, int line, struct conf_errors *errs)
{
	struct load_ctx *ctx = vctx;
	if (name != NULL) {
		conf_errors_add(errs, file, line, "[%s %s]: this section takes no name", section, name);
		return -1;
	}
	if (key == NULL) {
		if (!section_known(section)) {
			conf_errors_add(errs, file, line, "unknown section [%s]", section);
			return -1;
		}
		return 0;
	}
	const struct conf_opt *o = opt_find(section, key);
	if (o == NULL) {
		conf_errors_add(errs, file, line, "unknown option '%s' in [%s]", key, section);
		return -1;
	}
	bool first = true;
	for (size_t i = 0; i < ctx->nseen; i++)
		if (ctx->seen[i] == o)
			first = false;
	if (first) {
		ctx->seen = xreallocarray(ctx->seen, ctx->nseen + 1, sizeof(*ctx->seen));
		ctx->seen[ctx->nseen++] = o;
	}
	char *err = NULL;
	if (opt_set(ctx->c, o, value, ctx->base_dir, first, &err) < 0) {
		conf_errors_add(errs, file, line, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

int config_load(struct config *c, const char *path, struct conf_errors *errs)
{
	size_t before = errs->n;
	char *tmp = xstrdup(path);
	struct load_ctx ctx = { .c = c, .base_dir = xstrdup(dirname(tmp)) };
	free(tmp);
	free(c->path);
	c->path = xstrdup(path);
	ini_read(path, config_handler, &ctx, errs);
	free(ctx.base_dir);
	free(ctx.seen);
	return errs->n == before ? 0 : -1;
}

/* "[section] option is required<why>" unless ok. */
static void need(struct conf_errors *errs, const char *file, bool ok, const char *option,
		 const char *why)
{
	if (!ok)
		conf_errors_add(errs, file, 0, "%s is required%s", option, why);
}

int config_check(struct config *c, struct conf_errors *errs)
{
	size_t before = errs->n;
	const char *f = c->path ? c->path : "(defaults)";
	need(errs, f, !str_empty(c->general.state_dir), "[general] state_dir", "");
	need(errs, f, strv_len(c->general.institution_domains) > 0, "[general] institution_domains", ": notices go only to these domains");
	if (c->imap.type == SOURCE_IMAP) {
		need(errs, f, !str_empty(c->imap.host), "[source] host", " for type = imap");
		need(errs, f, !str_empty(c->imap.user), "[source] user", " for type = imap");
		need(errs, f, !str_empty(c->imap.password_file), "[source] password_file", " for type = imap");
	} else {
		need(errs, f, !str_empty(c->imap.maildir), "[source] maildir", " for type = maildir");
	}
	if (c->smtp.mail_channel == CHANNEL_SMTP)
		need(errs, f, !str_empty(c->smtp.host), "[smtp] host", " for channel = smtp");
	if (c->smtp.mail_channel != CHANNEL_NONE)
		need(errs, f, !str_empty(c->smtp.from), "[smtp] from", "");
	if (c->sms.sms_channel == CHANNEL_SMS)
		need(errs, f, !str_empty(c->sms.url), "[sms] url", " for channel = sms");
	if (c->smtp.mail_channel == CHANNEL_FILE || c->sms.sms_channel == CHANNEL_FILE)
		need(errs, f, !str_empty(c->outbox.file_dir), "[outbox] file_dir", " when a channel is 'file'");
	if (c->workflow.work_start >= c->workflow.work_end)
		conf_errors_add(errs, f, 0, "[workflow] work_start must be before work_end");
	if (c->workflow.sms_start >= c->workflow.sms_end)
		conf_errors_add(errs, f, 0, "[workflow] sms_start must be before sms_end");
	if (strv_len(c->officers.ebys) + strv_len(c->officers.esign) == 0)
		conf_errors_add(errs, f, 0, "[officers] at least one of ebys, esign is required");
	return errs->n == before ? 0 : -1;
}

static void secret_ok(struct conf_errors *errs, const char *conf, const char *option,
		      const char *path)
{
	char *err = NULL;
	if (str_empty(path)) {
		conf_errors_add(errs, conf, 0, "%s: no secret file given", option);
		return;
	}
	if (file_check_private(path, &err) < 0 || access(path, R_OK) < 0) {
		conf_errors_add(errs, conf, 0, "%s: %s", option, err ? err : strerror(errno));
		free(err);
	}
}

int config_check_secrets(const struct config *c, struct conf_errors *errs)
{
	size_t before = errs->n;
	const char *f = c->path ? c->path : "(defaults)";
	if (c->imap.type == SOURCE_IMAP)
		secret_ok(errs, f, "[source] password_file", c->imap.password_file);
	if (c->smtp.mail_channel == CHANNEL_SMTP && !str_empty(c->smtp.user))
		secret_ok(errs, f, "[smtp] password_file", c->smtp.password_file);
	if (c->sms.sms_channel == CHANNEL_SMS && c->sms.auth != SMS_AUTH_NONE)
		secret_ok(errs, f, "[sms] secret_file", c->sms.secret_file);
	return errs->n == before ? 0 : -1;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_opts); i++) {
		void *f = (char *)c + conf_opts[i].offset;
		switch (conf_opts[i].type) {
		case CT_STR:
		case CT_PATH:
			free(*(char **)f);
			break;
		case CT_LIST:
			strv_free(*(char ***)f);
			break;
		case CT_CLOCKLIST:
			free(*(int **)f);
			break;
		default:
			break;
		}
	}
	free(c->path);
	memset(c, 0, sizeof(*c));
}

/* ---- the INI reader ---- */

/* Unquote a "..." value in place; returns NULL if the quote is unbalanced. */
static char *unquote(char *v)
{
	size_t n = strlen(v);
	if (n == 0 || v[0] != '"')
		return v;
	if (n < 2 || v[n - 1] != '"')
		return NULL;
	char *o = v;
	for (char *p = v + 1; p < v + n - 1; p++) {
		if (*p == '\\' && p + 1 < v + n - 1) {
			p++;
			*o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return v;
}

static int ini_line(char *line, char **section, char **name, void *ctx, ini_handler h,
		    const char *path, int lineno, struct conf_errors *errs)
{
	char *s = str_trim(line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (end == NULL || *str_trim(end + 1) != '\0') {
			conf_errors_add(errs, path, lineno, "malformed section header");
			return -1;
		}
		*end = '\0';
		char *inner = str_trim(s + 1);
		char *sp = strpbrk(inner, " \t");
		free(*section);
		free(*name);
		*name = NULL;
		if (sp) {
			*sp = '\0';
			*name = xstrdup(str_trim(sp + 1));
		}
		*section = xstrdup(inner);
		if (**section == '\0') {
			conf_errors_add(errs, path, lineno, "empty section name");
			return -1;
		}
		return h(ctx, *section, *name, NULL, NULL, path, lineno, errs);
	}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		conf_errors_add(errs, path, lineno, "expected 'key = value', got '%.40s'", s);
		return -1;
	}
	*eq = '\0';
	char *key = str_trim(s);
	char *val = unquote(str_trim(eq + 1));
	if (*key == '\0') {
		conf_errors_add(errs, path, lineno, "missing option name before '='");
		return -1;
	}
	if (val == NULL) {
		conf_errors_add(errs, path, lineno, "%s: unbalanced quote", key);
		return -1;
	}
	if (*section == NULL) {
		conf_errors_add(errs, path, lineno, "option '%s' outside of any [section]", key);
		return -1;
	}
	return h(ctx, *section, *name, key, val, path, lineno, errs);
}

int ini_read(const char *path, ini_handler h, void *ctx, struct conf_errors *errs)
{
	FILE *fp = fopen(path, "re");
	if (fp == NULL) {
		conf_errors_add(errs, path, 0, "%s", strerror(errno));
		return -1;
	}
	char *line = NULL, *section = NULL, *name = NULL;
	size_t cap = 0;
	int lineno = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			conf_errors_add(errs, path, lineno, "NUL byte in line");
			continue;
		}
		ini_line(line, &section, &name, ctx, h, path, lineno, errs);
	}
	free(line);
	free(section);
	free(name);
	fclose(fp);
	return 0;
}

/* ---- address helpers ---- */

static bool domain_match(const char *pattern, const char *domain)
{
	if (str_startswith(pattern, "*.")) {
		const char *base = pattern + 2;
		size_t nb = strlen(base), nd = strlen(domain);
		return nd > nb && domain[nd - nb - 1] == '.' && strcasecmp(domain + nd - nb, base) == 0;
	}
	return strcasecmp(pattern, domain) == 0;
}

bool conf_domain_allowed(const struct config *c, const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL || at[1] == '\0')
		return false;
	for (char **d = c->general.institution_domains; d && *d; d++) {
		if (domain_match(*d, at + 1))
			return true;
		/* a listed domain also admits its subdomains */
		char *sub = xasprintf("*.%s", *d);
		bool ok = domain_match(sub, at + 1);
		free(sub);
		if (ok)
			return true;
	}
	return false;
}

bool conf_addr_match(char *const *patterns, const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	for (size_t i = 0; patterns && patterns[i]; i++) {
		const char *p = patterns[i];
		const char *pat_at = strrchr(p, '@');
		if (pat_at == NULL)
			continue;
		bool local_ok = (pat_at - p == 1 && p[0] == '*') ||
			((size_t)(pat_at - p) == (size_t)(at - addr) && strncasecmp(p, addr, (size_t)(at - addr)) == 0);
		if (local_ok && domain_match(pat_at + 1, at + 1))
			return true;
	}
	return false;
}

bool conf_is_officer(const struct config *c, const char *addr)
{
	return conf_addr_match(c->officers.ebys, addr) || conf_addr_match(c->officers.esign, addr);
}
