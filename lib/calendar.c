/*
 * calendar.c: see calendar.h.
 *
 * Every rule of the working calendar is stated in wall-clock terms ("08:30
 * to 17:30 on weekdays"), so the code works on local civil time: a day
 * number (days since 1970-01-01 in the proleptic Gregorian calendar) plus
 * seconds since local midnight. An instant enters through localtime_r()
 * and leaves through mktime() once, at the end; days in between are walked
 * with plain integer arithmetic. This keeps the arithmetic right in a zone
 * with DST (the day of a change has 23 or 25 hours, but working hours are
 * still 08:30..17:30 by the wall clock) and makes a walk cost a few integer
 * operations and a holiday lookup per day.
 *
 * Every walk is bounded by CAL_HORIZON_DAYS: a holidays file that blocks
 * every day (or a period longer than the horizon) yields the instant at the
 * horizon, with a warning, instead of a hang.
 */
#include "calendar.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct holiday {
	int64_t day;            /* civil day number */
	int off;                /* seconds since midnight from which it is off; 0 = all day */
	int line;               /* where it was written, for duplicate reports */
};

struct calendar {
	int work_start, work_end;       /* seconds since midnight */
	int sms_start, sms_end;
	int *passes;                    /* seconds since midnight, ascending, unique */
	size_t npasses;
	struct holiday *hol;            /* ascending by day */
	size_t nhol;
};

/* A local wall-clock time. */
struct lt {
	int64_t day;
	int sec;
};

/* ---- civil dates ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Day number of y-m-d (m 1..12), counting from 1970-01-01. Works in
 * 400-year eras of 146097 days, with years starting on March 1 so that the
 * leap day is the last day of the year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;                                   /* 0..399 */
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int len[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* 0 = Sunday .. 6 = Saturday; 1970-01-01 was a Thursday. */
static int weekday(int64_t day)
{
	return (int)(((day + 4) % 7 + 7) % 7);
}

static struct lt to_local(time_t t)
{
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL)
		return (struct lt){ 0, 0 };
	int s = tm.tm_sec > 59 ? 59 : tm.tm_sec;
	return (struct lt){ days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday),
			    tm.tm_hour * 3600 + tm.tm_min * 60 + s };
}

/* The instant of a local wall-clock time; mktime() resolves the zone's
 * offset (and DST) for that date. */
static time_t from_local(int64_t day, int64_t sec)
{
	int64_t y;
	int m, d;
	day += floor_div(sec, 86400);
	sec -= floor_div(sec, 86400) * 86400;
	civil_from_days(day, &y, &m, &d);
	struct tm tm = {
		.tm_year = (int)(y - 1900), .tm_mon = m - 1, .tm_mday = d,
		.tm_hour = (int)(sec / 3600), .tm_min = (int)(sec / 60 % 60), .tm_sec = (int)(sec % 60),
		.tm_isdst = -1,
	};
	return mktime(&tm);
}

/* ---- the rules of one day ---- */

#define CAL_HORIZON_DAYS (3 * 366)

/* From when the day is off (seconds), or -1 if it is no holiday. */
static int holiday_off(const struct calendar *c, int64_t day)
{
	size_t lo = 0, hi = c->nhol;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->hol[mid].day < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nhol && c->hol[lo].day == day ? c->hol[lo].off : -1;
}

/* The part of [start, end) (seconds) that is not off on this day, in
 * [*from, *to); false if the day has none (weekend, holiday, or a half day
 * that is off before start). */
static bool day_window(const struct calendar *c, int64_t day, int start, int end,
		       int *from, int *to)
{
	int wd = weekday(day);
	if (wd == 0 || wd == 6)
		return false;
	int off = holiday_off(c, day);
	if (off >= 0 && off < end)
		end = off;
	if (start >= end)
		return false;
	*from = start;
	*to = end;
	return true;
}

static time_t horizon(const struct lt *at)
{
	log_warnx("calendar: no working time within %d days; check the holidays file and "
		  "[workflow] hours", CAL_HORIZON_DAYS);
	return from_local(at->day + CAL_HORIZON_DAYS, at->sec);
}

