/*
 * Unit tests for query/jaeger_json.c: hand-built sl_span arrays rendered as
 * Jaeger traces and read back with jansson (which also proves the output is
 * valid JSON and valid UTF-8): references, every tag type, kind/status/scope
 * tags, events as logs, process folding, escaping, non-finite doubles, and
 * the time a 10k-span trace takes. Single-threaded.
 */
#include "sl_test.h"

#include "query_int.h"
#include "sl_err.h"

#include <jansson.h>
#include <math.h>

#define US UINT64_C(1000)

static void set_id(uint8_t *p, size_t len, uint8_t seed) {
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i);
    }
}

static sl_value vstr(const char *s) {
    sl_value v = {.type = SL_VAL_STR, .v.s = sl_str_c(s)};
    return v;
}

/* Renders spans and parses the result; the caller json_decref()s it. */
static json_t *render(const sl_span *spans, size_t n, sl_buf *out) {
    sl_arena scratch;
    qry_jw w;
    json_error_t jerr;
    sl_arena_init(&scratch, 0);
    sl_buf_init(out, 0);
    qry_jw_init(&w, out);
    int rc = qry_render_trace(&w, spans, n, &scratch);
    sl_arena_free(&scratch);
    if (rc != 0) {
        fprintf(stderr, "render failed: %d\n", rc);
        return NULL;
    }
    json_t *j = json_loadb((const char *)out->data, out->len, JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        fprintf(stderr, "invalid JSON (%s at %d): %.*s\n", jerr.text, jerr.position, (int)out->len,
                (const char *)out->data);
    }
    return j;
}

