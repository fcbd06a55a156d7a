/*
 * fleet-gateway's process: the runtime's skeleton (flags, telemetry, server,
 * HTTP client with its per-upstream breakers, registration) plus the
 * gateway's own flags:
 *   --routes FILE          the route table (YAML; fleet/gateway/routes.yaml)
 *   --user-key-file FILE   auth's Ed25519 seed (64 hex digits): user tokens
 *                          are verified with its public half; without it the
 *                          gateway fetches auth's public key (GET /v1/auth/jwks,
 *                          auth found in the registry) and fetches it again
 *                          when a signature stops verifying (at most every 10 s)
 *   --discovery-cache-ms N how long a service's instance list is reused (1000)
 * --registry is required: routes name services, the registry finds them.
 */
#include "gateway.h"

#include "sl_err.h"

#include <sf/sf_app.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct gw_main {
    gw_gateway *gw;
} gw_main;

static int setup(sf_app *app, void *ud) {
    gw_main *m = ud;
    const sf_config *c = sf_app_config(app);
    const char *routes = sf_app_flag(app, "routes");
    if (routes == NULL || c->registry == NULL) {
        fprintf(stderr, "fleet-gateway: --routes FILE and --registry URL are required\n");
        return SF_EUSAGE;
    }
    char err[256] = "";
    gw_gateway_options o;
    gw_gateway_options_init(&o);
    o.routes_file = routes;
    o.registry_url = c->registry;
    o.user_key_file = sf_app_flag(app, "user-key-file");
    o.client = sf_app_client(app);
    o.err = err;
    o.err_size = sizeof(err);
    const char *cache = sf_app_flag(app, "discovery-cache-ms");
    if (cache != NULL) {
        char *end;
        long v = strtol(cache, &end, 10);
        if (*cache == '\0' || *end != '\0' || v < 0 || v > 600000) {
            fprintf(stderr, "fleet-gateway: --discovery-cache-ms must be 0..600000\n");
            return SF_EUSAGE;
        }
        o.cache_ms = (unsigned)v;
    }
    int rc = gw_gateway_create(&o, &m->gw);
    if (rc != 0) {
        fprintf(stderr, "fleet-gateway: %s\n", err[0] ? err : sl_strerror(rc));
        return rc == SL_EINVAL ? SF_EUSAGE : rc;
    }
    return gw_gateway_routes(m->gw, sf_app_server(app));
}

int main(int argc, char **argv) {
    static const sf_flag flags[] = {
        {"routes", "FLEET_GATEWAY_ROUTES", "the route table (YAML)", NULL},
        {"user-key-file", "FLEET_USER_KEY_FILE",
         "auth's Ed25519 seed (64 hex digits); default: auth's GET /v1/auth/jwks", NULL},
        {"discovery-cache-ms", "FLEET_GATEWAY_DISCOVERY_CACHE_MS",
         "reuse a service's instance list this long (1000)", NULL},
    };
    gw_main m = {0};
    sf_app_options o = {0};
    o.service = "gateway";
    o.description = "The fleet's API gateway: routes /v1/* and /v2/* to the services found in "
                    "the registry.";
    o.flags = flags;
    o.flag_count = sizeof(flags) / sizeof(flags[0]);
    int rc = sf_app_main(&o, argc, argv, setup, &m);
    gw_gateway_destroy(m.gw);
    return rc;
}
