/*
 * fleet-gateway: the fleet's API gateway on the fleet runtime. Every request
 * under /v1/ and /v2/ goes through, in order:
 *   path checks (400/414) -> route match (404/405) -> per-key rate limit
 *   (429) -> the user's JWT on protected routes (401) -> per-tenant rate limit
 *   (429) -> body checks (413/415/400) -> discovery of the route's service in
 *   the registry (cached) -> balancing (weighted round-robin, canary share to
 *   version 2.x) -> the call through the runtime's client (a CLIENT span child
 *   of this request's SERVER span, the upstream's circuit breaker, timeouts)
 *   -> the upstream's answer, with Deprecation/Sunset/Link headers on
 *   deprecated routes; 502/503/504 when the upstream cannot answer.
 * Errors are {"error":{"status","code","message"}}.
 *
 * Threads: handlers run on the runtime's connection threads; the discovery
 * cache and the instance ejections are behind one mutex, the limiters have
 * their own, the balancers are atomic.
 */
#include "gateway.h"

#include "edge_query.h"
#include "gw_balance.h"
#include "gw_ratelimit.h"
#include "gw_request.h"
#include "gw_routes.h"

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <sf/sf_app.h>
#include <sf/sf_client.h>
#include <sf/sf_err.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_INSTANCES 256
#define EJECT_MS 5000
#define JWKS_MIN_INTERVAL_MS 10000
#define MAX_RETIRED_KEYS 16

/* One service's instances as the registry listed them, and when to ask again. */
typedef struct gw_svc {
    char name[64];
    uint64_t fetched_ms;
    size_t n;
    gw_target t[MAX_INSTANCES];
    char *strings[MAX_INSTANCES]; /* one block per instance: id, address, version */
    uint64_t ejected_until_ms[MAX_INSTANCES];
    struct gw_svc *next;
} gw_svc;

struct gw_gateway {
    gw_config cfg;
    gw_balancer *balancers; /* one per route */
    gw_limiter *per_key, *per_tenant;
    sf_client *client;
    /* The user-token key: fixed (--user-key-file) or auth's published key
     * (GET /v1/auth/jwks), replaced when a signature stops verifying. Keys
     * replaced are kept to the end: a handler may still be using one. */
    pthread_mutex_t key_mu;
    sf_jwt_key *user_key;
    bool key_fixed;
    uint64_t jwks_fetched_ms;
    sf_jwt_key *retired[MAX_RETIRED_KEYS];
    size_t n_retired;
    char registry[256];
    unsigned cache_ms;
    pthread_mutex_t mu;
    gw_svc *svcs;
    sl_metric *m_limited_key, *m_limited_tenant, *m_unauthorized, *m_canary, *m_no_instance,
        *m_open, *m_timeout, *m_bad_gateway;
};

static uint64_t now_ms(void) {
    return sl_mono_nano() / 1000000ULL;
}

/* --- answers ------------------------------------------------------------------ */

static void reply_error(sf_req *r, int status, const char *code, const char *message) {
    char *body = gw_error_body(status, code, message);
    if (body == NULL) {
        sf_reply_error(r, 503, "out of memory");
        return;
    }
    sf_reply(r, (unsigned)status, "application/json", body, strlen(body));
    free(body);
}

static void reply_verdict(sf_req *r, const gw_verdict *v) {
    reply_error(r, v->status, v->code, v->message);
}

static void reply_limited(sf_req *r, const gw_limit_result *lr, const char *which) {
    char ra[16], msg[96];
    snprintf(ra, sizeof(ra), "%u", lr->retry_after_s);
    sf_reply_header(r, "Retry-After", ra);
    snprintf(msg, sizeof(msg), "rate limit per %s exceeded; retry in %u s", which,
             lr->retry_after_s);
    reply_error(r, 429, "rate_limited", msg);
}

/* --- discovery ----------------------------------------------------------------- */

static void svc_clear(gw_svc *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->strings[i]);
    }
    s->n = 0;
}

