/*
 * The log block codec (storage/logs_codec.c): round trips of every record
 * field and every body type, body templates with awkward numbers and marker
 * bytes, resource deduplication, corrupt input, and the token filter and
 * phrase matching that full-text search relies on.
 */
#include "logs_codec.h"
#include "sl_err.h"
#include "sl_test.h"

#include <math.h>

static sl_resource g_res_a = {{"checkout", 8}, NULL, 0, 0};
static sl_attr g_res_b_attrs[] = {
    {{"service.name", 12}, {.type = SL_VAL_STR, .v.s = {"payments", 8}}},
    {{"host.cores", 10}, {.type = SL_VAL_INT, .v.i = 8}},
};
static sl_resource g_res_b = {{"payments", 8}, g_res_b_attrs, 2, 3};

/* Compares two records field by field; returns the first differing field. */
static const char *record_diff(const sl_log_record *a, const sl_log_record *b) {
    if (a->time_unix_nano != b->time_unix_nano) {
        return "time";
    }
    if (a->observed_unix_nano != b->observed_unix_nano) {
        return "observed";
    }
    if (a->severity_number != b->severity_number ||
        !sl_str_eq(a->severity_text, b->severity_text)) {
        return "severity";
    }
    if (a->flags != b->flags || !sl_str_eq(a->event_name, b->event_name)) {
        return "flags/event";
    }
    if (memcmp(a->trace_id, b->trace_id, 16) != 0 || memcmp(a->span_id, b->span_id, 8) != 0) {
        return "ids";
    }
    if (!sl_str_eq(a->scope_name, b->scope_name) ||
        !sl_str_eq(a->scope_version, b->scope_version)) {
        return "scope";
    }
    if (!sl_value_eq(&a->body, &b->body)) {
        return "body";
    }
    if (a->nattrs != b->nattrs || a->dropped_attrs != b->dropped_attrs) {
        return "attr count";
    }
    for (uint32_t i = 0; i < a->nattrs; i++) {
        if (!sl_str_eq(a->attrs[i].key, b->attrs[i].key) ||
            !sl_value_eq(&a->attrs[i].val, &b->attrs[i].val)) {
            return "attr";
        }
    }
    const sl_resource *ra = a->resource, *rb = b->resource;
    if (!sl_str_eq(ra->service, rb->service) || ra->nattrs != rb->nattrs ||
        ra->dropped_attrs != rb->dropped_attrs) {
        return "resource";
    }
    for (uint32_t i = 0; i < ra->nattrs; i++) {
        if (!sl_str_eq(ra->attrs[i].key, rb->attrs[i].key) ||
            !sl_value_eq(&ra->attrs[i].val, &rb->attrs[i].val)) {
            return "resource attr";
        }
    }
    return NULL;
}

static sl_attr g_attrs[] = {
    {{"user", 4}, {.type = SL_VAL_STR, .v.s = {"alice", 5}}},
    {{"ok", 2}, {.type = SL_VAL_BOOL, .v.b = 1}},
    {{"n", 1}, {.type = SL_VAL_INT, .v.i = -1234567890123ll}},
    {{"ratio", 5}, {.type = SL_VAL_DOUBLE, .v.d = 0.1}},
    {{"list", 4}, {.type = SL_VAL_ARRAY, .v.s = {"[\"a\",1]", 7}}},
    {{"map", 3}, {.type = SL_VAL_KVLIST, .v.s = {"{\"k\":\"v\"}", 9}}},
    {{"raw", 3}, {.type = SL_VAL_BYTES, .v.s = {"\x00\x01\xff", 3}}},
    {{"none", 4}, {.type = SL_VAL_EMPTY}},
};

/* A long attribute value (past the dictionary's size limit). */
static char g_long[300];

static void fill(sl_log_record *r, int i) {
    memset(r, 0, sizeof(*r));
    r->time_unix_nano = 1700000000000000000ull + (uint64_t)i * 1000003u;
    r->observed_unix_nano = i % 3 == 0 ? r->time_unix_nano : r->time_unix_nano - 5000;
    r->severity_number = i % 25;
    r->severity_text = i % 2 ? SL_STR_LIT("INFO") : SL_STR_LIT("");
    r->flags = (uint32_t)(i % 2);
    r->event_name = i == 3 ? SL_STR_LIT("user.login") : SL_STR_LIT("");
    if (i % 4 != 0) {
        for (int k = 0; k < 16; k++) {
            r->trace_id[k] = (uint8_t)(k + i / 8 + 1);
        }
        for (int k = 0; k < 8; k++) {
            r->span_id[k] = (uint8_t)(k * 3 + i);
        }
    }
    r->scope_name = SL_STR_LIT("my.library");
    r->scope_version = i % 2 ? SL_STR_LIT("1.0.0") : SL_STR_LIT("");
    r->resource = i % 3 ? &g_res_a : &g_res_b;
    r->attrs = g_attrs;
    r->nattrs = (uint32_t)(i % 9);
    r->dropped_attrs = (uint32_t)i % 2;
    switch (i % 8) {
    case 0:
        r->body =
            (sl_value){.type = SL_VAL_STR, .v.s = SL_STR_LIT("order 12345 paid in 35ms by 007 x")};
        break;
    case 1:
        r->body = (sl_value){.type = SL_VAL_INT, .v.i = INT64_MIN};
        break;
    case 2:
        r->body = (sl_value){.type = SL_VAL_DOUBLE, .v.d = -2.5e-300};
        break;
    case 3:
        r->body = (sl_value){.type = SL_VAL_BOOL, .v.b = 0};
        break;
    case 4:
        r->body = (sl_value){.type = SL_VAL_ARRAY, .v.s = SL_STR_LIT("[1,{\"a\":null}]")};
        break;
    case 5:
        r->body = (sl_value){.type = SL_VAL_KVLIST, .v.s = SL_STR_LIT("{\"m\":[true]}")};
        break;
    case 6:
        r->body = (sl_value){.type = SL_VAL_BYTES, .v.s = {"\x11\x12\x00z", 4}};
        break;
    default:
        r->body = (sl_value){.type = SL_VAL_EMPTY};
        break;
    }
}

