/*
 * OTLP/HTTP semantics on top of http_server.c: routing, the status codes the
 * OTLP/HTTP specification asks for, decoding on the worker pool, admission to
 * the bounded writer queue, and replies (ExportTraceServiceResponse with
 * partial_success, or a google.rpc.Status-shaped error) in the request's
 * content type. Loop-thread functions unless marked "pool".
 */
#include "col_int.h"

#include "decode_logs.h"
#include "decode_metrics.h"
#include "decode_traces.h"
#include "derive_metrics.h"
#include "otlp_json.h"

#include "sl_err.h"
#include "sl_log.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_REQ_DESC                                                                             \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
#define METRICS_REQ_DESC                                                                           \
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor

void col_count_status(const col_route *route, int status) {
    static const int codes[] = {200, 400, 401, 403, 404, 405, 408, 413, 414, 415, 429, 500, 503};
    enum { NCODES = sizeof(codes) / sizeof(codes[0]) };
    static const char *const names[STG_NSIGNALS + 1] = {"traces", "logs", "metrics", "none"};
    static sl_metric *metrics[STG_NSIGNALS + 1][NCODES];
    int sig = route != NULL ? (int)route->signal : STG_NSIGNALS;
    for (size_t i = 0; i < NCODES; i++) {
        if (codes[i] == status) {
            /* Registration is idempotent: a racing first use gets the same metric. */
            if (metrics[sig][i] == NULL) {
                char labels[64];
                snprintf(labels, sizeof(labels), "signal=\"%s\",code=\"%d\"", names[sig], status);
                metrics[sig][i] = sl_counter("sightline_otlp_requests_total", labels,
                                             "OTLP/HTTP requests answered, by status code.");
            }
            sl_metric_add(metrics[sig][i], 1);
            return;
        }
    }
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* The gRPC status code matching an HTTP status (google.rpc.Status.code). */
static int grpc_code(int status) {
    switch (status) {
    case 400:
    case 415:
        return 3; /* INVALID_ARGUMENT */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 5; /* NOT_FOUND */
    case 405:
        return 12; /* UNIMPLEMENTED */
    case 413:
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

static int json_escape(sl_buf *b, const char *s) {
    int rc = 0;
    for (; *s && rc == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            rc = sl_buf_putc(b, '\\');
            rc |= sl_buf_putc(b, ch);
        } else if (ch < 0x20) {
            rc = sl_buf_printf(b, "\\u%04x", ch);
        } else {
            rc = sl_buf_putc(b, ch);
        }
    }
    return rc;
}

/* Builds the whole reply (status line, headers, body) and marks r done. */
static void finish(col_req *r, int status, const char *ctype, const void *body, size_t len,
                   const char *extra_headers) {
    sl_buf *o = &r->reply;
    o->len = 0;
    int rc =
        sl_buf_printf(o,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: %s\r\n%s\r\n",
                      status, reason_phrase(status), ctype, len,
                      r->keep_alive ? "keep-alive" : "close", extra_headers ? extra_headers : "");
    rc |= sl_buf_append(o, body, len);
    if (rc != 0) {
        /* Out of memory for a reply: close rather than answer wrongly. */
        r->keep_alive = false;
        o->len = 0;
    }
    r->status = status;
    r->done = true;
    col_count_status(r->route, status);
    if (r->t_start_ns != 0 && r->route != NULL) {
        sl_metric_observe(r->col->m_req_latency[r->route->signal],
                          (double)(sl_mono_nano() - r->t_start_ns) / 1e9);
    }
}

void col_reply_error(col_req *r, int status, const char *msg) {
    char extra[128] = "";
    if (status == 405) {
        snprintf(extra, sizeof(extra), "Allow: POST\r\n");
    } else if (status == 401) {
        snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"sightline\"\r\n");
    } else if (status == 503 || status == 429) {
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
                 r->retry_after_s > 0 ? r->retry_after_s : 1);
    }
    if (status == 413 || status == 414) {
        /* The rest of an oversized body may still be in flight: close. */
        r->keep_alive = false;
    }
    if (r->ctype == COL_CT_PROTOBUF) {
        /* google.rpc.Status { int32 code = 1; string message = 2; } */
        uint8_t body[300];
        size_t ml = strlen(msg) > 250 ? 250 : strlen(msg);
        size_t n = 0;
        body[n++] = 0x08;
        body[n++] = (uint8_t)grpc_code(status);
        body[n++] = 0x12;
        body[n++] = (uint8_t)(ml & 0x7f) | (ml > 127 ? 0x80 : 0);
        if (ml > 127) {
            body[n++] = (uint8_t)(ml >> 7);
        }
        memcpy(body + n, msg, ml);
        n += ml;
        finish(r, status, "application/x-protobuf", body, n, extra);
        return;
    }
    sl_buf b;
    sl_buf_init(&b, 4096);
    sl_buf_printf(&b, "{\"code\":%d,\"message\":\"", grpc_code(status));
    json_escape(&b, msg);
    sl_buf_append_str(&b, "\"}");
    finish(r, status, "application/json", b.data, b.len, extra);
    sl_buf_free(&b);
}

