/*
 * Batch processor: a bounded ring of items (spans or log records) filled by
 * application threads and drained by one background thread, which encodes a
 * batch, sends it with the exporter and gives the items back to their pool.
 *
 * The application side only ever takes the mutex for a few instructions: a
 * full queue is an answer (SL_OTEL_EFULL, counted), never a wait. The worker
 * exports when a full batch is queued, when schedule_delay_ms has passed,
 * on a flush request and, after shutdown, until the queue is empty or the
 * provider's abort deadline has passed (what is left is then dropped).
 */
#include "sdk_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ot_batch {
    sl_provider *p;
    ot_batch_ops ops;
    ot_batch_counters c;
    ot_exporter *x;
    bool json;
    char name[16];
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* worker: items, flush or stop */
    pthread_cond_t done; /* flushers: flush_done moved */
    void **ring;
    uint32_t cap, head, count;
    uint32_t batch_size;
    uint64_t delay_ns;
    uint32_t export_timeout_ms;
    bool stop;
    uint64_t flush_req, flush_done;
    int flush_rc;

    /* Worker-only. */
    void **work;
    ot_buf body;
};

static struct timespec abs_mono(uint64_t ns) {
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    return ts;
}

int ot_cond_init_mono(pthread_cond_t *cv) {
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0) {
        return -rc;
    }
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

int ot_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns) {
    struct timespec ts = abs_mono(deadline_ns);
    return pthread_cond_timedwait(cv, mu, &ts);
}

/* Encodes and sends one batch, then releases its items. Runs unlocked. */
static int export_items(ot_batch *b, void **items, size_t n) {
    sl_provider *p = b->p;
    b->body.len = 0;
    b->body.oom = false;
    ot_enc e;
    ot_enc_init(&e, &b->body, b->json);
    b->ops.encode(p, items, n, &e);
    ot_enc_finish(&e);
    int rc;
    uint64_t abort_at = atomic_load(&p->abort_deadline_ns);
    uint64_t deadline = ot_deadline(b->export_timeout_ms);
    if (deadline > abort_at) {
        deadline = abort_at;
    }
    if (b->body.oom) {
        ot_diag(p, SL_DIAG_ERROR, "%s: out of memory encoding %zu items", b->name, n);
        atomic_fetch_add(b->c.failed, n);
        rc = SL_OTEL_ENOMEM;
    } else if (ot_mono_ns() >= deadline) {
        atomic_fetch_add(b->c.dropped, n); /* shutdown deadline passed */
        rc = SL_OTEL_ETIMEOUT;
    } else {
        int64_t rejected = 0;
        rc = ot_exporter_send(b->x, b->body.p, b->body.len, deadline, &rejected);
        if (rc == 0) {
            if (rejected < 0 || (uint64_t)rejected > n) {
                rejected = (int64_t)n;
            }
            atomic_fetch_add(b->c.exported, n - (size_t)rejected);
            atomic_fetch_add(&p->stats.partial_success_rejected, (uint64_t)rejected);
        } else {
            atomic_fetch_add(b->c.failed, n);
        }
    }
    b->ops.release(p, items, n);
    if (b->body.cap > (8u << 20)) {
        ot_buf_free(&b->body); /* one unusually large batch should not pin memory */
    }
    return rc;
}

