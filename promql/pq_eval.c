/*
 * The PromQL evaluator. A query is evaluated in two phases:
 *
 *   1. Load: every selector asks the querier once for the whole time span the
 *      query needs of it ([start - offset - range - lookback, end - offset],
 *      or around its @ time), and keeps the series in the query's arena.
 *   2. Steps: for each evaluation time, the tree is evaluated bottom-up into
 *      instant vectors, slicing the loaded samples by binary search (the
 *      lookback window for instant selectors, the closed [ref - range, ref]
 *      window for range selectors). Intermediate values live in a step arena
 *      that is reset after every step; only the result series (labels copied
 *      into the query arena, points in growing arrays) outlive a step.
 *
 * So a range query reads storage once per selector, never per step. Range
 * queries whose whole tree the series-major path covers (pq_rollup.c) skip
 * phase 2: every node computes all steps of its series at once; this
 * step-wise evaluation stays the reference and the fallback.
 * Semantics follow Prometheus 2.42 (engine.go): lookback inclusive at its
 * start, stale markers hide a series, vector matching and aggregation rules,
 * metric-name dropping, "same labelset" errors.
 *
 * Errors (parse-time checks aside) unwind with longjmp to pq_eval, as
 * Prometheus's evaluator panics: all memory is in arenas or tracked by the
 * query, so nothing leaks. Thread-safety: one evaluation per pq_query.
 */
#include "pq_int.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESOLUTION 11000

struct pq_ev {
    pq_query *q;
    const pq_querier *qr;
    pq_eval_opts o;
    sl_arena step; /* per-step values */
    pq_error *err;
    int rc;
    jmp_buf jb;
    size_t loaded; /* samples held by the loaded selectors */
    unsigned ticks;
    /* result assembly (range queries) */
    pq_map res_map;
    size_t res_cap;
    size_t *res_len; /* points per result series */
    size_t *res_pcap;
};

void pq_eval_opts_init(pq_eval_opts *o) {
    memset(o, 0, sizeof(*o));
    o->lookback_ms = 5 * 60 * 1000;
    o->max_samples = 50000000;
    o->max_memory = (size_t)1 << 30;
}

_Noreturn void pq_ev_fail(pq_ev *ev, pq_error_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->err->msg, sizeof(ev->err->msg), fmt, ap);
    va_end(ap);
    ev->err->kind = kind;
    switch (kind) {
    case PQ_ERR_BAD_DATA:
        ev->rc = SL_EINVAL;
        break;
    case PQ_ERR_EXECUTION:
        ev->rc = SL_EUNSUPPORTED;
        break;
    case PQ_ERR_TIMEOUT:
        ev->rc = SL_ETOOBIG;
        break;
    default:
        if (ev->rc == 0) {
            ev->rc = SL_ENOMEM;
        }
        break;
    }
    longjmp(ev->jb, 1);
}

static _Noreturn void fail_nomem(pq_ev *ev) {
    pq_ev_fail(ev, PQ_ERR_EXECUTION, "query exceeds the memory limit of %zu bytes",
               ev->o.max_memory);
}

void *pq_ev_alloc(pq_ev *ev, size_t size) {
    void *p = sl_arena_calloc(&ev->step, 1, size ? size : 1);
    if (p == NULL) {
        fail_nomem(ev);
    }
    return p;
}

sl_arena *pq_ev_arena(pq_ev *ev) {
    return &ev->step;
}

sl_arena *pq_ev_query_arena(pq_ev *ev) {
    return &ev->q->arena;
}

const pq_lset *pq_ev_noname(pq_ev *ev, const pq_lset *ls) {
    const pq_lset *r = pq_lset_drop_name(&ev->step, ls);
    if (r == NULL) {
        fail_nomem(ev);
    }
    return r;
}

void pq_ev_track_regex(pq_ev *ev, pq_regex *re) {
    if (pq_query_track_regex(ev->q, re) != 0) {
        fail_nomem(ev);
    }
}

void pq_ev_check_deadline(pq_ev *ev) {
    if (ev->o.deadline_mono_ns != 0 && sl_mono_nano() > ev->o.deadline_mono_ns) {
        pq_ev_fail(ev, PQ_ERR_TIMEOUT, "query timed out in query execution");
    }
}

void pq_ev_check_dups(pq_ev *ev, const pq_elem *e, size_t n) {
    if (n < 2) {
        return;
    }
    pq_map m;
    if (pq_map_init(&m, &ev->step, n) != 0) {
        fail_nomem(ev);
    }
    for (size_t i = 0; i < n; i++) {
        size_t it = 0;
        uint32_t j;
        while ((j = pq_map_next(&m, e[i].ls->hash, &it)) != UINT32_MAX) {
            if (pq_lset_eq(e[j].ls, e[i].ls)) {
                pq_ev_fail(ev, PQ_ERR_EXECUTION,
                           "vector cannot contain metrics with the same labelset");
            }
        }
        if (pq_map_put(&m, e[i].ls->hash, (uint32_t)i) != 0) {
            fail_nomem(ev);
        }
    }
}

/* --- loading --------------------------------------------------------------------- */

typedef struct load_ctx {
    pq_ev *ev;
    pq_node *n;
    size_t cap;
} load_ctx;

static int load_series(void *ud, const pq_label *labels, size_t nlabels, const pq_sample *samples,
                       size_t nsamples) {
    load_ctx *c = ud;
    pq_ev *ev = c->ev;
    pq_node *n = c->n;
    sl_arena *a = &ev->q->arena;
    if ((++ev->ticks & 255) == 0 && ev->o.deadline_mono_ns != 0 &&
        sl_mono_nano() > ev->o.deadline_mono_ns) {
        return SL_ETOOBIG;
    }
    ev->loaded += nsamples;
    if (ev->loaded > ev->o.max_samples) {
        return SL_EFULL;
    }
    if (n->nseries == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        pq_sel_series *b = sl_arena_alloc(a, cap * sizeof(*b));
        if (b == NULL) {
            return SL_ENOMEM;
        }
        if (n->nseries > 0) {
            memcpy(b, n->series, n->nseries * sizeof(*b));
        }
        n->series = b;
        c->cap = cap;
    }
    pq_sel_series *s = &n->series[n->nseries];
    memset(s, 0, sizeof(*s));
    s->ls = pq_lset_make(a, labels, nlabels, true);
    pq_sample *all = sl_arena_alloc(a, (nsamples ? nsamples : 1) * sizeof(pq_sample));
    if (s->ls == NULL || all == NULL) {
        return SL_ENOMEM;
    }
    size_t nstale = 0;
    for (size_t i = 0; i < nsamples; i++) {
        all[i] = samples[i];
        nstale += pq_is_stale(samples[i].v) != 0;
    }
    s->all = all;
    s->nall = nsamples;
    if (nstale == 0) {
        s->live = all;
        s->nlive = nsamples;
    } else {
        pq_sample *live = sl_arena_alloc(a, (nsamples - nstale + 1) * sizeof(pq_sample));
        if (live == NULL) {
            return SL_ENOMEM;
        }
        size_t k = 0;
        for (size_t i = 0; i < nsamples; i++) {
            if (!pq_is_stale(samples[i].v)) {
                live[k++] = samples[i];
            }
        }
        s->live = live;
        s->nlive = k;
    }
    n->nseries++;
    return 0;
}

int64_t pq_ev_at_time(const pq_ev *ev, const pq_node *n, int64_t t) {
    switch (n->at) {
    case PQ_AT_TS:
        return n->at_ms;
    case PQ_AT_START:
        return ev->o.start_ms;
    case PQ_AT_END:
        return ev->o.end_ms;
    case PQ_AT_NONE:
        break;
    }
    return t;
}

