/*
 * Series-major evaluation of range queries. Instead of evaluating the tree
 * once per step (pq_eval.c), every node computes all the steps of each of
 * its series at once, the way VictoriaMetrics rolls series up:
 *
 *   - a selector walks each loaded series forward once: the lookback sample
 *     of an instant selector, the [ref - range, ref] window of a range
 *     selector under a range function, both advancing with the steps (no
 *     binary search per step);
 *   - label sets are fixed per series, so grouping (aggregations,
 *     histogram_quantile) and vector matching (binary operators) are
 *     decided once for the query, then applied to the step arrays;
 *   - values are arrays of steps per series with a presence flag per step.
 *
 * Semantics are those of the step-wise evaluator, which stays the reference:
 * wherever a step-wise evaluation could raise an error or merge series (two
 * series of a value with the same labels, a many-to-many match, ...) or the
 * node is not covered (subqueries, topk, label_replace, holt_winters...),
 * pq_rollup returns false and the query is evaluated step by step.
 *
 * Memory: a vector value holds 9 bytes per series and step, in the step
 * arena (not reset until the end); pq_rollup declines when the estimate for
 * the whole tree would take more than a quarter of the memory limit.
 * Thread-safety: per query, as the evaluator.
 */
#include "pq_int.h"

#include "sl_err.h"

#include <math.h>
#include <string.h>

/* A scalar (one value per step) or an instant vector over all steps: series
 * i has value v[i * nsteps + j] at step j when ok[i * nsteps + j]. Label sets
 * are pairwise distinct. */
typedef struct rv {
    pq_type type;
    double *num; /* SCALAR */
    size_t n;
    const pq_lset **ls;
    double *v;
    uint8_t *ok;
} rv;

typedef struct rctx {
    pq_ev *ev;
    size_t ns;        /* steps */
    const int64_t *t; /* their evaluation times */
} rctx;

static bool eval_node(rctx *c, pq_node *n, rv *out);

static void new_scalar(rctx *c, rv *out) {
    *out = (rv){.type = PQ_SCALAR};
    out->num = pq_ev_alloc(c->ev, c->ns * sizeof(double));
}

static void new_vector(rctx *c, rv *out, size_t n) {
    *out = (rv){.type = PQ_VECTOR};
    size_t cells = (n ? n : 1) * c->ns;
    out->ls = pq_ev_alloc(c->ev, (n ? n : 1) * sizeof(*out->ls));
    out->v = pq_ev_alloc(c->ev, cells * sizeof(double));
    out->ok = pq_ev_alloc(c->ev, cells);
}

static _Noreturn void fail_nomem(rctx *c) {
    pq_ev_fail(c->ev, PQ_ERR_INTERNAL, "out of memory");
}

static const pq_lset *noname(rctx *c, const pq_lset *ls) {
    return pq_ev_noname(c->ev, ls);
}

/* Keeps series i as the next one when it has a value at some step. */
static void keep_if_any(rctx *c, rv *out, size_t i) {
    const uint8_t *ok = out->ok + i * c->ns;
    for (size_t j = 0; j < c->ns; j++) {
        if (ok[j]) {
            if (i != out->n) {
                out->ls[out->n] = out->ls[i];
                memcpy(out->v + out->n * c->ns, out->v + i * c->ns, c->ns * sizeof(double));
                memcpy(out->ok + out->n * c->ns, ok, c->ns);
            }
            out->n++;
            return;
        }
    }
}

/* Whether the label sets of v are pairwise distinct. Where they are not, a
 * step-wise evaluation raises "same labelset" at steps where two are present,
 * or merges them into one result series: the caller declines. */
static bool distinct(rctx *c, const rv *v) {
    if (v->n < 2) {
        return true;
    }
    pq_map m;
    if (pq_map_init(&m, pq_ev_arena(c->ev), v->n) != 0) {
        fail_nomem(c);
    }
    for (size_t i = 0; i < v->n; i++) {
        size_t it = 0;
        uint32_t j;
        while ((j = pq_map_next(&m, v->ls[i]->hash, &it)) != UINT32_MAX) {
            if (pq_lset_eq(v->ls[j], v->ls[i])) {
                return false;
            }
        }
        if (pq_map_put(&m, v->ls[i]->hash, (uint32_t)i) != 0) {
            fail_nomem(c);
        }
    }
    return true;
}

/* --- selectors and range functions --------------------------------------------- */

static bool eval_vector_sel(rctx *c, pq_node *n, rv *out) {
    int64_t lookback = pq_ev_opts(c->ev)->lookback_ms;
    new_vector(c, out, n->nseries);
    for (size_t i = 0; i < n->nseries; i++) {
        pq_ev_check_deadline(c->ev);
        const pq_sel_series *s = &n->series[i];
        double *v = out->v + i * c->ns;
        uint8_t *ok = out->ok + i * c->ns;
        out->ls[i] = s->ls;
        size_t k = 0; /* samples with t <= ref */
        for (size_t j = 0; j < c->ns; j++) {
            int64_t ref = pq_ev_at_time(c->ev, n, c->t[j]) - n->offset_ms;
            while (k < s->nall && s->all[k].t_ms <= ref) {
                k++;
            }
            if (k == 0) {
                continue;
            }
            const pq_sample *x = &s->all[k - 1];
            if (x->t_ms < ref - lookback || pq_is_stale(x->v)) {
                continue;
            }
            v[j] = x->v;
            ok[j] = 1;
        }
        keep_if_any(c, out, i);
    }
    return true;
}

static bool is_range_func(pq_func_id id) {
    switch (id) {
    case PQ_F_RATE:
    case PQ_F_INCREASE:
    case PQ_F_DELTA:
    case PQ_F_IRATE:
    case PQ_F_IDELTA:
    case PQ_F_RESETS:
    case PQ_F_CHANGES:
    case PQ_F_AVG_OVER_TIME:
    case PQ_F_SUM_OVER_TIME:
    case PQ_F_COUNT_OVER_TIME:
    case PQ_F_MIN_OVER_TIME:
    case PQ_F_MAX_OVER_TIME:
    case PQ_F_LAST_OVER_TIME:
    case PQ_F_PRESENT_OVER_TIME:
    case PQ_F_QUANTILE_OVER_TIME:
    case PQ_F_STDDEV_OVER_TIME:
    case PQ_F_STDVAR_OVER_TIME:
    case PQ_F_DERIV:
    case PQ_F_PREDICT_LINEAR:
        return true;
    default:
        return false; /* holt_winters raises on its parameters; absent_over_time */
    }
}

