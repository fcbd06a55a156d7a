/*
 * Active series per tenant (see series_limit.h): an open-addressing table of
 * 64-bit label-set hashes with the time each series was last written. A
 * sweep rebuilds the table without the series idle longer than the window;
 * it runs every eighth of the window, and before a refusal when the last one
 * is more than a second old, so a refusal never counts expired series.
 *
 * A tenant's table starts from what storage holds: the first thread to meet
 * the tenant marks it loading, reads its recent series back from the store
 * (stg_metrics_recent_series) without the mutex, then fills the table; other
 * threads wanting that tenant wait on a condition meanwhile, the others go
 * on. A preload thread does this at start for every tenant on disk that has
 * a limit, so /metrics shows the restored counts before anything arrives.
 *
 * Threads: decode workers and the preload thread, under the limiter's mutex
 * (storage reads outside it).
 */
#include "series_limit.h"

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <pthread.h>
#include <stdatomic.h>
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
    bool loading; /* its series are being read back from storage */
    sl_metric *m_active, *m_discarded;
} slim_tenant;

struct col_series_limiter {
    pthread_mutex_t mu;
    pthread_cond_t loaded; /* a tenant finished loading */
    uint64_t window_ms;
    uint64_t clock_base_ms; /* added to the monotonic clock: now - window never wraps */
    stg_store *store;
    sl_limits *limits;
    slim_tenant **tenants; /* each allocated alone: loaders keep pointers unlocked */
    size_t ntenants, cap;
    pthread_t preload;
    bool preload_started;
    atomic_bool stop;
};

/* A series read back from storage: its hash and when it was written. */
typedef struct slim_seed {
    uint64_t hash;
    int64_t written_ms; /* unix ms */
} slim_seed;

typedef struct slim_seeds {
    slim_seed *v;
    size_t n, cap;
} slim_seeds;

static void *preload_main(void *arg);

col_series_limiter *col_series_limiter_new(uint64_t window_ns, stg_store *store,
                                           sl_limits *limits) {
    col_series_limiter *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->loaded, NULL);
    l->window_ms = (window_ns != 0 ? window_ns : SLIM_DEFAULT_WINDOW_NS) / 1000000u;
    if (l->window_ms == 0) {
        l->window_ms = 1;
    }
    l->clock_base_ms = l->window_ms + 1;
    l->store = store;
    l->limits = limits;
    atomic_init(&l->stop, false);
    if (store != NULL && limits != NULL) {
        l->preload_started = pthread_create(&l->preload, NULL, preload_main, l) == 0;
    }
    return l;
}

