/* eimzad.c: the program's context and the ingest pipeline (see eimzad.h). */
#include "eimzad.h"
#include "jsonutil.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void ez_init(struct eimzad *ez)
{
	memset(ez, 0, sizeof(*ez));
}

/* Everything that comes from files, into fresh objects; on error nothing
 * of the old set is touched. */
struct loaded {
	struct config *conf;
	struct rules *rules;
	struct templates *tpl;
	struct calendar *cal;
};

static void loaded_free(struct loaded *l)
{
	rules_free(l->rules);
	templates_free(l->tpl);
	cal_free(l->cal);
	if (l->conf)
		config_free(l->conf);
	free(l->conf);
}

static int load_all(struct loaded *l, const char *path, struct conf_errors *errs)
{
	size_t before = errs->n;
	memset(l, 0, sizeof(*l));
	l->conf = xcalloc(1, sizeof(*l->conf));
	config_defaults(l->conf);
	if (config_load(l->conf, path, errs) == 0)
		config_check(l->conf, errs);
	if (errs->n != before)
		return -1;
	/* The calendar works in local time of the configured zone. */
	setenv("TZ", l->conf->general.timezone, 1);
	tzset();
	rules_load(l->conf->general.rules_file, &l->rules, errs);
	templates_load(l->conf->general.templates_dir, l->conf->general.languages, &l->tpl, errs);
	cal_create(&l->conf->workflow, l->conf->general.holidays_file, &l->cal, errs);
	return errs->n == before ? 0 : -1;
}

int ez_load(struct eimzad *ez, const char *conf_path, struct conf_errors *errs)
{
	struct loaded l;
	if (load_all(&l, conf_path, errs) < 0) {
		loaded_free(&l);
		return -1;
	}
	ez->conf = ez->first_conf = l.conf;
	ez->rules = l.rules;
	ez->tpl = l.tpl;
	ez->cal = l.cal;
	return 0;
}

static void wire_workflow(struct eimzad *ez)
{
	time_t keep = ez->wf.last_pass;
	memset(&ez->wf, 0, sizeof(ez->wf));
	ez->wf.conf = ez->conf;
	ez->wf.store = ez->store;
	ez->wf.apps = ez->apps;
	ez->wf.outbox = ez->outbox;
	ez->wf.tpl = ez->tpl;
	ez->wf.cal = ez->cal;
	ez->wf.last_pass = keep;
}

static int open_channels(struct eimzad *ez, char **err)
{
	for (int m = MEDIUM_MAIL; m <= MEDIUM_SMS; m++)
		if (channel_create(ez->first_conf, (enum medium)m, &ez->channels[m], err) < 0)
			return -1;
	return 0;
}

void ez_index_rebuild(struct eimzad *ez, const char *who)
{
	apps_free(ez->apps);
	ez->apps = NULL;
	char *err = NULL;
	if (apps_load(ez->store, &ez->apps, &err) < 0)
		fatalx("%s: the index cannot be rebuilt: %s", who, err);
	ez->wf.apps = ez->apps;
}

int ez_open(struct eimzad *ez, enum ez_open_mode mode, char **err)
{
	static const enum store_mode smode[] = { [EZ_DAEMON] = STORE_DAEMON,
						 [EZ_TOOL] = STORE_WRITER, [EZ_READ] = STORE_READER };
	ez->mode = mode;
	int r = store_open(ez->first_conf->general.state_dir, smode[mode], &ez->store, err);
	if (r != 0)
		return r;
	if (apps_load(ez->store, &ez->apps, err) < 0)
		return -1;
	if (mode == EZ_DAEMON && open_channels(ez, err) < 0)
		return -1;
	wire_workflow(ez);
	if (mode != EZ_READ) {
		struct outbox_hooks hooks;
		wf_outbox_hooks(&ez->wf, &hooks);
		/* eimzactl queues; the daemon's workers deliver. */
		if (outbox_open(ez->store, ez->first_conf, mode == EZ_DAEMON ? ez->channels : NULL, &hooks,
				&ez->outbox, err) < 0)
			return -1;
		ez->wf.outbox = ez->outbox;
	}
	return 0;
}

