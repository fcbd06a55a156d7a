/*
 * PromQL functions: the table the parser checks calls against, and their
 * evaluation at one step. Range-vector functions get the samples of each
 * series in [ref - range, ref]; their results drop the metric name (except
 * last_over_time), as do the math functions; sort, label_replace and
 * label_join keep it. Formulas follow Prometheus 2.42 (functions.go),
 * including the extrapolation of rate, increase and delta.
 * Thread-safety: the table is constant; evaluation is per query.
 */
#include "pq_int.h"

#include "sl_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S PQ_SCALAR
#define V PQ_VECTOR
#define M PQ_MATRIX
#define STR PQ_STRING

/* Sorted by name for bsearch. */
static const pq_func g_funcs[] = {
    {"abs", PQ_F_ABS, {V}, 1, 0, V},
    {"absent", PQ_F_ABSENT, {V}, 1, 0, V},
    {"absent_over_time", PQ_F_ABSENT_OVER_TIME, {M}, 1, 0, V},
    {"acos", PQ_F_ACOS, {V}, 1, 0, V},
    {"acosh", PQ_F_ACOSH, {V}, 1, 0, V},
    {"asin", PQ_F_ASIN, {V}, 1, 0, V},
    {"asinh", PQ_F_ASINH, {V}, 1, 0, V},
    {"atan", PQ_F_ATAN, {V}, 1, 0, V},
    {"atanh", PQ_F_ATANH, {V}, 1, 0, V},
    {"avg_over_time", PQ_F_AVG_OVER_TIME, {M}, 1, 0, V},
    {"ceil", PQ_F_CEIL, {V}, 1, 0, V},
    {"changes", PQ_F_CHANGES, {M}, 1, 0, V},
    {"clamp", PQ_F_CLAMP, {V, S, S}, 3, 0, V},
    {"clamp_max", PQ_F_CLAMP_MAX, {V, S}, 2, 0, V},
    {"clamp_min", PQ_F_CLAMP_MIN, {V, S}, 2, 0, V},
    {"cos", PQ_F_COS, {V}, 1, 0, V},
    {"cosh", PQ_F_COSH, {V}, 1, 0, V},
    {"count_over_time", PQ_F_COUNT_OVER_TIME, {M}, 1, 0, V},
    {"day_of_month", PQ_F_DAY_OF_MONTH, {V}, 0, 1, V},
    {"day_of_week", PQ_F_DAY_OF_WEEK, {V}, 0, 1, V},
    {"day_of_year", PQ_F_DAY_OF_YEAR, {V}, 0, 1, V},
    {"days_in_month", PQ_F_DAYS_IN_MONTH, {V}, 0, 1, V},
    {"deg", PQ_F_DEG, {V}, 1, 0, V},
    {"delta", PQ_F_DELTA, {M}, 1, 0, V},
    {"deriv", PQ_F_DERIV, {M}, 1, 0, V},
    {"exp", PQ_F_EXP, {V}, 1, 0, V},
    {"floor", PQ_F_FLOOR, {V}, 1, 0, V},
    {"histogram_quantile", PQ_F_HISTOGRAM_QUANTILE, {S, V}, 2, 0, V},
    {"holt_winters", PQ_F_HOLT_WINTERS, {M, S, S}, 3, 0, V},
    {"hour", PQ_F_HOUR, {V}, 0, 1, V},
    {"idelta", PQ_F_IDELTA, {M}, 1, 0, V},
    {"increase", PQ_F_INCREASE, {M}, 1, 0, V},
    {"irate", PQ_F_IRATE, {M}, 1, 0, V},
    {"label_join", PQ_F_LABEL_JOIN, {V, STR, STR, STR, STR}, 3, -1, V},
    {"label_replace", PQ_F_LABEL_REPLACE, {V, STR, STR, STR, STR}, 5, 0, V},
    {"last_over_time", PQ_F_LAST_OVER_TIME, {M}, 1, 0, V},
    {"ln", PQ_F_LN, {V}, 1, 0, V},
    {"log10", PQ_F_LOG10, {V}, 1, 0, V},
    {"log2", PQ_F_LOG2, {V}, 1, 0, V},
    {"max_over_time", PQ_F_MAX_OVER_TIME, {M}, 1, 0, V},
    {"min_over_time", PQ_F_MIN_OVER_TIME, {M}, 1, 0, V},
    {"minute", PQ_F_MINUTE, {V}, 0, 1, V},
    {"month", PQ_F_MONTH, {V}, 0, 1, V},
    {"pi", PQ_F_PI, {S}, 0, 0, S},
    {"predict_linear", PQ_F_PREDICT_LINEAR, {M, S}, 2, 0, V},
    {"present_over_time", PQ_F_PRESENT_OVER_TIME, {M}, 1, 0, V},
    {"quantile_over_time", PQ_F_QUANTILE_OVER_TIME, {S, M}, 2, 0, V},
    {"rad", PQ_F_RAD, {V}, 1, 0, V},
    {"rate", PQ_F_RATE, {M}, 1, 0, V},
    {"resets", PQ_F_RESETS, {M}, 1, 0, V},
    {"round", PQ_F_ROUND, {V, S}, 1, 1, V},
    {"scalar", PQ_F_SCALAR, {V}, 1, 0, S},
    {"sgn", PQ_F_SGN, {V}, 1, 0, V},
    {"sin", PQ_F_SIN, {V}, 1, 0, V},
    {"sinh", PQ_F_SINH, {V}, 1, 0, V},
    {"sort", PQ_F_SORT, {V}, 1, 0, V},
    {"sort_desc", PQ_F_SORT_DESC, {V}, 1, 0, V},
    {"sqrt", PQ_F_SQRT, {V}, 1, 0, V},
    {"stddev_over_time", PQ_F_STDDEV_OVER_TIME, {M}, 1, 0, V},
    {"stdvar_over_time", PQ_F_STDVAR_OVER_TIME, {M}, 1, 0, V},
    {"sum_over_time", PQ_F_SUM_OVER_TIME, {M}, 1, 0, V},
    {"tan", PQ_F_TAN, {V}, 1, 0, V},
    {"tanh", PQ_F_TANH, {V}, 1, 0, V},
    {"time", PQ_F_TIME, {S}, 0, 0, S},
    {"timestamp", PQ_F_TIMESTAMP, {V}, 1, 0, V},
    {"vector", PQ_F_VECTOR, {S}, 1, 0, V},
    {"year", PQ_F_YEAR, {V}, 0, 1, V},
};

