/*
 * The HTTP client (see sf_client.h). Threads: any; shared state is the
 * upstream table (breakers, metrics), the token cache and the pool of curl
 * easy handles, each behind its own mutex, never held across a transfer.
 * A transfer runs on the caller's thread with its own handle (kept alive
 * between calls by the pool: curl_easy_reset keeps live connections).
 */
#include "sf/sf_client.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sf/sf_registry.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_metrics.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POOL_MAX 64
#define TOKENS_MAX 64

typedef struct upstream {
    char *name;
    sf_breaker *breaker;
    sl_metric *state_gauge;
    sl_metric *opened_total;
    sl_metric *duration;
} upstream;

typedef struct token_entry {
    char *audience;
    char *scope;
    char *token;
    int64_t refresh_at; /* unix seconds */
} token_entry;

struct sf_client {
    sf_client_options o;
    char *service;
    sf_registry *registry;
    pthread_mutex_t mu; /* upstreams */
    upstream *ups;
    size_t nups, ups_cap;
    pthread_mutex_t tok_mu;
    token_entry tokens[TOKENS_MAX];
    size_t ntokens;
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    size_t npool;
    sl_instrument *otel_duration;
    sl_instrument *otel_breaker;
};

void sf_client_options_init(sf_client_options *o) {
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 3000;
    o->connect_timeout_ms = 1000;
    o->max_retries = 2;
    o->backoff_base_ms = 50;
    o->backoff_max_ms = 1000;
    o->max_response_size = (size_t)8 << 20;
    o->token_ttl_s = 60;
    sf_breaker_options_init(&o->breaker);
}

void sf_call_init(sf_call *c) {
    memset(c, 0, sizeof(*c));
    c->idempotent = -1;
}

/* --- upstreams and their breakers ----------------------------------------- */