/* Export{Trace,Logs,Metrics}ServiceResponse share one shape: field 1 is the
 * partial_success message, whose field 1 is the rejected count (int64) and
 * field 2 the error message. Encoded by hand for all three. */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t col_export_response(const col_req *r, uint8_t *body) {
    uint64_t rejected = r->recs.rejected;
    const char *msg = r->msg[0] ? r->msg : "some items were rejected";
    uint8_t inner[320];
    size_t n = 0, in = 0;
    if (rejected > 0) {
        size_t ml = strnlen(msg, 250);
        inner[in++] = 0x08;
        in += put_varint(inner + in, rejected);
        inner[in++] = 0x12;
        in += put_varint(inner + in, ml);
        memcpy(inner + in, msg, ml);
        in += ml;
        body[n++] = 0x0a;
        n += put_varint(body + n, in);
        memcpy(body + n, inner, in);
        n += in;
    }
    return n;
}

static void reply_success(col_req *r) {
    uint64_t rejected = r->recs.rejected;
    const char *msg = r->msg[0] ? r->msg : "some items were rejected";
    if (r->ctype == COL_CT_PROTOBUF) {
        uint8_t body[COL_EXPORT_RESPONSE_MAX];
        finish(r, 200, "application/x-protobuf", body, col_export_response(r, body), NULL);
        return;
    }
    sl_buf b;
    sl_buf_init(&b, 4096);
    if (rejected > 0) {
        sl_buf_printf(&b, "{\"partialSuccess\":{\"%s\":\"%llu\",\"errorMessage\":\"",
                      r->route->rejected_json, (unsigned long long)rejected);
        json_escape(&b, msg);
        sl_buf_append_str(&b, "\"}}");
    } else {
        sl_buf_append_str(&b, "{}");
    }
    finish(r, 200, "application/json", b.data, b.len, NULL);
    sl_buf_free(&b);
}

/* --- decoding (pool) --------------------------------------------------- */

/* Each decode worker keeps one arena for its whole life and resets it after
 * every request, so steady-state decoding does not call malloc or fault in new
 * pages. The cap keeps a hostile body from becoming unbounded memory. */
static _Thread_local sl_arena t_arena;
static _Thread_local bool t_arena_ready;

/* Reserves n bytes of the JSON parse budget (jansson's tree is not in the
 * arena). Returns false when it does not fit right now. */
static bool json_budget_take(col_collector *col, uint64_t n) {
    uint64_t cur = atomic_load(&col->json_bytes);
    do {
        if (cur + n > col->opt.json_memory_max) {
            return false;
        }
    } while (!atomic_compare_exchange_weak(&col->json_bytes, &cur, cur + n));
    return true;
}

