/*
 * OTLP/gRPC: the three Export services over HTTP/2 cleartext (h2c with prior
 * knowledge, what gRPC clients speak to an http:// endpoint), with nghttp2 on
 * the collector's libuv loop. Loop thread only.
 *
 * A unary call arrives as HEADERS (:path names the service method) and DATA
 * carrying one length-prefixed message (1 byte compressed flag, 4 bytes
 * big-endian length). When its stream ends, the message becomes a col_req and
 * takes the same path as an OTLP/HTTP protobuf request: admission, decoding
 * on the pool, group commit. Its answer is a gRPC response: HEADERS, one
 * DATA frame with the Export*ServiceResponse, trailers with grpc-status; or,
 * for an error, a trailers-only response (grpc-status, grpc-message, and for
 * UNAVAILABLE a google.rpc.RetryInfo in grpc-status-details-bin).
 *
 * Lifetimes: a stream's state (g_stream) belongs to nghttp2's stream and is
 * freed when the stream closes. A request handed to the pipeline holds a
 * reference to its connection, not to its stream; when the answer comes back
 * it looks the stream up by id and drops the answer when the client has gone.
 */
#include "col_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define G_MAX_STREAMS 100
#define G_WINDOW (1u << 20) /* per stream; the connection window follows */

typedef struct g_conn {
    col_link link; /* first */
    nghttp2_session *h2;
    struct g_stream *streams; /* open streams (nghttp2 does not free their data) */
    bool draining;            /* GOAWAY sent: close when the last open stream ends */
} g_conn;

typedef struct g_stream {
    struct g_stream *prev, *next;
    uint64_t start_ns; /* when its HEADERS arrived */
    int32_t id;
    col_req *r;      /* while receiving; NULL once handed to the pipeline */
    bool answered;   /* an error went out before the request was complete */
    int grpc_status; /* an error found while receiving (0: none yet) */
    const char *grpc_msg;
    uint8_t *resp; /* response message, length-prefixed */
    size_t resp_len, resp_off;
    char status_text[12];
} g_stream;

/* gRPC status codes used here. */
enum {
    G_OK = 0,
    G_INVALID_ARGUMENT = 3,
    G_PERMISSION_DENIED = 7,
    G_RESOURCE_EXHAUSTED = 8,
    G_UNIMPLEMENTED = 12,
    G_INTERNAL = 13,
    G_UNAVAILABLE = 14,
    G_UNAUTHENTICATED = 16,
};

static const char *const grpc_paths[STG_NSIGNALS] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
};

static void conn_close(g_conn *c);
static void conn_send(g_conn *c);

static void stream_free(g_conn *c, g_stream *st) {
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        c->streams = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    col_req_free(st->r);
    free(st->resp);
    free(st);
}

static void conn_destroy(col_link *l) {
    g_conn *c = (g_conn *)l;
    while (c->streams != NULL) {
        stream_free(c, c->streams);
    }
    if (c->h2 != NULL) {
        nghttp2_session_del(c->h2);
    }
    free(c);
}

/* The route of a gRPC method path, or NULL (UNIMPLEMENTED). */
static const col_route *grpc_route(const char *path) {
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        if (strcmp(path, grpc_paths[sig]) == 0) {
            const col_route *rt = col_route_find_signal((stg_signal)sig);
            if (rt != NULL) {
                return rt;
            }
        }
    }
    return NULL;
}

static int grpc_code(int http_status) {
    switch (http_status) {
    case 200:
        return G_OK;
    case 400:
    case 415:
        return G_INVALID_ARGUMENT;
    case 401:
        return G_UNAUTHENTICATED;
    case 403:
        return G_PERMISSION_DENIED;
    case 404:
    case 405:
        return G_UNIMPLEMENTED;
    case 413:
    case 414:
        return G_RESOURCE_EXHAUSTED;
    case 429:
    case 503:
        return G_UNAVAILABLE;
    default:
        return G_INTERNAL;
    }
}

