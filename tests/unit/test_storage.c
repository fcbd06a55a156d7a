/*
 * Storage engine tests: WAL writes, cutting into blocks, every read path over
 * both WAL records and blocks, tenant isolation, reopen, and retention.
 */
#include "sl_test.h"

#include "sl_err.h"
#include "storage.h"
#include "storage_int.h" /* to look at the windows' sealed state */

#include <dirent.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static void fresh_dir(void) {
    snprintf(g_dir, sizeof(g_dir), "/tmp/sl-test-storage-XXXXXX");
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

static uint64_t g_partition_ns; /* 0: the default */

static stg_store *open_store(void) {
    stg_options o;
    stg_options_init(&o);
    if (g_partition_ns != 0) {
        o.partition_ns = g_partition_ns;
    }
    o.data_dir = g_dir;
    o.background = 0;
    o.map_size = 64ull << 20;
    stg_store *s = NULL;
    if (stg_open(&o, &s) != 0) {
        abort();
    }
    return s;
}

static sl_resource g_res_a = {SL_STR_INIT("frontend"), NULL, 0, 0};
static sl_resource g_res_b = {SL_STR_INIT("payments"), NULL, 0, 0};
static sl_attr g_attrs[2] = {
    {SL_STR_INIT("http.method"), {.type = SL_VAL_STR, .v.s = SL_STR_INIT("GET")}},
    {SL_STR_INIT("http.status_code"), {.type = SL_VAL_INT, .v.i = 503}},
};

static void make_span(sl_span *sp, uint8_t trace, uint8_t id, uint8_t parent,
                      const sl_resource *res, const char *name, uint64_t start, uint64_t dur) {
    memset(sp, 0, sizeof(*sp));
    memset(sp->trace_id, trace, 16);
    memset(sp->span_id, id, 8);
    if (parent) {
        memset(sp->parent_span_id, parent, 8);
    }
    sp->resource = res;
    sp->name = sl_str_c(name);
    sp->kind = SL_KIND_SERVER;
    sp->start_unix_nano = start;
    sp->end_unix_nano = start + dur;
    sp->attrs = g_attrs;
    sp->nattrs = 2;
}

static int write_spans(stg_store *s, const char *tenant, const sl_span *spans, size_t n) {
    sl_buf rec;
    sl_buf_init(&rec, 0);
    int rc = stg_wal_encode(spans, n, &rec);
    if (rc == 0) {
        stg_write w = {tenant, STG_TRACES, rec.data, rec.len, (uint32_t)n};
        rc = stg_write_batch(s, &w, 1);
    }
    sl_buf_free(&rec);
    return rc;
}

static const uint64_t T0 = 1700000000000000000ull;

static void check_reads(stg_store *s) {
    sl_arena a;
    sl_arena_init(&a, 0);
    uint8_t tid[16];
    memset(tid, 1, 16);
    sl_span *spans = NULL;
    size_t n = 0;
    ASSERT_EQ(stg_get_trace(s, "default", tid, &a, &spans, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_SLSTR_EQ(spans[0].name, "root"); /* sorted by start */
    ASSERT_SLSTR_EQ(spans[2].resource->service, "payments");
    ASSERT_EQ(spans[0].nattrs, 2);
    ASSERT_EQ(spans[0].attrs[1].val.v.i, 503);

    memset(tid, 9, 16);
    ASSERT_EQ(stg_get_trace(s, "default", tid, &a, &spans, &n), SL_ENOTFOUND);
    memset(tid, 1, 16);
    ASSERT_EQ(stg_get_trace(s, "other", tid, &a, &spans, &n), SL_ENOTFOUND);

    uint8_t ids[10][16];
    stg_tag tag = {SL_STR_LIT("http.status_code"), SL_STR_LIT("503")};
    stg_trace_query q = {.tenant = "default", .service = SL_STR_LIT("payments"), .limit = 10};
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ids[0][0], 1);
    q.tags = &tag;
    q.ntags = 1;
    q.service = SL_STR_LIT("frontend");
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[0][0], 2); /* most recent first */
    q.operation = SL_STR_LIT("other root");
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 1);
    q.operation = (sl_str){0};
    q.min_duration_nano = 60000000;
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ids[0][0], 1);
    q.min_duration_nano = 0;
    q.start_min_unix_nano = T0 + 500000000;
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ids[0][0], 2);
    stg_tag miss = {SL_STR_LIT("http.method"), SL_STR_LIT("POST")};
    q.tags = &miss;
    q.start_min_unix_nano = 0;
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 0);
    stg_tag err = {SL_STR_LIT("span.kind"), SL_STR_LIT("server")};
    q.tags = &err;
    ASSERT_EQ(stg_find_traces(s, &q, ids, &n), 0);
    ASSERT_EQ(n, 2);
    sl_arena_free(&a);
}