static void decode_work(uv_work_t *w) {
    col_req *r = w->data;
    col_collector *col = r->col;
    if (!t_arena_ready) {
        /* Decoded messages take a few times their wire size. */
        sl_arena_init(&t_arena, 64ull * 1024 * 1024 + 16 * col->opt.max_body_size);
        t_arena_ready = true;
    }
    sl_arena *a = &t_arena;
    uint64_t json_cost = 0;
    if (r->enc != COL_ENC_IDENTITY) {
        sl_buf plain;
        sl_buf_init(&plain, r->max_size);
        int rc = col_inflate(r->enc, r->body.data, r->body.len, &plain);
        if (rc != 0) {
            sl_buf_free(&plain);
            r->status = rc == SL_ETOOBIG ? 413 : rc == SL_ENOMEM ? 503 : 400;
            r->reason = rc == SL_ETOOBIG  ? "decompressed body exceeds the size limit"
                        : rc == SL_ENOMEM ? "out of memory"
                                          : "body could not be decompressed";
            goto out;
        }
        sl_buf_free(&r->body);
        r->body = plain;
    }
    ProtobufCMessage *msg = NULL;
    const ProtobufCMessageDescriptor *desc = r->route->request;
    if (r->ctype == COL_CT_PROTOBUF && r->route->unpack != NULL &&
        r->route->unpack(r->body.data, r->body.len, a, &msg) != 0) {
        /* Outside the written decoder's shapes: protobuf-c decides, from an
         * empty arena. */
        msg = NULL;
        sl_arena_reset(a);
    }
    if (r->ctype == COL_CT_PROTOBUF && msg == NULL) {
        if (col_pb_check_depth(desc, r->body.data, r->body.len, COL_PB_MAX_DEPTH) != 0) {
            snprintf(r->msg, sizeof(r->msg),
                     "body is not a valid %s protobuf (malformed, or values nested too deeply)",
                     desc->short_name);
            r->status = 400;
            r->reason = r->msg;
            goto out;
        }
        msg = protobuf_c_message_unpack(desc, sl_arena_pb(a), r->body.len, r->body.data);
        if (msg == NULL) {
            snprintf(r->msg, sizeof(r->msg), "body is not a valid %s protobuf", desc->short_name);
            r->status = 400;
            r->reason = r->msg;
            goto out;
        }
    } else if (r->ctype != COL_CT_PROTOBUF) {
        json_cost = col_json_parse_cost((const char *)r->body.data, r->body.len);
        if (json_cost > col->opt.json_memory_max) {
            json_cost = 0;
            r->status = 413;
            r->reason = "JSON body needs more memory to parse than allowed; send protobuf";
            goto out;
        }
        if (!json_budget_take(col, json_cost)) {
            json_cost = 0;
            r->status = 503;
            r->reason = "JSON decoding is saturated; retry later";
            goto out;
        }
        int rc = col_json_decode(desc, (const char *)r->body.data, r->body.len, a, &msg, r->msg,
                                 sizeof(r->msg));
        if (rc != 0) {
            r->status = rc == SL_ENOMEM ? 413 : 400;
            r->reason = rc == SL_ENOMEM ? "decoded request exceeds the memory limit" : r->msg;
            goto out;
        }
    }
    r->msg[0] = '\0';
    r->recs.limits = &r->limits;
    r->recs.series = (col_series_gate){
        .lim = col->series, .tenant = r->tenant, .max = r->limits.max_active_series};
    int rc = r->route->convert(msg, a, &r->recs, r->msg, sizeof(r->msg));
    if (rc == SL_ENOMEM) {
        r->status = 413;
        r->reason = "decoded request exceeds the memory limit";
    } else if (rc == SL_EDECODE || rc == SL_EINVAL) {
        r->status = 400;
        r->reason = r->msg;
    } else if (rc != 0) {
        r->status = 503;
        r->reason = "cannot encode the request for storage; retry later";
    }
    if (rc != 0) {
        r->recs.accepted = 0;
    }
out:
    if (json_cost > 0) {
        atomic_fetch_sub(&col->json_bytes, json_cost);
    }
    sl_buf_free(&r->body);
    sl_arena_reset(a);
}

static void after_decode(uv_work_t *w, int status) {
    col_req *r = w->data;
    col_collector *col = r->col;
    (void)status;
    uint32_t retry = 0;
    if (r->status == 0 && col_rate_take(col, r, &retry) != 0) {
        /* Over the tenant's rate: nothing of it is stored. */
        r->status = 429;
        r->retry_after_s = retry;
        snprintf(r->msg, sizeof(r->msg),
                 "ingestion rate limit of tenant %s exceeded (%.0f items/s); retry later",
                 r->tenant, r->limits.rate[r->route->signal]);
        r->reason = r->msg;
        sl_metric_add(col->m_limited[r->route->signal], r->recs.accepted);
        r->recs.accepted = 0;
        r->recs.rejected = 0;
    }
    sl_metric_add(col->m_truncated, r->recs.limited);
    if (r->status != 0 || r->recs.accepted == 0) {
        col->inflight--;
        col->inflight_bytes -= r->admitted_bytes;
        sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
        sl_metric_add(col->m_rejected[r->route->signal], r->recs.rejected);
        /* Nothing to store when every item was rejected, or none sent. */
        r->answer(r, r->status != 0 ? r->status : 200, r->reason);
        col_maybe_close_wake(col);
        return;
    }
    col_writer_push(col, r);
}

