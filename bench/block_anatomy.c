/*
 * Where a block's bytes go: generates spangen requests (fresh, never resent),
 * converts them to spans as the collector does, sorts them by trace as the
 * cutter does, and encodes 8192-span blocks at the cutter's level, once as
 * they are and once with each part of the spans taken away. The difference
 * is what that part costs per span on disk. Single-threaded, offline.
 *
 * With --columns it also shows, for the blocks as generated, each column of
 * the format (docs/block-format.md) and each attribute key's value column:
 * its raw bytes per span and its bytes per span when compressed alone at the
 * same level (close to what it costs inside the block, whose zstd frame ends
 * a block at column boundaries).
 *
 * With --store DIR it instead writes the requests through the storage API
 * (WAL records as the collector writes them, a cut every 64 requests, as
 * the cutter makes them) into a fresh store in DIR, which must not exist,
 * and prints the traces window's bytes per span database by database
 * (LMDB pages in use: blocks, indexes, filters, metadata). Spans are
 * generated as they are stored, so any number fits in memory.
 *
 * Usage: block_anatomy [--requests N (64)] [--spans N (500)] [--seed N (5)]
 *                      [--level N (3)] [--columns] [--store DIR]
 */
#include "block_codec.h"
#include "storage.h"
#include "decode_traces.h"
#include "spangen.h"

#include "sl_arena.h"
#include "sl_err.h"
#include "sl_util.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <zstd.h>

#include <stdbool.h>
#include <dirent.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CUT_NONE, CUT_EVENTS, CUT_DOUBLES, CUT_INTS, CUT_STRINGS, CUT_ALL_ATTRS, CUT_NS, N_CUTS };

static const char *g_names[N_CUTS] = {
    "as generated",
    "without span events",
    "without double attributes",
    "without int attributes",
    "without string attributes",
    "without any span attribute",
    "timestamps rounded to microseconds",
};

static int cmp_span(const void *a, const void *b) {
    const sl_span *x = *(const sl_span *const *)a, *y = *(const sl_span *const *)b;
    int c = memcmp(x->trace_id, y->trace_id, 16);
    if (c != 0) {
        return c;
    }
    return x->start_unix_nano < y->start_unix_nano ? -1 : x->start_unix_nano > y->start_unix_nano;
}

/* Applies one cut to a copy of sp (attributes are filtered into a). */
static int cut_span(const sl_span *sp, int cut, sl_arena *a, sl_span *out) {
    *out = *sp;
    if (cut == CUT_EVENTS) {
        out->nevents = 0;
    } else if (cut == CUT_NS) {
        out->start_unix_nano -= out->start_unix_nano % 1000;
        out->end_unix_nano -= out->end_unix_nano % 1000;
    } else if (cut != CUT_NONE) {
        sl_attr *kept = sl_arena_calloc(a, sp->nattrs ? sp->nattrs : 1, sizeof(sl_attr));
        if (kept == NULL) {
            return SL_ENOMEM;
        }
        uint32_t w = 0;
        for (uint32_t i = 0; i < sp->nattrs; i++) {
            uint8_t t = sp->attrs[i].val.type;
            bool drop = cut == CUT_ALL_ATTRS || (cut == CUT_DOUBLES && t == SL_VAL_DOUBLE) ||
                        (cut == CUT_INTS && t == SL_VAL_INT) ||
                        (cut == CUT_STRINGS && t == SL_VAL_STR);
            if (!drop) {
                kept[w++] = sp->attrs[i];
            }
        }
        out->attrs = kept;
        out->nattrs = w;
    }
    return 0;
}

/* Per-column totals over all blocks, by name ("key=..." for value columns). */
typedef struct colstat {
    char name[128];
    size_t raw;
    size_t z;
} colstat;

typedef struct colacc {
    colstat *st;
    size_t n, cap;
    int level;
    char (*keys)[96]; /* value column k's key in the current block */
    size_t nkeys;
    bool failed;
} colacc;

static colstat *col_get(colacc *c, const char *name) {
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->st[i].name, name) == 0) {
            return &c->st[i];
        }
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        colstat *ns = realloc(c->st, nc * sizeof(*ns));
        if (ns == NULL) {
            c->failed = true;
            return NULL;
        }
        c->st = ns;
        c->cap = nc;
    }
    colstat *e = &c->st[c->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    return e;
}

