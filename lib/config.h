/*
 * config.h: the configuration file.
 *
 * Format: INI-like, UTF-8. `# ` or `; ` starts a comment line; `[section]`
 * or `[section name]` starts a section; `key = value` sets an option.
 * Values may be quoted with double quotes (then \" \\ \n \t escapes apply);
 * unquoted values are trimmed. An option of list type may be repeated and
 * its values may be separated by spaces or commas; each line adds to it.
 *
 * Options are described by one table (config.c, `conf_opts[]`): section,
 * name, type, default, bounds, an optional check. Parsing reports every
 * problem as "file:line: message", keeps going, and fails at the end.
 *
 * Ownership: struct config owns every string it holds; config_free() frees
 * them. Secrets are never held here: *_file options name the files, and
 * the module that needs the secret reads it with secret_read().
 */
#ifndef EIMZA_CONFIG_H
#define EIMZA_CONFIG_H

#include "util.h"

/* A span of time that may be counted in calendar time or in working time.
 * Written as "30s", "5m", "4h", "7d" (calendar), "4wh" (working hours),
 * "2wd" (working days), "6mo" (calendar months). Exactly one unit is set. */
enum period_unit { PERIOD_SECONDS, PERIOD_WORK_MINUTES, PERIOD_WORK_DAYS, PERIOD_MONTHS };
struct period {
	enum period_unit unit;
	int64_t n;              /* seconds, working minutes, working days or months */
};
/* Parse a period; 0 or -1 with *err. "0" (any unit) means "off". */
int period_parse(const char *s, struct period *out, char **err);
/* Format back to the config syntax ("4wh"). */
char *period_fmt(const struct period *p, char *buf, size_t len);
bool period_is_zero(const struct period *p);

/* Minutes since midnight, "HH:MM". */
int clock_parse(const char *s, int *minutes, char **err);

enum source_type { SOURCE_IMAP, SOURCE_MAILDIR };
enum tls_mode { TLS_IMPLICIT, TLS_STARTTLS, TLS_NONE };
enum channel_kind { CHANNEL_SMTP, CHANNEL_SMS, CHANNEL_FILE, CHANNEL_NONE };

struct conf_general {
	char *state_dir;
	char *templates_dir;
	char *rules_file;
	char *holidays_file;
	char *timezone;
	char *institution_name;
	char **institution_domains;   /* notices only to these (and subdomains) */
	char **languages;             /* notice languages in order, e.g. tr en */
	char *tag_prefix;             /* EIMZA -> [EIMZA-2026-0001] */
	struct period catchup_cutoff; /* older mail on first start: record only */
	struct period retention;      /* KVKK: purge personal data after close */
	bool store_access_codes;      /* keep KAMUSM access codes in the state */
	char *control_socket;         /* default: <state_dir>/control.sock */
	char *helpdesk;               /* where applicants hand in the form (text) */
};

struct conf_officers {
	char **ebys;                  /* EBYS officers: decide, post batches */
	char **esign;                 /* e-signature officers: submit to KAMUSM */
	char **escalate_to;           /* optional extra escalation recipients */
};

struct conf_trust {
	char **authserv_ids;          /* Authentication-Results we believe */
	char **kamusm_senders;        /* addresses or *@domain patterns */
	char **link_hosts;            /* allowed https link hosts (*.x matches subdomains) */
	bool require_auth;            /* demand a passing trusted result */
	int forward_depth;            /* how deep to look into forwards */
};

struct conf_imap {
	enum source_type type;
	char *host;
	int port;
	enum tls_mode tls;
	char *ca_file;                /* default: the system store */
	char *user;
	char *password_file;
	char *folder;
	char *other_folder;           /* move unrecognised mail here (optional) */
	char *maildir;                /* for type = maildir */
	bool idle;
	struct period poll_interval;
	struct period timeout;
	struct period backoff_max;
	int fetch_batch;              /* UIDs per FETCH */
	bool allow_plain_loopback;    /* permit tls = none on 127.0.0.1/::1 only */
	size_t max_message_size;
};

struct conf_smtp {
	enum channel_kind mail_channel;  /* smtp or file */
	char *host;
	int port;
	enum tls_mode tls;
	char *ca_file;
	char *user;
	char *password_file;
	char *from;                   /* "E-İmza Birimi <eimza@example.edu.tr>" */
	char *reply_to;               /* the watched mailbox */
	char *helo;
	char *message_id_domain;
	struct period timeout;
	int sessions;                 /* concurrent SMTP sessions */
	int batch;                    /* notices per session */
};

