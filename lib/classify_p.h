/*
 * classify_p.h: private to the classifier (classify.c, classify_*.c,
 * rules.c, trust.c). Unit tests include it to test the pieces alone.
 *
 * Ownership as in classify.h: every char * handed back is the caller's
 * unless marked "borrowed".
 */
#ifndef EIMZA_CLASSIFY_P_H
#define EIMZA_CLASSIFY_P_H

#include "classify.h"
#include "text.h"

#include <regex.h>

/* ---- patterns (rules.c) ---- */

/* A POSIX ERE compiled on folded text. `(?:...)` in the source is a group
 * that does not count: `group` is the regex group of the first group that
 * does, 0 (the whole match) if there is none. */
struct pattern {
	regex_t re;
	int group;
	bool nosub;             /* a condition: matches or not, no spans */
	char *src;              /* as written, for messages */
};

/* Fold and compile; 0 or -1 with *err (regerror's words). `lines` makes
 * an extraction pattern: ^ $ match at line ends and . and [^x] stay
 * inside one line (values never span lines), and spans are reported.
 * Otherwise a condition: spans are not computed (much cheaper), and
 * pattern_search() then only says whether it matches. */
int pattern_compile(struct pattern *p, const char *src, bool lines, char **err);
void pattern_free(struct pattern *p);
/* Search s[from, len) (s NUL-terminated at len); on a match fill the
 * value's span (its group) and the whole match's end. */
bool pattern_search(const struct pattern *p, const char *s, size_t len, size_t from,
		    size_t *vso, size_t *veo, size_t *mend);

/* ---- rules (rules.c) ---- */

enum rule_field { RX_LINK, RX_CODE, RX_TRACKING, RX_EXPIRY, RX__COUNT };

struct rule_header {
	char *name;
	struct pattern pat;
};

struct plist {
	struct pattern *v;
	size_t n;
};

struct rule {
	char *name;
	int line;
	enum msg_kind kind;
	bool has_kind;
	char **from;            /* address patterns and $lists; any matches */
	char **to;              /* the same, on To and Cc */
	struct plist subject, body, text;   /* every pattern must match */
	struct rule_header *headers;
	size_t nheaders;
	struct plist extract[RX__COUNT];    /* alternatives, tried in order */
};

struct rules {
	struct rule *v;
	size_t n;
};

/* The folded views of one message, made on first use so that a message
 * that needs no body pattern never folds its body. */
struct view {
	const struct message *m;
	const char *text;       /* what body patterns see: m->body or its top */
	size_t text_len;
	char *own;              /* text, when the view made it */
	char *subject;          /* folded, or NULL until asked */
	struct folded body;     /* text folded with map; s NULL until asked */
};
void view_init(struct view *v, const struct message *m);
/* Body patterns see only the reply's own text (text_strip_quoted): a
 * reply quoting a notice must not match the notice's words. */
void view_use_top(struct view *v);
void view_free(struct view *v);
const char *view_subject(struct view *v);
const struct folded *view_body(struct view *v);

/* Which kinds a pass may produce: bit (1u << kind). */
#define KIND_BIT(k) (1u << (unsigned)(k))

/* The first rule, in file order, whose kind is in `kinds` and whose
 * conditions all hold on v; NULL if none. */
const struct rule *rules_first(const struct rules *r, const struct config *c, struct view *v,
			       unsigned kinds);
/* Does an address match one rule address pattern list ($lists expanded)? */
bool rule_addr_match(char *const *pats, const struct config *c, const char *addr);
/* Run a rule's extraction patterns over v's body into ev (link checked
 * with link_check, refused links become problems). */
void rule_extract(const struct rule *ru, const struct config *c, struct view *v, struct event *ev);

/* Cut the original text behind folded span [so, eo) of f. */
char *folded_cut(const struct folded *f, const char *orig, size_t so, size_t eo);

/* A date written in mail text: "17.04.2027", "17/04/2027", "2027-04-17",
 * "17 Nisan 2027" (Turkish or English month names, any case); 00:00 UTC,
 * 0 if none. */
time_t text_date_parse(const char *s);

/* ---- trust (trust.c) ---- */

/* One method's result from an Authentication-Results header. */
struct ar_result {
	char *method;           /* lowercased: "dkim", "spf", "dmarc", "auth" */
	char *result;           /* lowercased: "pass", "fail", ... */
	char **props;           /* "ptype.property=value" (names lowercased), NULL-terminated */
};

