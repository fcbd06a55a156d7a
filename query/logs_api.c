/*
 * The logs API: GET /api/logs (search) and GET /api/traces/{id}/logs (a
 * trace's records, oldest first). Answers
 * {"data":[record...],"stats":{blocks_scanned, blocks_skipped,
 * bytes_decompressed, wal_records}} where a record is
 * {timestamp, observed_timestamp (unix ns as strings: JSON numbers lose
 * precision past 2^53), severity_text, severity_number, body (its OTLP type:
 * string, number, bool, array, object, base64 bytes or null), service,
 * trace_id, span_id (hex, "" when absent), flags, event_name, attributes,
 * dropped_attributes_count, resource, scope}. Bad parameters are 400 with a
 * Jaeger-style error body like every /api call.
 *
 * Thread-safety: called on libmicrohttpd's worker threads; state is per
 * request.
 */
#include "query_int.h"

#include "sl_err.h"

#include <math.h>
#include <string.h>

static void put_value(qry_jw *w, const sl_value *v) {
    switch (v->type) {
    case SL_VAL_STR:
        qry_jw_str(w, v->v.s.ptr, v->v.s.len);
        return;
    case SL_VAL_BOOL:
        if (v->v.b) {
            QRY_JW_LIT(w, "true");
        } else {
            QRY_JW_LIT(w, "false");
        }
        return;
    case SL_VAL_INT:
        qry_jw_i64(w, v->v.i);
        return;
    case SL_VAL_DOUBLE:
        if (isfinite(v->v.d)) {
            qry_jw_double(w, v->v.d);
        } else if (isnan(v->v.d)) {
            QRY_JW_LIT(w, "\"NaN\"");
        } else if (v->v.d > 0) {
            QRY_JW_LIT(w, "\"Infinity\"");
        } else {
            QRY_JW_LIT(w, "\"-Infinity\"");
        }
        return;
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
        /* Already canonical JSON text (the collector rendered it). */
        if (v->v.s.len > 0) {
            qry_jw_raw(w, v->v.s.ptr, v->v.s.len);
        } else {
            QRY_JW_LIT(w, "null");
        }
        return;
    case SL_VAL_BYTES:
        qry_jw_base64(w, (const uint8_t *)v->v.s.ptr, v->v.s.len);
        return;
    default:
        QRY_JW_LIT(w, "null");
        return;
    }
}

static void put_attrs(qry_jw *w, const sl_attr *attrs, uint32_t n) {
    QRY_JW_LIT(w, "{");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            QRY_JW_LIT(w, ",");
        }
        qry_jw_str(w, attrs[i].key.ptr, attrs[i].key.len);
        QRY_JW_LIT(w, ":");
        put_value(w, &attrs[i].val);
    }
    QRY_JW_LIT(w, "}");
}

static void put_id(qry_jw *w, const uint8_t *id, size_t len) {
    if (sl_is_zero(id, len)) {
        QRY_JW_LIT(w, "\"\"");
    } else {
        qry_jw_hex(w, id, len);
    }
}

static void put_ns(qry_jw *w, uint64_t ns) {
    QRY_JW_LIT(w, "\"");
    qry_jw_u64(w, ns);
    QRY_JW_LIT(w, "\"");
}

void qry_render_log_record(qry_jw *w, const sl_log_record *r) {
    QRY_JW_LIT(w, "{\"timestamp\":");
    put_ns(w, r->time_unix_nano);
    QRY_JW_LIT(w, ",\"observed_timestamp\":");
    put_ns(w, r->observed_unix_nano);
    QRY_JW_LIT(w, ",\"severity_text\":");
    qry_jw_str(w, r->severity_text.ptr, r->severity_text.len);
    QRY_JW_LIT(w, ",\"severity_number\":");
    qry_jw_i64(w, r->severity_number);
    QRY_JW_LIT(w, ",\"body\":");
    put_value(w, &r->body);
    QRY_JW_LIT(w, ",\"service\":");
    qry_jw_str(w, r->resource->service.ptr, r->resource->service.len);
    QRY_JW_LIT(w, ",\"trace_id\":");
    put_id(w, r->trace_id, 16);
    QRY_JW_LIT(w, ",\"span_id\":");
    put_id(w, r->span_id, 8);
    QRY_JW_LIT(w, ",\"flags\":");
    qry_jw_u64(w, r->flags);
    QRY_JW_LIT(w, ",\"event_name\":");
    qry_jw_str(w, r->event_name.ptr, r->event_name.len);
    QRY_JW_LIT(w, ",\"attributes\":");
    put_attrs(w, r->attrs, r->nattrs);
    QRY_JW_LIT(w, ",\"dropped_attributes_count\":");
    qry_jw_u64(w, r->dropped_attrs);
    QRY_JW_LIT(w, ",\"resource\":");
    put_attrs(w, r->resource->attrs, r->resource->nattrs);
    QRY_JW_LIT(w, ",\"scope\":{\"name\":");
    qry_jw_str(w, r->scope_name.ptr, r->scope_name.len);
    QRY_JW_LIT(w, ",\"version\":");
    qry_jw_str(w, r->scope_version.ptr, r->scope_version.len);
    QRY_JW_LIT(w, "}}");
}

static void run_search(const qry_req *req, stg_log_query *q, qry_resp *resp) {
    sl_log_record *recs = NULL;
    size_t n = 0;
    stg_log_stats st;
    q->tenant = req->tenant;
    int rc = stg_find_logs(req->store, q, req->arena, &recs, &n, &st);
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    QRY_JW_LIT(&w, "{\"data\":[");
    for (size_t i = 0; i < n && w.err == 0; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        qry_render_log_record(&w, &recs[i]);
    }
    QRY_JW_LIT(&w, "],\"stats\":{\"blocks_scanned\":");
    qry_jw_u64(&w, st.blocks_scanned);
    QRY_JW_LIT(&w, ",\"blocks_skipped\":");
    qry_jw_u64(&w, st.blocks_skipped);
    QRY_JW_LIT(&w, ",\"bytes_decompressed\":");
    qry_jw_u64(&w, st.bytes_decompressed);
    QRY_JW_LIT(&w, ",\"wal_records\":");
    qry_jw_u64(&w, st.wal_records);
    QRY_JW_LIT(&w, ",\"wal_skipped\":");
    qry_jw_u64(&w, st.wal_skipped);
    QRY_JW_LIT(&w, "}}");
    if (w.err != 0) {
        qry_resp_storage_error(resp, w.err);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
}

void qry_api_logs(const qry_req *req, qry_resp *resp) {
    qry_log_params *p = sl_arena_alloc(req->arena, sizeof(*p));
    qry_errbuf err = {{0}};
    if (p == NULL) {
        qry_resp_error(resp, 503, "out of memory");
        return;
    }
    int rc = qry_parse_log_params(&req->args, req->arena, p, &err);
    if (rc == SL_EINVAL) {
        qry_resp_error(resp, 400, err.msg);
        return;
    }
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    run_search(req, &p->q, resp);
}

void qry_api_trace_logs(const qry_req *req, sl_str trace_id_hex, qry_resp *resp) {
    uint8_t id[16];
    if (qry_parse_trace_id(trace_id_hex, id) != 0) {
        qry_resp_error(resp, 400, "invalid trace id (1-32 hex digits)");
        return;
    }
    stg_log_query q = {.trace_id = id, .limit = QRY_LOG_MAX_LIMIT, .forward = 1};
    run_search(req, &q, resp);
}
