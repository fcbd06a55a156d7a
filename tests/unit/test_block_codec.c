/*
 * Unit tests for the span block codec (storage/block_codec.c), which is
 * #included to reach its checksum and its per-thread column buffers.
 *
 * Covers: exact round trips of every field and value type, extreme values,
 * resource sharing, each parent code, arbitrary order, n == 0, corruption
 * (every truncation, random flips before and after the checksum), capped
 * arenas and capped output buffers, concurrent use from two threads, and a
 * realistic synthetic block whose size and speed are printed to stderr.
 *
 * `test_block_codec --write-seeds DIR` writes the fuzz seed corpus instead.
 */
#include "block_codec.c"

#include "sl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n) {
    return (uint32_t)(rng() % n);
}

static void rng_bytes(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)rng();
    }
}

/* Returns NULL when a and b hold the same value, else what differs. */
static const char *value_diff(const sl_value *a, const sl_value *b) {
    if (a->type != b->type) {
        return "value type";
    }
    switch (a->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return sl_str_eq(a->v.s, b->v.s) ? NULL : "string value";
    case SL_VAL_INT:
        return a->v.i == b->v.i ? NULL : "int value";
    case SL_VAL_BOOL:
        return a->v.b == b->v.b ? NULL : "bool value";
    case SL_VAL_DOUBLE:
        return a->v.i == b->v.i ? NULL : "double bits"; /* the bits: union punning */
    default:
        return NULL;
    }
}

static const char *attrs_diff(const sl_attr *a, uint32_t na, const sl_attr *b, uint32_t nb) {
    if (na != nb) {
        return "attribute count";
    }
    for (uint32_t i = 0; i < na; i++) {
        if (!sl_str_eq(a[i].key, b[i].key)) {
            return "attribute key";
        }
        const char *d = value_diff(&a[i].val, &b[i].val);
        if (d != NULL) {
            return d;
        }
    }
    return NULL;
}

static const char *resource_diff(const sl_resource *a, const sl_resource *b) {
    if (a == NULL || b == NULL) {
        return a == b ? NULL : "resource presence";
    }
    if (!sl_str_eq(a->service, b->service)) {
        return "resource service";
    }
    if (a->dropped_attrs != b->dropped_attrs) {
        return "resource dropped";
    }
    return attrs_diff(a->attrs, a->nattrs, b->attrs, b->nattrs);
}

static const char *span_diff(const sl_span *a, const sl_span *b) {
    if (memcmp(a->trace_id, b->trace_id, 16) != 0) {
        return "trace_id";
    }
    if (memcmp(a->span_id, b->span_id, 8) != 0) {
        return "span_id";
    }
    if (memcmp(a->parent_span_id, b->parent_span_id, 8) != 0) {
        return "parent_span_id";
    }
    if (a->flags != b->flags || a->kind != b->kind || a->status_code != b->status_code) {
        return "flags/kind/status";
    }
    if (a->start_unix_nano != b->start_unix_nano || a->end_unix_nano != b->end_unix_nano) {
        return "times";
    }
    if (!sl_str_eq(a->name, b->name) || !sl_str_eq(a->trace_state, b->trace_state) ||
        !sl_str_eq(a->status_message, b->status_message) ||
        !sl_str_eq(a->scope_name, b->scope_name) ||
        !sl_str_eq(a->scope_version, b->scope_version)) {
        return "span strings";
    }
    const char *d = resource_diff(a->resource, b->resource);
    if (d != NULL) {
        return d;
    }
    if ((d = attrs_diff(a->attrs, a->nattrs, b->attrs, b->nattrs)) != NULL) {
        return d;
    }
    if (a->dropped_attrs != b->dropped_attrs || a->dropped_events != b->dropped_events ||
        a->dropped_links != b->dropped_links) {
        return "dropped counts";
    }
    if (a->nevents != b->nevents || a->nlinks != b->nlinks) {
        return "event/link count";
    }
    for (uint32_t i = 0; i < a->nevents; i++) {
        const sl_event *x = &a->events[i], *y = &b->events[i];
        if (x->ts_unix_nano != y->ts_unix_nano || !sl_str_eq(x->name, y->name) ||
            x->dropped_attrs != y->dropped_attrs) {
            return "event";
        }
        if ((d = attrs_diff(x->attrs, x->nattrs, y->attrs, y->nattrs)) != NULL) {
            return d;
        }
    }
    for (uint32_t i = 0; i < a->nlinks; i++) {
        const sl_link *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) != 0 || memcmp(x->span_id, y->span_id, 8) != 0 ||
            !sl_str_eq(x->trace_state, y->trace_state) || x->flags != y->flags ||
            x->dropped_attrs != y->dropped_attrs) {
            return "link";
        }
        if ((d = attrs_diff(x->attrs, x->nattrs, y->attrs, y->nattrs)) != NULL) {
            return d;
        }
    }
    return NULL;
}

/* Encodes spans[0..n) at level, decodes into a, and compares. Returns the
 * decoded spans (in a) or NULL after reporting a failure. */
