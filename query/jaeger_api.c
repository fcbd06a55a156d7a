/*
 * The Jaeger query API handlers: services, operations, trace search, one
 * trace, and the service dependency graph. Each handler reads storage through
 * storage.h, renders into resp->body and maps failures to Jaeger-style JSON
 * errors (400 for bad input, 404 for unknown traces, 503 when storage fails).
 *
 * Invariants: handlers never trust parameters (query_params.c checks them);
 * every allocation is bounded (the request arena's cap, the response buffer's
 * maximum, the dependency scan's span cap).
 * Thread-safety: called on libmicrohttpd's worker threads, many at once; all
 * state is per request.
 */
#include "query_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory one trace may take while it is decoded and rendered. */
#define TRACE_ARENA_MAX ((size_t)1 << 30)

static const char g_json[] = "application/json";

void qry_resp_error(qry_resp *resp, int status, const char *msg) {
    size_t max = resp->body.max_size;
    sl_buf_free(&resp->body);
    /* An error body is small; never let the response cap refuse it. */
    sl_buf_init(&resp->body, 0);
    if (qry_render_error(&resp->body, status, msg) != 0) {
        sl_buf_free(&resp->body);
    }
    resp->body.max_size = max;
    resp->status = status;
    resp->content_type = g_json;
}

void qry_resp_storage_error(qry_resp *resp, int rc) {
    char msg[160];
    switch (rc) {
    case SL_EINVAL:
        qry_resp_error(resp, 400, "invalid query");
        return;
    case SL_ENOTFOUND:
        qry_resp_error(resp, 404, "not found");
        return;
    case SL_ETOOBIG:
        qry_resp_error(resp, 400, "result too large: narrow the query or lower the limit");
        return;
    case SL_ENOMEM:
        qry_resp_error(resp, 503, "out of memory: try again later or narrow the query");
        return;
    default:
        SL_LOG_W("query", "storage read failed: %s", sl_strerror(rc));
        snprintf(msg, sizeof(msg), "storage unavailable: %s", sl_strerror(rc));
        qry_resp_error(resp, 503, msg);
        return;
    }
}

/* Finishes a response from a writer: 200 with the body, or the writer's error. */
static void finish(qry_resp *resp, const qry_jw *w) {
    if (w->err != 0) {
        qry_resp_storage_error(resp, w->err);
        return;
    }
    resp->status = 200;
    resp->content_type = g_json;
}

/* --- string lists ------------------------------------------------------------ */

/* A growable array of strings copied into the request arena. */
typedef struct str_list {
    sl_arena *a;
    sl_str *items;
    size_t n;
    size_t cap;
} str_list;

static int str_list_add(str_list *l, sl_str s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        sl_str *items = sl_arena_alloc(l->a, cap * sizeof(*items));
        if (items == NULL) {
            return SL_ENOMEM;
        }
        if (l->n > 0) {
            memcpy(items, l->items, l->n * sizeof(*items));
        }
        l->items = items;
        l->cap = cap;
    }
    char *copy = sl_arena_strndup(l->a, s.ptr != NULL ? s.ptr : "", s.len);
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    l->items[l->n++] = (sl_str){copy, s.len};
    return 0;
}

static int cmp_str(sl_str a, sl_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

static int cmp_str_q(const void *pa, const void *pb) {
    return cmp_str(*(const sl_str *)pa, *(const sl_str *)pb);
}

/* Sorts and removes duplicates. */
static void str_list_sort_unique(str_list *l) {
    if (l->n < 2) {
        return;
    }
    qsort(l->items, l->n, sizeof(*l->items), cmp_str_q);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (!sl_str_eq(l->items[i], l->items[k - 1])) {
            l->items[k++] = l->items[i];
        }
    }
    l->n = k;
}

static void render_str_list(const str_list *l, qry_resp *resp) {
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        qry_jw_str(&w, l->items[i].ptr, l->items[i].len);
    }
    QRY_JW_LIT(&w, "]");
    qry_envelope_close(&w, l->n, (sl_str){NULL, 0});
    finish(resp, &w);
}