static void roundtrip(sl_log_record *recs, size_t n, size_t *size_out) {
    const sl_log_record **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = &recs[i];
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_logs_encode(ptrs, n, 3, &b), 0);
    ASSERT_EQ(stg_logs_count(b.data, b.len), n);
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_log_record *out = NULL;
    size_t got = 99, raw = 0;
    ASSERT_EQ(stg_logs_decode(b.data, b.len, &a, &out, &got, &raw), 0);
    ASSERT_EQ(got, n);
    ASSERT_TRUE(raw > 0);
    for (size_t i = 0; i < n; i++) {
        const char *d = record_diff(&recs[i], &out[i]);
        if (d != NULL) {
            SL_FAIL_AT("record %zu differs in %s", i, d);
            break;
        }
    }
    if (size_out != NULL) {
        *size_out = b.len;
    }
    sl_arena_free(&a);
    sl_buf_free(&b);
    free(ptrs);
}

static void test_every_field_and_body_type(void) {
    enum { N = 64 };
    static sl_log_record recs[N];
    for (int i = 0; i < N; i++) {
        fill(&recs[i], i);
    }
    /* A long string attribute and a long body. */
    memset(g_long, 'q', sizeof(g_long));
    static sl_attr long_attr = {{"long", 4}, {.type = SL_VAL_STR, .v.s = {g_long, sizeof(g_long)}}};
    recs[9].attrs = &long_attr;
    recs[9].nattrs = 1;
    recs[16].body = (sl_value){.type = SL_VAL_STR, .v.s = {g_long, sizeof(g_long)}};
    /* Time going backwards and an observed time before the epoch-ish. */
    recs[10].time_unix_nano = 5;
    recs[11].time_unix_nano = UINT64_MAX;
    recs[11].observed_unix_nano = 0;
    recs[12].severity_number = -7;
    roundtrip(recs, N, NULL);
}

static void test_body_templates(void) {
    static const char *bodies[] = {
        "",
        "0",
        "007",
        "x0y",
        "12345678901234567890123", /* too long for a number: kept as text */
        "999999999999999999",      /* 18 digits: lifted */
        "a\x11"
        "b\x12"
        "c 42 \x12\x11",
        "user 42 logged in after 1500 ms; attempt 3 of 003",
        "trailing 9",
        "\xe2\x82\xac 12 \xe2\x82\xac",
    };
    enum { N = sizeof(bodies) / sizeof(bodies[0]) };
    sl_log_record recs[N];
    for (size_t i = 0; i < N; i++) {
        fill(&recs[i], 0);
        recs[i].body = (sl_value){.type = SL_VAL_STR, .v.s = sl_str_c(bodies[i])};
    }
    roundtrip(recs, N, NULL);
}

static void test_templates_share_dictionary(void) {
    /* 2000 lines from one template with varying numbers: far smaller than
     * the same count of lines that differ in their words. */
    enum { N = 2000 };
    static sl_log_record recs[N];
    static char bodies[N][64];
    for (int i = 0; i < N; i++) {
        fill(&recs[i], 0);
        snprintf(bodies[i], sizeof(bodies[i]), "request %d served in %d ms", i * 7919 % 100000,
                 i % 300);
        recs[i].body = (sl_value){.type = SL_VAL_STR, .v.s = sl_str_c(bodies[i])};
        recs[i].nattrs = 0;
    }
    size_t size = 0;
    roundtrip(recs, N, &size);
    ASSERT_TRUE(size < (size_t)N * 8);
}

static void test_empty_block(void) {
    roundtrip(NULL, 0, NULL);
}

