/*
 * source_imap.c: an IMAP mailbox as the source, through libetpan.
 *
 * Connection. [source] tls = tls (implicit TLS), starttls (a server that
 * does not offer STARTTLS is refused, never used in plain), or none (only
 * with allow_plain_loopback = yes and a loopback host). libetpan does the
 * handshake; the chain it received is then verified by tlsverify.c before
 * anything else is sent (see tlsverify.h for why). LOGIN takes the password
 * from [source] password_file; it is wiped after use and never logged.
 *
 * Fetching. Two commands at most per batch:
 *   1. the listing: UID FETCH <after+1>:* (UID RFC822.SIZE INTERNALDATE),
 *      answered from the server's index; kept in `list` and handed out
 *      over later calls until used up, so a backlog costs one listing;
 *   2. the bodies: UID FETCH <set> BODY.PEEK[] for up to max listed
 *      messages, as one UID set, skipping those over max_message_size.
 * `n:*` always includes the mailbox's last message even when its UID is
 * below n: listing entries at or below `after` are dropped.
 *
 * The fast path, for mail announced during IDLE: once a listing or fetch
 * has seen the mailbox's last message (last_uid, with base_exists messages
 * then), an EXISTS count above base_exists means k new messages. When the
 * listing is used up and 1 <= k <= max, one command does it all:
 * UID FETCH <after+1>:* (UID RFC822.SIZE INTERNALDATE BODY.PEEK[]). Being by
 * UID it cannot miss a message whatever k says; k only bounds the batch. If
 * k was wrong (an EXPUNGE we did not see) and more than max come back, the
 * extra are kept as a listing and their bodies fetched again next time.
 * Bodies over max_message_size are not kept (the handler stops copying).
 *
 * Parsing. libetpan would build a tree of every FETCH response of a
 * command and copy each literal twice; instead a message-attribute handler
 * takes each response as it is parsed (and libetpan frees it at once), and
 * a body handler appends the literal's bytes straight into the message's
 * buffer. Memory for a batch is the batch's bodies plus a few KiB.
 *
 * Waiting. IDLE when the server offers it and [source] idle = yes. If
 * bytes already sit in libetpan's buffer when IDLE starts (the server sent
 * a notification right behind its "+ idling"), the socket will not become
 * readable for them, so wait_start() hands out an eventfd that is already
 * readable instead.
 */
#include "source.h"
#include "log.h"
#include "text.h"
#include "tlsverify.h"

#include <errno.h>
#include <libetpan/libetpan.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct listed {
	uint32_t uid;
	uint32_t size;
	time_t arrival;
};

/* What one FETCH command collects through the handlers. */
struct fetch_ctx {
	bool want_body;
	uint32_t after;          /* drop responses at or below (the n:* trap) */
	size_t limit;            /* body bytes kept per message */
	struct raw_msg *v;
	size_t n, cap;
	struct buf body;         /* the literal of the response being parsed */
	bool body_cut;           /* it went over limit */
	uint32_t max_uid;        /* highest UID in any response, kept or not */
};

struct imap_src {
	mailimap *imap;
	struct tls_trust *trust;
	bool ok;                 /* the last command succeeded */
	bool idling;
	int wait_fd;             /* the fd wait_start() handed out while idling */
	int wake_fd;             /* eventfd, see "Waiting" above */
	bool has_idle, has_move, has_uidplus;
	bool preauth;            /* the greeting was PREAUTH */
	struct fetch_ctx *fc;    /* the FETCH in progress, if any */
	char *folder, *other;    /* [source] folder / other_folder in mUTF-7 */
	struct listed *list;     /* listing; [list_pos, list_n) not handed out */
	size_t list_n, list_pos;
	uint32_t list_after;     /* the listing covers UIDs > list_after */
	/* What the fast path needs (see "Fetching"): at the last listing or
	 * fetch, every one of the mailbox's base_exists messages had a UID at
	 * or below last_uid. EXISTS later above base_exists means new mail. */
	bool base_known;
	uint32_t base_exists;
	uint32_t last_uid;
};

static struct imap_src *ip(struct source *s)
{
	if (s->priv == NULL) {
		struct imap_src *p = xcalloc(1, sizeof(*p));
		p->wake_fd = -1;
		s->priv = p;
	}
	return s->priv;
}

/* ---- errors ---------------------------------------------------------- */

