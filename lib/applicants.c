/* applicants.c: applicant tables from HTML and text, the header names,
 * and row validation (see applicants.h; CSV is in csv.c). */
#include "applicants_p.h"
#include "classify.h"
#include "hashmap.h"
#include "log.h"
#include "phone.h"
#include "text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- header names ---- */

/* Headers folded with every non-alphanumeric dropped. */
static const struct {
	const char *key;
	enum col col;
} header_names[] = {
	{ "adsoyad", COL_NAME }, { "adisoyadi", COL_NAME }, { "adsoyadi", COL_NAME },
	{ "adisoyad", COL_NAME }, { "adivesoyadi", COL_NAME }, { "advesoyad", COL_NAME },
	{ "isim", COL_NAME }, { "isimsoyisim", COL_NAME }, { "isimsoyad", COL_NAME },
	{ "name", COL_NAME }, { "fullname", COL_NAME }, { "personeladisoyadi", COL_NAME },
	{ "ad", COL_FIRST }, { "adi", COL_FIRST }, { "firstname", COL_FIRST }, { "givenname", COL_FIRST },
	{ "soyad", COL_LAST }, { "soyadi", COL_LAST }, { "soyisim", COL_LAST },
	{ "surname", COL_LAST }, { "lastname", COL_LAST },
	{ "tc", COL_TC }, { "tcno", COL_TC }, { "tckimlik", COL_TC }, { "tckimlikno", COL_TC },
	{ "tckimliknumarasi", COL_TC }, { "kimlikno", COL_TC }, { "kimliknumarasi", COL_TC },
	{ "tckn", COL_TC }, { "tcnumarasi", COL_TC },
	{ "eposta", COL_EMAIL }, { "epostaadresi", COL_EMAIL }, { "kurumsaleposta", COL_EMAIL },
	{ "kurumsalepostaadresi", COL_EMAIL }, { "kurumeposta", COL_EMAIL },
	{ "kurumepostaadresi", COL_EMAIL }, { "email", COL_EMAIL }, { "emailaddress", COL_EMAIL },
	{ "mail", COL_EMAIL }, { "kurumsalmail", COL_EMAIL }, { "mailadresi", COL_EMAIL },
	{ "kurumsalemail", COL_EMAIL },
	{ "ceptelefonu", COL_MOBILE }, { "ceptel", COL_MOBILE }, { "cep", COL_MOBILE },
	{ "ceptelefonno", COL_MOBILE }, { "ceptelno", COL_MOBILE }, { "gsm", COL_MOBILE },
	{ "gsmno", COL_MOBILE }, { "telefon", COL_MOBILE }, { "telefonno", COL_MOBILE },
	{ "telefonnumarasi", COL_MOBILE }, { "mobile", COL_MOBILE }, { "mobilephone", COL_MOBILE },
	{ "phone", COL_MOBILE },
	{ "unvan", COL_TITLE }, { "unvani", COL_TITLE }, { "gorev", COL_TITLE },
	{ "gorevi", COL_TITLE }, { "title", COL_TITLE },
	{ "birim", COL_UNIT }, { "birimi", COL_UNIT }, { "bolum", COL_UNIT }, { "bolumu", COL_UNIT },
	{ "birimbolum", COL_UNIT }, { "unit", COL_UNIT }, { "department", COL_UNIT },
	{ "birimadi", COL_UNIT },
};

static char *header_key(const char *h)
{
	char *f = text_fold_str(h);
	char *o = f;
	for (const char *p = f; *p; p++)
		if (isalnum((unsigned char)*p))
			*o++ = *p;
	*o = '\0';
	return f;
}

enum col col_of_header(const char *header)
{
	char *k = header_key(header);
	enum col c = COL_EXTRA;
	for (size_t i = 0; i < ARRAY_LEN(header_names) && c == COL_EXTRA; i++)
		if (strcmp(k, header_names[i].key) == 0)
			c = header_names[i].col;
	free(k);
	return c;
}

bool header_usable(const enum col *cols, size_t n)
{
	bool name = false, first = false, last = false, email = false;
	for (size_t i = 0; i < n; i++) {
		name |= cols[i] == COL_NAME;
		first |= cols[i] == COL_FIRST;
		last |= cols[i] == COL_LAST;
		email |= cols[i] == COL_EMAIL;
	}
	return email && (name || (first && last));
}