void col_after_commit(col_collector *col, col_req *r, int status) {
    col->inflight--;
    col->inflight_bytes -= r->admitted_bytes;
    sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
    sl_buf_free(&r->recs.primary);
    sl_buf_free(&r->recs.derived);
    if (status == 200) {
        sl_metric_add(col->m_accepted[r->route->signal], r->recs.accepted);
        sl_metric_add(col->m_rejected[r->route->signal], r->recs.rejected);
        r->answer(r, 200, NULL);
    } else {
        /* Disk or map full: the operator must act, the client retries. */
        bool full = r->commit_rc == -ENOSPC || r->commit_rc == -EDQUOT ||
                    r->commit_rc == SL_EFULL || r->commit_rc == SL_EMAPFULL;
        r->answer(r, 503,
                  full ? "storage is full; retry later" : "storage is unavailable; retry later");
    }
}

/* --- routes ---------------------------------------------------------------- */

/* traces: spans -> one WAL record (block format). */
static int convert_traces(const ProtobufCMessage *req, sl_arena *a, col_records *out, char *err,
                          size_t err_size) {
    sl_span *spans = NULL;
    size_t n = 0, rejected = 0;
    int rc = col_traces_to_model(
        (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)req, a,
        &spans, &n, &rejected, err, err_size);
    if (rc != 0) {
        return rc;
    }
    out->accepted = n;
    out->rejected = rejected;
    out->limited = col_limit_spans(spans, n, out->limits);
    if (n > 0 && stg_wal_encode(spans, n, &out->primary) != 0) {
        return SL_EFULL; /* malloc failed: the server's condition, not the request's */
    }
    /* Span RED metrics ride in the same durable batch (the writer encodes them). */
    rc = col_span_groups(spans, n, a, &out->series, &out->derived);
    return rc == SL_ENOMEM ? SL_EFULL : rc;
}

/* metrics: data points -> Prometheus series -> one metrics WAL record. */
static int convert_metrics(const ProtobufCMessage *req, sl_arena *a, col_records *out, char *err,
                           size_t err_size) {
    col_mbatch b = {.gate = &out->series};
    int rc = col_metrics_to_series(
        (const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)req, a,
        &b, err, err_size);
    if (rc != 0) {
        return rc;
    }
    out->accepted = b.points;
    out->rejected = b.rejected;
    if (b.points > 0 &&
        stg_metrics_encode(b.series, b.nseries, b.meta, b.nmeta, &out->primary) != 0) {
        return SL_EFULL;
    }
    return 0;
}

static int unpack_metrics(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **msg) {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req;
    int rc = col_metrics_unpack(buf, len, a, &req);
    *msg = rc == 0 ? &req->base : NULL;
    return rc;
}

static int unpack_traces(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **msg) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;
    int rc = col_traces_unpack(buf, len, a, &req);
    *msg = rc == 0 ? &req->base : NULL;
    return rc;
}

/* logs: records -> one WAL record (the log block format). */
static int convert_logs(const ProtobufCMessage *req, sl_arena *a, col_records *out, char *err,
                        size_t err_size) {
    sl_log_record *recs = NULL;
    size_t n = 0, rejected = 0;
    int rc = col_logs_to_model(
        (const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *)req, a,
        sl_now_unix_nano(), &recs, &n, &rejected, err, err_size);
    if (rc != 0) {
        return rc;
    }
    out->accepted = n;
    out->rejected = rejected;
    out->limited = col_limit_logs(recs, n, out->limits);
    if (n > 0 && stg_logs_wal_encode(recs, n, &out->primary) != 0) {
        return SL_EFULL; /* malloc failed: the server's condition, not the request's */
    }
    /* logs_records_total{service_name, severity} rides in the same batch. */
    rc = col_log_groups(recs, n, a, &out->series, &out->derived);
    return rc == SL_ENOMEM ? SL_EFULL : rc;
}

static const col_route routes[] = {
    {"/v1/traces", STG_TRACES, &TRACE_REQ_DESC, "rejectedSpans", convert_traces, unpack_traces},

    {"/v1/logs", STG_LOGS,
     &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
     "rejectedLogRecords", convert_logs, NULL},

    {"/v1/metrics", STG_METRICS, &METRICS_REQ_DESC, "rejectedDataPoints", convert_metrics,
     unpack_metrics},
};

