/*
 * libFuzzer target for the OTLP/JSON decoder and the trace model conversion.
 * Each input is decoded as all three request types in a capped arena. What
 * decodes must also pack, unpack and re-pack to the same bytes (the decoder
 * builds well-formed protobuf-c structs), and a trace request must convert to
 * the model with every span either kept or rejected.
 *
 * Single-threaded; abort() marks a finding.
 */
#include "decode_traces.h"
#include "otlp_json.h"

#include "sl_arena.h"
#include "sl_err.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <jansson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ARENA_MAX (16u << 20)

static void check_roundtrip(ProtobufCMessage *m, sl_arena *a) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p1 = malloc(n + 1);
    uint8_t *p2 = malloc(n + 1);
    if (p1 == NULL || p2 == NULL) {
        abort();
    }
    if (protobuf_c_message_pack(m, p1) != n) {
        abort();
    }
    ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, sl_arena_pb(a), n, p1);
    /* NULL is fine only when the arena cap stopped the unpack. */
    if (u != NULL) {
        if (protobuf_c_message_get_packed_size(u) != n || protobuf_c_message_pack(u, p2) != n ||
            memcmp(p1, p2, n) != 0) {
            abort();
        }
    }
    free(p1);
    free(p2);
}

/* Array and kvlist values must be valid JSON of the right shape. */
static void check_value(const sl_value *v) {
    if (v->type != SL_VAL_ARRAY && v->type != SL_VAL_KVLIST) {
        return;
    }
    json_error_t e;
    json_t *j = json_loadb(v->v.s.ptr, v->v.s.len, JSON_DECODE_ANY, &e);
    if (j == NULL && strstr(e.text, "emory") == NULL) {
        abort();
    }
    if (j != NULL && !(v->type == SL_VAL_ARRAY ? json_is_array(j) : json_is_object(j))) {
        abort();
    }
    json_decref(j);
}

static size_t
count_spans(const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r) {
    size_t total = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            total += r->resource_spans[i]->scope_spans[j]->n_spans;
        }
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const ProtobufCMessageDescriptor *const descs[] = {
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    };
    char err[256];
    sl_arena a;
    sl_arena_init(&a, FUZZ_ARENA_MAX);
    for (size_t d = 0; d < sizeof(descs) / sizeof(descs[0]); d++) {
        ProtobufCMessage *m = NULL;
        int rc = col_json_decode(descs[d], (const char *)data, size, &a, &m, err, sizeof(err));
        if (rc != 0) {
            if ((rc != SL_EDECODE && rc != SL_ENOMEM) || err[0] == '\0' || m != NULL) {
                abort();
            }
            sl_arena_reset(&a);
            continue;
        }
        if (err[0] != '\0' || m == NULL || !protobuf_c_message_check(m)) {
            abort();
        }
        check_roundtrip(m, &a);
        if (d == 0) {
            const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
                (const void *)m;
            sl_span *spans = NULL;
            size_t n = 0, rejected = 0;
            rc = col_traces_to_model(req, &a, &spans, &n, &rejected, err, sizeof(err));
            if (rc == 0 && n + rejected != count_spans(req)) {
                abort();
            }
            if (rc != 0 && rc != SL_ENOMEM) {
                abort();
            }
            for (size_t i = 0; rc == 0 && i < n; i++) {
                if (spans[i].resource == NULL || spans[i].resource->service.len == 0) {
                    abort();
                }
                for (uint32_t k = 0; k < spans[i].nattrs; k++) {
                    check_value(&spans[i].attrs[k].val);
                }
            }
        }
        sl_arena_reset(&a);
    }
    sl_arena_free(&a);
    return 0;
}
