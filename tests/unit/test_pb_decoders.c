/*
 * The written OTLP metrics and traces decoders (collector/pb_metrics.c,
 * pb_traces.c, on pb_common.c) against protobuf-c, each of them:
 *   - random requests that set every field of every message type the
 *     request can hold (built from the protobuf-c descriptors, so a field
 *     added to the .proto files is covered without changing this test),
 *     packed by protobuf-c, must decode and pack again to the same bytes;
 *   - mutated copies (flipped, inserted and deleted bytes, truncations) must
 *     either be declined or decode exactly as protobuf-c decodes them;
 *   - the shapes the decoder leaves to protobuf-c are declined: unknown
 *     fields, a singular message or oneof given twice, unpacked repeated
 *     scalars, deep AnyValue nesting, long tags, wrong wire types; the
 *     two-byte tag of Span.flags (field 16) is decoded.
 */
#include "sl_test.h"

#include "decode_metrics.h"
#include "decode_traces.h"
#include "sl_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One written decoder and the request it decodes. */
typedef struct codec {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    int (*unpack)(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **out);
} codec;

static int unpack_metrics(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **out) {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r = NULL;
    int rc = col_metrics_unpack(buf, len, a, &r);
    *out = r != NULL ? &r->base : NULL;
    return rc;
}

static int unpack_traces(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **out) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r = NULL;
    int rc = col_traces_unpack(buf, len, a, &r);
    *out = r != NULL ? &r->base : NULL;
    return rc;
}

static const codec METRICS = {
    "metrics",
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    unpack_metrics};
static const codec TRACES = {
    "traces", &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
    unpack_traces};
static const codec *const CODECS[] = {&METRICS, &TRACES};

static sl_arena g_a;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* Values that exercise the encodings: small, large, negative, all bits. */
static uint64_t rnd_num(void) {
    switch (rnd() % 4) {
    case 0:
        return rnd() % 4;
    case 1:
        return rnd() % 300;
    case 2:
        return (uint64_t) - (int64_t)(rnd() % 1000);
    default:
        return rnd();
    }
}

static size_t elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

static void *new_msg(const ProtobufCMessageDescriptor *d, int depth);

/* One random value of f's type at p; false for a message too deep to add. */
static bool set_value(const ProtobufCFieldDescriptor *f, void *p, int depth) {
    uint64_t v = rnd_num();
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = (protobuf_c_boolean)(v & 1);
        return true;
    case PROTOBUF_C_TYPE_STRING: {
        size_t n = rnd() % 6;
        char *s = sl_arena_alloc(&g_a, n + 1);
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)(1 + rnd() % 255); /* any byte but NUL, UTF-8 or not */
        }
        s[n] = '\0';
        *(char **)p = s;
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->len = rnd() % 17;
        b->data = sl_arena_alloc(&g_a, b->len + 1);
        for (size_t i = 0; i < b->len; i++) {
            b->data[i] = (uint8_t)rnd();
        }
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (depth >= 9) {
            return false;
        }
        *(void **)p = new_msg(f->descriptor, depth + 1);
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        memcpy(p, &v, 8);
        return true;
    default: {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
        return true;
    }
    }
}

static void fill(const ProtobufCMessageDescriptor *d, ProtobufCMessage *m, int depth) {
    char *base = (char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            /* Requests, resources, scopes and metrics are never empty. */
            size_t n = f->type != PROTOBUF_C_TYPE_MESSAGE ? rnd() % 6
                       : depth < 3                        ? 1 + rnd() % 2
                                                          : rnd() % 3;
            size_t es = elem_size(f->type);
            char *arr = sl_arena_alloc(&g_a, n * es + 1);
            size_t k = 0;
            while (k < n && set_value(f, arr + k * es, depth)) {
                k++;
            }
            *(size_t *)(void *)(base + f->quantifier_offset) = k;
            *(void **)(void *)(base + f->offset) = k > 0 ? arr : NULL;
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* One member of the oneof, 9 times in 10. Its members share
             * the case field. */
            uint32_t *the_case = (uint32_t *)(void *)(base + f->quantifier_offset);
            if (*the_case != 0 || rnd() % 10 == 0) {
                continue;
            }
            unsigned n = 0;
            while (i + n < d->n_fields &&
                   d->fields[i + n].quantifier_offset == f->quantifier_offset) {
                n++;
            }
            const ProtobufCFieldDescriptor *pick = &d->fields[i + rnd() % n];
            if (set_value(pick, base + pick->offset, depth)) {
                *the_case = pick->id;
            }
        } else if (rnd() % 4 != 0 && set_value(f, base + f->offset, depth)) {
            bool has = f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                       f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING;
            if (has) {
                *(protobuf_c_boolean *)(void *)(base + f->quantifier_offset) = 1;
            }
        }
    }
}

