/*
 * Logs storage: the module plugged into the store through stg_signal_ops
 * (open, close, cut, retention, stats). It owns the logs windows (one LMDB
 * environment per tenant per arrival window, see logs_int.h) and the cutter
 * that moves the uncut STG_LOGS WAL records into them: per window it sorts
 * the records by (service, time), cuts blocks that never mix services,
 * encodes and compresses them, builds the svc/trace indexes and the token
 * filters, and commits all of it with the window's mark in one transaction;
 * only then are the WAL records deleted (exactly once across crashes, as
 * the trace cutter does).
 *
 * Threads: open/close from stg_open/stg_close; cut and retention on the
 * storage maintenance thread (cut with s->cut_mu held); the window list is
 * shared with readers under logs_state.mu.
 */
#include "logs_int.h"

#include "logs_codec.h"
#include "sl_err.h"
#include "sl_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGS_WAL_LEVEL 1                 /* zstd level of WAL records */
#define LOGS_BLOCK_MAX_RECS 16384        /* records per block at most */
#define LOGS_BLOCK_MAX_BYTES (8u << 20)  /* body/attribute bytes per block, roughly */
#define LOGS_CUT_MAX_RECS (512u << 10)   /* records one cut pass takes */
#define LOGS_CUT_ARENA ((size_t)1 << 30) /* decoded records of one pass */
#define LOGS_CUT_MAX_WINDOWS 16
#define LOGS_SEAL_MARGIN (64ull << 20)
#define LOGS_ENCODE_THREADS 4 /* at most, and never more than the cores */

static logs_state *state(stg_store *s) {
    return s->sig[STG_LOGS];
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

int stg_logs_wal_encode(const sl_log_record *recs, size_t n, sl_buf *out) {
    const sl_log_record **ptrs = malloc((n ? n : 1) * sizeof(*ptrs));
    if (ptrs == NULL) {
        return SL_ENOMEM;
    }
    uint8_t h[LOGS_WAL_HDR];
    uint64_t lo = UINT64_MAX, hi = 0;
    uint32_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = &recs[i];
        lo = recs[i].time_unix_nano < lo ? recs[i].time_unix_nano : lo;
        hi = recs[i].time_unix_nano > hi ? recs[i].time_unix_nano : hi;
        mask |= logs_sev_bit(recs[i].severity_number);
    }
    memcpy(h, LOGS_WAL_MAGIC, 4);
    put_le(h + 4, n > 0 ? lo : 0, 8);
    put_le(h + 12, hi, 8);
    put_le(h + 20, mask, 4);
    put_le(h + 24, n, 4);
    size_t start = out->len;
    int rc = sl_buf_append(out, h, sizeof(h));
    if (rc == 0) {
        rc = stg_logs_encode(ptrs, n, LOGS_WAL_LEVEL, out);
    }
    if (rc != 0) {
        out->len = start;
    }
    free(ptrs);
    return rc;
}

int logs_wal_parse(const uint8_t *v, size_t size, logs_wal_hdr *h, const uint8_t **block,
                   size_t *block_size) {
    if (size < LOGS_WAL_HDR || memcmp(v, LOGS_WAL_MAGIC, 4) != 0) {
        return SL_ECORRUPT;
    }
    h->min_time = get_le(v + 4, 8);
    h->max_time = get_le(v + 12, 8);
    h->sev_mask = (uint32_t)get_le(v + 20, 4);
    h->nrecs = (uint32_t)get_le(v + 24, 4);
    *block = v + LOGS_WAL_HDR;
    *block_size = size - LOGS_WAL_HDR;
    return 0;
}

size_t logs_svc_key(sl_str service, int sev, uint8_t *buf) {
    size_t n = service.len < LOGS_SVC_KEY_MAX ? service.len : LOGS_SVC_KEY_MAX;
    if (n > 0) {
        memcpy(buf, service.ptr, n);
    }
    buf[n] = 0;
    buf[n + 1] = (uint8_t)(sev < 0 ? 0 : sev > 25 ? 25 : sev);
    return n + 2;
}

/* --- windows ------------------------------------------------------------- */

