/* workflow_notify.c: the notices each step sends, and how a notice is
 * built from a template (see workflow.h, template.h, notice.h). */
#include "workflow_p.h"
#include "jsonutil.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct state_info state_infos[ST__COUNT] = {
	[ST_REQUESTED] = { "talep alındı, karar bekleniyor", "requested, awaiting a decision",
			   ACTOR_EBYS, "talebi ONAY veya RED <gerekçe> ile yanıtlayın",
			   "answer the request with ONAY or RED <reason>" },
	[ST_REJECTED] = { "reddedildi", "rejected", ACTOR_NONE, "", "" },
	[ST_APPROVED] = { "onaylandı, KAMUSM'ye gönderilecek", "approved, to be sent to KAMUSM",
			  ACTOR_ESIGN, "başvuru formunu KAMUSM'ye gönderin ve GONDERILDI yazın",
			  "send the application form to KAMUSM and reply GONDERILDI" },
	[ST_SUBMITTED] = { "KAMUSM'ye gönderildi, bağlantı bekleniyor",
			   "sent to KAMUSM, awaiting the link", ACTOR_ESIGN,
			   "KAMUSM'nin başvuru bağlantısını gönderip göndermediğini kontrol edin",
			   "check whether KAMUSM has sent the application link" },
	[ST_CREDENTIALS_ISSUED] = { "KAMUSM bağlantısı geldi, başvuru sahibi formu dolduracak",
				    "KAMUSM's link arrived, the applicant fills in the form",
				    ACTOR_APPLICANT,
				    "başvuru formunu doldurun, çıktısını alın, taahhütnameyi ıslak "
				    "imzalayıp EBYS sorumlusuna elden teslim edin",
				    "fill in the application form, print it, sign the commitment "
				    "form (taahhütname) by hand and hand it to the EBYS officer" },
	[ST_COMMITMENT_RECEIVED] = { "taahhütname teslim alındı, postalanacak",
				     "commitment form received, to be posted", ACTOR_EBYS,
				     "taahhütnameleri üst yazıyla KAMUSM'ye postalayın ve POSTA yazın",
				     "post the commitment forms to KAMUSM with a cover letter and "
				     "reply POSTA" },
	[ST_POSTED] = { "KAMUSM'ye postalandı, üretim bekleniyor", "posted to KAMUSM, awaiting production",
			ACTOR_EBYS, "KAMUSM'den kartın durumunu sorun (444 5 576)",
			"ask KAMUSM about the card (444 5 576)" },
	[ST_SHIPPED] = { "kart kargoya verildi", "card shipped", ACTOR_APPLICANT,
			 "kartınız ve kart okuyucunuzla kurulum ve aktivasyon için EBYS sorumlusuna gelin",
			 "bring your card and card reader to the EBYS officer for installation "
			 "and activation" },
	[ST_ACTIVATED] = { "kuruldu ve etkinleştirildi", "installed and activated", ACTOR_NONE, "", "" },
	[ST_CANCELLED] = { "iptal edildi", "cancelled", ACTOR_NONE, "", "" },
	[ST_EXPIRED] = { "erişim parolasının süresi doldu", "access password expired", ACTOR_ESIGN,
			 "başvuruyu KAMUSM'ye yeniden gönderin ve GONDERILDI yazın",
			 "resubmit the application to KAMUSM and reply GONDERILDI" },
};

const struct state_info *wf_state_info(enum app_state s)
{
	return &state_infos[(unsigned)s < ST__COUNT ? s : 0];
}

char *const *wf_officers(struct wf *wf, enum wf_actor a)
{
	const struct conf_officers *o = &wf->conf->officers;
	char *const *v = a == ACTOR_ESIGN ? o->esign : o->ebys;
	/* An institution may name only one kind of officer: the other does both. */
	if (v == NULL || v[0] == NULL)
		v = a == ACTOR_ESIGN ? o->ebys : o->esign;
	return v;
}

json_object *wf_app_vars(struct wf *wf, json_object *doc)
{
	json_object *v = json_object_new_object();
	enum app_state st = app_doc_state(doc);
	const struct state_info *si = wf_state_info(st);
	jput_str(v, "tag", jget_str(doc, "id"));
	jput_str(v, "name", jget_str(doc, "applicant.name"));
	jput_str(v, "email", jget_str(doc, "applicant.email"));
	jput_str(v, "title", jget_str(doc, "applicant.title"));
	jput_str(v, "unit", jget_str(doc, "unit.name"));
	jput_str(v, "state", app_state_name(st));
	jput_str(v, "state_tr", si->tr);
	jput_str(v, "state_en", si->en);
	jput_str(v, "todo_tr", si->todo_tr);
	jput_str(v, "todo_en", si->todo_en);
	char day[32];
	time_t since = jget_time(doc, "state_since");
	jput_str(v, "since", since ? cal_fmt_date(since, day, sizeof(day)) : "");
	jput_str(v, "tracking_no", jget_str(doc, "tracking_no"));
	jput_str(v, "reason", jget_str(doc, "reject_reason"));
	jput_str(v, "link", jget_str(doc, "credentials.link"));
	jset_bool(v, "online_flow", str_empty(jget_str(doc, "credentials.flow")) ? false :
		  strcmp(jget_str(doc, "credentials.flow"), "online") == 0);
	time_t exp = jget_time(doc, "credentials.expires");
	jput_str(v, "expires", exp ? cal_fmt_date(exp, day, sizeof(day)) : "");
	return v;
}

