/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/eimza-unit-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp failed");
	return tmpl;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_write(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");
	if (fp == NULL)
		fail_msg("cannot write %s", path);
	fputs(text, fp);
	fclose(fp);
	chmod(path, 0600);
	return path;
}

const char *tu_srcdir(void)
{
	const char *s = getenv("EIMZA_SRCDIR");
	return s ? s : ".";
}
