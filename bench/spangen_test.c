/*
 * Unit tests of spangen: determinism, exact span counts, trace structure
 * (one root, parents inside the request, client -> server across services,
 * nested timing), grouping by resource, attribute and error mix, fresh trace
 * ids per request, and the wire helpers loadgen relies on.
 * Single-threaded.
 */
#include "spangen.h"

#include "sl_err.h"
#include "sl_test.h"
#include "sl_util.h"

#include <stdbool.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;

#define T0 1790000000000000000ull

typedef struct flat {
    const pb_span *span;
    const char *service;
} flat;

static pb_request *unpack(const sl_buf *b) {
    return opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, b->len, b->data);
}

static void release(pb_request *r) {
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
}

static const char *resource_service(const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs) {
    for (size_t i = 0; rs->resource != NULL && i < rs->resource->n_attributes; i++) {
        if (strcmp(rs->resource->attributes[i]->key, "service.name") == 0) {
            return rs->resource->attributes[i]->value->string_value;
        }
    }
    return NULL;
}

/* Lists every span of req with its service; returns the count (max cap). */
static size_t flatten(const pb_request *req, flat *out, size_t cap) {
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const char *svc = resource_service(req->resource_spans[r]);
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                req->resource_spans[r]->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans && n < cap; i++) {
                out[n].span = ss->spans[i];
                out[n].service = svc;
                n++;
            }
        }
    }
    return n;
}

static bool same_id(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b) {
    return a->len == b->len && a->len > 0 && memcmp(a->data, b->data, a->len) == 0;
}

static int make(uint64_t seed, size_t nspans, size_t count, sl_buf *out) {
    spangen_options o;
    spangen_options_init(&o);
    o.seed = seed;
    o.start_unix_nano = T0;
    spangen *g = NULL;
    int rc = spangen_create(&o, &g);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = spangen_request(g, nspans, out);
    }
    spangen_destroy(g);
    return rc;
}

static void test_deterministic(void) {
    sl_buf a;
    sl_buf b;
    sl_buf c;
    sl_buf_init(&a, 0);
    sl_buf_init(&b, 0);
    sl_buf_init(&c, 0);
    ASSERT_EQ(make(7, 50, 3, &a), 0);
    ASSERT_EQ(make(7, 50, 3, &b), 0);
    ASSERT_EQ(make(8, 50, 3, &c), 0);
    ASSERT_EQ(a.len, b.len);
    ASSERT_TRUE(memcmp(a.data, b.data, a.len) == 0);
    ASSERT_TRUE(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    sl_buf_free(&a);
    sl_buf_free(&b);
    sl_buf_free(&c);
}

static void test_exact_span_counts(void) {
    static const size_t sizes[] = {1, 2, 3, 13, 50, 100, 500, 1000};
    static flat spans[1000];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        ASSERT_EQ(make(i + 1, sizes[i], 1, &b), 0);
        pb_request *req = unpack(&b);
        ASSERT_TRUE(req != NULL);
        ASSERT_EQ(flatten(req, spans, 1000), sizes[i]);
        release(req);
        sl_buf_free(&b);
    }
}

static void test_bad_options(void) {
    spangen_options o;
    spangen *g = (spangen *)&o;
    spangen_options_init(&o);
    o.nservices = 4;
    ASSERT_EQ(spangen_create(&o, &g), SL_EINVAL);
    ASSERT_TRUE(g == NULL);
    spangen_options_init(&o);
    ASSERT_EQ(spangen_create(&o, &g), 0);
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(spangen_request(g, 0, &b), SL_EINVAL);
    ASSERT_EQ(b.len, 0);
    sl_buf_init(&b, 100);
    ASSERT_EQ(spangen_request(g, 100, &b), SL_ETOOBIG);
    ASSERT_EQ(b.len, 0);
    sl_buf_free(&b);
    spangen_destroy(g);
    spangen_destroy(NULL);
}

