/*
 * Log search (stg_find_logs). Reads the uncut WAL records first, then the
 * tenant's windows: each window's mark (in the same read transaction as its
 * block list) says which of those WAL records it already holds, so a record
 * is returned once even while a cut runs. Candidate blocks come from the
 * trace index, else the svc index (service, severity), else every block's
 * metadata; time bounds, the severity mask and the token filter drop blocks
 * without decoding them. The rest are decoded in time order of the search's
 * direction until `limit` records are found that no later block can beat;
 * every record is matched exactly.
 *
 * Memory: blocks are decoded into a scratch arena reset per block; matches
 * are deep-copied into the caller's arena, and trimmed to the best `limit`
 * whenever they reach twice that.
 *
 * Thread: any query thread; windows are pinned by references and read in
 * LMDB read transactions (readers never block the writer or the cutter).
 */
#include "logs_int.h"

#include "logs_codec.h"
#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>
#include <string.h>

#define SCRATCH_MAX ((size_t)1 << 30)
#define HITS_ARENA_MAX ((size_t)1 << 30)
#define HITS_COMPACT_SIZE ((size_t)32 << 20)

/* A match: the copied record and, for WAL matches, where it came from. */
typedef struct hit {
    sl_log_record rec;
    uint64_t window; /* WAL matches: the record's window; 0 for blocks */
    uint64_t seq;    /* WAL matches: the record's seq */
    bool wal;
    bool dead; /* a WAL match the window already holds */
} hit;

typedef struct search {
    stg_store *s;
    const stg_log_query *q;
    sl_arena *out; /* where add_hit copies to: hits_arena */
    sl_arena hits_arena;
    sl_arena scratch;
    hit *hits;
    size_t n, cap;
    stg_log_stats st;
    logs_wal_hdr *hdrs; /* pass 1 over the WAL */
    size_t nh, hcap;
    uint64_t bound; /* see wal_bound */
    bool have_bound;
    int err;
} search;

/* --- matching -------------------------------------------------------------- */

typedef struct term_ctx {
    const stg_log_term *t;
    bool found;
} term_ctx;

static void term_text(void *ud, sl_str text) {
    term_ctx *c = ud;
    if (!c->found) {
        c->found = c->t->phrase ? stg_logs_phrase_in(text, c->t->text)
                                : stg_logs_token_in(text, c->t->text);
    }
}

static bool rec_matches(const stg_log_query *q, const sl_log_record *r) {
    if (q->start_unix_nano != 0 && r->time_unix_nano < q->start_unix_nano) {
        return false;
    }
    if (q->end_unix_nano != 0 && r->time_unix_nano > q->end_unix_nano) {
        return false;
    }
    if (r->severity_number < q->min_severity) {
        return false;
    }
    if (q->service.len > 0 && !sl_str_eq(r->resource->service, q->service)) {
        return false;
    }
    if (q->trace_id != NULL && memcmp(r->trace_id, q->trace_id, 16) != 0) {
        return false;
    }
    if (q->span_id != NULL && memcmp(r->span_id, q->span_id, 8) != 0) {
        return false;
    }
    for (size_t i = 0; i < q->nterms; i++) {
        term_ctx c = {&q->terms[i], false};
        stg_logs_texts(r, term_text, &c);
        if (!c.found) {
            return false;
        }
    }
    return true;
}

/* --- copying matches out ---------------------------------------------------- */

static sl_str dup_str(search *S, sl_str v) {
    if (v.len == 0) {
        return (sl_str){"", 0};
    }
    char *p = sl_arena_memdup(S->out, v.ptr, v.len);
    if (p == NULL) {
        S->err = SL_ENOMEM;
        return (sl_str){"", 0};
    }
    return (sl_str){p, v.len};
}

static void dup_value(search *S, sl_value *v) {
    if (v->type == SL_VAL_STR || v->type == SL_VAL_ARRAY || v->type == SL_VAL_KVLIST ||
        v->type == SL_VAL_BYTES) {
        v->v.s = dup_str(S, v->v.s);
    }
}

static sl_attr *dup_attrs(search *S, const sl_attr *src, uint32_t n) {
    if (n == 0) {
        return NULL;
    }
    sl_attr *a = sl_arena_memdup(S->out, src, n * sizeof(*a));
    if (a == NULL) {
        S->err = SL_ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        a[i].key = dup_str(S, a[i].key);
        dup_value(S, &a[i].val);
    }
    return a;
}