/* ---- the builder ---- */

void tb_init(struct tbuild *b, struct applicant_table *t, const struct config *conf,
	     enum applicant_source src)
{
	memset(t, 0, sizeof(*t));
	t->source = src;
	b->t = t;
	b->conf = conf;
}

int tb_column(struct tbuild *b, const char *header, enum col c)
{
	struct applicant_table *t = b->t;
	t->columns = strv_add(t->columns, header);
	if (c != COL_EXTRA)
		return -1;
	t->extra_names = strv_add(t->extra_names, header);
	/* Rows already taken (label blocks meet new labels as they go)
	 * get an empty cell for the new column. */
	for (size_t i = 0; i < t->nrows; i++) {
		t->extra[i] = xreallocarray(t->extra[i], t->nextra + 1, sizeof(char *));
		t->extra[i][t->nextra] = xstrdup("");
	}
	return (int)t->nextra++;
}

static void row_error(struct applicant_table *t, int row, const char *reason)
{
	t->errors = xreallocarray(t->errors, t->nerrors + 1, sizeof(*t->errors));
	t->errors[t->nerrors].row = row;
	t->errors[t->nerrors++].reason = xstrdup(reason);
}

static bool email_shape(const char *e)
{
	const char *at = strchr(e, '@');
	if (at == NULL || at == e || strchr(at + 1, '@') || strchr(at + 1, '.') == NULL)
		return false;
	for (const char *p = e; *p; p++)
		if (isspace((unsigned char)*p) || strchr("<>,;:\"()[]\\", *p))
			return false;
	const char *last = e + strlen(e) - 1;
	return *last != '.' && at[1] != '.';
}

/* The one address in a cell: "mailto:", <> and a repeated copy (HTML's
 * "a@b <mailto:a@b>") are dropped. NULL with *why if not exactly one. */
static char *email_clean(const char *cell, const char **why)
{
	char *copy = xstrdup(cell), *save = NULL, *found = NULL;
	*why = NULL;
	for (char *t = strtok_r(copy, " \t<>;,", &save); t; t = strtok_r(NULL, " \t<>;,", &save)) {
		if (strncasecmp(t, "mailto:", 7) == 0)
			t += 7;
		if (strchr(t, '@') == NULL)
			continue;
		if (found && strcasecmp(found, t) != 0) {
			*why = "more than one e-mail address";
			break;
		}
		if (found == NULL)
			found = t;
	}
	char *res = NULL;
	if (*why == NULL && found == NULL)
		*why = str_empty(cell) ? "no e-mail address" : "not an e-mail address";
	else if (*why == NULL && !email_shape(found))
		*why = "not an e-mail address";
	else if (*why == NULL)
		res = xstrdup(found);
	free(copy);
	if (res)
		str_lower_ascii(strrchr(res, '@'));
	return res;
}

static char *squeezed(const char *s)
{
	return s && *s ? text_squeeze(s) : NULL;
}

static char *digits_of(const char *s)
{
	char *d = xstrdup(s), *o = d;
	for (const char *p = s; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '-' && *p != '.')
			*o++ = *p;
	*o = '\0';
	return d;
}

static void check_tc(const char *cell, struct applicant *a, struct buf *why)
{
	if (str_empty(cell))
		return;
	char *tc = digits_of(cell);
	char masked[32];
	mask_tc(tc, masked, sizeof(masked));
	bool digits = strlen(tc) == 11 && strspn(tc, "0123456789") == 11;
	if (!digits)
		buf_printf(why, "%sTC kimlik no %s is not 11 digits", why->len ? "; " : "", masked);
	else if (!tc_valid(tc))
		buf_printf(why, "%sTC kimlik no %s fails the checksum", why->len ? "; " : "", masked);
	else
		a->tc = tc, tc = NULL;
	free(tc);
}

static void check_mobile(const struct config *conf, const char *cell, struct applicant *a,
			 struct buf *why)
{
	if (str_empty(cell))
		return;
	char *err = NULL, *e164 = NULL, masked[32];
	if (phone_normalize(cell, conf->sms.default_country, &e164, &err) == 0) {
		a->mobile = e164;
		return;
	}
	char *d = digits_of(cell);
	buf_printf(why, "%smobile %s: %s", why->len ? "; " : "", mask_phone(d, masked, sizeof(masked)),
		   err ? err : "not valid");
	free(d);
	free(err);
}