static int count_ops(void *ud, sl_str service, sl_str op, int kind) {
    (void)op;
    (void)kind;
    if (sl_str_eqc(service, "payments")) {
        (*(int *)ud)++;
    }
    return 0;
}

static int count_spans(void *ud, const sl_span *spans, size_t n) {
    (void)spans;
    *(size_t *)ud += n;
    return 0;
}

static void test_write_read_cut(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_span a[2], b[1], c[1];
    make_span(&a[0], 1, 1, 0, &g_res_a, "root", T0, 100000000);
    make_span(&a[1], 1, 2, 1, &g_res_a, "child", T0 + 1000, 50000000);
    make_span(&b[0], 1, 3, 2, &g_res_b, "charge", T0 + 2000, 20000000);
    make_span(&c[0], 2, 4, 0, &g_res_a, "other root", T0 + 1000000000, 10000000);
    ASSERT_EQ(write_spans(s, "default", a, 2), 0);
    ASSERT_EQ(write_spans(s, "default", b, 1), 0);
    ASSERT_EQ(write_spans(s, "default", c, 1), 0);

    stg_stats st;
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 3);
    ASSERT_EQ(st.blocks, 0);
    check_reads(s); /* from the WAL */
    if (sl_test_failures) {
        goto out;
    }
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 0);
    ASSERT_TRUE(st.blocks >= 1);
    ASSERT_TRUE(st.bytes_on_disk > 0);
    check_reads(s); /* from blocks */

    int ops = 0;
    ASSERT_EQ(stg_list_operations(s, "default", count_ops, &ops), 0);
    ASSERT_EQ(ops, 1);
    size_t nspans = 0;
    ASSERT_EQ(stg_scan_spans(s, "default", T0, T0 + 5000, count_spans, &nspans), 0);
    ASSERT_EQ(nspans, 3);

    /* Reopen: blocks and indexes survive; a new WAL record mixes in. */
    stg_close(s);
    s = open_store();
    sl_span d[1];
    make_span(&d[0], 1, 5, 3, &g_res_b, "late span", T0 + 3000, 1000);
    ASSERT_EQ(write_spans(s, "default", d, 1), 0);
    sl_arena ar;
    sl_arena_init(&ar, 0);
    uint8_t tid[16];
    memset(tid, 1, 16);
    sl_span *got;
    size_t n;
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 4);
    /* The same span written twice (an exporter retry) is returned once. */
    ASSERT_EQ(write_spans(s, "default", d, 1), 0);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 4);
    sl_arena_free(&ar);
out:
    stg_close(s);
    rm_dir();
}

/* Rewrites the trace-id index of every traces window of the default tenant
 * into the older layout (`trace`: the id's last 8 bytes -> u32be block ids)
 * and empties `tid`, as a window cut by an earlier version looks. The test's
 * trace ids repeat one byte, so the id's bytes 8..15 are the key byte's. */
static int make_legacy_trace_index(void) {
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/default/traces", g_dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    int rc = 0, windows = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi tid, trace;
        MDB_cursor *cur;
        MDB_val k, v;
        rc = mdb_env_create(&env);
        mdb_env_set_maxdbs(env, 8);
        mdb_env_set_mapsize(env, 64u << 20);
        rc = rc ? rc : mdb_env_open(env, path, 0, 0644);
        rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
        rc = rc ? rc : mdb_dbi_open(txn, "tid", MDB_DUPSORT | MDB_DUPFIXED, &tid);
        rc = rc ? rc : mdb_dbi_open(txn, "trace", MDB_DUPSORT | MDB_DUPFIXED | MDB_CREATE, &trace);
        rc = rc ? rc : mdb_cursor_open(txn, tid, &cur);
        while (rc == 0 && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            uint8_t key[STG_TRACE_KEY];
            memset(key, ((uint8_t *)k.mv_data)[0], sizeof(key));
            MDB_val lk = {sizeof(key), key}, lv = {4, (uint8_t *)v.mv_data + STG_TID_FRAG};
            rc = mdb_put(txn, trace, &lk, &lv, 0);
        }
        if (rc == 0) {
            mdb_cursor_close(cur);
            rc = mdb_drop(txn, tid, 0);
        }
        rc = rc ? rc : mdb_txn_commit(txn);
        mdb_env_close(env);
        windows++;
    }
    closedir(d);
    return rc != 0 ? rc : windows > 0 ? 0 : -1;
}

