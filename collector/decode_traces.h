/*
 * Converts a decoded OTLP ExportTraceServiceRequest (from protobuf or JSON)
 * into the span model of common/sl_model.h, validating ids on the way so that
 * bad spans are rejected one by one (OTLP partial success) instead of failing
 * the whole request.
 *
 * Invariant: the spans borrow the request's memory (strings and byte arrays
 * are views into the protobuf-c message); only arrays and JSON text for
 * array/kvlist attribute values are allocated, in the same arena.
 *
 * Thread-safety: reentrant; concurrent calls need distinct arenas.
 */
#ifndef COL_DECODE_TRACES_H
#define COL_DECODE_TRACES_H

#include "sl_arena.h"
#include "sl_model.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stddef.h>

/* AnyValue arrays/kvlists nested deeper than this are not rendered: the span
 * (or, for a resource attribute, every span of that resource) is rejected.
 * The JSON decoder's own limit keeps JSON input well inside it; protobuf input
 * is only bounded by protobuf-c. */
#define COL_TRACES_MAX_VALUE_DEPTH 64

/*
 * Fills *spans with the valid spans of req, in request order, and counts the
 * invalid ones in *rejected. A span is rejected when its trace_id is not 16
 * bytes or is all zero, its span_id is not 8 bytes or is all zero, its
 * parent_span_id is neither empty nor 8 bytes, or one of its attribute values
 * nests deeper than COL_TRACES_MAX_VALUE_DEPTH.
 *
 * Conversion rules: one sl_resource per ResourceSpans, shared by its spans
 * (service = the resource's "service.name" string attribute, or
 * "unknown_service" when it is absent, empty or not a string); scope
 * name/version are copied into each span; span kinds outside 0..5 become
 * SL_KIND_UNSPECIFIED and status codes outside 0..2 SL_STATUS_UNSET; a link
 * whose ids are not 16/8 bytes or all zero is dropped and counted in the
 * span's dropped_links. Attribute values map one to one, arrays and kvlists
 * become compact JSON text (SL_VAL_ARRAY/SL_VAL_KVLIST, following the
 * OpenTelemetry "AnyValue representation for non-OTLP protocols": bytes as
 * base64 strings, NaN/Infinity as strings, empty values as null, invalid
 * UTF-8 replaced by U+FFFD), and a KeyValue without a value is SL_VAL_EMPTY.
 *
 * Returns 0, also when spans were rejected (err then holds a message about
 * the first one, e.g. "span 3: invalid trace_id (must be 16 bytes, not all
 * zero)", where 3 counts spans across the whole request from 0; otherwise err
 * is empty), or SL_ENOMEM when the arena's cap was reached (outputs untouched).
 *
 * Ownership: *spans (NULL when none are kept) and everything it points to are
 * in a, or borrowed from req: both must stay alive, unchanged, as long as the
 * spans are used. err may be NULL; it is NUL-terminated when err_size > 0.
 */
/* The value, attribute and resource conversions of col_traces_to_model,
 * shared with the other signals' decoders (same rules, same ownership).
 * col_any_value: one AnyValue (NULL: SL_VAL_EMPTY); col_kv_attrs: n
 * key/values into attrs (room for n); col_pb_resource: a resource with its
 * service (NULL: no attributes, "unknown_service"). Each returns 0,
 * SL_EDECODE (a value nested deeper than COL_TRACES_MAX_VALUE_DEPTH, or more
 * than UINT32_MAX attributes) or SL_ENOMEM. */
int col_any_value(sl_arena *a, const Opentelemetry__Proto__Common__V1__AnyValue *v, sl_value *out);
int col_kv_attrs(sl_arena *a, Opentelemetry__Proto__Common__V1__KeyValue *const *kvs, size_t n,
                 sl_attr *attrs);
int col_pb_resource(sl_arena *a, const Opentelemetry__Proto__Resource__V1__Resource *r,
                    sl_resource *out);

int col_traces_to_model(
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req, sl_arena *a,
    sl_span **spans, size_t *nspans, size_t *rejected, char *err, size_t err_size);

/* Decodes an ExportTraceServiceRequest into a's memory as protobuf-c would,
 * without protobuf-c, for the shapes exporters send (pb_traces.c). Returns 0
 * with *out set; SL_EUNSUPPORTED when the body is outside those shapes or
 * malformed (decode it with protobuf-c: it decides), or SL_ENOMEM (the
 * arena's cap). On failure the arena may hold partial allocations. */
int col_traces_unpack(const uint8_t *buf, size_t len, sl_arena *a,
                      Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest **out);

#endif
