/*
 * The query server: a libmicrohttpd daemon (internal polling thread plus a
 * thread pool) that routes GET/HEAD requests to the Jaeger API handlers, the
 * Prometheus API handlers, the self-metrics page, the health probes and the
 * static UI, and turns each handler's qry_resp into an HTTP answer.
 *
 * Invariants: GET/HEAD requests are answered once their (empty) body is in;
 * POSTs to the Prometheus endpoints that take them (query, query_range,
 * series, labels) once their form body (at most MAX_FORM_SIZE) is in; other
 * methods at once with a 405 without reading their bodies; every API
 * answer and error has a JSON body; every request is counted in
 * sightline_query_requests_total and timed in
 * sightline_query_duration_seconds. Limits: URL length, number of query
 * parameters, per-connection memory (which bounds headers and query string),
 * connection count and idle timeout, per-request arena and response size.
 * Thread-safety: qry_start/qry_stop from one controlling thread; on_request
 * runs on any of libmicrohttpd's threads, with per-request state only.
 */
#include "query_int.h"

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <microhttpd.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_URL_SIZE 4096
#define MAX_ARGS 256
#define REQUEST_ARENA_MAX ((size_t)256 << 20)
/* Per-connection memory: request line, headers and decoded query string must
 * fit; libmicrohttpd answers 414/431 on its own when they do not. */
#define CONNECTION_MEMORY ((size_t)128 << 10)
/* Largest application/x-www-form-urlencoded body a Prometheus POST may carry. */
#define MAX_FORM_SIZE ((size_t)1 << 20)

enum {
    H_SERVICES,
    H_OPERATIONS,
    H_OPERATIONS_LEGACY,
    H_TRACES,
    H_TRACE,
    H_DEPENDENCIES,
    H_PROM_QUERY,
    H_PROM_QUERY_RANGE,
    H_PROM_SERIES,
    H_PROM_LABELS,
    H_PROM_LABEL_VALUES,
    H_PROM_METADATA,
    H_LOGS,
    H_TRACE_LOGS,
    H_METRICS,
    H_HEALTHZ,
    H_READYZ,
    H_STATIC,
    H_OTHER,
    H_COUNT
};

static const char *const g_handler_names[H_COUNT] = {
    "services",
    "operations",
    "service_operations",
    "traces",
    "trace",
    "dependencies",
    "prom_query",
    "prom_query_range",
    "prom_series",
    "prom_labels",
    "prom_label_values",
    "prom_metadata",
    "logs",
    "trace_logs",
    "metrics",
    "healthz",
    "readyz",
    "static",
    "other",
};

/* Status codes whose counters are cached; others are looked up per request. */
static const int g_cached_codes[] = {200, 400, 404, 405, 413, 414, 422, 500, 503};
#define NCODES (sizeof(g_cached_codes) / sizeof(g_cached_codes[0]))

struct qry_server {
    struct MHD_Daemon *daemon;
    stg_store *store;
    qry_options opts;
    char *host;               /* owned copy of opts.host */
    char *ui_root;            /* canonical ui_dir, or NULL */
    char *tls_cert, *tls_key; /* PEM text, alive as long as the daemon */
    uint16_t port;
    _Atomic(sl_metric *) requests[H_COUNT][NCODES];
    sl_metric *duration[H_COUNT];
    sl_metric *g_bytes;
    sl_metric *g_partitions;
    sl_metric *g_blocks;
    sl_metric *g_wal;
};

static const char g_requests_help[] = "Query API requests by handler and HTTP status code.";

void qry_options_init(qry_options *o) {
    memset(o, 0, sizeof(*o));
    o->host = "0.0.0.0";
    o->port = 16686;
    o->ui_dir = NULL;
    o->threads = 2;
    o->max_limit = 1500;
    o->max_connections = 512;
    o->timeout_s = 30;
    o->max_response_bytes = (size_t)256 << 20;
    o->deps_max_spans = 2000000;
    o->health_down_after_ms = 5 * 60 * 1000;
    o->health_max_error_ratio = 0.05;
    o->health_max_p95_s = 2.0;
}

