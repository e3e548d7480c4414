/* log.c: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static enum log_level log_level = LOG_LVL_INFO;
static const char *log_ident = "eimzad";
static bool log_journal;

void log_init(const char *ident, bool verbose)
{
	log_ident = ident;
	log_level = verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_setlevel(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level log_getlevel(void)
{
	return log_level;
}

static void vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);
static void vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	if (lvl > log_level)
		return;
	char line[4096];
	size_t n = 0;
	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)lvl);
	} else {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: ",
				      (long)(tv.tv_usec / 1000), log_ident);
	}
	int r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = r < 0 ? n : n + (size_t)r;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (errnum)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

#define LOGFN(name, lvl, with_errno)                 \
	void name(const char *fmt, ...)              \
	{                                            \
		int e = errno;                       \
		va_list ap;                          \
		va_start(ap, fmt);                   \
		vlog(lvl, with_errno ? e : 0, fmt, ap); \
		va_end(ap);                          \
		errno = e;                           \
	}

LOGFN(log_warn, LOG_LVL_WARN, 1)
LOGFN(log_warnx, LOG_LVL_WARN, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug, LOG_LVL_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

static char *mask_keep(const char *s, size_t head, size_t tail, char *out, size_t len)
{
	size_t n = s ? strlen(s) : 0;
	if (len == 0)
		return out;
	if (n <= head + tail) {
		snprintf(out, len, "%s", n ? "***" : "");
		return out;
	}
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++)
		out[o++] = (i < head || i >= n - tail) ? s[i] : '*';
	out[o] = '\0';
	return out;
}

char *mask_tc(const char *tc, char *out, size_t len)
{
	return mask_keep(tc, 2, 2, out, len);
}

char *mask_phone(const char *phone, char *out, size_t len)
{
	size_t head = (phone && phone[0] == '+') ? 3 : 0;
	return mask_keep(phone, head, 2, out, len);
}
