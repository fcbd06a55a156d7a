/*
 * Tests for collector/decode_traces.c: OTLP trace request -> sl_span model.
 * Requests are written as OTLP/JSON (single quotes, see q()) and decoded with
 * col_json_decode; cases JSON cannot express (bad id lengths, invalid UTF-8,
 * absurd nesting) patch or build the protobuf-c structs directly.
 *
 * Single-threaded.
 */
#include "decode_traces.h"
#include "otlp_json.h"

#include "sl_arena.h"
#include "sl_err.h"
#include "sl_test.h"
#include "sl_util.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

#define TRACE_DESC                                                                                 \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor

#define TID "'traceId':'0102030405060708090a0b0c0d0e0f10'"
#define SID "'spanId':'1112131415161718'"
#define IDS TID "," SID

static sl_arena g_arena;
static char g_err[256];
static char g_json[1 << 16];
static char g_file[1 << 16];

/* Results of the last convert(). */
static sl_span *g_spans;
static size_t g_n, g_rejected;

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

/* Decodes single-quoted JSON into a request (NULL on failure). Resets the arena. */
static trace_req *request(const char *sq) {
    sl_arena_reset(&g_arena);
    const char *j = q(sq);
    ProtobufCMessage *m = NULL;
    char err[256];
    if (col_json_decode(&TRACE_DESC, j, strlen(j), &g_arena, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "  bad test JSON: %s\n", err);
        return NULL;
    }
    return (trace_req *)m;
}

/* A request with one span whose members are given. */
static trace_req *span_request(const char *members) {
    char buf[8192];
    snprintf(buf, sizeof(buf), "{'resourceSpans':[{'scopeSpans':[{'spans':[{%s}]}]}]}", members);
    return request(buf);
}

static int convert(const trace_req *r) {
    g_spans = NULL;
    g_n = g_rejected = 0;
    return col_traces_to_model(r, &g_arena, &g_spans, &g_n, &g_rejected, g_err, sizeof(g_err));
}

/* Converts a one-span request with one attribute of the given value and
 * returns that attribute (NULL when anything failed). */
static const sl_attr *attr_of(const char *value) {
    char buf[4096];
    snprintf(buf, sizeof(buf), IDS ",'attributes':[{'key':'k','value':%s}]", value);
    trace_req *r = span_request(buf);
    if (r == NULL || convert(r) != 0 || g_n != 1 || g_spans[0].nattrs != 1) {
        return NULL;
    }
    return &g_spans[0].attrs[0];
}

/* Checks that value renders to the given JSON text with the given type. */
static bool renders(const char *value, uint8_t type, const char *json) {
    const sl_attr *a = attr_of(value);
    if (a == NULL || a->val.type != type || a->val.v.s.len != strlen(json) ||
        memcmp(a->val.v.s.ptr, json, a->val.v.s.len) != 0) {
        fprintf(stderr, "  value %s\n  rendered \"%.*s\" (type %d)\n  expected \"%s\" (type %d)\n",
                value, a ? (int)a->val.v.s.len : 0, a ? a->val.v.s.ptr : "", a ? a->val.type : -1,
                json, type);
        return false;
    }
    return true;
}

static bool id_eq(const uint8_t *id, size_t n, const char *hex) {
    uint8_t tmp[16];
    return sl_hex_decode(hex, 2 * n, tmp, n) == 0 && memcmp(id, tmp, n) == 0;
}

