/* Unit tests of message.h: decoding, body choice, parts, forwards (rfc822
 * and every inline style, Turkish and English), limits and hostile input.
 * Every message here is synthetic (X-Synthetic: yes); names, addresses
 * and wording are invented. */
#include "testutil.h"

#include "message.h"
#include "message_p.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYN "X-Synthetic: yes\n"
/* Not a speed test: a bound far above the normal time (milliseconds, even
 * under sanitizers) and far below what a quadratic loop would take. */
#define HANG_MS 20000
#define MIME "MIME-Version: 1.0\n"

static struct message *parse_lim(const char *raw, size_t len, const struct mime_limits *lim)
{
	struct message *m = NULL;
	char *err = NULL;
	assert_int_equal(message_parse(raw, len, lim, &m, &err), 0);
	assert_null(err);
	assert_non_null(m);
	assert_non_null(m->body);
	assert_non_null(m->subject);
	return m;
}

static struct message *parse(const char *raw)
{
	return parse_lim(raw, strlen(raw), NULL);
}

static bool has_problem(const struct message *m, const char *needle)
{
	for (char **p = m->problems; p && *p; p++)
		if (strstr(*p, needle))
			return true;
	return false;
}

/* ---- bodies and headers ---- */

static void test_qp_and_base64(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: Ali <ali@example.org>\nSubject: qp\n" SYN MIME
		"Content-Type: text/plain; charset=ISO-8859-9\n"
		"Content-Transfer-Encoding: quoted-printable\n\n"
		"Ba=FEvuru =DDptal edildi, =E7ok =FCz=FCld=FCk.=\n"
		" Sat=FDr devam=3D.\n");
	assert_string_equal(m->body, "Başvuru İptal edildi, çok üzüldük. Satır devam=.\n");
	assert_int_equal(m->nparts, 1);
	assert_string_equal(m->parts[0].content_type, "text/plain");
	assert_string_equal(m->parts[0].charset, "iso-8859-9");
	assert_int_equal(m->parts[0].role, PART_BODY);
	assert_false(m->body_from_html);
	assert_null(m->problems);
	assert_false(m->unreadable);
	message_free(m);

	m = parse("From: ali@example.org\nSubject: b64\n" SYN MIME
		  "Content-Type: text/plain; charset=\"utf-8\"\n"
		  "Content-Transfer-Encoding: BASE64\n\n"
		  "xZ5pZnJlbml6IGfDtm5kZXJpbGRpLgrEsGtpbmNp\nIHNhdMSxci4K\n");
	assert_string_equal(m->body, "Şifreniz gönderildi.\nİkinci satır.\n");
	assert_int_equal(m->body_len, strlen(m->body));
	message_free(m);
}

static const struct {
	const char *raw_subject;
	const char *want;
} subject_cases[] = {
	{ "=?utf-8?B?QmHFn3Z1cnUgT25hecSx?=", "Başvuru Onayı" },
	{ "=?UTF-8?Q?Ba=C5=9Fvuru_Onay=C4=B1?=", "Başvuru Onayı" },
	{ "=?iso-8859-9?Q?Ba=FEvuru_=DDptal?=", "Başvuru İptal" },
	{ "=?ISO-8859-9?B?3mlmcmUg529rIGdpemxp?=", "Şifre çok gizli" },
	{ "=?windows-1254?Q?=DEifre_=E7ok_gizli?=", "Şifre çok gizli" },
	{ "=?windows-1254?B?3mlmcmUg529rIGdpemxp?=", "Şifre çok gizli" },
	/* a character split across two words, whitespace between dropped */
	{ "=?utf-8?B?RXJpxQ==?=\n =?utf-8?B?n2ltIFBhcm9sYXPEsSAoc2VudGV0aWsp?=",
	  "Erişim Parolası (sentetik)" },
	{ "Re: =?utf-8?q?=C3=96rnek?= konu", "Re: Örnek konu" },
	{ "=?utf-8*tr?Q?=C3=A7?=", "ç" },
	/* malformed words are kept as written */
	{ "=?utf-8?X?abc?= =?broken", "=?utf-8?X?abc?= =?broken" },
	/* raw 8-bit headers: UTF-8 kept, else windows-1254 */
	{ "Ba\xc5\x9fvuru", "Başvuru" },
	{ "Ba\xfevuru", "Başvuru" },
	{ "=?x-unknown?Q?=FE?=", "ş" },
};

static void test_rfc2047_subjects(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(subject_cases); i++) {
		char *raw = xasprintf("From: a@example.org\nSubject: %s\n" SYN "\nx\n",
				      subject_cases[i].raw_subject);
		struct message *m = parse(raw);
		if (strcmp(m->subject, subject_cases[i].want) != 0)
			fail_msg("case %zu: got [%s]", i, m->subject);
		assert_string_equal(message_header(m, "subject"), subject_cases[i].want);
		message_free(m);
		free(raw);
	}
	/* an unknown charset is recorded as a problem */
	struct message *m = parse("From: a@example.org\nSubject: =?x-unknown?Q?=FE?=\n" SYN
				  "\nx\n");
	assert_true(has_problem(m, "header Subject: unknown charset"));
	message_free(m);
}

static void test_envelope(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: =?utf-8?Q?=C3=96rnek_G=C3=B6nderici?= <Gonderici@EXAMPLE.Org>\n"
		"To: \"Yılmaz, Ayşe\" <ayse@ornek.edu.tr>, bob@example.org\n"
		"To: third@example.org\n"
		"Cc: Ekin =?iso-8859-9?Q?B=F6ke?= <ekin@example.org>\n"
		"Reply-To: replies@example.org\nSender: list@example.org\n"
		"Subject: =?utf-8?B?QmHFn3Z1cnUgT25hecSx?=\n"
		"Message-ID: <abc.123@example.org>\nIn-Reply-To: <prev@example.org>\n"
		"References: <one@example.org>\n <two@example.org>\n"
		"Date: Wed, 25 Nov 2026 13:00:00 +0300 (+03)\n" SYN
		"\nbody\n");
	assert_string_equal(m->from.name, "Örnek Gönderici");
	assert_string_equal(m->from.email, "Gonderici@example.org");
	assert_int_equal(m->nto, 3);
	assert_string_equal(m->to[0].name, "Yılmaz, Ayşe");
	assert_string_equal(m->to[0].email, "ayse@ornek.edu.tr");
	assert_null(m->to[1].name);
	assert_string_equal(m->to[2].email, "third@example.org");
	assert_int_equal(m->ncc, 1);
	assert_string_equal(m->cc[0].name, "Ekin Böke");
	assert_string_equal(m->reply_to.email, "replies@example.org");
	assert_string_equal(m->sender.email, "list@example.org");
	assert_string_equal(m->message_id, "abc.123@example.org");
	assert_string_equal(m->in_reply_to, "prev@example.org");
	assert_int_equal(strv_len(m->references), 2);
	assert_string_equal(m->references[1], "two@example.org");
	assert_string_equal(m->date_raw, "Wed, 25 Nov 2026 13:00:00 +0300 (+03)");
	assert_int_equal(m->date, 1795600800);
	const char *v[4];
	assert_int_equal(message_headers(m, "TO", v, 4), 2);
	assert_string_equal(v[1], "third@example.org");
	assert_null(message_header(m, "X-None"));
	assert_string_equal(message_header(m, "x-synthetic"), "yes");
	message_free(m);
}

static void test_rfc2231_filenames(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: a@example.org\nSubject: files\n" SYN MIME
		"Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
		"--b1\nContent-Type: text/plain; charset=utf-8\n\nsee files\n"
		"--b1\nContent-Type: application/pdf\n"
		"Content-Disposition: attachment; filename*=utf-8''%C4%B0mza%20listesi.pdf\n"
		"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n"
		"--b1\nContent-Type: application/octet-stream\n"
		"Content-Disposition: attachment;\n filename*0*=iso-8859-9''%DEifre;\n"
		" filename*1=\"ler listesi\";\n filename*2*=%FD.bin\n\nxx\n"
		"--b1\nContent-Type: application/pdf; name=\"=?utf-8?B?xLBtemEgbGlzdGVzaS5jc3Y=?=\"\n"
		"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n"
		"--b1\nContent-Type: image/png\nContent-Disposition: inline; filename=\"logo.png\"\n"
		"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
		"--b1--\n");
	assert_int_equal(m->nparts, 5);
	assert_string_equal(m->parts[1].filename, "İmza listesi.pdf");
	assert_int_equal(m->parts[1].role, PART_ATTACHMENT);
	assert_string_equal(m->parts[2].filename, "Şifreler listesiı.bin");
	assert_string_equal(m->parts[3].filename, "İmza listesi.csv");
	assert_int_equal(m->parts[3].role, PART_ATTACHMENT);
	assert_string_equal(m->parts[4].filename, "logo.png");
	assert_int_equal(m->parts[4].role, PART_INLINE);
	assert_string_equal(m->body, "see files");
	message_free(m);
}