enum sms_auth { SMS_AUTH_NONE, SMS_AUTH_BASIC, SMS_AUTH_BEARER, SMS_AUTH_HEADER };
enum sms_encoding { SMS_ENC_GSM7_TR, SMS_ENC_GSM7, SMS_ENC_UCS2, SMS_ENC_ASCII };

struct conf_sms {
	enum channel_kind sms_channel;   /* sms, file or none */
	char *profile;                /* json, twilio, ... */
	char *url;
	char *method;
	enum sms_auth auth;
	char *auth_header;            /* header name for SMS_AUTH_HEADER */
	char *user;
	char *secret_file;
	char *sender;                 /* originator / başlık */
	char *content_type;
	char *body_template;          /* {{to}} {{text}} {{sender}} ... */
	char *success_status;         /* e.g. "2xx" or "200,202" */
	char *success_field;          /* optional JSON path test "status=ok" */
	char *id_field;               /* JSON path of the provider's message id */
	enum sms_encoding encoding;
	int max_segments;
	bool truncate;                /* shorten instead of refusing */
	char *default_country;        /* "TR": normalise 05xx to +905xx */
	double rate;                  /* requests per second */
	int concurrency;
	struct period connect_timeout;
	struct period timeout;
	char *ca_file;
};

struct conf_outbox {
	char *file_dir;               /* channel_file output folder */
	struct period max_age;        /* give up after this */
	struct period retry_min;
	struct period retry_max;
	int global_concurrency;
};

struct conf_workflow {
	struct period remind_requested;
	struct period remind_approved;
	struct period remind_submitted;
	struct period remind_credentials;
	struct period repeat_credentials;
	struct period remind_commitment;   /* unused when posting_day applies */
	struct period remind_posted;
	struct period remind_shipped;
	int reminders_before_escalation;   /* the Nth due reminder escalates */
	struct period escalation_interval;
	struct period stale_after;
	struct period stale_interval;
	struct period password_validity;
	struct period password_warn;
	int posting_day;                   /* 0 = Sunday .. 6 = Saturday */
	int work_start, work_end;          /* minutes since midnight */
	int sms_start, sms_end;
	int *reminder_passes;              /* minutes since midnight, -1 ended */
	bool notify_unit;                  /* copy progress notices to the unit */
};

struct config {
	char *path;
	struct conf_general general;
	struct conf_officers officers;
	struct conf_trust trust;
	struct conf_imap imap;
	struct conf_smtp smtp;
	struct conf_sms sms;
	struct conf_outbox outbox;
	struct conf_workflow workflow;
};

/* Collected problems, each "file:line: message". */
struct conf_errors {
	char **msgs;
	size_t n;
};
void conf_errors_add(struct conf_errors *e, const char *file, int line,
		     const char *fmt, ...) PRINTF_LIKE(4, 5);
void conf_errors_free(struct conf_errors *e);

/*
 * The INI reader underneath, for other files of the same syntax (rules,
 * holidays). The handler sees each key/value with its section, the
 * section's name argument ("[rule foo]" -> section "rule", name "foo"),
 * and its line; it returns 0, or -1 after adding its own error to errs.
 * A section line alone calls the handler with key == NULL.
 * Returns 0 if the file was read (even with handler errors counted in
 * errs), -1 if it could not be opened (error added to errs).
 */
typedef int (*ini_handler)(void *ctx, const char *section, const char *name,
			   const char *key, const char *value,
			   const char *file, int line, struct conf_errors *errs);
int ini_read(const char *path, ini_handler h, void *ctx, struct conf_errors *errs);

/* Initialise with every default. */
void config_defaults(struct config *c);
/* Load a file over the defaults; errors accumulate in errs. Returns 0 if
 * the file parsed without error, -1 otherwise (c is still usable). Relative
 * paths in the file are taken relative to the file's directory. */
int config_load(struct config *c, const char *path, struct conf_errors *errs);
/* Checks that span options (e.g. imap host required for type imap). */
int config_check(struct config *c, struct conf_errors *errs);
void config_free(struct config *c);
/* For `eimzad -n`: every secret file the configuration names (for the
 * source and channels in use) exists, is readable, and is private. */
int config_check_secrets(const struct config *c, struct conf_errors *errs);

/* Address helpers on configured lists. */
/* Is addr (a bare address) inside one of the institution's domains? */
bool conf_domain_allowed(const struct config *c, const char *addr);
/* Does addr match one of the patterns ("a@b", "*@b", "*@*.b")? Case-insensitive. */
bool conf_addr_match(char *const *patterns, const char *addr);
bool conf_is_officer(const struct config *c, const char *addr);

#endif
