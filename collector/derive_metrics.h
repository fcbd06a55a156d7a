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
 * Each request's items are aggregated into one delta per series, stamped with
 * the arrival time; storage sums the deltas into cumulative series and keeps
 * at most one sample per series per cut (ms_apply, MS_DELTA_MERGE_MS), not one
 * per request.
 *
 * Thread-safety: reentrant (decode workers).
 */
#ifndef COL_DERIVE_METRICS_H
#define COL_DERIVE_METRICS_H

#include "series_limit.h"
#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the metrics WAL record of n spans' RED deltas to out (nothing when
 * n == 0 or the gate refuses every series). The series of one (service,
 * span name, kind, status) group pass the gate together. Scratch memory comes
 * from a. Returns 0, SL_ENOMEM or SL_ETOOBIG. */
int col_span_metrics(const sl_span *spans, size_t n, uint64_t now_unix_nano, sl_arena *a,
                     col_series_gate *gate, sl_buf *out);

/* Appends the metrics WAL record of n log records' count deltas to out. */
int col_log_metrics(const sl_log_record *logs, size_t n, uint64_t now_unix_nano, sl_arena *a,
                    col_series_gate *gate, sl_buf *out);

#endif