/* --- metrics ----------------------------------------------------------------- */

static sl_metric *requests_counter(qry_server *s, int handler, int code) {
    char labels[96];
    size_t slot = NCODES;
    for (size_t i = 0; i < NCODES; i++) {
        if (g_cached_codes[i] == code) {
            slot = i;
            break;
        }
    }
    if (slot < NCODES) {
        sl_metric *m = atomic_load_explicit(&s->requests[handler][slot], memory_order_acquire);
        if (m != NULL) {
            return m;
        }
    }
    snprintf(labels, sizeof(labels), "handler=\"%s\",code=\"%d\"", g_handler_names[handler], code);
    /* Registration is idempotent, so two threads racing here store the same
     * pointer. */
    sl_metric *m = sl_counter("sightline_query_requests_total", labels, g_requests_help);
    if (slot < NCODES && m != NULL) {
        atomic_store_explicit(&s->requests[handler][slot], m, memory_order_release);
    }
    return m;
}

static void register_metrics(qry_server *s) {
    char labels[64];
    for (int h = 0; h < H_COUNT; h++) {
        snprintf(labels, sizeof(labels), "handler=\"%s\"", g_handler_names[h]);
        s->duration[h] = sl_histogram("sightline_query_duration_seconds", labels,
                                      "Query API request latency in seconds.", sl_latency_bounds,
                                      sl_latency_nbounds);
    }
    s->g_bytes = sl_gauge("sightline_storage_bytes_on_disk", "",
                          "Bytes the storage data files occupy on disk.");
    s->g_partitions =
        sl_gauge("sightline_storage_partitions", "", "Time partitions (windows) on disk.");
    s->g_blocks = sl_gauge("sightline_storage_blocks", "", "Span blocks stored.");
    s->g_wal = sl_gauge("sightline_storage_wal_records", "",
                        "Write-ahead log records not yet cut into blocks.");
}

