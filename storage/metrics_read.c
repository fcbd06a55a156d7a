/*
 * The metrics read path (storage.h, Prometheus data model): series selection
 * with label matchers, label names and values, metric metadata.
 *
 * A selection reads the WAL snapshot first, then the windows (oldest first),
 * each in its own read transaction. A WAL record whose window's cut mark
 * covers its sequence was cut after the snapshot was taken and is already in
 * the window: it is skipped, so nothing is counted twice (which matters for
 * delta series) and nothing is missed. The samples still in the WAL go
 * through the same appender as the cutter's (ms_apply), starting from the
 * series' stored head, so a query sees exactly what the cut will store.
 *
 * Candidate series come from the postings of every matcher that does not
 * match the empty string (union over matching values, intersected across
 * matchers); every candidate is then checked against all matchers on its
 * full label set, so truncated postings keys cost a check, never a wrong answer.
 *
 * Thread-safety: any number of concurrent readers (MDB_NOTLS read transactions).
 */
#include "metrics_int.h"

#include "sl_err.h"
#include "sl_regex.h"

#include <stdlib.h>
#include <string.h>

#define MR_ARENA_MAX (1024ull << 20)

typedef struct mr_matcher {
    const stg_matcher *m;
    sl_regex *re;
    bool matches_empty;
} mr_matcher;

static bool mr_match_one(const mr_matcher *mm, sl_str v) {
    switch (mm->m->op) {
    case STG_MATCH_EQ:
        return sl_str_eq(v, mm->m->value);
    case STG_MATCH_NE:
        return !sl_str_eq(v, mm->m->value);
    case STG_MATCH_RE:
        return sl_regex_match(mm->re, v);
    default:
        return !sl_regex_match(mm->re, v);
    }
}

static bool mr_match_all(const mr_matcher *mm, size_t nm, const stg_label *l, size_t nl) {
    for (size_t i = 0; i < nm; i++) {
        sl_str v = {"", 0};
        for (size_t j = 0; j < nl; j++) {
            if (sl_str_eq(l[j].name, mm[i].m->name)) {
                v = l[j].value;
                break;
            }
        }
        if (!mr_match_one(&mm[i], v)) {
            return false;
        }
    }
    return true;
}

static void mr_free_matchers(mr_matcher *mm, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sl_regex_free(mm[i].re);
    }
    free(mm);
}

static int mr_compile(const stg_matcher *m, size_t nm, mr_matcher **out) {
    mr_matcher *mm = calloc(nm ? nm : 1, sizeof(*mm));
    if (mm == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < nm; i++) {
        mm[i].m = &m[i];
        if (m[i].op == STG_MATCH_RE || m[i].op == STG_MATCH_NRE) {
            char err[160];
            int rc = sl_regex_compile(m[i].value, &mm[i].re, err, sizeof(err));
            if (rc != 0) {
                mr_free_matchers(mm, i);
                return rc;
            }
        } else if (m[i].op != STG_MATCH_EQ && m[i].op != STG_MATCH_NE) {
            mr_free_matchers(mm, i);
            return SL_EINVAL;
        }
        mm[i].matches_empty = mr_match_one(&mm[i], (sl_str){"", 0});
    }
    *out = mm;
    return 0;
}

/* --- candidates from postings --------------------------------------------------- */

typedef struct idset {
    uint32_t *ids;
    size_t n, cap;
} idset;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int idset_add_postings(idset *s, const MDB_val *v) {
    size_t n;
    if (ms_postings_count(v->mv_data, v->mv_size, &n) != 0) {
        return SL_ECORRUPT;
    }
    if (sl_array_grow(&s->ids, &s->cap, s->n + n, sizeof(uint32_t)) != 0) {
        return SL_ENOMEM;
    }
    if (ms_postings_decode(v->mv_data, v->mv_size, s->ids + s->n, n, &n) != 0) {
        return SL_ECORRUPT;
    }
    s->n += n;
    return 0;
}

static void idset_normalize(idset *s) {
    if (s->n < 2) {
        return;
    }
    qsort(s->ids, s->n, sizeof(uint32_t), cmp_u32);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (s->ids[i] != s->ids[w - 1]) {
            s->ids[w++] = s->ids[i];
        }
    }
    s->n = w;
}