static void on_breaker_change(void *ud, const char *name, sf_breaker_state from,
                              sf_breaker_state to) {
    sf_client *c = ud;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nups; i++) {
        if (strcmp(c->ups[i].name, name) == 0) {
            sl_metric_set(c->ups[i].state_gauge, (uint64_t)to);
            if (to == SF_BREAKER_OPEN) {
                sl_metric_add(c->ups[i].opened_total, 1);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    sf_log(to == SF_BREAKER_OPEN ? SL_SEVERITY_WARN : SL_SEVERITY_INFO,
           "circuit breaker for %s: %s -> %s", name, sf_breaker_state_name(from),
           sf_breaker_state_name(to));
}

/* Returns the upstream's breaker, creating it on first use (NULL: no memory). */
static upstream *get_upstream(sf_client *c, const char *name) {
    upstream *u = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nups; i++) {
        if (strcmp(c->ups[i].name, name) == 0) {
            u = &c->ups[i];
            goto out;
        }
    }
    if (sl_array_grow(&c->ups, &c->ups_cap, c->nups + 1, sizeof(upstream)) != 0) {
        goto out;
    }
    upstream n = {0};
    n.name = strdup(name);
    sf_breaker_options bo = c->o.breaker;
    bo.on_change = on_breaker_change;
    bo.userdata = c;
    if (n.name == NULL || sf_breaker_create(name, &bo, &n.breaker) != 0) {
        free(n.name);
        goto out;
    }
    char labels[160];
    snprintf(labels, sizeof labels, "upstream=\"%.120s\"", name);
    n.state_gauge = sl_gauge("http_client_circuit_breaker_state", labels,
                             "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open.");
    sl_metric_set(n.state_gauge, 0);
    n.opened_total = sl_counter("http_client_circuit_breaker_opened_total", labels,
                                "Times the upstream's circuit breaker opened.");
    n.duration = sl_histogram("http_client_request_duration_seconds", labels,
                              "Duration of calls to the upstream, retries included.",
                              sl_latency_bounds, sl_latency_nbounds);
    c->ups[c->nups++] = n;
    u = &c->ups[c->nups - 1];
out:
    pthread_mutex_unlock(&c->mu);
    return u;
}

sf_breaker_state sf_client_breaker_state(sf_client *c, const char *name) {
    sf_breaker *b = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nups; i++) {
        if (strcmp(c->ups[i].name, name) == 0) {
            b = c->ups[i].breaker;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return b != NULL ? sf_breaker_get_state(b) : SF_BREAKER_CLOSED;
}

static void observe_breakers(sl_observer *obs, void *ud) {
    sf_client *c = ud;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nups; i++) {
        sl_kv a = SL_KV_STR("upstream", c->ups[i].name);
        sl_observer_observe_int(obs, (int64_t)sf_breaker_get_state(c->ups[i].breaker), &a, 1);
    }
    pthread_mutex_unlock(&c->mu);
}

/* --- tokens ------------------------------------------------------------------ */

/* Copies a valid service token for (audience, scope) into *out (malloc'd). */
static int get_token(sf_client *c, const char *aud, const char *scope, char **out) {
    *out = NULL;
    const char *sc = scope != NULL ? scope : "";
    int64_t now = rt_unix_s();
    int rc = 0;
    pthread_mutex_lock(&c->tok_mu);
    size_t slot = c->ntokens;
    for (size_t i = 0; i < c->ntokens; i++) {
        token_entry *t = &c->tokens[i];
        if (strcmp(t->audience, aud) == 0 && strcmp(t->scope, sc) == 0) {
            if (t->refresh_at > now) {
                *out = strdup(t->token);
                rc = *out != NULL ? 0 : SL_ENOMEM;
                goto out;
            }
            slot = i;
            break;
        }
    }
    char *tok = NULL;
    rc =
        sf_service_token(c->o.service_key, c->service, aud, scope, (int64_t)c->o.token_ttl_s, &tok);
    if (rc != 0) {
        goto out;
    }
    if (slot == TOKENS_MAX) {
        slot = (size_t)(now % TOKENS_MAX); /* full: replace one */
    }
    token_entry *t = &c->tokens[slot];
    if (slot < c->ntokens) {
        free(t->audience);
        free(t->scope);
        free(t->token);
    } else {
        c->ntokens++;
    }
    t->audience = strdup(aud);
    t->scope = strdup(sc);
    t->token = strdup(tok);
    t->refresh_at = now + (int64_t)c->o.token_ttl_s - 10;
    if (t->audience == NULL || t->scope == NULL || t->token == NULL) {
        free(t->audience);
        free(t->scope);
        free(t->token);
        *t = c->tokens[--c->ntokens];
        memset(&c->tokens[c->ntokens], 0, sizeof(token_entry));
    }
    *out = tok;
out:
    pthread_mutex_unlock(&c->tok_mu);
    return rc;
}

/* --- curl handles ------------------------------------------------------------ */

static CURL *handle_get(sf_client *c) {
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool > 0) {
        h = c->pool[--c->npool];
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (h != NULL) {
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void handle_put(sf_client *c, CURL *h) {
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
}

/* --- lifecycle ------------------------------------------------------------------ */

int sf_client_create(const sf_client_options *o, sf_client **out) {
    *out = NULL;
    if (o == NULL || o->service == NULL) {
        return SL_EINVAL;
    }
    sf_client *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->service = strdup(o->service)) == NULL) {
        free(c);
        return SL_ENOMEM;
    }
    c->o = *o;
    c->o.service = c->service;
    if (c->o.timeout_ms == 0) {
        c->o.timeout_ms = 3000;
    }
    if (c->o.max_response_size == 0) {
        c->o.max_response_size = (size_t)8 << 20;
    }
    if (c->o.token_ttl_s < 20) {
        c->o.token_ttl_s = 60;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->tok_mu, NULL);
    pthread_mutex_init(&c->pool_mu, NULL);
    sl_meter *m = sf_telemetry_meter(o->telemetry);
    rt_seconds_histogram(m, "http.client.request.duration",
                         "Duration of HTTP client requests (one attempt).", NULL, 0,
                         &c->otel_duration);
    sl_instrument_options io;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_OBSERVABLE_GAUGE;
    io.name = "http.client.circuit_breaker.state";
    io.description = "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open.";
    io.is_int = true;
    io.callback = observe_breakers;
    io.callback_userdata = c;
    sl_meter_create(m, &io, &c->otel_breaker);
    *out = c;
    return 0;
}

void sf_client_set_registry(sf_client *c, sf_registry *r) {
    c->registry = r;
}

void sf_client_destroy(sf_client *c) {
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nups; i++) {
        free(c->ups[i].name);
        sf_breaker_destroy(c->ups[i].breaker);
    }
    free(c->ups);
    for (size_t i = 0; i < c->ntokens; i++) {
        free(c->tokens[i].audience);
        free(c->tokens[i].scope);
        free(c->tokens[i].token);
    }
    for (size_t i = 0; i < c->npool; i++) {
        curl_easy_cleanup(c->pool[i]);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->tok_mu);
    pthread_mutex_destroy(&c->pool_mu);
    free(c->service);
    free(c);
}

