/*
 * Unit tests for query/query_params.c: Go durations, lookbacks, trace ids,
 * tags={json} and tag=k:v, and the /api/traces and /api/dependencies
 * parameter sets (defaults, limits, every kind of bad value).
 * Single-threaded.
 */
#include "sl_test.h"

#include "query_int.h"
#include "sl_err.h"

#define NS_US UINT64_C(1000)
#define NS_MS UINT64_C(1000000)
#define NS_S UINT64_C(1000000000)
#define NS_H (UINT64_C(3600) * NS_S)
#define NOW (UINT64_C(1700000000) * NS_S + 123456789)

static uint64_t dur(const char *s) {
    uint64_t v = UINT64_MAX;
    if (qry_parse_duration(sl_str_c(s), &v) != 0) {
        return UINT64_MAX;
    }
    return v;
}

static uint64_t lookback(const char *s) {
    uint64_t v = UINT64_MAX;
    if (qry_parse_lookback(sl_str_c(s), &v) != 0) {
        return UINT64_MAX;
    }
    return v;
}

static void test_duration_valid(void) {
    ASSERT_U64_EQ(dur("0"), 0);
    ASSERT_U64_EQ(dur("+0"), 0);
    ASSERT_U64_EQ(dur("-0"), 0);
    ASSERT_U64_EQ(dur("0s"), 0);
    ASSERT_U64_EQ(dur("1ns"), 1);
    ASSERT_U64_EQ(dur("100us"), 100 * NS_US);
    ASSERT_U64_EQ(dur("1\xc2\xb5s"), NS_US); /* U+00B5 micro sign */
    ASSERT_U64_EQ(dur("1\xce\xbcs"), NS_US); /* U+03BC greek mu */
    ASSERT_U64_EQ(dur("1.5ms"), 1500 * NS_US);
    ASSERT_U64_EQ(dur("2h45m"), 2 * NS_H + 45 * 60 * NS_S);
    ASSERT_U64_EQ(dur("1h1m1s1ms1us1ns"), NS_H + 60 * NS_S + NS_S + NS_MS + NS_US + 1);
    ASSERT_U64_EQ(dur("+5s"), 5 * NS_S);
    ASSERT_U64_EQ(dur(".5s"), 500 * NS_MS);
    ASSERT_U64_EQ(dur("5.s"), 5 * NS_S);
    ASSERT_U64_EQ(dur("1.000000001s"), NS_S + 1);
    ASSERT_U64_EQ(dur("0.1ns"), 0);
    ASSERT_U64_EQ(dur("1.5h"), 90 * 60 * NS_S);
    ASSERT_U64_EQ(dur("007ms"), 7 * NS_MS);
    ASSERT_U64_EQ(dur("9223372036854775807ns"), (uint64_t)INT64_MAX);
    ASSERT_U64_EQ(dur("2562047h"), 2562047 * NS_H);
    /* Fraction digits beyond what fits are ignored, as Go does. */
    ASSERT_U64_EQ(dur("1.00000000000000000000000000001s"), NS_S);
}

static void test_duration_invalid(void) {
    const char *bad[] = {
        "",
        "-",
        "+",
        "5",
        "1.5",
        ".",
        "s",
        ".s",
        "1x",
        "1 s",
        " 1s",
        "1s ",
        "5ms3",
        "-5s",
        "1S",
        "1MS",
        "1d",
        "1w",
        "1e3ms",
        "0x10s",
        "1.2.3s",
        "1h-1m",
        "1µ",
        "1\xc2s",
        "abc",
        "--1s",
        "2562048h",
        "9223372036854775808ns",
        "99999999999999999999h",
        "18446744073709551616ns",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dur(bad[i]) != UINT64_MAX) {
            SL_FAIL_AT("duration \"%s\" accepted", bad[i]);
            return;
        }
    }
}

