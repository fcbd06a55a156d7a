/*
 * Unit tests of the PromQL engine over the in-memory querier: parse errors
 * with positions, operator precedence, lookback and staleness, rate
 * extrapolation, vector matching, aggregation, range queries, number
 * formatting. The differential test against Prometheus covers the breadth.
 */
#include "memq.h"
#include "promql.h"
#include "sl_err.h"
#include "sl_test.h"

#include <math.h>
#include <string.h>

static memq *g_mq;

/* Evaluates text at t_ms (instant) or over [start, end] (range, step > 0). */
static int eval_q(const char *text, int64_t start, int64_t end, int64_t step, pq_query **q,
                  pq_result *r, pq_error *err) {
    pq_querier qr = memq_querier(g_mq);
    pq_eval_opts o;
    pq_eval_opts_init(&o);
    o.start_ms = start;
    o.end_ms = end;
    o.step_ms = step;
    int rc = pq_parse(sl_str_c(text), q, err);
    if (rc != 0) {
        return rc;
    }
    return pq_eval(*q, &qr, &o, r, err);
}

/* The single value of an instant query (scalar or one-element vector), or
 * NaN with a failure when the result has another shape. */
static double value_at(const char *text, int64_t t) {
    pq_query *q = NULL;
    pq_result r;
    pq_error err;
    double v = NAN;
    if (eval_q(text, t, t, 0, &q, &r, &err) != 0) {
        fprintf(stderr, "%s: %s\n", text, err.msg);
    } else if (r.type == PQ_SCALAR) {
        v = r.scalar.v;
    } else if (r.type == PQ_VECTOR && r.nseries == 1) {
        v = r.series[0].points[0].v;
    } else {
        fprintf(stderr, "%s: %zu series\n", text, r.nseries);
    }
    pq_query_free(q);
    return v;
}

static size_t count_at(const char *text, int64_t t) {
    pq_query *q = NULL;
    pq_result r;
    pq_error err;
    size_t n = SIZE_MAX;
    if (eval_q(text, t, t, 0, &q, &r, &err) == 0) {
        n = r.nseries;
    } else {
        fprintf(stderr, "%s: %s\n", text, err.msg);
    }
    pq_query_free(q);
    return n;
}

