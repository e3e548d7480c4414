/*
 * mailfmt.h: a mail notice as an RFC 5322 message. Private to the
 * channels: channel_smtp.c submits it, channel_file.c stores it as .eml,
 * so both write the same bytes.
 *
 * The message:
 *   Date (the notice's creation time, so a retry carries the same date),
 *   From ([smtp] from), Reply-To ([smtp] reply_to, the watched mailbox),
 *   To, Subject (RFC 2047 encoded-words when not plain ASCII), Message-ID
 *   (the notice's, on [smtp] message_id_domain), In-Reply-To and
 *   References when the notice threads, MIME-Version, a text/plain UTF-8
 *   quoted-printable body, or multipart/alternative with the HTML beside
 *   it, and the headers that keep auto-responders quiet:
 *   Auto-Submitted: auto-generated (RFC 3834) and
 *   X-Auto-Response-Suppress: All (Exchange/Outlook). No "Precedence:
 *   bulk": these are individual notices that ask for action, and "bulk"
 *   tells filters to treat them as mass mail; the two headers above
 *   already stop auto-replies, and eimzad ignores auto-replies anyway.
 *   X-Eimza-Notice carries the notice id so that a bounce quoting the
 *   headers can be matched even when the Message-ID was a thread's.
 *
 * Header injection: every value taken from data or config has CR, LF and
 * other control characters replaced by spaces before it is written.
 * Lines end in CRLF. Header lines stay within 78 characters where the
 * data allows (folded at spaces; encoded-words at most 75 characters on
 * lines of at most 76), body lines within 76.
 *
 * Ownership: returned strings are the caller's; buffers are appended to.
 */
#ifndef EIMZA_MAILFMT_H
#define EIMZA_MAILFMT_H

#include "config.h"
#include "notice.h"

/* Split "Display Name <addr@dom>" or a bare "addr@dom". *name is NULL
 * when there is none. 0, or -1 with *err if no usable address is found. */
int mailfmt_parse_mailbox(const char *s, char **name, char **addr, char **err);

/* A bare address that is safe on an SMTP command line and in a header:
 * local@domain, printable ASCII, no spaces, no <>()[]\,;: outside the
 * local part's dots, no control characters. */
bool mailfmt_addr_ok(const char *addr);

/* The envelope sender: the address of [smtp] from. -1 with *err if none. */
int mailfmt_envelope_from(const struct config *c, char **addr, char **err);

/* Render notice n (medium mail) into out. `now` stands in for a missing
 * creation time. -1 with *err if the recipient or [smtp] from is not a
 * usable address. */
int mailfmt_render(const struct config *c, const struct notice *n, time_t now,
		   struct buf *out, char **err);

/* Building blocks, exposed for the unit tests. */

/* Copy of s with CR, LF and other C0/DEL control characters (tab too)
 * turned into spaces. NULL gives "". */
char *mailfmt_clean(const char *s);
/* "Name: value\r\n" for an unstructured value (Subject): plain and folded
 * at spaces if printable ASCII, else RFC 2047 encoded-words (UTF-8, B or
 * Q, whichever is shorter), never splitting a UTF-8 sequence. */
void mailfmt_header_text(struct buf *out, const char *name, const char *value);
/* Quoted-printable body, CRLF line ends, lines of at most 76 characters;
 * any of LF, CRLF, CR in the input ends a line. */
void mailfmt_qp(struct buf *out, const char *text);
/* RFC 5322 date ("Tue, 24 Nov 2026 07:00:00 +0000") in UTC. */
void mailfmt_date(struct buf *out, time_t t);

#endif
