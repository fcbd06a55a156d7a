/*
 * The gateway's checks of an incoming request before it is forwarded, and the
 * pieces of its answers that do not depend on the HTTP library: the path
 * (length, characters, no dot segments), the body (size limit, JSON content
 * type, well-formed JSON), the JSON error body, and the deprecation headers
 * of a route. Pure and thread-safe.
 *
 * Error bodies: {"error":{"status":429,"code":"rate_limited","message":"..."}}
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include "gw_routes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_verdict {
    int status;       /* 0 = pass; else the HTTP status to answer */
    const char *code; /* a stable machine-readable code, e.g. "body_too_large" */
    char message[200];
} gw_verdict;

/* Checks the request target's path: at most max bytes, starts with '/',
 * printable ASCII without '\\', no "." or ".." segments, no "//", no
 * encoded NUL, slash or backslash. Fills v (400 bad_path / 414 uri_too_long)
 * and returns false when it fails. */
bool gw_check_path(const char *path, size_t len, size_t max, gw_verdict *v);

/* Checks the request's header section, measured as on the wire ("name: value"
 * and CRLF per field): over max bytes is 431 headers_too_large. */
bool gw_check_header_bytes(size_t bytes, size_t max, gw_verdict *v);

/* Checks a declared body size before reading it: 413 body_too_large. */
bool gw_check_body_size(uint64_t declared, size_t max, gw_verdict *v);

/* Checks a request body once read: non-empty bodies need a JSON content type
 * (415 unsupported_media_type) and must parse as a JSON object or array
 * (400 invalid_json); POST, PUT and PATCH without a body pass (the service
 * decides). Bodies past max are 413. */
bool gw_check_body(const char *content_type, const char *body, size_t len, size_t max,
                   gw_verdict *v);

/* The JSON error body for a verdict (malloc'd; NULL when out of memory). */
char *gw_error_body(int status, const char *code, const char *message);

/* The deprecation headers of a route (empty strings when not set):
 * Deprecation: @<unix seconds> (RFC 9745), Sunset: <IMF-fixdate> (RFC 8594),
 * Link: <successor + rest of path>; rel="successor-version". rest is the
 * request path after the route's prefix. */
typedef struct gw_deprecation {
    char deprecation[32];
    char sunset[40];
    char link[600];
} gw_deprecation;
void gw_route_deprecation(const gw_route *r, const char *rest, gw_deprecation *out);

#endif
