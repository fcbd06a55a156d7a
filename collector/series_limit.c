/*
 * Active series per tenant (see series_limit.h): an open-addressing table of
 * 64-bit label-set hashes with the time each series was last written. A
 * sweep rebuilds the table without the series idle longer than the window;
 * it runs every eighth of the window, and before a refusal when the last one
 * is more than a second old, so a refusal never counts expired series.
 *
 * Thread: decode workers, under the limiter's mutex.
 */
#include "series_limit.h"

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLIM_DEFAULT_WINDOW_NS (600ull * 1000000000ull)

typedef struct slim_slot {
    uint64_t hash; /* 0: empty */
    uint64_t seen_ms;
} slim_slot;

typedef struct slim_tenant {
    char tenant[65];
    slim_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
    uint64_t last_sweep_ms;
    sl_metric *m_active, *m_discarded;
} slim_tenant;

struct col_series_limiter {
    pthread_mutex_t mu;
    uint64_t window_ms;
    slim_tenant *tenants;
    size_t ntenants, cap;
};

col_series_limiter *col_series_limiter_new(uint64_t window_ns) {
    col_series_limiter *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->window_ms = (window_ns != 0 ? window_ns : SLIM_DEFAULT_WINDOW_NS) / 1000000u;
    if (l->window_ms == 0) {
        l->window_ms = 1;
    }
    return l;
}

void col_series_limiter_free(col_series_limiter *l) {
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < l->ntenants; i++) {
        free(l->tenants[i].slots);
    }
    free(l->tenants);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* FNV-1a over names and values with separators that cannot occur in UTF-8
 * text, then a final mix; 0 is kept for empty slots. */
static uint64_t series_hash(const stg_mseries *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < s->nlabels; i++) {
        const sl_str *parts[2] = {&s->labels[i].name, &s->labels[i].value};
        for (int p = 0; p < 2; p++) {
            for (size_t k = 0; k < parts[p]->len; k++) {
                h = (h ^ (uint8_t)parts[p]->ptr[k]) * 0x100000001b3ull;
            }
            h = (h ^ (p == 0 ? 0xfeu : 0xffu)) * 0x100000001b3ull;
        }
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h != 0 ? h : 1;
}

static slim_tenant *find_tenant(col_series_limiter *l, const char *tenant, bool create) {
    for (size_t i = 0; i < l->ntenants; i++) {
        if (strcmp(l->tenants[i].tenant, tenant) == 0) {
            return &l->tenants[i];
        }
    }
    if (!create || sl_array_grow(&l->tenants, &l->cap, l->ntenants + 1, sizeof(*l->tenants)) != 0) {
        return NULL;
    }
    slim_tenant *t = &l->tenants[l->ntenants++];
    memset(t, 0, sizeof(*t));
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    /* Tenant ids are validated (no quotes or backslashes): safe as label text. */
    char labels[160];
    snprintf(labels, sizeof(labels), "tenant=\"%s\"", t->tenant);
    t->m_active = sl_gauge("sightline_active_series", labels,
                           "Series written within the active series window, per tenant with a "
                           "max_active_series limit.");
    snprintf(labels, sizeof(labels), "tenant=\"%s\",reason=\"per_tenant_series_limit\"", t->tenant);
    t->m_discarded = sl_counter("sightline_discarded_samples_total", labels,
                                "Samples not stored, by tenant and reason.");
    return t;
}

static slim_slot *lookup(slim_tenant *t, uint64_t h) {
    size_t j = h & (t->cap - 1);
    while (t->slots[j].hash != 0 && t->slots[j].hash != h) {
        j = (j + 1) & (t->cap - 1);
    }
    return &t->slots[j];
}

/* Rebuilds the table with room for want series, dropping those idle longer
 * than the window. Returns 0 or SL_ENOMEM (the old table is kept). */
static int rebuild(col_series_limiter *l, slim_tenant *t, size_t want, uint64_t now_ms) {
    size_t cap = 64;
    while (cap < want * 2) {
        cap *= 2;
    }
    slim_slot *old = t->slots;
    size_t old_cap = t->cap;
    slim_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return SL_ENOMEM;
    }
    t->slots = slots;
    t->cap = cap;
    t->n = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].hash != 0 && now_ms - old[i].seen_ms <= l->window_ms) {
            *lookup(t, old[i].hash) = old[i];
            t->n++;
        }
    }
    free(old);
    t->last_sweep_ms = now_ms;
    sl_metric_set(t->m_active, t->n);
    return 0;
}

static uint64_t mono_ms(void) {
    return sl_mono_nano() / 1000000u;
}

bool col_series_admit(col_series_gate *g, const stg_mseries *s, size_t n) {
    if (g == NULL || g->lim == NULL || g->max == 0 || n == 0) {
        return true;
    }
    col_series_limiter *l = g->lim;
    bool ok = true;
    pthread_mutex_lock(&l->mu);
    uint64_t now = mono_ms(); /* under the lock: last-seen times never pass it */
    slim_tenant *t = find_tenant(l, g->tenant, true);
    if (t == NULL) {
        goto out; /* out of memory for the table: do not refuse data over it */
    }
    uint64_t sweep_every = l->window_ms / 8 > 1000 ? l->window_ms / 8 : 1000;
    if (t->cap == 0 || now - t->last_sweep_ms >= sweep_every) {
        if (rebuild(l, t, t->n, now) != 0) {
            goto out;
        }
    }
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        fresh += lookup(t, series_hash(&s[i]))->hash == 0;
    }
    if (fresh > 0 && t->n + fresh > g->max && now - t->last_sweep_ms >= 1000) {
        /* Expire first: a refusal must not count series that went idle. */
        if (rebuild(l, t, t->n, now) == 0) {
            fresh = 0;
            for (size_t i = 0; i < n; i++) {
                fresh += lookup(t, series_hash(&s[i]))->hash == 0;
            }
        }
    }
    if (fresh > 0 && t->n + fresh > g->max) {
        ok = false;
        g->refused_points++;
        g->refused_series += n;
        sl_metric_add(t->m_discarded, n);
        goto out;
    }
    if ((t->n + fresh) * 2 > t->cap && rebuild(l, t, t->n + fresh, now) != 0) {
        goto out; /* cannot grow: admit without recording */
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t h = series_hash(&s[i]);
        slim_slot *sl = lookup(t, h);
        if (sl->hash == 0) {
            sl->hash = h;
            t->n++;
        }
        sl->seen_ms = now;
    }
    sl_metric_set(t->m_active, t->n);
out:
    pthread_mutex_unlock(&l->mu);
    return ok;
}

uint64_t col_series_active(col_series_limiter *l, const char *tenant) {
    uint64_t n = 0;
    pthread_mutex_lock(&l->mu);
    slim_tenant *t = find_tenant(l, tenant, false);
    if (t != NULL && rebuild(l, t, t->n, mono_ms()) == 0) {
        n = t->n;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}