static void test_alternative_and_html(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: a@example.org\nSubject: alt\n" SYN MIME
		"Content-Type: multipart/alternative; boundary=alt\n\n"
		"--alt\nContent-Type: text/html; charset=utf-8\n\n<p>HTML s&uuml;r&uuml;m&uuml;</p>\n"
		"--alt\nContent-Type: text/plain; charset=utf-8\n\nDüz metin sürümü\n"
		"--alt--\n");
	assert_string_equal(m->body, "Düz metin sürümü");
	assert_false(m->body_from_html);
	assert_non_null(m->html);
	assert_non_null(strstr(m->html, "<p>HTML s&uuml;r"));
	assert_int_equal(m->nparts, 2);
	assert_int_equal(m->parts[0].role, PART_BODY);
	message_free(m);

	/* an empty plain alternative loses to the HTML one */
	m = parse("From: a@example.org\nSubject: alt\n" SYN MIME
		  "Content-Type: multipart/alternative; boundary=alt\n\n"
		  "--alt\nContent-Type: text/plain\n\n \n"
		  "--alt\nContent-Type: text/html\n\n<div>Yaln&#305;z HTML</div>\n--alt--\n");
	assert_string_equal(m->body, "Yalnız HTML\n");
	assert_true(m->body_from_html);
	message_free(m);

	/* HTML only, inside multipart/related with an inline image */
	m = parse("From: a@example.org\nSubject: html\n" SYN MIME
		  "Content-Type: multipart/related; boundary=rel\n\n"
		  "--rel\nContent-Type: text/html; charset=windows-1254\n"
		  "Content-Transfer-Encoding: quoted-printable\n\n"
		  "<html><head><style>p{}</style></head><body><p>Say=FDn =DDlgili,</p>"
		  "<a href=3D\"https://basvuru.example.org/f?id=3D1\">formu doldurun</a>"
		  "</body></html>\n"
		  "--rel\nContent-Type: image/gif\nContent-ID: <x>\n"
		  "Content-Transfer-Encoding: base64\n\nR0lGODlh\n--rel--\n");
	assert_true(m->body_from_html);
	assert_string_equal(m->body,
			    "Sayın İlgili,\n\nformu doldurun <https://basvuru.example.org/f?id=1>\n");
	assert_int_equal(m->nparts, 2);
	assert_null(m->parts[1].text);
	assert_int_equal(m->parts[1].role, PART_INLINE);
	message_free(m);
}

static void test_csv_and_pdf(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: birim@ornek.edu.tr\nSubject: liste\n" SYN MIME
		"Content-Type: multipart/mixed; boundary=\"=_m\"\n\n"
		"preamble\n"
		"--=_m\nContent-Type: text/plain; charset=utf-8\n\nListe ektedir.\n"
		"--=_m\nContent-Type: text/csv; charset=windows-1254; name=basvuru.csv\n"
		"Content-Disposition: attachment; filename=basvuru.csv\n"
		"Content-Transfer-Encoding: base64\n\n"
		"QWQ7U295YWQ7RS1wb3N0YQpBef5lO1n9bG1hejtheXNlQG9ybmVrLmVkdS50cgrdc21haWw7\n"
		"x2HwbGFyO2lzbWFpbEBvcm5lay5lZHUudHIK\n"
		"--=_m\nContent-Type: application/pdf; name=\"ust yazi.pdf\"\n"
		"Content-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n"
		"JVBERi0xLjQgc3ludGhldGljJVBERi0xLjQgc3ludGhldGljJVBERi0xLjQgc3ludGhldGlj\n"
		"--=_m\nContent-Type: application/octet-stream\n\n\x01\x02\x03\n"
		"--=_m--\nepilogue\n");
	assert_int_equal(m->nparts, 4);
	assert_string_equal(m->body, "Liste ektedir.");
	struct part *csv = &m->parts[1];
	assert_string_equal(csv->content_type, "text/csv");
	assert_int_equal(csv->role, PART_ATTACHMENT);
	assert_string_equal(csv->filename, "basvuru.csv");
	assert_string_equal(csv->text, "Ad;Soyad;E-posta\nAyşe;Yılmaz;ayse@ornek.edu.tr\n"
			    "İsmail;Çağlar;ismail@ornek.edu.tr\n");
	assert_int_equal(csv->text_len, strlen(csv->text));
	assert_false(csv->charset_fallback);
	struct part *pdf = &m->parts[2];
	assert_string_equal(pdf->content_type, "application/pdf");
	assert_string_equal(pdf->filename, "ust yazi.pdf");
	assert_null(pdf->text);
	assert_int_equal(pdf->size, 72);           /* encoded, never decoded */
	assert_null(m->parts[3].text);
	assert_null(m->forwarded);
	message_free(m);
}

static void test_charset_fallback_problem(void **state)
{
	(void)state;
	struct message *m = parse("From: a@example.org\nSubject: cs\n" SYN MIME
				  "Content-Type: text/plain\n"
				  "Content-Transfer-Encoding: 8bit\n\n\xdd" "ptal\n");
	assert_string_equal(m->body, "İptal\n");
	assert_true(m->parts[0].charset_fallback);
	assert_true(has_problem(m, "part 1 (text/plain): charset missing"));
	message_free(m);

	m = parse("From: a@example.org\nSubject: cs\n" SYN MIME
		  "Content-Type: text/plain; charset=x-mystery\n\n\xfe\n");
	assert_string_equal(m->body, "ş\n");
	assert_true(has_problem(m, "charset x-mystery"));
	message_free(m);
}

static void test_dsn_parts(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: MAILER-DAEMON@example.org\nSubject: Undelivered\n" SYN MIME
		"Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
		"--r\nContent-Type: text/plain\n\nDelivery failed.\n"
		"--r\nContent-Type: message/delivery-status\n\n"
		"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; x@example.org\n"
		"Action: failed\nStatus: 5.1.1\n"
		"--r\nContent-Type: message/rfc822\n\n"
		"From: eimzad@ornek.edu.tr\nSubject: notice\nMessage-ID: <n1@ornek.edu.tr>\n\nhi\n"
		"--r--\n");
	assert_int_equal(m->nparts, 3);
	assert_string_equal(m->parts[1].content_type, "message/delivery-status");
	assert_non_null(strstr(m->parts[1].text, "Status: 5.1.1"));
	assert_string_equal(m->parts[2].content_type, "message/rfc822");
	assert_non_null(strstr(m->parts[2].text, "Message-ID: <n1@ornek.edu.tr>"));
	/* a bounce returns the message; it does not forward it */
	assert_null(m->forwarded);
	assert_int_equal(m->fwd_style, FWD_NONE);
	message_free(m);
}

/* ---- forwards ---- */

static void test_rfc822_forward(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: Memur <memur@ornek.edu.tr>\nSubject: Fwd: Ic ileti\n" SYN MIME
		"Content-Type: multipart/mixed; boundary=f\n\n"
		"--f\nContent-Type: text/plain\n\nEkteki iletiyi iletiyorum.\n"
		"--f\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
		"From: =?utf-8?Q?=C3=96rnek?= <bildirim@example.org>\n"
		"Subject: =?utf-8?B?QmHFn3Z1cnUgT25hecSx?=\n"
		"Date: Thu, 28 Oct 2021 12:46:00 +0000\n" SYN MIME
		"Content-Type: multipart/alternative; boundary=g\n\n"
		"--g\nContent-Type: text/plain; charset=utf-8\n\nİç gövde.\n"
		"--g\nContent-Type: text/html\n\n<p>x</p>\n--g--\n"
		"--f\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
		"RnJvbTogT3JuZWsgR29uZGVyaWNpIDxnb25kZXJpY2lAZXhhbXBsZS5vcmc+ClN1YmplY3Q6IEljIGls\n"
		"ZXRpClgtU3ludGhldGljOiB5ZXMKCkljIGdvdmRlLgo=\n"
		"--f--\n");
	assert_int_equal(m->fwd_style, FWD_RFC822);
	assert_null(m->fwd_client);
	struct message *f = m->forwarded;
	assert_non_null(f);
	assert_string_equal(f->subject, "Başvuru Onayı");
	assert_string_equal(f->from.email, "bildirim@example.org");
	assert_string_equal(f->from.name, "Örnek");
	assert_int_equal(f->date, 1635425160);
	assert_string_equal(f->body, "İç gövde.");
	assert_non_null(f->html);
	assert_int_equal(f->nparts, 2);
	/* the outer message keeps its own body; the embedded ones are parts */
	assert_string_equal(m->body, "Ekteki iletiyi iletiyorum.");
	assert_int_equal(m->nparts, 3);
	assert_string_equal(m->parts[2].content_type, "message/rfc822");
	assert_non_null(strstr(m->parts[2].text, "Ic govde."));
	message_free(m);
}

struct fwd_case {
	const char *name;
	const char *subject;
	const char *body;
	const char *client;
	const char *from_email;
	const char *from_name;
	const char *subject_want;
	time_t date;
	const char *to_email;
	size_t ncc;
	const char *body_want;
};

#define ORIG_BODY "Sentetik özgün metin.\nİkinci satır."