static void *worker(void *arg) {
    ot_batch *b = arg;
    pthread_mutex_lock(&b->mu);
    uint64_t next = ot_mono_ns() + b->delay_ns;
    for (;;) {
        while (!b->stop && b->count < b->batch_size && b->flush_req == b->flush_done) {
            if (ot_mono_ns() >= next) {
                break;
            }
            ot_cond_wait_until(&b->wake, &b->mu, next);
        }
        uint64_t want = b->flush_req;
        uint32_t n = b->count < b->batch_size ? b->count : b->batch_size;
        for (uint32_t i = 0; i < n; i++) {
            b->work[i] = b->ring[b->head];
            b->head = (b->head + 1) % b->cap;
        }
        b->count -= n;
        if (n == 0) {
            if (want != b->flush_done) {
                b->flush_done = want;
                pthread_cond_broadcast(&b->done);
            }
            if (b->stop) {
                break;
            }
            next = ot_mono_ns() + b->delay_ns;
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        int rc = export_items(b, b->work, n);
        pthread_mutex_lock(&b->mu);
        if (rc != 0) {
            b->flush_rc = rc;
        }
        next = ot_mono_ns() + b->delay_ns;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int ot_batch_create(sl_provider *p, const sl_batch_options *o, const ot_batch_ops *ops,
                    ot_batch_counters counters, ot_exporter *x, bool json, const char *name,
                    ot_batch **out) {
    *out = NULL;
    ot_batch *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return SL_OTEL_ENOMEM;
    }
    b->p = p;
    b->ops = *ops;
    b->c = counters;
    b->x = x;
    b->json = json;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->cap = o->max_queue_size ? o->max_queue_size : 2048;
    b->batch_size = o->max_export_batch_size ? o->max_export_batch_size : 512;
    if (b->batch_size > b->cap) {
        b->batch_size = b->cap; /* as the spec requires */
    }
    b->delay_ns = (uint64_t)o->schedule_delay_ms * 1000000u;
    b->export_timeout_ms = o->export_timeout_ms ? o->export_timeout_ms : 30000;
    b->ring = calloc(b->cap, sizeof *b->ring);
    b->work = calloc(b->batch_size, sizeof *b->work);
    int rc = SL_OTEL_ENOMEM;
    if (b->ring == NULL || b->work == NULL) {
        goto fail;
    }
    pthread_mutex_init(&b->mu, NULL);
    if ((rc = ot_cond_init_mono(&b->wake)) != 0) {
        goto fail_mu;
    }
    if ((rc = ot_cond_init_mono(&b->done)) != 0) {
        pthread_cond_destroy(&b->wake);
        goto fail_mu;
    }
    rc = -pthread_create(&b->thread, NULL, worker, b);
    if (rc != 0) {
        pthread_cond_destroy(&b->wake);
        pthread_cond_destroy(&b->done);
        goto fail_mu;
    }
    b->started = true;
    *out = b;
    return 0;
fail_mu:
    pthread_mutex_destroy(&b->mu);
fail:
    free(b->ring);
    free(b->work);
    free(b);
    return rc;
}

int ot_batch_push(ot_batch *b, void *item) {
    pthread_mutex_lock(&b->mu);
    if (b->stop || b->count == b->cap) {
        int rc = b->stop ? SL_OTEL_ESHUTDOWN : SL_OTEL_EFULL;
        pthread_mutex_unlock(&b->mu);
        return rc;
    }
    b->ring[(b->head + b->count) % b->cap] = item;
    if (++b->count == b->batch_size) {
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int ot_batch_flush(ot_batch *b, uint64_t deadline_ns) {
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        return SL_OTEL_ESHUTDOWN;
    }
    b->flush_rc = 0;
    uint64_t ticket = ++b->flush_req;
    pthread_cond_signal(&b->wake);
    while (b->flush_done < ticket) {
        if (ot_cond_wait_until(&b->done, &b->mu, deadline_ns) == ETIMEDOUT &&
            b->flush_done < ticket) {
            rc = SL_OTEL_ETIMEOUT;
            break;
        }
    }
    if (rc == 0 && b->flush_rc != 0) {
        rc = SL_OTEL_EEXPORT;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int ot_batch_shutdown(ot_batch *b, uint64_t deadline_ns) {
    (void)deadline_ns; /* the worker reads the provider's abort deadline */
    pthread_mutex_lock(&b->mu);
    bool was = b->stop;
    b->stop = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->mu);
    if (!was && b->started) {
        pthread_join(b->thread, NULL);
        b->started = false;
    }
    int rc = b->flush_rc != 0 ? SL_OTEL_EEXPORT : 0;
    if (ot_mono_ns() > deadline_ns) {
        rc = SL_OTEL_ETIMEOUT;
    }
    return rc;
}

void ot_batch_destroy(ot_batch *b) {
    if (b == NULL) {
        return;
    }
    ot_batch_shutdown(b, UINT64_MAX);
    /* The worker drained the ring before exiting; anything left (none in
     * practice) is given back. */
    while (b->count > 0) {
        void *item = b->ring[b->head];
        b->head = (b->head + 1) % b->cap;
        b->count--;
        atomic_fetch_add(b->c.dropped, 1);
        b->ops.release(b->p, &item, 1);
    }
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->done);
    pthread_mutex_destroy(&b->mu);
    ot_buf_free(&b->body);
    free(b->ring);
    free(b->work);
    free(b);
}

size_t ot_batch_take(ot_batch *b, void **items, size_t max) {
    pthread_mutex_lock(&b->mu);
    size_t n = 0;
    while (n < max && b->count > 0) {
        items[n++] = b->ring[b->head];
        b->head = (b->head + 1) % b->cap;
        b->count--;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}
