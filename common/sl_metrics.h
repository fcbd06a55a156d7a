/*
 * The server's own metrics (what GET /metrics exposes): counters, gauges and
 * histograms registered by name + label text, updated with atomics from any
 * thread, rendered in the Prometheus text format. Registration takes a mutex
 * and returns a stable pointer; callers cache it and update lock-free.
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include "sl_buf.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct sl_metric sl_metric;

/* Returns the counter, gauge or histogram called name with the given label text
 * (e.g. `signal="traces",code="200"`, or "" for none), creating it on first
 * use. help and, for histograms, the upper bounds (seconds, ascending, at most
 * 16) are taken from the first registration. Returns NULL only when out of
 * memory; the update functions accept NULL and do nothing. */
sl_metric *sl_counter(const char *name, const char *labels, const char *help);
sl_metric *sl_gauge(const char *name, const char *labels, const char *help);
sl_metric *sl_histogram(const char *name, const char *labels, const char *help,
                        const double *bounds, int nbounds);

void sl_metric_add(sl_metric *m, uint64_t n);   /* counters and gauges */
void sl_metric_sub(sl_metric *m, uint64_t n);   /* gauges */
void sl_metric_set(sl_metric *m, uint64_t v);   /* gauges */
void sl_metric_observe(sl_metric *m, double v); /* histograms */
uint64_t sl_metric_value(const sl_metric *m);

/* Appends every registered metric in the Prometheus text exposition format. */
int sl_metrics_render(sl_buf *out);

/* Latency buckets in seconds used by the request and commit histograms. */
extern const double sl_latency_bounds[];
extern const int sl_latency_nbounds;

#endif
