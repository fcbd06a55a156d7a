/*
 * OTLP metrics -> Prometheus series (collector/decode_metrics.c) and the
 * derived RED / log-count metrics (collector/derive_metrics.c): name, unit
 * and label translation, float rendering, every metric type, partial success
 * for invalid points, stale markers, exemplars, the specification's example
 * payload over OTLP/JSON.
 *
 * With SL_WRITE_CORPUS=<dir> set it also writes its protobuf requests there
 * (the seed corpus of fuzz_otlp_metrics).
 */
#include "sl_test.h"

#include "decode_metrics.h"
#include "derive_metrics.h"
#include "otlp_json.h"
#include "sl_err.h"

#include "../../storage/metrics_int.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#define REQ_DESC                                                                                   \
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;

static sl_arena g_a;

/* protobuf-c fields are char *: string literals go in through this. */
static char *mut(const char *s) {
    return (char *)(uintptr_t)s;
}

static void test_names(void) {
    sl_arena_init(&g_a, 0);
    struct {
        const char *name, *unit;
        bool gauge, counter;
        const char *want;
    } cases[] = {
        /* Prometheus 2.x's OTLP receiver (normalizeName) on each of these. */
        {"http.server.duration", "ms", false, false, "http_server_duration_milliseconds"},
        {"system.cpu.utilization", "1", true, false, "system_cpu_utilization_ratio"},
        {"requests", "{requests}", false, true, "requests_total"},
        {"bytes_sent", "By", false, true, "bytes_sent_total"}, /* unit word already there */
        {"sent_bytes", "By", false, true, "sent_bytes_total"},
        {"throughput", "By/s", true, false, "throughput_bytes_per_second"},
        {"rate", "{packets}/s", true, false, "rate_per_second"},
        {"speed", "m/m", true, false, "speed_meters_per_minute"}, /* per m is a minute */
        {"2xx..count", "", true, false, "_2xx_count"},
        {"foo_total", "", false, true, "foo_total"},
        {"total_foo", "", false, true, "foo_total"},       /* total moves to the end */
        {"up.ratio.x", "1", true, false, "up_x_ratio"},    /* ratio too */
        {"queue.ratio", "1", false, false, "queue_ratio"}, /* not a gauge: untouched */
        {"used", "1", false, false, "used"},
        {"job:latency:p99", "s", true, false, "job_latency_p99_seconds"},
        {"__odd__name__", "", true, false, "odd_name"},
        {"mem", "MiBy", true, false, "mem_mebibytes"},
        {"odd", "furlongs", true, false, "odd_furlongs"},
        {"odd", "kilo-furlongs", true, false, "odd_kilo_furlongs"},
        {"temp", "Cel", true, false, "temp_celsius"},
        {"latency.seconds", "s", false, false, "latency_seconds"},
        {"x", " s ", false, false, "x_seconds"},
    };
    /* Twice: the second pass answers from the thread's memo, which keys on
     * the flags too ("queue.ratio" and "up.ratio.x" differ by them), and
     * each answer is the caller's own copy. */
    const char *first[sizeof(cases) / sizeof(cases[0])];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            sl_str got =
                col_prom_metric_name(&g_a, sl_str_c(cases[i].name), sl_str_c(cases[i].unit),
                                     cases[i].gauge, cases[i].counter);
            ASSERT_SLSTR_EQ(got, cases[i].want);
            if (pass == 0) {
                first[i] = got.ptr;
            } else {
                ASSERT_TRUE(got.ptr != first[i]);
            }
        }
    }
    ASSERT_SLSTR_EQ(
        col_prom_metric_name(&g_a, SL_STR_LIT("queue.ratio"), SL_STR_LIT("1"), true, false),
        "queue_ratio");
    ASSERT_SLSTR_EQ(col_prom_unit(&g_a, SL_STR_LIT("By/s")), "bytes_per_second");
    ASSERT_SLSTR_EQ(col_prom_unit(&g_a, SL_STR_LIT("By/s")), "bytes_per_second");
    /* Too long for the memo's entries: translated each time all the same. */
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[100] = '.';
    for (int pass = 0; pass < 2; pass++) {
        sl_str got = col_prom_metric_name(&g_a, sl_str_c(longname), SL_STR_LIT("s"), false, true);
        ASSERT_EQ(got.len, sizeof(longname) - 1 + strlen("_seconds_total"));
        ASSERT_TRUE(got.ptr[100] == '_' && strcmp(got.ptr + got.len - 14, "_seconds_total") == 0);
    }
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("http.method")), "http_method");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("0abc")), "key_0abc");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("_x")), "key_x");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("__x")), "__x");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("a-b/c")), "a_b_c");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT(".x")), "key_x");
    ASSERT_SLSTR_EQ(col_prom_label_name(&g_a, SL_STR_LIT("a..b")), "a__b"); /* not collapsed */
    sl_arena_free(&g_a);
}

