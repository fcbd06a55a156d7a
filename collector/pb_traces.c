/*
 * A decoder for ExportTraceServiceRequest written for the traces ingest path,
 * on the wire primitives and common messages of pb_wire.h. Like pb_metrics.c
 * (whose head comment lists the shapes left to protobuf-c) it builds the same
 * protobuf-c structs protobuf_c_message_unpack() would, in the request's
 * arena, without protobuf-c's descriptor walk, its allocation per
 * sub-message and string, or the separate depth pre-check; it returns
 * SL_EUNSUPPORTED for every shape it leaves to protobuf-c, and the
 * differential fuzz target fuzz_otlp_protobuf checks that whatever it accepts
 * packs to the same bytes as protobuf-c's result.
 *
 * Field numbers and wire types: proto/opentelemetry/proto/{trace,
 * collector/trace}.
 *
 * Thread: any (a decode worker); the arena belongs to the caller's thread.
 */
#include "decode_traces.h"
#include "pb_wire.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pt_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pt_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pt_ss;
typedef Opentelemetry__Proto__Trace__V1__Span pt_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pt_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pt_link;
typedef Opentelemetry__Proto__Trace__V1__Status pt_status;

static inline int pt_fixed32(const uint8_t **pp, const uint8_t *end, uint32_t *out) {
    const uint8_t *p = *pp;
    if (end - p < 4) {
        return PM_NO;
    }
    *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    *pp = p + 4;
    return 0;
}

static int pt_event_msg(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    PM_CONST_CAST_BEGIN
    static const pt_event init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    PM_CONST_CAST_END
    pt_event *out = msg;
    *out = init;
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_I64):
            PM_TRY(pm_fixed64(&p, end, &out->time_unix_nano));
            break;
        case PM_TAG(2, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->name));
            break;
        case PM_TAG(3, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_attributes_count));
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

static int pt_link_msg(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    PM_CONST_CAST_BEGIN
    static const pt_link init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    PM_CONST_CAST_END
    pt_link *out = msg;
    *out = init;
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->trace_id));
            break;
        case PM_TAG(2, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->span_id));
            break;
        case PM_TAG(3, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->trace_state));
            break;
        case PM_TAG(4, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(5, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_attributes_count));
            break;
        case PM_TAG(6, PM_I32):
            PM_TRY(pt_fixed32(&p, end, &out->flags));
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

static int pt_status_msg(pm *m, const uint8_t *p, const uint8_t *end, pt_status *out) {
    PM_CONST_CAST_BEGIN
    static const pt_status init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    PM_CONST_CAST_END
    *out = init;
    while (p < end) {
        unsigned tag;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(2, PM_LEN)) {
            PM_TRY(pm_field_string(m, &p, end, &out->message));
        } else if (tag == PM_TAG(3, PM_VARINT)) {
            PM_TRY(pm_varint(&p, end, &v));
            out->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(int32_t)(uint32_t)v;
        } else {
            return PM_NO;
        }
    }
    return 0;
}

static int pt_span_msg(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    PM_CONST_CAST_BEGIN
    static const pt_span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    PM_CONST_CAST_END
    pt_span *out = msg;
    *out = init;
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->trace_id));
            break;
        case PM_TAG(2, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->span_id));
            break;
        case PM_TAG(3, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->trace_state));
            break;
        case PM_TAG(4, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->parent_span_id));
            break;
        case PM_TAG(16, PM_I32):
            PM_TRY(pt_fixed32(&p, end, &out->flags));
            break;
        case PM_TAG(5, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->name));
            break;
        case PM_TAG(6, PM_VARINT):
            PM_TRY(pm_varint(&p, end, &v));
            out->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(int32_t)(uint32_t)v;
            break;
        case PM_TAG(7, PM_I64):
            PM_TRY(pm_fixed64(&p, end, &out->start_time_unix_nano));
            break;
        case PM_TAG(8, PM_I64):
            PM_TRY(pm_fixed64(&p, end, &out->end_time_unix_nano));
            break;
        case PM_TAG(9, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(10, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_attributes_count));
            break;
        case PM_TAG(11, PM_LEN):
            PM_TRY(pm_msg_next(m, &p, end, (void ***)&out->events, &out->n_events, sizeof(pt_event),
                               pt_event_msg));
            break;
        case PM_TAG(12, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_events_count));
            break;
        case PM_TAG(13, PM_LEN):
            PM_TRY(pm_msg_next(m, &p, end, (void ***)&out->links, &out->n_links, sizeof(pt_link),
                               pt_link_msg));
            break;
        case PM_TAG(14, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_links_count));
            break;
        case PM_TAG(15, PM_LEN):
            if (out->status != NULL) {
                return PM_NO; /* given twice: protobuf-c merges */
            }
            PM_TRY(pm_len(&p, end, &q, &qe));
            if ((out->status = sl_arena_alloc(m->a, sizeof(*out->status))) == NULL) {
                return SL_ENOMEM;
            }
            PM_TRY(pt_status_msg(m, q, qe, out->status));
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

static int pt_scope_spans(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    PM_CONST_CAST_BEGIN
    static const pt_ss init = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    PM_CONST_CAST_END
    pt_ss *out = msg;
    *out = init;
    pm_level l = {(void **)&out->scope, sizeof(*out->scope), pm_scope_fn, (void ***)&out->spans,
                  &out->n_spans,        sizeof(pt_span),     pt_span_msg, &out->schema_url};
    return pm_level_msg(m, p, end, &l);
}

static int pt_resource_spans(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    PM_CONST_CAST_BEGIN
    static const pt_rs init = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    PM_CONST_CAST_END
    pt_rs *out = msg;
    *out = init;
    pm_level l = {(void **)&out->resource, sizeof(*out->resource),
                  pm_resource_fn,          (void ***)&out->scope_spans,
                  &out->n_scope_spans,     sizeof(pt_ss),
                  pt_scope_spans,          &out->schema_url};
    return pm_level_msg(m, p, end, &l);
}

int col_traces_unpack(const uint8_t *buf, size_t len, sl_arena *a, pt_req **out) {
    static const pt_req init =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    pm m = {.a = a, .nest = 0};
    *out = NULL;
    pt_req *req = sl_arena_alloc(a, sizeof(*req));
    if (req == NULL) {
        return SL_ENOMEM;
    }
    *req = init;
    PM_TRY(pm_request(&m, buf, len, (void ***)&req->resource_spans, &req->n_resource_spans,
                      sizeof(pt_rs), pt_resource_spans));
    *out = req;
    return 0;
}