static const struct {
	int code;
	const char *what;
} imap_errors[] = {
	{ MAILIMAP_ERROR_STREAM, "connection lost" },
	{ MAILIMAP_ERROR_PARSE, "unparsable response from the server" },
	{ MAILIMAP_ERROR_CONNECTION_REFUSED, "cannot connect" },
	{ MAILIMAP_ERROR_MEMORY, "out of memory" },
	{ MAILIMAP_ERROR_FATAL, "the server closed the session" },
	{ MAILIMAP_ERROR_PROTOCOL, "the server rejected the command (BAD)" },
	{ MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION, "the server refuses the connection" },
	{ MAILIMAP_ERROR_BAD_STATE, "command in the wrong state" },
	{ MAILIMAP_ERROR_SSL, "TLS handshake failed" },
	{ MAILIMAP_ERROR_STARTTLS, "STARTTLS refused" },
};

/* "imap: <what>: <why>[: server text]"; returns -1. */
static int imap_err(struct source *s, char **err, const char *what, int r)
{
	struct imap_src *p = ip(s);
	const char *why = NULL;
	for (size_t i = 0; i < ARRAY_LEN(imap_errors); i++)
		if (imap_errors[i].code == r)
			why = imap_errors[i].what;
	const char *text = p->imap != NULL ? p->imap->imap_response : NULL;
	p->ok = false;
	if (why == NULL)
		why = "refused by the server";
	if (!str_empty(text) && r != MAILIMAP_ERROR_STREAM)
		return seterr(err, "imap: %s: %s: %s", what, why, text);
	return seterr(err, "imap: %s: %s", what, why);
}

/* ---- folder names ---------------------------------------------------- */

/* Modified base64: ',' where base64 has '/'. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* One UTF-16 unit into the base64 run; whole sextets are written out. */
static void mutf7_unit(struct buf *b, uint32_t *bits, int *nbits, uint32_t unit)
{
	*bits = (*bits << 16) | unit;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		buf_addc(b, b64[(*bits >> *nbits) & 0x3F]);
	}
	*bits &= (1u << *nbits) - 1;
}

/* A UTF-8 folder name ("Diğer") as IMAP's modified UTF-7 ("Di&AR8-er",
 * RFC 3501 5.1.3), which servers expect; NULL if it is not UTF-8. */
static char *mutf7(const char *utf8)
{
	size_t len = strlen(utf8);
	if (!utf8_valid(utf8, len))
		return NULL;
	const char *s = utf8, *end = utf8 + len;
	struct buf out = BUF_INIT;
	while (s < end) {
		if (*s >= 0x20 && *s <= 0x7e) {
			if (*s == '&')
				buf_adds(&out, "&-");
			else
				buf_addc(&out, *s);
			s++;
			continue;
		}
		uint32_t bits = 0;
		int nbits = 0;
		buf_addc(&out, '&');
		while (s < end && !(*s >= 0x20 && *s <= 0x7e)) {
			uint32_t cp = utf8_next(&s, end);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				mutf7_unit(&out, &bits, &nbits, 0xD800 | (uint32_t)(cp >> 10));
				mutf7_unit(&out, &bits, &nbits, 0xDC00 | (uint32_t)(cp & 0x3FF));
			} else {
				mutf7_unit(&out, &bits, &nbits, (uint32_t)cp);
			}
		}
		if (nbits > 0)
			buf_addc(&out, b64[(bits << (6 - nbits)) & 0x3F]);
		buf_addc(&out, '-');
	}
	return buf_steal(&out);
}

static int folder_names(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	const struct conf_imap *c = &s->conf->imap;
	free(p->folder);
	free(p->other);
	p->folder = mutf7(str_empty(c->folder) ? "INBOX" : c->folder);
	p->other = str_empty(c->other_folder) ? NULL : mutf7(c->other_folder);
	if (p->folder == NULL || (p->other == NULL && !str_empty(c->other_folder)))
		return seterr(err, "imap: [source] folder / other_folder is not valid UTF-8");
	return 0;
}

/* ---- connecting ------------------------------------------------------ */

/* SNI, for DNS names only (RFC 6066 forbids IP literals there). */
static void tls_setup_cb(struct mailstream_ssl_context *ctx, void *data)
{
	char *host = data;
	if (!tls_host_is_ip(host))
		mailstream_ssl_set_server_name(ctx, host);
}