static void test_example(void) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/trace.json", SL_TEST_OTLP_DIR);
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(g_file, 1, sizeof(g_file), f);
    fclose(f);
    sl_arena_reset(&g_arena);
    ProtobufCMessage *m;
    ASSERT_EQ(col_json_decode(&TRACE_DESC, g_file, n, &g_arena, &m, g_err, sizeof(g_err)), 0);
    ASSERT_EQ(convert((trace_req *)m), 0);
    ASSERT_EQ(g_n, 1);
    ASSERT_EQ(g_rejected, 0);
    ASSERT_STR_EQ(g_err, "");
    const sl_span *s = &g_spans[0];
    ASSERT_TRUE(id_eq(s->trace_id, 16, "5b8efff798038103d269b633813fc60c"));
    ASSERT_TRUE(id_eq(s->span_id, 8, "eee19b7ec3c1b174"));
    ASSERT_TRUE(id_eq(s->parent_span_id, 8, "eee19b7ec3c1b173"));
    ASSERT_SLSTR_EQ(s->name, "I'm a server span");
    ASSERT_EQ(s->kind, SL_KIND_SERVER);
    ASSERT_EQ(s->status_code, SL_STATUS_UNSET);
    ASSERT_U64_EQ(s->start_unix_nano, 1544712660000000000ull);
    ASSERT_U64_EQ(sl_span_duration_nano(s), 1000000000ull);
    ASSERT_SLSTR_EQ(s->scope_name, "my.library");
    ASSERT_SLSTR_EQ(s->scope_version, "1.0.0");
    ASSERT_SLSTR_EQ(s->resource->service, "my.service");
    ASSERT_EQ(s->resource->nattrs, 1);
    ASSERT_SLSTR_EQ(s->resource->attrs[0].key, "service.name");
    ASSERT_EQ(s->nattrs, 1);
    ASSERT_SLSTR_EQ(s->attrs[0].key, "my.span.attr");
    ASSERT_EQ(s->attrs[0].val.type, SL_VAL_STR);
    ASSERT_SLSTR_EQ(s->attrs[0].val.v.s, "some value");
    ASSERT_EQ(s->nevents, 0);
    ASSERT_EQ(s->nlinks, 0);
    ASSERT_TRUE(s->links == NULL);
    ASSERT_SLSTR_EQ(s->trace_state, "");
}

