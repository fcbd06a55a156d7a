/*
 * Logs and metrics: log records (severity, body of any type, attributes,
 * correlation with the current span, limits) and metric collection
 * (counters, up-down counters, histograms, gauges, observable callbacks,
 * cumulative and delta temporality, bound series, the cardinality limit),
 * each decoded back with the generated protobuf-c code and every field
 * checked. Nothing is exported: the readers are driven by hand.
 */
#include "sl_test.h"

#include "../src/sdk_int.h"

#include <jansson.h>
#include <math.h>
#include <opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h>
#include <opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue PbKV;
typedef Opentelemetry__Proto__Logs__V1__LogRecord PbLog;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest PbLogsReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest PbMetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__Metric PbMetric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint PbNumber;

static sl_provider *make_provider(sl_temporality temp, uint32_t card_limit) {
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.endpoint = "http://127.0.0.1:9";
    o.service_name = "unit";
    o.blrp.schedule_delay_ms = 3600 * 1000;
    o.metric_export_interval_ms = 3600 * 1000;
    o.metric_temporality = temp;
    o.metric_cardinality_limit = card_limit;
    o.log_attribute_count = 2;
    sl_provider *p = NULL;
    return sl_provider_create(&o, &p) == 0 ? p : NULL;
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

/* ---- logs ------------------------------------------------------------------------ */

/* Takes what the log processor queued (its worker sleeps for an hour). */
static size_t take_logs(sl_provider *p, void **items, size_t max) {
    return ot_batch_take(p->blrp, items, max);
}

static void test_logs_encode(void) {
    sl_context_reset();
    sl_provider *p = make_provider(SL_TEMPORALITY_CUMULATIVE, 2000);
    ASSERT_TRUE(p != NULL);
    sl_logger *lg;
    ASSERT_EQ(sl_provider_logger(p, "app.log", "2.0", &lg), 0);
    sl_span_context ctx;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ASSERT_EQ(sl_traceparent_parse(tp, strlen(tp), &ctx), 0);
    ASSERT_EQ(sl_context_push(&ctx), 0);
    sl_kv attrs[3] = {SL_KV_STR("user.id", "u1"), SL_KV_INT("attempt", 2),
                      SL_KV_BOOL("dropped", true)};
    ASSERT_EQ(sl_logger_emit(lg, SL_SEVERITY_WARN, "payment declined", attrs, 3), SL_OTEL_ELIMIT);
    sl_context_pop();
    sl_kv body_kv[1] = {SL_KV_STR("event", "login")};
    sl_any body = {.type = SL_ANY_KVLIST, .len = 1, .v.kvlist = body_kv};
    sl_log_options o;
    sl_log_options_init(&o);
    o.severity = 18;
    o.severity_text = "ERROR2";
    o.body = &body;
    o.ts_unix_nano = 42;
    ASSERT_EQ(sl_logger_emit_ex(lg, &o), 0);

    void *items[4];
    size_t n = take_logs(p, items, 4);
    ASSERT_EQ(n, 2);
    ot_buf b = {0};
    ot_enc e;
    ot_enc_init(&e, &b, false);
    ot_log_ops.encode(p, items, n, &e);
    PbLogsReq *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
        NULL, b.len, b.p);
    b.len = 0;
    ot_enc_init(&e, &b, true);
    ot_log_ops.encode(p, items, n, &e);
    ot_enc_finish(&e);
    json_t *doc = json_loadb((const char *)b.p, b.len, 0, NULL);
    ot_log_ops.release(p, items, n);
    ot_buf_free(&b);
    finish_provider(p);
    ASSERT_TRUE(req != NULL);
    ASSERT_TRUE(doc != NULL);
    int before = sl_test_failures;
    do {
        ASSERT_EQ(req->n_resource_logs, 1);
        const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = req->resource_logs[0]->scope_logs[0];
        ASSERT_STR_EQ(sl->scope->name, "app.log");
        ASSERT_STR_EQ(sl->scope->version, "2.0");
        ASSERT_EQ(sl->n_log_records, 2);
        const PbLog *w = NULL, *er = NULL;
        for (size_t i = 0; i < 2; i++) {
            if (sl->log_records[i]->severity_number == 13) {
                w = sl->log_records[i];
            } else {
                er = sl->log_records[i];
            }
        }
        ASSERT_TRUE(w != NULL && er != NULL);
        ASSERT_STR_EQ(w->severity_text, "WARN");
        ASSERT_EQ(w->body->value_case, 1);
        ASSERT_STR_EQ(w->body->string_value, "payment declined");
        ASSERT_EQ(w->n_attributes, 2);
        ASSERT_EQ(w->dropped_attributes_count, 1);
        ASSERT_TRUE(find_kv(w->attributes, w->n_attributes, "user.id") != NULL);
        ASSERT_EQ(w->trace_id.len, 16);
        ASSERT_TRUE(memcmp(w->trace_id.data, ctx.trace_id, 16) == 0);
        ASSERT_TRUE(memcmp(w->span_id.data, ctx.span_id, 8) == 0);
        ASSERT_EQ(w->flags, 1);
        ASSERT_U64_EQ(w->time_unix_nano, 0);
        ASSERT_TRUE(w->observed_time_unix_nano > 0);
        ASSERT_EQ(er->severity_number, 18);
        ASSERT_STR_EQ(er->severity_text, "ERROR2");
        ASSERT_U64_EQ(er->time_unix_nano, 42);
        ASSERT_EQ(er->body->value_case, 6);
        ASSERT_STR_EQ(er->body->kvlist_value->values[0]->key, "event");
        ASSERT_EQ(er->trace_id.len, 0); /* no current span: no correlation */
        json_t *recs = json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceLogs"), 0),
                                           "scopeLogs"),
                           0),
            "logRecords");
        ASSERT_EQ(json_array_size(recs), 2);
        int found = 0;
        for (size_t i = 0; i < 2; i++) {
            json_t *r = json_array_get(recs, i);
            if (json_integer_value(json_object_get(r, "severityNumber")) == 13) {
                ASSERT_STR_EQ(json_string_value(json_object_get(r, "traceId")),
                              "0af7651916cd43dd8448eb211c80319c");
                ASSERT_STR_EQ(
                    json_string_value(json_object_get(json_object_get(r, "body"), "stringValue")),
                    "payment declined");
                found++;
            }
        }
        ASSERT_EQ(found, 1);
    } while (0);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
                                                                                          NULL);
    json_decref(doc);
    ASSERT_EQ(sl_test_failures, before);
}

