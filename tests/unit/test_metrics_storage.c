/*
 * Metrics engine tests: chunk codec round trips (NaN, +-Inf, stale markers,
 * huge and negative time deltas), corrupt chunks, postings, the appender
 * (out-of-order, duplicates, delta accumulation), and the store: selection
 * with every matcher type over WAL and windows, label names and values,
 * metadata, delta accumulation across cuts and a restart, out-of-order
 * samples across a cut, the WAL/window handover without double counting,
 * compaction, and reads of compacted windows through a small shared block
 * cache from several threads (scripts/test.sh also runs this under TSan).
 */
#include "sl_test.h"

#include "metrics_int.h"
#include "sl_err.h"
#include "storage.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static void fresh_dir(void) {
    snprintf(g_dir, sizeof(g_dir), "/tmp/sl-test-metrics-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        abort();
    }
}

static void rm_dir(void) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
}

static stg_store *open_store(void) {
    stg_options o;
    stg_options_init(&o);
    o.data_dir = g_dir;
    o.background = 0;
    o.map_size = 64ull << 20;
    stg_store *s = NULL;
    if (stg_open(&o, &s) != 0) {
        abort();
    }
    return s;
}

static double stale(void) {
    uint64_t b = MS_STALE_BITS;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static bool same_bits(double a, double b) {
    return memcmp(&a, &b, 8) == 0;
}

/* --- codec ---------------------------------------------------------------------- */

static int roundtrip(const stg_sample *in, size_t n) {
    sl_buf b;
    sl_buf_init(&b, 0);
    if (ms_chunk_encode(in, n, &b) != 0) {
        return -1;
    }
    size_t cnt;
    int64_t lo, hi;
    if (ms_chunk_info(b.data, b.len, &cnt, &lo, &hi) != 0 || cnt != n ||
        (n > 0 && (lo != in[0].t_ms || hi != in[n - 1].t_ms))) {
        sl_buf_free(&b);
        return -2;
    }
    stg_sample *out = calloc(n + 1, sizeof(*out));
    size_t got = 0;
    int rc = ms_chunk_decode(b.data, b.len, out, n, &got);
    int res = 0;
    if (rc != 0 || got != n) {
        res = -3;
    }
    for (size_t i = 0; res == 0 && i < n; i++) {
        if (out[i].t_ms != in[i].t_ms || !same_bits(out[i].v, in[i].v)) {
            res = -4 - (int)i;
        }
    }
    /* Every truncation must fail cleanly, never read past the end. */
    for (size_t cut = 0; res == 0 && cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.data, cut);
        size_t g2;
        if (ms_chunk_decode(copy, cut, out, n, &g2) == 0 && n > 0 && cut < b.len - 1) {
            /* A shorter input may decode only if the padding bits made it
             * complete; the count then still matches. */
            res = g2 == n ? 0 : -1000;
        }
        free(copy);
    }
    free(out);
    sl_buf_free(&b);
    return res;
}

static void test_chunk_regular(void) {
    stg_sample s[240];
    for (int i = 0; i < 240; i++) {
        s[i] = (stg_sample){1700000000000 + i * 15000, (double)(i * 3)};
    }
    ASSERT_EQ(roundtrip(s, 240), 0);
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(ms_chunk_encode(s, 240, &b), 0);
    /* Regular timestamps cost a bit; a slowly rising counter a few bytes. */
    ASSERT_TRUE(b.len < 240 * 3);
    sl_buf_free(&b);
    ASSERT_EQ(roundtrip(s, 1), 0);
    ASSERT_EQ(roundtrip(s, 0), 0);
}

static void test_chunk_special_values(void) {
    stg_sample s[] = {{0, NAN},   {1, INFINITY}, {2, -INFINITY}, {3, stale()}, {4, -0.0}, {5, 0.0},
                      {6, 1e308}, {7, -1e-308},  {8, 5e-324},    {9, stale()}, {10, 42},  {11, 42}};
    ASSERT_EQ(roundtrip(s, sizeof(s) / sizeof(s[0])), 0);
}

static void test_chunk_huge_deltas(void) {
    stg_sample s[] = {{INT64_MIN, 1}, {-5, 2}, {0, 3}, {INT64_MAX - 10, 4}, {INT64_MAX, 5}};
    ASSERT_EQ(roundtrip(s, 5), 0);
    stg_sample j[64];
    int64_t t = -1000000;
    for (int i = 0; i < 64; i++) {
        /* jitter of every dod width: 0, 14, 17, 20 and 64 bits */
        static const int64_t steps[] = {15000, 15001, 14000, 80000, 600000, 1, 1ll << 40};
        t += steps[i % 7];
        j[i] = (stg_sample){t, (double)i * 0.1};
    }
    ASSERT_EQ(roundtrip(j, 64), 0);
}

/* Random value bits (XOR windows of every width, up to all 64 bits) and,
 * with random times as well, a chunk larger than the decoder's stack copy. */
static void test_chunk_random_bits(void) {
    enum { N = 320 };
    stg_sample s[N];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int64_t t = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t bits = round == 1 || i % 3 == 0 ? x : x & (~0ull << (i % 61));
            double v;
            memcpy(&v, &bits, 8);
            t += round == 0 ? 15000 : (int64_t)(x >> 20);
            s[i] = (stg_sample){t, v};
        }
        ASSERT_EQ(roundtrip(s, N), 0);
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(ms_chunk_encode(s, N, &b), 0);
    ASSERT_TRUE(b.len > 4096);
    sl_buf_free(&b);
}

static void test_chunk_corrupt(void) {
    uint8_t junk[64];
    stg_sample out[8];
    size_t n;
    for (int seed = 0; seed < 200; seed++) {
        for (size_t i = 0; i < sizeof(junk); i++) {
            junk[i] = (uint8_t)(seed * 31 + i * 17);
        }
        (void)ms_chunk_decode(junk, sizeof(junk), out, 8, &n); /* must not crash */
    }
    uint8_t big[] = {0xff, 0xff, 0xff, 0x0f, 0, 0}; /* a huge count in a tiny chunk */
    ASSERT_TRUE(ms_chunk_decode(big, sizeof(big), out, 8, &n) != 0);
}

static void test_postings(void) {
    uint32_t ids[] = {1, 2, 3, 100, 70000, 4000000000u};
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(ms_postings_encode(ids, 6, &b), 0);
    size_t n;
    ASSERT_EQ(ms_postings_count(b.data, b.len, &n), 0);
    ASSERT_EQ(n, 6);
    uint32_t out[6];
    ASSERT_EQ(ms_postings_decode(b.data, b.len, out, 6, &n), 0);
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(out[i], ids[i]);
    }
    ASSERT_TRUE(ms_postings_decode(b.data, b.len, out, 5, &n) != 0); /* too small */
    ASSERT_TRUE(ms_postings_decode(b.data, b.len - 1, out, 6, &n) != 0);
    sl_buf_free(&b);
}