/* Fills s from the registry's answer; keeps ejections of instances that stay. */
static void svc_fill(gw_svc *s, json_t *instances) {
    uint64_t keep_ids_until[MAX_INSTANCES];
    char old_ids[MAX_INSTANCES][33];
    size_t old_n = s->n;
    for (size_t i = 0; i < old_n; i++) {
        snprintf(old_ids[i], sizeof(old_ids[i]), "%s", s->t[i].id);
        keep_ids_until[i] = s->ejected_until_ms[i];
    }
    svc_clear(s);
    size_t idx;
    json_t *inst;
    json_array_foreach(instances, idx, inst) {
        if (s->n == MAX_INSTANCES) {
            break;
        }
        const char *id = json_string_value(json_object_get(inst, "id"));
        const char *addr = json_string_value(json_object_get(inst, "address"));
        const char *ver = json_string_value(json_object_get(inst, "version"));
        if (id == NULL || addr == NULL) {
            continue;
        }
        ver = ver != NULL ? ver : "";
        size_t li = strlen(id), la = strlen(addr), lv = strlen(ver);
        char *block = malloc(li + la + lv + 3);
        if (block == NULL) {
            break;
        }
        memcpy(block, id, li + 1);
        memcpy(block + li + 1, addr, la + 1);
        memcpy(block + li + la + 2, ver, lv + 1);
        const char *tags[16];
        size_t nt = 0, ti;
        json_t *tag;
        json_array_foreach(json_object_get(inst, "tags"), ti, tag) {
            if (nt < 16 && json_is_string(tag)) {
                tags[nt++] = json_string_value(tag);
            }
        }
        s->strings[s->n] = block;
        s->t[s->n] =
            (gw_target){block, block + li + 1, block + li + la + 2, gw_weight_from_tags(tags, nt)};
        s->ejected_until_ms[s->n] = 0;
        for (size_t k = 0; k < old_n; k++) {
            if (strcmp(old_ids[k], id) == 0) {
                s->ejected_until_ms[s->n] = keep_ids_until[k];
            }
        }
        s->n++;
    }
}

/* Under g->mu: the cache entry of name (created empty). */
static gw_svc *svc_get(gw_gateway *g, const char *name) {
    for (gw_svc *s = g->svcs; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return s;
        }
    }
    gw_svc *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->next = g->svcs;
        g->svcs = s;
    }
    return s;
}

/* Asks the registry for the passing instances of name. Returns the parsed
 * array (owned) or NULL when the registry cannot answer. */