/* Loads what every selector under n needs when n is evaluated at times in
 * [tmin, tmax]. */
static void plan(pq_ev *ev, pq_node *n, int64_t tmin, int64_t tmax) {
    if (n == NULL) {
        return;
    }
    if (n->kind == PQ_N_SEL || n->kind == PQ_N_SUBQ) {
        int64_t r0 = n->at != PQ_AT_NONE ? pq_ev_at_time(ev, n, 0) : tmin;
        int64_t r1 = n->at != PQ_AT_NONE ? r0 : tmax;
        r0 -= n->offset_ms;
        r1 -= n->offset_ms;
        if (n->kind == PQ_N_SUBQ) {
            plan(ev, n->a, r0 - n->range_ms, r1);
            return;
        }
        int64_t mint = r0 - (n->range_ms > 0 ? n->range_ms : ev->o.lookback_ms);
        load_ctx c = {ev, n, 0};
        n->nseries = 0;
        int rc = ev->qr->select(ev->qr->ud, n->m, n->nm, mint, r1, load_series, &c);
        if (rc == SL_ETOOBIG) {
            pq_ev_fail(ev, PQ_ERR_TIMEOUT, "query timed out in query execution");
        }
        if (rc == SL_EFULL) {
            pq_ev_fail(
                ev, PQ_ERR_EXECUTION,
                "query processing would load too many samples into memory in query execution");
        }
        if (rc == SL_EINVAL) {
            pq_ev_fail(ev, PQ_ERR_BAD_DATA, "invalid matcher in selector");
        }
        if (rc != 0) {
            ev->rc = rc == SL_ENOMEM ? SL_ENOMEM : SL_ESTORAGE;
            pq_ev_fail(ev, PQ_ERR_INTERNAL, "reading series: %s", sl_strerror(rc));
        }
        return;
    }
    plan(ev, n->a, tmin, tmax);
    plan(ev, n->b, tmin, tmax);
    for (size_t i = 0; i < n->nargs; i++) {
        plan(ev, n->args[i], tmin, tmax);
    }
}

/* --- selectors ------------------------------------------------------------------- */

/* Index of the first sample with t >= x. */
static size_t lower_bound(const pq_sample *s, size_t n, int64_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].t_ms < x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static pq_val eval_vector_sel(pq_ev *ev, pq_node *n, int64_t t) {
    int64_t ref = pq_ev_at_time(ev, n, t) - n->offset_ms;
    pq_val v = {.type = PQ_VECTOR};
    v.e = pq_ev_alloc(ev, n->nseries * sizeof(pq_elem));
    for (size_t i = 0; i < n->nseries; i++) {
        const pq_sel_series *s = &n->series[i];
        size_t k = lower_bound(s->all, s->nall, ref + 1);
        if (k == 0) {
            continue;
        }
        const pq_sample *x = &s->all[k - 1];
        if (x->t_ms < ref - ev->o.lookback_ms || pq_is_stale(x->v)) {
            continue;
        }
        v.e[v.n++] = (pq_elem){s->ls, x->t_ms, x->v};
    }
    return v;
}

static pq_val eval_matrix_sel(pq_ev *ev, pq_node *n, int64_t t) {
    int64_t ref = pq_ev_at_time(ev, n, t) - n->offset_ms;
    pq_val v = {.type = PQ_MATRIX, .ref_ms = ref, .range_ms = n->range_ms};
    v.r = pq_ev_alloc(ev, n->nseries * sizeof(pq_range));
    for (size_t i = 0; i < n->nseries; i++) {
        pq_sel_series *s = &n->series[i];
        size_t lo = lower_bound(s->live, s->nlive, ref - n->range_ms);
        size_t hi = lower_bound(s->live, s->nlive, ref + 1);
        if (hi > lo) {
            v.r[v.nr++] = (pq_range){s->ls, s->live + lo, hi - lo, s};
        }
    }
    return v;
}

/* Evaluates the subquery's expression at every multiple of its step in
 * [ref - range, ref] (Prometheus aligns subquery steps to absolute time). */
static pq_val eval_subquery(pq_ev *ev, pq_node *n, int64_t t) {
    int64_t ref = pq_ev_at_time(ev, n, t) - n->offset_ms;
    int64_t step = n->step_ms > 0 ? n->step_ms : 60000;
    int64_t from = ref - n->range_ms;
    int64_t first = from / step * step;
    if (first < from) {
        first += step;
    }
    pq_val out = {.type = PQ_MATRIX, .ref_ms = ref, .range_ms = n->range_ms};
    size_t cap = 16;
    out.r = pq_ev_alloc(ev, cap * sizeof(pq_range));
    size_t *caps = pq_ev_alloc(ev, cap * sizeof(size_t));
    pq_sample **bufs = pq_ev_alloc(ev, cap * sizeof(pq_sample *));
    pq_map m;
    if (pq_map_init(&m, &ev->step, 16) != 0) {
        fail_nomem(ev);
    }
    for (int64_t ts = first; ts <= ref; ts += step) {
        pq_ev_check_deadline(ev);
        /* Every inner step holds at least a sample's worth of memory. */
        if (++ev->loaded > ev->o.max_samples) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION,
                       "query processing would load too many samples into memory in query "
                       "execution");
        }
        pq_val v = pq_ev_eval(ev, n->a, ts);
        if (v.type == PQ_SCALAR) {
            v.type = PQ_VECTOR;
            v.e = pq_ev_alloc(ev, sizeof(pq_elem));
            v.e[0] = (pq_elem){&pq_lset_empty, ts, v.num};
            v.n = 1;
        }
        for (size_t i = 0; i < v.n; i++) {
            const pq_lset *ls = v.e[i].ls;
            size_t it = 0;
            uint32_t j;
            while ((j = pq_map_next(&m, ls->hash, &it)) != UINT32_MAX &&
                   !pq_lset_eq(out.r[j].ls, ls)) {
            }
            if (j == UINT32_MAX) {
                if (out.nr == cap) {
                    pq_range *b = pq_ev_alloc(ev, cap * 2 * sizeof(pq_range));
                    size_t *bc = pq_ev_alloc(ev, cap * 2 * sizeof(size_t));
                    pq_sample **bb = pq_ev_alloc(ev, cap * 2 * sizeof(pq_sample *));
                    memcpy(b, out.r, cap * sizeof(pq_range));
                    memcpy(bc, caps, cap * sizeof(size_t));
                    memcpy(bb, bufs, cap * sizeof(pq_sample *));
                    out.r = b;
                    caps = bc;
                    bufs = bb;
                    cap *= 2;
                }
                j = (uint32_t)out.nr++;
                out.r[j] = (pq_range){ls, NULL, 0, NULL};
                caps[j] = 0;
                if (pq_map_put(&m, ls->hash, j) != 0) {
                    fail_nomem(ev);
                }
            }
            pq_range *r = &out.r[j];
            if (r->n == caps[j]) {
                size_t nc = caps[j] ? caps[j] * 2 : 16;
                pq_sample *b = pq_ev_alloc(ev, nc * sizeof(pq_sample));
                if (r->n > 0) {
                    memcpy(b, bufs[j], r->n * sizeof(pq_sample));
                }
                bufs[j] = b;
                r->s = b;
                caps[j] = nc;
            }
            bufs[j][r->n++] = (pq_sample){ts, v.e[i].v};
        }
    }
    return out;
}

/* --- binary operators ------------------------------------------------------------- */

