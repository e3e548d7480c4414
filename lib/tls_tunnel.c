/*
 * tls_tunnel.c: see tls_tunnel.h. One thread per tunnel runs the steps
 * in order (accept one of ours, dial, handshake, relay) and owns every
 * descriptor; tls_tunnel_close() signals it through an eventfd that
 * each of its poll() calls watches.
 */
#include "tls_tunnel.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tlsverify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct tls_tunnel {
	char *host;
	char *log_prefix;
	int port;                 /* the server's */
	long timeout_ms;
	X509_STORE *store;
	struct sockaddr_in lsn;   /* our listener: 127.0.0.1:<port> */
	int stopfd;               /* eventfd: tls_tunnel_close() -> thread */
	pthread_t thread;
	char *failure;            /* set by the thread, read after the join */
	/* The thread's own, from the start until it ends. */
	int lfd, cfd, sfd;        /* listener, client (libesmtp), server */
	SSL_CTX *ctx;
	SSL *ssl;
	bool tls_up;              /* handshake done, no fatal TLS error since */
	bool stopping;
};

/* A relay direction's buffer: bytes [off, len) are still to be written. */
struct relay_buf {
	char b[16384];
	size_t off, len;
};

static int fail(struct tls_tunnel *t, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Keep the first failure: later ones are its consequences. */
static int fail(struct tls_tunnel *t, const char *fmt, ...)
{
	if (t->failure != NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	t->failure = xvasprintf(fmt, ap);
	va_end(ap);
	log_debug("%s: %s", t->log_prefix, t->failure);
	return -1;
}

/* poll() itself failed (ENOMEM): give up as if stopped, saying why. */
static int poll_failed(struct tls_tunnel *t)
{
	fail(t, "poll: %s", strerror(errno));
	t->stopping = true;
	return -1;
}

/* poll() the entries of pf, the last of which is the stop eventfd.
 * 1: one of the others is ready; 0: deadline passed; -1: stopped. */
static int wait_poll(struct tls_tunnel *t, struct pollfd *pf, nfds_t n, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		int r = poll(pf, n, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			return poll_failed(t);
		if (r <= 0)
			continue;
		if (pf[n - 1].revents) {
			t->stopping = true;
			return -1;
		}
		return 1;
	}
}

/* Wait until fd has one of events (fd < 0 or no events: only the stop
 * and the deadline count). 1: ready; 0: deadline passed; -1: stopped. */
static int wait_fd(struct tls_tunnel *t, int fd, short events, int64_t deadline)
{
	struct pollfd pf[2] = {
		{ .fd = events ? fd : -1, .events = events },
		{ .fd = t->stopfd, .events = POLLIN },
	};
	return wait_poll(t, pf, 2, deadline);
}

/* ---- 2. accept one connection of ours ---- */

static bool is_addr(const struct sockaddr_storage *a, const struct sockaddr_in *b)
{
	const struct sockaddr_in *x = (const struct sockaddr_in *)a;
	return a->ss_family == AF_INET && x->sin_port == b->sin_port &&
	       x->sin_addr.s_addr == b->sin_addr.s_addr;
}

struct peer_query {
	const struct sockaddr_in *peer, *lsn;
};

/* Is fd a socket bound to the peer and connected to our listener? */
static bool fd_is_peer(int fd, void *ctx)
{
	const struct peer_query *q = ctx;
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || !is_addr(&a, q->peer))
		return false;
	len = sizeof(a);
	return getpeername(fd, (struct sockaddr *)&a, &len) == 0 && is_addr(&a, q->lsn);
}

/* The kernel gives a connection's client end its address before the SYN
 * leaves, and accept() returns only after the handshake, so a connection
 * made by this process has its other end among our descriptors by now.
 * A TCP connection is unique by its address pair: a match is that very
 * socket. Without /proc nothing can be proved, and nothing is accepted. */
static bool peer_is_ours(struct tls_tunnel *t, const struct sockaddr_in *peer)
{
	struct peer_query q = { peer, &t->lsn };
	int r = fd_each_open(fd_is_peer, &q);
	if (r < 0)
		log_warn("%s: /proc/self/fd", t->log_prefix);
	return r == 1;
}

static int accept_ours(struct tls_tunnel *t)
{
	int64_t deadline = mono_ms() + t->timeout_ms;
	for (;;) {
		int r = wait_fd(t, t->lfd, POLLIN, deadline);
		if (r == 0)
			return fail(t, "nobody connected to the tunnel within %ld ms", t->timeout_ms);
		if (r < 0)
			return -1;
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(t->lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			return fail(t, "accept: %s", strerror(errno));
		}
		if (len == sizeof(peer) && peer.sin_family == AF_INET && peer_is_ours(t, &peer)) {
			close(t->lfd);  /* exactly one connection */
			t->lfd = -1;
			t->cfd = fd;
			/* A multi-line reply arrives as several records, each
			 * forwarded by its own send(): without this, Nagle holds
			 * the second until libesmtp's delayed ACK (~40 ms). */
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return 0;
		}
		log_warnx("%s: refused a connection from 127.0.0.1:%d: it is not this process's own",
			  t->log_prefix, ntohs(peer.sin_port));
		close(fd);
	}
}

/* ---- 3. dial ---- */

/* Finish a non-blocking connect(): 0, or -1 with why filled (or stopped). */
static int connect_wait(struct tls_tunnel *t, int fd, int64_t deadline, char *why, size_t n)
{
	int r = wait_fd(t, fd, POLLOUT, deadline);
	if (r == 0)
		snprintf(why, n, "no answer within %ld ms", t->timeout_ms);
	if (r <= 0)
		return -1;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0)
		return 0;
	snprintf(why, n, "%s", strerror(err));
	return -1;
}

