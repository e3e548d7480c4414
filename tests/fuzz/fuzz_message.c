/* libFuzzer target: message_parse() on arbitrary bytes, with small limits
 * so that the limit paths are reached too, and the text tools on the same
 * bytes. Built and run by tests/fuzz/run. */
#include "message.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch everything reachable so that ASan sees every byte. */
static size_t walk(const struct message *m)
{
	size_t n = strlen(m->body) + strlen(m->subject) + m->nheaders;
	for (size_t i = 0; i < m->nparts; i++)
		n += m->parts[i].text ? strlen(m->parts[i].text) : m->parts[i].size;
	for (size_t i = 0; i < m->nto; i++)
		n += strlen(m->to[i].email);
	if (m->from.email)
		n += strlen(m->from.email);
	if (m->forwarded)
		n += walk(m->forwarded);
	char *q = text_strip_quoted(m->body);
	n += strlen(q);
	free(q);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	struct message *m = NULL;
	if (size > 0 && data[0] & 1) {
		lim.max_depth = 4;
		lim.max_parts = 16;
		lim.max_header = 256;
		lim.max_text = 512;
	}
	if (message_parse(raw, size, &lim, &m, NULL) == 0) {
		volatile size_t n = walk(m);
		(void)n;
		message_free(m);
	}

	size_t ol;
	bool fb;
	free(text_to_utf8(size > 1 && data[1] & 1 ? "iso-8859-9" : NULL, raw, size, &ol, &fb));
	free(html_to_text(raw, size));
	char *s = strndup(raw, size);
	if (s) {
		free(text_fold_str(s));
		(void)mail_date_parse(s);
		struct addr *v;
		size_t n = addr_parse_list(s, &v);
		addr_free_array(v, n);
		free(s);
	}
	return 0;
}
