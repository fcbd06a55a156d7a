/*
 * The query server: a libmicrohttpd server (its own thread pool) answering the
 * Jaeger-compatible trace API, the server's own /metrics, /healthz and /readyz,
 * and the static UI. It only reads from storage.
 *
 * Thread-safety: qry_start/qry_stop from one controlling thread.
 */
#ifndef SL_QUERY_H
#define SL_QUERY_H

#include "sl_auth.h"
#include "storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qry_server qry_server;

typedef struct qry_options {
    const char *host;   /* listen address; default "0.0.0.0" */
    uint16_t port;      /* 0 picks an ephemeral port; default 16686 */
    const char *ui_dir; /* static files; NULL: no UI */
    unsigned threads;   /* worker threads; default 2 */
    unsigned max_limit; /* cap on /api/traces limit; default 1500 */
    /* Fields below were appended after the first version. */
    unsigned max_connections;  /* concurrent connections; default 512 */
    unsigned timeout_s;        /* idle connection timeout, seconds; default 30 */
    size_t max_response_bytes; /* larger answers are refused with a 400; default 256 MiB */
    size_t deps_max_spans;     /* spans /api/dependencies looks at; default 2,000,000 */
    const char *tls_cert; /* PEM certificate chain: HTTPS (GnuTLS in libmicrohttpd); NULL: HTTP */
    const char *tls_key;  /* PEM private key */
    sl_auth *auth;        /* bearer tokens (borrowed); NULL: tenant from X-Scope-OrgID */
} qry_options;

void qry_options_init(qry_options *o);

/* Starts serving. store is borrowed and must outlive the server.
 * Returns 0, -errno or SL_ENOMEM; on failure *out = NULL. */
int qry_start(const qry_options *o, stg_store *store, qry_server **out);

uint16_t qry_port(const qry_server *q);

/* Stops serving and frees q. NULL is fine. */
void qry_stop(qry_server *q);

#endif
