/*
 * template.c: see template.h.
 *
 * Every file is parsed once, at load, into a flat array of nodes: text
 * (a span of the file's bytes, which the set keeps), a field, or a section
 * whose children are the nodes up to its `end` index. Rendering walks that
 * array with a stack of JSON contexts (the variables, then one element per
 * enclosing list section), so a render costs one pass over the nodes and a
 * hash lookup per field, and finds no syntax error it could have found at
 * load.
 *
 * A line holding nothing but one section tag ({{#x}}, {{^x}}, {{/x}}) and
 * blanks produces no output at all, so sections can sit on lines of their
 * own without leaving blank lines behind.
 */
#include "template.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define TPL_MAX_DEPTH 16                /* sections inside sections */
#define TPL_MAX_SIZE (256 * 1024)       /* bytes per template file */

enum node_kind { N_TEXT, N_FIELD, N_SECTION, N_INVERTED };

struct node {
	enum node_kind kind;
	int line;
	const char *s;          /* text bytes, or the field's name (NUL-terminated) */
	size_t len;             /* text length */
	size_t end;             /* sections: one past the last child */
};

struct part {
	struct node *v;
	size_t n, cap;
	size_t text_len;        /* bytes of text, to size the output once */
};

struct tfile {
	char *label;            /* "<lang>/<name>.<ext>", for render errors */
	char *text;             /* the file's bytes; text nodes and names point here */
	struct part subject, body;
};

struct tentry {
	char *name;
	enum medium m;
	struct tfile **files;   /* one per language, NULL where missing */
};

struct templates {
	char **langs;
	size_t nlang;
	struct tentry *v;
	size_t n;
};

static const char *const medium_ext[] = { [MEDIUM_MAIL] = "mail", [MEDIUM_SMS] = "sms" };

/* ---- parsing ---- */

struct parser {
	const char *path;
	struct part *part;
	int line;
	size_t stack[TPL_MAX_DEPTH];
	int depth;
	struct conf_errors *errs;
	int nerr;
};

static void perr(struct parser *ps, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	conf_errors_add(ps->errs, ps->path, ps->line, "%s", msg);
	free(msg);
	ps->nerr++;
}

static struct node *add_node(struct part *p, enum node_kind kind, int line)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xreallocarray(p->v, p->cap, sizeof(*p->v));
	}
	struct node *nd = &p->v[p->n++];
	*nd = (struct node){ .kind = kind, .line = line };
	return nd;
}

