/*
 * jsonutil.h: small json-c helpers used across modules.
 *
 * Paths are dotted member names ("applicant.email"); getters return NULL/0
 * when any step is missing or of another type. Setters create intermediate
 * objects. Strings returned by getters are borrowed from the object.
 */
#ifndef EIMZA_JSONUTIL_H
#define EIMZA_JSONUTIL_H

#include "util.h"

#include <json-c/json.h>

json_object *jget(json_object *o, const char *path);
const char *jget_str(json_object *o, const char *path);
int64_t jget_int(json_object *o, const char *path);
bool jget_bool(json_object *o, const char *path);
/* RFC 3339 string member as time_t; 0 if missing or malformed. */
time_t jget_time(json_object *o, const char *path);

/* NULL value deletes the member. */
void jset_str(json_object *o, const char *path, const char *value);
void jset_int(json_object *o, const char *path, int64_t value);
void jset_bool(json_object *o, const char *path, bool value);
/* 0 deletes the member. */
void jset_time(json_object *o, const char *path, time_t t);
/* Takes over the reference to value (NULL deletes). */
void jset(json_object *o, const char *path, json_object *value);

json_object *jstr_or_null(const char *s);
/* Set a top-level member to a string, or to JSON null when s is NULL
 * (templates print null as nothing but refuse absent fields). */
void jput_str(json_object *o, const char *key, const char *s);
/* A JSON array of strings from a NULL-terminated vector (NULL -> []). */
json_object *jstrv(char *const *v);
/* Deep copy. */
json_object *jcopy(json_object *o);
/* Serialised compact / pretty; the string belongs to the object. */
const char *jtext(json_object *o);
const char *jpretty(json_object *o);

#endif
