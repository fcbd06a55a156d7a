/*
 * Request-body JSON: strict parsing and field validation on top of jansson.
 * No state: thread-safe.
 */
#include "sf/sf_json.h"

#include "sl_err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sf_json_parse_object(const void *buf, size_t len, json_t **out, char *err, size_t cap) {
    *out = NULL;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        if (json_error_code(&je) == json_error_out_of_memory) {
            return SL_ENOMEM;
        }
        snprintf(err, cap, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return SL_EDECODE;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, cap, "the body must be a JSON object");
        return SL_EDECODE;
    }
    *out = j;
    return 0;
}

static const char *type_name(sf_json_type t) {
    static const char *names[] = {"a string",  "an integer", "a number",
                                  "a boolean", "an object",  "an array"};
    return names[t];
}

static bool type_ok(const json_t *v, sf_json_type t) {
    switch (t) {
    case SF_JSON_STRING:
        return json_is_string(v);
    case SF_JSON_INTEGER:
        return json_is_integer(v);
    case SF_JSON_NUMBER:
        return json_is_number(v);
    case SF_JSON_BOOL:
        return json_is_boolean(v);
    case SF_JSON_OBJECT:
        return json_is_object(v);
    case SF_JSON_ARRAY:
        return json_is_array(v);
    }
    return false;
}

static int check_field(const json_t *v, const sf_json_field *f, char *err, size_t cap) {
    if (!type_ok(v, f->type)) {
        snprintf(err, cap, "field \"%s\" must be %s", f->name, type_name(f->type));
        return SL_EINVAL;
    }
    if (f->min == 0 && f->max == 0) {
        return 0;
    }
    double x;
    const char *what;
    switch (f->type) {
    case SF_JSON_STRING:
        x = (double)json_string_length(v);
        what = "length";
        break;
    case SF_JSON_ARRAY:
        x = (double)json_array_size(v);
        what = "element count";
        break;
    case SF_JSON_INTEGER:
    case SF_JSON_NUMBER:
        x = json_number_value(v);
        what = "value";
        break;
    default:
        return 0;
    }
    if (x < f->min || x > f->max || isnan(x)) {
        snprintf(err, cap, "field \"%s\": %s must be between %g and %g", f->name, what, f->min,
                 f->max);
        return SL_EINVAL;
    }
    return 0;
}

int sf_json_check(const json_t *obj, const sf_json_field *fields, size_t n, bool allow_unknown,
                  char *err, size_t cap) {
    if (!json_is_object(obj)) {
        snprintf(err, cap, "the body must be a JSON object");
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, fields[i].name);
        if (v == NULL || json_is_null(v)) {
            if (fields[i].required) {
                snprintf(err, cap, "field \"%s\" is required", fields[i].name);
                return SL_EINVAL;
            }
            continue;
        }
        int rc = check_field(v, &fields[i], err, cap);
        if (rc != 0) {
            return rc;
        }
    }
    if (!allow_unknown) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)(uintptr_t)obj, key, v) {
            size_t i = 0;
            while (i < n && strcmp(fields[i].name, key) != 0) {
                i++;
            }
            if (i == n) {
                snprintf(err, cap, "unknown field \"%.64s\"", key);
                return SL_EINVAL;
            }
        }
    }
    return 0;
}

const char *sf_json_str(const json_t *obj, const char *key, const char *dflt) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : dflt;
}

int64_t sf_json_int(const json_t *obj, const char *key, int64_t dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

double sf_json_num(const json_t *obj, const char *key, double dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

bool sf_json_bool(const json_t *obj, const char *key, bool dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

json_t *sf_json_pack(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    return j;
}