static sl_span *roundtrip(const sl_span *const *spans, size_t n, int level, sl_arena *a,
                          size_t *block_size) {
    sl_buf b;
    sl_buf_init(&b, 0);
    sl_span *out = NULL;
    size_t nout = 0;
    int rc = stg_block_encode(spans, n, level, &b);
    if (rc != 0) {
        SL_FAIL_AT("encode: %s", sl_strerror(rc));
        goto fail;
    }
    if (block_size != NULL) {
        *block_size = b.len;
    }
    rc = stg_block_decode(b.data, b.len, a, &out, &nout);
    if (rc != 0) {
        SL_FAIL_AT("decode: %s", sl_strerror(rc));
        goto fail;
    }
    if (nout != n) {
        SL_FAIL_AT("decoded %zu spans, encoded %zu", nout, n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *d = span_diff(spans[i], &out[i]);
        if (d != NULL) {
            SL_FAIL_AT("span %zu differs: %s", i, d);
            goto fail;
        }
    }
    sl_buf_free(&b);
    return n == 0 ? (sl_span *)a : out; /* non-NULL marks success */
fail:
    sl_buf_free(&b);
    return NULL;
}

static const sl_span **ptrs_of(sl_arena *a, sl_span *spans, size_t n) {
    const sl_span **p = sl_arena_alloc(a, (n + 1) * sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p[i] = &spans[i];
    }
    return p;
}

/* ---- a realistic synthetic workload --------------------------------------- */

typedef struct gen {
    sl_arena *a;
    sl_span *spans;
    size_t n, cap;
} gen;

static const char *const services[] = {"gateway",  "users",     "auth",          "orders",
                                       "payments", "inventory", "notifications", "analytics"};
#define NSERVICES 8
static const char *const methods[] = {"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"};
static const char *const routes[] = {"/api/v1/users/{id}",
                                     "/api/v1/users/{id}/orders",
                                     "/api/v1/orders",
                                     "/api/v1/orders/{id}",
                                     "/api/v1/payments",
                                     "/api/v1/inventory/{sku}",
                                     "/api/v1/login",
                                     "/api/v1/tenants/{id}",
                                     "/api/v1/notifications",
                                     "/api/v1/search",
                                     "/healthz",
                                     "/api/v1/cart/{id}"};
#define NROUTES 12
static const char *const agents[] = {"Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
                                     "Mozilla/5.0 (Macintosh) Safari/605.1.15", "okhttp/4.12.0",
                                     "curl/8.5.0", "sightline-loadgen/0.1"};
static const char *const statements[] = {
    "SELECT id, name, email FROM users WHERE id = ?",
    "SELECT * FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT 20",
    "INSERT INTO orders (user_id, total, currency) VALUES (?, ?, ?)",
    "UPDATE inventory SET reserved = reserved + ? WHERE sku = ?",
    "SELECT token, expires_at FROM sessions WHERE token = ?",
    "INSERT INTO events (kind, payload) VALUES (?, ?)"};
static const char *const functions[] = {"handle_request", "load_user",   "check_token",
                                        "reserve_stock",  "charge_card", "render_json",
                                        "publish_event",  "db_query",    "cache_get"};
static const char *const stacks[] = {
    "at db_query (db.c:212)\nat load_user (users.c:88)\nat handle_request (http.c:140)",
    "at charge_card (payments.c:51)\nat http_post (client.c:301)\nat retry (client.c:77)",
    "at reserve_stock (inventory.c:97)\nat handle_request (http.c:140)"};

static char gstr_buf[160];

static sl_str gstr_copy(gen *g, int len) {
    return (sl_str){sl_arena_strndup(g->a, gstr_buf, (size_t)len), (size_t)len};
}

/* Formats into the generator's arena: gstr(g, "u-%llu", v). */
#define gstr(g, ...) gstr_copy((g), snprintf(gstr_buf, sizeof(gstr_buf), __VA_ARGS__))

static sl_resource *make_resource(gen *g, int svc, int pod) {
    sl_resource *r = sl_arena_calloc(g->a, 1, sizeof(*r));
    r->service = sl_str_c(services[svc]);
    r->attrs = sl_arena_calloc(g->a, 10, sizeof(sl_attr));
    sl_attr *at = r->attrs;
    at[0] = (sl_attr){SL_STR_LIT("service.name"), {SL_VAL_STR, {.s = r->service}}};
    at[1] = (sl_attr){SL_STR_LIT("service.version"), {SL_VAL_STR, {.s = SL_STR_LIT("1.4.2")}}};
    at[2] = (sl_attr){SL_STR_LIT("service.namespace"), {SL_VAL_STR, {.s = SL_STR_LIT("shop")}}};
    at[3] = (sl_attr){SL_STR_LIT("host.name"),
                      {SL_VAL_STR, {.s = gstr(g, "node-%llu", (unsigned long long)(pod % 4))}}};
    char pn[64];
    int pl = snprintf(pn, sizeof(pn), "%s-7d9f8c-%05d", services[svc], pod * 7919 % 100000);
    at[4] = (sl_attr){SL_STR_LIT("k8s.pod.name"),
                      {SL_VAL_STR, {.s = {sl_arena_strndup(g->a, pn, (size_t)pl), (size_t)pl}}}};
    at[5] = (sl_attr){SL_STR_LIT("k8s.namespace.name"), {SL_VAL_STR, {.s = SL_STR_LIT("prod")}}};
    at[6] = (sl_attr){SL_STR_LIT("telemetry.sdk.name"),
                      {SL_VAL_STR, {.s = SL_STR_LIT("opentelemetry")}}};
    at[7] = (sl_attr){SL_STR_LIT("telemetry.sdk.language"), {SL_VAL_STR, {.s = SL_STR_LIT("c")}}};
    at[8] =
        (sl_attr){SL_STR_LIT("telemetry.sdk.version"), {SL_VAL_STR, {.s = SL_STR_LIT("0.1.0")}}};
    at[9] = (sl_attr){SL_STR_LIT("process.pid"), {SL_VAL_INT, {.i = 1000 + pod * 13}}};
    r->nattrs = 10;
    return r;
}

static sl_span *gen_add(gen *g) {
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 1024;
        sl_span *n = sl_arena_calloc(g->a, ncap, sizeof(sl_span));
        if (g->n > 0) {
            memcpy(n, g->spans, g->n * sizeof(sl_span));
        }
        g->spans = n;
        g->cap = ncap;
    }
    sl_span *s = &g->spans[g->n++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void set_attr(sl_attr *at, const char *key, sl_value v) {
    at->key = sl_str_c(key);
    at->val = v;
}

static sl_value vstr(sl_str s) {
    return (sl_value){SL_VAL_STR, {.s = s}};
}

static sl_value vint(int64_t i) {
    return (sl_value){SL_VAL_INT, {.i = i}};
}

/* One trace of 3..12 spans across services, in the shape of the fleet:
 * gateway SERVER, then CLIENT -> SERVER hops and DB / INTERNAL children. */
static void gen_trace(gen *g, sl_resource *const *res, uint64_t base_ns) {
    uint8_t tid[16];
    rng_bytes(tid, 16);
    int nspans = 3 + (int)rng_below(10);
    uint64_t t0 = base_ns + rng() % 3600000000000ULL;
    uint64_t user = rng_below(20000);
    sl_str user_id = gstr(g, "u-%llu", (unsigned long long)user);
    sl_str req_id = gstr(g, "%016llx", (unsigned long long)rng());
    sl_str tenant = gstr(g, "tenant-%llu", (unsigned long long)rng_below(12));
    int route = (int)rng_below(NROUTES);
    const char *method = methods[rng_below(8)];
    int http_status = rng_below(100) < 92 ? 200 : (rng_below(2) ? 404 : 500);
    /* Each trace's spans come from a different request, hence their own
     * resource copies (equal content, distinct pointers), as after a WAL cut. */
    sl_resource *copies[NSERVICES];
    for (int i = 0; i < NSERVICES; i++) {
        copies[i] = sl_arena_memdup(g->a, res[i * 3 + (int)rng_below(3)], sizeof(sl_resource));
    }
    size_t first = g->n;
    int svc = 0;
    for (int k = 0; k < nspans; k++) {
        sl_span *s = gen_add(g);
        memcpy(s->trace_id, tid, 16);
        rng_bytes(s->span_id, 8);
        int kind;
        if (k == 0) {
            kind = SL_KIND_SERVER;
        } else {
            /* Parent: a recent span of this trace. */
            size_t p = first + (size_t)(k - 1 - (int)rng_below((uint32_t)(k < 3 ? k : 3)));
            memcpy(s->parent_span_id, g->spans[p].span_id, 8);
            uint32_t r = rng_below(10);
            kind = r < 3   ? SL_KIND_CLIENT
                   : r < 6 ? SL_KIND_SERVER
                   : r < 8 ? SL_KIND_INTERNAL
                           : SL_KIND_CLIENT;
            if (kind == SL_KIND_SERVER) {
                svc = 1 + (int)rng_below(NSERVICES - 1);
            }
        }
        s->kind = (uint8_t)kind;
        s->flags = rng_below(4) ? 0x301 : 1;
        s->resource = copies[svc];
        s->start_unix_nano = t0 + (uint64_t)k * 150000 + rng() % 90000;
        s->end_unix_nano = s->start_unix_nano + 20000 + rng() % (k == 0 ? 40000000 : 4000000);
        s->scope_name = SL_STR_LIT("sightline.http");
        s->scope_version = SL_STR_LIT("0.1.0");
        sl_attr *at = sl_arena_calloc(g->a, 20, sizeof(sl_attr));
        uint32_t na = 0;
        if (kind == SL_KIND_SERVER) {
            char nm[96];
            int l = snprintf(nm, sizeof(nm), "%s %s", method, routes[route]);
            s->name = (sl_str){sl_arena_strndup(g->a, nm, (size_t)l), (size_t)l};
            set_attr(&at[na++], "http.request.method", vstr(sl_str_c(method)));
            set_attr(&at[na++], "http.route", vstr(sl_str_c(routes[route])));
            set_attr(&at[na++], "url.path",
                     vstr(gstr(g, "/api/v1/users/%llu/orders", (unsigned long long)user)));
            set_attr(&at[na++], "url.scheme", vstr(SL_STR_LIT("http")));
            set_attr(&at[na++], "server.address", vstr(sl_str_c(services[svc])));
            set_attr(&at[na++], "server.port", vint(8080));
            set_attr(&at[na++], "client.address",
                     vstr(gstr(g, "10.0.3.%llu", (unsigned long long)(1 + rng_below(60)))));
            set_attr(&at[na++], "user_agent.original", vstr(sl_str_c(agents[rng_below(5)])));
            set_attr(&at[na++], "http.response.status_code", vint(http_status));
            set_attr(&at[na++], "network.protocol.version", vstr(SL_STR_LIT("1.1")));
            set_attr(&at[na++], "http.request.body.size", vint((int64_t)rng_below(2000)));
            set_attr(&at[na++], "tenant.id", vstr(tenant));
            set_attr(&at[na++], "enduser.id", vstr(user_id));
            set_attr(&at[na++], "request.id", vstr(req_id));
            set_attr(&at[na++], "thread.id", vint((int64_t)rng_below(16)));
        } else if (kind == SL_KIND_CLIENT && rng_below(2)) {
            int to = 1 + (int)rng_below(NSERVICES - 1);
            char nm[96];
            int l = snprintf(nm, sizeof(nm), "%s %s", method, services[to]);
            s->name = (sl_str){sl_arena_strndup(g->a, nm, (size_t)l), (size_t)l};
            set_attr(&at[na++], "http.request.method", vstr(sl_str_c(method)));
            char url[128];
            l = snprintf(url, sizeof(url), "http://%s:8080/api/v1/users/%llu", services[to],
                         (unsigned long long)user);
            set_attr(&at[na++], "url.full",
                     vstr((sl_str){sl_arena_strndup(g->a, url, (size_t)l), (size_t)l}));
            set_attr(&at[na++], "server.address", vstr(sl_str_c(services[to])));
            set_attr(&at[na++], "server.port", vint(8080));
            set_attr(&at[na++], "network.peer.address",
                     vstr(gstr(g, "10.0.7.%llu", (unsigned long long)(1 + rng_below(30)))));
            set_attr(&at[na++], "http.response.status_code", vint(http_status));
            set_attr(&at[na++], "http.resend_count", vint(rng_below(20) == 0));
            set_attr(&at[na++], "request.id", vstr(req_id));
            set_attr(&at[na++], "tenant.id", vstr(tenant));
            set_attr(&at[na++], "thread.id", vint((int64_t)rng_below(16)));
            set_attr(&at[na++], "peer.service", vstr(sl_str_c(services[to])));
        } else if (kind == SL_KIND_CLIENT) {
            int st = (int)rng_below(6);
            s->name = sl_str_c(st == 2   ? "INSERT orders"
                               : st == 3 ? "UPDATE inventory"
                                         : "SELECT users");
            s->scope_name = SL_STR_LIT("sightline.db");
            set_attr(&at[na++], "db.system", vstr(SL_STR_LIT("sqlite")));
            set_attr(&at[na++], "db.name", vstr(sl_str_c(services[svc])));
            set_attr(&at[na++], "db.operation", vstr(sl_str_c(st == 2 ? "INSERT" : "SELECT")));
            set_attr(&at[na++], "db.statement", vstr(sl_str_c(statements[st])));
            set_attr(&at[na++], "db.sql.table", vstr(sl_str_c(st < 2 ? "users" : "orders")));
            set_attr(&at[na++], "db.rows_affected", vint((int64_t)rng_below(25)));
            set_attr(&at[na++], "code.function", vstr(SL_STR_LIT("db_query")));
            set_attr(&at[na++], "code.namespace", vstr(sl_str_c(services[svc])));
            set_attr(&at[na++], "thread.id", vint((int64_t)rng_below(16)));
            set_attr(&at[na++], "request.id", vstr(req_id));
        } else {
            int fn = (int)rng_below(9);
            s->name = sl_str_c(functions[fn]);
            set_attr(&at[na++], "code.function", vstr(sl_str_c(functions[fn])));
            set_attr(&at[na++], "code.filepath", vstr(sl_str_c(services[svc])));
            set_attr(&at[na++], "code.lineno", vint(40 + fn * 17));
            set_attr(&at[na++], "cache.hit", (sl_value){SL_VAL_BOOL, {.b = rng_below(3) != 0}});
            set_attr(&at[na++], "cache.key", vstr(gstr(g, "user:%llu", (unsigned long long)user)));
            set_attr(&at[na++], "thread.id", vint((int64_t)rng_below(16)));
            set_attr(&at[na++], "request.id", vstr(req_id));
            set_attr(&at[na++], "tenant.id", vstr(tenant));
            set_attr(&at[na++], "cache.ttl_s", (sl_value){SL_VAL_DOUBLE, {.d = 30.0}});
            set_attr(&at[na++], "component", vstr(SL_STR_LIT("cache")));
        }
        s->attrs = at;
        s->nattrs = na;
        if (http_status == 500 && kind != SL_KIND_INTERNAL) {
            s->status_code = SL_STATUS_ERROR;
            s->status_message = SL_STR_LIT("Internal Server Error");
        } else if (kind == SL_KIND_SERVER) {
            s->status_code = SL_STATUS_UNSET;
        }
        if (rng_below(20) == 0) {
            sl_event *ev = sl_arena_calloc(g->a, 1, sizeof(*ev));
            ev->ts_unix_nano = s->start_unix_nano + rng() % 1000000;
            ev->name = SL_STR_LIT("exception");
            ev->attrs = sl_arena_calloc(g->a, 3, sizeof(sl_attr));
            set_attr(&ev->attrs[0], "exception.type", vstr(SL_STR_LIT("TimeoutError")));
            set_attr(&ev->attrs[1], "exception.message",
                     vstr(gstr(g, "upstream timed out after %llu ms",
                               (unsigned long long)(100 + rng_below(900)))));
            set_attr(&ev->attrs[2], "exception.stacktrace", vstr(sl_str_c(stacks[rng_below(3)])));
            ev->nattrs = 3;
            s->events = ev;
            s->nevents = 1;
        }
        if (rng_below(100) == 0) {
            sl_link *lk = sl_arena_calloc(g->a, 1, sizeof(*lk));
            rng_bytes(lk->trace_id, 16);
            rng_bytes(lk->span_id, 8);
            lk->flags = 1;
            s->links = lk;
            s->nlinks = 1;
        }
    }
}

static int span_cmp(const void *pa, const void *pb) {
    const sl_span *a = *(const sl_span *const *)pa, *b = *(const sl_span *const *)pb;
    int c = memcmp(a->trace_id, b->trace_id, 16);
    if (c != 0) {
        return c;
    }
    return a->start_unix_nano < b->start_unix_nano ? -1 : a->start_unix_nano > b->start_unix_nano;
}

/* Fills g with at least nspans spans of whole traces and returns pointers
 * to them sorted like the cutter sorts (trace id, then start time). */
static const sl_span **gen_block(gen *g, size_t nspans, int sorted) {
    static sl_resource *res[NSERVICES * 3];
    for (int i = 0; i < NSERVICES * 3; i++) {
        res[i] = make_resource(g, i / 3, i);
    }
    uint64_t base = 1700000000000000000ULL;
    while (g->n < nspans) {
        gen_trace(g, res, base);
    }
    const sl_span **p = ptrs_of(g->a, g->spans, g->n);
    if (sorted) {
        qsort(p, g->n, sizeof(*p), span_cmp);
    }
    return p;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_xxh64_vectors(void) {
    ASSERT_U64_EQ(blk_xxh64((const uint8_t *)"", 0), 0xEF46DB3751D8E999ULL);
    ASSERT_U64_EQ(blk_xxh64((const uint8_t *)"a", 1), 0xD24EC4F1A98C6E5BULL);
    ASSERT_U64_EQ(blk_xxh64((const uint8_t *)"abc", 3), 0x44BC2CF5AD770999ULL);
    const char *s = "Nobody inspects the spammish repetition";
    ASSERT_U64_EQ(blk_xxh64((const uint8_t *)s, strlen(s)), 0xFBCEA83C8A378BF1ULL);
}

static void test_empty_block(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_block_encode(NULL, 0, 1, &b), 0);
    ASSERT_TRUE(b.len > BLK_FIXED_HDR && b.len < 64);
    sl_span *out = (sl_span *)&a;
    size_t n = 99;
    ASSERT_EQ(stg_block_decode(b.data, b.len, &a, &out, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_TRUE(out == NULL);
    /* Appends: a second block after the first leaves the first intact. */
    size_t first = b.len;
    ASSERT_EQ(stg_block_encode(NULL, 0, 9, &b), 0);
    ASSERT_EQ(b.len, 2 * first);
    ASSERT_EQ(memcmp(b.data, b.data + first, first), 0);
    sl_buf_free(&b);
    sl_arena_free(&a);
}

static void test_all_fields_roundtrip(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    static const char bytes_with_nul[] = {'a', 0, 'b', 0, 0, (char)0xff};
    uint64_t nan_bits = 0x7ff8000000000123ULL;
    double nan_payload;
    memcpy(&nan_payload, &nan_bits, 8);
    sl_attr attrs[] = {
        {SL_STR_LIT("s"), {SL_VAL_STR, {.s = SL_STR_LIT("hello")}}},
        {SL_STR_LIT("s_empty"), {SL_VAL_STR, {.s = {NULL, 0}}}},
        {SL_STR_LIT("b_true"), {SL_VAL_BOOL, {.b = 1}}},
        {SL_STR_LIT("b_false"), {SL_VAL_BOOL, {.b = 0}}},
        {SL_STR_LIT("b_odd"), {SL_VAL_BOOL, {.b = INT_MIN}}},
        {SL_STR_LIT("i_min"), {SL_VAL_INT, {.i = INT64_MIN}}},
        {SL_STR_LIT("i_max"), {SL_VAL_INT, {.i = INT64_MAX}}},
        {SL_STR_LIT("i_neg"), {SL_VAL_INT, {.i = -1}}},
        {SL_STR_LIT("i_zero"), {SL_VAL_INT, {.i = 0}}},
        {SL_STR_LIT("d"), {SL_VAL_DOUBLE, {.d = 3.141592653589793}}},
        {SL_STR_LIT("d_negzero"), {SL_VAL_DOUBLE, {.d = -0.0}}},
        {SL_STR_LIT("d_inf"), {SL_VAL_DOUBLE, {.d = -INFINITY}}},
        {SL_STR_LIT("d_nan"), {SL_VAL_DOUBLE, {.d = nan_payload}}},
        {SL_STR_LIT("d_tiny"), {SL_VAL_DOUBLE, {.d = 4.9406564584124654e-324}}},
        {SL_STR_LIT("arr"), {SL_VAL_ARRAY, {.s = SL_STR_LIT("[1,\"two\",3.5]")}}},
        {SL_STR_LIT("kv"), {SL_VAL_KVLIST, {.s = SL_STR_LIT("{\"a\":1,\"b\":[true]}")}}},
        {SL_STR_LIT("bytes"), {SL_VAL_BYTES, {.s = {bytes_with_nul, sizeof(bytes_with_nul)}}}},
        {SL_STR_LIT("empty"), {SL_VAL_EMPTY, {.i = 0}}},
        /* The same text as a different type, and a key used as a value. */
        {SL_STR_LIT("hello"), {SL_VAL_BYTES, {.s = SL_STR_LIT("hello")}}},
        {SL_STR_LIT(""), {SL_VAL_STR, {.s = SL_STR_LIT("s")}}},
        /* Duplicate key with another type: kept as is, in order. */
        {SL_STR_LIT("s"), {SL_VAL_INT, {.i = 7}}},
    };
    uint32_t nattrs = sizeof(attrs) / sizeof(attrs[0]);
    sl_attr rattrs[] = {
        {SL_STR_LIT("service.name"), {SL_VAL_STR, {.s = SL_STR_LIT("checkout")}}},
        {SL_STR_LIT("host.cpus"), {SL_VAL_INT, {.i = 16}}},
    };
    sl_resource res = {SL_STR_LIT("checkout"), rattrs, 2, 3};
    sl_attr eattrs[] = {{SL_STR_LIT("exception.type"), {SL_VAL_STR, {.s = SL_STR_LIT("E")}}},
                        {SL_STR_LIT("s"), {SL_VAL_DOUBLE, {.d = 1.5}}}};
    sl_event events[] = {
        {1000, SL_STR_LIT("exception"), eattrs, 2, 1},
        {5, SL_STR_LIT("before start"), NULL, 0, 0},
        {UINT64_MAX, SL_STR_LIT(""), eattrs, 1, UINT32_MAX},
    };
    sl_attr lattrs[] = {{SL_STR_LIT("link.kind"), {SL_VAL_STR, {.s = SL_STR_LIT("follows")}}}};
    sl_link links[2];
    memset(links, 0, sizeof(links));
    memset(links[0].trace_id, 0xab, 16);
    memset(links[0].span_id, 0xcd, 8);
    links[0].trace_state = SL_STR_LIT("vendor=x");
    links[0].attrs = lattrs;
    links[0].nattrs = 1;
    links[0].dropped_attrs = 2;
    links[0].flags = 0x301;
    links[1].flags = UINT32_MAX;

    sl_span s[3];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 3; i++) {
        memset(s[i].trace_id, 0x11, 16);
        memset(s[i].span_id, 0x20 + i, 8);
    }
    memcpy(s[1].parent_span_id, s[0].span_id, 8);
    memset(s[2].parent_span_id, 0x77, 8);
    s[0].flags = UINT32_MAX;
    s[0].kind = SL_KIND_SERVER;
    s[0].status_code = SL_STATUS_ERROR;
    s[0].start_unix_nano = 100;
    s[0].end_unix_nano = 2000;
    s[0].name = SL_STR_LIT("GET /x");
    s[0].trace_state = SL_STR_LIT("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    s[0].status_message = SL_STR_LIT("boom");
    s[0].scope_name = SL_STR_LIT("scope");
    s[0].scope_version = SL_STR_LIT("1.0");
    s[0].resource = &res;
    s[0].attrs = attrs;
    s[0].nattrs = nattrs;
    s[0].dropped_attrs = 4;
    s[0].events = events;
    s[0].nevents = 3;
    s[0].dropped_events = 5;
    s[0].links = links;
    s[0].nlinks = 2;
    s[0].dropped_links = UINT32_MAX;
    /* Out-of-range enums are stored as given. */
    s[1].kind = 200;
    s[1].status_code = 255;
    s[1].start_unix_nano = 50;
    s[1].end_unix_nano = 10;
    s[1].name = SL_STR_LIT("GET /x"); /* the same text, another pointer */
    s[1].resource = &res;
    s[1].attrs = attrs + 2;
    s[1].nattrs = 3;
    s[2].start_unix_nano = UINT64_MAX;
    s[2].end_unix_nano = 0;
    s[2].name = SL_STR_LIT("");

    const sl_span *p[3] = {&s[0], &s[1], &s[2]};
    int levels[] = {1, 3, 9, -7, 19};
    for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
        sl_span *out = roundtrip(p, 3, levels[l], &a, NULL);
        ASSERT_TRUE(out != NULL);
        ASSERT_TRUE(out[0].resource == out[1].resource);
        ASSERT_TRUE(out[2].resource == NULL);
        /* Decoded strings are NUL-terminated copies in the arena. */
        ASSERT_STR_EQ(out[0].name.ptr, "GET /x");
        ASSERT_TRUE(out[0].name.ptr == out[1].name.ptr);
        ASSERT_TRUE(out[0].name.ptr != s[0].name.ptr);
        ASSERT_EQ(out[0].attrs[16].val.v.s.ptr[6], '\0');
        ASSERT_TRUE(out[2].name.ptr != NULL && out[2].name.len == 0);
        ASSERT_TRUE(out[2].attrs == NULL && out[2].events == NULL && out[2].links == NULL);
    }
    sl_arena_free(&a);
}

static void test_shared_resources(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_attr ra[] = {{SL_STR_LIT("service.name"), {SL_VAL_STR, {.s = SL_STR_LIT("api")}}},
                    {SL_STR_LIT("pod"), {SL_VAL_STR, {.s = SL_STR_LIT("api-1")}}}};
    sl_attr rb[] = {{SL_STR_LIT("service.name"), {SL_VAL_STR, {.s = SL_STR_LIT("api")}}},
                    {SL_STR_LIT("pod"), {SL_VAL_STR, {.s = SL_STR_LIT("api-2")}}}};
    sl_resource r1 = {SL_STR_LIT("api"), ra, 2, 0};
    sl_resource r1copy = r1; /* another request's copy: same content */
    sl_resource r2 = {SL_STR_LIT("api"), rb, 2, 0};
    sl_resource r3 = {SL_STR_LIT("api"), ra, 2, 1}; /* differs only in dropped */
    const sl_resource *order[] = {&r1, &r2, &r1copy, NULL, &r3, &r1, &r2, &r1copy};
    sl_span s[8];
    const sl_span *p[8];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 8; i++) {
        s[i].span_id[0] = (uint8_t)(i + 1);
        s[i].resource = order[i];
        p[i] = &s[i];
    }
    sl_span *out = roundtrip(p, 8, 3, &a, NULL);
    ASSERT_TRUE(out != NULL);
    ASSERT_TRUE(out[0].resource == out[2].resource);
    ASSERT_TRUE(out[0].resource == out[5].resource);
    ASSERT_TRUE(out[0].resource == out[7].resource);
    ASSERT_TRUE(out[1].resource == out[6].resource);
    ASSERT_TRUE(out[0].resource != out[1].resource);
    ASSERT_TRUE(out[4].resource != out[0].resource);
    ASSERT_TRUE(out[3].resource == NULL);
    ASSERT_EQ(out[4].resource->dropped_attrs, 1);
    /* Three distinct resources were written. */
    ASSERT_EQ(tls_cur->e.nres, 3);
    sl_arena_free(&a);
}

static void test_parent_codes(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    enum { N = 80 };
    sl_span s[N];
    const sl_span *p[N];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < N; i++) {
        memset(s[i].trace_id, i < 75 ? 1 : 2, 16);
        rng_bytes(s[i].span_id, 8);
        p[i] = &s[i];
    }
    /* 0 root; 1 the previous span; 2 three back; 3 a remote parent; 4 a
     * parent that comes later; 70 the root, 70 back (beyond the window);
     * 75 starts a new trace whose parent is in the previous run; 76 its
     * sibling of the other trace 1 back. */
    memcpy(s[1].parent_span_id, s[0].span_id, 8);
    memcpy(s[2].parent_span_id, s[0].span_id, 8);
    memcpy(s[5].parent_span_id, s[2].span_id, 8);
    memset(s[3].parent_span_id, 0x5a, 8);
    memcpy(s[4].parent_span_id, s[6].span_id, 8);
    memcpy(s[70].parent_span_id, s[0].span_id, 8);
    memcpy(s[75].parent_span_id, s[74].span_id, 8);
    memcpy(s[76].parent_span_id, s[75].span_id, 8);
    ASSERT_TRUE(roundtrip(p, N, 1, &a, NULL) != NULL);
    const sl_buf *pc = &tls_cur->e.col[COL_PARENT].b;
    ASSERT_EQ(pc->len, N);
    ASSERT_EQ(pc->data[0], PARENT_NONE);
    ASSERT_EQ(pc->data[1], 2); /* back 1 */
    ASSERT_EQ(pc->data[2], 3); /* back 2 */
    ASSERT_EQ(pc->data[5], 4); /* back 3 */
    ASSERT_EQ(pc->data[3], PARENT_RAW);
    ASSERT_EQ(pc->data[4], PARENT_RAW);
    ASSERT_EQ(pc->data[70], PARENT_RAW);
    ASSERT_EQ(pc->data[75], PARENT_RAW);
    ASSERT_EQ(pc->data[76], 2);
    ASSERT_EQ(tls_cur->e.col[COL_PARENT_RAW].b.len, 4 * 8);
    ASSERT_EQ(tls_cur->e.col[COL_TRACE_IDS].b.len, 2 * 16);
    sl_arena_free(&a);
}

static void test_extreme_times(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    static const uint64_t t[][2] = {{0, 0},
                                    {0, UINT64_MAX},
                                    {UINT64_MAX, 0},
                                    {UINT64_MAX, UINT64_MAX},
                                    {1, 0},
                                    {INT64_MAX, INT64_MIN},
                                    {(uint64_t)INT64_MIN, 5},
                                    {12345, 12344},
                                    {0, 1},
                                    {UINT64_MAX - 1, UINT64_MAX}};
    enum { N = sizeof(t) / sizeof(t[0]) };
    sl_span s[N];
    const sl_span *p[N];
    sl_event ev[N];
    memset(s, 0, sizeof(s));
    for (size_t i = 0; i < N; i++) {
        s[i].start_unix_nano = t[i][0];
        s[i].end_unix_nano = t[i][1];
        ev[i] = (sl_event){t[N - 1 - i][1], SL_STR_LIT("e"), NULL, 0, 0};
        s[i].events = &ev[i];
        s[i].nevents = 1;
        p[i] = &s[i];
    }
    ASSERT_TRUE(roundtrip(p, N, 3, &a, NULL) != NULL);
    sl_arena_free(&a);
}

static void test_time_unit(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_span s[3];
    const sl_span *p[3] = {&s[0], &s[1], &s[2]};
    sl_event ev = {0, SL_STR_LIT("e"), NULL, 0, 0};
    memset(s, 0, sizeof(s));
    /* Whole seconds up to the largest multiple of 10^9 below 2^64. */
    s[0].start_unix_nano = 18446744073000000000ULL;
    s[0].end_unix_nano = 0;
    s[1].start_unix_nano = 1000000000;
    s[1].end_unix_nano = 18446744073000000000ULL;
    s[2].start_unix_nano = 0;
    s[2].end_unix_nano = 5000000000;
    s[2].events = &ev;
    s[2].nevents = 1;
    ev.ts_unix_nano = 7000000000;
    ASSERT_TRUE(roundtrip(p, 3, 1, &a, NULL) != NULL);
    ASSERT_EQ(tls_cur->e.unit_exp, 9);
    /* One event in microseconds lowers the unit for the whole block. */
    ev.ts_unix_nano = 7000001000;
    ASSERT_TRUE(roundtrip(p, 3, 1, &a, NULL) != NULL);
    ASSERT_EQ(tls_cur->e.unit_exp, 3);
    s[1].end_unix_nano = UINT64_MAX;
    ASSERT_TRUE(roundtrip(p, 3, 1, &a, NULL) != NULL);
    ASSERT_EQ(tls_cur->e.unit_exp, 0);
    sl_arena_free(&a);
}

static void test_strings(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    size_t big_len = 300000;
    char *big = sl_arena_alloc(&a, big_len);
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (char)rng();
    }
    sl_attr at[] = {
        {SL_STR_LIT("big"), {SL_VAL_BYTES, {.s = {big, big_len}}}},
        {SL_STR_LIT("big_again"), {SL_VAL_STR, {.s = {big, big_len}}}},
        {SL_STR_LIT("prefix"), {SL_VAL_STR, {.s = {big, 100}}}},
        {SL_STR_LIT("nul"), {SL_VAL_STR, {.s = {"\0", 1}}}},
        {SL_STR_LIT("nul2"), {SL_VAL_STR, {.s = {"\0\0", 2}}}},
    };
    sl_span s[2];
    memset(s, 0, sizeof(s));
    s[0].attrs = at;
    s[0].nattrs = 5;
    s[0].name = (sl_str){"\0", 1};
    s[1].attrs = at + 3;
    s[1].nattrs = 2;
    s[1].name = SL_STR_LIT("");
    const sl_span *p[2] = {&s[0], &s[1]};
    size_t size = 0;
    sl_span *out = roundtrip(p, 2, 3, &a, &size);
    ASSERT_TRUE(out != NULL);
    /* The 300 KB random string is stored once. */
    ASSERT_TRUE(size > big_len && size < big_len + 2000);
    ASSERT_TRUE(out[0].attrs[0].val.v.s.ptr == out[0].attrs[1].val.v.s.ptr);
    sl_arena_free(&a);
}