/* grpc-message is percent-encoded: bytes outside printable ASCII and '%'. */
static void percent_encode(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s != '\0' && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch > 0x7e || ch == '%') {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

/* google.rpc.Status{code, message, details: [Any(RetryInfo{retry_delay: 1s})]}
 * in unpadded base64: what grpc-status-details-bin carries, so that clients
 * following the OTLP spec retry after the delay. */
static size_t retry_info_details(int code, const char *msg, uint32_t delay_s, char *out,
                                 size_t cap) {
    static const char type_url[] = "type.googleapis.com/google.rpc.RetryInfo";
    uint8_t pb[300];
    size_t n = 0;
    size_t ml = strnlen(msg, 200);
    /* retry_delay { seconds: delay_s } (under 128: one varint byte) */
    const uint8_t retry[] = {0x0a, 0x02, 0x08,
                             (uint8_t)(delay_s < 1     ? 1
                                       : delay_s > 127 ? 127
                                                       : delay_s)};
    size_t any_len = 2 + (sizeof(type_url) - 1) + 2 + sizeof(retry);
    pb[n++] = 0x08;
    pb[n++] = (uint8_t)code;
    pb[n++] = 0x12;
    pb[n++] = (uint8_t)ml; /* < 128 */
    memcpy(pb + n, msg, ml);
    n += ml;
    pb[n++] = 0x1a;
    pb[n++] = (uint8_t)any_len;
    pb[n++] = 0x0a;
    pb[n++] = (uint8_t)(sizeof(type_url) - 1);
    memcpy(pb + n, type_url, sizeof(type_url) - 1);
    n += sizeof(type_url) - 1;
    pb[n++] = 0x12;
    pb[n++] = (uint8_t)sizeof(retry);
    memcpy(pb + n, retry, sizeof(retry));
    n += sizeof(retry);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        uint32_t v = (uint32_t)pb[i] << 16;
        size_t left = n - i;
        v |= left > 1 ? (uint32_t)pb[i + 1] << 8 : 0;
        v |= left > 2 ? pb[i + 2] : 0;
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (left > 1) {
            out[o++] = b64[(v >> 6) & 63];
        }
        if (left > 2) {
            out[o++] = b64[v & 63];
        }
    }
    out[o] = '\0';
    return o;
}

#define NV(name, value)                                                                            \
    {                                                                                              \
        (uint8_t *)(uintptr_t)(name), (uint8_t *)(uintptr_t)(value), sizeof(name) - 1,             \
            strlen(value), NGHTTP2_NV_FLAG_NONE                                                    \
    }

/* A trailers-only response: the call ends with an error status. */
static void submit_error(g_conn *c, int32_t id, int code, const char *msg, uint32_t delay_s) {
    char code_s[12], enc[512], details[700];
    snprintf(code_s, sizeof(code_s), "%d", code);
    percent_encode(msg != NULL ? msg : "", enc, sizeof(enc));
    nghttp2_nv nva[5] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                         NV("grpc-status", code_s), NV("grpc-message", enc)};
    size_t n = 4;
    if (code == G_UNAVAILABLE) {
        retry_info_details(code, msg != NULL ? msg : "", delay_s, details, sizeof(details));
        nva[n++] = (nghttp2_nv)NV("grpc-status-details-bin", details);
    }
    nghttp2_submit_response(c->h2, id, nva, n, NULL);
}

