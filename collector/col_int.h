/*
 * Private declarations of the collector. Threads:
 *   loop thread   - libuv: accepts, parses HTTP (http_parser), writes replies;
 *   decode pool   - libuv's thread pool: inflates, decodes OTLP, converts to
 *                   spans and encodes the WAL record (col_decode_work);
 *   writer thread - takes every queued record, commits them in one storage
 *                   batch (group commit), hands them back to the loop.
 * A request object moves loop -> pool -> loop -> writer -> loop; only one
 * thread touches it at a time, the queues hand it over under their mutexes.
 */
#ifndef SL_COL_INT_H
#define SL_COL_INT_H

#include "collector.h"
#include "series_limit.h"

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_limits.h"
#include "sl_metrics.h"
#include "sl_model.h"

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

typedef struct col_conn col_conn;
typedef struct col_tls col_tls;
typedef struct ssl_ctx_st SSL_CTX; /* OpenSSL's, opaque here */
typedef struct col_req col_req;

/* What a signal's convert function produces from one decoded request. */
typedef struct col_records {
    const sl_tenant_limits *limits; /* input: the tenant's limits (attributes) */
    col_series_gate series;         /* input: the active series limit; output: refusals */
    uint64_t limited;               /* output: attributes dropped or values cut */
    sl_buf primary;                 /* record of the route's signal (empty: nothing to store) */
    sl_buf derived;                 /* metrics derived from the request (span RED metrics,
                                     * log counts) as col_dgroup entries: the writer
                                     * merges a batch's into one STG_METRICS record per
                                     * tenant, in the same durable batch */
    uint64_t accepted;              /* items in primary */
    uint64_t rejected;              /* items refused (partial success) */
} col_records;

/* One OTLP/HTTP route. convert runs on the decode pool with the unpacked
 * request (protobuf or OTLP/JSON, decoded by the caller into a) and fills out;
 * on partial success it writes a message about the first rejected item into
 * err. Returns 0; SL_ENOMEM when the arena's cap was reached (-> 413);
 * SL_EDECODE or SL_EINVAL for a request that cannot be stored at all (-> 400
 * with err); any other code is the server's condition (-> 503, retry). */
typedef struct col_route {
    const char *path; /* "/v1/traces" */
    stg_signal signal;
    const ProtobufCMessageDescriptor *request;
    const char *rejected_json; /* "rejectedSpans", "rejectedLogRecords", ... */
    int (*convert)(const ProtobufCMessage *req, sl_arena *a, col_records *out, char *err,
                   size_t err_size);
    /* Optional: a decoder written for this request type, tried before
     * protobuf-c. 0 with *msg set; SL_EUNSUPPORTED when the body is not in
     * its shape (protobuf-c then decides); SL_ENOMEM. */
    int (*unpack)(const uint8_t *buf, size_t len, sl_arena *a, ProtobufCMessage **msg);
} col_route;

typedef enum { COL_CT_NONE, COL_CT_PROTOBUF, COL_CT_JSON, COL_CT_OTHER } col_ctype;
typedef enum {
    COL_ENC_IDENTITY,
    COL_ENC_GZIP,
    COL_ENC_DEFLATE,
    COL_ENC_ZSTD,
    COL_ENC_OTHER
} col_enc;

struct col_req {
    col_req *next;   /* in the connection's FIFO */
    col_req *q_next; /* in the writer queue or the committed list */
    col_collector *col;
    col_conn *conn; /* HTTP/1.1 requests */
    void *grpc;     /* gRPC requests: the connection (grpc_server.c) */
    int32_t stream_id;
    /* The transport's reply: status is HTTP's (200, 400, 413, 503, ...),
     * msg the error text (ignored for 200, which answers with r->recs).
     * Loop thread; after it the transport owns r. */
    void (*answer)(col_req *r, int status, const char *msg);
    uint64_t max_size;       /* limit of the decompressed body */
    sl_tenant_limits limits; /* the tenant's, copied at admission */
    uint32_t retry_after_s;  /* Retry-After of a 429/503 (0: 1 s) */
    uv_work_t work;
    uint64_t t_start_ns; /* monotonic, when the request was complete */
    /* parsed request */
    int method; /* http_parser's */
    char path[256];
    col_ctype ctype;
    col_enc enc;
    char tenant[65]; /* decided at admission (col_req_authorize) */
    /* X-Scope-OrgID and Authorization as received (len -1: absent) */
    char orgid[66];
    int orgid_len;
    char authz[256];
    int authz_len;
    bool keep_alive;
    bool expect_continue;
    sl_buf body;
    uint64_t admitted_bytes; /* counted in col->inflight_bytes while in flight */
    /* outcome */
    int status;         /* 0 while pending */
    int commit_rc;      /* the group commit's result (writer -> loop) */
    const char *reason; /* error message for the body (static or in msg) */
    char msg[256];
    const col_route *route;
    col_records recs; /* WAL record(s), when decoding succeeded */
    bool done;        /* the reply is in reply */
    sl_buf reply;
};