static void test_unsorted_and_sizes(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 700, 0);
    /* Shuffle: arbitrary order must round-trip exactly too. */
    for (size_t i = g.n - 1; i > 0; i--) {
        size_t j = rng_below((uint32_t)(i + 1));
        const sl_span *tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    size_t sizes[] = {0, 1, 2, 3, 17, 100, g.n};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        sl_arena d;
        sl_arena_init(&d, 0);
        ASSERT_TRUE(roundtrip(p, sizes[k], 1, &d, NULL) != NULL);
        sl_arena_free(&d);
    }
    sl_arena_free(&a);
}

/* Builds a stored-mode block around a raw payload, with a valid checksum,
 * so that corruption reaches the column parser. */
static void wrap_raw(sl_buf *out, const uint8_t *raw, size_t raw_size, uint64_t nspans) {
    uint8_t hdr[40];
    memcpy(hdr, BLK_MAGIC, 4);
    hdr[4] = BLK_VERSION;
    hdr[5] = 0;
    uint32_t sum = (uint32_t)blk_xxh64(raw, raw_size);
    for (int k = 0; k < 4; k++) {
        hdr[6 + k] = (uint8_t)(sum >> (8 * k));
    }
    size_t h = BLK_FIXED_HDR;
    uint64_t v[3] = {nspans, raw_size, raw_size};
    for (int k = 0; k < 3; k++) {
        uint64_t x = v[k];
        while (x >= 0x80) {
            hdr[h++] = (uint8_t)(x | 0x80);
            x >>= 7;
        }
        hdr[h++] = (uint8_t)x;
    }
    out->len = 0;
    sl_buf_append(out, hdr, h);
    sl_buf_append(out, raw, raw_size);
}