static ssize_t resp_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
    g_stream *st = src->ptr;
    (void)ud;
    size_t n = st->resp_len - st->resp_off;
    n = n < len ? n : len;
    memcpy(buf, st->resp + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr[] = {NV("grpc-status", "0")};
        if (nghttp2_submit_trailer(h2, id, tr, 1) != 0) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* The pipeline's answer for a gRPC request (col_req.answer). */
static void grpc_answer(col_req *r, int status, const char *msg) {
    g_conn *c = r->grpc;
    g_stream *st =
        c->link.closing ? NULL : nghttp2_session_get_stream_user_data(c->h2, r->stream_id);
    if (st != NULL) {
        int code = grpc_code(status);
        if (code != G_OK) {
            submit_error(c, r->stream_id, code, msg, r->retry_after_s);
        } else {
            uint8_t body[COL_EXPORT_RESPONSE_MAX];
            size_t n = col_export_response(r, body);
            st->resp = malloc(5 + n);
            if (st->resp == NULL) {
                submit_error(c, r->stream_id, G_UNAVAILABLE, "out of memory", 1);
            } else {
                st->resp[0] = 0;
                sl_put_be32(st->resp + 1, (uint32_t)n);
                memcpy(st->resp + 5, body, n);
                st->resp_len = 5 + n;
                nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
                nghttp2_data_provider dp = {.source.ptr = st, .read_callback = resp_read};
                nghttp2_submit_response(c->h2, r->stream_id, nva, 2, &dp);
            }
        }
        col_count_status(r->route, status);
        if (r->t_start_ns != 0 && r->route != NULL) {
            sl_metric_observe(r->col->m_req_latency[r->route->signal],
                              (double)(sl_mono_nano() - r->t_start_ns) / 1e9);
        }
        conn_send(c);
    }
    col_req_free(r);
    col_link_unref(&c->link);
}

/* --- receiving ------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud) {
    g_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    g_stream *st = calloc(1, sizeof(*st));
    col_req *r = calloc(1, sizeof(*r));
    if (st == NULL || r == NULL) {
        free(st);
        free(r);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    r->col = c->link.col;
    r->max_size = c->link.col->opt.grpc_max_message;
    sl_buf_init(&r->body, r->max_size + 5);
    sl_buf_init(&r->recs.primary, 0);
    sl_buf_init(&r->recs.derived, 0);
    sl_buf_init(&r->reply, 0);
    memcpy(r->tenant, "default", 8);
    r->orgid_len = -1;
    r->authz_len = -1;
    r->method = HTTP_POST;
    r->ctype = COL_CT_NONE;
    st->r = r;
    st->start_ns = sl_mono_nano();
    st->id = f->hd.stream_id;
    st->next = c->streams;
    if (st->next != NULL) {
        st->next->prev = st;
    }
    c->streams = st;
    nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, st);
    return 0;
}

static void stream_fail(g_stream *st, int code, const char *msg) {
    if (st->grpc_status == 0) {
        st->grpc_status = code;
        st->grpc_msg = msg;
    }
}

static bool value_is(const uint8_t *v, size_t vl, const char *s) {
    return vl == strlen(s) && strncasecmp((const char *)v, s, vl) == 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud) {
    (void)flags, (void)ud;
    g_stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (st == NULL || st->r == NULL || f->hd.type != NGHTTP2_HEADERS ||
        f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* trailers of a request carry nothing we use */
    }
    col_req *r = st->r;
    const char *n = (const char *)name;
    if (nl == 5 && memcmp(n, ":path", 5) == 0) {
        if (vl >= sizeof(r->path)) {
            stream_fail(st, G_UNIMPLEMENTED, "unknown method");
        } else {
            memcpy(r->path, v, vl);
            r->path[vl] = '\0';
        }
    } else if (nl == 7 && memcmp(n, ":method", 7) == 0) {
        if (!value_is(v, vl, "POST")) {
            stream_fail(st, G_UNIMPLEMENTED, "gRPC calls use POST");
        }
    } else if (nl == 12 && memcmp(n, "content-type", 12) == 0) {
        /* application/grpc, application/grpc+proto, ...;params */
        if (vl >= 16 && strncasecmp((const char *)v, "application/grpc", 16) == 0 &&
            (vl == 16 || v[16] == '+' || v[16] == ';')) {
            r->ctype = COL_CT_PROTOBUF;
            if (vl > 17 && v[16] == '+' && !(vl >= 22 && memcmp(v + 17, "proto", 5) == 0)) {
                stream_fail(st, G_UNIMPLEMENTED, "only the protobuf codec is supported");
            }
        }
    } else if (nl == 13 && memcmp(n, "grpc-encoding", 13) == 0) {
        if (value_is(v, vl, "identity")) {
            r->enc = COL_ENC_IDENTITY;
        } else if (value_is(v, vl, "gzip")) {
            r->enc = COL_ENC_GZIP;
        } else if (value_is(v, vl, "deflate")) {
            r->enc = COL_ENC_DEFLATE;
        } else if (value_is(v, vl, "zstd")) {
            r->enc = COL_ENC_ZSTD;
        } else {
            r->enc = COL_ENC_OTHER;
        }
    } else if (nl == 13 && memcmp(n, "x-scope-orgid", 13) == 0) {
        col_req_set_header(r, COL_HDR_ORGID, (const char *)v, vl);
    } else if (nl == 13 && memcmp(n, "authorization", 13) == 0) {
        col_req_set_header(r, COL_HDR_AUTHZ, (const char *)v, vl);
    }
    return 0;
}