static uint64_t file_size(const char *dir) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int win_env_open(stg_store *s, logs_win *w, bool create, bool sealed) {
    MDB_txn *txn = NULL;
    uint64_t map =
        sealed ? (file_size(w->path) + LOGS_SEAL_MARGIN) & ~((1ull << 20) - 1) : s->opt.map_size;
    int rc = stg_env_open(w->path, create, 8, map, &w->env);
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, 0, &txn));
    }
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[] = {
        {"blocks", 0, &w->db_blocks},
        {"bmeta", 0, &w->db_bmeta},
        {"svc", MDB_DUPSORT | MDB_DUPFIXED, &w->db_svc},
        {"trace", 0, &w->db_trace},
        {"bloom", 0, &w->db_bloom},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = stg_lmdb_err(mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbs[i].dbi));
    }
    if (rc == 0) {
        /* The block count, the next block id and the cut mark. */
        MDB_stat st;
        MDB_cursor *cur;
        MDB_val k, v;
        if (mdb_stat(txn, w->db_blocks, &st) == 0) {
            atomic_store(&w->blocks, st.ms_entries);
        }
        w->next_block = 1;
        if ((rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_blocks, &cur))) == 0) {
            if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
                w->next_block = sl_get_be64(k.mv_data) + 1;
            }
            mdb_cursor_close(cur);
        }
        k = (MDB_val){4, (void *)(uintptr_t)LOGS_MARK_KEY};
        if (rc == 0 && mdb_get(txn, w->db_bmeta, &k, &v) == 0 && v.mv_size == 8) {
            memcpy(&w->mark, v.mv_data, 8);
        }
    }
    if (txn != NULL) {
        if (rc == 0) {
            rc = stg_lmdb_err(mdb_txn_commit(txn));
        } else {
            mdb_txn_abort(txn);
        }
    }
    if (rc != 0 && w->env != NULL) {
        mdb_env_close(w->env);
        w->env = NULL;
    }
    if (rc == 0) {
        w->sealed = sealed;
    }
    return rc;
}

static void win_free(logs_win *w) {
    if (w == NULL) {
        return;
    }
    if (w->env != NULL) {
        mdb_env_close(w->env);
    }
    free(w->tenant);
    free(w->path);
    free(w);
}

static bool window_ended(stg_store *s, uint64_t window_ns, uint64_t now) {
    return window_ns + s->opt.partition_ns <= now;
}