static int verify_peer(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	const char *host = s->conf->imap.host;
	carray *chain = mailstream_get_certificate_chain(p->imap->imap_stream);
	if (chain == NULL)
		return seterr(err, "imap: TLS: %s sent no certificate", host);
	size_t n = carray_count(chain);
	struct tls_der *der = xcalloc(n ? n : 1, sizeof(*der));
	for (size_t i = 0; i < n; i++) {
		MMAPString *m = carray_get(chain, (unsigned int)i);
		der[i].p = (const unsigned char *)m->str;
		der[i].len = m->len;
	}
	char *e = NULL;
	int rc = tls_verify_chain(p->trust, der, n, host, &e);
	if (rc < 0)
		seterr(err, "imap: TLS: %s", e);
	free(e);
	free(der);
	mailstream_certificate_chain_free(chain);
	return rc;
}

static bool has_cap(mailimap *imap, const char *name)
{
	return mailimap_has_extension(imap, (char *)name) != 0;
}

static int refresh_caps(struct source *s, char **err)
{
	struct mailimap_capability_data *cap = NULL;
	int r = mailimap_capability(ip(s)->imap, &cap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "CAPABILITY", r);
	mailimap_capability_data_free(cap);
	return 0;
}

static int do_starttls(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	char *host = s->conf->imap.host;
	if (p->imap->imap_connection_info->imap_capability == NULL &&
	    refresh_caps(s, err) < 0)
		return -1;
	if (!has_cap(p->imap, "STARTTLS"))
		return seterr(err, "imap: %s:%d offers no STARTTLS and [source] tls = starttls: "
			      "refusing to go on in plain text", host, s->conf->imap.port);
	int r = mailimap_socket_starttls_with_callback(p->imap, tls_setup_cb, host);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "STARTTLS", r);
	/* Bytes received before the handshake must not be read as if they
	 * came through TLS (the STARTTLS response injection attack). */
	if (p->imap->imap_stream->read_buffer_len != 0)
		return seterr(err, "imap: STARTTLS: the server sent data behind its "
			      "STARTTLS response: refused");
	return 0;
}

static int dial(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	const struct conf_imap *c = &s->conf->imap;
	int r;
	if (c->tls == TLS_IMPLICIT)
		r = mailimap_ssl_connect_with_callback(p->imap, c->host, (uint16_t)c->port,
						       tls_setup_cb, c->host);
	else
		r = mailimap_socket_connect(p->imap, c->host, (uint16_t)c->port);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		char *what = xasprintf("connect to %s:%d", c->host, c->port);
		imap_err(s, err, what, r);
		free(what);
		return -1;
	}
	p->preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
	/* PREAUTH leaves no room for STARTTLS: a man in the middle's way to
	 * keep the session in plain text. */
	if (c->tls == TLS_STARTTLS && p->preauth)
		return seterr(err, "imap: %s:%d greets with PREAUTH, so STARTTLS is impossible: "
			      "refused", c->host, c->port);
	if (c->tls == TLS_STARTTLS && do_starttls(s, err) < 0)
		return -1;
	if (c->tls != TLS_NONE && verify_peer(s, err) < 0)
		return -1;
	return 0;
}

static int login(struct source *s, char **err)
{
	const struct conf_imap *c = &s->conf->imap;
	char *pass = NULL, *e = NULL;
	if (ip(s)->preauth)
		return 0;        /* already authenticated by the server (over TLS) */
	if (secret_read(c->password_file, &pass, &e) < 0) {
		seterr(err, "imap: password: %s", e);
		free(e);
		return -1;
	}
	int r = mailimap_login(ip(s)->imap, c->user, pass);
	secure_free(pass);
	if (r != MAILIMAP_NO_ERROR) {
		char *what = xasprintf("LOGIN as %s", c->user);
		imap_err(s, err, what, r);
		free(what);
		return -1;
	}
	return 0;
}

static void noop_progress(size_t cur, size_t max, void *ctx)
{
	(void)cur;
	(void)max;
	(void)ctx;
}

static void on_msg_att(struct mailimap_msg_att *att, void *ctx);
static bool on_body(int type, struct mailimap_msg_att_body_section *sec,
		    const char *bytes, size_t len, void *ctx);

static void list_reset(struct imap_src *p)
{
	free(p->list);
	p->list = NULL;
	p->list_n = p->list_pos = 0;
	p->list_after = 0;
}

static int imap_select(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	int r = mailimap_select(p->imap, p->folder);
	if (r != MAILIMAP_NO_ERROR) {
		char *what = xasprintf("SELECT %s", s->conf->imap.folder);
		imap_err(s, err, what, r);
		free(what);
		return -1;
	}
	s->uidvalidity = p->imap->imap_selection_info->sel_uidvalidity;
	s->uidnext = p->imap->imap_selection_info->sel_uidnext;
	list_reset(p);
	p->base_known = false;
	return 0;
}