static void serve_metrics(qry_server *s, qry_resp *resp) {
    stg_stats st;
    memset(&st, 0, sizeof(st));
    stg_get_stats(s->store, &st);
    sl_metric_set(s->g_bytes, st.bytes_on_disk);
    sl_metric_set(s->g_partitions, st.partitions);
    sl_metric_set(s->g_blocks, st.blocks);
    sl_metric_set(s->g_wal, st.wal_records);
    if (sl_metrics_render(&resp->body) != 0) {
        qry_resp_error(resp, 503, "metrics could not be rendered");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* --- routing ------------------------------------------------------------------ */

static int has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void plain(qry_resp *resp, const char *text) {
    if (sl_buf_append_str(&resp->body, text) != 0) {
        qry_resp_error(resp, 503, "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
}

/* Collects query-string arguments (already URL-decoded by libmicrohttpd). */
typedef struct args_ctx {
    sl_arena *a;
    qry_kv *kv;
    size_t n;
    int err; /* SL_ETOOBIG: too many; SL_ENOMEM */
} args_ctx;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size) {
    args_ctx *c = cls;
    (void)kind;
    if (c->n >= MAX_ARGS) {
        c->err = SL_ETOOBIG;
        return MHD_NO;
    }
    if (c->kv == NULL) {
        c->kv = sl_arena_calloc(c->a, MAX_ARGS, sizeof(*c->kv));
        if (c->kv == NULL) {
            c->err = SL_ENOMEM;
            return MHD_NO;
        }
    }
    c->kv[c->n].key = (sl_str){key != NULL ? key : "", key != NULL ? key_size : 0};
    c->kv[c->n].val = (sl_str){value != NULL ? value : "", value != NULL ? value_size : 0};
    c->n++;
    return MHD_YES;
}

static int route_prom(const char *path, qry_req *req, qry_resp *resp);
static int route_ext(qry_server *s, const char *method, const char *path, qry_req *req,
                     qry_resp *resp);

/* Prometheus endpoints that also take their parameters as a POSTed form. */
static int takes_form(const char *path) {
    return strcmp(path, "/-/reload") == 0 || strcmp(path, "/api/v1/query") == 0 ||
           strcmp(path, "/api/v1/query_range") == 0 || strcmp(path, "/api/v1/series") == 0 ||
           strcmp(path, "/api/v1/labels") == 0;
}

/* A POSTed form body, gathered across libmicrohttpd's calls. */
typedef struct form_body {
    sl_buf body;
    int too_big;
} form_body;

/* 400/401/403 from the tenant and token check; 401 names the scheme. */
static void auth_error(qry_resp *resp, int status, const char *why) {
    qry_resp_error(resp, status, why);
    if (status == 401) {
        resp->www_authenticate = "Bearer realm=\"sightline\"";
    }
}

/* Picks the handler for path and runs it. Returns the handler id. */
static int route(qry_server *s, struct MHD_Connection *conn, const char *path, qry_req *req,
                 qry_resp *resp) {
    if (strcmp(path, "/healthz") == 0) {
        plain(resp, "ok");
        return H_HEALTHZ;
    }
    if (strcmp(path, "/readyz") == 0) {
        /* Storage is open before the server starts, so being up is ready. */
        plain(resp, "ready");
        return H_READYZ;
    }
    const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *org = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Scope-OrgID");
    sl_str authz_s = sl_str_c(authz != NULL ? authz : "");
    sl_str org_s = sl_str_c(org != NULL ? org : "");
    if (strcmp(path, "/metrics") == 0) {
        /* With tokens configured, the server's own metrics need admin. */
        char any[65];
        const char *why = NULL;
        int st = sl_auth_enabled(s->opts.auth)
                     ? sl_auth_decide(s->opts.auth, authz != NULL ? &authz_s : NULL, NULL,
                                      SL_SCOPE_ADMIN, any, &why)
                     : 0;
        if (st != 0) {
            auth_error(resp, st, why);
            return H_OTHER;
        }
        serve_metrics(s, resp);
        return H_METRICS;
    }
    if (strcmp(path, "/-/reload") == 0) {
        /* Prometheus's reload endpoint: POST only, admin scope with tokens. */
        char tenant[65];
        const char *rwhy = NULL;
        int rst = sl_auth_enabled(s->opts.auth)
                      ? sl_auth_decide(s->opts.auth, authz != NULL ? &authz_s : NULL, NULL,
                                       SL_SCOPE_ADMIN, tenant, &rwhy)
                      : 0;
        if (rst != 0) {
            auth_error(resp, rst, rwhy);
            return H_OTHER;
        }
        if (strcmp(req->method, "POST") != 0) {
            qry_resp_error(resp, 405, "method not allowed: use POST");
            resp->allow = "POST";
            return H_OTHER;
        }
        return route_ext(s, req->method, path, req, resp);
    }
    if (!has_prefix(path, "/api/")) {
        if (s->ui_root == NULL) {
            qry_resp_error(resp, 404, "not found");
            return H_OTHER;
        }
        qry_serve_file(s->ui_root, path, resp);
        return H_STATIC;
    }

    /* Every API call is scoped to one tenant (the Tempo/Loki convention):
     * X-Scope-OrgID, or with tokens configured the token's own tenant. */
    const char *why = NULL;
    int st = sl_auth_decide(s->opts.auth, authz != NULL ? &authz_s : NULL,
                            org != NULL ? &org_s : NULL, SL_SCOPE_QUERY, req->tenant_buf, &why);
    if (st != 0) {
        auth_error(resp, st, why);
        return H_OTHER;
    }
    req->tenant = req->tenant_buf;

    /* The path arrives URL-decoded: a service name may hold any byte, '/'
     * included, so it is everything between the fixed prefix and suffix. */
    static const char svc_prefix[] = "/api/services/";
    static const char ops_suffix[] = "/operations";
    size_t len = strlen(path);
    if (strcmp(path, "/api/services") == 0) {
        qry_api_services(req, resp);
        return H_SERVICES;
    }
    if (has_prefix(path, svc_prefix) && len > sizeof(svc_prefix) - 1 + sizeof(ops_suffix) - 1 &&
        strcmp(path + len - (sizeof(ops_suffix) - 1), ops_suffix) == 0) {
        sl_str service = {path + sizeof(svc_prefix) - 1,
                          len - (sizeof(svc_prefix) - 1) - (sizeof(ops_suffix) - 1)};
        qry_api_service_operations(req, service, resp);
        return H_OPERATIONS_LEGACY;
    }
    if (strcmp(path, "/api/operations") == 0) {
        qry_api_operations(req, resp);
        return H_OPERATIONS;
    }
    if (strcmp(path, "/api/traces") == 0) {
        qry_api_traces(req, resp);
        return H_TRACES;
    }
    static const char logs_suffix[] = "/logs";
    if (strcmp(path, "/api/logs") == 0) {
        qry_api_logs(req, resp);
        return H_LOGS;
    }
    if (has_prefix(path, "/api/traces/") && len > sizeof("/api/traces/") - 1 + 5 &&
        strcmp(path + len - (sizeof(logs_suffix) - 1), logs_suffix) == 0) {
        sl_str id = {path + sizeof("/api/traces/") - 1,
                     len - (sizeof("/api/traces/") - 1) - (sizeof(logs_suffix) - 1)};
        qry_api_trace_logs(req, id, resp);
        return H_TRACE_LOGS;
    }
    if (has_prefix(path, "/api/traces/") && path[sizeof("/api/traces/") - 1] != '\0') {
        qry_api_trace(req, sl_str_c(path + sizeof("/api/traces/") - 1), resp);
        return H_TRACE;
    }
    if (strcmp(path, "/api/dependencies") == 0) {
        qry_api_dependencies(req, resp);
        return H_DEPENDENCIES;
    }
    if (strcmp(path, "/api/service-map") == 0) {
        qry_api_service_map(req, resp);
        return H_DEPENDENCIES;
    }
    if (strcmp(path, "/api/fleet/health") == 0) {
        qry_api_fleet_health(req, resp);
        return H_DEPENDENCIES;
    }
    if (strcmp(path, "/api/v1/rules") == 0 || strcmp(path, "/api/v1/alerts") == 0) {
        return route_ext(s, req->method, path, req, resp);
    }
    return route_prom(path, req, resp);
}

/* The Prometheus HTTP API (prom_api.c). */
static int route_prom(const char *path, qry_req *req, qry_resp *resp) {
    static const char lv_prefix[] = "/api/v1/label/";
    static const char lv_suffix[] = "/values";
    size_t len = strlen(path);
    if (strcmp(path, "/api/v1/query") == 0) {
        qry_api_prom_query(req, resp);
        return H_PROM_QUERY;
    }
    if (strcmp(path, "/api/v1/query_range") == 0) {
        qry_api_prom_query_range(req, resp);
        return H_PROM_QUERY_RANGE;
    }
    if (strcmp(path, "/api/v1/series") == 0) {
        qry_api_prom_series(req, resp);
        return H_PROM_SERIES;
    }
    if (strcmp(path, "/api/v1/labels") == 0) {
        qry_api_prom_labels(req, resp);
        return H_PROM_LABELS;
    }
    if (strcmp(path, "/api/v1/metadata") == 0) {
        qry_api_prom_metadata(req, resp);
        return H_PROM_METADATA;
    }
    if (has_prefix(path, lv_prefix) && len > sizeof(lv_prefix) - 1 + sizeof(lv_suffix) - 1 &&
        strcmp(path + len - (sizeof(lv_suffix) - 1), lv_suffix) == 0) {
        sl_str name = {path + sizeof(lv_prefix) - 1,
                       len - (sizeof(lv_prefix) - 1) - (sizeof(lv_suffix) - 1)};
        qry_api_prom_label_values(req, name, resp);
        return H_PROM_LABEL_VALUES;
    }
    qry_resp_error(resp, 404, "unknown API path");
    return H_OTHER;
}

static const char *ext_arg(const qry_ext_req *r, const char *name, char *buf, size_t cap) {
    const qry_req *req = r->priv;
    sl_str v;
    if (!qry_args_get(&req->args, name, &v) || v.len >= cap) {
        return NULL;
    }
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return buf;
}

/* Hands the request to the extension endpoints; 404 when none serves it. */
static int route_ext(qry_server *s, const char *method, const char *path, qry_req *req,
                     qry_resp *resp) {
    if (s->opts.ext != NULL) {
        qry_ext_req er = {method, path, req->tenant, req, ext_arg};
        int status = 0;
        resp->body.len = 0;
        int rc = s->opts.ext(s->opts.ext_ud, &er, &status, &resp->body);
        if (rc == 0) {
            resp->status = status;
            resp->content_type = "application/json";
            return H_OTHER;
        }
        if (rc != SL_ENOTFOUND) {
            qry_resp_error(resp, 503, sl_strerror(rc));
            return H_OTHER;
        }
    }
    qry_resp_error(resp, 404, "unknown API path");
    return H_OTHER;
}

/* --- answering ---------------------------------------------------------------- */

static void free_body(void *p) {
    free(p);
}

/* Hands resp to libmicrohttpd. Returns MHD_NO only when no response could be
 * built at all (out of memory), which closes the connection. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, qry_resp *resp) {
    struct MHD_Response *r = NULL;
    if (resp->fd >= 0) {
        r = MHD_create_response_from_fd64(resp->fd_size, resp->fd);
        if (r == NULL) {
            close(resp->fd);
        }
        resp->fd = -1; /* owned by the response (or closed) from here on */
        if (r == NULL) {
            qry_resp_error(resp, 503, "could not send the file");
        }
    }
    if (r == NULL && resp->body.len > 0) {
        size_t len = 0;
        uint8_t *data = sl_buf_take(&resp->body, &len);
        r = MHD_create_response_from_buffer_with_free_callback(len, data, free_body);
        if (r == NULL) {
            free(data);
        }
    } else if (r == NULL) {
        r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL) {
        return MHD_NO;
    }
    if (resp->content_type != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    }
    if (resp->allow != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    }
    if (resp->www_authenticate != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, resp->www_authenticate);
    }
    if (resp->cache_control != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, resp->cache_control);
    }
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Per-request markers kept in libmicrohttpd's request closure (or a
 * form_body while a POST's body comes in). */