#undef S
#undef V
#undef M
#undef STR

static int func_cmp(const void *key, const void *elem) {
    const sl_str *k = key;
    const char *name = ((const pq_func *)elem)->name;
    size_t n = strlen(name);
    size_t m = k->len < n ? k->len : n;
    int c = memcmp(k->ptr, name, m);
    if (c != 0) {
        return c;
    }
    return k->len < n ? -1 : (k->len > n ? 1 : 0);
}

const pq_func *pq_func_lookup(sl_str name) {
    return bsearch(&name, g_funcs, sizeof(g_funcs) / sizeof(g_funcs[0]), sizeof(g_funcs[0]),
                   func_cmp);
}

/* --- helpers --------------------------------------------------------------------- */

/* Go's math.Min/Max: NaN wins. */
static double go_min(double a, double b) {
    if (isnan(a) || isnan(b)) {
        return NAN;
    }
    return a < b ? a : b;
}

static double go_max(double a, double b) {
    if (isnan(a) || isnan(b)) {
        return NAN;
    }
    return a > b ? a : b;
}

static int cmp_nan_first(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) {
        return isnan(y) ? 0 : -1;
    }
    if (isnan(y)) {
        return 1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

double pq_quantile(double q, double *v, size_t n) {
    if (n == 0 || isnan(q)) {
        return NAN;
    }
    if (q < 0) {
        return -INFINITY;
    }
    if (q > 1) {
        return INFINITY;
    }
    qsort(v, n, sizeof(double), cmp_nan_first);
    double fn = (double)n;
    double rank = q * (fn - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin(fn - 1, lower + 1);
    double weight = rank - floor(rank);
    return v[(size_t)lower] * (1 - weight) + v[(size_t)upper] * weight;
}

static double scalar_arg(pq_ev *ev, pq_node *n, size_t i, int64_t t) {
    pq_val v = pq_ev_eval(ev, n->args[i], t);
    return v.num;
}

static sl_str string_arg(pq_ev *ev, pq_node *n, size_t i, int64_t t) {
    pq_val v = pq_ev_eval(ev, n->args[i], t);
    return v.str;
}

static pq_val new_vector(pq_ev *ev, size_t cap) {
    pq_val out = {.type = PQ_VECTOR};
    out.e = pq_ev_alloc(ev, (cap ? cap : 1) * sizeof(pq_elem));
    return out;
}

static const pq_lset *range_noname(pq_ev *ev, const pq_range *r) {
    if (r->sel != NULL) {
        if (r->sel->ls_noname == NULL) {
            /* Cached for every step: made in the query's arena. */
            const pq_lset *x = pq_lset_drop_name(pq_ev_query_arena(ev), r->ls);
            if (x == NULL) {
                return pq_ev_noname(ev, r->ls);
            }
            r->sel->ls_noname = x;
        }
        return r->sel->ls_noname;
    }
    return pq_ev_noname(ev, r->ls);
}

/* --- range functions -------------------------------------------------------------- */

static bool extrapolated_rate(const pq_sample *s, size_t n, int64_t range_start, int64_t range_end,
                              int64_t range_ms, bool counter, bool rate, double *out) {
    if (n < 2) {
        return false;
    }
    double result = s[n - 1].v - s[0].v;
    if (counter) {
        double last = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i].v < last) {
                result += last;
            }
            last = s[i].v;
        }
    }
    *out = pq_extrapolate(s, n, result, range_start, range_end, range_ms, counter, rate, NULL);
    return true;
}