void col_series_limiter_free(col_series_limiter *l) {
    if (l == NULL) {
        return;
    }
    atomic_store(&l->stop, true);
    if (l->preload_started) {
        pthread_join(l->preload, NULL);
    }
    for (size_t i = 0; i < l->ntenants; i++) {
        free(l->tenants[i]->slots);
        free(l->tenants[i]);
    }
    free(l->tenants);
    pthread_cond_destroy(&l->loaded);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* FNV-1a over names and values with separators that cannot occur in UTF-8
 * text, then a final mix; 0 is kept for empty slots. */
static uint64_t series_hash(const stg_label *labels, size_t nlabels) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < nlabels; i++) {
        const sl_str *parts[2] = {&labels[i].name, &labels[i].value};
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

/* The tenant's entry, created (loading when there is a store) when missing;
 * NULL when missing and !create, or out of memory. */
static slim_tenant *find_tenant(col_series_limiter *l, const char *tenant, bool create) {
    for (size_t i = 0; i < l->ntenants; i++) {
        if (strcmp(l->tenants[i]->tenant, tenant) == 0) {
            return l->tenants[i];
        }
    }
    slim_tenant *t;
    if (!create || sl_array_grow(&l->tenants, &l->cap, l->ntenants + 1, sizeof(*l->tenants)) != 0 ||
        (t = calloc(1, sizeof(*t))) == NULL) {
        return NULL;
    }
    l->tenants[l->ntenants++] = t;
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    t->loading = l->store != NULL;
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

/* The limiter's clock: monotonic, offset so that now - window never wraps. */
static uint64_t clock_ms(const col_series_limiter *l) {
    return sl_mono_nano() / 1000000u + l->clock_base_ms;
}

static int seed_cb(void *ud, const stg_label *labels, size_t nlabels, int64_t written_ms) {
    slim_seeds *s = ud;
    if (sl_array_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0) {
        return SL_ENOMEM;
    }
    s->v[s->n++] = (slim_seed){series_hash(labels, nlabels), written_ms};
    return 0;
}

/* Fills t (loading, mu held; released meanwhile) with the series storage
 * holds of the last window, each last seen when storage says it was
 * written. A storage error leaves the table counting from what arrives. */
static void load_tenant(col_series_limiter *l, slim_tenant *t) {
    pthread_mutex_unlock(&l->mu);
    slim_seeds seeds = {0};
    uint64_t t0 = sl_mono_nano();
    int64_t since = (int64_t)(sl_now_unix_nano() / 1000000u) - (int64_t)l->window_ms;
    int rc = stg_metrics_recent_series(l->store, t->tenant, since, seed_cb, &seeds);
    if (rc != 0) {
        SL_LOG_W("collector",
                 "active series of tenant %s could not be read back (%s); they are counted "
                 "again as they arrive",
                 t->tenant, sl_strerror(rc));
    }
    pthread_mutex_lock(&l->mu);
    uint64_t now = clock_ms(l);
    int64_t wall = (int64_t)(sl_now_unix_nano() / 1000000u);
    if (rebuild(l, t, t->n + seeds.n, now) == 0) {
        for (size_t i = 0; i < seeds.n; i++) {
            int64_t age = wall - seeds.v[i].written_ms;
            age = age < 0 ? 0 : age;
            if ((uint64_t)age > l->window_ms) {
                continue;
            }
            slim_slot *sl = lookup(t, seeds.v[i].hash);
            if (sl->hash == 0) {
                sl->hash = seeds.v[i].hash;
                t->n++;
            }
            sl->seen_ms = sl->seen_ms > now - (uint64_t)age ? sl->seen_ms : now - (uint64_t)age;
        }
        sl_metric_set(t->m_active, t->n);
    }
    if (seeds.n > 0) {
        SL_LOG_I("collector", "tenant %s: %zu active series read back from storage in %.1f ms",
                 t->tenant, t->n, (double)(sl_mono_nano() - t0) / 1e6);
    }
    free(seeds.v);
    t->loading = false;
    pthread_cond_broadcast(&l->loaded);
}

/* The tenant's entry once it is loaded (mu held); NULL when missing and
 * !create, or out of memory. */
static slim_tenant *ready_tenant(col_series_limiter *l, const char *tenant, bool create) {
    slim_tenant *t = find_tenant(l, tenant, false);
    if (t == NULL && create && (t = find_tenant(l, tenant, true)) != NULL && t->loading) {
        load_tenant(l, t);
    }
    while (t != NULL && t->loading) {
        pthread_cond_wait(&l->loaded, &l->mu);
    }
    return t;
}

static int preload_one(void *ud, sl_str name) {
    col_series_limiter *l = ud;
    if (atomic_load(&l->stop)) {
        return 1;
    }
    char tenant[65];
    snprintf(tenant, sizeof(tenant), "%.*s", (int)name.len, name.ptr);
    sl_tenant_limits lim;
    sl_limits_lookup(l->limits, tenant, &lim);
    if (lim.max_active_series > 0) {
        pthread_mutex_lock(&l->mu);
        ready_tenant(l, tenant, true);
        pthread_mutex_unlock(&l->mu);
    }
    return 0;
}

static void *preload_main(void *arg) {
    col_series_limiter *l = arg;
    int rc = stg_list_tenants(l->store, preload_one, l);
    if (rc < 0) {
        SL_LOG_W("collector", "listing tenants for their active series: %s", sl_strerror(rc));
    }
    return NULL;
}

bool col_series_admit(col_series_gate *g, const stg_mseries *s, size_t n) {
    if (g == NULL || g->lim == NULL || g->max == 0 || n == 0) {
        return true;
    }
    col_series_limiter *l = g->lim;
    bool ok = true;
    pthread_mutex_lock(&l->mu);
    slim_tenant *t = ready_tenant(l, g->tenant, true);
    uint64_t now = clock_ms(l); /* under the lock: last-seen times never pass it */
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
        fresh += lookup(t, series_hash(s[i].labels, s[i].nlabels))->hash == 0;
    }
    if (fresh > 0 && t->n + fresh > g->max && now - t->last_sweep_ms >= 1000) {
        /* Expire first: a refusal must not count series that went idle. */
        if (rebuild(l, t, t->n, now) == 0) {
            fresh = 0;
            for (size_t i = 0; i < n; i++) {
                fresh += lookup(t, series_hash(s[i].labels, s[i].nlabels))->hash == 0;
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
        uint64_t h = series_hash(s[i].labels, s[i].nlabels);
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
    slim_tenant *t = ready_tenant(l, tenant, false);
    if (t != NULL && rebuild(l, t, t->n, clock_ms(l)) == 0) {
        n = t->n;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}