/* Windows cut by an earlier version (trace-id index in `trace`) answer every
 * read as before; filters of the older (power-of-two, masked) format too. */
static void test_legacy_windows(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_span a[2], b[1], c[1];
    make_span(&a[0], 1, 1, 0, &g_res_a, "root", T0, 100000000);
    make_span(&a[1], 1, 2, 1, &g_res_a, "child", T0 + 1000, 50000000);
    make_span(&b[0], 1, 3, 2, &g_res_b, "charge", T0 + 2000, 20000000);
    make_span(&c[0], 2, 4, 0, &g_res_a, "other root", T0 + 1000000000, 10000000);
    ASSERT_EQ(write_spans(s, "default", a, 2), 0);
    ASSERT_EQ(write_spans(s, "default", b, 1), 0);
    ASSERT_EQ(write_spans(s, "default", c, 1), 0);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_close(s);
    ASSERT_EQ(make_legacy_trace_index(), 0);
    s = open_store();
    check_reads(s);
    /* New cuts into such a window use `tid`; both are read. */
    sl_span d[1];
    make_span(&d[0], 1, 5, 3, &g_res_b, "late span", T0 + 3000, 1000);
    ASSERT_EQ(write_spans(s, "default", d, 1), 0);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    sl_arena ar;
    sl_arena_init(&ar, 0);
    uint8_t tid[16];
    memset(tid, 1, 16);
    sl_span *got;
    size_t n;
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 4);
    sl_arena_free(&ar);
    stg_close(s);
    rm_dir();

    /* An older filter: 4096 bits, probe i at (h + i * ((h >> 33) | 1)) & mask. */
    static uint8_t old[512];
    uint64_t in = stg_pair_hash(SL_STR_LIT("request.id"), SL_STR_LIT("req-1"));
    for (int i = 0; i < STG_BLOOM_PROBES; i++) {
        size_t bit = (size_t)((in + (uint64_t)i * ((in >> 33) | 1)) & 4095);
        old[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
    ASSERT_TRUE(stg_bloom_maybe(old, sizeof(old), in));
    int fp = 0;
    for (int i = 0; i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "other-%d", i);
        fp +=
            stg_bloom_maybe(old, sizeof(old), stg_pair_hash(SL_STR_LIT("request.id"), sl_str_c(v)));
    }
    ASSERT_TRUE(fp < 5);
    /* The current format: exact size plus a tag byte; 1000 values, then
     * about 1% false positives (probes are not independent: allow 3%). */
    size_t size = stg_bloom_size(1000);
    ASSERT_EQ(size % 8, 1);
    ASSERT_TRUE(size < 1000 * STG_BLOOM_BITS_PER_VALUE / 8 + 64);
    uint8_t *f = calloc(size, 1);
    ASSERT_TRUE(f != NULL);
    for (int i = 0; f != NULL && i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "in-%d", i);
        stg_bloom_add(f, size, stg_pair_hash(SL_STR_LIT("k"), sl_str_c(v)));
    }
    fp = 0;
    for (int i = 0; f != NULL && i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "in-%d", i);
        ASSERT_TRUE(stg_bloom_maybe(f, size, stg_pair_hash(SL_STR_LIT("k"), sl_str_c(v))));
        snprintf(v, sizeof(v), "out-%d", i);
        fp += stg_bloom_maybe(f, size, stg_pair_hash(SL_STR_LIT("k"), sl_str_c(v)));
    }
    ASSERT_TRUE(fp < 30);
    /* Malformed: "maybe". */
    ASSERT_TRUE(stg_bloom_maybe(f, size - 1, 12345));
    free(f);
}