static int win_open(stg_store *s, const char *tenant, uint64_t window_ns, bool create,
                    logs_win **out) {
    logs_win *w = calloc(1, sizeof(*w));
    int rc = SL_ENOMEM;
    if (w == NULL) {
        return rc;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s/logs/%llu", s->data_dir, tenant,
             (unsigned long long)(window_ns / 1000000000u));
    w->tenant = strdup(tenant);
    w->path = strdup(path);
    w->window_ns = window_ns;
    if (w->tenant != NULL && w->path != NULL) {
        rc = win_env_open(s, w, create, !create && window_ended(s, window_ns, sl_now_unix_nano()));
    }
    if (rc != 0) {
        win_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* Inserts w keeping the list newest window first. Caller holds mu. */
static void win_insert(logs_state *ls, logs_win *w) {
    logs_win **pp = &ls->wins;
    while (*pp != NULL && (*pp)->window_ns > w->window_ns) {
        pp = &(*pp)->next;
    }
    w->next = *pp;
    *pp = w;
}

/* The window (tenant, window_ns), opened or created, with a reference. */
static int win_get(stg_store *s, const char *tenant, uint64_t window_ns, logs_win **out) {
    logs_state *ls = state(s);
    pthread_mutex_lock(&ls->mu);
    for (logs_win *w = ls->wins; w != NULL; w = w->next) {
        if (w->window_ns == window_ns && strcmp(w->tenant, tenant) == 0) {
            w->refs++;
            pthread_mutex_unlock(&ls->mu);
            *out = w;
            return 0;
        }
    }
    /* Opening under the lock: LMDB forbids opening one environment twice. */
    logs_win *w = NULL;
    int rc = win_open(s, tenant, window_ns, true, &w);
    if (rc == 0) {
        w->refs = 1;
        win_insert(ls, w);
        *out = w;
    }
    pthread_mutex_unlock(&ls->mu);
    return rc;
}

static void win_release(stg_store *s, logs_win *w) {
    logs_state *ls = state(s);
    pthread_mutex_lock(&ls->mu);
    bool free_it = --w->refs == 0 && w->dropped;
    pthread_mutex_unlock(&ls->mu);
    if (free_it) {
        char *path = strdup(w->path);
        win_free(w);
        if (path != NULL) {
            stg_rmtree(path);
            free(path);
        }
    }
}

int logs_wins_list(stg_store *s, const char *tenant, logs_win ***out, size_t *n) {
    logs_state *ls = state(s);
    pthread_mutex_lock(&ls->mu);
    size_t count = 0;
    for (logs_win *w = ls->wins; w != NULL; w = w->next) {
        count += strcmp(w->tenant, tenant) == 0;
    }
    logs_win **arr = malloc((count ? count : 1) * sizeof(*arr));
    if (arr == NULL) {
        pthread_mutex_unlock(&ls->mu);
        return SL_ENOMEM;
    }
    size_t i = 0;
    for (logs_win *w = ls->wins; w != NULL; w = w->next) {
        if (strcmp(w->tenant, tenant) == 0) {
            w->refs++;
            arr[i++] = w;
        }
    }
    pthread_mutex_unlock(&ls->mu);
    *out = arr;
    *n = count;
    return 0;
}

void logs_wins_release(stg_store *s, logs_win **wins, size_t n) {
    for (size_t i = 0; i < n; i++) {
        win_release(s, wins[i]);
    }
    free(wins);
}

/* --- open / close -------------------------------------------------------- */

static bool all_digits(const char *p) {
    if (*p == '\0') {
        return false;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}

static void logs_close(stg_store *s) {
    logs_state *ls = state(s);
    if (ls == NULL) {
        return;
    }
    logs_win *w = ls->wins;
    while (w != NULL) {
        logs_win *next = w->next;
        win_free(w);
        w = next;
    }
    pthread_mutex_destroy(&ls->mu);
    free(ls);
    s->sig[STG_LOGS] = NULL;
}

static int logs_open(stg_store *s) {
    logs_state *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&ls->mu, NULL);
    s->sig[STG_LOGS] = ls;
    DIR *top = opendir(s->data_dir);
    if (top == NULL) {
        return -errno;
    }
    struct dirent *te;
    int rc = 0;
    while (rc == 0 && (te = readdir(top)) != NULL) {
        if (!stg_tenant_valid(sl_str_c(te->d_name))) {
            continue;
        }
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s/logs", s->data_dir, te->d_name);
        DIR *d = opendir(path);
        if (d == NULL) {
            continue;
        }
        struct dirent *we;
        while (rc == 0 && (we = readdir(d)) != NULL) {
            uint64_t secs;
            if (!all_digits(we->d_name) || sl_parse_u64(sl_str_c(we->d_name), &secs) != 0 ||
                secs > UINT64_MAX / 1000000000u) {
                continue;
            }
            logs_win *w = NULL;
            rc = win_open(s, te->d_name, secs * 1000000000u, false, &w);
            if (rc == 0) {
                /* WAL sequences resume above every mark. */
                s->max_mark = w->mark > s->max_mark ? w->mark : s->max_mark;
                win_insert(ls, w);
            } else {
                SL_LOG_E("storage", "cannot open logs window %s/%s: %s", path, we->d_name,
                         sl_strerror(rc));
            }
        }
        closedir(d);
    }
    closedir(top);
    return rc;
}

/* --- cutter -------------------------------------------------------------- */

static int cmp_rec(const void *pa, const void *pb) {
    const sl_log_record *a = *(const sl_log_record *const *)pa;
    const sl_log_record *b = *(const sl_log_record *const *)pb;
    sl_str sa = a->resource->service, sb = b->resource->service;
    size_t n = sa.len < sb.len ? sa.len : sb.len;
    int c = n > 0 ? memcmp(sa.ptr, sb.ptr, n) : 0;
    if (c == 0 && sa.len != sb.len) {
        c = sa.len < sb.len ? -1 : 1;
    }
    if (c != 0) {
        return c;
    }
    if (a->time_unix_nano != b->time_unix_nano) {
        return a->time_unix_nano < b->time_unix_nano ? -1 : 1;
    }
    if (a->observed_unix_nano != b->observed_unix_nano) {
        return a->observed_unix_nano < b->observed_unix_nano ? -1 : 1;
    }
    return 0;
}

static size_t rec_bytes(const sl_log_record *r) {
    size_t n = 64 + r->body.v.s.len * (r->body.type != SL_VAL_INT && r->body.type != SL_VAL_BOOL &&
                                       r->body.type != SL_VAL_DOUBLE);
    for (uint32_t i = 0; i < r->nattrs; i++) {
        n += r->attrs[i].key.len + 16;
        uint8_t t = r->attrs[i].val.type;
        if (t == SL_VAL_STR || t == SL_VAL_ARRAY || t == SL_VAL_KVLIST || t == SL_VAL_BYTES) {
            n += r->attrs[i].val.v.s.len;
        }
    }
    return n;
}

/* Writes one block of recs (one service) with its indexes. */
static int cmp_trace_key(const void *a, const void *b) {
    return memcmp(a, b, LOGS_TRACE_KEY);
}

/* The block's trace table (see logs_int.h). */
static int put_trace_table(logs_win *w, MDB_txn *txn, const sl_log_record *const *recs, size_t n,
                           const uint8_t key[8], sl_buf *scratch) {
    scratch->len = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!sl_is_zero(recs[i]->trace_id, 16) &&
            (i == 0 || memcmp(recs[i]->trace_id, recs[i - 1]->trace_id, 16) != 0)) {
            rc = sl_buf_append(scratch, recs[i]->trace_id + 16 - LOGS_TRACE_KEY, LOGS_TRACE_KEY);
        }
    }
    if (rc != 0 || scratch->len == 0) {
        return rc;
    }
    size_t cnt = scratch->len / LOGS_TRACE_KEY, u = 0;
    qsort(scratch->data, cnt, LOGS_TRACE_KEY, cmp_trace_key);
    for (size_t i = 0; i < cnt; i++) {
        uint8_t *e = scratch->data + i * LOGS_TRACE_KEY;
        if (u == 0 || memcmp(scratch->data + (u - 1) * LOGS_TRACE_KEY, e, LOGS_TRACE_KEY) != 0) {
            memmove(scratch->data + u * LOGS_TRACE_KEY, e, LOGS_TRACE_KEY);
            u++;
        }
    }
    MDB_val k = {8, (void *)(uintptr_t)key}, v = {u * LOGS_TRACE_KEY, scratch->data};
    return stg_lmdb_err(mdb_put(txn, w->db_trace, &k, &v, 0));
}

