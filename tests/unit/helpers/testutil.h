/* testutil.h: shared helpers for unit tests (temp folders, files). */
#ifndef EIMZA_TESTUTIL_H
#define EIMZA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

/* A fresh private temp folder; the caller removes it with tu_rmtree(). */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* Write a file (mode 0600) with the given text, path = dir/name; returns
 * the path (caller frees). */
char *tu_write(const char *dir, const char *name, const char *text);
/* The source tree's root (from EIMZA_SRCDIR or the current directory). */
const char *tu_srcdir(void);

#endif