/* --- /api/services ---------------------------------------------------------- */

typedef struct services_ctx {
    str_list list;
    sl_str last; /* the previous service seen, to skip most repeats early */
} services_ctx;

static int services_cb(void *ud, sl_str service, sl_str operation, int kind) {
    services_ctx *c = ud;
    (void)operation;
    (void)kind;
    if (c->list.n > 0 && sl_str_eq(service, c->last)) {
        return 0;
    }
    int rc = str_list_add(&c->list, service);
    if (rc == 0) {
        c->last = c->list.items[c->list.n - 1];
    }
    return rc;
}

void qry_api_services(const qry_req *req, qry_resp *resp) {
    services_ctx c;
    memset(&c, 0, sizeof(c));
    c.list.a = req->arena;
    int rc = stg_list_operations(req->store, req->tenant, services_cb, &c);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    str_list_sort_unique(&c.list);
    render_str_list(&c.list, resp);
}

/* --- /api/services/{service}/operations --------------------------------------- */

typedef struct ops_ctx {
    str_list names;
    int *kinds; /* parallel to names.items when collecting kinds */
    size_t kinds_cap;
    sl_str service;
    int want_kinds;
    const char *kind_filter; /* NULL: any */
} ops_ctx;

static int ops_cb(void *ud, sl_str service, sl_str operation, int kind) {
    ops_ctx *c = ud;
    if (!sl_str_eq(service, c->service)) {
        return 0;
    }
    if (c->kind_filter != NULL && strcmp(qry_kind_name(kind), c->kind_filter) != 0) {
        return 0;
    }
    int rc = str_list_add(&c->names, operation);
    if (rc != 0 || !c->want_kinds) {
        return rc;
    }
    if (c->names.n > c->kinds_cap) {
        size_t cap = c->names.cap;
        int *k = sl_arena_alloc(c->names.a, cap * sizeof(*k));
        if (k == NULL) {
            return SL_ENOMEM;
        }
        if (c->names.n > 1) {
            memcpy(k, c->kinds, (c->names.n - 1) * sizeof(*k));
        }
        c->kinds = k;
        c->kinds_cap = cap;
    }
    c->kinds[c->names.n - 1] = kind;
    return 0;
}

void qry_api_service_operations(const qry_req *req, sl_str service, qry_resp *resp) {
    ops_ctx c;
    memset(&c, 0, sizeof(c));
    c.names.a = req->arena;
    c.service = service;
    int rc = stg_list_operations(req->store, req->tenant, ops_cb, &c);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    str_list_sort_unique(&c.names);
    render_str_list(&c.names, resp);
}

/* --- /api/operations?service=&spanKind= ------------------------------------------ */

typedef struct op_kind {
    sl_str name;
    const char *kind;
} op_kind;

static int cmp_op_kind(const void *pa, const void *pb) {
    const op_kind *a = pa;
    const op_kind *b = pb;
    int c = cmp_str(a->name, b->name);
    return c != 0 ? c : strcmp(a->kind, b->kind);
}