/* Answers an error at once and stops the client sending the rest. */
static void stream_abort(g_conn *c, int32_t id, g_stream *st, int http_status, const char *msg) {
    stream_fail(st, grpc_code(http_status), msg);
    col_count_status(NULL, http_status);
    submit_error(c, id, st->grpc_status, st->grpc_msg, 1);
    st->answered = true; /* on_frame_send resets the stream once the status is out */
    sl_buf_free(&st->r->body);
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
    g_conn *c = ud;
    (void)flags;
    g_stream *st = nghttp2_session_get_stream_user_data(h2, id);
    if (st == NULL || st->r == NULL || st->answered) {
        return 0;
    }
    col_req *r = st->r;
    if (sl_buf_append(&r->body, data, len) != 0 ||
        (r->body.len >= 5 && sl_get_be32(r->body.data + 1) > r->max_size)) {
        char *m = r->msg;
        snprintf(m, sizeof(r->msg), "message larger than the maximum of %llu bytes",
                 (unsigned long long)r->max_size);
        stream_abort(c, id, st, 413, m);
    }
    return 0;
}

/* The whole request is in: check its framing and hand it to the pipeline. */
static void stream_complete(g_conn *c, int32_t id, g_stream *st) {
    col_req *r = st->r;
    if (st->grpc_status == 0) {
        if (r->ctype != COL_CT_PROTOBUF) {
            stream_fail(st, G_INVALID_ARGUMENT, "content-type must be application/grpc");
        } else if ((r->route = grpc_route(r->path)) == NULL) {
            stream_fail(st, G_UNIMPLEMENTED,
                        "unknown method: the OTLP Export services of traces, logs and metrics "
                        "are served");
        } else if (r->enc == COL_ENC_OTHER) {
            stream_fail(st, G_UNIMPLEMENTED,
                        "unsupported grpc-encoding: use identity, gzip, deflate or zstd");
        }
    }
    uint32_t mlen = 0;
    if (st->grpc_status == 0) {
        if (r->body.len < 5) {
            stream_fail(st, G_INVALID_ARGUMENT, "missing gRPC message");
        } else if (r->body.data[0] > 1) {
            stream_fail(st, G_INVALID_ARGUMENT, "invalid gRPC message flags");
        } else if ((mlen = sl_get_be32(r->body.data + 1)) != r->body.len - 5) {
            stream_fail(st, G_INVALID_ARGUMENT,
                        "a unary call carries exactly one length-prefixed message");
        } else if (r->body.data[0] == 1 && r->enc == COL_ENC_IDENTITY) {
            stream_fail(st, G_INTERNAL, "compressed message without grpc-encoding");
        }
    }
    if (st->grpc_status != 0) {
        col_count_status(r->route, st->grpc_status == G_RESOURCE_EXHAUSTED ? 413 : 400);
        submit_error(c, id, st->grpc_status, st->grpc_msg, 1);
        return; /* r is freed with the stream */
    }
    if (r->body.data[0] == 0) {
        r->enc = COL_ENC_IDENTITY;
    }
    memmove(r->body.data, r->body.data + 5, mlen);
    r->body.len = mlen;
    st->r = NULL;
    r->grpc = c;
    r->stream_id = id;
    r->answer = grpc_answer;
    r->t_start_ns = sl_mono_nano();
    c->link.refs++; /* the request refers to the connection until answered */
    col_admit(c->link.col, r);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud) {
    g_conn *c = ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        /* Authentication as soon as the headers are in, before any data. */
        g_stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        const char *why = NULL;
        int status;
        if (st != NULL && st->r != NULL && !st->answered &&
            (status = col_req_authorize(st->r, &why)) != 0) {
            stream_abort(c, f->hd.stream_id, st, status, why);
            return 0;
        }
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        g_stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (st != NULL && st->r != NULL && !st->answered) {
            stream_complete(c, f->hd.stream_id, st);
        }
    }
    return 0;
}

/* After the early error of an oversized call has been sent, RST_STREAM
 * (NO_ERROR) tells the client to stop sending the rest. Sent only now:
 * queued together, the reset would overtake the status. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud) {
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        g_stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (st != NULL && st->answered) {
            nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud) {
    (void)err;
    g_conn *c = ud;
    g_stream *st = nghttp2_session_get_stream_user_data(h2, id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        stream_free(c, st);
    }
    return 0;
}

/* --- connection I/O ---------------------------------------------------------- */

