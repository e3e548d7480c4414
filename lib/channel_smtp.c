/*
 * channel_smtp.c: mail notices through an SMTP submission server, with
 * libesmtp. One SMTP session carries a whole batch (one transaction per
 * notice: MAIL, RCPT, DATA); the outbox runs [smtp] sessions of these in
 * parallel, and send() is reentrant for that: everything it changes lives
 * on its own stack, priv is read-only after open().
 *
 * TLS ([smtp] tls):
 *   starttls  STARTTLS is required (Starttls_REQUIRED). We build the
 *             SSL_CTX: TLS 1.2 (tls_ctx() says why not 1.3),
 *             SSL_VERIFY_PEER against the system CA store or [smtp] ca_file, and OpenSSL's own host
 *             name check (X509_VERIFY_PARAM_set1_host, i.e.
 *             X509_check_host) against the configured [smtp] host, so a
 *             wrong certificate fails the handshake itself. libesmtp 1.1
 *             also checks the name after the handshake, with its own
 *             matcher against the name getaddrinfo() returned as
 *             canonical (a CNAME target, which DNS and not the
 *             administrator decides) and without IP-address SANs; since
 *             OpenSSL has already verified the configured name, that
 *             second check is overridden only when it disagrees
 *             (SMTP_EV_WRONG_PEER_CERTIFICATE). libesmtp sets no SNI, so
 *             we set it on the SSL when its handshake starts.
 *   tls       implicit TLS (usually port 465). libesmtp 1.1 can start TLS
 *             only after STARTTLS and opens its own socket (there is no
 *             API to hand it a connection), so each session gets a
 *             tls_tunnel (tls_tunnel.h): libesmtp talks plain text to
 *             127.0.0.1:<tunnel port> with STARTTLS disabled, the
 *             tunnel's thread dials [smtp] host:port within [smtp]
 *             timeout (the connect timeout libesmtp lacks) and does the
 *             handshake with the same checks as above (system CAs or
 *             ca_file, OpenSSL's name or IP check, SNI), TLS 1.2 or 1.3
 *             (libesmtp never sees that layer, so its TLS 1.3 trouble
 *             does not arise). The tunnel accepts one connection, and
 *             only from this process. Its failure (connect refused, DNS,
 *             "certificate verify failed: hostname mismatch", ...) is the
 *             reason the batch is DOWN. AUTH goes through the tunnel's
 *             TLS; the guard below still applies.
 *   none      only towards a loopback host (127.0.0.0/8, localhost, which
 *             covers ::1: libesmtp takes no IPv6 literal), for tests.
 *
 * AUTH: [smtp] user and the password from [smtp] password_file, through
 * libesmtp's SASL plugins (PLAIN, LOGIN; CRAM-MD5 if offered). libesmtp
 * carries on without authentication when AUTH fails, so a protocol
 * monitor watches the replies to AUTH; a notice whose DATA would go out
 * unauthenticated is stopped before its first byte (the connection is
 * dropped, so the server discards the transaction) and the batch is DOWN.
 *
 * Outcomes: 2xx after the data -> SENT (provider_id: the queue id from
 * "queued as X" / "id=X" if the server said one); RCPT 5xx -> PERMFAIL for
 * that notice, the session goes on; 4xx to MAIL, RCPT or DATA -> TEMPFAIL;
 * 5xx to the data -> PERMFAIL; MAIL 5xx (the sender refused, true for
 * every notice) -> DOWN; the connection lost after RCPT or during the
 * data -> TEMPFAIL for that notice (it may have been delivered: at least
 * once). Notices a lost connection left unattempted go into a new session
 * while each session settles at least one notice; connection refused,
 * DNS, TLS, AUTH failures and a 4xx/5xx greeting leave them DOWN.
 *
 * Timeouts: [smtp] timeout for every protocol step (libesmtp's greeting,
 * envelope, data and transfer timeouts). libesmtp's connect() has no
 * timeout of its own: an unreachable host waits for the kernel's.
 */
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "channel_p.h"
#include "log.h"
#include "mailfmt.h"
#include "tls_tunnel.h"
#include "tlsverify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct smtp_priv {
	char *host;
	char *hostport;
	char *helo;               /* NULL: libesmtp uses gethostname() */
	char *env_from;
	char *user;
	char *password;           /* NULL: no AUTH */
	enum tls_mode tls;
	int port;
	bool host_is_ip;
	X509_STORE *store;        /* CAs, loaded once; shared by sessions */
	long timeout_ms;
};

