/* Unit tests of the working-time calendar: table-driven rows of
 * (start local time, period or question, expected local time) in
 * Europe/Istanbul with 08:30-17:30 working hours, 09:00-19:00 SMS hours and
 * passes at 09:00 and 14:00, plus one zone with DST (Europe/Berlin) and the
 * holidays file's errors. */
#include "testutil.h"

#include "calendar.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* A synthetic holidays file for the tests: 2026-06-08 is a Monday made a
 * holiday here (it is no real one); 2027-10-28/29 are the real Cumhuriyet
 * Bayramı arife (half day) and day. */
static const char test_holidays[] =
	"# synthetic test holidays\n"
	"2026-01-01 Yılbaşı\n"
	"2026-06-08 a Monday holiday (synthetic)\n"
	"2027-10-28 13:00 Cumhuriyet Bayramı arifesi\n"
	"2027-10-29 Cumhuriyet Bayramı\n";

struct fixture {
	char *dir;
	struct calendar *cal;
};

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static time_t at(const char *s)
{
	time_t t;
	if (cal_parse_local(s, &t) < 0)
		fail_msg("bad test time '%s'", s);
	return t;
}

static struct calendar *make_cal(const char *holidays_path)
{
	struct config c;
	struct conf_errors e = { 0 };
	struct calendar *cal;
	config_defaults(&c);
	if (cal_create(&c.workflow, holidays_path, &cal, &e) < 0)
		fail_msg("cal_create: %s", e.n ? e.msgs[0] : "?");
	config_free(&c);
	return cal;
}

static int setup(void **state)
{
	set_tz("Europe/Istanbul");
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	char *path = tu_write(f->dir, "holidays.conf", test_holidays);
	f->cal = make_cal(path);
	free(path);
	*state = f;
	return 0;
}

/* Every test starts in the daemon's zone, even after a failed one. */
static int tz_istanbul(void **state)
{
	(void)state;
	set_tz("Europe/Istanbul");
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cal_free(f->cal);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

struct add_row {
	const char *start, *period, *want;
};

static void check_add_rows(const struct calendar *cal, const struct add_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct period p;
		char *err = NULL, got[32];
		if (period_parse(rows[i].period, &p, &err) < 0)
			fail_msg("row %zu: %s", i, err);
		cal_fmt_datetime(cal_add(cal, at(rows[i].start), &p), got, sizeof(got));
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu: %s + %s = %s, want %s", i, rows[i].start, rows[i].period,
				 got, rows[i].want);
	}
}

static void test_add(void **state)
{
	struct fixture *f = *state;
	static const struct add_row rows[] = {
		/* working hours over a weekend, a holiday Monday, a half day */
		{ "2026-06-12 16:00", "4wh", "2026-06-15 11:00" },
		{ "2026-06-05 16:00", "4wh", "2026-06-09 11:00" },
		{ "2027-10-27 16:00", "4wh", "2027-10-28 11:00" },
		{ "2027-10-28 11:00", "4wh", "2027-11-01 10:30" },
		{ "2027-10-28 14:00", "1wh", "2027-11-01 09:30" },
		/* starting outside working time */
		{ "2026-06-15 07:00", "4wh", "2026-06-15 12:30" },
		{ "2026-06-15 18:00", "4wh", "2026-06-16 12:30" },
		{ "2026-06-13 10:00", "4wh", "2026-06-15 12:30" },
		/* exactly at the boundaries ([08:30, 17:30)) */
		{ "2026-06-15 08:30", "9wh", "2026-06-15 17:30" },
		{ "2026-06-15 13:30", "4wh", "2026-06-15 17:30" },
		{ "2026-06-15 17:30", "1wm", "2026-06-16 08:31" },
		{ "2026-06-15 17:29", "1wm", "2026-06-15 17:30" },
		{ "2026-06-15 17:29", "2wm", "2026-06-16 08:31" },
		{ "2026-06-15 08:30", "18wh", "2026-06-16 17:30" },
		{ "2026-06-15 08:30", "45wh", "2026-06-19 17:30" },
		/* working days: same clock time, or from the next day's start */
		{ "2026-06-12 17:00", "1wd", "2026-06-15 17:00" },
		{ "2026-06-12 18:00", "1wd", "2026-06-16 08:30" },
		{ "2026-06-13 12:00", "1wd", "2026-06-16 08:30" },
		{ "2026-06-04 10:00", "2wd", "2026-06-09 10:00" },
		{ "2026-06-15 10:00", "5wd", "2026-06-22 10:00" },
		{ "2027-10-27 11:00", "1wd", "2027-10-28 11:00" },
		{ "2027-10-27 15:00", "1wd", "2027-11-01 08:30" },
		/* calendar months, clamped to the month's last day */
		{ "2026-01-31 10:00", "1mo", "2026-02-28 10:00" },
		{ "2028-01-31 10:00", "1mo", "2028-02-29 10:00" },
		{ "2026-08-31 09:00", "6mo", "2027-02-28 09:00" },
		{ "2026-12-15 09:00", "2mo", "2027-02-15 09:00" },
		{ "2026-05-10 09:00", "12mo", "2027-05-10 09:00" },
		/* calendar seconds: plain addition, weekends included */
		{ "2026-06-12 16:00", "7d", "2026-06-19 16:00" },
		{ "2026-06-12 16:00", "90m", "2026-06-12 17:30" },
		{ "2026-06-13 16:00", "30d", "2026-07-13 16:00" },
		/* zero is "off" */
		{ "2026-06-13 10:00", "0wh", "2026-06-13 10:00" },
	};
	check_add_rows(f->cal, rows, ARRAY_LEN(rows));
}