static const struct fwd_case fwd_cases[] = {
	{ "thunderbird-tr", "Fwd: Erişim bilgisi",
	  "Bilginize.\n\n-------- İletilen İleti --------\n"
	  "Konu: \tErişim bilgisi (sentetik)\nTarih: \tWed, 3 Nov 2021 15:51:30 +0100\n"
	  "Kimden: \tÖrnek Kurum <bildirim@example.org>\nKime: \tbasvuran@ornek.edu.tr\n"
	  "CC: \tBiri <biri@example.org>, Öteki <oteki@example.org>\n\n\n\n" ORIG_BODY "\n",
	  "thunderbird-tr", "bildirim@example.org", "Örnek Kurum", "Erişim bilgisi (sentetik)",
	  1635951090, "basvuran@ornek.edu.tr", 2, ORIG_BODY "\n" },
	{ "thunderbird-en", "Fwd: Access",
	  "-------- Forwarded Message --------\nSubject: \tAccess (synthetic)\n"
	  "Date: \tWed, 3 Nov 2021 15:51:30 +0100\nFrom: \tSample Org <notify@example.org>\n"
	  "To: \tbasvuran@ornek.edu.tr\n\n" ORIG_BODY "\n",
	  "thunderbird-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635951090, "basvuran@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "gmail-en", "Fwd: Access",
	  "FYI\n\n---------- Forwarded message ---------\n"
	  "From: Sample Org <notify@example.org>\nDate: Wed, Oct 27, 2021 at 9:31 AM\n"
	  "Subject: Access (synthetic)\nTo: <basvuran@ornek.edu.tr>\n\n" ORIG_BODY "\n",
	  "gmail-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635316260, "basvuran@ornek.edu.tr", 0, ORIG_BODY "\n" },
	/* Gmail's text/plain shows the sender's name in bold: *Name* */
	{ "gmail-en-bold", "Fwd: Access",
	  "---------- Forwarded message ---------\n"
	  "From: *Sample Org* <notify@example.org>\nDate: Wed, Oct 27, 2021 at 9:31 AM\n"
	  "Subject: Access (synthetic)\nTo: Ali <basvuran@ornek.edu.tr>\n\n" ORIG_BODY "\n",
	  "gmail-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635316260, "basvuran@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "gmail-tr", "Fwd: Erişim",
	  "---------- Forwarded message ---------\n"
	  "Gönderen: Örnek Kurum <bildirim@example.org>\nDate: 27 Eki 2021 Çar, 09:31\n"
	  "Subject: Erişim (sentetik)\nTo: <basvuran@ornek.edu.tr>\n"
	  "Cc: Biri <biri@example.org>, Öteki <oteki@example.org>\n\n" ORIG_BODY "\n",
	  "gmail-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635316260, "basvuran@ornek.edu.tr", 2, ORIG_BODY "\n" },
	{ "gmail-tr-rumoured", "Fwd: Erişim",
	  "---------- Yönlendirilen ileti ---------\n"
	  "Gönderen: Örnek Kurum <bildirim@example.org>\nTarih: 27 Eki 2021 Çar, 09:31\n"
	  "Konu: Erişim (sentetik)\nKime: <basvuran@ornek.edu.tr>\n\n" ORIG_BODY "\n",
	  "gmail-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635316260, "basvuran@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "outlook-en", "FW: Access",
	  "See below.\n\n-----Original Message-----\n"
	  "From: Sample Org [mailto:notify@example.org]\n"
	  "Sent: Thursday, October 28, 2021 12:46 PM\nTo: Ali Veli <ali@ornek.edu.tr>\n"
	  "Subject: Access (synthetic)\n\n" ORIG_BODY "\n",
	  "outlook-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "outlook-tr", "İLT: Erişim",
	  "-----Original Message-----\nKimden: Örnek Kurum [mailto:bildirim@example.org]\n"
	  "Gönderildi: 28 Ekim 2021 Perşembe 12:46\nKime: Ali Veli <ali@ornek.edu.tr>\n"
	  "Bilgi: biri@example.org\nKonu: Erişim (sentetik)\n\n" ORIG_BODY "\n",
	  "outlook-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635414360, "ali@ornek.edu.tr", 1, ORIG_BODY "\n" },
	{ "outlook-2003-tr-date", "FW: Erişim",
	  "-----Original Message-----\nFrom: Örnek Kurum [mailto:bildirim@example.org]\n"
	  "Sent: 25 Eylül 2003 Perşembe 12:18\nTo: ali@ornek.edu.tr\n"
	  "Subject: Erişim (sentetik)\n\n" ORIG_BODY "\n",
	  "outlook-en", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1064481480, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "new-outlook-tr", "İLT: Erişim",
	  "Kimden: Örnek Kurum <bildirim@example.org>\nTarih: Perşembe, 28 Ekim 2021 12:46\n"
	  "Kime: ali@ornek.edu.tr <ali@ornek.edu.tr>\n"
	  "Bilgi: Biri <biri@example.org>, Öteki <oteki@example.org>\n"
	  "Konu: Erişim (sentetik)\n" ORIG_BODY "\n",
	  "outlook-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635414360, "ali@ornek.edu.tr", 2, ORIG_BODY "\n" },
	{ "outlook-web", "FW: Access",
	  "Forwarding.\n\n________________________________\n"
	  "From: Sample Org <notify@example.org>\nSent: Thursday, October 28, 2021 12:46 PM\n"
	  "To: ali@ornek.edu.tr\nSubject: Access (synthetic)\n\n" ORIG_BODY "\n",
	  "outlook-web", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "yahoo-tr", "Fwd: Erişim",
	  "   ----- İletilmiş Mesaj ----- Kimden: Örnek Kurum <bildirim@example.org>"
	  "Kime: \"ali@ornek.edu.tr\" <ali@ornek.edu.tr>Cc: Biri <biri@example.org>; "
	  "Öteki <oteki@example.org>Gönderilen: 2 Kasım 2021 Salı 09:26:50 GMT+1"
	  "Konu: Erişim (sentetik)\n" ORIG_BODY "\n",
	  "yahoo-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635841610, "ali@ornek.edu.tr", 2, ORIG_BODY "\n" },
	{ "yahoo-en", "Fwd: Access",
	  "   ----- Forwarded Message ----- From: Sample Org <notify@example.org>"
	  "To: \"ali@ornek.edu.tr\" <ali@ornek.edu.tr>"
	  "Sent: Tuesday, November 2, 2021, 09:26:50 AM GMT+1Subject: Access (synthetic)\n"
	  ORIG_BODY "\n",
	  "yahoo-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635841610, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "apple-tr", "Fwd: Erişim",
	  "> İleti başlangıcı:\n>\n> Kimden: Örnek Kurum <bildirim@example.org>\n"
	  "> Konu: Erişim (sentetik)\n> Tarih: 26 Ekim 2021 14:25:08 GMT+3\n"
	  "> Kime: ali@ornek.edu.tr\n> Bilgi: Biri <biri@example.org>\n>\n"
	  "> Sentetik özgün metin.\n> İkinci satır.\n>\n",
	  "apple-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635247508, "ali@ornek.edu.tr", 1, ORIG_BODY "\n" },
	{ "apple-en", "Fwd: Access",
	  "Begin forwarded message:\n\n> From: Sample Org <notify@example.org>\n"
	  "> Subject: Access (synthetic)\n> Date: October 26, 2021 at 14:25:08 GMT+3\n"
	  "> To: ali@ornek.edu.tr\n> \n> Sentetik özgün metin.\n> İkinci satır.\n\n"
	  "-- \nSignature below the quote\n",
	  "apple-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635247508, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "roundcube-en", "Fwd: Access",
	  "-------- Original Message --------\nSubject: Access (synthetic)\n"
	  "Date: 2021-10-28 12:46\nFrom: Sample Org <notify@example.org>\n"
	  "To: ali@ornek.edu.tr\n\n" ORIG_BODY "\n",
	  "roundcube-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "roundcube-tr", "Fwd: Erişim",
	  "-------- Orijinal Mesaj --------\nKonu: Erişim (sentetik)\nTarih: 28.10.2021 12:46\n"
	  "Kimden: Örnek Kurum <bildirim@example.org>\nKime: ali@ornek.edu.tr\n\n"
	  ORIG_BODY "\n",
	  "roundcube-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "zimbra-en", "Fwd: Access",
	  "----- Forwarded Message -----\nFrom: \"Sample Org\" <notify@example.org>\n"
	  "To: \"Ali\" <ali@ornek.edu.tr>\nSent: Thursday, October 28, 2021 12:46:00 PM\n"
	  "Subject: Access (synthetic)\n\n" ORIG_BODY "\n",
	  "zimbra-en", "notify@example.org", "Sample Org", "Access (synthetic)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "zimbra-tr", "Fwd: Erişim",
	  "----- Orijinal Mesaj -----\nFrom: \"Örnek Kurum\" <bildirim@example.org>\n"
	  "To: ali@ornek.edu.tr\nSent: Perşembe, 28 Ekim 2021 12:46:00\n"
	  "Subject: Erişim (sentetik)\n\n" ORIG_BODY "\n",
	  "zimbra-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635414360, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
	{ "outlook-2019-tr", "FW: Erişim (sentetik)",
	  "\"Örnek Kurum\" <bildirim@example.org>, 28/10/2021 12:46 tarihinde şunu yazdı:\n\n"
	  "    Sentetik özgün metin.\n    İkinci satır.\n",
	  "outlook-2019-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  1635414360, NULL, 0, ORIG_BODY "\n" },
	{ "attribution-en", "Fwd: Access (synthetic)",
	  "On Thu, Oct 28, 2021 at 12:46 PM Sample Org <notify@example.org> wrote:\n\n"
	  "> Sentetik özgün metin.\n> İkinci satır.\n",
	  "attribution-en", "notify@example.org", NULL, "Access (synthetic)",
	  1635414360, NULL, 0, ORIG_BODY "\n" },
	{ "case-insensitive", "Fwd: Erişim",
	  "-------- İLETİLEN İLETİ --------\nKONU: Erişim (sentetik)\n"
	  "KIMDEN: Örnek Kurum <bildirim@example.org>\nKİME: ali@ornek.edu.tr\n\n"
	  ORIG_BODY "\n",
	  "thunderbird-tr", "bildirim@example.org", "Örnek Kurum", "Erişim (sentetik)",
	  0, "ali@ornek.edu.tr", 0, ORIG_BODY "\n" },
};

static void check_fwd_case(const struct fwd_case *c, struct message *m)
{
	if (m->fwd_style != FWD_INLINE || !m->forwarded)
		fail_msg("%s: no inline forward found", c->name);
	if (!m->fwd_client || strcmp(m->fwd_client, c->client) != 0)
		fail_msg("%s: client %s", c->name, m->fwd_client ? m->fwd_client : "(null)");
	struct message *f = m->forwarded;
	if (!f->from.email || strcmp(f->from.email, c->from_email) != 0)
		fail_msg("%s: from %s", c->name, f->from.email ? f->from.email : "(null)");
	if (c->from_name ? !f->from.name || strcmp(f->from.name, c->from_name) != 0
			 : f->from.name != NULL)
		fail_msg("%s: from name %s", c->name, f->from.name ? f->from.name : "(null)");
	if (strcmp(f->subject, c->subject_want) != 0)
		fail_msg("%s: subject [%s]", c->name, f->subject);
	if (f->date != c->date)
		fail_msg("%s: date %lld, want %lld (%s)", c->name, (long long)f->date,
			 (long long)c->date, f->date_raw ? f->date_raw : "-");
	if (c->to_email ? f->nto < 1 || strcmp(f->to[0].email, c->to_email) != 0 : f->nto != 0)
		fail_msg("%s: to", c->name);
	if (f->ncc != c->ncc)
		fail_msg("%s: %zu cc", c->name, f->ncc);
	if (strcmp(f->body, c->body_want) != 0)
		fail_msg("%s: body [%s]", c->name, f->body);
	assert_int_equal(f->body_len, strlen(f->body));
	assert_string_equal(message_header(f, "From") ? "y" : "n", "y");
	assert_null(f->forwarded);
}

static void test_inline_forwards(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fwd_cases); i++) {
		const struct fwd_case *c = &fwd_cases[i];
		char *raw = xasprintf("From: Memur <memur@ornek.edu.tr>\nSubject: %s\n" SYN MIME
				      "Content-Type: text/plain; charset=utf-8\n"
				      "Content-Transfer-Encoding: 8bit\n\n%s", c->subject, c->body);
		struct message *m = parse(raw);
		check_fwd_case(c, m);
		message_free(m);
		free(raw);
	}
}

/* Mail as IMAP serves it: CRLF line ends everywhere; text keeps "\n". */
static void test_crlf(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fwd_cases); i++) {
		const struct fwd_case *c = &fwd_cases[i];
		char *raw = xasprintf("From: Memur <memur@ornek.edu.tr>\nSubject: %s\n" SYN MIME
				      "Content-Type: multipart/mixed; boundary=c\n\n--c\n"
				      "Content-Type: text/plain; charset=utf-8\n"
				      "Content-Transfer-Encoding: quoted-printable\n\n%s\n--c--\n",
				      c->subject, c->body);
		struct buf b = BUF_INIT;
		for (const char *p = raw; *p; p++) {
			if (*p == '\n')
				buf_addc(&b, '\r');
			buf_addc(&b, *p);
		}
		struct message *m = parse(b.p);
		assert_null(strchr(m->body, '\r'));
		check_fwd_case(c, m);
		message_free(m);
		buf_free(&b);
		free(raw);
	}
}

/* The same forwards in HTML-only mail are found in the converted text. */
static void test_inline_forward_html(void **state)
{
	(void)state;
	struct message *m = parse(
		"From: memur@ornek.edu.tr\nSubject: Fwd: x\n" SYN MIME
		"Content-Type: text/html; charset=utf-8\n\n"
		"<html><body><p>Bilginize.</p><div class=\"moz-forward-container\">"
		"-------- İletilen İleti --------"
		"<table class=\"moz-email-headers-table\"><tbody>"
		"<tr><th>Konu: </th><td>Erişim (sentetik)</td></tr>"
		"<tr><th>Tarih: </th><td>Wed, 3 Nov 2021 15:51:30 +0100</td></tr>"
		"<tr><th>Kimden: </th><td>Örnek Kurum &lt;<a href=\"mailto:bildirim@example.org\">"
		"bildirim@example.org</a>&gt;</td></tr>"
		"<tr><th>Kime: </th><td>ali@ornek.edu.tr</td></tr>"
		"</tbody></table><br><p>Özgün <b>metin</b>.</p></div></body></html>\n");
	assert_true(m->body_from_html);
	assert_int_equal(m->fwd_style, FWD_INLINE);
	assert_string_equal(m->fwd_client, "thunderbird-tr");
	assert_string_equal(m->forwarded->from.email, "bildirim@example.org");
	assert_string_equal(m->forwarded->subject, "Erişim (sentetik)");
	assert_int_equal(m->forwarded->date, 1635951090);
	assert_string_equal(m->forwarded->body, "Özgün metin.\n");
	message_free(m);

	/* Apple Mail's HTML: the block inside <blockquote type="cite"> */
	m = parse("From: memur@ornek.edu.tr\nSubject: Fwd: x\n" SYN MIME
		  "Content-Type: text/html; charset=utf-8\n\n"
		  "<div>Bilginize.<br><div><br><blockquote type=\"cite\"><div>İleti başlangıcı:</div>"
		  "<br><div><span><b>Kimden: </b></span><span>Örnek Kurum &lt;bildirim@example.org&gt;"
		  "</span></div><div><span><b>Konu: </b></span><span><b>Erişim (sentetik)</b></span>"
		  "</div><div><span><b>Tarih: </b></span><span>26 Ekim 2021 14:25:08 GMT+3</span></div>"
		  "<br><div>Özgün metin.</div></blockquote></div></div>\n");
	assert_int_equal(m->fwd_style, FWD_INLINE);
	assert_string_equal(m->fwd_client, "apple-tr");
	assert_string_equal(m->forwarded->from.email, "bildirim@example.org");
	assert_string_equal(m->forwarded->subject, "Erişim (sentetik)");
	assert_int_equal(m->forwarded->date, 1635247508);
	assert_string_equal(m->forwarded->body, "Özgün metin.\n");
	message_free(m);

	/* Outlook's HTML: bold labels, no separator text */
	m = parse("From: memur@ornek.edu.tr\nSubject: İLT: x\n" SYN MIME
		  "Content-Type: text/html; charset=utf-8\n\n"
		  "<div>Bilginize</div><hr><div><b>Kimden:</b> Örnek Kurum &lt;bildirim@example.org&gt;"
		  "<br><b>Gönderildi:</b> 28 Ekim 2021 Perşembe 12:46<br><b>Kime:</b> "
		  "ali@ornek.edu.tr<br><b>Konu:</b> Erişim (sentetik)</div><div>Özgün metin.</div>\n");
	assert_int_equal(m->fwd_style, FWD_INLINE);
	assert_string_equal(m->fwd_client, "outlook-tr");
	assert_int_equal(m->forwarded->date, 1635414360);
	assert_string_equal(m->forwarded->body, "Özgün metin.\n");
	message_free(m);
}

static void test_not_forwards(void **state)
{
	(void)state;
	/* a reply quoting its original in Outlook's way is a reply */
	struct message *m = parse(
		"From: memur@ornek.edu.tr\nSubject: RE: [EIMZA-2026-0001] Karar\n" SYN "\n"
		"ONAY\n\n-----Original Message-----\nFrom: eimzad <eimzad@ornek.edu.tr>\n"
		"Sent: Thursday, October 28, 2021 12:46 PM\nTo: memur@ornek.edu.tr\n"
		"Subject: [EIMZA-2026-0001] Karar\n\nKarar bekleniyor.\n");
	assert_null(m->forwarded);
	assert_int_equal(m->fwd_style, FWD_NONE);
	message_free(m);

	/* the same attribution under a reply's subject is a reply */
	m = parse("From: memur@ornek.edu.tr\nSubject: Ynt: Erişim\n" SYN
		  "Content-Type: text/plain; charset=utf-8\n\nTamam.\n\n"
		  "\"Örnek\" <bildirim@example.org>, 28/10/2021 12:46 tarihinde şunu yazdı:\n"
		  "> eski\n");
	assert_null(m->forwarded);
	message_free(m);

	/* prose mentioning From: and a separator-like line without a block */
	m = parse("From: a@example.org\nSubject: x\n" SYN "\n"
		  "From: here on we use the new form.\n"
		  "---------- Forwarded message ---------\nno labels follow\n");
	assert_null(m->forwarded);
	message_free(m);
}

static void test_nested_forwards(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: memur@ornek.edu.tr\nSubject: Fwd: Fwd: Fwd: Fwd: Fwd: x\n" SYN
		 "Content-Type: text/plain; charset=utf-8\n\ntop\n");
	for (int i = 1; i <= 5; i++)
		buf_printf(&b, "\n---------- Forwarded message ---------\n"
			   "From: Level %d <l%d@example.org>\nDate: 27 Eki 2021 Çar, 09:3%d\n"
			   "Subject: level %d\nTo: <x@example.org>\n\ntext %d\n", i, i, i, i, i);
	struct message *m = parse(b.p);
	int n = 0;
	for (struct message *f = m->forwarded; f; f = f->forwarded) {
		n++;
		char want[32];
		snprintf(want, sizeof(want), "level %d", n);
		assert_string_equal(f->subject, want);
	}
	assert_int_equal(n, 3);           /* MIME_LIMITS_DEFAULT forward_depth */
	message_free(m);

	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	lim.forward_depth = 5;
	m = parse_lim(b.p, b.len, &lim);
	n = 0;
	for (struct message *f = m->forwarded; f; f = f->forwarded)
		n++;
	assert_int_equal(n, 5);
	assert_string_equal(m->forwarded->forwarded->forwarded->forwarded->forwarded->body,
			    "text 5\n");
	message_free(m);

	lim.forward_depth = 0;
	m = parse_lim(b.p, b.len, &lim);
	assert_null(m->forwarded);
	message_free(m);
	buf_free(&b);

	/* rfc822 inside rfc822 inside rfc822 ...: depth 3 then a problem */
	struct buf r = BUF_INIT;
	for (int i = 0; i < 5; i++)
		buf_printf(&r, "From: l%d@example.org\nSubject: r%d\n" SYN MIME
			   "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n"
			   "Content-Type: message/rfc822\n\n", i, i, i, i);
	buf_adds(&r, "From: last@example.org\nSubject: last\n\nend\n");
	for (int i = 4; i >= 0; i--)
		buf_printf(&r, "--b%d--\n", i);
	m = parse(r.p);
	n = 0;
	for (struct message *f = m->forwarded; f; f = f->forwarded) {
		assert_int_equal(f->fwd_style == FWD_NONE || f->fwd_style == FWD_RFC822, 1);
		n++;
	}
	assert_int_equal(n, 3);
	assert_string_equal(m->forwarded->subject, "r1");
	assert_true(has_problem(m->forwarded->forwarded->forwarded, "not unwrapped"));
	assert_false(m->unreadable);
	message_free(m);
	buf_free(&r);
}

/* ---- limits and hostile input ---- */

static void test_empty_and_not_mail(void **state)
{
	(void)state;
	struct message *m = (struct message *)1;
	char *err = NULL;
	assert_int_equal(message_parse("", 0, NULL, &m, &err), -1);
	assert_null(m);
	assert_non_null(err);
	free(err);
	assert_int_equal(message_parse(NULL, 0, NULL, &m, NULL), -1);

	m = parse("just some words\nand more\n");
	assert_true(m->unreadable);
	assert_non_null(strstr(m->unreadable_reason, "no header"));
	assert_string_equal(m->body, "just some words\nand more\n");
	message_free(m);

	m = parse("\n\n");
	assert_true(m->unreadable);
	message_free(m);
}

static void test_truncated_and_wrong_boundary(void **state)
{
	(void)state;
	/* cut in the middle of the second part */
	struct message *m = parse(
		"From: a@example.org\nSubject: cut\n" SYN MIME
		"Content-Type: multipart/mixed; boundary=q\n\n"
		"--q\nContent-Type: text/plain; charset=utf-8\n\nBirinci parça.\n"
		"--q\nContent-Type: text/plain; charset=utf-8\n"
		"Content-Transfer-Encoding: base64\n\nxZ5pZnJl");
	assert_int_equal(m->nparts, 2);
	assert_string_equal(m->parts[0].text, "Birinci parça.");
	assert_string_equal(m->parts[1].text, "Şifre");
	assert_string_equal(m->body, "Birinci parça.\nŞifre");
	message_free(m);

	/* headers only, cut before the body */
	m = parse("From: a@example.org\nSubject: kesik =?utf-8?q?ba=C5");
	assert_string_equal(m->subject, "kesik =?utf-8?q?ba=C5");
	assert_string_equal(m->body, "");
	message_free(m);

	/* the parts use another boundary than the one declared: one text blob */
	m = parse("From: a@example.org\nSubject: wrong\n" SYN MIME
		  "Content-Type: multipart/mixed; boundary=declared\n\n"
		  "--other\nContent-Type: text/plain\n\nicerik\n--other--\n");
	assert_false(m->unreadable);
	assert_null(m->forwarded);
	assert_string_equal(m->body, "--other\nContent-Type: text/plain\n\nicerik\n--other--\n");
	assert_true(has_problem(m, "boundary not found"));
	assert_int_equal(m->nparts, 0);
	message_free(m);

	/* a nested multipart that loses its boundary keeps its parent's parts */
	m = parse("From: a@example.org\nSubject: wrong\n" SYN MIME
		  "Content-Type: multipart/mixed; boundary=outer\n\n"
		  "--outer\nContent-Type: text/plain\n\nbirinci\n"
		  "--outer\nContent-Type: multipart/alternative; boundary=lost\n\nno parts\n"
		  "--outer\nContent-Type: text/csv\n\na;b\n--outer--\n");
	assert_false(m->unreadable);
	assert_string_equal(m->parts[0].text, "birinci");
	assert_string_equal(m->parts[m->nparts - 1].content_type, "text/csv");
	assert_string_equal(m->parts[m->nparts - 1].text, "a;b");
	message_free(m);
}

static void test_invalid_encodings(void **state)
{
	(void)state;
	struct message *m = parse("From: a@example.org\nSubject: b64\n" SYN MIME
				  "Content-Type: text/plain; charset=utf-8\n"
				  "Content-Transfer-Encoding: base64\n\n!!!*** SGVs\n#bG8=\n===\n");
	assert_string_equal(m->body, "Hello");
	message_free(m);

	m = parse("From: a@example.org\nSubject: qp\n" SYN MIME
		  "Content-Type: text/plain; charset=utf-8\n"
		  "Content-Transfer-Encoding: quoted-printable\n\na=ZZb=4\n");
	assert_non_null(strstr(m->body, "a"));
	assert_true(utf8_valid(m->body, m->body_len));
	message_free(m);

	/* "=" in the last bytes of the input (libetpan reads past it) */
	static const char *const qp_ends[] = { "=", "=F", "=\xff", "x=\r", "=4" };
	for (size_t i = 0; i < ARRAY_LEN(qp_ends); i++) {
		char *raw = xasprintf("From: a@example.org\nSubject: qp\n" SYN MIME
				      "Content-Type: text/plain; charset=utf-8\n"
				      "Content-Transfer-Encoding: quoted-printable\n\nab%s",
				      qp_ends[i]);
		m = parse(raw);
		assert_true(str_startswith(m->body, "ab"));
		message_free(m);
		free(raw);
	}

	m = parse("From: a@example.org\nSubject: enc\n" SYN MIME
		  "Content-Type: text/plain; charset=utf-8\n"
		  "Content-Transfer-Encoding: x-unknown\n\nolduğu gibi\n");
	assert_string_equal(m->body, "olduğu gibi\n");
	message_free(m);
}

static void test_nul_bytes(void **state)
{
	(void)state;
	static const char raw[] = "From: a@exa\0mple.org\nSubject: a\0b\n" SYN
				  "Content-Type: text/plain; charset=utf-8\n\nx\0y\n";
	struct message *m = parse_lim(raw, sizeof(raw) - 1, NULL);
	assert_string_equal(m->subject, "ab");
	assert_string_equal(m->from.email, "a@example.org");
	assert_int_equal(m->body_len, strlen(m->body));
	assert_string_equal(m->body, "xy\n");
	message_free(m);
}

static void test_many_parts(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: many\n" SYN MIME
		 "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "--p\nContent-Type: text/plain\n\npart %d\n", i);
	buf_adds(&b, "--p--\n");
	int64_t t0 = mono_ms();
	struct message *m = parse_lim(b.p, b.len, NULL);
	assert_true(mono_ms() - t0 < HANG_MS);
	assert_true(m->unreadable);
	assert_string_equal(m->unreadable_reason, "more than 1000 MIME parts");
	assert_string_equal(m->subject, "many");
	assert_int_equal(m->nparts, 0);
	message_free(m);

	/* within a raised limit the parts are read */
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	lim.max_parts = 20000;
	m = parse_lim(b.p, b.len, &lim);
	assert_false(m->unreadable);
	assert_int_equal(m->nparts, 10000);
	assert_string_equal(m->parts[9999].text, "part 9999");
	message_free(m);
	buf_free(&b);
}

static void test_deep_nesting(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: deep\n" SYN MIME);
	for (int i = 0; i < 200; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"n%d\"\n\n--n%d\n", i, i);
	buf_adds(&b, "Content-Type: text/plain\n\ninnermost\n");
	for (int i = 199; i >= 0; i--)
		buf_printf(&b, "--n%d--\n", i);
	struct message *m = parse_lim(b.p, b.len, NULL);
	assert_true(m->unreadable);
	assert_string_equal(m->unreadable_reason, "MIME nesting deeper than 20 levels");
	assert_string_equal(m->subject, "deep");
	message_free(m);

	/* 50,000 levels: still refused at once, no deep recursion */
	buf_reset(&b);
	buf_adds(&b, "From: a@example.org\nSubject: deeper\n" SYN MIME);
	for (int i = 0; i < 50000; i++)
		buf_adds(&b, "Content-Type: multipart/mixed; boundary=z\n\n--z\n");
	int64_t t0 = mono_ms();
	m = parse_lim(b.p, b.len, NULL);
	assert_true(mono_ms() - t0 < HANG_MS);
	assert_true(m->unreadable);
	message_free(m);

	/* message/rfc822 nesting counts too */
	buf_reset(&b);
	buf_adds(&b, "From: a@example.org\nSubject: rfc\n" SYN MIME);
	for (int i = 0; i < 1000; i++)
		buf_adds(&b, "Content-Type: message/rfc822\n\nFrom: b@example.org\n");
	buf_adds(&b, "\nbody\n");
	m = parse_lim(b.p, b.len, NULL);
	assert_true(m->unreadable);
	message_free(m);
	buf_free(&b);
}

static void test_long_header(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: ");
	for (int i = 0; i < (1 << 20); i++)
		buf_addc(&b, 'x');
	buf_adds(&b, "\n" SYN "Content-Type: text/plain\n\nstill here\n");
	int64_t t0 = mono_ms();
	struct message *m = parse_lim(b.p, b.len, NULL);
	assert_true(mono_ms() - t0 < HANG_MS);
	assert_true(m->unreadable);
	assert_non_null(strstr(m->unreadable_reason, "header line is longer than 65536"));
	assert_true(strlen(m->subject) >= 65535 && strlen(m->subject) <= 65536);
	assert_string_equal(m->body, "still here\n");
	assert_string_equal(m->from.email, "a@example.org");
	message_free(m);
	buf_free(&b);
}

/* Inputs built to make naive loops quadratic stay fast and bounded. */
static void test_pathological_bodies(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: labels\n" SYN "\n");
	for (int i = 0; i < 50000; i++)
		buf_adds(&b, "From: x@example.org\n");
	int64_t t0 = mono_ms();
	struct message *m = parse_lim(b.p, b.len, NULL);
	assert_true(mono_ms() - t0 < HANG_MS);
	assert_null(m->forwarded);          /* no Date/To/Subject: no block */
	message_free(m);

	buf_reset(&b);
	buf_adds(&b, "From: a@example.org\n");
	for (int i = 0; i < 5000; i++)
		buf_printf(&b, "To: a%d@example.org, b%d@example.org\n", i, i);
	buf_adds(&b, "Subject: many\n" SYN "\nx\n");
	m = parse_lim(b.p, b.len, NULL);
	assert_int_equal(m->nto, 1000);
	message_free(m);

	buf_reset(&b);
	buf_adds(&b, "From: a@example.org\nSubject: words\n" SYN "\n");
	for (int i = 0; i < 20000; i++)
		buf_adds(&b, "=?utf-8?q?x =?utf-8?b? <a href=\"x\"><blockquote>");
	t0 = mono_ms();
	m = parse_lim(b.p, b.len, NULL);
	char *h = html_to_text(b.p, b.len);
	char *q = text_strip_quoted(m->body);
	assert_true(mono_ms() - t0 < HANG_MS);
	free(h);
	free(q);
	message_free(m);
	buf_free(&b);
}

static void test_max_text(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: big\n" SYN
		 "Content-Type: text/plain; charset=utf-8\n\n");
	for (int i = 0; i < 500; i++)
		buf_adds(&b, "ğ");
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	lim.max_text = 101;
	struct message *m = parse_lim(b.p, b.len, &lim);
	assert_true(m->unreadable);
	assert_non_null(strstr(m->unreadable_reason, "longer than 101 bytes"));
	assert_int_equal(m->parts[0].text_len, 100);      /* cut on a character */
	assert_true(utf8_valid(m->body, m->body_len));
	message_free(m);

	/* an embedded message larger than max_text is parsed whole; only its
	 * text copy is cut, and that is no reason to call the mail unreadable */
	buf_reset(&b);
	buf_adds(&b, "From: a@example.org\nSubject: fwd\n" SYN MIME
		 "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
		 "Content-Type: message/rfc822\n\nFrom: inner@example.org\nSubject: inner\n"
		 "Content-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\n"
		 "inner text\n--i\nContent-Type: application/pdf\n"
		 "Content-Transfer-Encoding: base64\n\n");
	for (int i = 0; i < 100; i++)
		buf_adds(&b, "JVBERi0xLjQgc3ludGhldGljJVBERi0xLjQgc3ludGhldGljJVBERi0xLjQgc3ludGhl\n");
	buf_adds(&b, "--i--\n--o--\n");
	lim.max_text = 1000;
	m = parse_lim(b.p, b.len, &lim);
	assert_false(m->unreadable);
	assert_true(has_problem(m, "text copy cut at 1000 bytes"));
	assert_int_equal(m->parts[0].text_len, 1000);
	assert_non_null(m->forwarded);
	assert_string_equal(m->forwarded->body, "inner text");
	assert_int_equal(m->forwarded->nparts, 2);
	assert_false(m->forwarded->unreadable);
	message_free(m);
	buf_free(&b);
}

/* ---- dates and addresses ---- */

static const struct {
	const char *s;
	time_t want;
} date_cases[] = {
	{ "Thu, 28 Oct 2021 12:46:00 +0000", 1635425160 },
	{ "28 Oct 2021 12:46 +0000", 1635425160 },
	{ "Thu, 28 Oct 2021 15:46:00 +0300 (+03)", 1635425160 },
	{ "Thu, 28 Oct 2021 08:46:00 -0400", 1635425160 },
	{ "Thu, 28 Oct 2021 12:46:00 GMT", 1635425160 },
	{ "Thu, 28 Oct 2021 08:46:00 EDT", 1635425160 },
	{ "Thu, 28 Oct 21 12:46:00 UT", 1635425160 },
	{ "Thu,28 Oct 2021 12:46:00 +0000", 1635425160 },
	{ "2021-10-28T12:46:00Z", 1635425160 },
	{ "2021-10-28T15:46:00+03:00", 1635425160 },
	/* no zone: Turkey's time */
	{ "27 Eki 2021 Çar, 09:31", 1635316260 },
	{ "Perşembe, 28 Ekim 2021 12:46", 1635414360 },
	{ "28 EKİM 2021 PERŞEMBE 12:46", 1635414360 },
	{ "2 Kasım 2021 Salı 09:26:50 GMT+1", 1635841610 },
	{ "Wed, Oct 27, 2021 at 9:31 AM", 1635316260 },
	{ "Thursday, October 28, 2021 12:46 PM", 1635414360 },
	{ "Thursday, October 28, 2021 12:46 ÖS", 1635414360 },
	{ "28/10/2021 12:46", 1635414360 },
	{ "10/28/2021 12:46", 1635414360 },
	{ "28.10.2021 12:46", 1635414360 },
	{ "25 Eylül 2003 Perşembe 12:18", 1064481480 },
	{ "26 Ekim 2021 14:25:08 GMT+03:00", 1635247508 },
	{ "12 Şubat 2024 00:00 +0000", 1707696000 },
	{ "29 Feb 2024 00:00:00 +0000", 1709164800 },
	/* unparseable */
	{ "", 0 },
	{ "yesterday", 0 },
	{ "31 Feb 2021 10:00 +0000", 0 },
	{ "28 Oct 2021 25:00 +0000", 0 },
	{ "Oct 2021", 0 },
	{ "32/13/2021", 0 },
};

static void test_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(date_cases); i++) {
		time_t t = mail_date_parse(date_cases[i].s);
		if (t != date_cases[i].want)
			fail_msg("case %zu [%s]: %lld, want %lld", i, date_cases[i].s,
				 (long long)t, (long long)date_cases[i].want);
	}
	assert_int_equal(mail_date_parse(NULL), 0);
}