static void test_floats(void) {
    struct {
        double v;
        const char *want;
    } cases[] = {{0.5, "0.5"},
                 {1, "1"},
                 {1e6, "1000000"}, /* Go's 'f': Prometheus's le and quantile labels */
                 {100000, "100000"},
                 {0.0001, "0.0001"},
                 {0.00001, "0.00001"},
                 {1e21, "1000000000000000000000"},
                 {-0.0, "-0"},
                 {1.5e-7, "0.00000015"},
                 {INFINITY, "+Inf"},
                 {-INFINITY, "-Inf"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {-2.5, "-2.5"},
                 {0, "0"},
                 {123456, "123456"},
                 {1234567, "1234567"},
                 {1234567.125, "1234567.125"},
                 {0.025, "0.025"}};
    char buf[40];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = col_prom_float(cases[i].v, buf);
        buf[n] = '\0';
        ASSERT_STR_EQ(buf, cases[i].want);
    }
}

/* Finds a series by its rendering "name{a=b,...}" (labels other than
 * __name__, in order). */
static const stg_mseries *find(const col_mbatch *b, const char *want) {
    for (size_t i = 0; i < b->nseries; i++) {
        char buf[512];
        size_t n = 0;
        const stg_mseries *s = &b->series[i];
        for (size_t j = 0; j < s->nlabels; j++) {
            if (sl_str_eqc(s->labels[j].name, "__name__")) {
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%.*s{",
                                      (int)s->labels[j].value.len, s->labels[j].value.ptr);
            }
        }
        for (size_t j = 0; j < s->nlabels; j++) {
            if (!sl_str_eqc(s->labels[j].name, "__name__")) {
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%.*s=%.*s,",
                                      (int)s->labels[j].name.len, s->labels[j].name.ptr,
                                      (int)s->labels[j].value.len, s->labels[j].value.ptr);
            }
        }
        if (n > 0 && buf[n - 1] == ',') {
            n--;
        }
        snprintf(buf + n, sizeof(buf) - n, "}");
        if (strcmp(buf, want) == 0) {
            return s;
        }
    }
    return NULL;
}

