/*
 * applicants_p.h: private to csv.c and applicants.c: the record splitter
 * and the table builder every source (CSV, HTML, text) feeds.
 */
#ifndef EIMZA_APPLICANTS_P_H
#define EIMZA_APPLICANTS_P_H

#include "applicants.h"

/* ---- records (csv.c) ---- */

struct csv_row {
	char **cells;           /* trimmed, owned */
	size_t n;
	int rec;                /* record number, 1-based, empty ones counted */
	int line;               /* physical line where the record starts */
};

struct csv_rows {
	struct csv_row *v;
	size_t n;
	size_t cap;
};

/* Room for one more element in a growing array (doubling: appending n
 * elements costs O(n), also where realloc must copy). */
void *grow(void *v, size_t n, size_t *cap, size_t size);

/* Split UTF-8 text into records at `delim` (RFC 4180 quoting). */
void csv_split(const char *s, size_t len, char delim, struct csv_rows *out);
void csv_rows_free(struct csv_rows *r);
/* The candidate delimiter occurring most often outside quotes in the
 * first line of s (ties: earlier in cands); 0 if none occurs. */
char csv_detect(const char *s, size_t len, const char *cands);
/* UTF-8 without BOM: valid UTF-8 is kept, anything else is read as
 * windows-1254. */
char *csv_to_utf8(const char *data, size_t len, size_t *outlen);

/* ---- columns and the builder (applicants.c) ---- */

enum col {
	COL_NAME, COL_FIRST, COL_LAST, COL_TC, COL_EMAIL, COL_MOBILE, COL_TITLE, COL_UNIT,
	COL__FIELDS,
	COL_EXTRA = COL__FIELDS,
};

/* Which column a header or label names (COL_EXTRA if none). */
enum col col_of_header(const char *header);

/* Bounds on what one table may hold: hostile input must not make the
 * work grow faster than the input. The row limit leaves room for the
 * import of a large institution's whole staff list. */
#define APPL_MAX_ROWS 200000
#define APPL_MAX_EXTRA 64
#define APPL_MAX_CELLS 256      /* cells of an HTML row, header cells read */

struct tbuild {
	struct applicant_table *t;
	const struct config *conf;
	bool full;              /* APPL_MAX_ROWS reached: the rest is ignored */
	size_t *seen;           /* e-mail hash set: index + 1 into t->rows, 0 empty */
	size_t nseen_cap;       /* a power of two */
	size_t rows_cap, errors_cap;    /* of t->rows (and t->extra), t->errors */
};
/* Release the builder's own memory (not the table). */
void tb_done(struct tbuild *b);

void tb_init(struct tbuild *b, struct applicant_table *t, const struct config *conf,
	     enum applicant_source src);
/* Note a header cell; returns its extra index for COL_EXTRA, else -1
 * (also when APPL_MAX_EXTRA extra columns exist: the cell is dropped). */
int tb_column(struct tbuild *b, const char *header, enum col c);
/* Validate one row: f[COL_*] may be NULL or empty; extra holds t->nextra
 * values (NULL allowed: all ""). Accepted or refused with a reason. */
void tb_row(struct tbuild *b, int row, char *const f[COL__FIELDS], char *const *extra);

/* A header row mapped to columns; cols has n entries. Does it hold a
 * name (or first + last name) and an e-mail column? */
bool header_usable(const enum col *cols, size_t n);
/* Build a table from rows[hdr] (the header) and the rows after it, up
 * to rows[end). use_line: row numbers are lines, else records. */
void table_from_rows(struct tbuild *b, const struct csv_rows *rows, size_t hdr, size_t end,
		     bool use_line);

#endif