bool pq_binop_drops_name(pq_binop op) {
    return op == PQ_OP_ADD || op == PQ_OP_SUB || op == PQ_OP_MUL || op == PQ_OP_DIV ||
           op == PQ_OP_POW || op == PQ_OP_MOD;
}

bool pq_binop_is_cmp(pq_binop op) {
    return op >= PQ_OP_EQL && op <= PQ_OP_LTE;
}

/* --- label sets that stay put across steps ------------------------------------------ */

/* Whether every label set a node yields lives for the whole evaluation and
 * is the same pointer at every step for the same series: selectors, range
 * functions over range selectors (range_noname or the series' own), and
 * binary operators over
 * such operands (set operators pass them through, the others memoize their
 * results in bin_memo). Other nodes may build label sets per step. */
static bool stable_lsets(const pq_node *n) {
    while (n->kind == PQ_N_PAREN) {
        n = n->a;
    }
    switch (n->kind) {
    case PQ_N_SEL:
        return true;
    case PQ_N_BIN:
        if (n->a->type == PQ_SCALAR && n->b->type == PQ_SCALAR) {
            return false;
        }
        return (n->a->type == PQ_SCALAR || stable_lsets(n->a)) &&
               (n->b->type == PQ_SCALAR || stable_lsets(n->b));
    case PQ_N_CALL:
        if (n->fn->id == PQ_F_ABSENT_OVER_TIME) {
            return false; /* labels made from the selector's matchers */
        }
        for (size_t i = 0; i < n->nargs; i++) {
            const pq_node *a = n->args[i];
            while (a->kind == PQ_N_PAREN) {
                a = a->a;
            }
            if (a->type == PQ_MATRIX) {
                return a->kind == PQ_N_SEL;
            }
        }
        return false;
    default:
        return false;
    }
}

/* A map from one or two pointers to a 64-bit value (a hash or a label set's
 * address), in the query arena for the whole evaluation. */
typedef struct ls_cache {
    pq_map m;
    const void **ka, **kb;
    uint64_t *val;
    size_t n, cap;
} ls_cache;

static uint64_t ptr_hash(const void *a, const void *b) {
    return ((uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ull) ^
           ((uint64_t)(uintptr_t)b * 0xc2b2ae3d27d4eb4full);
}

static void cache_init(pq_ev *ev, ls_cache *c) {
    memset(c, 0, sizeof(*c));
    if (pq_map_init(&c->m, pq_ev_query_arena(ev), 64) != 0) {
        fail_nomem(ev);
    }
}

static bool cache_get(const ls_cache *c, const void *a, const void *b, uint64_t *v) {
    size_t it = 0;
    uint32_t j;
    while ((j = pq_map_next(&c->m, ptr_hash(a, b), &it)) != UINT32_MAX) {
        if (c->ka[j] == a && c->kb[j] == b) {
            *v = c->val[j];
            return true;
        }
    }
    return false;
}

static void cache_put(pq_ev *ev, ls_cache *c, const void *a, const void *b, uint64_t v) {
    if (c->n == c->cap) {
        sl_arena *qa = pq_ev_query_arena(ev);
        size_t cap = c->cap ? c->cap * 2 : 64;
        const void **na = sl_arena_alloc(qa, cap * sizeof(*na));
        const void **nb = sl_arena_alloc(qa, cap * sizeof(*nb));
        uint64_t *nv = sl_arena_alloc(qa, cap * sizeof(*nv));
        if (na == NULL || nb == NULL || nv == NULL) {
            fail_nomem(ev);
        }
        if (c->n > 0) {
            memcpy(na, c->ka, c->n * sizeof(*na));
            memcpy(nb, c->kb, c->n * sizeof(*nb));
            memcpy(nv, c->val, c->n * sizeof(*nv));
        }
        c->ka = na;
        c->kb = nb;
        c->val = nv;
        c->cap = cap;
    }
    if (pq_map_put(&c->m, ptr_hash(a, b), (uint32_t)c->n) != 0) {
        fail_nomem(ev);
    }
    c->ka[c->n] = a;
    c->kb[c->n] = b;
    c->val[c->n++] = v;
}

/* A binary operator's per-evaluation memo (when stable_lsets holds): the
 * matching signature hash of each operand label set, the result labels of
 * each (left, right) pair, the name-less copy of each label set. Results
 * are made in the query arena, so they are stable too. */
typedef struct bin_memo {
    ls_cache sig, res, noname;
} bin_memo;

static bin_memo *bin_memo_get(pq_ev *ev, pq_node *n) {
    if (!stable_lsets(n)) {
        return NULL;
    }
    if (n->memo == NULL || n->memo_eval != ev->q->evals) {
        bin_memo *mm = sl_arena_calloc(pq_ev_query_arena(ev), 1, sizeof(*mm));
        if (mm == NULL) {
            fail_nomem(ev);
        }
        cache_init(ev, &mm->sig);
        cache_init(ev, &mm->res);
        cache_init(ev, &mm->noname);
        n->memo = mm;
        n->memo_eval = ev->q->evals;
    }
    return n->memo;
}

/* ls without __name__: memoized in the query arena, else in the step's. */
static const pq_lset *bin_noname(pq_ev *ev, bin_memo *mm, const pq_lset *ls) {
    uint64_t v;
    if (mm == NULL) {
        return pq_ev_noname(ev, ls);
    }
    if (cache_get(&mm->noname, ls, NULL, &v)) {
        return (const pq_lset *)(uintptr_t)v;
    }
    const pq_lset *r = pq_lset_drop_name(pq_ev_query_arena(ev), ls);
    if (r == NULL) {
        fail_nomem(ev);
    }
    cache_put(ev, &mm->noname, ls, NULL, (uint64_t)(uintptr_t)r);
    return r;
}

/* Prometheus's vectorElemBinop: the value and whether to keep it. */
double pq_elem_binop(pq_binop op, double l, double r, bool *keep) {
    *keep = true;
    switch (op) {
    case PQ_OP_ADD:
        return l + r;
    case PQ_OP_SUB:
        return l - r;
    case PQ_OP_MUL:
        return l * r;
    case PQ_OP_DIV:
        return l / r;
    case PQ_OP_POW:
        return pow(l, r);
    case PQ_OP_MOD:
        return fmod(l, r);
    case PQ_OP_ATAN2:
        return atan2(l, r);
    case PQ_OP_EQL:
        *keep = l == r;
        return l;
    case PQ_OP_NEQ:
        *keep = l != r;
        return l;
    case PQ_OP_GTR:
        *keep = l > r;
        return l;
    case PQ_OP_LSS:
        *keep = l < r;
        return l;
    case PQ_OP_GTE:
        *keep = l >= r;
        return l;
    case PQ_OP_LTE:
        *keep = l <= r;
        return l;
    default:
        *keep = false;
        return 0;
    }
}

static pq_val eval_vs_binop(pq_ev *ev, pq_node *n, pq_val vec, double scalar, bool swap,
                            int64_t t) {
    pq_val out = {.type = PQ_VECTOR};
    out.e = pq_ev_alloc(ev, vec.n * sizeof(pq_elem));
    bin_memo *mm = bin_memo_get(ev, n);
    for (size_t i = 0; i < vec.n; i++) {
        double l = vec.e[i].v, r = scalar;
        if (swap) {
            l = scalar;
            r = vec.e[i].v;
        }
        bool keep;
        double value = pq_elem_binop(n->op, l, r, &keep);
        if (pq_binop_is_cmp(n->op) && swap) {
            value = r;
        }
        if (n->bool_mod) {
            value = keep ? 1.0 : 0.0;
            keep = true;
        }
        if (!keep) {
            continue;
        }
        const pq_lset *ls = vec.e[i].ls;
        if (pq_binop_drops_name(n->op) || n->bool_mod) {
            ls = bin_noname(ev, mm, ls);
        }
        out.e[out.n++] = (pq_elem){ls, t, value};
    }
    return out;
}

/* The matching signature of a label set: on(...) keeps the listed labels;
 * otherwise all labels but the ignored ones and __name__. Only its hash is
 * computed; equality compares the projections in place (no allocation per
 * element and step). */
typedef struct sig {
    const pq_lset *ls;
    uint64_t hash;
} sig;

static sig signature(pq_ev *ev, bin_memo *mm, const pq_node *n, const pq_lset *ls) {
    uint64_t h;
    if (mm != NULL && cache_get(&mm->sig, ls, NULL, &h)) {
        return (sig){ls, h};
    }
    h = pq_lset_sig_hash(ls, n->matchls, n->nmatchls, n->on);
    if (mm != NULL) {
        cache_put(ev, &mm->sig, ls, NULL, h);
    }
    return (sig){ls, h};
}

static bool sig_eq(const pq_node *n, sig a, sig b) {
    return a.hash == b.hash && pq_lset_sig_eq(a.ls, b.ls, n->matchls, n->nmatchls, n->on);
}

static void lset_text(const pq_lset *ls, char *buf, size_t cap) {
    size_t k = 0;
    int w = snprintf(buf, cap, "{");
    k = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i < ls->n && k < cap; i++) {
        w = snprintf(buf + k, cap - k, "%s%.*s=\"%.*s\"", i ? ", " : "", (int)ls->l[i].name.len,
                     ls->l[i].name.ptr, (int)ls->l[i].value.len, ls->l[i].value.ptr);
        k += w > 0 ? (size_t)w : 0;
    }
    if (k < cap) {
        snprintf(buf + k, cap - k, "}");
    }
}

