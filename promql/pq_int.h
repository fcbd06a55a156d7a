/*
 * Private declarations of the PromQL engine: the syntax tree the parser
 * builds, label sets, the function table, regular expressions and the
 * evaluator's values.
 *
 * Invariants: every node, label set and string of a query lives in the
 * query's arena; label sets are sorted by name and carry their hash.
 * Thread-safety: everything here is used by one thread per query.
 */
#ifndef SL_PQ_INT_H
#define SL_PQ_INT_H

#include "promql.h"

#include "sl_arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- regular expressions (PCRE2, anchored at both ends, RE2-like) ------------ */

typedef struct pq_regex pq_regex;

/* Compiles pattern (fully anchored). On failure writes a message to err and
 * returns SL_EINVAL; also SL_ENOMEM. */
int pq_regex_compile(sl_str pattern, pq_regex **out, char *err, size_t errcap);
bool pq_regex_match(const pq_regex *re, sl_str s);
/* Matches and, on success, expands the Go-style template tmpl ($1, ${1},
 * $name, ${name}, $$) with the captured groups into a (NUL-terminated).
 * Returns 1 matched (*out set), 0 no match, SL_ENOMEM. */
int pq_regex_expand(const pq_regex *re, sl_str s, sl_str tmpl, sl_arena *a, sl_str *out);
void pq_regex_free(pq_regex *re);

/* --- label sets --------------------------------------------------------------- */

typedef struct pq_lset {
    uint64_t hash;
    size_t n;
    pq_label l[];
} pq_lset;

extern const pq_lset pq_lset_empty;

uint64_t pq_hash_labels(const pq_label *l, size_t n);
/* A sorted copy of l (strings copied) in a. NULL when out of memory. */
pq_lset *pq_lset_make(sl_arena *a, const pq_label *l, size_t n, bool copy_strings);
sl_str pq_lset_get(const pq_lset *ls, sl_str name);
bool pq_lset_eq(const pq_lset *a, const pq_lset *b);
int pq_lset_cmp(const pq_lset *a, const pq_lset *b);
/* ls without __name__ (ls itself when it has none). NULL on ENOMEM. */
const pq_lset *pq_lset_drop_name(sl_arena *a, const pq_lset *ls);
/* ls with only (keep) or without (!keep) the names in names[0..n); drop_name
 * also removes __name__ in the without case. */
const pq_lset *pq_lset_project(sl_arena *a, const pq_lset *ls, const sl_str *names, size_t n,
                               bool keep, bool drop_name);
/* The hash (as pq_hash_labels of the projection) and equality of the
 * projections of label sets without building them: keep includes only the
 * listed names; !keep all but the listed names and __name__. */
uint64_t pq_lset_sig_hash(const pq_lset *ls, const sl_str *names, size_t n, bool keep);
bool pq_lset_sig_eq(const pq_lset *a, const pq_lset *b, const sl_str *names, size_t n, bool keep);
/* ls with name set to value (removed when value is empty). */
const pq_lset *pq_lset_set(sl_arena *a, const pq_lset *ls, sl_str name, sl_str value);

/* An open-addressing map from label-set hash to an index; equality is checked
 * by the caller through the returned candidates. Memory from an arena. */
typedef struct pq_map {
    uint64_t *h;
    uint32_t *idx; /* UINT32_MAX: empty slot */
    size_t cap, n;
    sl_arena *a;
} pq_map;

int pq_map_init(pq_map *m, sl_arena *a, size_t expect);
/* Iterates the indexes stored under h: start with *it = 0; returns UINT32_MAX
 * when there are no more. */
uint32_t pq_map_next(const pq_map *m, uint64_t h, size_t *it);
int pq_map_put(pq_map *m, uint64_t h, uint32_t idx);

/* --- syntax tree ---------------------------------------------------------------- */

typedef enum {
    PQ_N_NUM,
    PQ_N_STR,
    PQ_N_SEL, /* vector selector, or range selector when range_ms > 0 */
    PQ_N_SUBQ,
    PQ_N_CALL,
    PQ_N_AGG,
    PQ_N_BIN,
    PQ_N_NEG, /* unary minus */
    PQ_N_PAREN,
} pq_node_kind;

/* Binary operators and aggregations share the token space of the lexer. */
typedef enum {
    PQ_OP_NONE,
    PQ_OP_ADD,
    PQ_OP_SUB,
    PQ_OP_MUL,
    PQ_OP_DIV,
    PQ_OP_MOD,
    PQ_OP_POW,
    PQ_OP_ATAN2,
    PQ_OP_EQL,
    PQ_OP_NEQ,
    PQ_OP_GTR,
    PQ_OP_LSS,
    PQ_OP_GTE,
    PQ_OP_LTE,
    PQ_OP_AND,
    PQ_OP_OR,
    PQ_OP_UNLESS,
} pq_binop;

