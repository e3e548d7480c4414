/* csv.c: CSV records and the CSV source of applicant tables (see
 * applicants.h, applicants_p.h). */
#include "applicants_p.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

void *grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 16;
	return xreallocarray(v, *cap, size);
}

char *csv_to_utf8(const char *data, size_t len, size_t *outlen)
{
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;
		len -= 3;
	}
	bool fallback = false;
	const char *cs = utf8_valid(data, len) ? "utf-8" : "windows-1254";
	return text_to_utf8(cs, data, len, outlen, &fallback);
}

char csv_detect(const char *s, size_t len, const char *cands)
{
	size_t counts[8] = { 0 };
	size_t nc = strlen(cands);
	bool quoted = false;
	if (nc > ARRAY_LEN(counts))
		nc = ARRAY_LEN(counts);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && (s[i] == '\n' || s[i] == '\r'))
			break;
		else if (!quoted)
			for (size_t k = 0; k < nc; k++)
				counts[k] += s[i] == cands[k];
	}
	size_t best = 0;
	for (size_t k = 1; k < nc; k++)
		if (counts[k] > counts[best])
			best = k;
	return counts[best] ? cands[best] : 0;
}

struct splitter {
	struct csv_rows *out;
	struct buf cell;
	char **cells;
	size_t ncells, cells_cap;
	bool quoted_cell;       /* the cell began with a quote: keep its spaces */
	int rec, line, rec_line;
};

static void end_cell(struct splitter *sp)
{
	buf_adds(&sp->cell, "");
	char *v = sp->quoted_cell ? xstrdup(sp->cell.p) : xstrdup(str_trim(sp->cell.p));
	sp->cells = grow(sp->cells, sp->ncells, &sp->cells_cap, sizeof(char *));
	sp->cells[sp->ncells++] = v;
	buf_reset(&sp->cell);
	sp->quoted_cell = false;
}

static void end_record(struct splitter *sp)
{
	end_cell(sp);
	struct csv_rows *o = sp->out;
	o->v = grow(o->v, o->n, &o->cap, sizeof(*o->v));
	o->v[o->n++] = (struct csv_row){ sp->cells, sp->ncells, ++sp->rec, sp->rec_line };
	sp->cells = NULL;
	sp->ncells = sp->cells_cap = 0;
}

static bool cell_blank(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->p[i] != ' ' && b->p[i] != '\t')
			return false;
	return true;
}

/* A quoted field from s[i] == '"'; returns the index after its closing
 * quote (or len when it never closes: the rest is the field). */
static size_t quoted_field(struct splitter *sp, const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '"') {
			if (i + 1 < len && s[i + 1] == '"') {
				buf_addc(&sp->cell, '"');
				i++;
				continue;
			}
			return i + 1;
		}
		if (s[i] == '\n')
			sp->line++;
		buf_addc(&sp->cell, s[i]);
	}
	return len;
}

void csv_split(const char *s, size_t len, char delim, struct csv_rows *out)
{
	struct splitter sp = { .out = out, .line = 1, .rec_line = 1 };
	memset(out, 0, sizeof(*out));
	size_t i = 0;
	bool any = false;
	while (i < len) {
		char c = s[i];
		any = true;
		if (c == '"' && cell_blank(&sp.cell)) {
			buf_reset(&sp.cell);
			sp.quoted_cell = true;
			i = quoted_field(&sp, s, len, i);
			continue;
		}
		if (c == delim) {
			end_cell(&sp);
		} else if (c == '\n' || c == '\r') {
			if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
			end_record(&sp);
			sp.rec_line = ++sp.line;
			any = false;
		} else if (!sp.quoted_cell) {
			buf_addc(&sp.cell, c);
		}
		i++;
	}
	if (any)
		end_record(&sp);
	buf_free(&sp.cell);
	for (size_t k = 0; k < sp.ncells; k++)
		free(sp.cells[k]);
	free(sp.cells);
}

void csv_rows_free(struct csv_rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		for (size_t k = 0; k < r->v[i].n; k++)
			free(r->v[i].cells[k]);
		free(r->v[i].cells);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static bool row_blank(const struct csv_row *r)
{
	for (size_t k = 0; k < r->n; k++)
		if (*r->cells[k])
			return false;
	return true;
}

int applicants_from_csv(const char *data, size_t len, const struct config *conf,
			struct applicant_table *out, char **err)
{
	struct tbuild b;
	tb_init(&b, out, conf, APPL_CSV);
	size_t n;
	char *s = csv_to_utf8(data, len, &n);
	/* The header is the first non-empty line: detect on it. */
	size_t start = strspn(s, " \t\r\n");
	char delim = csv_detect(s + start, n - start, "\t;,");
	struct csv_rows rows;
	csv_split(s, n, delim ? delim : ';', &rows);
	free(s);
	size_t hdr = 0;
	while (hdr < rows.n && row_blank(&rows.v[hdr]))
		hdr++;
	int rc = 0;
	enum col cols[64];
	size_t nh = hdr < rows.n ? rows.v[hdr].n : 0;
	for (size_t k = 0; k < nh && k < ARRAY_LEN(cols); k++)
		cols[k] = col_of_header(rows.v[hdr].cells[k]);
	if (hdr >= rows.n || !header_usable(cols, nh < ARRAY_LEN(cols) ? nh : ARRAY_LEN(cols)))
		rc = seterr(err, "no header with a name and an e-mail column in the CSV");
	else
		table_from_rows(&b, &rows, hdr, rows.n, false);
	csv_rows_free(&rows);
	tb_done(&b);
	return rc;
}