static void on_column(void *ctx, int col, const char *name, const uint8_t *p, size_t len) {
    colacc *c = ctx;
    char nm[112];
    if (name == NULL) {
        size_t k = (size_t)(col - STG_BLOCK_VALUE_COLUMN);
        snprintf(nm, sizeof(nm), "value %s", k < c->nkeys ? c->keys[k] : "?");
        name = nm;
    }
    colstat *e = col_get(c, name);
    if (e == NULL || len == 0) {
        return;
    }
    size_t bound = ZSTD_compressBound(len);
    void *z = malloc(bound);
    size_t zn = z != NULL ? ZSTD_compress(z, bound, p, len, c->level) : 0;
    free(z);
    if (ZSTD_isError(zn) || z == NULL) {
        c->failed = true;
        return;
    }
    e->raw += len;
    e->z += zn < len ? zn : len;
}

static void key_note(colacc *c, sl_str key) {
    for (size_t i = 0; i < c->nkeys; i++) {
        if (strlen(c->keys[i]) == key.len && memcmp(c->keys[i], key.ptr, key.len) == 0) {
            return;
        }
    }
    char(*nk)[96] = realloc(c->keys, (c->nkeys + 1) * sizeof(*nk));
    if (nk == NULL) {
        c->failed = true;
        return;
    }
    c->keys = nk;
    snprintf(c->keys[c->nkeys++], 96, "%.*s", (int)(key.len < 90 ? key.len : 90), key.ptr);
}

static void keys_note(colacc *c, const sl_attr *a, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        key_note(c, a[i].key);
    }
}

/* Names the block's value columns the way the encoder numbers them: keys in
 * first-use order, the resources' before the spans'. */
static int block_keys(colacc *c, const sl_buf *blk) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_span *sp = NULL;
    size_t n = 0;
    c->nkeys = 0;
    int rc = stg_block_decode(blk->data, blk->len, &a, &sp, &n);
    const sl_resource *seen[256];
    size_t nseen = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const sl_resource *r = sp[i].resource;
        bool known = r == NULL;
        for (size_t j = 0; j < nseen && !known; j++) {
            known = seen[j] == r;
        }
        if (!known && nseen < 256) {
            seen[nseen++] = r;
            keys_note(c, r->attrs, r->nattrs);
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        keys_note(c, sp[i].attrs, sp[i].nattrs);
        for (uint32_t j = 0; j < sp[i].nevents; j++) {
            keys_note(c, sp[i].events[j].attrs, sp[i].events[j].nattrs);
        }
        for (uint32_t j = 0; j < sp[i].nlinks; j++) {
            keys_note(c, sp[i].links[j].attrs, sp[i].links[j].nattrs);
        }
    }
    sl_arena_free(&a);
    return rc;
}

static int cmp_colstat(const void *a, const void *b) {
    const colstat *x = a, *y = b;
    return x->z < y->z ? 1 : x->z > y->z ? -1 : 0;
}

static void columns_print(colacc *c, size_t nspans) {
    qsort(c->st, c->n, sizeof(*c->st), cmp_colstat);
    double zsum = 0;
    for (size_t i = 0; i < c->n; i++) {
        zsum += (double)c->st[i].z;
    }
    printf("\ncolumns of the blocks as generated, bytes/span (sum of alone-compressed: %.1f)\n",
           zsum / (double)nspans);
    printf("  %-48s %8s %8s\n", "column", "raw", "zstd");
    for (size_t i = 0; i < c->n; i++) {
        if (c->st[i].z * 200 < nspans) {
            continue; /* under 0.005 bytes/span */
        }
        printf("  %-48s %8.2f %8.2f\n", c->st[i].name, (double)c->st[i].raw / (double)nspans,
               (double)c->st[i].z / (double)nspans);
    }
}

/* Adds the pages of every named database of the LMDB environment in dir to
 * the totals by name. */
typedef struct dbsum {
    char name[32];
    uint64_t bytes;
} dbsum;

/* Also adds the pages in use in the file (all pages up to the last one
 * written, less the free ones) to *in_use: mdb_stat counts the pages of a
 * dupsort database's sub-databases nowhere, so the difference is theirs. */