/* Checks the structure of one request and counts its traces (roots). */
static void check_structure(const pb_request *req, flat *spans, size_t n, size_t *ntraces) {
    *ntraces = 0;
    /* One ResourceSpans per service. */
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const char *svc = resource_service(req->resource_spans[r]);
        ASSERT_TRUE(svc != NULL);
        ASSERT_TRUE(req->resource_spans[r]->resource->n_attributes >= 10);
        for (size_t q = 0; q < r; q++) {
            ASSERT_TRUE(strcmp(svc, resource_service(req->resource_spans[q])) != 0);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const pb_span *s = spans[i].span;
        ASSERT_EQ(s->trace_id.len, 16);
        ASSERT_EQ(s->span_id.len, 8);
        ASSERT_TRUE(s->n_attributes >= 10 && s->n_attributes <= 20);
        ASSERT_TRUE(s->end_time_unix_nano > s->start_time_unix_nano);
        ASSERT_TRUE(s->start_time_unix_nano >= T0);
        ASSERT_TRUE(s->end_time_unix_nano < T0 + 3600ull * 1000000000ull);
        ASSERT_TRUE(s->name[0] != '\0');
        if (s->parent_span_id.len == 0) {
            (*ntraces)++;
            continue;
        }
        ASSERT_EQ(s->parent_span_id.len, 8);
        const flat *p = NULL;
        for (size_t j = 0; j < n; j++) {
            if (same_id(&spans[j].span->span_id, &s->parent_span_id) &&
                same_id(&spans[j].span->trace_id, &s->trace_id)) {
                p = &spans[j];
            }
        }
        ASSERT_TRUE(p != NULL);
        ASSERT_TRUE(s->start_time_unix_nano >= p->span->start_time_unix_nano);
        if (s->kind != OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER) {
            ASSERT_TRUE(s->end_time_unix_nano <= p->span->end_time_unix_nano);
        }
        if (s->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER) {
            ASSERT_EQ(p->span->kind,
                      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
            ASSERT_TRUE(strcmp(p->service, spans[i].service) != 0);
        }
    }
}

static int cmp_id16(const void *a, const void *b) {
    return memcmp(a, b, 16);
}

static void test_structure_and_mix(void) {
    static flat spans[500];
    static uint8_t ids[20 * 500][16];
    size_t nids = 0;
    spangen_options o;
    spangen_options_init(&o);
    o.seed = 3;
    o.start_unix_nano = T0;
    spangen *g = NULL;
    ASSERT_EQ(spangen_create(&o, &g), 0);
    size_t traces = 0;
    size_t errors = 0;
    size_t exceptions = 0;
    for (int r = 0; r < 20; r++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        ASSERT_EQ(spangen_request(g, 500, &b), 0);
        pb_request *req = unpack(&b);
        ASSERT_TRUE(req != NULL);
        size_t n = flatten(req, spans, 500);
        ASSERT_EQ(n, 500);
        size_t nt = 0;
        int before = sl_test_failures;
        check_structure(req, spans, n, &nt);
        ASSERT_EQ(sl_test_failures, before);
        /* Traces are 3..12 spans. */
        ASSERT_TRUE(nt >= 500 / 12 && nt <= 500 / 3);
        traces += nt;
        for (size_t i = 0; i < n; i++) {
            const pb_span *s = spans[i].span;
            if (s->status != NULL &&
                s->status->code ==
                    OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
                errors++;
            }
            for (size_t e = 0; e < s->n_events; e++) {
                if (strcmp(s->events[e]->name, "exception") == 0) {
                    ASSERT_EQ(s->events[e]->n_attributes, 4);
                    ASSERT_STR_EQ(s->events[e]->attributes[2]->key, "exception.stacktrace");
                    ASSERT_TRUE(s->status != NULL);
                    exceptions++;
                }
            }
            /* Collect one id per trace (the roots). */
            if (s->parent_span_id.len == 0) {
                memcpy(ids[nids++], s->trace_id.data, 16);
            }
        }
        release(req);
        sl_buf_free(&b);
    }
    spangen_stats st;
    spangen_get_stats(g, &st);
    ASSERT_U64_EQ(st.spans, 10000);
    ASSERT_U64_EQ(st.traces, traces);
    ASSERT_U64_EQ(st.error_spans, errors);
    ASSERT_TRUE(errors >= 300 && errors <= 800); /* about 5% */
    ASSERT_TRUE(exceptions > 50);
    /* Every trace id is fresh: no two traces share one, across requests too. */
    qsort(ids, nids, 16, cmp_id16);
    for (size_t i = 1; i < nids; i++) {
        ASSERT_TRUE(memcmp(ids[i - 1], ids[i], 16) != 0);
    }
    spangen_destroy(g);
}

static void test_request_msg_in_arena(void) {
    spangen_options o;
    spangen_options_init(&o);
    spangen *g = NULL;
    ASSERT_EQ(spangen_create(&o, &g), 0);
    sl_arena a;
    sl_arena_init(&a, 0);
    pb_request *req = NULL;
    ASSERT_EQ(spangen_request_msg(g, 40, &a, &req), 0);
    ASSERT_TRUE(req != NULL && req->n_resource_spans >= 1);
    sl_arena_free(&a);
    /* A capped arena fails cleanly. */
    sl_arena_init(&a, 8192);
    req = NULL;
    ASSERT_EQ(spangen_request_msg(g, 500, &a, &req), SL_ENOMEM);
    ASSERT_TRUE(req == NULL);
    sl_arena_free(&a);
    spangen_destroy(g);
}

static void test_find_and_rekey(void) {
    static size_t offs[300];
    static flat before[300];
    static flat after[300];
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(make(11, 300, 1, &b), 0);
    uint8_t *orig = malloc(b.len);
    ASSERT_TRUE(orig != NULL);
    memcpy(orig, b.data, b.len);
    size_t n = 0;
    ASSERT_EQ(spangen_find_trace_ids(b.data, b.len, offs, 300, &n), 0);
    ASSERT_EQ(n, 300);
    ASSERT_EQ(spangen_find_trace_ids(b.data, b.len, offs, 299, &n), SL_ETOOBIG);
    ASSERT_EQ(spangen_find_trace_ids(b.data, b.len - 7, offs, 300, &n), SL_EDECODE);
    ASSERT_EQ(spangen_find_trace_ids(b.data, b.len, offs, 300, &n), 0);

    spangen_rekey(b.data, offs, n, 0x1234567890abcdefull);
    pb_request *r0 =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, b.len, orig);
    pb_request *r1 = unpack(&b);
    ASSERT_TRUE(r0 != NULL && r1 != NULL);
    ASSERT_EQ(flatten(r0, before, 300), 300);
    ASSERT_EQ(flatten(r1, after, 300), 300);
    for (size_t i = 0; i < 300; i++) {
        ASSERT_TRUE(!same_id(&before[i].span->trace_id, &after[i].span->trace_id));
        ASSERT_TRUE(same_id(&before[i].span->span_id, &after[i].span->span_id));
        for (size_t j = 0; j < i; j++) {
            ASSERT_EQ(same_id(&before[i].span->trace_id, &before[j].span->trace_id),
                      same_id(&after[i].span->trace_id, &after[j].span->trace_id));
        }
    }
    release(r0);
    release(r1);
    /* The same salt again restores the original bytes. */
    spangen_rekey(b.data, offs, n, 0x1234567890abcdefull);
    ASSERT_TRUE(memcmp(b.data, orig, b.len) == 0);
    free(orig);
    sl_buf_free(&b);
}

int main(void) {
    RUN(test_deterministic);
    RUN(test_exact_span_counts);
    RUN(test_bad_options);
    RUN(test_structure_and_mix);
    RUN(test_request_msg_in_arena);
    RUN(test_find_and_rekey);
    return SL_TEST_RESULT();
}
