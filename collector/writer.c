/*
 * The writer thread: group commit. It sleeps until requests are queued, takes
 * all of them (up to a batch cap), writes them to storage in one durable
 * batch, and hands them back to the loop thread (uv_async) to be answered.
 * While it commits, new requests pile up and form the next batch, so fsync
 * cost is shared by every request that arrived during the previous one.
 *
 * The metrics derived from a batch's spans and logs (col_dgroup entries) are
 * merged here into one record per tenant, stamped with a time that never goes
 * backwards, and written in the same batch (derive_metrics.h).
 */
#include "col_int.h"
#include "derive_metrics.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>
#include <string.h>

#define WRITER_BATCH_MAX 512

/* The writer's state for the derived metrics records of a batch. */
typedef struct wr_derived {
    sl_buf *rec;         /* one per tenant of the batch, reused */
    const sl_buf **bufs; /* one tenant's requests' groups */
    bool *done;
    sl_arena scratch; /* reset after each batch */
    int64_t last_t_ms;
} wr_derived;

/* The derived metrics of reqs[0..n): for each tenant with any, one record in
 * d->rec[k] and one write in w[*nw]. Returns 0, SL_ENOMEM or SL_ETOOBIG. */
static int derived_records(wr_derived *d, col_req *const *reqs, size_t n, stg_write *w,
                           size_t *nw) {
    int64_t t = (int64_t)(sl_now_unix_nano() / 1000000u);
    if (t < d->last_t_ms) {
        t = d->last_t_ms; /* the wall clock stepped back */
    }
    d->last_t_ms = t;
    memset(d->done, 0, n * sizeof(*d->done));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (d->done[i] || reqs[i]->recs.derived.len == 0) {
            continue;
        }
        size_t nb = 0;
        for (size_t j = i; j < n; j++) {
            if (!d->done[j] && reqs[j]->recs.derived.len > 0 &&
                strcmp(reqs[j]->tenant, reqs[i]->tenant) == 0) {
                d->bufs[nb++] = &reqs[j]->recs.derived;
                d->done[j] = true;
            }
        }
        sl_buf *rec = &d->rec[k++];
        rec->len = 0;
        int rc = col_dgroups_encode(d->bufs, nb, t, &d->scratch, rec);
        if (rc != 0) {
            return rc;
        }
        if (rec->len > 0) {
            w[(*nw)++] = (stg_write){reqs[i]->tenant, STG_METRICS, rec->data, rec->len, 0};
        }
    }
    return 0;
}

static void *writer_main(void *arg) {
    col_collector *col = arg;
    /* Up to two records per request: its own and its tenant's derived one. */
    stg_write *w = malloc(2 * WRITER_BATCH_MAX * sizeof(*w));
    col_req **reqs = malloc(WRITER_BATCH_MAX * sizeof(*reqs));
    wr_derived d = {.rec = calloc(WRITER_BATCH_MAX, sizeof(sl_buf)),
                    .bufs = malloc(WRITER_BATCH_MAX * sizeof(*d.bufs)),
                    .done = malloc(WRITER_BATCH_MAX * sizeof(*d.done))};
    sl_arena_init(&d.scratch, 0);
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
        if (w != NULL && reqs != NULL && d.rec != NULL && d.bufs != NULL && d.done != NULL) {
            size_t nw = 0;
            for (size_t i = 0; i < n; i++) {
                const col_records *rs = &reqs[i]->recs;
                w[nw++] = (stg_write){reqs[i]->tenant, reqs[i]->route->signal, rs->primary.data,
                                      rs->primary.len, (uint32_t)rs->accepted};
            }
            rc = derived_records(&d, reqs, n, w, &nw);
            sl_arena_reset(&d.scratch);
            if (rc == 0) {
                uint64_t t0 = sl_mono_nano();
                rc = stg_write_batch(col->store, w, nw);
                sl_metric_observe(col->m_commit_latency, (double)(sl_mono_nano() - t0) / 1e9);
                sl_metric_add(col->m_batch_size, 1);
            }
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
    if (d.rec != NULL) {
        for (size_t i = 0; i < WRITER_BATCH_MAX; i++) {
            sl_buf_free(&d.rec[i]);
        }
    }
    sl_arena_free(&d.scratch);
    free(d.rec);
    free(d.bufs);
    free(d.done);
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