static int dial(struct tls_tunnel *t, int64_t deadline)
{
	/* No AI_ADDRCONFIG: it hides a loopback relay on a host whose only
	 * addresses are loopback ones. An unreachable family fails fast. */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char port[16], why[128] = "no address";
	snprintf(port, sizeof(port), "%d", t->port);
	int rc = getaddrinfo(t->host, port, &hints, &res);
	if (rc != 0)
		return fail(t, "%s: cannot resolve the name: %s", t->host,
			    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (struct addrinfo *ai = res; ai && t->sfd < 0 && !t->stopping; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			snprintf(why, sizeof(why), "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && connect_wait(t, fd, deadline, why, sizeof(why)) == 0))
			t->sfd = fd;
		else {
			if (errno != EINPROGRESS)
				snprintf(why, sizeof(why), "%s", strerror(errno));
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (t->sfd < 0)
		return t->stopping ? -1 : fail(t, "connect to %s:%d: %s", t->host, t->port, why);
	int one = 1;
	setsockopt(t->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* ---- 4. handshake ---- */

/* The same checks as the STARTTLS path of channel_smtp.c, but TLS 1.3 is
 * allowed: libesmtp never sees this TLS layer. */
static int tls_setup(struct tls_tunnel *t)
{
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		return fail(t, "TLS: cannot create a context");
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set1_cert_store(t->ctx, t->store);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* Servers close after "221" without close_notify; SMTP is
	 * self-delimiting, so that is an end, not an attack. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(t->ctx);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	bool ip = tls_host_is_ip(t->host);
	if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, t->host)
		: X509_VERIFY_PARAM_set1_host(vp, t->host, 0)) != 1)
		return fail(t, "TLS: cannot check certificates for '%s'", t->host);
	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, t->sfd) != 1 ||
	    (!ip && SSL_set_tlsext_host_name(t->ssl, t->host) != 1))
		return fail(t, "TLS: cannot set up the connection");
	return 0;
}

/* Why the handshake failed, in OpenSSL's words. */
static int handshake_failed(struct tls_tunnel *t, int ret, int e)
{
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK)
		return fail(t, "TLS handshake with %s:%d: certificate verify failed: %s", t->host,
			    t->port, X509_verify_cert_error_string(vr));
	unsigned long code = ERR_peek_last_error();
	const char *why = code ? ERR_reason_error_string(code) : NULL;
	if (why == NULL)
		why = e == SSL_ERROR_SYSCALL && ret < 0 && errno ? strerror(errno)
		    : "the server closed the connection";
	return fail(t, "TLS handshake with %s:%d: %s", t->host, t->port, why);
}