typedef struct sig_index {
    const pq_node *n;
    pq_map m;
    sig *sig;
} sig_index;

static void sig_index_build(pq_ev *ev, bin_memo *mm, const pq_node *n, const pq_val *v,
                            sig_index *ix) {
    if (pq_map_init(&ix->m, &ev->step, v->n) != 0) {
        fail_nomem(ev);
    }
    ix->n = n;
    ix->sig = pq_ev_alloc(ev, v->n * sizeof(*ix->sig));
    for (size_t i = 0; i < v->n; i++) {
        ix->sig[i] = signature(ev, mm, n, v->e[i].ls);
    }
}

/* The first index whose signature equals s, or UINT32_MAX. */
static uint32_t sig_find(const sig_index *ix, sig s) {
    size_t it = 0;
    uint32_t j;
    while ((j = pq_map_next(&ix->m, s.hash, &it)) != UINT32_MAX) {
        if (sig_eq(ix->n, ix->sig[j], s)) {
            return j;
        }
    }
    return UINT32_MAX;
}

static void sig_add(pq_ev *ev, sig_index *ix, uint32_t i) {
    if (pq_map_put(&ix->m, ix->sig[i].hash, i) != 0) {
        fail_nomem(ev);
    }
}

static pq_val eval_setop(pq_ev *ev, pq_node *n, pq_val l, pq_val r, int64_t t) {
    bin_memo *mm = bin_memo_get(ev, n);
    pq_val out = {.type = PQ_VECTOR};
    out.e = pq_ev_alloc(ev, (l.n + r.n) * sizeof(pq_elem));
    if (n->op == PQ_OP_AND && (l.n == 0 || r.n == 0)) {
        return out;
    }
    if (n->op == PQ_OP_OR) {
        sig_index li;
        sig_index_build(ev, mm, n, &l, &li);
        for (size_t i = 0; i < l.n; i++) {
            sig_add(ev, &li, (uint32_t)i);
            out.e[out.n++] = (pq_elem){l.e[i].ls, t, l.e[i].v};
        }
        for (size_t i = 0; i < r.n; i++) {
            if (sig_find(&li, signature(ev, mm, n, r.e[i].ls)) == UINT32_MAX) {
                out.e[out.n++] = (pq_elem){r.e[i].ls, t, r.e[i].v};
            }
        }
        return out;
    }
    sig_index ri;
    sig_index_build(ev, mm, n, &r, &ri);
    for (size_t i = 0; i < r.n; i++) {
        sig_add(ev, &ri, (uint32_t)i);
    }
    for (size_t i = 0; i < l.n; i++) {
        bool found = sig_find(&ri, signature(ev, mm, n, l.e[i].ls)) != UINT32_MAX;
        if (found == (n->op == PQ_OP_AND)) {
            out.e[out.n++] = (pq_elem){l.e[i].ls, t, l.e[i].v};
        }
    }
    return out;
}

bool pq_vv_binop(const pq_node *n, double l, double r, double *out) {
    bool keep;
    double value = pq_elem_binop(n->op, l, r, &keep);
    if (n->bool_mod) {
        *out = keep ? 1.0 : 0.0;
        return true;
    }
    *out = value;
    return keep;
}

const pq_lset *pq_match_labels(sl_arena *a, const pq_node *n, const pq_lset *m, const pq_lset *rs) {
    if (n->card == PQ_CARD_ONE_ONE && (n->on || n->nmatchls > 0)) {
        m = pq_lset_project(a, m, n->matchls, n->nmatchls, n->on, false);
    }
    for (size_t i = 0; i < n->ninclude && m != NULL; i++) {
        m = pq_lset_set(a, m, n->include[i], pq_lset_get(rs, n->include[i]));
    }
    return m;
}

/* Prometheus's resultMetric: the labels of a vector-vector result (made
 * once per pair for the whole evaluation with a memo). */
static const pq_lset *result_labels(pq_ev *ev, bin_memo *mm, const pq_node *n, const pq_lset *ls,
                                    const pq_lset *rs) {
    uint64_t v;
    if (mm != NULL && cache_get(&mm->res, ls, rs, &v)) {
        return (const pq_lset *)(uintptr_t)v;
    }
    sl_arena *a = mm != NULL ? pq_ev_query_arena(ev) : &ev->step;
    const pq_lset *m = ls;
    if (pq_binop_drops_name(n->op)) {
        m = bin_noname(ev, mm, m);
    }
    m = pq_match_labels(a, n, m, rs);
    if (m == NULL) {
        fail_nomem(ev);
    }
    if (mm != NULL) {
        cache_put(ev, &mm->res, ls, rs, (uint64_t)(uintptr_t)m);
    }
    return m;
}