/* The first local time >= at inside a day's [start, end) window. */
static int next_in_window(const struct calendar *c, struct lt at, int start, int end,
			  struct lt *out)
{
	for (int i = 0; i <= CAL_HORIZON_DAYS; i++) {
		int from, to;
		if (!day_window(c, at.day + i, start, end, &from, &to))
			continue;
		if (i > 0) {
			*out = (struct lt){ at.day + i, from };
			return 0;
		}
		if (at.sec < to) {
			*out = (struct lt){ at.day, at.sec > from ? at.sec : from };
			return 0;
		}
	}
	return -1;
}

/* The first instant >= t inside the [start, end) windows; t itself when it
 * is inside (no round trip through mktime, which is ambiguous in the hour a
 * DST change repeats). */
static time_t next_window_time(const struct calendar *c, time_t t, int start, int end)
{
	struct lt at = to_local(t), r;
	if (next_in_window(c, at, start, end, &r) < 0)
		return horizon(&at);
	if (r.day == at.day && r.sec == at.sec)
		return t;
	return from_local(r.day, r.sec);
}

/* ---- adding periods ---- */

static time_t add_seconds(time_t t, int64_t n)
{
	time_t r;
	if (__builtin_add_overflow(t, n, &r))
		return t;
	return r;
}

static time_t add_months(time_t t, int64_t n)
{
	struct tm tm;
	if (n > 12 * 1000 || localtime_r(&t, &tm) == NULL)
		return t;
	int64_t mi = (int64_t)tm.tm_year * 12 + tm.tm_mon + n;
	int64_t y = floor_div(mi, 12);
	int m = (int)(mi - y * 12);
	int dim = days_in_month(y + 1900, m + 1);
	tm.tm_year = (int)y;
	tm.tm_mon = m;
	if (tm.tm_mday > dim)
		tm.tm_mday = dim;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static time_t add_work_minutes(const struct calendar *c, time_t t, int64_t minutes)
{
	struct lt at = to_local(t);
	int64_t left = minutes * 60;
	for (int i = 0; i <= CAL_HORIZON_DAYS; i++) {
		int from, to;
		if (!day_window(c, at.day + i, c->work_start, c->work_end, &from, &to))
			continue;
		int pos = (i == 0 && at.sec > from) ? at.sec : from;
		if (pos >= to)
			continue;
		if (left <= to - pos)
			return from_local(at.day + i, pos + left);
		left -= to - pos;
	}
	return horizon(&at);
}

/* Count whole working days from the first working time at or after t and
 * keep its clock time; if that clock time is off on the day reached (a half
 * day), move on to the next working time. */
static time_t add_work_days(const struct calendar *c, time_t t, int64_t n)
{
	struct lt at = to_local(t), start, r;
	if (next_in_window(c, at, c->work_start, c->work_end, &start) < 0)
		return horizon(&at);
	int64_t left = n;
	int64_t day = start.day;
	for (int i = 1; i <= CAL_HORIZON_DAYS && left > 0; i++) {
		int from, to;
		day = start.day + i;
		if (day_window(c, day, c->work_start, c->work_end, &from, &to))
			left--;
	}
	if (left > 0)
		return horizon(&at);
	if (next_in_window(c, (struct lt){ day, start.sec }, c->work_start, c->work_end, &r) < 0)
		return horizon(&at);
	return from_local(r.day, r.sec);
}

time_t cal_add(const struct calendar *cal, time_t t, const struct period *p)
{
	if (p->n <= 0)
		return t;
	switch (p->unit) {
	case PERIOD_SECONDS:
		return add_seconds(t, p->n);
	case PERIOD_MONTHS:
		return add_months(t, p->n);
	case PERIOD_WORK_MINUTES:
		return add_work_minutes(cal, t, p->n);
	case PERIOD_WORK_DAYS:
		return add_work_days(cal, t, p->n);
	}
	return t;
}

/* ---- questions about an instant ---- */

bool cal_is_working_day(const struct calendar *cal, time_t t)
{
	int from, to;
	return day_window(cal, to_local(t).day, cal->work_start, cal->work_end, &from, &to);
}

bool cal_is_working_time(const struct calendar *cal, time_t t)
{
	struct lt at = to_local(t);
	int from, to;
	return day_window(cal, at.day, cal->work_start, cal->work_end, &from, &to) &&
	       at.sec >= from && at.sec < to;
}

time_t cal_next_working_time(const struct calendar *cal, time_t t)
{
	return next_window_time(cal, t, cal->work_start, cal->work_end);
}

time_t cal_next_sms_time(const struct calendar *cal, time_t t)
{
	return next_window_time(cal, t, cal->sms_start, cal->sms_end);
}

time_t cal_next_pass(const struct calendar *cal, time_t t)
{
	struct lt at = to_local(t);
	for (int i = 0; i <= CAL_HORIZON_DAYS && cal->npasses > 0; i++) {
		int64_t day = at.day + i;
		int wd = weekday(day);
		if (wd == 0 || wd == 6)
			continue;
		int off = holiday_off(cal, day);
		for (size_t k = 0; k < cal->npasses; k++) {
			int p = cal->passes[k];
			if (off >= 0 && p >= off)
				break;
			if (i == 0 && p <= at.sec)
				continue;
			return from_local(day, p);
		}
	}
	return horizon(&at);
}

time_t cal_day_after_weekday(const struct calendar *cal, time_t t, int wday)
{
	struct lt at = to_local(t);
	int64_t posting = at.day + ((wday % 7 + 7) % 7 - weekday(at.day) + 7) % 7;
	for (int i = 1; i <= CAL_HORIZON_DAYS; i++) {
		int from, to;
		if (day_window(cal, posting + i, cal->work_start, cal->work_end, &from, &to))
			return from_local(posting + i, from);
	}
	return horizon(&at);
}

/* ---- formatting and parsing ---- */

char *cal_fmt_date(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	return buf;
}

char *cal_fmt_datetime(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min);
	return buf;
}

