/*
 * Traces: samplers (decisions and their effect on spans), span limits, and
 * the encoding of spans, decoded back with the protobuf-c code generated from
 * the project's .proto files (every field checked) and parsed as OTLP/JSON
 * with jansson. The provider points at a closed port and never flushes: the
 * test encodes batches itself through the processor's encode hook.
 */
#include "sl_test.h"

#include "../src/sdk_int.h"

#include <jansson.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue PbKV;
typedef Opentelemetry__Proto__Common__V1__AnyValue PbAny;
typedef Opentelemetry__Proto__Trace__V1__Span PbSpan;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest PbTraceReq;

static sl_provider *make_provider(sl_sampler sampler, double arg, const sl_span_limits *limits) {
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.endpoint = "http://127.0.0.1:9"; /* nothing is exported in these tests */
    o.service_name = "unit";
    o.sampler = sampler;
    o.sampler_arg = arg;
    o.bsp.schedule_delay_ms = 3600 * 1000;
    o.metric_export_interval_ms = 3600 * 1000;
    if (limits != NULL) {
        o.span_limits = *limits;
    }
    sl_provider *p = NULL;
    if (sl_provider_create(&o, &p) != 0) {
        return NULL;
    }
    return p;
}

/* Nothing listens on the endpoint: give up exporting at once. */
static void finish_provider(sl_provider *p) {
    sl_provider_shutdown(p, 50);
    sl_provider_destroy(p);
}

static const PbKV *find_kv(PbKV **kvs, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            return kvs[i];
        }
    }
    return NULL;
}

/* ---- samplers ------------------------------------------------------------------- */

static void ids_with_low(uint8_t id[16], uint64_t low) {
    memset(id, 0xab, 8);
    for (int i = 0; i < 8; i++) {
        id[15 - i] = (uint8_t)(low >> (8 * i));
    }
}

static void test_sampler_decisions(void) {
    sl_provider *p = make_provider(SL_SAMPLER_TRACEIDRATIO, 0.25, NULL);
    ASSERT_TRUE(p != NULL);
    /* The ratio compares the trace id's low 63 bits with ratio * 2^63:
     * evenly spread ids give exactly the ratio. */
    uint8_t id[16];
    int sampled = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        ids_with_low(id, i * (UINT64_MAX / 10000));
        sampled += ot_sample(p, NULL, id);
    }
    ASSERT_TRUE(sampled >= 2499 && sampled <= 2501);

    sl_span_context parent;
    memset(&parent, 0, sizeof parent);
    memset(parent.trace_id, 1, 16);
    memset(parent.span_id, 2, 8);
    ids_with_low(id, UINT64_MAX); /* never sampled by ratio 0.25 */
    ASSERT_TRUE(!ot_sample(p, &parent, id));
    p->sampler = SL_SAMPLER_PARENTBASED_TRACEIDRATIO;
    parent.trace_flags = 1;
    ASSERT_TRUE(ot_sample(p, &parent, id)); /* parent sampled wins over the ratio */
    parent.trace_flags = 0;
    ids_with_low(id, 0);
    ASSERT_TRUE(!ot_sample(p, &parent, id)); /* parent not sampled */
    ASSERT_TRUE(ot_sample(p, NULL, id));     /* root: the ratio */
    p->sampler = SL_SAMPLER_PARENTBASED_ALWAYS_OFF;
    ASSERT_TRUE(!ot_sample(p, NULL, id));
    parent.trace_flags = 1;
    parent.is_remote = true;
    ASSERT_TRUE(ot_sample(p, &parent, id));
    p->sampler = SL_SAMPLER_PARENTBASED_ALWAYS_ON;
    ASSERT_TRUE(ot_sample(p, NULL, id));
    parent.trace_flags = 0;
    ASSERT_TRUE(!ot_sample(p, &parent, id));
    p->sampler = SL_SAMPLER_ALWAYS_OFF;
    parent.trace_flags = 1;
    ASSERT_TRUE(!ot_sample(p, &parent, id));
    p->sampler = SL_SAMPLER_ALWAYS_ON;
    parent.trace_flags = 0;
    ASSERT_TRUE(ot_sample(p, &parent, id));
    finish_provider(p);

    /* Ratios 0 and 1. */
    p = make_provider(SL_SAMPLER_TRACEIDRATIO, 0.0, NULL);
    ASSERT_TRUE(p != NULL);
    ids_with_low(id, 0);
    ASSERT_TRUE(!ot_sample(p, NULL, id));
    finish_provider(p);
    p = make_provider(SL_SAMPLER_TRACEIDRATIO, 1.0, NULL);
    ASSERT_TRUE(p != NULL);
    ids_with_low(id, UINT64_MAX);
    ASSERT_TRUE(ot_sample(p, NULL, id));
    finish_provider(p);

    /* Out of range arguments are refused. */
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.sampler_arg = 1.5;
    ASSERT_EQ(sl_provider_create(&o, &p), SL_OTEL_EINVAL);
    ASSERT_TRUE(p == NULL);
}