static void imap_disconnect(struct source *s)
{
	struct imap_src *p = s->priv;
	if (p == NULL)
		return;
	if (p->imap != NULL)
		mailimap_free(p->imap);   /* closes the socket; no LOGOUT on a broken link */
	p->imap = NULL;
	p->ok = false;
	p->idling = false;
	list_reset(p);
}

static int imap_connect(struct source *s, char **err)
{
	struct imap_src *p = ip(s);
	const struct conf_imap *c = &s->conf->imap;
	imap_disconnect(s);
	if (str_empty(c->host))
		return seterr(err, "imap: [source] host is not set");
	if (folder_names(s, err) < 0)
		return -1;
	if (c->tls == TLS_NONE && !(c->allow_plain_loopback && host_is_loopback(c->host)))
		return seterr(err, "imap: tls = none refused for %s: plain IMAP is only allowed "
			      "to a loopback address with allow_plain_loopback = yes", c->host);
	if (c->tls != TLS_NONE && p->trust == NULL) {
		char *e = NULL;
		if (tls_trust_load(c->ca_file, &p->trust, &e) < 0) {
			seterr(err, "imap: TLS: %s", e);
			free(e);
			return -1;
		}
	}
	p->imap = mailimap_new(0, NULL);
	if (p->imap == NULL)
		fatalx("imap: out of memory");
	int64_t t = c->timeout.unit == PERIOD_SECONDS && c->timeout.n > 0 ? c->timeout.n : 60;
	mailimap_set_timeout(p->imap, (time_t)t);
	if (dial(s, err) < 0 || login(s, err) < 0 || refresh_caps(s, err) < 0)
		goto fail;
	p->has_idle = has_cap(p->imap, "IDLE");
	p->has_move = has_cap(p->imap, "MOVE");
	p->has_uidplus = has_cap(p->imap, "UIDPLUS");
	/* The handlers are only used while a progress callback is set. */
	mailimap_set_progress_callback(p->imap, noop_progress, NULL, NULL);
	mailimap_set_msg_att_handler(p->imap, on_msg_att, p);
	mailimap_set_msg_body_handler(p->imap, on_body, p);
	if (imap_select(s, err) < 0)
		goto fail;
	p->ok = true;
	return 0;
fail:
	imap_disconnect(s);
	return -1;
}

/* ---- FETCH responses ------------------------------------------------- */

static time_t date_time_to_unix(const struct mailimap_date_time *d)
{
	struct tm tm = {
		.tm_year = d->dt_year - 1900, .tm_mon = d->dt_month - 1, .tm_mday = d->dt_day,
		.tm_hour = d->dt_hour, .tm_min = d->dt_min, .tm_sec = d->dt_sec,
	};
	int zone = d->dt_zone;   /* +0300 is 300 */
	int off = (zone / 100) * 3600 + (zone % 100) * 60;
	return timegm(&tm) - off;
}

static bool on_body(int type, struct mailimap_msg_att_body_section *sec,
		    const char *bytes, size_t len, void *ctx)
{
	struct fetch_ctx *fc = ((struct imap_src *)ctx)->fc;
	(void)type;
	(void)sec;
	if (fc == NULL || !fc->want_body)
		return true;
	if (fc->body_cut || fc->body.len + len > fc->limit) {
		fc->body_cut = true;     /* keep reading, stop keeping */
		buf_free(&fc->body);
		return true;
	}
	buf_add(&fc->body, bytes, len);
	return true;
}

static void att_items(struct mailimap_msg_att *att, struct raw_msg *r)
{
	for (clistiter *it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		struct mailimap_msg_att_static *st = item->att_data.att_static;
		switch (st->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			r->uid = st->att_data.att_uid;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			r->size = st->att_data.att_rfc822_size;
			break;
		case MAILIMAP_MSG_ATT_INTERNALDATE:
			if (st->att_data.att_internal_date != NULL)
				r->arrival = date_time_to_unix(st->att_data.att_internal_date);
			break;
		default:
			break;
		}
	}
}

