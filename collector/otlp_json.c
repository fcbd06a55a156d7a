/*
 * OTLP/JSON decoder (see otlp_json.h). jansson parses the body into a tree; a
 * recursive walk over the protobuf-c descriptors then fills message structs
 * allocated in the request arena, copying every string and byte array out of
 * the tree, which is freed before returning.
 *
 * Invariants: a message is initialised with its descriptor's message_init
 * before any of its fields is written; a field's presence (has_*, oneof case,
 * n_*) is written only once its value decoded; recursion is bounded by
 * COL_JSON_MAX_DEPTH messages, and the error path (frames[]) by the same.
 *
 * Thread: whichever thread decodes the request (a decode worker).
 */
#include "otlp_json.h"

#include "sl_err.h"
#include "sl_util.h"

#include <jansson.h>

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One step of the path to the value being decoded, for error messages. */
typedef struct jd_frame {
    const char *key; /* the JSON key as the client sent it */
    size_t index;    /* element index, when has_index */
    bool has_index;
} jd_frame;

typedef struct jdec {
    sl_arena *a;
    char *err;
    size_t err_size;
    int depth; /* messages currently being decoded */
    size_t nframes;
    jd_frame frames[COL_JSON_MAX_DEPTH];
} jdec;

static size_t jd_appendf(char *buf, size_t size, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t jd_appendf(char *buf, size_t size, size_t off, const char *fmt, ...) {
    if (off + 1 >= size) {
        return off;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + off, size - off, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return off;
    }
    off += (size_t)n;
    return off < size ? off : size - 1;
}

/* Writes "<path>: <message>" to the caller's err buffer. When both do not
 * fit, the middle of the path gives way so that the message and the path's
 * ends (which span, which field) survive. Returns SL_EDECODE. */
static int jd_fail(jdec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int jd_fail(jdec *d, const char *fmt, ...) {
    if (d->err == NULL || d->err_size == 0) {
        return SL_EDECODE;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->nframes == 0) {
        snprintf(d->err, d->err_size, "%s", msg);
        return SL_EDECODE;
    }
    char path[2048];
    size_t plen = 0;
    for (size_t i = 0; i < d->nframes; i++) {
        const jd_frame *f = &d->frames[i];
        plen = jd_appendf(path, sizeof(path), plen, "%s%s", i > 0 ? "." : "", f->key);
        if (f->has_index) {
            plen = jd_appendf(path, sizeof(path), plen, "[%zu]", f->index);
        }
    }
    size_t mlen = strlen(msg);
    size_t room = d->err_size > mlen + 3 ? d->err_size - mlen - 3 : 0; /* ": " and NUL */
    if (plen <= room || room < 16) {
        snprintf(d->err, d->err_size, "%s: %s", path, msg);
    } else {
        size_t head = (room - 3) / 2, tail = room - 3 - head;
        snprintf(d->err, d->err_size, "%.*s...%s: %s", (int)head, path, path + plen - tail, msg);
    }
    return SL_EDECODE;
}

static int jd_nomem(jdec *d) {
    if (d->err != NULL && d->err_size > 0) {
        snprintf(d->err, d->err_size, "out of memory decoding the JSON body (arena limit reached)");
    }
    return SL_ENOMEM;
}

static const char *jd_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

static const char *pb_type_name(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
        return "int32";
    case PROTOBUF_C_TYPE_SINT32:
        return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32:
        return "sfixed32";
    case PROTOBUF_C_TYPE_INT64:
        return "int64";
    case PROTOBUF_C_TYPE_SINT64:
        return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64:
        return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32:
        return "uint32";
    case PROTOBUF_C_TYPE_FIXED32:
        return "fixed32";
    case PROTOBUF_C_TYPE_UINT64:
        return "uint64";
    case PROTOBUF_C_TYPE_FIXED64:
        return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT:
        return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
        return "double";
    case PROTOBUF_C_TYPE_BOOL:
        return "bool";
    case PROTOBUF_C_TYPE_ENUM:
        return "enum";
    case PROTOBUF_C_TYPE_STRING:
        return "string";
    case PROTOBUF_C_TYPE_BYTES:
        return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE:
        return "message";
    }
    return "unknown";
}

/* Size of one element of a repeated field's C array, as protobuf-c lays it out. */
static size_t pb_elt_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* True when key names the field: its proto name, or that name in lowerCamelCase
 * (an underscore drops out and upper-cases the next lowercase letter, the
 * protobuf JSON mapping's rule). */
static bool jd_key_is(const char *name, const char *key) {
    if (name[0] != key[0]) {
        return false; /* both spellings start with the name's first letter */
    }
    if (strcmp(name, key) == 0) {
        return true;
    }
    bool upper = false;
    for (; *name != '\0'; name++) {
        char c = *name;
        if (c == '_') {
            upper = true;
            continue;
        }
        if (upper && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        upper = false;
        if (*key++ != c) {
            return false;
        }
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *jd_find_field(const ProtobufCMessageDescriptor *desc,
                                                     const char *key) {
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (jd_key_is(desc->fields[i].name, key)) {
            return &desc->fields[i];
        }
    }
    return NULL;
}

/* OTLP encodes the trace and span ids of every message (Span, Link, LogRecord,
 * Exemplar) as hex rather than base64. Returns the id's size in bytes, or 0
 * for an ordinary bytes field. */
static size_t jd_hex_id_size(const ProtobufCFieldDescriptor *fd) {
    if (fd->type != PROTOBUF_C_TYPE_BYTES) {
        return 0;
    }
    if (strcmp(fd->name, "trace_id") == 0) {
        return 16;
    }
    if (strcmp(fd->name, "span_id") == 0 || strcmp(fd->name, "parent_span_id") == 0) {
        return 8;
    }
    return 0;
}

/* RFC 8259 number syntax, which jansson (and so jd_parse_number) accepts. */
static bool jd_is_number_text(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i >= n) {
        return false;
    }
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    return i == n;
}

/* Parses number text inside a JSON string with jansson's own (locale-safe)
 * number parser. Returns a new reference or NULL when out of range. */
static json_t *jd_parse_number(const char *s, size_t n) {
    json_error_t e;
    return json_loadb(s, n, JSON_DECODE_ANY, &e);
}

/* Reads an integral value given as a JSON number or a string holding one, as
 * a sign and a magnitude so that both int64 and uint64 ranges fit. */
static int jd_integral(jdec *d, json_t *v, const char *type, bool *neg, uint64_t *mag) {
    switch (json_typeof(v)) {
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        *neg = i < 0;
        *mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        return 0;
    }
    case JSON_REAL: {
        double r = json_real_value(v);
        if (!isfinite(r) || r != trunc(r)) {
            return jd_fail(d, "expected an integer (%s), got %.17g", type, r);
        }
        if (fabs(r) >= 18446744073709551616.0) {
            return jd_fail(d, "value out of range for %s", type);
        }
        *neg = r < 0;
        *mag = (uint64_t)fabs(r);
        return 0;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        bool minus = n > 0 && s[0] == '-';
        if (sl_parse_u64((sl_str){s + minus, n - minus}, mag) == 0) {
            *neg = minus;
            return 0;
        }
        if (!jd_is_number_text(s, n)) {
            return jd_fail(d, "expected an integer (%s), got \"%.40s\"", type, s);
        }
        json_t *num = jd_parse_number(s, n);
        if (num == NULL) {
            return jd_fail(d, "value out of range for %s", type);
        }
        int rc = jd_integral(d, num, type, neg, mag);
        json_decref(num);
        return rc;
    }
    default:
        return jd_fail(d, "expected an integer (%s) as a number or a decimal string, got %s", type,
                       jd_type(v));
    }
}

static int jd_signed(jdec *d, json_t *v, ProtobufCType t, int64_t min, int64_t max, int64_t *out) {
    bool neg;
    uint64_t mag;
    int rc = jd_integral(d, v, pb_type_name(t), &neg, &mag);
    if (rc != 0) {
        return rc;
    }
    if (neg ? mag > (uint64_t)(-(min + 1)) + 1 : mag > (uint64_t)max) {
        return jd_fail(d, "value out of range for %s", pb_type_name(t));
    }
    *out = !neg ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return 0;
}

static int jd_unsigned(jdec *d, json_t *v, ProtobufCType t, uint64_t max, uint64_t *out) {
    bool neg;
    uint64_t mag;
    int rc = jd_integral(d, v, pb_type_name(t), &neg, &mag);
    if (rc != 0) {
        return rc;
    }
    if ((neg && mag != 0) || mag > max) {
        return jd_fail(d, "value out of range for %s", pb_type_name(t));
    }
    *out = mag;
    return 0;
}

static int jd_double(jdec *d, json_t *v, double *out) {
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        *out = (double)json_integer_value(v);
        return 0;
    case JSON_REAL:
        *out = json_real_value(v);
        return 0;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(s, "Infinity") == 0) {
            *out = INFINITY;
            return 0;
        }
        if (strcmp(s, "-Infinity") == 0) {
            *out = -INFINITY;
            return 0;
        }
        if (!jd_is_number_text(s, n)) {
            return jd_fail(d,
                           "expected a number or \"NaN\", \"Infinity\", \"-Infinity\", "
                           "got \"%.40s\"",
                           s);
        }
        json_t *num = jd_parse_number(s, n);
        if (num == NULL) {
            return jd_fail(d, "number out of range for double: \"%.40s\"", s);
        }
        int rc = jd_double(d, num, out);
        json_decref(num);
        return rc;
    }
    default:
        return jd_fail(d, "expected a number, got %s", jd_type(v));
    }
}

