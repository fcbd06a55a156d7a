/*
 * Tests for collector/decode_logs.c: OTLP logs request -> sl_log_record.
 * Requests are OTLP/JSON (single quotes, see q()) decoded with
 * col_json_decode: the spec example, every field, every body type, the time
 * fallbacks and partial success for invalid records.
 *
 * Single-threaded.
 */
#include "decode_logs.h"
#include "otlp_json.h"

#include "sl_arena.h"
#include "sl_err.h"
#include "sl_test.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;

#define LOGS_DESC opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor
#define NOW 1700000000000000000ull

static sl_arena g_arena;
static char g_err[256];
static char g_json[1 << 16];
static sl_log_record *g_recs;
static size_t g_n, g_rejected;

static logs_req *request(const char *sq) {
    size_t n = strlen(sq);
    if (n >= sizeof(g_json)) {
        abort();
    }
    memcpy(g_json, sq, n + 1);
    for (char *p = strchr(g_json, '\''); p != NULL; p = strchr(p + 1, '\'')) {
        *p = '"';
    }
    sl_arena_reset(&g_arena);
    ProtobufCMessage *m = NULL;
    char err[256];
    if (col_json_decode(&LOGS_DESC, g_json, n, &g_arena, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "  bad test JSON: %s\n", err);
        return NULL;
    }
    return (logs_req *)m;
}

static int convert(const logs_req *r) {
    g_recs = NULL;
    g_n = g_rejected = 0;
    return col_logs_to_model(r, &g_arena, NOW, &g_recs, &g_n, &g_rejected, g_err, sizeof(g_err));
}

/* One resource/scope with the given records. */
static logs_req *records(const char *recs) {
    char buf[8192];
    snprintf(buf, sizeof(buf),
             "{'resourceLogs':[{'resource':{'attributes':[{'key':'service.name','value':{"
             "'stringValue':'svc'}},{'key':'host.name','value':{'stringValue':'h1'}}]},"
             "'scopeLogs':[{'scope':{'name':'lib','version':'2'},'logRecords':[%s]}]}]}",
             recs);
    return request(buf);
}

static void test_spec_example(void) {
    char path[512];
    static char file[1 << 16];
    snprintf(path, sizeof(path), "%s/logs.json", SL_TEST_OTLP_DIR);
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    sl_arena_reset(&g_arena);
    ProtobufCMessage *m = NULL;
    ASSERT_EQ(col_json_decode(&LOGS_DESC, file, n, &g_arena, &m, g_err, sizeof(g_err)), 0);
    ASSERT_EQ(convert((logs_req *)m), 0);
    ASSERT_EQ(g_n, 1);
    ASSERT_EQ(g_rejected, 0);
    const sl_log_record *r = &g_recs[0];
    ASSERT_U64_EQ(r->time_unix_nano, 1544712660300000000ull);
    ASSERT_U64_EQ(r->observed_unix_nano, 1544712660300000000ull);
    ASSERT_EQ(r->severity_number, 10);
    ASSERT_SLSTR_EQ(r->severity_text, "Information");
    ASSERT_EQ(r->trace_id[0], 0x5b);
    ASSERT_EQ(r->span_id[7], 0x74);
    ASSERT_EQ(r->body.type, SL_VAL_STR);
    ASSERT_SLSTR_EQ(r->body.v.s, "Example log record");
    ASSERT_SLSTR_EQ(r->resource->service, "my.service");
    ASSERT_SLSTR_EQ(r->scope_name, "my.library");
    ASSERT_SLSTR_EQ(r->scope_version, "1.0.0");
    ASSERT_EQ(r->nattrs, 6);
    ASSERT_EQ(r->attrs[4].val.type, SL_VAL_ARRAY);
    ASSERT_SLSTR_EQ(r->attrs[4].val.v.s, "[\"many\",\"values\"]");
    ASSERT_EQ(r->attrs[5].val.type, SL_VAL_KVLIST);
    ASSERT_SLSTR_EQ(r->attrs[5].val.v.s, "{\"some.map.key\":\"some value\"}");
}