static void test_tenants_and_retention(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_span a[1];
    make_span(&a[0], 7, 1, 0, &g_res_a, "root", T0, 1000);
    ASSERT_EQ(write_spans(s, "acme", a, 1), 0);
    sl_arena ar;
    sl_arena_init(&ar, 0);
    uint8_t tid[16];
    memset(tid, 7, 16);
    sl_span *got;
    size_t n;
    ASSERT_EQ(stg_get_trace(s, "acme", tid, &ar, &got, &n), 0);
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), SL_ENOTFOUND);
    ASSERT_TRUE(stg_tenant_valid(SL_STR_LIT("team-a.prod_1")));
    ASSERT_TRUE(!stg_tenant_valid(SL_STR_LIT("..")));
    ASSERT_TRUE(!stg_tenant_valid(SL_STR_LIT("a/b")));
    ASSERT_TRUE(!stg_tenant_valid(SL_STR_LIT("")));

    /* Retention: pretend eight days have passed. */
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano() + 8ull * 86400 * 1000000000ull), 0);
    ASSERT_EQ(stg_get_trace(s, "acme", tid, &ar, &got, &n), SL_ENOTFOUND);
    stg_stats st;
    stg_get_stats(s, &st);
    ASSERT_EQ(st.partitions, 0);
    sl_arena_free(&ar);
    stg_close(s);
    char path[400];
    snprintf(path, sizeof(path), "%s/acme/traces", g_dir);
    struct stat sb;
    ASSERT_TRUE(stat(path, &sb) == 0);
    char cmd[500];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", path);
    ASSERT_EQ(system(cmd), 0); /* the window directory is gone */
    rm_dir();
}

/* A key with many distinct values per block goes to the block's bloom filter
 * instead of one index entry per value; searches by such a value (a request
 * id) must still find exactly its trace, before and after the cut. */
