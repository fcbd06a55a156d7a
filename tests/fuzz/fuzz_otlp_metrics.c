/*
 * libFuzzer target for OTLP metrics decoding and conversion: protobuf bytes ->
 * ExportMetricsServiceRequest -> Prometheus series (collector/decode_metrics.c)
 * -> metrics WAL record -> decoded again. Any input must be converted or
 * rejected, never crash; the record written must decode with as many series
 * as were converted, else abort().
 *
 * The request is decoded as the collector does: by the written decoder
 * (collector/pb_metrics.c) and, when it declines, by protobuf-c. Whenever the
 * written decoder accepts a body, protobuf-c must accept it too and both
 * results must pack to the same bytes, else abort(): the two decoders agree.
 * Single-threaded.
 */
#include "decode_metrics.h"

#include "sl_err.h"

#include "../../storage/metrics_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_arena a;
    sl_arena_init(&a, 256u << 20);
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req = NULL;
    ProtobufCMessage *pc = protobuf_c_message_unpack(d, sl_arena_pb(&a), size, data);
    if (col_metrics_unpack(data, size, &a, &req) == 0) {
        if (pc == NULL) {
            abort(); /* accepted what protobuf-c refuses */
        }
        size_t n1 = protobuf_c_message_get_packed_size(&req->base);
        size_t n2 = protobuf_c_message_get_packed_size(pc);
        uint8_t *b1 = sl_arena_alloc(&a, n1 + 1), *b2 = sl_arena_alloc(&a, n2 + 1);
        if (b1 == NULL || b2 == NULL || n1 != n2 || protobuf_c_message_pack(&req->base, b1) != n1 ||
            protobuf_c_message_pack(pc, b2) != n2 || memcmp(b1, b2, n1) != 0) {
            abort(); /* the two decoders disagree */
        }
    } else {
        req = (Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)pc;
    }
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