/* --- sliding sums ----------------------------------------------------------------- */

/* A double-double: hi + lo with |lo| <= ulp(hi) / 2. */
typedef struct dd {
    double hi, lo;
} dd;

/* a + p + e, where e is small against p (a product's rounding error, or 0):
 * Knuth's two-sum of hi and p (exact), the small parts added, renormalized. */
static dd dd_add(dd a, double p, double e) {
    double s = a.hi + p;
    double bb = s - a.hi;
    double lo = a.lo + ((a.hi - (s - bb)) + (p - bb)) + e;
    double hi = s + lo;
    return (dd){hi, lo - (hi - s)};
}

/* A sliding window's sum of finite values in double-double, with counts of
 * its NaN and infinite values; for stddev and stdvar the sums are of the
 * values less a shift (a recent value, see wsum_restart), with the sum of
 * their squares (exact through fma) and the number of neighbours in the
 * window whose values differ. A sample costs O(1) entering the window
 * and leaving it, instead of a pass over the whole window at every step.
 * The error stays near 2^-106 of the largest partial sum, far below the
 * 1e-9 the differential suite allows against Prometheus's per-window
 * loops (a few ulps off the exact value); the sums restart from exact zero
 * whenever the window empties. wsum_fits keeps the magnitudes where no sum
 * or square overflows. */
typedef struct wsum {
    dd sum, sq;
    size_t nan, pinf, ninf;
    size_t ndiff;
    double shift; /* with squares: subtracted from every value first */
} wsum;

/* Sample k of s enters (dir 1; k == hi) or leaves (dir -1; k == lo) the
 * window s[lo..hi). */
static void wsum_move(wsum *w, const pq_sample *s, size_t k, size_t lo, size_t hi, int dir,
                      bool squares) {
    double x = s[k].v;
    if (squares) {
        /* The pair (k - 1, k) counts while both are in the window. */
        bool pair = dir > 0 ? k > lo && s[k - 1].v != x : k + 1 < hi && s[k + 1].v != x;
        if (pair && dir > 0) {
            w->ndiff++;
        } else if (pair) {
            w->ndiff--;
        }
    }
    if (!isfinite(x)) {
        size_t *cnt = isnan(x) ? &w->nan : (x > 0 ? &w->pinf : &w->ninf);
        if (dir > 0) {
            ++*cnt;
        } else {
            --*cnt;
        }
        return;
    }
    if (!squares) {
        w->sum = dd_add(w->sum, dir > 0 ? x : -x, 0);
        return;
    }
    /* d = x - shift exactly (dh + dl, two-sum), so the squares' rounding
     * noise scales with the spread of the values, not with their
     * magnitude; d^2 = dh^2 (exact with fma's error term) + 2 dh dl. */
    double dh = x - w->shift;
    double bb = dh - x;
    double dl = (x - (dh - bb)) + (-w->shift - bb);
    double p = dh * dh;
    double e = fma(dh, dh, -p) + 2 * dh * dl;
    if (dir < 0) {
        dh = -dh;
        dl = -dl;
        p = -p;
        e = -e;
    }
    w->sum = dd_add(w->sum, dh, dl);
    w->sq = dd_add(w->sq, p, e);
}

/* Whether a series' finite samples can be summed in any window without
 * overflow: their magnitudes times their count below 2^1020 (2^500 with
 * squares, whose sum is then multiplied by the count; values less the
 * shift are at most twice as large). */
static bool wsum_fits(const pq_sample *s, size_t n, bool squares) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(s[i].v);
        if (a > m && isfinite(a)) {
            m = a;
        }
    }
    return m * (double)(n ? n : 1) < (squares ? 0x1p499 : 0x1p1020);
}

/* Restarts w's sums (with squares) from the window s[lo..hi), shifted by
 * its first finite value. The caller does it whenever every sample of the
 * previous restart has left the window, so that the shift stays within
 * about two windows of the values (the squares' rounding noise grows with
 * their distance from it), at O(1) amortized per sample: each sample is
 * added by at most one restart. */
static void wsum_restart(wsum *w, const pq_sample *s, size_t lo, size_t hi) {
    *w = (wsum){0};
    for (size_t k = lo; k < hi; k++) {
        if (isfinite(s[k].v)) {
            w->shift = s[k].v;
            break;
        }
    }
    for (size_t k = lo; k < hi; k++) {
        wsum_move(w, s, k, lo, k, 1, true);
    }
}

/* sum_over_time and avg_over_time of the n samples in w, as Prometheus's
 * plain sum and incremental mean treat non-finite values: NaN when there is
 * a NaN or infinities of both signs, else the infinity, else the finite sum
 * (or mean). */
static double wsum_value(const wsum *w, size_t n, bool avg) {
    if (w->nan > 0 || (w->pinf > 0 && w->ninf > 0)) {
        return NAN;
    }
    if (w->pinf > 0 || w->ninf > 0) {
        return w->pinf > 0 ? INFINITY : -INFINITY;
    }
    if (!avg) {
        return w->sum.hi;
    }
    /* The quotient of hi + lo, not only of hi: q's remainder hi - q * n is
     * exact (fma), lo joins it, and the correction makes the mean the
     * correctly rounded one in all but ties (so a mean of short decimals is
     * printed short, as the decimal it stands for). */
    double q = w->sum.hi / (double)n;
    double r = fma(-q, (double)n, w->sum.hi) + w->sum.lo;
    return q + r / (double)n;
}

/* stdvar_over_time of the n samples in w: (n * sum(d^2) - sum(d)^2) / n^2
 * in double-double, d the values less the shift. Welford's loop, which Prometheus runs per window,
 * gives NaN for any NaN or infinity, and exactly 0 when all values are equal (that is kept:
 * rounding noise must not show as a tiny deviation). */
