/*
 * libFuzzer target for the OTLP logs path of the collector: protobuf bytes ->
 * the nesting-depth check (pb_depth.c) -> ExportLogsServiceRequest
 * (protobuf-c, into an arena) -> log records (collector/decode_logs.c) ->
 * attribute limits -> the logs WAL record, parsed and decoded again, and the
 * derived logs_records_total series. Any input must be converted or
 * rejected, never crash; a WAL record written must decode to as many records
 * as were accepted, else abort(). The seed corpus holds requests with every
 * body type, ids, attributes, and invalid records (bad ids, severities).
 * Single-threaded.
 */
#include "col_int.h"
#include "decode_logs.h"
#include "derive_metrics.h"

#include "sl_err.h"

#include "../../storage/logs_codec.h"
#include "../../storage/logs_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    if (col_pb_check_depth(desc, data, size, COL_PB_MAX_DEPTH) != 0) {
        return 0;
    }
    sl_arena a;
    sl_arena_init(&a, 256u << 20);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req =
        (Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *)
            protobuf_c_message_unpack(desc, sl_arena_pb(&a), size, data);
    sl_log_record *recs = NULL;
    size_t n = 0, rejected = 0;
    char err[256];
    if (req != NULL &&
        col_logs_to_model(req, &a, 1700000000000000000ull, &recs, &n, &rejected, err,
                          sizeof(err)) == 0 &&
        n > 0) {
        sl_tenant_limits lim = {.max_attributes = 4, .max_attr_value_length = 16};
        (void)col_limit_logs(recs, n, &lim);
        sl_buf out, derived;
        sl_buf_init(&out, 0);
        sl_buf_init(&derived, 0);
        logs_wal_hdr h;
        const uint8_t *block;
        size_t block_size = 0, m = 0;
        sl_log_record *again = NULL;
        /* Encoding may refuse (SL_ETOOBIG); what it writes must read back. */
        if (stg_logs_wal_encode(recs, n, &out) == 0 &&
            (logs_wal_parse(out.data, out.len, &h, &block, &block_size) != 0 || h.nrecs != n ||
             stg_logs_decode(block, block_size, &a, &again, &m, NULL) != 0 || m != n)) {
            abort();
        }
        sl_buf groups;
        sl_buf_init(&groups, 0);
        if (col_log_groups(recs, n, &a, NULL, &groups) == 0) {
            const sl_buf *one = &groups;
            (void)col_dgroups_encode(&one, 1, 1700000000000, &a, &derived);
        }
        sl_buf_free(&groups);
        sl_buf_free(&out);
        sl_buf_free(&derived);
    }
    sl_arena_free(&a);
    return 0;
}