double pq_extrapolate(const pq_sample *s, size_t n, double result, int64_t range_start,
                      int64_t range_end, int64_t range_ms, bool counter, bool rate,
                      pq_xmemo *memo) {
    pq_xmemo local;
    pq_xmemo *m = memo != NULL ? memo : &local;
    int64_t d_start = s[0].t_ms - range_start, d_end = range_end - s[n - 1].t_ms;
    int64_t d_sampled = s[n - 1].t_ms - s[0].t_ms;
    if (memo == NULL || !m->valid || m->d_start != d_start || m->d_end != d_end ||
        m->d_sampled != d_sampled || m->n != n || m->range_ms != range_ms) {
        /* What depends on the window's times only: series sampled at a
         * steady interval give the same figures at every step. */
        m->valid = true;
        m->d_start = d_start;
        m->d_end = d_end;
        m->d_sampled = d_sampled;
        m->n = n;
        m->range_ms = range_ms;
        m->to_start = (double)d_start / 1000.0;
        m->to_end = (double)d_end / 1000.0;
        m->sampled = (double)d_sampled / 1000.0;
        m->avg_between = m->sampled / (double)(n - 1);
        m->threshold = m->avg_between * 1.1;
        m->range_s = (double)range_ms / 1000.0;
        double interval = m->sampled;
        interval += m->to_start < m->threshold ? m->to_start : m->avg_between / 2;
        interval += m->to_end < m->threshold ? m->to_end : m->avg_between / 2;
        m->factor = interval / m->sampled;
    }
    double factor = m->factor;
    /* The zero point lies clearly before the window when sampled * v0
     * exceeds to_start * result by more than rounding could: no division. */
    if (counter && result > 0 && s[0].v >= 0 &&
        !(m->sampled * s[0].v > m->to_start * result * (1 + 1e-9))) {
        double to_zero = m->sampled * (s[0].v / result);
        if (to_zero < m->to_start) {
            /* The counter would reach zero inside the window: extrapolate
             * only that far back. */
            double interval = m->sampled;
            interval += to_zero < m->threshold ? to_zero : m->avg_between / 2;
            interval += m->to_end < m->threshold ? m->to_end : m->avg_between / 2;
            factor = interval / m->sampled;
        }
    }
    result = result * factor;
    if (rate) {
        result = result / m->range_s;
    }
    return result;
}

static bool instant_value(const pq_sample *s, size_t n, bool rate, double *out) {
    if (n < 2) {
        return false;
    }
    pq_sample last = s[n - 1], prev = s[n - 2];
    double v = rate && last.v < prev.v ? last.v : last.v - prev.v;
    int64_t dt = last.t_ms - prev.t_ms;
    if (dt == 0) {
        return false;
    }
    if (rate) {
        v /= (double)dt / 1000.0;
    }
    *out = v;
    return true;
}

static void linear_regression(const pq_sample *s, size_t n, int64_t intercept_t, double *slope,
                              double *intercept) {
    double sx = 0, sy = 0, sxy = 0, sx2 = 0;
    bool const_y = true;
    for (size_t i = 0; i < n; i++) {
        if (const_y && i > 0 && s[i].v != s[0].v) {
            const_y = false;
        }
        double x = (double)(s[i].t_ms - intercept_t) / 1e3;
        sx += x;
        sy += s[i].v;
        sxy += x * s[i].v;
        sx2 += x * x;
    }
    if (const_y) {
        if (isinf(s[0].v)) {
            *slope = NAN;
            *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = s[0].v;
        }
        return;
    }
    double fn = (double)n;
    double cov = sxy - sx * sy / fn;
    double var = sx2 - sx * sx / fn;
    *slope = cov / var;
    *intercept = sy / fn - *slope * sx / fn;
}

static double trend(size_t i, double tf, double s0, double s1, double b) {
    if (i == 0) {
        return b;
    }
    return tf * (s1 - s0) + (1 - tf) * b;
}

