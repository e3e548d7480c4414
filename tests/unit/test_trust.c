/* Unit tests of trust: Authentication-Results parsing (RFC 8601), the
 * verdict for a sender domain, link checks with every look-alike, and
 * the allow-lists that stay when require_auth is off. */
#include "testutil.h"

#include "classify_p.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static struct config C;

static void conf_init(bool require_auth)
{
	config_defaults(&C);
	strv_free(C.trust.authserv_ids);
	C.trust.authserv_ids = strv_add(NULL, "mx.example.edu.tr");
	C.general.institution_domains = strv_add(C.general.institution_domains, "example.edu.tr");
	C.officers.ebys = strv_add(NULL, "ebys.officer@example.edu.tr");
	C.trust.require_auth = require_auth;
}

/* ---- parsing ---- */

static const struct {
	const char *value;
	int rc;
	const char *id;
	const char *results;     /* "method=result[ prop=value...]|..." */
} ar_cases[] = {
	{ "mx.example.edu.tr; dkim=pass header.d=kamusm.gov.tr header.s=s1", 0, "mx.example.edu.tr",
	  "dkim=pass header.d=kamusm.gov.tr header.s=s1" },
	{ "mx.example.edu.tr 1; spf=pass smtp.mailfrom=a@kamusm.gov.tr", 0, "mx.example.edu.tr",
	  "spf=pass smtp.mailfrom=a@kamusm.gov.tr" },
	{ "mx.example.edu.tr; none", 0, "mx.example.edu.tr", "" },
	{ "mx.example.edu.tr (postfix (nested) comment);\r\n\tdkim=pass (2048-bit key; unprotected)"
	  " header.d=kamusm.gov.tr header.i=@kamusm.gov.tr", 0, "mx.example.edu.tr",
	  "dkim=pass header.d=kamusm.gov.tr header.i=@kamusm.gov.tr" },
	{ "mx.example.edu.tr; auth=pass smtp.auth=\"ebys officer\"", 0, "mx.example.edu.tr",
	  "auth=pass smtp.auth=ebys officer" },
	{ "MX.Example.EDU.TR; DKIM=PASS Header.D=kamusm.gov.tr", 0, "mx.example.edu.tr",
	  "dkim=pass header.d=kamusm.gov.tr" },
	{ "mx.example.edu.tr; dkim=fail reason=\"bad; sig\" header.d=x.example; dkim=pass header.d=y.example;"
	  " spf=softfail smtp.mailfrom=z.example", 0, "mx.example.edu.tr",
	  "dkim=fail header.d=x.example|dkim=pass header.d=y.example|spf=softfail smtp.mailfrom=z.example" },
	{ "mx.example.edu.tr; dkim/1=pass header.d=kamusm.gov.tr", 0, "mx.example.edu.tr",
	  "dkim=pass header.d=kamusm.gov.tr" },
	{ "mx.example.edu.tr; garbage; spf=pass smtp.mailfrom=kamusm.gov.tr", 0, "mx.example.edu.tr",
	  "spf=pass smtp.mailfrom=kamusm.gov.tr" },
	{ "", -1, NULL, NULL },
	{ ";;;", -1, NULL, NULL },
	{ "(only a comment)", -1, NULL, NULL },
};

static char *ar_format(const struct ar_header *h)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (size_t i = 0; i < h->nres; i++) {
		buf_printf(&b, "%s%s=%s", i ? "|" : "", h->res[i].method, h->res[i].result);
		for (size_t k = 0; h->res[i].props && h->res[i].props[k]; k++)
			buf_printf(&b, " %s", h->res[i].props[k]);
	}
	return buf_steal(&b);
}

static void test_ar_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ar_cases); i++) {
		struct ar_header h;
		int rc = ar_parse(ar_cases[i].value, &h);
		if (rc != ar_cases[i].rc)
			fail_msg("case %zu: rc %d", i, rc);
		if (rc == 0) {
			assert_string_equal(h.authserv_id, ar_cases[i].id);
			char *got = ar_format(&h);
			if (strcmp(got, ar_cases[i].results) != 0)
				fail_msg("case %zu: got '%s' want '%s'", i, got, ar_cases[i].results);
			free(got);
		}
		ar_free(&h);
	}
	struct ar_header h;
	assert_int_equal(ar_parse("mx; dkim=pass header.d=a.example header.i=@a.example", &h), 0);
	assert_string_equal(ar_prop(&h.res[0], "header.d"), "a.example");
	assert_string_equal(ar_prop(&h.res[0], "HEADER.I"), "@a.example");
	assert_null(ar_prop(&h.res[0], "header"));
	ar_free(&h);
}

/* ---- the verdict ---- */