void qry_api_operations(const qry_req *req, qry_resp *resp) {
    ops_ctx c;
    sl_str service;
    sl_str kind;
    char kind_buf[16];

    if (!qry_args_get(&req->args, "service", &service)) {
        qry_resp_error(resp, 400, "parameter 'service' is required");
        return;
    }
    memset(&c, 0, sizeof(c));
    c.names.a = req->arena;
    c.service = service;
    c.want_kinds = 1;
    if (qry_args_get(&req->args, "spanKind", &kind)) {
        if (kind.len >= sizeof(kind_buf)) {
            /* No kind is this long: nothing can match. */
            kind = SL_STR_LIT("-");
        }
        memcpy(kind_buf, kind.ptr, kind.len);
        kind_buf[kind.len] = '\0';
        c.kind_filter = kind_buf;
    }
    int rc = stg_list_operations(req->store, req->tenant, ops_cb, &c);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    op_kind *ops = NULL;
    size_t n = 0;
    if (c.names.n > 0) {
        ops = sl_arena_alloc(req->arena, c.names.n * sizeof(*ops));
        if (ops == NULL) {
            qry_resp_storage_error(resp, SL_ENOMEM);
            return;
        }
        for (size_t i = 0; i < c.names.n; i++) {
            ops[i].name = c.names.items[i];
            ops[i].kind = qry_kind_name(c.kinds[i]);
        }
        qsort(ops, c.names.n, sizeof(*ops), cmp_op_kind);
        n = 1;
        for (size_t i = 1; i < c.names.n; i++) {
            if (cmp_op_kind(&ops[i], &ops[n - 1]) != 0) {
                ops[n++] = ops[i];
            }
        }
    }
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        QRY_JW_LIT(&w, "{\"name\":");
        qry_jw_str(&w, ops[i].name.ptr, ops[i].name.len);
        QRY_JW_LIT(&w, ",\"spanKind\":");
        qry_jw_str(&w, ops[i].kind, strlen(ops[i].kind));
        QRY_JW_LIT(&w, "}");
    }
    QRY_JW_LIT(&w, "]");
    qry_envelope_close(&w, n, (sl_str){NULL, 0});
    finish(resp, &w);
}

/* --- /api/traces and /api/traces/{id} ---------------------------------------- */

/* Fetches one trace and appends it to w. Returns 0, SL_ENOTFOUND or an error. */
static int render_one_trace(const qry_req *req, const uint8_t id[16], sl_arena *scratch, qry_jw *w,
                            int comma) {
    sl_span *spans = NULL;
    size_t n = 0;
    sl_arena_reset(scratch);
    int rc = stg_get_trace(req->store, req->tenant, id, scratch, &spans, &n);
    if (rc == 0 && n == 0) {
        rc = SL_ENOTFOUND;
    }
    if (rc != 0) {
        return rc;
    }
    if (comma) {
        QRY_JW_LIT(w, ",");
    }
    return qry_render_trace(w, spans, n, scratch);
}

void qry_api_traces(const qry_req *req, qry_resp *resp) {
    qry_trace_params p;
    qry_errbuf err;
    sl_arena scratch;
    sl_buf errors;
    qry_jw w;
    qry_jw ew;
    size_t found = 0;
    size_t missing = 0;
    uint8_t(*ids)[16] = NULL;
    size_t nids = 0;

    sl_arena_init(&scratch, TRACE_ARENA_MAX);
    sl_buf_init(&errors, 0);
    qry_jw_init(&w, &resp->body);
    qry_jw_init(&ew, &errors);
    err.msg[0] = '\0';

    int rc = qry_parse_trace_params(&req->args, req->now_unix_nano, req->opts->max_limit,
                                    req->arena, &p, &err);
    if (rc == SL_EINVAL) {
        qry_resp_error(resp, 400, err.msg);
        goto out;
    }
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        goto out;
    }
    if (p.ntrace_ids > 0) {
        ids = p.trace_ids;
        nids = p.ntrace_ids;
    } else {
        p.q.tenant = req->tenant;
        ids = sl_arena_alloc(req->arena, p.q.limit * sizeof(*ids));
        if (ids == NULL) {
            qry_resp_storage_error(resp, SL_ENOMEM);
            goto out;
        }
        rc = stg_find_traces(req->store, &p.q, ids, &nids);
        if (rc == SL_ENOTFOUND) {
            nids = 0;
        } else if (rc != 0) {
            qry_resp_storage_error(resp, rc);
            goto out;
        }
    }

    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[");
    for (size_t i = 0; i < nids && w.err == 0; i++) {
        rc = render_one_trace(req, ids[i], &scratch, &w, found > 0);
        if (rc == SL_ENOTFOUND) {
            /* A searched trace can vanish to retention between the search and
             * the read; a named one is reported the way Jaeger does. */
            if (p.ntrace_ids > 0) {
                if (missing == 0) {
                    QRY_JW_LIT(&ew, "[");
                } else {
                    QRY_JW_LIT(&ew, ",");
                }
                QRY_JW_LIT(&ew, "{\"code\":404,\"msg\":\"trace not found\",\"traceID\":");
                qry_jw_hex(&ew, ids[i], 16);
                QRY_JW_LIT(&ew, "}");
                missing++;
            }
            continue;
        }
        if (rc != 0) {
            qry_resp_storage_error(resp, rc);
            goto out;
        }
        found++;
    }
    QRY_JW_LIT(&w, "]");
    if (missing > 0) {
        QRY_JW_LIT(&ew, "]");
    }
    if (ew.err != 0) {
        qry_resp_storage_error(resp, ew.err);
        goto out;
    }
    qry_envelope_close(&w, found, (sl_str){(const char *)errors.data, errors.len});
    finish(resp, &w);
out:
    sl_buf_free(&errors);
    sl_arena_free(&scratch);
}