/* Decodes a possibly corrupt block: it must succeed or fail cleanly, and a
 * success must survive a round trip. */
static int decode_any(const uint8_t *p, size_t size, size_t arena_max) {
    sl_arena d;
    sl_arena_init(&d, arena_max);
    sl_span *out = NULL;
    size_t n = 0;
    int rc = stg_block_decode(p, size, &d, &out, &n);
    if (rc == 0) {
        const sl_span **ptrs = malloc((n + 1) * sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
            ptrs[i] = &out[i];
        }
        sl_arena d2;
        sl_arena_init(&d2, 0);
        if (roundtrip(ptrs, n, 1, &d2, NULL) == NULL) {
            rc = -1;
        }
        sl_arena_free(&d2);
        free(ptrs);
    }
    sl_arena_free(&d);
    return rc;
}

static void test_truncation_and_flips(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 60, 1);
    sl_buf b, raw, m;
    sl_buf_init(&b, 0);
    sl_buf_init(&raw, 0);
    sl_buf_init(&m, 0);
    int levels[] = {3, 1};
    for (int li = 0; li < 2; li++) {
        b.len = 0;
        ASSERT_EQ(stg_block_encode(p, g.n, levels[li], &b), 0);
        ASSERT_TRUE((b.data[5] & BLK_FLAG_ZSTD) != 0);
        ASSERT_EQ(decode_any(b.data, b.len, 0), 0);
        for (size_t cut = 0; cut < b.len; cut++) {
            uint8_t *copy = malloc(cut + 1); /* exact size so ASan sees over-reads */
            memcpy(copy, b.data, cut);
            int rc = decode_any(copy, cut, 0);
            free(copy);
            if (rc != SL_ECORRUPT) {
                SL_FAIL_AT("truncated to %zu of %zu: %d", cut, b.len, rc);
                return;
            }
        }
        sl_buf_append(&b, "", 1);
        ASSERT_EQ(decode_any(b.data, b.len, 0), SL_ECORRUPT);
        b.len--;
        /* Flips in the block as stored: the checksum (or zstd) catches them. */
        for (int iter = 0; iter < 3000; iter++) {
            m.len = 0;
            sl_buf_append(&m, b.data, b.len);
            int flips = 1 + (int)rng_below(4);
            for (int f = 0; f < flips; f++) {
                m.data[rng_below((uint32_t)m.len)] ^= (uint8_t)(1 + rng_below(255));
            }
            int rc = decode_any(m.data, m.len, 0);
            if (rc != 0 && rc != SL_ECORRUPT) {
                SL_FAIL_AT("flip: rc %d", rc);
                return;
            }
        }
    }
    /* Flips inside the raw payload under a valid checksum reach the parser. */
    raw.len = 0;
    sl_buf_append(&raw, tls_cur->e.payload.data, tls_cur->e.payload.len);
    wrap_raw(&m, raw.data, raw.len, g.n);
    ASSERT_EQ(decode_any(m.data, m.len, 0), 0);
    for (size_t cut = 0; cut < raw.len; cut++) {
        wrap_raw(&m, raw.data, cut, g.n);
        ASSERT_EQ(decode_any(m.data, m.len, 0), SL_ECORRUPT);
    }
    int ok = 0, corrupt = 0;
    for (int iter = 0; iter < 20000; iter++) {
        sl_buf_free(&b);
        sl_buf_init(&b, 0);
        sl_buf_append(&b, raw.data, raw.len);
        int flips = 1 + (int)rng_below(3);
        for (int f = 0; f < flips; f++) {
            size_t at = rng_below((uint32_t)b.len);
            b.data[at] =
                rng_below(2) ? (uint8_t)rng() : (uint8_t)(b.data[at] ^ (1u << rng_below(8)));
        }
        wrap_raw(&m, b.data, b.len, g.n);
        int rc = decode_any(m.data, m.len, 1 << 20);
        if (rc == 0) {
            ok++;
        } else if (rc == SL_ECORRUPT || rc == SL_ENOMEM) {
            corrupt++;
        } else {
            SL_FAIL_AT("raw flip: rc %d", rc);
            return;
        }
    }
    fprintf(stderr, "  raw-payload flips: %d decoded (and round-tripped), %d rejected\n", ok,
            corrupt);
    /* Most mutations hit bytes where any value is valid (ids, times); the
     * rest must be caught, and were. */
    ASSERT_TRUE(ok > 0 && corrupt > 2000);
    sl_buf_free(&b);
    sl_buf_free(&raw);
    sl_buf_free(&m);
    sl_arena_free(&a);
}