static const struct {
	const char *from;
	const char *headers;      /* above "From:" */
	bool found, pass;
	const char *how;          /* substring of the verdict's words */
} verdicts[] = {
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=kamusm.gov.tr\n",
	  true, true, "dkim=pass header.d=kamusm.gov.tr at mx.example.edu.tr" },
	/* relaxed alignment: the signing domain is a parent of the sender's */
	{ "bilgi@mail.kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=kamusm.gov.tr\n",
	  true, true, "dkim=pass" },
	/* but not a child, and not a registry suffix */
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=mail.kamusm.gov.tr\n",
	  true, false, "no aligned pass for kamusm.gov.tr (dkim=pass)" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=gov.tr\n",
	  true, false, "no aligned pass" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=kamusm-gov.tr\n",
	  true, false, "no aligned pass" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=pass header.i=x@kamusm.gov.tr\n",
	  true, true, "header.i=x@kamusm.gov.tr" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; spf=pass smtp.mailfrom=bounce@kamusm.gov.tr\n",
	  true, true, "spf=pass smtp.mailfrom=bounce@kamusm.gov.tr" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; spf=pass smtp.mailfrom=bulk.example\n",
	  true, false, "spf=pass" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dmarc=pass header.from=kamusm.gov.tr\n",
	  true, true, "dmarc=pass header.from=kamusm.gov.tr" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dmarc=pass header.from=evil.example\n",
	  true, false, "no aligned pass" },
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.example.edu.tr; dkim=neutral; spf=softfail smtp.mailfrom=kamusm.gov.tr\n",
	  true, false, "dkim=neutral, spf=softfail" },
	{ "ebys.officer@example.edu.tr", "Authentication-Results: mx.example.edu.tr; auth=pass smtp.auth=ebys.officer\n",
	  true, true, "auth=pass smtp.auth=ebys.officer" },
	{ "ebys.officer@example.edu.tr", "Authentication-Results: mx.example.edu.tr; auth=pass smtp.auth=ebys.officer@example.edu.tr\n",
	  true, true, "auth=pass" },
	{ "ebys.officer@example.edu.tr", "Authentication-Results: mx.example.edu.tr; auth=pass smtp.auth=someone.else\n",
	  true, false, "no aligned pass" },
	/* foreign authserv-ids are not read at all */
	{ "bilgi@kamusm.gov.tr", "Authentication-Results: mx.attacker.example; dkim=pass header.d=kamusm.gov.tr\n",
	  false, false, "no Authentication-Results from mx.example.edu.tr" },
	{ "bilgi@kamusm.gov.tr", "", false, false, "no Authentication-Results" },
	/* ours says fail; a forged pass below our Received line is ignored */
	{ "bilgi@kamusm.gov.tr",
	  "Authentication-Results: mx.example.edu.tr; dkim=fail header.d=kamusm.gov.tr\n"
	  "Received: from evil by mx.example.edu.tr; Tue, 10 Mar 2026 10:00:00 +0300\n"
	  "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=kamusm.gov.tr\n",
	  true, false, "dkim=fail" },
	/* two of ours (one per milter) before the Received line both count */
	{ "bilgi@kamusm.gov.tr",
	  "Authentication-Results: mx.example.edu.tr; dkim=fail header.d=kamusm.gov.tr\n"
	  "Authentication-Results: mx.example.edu.tr; spf=pass smtp.mailfrom=kamusm.gov.tr\n"
	  "Received: from mail.kamusm.gov.tr by mx.example.edu.tr; Tue, 10 Mar 2026 10:00:00 +0300\n",
	  true, true, "spf=pass" },
	/* an LMTP hop's Received above ours does not hide it */
	{ "bilgi@kamusm.gov.tr",
	  "Received: from mx.example.edu.tr by imap.example.edu.tr with LMTP; Tue, 10 Mar 2026 10:00:01 +0300\n"
	  "Authentication-Results: mx.example.edu.tr; dkim=pass header.d=kamusm.gov.tr\n"
	  "Received: from mail.kamusm.gov.tr by mx.example.edu.tr; Tue, 10 Mar 2026 10:00:00 +0300\n",
	  true, true, "dkim=pass" },
};

static struct message *parse(const char *headers, const char *from)
{
	char *raw = xasprintf("%sFrom: %s\nTo: x@example.edu.tr\nSubject: t\nX-Synthetic: yes\n\nbody\n",
			      headers, from);
	struct message *m = NULL;
	assert_int_equal(message_parse(raw, strlen(raw), NULL, &m, NULL), 0);
	free(raw);
	return m;
}