bool pq_range_value(pq_ev *ev, pq_func_id id, const pq_sample *s, size_t n, int64_t ref_ms,
                    int64_t range_ms, double p0, double p1, int64_t t, double *scratch,
                    double *out) {
    int64_t rs = ref_ms - range_ms, re = ref_ms;
    switch (id) {
    case PQ_F_RATE:
        return extrapolated_rate(s, n, rs, re, range_ms, true, true, out);
    case PQ_F_INCREASE:
        return extrapolated_rate(s, n, rs, re, range_ms, true, false, out);
    case PQ_F_DELTA:
        return extrapolated_rate(s, n, rs, re, range_ms, false, false, out);
    case PQ_F_IRATE:
        return instant_value(s, n, true, out);
    case PQ_F_IDELTA:
        return instant_value(s, n, false, out);
    case PQ_F_RESETS: {
        double c = 0;
        for (size_t i = 1; i < n; i++) {
            c += s[i].v < s[i - 1].v;
        }
        *out = c;
        return true;
    }
    case PQ_F_CHANGES: {
        double c = 0;
        for (size_t i = 1; i < n; i++) {
            if (s[i].v != s[i - 1].v && !(isnan(s[i].v) && isnan(s[i - 1].v))) {
                c++;
            }
        }
        *out = c;
        return true;
    }
    case PQ_F_AVG_OVER_TIME: {
        double mean = 0, count = 0;
        for (size_t i = 0; i < n; i++) {
            count++;
            if (isinf(mean)) {
                if (isinf(s[i].v) && (mean > 0) == (s[i].v > 0)) {
                    continue;
                }
                if (!isinf(s[i].v) && !isnan(s[i].v)) {
                    continue;
                }
            }
            mean += s[i].v / count - mean / count;
        }
        *out = mean;
        return true;
    }
    case PQ_F_SUM_OVER_TIME: {
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum += s[i].v;
        }
        *out = sum;
        return true;
    }
    case PQ_F_COUNT_OVER_TIME:
        *out = (double)n;
        return true;
    case PQ_F_MIN_OVER_TIME:
    case PQ_F_MAX_OVER_TIME: {
        double x = s[0].v;
        for (size_t i = 1; i < n; i++) {
            bool better = id == PQ_F_MAX_OVER_TIME ? s[i].v > x : s[i].v < x;
            if (better || isnan(x)) {
                x = s[i].v;
            }
        }
        *out = x;
        return true;
    }
    case PQ_F_LAST_OVER_TIME:
        *out = s[n - 1].v;
        return true;
    case PQ_F_PRESENT_OVER_TIME:
        *out = 1;
        return true;
    case PQ_F_QUANTILE_OVER_TIME: {
        double *vals = scratch != NULL ? scratch : pq_ev_alloc(ev, n * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            vals[i] = s[i].v;
        }
        *out = pq_quantile(p0, vals, n);
        return true;
    }
    case PQ_F_STDDEV_OVER_TIME:
    case PQ_F_STDVAR_OVER_TIME: {
        double count = 0, mean = 0, aux = 0;
        for (size_t i = 0; i < n; i++) {
            count++;
            double delta = s[i].v - mean;
            mean += delta / count;
            aux += delta * (s[i].v - mean);
        }
        *out = id == PQ_F_STDDEV_OVER_TIME ? sqrt(aux / count) : aux / count;
        return true;
    }
    case PQ_F_DERIV: {
        if (n < 2) {
            return false;
        }
        double slope, icpt;
        linear_regression(s, n, s[0].t_ms, &slope, &icpt);
        *out = slope;
        return true;
    }
    case PQ_F_PREDICT_LINEAR: {
        if (n < 2) {
            return false;
        }
        double slope, icpt;
        linear_regression(s, n, t, &slope, &icpt);
        *out = slope * p0 + icpt;
        return true;
    }
    case PQ_F_HOLT_WINTERS: {
        if (p0 <= 0 || p0 >= 1) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION,
                       "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", p0);
        }
        if (p1 <= 0 || p1 >= 1) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid trend factor. Expected: 0 < tf < 1, got: %f",
                       p1);
        }
        if (n < 2) {
            return false;
        }
        double s0 = 0, s1 = s[0].v, b = s[1].v - s[0].v;
        for (size_t i = 1; i < n; i++) {
            double x = p0 * s[i].v;
            b = trend(i - 1, p1, s0, s1, b);
            double y = (1 - p0) * (s1 + b);
            s0 = s1;
            s1 = x + y;
        }
        *out = s1;
        return true;
    }
    default:
        return false;
    }
}

/* --- instant functions ------------------------------------------------------------ */