static void add_text(struct parser *ps, const char *s, size_t len)
{
	if (len == 0)
		return;
	struct part *p = ps->part;
	p->text_len += len;
	struct node *last = p->n ? &p->v[p->n - 1] : NULL;
	if (last && last->kind == N_TEXT && last->s + last->len == s) {
		last->len += len;
		return;
	}
	struct node *nd = add_node(p, N_TEXT, ps->line);
	nd->s = s;
	nd->len = len;
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static void close_section(struct parser *ps, const char *name)
{
	if (ps->depth == 0) {
		perr(ps, "'{{/%s}}' closes no section", name);
		return;
	}
	struct node *open = &ps->part->v[ps->stack[--ps->depth]];
	if (strcmp(open->s, name) != 0)
		perr(ps, "'{{/%s}}' does not close '{{%c%s}}' (line %d)", name,
		     open->kind == N_SECTION ? '#' : '^', open->s, open->line);
	open->end = ps->part->n;
}

/* The tag between "{{" and "}}": [s, e). Its name is NUL-terminated in
 * place (over a blank or the first '}'), never inside a text span. */
static void tag(struct parser *ps, char *s, char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	char sigil = s < e && strchr("#^/", *s) ? *s++ : '\0';
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (!name_ok(s, (size_t)(e - s))) {
		perr(ps, "bad field name '%.*s' (letters, digits, _ and - only)", (int)(e - s), s);
		return;
	}
	*e = '\0';
	if (sigil == '/') {
		close_section(ps, s);
		return;
	}
	if (sigil != '\0' && ps->depth == TPL_MAX_DEPTH) {
		perr(ps, "sections nested deeper than %d", TPL_MAX_DEPTH);
		return;
	}
	enum node_kind k = sigil == '#' ? N_SECTION : sigil == '^' ? N_INVERTED : N_FIELD;
	struct node *nd = add_node(ps->part, k, ps->line);
	nd->s = s;
	if (k != N_FIELD)
		ps->stack[ps->depth++] = ps->part->n - 1;
}

static char *find2(char *s, char *e, const char *pair)
{
	return memmem(s, (size_t)(e - s), pair, 2);
}

/* A line that is only blanks and one section tag: the tag, no text. */
static bool standalone(struct parser *ps, char *ls, char *le)
{
	char *s = ls;
	while (s < le && (*s == ' ' || *s == '\t'))
		s++;
	if (le - s < 5 || s[0] != '{' || s[1] != '{' || strchr("#^/", s[2]) == NULL)
		return false;
	char *close = find2(s + 2, le, "}}");
	if (close == NULL)
		return false;
	for (char *a = close + 2; a < le; a++)
		if (*a != ' ' && *a != '\t')
			return false;
	tag(ps, s + 2, close);
	return true;
}

/* One line [ls, le), followed by a newline if nl. */
static void parse_line(struct parser *ps, char *ls, char *le, bool nl, bool allow_standalone)
{
	if (allow_standalone && standalone(ps, ls, le))
		return;
	char *p = ls;
	for (;;) {
		char *open = find2(p, le, "{{");
		if (open == NULL)
			break;
		add_text(ps, p, (size_t)(open - p));
		char *close = find2(open + 2, le, "}}");
		if (close == NULL) {
			perr(ps, "unclosed '{{' (a tag ends with '}}' on the same line)");
			return;
		}
		tag(ps, open + 2, close);
		p = close + 2;
	}
	add_text(ps, p, (size_t)(le - p) + (nl ? 1 : 0));
}

/* Parse [s, e) into part, counting lines from first_line. */
static void parse_part(struct parser *ps, struct part *part, char *s, char *e, int first_line,
		       bool allow_standalone)
{
	ps->part = part;
	ps->line = first_line;
	ps->depth = 0;
	while (s < e) {
		char *nl = memchr(s, '\n', (size_t)(e - s));
		char *le = nl ? nl : e;
		parse_line(ps, s, le, nl != NULL, allow_standalone);
		if (nl == NULL)
			break;
		s = nl + 1;
		ps->line++;
	}
	while (ps->depth > 0) {
		struct node *open = &part->v[ps->stack[--ps->depth]];
		ps->line = open->line;
		perr(ps, "'{{%c%s}}' is never closed", open->kind == N_SECTION ? '#' : '^', open->s);
		open->end = part->n;
	}
}

/* Drop a UTF-8 byte order mark and the CR of CRLF line ends, in place. */
static size_t normalise(char *s, size_t n)
{
	size_t i = 0, o = 0;
	if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	for (; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			s[o++] = s[i];
	s[o] = '\0';
	return o;
}

/* A .mail file: "Subject: ..." line, a blank line, the body. */
static void parse_mail(struct parser *ps, struct tfile *f, char *s, char *e)
{
	static const char hdr[] = "Subject:";
	ps->line = 1;
	if ((size_t)(e - s) < sizeof(hdr) - 1 || strncasecmp(s, hdr, sizeof(hdr) - 1) != 0) {
		perr(ps, "a .mail template must start with a 'Subject: ' line");
		return;
	}
	char *subj = s + sizeof(hdr) - 1;
	while (subj < e && (*subj == ' ' || *subj == '\t'))
		subj++;
	char *nl = memchr(subj, '\n', (size_t)(e - subj));
	char *send = nl ? nl : e;
	while (send > subj && (send[-1] == ' ' || send[-1] == '\t'))
		send--;
	parse_part(ps, &f->subject, subj, send, 1, false);
	if (nl == NULL)
		return;
	char *body = nl + 1;
	if (body < e && *body != '\n') {
		ps->line = 2;
		perr(ps, "expected a blank line after the Subject: line");
		return;
	}
	if (body < e)
		body++;
	parse_part(ps, &f->body, body, e, 3, true);
}

static void tfile_free(struct tfile *f)
{
	if (f == NULL)
		return;
	free(f->label);
	free(f->text);
	free(f->subject.v);
	free(f->body.v);
	free(f);
}

/* Load and parse one file; NULL (errors added) if it is malformed. */
static struct tfile *tfile_load(const char *path, const char *label, enum medium m,
				struct conf_errors *errs)
{
	struct buf b = BUF_INIT;
	char *err = NULL;
	if (file_read(path, TPL_MAX_SIZE, &b, &err) < 0) {
		conf_errors_add(errs, path, 0, "%s", err);
		free(err);
		buf_free(&b);
		return NULL;
	}
	if (memchr(b.p, '\0', b.len) != NULL) {
		conf_errors_add(errs, path, 0, "NUL byte in a template");
		buf_free(&b);
		return NULL;
	}
	struct tfile *f = xcalloc(1, sizeof(*f));
	f->label = xstrdup(label);
	size_t n = normalise(b.p, b.len);
	f->text = buf_steal(&b);
	struct parser ps = { .path = path, .errs = errs };
	if (m == MEDIUM_MAIL)
		parse_mail(&ps, f, f->text, f->text + n);
	else
		parse_part(&ps, &f->body, f->text, f->text + n, 1, true);
	if (ps.nerr) {
		tfile_free(f);
		return NULL;
	}
	return f;
}

/* ---- the set ---- */

static struct tentry *entry_find(const struct templates *t, const char *name, enum medium m)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].m == m && strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

static struct tentry *entry_get(struct templates *t, const char *name, enum medium m)
{
	struct tentry *e = entry_find(t, name, m);
	if (e)
		return e;
	t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
	e = &t->v[t->n++];
	*e = (struct tentry){ .name = xstrdup(name), .m = m,
			      .files = xcalloc(t->nlang, sizeof(struct tfile *)) };
	return e;
}

/* "name.mail" -> MEDIUM_MAIL and "name"; -1 for other files. */
static int split_name(const char *fname, char **base, enum medium *m)
{
	if (fname[0] == '.')
		return -1;
	const char *dot = strrchr(fname, '.');
	if (dot == NULL)
		return -1;
	for (int k = 0; k < (int)ARRAY_LEN(medium_ext); k++) {
		if (strcmp(dot + 1, medium_ext[k]) == 0) {
			*m = (enum medium)k;
			*base = xstrndup(fname, (size_t)(dot - fname));
			return 0;
		}
	}
	return -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a folder, sorted (so errors come in a stable order). */
static char **list_dir(const char *path, struct conf_errors *errs)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		conf_errors_add(errs, path, 0, "cannot open the language folder: %s",
				strerror(errno));
		return NULL;
	}
	char **v = xcalloc(1, sizeof(*v));   /* never NULL: an empty folder is fine */
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			v = strv_add(v, de->d_name);
	closedir(d);
	size_t n = strv_len(v);
	qsort(v, n, sizeof(*v), cmp_str);
	return v;
}