/* --- one call ------------------------------------------------------------------- */

typedef struct sink {
    sl_buf buf;
    bool too_big;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    sink *s = ud;
    if (sl_buf_append(&s->buf, p, size * n) != 0) {
        s->too_big = true;
        return 0;
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    sl_buf *b = ud;
    /* A new status line starts a new header block (after 100 Continue). */
    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        b->len = 0;
    }
    return sl_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static int add_header(void *carrier, const char *name, const char *value) {
    struct curl_slist **l = carrier;
    char line[1024];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(*l, line);
    if (n == NULL) {
        return SL_ENOMEM;
    }
    *l = n;
    return 0;
}

static bool method_idempotent(const char *m) {
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* Splits an http URL into host and port for the span's attributes. */
static void url_host_port(const char *url, char *host, size_t cap, long *port) {
    *port = 80;
    host[0] = '\0';
    const char *p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    size_t n = strcspn(p, ":/?");
    snprintf(host, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    if (p[n] == ':') {
        *port = strtol(p + n + 1, NULL, 10);
    }
}

static void count_call(const char *up, const char *status) {
    char labels[200];
    snprintf(labels, sizeof labels, "upstream=\"%.120s\",status=\"%s\"", up, status);
    sl_metric_add(sl_counter("http_client_requests_total", labels,
                             "Calls to upstreams by outcome (HTTP status, error, timeout, open)."),
                  1);
}

typedef struct attempt_result {
    int rc; /* 0: an answer (see status); else SF_ETIMEOUT / SF_EUPSTREAM / ... */
    long status;
} attempt_result;

static attempt_result attempt(sf_client *c, const sf_call *call, const char *method,
                              const char *url, unsigned resend, sink *body, sl_buf *hdrs) {
    attempt_result res = {0, 0};
    sl_tracer *tracer = call->untraced ? NULL : sf_telemetry_tracer(c->o.telemetry);
    sl_span *span = NULL;
    sl_span_context ctx;
    char host[128];
    long port;
    url_host_port(url, host, sizeof host, &port);
    if (tracer != NULL) {
        sl_span_options so;
        sl_span_options_init(&so);
        so.kind = SL_SPAN_KIND_CLIENT;
        sl_kv attrs[6] = {SL_KV_STR("http.request.method", method),
                          SL_KV_STR("url.full", url),
                          SL_KV_STR("server.address", host),
                          SL_KV_INT("server.port", port),
                          SL_KV_STR("peer.service", call->upstream),
                          SL_KV_INT("http.request.resend_count", resend)};
        so.attrs = attrs;
        so.attr_count = resend > 0 ? 6 : 5;
        sl_span_start(tracer, method, &so, &span);
    }
    struct curl_slist *hl = NULL;
    int hrc = 0;
    if (span != NULL && sl_span_get_context(span, &ctx) == 0) {
        hrc = sl_propagation_inject(&ctx, add_header, &hl);
    } else if (!call->untraced && sl_propagation_inject(NULL, add_header, &hl) == SL_ENOMEM) {
        hrc = SL_ENOMEM; /* no tracer: the caller's context still travels */
    }
    char *token = NULL;
    if (hrc == 0 && c->o.service_key != NULL) {
        hrc = get_token(c, call->upstream, call->scope, &token);
        if (hrc == 0) {
            size_t n = strlen(token) + 8;
            char *v = malloc(n);
            if (v == NULL) {
                hrc = SL_ENOMEM;
            } else {
                snprintf(v, n, "Bearer %s", token);
                hrc = add_header(&hl, "Authorization", v);
                free(v);
            }
        }
    }
    if (hrc == 0 && call->body != NULL) {
        hrc = add_header(&hl, "Content-Type",
                         call->content_type != NULL ? call->content_type : "application/json");
    }
    if (hrc == 0) {
        struct curl_slist *n = curl_slist_append(hl, "Expect:");
        hrc = n != NULL ? 0 : SL_ENOMEM;
        hl = n != NULL ? n : hl;
    }
    for (const char *const *h = call->headers; hrc == 0 && h != NULL && *h != NULL; h++) {
        struct curl_slist *n = curl_slist_append(hl, *h);
        hrc = n != NULL ? 0 : SL_ENOMEM;
        hl = n != NULL ? n : hl;
    }
    free(token);
    CURL *h = hrc == 0 ? handle_get(c) : NULL;
    if (h == NULL) {
        res.rc = hrc != 0 ? hrc : SL_ENOMEM;
        curl_slist_free_all(hl);
        sl_span_record_error(span, "client", sl_strerror(res.rc));
        sl_span_end(span, 0);
        return res;
    }
    body->buf.len = 0;
    body->too_big = false;
    hdrs->len = 0;
    uint64_t t0 = rt_mono_ns();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long)(call->timeout_ms != 0 ? call->timeout_ms : c->o.timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sightline-fleet-rt/0.1");
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (call->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    }
    CURLcode cc = curl_easy_perform(h);
    double secs = (double)(rt_mono_ns() - t0) / 1e9;
    const char *etype = NULL;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res.status);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        res.rc = SF_ETIMEOUT;
        etype = "timeout";
    } else {
        res.rc = SF_EUPSTREAM;
        etype = body->too_big ? "response_too_large" : "connection_error";
    }
    handle_put(c, h);
    curl_slist_free_all(hl);
    char st[16];
    snprintf(st, sizeof st, "%ld", res.status);
    sl_kv ma[3] = {SL_KV_STR("http.request.method", method), SL_KV_STR("server.address", host),
                   SL_KV_INT("http.response.status_code", res.status)};
    sl_instrument_record(c->otel_duration, secs, ma, res.rc == 0 ? 3 : 2);
    if (span != NULL) {
        if (res.rc == 0) {
            sl_span_set_int(span, "http.response.status_code", res.status);
            if (res.status >= 400) {
                sl_span_set_str(span, "error.type", st);
                sl_span_set_status(span, SL_STATUS_ERROR, NULL);
            }
        } else {
            sl_span_set_str(span, "error.type", etype);
            sl_span_record_error(span, etype, curl_easy_strerror(cc));
        }
        sl_span_end(span, 0);
    }
    return res;
}

static bool retryable(const attempt_result *r) {
    return r->rc == SF_ETIMEOUT || (r->rc == SF_EUPSTREAM) ||
           (r->rc == 0 && (r->status == 502 || r->status == 503 || r->status == 504));
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int sf_client_do(sf_client *c, const sf_call *call, sf_response *resp) {
    memset(resp, 0, sizeof(*resp));
    if (c == NULL || call == NULL || call->upstream == NULL ||
        (call->url == NULL && call->path == NULL)) {
        return SL_EINVAL;
    }
    const char *method = call->method != NULL ? call->method : "GET";
    bool idem = call->idempotent < 0 ? method_idempotent(method) : call->idempotent != 0;
    upstream *u = get_upstream(c, call->upstream);
    if (u == NULL) {
        return SL_ENOMEM;
    }
    sink body;
    sl_buf_init(&body.buf, c->o.max_response_size);
    sl_buf hdrs;
    sl_buf_init(&hdrs, 64 * 1024);
    uint64_t t0 = rt_mono_ns();
    attempt_result r = {SF_EOPEN, 0};
    unsigned tries = 0;
    for (;;) {
        char url[2048];
        if (call->url != NULL) {
            snprintf(url, sizeof url, "%s", call->url);
        } else {
            char base[256];
            int prc = c->registry != NULL
                          ? sf_registry_pick(c->registry, call->upstream, call->version, call->tag,
                                             base, sizeof base)
                          : SF_ENOINSTANCE;
            if (prc != 0) {
                if (tries == 0) {
                    r.rc = prc;
                    count_call(call->upstream, "no_instance");
                }
                break;
            }
            snprintf(resp->instance, sizeof resp->instance, "%s", base);
            snprintf(url, sizeof url, "%s%s", base, call->path);
        }
        if (sf_breaker_allow(u->breaker) != 0) {
            /* Open: refuse at once (a retry stops here too). */
            if (tries == 0) {
                r.rc = SF_EOPEN;
                count_call(call->upstream, "open");
            }
            break;
        }
        r = attempt(c, call, method, url, tries, &body, &hdrs);
        tries++;
        bool ok = r.rc == 0 && r.status < 500;
        sf_breaker_record(u->breaker, ok);
        char st[16];
        snprintf(st, sizeof st, "%ld", r.status);
        count_call(call->upstream, r.rc == 0 ? st : r.rc == SF_ETIMEOUT ? "timeout" : "error");
        if (!idem || tries > c->o.max_retries || !retryable(&r)) {
            break;
        }
        sleep_ms(sf_backoff_ms(tries, c->o.backoff_base_ms, c->o.backoff_max_ms, rt_random01()));
    }
    sl_metric_observe(u->duration, (double)(rt_mono_ns() - t0) / 1e9);
    resp->attempts = tries;
    resp->status = r.rc == 0 ? r.status : 0;
    if (r.rc == 0) {
        if (sl_buf_putc(&body.buf, '\0') != 0) {
            r.rc = SF_EUPSTREAM;
        } else {
            resp->body = (char *)sl_buf_take(&body.buf, &resp->len);
            resp->len--;
            if (sl_buf_putc(&hdrs, '\0') == 0) {
                size_t hl;
                resp->headers = (char *)sl_buf_take(&hdrs, &hl);
            }
        }
    }
    sl_buf_free(&body.buf);
    sl_buf_free(&hdrs);
    return r.rc;
}

int sf_client_json(sf_client *c, const sf_call *call, const json_t *body, long *status,
                   json_t **json) {
    *json = NULL;
    *status = 0;
    sf_call cc = *call;
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL) {
            return SL_ENOMEM;
        }
        cc.body = text;
        cc.body_len = strlen(text);
        cc.content_type = "application/json";
    }
    sf_response r;
    int rc = sf_client_do(c, &cc, &r);
    free(text);
    if (rc == 0) {
        *status = r.status;
        if (r.len > 0) {
            *json = json_loadb(r.body, r.len, 0, NULL);
        }
    }
    sf_response_free(&r);
    return rc;
}

bool sf_response_header(const sf_response *r, const char *name, char *out, size_t cap) {
    if (r->headers == NULL) {
        return false;
    }
    size_t n = strlen(name);
    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            size_t vl = len - (size_t)(v - p);
            snprintf(out, cap, "%.*s", (int)vl, v);
            return true;
        }
        p += len + (eol != NULL ? 2 : 0);
    }
    return false;
}

void sf_response_free(sf_response *r) {
    if (r != NULL) {
        free(r->body);
        free(r->headers);
        r->body = NULL;
        r->headers = NULL;
    }
}