static void test_hostile_counts(void) {
    /* Claims of huge sizes in tiny inputs are refused before allocation. */
    sl_buf m;
    sl_buf_init(&m, 0);
    uint8_t raw[COL_COUNT + 16];
    size_t len = 0;
    /* COUNTS claims 2^63 - 1 strings; every other column is empty. */
    raw[len++] = 13;
    for (int k = 0; k < 9; k++) {
        raw[len++] = 0xff;
    }
    raw[len++] = 0x00;
    for (int k = 0; k < 3; k++) {
        raw[len++] = 0;
    }
    for (int k = 1; k < COL_COUNT; k++) {
        raw[len++] = 0;
    }
    wrap_raw(&m, raw, len, 0);
    sl_arena d;
    sl_arena_init(&d, 0);
    sl_span *out;
    size_t n;
    ASSERT_EQ(stg_block_decode(m.data, m.len, &d, &out, &n), SL_ECORRUPT);
    ASSERT_TRUE(d.reserved == 0);
    /* A header claiming 2^40 spans or a 4 GB payload. */
    static const uint8_t h1[] = {'S', 'L',  'B',  '1',  1,    0,    0,    0,    0,
                                 0,   0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x10, 0x00};
    ASSERT_EQ(stg_block_decode(h1, sizeof(h1), &d, &out, &n), SL_ECORRUPT);
    static const uint8_t h2[] = {'S',  'L',  'B',  '1',  1,    1,    0,    0,    0,    0,   0x00,
                                 0x80, 0x80, 0x80, 0x80, 0x10, 0x04, 0x28, 0xb5, 0x2f, 0xfd};
    ASSERT_EQ(stg_block_decode(h2, sizeof(h2), &d, &out, &n), SL_ECORRUPT);
    static const uint8_t h3[] = {'S', 'L', 'B', '1', 2, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(stg_block_decode(h3, sizeof(h3), &d, &out, &n), SL_ECORRUPT);
    ASSERT_EQ(stg_block_decode(h3, 0, &d, &out, &n), SL_ECORRUPT);
    ASSERT_TRUE(d.reserved == 0);
    sl_arena_free(&d);
    sl_buf_free(&m);
}

static void test_capped_arena_and_buffer(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 300, 1);
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_block_encode(p, g.n, 3, &b), 0);
    int ok = 0;
    for (size_t cap = 1; cap < ((size_t)4 << 20); cap = cap * 3 / 2 + 1) {
        sl_arena d;
        sl_arena_init(&d, cap);
        sl_span *out = NULL;
        size_t n = 0;
        int rc = stg_block_decode(b.data, b.len, &d, &out, &n);
        if (rc == 0) {
            ok++;
            ASSERT_EQ(n, g.n);
        } else if (rc != SL_ENOMEM) {
            SL_FAIL_AT("arena cap %zu: %s", cap, sl_strerror(rc));
            return;
        }
        ASSERT_TRUE(d.reserved <= cap);
        sl_arena_free(&d);
    }
    ASSERT_TRUE(ok > 0);
    /* An output buffer with a limit: SL_ETOOBIG and nothing appended. */
    for (size_t max = 1; max < b.len + 64; max += 7) {
        sl_buf small;
        sl_buf_init(&small, max);
        sl_buf_append(&small, "xy", max < 2 ? max : 2);
        size_t before = small.len;
        int rc = stg_block_encode(p, g.n, 3, &small);
        if (rc != 0) {
            ASSERT_EQ(rc, SL_ETOOBIG);
            ASSERT_EQ(small.len, before);
        } else {
            ASSERT_TRUE(small.len == before + b.len);
        }
        sl_buf_free(&small);
    }
    sl_buf_free(&b);
    sl_arena_free(&a);
}

