/*
 * The HTTP server and its middleware (see sf_server.h for the contract).
 *
 * Threads: libmicrohttpd runs one thread per connection (plus its listening
 * thread); a request's whole life (body upload, middleware, handler, reply)
 * happens on its connection's thread, so the SDK's per-thread current
 * context carries the SERVER span into the handler. The route table is
 * immutable once started; shared state is atomics (in-flight count, faults,
 * draining flag, per-route metric caches).
 */
#include "sf/sf_server.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARAMS 8
#define TOKEN_CACHE 256 /* verified service tokens remembered, direct-mapped */
#define MAX_HEADERS 16
#define STATUS_SLOTS 600

typedef struct route_entry {
    sf_route r;
    char route_label[160]; /* escaped for the Prometheus label */
    sl_metric *duration;
    _Atomic(sl_metric *) by_status[STATUS_SLOTS];
} route_entry;

/* A verified token and its claims (shared, read-only: jansson's reference
 * counts are atomic), valid until its exp. */
typedef struct token_entry {
    uint64_t hash;
    char *token;
    json_t *claims;
    int64_t valid_until;
} token_entry;

typedef struct check_entry {
    char *name;
    sf_check_fn fn;
    void *userdata;
} check_entry;

struct sf_server {
    sf_server_options o;
    char *service;
    char *listen;
    route_entry **routes;
    size_t nroutes, routes_cap;
    route_entry unmatched; /* metrics of requests no route matched */
    check_entry *checks;
    size_t nchecks, checks_cap;
    struct MHD_Daemon *daemon;
    int listen_fd; /* bound, not yet handed to the daemon; -1 otherwise */
    uint16_t port;
    atomic_uint in_flight;
    atomic_bool draining;
    atomic_bool stopped;
    atomic_uint fault_latency_ms;
    atomic_uint fault_error_ppm; /* error ratio in millionths */
    sl_instrument *otel_duration;
    sl_metric *faults_injected;
    pthread_mutex_t tok_mu;
    token_entry tokens[TOKEN_CACHE];
};

typedef struct resp_header {
    char *name;
    char *value;
} resp_header;

struct sf_req {
    sf_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    uint64_t start_ms;
    uint64_t start_ns;
    sl_buf body;
    bool too_big;
    bool dispatched;
    const route_entry *route;
    size_t nparams;
    struct {
        const char *name;
        size_t name_len;
        char *value;
    } params[MAX_PARAMS];
    json_t *claims;
    sl_span *span;
    sl_span_context ctx;
    /* The answer, queued by the middleware once the handler returns. */
    bool replied;
    unsigned status;
    char *resp_type;
    uint8_t *resp_body;
    size_t resp_len;
    resp_header headers[MAX_HEADERS];
    size_t nheaders;
};

void sf_server_options_init(sf_server_options *o) {
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:0";
    o->max_body_size = (size_t)1 << 20;
    o->max_connections = 512;
    o->connection_timeout_s = 60;
}

/* --- routes ----------------------------------------------------------------- */

/* Copies s into a Prometheus label value (backslash, quote, newline escaped). */
static void label_escape(const char *s, char *out, size_t cap) {
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static void route_metrics(route_entry *e, const char *method, const char *pattern) {
    char lab[160], labels[320];
    label_escape(pattern, lab, sizeof lab);
    snprintf(e->route_label, sizeof e->route_label, "%s", lab);
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", method, lab);
    e->duration = sl_histogram("http_server_request_duration_seconds", labels,
                               "Time from the request's arrival to its answer, per route.",
                               sl_latency_bounds, sl_latency_nbounds);
}

static bool pattern_ok(const char *p) {
    if (p == NULL || p[0] != '/') {
        return false;
    }
    size_t params = 0;
    for (const char *c = p; *c != '\0'; c++) {
        if (*c == '{') {
            const char *end = strchr(c, '}');
            if (end == NULL || end == c + 1 || c[-1] != '/' || (end[1] != '/' && end[1] != '\0')) {
                return false;
            }
            params++;
        }
        if (*c == '*' && (c[-1] != '/' || c[1] != '\0')) {
            return false;
        }
    }
    return params <= MAX_PARAMS;
}

int sf_server_route(sf_server *s, const sf_route *r) {
    if (s == NULL || r == NULL || r->handler == NULL || !pattern_ok(r->pattern) ||
        s->daemon != NULL) {
        return SL_EINVAL;
    }
    if (sl_array_grow(&s->routes, &s->routes_cap, s->nroutes + 1, sizeof(route_entry *)) != 0) {
        return SL_ENOMEM;
    }
    route_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return SL_ENOMEM;
    }
    e->r = *r;
    route_metrics(e, r->method != NULL ? r->method : "ANY", r->pattern);
    s->routes[s->nroutes++] = e;
    return 0;
}

