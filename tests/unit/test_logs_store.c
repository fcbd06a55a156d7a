/*
 * Logs storage through storage.h: WAL records readable at once, the cut into
 * windows (same answers before and after, nothing twice), indexes and token
 * filters skipping blocks, an unreadable WAL record dropped without blocking
 * the log, tenants, reopening, and retention dropping whole windows.
 */
#include "sl_test.h"

#include "sl_err.h"
#include "storage.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T0 1700000000000000000ull
#define HOUR 3600000000000ull

static char g_dir[256];

static void fresh_dir(void) {
    snprintf(g_dir, sizeof(g_dir), "/tmp/sl-test-logs-XXXXXX");
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
    o.retention_ns = 7 * 24 * HOUR;
    stg_store *s = NULL;
    if (stg_open(&o, &s) != 0) {
        abort();
    }
    return s;
}

static sl_resource g_web = {SL_STR_INIT("web"), NULL, 0, 0};
static sl_resource g_db = {SL_STR_INIT("db"), NULL, 0, 0};
static char g_bodies[400][64];

/* Writes n records of res as one WAL record: "request <i> served" at T0 + i
 * seconds, every 10th an ERROR with the trace id 0x77.., the rest INFO. */
static int write_records(stg_store *s, const char *tenant, const sl_resource *res, int first, int n,
                         const char *word) {
    sl_log_record *recs = calloc((size_t)n, sizeof(*recs));
    for (int i = 0; i < n; i++) {
        int k = first + i;
        sl_log_record *r = &recs[i];
        snprintf(g_bodies[k % 400], sizeof(g_bodies[0]), "request %d served%s%s", k,
                 word ? " " : "", word ? word : "");
        r->time_unix_nano = r->observed_unix_nano = T0 + (uint64_t)k * 1000000000ull;
        r->severity_number = k % 10 == 0 ? 17 : 9;
        r->severity_text = k % 10 == 0 ? SL_STR_LIT("ERROR") : SL_STR_LIT("INFO");
        r->body = (sl_value){.type = SL_VAL_STR, .v.s = sl_str_c(g_bodies[k % 400])};
        r->resource = res;
        if (k % 10 == 0) {
            memset(r->trace_id, 0x77, 16);
        }
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    int rc = stg_logs_wal_encode(recs, (size_t)n, &b);
    stg_write w = {tenant, STG_LOGS, b.data, b.len, (uint32_t)n};
    if (rc == 0) {
        rc = stg_write_batch(s, &w, 1);
    }
    sl_buf_free(&b);
    free(recs);
    return rc;
}

static size_t find(stg_store *s, stg_log_query q, stg_log_stats *st) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_log_record *out = NULL;
    size_t n = 0;
    if (q.tenant == NULL) {
        q.tenant = "t1";
    }
    if (q.limit == 0) {
        q.limit = 1000;
    }
    int rc = stg_find_logs(s, &q, &a, &out, &n, st);
    sl_arena_free(&a);
    return rc == 0 ? n : (size_t)-1;
}

static int count_windows(const char *tenant) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/logs", g_dir, tenant);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void test_wal_cut_and_reads(void) {
    fresh_dir();
    stg_store *s = open_store();
    ASSERT_EQ(write_records(s, "t1", &g_web, 0, 100, NULL), 0);
    ASSERT_EQ(write_records(s, "t1", &g_db, 100, 100, "zebracorn"), 0);
    stg_log_stats st;
    stg_log_term zebra = {SL_STR_LIT("zebracorn"), 0};
    stg_log_query all = {0}, web = {.service = SL_STR_LIT("web")},
                  errs = {.service = SL_STR_LIT("db"), .min_severity = 17},
                  word = {.terms = &zebra, .nterms = 1};
    uint8_t tid[16];
    memset(tid, 0x77, 16);
    stg_log_query trace = {.trace_id = tid};
    /* Uncut: everything comes from the WAL. */
    ASSERT_EQ(find(s, all, &st), 200);
    ASSERT_TRUE(st.wal_records > 0);
    ASSERT_EQ(find(s, web, &st), 100);
    ASSERT_EQ(find(s, errs, &st), 10);
    ASSERT_EQ(find(s, word, &st), 100);
    ASSERT_EQ(find(s, trace, &st), 20);
    /* Cut: the same answers from blocks, each record once. */
    ASSERT_EQ(stg_maintain(s, T0), 0);
    ASSERT_EQ(find(s, all, &st), 200);
    ASSERT_EQ(st.wal_records, 0);
    ASSERT_EQ(find(s, web, &st), 100);
    ASSERT_EQ(find(s, errs, &st), 10);
    ASSERT_EQ(find(s, trace, &st), 20);
    ASSERT_EQ(find(s, word, &st), 100);
    ASSERT_TRUE(st.blocks_skipped > 0); /* the web block has no "zebracorn" */
    stg_log_term nothing = {SL_STR_LIT("absentword"), 0};
    stg_log_query none = {.terms = &nothing, .nterms = 1};
    ASSERT_EQ(find(s, none, &st), 0);
    ASSERT_EQ(st.blocks_scanned, 0);
    /* Newest first, limited, and the window bounds. */
    stg_log_query last = {
        .limit = 5, .start_unix_nano = T0 + 10000000000ull, .end_unix_nano = T0 + 150000000000ull};
    ASSERT_EQ(find(s, last, &st), 5);
    /* More data after the cut mixes WAL and blocks, still once each. */
    ASSERT_EQ(write_records(s, "t1", &g_web, 200, 50, NULL), 0);
    ASSERT_EQ(find(s, all, &st), 250);
    ASSERT_EQ(find(s, (stg_log_query){.tenant = "t2"}, &st), 0);
    stg_close(s);
    /* Reopen: the uncut record is cut on the next pass, nothing doubles. */
    s = open_store();
    ASSERT_EQ(find(s, all, &st), 250);
    ASSERT_EQ(stg_maintain(s, T0), 0);
    ASSERT_EQ(find(s, all, &st), 250);
    stg_close(s);
    rm_dir();
}