static char g_pending;
static char g_answered;

static form_body *form_of(void *req_cls) {
    if (req_cls == NULL || req_cls == &g_pending || req_cls == &g_answered) {
        return NULL;
    }
    return req_cls;
}

static void form_free(form_body *f) {
    if (f != NULL) {
        sl_buf_free(&f->body);
        free(f);
    }
}

/* Frees a POST body whose request ended before it was answered. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    form_free(form_of(*req_cls));
    *req_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    qry_server *s = cls;
    uint64_t t0 = sl_mono_nano();
    sl_arena arena;
    qry_resp resp;
    qry_req req;
    args_ctx args;
    int handler = H_OTHER;
    (void)version;

    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (*req_cls == &g_answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*req_cls == NULL && post && takes_form(url)) {
        form_body *f = calloc(1, sizeof(*f));
        if (f == NULL) {
            return MHD_NO;
        }
        sl_buf_init(&f->body, MAX_FORM_SIZE);
        *req_cls = f;
        return MHD_YES;
    }
    form_body *form = form_of(*req_cls);
    if (form != NULL && *upload_data_size != 0) {
        if (!form->too_big && sl_buf_append(&form->body, upload_data, *upload_data_size) != 0) {
            form->too_big = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*req_cls == NULL && get) {
        /* Answer on the next call, once the (empty) body is in: a response
         * queued on the first call makes libmicrohttpd close the connection,
         * which would cost every UI request a new TCP handshake. */
        *req_cls = &g_pending;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* A GET with a body: the body means nothing here. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* Other methods are refused at once, without reading their bodies. */
    *req_cls = &g_answered;
    (void)upload_data;

    sl_arena_init(&arena, REQUEST_ARENA_MAX);
    memset(&resp, 0, sizeof(resp));
    sl_buf_init(&resp.body, s->opts.max_response_bytes);
    resp.fd = -1;
    memset(&req, 0, sizeof(req));
    req.store = s->store;
    req.opts = &s->opts;
    req.tenant = "default";
    req.arena = &arena;
    req.now_unix_nano = sl_now_unix_nano();
    req.method = method;
    memset(&args, 0, sizeof(args));
    args.a = &arena;

    if (form != NULL && form->too_big) {
        qry_resp_error(&resp, 413, "form body too large");
    } else if (!get && form == NULL) {
        qry_resp_error(&resp, 405,
                       post && takes_form(url) ? "method not allowed"
                                               : "method not allowed: use GET");
        resp.allow = takes_form(url) ? "GET, HEAD, POST" : "GET, HEAD";
    } else if (strlen(url) > MAX_URL_SIZE) {
        qry_resp_error(&resp, 414, "URL too long");
    } else {
        if (form != NULL) {
            /* Form values come first: they take precedence over the query
             * string, as in Go's Request.FormValue. */
            const char *ct =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
            args.kv = sl_arena_calloc(&arena, MAX_ARGS, sizeof(*args.kv));
            if (args.kv == NULL) {
                args.err = SL_ENOMEM;
            } else if (ct != NULL && has_prefix(ct, "application/x-www-form-urlencoded")) {
                int rc = qry_parse_form((sl_str){(const char *)form->body.data, form->body.len},
                                        &arena, args.kv, MAX_ARGS, &args.n);
                args.err = rc;
            }
        }
        MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
        if (args.err == SL_ETOOBIG) {
            qry_resp_error(&resp, 400, "too many query parameters");
        } else if (args.err == SL_EINVAL) {
            qry_resp_error(&resp, 400, "malformed form body");
        } else if (args.err != 0) {
            qry_resp_error(&resp, 503, "out of memory");
        } else {
            req.args.kv = args.kv;
            req.args.n = args.n;
            handler = route(s, conn, url, &req, &resp);
        }
    }
    if (resp.status == 0) {
        /* A handler that forgot to answer is a bug; still, answer. */
        qry_resp_error(&resp, 503, "no answer");
    }

    enum MHD_Result ret = send_resp(conn, &resp);
    sl_metric_add(requests_counter(s, handler, resp.status), 1);
    sl_metric_observe(s->duration[handler], (double)(sl_mono_nano() - t0) / 1e9);
    sl_buf_free(&resp.body);
    sl_arena_free(&arena);
    form_free(form);
    return ret;
}

