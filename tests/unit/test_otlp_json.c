/*
 * Tests for collector/otlp_json.c: the OTLP/JSON rules (ids, bytes, 64-bit
 * integers, doubles, enums, oneofs, proto2 presence, unknown fields, null,
 * keys in both spellings), error messages with their paths, limits, the
 * public example payloads of all three signals, and a JSON -> protobuf ->
 * protobuf round trip.
 *
 * Test JSON is written with single quotes (q() turns them into double quotes).
 * Single-threaded.
 */
#include "otlp_json.h"

#include "sl_arena.h"
#include "sl_err.h"
#include "sl_test.h"
#include "sl_util.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <jansson.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;

#define TRACE_DESC                                                                                 \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
#define LOGS_DESC opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor
#define METRICS_DESC                                                                               \
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor

static sl_arena g_arena;
static char g_err[512];
static char g_json[1 << 16];
static char g_file[1 << 16];

/* Returns s with every ' replaced by " (in a static buffer). */
static const char *q(const char *s) {
    size_t n = strlen(s);
    if (n >= sizeof(g_json)) {
        abort();
    }
    memcpy(g_json, s, n + 1);
    for (char *p = strchr(g_json, '\''); p != NULL; p = strchr(p + 1, '\'')) {
        *p = '"';
    }
    return g_json;
}

static int decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                  ProtobufCMessage **out) {
    sl_arena_reset(&g_arena);
    *out = NULL;
    return col_json_decode(desc, json, len, &g_arena, out, g_err, sizeof(g_err));
}

/* Decodes single-quoted JSON. */
static int decode_q(const ProtobufCMessageDescriptor *desc, const char *sq,
                    ProtobufCMessage **out) {
    const char *j = q(sq);
    return decode(desc, j, strlen(j), out);
}

/* Decodes a trace request holding one span whose members are given
 * (single-quoted); *out is that span. */
static int decode_span(const char *members, const pb_span **out) {
    char buf[8192];
    int n = snprintf(buf, sizeof(buf), "{'resourceSpans':[{'scopeSpans':[{'spans':[{%s}]}]}]}",
                     members);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        abort();
    }
    ProtobufCMessage *m;
    int rc = decode_q(&TRACE_DESC, buf, &m);
    *out = rc == 0 ? ((trace_req *)m)->resource_spans[0]->scope_spans[0]->spans[0] : NULL;
    return rc;
}

/* Decodes a one-attribute span; *out is the attribute's value (may be NULL). */
static int decode_value(const char *value, const pb_any **out) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "'attributes':[{'key':'k','value':%s}]", value);
    const pb_span *s;
    int rc = decode_span(buf, &s);
    *out = rc == 0 ? s->attributes[0]->value : NULL;
    return rc;
}

static size_t read_example(const char *name) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", SL_TEST_OTLP_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        abort();
    }
    size_t n = fread(g_file, 1, sizeof(g_file) - 1, f);
    fclose(f);
    g_file[n] = '\0';
    return n;
}

static bool bytes_eq(ProtobufCBinaryData b, const char *hex) {
    size_t n = strlen(hex) / 2;
    uint8_t tmp[64];
    if (b.len != n || n > sizeof(tmp) || sl_hex_decode(hex, 2 * n, tmp, n) != 0) {
        return false;
    }
    return n == 0 || memcmp(b.data, tmp, n) == 0;
}

static bool err_has(const char *needle) {
    if (strstr(g_err, needle) == NULL) {
        fprintf(stderr, "  error was: \"%s\"\n  expected it to contain: \"%s\"\n", g_err, needle);
        return false;
    }
    return true;
}

/* ---- the public examples ---------------------------------------------------- */

