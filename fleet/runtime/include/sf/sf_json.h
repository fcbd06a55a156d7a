/*
 * JSON helpers over jansson: strict parsing of request bodies (one object,
 * no duplicate keys, bounded size) and declarative validation of an object's
 * fields with error messages fit for a 400 answer. Thread-safe (no state).
 */
#ifndef SF_JSON_H
#define SF_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SF_JSON_STRING = 0,
    SF_JSON_INTEGER,
    SF_JSON_NUMBER,
    SF_JSON_BOOL,
    SF_JSON_OBJECT,
    SF_JSON_ARRAY
} sf_json_type;

/* One expected field. For strings min/max bound the length in bytes, for
 * integers and numbers the value, for arrays the element count; min = max = 0
 * means unbounded. */
typedef struct sf_json_field {
    const char *name;
    sf_json_type type;
    bool required;
    double min;
    double max;
} sf_json_field;

/* Parses len bytes as one JSON object (duplicate keys refused). On error
 * writes a message with the position into err (cap bytes) and returns
 * SL_EDECODE; SL_ENOMEM when out of memory. The caller owns *out. */
int sf_json_parse_object(const void *buf, size_t len, json_t **out, char *err, size_t cap);

/* Checks obj against fields: required fields present, types and bounds
 * right, strings valid UTF-8 without NUL (jansson guarantees that), and with
 * allow_unknown false no other keys. Returns 0 or SL_EINVAL with a message
 * naming the field in err. */
int sf_json_check(const json_t *obj, const sf_json_field *fields, size_t n, bool allow_unknown,
                  char *err, size_t cap);

/* Borrowed getters with defaults for optional fields. */
const char *sf_json_str(const json_t *obj, const char *key, const char *dflt);
int64_t sf_json_int(const json_t *obj, const char *key, int64_t dflt);
double sf_json_num(const json_t *obj, const char *key, double dflt);
bool sf_json_bool(const json_t *obj, const char *key, bool dflt);

/* Builds an object from a jansson pack format (json_pack syntax); NULL on a
 * bad format or out of memory. The caller owns it. */
json_t *sf_json_pack(const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif
