/*
 * The PromQL querier over storage, shared by the Prometheus API and the rule
 * evaluator (kept out of query.h so that users of the server need not see
 * the engine's types).
 */
#ifndef SL_QRY_QUERIER_H
#define SL_QRY_QUERIER_H

#include "promql.h"
#include "storage.h"

/* The PromQL querier over storage for one tenant, the one the Prometheus API
 * evaluates over (pq_querier's select contract; ud is a qry_store_querier),
 * for other readers of metrics such as the rule evaluator. Reentrant. */
typedef struct qry_store_querier {
    stg_store *store;
    const char *tenant;
} qry_store_querier;
int qry_store_select(void *ud, const pq_matcher *m, size_t nm, int64_t mint_ms, int64_t maxt_ms,
                     pq_series_cb cb, void *cb_ud);

#endif