/* One block of a cut: its records (one service, sorted by time) and, once
 * encoded (off the transaction, in parallel), its bytes and token filter. */
typedef struct cut_block {
    const sl_log_record *const *recs;
    size_t n;
    sl_buf data, bloom;
    int rc;
} cut_block;

typedef struct encode_job {
    cut_block *blocks;
    size_t n;
    int level;
    atomic_size_t next;
} encode_job;

static void *encode_worker(void *arg) {
    encode_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) {
            break;
        }
        cut_block *b = &j->blocks[i];
        b->rc = stg_logs_encode(b->recs, b->n, j->level, &b->data);
        if (b->rc == 0) {
            b->rc = stg_logs_bloom_build(b->recs, b->n, &b->bloom);
        }
    }
    return NULL;
}

/* Encodes every block on up to LOGS_ENCODE_THREADS threads (this one
 * included). Returns the first block's error, if any. */
static int encode_blocks(cut_block *blocks, size_t n, int level) {
    encode_job job = {blocks, n, level, 0};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = cores > 1 ? (size_t)cores : 1;
    nthreads = nthreads < LOGS_ENCODE_THREADS ? nthreads : LOGS_ENCODE_THREADS;
    nthreads = nthreads < n ? nthreads : n;
    pthread_t th[LOGS_ENCODE_THREADS];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++) {
        if (pthread_create(&th[started], NULL, encode_worker, &job) == 0) {
            started++;
        }
    }
    encode_worker(&job);
    for (size_t i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (blocks[i].rc != 0) {
            return blocks[i].rc;
        }
    }
    return 0;
}