/* --- the appender --------------------------------------------------------------- */

static void test_apply_cumulative(void) {
    ms_head h = {0};
    ms_append_stats st = {0};
    stg_sample in[] = {{1000, 1}, {2000, 2}, {2000, 2}, {2000, 3}, {1500, 9}, {3000, 4}};
    stg_sample out[6];
    size_t n;
    ms_apply(&h, STG_MS_CUMULATIVE, in, 6, out, &n, &st);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(out[2].t_ms, 3000);
    ASSERT_EQ(st.duplicates, 1);   /* same time, same value */
    ASSERT_EQ(st.out_of_order, 2); /* same time, other value; older */
    /* The head persists across calls (cuts). */
    stg_sample late[] = {{2500, 1}, {3000, 4}, {4000, 5}};
    ms_apply(&h, STG_MS_CUMULATIVE, late, 3, out, &n, &st);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(out[0].t_ms, 4000);
    ASSERT_EQ(st.out_of_order, 3);
    ASSERT_EQ(st.duplicates, 2);
}

static void test_apply_delta(void) {
    ms_head h = {0};
    ms_append_stats st = {0};
    /* Three deltas within the merge interval -> one sample; a later one. */
    stg_sample in[] = {{1000, 1}, {2000, 2}, {2500, 3}, {60000, 4}, {30000, 100}};
    stg_sample out[5];
    size_t n;
    ms_apply(&h, STG_MS_DELTA, in, 5, out, &n, &st);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(out[0].t_ms, 2500);
    ASSERT_DBL_EQ(out[0].v, 6);
    ASSERT_EQ(out[1].t_ms, 60000);
    ASSERT_DBL_EQ(out[1].v, 10);
    ASSERT_EQ(st.out_of_order, 1);
    /* Next cut: continues from the total; same time as the head lands 1 ms
     * later; a stale marker passes and keeps the total. */
    stg_sample more[] = {{60000, 5}, {90000, stale()}, {120000, 1}};
    ms_apply(&h, STG_MS_DELTA, more, 3, out, &n, &st);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(out[0].t_ms, 60001);
    ASSERT_DBL_EQ(out[0].v, 15);
    ASSERT_TRUE(ms_is_stale(out[1].v));
    ASSERT_DBL_EQ(out[2].v, 16);
}

/* --- the store -------------------------------------------------------------------- */

static void write_series(stg_store *s, const char *tenant, const char *name, const char *job,
                         const char *code, stg_ms_kind kind, const stg_sample *smp, size_t n) {
    stg_label l[3] = {{SL_STR_LIT("__name__"), sl_str_c(name)},
                      {SL_STR_LIT("code"), sl_str_c(code)},
                      {SL_STR_LIT("job"), sl_str_c(job)}};
    stg_mseries sr = {l, 3, kind, smp, n, NULL, 0};
    stg_metric_meta meta = {sl_str_c(name), SL_STR_LIT("counter"), SL_STR_LIT("help text"),
                            SL_STR_LIT("seconds")};
    sl_buf b;
    sl_buf_init(&b, 0);
    if (stg_metrics_encode(&sr, 1, &meta, 1, &b) != 0) {
        abort();
    }
    stg_write w = {tenant, STG_METRICS, b.data, b.len, (uint32_t)n};
    if (stg_write_batch(s, &w, 1) != 0) {
        abort();
    }
    sl_buf_free(&b);
}

typedef struct got {
    int nseries;
    char first[256];
    size_t nsamples[16];
    stg_sample last[16];
} got;

static int got_cb(void *ud, const stg_label *l, size_t nl, const stg_sample *s, size_t n) {
    got *g = ud;
    if (g->nseries == 0) {
        size_t off = 0;
        for (size_t i = 0; i < nl; i++) {
            off += (size_t)snprintf(g->first + off, sizeof(g->first) - off, "%.*s=%.*s;",
                                    (int)l[i].name.len, l[i].name.ptr, (int)l[i].value.len,
                                    l[i].value.ptr);
        }
    }
    if (g->nseries < 16) {
        g->nsamples[g->nseries] = n;
        g->last[g->nseries] = n > 0 ? s[n - 1] : (stg_sample){0, 0};
    }
    g->nseries++;
    return 0;
}

static got select1(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm) {
    got g;
    memset(&g, 0, sizeof(g));
    if (stg_select_series(s, tenant, m, nm, INT64_MIN, INT64_MAX, got_cb, &g) != 0) {
        g.nseries = -1;
    }
    return g;
}

static void fill_store(stg_store *s) {
    stg_sample a[] = {{1000, 1}, {2000, 2}}, b[] = {{1000, 10}}, c[] = {{1000, 7}};
    write_series(s, "default", "http_requests_total", "api", "200", STG_MS_CUMULATIVE, a, 2);
    write_series(s, "default", "http_requests_total", "api", "500", STG_MS_CUMULATIVE, b, 1);
    write_series(s, "default", "http_requests_total", "web", "200", STG_MS_CUMULATIVE, c, 1);
    write_series(s, "other", "http_requests_total", "secret", "200", STG_MS_CUMULATIVE, c, 1);
}