static void test_sampled_out_spans(void) {
    sl_context_reset();
    sl_provider *p = make_provider(SL_SAMPLER_PARENTBASED_ALWAYS_OFF, 1.0, NULL);
    ASSERT_TRUE(p != NULL);
    sl_tracer *t;
    ASSERT_EQ(sl_provider_tracer(p, "unit", "1.0", &t), 0);
    sl_tracer *t2;
    ASSERT_EQ(sl_provider_tracer(p, "unit", "1.0", &t2), 0);
    ASSERT_TRUE(t == t2);
    sl_span *s;
    ASSERT_EQ(sl_span_start(t, "root", NULL, &s), 0);
    ASSERT_TRUE(!sl_span_is_recording(s));
    ASSERT_EQ(sl_span_set_str(s, "k", "v"), 0); /* a no-op, not an error */
    sl_span_context c;
    ASSERT_EQ(sl_span_get_context(s, &c), 0);
    ASSERT_TRUE(sl_span_context_is_valid(&c)); /* ids still propagate */
    ASSERT_EQ(c.trace_flags, 0);

    /* A child of a sampled remote parent records and keeps its trace id and
     * tracestate. */
    sl_span_context parent;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ASSERT_EQ(sl_traceparent_parse(tp, strlen(tp), &parent), 0);
    snprintf(parent.trace_state, sizeof parent.trace_state, "rojo=1");
    ASSERT_EQ(sl_context_push(&parent), 0);
    sl_span *child;
    ASSERT_EQ(sl_span_start(t, "child", NULL, &child), 0);
    sl_context_pop();
    ASSERT_TRUE(sl_span_is_recording(child));
    ASSERT_EQ(sl_span_get_context(child, &c), 0);
    ASSERT_TRUE(memcmp(c.trace_id, parent.trace_id, 16) == 0);
    ASSERT_TRUE(memcmp(child->parent_id, parent.span_id, 8) == 0);
    ASSERT_TRUE(child->parent_remote);
    ASSERT_STR_EQ(c.trace_state, "rojo=1");
    ASSERT_EQ(c.trace_flags, 1);

    /* root = true ignores the current context. */
    sl_span_options so;
    sl_span_options_init(&so);
    so.root = true;
    ASSERT_EQ(sl_context_push(&parent), 0);
    sl_span *r2;
    ASSERT_EQ(sl_span_start(t, "new root", &so, &r2), 0);
    sl_context_pop();
    ASSERT_TRUE(!sl_span_is_recording(r2));
    ASSERT_TRUE(memcmp(r2->trace_id, parent.trace_id, 16) != 0);

    sl_span_end(s, 0);
    sl_span_end(r2, 0);
    sl_span_end(child, 0);
    sl_span_end(NULL, 0); /* harmless */
    sl_provider_stats st;
    ASSERT_EQ(sl_provider_stats_get(p, &st), 0);
    ASSERT_U64_EQ(st.spans_not_sampled, 2);
    ASSERT_U64_EQ(st.spans_started, 1);
    finish_provider(p);
}