/* Europe/Berlin changes to summer time on 2026-03-29 and back on
 * 2026-10-25: working time is counted on the wall clock. */
static void test_add_dst_zone(void **state)
{
	struct fixture *f = *state;
	set_tz("Europe/Berlin");
	static const struct add_row rows[] = {
		{ "2026-03-27 16:00", "4wh", "2026-03-30 11:00" },
		{ "2026-10-23 16:00", "4wh", "2026-10-26 11:00" },
		{ "2026-03-27 10:00", "1wd", "2026-03-30 10:00" },
		{ "2026-03-15 10:00", "1mo", "2026-04-15 10:00" },
		/* plain seconds: 72 hours across the change is 17:00 by the clock */
		{ "2026-03-27 16:00", "3d", "2026-03-30 17:00" },
	};
	check_add_rows(f->cal, rows, ARRAY_LEN(rows));
	/* the spring Sunday has 23 hours: 1.5 + 2.5 working hours span
	 * 67 hours of wall clock but 66 hours of elapsed time */
	struct period p = { PERIOD_WORK_MINUTES, 240 };
	time_t t0 = at("2026-03-27 16:00");
	assert_int_equal(cal_add(f->cal, t0, &p) - t0, 66 * 3600);
}

/* Other working hours: with 08:30-17:00, Friday 16:00 + 4 working hours
 * is 1 hour on Friday and 3 on Monday. */
static void test_add_other_hours(void **state)
{
	(void)state;
	struct config c;
	struct conf_errors e = { 0 };
	struct calendar *cal;
	config_defaults(&c);
	c.workflow.work_end = 17 * 60;
	assert_int_equal(cal_create(&c.workflow, NULL, &cal, &e), 0);
	static const struct add_row rows[] = {
		{ "2026-06-12 16:00", "4wh", "2026-06-15 11:30" },
		{ "2026-06-12 17:00", "1wm", "2026-06-15 08:31" },
		{ "2026-06-12 16:59", "1wd", "2026-06-15 16:59" },
	};
	check_add_rows(cal, rows, ARRAY_LEN(rows));
	cal_free(cal);
	config_free(&c);
}

typedef time_t (*next_fn)(const struct calendar *, time_t);

struct next_row {
	const char *start, *want;
};

static void check_next_rows(const struct calendar *cal, next_fn fn, const char *what,
			    const struct next_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char got[32];
		cal_fmt_datetime(fn(cal, at(rows[i].start)), got, sizeof(got));
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s row %zu: from %s got %s, want %s", what, i, rows[i].start, got,
				 rows[i].want);
	}
}