static void test_invalid_input(void) {
    sl_buf b;
    sl_buf_init(&b, 0);
    sl_buf_append(&b, "keep", 4);
    sl_span s;
    memset(&s, 0, sizeof(s));
    const sl_span *p[1] = {&s};
    ASSERT_EQ(stg_block_encode(p, 1, ZSTD_maxCLevel() + 1, &b), SL_EINVAL);
    ASSERT_EQ(stg_block_encode(p, 1, ZSTD_minCLevel() - 1, &b), SL_EINVAL);
    sl_attr bad = {SL_STR_LIT("k"), {9, {.i = 0}}};
    s.attrs = &bad;
    s.nattrs = 1;
    ASSERT_EQ(stg_block_encode(p, 1, 1, &b), SL_EINVAL);
    s.attrs = NULL;
    ASSERT_EQ(stg_block_encode(p, 1, 1, &b), SL_EINVAL);
    s.nattrs = 0;
    s.name = (sl_str){NULL, 3};
    ASSERT_EQ(stg_block_encode(p, 1, 1, &b), SL_EINVAL);
    ASSERT_EQ(b.len, 4);
    s.name = SL_STR_LIT("fine");
    ASSERT_EQ(stg_block_encode(p, 1, 1, &b), 0);
    ASSERT_TRUE(b.len > 4);
    sl_buf_free(&b);
}

