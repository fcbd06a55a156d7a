/*
 * OTLP trace request -> sl_span model (see decode_traces.h). This runs for every
 * span the collector accepts, so it counts before it allocates: one array for
 * all spans, one per ResourceSpans for resources, and per span one block for
 * all attributes (the span's, its events' and its links'), one for events and
 * one for links. Strings are views into the request; only array/kvlist
 * attribute values are rendered, as JSON text, in two passes (measure, write)
 * so that each needs exactly one allocation.
 *
 * Invariants: repeated message elements of req are non-NULL (as protobuf-c and
 * col_json_decode produce them); singular message pointers may be NULL;
 * rendering recursion is bounded by COL_TRACES_MAX_VALUE_DEPTH.
 *
 * Thread: whichever thread decodes the request (a decode worker).
 */
#include "decode_traces.h"

#include "sl_err.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DT_STR_(x) #x
#define DT_STR(x) DT_STR_(x)
#define DT_TOO_DEEP "nested deeper than " DT_STR(COL_TRACES_MAX_VALUE_DEPTH) " levels"

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rspans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_sspans;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;

static sl_str dt_view(const char *s) {
    return s != NULL ? (sl_str){s, strlen(s)} : (sl_str){"", 0};
}

static sl_str dt_view_bytes(ProtobufCBinaryData b) {
    return b.len > 0 ? (sl_str){(const char *)b.data, b.len} : (sl_str){"", 0};
}

/* sl_is_zero, inlined for the fixed id sizes of the hot path. */
static bool dt_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

static bool dt_fits_u32(size_t n) {
    return (uint64_t)n <= UINT32_MAX;
}

/* The n attributes at off in block, or NULL when there are none (block may
 * itself be NULL then). */
static sl_attr *dt_slice(sl_attr *block, size_t off, size_t n) {
    return n > 0 ? block + off : NULL;
}

/* Returns room for n elements of size bytes, or NULL (n must be > 0). */
static void *dt_alloc_array(sl_arena *a, size_t n, size_t size) {
    return n <= SIZE_MAX / size ? sl_arena_alloc(a, n * size) : NULL;
}

/* ---- compact JSON text for array and kvlist values ------------------------ */

/* A JSON writer that only counts while out is NULL (the measuring pass). */
typedef struct dt_json {
    char *out;
    size_t len;
} dt_json;

static void jw_put(dt_json *w, const void *p, size_t n) {
    if (w->out != NULL && n > 0) {
        memcpy(w->out + w->len, p, n);
    }
    w->len += n;
}

static void jw_ch(dt_json *w, char c) {
    if (w->out != NULL) {
        w->out[w->len] = c;
    }
    w->len++;
}

/* Length of the well-formed UTF-8 sequence starting s[0] (n > 0 bytes left),
 * or 0 when it is not one (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static size_t dt_utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (c == 0xE0 && s[1] < 0xA0) ||
            (c == 0xED && s[1] >= 0xA0)) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80 ||
            (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so that the text is
 * always valid JSON whatever a protobuf sender put in its strings. */
static void jw_string(dt_json *w, const char *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0, i = 0;
    jw_ch(w, '"');
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = dt_utf8_len(s + i, n - i);
            if (k > 0) {
                i += k;
                continue;
            }
        }
        jw_put(w, s + run, i - run);
        switch (c) {
        case '"':
            jw_put(w, "\\\"", 2);
            break;
        case '\\':
            jw_put(w, "\\\\", 2);
            break;
        case '\n':
            jw_put(w, "\\n", 2);
            break;
        case '\r':
            jw_put(w, "\\r", 2);
            break;
        case '\t':
            jw_put(w, "\\t", 2);
            break;
        case '\b':
            jw_put(w, "\\b", 2);
            break;
        case '\f':
            jw_put(w, "\\f", 2);
            break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                jw_put(w, u, sizeof(u));
            } else {
                jw_put(w, "\\ufffd", 6);
            }
            break;
        }
        run = ++i;
    }
    jw_put(w, s + run, n - run);
    jw_ch(w, '"');
}

