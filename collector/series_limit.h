/*
 * The per-tenant active series limit (max_active_series of the limits file).
 *
 * A tenant's active series are the Prometheus series (the full label set)
 * it wrote within the last window (--active-series-window, 10 minutes by
 * default, as Mimir counts active series): OTLP metrics and the series
 * derived at ingest from spans and logs alike. A data point whose series
 * would take the tenant past its limit is refused with all its series (a
 * histogram point is never half stored); series already active keep being
 * accepted. Series not written within the window expire and stop counting.
 *
 * Only tenants with a limit are tracked: 16 bytes per slot, twice the active
 * series at most, so the memory follows the configured limits. The limit is
 * the one copied at admission, so a SIGHUP that changes the limits file
 * applies to the next request; a lowered limit refuses new series until
 * enough old ones expire. A series admitted by a request that is refused
 * later (rate limit, full disk) still counts until it expires.
 *
 * The set lives in memory and starts from storage: when a tenant is first
 * tracked (at start for the tenants on disk with a limit, by a background
 * thread; otherwise at its first request, or when a reload gives it a
 * limit), the series it wrote within the window are read back from the
 * metrics WAL and the current window(s) (stg_metrics_recent_series), each
 * last seen when storage says it was written. So a restart neither resets
 * the count nor lets a tenant add a second limit's worth of series.
 * Requests of a tenant being read back wait for it; other tenants do not.
 *
 * /metrics: sightline_active_series{tenant} (tenants with a limit) and
 * sightline_discarded_samples_total{tenant, reason="per_tenant_series_limit"},
 * the samples (one per series of each refused point) not stored.
 *
 * Thread-safety: one mutex (never held while storage is read); decode
 * workers call col_series_admit at once.
 */
#ifndef COL_SERIES_LIMIT_H
#define COL_SERIES_LIMIT_H

#include "storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct col_series_limiter col_series_limiter;

/* window_ns: how long a series stays active without samples (0: 10 min).
 * store (borrowed, must outlive the limiter): where tenants' recent series
 * are read back from; NULL: every tenant starts empty. limits (borrowed):
 * with a store, a thread reads back at once every tenant on disk that has a
 * max_active_series. Returns NULL when out of memory. */
col_series_limiter *col_series_limiter_new(uint64_t window_ns, stg_store *store, sl_limits *limits);
/* Stops the read-back thread (after the tenant it is reading) and frees l.
 * NULL is fine. */
void col_series_limiter_free(col_series_limiter *l);

/* What a decode worker checks one request's series against. A gate with
 * lim == NULL or max == 0 admits everything. */
typedef struct col_series_gate {
    col_series_limiter *lim;
    const char *tenant;
    uint64_t max;            /* the tenant's max_active_series */
    uint64_t refused_points; /* output: points (or span/log groups) refused */
    uint64_t refused_series; /* output: series (samples) refused */
} col_series_gate;

/* Admits the n series of one data point together: true when they are all
 * active already or the new ones fit under the limit (they become active,
 * and every one's last-seen time is now), false when they do not (nothing is
 * recorded; the refusal is counted in g and in /metrics). g may be NULL. */
bool col_series_admit(col_series_gate *g, const stg_mseries *s, size_t n);

/* Active series of a tenant now (after expiring old ones); 0 when it is
 * not tracked. For tests and diagnostics. */
uint64_t col_series_active(col_series_limiter *l, const char *tenant);

#endif