double pq_math_value(pq_func_id id, double v, double a, double b) {
    switch (id) {
    case PQ_F_ABS:
        return fabs(v);
    case PQ_F_CEIL:
        return ceil(v);
    case PQ_F_FLOOR:
        return floor(v);
    case PQ_F_EXP:
        return exp(v);
    case PQ_F_SQRT:
        return sqrt(v);
    case PQ_F_LN:
        return log(v);
    case PQ_F_LOG2:
        return log2(v);
    case PQ_F_LOG10:
        return log10(v);
    case PQ_F_SIN:
        return sin(v);
    case PQ_F_COS:
        return cos(v);
    case PQ_F_TAN:
        return tan(v);
    case PQ_F_ASIN:
        return asin(v);
    case PQ_F_ACOS:
        return acos(v);
    case PQ_F_ATAN:
        return atan(v);
    case PQ_F_SINH:
        return sinh(v);
    case PQ_F_COSH:
        return cosh(v);
    case PQ_F_TANH:
        return tanh(v);
    case PQ_F_ASINH:
        return asinh(v);
    case PQ_F_ACOSH:
        return acosh(v);
    case PQ_F_ATANH:
        return atanh(v);
    case PQ_F_DEG:
        return v * 180 / M_PI;
    case PQ_F_RAD:
        return v * M_PI / 180;
    case PQ_F_SGN:
        return v < 0 ? -1 : (v > 0 ? 1 : v);
    case PQ_F_CLAMP:
        return go_max(a, go_min(b, v));
    case PQ_F_CLAMP_MAX:
        return go_min(a, v);
    case PQ_F_CLAMP_MIN:
        return go_max(a, v);
    case PQ_F_ROUND: {
        double inv = 1.0 / a;
        return floor(v * inv + 0.5) / inv;
    }
    default:
        return NAN;
    }
}

static double date_func(pq_func_id id, double v) {
    time_t secs = (time_t)v;
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        return NAN;
    }
    switch (id) {
    case PQ_F_DAY_OF_MONTH:
        return tm.tm_mday;
    case PQ_F_DAY_OF_WEEK:
        return tm.tm_wday;
    case PQ_F_DAY_OF_YEAR:
        return tm.tm_yday + 1;
    case PQ_F_HOUR:
        return tm.tm_hour;
    case PQ_F_MINUTE:
        return tm.tm_min;
    case PQ_F_MONTH:
        return tm.tm_mon + 1;
    case PQ_F_YEAR:
        return tm.tm_year + 1900;
    case PQ_F_DAYS_IN_MONTH: {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return days[tm.tm_mon] + (tm.tm_mon == 1 && leap);
    }
    default:
        return NAN;
    }
}

/* The labels absent() reports: the equality matchers of its selector argument
 * (a label named by two matchers is left out). */
static const pq_lset *absent_labels(pq_ev *ev, pq_node *arg) {
    while (arg->kind == PQ_N_PAREN) {
        arg = arg->a;
    }
    if (arg->kind != PQ_N_SEL) {
        return &pq_lset_empty;
    }
    pq_label *l = pq_ev_alloc(ev, (arg->nm ? arg->nm : 1) * sizeof(pq_label));
    size_t n = 0;
    for (size_t i = 0; i < arg->nm; i++) {
        const pq_matcher *m = &arg->m[i];
        if (sl_str_eqc(m->name, "__name__")) {
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < arg->nm; j++) {
            dup = dup || (j != i && sl_str_eq(arg->m[j].name, m->name));
        }
        if (m->op == PQ_MATCH_EQ && !dup && m->value.len > 0) {
            l[n++] = (pq_label){m->name, m->value};
        }
    }
    const pq_lset *ls = pq_lset_make(pq_ev_arena(ev), l, n, false);
    if (ls == NULL) {
        pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
    }
    return ls;
}

static int cmp_bucket(const void *a, const void *b) {
    double x = ((const pq_bucket *)a)->upper, y = ((const pq_bucket *)b)->upper;
    return x < y ? -1 : (x > y ? 1 : 0);
}