static void test_verdicts(void **state)
{
	(void)state;
	conf_init(true);
	for (size_t i = 0; i < ARRAY_LEN(verdicts); i++) {
		struct message *m = parse(verdicts[i].headers, verdicts[i].from);
		struct auth_verdict v;
		auth_check(&C, m, &v);
		if (v.found != verdicts[i].found || v.pass != verdicts[i].pass ||
		    strstr(v.how, verdicts[i].how) == NULL)
			fail_msg("case %zu: found %d pass %d how '%s'", i, v.found, v.pass, v.how);
		auth_verdict_free(&v);
		message_free(m);
	}
	config_free(&C);
}

static void test_alignment(void **state)
{
	(void)state;
	assert_true(domain_aligned("kamusm.gov.tr", "kamusm.gov.tr"));
	assert_true(domain_aligned("KAMUSM.gov.tr", "mail.kamusm.gov.tr"));
	assert_false(domain_aligned("mail.kamusm.gov.tr", "kamusm.gov.tr"));
	assert_false(domain_aligned("gov.tr", "kamusm.gov.tr"));
	assert_false(domain_aligned("edu.tr", "example.edu.tr"));
	assert_false(domain_aligned("tr", "kamusm.gov.tr"));
	assert_false(domain_aligned("usm.gov.tr", "kamusm.gov.tr"));
	assert_true(domain_aligned("example.com", "a.example.com"));
	assert_false(domain_aligned(NULL, "x.example"));
	assert_true(domain_within("kamusm.gov.tr", "a.b.kamusm.gov.tr"));
	assert_false(domain_within("kamusm.gov.tr", "xkamusm.gov.tr"));
}

/* ---- links ---- */

static const struct {
	const char *url;
	const char *refused;      /* NULL: accepted; else a word of the reason */
} links[] = {
	{ "https://basvuru.kamusm.gov.tr/bs/sifreunutma.go", NULL },
	{ "https://onlineislemler.kamusm.gov.tr:443/landing", NULL },
	{ "https://portal.kamusm.gov.tr/bp/meb.go?x=1#frag", NULL },
	{ "HTTPS://BASVURU.KAMUSM.GOV.TR/X", NULL },
	/* the apex of "*.kamusm.gov.tr" is KAMUSM's own: accepted */
	{ "https://kamusm.gov.tr/", NULL },
	{ "https://kamusm.gov.tr", NULL },
	{ "http://basvuru.kamusm.gov.tr/form", "not an https link" },
	{ "ftp://basvuru.kamusm.gov.tr/", "not an https link" },
	{ "javascript:alert(1)//kamusm.gov.tr", "not an https link" },
	{ "https://kamusm.gov.tr.example.com/form", "'kamusm.gov.tr.example.com' is not allow-listed" },
	{ "https://basvuru.kamusm.gov.tr.evil.example/x", "not allow-listed" },
	{ "https://kamusm-gov.tr/form", "'kamusm-gov.tr' is not allow-listed" },
	{ "https://xkamusm.gov.tr/form", "not allow-listed" },
	{ "https://kamusm.gov.tr@evil.example.com/", "user info" },
	{ "https://user:pw@basvuru.kamusm.gov.tr/", "user info" },
	{ "https://evil.example.com#@kamusm.gov.tr", "not allow-listed" },
	{ "https://evil.example.com?.kamusm.gov.tr", "not allow-listed" },
	{ "https://xn--kamusm-9ua.gov.tr/", "punycode" },
	{ "https://xn--80ak6aa92e.kamusm.gov.tr/", "punycode" },
	{ "https://basvuru.kamusm.gov.tr\\@evil.example.com/", "backslash" },
	{ "https://basvuru.kamusm.gov.tr\\evil", "backslash" },
	{ "https://192.0.2.10/kamusm", "IP address" },
	{ "https://[2001:db8::1]/kamusm", "IP address" },
	{ "https://0x7f.1/", "IP address" },
	{ "https://3232235777/", "not a full domain name" },
	{ "https://basvuru.kamusm.gov.tr:8443/", "port" },
	{ "https://basvuru.kamusm.gov.tr./", "not a valid name" },
	{ "https://basvuru..kamusm.gov.tr/", "not a valid name" },
	{ "https://-x.kamusm.gov.tr/", "not a valid name" },
	{ "https://basvuru.kamusm.gov.tr%2eevil.example/", "has a '%'" },
	{ "https://kamusm\xef\xbc\x8egov.tr/", "non-ASCII" },
	{ "https://k\xd0\xb0musm.gov.tr/", "non-ASCII" },
	{ "https:///path", "no host" },
	{ "https://basvuru.kamusm.gov.tr/a b", "space" },
	{ "https://basvuru.kamusm.gov.tr/\"onmouseover", "quote" },
};

