/*
 * The read path: trace lookup by id, trace search, operation listing and span
 * scans, over every partition of a tenant, reading both cut blocks and uncut
 * WAL records. Each call works in its own read transactions (MDB MVCC), so it
 * never blocks the writer and always sees a consistent snapshot per window.
 * Called from the query server's threads; thread-safe.
 */
#include "block_codec.h"
#include "storage_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>
#include <string.h>

#define READ_ARENA_MAX (512ull << 20)

static int map_lmdb(int rc) {
    return rc == 0 ? 0 : rc == MDB_NOTFOUND ? SL_ENOTFOUND : SL_ESTORAGE;
}

static bool overlaps(uint64_t lo, uint64_t hi, uint64_t qmin, uint64_t qmax) {
    return (qmin == 0 || hi >= qmin) && (qmax == 0 || lo <= qmax);
}

static bool part_overlaps(stg_partition *p, uint64_t qmin, uint64_t qmax) {
    uint64_t lo = atomic_load(&p->min_start), hi = atomic_load(&p->max_start);
    return lo != UINT64_MAX && overlaps(lo, hi, qmin, qmax);
}

/* Decodes the block with the given id into a. */
static int read_block(stg_partition *p, MDB_txn *txn, uint64_t id, sl_arena *a, sl_span **spans,
                      size_t *n) {
    uint8_t key[8];
    stg_be64(key, id);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, p->db_blocks, &k, &v);
    if (rc != 0) {
        return map_lmdb(rc);
    }
    rc = stg_block_decode(v.mv_data, v.mv_size, a, spans, n);
    if (rc == SL_ECORRUPT) {
        SL_LOG_E("storage", "%s: block %llu is corrupt", p->path, (unsigned long long)id);
    }
    return rc;
}

/* Decodes one WAL value into a; *skip is set when the record cannot hold the
 * wanted trace (want may be NULL). */
static int read_wal(const MDB_val *v, const uint8_t *want, sl_arena *a, sl_span **spans,
                    size_t *n) {
    const uint8_t *ids, *blk;
    size_t nids, blk_size;
    int rc = stg_wal_parse(v->mv_data, v->mv_size, &ids, &nids, &blk, &blk_size);
    if (rc != 0) {
        return rc;
    }
    if (want != NULL) {
        size_t lo = 0, hi = nids;
        bool found = false;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = memcmp(ids + mid * 16, want, 16);
            if (c == 0) {
                found = true;
                break;
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (!found) {
            *spans = NULL;
            *n = 0;
            return 0;
        }
    }
    return stg_block_decode(blk, blk_size, a, spans, n);
}

/* --- get trace ------------------------------------------------------------ */

typedef struct span_list {
    const sl_span **v;
    size_t n, cap;
} span_list;

static int list_push(span_list *l, const sl_span *sp) {
    if (sl_array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) != 0) {
        return SL_ENOMEM;
    }
    l->v[l->n++] = sp;
    return 0;
}

static int cmp_start(const void *a, const void *b) {
    const sl_span *x = *(const sl_span *const *)a, *y = *(const sl_span *const *)b;
    if (x->start_unix_nano != y->start_unix_nano) {
        return x->start_unix_nano < y->start_unix_nano ? -1 : 1;
    }
    return memcmp(x->span_id, y->span_id, 8);
}

/* Sorts by start time and drops repeats: exporters retry, so a span sent twice
 * is stored twice; it is shown once. */
static void list_sort_unique(span_list *l) {
    qsort(l->v, l->n, sizeof(*l->v), cmp_start);
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (w > 0 && cmp_start(&l->v[w - 1], &l->v[i]) == 0) {
            continue;
        }
        l->v[w++] = l->v[i];
    }
    l->n = w;
}

