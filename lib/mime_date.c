/*
 * mime_date.c: mail_date_parse() (message.h).
 *
 * One token-based reader for RFC 5322 dates and for what people and
 * clients write instead: forward blocks in Turkish and English
 * ("27 Eki 2021 Çar, 09:31", "Perşembe, 28 Ekim 2021 12:46",
 * "2 Kasım 2021 Salı 09:26:50 GMT+1", "Wed, Oct 27, 2021 at 9:31 AM",
 * "28/10/2021 12:46", "2021-10-28T12:46:00+03:00"). The text is folded
 * first (text.h), so Turkish names are matched without diacritics.
 *
 * A date without a zone is read as Turkey's time (UTC+3, the offset in
 * force all year since 2016): the forward blocks this is for were written
 * by clients in Turkey. Numeric dates are read day first unless that is
 * impossible ("10/28/2021").
 */
#include "message_p.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_ZONE_MIN (3 * 60)

static const struct {
	const char *name;
	int month;                /* 1..12 */
} month_names[] = {
	{ "january", 1 }, { "february", 2 }, { "march", 3 }, { "april", 4 }, { "may", 5 },
	{ "june", 6 }, { "july", 7 }, { "august", 8 }, { "september", 9 }, { "sept", 9 },
	{ "october", 10 }, { "november", 11 }, { "december", 12 },
	{ "jan", 1 }, { "feb", 2 }, { "mar", 3 }, { "apr", 4 }, { "jun", 6 }, { "jul", 7 },
	{ "aug", 8 }, { "sep", 9 }, { "oct", 10 }, { "nov", 11 }, { "dec", 12 },
	/* Turkish, folded (Şubat -> subat, Ağustos -> agustos, Eylül -> eylul) */
	{ "ocak", 1 }, { "subat", 2 }, { "mart", 3 }, { "nisan", 4 }, { "mayis", 5 },
	{ "haziran", 6 }, { "temmuz", 7 }, { "agustos", 8 }, { "eylul", 9 }, { "ekim", 10 },
	{ "kasim", 11 }, { "aralik", 12 },
	{ "oca", 1 }, { "sub", 2 }, { "nis", 4 }, { "haz", 6 }, { "tem", 7 }, { "agu", 8 },
	{ "agt", 8 }, { "eyl", 9 }, { "eki", 10 }, { "kas", 11 }, { "ara", 12 },
};

