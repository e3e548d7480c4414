/* tlsverify.c: see tlsverify.h. Every check is GnuTLS's own; this file
 * only feeds it the chain and turns its verdict into a sentence. */
#include "tlsverify.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>

struct tls_trust {
	gnutls_x509_trust_list_t list;
};

/* GnuTLS's status bits, most telling first. */
static const struct {
	unsigned int bit;
	const char *why;
} status_reasons[] = {
	{ GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found" },
	{ GNUTLS_CERT_EXPIRED, "expired" },
	{ GNUTLS_CERT_NOT_ACTIVATED, "not yet valid" },
	{ GNUTLS_CERT_REVOKED, "revoked" },
	{ GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature" },
	{ GNUTLS_CERT_SIGNER_NOT_CA, "signer is not a CA" },
	{ GNUTLS_CERT_INSECURE_ALGORITHM, "insecure algorithm" },
	{ GNUTLS_CERT_PURPOSE_MISMATCH, "not meant for TLS servers" },
	{ GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "signer constraints violated" },
	{ GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS, "unknown critical extension" },
};

bool tls_host_is_ip(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int tls_trust_load(const char *ca_file, struct tls_trust **out, char **err)
{
	gnutls_x509_trust_list_t list;
	int r = gnutls_global_init();
	if (r < 0)
		return seterr(err, "gnutls: %s", gnutls_strerror(r));
	if ((r = gnutls_x509_trust_list_init(&list, 0)) < 0) {
		gnutls_global_deinit();
		return seterr(err, "gnutls: %s", gnutls_strerror(r));
	}
	if (!str_empty(ca_file))
		r = gnutls_x509_trust_list_add_trust_file(list, ca_file, NULL,
							  GNUTLS_X509_FMT_PEM, 0, 0);
	else
		r = gnutls_x509_trust_list_add_system_trust(list, 0, 0);
	if (r <= 0) {
		if (!str_empty(ca_file))
			seterr(err, "%s: %s", ca_file,
			       r < 0 ? gnutls_strerror(r) : "no CA certificate in it");
		else
			seterr(err, "the system CA store: %s",
			       r < 0 ? gnutls_strerror(r) : "no CA certificate found");
		gnutls_x509_trust_list_deinit(list, 1);
		gnutls_global_deinit();
		return -1;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->list = list;
	return 0;
}

void tls_trust_free(struct tls_trust *t)
{
	if (t == NULL)
		return;
	gnutls_x509_trust_list_deinit(t->list, 1);
	gnutls_global_deinit();
	free(t);
}

static void crts_free(gnutls_x509_crt_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(c[i]);
	free(c);
}

static gnutls_x509_crt_t *crts_import(const struct tls_der *chain, size_t n, char **err)
{
	gnutls_x509_crt_t *c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		gnutls_datum_t d = { (unsigned char *)chain[i].p, (unsigned int)chain[i].len };
		int r = gnutls_x509_crt_init(&c[i]);
		if (r >= 0)
			r = gnutls_x509_crt_import(c[i], &d, GNUTLS_X509_FMT_DER);
		if (r < 0) {
			seterr(err, "certificate %zu of the chain: %s", i, gnutls_strerror(r));
			crts_free(c, i + 1);
			return NULL;
		}
	}
	return c;
}

/* The names the leaf is for (SANs, else the CN), for the error message. */
static void leaf_names(gnutls_x509_crt_t crt, struct buf *b)
{
	for (unsigned int i = 0; b->len < 200; i++) {
		char v[256];
		size_t sz = sizeof(v) - 1;
		int t = gnutls_x509_crt_get_subject_alt_name(crt, i, v, &sz, NULL);
		if (t < 0 && t != GNUTLS_E_SHORT_MEMORY_BUFFER)
			break;
		char ip[INET6_ADDRSTRLEN];
		const char *name = NULL;
		if (t == GNUTLS_SAN_DNSNAME) {
			v[sz] = '\0';
			name = v;
		} else if (t == GNUTLS_SAN_IPADDRESS && (sz == 4 || sz == 16)) {
			name = inet_ntop(sz == 4 ? AF_INET : AF_INET6, v, ip, sizeof(ip));
		}
		if (name != NULL)
			buf_printf(b, "%s%s", b->len ? ", " : "", name);
	}
	if (b->len == 0) {
		char cn[256];
		size_t sz = sizeof(cn);
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
						  cn, &sz) >= 0)
			buf_adds(b, cn);
		else
			buf_adds(b, "no name");
	}
}

static bool name_matches(gnutls_x509_crt_t leaf, const char *host)
{
	unsigned char ip[16];
	if (inet_pton(AF_INET, host, ip) == 1)
		return gnutls_x509_crt_check_ip(leaf, ip, 4, 0) != 0;
	if (inet_pton(AF_INET6, host, ip) == 1)
		return gnutls_x509_crt_check_ip(leaf, ip, 16, 0) != 0;
	return gnutls_x509_crt_check_hostname2(leaf, host, 0) != 0;
}

static int check_trust(struct tls_trust *t, gnutls_x509_crt_t *c, size_t n,
		       const char *host, char **err)
{
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER,
	};
	unsigned int status = 0;
	int r = gnutls_x509_trust_list_verify_crt2(t->list, c, (unsigned int)n, &purpose, 1,
						   0, &status, NULL);
	if (r < 0)
		return seterr(err, "certificate for %s cannot be verified: %s",
			      host, gnutls_strerror(r));
	if (status == 0)
		return 0;
	const char *why = "invalid";
	for (size_t i = 0; i < ARRAY_LEN(status_reasons); i++) {
		if (status & status_reasons[i].bit) {
			why = status_reasons[i].why;
			break;
		}
	}
	return seterr(err, "certificate for %s is not trusted: %s", host, why);
}

int tls_verify_chain(struct tls_trust *t, const struct tls_der *chain, size_t n,
		     const char *host, char **err)
{
	if (n == 0)
		return seterr(err, "server %s sent no certificate", host);
	gnutls_x509_crt_t *c = crts_import(chain, n, err);
	if (c == NULL)
		return -1;
	int rc = check_trust(t, c, n, host, err);
	if (rc == 0 && !name_matches(c[0], host)) {
		struct buf names = BUF_INIT;
		leaf_names(c[0], &names);
		rc = seterr(err, "certificate for %s does not match host %s", names.p, host);
		buf_free(&names);
	}
	crts_free(c, n);
	return rc;
}