static void check_email(const struct config *conf, const char *cell, struct applicant *a,
			struct buf *why)
{
	const char *bad;
	char *e = email_clean(cell ? cell : "", &bad);
	if (e == NULL)
		buf_printf(why, "%s%s", why->len ? "; " : "", bad);
	else if (!conf_domain_allowed(conf, e))
		buf_printf(why, "%se-mail %s is not in the institution's domains", why->len ? "; " : "", e);
	else
		a->email = e, e = NULL;
	free(e);
}

static bool all_empty(char *const f[COL__FIELDS])
{
	for (int i = 0; i < COL__FIELDS; i++)
		if (!str_empty(f[i]))
			return false;
	return true;
}

static char *name_of(char *const f[COL__FIELDS])
{
	if (!str_empty(f[COL_NAME]))
		return squeezed(f[COL_NAME]);
	if (str_empty(f[COL_FIRST]) && str_empty(f[COL_LAST]))
		return NULL;
	char *j = xasprintf("%s %s", f[COL_FIRST] ? f[COL_FIRST] : "", f[COL_LAST] ? f[COL_LAST] : "");
	char *s = squeezed(j);
	free(j);
	return s;
}

/* The row that already holds this e-mail (compared ignoring ASCII case),
 * or 0. */
static int dup_row(const struct applicant_table *t, const char *email)
{
	if (t->by_email == NULL)
		return 0;
	char *low = str_lower_ascii(xstrdup(email));
	int row = (int)(intptr_t)hm_get(t->by_email, low);
	free(low);
	return row;
}

static void index_row(struct applicant_table *t, const struct applicant *a)
{
	if (a->email == NULL)
		return;
	if (t->by_email == NULL)
		t->by_email = hm_new();
	char *low = str_lower_ascii(xstrdup(a->email));
	if (hm_get(t->by_email, low) == NULL)     /* the first row keeps the key */
		hm_put(t->by_email, low, (void *)(intptr_t)a->row);
	free(low);
}

static void accept_row(struct tbuild *b, struct applicant *a, char *const *extra)
{
	struct applicant_table *t = b->t;
	t->rows = xreallocarray(t->rows, t->nrows + 1, sizeof(*t->rows));
	t->rows[t->nrows] = *a;
	index_row(t, a);
	t->extra = xreallocarray(t->extra, t->nrows + 1, sizeof(char **));
	char **ex = xcalloc(t->nextra + 1, sizeof(char *));
	for (size_t j = 0; j < t->nextra; j++)
		ex[j] = xstrdup(extra && extra[j] ? extra[j] : "");
	t->extra[t->nrows++] = ex;
}

void tb_row(struct tbuild *b, int row, char *const f[COL__FIELDS], char *const *extra)
{
	if (all_empty(f))
		return;
	struct applicant a = { .row = row };
	struct buf why = BUF_INIT;
	a.name = name_of(f);
	if (a.name == NULL)
		buf_adds(&why, "no name");
	check_email(b->conf, f[COL_EMAIL], &a, &why);
	check_tc(f[COL_TC], &a, &why);
	check_mobile(b->conf, f[COL_MOBILE], &a, &why);
	a.title = squeezed(f[COL_TITLE]);
	a.unit = squeezed(f[COL_UNIT]);
	int dup = a.email ? dup_row(b->t, a.email) : 0;
	if (why.len == 0 && dup)
		buf_printf(&why, "the same e-mail as row %d", dup);
	if (why.len) {
		row_error(b->t, row, why.p);
		applicant_free(&a);
	} else {
		accept_row(b, &a, extra);
	}
	buf_free(&why);
}

void table_from_rows(struct tbuild *b, const struct csv_rows *rows, size_t hdr, size_t end,
		     bool use_line)
{
	const struct csv_row *h = &rows->v[hdr];
	enum col *cols = xcalloc(h->n + 1, sizeof(enum col));
	int *xidx = xcalloc(h->n + 1, sizeof(int));
	bool seen[COL__FIELDS] = { false };
	for (size_t k = 0; k < h->n; k++) {
		cols[k] = col_of_header(h->cells[k]);
		if (cols[k] != COL_EXTRA && seen[cols[k]])
			cols[k] = COL_EXTRA;     /* the first of two alike wins */
		else if (cols[k] != COL_EXTRA)
			seen[cols[k]] = true;
		xidx[k] = tb_column(b, h->cells[k], cols[k]);
	}
	char **extra = xcalloc(b->t->nextra + 1, sizeof(char *));
	for (size_t r = hdr + 1; r < end; r++) {
		char *f[COL__FIELDS] = { NULL };
		for (size_t k = 0; k < h->n && k < rows->v[r].n; k++) {
			if (cols[k] != COL_EXTRA)
				f[cols[k]] = rows->v[r].cells[k];
			else
				extra[xidx[k]] = rows->v[r].cells[k];
		}
		tb_row(b, use_line ? rows->v[r].line : rows->v[r].rec, f, extra);
		memset(extra, 0, (b->t->nextra + 1) * sizeof(char *));
	}
	free(extra);
	free(xidx);
	free(cols);
}