/* One FETCH response, parsed; libetpan frees att when this returns. */
static void on_msg_att(struct mailimap_msg_att *att, void *ctx)
{
	struct fetch_ctx *fc = ((struct imap_src *)ctx)->fc;
	if (fc == NULL)
		return;          /* a flag update during STORE or IDLE */
	struct raw_msg r = { 0 };
	att_items(att, &r);
	if (r.uid > fc->max_uid)
		fc->max_uid = r.uid;
	if (r.uid > fc->after) {
		if (fc->want_body && !fc->body_cut) {
			/* The buffer grew by doubling: give the slack back, or a
			 * batch would hold up to twice its bytes. */
			r.len = fc->body.len;
			r.data = xrealloc(buf_steal(&fc->body), r.len + 1);
		} else if (fc->want_body) {
			r.oversize = true;
		}
		if (r.size > fc->limit && r.data != NULL) {
			free(r.data);          /* over the limit by its size: same rule */
			r.data = NULL;
			r.len = 0;
			r.oversize = true;
		}
		if (fc->n == fc->cap) {
			fc->cap = fc->cap ? fc->cap * 2 : 64;
			fc->v = xreallocarray(fc->v, fc->cap, sizeof(*fc->v));
		}
		fc->v[fc->n++] = r;
	}
	buf_free(&fc->body);
	fc->body_cut = false;
}

enum fetch_what {
	FETCH_META = 1,          /* RFC822.SIZE INTERNALDATE */
	FETCH_BODY = 2,          /* BODY.PEEK[] */
};

static struct mailimap_fetch_type *fetch_items(int what)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	if (what & FETCH_META) {
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_internaldate());
	}
	if (what & FETCH_BODY)
		mailimap_fetch_type_new_fetch_att_list_add(ft,
			mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	return ft;
}

/* Keep base_exists in step with EXPUNGEs seen in the last response (each
 * took one message out of the count; assume an old one). */
static void note_expunges(struct imap_src *p)
{
	struct mailimap_response_info *ri = p->imap ? p->imap->imap_response_info : NULL;
	if (ri == NULL || ri->rsp_expunged == NULL)
		return;
	uint32_t x = (uint32_t)clist_count(ri->rsp_expunged);
	p->base_exists = p->base_exists > x ? p->base_exists - x : 0;
}

static uint32_t new_count(struct imap_src *p)
{
	uint32_t e = p->imap->imap_selection_info->sel_exists;
	return p->base_known && e > p->base_exists ? e - p->base_exists : 0;
}

/* One UID FETCH through the handlers; fc collects. */
static int run_fetch(struct source *s, struct mailimap_set *set, int what,
		     struct fetch_ctx *fc, char **err)
{
	struct imap_src *p = ip(s);
	struct mailimap_fetch_type *ft = fetch_items(what);
	clist *rest = NULL;
	fc->want_body = (what & FETCH_BODY) != 0;
	p->fc = fc;
	int r = mailimap_uid_fetch(p->imap, set, ft, &rest);
	p->fc = NULL;
	note_expunges(p);
	buf_free(&fc->body);
	mailimap_fetch_type_free(ft);
	if (rest != NULL)
		mailimap_fetch_list_free(rest);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "UID FETCH", r);
	return 0;
}

static int cmp_raw_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct raw_msg *)a)->uid, y = ((const struct raw_msg *)b)->uid;
	return x < y ? -1 : x > y;
}

/* ---- fetch ----------------------------------------------------------- */

/* v[0..n), sorted, becomes the listing of what is above `after`. */
static void keep_as_list(struct imap_src *p, uint32_t after, const struct raw_msg *v, size_t n)
{
	list_reset(p);
	p->list = xcalloc(n ? n : 1, sizeof(*p->list));
	for (size_t i = 0; i < n; i++) {
		p->list[i].uid = v[i].uid;
		p->list[i].size = (uint32_t)v[i].size;
		p->list[i].arrival = v[i].arrival;
	}
	p->list_n = n;
	p->list_after = after;
}

/* The server just showed us its last message: UID last, EXISTS now. */
static void set_base(struct imap_src *p, uint32_t last)
{
	p->base_known = true;
	p->base_exists = p->imap->imap_selection_info->sel_exists;
	p->last_uid = last;
}

/* List UIDs > after with their sizes and dates into p->list. */
static int list_from(struct source *s, uint32_t after, char **err)
{
	struct imap_src *p = ip(s);
	struct fetch_ctx fc = { .after = after };
	struct mailimap_set *set = mailimap_set_new_interval(after + 1, 0);
	int rc = run_fetch(s, set, FETCH_META, &fc, err);
	mailimap_set_free(set);
	if (rc == 0) {
		if (fc.n > 1)    /* servers answer in sequence order, i.e. by UID; make sure */
			qsort(fc.v, fc.n, sizeof(*fc.v), cmp_raw_uid);
		keep_as_list(p, after, fc.v, fc.n);
		set_base(p, fc.max_uid > after ? fc.max_uid : after);
	}
	raw_msgs_free(fc.v, fc.n);
	return rc;
}