/* Writes one encoded block with its metadata and index entries. */
static int put_block(logs_win *w, MDB_txn *txn, const cut_block *b, sl_buf *scratch) {
    const sl_log_record *const *recs = b->recs;
    size_t n = b->n;
    uint64_t id = w->next_block++;
    uint8_t key[8];
    stg_be64(key, id);
    int rc;
    MDB_val k = {8, key}, v = {b->data.len, b->data.data};
    uint64_t block_size = b->data.len;
    if ((rc = mdb_put(txn, w->db_blocks, &k, &v, 0)) != 0) {
        return stg_lmdb_err(rc);
    }
    v = (MDB_val){b->bloom.len, b->bloom.data};
    if ((rc = mdb_put(txn, w->db_bloom, &k, &v, 0)) != 0) {
        return stg_lmdb_err(rc);
    }

    /* Metadata, and per severity the time bounds for the svc index. */
    logs_bmeta m = {.min_time = UINT64_MAX};
    uint64_t smin[26], smax[26];
    for (int i = 0; i < 26; i++) {
        smin[i] = UINT64_MAX;
        smax[i] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t t = recs[i]->time_unix_nano;
        m.min_time = t < m.min_time ? t : m.min_time;
        m.max_time = t > m.max_time ? t : m.max_time;
        m.sev_mask |= logs_sev_bit(recs[i]->severity_number);
        int sv = recs[i]->severity_number;
        sv = sv < 0 ? 0 : sv > 25 ? 25 : sv;
        smin[sv] = t < smin[sv] ? t : smin[sv];
        smax[sv] = t > smax[sv] ? t : smax[sv];
    }
    if ((rc = put_trace_table(w, txn, recs, n, key, scratch)) != 0) {
        return rc;
    }
    m.nrecs = (uint32_t)n;
    sl_str svc = recs[0]->resource->service;
    size_t svc_len = svc.len < LOGS_SVC_KEY_MAX ? svc.len : LOGS_SVC_KEY_MAX;
    uint8_t mv[sizeof(m) + LOGS_SVC_KEY_MAX];
    m.block_size = block_size;
    memcpy(mv, &m, sizeof(m));
    if (svc_len > 0) {
        memcpy(mv + sizeof(m), svc.ptr, svc_len);
    }
    v = (MDB_val){sizeof(m) + svc_len, mv};
    if ((rc = mdb_put(txn, w->db_bmeta, &k, &v, 0)) != 0) {
        return stg_lmdb_err(rc);
    }
    for (int sv = 0; sv < 26; sv++) {
        if (smin[sv] == UINT64_MAX) {
            continue;
        }
        uint8_t sk[LOGS_SVC_KEY_MAX + 2];
        logs_svc_val val;
        memcpy(val.block_id, key, 8);
        val.min_time = smin[sv];
        val.max_time = smax[sv];
        MDB_val kk = {logs_svc_key(svc, sv, sk), sk}, vv = {sizeof(val), &val};
        if ((rc = mdb_put(txn, w->db_svc, &kk, &vv, 0)) != 0) {
            return stg_lmdb_err(rc);
        }
    }
    atomic_fetch_add(&w->blocks, 1);
    return 0;
}

/* Sorts recs and writes them as blocks plus the new mark, in one txn. */
static int cut_window(stg_store *s, logs_win *w, const sl_log_record **recs, size_t n,
                      uint64_t mark) {
    qsort(recs, n, sizeof(*recs), cmp_rec);
    MDB_txn *txn = NULL;
    sl_buf scratch;
    sl_buf_init(&scratch, 0);
    uint64_t next_block = w->next_block, blocks = atomic_load(&w->blocks);
    cut_block *bl = NULL;
    size_t nbl = 0, cap = 0;
    int rc = 0;
    /* Blocks never mix services and stay under a size, so that a search
     * decodes little beyond what it asked for. */
    for (size_t start = 0; start < n && rc == 0;) {
        size_t end = start + 1, bytes = rec_bytes(recs[start]);
        while (end < n && end - start < LOGS_BLOCK_MAX_RECS && bytes < LOGS_BLOCK_MAX_BYTES &&
               sl_str_eq(recs[end]->resource->service, recs[start]->resource->service)) {
            bytes += rec_bytes(recs[end]);
            end++;
        }
        if (sl_array_grow(&bl, &cap, nbl + 1, sizeof(*bl)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        bl[nbl] = (cut_block){recs + start, end - start, {0}, {0}, 0};
        sl_buf_init(&bl[nbl].data, 0);
        sl_buf_init(&bl[nbl].bloom, 0);
        nbl++;
        start = end;
    }
    if (rc == 0) {
        rc = encode_blocks(bl, nbl, s->opt.block_level);
    }
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, 0, &txn));
    }
    for (size_t i = 0; i < nbl && rc == 0; i++) {
        rc = put_block(w, txn, &bl[i], &scratch);
    }
    if (rc == 0) {
        MDB_val k = {4, (void *)(uintptr_t)LOGS_MARK_KEY}, v = {8, &mark};
        rc = stg_lmdb_err(mdb_put(txn, w->db_bmeta, &k, &v, 0));
    }
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_txn_commit(txn));
        txn = NULL;
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc == 0) {
        w->mark = mark;
    } else {
        w->next_block = next_block;
        atomic_store(&w->blocks, blocks);
    }
    for (size_t i = 0; i < nbl; i++) {
        sl_buf_free(&bl[i].data);
        sl_buf_free(&bl[i].bloom);
    }
    free(bl);
    sl_buf_free(&scratch);
    return rc;
}