/* ---- limits -------------------------------------------------------------------- */

static void test_limits(void) {
    sl_span_limits l = {.attribute_count = 3,
                        .attribute_value_length = 5,
                        .event_count = 2,
                        .link_count = 1,
                        .attributes_per_event = 1,
                        .attributes_per_link = 1};
    sl_provider *p = make_provider(SL_SAMPLER_ALWAYS_ON, 1.0, &l);
    ASSERT_TRUE(p != NULL);
    sl_tracer *t;
    ASSERT_EQ(sl_provider_tracer(p, "unit", NULL, &t), 0);
    sl_span *s;
    ASSERT_EQ(sl_span_start(t, "limited", NULL, &s), 0);
    ASSERT_EQ(sl_span_set_str(s, "a", "0123456789"), 0);   /* cut to 5 */
    ASSERT_EQ(sl_span_set_str(s, "u", "hell\xc3\xa9"), 0); /* cut before the 2-byte "é" */
    ASSERT_EQ(s->rec.nodes[s->rec.nnodes - 1].u.s.len, 4);
    ASSERT_EQ(sl_span_set_int(s, "b", 1), 0);
    ASSERT_EQ(sl_span_set_int(s, "c", 2), SL_OTEL_ELIMIT);
    ASSERT_EQ(sl_span_set_int(s, "b", 3), 0); /* replacing an existing key is fine */
    ASSERT_EQ(sl_span_set_int(s, "d", 4), SL_OTEL_ELIMIT);
    ASSERT_EQ(s->nattrs, 3);
    ASSERT_EQ(s->dropped_attrs, 2);
    sl_kv ev[2] = {SL_KV_INT("x", 1), SL_KV_INT("y", 2)};
    ASSERT_EQ(sl_span_add_event(s, "e1", 0, ev, 2), 0);
    ASSERT_EQ(sl_span_add_event(s, "e2", 0, NULL, 0), 0);
    ASSERT_EQ(sl_span_add_event(s, "e3", 0, NULL, 0), SL_OTEL_ELIMIT);
    ASSERT_EQ(s->events[0].nattrs, 1);
    ASSERT_EQ(s->events[0].dropped, 1);
    ASSERT_EQ(s->dropped_events, 1);
    sl_span_context lc;
    memset(&lc, 0, sizeof lc);
    memset(lc.trace_id, 3, 16);
    memset(lc.span_id, 4, 8);
    sl_link link = {&lc, ev, 2};
    ASSERT_EQ(sl_span_add_link(s, &link), 0);
    ASSERT_EQ(sl_span_add_link(s, &link), SL_OTEL_ELIMIT);
    ASSERT_EQ(s->links[0].dropped, 1);
    ASSERT_EQ(s->dropped_links, 1);
    /* Nesting deeper than 8 levels is refused. */
    sl_any deep[12];
    for (int i = 0; i < 12; i++) {
        deep[i] = (sl_any){.type = SL_ANY_ARRAY, .len = i < 11 ? 1 : 0, .v.array = &deep[i + 1]};
    }
    sl_kv dk = SL_KV_ARRAY("a", deep[0].v.array, 1);
    ASSERT_EQ(sl_span_set_attrs(s, &dk, 1), SL_OTEL_EINVAL); /* "a" keeps its value */
    sl_any two[2] = {SL_ANY_I64(1), SL_ANY_I64(2)};
    sl_kv arr = SL_KV_ARRAY("u", two, 2);
    ASSERT_EQ(sl_span_set_attrs(s, &arr, 1), 0); /* replaced by an array */
    ASSERT_EQ(s->nattrs, 3);

    /* The encoding carries the cut values and the dropped counts. */
    s->end_ns = s->start_ns + 1;
    ot_buf b = {0};
    ot_enc e;
    ot_enc_init(&e, &b, false);
    void *items[1] = {s};
    ot_span_ops.encode(p, items, 1, &e);
    ASSERT_TRUE(!b.oom);
    PbTraceReq *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, b.len, b.p);
    ASSERT_TRUE(req != NULL);
    const PbSpan *ps = req->resource_spans[0]->scope_spans[0]->spans[0];
    const PbKV *a = find_kv(ps->attributes, ps->n_attributes, "a");
    const PbKV *u = find_kv(ps->attributes, ps->n_attributes, "u");
    const PbKV *u0 = NULL;
    for (size_t i = 0; i < ps->n_attributes; i++) {
        if (strcmp(ps->attributes[i]->key, "u") == 0) {
            u0 = ps->attributes[i];
        }
    }
    const PbKV *bb = find_kv(ps->attributes, ps->n_attributes, "b");
    int ok = a && u && bb && strcmp(a->value->string_value, "01234") == 0 && u == u0 &&
             u->value->value_case == 5 && u->value->array_value->n_values == 2 &&
             bb->value->int_value == 3 && ps->n_attributes == 3 &&
             ps->dropped_attributes_count == 2 && ps->dropped_events_count == 1 &&
             ps->dropped_links_count == 1 && ps->events[0]->dropped_attributes_count == 1 &&
             ps->links[0]->dropped_attributes_count == 1;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    ot_buf_free(&b);
    ot_span_ops.release(p, items, 1);
    finish_provider(p);
    ASSERT_TRUE(ok);
}