static void test_links(void **state)
{
	(void)state;
	conf_init(true);
	for (size_t i = 0; i < ARRAY_LEN(links); i++) {
		char *reason = NULL;
		int rc = link_check(&C, links[i].url, &reason);
		if (links[i].refused == NULL && rc != 0)
			fail_msg("%s refused: %s", links[i].url, reason);
		if (links[i].refused && (rc == 0 || strstr(reason, links[i].refused) == NULL))
			fail_msg("%s: rc %d reason '%s', want '%s'", links[i].url, rc,
				 reason ? reason : "", links[i].refused);
		free(reason);
	}
	config_free(&C);
}

static void test_link_reason_keeps_secrets(void **state)
{
	(void)state;
	conf_init(true);
	char *reason = NULL;
	assert_int_equal(link_check(&C, "https://evil.example.com/form?token=SECRET-9", &reason), -1);
	assert_null(strstr(reason, "SECRET"));
	assert_null(strstr(reason, "form"));
	free(reason);
	reason = NULL;
	/* a literal host is that host only */
	strv_free(C.trust.link_hosts);
	C.trust.link_hosts = strv_add(NULL, "basvuru.kamusm.gov.tr");
	assert_int_equal(link_check(&C, "https://basvuru.kamusm.gov.tr/x", NULL), 0);
	assert_int_equal(link_check(&C, "https://onlineislemler.kamusm.gov.tr/x", NULL), -1);
	assert_int_equal(link_check(&C, "https://a.basvuru.kamusm.gov.tr/x", NULL), -1);
	char *long_url = xmalloc(3000);
	memset(long_url, 'a', 2999);
	memcpy(long_url, "https://basvuru.kamusm.gov.tr/", 30);
	long_url[2999] = '\0';
	assert_int_equal(link_check(&C, long_url, &reason), -1);
	assert_non_null(strstr(reason, "longer"));
	free(reason);
	free(long_url);
	config_free(&C);
}

/* ---- decisions through classify ---- */

static struct event run(const char *raw)
{
	struct classify_ctx ctx = { .conf = &C, .rules = NULL };
	struct event ev;
	classify_raw(&ctx, raw, strlen(raw), &ev);
	return ev;
}

static void test_require_auth_off(void **state)
{
	(void)state;
	static const char *const cmd_officer =
		"From: ebys.officer@example.edu.tr\nTo: eimza@example.edu.tr\nSubject: Re: [EIMZA-2026-0001]\n"
		"X-Synthetic: yes\n\nONAY\n";
	static const char *const cmd_other =
		"From: someone@example.edu.tr\nTo: eimza@example.edu.tr\nSubject: Re: [EIMZA-2026-0001]\n"
		"X-Synthetic: yes\n\nONAY\n";
	conf_init(true);
	struct event ev = run(cmd_officer);
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_false(ev.trusted);
	event_free(&ev);
	config_free(&C);

	conf_init(false);
	ev = run(cmd_officer);
	assert_true(ev.trusted);
	assert_non_null(strstr(ev.trust_reason, "require_auth = no"));
	event_free(&ev);
	/* the officer list still applies */
	ev = run(cmd_other);
	assert_int_equal(ev.kind, MK_COMMAND);
	assert_false(ev.trusted);
	assert_non_null(strstr(ev.trust_reason, "not an officer"));
	event_free(&ev);
	config_free(&C);
}

static void test_kamusm_allow_list(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *rpath = tu_write(dir, "r.conf", "[rule k]\nkind = kamusm.info\ntext = bilgilendirme\n");
	struct rules *r = NULL;
	struct conf_errors errs = { 0 };
	assert_int_equal(rules_load(rpath, &r, &errs), 0);
	conf_init(false);
	struct classify_ctx ctx = { .conf = &C, .rules = r };
	static const struct {
		const char *from;
		bool trusted;
	} t[] = {
		{ "bilgilendirme@kamusm.gov.tr", true },
		{ "bilgi@kamusm.gov.tr", true },
		{ "other@kamusm.gov.tr", false },
		{ "bilgilendirme@kamusm.gov.tr.evil.example", false },
		{ "bilgilendirme@kamusm-gov.tr", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		char *raw = xasprintf("From: %s\nTo: a@example.edu.tr\nSubject: Bilgilendirme\n"
				      "X-Synthetic: yes\n\nsentetik\n", t[i].from);
		struct event ev;
		classify_raw(&ctx, raw, strlen(raw), &ev);
		assert_int_equal(ev.kind, MK_KAMUSM_INFO);
		if (ev.trusted != t[i].trusted)
			fail_msg("%s: trusted %d (%s)", t[i].from, ev.trusted, ev.trust_reason);
		event_free(&ev);
		free(raw);
	}
	config_free(&C);
	rules_free(r);
	free(rpath);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	log_init("test_trust", false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ar_parse),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_link_reason_keeps_secrets),
		cmocka_unit_test(test_require_auth_off),
		cmocka_unit_test(test_kamusm_allow_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