static void test_lookback(void) {
    ASSERT_U64_EQ(lookback("1h"), NS_H);
    ASSERT_U64_EQ(lookback("2d"), 48 * NS_H);
    ASSERT_U64_EQ(lookback("1w"), 7 * 24 * NS_H);
    ASSERT_U64_EQ(lookback("0.5d"), 12 * NS_H);
    ASSERT_U64_EQ(lookback("15m"), 15 * 60 * NS_S);
    ASSERT_U64_EQ(lookback("1d12h"), 36 * NS_H);
    ASSERT_U64_EQ(lookback("custom"), UINT64_MAX);
    ASSERT_U64_EQ(lookback("2"), UINT64_MAX);
    ASSERT_U64_EQ(lookback("2y"), UINT64_MAX);
    ASSERT_U64_EQ(lookback(""), UINT64_MAX);
}

static void test_trace_id(void) {
    uint8_t id[16];
    uint8_t want[16] = {0};
    want[15] = 1;
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("1"), id), 0);
    ASSERT_TRUE(memcmp(id, want, 16) == 0);

    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("ABCDEF0123456789"), id), 0);
    uint8_t want64[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89};
    ASSERT_TRUE(memcmp(id, want64, 16) == 0);

    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("123"), id), 0);
    ASSERT_EQ(id[14], 0x01);
    ASSERT_EQ(id[15], 0x23);

    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("0102030405060708090a0b0c0d0e0f10"), id), 0);
    ASSERT_EQ(id[0], 1);
    ASSERT_EQ(id[15], 0x10);

    memset(id, 0x5a, sizeof(id));
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("0102030405060708090a0b0c0d0e0f1011"), id), SL_EINVAL);
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT(""), id), SL_EINVAL);
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("xyz"), id), SL_EINVAL);
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("0x12"), id), SL_EINVAL);
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("12 "), id), SL_EINVAL);
    ASSERT_EQ(qry_parse_trace_id(SL_STR_LIT("../etc"), id), SL_EINVAL);
    /* Failures leave the output alone. */
    ASSERT_EQ(id[0], 0x5a);
}

static void test_tag_kv(void) {
    stg_tag t;
    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT("http.status_code:200"), &t), 0);
    ASSERT_SLSTR_EQ(t.key, "http.status_code");
    ASSERT_SLSTR_EQ(t.value, "200");

    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT("http.url:http://x:80/a?b=c"), &t), 0);
    ASSERT_SLSTR_EQ(t.key, "http.url");
    ASSERT_SLSTR_EQ(t.value, "http://x:80/a?b=c");

    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT("k:"), &t), 0);
    ASSERT_SLSTR_EQ(t.key, "k");
    ASSERT_SLSTR_EQ(t.value, "");

    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT("k::"), &t), 0);
    ASSERT_SLSTR_EQ(t.value, ":");

    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT(":v"), &t), SL_EINVAL);
    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT("novalue"), &t), SL_EINVAL);
    ASSERT_EQ(qry_parse_tag_kv(SL_STR_LIT(""), &t), SL_EINVAL);
}

