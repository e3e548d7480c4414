/*
 * classify.h: from a decoded message to an event: which kind of mail it
 * is (by configurable rules), what it says (extraction), and whether it
 * may be believed (trust).
 *
 * Rules live in a file of the config syntax (conf/rules.conf), one section
 * per rule, tried in file order; the first whose conditions all hold wins:
 *
 *   [rule kamusm_credentials]
 *   kind    = kamusm.credentials       # see enum msg_kind names
 *   from    = *@kamusm.gov.tr          # address patterns (list; any matches;
 *                                      # also $kamusm_senders, $institution_domains, $officers)
 *   subject = parola|erisim            # POSIX ERE on folded text (text.h)
 *   body    = basvuru.*(parola|sifre)  # ERE on the folded body
 *   text    = ...                      # ERE on the subject or the body
 *   to      = ...                      # optional: a recipient pattern
 *   header  = X-Foo: bar               # optional: "Name: ERE" on the value
 *   link    = https://[^ ]+            # extraction ERE (match 1 or 0)
 *   code    = parola(?:si)?[: ]+([A-Za-z0-9]+)  # extraction, group 1
 *   tracking = ...                     # extraction
 *   expiry  = ...                      # extraction (a date)
 *
 * (The comments above are illustration: the file takes none after a
 * value.) A repeated condition key must hold too; a repeated extraction
 * key is an alternative. "(?:" opens a group that does not count, so
 * "group 1" is the first group that captures. See conf/rules.conf.
 *
 * Patterns are matched on folded text (lowercase, Turkish diacritics
 * removed, see text.h), so they are folded too before compiling; the
 * extracted value is cut from the original text, diacritics intact.
 * Built-in kinds need no rule: bounces (multipart/report, the usual
 * MAILER-DAEMON shapes), auto-replies (RFC 3834 and friends) and officer
 * commands are recognised by structure; rules for them only add patterns.
 *
 * The order (first that applies wins):
 *   1. unreadable mail (m->unreadable, or larger than source.max_message_size);
 *   2. bounces: multipart/report delivery-status, or a MAILER-DAEMON /
 *      postmaster sender with a bounce subject, or a bounce rule;
 *   3. certain auto-replies: Auto-Submitted: auto-replied, X-Autoreply,
 *      X-Autorespond, Precedence: auto_reply, a vacation subject ("Out of
 *      Office", "Otomatik yanıt", "Ofis dışında", "İzindeyim"), a read
 *      receipt (message/disposition-notification), a delivery report
 *      that only says delivered/relayed/expanded, or an auto_reply rule;
 *   4. an officer's command: the officer's own mail to a KAMUSM address
 *      (a trust.kamusm_senders domain in To) with smtp.reply_to in Cc/To
 *      and a tag in the subject ("submitted"), a verb on the first line of
 *      the unquoted reply, or a command rule;
 *   5. our own mail (From is smtp.from or smtp.reply_to): "other";
 *   6. a non-officer's command in reply to a notice (our Message-ID in
 *      In-Reply-To/References, or a tag in the subject): "command",
 *      untrusted, so it can be answered;
 *   7. the rules, on the innermost forwarded original first (within
 *      trust.forward_depth) and outwards; a reply's body patterns see only
 *      its unquoted part, so quoting a notice matches nothing;
 *   8. a command from anyone else; then mail marked as machine-sent
 *      (Auto-Submitted other than no, Precedence: bulk|junk|list,
 *      X-Auto-Response-Suppress) becomes "auto_reply"; the rest "other".
 * Machine-sent marks are not enough for step 3 because KAMUSM's and
 * EBYS's notification systems may well set them: they only stop step 4,
 * 6 and 8 (a machine never commands) - except X-Auto-Response-Suppress,
 * which Exchange may set on a person's mail and so stops nothing.
 *
 * Trust (secure by default, see DESIGN "Trust"): Authentication-Results
 * are read only from configured authserv-ids, the topmost such header and
 * those following it up to the next Received line (the MTA must add one
 * to every message); a pass counts when aligned with the From domain
 * (dkim header.d/header.i, spf smtp.mailfrom, dmarc header.from: equal or
 * a parent, not a registry suffix like gov.tr; auth smtp.auth: the sender
 * itself). KAMUSM kinds are trusted only from an allow-listed sender whose
 * domain passed, or when forwarded by an officer whose own mail passed
 * and whose original's From is an allow-listed sender; request letters
 * when whoever sent or forwarded them is in institution_domains and
 * passed; commands only from officers whose mail passed;
 * bounces when they name one of our Message-IDs (smtp.message_id_domain).
 * With trust.require_auth = no the authentication requirement is dropped
 * (for test setups and the local demo), the sender allow-lists still
 * apply.
 *
 * Links: https only, host in trust.link_hosts ("*.x" matches x itself and
 * every name under it: the apex belongs to the same owner), port 443 if
 * any; refused: user info, IP literals, punycode (xn--) labels, non-ASCII
 * hosts, backslashes, spaces and quotes. A refused link is never
 * extracted; it becomes a problem naming the host (never the path or
 * query, which may carry a token).
 *
 * The event's time is the original's Date, else the forwarding message's,
 * else ctx->arrival; never later than arrival.
 *
 * Ownership: rules_load() returns rules the caller frees with rules_free();
 * classify() fills an event the caller frees with event_free().
 */
#ifndef EIMZA_CLASSIFY_H
#define EIMZA_CLASSIFY_H

#include "config.h"
#include "event.h"
#include "message.h"

struct rules;

int rules_load(const char *path, struct rules **out, struct conf_errors *errs);
void rules_free(struct rules *r);
size_t rules_count(const struct rules *r);
/* A copy with every pattern compiled anew, for another thread: glibc's
 * regexec() serialises the threads that search one compiled pattern. A
 * struct rules may be read by several threads at once (rules_dup() reads
 * only what never changes), but classify with each its own copy. */
struct rules *rules_dup(const struct rules *r);

struct classify_ctx {
	const struct config *conf;
	const struct rules *rules;
	time_t arrival;          /* the server's arrival time (INTERNALDATE), 0 if unknown */
};

/* Classify a parsed message. Always fills ev (kind MK_OTHER when nothing
 * matched, MK_UNREADABLE when m->unreadable); never fails. */
void classify(const struct classify_ctx *ctx, const struct message *m, struct event *ev);

/* Parse + classify raw bytes in one call (what the daemon and `eimzactl
 * explain` use). A message that cannot be parsed becomes MK_UNREADABLE. */
void classify_raw(const struct classify_ctx *ctx, const char *raw, size_t len,
		  struct event *ev);

/* Application tags: "[EIMZA-2026-0042]" or "EIMZA-2026-0042" with the
 * configured prefix; the year and number parts are digits (number 4 or
 * more digits). Returns a NULL-terminated vector of normalised tags
 * ("EIMZA-2026-0042") found in s, or NULL if none. */
char **tags_find(const char *prefix, const char *s);

/* TC kimlik no checksum (11 digits, first not 0, digits 10 and 11 per the
 * official rule). */
bool tc_valid(const char *tc);

#endif