static void write_corpus(const req_t *req, const char *name) {
    const char *dir = getenv("SL_WRITE_CORPUS");
    if (dir == NULL) {
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *buf = malloc(len ? len : 1);
    protobuf_c_message_pack(&req->base, buf);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    free(buf);
}

static void test_spec_example_json(void) {
    char path[512];
    snprintf(path, sizeof(path), "%s/metrics.json", SL_TEST_OTLP_DIR);
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    char *text = malloc(1 << 20);
    size_t len = fread(text, 1, 1 << 20, f);
    fclose(f);
    sl_arena_init(&g_a, 0);
    ProtobufCMessage *msg = NULL;
    char err[256];
    ASSERT_EQ(col_json_decode(&REQ_DESC, text, len, &g_a, &msg, err, sizeof(err)), 0);
    col_mbatch b = {0};
    ASSERT_EQ(col_metrics_to_series((const req_t *)msg, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.rejected, 0);
    ASSERT_EQ(b.points, 4);
    ASSERT_TRUE(find(&b, "my_counter_total{job=my.service,my_counter_attr=some value,"
                         "service_name=my.service}") != NULL);
    ASSERT_TRUE(find(&b, "my_gauge_ratio{job=my.service,my_gauge_attr=some value,"
                         "service_name=my.service}") != NULL);
    const stg_mseries *inf = find(&b, "my_histogram_bucket{job=my.service,le=+Inf,"
                                      "my_histogram_attr=some value,service_name=my.service}");
    ASSERT_TRUE(inf != NULL);
    ASSERT_DBL_EQ(inf->samples[0].v, 2);
    ASSERT_EQ(b.nmeta, 4);
    write_corpus((const req_t *)msg, "spec-example.pb");
    free(text);
    sl_arena_free(&g_a);
}

/* --- hand-built requests ---------------------------------------------------------- */

typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

static pb_kv *kv(const char *k, const char *v) {
    pb_kv *x = sl_arena_calloc(&g_a, 1, sizeof(*x));
    pb_any *a = sl_arena_calloc(&g_a, 1, sizeof(*a));
    opentelemetry__proto__common__v1__key_value__init(x);
    opentelemetry__proto__common__v1__any_value__init(a);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    a->string_value = (char *)(uintptr_t)v;
    x->key = (char *)(uintptr_t)k;
    x->value = a;
    return x;
}

/* One resource (service.name=api, service.instance.id=i-1, host.name=h1),
 * one scope, the given metrics. */
static req_t *mkreq(pb_metric **metrics, size_t n) {
    req_t *r = sl_arena_calloc(&g_a, 1, sizeof(*r));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = sl_arena_calloc(&g_a, 1, sizeof(*rm));
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    Opentelemetry__Proto__Resource__V1__Resource *res = sl_arena_calloc(&g_a, 1, sizeof(*res));
    opentelemetry__proto__resource__v1__resource__init(res);
    pb_kv **ra = sl_arena_calloc(&g_a, 3, sizeof(*ra));
    ra[0] = kv("service.name", "api");
    ra[1] = kv("service.instance.id", "i-1");
    ra[2] = kv("host.name", "h1");
    res->attributes = ra;
    res->n_attributes = 3;
    rm->resource = res;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = sl_arena_calloc(&g_a, 1, sizeof(*sm));
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    sm->metrics = metrics;
    sm->n_metrics = n;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics **sms = sl_arena_calloc(&g_a, 1, sizeof(*sms));
    sms[0] = sm;
    rm->scope_metrics = sms;
    rm->n_scope_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics **rms =
        sl_arena_calloc(&g_a, 1, sizeof(*rms));
    rms[0] = rm;
    r->resource_metrics = rms;
    r->n_resource_metrics = 1;
    return r;
}

static Opentelemetry__Proto__Metrics__V1__NumberDataPoint *num(uint64_t t, double v,
                                                               uint32_t flags) {
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = sl_arena_calloc(&g_a, 1, sizeof(*p));
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->time_unix_nano = t;
    p->has_time_unix_nano = 1;
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->flags = flags;
    p->has_flags = flags != 0;
    return p;
}

static pb_metric *sum_metric(const char *name, int temporality, bool monotonic,
                             Opentelemetry__Proto__Metrics__V1__NumberDataPoint **pts, size_t n) {
    pb_metric *m = sl_arena_calloc(&g_a, 1, sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)(uintptr_t)name;
    m->unit = mut("s");
    Opentelemetry__Proto__Metrics__V1__Sum *s = sl_arena_calloc(&g_a, 1, sizeof(*s));
    opentelemetry__proto__metrics__v1__sum__init(s);
    s->aggregation_temporality = temporality;
    s->has_aggregation_temporality = 1;
    s->is_monotonic = monotonic;
    s->has_is_monotonic = 1;
    s->data_points = pts;
    s->n_data_points = n;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    return m;
}

static pb_kv *kv_int(const char *k, int64_t v) {
    pb_kv *x = kv(k, "");
    x->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    x->value->int_value = v;
    return x;
}

static pb_kv *kv_double(const char *k, double v) {
    pb_kv *x = kv(k, "");
    x->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    x->value->double_value = v;
    return x;
}

/* Resource and scope as Prometheus's OTLP receiver maps them: job from
 * namespace/name, instance from an id of any type, no scope labels, no
 * target_info without other attributes; plus our service_name. */
static void test_resource_labels(void) {
    sl_arena_init(&g_a, 0);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p1[] = {num(2000000000, 5, 0)};
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p2[] = {num(2000000000, 1, 0)};
    pb_kv *attrs[] = {kv_double("ratio", 1e-5), kv("service.name", "shadow"), kv("job", "mine")};
    p1[0]->attributes = attrs;
    p1[0]->n_attributes = 3;
    pb_metric *ms[] = {sum_metric("cpu.time", 2, true, p1, 1), sum_metric("...", 2, true, p2, 1)};
    req_t *r = mkreq(ms, 2);
    Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_metrics[0]->resource;
    res->attributes[0] = kv("service.namespace", "shop");
    res->attributes[1] = kv_int("service.instance.id", 42);
    res->attributes[2] = kv("service.name", "cart");
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = mut("lib");
    scope.version = mut("1.2");
    sm->scope = &scope;
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(r, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 1);
    ASSERT_EQ(b.rejected, 1);
    ASSERT_TRUE(strstr(err, "without letters or digits") != NULL);
    /* The resource's job and service_name win over the point's attributes;
     * doubles are written as Go's 'f' shortest. */
    ASSERT_TRUE(find(&b, "cpu_time_seconds_total{instance=42,job=shop/cart,ratio=0.00001,"
                         "service_name=cart}") != NULL);
    ASSERT_EQ(b.nseries, 1); /* no target_info: only identifying attributes */
    sl_arena_free(&g_a);
}

/* Points of a request repeat their attribute keys: label names and the
 * label order are reused from the previous point only when they apply
 * (same keys in the same order); colliding keys still join in key order. */
static void test_repeated_attrs(void) {
    sl_arena_init(&g_a, 0);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p[] = {
        num(2000000000, 1, 0), num(2000000000, 2, 0), num(2000000000, 3, 0), num(2000000000, 4, 0),
        num(2000000000, 5, 0)};
    pb_kv *a0[] = {kv("x.y", "2"), kv("b", "1"), kv("x_y", "3")};
    pb_kv *a1[] = {kv("x.y", "5"), kv("b", "4"), kv("x_y", "6")};
    pb_kv *a2[] = {kv("x_y", "9"), kv("b", "7"), kv("x.y", "8")};
    pb_kv *a3[] = {kv("b", ""), kv("x.y", "1")};
    pb_kv *a4[] = {kv("b", "z"), kv("x-y", "w")};
    pb_kv **as[] = {a0, a1, a2, a3, a4};
    const size_t ns[] = {3, 3, 3, 2, 2};
    for (size_t i = 0; i < 5; i++) {
        p[i]->attributes = as[i];
        p[i]->n_attributes = ns[i];
    }
    pb_metric *ms[] = {sum_metric("g", 2, false, p, 5)};
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(mkreq(ms, 1), &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 5);
    ASSERT_TRUE(find(&b, "g_seconds{b=1,instance=i-1,job=api,service_name=api,x_y=2;3}") != NULL);
    ASSERT_TRUE(find(&b, "g_seconds{b=4,instance=i-1,job=api,service_name=api,x_y=5;6}") != NULL);
    ASSERT_TRUE(find(&b, "g_seconds{b=7,instance=i-1,job=api,service_name=api,x_y=8;9}") != NULL);
    ASSERT_TRUE(find(&b, "g_seconds{instance=i-1,job=api,service_name=api,x_y=1}") != NULL);
    ASSERT_TRUE(find(&b, "g_seconds{b=z,instance=i-1,job=api,service_name=api,x_y=w}") != NULL);
    sl_arena_free(&g_a);
}

/* Metadata: one entry per family, however many families a request has and
 * in whatever order their points come (the family index grows past its
 * first size here). */
static void test_many_families(void) {
    sl_arena_init(&g_a, 0);
    enum { FAMILIES = 300 };
    pb_metric *ms[2 * FAMILIES];
    char names[FAMILIES][16];
    for (size_t i = 0; i < 2 * FAMILIES; i++) {
        size_t f = i % FAMILIES;
        snprintf(names[f], sizeof(names[f]), "fam.%zu", f);
        Opentelemetry__Proto__Metrics__V1__NumberDataPoint **p =
            sl_arena_calloc(&g_a, 1, sizeof(*p));
        p[0] = num(2000000000 + (uint64_t)i * 1000000, (double)i, 0);
        pb_kv **attrs = sl_arena_calloc(&g_a, 1, sizeof(*attrs));
        attrs[0] = kv("copy", i < FAMILIES ? "a" : "b");
        p[0]->attributes = attrs;
        p[0]->n_attributes = 1;
        ms[i] = sum_metric(names[f], 2, true, p, 1);
    }
    req_t *r = mkreq(ms, 2 * FAMILIES);
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(r, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 2 * FAMILIES);
    ASSERT_EQ(b.nmeta, FAMILIES + 1); /* and target_info (host.name) */
    size_t seconds = 0, info = 0;
    for (size_t i = 0; i < b.nmeta; i++) {
        for (size_t j = i + 1; j < b.nmeta; j++) {
            ASSERT_TRUE(!sl_str_eq(b.meta[i].metric, b.meta[j].metric));
        }
        seconds += sl_str_eqc(b.meta[i].unit, "seconds");
        info += sl_str_eqc(b.meta[i].metric, "target_info");
    }
    ASSERT_EQ(seconds, FAMILIES);
    ASSERT_EQ(info, 1);
    sl_arena_free(&g_a);
}

static void test_sums_and_partial_success(void) {
    sl_arena_init(&g_a, 0);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p1[] = {num(2000000000, 5, 0),
                                                                num(0, 1, 0)};
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p2[] = {num(2000000000, 3, 0),
                                                                num(3000000000, 0, 1)};
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p3[] = {num(2000000000, 1, 0)};
    pb_metric *ms[] = {sum_metric("cpu.time", 2, true, p1, 2),
                       sum_metric("queue.delta", 1, false, p2, 2),
                       sum_metric("no.temporality", 0, true, p3, 1)};
    req_t *r = mkreq(ms, 3);
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(r, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 3);
    ASSERT_EQ(b.rejected, 2);
    ASSERT_TRUE(strstr(err, "missing time_unix_nano") != NULL);
    const stg_mseries *c =
        find(&b, "cpu_time_seconds_total{instance=i-1,job=api,service_name=api}");
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ(c->kind, STG_MS_CUMULATIVE);
    ASSERT_EQ(c->samples[0].t_ms, 2000);
    int deltas = 0, stale = 0;
    for (size_t i = 0; i < b.nseries; i++) {
        if (b.series[i].kind == STG_MS_DELTA) {
            deltas++;
            stale += ms_is_stale(b.series[i].samples[0].v);
        }
    }
    ASSERT_EQ(deltas, 2);
    ASSERT_EQ(stale, 1); /* NO_RECORDED_VALUE */
    const stg_mseries *ti =
        find(&b, "target_info{host_name=h1,instance=i-1,job=api,service_name=api}");
    ASSERT_TRUE(ti != NULL);
    ASSERT_DBL_EQ(ti->samples[0].v, 1);
    write_corpus(r, "sums.pb");
    sl_arena_free(&g_a);
}

static void test_histograms(void) {
    sl_arena_init(&g_a, 0);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h[2];
    static uint64_t counts[] = {1, 2, 3};
    static uint64_t bad_counts[] = {1, 2};
    static double bounds[] = {0.1, 1};
    for (int i = 0; i < 2; i++) {
        h[i] = sl_arena_calloc(&g_a, 1, sizeof(*h[i]));
        opentelemetry__proto__metrics__v1__histogram_data_point__init(h[i]);
        h[i]->time_unix_nano = 5000000000;
        h[i]->count = 6;
        h[i]->sum = 7.5;
        h[i]->has_sum = 1;
        h[i]->explicit_bounds = bounds;
        h[i]->n_explicit_bounds = 2;
        h[i]->bucket_counts = i == 0 ? counts : bad_counts;
        h[i]->n_bucket_counts = i == 0 ? 3 : 2;
    }
    /* An exemplar on the first point: lands on the le=1 bucket. */
    Opentelemetry__Proto__Metrics__V1__Exemplar *ex = sl_arena_calloc(&g_a, 1, sizeof(*ex));
    opentelemetry__proto__metrics__v1__exemplar__init(ex);
    ex->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    ex->as_double = 0.5;
    ex->time_unix_nano = 4000000000;
    static uint8_t tid[16] = {1, 2, 3};
    ex->trace_id = (ProtobufCBinaryData){16, tid};
    Opentelemetry__Proto__Metrics__V1__Exemplar *exs[] = {ex};
    h[0]->exemplars = exs;
    h[0]->n_exemplars = 1;
    pb_metric *m = sl_arena_calloc(&g_a, 1, sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = mut("rpc.duration");
    m->unit = mut("s");
    Opentelemetry__Proto__Metrics__V1__Histogram *hg = sl_arena_calloc(&g_a, 1, sizeof(*hg));
    opentelemetry__proto__metrics__v1__histogram__init(hg);
    hg->aggregation_temporality = 2;
    hg->data_points = h;
    hg->n_data_points = 2;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = hg;

    /* An exponential histogram: scale 1 (base sqrt 2), offsets -1 / 0. */
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *e =
        sl_arena_calloc(&g_a, 1, sizeof(*e));
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(e);
    e->time_unix_nano = 5000000000;
    e->count = 7;
    e->scale = 1;
    e->zero_count = 1;
    static uint64_t pc[] = {1, 2, 1};
    static uint64_t nc[] = {2};
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pos, neg;
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(&pos);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(&neg);
    pos.offset = -1;
    pos.bucket_counts = pc;
    pos.n_bucket_counts = 3;
    neg.offset = 0;
    neg.bucket_counts = nc;
    neg.n_bucket_counts = 1;
    e->positive = &pos;
    e->negative = &neg;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *es[] = {e};
    pb_metric *me = sl_arena_calloc(&g_a, 1, sizeof(*me));
    opentelemetry__proto__metrics__v1__metric__init(me);
    me->name = mut("size");
    me->unit = mut("By");
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *eh =
        sl_arena_calloc(&g_a, 1, sizeof(*eh));
    opentelemetry__proto__metrics__v1__exponential_histogram__init(eh);
    eh->aggregation_temporality = 1;
    eh->data_points = es;
    eh->n_data_points = 1;
    me->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    me->exponential_histogram = eh;

    pb_metric *ms[] = {m, me};
    req_t *r = mkreq(ms, 2);
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(r, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 2);
    ASSERT_EQ(b.rejected, 1);
    ASSERT_TRUE(strstr(err, "bucket_counts") != NULL);
    const stg_mseries *s =
        find(&b, "rpc_duration_seconds_bucket{instance=i-1,job=api,le=1,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 3);
    ASSERT_EQ(s->nexemplars, 1);
    ASSERT_DBL_EQ(s->exemplars[0].v, 0.5);
    s = find(&b, "rpc_duration_seconds_bucket{instance=i-1,job=api,le=+Inf,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 6);
    ASSERT_TRUE(find(&b, "rpc_duration_seconds_sum{instance=i-1,job=api,service_name=api}") !=
                NULL);
    ASSERT_TRUE(find(&b, "rpc_duration_seconds_count{instance=i-1,job=api,service_name=api}") !=
                NULL);
    /* Exponential: negative bucket index 0 covers [-sqrt2, -1): le=-1 holds
     * 2; the zero bucket le=0 adds 1; positive index -1 (1/sqrt2, 1] ->
     * le=1: 4; index 0 -> le=1.414...: 6; index 1 -> le=2: 7. */
    s = find(&b, "size_bytes_bucket{instance=i-1,job=api,le=-1,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 2);
    ASSERT_EQ(s->kind, STG_MS_DELTA);
    s = find(&b, "size_bytes_bucket{instance=i-1,job=api,le=0,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 3);
    s = find(&b, "size_bytes_bucket{instance=i-1,job=api,le=1,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 4);
    s = find(&b, "size_bytes_bucket{instance=i-1,job=api,le=2,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 7);
    s = find(&b, "size_bytes_bucket{instance=i-1,job=api,le=+Inf,service_name=api}");
    ASSERT_TRUE(s != NULL);
    ASSERT_DBL_EQ(s->samples[0].v, 7);
    write_corpus(r, "histograms.pb");
    sl_arena_free(&g_a);
}

static void test_summary(void) {
    sl_arena_init(&g_a, 0);
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *p = sl_arena_calloc(&g_a, 1, sizeof(*p));
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    p->time_unix_nano = 9000000000;
    p->count = 10;
    p->sum = 3.5;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile q[2], *qs[2];
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(&q[i]);
        q[i].quantile = i == 0 ? 0.5 : 0.99;
        q[i].value = i == 0 ? 0.2 : 0.9;
        qs[i] = &q[i];
    }
    p->quantile_values = qs;
    p->n_quantile_values = 2;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *ps[] = {p};
    pb_metric *m = sl_arena_calloc(&g_a, 1, sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = mut("latency");
    m->description = mut("how long");
    Opentelemetry__Proto__Metrics__V1__Summary *s = sl_arena_calloc(&g_a, 1, sizeof(*s));
    opentelemetry__proto__metrics__v1__summary__init(s);
    s->data_points = ps;
    s->n_data_points = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = s;
    pb_metric *ms[] = {m};
    req_t *r = mkreq(ms, 1);
    col_mbatch b = {0};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(r, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 1);
    const stg_mseries *x = find(&b, "latency{instance=i-1,job=api,quantile=0.99,service_name=api}");
    ASSERT_TRUE(x != NULL);
    ASSERT_DBL_EQ(x->samples[0].v, 0.9);
    ASSERT_TRUE(find(&b, "latency_count{instance=i-1,job=api,service_name=api}") != NULL);
    ASSERT_TRUE(find(&b, "latency_sum{instance=i-1,job=api,service_name=api}") != NULL);
    ASSERT_SLSTR_EQ(b.meta[0].type, "summary");
    ASSERT_SLSTR_EQ(b.meta[0].help, "how long");
    write_corpus(r, "summary.pb");
    sl_arena_free(&g_a);
}

/* n server spans "GET /cart" of res starting at 1000 ns with the given
 * durations; the last one is an error. */
static void cart_spans(sl_span *sp, size_t n, const sl_resource *res, const uint64_t *durs) {
    memset(sp, 0, n * sizeof(*sp));
    for (size_t i = 0; i < n; i++) {
        sp[i].resource = res;
        sp[i].name = SL_STR_LIT("GET /cart");
        sp[i].kind = SL_KIND_SERVER;
        sp[i].status_code = i == n - 1 ? SL_STATUS_ERROR : SL_STATUS_UNSET;
        sp[i].start_unix_nano = 1000;
        sp[i].end_unix_nano = 1000 + durs[i];
    }
}

/* One request's derived record, as the writer makes it for a batch of one:
 * the groups of spans (or logs), encoded at now_unix_nano. */
static int encode_groups(int rc, sl_buf *g, uint64_t now_unix_nano, sl_arena *a, sl_buf *out) {
    const sl_buf *one = g;
    if (rc == 0) {
        rc = col_dgroups_encode(&one, 1, (int64_t)(now_unix_nano / 1000000u), a, out);
    }
    sl_buf_free(g);
    return rc;
}

static int span_metrics(const sl_span *spans, size_t n, uint64_t now_unix_nano, sl_arena *a,
                        col_series_gate *gate, sl_buf *out) {
    sl_buf g;
    sl_buf_init(&g, 0);
    return encode_groups(col_span_groups(spans, n, a, gate, &g), &g, now_unix_nano, a, out);
}

static int log_metrics(const sl_log_record *logs, size_t n, uint64_t now_unix_nano, sl_arena *a,
                       col_series_gate *gate, sl_buf *out) {
    sl_buf g;
    sl_buf_init(&g, 0);
    return encode_groups(col_log_groups(logs, n, a, gate, &g), &g, now_unix_nano, a, out);
}

static void test_span_metrics(void) {
    sl_arena_init(&g_a, 0);
    sl_resource res = {SL_STR_INIT("checkout"), NULL, 0, 0};
    sl_span sp[4];
    uint64_t durs[] = {1000000, 3000000, 2000000000, 1000000};
    cart_spans(sp, 4, &res, durs);
    sl_buf out;
    sl_buf_init(&out, 0);
    ASSERT_EQ(span_metrics(sp, 4, 1700000000000000000ull, &g_a, NULL, &out), 0);
    ms_record r;
    ASSERT_EQ(ms_record_decode(out.data, out.len, &g_a, &r), 0);
    ASSERT_EQ(r.nseries, 2 * 20);
    ASSERT_EQ(r.nmeta, 2);
    int found = 0;
    for (size_t i = 0; i < r.nseries; i++) {
        stg_label *l;
        size_t nl;
        ASSERT_EQ(ms_labels_decode(r.series[i].labels, r.series[i].labels_size, &g_a, &l, &nl), 0);
        ASSERT_EQ(r.series[i].kind, STG_MS_DELTA);
        ASSERT_EQ(r.series[i].samples[0].t_ms, 1700000000000);
        bool unset = false, calls = false, le4 = false, inf = false;
        for (size_t j = 0; j < nl; j++) {
            unset |= sl_str_eqc(l[j].value, "STATUS_CODE_UNSET");
            calls |= sl_str_eqc(l[j].value, "traces_span_metrics_calls_total");
            le4 |= sl_str_eqc(l[j].name, "le") && sl_str_eqc(l[j].value, "0.004");
            inf |= sl_str_eqc(l[j].name, "le") && sl_str_eqc(l[j].value, "+Inf");
        }
        if (unset && calls) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 3);
            found++;
        }
        if (unset && le4) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 2);
            found++;
        }
        if (unset && inf) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 3);
            found++;
        }
        for (size_t j = 1; j < nl; j++) { /* sorted, unique names */
            ASSERT_TRUE(
                memcmp(l[j - 1].name.ptr, l[j].name.ptr,
                       l[j - 1].name.len < l[j].name.len ? l[j - 1].name.len : l[j].name.len) <= 0);
        }
    }
    ASSERT_EQ(found, 3);
    sl_log_record logs[3];
    memset(logs, 0, sizeof(logs));
    for (int i = 0; i < 3; i++) {
        logs[i].resource = &res;
        logs[i].severity_number = i == 2 ? 17 : 9;
    }
    out.len = 0;
    ASSERT_EQ(log_metrics(logs, 3, 1700000000000000000ull, &g_a, NULL, &out), 0);
    ASSERT_EQ(ms_record_decode(out.data, out.len, &g_a, &r), 0);
    ASSERT_EQ(r.nseries, 2);
    sl_buf_free(&out);
    sl_arena_free(&g_a);
}

/* The writer's merge: the groups of three requests (two span requests
 * sharing a group, one log request) become one record whose series hold
 * the sums, every sample at the writer's time. */
static void test_derived_merge(void) {
    sl_arena_init(&g_a, 0);
    sl_resource res = {SL_STR_INIT("checkout"), NULL, 0, 0};
    sl_resource res2 = {SL_STR_INIT("payments"), NULL, 0, 0};
    sl_span sp[4];
    uint64_t durs[] = {1000000, 3000000, 2000000000, 1000000};
    cart_spans(sp, 4, &res, durs); /* groups: (checkout, UNSET) x3, (checkout, ERROR) x1 */
    sl_span other[2];
    uint64_t durs2[] = {5000000, 7000000};
    cart_spans(other, 2, &res, durs2); /* (checkout, UNSET), (checkout, ERROR) */
    other[1].resource = &res2;         /* (payments, ERROR) */
    sl_log_record logs[2];
    memset(logs, 0, sizeof(logs));
    logs[0].resource = &res;
    logs[0].severity_number = 9;
    logs[1].resource = &res;
    logs[1].severity_number = 10;
    sl_buf g[3], out;
    for (int i = 0; i < 3; i++) {
        sl_buf_init(&g[i], 0);
    }
    sl_buf_init(&out, 0);
    ASSERT_EQ(col_span_groups(sp, 4, &g_a, NULL, &g[0]), 0);
    ASSERT_EQ(col_span_groups(other, 2, &g_a, NULL, &g[1]), 0);
    ASSERT_EQ(col_log_groups(logs, 2, &g_a, NULL, &g[2]), 0);
    ASSERT_TRUE(g[0].len > 0 && g[1].len > 0 && g[2].len > 0);
    const sl_buf *bufs[] = {&g[0], &g[1], &g[2]};
    ASSERT_EQ(col_dgroups_encode(bufs, 3, 1700000000123, &g_a, &out), 0);
    ms_record r;
    ASSERT_EQ(ms_record_decode(out.data, out.len, &g_a, &r), 0);
    ASSERT_EQ(r.nseries, 3 * 20 + 1); /* three span groups, one log group (both "info") */
    ASSERT_EQ(r.nmeta, 3);
    int found = 0;
    for (size_t i = 0; i < r.nseries; i++) {
        ASSERT_EQ(r.series[i].nsamples, 1);
        ASSERT_EQ(r.series[i].samples[0].t_ms, 1700000000123);
        stg_label *l;
        size_t nl;
        ASSERT_EQ(ms_labels_decode(r.series[i].labels, r.series[i].labels_size, &g_a, &l, &nl), 0);
        bool unset = false, calls = false, le8 = false, sum = false, pay = false, logc = false;
        for (size_t j = 0; j < nl; j++) {
            unset |= sl_str_eqc(l[j].value, "STATUS_CODE_UNSET");
            calls |= sl_str_eqc(l[j].value, "traces_span_metrics_calls_total");
            le8 |= sl_str_eqc(l[j].name, "le") && sl_str_eqc(l[j].value, "0.008");
            sum |= sl_str_eqc(l[j].value, "traces_span_metrics_duration_seconds_sum");
            pay |= sl_str_eqc(l[j].value, "payments");
            logc |= sl_str_eqc(l[j].value, "logs_records_total");
        }
        if (unset && calls) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 4); /* 3 + 1 */
            found++;
        }
        if (unset && le8) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 3); /* 1 ms, 3 ms, 5 ms */
            found++;
        }
        if (unset && sum) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 0.001 + 0.003 + 2 + 0.005);
            found++;
        }
        if (pay && calls) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 1);
            found++;
        }
        if (logc) {
            ASSERT_DBL_EQ(r.series[i].samples[0].v, 2);
            found++;
        }
    }
    ASSERT_EQ(found, 5);
    /* No entries: no record. */
    sl_buf empty;
    sl_buf_init(&empty, 0);
    const sl_buf *none[] = {&empty};
    out.len = 0;
    ASSERT_EQ(col_dgroups_encode(none, 1, 1, &g_a, &out), 0);
    ASSERT_EQ(out.len, 0);
    for (int i = 0; i < 3; i++) {
        sl_buf_free(&g[i]);
    }
    sl_buf_free(&out);
    sl_arena_free(&g_a);
}

