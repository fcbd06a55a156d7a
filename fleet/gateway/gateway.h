/*
 * The gateway service (see gateway.c for the request pipeline): created from
 * a route file, a registry URL, the user-token key and the runtime's HTTP
 * client, then mounted on the runtime's server under /v1/ and /v2/.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <sf/sf_client.h>
#include <sf/sf_server.h>

#include <stddef.h>

typedef struct gw_gateway gw_gateway;

typedef struct gw_gateway_options {
    const char *routes_file;   /* required: the YAML route table */
    const char *registry_url;  /* required: "http://127.0.0.1:8500" */
    const char *user_key_file; /* Ed25519 seed, 64 hex digits; NULL: auth's GET /v1/auth/jwks */
    sf_client *client;         /* required, borrowed */
    unsigned cache_ms;         /* discovery cache lifetime: 1000 */
    char *err;                 /* a reason on failure */
    size_t err_size;
} gw_gateway_options;

void gw_gateway_options_init(gw_gateway_options *o);
/* Returns 0, SL_EINVAL (with err), SL_ENOMEM or -errno. */
int gw_gateway_create(const gw_gateway_options *o, gw_gateway **out);
/* After the server stopped. NULL harmless. */
void gw_gateway_destroy(gw_gateway *g);
/* Adds the catch-all routes and the /ready check of the registry to the
 * server (before it starts). */
int gw_gateway_routes(gw_gateway *g, sf_server *s);

#endif