static void test_addresses(void **state)
{
	(void)state;
	struct addr *v;
	size_t n = addr_parse_list("Ali Veli <Ali.Veli@EXAMPLE.org>, bob@example.org (Bob B), "
				   "\"Çağla, Öz\" <cagla@example.org>; undisclosed-recipients:;", &v);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "Ali Veli");
	assert_string_equal(v[0].email, "Ali.Veli@example.org");
	assert_string_equal(v[1].email, "bob@example.org");
	assert_string_equal(v[2].name, "Çağla, Öz");
	addr_free_array(v, n);

	n = addr_parse_list("=?utf-8?Q?=C3=96rnek?= <x@example.org>", &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "Örnek");
	addr_free_array(v, n);

	n = addr_parse_list("Örnek Kurum [mailto:Bildirim@Example.ORG]", &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "Örnek Kurum");
	assert_string_equal(v[0].email, "Bildirim@example.org");
	addr_free_array(v, n);

	n = addr_parse_list("Grup: a@example.org, b@example.org;", &v);
	assert_int_equal(n, 2);
	assert_string_equal(v[1].email, "b@example.org");
	addr_free_array(v, n);

	n = addr_parse_list("'Ali Veli' <ali@example.org>", &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "Ali Veli");
	addr_free_array(v, n);

	assert_int_equal(addr_parse_list("no address here", &v), 0);
	assert_null(v);
	assert_int_equal(addr_parse_list("", &v), 0);
	assert_int_equal(addr_parse_list(NULL, &v), 0);
}