typedef struct cut_group {
    uint64_t window;
    logs_win *w; /* NULL: past retention, the records are dropped */
    uint64_t max_seq;
    const sl_log_record **recs;
    size_t n, cap;
} cut_group;

/* Reopens w for writing when it is sealed; false when readers hold it. */
static bool win_unseal(stg_store *s, logs_win *w) {
    logs_state *ls = state(s);
    bool ok = true;
    pthread_mutex_lock(&ls->mu);
    if (w->sealed) {
        if (w->refs == 1) {
            mdb_env_close(w->env);
            w->env = NULL;
            ok = win_env_open(s, w, false, false) == 0;
            if (!ok && win_env_open(s, w, false, true) != 0) {
                SL_LOG_E("storage", "%s: cannot reopen", w->path);
            }
        } else {
            ok = false;
        }
    }
    pthread_mutex_unlock(&ls->mu);
    return ok;
}

static int logs_cut(stg_store *s, stg_wal *wal) {
    int rc = 0;
    sl_arena a;
    sl_arena_init(&a, LOGS_CUT_ARENA);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    cut_group groups[LOGS_CUT_MAX_WINDOWS];
    size_t ngroups = 0, nrecs = 0, nrecords = 0;
    uint8_t last_key[STG_WAL_KEY];
    bool busy = false;
    uint64_t bytes = 0, now = sl_now_unix_nano();
    uint64_t cutoff = stg_retention_cutoff(s, wal->tenant, STG_LOGS, now);

    /* While txn is open, wal->resize is held shared (stg_wal_txn_begin). */
    if ((rc = stg_lmdb_err(stg_wal_txn_begin(wal, MDB_RDONLY, &txn))) != 0 ||
        (rc = stg_lmdb_err(mdb_cursor_open(txn, wal->dbs[STG_LOGS], &cur))) != 0) {
        goto out;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && nrecs < LOGS_CUT_MAX_RECS) {
        if (k.mv_size != STG_WAL_KEY) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        uint64_t window = sl_get_be64(k.mv_data), seq = sl_get_be64((uint8_t *)k.mv_data + 8);
        cut_group *g = NULL;
        for (size_t i = 0; i < ngroups; i++) {
            if (groups[i].window == window) {
                g = &groups[i];
            }
        }
        if (g == NULL) {
            if (ngroups == LOGS_CUT_MAX_WINDOWS) {
                break;
            }
            g = &groups[ngroups++];
            memset(g, 0, sizeof(*g));
            g->window = window;
            if (window + s->opt.partition_ns > cutoff &&
                (rc = win_get(s, wal->tenant, window, &g->w)) != 0) {
                ngroups--;
                goto out;
            }
            if (g->w != NULL && !win_unseal(s, g->w)) {
                busy = true; /* readers hold it: next pass */
                break;
            }
        }
        if (g->w != NULL && seq > g->w->mark) {
            sl_log_record *rs = NULL;
            size_t rn = 0;
            logs_wal_hdr hdr;
            const uint8_t *blk;
            size_t blk_size;
            int prc = logs_wal_parse(v.mv_data, v.mv_size, &hdr, &blk, &blk_size);
            if (prc == 0) {
                prc = stg_logs_decode(blk, blk_size, &a, &rs, &rn, NULL);
            }
            if (prc == SL_ENOMEM) {
                if (nrecords == 0) {
                    rc = prc;
                    goto out;
                }
                break; /* the rest waits for the next pass */
            }
            if (prc != 0) {
                SL_LOG_E("storage", "%s: dropping unreadable logs WAL record %llu: %s", wal->path,
                         (unsigned long long)seq, sl_strerror(prc));
                rn = 0;
            }
            if (sl_array_grow(&g->recs, &g->cap, g->n + rn, sizeof(*g->recs)) != 0) {
                rc = SL_ENOMEM;
                goto out;
            }
            for (size_t i = 0; i < rn; i++) {
                g->recs[g->n++] = &rs[i];
            }
            nrecs += rn;
            g->max_seq = seq;
        }
        memcpy(last_key, k.mv_data, STG_WAL_KEY);
        bytes += v.mv_size;
        nrecords++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !busy) {
        rc = stg_lmdb_err(mrc);
        goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    stg_wal_txn_done(wal);
    txn = NULL;
    if (nrecords == 0 || busy) {
        goto out;
    }
    for (size_t i = 0; i < ngroups; i++) {
        cut_group *g = &groups[i];
        if (g->w != NULL && g->n > 0 &&
            (rc = cut_window(s, g->w, g->recs, g->n, g->max_seq)) == SL_EMAPFULL) {
            /* Grow the full map while the window is ours alone, then retry
             * (a failed cut leaves nothing behind); readers holding it make
             * the next pass try again. */
            logs_state *ls = state(s);
            pthread_mutex_lock(&ls->mu);
            int grc = g->w->refs == 1 ? stg_env_grow(g->w->env, g->w->path) : SL_EMAPFULL;
            pthread_mutex_unlock(&ls->mu);
            rc = grc == 0 ? cut_window(s, g->w, g->recs, g->n, g->max_seq) : grc;
        }
        if (rc != 0) {
            goto out;
        }
    }
    /* The windows hold the blocks now: delete the records. */
    if ((rc = stg_lmdb_err(stg_wal_trim(s, wal, STG_LOGS, last_key, nrecords, bytes))) != 0) {
        goto out;
    }
    SL_LOG_D("storage", "logs cut: %zu records of %zu WAL records", nrecs, nrecords);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(wal);
    }
    for (size_t i = 0; i < ngroups; i++) {
        free(groups[i].recs);
        if (groups[i].w != NULL) {
            win_release(s, groups[i].w);
        }
    }
    sl_arena_free(&a);
    if (rc != 0) {
        SL_LOG_W("storage", "logs cut for %s: %s", wal->tenant, sl_strerror(rc));
    }
    return rc;
}