struct ar_header {
	char *authserv_id;      /* lowercased */
	struct ar_result *res;
	size_t nres;
};

/* Parse one header value (RFC 8601: comments, quoted strings, version,
 * "none"). 0, or -1 when not even an authserv-id could be read. */
int ar_parse(const char *value, struct ar_header *out);
void ar_free(struct ar_header *h);
/* The value of "ptype.property" in a result, borrowed; NULL if absent. */
const char *ar_prop(const struct ar_result *r, const char *name);

/* The authentication verdict for a message's sender domain, from the
 * topmost Authentication-Results of a configured authserv-id. */
struct auth_verdict {
	bool found;             /* a header from a trusted authserv-id was there */
	bool pass;              /* an aligned dkim / spf / dmarc / auth pass */
	char *how;              /* "dkim=pass header.d=x (mx.y)" or why not */
};
void auth_check(const struct config *c, const struct message *m, struct auth_verdict *out);
void auth_verdict_free(struct auth_verdict *v);

/* Is `domain` the sender domain or a parent of it (relaxed alignment)?
 * A registry suffix ("gov.tr", "com.tr") is no organisation's parent. */
bool domain_aligned(const char *domain, const char *sender_domain);
/* Is d equal to base or a name under it? */
bool domain_within(const char *base, const char *d);

/* Links: https, allow-listed host (trust.link_hosts; "*.x" matches x
 * and its subdomains), no userinfo, IP literal, punycode, backslash,
 * non-ASCII or port other than 443. 0, or -1 with *reason (no secrets:
 * names the host, never the path or query). */
int link_check(const struct config *c, const char *url, char **reason);

/* Decide ev->trusted and ev->trust_reason from ev->kind; `outer` is what
 * arrived, `orig` what the rules saw (outer itself if not forwarded). */
void trust_decide(const struct classify_ctx *ctx, const struct message *outer,
		  const struct message *orig, struct event *ev);

/* ---- built-in kinds (classify_builtin.c, classify_cmd.c) ---- */

enum auto_level { AUTO_NONE, AUTO_HINT, AUTO_WEAK, AUTO_STRONG };
/* RFC 3834 and vacation markers. STRONG: certainly a reply by a machine
 * (Auto-Submitted: auto-replied, X-Autoreply, X-Autorespond, Precedence:
 * auto_reply, a vacation subject, a read receipt). WEAK: mail sent by a
 * machine (Auto-Submitted: auto-generated, Precedence: bulk|junk|list),
 * which KAMUSM's and EBYS's notification systems may well send: rules
 * still see it, commands never. HINT: only X-Auto-Response-Suppress,
 * which Exchange may also set on a person's mail: it blocks nothing, but
 * mail nothing else claimed becomes an auto_reply. */
enum auto_level autoreply_level(const struct message *m);

/* Bounces: RFC 3464 reports and the common non-standard shapes. Fills
 * ev->bounce for a failure or delay. A report whose recipients were all
 * delivered (relayed, expanded) is a receipt, not a bounce. */
enum report { REPORT_NONE, REPORT_BOUNCE, REPORT_RECEIPT };
enum report bounce_detect(const struct classify_ctx *ctx, const struct message *m, struct event *ev);
/* The bounce fields of a mail a configured bounce rule matched. */
void bounce_fill(const struct classify_ctx *ctx, const struct message *m, struct event *ev);

/* An officer's command on the first non-empty line of `top` (the reply
 * with its quoted part already stripped). Fills ev->command.verb, .apps
 * and .reason and returns true if the line is a command. */
bool command_parse(const char *tag_prefix, const char *top, struct event *ev);
/* The officer's own mail to KAMUSM with the mailbox in Cc and a tag in the
 * subject: a "submitted" command for those tags. */
bool command_kamusm_copy(const struct config *c, const struct message *m, struct event *ev);

/* Request letters and KAMUSM mail: the fields that are not rule
 * patterns (classify_request.c). */
void request_extract(const struct classify_ctx *ctx, const struct message *orig,
		     const struct message *outer, struct event *ev);
void kamusm_addressee(const struct config *c, const struct message *orig, struct event *ev);

#endif
