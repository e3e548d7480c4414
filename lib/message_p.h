/*
 * message_p.h: private interface of the message module (mime.c, mime_hdr.c,
 * mime_date.c, forward.c) and of text_quote.c, which shares the table of
 * separators and labels with forward.c.
 *
 * Everything here follows message.h's ownership rules: strings are newly
 * allocated and owned by the struct message they are stored in.
 */
#ifndef EIMZA_MESSAGE_P_H
#define EIMZA_MESSAGE_P_H

#include "message.h"
#include "text.h"

/* ---- mime.c ---- */

/* A fresh, empty message (body "", subject ""). */
struct message *msg_new(void);
/* Append a decoding problem (formatted) to m->problems. */
void msg_problem(struct message *m, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Mark m unreadable with a reason (the first reason wins). */
void msg_unreadable(struct message *m, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Append a header (copies name and value). */
void msg_add_header(struct message *m, const char *name, const char *value);
/* Parse a message nested fwd_depth forwards deep (0 = the top). Never
 * returns NULL. */
struct message *msg_parse_nested(const char *raw, size_t len, const struct mime_limits *lim,
				 int fwd_depth);

/* ---- mime_scan.c ---- */

/* A stretch of a binary attachment's body that libetpan need not see:
 * whole non-empty lines of base64 characters, strictly inside the body of a leaf
 * part of a multipart whose type is on mime_scan.c's list of binary types
 * and whose headers do not mention "csv". */
struct mime_cut {
	size_t off;               /* where it starts (in the compacted copy,
				   * after mime_compact()) */
	size_t len;
};

/* What mime_prescan() learnt besides its verdict. */
struct mime_shape {
	bool lost_boundary;       /* a multipart whose boundary never occurs */
	struct mime_cut *cuts;    /* in order, disjoint; owned */
	size_t ncuts;
	size_t cut_bytes;         /* the sum of their lengths */
};

/* Follow the boundaries of raw cheaply; -1 with *why (allocated) when the
 * nesting is deeper than max_depth or there are more than max_parts
 * parts (out is then empty), 0 otherwise, with *out filled (free it with
 * mime_shape_free()). Linear time, bounded stack. */
int mime_prescan(const char *raw, size_t len, int max_depth, size_t max_parts,
		 struct mime_shape *out, char **why);
void mime_shape_free(struct mime_shape *sh);

/* A copy of raw without sh's cuts (NUL-terminated, caller frees), its
 * length in *outlen; rewrites each cut's off to where the cut bytes were
 * in the copy. libetpan makes the same tree of the copy as of raw, the
 * parts holding a cut being shorter by its length. */
char *mime_compact(const char *raw, size_t len, struct mime_shape *sh, size_t *outlen);

/* ---- mime_hdr.c ---- */

/* One header as scanned from raw bytes: name and unfolded raw value
 * (not yet RFC 2047 decoded, NULs dropped). */
struct raw_header {
	char *name;
	char *value;
};
struct raw_headers {
	struct raw_header *v;
	size_t n;
	size_t body_off;          /* where the body starts in the raw bytes */
	bool too_long;            /* some line exceeded max_header (truncated) */
	bool too_many;            /* header count limit hit */
};
/* Scan the header block at the start of raw (up to the blank line). Lines
 * longer than max_header are cut and flagged; linear time. */
void hdr_scan(const char *raw, size_t len, size_t max_header, struct raw_headers *out);
void hdr_scan_free(struct raw_headers *h);

/* Decode RFC 2047 encoded words (and raw 8-bit text) to UTF-8. Sets
 * *fallback when a charset had to be guessed; *bad_cs (if not NULL, and
 * not set yet) to the first unknown charset's name (allocated). */
char *hdr_decode(const char *value, bool *fallback, char **bad_cs);

/* RFC 2231 / RFC 2047 parameter assembly: the value of parameter `name`
 * from parallel arrays of raw parameter names and values (as libetpan
 * returns them), decoded to UTF-8; NULL if absent. */
char *param_decode(const char *name, const char *const *pnames, const char *const *pvalues,
		   size_t n);

/* The id inside the first <...> of s (or s trimmed, if no <>); NULL if
 * empty. */
char *msgid_clean(const char *s);
/* Every <...> id in s, NULL-terminated, or NULL if none. */
char **msgid_list(const char *s);

/* Fill from/to/cc/reply_to/sender/subject/ids/date of m from headers
 * whose values are raw (RFC 2047 words still encoded) or UTF-8. */
void msg_fill_envelope(struct message *m, const struct raw_headers *h);

/* ---- forward.c ---- */

enum fwd_field {
	FF_NONE, FF_FROM, FF_SENDER, FF_TO, FF_CC, FF_DATE, FF_SUBJECT, FF_REPLY_TO, FF_OTHER
};

/* If folded text s (len bytes, no newline) starts with a forward-block
 * label ("kimden:", "*from:*", "konu: | "), return its field and set
 * *vstart to the offset of the value in s; FF_NONE otherwise. */
enum fwd_field fwd_label_at(const char *s, size_t len, size_t *vstart);

/* Is folded, trimmed line s a forward or reply separator line (from the
 * table)? Returns the matching row's client name, NULL if not. */
const char *fwd_separator_client(const char *s, size_t len);

/* Look for an inline forward in m->body and, if found, build
 * m->forwarded (recursively up to lim->forward_depth). `outer` supplies
 * attachments the rebuilt original carries. */
void fwd_detect_inline(struct message *m, const struct mime_limits *lim, int fwd_depth);

#endif
