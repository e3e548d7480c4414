/*
 * message.h: a mail message decoded once into what the rules need.
 *
 * message_parse() runs libetpan's MIME parser over the raw bytes once and
 * produces headers decoded to UTF-8 (RFC 2047, RFC 2231), the main body as
 * UTF-8 text (text/plain preferred; else text/html converted with
 * html_to_text()), the attachments the rules may read (text/csv, other text types,
 * message/rfc822, delivery-status), and the forwarded original if there is
 * one (see `forwarded`).
 *
 * Large parts that the rules never read (images, PDFs, octet-streams) are
 * not decoded: only their type, name and size are kept, so a 25 MB
 * attachment is never held twice.
 *
 * Limits (struct mime_limits) bound nesting, part count, header size and
 * decoded text size. Hitting one is not an error: the message is marked
 * `unreadable` with the reason, and what was decoded so far is kept.
 *
 * Text kept (body, part text) is UTF-8 with "\n" line ends, NUL-free.
 *
 * Forwards: a message/rfc822 part (not the one a multipart/report returns)
 * is parsed as the forwarded original; otherwise the body is searched for
 * the inline forward blocks clients write (forward.c has the table), and
 * for "FW:"/"Fwd:"/"İLT:" subjects for Outlook 2019's attribution form.
 * fwd_client is then one of thunderbird-tr/-en, gmail-tr/-en, outlook-tr/
 * -en (separator "-----Original Message-----" or a bare label block),
 * outlook-web, outlook-2019-tr, yahoo-tr/-en, apple-tr/-en, roundcube-tr/
 * -en, zimbra-tr/-en, attribution-en. An inline-rebuilt original has the
 * labels as headers (From, To, Cc, Date, Subject, Reply-To, Sender), the
 * text below the block as body, and copies of the forwarding message's
 * attachments (clients carry the original's attachments that way). A
 * reply ("RE:", "YNT:") quoting its original is not taken as a forward.
 *
 * Ownership: message_parse() returns a message the caller frees with
 * message_free(), which frees everything reachable from it, including
 * `forwarded`. The raw input is not referenced after the call returns.
 */
#ifndef EIMZA_MESSAGE_H
#define EIMZA_MESSAGE_H

#include "util.h"

struct mime_limits {
	int max_depth;           /* multipart / rfc822 nesting, default 20 */
	size_t max_parts;        /* default 1000 */
	size_t max_header;       /* one header line, default 64 KiB */
	size_t max_text;         /* decoded text kept per part, default 4 MiB */
	int forward_depth;       /* forwards unwrapped, default 3 */
};
#define MIME_LIMITS_DEFAULT { 20, 1000, 65536, 4u << 20, 3 }

struct addr {
	char *name;              /* display name, UTF-8, may be NULL */
	char *email;             /* lowercased domain, as written local part */
};

struct header {
	char *name;              /* as written */
	char *value;             /* unfolded, RFC 2047 decoded, UTF-8 */
};

enum part_role { PART_BODY, PART_ATTACHMENT, PART_INLINE };

struct part {
	char *content_type;      /* lowercased "text/csv" */
	char *filename;          /* decoded (RFC 2231 / 2047), may be NULL */
	char *charset;           /* as declared, lowercased, may be NULL */
	enum part_role role;
	size_t size;             /* decoded size in bytes (or encoded if not decoded) */
	char *text;              /* UTF-8 for text parts we read, else NULL */
	size_t text_len;
	bool charset_fallback;   /* charset unknown/missing and guessed */
};

enum fwd_style {
	FWD_NONE,
	FWD_RFC822,              /* message/rfc822 attachment */
	FWD_INLINE,              /* a separator and header block in the body */
};

struct message {
	struct header *headers;
	size_t nheaders;

	struct addr from;
	struct addr *to;         size_t nto;
	struct addr *cc;         size_t ncc;
	struct addr reply_to;    /* email NULL if none */
	struct addr sender;      /* Sender: header, email NULL if none */
	char *subject;           /* decoded; "" if none */
	char *message_id;        /* without <>; NULL if none */
	char *in_reply_to;       /* without <>; NULL if none */
	char **references;       /* without <>; NULL-terminated or NULL */
	char *date_raw;          /* the Date header as written */
	time_t date;             /* parsed Date, 0 if missing or unparseable */

	char *body;              /* main text, UTF-8, never NULL */
	size_t body_len;
	bool body_from_html;     /* body came from text/html */
	char *html;              /* the HTML alternative as UTF-8, or NULL */

	struct part *parts;      /* every leaf part, body parts included */
	size_t nparts;

	/* The forwarded original, when this message forwards one: the
	 * innermost message/rfc822 attachment, or the message rebuilt from
	 * an inline forward block (its headers from the block's labels:
	 * From/Kimden/Gönderen, To/Kime, Cc/Bilgi, Date/Sent/Tarih/Gönderildi/
	 * Gönderilen, Subject/Konu; its body the text below the block).
	 * Nested forwards chain through forwarded->forwarded. */
	struct message *forwarded;
	enum fwd_style fwd_style;
	char *fwd_client;        /* which client's separator matched, e.g.
				  * "thunderbird-tr", "outlook-en"; NULL */

	/* Decoding problems, in words ("part 3: unknown charset x-foo,
	 * read as windows-1254"); NULL-terminated or NULL. */
	char **problems;
	bool unreadable;         /* a limit was hit or the mail is not MIME at all */
	char *unreadable_reason;

	/* Bytes of binary attachments' base64 that libetpan was spared
	 * (mime_scan.c's cuts; 0 when the whole message was parsed).
	 * Nothing else changes with it: the parts come out the same. */
	size_t cut_bytes;
};

/* Parse raw RFC 5322 bytes. Returns 0 and *out, or -1 with *err only when
 * nothing at all could be parsed (empty input); broken but partly readable
 * mail still returns 0 with problems/unreadable set. */
int message_parse(const char *raw, size_t len, const struct mime_limits *lim,
		  struct message **out, char **err);
void message_free(struct message *m);

/* First header with this name (case-insensitive), decoded; NULL if none. */
const char *message_header(const struct message *m, const char *name);
/* Every header with this name, in order; returns the count, fills at most
 * max pointers (borrowed). */
size_t message_headers(const struct message *m, const char *name, const char **out, size_t max);

/* Parse an RFC 5322 date (and the common broken variants); 0 if none.
 * Also Turkish and English forms from forward blocks ("27 Eki 2021 Çar,
 * 09:31", "Perşembe, 28 Ekim 2021 12:46", "Wed, Oct 27, 2021 at 9:31 AM",
 * "28/10/2021 12:46"); without a zone the time is Turkey's (UTC+3), and
 * numeric dates are read day first unless impossible. */
time_t mail_date_parse(const char *s);

/* Parse one address or a list ("Name <a@b>, c@d"); returns the count and
 * an array the caller frees with addr_free_array(). */
size_t addr_parse_list(const char *s, struct addr **out);
void addr_free_array(struct addr *v, size_t n);

#endif