/* n decimal digits, exactly. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "YYYY-MM-DD" at s, exactly 10 characters; the day number in *day. */
static int parse_date(const char *s, int64_t *day)
{
	int y, m, d;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return -1;
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	*day = days_from_civil(y, m, d);
	return 0;
}

/* "HH:MM" or "H:MM" (00:00..23:59), whole string; seconds in *sec. */
static int parse_hhmm(const char *s, int *sec)
{
	int h, m;
	size_t hl = strcspn(s, ":");
	if ((hl != 1 && hl != 2) || strlen(s) != hl + 3 || !digits(s, (int)hl, &h) ||
	    !digits(s + hl + 1, 2, &m) || h > 23 || m > 59)
		return -1;
	*sec = h * 3600 + m * 60;
	return 0;
}

int cal_parse_local(const char *s, time_t *out)
{
	int64_t day;
	int sec = 0;
	size_t n = strlen(s);
	if ((n != 10 && n != 16) || parse_date(s, &day) < 0)
		return -1;
	if (n == 16 && (s[10] != ' ' || parse_hhmm(s + 11, &sec) < 0))
		return -1;
	time_t t = from_local(day, sec);
	if (t == (time_t)-1)
		return -1;
	*out = t;
	return 0;
}

/* ---- the holidays file ---- */

struct hol_reader {
	const char *file;
	struct holiday *v;
	size_t n, cap;
	struct conf_errors *errs;
	size_t nerr;
};

/* Cut the next blank-separated token off *s (in place). */
static char *next_token(char **s)
{
	char *p = *s + strspn(*s, " \t");
	char *end = p + strcspn(p, " \t");
	if (*end != '\0')
		*end++ = '\0';
	*s = end;
	return p;
}

static void holiday_add(struct hol_reader *r, int64_t day, int off, int line)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].day != day)
			continue;
		char d[16];
		int64_t y;
		int m, dd;
		civil_from_days(day, &y, &m, &dd);
		snprintf(d, sizeof(d), "%04d-%02d-%02d", (int)y, m, dd);
		conf_errors_add(r->errs, r->file, line, "duplicate date %s (first on line %d)",
				d, r->v[i].line);
		r->nerr++;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 32;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n++] = (struct holiday){ day, off, line };
}

/* One line: "YYYY-MM-DD [HH:MM] [comment]". A token after the date that
 * starts with a digit is the time; anything else starts the comment. */
