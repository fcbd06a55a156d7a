/*
 * Span helpers for storage: the text form of values (what tag indexes and tag
 * filters compare), Jaeger tag matching, and deep copies of spans out of a
 * temporary decode arena into the caller's. Pure, thread-safe.
 */
#include "storage_int.h"

#include "sl_err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

const char *stg_kind_name(int kind) {
    static const char *names[] = {"unspecified", "internal", "server",
                                  "client",      "producer", "consumer"};
    return kind >= 0 && kind <= 5 ? names[kind] : "unspecified";
}

sl_str stg_value_text(const sl_value *v, char *buf, size_t cap) {
    int n = 0;
    switch (v->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return v->v.s;
    case SL_VAL_BOOL:
        return v->v.b ? SL_STR_LIT("true") : SL_STR_LIT("false");
    case SL_VAL_INT:
        n = snprintf(buf, cap, "%" PRId64, v->v.i);
        break;
    case SL_VAL_DOUBLE:
        /* 15 significant digits read back exactly for most values people
         * type (0.25, 1.1); the rest need 17. */
        n = snprintf(buf, cap, "%.15g", v->v.d);
        if (n > 0 && (size_t)n < cap && strtod(buf, NULL) != v->v.d) {
            n = snprintf(buf, cap, "%.17g", v->v.d);
        }
        break;
    default:
        return (sl_str){"", 0};
    }
    if (n < 0) {
        n = 0;
    }
    return (sl_str){buf, (size_t)n < cap ? (size_t)n : cap - 1};
}

static bool attrs_have(const sl_attr *attrs, uint32_t n, sl_str key, sl_str value) {
    char buf[64];
    for (uint32_t i = 0; i < n; i++) {
        if (sl_str_eq(attrs[i].key, key) &&
            sl_str_eq(stg_value_text(&attrs[i].val, buf, sizeof(buf)), value)) {
            return true;
        }
    }
    return false;
}

bool stg_span_has_tag(const sl_span *sp, sl_str key, sl_str value) {
    if (attrs_have(sp->attrs, sp->nattrs, key, value)) {
        return true;
    }
    if (sp->resource != NULL && attrs_have(sp->resource->attrs, sp->resource->nattrs, key, value)) {
        return true;
    }
    if (sl_str_eqc(key, "error")) {
        return sl_str_eqc(value, "true") && sp->status_code == SL_STATUS_ERROR;
    }
    if (sl_str_eqc(key, "span.kind")) {
        return sp->kind != SL_KIND_UNSPECIFIED && sl_str_eqc(value, stg_kind_name(sp->kind));
    }
    if (sl_str_eqc(key, "otel.status_code")) {
        return (sp->status_code == SL_STATUS_OK && sl_str_eqc(value, "OK")) ||
               (sp->status_code == SL_STATUS_ERROR && sl_str_eqc(value, "ERROR"));
    }
    if (sl_str_eqc(key, "otel.status_description")) {
        return sp->status_message.len > 0 && sl_str_eq(value, sp->status_message);
    }
    return false;
}

/* --- deep copy --------------------------------------------------------- */

static int copy_str(sl_arena *a, sl_str *s) {
    if (s->len == 0) {
        s->ptr = "";
        return 0;
    }
    char *p = sl_arena_memdup(a, s->ptr, s->len);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    s->ptr = p;
    return 0;
}

static int copy_attrs(sl_arena *a, sl_attr **attrs, uint32_t n) {
    if (n == 0) {
        *attrs = NULL;
        return 0;
    }
    sl_attr *dst = sl_arena_memdup(a, *attrs, n * sizeof(sl_attr));
    if (dst == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (copy_str(a, &dst[i].key) != 0) {
            return SL_ENOMEM;
        }
        uint8_t t = dst[i].val.type;
        if ((t == SL_VAL_STR || t == SL_VAL_BYTES || t == SL_VAL_ARRAY || t == SL_VAL_KVLIST) &&
            copy_str(a, &dst[i].val.v.s) != 0) {
            return SL_ENOMEM;
        }
    }
    *attrs = dst;
    return 0;
}

static int copy_span(sl_arena *a, sl_span *d) {
    if (copy_str(a, &d->name) || copy_str(a, &d->trace_state) || copy_str(a, &d->status_message) ||
        copy_str(a, &d->scope_name) || copy_str(a, &d->scope_version) ||
        copy_attrs(a, &d->attrs, d->nattrs)) {
        return SL_ENOMEM;
    }
    if (d->nevents > 0) {
        sl_event *ev = sl_arena_memdup(a, d->events, d->nevents * sizeof(sl_event));
        if (ev == NULL) {
            return SL_ENOMEM;
        }
        for (uint32_t i = 0; i < d->nevents; i++) {
            if (copy_str(a, &ev[i].name) || copy_attrs(a, &ev[i].attrs, ev[i].nattrs)) {
                return SL_ENOMEM;
            }
        }
        d->events = ev;
    }
    if (d->nlinks > 0) {
        sl_link *ln = sl_arena_memdup(a, d->links, d->nlinks * sizeof(sl_link));
        if (ln == NULL) {
            return SL_ENOMEM;
        }
        for (uint32_t i = 0; i < d->nlinks; i++) {
            if (copy_str(a, &ln[i].trace_state) || copy_attrs(a, &ln[i].attrs, ln[i].nattrs)) {
                return SL_ENOMEM;
            }
        }
        d->links = ln;
    }
    return 0;
}

int stg_spans_copy(const sl_span *const *src, size_t n, sl_arena *a, sl_span **out) {
    sl_span *dst = sl_arena_calloc(a, n ? n : 1, sizeof(sl_span));
    if (dst == NULL) {
        return SL_ENOMEM;
    }
    /* Resources are shared: copy each distinct one once (n is a trace's span
     * count, so a linear memo is enough). */
    const sl_resource **seen_src = sl_arena_calloc(a, n ? n : 1, sizeof(*seen_src));
    sl_resource **seen_dst = sl_arena_calloc(a, n ? n : 1, sizeof(*seen_dst));
    if (seen_src == NULL || seen_dst == NULL) {
        return SL_ENOMEM;
    }
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) {
        dst[i] = *src[i];
        if (copy_span(a, &dst[i]) != 0) {
            return SL_ENOMEM;
        }
        const sl_resource *r = src[i]->resource;
        if (r == NULL) {
            continue;
        }
        size_t j = 0;
        while (j < nseen && seen_src[j] != r) {
            j++;
        }
        if (j == nseen) {
            sl_resource *c = sl_arena_memdup(a, r, sizeof(*r));
            if (c == NULL || copy_str(a, &c->service) || copy_attrs(a, &c->attrs, c->nattrs)) {
                return SL_ENOMEM;
            }
            seen_src[nseen] = r;
            seen_dst[nseen++] = c;
        }
        dst[i].resource = seen_dst[j];
    }
    *out = dst;
    return 0;
}