static pq_val eval_vv_binop(pq_ev *ev, pq_node *n, pq_val l, pq_val r, int64_t t) {
    if (n->op == PQ_OP_AND || n->op == PQ_OP_OR || n->op == PQ_OP_UNLESS) {
        return eval_setop(ev, n, l, r, t);
    }
    bool swapped = n->card == PQ_CARD_ONE_MANY;
    if (swapped) {
        pq_val x = l;
        l = r;
        r = x;
    }
    pq_val out = {.type = PQ_VECTOR};
    out.e = pq_ev_alloc(ev, (l.n ? l.n : 1) * sizeof(pq_elem));
    bin_memo *mm = bin_memo_get(ev, n);
    sig_index ri;
    sig_index_build(ev, mm, n, &r, &ri);
    for (size_t i = 0; i < r.n; i++) {
        uint32_t dup = sig_find(&ri, ri.sig[i]);
        if (dup != UINT32_MAX) {
            char a[200], b[200], s[200];
            const pq_lset *group =
                pq_lset_project(&ev->step, r.e[i].ls, n->matchls, n->nmatchls, n->on, true);
            if (group == NULL) {
                fail_nomem(ev);
            }
            lset_text(group, s, sizeof(s));
            lset_text(r.e[i].ls, a, sizeof(a));
            lset_text(r.e[dup].ls, b, sizeof(b));
            pq_ev_fail(ev, PQ_ERR_EXECUTION,
                       "found duplicate series for the match group %s on the %s hand-side of the "
                       "operation: [%s, %s];many-to-many matching not allowed: matching labels "
                       "must be unique on one side",
                       s, swapped ? "left" : "right", a, b);
        }
        sig_add(ev, &ri, (uint32_t)i);
    }
    /* Which right-hand signatures matched, and for many-to-one the result
     * label sets already produced per signature. */
    pq_map matched;
    if (pq_map_init(&matched, &ev->step, l.n) != 0) {
        fail_nomem(ev);
    }
    sig *msig = pq_ev_alloc(ev, (l.n ? l.n : 1) * sizeof(*msig));
    for (size_t i = 0; i < l.n; i++) {
        sig ls = signature(ev, mm, n, l.e[i].ls);
        uint32_t j = sig_find(&ri, ls);
        if (j == UINT32_MAX) {
            continue;
        }
        double vl = l.e[i].v, vr = r.e[j].v;
        if (swapped) {
            vl = r.e[j].v;
            vr = l.e[i].v;
        }
        double value;
        if (!pq_vv_binop(n, vl, vr, &value)) {
            continue;
        }
        const pq_lset *m = result_labels(ev, mm, n, l.e[i].ls, r.e[j].ls);
        if (n->bool_mod) {
            m = bin_noname(ev, mm, m);
        }
        /* One-to-one: a signature may match once. Many-to-one: the result
         * labels must differ within a signature. */
        uint64_t key = n->card == PQ_CARD_ONE_ONE ? ls.hash : ls.hash ^ (m->hash * 31);
        size_t it = 0;
        uint32_t k;
        while ((k = pq_map_next(&matched, key, &it)) != UINT32_MAX) {
            if (sig_eq(n, msig[k], ls) &&
                (n->card == PQ_CARD_ONE_ONE || pq_lset_eq(out.e[k].ls, m))) {
                break;
            }
        }
        if (k != UINT32_MAX) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "%s",
                       n->card == PQ_CARD_ONE_ONE
                           ? "multiple matches for labels: many-to-one matching must be explicit "
                             "(group_left/group_right)"
                           : "multiple matches for labels: grouping labels must ensure unique "
                             "matches");
        }
        msig[out.n] = ls;
        if (pq_map_put(&matched, key, (uint32_t)out.n) != 0) {
            fail_nomem(ev);
        }
        out.e[out.n++] = (pq_elem){m, t, value};
    }
    return out;
}

static pq_val eval_binary(pq_ev *ev, pq_node *n, int64_t t) {
    pq_val l = pq_ev_eval(ev, n->a, t);
    pq_val r = pq_ev_eval(ev, n->b, t);
    if (l.type == PQ_SCALAR && r.type == PQ_SCALAR) {
        bool keep;
        double v = pq_elem_binop(n->op, l.num, r.num, &keep);
        if (pq_binop_is_cmp(n->op)) {
            v = keep ? 1.0 : 0.0;
        }
        return (pq_val){.type = PQ_SCALAR, .num = v};
    }
    pq_val out;
    if (l.type == PQ_VECTOR && r.type == PQ_VECTOR) {
        out = eval_vv_binop(ev, n, l, r, t);
    } else if (l.type == PQ_VECTOR) {
        out = eval_vs_binop(ev, n, l, r.num, false, t);
    } else {
        out = eval_vs_binop(ev, n, r, l.num, true, t);
    }
    pq_ev_check_dups(ev, out.e, out.n);
    return out;
}

/* --- aggregation ------------------------------------------------------------------ */

typedef struct group {
    const pq_lset *rep; /* the first member's labels: compared through the projection */
    const pq_lset *ls;  /* the projection: the result's labels */
    double value, mean;
    size_t count;
    pq_elem *heap; /* topk/bottomk: the kept elements; quantile: all values */
    size_t nheap, heapcap;
} group;

/* topk keeps the k largest: a min-heap on value where NaN is smallest;
 * bottomk the reverse. */
static bool heap_less(const pq_elem *a, const pq_elem *b, bool bottom) {
    if (bottom) {
        if (isnan(a->v)) {
            return true;
        }
        return a->v > b->v;
    }
    if (isnan(a->v)) {
        return true;
    }
    return a->v < b->v;
}

static void heap_up(pq_elem *h, size_t j, bool bottom) {
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (i == j || !heap_less(&h[j], &h[i], bottom)) {
            break;
        }
        pq_elem x = h[i];
        h[i] = h[j];
        h[j] = x;
        j = i;
    }
}

static void heap_down(pq_elem *h, size_t i0, size_t n, bool bottom) {
    size_t i = i0;
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= n) {
            break;
        }
        size_t j = j1;
        if (j1 + 1 < n && heap_less(&h[j1 + 1], &h[j1], bottom)) {
            j = j1 + 1;
        }
        if (!heap_less(&h[j], &h[i], bottom)) {
            break;
        }
        pq_elem x = h[i];
        h[i] = h[j];
        h[j] = x;
        i = j;
    }
}

void pq_topk_add(pq_elem *heap, size_t *nheap, int64_t k, const pq_elem *s, bool bottom) {
    size_t n = *nheap;
    bool better = n > 0 && (bottom ? (heap[0].v > s->v) : (heap[0].v < s->v));
    if ((int64_t)n < k || better || isnan(heap[0].v)) {
        if ((int64_t)n == k) {
            if (k == 1) {
                heap[0] = *s;
                return;
            }
            /* Pop the smallest (largest for bottomk). */
            heap[0] = heap[n - 1];
            n--;
            heap_down(heap, 0, n, bottom);
        }
        heap[n++] = *s;
        heap_up(heap, n - 1, bottom);
    }
    *nheap = n;
}

static int cmp_desc(const void *a, const void *b) {
    double x = ((const pq_elem *)a)->v, y = ((const pq_elem *)b)->v;
    if (isnan(x) || isnan(y)) {
        return isnan(x) ? (isnan(y) ? 0 : 1) : -1;
    }
    return x > y ? -1 : (x < y ? 1 : 0);
}