static void check_matchers(stg_store *s) {
    stg_matcher eq = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("http_requests_total")};
    got g = select1(s, "default", &eq, 1);
    ASSERT_EQ(g.nseries, 3);
    ASSERT_STR_EQ(g.first, "__name__=http_requests_total;code=200;job=api;");
    ASSERT_EQ(g.nsamples[0], 2);
    ASSERT_DBL_EQ(g.last[0].v, 2);
    stg_matcher m2[] = {eq, {STG_MATCH_NE, SL_STR_LIT("job"), SL_STR_LIT("api")}};
    ASSERT_EQ(select1(s, "default", m2, 2).nseries, 1);
    stg_matcher m3[] = {eq, {STG_MATCH_RE, SL_STR_LIT("code"), SL_STR_LIT("5..")}};
    ASSERT_EQ(select1(s, "default", m3, 2).nseries, 1);
    stg_matcher m4[] = {eq, {STG_MATCH_NRE, SL_STR_LIT("code"), SL_STR_LIT("2.*|3.*")}};
    ASSERT_EQ(select1(s, "default", m4, 2).nseries, 1);
    /* Anchored: "20" does not match "200". */
    stg_matcher m5[] = {{STG_MATCH_RE, SL_STR_LIT("code"), SL_STR_LIT("20")}};
    ASSERT_EQ(select1(s, "default", m5, 1).nseries, 0);
    /* A matcher matching "" also matches series without the label. */
    stg_matcher m6[] = {eq, {STG_MATCH_EQ, SL_STR_LIT("missing"), SL_STR_LIT("")}};
    ASSERT_EQ(select1(s, "default", m6, 2).nseries, 3);
    stg_matcher m7[] = {{STG_MATCH_RE, SL_STR_LIT("job"), SL_STR_LIT(".*")}};
    ASSERT_EQ(select1(s, "default", m7, 1).nseries, 3);
    stg_matcher m8[] = {{STG_MATCH_NE, SL_STR_LIT("missing"), SL_STR_LIT("")}};
    ASSERT_EQ(select1(s, "default", m8, 1).nseries, 0);
    /* Tenants are isolated; a bad regex is SL_EINVAL. */
    ASSERT_EQ(select1(s, "other", &eq, 1).nseries, 1);
    ASSERT_EQ(select1(s, "nobody", &eq, 1).nseries, 0);
    stg_matcher bad = {STG_MATCH_RE, SL_STR_LIT("job"), SL_STR_LIT("(")};
    got gb;
    ASSERT_EQ(stg_select_series(s, "default", &bad, 1, 0, 10, got_cb, &gb), SL_EINVAL);
    /* Time range: only series with a sample in [1500, 2500]. */
    memset(&g, 0, sizeof(g));
    ASSERT_EQ(stg_select_series(s, "default", &eq, 1, 1500, 2500, got_cb, &g), 0);
    ASSERT_EQ(g.nseries, 1);
    ASSERT_EQ(g.nsamples[0], 1);
}

typedef struct strs {
    char buf[512];
    size_t len;
} strs;

static int str_cb(void *ud, sl_str s) {
    strs *x = ud;
    x->len +=
        (size_t)snprintf(x->buf + x->len, sizeof(x->buf) - x->len, "%.*s,", (int)s.len, s.ptr);
    return 0;
}

static int meta_cb(void *ud, const stg_metric_meta *m) {
    strs *x = ud;
    x->len += (size_t)snprintf(x->buf + x->len, sizeof(x->buf) - x->len, "%.*s:%.*s:%.*s,",
                               (int)m->metric.len, m->metric.ptr, (int)m->type.len, m->type.ptr,
                               (int)m->unit.len, m->unit.ptr);
    return 0;
}

static void check_labels(stg_store *s) {
    strs x = {0};
    ASSERT_EQ(stg_label_names(s, "default", NULL, 0, INT64_MIN, INT64_MAX, str_cb, &x), 0);
    ASSERT_STR_EQ(x.buf, "__name__,code,job,");
    x = (strs){0};
    ASSERT_EQ(stg_label_values(s, "default", SL_STR_LIT("job"), NULL, 0, INT64_MIN, INT64_MAX,
                               str_cb, &x),
              0);
    ASSERT_STR_EQ(x.buf, "api,web,");
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("code"), SL_STR_LIT("500")};
    x = (strs){0};
    ASSERT_EQ(
        stg_label_values(s, "default", SL_STR_LIT("job"), &m, 1, INT64_MIN, INT64_MAX, str_cb, &x),
        0);
    ASSERT_STR_EQ(x.buf, "api,");
    x = (strs){0};
    ASSERT_EQ(stg_metric_metadata(s, "default", (sl_str){"", 0}, meta_cb, &x), 0);
    ASSERT_STR_EQ(x.buf, "http_requests_total:counter:seconds,");
}

static void test_store_select(void) {
    fresh_dir();
    stg_store *s = open_store();
    fill_store(s);
    check_matchers(s); /* from the WAL */
    check_labels(s);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_stats st;
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 0);
    check_matchers(s); /* from the windows */
    check_labels(s);
    stg_close(s);
    s = open_store(); /* and after a restart */
    check_matchers(s);
    stg_close(s);
    rm_dir();
}

/* A read that starts after a cut's commit but before the cutter has updated
 * the window's in-memory time bounds (the interleaving, replayed by putting
 * back the bounds the window had before the cut): the cut's records are
 * gone from the WAL snapshot, so the window must be read by the bounds its
 * own transaction sees, or the newest samples go missing. */
static void test_read_during_cut_bounds(void) {
    fresh_dir();
    stg_store *s = open_store();
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("up")};
    stg_sample a[] = {{100000, 1}}, b[] = {{200000, 2}};
    write_series(s, "default", "up", "api", "200", STG_MS_CUMULATIVE, a, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    ms_window **ws;
    size_t nw;
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    ASSERT_EQ(nw, 1);
    int64_t old_min = atomic_load(&ws[0]->min_t), old_max = atomic_load(&ws[0]->max_t);
    write_series(s, "default", "up", "api", "200", STG_MS_CUMULATIVE, b, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    atomic_store(&ws[0]->min_t, old_min);
    atomic_store(&ws[0]->max_t, old_max);
    stg_stats st;
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 0);
    got g;
    memset(&g, 0, sizeof(g));
    ASSERT_EQ(stg_select_series(s, "default", &m, 1, 150000, 250000, got_cb, &g), 0);
    ASSERT_EQ(g.nseries, 1);
    ASSERT_EQ(g.nsamples[0], 1);
    ASSERT_DBL_EQ(g.last[0].v, 2);
    ms_windows_release(s, ws, nw);
    stg_close(s);
    rm_dir();
}

static void test_store_delta_and_order(void) {
    fresh_dir();
    stg_store *s = open_store();
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("calls_total")};
    stg_sample d1[] = {{100000, 2}}, d2[] = {{200000, 3}}, d3[] = {{300000, 4}};
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d1, 1);
    got g = select1(s, "default", &m, 1);
    ASSERT_EQ(g.nseries, 1);
    ASSERT_DBL_EQ(g.last[0].v, 2);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d2, 1);
    g = select1(s, "default", &m, 1); /* window total + WAL delta */
    ASSERT_EQ(g.nsamples[0], 2);
    ASSERT_DBL_EQ(g.last[0].v, 5);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    g = select1(s, "default", &m, 1); /* not counted twice */
    ASSERT_EQ(g.nsamples[0], 2);
    ASSERT_DBL_EQ(g.last[0].v, 5);
    stg_close(s);
    s = open_store(); /* the running total survives a restart */
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d3, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    g = select1(s, "default", &m, 1);
    ASSERT_EQ(g.nsamples[0], 3);
    ASSERT_DBL_EQ(g.last[0].v, 9);
    /* Cumulative: a sample older than the stored head is rejected, after a
     * cut as before it; a duplicate is dropped. */
    stg_matcher mg = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("temp")};
    stg_sample c1[] = {{5000, 1}, {6000, 2}}, c2[] = {{5500, 9}, {6000, 2}, {7000, 3}};
    write_series(s, "default", "temp", "api", "200", STG_MS_CUMULATIVE, c1, 2);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    write_series(s, "default", "temp", "api", "200", STG_MS_CUMULATIVE, c2, 3);
    g = select1(s, "default", &mg, 1);
    ASSERT_EQ(g.nsamples[0], 3);
    ASSERT_EQ(g.last[0].t_ms, 7000);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    g = select1(s, "default", &mg, 1);
    ASSERT_EQ(g.nsamples[0], 3);
    stg_close(s);
    rm_dir();
}

