/*
 * Circuit breaker state machine and backoff (see sf_breaker.h). One mutex per
 * breaker guards its counters; the on_change callback runs after it is
 * released.
 */
#include "sf/sf_breaker.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 10

struct sf_breaker {
    char *name;
    sf_breaker_options o;
    pthread_mutex_t mu;
    sf_breaker_state state;
    unsigned consecutive; /* failures in a row (CLOSED) */
    uint64_t opened_at;   /* ms, OPEN */
    unsigned probes_out;  /* HALF_OPEN: probes in flight */
    unsigned probes_ok;   /* HALF_OPEN: successes in a row */
    uint64_t slot_start[SLOTS];
    unsigned ok[SLOTS], bad[SLOTS];
};

void sf_breaker_options_init(sf_breaker_options *o) {
    memset(o, 0, sizeof(*o));
    o->consecutive_failures = 5;
    o->error_ratio = 0.5;
    o->min_calls = 10;
    o->window_ms = 10000;
    o->open_ms = 3000;
    o->probes = 2;
}

static uint64_t clock_ms(const sf_breaker *b) {
    return b->o.now_ms != NULL ? b->o.now_ms(b->o.clock_userdata) : rt_mono_ms();
}

int sf_breaker_create(const char *name, const sf_breaker_options *o, sf_breaker **out) {
    *out = NULL;
    if (name == NULL || o == NULL || o->window_ms < SLOTS || o->probes == 0) {
        return SL_EINVAL;
    }
    sf_breaker *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->name = strdup(name)) == NULL) {
        free(b);
        return SL_ENOMEM;
    }
    b->o = *o;
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return 0;
}

void sf_breaker_destroy(sf_breaker *b) {
    if (b == NULL) {
        return;
    }
    pthread_mutex_destroy(&b->mu);
    free(b->name);
    free(b);
}

static void window_clear(sf_breaker *b) {
    memset(b->slot_start, 0, sizeof b->slot_start);
    memset(b->ok, 0, sizeof b->ok);
    memset(b->bad, 0, sizeof b->bad);
}

/* Moves b to state `to`; returns the old state for the callback. */
static sf_breaker_state transition(sf_breaker *b, sf_breaker_state to, uint64_t now) {
    sf_breaker_state from = b->state;
    b->state = to;
    b->consecutive = 0;
    b->probes_out = 0;
    b->probes_ok = 0;
    if (to == SF_BREAKER_OPEN) {
        b->opened_at = now;
    }
    if (to == SF_BREAKER_CLOSED) {
        window_clear(b);
    }
    return from;
}

static void notify(sf_breaker *b, sf_breaker_state from, sf_breaker_state to) {
    if (from != to && b->o.on_change != NULL) {
        b->o.on_change(b->o.userdata, b->name, from, to);
    }
}

int sf_breaker_allow(sf_breaker *b) {
    int rc = 0;
    sf_breaker_state from = SF_BREAKER_CLOSED, to = SF_BREAKER_CLOSED;
    pthread_mutex_lock(&b->mu);
    uint64_t now = clock_ms(b);
    if (b->state == SF_BREAKER_OPEN) {
        if (now - b->opened_at >= b->o.open_ms) {
            from = transition(b, SF_BREAKER_HALF_OPEN, now);
            to = SF_BREAKER_HALF_OPEN;
        } else {
            rc = SF_EOPEN;
        }
    }
    if (rc == 0 && b->state == SF_BREAKER_HALF_OPEN) {
        if (b->probes_out + b->probes_ok >= b->o.probes) {
            rc = SF_EOPEN;
        } else {
            b->probes_out++;
        }
    }
    pthread_mutex_unlock(&b->mu);
    notify(b, from, to);
    return rc;
}

/* Adds an outcome to the sliding window; returns whether the ratio trips. */
static bool window_add(sf_breaker *b, uint64_t now, bool success) {
    uint64_t slot_ms = b->o.window_ms / SLOTS;
    uint64_t start = now - now % slot_ms;
    size_t i = (size_t)((now / slot_ms) % SLOTS);
    if (b->slot_start[i] != start) {
        b->slot_start[i] = start;
        b->ok[i] = b->bad[i] = 0;
    }
    if (success) {
        b->ok[i]++;
    } else {
        b->bad[i]++;
    }
    unsigned ok = 0, bad = 0;
    for (size_t k = 0; k < SLOTS; k++) {
        if (b->slot_start[k] + b->o.window_ms > now) {
            ok += b->ok[k];
            bad += b->bad[k];
        }
    }
    return ok + bad >= b->o.min_calls && b->o.error_ratio > 0 &&
           (double)bad >= b->o.error_ratio * (double)(ok + bad);
}

void sf_breaker_record(sf_breaker *b, bool success) {
    sf_breaker_state from = SF_BREAKER_CLOSED, to = SF_BREAKER_CLOSED;
    pthread_mutex_lock(&b->mu);
    uint64_t now = clock_ms(b);
    switch (b->state) {
    case SF_BREAKER_CLOSED: {
        bool trip = window_add(b, now, success);
        b->consecutive = success ? 0 : b->consecutive + 1;
        if (trip ||
            (b->o.consecutive_failures > 0 && b->consecutive >= b->o.consecutive_failures)) {
            from = transition(b, SF_BREAKER_OPEN, now);
            to = SF_BREAKER_OPEN;
        }
        break;
    }
    case SF_BREAKER_HALF_OPEN:
        if (b->probes_out > 0) {
            b->probes_out--;
        }
        if (!success) {
            from = transition(b, SF_BREAKER_OPEN, now);
            to = SF_BREAKER_OPEN;
        } else if (++b->probes_ok >= b->o.probes) {
            from = transition(b, SF_BREAKER_CLOSED, now);
            to = SF_BREAKER_CLOSED;
        }
        break;
    case SF_BREAKER_OPEN:
        /* A call allowed before the breaker opened: it changes nothing. */
        break;
    }
    pthread_mutex_unlock(&b->mu);
    notify(b, from, to);
}

sf_breaker_state sf_breaker_get_state(sf_breaker *b) {
    pthread_mutex_lock(&b->mu);
    sf_breaker_state s = b->state;
    pthread_mutex_unlock(&b->mu);
    return s;
}

const char *sf_breaker_state_name(sf_breaker_state s) {
    static const char *names[] = {"closed", "open", "half_open"};
    return (unsigned)s < 3 ? names[s] : "unknown";
}

unsigned sf_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, double r01) {
    if (attempt == 0) {
        return 0;
    }
    uint64_t d = base_ms;
    for (unsigned i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    if (r01 < 0) {
        r01 = 0;
    }
    if (r01 >= 1) {
        r01 = 0.999999;
    }
    return (unsigned)(d / 2 + (uint64_t)((double)(d - d / 2) * r01));
}
