/*
 * Tracing: samplers, the span pool, the span API and the encoding of a batch
 * of spans as an ExportTraceServiceRequest.
 *
 * Spans come from the provider's free list (one short mutex hold), are
 * filled by the thread that owns the handle, and at sl_span_end move to the
 * batch processor's queue; the exporter thread encodes them and gives them
 * back to the free list with their buffers, so a steady flow allocates
 * nothing. Non-recording spans (sampled out) are pooled the same way and
 * never queued.
 */
#include "sdk_int.h"

#include <stdlib.h>
#include <string.h>

#define OWNER_LINK0 0x8000u
#define MAX_EVENTS_OR_LINKS 0x7f00u

/* ---- sampling ---------------------------------------------------------------- */

static bool ratio_sample(const sl_provider *p, const uint8_t trace_id[16]) {
    uint64_t x = 0;
    for (int i = 8; i < 16; i++) {
        x = (x << 8) | trace_id[i];
    }
    return (x >> 1) < p->ratio_bound;
}

bool ot_sample(const sl_provider *p, const sl_span_context *parent, const uint8_t trace_id[16]) {
    bool has_parent = parent != NULL && sl_span_context_is_valid(parent);
    switch (p->sampler) {
    case SL_SAMPLER_ALWAYS_ON:
        return true;
    case SL_SAMPLER_ALWAYS_OFF:
        return false;
    case SL_SAMPLER_TRACEIDRATIO:
        return ratio_sample(p, trace_id);
    case SL_SAMPLER_PARENTBASED_ALWAYS_ON:
        return has_parent ? (parent->trace_flags & SL_TRACE_FLAG_SAMPLED) != 0 : true;
    case SL_SAMPLER_PARENTBASED_ALWAYS_OFF:
        return has_parent ? (parent->trace_flags & SL_TRACE_FLAG_SAMPLED) != 0 : false;
    case SL_SAMPLER_PARENTBASED_TRACEIDRATIO:
        return has_parent ? (parent->trace_flags & SL_TRACE_FLAG_SAMPLED) != 0
                          : ratio_sample(p, trace_id);
    }
    return false;
}

/* ---- the pool ------------------------------------------------------------------ */

static sl_span *span_alloc(sl_provider *p) {
    pthread_mutex_lock(&p->mu);
    sl_span *s = p->free_spans;
    if (s != NULL) {
        p->free_spans = s->next_free;
        p->nfree_spans--;
    }
    pthread_mutex_unlock(&p->mu);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
    }
    return s;
}

static void span_reset(sl_span *s) {
    ot_rec_reset(&s->rec);
    if (s->cap_events > 64) {
        free(s->events);
        s->events = NULL;
        s->cap_events = 0;
    }
    if (s->cap_links > 64) {
        free(s->links);
        s->links = NULL;
        s->cap_links = 0;
    }
    ot_rec keep = s->rec;
    ot_event *ev = s->events;
    ot_link *ln = s->links;
    uint32_t ce = s->cap_events, cl = s->cap_links;
    memset(s, 0, sizeof *s);
    s->rec = keep;
    s->events = ev;
    s->links = ln;
    s->cap_events = ce;
    s->cap_links = cl;
}

static void span_free(sl_span *s) {
    ot_rec_free(&s->rec);
    free(s->events);
    free(s->links);
    free(s);
}

/* Keeps at most this many idle spans: a full queue, a batch in flight and a
 * margin for spans open in the application. */
static uint32_t pool_max(const sl_provider *p) {
    return p->span_pool_max;
}

static void spans_release(sl_provider *p, void **items, size_t n) {
    sl_span *head = NULL, *tail = NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        sl_span *s = items[i];
        span_reset(s);
        s->next_free = head;
        head = s;
        if (tail == NULL) {
            tail = s;
        }
        kept++;
    }
    if (head == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->nfree_spans + kept <= pool_max(p)) {
        tail->next_free = p->free_spans;
        p->free_spans = head;
        p->nfree_spans += (uint32_t)kept;
        head = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    while (head != NULL) {
        sl_span *next = head->next_free;
        span_free(head);
        head = next;
    }
}

void ot_spans_free_all(sl_provider *p) {
    sl_span *s = p->free_spans;
    while (s != NULL) {
        sl_span *next = s->next_free;
        span_free(s);
        s = next;
    }
    p->free_spans = NULL;
    p->nfree_spans = 0;
}

