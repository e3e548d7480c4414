/*
 * mime_bench: how fast message_parse() is, beside libetpan's bare
 * mailmime_parse() of the same bytes.
 *
 *   make -f bench/Makefile.mime            builds build/bench/mime_bench
 *   build/bench/mime_bench [--seconds S] [--mode full|etpan|both] [files...]
 *
 * Without files it uses tests/fuzz/corpus/ plus four generated messages
 * (all synthetic): an HTML-only notification in windows-1254 QP, a
 * request letter with a CSV and a 300 KB PDF, a message/rfc822 forward,
 * and an inline Thunderbird forward. Each round parses every message once;
 * it prints messages/s and MB/s per mode.
 *
 * For instruction counts, run it under callgrind with --iterations N:
 *   valgrind --tool=callgrind --toggle-collect=bench_full \
 *       build/bench/mime_bench --mode full --iterations 20
 *   valgrind --tool=callgrind --toggle-collect=bench_etpan \
 *       build/bench/mime_bench --mode etpan --iterations 20
 */
#include "message.h"
#include "util.h"

#include <dirent.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct corpus {
	struct buf *v;
	size_t n;
	size_t bytes;
};

static void add(struct corpus *c, struct buf *b)
{
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n++] = *b;
	c->bytes += b->len;
}

static void add_file(struct corpus *c, const char *path)
{
	struct buf b = BUF_INIT;
	char *err = NULL;
	if (file_read(path, 0, &b, &err) < 0) {
		fprintf(stderr, "mime_bench: %s\n", err);
		free(err);
		return;
	}
	add(c, &b);
}

static void add_dir(struct corpus *c, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		add_file(c, p);
		free(p);
	}
	closedir(d);
}

static void b64_lines(struct buf *b, size_t nbytes)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t chars = nbytes / 3 * 4;
	for (size_t i = 0; i < chars; i++) {
		buf_addc(b, a[(i * 7 + 3) % 64]);
		if (i % 76 == 75)
			buf_addc(b, '\n');
	}
	buf_addc(b, '\n');
}

static void gen_html_notice(struct corpus *c)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: Ornek Bildirim <bildirim@example.org>\nTo: ali@ornek.edu.tr\n"
		 "Subject: =?windows-1254?Q?Ba=FEvuru_bilgilendirme_=28sentetik=29?=\n"
		 "Date: Wed, 25 Nov 2026 10:00:00 +0300\nMessage-ID: <n1@example.org>\n"
		 "X-Synthetic: yes\nMIME-Version: 1.0\n"
		 "Content-Type: text/html; charset=windows-1254\n"
		 "Content-Transfer-Encoding: quoted-printable\n\n<html><head><style>p{}</style>"
		 "</head><body>\n");
	for (int i = 0; i < 40; i++)
		buf_adds(&b, "<p>Say=FDn ilgili, sentetik ba=FEvuru bilgilendirme metni sat=FDr=FD "
			 "<a href=3D\"https://basvuru.example.org/f?id=3D1\">ba=F0lant=FD</a></p>=\n\n");
	buf_adds(&b, "<table><tr><td>Ad</td><td>De=F0er</td></tr></table></body></html>\n");
	add(c, &b);
}

static void gen_letter(struct corpus *c)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: birim@ornek.edu.tr\nTo: eimza@ornek.edu.tr\nSubject: E-imza talebi\n"
		 "Date: Wed, 25 Nov 2026 10:00:00 +0300\nX-Synthetic: yes\nMIME-Version: 1.0\n"
		 "Content-Type: multipart/mixed; boundary=\"=_b\"\n\n--=_b\n"
		 "Content-Type: multipart/alternative; boundary=\"=_a\"\n\n--=_a\n"
		 "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
		 "Ekteki personel için e-imza talep edilmektedir. (sentetik)\n--=_a\n"
		 "Content-Type: text/html; charset=utf-8\n\n<p>Ekteki personel için e-imza "
		 "talep edilmektedir.</p>\n--=_a--\n--=_b\n"
		 "Content-Type: text/csv; charset=utf-8\n"
		 "Content-Disposition: attachment; filename*=utf-8''ba%C5%9Fvuru.csv\n\n"
		 "Ad;Soyad;TC;E-posta;Telefon\n");
	for (int i = 0; i < 20; i++)
		buf_printf(&b, "Ayşe%d;Yılmaz;100000000%02d;a%d@ornek.edu.tr;0555000%04d\n", i, i, i, i);
	buf_adds(&b, "--=_b\nContent-Type: application/pdf; name=\"ust yazi.pdf\"\n"
		 "Content-Disposition: attachment; filename=\"ust yazi.pdf\"\n"
		 "Content-Transfer-Encoding: base64\n\n");
	b64_lines(&b, 300 * 1024);
	buf_adds(&b, "--=_b--\n");
	add(c, &b);
}

