/*
 * HTTP/1.1 on libuv: connections, framing through http_parser (Content-Length,
 * chunked bodies, keep-alive, pipelining), replies written strictly in request
 * order. Everything here runs on the loop thread. A connection stops reading
 * while too many of its requests await replies (per-connection backpressure),
 * and is freed only when its handles are closed and no request refers to it.
 */
#include "col_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PIPELINED 16
#define MAX_HEADER_BYTES (64 * 1024)

static void conn_close(col_conn *c);
static void start_reading(col_conn *c);

void col_req_free(col_req *r) {
    if (r == NULL) {
        return;
    }
    sl_buf_free(&r->body);
    sl_buf_free(&r->recs.primary);
    sl_buf_free(&r->recs.derived);
    sl_buf_free(&r->reply);
    free(r);
}

/* --- http_parser callbacks ----------------------------------------------- */

static int on_message_begin(http_parser *p) {
    col_conn *c = p->data;
    col_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return -1;
    }
    r->conn = c;
    c->req_start_ns = sl_mono_nano();
    sl_buf_init(&r->body, c->link.col->opt.max_body_size);
    sl_buf_init(&r->recs.primary, 0);
    sl_buf_init(&r->recs.derived, 0);
    sl_buf_init(&r->reply, 0);
    memcpy(r->tenant, "default", 8);
    r->orgid_len = -1;
    r->authz_len = -1;
    c->cur = r;
    c->hdr_field_len = 0;
    c->hdr_value_len = 0;
    c->hdr_in_value = false;
    c->hdr_total = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    col_conn *c = p->data;
    col_req *r = c->cur;
    struct http_parser_url u;
    size_t have = strlen(r->path);
    if (have + len >= sizeof(r->path)) {
        r->status = 414;
        r->reason = "request URI too long";
        return 0;
    }
    memcpy(r->path + have, at, len);
    r->path[have + len] = '\0';
    (void)u;
    return 0;
}

static bool hdr_is(const col_conn *c, const char *name) {
    return c->hdr_field_len == strlen(name) &&
           strncasecmp(c->hdr_field, name, c->hdr_field_len) == 0;
}

static void trim(const char **s, size_t *len) {
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t')) {
        (*len)--;
    }
}

/* Applies one complete header to the current request. */
static void header_done(col_conn *c) {
    col_req *r = c->cur;
    const char *v = c->hdr_value;
    size_t vl = c->hdr_value_len;
    trim(&v, &vl);
    if (hdr_is(c, "content-type")) {
        /* media type, ignoring parameters such as charset */
        size_t ml = 0;
        while (ml < vl && v[ml] != ';' && v[ml] != ' ') {
            ml++;
        }
        if (ml == 22 && strncasecmp(v, "application/x-protobuf", 22) == 0) {
            r->ctype = COL_CT_PROTOBUF;
        } else if (ml == 16 && strncasecmp(v, "application/json", 16) == 0) {
            r->ctype = COL_CT_JSON;
        } else {
            r->ctype = COL_CT_OTHER;
        }
    } else if (hdr_is(c, "content-encoding")) {
        if (vl == 0 || (vl == 8 && strncasecmp(v, "identity", 8) == 0)) {
            r->enc = COL_ENC_IDENTITY;
        } else if ((vl == 4 && strncasecmp(v, "gzip", 4) == 0) ||
                   (vl == 6 && strncasecmp(v, "x-gzip", 6) == 0)) {
            r->enc = COL_ENC_GZIP;
        } else if (vl == 7 && strncasecmp(v, "deflate", 7) == 0) {
            r->enc = COL_ENC_DEFLATE;
        } else if (vl == 4 && strncasecmp(v, "zstd", 4) == 0) {
            r->enc = COL_ENC_ZSTD;
        } else {
            r->enc = COL_ENC_OTHER;
        }
    } else if (hdr_is(c, "x-scope-orgid")) {
        col_req_set_header(r, COL_HDR_ORGID, v, vl);
    } else if (hdr_is(c, "authorization")) {
        col_req_set_header(r, COL_HDR_AUTHZ, v, vl);
    } else if (hdr_is(c, "expect")) {
        r->expect_continue = vl == 12 && strncasecmp(v, "100-continue", 12) == 0;
    }
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    col_conn *c = p->data;
    if ((c->hdr_total += len) > MAX_HEADER_BYTES) {
        return -1;
    }
    if (c->hdr_in_value) {
        header_done(c);
        c->hdr_field_len = 0;
        c->hdr_value_len = 0;
        c->hdr_in_value = false;
    }
    /* Names longer than any header we read cannot match: keep a prefix. */
    size_t room = sizeof(c->hdr_field) - c->hdr_field_len;
    size_t n = len < room ? len : room;
    memcpy(c->hdr_field + c->hdr_field_len, at, n);
    c->hdr_field_len += n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    col_conn *c = p->data;
    if ((c->hdr_total += len) > MAX_HEADER_BYTES) {
        return -1;
    }
    c->hdr_in_value = true;
    size_t room = sizeof(c->hdr_value) - 1 - c->hdr_value_len;
    size_t n = len < room ? len : room;
    memcpy(c->hdr_value + c->hdr_value_len, at, n);
    c->hdr_value_len += n;
    return 0;
}