/* ---- large binary attachments: libetpan parses a copy without them ---- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* nlines lines of 76 base64 characters (a fixed pseudo-random stream),
 * each ending in eol, the last one short. */
static void b64_noise(struct buf *b, int nlines, const char *eol, unsigned seed)
{
	for (int i = 0; i < nlines; i++) {
		int n = i == nlines - 1 ? 29 : 76;
		for (int k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			buf_addc(b, b64chars[(seed >> 16) & 63]);
		}
		buf_adds(b, eol);
	}
}

/* Base64 of s in lines of 76, each ending in "\n". */
static void b64_encode(struct buf *b, const char *s, size_t n)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		buf_addc(b, b64chars[(v >> 18) & 63]);
		buf_addc(b, b64chars[(v >> 12) & 63]);
		buf_addc(b, i + 1 < n ? b64chars[(v >> 6) & 63] : '=');
		buf_addc(b, i + 2 < n ? b64chars[v & 63] : '=');
		if ((col += 4) == 76 || i + 3 >= n) {
			buf_addc(b, '\n');
			col = 0;
		}
	}
}

/* What mime_scan.c would cut out of raw. */
static size_t planned_cut(const char *raw, size_t len)
{
	struct mime_shape sh;
	char *why = NULL;
	assert_int_equal(mime_prescan(raw, len, 20, 1000, &sh, &why), 0);
	size_t n = sh.cut_bytes;
	mime_shape_free(&sh);
	return n;
}