/* ---- encoding -------------------------------------------------------------------- */

static sl_span *full_span(sl_tracer *t, const sl_span_context *link_ctx) {
    static const uint8_t blob[3] = {0, 1, 2};
    sl_any arr[3] = {SL_ANY_STR("a"), SL_ANY_I64(7), {.type = SL_ANY_DOUBLE, .v.d = 0.5}};
    sl_kv inner[2] = {SL_KV_STR("ik", "iv"), SL_KV_BOOL("ib", true)};
    sl_kv attrs[] = {SL_KV_STR("http.request.method", "GET"),
                     SL_KV_INT("http.response.status_code", 200),
                     SL_KV_DOUBLE("ratio", 0.25),
                     SL_KV_BOOL("retry", true),
                     SL_KV_BYTES("blob", blob, 3),
                     SL_KV_ARRAY("list", arr, 3),
                     SL_KV_KVLIST("map", inner, 2),
                     {"empty", {.type = SL_ANY_EMPTY}},
                     SL_KV_STR("quote", "a\"b\\c\n\x01")};
    sl_link link = {link_ctx, attrs, 1};
    sl_span_options o;
    sl_span_options_init(&o);
    o.kind = SL_SPAN_KIND_SERVER;
    o.start_unix_nano = 1000000000;
    o.attrs = attrs;
    o.attr_count = sizeof attrs / sizeof attrs[0];
    o.links = &link;
    o.link_count = 1;
    sl_span *s = NULL;
    if (sl_span_start(t, "GET /users/{id}", &o, &s) != 0) {
        return NULL;
    }
    sl_kv ev = SL_KV_STR("cache.key", "u:1");
    sl_span_add_event(s, "cache miss", 1000000500, &ev, 1);
    sl_span_record_error(s, "Timeout", "upstream timed out");
    s->end_ns = 1000002000;
    return s;
}