static void write_raw(col_conn *c, const char *s, size_t len);

static int on_headers_complete(http_parser *p) {
    col_conn *c = p->data;
    col_req *r = c->cur;
    if (c->hdr_in_value) {
        header_done(c);
        c->hdr_in_value = false;
    }
    r->method = p->method;
    if (r->status == 0 && (p->flags & F_CONTENTLENGTH) &&
        p->content_length > c->link.col->opt.max_body_size) {
        r->status = 413;
        r->reason = "request body exceeds the size limit";
    }
    if (r->expect_continue && r->status == 0 && c->head == NULL) {
        write_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    col_conn *c = p->data;
    col_req *r = c->cur;
    if (r->status != 0) {
        return 0; /* already answered with an error: discard the body */
    }
    int rc = sl_buf_append(&r->body, at, len);
    if (rc == SL_ETOOBIG) {
        r->status = 413;
        r->reason = "request body exceeds the size limit";
        sl_buf_free(&r->body);
    } else if (rc != 0) {
        r->status = 503;
        r->reason = "out of memory";
        sl_buf_free(&r->body);
    }
    return 0;
}

static int on_message_complete(http_parser *p) {
    col_conn *c = p->data;
    col_req *r = c->cur;
    c->cur = NULL;
    r->keep_alive = http_should_keep_alive(p) != 0;
    r->t_start_ns = sl_mono_nano();
    if (c->tail != NULL) {
        c->tail->next = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    c->nreqs++;
    c->link.refs++; /* the request refers to the connection until freed */
    if (!r->keep_alive) {
        /* Nothing after a closing request is answered. */
        http_parser_pause(p, 1);
    }
    col_request_complete(c, r);
    return 0;
}

static const http_parser_settings g_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- writing ------------------------------------------------------------- */

static void write_raw(col_conn *c, const char *s, size_t len) {
    uint8_t *d = malloc(len);
    if (d == NULL) {
        conn_close(c);
        return;
    }
    memcpy(d, s, len);
    col_link_write(&c->link, d, len);
}

void col_conn_flush(col_conn *c) {
    while (c->head != NULL && c->head->done) {
        col_req *r = c->head;
        c->head = r->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        c->nreqs--;
        if (!c->link.closing) {
            size_t len;
            uint8_t *d = sl_buf_take(&r->reply, &len);
            col_link_write(&c->link, d, len);
            if (!r->keep_alive) {
                c->close_after = true;
            }
        }
        col_req_free(r);
        col_link_unref(&c->link);
    }
    if (c->link.closing) {
        return;
    }
    if (c->close_after && c->head == NULL) {
        conn_close(c);
        return;
    }
    if (!c->close_after && !c->reading && c->nreqs < MAX_PIPELINED) {
        start_reading(c);
    }
}

/* --- reading ------------------------------------------------------------- */

static void reply_parse_error(col_conn *c) {
    static const char resp[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        "Content-Length: 22\r\nConnection: close\r\n\r\nmalformed HTTP request";
    /* Only safe to answer when no earlier reply is pending. */
    if (c->head == NULL) {
        write_raw(c, resp, sizeof(resp) - 1);
    }
    col_count_status(NULL, 400);
    c->close_after = true;
    if (c->head == NULL) {
        conn_close(c);
    }
}

static void stop_reading(col_conn *c) {
    uv_read_stop((uv_stream_t *)&c->link.tcp);
    c->reading = false;
}

static void on_data(col_link *l, const uint8_t *data, size_t len) {
    col_conn *c = (col_conn *)l;
    size_t n = len == 0 ? 0 : http_parser_execute(&c->parser, &g_settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        /* A request without keep-alive: read no further. */
        stop_reading(c);
        c->close_after = true;
    } else if (e != HPE_OK || n != len) {
        if (c->cur != NULL) {
            col_req_free(c->cur);
            c->cur = NULL;
        }
        stop_reading(c);
        reply_parse_error(c);
    } else if (c->nreqs >= MAX_PIPELINED) {
        stop_reading(c);
    }
}

static void on_eof(col_link *l, int err) {
    col_conn *c = (col_conn *)l;
    if (c->cur != NULL) {
        col_req_free(c->cur);
        c->cur = NULL;
    }
    if (err == UV_EOF && c->head != NULL) {
        /* Half-close: answer what was asked, then close. */
        stop_reading(c);
        c->close_after = true;
    } else {
        conn_close(c);
    }
}

static void start_reading(col_conn *c) {
    if (col_link_read_start(&c->link) == 0) {
        c->reading = true;
    }
}

/* --- lifecycle ------------------------------------------------------------ */

static void conn_destroy(col_link *l) {
    free(l); /* the first member of its col_conn */
}

static void conn_close(col_conn *c) {
    if (c->link.closing) {
        return;
    }
    if (c->cur != NULL) {
        col_req_free(c->cur);
        c->cur = NULL;
    }
    col_link_close(&c->link);
    /* Requests still decoding or committing keep their reference and free
     * themselves when they come back; finished ones can go now. */
    col_conn_flush(c);
}

/* The connection's one timer ticks at half the shorter of the two limits:
 * a request must arrive whole (headers and body) within request_timeout of
 * its first byte however slowly it trickles, and a connection with nothing
 * pending is closed after idle_timeout without traffic. */
static void on_idle(uv_timer_t *t) {
    col_conn *c = t->data; /* the link, first member */
    const col_options *o = &c->link.col->opt;
    uint64_t now = sl_mono_nano();
    if (c->cur != NULL && now - c->req_start_ns > (uint64_t)o->request_timeout_ms * 1000000u) {
        static const char resp[] = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: 16\r\nConnection: close\r\n\r\n"
                                   "request too slow";
        if (c->head == NULL) {
            write_raw(c, resp, sizeof(resp) - 1);
        }
        sl_metric_add(c->link.col->m_timeouts, 1);
        conn_close(c);
    } else if (c->head == NULL && c->cur == NULL &&
               now - c->link.last_active_ns > (uint64_t)o->idle_timeout_ms * 1000000u) {
        conn_close(c);
    }
}

uint64_t col_timer_tick_ms(const col_options *o) {
    uint64_t tick =
        o->idle_timeout_ms < o->request_timeout_ms ? o->idle_timeout_ms : o->request_timeout_ms;
    tick /= 2;
    return tick < 50 ? 50 : tick;
}

static void conn_drain(col_link *l);
static void conn_close_link(col_link *l) {
    conn_close((col_conn *)l);
}

static const col_link_ops g_conn_ops = {conn_drain, conn_close_link, conn_destroy, on_data, on_eof};

static void on_connection(uv_stream_t *server, int status) {
    col_collector *col = server->data;
    col_conn *c = (col_conn *)col_link_accept(server, status, sizeof(col_conn), &g_conn_ops,
                                              col->tls_http, on_idle);
    if (c == NULL) {
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    start_reading(c);
}

/* Shutdown, first phase: stop reading; a connection closes once the replies
 * of its requests in flight are written (their commits still complete). */
static void conn_drain(col_link *l) {
    col_conn *c = (col_conn *)l;
    if (c->link.closing) {
        return;
    }
    if (c->cur != NULL) {
        col_req_free(c->cur); /* not received completely: never acknowledged */
        c->cur = NULL;
    }
    if (c->reading) {
        stop_reading(c);
    }
    c->close_after = true;
    if (c->head == NULL) {
        conn_close(c);
    }
}

/* Shutdown, second phase (the grace period ran out): close everything. */
static void on_stop_timeout(uv_timer_t *t) {
    col_collector *col = t->data;
    SL_LOG_W("collector", "shutdown: closing connections whose replies are still pending");
    col_links_shutdown(col, true);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_stop(uv_async_t *a) {
    col_collector *col = a->data;
    col->stopping = true;
    col_grpc_stop(col);
    uv_close((uv_handle_t *)&col->server, NULL);
    col_links_shutdown(col, false);
    uv_close((uv_handle_t *)&col->stop, NULL);
    /* The grace timer does not keep the loop alive: when every connection
     * has closed and nothing is in flight, the loop ends without it. */
    uv_timer_init(&col->loop, &col->stop_timer);
    col->stop_timer.data = col;
    uv_timer_start(&col->stop_timer, on_stop_timeout, col->opt.shutdown_grace_ms, 0);
    uv_unref((uv_handle_t *)&col->stop_timer);
    /* wake closes once nothing is in flight: replies still to come need it */
    col_maybe_close_wake(col);
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void *loop_main(void *arg) {
    col_collector *col = arg;
    uv_run(&col->loop, UV_RUN_DEFAULT);
    /* Only unreferenced handles are left (the grace timer): close them. */
    uv_walk(&col->loop, close_any, NULL);
    uv_run(&col->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_wake(uv_async_t *a);

void col_options_init(col_options *o) {
    memset(o, 0, sizeof(*o));
    o->host = "0.0.0.0";
    o->http_port = 4318;
    o->max_body_size = 16ull << 20;
    o->queue_max = 256;
    o->queue_max_bytes = 256ull << 20;
    o->max_connections = 1024;
    o->idle_timeout_ms = 60000;
    o->request_timeout_ms = 30000;
    o->json_memory_max = 1ull << 30;
    o->wal_backlog_max = 512ull << 20;
    o->grpc_port = 4317;
    o->shutdown_grace_ms = 10000;
    o->grpc_max_message = 4ull << 20;
}

int col_start(const col_options *o, stg_store *store, col_collector **out) {
    int rc = 0;
    *out = NULL;
    col_collector *col = calloc(1, sizeof(*col));
    if (col == NULL) {
        return SL_ENOMEM;
    }
    col->opt = *o;
    col->store = store;
    pthread_mutex_init(&col->mu, NULL);
    pthread_cond_init(&col->cond, NULL);
    static const char *const accepted_names[STG_NSIGNALS] = {
        "sightline_spans_accepted_total", "sightline_log_records_accepted_total",
        "sightline_data_points_accepted_total"};
    static const char *const rejected_names[STG_NSIGNALS] = {
        "sightline_spans_rejected_total", "sightline_log_records_rejected_total",
        "sightline_data_points_rejected_total"};
    static const char *const signal_labels[STG_NSIGNALS] = {"signal=\"traces\"", "signal=\"logs\"",
                                                            "signal=\"metrics\""};
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        col->m_accepted[sig] = sl_counter(accepted_names[sig], "", "Items written durably.");
        col->m_rejected[sig] = sl_counter(
            rejected_names[sig], "", "Items refused (invalid data), reported as partial success.");
        col->m_req_latency[sig] =
            sl_histogram("sightline_otlp_request_duration_seconds", signal_labels[sig],
                         "From a complete request to its reply being queued.", sl_latency_bounds,
                         sl_latency_nbounds);
    }
    col->m_commit_latency = sl_histogram("sightline_storage_commit_duration_seconds", "",
                                         "Duration of one group commit (fsync included).",
                                         sl_latency_bounds, sl_latency_nbounds);
    col->m_queue_depth = sl_gauge("sightline_ingest_queue_depth", "",
                                  "Requests decoding or waiting for the writer.");
    col->m_batch_size =
        sl_counter("sightline_storage_commits_total", "", "Group commits performed.");
    col->m_auth_refused = sl_counter("sightline_otlp_auth_refused_total", "",
                                     "OTLP requests refused with 401 or 403.");
    static const char *const limited_names[STG_NSIGNALS] = {
        "sightline_spans_rate_limited_total", "sightline_log_records_rate_limited_total",
        "sightline_data_points_rate_limited_total"};
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        col->m_limited[sig] =
            sl_counter(limited_names[sig], "", "Items refused with 429: over their tenant's rate.");
    }
    col->m_truncated = sl_counter("sightline_attributes_limited_total", "",
                                  "Attributes dropped or values cut by tenant limits.");
    col->m_timeouts = sl_counter("sightline_otlp_request_timeouts_total", "",
                                 "Connections closed because a request arrived too slowly.");
    col->m_bytes_received =
        sl_counter("sightline_otlp_received_bytes_total", "", "Bytes read from OTLP clients.");
    if (o->tls_cert != NULL) {
        char err[400];
        col->tls_http =
            col_tls_ctx_new(o->tls_cert, o->tls_key, o->tls_client_ca, false, err, sizeof(err));
        col->tls_grpc = col->tls_http == NULL
                            ? NULL
                            : col_tls_ctx_new(o->tls_cert, o->tls_key, o->tls_client_ca, true, err,
                                              sizeof(err));
        if (col->tls_grpc == NULL) {
            SL_LOG_E("collector", "%s", err);
            col_tls_ctx_free(col->tls_http);
            free(col);
            return SL_EINVAL;
        }
    }
    if ((rc = uv_loop_init(&col->loop)) != 0) {
        col_tls_ctx_free(col->tls_http);
        col_tls_ctx_free(col->tls_grpc);
        free(col);
        return rc;
    }
    uv_async_init(&col->loop, &col->wake, on_wake);
    col->wake.data = col;
    uv_async_init(&col->loop, &col->stop, on_stop);
    col->stop.data = col;
    uv_tcp_init(&col->loop, &col->server);
    struct sockaddr_storage addr;
    if (uv_ip4_addr(o->host, o->http_port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(o->host, o->http_port, (struct sockaddr_in6 *)&addr) != 0) {
        rc = SL_EINVAL;
        goto fail;
    }
    if ((rc = col_link_listen(col, &col->server, (struct sockaddr *)&addr, on_connection,
                              &col->port)) != 0) {
        goto fail;
    }
    if (o->grpc_port >= 0) {
        struct sockaddr_storage gaddr;
        if (uv_ip4_addr(o->host, o->grpc_port, (struct sockaddr_in *)&gaddr) != 0 &&
            uv_ip6_addr(o->host, o->grpc_port, (struct sockaddr_in6 *)&gaddr) != 0) {
            rc = SL_EINVAL;
            goto fail;
        }
        if ((rc = col_grpc_start(col, (struct sockaddr *)&gaddr)) != 0) {
            goto fail;
        }
    }
    /* NULL (out of memory) leaves series unlimited rather than refuse ingest. */
    col->series = col_series_limiter_new(o->active_series_window_ns, store, o->limits);
    if ((rc = col_writer_start(col)) != 0) {
        goto fail;
    }
    if (pthread_create(&col->loop_thread, NULL, loop_main, col) != 0) {
        col_writer_stop(col);
        rc = SL_ENOMEM;
        goto fail;
    }
    *out = col;
    return 0;
fail:
    uv_close((uv_handle_t *)&col->server, NULL);
    if (col->grpc_started) {
        uv_close((uv_handle_t *)&col->grpc_server, NULL);
    }
    uv_close((uv_handle_t *)&col->wake, NULL);
    uv_close((uv_handle_t *)&col->stop, NULL);
    uv_run(&col->loop, UV_RUN_DEFAULT);
    uv_loop_close(&col->loop);
    pthread_mutex_destroy(&col->mu);
    pthread_cond_destroy(&col->cond);
    col_series_limiter_free(col->series);
    col_tls_ctx_free(col->tls_http);
    col_tls_ctx_free(col->tls_grpc);
    free(col);
    return rc;
}

uint16_t col_http_port(const col_collector *c) {
    return c->port;
}

uint16_t col_grpc_port(const col_collector *c) {
    return c->grpc_started ? c->grpc_port : 0;
}

static void on_wake(uv_async_t *a) {
    col_collector *col = a->data;
    pthread_mutex_lock(&col->mu);
    col_req *r = col->done_head;
    col->done_head = col->done_tail = NULL;
    pthread_mutex_unlock(&col->mu);
    while (r != NULL) {
        col_req *next = r->q_next;
        r->q_next = NULL;
        col_after_commit(col, r, r->status);
        r = next;
    }
    col_maybe_close_wake(col);
}

void col_maybe_close_wake(col_collector *col) {
    if (col->stopping && col->inflight == 0 && !uv_is_closing((uv_handle_t *)&col->wake)) {
        uv_close((uv_handle_t *)&col->wake, NULL);
    }
}

void col_stop(col_collector *c) {
    if (c == NULL) {
        return;
    }
    uv_async_send(&c->stop);
    /* The wake handle closes when the last in-flight request has been
     * answered; nudge it in case nothing is in flight. */
    uv_async_send(&c->wake);
    pthread_join(c->loop_thread, NULL);
    col_writer_stop(c);
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    col_limits_free(c);
    col_tls_ctx_free(c->tls_http);
    col_tls_ctx_free(c->tls_grpc);
    free(c);
}