static int jd_enum(jdec *d, json_t *v, const ProtobufCEnumDescriptor *ed, int32_t *out) {
    if (json_is_string(v) && !jd_is_number_text(json_string_value(v), json_string_length(v))) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        if (ev == NULL) {
            return jd_fail(d, "unknown value \"%.40s\" for enum %s", json_string_value(v),
                           ed->name);
        }
        *out = ev->value;
        return 0;
    }
    if (!json_is_number(v) && !json_is_string(v)) {
        return jd_fail(d, "expected an enum value as an integer, got %s", jd_type(v));
    }
    int64_t x = 0;
    int rc = jd_signed(d, v, PROTOBUF_C_TYPE_ENUM, INT32_MIN, INT32_MAX, &x);
    if (rc == 0) {
        *out = (int32_t)x;
    }
    return rc;
}

static int jd_hex(jdec *d, json_t *v, size_t size, ProtobufCBinaryData *out, bool *present) {
    if (!json_is_string(v)) {
        return jd_fail(d, "expected a hex string, got %s", jd_type(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        /* The OTLP convention for "no id" (e.g. a root span's parentSpanId). */
        out->len = 0;
        out->data = NULL;
        *present = false;
        return 0;
    }
    if (n != 2 * size) {
        return jd_fail(d, "expected %zu hex digits, got %zu characters", 2 * size, n);
    }
    uint8_t *p = sl_arena_alloc(d->a, size);
    if (p == NULL) {
        return jd_nomem(d);
    }
    if (sl_hex_decode(s, n, p, size) != 0) {
        return jd_fail(d, "expected %zu hex digits, got \"%.40s\"", 2 * size, s);
    }
    out->len = size;
    out->data = p;
    return 0;
}

static int jd_b64_digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

/* Standard or URL-safe base64, with or without padding (as protobuf's JSON
 * parsers accept it). */
static int jd_base64(jdec *d, json_t *v, ProtobufCBinaryData *out) {
    if (!json_is_string(v)) {
        return jd_fail(d, "expected a base64 string, got %s", jd_type(v));
    }
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    size_t pad = 0;
    while (pad < 2 && n > pad && s[n - 1 - pad] == '=') {
        pad++;
    }
    if (pad > 0 && n % 4 != 0) {
        return jd_fail(d, "invalid base64: bad padding");
    }
    n -= pad;
    if (n % 4 == 1) {
        return jd_fail(d, "invalid base64: truncated");
    }
    size_t size = n / 4 * 3 + (n % 4 != 0 ? n % 4 - 1 : 0);
    uint8_t *p = sl_arena_alloc(d->a, size + 1);
    if (p == NULL) {
        return jd_nomem(d);
    }
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int x = jd_b64_digit(s[i]);
        if (x < 0) {
            return jd_fail(d, "invalid base64: unexpected character at offset %zu", i);
        }
        acc = acc << 6 | (uint32_t)x;
        if (i % 4 == 3) {
            p[o++] = (uint8_t)(acc >> 16);
            p[o++] = (uint8_t)(acc >> 8);
            p[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) {
        p[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) {
        p[o++] = (uint8_t)(acc >> 10);
        p[o++] = (uint8_t)(acc >> 2);
    }
    out->len = o;
    out->data = p;
    return 0;
}

static int jd_message(jdec *d, const ProtobufCMessageDescriptor *desc, json_t *v,
                      ProtobufCMessage *msg);

/* Decodes one value of field fd into dst (the member, or an element of a
 * repeated member's array). *present becomes false for values that mean
 * "unset" although not null (an empty hex id). */
static int jd_value(jdec *d, const ProtobufCFieldDescriptor *fd, json_t *v, void *dst,
                    bool *present) {
    int rc = 0;
    *present = true;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int64_t x = 0;
        rc = jd_signed(d, v, fd->type, INT32_MIN, INT32_MAX, &x);
        if (rc == 0) {
            int32_t y = (int32_t)x;
            memcpy(dst, &y, sizeof(y));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t x = 0;
        rc = jd_signed(d, v, fd->type, INT64_MIN, INT64_MAX, &x);
        if (rc == 0) {
            memcpy(dst, &x, sizeof(x));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint64_t x = 0;
        rc = jd_unsigned(d, v, fd->type, UINT32_MAX, &x);
        if (rc == 0) {
            uint32_t y = (uint32_t)x;
            memcpy(dst, &y, sizeof(y));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t x = 0;
        rc = jd_unsigned(d, v, fd->type, UINT64_MAX, &x);
        if (rc == 0) {
            memcpy(dst, &x, sizeof(x));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        double x = 0;
        rc = jd_double(d, v, &x);
        if (rc == 0 && isfinite(x) && fabs(x) > FLT_MAX) {
            rc = jd_fail(d, "value out of range for float");
        }
        if (rc == 0) {
            float y = (float)x;
            memcpy(dst, &y, sizeof(y));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x = 0;
        rc = jd_double(d, v, &x);
        if (rc == 0) {
            memcpy(dst, &x, sizeof(x));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        if (!json_is_boolean(v)) {
            return jd_fail(d, "expected true or false, got %s", jd_type(v));
        }
        protobuf_c_boolean b = json_is_true(v);
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t x = 0;
        rc = jd_enum(d, v, fd->descriptor, &x);
        if (rc == 0) {
            memcpy(dst, &x, sizeof(x));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) {
            return jd_fail(d, "expected a string, got %s", jd_type(v));
        }
        char *s = sl_arena_strndup(d->a, json_string_value(v), json_string_length(v));
        if (s == NULL) {
            return jd_nomem(d);
        }
        memcpy(dst, &s, sizeof(s));
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b = {0, NULL};
        size_t id_size = jd_hex_id_size(fd);
        rc = id_size != 0 ? jd_hex(d, v, id_size, &b, present) : jd_base64(d, v, &b);
        if (rc == 0) {
            memcpy(dst, &b, sizeof(b));
        }
        return rc;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = fd->descriptor;
        ProtobufCMessage *m = sl_arena_alloc(d->a, md->sizeof_message);
        if (m == NULL) {
            return jd_nomem(d);
        }
        rc = jd_message(d, md, v, m);
        if (rc == 0) {
            memcpy(dst, &m, sizeof(ProtobufCMessage *));
        }
        return rc;
    }
    }
    return jd_fail(d, "unsupported field type %d", (int)fd->type);
}

static int jd_singular(jdec *d, const ProtobufCFieldDescriptor *fd, json_t *v,
                       ProtobufCMessage *msg) {
    uint8_t *base = (uint8_t *)msg;
    bool present;
    int rc = jd_value(d, fd, v, base + fd->offset, &present);
    if (rc != 0) {
        return rc;
    }
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t cur;
        memcpy(&cur, base + fd->quantifier_offset, sizeof(cur));
        uint32_t id = present ? fd->id : cur == fd->id ? 0 : cur;
        memcpy(base + fd->quantifier_offset, &id, sizeof(id));
    } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_STRING &&
               fd->type != PROTOBUF_C_TYPE_MESSAGE) {
        /* proto2 presence; strings and messages signal it by a non-NULL pointer. */
        protobuf_c_boolean has = present;
        memcpy(base + fd->quantifier_offset, &has, sizeof(has));
    }
    return 0;
}

static int jd_repeated(jdec *d, const ProtobufCFieldDescriptor *fd, json_t *v,
                       ProtobufCMessage *msg) {
    if (!json_is_array(v)) {
        return jd_fail(d, "expected an array, got %s", jd_type(v));
    }
    int rc = 0;
    size_t n = json_array_size(v);
    uint8_t *arr = NULL;
    if (n > 0) {
        size_t esize = pb_elt_size(fd->type);
        const ProtobufCMessageDescriptor *md = NULL;
        uint8_t *block = NULL;
        size_t msize = 0;
        if (esize == 0 || n > SIZE_MAX / esize) {
            return jd_nomem(d);
        }
        arr = sl_arena_alloc(d->a, n * esize);
        if (arr == NULL) {
            return jd_nomem(d);
        }
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* All elements in one block: one arena call instead of n. */
            md = fd->descriptor;
            msize = md->sizeof_message;
            block = n <= SIZE_MAX / msize ? sl_arena_alloc(d->a, n * msize) : NULL;
            if (block == NULL) {
                return jd_nomem(d);
            }
        }
        jd_frame *f = &d->frames[d->nframes - 1];
        f->has_index = true;
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *e = json_array_get(v, i);
            f->index = i;
            if (json_is_null(e)) {
                rc = jd_fail(d, "null is not allowed as an array element");
            } else if (md != NULL) {
                ProtobufCMessage *m = (ProtobufCMessage *)(block + i * msize);
                memcpy(arr + i * esize, &m, sizeof(ProtobufCMessage *));
                rc = jd_message(d, md, e, m);
            } else {
                bool present;
                rc = jd_value(d, fd, e, arr + i * esize, &present);
            }
        }
        f->has_index = false;
    }
    if (rc == 0) {
        uint8_t *base = (uint8_t *)msg;
        memcpy(base + fd->quantifier_offset, &n, sizeof(n));
        memcpy(base + fd->offset, &arr, sizeof(arr));
    }
    return rc;
}

static int jd_message(jdec *d, const ProtobufCMessageDescriptor *desc, json_t *v,
                      ProtobufCMessage *msg) {
    desc->message_init(msg);
    if (!json_is_object(v)) {
        return jd_fail(d, "expected an object, got %s", jd_type(v));
    }
    if (d->depth >= COL_JSON_MAX_DEPTH) {
        return jd_fail(d, "messages nested deeper than %d levels", COL_JSON_MAX_DEPTH);
    }
    d->depth++;
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        const ProtobufCFieldDescriptor *fd = jd_find_field(desc, key);
        if (fd == NULL || json_is_null(val)) {
            continue; /* unknown fields are ignored; null means unset */
        }
        d->frames[d->nframes++] = (jd_frame){key, 0, false};
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = jd_repeated(d, fd, val, msg);
        } else {
            rc = jd_singular(d, fd, val, msg);
        }
        d->nframes--;
        if (rc != 0) {
            break;
        }
    }
    d->depth--;
    return rc;
}

static bool jd_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return false;
        }
    }
    return true;
}