static void test_encode_protobuf(void) {
    sl_context_reset();
    sl_provider *p = make_provider(SL_SAMPLER_ALWAYS_ON, 1.0, NULL);
    ASSERT_TRUE(p != NULL);
    sl_tracer *t1, *t2;
    ASSERT_EQ(sl_provider_tracer(p, "scope.one", "1.2.3", &t1), 0);
    ASSERT_EQ(sl_provider_tracer(p, "scope.two", NULL, &t2), 0);
    sl_span_context lc;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ASSERT_EQ(sl_traceparent_parse(tp, strlen(tp), &lc), 0);
    snprintf(lc.trace_state, sizeof lc.trace_state, "congo=t61");
    sl_span *s1 = full_span(t1, &lc);
    ASSERT_TRUE(s1 != NULL);
    sl_span *s2 = NULL;
    ASSERT_EQ(sl_context_push_span(s1), 0);
    ASSERT_EQ(sl_span_start(t2, "child", NULL, &s2), 0);
    sl_context_pop();
    s2->end_ns = s2->start_ns + 10;
    sl_span_set_status(s2, SL_STATUS_OK, "ignored for OK");
    sl_span_set_status(s2, SL_STATUS_ERROR, "OK is final");

    ot_buf b = {0};
    ot_enc e;
    ot_enc_init(&e, &b, false);
    void *items[2] = {s2, s1};
    ot_span_ops.encode(p, items, 2, &e);
    ASSERT_TRUE(!b.oom);
    PbTraceReq *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, b.len, b.p);
    ASSERT_TRUE(req != NULL);
    int failures_before = sl_test_failures;
    do {
        ASSERT_EQ(req->n_resource_spans, 1);
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
        const PbKV *svc =
            find_kv(rs->resource->attributes, rs->resource->n_attributes, "service.name");
        ASSERT_TRUE(svc != NULL);
        ASSERT_STR_EQ(svc->value->string_value, "unit");
        ASSERT_TRUE(find_kv(rs->resource->attributes, rs->resource->n_attributes,
                            "telemetry.sdk.name") != NULL);
        const PbKV *pid =
            find_kv(rs->resource->attributes, rs->resource->n_attributes, "process.pid");
        ASSERT_TRUE(pid != NULL && pid->value->int_value > 0);
        ASSERT_TRUE(find_kv(rs->resource->attributes, rs->resource->n_attributes,
                            "service.instance.id") != NULL);
        ASSERT_EQ(rs->n_scope_spans, 2);
        const PbSpan *ps = NULL, *pc = NULL;
        for (size_t i = 0; i < 2; i++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[i];
            ASSERT_EQ(ss->n_spans, 1);
            if (strcmp(ss->scope->name, "scope.one") == 0) {
                ASSERT_STR_EQ(ss->scope->version, "1.2.3");
                ps = ss->spans[0];
            } else {
                ASSERT_STR_EQ(ss->scope->name, "scope.two");
                ASSERT_STR_EQ(ss->scope->version, "");
                pc = ss->spans[0];
            }
        }
        ASSERT_TRUE(ps != NULL && pc != NULL);
        ASSERT_EQ(ps->trace_id.len, 16);
        ASSERT_TRUE(memcmp(ps->trace_id.data, s1->trace_id, 16) == 0);
        ASSERT_TRUE(memcmp(ps->span_id.data, s1->span_id, 8) == 0);
        ASSERT_EQ(ps->parent_span_id.len, 0);
        ASSERT_STR_EQ(ps->name, "GET /users/{id}");
        ASSERT_EQ(ps->kind, 2);
        ASSERT_U64_EQ(ps->start_time_unix_nano, 1000000000);
        ASSERT_U64_EQ(ps->end_time_unix_nano, 1000002000);
        ASSERT_EQ(ps->flags, 0x101); /* sampled, parent known to be local */
        ASSERT_EQ(ps->n_attributes, 9);
        const PbKV *kv = find_kv(ps->attributes, ps->n_attributes, "http.request.method");
        ASSERT_TRUE(kv && kv->value->value_case == 1);
        ASSERT_STR_EQ(kv->value->string_value, "GET");
        kv = find_kv(ps->attributes, ps->n_attributes, "http.response.status_code");
        ASSERT_TRUE(kv && kv->value->value_case == 3 && kv->value->int_value == 200);
        kv = find_kv(ps->attributes, ps->n_attributes, "ratio");
        ASSERT_TRUE(kv && kv->value->value_case == 4 && kv->value->double_value == 0.25);
        kv = find_kv(ps->attributes, ps->n_attributes, "retry");
        ASSERT_TRUE(kv && kv->value->value_case == 2 && kv->value->bool_value);
        kv = find_kv(ps->attributes, ps->n_attributes, "blob");
        ASSERT_TRUE(kv && kv->value->value_case == 7 && kv->value->bytes_value.len == 3 &&
                    kv->value->bytes_value.data[2] == 2);
        kv = find_kv(ps->attributes, ps->n_attributes, "list");
        ASSERT_TRUE(kv && kv->value->value_case == 5);
        const Opentelemetry__Proto__Common__V1__ArrayValue *av = kv->value->array_value;
        ASSERT_EQ(av->n_values, 3);
        ASSERT_STR_EQ(av->values[0]->string_value, "a");
        ASSERT_EQ(av->values[1]->int_value, 7);
        ASSERT_DBL_EQ(av->values[2]->double_value, 0.5);
        kv = find_kv(ps->attributes, ps->n_attributes, "map");
        ASSERT_TRUE(kv && kv->value->value_case == 6);
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = kv->value->kvlist_value;
        ASSERT_EQ(kl->n_values, 2);
        ASSERT_STR_EQ(kl->values[0]->key, "ik");
        ASSERT_STR_EQ(kl->values[0]->value->string_value, "iv");
        ASSERT_TRUE(kl->values[1]->value->bool_value);
        kv = find_kv(ps->attributes, ps->n_attributes, "empty");
        ASSERT_TRUE(kv && kv->value->value_case == 0);
        kv = find_kv(ps->attributes, ps->n_attributes, "quote");
        ASSERT_STR_EQ(kv->value->string_value, "a\"b\\c\n\x01");
        ASSERT_EQ(ps->n_events, 2);
        ASSERT_STR_EQ(ps->events[0]->name, "cache miss");
        ASSERT_U64_EQ(ps->events[0]->time_unix_nano, 1000000500);
        ASSERT_EQ(ps->events[0]->n_attributes, 1);
        ASSERT_STR_EQ(ps->events[0]->attributes[0]->value->string_value, "u:1");
        ASSERT_STR_EQ(ps->events[1]->name, "exception");
        kv = find_kv(ps->events[1]->attributes, ps->events[1]->n_attributes, "exception.type");
        ASSERT_TRUE(kv != NULL);
        ASSERT_STR_EQ(kv->value->string_value, "Timeout");
        ASSERT_EQ(ps->n_links, 1);
        ASSERT_TRUE(memcmp(ps->links[0]->trace_id.data, lc.trace_id, 16) == 0);
        ASSERT_TRUE(memcmp(ps->links[0]->span_id.data, lc.span_id, 8) == 0);
        ASSERT_STR_EQ(ps->links[0]->trace_state, "congo=t61");
        ASSERT_EQ(ps->links[0]->flags, 0x301); /* sampled, remote */
        ASSERT_EQ(ps->links[0]->n_attributes, 1);
        ASSERT_TRUE(ps->status != NULL);
        ASSERT_EQ(ps->status->code, 2);
        ASSERT_STR_EQ(ps->status->message, "upstream timed out");
        /* The child: same trace, parent = s1, status OK stays OK. */
        ASSERT_TRUE(memcmp(pc->trace_id.data, s1->trace_id, 16) == 0);
        ASSERT_EQ(pc->parent_span_id.len, 8);
        ASSERT_TRUE(memcmp(pc->parent_span_id.data, s1->span_id, 8) == 0);
        ASSERT_EQ(pc->kind, 1);
        ASSERT_TRUE(pc->status != NULL && pc->status->code == 1);
        ASSERT_STR_EQ(pc->status->message, "");
    } while (0);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    ot_buf_free(&b);
    ot_span_ops.release(p, items, 2);
    finish_provider(p);
    ASSERT_EQ(sl_test_failures, failures_before);
}