/* ---- metrics ----------------------------------------------------------------------- */

static PbMetricsReq *collect(sl_provider *p) {
    const uint8_t *body;
    size_t len;
    ot_metrics_collect(p->metrics, false, &body, &len);
    return opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
        NULL, len, body);
}

static const PbMetric *find_metric(const PbMetricsReq *req, const char *name) {
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                if (strcmp(rm->scope_metrics[j]->metrics[k]->name, name) == 0) {
                    return rm->scope_metrics[j]->metrics[k];
                }
            }
        }
    }
    return NULL;
}

/* The data point whose attribute key has string value val (or the only one). */
static const PbNumber *find_point(const PbMetric *m, const char *key, const char *val) {
    size_t n = m->data_case == 7 ? m->sum->n_data_points : m->gauge->n_data_points;
    PbNumber **pts = m->data_case == 7 ? m->sum->data_points : m->gauge->data_points;
    for (size_t i = 0; i < n; i++) {
        const PbKV *kv = key ? find_kv(pts[i]->attributes, pts[i]->n_attributes, key) : NULL;
        if (key == NULL || (kv && strcmp(kv->value->string_value, val) == 0)) {
            return pts[i];
        }
    }
    return NULL;
}

static void observe_cb(sl_observer *obs, void *ud) {
    int *calls = ud;
    (*calls)++;
    sl_kv a = SL_KV_STR("queue", "jobs");
    sl_observer_observe_int(obs, 10 * *calls, &a, 1);
}