#define PARSE_ERR(text, prefix)                                                                    \
    do {                                                                                           \
        pq_query *q_ = NULL;                                                                       \
        pq_error e_;                                                                               \
        int rc_ = pq_parse(sl_str_c(text), &q_, &e_);                                              \
        pq_query_free(q_);                                                                         \
        ASSERT_TRUE(rc_ != 0);                                                                     \
        ASSERT_EQ(e_.kind, PQ_ERR_BAD_DATA);                                                       \
        if (strncmp(e_.msg, prefix, strlen(prefix)) != 0) {                                        \
            SL_FAIL_AT("%s: error \"%s\" does not start with \"%s\"", text, e_.msg, prefix);       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define NEAR(a, b)                                                                                 \
    do {                                                                                           \
        double x_ = (a), y_ = (b);                                                                 \
        if (!(fabs(x_ - y_) <= 1e-9 * fmax(1, fabs(y_)))) {                                        \
            SL_FAIL_AT("%s: %.17g != %.17g", #a, x_, y_);                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void test_parse_errors(void) {
    PARSE_ERR("sum(", "1:5: parse error:");
    PARSE_ERR("foo{", "1:5: parse error:");
    PARSE_ERR("1 +", "1:4: parse error:");
    PARSE_ERR("rate(foo)", "1:6: parse error: expected type range vector");
    PARSE_ERR("foo[5m] + 1", "1:1: parse error: binary expression must contain only");
    PARSE_ERR("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL");
    PARSE_ERR("{}", "1:1: parse error: vector selector must contain at least one non-empty");
    PARSE_ERR("foo{a=~\"(\"}", "1:8: parse error: error parsing regexp");
    PARSE_ERR("nosuchfn(foo)", "1:1: parse error: unknown function");
    PARSE_ERR("foo\n  + * 2", "2:5: parse error:");
    PARSE_ERR("rate(foo[5m]) offset 1m", "1:15: parse error: offset modifier must be preceded");
    PARSE_ERR("foo and 1", "1:5: parse error: set operator \"and\" not allowed");
    PARSE_ERR("sum by (a) (foo) by (b)", "1:");
    PARSE_ERR("foo[5x]", "1:5: parse error: bad duration");
    PARSE_ERR("\"unterminated", "1:1: parse error: unterminated quoted string");
}

static void test_precedence(void) {
    NEAR(value_at("-2 ^ 2", 0), -4);
    NEAR(value_at("2 ^ 3 ^ 2", 0), 512);
    NEAR(value_at("1 + 2 * 3", 0), 7);
    NEAR(value_at("(1 + 2) * 3", 0), 9);
    NEAR(value_at("10 - 4 - 3", 0), 3);
    NEAR(value_at("7 % 4 * 2", 0), 6);
    NEAR(value_at("2 * 3 > bool 5", 0), 1);
    NEAR(value_at("0x10 + 1e1 + .5", 0), 26.5);
    NEAR(value_at("-1 * -1", 0), 1);
    NEAR(value_at("time()", 90000), 90);
    ASSERT_TRUE(isinf(value_at("Inf", 0)));
    ASSERT_TRUE(isnan(value_at("NaN", 0)));
}

static void test_lookback_and_staleness(void) {
    /* g1 has one sample at 0; g2 is marked stale at 60s. */
    NEAR(value_at("g1", 300000), 5);
    ASSERT_EQ(count_at("g1", 300001), 0);
    ASSERT_EQ(count_at("g1", -1), 0);
    NEAR(value_at("g2", 59999), 2);
    ASSERT_EQ(count_at("g2", 60000), 0);
    ASSERT_EQ(count_at("g2", 200000), 0);
    NEAR(value_at("g1 offset 1m", 360000), 5);
    NEAR(value_at("g1 @ 100", 999999999), 5);
    NEAR(value_at("count_over_time(g2[2m])", 90000), 1); /* the marker is not a sample */
    NEAR(value_at("timestamp(g1)", 100000), 0);
}

static void test_rate(void) {
    NEAR(value_at("rate(c[1m])", 60000), 1);
    NEAR(value_at("increase(c[1m])", 60000), 60);
    NEAR(value_at("irate(c[1m])", 60000), 1);
    /* 10, 20, 5, 15: one reset; the extrapolation is capped at zero. */
    NEAR(value_at("increase(r[45s])", 45000), 25);
    NEAR(value_at("resets(r[1m])", 45000), 1);
    NEAR(value_at("changes(r[1m])", 45000), 3);
    NEAR(value_at("delta(r[45s])", 45000), 5);
    NEAR(value_at("idelta(r[1m])", 45000), 10);
    /* Extrapolation by half an interval when the range starts well before
     * the first sample: samples at 0..60 in [-30, 60]. */
    NEAR(value_at("delta(c[90s])", 60000), 67.5);
    /* A counter is not extrapolated below zero: it started at 0. */
    NEAR(value_at("increase(c[90s])", 60000), 60);
    ASSERT_EQ(count_at("rate(g1[1m])", 10000), 0);
}

static void test_matching(void) {
    NEAR(value_at("sum(m) by (job)", 0), 6);
    ASSERT_EQ(count_at("m + on(instance) group_left(team) info", 0), 3);
    NEAR(value_at("m{instance=\"a\"} + on(instance) group_left(team) info", 0), 11);
    pq_query *q = NULL;
    pq_result r;
    pq_error err;
    ASSERT_EQ(
        eval_q("m{instance=\"b\"} * on(instance) group_left(team) info", 0, 0, 0, &q, &r, &err), 0);
    ASSERT_EQ(r.nseries, 1);
    /* Arithmetic drops the name; group_left copies team from the one side. */
    ASSERT_EQ(r.series[0].nlabels, 3);
    ASSERT_SLSTR_EQ(r.series[0].labels[2].name, "team");
    ASSERT_SLSTR_EQ(r.series[0].labels[2].value, "tb");
    pq_query_free(q);
    q = NULL;
    ASSERT_TRUE(eval_q("m + info", 0, 0, 0, &q, &r, &err) == 0);
    ASSERT_EQ(r.nseries, 0); /* no label set in common */
    pq_query_free(q);
    q = NULL;
    ASSERT_TRUE(eval_q("m * on(job) info", 0, 0, 0, &q, &r, &err) != 0);
    ASSERT_EQ(err.kind, PQ_ERR_EXECUTION);
    pq_query_free(q);
    ASSERT_EQ(count_at("m > 1", 0), 2);
    ASSERT_EQ(count_at("m > bool 1", 0), 3);
    ASSERT_EQ(count_at("m and on(instance) info{instance=\"a\"}", 0), 1);
    ASSERT_EQ(count_at("m or info", 0), 6);
    ASSERT_EQ(count_at("m unless on(instance) info{instance=\"a\"}", 0), 2);
}

static void test_aggregation(void) {
    NEAR(value_at("avg(m)", 0), 2);
    NEAR(value_at("max(m)", 0), 3);
    NEAR(value_at("count(m)", 0), 3);
    NEAR(value_at("stddev(m)", 0), sqrt(2.0 / 3));
    NEAR(value_at("quantile(0.5, m)", 0), 2);
    NEAR(value_at("sum(topk(2, m))", 0), 5);
    NEAR(value_at("sum(bottomk(2, m))", 0), 3);
    ASSERT_EQ(count_at("count_values(\"v\", m)", 0), 3);
    NEAR(value_at("group(m)", 0), 1);
    NEAR(value_at("scalar(sum(m))", 0), 6);
    ASSERT_EQ(count_at("absent(m)", 0), 0);
    NEAR(value_at("absent(nope{job=\"x\"})", 0), 1);
    NEAR(value_at("histogram_quantile(0.5, h_bucket)", 0), 1.25);
    NEAR(value_at("histogram_quantile(0.99, h_bucket)", 0), 1.985);
}

static void test_range_query(void) {
    pq_query *q = NULL;
    pq_result r;
    pq_error err;
    ASSERT_EQ(eval_q("c", 0, 60000, 15000, &q, &r, &err), 0);
    ASSERT_EQ(r.type, PQ_MATRIX);
    ASSERT_EQ(r.nseries, 1);
    ASSERT_EQ(r.series[0].npoints, 5);
    ASSERT_EQ(r.series[0].points[4].t_ms, 60000);
    NEAR(r.series[0].points[4].v, 60);
    pq_query_free(q);
    q = NULL;
    ASSERT_EQ(eval_q("c[1m]", 0, 60000, 15000, &q, &r, &err), SL_EINVAL);
    ASSERT_EQ(err.kind, PQ_ERR_BAD_DATA);
    pq_query_free(q);
    q = NULL;
    ASSERT_EQ(eval_q("c", 0, 1000000000, 1, &q, &r, &err), SL_EINVAL);
    pq_query_free(q);
    q = NULL;
    ASSERT_EQ(eval_q("sum_over_time(c[1m:15s])", 60000, 60000, 0, &q, &r, &err), 0);
    ASSERT_EQ(r.nseries, 1);
    NEAR(r.series[0].points[0].v, 150);
    pq_query_free(q);
    q = NULL;
    ASSERT_EQ(
        eval_q("label_replace(m, \"x\", \"$1-z\", \"instance\", \"(.)\")", 0, 0, 0, &q, &r, &err),
        0);
    ASSERT_EQ(r.nseries, 3);
    pq_query_free(q);
}

static void test_format(void) {
    char b[400];
    pq_format_value(1e-7, b, sizeof(b));
    ASSERT_STR_EQ(b, "0.0000001");
    pq_format_value(1e21, b, sizeof(b));
    ASSERT_STR_EQ(b, "1000000000000000000000");
    pq_format_value(0.1, b, sizeof(b));
    ASSERT_STR_EQ(b, "0.1");
    pq_format_value(-1234.5678, b, sizeof(b));
    ASSERT_STR_EQ(b, "-1234.5678");
    pq_format_value(100, b, sizeof(b));
    ASSERT_STR_EQ(b, "100");
    pq_format_value(INFINITY, b, sizeof(b));
    ASSERT_STR_EQ(b, "+Inf");
    pq_format_value(NAN, b, sizeof(b));
    ASSERT_STR_EQ(b, "NaN");
    int64_t ms;
    ASSERT_EQ(pq_parse_duration(SL_STR_LIT("1h30m"), &ms), 0);
    ASSERT_EQ(ms, 5400000);
    ASSERT_EQ(pq_parse_duration(SL_STR_LIT("150ms"), &ms), 0);
    ASSERT_EQ(ms, 150);
    ASSERT_TRUE(pq_parse_duration(SL_STR_LIT("30m1h"), &ms) != 0);
    ASSERT_TRUE(pq_parse_duration(SL_STR_LIT("5"), &ms) != 0);
}

int main(void) {
    g_mq = memq_create();
    memq_add(g_mq, "__name__=g1", 0, 5);
    memq_add(g_mq, "__name__=g2", 0, 2);
    double stale;
    uint64_t bits = PQ_STALE_NAN_BITS;
    memcpy(&stale, &bits, sizeof(stale));
    memq_add(g_mq, "__name__=g2", 60000, stale);
    for (int i = 0; i <= 4; i++) {
        memq_add(g_mq, "__name__=c,job=j", i * 15000, i * 15.0);
    }
    const double r[] = {10, 20, 5, 15};
    for (int i = 0; i < 4; i++) {
        memq_add(g_mq, "__name__=r", i * 15000, r[i]);
    }
    memq_add(g_mq, "__name__=m,instance=a,job=x", 0, 1);
    memq_add(g_mq, "__name__=m,instance=b,job=x", 0, 2);
    memq_add(g_mq, "__name__=m,instance=c,job=x", 0, 3);
    memq_add(g_mq, "__name__=info,instance=a,team=ta", 0, 10);
    memq_add(g_mq, "__name__=info,instance=b,team=tb", 0, 20);
    memq_add(g_mq, "__name__=info,instance=c,team=tc", 0, 30);
    memq_add(g_mq, "__name__=h_bucket,le=1", 0, 10);
    memq_add(g_mq, "__name__=h_bucket,le=2", 0, 30);
    memq_add(g_mq, "__name__=h_bucket,le=+Inf", 0, 30);
    RUN(test_parse_errors);
    RUN(test_precedence);
    RUN(test_lookback_and_staleness);
    RUN(test_rate);
    RUN(test_matching);
    RUN(test_aggregation);
    RUN(test_range_query);
    RUN(test_format);
    memq_destroy(g_mq);
    return SL_TEST_RESULT();
}
