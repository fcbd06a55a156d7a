/*
 * Weighted round-robin with a counted canary split; see gw_balance.h.
 */
#include "gw_balance.h"

#include "edge_version.h"

#include <stdlib.h>
#include <string.h>

void gw_balancer_init(gw_balancer *b) {
    atomic_init(&b->requests, 0);
    atomic_init(&b->stable_rr, 0);
    atomic_init(&b->canary_rr, 0);
}

uint32_t gw_weight_from_tags(const char *const *tags, size_t n_tags) {
    for (size_t k = 0; k < n_tags; k++) {
        if (strncmp(tags[k], "weight=", 7) == 0) {
            char *end;
            long w = strtol(tags[k] + 7, &end, 10);
            if (*end == '\0' && w >= 1 && w <= 1000) {
                return (uint32_t)w;
            }
        }
    }
    return 1;
}

/* Picks within one pool (targets whose canary-ness equals want) by weighted
 * round-robin on the pool's counter; unusable targets are skipped by walking
 * on from the chosen slot. Returns -1 when the pool has no usable target. */
static int pick_pool(atomic_uint_fast64_t *rr, const gw_target *t, size_t n, const bool *is_canary,
                     bool want, gw_usable_fn usable, void *ud) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_canary[i] == want) {
            total += t[i].weight ? t[i].weight : 1;
        }
    }
    if (total == 0) {
        return -1;
    }
    uint64_t slot = atomic_fetch_add(rr, 1) % total;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_canary[i] != want) {
            continue;
        }
        uint64_t w = t[i].weight ? t[i].weight : 1;
        if (slot < w) {
            start = i;
            break;
        }
        slot -= w;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (is_canary[i] == want && (usable == NULL || usable(ud, &t[i]))) {
            return (int)i;
        }
    }
    return -1;
}

int gw_balance_pick(gw_balancer *b, const gw_target *targets, size_t n, const char *canary_version,
                    uint32_t canary_permille, gw_usable_fn usable, void *ud, bool *canary) {
    *canary = false;
    if (n == 0) {
        return -1;
    }
    bool stack[64];
    bool *is_canary = n <= 64 ? stack : calloc(n, sizeof(*is_canary));
    if (is_canary == NULL) {
        return -1;
    }
    bool split = canary_version != NULL && canary_permille > 0;
    size_t n_canary = 0;
    for (size_t i = 0; i < n; i++) {
        is_canary[i] = split && edge_version_match(canary_version, targets[i].version);
        n_canary += is_canary[i];
    }
    bool want = false;
    if (n_canary == n) {
        want = true;
    } else if (n_canary > 0) {
        /* Request k goes to the canary when floor((k+1)p/1000) > floor(kp/1000):
         * exactly p of every 1000, evenly spread. */
        uint64_t k = atomic_fetch_add(&b->requests, 1);
        uint64_t p = canary_permille > 1000 ? 1000 : canary_permille;
        want = ((k + 1) * p) / 1000 > (k * p) / 1000;
    }
    int idx =
        pick_pool(want ? &b->canary_rr : &b->stable_rr, targets, n, is_canary, want, usable, ud);
    if (idx < 0 && n_canary > 0 && n_canary < n) {
        /* The chosen pool has no usable instance: the other one serves. */
        want = !want;
        idx = pick_pool(want ? &b->canary_rr : &b->stable_rr, targets, n, is_canary, want, usable,
                        ud);
    }
    *canary = idx >= 0 && want;
    if (is_canary != stack) {
        free(is_canary);
    }
    return idx;
}