/* --- retention, sealing, stats -------------------------------------------- */

static int logs_retention(stg_store *s, uint64_t now_ns) {
    logs_state *ls = state(s);
    logs_win *victims = NULL;
    pthread_mutex_lock(&ls->mu);
    logs_win **pp = &ls->wins;
    while (*pp != NULL) {
        logs_win *w = *pp;
        uint64_t cutoff = stg_retention_cutoff(s, w->tenant, STG_LOGS, now_ns);
        if (cutoff != 0 && w->window_ns + s->opt.partition_ns <= cutoff) {
            *pp = w->next;
            w->dropped = true;
            w->refs++; /* ours, released below */
            w->next = victims;
            victims = w;
            continue;
        }
        /* A window that ended a while ago is remapped at its file's size so
         * that a week of windows does not reserve terabytes of address
         * space; the cutter reopens it if late records arrive. */
        if (!w->sealed && w->refs == 0 &&
            window_ended(s, w->window_ns + 2ull * s->opt.cut_interval_ms * 1000000u, now_ns)) {
            mdb_env_close(w->env);
            w->env = NULL;
            if (win_env_open(s, w, false, true) != 0 && win_env_open(s, w, false, false) != 0) {
                SL_LOG_E("storage", "%s: cannot reopen", w->path);
            }
        }
        pp = &w->next;
    }
    pthread_mutex_unlock(&ls->mu);
    while (victims != NULL) {
        logs_win *w = victims;
        victims = w->next;
        SL_LOG_I("storage", "retention drops %s", w->path);
        win_release(s, w);
    }
    return 0;
}

static void logs_stats(stg_store *s, stg_stats *out) {
    logs_state *ls = state(s);
    if (ls == NULL) {
        return;
    }
    pthread_mutex_lock(&ls->mu);
    for (logs_win *w = ls->wins; w != NULL; w = w->next) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/data.mdb", w->path);
        struct stat st;
        if (stat(path, &st) == 0) {
            out->bytes_on_disk += (uint64_t)st.st_blocks * 512u;
        }
        out->partitions++;
        out->blocks += atomic_load(&w->blocks);
    }
    pthread_mutex_unlock(&ls->mu);
}

const stg_signal_ops stg_logs_ops = {
    .name = "logs",
    .open = logs_open,
    .close = logs_close,
    .cut = logs_cut,
    .retention = logs_retention,
    .stats = logs_stats,
};
