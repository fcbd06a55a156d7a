/*
 * Token-bucket rate limits keyed by a string (an API key, a tenant): each key
 * has a bucket of `burst` tokens refilled at `rate` per second; a request
 * takes one token or is refused with the whole seconds until one is back
 * (the Retry-After value). The number of buckets is bounded: past max_keys,
 * buckets that have refilled completely (idle keys) are dropped, and if none
 * has, the least recently used one. Thread-safe (one mutex; the critical
 * section is a hash lookup and a few arithmetic operations).
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_limiter gw_limiter;

/* rate: tokens per second (> 0); burst: bucket size (>= 1). Returns 0,
 * SL_EINVAL or SL_ENOMEM. */
int gw_limiter_create(double rate, double burst, size_t max_keys, gw_limiter **out);
void gw_limiter_destroy(gw_limiter *l);

typedef struct gw_limit_result {
    bool allowed;
    uint32_t retry_after_s; /* when refused: >= 1 */
    uint32_t remaining;     /* whole tokens left after this request */
    uint32_t limit;         /* the burst */
} gw_limit_result;

/* Takes one token from key's bucket at now_ns (monotonic). Keys longer than
 * 256 bytes are cut (a long key still gets a bucket). */
void gw_limiter_take(gw_limiter *l, const char *key, uint64_t now_ns, gw_limit_result *res);

/* Number of buckets held (tests). */
size_t gw_limiter_size(gw_limiter *l);

#endif