/* Make sure the listing holds something above `after` if the mailbox does. */
static int list_ensure(struct source *s, uint32_t after, char **err)
{
	struct imap_src *p = ip(s);
	if (p->list != NULL && after < p->list_after)
		list_reset(p);                  /* the caller went back: list again */
	while (p->list_pos < p->list_n && p->list[p->list_pos].uid <= after)
		p->list_pos++;
	if (p->list_pos < p->list_n)
		return 0;
	return list_from(s, after, err);
}

static struct mailimap_set *uid_set(const struct raw_msg *v, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	for (size_t i = 0; i < n; ) {
		if (v[i].oversize) {
			i++;
			continue;
		}
		/* Neighbours in the listing make a range even across a UID gap:
		 * no message can have a UID in the gap (UIDs only grow). */
		size_t j = i;
		while (j + 1 < n && !v[j + 1].oversize)
			j++;
		mailimap_set_add_interval(set, v[i].uid, v[j].uid);
		i = j + 1;
	}
	return set;
}

static struct raw_msg *find_uid(struct raw_msg *v, size_t n, uint32_t uid)
{
	struct raw_msg key = { .uid = uid };
	return bsearch(&key, v, n, sizeof(*v), cmp_raw_uid);
}

/* Move bodies from fc into the listed batch; drop what the server did not
 * send (expunged meanwhile). Returns the new count. */
static size_t merge_bodies(struct raw_msg *v, size_t n, struct fetch_ctx *fc)
{
	for (size_t i = 0; i < fc->n; i++) {
		struct raw_msg *m = find_uid(v, n, fc->v[i].uid);
		if (m == NULL || m->oversize || m->data != NULL)
			continue;
		m->data = fc->v[i].data;
		m->len = fc->v[i].len;
		m->oversize = fc->v[i].oversize;
		fc->v[i].data = NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].data == NULL && !v[i].oversize)
			continue;
		if (v[i].oversize)
			log_warnx("imap: UID %u: %zu bytes, over max_message_size: not fetched",
				  v[i].uid, v[i].size);
		v[k++] = v[i];
	}
	return k;
}

static bool fast_path_ok(struct imap_src *p, uint32_t after, size_t max)
{
	uint32_t k = new_count(p);
	if (p->list != NULL && after < p->list_after)
		return false;
	while (p->list_pos < p->list_n && p->list[p->list_pos].uid <= after)
		p->list_pos++;
	return p->list_pos == p->list_n && after >= p->last_uid && k >= 1 && k <= max;
}

/* The fast path: everything above `after` in one UID FETCH. */
static int fetch_new(struct source *s, uint32_t after, size_t max,
		     struct raw_msg **out, size_t *n, char **err)
{
	struct imap_src *p = ip(s);
	struct fetch_ctx fc = { .after = after, .limit = s->conf->imap.max_message_size };
	struct mailimap_set *set = mailimap_set_new_interval(after + 1, 0);
	int rc = run_fetch(s, set, FETCH_META | FETCH_BODY, &fc, err);
	mailimap_set_free(set);
	if (rc < 0) {
		raw_msgs_free(fc.v, fc.n);
		return -1;
	}
	if (fc.n > 1)
		qsort(fc.v, fc.n, sizeof(*fc.v), cmp_raw_uid);
	set_base(p, fc.max_uid > after ? fc.max_uid : after);
	list_reset(p);
	if (fc.n > max) {            /* more than announced: keep the rest listed */
		keep_as_list(p, after, fc.v + max, fc.n - max);
		for (size_t i = max; i < fc.n; i++)
			free(fc.v[i].data);
		fc.n = max;
	}
	for (size_t i = 0; i < fc.n; i++)
		if (fc.v[i].oversize)
			log_warnx("imap: UID %u: %zu bytes, over max_message_size: not kept",
				  fc.v[i].uid, fc.v[i].size);
	*out = fc.v;
	*n = fc.n;
	return 0;
}