int ot_spans_prealloc(sl_provider *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        sl_span *s = calloc(1, sizeof *s);
        if (s == NULL || ot_buf_reserve(&s->rec.str, 512) != 0) {
            free(s);
            return SL_OTEL_ENOMEM;
        }
        s->rec.nodes = malloc(16 * sizeof *s->rec.nodes);
        s->rec.cap_nodes = s->rec.nodes ? 16 : 0;
        s->next_free = p->free_spans;
        p->free_spans = s;
        p->nfree_spans++;
    }
    return 0;
}

/* ---- the span API ---------------------------------------------------------------- */

void sl_span_options_init(sl_span_options *o) {
    if (o != NULL) {
        memset(o, 0, sizeof *o);
        o->kind = SL_SPAN_KIND_INTERNAL;
    }
}

static void new_id(uint8_t *out, size_t n) {
    static const uint8_t zero[16];
    do {
        ot_random_bytes(out, n);
    } while (memcmp(out, zero, n) == 0);
}

static void set_name(sl_span *s, const char *name) {
    size_t n = strlen(name);
    uint32_t off = ot_rec_str(&s->rec, name, n);
    if (off != UINT32_MAX) {
        s->name_off = off;
        s->name_len = (uint32_t)n;
    }
}

int sl_span_start(sl_tracer *t, const char *name, const sl_span_options *o, sl_span **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (t == NULL || name == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    sl_provider *p = t->p;
    const sl_span_context *parent = NULL;
    if (o != NULL && o->parent != NULL) {
        parent = o->parent;
    } else if (o == NULL || !o->root) {
        parent = ot_context_top();
    }
    if (parent != NULL && !sl_span_context_is_valid(parent)) {
        parent = NULL;
    }
    sl_span *s = span_alloc(p);
    if (s == NULL) {
        return SL_OTEL_ENOMEM;
    }
    s->tracer = t;
    if (parent != NULL) {
        memcpy(s->trace_id, parent->trace_id, 16);
        memcpy(s->parent_id, parent->span_id, 8);
        s->has_parent = true;
        s->parent_remote = parent->is_remote;
        size_t tsn = strnlen(parent->trace_state, SL_TRACESTATE_MAX);
        if (tsn > 0) {
            s->ts_off = ot_rec_str(&s->rec, parent->trace_state, tsn);
            s->ts_len = s->ts_off == UINT32_MAX ? 0 : (uint32_t)tsn;
        }
    } else {
        new_id(s->trace_id, 16);
    }
    new_id(s->span_id, 8);

    int rc = 0;
    bool sampled;
    if (p->disabled) {
        rc = SL_OTEL_EDISABLED;
        sampled = false;
    } else if (atomic_load_explicit(&p->shut_down, memory_order_relaxed)) {
        rc = SL_OTEL_ESHUTDOWN;
        sampled = false;
    } else {
        sampled = ot_sample(p, parent, s->trace_id);
    }
    s->trace_flags = sampled ? SL_TRACE_FLAG_SAMPLED : 0;
    s->recording = sampled;
    if (!sampled) {
        if (rc == 0) {
            atomic_fetch_add_explicit(&p->stats.spans_not_sampled, 1, memory_order_relaxed);
        }
        *out = s;
        return rc;
    }
    atomic_fetch_add_explicit(&p->stats.spans_started, 1, memory_order_relaxed);
    s->kind =
        (uint8_t)(o != NULL && o->kind <= SL_SPAN_KIND_CONSUMER ? o->kind : SL_SPAN_KIND_INTERNAL);
    s->start_ns = o != NULL && o->start_unix_nano != 0 ? o->start_unix_nano : ot_now_ns();
    set_name(s, name);
    if (o != NULL) {
        sl_span_set_attrs(s, o->attrs, o->attr_count);
        for (size_t i = 0; i < o->link_count && o->links != NULL; i++) {
            sl_span_add_link(s, &o->links[i]);
        }
    }
    *out = s;
    return 0;
}

int sl_span_set_attrs(sl_span *s, const sl_kv *attrs, size_t n) {
    if (s == NULL || (attrs == NULL && n > 0)) {
        return SL_OTEL_EINVAL;
    }
    if (!s->recording) {
        return 0;
    }
    const sl_span_limits *l = &s->tracer->p->limits;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = ot_rec_set(&s->rec, OT_OWNER_SELF, &attrs[i], l->attribute_count,
                           l->attribute_value_length, &s->nattrs, &s->dropped_attrs);
        if (r != 0 && rc == 0) {
            rc = r;
        }
    }
    return rc;
}