static int cmp_asc(const void *a, const void *b) {
    double x = ((const pq_elem *)a)->v, y = ((const pq_elem *)b)->v;
    if (isnan(x) || isnan(y)) {
        return isnan(x) ? (isnan(y) ? 0 : 1) : -1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* An aggregation's groups by input label set, kept for the whole evaluation
 * when its input's label sets are stable: the signature hash and projected
 * key of each are computed once, not at every step, and a key is shared by
 * all members of its group (interned), so grouping compares pointers. */
typedef struct pq_agg_memo {
    pq_map byls; /* pointer hash -> entry */
    const pq_lset **in, **key;
    uint64_t *h;
    size_t n, cap;
    pq_map bykey; /* signature hash -> interned key */
    const pq_lset **keys;
    size_t nkeys, keycap;
} pq_agg_memo;

static void memo_group(pq_ev *ev, pq_agg_memo *mm, const pq_lset *ls, const sl_str *names,
                       size_t nnames, bool keep, uint64_t *h, const pq_lset **key) {
    size_t it = 0;
    uint32_t j;
    uint64_t ph = ptr_hash(ls, NULL);
    while ((j = pq_map_next(&mm->byls, ph, &it)) != UINT32_MAX) {
        if (mm->in[j] == ls) {
            *h = mm->h[j];
            *key = mm->key[j];
            return;
        }
    }
    sl_arena *qa = pq_ev_query_arena(ev);
    uint64_t sh = pq_lset_sig_hash(ls, names, nnames, keep);
    const pq_lset *k = pq_lset_project(qa, ls, names, nnames, keep, !keep);
    if (k == NULL) {
        fail_nomem(ev);
    }
    it = 0;
    while ((j = pq_map_next(&mm->bykey, sh, &it)) != UINT32_MAX && !pq_lset_eq(mm->keys[j], k)) {
    }
    if (j != UINT32_MAX) {
        k = mm->keys[j];
    } else {
        if (mm->nkeys == mm->keycap) {
            size_t cap = mm->keycap ? mm->keycap * 2 : 64;
            const pq_lset **nk = sl_arena_alloc(qa, cap * sizeof(*nk));
            if (nk == NULL) {
                fail_nomem(ev);
            }
            if (mm->nkeys > 0) {
                memcpy(nk, mm->keys, mm->nkeys * sizeof(*nk));
            }
            mm->keys = nk;
            mm->keycap = cap;
        }
        if (pq_map_put(&mm->bykey, sh, (uint32_t)mm->nkeys) != 0) {
            fail_nomem(ev);
        }
        mm->keys[mm->nkeys++] = k;
    }
    if (mm->n == mm->cap) {
        size_t cap = mm->cap ? mm->cap * 2 : 64;
        const pq_lset **ni = sl_arena_alloc(qa, cap * sizeof(*ni));
        const pq_lset **nk = sl_arena_alloc(qa, cap * sizeof(*nk));
        uint64_t *nh = sl_arena_alloc(qa, cap * sizeof(*nh));
        if (ni == NULL || nk == NULL || nh == NULL) {
            fail_nomem(ev);
        }
        if (mm->n > 0) {
            memcpy(ni, mm->in, mm->n * sizeof(*ni));
            memcpy(nk, mm->key, mm->n * sizeof(*nk));
            memcpy(nh, mm->h, mm->n * sizeof(*nh));
        }
        mm->in = ni;
        mm->key = nk;
        mm->h = nh;
        mm->cap = cap;
    }
    if (pq_map_put(&mm->byls, ph, (uint32_t)mm->n) != 0) {
        fail_nomem(ev);
    }
    mm->in[mm->n] = ls;
    mm->key[mm->n] = k;
    mm->h[mm->n++] = sh;
    *h = sh;
    *key = k;
}

static pq_agg_memo *agg_memo(pq_ev *ev, pq_node *n) {
    if (n->agg == PQ_AGG_COUNT_VALUES || !stable_lsets(n->a)) {
        return NULL;
    }
    if (n->memo == NULL || n->memo_eval != ev->q->evals) {
        sl_arena *qa = pq_ev_query_arena(ev);
        pq_agg_memo *mm = sl_arena_calloc(qa, 1, sizeof(*mm));
        if (mm == NULL || pq_map_init(&mm->byls, qa, 64) != 0 ||
            pq_map_init(&mm->bykey, qa, 16) != 0) {
            fail_nomem(ev);
        }
        n->memo = mm;
        n->memo_eval = ev->q->evals;
    }
    return n->memo;
}

static pq_val eval_aggregation(pq_ev *ev, pq_node *n, int64_t t) {
    pq_aggop op = n->agg;
    double param = 0;
    sl_str value_label = {"", 0};
    if (n->b != NULL) {
        pq_val p = pq_ev_eval(ev, n->b, t);
        if (p.type == PQ_STRING) {
            value_label = p.str;
        } else {
            param = p.num;
        }
    }
    pq_val in = pq_ev_eval(ev, n->a, t);
    pq_val out = {.type = PQ_VECTOR};
    int64_t k = 0;
    if (op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK) {
        if (!(param >= -9.2e18 && param <= 9.2e18)) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "Scalar value %g overflows int64", param);
        }
        k = (int64_t)param;
        if (k < 1) {
            return out;
        }
    }
    size_t ngroup_names = n->ngrouping;
    sl_str *names = n->grouping;
    if (op == PQ_AGG_COUNT_VALUES) {
        if (!pq_valid_label_name(value_label)) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid label name \"%.*s\"", (int)value_label.len,
                       value_label.ptr);
        }
        if (!n->without) {
            names = pq_ev_alloc(ev, (n->ngrouping + 1) * sizeof(sl_str));
            if (n->ngrouping > 0) {
                memcpy(names, n->grouping, n->ngrouping * sizeof(sl_str));
            }
            names[ngroup_names++] = value_label;
        }
    }
    group *g = pq_ev_alloc(ev, (in.n ? in.n : 1) * sizeof(group));
    size_t ng = 0;
    pq_map m;
    if (pq_map_init(&m, &ev->step, in.n) != 0) {
        fail_nomem(ev);
    }
    size_t result_size = (size_t)k > in.n ? in.n : (size_t)k;
    pq_agg_memo *memo = agg_memo(ev, n);
    for (size_t i = 0; i < in.n; i++) {
        const pq_elem *s = &in.e[i];
        const pq_lset *metric = s->ls;
        if (op == PQ_AGG_COUNT_VALUES) {
            char buf[400];
            size_t len = pq_format_value(s->v, buf, sizeof(buf));
            char *copy = sl_arena_strndup(&ev->step, buf, len);
            if (copy == NULL) {
                fail_nomem(ev);
            }
            metric = pq_lset_set(&ev->step, metric, value_label, (sl_str){copy, len});
            if (metric == NULL) {
                fail_nomem(ev);
            }
        }
        bool keep = !n->without;
        uint64_t h;
        const pq_lset *key = NULL;
        if (memo != NULL) {
            memo_group(ev, memo, metric, names, ngroup_names, keep, &h, &key);
        } else {
            h = pq_lset_sig_hash(metric, names, ngroup_names, keep);
        }
        size_t it = 0;
        uint32_t j;
        while ((j = pq_map_next(&m, h, &it)) != UINT32_MAX &&
               !(memo != NULL ? g[j].ls == key
                              : pq_lset_sig_eq(g[j].rep, metric, names, ngroup_names, keep))) {
        }
        if (j == UINT32_MAX) {
            if (key == NULL) {
                key = pq_lset_project(&ev->step, metric, names, ngroup_names, keep, !keep);
            }
            if (key == NULL) {
                fail_nomem(ev);
            }
            j = (uint32_t)ng++;
            group *x = &g[j];
            x->rep = metric;
            x->ls = key;
            x->value = s->v;
            x->mean = s->v;
            x->count = 1;
            if (pq_map_put(&m, h, j) != 0) {
                fail_nomem(ev);
            }
            switch (op) {
            case PQ_AGG_STDVAR:
            case PQ_AGG_STDDEV:
                x->value = 0;
                break;
            case PQ_AGG_TOPK:
            case PQ_AGG_BOTTOMK:
            case PQ_AGG_QUANTILE:
                x->heapcap = op == PQ_AGG_QUANTILE ? 8 : (result_size ? result_size : 1);
                x->heap = pq_ev_alloc(ev, x->heapcap * sizeof(pq_elem));
                x->heap[0] = *s;
                x->nheap = 1;
                break;
            case PQ_AGG_GROUP:
                x->value = 1;
                break;
            default:
                break;
            }
            continue;
        }
        group *x = &g[j];
        switch (op) {
        case PQ_AGG_SUM:
            x->value += s->v;
            break;
        case PQ_AGG_AVG:
            x->count++;
            if (isinf(x->mean)) {
                if (isinf(s->v) && (x->mean > 0) == (s->v > 0)) {
                    break;
                }
                if (!isinf(s->v) && !isnan(s->v)) {
                    break;
                }
            }
            x->mean += s->v / (double)x->count - x->mean / (double)x->count;
            break;
        case PQ_AGG_GROUP:
            break;
        case PQ_AGG_MAX:
            if (x->value < s->v || isnan(x->value)) {
                x->value = s->v;
            }
            break;
        case PQ_AGG_MIN:
            if (x->value > s->v || isnan(x->value)) {
                x->value = s->v;
            }
            break;
        case PQ_AGG_COUNT:
        case PQ_AGG_COUNT_VALUES:
            x->count++;
            break;
        case PQ_AGG_STDVAR:
        case PQ_AGG_STDDEV: {
            x->count++;
            double delta = s->v - x->mean;
            x->mean += delta / (double)x->count;
            x->value += delta * (s->v - x->mean);
            break;
        }
        case PQ_AGG_TOPK:
        case PQ_AGG_BOTTOMK:
            pq_topk_add(x->heap, &x->nheap, k, s, op == PQ_AGG_BOTTOMK);
            break;
        case PQ_AGG_QUANTILE:
            if (x->nheap == x->heapcap) {
                pq_elem *b = pq_ev_alloc(ev, x->heapcap * 2 * sizeof(pq_elem));
                memcpy(b, x->heap, x->nheap * sizeof(pq_elem));
                x->heap = b;
                x->heapcap *= 2;
            }
            x->heap[x->nheap++] = *s;
            break;
        }
    }
    size_t cap = ng;
    if (op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK) {
        cap = in.n;
    }
    out.e = pq_ev_alloc(ev, (cap ? cap : 1) * sizeof(pq_elem));
    for (size_t i = 0; i < ng; i++) {
        group *x = &g[i];
        double v = x->value;
        switch (op) {
        case PQ_AGG_AVG:
            v = x->mean;
            break;
        case PQ_AGG_COUNT:
        case PQ_AGG_COUNT_VALUES:
            v = (double)x->count;
            break;
        case PQ_AGG_STDVAR:
            v = x->value / (double)x->count;
            break;
        case PQ_AGG_STDDEV:
            v = sqrt(x->value / (double)x->count);
            break;
        case PQ_AGG_TOPK:
        case PQ_AGG_BOTTOMK:
            qsort(x->heap, x->nheap, sizeof(pq_elem), op == PQ_AGG_TOPK ? cmp_desc : cmp_asc);
            for (size_t h = 0; h < x->nheap; h++) {
                out.e[out.n++] = (pq_elem){x->heap[h].ls, t, x->heap[h].v};
            }
            continue;
        case PQ_AGG_QUANTILE: {
            double *vals = pq_ev_alloc(ev, x->nheap * sizeof(double));
            for (size_t h = 0; h < x->nheap; h++) {
                vals[h] = x->heap[h].v;
            }
            v = pq_quantile(param, vals, x->nheap);
            break;
        }
        default:
            break;
        }
        out.e[out.n++] = (pq_elem){x->ls, t, v};
    }
    return out;
}