int sf_server_add_check(sf_server *s, const char *name, sf_check_fn fn, void *userdata) {
    if (s == NULL || name == NULL || fn == NULL) {
        return SL_EINVAL;
    }
    if (sl_array_grow(&s->checks, &s->checks_cap, s->nchecks + 1, sizeof(check_entry)) != 0) {
        return SL_ENOMEM;
    }
    char *n = strdup(name);
    if (n == NULL) {
        return SL_ENOMEM;
    }
    s->checks[s->nchecks++] = (check_entry){n, fn, userdata};
    return 0;
}

/* Matches path against pattern, recording {params}; true on a match. */
static bool match(const char *pattern, const char *path, sf_req *req) {
    const char *p = pattern, *u = path;
    req->nparams = 0;
    while (*p != '\0') {
        if (*p == '*') {
            if (req->nparams < MAX_PARAMS) {
                req->params[req->nparams].name = "*";
                req->params[req->nparams].name_len = 1;
                req->params[req->nparams].value = (char *)(uintptr_t)u;
                req->nparams++;
            }
            return true;
        }
        if (*p == '{') {
            const char *end = strchr(p, '}');
            const char *seg_end = strchr(u, '/');
            size_t seg_len = seg_end != NULL ? (size_t)(seg_end - u) : strlen(u);
            if (seg_len == 0 || req->nparams >= MAX_PARAMS) {
                return false;
            }
            req->params[req->nparams].name = p + 1;
            req->params[req->nparams].name_len = (size_t)(end - p - 1);
            req->params[req->nparams].value = (char *)(uintptr_t)u; /* copied after the match */
            req->nparams++;
            p = end + 1;
            u += seg_len;
            continue;
        }
        if (*p != *u) {
            return false;
        }
        p++;
        u++;
    }
    return *u == '\0';
}

/* Finds the route; *method_mismatch tells a 405 from a 404. */
static const route_entry *find_route(sf_server *s, sf_req *req, bool *method_mismatch) {
    *method_mismatch = false;
    for (size_t i = 0; i < s->nroutes; i++) {
        const route_entry *e = s->routes[i];
        if (!match(e->r.pattern, req->path, req)) {
            continue;
        }
        if (e->r.method != NULL && strcmp(e->r.method, req->method) != 0) {
            *method_mismatch = true;
            continue;
        }
        /* Params point into the path: copy each segment out. */
        for (size_t k = 0; k < req->nparams; k++) {
            const char *v = req->params[k].value;
            size_t n = req->params[k].name[0] == '*' ? strlen(v) : strcspn(v, "/");
            req->params[k].value = strndup(v, n);
            if (req->params[k].value == NULL) {
                req->nparams = k;
                return NULL;
            }
        }
        return e;
    }
    req->nparams = 0;
    return NULL;
}

/* --- replies ---------------------------------------------------------------- */

int sf_reply_header(sf_req *r, const char *name, const char *value) {
    if (r->nheaders >= MAX_HEADERS) {
        return SL_EFULL;
    }
    resp_header *h = &r->headers[r->nheaders];
    h->name = strdup(name);
    h->value = strdup(value);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return SL_ENOMEM;
    }
    r->nheaders++;
    return 0;
}

int sf_reply(sf_req *r, unsigned status, const char *content_type, const void *body, size_t len) {
    if (r->replied) {
        return SL_EINVAL;
    }
    r->resp_body = malloc(len > 0 ? len : 1);
    r->resp_type = strdup(content_type != NULL ? content_type : "text/plain");
    if (r->resp_body == NULL || r->resp_type == NULL) {
        free(r->resp_body);
        free(r->resp_type);
        r->resp_body = NULL;
        r->resp_type = NULL;
        return SL_ENOMEM;
    }
    if (len > 0) {
        memcpy(r->resp_body, body, len);
    }
    r->resp_len = len;
    r->status = status;
    r->replied = true;
    return 0;
}