static json_t *fetch_instances(gw_gateway *g, const char *name) {
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/registry/services/%s", g->registry, name);
    sf_call c;
    sf_call_init(&c);
    c.method = "GET";
    c.upstream = "registry";
    c.url = url;
    c.scope = "registry";
    c.untraced = true;
    c.timeout_ms = 1000;
    long status = 0;
    json_t *doc = NULL;
    if (sf_client_json(g->client, &c, NULL, &status, &doc) != 0 || status != 200) {
        json_decref(doc);
        return NULL;
    }
    json_t *arr = json_incref(json_object_get(doc, "instances"));
    json_decref(doc);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

typedef struct pick_ctx {
    const uint64_t *ejected_until_ms;
    const gw_target *base;
    uint64_t now;
} pick_ctx;

static bool not_ejected(void *ud, const gw_target *t) {
    pick_ctx *c = ud;
    return c->ejected_until_ms[t - c->base] <= c->now;
}

/* Picks an instance address of the route's service into addr. Returns 0 or
 * SF_ENOINSTANCE. The registry is asked when the cached list is older than
 * cache_ms (outside the lock); a failed refresh keeps the old list. */
static int pick_instance(gw_gateway *g, const gw_route *rt, char *addr, size_t cap, char *id,
                         size_t id_cap, bool *canary) {
    uint64_t now = now_ms();
    pthread_mutex_lock(&g->mu);
    gw_svc *s = svc_get(g, rt->service);
    bool stale = s != NULL && (s->fetched_ms == 0 || now - s->fetched_ms >= g->cache_ms);
    pthread_mutex_unlock(&g->mu);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    if (stale) {
        json_t *arr = fetch_instances(g, rt->service);
        pthread_mutex_lock(&g->mu);
        if (arr != NULL) {
            svc_fill(s, arr);
        }
        s->fetched_ms = now;
        pthread_mutex_unlock(&g->mu);
        json_decref(arr);
    }
    int rc = SF_ENOINSTANCE;
    pthread_mutex_lock(&g->mu);
    pick_ctx pc = {s->ejected_until_ms, s->t, now};
    int i = gw_balance_pick(&g->balancers[rt->index], s->t, s->n, rt->canary_version,
                            rt->canary_permille, not_ejected, &pc, canary);
    if (i < 0 && s->n > 0) {
        /* Every instance is ejected: try them anyway rather than fail. */
        i = gw_balance_pick(&g->balancers[rt->index], s->t, s->n, rt->canary_version,
                            rt->canary_permille, NULL, NULL, canary);
    }
    if (i >= 0) {
        snprintf(addr, cap, "%s", s->t[i].address);
        snprintf(id, id_cap, "%s", s->t[i].id);
        rc = 0;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Keeps an instance that failed to answer out of the rotation for a while
 * and makes the next request ask the registry again. */
static void eject(gw_gateway *g, const char *service, const char *id) {
    pthread_mutex_lock(&g->mu);
    gw_svc *s = svc_get(g, service);
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (strcmp(s->t[i].id, id) == 0) {
            s->ejected_until_ms[i] = now_ms() + EJECT_MS;
            s->fetched_ms = 0;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

/* --- the request ---------------------------------------------------------------- */

typedef struct query_ctx {
    sl_buf *b;
    int rc;
} query_ctx;

static int add_arg(void *ud, const char *key, const char *value) {
    query_ctx *q = ud;
    q->rc = sl_buf_putc(q->b, q->b->len == 0 ? '?' : '&');
    if (q->rc == 0) {
        q->rc = edge_url_encode(key, q->b);
    }
    if (q->rc == 0 && value != NULL) {
        q->rc = sl_buf_putc(q->b, '=');
        if (q->rc == 0) {
            q->rc = edge_url_encode(value, q->b);
        }
    }
    return q->rc;
}

/* Fetches auth's key set and installs its Ed25519 key, at most once per
 * JWKS_MIN_INTERVAL_MS. Returns 0 when a (possibly new) key is in place. */
static int refresh_jwks(gw_gateway *g) {
    uint64_t now = now_ms();
    pthread_mutex_lock(&g->key_mu);
    bool due = !g->key_fixed && g->n_retired < MAX_RETIRED_KEYS &&
               (g->jwks_fetched_ms == 0 || now - g->jwks_fetched_ms >= JWKS_MIN_INTERVAL_MS);
    if (due) {
        g->jwks_fetched_ms = now;
    }
    pthread_mutex_unlock(&g->key_mu);
    if (!due) {
        return SL_EINVAL;
    }
    sf_call c;
    sf_call_init(&c);
    c.upstream = "auth";
    c.path = "/v1/auth/jwks";
    c.timeout_ms = 2000;
    c.untraced = true;
    long status = 0;
    json_t *doc = NULL;
    int rc = sf_client_json(g->client, &c, NULL, &status, &doc);
    sf_jwt_key *key = NULL;
    if (rc == 0 && status == 200) {
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(doc, "keys"), i, k) {
            const char *kty = json_string_value(json_object_get(k, "kty"));
            const char *crv = json_string_value(json_object_get(k, "crv"));
            const char *x = json_string_value(json_object_get(k, "x"));
            uint8_t pub[33];
            if (key == NULL && kty != NULL && strcmp(kty, "OKP") == 0 && crv != NULL &&
                strcmp(crv, "Ed25519") == 0 && x != NULL &&
                edge_b64url_decode(x, strlen(x), pub, sizeof(pub)) == 32) {
                sf_jwt_key_ed25519_public(pub, &key);
            }
        }
    }
    json_decref(doc);
    if (key == NULL) {
        sf_log(SL_SEVERITY_WARN, "cannot fetch auth's user-token key (GET /v1/auth/jwks): %s",
               rc != 0 ? sf_strerror(rc) : "no Ed25519 key in the answer");
        return rc != 0 ? rc : SL_EINVAL;
    }
    pthread_mutex_lock(&g->key_mu);
    if (g->user_key != NULL) {
        g->retired[g->n_retired++] = g->user_key;
    }
    g->user_key = key;
    pthread_mutex_unlock(&g->key_mu);
    sf_log(SL_SEVERITY_INFO, "user-token key loaded from auth's key set");
    return 0;
}

static sf_jwt_key *user_key(gw_gateway *g) {
    pthread_mutex_lock(&g->key_mu);
    sf_jwt_key *k = g->user_key;
    pthread_mutex_unlock(&g->key_mu);
    return k;
}

/* Verifies "Authorization: Bearer <token>"; on success *claims (owned). */
static int verify_user(gw_gateway *g, sf_req *r, json_t **claims, const char **why) {
    const char *h = sf_req_header(r, "Authorization");
    *claims = NULL;
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        *why = "a bearer token is required";
        return SF_ETOKEN;
    }
    sf_jwt_key *key = user_key(g);
    if (key == NULL && (refresh_jwks(g) != 0 || (key = user_key(g)) == NULL)) {
        *why = "the user-token key is not available (auth's key set cannot be fetched)";
        return SF_ECLAIMS;
    }
    sf_jwt_verify_options o;
    sf_jwt_verify_options_init(&o);
    o.audience = "fleet";
    o.issuer = "fleet-auth"; /* fleet/README.md, "User tokens" */
    int rc = sf_jwt_verify(key, h + 7, strlen(h + 7), &o, claims);
    if (rc == SF_ESIGNATURE && refresh_jwks(g) == 0) {
        /* Auth may have a new key since the last fetch. */
        rc = sf_jwt_verify(user_key(g), h + 7, strlen(h + 7), &o, claims);
    }
    if (rc != 0) {
        *why = sf_strerror(rc);
        return rc;
    }
    if (sf_claims_str(*claims, "sub") == NULL) {
        json_decref(*claims);
        *claims = NULL;
        *why = "the token has no subject";
        return SF_ECLAIMS;
    }
    return 0;
}

static void copy_back_headers(sf_req *r, const sf_response *resp) {
    static const char *const names[] = {"Location", "Retry-After",   "Cache-Control",
                                        "ETag",     "Last-Modified", "WWW-Authenticate"};
    char v[512];
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (sf_response_header(resp, names[k], v, sizeof(v))) {
            sf_reply_header(r, names[k], v);
        }
    }
}

static int add_header_bytes(void *ud, const char *name, const char *value) {
    size_t *total = ud;
    *total += strlen(name) + 2 + (value != NULL ? strlen(value) : 0) + 2;
    return 0;
}

static void handle(sf_req *r, void *ud) {
    gw_gateway *g = ud;
    const char *method = sf_req_method(r), *path = sf_req_path(r);
    size_t path_len = strlen(path), header_bytes = 0;
    gw_verdict v;
    sf_req_foreach_header(r, add_header_bytes, &header_bytes);
    if (!gw_check_header_bytes(header_bytes, g->cfg.max_header_bytes, &v) ||
        !gw_check_path(path, path_len, g->cfg.max_path_bytes, &v)) {
        reply_verdict(r, &v);
        return;
    }
    uint32_t allowed = 0;
    const gw_route *rt = gw_config_match(&g->cfg, gw_method_bit(method), path, path_len, &allowed);
    if (rt == NULL) {
        if (allowed != 0) {
            char allow[96];
            gw_methods_allow(allowed, allow, sizeof(allow));
            sf_reply_header(r, "Allow", allow);
            reply_error(r, 405, "method_not_allowed", "this path does not take that method");
        } else {
            reply_error(r, 404, "not_found", "no route for this path");
        }
        return;
    }
    sl_span *span = sf_req_span(r);
    if (span != NULL) {
        /* Named by the gateway's route ("GET /v2/users"), not the catch-all
         * pattern, so that span metrics tell the routes apart. */
        char name[160];
        snprintf(name, sizeof(name), "%s %s", method, rt->prefix);
        sl_span_update_name(span, name);
        sl_span_set_str(span, "http.route", rt->prefix);
        sl_span_set_str(span, "gateway.upstream", rt->service);
    }

    /* Per-key limit first: it protects the JWT check from floods too.
     * Callers without a key get a bucket per client address, so that one
     * of them cannot starve the others. */
    const char *api_key = sf_req_header(r, "X-API-Key");
    char key[300];
    if (api_key != NULL) {
        snprintf(key, sizeof(key), "key:%.256s", api_key);
    } else {
        char client[64];
        sf_req_client_address(r, client, sizeof(client));
        snprintf(key, sizeof(key), "addr:%s", client[0] != '\0' ? client : "unknown");
    }
    gw_limit_result lr = {.allowed = true};
    uint64_t mono = sl_mono_nano();
    if (g->per_key != NULL) {
        gw_limiter_take(g->per_key, key, mono, &lr);
        if (!lr.allowed) {
            sl_metric_add(g->m_limited_key, 1);
            reply_limited(r, &lr, "API key");
            return;
        }
    }
    json_t *claims = NULL;
    if (rt->auth_user) {
        const char *why = NULL;
        if (verify_user(g, r, &claims, &why) != 0) {
            sl_metric_add(g->m_unauthorized, 1);
            sf_reply_header(r, "WWW-Authenticate",
                            "Bearer realm=\"fleet\", error=\"invalid_token\"");
            reply_error(r, 401, "unauthorized", why);
            return;
        }
        const char *tenant = sf_claims_str(claims, "tenant");
        if (g->per_tenant != NULL && tenant != NULL) {
            char tkey[300];
            snprintf(tkey, sizeof(tkey), "tenant:%.256s", tenant);
            gw_limit_result tr;
            gw_limiter_take(g->per_tenant, tkey, mono, &tr);
            if (!tr.allowed) {
                sl_metric_add(g->m_limited_tenant, 1);
                json_decref(claims);
                reply_limited(r, &tr, "tenant");
                return;
            }
        }
    }
    size_t body_len = 0;
    const char *body = sf_req_body(r, &body_len);
    const char *ctype = sf_req_header(r, "Content-Type");
    if (!gw_check_body(ctype, body, body_len, g->cfg.max_body_bytes, &v)) {
        json_decref(claims);
        reply_verdict(r, &v);
        return;
    }

    char addr[300], inst_id[40];
    bool canary = false;
    int rc = pick_instance(g, rt, addr, sizeof(addr), inst_id, sizeof(inst_id), &canary);
    if (rc != 0) {
        json_decref(claims);
        sl_metric_add(g->m_no_instance, 1);
        sf_reply_header(r, "Retry-After", "1");
        reply_error(r, 503, "no_instance", "no passing instance of the upstream service");
        return;
    }
    if (canary) {
        sl_metric_add(g->m_canary, 1);
    }

    sl_buf url;
    sl_buf_init(&url, 16384);
    query_ctx q = {.b = &url};
    int urc = sl_buf_printf(&url, "%s%s", addr, path);
    if (urc == 0) {
        sl_buf qs;
        sl_buf_init(&qs, 8192);
        q.b = &qs;
        sf_req_foreach_query(r, add_arg, &q);
        urc = q.rc != 0 ? q.rc : sl_buf_append(&url, qs.data, qs.len);
        sl_buf_free(&qs);
    }
    if (urc != 0 || sl_buf_putc(&url, '\0') != 0) {
        json_decref(claims);
        sl_buf_free(&url);
        reply_error(r, 414, "uri_too_long", "the request target is too long");
        return;
    }

    /* Headers for the upstream: what the user is (verified here), never
     * whatever the caller claimed. */
    char h_tok[SF_JWT_MAX_LEN + 32], h_uid[160], h_tid[160], h_acc[256], h_rid[160], h_idem[200];
    const char *headers[8];
    size_t nh = 0;
    if (claims != NULL) {
        const char *auth = sf_req_header(r, "Authorization");
        snprintf(h_tok, sizeof(h_tok), "X-User-Token: %s", auth + 7);
        headers[nh++] = h_tok;
        snprintf(h_uid, sizeof(h_uid), "X-User-Id: %.128s", sf_claims_str(claims, "sub"));
        headers[nh++] = h_uid;
        const char *tenant = sf_claims_str(claims, "tenant");
        if (tenant != NULL) {
            snprintf(h_tid, sizeof(h_tid), "X-Tenant-Id: %.128s", tenant);
            headers[nh++] = h_tid;
        }
    }
    const char *acc = sf_req_header(r, "Accept");
    if (acc != NULL) {
        snprintf(h_acc, sizeof(h_acc), "Accept: %.200s", acc);
        headers[nh++] = h_acc;
    }
    const char *rid = sf_req_header(r, "X-Request-Id");
    if (rid != NULL) {
        snprintf(h_rid, sizeof(h_rid), "X-Request-Id: %.128s", rid);
        headers[nh++] = h_rid;
    }
    const char *idem = sf_req_header(r, "Idempotency-Key");
    if (idem != NULL) {
        snprintf(h_idem, sizeof(h_idem), "Idempotency-Key: %.128s", idem);
        headers[nh++] = h_idem;
    }
    headers[nh] = NULL;

    sf_call c;
    sf_call_init(&c);
    c.method = method;
    c.upstream = rt->service;
    c.url = (const char *)url.data;
    c.body = body_len > 0 ? body : NULL;
    c.body_len = body_len;
    c.content_type = body_len > 0 ? ctype : NULL;
    c.headers = headers;
    c.timeout_ms = rt->timeout_ms;
    c.scope = rt->scope;
    sf_response resp;
    rc = sf_client_do(g->client, &c, &resp);
    json_decref(claims);
    sl_buf_free(&url);

    gw_deprecation dep;
    gw_route_deprecation(rt, path + strlen(rt->prefix), &dep);
    if (dep.deprecation[0] != '\0') {
        sf_reply_header(r, "Deprecation", dep.deprecation);
    }
    if (dep.sunset[0] != '\0') {
        sf_reply_header(r, "Sunset", dep.sunset);
    }
    if (dep.link[0] != '\0') {
        sf_reply_header(r, "Link", dep.link);
    }
    if (canary) {
        sf_reply_header(r, "X-Canary", "1");
    }
    if (rc == 0) {
        char ct[128];
        copy_back_headers(r, &resp);
        bool has_ct = sf_response_header(&resp, "Content-Type", ct, sizeof(ct));
        sf_reply(r, (unsigned)resp.status, has_ct ? ct : NULL, resp.body, resp.len);
    } else if (rc == SF_EOPEN) {
        sl_metric_add(g->m_open, 1);
        sf_reply_header(r, "Retry-After", "3");
        reply_error(r, 503, "circuit_open", "the upstream service is failing; its circuit is open");
    } else if (rc == SF_ETIMEOUT) {
        sl_metric_add(g->m_timeout, 1);
        eject(g, rt->service, inst_id);
        reply_error(r, 504, "upstream_timeout", "the upstream service did not answer in time");
    } else if (rc == SF_ENOINSTANCE) {
        sl_metric_add(g->m_no_instance, 1);
        reply_error(r, 503, "no_instance", "no passing instance of the upstream service");
    } else {
        sl_metric_add(g->m_bad_gateway, 1);
        eject(g, rt->service, inst_id);
        reply_error(r, 502, "bad_gateway", "the upstream service could not be reached");
    }
    sf_response_free(&resp);
}

/* --- life cycle ------------------------------------------------------------------ */

/* Reads an Ed25519 seed written as 64 hex digits (auth's --user-key-file). */
static int load_user_key(const char *path, sf_jwt_key **out) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return SL_EINVAL;
    }
    char hex[130];
    size_t n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);
    while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' ')) {
        n--;
    }
    uint8_t seed[32];
    if (n != 64 || sl_hex_decode(hex, 64, seed, 32) != 0) {
        return SL_EINVAL;
    }
    sf_jwt_key *priv = NULL;
    uint8_t pub[32];
    int rc = sf_jwt_key_ed25519_private(seed, &priv);
    if (rc == 0) {
        rc = sf_jwt_key_ed25519_public_raw(priv, pub);
    }
    sf_jwt_key_destroy(priv);
    memset(seed, 0, sizeof(seed));
    return rc == 0 ? sf_jwt_key_ed25519_public(pub, out) : rc;
}

