/*
 * OTLP/HTTP semantics on top of http_server.c: routing, the status codes the
 * OTLP/HTTP specification asks for, decoding on the worker pool, admission to
 * the bounded writer queue, and replies (ExportTraceServiceResponse with
 * partial_success, or a google.rpc.Status-shaped error) in the request's
 * content type. Loop-thread functions unless marked "pool".
 */
#include "col_int.h"

#include "decode_traces.h"
#include "otlp_json.h"

#include "sl_err.h"
#include "sl_log.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_REQ_DESC                                                                             \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor

void col_count_status(int status) {
    static const int codes[] = {200, 400, 404, 405, 413, 414, 415, 429, 500, 503};
    static sl_metric *metrics[sizeof(codes) / sizeof(codes[0])];
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (codes[i] == status) {
            if (metrics[i] == NULL) {
                char labels[64];
                snprintf(labels, sizeof(labels), "signal=\"traces\",code=\"%d\"", status);
                metrics[i] = sl_counter("sightline_otlp_requests_total", labels,
                                        "OTLP/HTTP requests answered, by status code.");
            }
            sl_metric_add(metrics[i], 1);
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
    col_count_status(status);
    if (r->t_start_ns != 0) {
        sl_metric_observe(r->conn->col->m_req_latency,
                          (double)(sl_mono_nano() - r->t_start_ns) / 1e9);
    }
}

void col_reply_error(col_req *r, int status, const char *msg) {
    char extra[128] = "";
    if (status == 405) {
        snprintf(extra, sizeof(extra), "Allow: POST\r\n");
    } else if (status == 503 || status == 429) {
        snprintf(extra, sizeof(extra), "Retry-After: 1\r\n");
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

static void reply_success(col_req *r) {
    if (r->ctype == COL_CT_PROTOBUF) {
        /* The __init functions rather than the INIT macros: those cast away
         * const from protobuf-c's empty string, which clang warns about. */
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps;
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__init(&resp);
        opentelemetry__proto__collector__trace__v1__export_trace_partial_success__init(&ps);
        if (r->rejected > 0) {
            ps.rejected_spans = (int64_t)r->rejected;
            ps.error_message = r->msg;
            resp.partial_success = &ps;
        }
        uint8_t body[512];
        size_t n =
            opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(
                &resp);
        if (n > sizeof(body)) {
            static char generic[] = "some spans were rejected";
            ps.error_message = generic;
            n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(
                &resp);
        }
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp,
                                                                                        body);
        finish(r, 200, "application/x-protobuf", body, n, NULL);
        return;
    }
    sl_buf b;
    sl_buf_init(&b, 4096);
    if (r->rejected > 0) {
        sl_buf_printf(&b, "{\"partialSuccess\":{\"rejectedSpans\":\"%llu\",\"errorMessage\":\"",
                      (unsigned long long)r->rejected);
        json_escape(&b, r->msg);
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
    col_collector *col = r->conn->col;
    if (!t_arena_ready) {
        /* Decoded messages take a few times their wire size. */
        sl_arena_init(&t_arena, 64ull * 1024 * 1024 + 16 * col->opt.max_body_size);
        t_arena_ready = true;
    }
    sl_arena *a = &t_arena;
    uint64_t json_cost = 0;
    if (r->enc != COL_ENC_IDENTITY) {
        sl_buf plain;
        sl_buf_init(&plain, col->opt.max_body_size);
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
    if (r->ctype == COL_CT_PROTOBUF) {
        if (col_pb_check_depth(&TRACE_REQ_DESC, r->body.data, r->body.len, COL_PB_MAX_DEPTH) != 0) {
            r->status = 400;
            r->reason = "body is not a valid ExportTraceServiceRequest protobuf "
                        "(malformed, or values nested too deeply)";
            goto out;
        }
        msg = protobuf_c_message_unpack(&TRACE_REQ_DESC, sl_arena_pb(a), r->body.len, r->body.data);
        if (msg == NULL) {
            r->status = 400;
            r->reason = "body is not a valid ExportTraceServiceRequest protobuf";
            goto out;
        }
    } else {
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
        int rc = col_json_decode(&TRACE_REQ_DESC, (const char *)r->body.data, r->body.len, a, &msg,
                                 r->msg, sizeof(r->msg));
        if (rc != 0) {
            r->status = rc == SL_ENOMEM ? 413 : 400;
            r->reason = rc == SL_ENOMEM ? "decoded request exceeds the memory limit" : r->msg;
            goto out;
        }
    }
    sl_span *spans = NULL;
    size_t n = 0, rejected = 0;
    int rc = col_traces_to_model(
        (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)msg, a,
        &spans, &n, &rejected, r->msg, sizeof(r->msg));
    if (rc != 0) {
        r->status = rc == SL_ENOMEM ? 413 : 400;
        r->reason = rc == SL_ENOMEM ? "decoded request exceeds the memory limit" : r->msg;
        goto out;
    }
    r->accepted = n;
    r->rejected = rejected;
    if (n > 0 && (rc = stg_wal_encode(spans, n, &r->record)) != 0) {
        r->status = 503;
        r->reason = "out of memory";
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
    col_collector *col = r->conn->col;
    (void)status;
    if (r->status != 0 || r->accepted == 0) {
        col->inflight--;
        col->inflight_bytes -= r->admitted_bytes;
        sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
        sl_metric_add(col->m_spans_rejected, r->rejected);
        if (r->status != 0) {
            col_reply_error(r, r->status, r->reason);
        } else {
            reply_success(r); /* nothing to store: every span was rejected, or none sent */
        }
        col_conn_flush(r->conn);
        col_maybe_close_wake(col);
        return;
    }
    col_writer_push(col, r);
}

void col_after_commit(col_collector *col, col_req *r, int status) {
    col->inflight--;
    col->inflight_bytes -= r->admitted_bytes;
    sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
    sl_buf_free(&r->record);
    if (status == 200) {
        sl_metric_add(col->m_spans_accepted, r->accepted);
        sl_metric_add(col->m_spans_rejected, r->rejected);
        reply_success(r);
    } else {
        col_reply_error(r, 503, "storage is unavailable; retry later");
    }
    col_conn_flush(r->conn);
}

/* --- admission ------------------------------------------------------------ */

void col_request_complete(col_conn *c, col_req *r) {
    col_collector *col = c->col;
    size_t plen = strcspn(r->path, "?");
    bool traces = plen == 10 && memcmp(r->path, "/v1/traces", 10) == 0;
    if (r->status != 0) {
        col_reply_error(r, r->status, r->reason);
    } else if (!traces) {
        col_reply_error(r, 404, "unknown path: OTLP/HTTP traces are received at /v1/traces");
    } else if (r->method != HTTP_POST) {
        col_reply_error(r, 405, "method not allowed: use POST");
    } else if (r->ctype != COL_CT_PROTOBUF && r->ctype != COL_CT_JSON) {
        col_reply_error(r, 415,
                        "unsupported Content-Type: use application/x-protobuf or application/json");
    } else if (r->enc == COL_ENC_OTHER) {
        col_reply_error(r, 415, "unsupported Content-Encoding: use gzip, deflate or zstd");
    } else if (col->stopping) {
        col_reply_error(r, 503, "shutting down");
    } else if (col->inflight >= (int)col->opt.queue_max ||
               col->inflight_bytes + r->body.len > col->opt.queue_max_bytes) {
        /* The write path is saturated: answer now instead of queueing. */
        col_reply_error(r, 503, "ingest queue is full; retry later");
    } else if (stg_wal_backlog(col->store) > col->opt.wal_backlog_max) {
        /* Storage has not caught up with compacting what it accepted. */
        col_reply_error(r, 503, "storage is behind; retry later");
    } else {
        col->inflight++;
        r->admitted_bytes = r->body.len;
        col->inflight_bytes += r->admitted_bytes;
        sl_metric_set(col->m_queue_depth, (uint64_t)col->inflight);
        r->work.data = r;
        if (uv_queue_work(&col->loop, &r->work, decode_work, after_decode) != 0) {
            col->inflight--;
            col_reply_error(r, 503, "cannot schedule decoding");
        }
    }
    col_conn_flush(c);
}
