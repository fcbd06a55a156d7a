/*
 * The write-ahead log: each accepted request becomes one record in its
 * tenant's WAL environment, keyed by (arrival window, sequence), appended by
 * the single writer thread in one transaction per tenant per batch (group
 * commit). mdb_txn_commit fsyncs, so once stg_write_batch returns 0 the
 * records survive kill -9.
 *
 * Record layout (little-endian):
 *   u32 magic "SLW1" | u64 min_start | u64 max_start | u32 ntrace_ids |
 *   ntrace_ids * 16-byte distinct trace ids | block (block_codec.h, level 1)
 * The trace-id list lets trace lookups skip records without decompressing.
 */
#include "block_codec.h"
#include "storage_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/statvfs.h>

#define WAL_HDR 24u
/* zstd level of WAL records: fast, since every request pays it on the hot
 * path; the cutter recompresses. */
#define STG_WAL_LEVEL (-1)

static int cmp_id(const void *a, const void *b) {
    return memcmp(a, b, 16);
}

int stg_wal_encode(const sl_span *spans, size_t n, sl_buf *out) {
    int rc = 0;
    const sl_span **ptrs = NULL;
    uint8_t(*ids)[16] = NULL;
    if (n > 0) {
        ptrs = malloc(n * sizeof(*ptrs));
        ids = malloc(n * 16);
        if (ptrs == NULL || ids == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
    }
    uint64_t min_start = UINT64_MAX, max_start = 0;
    size_t nids = 0;
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = &spans[i];
        if (spans[i].start_unix_nano < min_start) {
            min_start = spans[i].start_unix_nano;
        }
        if (spans[i].start_unix_nano > max_start) {
            max_start = spans[i].start_unix_nano;
        }
        /* Requests usually carry a trace's spans together: skip repeats of
         * the previous id cheaply, sort+unique the rest below. */
        if (nids == 0 || memcmp(ids[nids - 1], spans[i].trace_id, 16) != 0) {
            memcpy(ids[nids++], spans[i].trace_id, 16);
        }
    }
    if (nids > 1) {
        qsort(ids, nids, 16, cmp_id);
        size_t w = 1;
        for (size_t i = 1; i < nids; i++) {
            if (memcmp(ids[i], ids[w - 1], 16) != 0) {
                memcpy(ids[w++], ids[i], 16);
            }
        }
        nids = w;
    }
    uint8_t hdr[WAL_HDR];
    uint32_t magic = STG_WAL_MAGIC, cnt = (uint32_t)nids;
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &min_start, 8);
    memcpy(hdr + 12, &max_start, 8);
    memcpy(hdr + 20, &cnt, 4);
    if ((rc = sl_buf_append(out, hdr, sizeof(hdr))) != 0) {
        goto out;
    }
    if (nids > 0 && (rc = sl_buf_append(out, ids, nids * 16)) != 0) {
        goto out;
    }
    rc = stg_block_encode(ptrs, n, STG_WAL_LEVEL, out);
out:
    free(ptrs);
    free(ids);
    return rc;
}

int stg_wal_parse(const uint8_t *v, size_t size, const uint8_t **ids, size_t *nids,
                  const uint8_t **block, size_t *block_size) {
    uint32_t magic, cnt;
    if (size < WAL_HDR) {
        return SL_ECORRUPT;
    }
    memcpy(&magic, v, 4);
    memcpy(&cnt, v + 20, 4);
    if (magic != STG_WAL_MAGIC || cnt > (size - WAL_HDR) / 16) {
        return SL_ECORRUPT;
    }
    *ids = v + WAL_HDR;
    *nids = cnt;
    *block = v + WAL_HDR + (size_t)cnt * 16;
    *block_size = size - WAL_HDR - (size_t)cnt * 16;
    return 0;
}

void stg_wal_bounds(const uint8_t *v, size_t size, uint64_t *min_start, uint64_t *max_start) {
    *min_start = UINT64_MAX;
    *max_start = 0;
    if (size >= WAL_HDR) {
        memcpy(min_start, v + 4, 8);
        memcpy(max_start, v + 12, 8);
    }
}

/* --- the WAL environments ---------------------------------------------- */

