/*
 * fleet-registry: the fleet's service registry on the fleet runtime. The
 * registry core (registry.h) does the work; this file maps the runtime's
 * requests onto reg_registry_handle and the process life cycle onto the
 * core's. Routes take service tokens with scope "registry" when a service key
 * is configured (the runtime checks them), except the list of services (names
 * and counts), which is public. Flags of its own:
 *   --reap-after-s N        remove instances critical by TTL after N s (600; 0 = never)
 *   --check-interval-ms N   active /health checks every N ms (10000; 0 = off)
 *   --check-concurrency N   checks in flight at most (32)
 *   --check-timeout-ms N    per check (2000)
 * The registry never registers itself (it has no --registry of its own).
 */
#include "edge_query.h"
#include "registry.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <sf/sf_app.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reg_main {
    reg_registry *reg;
} reg_main;

/* Rebuilds the discovery query string from the arguments the runtime parsed
 * (it exposes them by name): version, tag, all. */
static int rebuild_query(sf_req *r, sl_buf *q) {
    static const char *const keys[] = {"version", "tag", "all"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const char *v = sf_req_query(r, keys[k]);
        if (v == NULL) {
            continue;
        }
        if (q->len > 0 && sl_buf_putc(q, '&') != 0) {
            return SL_ENOMEM;
        }
        if (sl_buf_append_str(q, keys[k]) != 0 || sl_buf_putc(q, '=') != 0 ||
            edge_url_encode(v, q) != 0) {
            return SL_ENOMEM;
        }
    }
    return sl_buf_putc(q, '\0');
}

static void h_api(sf_req *r, void *ud) {
    reg_main *m = ud;
    sl_buf q;
    sl_buf_init(&q, 4096);
    if (rebuild_query(r, &q) != 0) {
        sl_buf_free(&q);
        sf_reply_error(r, 400, "query string too long");
        return;
    }
    size_t len = 0;
    const char *body = sf_req_body(r, &len);
    reg_reply rep;
    reg_registry_handle(m->reg, sf_req_method(r), sf_req_path(r), (const char *)q.data, body, len,
                        &rep);
    sl_buf_free(&q);
    if (rep.body != NULL) {
        sf_reply(r, (unsigned)rep.status, "application/json", rep.body, strlen(rep.body));
        free(rep.body);
    } else {
        sf_reply(r, (unsigned)rep.status, NULL, NULL, 0);
    }
}

static int flag_int(sf_app *app, const char *name, long lo, long hi, long *out) {
    const char *v = sf_app_flag(app, name);
    if (v == NULL) {
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "fleet-registry: --%s must be an integer in [%ld, %ld]\n", name, lo, hi);
        return SF_EUSAGE;
    }
    *out = n;
    return 0;
}

static int setup(sf_app *app, void *ud) {
    reg_main *m = ud;
    reg_options o;
    reg_options_init(&o);
    long reap = 600, interval = o.check_interval_ms, conc = o.check_concurrency,
         timeout = o.check_timeout_ms;
    int rc;
    if ((rc = flag_int(app, "reap-after-s", 0, 86400 * 30, &reap)) != 0 ||
        (rc = flag_int(app, "check-interval-ms", 0, 3600000, &interval)) != 0 ||
        (rc = flag_int(app, "check-concurrency", 1, 1024, &conc)) != 0 ||
        (rc = flag_int(app, "check-timeout-ms", 10, 60000, &timeout)) != 0) {
        return rc;
    }
    o.db_path = sf_app_config(app)->db;
    o.reap_after_ns = (uint64_t)reap * 1000000000ULL;
    o.check_interval_ms = (int)interval;
    o.check_concurrency = (int)conc;
    o.check_timeout_ms = timeout;
    if ((rc = reg_registry_create(&o, &m->reg)) != 0) {
        fprintf(stderr, "fleet-registry: cannot start the registry: %s\n", sl_strerror(rc));
        return rc;
    }
    sf_server *s = sf_app_server(app);
    const sf_route routes[] = {
        {"POST", "/v1/registry/instances", h_api, m, false, NULL, "registry"},
        {"PUT", "/v1/registry/instances/{id}/heartbeat", h_api, m, false, NULL, "registry"},
        {"GET", "/v1/registry/instances/{id}", h_api, m, false, NULL, "registry"},
        {"DELETE", "/v1/registry/instances/{id}", h_api, m, false, NULL, "registry"},
        /* Names and counts only: public, so that people and dashboards can look. */
        {"GET", "/v1/registry/services", h_api, m, true, NULL, NULL},
        {"GET", "/v1/registry/services/{name}", h_api, m, false, NULL, "registry"},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if ((rc = sf_server_route(s, &routes[i])) != 0) {
            return rc;
        }
    }
    return 0;
}

static void on_stop(sf_app *app, void *ud) {
    reg_main *m = ud;
    (void)app;
    /* Flushes the last heartbeat times before the process exits. */
    reg_registry_destroy(m->reg);
    m->reg = NULL;
}

int main(int argc, char **argv) {
    static const sf_flag flags[] = {
        {"reap-after-s", "FLEET_REGISTRY_REAP_AFTER_S",
         "remove instances critical by TTL after N s (600; 0 = never)", NULL},
        {"check-interval-ms", "FLEET_REGISTRY_CHECK_INTERVAL_MS",
         "active /health checks every N ms (10000; 0 = off)", NULL},
        {"check-concurrency", "FLEET_REGISTRY_CHECK_CONCURRENCY", "checks in flight at most (32)",
         NULL},
        {"check-timeout-ms", "FLEET_REGISTRY_CHECK_TIMEOUT_MS", "per check (2000)", NULL},
    };
    reg_main m = {0};
    sf_app_options o = {0};
    o.service = "registry";
    o.description = "The fleet's service registry: registration, heartbeats with TTL, active "
                    "health checks, discovery.";
    o.flags = flags;
    o.flag_count = sizeof(flags) / sizeof(flags[0]);
    o.on_stop = on_stop;
    o.userdata = &m;
    int rc = sf_app_main(&o, argc, argv, setup, &m);
    reg_registry_destroy(m.reg);
    return rc;
}
