/*
 * Metrics derived at ingest from other signals, stored as ordinary series in
 * the same durable batch as the request they come from:
 *
 * - span RED metrics: traces_span_metrics_calls_total (counter) and
 *   traces_span_metrics_duration_seconds (histogram: _bucket{le}, _sum,
 *   _count; the OpenTelemetry Collector spanmetrics connector's default
 *   buckets, 2 ms .. 15 s), labels service_name, span_name, span_kind
 *   (SPAN_KIND_SERVER, ...), status_code (STATUS_CODE_UNSET/OK/ERROR) and
 *   job (= service_name, so that PromQL "by (job)" works);
 * - log counts: logs_records_total{service_name, job, severity} with severity
 *   the SeverityNumber's range name (trace, debug, info, warn, error, fatal;
 *   "unspecified" for 0).
 *
 * A decode worker aggregates each request's items by group (service, span
 * name, kind, status; or service, severity) into col_dgroup entries the
 * request owns. The writer merges the entries of every request of a batch
 * (per tenant) and encodes each group's series as one delta each, stamped
 * with the commit's time, in one metrics WAL record of the same durable batch
 * (col_dgroups_encode). So the series cost is paid once per batch, not once
 * per request, and the writer's times never go backwards, which the
 * appender's out-of-order rule needs (requests decoded in parallel commit in
 * another order). Storage sums the deltas into cumulative series and keeps at
 * most one sample per series per cut (ms_apply, MS_DELTA_MERGE_MS).
 *
 * Thread-safety: reentrant.
 */
#ifndef COL_DERIVE_METRICS_H
#define COL_DERIVE_METRICS_H

#include "series_limit.h"
#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"

#include <stddef.h>
#include <stdint.h>

enum { COL_DG_SPAN = 1, COL_DG_LOG = 2 };
#define COL_DV_COUNTS 17 /* span duration buckets, +Inf last */

/* One group of one request, followed by its service and span name bytes
 * (none for a log group) and zero padding to a multiple of 8 bytes. In
 * memory only (the writer's input), never stored. */
typedef struct col_dgroup {
    uint64_t hash;  /* of the group's key, for the writer's table */
    uint32_t size;  /* bytes of the entry with its strings */
    uint8_t type;   /* COL_DG_SPAN or COL_DG_LOG */
    uint8_t kind;   /* span kind 0..5; log: severity range 0 (unspecified) .. 6 (fatal) */
    uint8_t status; /* span status code 0..2 */
    uint8_t pad;
    uint32_t svc_len;
    uint32_t name_len;
    double counts[COL_DV_COUNTS]; /* spans per duration bucket (not cumulative); log: [0] */
    double sum;                   /* span durations, seconds */
} col_dgroup;

/* Appends to out one col_dgroup per (service, span name, kind, status) group
 * of n spans. With a series limit in gate, a group whose 20 series the gate
 * refuses is left out (the spans are stored, not the series). Scratch memory
 * from a. Returns 0 or SL_ENOMEM. */
int col_span_groups(const sl_span *spans, size_t n, sl_arena *a, col_series_gate *gate,
                    sl_buf *out);
/* The same for log records by (service, severity range): one series each. */
int col_log_groups(const sl_log_record *logs, size_t n, sl_arena *a, col_series_gate *gate,
                   sl_buf *out);

/* Merges the entries of nbufs group buffers by group and appends to out the
 * metrics WAL record of their series, every sample at t_ms (nothing when
 * there are no entries). Scratch memory from a (the writer resets its own
 * after each batch). Returns 0, SL_ENOMEM or SL_ETOOBIG. */
int col_dgroups_encode(const sl_buf *const *bufs, size_t nbufs, int64_t t_ms, sl_arena *a,
                       sl_buf *out);

#endif