void ez_close(struct eimzad *ez)
{
	ez_ingest_stop(ez);
	if (ez->outbox)
		outbox_close(ez->outbox, 10000);
	for (int m = MEDIUM_MAIL; m <= MEDIUM_SMS; m++)
		channel_destroy(ez->channels[m]);
	apps_free(ez->apps);
	store_close(ez->store);
	rules_free(ez->rules);
	templates_free(ez->tpl);
	cal_free(ez->cal);
	if (ez->conf && ez->conf != ez->first_conf) {
		config_free(ez->conf);
		free(ez->conf);
	}
	if (ez->first_conf) {
		config_free(ez->first_conf);
		free(ez->first_conf);
	}
	memset(ez, 0, sizeof(*ez));
}

/* Sections whose change needs a restart, compared by their rendering. */
static void note_restart_needed(const struct config *old, const struct config *new_)
{
	if (strcmp(old->general.state_dir, new_->general.state_dir) != 0)
		log_warnx("reload: [general] state_dir changed: takes effect at the next start");
	if (old->imap.type != new_->imap.type || strcmp(old->imap.host, new_->imap.host) != 0 ||
	    strcmp(old->imap.user, new_->imap.user) != 0 || strcmp(old->imap.folder, new_->imap.folder) != 0)
		log_warnx("reload: [source] changed: takes effect at the next start");
	if (strcmp(old->smtp.host, new_->smtp.host) != 0 || strcmp(old->sms.url, new_->sms.url) != 0)
		log_warnx("reload: [smtp]/[sms] changed: takes effect at the next start");
}

int ez_reload(struct eimzad *ez, const char *conf_path, struct conf_errors *errs)
{
	/* The classification threads read the rules and the configuration
	 * freed below, and log in local time (TZ changes on the way). */
	ez_ingest_stop(ez);
	struct loaded l;
	if (load_all(&l, conf_path, errs) < 0) {
		loaded_free(&l);
		setenv("TZ", ez->conf->general.timezone, 1);
		tzset();
		return -1;
	}
	note_restart_needed(ez->conf, l.conf);
	rules_free(ez->rules);
	templates_free(ez->tpl);
	cal_free(ez->cal);
	/* Channels and the outbox run on first_conf in other threads: never
	 * free that one before close; an intermediate reload's may go. */
	if (ez->conf != ez->first_conf) {
		config_free(ez->conf);
		free(ez->conf);
	}
	ez->conf = l.conf;
	ez->rules = l.rules;
	ez->tpl = l.tpl;
	ez->cal = l.cal;
	wire_workflow(ez);
	return 0;
}

time_t ez_now(const struct eimzad *ez)
{
	return time(NULL) + ez->clock_offset;
}

int ez_set_now(struct eimzad *ez, const char *when, char **err)
{
	time_t t;
	if (cal_parse_local(when, &t) < 0)
		return seterr(err, "--now: '%s' is not 'YYYY-MM-DD HH:MM'", when);
	ez->clock_offset = t - time(NULL);
	return 0;
}

void ez_classify_ctx(const struct eimzad *ez, struct classify_ctx *c, time_t arrival)
{
	c->conf = ez->conf;
	c->rules = ez->rules;
	c->arrival = arrival;
}

void ez_position(struct eimzad *ez, uint32_t *uidvalidity, uint32_t *last_uid)
{
	json_object *m = store_get(ez->store, "meta", "source");
	*uidvalidity = m ? (uint32_t)jget_int(m, "uidvalidity") : 0;
	*last_uid = m ? (uint32_t)jget_int(m, "last_uid") : 0;
	json_object_put(m);
}