/* ---- lookups and freeing ---- */

const char *applicant_table_extra(const struct applicant_table *t, size_t row, const char *column)
{
	if (row >= t->nrows)
		return NULL;
	char *want = header_key(column);
	const char *res = NULL;
	for (size_t j = 0; j < t->nextra && res == NULL; j++) {
		char *k = header_key(t->extra_names[j]);
		if (strcmp(k, want) == 0)
			res = t->extra[row][j];
		free(k);
	}
	free(want);
	return res;
}

void applicant_table_free(struct applicant_table *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		applicant_free(&t->rows[i]);
		for (size_t j = 0; j < t->nextra; j++)
			free(t->extra[i][j]);
		free(t->extra[i]);
	}
	free(t->rows);
	free(t->extra);
	for (size_t i = 0; i < t->nerrors; i++)
		free(t->errors[i].reason);
	free(t->errors);
	strv_free(t->columns);
	strv_free(t->extra_names);
	hm_free(t->by_email);
	memset(t, 0, sizeof(*t));
}

/* ---- HTML tables ---- */

struct htable {
	struct csv_rows rows;
	long cell_start;        /* offset of the open cell's content, -1 if none */
};

struct hparse {
	const char *html;
	struct htable *tabs;    /* in document order of their <table> */
	size_t ntabs;
	size_t *stack;          /* open tables, innermost last */
	size_t depth;
};

static void h_close_cell(struct hparse *hp, size_t end)
{
	if (hp->depth == 0)
		return;
	struct htable *t = &hp->tabs[hp->stack[hp->depth - 1]];
	if (t->cell_start < 0 || t->rows.n == 0)
		return;
	struct csv_row *r = &t->rows.v[t->rows.n - 1];
	size_t start = (size_t)t->cell_start;
	char *sq;
	if (end > start) {
		char *txt = html_to_text(hp->html + start, end - start);
		sq = text_squeeze(txt);
		free(txt);
	} else {
		sq = xstrdup("");     /* <td></td> */
	}
	r->cells = xreallocarray(r->cells, r->n + 1, sizeof(char *));
	r->cells[r->n++] = sq;
	t->cell_start = -1;
}

static void h_new_row(struct hparse *hp)
{
	struct htable *t = &hp->tabs[hp->stack[hp->depth - 1]];
	struct csv_rows *rs = &t->rows;
	rs->v = xreallocarray(rs->v, rs->n + 1, sizeof(*rs->v));
	rs->v[rs->n] = (struct csv_row){ NULL, 0, (int)rs->n + 1, (int)rs->n + 1 };
	rs->n++;
}

static void h_tag(struct hparse *hp, const char *name, bool closing, size_t tag_start, size_t tag_end)
{
	if (strcmp(name, "table") == 0) {
		if (!closing) {
			hp->tabs = xreallocarray(hp->tabs, hp->ntabs + 1, sizeof(*hp->tabs));
			hp->tabs[hp->ntabs] = (struct htable){ { NULL, 0 }, -1 };
			hp->stack = xreallocarray(hp->stack, hp->depth + 1, sizeof(size_t));
			hp->stack[hp->depth++] = hp->ntabs++;
		} else if (hp->depth) {
			h_close_cell(hp, tag_start);
			hp->depth--;
		}
		return;
	}
	if (hp->depth == 0)
		return;
	struct htable *t = &hp->tabs[hp->stack[hp->depth - 1]];
	bool cell = strcmp(name, "td") == 0 || strcmp(name, "th") == 0;
	if (strcmp(name, "tr") == 0 || cell)
		h_close_cell(hp, tag_start);
	if (strcmp(name, "tr") == 0 && !closing)
		h_new_row(hp);
	if (cell && !closing) {
		if (t->rows.n == 0)
			h_new_row(hp);
		t->cell_start = (long)tag_end;
	}
}