/* libmicrohttpd's own diagnostics (startup failures, protocol errors). */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    SL_LOG_W("query", "http: %s", msg);
}

/* --- start and stop -------------------------------------------------------------- */

/* Creates a listening, non-blocking socket on host:port. Returns the fd or
 * -errno (SL_EINVAL when host does not resolve). */
static int listen_on(const char *host, uint16_t port) {
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char port_s[8];
    int rc = SL_EINVAL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
    if (getaddrinfo(host, port_s, &hints, &res) != 0 || res == NULL) {
        return SL_EINVAL;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            /* "::" should take IPv4 clients too. */
            int zero = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        rc = fd;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

static uint16_t bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

/* Resolves ui_dir to a canonical directory path, or NULL (logged) when it is
 * unusable: a server without its UI is more useful than no server. */
static char *ui_root_of(const char *ui_dir) {
    struct stat st;
    if (ui_dir == NULL || ui_dir[0] == '\0') {
        return NULL;
    }
    char *root = realpath(ui_dir, NULL);
    if (root == NULL || stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        SL_LOG_W("query", "ui_dir %s is not a readable folder; serving no UI", ui_dir);
        free(root);
        return NULL;
    }
    return root;
}

/* Reads a whole (small) file into a NUL-terminated string. */
static int slurp(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -errno;
    }
    sl_buf b;
    sl_buf_init(&b, 1u << 20);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = sl_buf_append(&b, chunk, n);
    }
    fclose(f);
    if (rc == 0) {
        rc = sl_buf_putc(&b, '\0');
    }
    if (rc != 0) {
        sl_buf_free(&b);
        return rc;
    }
    size_t len;
    *out = (char *)sl_buf_take(&b, &len);
    return 0;
}