/* A connection of either transport (conn_link.c): the first member of
 * col_conn and of the gRPC connection, so that a pointer to one is a pointer
 * to the other. */
typedef struct col_link col_link;
typedef struct col_link_ops {
    void (*drain)(col_link *l);   /* shutdown: take no more requests, close when answered */
    void (*close)(col_link *l);   /* close now (idempotent) */
    void (*destroy)(col_link *l); /* handles closed, writes done: free it */
    /* Plaintext read (len may be 0 after TLS records); the end of input or a
     * read error (a libuv code). */
    void (*data)(col_link *l, const uint8_t *data, size_t len);
    void (*eof)(col_link *l, int err);
} col_link_ops;

struct col_link {
    uv_tcp_t tcp;
    uv_timer_t idle; /* ticks every col_timer_tick_ms: timeouts */
    col_collector *col;
    const col_link_ops *ops;
    col_tls *tls;                 /* NULL: cleartext */
    struct col_link *prev, *next; /* in col->links */
    int refs;                     /* handles open + writes + requests in flight */
    bool closing;
    uint64_t last_active_ns; /* last read */
};

struct col_conn {
    col_link link; /* first */
    http_parser parser;
    col_req *cur;         /* request being parsed */
    col_req *head, *tail; /* requests in arrival order, awaiting replies */
    int nreqs;
    bool reading;
    bool close_after;      /* close once the queued replies are written */
    uint64_t req_start_ns; /* first byte of the request being parsed */
    char hdr_field[64];
    size_t hdr_field_len;
    bool hdr_in_value;
    char hdr_value[256];
    size_t hdr_value_len;
    size_t hdr_total;
};

struct col_collector {
    col_options opt;
    stg_store *store;
    uv_loop_t loop;
    uv_tcp_t server;
    SSL_CTX *tls_http, *tls_grpc; /* NULL: cleartext */
    uv_tcp_t grpc_server;

    col_link *links; /* open connections of both transports */
    /* grpc_server.c */
    uint16_t grpc_port;
    bool grpc_started;
    uv_async_t wake; /* writer -> loop: replies ready */
    uv_async_t stop;
    uv_timer_t stop_timer; /* the shutdown grace period */
    pthread_t loop_thread;
    uint16_t port;
    int nconns;
    bool stopping;
    /* requests decoding or queued for the writer: the bound on memory */
    int inflight;
    uint64_t inflight_bytes;
    atomic_uint_least64_t json_bytes; /* parse memory reserved by JSON decodes */
    /* writer queue */
    pthread_t writer_thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    col_req *wq_head, *wq_tail;
    col_req *done_head, *done_tail; /* committed, for the loop */
    bool writer_stop;
    /* metrics */
    /* per-tenant rate buckets (limits.c; loop thread) */
    struct col_bucket *buckets;
    size_t nbuckets, buckets_cap;
    col_series_limiter *series; /* active series per tenant (decode pool) */
    sl_metric *m_limited[STG_NSIGNALS], *m_truncated;
    sl_metric *m_accepted[STG_NSIGNALS], *m_rejected[STG_NSIGNALS], *m_req_latency[STG_NSIGNALS];
    sl_metric *m_commit_latency, *m_queue_depth, *m_batch_size, *m_bytes_received, *m_timeouts,
        *m_auth_refused;
};

/* otlp_http.c */
enum { COL_HDR_ORGID, COL_HDR_AUTHZ };
/* Keeps a header value for col_req_authorize (truncated to its buffer: a
 * truncated tenant is invalid, a truncated token unknown). */
void col_req_set_header(col_req *r, int which, const char *v, size_t len);
/* Sets r->tenant from the headers and the token table. Returns 0, or the
 * HTTP status to answer (400, 401, 403) with *why. */
int col_req_authorize(col_req *r, const char **why);
/* Admission to decoding for a request whose route, content type and
 * encoding are known: answers 503 when saturated or stopping, else queues
 * the decode work. Loop thread. */
void col_admit(col_collector *col, col_req *r);
/* The Export*ServiceResponse for r (partial_success when items were
 * rejected) into body, which holds COL_EXPORT_RESPONSE_MAX bytes. */
