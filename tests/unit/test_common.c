/*
 * common/: the arena (caps, reuse after reset, overflow checks), bounded
 * buffers, varints, hex, integer parsing, error names and the self-metrics
 * exposition format.
 */
#include "sl_test.h"

#include "sl_arena.h"
#include "sl_auth.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_fmt.h"
#include "sl_metrics.h"
#include "sl_regex.h"
#include "sl_util.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_arena_cap_and_reset(void) {
    sl_arena a;
    sl_arena_init(&a, 64 * 1024);
    void *p = sl_arena_alloc(&a, 1000);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ((uintptr_t)p % 16, 0);
    /* Past the cap: NULL, never an abort, and earlier memory stays valid. */
    ASSERT_TRUE(sl_arena_alloc(&a, 128 * 1024) == NULL);
    memset(p, 0xab, 1000);
    size_t reserved = a.reserved;
    ASSERT_TRUE(reserved <= 64 * 1024);
    /* Reset keeps the chunks: the same sizes need no new memory. */
    sl_arena_reset(&a);
    ASSERT_EQ(a.used, 0);
    for (int i = 0; i < 40; i++) {
        ASSERT_TRUE(sl_arena_alloc(&a, 1000) != NULL);
    }
    ASSERT_TRUE(a.reserved <= 64 * 1024);
    ASSERT_TRUE(sl_arena_calloc(&a, SIZE_MAX / 2, 4) == NULL); /* n * size overflows */
    char *s = sl_arena_strndup(&a, "abcdef", 3);
    ASSERT_STR_EQ(s, "abc");
    sl_arena_free(&a);
    sl_arena_free(NULL);
}

static void test_arena_protobuf_hook(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    ProtobufCAllocator *pb = sl_arena_pb(&a);
    void *p = pb->alloc(pb->allocator_data, 100);
    ASSERT_TRUE(p != NULL);
    pb->free(pb->allocator_data, p); /* a no-op: the arena owns it */
    ASSERT_TRUE(a.used >= 100);
    sl_arena_free(&a);
}

static void test_buf_limits(void) {
    sl_buf b;
    sl_buf_init(&b, 10);
    ASSERT_EQ(sl_buf_append(&b, "0123456789", 10), 0);
    ASSERT_EQ(sl_buf_putc(&b, 'x'), SL_ETOOBIG);
    ASSERT_EQ(b.len, 10);
    sl_buf_free(&b);
    sl_buf_init(&b, 0);
    ASSERT_EQ(sl_buf_printf(&b, "%s-%d", "n", 42), 0);
    ASSERT_EQ(b.len, 4);
    ASSERT_TRUE(memcmp(b.data, "n-42", 4) == 0);
    char big[600];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(sl_buf_printf(&b, "%s", big), 0); /* longer than the small stack buffer */
    ASSERT_EQ(b.len, 4 + sizeof(big) - 1);
    sl_buf_free(&b);
}

static void test_varints(void) {
    const uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        ASSERT_EQ(sl_buf_put_uvarint(&b, vals[i]), 0);
        const uint8_t *p = b.data;
        uint64_t back = 0;
        ASSERT_EQ(sl_get_uvarint(&p, b.data + b.len, &back), 0);
        ASSERT_U64_EQ(back, vals[i]);
        ASSERT_TRUE(p == b.data + b.len);
        /* Truncated: an error, not an over-read. */
        p = b.data;
        if (b.len > 1) {
            ASSERT_EQ(sl_get_uvarint(&p, b.data + b.len - 1, &back), SL_ECORRUPT);
        }
        sl_buf_free(&b);
    }
    ASSERT_EQ(sl_unzigzag(sl_zigzag(INT64_MIN)), INT64_MIN);
    ASSERT_EQ(sl_unzigzag(sl_zigzag(-1)), -1);
}