/* Walk the tags; returns the tables found. */
static void h_scan(struct hparse *hp, size_t len)
{
	const char *s = hp->html;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '<')
			continue;
		if (i + 3 < len && memcmp(s + i, "<!--", 4) == 0) {
			const char *e = memmem(s + i + 4, len - i - 4, "-->", 3);
			i = e ? (size_t)(e - s) + 2 : len;
			continue;
		}
		size_t j = i + 1;
		bool closing = j < len && s[j] == '/';
		j += closing;
		char name[8];
		size_t k = 0;
		while (j < len && isalpha((unsigned char)s[j]) && k + 1 < sizeof(name))
			name[k++] = (char)tolower((unsigned char)s[j++]);
		name[k] = '\0';
		const char *gt = memchr(s + j, '>', len - j);
		size_t end = gt ? (size_t)(gt - s) + 1 : len;
		if (k > 0 && (j >= len || !isalpha((unsigned char)s[j])))
			h_tag(hp, name, closing, i, end);
		i = end - 1;
	}
	while (hp->depth)
		h_tag(hp, "table", true, len, len);
}

static bool html_table_try(struct tbuild *b, const struct csv_rows *rows)
{
	for (size_t r = 0; r < rows->n && r < 3; r++) {
		enum col cols[64];
		size_t n = rows->v[r].n < ARRAY_LEN(cols) ? rows->v[r].n : ARRAY_LEN(cols);
		for (size_t k = 0; k < n; k++)
			cols[k] = col_of_header(rows->v[r].cells[k]);
		if (header_usable(cols, n)) {
			table_from_rows(b, rows, r, rows->n, false);
			return true;
		}
	}
	return false;
}

int applicants_from_html(const char *html, size_t len, const struct config *conf,
			 struct applicant_table *out, char **err)
{
	struct tbuild b;
	tb_init(&b, out, conf, APPL_HTML);
	struct hparse hp = { .html = html };
	h_scan(&hp, len);
	bool found = false;
	for (size_t i = 0; i < hp.ntabs; i++) {
		if (!found)
			found = html_table_try(&b, &hp.tabs[i].rows);
		csv_rows_free(&hp.tabs[i].rows);
	}
	free(hp.tabs);
	free(hp.stack);
	return found ? 0 : seterr(err, "no table with a name and an e-mail column");
}

/* ---- plain text ---- */

struct line {
	const char *p;
	size_t n;
	int no;
};

struct lines {
	struct line *v;
	size_t n;
};

/* Lines up to a signature ("-- "), quoted lines ('>') left out. */
static void lines_split(const char *s, size_t len, struct lines *out)
{
	memset(out, 0, sizeof(*out));
	int no = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - s) : len;
		size_t n = e - i;
		if (n && s[i + n - 1] == '\r')
			n--;
		no++;
		if ((n == 3 && memcmp(s + i, "-- ", 3) == 0) || (n == 2 && memcmp(s + i, "--", 2) == 0))
			break;
		if (!(n && s[i] == '>')) {
			out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
			out->v[out->n++] = (struct line){ s + i, n, no };
		}
		i = e + 1;
	}
}

static bool line_blank(const struct line *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!isspace((unsigned char)l->p[i]))
			return false;
	return true;
}

static bool has_any(const struct line *l, const char *chars)
{
	for (const char *c = chars; *c; c++)
		if (memchr(l->p, *c, l->n))
			return true;
	return false;
}

/* Shape 1: a header line, delimited rows up to the first empty line. */
static bool text_delimited(struct tbuild *b, const struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		const struct line *l = &ls->v[i];
		if (l->n > 1000 || !has_any(l, ";\t|,"))
			continue;
		char delim = csv_detect(l->p, l->n, "\t;|,");
		struct csv_rows hdr;
		csv_split(l->p, l->n, delim, &hdr);
		enum col cols[64];
		size_t n = hdr.n ? (hdr.v[0].n < 64 ? hdr.v[0].n : 64) : 0;
		for (size_t k = 0; k < n; k++)
			cols[k] = col_of_header(hdr.v[0].cells[k]);
		csv_rows_free(&hdr);
		if (!header_usable(cols, n))
			continue;
		size_t j = i;
		while (j < ls->n && !line_blank(&ls->v[j]) && ls->v[j].no - l->no == (int)(j - i))
			j++;
		const struct line *last = &ls->v[j - 1];
		struct csv_rows rows;
		csv_split(l->p, (size_t)(last->p + last->n - l->p), delim, &rows);
		for (size_t r = 0; r < rows.n; r++)
			rows.v[r].line += l->no - 1;
		table_from_rows(b, &rows, 0, rows.n, true);
		csv_rows_free(&rows);
		return true;
	}
	return false;
}

