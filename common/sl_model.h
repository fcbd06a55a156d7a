/*
 * The in-memory span and log model shared by the collector (which fills it from OTLP),
 * storage (which encodes it into WAL records and blocks) and query (which reads
 * it back). Everything is a plain view: strings are sl_str pointing into memory
 * owned by whoever built the spans (a request arena, a decoded block's arena).
 */
#ifndef SL_MODEL_H
#define SL_MODEL_H

#include "sl_util.h"

#include <stdint.h>

/* Value types, numbered like the OTLP AnyValue oneof. Arrays and key/value
 * lists are kept as their canonical JSON text in v.s (what Jaeger shows). */
typedef enum {
    SL_VAL_EMPTY = 0,
    SL_VAL_STR = 1,
    SL_VAL_BOOL = 2,
    SL_VAL_INT = 3,
    SL_VAL_DOUBLE = 4,
    SL_VAL_ARRAY = 5,
    SL_VAL_KVLIST = 6,
    SL_VAL_BYTES = 7,
} sl_val_type;

typedef struct sl_value {
    uint8_t type; /* sl_val_type */
    union {
        sl_str s; /* STR, BYTES (raw), ARRAY and KVLIST (JSON text) */
        int64_t i;
        double d;
        int b;
    } v;
} sl_value;

typedef struct sl_attr {
    sl_str key;
    sl_value val;
} sl_attr;

typedef struct sl_event {
    uint64_t ts_unix_nano;
    sl_str name;
    sl_attr *attrs;
    uint32_t nattrs;
    uint32_t dropped_attrs;
} sl_event;

typedef struct sl_link {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    sl_str trace_state;
    sl_attr *attrs;
    uint32_t nattrs;
    uint32_t dropped_attrs;
    uint32_t flags;
} sl_link;

/* A resource (process) shared by many spans. service is the value of the
 * service.name attribute, or "unknown_service" when absent. */
typedef struct sl_resource {
    sl_str service;
    sl_attr *attrs;
    uint32_t nattrs;
    uint32_t dropped_attrs;
} sl_resource;

/* OTLP span kinds and status codes, by their wire numbers. */
enum {
    SL_KIND_UNSPECIFIED,
    SL_KIND_INTERNAL,
    SL_KIND_SERVER,
    SL_KIND_CLIENT,
    SL_KIND_PRODUCER,
    SL_KIND_CONSUMER
};
enum { SL_STATUS_UNSET, SL_STATUS_OK, SL_STATUS_ERROR };

typedef struct sl_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* all zero for a root span */
    uint32_t flags;
    uint8_t kind;        /* SL_KIND_* */
    uint8_t status_code; /* SL_STATUS_* */
    uint64_t start_unix_nano;
    uint64_t end_unix_nano;
    sl_str name;
    sl_str trace_state;
    sl_str status_message;
    sl_str scope_name;
    sl_str scope_version;
    const sl_resource *resource;
    sl_attr *attrs;
    uint32_t nattrs;
    uint32_t dropped_attrs;
    sl_event *events;
    uint32_t nevents;
    uint32_t dropped_events;
    sl_link *links;
    uint32_t nlinks;
    uint32_t dropped_links;
} sl_span;

/* A log record (OTLP LogRecord with its resource and scope). The body keeps
 * its AnyValue type; arrays and kvlists are JSON text as for attributes. */
typedef struct sl_log_record {
    uint64_t time_unix_nano;     /* 0: unknown (the decoder fills in observed time) */
    uint64_t observed_unix_nano; /* when the collector or agent saw it */
    int32_t severity_number;     /* 0..24, OTLP SeverityNumber */
    uint32_t flags;              /* W3C trace flags */
    sl_str severity_text;
    sl_str event_name;
    sl_value body;
    uint8_t trace_id[16]; /* all zero: none */
    uint8_t span_id[8];   /* all zero: none */
    sl_str scope_name;
    sl_str scope_version;
    const sl_resource *resource;
    sl_attr *attrs;
    uint32_t nattrs;
    uint32_t dropped_attrs;
} sl_log_record;

/* Exact equality of two values (doubles bit for bit: -0.0 and 0.0 differ,
 * NaN payloads count) and of two resources (same attributes in the same
 * order). */
static inline bool sl_value_eq(const sl_value *a, const sl_value *b) {
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return sl_str_eq(a->v.s, b->v.s);
    case SL_VAL_INT:
        return a->v.i == b->v.i;
    case SL_VAL_BOOL:
        return a->v.b == b->v.b;
    case SL_VAL_DOUBLE:
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    default:
        return true;
    }
}

static inline bool sl_resource_eq(const sl_resource *a, const sl_resource *b) {
    if (!sl_str_eq(a->service, b->service) || a->nattrs != b->nattrs ||
        a->dropped_attrs != b->dropped_attrs) {
        return false;
    }
    for (uint32_t i = 0; i < a->nattrs; i++) {
        if (!sl_str_eq(a->attrs[i].key, b->attrs[i].key) ||
            !sl_value_eq(&a->attrs[i].val, &b->attrs[i].val)) {
            return false;
        }
    }
    return true;
}

static inline uint64_t sl_span_duration_nano(const sl_span *s) {
    return s->end_unix_nano > s->start_unix_nano ? s->end_unix_nano - s->start_unix_nano : 0;
}

#endif
