/* Unit tests of phone_normalize(): the ways Turkish mobiles are written,
 * and what is refused (landlines, service numbers, letters, lengths). */
#include "testutil.h"

#include "phone.h"

#include <stdlib.h>
#include <string.h>

struct pcase {
	const char *in;
	const char *country;
	const char *want;        /* NULL: refused */
	const char *why;         /* refused: a word the reason must contain */
};

static const struct pcase cases[] = {
	/* Turkish mobiles, all the usual spellings */
	{ "05321234567", "TR", "+905321234567", NULL },
	{ "5321234567", "TR", "+905321234567", NULL },
	{ "+90 532 123 45 67", "TR", "+905321234567", NULL },
	{ "+905321234567", "TR", "+905321234567", NULL },
	{ "0090 532 123 45 67", "TR", "+905321234567", NULL },
	{ "00905321234567", "TR", "+905321234567", NULL },
	{ "905321234567", "TR", "+905321234567", NULL },
	{ "0 (532) 123-45-67", "TR", "+905321234567", NULL },
	{ "(0532) 123 45 67", "TR", "+905321234567", NULL },
	{ "0532.123.45.67", "TR", "+905321234567", NULL },
	{ "0532/1234567", "TR", "+905321234567", NULL },
	{ " 0505 000 11 22\t", "TR", "+905050001122", NULL },
	{ "+90 (555) 444 33 22", "tr", "+905554443322", NULL },
	/* landlines and service numbers */
	{ "0212 123 45 67", "TR", NULL, "landline" },
	{ "0312 123 45 67", "TR", NULL, "landline" },
	{ "+90 216 123 45 67", "TR", NULL, "landline" },
	{ "0462 123 45 67", "TR", NULL, "landline" },
	{ "0850 123 45 67", "TR", NULL, "service" },
	{ "0800 123 45 67", "TR", NULL, "service" },
	{ "444 1 234", "TR", NULL, "10 digits" },
	/* malformed */
	{ "0532 ABC 45 67", "TR", NULL, "unexpected character" },
	{ "0532-123-45-6x", "TR", NULL, "unexpected character" },
	{ "053212345", "TR", NULL, "10 digits" },
	{ "053212345678", "TR", NULL, "10 digits" },
	{ "+90 532 123 45 678", "TR", NULL, "10 digits" },
	{ "", "TR", NULL, "no digits" },
	{ "  - ", "TR", NULL, "no digits" },
	{ "++905321234567", "TR", NULL, "unexpected character" },
	{ "0532+1234567", "TR", NULL, "unexpected character" },
	{ "1234567890123456789012345678901234", "TR", NULL, "too many digits" },
	/* foreign mobiles are kept as E.164 */
	{ "+44 7911 123456", "TR", "+447911123456", NULL },
	{ "0044 7911 123456", "TR", "+447911123456", NULL },
	{ "+49 151 23456789", "TR", "+4915123456789", NULL },
	{ "+1234567", "TR", NULL, "international" },
	{ "+1234567890123456", "TR", NULL, "international" },
	/* without a default country only international forms work */
	{ "05321234567", "", NULL, "default country" },
	{ "+905321234567", "", "+905321234567", NULL },
	{ "+447911123456", NULL, "+447911123456", NULL },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct pcase *c = &cases[i];
		char *out = NULL, *err = NULL;
		int rc = phone_normalize(c->in, c->country, &out, &err);
		if (c->want) {
			if (rc != 0)
				fail_msg("'%s': refused (%s), want %s", c->in, err, c->want);
			if (strcmp(out, c->want) != 0)
				fail_msg("'%s': got %s, want %s", c->in, out, c->want);
		} else {
			if (rc == 0)
				fail_msg("'%s': accepted as %s, want refused", c->in, out);
			if (err == NULL || strstr(err, c->why) == NULL)
				fail_msg("'%s': reason '%s' lacks '%s'", c->in, err ? err : "(none)", c->why);
		}
		free(out);
		free(err);
	}
}

static void test_null(void **state)
{
	(void)state;
	char *out = NULL, *err = NULL;
	assert_int_equal(phone_normalize(NULL, "TR", &out, &err), -1);
	assert_null(out);
	assert_non_null(err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
