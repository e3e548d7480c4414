/* phone.c: phone number normalisation (see phone.h). SMS measuring lives
 * in sms_encode.c. */
#include "phone.h"

#include <ctype.h>
#include <string.h>

/* Keep digits and one leading '+'; refuse letters and other symbols. */
static int digits_only(const char *in, char *out, size_t cap, bool *plus, char **err)
{
	size_t n = 0;
	*plus = false;
	for (const char *p = in; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isdigit(c)) {
			if (n + 1 >= cap)
				return seterr(err, "too many digits");
			out[n++] = (char)c;
		} else if (c == '+' && n == 0 && !*plus) {
			*plus = true;
		} else if (!(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '\t')) {
			return seterr(err, "unexpected character '%c'", isprint(c) ? c : '?');
		}
	}
	out[n] = '\0';
	if (n == 0)
		return seterr(err, "no digits");
	return 0;
}

/* A Turkish national significant number (10 digits, without 0 or 90). */
static int tr_mobile(const char *nsn, char **out, char **err)
{
	if (strlen(nsn) != 10)
		return seterr(err, "a Turkish number has 10 digits after 0 or +90");
	if (nsn[0] != '5') {
		if (nsn[0] == '8')
			return seterr(err, "not a mobile number (0%c%c%c is a service number)",
				      nsn[0], nsn[1], nsn[2]);
		return seterr(err, "not a mobile number (area code %c%c%c is a landline)",
			      nsn[0], nsn[1], nsn[2]);
	}
	*out = xasprintf("+90%s", nsn);
	return 0;
}

int phone_normalize(const char *in, const char *default_country, char **out, char **err)
{
	char d[32];
	bool plus;
	if (in == NULL || digits_only(in, d, sizeof(d), &plus, err) < 0)
		return in == NULL ? seterr(err, "no number") : -1;
	bool tr = default_country && str_ieq(default_country, "TR");
	const char *intl = NULL;
	if (plus)
		intl = d;
	else if (d[0] == '0' && d[1] == '0')
		intl = d + 2;
	if (intl != NULL) {
		if (str_startswith(intl, "90"))
			return tr_mobile(intl + 2, out, err);
		size_t n = strlen(intl);
		if (n < 8 || n > 15 || intl[0] == '0')
			return seterr(err, "not a valid international number");
		*out = xasprintf("+%s", intl);
		return 0;
	}
	if (!tr)
		return seterr(err, "no country code, and the default country is not TR");
	if (d[0] == '0')
		return tr_mobile(d + 1, out, err);
	if (strlen(d) == 12 && str_startswith(d, "90"))
		return tr_mobile(d + 2, out, err);
	return tr_mobile(d, out, err);
}