static double wsum_var(const wsum *w, size_t n) {
    if (w->nan > 0 || w->pinf > 0 || w->ninf > 0) {
        return NAN;
    }
    if (w->ndiff == 0) {
        return 0;
    }
    double dn = (double)n;
    double ph = w->sq.hi * dn;
    dd a = dd_add((dd){0, 0}, ph, fma(w->sq.hi, dn, -ph) + w->sq.lo * dn);
    double bh = w->sum.hi * w->sum.hi;
    double be = fma(w->sum.hi, w->sum.hi, -bh) + 2 * w->sum.hi * w->sum.lo;
    dd d = dd_add(a, -bh, -be);
    double var = d.hi / (dn * dn);
    return var > 0 ? var : 0;
}

/* A range function over a range selector: each series' window slides
 * forward over its samples (stale markers excluded) as the steps advance. */
/* Appends live[k] to a max (or min) queue dq[qh..*qt): the candidates that
 * can still be the window's extreme, values falling (rising) from the front.
 * Strictly smaller (larger) ones are dropped from the back and equal ones
 * kept, so the front is the window's first sample with the extreme value, as
 * pq_range_value's loop picks it; NaN never enters, as that loop replaces a
 * NaN by any number. */
static void extreme_push(size_t *dq, size_t qh, size_t *qt, const pq_sample *live, size_t k,
                         bool max) {
    double x = live[k].v;
    if (isnan(x)) {
        return;
    }
    size_t t = *qt;
    while (t > qh && (max ? live[dq[t - 1]].v < x : live[dq[t - 1]].v > x)) {
        t--;
    }
    dq[t++] = k;
    *qt = t;
}

static bool eval_range_func(rctx *c, pq_node *n, rv *out) {
    pq_func_id id = n->fn->id;
    size_t mi = id == PQ_F_QUANTILE_OVER_TIME ? 1 : 0;
    pq_node *m = n->args[mi];
    while (m->kind == PQ_N_PAREN) {
        m = m->a;
    }
    if (m->kind != PQ_N_SEL || m->range_ms <= 0) {
        return false; /* subqueries */
    }
    rv p = {0};
    if (n->nargs > 1 && !eval_node(c, n->args[mi == 1 ? 0 : 1], &p)) {
        return false;
    }
    size_t maxn = 1;
    for (size_t i = 0; i < m->nseries; i++) {
        maxn = m->series[i].nlive > maxn ? m->series[i].nlive : maxn;
    }
    double *scratch =
        id == PQ_F_QUANTILE_OVER_TIME ? pq_ev_alloc(c->ev, maxn * sizeof(double)) : NULL;
    bool counter = id == PQ_F_RATE || id == PQ_F_INCREASE;
    size_t *resets = counter ? pq_ev_alloc(c->ev, maxn * sizeof(size_t)) : NULL;
    bool squares = id == PQ_F_STDDEV_OVER_TIME || id == PQ_F_STDVAR_OVER_TIME;
    bool summed = squares || id == PQ_F_AVG_OVER_TIME || id == PQ_F_SUM_OVER_TIME;
    /* max and min: the window's candidates in a monotonic queue (indices
     * into live, each pushed once), so each sample is looked at a constant
     * number of times however long the range. */
    bool extreme = id == PQ_F_MAX_OVER_TIME || id == PQ_F_MIN_OVER_TIME;
    size_t *dq = extreme ? pq_ev_alloc(c->ev, maxn * sizeof(size_t)) : NULL;
    new_vector(c, out, m->nseries);
    /* Each step's window end, the same for every series. */
    int64_t *refs = pq_ev_alloc(c->ev, c->ns * sizeof(int64_t));
    for (size_t j = 0; j < c->ns; j++) {
        refs[j] = pq_ev_at_time(c->ev, m, c->t[j]) - m->offset_ms;
    }
    const int64_t range = m->range_ms;
    for (size_t i = 0; i < m->nseries; i++) {
        pq_ev_check_deadline(c->ev);
        pq_sel_series *s = &m->series[i];
        /* In locals: the stores to ok[] (bytes) could alias the fields. */
        const pq_sample *live = s->live;
        const size_t nlive = s->nlive;
        double *v = out->v + i * c->ns;
        uint8_t *ok = out->ok + i * c->ns;
        size_t lo = 0, hi = 0;      /* the window: live[lo..hi) */
        size_t nresets = 0, r0 = 0; /* counter resets: live[k].v < live[k - 1].v */
        pq_xmemo xm = {0};
        for (size_t k = 1; counter && k < nlive; k++) {
            if (live[k].v < live[k - 1].v) {
                resets[nresets++] = k;
            }
        }
        /* avg, sum, stddev and stdvar: the window's sums slide with it
         * (huge magnitudes, which could overflow a sum, take the per-window
         * loop). */
        bool slide = summed && wsum_fits(live, nlive, squares);
        wsum ws = {0};
        size_t restart = 0;    /* squares: where the window ended at the last restart */
        size_t qh = 0, qt = 0; /* extreme: the queue dq[qh..qt) */
        for (size_t j = 0; j < c->ns; j++) {
            int64_t ref = refs[j];
            while (lo < nlive && live[lo].t_ms < ref - range) {
                if (slide && lo < hi) {
                    wsum_move(&ws, live, lo, lo, hi, -1, squares);
                }
                lo++;
            }
            if (hi <= lo) {
                hi = lo;
                ws = (wsum){0};
            }
            while (hi < nlive && live[hi].t_ms <= ref) {
                if (slide) {
                    wsum_move(&ws, live, hi, lo, hi, 1, squares);
                }
                if (extreme) {
                    extreme_push(dq, qh, &qt, live, hi, id == PQ_F_MAX_OVER_TIME);
                }
                hi++;
            }
            if (hi == lo) {
                continue;
            }
            if (extreme) {
                while (qh < qt && dq[qh] < lo) {
                    qh++;
                }
                v[j] = qh < qt ? live[dq[qh]].v : NAN; /* NaN: nothing but NaN in the window */
                ok[j] = 1;
                continue;
            }
            if (slide && squares && lo >= restart) {
                wsum_restart(&ws, live, lo, hi);
                restart = hi;
            }
            if (slide) {
                double var = squares ? wsum_var(&ws, hi - lo) : 0;
                v[j] = id == PQ_F_STDVAR_OVER_TIME ? var
                       : id == PQ_F_STDDEV_OVER_TIME
                           ? sqrt(var)
                           : wsum_value(&ws, hi - lo, id == PQ_F_AVG_OVER_TIME);
                ok[j] = 1;
                continue;
            }
            if (counter) {
                /* rate and increase from the resets inside the window, in
                 * order: the same additions as the per-window loop. */
                if (hi - lo < 2) {
                    continue;
                }
                const pq_sample *w = live + lo;
                double result = w[hi - lo - 1].v - w[0].v;
                if (w[0].v < 0) {
                    result += 0; /* the loop's first comparison, against 0 */
                }
                while (r0 < nresets && resets[r0] <= lo) {
                    r0++;
                }
                for (size_t r = r0; r < nresets && resets[r] < hi; r++) {
                    result += live[resets[r] - 1].v;
                }
                v[j] = pq_extrapolate(w, hi - lo, result, ref - range, ref, range, true,
                                      id == PQ_F_RATE, &xm);
                ok[j] = 1;
                continue;
            }
            double p0 = p.num != NULL ? p.num[j] : 0;
            if (pq_range_value(c->ev, id, live + lo, hi - lo, ref, range, p0, 0, c->t[j], scratch,
                               &v[j])) {
                ok[j] = 1;
            }
        }
        if (id == PQ_F_LAST_OVER_TIME) {
            out->ls[i] = s->ls;
        } else {
            if (s->ls_noname == NULL) {
                s->ls_noname = pq_lset_drop_name(pq_ev_query_arena(c->ev), s->ls);
                if (s->ls_noname == NULL) {
                    fail_nomem(c);
                }
            }
            out->ls[i] = s->ls_noname;
        }
        keep_if_any(c, out, i);
    }
    return id == PQ_F_LAST_OVER_TIME || distinct(c, out);
}