static void test_high_cardinality_tags(void) {
    fresh_dir();
    stg_store *s = open_store();
    enum { N = 200 };
    static sl_span spans[N];
    static sl_attr attrs[N][2];
    static char ids[N][24];
    for (int i = 0; i < N; i++) {
        make_span(&spans[i], (uint8_t)(i + 1), (uint8_t)(i + 1), 0, &g_res_a, "GET /x",
                  T0 + (uint64_t)i * 1000, 1000);
        snprintf(ids[i], sizeof(ids[i]), "req-%04d", i);
        attrs[i][0] =
            (sl_attr){SL_STR_LIT("request.id"), {.type = SL_VAL_STR, .v.s = sl_str_c(ids[i])}};
        attrs[i][1] =
            (sl_attr){SL_STR_LIT("http.method"), {.type = SL_VAL_STR, .v.s = SL_STR_LIT("GET")}};
        spans[i].attrs = attrs[i];
        spans[i].nattrs = 2;
    }
    ASSERT_EQ(write_spans(s, "default", spans, N), 0);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
        }
        uint8_t found[4][16];
        size_t n = 0;
        stg_tag tag = {SL_STR_LIT("request.id"), SL_STR_LIT("req-0123")};
        stg_trace_query q = {.tenant = "default",
                             .service = SL_STR_LIT("frontend"),
                             .tags = &tag,
                             .ntags = 1,
                             .limit = 4};
        ASSERT_EQ(stg_find_traces(s, &q, found, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(found[0][0], 124);
        tag.value = SL_STR_LIT("req-9999");
        ASSERT_EQ(stg_find_traces(s, &q, found, &n), 0);
        ASSERT_EQ(n, 0);
        stg_tag both[2] = {{SL_STR_LIT("request.id"), SL_STR_LIT("req-0007")},
                           {SL_STR_LIT("http.method"), SL_STR_LIT("GET")}};
        q.tags = both;
        q.ntags = 2;
        ASSERT_EQ(stg_find_traces(s, &q, found, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(found[0][0], 8);
    }
    stg_close(s);
    rm_dir();
}

/* Copies every record of the tenant's WAL environment into buf (key size,
 * key, value size, value), or writes buf's records back when restore. */
static int wal_records_io(const char *tenant, sl_buf *buf, int restore) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/wal", g_dir, tenant);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 2);
    mdb_env_set_mapsize(env, 64u << 20);
    rc = rc ? rc : mdb_env_open(env, path, 0, 0644);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    rc = rc ? rc : mdb_dbi_open(txn, "wal", 0, &dbi);
    if (rc != 0) {
        mdb_env_close(env);
        return rc;
    }
    if (restore) {
        const uint8_t *p = buf->data, *end = buf->data + buf->len;
        while (rc == 0 && p < end) {
            MDB_val k, v;
            memcpy(&k.mv_size, p, sizeof(size_t));
            k.mv_data = (void *)(uintptr_t)(p + sizeof(size_t));
            p += sizeof(size_t) + k.mv_size;
            memcpy(&v.mv_size, p, sizeof(size_t));
            v.mv_data = (void *)(uintptr_t)(p + sizeof(size_t));
            p += sizeof(size_t) + v.mv_size;
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
    } else {
        MDB_cursor *cur;
        MDB_val k, v;
        mdb_cursor_open(txn, dbi, &cur);
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            sl_buf_append(buf, &k.mv_size, sizeof(size_t));
            sl_buf_append(buf, k.mv_data, k.mv_size);
            sl_buf_append(buf, &v.mv_size, sizeof(size_t));
            sl_buf_append(buf, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    rc = rc ? rc : mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

/* A crash after a cut committed its blocks but before it deleted the WAL
 * records leaves both; the window's cut mark must make the next cut delete
 * those records without storing their spans a second time. */
static void test_cut_is_exactly_once(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_span a[2];
    make_span(&a[0], 3, 1, 0, &g_res_a, "root", T0, 1000);
    make_span(&a[1], 3, 2, 1, &g_res_b, "child", T0 + 10, 500);
    ASSERT_EQ(write_spans(s, "default", a, 2), 0);
    ASSERT_EQ(write_spans(s, "default", a + 1, 1), 0);
    stg_close(s);
    sl_buf saved;
    sl_buf_init(&saved, 0);
    ASSERT_EQ(wal_records_io("default", &saved, 0), 0);
    ASSERT_TRUE(saved.len > 0);

    s = open_store();
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_stats st;
    stg_get_stats(s, &st);
    uint64_t blocks = st.blocks;
    ASSERT_TRUE(blocks >= 1);
    ASSERT_EQ(st.wal_records, 0);
    stg_close(s);

    /* The "crash": the records come back as if never deleted. */
    ASSERT_EQ(wal_records_io("default", &saved, 1), 0);
    s = open_store();
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 2);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 0);
    ASSERT_U64_EQ(st.blocks, blocks); /* nothing cut twice */

    /* New writes after that get sequences above the mark and are cut. */
    sl_span late[1];
    make_span(&late[0], 3, 9, 1, &g_res_b, "late", T0 + 20, 5);
    ASSERT_EQ(write_spans(s, "default", late, 1), 0);
    ASSERT_EQ(stg_maintain(s, sl_now_unix_nano()), 0);
    stg_get_stats(s, &st);
    ASSERT_U64_EQ(st.blocks, blocks + 1);
    sl_arena ar;
    sl_arena_init(&ar, 0);
    uint8_t tid[16];
    memset(tid, 3, 16);
    sl_span *got;
    size_t n;
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 3);
    sl_arena_free(&ar);
    sl_buf_free(&saved);
    stg_close(s);
    rm_dir();
}

/* Windows that ended are remapped at their file size (sealed) so that days
 * of them do not each reserve the full map; they stay readable, reopen
 * sealed, and are unsealed when a crash left records for them to cut. */
static int count_sealed(stg_store *s, int *total) {
    int n = 0;
    *total = 0;
    for (stg_partition *p = s->parts; p != NULL; p = p->next) {
        n += p->sealed;
        (*total)++;
    }
    return n;
}

static void test_sealed_windows(void) {
    int total;
    fresh_dir();
    g_partition_ns = 1000000000ull;
    stg_store *s = open_store();
    sl_span a[2];
    make_span(&a[0], 5, 1, 0, &g_res_a, "root", T0, 1000);
    make_span(&a[1], 5, 2, 1, &g_res_b, "child", T0 + 10, 500);
    ASSERT_EQ(write_spans(s, "default", a, 2), 0);
    stg_close(s);
    sl_buf saved;
    sl_buf_init(&saved, 0);
    ASSERT_EQ(wal_records_io("default", &saved, 0), 0);
    s = open_store();
    uint64_t later = sl_now_unix_nano() + 60ull * 1000000000ull;
    ASSERT_EQ(stg_maintain(s, later), 0); /* cuts, then seals the past window */
    ASSERT_EQ(count_sealed(s, &total), 1);
    ASSERT_EQ(total, 1);
    sl_arena ar;
    sl_arena_init(&ar, 0);
    uint8_t tid[16];
    memset(tid, 5, 16);
    sl_span *got;
    size_t n;
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 2);
    stg_stats st;
    stg_get_stats(s, &st);
    uint64_t blocks = st.blocks;
    stg_close(s);

    /* The crash leftovers: records for the now sealed window. Let the real
     * clock pass the 1 s window so that it is past when the store reopens. */
    ASSERT_EQ(wal_records_io("default", &saved, 1), 0);
    sleep(2);
    s = open_store();
    ASSERT_EQ(count_sealed(s, &total), 1); /* a past window opens sealed */
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(stg_maintain(s, later), 0);
    stg_get_stats(s, &st);
    ASSERT_EQ(st.wal_records, 0);
    ASSERT_U64_EQ(st.blocks, blocks);
    ASSERT_EQ(count_sealed(s, &total), 1); /* unsealed to cut, sealed again */
    ASSERT_EQ(stg_get_trace(s, "default", tid, &ar, &got, &n), 0);
    ASSERT_EQ(n, 2);
    sl_arena_free(&ar);
    sl_buf_free(&saved);
    stg_close(s);
    g_partition_ns = 0;
    rm_dir();
}

static int count_rec(void *ud, uint64_t window, uint64_t seq, const uint8_t *rec, size_t size) {
    size_t *n = ud;
    (void)window, (void)seq;
    if (size == 5 && memcmp(rec, "hello", 5) == 0) {
        (*n)++;
    }
    return 0;
}

/* Records of other signals share the WAL commit but live in their own
 * databases: the trace cutter leaves them, they survive a reopen, and they
 * count in the backlog. (The logs and metrics cutters take their records:
 * unreadable ones like these are dropped, loudly, rather than block the log.) */
static void test_wal_signals(void) {
    fresh_dir();
    stg_store *s = open_store();
    sl_span sp;
    make_span(&sp, 0x31, 1, 0, &g_res_a, "op", 1700000000000000000ull, 1000);
    sl_buf rec;
    sl_buf_init(&rec, 0);
    ASSERT_EQ(stg_wal_encode(&sp, 1, &rec), 0);
    const uint8_t hello[] = "hello";
    stg_write w[3] = {{"t1", STG_TRACES, rec.data, rec.len, 1},
                      {"t1", STG_LOGS, hello, 5, 1},
                      {"t1", STG_METRICS, hello, 5, 1}};
    ASSERT_EQ(stg_write_batch(s, w, 3), 0);
    stg_write bad = {"t1", (stg_signal)7, hello, 5, 1};
    ASSERT_EQ(stg_write_batch(s, &bad, 1), SL_EINVAL);
    ASSERT_TRUE(stg_wal_backlog(s) >= rec.len + 10);
    ASSERT_EQ(stg_maintain(s, 1700000000000000000ull), 0);
    size_t nlogs = 0, nmetrics = 0, none = 0;
    ASSERT_EQ(stg_wal_scan(s, "t1", STG_LOGS, count_rec, &nlogs), 0);
    ASSERT_EQ(stg_wal_scan(s, "t1", STG_METRICS, count_rec, &nmetrics), 0);
    ASSERT_EQ(stg_wal_scan(s, "nobody", STG_LOGS, count_rec, &none), 0);
    ASSERT_EQ(nlogs, 0);
    ASSERT_EQ(nmetrics, 0);
    ASSERT_EQ(none, 0);
    stg_close(s);
    s = open_store();
    nmetrics = 0;
    ASSERT_EQ(stg_wal_scan(s, "t1", STG_METRICS, count_rec, &nmetrics), 0);
    ASSERT_EQ(nmetrics, 0);
    stg_stats st;
    stg_get_stats(s, &st);
    ASSERT_U64_EQ(st.wal_records, 0); /* every record was cut (or dropped) */
    /* The trace is readable from its block. */
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_span *spans;
    size_t n;
    uint8_t id[16];
    memset(id, 0x31, 16);
    ASSERT_EQ(stg_get_trace(s, "t1", id, &a, &spans, &n), 0);
    ASSERT_EQ(n, 1);
    sl_arena_free(&a);
    sl_buf_free(&rec);
    stg_close(s);
    rm_dir();
}

int main(void) {
    RUN(test_wal_signals);
    RUN(test_sealed_windows);
    RUN(test_cut_is_exactly_once);
    RUN(test_high_cardinality_tags);
    RUN(test_write_read_cut);
    RUN(test_legacy_windows);
    RUN(test_tenants_and_retention);
    return SL_TEST_RESULT();
}
