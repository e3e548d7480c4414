/*
 * util.h: memory, growable buffers, small string and file helpers.
 *
 * Contract:
 * - x*alloc() never return NULL: out-of-memory is fatal here and only here.
 * - struct buf owns its bytes; buf_free() releases them; buf.p is always
 *   NUL-terminated after any buf_* call (len excludes the NUL), so it can be
 *   handed to string functions, but it may hold embedded NULs.
 * - Functions returning int return 0 on success and -1 on failure with a
 *   message in *err (allocated, owned by the caller, free() it); err may be
 *   NULL when the caller does not want the message.
 */
#ifndef EIMZA_UTIL_H
#define EIMZA_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* xreallocarray: overflow-checked; fatal on overflow like on OOM. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* xstrdup_opt: NULL stays NULL. */
char *xstrdup_opt(const char *s);
/* xstrndup copies at most n bytes and NUL-terminates. */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);

/* Set *err (if err is not NULL) to a new formatted message; returns -1 so
 * that callers can write `return seterr(err, "...")`. Frees a previous *err. */
int seterr(char **err, const char *fmt, ...) PRINTF_LIKE(2, 3);

struct buf {
	char *p;
	size_t len;
	size_t cap;
};
#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hand the bytes over to the caller (NUL-terminated); b becomes empty. */
char *buf_steal(struct buf *b);

/* String helpers. */
bool str_empty(const char *s);
char *str_trim(char *s);                  /* in place; returns s moved past leading space */
bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* ASCII-only case-insensitive compare (for protocol tokens, not Turkish text). */
bool str_ieq(const char *a, const char *b);
/* Lowercase ASCII letters in place (domains, addresses). */
char *str_lower_ascii(char *s);
/* "localhost", an IPv4 address in 127.0.0.0/8 or ::1 (also as "[::1]",
 * the way a URL writes it): where plain text may go. A name that merely
 * starts with "127." is not one. */
bool host_is_loopback(const char *host);
/* Call fn for each file descriptor this process has open (from
 * /proc/self/fd) until it returns true. Returns 1 if fn returned true,
 * 0 if it never did, -1 with errno if the list cannot be read. */
int fd_each_open(bool (*fn)(int fd, void *ctx), void *ctx);
/* Free a NULL-terminated vector of strings and the vector. */
void strv_free(char **v);
size_t strv_len(char *const *v);
/* Append a copy of s to a NULL-terminated vector (which may be NULL). */
char **strv_add(char **v, const char *s);
bool strv_contains(char *const *v, const char *s);

/* Write all n bytes (retrying short writes and EINTR): 0, or -1 with errno. */
int fd_write_all(int fd, const void *data, size_t n);
/* The value of a hexadecimal digit, or -1. */
int hex_value(char c);

/* Files. */
/* Read a whole file (max bytes; 0 = no limit). */
int file_read(const char *path, size_t max, struct buf *out, char **err);
/* Write data to path atomically: temp file in the same directory (mode
 * `mode`), write, fflush, fsync, close, rename, fsync of the directory.
 * The temp file is removed on any failure. */
int file_write_atomic(const char *path, const void *data, size_t n, mode_t mode, char **err);
/* Same, without the two fsyncs: for files whose durability comes from
 * elsewhere (the store's journal). */
int file_write_replace(const char *path, const void *data, size_t n, mode_t mode, char **err);
int fsync_dir(const char *dir, char **err);
/* mkdir -p with the given mode for directories it creates. */
int mkdir_p(const char *path, mode_t mode, char **err);
/* Refuse a secret-bearing file that is group- or world-accessible or not
 * owned by us or root. */
int file_check_private(const char *path, char **err);
/* Read a secret from a file: first line, trailing newline/space stripped.
 * Checks file_check_private() first. */
int secret_read(const char *path, char **out, char **err);

/* Time. */
/* Monotonic milliseconds, for timeouts and measurements. */
int64_t mono_ms(void);
/* Format a time as RFC 3339 in UTC ("2026-11-25T10:00:00Z"). buf >= 32. */
char *time_fmt_utc(time_t t, char *buf, size_t len);
/* Parse RFC 3339 ("...Z" or with offset); returns -1 if malformed. */
int time_parse_rfc3339(const char *s, time_t *out);

/* SHA-256 of data as 64 lowercase hex digits + NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

/* Wipe memory that held a secret before freeing it. */
void secure_free(char *s);

#endif