static void jw_base64(dt_json *w, const uint8_t *p, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    jw_ch(w, '"');
    if (w->out == NULL) {
        w->len += (n + 2) / 3 * 4;
    } else {
        size_t i = 0;
        for (; i + 3 <= n; i += 3) {
            uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
            char q[4] = {digits[x >> 18], digits[(x >> 12) & 63], digits[(x >> 6) & 63],
                         digits[x & 63]};
            jw_put(w, q, 4);
        }
        if (n - i == 1) {
            uint32_t x = (uint32_t)p[i] << 16;
            char q[4] = {digits[x >> 18], digits[(x >> 12) & 63], '=', '='};
            jw_put(w, q, 4);
        } else if (n - i == 2) {
            uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
            char q[4] = {digits[x >> 18], digits[(x >> 12) & 63], digits[(x >> 6) & 63], '='};
            jw_put(w, q, 4);
        }
    }
    jw_ch(w, '"');
}

static void jw_i64(dt_json *w, int64_t v) {
    char buf[24];
    size_t k = sizeof(buf);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        buf[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        buf[--k] = '-';
    }
    jw_put(w, buf + k, sizeof(buf) - k);
}

/* The shortest of %.15g/%.16g/%.17g that reads back as the same double;
 * non-finite values as the strings the OpenTelemetry spec names. */
static void jw_double(dt_json *w, double v) {
    if (isnan(v)) {
        jw_put(w, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0) {
            jw_put(w, "\"Infinity\"", 10);
        } else {
            jw_put(w, "\"-Infinity\"", 11);
        }
        return;
    }
    char buf[32];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v) {
            break;
        }
    }
    /* A process locale with a decimal comma must not leak into JSON. */
    for (int i = 0; i < n; i++) {
        if (buf[i] == ',') {
            buf[i] = '.';
        }
    }
    jw_put(w, buf, (size_t)n);
}

static int jw_value(dt_json *w, const pb_any *v, int depth);

static int jw_array(dt_json *w, const pb_array *arr, int depth) {
    if (depth > COL_TRACES_MAX_VALUE_DEPTH) {
        return SL_EDECODE;
    }
    jw_ch(w, '[');
    for (size_t i = 0; arr != NULL && i < arr->n_values; i++) {
        if (i > 0) {
            jw_ch(w, ',');
        }
        int rc = jw_value(w, arr->values[i], depth);
        if (rc != 0) {
            return rc;
        }
    }
    jw_ch(w, ']');
    return 0;
}

static int jw_kvlist(dt_json *w, const pb_kvlist *kvl, int depth) {
    if (depth > COL_TRACES_MAX_VALUE_DEPTH) {
        return SL_EDECODE;
    }
    jw_ch(w, '{');
    for (size_t i = 0; kvl != NULL && i < kvl->n_values; i++) {
        const pb_kv *kv = kvl->values[i];
        sl_str key = dt_view(kv->key);
        if (i > 0) {
            jw_ch(w, ',');
        }
        jw_string(w, key.ptr, key.len);
        jw_ch(w, ':');
        int rc = jw_value(w, kv->value, depth);
        if (rc != 0) {
            return rc;
        }
    }
    jw_ch(w, '}');
    return 0;
}

static int jw_value(dt_json *w, const pb_any *v, int depth) {
    if (v == NULL) {
        jw_put(w, "null", 4);
        return 0;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        sl_str s = dt_view(v->string_value);
        jw_string(w, s.ptr, s.len);
        return 0;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        if (v->bool_value) {
            jw_put(w, "true", 4);
        } else {
            jw_put(w, "false", 5);
        }
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        jw_i64(w, v->int_value);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        jw_double(w, v->double_value);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        jw_base64(w, v->bytes_value.data, v->bytes_value.len);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        return jw_array(w, v->array_value, depth + 1);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return jw_kvlist(w, v->kvlist_value, depth + 1);
    default:
        jw_put(w, "null", 4);
        return 0;
    }
}