int sf_reply_json(sf_req *r, unsigned status, json_t *body) {
    if (body == NULL) {
        return sf_reply_error(r, 500, "out of memory");
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        return sf_reply_error(r, 500, "out of memory");
    }
    int rc = sf_reply(r, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int sf_reply_error(sf_req *r, unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s}", "error", msg);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int rc;
    if (text != NULL) {
        rc = sf_reply(r, status, "application/json", text, strlen(text));
        free(text);
    } else {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        rc = sf_reply(r, status, "application/json", oom, sizeof oom - 1);
    }
    return rc;
}

/* --- request accessors ------------------------------------------------------ */

const char *sf_req_method(const sf_req *r) {
    return r->method;
}
const char *sf_req_path(const sf_req *r) {
    return r->path;
}
const char *sf_req_header(const sf_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *sf_req_query(const sf_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
const char *sf_req_param(const sf_req *r, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nparams; i++) {
        if (r->params[i].name_len == n && memcmp(r->params[i].name, name, n) == 0) {
            return r->params[i].value;
        }
    }
    return NULL;
}
typedef struct kv_iter {
    sf_kv_fn fn;
    void *userdata;
} kv_iter;

static enum MHD_Result kv_each(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
    (void)kind;
    const kv_iter *it = cls;
    return it->fn(it->userdata, key, value) == 0 ? MHD_YES : MHD_NO;
}

int sf_req_foreach_header(const sf_req *r, sf_kv_fn fn, void *userdata) {
    kv_iter it = {fn, userdata};
    return MHD_get_connection_values(r->conn, MHD_HEADER_KIND, kv_each, &it);
}

int sf_req_foreach_query(const sf_req *r, sf_kv_fn fn, void *userdata) {
    kv_iter it = {fn, userdata};
    return MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, kv_each, &it);
}

int sf_req_client_address(const sf_req *r, char *buf, size_t cap) {
    if (cap > 0) {
        buf[0] = '\0';
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL || cap == 0) {
        return SL_EINVAL;
    }
    const struct sockaddr *sa = ci->client_addr;
    const void *addr = NULL;
    if (sa->sa_family == AF_INET) {
        addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    }
    if (addr == NULL || cap > (size_t)INT32_MAX ||
        inet_ntop(sa->sa_family, addr, buf, (socklen_t)cap) == NULL) {
        buf[0] = '\0';
        return SL_EINVAL;
    }
    return 0;
}

const char *sf_req_body(const sf_req *r, size_t *len) {
    if (len != NULL) {
        *len = r->body.len;
    }
    return r->body.data != NULL ? (const char *)r->body.data : "";
}
const json_t *sf_req_claims(const sf_req *r) {
    return r->claims;
}
const char *sf_req_caller(const sf_req *r) {
    return sf_claims_str(r->claims, "iss");
}
sl_span *sf_req_span(sf_req *r) {
    return r->span;
}
void sf_req_context(const sf_req *r, sl_span_context *out) {
    *out = r->ctx;
}
sf_server *sf_req_server(sf_req *r) {
    return r->srv;
}

int sf_req_json(sf_req *r, const sf_json_field *fields, size_t n, bool allow_unknown,
                json_t **out) {
    *out = NULL;
    const char *ct = sf_req_header(r, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        sf_reply_error(r, 415, "the body must be application/json");
        return SL_EINVAL;
    }
    char err[256];
    json_t *j = NULL;
    int rc = sf_json_parse_object(r->body.data != NULL ? (const char *)r->body.data : "",
                                  r->body.len, &j, err, sizeof err);
    if (rc == SL_ENOMEM) {
        sf_reply_error(r, 503, "out of memory");
        return rc;
    }
    if (rc == 0 && fields != NULL) {
        rc = sf_json_check(j, fields, n, allow_unknown, err, sizeof err);
    }
    if (rc != 0) {
        json_decref(j);
        sf_reply_error(r, 400, "%s", err);
        return rc;
    }
    *out = j;
    return 0;
}

/* --- built-in routes -------------------------------------------------------- */

static void h_health(sf_req *r, void *ud) {
    (void)ud;
    static const char ok[] = "{\"status\":\"ok\"}";
    sf_reply(r, 200, "application/json", ok, sizeof ok - 1);
}

static void h_ready(sf_req *r, void *ud) {
    (void)ud;
    sf_server *s = r->srv;
    json_t *checks = json_object();
    bool ready = !atomic_load(&s->draining);
    if (!ready) {
        json_object_set_new(checks, "server", json_string("draining"));
    }
    for (size_t i = 0; i < s->nchecks; i++) {
        char err[256] = "";
        int rc = s->checks[i].fn(s->checks[i].userdata, err, sizeof err);
        if (rc != 0) {
            ready = false;
            json_object_set_new(checks, s->checks[i].name,
                                json_string(err[0] != '\0' ? err : sf_strerror(rc)));
        } else {
            json_object_set_new(checks, s->checks[i].name, json_string("ok"));
        }
    }
    sf_reply_json(
        r, ready ? 200 : 503,
        json_pack("{s:s,s:o}", "status", ready ? "ready" : "not ready", "checks", checks));
}

static void h_metrics(sf_req *r, void *ud) {
    (void)ud;
    sl_buf b;
    sl_buf_init(&b, (size_t)64 << 20);
    if (sl_metrics_render(&b) != 0) {
        sf_reply_error(r, 503, "cannot render metrics");
    } else {
        sf_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    }
    sl_buf_free(&b);
}

static void h_faults(sf_req *r, void *ud) {
    (void)ud;
    sf_server *s = r->srv;
    if (strcmp(r->method, "DELETE") == 0) {
        atomic_store(&s->fault_latency_ms, 0);
        atomic_store(&s->fault_error_ppm, 0);
    } else if (strcmp(r->method, "POST") == 0) {
        static const sf_json_field fields[] = {
            {"latency_ms", SF_JSON_INTEGER, false, 0, 60000},
            {"error_ratio", SF_JSON_NUMBER, false, 0, 1},
        };
        json_t *j;
        if (sf_req_json(r, fields, 2, false, &j) != 0) {
            return;
        }
        atomic_store(&s->fault_latency_ms, (unsigned)sf_json_int(j, "latency_ms", 0));
        atomic_store(&s->fault_error_ppm, (unsigned)(sf_json_num(j, "error_ratio", 0) * 1e6));
        json_decref(j);
        sf_log(SL_SEVERITY_WARN, "faults set: latency %u ms, error ratio %.3f",
               atomic_load(&s->fault_latency_ms), atomic_load(&s->fault_error_ppm) / 1e6);
    }
    sf_reply_json(r, 200,
                  json_pack("{s:I,s:f}", "latency_ms",
                            (json_int_t)atomic_load(&s->fault_latency_ms), "error_ratio",
                            atomic_load(&s->fault_error_ppm) / 1e6));
}

/* --- the middleware --------------------------------------------------------- */

static const char *carrier_get(void *carrier, const char *name) {
    return MHD_lookup_connection_value(carrier, MHD_HEADER_KIND, name);
}

static uint64_t fnv1a(const char *p) {
    uint64_t h = 1469598103934665603ull;
    for (; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    }
    return h;
}

/* Verifies a service token for this server (audience = the service), or
 * finds it among the recently verified ones: a caller sends the same token
 * for about a minute, and a hit skips the HMAC and both JSON parses. */
static int verify_token(sf_server *s, const char *tok, json_t **claims) {
    uint64_t h = fnv1a(tok);
    token_entry *e = &s->tokens[h % TOKEN_CACHE];
    int64_t now = rt_unix_s();
    pthread_mutex_lock(&s->tok_mu);
    if (e->token != NULL && e->hash == h && now < e->valid_until && strcmp(e->token, tok) == 0) {
        /* A copy of its own for the request: jansson's reference counts are
         * not atomic, so the cache's object is never shared across threads. */
        *claims = json_deep_copy(e->claims);
        pthread_mutex_unlock(&s->tok_mu);
        if (*claims != NULL) {
            return 0;
        }
    } else {
        pthread_mutex_unlock(&s->tok_mu);
    }
    sf_jwt_verify_options vo;
    sf_jwt_verify_options_init(&vo);
    vo.audience = s->service;
    int rc = sf_jwt_verify(s->o.service_key, tok, strlen(tok), &vo, claims);
    int64_t exp;
    if (rc != 0 || sf_claims_int(*claims, "exp", &exp) != 0) {
        return rc;
    }
    char *copy = strdup(tok);
    json_t *cached = json_deep_copy(*claims);
    if (copy == NULL || cached == NULL) {
        free(copy);
        json_decref(cached);
        return 0; /* verified; just not remembered */
    }
    pthread_mutex_lock(&s->tok_mu);
    char *old_tok = e->token;
    json_t *old_claims = e->claims;
    e->hash = h;
    e->token = copy;
    e->claims = cached;
    e->valid_until = exp + vo.leeway_s; /* as sf_jwt_verify's own exp check */
    pthread_mutex_unlock(&s->tok_mu);
    free(old_tok);
    json_decref(old_claims);
    return 0;
}

/* Checks the service token against the route; 0 or the HTTP status. */
static unsigned authorize(sf_req *req, const sf_route *r, char *why, size_t cap) {
    const sf_jwt_key *key = req->srv->o.service_key;
    if (r->public_route || key == NULL) {
        return 0;
    }
    const char *auth = sf_req_header(req, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        snprintf(why, cap, "a service token is required");
        return 401;
    }
    const char *tok = auth + 7;
    while (*tok == ' ') {
        tok++;
    }
    int rc = verify_token(req->srv, tok, &req->claims);
    if (rc != 0) {
        snprintf(why, cap, "invalid service token: %s", sf_strerror(rc));
        return 401;
    }
    const char *iss = sf_claims_str(req->claims, "iss");
    if (iss == NULL) {
        snprintf(why, cap, "the service token has no issuer");
        return 401;
    }
    if (r->callers != NULL && !rt_word_in(r->callers, iss, strlen(iss))) {
        snprintf(why, cap, "caller %.64s may not call this route", iss);
        return 403;
    }
    if (r->scope != NULL && !sf_claims_has_scope(req->claims, r->scope)) {
        snprintf(why, cap, "the service token lacks scope %.64s", r->scope);
        return 403;
    }
    return 0;
}

/* Whether injected faults apply to this route (never to the probes, the
 * metrics and the fault switch itself, so a faulty service can be healed). */
static bool faults_apply(const sf_req *req) {
    return strcmp(req->path, "/health") != 0 && strcmp(req->path, "/ready") != 0 &&
           strcmp(req->path, "/metrics") != 0 && strcmp(req->path, "/admin/faults") != 0;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static sl_metric *status_counter(route_entry *e, const char *method, unsigned status) {
    unsigned slot = status < STATUS_SLOTS ? status : 0;
    sl_metric *m = atomic_load_explicit(&e->by_status[slot], memory_order_acquire);
    if (m == NULL || slot == 0) {
        char labels[384];
        snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%u\"", method,
                 e->route_label, status);
        m = sl_counter("http_server_requests_total", labels,
                       "Requests answered, per method, route and status code.");
        if (slot != 0) {
            atomic_store_explicit(&e->by_status[slot], m, memory_order_release);
        }
    }
    return m;
}

static void start_span(sf_req *req, const char *route) {
    sf_server *s = req->srv;
    sl_span_context parent;
    sl_span_options so;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_SERVER;
    if (sl_propagation_extract(carrier_get, req->conn, &parent) == 0) {
        so.parent = &parent;
    } else {
        so.root = true;
    }
    char name[192];
    if (route != NULL) {
        snprintf(name, sizeof name, "%s %s", req->method, route);
    } else {
        snprintf(name, sizeof name, "%s", req->method);
    }
    char client[INET6_ADDRSTRLEN] = "";
    sf_req_client_address(req, client, sizeof client);
    const char *ua = sf_req_header(req, "User-Agent");
    sl_kv attrs[8];
    size_t n = 0;
    attrs[n++] = SL_KV_STR("http.request.method", req->method);
    attrs[n++] = SL_KV_STR("url.path", req->path);
    attrs[n++] = SL_KV_STR("url.scheme", "http");
    attrs[n++] = SL_KV_STR("server.address", "127.0.0.1");
    attrs[n++] = SL_KV_INT("server.port", s->port);
    attrs[n++] = SL_KV_STR("network.protocol.version", "1.1");
    if (route != NULL) {
        attrs[n++] = SL_KV_STR("http.route", route);
    }
    if (client[0] != '\0') {
        attrs[n++] = SL_KV_STR("client.address", client);
    }
    so.attrs = attrs;
    so.attr_count = n;
    sl_span_start(sf_telemetry_tracer(s->o.telemetry), name, &so, &req->span);
    if (ua != NULL) {
        sl_span_set_str(req->span, "user_agent.original", ua);
    }
    memset(&req->ctx, 0, sizeof req->ctx);
    sl_span_get_context(req->span, &req->ctx);
}

static void finish_span(sf_req *req, const route_entry *e, uint64_t dur_ns) {
    sf_server *s = req->srv;
    sl_span *span = req->span;
    sl_span_set_int(span, "http.response.status_code", req->status);
    if (req->body.len > 0) {
        sl_span_set_int(span, "http.request.body.size", (int64_t)req->body.len);
    }
    sl_span_set_int(span, "http.response.body.size", (int64_t)req->resp_len);
    if (req->status >= 500) {
        char st[16];
        snprintf(st, sizeof st, "%u", req->status);
        sl_span_set_str(span, "error.type", st);
        sl_span_set_status(span, SL_STATUS_ERROR, "server error");
    }
    const char *route = e != NULL ? e->r.pattern : NULL;
    sl_kv ma[3] = {SL_KV_STR("http.request.method", req->method),
                   SL_KV_INT("http.response.status_code", req->status),
                   SL_KV_STR("http.route", route != NULL ? route : "")};
    sl_instrument_record(s->otel_duration, (double)dur_ns / 1e9, ma, route != NULL ? 3 : 2);
    /* The request log, correlated with the span (it is still current). */
    sl_kv la[4] = {SL_KV_STR("http.request.method", req->method), SL_KV_STR("url.path", req->path),
                   SL_KV_INT("http.response.status_code", req->status),
                   SL_KV_DOUBLE("duration_ms", (double)dur_ns / 1e6)};
    sl_severity sev = req->status >= 500   ? SL_SEVERITY_ERROR
                      : req->status >= 400 ? SL_SEVERITY_WARN
                                           : SL_SEVERITY_INFO;
    sf_log_attrs(sev == SL_SEVERITY_INFO ? SL_SEVERITY_DEBUG : sev, la, 4, "%s %s -> %u (%.2f ms)",
                 req->method, req->path, req->status, (double)dur_ns / 1e6);
    if (sev == SL_SEVERITY_INFO) {
        /* Successful requests are logged to the backend only (stderr stays
         * quiet unless the level is debug). */
        char msg[320];
        snprintf(msg, sizeof msg, "%s %s -> %u", req->method, req->path, req->status);
        sl_logger_emit(sf_telemetry_logger(s->o.telemetry), SL_SEVERITY_INFO, msg, la, 4);
    }
}

static enum MHD_Result queue(sf_req *req) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        return MHD_NO;
    }
    req->resp_body = NULL; /* MHD owns it now */
    MHD_add_response_header(resp, "Content-Type", req->resp_type);
    for (size_t i = 0; i < req->nheaders; i++) {
        MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
    }
    if (atomic_load(&req->srv->draining)) {
        MHD_add_response_header(resp, "Connection", "close");
    }
    char tp[SL_TRACEPARENT_LEN + 1];
    if (sl_traceparent_format(&req->ctx, tp) == 0) {
        /* Lets a client (or a test) find the trace of its request. */
        MHD_add_response_header(resp, "traceresponse", tp);
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, req->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void dispatch(sf_req *req) {
    sf_server *s = req->srv;
    req->dispatched = true;
    bool bad_method;
    route_entry *e = (route_entry *)(uintptr_t)find_route(s, req, &bad_method);
    start_span(req, e != NULL ? e->r.pattern : NULL);
    sl_context_push(&req->ctx);
    char why[256];
    unsigned deny;
    if (req->too_big) {
        sf_reply_error(req, 413, "request body larger than %zu bytes", s->o.max_body_size);
    } else if (e == NULL) {
        if (bad_method) {
            sf_reply_error(req, 405, "method %s not allowed on %s", req->method, req->path);
        } else {
            sf_reply_error(req, 404, "no route for %s %s", req->method, req->path);
        }
    } else if ((deny = authorize(req, &e->r, why, sizeof why)) != 0) {
        if (deny == 401) {
            sf_reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        }
        sf_reply_error(req, deny, "%s", why);
    } else {
        unsigned lat = atomic_load(&s->fault_latency_ms);
        unsigned ppm = atomic_load(&s->fault_error_ppm);
        bool inject = s->o.enable_faults && faults_apply(req);
        if (inject && lat > 0) {
            sleep_ms(lat);
        }
        if (inject && ppm > 0 && rt_random01() * 1e6 < (double)ppm) {
            sl_metric_add(s->faults_injected, 1);
            sl_span_set_bool(req->span, "fault.injected", true);
            sf_reply_error(req, 500, "injected fault");
        } else {
            req->route = e;
            e->r.handler(req, e->r.userdata);
            if (!req->replied) {
                sf_reply_error(req, 500, "the handler did not answer");
            }
        }
    }
    uint64_t dur_ns = rt_mono_ns() - req->start_ns;
    route_entry *me = e != NULL ? e : &s->unmatched;
    sl_metric_observe(me->duration, (double)dur_ns / 1e9);
    sl_metric_add(status_counter(me, e != NULL && e->r.method != NULL ? e->r.method : req->method,
                                 req->status),
                  1);
    finish_span(req, e, dur_ns);
    sl_context_pop();
    sl_span_end(req->span, 0);
    req->span = NULL;
}

static void req_free(sf_req *req) {
    if (req == NULL) {
        return;
    }
    for (size_t i = 0; i < req->nparams; i++) {
        free(req->params[i].value);
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    json_decref(req->claims);
    sl_buf_free(&req->body);
    free(req->resp_body);
    free(req->resp_type);
    free(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)version;
    sf_server *s = cls;
    sf_req *req = *req_cls;
    if (req == NULL) {
        req = calloc(1, sizeof(*req));
        if (req == NULL) {
            return MHD_NO;
        }
        req->srv = s;
        req->conn = conn;
        req->method = method;
        req->path = url;
        req->start_ns = rt_mono_ns();
        sl_buf_init(&req->body, s->o.max_body_size);
        atomic_fetch_add(&s->in_flight, 1);
        *req_cls = req;
        /* A declared length over the limit is refused before the upload. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || n > s->o.max_body_size) {
                /* Answer now: MHD then closes the connection unread. */
                req->too_big = true;
                dispatch(req);
                return queue(req);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->dispatched) {
            return MHD_YES; /* answered already: the rest of the body is dropped */
        }
        if (sl_buf_append(&req->body, upload_data, n) != 0) {
            /* A chunked body past the limit: answer now rather than read on. */
            req->too_big = true;
            dispatch(req);
            return queue(req);
        }
        return MHD_YES;
    }
    if (req->dispatched) {
        return MHD_YES;
    }
    if (req->body.data != NULL && sl_buf_putc(&req->body, '\0') == 0) {
        req->body.len--; /* NUL-terminated for convenience, not counted */
    }
    dispatch(req);
    return queue(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    sf_server *s = cls;
    sf_req *req = *req_cls;
    if (req == NULL) {
        return;
    }
    if (req->span != NULL) {
        sl_span_end(req->span, 0); /* the client went away mid-request */
    }
    req_free(req);
    *req_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    sf_log(SL_SEVERITY_DEBUG, "http: %s", msg);
}

/* --- lifecycle -------------------------------------------------------------- */

int sf_server_create(const sf_server_options *o, sf_server **out) {
    *out = NULL;
    if (o == NULL || o->service == NULL || o->service[0] == '\0') {
        return SL_EINVAL;
    }
    int rc = SL_ENOMEM;
    sf_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->o = *o;
    s->listen_fd = -1;
    pthread_mutex_init(&s->tok_mu, NULL);
    s->service = strdup(o->service);
    s->listen = strdup(o->listen != NULL ? o->listen : "127.0.0.1:0");
    if (s->service == NULL || s->listen == NULL) {
        goto fail;
    }
    s->o.service = s->service;
    s->o.listen = s->listen;
    if (s->o.max_body_size == 0) {
        s->o.max_body_size = (size_t)1 << 20;
    }
    if (s->o.max_connections == 0) {
        s->o.max_connections = 512;
    }
    route_metrics(&s->unmatched, "ANY", "");
    s->faults_injected =
        sl_counter("fleet_faults_injected_total", "", "Requests answered 500 by fault injection.");
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                    0.5,   0.75, 1,     2.5,  5,     7.5, 10};
    rt_seconds_histogram(sf_telemetry_meter(o->telemetry), "http.server.request.duration",
                         "Duration of HTTP server requests.", bounds,
                         sizeof bounds / sizeof bounds[0], &s->otel_duration);

    sf_route builtins[] = {
        {"GET", "/health", h_health, NULL, true, NULL, NULL},
        {"GET", "/ready", h_ready, NULL, true, NULL, NULL},
        {"GET", "/metrics", h_metrics, NULL, true, NULL, NULL},
        {"POST", "/admin/faults", h_faults, NULL, false, NULL, "admin"},
        {"DELETE", "/admin/faults", h_faults, NULL, false, NULL, "admin"},
        {"GET", "/admin/faults", h_faults, NULL, false, NULL, "admin"},
    };
    size_t nb = o->enable_faults ? 6 : 3;
    for (size_t i = 0; i < nb; i++) {
        if ((rc = sf_server_route(s, &builtins[i])) != 0) {
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    sf_server_destroy(s);
    return rc;
}

/* Parses "HOST:PORT" (IPv4 host, or empty for all addresses). */
static int parse_listen(const char *listen, struct sockaddr_in *sa) {
    const char *colon = strrchr(listen, ':');
    if (colon == NULL) {
        return SL_EINVAL;
    }
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        return SL_EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port > 65535) {
        return SL_EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (hl == 0) {
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                         &sa->sin_addr) != 1) {
        return SL_EINVAL;
    }
    return 0;
}

int sf_server_bind(sf_server *s) {
    if (s->listen_fd >= 0 || s->daemon != NULL) {
        return 0;
    }
    struct sockaddr_in sa;
    int rc = parse_listen(s->listen, &sa);
    if (rc != 0) {
        return rc;
    }
    /* Bound before the daemon's threads exist, so that the port is known
     * (and s->port written) before any request reads it. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    s->port = ntohs(sa.sin_port);
    s->listen_fd = fd;
    return 0;
}

int sf_server_start(sf_server *s) {
    int rc = sf_server_bind(s);
    if (rc != 0 || s->daemon != NULL) {
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    errno = 0;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET,
                                 s->listen_fd, MHD_OPTION_CONNECTION_LIMIT, s->o.max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT,
                                 s->o.connection_timeout_s != 0 ? s->o.connection_timeout_s : 60u,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL, MHD_OPTION_END);
    if (s->daemon == NULL) {
        return errno != 0 ? -errno : SL_EINVAL;
    }
    s->listen_fd = -1; /* the daemon owns it now */
    return 0;
}

uint16_t sf_server_port(const sf_server *s) {
    return s->port;
}

unsigned sf_server_in_flight(const sf_server *s) {
    return atomic_load(&s->in_flight);
}

int sf_server_drain(sf_server *s, unsigned timeout_ms) {
    if (s->daemon == NULL || atomic_exchange(&s->stopped, true)) {
        return 0;
    }
    atomic_store(&s->draining, true);
    /* Stop accepting: the listening socket is returned to us to close. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
    uint64_t deadline = rt_mono_ms() + timeout_ms;
    while (atomic_load(&s->in_flight) > 0 && rt_mono_ms() < deadline) {
        sleep_ms(10);
    }
    int rc = atomic_load(&s->in_flight) > 0 ? SF_ETIMEOUT : 0;
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    return rc;
}

void sf_server_destroy(sf_server *s) {
    if (s == NULL) {
        return;
    }
    if (s->daemon != NULL) {
        MHD_stop_daemon(s->daemon);
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i]);
    }
    free(s->routes);
    for (size_t i = 0; i < s->nchecks; i++) {
        free(s->checks[i].name);
    }
    free(s->checks);
    for (size_t i = 0; i < TOKEN_CACHE; i++) {
        free(s->tokens[i].token);
        json_decref(s->tokens[i].claims);
    }
    pthread_mutex_destroy(&s->tok_mu);
    free(s->service);
    free(s->listen);
    free(s);
}
