/*
 * tlsverify.h: verify a TLS server's certificate chain with GnuTLS.
 *
 * Why: Debian's libetpan is built with GnuTLS and completes the handshake
 * without looking at the server's certificate. The IMAP source takes the
 * chain libetpan received (DER, leaf first) and checks it here, against the
 * system CA store or a configured CA file, and against the host name it
 * dialled (a DNS name, or an IP literal matched against IP SANs). Any
 * failure is a refused connection; there is no "accept anyway".
 *
 * Errors name what failed, for the log and for `eimzad -n`-style checks:
 *   "certificate for HOST is not trusted: signer not found"
 *   "certificate for NAMES does not match host HOST"
 *
 * Ownership: a struct tls_trust is loaded once (loading the system store
 * costs milliseconds) and reused for every connection; tls_trust_free()
 * releases it. The chain passed to tls_verify_chain() is only read.
 */
#ifndef EIMZA_TLSVERIFY_H
#define EIMZA_TLSVERIFY_H

#include "util.h"

struct tls_trust;

struct tls_der {
	const unsigned char *p;
	size_t len;
};

/* The trust anchors: the PEM file ca_file if it is set (non-empty), else
 * the system store. 0, or -1 with *err. */
int tls_trust_load(const char *ca_file, struct tls_trust **out, char **err);
void tls_trust_free(struct tls_trust *t);

/* Verify chain[0..n) (leaf first, as the server sent it) for host, with
 * the TLS server purpose. 0 if trusted and matching, else -1 with *err. */
int tls_verify_chain(struct tls_trust *t, const struct tls_der *chain, size_t n,
		     const char *host, char **err);

/* Is host an IP literal (v4 or v6)? SNI is only sent for DNS names. */
bool tls_host_is_ip(const char *host);

#endif
