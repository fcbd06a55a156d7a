/*
 * The writer thread: group commit. It sleeps until requests are queued, takes
 * all of them (up to a batch cap), writes them to storage in one durable
 * batch, and hands them back to the loop thread (uv_async) to be answered.
 * While it commits, new requests pile up and form the next batch, so fsync
 * cost is shared by every request that arrived during the previous one.
 */
#include "col_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>

#define WRITER_BATCH_MAX 512

static void *writer_main(void *arg) {
    col_collector *col = arg;
    /* Up to two records per request: its own and a derived metrics one. */
    stg_write *w = malloc(2 * WRITER_BATCH_MAX * sizeof(*w));
    col_req **reqs = malloc(WRITER_BATCH_MAX * sizeof(*reqs));
    for (;;) {
        pthread_mutex_lock(&col->mu);
        while (col->wq_head == NULL && !col->writer_stop) {
            pthread_cond_wait(&col->cond, &col->mu);
        }
        if (col->wq_head == NULL && col->writer_stop) {
            pthread_mutex_unlock(&col->mu);
            break;
        }
        size_t n = 0;
        while (col->wq_head != NULL && n < WRITER_BATCH_MAX) {
            col_req *r = col->wq_head;
            col->wq_head = r->q_next;
            r->q_next = NULL;
            reqs[n++] = r;
        }
        if (col->wq_head == NULL) {
            col->wq_tail = NULL;
        }
        pthread_mutex_unlock(&col->mu);

        int rc = SL_ENOMEM;
        if (w != NULL && reqs != NULL) {
            size_t nw = 0;
            for (size_t i = 0; i < n; i++) {
                const col_records *rs = &reqs[i]->recs;
                w[nw++] = (stg_write){reqs[i]->tenant, reqs[i]->route->signal, rs->primary.data,
                                      rs->primary.len, (uint32_t)rs->accepted};
                if (rs->derived.len > 0) {
                    w[nw++] = (stg_write){reqs[i]->tenant, STG_METRICS, rs->derived.data,
                                          rs->derived.len, 0};
                }
            }
            uint64_t t0 = sl_mono_nano();
            rc = stg_write_batch(col->store, w, nw);
            sl_metric_observe(col->m_commit_latency, (double)(sl_mono_nano() - t0) / 1e9);
            sl_metric_add(col->m_batch_size, 1);
        }
        if (rc != 0) {
            SL_LOG_E("collector", "group commit of %zu requests failed: %s", n, sl_strerror(rc));
        }
        pthread_mutex_lock(&col->mu);
        for (size_t i = 0; i < n; i++) {
            reqs[i]->status = rc == 0 ? 200 : 503;
            reqs[i]->commit_rc = rc;
            if (col->done_tail != NULL) {
                col->done_tail->q_next = reqs[i];
            } else {
                col->done_head = reqs[i];
            }
            col->done_tail = reqs[i];
        }
        pthread_mutex_unlock(&col->mu);
        uv_async_send(&col->wake);
    }
    free(w);
    free(reqs);
    return NULL;
}

int col_writer_start(col_collector *col) {
    return pthread_create(&col->writer_thread, NULL, writer_main, col) == 0 ? 0 : SL_ENOMEM;
}

void col_writer_stop(col_collector *col) {
    pthread_mutex_lock(&col->mu);
    col->writer_stop = true;
    pthread_cond_signal(&col->cond);
    pthread_mutex_unlock(&col->mu);
    pthread_join(col->writer_thread, NULL);
}

void col_writer_push(col_collector *col, col_req *r) {
    pthread_mutex_lock(&col->mu);
    r->q_next = NULL;
    if (col->wq_tail != NULL) {
        col->wq_tail->q_next = r;
    } else {
        col->wq_head = r;
    }
    col->wq_tail = r;
    pthread_cond_signal(&col->cond);
    pthread_mutex_unlock(&col->mu);
}