static void gen_forwards(struct corpus *c)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "From: memur@ornek.edu.tr\nSubject: Fwd: bilgi\nX-Synthetic: yes\n"
		 "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=f\n\n"
		 "--f\nContent-Type: text/plain\n\nEkte.\n--f\nContent-Type: message/rfc822\n\n"
		 "From: bildirim@example.org\nSubject: =?utf-8?B?QmHFn3Z1cnUgT25hecSx?=\n"
		 "Date: Thu, 28 Oct 2021 12:46:00 +0300\nMIME-Version: 1.0\n"
		 "Content-Type: multipart/alternative; boundary=g\n\n--g\n"
		 "Content-Type: text/plain; charset=utf-8\n\nİç gövde, sentetik.\n--g\n"
		 "Content-Type: text/html; charset=utf-8\n\n<p>İç gövde, sentetik.</p>\n--g--\n"
		 "--f--\n");
	add(c, &b);
	struct buf t = BUF_INIT;
	buf_adds(&t, "From: memur@ornek.edu.tr\nSubject: Fwd: bilgi\nX-Synthetic: yes\n"
		 "Content-Type: text/plain; charset=utf-8\n\nBilginize.\n\n"
		 "-------- İletilen İleti --------\nKonu: \tErişim (sentetik)\n"
		 "Tarih: \tWed, 3 Nov 2021 15:51:30 +0100\n"
		 "Kimden: \tÖrnek <bildirim@example.org>\nKime: \tali@ornek.edu.tr\n\n");
	for (int i = 0; i < 30; i++)
		buf_adds(&t, "Sentetik özgün metin satırı, Türkçe karakterlerle: ğüşıöç.\n");
	add(c, &t);
}

/* The two measured loops; named so that callgrind can isolate them. */
void bench_full(const struct corpus *c, size_t *sink);
void bench_etpan(const struct corpus *c, size_t *sink);

void bench_full(const struct corpus *c, size_t *sink)
{
	for (size_t i = 0; i < c->n; i++) {
		struct message *m;
		if (message_parse(c->v[i].p, c->v[i].len, NULL, &m, NULL) == 0) {
			*sink += m->body_len + m->nparts;
			message_free(m);
		}
	}
}

void bench_etpan(const struct corpus *c, size_t *sink)
{
	for (size_t i = 0; i < c->n; i++) {
		size_t idx = 0;
		struct mailmime *mm = NULL;
		if (mailmime_parse(c->v[i].p, c->v[i].len, &idx, &mm) == MAILIMF_NO_ERROR) {
			*sink += idx;
			mailmime_free(mm);
		}
	}
}

static void run(const char *name, void (*fn)(const struct corpus *, size_t *),
		const struct corpus *c, double seconds, long iterations)
{
	size_t sink = 0, rounds = 0;
	int64_t t0 = mono_ms(), t;
	do {
		fn(c, &sink);
		rounds++;
		t = mono_ms();
	} while (iterations > 0 ? (long)rounds < iterations : t - t0 < seconds * 1000);
	double s = (double)(t - t0) / 1000.0;
	if (s <= 0)
		s = 0.001;
	printf("%-6s %8zu messages in %.2fs: %9.0f messages/s, %7.1f MB/s (sink %zu)\n", name,
	       rounds * c->n, s, (double)(rounds * c->n) / s,
	       (double)(rounds * c->bytes) / s / 1e6, sink % 10);
}

int main(int argc, char **argv)
{
	struct corpus c = { 0 };
	double seconds = 3;
	long iterations = 0;
	const char *mode = "both";
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
			iterations = atol(argv[++i]);
		else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
			mode = argv[++i];
		else {
			fprintf(stderr, "usage: mime_bench [--seconds S] [--iterations N] "
				"[--mode full|etpan|both] [files...]\n");
			return 2;
		}
	}
	for (; i < argc; i++)
		add_file(&c, argv[i]);
	if (c.n == 0) {
		add_dir(&c, "tests/fuzz/corpus");
		gen_html_notice(&c);
		gen_letter(&c);
		gen_forwards(&c);
	}
	printf("%zu messages, %zu bytes per round\n", c.n, c.bytes);
	if (strcmp(mode, "full") == 0 || strcmp(mode, "both") == 0)
		run("full", bench_full, &c, seconds, iterations);
	if (strcmp(mode, "etpan") == 0 || strcmp(mode, "both") == 0)
		run("etpan", bench_etpan, &c, seconds, iterations);
	for (size_t k = 0; k < c.n; k++)
		buf_free(&c.v[k]);
	free(c.v);
	return 0;
}
