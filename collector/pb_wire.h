/*
 * Wire primitives and the common messages (KeyValue, AnyValue,
 * InstrumentationScope, Resource, and the resource and scope levels) of the
 * collector's written OTLP protobuf decoders: pb_metrics.c and pb_traces.c.
 * They build the same protobuf-c structs protobuf_c_message_unpack() would,
 * in the request's arena, and decline (PM_NO) every shape they leave to
 * protobuf-c; pb_metrics.c's head comment says which.
 *
 * Thread: any (a decode worker); the arena belongs to the caller's thread.
 */
#ifndef SL_PB_WIRE_H
#define SL_PB_WIRE_H

#include "sl_arena.h"
#include "sl_err.h"

#include "opentelemetry/proto/common/v1/common.pb-c.h"
#include "opentelemetry/proto/resource/v1/resource.pb-c.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pm_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pm_av;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pm_arr;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pm_kvl;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pm_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pm_res;

/* AnyValue arrays and lists nested deeper than this go to protobuf-c (and
 * its depth check): exporters send flat attributes. */
#define PM_MAX_NEST 16

/* The INIT macros of proto3 messages cast const away from protobuf-c's empty
 * string (which is never written through). */
#define PM_CONST_CAST_BEGIN                                                                        \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wcast-qual\"")
#define PM_CONST_CAST_END _Pragma("GCC diagnostic pop")

enum { PM_VARINT = 0, PM_I64 = 1, PM_LEN = 2, PM_I32 = 5 };
#define PM_TAG(field, wt) (((field) << 3) | (wt))

typedef struct pm {
    sl_arena *a;
    int nest;
} pm;

/* Why a decode stops: SL_EUNSUPPORTED (protobuf-c decides) or SL_ENOMEM. */
#define PM_NO SL_EUNSUPPORTED
#define PM_TRY(x)                                                                                  \
    do {                                                                                           \
        int pm_rc_ = (x);                                                                          \
        if (pm_rc_ != 0) {                                                                         \
            return pm_rc_;                                                                         \
        }                                                                                          \
    } while (0)

/* --- wire primitives ------------------------------------------------------------ */

static inline int pm_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < 10 && p + i < end; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i); /* i == 9: bits past 64 drop */
        if (p[i] < 0x80) {
            *pp = p + i + 1;
            *out = v;
            return 0;
        }
    }
    return PM_NO;
}

/* protobuf-c's bool: true when any payload bit of the varint's bytes is set,
 * including bits past 64. */
static inline int pm_bool(const uint8_t **pp, const uint8_t *end, protobuf_c_boolean *out) {
    const uint8_t *p = *pp;
    int any = 0;
    for (unsigned i = 0; i < 10 && p + i < end; i++) {
        any |= p[i] & 0x7f;
        if (p[i] < 0x80) {
            *pp = p + i + 1;
            *out = any != 0;
            return 0;
        }
    }
    return PM_NO;
}

static inline int pm_fixed64(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    if (end - p < 8) {
        return PM_NO;
    }
    uint64_t v;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, 8);
#else
    v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
#endif
    *out = v;
    *pp = p + 8;
    return 0;
}

static inline int pm_double(const uint8_t **pp, const uint8_t *end, double *out) {
    uint64_t bits;
    PM_TRY(pm_fixed64(pp, end, &bits));
    memcpy(out, &bits, sizeof(*out));
    return 0;
}

/* A tag: wire type and field number 1..2047, in one byte (fields 1..15) or
 * two (Span.flags is field 16). Longer tags and padded encodings (a second
 * byte of zero) go to protobuf-c. */
static inline int pm_tag(const uint8_t **pp, const uint8_t *end, unsigned *tag) {
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80 && *p >= 8) {
        *tag = *p;
        *pp = p + 1;
        return 0;
    }
    if (end - p < 2 || *p < 0x80 || p[1] == 0 || p[1] >= 0x80) {
        return PM_NO;
    }
    *tag = (p[0] & 0x7fu) | (unsigned)p[1] << 7;
    *pp = p + 2;
    return 0;
}

/* A length-delimited payload: [*q, *qe), and *pp moves past it. */
static inline int pm_len(const uint8_t **pp, const uint8_t *end, const uint8_t **q,
                         const uint8_t **qe) {
    const uint8_t *p = *pp;
    uint64_t len = 0;
    unsigned i = 0;
    if (p < end && *p < 0x80 && *p < end - p) { /* a one-byte length that fits */
        *q = p + 1;
        *qe = p + 1 + *p;
        *pp = *qe;
        return 0;
    }
    for (;; i++) {
        if (i == 5 || p + i >= end) {
            return PM_NO;
        }
        len |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            break;
        }
    }
    p += i + 1;
    if (len > INT_MAX || len > (uint64_t)(end - p)) {
        return PM_NO;
    }
    *q = p;
    *qe = p + len;
    *pp = p + len;
    return 0;
}

/* Skips one field's payload (wire types 0, 1, 2, 5). */
static inline int pm_skip(const uint8_t **pp, const uint8_t *end, unsigned wt) {
    uint64_t v;
    const uint8_t *q, *qe;
    switch (wt) {
    case PM_VARINT:
        return pm_varint(pp, end, &v);
    case PM_I64:
        return pm_fixed64(pp, end, &v);
    case PM_LEN:
        return pm_len(pp, end, &q, &qe);
    case PM_I32:
        if (end - *pp < 4) {
            return PM_NO;
        }
        *pp += 4;
        return 0;
    default:
        return PM_NO;
    }
}