/* A type nothing cuts, as long as type t (so that sizes stay equal);
 * same_parts() maps it back to t in texts. */
static struct {
	char from[128], to[128];
} relabels[8];
static size_t nrelabels;

static const char *uncut(bool cut, const char *t)
{
	if (cut)
		return t;
	for (size_t i = 0; i < nrelabels; i++)
		if (strcmp(relabels[i].to, t) == 0)
			return relabels[i].from;
	assert_true(nrelabels < ARRAY_LEN(relabels));
	snprintf(relabels[nrelabels].from, sizeof(relabels[0].from), "x-%s", t + 2);
	snprintf(relabels[nrelabels].to, sizeof(relabels[0].to), "%s", t);
	return relabels[nrelabels++].from;
}

/* A copy of text t with uncut() labels turned back (the same lengths). */
static char *relabel_back(const char *t, size_t n)
{
	char *c = xmalloc(n + 1);
	memcpy(c, t, n + 1);
	for (size_t i = 0; i < nrelabels; i++) {
		size_t k = strlen(relabels[i].from);
		for (char *p = c; (p = memmem(p, n - (size_t)(p - c), relabels[i].from, k)); p += k)
			memcpy(p, relabels[i].to, k);
	}
	return c;
}

/* m and ref have the same parts, but for content types: where ref says
 * x-... (uncut()), m may say anything. */
