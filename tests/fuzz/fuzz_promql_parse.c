/*
 * Fuzz target: the PromQL parser, and the evaluator over a few in-memory
 * series for whatever parses. Neither may crash, leak or hang: evaluation runs
 * with a small sample budget and a deadline.
 */
#include "promql.h"

#include "sl_util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pq_label g_labels[2][3] = {
    {{SL_STR_INIT("__name__"), SL_STR_INIT("up")},
     {SL_STR_INIT("instance"), SL_STR_INIT("a")},
     {SL_STR_INIT("job"), SL_STR_INIT("x")}},
    {{SL_STR_INIT("__name__"), SL_STR_INIT("up")},
     {SL_STR_INIT("instance"), SL_STR_INIT("b")},
     {SL_STR_INIT("job"), SL_STR_INIT("x")}},
};

static const pq_sample g_samples[4] = {{0, 1}, {15000, 2}, {30000, 0.5}, {45000, 4}};

static int select_all(void *ud, const pq_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                      pq_series_cb cb, void *cb_ud) {
    (void)ud;
    (void)m;
    (void)nm;
    (void)mint;
    (void)maxt;
    for (int i = 0; i < 2; i++) {
        int rc = cb(cb_ud, g_labels[i], 3, g_samples, 4);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pq_query *q = NULL;
    pq_error err;
    if (pq_parse((sl_str){(const char *)data, size}, &q, &err) != 0) {
        return 0;
    }
    pq_querier qr = {select_all, NULL};
    pq_eval_opts o;
    pq_eval_opts_init(&o);
    o.start_ms = 30000;
    o.end_ms = 30000;
    o.max_samples = 20000;
    o.max_memory = (size_t)64 << 20;
    o.deadline_mono_ns = sl_mono_nano() + 2000000000ULL;
    pq_result r;
    pq_eval(q, &qr, &o, &r, &err);
    pq_query_free(q);
    return 0;
}
