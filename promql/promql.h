/*
 * PromQL: a parser and evaluator for the Prometheus query language, written
 * for Sightline. The engine knows nothing of storage: it reads series through
 * a small querier interface (a select function and its user data), so the
 * query server adapts the metrics store to it and unit tests feed it
 * in-memory series.
 *
 * Semantics follow Prometheus 2.42: the 5-minute lookback, staleness markers,
 * closed range intervals, the extrapolation of rate/increase/delta, the rules
 * for dropping the metric name, vector matching and aggregation.
 *
 * Thread-safety: a pq_query is used by one thread at a time; distinct queries
 * may be parsed and evaluated concurrently. The querier must be reentrant if
 * it is shared.
 */
#ifndef SL_PROMQL_H
#define SL_PROMQL_H

#include "sl_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- the querier: how the engine reads series -------------------------------- */

typedef enum { PQ_MATCH_EQ, PQ_MATCH_NE, PQ_MATCH_RE, PQ_MATCH_NRE } pq_match_op;

typedef struct pq_matcher {
    pq_match_op op;
    sl_str name;
    sl_str value; /* RE/NRE: the pattern, fully anchored as in Prometheus */
} pq_matcher;

typedef struct pq_label {
    sl_str name;
    sl_str value;
} pq_label;

typedef sl_sample pq_sample;

/* Called once per series: labels (sorted by name, __name__ included), samples
 * in ascending time within the asked range, stale markers included. Both are
 * borrowed for the call. A nonzero return stops the walk and is returned. */
typedef int (*pq_series_cb)(void *cb_ud, const pq_label *labels, size_t nlabels,
                            const pq_sample *samples, size_t nsamples);

typedef struct pq_querier {
    /* Every series matching all matchers with a sample in [mint_ms, maxt_ms].
     * Returns 0, the callback's nonzero value, SL_EINVAL (bad regex),
     * SL_ENOMEM or SL_ESTORAGE. */
    int (*select)(void *ud, const pq_matcher *m, size_t nm, int64_t mint_ms, int64_t maxt_ms,
                  pq_series_cb cb, void *cb_ud);
    void *ud;
} pq_querier;

/* The bit pattern Prometheus writes as a staleness marker. */
#define PQ_STALE_NAN_BITS 0x7ff0000000000002ULL

/* True when v is a staleness marker (not any NaN). */
int pq_is_stale(double v);

/* --- errors ------------------------------------------------------------------ */

typedef enum {
    PQ_ERR_NONE,
    PQ_ERR_BAD_DATA,  /* parse error, bad parameter: HTTP 400 */
    PQ_ERR_EXECUTION, /* evaluation error, too many samples: HTTP 422 */
    PQ_ERR_TIMEOUT,   /* deadline passed: HTTP 503 */
    PQ_ERR_INTERNAL,  /* storage failure, out of memory: HTTP 503 */
} pq_error_kind;

typedef struct pq_error {
    pq_error_kind kind;
    char msg[512];
} pq_error;

/* --- queries ----------------------------------------------------------------- */

typedef enum { PQ_SCALAR, PQ_VECTOR, PQ_MATRIX, PQ_STRING } pq_type;

typedef struct pq_query pq_query;

/* Parses text into *out (the caller owns it; free with pq_query_free). On a
 * syntax or type error returns SL_EINVAL and err holds "line:col: parse error:
 * ..." (kind PQ_ERR_BAD_DATA). Also SL_ENOMEM. *out is NULL on failure. */
int pq_parse(sl_str text, pq_query **out, pq_error *err);

/* Parses a series selector (the match[] of /api/v1/series): a vector selector
 * without range, offset or @. *m (nm entries) lives as long as the query.
 * Returns 0, SL_EINVAL (err filled) or SL_ENOMEM. */
int pq_parse_selector(sl_str text, pq_query **out, const pq_matcher **m, size_t *nm, pq_error *err);

void pq_query_free(pq_query *q);

/* The static type of the whole expression. */
pq_type pq_query_type(const pq_query *q);

typedef struct pq_eval_opts {
    int64_t start_ms; /* an instant query has start == end */
    int64_t end_ms;
    int64_t step_ms;           /* > 0 for range queries */
    int64_t lookback_ms;       /* default 5 minutes */
    size_t max_samples;        /* samples loaded and held; default 50 million */
    uint64_t deadline_mono_ns; /* sl_mono_nano() deadline; 0: none */
    size_t max_memory;         /* bytes for the evaluation; default 1 GiB */
    bool stepwise;             /* range queries: evaluate every step on its own even where the
                                  series-major path applies (tests compare the two) */
} pq_eval_opts;

void pq_eval_opts_init(pq_eval_opts *o);

/* One result series: for an instant vector one point at the evaluation time;
 * for a matrix (range query, or a range selector in an instant query) its
 * points in time order. */
typedef struct pq_series {
    const pq_label *labels;
    size_t nlabels;
    const pq_sample *points;
    size_t npoints;
} pq_series;

typedef struct pq_result {
    pq_type type; /* PQ_MATRIX for every range query */
    const pq_series *series;
    size_t nseries;
    pq_sample scalar;  /* PQ_SCALAR (instant): time and value */
    sl_str string;     /* PQ_STRING (instant) */
    bool series_major; /* a range query evaluated series by series over all
                          steps (else step by step) */
} pq_result;

/* Evaluates q once (an instant query when o->start_ms == o->end_ms and
 * o->step_ms == 0, else a range query) reading through qr. The result lives
 * until pq_query_free(q). A range query's series are sorted by labels.
 * Returns 0 or a negative code with err filled: SL_EINVAL (bad_data),
 * SL_EUNSUPPORTED (execution), SL_ETOOBIG (timeout or too many samples),
 * SL_ENOMEM / SL_ESTORAGE (internal). */
int pq_eval(pq_query *q, const pq_querier *qr, const pq_eval_opts *o, pq_result *out,
            pq_error *err);

/* Formats v the way Prometheus does in JSON sample values (Go's 'f' format,
 * shortest round trip; "NaN", "+Inf", "-Inf"). Returns the length written
 * (at most cap - 1; cap >= 32 suffices for finite values up to 1e15, 400 for
 * all). */
size_t pq_format_value(double v, char *buf, size_t cap);

/* True when s is a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*). */
bool pq_valid_label_name(sl_str s);

/* Parses a Prometheus duration ("5m", "1h30m", "1.5" seconds is not one) into
 * milliseconds. Returns 0 or SL_EINVAL. */
int pq_parse_duration(sl_str s, int64_t *out_ms);

#endif