/* One session's view of the protocol, filled by libesmtp's callbacks. */
struct smtp_run {
	const struct smtp_priv *p;
	const char *server;       /* what libesmtp dials: host:port or the tunnel */
	int server_port;
	char *tunnel_err;         /* why the tunnel failed, after its close */
	bool in_auth, auth_ok, auth_blocked;
	char line[128];           /* the server reply line being read */
	size_t line_len;
	char last_reply[200];     /* last final reply line, e.g. "421 ..." */
	char auth_reply[200];     /* the reply that ended AUTH */
	char tls_err[200];
	bool no_starttls;
};

/* One notice in a session. */
struct smtp_msg {
	struct smtp_run *run;
	size_t idx;               /* into the batch */
	const char *data;
	size_t len;
	bool given;
	smtp_message_t m;
	smtp_recipient_t r;
};

/* ---- open / close ---- */

/* IPv6 literals never get here (smtp_open refuses them). */
static int load_store(struct smtp_priv *p, const char *ca_file, char **err)
{
	p->store = X509_STORE_new();
	int ok = str_empty(ca_file) ? X509_STORE_set_default_paths(p->store)
				    : X509_STORE_load_file(p->store, ca_file);
	if (ok != 1)
		return seterr(err, "[smtp] ca_file: cannot load CA certificates from %s",
			      str_empty(ca_file) ? "the system store" : ca_file);
	return 0;
}

static void smtp_priv_free(struct smtp_priv *p)
{
	if (p == NULL)
		return;
	free(p->host);
	free(p->hostport);
	free(p->helo);
	free(p->env_from);
	free(p->user);
	secure_free(p->password);
	X509_STORE_free(p->store);
	free(p);
}

static int check_tls_mode(const struct conf_smtp *s, char **err)
{
	if (s->tls == TLS_NONE && !host_is_loopback(s->host))
		return seterr(err, "[smtp] tls = none is allowed only towards a loopback host "
			      "(127.0.0.1, ::1, localhost), not '%s'", s->host);
	return 0;
}

static int smtp_open(struct channel *ch, char **err)
{
	const struct conf_smtp *s = &ch->conf->smtp;
	if (str_empty(s->host))
		return seterr(err, "[smtp] host is required");
	/* smtp_set_server() splits "host:port" at the first colon. */
	if (strchr(s->host, ':'))
		return seterr(err, "[smtp] host: libesmtp cannot take an IPv6 address; give a "
			      "name that resolves to it (localhost for ::1)");
	if (check_tls_mode(s, err) < 0)
		return -1;
	struct smtp_priv *p = xcalloc(1, sizeof(*p));
	p->host = xstrdup(s->host);
	p->hostport = xasprintf("%s:%d", s->host, s->port);
	p->helo = str_empty(s->helo) ? NULL : xstrdup(s->helo);
	p->tls = s->tls;
	p->port = s->port;
	p->host_is_ip = tls_host_is_ip(s->host);
	p->timeout_ms = (long)(s->timeout.n > 0 ? s->timeout.n : 60) * 1000;
	if (mailfmt_envelope_from(ch->conf, &p->env_from, err) < 0)
		goto fail;
	if (!str_empty(s->user)) {
		if (str_empty(s->password_file)) {
			seterr(err, "[smtp] password_file is required with [smtp] user");
			goto fail;
		}
		char *e = NULL;
		if (secret_read(s->password_file, &p->password, &e) < 0) {
			seterr(err, "[smtp] password_file: %s", e);
			free(e);
			goto fail;
		}
		p->user = xstrdup(s->user);
	}
	if (p->tls != TLS_NONE && load_store(p, s->ca_file, err) < 0)
		goto fail;
	auth_client_init();
	ch->priv = p;
	return 0;
fail:
	smtp_priv_free(p);
	return -1;
}

static void smtp_close(struct channel *ch)
{
	smtp_priv_free(ch->priv);
	ch->priv = NULL;
}

/* ---- TLS ---- */