int sl_span_set_str(sl_span *s, const char *key, const char *value) {
    sl_kv kv = SL_KV_STR(key, value);
    return sl_span_set_attrs(s, &kv, 1);
}

int sl_span_set_int(sl_span *s, const char *key, int64_t value) {
    sl_kv kv = SL_KV_INT(key, value);
    return sl_span_set_attrs(s, &kv, 1);
}

int sl_span_set_double(sl_span *s, const char *key, double value) {
    sl_kv kv = SL_KV_DOUBLE(key, value);
    return sl_span_set_attrs(s, &kv, 1);
}

int sl_span_set_bool(sl_span *s, const char *key, bool value) {
    sl_kv kv = SL_KV_BOOL(key, value);
    return sl_span_set_attrs(s, &kv, 1);
}

int sl_span_add_event(sl_span *s, const char *name, uint64_t ts_unix_nano, const sl_kv *attrs,
                      size_t n) {
    if (s == NULL || name == NULL || (attrs == NULL && n > 0)) {
        return SL_OTEL_EINVAL;
    }
    if (!s->recording) {
        return 0;
    }
    const sl_span_limits *l = &s->tracer->p->limits;
    uint32_t max = l->event_count < MAX_EVENTS_OR_LINKS ? l->event_count : MAX_EVENTS_OR_LINKS;
    if (s->nevents >= max) {
        s->dropped_events++;
        return SL_OTEL_ELIMIT;
    }
    if (s->nevents == s->cap_events) {
        uint32_t cap = s->cap_events ? s->cap_events * 2 : 4;
        ot_event *ev = realloc(s->events, cap * sizeof *ev);
        if (ev == NULL) {
            s->dropped_events++;
            return SL_OTEL_ENOMEM;
        }
        s->events = ev;
        s->cap_events = cap;
    }
    ot_event *ev = &s->events[s->nevents];
    memset(ev, 0, sizeof *ev);
    ev->ts = ts_unix_nano ? ts_unix_nano : ot_now_ns();
    size_t nl = strlen(name);
    ev->name_off = ot_rec_str(&s->rec, name, nl);
    if (ev->name_off == UINT32_MAX) {
        s->dropped_events++;
        return SL_OTEL_ENOMEM;
    }
    ev->name_len = (uint32_t)nl;
    uint16_t owner = (uint16_t)(OT_OWNER_EVENT0 + s->nevents);
    for (size_t i = 0; i < n; i++) {
        ot_rec_set(&s->rec, owner, &attrs[i], l->attributes_per_event, l->attribute_value_length,
                   &ev->nattrs, &ev->dropped);
    }
    s->nevents++;
    return 0;
}

int sl_span_record_error(sl_span *s, const char *type, const char *message) {
    sl_kv kv[2];
    size_t n = 0;
    if (type != NULL) {
        kv[n++] = SL_KV_STR("exception.type", type);
    }
    if (message != NULL) {
        kv[n++] = SL_KV_STR("exception.message", message);
    }
    int rc = sl_span_add_event(s, "exception", 0, kv, n);
    int rc2 = sl_span_set_status(s, SL_STATUS_ERROR, message);
    return rc != 0 ? rc : rc2;
}