/* Renders an array or kvlist AnyValue into the arena. 0, SL_EDECODE (too
 * deep) or SL_ENOMEM. */
static int dt_render(sl_arena *a, const pb_any *v, sl_str *out) {
    dt_json w = {NULL, 0};
    int rc = jw_value(&w, v, 0);
    if (rc != 0) {
        return rc;
    }
    size_t len = w.len;
    char *buf = sl_arena_alloc(a, len);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    w = (dt_json){buf, 0};
    jw_value(&w, v, 0);
    assert(w.len == len);
    *out = (sl_str){buf, len};
    return 0;
}

/* ---- attributes, resources, spans ------------------------------------------ */

int col_any_value(sl_arena *a, const pb_any *v, sl_value *out) {
    *out = (sl_value){0};
    if (v == NULL) {
        out->v.s = (sl_str){"", 0};
        return 0;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        out->type = SL_VAL_STR;
        out->v.s = dt_view(v->string_value);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        out->type = SL_VAL_BOOL;
        out->v.b = v->bool_value ? 1 : 0;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        out->type = SL_VAL_INT;
        out->v.i = v->int_value;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        out->type = SL_VAL_DOUBLE;
        out->v.d = v->double_value;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        out->type = SL_VAL_BYTES;
        out->v.s = dt_view_bytes(v->bytes_value);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        out->type = SL_VAL_ARRAY;
        return dt_render(a, v, &out->v.s);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        out->type = SL_VAL_KVLIST;
        return dt_render(a, v, &out->v.s);
    default:
        out->v.s = (sl_str){"", 0};
        return 0;
    }
}

/* Converts n key/values into attrs (room for n). 0, SL_EDECODE or SL_ENOMEM. */
int col_kv_attrs(sl_arena *a, pb_kv *const *kvs, size_t n, sl_attr *attrs) {
    for (size_t i = 0; i < n; i++) {
        attrs[i].key = dt_view(kvs[i]->key);
        int rc = col_any_value(a, kvs[i]->value, &attrs[i].val);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static sl_str dt_service(const pb_resource *r) {
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const pb_kv *kv = r->attributes[i];
        const pb_any *v = kv->value;
        if (kv->key != NULL && strcmp(kv->key, "service.name") == 0 && v != NULL &&
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            v->string_value != NULL && v->string_value[0] != '\0') {
            return dt_view(v->string_value);
        }
    }
    return SL_STR_LIT("unknown_service");
}

int col_pb_resource(sl_arena *a, const pb_resource *r, sl_resource *out) {
    *out = (sl_resource){.service = dt_service(r)};
    if (r == NULL || r->n_attributes == 0) {
        return 0;
    }
    if (!dt_fits_u32(r->n_attributes)) {
        return SL_EDECODE;
    }
    sl_attr *attrs = dt_alloc_array(a, r->n_attributes, sizeof(sl_attr));
    if (attrs == NULL) {
        return SL_ENOMEM;
    }
    out->attrs = attrs;
    out->nattrs = (uint32_t)r->n_attributes;
    out->dropped_attrs = r->dropped_attributes_count;
    return col_kv_attrs(a, r->attributes, r->n_attributes, attrs);
}

/* Why the span's ids make it invalid, or NULL when they are fine. */
static const char *dt_check(const pb_span *s) {
    if (s->trace_id.len != 16 || dt_zero(s->trace_id.data, 16)) {
        return "invalid trace_id (must be 16 bytes, not all zero)";
    }
    if (s->span_id.len != 8 || dt_zero(s->span_id.data, 8)) {
        return "invalid span_id (must be 8 bytes, not all zero)";
    }
    if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8) {
        return "invalid parent_span_id (must be empty or 8 bytes)";
    }
    if (!dt_fits_u32(s->n_attributes) || !dt_fits_u32(s->n_events) || !dt_fits_u32(s->n_links)) {
        return "too many attributes, events or links";
    }
    return NULL;
}