typedef struct thread_arg {
    const sl_span **p;
    size_t n;
    int failures;
} thread_arg;

static void *thread_main(void *ud) {
    thread_arg *t = ud;
    sl_buf b;
    sl_buf_init(&b, 0);
    for (int i = 0; i < 30; i++) {
        size_t n = t->n - (size_t)i * 3;
        b.len = 0;
        sl_arena d;
        sl_arena_init(&d, 0);
        sl_span *out;
        size_t nout;
        if (stg_block_encode(t->p, n, 1 + i % 4, &b) != 0 ||
            stg_block_decode(b.data, b.len, &d, &out, &nout) != 0 || nout != n) {
            t->failures++;
        } else {
            for (size_t k = 0; k < n; k++) {
                if (span_diff(t->p[k], &out[k]) != NULL) {
                    t->failures++;
                    break;
                }
            }
        }
        sl_arena_free(&d);
    }
    sl_buf_free(&b);
    return NULL;
}

static void test_threads(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 400, 1);
    pthread_t th[3];
    thread_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (thread_arg){p + (size_t)i * 10, g.n - (size_t)i * 10, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(args[i].failures, 0);
    }
    sl_arena_free(&a);
}

static double secs_since(uint64_t t0) {
    return (double)(sl_mono_nano() - t0) / 1e9;
}

static void test_realistic_block(void) {
    sl_arena a;
    sl_arena_init(&a, 0);
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 5000, 1);
    size_t n = g.n, attrs = 0;
    for (size_t i = 0; i < n; i++) {
        attrs += p[i]->nattrs;
    }
    fprintf(stderr, "  synthetic block: %zu spans, %.1f attributes/span\n", n,
            (double)attrs / (double)n);
    sl_buf b;
    sl_buf_init(&b, 0);
    int levels[] = {1, 3, 6, 9};
    double per_span6 = 0;
    /* Timings take the best of several runs: CI machines are shared. */
    for (int li = 0; li < 4; li++) {
        sl_arena d;
        sl_arena_init(&d, 0);
        size_t size = 0;
        ASSERT_TRUE(roundtrip(p, n, levels[li], &d, &size) != NULL);
        sl_arena_free(&d);
        double per_span = (double)size / (double)n;
        if (levels[li] == 6) {
            per_span6 = per_span;
        }
        double enc_s = 1e9, dec_s = 1e9;
        for (int r = 0; r < 5; r++) {
            b.len = 0;
            uint64_t t0 = sl_mono_nano();
            ASSERT_EQ(stg_block_encode(p, n, levels[li], &b), 0);
            double t = secs_since(t0);
            enc_s = t < enc_s ? t : enc_s;
            sl_arena_init(&d, 0);
            sl_span *out;
            size_t nout;
            t0 = sl_mono_nano();
            ASSERT_EQ(stg_block_decode(b.data, b.len, &d, &out, &nout), 0);
            t = secs_since(t0);
            dec_s = t < dec_s ? t : dec_s;
            sl_arena_free(&d);
        }
        fprintf(stderr,
                "  level %d: %6.2f bytes/span (raw payload %.1f), encode %.2f M spans/s, "
                "decode %.2f M spans/s\n",
                levels[li], per_span, (double)tls_cur->e.payload.len / (double)n,
                (double)n / enc_s / 1e6, (double)n / dec_s / 1e6);
    }
    /* Encoding cost before zstd: columns and dictionary only. */
    double cols_s = 1e9;
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = sl_mono_nano();
        enc *e = &tls_cur->e;
        enc_reset(e);
        for (size_t i = 0; i < n; i++) {
            e->span_res[i] = 0;
        }
        for (size_t i = 0; i < n; i++) {
            enc_span(e, p, i, i, 0);
        }
        double t = secs_since(t0);
        cols_s = t < cols_s ? t : cols_s;
    }
    fprintf(stderr, "  columns only (no zstd, no resources): %.2f M spans/s\n",
            (double)n / cols_s / 1e6);
    ASSERT_TRUE(per_span6 > 8 && per_span6 < 80);

    /* The same spans with microsecond timestamps (Jaeger/Zipkin sources). */
    for (size_t i = 0; i < n; i++) {
        sl_span *s = &g.spans[i];
        s->start_unix_nano -= s->start_unix_nano % 1000;
        s->end_unix_nano -= s->end_unix_nano % 1000;
        for (uint32_t j = 0; j < s->nevents; j++) {
            s->events[j].ts_unix_nano -= s->events[j].ts_unix_nano % 1000;
        }
    }
    sl_arena dus;
    sl_arena_init(&dus, 0);
    size_t size_us = 0;
    ASSERT_TRUE(roundtrip(p, n, 6, &dus, &size_us) != NULL);
    ASSERT_EQ(tls_cur->e.unit_exp, 3);
    sl_arena_free(&dus);
    fprintf(stderr, "  level 6, microsecond timestamps: %.2f bytes/span\n",
            (double)size_us / (double)n);

    /* WAL-sized records: one request's spans (50, unsorted), level 1. */
    const sl_span **q = ptrs_of(&a, g.spans, n);
    size_t rec = 50, total = 0;
    uint64_t t0 = sl_mono_nano();
    for (size_t off = 0; off + rec <= n; off += rec) {
        b.len = 0;
        ASSERT_EQ(stg_block_encode(q + off, rec, 1, &b), 0);
        total += b.len;
    }
    double s = secs_since(t0);
    fprintf(stderr, "  WAL records of %zu spans, level 1: %.2f bytes/span, %.2f M spans/s\n", rec,
            (double)total / (double)(n / rec * rec), (double)(n / rec * rec) / s / 1e6);
    sl_buf_free(&b);
    sl_arena_free(&a);
}

/* Version 1 blocks (written before dictionary sections, decimal doubles
 * and shape-predicted start times) decode to the spans they were made of:
 * the seed "v1-block-40" is gen_block(40, sorted) from a fresh generator. */