static void test_encode_json(void) {
    sl_context_reset();
    sl_provider *p = make_provider(SL_SAMPLER_ALWAYS_ON, 1.0, NULL);
    ASSERT_TRUE(p != NULL);
    sl_tracer *t;
    ASSERT_EQ(sl_provider_tracer(p, "scope.one", "1", &t), 0);
    sl_span_context lc;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ASSERT_EQ(sl_traceparent_parse(tp, strlen(tp), &lc), 0);
    sl_span *s = full_span(t, &lc);
    ASSERT_TRUE(s != NULL);
    ot_buf b = {0};
    ot_enc e;
    ot_enc_init(&e, &b, true);
    void *items[1] = {s};
    ot_span_ops.encode(p, items, 1, &e);
    ot_enc_finish(&e);
    json_error_t err;
    json_t *doc = json_loadb((const char *)b.p, b.len, 0, &err);
    if (doc == NULL) {
        SL_FAIL_AT("JSON does not parse: %s at %d: %.*s", err.text, err.position, (int)b.len,
                   (const char *)b.p);
    }
    char hex[33];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[s->trace_id[i] >> 4];
        hex[2 * i + 1] = digits[s->trace_id[i] & 15];
    }
    hex[32] = '\0';
    json_t *span = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    ot_buf_free(&b);
    ot_span_ops.release(p, items, 1);
    finish_provider(p);
    ASSERT_TRUE(span != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(span, "traceId")), hex);
    ASSERT_STR_EQ(json_string_value(json_object_get(span, "name")), "GET /users/{id}");
    ASSERT_EQ(json_integer_value(json_object_get(span, "kind")), 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(span, "startTimeUnixNano")), "1000000000");
    ASSERT_STR_EQ(json_string_value(json_object_get(span, "endTimeUnixNano")), "1000002000");
    json_t *attrs = json_object_get(span, "attributes");
    ASSERT_EQ(json_array_size(attrs), 9);
    int seen = 0;
    for (size_t i = 0; i < json_array_size(attrs); i++) {
        json_t *a = json_array_get(attrs, i);
        const char *k = json_string_value(json_object_get(a, "key"));
        json_t *v = json_object_get(a, "value");
        if (strcmp(k, "http.response.status_code") == 0) {
            ASSERT_STR_EQ(json_string_value(json_object_get(v, "intValue")), "200");
            seen++;
        } else if (strcmp(k, "blob") == 0) {
            ASSERT_STR_EQ(json_string_value(json_object_get(v, "bytesValue")), "AAEC");
            seen++;
        } else if (strcmp(k, "ratio") == 0) {
            ASSERT_DBL_EQ(json_real_value(json_object_get(v, "doubleValue")), 0.25);
            seen++;
        } else if (strcmp(k, "quote") == 0) {
            ASSERT_STR_EQ(json_string_value(json_object_get(v, "stringValue")), "a\"b\\c\n\x01");
            seen++;
        } else if (strcmp(k, "list") == 0) {
            json_t *vals = json_object_get(json_object_get(v, "arrayValue"), "values");
            ASSERT_EQ(json_array_size(vals), 3);
            ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(vals, 1), "intValue")),
                          "7");
            seen++;
        } else if (strcmp(k, "map") == 0) {
            json_t *vals = json_object_get(json_object_get(v, "kvlistValue"), "values");
            ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(vals, 0), "key")), "ik");
            seen++;
        }
    }
    ASSERT_EQ(seen, 6);
    json_t *link = json_array_get(json_object_get(span, "links"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(link, "spanId")), "b7ad6b7169203331");
    json_t *st = json_object_get(span, "status");
    ASSERT_EQ(json_integer_value(json_object_get(st, "code")), 2);
    json_decref(doc);
}

