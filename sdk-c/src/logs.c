/*
 * Logs: log records built in pooled records (like spans), correlated with
 * the calling thread's current span, queued to the log batch processor and
 * encoded as an ExportLogsServiceRequest. emit never blocks.
 */
#include "sdk_int.h"

#include <stdlib.h>
#include <string.h>

static ot_log *log_alloc(sl_provider *p) {
    pthread_mutex_lock(&p->mu);
    ot_log *l = p->free_logs;
    if (l != NULL) {
        p->free_logs = l->next_free;
        p->nfree_logs--;
    }
    pthread_mutex_unlock(&p->mu);
    if (l == NULL) {
        l = calloc(1, sizeof *l);
    }
    return l;
}

static void logs_release(sl_provider *p, void **items, size_t n) {
    ot_log *head = NULL;
    ot_log *tail = NULL;
    for (size_t i = 0; i < n; i++) {
        ot_log *l = items[i];
        ot_rec_reset(&l->rec);
        ot_rec keep = l->rec;
        memset(l, 0, sizeof *l);
        l->rec = keep;
        l->next_free = head;
        head = l;
        if (tail == NULL) {
            tail = l;
        }
    }
    if (head == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->nfree_logs + n <= p->log_pool_max) {
        tail->next_free = p->free_logs;
        p->free_logs = head;
        p->nfree_logs += (uint32_t)n;
        head = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    while (head != NULL) {
        ot_log *next = head->next_free;
        ot_rec_free(&head->rec);
        free(head);
        head = next;
    }
}

void ot_logs_free_all(sl_provider *p) {
    ot_log *l = p->free_logs;
    while (l != NULL) {
        ot_log *next = l->next_free;
        ot_rec_free(&l->rec);
        free(l);
        l = next;
    }
    p->free_logs = NULL;
    p->nfree_logs = 0;
}

void sl_log_options_init(sl_log_options *o) {
    if (o != NULL) {
        memset(o, 0, sizeof *o);
    }
}

static const char *severity_text(int sev) {
    static const char *names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    if (sev < 1 || sev > 24) {
        return NULL;
    }
    return names[(sev - 1) / 4];
}

int sl_logger_emit_ex(sl_logger *lg, const sl_log_options *o) {
    if (lg == NULL || o == NULL || o->severity < 0 || o->severity > 24 ||
        (o->attrs == NULL && o->attr_count > 0)) {
        return SL_OTEL_EINVAL;
    }
    sl_provider *p = lg->p;
    if (p->disabled) {
        return SL_OTEL_EDISABLED;
    }
    if (atomic_load_explicit(&p->shut_down, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&p->stats.logs_dropped, 1, memory_order_relaxed);
        return SL_OTEL_ESHUTDOWN;
    }
    ot_log *l = log_alloc(p);
    if (l == NULL) {
        atomic_fetch_add_explicit(&p->stats.logs_dropped, 1, memory_order_relaxed);
        return SL_OTEL_ENOMEM;
    }
    l->logger = lg;
    l->ts_ns = o->ts_unix_nano;
    l->observed_ns = ot_now_ns();
    l->severity = o->severity;
    const char *st = o->severity_text ? o->severity_text : severity_text(o->severity);
    if (st != NULL) {
        size_t n = strlen(st);
        l->sev_off = ot_rec_str(&l->rec, st, n);
        l->sev_len = l->sev_off == UINT32_MAX ? 0 : (uint32_t)n;
    }
    const sl_span_context *ctx = o->context ? o->context : ot_context_top();
    if (ctx != NULL && sl_span_context_is_valid(ctx)) {
        memcpy(l->trace_id, ctx->trace_id, 16);
        memcpy(l->span_id, ctx->span_id, 8);
        l->trace_flags = ctx->trace_flags;
        l->has_trace = true;
    }
    if (o->body != NULL && ot_rec_value(&l->rec, OT_OWNER_BODY, o->body, p->log_attr_len) == 0) {
        l->has_body = true;
    }
    int rc = 0;
    for (size_t i = 0; i < o->attr_count; i++) {
        int r = ot_rec_set(&l->rec, OT_OWNER_SELF, &o->attrs[i], p->log_attr_count, p->log_attr_len,
                           &l->nattrs, &l->dropped_attrs);
        if (r != 0 && rc == 0) {
            rc = r;
        }
    }
    atomic_fetch_add_explicit(&p->stats.logs_emitted, 1, memory_order_relaxed);
    int pr = p->blrp ? ot_batch_push(p->blrp, l) : SL_OTEL_ESHUTDOWN;
    if (pr != 0) {
        void *item = l;
        atomic_fetch_add_explicit(&p->stats.logs_dropped, 1, memory_order_relaxed);
        logs_release(p, &item, 1);
        return pr;
    }
    return rc == SL_OTEL_ELIMIT ? rc : 0;
}

int sl_logger_emit(sl_logger *lg, sl_severity severity, const char *body, const sl_kv *attrs,
                   size_t n) {
    sl_log_options o;
    sl_log_options_init(&o);
    sl_any b = SL_ANY_STR(body);
    o.severity = (int)severity;
    o.body = body ? &b : NULL;
    o.attrs = attrs;
    o.attr_count = n;
    return sl_logger_emit_ex(lg, &o);
}

static void enc_log(ot_enc *e, const ot_log *l) {
    const ot_rec *r = &l->rec;
    ot_enc_begin(e, 2, NULL);
    if (l->ts_ns) {
        ot_enc_fixed64(e, 1, "timeUnixNano", l->ts_ns);
    }
    ot_enc_fixed64(e, 11, "observedTimeUnixNano", l->observed_ns);
    if (l->severity) {
        ot_enc_u32(e, 2, "severityNumber", (uint32_t)l->severity);
    }
    if (l->sev_len) {
        ot_enc_str(e, 3, "severityText", ot_rec_ptr(r, l->sev_off), l->sev_len);
    }
    if (l->has_body) {
        for (uint32_t i = 0; i < r->nnodes; i += r->nodes[i].desc + 1) {
            if (r->nodes[i].owner == OT_OWNER_BODY) {
                uint32_t k = i;
                ot_enc_anyvalue(e, 5, "body", r, &k);
                break;
            }
        }
    }
    ot_enc_attrs(e, 6, r, OT_OWNER_SELF);
    if (l->dropped_attrs) {
        ot_enc_u32(e, 7, "droppedAttributesCount", l->dropped_attrs);
    }
    if (l->has_trace) {
        ot_enc_fixed32(e, 8, "flags", l->trace_flags);
        ot_enc_id(e, 9, "traceId", l->trace_id, 16);
        ot_enc_id(e, 10, "spanId", l->span_id, 8);
    }
    ot_enc_end(e);
}

static int cmp_by_logger(const void *a, const void *b) {
    const ot_log *x = *(void *const *)a, *y = *(void *const *)b;
    uintptr_t lx = (uintptr_t)x->logger, ly = (uintptr_t)y->logger;
    return lx < ly ? -1 : lx > ly;
}

static void logs_encode(sl_provider *p, void **items, size_t n, ot_enc *e) {
    qsort(items, n, sizeof *items, cmp_by_logger);
    ot_enc_array_begin(e, "resourceLogs");
    ot_enc_begin(e, 1, NULL);
    ot_enc_resource(e, p);
    ot_enc_array_begin(e, "scopeLogs");
    for (size_t i = 0; i < n;) {
        const sl_logger *lg = ((ot_log *)items[i])->logger;
        ot_enc_begin(e, 2, NULL);
        ot_enc_scope(e, &lg->scope);
        ot_enc_array_begin(e, "logRecords");
        for (; i < n && ((ot_log *)items[i])->logger == lg; i++) {
            enc_log(e, items[i]);
        }
        ot_enc_array_end(e);
        ot_enc_end(e);
    }
    ot_enc_array_end(e);
    ot_enc_end(e);
    ot_enc_array_end(e);
}

const ot_batch_ops ot_log_ops = {.encode = logs_encode, .release = logs_release};
