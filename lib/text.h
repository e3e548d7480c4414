/*
 * text.h: Turkish-aware text handling: charset conversion to UTF-8,
 * case and diacritic folding for matching, HTML to text, small UTF-8 tools.
 *
 * Folding. Matching in eimzad is done on *folded* text: lowercase ASCII
 * where Turkish letters lose their diacritics and both Turkish i's meet:
 *   İ i I ı -> i    Ş ş -> s    Ğ ğ -> g    Ü ü -> u    Ö ö -> o
 *   Ç ç -> c        Â â -> a    Î î -> i    Û û -> u
 * ASCII letters are lowercased; other UTF-8 sequences are copied as they
 * are; combining marks after a letter (decomposed ş, İ, â) are dropped,
 * so NFD text folds like NFC. So "TESLİM", "Teslim", "teslım" all fold to
 * "teslim", and "Başvuru" to "basvuru". Rule patterns are folded the same way before
 * they are compiled, so a pattern may be written with or without
 * diacritics, in any case.
 *
 * Ownership: every returned string is newly allocated and owned by the
 * caller (free()). Inputs are never modified.
 */
#ifndef EIMZA_TEXT_H
#define EIMZA_TEXT_H

#include "util.h"

/* Folded text plus, for each byte of the folded text, the offset of the
 * byte of the original it came from (map[len] == original length), so a
 * match found in folded text can be cut out of the original. */
struct folded {
	char *s;
	size_t len;
	size_t *map;     /* NULL unless asked for */
};
void text_fold(const char *in, size_t len, bool want_map, struct folded *out);
void folded_free(struct folded *f);
/* Convenience: folded copy of a NUL-terminated string, no map. */
char *text_fold_str(const char *s);

/*
 * Convert bytes in `charset` to UTF-8. Known aliases are accepted
 * (iso-8859-9, latin5, windows-1254, cp1254, x-cp1254, us-ascii, utf8,
 * ...). Unknown or missing charsets fall back: valid UTF-8 is kept,
 * otherwise windows-1254 is assumed (the common Turkish mislabel), and
 * *fallback is set to true so the caller can record it (pure ASCII needs
 * no guess and does not set it, unless the declared name is unknown to
 * iconv). Invalid sequences
 * become U+FFFD. NUL bytes are dropped. Never fails.
 */
char *text_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen, bool *fallback);

bool utf8_valid(const char *s, size_t len);
/* Length in code points (invalid bytes count as one each). */
size_t utf8_len(const char *s, size_t len);
/* Decode one code point at *p (advancing *p); invalid -> 0xFFFD, 1 byte. */
uint32_t utf8_next(const char **p, const char *end);
/* Append code point cp as UTF-8. */
void utf8_put(struct buf *b, uint32_t cp);

/*
 * HTML to plain text: drops <script>, <style>, <head> and comments;
 * <br>, <p>, <div>, <li>, <tr>, <h*> end lines; table cells are separated
 * by " | "; named (the common ones incl. Turkish letters) and numeric
 * entities are decoded; runs of blank lines collapse to one. Links keep
 * their text and, when different, " <href>" after it, so that rules can
 * see URLs written only in href attributes.
 */
char *html_to_text(const char *html, size_t len);

/* Collapse whitespace runs to one space and trim. */
char *text_squeeze(const char *s);

/* Strip a reply's quoted tail: lines starting with '>' and everything from
 * a known reply attribution or separator line ("On ... wrote:",
 * "... tarihinde şunu yazdı:", "-----Original Message-----", "-------- Özgün
 * İleti --------", "From: ..." header block) downwards. Returns the top. */
char *text_strip_quoted(const char *body);

#endif