static int imap_fetch(struct source *s, uint32_t after, size_t max,
		      struct raw_msg **out, size_t *n, char **err)
{
	struct imap_src *p = ip(s);
	*out = NULL;
	*n = 0;
	if (p->imap == NULL || p->idling)
		return seterr(err, "imap: fetch: %s", p->imap ? "still in IDLE" : "not connected");
	if (max == 0 || after == UINT32_MAX)
		return 0;
	if (fast_path_ok(p, after, max))
		return fetch_new(s, after, max, out, n, err);
	if (list_ensure(s, after, err) < 0)
		return -1;
	size_t take = p->list_n - p->list_pos;
	if (take > max)
		take = max;
	if (take == 0)
		return 0;
	size_t limit = s->conf->imap.max_message_size;
	struct raw_msg *v = xcalloc(take, sizeof(*v));
	for (size_t i = 0; i < take; i++) {
		const struct listed *l = &p->list[p->list_pos + i];
		v[i] = (struct raw_msg){ .uid = l->uid, .size = l->size, .arrival = l->arrival,
					 .oversize = l->size > limit };
	}
	/* list_pos stays: the caller's `after` says what it has taken (a
	 * caller asking again with the same `after` gets the same batch). */
	struct fetch_ctx fc = { .after = after, .limit = limit };
	struct mailimap_set *set = uid_set(v, take);
	int rc = clist_count(set->set_list) ? run_fetch(s, set, FETCH_BODY, &fc, err) : 0;
	mailimap_set_free(set);
	if (rc == 0)
		take = merge_bodies(v, take, &fc);
	raw_msgs_free(fc.v, fc.n);
	if (rc < 0) {
		raw_msgs_free(v, take);
		return -1;
	}
	*out = v;
	*n = take;
	return 0;
}

/* ---- marking --------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The messages' UIDs as a compact set ("3:7,9"). */
static struct mailimap_set *set_of(const struct raw_msg *const *v, size_t n)
{
	uint32_t *u = xcalloc(n, sizeof(*u));
	for (size_t i = 0; i < n; i++)
		u[i] = v[i]->uid;
	if (n > 1)
		qsort(u, n, sizeof(*u), cmp_u32);
	struct mailimap_set *set = mailimap_set_new_empty();
	for (size_t i = 0; i < n; ) {
		size_t j = i;
		while (j + 1 < n && u[j + 1] <= u[j] + 1)
			j++;
		mailimap_set_add_interval(set, u[i], u[j]);
		i = j + 1;
	}
	free(u);
	return set;
}

static int add_flag(struct source *s, struct mailimap_set *set, struct mailimap_flag *f,
		    char **err)
{
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
	mailimap_flag_list_add(fl, f);
	struct mailimap_store_att_flags *sf = mailimap_store_att_flags_new_add_flags_silent(fl);
	int r = mailimap_uid_store(ip(s)->imap, set, sf);
	note_expunges(ip(s));
	mailimap_store_att_flags_free(sf);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "UID STORE", r);
	return 0;
}

/* COPY + \Deleted + UID EXPUNGE, for servers without MOVE. */
static int copy_delete(struct source *s, struct mailimap_set *set, const char *to, char **err)
{
	struct imap_src *p = ip(s);
	int r = mailimap_uid_copy(p->imap, set, to);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "UID COPY", r);
	if (add_flag(s, set, mailimap_flag_new_deleted(), err) < 0)
		return -1;
	if (!p->has_uidplus) {
		log_warnx("imap: no UIDPLUS: moved messages stay flagged \\Deleted in %s",
			  s->conf->imap.folder);
		return 0;
	}
	r = mailimap_uid_expunge(p->imap, set);
	note_expunges(p);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "UID EXPUNGE", r);
	return 0;
}

static int move_to(struct source *s, struct mailimap_set *set, const char *to, char **err)
{
	struct imap_src *p = ip(s);
	if (!p->has_move)
		return copy_delete(s, set, to, err);
	int r = mailimap_uid_move(p->imap, set, to);
	note_expunges(p);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "UID MOVE", r);
	return 0;
}

static int move_other(struct source *s, struct mailimap_set *set, char **err)
{
	struct imap_src *p = ip(s);
	const char *to = p->other;
	if (move_to(s, set, to, err) == 0)
		return 0;
	/* The folder may not exist yet: create it (an error here, e.g. it
	 * exists after all, is left to the retry to report) and try once more. */
	if (p->imap->imap_state != MAILIMAP_STATE_SELECTED)
		return -1;
	log_info("imap: creating folder %s", s->conf->imap.other_folder);
	mailimap_create(p->imap, to);
	free(*err);
	*err = NULL;
	p->ok = true;
	return move_to(s, set, to, err);
}

