/*
 * template.h: notice templates, Turkish first, English beside.
 *
 * Files: <templates_dir>/<lang>/<name>.mail and <name>.sms, for each
 * configured language (default "tr en"). A .mail file starts with a
 * "Subject: ..." line, then a blank line, then the body. A .sms file is
 * the text alone. Fields are written {{field}}; {{#field}}...{{/field}}
 * keeps the enclosed text only when the field is set and not empty;
 * {{^field}}...{{/field}} only when it is not. Unknown fields are an error
 * at render time (the notice is not queued, the problem is logged).
 *
 * Details: a tag opens and closes on one line; names are letters, digits,
 * _ and -. A line holding only a section tag ({{#x}}, {{^x}}, {{/x}}) and
 * blanks produces no output, so sections may sit on lines of their own.
 * In a section tag an absent or null field counts as "not set" (false,
 * 0, "" and [] too); in {{field}} an absent field is the error above and
 * null prints nothing; numbers and booleans print as JSON writes them.
 * A .mail file needs every language, a .sms file the first one; other
 * files in the folders are ignored. A UTF-8 BOM and CRLF line ends are
 * accepted.
 *
 * A rendered mail joins the languages in order: the subject as
 * "<tr subject> / <en subject>", the body as each language's body
 * separated by a blank line, a line "----" and a blank line (each body ends with a
 * newline). An SMS uses the first language only (length matters), without
 * the file's trailing blank space; its *subject is set to NULL.
 *
 * Escaping: values are inserted as plain text (NUL bytes dropped); CR and
 * LF are removed from values that go into a subject; an HTML rendering
 * (template_render_html) escapes & < > " '. JSON escaping is the SMS
 * channel's business when it builds the request body.
 *
 * Ownership: templates_load() returns a set freed with templates_free();
 * rendered strings are the caller's.
 */
#ifndef EIMZA_TEMPLATE_H
#define EIMZA_TEMPLATE_H

#include "config.h"
#include "notice.h"

#include <json-c/json.h>

struct templates;

/* Loads and checks every template file of every language; a missing
 * language folder or a malformed file is an error (file:line). */
int templates_load(const char *dir, char *const *languages, struct templates **out,
		   struct conf_errors *errs);
void templates_free(struct templates *t);
bool templates_has(const struct templates *t, const char *name, enum medium m);

/* vars: a JSON object whose members are strings, numbers, booleans, or
 * arrays of objects (for {{#list}}...{{/list}} sections, rendered once per
 * element with the element's members as fields, outer fields visible). */
int template_render(const struct templates *t, const char *name, enum medium m,
		    json_object *vars, char **subject, char **body, char **err);
/* A rendered mail body as simple HTML (paragraphs, escaped), for the
 * mail's text/html alternative: a whole UTF-8 document; blank-line
 * separated paragraphs become <p>, single newlines <br>, the languages'
 * "----" separator <hr>. Allocated; the caller frees it. */
char *template_body_html(const char *body);

#endif