/* Named zones seen in mail, minutes east of UTC. */
static const struct {
	const char *name;
	int minutes;
} zone_names[] = {
	{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 },
	{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
	{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
	{ "cet", 60 }, { "cest", 120 }, { "eet", 120 }, { "eest", 180 }, { "trt", 180 },
	{ "bst", 60 }, { "msk", 180 },
};

struct dparts {
	int year, month, day;
	int hour, min, sec;
	bool have_time;
	int ampm;                 /* 0, 1 am, 2 pm */
	bool have_zone;
	int zone;                 /* minutes east */
	int pending_num[3];       /* bare numbers not yet placed */
	int npending;
};

static bool isdig(char c)
{
	return c >= '0' && c <= '9';
}

static bool isalph(char c)
{
	return (c >= 'a' && c <= 'z') || (unsigned char)c >= 0x80;
}

/* Read up to maxd digits; returns the count read. */
static int read_num(const char **pp, const char *end, int maxd, int *v)
{
	const char *p = *pp;
	int n = 0, val = 0;
	while (p < end && isdig(*p) && n < maxd) {
		val = val * 10 + (*p - '0');
		p++;
		n++;
	}
	*pp = p;
	*v = val;
	return n;
}

/* "+0300", "+03:00", "+3", "-0530" after a sign; returns false if none. */
static bool read_zone(const char **pp, const char *end, int *minutes)
{
	const char *p = *pp;
	if (p >= end || (*p != '+' && *p != '-'))
		return false;
	int sign = *p == '-' ? -1 : 1, h = 0, m = 0;
	p++;
	int nd = read_num(&p, end, 4, &h);
	if (nd == 0)
		return false;
	if (nd == 4 || nd == 3) {
		m = h % 100;
		h /= 100;
	} else if (p + 2 < end && *p == ':' && isdig(p[1]) && isdig(p[2])) {
		m = (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
	}
	if (h > 14 || m > 59)
		return false;
	*minutes = sign * (h * 60 + m);
	*pp = p;
	return true;
}

static void word(struct dparts *d, const char *w, size_t n, const char **pp, const char *end)
{
	for (size_t i = 0; i < ARRAY_LEN(month_names); i++)
		if (strlen(month_names[i].name) == n && memcmp(month_names[i].name, w, n) == 0) {
			if (!d->month)
				d->month = month_names[i].month;
			return;
		}
	if ((n == 2 && (memcmp(w, "am", 2) == 0 || memcmp(w, "oo", 2) == 0)) ||
	    (n == 4 && memcmp(w, "a.m.", 4) == 0)) {
		d->ampm = 1;
		return;
	}
	if (n == 2 && (memcmp(w, "pm", 2) == 0 || memcmp(w, "os", 2) == 0)) {
		d->ampm = 2;
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(zone_names); i++)
		if (strlen(zone_names[i].name) == n && memcmp(zone_names[i].name, w, n) == 0) {
			if (d->have_zone)
				return;
			d->have_zone = true;
			d->zone = zone_names[i].minutes;
			int extra;
			/* "GMT+1", "GMT+03:00", "UTC+0300" */
			if (read_zone(pp, end, &extra))
				d->zone += extra;
			return;
		}
	/* weekday names, "at", "tarihinde", ... are ignored */
}

/* "12:46", "09:26:50", "9.31" is not a time (ambiguous with dates). */
static bool time_tok(struct dparts *d, const char **pp, const char *end)
{
	const char *p = *pp;
	int h, m, s = 0;
	if (read_num(&p, end, 2, &h) == 0 || p >= end || *p != ':')
		return false;
	p++;
	if (read_num(&p, end, 2, &m) != 2)
		return false;
	if (p < end && *p == ':') {
		p++;
		if (read_num(&p, end, 2, &s) != 2)
			return false;
		if (p < end && (*p == '.' || *p == ',') && p + 1 < end && isdig(p[1])) {
			int frac;
			p++;
			read_num(&p, end, 9, &frac);
		}
	}
	*pp = p;
	if (d->have_time)
		return true;        /* the first time wins */
	d->have_time = true;
	d->hour = h;
	d->min = m;
	d->sec = s;
	return true;
}

/* "28.10.2021", "28/10/21", "2021-10-28" */
static bool numdate_tok(struct dparts *d, const char **pp, const char *end)
{
	const char *p = *pp;
	int a, b, c;
	int na = read_num(&p, end, 4, &a);
	if (na == 0 || p >= end || (*p != '.' && *p != '/' && *p != '-'))
		return false;
	char sep = *p++;
	if (read_num(&p, end, 2, &b) == 0 || p >= end || *p != sep)
		return false;
	p++;
	int nc = read_num(&p, end, 4, &c);
	if (nc == 0)
		return false;
	if (na == 4) {                        /* ISO: y-m-d */
		d->year = a, d->month = b, d->day = c;
	} else {
		int day = a, mon = b;
		if (mon > 12 && day <= 12) {  /* m/d/y, only when it cannot be d/m */
			day = b;
			mon = a;
		}
		d->day = day, d->month = mon;
		d->year = nc <= 2 ? c + (c < 50 ? 2000 : 1900) : c;
	}
	if (p < end && (*p == 't' || *p == 'T'))
		p++;                          /* ISO 8601 date-time separator */
	*pp = p;
	return true;
}

static void bare_num(struct dparts *d, int v, int ndigits)
{
	if (ndigits == 4 && !d->year) {
		d->year = v;
	} else if (ndigits <= 2 && !d->day && v >= 1 && v <= 31) {
		d->day = v;
	} else if (!d->year && ndigits <= 3 && d->day) {
		d->year = ndigits == 3 ? v + 1900 : v + (v < 50 ? 2000 : 1900);
	}
}

static void tokenize(struct dparts *d, const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	int depth = 0;
	while (p < end) {
		char c = *p;
		if (c == '(') {
			depth++;
			p++;
			continue;
		}
		if (c == ')') {
			depth -= depth > 0;
			p++;
			continue;
		}
		if (depth) {
			p++;
			continue;
		}
		if (isalph(c)) {
			const char *w = p;
			while (p < end && (isalph(*p) || *p == '.'))
				p++;
			size_t n = (size_t)(p - w);
			while (n > 1 && w[n - 1] == '.' && !(n == 4 && memcmp(w, "a.m.", 4) == 0))
				n--;
			word(d, w, n, &p, end);
			continue;
		}
		if ((c == '+' || c == '-') && !d->have_zone && (d->have_time || d->year)) {
			int z;
			if (read_zone(&p, end, &z)) {
				d->have_zone = true;
				d->zone = z;
				continue;
			}
		}
		if (isdig(c)) {
			if (time_tok(d, &p, end) || numdate_tok(d, &p, end))
				continue;
			int v;
			int nd = read_num(&p, end, 9, &v);
			bare_num(d, v, nd);
			while (p < end && isdig(*p))
				p++;
			continue;
		}
		p++;
	}
}

static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
	static const int md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return md[m - 1];
}

time_t mail_date_parse(const char *s)
{
	if (str_empty(s))
		return 0;
	size_t len = strlen(s);
	if (len > 512)
		len = 512;
	struct folded f;
	text_fold(s, len, false, &f);
	struct dparts d;
	memset(&d, 0, sizeof(d));
	tokenize(&d, f.s, f.len);
	folded_free(&f);

	if (d.year < 1970 || d.year > 2200 || d.month < 1 || d.month > 12 || d.day < 1 ||
	    d.day > month_days(d.year, d.month))
		return 0;
	if (d.ampm == 2 && d.hour < 12)
		d.hour += 12;
	else if (d.ampm == 1 && d.hour == 12)
		d.hour = 0;
	if (d.hour > 23 || d.min > 59 || d.sec > 60)
		return 0;
	int zone = d.have_zone ? d.zone : DEFAULT_ZONE_MIN;
	int64_t t = days_from_civil(d.year, d.month, d.day) * 86400 + d.hour * 3600 +
		    d.min * 60 + d.sec - (int64_t)zone * 60;
	return t > 0 ? (time_t)t : 0;
}