static void test_example_trace(void) {
    size_t n = read_example("trace.json");
    ProtobufCMessage *m;
    ASSERT_EQ(decode(&TRACE_DESC, g_file, n, &m), 0);
    ASSERT_STR_EQ(g_err, "");
    trace_req *r = (trace_req *)m;
    ASSERT_EQ(r->n_resource_spans, 1);
    const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
    ASSERT_TRUE(rs->resource != NULL);
    ASSERT_EQ(rs->resource->n_attributes, 1);
    ASSERT_STR_EQ(rs->resource->attributes[0]->key, "service.name");
    ASSERT_EQ(rs->resource->attributes[0]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    ASSERT_STR_EQ(rs->resource->attributes[0]->value->string_value, "my.service");
    ASSERT_EQ(rs->n_scope_spans, 1);
    ASSERT_STR_EQ(rs->scope_spans[0]->scope->name, "my.library");
    ASSERT_STR_EQ(rs->scope_spans[0]->scope->version, "1.0.0");
    ASSERT_STR_EQ(rs->scope_spans[0]->scope->attributes[0]->value->string_value,
                  "some scope attribute");
    ASSERT_EQ(rs->scope_spans[0]->n_spans, 1);
    const pb_span *s = rs->scope_spans[0]->spans[0];
    ASSERT_TRUE(bytes_eq(s->trace_id, "5b8efff798038103d269b633813fc60c"));
    ASSERT_TRUE(bytes_eq(s->span_id, "eee19b7ec3c1b174"));
    ASSERT_TRUE(bytes_eq(s->parent_span_id, "eee19b7ec3c1b173"));
    ASSERT_STR_EQ(s->name, "I'm a server span");
    ASSERT_U64_EQ(s->start_time_unix_nano, 1544712660000000000ull);
    ASSERT_U64_EQ(s->end_time_unix_nano, 1544712661000000000ull);
    ASSERT_EQ(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    ASSERT_EQ(s->n_attributes, 1);
    ASSERT_STR_EQ(s->attributes[0]->key, "my.span.attr");
    ASSERT_STR_EQ(s->attributes[0]->value->string_value, "some value");
    /* Unset fields read as defaults. */
    ASSERT_STR_EQ(s->trace_state, "");
    ASSERT_TRUE(s->status == NULL);
    ASSERT_EQ(s->n_events, 0);
    ASSERT_TRUE(s->events == NULL);
    ASSERT_EQ(s->flags, 0);
    ASSERT_TRUE(protobuf_c_message_check(m));
}

static void test_example_logs(void) {
    size_t n = read_example("logs.json");
    ProtobufCMessage *m;
    ASSERT_EQ(decode(&LOGS_DESC, g_file, n, &m), 0);
    logs_req *r = (logs_req *)m;
    ASSERT_EQ(r->n_resource_logs, 1);
    ASSERT_EQ(r->resource_logs[0]->n_scope_logs, 1);
    ASSERT_EQ(r->resource_logs[0]->scope_logs[0]->n_log_records, 1);
    const Opentelemetry__Proto__Logs__V1__LogRecord *l =
        r->resource_logs[0]->scope_logs[0]->log_records[0];
    ASSERT_U64_EQ(l->time_unix_nano, 1544712660300000000ull);
    ASSERT_U64_EQ(l->observed_time_unix_nano, 1544712660300000000ull);
    ASSERT_EQ(l->severity_number, 10);
    ASSERT_STR_EQ(l->severity_text, "Information");
    ASSERT_TRUE(bytes_eq(l->trace_id, "5b8efff798038103d269b633813fc60c"));
    ASSERT_TRUE(bytes_eq(l->span_id, "eee19b7ec3c1b174"));
    ASSERT_EQ(l->body->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    ASSERT_STR_EQ(l->body->string_value, "Example log record");
    ASSERT_EQ(l->n_attributes, 6);
    ASSERT_TRUE(l->attributes[1]->value->bool_value);
    ASSERT_EQ(l->attributes[2]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ASSERT_EQ(l->attributes[2]->value->int_value, 10);
    ASSERT_DBL_EQ(l->attributes[3]->value->double_value, 637.704);
    const pb_any *arr = l->attributes[4]->value;
    ASSERT_EQ(arr->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    ASSERT_EQ(arr->array_value->n_values, 2);
    ASSERT_STR_EQ(arr->array_value->values[1]->string_value, "values");
    const pb_any *kvl = l->attributes[5]->value;
    ASSERT_EQ(kvl->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    ASSERT_EQ(kvl->kvlist_value->n_values, 1);
    ASSERT_STR_EQ(kvl->kvlist_value->values[0]->key, "some.map.key");
    ASSERT_STR_EQ(kvl->kvlist_value->values[0]->value->string_value, "some value");
    ASSERT_TRUE(protobuf_c_message_check(m));
}

static void test_example_metrics(void) {
    size_t n = read_example("metrics.json");
    ProtobufCMessage *m;
    ASSERT_EQ(decode(&METRICS_DESC, g_file, n, &m), 0);
    metrics_req *r = (metrics_req *)m;
    ASSERT_EQ(r->n_resource_metrics, 1);
    const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        r->resource_metrics[0]->scope_metrics[0];
    ASSERT_STR_EQ(sm->scope->name, "my.library");
    ASSERT_EQ(sm->n_metrics, 4);

    const pb_metric *sum = sm->metrics[0];
    ASSERT_STR_EQ(sum->name, "my.counter");
    ASSERT_STR_EQ(sum->unit, "1");
    ASSERT_STR_EQ(sum->description, "I am a Counter");
    ASSERT_EQ(sum->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    ASSERT_TRUE(sum->sum->has_aggregation_temporality);
    ASSERT_EQ(sum->sum->aggregation_temporality, 1);
    ASSERT_TRUE(sum->sum->has_is_monotonic);
    ASSERT_TRUE(sum->sum->is_monotonic);
    ASSERT_EQ(sum->sum->n_data_points, 1);
    const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = sum->sum->data_points[0];
    ASSERT_EQ(dp->value_case,
              OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    ASSERT_DBL_EQ(dp->as_double, 5);
    ASSERT_TRUE(dp->has_start_time_unix_nano);
    ASSERT_U64_EQ(dp->time_unix_nano, 1544712660300000000ull);
    ASSERT_TRUE(!dp->has_flags);
    ASSERT_STR_EQ(dp->attributes[0]->key, "my.counter.attr");

    const pb_metric *gauge = sm->metrics[1];
    ASSERT_EQ(gauge->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    ASSERT_DBL_EQ(gauge->gauge->data_points[0]->as_double, 10);
    ASSERT_TRUE(!gauge->gauge->data_points[0]->has_start_time_unix_nano);

    const pb_metric *hist = sm->metrics[2];
    ASSERT_EQ(hist->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h =
        hist->histogram->data_points[0];
    ASSERT_TRUE(h->has_count);
    ASSERT_U64_EQ(h->count, 2);
    ASSERT_TRUE(h->has_sum);
    ASSERT_DBL_EQ(h->sum, 2);
    ASSERT_EQ(h->n_bucket_counts, 2);
    ASSERT_U64_EQ(h->bucket_counts[0], 1);
    ASSERT_U64_EQ(h->bucket_counts[1], 1);
    ASSERT_EQ(h->n_explicit_bounds, 1);
    ASSERT_DBL_EQ(h->explicit_bounds[0], 1);
    ASSERT_TRUE(h->has_min && h->has_max);
    ASSERT_DBL_EQ(h->min, 0);
    ASSERT_DBL_EQ(h->max, 2);

    const pb_metric *eh = sm->metrics[3];
    ASSERT_EQ(eh->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *e =
        eh->exponential_histogram->data_points[0];
    ASSERT_U64_EQ(e->count, 3);
    ASSERT_TRUE(e->has_scale);
    ASSERT_EQ(e->scale, 0);
    ASSERT_TRUE(e->has_zero_count);
    ASSERT_U64_EQ(e->zero_count, 1);
    ASSERT_TRUE(e->positive != NULL);
    ASSERT_TRUE(e->positive->has_offset);
    ASSERT_EQ(e->positive->offset, 1);
    ASSERT_EQ(e->positive->n_bucket_counts, 2);
    ASSERT_U64_EQ(e->positive->bucket_counts[1], 2);
    ASSERT_TRUE(e->negative == NULL);
    ASSERT_TRUE(e->has_zero_threshold);
    ASSERT_DBL_EQ(e->max, 5);
    ASSERT_TRUE(protobuf_c_message_check(m));
}

/* JSON -> message -> pack -> unpack -> pack: the bytes agree and selected
 * fields survive, for all three signals. */
static void test_roundtrip(void) {
    static const struct {
        const char *file;
        const ProtobufCMessageDescriptor *desc;
    } cases[] = {
        {"trace.json", &TRACE_DESC}, {"logs.json", &LOGS_DESC}, {"metrics.json", &METRICS_DESC}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = read_example(cases[c].file);
        ProtobufCMessage *m;
        ASSERT_EQ(decode(cases[c].desc, g_file, n, &m), 0);
        size_t size = protobuf_c_message_get_packed_size(m);
        uint8_t *p1 = sl_arena_alloc(&g_arena, size), *p2 = sl_arena_alloc(&g_arena, size);
        ASSERT_TRUE(p1 != NULL && p2 != NULL);
        ASSERT_EQ(protobuf_c_message_pack(m, p1), size);
        ProtobufCMessage *u =
            protobuf_c_message_unpack(cases[c].desc, sl_arena_pb(&g_arena), size, p1);
        ASSERT_TRUE(u != NULL);
        ASSERT_EQ(protobuf_c_message_pack(u, p2), size);
        ASSERT_TRUE(memcmp(p1, p2, size) == 0);
        if (c == 0) {
            const pb_span *s = ((trace_req *)u)->resource_spans[0]->scope_spans[0]->spans[0];
            ASSERT_TRUE(bytes_eq(s->trace_id, "5b8efff798038103d269b633813fc60c"));
            ASSERT_TRUE(bytes_eq(s->parent_span_id, "eee19b7ec3c1b173"));
            ASSERT_U64_EQ(s->end_time_unix_nano, 1544712661000000000ull);
            ASSERT_EQ(s->kind, 2);
            ASSERT_STR_EQ(s->attributes[0]->value->string_value, "some value");
        } else if (c == 1) {
            const Opentelemetry__Proto__Logs__V1__LogRecord *l =
                ((logs_req *)u)->resource_logs[0]->scope_logs[0]->log_records[0];
            ASSERT_EQ(l->severity_number, 10);
            ASSERT_EQ(l->attributes[2]->value->int_value, 10);
            ASSERT_EQ(l->attributes[5]->value->kvlist_value->n_values, 1);
        } else {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                ((metrics_req *)u)->resource_metrics[0]->scope_metrics[0];
            ASSERT_TRUE(sm->metrics[0]->sum->is_monotonic);
            ASSERT_TRUE(sm->metrics[2]->histogram->data_points[0]->has_min);
            ASSERT_TRUE(!sm->metrics[2]->histogram->data_points[0]->has_flags);
            ASSERT_U64_EQ(sm->metrics[3]->exponential_histogram->data_points[0]->zero_count, 1);
        }
    }
}

/* Every value type through a round trip, including the empty oneof members
 * that protobuf-c would drop if they pointed at its default string. */
static void test_roundtrip_values(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC,
                       "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                       "'traceId':'0102030405060708090a0b0c0d0e0f10','spanId':'0102030405060708',"
                       "'flags':257,'droppedLinksCount':3,'status':{'code':2,'message':'boom'},"
                       "'attributes':["
                       "{'key':'s','value':{'stringValue':''}},"
                       "{'key':'b','value':{'boolValue':false}},"
                       "{'key':'i','value':{'intValue':'-5'}},"
                       "{'key':'d','value':{'doubleValue':'-Infinity'}},"
                       "{'key':'y','value':{'bytesValue':''}},"
                       "{'key':'e','value':{}},"
                       "{'key':'n'}]}]}]}]}",
                       &m),
              0);
    size_t size = protobuf_c_message_get_packed_size(m);
    uint8_t *p = sl_arena_alloc(&g_arena, size);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(protobuf_c_message_pack(m, p), size);
    trace_req *u =
        (trace_req *)protobuf_c_message_unpack(&TRACE_DESC, sl_arena_pb(&g_arena), size, p);
    ASSERT_TRUE(u != NULL);
    const pb_span *s = u->resource_spans[0]->scope_spans[0]->spans[0];
    ASSERT_EQ(s->flags, 257);
    ASSERT_EQ(s->dropped_links_count, 3);
    ASSERT_EQ(s->status->code, 2);
    ASSERT_STR_EQ(s->status->message, "boom");
    ASSERT_EQ(s->n_attributes, 7);
    ASSERT_EQ(s->attributes[0]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    ASSERT_STR_EQ(s->attributes[0]->value->string_value, "");
    ASSERT_EQ(s->attributes[1]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    ASSERT_EQ(s->attributes[2]->value->int_value, -5);
    ASSERT_TRUE(isinf(s->attributes[3]->value->double_value));
    ASSERT_TRUE(s->attributes[3]->value->double_value < 0);
    ASSERT_EQ(s->attributes[4]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    ASSERT_EQ(s->attributes[4]->value->bytes_value.len, 0);
    ASSERT_EQ(s->attributes[5]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    ASSERT_TRUE(s->attributes[6]->value == NULL);
}

/* ---- ids, bytes ------------------------------------------------------------- */

static void test_hex_ids(void) {
    const pb_span *s;
    ASSERT_EQ(decode_span("'traceId':'5B8EFFF798038103d269b633813fc60c',"
                          "'spanId':'eee19b7ec3c1B174','parentSpanId':''",
                          &s),
              0);
    ASSERT_TRUE(bytes_eq(s->trace_id, "5b8efff798038103d269b633813fc60c"));
    ASSERT_TRUE(bytes_eq(s->span_id, "eee19b7ec3c1b174"));
    ASSERT_EQ(s->parent_span_id.len, 0); /* empty string = unset */
    ASSERT_TRUE(s->parent_span_id.data == NULL);

    /* Links carry hex ids too. */
    ASSERT_EQ(decode_span("'links':[{'traceId':'000102030405060708090A0B0C0D0E0F',"
                          "'spanId':'0001020304050607','traceState':'a=b','flags':1}]",
                          &s),
              0);
    ASSERT_TRUE(bytes_eq(s->links[0]->trace_id, "000102030405060708090a0b0c0d0e0f"));
    ASSERT_TRUE(bytes_eq(s->links[0]->span_id, "0001020304050607"));
    ASSERT_STR_EQ(s->links[0]->trace_state, "a=b");

    ASSERT_EQ(decode_span("'traceId':'5b8efff798038103d269b633813fc60'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex digits"));
    ASSERT_EQ(decode_span("'spanId':'eee19b7ec3c1b1740000'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("spans[0].spanId: expected 16 hex digits, got 20 characters"));
    ASSERT_EQ(decode_span("'parentSpanId':'eee19b7ec3c1b17g'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("parentSpanId: expected 16 hex digits, got \"eee19b7ec3c1b17g\""));
    ASSERT_EQ(decode_span("'traceId':12", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("traceId: expected a hex string, got a number"));
    /* Base64 (protobuf's default for bytes) is not how OTLP sends ids. */
    ASSERT_EQ(decode_span("'spanId':'7uGbfsPBsXQ='", &s), SL_EDECODE);
}

static void test_hex_ids_logs_exemplars(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(
        decode_q(&LOGS_DESC,
                 "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                 "'traceId':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA','spanId':'bbbbbbbbbbbbbbbb'}]}]}]}",
                 &m),
        0);
    const Opentelemetry__Proto__Logs__V1__LogRecord *l =
        ((logs_req *)m)->resource_logs[0]->scope_logs[0]->log_records[0];
    ASSERT_TRUE(bytes_eq(l->trace_id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    ASSERT_TRUE(bytes_eq(l->span_id, "bbbbbbbbbbbbbbbb"));

    ASSERT_EQ(decode_q(&METRICS_DESC,
                       "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':'g','gauge':{"
                       "'dataPoints':[{'asInt':'7','exemplars':[{'asDouble':1.5,"
                       "'traceId':'0102030405060708090a0b0c0d0e0f10','spanId':'',"
                       "'timeUnixNano':'5'}]}]}}]}]}]}",
                       &m),
              0);
    const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = ((metrics_req *)m)
                                                                       ->resource_metrics[0]
                                                                       ->scope_metrics[0]
                                                                       ->metrics[0]
                                                                       ->gauge->data_points[0];
    ASSERT_EQ(dp->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    ASSERT_EQ(dp->as_int, 7);
    const Opentelemetry__Proto__Metrics__V1__Exemplar *ex = dp->exemplars[0];
    ASSERT_TRUE(ex->has_trace_id);
    ASSERT_TRUE(bytes_eq(ex->trace_id, "0102030405060708090a0b0c0d0e0f10"));
    ASSERT_TRUE(!ex->has_span_id); /* empty = unset, so no presence */
    ASSERT_TRUE(ex->has_time_unix_nano);
    ASSERT_EQ(ex->value_case, OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE);
    ASSERT_DBL_EQ(ex->as_double, 1.5);
}

static void test_base64_bytes(void) {
    const pb_any *v;
    ASSERT_EQ(decode_value("{'bytesValue':'aGVsbG8='}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    ASSERT_EQ(v->bytes_value.len, 5);
    ASSERT_TRUE(memcmp(v->bytes_value.data, "hello", 5) == 0);
    ASSERT_EQ(decode_value("{'bytesValue':'aGVsbG8'}", &v), 0); /* no padding */
    ASSERT_EQ(v->bytes_value.len, 5);
    ASSERT_TRUE(memcmp(v->bytes_value.data, "hello", 5) == 0);
    ASSERT_EQ(decode_value("{'bytesValue':'aGk='}", &v), 0);
    ASSERT_EQ(v->bytes_value.len, 2);
    ASSERT_EQ(decode_value("{'bytesValue':'+/8A'}", &v), 0); /* standard alphabet */
    ASSERT_TRUE(bytes_eq(v->bytes_value, "fbff00"));
    ASSERT_EQ(decode_value("{'bytesValue':'-_8A'}", &v), 0); /* URL-safe alphabet */
    ASSERT_TRUE(bytes_eq(v->bytes_value, "fbff00"));
    ASSERT_EQ(decode_value("{'bytesValue':'AA=='}", &v), 0);
    ASSERT_TRUE(bytes_eq(v->bytes_value, "00"));
    ASSERT_EQ(decode_value("{'bytesValue':''}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    ASSERT_EQ(v->bytes_value.len, 0);

    ASSERT_EQ(decode_value("{'bytesValue':'a'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("attributes[0].value.bytesValue: invalid base64"));
    ASSERT_EQ(decode_value("{'bytesValue':'ab=c'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'bytesValue':'abc=='}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'bytesValue':'ab c'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'bytesValue':'aGVsbG8=\\n'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'bytesValue':['aGk=']}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("bytesValue: expected a base64 string, got an array"));
}

/* ---- numbers ---------------------------------------------------------------- */

static void test_int64(void) {
    const pb_any *v;
    ASSERT_EQ(decode_value("{'intValue':'123'}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ASSERT_EQ(v->int_value, 123);
    ASSERT_EQ(decode_value("{'intValue':123}", &v), 0);
    ASSERT_EQ(v->int_value, 123);
    ASSERT_EQ(decode_value("{'intValue':'-9223372036854775808'}", &v), 0);
    ASSERT_TRUE(v->int_value == INT64_MIN);
    ASSERT_EQ(decode_value("{'intValue':-9223372036854775808}", &v), 0);
    ASSERT_TRUE(v->int_value == INT64_MIN);
    ASSERT_EQ(decode_value("{'intValue':'9223372036854775807'}", &v), 0);
    ASSERT_TRUE(v->int_value == INT64_MAX);
    ASSERT_EQ(decode_value("{'intValue':'1e3'}", &v), 0); /* exponent form, integral */
    ASSERT_EQ(v->int_value, 1000);
    ASSERT_EQ(decode_value("{'intValue':2.0e2}", &v), 0);
    ASSERT_EQ(v->int_value, 200);
    ASSERT_EQ(decode_value("{'intValue':'-0'}", &v), 0);
    ASSERT_EQ(v->int_value, 0);

    ASSERT_EQ(decode_value("{'intValue':'9223372036854775808'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("value.intValue: value out of range for int64"));
    ASSERT_EQ(decode_value("{'intValue':1.5}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("intValue: expected an integer (int64), got 1.5"));
    ASSERT_EQ(decode_value("{'intValue':'1.5'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'intValue':'12abc'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("intValue: expected an integer (int64), got \"12abc\""));
    ASSERT_EQ(decode_value("{'intValue':''}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'intValue':' 1'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'intValue':true}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("intValue: expected an integer (int64) as a number or a decimal string, "
                        "got a boolean"));
    ASSERT_EQ(decode_value("{'intValue':'1e400'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("out of range"));
}

static void test_uint64_and_32(void) {
    const pb_span *s;
    ASSERT_EQ(
        decode_span("'startTimeUnixNano':'18446744073709551615',"
                    "'endTimeUnixNano':1544712661000000000,'droppedAttributesCount':4294967295",
                    &s),
        0);
    ASSERT_TRUE(s->start_time_unix_nano == UINT64_MAX);
    ASSERT_U64_EQ(s->end_time_unix_nano, 1544712661000000000ull);
    ASSERT_U64_EQ(s->dropped_attributes_count, 4294967295u);
    ASSERT_EQ(decode_span("'startTimeUnixNano':'18446744073709551616'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("startTimeUnixNano: value out of range for fixed64"));
    ASSERT_EQ(decode_span("'startTimeUnixNano':-1", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("startTimeUnixNano: value out of range for fixed64"));
    ASSERT_EQ(decode_span("'startTimeUnixNano':'-1'", &s), SL_EDECODE);
    ASSERT_EQ(decode_span("'droppedAttributesCount':4294967296", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("droppedAttributesCount: value out of range for uint32"));
    ASSERT_EQ(decode_span("'droppedAttributesCount':-1", &s), SL_EDECODE);
    ASSERT_EQ(decode_span("'flags':'4294967296'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("flags: value out of range for fixed32"));
    ASSERT_EQ(decode_span("'flags':'0'", &s), 0);

    /* Beyond int64 as a bare JSON number: jansson cannot hold it; the error
     * says what to do instead. */
    ASSERT_EQ(decode_span("'startTimeUnixNano':18446744073709551615", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON at line 1"));
    ASSERT_TRUE(err_has("too big integer"));
    ASSERT_TRUE(err_has("decimal strings"));
}

static void test_double(void) {
    const pb_any *v;
    ASSERT_EQ(decode_value("{'doubleValue':1.25}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    ASSERT_DBL_EQ(v->double_value, 1.25);
    ASSERT_EQ(decode_value("{'doubleValue':3}", &v), 0);
    ASSERT_DBL_EQ(v->double_value, 3);
    ASSERT_EQ(decode_value("{'doubleValue':-1e-3}", &v), 0);
    ASSERT_DBL_EQ(v->double_value, -0.001);
    ASSERT_EQ(decode_value("{'doubleValue':'2.5'}", &v), 0);
    ASSERT_DBL_EQ(v->double_value, 2.5);
    ASSERT_EQ(decode_value("{'doubleValue':'NaN'}", &v), 0);
    ASSERT_TRUE(isnan(v->double_value));
    ASSERT_EQ(decode_value("{'doubleValue':'Infinity'}", &v), 0);
    ASSERT_TRUE(isinf(v->double_value) && v->double_value > 0);
    ASSERT_EQ(decode_value("{'doubleValue':'-Infinity'}", &v), 0);
    ASSERT_TRUE(isinf(v->double_value) && v->double_value < 0);

    ASSERT_EQ(decode_value("{'doubleValue':'nan'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("doubleValue: expected a number or \"NaN\", \"Infinity\", \"-Infinity\""));
    ASSERT_EQ(decode_value("{'doubleValue':'0x10'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'doubleValue':'inf'}", &v), SL_EDECODE);
    ASSERT_EQ(decode_value("{'doubleValue':false}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("doubleValue: expected a number, got a boolean"));
    ASSERT_EQ(decode_value("{'doubleValue':'1e999'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("out of range"));
}

static void test_enums(void) {
    const pb_span *s;
    ASSERT_EQ(decode_span("'kind':3,'status':{'code':2}", &s), 0);
    ASSERT_EQ(s->kind, 3);
    ASSERT_EQ(s->status->code, 2);
    ASSERT_EQ(decode_span("'kind':'SPAN_KIND_CONSUMER','status':{'code':'STATUS_CODE_OK'}", &s), 0);
    ASSERT_EQ(s->kind, 5);
    ASSERT_EQ(s->status->code, 1);
    ASSERT_EQ(decode_span("'kind':'4'", &s), 0);
    ASSERT_EQ(s->kind, 4);
    /* proto3 enums are open: unknown numbers are kept for the model to judge. */
    ASSERT_EQ(decode_span("'kind':42", &s), 0);
    ASSERT_EQ(s->kind, 42);

    ASSERT_EQ(decode_span("'kind':'SPAN_KIND_BOGUS'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("spans[0].kind: unknown value \"SPAN_KIND_BOGUS\" for enum "
                        "opentelemetry.proto.trace.v1.Span.SpanKind"));
    ASSERT_EQ(decode_span("'kind':2147483648", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("kind: value out of range for enum"));
    ASSERT_EQ(decode_span("'kind':1.5", &s), SL_EDECODE);
    ASSERT_EQ(decode_span("'kind':{}", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("kind: expected an enum value as an integer, got an object"));

    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&METRICS_DESC,
                       "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'sum':{"
                       "'aggregationTemporality':'AGGREGATION_TEMPORALITY_CUMULATIVE'}}]}]}]}",
                       &m),
              0);
    const Opentelemetry__Proto__Metrics__V1__Sum *sum =
        ((metrics_req *)m)->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum;
    ASSERT_TRUE(sum->has_aggregation_temporality);
    ASSERT_EQ(sum->aggregation_temporality, 2);
    ASSERT_TRUE(!sum->has_is_monotonic);
}

static void test_bool(void) {
    const pb_any *v;
    ASSERT_EQ(decode_value("{'boolValue':true}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    ASSERT_TRUE(v->bool_value);
    ASSERT_EQ(decode_value("{'boolValue':false}", &v), 0);
    ASSERT_TRUE(!v->bool_value);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    ASSERT_EQ(decode_value("{'boolValue':'true'}", &v), SL_EDECODE);
    ASSERT_TRUE(err_has("boolValue: expected true or false, got a string"));
    ASSERT_EQ(decode_value("{'boolValue':1}", &v), SL_EDECODE);
}

static void test_strings(void) {
    const pb_span *s;
    ASSERT_EQ(decode_span("'name':'caf\\u00e9 \\\"q\\\" \\\\ \\n \\ud83d\\ude00'", &s), 0);
    ASSERT_STR_EQ(s->name, "caf\xc3\xa9 \"q\" \\ \n \xf0\x9f\x98\x80");
    ASSERT_EQ(decode_span("'name':''", &s), 0);
    ASSERT_STR_EQ(s->name, "");
    /* NUL cannot live in a C string field. */
    ASSERT_EQ(decode_span("'name':'a\\u0000b'", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON"));
    ASSERT_EQ(decode_span("'name':5", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, "
                        "got a number"));
    /* Invalid UTF-8 is refused by the JSON parser. */
    const char *bad_utf8 = "{\"x\":\"\xff\"}";
    ProtobufCMessage *m;
    ASSERT_EQ(decode(&TRACE_DESC, bad_utf8, strlen(bad_utf8), &m), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON"));
}

/* ---- structure ---------------------------------------------------------------- */

static void test_unknown_fields_ignored(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC,
                       "{'future':{'a':[1,2,{'b':null}]},'resourceSpans':[{'x':1,"
                       "'resource':{'attributes':[{'key':'k','value':{'stringValue':'v',"
                       "'newValue':{'deep':[[[]]]}},'extra':true}],'entityRefs':[{}]},"
                       "'scopeSpans':[{'scope':{'name':'n','unknown':'u'},'spans':[{"
                       "'traceId':'0102030405060708090a0b0c0d0e0f10','newField':'x',"
                       "'TraceId':'zz','spanid':5}]}]}],'zzz':'end'}",
                       &m),
              0);
    trace_req *r = (trace_req *)m;
    ASSERT_STR_EQ(r->resource_spans[0]->resource->attributes[0]->value->string_value, "v");
    ASSERT_STR_EQ(r->resource_spans[0]->scope_spans[0]->scope->name, "n");
    const pb_span *s = r->resource_spans[0]->scope_spans[0]->spans[0];
    ASSERT_TRUE(bytes_eq(s->trace_id, "0102030405060708090a0b0c0d0e0f10"));
    ASSERT_EQ(s->span_id.len, 0); /* "spanid" is not a spelling of span_id */
}

static void test_null_means_unset(void) {
    const pb_span *s;
    ASSERT_EQ(decode_span("'name':null,'traceId':null,'status':null,'attributes':null,"
                          "'kind':null,'startTimeUnixNano':null",
                          &s),
              0);
    ASSERT_STR_EQ(s->name, "");
    ASSERT_EQ(s->trace_id.len, 0);
    ASSERT_TRUE(s->status == NULL);
    ASSERT_EQ(s->n_attributes, 0);
    ASSERT_EQ(s->kind, 0);
    ASSERT_U64_EQ(s->start_time_unix_nano, 0);
    const pb_any *v;
    ASSERT_EQ(decode_value("{'stringValue':null}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    ASSERT_EQ(decode_value("null", &v), 0);
    ASSERT_TRUE(v == NULL);

    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'resourceSpans':null}", &m), 0);
    ASSERT_EQ(((trace_req *)m)->n_resource_spans, 0);
    ASSERT_EQ(decode_q(&METRICS_DESC,
                       "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':null,'histogram':"
                       "{'dataPoints':[{'sum':null,'min':0,'count':null}]}}]}]}]}",
                       &m),
              0);
    const pb_metric *mt = ((metrics_req *)m)->resource_metrics[0]->scope_metrics[0]->metrics[0];
    ASSERT_TRUE(mt->name == NULL); /* proto2: absent string is NULL */
    const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h = mt->histogram->data_points[0];
    ASSERT_TRUE(!h->has_sum);
    ASSERT_TRUE(!h->has_count);
    ASSERT_TRUE(h->has_min);
    ASSERT_DBL_EQ(h->min, 0);

    /* null is not a message, nor an array element. */
    ASSERT_EQ(decode_span("'attributes':[null]", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("spans[0].attributes[0]: null is not allowed as an array element"));
}

static void test_snake_case_keys(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC,
                       "{'resource_spans':[{'scope_spans':[{'spans':[{"
                       "'trace_id':'0102030405060708090a0b0c0d0e0f10','span_id':'0102030405060708',"
                       "'parent_span_id':'1112131415161718','start_time_unix_nano':'7',"
                       "'dropped_attributes_count':2,'attributes':[{'key':'a','value':"
                       "{'string_value':'s'}},{'key':'b','value':{'kvlist_value':{'values':[]}}}]"
                       "}]}],'schema_url':'u'}]}",
                       &m),
              0);
    const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = ((trace_req *)m)->resource_spans[0];
    ASSERT_STR_EQ(rs->schema_url, "u");
    const pb_span *s = rs->scope_spans[0]->spans[0];
    ASSERT_TRUE(bytes_eq(s->parent_span_id, "1112131415161718"));
    ASSERT_U64_EQ(s->start_time_unix_nano, 7);
    ASSERT_EQ(s->dropped_attributes_count, 2);
    ASSERT_STR_EQ(s->attributes[0]->value->string_value, "s");
    ASSERT_EQ(s->attributes[1]->value->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    ASSERT_EQ(s->attributes[1]->value->kvlist_value->n_values, 0);
}

static void test_oneofs(void) {
    const pb_any *v;
    ASSERT_EQ(decode_value("{'stringValue':'x'}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    ASSERT_EQ(decode_value("{'arrayValue':{'values':[{'intValue':1},{'arrayValue':{}}]}}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    ASSERT_EQ(v->array_value->n_values, 2);
    ASSERT_EQ(v->array_value->values[1]->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    ASSERT_EQ(v->array_value->values[1]->array_value->n_values, 0);
    /* Two members of one oneof: the last one wins (as with duplicate keys). */
    ASSERT_EQ(decode_value("{'stringValue':'x','intValue':'9'}", &v), 0);
    ASSERT_EQ(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ASSERT_EQ(v->int_value, 9);

    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&METRICS_DESC,
                       "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'summary':{'dataPoints':"
                       "[{'quantileValues':[{'quantile':0.5,'value':'NaN'}]}]}},{'gauge':{}}]}]}]}",
                       &m),
              0);
    const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        ((metrics_req *)m)->resource_metrics[0]->scope_metrics[0];
    ASSERT_EQ(sm->metrics[0]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY);
    const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *qv =
        sm->metrics[0]->summary->data_points[0]->quantile_values[0];
    ASSERT_TRUE(qv->has_quantile && qv->has_value);
    ASSERT_DBL_EQ(qv->quantile, 0.5);
    ASSERT_TRUE(isnan(qv->value));
    ASSERT_EQ(sm->metrics[1]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    ASSERT_EQ(sm->metrics[1]->gauge->n_data_points, 0);
}

static void test_wrong_types(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'resourceSpans':{}}", &m), SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resourceSpans: expected an array, got an object");
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'resourceSpans':[{'resource':[]}]}", &m), SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resourceSpans[0].resource: expected an object, got an array");
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'resourceSpans':[5]}", &m), SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resourceSpans[0]: expected an object, got a number");
    const pb_span *s;
    ASSERT_EQ(decode_span("'attributes':[{'key':'a','value':'x'}]", &s), SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: expected "
                         "an object, got a string");
    ASSERT_EQ(decode_span("'attributes':[{'key':7}]", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("attributes[0].key: expected a string, got a number"));
    ASSERT_EQ(decode_span("'events':[{'name':'e','attributes':{}}]", &s), SL_EDECODE);
    ASSERT_TRUE(err_has("spans[0].events[0].attributes: expected an array, got an object"));
    ASSERT_EQ(decode_q(&METRICS_DESC,
                       "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'histogram':{"
                       "'dataPoints':[{'bucketCounts':['1','x']}]}}]}]}]}",
                       &m),
              SL_EDECODE);
    ASSERT_TRUE(err_has("histogram.dataPoints[0].bucketCounts[1]: expected an integer (fixed64), "
                        "got \"x\""));
}

/* The path in an error names the exact element, several levels down. */
static void test_error_path(void) {
    ProtobufCMessage *m;
    ASSERT_EQ(decode_q(&TRACE_DESC,
                       "{'resourceSpans':[{},{'scopeSpans':[{'spans':[]},{'spans':[{},{},{},"
                       "{'traceId':'abc'}]}]}]}",
                       &m),
              SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resourceSpans[1].scopeSpans[1].spans[3].traceId: expected 32 hex "
                         "digits, got 3 characters");
    ASSERT_TRUE(m == NULL); /* out is written only on success */

    /* The key is reported as the client spelled it. */
    ASSERT_EQ(decode_q(&TRACE_DESC,
                       "{'resource_spans':[{'scope_spans':[{'spans':[{'span_id':1}]}]}]}", &m),
              SL_EDECODE);
    ASSERT_STR_EQ(g_err, "resource_spans[0].scope_spans[0].spans[0].span_id: expected a hex "
                         "string, got a number");
}

/* Builds an attribute value of depth nested arrayValues (single-quoted JSON). */
static const char *nested_value(int depth) {
    static char buf[1 << 14];
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{'arrayValue':{'values':[");
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{'intValue':1}");
    for (int i = 0; i < depth; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]}}");
    }
    return buf;
}

static void test_depth_limit(void) {
    const pb_any *v;
    /* A span attribute value starts at message depth 6 (request, resourceSpans,
     * scopeSpans, span, keyValue, anyValue); each array level adds 2. */
    ASSERT_EQ(decode_value(nested_value(29), &v), 0);
    ASSERT_EQ(v->array_value->values[0]->value_case,
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    ASSERT_EQ(decode_value(nested_value(30), &v), SL_EDECODE);
    ASSERT_TRUE(err_has("messages nested deeper than 64 levels"));
    ASSERT_TRUE(err_has("resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.arrayValue."
                        "values[0].arrayValue"));

    /* Far deeper than the decoder goes: jansson's own limit answers, no crash. */
    static char deep[20000];
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    ProtobufCMessage *m;
    ASSERT_EQ(decode(&TRACE_DESC, deep, sizeof(deep), &m), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON"));
    /* Deep unknown content is skipped without recursion. */
    char wrapped[2200];
    memcpy(wrapped, "{\"x\":", 5);
    memset(wrapped + 5, '[', 1000);
    memset(wrapped + 1005, ']', 1000);
    memcpy(wrapped + 2005, "}", 1);
    ASSERT_EQ(decode(&TRACE_DESC, wrapped, 2006, &m), 0);
}

static void test_duplicate_keys(void) {
    const pb_span *s;
    ASSERT_EQ(decode_span("'name':'first','name':'second'", &s), 0);
    ASSERT_STR_EQ(s->name, "second");
    /* Both spellings of one field: the later key wins. */
    ASSERT_EQ(decode_span("'spanId':'0102030405060708','span_id':'1112131415161718'", &s), 0);
    ASSERT_TRUE(bytes_eq(s->span_id, "1112131415161718"));
    ASSERT_EQ(decode_span("'attributes':[{'key':'a'}],'attributes':[{'key':'b'},{'key':'c'}]", &s),
              0);
    ASSERT_EQ(s->n_attributes, 2);
    ASSERT_STR_EQ(s->attributes[0]->key, "b");
}

static void test_bad_bodies(void) {
    ProtobufCMessage *m = NULL;
    ASSERT_EQ(decode(&TRACE_DESC, "", 0, &m), SL_EDECODE);
    ASSERT_TRUE(err_has("empty body"));
    ASSERT_EQ(decode(&TRACE_DESC, NULL, 0, &m), SL_EDECODE);
    ASSERT_EQ(decode(&TRACE_DESC, " \r\n\t ", 5, &m), SL_EDECODE);
    ASSERT_TRUE(err_has("empty body"));
    ASSERT_EQ(decode_q(&TRACE_DESC, "[]", &m), SL_EDECODE);
    ASSERT_STR_EQ(g_err, "the top-level JSON value must be an object, got an array");
    ASSERT_EQ(decode_q(&TRACE_DESC, "'x'", &m), SL_EDECODE);
    ASSERT_TRUE(err_has("must be an object, got a string"));
    ASSERT_EQ(decode_q(&TRACE_DESC, "1", &m), SL_EDECODE);
    ASSERT_EQ(decode_q(&TRACE_DESC, "null", &m), SL_EDECODE);
    ASSERT_TRUE(err_has("got null"));
    ASSERT_EQ(decode_q(&TRACE_DESC, "{", &m), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON at line 1"));
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'resourceSpans':[{'scopeSpans':[", &m), SL_EDECODE);
    ASSERT_TRUE(err_has("invalid JSON"));
    ASSERT_EQ(decode_q(&TRACE_DESC, "{} x", &m), SL_EDECODE);
    ASSERT_EQ(decode_q(&TRACE_DESC, "{}{}", &m), SL_EDECODE);
    ASSERT_EQ(decode_q(&TRACE_DESC, "{'a':1,}", &m), SL_EDECODE);
    ASSERT_EQ(decode(&TRACE_DESC, "{\"a\":\0}", 7, &m), SL_EDECODE);
    /* A truncated example. */
    size_t n = read_example("trace.json");
    ASSERT_EQ(decode(&TRACE_DESC, g_file, n / 2, &m), SL_EDECODE);
    ASSERT_TRUE(m == NULL);
    /* An empty object is an empty, valid request. */
    ASSERT_EQ(decode_q(&TRACE_DESC, " {} ", &m), 0);
    ASSERT_EQ(((trace_req *)m)->n_resource_spans, 0);
    ASSERT_STR_EQ(g_err, "");
}

static void test_arena_cap(void) {
    size_t n = read_example("logs.json");
    sl_arena small;
    char err[128];
    int rc = 0;
    ProtobufCMessage *m = NULL;
    /* Every cap below what the example needs fails cleanly with SL_ENOMEM. */
    for (size_t cap = 64; cap < 16384; cap += 64) {
        sl_arena_init(&small, cap);
        rc = col_json_decode(&LOGS_DESC, g_file, n, &small, &m, err, sizeof(err));
        sl_arena_free(&small);
        if (rc == 0) {
            break;
        }
        ASSERT_EQ(rc, SL_ENOMEM);
        ASSERT_TRUE(strstr(err, "out of memory") != NULL);
        ASSERT_TRUE(m == NULL);
    }
    ASSERT_EQ(rc, 0);
}

static void test_err_buffer(void) {
    ProtobufCMessage *m = NULL;
    /* No error buffer at all. */
    ASSERT_EQ(col_json_decode(&TRACE_DESC, "[]", 2, &g_arena, &m, NULL, 0), SL_EDECODE);
    ASSERT_EQ(col_json_decode(&TRACE_DESC, "{}", 2, &g_arena, &m, NULL, 99), 0);
    /* Tiny buffers are truncated but terminated. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    const char *j = q("{'resourceSpans':[{'scopeSpans':[{'spans':[{'traceId':'a'}]}]}]}");
    ASSERT_EQ(col_json_decode(&TRACE_DESC, j, strlen(j), &g_arena, &m, tiny, sizeof(tiny)),
              SL_EDECODE);
    ASSERT_STR_EQ(tiny, "resourc");
    char one[1] = {'x'};
    ASSERT_EQ(col_json_decode(&TRACE_DESC, j, strlen(j), &g_arena, &m, one, 1), SL_EDECODE);
    ASSERT_EQ(one[0], '\0');
}

/* Heap accounting for jansson, installed before its first allocation. */
static size_t g_heap_cur, g_heap_peak;

static void *counting_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (p == NULL) {
        return NULL;
    }
    /* What malloc really holds: the request rounded to 16 plus its header. */
    p[0] = (n + 15) / 16 * 16 + 16;
    g_heap_cur += p[0];
    if (g_heap_cur > g_heap_peak) {
        g_heap_peak = g_heap_cur;
    }
    return p + 2;
}

static void counting_free(void *q) {
    if (q != NULL) {
        size_t *p = (size_t *)q - 2;
        g_heap_cur -= p[0];
        free(p);
    }
}

/* Peak heap of parsing body with jansson. */
static size_t parse_peak(const char *body, size_t len) {
    json_error_t e;
    g_heap_cur = g_heap_peak = 0;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &e);
    json_decref(j);
    return g_heap_peak;
}

/* col_json_parse_cost bounds jansson's real use from above, for bodies real
 * and hostile, without overstating real ones wildly. */
static void test_parse_cost(void) {
    static const char *const files[] = {"trace.json", "logs.json", "metrics.json"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t n = read_example(files[i]);
        size_t peak = parse_peak(g_file, n), cost = col_json_parse_cost(g_file, n);
        if (cost < peak || cost > 4 * peak) {
            fprintf(stderr, "  %s: cost %zu, peak %zu\n", files[i], cost, peak);
        }
        ASSERT_TRUE(cost >= peak);
        ASSERT_TRUE(cost <= 4 * peak);
    }
    static const char *const units[] = {"{},",         "[],",    "0,",    "\"\",", "\"abcdefgh\",",
                                        "{\"a\":{}},", "[[0]],", "true,", "1.5e3,"};
    static char body[300000];
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t ul = strlen(units[u]), n = 1;
        body[0] = '[';
        while (n + ul < sizeof(body)) {
            memcpy(body + n, units[u], ul);
            n += ul;
        }
        body[n - 1] = ']';
        size_t peak = parse_peak(body, n), cost = col_json_parse_cost(body, n);
        if (cost < peak) {
            fprintf(stderr, "  [%s...]: cost %zu < peak %zu\n", units[u], cost, peak);
        }
        ASSERT_TRUE(peak > 0);
        ASSERT_TRUE(cost >= peak);
    }
    /* One object with many members (its hashtable keeps growing). */
    size_t n = 1;
    body[0] = '{';
    for (int i = 0; n < sizeof(body) - 32; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\"%x\":0,", i);
    }
    body[n - 1] = '}';
    ASSERT_TRUE(col_json_parse_cost(body, n) >= parse_peak(body, n));
    /* Deep nesting, and brackets inside strings that must not count. */
    memset(body, '[', 2000);
    memset(body + 2000, ']', 2000);
    ASSERT_TRUE(col_json_parse_cost(body, 4000) >= parse_peak(body, 4000));
    const char *quoted = "[\"{{{{[[[[\\\"{{{{\"]";
    ASSERT_TRUE(col_json_parse_cost(quoted, strlen(quoted)) < 400);
}

int main(void) {
    json_set_alloc_funcs(counting_malloc, counting_free);
    sl_arena_init(&g_arena, 64u << 20);
    RUN(test_example_trace);
    RUN(test_example_logs);
    RUN(test_example_metrics);
    RUN(test_roundtrip);
    RUN(test_roundtrip_values);
    RUN(test_hex_ids);
    RUN(test_hex_ids_logs_exemplars);
    RUN(test_base64_bytes);
    RUN(test_int64);
    RUN(test_uint64_and_32);
    RUN(test_double);
    RUN(test_enums);
    RUN(test_bool);
    RUN(test_strings);
    RUN(test_unknown_fields_ignored);
    RUN(test_null_means_unset);
    RUN(test_snake_case_keys);
    RUN(test_oneofs);
    RUN(test_wrong_types);
    RUN(test_error_path);
    RUN(test_depth_limit);
    RUN(test_duplicate_keys);
    RUN(test_bad_bodies);
    RUN(test_arena_cap);
    RUN(test_err_buffer);
    RUN(test_parse_cost);
    sl_arena_free(&g_arena);
    return SL_TEST_RESULT();
}