/* Returns -1 if the folder cannot be read (error added). */
static int load_language(struct templates *t, const char *dir, size_t li,
			 struct conf_errors *errs)
{
	char *ldir = xasprintf("%s/%s", dir, t->langs[li]);
	char **names = list_dir(ldir, errs);
	if (names == NULL) {
		free(ldir);
		return -1;
	}
	for (char **np = names; np && *np; np++) {
		char *base;
		enum medium m;
		if (split_name(*np, &base, &m) < 0)
			continue;
		char *path = xasprintf("%s/%s", ldir, *np);
		struct stat st;
		if (!name_ok(base, strlen(base))) {
			conf_errors_add(errs, path, 0, "bad template name (letters, digits, _ and - only)");
		} else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			char *label = xasprintf("%s/%s", t->langs[li], *np);
			struct tfile *f = tfile_load(path, label, m, errs);
			if (f)
				entry_get(t, base, m)->files[li] = f;
			free(label);
		}
		free(path);
		free(base);
	}
	strv_free(names);
	free(ldir);
	return 0;
}

/* A mail needs every language; an SMS needs the first (the only one sent).
 * A language whose folder is missing was reported once already. */
static void check_complete(const struct templates *t, const char *dir, const bool *readable,
			   struct conf_errors *errs)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tentry *e = &t->v[i];
		size_t need = e->m == MEDIUM_MAIL ? t->nlang : 1;
		for (size_t li = 0; li < need; li++)
			if (e->files[li] == NULL && readable[li])
				conf_errors_add(errs, dir, 0, "%s/%s.%s is missing (%s %s exists in "
						"another language)", t->langs[li], e->name,
						medium_ext[e->m], e->name, medium_ext[e->m]);
	}
}

