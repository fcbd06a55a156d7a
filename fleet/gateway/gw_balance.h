/*
 * Load balancing over the instances of one upstream: weighted round-robin
 * (weight from an instance tag "weight=N", default 1; all weights equal is
 * plain round-robin) and a canary split that sends a fixed share of requests
 * (per mille) to the instances whose version matches the canary pattern.
 * The split is counted, not random: of every 1000 requests exactly
 * canary_permille go to the canary (spread evenly), while canary instances
 * exist; with no canary instance everything goes to the stable ones and vice
 * versa. State is two atomic counters per route: thread-safe, lock-free.
 */
#ifndef GW_BALANCE_H
#define GW_BALANCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_target {
    const char *id;
    const char *address;
    const char *version;
    uint32_t weight; /* >= 1 */
} gw_target;

typedef struct gw_balancer {
    atomic_uint_fast64_t requests; /* drives the canary split */
    atomic_uint_fast64_t stable_rr;
    atomic_uint_fast64_t canary_rr;
} gw_balancer;

void gw_balancer_init(gw_balancer *b);

/* Reads the weight from tags ("weight=N", 1..1000); 1 when absent or bad. */
uint32_t gw_weight_from_tags(const char *const *tags, size_t n_tags);

/* A filter for instances that may not take traffic now (an open breaker);
 * NULL admits every instance. */
typedef bool (*gw_usable_fn)(void *ud, const gw_target *t);

/* Picks an instance among n targets. canary_version NULL or permille 0
 * disables the split. Returns the index, or -1 when no target is usable.
 * *canary tells whether the pick came from the canary pool. */
int gw_balance_pick(gw_balancer *b, const gw_target *targets, size_t n, const char *canary_version,
                    uint32_t canary_permille, gw_usable_fn usable, void *ud, bool *canary);

#endif