int sl_span_add_link(sl_span *s, const sl_link *link) {
    if (s == NULL || link == NULL || link->context == NULL ||
        (link->attrs == NULL && link->attr_count > 0)) {
        return SL_OTEL_EINVAL;
    }
    if (!s->recording) {
        return 0;
    }
    const sl_span_limits *l = &s->tracer->p->limits;
    uint32_t max = l->link_count < MAX_EVENTS_OR_LINKS ? l->link_count : MAX_EVENTS_OR_LINKS;
    if (s->nlinks >= max) {
        s->dropped_links++;
        return SL_OTEL_ELIMIT;
    }
    if (s->nlinks == s->cap_links) {
        uint32_t cap = s->cap_links ? s->cap_links * 2 : 2;
        ot_link *ln = realloc(s->links, cap * sizeof *ln);
        if (ln == NULL) {
            s->dropped_links++;
            return SL_OTEL_ENOMEM;
        }
        s->links = ln;
        s->cap_links = cap;
    }
    ot_link *ln = &s->links[s->nlinks];
    memset(ln, 0, sizeof *ln);
    memcpy(ln->trace_id, link->context->trace_id, 16);
    memcpy(ln->span_id, link->context->span_id, 8);
    ln->flags = link->context->trace_flags | 0x100u | (link->context->is_remote ? 0x200u : 0);
    size_t tsn = strnlen(link->context->trace_state, SL_TRACESTATE_MAX);
    if (tsn > 0) {
        ln->ts_off = ot_rec_str(&s->rec, link->context->trace_state, tsn);
        ln->ts_len = ln->ts_off == UINT32_MAX ? 0 : (uint32_t)tsn;
    }
    uint16_t owner = (uint16_t)(OWNER_LINK0 + s->nlinks);
    for (size_t i = 0; i < link->attr_count; i++) {
        ot_rec_set(&s->rec, owner, &link->attrs[i], l->attributes_per_link,
                   l->attribute_value_length, &ln->nattrs, &ln->dropped);
    }
    s->nlinks++;
    return 0;
}

int sl_span_set_status(sl_span *s, sl_status_code code, const char *description) {
    if (s == NULL || (unsigned)code > SL_STATUS_ERROR) {
        return SL_OTEL_EINVAL;
    }
    if (!s->recording || code == SL_STATUS_UNSET || s->status == SL_STATUS_OK) {
        return 0;
    }
    s->status = (uint8_t)code;
    s->status_len = 0;
    if (code == SL_STATUS_ERROR && description != NULL) {
        size_t n = strlen(description);
        uint32_t off = ot_rec_str(&s->rec, description, n);
        if (off != UINT32_MAX) {
            s->status_off = off;
            s->status_len = (uint32_t)n;
        }
    }
    return 0;
}

int sl_span_update_name(sl_span *s, const char *name) {
    if (s == NULL || name == NULL) {
        return SL_OTEL_EINVAL;
    }
    if (s->recording) {
        set_name(s, name);
    }
    return 0;
}

bool sl_span_is_recording(const sl_span *s) {
    return s != NULL && s->recording;
}