static struct smtp_run *run_of_ssl(const SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* Record the first certificate problem (the handshake then fails). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	if (ok)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct smtp_run *run = ssl ? run_of_ssl(ssl) : NULL;
	if (run && run->tls_err[0] == '\0')
		snprintf(run->tls_err, sizeof(run->tls_err), "TLS: certificate refused: %s (depth %d)",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)),
			 X509_STORE_CTX_get_error_depth(x));
	return ok;
}

/* SNI: libesmtp never sets it; the ClientHello is built after this. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct smtp_run *run = run_of_ssl(ssl);
	if ((where & SSL_CB_HANDSHAKE_START) && run && !run->p->host_is_ip)
		SSL_set_tlsext_host_name((SSL *)ssl, run->p->host);
}

static SSL_CTX *tls_ctx(struct smtp_run *run)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	/* TLS 1.2 only: libesmtp 1.1 deadlocks on TLS 1.3. A TLS 1.3 server
	 * sends NewSessionTicket records right after the handshake; when they
	 * arrive before libesmtp flushes its EHLO, its protocol loop reads
	 * first, SSL_read() consumes the tickets, finds no reply and waits
	 * for one while the EHLO is still in its buffer, until the timeout.
	 * (Seen here in about one session in four on loopback.) */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set1_cert_store(ctx, run->p->store);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (run->p->host_is_ip)
		X509_VERIFY_PARAM_set1_ip_asc(vp, run->p->host);
	else
		X509_VERIFY_PARAM_set1_host(vp, run->p->host, 0);
	SSL_CTX_set_app_data(ctx, run);
	SSL_CTX_set_info_callback(ctx, info_cb);
	return ctx;
}

/* ---- Nagle ----
 *
 * libesmtp writes through a 2 KiB buffer: a message goes out as one
 * write (or TLS record) per 2 KiB, and with PIPELINING the commands
 * around it as more small writes. With Nagle's algorithm on, a small
 * write waits until everything sent before it is acknowledged, and the
 * server delays that ACK (~40 ms) because it has nothing to answer yet:
 * one stall per message, about 23 messages/s per session against Postfix
 * (bench/README.md). libesmtp sets no TCP_NODELAY and gives no access to
 * its socket, so when it reports the connection, every TCP socket of
 * ours connected to the server's port gets TCP_NODELAY (the sockets of
 * other sessions to the same server want it too; a socket of another
 * kind that happens to match loses nothing by it). */

static bool nodelay(int fd, void *ctx)
{
	int port = *(const int *)ctx;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int type = 0, one = 1;
	socklen_t tlen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
	    getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
		return false;
	int pport = peer.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&peer)->sin_port)
		  : peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&peer)->sin6_port) : -1;
	if (pport == port)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return false;            /* every one of them */
}

static void nodelay_to_server(int port)
{
	if (fd_each_open(nodelay, &port) < 0)
		log_debug("smtp: /proc/self/fd: %s (Nagle stays on)", strerror(errno));
}

/* ---- libesmtp callbacks ---- */

static void event_cb(smtp_session_t s, int event, void *arg, ...)
{
	struct smtp_run *run = arg;
	va_list ap;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		nodelay_to_server(run->server_port);
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		/* OpenSSL verified the configured name in the handshake
		 * (SSL_VERIFY_PEER + set1_host); libesmtp's matcher looked
		 * at the DNS canonical name. Only for a connection made with
		 * our context, where that check is known to have run. */
		int *ok = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		SSL *ssl = va_arg(ap, SSL *);
		if (ssl != NULL && run_of_ssl(ssl) == run)
			*ok = 1;
		break;
	}
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
	case SMTP_EV_NO_PEER_CERTIFICATE:
		if (run->tls_err[0] == '\0')
			snprintf(run->tls_err, sizeof(run->tls_err), "TLS: no valid server certificate");
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		run->no_starttls = true;
		break;
	default:
		break;
	}
	va_end(ap);
}

/* A complete line the server sent. */
static void server_line(struct smtp_run *run, const char *l, size_t n)
{
	while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == '\n'))
		n--;
	if (n < 4 || l[3] != ' ' || l[0] < '1' || l[0] > '5')
		return;    /* continuation line or not a reply */
	char *t = detail_text(l, n, sizeof(run->last_reply) - 1, NULL);
	snprintf(run->last_reply, sizeof(run->last_reply), "%s", t);
	log_debug("smtp: %s: < %s", run->p->hostport, t);
	free(t);
	if (!run->in_auth || strncmp(l, "334", 3) == 0)
		return;
	run->in_auth = false;
	if (l[0] == '2')
		run->auth_ok = true;
	else
		snprintf(run->auth_reply, sizeof(run->auth_reply), "%s", run->last_reply);
}

