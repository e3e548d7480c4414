/* classify_cmd.c: officers' commands and application tags (see
 * classify.h, classify_p.h, DESIGN "The workflow"). */
#include "classify_p.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tags ---- */

/* More tags than this in one subject or command line are ignored: no
 * notice lists as many, and the lists stay cheap to build. */
#define MAX_TAGS 64

/* A tag at s (folded): prefix "-" 4 digits "-" 4+ digits, not followed by
 * another digit. Returns its length and writes the normalised tag. */
static size_t tag_at(const char *fprefix, const char *prefix, const char *s, char *out, size_t outlen)
{
	size_t pl = strlen(fprefix);
	if (strncmp(s, fprefix, pl) != 0 || s[pl] != '-')
		return 0;
	const char *y = s + pl + 1;
	if (strspn(y, "0123456789") != 4 || y[4] != '-')
		return 0;
	const char *num = y + 5;
	size_t nn = strspn(num, "0123456789");
	if (nn < 4 || nn > 12)
		return 0;
	snprintf(out, outlen, "%s-%.4s-%.*s", prefix, y, (int)nn, num);
	return (size_t)(num + nn - s);
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || (unsigned char)c >= 0x80;
}

char **tags_find(const char *prefix, const char *s)
{
	if (s == NULL || str_empty(prefix))
		return NULL;
	char *fp = text_fold_str(prefix);
	char *f = text_fold_str(s);
	char **v = NULL;
	char tag[96];
	size_t n = 0;
	for (const char *p = strstr(f, fp); p && n < MAX_TAGS; p = strstr(p + 1, fp)) {
		if (p > f && word_char(p[-1]))
			continue;
		if (tag_at(fp, prefix, p, tag, sizeof(tag)) && !strv_contains(v, tag)) {
			v = strv_add(v, tag);
			n++;
		}
	}
	free(f);
	free(fp);
	return v;
}

/* ---- commands ---- */

static const struct {
	const char *word;       /* folded */
	enum cmd_verb verb;
} verbs[] = {
	{ "onay", CMD_APPROVE }, { "red", CMD_REJECT }, { "gonderildi", CMD_SUBMITTED },
	{ "teslim", CMD_DELIVERED }, { "posta", CMD_POSTED }, { "aktif", CMD_ACTIVATED },
	{ "iptal", CMD_CANCEL },
};

static enum cmd_verb verb_of(const char *w, size_t n)
{
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (strlen(verbs[i].word) == n && strncmp(w, verbs[i].word, n) == 0)
			return verbs[i].verb;
	return CMD_NONE;
}

static bool is_signature(const char *l, size_t n)
{
	return (n == 2 && memcmp(l, "--", 2) == 0) || (n == 3 && memcmp(l, "-- ", 3) == 0);
}

/* RED's reason: the rest of the command line, then the lines below it
 * down to a signature line (the quoted part is already gone). */
static char *reason_of(const char *rest, const char *below)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, rest);
	for (const char *p = below; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		size_t tn = n && p[n - 1] == '\r' ? n - 1 : n;
		if (is_signature(p, tn))
			break;
		buf_addc(&b, '\n');
		buf_add(&b, p, tn);
		p = nl ? nl + 1 : NULL;
	}
	char *t = xstrdup(str_trim(b.p ? b.p : ""));
	buf_free(&b);
	if (*t == '\0') {
		free(t);
		return NULL;
	}
	return t;
}

/* Tags named right after the verb, separated by spaces or commas. */
static size_t line_tags(const char *tag_prefix, const char *f, size_t pos, struct event *ev)
{
	char *fp = text_fold_str(tag_prefix);
	char tag[96];
	for (size_t count = 0; count < MAX_TAGS; count++) {
		size_t q = pos + strspn(f + pos, " \t,;[]");
		size_t n = tag_at(fp, tag_prefix, f + q, tag, sizeof(tag));
		if (n == 0)
			break;
		if (!strv_contains(ev->command.apps, tag))
			ev->command.apps = strv_add(ev->command.apps, tag);
		pos = q + n;
		pos += f[pos] == ']';
	}
	free(fp);
	return pos;
}

