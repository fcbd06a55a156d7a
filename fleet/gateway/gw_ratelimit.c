/*
 * Token buckets in an edge_hmap with a bounded count; see gw_ratelimit.h.
 */
#include "gw_ratelimit.h"

#include "edge_hmap.h"
#include "sl_err.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 256

typedef struct bucket {
    edge_hnode node;
    double tokens;
    uint64_t updated_ns;
    size_t key_len;
    char key[]; /* key_len bytes + NUL */
} bucket;

struct gw_limiter {
    pthread_mutex_t mu;
    edge_hmap buckets;
    double rate, burst;
    size_t max_keys;
};

int gw_limiter_create(double rate, double burst, size_t max_keys, gw_limiter **out) {
    *out = NULL;
    if (!(rate > 0) || !(burst >= 1) || max_keys == 0) {
        return SL_EINVAL;
    }
    gw_limiter *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    edge_hmap_init(&l->buckets);
    l->rate = rate;
    l->burst = burst;
    l->max_keys = max_keys;
    *out = l;
    return 0;
}

void gw_limiter_destroy(gw_limiter *l) {
    if (l == NULL) {
        return;
    }
    size_t b;
    edge_hnode *n = edge_hmap_first(&l->buckets, &b);
    while (n != NULL) {
        edge_hnode *next = edge_hmap_next(&l->buckets, n, &b);
        free(EDGE_CONTAINER(n, bucket, node));
        n = next;
    }
    edge_hmap_free(&l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void refill(const gw_limiter *l, bucket *bk, uint64_t now_ns) {
    if (now_ns > bk->updated_ns) {
        bk->tokens += (double)(now_ns - bk->updated_ns) / 1e9 * l->rate;
        if (bk->tokens > l->burst) {
            bk->tokens = l->burst;
        }
        bk->updated_ns = now_ns;
    }
}

/* Drops full (idle) buckets; if none was full, the least recently used. */
static void evict(gw_limiter *l, uint64_t now_ns) {
    size_t b;
    bucket *oldest = NULL;
    size_t dropped = 0;
    edge_hnode *n = edge_hmap_first(&l->buckets, &b);
    while (n != NULL) {
        edge_hnode *next = edge_hmap_next(&l->buckets, n, &b);
        bucket *bk = EDGE_CONTAINER(n, bucket, node);
        refill(l, bk, now_ns);
        if (bk->tokens >= l->burst) {
            edge_hmap_del(&l->buckets, n);
            free(bk);
            dropped++;
        } else if (oldest == NULL || bk->updated_ns < oldest->updated_ns) {
            oldest = bk;
        }
        n = next;
    }
    if (dropped == 0 && oldest != NULL) {
        edge_hmap_del(&l->buckets, &oldest->node);
        free(oldest);
    }
}

void gw_limiter_take(gw_limiter *l, const char *key, uint64_t now_ns, gw_limit_result *res) {
    size_t len = strnlen(key, KEY_MAX);
    memset(res, 0, sizeof(*res));
    res->limit = (uint32_t)l->burst;
    pthread_mutex_lock(&l->mu);
    edge_hnode *n = edge_hmap_get(&l->buckets, key, len);
    bucket *bk;
    if (n != NULL) {
        bk = EDGE_CONTAINER(n, bucket, node);
        refill(l, bk, now_ns);
    } else {
        if (l->buckets.count >= l->max_keys) {
            evict(l, now_ns);
        }
        bk = malloc(sizeof(*bk) + len + 1);
        if (bk == NULL) {
            /* Out of memory: admit (a limiter must not take the gateway down). */
            pthread_mutex_unlock(&l->mu);
            res->allowed = true;
            return;
        }
        memcpy(bk->key, key, len);
        bk->key[len] = '\0';
        bk->key_len = len;
        bk->tokens = l->burst;
        bk->updated_ns = now_ns;
        if (edge_hmap_put(&l->buckets, &bk->node, bk->key, len) != 0) {
            free(bk);
            pthread_mutex_unlock(&l->mu);
            res->allowed = true;
            return;
        }
    }
    if (bk->tokens >= 1.0) {
        bk->tokens -= 1.0;
        res->allowed = true;
        res->remaining = (uint32_t)bk->tokens;
    } else {
        double wait_s = (1.0 - bk->tokens) / l->rate;
        double up = ceil(wait_s);
        res->retry_after_s = up < 1 ? 1 : up > 86400 ? 86400 : (uint32_t)up;
    }
    pthread_mutex_unlock(&l->mu);
}

size_t gw_limiter_size(gw_limiter *l) {
    pthread_mutex_lock(&l->mu);
    size_t n = l->buckets.count;
    pthread_mutex_unlock(&l->mu);
    return n;
}