void gw_gateway_options_init(gw_gateway_options *o) {
    memset(o, 0, sizeof(*o));
    o->cache_ms = 1000;
}

int gw_gateway_create(const gw_gateway_options *o, gw_gateway **out) {
    *out = NULL;
    gw_gateway *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->key_mu, NULL);
    g->cache_ms = o->cache_ms;
    g->client = o->client;
    snprintf(g->registry, sizeof(g->registry), "%s", o->registry_url ? o->registry_url : "");
    size_t n = strlen(g->registry);
    while (n > 0 && g->registry[n - 1] == '/') {
        g->registry[--n] = '\0';
    }
    int rc = gw_config_load(o->routes_file, &g->cfg, o->err, o->err_size);
    if (rc != 0) {
        goto fail;
    }
    g->balancers = calloc(g->cfg.n_routes, sizeof(*g->balancers));
    if (g->balancers == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < g->cfg.n_routes; i++) {
        gw_balancer_init(&g->balancers[i]);
    }
    if (g->cfg.per_key.rate > 0 &&
        (rc = gw_limiter_create(g->cfg.per_key.rate, g->cfg.per_key.burst, 100000, &g->per_key)) !=
            0) {
        goto fail;
    }
    if (g->cfg.per_tenant.rate > 0 &&
        (rc = gw_limiter_create(g->cfg.per_tenant.rate, g->cfg.per_tenant.burst, 100000,
                                &g->per_tenant)) != 0) {
        goto fail;
    }
    g->key_fixed = o->user_key_file != NULL;
    if (o->user_key_file != NULL && (rc = load_user_key(o->user_key_file, &g->user_key)) != 0) {
        snprintf(o->err, o->err_size, "%s: not an Ed25519 seed in 64 hex digits", o->user_key_file);
        goto fail;
    }
    g->m_limited_key = sl_counter("gateway_rate_limited_total", "limit=\"key\"",
                                  "Requests refused by a rate limit");
    g->m_limited_tenant = sl_counter("gateway_rate_limited_total", "limit=\"tenant\"",
                                     "Requests refused by a rate limit");
    g->m_unauthorized =
        sl_counter("gateway_unauthorized_total", "", "Requests without a valid user token");
    g->m_canary = sl_counter("gateway_canary_requests_total", "", "Requests sent to a canary");
    g->m_no_instance = sl_counter("gateway_upstream_failures_total", "reason=\"no_instance\"",
                                  "Requests the upstream could not answer");
    g->m_open = sl_counter("gateway_upstream_failures_total", "reason=\"circuit_open\"",
                           "Requests the upstream could not answer");
    g->m_timeout = sl_counter("gateway_upstream_failures_total", "reason=\"timeout\"",
                              "Requests the upstream could not answer");
    g->m_bad_gateway = sl_counter("gateway_upstream_failures_total", "reason=\"unreachable\"",
                                  "Requests the upstream could not answer");
    *out = g;
    return 0;