/* Deep-copies *c (whose pointers still point at the source) into S->out;
 * resources are copied once per source pointer (*last_src caches it). */
static void copy_rec(search *S, sl_log_record *c, const sl_resource **last_src,
                     const sl_resource **last_copy) {
    const sl_log_record r = *c;
    c->severity_text = dup_str(S, c->severity_text);
    c->event_name = dup_str(S, c->event_name);
    c->scope_name = dup_str(S, c->scope_name);
    c->scope_version = dup_str(S, c->scope_version);
    dup_value(S, &c->body);
    c->attrs = dup_attrs(S, r.attrs, r.nattrs);
    if (r.resource != *last_src) {
        sl_resource *res = sl_arena_alloc(S->out, sizeof(*res));
        if (res == NULL) {
            S->err = SL_ENOMEM;
            return;
        }
        *res = *r.resource;
        res->service = dup_str(S, res->service);
        res->attrs = dup_attrs(S, r.resource->attrs, r.resource->nattrs);
        *last_src = r.resource;
        *last_copy = res;
    }
    c->resource = *last_copy;
}

/* Adds a match, copied into the hits arena. */
static void add_hit(search *S, const sl_log_record *r, const sl_resource **last_src,
                    const sl_resource **last_copy, bool wal, uint64_t window, uint64_t seq) {
    if (S->err != 0) {
        return;
    }
    if (sl_array_grow(&S->hits, &S->cap, S->n + 1, sizeof(*S->hits)) != 0) {
        S->err = SL_ENOMEM;
        return;
    }
    hit *h = &S->hits[S->n];
    h->rec = *r;
    h->wal = wal;
    h->dead = false;
    h->window = window;
    h->seq = seq;
    copy_rec(S, &h->rec, last_src, last_copy);
    S->n++;
}

/* Copies every hit into dst (the hits arena is then free to go). */
static void move_hits(search *S, sl_arena *dst) {
    sl_arena *prev = S->out;
    const sl_resource *ls = NULL, *lc = NULL;
    S->out = dst;
    for (size_t i = 0; i < S->n && S->err == 0; i++) {
        copy_rec(S, &S->hits[i].rec, &ls, &lc);
    }
    S->out = prev;
}

/* Orders hits in the search's direction (ties: observed time). */
static int cmp_back(const void *pa, const void *pb) {
    const sl_log_record *a = &((const hit *)pa)->rec, *b = &((const hit *)pb)->rec;
    if (a->time_unix_nano != b->time_unix_nano) {
        return a->time_unix_nano > b->time_unix_nano ? -1 : 1;
    }
    if (a->observed_unix_nano != b->observed_unix_nano) {
        return a->observed_unix_nano > b->observed_unix_nano ? -1 : 1;
    }
    return 0;
}

static int cmp_fwd(const void *pa, const void *pb) {
    return cmp_back(pb, pa);
}

/* Drops dead hits, sorts, keeps the best limit. */
static void trim(search *S) {
    size_t k = 0;
    for (size_t i = 0; i < S->n; i++) {
        if (!S->hits[i].dead) {
            S->hits[k++] = S->hits[i];
        }
    }
    S->n = k;
    if (S->n > 1) {
        qsort(S->hits, S->n, sizeof(*S->hits), S->q->forward ? cmp_fwd : cmp_back);
    }
    if (S->n > S->q->limit) {
        S->n = S->q->limit;
    }
    /* Trimmed hits still hold arena memory: once it is large, move the kept
     * ones to a fresh arena so that memory follows `limit`, not the data. */
    if (S->hits_arena.used > HITS_COMPACT_SIZE) {
        sl_arena fresh;
        sl_arena_init(&fresh, HITS_ARENA_MAX);
        move_hits(S, &fresh);
        sl_arena_free(&S->hits_arena);
        S->hits_arena = fresh;
        S->out = &S->hits_arena;
    }
}

/* --- the WAL ------------------------------------------------------------------ */

/* Whether a WAL record's header allows a match; for queries that every
 * record in the time range matches, also whether it can beat the bound
 * that pass 1 found (see wal_bound). */
static bool wal_may_match(const search *S, const logs_wal_hdr *h) {
    const stg_log_query *q = S->q;
    if ((q->start_unix_nano != 0 && h->max_time < q->start_unix_nano) ||
        (q->end_unix_nano != 0 && h->min_time > q->end_unix_nano) || h->nrecs == 0) {
        return false;
    }
    if (q->min_severity > 0) {
        uint32_t want = q->min_severity > 24 ? 1u << 31 : ~((1u << q->min_severity) - 1);
        if ((h->sev_mask & want) == 0) {
            return false;
        }
    }
    if (S->have_bound) {
        return q->forward ? h->min_time <= S->bound : h->max_time >= S->bound;
    }
    return true;
}