double pq_bucket_quantile(double q, pq_bucket *b, size_t n) {
    if (isnan(q)) {
        return NAN;
    }
    if (q < 0) {
        return -INFINITY;
    }
    if (q > 1) {
        return INFINITY;
    }
    qsort(b, n, sizeof(pq_bucket), cmp_bucket);
    if (!isinf(b[n - 1].upper) || b[n - 1].upper < 0) {
        return NAN;
    }
    /* Merge buckets with the same bound, then force counts monotonic. */
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == b[k].upper) {
            b[k].count += b[i].count;
        } else {
            b[++k] = b[i];
        }
    }
    n = k + 1;
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max) {
            max = b[i].count;
        } else if (b[i].count < max) {
            b[i].count = max;
        }
    }
    if (n < 2) {
        return NAN;
    }
    double obs = b[n - 1].count;
    if (obs == 0) {
        return NAN;
    }
    double rank = q * obs;
    size_t i = 0;
    while (i < n - 1 && !(b[i].count >= rank)) {
        i++;
    }
    if (i == n - 1) {
        return b[n - 2].upper;
    }
    if (i == 0 && b[0].upper <= 0) {
        return b[0].upper;
    }
    double start = 0, end = b[i].upper, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

int pq_hist_member(sl_arena *a, const pq_lset *ls, double *upper, const pq_lset **key,
                   sl_str *metric, uint64_t *group_hash) {
    static const sl_str le = SL_STR_INIT("le");
    static const sl_str name = SL_STR_INIT("__name__");
    sl_str les = pq_lset_get(ls, le);
    char buf[64];
    if (les.len == 0 || les.len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, les.ptr, les.len);
    buf[les.len] = '\0';
    char *end;
    double u = strtod(buf, &end);
    if (end != buf + les.len) {
        return 0;
    }
    sl_str m = pq_lset_get(ls, name);
    const sl_str drop[] = {le, name};
    const pq_lset *k = pq_lset_project(a, ls, drop, 2, false, false);
    if (k == NULL) {
        return SL_ENOMEM;
    }
    *upper = u;
    *key = k;
    *metric = m;
    *group_hash = k->hash ^ pq_hash_labels(&(pq_label){name, m}, 1);
    return 1;
}

static pq_val histogram_quantile(pq_ev *ev, double q, pq_val in, int64_t t) {
    typedef struct hist {
        const pq_lset *key; /* labels without le and __name__ */
        sl_str metric;
        pq_bucket *b;
        size_t n, cap;
    } hist;
    hist *h = pq_ev_alloc(ev, (in.n ? in.n : 1) * sizeof(hist));
    size_t nh = 0;
    pq_map m;
    if (pq_map_init(&m, pq_ev_arena(ev), in.n) != 0) {
        pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < in.n; i++) {
        double upper;
        const pq_lset *key;
        sl_str metric;
        uint64_t hk;
        int rc = pq_hist_member(pq_ev_arena(ev), in.e[i].ls, &upper, &key, &metric, &hk);
        if (rc < 0) {
            pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
        }
        if (rc == 0) {
            continue;
        }
        size_t it = 0;
        uint32_t j;
        while ((j = pq_map_next(&m, hk, &it)) != UINT32_MAX &&
               !(pq_lset_eq(h[j].key, key) && sl_str_eq(h[j].metric, metric))) {
        }
        if (j == UINT32_MAX) {
            j = (uint32_t)nh++;
            h[j] = (hist){key, metric, NULL, 0, 0};
            if (pq_map_put(&m, hk, j) != 0) {
                pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
            }
        }
        if (h[j].n == h[j].cap) {
            size_t cap = h[j].cap ? h[j].cap * 2 : 16;
            pq_bucket *b = pq_ev_alloc(ev, cap * sizeof(pq_bucket));
            if (h[j].n > 0) {
                memcpy(b, h[j].b, h[j].n * sizeof(pq_bucket));
            }
            h[j].b = b;
            h[j].cap = cap;
        }
        h[j].b[h[j].n++] = (pq_bucket){upper, in.e[i].v};
    }
    pq_val out = new_vector(ev, nh);
    for (size_t i = 0; i < nh; i++) {
        out.e[out.n++] = (pq_elem){h[i].key, t, pq_bucket_quantile(q, h[i].b, h[i].n)};
    }
    return out;
}

static pq_val label_replace(pq_ev *ev, pq_node *n, pq_val in, int64_t t) {
    sl_str dst = string_arg(ev, n, 1, t);
    sl_str repl = string_arg(ev, n, 2, t);
    sl_str src = string_arg(ev, n, 3, t);
    sl_str pattern = string_arg(ev, n, 4, t);
    if (n->call_re == NULL) {
        /* Compiled on first use and kept on the call node for later steps
         * (the pattern is a string literal, the same at every step). */
        char emsg[200];
        pq_regex *compiled;
        int rc = pq_regex_compile(pattern, &compiled, emsg, sizeof(emsg));
        if (rc == SL_ENOMEM) {
            pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
        }
        if (rc != 0) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid regular expression in label_replace(): %.*s",
                       (int)pattern.len, pattern.ptr);
        }
        pq_ev_track_regex(ev, compiled);
        n->call_re = compiled;
    }
    const pq_regex *re = n->call_re;
    if (!pq_valid_label_name(dst)) {
        pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid destination label name in label_replace(): %.*s",
                   (int)dst.len, dst.ptr);
    }
    pq_val out = new_vector(ev, in.n);
    for (size_t i = 0; i < in.n; i++) {
        const pq_lset *ls = in.e[i].ls;
        sl_str res;
        int rc = pq_regex_expand(re, pq_lset_get(ls, src), repl, pq_ev_arena(ev), &res);
        if (rc < 0) {
            pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
        }
        if (rc == 1) {
            ls = pq_lset_set(pq_ev_arena(ev), ls, dst, res);
            if (ls == NULL) {
                pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
            }
        }
        out.e[out.n++] = (pq_elem){ls, t, in.e[i].v};
    }
    return out;
}