/* --- the tree --------------------------------------------------------------------- */

pq_val pq_ev_eval(pq_ev *ev, pq_node *n, int64_t t) {
    switch (n->kind) {
    case PQ_N_NUM:
        return (pq_val){.type = PQ_SCALAR, .num = n->num};
    case PQ_N_STR:
        return (pq_val){.type = PQ_STRING, .str = n->str};
    case PQ_N_PAREN:
        return pq_ev_eval(ev, n->a, t);
    case PQ_N_SEL:
        return n->range_ms > 0 ? eval_matrix_sel(ev, n, t) : eval_vector_sel(ev, n, t);
    case PQ_N_SUBQ:
        return eval_subquery(ev, n, t);
    case PQ_N_NEG: {
        pq_val v = pq_ev_eval(ev, n->a, t);
        if (v.type == PQ_SCALAR) {
            v.num = -v.num;
            return v;
        }
        pq_val out = {.type = PQ_VECTOR, .n = v.n};
        out.e = pq_ev_alloc(ev, v.n * sizeof(pq_elem));
        for (size_t i = 0; i < v.n; i++) {
            out.e[i] = (pq_elem){pq_ev_noname(ev, v.e[i].ls), t, -v.e[i].v};
        }
        pq_ev_check_dups(ev, out.e, out.n);
        return out;
    }
    case PQ_N_BIN:
        return eval_binary(ev, n, t);
    case PQ_N_AGG:
        return eval_aggregation(ev, n, t);
    case PQ_N_CALL: {
        pq_val v = pq_call(ev, n, t);
        if (v.type == PQ_VECTOR) {
            pq_ev_check_dups(ev, v.e, v.n);
        }
        return v;
    }
    }
    pq_ev_fail(ev, PQ_ERR_INTERNAL, "unknown node");
}

/* --- results ---------------------------------------------------------------------- */

static pq_label *copy_labels(pq_ev *ev, const pq_lset *ls) {
    pq_lset *c = pq_lset_make(&ev->q->arena, ls->l, ls->n, true);
    if (c == NULL) {
        fail_nomem(ev);
    }
    return c->l;
}

/* Adds one point to the result series with labels ls (range queries). */
static void absorb(pq_ev *ev, const pq_lset *ls, int64_t t, double v) {
    pq_query *q = ev->q;
    size_t it = 0;
    uint32_t j;
    while ((j = pq_map_next(&ev->res_map, ls->hash, &it)) != UINT32_MAX) {
        const pq_series *s = &q->res[j];
        if (s->nlabels == ls->n) {
            bool eq = true;
            for (size_t i = 0; i < ls->n && eq; i++) {
                eq = sl_str_eq(s->labels[i].name, ls->l[i].name) &&
                     sl_str_eq(s->labels[i].value, ls->l[i].value);
            }
            if (eq) {
                break;
            }
        }
    }
    if (j == UINT32_MAX) {
        if (q->nres == ev->res_cap) {
            size_t cap = ev->res_cap ? ev->res_cap * 2 : 64;
            pq_series *b = sl_arena_alloc(&q->arena, cap * sizeof(pq_series));
            size_t *bl = sl_arena_alloc(&q->arena, cap * sizeof(size_t));
            size_t *bc = sl_arena_alloc(&q->arena, cap * sizeof(size_t));
            if (b == NULL || bl == NULL || bc == NULL) {
                fail_nomem(ev);
            }
            if (q->nres > 0) {
                memcpy(b, q->res, q->nres * sizeof(pq_series));
                memcpy(bl, ev->res_len, q->nres * sizeof(size_t));
                memcpy(bc, ev->res_pcap, q->nres * sizeof(size_t));
            }
            q->res = b;
            ev->res_len = bl;
            ev->res_pcap = bc;
            ev->res_cap = cap;
        }
        if (q->nres_points == q->res_points_cap &&
            sl_array_grow(&q->res_points, &q->res_points_cap, q->nres_points + 1,
                          sizeof(pq_sample *)) != 0) {
            fail_nomem(ev);
        }
        j = (uint32_t)q->nres++;
        q->res[j] = (pq_series){copy_labels(ev, ls), ls->n, NULL, 0};
        q->res_points[q->nres_points++] = NULL;
        ev->res_len[j] = q->nres_points - 1; /* index of its point array */
        ev->res_pcap[j] = 0;
        if (pq_map_put(&ev->res_map, ls->hash, j) != 0) {
            fail_nomem(ev);
        }
    }
    pq_series *s = &q->res[j];
    pq_sample **pts = &q->res_points[ev->res_len[j]];
    if (s->npoints == ev->res_pcap[j] &&
        sl_array_grow(pts, &ev->res_pcap[j], s->npoints + 1, sizeof(pq_sample)) != 0) {
        fail_nomem(ev);
    }
    (*pts)[s->npoints++] = (pq_sample){t, v};
    s->points = *pts;
    pq_ev_count_points(ev, 1);
}