/* "Label: value" with a known or short label; *label_col COL_EXTRA for
 * an unknown label. */
static bool label_line(const struct line *l, char **label, char **value, enum col *c)
{
	const char *colon = memchr(l->p, ':', l->n);
	if (colon == NULL || colon == l->p || colon - l->p > 40)
		return false;
	*label = xstrndup(l->p, (size_t)(colon - l->p));
	char *lt = str_trim(*label);
	memmove(*label, lt, strlen(lt) + 1);
	*value = xstrndup(colon + 1, l->n - (size_t)(colon + 1 - l->p));
	char *vt = str_trim(*value);
	memmove(*value, vt, strlen(vt) + 1);
	*c = col_of_header(*label);
	return true;
}

struct block {
	char *f[COL__FIELDS];
	char **extra;           /* nextra entries, NULL where not given */
	size_t nextra;
	int row;
	bool open;
};

/* Grow the block's extra cells to the table's extra columns. */
static void block_fit(struct tbuild *b, struct block *bl)
{
	size_t want = b->t->nextra;
	if (bl->nextra >= want)
		return;
	bl->extra = xreallocarray(bl->extra, want, sizeof(char *));
	for (size_t j = bl->nextra; j < want; j++)
		bl->extra[j] = NULL;
	bl->nextra = want;
}

static void block_flush(struct tbuild *b, struct block *bl)
{
	block_fit(b, bl);
	if (bl->open)
		tb_row(b, bl->row, bl->f, bl->extra);
	for (int i = 0; i < COL__FIELDS; i++)
		free(bl->f[i]);
	for (size_t j = 0; j < bl->nextra; j++)
		free(bl->extra[j]);
	free(bl->extra);
	memset(bl, 0, sizeof(*bl));
}

static int extra_index(const struct applicant_table *t, const char *label)
{
	int idx = -1;
	char *want = header_key(label);
	for (size_t j = 0; j < t->nextra && idx < 0; j++) {
		char *k = header_key(t->extra_names[j]);
		if (strcmp(k, want) == 0)
			idx = (int)j;
		free(k);
	}
	free(want);
	return idx;
}

static void block_extra(struct tbuild *b, struct block *bl, const char *label, char *value)
{
	int idx = extra_index(b->t, label);
	if (idx < 0)
		idx = tb_column(b, label, COL_EXTRA);
	block_fit(b, bl);
	free(bl->extra[idx]);
	bl->extra[idx] = value;
}

/* One "Label: value" line into the open block; false if it starts a new
 * block (the label repeats). */
static bool block_take(struct tbuild *b, struct block *bl, const char *label, char *value, enum col c)
{
	if (c != COL_EXTRA) {
		if (bl->f[c]) {
			free(value);
			return false;
		}
		bl->f[c] = value;
		return true;
	}
	block_extra(b, bl, label, value);
	return true;
}

static bool starts_block(enum col c)
{
	return c == COL_NAME || c == COL_FIRST;
}

/* Shape 2: label blocks. */
static bool text_labels(struct tbuild *b, const struct lines *ls)
{
	struct block bl = { 0 };
	bool any = false;
	for (size_t i = 0; i < ls->n; i++) {
		char *label = NULL, *value = NULL;
		enum col c;
		if (line_blank(&ls->v[i]) || !label_line(&ls->v[i], &label, &value, &c)) {
			block_flush(b, &bl);
			continue;
		}
		if (!bl.open && starts_block(c)) {
			bl.open = true;
			bl.row = ls->v[i].no;
			any = true;
		}
		if (bl.open && !block_take(b, &bl, label, xstrdup(value), c)) {
			block_flush(b, &bl);
			if (starts_block(c)) {
				bl.open = true;
				bl.row = ls->v[i].no;
				block_take(b, &bl, label, xstrdup(value), c);
			}
		}
		free(label);
		free(value);
	}
	block_flush(b, &bl);
	return any;
}