static void test_scalar_attrs(void) {
    const sl_attr *a = attr_of("{'stringValue':'hello'}");
    ASSERT_TRUE(a != NULL);
    ASSERT_SLSTR_EQ(a->key, "k");
    ASSERT_EQ(a->val.type, SL_VAL_STR);
    ASSERT_SLSTR_EQ(a->val.v.s, "hello");

    a = attr_of("{'boolValue':true}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_BOOL);
    ASSERT_EQ(a->val.v.b, 1);
    a = attr_of("{'boolValue':false}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_BOOL);
    ASSERT_EQ(a->val.v.b, 0);
    a = attr_of("{'intValue':'-42'}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_INT);
    ASSERT_EQ(a->val.v.i, -42);
    a = attr_of("{'doubleValue':2.5}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_DOUBLE);
    ASSERT_DBL_EQ(a->val.v.d, 2.5);
    a = attr_of("{'bytesValue':'AP8='}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_BYTES);
    ASSERT_EQ(a->val.v.s.len, 2);
    ASSERT_TRUE(memcmp(a->val.v.s.ptr, "\x00\xff", 2) == 0);
    a = attr_of("{}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_EMPTY);
    a = attr_of("null");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_EMPTY);
    a = attr_of("{'stringValue':''}");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->val.type, SL_VAL_STR);
    ASSERT_EQ(a->val.v.s.len, 0);
    ASSERT_TRUE(a->val.v.s.ptr != NULL);
}

static void test_strings_are_views(void) {
    trace_req *r = span_request(IDS ",'name':'op','attributes':[{'key':'k','value':"
                                    "{'stringValue':'v'}}]");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    const pb_span *ps = r->resource_spans[0]->scope_spans[0]->spans[0];
    ASSERT_TRUE(g_spans[0].name.ptr == ps->name);
    ASSERT_TRUE(g_spans[0].attrs[0].key.ptr == ps->attributes[0]->key);
    ASSERT_TRUE(g_spans[0].attrs[0].val.v.s.ptr == ps->attributes[0]->value->string_value);
}

static void test_array_kvlist_json(void) {
    ASSERT_TRUE(renders("{'arrayValue':{'values':[{'stringValue':'a'},{'intValue':1},"
                        "{'boolValue':true}]}}",
                        SL_VAL_ARRAY, "[\"a\",1,true]"));
    ASSERT_TRUE(renders("{'kvlistValue':{'values':[{'key':'k','value':{'stringValue':'v'}}]}}",
                        SL_VAL_KVLIST, "{\"k\":\"v\"}"));
    ASSERT_TRUE(renders("{'arrayValue':{}}", SL_VAL_ARRAY, "[]"));
    ASSERT_TRUE(renders("{'kvlistValue':{'values':[]}}", SL_VAL_KVLIST, "{}"));
    /* Every element type, nesting, empty values as null, bytes as base64,
     * non-finite doubles as strings (the OpenTelemetry non-OTLP rules). */
    ASSERT_TRUE(
        renders("{'arrayValue':{'values':[{},{'doubleValue':0.1},{'doubleValue':'NaN'},"
                "{'doubleValue':'Infinity'},{'doubleValue':'-Infinity'},"
                "{'doubleValue':1e300},{'doubleValue':-2},{'intValue':'-9223372036854775808'},"
                "{'bytesValue':'aGVsbG8='},{'bytesValue':''},{'boolValue':false},"
                "{'arrayValue':{'values':[{'kvlistValue':{'values':[{'key':'x'},"
                "{'key':'y','value':{'arrayValue':{}}}]}}]}}]}}",
                SL_VAL_ARRAY,
                "[null,0.1,\"NaN\",\"Infinity\",\"-Infinity\",1e+300,-2,"
                "-9223372036854775808,\"aGVsbG8=\",\"\",false,[{\"x\":null,\"y\":[]}]]"));
    /* Escaping of keys and strings. */
    ASSERT_TRUE(renders("{'kvlistValue':{'values':[{'key':'q\\\"k\\\\','value':{'stringValue':"
                        "'a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\\u00e9\\u2028/'}}]}}",
                        SL_VAL_KVLIST,
                        "{\"q\\\"k\\\\\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\xc3\xa9"
                        "\xe2\x80\xa8/\"}"));
    /* Shortest round-tripping doubles. */
    ASSERT_TRUE(renders("{'arrayValue':{'values':[{'doubleValue':637.704},"
                        "{'doubleValue':0.30000000000000004},{'doubleValue':5}]}}",
                        SL_VAL_ARRAY, "[637.704,0.30000000000000004,5]"));
}

/* Protobuf senders can put any bytes in strings; the JSON text stays valid. */
static void test_invalid_utf8_in_json_text(void) {
    trace_req *r = span_request(IDS ",'attributes':[{'key':'k','value':{'arrayValue':{'values':"
                                    "[{'stringValue':'x'},{'stringValue':'y'},{'stringValue':'z'},"
                                    "{'stringValue':'w'}]}}}]");
    ASSERT_TRUE(r != NULL);
    pb_array *arr =
        r->resource_spans[0]->scope_spans[0]->spans[0]->attributes[0]->value->array_value;
    static char s0[] = "a\xff"
                       "b";                        /* stray byte */
    static char s1[] = "\xc3(";                    /* truncated sequence */
    static char s2[] = "\xed\xa0\x80";             /* surrogate */
    static char s3[] = "\xf0\x9f\x98\x80\xc0\xaf"; /* valid 4-byte, then an overlong */
    arr->values[0]->string_value = s0;
    arr->values[1]->string_value = s1;
    arr->values[2]->string_value = s2;
    arr->values[3]->string_value = s3;
    ASSERT_EQ(convert(r), 0);
    ASSERT_SLSTR_EQ(g_spans[0].attrs[0].val.v.s,
                    "[\"a\\ufffdb\",\"\\ufffd(\",\"\\ufffd\\ufffd\\ufffd\","
                    "\"\xf0\x9f\x98\x80\\ufffd\\ufffd\"]");
}

static void test_empty_keyvalue(void) {
    trace_req *r = span_request(IDS ",'attributes':[{'key':'novalue'},{'key':'s','value':"
                                    "{'stringValue':'x'}}]");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_spans[0].nattrs, 2);
    ASSERT_SLSTR_EQ(g_spans[0].attrs[0].key, "novalue");
    ASSERT_EQ(g_spans[0].attrs[0].val.type, SL_VAL_EMPTY);
    ASSERT_EQ(g_spans[0].attrs[1].val.type, SL_VAL_STR);
}

static void test_partial_success(void) {
    trace_req *r = request("{'resourceSpans':[{'scopeSpans':[{'spans':["
                           "{" IDS ",'name':'ok0'},"
                           "{'traceId':'00000000000000000000000000000000'," SID ",'name':'zero'},"
                           "{" TID ",'name':'nospan'},"
                           "{" IDS ",'name':'badparent'},"
                           "{" IDS ",'name':'ok4','parentSpanId':'2122232425262728'},"
                           "{" IDS ",'name':'shorttrace'},"
                           "{" TID ",'spanId':'0000000000000000','name':'zerospan'},"
                           "{'name':'noids'}"
                           "]}]}]}");
    ASSERT_TRUE(r != NULL);
    pb_span **ps = r->resource_spans[0]->scope_spans[0]->spans;
    ps[3]->parent_span_id = ps[3]->trace_id; /* 16 bytes: neither empty nor 8 */
    ps[5]->trace_id.len = 8;
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 2);
    ASSERT_EQ(g_rejected, 6);
    ASSERT_STR_EQ(g_err, "span 1: invalid trace_id (must be 16 bytes, not all zero)");
    ASSERT_SLSTR_EQ(g_spans[0].name, "ok0");
    ASSERT_SLSTR_EQ(g_spans[1].name, "ok4");
    ASSERT_TRUE(id_eq(g_spans[1].parent_span_id, 8, "2122232425262728"));
    ASSERT_TRUE(sl_is_zero(g_spans[0].parent_span_id, 8));

    /* Each reason, first in its request. */
    r = span_request(TID);
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 0);
    ASSERT_TRUE(g_spans == NULL);
    ASSERT_EQ(g_rejected, 1);
    ASSERT_STR_EQ(g_err, "span 0: invalid span_id (must be 8 bytes, not all zero)");
    r = span_request(IDS);
    ASSERT_TRUE(r != NULL);
    static uint8_t four[4] = {1, 2, 3, 4};
    r->resource_spans[0]->scope_spans[0]->spans[0]->parent_span_id.len = sizeof(four);
    r->resource_spans[0]->scope_spans[0]->spans[0]->parent_span_id.data = four;
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_rejected, 1);
    ASSERT_STR_EQ(g_err, "span 0: invalid parent_span_id (must be empty or 8 bytes)");

    /* The span index counts across resources and scopes. */
    r = request("{'resourceSpans':[{'scopeSpans':[{'spans':[{" IDS "}]},{'spans':[{" IDS "},{" IDS
                "}]}]},{'scopeSpans':[{'spans':[{" SID "}]}]}]}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 3);
    ASSERT_EQ(g_rejected, 1);
    ASSERT_STR_EQ(g_err, "span 3: invalid trace_id (must be 16 bytes, not all zero)");
}

static void test_resources(void) {
    trace_req *r = request(
        "{'resourceSpans':["
        "{'resource':{'attributes':[{'key':'host','value':{'stringValue':'h1'}},"
        "{'key':'service.name','value':{'stringValue':'api'}}],'droppedAttributesCount':2},"
        "'scopeSpans':[{'scope':{'name':'lib','version':'2'},'spans':[{" IDS "},{" IDS "}]},"
        "{'spans':[{" IDS "}]}]},"
        "{'resource':{'attributes':[{'key':'service.name','value':{'intValue':5}}]},"
        "'scopeSpans':[{'spans':[{" IDS "}]}]},"
        "{'resource':{'attributes':[{'key':'service.name','value':{'stringValue':''}}]},"
        "'scopeSpans':[{'spans':[{" IDS "}]}]},"
        "{'scopeSpans':[{'spans':[{" IDS "}]}]},"
        "{'resource':{},'scopeSpans':[]}"
        "]}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 6);
    ASSERT_TRUE(g_spans[0].resource == g_spans[1].resource);
    ASSERT_TRUE(g_spans[0].resource == g_spans[2].resource);
    ASSERT_TRUE(g_spans[2].resource != g_spans[3].resource);
    const sl_resource *res = g_spans[0].resource;
    ASSERT_SLSTR_EQ(res->service, "api");
    ASSERT_EQ(res->nattrs, 2);
    ASSERT_EQ(res->dropped_attrs, 2);
    ASSERT_SLSTR_EQ(res->attrs[0].key, "host");
    ASSERT_SLSTR_EQ(res->attrs[0].val.v.s, "h1");
    ASSERT_SLSTR_EQ(g_spans[0].scope_name, "lib");
    ASSERT_SLSTR_EQ(g_spans[1].scope_version, "2");
    ASSERT_SLSTR_EQ(g_spans[2].scope_name, "");                       /* no scope */
    ASSERT_SLSTR_EQ(g_spans[3].resource->service, "unknown_service"); /* not a string */
    ASSERT_EQ(g_spans[3].resource->nattrs, 1);
    ASSERT_SLSTR_EQ(g_spans[4].resource->service, "unknown_service"); /* empty */
    ASSERT_SLSTR_EQ(g_spans[5].resource->service, "unknown_service"); /* no resource */
    ASSERT_EQ(g_spans[5].resource->nattrs, 0);
    ASSERT_TRUE(g_spans[5].resource->attrs == NULL);
}

static void test_zero_spans(void) {
    static const char *const bodies[] = {
        "{}", "{'resourceSpans':[]}", "{'resourceSpans':[{}]}",
        "{'resourceSpans':[{'resource':{'attributes':[{'key':'a'}]},'scopeSpans':[{}]}]}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        trace_req *r = request(bodies[i]);
        ASSERT_TRUE(r != NULL);
        g_err[0] = 'x';
        ASSERT_EQ(convert(r), 0);
        ASSERT_EQ(g_n, 0);
        ASSERT_EQ(g_rejected, 0);
        ASSERT_TRUE(g_spans == NULL);
        ASSERT_STR_EQ(g_err, "");
    }
}

static void test_kind_status_clamp(void) {
    trace_req *r = request("{'resourceSpans':[{'scopeSpans':[{'spans':["
                           "{" IDS ",'kind':5,'status':{'code':2,'message':'boom'}},"
                           "{" IDS ",'kind':6,'status':{'code':3,'message':'odd'}},"
                           "{" IDS ",'kind':-1,'status':{'code':-7}},"
                           "{" IDS ",'kind':1,'status':{'code':1}},"
                           "{" IDS ",'flags':769,'traceState':'k=v','droppedAttributesCount':4,"
                           "'droppedEventsCount':5,'droppedLinksCount':6}"
                           "]}]}]}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 5);
    ASSERT_EQ(g_spans[0].kind, SL_KIND_CONSUMER);
    ASSERT_EQ(g_spans[0].status_code, SL_STATUS_ERROR);
    ASSERT_SLSTR_EQ(g_spans[0].status_message, "boom");
    ASSERT_EQ(g_spans[1].kind, SL_KIND_UNSPECIFIED);
    ASSERT_EQ(g_spans[1].status_code, SL_STATUS_UNSET);
    ASSERT_SLSTR_EQ(g_spans[1].status_message, "odd");
    ASSERT_EQ(g_spans[2].kind, SL_KIND_UNSPECIFIED);
    ASSERT_EQ(g_spans[2].status_code, SL_STATUS_UNSET);
    ASSERT_EQ(g_spans[3].kind, SL_KIND_INTERNAL);
    ASSERT_EQ(g_spans[3].status_code, SL_STATUS_OK);
    ASSERT_EQ(g_spans[4].flags, 769);
    ASSERT_SLSTR_EQ(g_spans[4].trace_state, "k=v");
    ASSERT_EQ(g_spans[4].dropped_attrs, 4);
    ASSERT_EQ(g_spans[4].dropped_events, 5);
    ASSERT_EQ(g_spans[4].dropped_links, 6);
    ASSERT_SLSTR_EQ(g_spans[4].status_message, "");
}

static void test_events_links(void) {
    trace_req *r = span_request(
        IDS ",'attributes':[{'key':'a','value':{'intValue':1}}],"
            "'events':[{'timeUnixNano':'100','name':'ev0','attributes':[{'key':'e','value':"
            "{'arrayValue':{'values':[{'intValue':2}]}}},{'key':'f'}],'droppedAttributesCount':1},"
            "{'timeUnixNano':'200','name':'ev1'}],"
            "'links':[{'traceId':'a1a2a3a4a5a6a7a8a9aaabacadaeafb0','spanId':'b1b2b3b4b5b6b7b8',"
            "'traceState':'x=y','flags':1,'attributes':[{'key':'l','value':{'boolValue':true}}],"
            "'droppedAttributesCount':3},"
            "{'traceId':'00000000000000000000000000000000','spanId':'b1b2b3b4b5b6b7b8'},"
            "{'spanId':'b1b2b3b4b5b6b7b8'},"
            "{'traceId':'c1c2c3c4c5c6c7c8c9cacbcccdcecfd0','spanId':'d1d2d3d4d5d6d7d8'}],"
            "'droppedLinksCount':1");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 1);
    const sl_span *s = &g_spans[0];
    ASSERT_EQ(s->nattrs, 1);
    ASSERT_SLSTR_EQ(s->attrs[0].key, "a");
    ASSERT_EQ(s->attrs[0].val.v.i, 1);

    ASSERT_EQ(s->nevents, 2);
    ASSERT_U64_EQ(s->events[0].ts_unix_nano, 100);
    ASSERT_SLSTR_EQ(s->events[0].name, "ev0");
    ASSERT_EQ(s->events[0].nattrs, 2);
    ASSERT_EQ(s->events[0].dropped_attrs, 1);
    ASSERT_SLSTR_EQ(s->events[0].attrs[0].key, "e");
    ASSERT_EQ(s->events[0].attrs[0].val.type, SL_VAL_ARRAY);
    ASSERT_SLSTR_EQ(s->events[0].attrs[0].val.v.s, "[2]");
    ASSERT_EQ(s->events[0].attrs[1].val.type, SL_VAL_EMPTY);
    ASSERT_U64_EQ(s->events[1].ts_unix_nano, 200);
    ASSERT_EQ(s->events[1].nattrs, 0);
    ASSERT_TRUE(s->events[1].attrs == NULL);

    /* Two links have invalid ids: dropped, and counted. */
    ASSERT_EQ(s->nlinks, 2);
    ASSERT_EQ(s->dropped_links, 3);
    ASSERT_TRUE(id_eq(s->links[0].trace_id, 16, "a1a2a3a4a5a6a7a8a9aaabacadaeafb0"));
    ASSERT_TRUE(id_eq(s->links[0].span_id, 8, "b1b2b3b4b5b6b7b8"));
    ASSERT_SLSTR_EQ(s->links[0].trace_state, "x=y");
    ASSERT_EQ(s->links[0].flags, 1);
    ASSERT_EQ(s->links[0].nattrs, 1);
    ASSERT_EQ(s->links[0].dropped_attrs, 3);
    ASSERT_SLSTR_EQ(s->links[0].attrs[0].key, "l");
    ASSERT_EQ(s->links[0].attrs[0].val.v.b, 1);
    ASSERT_TRUE(id_eq(s->links[1].trace_id, 16, "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0"));
    ASSERT_EQ(s->links[1].nattrs, 0);
}

/* An AnyValue chain of depth nested arrays, built as protobuf-c structs (the
 * JSON decoder would refuse it first). */
static pb_any *deep_value(int depth) {
    pb_any *leaf = sl_arena_alloc(&g_arena, sizeof(pb_any));
    opentelemetry__proto__common__v1__any_value__init(leaf);
    leaf->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    leaf->int_value = 7;
    for (int i = 0; i < depth; i++) {
        pb_any *v = sl_arena_alloc(&g_arena, sizeof(pb_any));
        pb_array *arr = sl_arena_alloc(&g_arena, sizeof(pb_array));
        pb_any **vals = sl_arena_alloc(&g_arena, sizeof(pb_any *));
        opentelemetry__proto__common__v1__any_value__init(v);
        opentelemetry__proto__common__v1__array_value__init(arr);
        vals[0] = leaf;
        arr->n_values = 1;
        arr->values = vals;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = arr;
        leaf = v;
    }
    return leaf;
}

static void test_depth_reject(void) {
    trace_req *r = request("{'resourceSpans':[{'scopeSpans':[{'spans':["
                           "{" IDS ",'attributes':[{'key':'deep'}]},"
                           "{" IDS ",'name':'fine','attributes':[{'key':'ok'}]},"
                           "{" IDS ",'events':[{'attributes':[{'key':'deep'}]}]}]}]}]}");
    ASSERT_TRUE(r != NULL);
    pb_span **ps = r->resource_spans[0]->scope_spans[0]->spans;
    ps[0]->attributes[0]->value = deep_value(COL_TRACES_MAX_VALUE_DEPTH + 1);
    ps[1]->attributes[0]->value = deep_value(COL_TRACES_MAX_VALUE_DEPTH);
    ps[2]->events[0]->attributes[0]->value = deep_value(100000);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 1);
    ASSERT_EQ(g_rejected, 2);
    ASSERT_STR_EQ(g_err, "span 0: attribute value nested deeper than 64 levels");
    ASSERT_SLSTR_EQ(g_spans[0].name, "fine");
    ASSERT_EQ(g_spans[0].attrs[0].val.v.s.len, 2 * COL_TRACES_MAX_VALUE_DEPTH + 1);

    /* Too deep in the resource: every span of that resource goes. */
    r = request("{'resourceSpans':[{'resource':{'attributes':[{'key':'deep'}]},'scopeSpans':[{"
                "'spans':[{" IDS "},{" IDS "}]}]},{'scopeSpans':[{'spans':[{" IDS "}]}]}]}");
    ASSERT_TRUE(r != NULL);
    r->resource_spans[0]->resource->attributes[0]->value = deep_value(70);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 1);
    ASSERT_EQ(g_rejected, 2);
    ASSERT_STR_EQ(g_err, "span 0: resource attribute value nested deeper than 64 levels");
}

