/*
 * The fleet's HTTP client on libcurl. Every call:
 *   - goes to an absolute URL, or to an instance of a named service picked
 *     round-robin from the registry client's cache (discovery-aware calls);
 *   - passes the upstream's circuit breaker (refused at once with SF_EOPEN
 *     while it is open; see sf_breaker.h), which 5xx answers, timeouts and
 *     connection failures trip;
 *   - runs as a CLIENT span (child of the thread's current span: inside a
 *     handler, the request's SERVER span) named after the method, with
 *     http.request.method, url.full, server.address, server.port,
 *     peer.service, http.response.status_code and, on retries,
 *     http.request.resend_count (one span per attempt), and carries its
 *     traceparent/tracestate;
 *   - carries "Authorization: Bearer <service token>" (iss = this service,
 *     aud = the upstream's name, the call's scope) when a key is configured;
 *     tokens are cached until 10 s before they expire;
 *   - is bounded by a timeout per attempt; idempotent calls (GET, HEAD, PUT,
 *     DELETE, OPTIONS, or marked so) are retried on connection failures,
 *     timeouts and 502/503/504 with jittered exponential backoff
 *     (sf_backoff_ms), never past the breaker.
 * Breaker states are exported on /metrics as
 * http_client_circuit_breaker_state{upstream} (0 closed, 1 open, 2 half-open)
 * and through sdk-c as the gauge http.client.circuit_breaker.state; calls are
 * counted in http_client_requests_total{upstream,status}.
 *
 * Thread-safe: one client serves every thread (a pool of curl handles keeps
 * connections alive between calls).
 */
#ifndef SF_CLIENT_H
#define SF_CLIENT_H

#include "sf_breaker.h"
#include "sf_jwt.h"
#include "sf_telemetry.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_client sf_client;
typedef struct sf_registry sf_registry;

typedef struct sf_client_options {
    const char *service;           /* required: this service's name (token issuer) */
    const sf_jwt_key *service_key; /* borrowed; NULL: no Authorization header */
    sf_telemetry *telemetry;       /* borrowed; NULL: no spans */
    unsigned timeout_ms;           /* per attempt: 3000 */
    unsigned connect_timeout_ms;   /* 1000 */
    unsigned max_retries;          /* 2 (idempotent calls only) */
    unsigned backoff_base_ms;      /* 50 */
    unsigned backoff_max_ms;       /* 1000 */
    size_t max_response_size;      /* 8 MiB: a larger answer fails the call */
    unsigned token_ttl_s;          /* 60 */
    sf_breaker_options breaker;    /* per upstream; see sf_breaker.h */
} sf_client_options;

void sf_client_options_init(sf_client_options *o);

/* The caller owns *out. Errors: SL_EINVAL, SL_ENOMEM. */
int sf_client_create(const sf_client_options *o, sf_client **out);
/* After every call returned, and after the telemetry was shut down
 * (sf_telemetry_shutdown: its last metric collection reads the breakers).
 * NULL harmless. */
void sf_client_destroy(sf_client *c);
/* Lets discovery-aware calls find instances (borrowed; set before use). */
void sf_client_set_registry(sf_client *c, sf_registry *r);

typedef struct sf_call {
    const char *method;   /* "GET" when NULL */
    const char *upstream; /* required: the service called (audience, breaker, discovery) */
    const char *url;      /* absolute URL; NULL: discover upstream and use path */
    const char *path;     /* with discovery: "/v1/users/42?x=1" */
    const char *version;  /* discovery filters (NULL: any) */
    const char *tag;
    const char *scope; /* the token's scope (NULL: none) */
    const void *body;  /* NULL: none */
    size_t body_len;
    const char *content_type;   /* "application/json" when a body is given */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
    unsigned timeout_ms;        /* 0: the client's */
    int idempotent;             /* -1: by method; 0 or 1: as stated */
    bool untraced;              /* no span, no trace headers (e.g. heartbeats) */
} sf_call;

void sf_call_init(sf_call *c);

typedef struct sf_response {
    long status;
    char *body; /* NUL-terminated; the caller owns it (sf_response_free) */
    size_t len;
    char *headers; /* the raw response header block of the final answer */
    unsigned attempts;
    char instance[256]; /* the address called (with discovery) */
} sf_response;

/* Makes the call. Returns 0 when an HTTP answer arrived (whatever its
 * status; a 5xx after the retries is still 0 with resp->status set), else:
 * SF_EOPEN (breaker open: nothing was sent), SF_ENOINSTANCE (discovery found
 * none), SF_ETIMEOUT, SF_EUPSTREAM (connection failed, answer too large),
 * SL_EINVAL, SL_ENOMEM. resp is filled in every case (status 0 without an
 * answer) and must be freed. */
int sf_client_do(sf_client *c, const sf_call *call, sf_response *resp);

/* Shorthand: a JSON call (body may be NULL), answer parsed when it is JSON.
 * *json gets the parsed answer or NULL (the caller owns it). */
int sf_client_json(sf_client *c, const sf_call *call, const json_t *body, long *status,
                   json_t **json);

/* A response header's value (case-insensitive name) copied into out;
 * false when absent. */
bool sf_response_header(const sf_response *r, const char *name, char *out, size_t cap);
void sf_response_free(sf_response *r);

/* The breaker state of an upstream (CLOSED when never called). */
sf_breaker_state sf_client_breaker_state(sf_client *c, const char *upstream);

#ifdef __cplusplus
}
#endif

#endif