static void test_next_sms_time(void **state)
{
	struct fixture *f = *state;
	static const struct next_row rows[] = {
		{ "2026-06-13 10:00", "2026-06-15 09:00" },  /* Saturday */
		{ "2026-06-15 19:00", "2026-06-16 09:00" },  /* the end is outside */
		{ "2026-06-15 08:59", "2026-06-15 09:00" },
		{ "2026-06-15 09:00", "2026-06-15 09:00" },
		{ "2026-06-15 18:59", "2026-06-15 18:59" },
		{ "2026-06-05 20:00", "2026-06-09 09:00" },  /* Friday, holiday Monday */
		{ "2027-10-28 12:59", "2027-10-28 12:59" },  /* half day, morning */
		{ "2027-10-28 13:00", "2027-11-01 09:00" },  /* half day, afternoon */
		{ "2027-10-28 14:00", "2027-11-01 09:00" },
	};
	check_next_rows(f->cal, cal_next_sms_time, "sms", rows, ARRAY_LEN(rows));
	/* inside the window the very instant comes back, seconds and all */
	time_t t = at("2026-06-15 10:00") + 17;
	assert_int_equal(cal_next_sms_time(f->cal, t), t);
}

static void test_next_working_time(void **state)
{
	struct fixture *f = *state;
	static const struct next_row rows[] = {
		{ "2026-06-15 08:29", "2026-06-15 08:30" },
		{ "2026-06-15 12:00", "2026-06-15 12:00" },
		{ "2026-06-15 17:30", "2026-06-16 08:30" },
		{ "2026-06-06 10:00", "2026-06-09 08:30" },  /* Saturday, holiday Monday */
		{ "2027-10-28 13:00", "2027-11-01 08:30" },
		{ "2025-12-31 18:00", "2026-01-02 08:30" },  /* over New Year */
	};
	check_next_rows(f->cal, cal_next_working_time, "work", rows, ARRAY_LEN(rows));
}

static void test_next_pass(void **state)
{
	struct fixture *f = *state;
	static const struct next_row rows[] = {
		{ "2026-06-12 15:00", "2026-06-15 09:00" },  /* Friday afternoon */
		{ "2026-06-12 09:00", "2026-06-12 14:00" },  /* strictly after */
		{ "2026-06-12 08:00", "2026-06-12 09:00" },
		{ "2026-06-13 10:00", "2026-06-15 09:00" },  /* Saturday */
		{ "2026-06-05 14:00", "2026-06-09 09:00" },  /* holiday Monday */
		{ "2027-10-28 08:00", "2027-10-28 09:00" },  /* half day keeps 09:00 */
		{ "2027-10-28 10:00", "2027-11-01 09:00" },  /* ... but not 14:00 */
	};
	check_next_rows(f->cal, cal_next_pass, "pass", rows, ARRAY_LEN(rows));
}

static void test_day_after_weekday(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *start;
		int wday;
		const char *want;
	} rows[] = {
		{ "2026-06-10 11:00", 5, "2026-06-15 08:30" },  /* Wednesday -> Friday -> Monday */
		{ "2026-06-03 11:00", 5, "2026-06-09 08:30" },  /* holiday Monday -> Tuesday */
		{ "2026-06-05 16:00", 5, "2026-06-09 08:30" },  /* on the posting day itself */
		{ "2026-06-06 10:00", 5, "2026-06-15 08:30" },  /* Saturday: next week's Friday */
		{ "2027-10-27 10:00", 3, "2027-10-28 08:30" },  /* a half day is a working day */
		{ "2027-10-28 10:00", 4, "2027-11-01 08:30" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		char got[32];
		cal_fmt_datetime(cal_day_after_weekday(f->cal, at(rows[i].start), rows[i].wday),
				 got, sizeof(got));
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu: got %s, want %s", i, got, rows[i].want);
	}
}

static void test_is_working(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *t;
		bool day, time;
	} rows[] = {
		{ "2026-06-15 08:29", true, false },
		{ "2026-06-15 08:30", true, true },
		{ "2026-06-15 17:29", true, true },
		{ "2026-06-15 17:30", true, false },
		{ "2026-06-13 10:00", false, false },  /* Saturday */
		{ "2026-06-08 10:00", false, false },  /* holiday */
		{ "2027-10-28 12:59", true, true },    /* half day */
		{ "2027-10-28 13:00", true, false },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		time_t t = at(rows[i].t);
		if (cal_is_working_day(f->cal, t) != rows[i].day ||
		    cal_is_working_time(f->cal, t) != rows[i].time)
			fail_msg("row %zu (%s): wrong answer", i, rows[i].t);
	}
}