static void same_parts(const struct message *m, const struct message *ref)
{
	assert_int_equal(m->nparts, ref->nparts);
	for (size_t i = 0; i < m->nparts; i++) {
		const struct part *p = &m->parts[i], *q = &ref->parts[i];
		if (strncmp(q->content_type, "x-", 2) != 0)
			assert_string_equal(p->content_type, q->content_type);
		if (q->filename)
			assert_string_equal(p->filename, q->filename);
		else
			assert_null(p->filename);
		assert_int_equal(p->role, q->role);
		assert_int_equal(p->size, q->size);
		if (!q->text) {
			assert_null(p->text);
			continue;
		}
		char *t = relabel_back(q->text, q->text_len);
		assert_int_equal(p->text_len, q->text_len);
		assert_memory_equal(p->text, t, q->text_len + 1);
		free(t);
	}
	char *body = relabel_back(ref->body, ref->body_len);
	assert_string_equal(m->body, body);
	free(body);
	assert_int_equal(m->unreadable, ref->unreadable);
	assert_int_equal(strv_len(m->problems), strv_len(ref->problems));
	assert_int_equal(m->forwarded != NULL, ref->forwarded != NULL);
	if (m->forwarded)
		same_parts(m->forwarded, ref->forwarded);
}

/* A text body and one attachment of the given type, its base64 body in
 * lines ending in eol, with an empty line before the boundary if asked. */
static void pdf_mail(struct buf *b, const char *type, const char *eol, bool blank_end)
{
	buf_printf(b, "From: kamusm@example.org%sSubject: ek%sX-Synthetic: yes%s"
		   "MIME-Version: 1.0%sContent-Type: multipart/mixed; boundary=\"=_b\"%s%s"
		   "--=_b%sContent-Type: text/plain; charset=utf-8%s%sYazı ektedir.%s"
		   "--=_b%sContent-Type: %s; name=\"yazi.pdf\"%s"
		   "Content-Disposition: attachment; filename=\"yazi.pdf\"%s"
		   "Content-Transfer-Encoding: base64%s%s",
		   eol, eol, eol, eol, eol, eol, eol, eol, eol, eol, eol, type, eol, eol, eol, eol);
	b64_noise(b, 300, eol, 7);
	if (blank_end)
		buf_adds(b, eol);
	buf_printf(b, "--=_b--%s", eol);
}

static void test_binary_cut(void **state)
{
	(void)state;
	static const struct {
		const char *eol;
		bool blank_end;
	} rows[] = { { "\n", false }, { "\n", true }, { "\r\n", false }, { "\r\n", true } };
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct buf cut = BUF_INIT, ref = BUF_INIT;
		pdf_mail(&cut, "application/pdf", rows[i].eol, rows[i].blank_end);
		pdf_mail(&ref, uncut(false, "application/pdf"), rows[i].eol, rows[i].blank_end);
		assert_true(planned_cut(cut.p, cut.len) > 20000);
		assert_int_equal(planned_cut(ref.p, ref.len), 0);
		struct message *m = parse_lim(cut.p, cut.len, NULL);
		struct message *r = parse_lim(ref.p, ref.len, NULL);
		assert_int_equal(m->cut_bytes, planned_cut(cut.p, cut.len));   /* the cut was used */
		assert_int_equal(r->cut_bytes, 0);
		same_parts(m, r);
		assert_int_equal(m->nparts, 2);
		assert_string_equal(m->parts[1].content_type, "application/pdf");
		assert_string_equal(m->parts[1].filename, "yazi.pdf");
		assert_int_equal(m->parts[1].role, PART_ATTACHMENT);
		/* the encoded body without the line end before the boundary */
		size_t eol = strlen(rows[i].eol);
		size_t body = 299 * (76 + eol) + 29 + eol + (rows[i].blank_end ? eol : 0) - eol;
		assert_int_equal(m->parts[1].size, body);
		assert_string_equal(m->body, "Yazı ektedir.");
		message_free(m);
		message_free(r);
		buf_free(&cut);
		buf_free(&ref);
	}
}

/* A CSV file of about 8 KB under the given headers, base64. */
static void csv_mail(struct buf *b, struct buf *csv, const char *headers)
{
	buf_adds(b, "From: birim@ornek.edu.tr\nSubject: liste\n" SYN MIME
		 "Content-Type: multipart/mixed; boundary=p\n\n"
		 "--p\nContent-Type: text/plain; charset=utf-8\n\nListe ektedir.\n--p\n");
	buf_adds(b, headers);
	buf_adds(b, "Content-Transfer-Encoding: base64\n\n");
	buf_adds(csv, "TC;Ad;Soyad;E-posta\n");
	for (int i = 0; i < 200; i++)
		buf_printf(csv, "%d;Ad%d;Soyad%d;kisi%d@ornek.edu.tr\n", 10000 + i, i, i, i);
	b64_encode(b, csv->p, csv->len);
	buf_adds(b, "--p--\n");
}

static void test_binary_cut_csv(void **state)
{
	(void)state;
	static const struct {
		const char *headers;
		bool planned;     /* mime_scan.c would cut it (mime.c must not) */
	} rows[] = {
		{ "Content-Type: application/octet-stream; name=liste.csv\n", false },
		{ "Content-Type: application/vnd.ms-excel\n"
		  "Content-Disposition: attachment; filename=\"liste.csv\"\n", false },
		{ "Content-Type: application/pdf; name=liste.csv\n", false },
		{ "Content-Type: application/zip\n"
		  "Content-Disposition: attachment; filename=\"=?utf-8?B?bGlzdGUuY3N2?=\"\n", true },
		{ "Content-Type: application/pdf\n"
		  "Content-Disposition: attachment; filename*=utf-8''liste%2Ec%73v\n", true },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct buf b = BUF_INIT, csv = BUF_INIT;
		csv_mail(&b, &csv, rows[i].headers);
		assert_int_equal(planned_cut(b.p, b.len) > 4096, rows[i].planned);
		struct message *m = parse_lim(b.p, b.len, NULL);
		assert_int_equal(m->cut_bytes, 0);      /* refused when planned: parsed whole */
		assert_int_equal(m->nparts, 2);
		assert_string_equal(m->parts[1].filename, "liste.csv");
		assert_non_null(m->parts[1].text);
		assert_int_equal(m->parts[1].text_len, csv.len);
		assert_memory_equal(m->parts[1].text, csv.p, csv.len);
		assert_int_equal(m->parts[1].size, csv.len);
		message_free(m);
		buf_free(&b);
		buf_free(&csv);
	}
}

