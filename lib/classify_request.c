/* classify_request.c: what a request letter and a KAMUSM mail say beyond
 * the rules' patterns: the unit, the applicants, the addressee (see
 * classify_p.h, applicants.h). */
#include "applicants.h"
#include "classify_p.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The value of the first "Label: value" line whose folded label is one
 * of `labels`, above the first line labelled with one of `stop` (so that
 * the letter's "Birim:" is not an applicant's). */
static char *label_value(const char *body, const char *const *labels, size_t nlabels,
			 const char *const *stop, size_t nstop)
{
	for (const char *p = body; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *colon = memchr(p, ':', n);
		if (colon && colon - p <= 40) {
			char *lab = xstrndup(p, (size_t)(colon - p));
			char *f = text_fold_str(str_trim(lab));
			free(lab);
			bool hit = false, stopped = false;
			for (size_t i = 0; i < nlabels; i++)
				hit |= strcmp(f, labels[i]) == 0;
			for (size_t i = 0; i < nstop; i++)
				stopped |= strcmp(f, stop[i]) == 0;
			free(f);
			if (stopped)
				return NULL;
			if (hit) {
				char *v = xstrndup(colon + 1, n - (size_t)(colon + 1 - p));
				char *t = text_squeeze(v);
				free(v);
				if (*t)
					return t;
				free(t);
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static const char *const unit_labels[] = { "birim", "birimi", "birim adi", "talep eden birim",
					   "ilgili birim" };
static const char *const name_labels[] = { "ad soyad", "adi soyadi", "adi", "ad", "isim",
					   "ad-soyad", "adi-soyadi" };

static bool name_ends(const char *name, const char *ext)
{
	size_t n = name ? strlen(name) : 0, e = strlen(ext);
	return n > e && strcasecmp(name + n - e, ext) == 0;
}

/* CSV attachments of a message (by type or by name). */
static bool is_csv(const struct part *pt)
{
	if (pt->text == NULL)
		return false;
	if (pt->content_type && (strcmp(pt->content_type, "text/csv") == 0 ||
				 strcmp(pt->content_type, "text/comma-separated-values") == 0))
		return true;
	return name_ends(pt->filename, ".csv");
}

static void take_table(struct applicant_table *t, const char *origin, struct event *ev)
{
	ev->applicants = xreallocarray(ev->applicants, ev->napplicants + t->nrows + 1,
				       sizeof(struct applicant));
	for (size_t i = 0; i < t->nrows; i++)
		applicant_copy(&ev->applicants[ev->napplicants++], &t->rows[i]);
	ev->row_errors = xreallocarray(ev->row_errors, ev->nrow_errors + t->nerrors + 1,
				       sizeof(struct row_error));
	for (size_t i = 0; i < t->nerrors; i++) {
		ev->row_errors[ev->nrow_errors].row = t->errors[i].row;
		ev->row_errors[ev->nrow_errors++].reason = origin
			? xasprintf("%s: %s", origin, t->errors[i].reason) : xstrdup(t->errors[i].reason);
	}
}

/* Spreadsheets are not read, and a CSV that arrived undecoded (sent as
 * application/octet-stream or vnd.ms-excel) cannot be: say so, so that
 * the officer is not left wondering where the applicants went. */
static void unread_sheet(const struct part *pt, struct event *ev)
{
	static const char *const sheets[] = { ".xlsx", ".xls", ".ods" };
	for (size_t i = 0; i < ARRAY_LEN(sheets); i++)
		if (name_ends(pt->filename, sheets[i]))
			event_add_problem(ev, "attachment %s is a spreadsheet: only CSV is read "
					  "(save it as CSV)", pt->filename);
	if (name_ends(pt->filename, ".csv") && pt->text == NULL)
		event_add_problem(ev, "attachment %s (%s) was not decoded as text", pt->filename,
				  pt->content_type ? pt->content_type : "?");
}

static bool from_csv_parts(const struct config *c, const struct message *m, struct event *ev)
{
	bool found = false;
	for (size_t i = 0; m && i < m->nparts; i++) {
		const struct part *pt = &m->parts[i];
		if (pt->role != PART_BODY)
			unread_sheet(pt, ev);
		if (pt->role == PART_BODY || !is_csv(pt))
			continue;
		struct applicant_table t;
		char *err = NULL;
		if (applicants_from_csv(pt->text, pt->text_len, c, &t, &err) == 0) {
			take_table(&t, pt->filename, ev);
			found = true;
		} else {
			event_add_problem(ev, "attachment %s: %s", pt->filename ? pt->filename : "(csv)", err);
		}
		free(err);
		applicant_table_free(&t);
	}
	return found;
}

static void applicants_of(const struct config *c, const struct message *orig,
			  const struct message *outer, struct event *ev)
{
	struct applicant_table t;
	if (from_csv_parts(c, orig, ev) || (orig != outer && from_csv_parts(c, outer, ev)))
		return;
	if (orig->html) {
		int rc = applicants_from_html(orig->html, strlen(orig->html), c, &t, NULL);
		if (rc == 0)
			take_table(&t, NULL, ev);
		applicant_table_free(&t);
		if (rc == 0)
			return;
	}
	if (applicants_from_text(orig->body, orig->body_len, c, &t, NULL) == 0)
		take_table(&t, NULL, ev);
	applicant_table_free(&t);
}

void request_extract(const struct classify_ctx *ctx, const struct message *orig,
		     const struct message *outer, struct event *ev)
{
	const struct config *c = ctx->conf;
	ev->unit_name = label_value(orig->body, unit_labels, ARRAY_LEN(unit_labels),
				    name_labels, ARRAY_LEN(name_labels));
	char *letter_unit = xstrdup_opt(ev->unit_name);
	if (ev->unit_name == NULL && !str_empty(orig->from.name))
		ev->unit_name = xstrdup(orig->from.name);
	const char *rt = orig->reply_to.email ? orig->reply_to.email : orig->from.email;
	ev->unit_reply_to = xstrdup_opt(rt);
	applicants_of(c, orig, outer, ev);
	for (size_t i = 0; letter_unit && i < ev->napplicants; i++)
		if (ev->applicants[i].unit == NULL)
			ev->applicants[i].unit = xstrdup(letter_unit);
	free(letter_unit);
	if (ev->napplicants == 0 && ev->nrow_errors == 0)
		event_add_problem(ev, "the request letter lists no applicants");
}

/* ---- KAMUSM mail: who it was for ---- */

static const char *const generic_names[] = { "yetkili", "ilgili", "kullanici", "kullanicimiz",
					     "basvuru sahibi", "personel", "ilgili kisi" };

/* The name after "Sayın", unless it is a generic greeting. */
static char *greeted(const char *line)
{
	const char *sp = strpbrk(line, " \t");
	char *v = xstrdup(sp ? sp : "");
	v[strcspn(v, ",:;!\r")] = '\0';
	char *name = text_squeeze(v);
	free(v);
	char *fn = text_fold_str(name);
	bool generic = *name == '\0' || strchr(name, '@') || strlen(name) > 80;
	for (size_t i = 0; i < ARRAY_LEN(generic_names) && !generic; i++)
		generic = strcmp(fn, generic_names[i]) == 0;
	free(fn);
	if (generic) {
		free(name);
		return NULL;
	}
	return name;
}

/* "Sayın Ayşe Yılmaz," -> "Ayşe Yılmaz" (not "Sayın Yetkili"): the
 * greeting, within the first lines of the body. */
static char *sayin_name(const char *body)
{
	int lines = 0;
	for (const char *p = body; p && *p && lines < 15; lines++) {
		p += strspn(p, " \t\r\n");
		const char *nl = strchr(p, '\n');
		char *line = xstrndup(p, nl ? (size_t)(nl - p) : strlen(p));
		char *f = text_fold_str(line);
		bool sayin = str_startswith(f, "sayin ");
		char *name = sayin ? greeted(line) : NULL;
		free(f);
		free(line);
		if (sayin)
			return name;
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

void kamusm_addressee(const struct config *c, const struct message *orig, struct event *ev)
{
	char *box = NULL;
	if (!str_empty(c->smtp.reply_to)) {
		const char *lt = strrchr(c->smtp.reply_to, '<');
		box = xstrndup(lt ? lt + 1 : c->smtp.reply_to,
			       strcspn(lt ? lt + 1 : c->smtp.reply_to, "> "));
	}
	const struct addr *who = NULL;
	for (size_t i = 0; i < orig->nto + orig->ncc && who == NULL; i++) {
		const struct addr *a = i < orig->nto ? &orig->to[i] : &orig->cc[i - orig->nto];
		if (a->email && conf_domain_allowed(c, a->email) &&
		    !(box && strcasecmp(a->email, box) == 0))
			who = a;
	}
	free(box);
	if (who == NULL) {
		event_add_problem(ev, "no addressee inside the institution's domains");
		return;
	}
	ev->applicant.email = xstrdup(who->email);
	ev->applicant.name = sayin_name(orig->body);
	if (ev->applicant.name == NULL && !str_empty(who->name))
		ev->applicant.name = xstrdup(who->name);
}