/* --- other functions -------------------------------------------------------------- */

static bool is_math_func(pq_func_id id) {
    switch (id) {
    case PQ_F_ABS:
    case PQ_F_CEIL:
    case PQ_F_FLOOR:
    case PQ_F_EXP:
    case PQ_F_SQRT:
    case PQ_F_LN:
    case PQ_F_LOG2:
    case PQ_F_LOG10:
    case PQ_F_SIN:
    case PQ_F_COS:
    case PQ_F_TAN:
    case PQ_F_ASIN:
    case PQ_F_ACOS:
    case PQ_F_ATAN:
    case PQ_F_SINH:
    case PQ_F_COSH:
    case PQ_F_TANH:
    case PQ_F_ASINH:
    case PQ_F_ACOSH:
    case PQ_F_ATANH:
    case PQ_F_DEG:
    case PQ_F_RAD:
    case PQ_F_SGN:
    case PQ_F_CLAMP:
    case PQ_F_CLAMP_MAX:
    case PQ_F_CLAMP_MIN:
    case PQ_F_ROUND:
        return true;
    default:
        return false;
    }
}

static bool eval_math(rctx *c, pq_node *n, rv *out) {
    pq_func_id id = n->fn->id;
    rv in, pa = {0}, pb = {0};
    if (n->nargs > 1 && !eval_node(c, n->args[1], &pa)) {
        return false;
    }
    if (n->nargs > 2 && !eval_node(c, n->args[2], &pb)) {
        return false;
    }
    if (!eval_node(c, n->args[0], &in)) {
        return false;
    }
    new_vector(c, out, in.n);
    for (size_t i = 0; i < in.n; i++) {
        const double *iv = in.v + i * c->ns;
        const uint8_t *iok = in.ok + i * c->ns;
        double *v = out->v + i * c->ns;
        uint8_t *ok = out->ok + i * c->ns;
        out->ls[i] = noname(c, in.ls[i]);
        for (size_t j = 0; j < c->ns; j++) {
            double a = pa.num != NULL ? pa.num[j] : 1, b = pb.num != NULL ? pb.num[j] : 0;
            if (!iok[j] || (id == PQ_F_CLAMP && b < a)) {
                continue;
            }
            v[j] = pq_math_value(id, iv[j], a, b);
            ok[j] = 1;
        }
        keep_if_any(c, out, i);
    }
    return distinct(c, out);
}

/* histogram_quantile: the buckets of each histogram are grouped once; at
 * each step the quantile is taken over the buckets present. */
static bool eval_histogram_quantile(rctx *c, pq_node *n, rv *out) {
    rv q, in;
    if (!eval_node(c, n->args[0], &q) || !eval_node(c, n->args[1], &in)) {
        return false;
    }
    sl_arena *a = pq_ev_arena(c->ev);
    uint32_t *grp = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(uint32_t));
    double *upper = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(double));
    const pq_lset **keys = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(*keys));
    sl_str *metrics = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(sl_str));
    size_t *nmem = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(size_t));
    size_t ng = 0;
    pq_map m;
    if (pq_map_init(&m, a, in.n) != 0) {
        fail_nomem(c);
    }
    for (size_t i = 0; i < in.n; i++) {
        const pq_lset *key;
        sl_str metric;
        uint64_t h;
        int rc = pq_hist_member(a, in.ls[i], &upper[i], &key, &metric, &h);
        if (rc < 0) {
            fail_nomem(c);
        }
        if (rc == 0) {
            grp[i] = UINT32_MAX;
            continue;
        }
        size_t it = 0;
        uint32_t g;
        while ((g = pq_map_next(&m, h, &it)) != UINT32_MAX &&
               !(pq_lset_eq(keys[g], key) && sl_str_eq(metrics[g], metric))) {
        }
        if (g == UINT32_MAX) {
            g = (uint32_t)ng++;
            keys[g] = key;
            metrics[g] = metric;
            if (pq_map_put(&m, h, g) != 0) {
                fail_nomem(c);
            }
        }
        grp[i] = g;
        nmem[g]++;
    }
    /* Members of each group, in input order. */
    size_t *first = pq_ev_alloc(c->ev, (ng + 1) * sizeof(size_t));
    for (size_t g = 0; g < ng; g++) {
        first[g + 1] = first[g] + nmem[g];
    }
    size_t *mem = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(size_t));
    size_t *fill = pq_ev_alloc(c->ev, (ng ? ng : 1) * sizeof(size_t));
    for (size_t i = 0; i < in.n; i++) {
        if (grp[i] != UINT32_MAX) {
            mem[first[grp[i]] + fill[grp[i]]++] = i;
        }
    }
    pq_bucket *b = pq_ev_alloc(c->ev, (in.n ? in.n : 1) * sizeof(pq_bucket));
    new_vector(c, out, ng);
    for (size_t g = 0; g < ng; g++) {
        pq_ev_check_deadline(c->ev);
        out->ls[g] = keys[g];
        double *v = out->v + g * c->ns;
        uint8_t *ok = out->ok + g * c->ns;
        for (size_t j = 0; j < c->ns; j++) {
            size_t nb = 0;
            for (size_t k = first[g]; k < first[g + 1]; k++) {
                size_t i = mem[k];
                if (in.ok[i * c->ns + j]) {
                    b[nb++] = (pq_bucket){upper[i], in.v[i * c->ns + j]};
                }
            }
            if (nb > 0) {
                v[j] = pq_bucket_quantile(q.num[j], b, nb);
                ok[j] = 1;
            }
        }
        keep_if_any(c, out, g);
    }
    return distinct(c, out);
}