/* A cut pass whose series are partly known and partly new: the postings of
 * the new ones name their own ids (they once took the id of whichever
 * series sat at the same place in the pass, giving wrong and unsorted
 * postings lists, and label matchers then missed series or failed). */
static void test_store_postings_mixed_pass(void) {
    fresh_dir();
    stg_store *s = open_store();
    stg_sample a[] = {{1000, 1}}, b[] = {{2000, 2}};
    write_series(s, "default", "req_total", "api", "200", STG_MS_CUMULATIVE, a, 1);
    write_series(s, "default", "req_total", "api", "500", STG_MS_CUMULATIVE, a, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    /* Known series first, then new ones, in one pass. */
    write_series(s, "default", "req_total", "api", "200", STG_MS_CUMULATIVE, b, 1);
    write_series(s, "default", "req_total", "api", "500", STG_MS_CUMULATIVE, b, 1);
    write_series(s, "default", "req_total", "web", "404", STG_MS_CUMULATIVE, b, 1);
    write_series(s, "default", "req_total", "web", "200", STG_MS_CUMULATIVE, b, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    for (int round = 0; round < 2; round++) {
        stg_matcher web = {STG_MATCH_EQ, SL_STR_LIT("job"), SL_STR_LIT("web")};
        got g = select1(s, "default", &web, 1);
        ASSERT_EQ(g.nseries, 2);
        ASSERT_STR_EQ(g.first, "__name__=req_total;code=200;job=web;");
        stg_matcher c404 = {STG_MATCH_EQ, SL_STR_LIT("code"), SL_STR_LIT("404")};
        g = select1(s, "default", &c404, 1);
        ASSERT_EQ(g.nseries, 1);
        ASSERT_STR_EQ(g.first, "__name__=req_total;code=404;job=web;");
        stg_matcher c200 = {STG_MATCH_EQ, SL_STR_LIT("code"), SL_STR_LIT("200")};
        ASSERT_EQ(select1(s, "default", &c200, 1).nseries, 2);
        stg_matcher api = {STG_MATCH_EQ, SL_STR_LIT("job"), SL_STR_LIT("api")};
        g = select1(s, "default", &api, 1);
        ASSERT_EQ(g.nseries, 2);
        ASSERT_EQ(g.nsamples[0], 2);
        stg_close(s);
        s = open_store(); /* and after a restart */
    }
    stg_close(s);
    rm_dir();
}

typedef struct all_samples {
    stg_sample s[1000];
    size_t n;
} all_samples;

static int all_cb(void *ud, const stg_label *l, size_t nl, const stg_sample *s, size_t n) {
    all_samples *a = ud;
    (void)l;
    (void)nl;
    for (size_t i = 0; i < n && a->n < 1000; i++) {
        a->s[a->n++] = s[i];
    }
    return 0;
}

static void test_store_many_chunks(void) {
    fresh_dir();
    stg_store *s = open_store();
    enum { N = 1000 };
    stg_sample *smp = malloc(N * sizeof(*smp));
    for (int i = 0; i < N; i++) {
        smp[i] = (stg_sample){(int64_t)i * 15000, i % 7 == 0 ? stale() : (double)i};
    }
    /* In cuts of uneven sizes, so that open chunks are appended to (through
     * their trailers), sealed mid-cut, reopened after a restart, and once
     * taken as an older build left them (no trailer: decoded and encoded). */
    static const int parts[] = {1, 1, 3, 250, 7, 238, 500};
    int off = 0;
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
        write_series(s, "default", "g", "api", "200", STG_MS_CUMULATIVE, smp + off, parts[p]);
        off += parts[p];
        ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
        if (p == 2) {
            stg_close(s);
            s = open_store();
        }
        if (p == 4) {
            ms_window **ws;
            size_t nw;
            ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
            MDB_txn *txn;
            ASSERT_EQ(mdb_txn_begin(ws[0]->env, NULL, 0, &txn), 0);
            MDB_cursor *cur;
            ASSERT_EQ(mdb_cursor_open(txn, ws[0]->db_head, &cur), 0);
            MDB_val k, v;
            int tails = 0;
            while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
                ms_head h;
                ASSERT_EQ(v.mv_size, sizeof(h));
                memcpy(&h, v.mv_data, sizeof(h));
                tails += h.tail == MS_HEAD_TAIL;
                h.tail = 0;
                v = (MDB_val){sizeof(h), &h};
                ASSERT_EQ(mdb_cursor_put(cur, &k, &v, MDB_CURRENT), 0);
            }
            mdb_cursor_close(cur);
            ASSERT_EQ(mdb_txn_commit(txn), 0);
            ms_windows_release(s, ws, nw);
            ASSERT_EQ(tails, 1);
        }
    }
    ASSERT_EQ(off, N);
    static all_samples every;
    every.n = 0;
    stg_matcher mg = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("g")};
    ASSERT_EQ(stg_select_series(s, "default", &mg, 1, INT64_MIN, INT64_MAX, all_cb, &every), 0);
    ASSERT_EQ(every.n, N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(every.s[i].t_ms, smp[i].t_ms);
        ASSERT_TRUE(same_bits(every.s[i].v, smp[i].v));
    }
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("g")};
    got g = select1(s, "default", &m, 1);
    ASSERT_EQ(g.nseries, 1);
    ASSERT_EQ(g.nsamples[0], N);
    ASSERT_EQ(g.last[0].t_ms, (int64_t)(N - 1) * 15000);
    memset(&g, 0, sizeof(g));
    ASSERT_EQ(stg_select_series(s, "default", &m, 1, 15000 * 100, 15000 * 199, got_cb, &g), 0);
    ASSERT_EQ(g.nsamples[0], 100);
    free(smp);
    stg_close(s);
    rm_dir();
}

/* What stg_metrics_recent_series reports, by job label: when each series
 * was written as far as storage can tell. */
typedef struct recent {
    int n;
    char jobs[8][16];
    int64_t written[8];
} recent;

static int recent_cb(void *ud, const stg_label *l, size_t nl, int64_t written_ms) {
    recent *r = ud;
    for (size_t i = 0; i < nl && r->n < 8; i++) {
        if (sl_str_eq(l[i].name, SL_STR_LIT("job"))) {
            snprintf(r->jobs[r->n], sizeof(r->jobs[0]), "%.*s", (int)l[i].value.len,
                     l[i].value.ptr);
            r->written[r->n++] = written_ms;
        }
    }
    return 0;
}