/* max_active_series: whole points and whole span groups are admitted or
 * refused; known series always pass; idle series expire. */
static void test_series_limit(void) {
    sl_arena_init(&g_a, 0);
    col_series_limiter *lim = col_series_limiter_new(1000000000ull, NULL, NULL); /* 1 s window */
    ASSERT_TRUE(lim != NULL);
    col_series_gate gate = {.lim = lim, .tenant = "acme", .max = 25};
    /* Span RED series: 20 per (service, name, kind, status) group. */
    sl_resource res = {SL_STR_INIT("checkout"), NULL, 0, 0};
    sl_span sp[2];
    uint64_t durs[] = {1000000, 1000000};
    cart_spans(sp, 2, &res, durs);
    sl_buf out;
    sl_buf_init(&out, 0);
    ASSERT_EQ(span_metrics(sp, 2, 1700000000000000000ull, &g_a, &gate, &out), 0);
    ms_record r;
    ASSERT_EQ(ms_record_decode(out.data, out.len, &g_a, &r), 0);
    ASSERT_EQ(r.nseries, 20); /* the second group would make 40 > 25 */
    ASSERT_EQ(gate.refused_points, 1);
    ASSERT_EQ(gate.refused_series, 20);
    ASSERT_EQ(col_series_active(lim, "acme"), 20);
    ASSERT_EQ(col_series_active(lim, "other"), 0);
    /* Known series pass again; a second tenant has its own count. */
    out.len = 0;
    ASSERT_EQ(span_metrics(sp, 1, 1700000000001000000ull, &g_a, &gate, &out), 0);
    ASSERT_TRUE(out.len > 0);
    col_series_gate other = {.lim = lim, .tenant = "other", .max = 25};
    out.len = 0;
    ASSERT_EQ(span_metrics(sp + 1, 1, 1700000000001000000ull, &g_a, &other, &out), 0);
    ASSERT_EQ(other.refused_points, 0);
    /* OTLP points: 5 more series fit, the sixth point is refused with a
     * clear partial-success message; a histogram point is all or nothing. */
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *pts[6];
    for (int i = 0; i < 6; i++) {
        pts[i] = num(2000000000, i, 0);
        static const char *const shards[] = {"0", "1", "2", "3", "4", "5"};
        pb_kv **kvs = sl_arena_calloc(&g_a, 1, sizeof(*kvs));
        kvs[0] = kv("shard", shards[i]);
        pts[i]->attributes = kvs;
        pts[i]->n_attributes = 1;
    }
    pb_metric *ms[] = {sum_metric("jobs", 2, true, pts, 6)}; /* cumulative, monotonic */
    req_t *req = mkreq(ms, 1);
    col_mbatch b = {.gate = &gate};
    char err[256];
    ASSERT_EQ(col_metrics_to_series(req, &g_a, &b, err, sizeof(err)), 0);
    ASSERT_EQ(b.points, 5); /* 20 + 5 = 25; shard 5 and target_info do not fit */
    ASSERT_EQ(b.rejected, 1);
    ASSERT_TRUE(strstr(err, "max_active_series 25") != NULL);
    ASSERT_TRUE(find(&b, "jobs_seconds_total{instance=i-1,job=api,service_name=api,shard=4}") !=
                NULL);
    ASSERT_TRUE(find(&b, "jobs_seconds_total{instance=i-1,job=api,service_name=api,shard=5}") ==
                NULL);
    ASSERT_TRUE(find(&b, "target_info{host_name=h1,instance=i-1,job=api,service_name=api}") ==
                NULL);
    ASSERT_EQ(col_series_active(lim, "acme"), 25);
    /* After the window every series is idle: new ones fit again. */
    struct timespec ts = {1, 200000000};
    nanosleep(&ts, NULL);
    ASSERT_EQ(col_series_active(lim, "acme"), 0);
    col_mbatch b2 = {.gate = &gate};
    ASSERT_EQ(col_metrics_to_series(req, &g_a, &b2, err, sizeof(err)), 0);
    ASSERT_EQ(b2.points, 6);
    ASSERT_EQ(b2.rejected, 0);
    sl_buf_free(&out);
    col_series_limiter_free(lim);
    sl_arena_free(&g_a);
}

int main(void) {
    RUN(test_names);
    RUN(test_floats);
    RUN(test_spec_example_json);
    RUN(test_sums_and_partial_success);
    RUN(test_many_families);
    RUN(test_resource_labels);
    RUN(test_repeated_attrs);
    RUN(test_histograms);
    RUN(test_summary);
    RUN(test_span_metrics);
    RUN(test_derived_merge);
    RUN(test_series_limit);
    return SL_TEST_RESULT();
}
