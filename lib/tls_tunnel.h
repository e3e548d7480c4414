/*
 * tls_tunnel.h: a verified TLS client connection that a plain-text client
 * in this process reaches through a loopback port.
 *
 * Why: libesmtp 1.1 opens its own socket (getaddrinfo() + connect() on
 * "host:port") and can start TLS only after STARTTLS; there is no way to
 * hand it a TLS connection. For implicit TLS (SMTP submission on port
 * 465) the SMTP channel opens a tunnel per session and points libesmtp
 * at 127.0.0.1:<tunnel port> with STARTTLS off: libesmtp speaks plain
 * text to the tunnel, the tunnel speaks TLS to the server.
 *
 * What tls_tunnel_open() starts, in one thread of its own:
 *   1. listen on 127.0.0.1, port 0 (the kernel's choice), backlog 1;
 *   2. accept ONE connection, and only one that comes from this process:
 *      the accepted peer must be one of this process's own sockets
 *      (found through /proc/self/fd: a socket bound to the peer address
 *      and connected to the listener). Any local user can connect to a
 *      loopback port; a connection from elsewhere is closed and logged
 *      and the tunnel waits on, so nobody reaches the server (a relay
 *      that may trust this host's address) through us. The listener is
 *      closed as soon as the one connection is accepted;
 *   3. connect to host:port (non-blocking connect, every address
 *      getaddrinfo() gives, within the timeout);
 *   4. the TLS handshake: TLS 1.2 or 1.3, the server's chain verified
 *      against the trust store, the name checked by OpenSSL
 *      (X509_VERIFY_PARAM_set1_host; an IP literal against IP SANs), SNI
 *      for a DNS name. Steps 3 and 4 share one deadline of timeout_ms;
 *   5. copy bytes both ways until either side closes, an error, or
 *      timeout_ms without traffic either way.
 * A failure in 2-4 closes the accepted connection (the client sees the
 * connection closed) and is kept as the tunnel's failure reason.
 *
 * Threads and ownership: the tunnel's thread owns every socket and the
 * TLS state; the caller only reads the port. tls_tunnel_close() tells
 * the thread to stop (it stops waiting at once; in step 5 it forwards
 * what is already readable and ends), joins it and frees the tunnel.
 * Host names are copied; the store is referenced (X509_STORE_up_ref), so
 * the caller may free its own reference at any time. The thread blocks
 * every signal (SIGPIPE from a write to a closed peer included).
 *
 * Known limit: getaddrinfo() has no timeout; a resolver that hangs delays
 * step 3 (and tls_tunnel_close()) by the resolver's own timeouts.
 */
#ifndef EIMZA_TLS_TUNNEL_H
#define EIMZA_TLS_TUNNEL_H

#include <openssl/x509.h>

#include "util.h"

struct tls_tunnel;

struct tls_tunnel_conf {
	const char *host;       /* dialled, verified and sent as SNI */
	int port;
	X509_STORE *store;      /* trust anchors */
	long timeout_ms;        /* accept; connect + handshake; idle relay */
	const char *log_prefix; /* e.g. "smtp: tunnel to host:465" */
};

/* Start a tunnel: 0 and *out, or -1 with *err (socket or thread setup
 * failed; nothing is left open). Nothing goes to the network before a
 * connection of ours is accepted. */
int tls_tunnel_open(const struct tls_tunnel_conf *c, struct tls_tunnel **out, char **err);

/* The loopback port to connect to (127.0.0.1). */
int tls_tunnel_port(const struct tls_tunnel *t);

/* Stop, join, close everything, free t (NULL is fine). If failure is not
 * NULL it receives why the tunnel failed (allocated, the caller frees
 * it), e.g. "TLS handshake with mail.example:465: certificate verify
 * failed: hostname mismatch", or NULL if it did not fail (a clean end by
 * either side, or stopped before anything went wrong). */
void tls_tunnel_close(struct tls_tunnel *t, char **failure);

#endif