typedef enum {
    PQ_AGG_SUM,
    PQ_AGG_AVG,
    PQ_AGG_COUNT,
    PQ_AGG_MIN,
    PQ_AGG_MAX,
    PQ_AGG_GROUP,
    PQ_AGG_STDDEV,
    PQ_AGG_STDVAR,
    PQ_AGG_TOPK,
    PQ_AGG_BOTTOMK,
    PQ_AGG_QUANTILE,
    PQ_AGG_COUNT_VALUES,
} pq_aggop;

typedef enum { PQ_CARD_ONE_ONE, PQ_CARD_MANY_ONE, PQ_CARD_ONE_MANY, PQ_CARD_MANY_MANY } pq_card;

typedef enum { PQ_AT_NONE, PQ_AT_TS, PQ_AT_START, PQ_AT_END } pq_at;

typedef struct pq_func pq_func;
typedef struct pq_node pq_node;

/* One selected series, loaded once per selector for the whole query. */
typedef struct pq_sel_series {
    const pq_lset *ls;
    const pq_lset *ls_noname; /* ls without __name__, made on first use */
    const pq_sample *all;     /* every sample, stale markers included */
    size_t nall;
    const pq_sample *live; /* without stale markers (range selectors) */
    size_t nlive;
} pq_sel_series;

struct pq_node {
    pq_node_kind kind;
    pq_type type;
    uint32_t pos; /* byte offset of the node's first token */
    uint32_t end; /* byte offset after its last token */

    double num;  /* NUM */
    sl_str str;  /* STR */
    pq_node *a;  /* NEG, PAREN, SUBQ: operand; BIN: lhs; AGG: expr */
    pq_node *b;  /* BIN: rhs; AGG: parameter */
    pq_binop op; /* BIN */

    /* SEL */
    pq_matcher *m;
    size_t nm;
    pq_regex **re; /* one per matcher, NULL for = and != */

    /* SEL and SUBQ */
    int64_t range_ms;
    int64_t step_ms; /* SUBQ: 0 means the default resolution */
    int64_t offset_ms;
    bool has_offset;
    pq_at at;
    int64_t at_ms;

    /* CALL */
    const pq_func *fn;
    pq_node **args;
    size_t nargs;

    /* AGG */
    pq_aggop agg;
    sl_str *grouping;
    size_t ngrouping;
    bool without;

    /* BIN */
    bool bool_mod;
    pq_card card;
    bool on;         /* on(...) (else ignoring(...) or none) */
    sl_str *matchls; /* on/ignoring labels */
    size_t nmatchls;
    sl_str *include; /* group_left/group_right labels */
    size_t ninclude;

    /* evaluation state */
    pq_regex *call_re;  /* label_replace: its compiled pattern (tracked by the query) */
    void *memo;         /* AGG, BIN: per-evaluation caches by label set (pq_eval.c) */
    unsigned memo_eval; /* the evaluation (pq_query.evals) the memo belongs to */
    pq_sel_series *series;
    size_t nseries;
};

/* --- functions ------------------------------------------------------------------ */

typedef enum {
    PQ_F_ABS,
    PQ_F_ABSENT,
    PQ_F_ABSENT_OVER_TIME,
    PQ_F_ACOS,
    PQ_F_ACOSH,
    PQ_F_ASIN,
    PQ_F_ASINH,
    PQ_F_ATAN,
    PQ_F_ATANH,
    PQ_F_AVG_OVER_TIME,
    PQ_F_CEIL,
    PQ_F_CHANGES,
    PQ_F_CLAMP,
    PQ_F_CLAMP_MAX,
    PQ_F_CLAMP_MIN,
    PQ_F_COS,
    PQ_F_COSH,
    PQ_F_COUNT_OVER_TIME,
    PQ_F_DAYS_IN_MONTH,
    PQ_F_DAY_OF_MONTH,
    PQ_F_DAY_OF_WEEK,
    PQ_F_DAY_OF_YEAR,
    PQ_F_DEG,
    PQ_F_DELTA,
    PQ_F_DERIV,
    PQ_F_EXP,
    PQ_F_FLOOR,
    PQ_F_HISTOGRAM_QUANTILE,
    PQ_F_HOLT_WINTERS,
    PQ_F_HOUR,
    PQ_F_IDELTA,
    PQ_F_INCREASE,
    PQ_F_IRATE,
    PQ_F_LABEL_JOIN,
    PQ_F_LABEL_REPLACE,
    PQ_F_LAST_OVER_TIME,
    PQ_F_LN,
    PQ_F_LOG10,
    PQ_F_LOG2,
    PQ_F_MAX_OVER_TIME,
    PQ_F_MIN_OVER_TIME,
    PQ_F_MINUTE,
    PQ_F_MONTH,
    PQ_F_PI,
    PQ_F_PREDICT_LINEAR,
    PQ_F_PRESENT_OVER_TIME,
    PQ_F_QUANTILE_OVER_TIME,
    PQ_F_RAD,
    PQ_F_RATE,
    PQ_F_RESETS,
    PQ_F_ROUND,
    PQ_F_SCALAR,
    PQ_F_SGN,
    PQ_F_SIN,
    PQ_F_SINH,
    PQ_F_SORT,
    PQ_F_SORT_DESC,
    PQ_F_SQRT,
    PQ_F_STDDEV_OVER_TIME,
    PQ_F_STDVAR_OVER_TIME,
    PQ_F_SUM_OVER_TIME,
    PQ_F_TAN,
    PQ_F_TANH,
    PQ_F_TIME,
    PQ_F_TIMESTAMP,
    PQ_F_VECTOR,
    PQ_F_YEAR,
} pq_func_id;

