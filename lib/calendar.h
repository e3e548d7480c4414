/*
 * calendar.h: working time in the institution's timezone.
 *
 * Working days are Monday to Friday minus holidays; working hours are
 * [workflow] work_start..work_end. The holidays file has one date per line,
 * optionally with the time from which the day is off (a half day):
 *
 *   2027-01-01            Yılbaşı
 *   2027-10-28 13:00      Cumhuriyet Bayramı arifesi (afternoon off)
 *
 * Text after the date (and time) is a comment; it must not start with a
 * digit (a token after the date that does is read as the time). Lines
 * starting with # are comments. Errors (bad date, bad time, duplicate date)
 * are reported as file:line; cal_create then fails after reading the
 * whole file.
 *
 * A half day is a working day whose working hours (and SMS hours, and
 * reminder passes) end at its time. Working time is the half-open interval
 * [work_start, work_end): 17:30 itself is outside.
 *
 * Every search for working time is bounded: if none is found within three
 * years (a holidays file that blocks every day, or a longer period), the
 * functions return the instant three years on and log a warning; they
 * never loop without end. Each call costs O(days walked).
 *
 * All times are time_t (UTC seconds); conversion to local time uses the
 * configured timezone (the process's TZ is set to it at start-up; the
 * calendar never reads the environment itself after cal_create).
 *
 * Ownership: cal_create returns a calendar freed by cal_free; it does not
 * keep a pointer to the config.
 */
#ifndef EIMZA_CALENDAR_H
#define EIMZA_CALENDAR_H

#include "config.h"

struct calendar;

/* holidays_file may be NULL or "" (no holidays) or a missing file (an error). */
int cal_create(const struct conf_workflow *w, const char *holidays_file,
	       struct calendar **out, struct conf_errors *errs);
void cal_free(struct calendar *cal);

/* t + p: calendar periods add plainly (months by calendar month, same day
 * or the month's last day); working minutes count only working time; working
 * days count whole working days and land at the same clock time (or at
 * the start of working hours of the next working day if t was outside).
 * If that clock time is off on the day reached (a half day), the result is
 * the next working time after it. A period of 0 (off) returns t. */
time_t cal_add(const struct calendar *cal, time_t t, const struct period *p);

/* t - p in calendar time, for retention and cut-offs that reach back:
 * seconds plainly, months by calendar month (clamped to the month's last
 * day); working units are taken as calendar days / minutes, since going
 * back over holidays would only shift an already coarse limit. */
time_t cal_sub(time_t t, const struct period *p);

bool cal_is_working_day(const struct calendar *cal, time_t t);
bool cal_is_working_time(const struct calendar *cal, time_t t);
/* The first instant >= t that lies in working time. */
time_t cal_next_working_time(const struct calendar *cal, time_t t);
/* The first instant >= t at which an SMS may go (sms_start..sms_end on a
 * working day, and not in a holiday's off time). */
time_t cal_next_sms_time(const struct calendar *cal, time_t t);
/* The first reminder pass time (one of [workflow] reminder_passes on a
 * working day) strictly after t. */
time_t cal_next_pass(const struct calendar *cal, time_t t);
/* The start (work_start) of the first working day strictly after the
 * next occurrence of weekday wday on or after t: the day after posting. */
time_t cal_day_after_weekday(const struct calendar *cal, time_t t, int wday);
/* Local date as "YYYY-MM-DD" and "YYYY-MM-DD HH:MM" for notices. */
char *cal_fmt_date(time_t t, char *buf, size_t len);
char *cal_fmt_datetime(time_t t, char *buf, size_t len);
/* Parse local "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (eimzad --now, import
 * `since`); -1 if malformed. */
int cal_parse_local(const char *s, time_t *out);

#endif
