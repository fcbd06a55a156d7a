/*
 * libFuzzer target for OTLP metrics conversion: protobuf bytes ->
 * ExportMetricsServiceRequest (protobuf-c, into an arena) -> Prometheus
 * series (collector/decode_metrics.c) -> metrics WAL record -> decoded again.
 * Any input must be converted or rejected, never crash; the record written
 * must decode with as many series as were converted, else abort().
 * Single-threaded.
 */
#include "decode_metrics.h"

#include "sl_err.h"

#include "../../storage/metrics_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_arena a;
    sl_arena_init(&a, 256u << 20);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
        (Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)
            protobuf_c_message_unpack(
                &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
                sl_arena_pb(&a), size, data);
    if (req != NULL) {
        col_mbatch b = {0};
        char err[256];
        if (col_metrics_to_series(req, &a, &b, err, sizeof(err)) == 0 && b.nseries > 0) {
            sl_buf out;
            sl_buf_init(&out, 0);
            ms_record r;
            if (stg_metrics_encode(b.series, b.nseries, b.meta, b.nmeta, &out) != 0 ||
                ms_record_decode(out.data, out.len, &a, &r) != 0 || r.nseries != b.nseries) {
                abort();
            }
            sl_buf_free(&out);
        }
    }
    sl_arena_free(&a);
    return 0;
}