/* Per field number 1..15 of one message: how many length-delimited fields
 * and their payload bytes, so that repeated fields get arrays of the right
 * size before they are filled. */
typedef struct pm_counts {
    uint32_t n[16];
    size_t bytes[16];
} pm_counts;

/* Only the fields in mask (bit f for field f) are counted; the other entries
 * of c stay unset. */
int pm_count(const uint8_t *p, const uint8_t *end, unsigned mask, pm_counts *c);
/* How many fields with this (length-delimited) tag there are from p, which
 * is at one of them, to the end of the message. */
int pm_count_tag(const uint8_t *p, const uint8_t *end, unsigned tag, uint32_t *n);

static inline int pm_string(pm *m, const uint8_t *q, const uint8_t *qe, char **out) {
    size_t len = (size_t)(qe - q);
    char *s = sl_arena_alloc(m->a, len + 1);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    memcpy(s, q, len);
    s[len] = '\0';
    *out = s;
    return 0;
}

static inline int pm_bytes(pm *m, const uint8_t *q, const uint8_t *qe, ProtobufCBinaryData *out) {
    out->len = (size_t)(qe - q);
    out->data = NULL;
    if (out->len > 0) {
        out->data = sl_arena_memdup(m->a, q, out->len);
        if (out->data == NULL) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* A string, bytes or uint32 field whose tag was just read: its payload
 * decoded into *out (strings and bytes copied into the arena). */
static inline int pm_field_string(pm *m, const uint8_t **pp, const uint8_t *end, char **out) {
    const uint8_t *q, *qe;
    PM_TRY(pm_len(pp, end, &q, &qe));
    return pm_string(m, q, qe, out);
}

static inline int pm_field_bytes(pm *m, const uint8_t **pp, const uint8_t *end,
                                 ProtobufCBinaryData *out) {
    const uint8_t *q, *qe;
    PM_TRY(pm_len(pp, end, &q, &qe));
    return pm_bytes(m, q, qe, out);
}

static inline int pm_uint32(const uint8_t **pp, const uint8_t *end, uint32_t *out) {
    uint64_t v;
    PM_TRY(pm_varint(pp, end, &v));
    *out = (uint32_t)v; /* protobuf-c keeps the low 32 bits */
    return 0;
}

/* n pointers and n elements of size elem, the pointers set to the elements
 * (inline: the metrics decoder calls it for every metric and point list). */
static inline int pm_array(pm *m, uint32_t n, size_t elem, void ***ptrs, char **elems) {
    *ptrs = NULL;
    *elems = NULL;
    if (n == 0) {
        return 0;
    }
    *ptrs = sl_arena_alloc(m->a, n * sizeof(void *));
    *elems = sl_arena_alloc(m->a, n * elem);
    if (*ptrs == NULL || *elems == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        (*ptrs)[i] = *elems + i * elem;
    }
    return 0;
}
#define PM_ARRAY(m, n, type, arr, elems) pm_array((m), (n), sizeof(type), (void ***)(arr), (elems))

/* --- common: KeyValue, AnyValue, scope, resource ------------------------------- */

/* A KeyValue and the AnyValue it points to, allocated together. */
typedef struct pm_kvav {
    pm_kv kv;
    pm_av av;
} pm_kvav;

int pm_kvs_alloc(pm *m, uint32_t n, pm_kv ***arr);
int pm_keyvalue(pm *m, const uint8_t *p, const uint8_t *end, pm_kvav *out);
/* One element of a repeated KeyValue field whose (one-byte) tag was just
 * read, into the next slot of *arr; the first one sizes the array. */
int pm_kv_next(pm *m, const uint8_t **pp, const uint8_t *end, pm_kv ***arr, size_t *n);
int pm_scope_msg(pm *m, const uint8_t *p, const uint8_t *end, pm_scope *out);
int pm_resource(pm *m, const uint8_t *p, const uint8_t *end, pm_res *out);

/* --- the resource and scope levels ----------------------------------------------- */

/* A message parsed into out (a repeated message's element, or a singular one). */
typedef int (*pm_point_fn)(pm *m, const uint8_t *p, const uint8_t *end, void *out);

/* ResourceMetrics, ScopeMetrics, ResourceSpans and ScopeSpans: field 1 one message (resource,
 * scope), 2 repeated messages (scope_metrics, metrics, scope_spans, spans), 3 schema_url. */
typedef struct pm_level {
    void **one;
    size_t one_size;
    pm_point_fn parse_one;
    void ***many;
    size_t *nmany;
    size_t many_size;
    pm_point_fn parse_many;
    char **schema_url;
} pm_level;

int pm_level_msg(pm *m, const uint8_t *p, const uint8_t *end, const pm_level *l);
int pm_scope_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out);
int pm_resource_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out);

/* One element of a repeated message field whose (one-byte) tag was just read,
 * parsed into the next of *arr's elements of size elem; the first one sizes
 * the array (so messages without the field pay no counting pass). */
int pm_msg_next(pm *m, const uint8_t **pp, const uint8_t *end, void ***arr, size_t *n, size_t elem,
                pm_point_fn parse);
/* An Export*ServiceRequest: field 1, repeated, the resource level's
 * messages, elem bytes each; anything else is declined. */
int pm_request(pm *m, const uint8_t *buf, size_t len, void ***arr, size_t *n, size_t elem,
               pm_point_fn parse);

#endif
