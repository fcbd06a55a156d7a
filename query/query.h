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

/* An endpoint served by another part of the binary (alerting's
 * /api/v1/rules, /api/v1/alerts, /-/reload): called with the request's
 * method, path, tenant (already authenticated: query scope under /api/,
 * admin for /-/) and a getter for its query parameters. It fills *status,
 * body (JSON) and returns 0, or returns SL_ENOTFOUND for a path it does not
 * serve. Runs on a query thread: must be thread-safe. */
typedef struct qry_ext_req {
    const char *method;
    const char *path;
    const char *tenant;
    const void *priv; /* for arg() */
    const char *(*arg)(const struct qry_ext_req *r, const char *name, char *buf, size_t cap);
} qry_ext_req;
typedef int (*qry_ext_fn)(void *ud, const qry_ext_req *r, int *status, sl_buf *body);

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
    size_t deps_max_spans;     /* unused since /api/dependencies reads the live graph */
    const char *tls_cert; /* PEM certificate chain: HTTPS (GnuTLS in libmicrohttpd); NULL: HTTP */
    const char *tls_key;  /* PEM private key */
    sl_auth *auth;        /* bearer tokens (borrowed); NULL: tenant from X-Scope-OrgID */
    qry_ext_fn ext;       /* other parts' endpoints; NULL: none */
    void *ext_ud;
    /* GET /api/fleet/health: a service is down after this long without a
     * span (default 5 min), degraded above these (default 5%, 2 s) or with a
     * firing alert labelled service_name=<it>, as firing_alerts (a JSON
     * array appended to out; NULL: none) reports them. */
    uint64_t health_down_after_ms;
    double health_max_error_ratio;
    double health_max_p95_s;
    int (*firing_alerts)(void *ud, const char *tenant, const char *service, sl_buf *out);
    /* 1 (and why) when an active check of the service fails: it is down. */
    int (*check_failing)(void *ud, const char *tenant, const char *service, char *why,
                         size_t why_size);
    void *firing_ud; /* for both */
} qry_options;

void qry_options_init(qry_options *o);

/* Starts serving. store is borrowed and must outlive the server.
 * Returns 0, -errno or SL_ENOMEM; on failure *out = NULL. */
int qry_start(const qry_options *o, stg_store *store, qry_server **out);

uint16_t qry_port(const qry_server *q);

/* Stops serving and frees q. NULL is fine. */
void qry_stop(qry_server *q);

#endif