static int cmp_entry(const void *a, const void *b)
{
	const struct tentry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (int)x->m - (int)y->m;
}

int templates_load(const char *dir, char *const *languages, struct templates **out,
		   struct conf_errors *errs)
{
	*out = NULL;
	size_t before = errs->n;
	struct templates *t = xcalloc(1, sizeof(*t));
	for (size_t i = 0; languages && languages[i]; i++)
		t->langs = strv_add(t->langs, languages[i]);
	t->nlang = strv_len(t->langs);
	if (t->nlang == 0)
		conf_errors_add(errs, dir, 0, "no notice languages configured");
	bool *readable = xcalloc(t->nlang + 1, sizeof(bool));
	for (size_t li = 0; li < t->nlang; li++)
		readable[li] = load_language(t, dir, li, errs) == 0;
	check_complete(t, dir, readable, errs);
	free(readable);
	if (errs->n != before) {
		templates_free(t);
		return -1;
	}
	qsort(t->v, t->n, sizeof(*t->v), cmp_entry);
	*out = t;
	return 0;
}

void templates_free(struct templates *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		for (size_t li = 0; li < t->nlang; li++)
			tfile_free(t->v[i].files[li]);
		free(t->v[i].files);
		free(t->v[i].name);
	}
	free(t->v);
	strv_free(t->langs);
	free(t);
}

static const struct tentry *lookup_entry(const struct templates *t, const char *name,
					 enum medium m)
{
	struct tentry key = { .name = (char *)name, .m = m };
	return bsearch(&key, t->v, t->n, sizeof(*t->v), cmp_entry);
}

bool templates_has(const struct templates *t, const char *name, enum medium m)
{
	return lookup_entry(t, name, m) != NULL;
}

/* ---- rendering ---- */

struct render {
	const struct tfile *f;
	json_object *ctx[TPL_MAX_DEPTH + 1];
	int depth;
	bool subject;           /* CR and LF are dropped from values */
	struct buf *out;
	char **err;
};

/* Innermost context first; *found tells "absent" from "null". */
static json_object *lookup(const struct render *r, const char *name, bool *found)
{
	for (int i = r->depth - 1; i >= 0; i--) {
		json_object *v;
		if (json_object_is_type(r->ctx[i], json_type_object) &&
		    json_object_object_get_ex(r->ctx[i], name, &v)) {
			*found = true;
			return v;
		}
	}
	*found = false;
	return NULL;
}

static bool truthy(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return false;
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) != 0;
	case json_type_double:
		return json_object_get_double(v) != 0.0;
	case json_type_string:
		return json_object_get_string_len(v) > 0;
	case json_type_array:
		return json_object_array_length(v) > 0;
	case json_type_object:
		return true;
	}
	return false;
}

