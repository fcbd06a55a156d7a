/*
 * What every business service's HTTP handlers share on top of the runtime's
 * server: which tenant a request acts for, the request's trace context as a
 * traceparent string (for the outbox), error-to-status mapping, timestamps,
 * and opening the service's database from the runtime's --db flag.
 *
 * Tenancy: a request forwarded by the gateway (service token issued by
 * "gateway") acts for the X-Tenant-Id the gateway took from the user's
 * token; a service calling another names the tenant in the body or the
 * query ("tenant"). Thread-safe (per request).
 */
#ifndef FC_API_H
#define FC_API_H

#include "fc/fc_db.h"

#include <jansson.h>
#include <sf/sf_app.h>
#include <sf/sf_outbox.h>
#include <sf/sf_server.h>

/* The issuer of the gateway's service tokens. */
#define FC_GATEWAY "gateway"

/* The tenant the request acts for (borrowed: from a header, the query or
 * body), or NULL after answering 400 (missing or invalid tenant). */
const char *fc_api_tenant(sf_req *r, const json_t *body);

/* True when the request came through the gateway. */
bool fc_api_from_gateway(sf_req *r);

/* The user id the gateway forwarded (X-User-Id), or NULL. */
const char *fc_api_user(sf_req *r);

/* True when the request acts for a tenant administrator or for a service:
 * a request from the gateway must carry the user's token (X-User-Token,
 * verified by the gateway) with "admin" in its scope; other callers are
 * services, trusted by their service token. */
bool fc_api_admin(sf_req *r);

/* The request's trace context as a traceparent value, "" when invalid. */
void fc_api_traceparent(sf_req *r, char out[64]);

/* Answers an fc/sl error with its status: FC_ECONFLICT 409, SL_ENOTFOUND
 * 404, SL_EINVAL 400, FC_EDENIED / FC_EREUSE / FC_EEXPIRED 401, others 503
 * (storage trouble is the service's, but retrying may help). what prefixes
 * the message. */
void fc_api_fail(sf_req *r, int rc, const char *what);

/* RFC 3339 UTC with milliseconds, e.g. 2026-01-02T03:04:05.006Z. */
void fc_api_time(int64_t ms, char out[32]);

/* Opens the database named by --db (required) with the service's
 * migrations. Returns 0 or an error (reason logged). */
int fc_api_open_db(sf_app *app, const fc_migration *m, size_t n, fc_db **out);

/* Replies a JSON body and a Location header for a created resource. */
void fc_api_created(sf_req *r, const char *location, json_t *body);

/* Integer query argument name in [lo, hi] with default dflt; on a bad
 * value answers 400 and returns -1. */
int fc_api_query_int(sf_req *r, const char *name, int dflt, int lo, int hi, int *out);

/* Calls another service: method path (with its query) on upstream, a JSON
 * body (borrowed; NULL for none). base_url ("http://127.0.0.1:8102", e.g.
 * from a --users-url flag) sends it there; NULL finds an instance through
 * the registry. The runtime's client adds the service token, the CLIENT
 * span and traceparent, the breaker and retries of idempotent calls.
 * *status gets the HTTP status (0 without an answer) and *answer the
 * parsed JSON answer or NULL (the caller owns it; answer may be NULL).
 * Returns 0 when an answer arrived, else the client's error (SF_EOPEN,
 * SF_ENOINSTANCE, SF_ETIMEOUT, SF_EUPSTREAM). */
int fc_api_call(sf_app *app, const char *upstream, const char *base_url, const char *method,
                const char *path, const json_t *body, long *status, json_t **answer);

/* Describes a failed call into why: the answer's "error", or the status,
 * or the client's error. */
void fc_api_call_why(const char *upstream, int rc, long status, const json_t *answer, char *why,
                     size_t cap);

/* Adds n routes to the app's server (the strings must be static).
 * Returns 0 or the first error. */
int fc_api_routes(sf_app *app, const sf_route *routes, size_t n);

/* Starts the runtime's outbox relay on the process's database and bus
 * (both required). Returns 0 or an error (logged). */
int fc_api_relay_start(sf_app *app, sf_outbox **out);

#endif