#define COL_EXPORT_RESPONSE_MAX 400
size_t col_export_response(const col_req *r, uint8_t *body);
/* The route for a request path (query string ignored), or NULL. */
const col_route *col_route_find(const char *path);
/* The route of a signal, or NULL while the signal is not received. */
const col_route *col_route_find_signal(stg_signal sig);
void col_request_complete(col_conn *c, col_req *r); /* loop thread */
void col_reply_error(col_req *r, int status, const char *msg);
void col_after_commit(col_collector *col, col_req *r, int rc); /* loop thread */
void col_count_status(const col_route *route, int status);     /* route may be NULL */
void col_maybe_close_wake(col_collector *col);                 /* loop thread, at shutdown */

/* limits.c */
/* Takes the request's accepted items from its tenant's bucket. Returns 0, or
 * 429 with *retry_after_s. Loop thread. */
int col_rate_take(col_collector *col, const col_req *r, uint32_t *retry_after_s);
void col_limits_free(col_collector *col);
/* Attribute limits; return how many attributes were dropped or cut. */
uint64_t col_limit_attrs(sl_attr *attrs, uint32_t *n, uint32_t *dropped,
                         const sl_tenant_limits *lim);
uint64_t col_limit_spans(sl_span *spans, size_t n, const sl_tenant_limits *lim);
uint64_t col_limit_logs(sl_log_record *recs, size_t n, const sl_tenant_limits *lim);

/* tls.c: TLS on memory BIOs (loop thread). */
SSL_CTX *col_tls_ctx_new(const char *cert, const char *key, const char *client_ca, bool h2,
                         char *err, size_t errcap);
void col_tls_ctx_free(SSL_CTX *ctx);
col_tls *col_tls_new(SSL_CTX *ctx);
void col_tls_free(col_tls *t);
/* Ciphertext from the peer: plaintext is appended to plain, records to send
 * back (handshake, alerts) to out. 0, SL_ESHUTDOWN (close_notify),
 * SL_EDECODE (TLS failure: close) or SL_ENOMEM. */
int col_tls_recv(col_tls *t, const void *in, size_t n, sl_buf *plain, sl_buf *out);
/* Plaintext to the peer: ciphertext is appended to out (held back until the
 * handshake is done). 0, SL_EDECODE or SL_ENOMEM. */
int col_tls_send(col_tls *t, const void *data, size_t n, sl_buf *out);

/* conn_link.c (loop thread). Accepts a connection of size bytes (its
 * col_link first, zeroed) on server (whose data is the collector); NULL when
 * it was refused (limit, shutdown, TLS) and is closing. */
col_link *col_link_accept(uv_stream_t *server, int status, size_t size, const col_link_ops *ops,
                          SSL_CTX *tls, uv_timer_cb on_tick);
void col_link_close(col_link *l); /* unlinks it and closes its handles */
void col_link_unref(col_link *l);
/* Sends data (owned: freed once written), through TLS when the link has it. */
void col_link_write(col_link *l, uint8_t *data, size_t len);
/* Starts reading into ops->data and ops->eof. A libuv code. */
int col_link_read_start(col_link *l);
/* Binds and listens on server (initialized by the caller, who closes it);
 * server->data = col; the bound port in *port. A libuv code. */
int col_link_listen(col_collector *col, uv_tcp_t *server, const struct sockaddr *addr,
                    uv_connection_cb on_connection, uint16_t *port);
/* Shutdown: drain (or, when hard, close) every connection. */
void col_links_shutdown(col_collector *col, bool hard);

/* grpc_server.c: OTLP/gRPC on the loop. */
int col_grpc_start(col_collector *col, const struct sockaddr *addr);
/* Shutdown (loop thread): stops listening (its connections are drained
 * through col_links_shutdown). */
void col_grpc_stop(col_collector *col);

/* http_server.c */
/* Period of the per-connection timers (both transports). */
uint64_t col_timer_tick_ms(const col_options *o);
void col_conn_flush(col_conn *c); /* writes finished replies in order */
void col_req_free(col_req *r);

/* writer.c */
int col_writer_start(col_collector *col);
void col_writer_stop(col_collector *col);
void col_writer_push(col_collector *col, col_req *r); /* loop thread */

/* pb_depth.c: 0 when no message in buf nests deeper than max_depth levels
 * (the top message is level 1), else SL_EDECODE (also for malformed wire data). */
#define COL_PB_MAX_DEPTH 64
int col_pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       int max_depth);

/* inflate.c: decompresses in into out (whose max_size is the limit).
 * Returns 0, SL_ETOOBIG, SL_EDECODE or SL_ENOMEM. */
int col_inflate(col_enc enc, const uint8_t *in, size_t len, sl_buf *out);

#endif