static bool dt_link_ok(const pb_link *l) {
    return l->trace_id.len == 16 && !dt_zero(l->trace_id.data, 16) && l->span_id.len == 8 &&
           !dt_zero(l->span_id.data, 8) && dt_fits_u32(l->n_attributes);
}

/* Fills out from a span whose ids passed dt_check. 0, SL_EDECODE (a value
 * nested too deeply) or SL_ENOMEM. */
static int dt_span(sl_arena *a, const pb_span *ps, sl_span *out) {
    memcpy(out->trace_id, ps->trace_id.data, 16);
    memcpy(out->span_id, ps->span_id.data, 8);
    if (ps->parent_span_id.len == 8) {
        memcpy(out->parent_span_id, ps->parent_span_id.data, 8);
    } else {
        memset(out->parent_span_id, 0, 8);
    }
    out->flags = ps->flags;
    out->kind = (unsigned)ps->kind <= SL_KIND_CONSUMER ? (uint8_t)ps->kind : SL_KIND_UNSPECIFIED;
    out->start_unix_nano = ps->start_time_unix_nano;
    out->end_unix_nano = ps->end_time_unix_nano;
    out->name = dt_view(ps->name);
    out->trace_state = dt_view(ps->trace_state);
    out->status_code = SL_STATUS_UNSET;
    out->status_message = (sl_str){"", 0};
    if (ps->status != NULL) {
        unsigned code = (unsigned)ps->status->code;
        out->status_code = code <= SL_STATUS_ERROR ? (uint8_t)code : SL_STATUS_UNSET;
        out->status_message = dt_view(ps->status->message);
    }
    out->nattrs = (uint32_t)ps->n_attributes;
    out->dropped_attrs = ps->dropped_attributes_count;
    out->events = NULL;
    out->nevents = (uint32_t)ps->n_events;
    out->dropped_events = ps->dropped_events_count;
    out->links = NULL;
    out->nlinks = 0;
    out->dropped_links = ps->dropped_links_count;

    /* One attribute block for the span, its events and its links. */
    size_t nattrs = ps->n_attributes;
    for (size_t i = 0; i < ps->n_events; i++) {
        nattrs += ps->events[i]->n_attributes;
    }
    for (size_t i = 0; i < ps->n_links; i++) {
        nattrs += ps->links[i]->n_attributes;
    }
    sl_attr *attrs = NULL;
    if (nattrs > 0 && (attrs = dt_alloc_array(a, nattrs, sizeof(sl_attr))) == NULL) {
        return SL_ENOMEM;
    }
    if (ps->n_events > 0 &&
        (out->events = dt_alloc_array(a, ps->n_events, sizeof(sl_event))) == NULL) {
        return SL_ENOMEM;
    }
    if (ps->n_links > 0 && (out->links = dt_alloc_array(a, ps->n_links, sizeof(sl_link))) == NULL) {
        return SL_ENOMEM;
    }

    size_t used = 0; /* attributes of the block handed out so far */
    out->attrs = dt_slice(attrs, used, ps->n_attributes);
    int rc = col_kv_attrs(a, ps->attributes, ps->n_attributes, out->attrs);
    used += ps->n_attributes;
    for (size_t i = 0; i < ps->n_events && rc == 0; i++) {
        const pb_event *pe = ps->events[i];
        sl_event *e = &out->events[i];
        if (!dt_fits_u32(pe->n_attributes)) {
            return SL_EDECODE;
        }
        e->ts_unix_nano = pe->time_unix_nano;
        e->name = dt_view(pe->name);
        e->attrs = dt_slice(attrs, used, pe->n_attributes);
        e->nattrs = (uint32_t)pe->n_attributes;
        e->dropped_attrs = pe->dropped_attributes_count;
        rc = col_kv_attrs(a, pe->attributes, pe->n_attributes, e->attrs);
        used += pe->n_attributes;
    }
    for (size_t i = 0; i < ps->n_links && rc == 0; i++) {
        const pb_link *pl = ps->links[i];
        if (!dt_link_ok(pl)) {
            /* The model cannot hold a link without a valid target; keep the
             * span and say that a link was dropped. */
            out->dropped_links++;
            continue;
        }
        sl_link *l = &out->links[out->nlinks++];
        memcpy(l->trace_id, pl->trace_id.data, 16);
        memcpy(l->span_id, pl->span_id.data, 8);
        l->trace_state = dt_view(pl->trace_state);
        l->attrs = dt_slice(attrs, used, pl->n_attributes);
        l->nattrs = (uint32_t)pl->n_attributes;
        l->dropped_attrs = pl->dropped_attributes_count;
        l->flags = pl->flags;
        rc = col_kv_attrs(a, pl->attributes, pl->n_attributes, l->attrs);
        used += pl->n_attributes;
    }
    if (out->nlinks == 0) {
        out->links = NULL;
    }
    return rc;
}

