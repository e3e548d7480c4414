/* source.c: see source.h. The constructor and what both sources share. */
#include "source.h"

#include <stdlib.h>

struct source *source_create(const struct config *c)
{
	struct source *s = xcalloc(1, sizeof(*s));
	s->conf = c;
	s->ops = c->imap.type == SOURCE_MAILDIR ? &source_maildir_ops : &source_imap_ops;
	return s;
}

void raw_msgs_free(struct raw_msg *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].data);
		free(v[i].key);
	}
	free(v);
}