struct pq_func {
    const char *name;
    pq_func_id id;
    pq_type args[5];
    int nargs;    /* required arguments */
    int optional; /* extra optional arguments of the last type (-1: any number) */
    pq_type ret;
};

/* The function called name, or NULL. */
const pq_func *pq_func_lookup(sl_str name);

/* --- the query object ------------------------------------------------------------ */

struct pq_query {
    sl_arena arena; /* AST, loaded series, results */
    sl_str text;    /* copy of the query text */
    pq_node *root;
    pq_regex **regexes; /* every compiled matcher regex, freed with the query */
    size_t nregexes, regexes_cap;
    /* results of pq_eval */
    pq_series *res;
    size_t nres;
    pq_sample **res_points; /* malloc'd point arrays, freed with the query */
    size_t nres_points;
    size_t res_points_cap;
    unsigned evals; /* pq_eval calls so far */
};

/* Hands re to q, which frees it with itself. On SL_ENOMEM re is freed. */
int pq_query_track_regex(pq_query *q, pq_regex *re);

/* Name of a value type as Prometheus prints it ("instant vector"...). */
const char *pq_type_name(pq_type t);

/* --- evaluation ------------------------------------------------------------------- */

/* One element of an instant vector. t is the sample's own time for vector
 * selectors (timestamp() reads it) and the evaluation time otherwise. */
typedef struct pq_elem {
    const pq_lset *ls;
    int64_t t;
    double v;
} pq_elem;

/* One series of a range vector: its samples in [ref - range, ref]. */
typedef struct pq_range {
    const pq_lset *ls;
    const pq_sample *s;
    size_t n;
    pq_sel_series *sel; /* the loaded series (selectors), or NULL (subqueries) */
} pq_range;

typedef struct pq_val {
    pq_type type;
    double num; /* SCALAR */
    sl_str str; /* STRING */
    pq_elem *e; /* VECTOR */
    size_t n;
    pq_range *r; /* MATRIX */
    size_t nr;
    int64_t ref_ms;   /* MATRIX: the range's end (evaluation time - offset, or @) */
    int64_t range_ms; /* MATRIX: its length */
} pq_val;

typedef struct pq_ev pq_ev;