/* Uncut WAL records whose trace-id list names the trace. */
static int collect_trace_wal(stg_wal *w, const uint8_t id[16], sl_arena *tmp, span_list *out) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (stg_wal_txn_begin(w, MDB_RDONLY, &txn) != 0) {
        return SL_ESTORAGE;
    }
    int rc = 0;
    if (mdb_cursor_open(txn, w->dbs[STG_TRACES], &cur) != 0) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(w);
        return SL_ESTORAGE;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        sl_span *spans;
        size_t n;
        if (read_wal(&v, id, tmp, &spans, &n) == 0) {
            for (size_t i = 0; i < n && rc == 0; i++) {
                if (memcmp(spans[i].trace_id, id, 16) == 0) {
                    rc = list_push(out, &spans[i]);
                }
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    return rc;
}

/* Adds the spans of trace id found in block bid to out. */
static int collect_block_trace(stg_partition *p, MDB_txn *txn, uint64_t bid, const uint8_t id[16],
                               sl_arena *tmp, span_list *out) {
    sl_span *spans;
    size_t n;
    int rc = 0;
    if (read_block(p, txn, bid, tmp, &spans, &n) == 0) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (memcmp(spans[i].trace_id, id, 16) == 0) {
                rc = list_push(out, &spans[i]);
            }
        }
    }
    return rc;
}