/* Bytes jansson 2.14 allocates per structural element, with malloc's
 * per-block overhead, rounded up (measured: an object with its hashtable,
 * an array with its initial table, a string or number value, an object
 * member's hashtable entry). */
#define JD_COST_OBJECT 256u
#define JD_COST_ARRAY 160u
#define JD_COST_VALUE 64u
#define JD_COST_MEMBER 64u

size_t col_json_parse_cost(const char *json, size_t len) {
    size_t objects = 0, arrays = 0, values = 1, members = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            values++;
            break;
        case '{':
            objects++;
            break;
        case '[':
            arrays++;
            break;
        case ',':
            values++;
            break;
        case ':':
            members++;
            break;
        default:
            break;
        }
    }
    /* Every string's text is copied too: len bounds that. */
    return len + objects * JD_COST_OBJECT + arrays * JD_COST_ARRAY + values * JD_COST_VALUE +
           members * JD_COST_MEMBER;
}

int col_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                    sl_arena *a, ProtobufCMessage **out, char *err, size_t err_size) {
    assert(desc != NULL && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    assert(a != NULL && out != NULL && (json != NULL || len == 0));
    jdec d = {.a = a, .err = err, .err_size = err != NULL ? err_size : 0};
    json_t *root = NULL;
    int rc;
    if (d.err_size > 0) {
        d.err[0] = '\0';
    }
    if (jd_blank(json, len)) {
        rc = jd_fail(&d, "empty body: expected a JSON object");
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL && json_error_code(&jerr) == json_error_out_of_memory) {
        rc = jd_nomem(&d);
        goto out;
    }
    if (root == NULL) {
        const char *hint = strstr(jerr.text, "too big integer") != NULL
                               ? " (64-bit integers beyond the int64 range must be sent as "
                                 "decimal strings)"
                               : "";
        rc = jd_fail(&d, "invalid JSON at line %d, column %d: %s%s", jerr.line, jerr.column,
                     jerr.text, hint);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = jd_fail(&d, "the top-level JSON value must be an object, got %s", jd_type(root));
        goto out;
    }
    ProtobufCMessage *msg = sl_arena_alloc(a, desc->sizeof_message);
    if (msg == NULL) {
        rc = jd_nomem(&d);
        goto out;
    }
    rc = jd_message(&d, desc, root, msg);
    if (rc == 0) {
        *out = msg;
    }
out:
    json_decref(root);
    return rc;
}