static void test_parse_and_format(void **state)
{
	(void)state;
	char buf[32];
	time_t t;
	assert_int_equal(cal_parse_local("2026-06-15 10:00", &t), 0);
	assert_string_equal(time_fmt_utc(t, buf, sizeof(buf)), "2026-06-15T07:00:00Z");
	assert_string_equal(cal_fmt_datetime(t, buf, sizeof(buf)), "2026-06-15 10:00");
	assert_string_equal(cal_fmt_date(t, buf, sizeof(buf)), "2026-06-15");
	assert_int_equal(cal_parse_local("2026-06-15", &t), 0);
	assert_string_equal(cal_fmt_datetime(t, buf, sizeof(buf)), "2026-06-15 00:00");
	static const char *const bad[] = {
		"", "2026-02-30", "2026-13-01", "2026-1-01", "2026-01-01 8:30", "2026-01-01T10:00",
		"2026-01-01 24:00", "2026-01-01 10:60", "2026-01-01 10:00x", " 2026-01-01",
		"+026-01-01", "2026-01-01  10:00",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (cal_parse_local(bad[i], &t) == 0)
			fail_msg("'%s' parsed", bad[i]);
}

static void test_holiday_errors(void **state)
{
	struct fixture *f = *state;
	char *path = tu_write(f->dir, "bad.conf",
			      "# comment\n"                  /* 1 */
			      "2026-01-01 Yılbaşı\n"         /* 2 */
			      "2026-13-01 no such month\n"   /* 3 */
			      "2026-02-30\n"                 /* 4 */
			      "2026-05-01 25:00 bad hour\n"  /* 5 */
			      "2026-01-01 again\n"           /* 6 */
			      "nonsense\n"                   /* 7 */
			      "2026-05-19 13:5\n"            /* 8 */
			      "   \n"                        /* 9 */
			      "2026-10-28 13:00 fine\n"      /* 10 */
			      "\t2026-10-29\t# fine too\n"   /* 11 */
			      "2026-07-15 1 comment starting with a digit\n"); /* 12 */
	struct config c;
	struct conf_errors e = { 0 };
	struct calendar *cal = (struct calendar *)&e;
	config_defaults(&c);
	assert_int_equal(cal_create(&c.workflow, path, &cal, &e), -1);
	assert_null(cal);
	static const struct {
		int line;
		const char *what;
	} want[] = {
		{ 3, "bad date '2026-13-01'" }, { 4, "bad date '2026-02-30'" },
		{ 5, "bad time '25:00'" }, { 6, "duplicate date 2026-01-01 (first on line 2)" },
		{ 7, "bad date 'nonsense'" }, { 8, "bad time '13:5'" }, { 12, "bad time '1'" },
	};
	assert_int_equal(e.n, ARRAY_LEN(want));
	for (size_t i = 0; i < e.n; i++) {
		char *needle = xasprintf("bad.conf:%d: %s", want[i].line, want[i].what);
		if (strstr(e.msgs[i], needle) == NULL)
			fail_msg("error %zu '%s' lacks '%s'", i, e.msgs[i], needle);
		free(needle);
	}
	conf_errors_free(&e);

	/* a missing file is an error; no file at all is not */
	char *missing = xasprintf("%s/nope.conf", f->dir);
	assert_int_equal(cal_create(&c.workflow, missing, &cal, &e), -1);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.msgs[0], "nope.conf: No such file"));
	conf_errors_free(&e);
	assert_int_equal(cal_create(&c.workflow, NULL, &cal, &e), 0);
	cal_free(cal);
	assert_int_equal(cal_create(&c.workflow, "", &cal, &e), 0);
	cal_free(cal);
	assert_int_equal(e.n, 0);
	free(missing);
	free(path);
	config_free(&c);
}