static int collect_trace(stg_partition *p, const uint8_t id[16], sl_arena *tmp, span_list *out) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return SL_ESTORAGE;
    }
    /* Blocks named by the trace index: the items under the id's two key
     * bytes are sorted, so the ones with its next four bytes are adjacent. */
    if ((rc = mdb_cursor_open(txn, p->db_tid, &cur)) != 0) {
        rc = SL_ESTORAGE;
        goto out;
    }
    uint8_t first[STG_TID_FRAG + 4] = {0};
    memcpy(first, id + STG_TID_OFF + STG_TID_KEY, STG_TID_FRAG);
    MDB_val k = {STG_TID_KEY, (void *)(uintptr_t)(id + STG_TID_OFF)}, v = {sizeof(first), first};
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    while (mrc == 0 && rc == 0 && v.mv_size == sizeof(first) &&
           memcmp(v.mv_data, first, STG_TID_FRAG) == 0) {
        rc = collect_block_trace(p, txn, sl_get_be32((const uint8_t *)v.mv_data + STG_TID_FRAG), id,
                                 tmp, out);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    /* Windows cut before `tid` existed. */
    if (p->has_trace && rc == 0) {
        if ((rc = mdb_cursor_open(txn, p->db_trace, &cur)) != 0) {
            rc = SL_ESTORAGE;
            goto out;
        }
        k = (MDB_val){STG_TRACE_KEY, (void *)(uintptr_t)(id + 16 - STG_TRACE_KEY)};
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        while (mrc == 0 && rc == 0) {
            if (v.mv_size == 4) {
                rc = collect_block_trace(p, txn, sl_get_be32(v.mv_data), id, tmp, out);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
        }
    }
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

int stg_get_trace(stg_store *s, const char *tenant, const uint8_t trace_id[16], sl_arena *a,
                  sl_span **spans, size_t *n) {
    /* The WAL is read before the windows are listed and read: a cut commits
     * blocks before it deletes their records, so whatever left this WAL
     * snapshot is already in a window the later reads see. */
    sl_arena tmp;
    sl_arena_init(&tmp, READ_ARENA_MAX);
    span_list list = {0};
    stg_wal *w = NULL;
    int rc = 0;
    if (stg_wal_get(s, tenant, false, &w) == 0) {
        rc = collect_trace_wal(w, trace_id, &tmp, &list);
    }
    stg_partition **parts = NULL;
    size_t np = 0;
    if (rc == 0) {
        rc = stg_parts_list(s, tenant, &parts, &np);
    }
    if (rc != 0) {
        free(list.v);
        sl_arena_free(&tmp);
        return rc;
    }
    for (size_t i = 0; i < np && rc == 0; i++) {
        rc = collect_trace(parts[i], trace_id, &tmp, &list);
    }
    if (rc == 0 && list.n == 0) {
        rc = SL_ENOTFOUND;
    }
    if (rc == 0) {
        list_sort_unique(&list);
        rc = stg_spans_copy(list.v, list.n, a, spans);
        if (rc == 0) {
            *n = list.n;
        }
    }
    free(list.v);
    sl_arena_free(&tmp);
    stg_parts_release(s, parts, np);
    return rc;
}

/* --- find traces ---------------------------------------------------------- */

typedef struct id_set {
    uint64_t *v;
    size_t n, cap;
} id_set;

static int ids_push(id_set *s, uint64_t id) {
    if (sl_array_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0) {
        return SL_ENOMEM;
    }
    s->v[s->n++] = id;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void ids_sort_unique(id_set *s) {
    if (s->n < 2) {
        return;
    }
    qsort(s->v, s->n, sizeof(uint64_t), cmp_u64);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (s->v[i] != s->v[w - 1]) {
            s->v[w++] = s->v[i];
        }
    }
    s->n = w;
}

/* Keeps in a only the ids also in b (both sorted, unique). */
static void ids_intersect(id_set *a, const id_set *b) {
    size_t i = 0, j = 0, w = 0;
    while (i < a->n && j < b->n) {
        if (a->v[i] < b->v[j]) {
            i++;
        } else if (a->v[i] > b->v[j]) {
            j++;
        } else {
            a->v[w++] = a->v[i];
            i++;
            j++;
        }
    }
    a->n = w;
}

/* Adds the dupsort block ids stored under key to out. */
static int ids_from_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, id_set *out) {
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, dbi, &cur) != 0) {
        return SL_ESTORAGE;
    }
    MDB_val k = {klen, (void *)(uintptr_t)key}, v;
    int rc = 0;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    while (mrc == 0 && rc == 0) {
        if (v.mv_size == 8) {
            rc = ids_push(out, sl_get_be64(v.mv_data));
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Candidate blocks of one partition for q, newest last. */
static int candidate_blocks(stg_partition *p, MDB_txn *txn, const stg_trace_query *q, id_set *out) {
    int rc = 0;
    MDB_cursor *cur = NULL;
    uint8_t key[STG_MAX_KEY + 16];
    MDB_val k, v;
    if (q->service.len > 0) {
        /* Blocks holding the service (and operation), pruned by their
         * per-(service, operation) start and duration bounds. */
        size_t plen = stg_svcop_key(q->service, q->operation, -1, key);
        if (q->operation.len == 0) {
            plen -= 1; /* prefix "service\0" */
        }
        if (mdb_cursor_open(txn, p->db_svcop, &cur) != 0) {
            return SL_ESTORAGE;
        }
        k = (MDB_val){plen, key};
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (mrc == 0 && rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, key, plen) == 0) {
            if (v.mv_size == sizeof(stg_svcop_val)) {
                stg_svcop_val sv;
                memcpy(&sv, v.mv_data, sizeof(sv));
                bool ok = overlaps(sv.min_start, sv.max_start, q->start_min_unix_nano,
                                   q->start_max_unix_nano) &&
                          (q->min_duration_nano == 0 || sv.max_dur >= q->min_duration_nano) &&
                          (q->max_duration_nano == 0 || sv.min_dur <= q->max_duration_nano);
                if (ok) {
                    rc = ids_push(out, sl_get_be64(sv.block_id));
                }
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    } else {
        if (mdb_cursor_open(txn, p->db_bmeta, &cur) != 0) {
            return SL_ESTORAGE;
        }
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0 && rc == 0) {
            if (k.mv_size == 8 && v.mv_size == sizeof(stg_block_meta)) {
                stg_block_meta m;
                memcpy(&m, v.mv_data, sizeof(m));
                if (overlaps(m.min_start, m.max_start, q->start_min_unix_nano,
                             q->start_max_unix_nano)) {
                    rc = ids_push(out, sl_get_be64(k.mv_data));
                }
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    ids_sort_unique(out);
    for (size_t i = 0; i < q->ntags && rc == 0 && out->n > 0; i++) {
        id_set t = {0}, hc = {0};
        size_t kl = stg_attr_key(q->tags[i].key, q->tags[i].value, false, key);
        if (q->tags[i].value.len <= 256) {
            rc = ids_from_key(txn, p->db_attr, key, kl, &t);
        }
        /* Blocks where the key's values are in the bloom filter: keep those
         * whose filter may hold this value. */
        kl = stg_attr_key(q->tags[i].key, q->tags[i].value, true, key);
        if (rc == 0) {
            rc = ids_from_key(txn, p->db_attr, key, kl, &hc);
        }
        uint64_t h = stg_pair_hash(q->tags[i].key, q->tags[i].value);
        for (size_t j = 0; j < hc.n && rc == 0; j++) {
            uint8_t bid[8];
            stg_be64(bid, hc.v[j]);
            MDB_val bk = {8, bid}, bv;
            /* A missing or malformed filter means "maybe": never lose data. */
            if (mdb_get(txn, p->db_bloom, &bk, &bv) != 0 ||
                stg_bloom_maybe(bv.mv_data, bv.mv_size, h)) {
                rc = ids_push(&t, hc.v[j]);
            }
        }
        free(hc.v);
        ids_sort_unique(&t);
        ids_intersect(out, &t);
        free(t.v);
    }
    return rc;
}

static bool span_matches(const sl_span *sp, const stg_trace_query *q) {
    if (q->start_min_unix_nano != 0 && sp->start_unix_nano < q->start_min_unix_nano) {
        return false;
    }
    if (q->start_max_unix_nano != 0 && sp->start_unix_nano > q->start_max_unix_nano) {
        return false;
    }
    uint64_t d = sl_span_duration_nano(sp);
    if ((q->min_duration_nano != 0 && d < q->min_duration_nano) ||
        (q->max_duration_nano != 0 && d > q->max_duration_nano)) {
        return false;
    }
    if (q->service.len > 0 &&
        (sp->resource == NULL || !sl_str_eq(sp->resource->service, q->service))) {
        return false;
    }
    if (q->operation.len > 0 && !sl_str_eq(sp->name, q->operation)) {
        return false;
    }
    for (size_t i = 0; i < q->ntags; i++) {
        if (!stg_span_has_tag(sp, q->tags[i].key, q->tags[i].value)) {
            return false;
        }
    }
    return true;
}

typedef struct found {
    uint8_t (*ids)[16];
    uint64_t *starts;
    size_t n, limit;
} found;

/* Records the trace of a matching span; returns 1 when the limit is reached. */
static int note_found(found *f, const sl_span *sp) {
    for (size_t i = 0; i < f->n; i++) {
        if (memcmp(f->ids[i], sp->trace_id, 16) == 0) {
            if (sp->start_unix_nano > f->starts[i]) {
                f->starts[i] = sp->start_unix_nano;
            }
            return 0;
        }
    }
    memcpy(f->ids[f->n], sp->trace_id, 16);
    f->starts[f->n++] = sp->start_unix_nano;
    return f->n >= f->limit;
}

/* Uncut WAL records, newest first. */
static int search_wal(stg_wal *w, const stg_trace_query *q, sl_arena *tmp, found *f) {
    uint64_t lo = atomic_load(&w->min_start), hi = atomic_load(&w->max_start);
    if (lo == UINT64_MAX || !overlaps(lo, hi, q->start_min_unix_nano, q->start_max_unix_nano)) {
        return 0;
    }
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (stg_wal_txn_begin(w, MDB_RDONLY, &txn) != 0) {
        return SL_ESTORAGE;
    }
    if (mdb_cursor_open(txn, w->dbs[STG_TRACES], &cur) != 0) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(w);
        return SL_ESTORAGE;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    bool full = f->n >= f->limit;
    while (mrc == 0 && !full) {
        sl_span *spans;
        size_t n;
        uint64_t rlo, rhi;
        stg_wal_bounds(v.mv_data, v.mv_size, &rlo, &rhi);
        sl_arena_reset(tmp);
        if (overlaps(rlo, rhi, q->start_min_unix_nano, q->start_max_unix_nano) &&
            read_wal(&v, NULL, tmp, &spans, &n) == 0) {
            for (size_t i = 0; i < n && !full; i++) {
                if (span_matches(&spans[i], q)) {
                    full = note_found(f, &spans[i]);
                }
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    return 0;
}

static int search_partition(stg_partition *p, const stg_trace_query *q, sl_arena *tmp, found *f) {
    MDB_txn *txn = NULL;
    id_set blocks = {0};
    int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return SL_ESTORAGE;
    }
    /* Newest first: blocks by id, descending. */
    bool full = f->n >= f->limit;
    if (!full && (rc = candidate_blocks(p, txn, q, &blocks)) == 0) {
        for (size_t b = blocks.n; b-- > 0 && !full;) {
            sl_span *spans;
            size_t n;
            sl_arena_reset(tmp);
            if (read_block(p, txn, blocks.v[b], tmp, &spans, &n) != 0) {
                continue;
            }
            for (size_t i = 0; i < n && !full; i++) {
                if (span_matches(&spans[i], q)) {
                    full = note_found(f, &spans[i]);
                }
            }
        }
    }
    free(blocks.v);
    mdb_txn_abort(txn);
    return rc;
}

int stg_find_traces(stg_store *s, const stg_trace_query *q, uint8_t (*ids)[16], size_t *n) {
    if (q->limit == 0 || q->tenant == NULL) {
        return SL_EINVAL;
    }
    found f = {ids, malloc(q->limit * sizeof(uint64_t)), 0, q->limit};
    sl_arena tmp;
    sl_arena_init(&tmp, READ_ARENA_MAX);
    int rc = f.starts == NULL ? SL_ENOMEM : 0;
    stg_wal *w = NULL;
    if (rc == 0 && stg_wal_get(s, q->tenant, false, &w) == 0) {
        rc = search_wal(w, q, &tmp, &f); /* first: see stg_get_trace */
    }
    stg_partition **parts = NULL;
    size_t np = 0;
    if (rc == 0) {
        rc = stg_parts_list(s, q->tenant, &parts, &np);
    }
    if (rc != 0) {
        free(f.starts);
        sl_arena_free(&tmp);
        return rc;
    }
    for (size_t i = 0; i < np && rc == 0 && f.n < f.limit; i++) {
        if (part_overlaps(parts[i], q->start_min_unix_nano, q->start_max_unix_nano)) {
            rc = search_partition(parts[i], q, &tmp, &f);
        }
    }
    if (rc == 0) {
        /* Most recent first (by the latest matching span of each trace). */
        for (size_t i = 1; i < f.n; i++) {
            for (size_t j = i; j > 0 && f.starts[j] > f.starts[j - 1]; j--) {
                uint64_t ts = f.starts[j];
                f.starts[j] = f.starts[j - 1];
                f.starts[j - 1] = ts;
                uint8_t tid[16];
                memcpy(tid, ids[j], 16);
                memcpy(ids[j], ids[j - 1], 16);
                memcpy(ids[j - 1], tid, 16);
            }
        }
        *n = f.n;
    }
    free(f.starts);
    sl_arena_free(&tmp);
    stg_parts_release(s, parts, np);
    return rc;
}

/* --- operations and scans ----------------------------------------------- */

static int ops_partition(stg_partition *p, stg_op_cb cb, void *ud) {
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    if (mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn) != 0) {
        return SL_ESTORAGE;
    }
    int rc = 0;
    MDB_val k, v;
    if (mdb_cursor_open(txn, p->db_svcop, &cur) == 0) {
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0 && rc == 0) {
            const char *kp = k.mv_data;
            const char *z1 = memchr(kp, 0, k.mv_size);
            const char *z2 = z1 ? memchr(z1 + 1, 0, k.mv_size - (size_t)(z1 + 1 - kp)) : NULL;
            if (z2 != NULL && (size_t)(z2 - kp) + 2 == k.mv_size) {
                rc = cb(ud, (sl_str){kp, (size_t)(z1 - kp)},
                        (sl_str){z1 + 1, (size_t)(z2 - z1 - 1)}, (unsigned char)z2[1]);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }
    mdb_txn_abort(txn);
    return rc;
}

/* Calls fn with the decoded spans of every WAL record of w, oldest first,
 * until fn returns nonzero (returned). Unreadable records are skipped. */
typedef int (*wal_fn)(void *ud, sl_span *spans, size_t n);
static int wal_each(stg_wal *w, sl_arena *tmp, wal_fn fn, void *ud) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (stg_wal_txn_begin(w, MDB_RDONLY, &txn) != 0) {
        return SL_ESTORAGE;
    }
    if (mdb_cursor_open(txn, w->dbs[STG_TRACES], &cur) != 0) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(w);
        return SL_ESTORAGE;
    }
    int rc = 0;
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        sl_span *spans;
        size_t n;
        sl_arena_reset(tmp);
        if (read_wal(&v, NULL, tmp, &spans, &n) == 0 && n > 0) {
            rc = fn(ud, spans, n);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    return rc;
}

typedef struct ops_ctx {
    stg_op_cb cb;
    void *ud;
} ops_ctx;

static int ops_from_spans(void *ud, sl_span *spans, size_t n) {
    ops_ctx *c = ud;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sl_str svc = spans[i].resource ? spans[i].resource->service : SL_STR_LIT("unknown_service");
        rc = c->cb(c->ud, svc, spans[i].name, spans[i].kind);
    }
    return rc;
}

/* Runs wal_part over the tenant's WAL records, then win_part over each of its
 * windows, in that order (see stg_get_trace), with one scratch arena. */
typedef int (*win_fn)(stg_partition *p, sl_arena *tmp, void *ud);
static int each_source(stg_store *s, const char *tenant, wal_fn wal_part, win_fn win_part,
                       void *ud) {
    sl_arena tmp;
    sl_arena_init(&tmp, READ_ARENA_MAX);
    int rc = 0;
    stg_wal *w = NULL;
    if (stg_wal_get(s, tenant, false, &w) == 0) {
        rc = wal_each(w, &tmp, wal_part, ud);
    }
    stg_partition **parts = NULL;
    size_t np = 0;
    if (rc == 0) {
        rc = stg_parts_list(s, tenant, &parts, &np);
    }
    for (size_t i = 0; i < np && rc == 0; i++) {
        rc = win_part(parts[i], &tmp, ud);
    }
    if (parts != NULL) {
        stg_parts_release(s, parts, np);
    }
    sl_arena_free(&tmp);
    return rc;
}

static int ops_from_window(stg_partition *p, sl_arena *tmp, void *ud) {
    ops_ctx *c = ud;
    (void)tmp;
    return ops_partition(p, c->cb, c->ud);
}

int stg_list_operations(stg_store *s, const char *tenant, stg_op_cb cb, void *ud) {
    ops_ctx c = {cb, ud};
    return each_source(s, tenant, ops_from_spans, ops_from_window, &c);
}

/* Passes the spans of one decoded batch that start in range to cb. */
static int emit_range(sl_span *spans, size_t n, uint64_t lo, uint64_t hi, stg_span_cb cb,
                      void *ud) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (overlaps(spans[i].start_unix_nano, spans[i].start_unix_nano, lo, hi)) {
            spans[w++] = spans[i];
        }
    }
    return w > 0 ? cb(ud, spans, w) : 0;
}

int stg_scan_partition(stg_partition *p, uint64_t lo, uint64_t hi, sl_arena *tmp, stg_span_cb cb,
                       void *ud) {
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    if (mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn) != 0) {
        return SL_ESTORAGE;
    }
    int rc = 0;
    MDB_val k, v;
    if (mdb_cursor_open(txn, p->db_bmeta, &cur) == 0) {
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0 && rc == 0) {
            stg_block_meta m;
            if (k.mv_size == 8 && v.mv_size == sizeof(m)) {
                memcpy(&m, v.mv_data, sizeof(m));
                sl_span *spans;
                size_t n;
                sl_arena_reset(tmp);
                if (overlaps(m.min_start, m.max_start, lo, hi) &&
                    read_block(p, txn, sl_get_be64(k.mv_data), tmp, &spans, &n) == 0) {
                    rc = emit_range(spans, n, lo, hi, cb, ud);
                }
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }
    mdb_txn_abort(txn);
    return rc;
}

typedef struct scan_ctx {
    uint64_t lo, hi;
    stg_span_cb cb;
    void *ud;
} scan_ctx;

static int scan_from_spans(void *ud, sl_span *spans, size_t n) {
    scan_ctx *c = ud;
    return emit_range(spans, n, c->lo, c->hi, c->cb, c->ud);
}

static int scan_from_window(stg_partition *p, sl_arena *tmp, void *ud) {
    scan_ctx *c = ud;
    return part_overlaps(p, c->lo, c->hi) ? stg_scan_partition(p, c->lo, c->hi, tmp, c->cb, c->ud)
                                          : 0;
}

int stg_scan_spans(stg_store *s, const char *tenant, uint64_t start_min, uint64_t start_max,
                   stg_span_cb cb, void *ud) {
    scan_ctx c = {start_min, start_max, cb, ud};
    return each_source(s, tenant, scan_from_spans, scan_from_window, &c);
}