static int env_sizes(const char *dir, dbsum *sums, size_t *nsums, size_t max, uint64_t *in_use) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_db;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 32);
    rc = rc ? rc : mdb_env_open(env, dir, MDB_RDONLY, 0644);
    rc = rc ? rc : mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        mdb_env_close(env);
        return rc;
    }
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    uint64_t nfree = 0;
    rc = mdb_cursor_open(txn, 0, &cur); /* the free list */
    while (rc == 0 && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        size_t cnt;
        if (v.mv_size >= sizeof(cnt)) {
            memcpy(&cnt, v.mv_data, sizeof(cnt));
            nfree += cnt;
        }
    }
    if (rc == 0) {
        mdb_cursor_close(cur);
    }
    *in_use += ((uint64_t)info.me_last_pgno + 1 - nfree) * st.ms_psize;
    rc = rc ? rc : mdb_dbi_open(txn, NULL, 0, &main_db);
    rc = rc ? rc : mdb_cursor_open(txn, main_db, &cur);
    while (rc == 0 && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        char name[32];
        MDB_dbi dbi;
        MDB_stat ds;
        if (k.mv_size == 0 || k.mv_size >= sizeof(name)) {
            continue;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        if (mdb_dbi_open(txn, name, 0, &dbi) != 0 || mdb_stat(txn, dbi, &ds) != 0) {
            continue;
        }
        size_t i = 0;
        while (i < *nsums && strcmp(sums[i].name, name) != 0) {
            i++;
        }
        if (i == *nsums && *nsums < max) {
            snprintf(sums[i].name, sizeof(sums[i].name), "%s", name);
            sums[i].bytes = 0;
            (*nsums)++;
        }
        if (i < *nsums) {
            sums[i].bytes +=
                (uint64_t)(ds.ms_branch_pages + ds.ms_leaf_pages + ds.ms_overflow_pages) *
                ds.ms_psize;
        }
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

static int store_run(const char *dir, long nreq, long per, uint64_t seed, int level) {
    stg_options so;
    stg_options_init(&so);
    so.data_dir = dir;
    so.background = 0;
    so.block_level = level;
    so.map_size = 8ull << 30; /* room for millions of spans; fits under valgrind */
    stg_store *st = NULL;
    spangen *g = NULL;
    spangen_options o;
    spangen_options_init(&o);
    o.seed = seed;
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_buf b, rec;
    sl_buf_init(&b, 0);
    sl_buf_init(&rec, 0);
    size_t total = 0;
    int rc = stg_open(&so, &st);
    rc = rc ? rc : spangen_create(&o, &g);
    for (long r = 0; rc == 0 && r < nreq; r++) {
        sl_span *sp;
        size_t k, rejected;
        char err[128];
        b.len = 0;
        rec.len = 0;
        ProtobufCMessage *m = NULL;
        if ((rc = spangen_request(g, (size_t)per, &b)) != 0) {
            break;
        }
        m = protobuf_c_message_unpack(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            sl_arena_pb(&a), b.len, b.data);
        if (m == NULL ||
            col_traces_to_model(
                (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)m,
                &a, &sp, &k, &rejected, err, sizeof(err)) != 0) {
            rc = SL_EINVAL;
            break;
        }
        if ((rc = stg_wal_encode(sp, k, &rec)) == 0) {
            stg_write w = {"default", STG_TRACES, rec.data, rec.len, (uint32_t)k};
            rc = stg_write_batch(st, &w, 1);
        }
        total += k;
        sl_arena_reset(&a);
        if (rc == 0 && (r % 64 == 63 || r + 1 == nreq)) {
            rc = stg_maintain(st, sl_now_unix_nano());
        }
    }
    stg_close(st);
    spangen_destroy(g);
    sl_buf_free(&b);
    sl_buf_free(&rec);
    sl_arena_free(&a);
    if (rc != 0) {
        fprintf(stderr, "block_anatomy: storing failed: %s\n", sl_strerror(rc));
        return rc;
    }
    char tdir[512];
    snprintf(tdir, sizeof(tdir), "%s/default/traces", dir);
    DIR *d = opendir(tdir);
    dbsum sums[32];
    size_t nsums = 0;
    uint64_t in_use = 0;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            char w[800];
            snprintf(w, sizeof(w), "%s/%s", tdir, de->d_name);
            rc = rc ? rc : env_sizes(w, sums, &nsums, 32, &in_use);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    uint64_t all = 0;
    for (size_t i = 0; i < nsums; i++) {
        all += sums[i].bytes;
    }
    printf("%zu spans stored, traces windows: %.1f bytes/span in LMDB pages in use\n", total,
           (double)in_use / (double)total);
    for (size_t i = 0; i < nsums; i++) {
        printf("  %-12s %6.2f bytes/span\n", sums[i].name, (double)sums[i].bytes / (double)total);
    }
    printf("  %-12s %6.2f bytes/span (dupsort sub-databases, LMDB meta pages)\n", "the rest",
           (double)(in_use - all) / (double)total);
    return rc;
}

static long arg(int argc, char **argv, const char *name, long def) {
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return strtol(argv[i + 1], NULL, 10);
        }
    }
    return def;
}