void stg_wal_close(stg_wal *w) {
    if (w == NULL) {
        return;
    }
    if (w->env != NULL) {
        mdb_env_close(w->env);
    }
    pthread_rwlock_destroy(&w->resize);
    free(w->tenant);
    free(w->path);
    free(w);
}

int stg_wal_txn_begin(stg_wal *w, unsigned flags, MDB_txn **txn) {
    pthread_rwlock_rdlock(&w->resize);
    int rc = mdb_txn_begin(w->env, NULL, flags, txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&w->resize);
    }
    return rc;
}

void stg_wal_txn_done(stg_wal *w) {
    pthread_rwlock_unlock(&w->resize);
}

/* Grows w's map, before the writer opens its transaction, when the file's
 * high-water mark plus twice what is about to be written (and 1 MiB) would
 * not fit: LMDB answers MDB_MAP_FULL, not a larger file, past the map, and a
 * large record needs contiguous pages the free list of a small map may not
 * have. The map is address space, not disk, so it doubles. Waits at most 5 s
 * for readers to let go; then the write is tried as it is. Writer thread
 * (under write_mu). */
static void wal_ensure_room(stg_wal *w, uint64_t incoming) {
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(w->env, &info) != 0 || mdb_env_stat(w->env, &st) != 0) {
        return;
    }
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    uint64_t need = used + 2 * incoming + (1u << 20);
    if (need <= info.me_mapsize) {
        return;
    }
    uint64_t size = info.me_mapsize;
    while (size < need) {
        size *= 2;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    if (pthread_rwlock_timedwrlock(&w->resize, &dl) != 0) {
        SL_LOG_W("storage",
                 "write-ahead log of tenant %s is nearly full and readers hold it: "
                 "not grown",
                 w->tenant);
        return;
    }
    int mrc = mdb_env_set_mapsize(w->env, (size_t)size);
    pthread_rwlock_unlock(&w->resize);
    if (mrc != 0) {
        SL_LOG_E("storage", "write-ahead log of tenant %s: cannot grow its map to %llu MiB: %s",
                 w->tenant, (unsigned long long)(size >> 20), mdb_strerror(mrc));
    } else {
        SL_LOG_W("storage", "write-ahead log of tenant %s: map grown from %llu to %llu MiB",
                 w->tenant, (unsigned long long)(info.me_mapsize >> 20),
                 (unsigned long long)(size >> 20));
    }
}

/* The WAL database of each signal (traces keep the original name). */
static const char *const wal_db_names[STG_NSIGNALS] = {"wal", "wal.logs", "wal.metrics"};

/* Opens <data>/<tenant>/wal and reads its counters (a record count, byte
 * total and span bounds: what the cutter and readers need before the first
 * write). */
static int wal_open(stg_store *s, const char *tenant, bool create, stg_wal **out) {
    int rc = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/wal", s->data_dir, tenant);
    stg_wal *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return SL_ENOMEM;
    }
    pthread_rwlock_init(&w->resize, NULL);
    w->tenant = strdup(tenant);
    w->path = strdup(path);
    w->next_seq = 1;
    atomic_store(&w->min_start, UINT64_MAX);
    if (w->tenant == NULL || w->path == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    if ((rc = stg_env_open(path, create, STG_NSIGNALS + 1, s->opt.wal_map_size, &w->env)) != 0 ||
        (rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, 0, &txn))) != 0) {
        goto fail;
    }
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        if ((rc = stg_lmdb_err(mdb_dbi_open(txn, wal_db_names[sig], MDB_CREATE, &w->dbs[sig]))) !=
                0 ||
            (rc = stg_lmdb_err(mdb_cursor_open(txn, w->dbs[sig], &cur))) != 0) {
            goto fail;
        }
        MDB_val k, v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0) {
            if (sig == STG_TRACES) {
                uint64_t lo, hi;
                stg_wal_bounds(v.mv_data, v.mv_size, &lo, &hi);
                stg_widen_wal_bounds(w, lo, hi);
            }
            atomic_fetch_add(&w->bytes[sig], v.mv_size);
            atomic_fetch_add(&w->records[sig], 1);
            if (k.mv_size == STG_WAL_KEY) {
                uint64_t win = sl_get_be64(k.mv_data);
                uint64_t seq = sl_get_be64((uint8_t *)k.mv_data + 8);
                w->last_window = win > w->last_window ? win : w->last_window;
                w->next_seq = seq >= w->next_seq ? seq + 1 : w->next_seq;
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }
    if ((rc = stg_lmdb_err(mdb_txn_commit(txn))) != 0) {
        txn = NULL;
        goto fail;
    }
    txn = NULL;
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        atomic_fetch_add(&s->wal_backlog, atomic_load(&w->bytes[sig]));
    }
    *out = w;
    return 0;