static int cmp_series(const void *a, const void *b) {
    const pq_series *x = a, *y = b;
    size_t n = x->nlabels < y->nlabels ? x->nlabels : y->nlabels;
    for (size_t i = 0; i < n; i++) {
        const pq_label *l = &x->labels[i], *r = &y->labels[i];
        size_t m = l->name.len < r->name.len ? l->name.len : r->name.len;
        int c = memcmp(l->name.ptr, r->name.ptr, m);
        if (c == 0 && l->name.len != r->name.len) {
            c = l->name.len < r->name.len ? -1 : 1;
        }
        if (c == 0) {
            m = l->value.len < r->value.len ? l->value.len : r->value.len;
            c = m ? memcmp(l->value.ptr, r->value.ptr, m) : 0;
            if (c == 0 && l->value.len != r->value.len) {
                c = l->value.len < r->value.len ? -1 : 1;
            }
        }
        if (c != 0) {
            return c;
        }
    }
    return x->nlabels < y->nlabels ? -1 : (x->nlabels > y->nlabels ? 1 : 0);
}

static void instant_result(pq_ev *ev, pq_val v, int64_t t, pq_result *out) {
    pq_query *q = ev->q;
    out->type = v.type;
    switch (v.type) {
    case PQ_SCALAR:
        out->scalar = (pq_sample){t, v.num};
        return;
    case PQ_STRING: {
        char *s = sl_arena_strndup(&q->arena, v.str.ptr ? v.str.ptr : "", v.str.len);
        if (s == NULL) {
            fail_nomem(ev);
        }
        out->string = (sl_str){s, v.str.len};
        out->scalar.t_ms = t;
        return;
    }
    case PQ_VECTOR: {
        pq_series *s = sl_arena_calloc(&q->arena, v.n ? v.n : 1, sizeof(pq_series));
        pq_sample *pts = sl_arena_alloc(&q->arena, (v.n ? v.n : 1) * sizeof(pq_sample));
        if (s == NULL || pts == NULL) {
            fail_nomem(ev);
        }
        for (size_t i = 0; i < v.n; i++) {
            pts[i] = (pq_sample){t, v.e[i].v};
            s[i] = (pq_series){copy_labels(ev, v.e[i].ls), v.e[i].ls->n, &pts[i], 1};
        }
        q->res = s;
        q->nres = v.n;
        break;
    }
    case PQ_MATRIX: {
        pq_series *s = sl_arena_calloc(&q->arena, v.nr ? v.nr : 1, sizeof(pq_series));
        if (s == NULL) {
            fail_nomem(ev);
        }
        for (size_t i = 0; i < v.nr; i++) {
            pq_sample *pts = sl_arena_memdup(&q->arena, v.r[i].s, v.r[i].n * sizeof(pq_sample));
            if (pts == NULL) {
                fail_nomem(ev);
            }
            s[i] = (pq_series){copy_labels(ev, v.r[i].ls), v.r[i].ls->n, pts, v.r[i].n};
        }
        q->res = s;
        q->nres = v.nr;
        if (q->nres > 1) {
            if (q->nres > 1) {
                qsort(q->res, q->nres, sizeof(pq_series), cmp_series);
            }
        }
        break;
    }
    }
    out->series = q->res;
    out->nseries = q->nres;
}

/* A range query's result: q->res sorted by labels. */
static void range_result(pq_ev *ev, pq_result *out) {
    pq_query *q = ev->q;
    if (q->nres > 1) {
        qsort(q->res, q->nres, sizeof(pq_series), cmp_series);
    }
    out->type = PQ_MATRIX;
    out->series = q->res;
    out->nseries = q->nres;
}

void pq_ev_count_points(pq_ev *ev, size_t n) {
    ev->loaded += n;
    if (ev->loaded > ev->o.max_samples) {
        pq_ev_fail(ev, PQ_ERR_EXECUTION,
                   "query processing would load too many samples into memory in query execution");
    }
}

const pq_eval_opts *pq_ev_opts(const pq_ev *ev) {
    return &ev->o;
}

pq_query *pq_ev_query(pq_ev *ev) {
    return ev->q;
}

static void run(pq_ev *ev, pq_result *out) {
    pq_query *q = ev->q;
    const pq_eval_opts *o = &ev->o;
    bool range = o->step_ms > 0;
    if (range) {
        if (q->root->type != PQ_SCALAR && q->root->type != PQ_VECTOR) {
            pq_ev_fail(
                ev, PQ_ERR_BAD_DATA,
                "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                pq_type_name(q->root->type));
        }
        if (o->end_ms < o->start_ms) {
            pq_ev_fail(ev, PQ_ERR_BAD_DATA, "end timestamp must not be before start time");
        }
        if ((o->end_ms - o->start_ms) / o->step_ms >= MAX_RESOLUTION) {
            pq_ev_fail(ev, PQ_ERR_BAD_DATA,
                       "exceeded maximum resolution of 11,000 points per timeseries. Try "
                       "decreasing the query resolution (?step=XX)");
        }
    }
    plan(ev, q->root, o->start_ms, range ? o->end_ms : o->start_ms);
    if (!range) {
        pq_ev_check_deadline(ev);
        pq_val v = pq_ev_eval(ev, q->root, o->start_ms);
        instant_result(ev, v, o->start_ms, out);
        return;
    }
    if (!o->stepwise && pq_rollup(ev, q->root)) {
        range_result(ev, out);
        out->series_major = true;
        return;
    }
    sl_arena_reset(&ev->step);
    if (pq_map_init(&ev->res_map, &q->arena, 64) != 0) {
        fail_nomem(ev);
    }
    for (int64_t t = o->start_ms; t <= o->end_ms; t += o->step_ms) {
        pq_ev_check_deadline(ev);
        pq_val v = pq_ev_eval(ev, q->root, t);
        if (v.type == PQ_SCALAR) {
            absorb(ev, &pq_lset_empty, t, v.num);
        } else {
            for (size_t i = 0; i < v.n; i++) {
                absorb(ev, v.e[i].ls, t, v.e[i].v);
            }
        }
        sl_arena_reset(&ev->step);
        if (o->end_ms - t < o->step_ms) {
            break;
        }
    }
    range_result(ev, out);
}

int pq_eval(pq_query *q, const pq_querier *qr, const pq_eval_opts *o, pq_result *out,
            pq_error *err) {
    pq_ev *ev = calloc(1, sizeof(*ev));
    memset(err, 0, sizeof(*err));
    memset(out, 0, sizeof(*out));
    if (ev == NULL) {
        err->kind = PQ_ERR_INTERNAL;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return SL_ENOMEM;
    }
    ev->q = q;
    ev->qr = qr;
    ev->o = *o;
    q->evals++;
    if (ev->o.lookback_ms <= 0) {
        ev->o.lookback_ms = 5 * 60 * 1000;
    }
    if (ev->o.max_samples == 0) {
        ev->o.max_samples = 50000000;
    }
    if (ev->o.max_memory == 0) {
        ev->o.max_memory = (size_t)1 << 30;
    }
    ev->err = err;
    sl_arena_init(&ev->step, ev->o.max_memory);
    int rc = 0;
    if (setjmp(ev->jb) == 0) {
        run(ev, out);
    } else {
        rc = ev->rc != 0 ? ev->rc : SL_EINVAL;
        memset(out, 0, sizeof(*out));
    }
    sl_arena_free(&ev->step);
    free(ev);
    return rc;
}