static int64_t recent_of(const recent *r, const char *job) {
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->jobs[i], job) == 0) {
            return r->written[i];
        }
    }
    return -1;
}

/* The active-series read-back: from the WAL, then from the cut window; a
 * sample's own time when it lies in the window's span, else clamped to it
 * (never after now); nothing before since; tenants apart. */
static void test_store_recent_series(void) {
    fresh_dir();
    stg_store *s = open_store();
    int64_t hour = 3600000, before = (int64_t)(sl_now_unix_nano() / 1000000u);
    stg_sample now_s[] = {{before - 1000, 1}}, old_s[] = {{1500000000000, 1}},
               future_s[] = {{before + 2 * hour, 1}};
    write_series(s, "default", "up", "fresh", "200", STG_MS_CUMULATIVE, now_s, 1);
    write_series(s, "default", "up", "replayed", "200", STG_MS_CUMULATIVE, old_s, 1);
    write_series(s, "default", "up", "skewed", "200", STG_MS_CUMULATIVE, future_s, 1);
    write_series(s, "other", "up", "theirs", "200", STG_MS_CUMULATIVE, now_s, 1);
    int64_t after = (int64_t)(sl_now_unix_nano() / 1000000u);
    for (int pass = 0; pass < 2; pass++) {
        recent r = {0};
        ASSERT_EQ(stg_metrics_recent_series(s, "default", before - hour, recent_cb, &r), 0);
        ASSERT_EQ(r.n, 3);
        ASSERT_EQ(recent_of(&r, "fresh"), before - 1000);
        /* Arrived in this hour's window: no earlier than its start. */
        int64_t replayed = recent_of(&r, "replayed");
        ASSERT_TRUE(replayed == before / hour * hour || replayed == after / hour * hour);
        int64_t skewed = recent_of(&r, "skewed");
        ASSERT_TRUE(skewed >= before && skewed <= (int64_t)(sl_now_unix_nano() / 1000000u));
        r = (recent){0};
        ASSERT_EQ(stg_metrics_recent_series(s, "default", after + hour, recent_cb, &r), 0);
        ASSERT_EQ(r.n, 0);
        r = (recent){0};
        ASSERT_EQ(stg_metrics_recent_series(s, "other", 0, recent_cb, &r), 0);
        ASSERT_EQ(r.n, 1);
        ASSERT_EQ(recent_of(&r, "theirs"), before - 1000);
        ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0); /* pass 1 reads the window */
        stg_stats st;
        stg_get_stats(s, &st);
        ASSERT_EQ(st.wal_records, 0);
    }
    strs t = {0};
    ASSERT_EQ(stg_list_tenants(s, str_cb, &t), 0);
    ASSERT_TRUE(strstr(t.buf, "default,") != NULL && strstr(t.buf, "other,") != NULL);
    stg_close(s);
    rm_dir();
}

/* Options of a store in g_dir without the background thread, with 1 s
 * windows: the first one ends quickly and stg_maintain compacts it. */
static stg_options short_windows(void) {
    stg_options o;
    stg_options_init(&o);
    o.data_dir = g_dir;
    o.background = 0;
    o.map_size = 64ull << 20;
    o.partition_ns = 1000000000ull;
    return o;
}

/* An ended window is compacted into zstd blocks: everything reads the same,
 * series continue from its heads in the next window, and the file shrinks. */
static void test_store_compaction(void) {
    fresh_dir();
    stg_options o = short_windows();
    stg_store *s = NULL;
    ASSERT_EQ(stg_open(&o, &s), 0);
    enum { N = 600 };
    stg_sample smp[N];
    for (int i = 0; i < N; i++) {
        /* node_exporter-like: two decimals, and one stale marker */
        smp[i] =
            (stg_sample){1700000000000 + (int64_t)i * 15000, i == 300 ? stale() : 1000 + i * 12.37};
    }
    write_series(s, "default", "cpu_seconds_total", "api", "200", STG_MS_CUMULATIVE, smp, N);
    stg_sample d1[] = {{1700000000000, 5}};
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d1, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("cpu_seconds_total")};
    got before = select1(s, "default", &m, 1);
    ASSERT_EQ(before.nsamples[0], N);
    /* Far enough ahead that the window has ended and settled. */
    /* One window per pass; the writes may have straddled a second. */
    for (int pass = 0; pass < 3; pass++) {
        ASSERT_EQ(stg_maintain(s, sl_now_unix_nano() + 60000000000ull), 0);
    }
    ms_window **ws;
    size_t nw;
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    bool compacted = nw > 0;
    for (size_t i = 0; i < nw; i++) {
        compacted = compacted && ws[i]->compacted;
    }
    ms_windows_release(s, ws, nw);
    ASSERT_TRUE(compacted);
    /* Read back from the blocks: samples of 2023 in a window of now, so
     * written when the window began (the writes may straddle a second). */
    recent rc = {0};
    ASSERT_EQ(stg_metrics_recent_series(s, "default", 0, recent_cb, &rc), 0);
    ASSERT_EQ(rc.n, 2);
    int64_t now_ms = (int64_t)(sl_now_unix_nano() / 1000000u);
    ASSERT_TRUE(rc.written[0] % 1000 == 0 && rc.written[0] > now_ms - 10000);
    got after = select1(s, "default", &m, 1);
    ASSERT_EQ(after.nseries, 1);
    ASSERT_EQ(after.nsamples[0], N);
    ASSERT_EQ(after.last[0].t_ms, before.last[0].t_ms);
    ASSERT_DBL_EQ(after.last[0].v, before.last[0].v);
    stg_matcher re = {STG_MATCH_RE, SL_STR_LIT("job"), SL_STR_LIT("a.*")};
    ASSERT_EQ(select1(s, "default", &re, 1).nseries, 2);
    ASSERT_EQ(select1(s, "default", NULL, 0).nseries, 2);
    strs x = {0};
    ASSERT_EQ(stg_metric_metadata(s, "default", (sl_str){"", 0}, meta_cb, &x), 0);
    ASSERT_STR_EQ(x.buf, "calls_total:counter:seconds,cpu_seconds_total:counter:seconds,");
    /* The next window continues the delta total from the compacted head, and
     * the compacted window survives a reopen. */
    usleep(1100000);
    stg_sample d2[] = {{1700000060000, 2}};
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d2, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_close(s);
    ASSERT_EQ(stg_open(&o, &s), 0);
    stg_matcher mc = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("calls_total")};
    got g = select1(s, "default", &mc, 1);
    ASSERT_EQ(g.nseries, 1);
    ASSERT_EQ(g.nsamples[0], 2);
    ASSERT_DBL_EQ(g.last[0].v, 7);
    ASSERT_EQ(select1(s, "default", &m, 1).nsamples[0], N);
    /* Windows compacted by older builds keep a `series` database (u64 hash ->
     * ids) and info "compact" = 1: rewrite the compacted windows that way and
     * read them again, lookups (the delta's carry-over) included. */
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    int rewritten = 0;
    for (size_t i = 0; i < nw; i++) {
        ms_window *w = ws[i];
        const uint8_t *pairs;
        size_t np;
        MDB_txn *txn;
        if (!w->compacted) {
            continue;
        }
        ASSERT_EQ(mdb_txn_begin(w->env, NULL, 0, &txn), 0);
        ASSERT_TRUE(ms_info_hashes(txn, w->db_info, &pairs, &np));
        ms_cblock cb = {0};
        for (size_t j = 0; j < np; j++) {
            ms_csection sec;
            uint8_t hk[8], ik[4];
            ASSERT_EQ(ms_cblock_find(w, txn, sl_get_be32(pairs + j * 8 + 4), &cb, &sec), 0);
            stg_be64(hk, ms_hash(sec.labels, sec.labels_size));
            memcpy(ik, pairs + j * 8 + 4, 4);
            MDB_val k = {8, hk}, v = {4, ik};
            ASSERT_EQ(mdb_put(txn, w->db_series, &k, &v, 0), 0);
        }
        ms_cblock_free(&cb);
        char hk[] = "hashes", ck[] = "compact";
        uint8_t one = 1;
        MDB_val k = {6, hk}, v = {1, &one};
        ASSERT_EQ(mdb_del(txn, w->db_info, &k, NULL), 0);
        k = (MDB_val){7, ck};
        ASSERT_EQ(mdb_put(txn, w->db_info, &k, &v, 0), 0);
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        rewritten++;
    }
    ms_windows_release(s, ws, nw);
    ASSERT_TRUE(rewritten > 0);
    stg_close(s);
    ASSERT_EQ(stg_open(&o, &s), 0);
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    bool old_format = false;
    for (size_t i = 0; i < nw; i++) {
        old_format = old_format || (ws[i]->compacted && !ws[i]->hashes);
    }
    ms_windows_release(s, ws, nw);
    ASSERT_TRUE(old_format);
    ASSERT_EQ(select1(s, "default", &m, 1).nsamples[0], N);
    ASSERT_EQ(select1(s, "default", NULL, 0).nseries, 2);
    usleep(1100000);
    stg_sample d3[] = {{1700000120000, 1}};
    write_series(s, "default", "calls_total", "api", "200", STG_MS_DELTA, d3, 1);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    g = select1(s, "default", &mc, 1);
    ASSERT_EQ(g.nsamples[0], 3);
    ASSERT_DBL_EQ(g.last[0].v, 8);
    stg_close(s);
    rm_dir();
}