/* libesmtp's protocol monitor (message data is not shown to it). Sent
 * text is only looked at for "AUTH " (what follows is the credentials and
 * is never copied); replies are cut into lines. */
static void monitor_cb(const char *buf, int len, int writing, void *arg)
{
	struct smtp_run *run = arg;
	if (writing == SMTP_CB_WRITING) {
		if (len >= 5 && strncasecmp(buf, "AUTH ", 5) == 0)
			run->in_auth = true;
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (int i = 0; i < len; i++) {
		if (run->line_len < sizeof(run->line))
			run->line[run->line_len++] = buf[i];
		if (buf[i] == '\n') {
			server_line(run, run->line, run->line_len);
			run->line_len = 0;
		}
	}
}

static int interact_cb(auth_client_request_t req, char **result, int fields, void *arg)
{
	struct smtp_run *run = arg;
	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_PASS)
			result[i] = run->p->password;
		else if (req[i].flags & AUTH_USER)
			result[i] = run->p->user;
		else
			result[i] = "";
	}
	return 1;
}

/* The message, in one piece. Refuses (and so drops the connection before
 * the first byte of data) when AUTH was wanted and did not succeed. */
static const char *msg_cb(void **ctx, int *len, void *arg)
{
	struct smtp_msg *m = arg;
	if (len == NULL) {
		m->given = false;
		return NULL;
	}
	if (m->run->p->password && !m->run->auth_ok) {
		m->run->auth_blocked = true;
		errno = EACCES;
		*len = 0;
		return NULL;
	}
	if (m->given) {
		*len = 0;
		return NULL;
	}
	m->given = true;
	*len = (int)m->len;
	return m->data;
}

/* ---- one session ---- */

/* -1 if the session must not start (no TLS context could be made:
 * libesmtp would otherwise fall back to its own, unverified one). */
static int session_setup(smtp_session_t s, struct smtp_run *run, auth_context_t *auth)
{
	const struct smtp_priv *p = run->p;
	smtp_set_server(s, run->server);
	if (p->helo)
		smtp_set_hostname(s, p->helo);
	static const int which[] = { Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
				     Timeout_TRANSFER, Timeout_DATA2 };
	for (size_t i = 0; i < ARRAY_LEN(which); i++)
		smtp_set_timeout(s, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, p->timeout_ms);
	/* Through a tunnel the greeting waits for its connect and handshake
	 * too (one timeout for both): let the tunnel give up first, with its
	 * reason, and the server still a whole timeout for the greeting. */
	if (p->tls == TLS_IMPLICIT)
		smtp_set_timeout(s, Timeout_GREETING | Timeout_OVERRIDE_RFC2822_MINIMUM,
				 2 * p->timeout_ms);
	smtp_set_eventcb(s, event_cb, run);
	smtp_set_monitorcb(s, monitor_cb, run, 0);
	*auth = NULL;
	if (p->tls == TLS_STARTTLS) {
		SSL_CTX *ctx = tls_ctx(run);
		if (ctx == NULL) {
			snprintf(run->tls_err, sizeof(run->tls_err), "TLS: cannot create a context");
			return -1;
		}
		smtp_starttls_set_ctx(s, ctx);   /* takes its own reference */
		SSL_CTX_free(ctx);
		smtp_starttls_enable(s, Starttls_REQUIRED);
	} else {
		smtp_starttls_enable(s, Starttls_DISABLED);
	}
	if (p->password) {
		*auth = auth_create_context();
		auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(*auth, interact_cb, run);
		smtp_auth_set_context(s, *auth);
	}
	return 0;
}

static void add_messages(smtp_session_t s, const struct smtp_priv *p, struct smtp_msg *msgs,
			 size_t k, struct notice *const *batch)
{
	for (size_t i = 0; i < k; i++) {
		struct smtp_msg *m = &msgs[i];
		m->m = smtp_add_message(s);
		smtp_set_reverse_path(m->m, p->env_from);
		smtp_set_messagecb(m->m, msg_cb, m);
		m->r = smtp_add_recipient(m->m, batch[m->idx]->to);
	}
}