static void test_hex_and_ints(void) {
    uint8_t id[4];
    ASSERT_EQ(sl_hex_decode("DeadBEEF", 8, id, 4), 0);
    ASSERT_EQ(id[0], 0xde);
    ASSERT_EQ(id[3], 0xef);
    ASSERT_EQ(sl_hex_decode("deadbee", 7, id, 4), SL_EINVAL);
    ASSERT_EQ(sl_hex_decode("deadbeeg", 8, id, 4), SL_EINVAL);
    char out[8];
    sl_hex_encode(id, 4, out);
    ASSERT_TRUE(memcmp(out, "deadbeef", 8) == 0);

    uint64_t u;
    int64_t i;
    ASSERT_EQ(sl_parse_u64(SL_STR_LIT("18446744073709551615"), &u), 0);
    ASSERT_U64_EQ(u, UINT64_MAX);
    ASSERT_EQ(sl_parse_u64(SL_STR_LIT("18446744073709551616"), &u), SL_EINVAL);
    ASSERT_EQ(sl_parse_u64(SL_STR_LIT(""), &u), SL_EINVAL);
    ASSERT_EQ(sl_parse_u64(SL_STR_LIT("12a"), &u), SL_EINVAL);
    ASSERT_EQ(sl_parse_i64(SL_STR_LIT("-9223372036854775808"), &i), 0);
    ASSERT_EQ(i, INT64_MIN);
    ASSERT_EQ(sl_parse_i64(SL_STR_LIT("9223372036854775808"), &i), SL_EINVAL);
    ASSERT_STR_EQ(sl_errname(SL_ENOMEM), "SL_ENOMEM");
    ASSERT_STR_EQ(sl_strerror(SL_ETOOBIG), "input larger than the configured limit");
}

static void test_metrics_exposition(void) {
    sl_metric *c = sl_counter("t_requests_total", "code=\"200\"", "Requests.");
    sl_metric *c2 = sl_counter("t_requests_total", "code=\"500\"", "Requests.");
    ASSERT_TRUE(sl_counter("t_requests_total", "code=\"200\"", "x") == c); /* same series */
    sl_metric_add(c, 3);
    sl_metric_add(c2, 1);
    const double bounds[] = {0.1, 1};
    sl_metric *h = sl_histogram("t_latency_seconds", "", "Latency.", bounds, 2);
    sl_metric_observe(h, 0.05);
    sl_metric_observe(h, 0.5);
    sl_metric_observe(h, 5);
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(sl_metrics_render(&b), 0);
    ASSERT_EQ(sl_buf_putc(&b, 0), 0);
    const char *text = (const char *)b.data;
    ASSERT_TRUE(strstr(text, "# TYPE t_requests_total counter\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_requests_total{code=\"200\"} 3\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_requests_total{code=\"500\"} 1\n") != NULL);
    /* One HELP/TYPE header per family. */
    ASSERT_TRUE(strstr(strstr(text, "# TYPE t_requests_total") + 1, "# TYPE t_requests_total") ==
                NULL);
    ASSERT_TRUE(strstr(text, "t_latency_seconds_bucket{le=\"0.1\"} 1\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_latency_seconds_bucket{le=\"1\"} 2\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_latency_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_latency_seconds_count 3\n") != NULL);
    ASSERT_TRUE(strstr(text, "t_latency_seconds_sum 5.550000\n") != NULL);
    sl_buf_free(&b);
}

static bool re_match(const char *pat, const char *subject) {
    sl_regex *re;
    char err[160];
    if (sl_regex_compile(sl_str_c(pat), &re, err, sizeof(err)) != 0) {
        return false;
    }
    bool m = sl_regex_match(re, sl_str_c(subject));
    sl_regex_free(re);
    return m;
}