/* Fields every template may use. */
static void common_vars(struct wf *wf, json_object *vars, time_t now)
{
	const struct config *c = wf->conf;
	char day[32];
	if (jget(vars, "institution") == NULL)
		jput_str(vars, "institution", c->general.institution_name);
	if (jget(vars, "helpdesk") == NULL)
		jput_str(vars, "helpdesk", c->general.helpdesk);
	jput_str(vars, "today", cal_fmt_date(now, day, sizeof(day)));
	jput_str(vars, "mailbox", c->smtp.reply_to);
}

/* The domain our Message-IDs use: [smtp] message_id_domain, else From's. */
static void msgid_domain(const struct config *c, char *out, size_t len)
{
	const char *at = c->smtp.from ? strrchr(c->smtp.from, '@') : NULL;
	if (!str_empty(c->smtp.message_id_domain))
		snprintf(out, len, "%s", c->smtp.message_id_domain);
	else if (at != NULL)
		snprintf(out, len, "%s", at + 1);
	else
		snprintf(out, len, "eimzad.invalid");
	out[strcspn(out, ">\" ")] = '\0';
}

static void thread_headers(struct wf *wf, struct notice *n, json_object *doc)
{
	char dom[256];
	msgid_domain(wf->conf, dom, sizeof(dom));
	n->message_id = xasprintf("%s@%s", n->id, dom);
	const char *root = doc ? jget_str(doc, "thread") : NULL;
	if (root) {
		n->in_reply_to = xstrdup(root);
		n->references = xasprintf("<%s>", root);
	} else if (doc) {
		jset_str(doc, "thread", n->message_id);
	}
}

static struct notice *build(struct wf *wf, const struct wf_notice *spec, json_object *vars,
			    time_t now, char **err)
{
	char *subject = NULL, *body = NULL;
	if (template_render(wf->tpl, spec->kind, spec->medium, vars, &subject, &body, err) < 0)
		return NULL;
	struct notice *n = notice_new();
	n->kind = xstrdup(spec->kind);
	n->medium = spec->medium;
	n->to = xstrdup(spec->to);
	n->subject = subject;
	n->body = body;
	n->dedupe = xstrdup(spec->dedupe);
	n->id = notice_id_for(spec->dedupe);
	const char *app = spec->doc ? jget_str(spec->doc, "id") : NULL;
	n->app_id = xstrdup_opt(app);
	for (size_t i = 0; spec->app_ids && spec->app_ids[i]; i++)
		n->app_ids = strv_add(n->app_ids, spec->app_ids[i]);
	n->valid_state = xstrdup_opt(spec->valid_state);
	n->created = now;
	n->next_attempt = spec->not_before ? spec->not_before : now;
	if (spec->medium == MEDIUM_SMS)
		n->next_attempt = cal_next_sms_time(wf->cal, n->next_attempt);
	if (spec->medium == MEDIUM_MAIL)
		n->body_html = template_body_html(body);
	return n;
}

char *wf_notify(struct wf *wf, struct txn *t, const struct wf_notice *spec, json_object *vars,
		time_t now)
{
	if (wf->catchup || spec->to == NULL || wf->outbox == NULL)
		return NULL;
	if (!templates_has(wf->tpl, spec->kind, spec->medium))
		return NULL;    /* this notice has no template for the medium */
	common_vars(wf, vars, now);
	char *err = NULL;
	struct notice *n = build(wf, spec, vars, now, &err);
	if (n == NULL) {
		log_warnx("workflow: notice %s not queued: %s", spec->kind, err ? err : "?");
		free(err);
		return NULL;
	}
	if (spec->medium == MEDIUM_MAIL)
		thread_headers(wf, n, spec->doc);
	char *id = xstrdup(n->id);
	if (outbox_queue(wf->outbox, t, n) != QUEUED) {
		free(id);
		return NULL;
	}
	return id;
}

static void note_in_history(json_object *hist, const char *id)
{
	if (hist == NULL || id == NULL)
		return;
	json_object *list = jget(hist, "notices");
	if (list == NULL) {
		list = json_object_new_array();
		jset(hist, "notices", list);
	}
	json_object_array_add(list, json_object_new_string(id));
}