static void test_arena_cap(void) {
    trace_req *r =
        span_request(IDS ",'attributes':[{'key':'a','value':{'arrayValue':{'values':"
                         "[{'stringValue':'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}]}}}],"
                         "'events':[{'name':'e'}],'links':[{" IDS "}]");
    ASSERT_TRUE(r != NULL);
    /* One 4 KiB chunk fits under the cap, the next (8 KiB) does not: filling
     * the first chunk k*16 bytes in makes the conversion run out at every
     * point of its work. */
    bool saw_nomem = false, saw_ok = false;
    for (size_t k = 0; k <= 256; k++) {
        sl_arena small;
        sl_arena_init(&small, 4096 + 64);
        for (size_t i = 0; i < k; i++) {
            if (sl_arena_alloc(&small, 16) == NULL) {
                break;
            }
        }
        sl_span *spans = (sl_span *)&small; /* sentinel: must stay untouched on failure */
        size_t n = 99, rej = 99;
        char err[128];
        int rc = col_traces_to_model(r, &small, &spans, &n, &rej, err, sizeof(err));
        sl_arena_free(&small);
        if (rc == 0) {
            saw_ok = true;
            ASSERT_EQ(n, 1);
            ASSERT_EQ(rej, 0);
        } else {
            saw_nomem = true;
            ASSERT_EQ(rc, SL_ENOMEM);
            ASSERT_TRUE(spans == (sl_span *)&small);
            ASSERT_EQ(n, 99);
            ASSERT_EQ(rej, 99);
            ASSERT_TRUE(strstr(err, "out of memory") != NULL);
        }
    }
    ASSERT_TRUE(saw_nomem);
    ASSERT_TRUE(saw_ok);
}