/* "... queued as 4F2A1C" (Postfix), "... id=1tX-00" (Exim): the marker
 * must start a word. */
static char *queue_id(const char *text)
{
	static const char *const marks[] = { "queued as ", "id=" };
	for (size_t i = 0; text && i < ARRAY_LEN(marks); i++) {
		for (const char *p = text; (p = strcasestr(p, marks[i])) != NULL; p++) {
			if (p > text && p[-1] != ' ' && p[-1] != '(' && p[-1] != '[')
				continue;
			const char *v = p + strlen(marks[i]);
			size_t n = strcspn(v, " \t\r\n;,)>]");
			if (n > 0 && n < 128)
				return xstrndup(v, n);
		}
	}
	return NULL;
}

static char *status_text(const smtp_status_t *st)
{
	char *t = detail_text(st->text, st->text ? strlen(st->text) : 0, 200, NULL);
	char *s = xasprintf("%d %s", st->code, str_trim(t));
	free(t);
	return s;
}

/* What the session did with one notice; false if it never got to it. */
static bool classify(const struct smtp_msg *m, struct delivery *d)
{
	const smtp_status_t *mail = smtp_reverse_path_status(m->m);
	const smtp_status_t *rcpt = smtp_recipient_status(m->r);
	const smtp_status_t *data = smtp_message_transfer_status(m->m);
	char *t = NULL;
	if (data->code / 100 == 2) {
		t = status_text(data);
		delivery_set(d, DLV_SENT, 0, "%s", t);
		d->provider_id = queue_id(data->text);
	} else if (mail->code == 0) {
		return false;
	} else if (mail->code / 100 != 2) {
		t = status_text(mail);
		delivery_set(d, mail->code / 100 == 5 ? DLV_DOWN : DLV_TEMPFAIL, 0,
			     "MAIL FROM refused: %s", t);
	} else if (rcpt->code == 0) {
		delivery_set(d, DLV_TEMPFAIL, 0, "connection lost before RCPT was answered");
	} else if (rcpt->code / 100 != 2) {
		t = status_text(rcpt);
		delivery_set(d, rcpt->code / 100 == 5 ? DLV_PERMFAIL : DLV_TEMPFAIL, 0,
			     "recipient refused: %s", t);
	} else if (data->code == 0 || data->code == 354) {
		delivery_set(d, DLV_TEMPFAIL, 0, "connection lost during DATA; the message may "
			     "have been delivered");
	} else {
		t = status_text(data);
		delivery_set(d, data->code / 100 == 5 ? DLV_PERMFAIL : DLV_TEMPFAIL, 0,
			     "message refused: %s", t);
	}
	free(t);
	return true;
}

/* Why a session got nowhere, for the notices it leaves DOWN. */
static char *session_failure(const struct smtp_run *run, int started)
{
	char buf[128];
	bool refused = run->last_reply[0] == '4' || run->last_reply[0] == '5';
	/* The tunnel's connect, DNS or certificate failure, or its relay's I/O
	 * error; but a server's own refusal (a 421 before it hung up) says more. */
	if (run->tunnel_err && !refused)
		return xstrdup(run->tunnel_err);
	if (run->tls_err[0])
		return xstrdup(run->tls_err);
	if (run->no_starttls)
		return xstrdup("the server does not offer STARTTLS, which [smtp] tls = starttls requires");
	if (run->p->password && !run->auth_ok)
		return xasprintf("authentication failed%s%s", run->auth_reply[0] ? ": " : " (AUTH not offered)",
				 run->auth_reply);
	if (refused)
		return xasprintf("server said: %s", run->last_reply);
	if (!started || smtp_errno() != 0)
		return xasprintf("%s: %s", run->p->hostport,
				 smtp_strerror(smtp_errno(), buf, sizeof(buf)));
	return xstrdup("the session ended early");
}

/* Implicit TLS: a tunnel for this session, and libesmtp pointed at it. */
static int tunnel_start(struct smtp_run *run, struct tls_tunnel **tun, char *server, size_t n)
{
	const struct smtp_priv *p = run->p;
	char *prefix = xasprintf("smtp: %s: tunnel", p->hostport);
	struct tls_tunnel_conf tc = { .host = p->host, .port = p->port, .store = p->store,
				      .timeout_ms = p->timeout_ms, .log_prefix = prefix };
	int rc = tls_tunnel_open(&tc, tun, &run->tunnel_err);
	free(prefix);
	if (rc < 0)
		return -1;
	run->server_port = tls_tunnel_port(*tun);
	snprintf(server, n, "127.0.0.1:%d", run->server_port);
	run->server = server;
	return 0;
}