static void *new_msg(const ProtobufCMessageDescriptor *d, int depth) {
    ProtobufCMessage *m = sl_arena_alloc(&g_a, d->sizeof_message);
    d->message_init(m);
    fill(d, m, depth);
    return m;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = sl_arena_alloc(&g_a, *len + 1);
    if (protobuf_c_message_pack(m, buf) != *len) {
        SL_FAIL_AT("protobuf_c_message_pack wrote another size than it reported");
    }
    return buf;
}

/* Decodes buf with both decoders. Returns 1 when the written one accepted it
 * (and then protobuf-c must accept it and both must pack the same), 0 when it
 * declined. */
static int both(const codec *c, const uint8_t *buf, size_t len) {
    sl_arena a;
    sl_arena_init(&a, 64u << 20);
    ProtobufCMessage *fast = NULL;
    int rc = c->unpack(buf, len, &a, &fast);
    ProtobufCMessage *pc = protobuf_c_message_unpack(c->desc, sl_arena_pb(&a), len, buf);
    int accepted = 0;
    if (rc == 0) {
        accepted = 1;
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = pack(fast, &n1);
        uint8_t *b2 = pc != NULL ? pack(pc, &n2) : NULL;
        if (pc == NULL) {
            SL_FAIL_AT("%s: decoded a body of %zu bytes that protobuf-c refuses", c->name, len);
        } else if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
            SL_FAIL_AT("%s: a body of %zu bytes decodes unlike protobuf-c's (packs to %zu vs %zu)",
                       c->name, len, n1, n2);
        }
    } else if (rc != SL_EUNSUPPORTED) {
        SL_FAIL_AT("%s: declined with %d, not SL_EUNSUPPORTED", c->name, rc);
    }
    sl_arena_free(&a);
    return accepted;
}

static void random_requests(const codec *c) {
    sl_arena_init(&g_a, 0);
    size_t total = 0;
    for (int i = 0; i < 1000; i++) {
        ProtobufCMessage *m = new_msg(c->desc, 0);
        size_t len;
        uint8_t *buf = pack(m, &len);
        total += len;
        /* What protobuf-c packs is always in the written decoder's shape. */
        ASSERT_EQ(both(c, buf, len), 1);
        sl_arena_reset(&g_a);
    }
    printf("%s: random requests: %zu bytes in all\n", c->name, total);
    ASSERT_TRUE(total > 400 * 1000); /* the requests are not trivially small */
    sl_arena_free(&g_a);
}

static void test_random_requests(void) {
    for (size_t i = 0; i < sizeof(CODECS) / sizeof(CODECS[0]); i++) {
        random_requests(CODECS[i]);
    }
}

static void mutations(const codec *c) {
    sl_arena_init(&g_a, 0);
    int accepted = 0, tried = 0;
    for (int i = 0; i < 200; i++) {
        ProtobufCMessage *m = new_msg(c->desc, 0);
        size_t len;
        uint8_t *buf = pack(m, &len);
        uint8_t *mut = sl_arena_alloc(&g_a, len + 16);
        for (int j = 0; j < 20 && len > 0; j++) {
            memcpy(mut, buf, len);
            size_t n = len, at = rnd() % len;
            switch (rnd() % 4) {
            case 0:
                mut[at] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                mut[at] = (uint8_t)rnd();
                break;
            case 2:
                memmove(mut + at, mut + at + 1, len - at - 1);
                n--;
                break;
            default:
                n = at; /* truncated */
                break;
            }
            accepted += both(c, mut, n);
            tried++;
        }
        sl_arena_reset(&g_a);
    }
    /* Many mutations leave a valid message (a changed value, a truncation
     * at a field boundary): the comparison is not vacuous. */
    printf("%s: %d of %d mutated requests decoded\n", c->name, accepted, tried);
    ASSERT_TRUE(accepted > tried / 20);
    sl_arena_free(&g_a);
}

static void test_mutations(void) {
    for (size_t i = 0; i < sizeof(CODECS) / sizeof(CODECS[0]); i++) {
        mutations(CODECS[i]);
    }
}

/* A request holding one resource_metrics (or resource_spans) whose payload
 * is rm. */
static size_t wrap_rm(const uint8_t *rm, size_t n, uint8_t *out) {
    out[0] = 0x0a;
    out[1] = (uint8_t)n; /* the cases below are shorter than 128 bytes */
    memcpy(out + 2, rm, n);
    return n + 2;
}

