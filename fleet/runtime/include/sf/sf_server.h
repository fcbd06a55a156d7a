/*
 * The fleet's HTTP server: libmicrohttpd (one thread per connection, so
 * handlers may block on upstream calls) behind a middleware that, for every
 * request:
 *   - continues the caller's trace (W3C traceparent/tracestate) with a SERVER
 *     span named "METHOD route" carrying the HTTP semantic-convention
 *     attributes, current on the handler's thread (so client calls and logs
 *     made by the handler join it);
 *   - refuses bodies over the size limit (413) before reading them;
 *   - applies injected faults (latency, error ratio) when enabled;
 *   - checks the service token of routes that are not public: a missing or
 *     bad token is 401, a valid token whose issuer or scope the route does
 *     not admit is 403;
 *   - counts and times the request (http_server_requests_total and
 *     http_server_request_duration_seconds on /metrics, and the OTel
 *     http.server.request.duration histogram) and emits a request log
 *     correlated with the span.
 * Built-in routes: GET /health, GET /ready (the registered checks), GET
 * /metrics, and with faults enabled POST/DELETE /admin/faults (scope admin).
 *
 * Thread-safety: routes and checks are added before sf_server_start; after
 * that handlers run concurrently on connection threads, and every sf_req_* /
 * sf_reply_* function is for the handler's own request only.
 */
#ifndef SF_SERVER_H
#define SF_SERVER_H

#include "sf_json.h"
#include "sf_jwt.h"
#include "sf_telemetry.h"

#include <jansson.h>
#include <sightline/sightline.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_server sf_server;
typedef struct sf_req sf_req;

/* A handler answers with one sf_reply* call; one that returns without
 * replying makes the middleware answer 500. */
typedef void (*sf_handler_fn)(sf_req *req, void *userdata);

typedef struct sf_route {
    const char *method;  /* "GET", "POST", ...; NULL = any */
    const char *pattern; /* "/v1/users/{id}"; a last segment "*" matches the rest */
    sf_handler_fn handler;
    void *userdata;
    bool public_route;   /* true: no service token needed */
    const char *callers; /* space-separated token issuers admitted; NULL = any */
    const char *scope;   /* scope the token must carry; NULL = none */
} sf_route;

/* A readiness check: 0 when the dependency is reachable, else a negative
 * error with a short reason in err. Called from /ready on a connection thread. */
typedef int (*sf_check_fn)(void *userdata, char *err, size_t cap);

typedef struct sf_server_options {
    const char *service;           /* required: span and log attribute, the token audience */
    const char *listen;            /* "127.0.0.1:0" (port 0 = ephemeral) */
    size_t max_body_size;          /* 1 MiB */
    unsigned max_connections;      /* 512 */
    unsigned connection_timeout_s; /* idle keep-alive connections: 60 */
    const sf_jwt_key *service_key; /* borrowed; NULL: tokens are not checked */
    bool enable_faults;            /* serve /admin/faults */
    sf_telemetry *telemetry;       /* borrowed; NULL: no spans, logs or OTel metrics */
} sf_server_options;

void sf_server_options_init(sf_server_options *o);

/* Creates a server (not listening yet). The caller owns *out. Errors:
 * SL_EINVAL, SL_ENOMEM. */
int sf_server_create(const sf_server_options *o, sf_server **out);

/* Adds a route (copied; strings must outlive the server). Errors: SL_EINVAL
 * (bad pattern, after start), SL_ENOMEM. */
int sf_server_route(sf_server *s, const sf_route *r);
/* Adds a readiness check named name (copied). */
int sf_server_add_check(sf_server *s, const char *name, sf_check_fn fn, void *userdata);

/* Binds the listening socket without serving yet (the port is then known;
 * connections wait in the backlog). Errors: -errno (address in use...),
 * SL_EINVAL (unparsable listen address). */
int sf_server_bind(sf_server *s);
/* Binds (if not done) and starts serving. Errors: as sf_server_bind. */
int sf_server_start(sf_server *s);
/* The bound port (after bind). */
uint16_t sf_server_port(const sf_server *s);

/* Stops accepting connections, answers new requests on open connections
 * with "Connection: close", waits up to timeout_ms for the requests in flight
 * to finish and stops the server. Returns 0 or SF_ETIMEOUT (some requests
 * were cut). Call once, from one thread. */
int sf_server_drain(sf_server *s, unsigned timeout_ms);

/* Requests being handled right now. */
unsigned sf_server_in_flight(const sf_server *s);

/* Stops (if needed) and frees. NULL harmless. */
void sf_server_destroy(sf_server *s);

/* --- inside a handler ------------------------------------------------------- */

const char *sf_req_method(const sf_req *r);
const char *sf_req_path(const sf_req *r);
/* A request header (case-insensitive), a query argument, a {param} of the
 * route's pattern (or "*" for the rest); NULL when absent. Borrowed until the
 * handler returns. */
const char *sf_req_header(const sf_req *r, const char *name);
const char *sf_req_query(const sf_req *r, const char *name);
const char *sf_req_param(const sf_req *r, const char *name);
/* Calls fn for every request header (name, value), or every query argument
 * (decoded; value NULL for "?flag"), in arrival order; stops when fn returns
 * non-zero. Returns the number of calls. For proxies (the gateway). */
typedef int (*sf_kv_fn)(void *userdata, const char *name, const char *value);
int sf_req_foreach_header(const sf_req *r, sf_kv_fn fn, void *userdata);
int sf_req_foreach_query(const sf_req *r, sf_kv_fn fn, void *userdata);
/* The peer's IP address as text (IPv4 or IPv6) into buf; returns 0, or
 * SL_EINVAL (buf left empty) when the connection has no such address. */
int sf_req_client_address(const sf_req *r, char *buf, size_t cap);

/* The body (NUL-terminated for convenience; len excludes the NUL). */
const char *sf_req_body(const sf_req *r, size_t *len);
/* The verified service token's claims and issuer; NULL on public routes
 * or when tokens are not checked. */
const json_t *sf_req_claims(const sf_req *r);
const char *sf_req_caller(const sf_req *r);
/* The request's SERVER span (for attributes and events) and its context. */
sl_span *sf_req_span(sf_req *r);
void sf_req_context(const sf_req *r, sl_span_context *out);
sf_server *sf_req_server(sf_req *r);

/* Parses the body as a JSON object and checks it against fields (see
 * sf_json_check); on failure answers 400 (415 when the Content-Type is not
 * JSON) with the reason and returns a negative error: the handler then just
 * returns. The caller owns *out. */
int sf_req_json(sf_req *r, const sf_json_field *fields, size_t n, bool allow_unknown, json_t **out);

/* Adds a response header (copied). Up to 16. */
int sf_reply_header(sf_req *r, const char *name, const char *value);
/* Answers with a body (copied). */
int sf_reply(sf_req *r, unsigned status, const char *content_type, const void *body, size_t len);
/* Answers with a JSON value; takes ownership of body (json_decref'd). */
int sf_reply_json(sf_req *r, unsigned status, json_t *body);
/* Answers {"error": "<message>"} with the status. */
int sf_reply_error(sf_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