/* The ids of series having a value of mm's label that matches it. */
static int postings_for(ms_window *w, MDB_txn *txn, const mr_matcher *mm, idset *out) {
    uint8_t key[STG_MAX_KEY];
    sl_str name = mm->m->name;
    if (name.len >= STG_MAX_KEY - 1) {
        return SL_EINVAL;
    }
    memcpy(key, name.ptr, name.len);
    key[name.len] = 0;
    size_t plen = name.len + 1;
    int rc = 0;
    if (mm->m->op == STG_MATCH_EQ && plen + mm->m->value.len < STG_MAX_KEY) {
        memcpy(key + plen, mm->m->value.ptr, mm->m->value.len);
        MDB_val k = {plen + mm->m->value.len, key}, v;
        int mrc = mdb_get(txn, w->db_post, &k, &v);
        if (mrc == 0) {
            rc = idset_add_postings(out, &v);
        } else if (mrc != MDB_NOTFOUND) {
            rc = stg_lmdb_err(mrc);
        }
        return rc;
    }
    MDB_cursor *cur;
    if ((rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_post, &cur))) != 0) {
        return rc;
    }
    MDB_val k = {plen, key}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, key, plen) == 0) {
        sl_str val = {(const char *)k.mv_data + plen, k.mv_size - plen};
        /* A key at the limit may be a truncated value: a candidate anyway. */
        if (k.mv_size >= STG_MAX_KEY || mr_match_one(mm, val)) {
            rc = idset_add_postings(out, &v);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    mdb_cursor_close(cur);
    if (rc == 0) {
        idset_normalize(out);
    }
    return rc;
}

static void idset_intersect(idset *a, const idset *b) {
    size_t i = 0, j = 0, w = 0;
    while (i < a->n && j < b->n) {
        if (a->ids[i] < b->ids[j]) {
            i++;
        } else if (a->ids[i] > b->ids[j]) {
            j++;
        } else {
            a->ids[w++] = a->ids[i];
            i++;
            j++;
        }
    }
    a->n = w;
}

/* Candidate ids in w for the matchers (every series when no matcher can use
 * postings). */
static int candidates(ms_window *w, MDB_txn *txn, const mr_matcher *mm, size_t nm, idset *out) {
    bool have = false;
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0; i++) {
        if (mm[i].matches_empty) {
            continue;
        }
        idset s = {0};
        rc = postings_for(w, txn, &mm[i], &s);
        if (rc == 0) {
            if (!have) {
                free(out->ids);
                *out = s;
                have = true;
            } else {
                idset_intersect(out, &s);
                free(s.ids);
            }
        } else {
            free(s.ids);
        }
        if (have && out->n == 0) {
            return rc;
        }
    }
    if (rc != 0 || have) {
        return rc;
    }
    const uint8_t *pairs;
    size_t npairs;
    if (w->hashes && ms_info_hashes(txn, w->db_info, &pairs, &npairs)) {
        if (sl_array_grow(&out->ids, &out->cap, npairs, sizeof(uint32_t)) != 0) {
            return SL_ENOMEM;
        }
        for (size_t i = 0; i < npairs; i++) {
            out->ids[out->n++] = sl_get_be32(pairs + i * 8 + 4);
        }
        idset_normalize(out);
        return 0;
    }
    MDB_cursor *cur;
    if ((rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_series, &cur))) != 0) {
        return rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        if (v.mv_size == 4) {
            if (sl_array_grow(&out->ids, &out->cap, out->n + 1, sizeof(uint32_t)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            out->ids[out->n++] = sl_get_be32(v.mv_data);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    idset_normalize(out);
    return rc;
}

/* --- selection ------------------------------------------------------------------ */

typedef struct wal_pending {
    uint64_t window, seq;
    const uint8_t *labels; /* copied into the arena */
    size_t labels_size;
    uint8_t kind;
    const stg_sample *samples;
    size_t n;
} wal_pending;

typedef struct mr_ctx {
    const mr_matcher *mm;
    size_t nm;
    sl_arena *a;
    wal_pending *pend;
    size_t npend, pcap;
    stg_metric_meta *meta; /* metadata walk only */
    size_t nmeta, mcap;
    bool want_meta;
} mr_ctx;

static int wal_cb(void *ud, uint64_t window, uint64_t seq, const uint8_t *rec, size_t size) {
    mr_ctx *c = ud;
    ms_record r;
    int rc = ms_record_decode(rec, size, c->a, &r);
    if (rc == SL_ECORRUPT) {
        return 0; /* the cutter drops it loudly */
    }
    if (rc != 0) {
        return rc;
    }
    if (c->want_meta) {
        for (size_t i = 0; i < r.nmeta; i++) {
            if (sl_array_grow(&c->meta, &c->mcap, c->nmeta + 1, sizeof(*c->meta)) != 0) {
                return SL_ENOMEM;
            }
            stg_metric_meta *m = &c->meta[c->nmeta++];
            m->metric = (sl_str){sl_arena_memdup(c->a, r.meta[i].metric.ptr, r.meta[i].metric.len),
                                 r.meta[i].metric.len};
            m->type = (sl_str){sl_arena_memdup(c->a, r.meta[i].type.ptr, r.meta[i].type.len),
                               r.meta[i].type.len};
            m->help = (sl_str){sl_arena_memdup(c->a, r.meta[i].help.ptr, r.meta[i].help.len),
                               r.meta[i].help.len};
            m->unit = (sl_str){sl_arena_memdup(c->a, r.meta[i].unit.ptr, r.meta[i].unit.len),
                               r.meta[i].unit.len};
        }
        return 0;
    }
    for (size_t i = 0; i < r.nseries; i++) {
        const ms_rec_series *rs = &r.series[i];
        stg_label *l;
        size_t nl;
        if ((rc = ms_labels_decode(rs->labels, rs->labels_size, c->a, &l, &nl)) != 0) {
            return rc == SL_ECORRUPT ? 0 : rc;
        }
        if (!mr_match_all(c->mm, c->nm, l, nl)) {
            continue;
        }
        const uint8_t *copy = sl_arena_memdup(c->a, rs->labels, rs->labels_size);
        if ((copy == NULL && rs->labels_size > 0) ||
            sl_array_grow(&c->pend, &c->pcap, c->npend + 1, sizeof(*c->pend)) != 0) {
            return SL_ENOMEM;
        }
        c->pend[c->npend++] =
            (wal_pending){window, seq, copy, rs->labels_size, rs->kind, rs->samples, rs->nsamples};
    }
    return 0;
}

static int push_samples(stg_sample **arr, size_t *n, size_t *cap, const stg_sample *s, size_t k,
                        int64_t mint, int64_t maxt) {
    if (sl_array_grow(arr, cap, *n + k, sizeof(stg_sample)) != 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        if (s[i].t_ms >= mint && s[i].t_ms <= maxt) {
            (*arr)[(*n)++] = s[i];
        }
    }
    return 0;
}

/* Moves the samples of s[0..n) within [mint, maxt] to its front; returns how many. */
static size_t keep_in_range(stg_sample *s, size_t n, int64_t mint, int64_t maxt) {
    size_t kept = 0;
    for (size_t j = 0; j < n; j++) {
        if (s[j].t_ms >= mint && s[j].t_ms <= maxt) {
            s[kept++] = s[j];
        }
    }
    return kept;
}

/* The canonical labels of series id in w (its sid entry, or its section of
 * a compacted block, which cb caches: *in_block and sec). Returns 0, SL_ENOTFOUND or an error. */
static int series_labels(ms_window *w, MDB_txn *txn, uint32_t id, ms_cblock *cb, MDB_val *out,
                         ms_csection *sec, bool *in_block) {
    uint8_t ik[4];
    sl_put_be32(ik, id);
    MDB_val k = {4, ik};
    int mrc = mdb_get(txn, w->db_sid, &k, out);
    *in_block = false;
    if (mrc == 0) {
        return 0;
    }
    if (mrc != MDB_NOTFOUND) {
        return stg_lmdb_err(mrc);
    }
    if (!w->compacted) {
        return SL_ENOTFOUND;
    }
    int rc = ms_cblock_find(w, txn, id, cb, sec);
    if (rc == 0) {
        *out = (MDB_val){sec->labels_size, (void *)(uintptr_t)sec->labels};
        *in_block = true;
    }
    return rc;
}

/* The window's sample time bounds as of txn (false: no samples yet). */
static bool window_bounds(ms_window *w, MDB_txn *txn, int64_t *lo, int64_t *hi) {
    char bounds_key[] = "bounds";
    MDB_val k = {6, bounds_key}, v;
    if (mdb_get(txn, w->db_info, &k, &v) != 0 || v.mv_size != 16) {
        return false;
    }
    memcpy(lo, v.mv_data, 8);
    memcpy(hi, (const uint8_t *)v.mv_data + 8, 8);
    return *lo <= *hi;
}

/* Reads the matching series of one window into the map. */
static int read_window(ms_window *w, mr_ctx *c, ms_smap *map, int64_t mint, int64_t maxt,
                       bool samples, uint64_t *mark) {
    MDB_txn *txn;
    int rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn));
    if (rc != 0) {
        return rc;
    }
    idset ids = {0};
    ms_cblock cb = {0};
    MDB_cursor *cur = NULL;
    char mark_key[] = "mark";
    MDB_val k = {4, mark_key}, v;
    *mark = 0;
    if (mdb_get(txn, w->db_info, &k, &v) == 0 && v.mv_size == 8) {
        memcpy(mark, v.mv_data, 8);
    }
    /* The bounds as of this transaction: the atomics are updated after the
     * cut's commit, so a reader could see the data but the older bounds. */
    int64_t wlo, whi;
    bool overlap = samples && window_bounds(w, txn, &wlo, &whi) && wlo <= maxt && whi >= mint;
    if ((rc = candidates(w, txn, c->mm, c->nm, &ids)) != 0 ||
        (rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_chunks, &cur))) != 0) {
        goto out;
    }
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        uint8_t ik[8];
        sl_put_be32(ik, ids.ids[i]);
        ms_csection sec;
        bool in_block;
        int lrc = series_labels(w, txn, ids.ids[i], &cb, &v, &sec, &in_block);
        if (lrc == SL_ENOTFOUND) {
            continue;
        }
        if (lrc != 0) {
            rc = lrc;
            break;
        }
        stg_label *l;
        size_t nl;
        if (ms_labels_decode(v.mv_data, v.mv_size, c->a, &l, &nl) != 0 ||
            !mr_match_all(c->mm, c->nm, l, nl)) {
            continue;
        }
        const uint8_t *copy = sl_arena_memdup(c->a, v.mv_data, v.mv_size);
        ms_sitem *it;
        if ((copy == NULL && v.mv_size > 0) || (rc = ms_smap_get(map, copy, v.mv_size, &it)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        k = (MDB_val){4, ik};
        if (in_block) {
            it->head = sec.head;
            it->has_head = true;
        } else if (mdb_get(txn, w->db_head, &k, &v) == 0 && v.mv_size == sizeof(ms_head)) {
            memcpy(&it->head, v.mv_data, sizeof(ms_head));
            it->has_head = true;
        }
        if (!overlap) {
            continue;
        }
        if (in_block) {
            const uint8_t *sp = sec.samples;
            uint64_t cnt;
            size_t n;
            if (sl_get_uvarint(&sp, sec.samples + sec.samples_size, &cnt) != 0 ||
                cnt > sec.samples_size) {
                rc = SL_ECORRUPT;
                break;
            }
            if (sl_array_grow(&it->samples, &it->cap, it->n + (size_t)cnt + 1,
                              sizeof(stg_sample)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            if (ms_samples_decode(sec.samples, sec.samples_size, it->samples + it->n, (size_t)cnt,
                                  &n) != 0) {
                rc = SL_ECORRUPT;
                break;
            }
            it->n += keep_in_range(it->samples + it->n, n, mint, maxt);
        }
        sl_put_be32(ik + 4, 0);
        k = (MDB_val){8, ik};
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (mrc == 0 && k.mv_size == 8 && memcmp(k.mv_data, ik, 4) == 0) {
            size_t n;
            int64_t lo, hi;
            if (ms_chunk_info(v.mv_data, v.mv_size, &n, &lo, &hi) == 0 && n > 0 && lo <= maxt &&
                hi >= mint) {
                /* Decoded in place at the series' end, then trimmed to the range. */
                if (sl_array_grow(&it->samples, &it->cap, it->n + n, sizeof(stg_sample)) != 0) {
                    rc = SL_ENOMEM;
                    break;
                }
                stg_sample *dst = it->samples + it->n;
                if (ms_chunk_decode(v.mv_data, v.mv_size, dst, n, &n) != 0) {
                    rc = SL_ECORRUPT;
                    break;
                }
                it->n += keep_in_range(dst, n, mint, maxt);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    ms_cblock_free(&cb);
    free(ids.ids);
    return rc == SL_ECORRUPT ? SL_ESTORAGE : rc;
}

static int cmp_sample(const void *a, const void *b) {
    int64_t x = ((const stg_sample *)a)->t_ms, y = ((const stg_sample *)b)->t_ms;
    return (x > y) - (x < y);
}

typedef struct mr_out {
    stg_label *labels;
    size_t nlabels;
    ms_sitem *it;
} mr_out;

static int cmp_labels(const stg_label *a, size_t na, const stg_label *b, size_t nb) {
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < 2; f++) {
            sl_str x = f == 0 ? a[i].name : a[i].value, y = f == 0 ? b[i].name : b[i].value;
            size_t m = x.len < y.len ? x.len : y.len;
            int c = m > 0 ? memcmp(x.ptr, y.ptr, m) : 0;
            if (c != 0) {
                return c;
            }
            if (x.len != y.len) {
                return x.len < y.len ? -1 : 1;
            }
        }
    }
    return (na > nb) - (na < nb);
}

static int cmp_out(const void *a, const void *b) {
    const mr_out *x = a, *y = b;
    return cmp_labels(x->labels, x->nlabels, y->labels, y->nlabels);
}

typedef int (*mr_emit)(void *ud, const stg_label *l, size_t nl, const stg_sample *s, size_t n);

/* The selection shared by the public functions: every matching series with
 * samples in range, in label order, to emit. samples=false still requires a
 * sample in range but lets emit ignore them. */
static int select_impl(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                       int64_t mint, int64_t maxt, mr_emit emit, void *ud) {
    mr_matcher *mm = NULL;
    int rc = mr_compile(m, nm, &mm);
    if (rc != 0) {
        return rc;
    }
    sl_arena a;
    sl_arena_init(&a, MR_ARENA_MAX);
    ms_smap map = {0};
    mr_ctx c = {.mm = mm, .nm = nm, .a = &a};
    ms_window **ws = NULL;
    size_t nw = 0;
    uint64_t *marks = NULL;
    mr_out *outs = NULL;
    stg_sample *tmp = NULL;
    size_t tmpcap = 0;

    if ((rc = stg_wal_scan(s, tenant, STG_METRICS, wal_cb, &c)) != 0 ||
        (rc = ms_windows_list(s, tenant, &ws, &nw)) != 0) {
        goto out;
    }
    marks = calloc(nw ? nw : 1, sizeof(*marks));
    if (marks == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t i = nw; i > 0 && rc == 0; i--) {
        rc = read_window(ws[i - 1], &c, &map, mint, maxt, true, &marks[i - 1]);
    }
    if (rc != 0) {
        goto out;
    }
    /* Samples still in the WAL, minus records cut since the snapshot. */
    for (size_t i = 0; i < c.npend && rc == 0; i++) {
        const wal_pending *p = &c.pend[i];
        bool cut = false;
        for (size_t j = 0; j < nw; j++) {
            if (ws[j]->window_start_ns == p->window && p->seq <= marks[j]) {
                cut = true;
            }
        }
        ms_sitem *it;
        if (cut || p->n == 0) {
            continue;
        }
        if ((rc = ms_smap_get(&map, p->labels, p->labels_size, &it)) != 0 ||
            sl_array_grow(&it->wal, &it->walcap, it->nwal + p->n, sizeof(stg_sample)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        memcpy(it->wal + it->nwal, p->samples, p->n * sizeof(stg_sample));
        it->nwal += p->n;
        it->kind = p->kind;
    }
    size_t nout = 0;
    outs = calloc(map.n ? map.n : 1, sizeof(*outs));
    if (rc != 0 || outs == NULL) {
        rc = rc != 0 ? rc : SL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < map.n && rc == 0; i++) {
        ms_sitem *it = &map.items[i];
        if (it->nwal > 0) {
            ms_head h = it->has_head ? it->head : (ms_head){0};
            ms_append_stats st = {0};
            size_t k;
            if (sl_array_grow(&tmp, &tmpcap, it->nwal, sizeof(*tmp)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            ms_apply(&h, it->kind, it->wal, it->nwal, tmp, &k, &st);
            if ((rc = push_samples(&it->samples, &it->n, &it->cap, tmp, k, mint, maxt)) != 0) {
                break;
            }
        }
        if (it->n == 0) {
            continue;
        }
        for (size_t j = 1; j < it->n; j++) {
            if (it->samples[j].t_ms < it->samples[j - 1].t_ms) {
                qsort(it->samples, it->n, sizeof(stg_sample), cmp_sample);
                break;
            }
        }
        mr_out *o = &outs[nout++];
        o->it = it;
        if ((rc = ms_labels_decode(it->labels, it->labels_size, &a, &o->labels, &o->nlabels)) !=
            0) {
            rc = rc == SL_ECORRUPT ? SL_ESTORAGE : rc;
            break;
        }
    }
    if (rc != 0) {
        goto out;
    }
    qsort(outs, nout, sizeof(*outs), cmp_out);
    for (size_t i = 0; i < nout && rc == 0; i++) {
        rc = emit(ud, outs[i].labels, outs[i].nlabels, outs[i].it->samples, outs[i].it->n);
    }
out:
    free(tmp);
    free(outs);
    free(marks);
    ms_windows_release(s, ws, nw);
    ms_smap_free(&map);
    free(c.pend);
    sl_arena_free(&a);
    mr_free_matchers(mm, nm);
    return rc;
}

int stg_select_series(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                      int64_t mint_ms, int64_t maxt_ms, stg_series_cb cb, void *ud) {
    return select_impl(s, tenant, m, nm, mint_ms, maxt_ms, cb, ud);
}

/* --- label names and values: from the index -------------------------------------- */

/*
 * As Prometheus answers them from its blocks' indexes: the series of every
 * window whose sample time bounds overlap the range (window granularity, not
 * sample by sample), plus the series of every WAL record (one request) with a
 * sample in the range. Without
 * matchers the names and values come straight from the postings keys; a key
 * at the length limit may be truncated, so the full labels of its series are
 * read instead. With matchers, the candidates from the postings are checked
 * on their labels. No sample is decoded.
 */

typedef struct str_collect {
    sl_arena *a;
    sl_str name; /* values of this label; names when !values */
    bool values;
    const mr_matcher *mm;
    size_t nm;
    int64_t mint, maxt;
    sl_str *items;
    size_t n, cap;
} str_collect;

static int collect_str(str_collect *c, sl_str x) {
    if (c->n > 0 && sl_str_eq(c->items[c->n - 1], x)) {
        return 0;
    }
    char *copy = sl_arena_memdup(c->a, x.ptr, x.len ? x.len : 1);
    if (copy == NULL || sl_array_grow(&c->items, &c->cap, c->n + 1, sizeof(*c->items)) != 0) {
        return SL_ENOMEM;
    }
    c->items[c->n++] = (sl_str){copy, x.len};
    return 0;
}

/* The names, or the value of c->name, of one series' canonical labels when
 * they match c's matchers. */
static int collect_series_labels(str_collect *c, const uint8_t *p, size_t size) {
    stg_label *l;
    size_t nl;
    int rc = ms_labels_decode(p, size, c->a, &l, &nl);
    if (rc != 0) {
        return rc;
    }
    if (!mr_match_all(c->mm, c->nm, l, nl)) {
        return 0;
    }
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if (!c->values) {
            rc = collect_str(c, l[i].name);
        } else if (sl_str_eq(l[i].name, c->name)) {
            rc = collect_str(c, l[i].value);
        }
    }
    return rc;
}

static int collect_ids(ms_window *w, MDB_txn *txn, const idset *ids, ms_cblock *cb,
                       str_collect *c) {
    int rc = 0;
    for (size_t i = 0; i < ids->n && rc == 0; i++) {
        MDB_val v;
        ms_csection sec;
        bool in_block;
        rc = series_labels(w, txn, ids->ids[i], cb, &v, &sec, &in_block);
        if (rc == 0) {
            rc = collect_series_labels(c, v.mv_data, v.mv_size);
        } else if (rc == SL_ENOTFOUND) {
            rc = 0;
        }
    }
    return rc;
}

/* Names or values straight from the postings keys (no matchers). */
static int collect_keys(ms_window *w, MDB_txn *txn, ms_cblock *cb, str_collect *c) {
    uint8_t key[STG_MAX_KEY + 1];
    size_t plen = 0;
    if (c->values) {
        memcpy(key, c->name.ptr, c->name.len);
        key[c->name.len] = 0;
        plen = c->name.len + 1;
    }
    MDB_cursor *cur;
    int rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_post, &cur));
    if (rc != 0) {
        return rc;
    }
    MDB_val k = {plen, key}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
    while (mrc == 0 && rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, key, plen) == 0) {
        const char *kp = k.mv_data;
        const char *z = memchr(kp, 0, k.mv_size);
        if (k.mv_size >= STG_MAX_KEY || z == NULL) {
            /* Possibly truncated: the series' own labels say. */
            idset ids = {0};
            rc = idset_add_postings(&ids, &v);
            if (rc == 0) {
                rc = collect_ids(w, txn, &ids, cb, c);
            }
            free(ids.ids);
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else if (c->values) {
            rc = collect_str(c, (sl_str){z + 1, k.mv_size - (size_t)(z + 1 - kp)});
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else {
            /* The next name: past every "name\0..." key. */
            size_t nlen = (size_t)(z - kp);
            rc = collect_str(c, (sl_str){kp, nlen});
            memcpy(key, kp, nlen);
            key[nlen] = 1;
            k = (MDB_val){nlen + 1, key};
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    mdb_cursor_close(cur);
    return rc;
}

static int index_window(ms_window *w, str_collect *c) {
    MDB_txn *txn;
    int rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn));
    if (rc != 0) {
        return rc;
    }
    int64_t lo, hi;
    ms_cblock cb = {0};
    if (window_bounds(w, txn, &lo, &hi) && lo <= c->maxt && hi >= c->mint) {
        if (c->nm == 0 && (!c->values || c->name.len + 1 < STG_MAX_KEY)) {
            rc = collect_keys(w, txn, &cb, c);
        } else {
            idset ids = {0};
            rc = candidates(w, txn, c->mm, c->nm, &ids);
            if (rc == 0) {
                rc = collect_ids(w, txn, &ids, &cb, c);
            }
            free(ids.ids);
        }
    }
    mdb_txn_abort(txn);
    ms_cblock_free(&cb);
    return rc == SL_ECORRUPT ? SL_ESTORAGE : rc;
}

static int index_wal_cb(void *ud, uint64_t window, uint64_t seq, const uint8_t *rec, size_t size) {
    str_collect *c = ud;
    (void)window;
    (void)seq;
    ms_record r;
    int rc = ms_record_decode(rec, size, c->a, &r);
    if (rc == SL_ECORRUPT) {
        return 0; /* the cutter drops it loudly */
    }
    /* A record (one request) is all in or all out, as a window is. */
    bool in = false;
    for (size_t i = 0; i < r.nseries && !in; i++) {
        const ms_rec_series *rs = &r.series[i];
        for (size_t j = 0; j < rs->nsamples && !in; j++) {
            in = rs->samples[j].t_ms >= c->mint && rs->samples[j].t_ms <= c->maxt;
        }
    }
    for (size_t i = 0; i < r.nseries && rc == 0 && in; i++) {
        rc = collect_series_labels(c, r.series[i].labels, r.series[i].labels_size);
        rc = rc == SL_ECORRUPT ? 0 : rc;
    }
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    const sl_str *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = m > 0 ? memcmp(x->ptr, y->ptr, m) : 0;
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static int label_index_run(stg_store *s, const char *tenant, str_collect *c, const stg_matcher *m,
                           size_t nm, stg_str_cb cb, void *ud) {
    mr_matcher *mm = NULL;
    ms_window **ws = NULL;
    size_t nw = 0;
    int rc = mr_compile(m, nm, &mm);
    if (rc != 0) {
        return rc;
    }
    c->mm = mm;
    c->nm = nm;
    /* The WAL first: a record cut meanwhile is in a window read afterwards. */
    rc = stg_wal_scan(s, tenant, STG_METRICS, index_wal_cb, c);
    if (rc == 0) {
        rc = ms_windows_list(s, tenant, &ws, &nw);
    }
    for (size_t i = 0; i < nw && rc == 0; i++) {
        rc = index_window(ws[i], c);
    }
    ms_windows_release(s, ws, nw);
    if (rc == 0 && c->n > 1) {
        qsort(c->items, c->n, sizeof(sl_str), cmp_str);
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        if (i > 0 && sl_str_eq(c->items[i], c->items[i - 1])) {
            continue;
        }
        rc = cb(ud, c->items[i]);
    }
    free(c->items);
    mr_free_matchers(mm, nm);
    return rc;
}

int stg_label_names(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                    int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud) {
    sl_arena a;
    sl_arena_init(&a, MR_ARENA_MAX);
    str_collect c = {.a = &a, .mint = mint_ms, .maxt = maxt_ms};
    int rc = label_index_run(s, tenant, &c, m, nm, cb, ud);
    sl_arena_free(&a);
    return rc;
}

int stg_label_values(stg_store *s, const char *tenant, sl_str name, const stg_matcher *m, size_t nm,
                     int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud) {
    sl_arena a;
    sl_arena_init(&a, MR_ARENA_MAX);
    str_collect c = {.a = &a, .name = name, .values = true, .mint = mint_ms, .maxt = maxt_ms};
    int rc = label_index_run(s, tenant, &c, m, nm, cb, ud);
    sl_arena_free(&a);
    return rc;
}

/* --- metadata -------------------------------------------------------------------- */

typedef struct meta_item {
    stg_metric_meta m;
    size_t seq; /* later wins */
} meta_item;

static int cmp_meta(const void *a, const void *b) {
    const meta_item *x = a, *y = b;
    int c = cmp_str(&x->m.metric, &y->m.metric);
    return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static sl_str next_field(const char **p, const char *end) {
    const char *z = memchr(*p, 0, (size_t)(end - *p));
    const char *e = z != NULL ? z : end;
    sl_str s = {*p, (size_t)(e - *p)};
    *p = z != NULL ? z + 1 : end;
    return s;
}

int stg_metric_metadata(stg_store *s, const char *tenant, sl_str metric, stg_meta_cb cb, void *ud) {
    sl_arena a;
    sl_arena_init(&a, MR_ARENA_MAX);
    mr_ctx c = {.a = &a, .want_meta = true};
    meta_item *items = NULL;
    size_t n = 0, cap = 0;
    ms_window **ws = NULL;
    size_t nw = 0;
    int rc = stg_wal_scan(s, tenant, STG_METRICS, wal_cb, &c);
    if (rc == 0) {
        rc = ms_windows_list(s, tenant, &ws, &nw);
    }
    for (size_t i = nw; i > 0 && rc == 0; i--) {
        ms_window *w = ws[i - 1];
        MDB_txn *txn;
        MDB_cursor *cur;
        if ((rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn))) != 0) {
            break;
        }
        if ((rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_meta, &cur))) != 0) {
            mdb_txn_abort(txn);
            break;
        }
        MDB_val k, v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0) {
            sl_str name = {(const char *)k.mv_data, k.mv_size};
            if (metric.len == 0 || sl_str_eq(name, metric)) {
                char *copy = sl_arena_memdup(&a, v.mv_data, v.mv_size ? v.mv_size : 1);
                char *ncopy = sl_arena_memdup(&a, k.mv_data, k.mv_size ? k.mv_size : 1);
                if (copy == NULL || ncopy == NULL ||
                    sl_array_grow(&items, &cap, n + 1, sizeof(*items)) != 0) {
                    rc = SL_ENOMEM;
                    break;
                }
                const char *p = copy, *end = copy + v.mv_size;
                meta_item *it = &items[n];
                it->m.metric = (sl_str){ncopy, k.mv_size};
                it->m.type = next_field(&p, end);
                it->m.unit = next_field(&p, end);
                it->m.help = (sl_str){p, (size_t)(end - p)};
                it->seq = n++;
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
    }
    for (size_t i = 0; i < c.nmeta && rc == 0; i++) {
        if (metric.len > 0 && !sl_str_eq(c.meta[i].metric, metric)) {
            continue;
        }
        if (sl_array_grow(&items, &cap, n + 1, sizeof(*items)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        items[n].m = c.meta[i];
        items[n].seq = n;
        n++;
    }
    if (rc == 0 && n > 1) {
        qsort(items, n, sizeof(*items), cmp_meta);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i + 1 < n && sl_str_eq(items[i].m.metric, items[i + 1].m.metric)) {
            continue; /* a later description of the same family follows */
        }
        rc = cb(ud, &items[i].m);
    }
    free(items);
    free(c.meta);
    ms_windows_release(s, ws, nw);
    sl_arena_free(&a);
    return rc;
}