static void test_unreadable_record_and_retention(void) {
    fresh_dir();
    stg_store *s = open_store();
    const uint8_t junk[] = "not a log record";
    stg_write w = {"t1", STG_LOGS, junk, sizeof(junk), 1};
    ASSERT_EQ(stg_write_batch(s, &w, 1), 0);
    ASSERT_EQ(write_records(s, "t1", &g_web, 0, 30, NULL), 0);
    stg_log_stats st;
    ASSERT_EQ(find(s, (stg_log_query){0}, &st), 30); /* the junk is skipped */
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_stats ss;
    stg_get_stats(s, &ss);
    ASSERT_EQ(ss.wal_records, 0); /* the junk did not block the log */
    ASSERT_EQ(find(s, (stg_log_query){0}, &st), 30);
    ASSERT_EQ(count_windows("t1"), 1);
    /* Eight days later the window is past retention: dropped whole. */
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano() + 8 * 24 * HOUR), 0);
    ASSERT_EQ(find(s, (stg_log_query){0}, &st), 0);
    ASSERT_EQ(count_windows("t1"), 0);
    stg_close(s);
    rm_dir();
}

/* A plain "latest N" search decodes only the WAL records that can hold them
 * (their headers carry time bounds); filters make it read the rest. */
static void test_wal_headers_bound_the_work(void) {
    fresh_dir();
    stg_store *s = open_store();
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(write_records(s, "t1", &g_web, i * 30, 30, NULL), 0);
    }
    stg_log_stats st;
    ASSERT_EQ(find(s, (stg_log_query){.limit = 5}, &st), 5);
    ASSERT_EQ(st.wal_records, 1);
    ASSERT_EQ(st.wal_skipped, 9);
    ASSERT_EQ(find(s, (stg_log_query){.limit = 40, .forward = 1}, &st), 40);
    ASSERT_EQ(st.wal_records, 2);
    /* Outside every record's time range: nothing decoded. */
    ASSERT_EQ(find(s, (stg_log_query){.start_unix_nano = T0 + 1000 * 1000000000ull}, &st), 0);
    ASSERT_EQ(st.wal_records, 0);
    /* A word filter: every record may match, all are read. */
    stg_log_term served = {SL_STR_LIT("served"), 0};
    ASSERT_EQ(find(s, (stg_log_query){.limit = 5, .terms = &served, .nterms = 1}, &st), 5);
    ASSERT_EQ(st.wal_records, 10);
    stg_close(s);
    rm_dir();
}

static void test_bad_query(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_log_record *out;
    size_t n;
    stg_log_query q = {.tenant = "t1", .limit = 0};
    ASSERT_EQ(stg_find_logs(s, &q, &a, &out, &n, NULL), SL_EINVAL);
    sl_arena_free(&a);
    stg_close(s);
    rm_dir();
}

int main(void) {
    RUN(test_wal_cut_and_reads);
    RUN(test_unreadable_record_and_retention);
    RUN(test_wal_headers_bound_the_work);
    RUN(test_bad_query);
    return SL_TEST_RESULT();
}
