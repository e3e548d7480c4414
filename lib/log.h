/*
 * log.h: the daemon's and the tool's logging.
 *
 * One line per call, written with a single write(2) so that lines from
 * several threads never interleave. In the foreground lines go to stderr
 * with a time stamp; under systemd (JOURNAL_STREAM set) they go to stderr
 * with a "<N>" priority prefix, which the journal understands.
 *
 * Callers prefix their messages with the module: "imap: idle: lost".
 * Secrets must never be formatted into a message; TC kimlik numbers and
 * phone numbers go through mask_tc() / mask_phone() first.
 *
 * The log level is the one process-wide mutable global of the program.
 */
#ifndef EIMZA_LOG_H
#define EIMZA_LOG_H

#include "util.h"

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* ident: program name; verbose: raise the level to debug. */
void log_init(const char *ident, bool verbose);
void log_setlevel(enum log_level lvl);
enum log_level log_getlevel(void);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Log at error level and exit(1): for broken internal invariants only. */
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;
void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;

/* Masks for personal data in log lines. Both write into out (>= 24 bytes)
 * and return it. A TC number keeps its first 2 and last 2 digits
 * ("12*******90"); a phone number keeps its last 2 ("+90*******34"). */
char *mask_tc(const char *tc, char *out, size_t len);
char *mask_phone(const char *phone, char *out, size_t len);

#endif
