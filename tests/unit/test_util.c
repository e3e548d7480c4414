/* Unit tests of util.h's host_is_loopback(): where plain text may go. */
#include "testutil.h"

#include "util.h"

static void test_host_is_loopback(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		bool loop;
	} rows[] = {
		{ "localhost", true }, { "LocalHost", true }, { "127.0.0.1", true },
		{ "127.255.0.9", true }, { "::1", true }, { "[::1]", true },
		{ "0:0:0:0:0:0:0:1", true },
		{ "127.evil.example", false }, { "127.0.0.1.example.com", false },
		{ "128.0.0.1", false }, { "10.0.0.1", false }, { "::2", false }, { "[::2]", false },
		{ "[::1", false }, { "::1]", false }, { "", false }, { "[]", false },
		{ "localhost.example.com", false }, { "sms.example.com", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		if (host_is_loopback(rows[i].host) != rows[i].loop)
			fail_msg("%s: want %s", rows[i].host, rows[i].loop ? "loopback" : "not");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_is_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