static bool eval_call(rctx *c, pq_node *n, rv *out) {
    pq_func_id id = n->fn->id;
    if (is_range_func(id)) {
        return eval_range_func(c, n, out);
    }
    if (is_math_func(id)) {
        return eval_math(c, n, out);
    }
    switch (id) {
    case PQ_F_TIME:
    case PQ_F_PI:
        new_scalar(c, out);
        for (size_t j = 0; j < c->ns; j++) {
            out->num[j] = id == PQ_F_PI ? M_PI : (double)c->t[j] / 1000.0;
        }
        return true;
    case PQ_F_VECTOR: {
        rv s;
        if (!eval_node(c, n->args[0], &s)) {
            return false;
        }
        new_vector(c, out, 1);
        out->n = 1;
        out->ls[0] = &pq_lset_empty;
        memcpy(out->v, s.num, c->ns * sizeof(double));
        memset(out->ok, 1, c->ns);
        return true;
    }
    case PQ_F_SCALAR: {
        rv in;
        if (!eval_node(c, n->args[0], &in)) {
            return false;
        }
        new_scalar(c, out);
        for (size_t j = 0; j < c->ns; j++) {
            size_t cnt = 0;
            double x = NAN;
            for (size_t i = 0; i < in.n && cnt < 2; i++) {
                if (in.ok[i * c->ns + j]) {
                    x = in.v[i * c->ns + j];
                    cnt++;
                }
            }
            out->num[j] = cnt == 1 ? x : NAN;
        }
        return true;
    }
    case PQ_F_SORT:
    case PQ_F_SORT_DESC:
        /* The order within a step does not survive into a range result. */
        return eval_node(c, n->args[0], out);
    case PQ_F_HISTOGRAM_QUANTILE:
        return eval_histogram_quantile(c, n, out);
    default:
        return false;
    }
}

/* --- aggregation ------------------------------------------------------------------ */

/* The groups of an aggregation, formed once from the input's label sets:
 * grp[i] for input series i, keys[g] the labels of group g (the projection
 * by/without), first[g]..first[g + 1] its members (in mem, input order). */
typedef struct groups {
    uint32_t *grp;
    const pq_lset **keys;
    size_t *first, *mem;
    size_t ng, largest;
} groups;

static void group_series(rctx *c, const pq_node *n, const rv *in, groups *gs) {
    bool keep = !n->without;
    sl_arena *a = pq_ev_arena(c->ev);
    size_t cap = in->n ? in->n : 1;
    gs->grp = pq_ev_alloc(c->ev, cap * sizeof(uint32_t));
    gs->keys = pq_ev_alloc(c->ev, cap * sizeof(*gs->keys));
    const pq_lset **rep = pq_ev_alloc(c->ev, cap * sizeof(*rep));
    size_t *size = pq_ev_alloc(c->ev, cap * sizeof(size_t));
    gs->ng = 0;
    pq_map m;
    if (pq_map_init(&m, a, in->n) != 0) {
        fail_nomem(c);
    }
    for (size_t i = 0; i < in->n; i++) {
        uint64_t h = pq_lset_sig_hash(in->ls[i], n->grouping, n->ngrouping, keep);
        size_t it = 0;
        uint32_t g;
        while ((g = pq_map_next(&m, h, &it)) != UINT32_MAX &&
               !pq_lset_sig_eq(rep[g], in->ls[i], n->grouping, n->ngrouping, keep)) {
        }
        if (g == UINT32_MAX) {
            g = (uint32_t)gs->ng++;
            rep[g] = in->ls[i];
            gs->keys[g] = pq_lset_project(a, in->ls[i], n->grouping, n->ngrouping, keep, !keep);
            if (gs->keys[g] == NULL || pq_map_put(&m, h, g) != 0) {
                fail_nomem(c);
            }
        }
        gs->grp[i] = g;
        size[g]++;
    }
    gs->first = pq_ev_alloc(c->ev, (gs->ng + 1) * sizeof(size_t));
    gs->largest = 0;
    for (size_t g = 0; g < gs->ng; g++) {
        gs->first[g + 1] = gs->first[g] + size[g];
        gs->largest = size[g] > gs->largest ? size[g] : gs->largest;
    }
    gs->mem = pq_ev_alloc(c->ev, cap * sizeof(size_t));
    memset(size, 0, cap * sizeof(size_t));
    for (size_t i = 0; i < in->n; i++) {
        uint32_t g = gs->grp[i];
        gs->mem[gs->first[g] + size[g]++] = i;
    }
}

/* topk, bottomk and quantile: at each step, the members of a group present
 * are offered in input order, as the step-wise evaluator does. topk and
 * bottomk keep the input's series, present at the steps they are chosen. */