/* Appending to an open chunk (its trailer holds the encoder's state) gives
 * the bytes of encoding every sample at once, whatever the split. */
static void test_chunk_append(void) {
    enum { N = 240 };
    static stg_sample s[N];
    uint64_t r = 99;
    int64_t t = 1700000000000;
    double v = 0;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        t += i % 17 == 0 ? (int64_t)(r >> 40) : (i % 5 == 0 ? 15001 : 15000);
        if (i % 3 != 0) {
            v = i % 7 == 0 ? stale() : (i % 11 == 0 ? (double)(r >> 11) : v + 0.25 * (r % 9));
        }
        s[i] = (stg_sample){t, v};
    }
    sl_buf all, all_open, a, b;
    sl_buf_init(&all, 0);
    sl_buf_init(&all_open, 0);
    sl_buf_init(&a, 0);
    sl_buf_init(&b, 0);
    ASSERT_EQ(ms_chunk_encode(s, N, &all), 0);
    size_t splits[][2] = {{1, 2}, {1, 239}, {5, 6}, {100, 101}, {100, 200}, {238, 239}, {3, 120}};
    for (size_t k = 0; k < sizeof(splits) / sizeof(splits[0]); k++) {
        size_t x = splits[k][0], y = splits[k][1];
        a.len = b.len = all_open.len = 0;
        ASSERT_EQ(ms_chunk_encode_open(s, x, &a), 0);
        ASSERT_EQ(ms_chunk_append(a.data, a.len, s + x, y - x, true, &b), 0);
        ASSERT_EQ(ms_chunk_encode_open(s, y, &all_open), 0);
        ASSERT_EQ(b.len, all_open.len);
        ASSERT_TRUE(memcmp(b.data, all_open.data, b.len) == 0);
        a.len = 0;
        ASSERT_EQ(ms_chunk_append(b.data, b.len, s + y, N - y, false, &a), 0);
        ASSERT_EQ(a.len, all.len);
        ASSERT_TRUE(memcmp(a.data, all.data, a.len) == 0);
        /* Readers ignore the trailer. */
        stg_sample out[N];
        size_t n;
        ASSERT_EQ(ms_chunk_decode(b.data, b.len, out, N, &n), 0);
        ASSERT_EQ(n, y);
        ASSERT_EQ(out[y - 1].t_ms, s[y - 1].t_ms);
        ASSERT_TRUE(same_bits(out[y - 1].v, s[y - 1].v));
    }
    /* A chunk without a trailer (older builds) is refused, not misread. */
    ASSERT_EQ(ms_chunk_append(all.data, all.len, s, 1, true, &b), SL_ECORRUPT);
    sl_buf_free(&all);
    sl_buf_free(&all_open);
    sl_buf_free(&a);
    sl_buf_free(&b);
}