/* Writes whatever nghttp2 has queued; closes when the session is done. */
static void conn_send(g_conn *c) {
    if (c->link.closing) {
        return;
    }
    sl_buf out;
    sl_buf_init(&out, 0);
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            sl_buf_free(&out);
            conn_close(c);
            return;
        }
        if (n == 0) {
            break;
        }
        if (sl_buf_append(&out, data, (size_t)n) != 0) {
            sl_buf_free(&out);
            conn_close(c);
            return;
        }
    }
    if (out.len > 0) {
        size_t len;
        uint8_t *d = sl_buf_take(&out, &len);
        if (d == NULL) {
            conn_close(c);
            return;
        }
        col_link_write(&c->link, d, len);
        if (c->link.closing) {
            return;
        }
    }
    sl_buf_free(&out);
    if ((!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) ||
        (c->draining && c->streams == NULL)) {
        conn_close(c);
    }
}

static void on_data(col_link *l, const uint8_t *data, size_t len) {
    g_conn *c = (g_conn *)l;
    ssize_t rc = len == 0 ? 0 : nghttp2_session_mem_recv(c->h2, data, len);
    if (rc < 0) {
        SL_LOG_D("grpc", "closing a connection: %s", nghttp2_strerror((int)rc));
        conn_send(c); /* GOAWAY, when nghttp2 queued one */
        conn_close(c);
    } else {
        conn_send(c);
    }
}

static void on_eof(col_link *l, int err) {
    (void)err;
    conn_close((g_conn *)l);
}

static void conn_close(g_conn *c) {
    col_link_close(&c->link);
}

/* Slow calls and idle connections: a call still receiving after
 * request_timeout is reset (CANCELLED for the client); a connection with
 * no open stream is closed after idle_timeout without traffic. */
static void on_idle(uv_timer_t *t) {
    g_conn *c = t->data; /* the link, first member */
    const col_options *o = &c->link.col->opt;
    uint64_t now = sl_mono_nano();
    bool reset = false;
    for (g_stream *st = c->streams; st != NULL; st = st->next) {
        if (st->r != NULL && !st->answered &&
            now - st->start_ns > (uint64_t)o->request_timeout_ms * 1000000u) {
            st->answered = true;
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
            sl_metric_add(c->link.col->m_timeouts, 1);
            reset = true;
        }
    }
    if (reset) {
        conn_send(c);
    } else if (c->streams == NULL &&
               now - c->link.last_active_ns > (uint64_t)o->idle_timeout_ms * 1000000u) {
        nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
        conn_send(c);
        conn_close(c);
    }
}

/* Shutdown: GOAWAY naming the last stream taken; calls already started
 * finish, the client opens new ones elsewhere. */
static void conn_drain(col_link *l) {
    g_conn *c = (g_conn *)l;
    if (c->link.closing || c->draining) {
        return;
    }
    c->draining = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    conn_send(c);
}

static void conn_close_link(col_link *l) {
    conn_close((g_conn *)l);
}

static const col_link_ops g_conn_ops = {conn_drain, conn_close_link, conn_destroy, on_data, on_eof};

static void on_connection(uv_stream_t *server, int status) {
    col_collector *col = server->data;
    g_conn *c = (g_conn *)col_link_accept(server, status, sizeof(g_conn), &g_conn_ops,
                                          col->tls_grpc, on_idle);
    if (c == NULL) {
        return;
    }
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        conn_close(c);
        return;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    int rc = nghttp2_session_server_new(&c->h2, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        c->h2 = NULL;
        conn_close(c);
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, G_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, G_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    /* Widen the connection window too, so one large message is not held
     * back at 64 KiB per round trip. */
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 16 * G_WINDOW);
    if (col_link_read_start(&c->link) != 0) {
        conn_close(c);
        return;
    }
    conn_send(c);
}

int col_grpc_start(col_collector *col, const struct sockaddr *addr) {
    uv_tcp_init(&col->loop, &col->grpc_server);
    col->grpc_started = true; /* the handle is to be closed */
    return col_link_listen(col, &col->grpc_server, addr, on_connection, &col->grpc_port);
}

void col_grpc_stop(col_collector *col) {
    if (col->grpc_started && !uv_is_closing((uv_handle_t *)&col->grpc_server)) {
        uv_close((uv_handle_t *)&col->grpc_server, NULL);
    }
}