static bool eval_select_agg(rctx *c, pq_node *n, const rv *in, const groups *gs, rv *out) {
    rv p;
    if (!eval_node(c, n->b, &p)) {
        return false;
    }
    bool quantile = n->agg == PQ_AGG_QUANTILE, bottom = n->agg == PQ_AGG_BOTTOMK;
    for (size_t j = 0; j < c->ns && !quantile; j++) {
        if (!(p.num[j] >= -9.2e18 && p.num[j] <= 9.2e18)) {
            return false; /* step-wise raises "overflows int64" */
        }
    }
    size_t cap = gs->largest ? gs->largest : 1;
    pq_elem *heap = pq_ev_alloc(c->ev, cap * sizeof(pq_elem));
    double *vals = pq_ev_alloc(c->ev, cap * sizeof(double));
    if (quantile) {
        new_vector(c, out, gs->ng);
    } else {
        new_vector(c, out, in->n);
        memcpy(out->ls, in->ls, in->n * sizeof(*out->ls));
        memcpy(out->v, in->v, in->n * c->ns * sizeof(double));
        out->n = in->n;
    }
    for (size_t g = 0; g < gs->ng; g++) {
        pq_ev_check_deadline(c->ev);
        for (size_t j = 0; j < c->ns; j++) {
            size_t nh = 0;
            int64_t k = quantile ? 0 : (int64_t)p.num[j];
            if (!quantile && k < 1) {
                continue;
            }
            for (size_t x = gs->first[g]; x < gs->first[g + 1]; x++) {
                size_t i = gs->mem[x];
                if (!in->ok[i * c->ns + j]) {
                    continue;
                }
                double v = in->v[i * c->ns + j];
                if (quantile) {
                    vals[nh++] = v;
                } else {
                    pq_elem e = {in->ls[i], (int64_t)i, v};
                    pq_topk_add(heap, &nh, k, &e, bottom);
                }
            }
            if (quantile) {
                if (nh > 0) {
                    out->v[g * c->ns + j] = pq_quantile(p.num[j], vals, nh);
                    out->ok[g * c->ns + j] = 1;
                }
                continue;
            }
            for (size_t h = 0; h < nh; h++) {
                out->ok[(size_t)heap[h].t * c->ns + j] = 1;
            }
        }
    }
    if (quantile) {
        memcpy(out->ls, gs->keys, gs->ng * sizeof(*out->ls));
        out->n = gs->ng;
        return true;
    }
    /* Series never chosen drop out. */
    size_t n0 = out->n;
    out->n = 0;
    for (size_t i = 0; i < n0; i++) {
        keep_if_any(c, out, i);
    }
    return true;
}

/* sum, avg, count, min, max, group, stddev and stdvar by/without: at each
 * step the members present are folded in input order with the step-wise
 * evaluator's arithmetic. */
static bool eval_aggregation(rctx *c, pq_node *n, rv *out) {
    pq_aggop op = n->agg;
    if (op == PQ_AGG_COUNT_VALUES) {
        return false; /* its labels come from the values */
    }
    rv in;
    if (!eval_node(c, n->a, &in)) {
        return false;
    }
    groups gs;
    group_series(c, n, &in, &gs);
    if (op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK || op == PQ_AGG_QUANTILE) {
        return eval_select_agg(c, n, &in, &gs, out);
    }
    size_t ng = gs.ng;
    const uint32_t *grp = gs.grp;
    new_vector(c, out, ng);
    memcpy(out->ls, gs.keys, ng * sizeof(*out->ls));
    double *mean = pq_ev_alloc(c->ev, (ng ? ng : 1) * c->ns * sizeof(double));
    double *count = pq_ev_alloc(c->ev, (ng ? ng : 1) * c->ns * sizeof(double));
    for (size_t i = 0; i < in.n; i++) {
        if ((i & 63) == 0) {
            pq_ev_check_deadline(c->ev);
        }
        size_t base = grp[i] * c->ns;
        const double *iv = in.v + i * c->ns;
        const uint8_t *iok = in.ok + i * c->ns;
        double *val = out->v + base, *mn = mean + base, *cnt = count + base;
        uint8_t *ok = out->ok + base;
        for (size_t j = 0; j < c->ns; j++) {
            if (!iok[j]) {
                continue;
            }
            double s = iv[j];
            if (!ok[j]) {
                ok[j] = 1;
                val[j] = op == PQ_AGG_STDDEV || op == PQ_AGG_STDVAR ? 0
                         : op == PQ_AGG_GROUP                       ? 1
                                                                    : s;
                mn[j] = s;
                cnt[j] = 1;
                continue;
            }
            switch (op) {
            case PQ_AGG_SUM:
                val[j] += s;
                break;
            case PQ_AGG_AVG:
                cnt[j]++;
                if (isinf(mn[j])) {
                    if (isinf(s) && (mn[j] > 0) == (s > 0)) {
                        break;
                    }
                    if (!isinf(s) && !isnan(s)) {
                        break;
                    }
                }
                mn[j] += s / cnt[j] - mn[j] / cnt[j];
                break;
            case PQ_AGG_MAX:
                if (val[j] < s || isnan(val[j])) {
                    val[j] = s;
                }
                break;
            case PQ_AGG_MIN:
                if (val[j] > s || isnan(val[j])) {
                    val[j] = s;
                }
                break;
            case PQ_AGG_COUNT:
                cnt[j]++;
                break;
            case PQ_AGG_STDDEV:
            case PQ_AGG_STDVAR: {
                cnt[j]++;
                double delta = s - mn[j];
                mn[j] += delta / cnt[j];
                val[j] += delta * (s - mn[j]);
                break;
            }
            default:
                break;
            }
        }
    }
    out->n = ng;
    for (size_t g = 0; g < ng; g++) {
        double *val = out->v + g * c->ns, *mn = mean + g * c->ns, *cnt = count + g * c->ns;
        for (size_t j = 0; j < c->ns; j++) {
            switch (op) {
            case PQ_AGG_AVG:
                val[j] = mn[j];
                break;
            case PQ_AGG_COUNT:
                val[j] = cnt[j];
                break;
            case PQ_AGG_STDVAR:
                val[j] = val[j] / cnt[j];
                break;
            case PQ_AGG_STDDEV:
                val[j] = sqrt(val[j] / cnt[j]);
                break;
            default:
                break;
            }
        }
    }
    return true;
}

/* --- binary operators -------------------------------------------------------------- */

/* Signature groups of one operand: series with equal matching signatures
 * (pq_lset_sig_*) share a group. */
typedef struct sigs {
    uint32_t *grp; /* per series */
    const pq_lset **rep;
    size_t *size; /* series per group */
    size_t ng;
    pq_map m;
} sigs;

static void sigs_init(rctx *c, sigs *s, size_t cap) {
    memset(s, 0, sizeof(*s));
    s->rep = pq_ev_alloc(c->ev, (cap ? cap : 1) * sizeof(*s->rep));
    s->size = pq_ev_alloc(c->ev, (cap ? cap : 1) * sizeof(size_t));
    if (pq_map_init(&s->m, pq_ev_arena(c->ev), cap) != 0) {
        fail_nomem(c);
    }
}