/* Pass 1 over the WAL: the headers of the records that may match. */
static int wal_header(void *ud, uint64_t window, uint64_t seq, const uint8_t *rec, size_t size) {
    search *S = ud;
    logs_wal_hdr h;
    const uint8_t *blk;
    size_t bs;
    (void)window, (void)seq;
    if (logs_wal_parse(rec, size, &h, &blk, &bs) == 0 && wal_may_match(S, &h)) {
        if (sl_array_grow(&S->hdrs, &S->hcap, S->nh + 1, sizeof(*S->hdrs)) != 0) {
            return SL_ENOMEM;
        }
        S->hdrs[S->nh++] = h;
    }
    return 0;
}

static int cmp_hdr_back(const void *pa, const void *pb) {
    const logs_wal_hdr *a = pa, *b = pb;
    return a->max_time > b->max_time ? -1 : a->max_time < b->max_time;
}

static int cmp_hdr_fwd(const void *pa, const void *pb) {
    const logs_wal_hdr *a = pa, *b = pb;
    return a->min_time < b->min_time ? -1 : a->min_time > b->min_time;
}

/* When every record in the time range matches (no service, severity, word
 * or id filter), the newest `limit` records of the WAL lie in the records
 * with the latest max times that together hold `limit` records inside the
 * range: records that end before the oldest of those start cannot be in the
 * answer (the mirror image going forward). Sets S->bound when it applies. */
static void wal_bound(search *S) {
    const stg_log_query *q = S->q;
    if (q->service.len > 0 || q->min_severity > 0 || q->nterms > 0 || q->trace_id != NULL ||
        q->span_id != NULL || S->nh == 0) {
        return;
    }
    qsort(S->hdrs, S->nh, sizeof(*S->hdrs), q->forward ? cmp_hdr_fwd : cmp_hdr_back);
    uint64_t have = 0, bound = q->forward ? 0 : UINT64_MAX;
    for (size_t i = 0; i < S->nh && have < q->limit; i++) {
        const logs_wal_hdr *h = &S->hdrs[i];
        if ((q->start_unix_nano != 0 && h->min_time < q->start_unix_nano) ||
            (q->end_unix_nano != 0 && h->max_time > q->end_unix_nano)) {
            continue; /* partly outside the range: its count proves nothing */
        }
        have += h->nrecs;
        if (q->forward) {
            bound = h->max_time > bound ? h->max_time : bound;
        } else {
            bound = h->min_time < bound ? h->min_time : bound;
        }
    }
    if (have >= q->limit) {
        S->bound = bound;
        S->have_bound = true;
    }
}

/* Pass 2: the records that may match, decoded and matched exactly. */
static int wal_record(void *ud, uint64_t window, uint64_t seq, const uint8_t *rec, size_t size) {
    search *S = ud;
    sl_log_record *rs;
    size_t rn, raw = 0;
    logs_wal_hdr h;
    const uint8_t *blk;
    size_t bs;
    if (logs_wal_parse(rec, size, &h, &blk, &bs) != 0) {
        return 0; /* the cutter reports and drops it */
    }
    if (!wal_may_match(S, &h)) {
        S->st.wal_skipped++;
        return 0;
    }
    sl_arena_reset(&S->scratch);
    int rc = stg_logs_decode(blk, bs, &S->scratch, &rs, &rn, &raw);
    if (rc == SL_ECORRUPT) {
        return 0; /* the cutter reports and drops it */
    }
    if (rc != 0) {
        return rc;
    }
    S->st.wal_records++;
    S->st.bytes_decompressed += raw;
    const sl_resource *ls = NULL, *lc = NULL;
    for (size_t i = 0; i < rn && S->err == 0; i++) {
        if (rec_matches(S->q, &rs[i])) {
            add_hit(S, &rs[i], &ls, &lc, true, window, seq);
        }
    }
    /* Bounded memory however large the backlog. Trimming before the marks
     * are known is safe: a kept hit that a window turns out to hold comes
     * back from its block with the same rank. */
    if (S->n >= 4 * S->q->limit + 1024) {
        trim(S);
    }
    return S->err;
}

/* --- windows and blocks --------------------------------------------------------- */