static void test_tags_json(void) {
    sl_arena a;
    stg_tag tags[4];
    size_t n = 0;
    sl_arena_init(&a, 1 << 20);

    ASSERT_EQ(qry_parse_tags_json(SL_STR_LIT("{\"error\":\"true\",\"http.method\":\"GET\"}"), &a,
                                  tags, 4, &n),
              0);
    ASSERT_EQ(n, 2);
    ASSERT_SLSTR_EQ(tags[0].key, "error");
    ASSERT_SLSTR_EQ(tags[0].value, "true");
    ASSERT_SLSTR_EQ(tags[1].key, "http.method");
    ASSERT_SLSTR_EQ(tags[1].value, "GET");

    /* Appends after what is there; escapes and embedded NULs survive. */
    ASSERT_EQ(qry_parse_tags_json(SL_STR_LIT("{\"k\\u00e9\":\"a\\u0000b\"}"), &a, tags, 4, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_SLSTR_EQ(tags[2].key, "k\xc3\xa9");
    ASSERT_EQ(tags[2].value.len, 3);
    ASSERT_TRUE(memcmp(tags[2].value.ptr, "a\0b", 3) == 0);

    n = 0;
    ASSERT_EQ(qry_parse_tags_json(SL_STR_LIT("{}"), &a, tags, 4, &n), 0);
    ASSERT_EQ(n, 0);

    const char *bad[] = {
        "{\"a\":1}", "{\"a\":true}", "{\"a\":null}", "{\"a\":[\"x\"]}", "{\"a\":{\"b\":\"c\"}}",
        "[]",        "\"str\"",      "42",           "{\"a\":\"1\"} x", "{\"a\":\"1\"",
        "",          "{\"\":\"x\"}", "not json",     "{'a':'b'}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 0;
        int rc = qry_parse_tags_json(sl_str_c(bad[i]), &a, tags, 4, &n);
        if (rc != SL_EINVAL || n != 0) {
            SL_FAIL_AT("tags %s: rc %d n %zu", bad[i], rc, n);
            return;
        }
    }
    /* More tags than room. */
    n = 0;
    ASSERT_EQ(
        qry_parse_tags_json(SL_STR_LIT("{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}"), &a, tags, 2, &n),
        SL_EINVAL);
    ASSERT_EQ(n, 0);
    sl_arena_free(&a);
}

/* Builds args from "k=v" strings (the value may be empty; no '=' means none). */
typedef struct test_args {
    qry_kv kv[80];
    qry_args args;
} test_args;

static void make_args(test_args *t, const char *const *pairs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(pairs[i], '=');
        if (eq == NULL) {
            t->kv[i].key = sl_str_c(pairs[i]);
            t->kv[i].val = (sl_str){"", 0};
        } else {
            t->kv[i].key = (sl_str){pairs[i], (size_t)(eq - pairs[i])};
            t->kv[i].val = sl_str_c(eq + 1);
        }
    }
    t->args.kv = t->kv;
    t->args.n = n;
}

#define PARSE(rc_want, ...)                                                                        \
    do {                                                                                           \
        static const char *const pairs_[] = {__VA_ARGS__};                                         \
        make_args(&ta, pairs_, sizeof(pairs_) / sizeof(pairs_[0]));                                \
        memset(&p, 0, sizeof(p));                                                                  \
        err.msg[0] = '\0';                                                                         \
        ASSERT_EQ(qry_parse_trace_params(&ta.args, NOW, 1500, &a, &p, &err), (rc_want));           \
    } while (0)

static void test_trace_params_defaults(void) {
    sl_arena a;
    test_args ta;
    qry_trace_params p;
    qry_errbuf err;
    sl_arena_init(&a, 1 << 20);

    PARSE(0, "service=frontend");
    ASSERT_SLSTR_EQ(p.q.service, "frontend");
    ASSERT_EQ(p.q.operation.len, 0);
    ASSERT_TRUE(p.q.operation.ptr != NULL); /* "" rather than NULL */
    ASSERT_EQ(p.q.limit, 20);
    ASSERT_U64_EQ(p.q.start_max_unix_nano, NOW);
    ASSERT_U64_EQ(p.q.start_min_unix_nano, NOW - NS_H);
    ASSERT_U64_EQ(p.q.min_duration_nano, 0);
    ASSERT_U64_EQ(p.q.max_duration_nano, 0);
    ASSERT_EQ(p.q.ntags, 0);
    ASSERT_EQ(p.ntrace_ids, 0);

    /* Empty values are absent values (Jaeger does the same). */
    PARSE(0, "service=frontend",
          "limit=", "start=", "end=", "minDuration=", "tags=", "tag=", "operation=");
    ASSERT_EQ(p.q.limit, 20);
    ASSERT_EQ(p.q.operation.len, 0);

    PARSE(0, "service=frontend", "lookback=2d");
    ASSERT_U64_EQ(p.q.start_min_unix_nano, NOW - 48 * NS_H);
    PARSE(0, "service=frontend", "lookback=custom");
    ASSERT_U64_EQ(p.q.start_min_unix_nano, NOW - NS_H);
    /* An explicit start wins over lookback. */
    PARSE(0, "service=s", "lookback=2d", "start=1700000000000000", "end=1700000100000000");
    ASSERT_U64_EQ(p.q.start_min_unix_nano, UINT64_C(1700000000000000) * 1000);
    ASSERT_U64_EQ(p.q.start_max_unix_nano, UINT64_C(1700000100000000) * 1000);
    /* end only: start is end - lookback. */
    PARSE(0, "service=s", "end=1700000100000000", "lookback=1m");
    ASSERT_U64_EQ(p.q.start_min_unix_nano, UINT64_C(1700000100000000) * 1000 - 60 * NS_S);
    /* A lookback longer than time itself clamps at the epoch. */
    PARSE(0, "service=s", "end=10", "lookback=1h");
    ASSERT_U64_EQ(p.q.start_min_unix_nano, 1);
    ASSERT_U64_EQ(p.q.start_max_unix_nano, 10 * NS_US);

    PARSE(0, "service=s", "operation=GET /x", "minDuration=1.5ms", "maxDuration=2s", "limit=100");
    ASSERT_SLSTR_EQ(p.q.operation, "GET /x");
    ASSERT_U64_EQ(p.q.min_duration_nano, 1500 * NS_US);
    ASSERT_U64_EQ(p.q.max_duration_nano, 2 * NS_S);
    ASSERT_EQ(p.q.limit, 100);
    PARSE(0, "service=s", "minDuration=1s", "maxDuration=1s");
    sl_arena_free(&a);
}

static void test_trace_params_limits(void) {
    sl_arena a;
    test_args ta;
    qry_trace_params p;
    qry_errbuf err;
    sl_arena_init(&a, 1 << 20);

    PARSE(0, "service=s", "limit=99999");
    ASSERT_EQ(p.q.limit, 1500);
    PARSE(0, "service=s", "limit=1500");
    ASSERT_EQ(p.q.limit, 1500);
    PARSE(0, "service=s", "limit=1");
    ASSERT_EQ(p.q.limit, 1);
    PARSE(SL_EINVAL, "service=s", "limit=99999999999999999999999");
    PARSE(SL_EINVAL, "service=s", "limit=0");
    ASSERT_TRUE(strstr(err.msg, "limit") != NULL);
    PARSE(SL_EINVAL, "service=s", "limit=-3");
    PARSE(SL_EINVAL, "service=s", "limit=abc");
    PARSE(SL_EINVAL, "service=s", "limit=10x");
    PARSE(SL_EINVAL, "service=s", "limit=1.5");
    sl_arena_free(&a);
}

static void test_trace_params_errors(void) {
    sl_arena a;
    test_args ta;
    qry_trace_params p;
    qry_errbuf err;
    sl_arena_init(&a, 1 << 20);

    PARSE(SL_EINVAL, "operation=x");
    ASSERT_STR_EQ(err.msg, "parameter 'service' is required");
    PARSE(SL_EINVAL, "service=");
    PARSE(SL_EINVAL, "service=s", "start=abc");
    ASSERT_TRUE(strstr(err.msg, "'start'") != NULL);
    ASSERT_TRUE(strstr(err.msg, "abc") != NULL);
    PARSE(SL_EINVAL, "service=s", "end=-5");
    PARSE(SL_EINVAL, "service=s", "start=1.5");
    PARSE(SL_EINVAL, "service=s", "start=99999999999999999999");
    PARSE(SL_EINVAL, "service=s", "start=18446744073709552");
    PARSE(SL_EINVAL, "service=s", "start=200", "end=100");
    ASSERT_TRUE(strstr(err.msg, "start") != NULL);
    PARSE(SL_EINVAL, "service=s", "lookback=forever");
    PARSE(SL_EINVAL, "service=s", "minDuration=5");
    ASSERT_TRUE(strstr(err.msg, "minDuration") != NULL);
    PARSE(SL_EINVAL, "service=s", "maxDuration=1y");
    PARSE(SL_EINVAL, "service=s", "minDuration=-1s");
    PARSE(SL_EINVAL, "service=s", "minDuration=2s", "maxDuration=1s");
    ASSERT_TRUE(strstr(err.msg, "maxDuration") != NULL);
    PARSE(SL_EINVAL, "service=s", "tags={\"a\":1}");
    ASSERT_TRUE(strstr(err.msg, "tags") != NULL);
    PARSE(SL_EINVAL, "service=s", "tags=[1]");
    PARSE(SL_EINVAL, "service=s", "tags={broken");
    PARSE(SL_EINVAL, "service=s", "tag=nocolon");
    ASSERT_TRUE(strstr(err.msg, "tag") != NULL);
    PARSE(SL_EINVAL, "service=s", "tag=:v");
    PARSE(SL_EINVAL, "traceID=zz");
    ASSERT_TRUE(strstr(err.msg, "traceID") != NULL);
    PARSE(SL_EINVAL, "traceID=000000000000000000000000000000001");
    /* A long bad value is quoted only in part. */
    PARSE(SL_EINVAL, "service=s",
          "start=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    ASSERT_TRUE(strlen(err.msg) < 200);
    sl_arena_free(&a);
}

static void test_trace_params_tags(void) {
    sl_arena a;
    test_args ta;
    qry_trace_params p;
    qry_errbuf err;
    sl_arena_init(&a, 1 << 20);

    PARSE(0, "service=s", "tags={\"error\":\"true\"}", "tag=http.url:http://h:1/p",
          "tags={\"a\":\"b\"}", "tag=x:");
    ASSERT_EQ(p.q.ntags, 4);
    ASSERT_SLSTR_EQ(p.q.tags[0].key, "error");
    ASSERT_SLSTR_EQ(p.q.tags[0].value, "true");
    ASSERT_SLSTR_EQ(p.q.tags[1].key, "http.url");
    ASSERT_SLSTR_EQ(p.q.tags[1].value, "http://h:1/p");
    ASSERT_SLSTR_EQ(p.q.tags[2].key, "a");
    ASSERT_SLSTR_EQ(p.q.tags[3].key, "x");
    ASSERT_SLSTR_EQ(p.q.tags[3].value, "");

    /* At most QRY_MAX_TAGS tags. */
    {
        static char bufs[QRY_MAX_TAGS + 1][24];
        const char *pairs[QRY_MAX_TAGS + 2];
        pairs[0] = "service=s";
        for (int i = 0; i <= QRY_MAX_TAGS; i++) {
            snprintf(bufs[i], sizeof(bufs[i]), "tag=k%d:v", i);
            pairs[i + 1] = bufs[i];
        }
        make_args(&ta, pairs, QRY_MAX_TAGS + 1);
        ASSERT_EQ(qry_parse_trace_params(&ta.args, NOW, 1500, &a, &p, &err), 0);
        ASSERT_EQ(p.q.ntags, QRY_MAX_TAGS);
        make_args(&ta, pairs, QRY_MAX_TAGS + 2);
        ASSERT_EQ(qry_parse_trace_params(&ta.args, NOW, 1500, &a, &p, &err), SL_EINVAL);
    }
    sl_arena_free(&a);
}

static void test_trace_params_ids(void) {
    sl_arena a;
    test_args ta;
    qry_trace_params p;
    qry_errbuf err;
    sl_arena_init(&a, 1 << 20);

    /* traceID makes service optional; repeated ids are all kept. */
    PARSE(0, "traceID=1", "traceID=ABCDEF0123456789abcdef0123456789", "traceID=");
    ASSERT_EQ(p.ntrace_ids, 2);
    ASSERT_EQ(p.trace_ids[0][15], 1);
    ASSERT_EQ(p.trace_ids[1][0], 0xab);
    ASSERT_EQ(p.trace_ids[1][15], 0x89);

    {
        const char *pairs[3] = {"traceID=1", "traceID=2", "traceID=3"};
        make_args(&ta, pairs, 3);
        ASSERT_EQ(qry_parse_trace_params(&ta.args, NOW, 2, &a, &p, &err), SL_EINVAL);
        ASSERT_EQ(qry_parse_trace_params(&ta.args, NOW, 3, &a, &p, &err), 0);
        ASSERT_EQ(p.ntrace_ids, 3);
    }
    sl_arena_free(&a);
}

static void test_deps_params(void) {
    test_args ta;
    qry_errbuf err;
    uint64_t start = 0;
    uint64_t end = 0;

    make_args(&ta, NULL, 0);
    ASSERT_EQ(qry_parse_deps_params(&ta.args, NOW, &start, &end, &err), 0);
    ASSERT_U64_EQ(end, NOW / NS_MS * NS_MS);
    ASSERT_U64_EQ(start, end - 24 * NS_H);

    {
        const char *pairs[] = {"endTs=1700000000000", "lookback=60000"};
        make_args(&ta, pairs, 2);
        ASSERT_EQ(qry_parse_deps_params(&ta.args, NOW, &start, &end, &err), 0);
        ASSERT_U64_EQ(end, UINT64_C(1700000000000) * NS_MS);
        ASSERT_U64_EQ(start, end - 60 * NS_S);
    }
    {
        const char *pairs[] = {"endTs=1000", "lookback=604800000"};
        make_args(&ta, pairs, 2);
        ASSERT_EQ(qry_parse_deps_params(&ta.args, NOW, &start, &end, &err), 0);
        ASSERT_U64_EQ(start, 1);
        ASSERT_U64_EQ(end, 1000 * NS_MS);
    }
    {
        const char *pairs[] = {"endTs=0"};
        make_args(&ta, pairs, 1);
        ASSERT_EQ(qry_parse_deps_params(&ta.args, NOW, &start, &end, &err), 0);
        ASSERT_TRUE(start != 0 && end != 0 && start <= end);
    }
    const char *bad[][1] = {{"endTs=abc"},    {"lookback=1h"},
                            {"endTs=-1"},     {"endTs=99999999999999999999"},
                            {"lookback=1.5"}, {"endTs=18446744073710"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make_args(&ta, bad[i], 1);
        if (qry_parse_deps_params(&ta.args, NOW, &start, &end, &err) != SL_EINVAL) {
            SL_FAIL_AT("deps %s accepted", bad[i][0]);
            return;
        }
    }
}

static void test_args_get(void) {
    test_args ta;
    sl_str v;
    const char *pairs[] = {"a=", "a=1", "a=2", "b"};
    make_args(&ta, pairs, 4);
    ASSERT_EQ(qry_args_get(&ta.args, "a", &v), 1);
    ASSERT_SLSTR_EQ(v, "1");
    ASSERT_EQ(qry_args_get(&ta.args, "b", &v), 0);
    ASSERT_EQ(qry_args_get(&ta.args, "c", &v), 0);
}

int main(void) {
    RUN(test_duration_valid);
    RUN(test_duration_invalid);
    RUN(test_lookback);
    RUN(test_trace_id);
    RUN(test_tag_kv);
    RUN(test_tags_json);
    RUN(test_trace_params_defaults);
    RUN(test_trace_params_limits);
    RUN(test_trace_params_errors);
    RUN(test_trace_params_tags);
    RUN(test_trace_params_ids);
    RUN(test_deps_params);
    RUN(test_args_get);
    return SL_TEST_RESULT();
}