/* The group of ls, or UINT32_MAX; with add, a new group when there is none. */
static uint32_t sigs_find(rctx *c, const pq_node *n, sigs *s, const pq_lset *ls, bool add) {
    uint64_t h = pq_lset_sig_hash(ls, n->matchls, n->nmatchls, n->on);
    size_t it = 0;
    uint32_t g;
    while ((g = pq_map_next(&s->m, h, &it)) != UINT32_MAX &&
           !pq_lset_sig_eq(s->rep[g], ls, n->matchls, n->nmatchls, n->on)) {
    }
    if (g == UINT32_MAX && add) {
        g = (uint32_t)s->ng++;
        s->rep[g] = ls;
        if (pq_map_put(&s->m, h, g) != 0) {
            fail_nomem(c);
        }
    }
    return g;
}

static void sigs_build(rctx *c, const pq_node *n, sigs *s, const rv *v) {
    sigs_init(c, s, v->n);
    s->grp = pq_ev_alloc(c->ev, (v->n ? v->n : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < v->n; i++) {
        s->grp[i] = sigs_find(c, n, s, v->ls[i], true);
        s->size[s->grp[i]]++;
    }
}

/* Per group and step: whether any member is present. */
static uint8_t *sigs_any(rctx *c, const sigs *s, const rv *v) {
    uint8_t *any = pq_ev_alloc(c->ev, (s->ng ? s->ng : 1) * c->ns);
    for (size_t i = 0; i < v->n; i++) {
        uint8_t *a = any + s->grp[i] * c->ns;
        const uint8_t *ok = v->ok + i * c->ns;
        for (size_t j = 0; j < c->ns; j++) {
            a[j] |= ok[j];
        }
    }
    return any;
}

/* Appends series i of v where it is present and its signature group's
 * presence row (NULL: absent at every step) equals want. */
static void append_where(rctx *c, rv *out, const rv *v, size_t i, const uint8_t *row, bool want) {
    size_t o = out->n;
    out->ls[o] = v->ls[i];
    memcpy(out->v + o * c->ns, v->v + i * c->ns, c->ns * sizeof(double));
    for (size_t j = 0; j < c->ns; j++) {
        bool any = row != NULL && row[j];
        out->ok[o * c->ns + j] = v->ok[i * c->ns + j] && any == want;
    }
    keep_if_any(c, out, o);
}

static bool eval_setop(rctx *c, pq_node *n, const rv *l, const rv *r, rv *out) {
    new_vector(c, out, l->n + r->n);
    /* or: all of the left, the right where no left series of its signature
     * is present; and/unless: the left where one of the right is (is not). */
    bool or = n->op == PQ_OP_OR;
    const rv *by = or ? l : r, *from = or ? r : l;
    sigs gs;
    sigs_build(c, n, &gs, by);
    uint8_t *any = sigs_any(c, &gs, by);
    for (size_t i = 0; or &&i < l->n; i++) {
        append_where(c, out, l, i, NULL, false);
    }
    for (size_t i = 0; i < from->n; i++) {
        uint32_t g = sigs_find(c, n, &gs, from->ls[i], false);
        append_where(c, out, from, i, g == UINT32_MAX ? NULL : any + g * c->ns, n->op == PQ_OP_AND);
    }
    return ! or || distinct(c, out);
}

/* Prometheus's resultMetric for a matched pair. */
static const pq_lset *result_labels(rctx *c, const pq_node *n, const pq_lset *ls,
                                    const pq_lset *rs) {
    const pq_lset *m = pq_binop_drops_name(n->op) ? noname(c, ls) : ls;
    m = pq_match_labels(pq_ev_arena(c->ev), n, m, rs);
    if (m == NULL) {
        fail_nomem(c);
    }
    return n->bool_mod ? noname(c, m) : m;
}

/* Arithmetic and comparisons between two vectors: pairs are matched once.
 * Declines where the "one" side has two series of a signature, or two
 * left-hand series of a signature match one-to-one (step-wise, errors at
 * the steps where both are present). */
static bool eval_vv(rctx *c, pq_node *n, const rv *l0, const rv *r0, rv *out) {
    bool swapped = n->card == PQ_CARD_ONE_MANY;
    const rv *l = swapped ? r0 : l0, *r = swapped ? l0 : r0;
    sigs rs;
    sigs_build(c, n, &rs, r);
    if (rs.ng != r->n) {
        return false;
    }
    uint32_t *rsel = pq_ev_alloc(c->ev, (rs.ng ? rs.ng : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < r->n; i++) {
        rsel[rs.grp[i]] = (uint32_t)i;
    }
    uint8_t *used = pq_ev_alloc(c->ev, rs.ng ? rs.ng : 1);
    new_vector(c, out, l->n);
    for (size_t i = 0; i < l->n; i++) {
        uint32_t g = sigs_find(c, n, &rs, l->ls[i], false);
        if (g == UINT32_MAX) {
            continue;
        }
        if (n->card == PQ_CARD_ONE_ONE && used[g]++) {
            return false;
        }
        size_t k = rsel[g];
        size_t o = out->n;
        out->ls[o] = result_labels(c, n, l->ls[i], r->ls[k]);
        const double *lv = l->v + i * c->ns, *rv_ = r->v + k * c->ns;
        const uint8_t *lok = l->ok + i * c->ns, *rok = r->ok + k * c->ns;
        double *v = out->v + o * c->ns;
        uint8_t *ok = out->ok + o * c->ns;
        for (size_t j = 0; j < c->ns; j++) {
            if (!lok[j] || !rok[j]) {
                continue;
            }
            double vl = swapped ? rv_[j] : lv[j], vr = swapped ? lv[j] : rv_[j];
            ok[j] = pq_vv_binop(n, vl, vr, &v[j]);
        }
        keep_if_any(c, out, o);
    }
    return distinct(c, out);
}

static bool eval_vs(rctx *c, pq_node *n, const rv *vec, const double *scalar, bool swap, rv *out) {
    new_vector(c, out, vec->n);
    bool drop = pq_binop_drops_name(n->op) || n->bool_mod;
    bool cmp = pq_binop_is_cmp(n->op);
    for (size_t i = 0; i < vec->n; i++) {
        const double *iv = vec->v + i * c->ns;
        const uint8_t *iok = vec->ok + i * c->ns;
        double *v = out->v + i * c->ns;
        uint8_t *ok = out->ok + i * c->ns;
        out->ls[i] = drop ? noname(c, vec->ls[i]) : vec->ls[i];
        for (size_t j = 0; j < c->ns; j++) {
            if (!iok[j]) {
                continue;
            }
            double l = swap ? scalar[j] : iv[j], r = swap ? iv[j] : scalar[j];
            bool keep;
            double value = pq_elem_binop(n->op, l, r, &keep);
            if (cmp && swap) {
                value = r;
            }
            if (n->bool_mod) {
                value = keep ? 1.0 : 0.0;
                keep = true;
            }
            if (keep) {
                v[j] = value;
                ok[j] = 1;
            }
        }
        keep_if_any(c, out, i);
    }
    return !drop || distinct(c, out);
}

static bool eval_binary(rctx *c, pq_node *n, rv *out) {
    rv l, r;
    if (!eval_node(c, n->a, &l) || !eval_node(c, n->b, &r)) {
        return false;
    }
    if (l.type == PQ_SCALAR && r.type == PQ_SCALAR) {
        new_scalar(c, out);
        for (size_t j = 0; j < c->ns; j++) {
            bool keep;
            double v = pq_elem_binop(n->op, l.num[j], r.num[j], &keep);
            out->num[j] = pq_binop_is_cmp(n->op) ? (keep ? 1.0 : 0.0) : v;
        }
        return true;
    }
    if (l.type == PQ_VECTOR && r.type == PQ_VECTOR) {
        if (n->op == PQ_OP_AND || n->op == PQ_OP_OR || n->op == PQ_OP_UNLESS) {
            return eval_setop(c, n, &l, &r, out);
        }
        return eval_vv(c, n, &l, &r, out);
    }
    if (l.type == PQ_VECTOR) {
        return eval_vs(c, n, &l, r.num, false, out);
    }
    return eval_vs(c, n, &r, l.num, true, out);
}

/* --- the tree --------------------------------------------------------------------- */

static bool eval_node(rctx *c, pq_node *n, rv *out) {
    switch (n->kind) {
    case PQ_N_NUM:
        new_scalar(c, out);
        for (size_t j = 0; j < c->ns; j++) {
            out->num[j] = n->num;
        }
        return true;
    case PQ_N_PAREN:
        return eval_node(c, n->a, out);
    case PQ_N_SEL:
        return n->range_ms <= 0 && eval_vector_sel(c, n, out);
    case PQ_N_NEG: {
        rv in;
        if (!eval_node(c, n->a, &in)) {
            return false;
        }
        if (in.type == PQ_SCALAR) {
            new_scalar(c, out);
            for (size_t j = 0; j < c->ns; j++) {
                out->num[j] = -in.num[j];
            }
            return true;
        }
        *out = in;
        for (size_t i = 0; i < in.n * c->ns; i++) {
            out->v[i] = -out->v[i];
        }
        for (size_t i = 0; i < in.n; i++) {
            out->ls[i] = noname(c, in.ls[i]);
        }
        return distinct(c, out);
    }
    case PQ_N_BIN:
        return eval_binary(c, n, out);
    case PQ_N_AGG:
        return eval_aggregation(c, n, out);
    case PQ_N_CALL:
        return eval_call(c, n, out);
    case PQ_N_STR:
    case PQ_N_SUBQ:
        return false;
    }
    return false;
}

/* Nodes and selected series of the tree, for the memory estimate. */
static void tree_size(const pq_node *n, size_t *nodes, size_t *series) {
    if (n == NULL) {
        return;
    }
    ++*nodes;
    *series += n->nseries;
    tree_size(n->a, nodes, series);
    tree_size(n->b, nodes, series);
    for (size_t i = 0; i < n->nargs; i++) {
        tree_size(n->args[i], nodes, series);
    }
}

bool pq_rollup(pq_ev *ev, pq_node *root) {
    const pq_eval_opts *o = pq_ev_opts(ev);
    size_t ns = (size_t)((o->end_ms - o->start_ms) / o->step_ms) + 1;
    size_t nodes = 0, series = 0;
    tree_size(root, &nodes, &series);
    double need = (double)nodes * (double)(series + 1) * (double)ns * 10.0;
    if (need > (double)o->max_memory / 4) {
        return false;
    }
    int64_t *t = pq_ev_alloc(ev, ns * sizeof(int64_t));
    for (size_t j = 0; j < ns; j++) {
        t[j] = o->start_ms + (int64_t)j * o->step_ms;
    }
    rctx c = {ev, ns, t};
    rv v;
    if (!eval_node(&c, root, &v)) {
        return false;
    }
    if (v.type == PQ_SCALAR) {
        v.type = PQ_VECTOR;
        v.n = 1;
        v.ls = pq_ev_alloc(ev, sizeof(*v.ls));
        v.ls[0] = &pq_lset_empty;
        v.v = v.num;
        v.ok = pq_ev_alloc(ev, ns);
        memset(v.ok, 1, ns);
    }
    pq_query *q = pq_ev_query(ev);
    sl_arena *qa = &q->arena;
    q->res = sl_arena_calloc(qa, v.n ? v.n : 1, sizeof(pq_series));
    if (q->res == NULL) {
        fail_nomem(&c);
    }
    q->nres = 0;
    for (size_t i = 0; i < v.n; i++) {
        const uint8_t *ok = v.ok + i * ns;
        size_t np = 0;
        for (size_t j = 0; j < ns; j++) {
            np += ok[j];
        }
        if (np == 0) {
            continue;
        }
        pq_ev_count_points(ev, np);
        pq_sample *pts = sl_arena_alloc(qa, np * sizeof(pq_sample));
        const pq_lset *ls = pq_lset_make(qa, v.ls[i]->l, v.ls[i]->n, true);
        if (pts == NULL || ls == NULL) {
            fail_nomem(&c);
        }
        size_t k = 0;
        for (size_t j = 0; j < ns; j++) {
            if (ok[j]) {
                pts[k++] = (pq_sample){t[j], v.v[i * ns + j]};
            }
        }
        q->res[q->nres++] = (pq_series){ls->l, ls->n, pts, np};
    }
    return true;
}
