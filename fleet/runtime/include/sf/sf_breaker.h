/*
 * A circuit breaker per upstream, and the retry backoff.
 *
 * States: CLOSED (calls pass; outcomes are counted), OPEN (calls are refused
 * at once with SF_EOPEN), HALF_OPEN (a few probe calls pass; their success
 * closes the breaker, a failure opens it again).
 *   CLOSED -> OPEN when `consecutive_failures` calls failed in a row, or when
 *     the window (the last `window_ms`, in ten slots) holds at least
 *     `min_calls` outcomes of which a ratio >= `error_ratio` failed;
 *   OPEN -> HALF_OPEN once `open_ms` passed (the cool-down), on the next call;
 *   HALF_OPEN -> CLOSED after `probes` successful probes in a row;
 *   HALF_OPEN -> OPEN on any failed probe (a new cool-down).
 * At most `probes` probe calls are in flight in HALF_OPEN; others are
 * refused. The clock is injectable for tests. Thread-safe (one mutex).
 */
#ifndef SF_BREAKER_H
#define SF_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SF_BREAKER_CLOSED = 0,
    SF_BREAKER_OPEN = 1,
    SF_BREAKER_HALF_OPEN = 2
} sf_breaker_state;

typedef struct sf_breaker sf_breaker;

typedef struct sf_breaker_options {
    unsigned consecutive_failures; /* 5 */
    double error_ratio;            /* 0.5 */
    unsigned min_calls;            /* 10: the ratio needs this many outcomes in the window */
    unsigned window_ms;            /* 10000 */
    unsigned open_ms;              /* 3000: cool-down before probing */
    unsigned probes;               /* 2 */
    /* Milliseconds from any monotonic origin; NULL = CLOCK_MONOTONIC. */
    uint64_t (*now_ms)(void *clock_userdata);
    void *clock_userdata;
    /* Called (under no lock) on each transition, e.g. to log or export it. */
    void (*on_change)(void *userdata, const char *name, sf_breaker_state from, sf_breaker_state to);
    void *userdata;
} sf_breaker_options;

void sf_breaker_options_init(sf_breaker_options *o);

/* name is copied (used in on_change). The caller owns *out. Errors:
 * SL_EINVAL, SL_ENOMEM. */
int sf_breaker_create(const char *name, const sf_breaker_options *o, sf_breaker **out);
void sf_breaker_destroy(sf_breaker *b);

/* Asks to make a call: 0 (go ahead, then report its outcome with
 * sf_breaker_record) or SF_EOPEN (refused: do not call, do not record). */
int sf_breaker_allow(sf_breaker *b);
/* Reports the outcome of an allowed call. */
void sf_breaker_record(sf_breaker *b, bool success);
sf_breaker_state sf_breaker_get_state(sf_breaker *b);
const char *sf_breaker_state_name(sf_breaker_state s);

/* Retry delay before attempt number `attempt` (1 = the first retry):
 * exponential from base_ms, capped at max_ms, with "equal jitter": uniformly
 * in [d/2, d] where d = min(max_ms, base_ms * 2^(attempt-1)). r01 is a random
 * number in [0, 1). */
unsigned sf_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, double r01);

#ifdef __cplusplus
}
#endif

#endif
