/*
 * Per-tenant limits: ingestion rates per signal, attribute limits, active
 * series, retention per signal. A table holds defaults and per-tenant
 * overrides; lookups copy one tenant's figures out under a read lock, so a
 * reload (SIGHUP) can swap the table while requests are being checked.
 * Zero always means "no limit" (or, for retention, "the store's default").
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef SL_LIMITS_H
#define SL_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define SL_LIMITS_NSIGNALS 3 /* traces, logs, metrics: the order of stg_signal */

typedef struct sl_tenant_limits {
    double rate[SL_LIMITS_NSIGNALS]; /* items (spans, log records, data points) per second */
    double burst_seconds;            /* bucket size as seconds of rate; default 1 */
    uint32_t max_attributes;         /* per span, event, link or log record; extras dropped */
    uint32_t max_attr_value_length;  /* bytes of a string value; longer ones truncated */
    uint64_t max_active_series;      /* metrics series per tenant */
    uint64_t retention_ns[SL_LIMITS_NSIGNALS];
} sl_tenant_limits;

typedef struct sl_limits sl_limits;

/* An empty table: every tenant gets all-zero limits. 0 or SL_ENOMEM. */
int sl_limits_new(sl_limits **out);
void sl_limits_free(sl_limits *l);

/* A table under construction (not shared yet): set the defaults, then
 * overrides. A tenant's override starts from the defaults set so far. */
void sl_limits_set_defaults(sl_limits *l, const sl_tenant_limits *d);
/* Returns a pointer to the tenant's row for filling in (created from the
 * defaults), or NULL when out of memory. */
sl_tenant_limits *sl_limits_tenant(sl_limits *l, const char *tenant);

/* Moves the rows of from into l (replacing l's) and frees from. */
void sl_limits_swap_in(sl_limits *l, sl_limits *from);

/* Copies the tenant's limits (its override, else the defaults). l may be
 * NULL: all zero. */
void sl_limits_lookup(sl_limits *l, const char *tenant, sl_tenant_limits *out);

#endif
