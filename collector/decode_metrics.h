/*
 * OTLP metrics -> Prometheus series, as Prometheus's own OTLP receiver
 * (2.x, default settings) translates them, plus one label of our own:
 *
 * - metric names: the name's words (runs of [a-zA-Z0-9]; every other
 *   character separates, '_' and ':' included) joined with '_'; then the
 *   unit's word (s -> seconds, By -> bytes, ..., unknown units cleaned the
 *   same way; "1" and annotations containing '{' or '}' add nothing) and
 *   "per" + the per-unit's word (s -> second, m -> minute, ...) unless the
 *   name already has that word; monotonic sums end with "total" and gauges of
 *   unit "1" with "ratio" (moved to the end when already there); '_' before a
 *   leading digit;
 * - label names: characters outside [a-zA-Z0-9_] become '_', a leading digit
 *   gets "key_", a single leading '_' gets "key"; attributes whose names
 *   collide after that are joined with ';' in key order; values are the
 *   attributes' text (doubles as Go's 'f' shortest, arrays and maps as JSON);
 * - resource: service.name (with service.namespace: "ns/name") -> job,
 *   service.instance.id -> instance; when the resource has other attributes,
 *   they go into one target_info{job, instance, ...} sample (value 1) per
 *   resource, at its latest sample time; the scope adds no labels;
 * - ours: service.name -> service_name on every series of the resource
 *   (target_info included), the label the span-derived RED series carry, so
 *   that the two join on it;
 * - gauge -> gauge; sum -> counter (monotonic, _total) or gauge; histogram ->
 *   _bucket{le} (cumulative counts, +Inf) / _sum / _count; exponential
 *   histogram -> the same classic buckets, le = the upper bound of each
 *   exponential bucket (negative buckets, the zero bucket at le =
 *   zero_threshold, positive buckets); summary -> {quantile} / _sum / _count;
 * - delta sums and delta histograms become STG_MS_DELTA series (accumulated
 *   into cumulative series by storage); the NO_RECORDED_VALUE flag becomes a
 *   Prometheus stale marker on every series of the point; exemplars are kept
 *   (histogram exemplars on the bucket that holds their value).
 *
 * Invalid data points are rejected one by one (partial success): no
 * timestamp, no value, a sum or histogram without aggregation temporality,
 * bucket counts that do not match the bounds (or unsorted bounds), an
 * exponential histogram scale outside [-10, 20] or over 1024 buckets per
 * side, a quantile outside [0, 1], a metric without a name or data.
 *
 * Thread-safety: reentrant; concurrent calls need distinct arenas.
 */
#ifndef COL_DECODE_METRICS_H
#define COL_DECODE_METRICS_H

#include "series_limit.h"
#include "sl_arena.h"
#include "storage.h"

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef struct col_mbatch {
    col_series_gate *gate; /* input: the tenant's active series limit; NULL: none */
    stg_mseries *series;   /* in the arena */
    size_t nseries, cap;
    stg_metric_meta *meta; /* one per metric family */
    size_t nmeta, mcap;
    uint64_t points;   /* data points accepted */
    uint64_t rejected; /* data points rejected */
} col_mbatch;

/*
 * Converts req into out (zero it first, then set gate). Points whose series
 * the gate refuses are rejected like invalid ones. Returns 0, also when points were
 * rejected (err then describes the first, e.g. "metric \"x\" point 2: sum
 * without aggregation temporality"), or SL_ENOMEM when the arena's cap was
 * reached. Everything in out lives in a or is borrowed from req.
 */
int col_metrics_to_series(
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
    sl_arena *a, col_mbatch *out, char *err, size_t err_size);

/* Prometheus names for OTel ones (exposed for tests). Results in a. */
/* Decodes an ExportMetricsServiceRequest into a's memory as protobuf-c
 * would, without protobuf-c, for the shapes exporters send (pb_metrics.c).
 * Returns 0 with *out set; SL_EUNSUPPORTED when the body is outside those
 * shapes or malformed (decode it with protobuf-c: it decides), or SL_ENOMEM
 * (the arena's cap). On failure the arena may hold partial allocations. */
int col_metrics_unpack(
    const uint8_t *buf, size_t len, sl_arena *a,
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest **out);

sl_str col_prom_metric_name(sl_arena *a, sl_str name, sl_str unit, bool gauge, bool counter);
sl_str col_prom_label_name(sl_arena *a, sl_str key);
/* The unit suffix ("seconds", "bytes_per_second", "" when none). */
sl_str col_prom_unit(sl_arena *a, sl_str unit);
/* A float as Prometheus's OTLP receiver writes le and quantile values (Go's
 * 'f' shortest: "0.5", "1000000", "+Inf"). buf holds SL_FMT_DOUBLE_MAX bytes;
 * returns the length. */
size_t col_prom_float(double v, char *buf);

#endif