int main(int argc, char **argv) {
    long nreq = arg(argc, argv, "--requests", 64), per = arg(argc, argv, "--spans", 500);
    int level = (int)arg(argc, argv, "--level", 3);
    bool columns = false;
    for (int i = 1; i < argc; i++) {
        columns |= strcmp(argv[i], "--columns") == 0;
    }
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--store") == 0) {
            return store_run(argv[i + 1], nreq, per, (uint64_t)arg(argc, argv, "--seed", 5),
                             level) == 0
                       ? 0
                       : 1;
        }
    }
    colacc cols;
    memset(&cols, 0, sizeof(cols));
    cols.level = level;
    int rc = 1;
    sl_arena a;
    sl_arena_init(&a, 0);
    spangen *g = NULL;
    spangen_options o;
    spangen_options_init(&o);
    o.seed = (uint64_t)arg(argc, argv, "--seed", 5);
    sl_span **all = NULL, *cut = NULL;
    size_t n = 0;
    if (nreq < 1 || per < 1 || nreq * per > 10000000 || spangen_create(&o, &g) != 0 ||
        (all = calloc((size_t)(nreq * per), sizeof(*all))) == NULL ||
        (cut = calloc((size_t)(nreq * per), sizeof(*cut))) == NULL) {
        fprintf(stderr, "block_anatomy: bad arguments or out of memory\n");
        goto out;
    }
    /* The same spans as OTLP protobuf, the requests concatenated and cut
     * into groups of about 8192 spans, each group one zstd frame: what a
     * store of compressed request bodies would keep. */
    sl_buf wire;
    sl_buf_init(&wire, 0);
    size_t wire_z = 0, wire_raw = 0;
    for (long r = 0; r < nreq; r++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        sl_span *sp;
        size_t k, rejected;
        char err[128];
        ProtobufCMessage *m = NULL;
        if (spangen_request(g, (size_t)per, &b) == 0) {
            m = protobuf_c_message_unpack(
                &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                sl_arena_pb(&a), b.len, b.data);
        }
        if (m != NULL && sl_buf_append(&wire, b.data, b.len) == 0) {
            wire_raw += b.len;
        }
        if ((size_t)((r + 1) * per) % 8192 < (size_t)per || r + 1 == nreq) {
            size_t bound = ZSTD_compressBound(wire.len);
            void *z = malloc(bound);
            size_t zn = z != NULL ? ZSTD_compress(z, bound, wire.data, wire.len, level) : 0;
            wire_z += ZSTD_isError(zn) ? wire.len : zn;
            free(z);
            wire.len = 0;
        }
        sl_buf_free(&b);
        if (m == NULL ||
            col_traces_to_model(
                (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)m,
                &a, &sp, &k, &rejected, err, sizeof(err)) != 0) {
            fprintf(stderr, "block_anatomy: generating request %ld failed\n", r);
            goto out;
        }
        for (size_t i = 0; i < k && n < (size_t)(nreq * per); i++) {
            all[n++] = &sp[i];
        }
    }
    sl_buf_free(&wire);
    qsort(all, n, sizeof(*all), cmp_span);
    printf("%zu spans, blocks of 8192, zstd level %d\n", n, level);
    printf("  %-36s %6.1f bytes/span (%.1f uncompressed)\n", "OTLP protobuf requests + zstd",
           (double)wire_z / (double)n, (double)wire_raw / (double)n);
    double base = 0;
    for (int c = 0; c < N_CUTS; c++) {
        const sl_span **ptrs = calloc(n, sizeof(*ptrs));
        size_t total = 0;
        for (size_t i = 0; ptrs != NULL && i < n; i++) {
            if (cut_span(all[i], c, &a, &cut[i]) != 0) {
                goto out;
            }
            ptrs[i] = &cut[i];
        }
        for (size_t i = 0; ptrs != NULL && i < n; i += 8192) {
            sl_buf blk;
            sl_buf_init(&blk, 0);
            if (stg_block_encode(ptrs + i, n - i < 8192 ? n - i : 8192, level, &blk) != 0) {
                free(ptrs);
                goto out;
            }
            total += blk.len;
            if (columns && c == CUT_NONE &&
                (block_keys(&cols, &blk) != 0 ||
                 stg_block_columns(blk.data, blk.len, on_column, &cols) != 0 || cols.failed)) {
                fprintf(stderr, "block_anatomy: column breakdown failed\n");
                sl_buf_free(&blk);
                free(ptrs);
                goto out;
            }
            sl_buf_free(&blk);
        }
        free(ptrs);
        double bps = (double)total / (double)n;
        if (c == CUT_NONE) {
            base = bps;
            printf("  %-36s %6.1f bytes/span\n", g_names[c], bps);
        } else {
            printf("  %-36s %6.1f bytes/span (that part: %4.1f)\n", g_names[c], bps, base - bps);
        }
    }
    if (columns) {
        columns_print(&cols, n);
    }
    rc = 0;
out:
    free(cols.st);
    free(cols.keys);
    free(all);
    free(cut);
    spangen_destroy(g);
    sl_arena_free(&a);
    return rc;
}