void wf_notify_all(struct wf *wf, struct txn *t, char *const *to, const char *kind,
		   json_object *doc, char **app_ids, const char *dedupe_base, json_object *vars,
		   time_t now, json_object *hist)
{
	for (size_t i = 0; to && to[i]; i++) {
		char *dedupe = xasprintf("%s:%s", dedupe_base, to[i]);
		struct wf_notice n = { .kind = kind, .medium = MEDIUM_MAIL, .to = to[i], .doc = doc,
				       .app_ids = app_ids, .dedupe = dedupe };
		char *id = wf_notify(wf, t, &n, vars, now);
		note_in_history(hist, id);
		free(id);
		free(dedupe);
	}
}

/* Who gets a notice on entering a state. */
enum recip { R_APPLICANT, R_UNIT, R_UNIT_PROGRESS, R_EBYS, R_ESIGN };

struct enter_notice {
	enum app_state state;
	const char *kind;
	enum recip to;
	enum medium medium;
};

static const struct enter_notice enter_notices[] = {
	{ ST_REJECTED, "rejected", R_UNIT, MEDIUM_MAIL },
	{ ST_APPROVED, "approved", R_ESIGN, MEDIUM_MAIL },
	{ ST_CREDENTIALS_ISSUED, "credentials_issued", R_APPLICANT, MEDIUM_MAIL },
	{ ST_CREDENTIALS_ISSUED, "credentials_issued", R_APPLICANT, MEDIUM_SMS },
	{ ST_CREDENTIALS_ISSUED, "unit_progress", R_UNIT_PROGRESS, MEDIUM_MAIL },
	{ ST_COMMITMENT_RECEIVED, "commitment_received", R_APPLICANT, MEDIUM_MAIL },
	{ ST_POSTED, "posted", R_APPLICANT, MEDIUM_MAIL },
	{ ST_SHIPPED, "shipped", R_APPLICANT, MEDIUM_MAIL },
	{ ST_SHIPPED, "shipped", R_APPLICANT, MEDIUM_SMS },
	{ ST_SHIPPED, "unit_progress", R_UNIT_PROGRESS, MEDIUM_MAIL },
	{ ST_ACTIVATED, "activated", R_APPLICANT, MEDIUM_MAIL },
	{ ST_ACTIVATED, "activated", R_UNIT, MEDIUM_MAIL },
	{ ST_CANCELLED, "cancelled", R_APPLICANT, MEDIUM_MAIL },
	{ ST_CANCELLED, "cancelled", R_UNIT, MEDIUM_MAIL },
	{ ST_EXPIRED, "expired", R_ESIGN, MEDIUM_MAIL },
};

/* Recipients of an enter notice, as a vector the caller frees. */
static char **recipients(struct wf *wf, json_object *doc, enum recip r, enum medium m)
{
	const char *one = NULL;
	switch (r) {
	case R_APPLICANT:
		one = jget_str(doc, m == MEDIUM_SMS ? "applicant.mobile" : "applicant.email");
		break;
	case R_UNIT_PROGRESS:
		if (!wf->conf->workflow.notify_unit)
			return NULL;
		/* fall through */
	case R_UNIT:
		one = jget_str(doc, "unit.reply_to");
		break;
	case R_EBYS:
	case R_ESIGN: {
		char **v = NULL;
		char *const *src = wf_officers(wf, r == R_EBYS ? ACTOR_EBYS : ACTOR_ESIGN);
		for (size_t i = 0; src && src[i]; i++)
			v = strv_add(v, src[i]);
		return v;
	}
	}
	return one ? strv_add(NULL, one) : NULL;
}

void wf_enter(struct wf *wf, struct txn *t, json_object *doc, enum app_state to, time_t at,
	      time_t now, json_object *hist)
{
	wf_clock_start(wf, doc, wf->catchup ? wf->catchup_now : at);
	json_object *vars = wf_app_vars(wf, doc);
	json_object *h = jget(doc, "history");
	size_t seq = h ? json_object_array_length(h) : 0;
	const char *id = jget_str(doc, "id");
	for (size_t i = 0; i < ARRAY_LEN(enter_notices); i++) {
		const struct enter_notice *e = &enter_notices[i];
		if (e->state != to)
			continue;
		char **to_list = recipients(wf, doc, e->to, e->medium);
		for (size_t k = 0; to_list && to_list[k]; k++) {
			char *dedupe = xasprintf("enter:%s:%zu:%s:%s:%s", id, seq, e->kind,
						 medium_name(e->medium), to_list[k]);
			struct wf_notice n = { .kind = e->kind, .medium = e->medium, .to = to_list[k],
					       .doc = doc, .dedupe = dedupe,
					       .valid_state = e->medium == MEDIUM_SMS ? app_state_name(to)
										       : NULL };
			char *nid = wf_notify(wf, t, &n, vars, now);
			note_in_history(hist, nid);
			free(nid);
			free(dedupe);
		}
		strv_free(to_list);
	}
	json_object_put(vars);
}