static pq_val label_join(pq_ev *ev, pq_node *n, pq_val in, int64_t t) {
    sl_str dst = string_arg(ev, n, 1, t);
    sl_str sep = string_arg(ev, n, 2, t);
    size_t nsrc = n->nargs - 3;
    sl_str *src = pq_ev_alloc(ev, (nsrc ? nsrc : 1) * sizeof(sl_str));
    for (size_t i = 0; i < nsrc; i++) {
        src[i] = string_arg(ev, n, 3 + i, t);
        if (!pq_valid_label_name(src[i])) {
            pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid source label name in label_join(): %.*s",
                       (int)src[i].len, src[i].ptr);
        }
    }
    if (!pq_valid_label_name(dst)) {
        pq_ev_fail(ev, PQ_ERR_EXECUTION, "invalid destination label name in label_join(): %.*s",
                   (int)dst.len, dst.ptr);
    }
    pq_val out = new_vector(ev, in.n);
    for (size_t i = 0; i < in.n; i++) {
        const pq_lset *ls = in.e[i].ls;
        size_t len = 0;
        for (size_t j = 0; j < nsrc; j++) {
            len += pq_lset_get(ls, src[j]).len + (j ? sep.len : 0);
        }
        char *buf = pq_ev_alloc(ev, len + 1);
        size_t k = 0;
        for (size_t j = 0; j < nsrc; j++) {
            if (j > 0 && sep.len > 0) {
                memcpy(buf + k, sep.ptr, sep.len);
                k += sep.len;
            }
            sl_str v = pq_lset_get(ls, src[j]);
            if (v.len > 0) {
                memcpy(buf + k, v.ptr, v.len);
                k += v.len;
            }
        }
        ls = pq_lset_set(pq_ev_arena(ev), ls, dst, (sl_str){buf, k});
        if (ls == NULL) {
            pq_ev_fail(ev, PQ_ERR_INTERNAL, "out of memory");
        }
        out.e[out.n++] = (pq_elem){ls, t, in.e[i].v};
    }
    return out;
}