/* The shipped file: loads cleanly and knows the fixed holidays. */
static void test_shipped_holidays(void **state)
{
	(void)state;
	char *path = xasprintf("%s/conf/holidays.conf", tu_srcdir());
	struct calendar *cal = make_cal(path);
	static const struct {
		const char *t;
		bool working;
	} rows[] = {
		{ "2026-01-01 10:00", false }, { "2026-01-02 10:00", true },
		{ "2026-04-23 10:00", false }, { "2026-05-01 10:00", false },
		{ "2026-05-19 10:00", false }, { "2026-07-15 10:00", false },
		{ "2026-10-28 12:59", true },  { "2026-10-28 13:00", false },
		{ "2026-10-29 10:00", false }, { "2027-01-01 10:00", false },
		{ "2027-04-23 10:00", false }, { "2027-05-19 10:00", false },
		{ "2027-07-15 10:00", false }, { "2027-10-28 12:00", true },
		{ "2027-10-28 13:30", false }, { "2027-10-29 10:00", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		if (cal_is_working_time(cal, at(rows[i].t)) != rows[i].working)
			fail_msg("shipped holidays: %s", rows[i].t);
	cal_free(cal);
	free(path);
}

/* A file that makes every day a holiday must not hang any search: each
 * answer comes back at the three-year horizon. */
static void test_blocked_calendar_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct buf b = BUF_INIT;
	time_t day = at("2026-01-01");
	for (int i = 0; i < 4 * 366; i++) {
		char d[16];
		buf_printf(&b, "%s\n", cal_fmt_date(day, d, sizeof(d)));
		day += 86400;
	}
	char *path = tu_write(f->dir, "all.conf", b.p);
	buf_free(&b);
	struct calendar *cal = make_cal(path);
	enum log_level lvl = log_getlevel();
	log_setlevel(LOG_LVL_ERR);      /* each call warns; expected here */
	time_t t = at("2026-01-05 10:00");
	struct period wh = { PERIOD_WORK_MINUTES, 240 }, wd = { PERIOD_WORK_DAYS, 1 };
	time_t r[] = {
		cal_add(cal, t, &wh), cal_add(cal, t, &wd), cal_next_working_time(cal, t),
		cal_next_sms_time(cal, t), cal_next_pass(cal, t), cal_day_after_weekday(cal, t, 5),
	};
	for (size_t i = 0; i < ARRAY_LEN(r); i++) {
		if (r[i] < t + 3 * 365 * 86400LL || r[i] > t + 4 * 366 * 86400LL)
			fail_msg("result %zu not at the horizon", i);
	}
	log_setlevel(lvl);
	cal_free(cal);
	free(path);
}

/* cal_sub reaches back in calendar time: months clamp to the month's end. */
static void test_sub(void **state)
{
	(void)state;
	set_tz("Europe/Istanbul");
	static const struct { const char *from, *period, *want; } cases[] = {
		{ "2026-03-31 10:00", "1mo", "2026-02-28 10:00" },
		{ "2028-03-31 10:00", "1mo", "2028-02-29 10:00" },
		{ "2026-01-15 08:00", "2mo", "2025-11-15 08:00" },
		{ "2026-03-02 10:00", "30d", "2026-01-31 10:00" },
		{ "2026-03-02 10:00", "4h", "2026-03-02 06:00" },
		{ "2027-03-02 10:00", "365d", "2026-03-02 10:00" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct period p;
		assert_int_equal(period_parse(cases[i].period, &p, NULL), 0);
		char got[32];
		cal_fmt_datetime(cal_sub(at(cases[i].from), &p), got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s - %s: got %s, expected %s", cases[i].from, cases[i].period, got,
				 cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_add, tz_istanbul),
		cmocka_unit_test(test_sub),
		cmocka_unit_test_setup(test_add_dst_zone, tz_istanbul),
		cmocka_unit_test_setup(test_add_other_hours, tz_istanbul),
		cmocka_unit_test_setup(test_next_sms_time, tz_istanbul),
		cmocka_unit_test_setup(test_next_working_time, tz_istanbul),
		cmocka_unit_test_setup(test_next_pass, tz_istanbul),
		cmocka_unit_test_setup(test_day_after_weekday, tz_istanbul),
		cmocka_unit_test_setup(test_is_working, tz_istanbul),
		cmocka_unit_test_setup(test_parse_and_format, tz_istanbul),
		cmocka_unit_test_setup(test_holiday_errors, tz_istanbul),
		cmocka_unit_test_setup(test_shipped_holidays, tz_istanbul),
		cmocka_unit_test_setup(test_blocked_calendar_is_bounded, tz_istanbul),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