static int fast_rc(const codec *c, const uint8_t *buf, size_t len) {
    sl_arena a;
    sl_arena_init(&a, 1u << 20);
    ProtobufCMessage *r = NULL;
    int rc = c->unpack(buf, len, &a, &r);
    sl_arena_free(&a);
    return rc;
}

static void test_declined_shapes(void) {
    uint8_t out[256];
    /* An empty body is an empty request. */
    ASSERT_EQ(fast_rc(&METRICS, NULL, 0), 0);
    /* Unknown field 2 (varint) in the request: protobuf-c keeps it. */
    static const uint8_t unknown[] = {0x10, 0x01};
    ASSERT_EQ(fast_rc(&METRICS, unknown, sizeof(unknown)), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, unknown, sizeof(unknown)), 0);
    /* ResourceMetrics.resource given twice: protobuf-c merges. */
    static const uint8_t twice[] = {0x0a, 0x00, 0x0a, 0x00};
    size_t n = wrap_rm(twice, sizeof(twice), out);
    ASSERT_EQ(fast_rc(&METRICS, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, out, n), 0);
    /* ResourceMetrics.resource given once: decoded. */
    n = wrap_rm(twice, 2, out);
    ASSERT_EQ(both(&METRICS, out, n), 1);
    /* A histogram point whose bucket_counts (6, fixed64) are sent unpacked:
     * rm { scope_metrics { metrics { histogram { data_points { 6: fixed64 } } } } } */
    static const uint8_t unpacked[] = {0x12, 0x0f, 0x12, 0x0d, 0x4a, 0x0b, 0x0a, 0x09, 0x31,
                                       1,    0,    0,    0,    0,    0,    0,    0};
    n = wrap_rm(unpacked, sizeof(unpacked), out);
    ASSERT_EQ(fast_rc(&METRICS, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, out, n), 0);
    /* The same bucket count packed: decoded. */
    static const uint8_t packed[] = {0x12, 0x10, 0x12, 0x0e, 0x4a, 0x0c, 0x0a, 0x0a, 0x32,
                                     0x08, 1,    0,    0,    0,    0,    0,    0,    0};
    n = wrap_rm(packed, sizeof(packed), out);
    ASSERT_EQ(both(&METRICS, out, n), 1);
    /* A gauge and a sum in one metric (the oneof twice). */
    static const uint8_t oneof[] = {0x12, 0x06, 0x12, 0x04, 0x2a, 0x00, 0x3a, 0x00};
    n = wrap_rm(oneof, sizeof(oneof), out);
    ASSERT_EQ(fast_rc(&METRICS, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, out, n), 0);
    /* A wrong wire type for a known field (Metric.name as a varint). */
    static const uint8_t wiretype[] = {0x12, 0x04, 0x12, 0x02, 0x08, 0x01};
    n = wrap_rm(wiretype, sizeof(wiretype), out);
    ASSERT_EQ(fast_rc(&METRICS, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, out, n), 0);
    /* A two-byte tag (field 1 padded): protobuf-c's to judge. */
    static const uint8_t longtag[] = {0x8a, 0x00, 0x00};
    ASSERT_EQ(fast_rc(&METRICS, longtag, sizeof(longtag)), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&METRICS, longtag, sizeof(longtag)), 0);
}

/* Resource attribute values nested in arrays 1..40 levels deep: shallow ones
 * decode, deep ones are declined (protobuf-c and its depth check decide).
 * ResourceMetrics and ResourceSpans both hold the resource in field 1. */
static void nesting(const codec *c) {
    for (int depth = 1; depth <= 40; depth++) {
        /* Built inside out: AnyValue{array_value{values: AnyValue{...}}}. */
        uint8_t val[512];
        size_t n = 0;
        val[n++] = 0x18; /* innermost: int_value 7 */
        val[n++] = 0x07;
        for (int i = 0; i < depth; i++) {
            uint8_t tmp[512];
            size_t m = 0;
            tmp[m++] = 0x2a; /* array_value */
            tmp[m++] = (uint8_t)(n + 2);
            tmp[m++] = 0x0a; /* values */
            tmp[m++] = (uint8_t)n;
            memcpy(tmp + m, val, n);
            n = m + n;
            memcpy(val, tmp, n);
        }
        if (n + 8 > 120) {
            break; /* one-byte lengths only */
        }
        uint8_t kv[256], res[256], rm[256], req[256];
        size_t k = 0;
        kv[k++] = 0x0a, kv[k++] = 1, kv[k++] = 'k';
        kv[k++] = 0x12, kv[k++] = (uint8_t)n;
        memcpy(kv + k, val, n);
        k += n;
        res[0] = 0x0a, res[1] = (uint8_t)k; /* Resource.attributes */
        memcpy(res + 2, kv, k);
        rm[0] = 0x0a, rm[1] = (uint8_t)(k + 2); /* ResourceMetrics.resource */
        memcpy(rm + 2, res, k + 2);
        size_t len = wrap_rm(rm, k + 4, req);
        int accepted = both(c, req, len);
        ASSERT_EQ(accepted, depth <= 16 ? 1 : 0);
    }
}