static int imap_mark_many(struct source *s, const struct raw_msg *const *v, size_t n,
			  enum src_mark how, char **err)
{
	struct imap_src *p = ip(s);
	char *e = NULL;
	if (p->imap == NULL || p->idling)
		return seterr(err, "imap: mark: %s", p->imap ? "still in IDLE" : "not connected");
	if (n == 0 || (how == MARK_OTHER && str_empty(s->conf->imap.other_folder)))
		return 0;
	struct mailimap_set *set = set_of(v, n);
	int rc = how == MARK_HANDLED ? add_flag(s, set, mailimap_flag_new_seen(), &e)
				     : move_other(s, set, &e);
	mailimap_set_free(set);
	if (rc < 0) {
		seterr(err, "%s", e);
		free(e);
	}
	return rc;
}

static int imap_mark(struct source *s, const struct raw_msg *m, enum src_mark how, char **err)
{
	return imap_mark_many(s, &m, 1, how, err);
}

/* ---- waiting --------------------------------------------------------- */

static int wake_fd(struct imap_src *p, char **err)
{
	if (p->wake_fd < 0)
		p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wake_fd < 0)
		return seterr(err, "imap: eventfd: %s", strerror(errno));
	uint64_t one = 1;
	if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return seterr(err, "imap: eventfd: %s", strerror(errno));
	return 0;
}

static int imap_wait_start(struct source *s, int *fd, char **err)
{
	struct imap_src *p = ip(s);
	*fd = -1;
	if (p->imap == NULL)
		return seterr(err, "imap: wait: not connected");
	if (p->idling) {
		*fd = p->wait_fd;                       /* asked twice: same wait */
		return 0;
	}
	if (!s->conf->imap.idle || !p->has_idle)
		return 0;
	if (new_count(p) > 0) {
		/* An EXISTS came with an earlier response (say, a STORE's):
		 * IDLE would not announce it again. Wake the caller now. */
		if (wake_fd(p, err) < 0)
			return -1;
		*fd = p->wake_fd;
		return 0;
	}
	int r = mailimap_idle(p->imap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "IDLE", r);
	p->idling = true;
	if (p->imap->imap_stream->read_buffer_len > 0) {
		if (wake_fd(p, err) < 0)
			return -1;
		*fd = p->wait_fd = p->wake_fd;
		return 0;
	}
	*fd = p->wait_fd = mailimap_idle_get_fd(p->imap);
	return 0;
}

static int imap_wait_done(struct source *s, bool *maybe_new, char **err)
{
	struct imap_src *p = ip(s);
	struct timespec woke;    /* on the clock all processes share: bench/latency.py */
	clock_gettime(CLOCK_MONOTONIC, &woke);
	log_debug("imap: idle: wait ended at monotonic %.3f ms",
		  (double)woke.tv_sec * 1e3 + (double)woke.tv_nsec / 1e6);
	*maybe_new = true;       /* polling, or mail announced earlier: look */
	if (p->imap == NULL)
		return seterr(err, "imap: wait: not connected");
	if (p->wake_fd >= 0) {
		uint64_t v;
		if (read(p->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_warn("imap: eventfd");
	}
	if (!p->idling)
		return 0;
	p->idling = false;
	int r = mailimap_idle_done(p->imap);
	note_expunges(p);
	if (r != MAILIMAP_NO_ERROR)
		return imap_err(s, err, "IDLE DONE", r);
	struct mailimap_selection_info *si = p->imap->imap_selection_info;
	*maybe_new = si->sel_has_exists || si->sel_has_recent || new_count(p) > 0;
	return 0;
}

static void imap_destroy(struct source *s)
{
	if (s == NULL)
		return;
	struct imap_src *p = s->priv;
	if (p != NULL) {
		if (p->imap != NULL && p->ok && !p->idling)
			mailimap_logout(p->imap);
		imap_disconnect(s);
		tls_trust_free(p->trust);
		free(p->folder);
		free(p->other);
		if (p->wake_fd >= 0)
			close(p->wake_fd);
		free(p);
	}
	free(s);
}

const struct source_ops source_imap_ops = {
	.name = "imap",
	.connect = imap_connect,
	.fetch = imap_fetch,
	.mark = imap_mark,
	.mark_many = imap_mark_many,
	.wait_start = imap_wait_start,
	.wait_done = imap_wait_done,
	.disconnect = imap_disconnect,
	.destroy = imap_destroy,
};
