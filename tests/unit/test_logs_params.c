/*
 * The /api/logs parameter parser (query/logs_params.c): severities by number
 * and name, unix-ns and RFC 3339 times, ids, limits, directions, and the
 * splitting of `q` into words and phrases; every bad value is SL_EINVAL with
 * a message naming the parameter.
 */
#include "query_int.h"

#include "sl_err.h"
#include "sl_test.h"

static qry_kv g_kv[16];
static qry_args g_args;
static qry_log_params g_p;
static qry_errbuf g_err;
static sl_arena g_arena;

/* Parses "k=v&k=v" (no decoding needed by the cases). */
static int parse(const char *query) {
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s", query);
    g_args.n = 0;
    g_args.kv = g_kv;
    char *p = buf;
    while (*p != '\0' && g_args.n < 16) {
        char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        char *eq = memchr(p, '=', len);
        qry_kv *kv = &g_kv[g_args.n++];
        kv->key = (sl_str){p, eq ? (size_t)(eq - p) : len};
        kv->val = eq ? (sl_str){eq + 1, len - (size_t)(eq - p) - 1} : (sl_str){"", 0};
        p += len + (amp != NULL);
    }
    sl_arena_reset(&g_arena);
    g_err.msg[0] = '\0';
    return qry_parse_log_params(&g_args, &g_arena, &g_p, &g_err);
}

static void test_defaults(void) {
    ASSERT_EQ(parse(""), 0);
    ASSERT_EQ(g_p.q.limit, QRY_LOG_DEFAULT_LIMIT);
    ASSERT_EQ(g_p.q.forward, 0);
    ASSERT_EQ(g_p.q.min_severity, 0);
    ASSERT_EQ(g_p.q.nterms, 0);
    ASSERT_TRUE(g_p.q.trace_id == NULL && g_p.q.span_id == NULL);
    ASSERT_U64_EQ(g_p.q.start_unix_nano, 0);
    ASSERT_U64_EQ(g_p.q.end_unix_nano, 0);
}

static void test_severity(void) {
    static const struct {
        const char *in;
        int want;
    } ok[] = {{"0", 0},    {"17", 17},   {"24", 24},      {"trace", 1},  {"DEBUG", 5},
              {"info", 9}, {"Warn", 13}, {"warning", 13}, {"error", 17}, {"fatal", 21}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char q[64];
        snprintf(q, sizeof(q), "severity=%s", ok[i].in);
        ASSERT_EQ(parse(q), 0);
        ASSERT_EQ(g_p.q.min_severity, ok[i].want);
    }
    static const char *bad[] = {"25", "-1", "infos", "1.5", "0x3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char q[64];
        snprintf(q, sizeof(q), "severity=%s", bad[i]);
        ASSERT_EQ(parse(q), SL_EINVAL);
        ASSERT_TRUE(strstr(g_err.msg, "severity") != NULL);
    }
}

static void test_times(void) {
    ASSERT_EQ(parse("start=1544712660300000000&end=1544712660300000001"), 0);
    ASSERT_U64_EQ(g_p.q.start_unix_nano, 1544712660300000000ull);
    ASSERT_U64_EQ(g_p.q.end_unix_nano, 1544712660300000001ull);
    uint64_t v;
    ASSERT_EQ(qry_parse_time_ns(SL_STR_LIT("2018-12-13T14:51:00.3Z"), &v), 0);
    ASSERT_U64_EQ(v, 1544712660300000000ull);
    ASSERT_EQ(qry_parse_time_ns(SL_STR_LIT("2018-12-13T15:51:00.300000000+01:00"), &v), 0);
    ASSERT_U64_EQ(v, 1544712660300000000ull);
    ASSERT_EQ(qry_parse_time_ns(SL_STR_LIT("1970-01-01T00:00:00Z"), &v), 0);
    ASSERT_U64_EQ(v, 0);
    ASSERT_EQ(qry_parse_time_ns(SL_STR_LIT("2024-02-29T23:59:59.123456789123Z"), &v), 0);
    ASSERT_U64_EQ(v, 1709251199123456789ull);
    static const char *bad[] = {"",
                                "2018-12-13",
                                "2018-12-13T14:51:00",
                                "2018-13-13T14:51:00Z",
                                "2018-02-30T14:51:00Z",
                                "2018-12-13T24:00:00Z",
                                "2018-12-13T14:51:00.Z",
                                "2018-12-13T14:51:00+0100",
                                "1969-12-31T23:59:59Z",
                                "2018-12-13T14:51:00Zjunk",
                                "-5",
                                "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (qry_parse_time_ns(sl_str_c(bad[i]), &v) != SL_EINVAL) {
            SL_FAIL_AT("accepted '%s'", bad[i]);
            return;
        }
    }
    ASSERT_EQ(parse("start=2018-12-13T14:51:00Z&end=2018-12-13T14:50:00Z"), SL_EINVAL);
    ASSERT_EQ(parse("end=yesterday"), SL_EINVAL);
    ASSERT_TRUE(strstr(g_err.msg, "'end'") != NULL);
}