/* Raises an evaluation error: unwinds to pq_eval, which returns it. */
_Noreturn void pq_ev_fail(pq_ev *ev, pq_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Allocates from the step arena; raises on failure. Zeroed. */
void *pq_ev_alloc(pq_ev *ev, size_t size);
sl_arena *pq_ev_arena(pq_ev *ev);
/* The query's arena: for what must outlive a step. */
sl_arena *pq_ev_query_arena(pq_ev *ev);
/* Evaluates n at time t_ms (evaluation time, before offset and @). */
pq_val pq_ev_eval(pq_ev *ev, pq_node *n, int64_t t_ms);
/* Raises "vector cannot contain metrics with the same labelset" when two
 * elements share labels. */
void pq_ev_check_dups(pq_ev *ev, const pq_elem *e, size_t n);
/* A label set from the step arena, or a raise on ENOMEM. */
const pq_lset *pq_ev_noname(pq_ev *ev, const pq_lset *ls);
/* Tracks a regex compiled during evaluation for freeing with the query. */
void pq_ev_track_regex(pq_ev *ev, pq_regex *re);

/* The time a selector or subquery is evaluated at for
 * evaluation time t (its @ time, if any; offset not applied). */
int64_t pq_ev_at_time(const pq_ev *ev, const pq_node *n, int64_t t);
/* Raises a timeout when the query's deadline has passed. */
void pq_ev_check_deadline(pq_ev *ev);
/* Counts n result points against max_samples; raises when over. */
void pq_ev_count_points(pq_ev *ev, size_t n);
const pq_eval_opts *pq_ev_opts(const pq_ev *ev);
pq_query *pq_ev_query(pq_ev *ev);

/* Binary operators: Prometheus's vectorElemBinop (the value and whether
 * a comparison keeps it), whether the result drops the metric name, and
 * whether op is a comparison. */
double pq_elem_binop(pq_binop op, double l, double r, bool *keep);
/* A vector-vector arithmetic or comparison operator on one matched pair:
 * false when a comparison without bool drops it. */
bool pq_vv_binop(const pq_node *n, double l, double r, double *out);
/* Prometheus's resultMetric after the name drop: m (the left-hand labels,
 * without __name__ where the operator drops it) projected for one-to-one
 * on/ignoring, plus the group_left/right labels copied from rs. NULL on
 * ENOMEM. */
const pq_lset *pq_match_labels(sl_arena *a, const pq_node *n, const pq_lset *m, const pq_lset *rs);
bool pq_binop_drops_name(pq_binop op);
bool pq_binop_is_cmp(pq_binop op);

/* topk (bottomk with bottom): offers s to the heap of the k kept so far
 * (*nheap of them; room for min(k, offers)); k >= 1. */
void pq_topk_add(pq_elem *heap, size_t *nheap, int64_t k, const pq_elem *s, bool bottom);

/* Series-major evaluation of a range query (pq_rollup.c): every node
 * computes all steps of each of its series at once. Returns true with the
 * result series in the query (q->res, unsorted), or false, having set
 * nothing, when the expression holds a node the path does not cover (the
 * caller then evaluates step by step; intermediate values are in the step
 * arena, which the caller resets). */
bool pq_rollup(pq_ev *ev, pq_node *root);

/* Evaluates a function call (pq_funcs.c). */
pq_val pq_call(pq_ev *ev, pq_node *n, int64_t t_ms);
/* Prometheus's quantile over a sorted-in-place array of values. */
double pq_quantile(double q, double *v, size_t n);

/* One range function (rate, *_over_time, ...) over the samples s[0..n) of
 * one series in the window [ref_ms - range_ms, ref_ms], evaluated at time t
 * (predict_linear's intercept). p0 and p1 are its scalar parameters;
 * scratch, when not NULL, holds n doubles (quantile_over_time). Returns false
 * when the function yields no value for this window (the series drops). */
bool pq_range_value(pq_ev *ev, pq_func_id id, const pq_sample *s, size_t n, int64_t ref_ms,
                    int64_t range_ms, double p0, double p1, int64_t t, double *scratch,
                    double *out);

typedef struct pq_xmemo {
    bool valid;
    int64_t d_start, d_end, d_sampled, range_ms; /* the key: the window's times */
    size_t n;
    double to_start, to_end, sampled, avg_between, threshold, range_s, factor;
} pq_xmemo;

/* The extrapolation of rate, increase (counter) and delta over the n >= 2
 * samples s of the window [range_start, range_end]: result is the last
 * value minus the first, plus for counters the value before each reset.
 * memo, when not NULL (zeroed before the first call), keeps what the
 * window's times alone decide for the next call: one series' windows at a
 * steady interval then cost two divisions instead of seven, with the same
 * bits. */
double pq_extrapolate(const pq_sample *s, size_t n, double result, int64_t range_start,
                      int64_t range_end, int64_t range_ms, bool counter, bool rate, pq_xmemo *memo);

/* A classic histogram bucket: its upper bound (le) and cumulative count. */
typedef struct pq_bucket {
    double upper, count;
} pq_bucket;

/* Prometheus's bucketQuantile over classic (le) buckets; sorts b in place. */
double pq_bucket_quantile(double q, pq_bucket *b, size_t n);
/* How a series enters histogram_quantile: 1 with its le bound, its group key
 * (labels without le and __name__, made in a), metric name and the group's
 * hash; 0 when it has no parseable le (ignored); SL_ENOMEM. */
int pq_hist_member(sl_arena *a, const pq_lset *ls, double *upper, const pq_lset **key,
                   sl_str *metric, uint64_t *group_hash);
/* An element-wise math function (abs, ceil, clamp, round, ...) with its
 * scalar parameters a and b. */
double pq_math_value(pq_func_id id, double v, double a, double b);

#endif
