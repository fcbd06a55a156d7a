/*
 * The per-tenant limits table (see sl_limits.h): defaults plus a small
 * array of overrides searched linearly (tenants with overrides are few).
 */
#include "sl_limits.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
    char tenant[65];
    sl_tenant_limits lim;
} row;

struct sl_limits {
    pthread_rwlock_t lock;
    sl_tenant_limits defaults;
    row *rows;
    size_t n, cap;
};

int sl_limits_new(sl_limits **out) {
    sl_limits *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return SL_ENOMEM;
    }
    pthread_rwlock_init(&l->lock, NULL);
    l->defaults.burst_seconds = 1;
    *out = l;
    return 0;
}

void sl_limits_free(sl_limits *l) {
    if (l != NULL) {
        pthread_rwlock_destroy(&l->lock);
        free(l->rows);
        free(l);
    }
}

void sl_limits_set_defaults(sl_limits *l, const sl_tenant_limits *d) {
    l->defaults = *d;
}

sl_tenant_limits *sl_limits_tenant(sl_limits *l, const char *tenant) {
    size_t tl = strlen(tenant);
    if (tl > 64) {
        return NULL;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->rows[i].tenant, tenant) == 0) {
            return &l->rows[i].lim;
        }
    }
    if (sl_array_grow(&l->rows, &l->cap, l->n + 1, sizeof(*l->rows)) != 0) {
        return NULL;
    }
    row *r = &l->rows[l->n++];
    memcpy(r->tenant, tenant, tl + 1);
    r->lim = l->defaults;
    return &r->lim;
}

void sl_limits_swap_in(sl_limits *l, sl_limits *from) {
    pthread_rwlock_wrlock(&l->lock);
    row *old = l->rows;
    l->defaults = from->defaults;
    l->rows = from->rows;
    l->n = from->n;
    l->cap = from->cap;
    pthread_rwlock_unlock(&l->lock);
    free(old);
    from->rows = NULL;
    sl_limits_free(from);
}

void sl_limits_lookup(sl_limits *l, const char *tenant, sl_tenant_limits *out) {
    if (l == NULL) {
        memset(out, 0, sizeof(*out));
        out->burst_seconds = 1;
        return;
    }
    pthread_rwlock_rdlock(&l->lock);
    *out = l->defaults;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->rows[i].tenant, tenant) == 0) {
            *out = l->rows[i].lim;
            break;
        }
    }
    pthread_rwlock_unlock(&l->lock);
}