static size_t
dt_count_spans(const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req) {
    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const pb_rspans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            total += rs->scope_spans[s]->n_spans;
        }
    }
    return total;
}

int col_traces_to_model(
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req, sl_arena *a,
    sl_span **spans, size_t *nspans, size_t *rejected, char *err, size_t err_size) {
    assert(req != NULL && a != NULL && spans != NULL && nspans != NULL && rejected != NULL);
    sl_span *out = NULL;
    sl_resource *resources = NULL;
    size_t kept = 0, bad = 0, idx = 0;
    int rc = 0;
    if (err == NULL) {
        err_size = 0;
    }
    if (err_size > 0) {
        err[0] = '\0';
    }
    size_t total = dt_count_spans(req);
    if (total == 0) {
        goto out;
    }
    out = dt_alloc_array(a, total, sizeof(sl_span));
    resources = dt_alloc_array(a, req->n_resource_spans, sizeof(sl_resource));
    if (out == NULL || resources == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const pb_rspans *rs = req->resource_spans[r];
        const char *res_bad = NULL;
        rc = col_pb_resource(a, rs->resource, &resources[r]);
        if (rc == SL_EDECODE) {
            res_bad = "resource attribute value " DT_TOO_DEEP;
            rc = 0;
        } else if (rc != 0) {
            goto out;
        }
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const pb_sspans *ss = rs->scope_spans[s];
            sl_str scope_name = dt_view(ss->scope != NULL ? ss->scope->name : NULL);
            sl_str scope_version = dt_view(ss->scope != NULL ? ss->scope->version : NULL);
            for (size_t k = 0; k < ss->n_spans; k++, idx++) {
                const pb_span *ps = ss->spans[k];
                const char *why = res_bad != NULL ? res_bad : dt_check(ps);
                if (why == NULL) {
                    sl_span *sp = &out[kept];
                    rc = dt_span(a, ps, sp);
                    if (rc == SL_EDECODE) {
                        why = "attribute value " DT_TOO_DEEP;
                        rc = 0;
                    } else if (rc != 0) {
                        goto out;
                    } else {
                        sp->resource = &resources[r];
                        sp->scope_name = scope_name;
                        sp->scope_version = scope_version;
                        kept++;
                    }
                }
                if (why != NULL) {
                    if (bad == 0 && err_size > 0) {
                        snprintf(err, err_size, "span %zu: %s", idx, why);
                    }
                    bad++;
                }
            }
        }
    }
out:
    if (rc == 0) {
        *spans = kept > 0 ? out : NULL;
        *nspans = kept;
        *rejected = bad;
    } else if (err_size > 0) {
        snprintf(err, err_size, "out of memory converting spans (arena limit reached)");
    }
    return rc;
}
