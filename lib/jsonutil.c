/* jsonutil.c: see jsonutil.h. */
#include "jsonutil.h"
#include "log.h"

#include <string.h>

/* Walk all but the last path step; returns the parent object or NULL.
 * With create set, missing steps become new objects. *last receives the
 * final member name (points into path). */
static json_object *walk(json_object *o, const char *path, bool create, char *tmp, size_t cap,
			 const char **last)
{
	if (o == NULL || strlen(path) >= cap)
		return NULL;
	strcpy(tmp, path);
	char *p = tmp;
	for (char *dot; (dot = strchr(p, '.')) != NULL; p = dot + 1) {
		*dot = '\0';
		json_object *next = NULL;
		if (!json_object_object_get_ex(o, p, &next) || !json_object_is_type(next, json_type_object)) {
			if (!create)
				return NULL;
			next = json_object_new_object();
			json_object_object_add(o, p, next);
		}
		o = next;
	}
	*last = p;
	return json_object_is_type(o, json_type_object) ? o : NULL;
}

json_object *jget(json_object *o, const char *path)
{
	char tmp[256];
	const char *last;
	json_object *parent = walk(o, path, false, tmp, sizeof(tmp), &last);
	json_object *v = NULL;
	if (parent == NULL || !json_object_object_get_ex(parent, last, &v))
		return NULL;
	return v;
}

const char *jget_str(json_object *o, const char *path)
{
	json_object *v = jget(o, path);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t jget_int(json_object *o, const char *path)
{
	json_object *v = jget(o, path);
	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

bool jget_bool(json_object *o, const char *path)
{
	json_object *v = jget(o, path);
	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

time_t jget_time(json_object *o, const char *path)
{
	const char *s = jget_str(o, path);
	time_t t;
	if (s == NULL || time_parse_rfc3339(s, &t) < 0)
		return 0;
	return t;
}

void jset(json_object *o, const char *path, json_object *value)
{
	char tmp[256];
	const char *last;
	json_object *parent = walk(o, path, value != NULL, tmp, sizeof(tmp), &last);
	if (parent == NULL) {
		json_object_put(value);
		return;
	}
	if (value == NULL)
		json_object_object_del(parent, last);
	else
		json_object_object_add(parent, last, value);
}

void jset_str(json_object *o, const char *path, const char *value)
{
	jset(o, path, value ? json_object_new_string(value) : NULL);
}

void jset_int(json_object *o, const char *path, int64_t value)
{
	jset(o, path, json_object_new_int64(value));
}

void jset_bool(json_object *o, const char *path, bool value)
{
	jset(o, path, json_object_new_boolean(value));
}

void jset_time(json_object *o, const char *path, time_t t)
{
	char buf[32];
	jset(o, path, t ? json_object_new_string(time_fmt_utc(t, buf, sizeof(buf))) : NULL);
}

json_object *jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

void jput_str(json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, s ? json_object_new_string(s) : NULL);
}

json_object *jstrv(char *const *v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

json_object *jcopy(json_object *o)
{
	json_object *c = NULL;
	if (o == NULL)
		return NULL;
	if (json_object_deep_copy(o, &c, NULL) < 0)
		fatalx("json: deep copy failed (out of memory)");
	return c;
}

const char *jtext(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

const char *jpretty(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
}
