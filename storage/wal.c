/*
 * The write-ahead log: each accepted request becomes one record in the current
 * window's `wal` database, appended by the single writer thread in one
 * transaction per window per batch (group commit). mdb_txn_commit fsyncs, so
 * once stg_write_batch returns 0 the records survive kill -9.
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

#include <stdlib.h>
#include <string.h>

#define WAL_HDR 24u

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
    rc = stg_block_encode(ptrs, n, 1, out);
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

/* The span start bounds recorded in a record header. */
static void wal_bounds(const uint8_t *v, size_t size, uint64_t *min_start, uint64_t *max_start) {
    *min_start = UINT64_MAX;
    *max_start = 0;
    if (size >= WAL_HDR) {
        memcpy(min_start, v + 4, 8);
        memcpy(max_start, v + 12, 8);
    }
}

typedef struct batch_part {
    stg_partition *p;
    MDB_txn *txn;
} batch_part;

#define BATCH_PARTS 8

/* Writes the records of up to BATCH_PARTS tenants whose done[] flag is clear,
 * one transaction per tenant window, and sets their flags. */
static int write_round(stg_store *s, const stg_write *w, size_t n, uint64_t window, bool *done) {
    int rc = 0;
    batch_part parts[BATCH_PARTS];
    size_t nparts = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (done[i]) {
            continue;
        }
        batch_part *bp = NULL;
        for (size_t j = 0; j < nparts; j++) {
            if (strcmp(parts[j].p->tenant, w[i].tenant) == 0) {
                bp = &parts[j];
                break;
            }
        }
        if (bp == NULL) {
            if (nparts == BATCH_PARTS) {
                continue; /* next round */
            }
            bp = &parts[nparts];
            if ((rc = stg_part_get(s, w[i].tenant, window, &bp->p)) != 0) {
                break;
            }
            if (mdb_txn_begin(bp->p->env, NULL, 0, &bp->txn) != 0) {
                stg_part_release(s, bp->p);
                rc = SL_ESTORAGE;
                break;
            }
            nparts++;
        }
        uint8_t key[8];
        stg_be64(key, bp->p->next_seq++);
        MDB_val k = {8, key}, v = {w[i].rec_size, (void *)(uintptr_t)w[i].rec};
        int mrc = mdb_put(bp->txn, bp->p->db_wal, &k, &v, MDB_APPEND);
        if (mrc != 0) {
            SL_LOG_E("storage", "wal append: %s", mdb_strerror(mrc));
            rc = SL_ESTORAGE;
        }
        done[i] = true;
    }
    /* Commit every window touched (each commit is durable), then publish the
     * new counters. On any failure abort what is left: the batch fails. */
    for (size_t j = 0; j < nparts; j++) {
        stg_partition *p = parts[j].p;
        if (rc == 0) {
            int mrc = mdb_txn_commit(parts[j].txn);
            if (mrc != 0) {
                SL_LOG_E("storage", "wal commit: %s", mdb_strerror(mrc));
                rc = SL_ESTORAGE;
            }
        } else {
            mdb_txn_abort(parts[j].txn);
        }
        if (rc == 0) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(p->tenant, w[i].tenant) == 0) {
                    uint64_t lo, hi;
                    wal_bounds(w[i].rec, w[i].rec_size, &lo, &hi);
                    stg_widen_bounds(p, lo, hi);
                    atomic_fetch_add(&p->wal_bytes, w[i].rec_size);
                    atomic_fetch_add(&s->wal_backlog, w[i].rec_size);
                    atomic_fetch_add(&p->wal_records, 1);
                }
            }
        }
        stg_part_release(s, p);
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
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            left += !done[i];
        }
        if (left == 0 || (rc = write_round(s, w, n, window, done)) != 0) {
            break;
        }
    }
    if (done != small) {
        free(done);
    }
    return rc;
}