static void test_resources_deduplicated(void) {
    enum { N = 100 };
    static sl_log_record recs[N];
    static sl_resource copies[N];
    for (int i = 0; i < N; i++) {
        fill(&recs[i], 0);
        copies[i] = g_res_b; /* same content, distinct pointers */
        recs[i].resource = &copies[i];
    }
    const sl_log_record *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = &recs[i];
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_logs_encode(ptrs, N, 3, &b), 0);
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_log_record *out;
    size_t n;
    ASSERT_EQ(stg_logs_decode(b.data, b.len, &a, &out, &n, NULL), 0);
    ASSERT_TRUE(out[0].resource == out[N - 1].resource);
    ASSERT_SLSTR_EQ(out[5].resource->service, "payments");
    sl_arena_free(&a);
    sl_buf_free(&b);
}

static void test_corrupt_input(void) {
    enum { N = 16 };
    sl_log_record recs[N];
    const sl_log_record *ptrs[N];
    for (int i = 0; i < N; i++) {
        fill(&recs[i], i);
        ptrs[i] = &recs[i];
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_logs_encode(ptrs, N, 1, &b), 0);
    sl_arena a;
    sl_arena_init(&a, 1 << 20);
    sl_log_record *out;
    size_t n;
    for (size_t cut = 0; cut < b.len; cut++) {
        ASSERT_TRUE(stg_logs_decode(b.data, cut, &a, &out, &n, NULL) != 0);
        sl_arena_reset(&a);
    }
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x5a;
        int rc = stg_logs_decode(b.data, b.len, &a, &out, &n, NULL);
        ASSERT_TRUE(rc == SL_ECORRUPT || rc == 0);
        b.data[i] ^= 0x5a;
        sl_arena_reset(&a);
    }
    sl_arena_free(&a);
    sl_buf_free(&b);
}

static void test_bloom(void) {
    enum { N = 500 };
    static sl_log_record recs[N];
    static char bodies[N][64];
    const sl_log_record *ptrs[N];
    for (int i = 0; i < N; i++) {
        fill(&recs[i], 0);
        snprintf(bodies[i], sizeof(bodies[i]), "Payment FAILED for user-%d", i);
        recs[i].body = (sl_value){.type = SL_VAL_STR, .v.s = sl_str_c(bodies[i])};
        recs[i].nattrs = 1; /* user=alice */
        ptrs[i] = &recs[i];
    }
    sl_buf f;
    sl_buf_init(&f, 0);
    ASSERT_EQ(stg_logs_bloom_build(ptrs, N, &f), 0);
    static const char *present[] = {"payment", "failed", "FAILED", "user", "499", "0", "alice"};
    for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
        uint64_t h = stg_logs_token_hash(present[i], strlen(present[i]));
        ASSERT_TRUE(stg_logs_bloom_maybe(f.data, f.len, h));
    }
    int false_pos = 0;
    for (int i = 0; i < 1000; i++) {
        char w[32];
        snprintf(w, sizeof(w), "absent%d", i);
        false_pos += stg_logs_bloom_maybe(f.data, f.len, stg_logs_token_hash(w, strlen(w)));
    }
    ASSERT_TRUE(false_pos < 50);
    /* A malformed filter never excludes. */
    ASSERT_TRUE(stg_logs_bloom_maybe(f.data, f.len - 1, 1));
    ASSERT_TRUE(stg_logs_bloom_maybe(NULL, 0, 1));
    sl_buf_free(&f);
}

static void test_phrases_and_tokens(void) {
    sl_str text = SL_STR_LIT("Payment failed: card DECLINED (code=51) prepayment");
    ASSERT_TRUE(stg_logs_phrase_in(text, SL_STR_LIT("payment failed")));
    ASSERT_TRUE(stg_logs_phrase_in(text, SL_STR_LIT("card declined")));
    ASSERT_TRUE(stg_logs_phrase_in(text, SL_STR_LIT("code=51")));
    ASSERT_TRUE(stg_logs_phrase_in(text, SL_STR_LIT("failed: card")));
    ASSERT_TRUE(!stg_logs_phrase_in(text, SL_STR_LIT("ayment failed")));
    ASSERT_TRUE(!stg_logs_phrase_in(text, SL_STR_LIT("code=5")));
    ASSERT_TRUE(!stg_logs_phrase_in(text, SL_STR_LIT("card failed")));
    ASSERT_TRUE(stg_logs_token_in(text, SL_STR_LIT("prepayment")));
    ASSERT_TRUE(stg_logs_token_in(text, SL_STR_LIT("51")));
    ASSERT_TRUE(!stg_logs_token_in(text, SL_STR_LIT("5")));
    ASSERT_TRUE(!stg_logs_token_in(text, SL_STR_LIT("pay")));
    ASSERT_TRUE(!stg_logs_token_in(text, SL_STR_LIT("")));
    ASSERT_TRUE(stg_logs_token_hash("Hello", 5) == stg_logs_token_hash("hELLO", 5));
}

int main(void) {
    RUN(test_every_field_and_body_type);
    RUN(test_body_templates);
    RUN(test_templates_share_dictionary);
    RUN(test_empty_block);
    RUN(test_resources_deduplicated);
    RUN(test_corrupt_input);
    RUN(test_bloom);
    RUN(test_phrases_and_tokens);
    return SL_TEST_RESULT();
}
