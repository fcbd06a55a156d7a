/*
 * The gateway's route table, loaded from a YAML file (see routes.yaml beside
 * this file for the format): which upstream service serves a path, whether
 * the user's JWT is required, which methods are allowed, the canary split,
 * per-route timeouts, and deprecation of an API version (Deprecation, Sunset
 * and Link headers). Matching is by longest prefix at a '/' boundary, or by
 * an exact path, among the routes that admit the request's method. The table is immutable once
 * loaded: any thread may match.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_METHOD_GET (1u << 0)
#define GW_METHOD_HEAD (1u << 1)
#define GW_METHOD_POST (1u << 2)
#define GW_METHOD_PUT (1u << 3)
#define GW_METHOD_PATCH (1u << 4)
#define GW_METHOD_DELETE (1u << 5)
#define GW_METHOD_OPTIONS (1u << 6)
#define GW_METHOD_ALL 0x7fu

typedef struct gw_route {
    char *prefix;         /* normalized: leading '/', no trailing '/' (except "/") */
    bool exact;           /* match the path itself only */
    char *service;        /* upstream service name in the registry */
    bool auth_user;       /* a valid user JWT is required */
    uint32_t methods;     /* GW_METHOD_* bits */
    uint32_t timeout_ms;  /* upstream timeout */
    char *canary_version; /* version pattern of the canary instances, NULL = none */
    uint32_t canary_permille;
    int64_t deprecated_unix; /* > 0: Deprecation: @<this> */
    int64_t sunset_unix;     /* > 0: Sunset: <HTTP-date> */
    char *successor;         /* Link: <successor>; rel="successor-version" */
    char *scope;             /* scope of the gateway's service token upstream, NULL = none */
    size_t index;            /* position in the table (per-route state lives in arrays) */
} gw_route;

typedef struct gw_rate {
    double rate;  /* tokens per second; 0 = unlimited */
    double burst; /* bucket size */
} gw_rate;

typedef struct gw_config {
    gw_route *routes;
    size_t n_routes;
    size_t max_body_bytes;
    size_t max_path_bytes;
    size_t max_header_bytes;
    gw_rate per_key;
    gw_rate per_tenant;
} gw_config;

/* Parses the YAML text into *cfg (owned; free with gw_config_free). On error
 * returns SL_EINVAL and writes a message naming the line into err. */
int gw_config_parse(const char *text, size_t len, gw_config *cfg, char *err, size_t err_size);

/* Reads and parses a file. Errors as gw_config_parse, or -errno. */
int gw_config_load(const char *path, gw_config *cfg, char *err, size_t err_size);

void gw_config_free(gw_config *cfg);

/* Returns the best route for method (a GW_METHOD_* bit) and path (query
 * string excluded), or NULL. *allowed gets the methods that some route
 * covering the path admits: NULL with *allowed != 0 is a 405, with
 * *allowed == 0 a 404. */
const gw_route *gw_config_match(const gw_config *cfg, uint32_t method, const char *path,
                                size_t path_len, uint32_t *allowed);

/* Maps a method name to its GW_METHOD_* bit (0 when unknown). */
uint32_t gw_method_bit(const char *method);

/* Writes an Allow header's value for a set of GW_METHOD_* bits ("GET, POST"). */
void gw_methods_allow(uint32_t methods, char *out, size_t size);

/* Parses an RFC 3339 UTC timestamp ("2026-12-31T00:00:00Z") or a date
 * ("2026-12-31"). Returns 0 or SL_EINVAL. */
int gw_parse_time(const char *s, int64_t *unix_s);

/* Formats an IMF-fixdate (RFC 9110): "Thu, 31 Dec 2026 00:00:00 GMT". */
void gw_http_date(int64_t unix_s, char out[40]);

#endif