void qry_api_trace(const qry_req *req, sl_str trace_id_hex, qry_resp *resp) {
    uint8_t id[16];
    sl_arena scratch;
    qry_jw w;

    sl_arena_init(&scratch, TRACE_ARENA_MAX);
    qry_jw_init(&w, &resp->body);
    if (qry_parse_trace_id(trace_id_hex, id) != 0) {
        qry_resp_error(resp, 400, "malformed trace ID (1-32 hex digits)");
        goto out;
    }
    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[");
    int rc = render_one_trace(req, id, &scratch, &w, 0);
    if (rc == SL_ENOTFOUND) {
        qry_resp_error(resp, 404, "trace not found");
        goto out;
    }
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        goto out;
    }
    QRY_JW_LIT(&w, "]");
    qry_envelope_close(&w, 1, (sl_str){NULL, 0});
    finish(resp, &w);
out:
    sl_arena_free(&scratch);
}

/* --- /api/dependencies ----------------------------------------------------------- */

static int cmp_dep_edge(const void *pa, const void *pb) {
    const stg_dep_edge *a = pa, *b = pb;
    int c = strcmp(a->parent, b->parent);
    return c != 0 ? c : strcmp(a->child, b->child);
}

/* The live service graph (storage's deps.c, kept up to date as spans are
 * stored) over [endTs - lookback, endTs], in Jaeger's shape. */
void qry_api_dependencies(const qry_req *req, qry_resp *resp) {
    qry_errbuf err;
    uint64_t start_ns, end_ns;
    stg_dep_edge *edges = NULL;
    stg_dep_service *svcs = NULL;
    size_t nedges = 0, nsvcs = 0;
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    if (qry_parse_deps_params(&req->args, req->now_unix_nano, &start_ns, &end_ns, &err) != 0) {
        qry_resp_error(resp, 400, err.msg);
        return;
    }
    int rc = stg_deps_get(req->store, req->tenant, start_ns, end_ns, req->arena, &edges, &nedges,
                          &svcs, &nsvcs);
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    if (nedges > 1) {
        qsort(edges, nedges, sizeof(*edges), cmp_dep_edge);
    }
    qry_envelope_open(&w);
    QRY_JW_LIT(&w, "[");
    for (size_t i = 0; i < nedges; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        QRY_JW_LIT(&w, "{\"parent\":");
        qry_jw_str(&w, edges[i].parent, strlen(edges[i].parent));
        QRY_JW_LIT(&w, ",\"child\":");
        qry_jw_str(&w, edges[i].child, strlen(edges[i].child));
        QRY_JW_LIT(&w, ",\"callCount\":");
        qry_jw_u64(&w, edges[i].stats.calls);
        QRY_JW_LIT(&w, "}");
    }
    QRY_JW_LIT(&w, "]");
    qry_envelope_close(&w, nedges, (sl_str){NULL, 0});
    finish(resp, &w);
}