static void test_version1_block(void) {
    FILE *f = fopen(SL_BLOCK_V1_SEED, "rb");
    ASSERT_TRUE(f != NULL);
    if (f == NULL) {
        return;
    }
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ASSERT_TRUE(len > 10 && len < sizeof(buf));
    ASSERT_EQ(buf[4], 1);
    sl_arena a;
    sl_arena_init(&a, 0);
    uint64_t saved = rng_state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 40, 1);
    rng_state = saved;
    sl_span *got = NULL;
    size_t n = 0;
    ASSERT_EQ(stg_block_decode(buf, len, &a, &got, &n), 0);
    ASSERT_EQ(n, g.n);
    for (size_t i = 0; i < n && i < g.n; i++) {
        const char *d = span_diff(p[i], &got[i]);
        if (d != NULL) {
            fprintf(stderr, "span %zu differs: %s\n", i, d);
            ASSERT_TRUE(d == NULL);
            break;
        }
    }
    /* The same spans encode to a version 2 block that decodes alike. */
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_block_encode(p, g.n, 1, &b), 0);
    ASSERT_EQ(b.data[4], 2);
    ASSERT_EQ(stg_block_decode(b.data, b.len, &a, &got, &n), 0);
    ASSERT_EQ(n, g.n);
    for (size_t i = 0; i < n && i < g.n; i++) {
        ASSERT_TRUE(span_diff(p[i], &got[i]) == NULL);
    }
    sl_buf_free(&b);
    sl_arena_free(&a);
}

/* Doubles that are short decimals take the decimal form, everything else
 * the raw bits; either way every value comes back bit for bit. */
static void test_decimal_doubles(void) {
    static const double vals[] = {0.0,       -0.0,
                                  0.1,       0.3,
                                  1.5,       -2.25,
                                  123.456,   1e-15,
                                  1e15,      9.007199254740991e15,
                                  1e16,      1e300,
                                  -1e-300,   4.9406564584124654e-324,
                                  0.1 + 0.2, 3.141592653589793,
                                  2.0 / 3.0, 1234.5678e-3};
    size_t nv = sizeof(vals) / sizeof(vals[0]);
    for (size_t i = 0; i < nv; i++) {
        uint64_t code = dbl_decimal(vals[i]);
        if (code != DBL_RAW) {
            uint64_t m = (code - 1) >> 4;
            double back = dbl_from_decimal(sl_unzigzag(m), (unsigned)((code - 1) & 15));
            ASSERT_TRUE(memcmp(&back, &vals[i], 8) == 0);
        }
    }
    ASSERT_TRUE(dbl_decimal(0.1) != DBL_RAW);
    ASSERT_TRUE(dbl_decimal(123.456) != DBL_RAW);
    ASSERT_TRUE(dbl_decimal(-0.0) == DBL_RAW);
    ASSERT_TRUE(dbl_decimal(1e300) == DBL_RAW);
    ASSERT_TRUE(dbl_decimal(2.0 / 3.0) == DBL_RAW);
    /* Through a block. */
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_attr at[sizeof(vals) / sizeof(vals[0])];
    for (size_t i = 0; i < nv; i++) {
        at[i] = (sl_attr){SL_STR_LIT("d"), {SL_VAL_DOUBLE, {.d = vals[i]}}};
    }
    sl_span s;
    memset(&s, 0, sizeof(s));
    s.trace_id[0] = 1;
    s.span_id[0] = 2;
    s.attrs = at;
    s.nattrs = (uint32_t)nv;
    const sl_span *one[1] = {&s};
    sl_buf b;
    sl_buf_init(&b, 0);
    ASSERT_EQ(stg_block_encode(one, 1, 1, &b), 0);
    sl_span *got = NULL;
    size_t n = 0;
    ASSERT_EQ(stg_block_decode(b.data, b.len, &a, &got, &n), 0);
    ASSERT_EQ(n, 1);
    for (size_t i = 0; n == 1 && i < nv; i++) {
        ASSERT_TRUE(memcmp(&got[0].attrs[i].val.v.d, &vals[i], 8) == 0);
    }
    sl_buf_free(&b);
    sl_arena_free(&a);
}

/* ---- fuzz seeds ----------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t len) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t w = fwrite(p, 1, len, f);
    fclose(f);
    fprintf(stderr, "wrote %s (%zu bytes)\n", path, len);
    return w == len ? 0 : 1;
}

static int write_seeds(const char *dir) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_buf b;
    sl_buf_init(&b, 0);
    int rc = 0;
    gen g = {&a, NULL, 0, 0};
    const sl_span **p = gen_block(&g, 40, 1);
    /* Compressed blocks of a few traces, and the same as stored payloads so
     * that mutations act on the columns directly. */
    rc |= stg_block_encode(p, 12, 3, &b);
    rc |= write_file(dir, "traces-zstd", b.data, b.len);
    wrap_raw(&b, tls_cur->e.payload.data, tls_cur->e.payload.len, 12);
    rc |= write_file(dir, "traces-stored", b.data, b.len);
    b.len = 0;
    rc |= stg_block_encode(p, g.n, 1, &b);
    rc |= write_file(dir, "block-40", b.data, b.len);
    wrap_raw(&b, tls_cur->e.payload.data, tls_cur->e.payload.len, g.n);
    rc |= write_file(dir, "block-40-stored", b.data, b.len);
    b.len = 0;
    rc |= stg_block_encode(NULL, 0, 1, &b);
    rc |= write_file(dir, "empty", b.data, b.len);
    /* One span with every value type, an event and a link, stored. */
    sl_attr at[] = {{SL_STR_LIT("s"), {SL_VAL_STR, {.s = SL_STR_LIT("v")}}},
                    {SL_STR_LIT("b"), {SL_VAL_BOOL, {.b = 1}}},
                    {SL_STR_LIT("i"), {SL_VAL_INT, {.i = -42}}},
                    {SL_STR_LIT("d"), {SL_VAL_DOUBLE, {.d = 2.5}}},
                    {SL_STR_LIT("a"), {SL_VAL_ARRAY, {.s = SL_STR_LIT("[1]")}}},
                    {SL_STR_LIT("k"), {SL_VAL_KVLIST, {.s = SL_STR_LIT("{}")}}},
                    {SL_STR_LIT("y"), {SL_VAL_BYTES, {.s = {"\0\1", 2}}}},
                    {SL_STR_LIT("e"), {SL_VAL_EMPTY, {.i = 0}}}};
    sl_event ev = {10, SL_STR_LIT("ev"), at, 2, 1};
    sl_link lk;
    memset(&lk, 0, sizeof(lk));
    lk.trace_id[0] = 1;
    lk.attrs = at + 2;
    lk.nattrs = 1;
    sl_resource r = {SL_STR_LIT("svc"), at, 1, 0};
    sl_span s;
    memset(&s, 0, sizeof(s));
    s.trace_id[0] = 9;
    s.span_id[0] = 8;
    s.parent_span_id[0] = 7;
    s.start_unix_nano = 5;
    s.end_unix_nano = 3;
    s.name = SL_STR_LIT("n");
    s.resource = &r;
    s.attrs = at;
    s.nattrs = 8;
    s.events = &ev;
    s.nevents = 1;
    s.links = &lk;
    s.nlinks = 1;
    const sl_span *one[1] = {&s};
    b.len = 0;
    rc |= stg_block_encode(one, 1, 1, &b);
    wrap_raw(&b, tls_cur->e.payload.data, tls_cur->e.payload.len, 1);
    rc |= write_file(dir, "all-types-stored", b.data, b.len);
    rc |= write_file(dir, "junk-magic", (const uint8_t *)"SLB1\x01\x00garbage!", 15);
    static const uint8_t zeros[64];
    rc |= write_file(dir, "junk-zeros", zeros, sizeof(zeros));
    sl_buf_free(&b);
    sl_arena_free(&a);
    return rc != 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        return write_seeds(argv[2]);
    }
    RUN(test_xxh64_vectors);
    RUN(test_version1_block);
    RUN(test_decimal_doubles);
    RUN(test_empty_block);
    RUN(test_all_fields_roundtrip);
    RUN(test_shared_resources);
    RUN(test_parent_codes);
    RUN(test_extreme_times);
    RUN(test_time_unit);
    RUN(test_strings);
    RUN(test_unsorted_and_sizes);
    RUN(test_truncation_and_flips);
    RUN(test_hostile_counts);
    RUN(test_capped_arena_and_buffer);
    RUN(test_invalid_input);
    RUN(test_threads);
    RUN(test_realistic_block);
    return SL_TEST_RESULT();
}