static int contains(const sl_buf *b, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= b->len; i++) {
        if (memcmp(b->data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *sget(json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

/* Finds the tag (or log field) called key in an array of {key,type,value}. */
static json_t *find_kv(json_t *arr, const char *key) {
    size_t i;
    json_t *kv;
    json_array_foreach(arr, i, kv) {
        const char *k = sget(kv, "key");
        if (k != NULL && strcmp(k, key) == 0) {
            return kv;
        }
    }
    return NULL;
}

static void test_shape_and_references(void) {
    sl_resource res = {.service = SL_STR_LIT("frontend")};
    sl_span sp[2];
    sl_link link;
    sl_buf out;
    memset(sp, 0, sizeof(sp));
    memset(&link, 0, sizeof(link));

    /* The child comes first in the input but starts later. */
    set_id(sp[0].trace_id, 16, 0xa0);
    set_id(sp[0].span_id, 8, 0x20);
    set_id(sp[0].parent_span_id, 8, 0x10);
    sp[0].start_unix_nano = 2000 * US + 999;
    sp[0].end_unix_nano = 2500 * US + 999;
    sp[0].name = SL_STR_LIT("child");
    sp[0].flags = 0x301;
    sp[0].resource = &res;
    set_id(link.trace_id, 16, 0x70);
    set_id(link.span_id, 8, 0x80);
    sp[0].links = &link;
    sp[0].nlinks = 1;

    set_id(sp[1].trace_id, 16, 0xa0);
    set_id(sp[1].span_id, 8, 0x10);
    sp[1].start_unix_nano = 1000 * US;
    sp[1].end_unix_nano = 3000 * US;
    sp[1].name = SL_STR_LIT("root");
    sp[1].resource = &res;

    json_t *t = render(sp, 2, &out);
    ASSERT_TRUE(t != NULL);
    ASSERT_STR_EQ(sget(t, "traceID"), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    ASSERT_TRUE(json_is_null(json_object_get(t, "warnings")));
    json_t *spans = json_object_get(t, "spans");
    ASSERT_EQ(json_array_size(spans), 2);

    json_t *root = json_array_get(spans, 0);
    ASSERT_STR_EQ(sget(root, "operationName"), "root");
    ASSERT_STR_EQ(sget(root, "spanID"), "1011121314151617");
    ASSERT_EQ(json_array_size(json_object_get(root, "references")), 0);
    ASSERT_EQ(json_integer_value(json_object_get(root, "startTime")), 1000);
    ASSERT_EQ(json_integer_value(json_object_get(root, "duration")), 2000);
    ASSERT_STR_EQ(sget(root, "processID"), "p1");
    ASSERT_TRUE(json_is_null(json_object_get(root, "warnings")));
    ASSERT_EQ(json_array_size(json_object_get(root, "logs")), 0);
    ASSERT_EQ(json_array_size(json_object_get(root, "tags")), 0);

    json_t *child = json_array_get(spans, 1);
    ASSERT_STR_EQ(sget(child, "operationName"), "child");
    ASSERT_EQ(json_integer_value(json_object_get(child, "startTime")), 2000);
    ASSERT_EQ(json_integer_value(json_object_get(child, "duration")), 500);
    ASSERT_EQ(json_integer_value(json_object_get(child, "flags")), 1);
    json_t *refs = json_object_get(child, "references");
    ASSERT_EQ(json_array_size(refs), 2);
    json_t *r0 = json_array_get(refs, 0);
    ASSERT_STR_EQ(sget(r0, "refType"), "CHILD_OF");
    ASSERT_STR_EQ(sget(r0, "traceID"), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    ASSERT_STR_EQ(sget(r0, "spanID"), "1011121314151617");
    json_t *r1 = json_array_get(refs, 1);
    ASSERT_STR_EQ(sget(r1, "refType"), "FOLLOWS_FROM");
    ASSERT_STR_EQ(sget(r1, "traceID"), "707172737475767778797a7b7c7d7e7f");
    ASSERT_STR_EQ(sget(r1, "spanID"), "8081828384858687");

    json_t *procs = json_object_get(t, "processes");
    ASSERT_EQ(json_object_size(procs), 1);
    ASSERT_STR_EQ(sget(json_object_get(procs, "p1"), "serviceName"), "frontend");
    json_decref(t);
    sl_buf_free(&out);
}

static void test_tag_types(void) {
    sl_resource res = {.service = SL_STR_LIT("svc")};
    sl_attr attrs[12];
    sl_span sp;
    sl_buf out;
    memset(&sp, 0, sizeof(sp));
    attrs[0] = (sl_attr){SL_STR_LIT("s"), vstr("text")};
    attrs[1] = (sl_attr){SL_STR_LIT("b"), {.type = SL_VAL_BOOL, .v.b = 1}};
    attrs[2] = (sl_attr){SL_STR_LIT("i"), {.type = SL_VAL_INT, .v.i = INT64_MIN}};
    attrs[3] = (sl_attr){SL_STR_LIT("d"), {.type = SL_VAL_DOUBLE, .v.d = 1.5}};
    attrs[4] = (sl_attr){SL_STR_LIT("nan"), {.type = SL_VAL_DOUBLE, .v.d = NAN}};
    attrs[5] = (sl_attr){SL_STR_LIT("inf"), {.type = SL_VAL_DOUBLE, .v.d = INFINITY}};
    attrs[6] = (sl_attr){SL_STR_LIT("ninf"), {.type = SL_VAL_DOUBLE, .v.d = -INFINITY}};
    attrs[7] = (sl_attr){SL_STR_LIT("bytes"), {.type = SL_VAL_BYTES, .v.s = SL_STR_LIT("hello")}};
    attrs[8] = (sl_attr){SL_STR_LIT("arr"), {.type = SL_VAL_ARRAY, .v.s = SL_STR_LIT("[1,\"a\"]")}};
    attrs[9] = (sl_attr){SL_STR_LIT("kv"), {.type = SL_VAL_KVLIST, .v.s = SL_STR_LIT("{\"k\":1}")}};
    attrs[10] = (sl_attr){SL_STR_LIT("empty"), {.type = SL_VAL_EMPTY}};
    attrs[11] = (sl_attr){SL_STR_LIT("f"), {.type = SL_VAL_BOOL, .v.b = 0}};
    set_id(sp.trace_id, 16, 1);
    set_id(sp.span_id, 8, 1);
    sp.resource = &res;
    sp.attrs = attrs;
    sp.nattrs = 12;

    json_t *t = render(&sp, 1, &out);
    ASSERT_TRUE(t != NULL);
    json_t *tags = json_object_get(json_array_get(json_object_get(t, "spans"), 0), "tags");
    ASSERT_EQ(json_array_size(tags), 12);
    json_t *kv;

    kv = find_kv(tags, "s");
    ASSERT_STR_EQ(sget(kv, "type"), "string");
    ASSERT_STR_EQ(sget(kv, "value"), "text");
    kv = find_kv(tags, "b");
    ASSERT_STR_EQ(sget(kv, "type"), "bool");
    ASSERT_TRUE(json_is_true(json_object_get(kv, "value")));
    kv = find_kv(tags, "f");
    ASSERT_TRUE(json_is_false(json_object_get(kv, "value")));
    kv = find_kv(tags, "i");
    ASSERT_STR_EQ(sget(kv, "type"), "int64");
    ASSERT_TRUE(json_is_integer(json_object_get(kv, "value")));
    ASSERT_TRUE(json_integer_value(json_object_get(kv, "value")) == INT64_MIN);
    kv = find_kv(tags, "d");
    ASSERT_STR_EQ(sget(kv, "type"), "float64");
    ASSERT_DBL_EQ(json_number_value(json_object_get(kv, "value")), 1.5);
    kv = find_kv(tags, "nan");
    ASSERT_STR_EQ(sget(kv, "type"), "string");
    ASSERT_STR_EQ(sget(kv, "value"), "NaN");
    ASSERT_STR_EQ(sget(find_kv(tags, "inf"), "value"), "+Inf");
    ASSERT_STR_EQ(sget(find_kv(tags, "ninf"), "value"), "-Inf");
    kv = find_kv(tags, "bytes");
    ASSERT_STR_EQ(sget(kv, "type"), "binary");
    ASSERT_STR_EQ(sget(kv, "value"), "aGVsbG8=");
    kv = find_kv(tags, "arr");
    ASSERT_STR_EQ(sget(kv, "type"), "string");
    ASSERT_STR_EQ(sget(kv, "value"), "[1,\"a\"]");
    ASSERT_STR_EQ(sget(find_kv(tags, "kv"), "value"), "{\"k\":1}");
    kv = find_kv(tags, "empty");
    ASSERT_STR_EQ(sget(kv, "type"), "string");
    ASSERT_STR_EQ(sget(kv, "value"), "");
    json_decref(t);
    sl_buf_free(&out);
}

static void test_kind_status_scope_tags(void) {
    sl_resource res = {.service = SL_STR_LIT("svc")};
    sl_span sp[3];
    sl_buf out;
    memset(sp, 0, sizeof(sp));
    for (int i = 0; i < 3; i++) {
        set_id(sp[i].trace_id, 16, 1);
        set_id(sp[i].span_id, 8, (uint8_t)(10 * i));
        sp[i].start_unix_nano = (uint64_t)i * US;
        sp[i].end_unix_nano = (uint64_t)i * US + US;
        sp[i].resource = &res;
    }
    sp[0].kind = SL_KIND_SERVER;
    sp[0].status_code = SL_STATUS_ERROR;
    sp[0].status_message = SL_STR_LIT("boom");
    sp[0].scope_name = SL_STR_LIT("io.opentelemetry.http");
    sp[0].scope_version = SL_STR_LIT("1.2.3");
    sp[0].trace_state = SL_STR_LIT("vendor=a");
    sp[1].kind = SL_KIND_CLIENT;
    sp[1].status_code = SL_STATUS_OK;
    sp[2].kind = SL_KIND_UNSPECIFIED;

    json_t *t = render(sp, 3, &out);
    ASSERT_TRUE(t != NULL);
    json_t *spans = json_object_get(t, "spans");
    json_t *tags0 = json_object_get(json_array_get(spans, 0), "tags");
    ASSERT_STR_EQ(sget(find_kv(tags0, "span.kind"), "value"), "server");
    ASSERT_STR_EQ(sget(find_kv(tags0, "otel.status_code"), "value"), "ERROR");
    json_t *err = find_kv(tags0, "error");
    ASSERT_TRUE(err != NULL);
    ASSERT_STR_EQ(sget(err, "type"), "bool");
    ASSERT_TRUE(json_is_true(json_object_get(err, "value")));
    ASSERT_STR_EQ(sget(find_kv(tags0, "otel.status_description"), "value"), "boom");
    ASSERT_STR_EQ(sget(find_kv(tags0, "otel.scope.name"), "value"), "io.opentelemetry.http");
    ASSERT_STR_EQ(sget(find_kv(tags0, "otel.scope.version"), "value"), "1.2.3");
    ASSERT_STR_EQ(sget(find_kv(tags0, "w3c.tracestate"), "value"), "vendor=a");
    ASSERT_EQ(json_array_size(tags0), 7);

    json_t *tags1 = json_object_get(json_array_get(spans, 1), "tags");
    ASSERT_STR_EQ(sget(find_kv(tags1, "span.kind"), "value"), "client");
    ASSERT_STR_EQ(sget(find_kv(tags1, "otel.status_code"), "value"), "OK");
    ASSERT_TRUE(find_kv(tags1, "error") == NULL);
    ASSERT_EQ(json_array_size(tags1), 2);

    json_t *tags2 = json_object_get(json_array_get(spans, 2), "tags");
    ASSERT_EQ(json_array_size(tags2), 0);
    json_decref(t);
    sl_buf_free(&out);

    ASSERT_STR_EQ(qry_kind_name(SL_KIND_INTERNAL), "internal");
    ASSERT_STR_EQ(qry_kind_name(SL_KIND_PRODUCER), "producer");
    ASSERT_STR_EQ(qry_kind_name(SL_KIND_CONSUMER), "consumer");
    ASSERT_STR_EQ(qry_kind_name(SL_KIND_UNSPECIFIED), "");
    ASSERT_STR_EQ(qry_kind_name(99), "");
}

static void test_events_to_logs(void) {
    sl_resource res = {.service = SL_STR_LIT("svc")};
    sl_attr ev_attrs[2] = {
        {SL_STR_LIT("exception.type"), vstr("IOError")},
        {SL_STR_LIT("retry"), {.type = SL_VAL_INT, .v.i = 3}},
    };
    sl_event evs[2];
    sl_span sp;
    sl_buf out;
    memset(&sp, 0, sizeof(sp));
    memset(evs, 0, sizeof(evs));
    evs[0].ts_unix_nano = 5000 * US + 7;
    evs[0].name = SL_STR_LIT("exception");
    evs[0].attrs = ev_attrs;
    evs[0].nattrs = 2;
    evs[1].ts_unix_nano = 6000 * US;
    set_id(sp.trace_id, 16, 1);
    set_id(sp.span_id, 8, 1);
    sp.resource = &res;
    sp.events = evs;
    sp.nevents = 2;

    json_t *t = render(&sp, 1, &out);
    ASSERT_TRUE(t != NULL);
    json_t *logs = json_object_get(json_array_get(json_object_get(t, "spans"), 0), "logs");
    ASSERT_EQ(json_array_size(logs), 2);
    json_t *l0 = json_array_get(logs, 0);
    ASSERT_EQ(json_integer_value(json_object_get(l0, "timestamp")), 5000);
    json_t *f0 = json_object_get(l0, "fields");
    ASSERT_EQ(json_array_size(f0), 3);
    ASSERT_STR_EQ(sget(json_array_get(f0, 0), "key"), "event");
    ASSERT_STR_EQ(sget(json_array_get(f0, 0), "value"), "exception");
    ASSERT_STR_EQ(sget(json_array_get(f0, 1), "value"), "IOError");
    ASSERT_EQ(json_integer_value(json_object_get(json_array_get(f0, 2), "value")), 3);
    /* A nameless event has no "event" field. */
    json_t *l1 = json_array_get(logs, 1);
    ASSERT_EQ(json_integer_value(json_object_get(l1, "timestamp")), 6000);
    ASSERT_EQ(json_array_size(json_object_get(l1, "fields")), 0);
    json_decref(t);
    sl_buf_free(&out);
}

static void test_process_dedupe(void) {
    sl_attr a1[3] = {
        {SL_STR_LIT("service.name"), vstr("api")},
        {SL_STR_LIT("host.name"), vstr("h1")},
        {SL_STR_LIT("pid"), {.type = SL_VAL_INT, .v.i = 42}},
    };
    sl_attr a2[2] = {
        {SL_STR_LIT("host.name"), vstr("h1")},
        {SL_STR_LIT("pid"), {.type = SL_VAL_INT, .v.i = 42}},
    };
    sl_attr a3[2] = {
        {SL_STR_LIT("host.name"), vstr("h2")},
        {SL_STR_LIT("pid"), {.type = SL_VAL_INT, .v.i = 42}},
    };
    /* r1 and r2 are different objects with the same content (service.name is
     * not a process tag); r3 differs in one value; r4 in its service. */
    sl_resource r1 = {.service = SL_STR_LIT("api"), .attrs = a1, .nattrs = 3};
    sl_resource r2 = {.service = SL_STR_LIT("api"), .attrs = a2, .nattrs = 2};
    sl_resource r3 = {.service = SL_STR_LIT("api"), .attrs = a3, .nattrs = 2};
    sl_resource r4 = {.service = SL_STR_LIT("db"), .attrs = a2, .nattrs = 2};
    const sl_resource *rs[6] = {&r1, &r2, &r3, &r1, &r4, NULL};
    sl_span sp[6];
    sl_buf out;
    memset(sp, 0, sizeof(sp));
    for (int i = 0; i < 6; i++) {
        set_id(sp[i].trace_id, 16, 1);
        set_id(sp[i].span_id, 8, (uint8_t)(10 * i));
        sp[i].start_unix_nano = (uint64_t)(i + 1) * US;
        sp[i].end_unix_nano = (uint64_t)(i + 2) * US;
        sp[i].resource = rs[i];
    }
    json_t *t = render(sp, 6, &out);
    ASSERT_TRUE(t != NULL);
    json_t *spans = json_object_get(t, "spans");
    ASSERT_STR_EQ(sget(json_array_get(spans, 0), "processID"), "p1");
    ASSERT_STR_EQ(sget(json_array_get(spans, 1), "processID"), "p1");
    ASSERT_STR_EQ(sget(json_array_get(spans, 2), "processID"), "p2");
    ASSERT_STR_EQ(sget(json_array_get(spans, 3), "processID"), "p1");
    ASSERT_STR_EQ(sget(json_array_get(spans, 4), "processID"), "p3");
    ASSERT_STR_EQ(sget(json_array_get(spans, 5), "processID"), "p4");
    json_t *procs = json_object_get(t, "processes");
    ASSERT_EQ(json_object_size(procs), 4);
    json_t *p1 = json_object_get(procs, "p1");
    ASSERT_STR_EQ(sget(p1, "serviceName"), "api");
    json_t *p1tags = json_object_get(p1, "tags");
    ASSERT_EQ(json_array_size(p1tags), 2);
    ASSERT_TRUE(find_kv(p1tags, "service.name") == NULL);
    ASSERT_STR_EQ(sget(find_kv(p1tags, "host.name"), "value"), "h1");
    ASSERT_STR_EQ(
        sget(find_kv(json_object_get(json_object_get(procs, "p2"), "tags"), "host.name"), "value"),
        "h2");
    ASSERT_STR_EQ(sget(json_object_get(procs, "p3"), "serviceName"), "db");
    ASSERT_STR_EQ(sget(json_object_get(procs, "p4"), "serviceName"), "unknown_service");
    ASSERT_EQ(json_array_size(json_object_get(json_object_get(procs, "p4"), "tags")), 0);
    json_decref(t);
    sl_buf_free(&out);
}

static void test_escaping(void) {
    static const char ctl[] = "a\x01\x1f\n\r\t\b\f\"\\/\x7f z";
    static const char bad_utf8[] = "ok\xff\xc3(\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82";
    static const char good_utf8[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd";
    sl_resource res = {.service = {ctl, sizeof(ctl) - 1}};
    sl_attr attrs[2] = {
        {{ctl, sizeof(ctl) - 1}, {.type = SL_VAL_STR, .v.s = {bad_utf8, sizeof(bad_utf8) - 1}}},
        {SL_STR_LIT("good"), {.type = SL_VAL_STR, .v.s = {good_utf8, sizeof(good_utf8) - 1}}},
    };
    sl_span sp;
    sl_buf out;
    memset(&sp, 0, sizeof(sp));
    set_id(sp.trace_id, 16, 1);
    set_id(sp.span_id, 8, 1);
    sp.resource = &res;
    sp.name = (sl_str){"nul\0inside", 10};
    sp.attrs = attrs;
    sp.nattrs = 2;

    json_t *t = render(&sp, 1, &out);
    ASSERT_TRUE(t != NULL);
    /* Raw form: short escapes where JSON has them, \u00XX otherwise. */
    ASSERT_TRUE(contains(&out, "a\\u0001\\u001f\\n\\r\\t\\b\\f\\\"\\\\/\x7f z"));
    ASSERT_TRUE(contains(&out, "nul\\u0000inside"));

    json_t *span = json_array_get(json_object_get(t, "spans"), 0);
    json_t *name = json_object_get(span, "operationName");
    ASSERT_EQ(json_string_length(name), 10);
    ASSERT_TRUE(memcmp(json_string_value(name), "nul\0inside", 10) == 0);
    json_t *tags = json_object_get(span, "tags");
    json_t *kv0 = json_array_get(tags, 0);
    ASSERT_STR_EQ(sget(kv0, "key"), ctl);
    /* Each byte that starts no valid sequence became one U+FFFD. */
    ASSERT_STR_EQ(sget(kv0, "value"), "ok\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd"
                                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                      "\xef\xbf\xbd\xef\xbf\xbd");
    ASSERT_STR_EQ(sget(find_kv(tags, "good"), "value"), good_utf8);
    ASSERT_STR_EQ(sget(json_object_get(json_object_get(t, "processes"), "p1"), "serviceName"), ctl);
    json_decref(t);
    sl_buf_free(&out);
}

static void test_writer_numbers(void) {
    sl_buf b;
    qry_jw w;
    sl_buf_init(&b, 0);
    qry_jw_init(&w, &b);
    QRY_JW_LIT(&w, "[");
    qry_jw_double(&w, 0.1);
    QRY_JW_LIT(&w, ",");
    qry_jw_double(&w, 1e300);
    QRY_JW_LIT(&w, ",");
    qry_jw_double(&w, -0.0);
    QRY_JW_LIT(&w, ",");
    qry_jw_double(&w, 5e-324);
    QRY_JW_LIT(&w, ",");
    qry_jw_double(&w, 2.0 / 3.0);
    QRY_JW_LIT(&w, ",");
    qry_jw_double(&w, NAN);
    QRY_JW_LIT(&w, ",");
    qry_jw_u64(&w, UINT64_MAX);
    QRY_JW_LIT(&w, ",");
    qry_jw_i64(&w, INT64_MIN);
    QRY_JW_LIT(&w, ",");
    qry_jw_base64(&w, (const uint8_t *)"a", 1);
    QRY_JW_LIT(&w, ",");
    qry_jw_base64(&w, (const uint8_t *)"ab", 2);
    QRY_JW_LIT(&w, ",");
    qry_jw_base64(&w, (const uint8_t *)"", 0);
    QRY_JW_LIT(&w, "]");
    ASSERT_EQ(w.err, 0);
    ASSERT_TRUE(sl_buf_putc(&b, 0) == 0);
    ASSERT_STR_EQ((const char *)b.data, "[0.1,1e+300,-0,4.94065645841247e-324,0.66666666666666663,"
                                        "null,18446744073709551615,-9223372036854775808,"
                                        "\"YQ==\",\"YWI=\",\"\"]");
    ASSERT_DBL_EQ(strtod("0.66666666666666663", NULL), 2.0 / 3.0);
    sl_buf_free(&b);

    /* A writer stops at the buffer's limit and reports it once. */
    sl_buf_init(&b, 8);
    qry_jw_init(&w, &b);
    qry_jw_str(&w, "0123456789", 10);
    ASSERT_EQ(w.err, SL_ETOOBIG);
    QRY_JW_LIT(&w, "x");
    ASSERT_EQ(w.err, SL_ETOOBIG);
    sl_buf_free(&b);
}

static void test_envelope_and_error(void) {
    sl_buf b;
    qry_jw w;
    json_error_t jerr;
    sl_buf_init(&b, 0);
    qry_jw_init(&w, &b);
    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[\"a\"]");
    qry_envelope_close(&w, 1, (sl_str){NULL, 0});
    ASSERT_EQ(w.err, 0);
    ASSERT_TRUE(sl_buf_putc(&b, 0) == 0);
    ASSERT_STR_EQ((const char *)b.data,
                  "{\"data\":[\"a\"],\"total\":1,\"limit\":0,\"offset\":0,\"errors\":null}");
    sl_buf_free(&b);

    sl_buf_init(&b, 0);
    ASSERT_EQ(qry_render_error(&b, 400, "bad \"tags\"\n"), 0);
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &jerr);
    ASSERT_TRUE(j != NULL);
    ASSERT_TRUE(json_is_null(json_object_get(j, "data")));
    ASSERT_EQ(json_integer_value(json_object_get(j, "total")), 0);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    ASSERT_EQ(json_integer_value(json_object_get(e, "code")), 400);
    ASSERT_STR_EQ(sget(e, "msg"), "bad \"tags\"\n");
    json_decref(j);
    sl_buf_free(&b);
}

static void test_large_trace_speed(void) {
    enum { N = 10000, NATTR = 10 };
    sl_attr attrs[NATTR];
    sl_resource res[4];
    sl_span *sp = calloc(N, sizeof(*sp));
    char keys[NATTR][24];
    sl_buf out;
    ASSERT_TRUE(sp != NULL);
    for (int i = 0; i < NATTR; i++) {
        snprintf(keys[i], sizeof(keys[i]), "attr.key.%d", i);
        attrs[i].key = sl_str_c(keys[i]);
        attrs[i].val = i % 2 ? vstr("some moderately long attribute value /api/v1/items")
                             : (sl_value){.type = SL_VAL_INT, .v.i = i * 1000};
    }
    for (int i = 0; i < 4; i++) {
        res[i] = (sl_resource){.service = SL_STR_LIT("svc"), .attrs = attrs, .nattrs = 2};
    }
    res[3].service = SL_STR_LIT("other");
    for (int i = 0; i < N; i++) {
        set_id(sp[i].trace_id, 16, 7);
        sl_put_be64(sp[i].span_id, (uint64_t)i + 1);
        if (i > 0) {
            sl_put_be64(sp[i].parent_span_id, (uint64_t)i / 2 + 1);
        }
        /* Reverse start order makes the sort work. */
        sp[i].start_unix_nano = (uint64_t)(N - i) * US;
        sp[i].end_unix_nano = sp[i].start_unix_nano + 50 * US;
        sp[i].name = SL_STR_LIT("GET /api/v1/items/{id}");
        sp[i].kind = SL_KIND_SERVER;
        sp[i].resource = &res[i % 4];
        sp[i].attrs = attrs;
        sp[i].nattrs = NATTR;
    }
    uint64_t t0 = sl_mono_nano();
    sl_arena scratch;
    qry_jw w;
    sl_arena_init(&scratch, 0);
    sl_buf_init(&out, 0);
    qry_jw_init(&w, &out);
    int rc = qry_render_trace(&w, sp, N, &scratch);
    double ms = (double)(sl_mono_nano() - t0) / 1e6;
    sl_arena_free(&scratch);
    fprintf(stderr, "  10k spans: %.1f ms, %zu bytes\n", ms, out.len);
    ASSERT_EQ(rc, 0);
    /* Generous, for sanitizer builds; a plain build takes a few ms. */
    ASSERT_TRUE(ms < 2000);
    json_error_t jerr;
    json_t *t = json_loadb((const char *)out.data, out.len, 0, &jerr);
    ASSERT_TRUE(t != NULL);
    json_t *spans = json_object_get(t, "spans");
    ASSERT_EQ(json_array_size(spans), N);
    ASSERT_EQ(json_integer_value(json_object_get(json_array_get(spans, 0), "startTime")), 1);
    ASSERT_EQ(json_object_size(json_object_get(t, "processes")), 2);
    json_decref(t);
    sl_buf_free(&out);
    free(sp);
}

int main(void) {
    RUN(test_shape_and_references);
    RUN(test_tag_types);
    RUN(test_kind_status_scope_tags);
    RUN(test_events_to_logs);
    RUN(test_process_dedupe);
    RUN(test_escaping);
    RUN(test_writer_numbers);
    RUN(test_envelope_and_error);
    RUN(test_large_trace_speed);
    return SL_TEST_RESULT();
}