static int handshake(struct tls_tunnel *t, int64_t deadline)
{
	if (tls_setup(t) < 0)
		return -1;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(t->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(t->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
		if (ev == 0)
			return handshake_failed(t, r, e);
		int w = wait_fd(t, t->sfd, ev, deadline);
		if (w == 0)
			return fail(t, "TLS handshake with %s:%d: no answer within %ld ms", t->host,
				    t->port, t->timeout_ms);
		if (w < 0)
			return -1;
	}
	t->tls_up = true;
	log_debug("%s: %s, %s", t->log_prefix, SSL_get_version(t->ssl),
		  SSL_get_cipher_name(t->ssl));
	return 0;
}

/* ---- 5. relay ---- */

/* After SSL_read/SSL_write returned r <= 0: 0 with *ev set to what to
 * wait for on the server socket, 1 for the server's end of the stream,
 * -1 on an error (recorded). */
static int ssl_wait_for(struct tls_tunnel *t, int r, short *ev, const char *what)
{
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*ev |= e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 1;
	t->tls_up = false;    /* a fatal error: no close_notify after it */
	unsigned long code = ERR_peek_last_error();
	const char *why = code ? ERR_reason_error_string(code) : NULL;
	return fail(t, "%s %s:%d: %s", what, t->host, t->port,
		    why ? why : errno ? strerror(errno) : "connection closed");
}

/* Client -> server: read from libesmtp when the buffer is empty, then
 * push it into TLS. Returns -1 on an error, else whether bytes moved. */
static int pump_up(struct tls_tunnel *t, struct relay_buf *up, bool *ceof, short *cev, short *sev)
{
	int moved = 0;
	if (up->len == 0 && !*ceof) {
		ssize_t n = read(t->cfd, up->b, sizeof(up->b));
		if (n > 0) {
			up->len = (size_t)n;
			moved = 1;
		} else if (n == 0) {
			*ceof = true;
		} else if (errno == EAGAIN) {
			*cev |= POLLIN;
		} else if (errno != EINTR) {
			return fail(t, "reading from the client: %s", strerror(errno));
		}
	}
	if (up->len > 0) {
		ERR_clear_error();
		int r = SSL_write(t->ssl, up->b, (int)up->len);
		if (r > 0) {
			up->len = 0;
			moved = 1;
		} else if (ssl_wait_for(t, r, sev, "writing to") != 0) {
			return -1;   /* the server's end while we still write: lost */
		}
	}
	return moved;
}

/* Server -> client. Returns -1 on an error, else whether bytes moved. */
static int pump_down(struct tls_tunnel *t, struct relay_buf *dn, bool *seof, short *cev, short *sev)
{
	int moved = 0;
	if (dn->off == dn->len && !*seof) {
		ERR_clear_error();
		int r = SSL_read(t->ssl, dn->b, sizeof(dn->b));
		if (r > 0) {
			dn->off = 0;
			dn->len = (size_t)r;
			moved = 1;
		} else {
			int s = ssl_wait_for(t, r, sev, "reading from");
			if (s < 0)
				return -1;
			*seof = s == 1;
		}
	}
	if (dn->off < dn->len) {
		ssize_t n = send(t->cfd, dn->b + dn->off, dn->len - dn->off, MSG_NOSIGNAL);
		if (n > 0) {
			dn->off += (size_t)n;
			moved = 1;
		} else if (errno == EAGAIN) {
			*cev |= POLLOUT;
		} else if (errno != EINTR) {
			return fail(t, "writing to the client: %s", strerror(errno));
		}
	}
	return moved;
}

/* Wait for either socket (or the stop): 1 ready, 0 idle timeout, -1 stopped. */
static int wait_both(struct tls_tunnel *t, short cev, short sev, int64_t deadline)
{
	struct pollfd pf[3] = {
		{ .fd = cev ? t->cfd : -1, .events = cev },
		{ .fd = sev ? t->sfd : -1, .events = sev },
		{ .fd = t->stopfd, .events = POLLIN },
	};
	return wait_poll(t, pf, 3, deadline);
}

/* Until either side ends. Once stopped, forward only what is already
 * there: the client has finished with us. */
static void relay(struct tls_tunnel *t)
{
	static struct relay_buf zero;
	struct relay_buf *up = xmalloc(sizeof(*up)), *dn = xmalloc(sizeof(*dn));
	*up = zero;
	*dn = zero;
	bool ceof = false, seof = false;
	int64_t deadline = mono_ms() + t->timeout_ms;
	for (;;) {
		short cev = 0, sev = 0;
		int a = pump_up(t, up, &ceof, &cev, &sev);
		int b = a < 0 ? -1 : pump_down(t, dn, &seof, &cev, &sev);
		if (b < 0 || (ceof && up->len == 0) || (seof && dn->off == dn->len))
			break;
		if (a > 0 || b > 0) {
			deadline = mono_ms() + t->timeout_ms;
			continue;
		}
		if (t->stopping)
			break;
		if (wait_both(t, cev, sev, deadline) == 0) {
			fail(t, "no traffic for %ld ms", t->timeout_ms);
			break;
		}
	}
	free(up);
	free(dn);
}

/* ---- the thread ---- */

static void *tunnel_main(void *arg)
{
	struct tls_tunnel *t = arg;
	if (accept_ours(t) == 0) {
		int64_t deadline = mono_ms() + t->timeout_ms;
		if (dial(t, deadline) == 0 && handshake(t, deadline) == 0)
			relay(t);
	}
	if (t->tls_up)
		SSL_shutdown(t->ssl);   /* close_notify, if the socket takes it */
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	t->ssl = NULL;
	t->ctx = NULL;
	int *fds[] = { &t->cfd, &t->sfd, &t->lfd };
	for (size_t i = 0; i < ARRAY_LEN(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	return NULL;
}

/* ---- contract ---- */

static int listen_loopback(struct tls_tunnel *t, char **err)
{
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0)
		return seterr(err, "tunnel: socket: %s", strerror(errno));
	socklen_t len = sizeof(t->lsn);
	t->lsn = (struct sockaddr_in){ .sin_family = AF_INET,
				       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(t->lfd, (struct sockaddr *)&t->lsn, sizeof(t->lsn)) < 0 || listen(t->lfd, 1) < 0 ||
	    getsockname(t->lfd, (struct sockaddr *)&t->lsn, &len) < 0)
		return seterr(err, "tunnel: listen on 127.0.0.1: %s", strerror(errno));
	return 0;
}

static void tunnel_free(struct tls_tunnel *t)
{
	if (t->lfd >= 0)
		close(t->lfd);
	if (t->stopfd >= 0)
		close(t->stopfd);
	X509_STORE_free(t->store);
	free(t->host);
	free(t->log_prefix);
	free(t->failure);
	free(t);
}

int tls_tunnel_open(const struct tls_tunnel_conf *c, struct tls_tunnel **out, char **err)
{
	struct tls_tunnel *t = xcalloc(1, sizeof(*t));
	t->lfd = t->cfd = t->sfd = t->stopfd = -1;
	t->host = xstrdup(c->host);
	t->log_prefix = xstrdup(c->log_prefix ? c->log_prefix : "tunnel");
	t->port = c->port;
	t->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 60000;
	if (c->store != NULL && X509_STORE_up_ref(c->store) == 1)
		t->store = c->store;
	if (t->store == NULL) {
		seterr(err, "tunnel: no trust store");
		goto fail;
	}
	if (listen_loopback(t, err) < 0)
		goto fail;
	t->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stopfd < 0) {
		seterr(err, "tunnel: eventfd: %s", strerror(errno));
		goto fail;
	}
	/* The thread inherits a mask that blocks every signal. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t->thread, NULL, tunnel_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		seterr(err, "tunnel: thread: %s", strerror(rc));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	tunnel_free(t);
	return -1;
}

int tls_tunnel_port(const struct tls_tunnel *t)
{
	return ntohs(t->lsn.sin_port);
}

void tls_tunnel_close(struct tls_tunnel *t, char **failure)
{
	if (failure)
		*failure = NULL;
	if (t == NULL)
		return;
	uint64_t one = 1;
	if (write(t->stopfd, &one, sizeof(one)) != sizeof(one))
		fatal("%s: eventfd write", t->log_prefix);
	pthread_join(t->thread, NULL);
	if (failure) {
		*failure = t->failure;
		t->failure = NULL;
	}
	tunnel_free(t);
}
