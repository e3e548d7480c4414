/*
 * applicants.h: tables of applicants, from a unit's request letter (a CSV
 * attachment, an HTML table in the body, or a plain-text list) or from a
 * file given to `eimzactl import`.
 *
 * Columns are found by their header, compared Turkish-folded (text.h) with
 * punctuation and spaces ignored, so "T.C. Kimlik No", "TC KİMLİK NO" and
 * "tckimlikno" are the same column. Recognised headers (any of):
 *   name    Ad Soyad, Adı Soyadı, Adı ve Soyadı, İsim, İsim Soyisim, Name,
 *           Full name; or two columns Ad/Adı/First name + Soyad/Soyadı/
 *           Surname/Last name, joined with a space
 *   tc      TC, T.C., TC No, TC Kimlik, T.C. Kimlik No, TC Kimlik Numarası,
 *           Kimlik No, TCKN
 *   email   E-posta, Kurumsal E-posta, E-posta Adresi, Kurum E-posta,
 *           E-mail, Email, Mail, Kurumsal Mail
 *   mobile  Cep Telefonu, Cep Tel, Cep, GSM, GSM No, Telefon, Telefon No,
 *           Mobile, Mobile phone, Phone
 *   title   Unvan, Ünvan, Unvanı, Görev, Görevi, Title
 *   unit    Birim, Birimi, Bölüm, Bölümü, Birim/Bölüm, Unit, Department
 * Every other column is an "extra" column, kept per row as written and
 * read by its header name with applicant_table_extra() (eimzactl import
 * reads `state` and `since` this way).
 *
 * Validation of each row (refused rows become struct row_error, in words,
 * with TC and phone masked as in logs):
 *   - name required;
 *   - e-mail required, one address, inside conf's institution_domains
 *     (or a subdomain): the applicant's institutional address; the domain
 *     is lowercased, the local part kept as written; "mailto:" and <> are
 *     removed;
 *   - TC optional; if given, 11 digits passing tc_valid() (spaces removed);
 *   - mobile optional; if given, normalised to E.164 by phone_normalize()
 *     with conf's sms.default_country;
 *   - the same e-mail twice: the later row is refused.
 * Rows whose cells are all empty are skipped silently. A table holds at
 * most 200000 rows (accepted and refused; the next one becomes an error
 * saying the rest was ignored) and 64 extra columns (more are dropped).
 *
 * Row numbers (struct applicant.row, struct row_error.row) are what a
 * person finds in the source: for CSV and HTML the record number with the
 * header as row 1 (as a spreadsheet shows it), for text the line number.
 *
 * Sources:
 *   CSV   the delimiter is the one of ';' ',' TAB that occurs most often
 *         outside quotes in the header line (ties: TAB, ';', ','); fields
 *         may be quoted with "" escapes and span lines; CRLF or LF; UTF-8
 *         with or without BOM; bytes that are not UTF-8 are read as
 *         windows-1254 (what Turkish Excel writes). The header is the
 *         first non-empty line.
 *   HTML  every <table> (nested ones apart) is tried in document order;
 *         the header row is the first of its first three rows that holds
 *         a name and an e-mail header; cells are converted with
 *         html_to_text().
 *   text  the tolerant shapes, tried in this order:
 *         1. a header line followed by delimited lines (';' TAB '|' ','),
 *            up to the first empty line;
 *         2. label blocks: lines "Label: value" with the header names
 *            above as labels ("Ad Soyad: ...", "E-posta: ..."); a block
 *            ends at an empty line or when a label repeats;
 *         3. one applicant per line without a header: a line holding an
 *            e-mail address, split at ';' TAB '|' ',' or " - "; each
 *            field is recognised by shape (an address, an 11-digit TC, a
 *            phone number, a name of two or more words of letters; what
 *            is left is the title, then the unit). A leading "1.", "1)",
 *            "-" or "*" is dropped.
 *
 * Ownership: the table owns everything it holds; applicant_table_free()
 * releases it (not the struct, usually on the stack).
 */
#ifndef EIMZA_APPLICANTS_H
#define EIMZA_APPLICANTS_H

#include "config.h"
#include "event.h"

enum applicant_source { APPL_NONE, APPL_CSV, APPL_HTML, APPL_TEXT };

struct applicant_table {
	enum applicant_source source;
	struct applicant *rows;       /* accepted rows, in source order */
	size_t nrows;
	struct row_error *errors;     /* refused rows, in source order */
	size_t nerrors;
	char **columns;               /* every header cell as written, NULL-terminated */
	char **extra_names;           /* the unrecognised ones, as written, NULL-terminated */
	size_t nextra;
	char ***extra;                /* extra[i][j]: rows[i]'s cell under extra_names[j],
				       * trimmed, "" when empty; nrows entries */
};

/*
 * Each returns 0 and fills *out when it found an applicant table (even if
 * every row was refused: see out->errors), or -1 with *err when there is
 * none (no header with a name and an e-mail column, no recognisable
 * line). *out is initialised in both cases, so applicant_table_free() is
 * always safe. conf supplies institution_domains and sms.default_country.
 */
int applicants_from_csv(const char *data, size_t len, const struct config *conf,
			struct applicant_table *out, char **err);
int applicants_from_html(const char *html, size_t len, const struct config *conf,
			 struct applicant_table *out, char **err);
int applicants_from_text(const char *text, size_t len, const struct config *conf,
			 struct applicant_table *out, char **err);

/* rows[row]'s cell in the extra column named `column` (compared like the
 * headers: Turkish-folded, punctuation and spaces ignored); borrowed;
 * NULL if there is no such column or row, "" if the cell is empty. */
const char *applicant_table_extra(const struct applicant_table *t, size_t row,
				  const char *column);

void applicant_table_free(struct applicant_table *t);

#endif
