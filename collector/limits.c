/*
 * Per-tenant ingestion limits in the collector:
 *   - rates: one token bucket per (tenant, signal), refilled at the tenant's
 *     rate up to rate x burst_seconds. A request is let through while the
 *     bucket is positive and takes its items from it (it may go into debt, so
 *     one large batch is not refused forever); otherwise 429 with the seconds
 *     until the debt is paid. Loop thread only: no locks.
 *   - attributes: at most max_attributes per span, event, link or log record
 *     (the rest dropped and counted in the item's dropped count, as the OTel
 *     SDK span limits do) and string values cut to max_attr_value_length
 *     bytes on a UTF-8 boundary. Decode pool, on the request's own copy.
 */
#include "col_int.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct col_bucket {
    char tenant[65];
    double tokens[STG_NSIGNALS];
    uint64_t last_ns[STG_NSIGNALS];
} col_bucket;

static col_bucket *find_bucket(col_collector *col, const char *tenant) {
    for (size_t i = 0; i < col->nbuckets; i++) {
        if (strcmp(col->buckets[i].tenant, tenant) == 0) {
            return &col->buckets[i];
        }
    }
    if (sl_array_grow(&col->buckets, &col->buckets_cap, col->nbuckets + 1, sizeof(*col->buckets)) !=
        0) {
        return NULL;
    }
    col_bucket *b = &col->buckets[col->nbuckets++];
    memset(b, 0, sizeof(*b));
    snprintf(b->tenant, sizeof(b->tenant), "%s", tenant);
    for (int s = 0; s < STG_NSIGNALS; s++) {
        b->tokens[s] = NAN; /* full on first use */
    }
    return b;
}

int col_rate_take(col_collector *col, const col_req *r, uint32_t *retry_after_s) {
    double rate = r->limits.rate[r->route->signal];
    if (rate <= 0 || r->recs.accepted == 0) {
        return 0;
    }
    col_bucket *b = find_bucket(col, r->tenant);
    if (b == NULL) {
        return 0; /* out of memory for a bucket: do not refuse data over it */
    }
    int sig = r->route->signal;
    double burst = rate * (r->limits.burst_seconds > 0 ? r->limits.burst_seconds : 1);
    uint64_t now = sl_mono_nano();
    if (isnan(b->tokens[sig])) {
        b->tokens[sig] = burst;
    } else {
        b->tokens[sig] += rate * (double)(now - b->last_ns[sig]) / 1e9;
        b->tokens[sig] = b->tokens[sig] > burst ? burst : b->tokens[sig];
    }
    b->last_ns[sig] = now;
    if (b->tokens[sig] <= 0) {
        double wait = -b->tokens[sig] / rate;
        *retry_after_s = wait < 1 ? 1 : (uint32_t)ceil(wait);
        return 429;
    }
    b->tokens[sig] -= (double)r->recs.accepted;
    return 0;
}

void col_limits_free(col_collector *col) {
    free(col->buckets);
    col->buckets = NULL;
    col_series_limiter_free(col->series);
    col->series = NULL;
    col->nbuckets = col->buckets_cap = 0;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void cut_utf8(sl_str *s, size_t max) {
    if (s->len <= max) {
        return;
    }
    size_t n = max;
    while (n > 0 && ((unsigned char)s->ptr[n] & 0xc0) == 0x80) {
        n--; /* s->ptr[n] continues a sequence: cut before its lead byte */
    }
    s->len = n;
}

uint64_t col_limit_attrs(sl_attr *attrs, uint32_t *n, uint32_t *dropped,
                         const sl_tenant_limits *lim) {
    uint64_t changed = 0;
    if (lim->max_attributes > 0 && *n > lim->max_attributes) {
        changed += *n - lim->max_attributes;
        *dropped += *n - lim->max_attributes;
        *n = lim->max_attributes;
    }
    if (lim->max_attr_value_length > 0) {
        for (uint32_t i = 0; i < *n; i++) {
            sl_value *v = &attrs[i].val;
            if ((v->type == SL_VAL_STR || v->type == SL_VAL_BYTES) &&
                v->v.s.len > lim->max_attr_value_length) {
                if (v->type == SL_VAL_STR) {
                    cut_utf8(&v->v.s, lim->max_attr_value_length);
                } else {
                    v->v.s.len = lim->max_attr_value_length;
                }
                changed++;
            }
        }
    }
    return changed;
}

uint64_t col_limit_spans(sl_span *spans, size_t n, const sl_tenant_limits *lim) {
    uint64_t changed = 0;
    if (lim->max_attributes == 0 && lim->max_attr_value_length == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        sl_span *sp = &spans[i];
        changed += col_limit_attrs(sp->attrs, &sp->nattrs, &sp->dropped_attrs, lim);
        for (uint32_t e = 0; e < sp->nevents; e++) {
            sl_event *ev = &sp->events[e];
            changed += col_limit_attrs(ev->attrs, &ev->nattrs, &ev->dropped_attrs, lim);
        }
        for (uint32_t l = 0; l < sp->nlinks; l++) {
            sl_link *lk = &sp->links[l];
            changed += col_limit_attrs(lk->attrs, &lk->nattrs, &lk->dropped_attrs, lim);
        }
    }
    return changed;
}

uint64_t col_limit_logs(sl_log_record *recs, size_t n, const sl_tenant_limits *lim) {
    uint64_t changed = 0;
    if (lim->max_attributes == 0 && lim->max_attr_value_length == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        changed += col_limit_attrs(recs[i].attrs, &recs[i].nattrs, &recs[i].dropped_attrs, lim);
    }
    return changed;
}
