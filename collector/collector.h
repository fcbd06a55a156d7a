/*
 * The OTLP receiver: an HTTP/1.1 server and an HTTP/2 gRPC server on libuv
 * (one event-loop thread) that accept the OTLP exports, decode bodies on a worker pool, hands the
 * decoded spans to a single writer thread that group-commits them to storage, and only then
 * answers. The queue to the writer is bounded; when it is full the answer is 503 with Retry-After,
 * never unbounded memory.
 *
 * Thread-safety: col_start/col_stop from one controlling thread.
 */
#ifndef SL_COLLECTOR_H
#define SL_COLLECTOR_H

#include "sl_auth.h"
#include "sl_limits.h"
#include "storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct col_collector col_collector;

typedef struct col_options {
    const char *host;            /* listen address; default "0.0.0.0" */
    uint16_t http_port;          /* 0 picks an ephemeral port; default 4318 */
    uint64_t max_body_size;      /* after decompression; default 16 MiB */
    uint32_t queue_max;          /* requests waiting for the writer; default 256 */
    uint64_t queue_max_bytes;    /* bytes of records waiting; default 256 MiB */
    uint32_t max_connections;    /* default 1024 */
    uint32_t idle_timeout_ms;    /* keep-alive idle close; default 60000 */
    uint32_t request_timeout_ms; /* a request (headers and body) must arrive whole within
                                  * this of its first byte; default 30000 */
    uint64_t wal_backlog_max;    /* uncut WAL bytes before 503; default 512 MiB */
    uint64_t json_memory_max;    /* parse memory of JSON bodies decoding at once; 1 GiB */
    int32_t grpc_port;           /* OTLP/gRPC (h2c); 0 ephemeral, < 0 off; default 4317 */
    uint64_t grpc_max_message;   /* largest gRPC message, compressed or not; default 4 MiB */
    uint32_t shutdown_grace_ms;  /* col_stop waits this long for replies; default 10000 */
    const char *tls_cert;        /* PEM certificate chain: TLS on both ports; NULL: cleartext */
    const char *tls_key;         /* PEM private key */
    const char *tls_client_ca;   /* PEM CA: clients must present a certificate it signed */
    sl_limits *limits;           /* per-tenant limits (borrowed); NULL: none */
    uint64_t active_series_window_ns; /* a series idle this long stops counting towards
                                       * max_active_series; 0: 10 minutes */
    sl_auth *auth; /* bearer tokens (borrowed); NULL: the tenant is X-Scope-OrgID */
} col_options;

void col_options_init(col_options *o);

/* Binds, starts the event-loop thread, the decode workers and the writer.
 * store is borrowed and must outlive the collector.
 * Returns 0, -errno (e.g. -EADDRINUSE) or SL_ENOMEM; on failure *out = NULL. */
int col_start(const col_options *o, stg_store *store, col_collector **out);

/* The bound HTTP port (useful after asking for port 0). */
uint16_t col_http_port(const col_collector *c);
/* The bound gRPC port; 0 when gRPC is off. */
uint16_t col_grpc_port(const col_collector *c);

/* Graceful stop: stops accepting and reading, lets every request in flight
 * commit and be answered (connections close once their replies are out; up to
 * shutdown_grace_ms, then the rest are closed), stops every thread, frees c.
 * Nothing acknowledged is lost either way. NULL is fine. */
void col_stop(col_collector *c);

#endif