static void test_pool_reuse(void) {
    /* Steady state: a started and ended span comes back to the pool and the
     * next one reuses it (no allocation). */
    sl_provider *p = make_provider(SL_SAMPLER_ALWAYS_OFF, 1.0, NULL);
    ASSERT_TRUE(p != NULL);
    sl_tracer *t;
    ASSERT_EQ(sl_provider_tracer(p, "unit", NULL, &t), 0);
    sl_span *a, *b;
    ASSERT_EQ(sl_span_start(t, "a", NULL, &a), 0);
    sl_span_end(a, 0);
    ASSERT_EQ(sl_span_start(t, "b", NULL, &b), 0);
    ASSERT_TRUE(a == b);
    sl_span_end(b, 0);
    finish_provider(p);
}

static void test_response_parsing(void) {
    ASSERT_EQ(ot_parse_retry_after(" 5\r\n", 4, 0), 5000);
    ASSERT_EQ(ot_parse_retry_after("0", 1, 0), 0);
    ASSERT_EQ(ot_parse_retry_after("999999", 6, 0), 86400000); /* capped at a day */
    ASSERT_EQ(ot_parse_retry_after("-3", 2, 0), -1);
    ASSERT_EQ(ot_parse_retry_after("5s", 2, 0), -1);
    ASSERT_EQ(ot_parse_retry_after("", 0, 0), -1);
    const char *date = "Wed, 21 Oct 2015 07:28:00 GMT"; /* 1445412480 */
    ASSERT_EQ(ot_parse_retry_after(date, strlen(date), 1445412470), 10000);
    ASSERT_EQ(ot_parse_retry_after(date, strlen(date), 1445412490), 0);
    static const uint8_t pb[] = {0x0a, 0x05, 0x12, 0x01, 'x', 0x08, 0x07};
    ASSERT_EQ(ot_parse_rejected(pb, sizeof pb, false), 7);
    ASSERT_EQ(ot_parse_rejected(pb, 4, false), 0); /* truncated */
    ASSERT_EQ(ot_parse_rejected(NULL, 0, false), 0);
    const char *js = "{\"partialSuccess\":{\"rejectedLogRecords\":\"12\"}}";
    ASSERT_EQ(ot_parse_rejected((const uint8_t *)js, strlen(js), true), 12);
    ASSERT_EQ(ot_parse_rejected((const uint8_t *)"{}", 2, true), 0);
}