static void test_nesting(void) {
    for (size_t i = 0; i < sizeof(CODECS) / sizeof(CODECS[0]); i++) {
        nesting(CODECS[i]);
    }
}

/* A request of one resource_spans { scope_spans { spans { span } } }. */
static size_t wrap_span(const uint8_t *span, size_t n, uint8_t *out) {
    uint8_t rs[160];
    rs[0] = 0x12; /* ResourceSpans.scope_spans */
    rs[1] = (uint8_t)(n + 2);
    rs[2] = 0x12; /* ScopeSpans.spans */
    rs[3] = (uint8_t)n;
    memcpy(rs + 4, span, n);
    return wrap_rm(rs, n + 4, out);
}

static void test_trace_shapes(void) {
    uint8_t out[256];
    ASSERT_EQ(fast_rc(&TRACES, NULL, 0), 0);
    /* Span.flags is field 16: a two-byte tag, decoded. */
    static const uint8_t flags[] = {0x85, 0x01, 0x01, 0x03, 0x00, 0x00};
    size_t n = wrap_span(flags, sizeof(flags), out);
    ASSERT_EQ(both(&TRACES, out, n), 1);
    sl_arena a;
    sl_arena_init(&a, 1u << 20);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r = NULL;
    ASSERT_EQ(col_traces_unpack(out, n, &a, &r), 0);
    ASSERT_EQ(r->n_resource_spans, 1);
    ASSERT_EQ(r->resource_spans[0]->scope_spans[0]->n_spans, 1);
    ASSERT_EQ(r->resource_spans[0]->scope_spans[0]->spans[0]->flags, 0x301);
    sl_arena_free(&a);
    /* Field 1 (trace_id) behind a padded two-byte tag: protobuf-c's. */
    static const uint8_t padded[] = {0x8a, 0x00, 0x00};
    n = wrap_span(padded, sizeof(padded), out);
    ASSERT_EQ(fast_rc(&TRACES, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&TRACES, out, n), 0);
    /* An unknown field 17 in a span: protobuf-c keeps it. */
    static const uint8_t unknown[] = {0x8a, 0x01, 0x00};
    n = wrap_span(unknown, sizeof(unknown), out);
    ASSERT_EQ(fast_rc(&TRACES, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&TRACES, out, n), 0);
    /* Span.status given twice: protobuf-c merges. */
    static const uint8_t status2[] = {0x7a, 0x02, 0x18, 0x02, 0x7a, 0x00};
    n = wrap_span(status2, sizeof(status2), out);
    ASSERT_EQ(fast_rc(&TRACES, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&TRACES, out, n), 0);
    n = wrap_span(status2, 4, out); /* once: decoded */
    ASSERT_EQ(both(&TRACES, out, n), 1);
    /* Status field 1 (reserved) and a span flags field cut short. */
    static const uint8_t reserved[] = {0x7a, 0x02, 0x08, 0x01};
    n = wrap_span(reserved, sizeof(reserved), out);
    ASSERT_EQ(fast_rc(&TRACES, out, n), SL_EUNSUPPORTED);
    static const uint8_t cut[] = {0x85, 0x01, 0x01, 0x03};
    n = wrap_span(cut, sizeof(cut), out);
    ASSERT_EQ(fast_rc(&TRACES, out, n), SL_EUNSUPPORTED);
    ASSERT_EQ(both(&TRACES, out, n), 0);
    /* Events and links with attributes, and a link's flags (field 6). */
    static const uint8_t ev[] = {0x5a, 0x0c, 0x09, 1,    0,    0,    0,    0,    0,
                                 0,    0,    0x12, 0x01, 'e',  0x6a, 0x0a, 0x22, 0x03,
                                 0x0a, 0x01, 'k',  0x35, 0x01, 0,    0,    0};
    n = wrap_span(ev, sizeof(ev), out);
    ASSERT_EQ(both(&TRACES, out, n), 1);
}

int main(void) {
    RUN(test_random_requests);
    RUN(test_mutations);
    RUN(test_declined_shapes);
    RUN(test_nesting);
    RUN(test_trace_shapes);
    return SL_TEST_RESULT();
}