/* Past the separator between the tags and RED's reason. */
static size_t skip_separator(const char *f, size_t pos)
{
	pos += strspn(f + pos, " \t]");
	if (f[pos] == ':' || f[pos] == '-')
		pos++;
	else if (strncmp(f + pos, "\xe2\x80\x93", 3) == 0)    /* en dash */
		pos += 3;
	return pos + strspn(f + pos, " \t");
}

bool command_parse(const char *tag_prefix, const char *top, struct event *ev)
{
	const char *ls = top + strspn(top, " \t\r\n");
	const char *le = ls + strcspn(ls, "\r\n");
	if (ls == le)
		return false;
	struct folded f;
	text_fold(ls, (size_t)(le - ls), true, &f);
	size_t i = strspn(f.s, " \t*");
	size_t j = i;
	while (f.s[j] >= 'a' && f.s[j] <= 'z')
		j++;
	enum cmd_verb v = verb_of(f.s + i, j - i);
	if (v == CMD_NONE || word_char(f.s[j])) {
		folded_free(&f);
		return false;
	}
	ev->command.verb = v;
	size_t pos = line_tags(tag_prefix, f.s, j + strspn(f.s + j, "*"), ev);
	if (v == CMD_REJECT) {
		pos = skip_separator(f.s, pos);
		char *rest = xstrndup(ls + f.map[pos], (size_t)(f.map[f.len] - f.map[pos]));
		ev->command.reason = reason_of(rest, *le ? le + 1 + (le[0] == '\r' && le[1] == '\n') : NULL);
		free(rest);
	}
	folded_free(&f);
	return true;
}

/* ---- the officer's own mail to KAMUSM ---- */

/* The bare address of smtp.reply_to ("Name <a@b>" or "a@b"). */
static char *mailbox_addr(const struct config *c)
{
	const char *r = c->smtp.reply_to;
	if (str_empty(r))
		return NULL;
	const char *lt = strrchr(r, '<');
	const char *s = lt ? lt + 1 : r;
	size_t n = lt ? strcspn(s, ">") : strlen(s);
	char *a = xstrndup(s, n);
	char *t = xstrdup(str_trim(a));
	free(a);
	return t;
}

/* Is addr in a domain that KAMUSM sends from (trust.kamusm_senders)? */
static bool kamusm_domain(const struct config *c, const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	for (size_t i = 0; at && c->trust.kamusm_senders && c->trust.kamusm_senders[i]; i++) {
		const char *p = strrchr(c->trust.kamusm_senders[i], '@');
		const char *dom = p ? p + 1 : c->trust.kamusm_senders[i];
		if (str_startswith(dom, "*."))
			dom += 2;
		if (domain_within(dom, at + 1))
			return true;
	}
	return false;
}

static bool addr_in(const struct addr *v, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].email && strcasecmp(v[i].email, want) == 0)
			return true;
	return false;
}

bool command_kamusm_copy(const struct config *c, const struct message *m, struct event *ev)
{
	if (m->from.email == NULL || !conf_is_officer(c, m->from.email))
		return false;
	bool to_kamusm = false;
	for (size_t i = 0; i < m->nto && !to_kamusm; i++)
		to_kamusm = kamusm_domain(c, m->to[i].email);
	if (!to_kamusm)
		return false;
	char *box = mailbox_addr(c);
	bool copied = box && (addr_in(m->cc, m->ncc, box) || addr_in(m->to, m->nto, box));
	free(box);
	if (!copied)
		return false;
	char **tags = tags_find(c->general.tag_prefix, m->subject);
	if (tags == NULL)
		return false;
	strv_free(tags);
	ev->command.verb = CMD_SUBMITTED;
	return true;
}