static void test_metrics_cumulative(void) {
    sl_provider *p = make_provider(SL_TEMPORALITY_CUMULATIVE, 2000);
    ASSERT_TRUE(p != NULL);
    sl_meter *m;
    ASSERT_EQ(sl_provider_meter(p, "app.metrics", "1.0", &m), 0);
    sl_instrument *req_count, *latency, *inflight, *temp, *queue;
    ASSERT_EQ(sl_meter_counter(m, "http.server.requests", "{request}", "Requests", &req_count), 0);
    sl_instrument *again;
    ASSERT_EQ(sl_meter_counter(m, "HTTP.server.requests", NULL, NULL, &again), 0);
    ASSERT_TRUE(again == req_count); /* names are case-insensitive */
    ASSERT_EQ(sl_meter_histogram(m, "http.server.requests", NULL, NULL, &again), SL_OTEL_EINVAL);
    ASSERT_EQ(sl_meter_counter(m, "9bad", NULL, NULL, &again), SL_OTEL_EINVAL);
    double bounds[3] = {10, 100, 1000};
    sl_instrument_options io;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_HISTOGRAM;
    io.name = "http.server.duration";
    io.unit = "ms";
    io.buckets = bounds;
    io.bucket_count = 3;
    ASSERT_EQ(sl_meter_create(m, &io, &latency), 0);
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_UPDOWN_COUNTER;
    io.name = "http.server.active";
    io.is_int = true;
    ASSERT_EQ(sl_meter_create(m, &io, &inflight), 0);
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_GAUGE;
    io.name = "room.temperature";
    ASSERT_EQ(sl_meter_create(m, &io, &temp), 0);
    int calls = 0;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_OBSERVABLE_UPDOWN_COUNTER;
    io.name = "queue.depth";
    io.is_int = true;
    io.callback = observe_cb;
    io.callback_userdata = &calls;
    ASSERT_EQ(sl_meter_create(m, &io, &queue), 0);

    sl_kv get[2] = {SL_KV_STR("method", "GET"), SL_KV_INT("code", 200)};
    sl_kv get_rev[2] = {SL_KV_INT("code", 200), SL_KV_STR("method", "GET")};
    sl_kv post[1] = {SL_KV_STR("method", "POST")};
    ASSERT_EQ(sl_instrument_add_int(req_count, 3, get, 2), 0);
    ASSERT_EQ(sl_instrument_add_int(req_count, 4, get_rev, 2), 0); /* same series */
    ASSERT_EQ(sl_instrument_add_int(req_count, -1, get, 2), SL_OTEL_EINVAL);
    sl_series *bound;
    ASSERT_EQ(sl_instrument_bind(req_count, post, 1, &bound), 0);
    ASSERT_EQ(sl_series_add_int(bound, 5), 0);
    ASSERT_EQ(sl_series_add(bound, 1.4), 0); /* rounded for an integer counter */
    ASSERT_EQ(sl_instrument_record(latency, 5, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_record(latency, 10, NULL, 0), 0); /* bounds are inclusive */
    ASSERT_EQ(sl_instrument_record(latency, 50, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_record(latency, 5000, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_record(latency, NAN, NULL, 0), SL_OTEL_EINVAL);
    ASSERT_EQ(sl_instrument_add_int(inflight, 3, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_add_int(inflight, -5, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_record(temp, 21.5, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_record(temp, 22.5, NULL, 0), 0);
    ASSERT_EQ(sl_instrument_add(temp, 1, NULL, 0), SL_OTEL_EINVAL);

    PbMetricsReq *r1 = collect(p);
    ASSERT_TRUE(r1 != NULL);
    int before = sl_test_failures;
    do {
        const PbMetric *c = find_metric(r1, "http.server.requests");
        ASSERT_TRUE(c != NULL);
        ASSERT_STR_EQ(c->unit, "{request}");
        ASSERT_STR_EQ(c->description, "Requests");
        ASSERT_EQ(c->data_case, 7);
        ASSERT_EQ(c->sum->aggregation_temporality, 2);
        ASSERT_TRUE(c->sum->is_monotonic);
        ASSERT_EQ(c->sum->n_data_points, 2);
        const PbNumber *pg = find_point(c, "method", "GET");
        ASSERT_TRUE(pg != NULL);
        ASSERT_EQ(pg->value_case, 6);
        ASSERT_EQ(pg->as_int, 7);
        ASSERT_EQ(pg->n_attributes, 2);
        ASSERT_STR_EQ(pg->attributes[0]->key, "code"); /* sorted */
        ASSERT_TRUE(pg->start_time_unix_nano > 0 && pg->time_unix_nano >= pg->start_time_unix_nano);
        const PbNumber *pp = find_point(c, "method", "POST");
        ASSERT_TRUE(pp != NULL);
        ASSERT_EQ(pp->as_int, 6);
        const PbMetric *h = find_metric(r1, "http.server.duration");
        ASSERT_TRUE(h != NULL && h->data_case == 9);
        ASSERT_EQ(h->histogram->aggregation_temporality, 2);
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp =
            h->histogram->data_points[0];
        ASSERT_U64_EQ(hp->count, 4);
        ASSERT_DBL_EQ(hp->sum, 5065);
        ASSERT_EQ(hp->n_bucket_counts, 4);
        ASSERT_U64_EQ(hp->bucket_counts[0], 2);
        ASSERT_U64_EQ(hp->bucket_counts[1], 1);
        ASSERT_U64_EQ(hp->bucket_counts[2], 0);
        ASSERT_U64_EQ(hp->bucket_counts[3], 1);
        ASSERT_EQ(hp->n_explicit_bounds, 3);
        ASSERT_DBL_EQ(hp->explicit_bounds[2], 1000);
        ASSERT_DBL_EQ(hp->min, 5);
        ASSERT_DBL_EQ(hp->max, 5000);
        const PbMetric *u = find_metric(r1, "http.server.active");
        ASSERT_TRUE(u != NULL && u->data_case == 7);
        ASSERT_TRUE(!u->sum->is_monotonic);
        ASSERT_EQ(find_point(u, NULL, NULL)->as_int, -2);
        const PbMetric *g = find_metric(r1, "room.temperature");
        ASSERT_TRUE(g != NULL && g->data_case == 5);
        ASSERT_EQ(find_point(g, NULL, NULL)->value_case, 4);
        ASSERT_DBL_EQ(find_point(g, NULL, NULL)->as_double, 22.5);
        const PbMetric *q = find_metric(r1, "queue.depth");
        ASSERT_TRUE(q != NULL);
        ASSERT_EQ(find_point(q, "queue", "jobs")->as_int, 10);
    } while (0);
    ASSERT_EQ(sl_test_failures, before);

    /* Cumulative: the next collection repeats the totals, plus new data. */
    ASSERT_EQ(sl_series_add_int(bound, 1), 0);
    PbMetricsReq *r2 = collect(p);
    ASSERT_TRUE(r2 != NULL);
    const PbMetric *c2 = find_metric(r2, "http.server.requests");
    ASSERT_EQ(find_point(c2, "method", "GET")->as_int, 7);
    ASSERT_EQ(find_point(c2, "method", "POST")->as_int, 7);
    ASSERT_EQ(find_point(find_metric(r2, "queue.depth"), "queue", "jobs")->as_int, 20);
    ASSERT_EQ(calls, 2);
    ASSERT_U64_EQ(
        find_point(c2, "method", "GET")->start_time_unix_nano,
        find_point(find_metric(r1, "http.server.requests"), "method", "GET")->start_time_unix_nano);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r1, NULL);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r2, NULL);
    finish_provider(p);
}

static void test_metrics_delta_and_overflow(void) {
    sl_provider *p = make_provider(SL_TEMPORALITY_DELTA, 3);
    ASSERT_TRUE(p != NULL);
    sl_meter *m;
    ASSERT_EQ(sl_provider_meter(p, "app.metrics", NULL, &m), 0);
    sl_instrument_options io;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_COUNTER;
    io.name = "bytes.sent";
    sl_instrument *c;
    ASSERT_EQ(sl_meter_create(m, &io, &c), 0);
    int calls = 0;
    sl_instrument *obs;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_OBSERVABLE_COUNTER;
    io.name = "cpu.time";
    io.is_int = true;
    io.callback = observe_cb;
    io.callback_userdata = &calls;
    ASSERT_EQ(sl_meter_create(m, &io, &obs), 0);
    sl_kv a = SL_KV_STR("peer", "a"), b = SL_KV_STR("peer", "b"), x = SL_KV_STR("peer", "x");
    ASSERT_EQ(sl_instrument_add(c, 1.5, &a, 1), 0);
    ASSERT_EQ(sl_instrument_add(c, 2.0, &b, 1), 0);
    ASSERT_EQ(sl_instrument_add(c, 4.0, &x, 1), 0); /* past the limit of 3 (2 + overflow) */
    PbMetricsReq *r1 = collect(p);
    ASSERT_TRUE(r1 != NULL);
    const PbMetric *m1 = find_metric(r1, "bytes.sent");
    ASSERT_TRUE(m1 != NULL);
    ASSERT_EQ(m1->sum->aggregation_temporality, 1);
    ASSERT_EQ(m1->sum->n_data_points, 3);
    ASSERT_DBL_EQ(find_point(m1, "peer", "a")->as_double, 1.5);
    const PbNumber *ov = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (find_kv(m1->sum->data_points[i]->attributes, m1->sum->data_points[i]->n_attributes,
                    "otel.metric.overflow") != NULL) {
            ov = m1->sum->data_points[i];
        }
    }
    ASSERT_TRUE(ov != NULL);
    ASSERT_DBL_EQ(ov->as_double, 4.0);
    ASSERT_EQ(find_point(find_metric(r1, "cpu.time"), "queue", "jobs")->as_int, 10);
    uint64_t t1 = find_point(m1, "peer", "a")->time_unix_nano;

    /* Delta: only what changed since, starting where the last point ended;
     * an observable counter reports the difference of its totals. */
    ASSERT_EQ(sl_instrument_add(c, 0.5, &a, 1), 0);
    PbMetricsReq *r2 = collect(p);
    ASSERT_TRUE(r2 != NULL);
    const PbMetric *m2 = find_metric(r2, "bytes.sent");
    ASSERT_TRUE(m2 != NULL);
    ASSERT_EQ(m2->sum->n_data_points, 1);
    ASSERT_DBL_EQ(find_point(m2, "peer", "a")->as_double, 0.5);
    ASSERT_U64_EQ(find_point(m2, "peer", "a")->start_time_unix_nano, t1);
    ASSERT_EQ(find_point(find_metric(r2, "cpu.time"), "queue", "jobs")->as_int, 10);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r1, NULL);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r2, NULL);
    finish_provider(p);
}

static void test_env(void) {
    setenv("OTEL_SERVICE_NAME", "env-svc", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=a%20b, bad", 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.5", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "abc", 1); /* malformed: reported, default kept */
    setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "7", 1);
    setenv("OTEL_METRIC_EXPORT_INTERVAL", "1500", 1);
    setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta", 1);
    sl_provider_options o;
    sl_provider_options_init(&o);
    ASSERT_EQ(sl_provider_options_from_env(&o), SL_OTEL_EPARSE);
    ASSERT_STR_EQ(o.service_name, "env-svc");
    ASSERT_STR_EQ(o.endpoint, "http://collector:4318/");
    ASSERT_STR_EQ(o.traces.endpoint, "http://traces:9999/custom");
    ASSERT_EQ(o.compression, 1);
    ASSERT_EQ(o.logs.protocol, SL_PROTOCOL_HTTP_JSON);
    ASSERT_EQ(o.sampler, SL_SAMPLER_PARENTBASED_TRACEIDRATIO);
    ASSERT_DBL_EQ(o.sampler_arg, 0.5);
    ASSERT_EQ(o.bsp.max_queue_size, 100);
    ASSERT_EQ(o.bsp.schedule_delay_ms, 5000);
    ASSERT_EQ(o.span_limits.attribute_count, 7);
    ASSERT_EQ(o.metric_export_interval_ms, 1500);
    ASSERT_EQ(o.metric_temporality, SL_TEMPORALITY_DELTA);
    setenv("OTEL_SDK_DISABLED", "true", 1);
    ASSERT_EQ(sl_provider_options_from_env(&o), SL_OTEL_EPARSE);
    ASSERT_TRUE(o.disabled);
    const char *vars[] = {"OTEL_SERVICE_NAME",
                          "OTEL_RESOURCE_ATTRIBUTES",
                          "OTEL_EXPORTER_OTLP_ENDPOINT",
                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                          "OTEL_EXPORTER_OTLP_COMPRESSION",
                          "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
                          "OTEL_TRACES_SAMPLER",
                          "OTEL_TRACES_SAMPLER_ARG",
                          "OTEL_BSP_MAX_QUEUE_SIZE",
                          "OTEL_BSP_SCHEDULE_DELAY",
                          "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                          "OTEL_METRIC_EXPORT_INTERVAL",
                          "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                          "OTEL_SDK_DISABLED"};

    /* The resource: OTEL_RESOURCE_ATTRIBUTES (percent-decoded), then the
     * service name over it; a disabled provider records nothing. */
    sl_provider *p = NULL;
    ASSERT_EQ(sl_provider_create(&o, &p), 0);
    bool env_ok = false, team_ok = false, svc_ok = false;
    for (uint32_t i = 0; i < p->resource.nnodes; i += p->resource.nodes[i].desc + 1) {
        const ot_node *n = &p->resource.nodes[i];
        if (n->type == OT_NODE_DELETED) {
            continue;
        }
        const char *k = ot_rec_ptr(&p->resource, n->key_off);
        const char *v = ot_rec_ptr(&p->resource, n->u.s.off);
        if (n->key_len == 22 && memcmp(k, "deployment.environment", 22) == 0) {
            env_ok = n->u.s.len == 4 && memcmp(v, "prod", 4) == 0;
        } else if (n->key_len == 4 && memcmp(k, "team", 4) == 0) {
            team_ok = n->u.s.len == 3 && memcmp(v, "a b", 3) == 0;
        } else if (n->key_len == 12 && memcmp(k, "service.name", 12) == 0) {
            svc_ok = n->u.s.len == 7 && memcmp(v, "env-svc", 7) == 0;
        }
    }
    sl_tracer *t;
    ASSERT_EQ(sl_provider_tracer(p, "x", NULL, &t), 0);
    sl_span *s;
    ASSERT_EQ(sl_span_start(t, "x", NULL, &s), SL_OTEL_EDISABLED);
    ASSERT_TRUE(!sl_span_is_recording(s));
    sl_span_end(s, 0);
    sl_meter *m;
    ASSERT_EQ(sl_provider_meter(p, "x", NULL, &m), SL_OTEL_EDISABLED);
    finish_provider(p);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
    ASSERT_TRUE(env_ok);
    ASSERT_TRUE(team_ok);
    ASSERT_TRUE(svc_ok);
}

int main(void) {
    RUN(test_logs_encode);
    RUN(test_metrics_cumulative);
    RUN(test_metrics_delta_and_overflow);
    RUN(test_env);
    return SL_TEST_RESULT();
}