static void test_regex_prometheus_semantics(void) {
    /* Anchored on both ends, like label matchers. */
    ASSERT_TRUE(re_match("api", "api"));
    ASSERT_TRUE(!re_match("api", "api-gateway"));
    ASSERT_TRUE(!re_match("api", "my-api"));
    ASSERT_TRUE(re_match("api|web", "web"));
    ASSERT_TRUE(re_match("api.*", "api-gateway"));
    ASSERT_TRUE(!re_match("a", "a\n")); /* no forgiven trailing newline */
    ASSERT_TRUE(re_match("", ""));
    ASSERT_TRUE(!re_match("", "x"));
    ASSERT_TRUE(re_match("(?i)GET", "get"));
    ASSERT_TRUE(re_match("5\\d{2}", "503"));
    ASSERT_TRUE(re_match("[^]x]+", "abc"));
    /* Errors carry an offset; RE2-only syntax is refused, not reinterpreted. */
    sl_regex *re = NULL;
    char err[160];
    ASSERT_EQ(sl_regex_compile(sl_str_c("a(b"), &re, err, sizeof(err)), SL_EINVAL);
    ASSERT_TRUE(strstr(err, "offset") != NULL);
    ASSERT_EQ(sl_regex_compile(sl_str_c("(a)\\1"), &re, err, sizeof(err)), SL_EINVAL);
    ASSERT_EQ(sl_regex_compile(sl_str_c("(?>a)"), &re, err, sizeof(err)), SL_EINVAL);
    /* Invalid UTF-8 is refused, not handed to PCRE2 unchecked. */
    ASSERT_EQ(sl_regex_compile((sl_str){"((\xd0\xf9(", 6}, &re, err, sizeof(err)), SL_EINVAL);
    ASSERT_EQ(sl_regex_compile((sl_str){"a\xff", 2}, &re, err, sizeof(err)), SL_EINVAL);
    /* Invalid UTF-8 in a subject is a non-match, never a crash. */
    ASSERT_EQ(sl_regex_compile(sl_str_c(".*"), &re, err, sizeof(err)), 0);
    ASSERT_TRUE(!sl_regex_match(re, (sl_str){"\xff\xfe", 2}));
    ASSERT_TRUE(sl_regex_match(re, (sl_str){"caf\xc3\xa9", 5}));
    sl_regex_free(re);
}

static void test_auth_tokens(void) {
    sl_auth *a;
    ASSERT_EQ(sl_auth_new(&a), 0);
    char tenant[65];
    const char *why = NULL;
    /* Off: the header decides, validated. */
    sl_str org = SL_STR_LIT("acme");
    ASSERT_EQ(sl_auth_decide(a, NULL, &org, SL_SCOPE_INGEST, tenant, &why), 0);
    ASSERT_TRUE(strcmp(tenant, "acme") == 0);
    ASSERT_EQ(sl_auth_decide(a, NULL, NULL, SL_SCOPE_QUERY, tenant, &why), 0);
    ASSERT_TRUE(strcmp(tenant, "default") == 0);
    sl_str bad = SL_STR_LIT("../x");
    ASSERT_EQ(sl_auth_decide(a, NULL, &bad, SL_SCOPE_QUERY, tenant, &why), 400);
    ASSERT_TRUE(!sl_auth_enabled(a));
    /* On. */
    char path[] = "/tmp/sl-auth-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    char hex[65];
    ASSERT_EQ(sl_auth_hash_hex(sl_str_c("s3cret"), hex), 0);
    char text[300];
    int n = snprintf(text, sizeof(text), "# comment\n\nsha256:%s acme ingest,query\n", hex);
    ASSERT_EQ(write(fd, text, (size_t)n), n);
    close(fd);
    size_t count = 0;
    char err[200];
    ASSERT_EQ(sl_auth_reload(a, path, &count, err, sizeof(err)), 0);
    ASSERT_EQ(count, 1);
    sl_str good = SL_STR_LIT("Bearer s3cret"), lower = SL_STR_LIT("bearer  s3cret "),
           wrong = SL_STR_LIT("Bearer s3cret2"), other = SL_STR_LIT("other");
    ASSERT_EQ(sl_auth_decide(a, &good, NULL, SL_SCOPE_INGEST, tenant, &why), 0);
    ASSERT_TRUE(strcmp(tenant, "acme") == 0);
    ASSERT_EQ(sl_auth_decide(a, &lower, &org, SL_SCOPE_QUERY, tenant, &why), 0);
    ASSERT_EQ(sl_auth_decide(a, &good, &other, SL_SCOPE_QUERY, tenant, &why), 403);
    ASSERT_EQ(sl_auth_decide(a, &good, NULL, SL_SCOPE_ADMIN, tenant, &why), 403);
    ASSERT_EQ(sl_auth_decide(a, &wrong, NULL, SL_SCOPE_INGEST, tenant, &why), 401);
    ASSERT_EQ(sl_auth_decide(a, NULL, NULL, SL_SCOPE_INGEST, tenant, &why), 401);
    /* A broken file names its line and keeps the table. */
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fprintf(f, "%s acme ingest\n%s acme delete\n", hex, hex);
    fclose(f);
    ASSERT_EQ(sl_auth_reload(a, path, &count, err, sizeof(err)), SL_EINVAL);
    ASSERT_TRUE(strstr(err, ":2:") != NULL);
    ASSERT_EQ(sl_auth_decide(a, &good, NULL, SL_SCOPE_QUERY, tenant, &why), 0);
    ASSERT_TRUE(sl_auth_reload(a, "/nonexistent/tokens", &count, err, sizeof(err)) < 0);
    unlink(path);
    sl_auth_free(a);
}