static void test_ids_limit_direction(void) {
    ASSERT_EQ(parse("trace_id=5B8EFFF798038103D269B633813FC60C&span_id=eee19b7ec3c1b174"), 0);
    ASSERT_TRUE(g_p.q.trace_id != NULL && g_p.q.trace_id[0] == 0x5b && g_p.q.trace_id[15] == 0x0c);
    ASSERT_TRUE(g_p.q.span_id != NULL && g_p.q.span_id[7] == 0x74);
    ASSERT_EQ(parse("trace_id=5b8e"), SL_EINVAL);
    ASSERT_EQ(parse("span_id=eee19b7ec3c1b17g"), SL_EINVAL);
    ASSERT_EQ(parse("limit=5000&direction=forward"), 0);
    ASSERT_EQ(g_p.q.limit, 5000);
    ASSERT_EQ(g_p.q.forward, 1);
    ASSERT_EQ(parse("direction=BACKWARD"), 0);
    ASSERT_EQ(g_p.q.forward, 0);
    ASSERT_EQ(parse("limit=5001"), SL_EINVAL);
    ASSERT_EQ(parse("limit=0"), SL_EINVAL);
    ASSERT_EQ(parse("limit=ten"), SL_EINVAL);
    ASSERT_EQ(parse("direction=up"), SL_EINVAL);
    ASSERT_TRUE(strstr(g_err.msg, "direction") != NULL);
}

static void test_terms(void) {
    ASSERT_EQ(parse("q=Payment  FAILED \"Card Declined\" code=51 user. -- \"\""), 0);
    ASSERT_EQ(g_p.q.nterms, 5);
    ASSERT_SLSTR_EQ(g_p.terms[0].text, "payment");
    ASSERT_EQ(g_p.terms[0].phrase, 0);
    ASSERT_SLSTR_EQ(g_p.terms[1].text, "failed");
    ASSERT_SLSTR_EQ(g_p.terms[2].text, "card declined");
    ASSERT_EQ(g_p.terms[2].phrase, 1);
    ASSERT_SLSTR_EQ(g_p.terms[3].text, "code=51");
    ASSERT_EQ(g_p.terms[3].phrase, 1);
    ASSERT_SLSTR_EQ(g_p.terms[4].text, "user");
    ASSERT_EQ(g_p.terms[4].phrase, 0);
    ASSERT_EQ(parse("q=\"unterminated phrase"), SL_EINVAL);
    ASSERT_TRUE(strstr(g_err.msg, "unterminated") != NULL);
    ASSERT_EQ(parse("q=a b c d e f g h i j k l m n o p q"), SL_EINVAL);
    ASSERT_EQ(parse("q=a b c d e f g h i j k l m n o p"), 0);
    ASSERT_EQ(parse("q=%20"), 0);
}

int main(void) {
    sl_arena_init(&g_arena, 1 << 20);
    RUN(test_defaults);
    RUN(test_severity);
    RUN(test_times);
    RUN(test_ids_limit_direction);
    RUN(test_terms);
    sl_arena_free(&g_arena);
    return SL_TEST_RESULT();
}