/* ---- shape 3: one applicant per line, fields by shape ---- */

static bool name_shape(const char *s)
{
	int words = 0;
	bool in_word = false;
	size_t n = strlen(s);
	if (n == 0 || n > 80)
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == ' ') {
			in_word = false;
			continue;
		}
		if (!(isalpha(ch) || ch >= 0x80 || ch == '.' || ch == '\'' || ch == '-'))
			return false;
		if (!in_word)
			words++;
		in_word = true;
	}
	return words >= 2;
}

static bool tc_shape(const char *s)
{
	/* 11 digits like "0533 000 00 04" too, but a TC never starts with 0 */
	char *d = digits_of(s);
	bool ok = strlen(d) == 11 && strspn(d, "0123456789") == 11 && d[0] != '0';
	free(d);
	return ok;
}

static bool phone_shape(const char *s)
{
	int digits = 0;
	for (const char *p = s; *p; p++) {
		if (isdigit((unsigned char)*p))
			digits++;
		else if (!strchr("+ ()-./", *p))
			return false;
	}
	return digits >= 10;
}

/* Split one line at the first separator kind it holds. */
static char **fields_of(const char *line)
{
	static const char *const seps[] = { ";", "\t", "|", ",", " - ", " – " };
	char **v = NULL;
	for (size_t i = 0; i < ARRAY_LEN(seps) && v == NULL; i++) {
		if (strstr(line, seps[i]) == NULL)
			continue;
		size_t sl = strlen(seps[i]);
		for (const char *p = line;;) {
			const char *q = strstr(p, seps[i]);
			char *cell = xstrndup(p, q ? (size_t)(q - p) : strlen(p));
			v = strv_add(v, str_trim(cell));
			free(cell);
			if (q == NULL)
				break;
			p = q + sl;
		}
	}
	return v;
}

/* Drop "1.", "1)", "-", "*" in front of a list item. */
static const char *item_start(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	const char *p = s;
	while (isdigit((unsigned char)*p))
		p++;
	if (p > s && (*p == '.' || *p == ')'))
		return p + 1;
	if (*s == '-' || *s == '*')
		return s + 1;
	return s;
}

static void shaped_line(struct tbuild *b, const struct line *l, bool *any)
{
	char *line = xstrndup(l->p, l->n);     /* may be shorter: a NUL ends it */
	char **v = strchr(line, '@') ? fields_of(item_start(line)) : NULL;
	char *f[COL__FIELDS] = { NULL };
	int rest = 0;
	for (size_t i = 0; v && v[i]; i++) {
		char *x = v[i];
		enum col c = strchr(x, '@') ? COL_EMAIL : tc_shape(x) ? COL_TC
			   : phone_shape(x) ? COL_MOBILE : (!f[COL_NAME] && name_shape(x)) ? COL_NAME
			   : rest == 0 ? COL_TITLE : rest == 1 ? COL_UNIT : COL_EXTRA;
		if (c == COL_TITLE || c == COL_UNIT)
			rest++;
		if (c != COL_EXTRA && f[c] == NULL && *x)
			f[c] = x;
	}
	/* A guess needs more than an address and a name: a TC or a mobile. */
	if (f[COL_NAME] && f[COL_EMAIL] && (f[COL_TC] || f[COL_MOBILE])) {
		tb_row(b, l->no, f, NULL);
		*any = true;
	}
	strv_free(v);
	free(line);
}

static bool text_shaped(struct tbuild *b, const struct lines *ls)
{
	bool any = false;
	for (size_t i = 0; i < ls->n; i++)
		if (ls->v[i].n < 1000)
			shaped_line(b, &ls->v[i], &any);
	return any;
}

int applicants_from_text(const char *text, size_t len, const struct config *conf,
			 struct applicant_table *out, char **err)
{
	struct tbuild b;
	tb_init(&b, out, conf, APPL_TEXT);
	struct lines ls;
	lines_split(text, len, &ls);
	bool found = text_delimited(&b, &ls) || text_labels(&b, &ls) || text_shaped(&b, &ls);
	free(ls.v);
	if (!found) {
		applicant_table_free(out);
		out->source = APPL_TEXT;
		return seterr(err, "no applicant list in the text");
	}
	return 0;
}