typedef struct cand {
    size_t win; /* index into the window array */
    uint64_t id;
    uint64_t min_time, max_time;
} cand;

typedef struct win_read {
    logs_win *w;
    MDB_txn *txn;
    uint64_t blocks; /* in the snapshot */
} win_read;

static int cmp_u64(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Block ids a window's indexes offer for q (sorted, unique). *all is set
 * when there is no index to use (every block is a candidate). */
static int index_blocks(const stg_log_query *q, win_read *wr, uint64_t **ids, size_t *n,
                        size_t *cap, bool *all) {
    MDB_cursor *cur;
    MDB_val k, v;
    *all = false;
    *n = 0;
    int rc;
    if (q->trace_id != NULL) {
        if ((rc = mdb_cursor_open(wr->txn, wr->w->db_trace, &cur)) != 0) {
            return stg_lmdb_err(rc);
        }
        /* Every block's sorted trace table, binary-searched. */
        const uint8_t *want = q->trace_id + 16 - LOGS_TRACE_KEY;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0) {
            size_t lo = 0, hi = v.mv_size / LOGS_TRACE_KEY;
            const uint8_t *tab = v.mv_data;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(tab + mid * LOGS_TRACE_KEY, want, LOGS_TRACE_KEY);
                if (c == 0) {
                    lo = mid;
                    break;
                }
                if (c < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if (k.mv_size == 8 && lo < v.mv_size / LOGS_TRACE_KEY &&
                memcmp(tab + lo * LOGS_TRACE_KEY, want, LOGS_TRACE_KEY) == 0) {
                if (sl_array_grow(ids, cap, *n + 1, sizeof(**ids)) != 0) {
                    mdb_cursor_close(cur);
                    return SL_ENOMEM;
                }
                (*ids)[(*n)++] = sl_get_be64(k.mv_data);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    } else if (q->service.len > 0) {
        if ((rc = mdb_cursor_open(wr->txn, wr->w->db_svc, &cur)) != 0) {
            return stg_lmdb_err(rc);
        }
        uint8_t key[LOGS_SVC_KEY_MAX + 2];
        size_t klen = logs_svc_key(q->service, q->min_severity, key);
        k = (MDB_val){klen, key};
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (mrc == 0 && k.mv_size == klen && memcmp(k.mv_data, key, klen - 1) == 0) {
            if (v.mv_size == sizeof(logs_svc_val)) {
                logs_svc_val sv;
                memcpy(&sv, v.mv_data, sizeof(sv));
                bool in_time = (q->start_unix_nano == 0 || sv.max_time >= q->start_unix_nano) &&
                               (q->end_unix_nano == 0 || sv.min_time <= q->end_unix_nano);
                if (in_time) {
                    if (sl_array_grow(ids, cap, *n + 1, sizeof(**ids)) != 0) {
                        mdb_cursor_close(cur);
                        return SL_ENOMEM;
                    }
                    (*ids)[(*n)++] = sl_get_be64(sv.block_id);
                }
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    } else {
        *all = true;
        return 0;
    }
    if (*n > 1) {
        qsort(*ids, *n, sizeof(**ids), cmp_u64);
    }
    size_t u = 0;
    for (size_t i = 0; i < *n; i++) {
        if (u == 0 || (*ids)[u - 1] != (*ids)[i]) {
            (*ids)[u++] = (*ids)[i];
        }
    }
    *n = u;
    return 0;
}

/* Collects the token hashes the terms need (phrases: each of their tokens). */
typedef struct hashes {
    uint64_t *h;
    size_t n, cap;
    int err;
} hashes;

static void add_hash(void *ud, uint64_t h) {
    hashes *hs = ud;
    if (hs->err == 0 && sl_array_grow(&hs->h, &hs->cap, hs->n + 1, sizeof(*hs->h)) != 0) {
        hs->err = SL_ENOMEM;
    }
    if (hs->err == 0) {
        hs->h[hs->n++] = h;
    }
}

/* Whether block id of the window may hold a match (metadata, filter). */
static bool block_maybe(const stg_log_query *q, win_read *wr, uint64_t id, const hashes *hs,
                        cand *c) {
    uint8_t key[8];
    stg_be64(key, id);
    MDB_val k = {8, key}, v;
    if (mdb_get(wr->txn, wr->w->db_bmeta, &k, &v) != 0 || v.mv_size < sizeof(logs_bmeta)) {
        return true; /* no metadata: decode and see */
    }
    logs_bmeta m;
    memcpy(&m, v.mv_data, sizeof(m));
    c->min_time = m.min_time;
    c->max_time = m.max_time;
    if ((q->start_unix_nano != 0 && m.max_time < q->start_unix_nano) ||
        (q->end_unix_nano != 0 && m.min_time > q->end_unix_nano)) {
        return false;
    }
    if (q->min_severity > 0) {
        uint32_t want = q->min_severity > 24 ? 1u << 31 : ~((1u << q->min_severity) - 1);
        if ((m.sev_mask & want) == 0) {
            return false;
        }
    }
    sl_str svc = {(const char *)v.mv_data + sizeof(m), v.mv_size - sizeof(m)};
    if (q->service.len > 0 && svc.len < LOGS_SVC_KEY_MAX && !sl_str_eq(svc, q->service)) {
        return false;
    }
    if (hs->n > 0 && mdb_get(wr->txn, wr->w->db_bloom, &k, &v) == 0) {
        for (size_t i = 0; i < hs->n; i++) {
            if (!stg_logs_bloom_maybe(v.mv_data, v.mv_size, hs->h[i])) {
                return false;
            }
        }
    }
    return true;
}

static int cmp_cand_back(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return a->max_time > b->max_time ? -1 : a->max_time < b->max_time;
}

static int cmp_cand_fwd(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return a->min_time < b->min_time ? -1 : a->min_time > b->min_time;
}

/* Gathers the window's candidate blocks into *cs. */
static int window_cands(search *S, size_t wi, win_read *wr, const hashes *hs, cand **cs,
                        size_t *ncs, size_t *ccap) {
    uint64_t *ids = NULL;
    size_t nids = 0, idcap = 0;
    bool all = false;
    int rc = index_blocks(S->q, wr, &ids, &nids, &idcap, &all);
    if (rc == 0 && all) {
        MDB_cursor *cur;
        MDB_val k, v;
        if ((rc = stg_lmdb_err(mdb_cursor_open(wr->txn, wr->w->db_blocks, &cur))) == 0) {
            int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            while (mrc == 0 && rc == 0) {
                if (k.mv_size == 8) {
                    if (sl_array_grow(&ids, &idcap, nids + 1, sizeof(*ids)) != 0) {
                        rc = SL_ENOMEM;
                    } else {
                        ids[nids++] = sl_get_be64(k.mv_data);
                    }
                }
                mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            }
            mdb_cursor_close(cur);
        }
    }
    for (size_t i = 0; i < nids && rc == 0; i++) {
        cand c = {wi, ids[i], 0, UINT64_MAX};
        if (block_maybe(S->q, wr, ids[i], hs, &c)) {
            if (sl_array_grow(cs, ccap, *ncs + 1, sizeof(**cs)) != 0) {
                rc = SL_ENOMEM;
            } else {
                (*cs)[(*ncs)++] = c;
            }
        }
    }
    free(ids);
    return rc;
}

static int scan_block(search *S, win_read *wr, const cand *c) {
    uint8_t key[8];
    stg_be64(key, c->id);
    MDB_val k = {8, key}, v;
    int mrc = mdb_get(wr->txn, wr->w->db_blocks, &k, &v);
    if (mrc != 0) {
        return mrc == MDB_NOTFOUND ? 0 : stg_lmdb_err(mrc);
    }
    sl_arena_reset(&S->scratch);
    sl_log_record *rs;
    size_t rn, raw = 0;
    int rc = stg_logs_decode(v.mv_data, v.mv_size, &S->scratch, &rs, &rn, &raw);
    if (rc == SL_ECORRUPT) {
        SL_LOG_E("storage", "%s: logs block %llu is corrupt; skipped", wr->w->path,
                 (unsigned long long)c->id);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    S->st.blocks_scanned++;
    S->st.bytes_decompressed += raw;
    const sl_resource *ls = NULL, *lc = NULL;
    for (size_t i = 0; i < rn && S->err == 0; i++) {
        if (rec_matches(S->q, &rs[i])) {
            add_hit(S, &rs[i], &ls, &lc, false, 0, 0);
        }
    }
    return S->err;
}

/* True when the best `limit` hits so far beat anything block c may hold. */
static bool done_before(search *S, const cand *c) {
    if (S->n < S->q->limit) {
        return false;
    }
    trim(S); /* drops dead WAL hits too: there may be fewer than limit left */
    if (S->n < S->q->limit) {
        return false;
    }
    const sl_log_record *kth = &S->hits[S->n - 1].rec;
    return S->q->forward ? kth->time_unix_nano <= c->min_time : kth->time_unix_nano >= c->max_time;
}

int stg_find_logs(stg_store *s, const stg_log_query *q, sl_arena *a, sl_log_record **out, size_t *n,
                  stg_log_stats *stats) {
    if (q->tenant == NULL || q->limit == 0) {
        return SL_EINVAL;
    }
    search S;
    memset(&S, 0, sizeof(S));
    S.s = s;
    S.q = q;
    sl_arena_init(&S.hits_arena, HITS_ARENA_MAX);
    S.out = &S.hits_arena;
    sl_arena_init(&S.scratch, SCRATCH_MAX);
    hashes hs = {0};
    logs_win **wins = NULL;
    size_t nwins = 0;
    win_read *wr = NULL;
    cand *cs = NULL;
    size_t ncs = 0, ccap = 0;
    int rc = 0;

    for (size_t i = 0; i < q->nterms; i++) {
        stg_logs_tokens(q->terms[i].text, add_hash, &hs);
    }
    if ((rc = hs.err) != 0) {
        goto out;
    }
    /* The WAL first (its headers, then the records that may match): anything
     * cut after the second pass is in a window read later. */
    if ((rc = stg_wal_scan(s, q->tenant, STG_LOGS, wal_header, &S)) != 0) {
        goto out;
    }
    wal_bound(&S);
    if ((rc = stg_wal_scan(s, q->tenant, STG_LOGS, wal_record, &S)) != 0 ||
        (rc = logs_wins_list(s, q->tenant, &wins, &nwins)) != 0) {
        goto out;
    }
    wr = calloc(nwins ? nwins : 1, sizeof(*wr));
    if (wr == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    uint64_t total_blocks = 0;
    for (size_t i = 0; i < nwins && rc == 0; i++) {
        wr[i].w = wins[i];
        if ((rc = stg_lmdb_err(mdb_txn_begin(wins[i]->env, NULL, MDB_RDONLY, &wr[i].txn))) != 0) {
            break;
        }
        MDB_stat st;
        if (mdb_stat(wr[i].txn, wins[i]->db_blocks, &st) == 0) {
            wr[i].blocks = st.ms_entries;
            total_blocks += st.ms_entries;
        }
        /* WAL records at or below the window's mark are in its blocks. */
        MDB_val k = {4, (void *)(uintptr_t)LOGS_MARK_KEY}, v;
        uint64_t mark = 0;
        if (mdb_get(wr[i].txn, wins[i]->db_bmeta, &k, &v) == 0 && v.mv_size == 8) {
            memcpy(&mark, v.mv_data, 8);
        }
        for (size_t h = 0; h < S.n; h++) {
            if (S.hits[h].wal && S.hits[h].window == wins[i]->window_ns && S.hits[h].seq <= mark) {
                S.hits[h].dead = true;
            }
        }
        rc = window_cands(&S, i, &wr[i], &hs, &cs, &ncs, &ccap);
    }
    if (rc != 0) {
        goto out;
    }
    if (ncs > 1) {
        qsort(cs, ncs, sizeof(*cs), q->forward ? cmp_cand_fwd : cmp_cand_back);
    }
    for (size_t i = 0; i < ncs && rc == 0; i++) {
        if (done_before(&S, &cs[i])) {
            break;
        }
        rc = scan_block(&S, &wr[cs[i].win], &cs[i]);
    }
    if (rc == 0) {
        rc = S.err;
    }
    if (rc == 0) {
        trim(&S);
        move_hits(&S, a);
        S.st.blocks_skipped = total_blocks - S.st.blocks_scanned;
        sl_log_record *recs = S.n > 0 ? sl_arena_alloc(a, S.n * sizeof(*recs)) : NULL;
        if (S.n > 0 && recs == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < S.n; i++) {
            recs[i] = S.hits[i].rec;
        }
        if (S.err != 0) {
            rc = S.err;
            goto out;
        }
        *out = recs;
        *n = S.n;
        if (stats != NULL) {
            *stats = S.st;
        }
    }
out:
    for (size_t i = 0; wr != NULL && i < nwins; i++) {
        if (wr[i].txn != NULL) {
            mdb_txn_abort(wr[i].txn);
        }
    }
    free(wr);
    if (wins != NULL) {
        logs_wins_release(s, wins, nwins);
    }
    free(cs);
    free(hs.h);
    free(S.hits);
    free(S.hdrs);
    sl_arena_free(&S.scratch);
    sl_arena_free(&S.hits_arena);
    return rc;
}