fail:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    SL_LOG_E("storage", "cannot open write-ahead log %s: %s", path, sl_strerror(rc));
    stg_wal_close(w);
    return rc;
}

int stg_wal_get(stg_store *s, const char *tenant, bool create, stg_wal **out) {
    pthread_mutex_lock(&s->mu);
    for (stg_wal *w = s->wals; w != NULL; w = w->next) {
        if (strcmp(w->tenant, tenant) == 0) {
            pthread_mutex_unlock(&s->mu);
            *out = w;
            return 0;
        }
    }
    int rc = SL_ENOTFOUND;
    if (create) {
        stg_wal *w = NULL;
        rc = wal_open(s, tenant, true, &w);
        if (rc == 0) {
            /* Sequences must never repeat, even after the log was emptied:
             * the windows' cut marks compare against them. */
            w->next_seq = w->next_seq > s->max_mark + 1 ? w->next_seq : s->max_mark + 1;
            w->next = s->wals;
            s->wals = w;
            *out = w;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint64_t stg_wal_oldest_window(stg_wal *w) {
    return stg_wal_oldest_window_of(w, STG_TRACES);
}

uint64_t stg_wal_oldest_window_of(stg_wal *w, stg_signal sig) {
    uint64_t win = UINT64_MAX;
    MDB_txn *txn;
    MDB_cursor *cur;
    if (stg_wal_txn_begin(w, MDB_RDONLY, &txn) != 0) {
        return 0; /* unknown: as if everything were pending */
    }
    if (mdb_cursor_open(txn, w->dbs[sig], &cur) == 0) {
        MDB_val k, v;
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == STG_WAL_KEY) {
            win = sl_get_be64(k.mv_data);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    return win;
}

/* The writer adds right after its commit, so a cut may see records before
 * their counts: clamp at zero rather than wrap (the counters only pace cuts
 * and feed /metrics). */
static void sub_clamped(atomic_uint_least64_t *c, uint64_t n) {
    uint64_t cur = atomic_load(c);
    while (!atomic_compare_exchange_weak(c, &cur, cur > n ? cur - n : 0)) {
    }
}

int stg_wal_trim(stg_store *s, stg_wal *w, stg_signal sig, const uint8_t *last_key,
                 uint64_t nrecords, uint64_t bytes) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = stg_wal_txn_begin(w, 0, &txn);
    bool locked = rc == 0;
    if (rc == 0) {
        rc = mdb_cursor_open(txn, w->dbs[sig], &cur);
    }
    MDB_val k, v;
    int mrc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_NOTFOUND;
    /* The log only grows at its end, so the cut records are its head. */
    while (rc == 0 && mrc == 0 && k.mv_size == STG_WAL_KEY &&
           memcmp(k.mv_data, last_key, STG_WAL_KEY) <= 0) {
        rc = mdb_cursor_del(cur, 0);
        mrc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : mrc;
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (locked) {
        stg_wal_txn_done(w);
    }
    if (rc == 0) {
        sub_clamped(&w->bytes[sig], bytes);
        sub_clamped(&w->records[sig], nrecords);
        sub_clamped(&s->wal_backlog, bytes);
    }
    return rc;
}

int stg_wals_list(stg_store *s, stg_wal ***out, size_t *n) {
    pthread_mutex_lock(&s->mu);
    size_t count = 0;
    for (stg_wal *w = s->wals; w != NULL; w = w->next) {
        count++;
    }
    stg_wal **arr = malloc((count ? count : 1) * sizeof(*arr));
    if (arr != NULL) {
        size_t i = 0;
        for (stg_wal *w = s->wals; w != NULL; w = w->next) {
            arr[i++] = w;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (arr == NULL) {
        return SL_ENOMEM;
    }
    *out = arr;
    *n = count;
    return 0;
}

int stg_wal_discover(stg_store *s) {
    DIR *top = opendir(s->data_dir);
    if (top == NULL) {
        return -errno;
    }
    struct dirent *te;
    int rc = 0;
    while (rc == 0 && (te = readdir(top)) != NULL) {
        if (te->d_name[0] == '.' || !stg_tenant_valid(sl_str_c(te->d_name))) {
            continue;
        }
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s/wal/data.mdb", s->data_dir, te->d_name);
        if (stat(path, &st) != 0) {
            continue;
        }
        stg_wal *w = NULL;
        rc = wal_open(s, te->d_name, false, &w);
        if (rc == 0) {
            w->next_seq = w->next_seq > s->max_mark + 1 ? w->next_seq : s->max_mark + 1;
            pthread_mutex_lock(&s->mu);
            w->next = s->wals;
            s->wals = w;
            pthread_mutex_unlock(&s->mu);
        }
    }
    closedir(top);
    return rc;
}

void stg_widen_wal_bounds(stg_wal *w, uint64_t min_start, uint64_t max_start) {
    uint64_t cur = atomic_load(&w->min_start);
    while (min_start < cur && !atomic_compare_exchange_weak(&w->min_start, &cur, min_start)) {
    }
    cur = atomic_load(&w->max_start);
    while (max_start > cur && !atomic_compare_exchange_weak(&w->max_start, &cur, max_start)) {
    }
}

int stg_wal_scan(stg_store *s, const char *tenant, stg_signal sig, stg_wal_cb cb, void *ud) {
    if ((unsigned)sig >= STG_NSIGNALS) {
        return SL_EINVAL;
    }
    stg_wal *w;
    int rc = stg_wal_get(s, tenant, false, &w);
    if (rc != 0) {
        return rc == SL_ENOTFOUND ? 0 : rc;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if ((rc = stg_lmdb_err(stg_wal_txn_begin(w, MDB_RDONLY, &txn))) != 0) {
        return rc;
    }
    if ((rc = stg_lmdb_err(mdb_cursor_open(txn, w->dbs[sig], &cur))) != 0) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(w);
        return rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        if (k.mv_size == STG_WAL_KEY) {
            rc = cb(ud, sl_get_be64(k.mv_data), sl_get_be64((uint8_t *)k.mv_data + 8), v.mv_data,
                    v.mv_size);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    return rc;
}

/* LMDB reports a write cut short by a full disk as EIO (and a failure in
 * the middle of a transaction as MDB_BAD_TXN afterwards): any write error
 * with almost no free space left where the log lives is a full disk. */
static int commit_err(const stg_wal *log, int mrc) {
    int rc = mrc == MDB_MAP_FULL ? SL_EMAPFULL : stg_lmdb_err(mrc);
    struct statvfs vfs;
    if (rc != SL_EMAPFULL && statvfs(log->path, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < STG_DISK_LOW) {
        rc = -ENOSPC;
    }
    return rc;
}

/* --- group commit ------------------------------------------------------- */

/* The log line of a failed WAL write: a full map says so and what follows. */
static void log_write_err(const stg_wal *log, const char *what, int rc, int mrc) {
    if (mrc == MDB_MAP_FULL) {
        MDB_envinfo info;
        uint64_t map = mdb_env_info(log->env, &info) == 0 ? info.me_mapsize : 0;
        SL_LOG_E("storage",
                 "wal %s for tenant %s: the write-ahead log's map (%llu MiB) is full and could "
                 "not grow; writes are answered 503 until the cutter drains it",
                 what, log->tenant, (unsigned long long)(map >> 20));
    } else {
        SL_LOG_E("storage", "wal %s for tenant %s: %s (%s)", what, log->tenant, sl_strerror(rc),
                 mdb_strerror(mrc));
    }
}

typedef struct batch_wal {
    stg_wal *w;
    MDB_txn *txn;
} batch_wal;

#define BATCH_WALS 8

/* Writes the records of up to BATCH_WALS tenants whose done[] flag is clear,
 * one transaction per tenant, and sets their flags. */
static int write_round(stg_store *s, const stg_write *w, size_t n, uint64_t window, bool *done) {
    int rc = 0;
    batch_wal logs[BATCH_WALS];
    size_t nlogs = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (done[i]) {
            continue;
        }
        batch_wal *bw = NULL;
        for (size_t j = 0; j < nlogs; j++) {
            if (strcmp(logs[j].w->tenant, w[i].tenant) == 0) {
                bw = &logs[j];
                break;
            }
        }
        if (bw == NULL) {
            if (nlogs == BATCH_WALS) {
                continue; /* next round */
            }
            bw = &logs[nlogs];
            if ((rc = stg_wal_get(s, w[i].tenant, true, &bw->w)) != 0) {
                break;
            }
            uint64_t incoming = 0;
            for (size_t j = i; j < n; j++) {
                incoming += !done[j] && strcmp(w[j].tenant, w[i].tenant) == 0 ? w[j].rec_size : 0;
            }
            wal_ensure_room(bw->w, incoming);
            int mrc = stg_wal_txn_begin(bw->w, 0, &bw->txn);
            if (mrc != 0) {
                rc = commit_err(bw->w, mrc);
                SL_LOG_E("storage", "wal transaction for tenant %s: %s (%s)", bw->w->tenant,
                         sl_strerror(rc), mdb_strerror(mrc));
                break;
            }
            nlogs++;
        }
        stg_wal *log = bw->w;
        if (window > log->last_window) {
            log->last_window = window;
        }
        uint8_t key[STG_WAL_KEY];
        stg_be64(key, log->last_window);
        stg_be64(key + 8, log->next_seq++);
        MDB_val k = {STG_WAL_KEY, key}, v = {w[i].rec_size, (void *)(uintptr_t)w[i].rec};
        if ((unsigned)w[i].signal >= STG_NSIGNALS) {
            rc = SL_EINVAL;
            break;
        }
        int mrc = mdb_put(bw->txn, log->dbs[w[i].signal], &k, &v, MDB_APPEND);
        if (mrc != 0) {
            rc = commit_err(log, mrc);
            log_write_err(log, "append", rc, mrc);
        }
        done[i] = true;
    }
    /* Commit every log touched (each commit is durable), then publish the
     * new counters. On any failure abort what is left: the batch fails. */
    for (size_t j = 0; j < nlogs; j++) {
        stg_wal *log = logs[j].w;
        if (rc == 0) {
            int mrc = mdb_txn_commit(logs[j].txn);
            if (mrc != 0) {
                rc = commit_err(log, mrc);
                log_write_err(log, "commit", rc, mrc);
            }
        } else {
            mdb_txn_abort(logs[j].txn);
        }
        stg_wal_txn_done(log);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(log->tenant, w[i].tenant) == 0) {
                    if (w[i].signal == STG_TRACES) {
                        uint64_t lo, hi;
                        stg_wal_bounds(w[i].rec, w[i].rec_size, &lo, &hi);
                        stg_widen_wal_bounds(log, lo, hi);
                    }
                    atomic_fetch_add(&log->bytes[w[i].signal], w[i].rec_size);
                    atomic_fetch_add(&log->records[w[i].signal], 1);
                    atomic_fetch_add(&s->wal_backlog, w[i].rec_size);
                }
            }
        }
    }
    return rc;
}

int stg_write_batch(stg_store *s, const stg_write *w, size_t n) {
    uint64_t now = sl_now_unix_nano();
    uint64_t window = now - now % s->opt.partition_ns;
    bool small[256];
    bool *done = n <= 256 ? small : calloc(n, sizeof(bool));
    if (done == NULL) {
        return SL_ENOMEM;
    }
    memset(done, 0, n * sizeof(bool));
    int rc = 0;
    pthread_mutex_lock(&s->write_mu);
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            left += !done[i];
        }
        if (left == 0 || (rc = write_round(s, w, n, window, done)) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&s->write_mu);
    if (done != small) {
        free(done);
    }
    return rc;
}