static const char unknown_path_msg[] =
    "unknown path: OTLP/HTTP data is received at /v1/traces, /v1/logs and /v1/metrics";

const col_route *col_route_find(const char *path) {
    size_t plen = strcspn(path, "?");
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strlen(routes[i].path) == plen && memcmp(routes[i].path, path, plen) == 0) {
            return &routes[i];
        }
    }
    return NULL;
}

const col_route *col_route_find_signal(stg_signal sig) {
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (routes[i].signal == sig) {
            return &routes[i];
        }
    }
    return NULL;
}

void col_req_set_header(col_req *r, int which, const char *v, size_t len) {
    char *dst = which == COL_HDR_ORGID ? r->orgid : r->authz;
    size_t cap = which == COL_HDR_ORGID ? sizeof(r->orgid) : sizeof(r->authz);
    size_t n = len < cap ? len : cap;
    memcpy(dst, v, n);
    *(which == COL_HDR_ORGID ? &r->orgid_len : &r->authz_len) = (int)n;
}

int col_req_authorize(col_req *r, const char **why) {
    sl_str org = {r->orgid, r->orgid_len > 0 ? (size_t)r->orgid_len : 0};
    sl_str authz = {r->authz, r->authz_len > 0 ? (size_t)r->authz_len : 0};
    int status = sl_auth_decide(r->col->opt.auth, r->authz_len >= 0 ? &authz : NULL,
                                r->orgid_len >= 0 ? &org : NULL, SL_SCOPE_INGEST, r->tenant, why);
    if (status == 401 || status == 403) {
        sl_metric_add(r->col->m_auth_refused, 1);
    }
    return status;
}

/* --- admission ------------------------------------------------------------ */

void col_admit(col_collector *col, col_req *r) {
    sl_limits_lookup(col->opt.limits, r->tenant, &r->limits);
    if (col->stopping) {
        r->answer(r, 503, "shutting down");
    } else if (col->inflight >= (int)col->opt.queue_max ||
               col->inflight_bytes + r->body.len > col->opt.queue_max_bytes) {
        /* The write path is saturated: answer now instead of queueing. */
        r->answer(r, 503, "ingest queue is full; retry later");
    } else if (stg_wal_backlog(col->store) > col->opt.wal_backlog_max) {
        /* Storage has not caught up with compacting what it accepted. */
        r->answer(r, 503, "storage is behind; retry later");
    } else {
        col->inflight++;
        r->admitted_bytes = r->body.len;
        col->inflight_bytes += r->admitted_bytes;
        sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
        r->work.data = r;
        if (uv_queue_work(&col->loop, &r->work, decode_work, after_decode) != 0) {
            col->inflight--;
            col->inflight_bytes -= r->admitted_bytes;
            r->answer(r, 503, "cannot schedule decoding");
        }
    }
}

/* The HTTP/1.1 transport's answer: the reply in the request's content type,
 * then written in order with the connection's other replies. */
static void http_answer(col_req *r, int status, const char *msg) {
    if (status == 200) {
        reply_success(r);
    } else {
        col_reply_error(r, status, msg);
    }
    col_conn_flush(r->conn);
}

void col_request_complete(col_conn *c, col_req *r) {
    r->col = c->link.col;
    r->answer = http_answer;
    r->max_size = c->link.col->opt.max_body_size;
    r->route = col_route_find(r->path);
    const char *why = NULL;
    int auth;
    if (r->status != 0) {
        http_answer(r, r->status, r->reason);
    } else if ((auth = col_req_authorize(r, &why)) != 0) {
        /* Before anything else: an unauthenticated client learns nothing. */
        http_answer(r, auth, why);
    } else if (r->route == NULL) {
        http_answer(r, 404, unknown_path_msg);
    } else if (r->method != HTTP_POST) {
        http_answer(r, 405, "method not allowed: use POST");
    } else if (r->ctype != COL_CT_PROTOBUF && r->ctype != COL_CT_JSON) {
        http_answer(r, 415,
                    "unsupported Content-Type: use application/x-protobuf or application/json");
    } else if (r->enc == COL_ENC_OTHER) {
        http_answer(r, 415, "unsupported Content-Encoding: use gzip, deflate or zstd");
    } else {
        col_admit(c->link.col, r);
    }
}
