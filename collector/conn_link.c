/*
 * What the connections of both transports share (OTLP/HTTP in http_server.c,
 * OTLP/gRPC in grpc_server.c): accepting under the connection limit, the
 * socket and its timer, TLS on the way in and out, owned writes, the
 * reference count that frees a connection once its handles are closed and
 * its writes are done, and the collector's list of open connections that
 * shutdown walks. Loop thread only.
 */
#include "col_int.h"

#include "sl_metrics.h"
#include "sl_util.h"

#include <stdlib.h>

#define READ_BUF (64 * 1024)

typedef struct link_write {
    uv_write_t w;
    col_link *l;
    uint8_t *data;
} link_write;

void col_link_unref(col_link *l) {
    if (--l->refs == 0) {
        col_tls_free(l->tls);
        l->col->nconns--;
        l->ops->destroy(l);
    }
}

static void on_handle_closed(uv_handle_t *h) {
    col_link_unref(h->data);
}

void col_link_close(col_link *l) {
    if (l->closing) {
        return;
    }
    l->closing = true;
    col_collector *col = l->col;
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else if (col->links == l) {
        col->links = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    l->prev = l->next = NULL;
    uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&l->idle, on_handle_closed);
}

col_link *col_link_accept(uv_stream_t *server, int status, size_t size, const col_link_ops *ops,
                          SSL_CTX *tls, uv_timer_cb on_tick) {
    col_collector *col = server->data;
    col_link *l = status == 0 ? calloc(1, size) : NULL;
    if (l == NULL) {
        return NULL;
    }
    l->col = col;
    l->ops = ops;
    uv_tcp_init(&col->loop, &l->tcp);
    uv_timer_init(&col->loop, &l->idle);
    l->tcp.data = l;
    l->idle.data = l;
    l->refs = 2;   /* the two handles */
    col->nconns++; /* one limit for both transports */
    l->next = col->links;
    if (l->next != NULL) {
        l->next->prev = l;
    }
    col->links = l;
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0 || col->stopping ||
        col->nconns > (int)col->opt.max_connections ||
        (tls != NULL && (l->tls = col_tls_new(tls)) == NULL)) {
        col_link_close(l);
        return NULL;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    l->last_active_ns = sl_mono_nano();
    uint64_t tick = col_timer_tick_ms(&col->opt);
    uv_timer_start(&l->idle, on_tick, tick, tick);
    return l;
}

static void on_written(uv_write_t *w, int status) {
    link_write *lw = (link_write *)w;
    (void)status;
    free(lw->data);
    col_link_unref(lw->l);
    free(lw);
}

/* Writes data (owned) to the socket as it is. */
static void write_raw(col_link *l, uint8_t *data, size_t len) {
    link_write *lw = malloc(sizeof(*lw));
    if (lw == NULL) {
        free(data);
        l->ops->close(l);
        return;
    }
    lw->l = l;
    lw->data = data;
    l->refs++;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&lw->w, (uv_stream_t *)&l->tcp, &b, 1, on_written) != 0) {
        free(data);
        free(lw);
        l->ops->close(l); /* the handles' references keep l until it is closed */
        col_link_unref(l);
    }
}

/* Writes out the bytes of b as they are (b is emptied). */
static void write_buf(col_link *l, sl_buf *b) {
    size_t n;
    uint8_t *d = sl_buf_take(b, &n);
    if (d == NULL) {
        l->ops->close(l);
        return;
    }
    write_raw(l, d, n);
}

void col_link_write(col_link *l, uint8_t *data, size_t len) {
    if (l->tls == NULL) {
        write_raw(l, data, len);
        return;
    }
    sl_buf out;
    sl_buf_init(&out, 0);
    int rc = col_tls_send(l->tls, data, len, &out);
    free(data);
    if (rc != 0) {
        sl_buf_free(&out);
        l->ops->close(l);
        return;
    }
    if (out.len > 0) {
        write_buf(l, &out);
    }
    sl_buf_free(&out);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h, (void)suggested;
    buf->base = malloc(READ_BUF);
    buf->len = buf->base ? READ_BUF : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    col_link *l = s->data;
    if (nread > 0 && !l->closing) {
        l->last_active_ns = sl_mono_nano();
        sl_metric_add(l->col->m_bytes_received, (uint64_t)nread);
        if (l->tls == NULL) {
            l->ops->data(l, (const uint8_t *)buf->base, (size_t)nread);
        } else {
            sl_buf plain, records;
            sl_buf_init(&plain, 0);
            sl_buf_init(&records, 0);
            int rc = col_tls_recv(l->tls, buf->base, (size_t)nread, &plain, &records);
            if (records.len > 0) {
                write_buf(l, &records); /* handshake records, alerts */
            }
            sl_buf_free(&records);
            if (rc != 0) {
                l->ops->close(l); /* a TLS failure, or close_notify */
            } else {
                l->ops->data(l, plain.data, plain.len);
            }
            sl_buf_free(&plain);
        }
    } else if (nread < 0) {
        l->ops->eof(l, (int)nread);
    }
    free(buf->base);
}

int col_link_read_start(col_link *l) {
    return uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
}

int col_link_listen(col_collector *col, uv_tcp_t *server, const struct sockaddr *addr,
                    uv_connection_cb on_connection, uint16_t *port) {
    server->data = col;
    int rc;
    if ((rc = uv_tcp_bind(server, addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)server, 511, on_connection)) != 0) {
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(server, (struct sockaddr *)&bound, &blen);
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void col_links_shutdown(col_collector *col, bool hard) {
    col_link *next;
    for (col_link *l = col->links; l != NULL; l = next) {
        next = l->next;
        if (hard) {
            l->ops->close(l);
        } else {
            l->ops->drain(l);
        }
    }
}