static void holiday_line(struct hol_reader *r, char *line, int lineno)
{
	line[strcspn(line, "\r\n")] = '\0';
	char *s = line + strspn(line, " \t");
	if (*s == '\0' || *s == '#')
		return;
	char *date = next_token(&s);
	int64_t day;
	int off = 0;
	if (strlen(date) != 10 || parse_date(date, &day) < 0) {
		conf_errors_add(r->errs, r->file, lineno, "bad date '%.32s' (expected YYYY-MM-DD)",
				date);
		r->nerr++;
		return;
	}
	s += strspn(s, " \t");
	if (isdigit((unsigned char)*s)) {
		char *hm = next_token(&s);
		if (parse_hhmm(hm, &off) < 0) {
			conf_errors_add(r->errs, r->file, lineno,
					"bad time '%.32s' (expected HH:MM, 00:00..23:59)", hm);
			r->nerr++;
			return;
		}
	}
	holiday_add(r, day, off, lineno);
}

static int cmp_holiday(const void *a, const void *b)
{
	const struct holiday *x = a, *y = b;
	return (x->day > y->day) - (x->day < y->day);
}

static int holidays_read(struct calendar *c, const char *path, struct conf_errors *errs)
{
	FILE *fp = fopen(path, "re");
	if (fp == NULL) {
		conf_errors_add(errs, path, 0, "%s", strerror(errno));
		return -1;
	}
	struct hol_reader r = { .file = path, .errs = errs };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;
	while ((n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			conf_errors_add(errs, path, lineno, "NUL byte in line");
			r.nerr++;
			continue;
		}
		holiday_line(&r, line, lineno);
	}
	free(line);
	fclose(fp);
	qsort(r.v, r.n, sizeof(*r.v), cmp_holiday);
	c->hol = r.v;
	c->nhol = r.n;
	return r.nerr ? -1 : 0;
}

/* ---- life cycle ---- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void copy_passes(struct calendar *c, const int *passes)
{
	size_t n = 0;
	while (passes && passes[n] >= 0)
		n++;
	c->passes = xcalloc(n ? n : 1, sizeof(int));
	for (size_t i = 0; i < n; i++)
		c->passes[i] = passes[i] * 60;
	qsort(c->passes, n, sizeof(int), cmp_int);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || c->passes[u - 1] != c->passes[i])
			c->passes[u++] = c->passes[i];
	c->npasses = u;
}

int cal_create(const struct conf_workflow *w, const char *holidays_file,
	       struct calendar **out, struct conf_errors *errs)
{
	*out = NULL;
	struct calendar *c = xcalloc(1, sizeof(*c));
	c->work_start = w->work_start * 60;
	c->work_end = w->work_end * 60;
	c->sms_start = w->sms_start * 60;
	c->sms_end = w->sms_end * 60;
	copy_passes(c, w->reminder_passes);
	int rc = 0;
	if (c->work_start >= c->work_end) {
		conf_errors_add(errs, "[workflow]", 0, "work_start must be before work_end");
		rc = -1;
	}
	if (c->sms_start >= c->sms_end) {
		conf_errors_add(errs, "[workflow]", 0, "sms_start must be before sms_end");
		rc = -1;
	}
	if (!str_empty(holidays_file) && holidays_read(c, holidays_file, errs) < 0)
		rc = -1;
	if (rc < 0) {
		cal_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void cal_free(struct calendar *cal)
{
	if (cal == NULL)
		return;
	free(cal->passes);
	free(cal->hol);
	free(cal);
}

time_t cal_sub(time_t t, const struct period *p)
{
	switch (p->unit) {
	case PERIOD_SECONDS:
		return t - (time_t)p->n;
	case PERIOD_WORK_MINUTES:
		return t - (time_t)p->n * 60;
	case PERIOD_WORK_DAYS:
		return t - (time_t)p->n * 86400;
	case PERIOD_MONTHS:
		break;
	}
	struct tm tm;
	localtime_r(&t, &tm);
	int mday = tm.tm_mday;
	long months = (long)tm.tm_year * 12 + tm.tm_mon - (long)p->n;
	tm.tm_year = (int)(months / 12);
	tm.tm_mon = (int)(months % 12);
	/* Clamp to the target month's last day (Mar 31 - 1mo = Feb 28/29). */
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y = tm.tm_year + 1900, last = mdays[tm.tm_mon];
	if (tm.tm_mon == 1 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		last = 28;
	tm.tm_mday = mday > last ? last : mday;
	tm.tm_isdst = -1;
	return mktime(&tm);
}
