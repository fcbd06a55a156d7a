/*
 * Converts a decoded OTLP ExportLogsServiceRequest (from protobuf or JSON)
 * into the log model of common/sl_model.h, validating each record so that bad
 * ones are rejected one by one (OTLP partial success).
 *
 * Invariant: records borrow the request's memory (strings and byte arrays are
 * views into the protobuf-c message); arrays, resources and the JSON text of
 * array/kvlist values are allocated in the same arena.
 *
 * Thread-safety: reentrant; concurrent calls need distinct arenas.
 */
#ifndef COL_DECODE_LOGS_H
#define COL_DECODE_LOGS_H

#include "sl_arena.h"
#include "sl_model.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Fills *recs with the valid records of req, in request order, and counts
 * the invalid ones in *rejected. A record is rejected when its trace_id is
 * neither empty nor 16 bytes, its span_id neither empty nor 8 bytes, its
 * severity_number outside 0..24, or a value (body, attribute, or an
 * attribute of its resource) nests deeper than COL_TRACES_MAX_VALUE_DEPTH.
 * An all-zero id means "none", as an empty one does.
 *
 * Times, as the OpenTelemetry logs data model suggests: an observed time of 0
 * becomes now_unix_nano (the arrival time); a time of 0 becomes the observed
 * time. One sl_resource per ResourceLogs (service = its "service.name"
 * string, else "unknown_service"); scope name/version are copied into each
 * record; the body keeps its AnyValue type (arrays and kvlists as JSON text,
 * bytes raw).
 *
 * Returns 0, also when records were rejected (err then describes the first
 * one, e.g. "log record 3: invalid trace_id (must be empty or 16 bytes)",
 * counting across the whole request from 0), or SL_ENOMEM when the arena's
 * cap was reached (outputs untouched). err may be NULL.
 */
int col_logs_to_model(
    const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req, sl_arena *a,
    uint64_t now_unix_nano, sl_log_record **recs, size_t *nrecs, size_t *rejected, char *err,
    size_t err_size);

#endif