/* The next value of a xorshift64 sequence. */
static uint64_t xorshift(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The shortest digits of glibc's correctly rounded conversions (the
 * reference: the first precision that reads back; glibc rounds half to even
 * like Go's shortest formatting). */
static size_t ref_shortest(double a, char *digits, int *x) {
    char e[64];
    for (int p = 0; p < 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p, a);
        if (strtod(e, NULL) == a) {
            break;
        }
    }
    size_t n = 0;
    const char *q = e;
    for (; *q != 'e'; q++) {
        if (*q >= '0' && *q <= '9') {
            digits[n++] = *q;
        }
    }
    *x = (int)strtol(q + 1, NULL, 10);
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    return n;
}

static void test_fmt_double(void) {
    struct {
        double v;
        const char *want;
    } cases[] = {{0, "0"},
                 {-0.0, "-0"},
                 {1, "1"},
                 {-2.5, "-2.5"},
                 {0.1, "0.1"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {1e21, "1000000000000000000000"},
                 {1e-7, "0.0000001"},
                 {123456789012345680.0, "123456789012345680"},
                 {0.5, "0.5"},
                 {1.0 / 3, "0.3333333333333333"},
                 {2.0 / 3, "0.6666666666666666"},
                 {5e-324, NULL},
                 {DBL_MAX, NULL},
                 {NAN, "NaN"},
                 {INFINITY, "+Inf"},
                 {-INFINITY, "-Inf"}};
    char buf[SL_FMT_DOUBLE_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = sl_fmt_double(cases[i].v, buf);
        ASSERT_EQ(n, strlen(buf));
        if (cases[i].want != NULL) {
            ASSERT_STR_EQ(buf, cases[i].want);
        } else {
            ASSERT_TRUE(strtod(buf, NULL) == cases[i].v); /* 'f' layout, hundreds of digits */
        }
    }
    /* Random bit patterns, two-decimal values, repeating fractions, scaled
     * integers (the fast path's ranges and beyond) against the reference. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 60000; i++) {
        xorshift(&x);
        double a;
        switch (i % 4) {
        case 0: {
            uint64_t b = x & 0x7fffffffffffffffull;
            memcpy(&a, &b, 8);
            break;
        }
        case 1:
            a = (double)(x % 100000) / 100.0;
            break;
        case 2:
            a = (double)(x % 1000000) / 210.0;
            break;
        default:
            a = ldexp((double)(x >> 11), -(int)(x % 80));
            break;
        }
        if (!isfinite(a) || a == 0) {
            continue;
        }
        char d1[24], d2[24];
        int x1, x2;
        size_t n1 = sl_fmt_shortest(a, d1, &x1), n2 = ref_shortest(a, d2, &x2);
        if (n1 != n2 || x1 != x2 || memcmp(d1, d2, n1) != 0) {
            fprintf(stderr, "%.17g: %.*s e%d, want %.*s e%d\n", a, (int)n1, d1, x1, (int)n2, d2,
                    x2);
            ASSERT_TRUE(false);
        }
        sl_fmt_double(a, buf);
        ASSERT_TRUE(strtod(buf, NULL) == a);
    }
}

/* v in Go's 'f' layout from the reference digits: what sl_fmt_double wrote
 * before its short-decimal path, and must still write. With decimals,
 * glibc's correctly rounded "%.*f" to as many places as the shortest digits
 * have (the nearest decimal with that many places is the shortest one);
 * whole numbers are the digits padded with zeros. */
static void ref_fmt_double(double v, char *out) {
    if (isnan(v) || isinf(v) || v == 0) {
        strcpy(out, isnan(v)   ? "NaN"
                    : isinf(v) ? (v > 0 ? "+Inf" : "-Inf")
                               : (signbit(v) ? "-0" : "0"));
        return;
    }
    char d[24];
    int x;
    size_t nd = ref_shortest(fabs(v), d, &x);
    int places = (int)nd - 1 - x;
    if (places > 0) {
        snprintf(out, SL_FMT_DOUBLE_MAX, "%.*f", places, v);
        return;
    }
    size_t n = v < 0 ? 1 : 0;
    out[0] = '-';
    memcpy(out + n, d, nd);
    memset(out + n + nd, '0', (size_t)x + 1 - nd);
    out[n + (size_t)x + 1] = '\0';
}

/* The whole string against the reference layout: integers, decimals of one
 * to three places (and means of them, the common query results), values
 * about 2^52 where short decimals run out, tiny and huge magnitudes, signs,
 * and random bit patterns. */
static void test_fmt_double_layout(void) {
    static const double fixed[] = {0.001,
                                   -0.001,
                                   0.01,
                                   0.1,
                                   0.2,
                                   0.3,
                                   1.5,
                                   -1.25,
                                   99.999,
                                   1e-5,
                                   1.5e-7,
                                   1e-22,
                                   1e-23,
                                   0x1p52 - 0.5,
                                   0x1p51 + 0.5,
                                   0x1p52 + 1,
                                   1e15,
                                   1e15 + 0.5,
                                   1e300,
                                   -1e-300,
                                   5e-324,
                                   2.2250738585072014e-308,
                                   4503599627370495.5,
                                   0.000123,
                                   1234567.891,
                                   23.4580625,
                                   -0.0,
                                   NAN,
                                   INFINITY,
                                   -INFINITY};
    char got[SL_FMT_DOUBLE_MAX], want[SL_FMT_DOUBLE_MAX];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        sl_fmt_double(fixed[i], got);
        ref_fmt_double(fixed[i], want);
        ASSERT_STR_EQ(got, want);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 80000; i++) {
        xorshift(&x);
        double a;
        static const double scale[] = {1, 10, 100, 1000, 40, 20, 3, 1e6};
        switch (i % 5) {
        case 0: {
            uint64_t b = x;
            memcpy(&a, &b, 8);
            break;
        }
        case 1: /* one to three decimal places, and their means */
            a = (double)(int64_t)(x % 2000001 - 1000000) / scale[(x >> 32) % 8];
            break;
        case 2: { /* a mean of 40 three-decimal values */
            double sum = 0;
            for (int k = 0; k < 40; k++) {
                sum += (double)((x >> (k % 40)) % 100000) / 1000;
            }
            a = sum / 40;
            break;
        }
        case 3: /* near 2^52 and across the decades */
            a = ldexp((double)(x >> 11), -(int)(x % 64)) + 0.5;
            break;
        default:
            a = (double)(x % 1000000) * pow(10, (double)((int)(x >> 40) % 40 - 25));
            break;
        }
        sl_fmt_double(a, got);
        ref_fmt_double(a, want);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "%.17g: %s, want %s\n", a, got, want);
            ASSERT_TRUE(false);
        }
    }
}

int main(void) {
    RUN(test_auth_tokens);
    RUN(test_regex_prometheus_semantics);
    RUN(test_arena_cap_and_reset);
    RUN(test_arena_protobuf_hook);
    RUN(test_buf_limits);
    RUN(test_varints);
    RUN(test_hex_and_ints);
    RUN(test_metrics_exposition);
    RUN(test_fmt_double);
    RUN(test_fmt_double_layout);
    return SL_TEST_RESULT();
}