fail:
    gw_gateway_destroy(g);
    return rc;
}

void gw_gateway_destroy(gw_gateway *g) {
    if (g == NULL) {
        return;
    }
    gw_svc *s = g->svcs;
    while (s != NULL) {
        gw_svc *next = s->next;
        svc_clear(s);
        free(s);
        s = next;
    }
    gw_limiter_destroy(g->per_key);
    gw_limiter_destroy(g->per_tenant);
    sf_jwt_key_destroy(g->user_key);
    for (size_t i = 0; i < g->n_retired; i++) {
        sf_jwt_key_destroy(g->retired[i]);
    }
    pthread_mutex_destroy(&g->key_mu);
    free(g->balancers);
    gw_config_free(&g->cfg);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* /ready: the registry must answer (without it no new instance is found). */
static int check_registry(void *ud, char *err, size_t cap) {
    gw_gateway *g = ud;
    char url[300];
    snprintf(url, sizeof(url), "%s/v1/registry/services", g->registry);
    sf_call c;
    sf_call_init(&c);
    c.upstream = "registry";
    c.url = url;
    c.scope = "registry";
    c.untraced = true;
    c.timeout_ms = 1000;
    c.idempotent = 0;
    sf_response resp;
    int rc = sf_client_do(g->client, &c, &resp);
    if (rc == 0 && resp.status != 200) {
        rc = SF_EUPSTREAM;
    }
    if (rc != 0) {
        snprintf(err, cap, "registry %s: %s (HTTP %ld)", g->registry, sf_strerror(rc), resp.status);
    }
    sf_response_free(&resp);
    return rc;
}

int gw_gateway_routes(gw_gateway *g, sf_server *s) {
    int rc = sf_server_add_check(s, "registry", check_registry, g);
    if (rc != 0) {
        return rc;
    }
    static const char *const patterns[] = {"/v1/*", "/v2/*"};
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        sf_route r = {NULL, patterns[i], handle, g, true, NULL, NULL};
        rc = sf_server_route(s, &r);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