/* The real binary path: JSON -> message -> protobuf bytes -> protobuf-c unpack
 * (into the arena) -> model. */
static void test_from_protobuf(void) {
    trace_req *r = span_request(IDS ",'name':'n','attributes':[{'key':'k','value':{'kvlistValue':"
                                    "{'values':[{'key':'a','value':{'bytesValue':'AQI='}}]}}}],"
                                    "'links':[{" IDS "}],'status':{'code':2}");
    ASSERT_TRUE(r != NULL);
    size_t size = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *p = sl_arena_alloc(&g_arena, size);
    ASSERT_TRUE(p != NULL);
    protobuf_c_message_pack(&r->base, p);
    trace_req *u = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        sl_arena_pb(&g_arena), size, p);
    ASSERT_TRUE(u != NULL);
    ASSERT_EQ(convert(u), 0);
    ASSERT_EQ(g_n, 1);
    ASSERT_SLSTR_EQ(g_spans[0].name, "n");
    ASSERT_SLSTR_EQ(g_spans[0].attrs[0].val.v.s, "{\"a\":\"AQI=\"}");
    ASSERT_EQ(g_spans[0].nlinks, 1);
    ASSERT_EQ(g_spans[0].status_code, SL_STATUS_ERROR);
    ASSERT_SLSTR_EQ(g_spans[0].resource->service, "unknown_service");
}

int main(void) {
    sl_arena_init(&g_arena, 256u << 20);
    RUN(test_example);
    RUN(test_scalar_attrs);
    RUN(test_strings_are_views);
    RUN(test_array_kvlist_json);
    RUN(test_invalid_utf8_in_json_text);
    RUN(test_empty_keyvalue);
    RUN(test_partial_success);
    RUN(test_resources);
    RUN(test_zero_spans);
    RUN(test_kind_status_clamp);
    RUN(test_events_links);
    RUN(test_depth_reject);
    RUN(test_arena_cap);
    RUN(test_from_protobuf);
    sl_arena_free(&g_arena);
    return SL_TEST_RESULT();
}
