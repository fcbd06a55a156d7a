/*
 * Fuzz target: the protobuf ingest path. Arbitrary bytes are unpacked as an
 * ExportTraceServiceRequest into a capped arena (as the collector does),
 * converted to spans, encoded as a WAL record and decoded back; the span count
 * and ids must survive the round trip.
 *
 * The request is decoded as the collector does: by the written decoder
 * (collector/pb_traces.c) and, when it declines, by protobuf-c. Whenever the
 * written decoder accepts a body, protobuf-c must accept it too and both
 * results must pack to the same bytes, else abort().
 */
#include "decode_traces.h"
#include "storage.h"

#include "block_codec.h"
#include "sl_arena.h"
#include "sl_buf.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_arena a;
    sl_arena_init(&a, 64u << 20);
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        sl_arena_pb(&a), size, data);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req = NULL;
    if (col_traces_unpack(data, size, &a, &req) == 0) {
        if (m == NULL) {
            abort(); /* accepted what protobuf-c refuses */
        }
        size_t n1 = protobuf_c_message_get_packed_size(&req->base);
        size_t n2 = protobuf_c_message_get_packed_size(m);
        uint8_t *b1 = sl_arena_alloc(&a, n1 + 1), *b2 = sl_arena_alloc(&a, n2 + 1);
        if (b1 == NULL || b2 == NULL || n1 != n2 || protobuf_c_message_pack(&req->base, b1) != n1 ||
            protobuf_c_message_pack(m, b2) != n2 || memcmp(b1, b2, n1) != 0) {
            abort(); /* the two decoders disagree */
        }
        m = &req->base;
    }
    if (m != NULL) {
        sl_span *spans = NULL;
        size_t n = 0, rejected = 0;
        char err[128];
        if (col_traces_to_model(
                (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)m,
                &a, &spans, &n, &rejected, err, sizeof(err)) == 0) {
            sl_buf rec;
            sl_buf_init(&rec, 0);
            if (stg_wal_encode(spans, n, &rec) == 0) {
                /* Skip the WAL header (24 bytes + 16 per distinct trace id). */
                uint32_t nids;
                memcpy(&nids, rec.data + 20, 4);
                size_t off = 24 + (size_t)nids * 16;
                sl_arena b;
                sl_arena_init(&b, 256u << 20);
                sl_span *back = NULL;
                size_t nb = 0;
                if (stg_block_decode(rec.data + off, rec.len - off, &b, &back, &nb) != 0 ||
                    nb != n) {
                    abort();
                }
                for (size_t i = 0; i < n; i++) {
                    if (memcmp(back[i].span_id, spans[i].span_id, 8) != 0 ||
                        memcmp(back[i].trace_id, spans[i].trace_id, 16) != 0 ||
                        back[i].nattrs != spans[i].nattrs) {
                        abort();
                    }
                }
                sl_arena_free(&b);
            }
            sl_buf_free(&rec);
        }
    }
    sl_arena_free(&a);
    return 0;
}