/* Nested multiparts; a PDF whose body has a line that is the outer
 * boundary (libetpan ends the inner multipart there) and lines starting
 * with '-'; an image in an embedded message. */
static void nested_mail(struct buf *b, bool cut)
{
	const char *pdf = uncut(cut, "application/pdf");
	const char *png = uncut(cut, "image/png");
	const char *docx = uncut(cut, "application/vnd.openxmlformats-officedocument."
				 "wordprocessingml.document");
	buf_adds(b, "From: a@example.org\nSubject: nested\n" SYN MIME
		 "Content-Type: multipart/mixed; boundary=out\n\n"
		 "--out\nContent-Type: multipart/alternative; boundary=alt\n\n"
		 "--alt\nContent-Type: text/plain\n\nMetin.\n"
		 "--alt\nContent-Type: text/html\n\n<p>Metin.</p>\n--alt--\n"
		 "--out\nContent-Type: multipart/mixed; boundary=in\n\n");
	buf_printf(b, "--in\nContent-Type: %s; name=a.pdf\n\n", pdf);
	b64_noise(b, 100, "\n", 1);
	buf_adds(b, "-----BEGIN-----\n");
	b64_noise(b, 100, "\n", 2);
	buf_adds(b, "--in-not\n");
	b64_noise(b, 100, "\n", 3);
	buf_printf(b, "--in\nContent-Type: multipart/related; boundary=rel\n\n"
		   "--rel\nContent-Type: text/html\n\n<img src=cid:x>\n"
		   "--rel\nContent-Type: %s\nContent-ID: <x>\n\n", png);
	b64_noise(b, 100, "\n", 4);
	buf_printf(b, "--rel--\n--in\nContent-Type: %s; name=b.pdf\n\n", pdf);
	b64_noise(b, 100, "\n", 5);
	buf_adds(b, "--out\n");             /* the outer boundary, inside the PDF */
	b64_noise(b, 100, "\n", 6);
	buf_printf(b, "--in--\n--out\nContent-Type: %s; name=c.docx\n\n", docx);
	b64_noise(b, 100, "\n", 7);
	buf_printf(b, "--out\nContent-Type: message/rfc822\n\n"
		   "From: b@example.org\nSubject: inner\n" MIME
		   "Content-Type: multipart/mixed; boundary=fw\n\n"
		   "--fw\nContent-Type: text/plain\n\nAsıl.\n"
		   "--fw\nContent-Type: %s; name=d.png\n\n", png);
	b64_noise(b, 100, "\n", 8);
	buf_adds(b, "--fw--\n\n--out--\n");
}

static void test_binary_cut_nested(void **state)
{
	(void)state;
	struct buf cut = BUF_INIT, ref = BUF_INIT;
	nested_mail(&cut, true);
	nested_mail(&ref, false);
	assert_true(planned_cut(cut.p, cut.len) > 20000);
	struct message *m = parse_lim(cut.p, cut.len, NULL);
	struct message *r = parse_lim(ref.p, ref.len, NULL);
	assert_int_equal(m->cut_bytes, planned_cut(cut.p, cut.len));
	same_parts(m, r);
	/* the inner multipart ends at the outer boundary in the PDF's body:
	 * the rest of that body is a part of the outer level (text/plain,
	 * read, as libetpan makes it of the uncut message) */
	assert_int_equal(m->nparts, 9);
	assert_string_equal(m->parts[2].content_type, "application/pdf");
	assert_string_equal(m->parts[2].filename, "a.pdf");
	assert_int_equal(m->parts[2].size, 300 * 77 - 3 * 47 + 16 + 9 - 1);
	assert_string_equal(m->parts[4].content_type, "image/png");
	assert_string_equal(m->parts[5].filename, "b.pdf");
	assert_int_equal(m->parts[5].size, 99 * 77 + 29);
	assert_string_equal(m->parts[6].content_type, "text/plain");
	assert_non_null(m->parts[6].text);
	assert_string_equal(m->parts[7].filename, "c.docx");
	assert_string_equal(m->parts[8].content_type, "message/rfc822");
	assert_non_null(m->forwarded);
	assert_int_equal(m->forwarded->nparts, 2);
	assert_string_equal(m->forwarded->parts[1].content_type, "image/png");
	assert_int_equal(m->forwarded->parts[1].size, 99 * 77 + 29);
	message_free(m);
	message_free(r);
	buf_free(&cut);
	buf_free(&ref);
}

/* libetpan looks for the end of an encoded word ("?=") across lines, out
 * of the header block and into the bodies: an unterminated one in From:
 * makes it read the whole message as headers up to a "?=" in a PDF. What
 * it makes of that must not depend on cuts before the "?=". */
static void runaway_mail(struct buf *b, bool cut)
{
	buf_printf(b, "From: =?utf-8?b?w4dhxJ9yxLEg <a@example.org>\nSubject: x\n" SYN MIME
		   "Content-Type: multipart/mixed; boundary=p\n\n"
		   "--p\nContent-Type: text/plain\n\nMetin.\n"
		   "--p\nContent-Type: %s; name=a.pdf\n\n", uncut(cut, "application/pdf"));
	b64_noise(b, 100, "\n", 1);
	buf_adds(b, "QUJD?= <b@example.org>\nTo: c@example.org\n");
	b64_noise(b, 100, "\n", 2);
	buf_printf(b, "--p\nContent-Type: %s; name=b.png\n\n", uncut(cut, "image/png"));
	b64_noise(b, 100, "\n", 3);
	buf_adds(b, "--p--\n");
}

static void test_binary_cut_runaway_header(void **state)
{
	(void)state;
	struct buf cut = BUF_INIT, ref = BUF_INIT;
	runaway_mail(&cut, true);
	runaway_mail(&ref, false);
	assert_true(planned_cut(cut.p, cut.len) > 4096);
	struct message *m = parse_lim(cut.p, cut.len, NULL);
	struct message *r = parse_lim(ref.p, ref.len, NULL);
	same_parts(m, r);
	message_free(m);
	message_free(r);
	buf_free(&cut);
	buf_free(&ref);
}

/* Mail without binary attachments (or with them only inside an embedded
 * message, which is read whole) is parsed as it is: nothing to cut, so
 * message_parse() makes no copy. */
static void test_binary_cut_none(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: a@example.org\nSubject: x\n" SYN MIME
		 "Content-Type: multipart/mixed; boundary=p\n\n"
		 "--p\nContent-Type: text/plain\n\n");
	b64_noise(&b, 100, "\n", 1);
	buf_adds(&b, "--p\nContent-Type: application/octet-stream\n\n");
	b64_noise(&b, 100, "\n", 2);
	buf_adds(&b, "--p\nContent-Type: message/rfc822\n\nSubject: y\n" MIME
		 "Content-Type: multipart/mixed; boundary=q\n\n"
		 "--q\nContent-Type: application/pdf\n\n");
	b64_noise(&b, 100, "\n", 3);
	buf_adds(&b, "--q--\n--p--\n");
	assert_int_equal(planned_cut(b.p, b.len), 0);
	/* a single-part message is not scanned by libetpan for boundaries */
	const char *single = "Subject: x\n" SYN MIME "Content-Type: application/pdf\n\n";
	struct buf s = BUF_INIT;
	buf_adds(&s, single);
	b64_noise(&s, 100, "\n", 4);
	assert_int_equal(planned_cut(s.p, s.len), 0);
	struct message *m = parse_lim(b.p, b.len, NULL);
	assert_int_equal(m->cut_bytes, 0);
	message_free(m);
	buf_free(&b);
	buf_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_and_base64),
		cmocka_unit_test(test_rfc2047_subjects),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_rfc2231_filenames),
		cmocka_unit_test(test_alternative_and_html),
		cmocka_unit_test(test_csv_and_pdf),
		cmocka_unit_test(test_charset_fallback_problem),
		cmocka_unit_test(test_dsn_parts),
		cmocka_unit_test(test_rfc822_forward),
		cmocka_unit_test(test_inline_forwards),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_inline_forward_html),
		cmocka_unit_test(test_not_forwards),
		cmocka_unit_test(test_nested_forwards),
		cmocka_unit_test(test_empty_and_not_mail),
		cmocka_unit_test(test_truncated_and_wrong_boundary),
		cmocka_unit_test(test_invalid_encodings),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_long_header),
		cmocka_unit_test(test_pathological_bodies),
		cmocka_unit_test(test_max_text),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_binary_cut),
		cmocka_unit_test(test_binary_cut_csv),
		cmocka_unit_test(test_binary_cut_nested),
		cmocka_unit_test(test_binary_cut_runaway_header),
		cmocka_unit_test(test_binary_cut_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
