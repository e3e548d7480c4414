/* util.c: see util.h. */
#include "util.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <gnutls/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The one place where running out of memory is handled: it is fatal. */
static void NORETURN oom(size_t n)
{
	fatalx("out of memory (%zu bytes)", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		oom(strlen(s) + 1);
	return d;
}

char *xstrdup_opt(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (d == NULL)
		oom(n + 1);
	return d;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		oom(strlen(fmt));
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

int seterr(char **err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	free(*err);
	*err = s;
	return -1;
}

void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2)
			oom(SIZE_MAX);
		cap *= 2;
	}
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
	b->p[b->len] = '\0';     /* util.h: always terminated, even when empty */
}

void buf_add(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return;
	}
	buf_reserve(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(struct buf *b)
{
	if (b->p == NULL)
		return xstrdup("");
	char *p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

bool str_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

char *str_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

bool str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char v6[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);
	if (str_ieq(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		host = v6;
	}
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int fd_each_open(bool (*fn)(int fd, void *ctx), void *ctx)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	bool hit = false;
	struct dirent *e;
	while (!hit && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			hit = fn(atoi(e->d_name), ctx);
	closedir(d);
	return hit ? 1 : 0;
}

char *str_lower_ascii(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **strv_add(char **v, const char *s)
{
	size_t n = strv_len(v);
	v = xreallocarray(v, n + 2, sizeof(*v));
	v[n] = xstrdup(s);
	v[n + 1] = NULL;
	return v;
}

bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int file_read(const char *path, size_t max, struct buf *out, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return seterr(err, "%s: %s", path, strerror(errno));
	buf_reset(out);
	for (;;) {
		buf_reserve(out, 65536);
		ssize_t r = read(fd, out->p + out->len, out->cap - out->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return seterr(err, "%s: read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		out->p[out->len] = '\0';
		if (max && out->len > max) {
			close(fd);
			return seterr(err, "%s: larger than %zu bytes", path, max);
		}
	}
	close(fd);
	if (out->p == NULL)
		buf_reserve(out, 0);
	out->p[out->len] = '\0';
	return 0;
}

static char *dir_of(const char *path)
{
	char *tmp = xstrdup(path);
	char *d = xstrdup(dirname(tmp));
	free(tmp);
	return d;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fd_write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_replace(const char *path, const void *data, size_t n, mode_t mode,
			 bool durable, char **err)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		seterr(err, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	const char *step = "write";
	if (fd_write_all(fd, data, n) < 0)
		goto fail;
	step = "fsync";
	if (durable && fsync(fd) < 0)
		goto fail;
	step = "close";
	int rc = close(fd);
	fd = -1;
	if (rc < 0)
		goto fail;
	step = "rename";
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	if (durable) {
		char *dir = dir_of(path);
		int r = fsync_dir(dir, err);
		free(dir);
		return r;
	}
	return 0;
fail:
	seterr(err, "%s: %s: %s", path, step, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}

int file_write_atomic(const char *path, const void *data, size_t n, mode_t mode, char **err)
{
	return write_replace(path, data, n, mode, true, err);
}

int file_write_replace(const char *path, const void *data, size_t n, mode_t mode, char **err)
{
	return write_replace(path, data, n, mode, false, err);
}

int fsync_dir(const char *dir, char **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return seterr(err, "%s: %s", dir, strerror(errno));
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return seterr(err, "%s: fsync: %s", dir, strerror(e));
	}
	close(fd);
	return 0;
}

int mkdir_p(const char *path, mode_t mode, char **err)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			seterr(err, "%s: mkdir: %s", p, strerror(errno));
			free(p);
			return -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return 0;
}

int file_check_private(const char *path, char **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return seterr(err, "%s: %s", path, strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return seterr(err, "%s: holds a secret but is readable by others "
			      "(mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return seterr(err, "%s: holds a secret but is owned by another user", path);
	return 0;
}

int secret_read(const char *path, char **out, char **err)
{
	if (file_check_private(path, err) < 0)
		return -1;
	struct buf b = BUF_INIT;
	if (file_read(path, 65536, &b, err) < 0) {
		buf_free(&b);
		return -1;
	}
	size_t n = strcspn(b.p, "\r\n");
	while (n > 0 && isspace((unsigned char)b.p[n - 1]))
		n--;
	if (n == 0) {
		secure_free(buf_steal(&b));
		return seterr(err, "%s: empty secret file", path);
	}
	*out = xstrndup(b.p, n);
	explicit_bzero(b.p, b.len);
	buf_free(&b);
	return 0;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *time_fmt_utc(time_t t, char *out, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

int time_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	if (*p == '.')
		while (*++p >= '0' && *p <= '9')
			;
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return -1;
		off = (hh * 60 + mm) * 60L * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*out = timegm(&tm) - off;
	return 0;
}

void secure_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, n, d) < 0)
		fatalx("sha256: digest failed");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}