static void test_every_field(void) {
    logs_req *r = records("{'timeUnixNano':'5','observedTimeUnixNano':'6','severityNumber':17,"
                          "'severityText':'ERROR','body':{'stringValue':'boom'},"
                          "'attributes':[{'key':'k','value':{'intValue':'-3'}}],"
                          "'droppedAttributesCount':2,'flags':1,"
                          "'traceId':'0102030405060708090a0b0c0d0e0f10',"
                          "'spanId':'1112131415161718','eventName':'app.crash'}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 1);
    const sl_log_record *l = &g_recs[0];
    ASSERT_U64_EQ(l->time_unix_nano, 5);
    ASSERT_U64_EQ(l->observed_unix_nano, 6);
    ASSERT_EQ(l->severity_number, 17);
    ASSERT_SLSTR_EQ(l->severity_text, "ERROR");
    ASSERT_EQ(l->nattrs, 1);
    ASSERT_EQ(l->attrs[0].val.v.i, -3);
    ASSERT_EQ(l->dropped_attrs, 2);
    ASSERT_EQ(l->flags, 1);
    ASSERT_EQ(l->trace_id[15], 0x10);
    ASSERT_EQ(l->span_id[0], 0x11);
    ASSERT_SLSTR_EQ(l->event_name, "app.crash");
    ASSERT_SLSTR_EQ(l->resource->service, "svc");
    ASSERT_EQ(l->resource->nattrs, 2);
    ASSERT_SLSTR_EQ(l->scope_name, "lib");
    ASSERT_SLSTR_EQ(l->scope_version, "2");
}

static void test_body_types(void) {
    logs_req *r =
        records("{'body':{'stringValue':'s'}},{'body':{'intValue':'42'}},"
                "{'body':{'doubleValue':1.5}},{'body':{'boolValue':true}},"
                "{'body':{'bytesValue':'AAH/'}},"
                "{'body':{'arrayValue':{'values':[{'intValue':'1'},{'stringValue':'x'}]}}},"
                "{'body':{'kvlistValue':{'values':[{'key':'a','value':{'boolValue':false}}]}}},"
                "{}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 8);
    ASSERT_EQ(g_recs[0].body.type, SL_VAL_STR);
    ASSERT_EQ(g_recs[1].body.type, SL_VAL_INT);
    ASSERT_EQ(g_recs[1].body.v.i, 42);
    ASSERT_EQ(g_recs[2].body.type, SL_VAL_DOUBLE);
    ASSERT_DBL_EQ(g_recs[2].body.v.d, 1.5);
    ASSERT_EQ(g_recs[3].body.type, SL_VAL_BOOL);
    ASSERT_EQ(g_recs[4].body.type, SL_VAL_BYTES);
    ASSERT_EQ(g_recs[4].body.v.s.len, 3);
    ASSERT_EQ((uint8_t)g_recs[4].body.v.s.ptr[2], 0xff);
    ASSERT_EQ(g_recs[5].body.type, SL_VAL_ARRAY);
    ASSERT_SLSTR_EQ(g_recs[5].body.v.s, "[1,\"x\"]");
    ASSERT_EQ(g_recs[6].body.type, SL_VAL_KVLIST);
    ASSERT_SLSTR_EQ(g_recs[6].body.v.s, "{\"a\":false}");
    ASSERT_EQ(g_recs[7].body.type, SL_VAL_EMPTY);
}

static void test_time_fallbacks(void) {
    logs_req *r = records("{'observedTimeUnixNano':'77'},{'timeUnixNano':'88'},{}");
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 3);
    ASSERT_U64_EQ(g_recs[0].time_unix_nano, 77);
    ASSERT_U64_EQ(g_recs[0].observed_unix_nano, 77);
    ASSERT_U64_EQ(g_recs[1].time_unix_nano, 88);
    ASSERT_U64_EQ(g_recs[1].observed_unix_nano, NOW);
    ASSERT_U64_EQ(g_recs[2].time_unix_nano, NOW);
    ASSERT_U64_EQ(g_recs[2].observed_unix_nano, NOW);
}

static void test_partial_success(void) {
    /* OTLP/JSON refuses bad id lengths itself; protobuf senders do not, so
     * the decoded structs are patched to what such a sender produces. */
    logs_req *r =
        records("{'body':{'stringValue':'ok'}},"
                "{'traceId':'0102030405060708090a0b0c0d0e0f10'},"
                "{'spanId':'1112131415161718'},{'severityNumber':25},"
                "{'traceId':'00000000000000000000000000000000','body':{'stringValue':'z'}}");
    ASSERT_TRUE(r != NULL);
    Opentelemetry__Proto__Logs__V1__LogRecord **l = r->resource_logs[0]->scope_logs[0]->log_records;
    l[1]->trace_id.len = 15;
    l[2]->span_id.len = 7;
    ASSERT_EQ(convert(r), 0);
    ASSERT_EQ(g_n, 2);
    ASSERT_EQ(g_rejected, 3);
    ASSERT_TRUE(strstr(g_err, "log record 1") != NULL && strstr(g_err, "trace_id") != NULL);
    ASSERT_TRUE(sl_is_zero(g_recs[1].trace_id, 16));
}

static void test_arena_limit(void) {
    logs_req *r = records("{'body':{'stringValue':'a'}},{'body':{'stringValue':'b'}}");
    ASSERT_TRUE(r != NULL);
    sl_arena tiny;
    sl_arena_init(&tiny, 64);
    sl_log_record *recs = NULL;
    size_t n = 0, rej = 0;
    ASSERT_EQ(col_logs_to_model(r, &tiny, NOW, &recs, &n, &rej, g_err, sizeof(g_err)), SL_ENOMEM);
    ASSERT_EQ(n, 0);
    sl_arena_free(&tiny);
}

int main(void) {
    sl_arena_init(&g_arena, 64u << 20);
    RUN(test_spec_example);
    RUN(test_every_field);
    RUN(test_body_types);
    RUN(test_time_fallbacks);
    RUN(test_partial_success);
    RUN(test_arena_limit);
    sl_arena_free(&g_arena);
    return SL_TEST_RESULT();
}