/* sort and sort_desc both put NaN last, as Prometheus's reversed heaps do. */
static int cmp_elem_asc(const void *a, const void *b) {
    double x = ((const pq_elem *)a)->v, y = ((const pq_elem *)b)->v;
    if (isnan(x)) {
        return isnan(y) ? 0 : 1;
    }
    if (isnan(y)) {
        return -1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int cmp_elem_desc(const void *a, const void *b) {
    double x = ((const pq_elem *)a)->v, y = ((const pq_elem *)b)->v;
    if (isnan(x)) {
        return isnan(y) ? 0 : 1;
    }
    if (isnan(y)) {
        return -1;
    }
    return x > y ? -1 : (x < y ? 1 : 0);
}

pq_val pq_call(pq_ev *ev, pq_node *n, int64_t t) {
    pq_func_id id = n->fn->id;
    switch (id) {
    case PQ_F_TIME:
        return (pq_val){.type = PQ_SCALAR, .num = (double)t / 1000.0};
    case PQ_F_PI:
        return (pq_val){.type = PQ_SCALAR, .num = M_PI};
    case PQ_F_VECTOR: {
        pq_val out = new_vector(ev, 1);
        out.e[out.n++] = (pq_elem){&pq_lset_empty, t, scalar_arg(ev, n, 0, t)};
        return out;
    }
    case PQ_F_SCALAR: {
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        return (pq_val){.type = PQ_SCALAR, .num = v.n == 1 ? v.e[0].v : NAN};
    }
    case PQ_F_HISTOGRAM_QUANTILE: {
        double q = scalar_arg(ev, n, 0, t);
        return histogram_quantile(ev, q, pq_ev_eval(ev, n->args[1], t), t);
    }
    case PQ_F_LABEL_REPLACE:
        return label_replace(ev, n, pq_ev_eval(ev, n->args[0], t), t);
    case PQ_F_LABEL_JOIN:
        return label_join(ev, n, pq_ev_eval(ev, n->args[0], t), t);
    case PQ_F_ABSENT: {
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        pq_val out = new_vector(ev, 1);
        if (v.n == 0) {
            out.e[out.n++] = (pq_elem){absent_labels(ev, n->args[0]), t, 1};
        }
        return out;
    }
    case PQ_F_ABSENT_OVER_TIME: {
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        pq_val out = new_vector(ev, 1);
        if (v.nr == 0) {
            out.e[out.n++] = (pq_elem){absent_labels(ev, n->args[0]), t, 1};
        }
        return out;
    }
    case PQ_F_SORT:
    case PQ_F_SORT_DESC: {
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        pq_val out = new_vector(ev, v.n);
        for (size_t i = 0; i < v.n; i++) {
            out.e[out.n++] = (pq_elem){v.e[i].ls, t, v.e[i].v};
        }
        if (out.n > 1) {
            qsort(out.e, out.n, sizeof(pq_elem), id == PQ_F_SORT ? cmp_elem_asc : cmp_elem_desc);
        }
        return out;
    }
    case PQ_F_TIMESTAMP: {
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        pq_val out = new_vector(ev, v.n);
        for (size_t i = 0; i < v.n; i++) {
            out.e[out.n++] = (pq_elem){pq_ev_noname(ev, v.e[i].ls), t, (double)v.e[i].t / 1000.0};
        }
        return out;
    }
    case PQ_F_DAY_OF_MONTH:
    case PQ_F_DAY_OF_WEEK:
    case PQ_F_DAY_OF_YEAR:
    case PQ_F_DAYS_IN_MONTH:
    case PQ_F_HOUR:
    case PQ_F_MINUTE:
    case PQ_F_MONTH:
    case PQ_F_YEAR: {
        if (n->nargs == 0) {
            pq_val out = new_vector(ev, 1);
            out.e[out.n++] = (pq_elem){&pq_lset_empty, t, date_func(id, (double)t / 1000.0)};
            return out;
        }
        pq_val v = pq_ev_eval(ev, n->args[0], t);
        pq_val out = new_vector(ev, v.n);
        for (size_t i = 0; i < v.n; i++) {
            out.e[out.n++] = (pq_elem){pq_ev_noname(ev, v.e[i].ls), t, date_func(id, v.e[i].v)};
        }
        return out;
    }
    default:
        break;
    }
    if (n->fn->args[0] == PQ_MATRIX || id == PQ_F_QUANTILE_OVER_TIME) {
        size_t mi = id == PQ_F_QUANTILE_OVER_TIME ? 1 : 0;
        double p0 = 0, p1 = 0;
        if (id == PQ_F_QUANTILE_OVER_TIME) {
            p0 = scalar_arg(ev, n, 0, t);
        } else if (n->nargs > 1) {
            p0 = scalar_arg(ev, n, 1, t);
            if (n->nargs > 2) {
                p1 = scalar_arg(ev, n, 2, t);
            }
        }
        pq_val m = pq_ev_eval(ev, n->args[mi], t);
        pq_val out = new_vector(ev, m.nr);
        for (size_t i = 0; i < m.nr; i++) {
            double v;
            if (pq_range_value(ev, id, m.r[i].s, m.r[i].n, m.ref_ms, m.range_ms, p0, p1, t, NULL,
                               &v)) {
                const pq_lset *ls =
                    id == PQ_F_LAST_OVER_TIME ? m.r[i].ls : range_noname(ev, &m.r[i]);
                out.e[out.n++] = (pq_elem){ls, t, v};
            }
        }
        return out;
    }
    /* Element-wise math with optional scalar parameters. */
    double a = 1, b = 0;
    if (id == PQ_F_CLAMP) {
        a = scalar_arg(ev, n, 1, t);
        b = scalar_arg(ev, n, 2, t);
    } else if (id == PQ_F_CLAMP_MAX || id == PQ_F_CLAMP_MIN || (id == PQ_F_ROUND && n->nargs > 1)) {
        a = scalar_arg(ev, n, 1, t);
    }
    pq_val v = pq_ev_eval(ev, n->args[0], t);
    pq_val out = new_vector(ev, v.n);
    if (id == PQ_F_CLAMP && b < a) {
        return out;
    }
    for (size_t i = 0; i < v.n; i++) {
        out.e[out.n++] =
            (pq_elem){pq_ev_noname(ev, v.e[i].ls), t, pq_math_value(id, v.e[i].v, a, b)};
    }
    return out;
}