static void test_samples_codec(void) {
    stg_sample in[] = {{-5, 0.1}, {10, 100000.48}, {25, -3}, {40, 1e15}, {41, 2.5}};
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(ms_samples_encode(in, 5, &b), 0);
    stg_sample out[5];
    size_t n;
    ASSERT_EQ(ms_samples_decode(b.data, b.len, out, 5, &n), 0);
    ASSERT_EQ(n, 5);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(out[i].t_ms, in[i].t_ms);
        ASSERT_TRUE(same_bits(out[i].v, in[i].v));
    }
    stg_sample odd[] = {{1, NAN}, {2, stale()}, {3, -0.0}, {4, INFINITY}, {5, 0.1 + 0.2}};
    b.len = 0;
    ASSERT_EQ(ms_samples_encode(odd, 5, &b), 0);
    ASSERT_EQ(ms_samples_decode(b.data, b.len, out, 5, &n), 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_TRUE(same_bits(out[i].v, odd[i].v));
    }
    ASSERT_TRUE(ms_samples_decode(b.data, b.len - 1, out, 5, &n) != 0);
    /* Dense deltas are bit-packed (the exponent byte's 0x40 flag): a counter
     * with random two-decimal increments, one with a multiple of 4096 and
     * huge jumps both ways, the shortest run of two. */
    static stg_sample dense[240];
    double v = 1e5;
    uint64_t r = 12345;
    for (int k = 0; k < 3; k++) {
        size_t cnt = k == 2 ? 2 : 240;
        for (size_t i = 0; i < cnt; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            if (k == 0) {
                v = round((v + (double)((r >> 40) % 1275) / 100.0) * 100) / 100;
            } else {
                v = (double)(4096 * (int64_t)((r >> 20) % 1000000)) * (i % 2 ? -1 : 1);
            }
            dense[i] = (stg_sample){1700000000000 + (int64_t)i * 15000, v};
        }
        b.len = 0;
        ASSERT_EQ(ms_samples_encode(dense, cnt, &b), 0);
        stg_sample back[240];
        ASSERT_EQ(ms_samples_decode(b.data, b.len, back, 240, &n), 0);
        ASSERT_EQ(n, cnt);
        for (size_t i = 0; i < cnt; i++) {
            ASSERT_EQ(back[i].t_ms, dense[i].t_ms);
            ASSERT_TRUE(same_bits(back[i].v, dense[i].v));
        }
        if (k == 0) {
            ASSERT_TRUE(b.len <
                        600); /* packed: 11 bits a value (varints: 2 bytes), 1 byte a time */
        }
        ASSERT_TRUE(ms_samples_decode(b.data, b.len - 1, back, 240, &n) != 0);
    }
    /* Every packed width from 1 to 32 bits, at every run length up to 240:
     * fields read with a word load and the section's last ones with the
     * byte loop. Deltas of 2^33 plus a W-bit part pack (W bits against
     * 6-byte varints). */
    for (int w = 1; w <= 32; w++) {
        for (size_t cnt = 2; cnt <= 240; cnt += (cnt < 20 ? 1 : 37)) {
            static stg_sample in2[240], back2[240];
            int64_t x = 1;
            for (size_t i = 0; i < cnt; i++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                x += (1ll << 33) + (int64_t)((r >> 20) & ((1ull << w) - 1));
                in2[i] = (stg_sample){1700000000000 + (int64_t)i * 15000, (double)x};
            }
            b.len = 0;
            ASSERT_EQ(ms_samples_encode(in2, cnt, &b), 0);
            ASSERT_TRUE(b.len < 2 * cnt + cnt * (size_t)(w + 7) / 8 + 32); /* packed */
            ASSERT_EQ(ms_samples_decode(b.data, b.len, back2, 240, &n), 0);
            ASSERT_EQ(n, cnt);
            for (size_t i = 0; i < cnt; i++) {
                ASSERT_EQ(back2[i].t_ms, in2[i].t_ms);
                ASSERT_TRUE(same_bits(back2[i].v, in2[i].v));
            }
            ASSERT_TRUE(ms_samples_decode(b.data, b.len - 1, back2, 240, &n) != 0);
        }
    }
    sl_buf_free(&b);
}

/* With SL_WRITE_CORPUS=<dir>: seed inputs of fuzz_metrics_chunk (chunks, a
 * postings list, a WAL record). */
static void write_corpus(void) {
    const char *dir = getenv("SL_WRITE_CORPUS");
    if (dir == NULL) {
        return;
    }
    stg_sample s[100];
    for (int i = 0; i < 100; i++) {
        s[i] = (stg_sample){1700000000000 + i * 15000 + (i % 3), i % 9 == 0 ? stale() : i * 1.5};
    }
    uint32_t ids[] = {1, 5, 9, 300};
    stg_label l[2] = {{SL_STR_LIT("__name__"), SL_STR_LIT("up")},
                      {SL_STR_LIT("job"), SL_STR_LIT("a")}};
    stg_exemplar ex = {1700000000000, 0.5, {1}, {2}, l, 1};
    stg_mseries sr = {l, 2, STG_MS_DELTA, s, 10, &ex, 1};
    stg_metric_meta meta = {SL_STR_LIT("up"), SL_STR_LIT("gauge"), SL_STR_LIT("h"), SL_STR_LIT("")};
    stg_sample dense[100];
    for (int i = 0; i < 100; i++) {
        double v = round((1000 + i * 12.37 + (i * 7919 % 13) / 100.0) * 100) / 100;
        dense[i] = (stg_sample){1700000000000 + i * 15000, v};
    }
    for (int k = 0; k < 7; k++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        if (k == 6) {
            ms_chunk_encode_open(s, 100, &b); /* with the append trailer */
        } else if (k == 5) {
            ms_samples_encode(dense, 100, &b); /* bit-packed decimals */
        } else if (k == 4) {
            ms_samples_encode(s, 100, &b);
        } else if (k == 0) {
            ms_chunk_encode(s, 100, &b);
        } else if (k == 1) {
            ms_chunk_encode(s, 3, &b);
        } else if (k == 2) {
            ms_postings_encode(ids, 4, &b);
        } else {
            stg_metrics_encode(&sr, 1, &meta, 1, &b);
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/seed-%d", dir, k);
        FILE *f = fopen(path, "wb");
        if (f != NULL) {
            fwrite(b.data, 1, b.len, f);
            fclose(f);
        }
        sl_buf_free(&b);
    }
}

/* A digest of everything a selection returns (labels and sample bits). */
static int digest_cb(void *ud, const stg_label *l, size_t nl, const stg_sample *s, size_t n) {
    uint64_t *h = ud;
    for (size_t i = 0; i < nl; i++) {
        for (size_t j = 0; j < l[i].value.len; j++) {
            *h = (*h ^ (uint8_t)l[i].value.ptr[j]) * 0x100000001b3ull;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &s[i].v, 8);
        *h = (*h ^ (uint64_t)s[i].t_ms ^ b) * 0x100000001b3ull;
    }
    *h += n;
    return 0;
}

static uint64_t digest(stg_store *s, int64_t mint, int64_t maxt) {
    uint64_t h = 0xcbf29ce484222325ull;
    stg_matcher m = {STG_MATCH_EQ, SL_STR_LIT("__name__"), SL_STR_LIT("busy")};
    if (stg_select_series(s, "default", &m, 1, mint, maxt, digest_cb, &h) != 0) {
        return 0;
    }
    return h;
}

typedef struct reader_arg {
    stg_store *s;
    uint64_t want[3];
    int bad;
} reader_arg;

static const int64_t g_ranges[3][2] = {
    {INT64_MIN, INT64_MAX}, {1700000000000, 1700000900000}, {1700001500000, 1700002100000}};

static void *reader_main(void *p) {
    reader_arg *a = p;
    for (int i = 0; i < 12; i++) {
        int r = i % 3;
        a->bad += digest(a->s, g_ranges[r][0], g_ranges[r][1]) != a->want[r];
    }
    return NULL;
}

/* Four threads reading everything 12 times: how many reads differed from want. */
static int read_in_threads(stg_store *s, const uint64_t want[3]) {
    reader_arg a[4];
    pthread_t th[4];
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        a[i] = (reader_arg){s, {want[0], want[1], want[2]}, 0};
        if (pthread_create(&th[i], NULL, reader_main, &a[i]) != 0) {
            abort();
        }
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
    }
    return bad;
}