/* A value as plain text; NUL bytes (which JSON allows) are dropped, and
 * CR and LF too in a subject. */
static void put_value(struct render *r, const char *s, size_t n)
{
	const char *reject = r->subject ? "\r\n" : "";
	const char *e = s + n;          /* json-c strings are NUL-terminated at e */
	while (s < e) {
		size_t run = strcspn(s, reject);
		if (run > (size_t)(e - s))
			run = (size_t)(e - s);
		buf_add(r->out, s, run);
		s += run;
		if (s < e)
			s++;
	}
}

static int render_field(struct render *r, const struct node *nd)
{
	bool found;
	json_object *v = lookup(r, nd->s, &found);
	if (!found)
		return seterr(r->err, "template %s:%d: unknown field '%s'", r->f->label, nd->line,
			      nd->s);
	switch (json_object_get_type(v)) {
	case json_type_null:
		return 0;
	case json_type_string:
		put_value(r, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		return 0;
	case json_type_int:
		buf_printf(r->out, "%lld", (long long)json_object_get_int64(v));
		return 0;
	case json_type_boolean:
	case json_type_double:
		buf_adds(r->out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return 0;
	case json_type_array:
	case json_type_object:
		break;
	}
	return seterr(r->err, "template %s:%d: field '%s' is a list, not a value (use {{#%s}})",
		      r->f->label, nd->line, nd->s, nd->s);
}

static int render_nodes(struct render *r, const struct node *v, size_t from, size_t to);

/* {{#x}}: once per element of a list, once with an object as context,
 * once for any other true value; {{^x}}: once if x is absent or false. */
static int render_section(struct render *r, const struct node *v, size_t i)
{
	bool found;
	json_object *val = lookup(r, v[i].s, &found);
	if (v[i].kind == N_INVERTED)
		return truthy(val) ? 0 : render_nodes(r, v, i + 1, v[i].end);
	if (!truthy(val))
		return 0;
	bool list = json_object_is_type(val, json_type_array);
	size_t n = list ? json_object_array_length(val) : 1;
	for (size_t k = 0; k < n; k++) {
		json_object *c = list ? json_object_array_get_idx(val, k) : val;
		r->ctx[r->depth++] = c;
		int rc = render_nodes(r, v, i + 1, v[i].end);
		r->depth--;
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int render_nodes(struct render *r, const struct node *v, size_t from, size_t to)
{
	size_t i = from;
	while (i < to) {
		int rc = 0;
		switch (v[i].kind) {
		case N_TEXT:
			buf_add(r->out, v[i].s, v[i].len);
			i++;
			break;
		case N_FIELD:
			rc = render_field(r, &v[i]);
			i++;
			break;
		case N_SECTION:
		case N_INVERTED:
			rc = render_section(r, v, i);
			i = v[i].end;
			break;
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int render_part(const struct tfile *f, const struct part *p, json_object *vars,
		       bool subject, struct buf *out, char **err)
{
	struct render r = { .f = f, .depth = 1, .subject = subject, .out = out, .err = err };
	r.ctx[0] = vars;
	buf_reserve(out, p->text_len + p->text_len / 2 + 64);
	return render_nodes(&r, p->v, 0, p->n);
}

static const struct tentry *render_entry(const struct templates *t, const char *name,
					 enum medium m, json_object *vars, char **err)
{
	const struct tentry *e = lookup_entry(t, name, m);
	if (e == NULL)
		seterr(err, "no template '%s' for %s", name, medium_ext[m]);
	else if (vars && !json_object_is_type(vars, json_type_object))
		seterr(err, "template %s: the variables are not a JSON object", name);
	else
		return e;
	return NULL;
}

/* The languages' bodies, each ending in a newline, separated by a blank
 * line, a line "----" and a blank line. */
static int render_mail_body(const struct tentry *e, size_t nlang, json_object *vars,
			    struct buf *out, char **err)
{
	for (size_t li = 0; li < nlang; li++) {
		if (li > 0)
			buf_adds(out, "\n----\n\n");
		if (render_part(e->files[li], &e->files[li]->body, vars, false, out, err) < 0)
			return -1;
		if (out->len > 0 && out->p[out->len - 1] != '\n')
			buf_addc(out, '\n');
	}
	return 0;
}

static int render_mail_subject(const struct tentry *e, size_t nlang, json_object *vars,
			       struct buf *out, char **err)
{
	for (size_t li = 0; li < nlang; li++) {
		size_t mark = out->len;
		if (li > 0)
			buf_adds(out, " / ");
		size_t start = out->len;
		if (render_part(e->files[li], &e->files[li]->subject, vars, true, out, err) < 0)
			return -1;
		if (li > 0 && out->len == start) {      /* an empty subject adds no " / " */
			out->len = mark;
			out->p[mark] = '\0';
		}
	}
	return 0;
}

int template_render(const struct templates *t, const char *name, enum medium m,
		    json_object *vars, char **subject, char **body, char **err)
{
	const struct tentry *e = render_entry(t, name, m, vars, err);
	if (e == NULL)
		return -1;
	struct buf sb = BUF_INIT, bb = BUF_INIT;
	int rc;
	if (m == MEDIUM_SMS) {
		/* the first language only; a file's trailing newline is not sent */
		rc = render_part(e->files[0], &e->files[0]->body, vars, false, &bb, err);
		while (rc == 0 && bb.len > 0 && isspace((unsigned char)bb.p[bb.len - 1]))
			bb.p[--bb.len] = '\0';
	} else {
		rc = render_mail_subject(e, t->nlang, vars, &sb, err);
		if (rc == 0)
			rc = render_mail_body(e, t->nlang, vars, &bb, err);
	}
	if (rc < 0) {
		buf_free(&sb);
		buf_free(&bb);
		return -1;
	}
	if (subject)
		*subject = m == MEDIUM_MAIL ? buf_steal(&sb) : NULL;
	buf_free(&sb);
	*body = buf_steal(&bb);
	return 0;
}

/* ---- HTML ---- */

static void html_escape(struct buf *out, const char *s, size_t n)
{
	static const char *const ent[256] = {
		['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
	};
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *x = ent[(unsigned char)s[i]];
		if (x == NULL)
			continue;
		buf_add(out, s + run, i - run);
		buf_adds(out, x);
		run = i + 1;
	}
	buf_add(out, s + run, n - run);
}

static bool blank_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* One paragraph (lines [s, e), no blank line inside): <p> with <br>
 * between lines. */
static void html_paragraph(struct buf *out, const char *s, const char *e)
{
	while (e > s && e[-1] == '\n')
		e--;
	buf_adds(out, "<p>");
	for (const char *p = s; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;
		html_escape(out, p, (size_t)(le - p));
		if (nl == NULL)
			break;
		buf_adds(out, "<br>\n");
		p = nl + 1;
	}
	buf_adds(out, "</p>\n");
}

/* Paragraphs end at blank lines and at the languages' "----" line,
 * which becomes <hr>. */
static void text_to_html(struct buf *out, const char *s, size_t n)
{
	buf_adds(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
	const char *e = s + n, *para = NULL;
	for (const char *p = s; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *next = nl ? nl + 1 : e;
		size_t len = (size_t)((nl ? nl : e) - p);
		bool rule = len == 4 && memcmp(p, "----", 4) == 0;
		if (rule || blank_line(p, len)) {
			if (para)
				html_paragraph(out, para, p);
			para = NULL;
			if (rule)
				buf_adds(out, "<hr>\n");
		} else if (para == NULL) {
			para = p;
		}
		p = next;
	}
	if (para)
		html_paragraph(out, para, e);
	buf_adds(out, "</body></html>\n");
}

char *template_body_html(const char *body)
{
	struct buf out = BUF_INIT;
	text_to_html(&out, body, strlen(body));
	return buf_steal(&out);
}