int qry_start(const qry_options *o, stg_store *store, qry_server **out) {
    int rc = 0;
    int fd = -1;
    qry_server *s = NULL;

    assert(o != NULL && store != NULL && out != NULL);
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    s->store = store;
    s->opts = *o;
    if (s->opts.threads == 0) {
        s->opts.threads = 1;
    }
    if (s->opts.max_limit == 0) {
        s->opts.max_limit = 1;
    }
    if (s->opts.max_connections == 0) {
        s->opts.max_connections = 512;
    }
    if (s->opts.max_response_bytes == 0) {
        s->opts.max_response_bytes = (size_t)256 << 20;
    }
    if (s->opts.deps_max_spans == 0) {
        s->opts.deps_max_spans = 2000000;
    }
    s->host = strdup(o->host != NULL && o->host[0] != '\0' ? o->host : "0.0.0.0");
    if (s->host == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    s->opts.host = s->host;
    s->ui_root = ui_root_of(o->ui_dir);
    s->opts.ui_dir = s->ui_root;
    register_metrics(s);

    fd = listen_on(s->host, o->port);
    if (fd < 0) {
        rc = fd;
        fd = -1;
        SL_LOG_E("query", "cannot listen on %s:%u: %s", s->host, (unsigned)o->port,
                 sl_strerror(rc));
        goto fail;
    }
    s->port = bound_port(fd);

    struct MHD_OptionItem items[12];
    size_t ni = 0;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (o->tls_cert != NULL) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            SL_LOG_E("query", "this libmicrohttpd has no TLS support");
            rc = SL_EUNSUPPORTED;
            goto fail;
        }
        if ((rc = slurp(o->tls_cert, &s->tls_cert)) != 0 ||
            (rc = slurp(o->tls_key, &s->tls_key)) != 0) {
            SL_LOG_E("query", "cannot read %s / %s: %s", o->tls_cert, o->tls_key, sl_strerror(rc));
            goto fail;
        }
        flags |= MHD_USE_TLS;
        items[ni++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        items[ni++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        /* TLS 1.2 and 1.3 only (GnuTLS priority string). */
        items[ni++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)(uintptr_t) "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
                                                                  "+VERS-TLS1.2"};
    }
    items[ni++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    items[ni++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                          (intptr_t)s->opts.max_connections, NULL};
    items[ni++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->opts.timeout_s, NULL};
    items[ni++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                          (intptr_t)CONNECTION_MEMORY, NULL};
    if (s->opts.threads > 1) {
        items[ni++] =
            (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)s->opts.threads, NULL};
    }
    items[ni++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    errno = 0;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                 mhd_log, (void *)NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                 (void *)NULL, MHD_OPTION_ARRAY, items, MHD_OPTION_END);
    if (s->daemon == NULL) {
        rc = errno != 0 ? -errno : SL_ENOMEM;
        SL_LOG_E("query", "cannot start the HTTP server on %s:%u", s->host, (unsigned)o->port);
        goto fail;
    }
    /* From here on the daemon owns the listening socket and closes it. */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0) {
        s->port = info->port;
    }
    SL_LOG_I("query", "query API listening on %s:%u (%u threads)%s%s", s->host, (unsigned)s->port,
             s->opts.threads, s->ui_root ? ", UI from " : "", s->ui_root ? s->ui_root : "");
    *out = s;
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
    }
    if (s != NULL) {
        free(s->ui_root);
        free(s->host);
        free(s->tls_cert);
        free(s->tls_key);
        free(s);
    }
    return rc;
}

uint16_t qry_port(const qry_server *q) {
    return q != NULL ? q->port : 0;
}

void qry_stop(qry_server *q) {
    if (q == NULL) {
        return;
    }
    if (q->daemon != NULL) {
        MHD_stop_daemon(q->daemon);
    }
    free(q->ui_root);
    free(q->host);
    free(q->tls_cert);
    free(q->tls_key);
    free(q);
}
