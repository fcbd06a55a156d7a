/*
 * fc_api: handler helpers shared by the business services. See
 * fc/fc_api.h.
 */
#include "fc/fc_api.h"

#include <errno.h>
#include <sodium.h>
#include <sf/sf_err.h>
#include <sf/sf_telemetry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool fc_api_from_gateway(sf_req *r) {
    const char *caller = sf_req_caller(r);
    return caller && strcmp(caller, FC_GATEWAY) == 0;
}

const char *fc_api_user(sf_req *r) {
    return fc_api_from_gateway(r) ? sf_req_header(r, "X-User-Id") : NULL;
}

bool fc_api_admin(sf_req *r) {
    if (!fc_api_from_gateway(r)) {
        return true;
    }
    /* The gateway verified the token's signature; only its claims are read
     * here (the middle part, base64url JSON). */
    const char *tok = sf_req_header(r, "X-User-Token");
    const char *dot1 = tok ? strchr(tok, '.') : NULL;
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    unsigned char claims[2048];
    size_t n = 0;
    if (!dot2 || (size_t)(dot2 - dot1 - 1) > sizeof claims * 4 / 3 || fc_crypto_init() != 0 ||
        sodium_base642bin(claims, sizeof claims, dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL, &n,
                          NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        return false;
    }
    json_t *c = json_loadb((const char *)claims, n, 0, NULL);
    bool admin = sf_claims_has_scope(c, "admin");
    json_decref(c);
    return admin;
}

const char *fc_api_tenant(sf_req *r, const json_t *body) {
    const char *t = NULL;
    if (fc_api_from_gateway(r) || !sf_req_caller(r)) {
        t = sf_req_header(r, "X-Tenant-Id");
    }
    if (!t && body) {
        t = json_string_value(json_object_get(body, "tenant"));
    }
    if (!t) {
        t = sf_req_query(r, "tenant");
    }
    if (!t) {
        sf_reply_error(r, 400, "no tenant: X-Tenant-Id (through the gateway) or \"tenant\"");
        return NULL;
    }
    if (!fc_id_valid(t)) {
        sf_reply_error(r, 400, "invalid tenant id (1-64 of A-Z a-z 0-9 _ -)");
        return NULL;
    }
    return t;
}

void fc_api_traceparent(sf_req *r, char out[64]) {
    sl_span_context c;
    out[0] = '\0';
    sf_req_context(r, &c);
    if (sl_span_context_is_valid(&c)) {
        char tp[SL_TRACEPARENT_LEN + 1];
        if (sl_traceparent_format(&c, tp) == 0) {
            snprintf(out, 64, "%s", tp);
        }
    }
}

void fc_api_fail(sf_req *r, int rc, const char *what) {
    unsigned status = 503;
    switch (rc) {
    case FC_ECONFLICT:
        status = 409;
        break;
    case SL_ENOTFOUND:
        status = 404;
        break;
    case SL_EINVAL:
        status = 400;
        break;
    case FC_EDENIED:
    case FC_EREUSE:
    case FC_EEXPIRED:
        status = 401;
        break;
    default:
        sf_log(SL_SEVERITY_ERROR, "%s: %s", what, fc_strerror(rc));
        break;
    }
    sf_reply_error(r, status, "%s: %s", what, fc_strerror(rc));
}

void fc_api_time(int64_t ms, char out[32]) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int y = tm.tm_year + 1900;
    if (y < 0 || y > 9999) {
        y = 0;
    }
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
             (int)(ms % 1000));
}

int fc_api_open_db(sf_app *app, const fc_migration *m, size_t n, fc_db **out) {
    const char *path = sf_app_config(app)->db;
    char err[256];
    if (!path) {
        sf_log(SL_SEVERITY_ERROR, "--db FILE is required");
        return SL_EINVAL;
    }
    int rc = fc_db_open(path, m, n, 0, out, err, sizeof err);
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "database %s: %s", path, err);
    }
    return rc;
}

void fc_api_created(sf_req *r, const char *location, json_t *body) {
    if (location) {
        sf_reply_header(r, "Location", location);
    }
    sf_reply_json(r, 201, body);
}

int fc_api_query_int(sf_req *r, const char *name, int dflt, int lo, int hi, int *out) {
    const char *v = sf_req_query(r, name);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi) {
        sf_reply_error(r, 400, "%s must be an integer in [%d, %d]", name, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int fc_api_call(sf_app *app, const char *upstream, const char *base_url, const char *method,
                const char *path, const json_t *body, long *status, json_t **answer) {
    char url[1200];
    sf_call call;
    json_t *ans = NULL;
    sf_call_init(&call);
    call.method = method;
    call.upstream = upstream;
    if (base_url) {
        int n = snprintf(url, sizeof url, "%s%s", base_url, path);
        if (n < 0 || (size_t)n >= sizeof url) {
            return SL_EINVAL;
        }
        call.url = url;
    } else {
        call.path = path;
    }
    *status = 0;
    int rc = sf_client_json(sf_app_client(app), &call, body, status, &ans);
    if (answer) {
        *answer = ans;
    } else {
        json_decref(ans);
    }
    return rc;
}

void fc_api_call_why(const char *upstream, int rc, long status, const json_t *answer, char *why,
                     size_t cap) {
    const char *err = json_string_value(json_object_get(answer, "error"));
    if (rc != 0) {
        snprintf(why, cap, "%s: %s", upstream, sf_strerror(rc));
    } else if (err) {
        snprintf(why, cap, "%s answered %ld: %s", upstream, status, err);
    } else {
        snprintf(why, cap, "%s answered %ld", upstream, status);
    }
}

int fc_api_relay_start(sf_app *app, sf_outbox **out) {
    sf_outbox_options o;
    sf_outbox_options_init(&o);
    o.db = sf_app_db(app);
    o.bus = sf_app_bus(app);
    if (!o.db || !o.bus) {
        sf_log(SL_SEVERITY_ERROR, "the outbox relay needs --db and --nats");
        return SL_EINVAL;
    }
    int rc = sf_outbox_start(&o, out);
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "outbox relay: %s", sf_strerror(rc));
    }
    return rc;
}

int fc_api_routes(sf_app *app, const sf_route *routes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = sf_server_route(sf_app_server(app), &routes[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