int sl_span_get_context(const sl_span *s, sl_span_context *out) {
    if (s == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    memcpy(out->trace_id, s->trace_id, 16);
    memcpy(out->span_id, s->span_id, 8);
    out->trace_flags = s->trace_flags;
    out->is_remote = false;
    if (s->ts_len > 0) {
        /* A span that is not recording has no record store (NULL base). */
        memcpy(out->trace_state, ot_rec_ptr(&s->rec, s->ts_off), s->ts_len);
    }
    out->trace_state[s->ts_len] = '\0';
    return 0;
}

void sl_span_end(sl_span *s, uint64_t ts_unix_nano) {
    if (s == NULL) {
        return;
    }
    sl_provider *p = s->tracer->p;
    void *item = s;
    if (!s->recording) {
        spans_release(p, &item, 1);
        return;
    }
    s->end_ns = ts_unix_nano ? ts_unix_nano : ot_now_ns();
    if (s->end_ns < s->start_ns) {
        s->end_ns = s->start_ns;
    }
    s->ended = true;
    if (p->bsp == NULL || ot_batch_push(p->bsp, s) != 0) {
        atomic_fetch_add_explicit(&p->stats.spans_dropped, 1, memory_order_relaxed);
        spans_release(p, &item, 1);
    }
}

/* ---- encoding ------------------------------------------------------------------------ */

static void enc_span(ot_enc *e, const sl_span *s) {
    const ot_rec *r = &s->rec;
    ot_enc_begin(e, 2, NULL);
    ot_enc_id(e, 1, "traceId", s->trace_id, 16);
    ot_enc_id(e, 2, "spanId", s->span_id, 8);
    if (s->ts_len > 0) {
        ot_enc_str(e, 3, "traceState", ot_rec_ptr(r, s->ts_off), s->ts_len);
    }
    if (s->has_parent) {
        ot_enc_id(e, 4, "parentSpanId", s->parent_id, 8);
    }
    ot_enc_fixed32(e, 16, "flags", s->trace_flags | 0x100u | (s->parent_remote ? 0x200u : 0));
    ot_enc_str(e, 5, "name", ot_rec_ptr(r, s->name_off), s->name_len);
    ot_enc_u32(e, 6, "kind", s->kind);
    ot_enc_fixed64(e, 7, "startTimeUnixNano", s->start_ns);
    ot_enc_fixed64(e, 8, "endTimeUnixNano", s->end_ns);
    ot_enc_attrs(e, 9, r, OT_OWNER_SELF);
    if (s->dropped_attrs) {
        ot_enc_u32(e, 10, "droppedAttributesCount", s->dropped_attrs);
    }
    if (s->nevents > 0) {
        ot_enc_array_begin(e, "events");
        for (uint32_t k = 0; k < s->nevents; k++) {
            const ot_event *ev = &s->events[k];
            ot_enc_begin(e, 11, NULL);
            ot_enc_fixed64(e, 1, "timeUnixNano", ev->ts);
            ot_enc_str(e, 2, "name", ot_rec_ptr(r, ev->name_off), ev->name_len);
            ot_enc_attrs(e, 3, r, (uint16_t)(OT_OWNER_EVENT0 + k));
            if (ev->dropped) {
                ot_enc_u32(e, 4, "droppedAttributesCount", ev->dropped);
            }
            ot_enc_end(e);
        }
        ot_enc_array_end(e);
    }
    if (s->dropped_events) {
        ot_enc_u32(e, 12, "droppedEventsCount", s->dropped_events);
    }
    if (s->nlinks > 0) {
        ot_enc_array_begin(e, "links");
        for (uint32_t k = 0; k < s->nlinks; k++) {
            const ot_link *ln = &s->links[k];
            ot_enc_begin(e, 13, NULL);
            ot_enc_id(e, 1, "traceId", ln->trace_id, 16);
            ot_enc_id(e, 2, "spanId", ln->span_id, 8);
            if (ln->ts_len > 0) {
                ot_enc_str(e, 3, "traceState", ot_rec_ptr(r, ln->ts_off), ln->ts_len);
            }
            ot_enc_attrs(e, 4, r, (uint16_t)(OWNER_LINK0 + k));
            if (ln->dropped) {
                ot_enc_u32(e, 5, "droppedAttributesCount", ln->dropped);
            }
            ot_enc_fixed32(e, 6, "flags", ln->flags);
            ot_enc_end(e);
        }
        ot_enc_array_end(e);
    }
    if (s->dropped_links) {
        ot_enc_u32(e, 14, "droppedLinksCount", s->dropped_links);
    }
    if (s->status != SL_STATUS_UNSET) {
        ot_enc_begin(e, 15, "status");
        if (s->status_len > 0) {
            ot_enc_str(e, 2, "message", ot_rec_ptr(r, s->status_off), s->status_len);
        }
        ot_enc_u32(e, 3, "code", s->status);
        ot_enc_end(e);
    }
    ot_enc_end(e);
}

static int cmp_by_tracer(const void *a, const void *b) {
    const sl_span *x = *(void *const *)a, *y = *(void *const *)b;
    uintptr_t tx = (uintptr_t)x->tracer, ty = (uintptr_t)y->tracer;
    return tx < ty ? -1 : tx > ty;
}

static void spans_encode(sl_provider *p, void **items, size_t n, ot_enc *e) {
    qsort(items, n, sizeof *items, cmp_by_tracer);
    ot_enc_array_begin(e, "resourceSpans");
    ot_enc_begin(e, 1, NULL);
    ot_enc_resource(e, p);
    ot_enc_array_begin(e, "scopeSpans");
    for (size_t i = 0; i < n;) {
        const sl_tracer *t = ((sl_span *)items[i])->tracer;
        ot_enc_begin(e, 2, NULL);
        ot_enc_scope(e, &t->scope);
        ot_enc_array_begin(e, "spans");
        for (; i < n && ((sl_span *)items[i])->tracer == t; i++) {
            enc_span(e, items[i]);
        }
        ot_enc_array_end(e);
        ot_enc_end(e);
    }
    ot_enc_array_end(e);
    ot_enc_end(e);
    ot_enc_array_end(e);
}

const ot_batch_ops ot_span_ops = {.encode = spans_encode, .release = spans_release};