/* Compacted windows read through the shared block cache: with the cache
 * off, and with one too small for the window (so readers evict blocks other
 * readers still hold), four threads see exactly the same series and samples;
 * the cache holds no more than its cap; repeated reads hit it. */
static void test_store_block_cache(void) {
    fresh_dir();
    stg_options o = short_windows();
    o.metrics_cache_bytes = 0;
    stg_store *s = NULL;
    ASSERT_EQ(stg_open(&o, &s), 0);
    enum { NS = 1500, NP = 160 };
    static stg_sample smp[NS][NP];
    static stg_label lab[NS][2];
    static char ids[NS][8];
    stg_mseries *sr = calloc(NS, sizeof(*sr));
    uint64_t x = 42;
    for (int i = 0; i < NS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%d", i);
        lab[i][0] = (stg_label){SL_STR_LIT("__name__"), SL_STR_LIT("busy")};
        lab[i][1] = (stg_label){SL_STR_LIT("id"), sl_str_c(ids[i])};
        for (int j = 0; j < NP; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            smp[i][j] = (stg_sample){1700000000000 + (int64_t)j * 15000, (double)(x >> 11) / 7.0};
        }
        sr[i] = (stg_mseries){lab[i], 2, STG_MS_CUMULATIVE, smp[i], NP, NULL, 0};
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_metrics_encode(sr, NS, NULL, 0, &b), 0);
    stg_write w = {"default", STG_METRICS, b.data, b.len, NS * NP};
    ASSERT_EQ(stg_write_batch(s, &w, 1), 0);
    sl_buf_free(&b);
    free(sr);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    uint64_t fresh[3];
    for (int r = 0; r < 3; r++) {
        fresh[r] = digest(s, g_ranges[r][0], g_ranges[r][1]);
    }
    for (int pass = 0; pass < 3; pass++) {
        ASSERT_EQ(stg_maintain(s, sl_now_unix_nano() + 60000000000ull), 0);
    }
    ms_window **ws;
    size_t nw;
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    ASSERT_EQ(nw, 1);
    ASSERT_TRUE(ws[0]->compacted);
    ASSERT_TRUE(ws[0]->cache == NULL);
    MDB_txn *txn;
    MDB_stat st;
    ASSERT_EQ(mdb_txn_begin(ws[0]->env, NULL, MDB_RDONLY, &txn), 0);
    ASSERT_EQ(mdb_stat(txn, ws[0]->db_blocks, &st), 0);
    mdb_txn_abort(txn);
    ms_windows_release(s, ws, nw);
    printf("compacted blocks: %zu\n", (size_t)st.ms_entries);
    ASSERT_TRUE(st.ms_entries >= 3);
    uint64_t want[3];
    for (int r = 0; r < 3; r++) {
        want[r] = digest(s, g_ranges[r][0], g_ranges[r][1]);
        ASSERT_TRUE(want[r] == fresh[r]); /* compaction changes nothing */
    }
    stg_close(s);

    /* Room for two or three of the five blocks: every read evicts. */
    o.metrics_cache_bytes = 1200u << 10;
    ASSERT_EQ(stg_open(&o, &s), 0);
    ASSERT_EQ(read_in_threads(s, want), 0);
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    ms_bcache_stats cs;
    ms_bcache_stats_get(ws[0]->cache, &cs);
    ms_windows_release(s, ws, nw);
    printf("small cache: %llu hits, %llu misses, %llu bytes in %llu blocks\n",
           (unsigned long long)cs.hits, (unsigned long long)cs.misses, (unsigned long long)cs.bytes,
           (unsigned long long)cs.blocks);
    ASSERT_TRUE(cs.bytes <= o.metrics_cache_bytes);
    ASSERT_TRUE(cs.blocks >= 1 && cs.blocks < st.ms_entries);
    ASSERT_TRUE(cs.misses > st.ms_entries); /* evicted and read again */
    stg_close(s);

    /* A cache the window fits in: after one read, reads only hit. */
    o.metrics_cache_bytes = 64u << 20;
    ASSERT_EQ(stg_open(&o, &s), 0);
    ASSERT_TRUE(digest(s, INT64_MIN, INT64_MAX) == want[0]);
    ASSERT_EQ(ms_windows_list(s, "default", &ws, &nw), 0);
    ms_bcache_stats_get(ws[0]->cache, &cs);
    uint64_t misses = cs.misses;
    ASSERT_EQ(misses, st.ms_entries);
    ASSERT_EQ(read_in_threads(s, want), 0);
    ms_bcache_stats_get(ws[0]->cache, &cs);
    ASSERT_EQ(cs.misses, misses);
    ASSERT_TRUE(cs.hits > 0);
    ASSERT_EQ(cs.blocks, st.ms_entries);
    /* Dropping the window's environment forgets its blocks. */
    ms_bcache_purge(ws[0]->cache, ws[0]->cache_id);
    ms_bcache_stats_get(ws[0]->cache, &cs);
    ASSERT_EQ(cs.blocks, 0);
    ASSERT_EQ(cs.bytes, 0);
    ms_windows_release(s, ws, nw);
    ASSERT_TRUE(digest(s, INT64_MIN, INT64_MAX) == want[0]);
    stg_close(s);
    rm_dir();
}

int main(void) {
    write_corpus();
    RUN(test_chunk_regular);
    RUN(test_chunk_special_values);
    RUN(test_chunk_huge_deltas);
    RUN(test_chunk_random_bits);
    RUN(test_chunk_corrupt);
    RUN(test_postings);
    RUN(test_apply_cumulative);
    RUN(test_apply_delta);
    RUN(test_store_select);
    RUN(test_store_delta_and_order);
    RUN(test_read_during_cut_bounds);
    RUN(test_store_postings_mixed_pass);
    RUN(test_store_many_chunks);
    RUN(test_chunk_append);
    RUN(test_samples_codec);
    RUN(test_store_compaction);
    RUN(test_store_recent_series);
    RUN(test_store_block_cache);
    return SL_TEST_RESULT();
}