/* Run one session over msgs; fills out[] for every notice it settled and
 * returns how many. The rest are left with outcome unset (detail NULL). */
static size_t run_session(const struct smtp_priv *p, struct smtp_msg *msgs, size_t k,
			  struct notice *const *batch, struct delivery *out, char **why)
{
	struct smtp_run run = { .p = p, .server = p->hostport, .server_port = p->port };
	smtp_session_t s = smtp_create_session();
	auth_context_t auth = NULL;
	struct tls_tunnel *tun = NULL;
	char tunnel_server[32];
	int started = 0;
	for (size_t i = 0; i < k; i++)
		msgs[i].run = &run;
	add_messages(s, p, msgs, k, batch);
	/* A tunnel that cannot start leaves run.tunnel_err. */
	bool ready = p->tls != TLS_IMPLICIT ||
		     tunnel_start(&run, &tun, tunnel_server, sizeof(tunnel_server)) == 0;
	if (ready && session_setup(s, &run, &auth) == 0)
		started = smtp_start_session(s);
	if (tun) {
		char *f;
		tls_tunnel_close(tun, &f);
		free(run.tunnel_err);
		run.tunnel_err = f;
	}
	char ebuf[128];
	log_debug("smtp: %s: session ended (%d): %s", p->hostport, started,
		  smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
	size_t settled = 0;
	bool auth_failed = p->password && !run.auth_ok;
	for (size_t i = 0; i < k; i++) {
		struct delivery *d = &out[msgs[i].idx];
		if (!classify(&msgs[i], d))
			continue;
		if (auth_failed && d->outcome != DLV_SENT) {
			delivery_clear(d);  /* AUTH failed: refusals are about us */
			continue;
		}
		settled++;
	}
	*why = session_failure(&run, started);
	free(run.tunnel_err);
	smtp_destroy_session(s);
	if (auth)
		auth_destroy_context(auth);
	return settled;
}

/* ---- send ---- */

static void smtp_send(struct channel *ch, struct notice *const *batch, size_t n,
		      struct delivery *out)
{
	const struct smtp_priv *p = ch->priv;
	struct smtp_msg *msgs = xcalloc(n ? n : 1, sizeof(*msgs));
	struct buf *bodies = xcalloc(n ? n : 1, sizeof(*bodies));
	size_t k = 0;
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		char *err = NULL;
		memset(&out[i], 0, sizeof(out[i]));
		if (mailfmt_render(ch->conf, batch[i], now, &bodies[i], &err) < 0) {
			delivery_set(&out[i], DLV_PERMFAIL, 0, "%s", err);
			free(err);
			continue;
		}
		msgs[k++] = (struct smtp_msg){ .idx = i, .data = bodies[i].p, .len = bodies[i].len };
	}
	struct sigpipe_guard g;
	sigpipe_block(&g);
	char *why = NULL;
	/* A lost connection leaves later notices unattempted: give them a
	 * new session as long as each session settles something. */
	while (k > 0) {
		free(why);
		size_t settled = run_session(p, msgs, k, batch, out, &why);
		size_t left = 0;
		for (size_t i = 0; i < k; i++)
			if (out[msgs[i].idx].detail == NULL)
				msgs[left++] = (struct smtp_msg){ .idx = msgs[i].idx, .data = msgs[i].data,
								  .len = msgs[i].len };
		k = left;
		if (settled == 0)
			break;
	}
	for (size_t i = 0; i < k; i++)
		delivery_set(&out[msgs[i].idx], DLV_DOWN, 0, "%s", why);
	if (k > 0)
		log_warnx("smtp: %s: %zu notice(s) not sent: %s", p->hostport, k, why);
	sigpipe_restore(&g);
	free(why);
	for (size_t i = 0; i < n; i++)
		buf_free(&bodies[i]);
	free(bodies);
	free(msgs);
}

const struct channel_ops channel_smtp_ops = {
	.name = "smtp",
	.open = smtp_open,
	.send = smtp_send,
	.close = smtp_close,
};