static void test_null_handles(void) {
    sl_span *s = (sl_span *)1;
    ASSERT_EQ(sl_span_start(NULL, "x", NULL, &s), SL_OTEL_EINVAL);
    ASSERT_TRUE(s == NULL);
    ASSERT_EQ(sl_span_set_str(NULL, "k", "v"), SL_OTEL_EINVAL);
    ASSERT_EQ(sl_span_add_event(NULL, "e", 0, NULL, 0), SL_OTEL_EINVAL);
    ASSERT_EQ(sl_provider_force_flush(NULL, 10), SL_OTEL_EINVAL);
    sl_provider_destroy(NULL);
    ASSERT_STR_EQ(sl_otel_strerror(SL_OTEL_EFULL), "queue full: item dropped");
    ASSERT_STR_EQ(sl_otel_strerror(0), "success");
    ASSERT_STR_EQ(sl_otel_version(), SL_OTEL_VERSION_STRING);
}

int main(void) {
    RUN(test_sampler_decisions);
    RUN(test_sampled_out_spans);
    RUN(test_limits);
    RUN(test_encode_protobuf);
    RUN(test_encode_json);
    RUN(test_pool_reuse);
    RUN(test_response_parsing);
    RUN(test_null_handles);
    return SL_TEST_RESULT();
}
