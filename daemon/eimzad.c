/* eimzad: the daemon's entry point (option parsing; the loop follows). */
#include "config.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

static int check_config(const char *path)
{
	struct config c;
	struct conf_errors e = { 0 };
	config_defaults(&c);
	config_load(&c, path, &e);
	if (e.n == 0)
		config_check(&c, &e);
	for (size_t i = 0; i < e.n; i++)
		fprintf(stderr, "%s\n", e.msgs[i]);
	int rc = e.n ? EX_CONFIG : EX_OK;
	if (rc == EX_OK)
		printf("configuration OK\n");
	conf_errors_free(&e);
	config_free(&c);
	return rc;
}

int main(int argc, char **argv)
{
	const char *conf = SYSCONFDIR "/eimzad/eimzad.conf";
	bool check = false;
	int ch;
	while ((ch = getopt(argc, argv, "c:nv")) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'n': check = true; break;
		case 'v': break;
		default:
			fprintf(stderr, "usage: eimzad [-n] [-c file]\n");
			return EX_USAGE;
		}
	}
	log_init("eimzad", false);
	if (check)
		return check_config(conf);
	fprintf(stderr, "eimzad: the daemon loop is not built yet\n");
	return EX_UNAVAILABLE;
}
