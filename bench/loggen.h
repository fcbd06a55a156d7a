/*
 * loggen: a seeded, deterministic generator of realistic application logs
 * for the logs benchmark: a fleet of services, each with its own set of log
 * statements (templates) filled with varying ids, numbers, durations, user
 * names, amounts and routes; request-scoped records carry the trace and span
 * of their request (a few records per trace), others (startup, cache, pool,
 * scheduler) do not; severities mostly INFO with DEBUG, WARN and ERROR
 * mixed in. The same seed gives the same records.
 *
 * Thread-safety: a generator belongs to one thread.
 */
#ifndef SL_BENCH_LOGGEN_H
#define SL_BENCH_LOGGEN_H

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct loggen loggen;

/* Creates a generator. start_unix_nano: time of the first record (0: now).
 * Returns 0 or SL_ENOMEM. */
int loggen_create(uint64_t seed, uint64_t start_unix_nano, loggen **out);
void loggen_destroy(loggen *g);

/* Generates the next n records into a (strings, attributes and resources in
 * a). Records come in time order per service, services interleaved as a
 * fleet's exporters would send them. Returns 0 or SL_ENOMEM. */
int loggen_records(loggen *g, size_t n, sl_arena *a, sl_log_record **out);

/* Packs n records as one ExportLogsServiceRequest protobuf body appended to
 * out (one ResourceLogs per resource run). Returns 0 or SL_ENOMEM. */
int loggen_pack(const sl_log_record *recs, size_t n, sl_buf *out);

/* Appends the record as one line of a plain-text log file:
 * "<RFC 3339 time> <SEVERITY> <service> [trace_id=.. span_id=..] <body> k=v...\n"
 * (ids only when present) - the "raw log text" compression is measured
 * against. Returns 0 or SL_ENOMEM. */
int loggen_text(const sl_log_record *r, sl_buf *out);

#endif
