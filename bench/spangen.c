/*
 * spangen implementation: a fleet model (service table below), a trace
 * builder that spends an exact span budget recursively, and the assembly of
 * the collected spans into one ResourceSpans per service.
 *
 * Invariants: every protobuf-c structure of a request lives in the request's
 * arena (g->arena) and is never freed one by one; strings that are constant
 * (keys, catalogue values) are referenced, not copied, which is why the
 * structures must never go to free_unpacked. Allocation failures are sticky:
 * the first one sets g->err, later helpers do nothing, and the request fails
 * as a whole. Timing is computed bottom-up: a parent's end is known only after
 * its children are built, which also yields the SDK export order (children
 * before parents).
 *
 * Thread: whichever thread owns the generator.
 */
#include "spangen.h"

#include "sl_err.h"
#include "sl_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rspans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_sspans;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum { KIND_INTERNAL = 1, KIND_SERVER = 2, KIND_CLIENT = 3, KIND_PRODUCER = 4, KIND_CONSUMER = 5 };
enum { SCOPE_HTTP, SCOPE_DB, SCOPE_MSG, SCOPE_APP, NSCOPES };
enum { LANG_GO, LANG_JAVA, LANG_PYTHON, LANG_NODE, LANG_RUST };

#define SG_MAX_SVC 10
#define SG_MAX_INST 4
#define SG_MAX_SPAN_ATTRS 24
#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull

/* --- the fleet ----------------------------------------------------------- */

typedef struct route_def {
    const char *method;
    const char *tmpl; /* http.route; {id}, {sku}, {hex} are filled with values */
} route_def;

typedef struct dbop_def {
    const char *op;    /* db.operation.name */
    const char *table; /* db.collection.name, NULL for key-value stores */
    const char *stmt;  /* db.statement template */
} dbop_def;

typedef struct svc_def {
    const char *name;
    const char *version;
    int lang;
    const char *ns; /* code namespace prefix */
    uint16_t port;
    const char *db_system; /* NULL: no database */
    const char *db_name;
    uint16_t db_port;
    route_def routes[5]; /* NULL method ends */
    dbop_def dbops[4];   /* NULL op ends */
    int8_t calls[7];     /* downstream services, -1 ends */
    const char *topic;   /* published topic or NULL */
    int8_t consumers[2]; /* services consuming topic, -1 ends */
    const char *funcs[4];
} svc_def;

/* The order matters: the first five are always present, and calls only point
 * to services that form no cycle. */
static const svc_def svc_defs[SG_MAX_SVC] = {
    {"api-gateway",
     "3.8.1",
     LANG_GO,
     "github.com/acme/gateway/internal",
     8080,
     "redis",
     "0",
     6379,
     {{NULL, NULL}},
     {{"EVALSHA", NULL, "EVALSHA 5b3c0a9f1e 1 ratelimit:tenant:{id}"},
      {"GET", NULL, "GET jwks:{hex}"}},
     {1, 2, 3, 5, 6, 7, 8},
     NULL,
     {-1, -1},
     {"proxy.route", "jwt.Verify", "ratelimit.Check", "cors.Apply"}},
    {"users",
     "1.42.0",
     LANG_JAVA,
     "com.acme.users",
     8081,
     "postgresql",
     "users",
     5432,
     {{"GET", "/users/{id}"},
      {"PUT", "/users/{id}"},
      {"GET", "/users"},
      {"POST", "/users"},
      {"GET", "/users/{id}/preferences"}},
     {{"SELECT", "users", "SELECT id, email, display_name, created_at FROM users WHERE id = $1"},
      {"UPDATE", "users", "UPDATE users SET display_name = $1, updated_at = now() WHERE id = $2"},
      {"SELECT", "user_preferences", "SELECT key, value FROM user_preferences WHERE user_id = $1"},
      {"INSERT", "users",
       "INSERT INTO users (email, display_name, tenant_id) VALUES ($1, $2, $3) RETURNING id"}},
     {3, 7, -1},
     NULL,
     {-1, -1},
     {"UserService.getUser", "UserMapper.toDto", "PasswordPolicy.validate", "UserCache.lookup"}},
    {"orders",
     "2.7.3",
     LANG_JAVA,
     "com.acme.orders",
     8082,
     "postgresql",
     "orders",
     5432,
     {{"GET", "/orders/{id}"},
      {"POST", "/orders"},
      {"GET", "/orders"},
      {"DELETE", "/orders/{id}"},
      {"POST", "/orders/{id}/cancel"}},
     {{"SELECT", "orders",
       "SELECT o.id, o.status, o.total_cents, o.currency FROM orders o WHERE o.id = $1 AND "
       "o.tenant_id = $2"},
      {"INSERT", "orders",
       "INSERT INTO orders (user_id, tenant_id, total_cents, currency, status) VALUES ($1, $2, "
       "$3, $4, 'pending') RETURNING id"},
      {"SELECT", "order_items",
       "SELECT sku, quantity, price_cents FROM order_items WHERE order_id = $1"},
      {"UPDATE", "orders", "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2"}},
     {1, 6, 5, -1},
     "orders.created",
     {4, 9},
     {"OrderService.placeOrder", "PricingEngine.total", "OrderValidator.check",
      "OrderMapper.toDto"}},
    {"auth",
     "5.1.0",
     LANG_GO,
     "github.com/acme/auth/internal",
     8083,
     "redis",
     "1",
     6379,
     {{"POST", "/auth/verify"}, {"POST", "/auth/login"}, {"POST", "/auth/token/refresh"}},
     {{"GET", NULL, "GET session:{hex}"},
      {"SETEX", NULL, "SETEX session:{hex} 3600 ?"},
      {"INCR", NULL, "INCR login_attempts:{id}"}},
     {7, -1},
     NULL,
     {-1, -1},
     {"token.Sign", "token.Verify", "bcrypt.Compare", "session.Load"}},
    {"notifications",
     "0.19.2",
     LANG_NODE,
     "notifications",
     8084,
     "sqlite",
     "notifications.db",
     0,
     {{"POST", "/notifications"}, {"GET", "/notifications/{id}"}},
     {{"INSERT", "deliveries",
       "INSERT INTO deliveries (id, channel, payload, status) VALUES (?, ?, ?, 'queued')"},
      {"SELECT", "templates", "SELECT body FROM templates WHERE name = ? AND locale = ?"},
      {"UPDATE", "deliveries",
       "UPDATE deliveries SET status = ?, attempts = attempts + 1 WHERE "
       "id = ?"}},
     {-1},
     NULL,
     {-1, -1},
     {"renderTemplate", "webhook.deliver", "dedupe.check", "channel.select"}},
    {"payments",
     "4.0.11",
     LANG_JAVA,
     "com.acme.payments",
     8085,
     "postgresql",
     "payments",
     5432,
     {{"POST", "/payments"}, {"GET", "/payments/{id}"}, {"POST", "/payments/{id}/refund"}},
     {{"INSERT", "payments",
       "INSERT INTO payments (order_id, amount_cents, currency, method, status) VALUES ($1, $2, "
       "$3, $4, 'authorized')"},
      {"SELECT", "payments", "SELECT id, status, amount_cents FROM payments WHERE id = $1"},
      {"UPDATE", "payments", "UPDATE payments SET status = 'captured' WHERE id = $1"}},
     {-1},
     "payments.completed",
     {4, -1},
     {"PaymentService.authorize", "FraudScorer.score", "LedgerWriter.append",
      "CurrencyConverter.convert"}},
    {"inventory",
     "1.3.8",
     LANG_PYTHON,
     "inventory",
     8086,
     "mysql",
     "inventory",
     3306,
     {{"GET", "/inventory/{sku}"}, {"POST", "/inventory/reserve"}, {"POST", "/inventory/release"}},
     {{"SELECT", "stock", "SELECT sku, available, reserved FROM stock WHERE sku = %s"},
      {"UPDATE", "stock",
       "UPDATE stock SET reserved = reserved + %s WHERE sku = %s AND available >= %s"},
      {"SELECT", "warehouses", "SELECT id, region FROM warehouses WHERE active = 1"}},
     {-1},
     NULL,
     {-1, -1},
     {"reserve_stock", "serialize_response", "pick_warehouse", "validate_sku"}},
    {"tenants",
     "2.2.0",
     LANG_GO,
     "github.com/acme/tenants/internal",
     8087,
     "postgresql",
     "tenants",
     5432,
     {{"GET", "/tenants/{id}"}, {"GET", "/tenants/{id}/settings"}, {"GET", "/tenants/{id}/quotas"}},
     {{"SELECT", "tenants", "SELECT id, name, plan, settings FROM tenants WHERE id = $1"},
      {"SELECT", "quotas", "SELECT resource, quota_limit, used FROM quotas WHERE tenant_id = $1"}},
     {-1},
     NULL,
     {-1, -1},
     {"tenant.Load", "quota.Compute", "settings.Merge", "cache.Get"}},
    {"search",
     "0.9.4",
     LANG_RUST,
     "search",
     8088,
     "elasticsearch",
     "products",
     9200,
     {{"GET", "/search"}, {"GET", "/search/suggest"}},
     {{"search", "products",
       "{\"query\":{\"multi_match\":{\"query\":\"?\",\"fields\":[\"name^2\",\"description\"]}},"
       "\"size\":20}"},
      {"search", "suggestions",
       "{\"suggest\":{\"s\":{\"prefix\":\"?\",\"completion\":{\"field\":\"suggest\"}}}}"}},
     {1, 6, -1},
     NULL,
     {-1, -1},
     {"query::parse", "rank::score", "index::lookup", "render::json"}},
    {"analytics",
     "1.0.5",
     LANG_PYTHON,
     "analytics",
     8089,
     "clickhouse",
     "analytics",
     9000,
     {{"POST", "/events"}, {"GET", "/reports/{id}"}},
     {{"INSERT", "events", "INSERT INTO events (ts, tenant_id, type, payload) VALUES"},
      {"SELECT", "events",
       "SELECT toStartOfHour(ts) AS h, count() FROM events WHERE tenant_id = ? GROUP BY h ORDER "
       "BY h"}},
     {-1},
     NULL,
     {-1, -1},
     {"aggregate_window", "enrich_event", "flush_batch", "schema_check"}},
};

static const char *const lang_names[] = {"go", "java", "python", "nodejs", "rust"};
static const char *const lang_sdk_versions[] = {"1.32.0", "1.44.1", "1.29.0", "1.30.1", "0.27.1"};
static const char *const lang_runtimes[] = {"go", "OpenJDK Runtime Environment", "CPython",
                                            "nodejs", "rustc"};
static const char *const scope_names[] = {"io.opentelemetry.http", "io.opentelemetry.db",
                                          "io.opentelemetry.messaging", NULL};

static const char *const user_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "AcmeShop/7.12.0 (Android 14; Pixel 8)",
    "AcmeShop/7.11.2 (iOS 18.1; iPhone15,2)",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "curl/8.11.0",
};

static const char *const exc_go[][2] = {
    {"*net.OpError", "dial tcp 10.0.4.12:5432: connect: connection refused"},
    {"context.deadlineExceededError", "context deadline exceeded"},
    {"*errors.errorString", "upstream returned 503 Service Unavailable"},
};
static const char *const exc_java[][2] = {
    {"org.postgresql.util.PSQLException", "ERROR: canceling statement due to statement timeout"},
    {"java.net.SocketTimeoutException", "Read timed out"},
    {"com.zaxxer.hikari.pool.HikariPool$PoolInitializationException",
     "Connection is not available, request timed out after 30000ms."},
    {"java.lang.IllegalStateException", "order is not in a cancellable state"},
};
static const char *const exc_python[][2] = {
    {"pymysql.err.OperationalError", "(2013, 'Lost connection to MySQL server during query')"},
    {"TimeoutError", "timed out waiting for lock on stock row"},
    {"KeyError", "'warehouse_id'"},
};
static const char *const exc_node[][2] = {
    {"Error", "read ECONNRESET"},
    {"SqliteError", "SQLITE_BUSY: database is locked"},
    {"TypeError", "Cannot read properties of undefined (reading 'locale')"},
};
static const char *const exc_rust[][2] = {
    {"reqwest::Error", "error sending request for url: operation timed out"},
    {"elasticsearch::Error", "status 429: es_rejected_execution_exception"},
};

/* --- generator state ------------------------------------------------------ */

typedef struct gen_instance {
    char instance_id[40];
    char host[32];
    char pod[64];
    char ip[16];
    int64_t pid;
} gen_instance;

typedef struct gen_rec {
    pb_span *span;
    uint8_t svc;
    uint8_t scope;
} gen_rec;

typedef struct gen_trace {
    uint8_t *trace_id; /* 16 bytes in the arena */
    const char *request_id;
    const char *tenant;
    const char *user_agent;
    const char *client_ip;
    int64_t user_id;
} gen_trace;

struct spangen {
    spangen_options opt;
    uint64_t s[4];  /* xoshiro256** state */
    uint64_t clock; /* start of the next trace */
    uint32_t nsvc;
    uint8_t ninst[SG_MAX_SVC];
    uint8_t cur_inst[SG_MAX_SVC];
    gen_instance inst[SG_MAX_SVC][SG_MAX_INST];
    sl_arena own;    /* backs spangen_request */
    sl_arena *arena; /* the arena of the request being built */
    gen_rec *recs;   /* spans of the request being built, in end order */
    size_t nrecs;
    size_t caprecs;
    int err; /* sticky: first failure of the request being built */
    spangen_stats stats;
};

/* --- randomness ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(spangen *g) {
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t rnd_below(spangen *g, uint64_t n) {
    return n == 0 ? 0 : rnd(g) % n;
}

static int64_t rnd_range(spangen *g, int64_t lo, int64_t hi) {
    return lo + (int64_t)rnd_below(g, (uint64_t)(hi - lo) + 1);
}

static double rnd_unit(spangen *g) {
    return (double)(rnd(g) >> 11) * 0x1.0p-53;
}

static bool rnd_chance(spangen *g, double p) {
    return rnd_unit(g) < p;
}

/* Log-uniform between lo and hi: as many values per decade, which is how
 * latencies spread. */
static uint64_t rnd_logu(spangen *g, double lo, double hi) {
    return (uint64_t)(lo * exp(log(hi / lo) * rnd_unit(g)));
}

static void rnd_bytes(spangen *g, uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rnd(g);
        for (size_t j = 0; j < 8 && i + j < n; j++) {
            p[i + j] = (uint8_t)(v >> (8 * j));
        }
    }
}

#define PICK(g, arr) ((arr)[rnd_below((g), NELEM(arr))])

/* --- arena helpers (sticky errors) ---------------------------------------- */

static void *galloc(spangen *g, size_t size) {
    if (g->err != 0) {
        return NULL;
    }
    void *p = sl_arena_alloc(g->arena, size);
    if (p == NULL) {
        g->err = SL_ENOMEM;
    }
    return p;
}

/* protobuf-c declares string fields char * although packing never writes
 * them; constant strings are referenced through this conversion instead of
 * being copied. */
static char *unconst(const char *s) {
    union {
        const char *c;
        char *m;
    } u = {.c = s};
    return u.m;
}

static uint8_t *unconst_bytes(const uint8_t *p) {
    union {
        const uint8_t *c;
        uint8_t *m;
    } u = {.c = p};
    return u.m;
}

static char *gprintf(spangen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *gprintf(spangen *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        g->err = SL_EINVAL;
        return NULL;
    }
    char *p = galloc(g, (size_t)n + 1);
    if (p != NULL) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

/* Copies tmpl replacing each {id}, {sku} or {hex} with a fresh value; any
 * other text is copied as is. */
static char *fill_template(spangen *g, const char *tmpl) {
    char buf[512];
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0' && o < sizeof(buf) - 24; p++) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (e != NULL) {
                size_t kl = (size_t)(e - p - 1);
                int n = 0;
                if (kl == 3 && memcmp(p + 1, "sku", 3) == 0) {
                    n = snprintf(buf + o, sizeof(buf) - o, "SKU-%05d",
                                 (int)rnd_range(g, 10000, 99999));
                } else if (kl == 3 && memcmp(p + 1, "hex", 3) == 0) {
                    n = snprintf(buf + o, sizeof(buf) - o, "%016llx", (unsigned long long)rnd(g));
                } else {
                    n = snprintf(buf + o, sizeof(buf) - o, "%lld",
                                 (long long)rnd_range(g, 1000, 9999999));
                }
                o += n > 0 ? (size_t)n : 0;
                p = e;
                continue;
            }
        }
        buf[o++] = *p;
    }
    buf[o] = '\0';
    char *r = galloc(g, o + 1);
    if (r != NULL) {
        memcpy(r, buf, o + 1);
    }
    return r;
}

/* --- attributes ----------------------------------------------------------- */

typedef struct kvs {
    pb_kv **v;
    size_t n;
    size_t cap;
} kvs;

static void kvs_begin(spangen *g, kvs *k, size_t cap) {
    k->v = galloc(g, cap * sizeof(*k->v));
    k->n = 0;
    k->cap = k->v != NULL ? cap : 0;
}

static pb_any *kv_add(spangen *g, kvs *k, const char *key) {
    if (k->n >= k->cap) {
        if (g->err == 0) {
            g->err = SL_EINVAL; /* a catalogue bug: more attributes than planned */
        }
        return NULL;
    }
    pb_kv *kv = galloc(g, sizeof(*kv));
    pb_any *v = galloc(g, sizeof(*v));
    if (kv == NULL || v == NULL) {
        return NULL;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = unconst(key);
    kv->value = v;
    k->v[k->n++] = kv;
    return v;
}

static void kv_str(spangen *g, kvs *k, const char *key, const char *val) {
    pb_any *v = kv_add(g, k, key);
    if (v != NULL && val != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = unconst(val);
    }
}

static void kv_int(spangen *g, kvs *k, const char *key, int64_t val) {
    pb_any *v = kv_add(g, k, key);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = val;
    }
}

static void kv_bool(spangen *g, kvs *k, const char *key, bool val) {
    pb_any *v = kv_add(g, k, key);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = val;
    }
}

static void kv_double(spangen *g, kvs *k, const char *key, double val) {
    pb_any *v = kv_add(g, k, key);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = val;
    }
}

/* Attributes every span of a trace carries (the trace's request context). */
static void kv_context(spangen *g, kvs *k, const gen_trace *tr) {
    kv_str(g, k, "request.id", tr->request_id);
    kv_str(g, k, "tenant.id", tr->tenant);
}

static void kv_thread(spangen *g, kvs *k, int svc) {
    kv_int(g, k, "thread.id", rnd_range(g, 20, 260));
    if (svc_defs[svc].lang == LANG_JAVA) {
        kv_str(g, k, "thread.name", gprintf(g, "http-nio-8080-exec-%d", (int)rnd_range(g, 1, 200)));
    } else {
        kv_str(g, k, "thread.name", gprintf(g, "worker-%d", (int)rnd_range(g, 0, 15)));
    }
}

/* --- spans ----------------------------------------------------------------- */

static pb_span *span_new(spangen *g, const gen_trace *tr, const uint8_t *parent_id, int kind,
                         bool remote_parent) {
    pb_span *sp = galloc(g, sizeof(*sp));
    uint8_t *id = galloc(g, 8);
    if (sp == NULL || id == NULL) {
        return NULL;
    }
    opentelemetry__proto__trace__v1__span__init(sp);
    rnd_bytes(g, id, 8);
    id[0] |= 1; /* never all zero */
    sp->trace_id.data = tr->trace_id;
    sp->trace_id.len = 16;
    sp->span_id.data = id;
    sp->span_id.len = 8;
    if (parent_id != NULL) {
        sp->parent_span_id.data = unconst_bytes(parent_id);
        sp->parent_span_id.len = 8;
    }
    /* Sampled, and the W3C "is remote" bits as current SDKs set them. */
    sp->flags = 0x01u | 0x100u | (remote_parent ? 0x200u : 0u);
    sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)kind;
    return sp;
}

static void span_set_attrs(pb_span *sp, const kvs *k) {
    if (sp != NULL) {
        sp->attributes = k->v;
        sp->n_attributes = k->n;
    }
}

static void span_set_error(spangen *g, pb_span *sp, const char *message) {
    pb_status *st = galloc(g, sizeof(*st));
    if (sp == NULL || st == NULL) {
        return;
    }
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = unconst(message != NULL ? message : "");
    sp->status = st;
}

static void span_add_event(spangen *g, pb_span *sp, pb_event *ev) {
    if (sp == NULL || ev == NULL) {
        return;
    }
    pb_event **evs = galloc(g, (sp->n_events + 1) * sizeof(*evs));
    if (evs == NULL) {
        return;
    }
    for (size_t i = 0; i < sp->n_events; i++) {
        evs[i] = sp->events[i];
    }
    evs[sp->n_events] = ev;
    sp->events = evs;
    sp->n_events++;
}

static void span_add_exception(spangen *g, pb_span *sp, int svc, uint64_t ts, const char *type,
                               const char *msg) {
    const svc_def *sd = &svc_defs[svc];
    char stack[2048];
    size_t o = 0;
    int n = 0;
    int frames = (int)rnd_range(g, 5, 12);
    switch (sd->lang) {
    case LANG_JAVA:
        n = snprintf(stack, sizeof(stack), "%s: %s\n", type, msg);
        break;
    case LANG_PYTHON:
        n = snprintf(stack, sizeof(stack), "Traceback (most recent call last):\n");
        break;
    case LANG_GO:
        n = snprintf(stack, sizeof(stack), "goroutine %d [running]:\n", (int)rnd_range(g, 1, 9000));
        break;
    default:
        n = snprintf(stack, sizeof(stack), "%s: %s\n", type, msg);
        break;
    }
    o = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < frames && o < sizeof(stack) - 256; i++) {
        const char *fn = sd->funcs[rnd_below(g, NELEM(sd->funcs))];
        int line = (int)rnd_range(g, 12, 900);
        switch (sd->lang) {
        case LANG_JAVA:
            n = snprintf(stack + o, sizeof(stack) - o, "\tat %s.%s(%s.java:%d)\n", sd->ns, fn,
                         sd->name, line);
            break;
        case LANG_PYTHON:
            n = snprintf(stack + o, sizeof(stack) - o, "  File \"/app/%s/%s.py\", line %d, in %s\n",
                         sd->ns, fn, line, fn);
            break;
        case LANG_GO:
            n = snprintf(stack + o, sizeof(stack) - o, "%s.%s(...)\n\t/src/%s/%s.go:%d +0x%x\n",
                         sd->ns, fn, sd->name, sd->name, line, (unsigned)rnd_range(g, 16, 4095));
            break;
        case LANG_NODE:
            n = snprintf(stack + o, sizeof(stack) - o, "    at %s (/app/src/%s.js:%d:%d)\n", fn,
                         sd->name, line, (int)rnd_range(g, 1, 80));
            break;
        default:
            n = snprintf(stack + o, sizeof(stack) - o,
                         "  %d: %s::%s\n             at src/%s.rs:%d\n", i, sd->ns, fn, sd->name,
                         line);
            break;
        }
        o += n > 0 ? (size_t)n : 0;
    }
    if (sd->lang == LANG_PYTHON && o < sizeof(stack) - 256) {
        n = snprintf(stack + o, sizeof(stack) - o, "%s: %s\n", type, msg);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o >= sizeof(stack)) {
        o = sizeof(stack) - 1;
    }

    pb_event *ev = galloc(g, sizeof(*ev));
    char *st = galloc(g, o + 1);
    if (ev == NULL || st == NULL) {
        return;
    }
    memcpy(st, stack, o);
    st[o] = '\0';
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->time_unix_nano = ts;
    ev->name = unconst("exception");
    kvs k;
    kvs_begin(g, &k, 4);
    kv_str(g, &k, "exception.type", type);
    kv_str(g, &k, "exception.message", msg);
    kv_str(g, &k, "exception.stacktrace", st);
    kv_bool(g, &k, "exception.escaped", rnd_chance(g, 0.3));
    ev->attributes = k.v;
    ev->n_attributes = k.n;
    span_add_event(g, sp, ev);
}

/* Records an exception of the service's language on sp and marks it ERROR. */
static void span_fail(spangen *g, pb_span *sp, int svc, uint64_t ts) {
    const char *type;
    const char *msg;
    switch (svc_defs[svc].lang) {
    case LANG_GO: {
        size_t i = rnd_below(g, NELEM(exc_go));
        type = exc_go[i][0];
        msg = exc_go[i][1];
        break;
    }
    case LANG_JAVA: {
        size_t i = rnd_below(g, NELEM(exc_java));
        type = exc_java[i][0];
        msg = exc_java[i][1];
        break;
    }
    case LANG_PYTHON: {
        size_t i = rnd_below(g, NELEM(exc_python));
        type = exc_python[i][0];
        msg = exc_python[i][1];
        break;
    }
    case LANG_NODE: {
        size_t i = rnd_below(g, NELEM(exc_node));
        type = exc_node[i][0];
        msg = exc_node[i][1];
        break;
    }
    default: {
        size_t i = rnd_below(g, NELEM(exc_rust));
        type = exc_rust[i][0];
        msg = exc_rust[i][1];
        break;
    }
    }
    span_add_exception(g, sp, svc, ts, type, msg);
    span_set_error(g, sp, msg);
}

/* A non-error event as instrumentations emit them (cache misses, retries,
 * log records bridged to the span). */
static void span_add_note(spangen *g, pb_span *sp, uint64_t ts) {
    pb_event *ev = galloc(g, sizeof(*ev));
    if (ev == NULL) {
        return;
    }
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->time_unix_nano = ts;
    kvs k;
    kvs_begin(g, &k, 3);
    switch (rnd_below(g, 3)) {
    case 0:
        ev->name = unconst("cache.miss");
        kv_str(g, &k, "cache.key", gprintf(g, "obj:%llx", (unsigned long long)rnd(g)));
        kv_int(g, &k, "cache.ttl_s", rnd_range(g, 30, 3600));
        break;
    case 1:
        ev->name = unconst("log");
        kv_str(g, &k, "log.severity", "INFO");
        kv_str(g, &k, "log.message", "request validated against schema v3");
        break;
    default:
        ev->name = unconst("retry");
        kv_int(g, &k, "retry.attempt", rnd_range(g, 1, 3));
        kv_double(g, &k, "retry.backoff_ms", (double)rnd_range(g, 50, 800) * 1.5);
        break;
    }
    ev->attributes = k.v;
    ev->n_attributes = k.n;
    span_add_event(g, sp, ev);
}

static void span_record(spangen *g, pb_span *sp, int svc, int scope, uint64_t start, uint64_t end) {
    if (sp == NULL || g->err != 0) {
        return;
    }
    if (g->nrecs >= g->caprecs) {
        g->err = SL_EINVAL; /* the budget accounting is wrong: a bug */
        return;
    }
    sp->start_time_unix_nano = start;
    sp->end_time_unix_nano = end;
    g->recs[g->nrecs].span = sp;
    g->recs[g->nrecs].svc = (uint8_t)svc;
    g->recs[g->nrecs].scope = (uint8_t)scope;
    g->nrecs++;
}

static const char *svc_host(spangen *g, int svc) {
    return gprintf(g, "%s.shop.svc.cluster.local", svc_defs[svc].name);
}

static int http_status_ok(const char *method) {
    if (strcmp(method, "POST") == 0) {
        return 201;
    }
    if (strcmp(method, "DELETE") == 0) {
        return 204;
    }
    return 200;
}

/* --- trace building -------------------------------------------------------- */

typedef struct call_result {
    uint64_t end;
    int status; /* HTTP status of a server span */
    bool failed;
} call_result;

static bool svc_present(const spangen *g, int svc) {
    return svc >= 0 && (uint32_t)svc < g->nsvc;
}

static int pick_callee(spangen *g, int svc) {
    int cand[7];
    int n = 0;
    for (size_t i = 0; i < NELEM(svc_defs[svc].calls) && svc_defs[svc].calls[i] >= 0; i++) {
        if (svc_present(g, svc_defs[svc].calls[i])) {
            cand[n++] = svc_defs[svc].calls[i];
        }
    }
    return n == 0 ? -1 : cand[rnd_below(g, (uint64_t)n)];
}

static int pick_consumer(spangen *g, int svc) {
    if (svc_defs[svc].topic == NULL) {
        return -1;
    }
    int cand[2];
    int n = 0;
    for (size_t i = 0; i < NELEM(svc_defs[svc].consumers); i++) {
        if (svc_present(g, svc_defs[svc].consumers[i])) {
            cand[n++] = svc_defs[svc].consumers[i];
        }
    }
    return n == 0 ? -1 : cand[rnd_below(g, (uint64_t)n)];
}

static const route_def *pick_route(spangen *g, int svc) {
    size_t n = 0;
    while (n < NELEM(svc_defs[svc].routes) && svc_defs[svc].routes[n].method != NULL) {
        n++;
    }
    return &svc_defs[svc].routes[rnd_below(g, n)];
}

static bool dbop_reads(const dbop_def *op) {
    return strcmp(op->op, "SELECT") == 0 || strcmp(op->op, "GET") == 0 ||
           strcmp(op->op, "search") == 0;
}

/* A database operation of the service; handlers of GET routes only read. */
static const dbop_def *pick_dbop(spangen *g, int svc, bool read_only) {
    const dbop_def *ops = svc_defs[svc].dbops;
    size_t cand[NELEM(svc_defs[svc].dbops)];
    size_t n = 0;
    for (size_t i = 0; i < NELEM(svc_defs[svc].dbops) && ops[i].op != NULL; i++) {
        if (!read_only || dbop_reads(&ops[i]) || svc == 0) {
            cand[n++] = i;
        }
    }
    if (n == 0) {
        cand[n++] = 0;
    }
    return &ops[cand[rnd_below(g, n)]];
}

/* The file an internal operation lives in, from its name's first word. */
static const char *code_filepath(spangen *g, int svc, const char *fn) {
    static const char *const ext[] = {"go", "java", "py", "js", "rs"};
    const svc_def *sd = &svc_defs[svc];
    size_t n = strcspn(fn, ".:");
    return gprintf(g, "src/%s/%.*s.%s", sd->name, (int)n, fn, ext[sd->lang]);
}

static const gen_instance *cur_instance(const spangen *g, int svc) {
    return &g->inst[svc][g->cur_inst[svc]];
}

static call_result gen_db(spangen *g, const gen_trace *tr, int svc, const uint8_t *parent,
                          uint64_t start, bool read_only) {
    const svc_def *sd = &svc_defs[svc];
    const dbop_def *op = pick_dbop(g, svc, read_only);
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_CLIENT, false);
    uint64_t dur;
    if (rnd_chance(g, 0.005)) {
        dur = rnd_logu(g, 200.0 * NS_PER_MS, 2500.0 * NS_PER_MS); /* lock wait, cold cache */
    } else if (strcmp(sd->db_system, "redis") == 0) {
        dur = rnd_logu(g, 40.0 * NS_PER_US, 1.5 * NS_PER_MS);
    } else {
        dur = rnd_logu(g, 120.0 * NS_PER_US, 25.0 * NS_PER_MS);
    }
    r.end = start + dur;
    r.failed = rnd_chance(g, g->opt.error_rate);

    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "db.system", sd->db_system);
    kv_str(g, &k, "db.namespace", sd->db_name);
    kv_str(g, &k, "db.operation.name", op->op);
    if (op->table != NULL) {
        kv_str(g, &k, "db.collection.name", op->table);
    }
    kv_str(g, &k, "db.statement",
           strchr(op->stmt, '{') != NULL ? fill_template(g, op->stmt) : op->stmt);
    if (sd->db_port != 0) {
        kv_str(g, &k, "server.address", gprintf(g, "%s-db.shop.internal", sd->name));
        kv_int(g, &k, "server.port", sd->db_port);
        kv_int(g, &k, "net.peer.port", sd->db_port);
        kv_str(g, &k, "network.peer.address",
               gprintf(g, "10.0.9.%d", (int)(svc * 10 + rnd_range(g, 1, 3))));
    } else {
        kv_str(g, &k, "db.sqlite.path", "/var/lib/notifications/notifications.db");
        kv_str(g, &k, "db.sqlite.journal_mode", "wal");
        kv_int(g, &k, "net.peer.port", 0);
    }
    kv_context(g, &k, tr);
    if (sd->db_port == 0 || rnd_chance(g, 0.8)) {
        kv_str(g, &k, "db.user", gprintf(g, "%s_app", sd->name));
    }
    if (dbop_reads(op) && op->table != NULL) {
        kv_int(g, &k, "db.response.returned_rows", rnd_below(g, 8) == 0 ? 0 : rnd_range(g, 1, 50));
    }
    if (rnd_chance(g, 0.7)) {
        kv_str(g, &k, "db.client.connection.pool.name", gprintf(g, "%s-pool", sd->name));
        kv_double(g, &k, "db.client.connection.wait_time_ms", (double)rnd_below(g, 4000) / 1000.0);
    }
    if (rnd_chance(g, 0.5)) {
        kv_bool(g, &k, "db.statement.prepared", rnd_chance(g, 0.8));
    }
    if (rnd_chance(g, 0.5)) {
        kv_thread(g, &k, svc);
    }
    if (r.failed) {
        kv_str(g, &k, "error.type", "db_error");
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = op->table != NULL ? gprintf(g, "%s %s", op->op, op->table) : unconst(op->op);
    }
    if (r.failed) {
        span_fail(g, sp, svc, r.end - dur / 8);
    }
    span_record(g, sp, svc, SCOPE_DB, start, r.end);
    return r;
}

static call_result gen_internal(spangen *g, const gen_trace *tr, int svc, const uint8_t *parent,
                                uint64_t start) {
    const svc_def *sd = &svc_defs[svc];
    const char *fn = sd->funcs[rnd_below(g, NELEM(sd->funcs))];
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_INTERNAL, false);
    uint64_t dur = rnd_logu(g, 3.0 * NS_PER_US, 4.0 * NS_PER_MS);
    r.end = start + dur;
    r.failed = rnd_chance(g, g->opt.error_rate / 4);

    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "code.function", fn);
    kv_str(g, &k, "code.namespace", sd->ns);
    kv_str(g, &k, "code.filepath", code_filepath(g, svc, fn));
    kv_int(g, &k, "code.lineno", rnd_range(g, 10, 1200));
    kv_thread(g, &k, svc);
    kv_context(g, &k, tr);
    kv_int(g, &k, "app.items", rnd_range(g, 0, 40));
    kv_bool(g, &k, "app.cache.hit", rnd_chance(g, 0.7));
    if (rnd_chance(g, 0.6)) {
        kv_int(g, &k, "enduser.id", tr->user_id);
    }
    if (rnd_chance(g, 0.4)) {
        kv_double(g, &k, "app.score", rnd_unit(g));
    }
    if (rnd_chance(g, 0.3)) {
        kv_str(g, &k, "app.feature_flag", rnd_chance(g, 0.5) ? "new-checkout" : "legacy-pricing");
    }
    if (rnd_chance(g, 0.3)) {
        kv_double(g, &k, "app.budget_ms", (double)rnd_range(g, 50, 2000));
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = unconst(fn);
    }
    if (r.failed) {
        span_fail(g, sp, svc, r.end);
    } else if (rnd_chance(g, 0.08)) {
        span_add_note(g, sp, start + dur / 2);
    }
    span_record(g, sp, svc, SCOPE_APP, start, r.end);
    return r;
}

static call_result gen_server(spangen *g, const gen_trace *tr, int svc, const route_def *route,
                              const char *path, const uint8_t *parent, int caller, uint64_t start,
                              int budget);

/* The CONSUMER span of a message and its local children. */
static call_result gen_consumer(spangen *g, const gen_trace *tr, int svc, const char *topic,
                                const uint8_t *parent, uint64_t start, int budget) {
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_CONSUMER, true);
    uint64_t cursor = start + rnd_logu(g, 20.0 * NS_PER_US, 300.0 * NS_PER_US);
    bool child_failed = false;
    for (int left = budget - 1; left > 0; left--) {
        call_result c = rnd_chance(g, 0.7)
                            ? gen_db(g, tr, svc, sp ? sp->span_id.data : NULL, cursor, false)
                            : gen_internal(g, tr, svc, sp ? sp->span_id.data : NULL, cursor);
        child_failed |= c.failed;
        cursor = c.end + rnd_logu(g, 5.0 * NS_PER_US, 150.0 * NS_PER_US);
    }
    r.end = cursor + rnd_logu(g, 10.0 * NS_PER_US, 200.0 * NS_PER_US);
    r.failed = child_failed && rnd_chance(g, 0.7);

    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "messaging.system", "nats");
    kv_str(g, &k, "messaging.destination.name", topic);
    kv_str(g, &k, "messaging.operation.type", "process");
    kv_str(g, &k, "messaging.operation.name", "process");
    kv_str(g, &k, "messaging.consumer.group.name", svc_defs[svc].name);
    kv_str(g, &k, "messaging.message.id", gprintf(g, "%016llx", (unsigned long long)rnd(g)));
    kv_int(g, &k, "messaging.message.body.size", rnd_range(g, 180, 4000));
    kv_str(g, &k, "server.address", "nats.shop.svc.cluster.local");
    kv_int(g, &k, "server.port", 4222);
    kv_int(g, &k, "net.peer.port", 4222);
    kv_context(g, &k, tr);
    kv_bool(g, &k, "messaging.message.redelivered", rnd_chance(g, 0.02));
    if (rnd_chance(g, 0.5)) {
        kv_thread(g, &k, svc);
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = gprintf(g, "%s process", topic);
    }
    if (r.failed) {
        span_fail(g, sp, svc, r.end);
    }
    span_record(g, sp, svc, SCOPE_MSG, start, r.end);
    return r;
}

/* A PRODUCER span publishing the service's topic; the consumer subtree has
 * budget spans. */
static call_result gen_publish(spangen *g, const gen_trace *tr, int svc, int consumer,
                               const uint8_t *parent, uint64_t start, int budget) {
    const char *topic = svc_defs[svc].topic;
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_PRODUCER, false);
    uint64_t dur = rnd_logu(g, 40.0 * NS_PER_US, 900.0 * NS_PER_US);
    r.end = start + dur;
    /* Delivery is asynchronous: the consumer may well finish after the
     * request that caused it. */
    gen_consumer(g, tr, consumer, topic, sp ? sp->span_id.data : NULL,
                 r.end + rnd_logu(g, 300.0 * NS_PER_US, 40.0 * NS_PER_MS), budget);

    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "messaging.system", "nats");
    kv_str(g, &k, "messaging.destination.name", topic);
    kv_str(g, &k, "messaging.operation.type", "publish");
    kv_str(g, &k, "messaging.operation.name", "publish");
    kv_str(g, &k, "messaging.message.id", gprintf(g, "%016llx", (unsigned long long)rnd(g)));
    kv_int(g, &k, "messaging.message.body.size", rnd_range(g, 180, 4000));
    kv_str(g, &k, "messaging.client.id", cur_instance(g, svc)->pod);
    kv_str(g, &k, "server.address", "nats.shop.svc.cluster.local");
    kv_int(g, &k, "server.port", 4222);
    kv_int(g, &k, "net.peer.port", 4222);
    kv_context(g, &k, tr);
    kv_int(g, &k, "app.event.schema_version", 3);
    if (rnd_chance(g, 0.5)) {
        kv_thread(g, &k, svc);
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = gprintf(g, "%s publish", topic);
    }
    span_record(g, sp, svc, SCOPE_MSG, start, r.end);
    return r;
}

/* An HTTP CLIENT span from svc to callee and the callee's SERVER subtree of
 * budget spans. */
static call_result gen_call(spangen *g, const gen_trace *tr, int svc, int callee,
                            const route_def *route, const char *path, const uint8_t *parent,
                            uint64_t start, int budget) {
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_CLIENT, false);
    uint64_t net_out = rnd_logu(g, 60.0 * NS_PER_US, 1.2 * NS_PER_MS);
    if (path == NULL) {
        path = fill_template(g, route->tmpl);
    }
    call_result s = gen_server(g, tr, callee, route, path, sp ? sp->span_id.data : NULL, svc,
                               start + net_out, budget);
    r.end = s.end + rnd_logu(g, 40.0 * NS_PER_US, 900.0 * NS_PER_US);
    r.status = s.status;
    r.failed = s.status >= 500;

    const char *host = svc_host(g, callee);
    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "http.request.method", route->method);
    kv_str(g, &k, "url.full",
           rnd_chance(g, 0.3) ? gprintf(g, "http://%s:%d%s?include=details&locale=en-US", host,
                                        svc_defs[callee].port, path)
                              : gprintf(g, "http://%s:%d%s", host, svc_defs[callee].port, path));
    kv_str(g, &k, "url.template", route->tmpl);
    kv_str(g, &k, "server.address", host);
    kv_int(g, &k, "server.port", svc_defs[callee].port);
    kv_int(g, &k, "net.peer.port", svc_defs[callee].port);
    kv_str(g, &k, "network.peer.address", cur_instance(g, callee)->ip);
    kv_int(g, &k, "http.response.status_code", s.status);
    kv_str(g, &k, "peer.service", svc_defs[callee].name);
    kv_context(g, &k, tr);
    if (rnd_chance(g, 0.7)) {
        kv_str(g, &k, "network.protocol.version", "1.1");
    }
    if (strcmp(route->method, "POST") == 0 || strcmp(route->method, "PUT") == 0) {
        kv_int(g, &k, "http.request.body.size", rnd_range(g, 60, 6000));
    }
    if (rnd_chance(g, 0.6)) {
        kv_int(g, &k, "http.response.body.size", rnd_range(g, 0, 20000));
    }
    if (rnd_chance(g, 0.5)) {
        kv_int(g, &k, "app.timeout_ms", 2000);
        kv_str(g, &k, "app.circuit_breaker.state", rnd_chance(g, 0.97) ? "closed" : "half_open");
    }
    if (rnd_chance(g, 0.05)) {
        kv_int(g, &k, "http.request.resend_count", rnd_range(g, 1, 2));
    }
    if (s.status >= 400) {
        kv_str(g, &k, "error.type", gprintf(g, "%d", s.status));
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = gprintf(g, "%s %s", route->method, route->tmpl);
    }
    if (s.status >= 400) {
        /* Client spans see 4xx as errors too (HTTP semantic conventions). */
        span_set_error(g, sp, NULL);
    }
    span_record(g, sp, svc, SCOPE_HTTP, start, r.end);
    return r;
}

/* A SERVER span of svc handling route (at the concrete path, NULL: made up
 * here) for caller (-1: a client outside the fleet), with exactly budget spans
 * in its subtree. The gateway ignores route and proxies to an upstream. */
static call_result gen_server(spangen *g, const gen_trace *tr, int svc, const route_def *route,
                              const char *path, const uint8_t *parent, int caller, uint64_t start,
                              int budget) {
    const svc_def *sd = &svc_defs[svc];
    call_result r = {0, 0, false};
    pb_span *sp = span_new(g, tr, parent, KIND_SERVER, parent != NULL);
    const uint8_t *me = sp != NULL ? sp->span_id.data : NULL;
    uint64_t cursor = start + rnd_logu(g, 15.0 * NS_PER_US, 400.0 * NS_PER_US);
    int left = budget - 1;
    bool child_failed = false;
    int child_4xx = 0;

    /* The gateway proxies to one upstream route and names its own span after
     * the public path; it may check a rate limit first. */
    const route_def *upstream = NULL;
    const char *upstream_path = NULL;
    int target = -1;
    if (svc == 0) {
        target = pick_callee(g, 0);
        upstream = target >= 0 ? pick_route(g, target) : NULL;
    }
    const char *method = upstream != NULL ? upstream->method
                         : route != NULL  ? route->method
                                          : "GET";
    const char *tmpl = route != NULL ? route->tmpl : "/";
    if (upstream != NULL) {
        upstream_path = fill_template(g, upstream->tmpl);
        tmpl = gprintf(g, "/api%s", upstream->tmpl);
        path = gprintf(g, "/api%s", upstream_path != NULL ? upstream_path : "");
    } else if (path == NULL) {
        path = fill_template(g, tmpl);
    }
    if (tmpl == NULL || path == NULL) {
        return r;
    }
    bool read_only = strcmp(method, "GET") == 0;

    while (left > 0 && g->err == 0) {
        call_result c;
        int callee = svc == 0 ? target : pick_callee(g, svc);
        int consumer = pick_consumer(g, svc);
        double u = rnd_unit(g);
        if (svc == 0 && upstream != NULL && left >= 2 && !(left >= 3 && u < 0.5)) {
            c = gen_call(g, tr, svc, target, upstream, upstream_path, me, cursor, left - 1);
            left = 0;
        } else if (svc != 0 && callee >= 0 && left >= 2 && u < 0.45) {
            int sub = (int)rnd_range(g, 1, left - 1 < 6 ? left - 1 : 6);
            c = gen_call(g, tr, svc, callee, pick_route(g, callee), NULL, me, cursor, sub);
            left -= 1 + sub;
        } else if (consumer >= 0 && left >= 2 && u < 0.6) {
            int sub = (int)rnd_range(g, 1, left - 1 < 3 ? left - 1 : 3);
            c = gen_publish(g, tr, svc, consumer, me, cursor, sub);
            c.failed = false;
            left -= 1 + sub;
        } else if (sd->db_system != NULL && u < 0.85) {
            c = gen_db(g, tr, svc, me, cursor, read_only);
            left--;
        } else {
            c = gen_internal(g, tr, svc, me, cursor);
            left--;
        }
        child_failed |= c.failed;
        if (c.status >= 400 && c.status < 500) {
            child_4xx = c.status;
        }
        cursor = c.end + rnd_logu(g, 5.0 * NS_PER_US, 250.0 * NS_PER_US);
    }
    r.end = cursor + rnd_logu(g, 20.0 * NS_PER_US, 600.0 * NS_PER_US);

    if ((child_failed && rnd_chance(g, 0.6)) || rnd_chance(g, g->opt.error_rate / 3)) {
        static const int codes[] = {500, 500, 500, 502, 503, 504};
        r.status = PICK(g, codes);
    } else if (child_4xx != 0) {
        r.status = child_4xx;
    } else if (strchr(tmpl, '{') != NULL && strcmp(method, "GET") == 0 && rnd_chance(g, 0.02)) {
        r.status = 404;
    } else if (svc == 0 && rnd_chance(g, 0.004)) {
        r.status = rnd_chance(g, 0.5) ? 401 : 429;
    } else {
        r.status = http_status_ok(method);
    }
    r.failed = r.status >= 500;

    kvs k;
    kvs_begin(g, &k, SG_MAX_SPAN_ATTRS);
    kv_str(g, &k, "http.request.method", method);
    kv_str(g, &k, "http.route", tmpl);
    kv_str(g, &k, "url.path", path);
    kv_str(g, &k, "url.scheme", svc == 0 ? "https" : "http");
    kv_int(g, &k, "http.response.status_code", r.status);
    kv_str(g, &k, "server.address", svc == 0 ? "api.acme-shop.example" : svc_host(g, svc));
    kv_int(g, &k, "server.port", svc == 0 ? 443 : sd->port);
    kv_str(g, &k, "client.address", caller >= 0 ? cur_instance(g, caller)->ip : tr->client_ip);
    kv_int(g, &k, "net.peer.port", rnd_range(g, 32768, 60999));
    if (caller < 0) {
        /* Behind the load balancer the peer is the balancer, not the client
         * (inside the fleet both are the caller, so it is left out). */
        kv_str(g, &k, "network.peer.address", "10.0.0.4");
    }
    kv_str(g, &k, "user_agent.original",
           caller >= 0 ? gprintf(g, "%s/%s", svc_defs[caller].name, svc_defs[caller].version)
                       : tr->user_agent);
    kv_context(g, &k, tr);
    if (rnd_chance(g, 0.8)) {
        kv_str(g, &k, "network.protocol.version", svc == 0 ? "2" : "1.1");
    }
    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        kv_int(g, &k, "http.request.body.size", rnd_range(g, 60, 6000));
    }
    if (rnd_chance(g, 0.9)) {
        kv_int(g, &k, "http.response.body.size", r.status == 204 ? 0 : rnd_range(g, 2, 30000));
    }
    if (rnd_chance(g, 0.7)) {
        kv_int(g, &k, "enduser.id", tr->user_id);
    }
    if (strcmp(method, "GET") == 0 && rnd_chance(g, 0.3)) {
        kv_str(
            g, &k, "url.query",
            gprintf(g, "page=%d&limit=%d", (int)rnd_range(g, 1, 20), rnd_chance(g, 0.5) ? 20 : 50));
    }
    if (rnd_chance(g, 0.4)) {
        kv_bool(g, &k, "app.cache.hit", rnd_chance(g, 0.6));
    } else if (rnd_chance(g, 0.8)) {
        kv_double(g, &k, "app.queue_time_ms", (double)rnd_logu(g, 10.0, 40000.0) / 1000.0);
    }
    if (caller >= 0 && rnd_chance(g, 0.3)) {
        kv_thread(g, &k, svc);
    }
    if (svc == 0) {
        kv_str(g, &k, "app.api.version", rnd_chance(g, 0.9) ? "v2" : "v1");
    }
    if (r.status >= 500) {
        kv_str(g, &k, "error.type", gprintf(g, "%d", r.status));
    }
    span_set_attrs(sp, &k);
    if (sp != NULL) {
        sp->name = gprintf(g, "%s %s", method, tmpl);
    }
    if (r.failed) {
        if (child_failed) {
            span_set_error(g, sp, "upstream dependency failed");
        } else {
            span_fail(g, sp, svc, r.end - (r.end - start) / 10);
        }
    } else if (rnd_chance(g, 0.1)) {
        span_add_note(g, sp, start + (r.end - start) / 3);
    }
    span_record(g, sp, svc, SCOPE_HTTP, start, r.end);
    return r;
}

static void gen_one_trace(spangen *g, int nspans) {
    gen_trace tr;
    tr.trace_id = galloc(g, 16);
    if (tr.trace_id == NULL) {
        return;
    }
    rnd_bytes(g, tr.trace_id, 16);
    tr.trace_id[15] |= 1;
    tr.request_id = gprintf(g, "req-%016llx", (unsigned long long)rnd(g));
    /* Tenants are skewed: a few big ones send most traffic. */
    double u = rnd_unit(g);
    tr.tenant = gprintf(g, "tenant-%04d", (int)(500.0 * u * u * u));
    tr.user_agent = PICK(g, user_agents);
    tr.client_ip = gprintf(g, "%d.%d.%d.%d", (int)rnd_range(g, 11, 223), (int)rnd_range(g, 0, 255),
                           (int)rnd_range(g, 0, 255), (int)rnd_range(g, 1, 254));
    tr.user_id = rnd_range(g, 1000, 2000000);

    uint64_t start = g->clock;
    g->clock += rnd_logu(g, 20.0 * NS_PER_US, 3.0 * NS_PER_MS);
    int root = 0;
    if (rnd_chance(g, 0.15)) {
        root = (int)rnd_range(g, 1, (int64_t)g->nsvc - 1);
    }
    gen_server(g, &tr, root, root == 0 ? NULL : pick_route(g, root), NULL, NULL, -1, start, nspans);
    g->stats.traces++;
}

/* --- resources and assembly ---------------------------------------------- */

static pb_resource *make_resource(spangen *g, int svc) {
    const svc_def *sd = &svc_defs[svc];
    const gen_instance *in = cur_instance(g, svc);
    pb_resource *res = galloc(g, sizeof(*res));
    if (res == NULL) {
        return NULL;
    }
    opentelemetry__proto__resource__v1__resource__init(res);
    kvs k;
    kvs_begin(g, &k, 16);
    kv_str(g, &k, "service.name", sd->name);
    kv_str(g, &k, "service.namespace", "shop");
    kv_str(g, &k, "service.version", sd->version);
    kv_str(g, &k, "service.instance.id", in->instance_id);
    kv_str(g, &k, "host.name", in->host);
    kv_str(g, &k, "host.arch", "amd64");
    kv_str(g, &k, "os.type", "linux");
    kv_int(g, &k, "process.pid", in->pid);
    kv_str(g, &k, "process.runtime.name", lang_runtimes[sd->lang]);
    kv_str(g, &k, "telemetry.sdk.name", "opentelemetry");
    kv_str(g, &k, "telemetry.sdk.language", lang_names[sd->lang]);
    kv_str(g, &k, "telemetry.sdk.version", lang_sdk_versions[sd->lang]);
    kv_str(g, &k, "deployment.environment", "production");
    kv_str(g, &k, "k8s.namespace.name", "shop");
    kv_str(g, &k, "k8s.pod.name", in->pod);
    kv_str(g, &k, "cloud.region", "eu-west-1");
    res->attributes = k.v;
    res->n_attributes = k.n;
    return res;
}

static pb_scope *make_scope(spangen *g, int svc, int scope) {
    pb_scope *sc = galloc(g, sizeof(*sc));
    if (sc == NULL) {
        return NULL;
    }
    opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
    if (scope_names[scope] != NULL) {
        sc->name = unconst(scope_names[scope]);
        sc->version = unconst("2.10.0");
    } else {
        sc->name = unconst(svc_defs[svc].name);
        sc->version = unconst(svc_defs[svc].version);
    }
    return sc;
}

static pb_request *assemble(spangen *g) {
    size_t count[SG_MAX_SVC][NSCOPES];
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < g->nrecs; i++) {
        count[g->recs[i].svc][g->recs[i].scope]++;
    }
    size_t nres = 0;
    for (uint32_t s = 0; s < g->nsvc; s++) {
        for (int c = 0; c < NSCOPES; c++) {
            if (count[s][c] != 0) {
                nres++;
                break;
            }
        }
    }
    pb_request *req = galloc(g, sizeof(*req));
    pb_rspans **rss = galloc(g, (nres ? nres : 1) * sizeof(*rss));
    if (req == NULL || rss == NULL) {
        return NULL;
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    size_t r = 0;
    for (uint32_t s = 0; s < g->nsvc && g->err == 0; s++) {
        size_t nsc = 0;
        for (int c = 0; c < NSCOPES; c++) {
            nsc += count[s][c] != 0;
        }
        if (nsc == 0) {
            continue;
        }
        pb_rspans *rs = galloc(g, sizeof(*rs));
        pb_sspans **sss = galloc(g, nsc * sizeof(*sss));
        if (rs == NULL || sss == NULL) {
            return NULL;
        }
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rs->resource = make_resource(g, (int)s);
        rs->schema_url = unconst("https://opentelemetry.io/schemas/1.26.0");
        rs->scope_spans = sss;
        rs->n_scope_spans = nsc;
        size_t j = 0;
        for (int c = 0; c < NSCOPES; c++) {
            if (count[s][c] == 0) {
                continue;
            }
            pb_sspans *ss = galloc(g, sizeof(*ss));
            pb_span **spans = galloc(g, count[s][c] * sizeof(*spans));
            if (ss == NULL || spans == NULL) {
                return NULL;
            }
            opentelemetry__proto__trace__v1__scope_spans__init(ss);
            ss->scope = make_scope(g, (int)s, c);
            ss->spans = spans;
            for (size_t i = 0; i < g->nrecs; i++) {
                if (g->recs[i].svc == s && g->recs[i].scope == c) {
                    spans[ss->n_spans++] = g->recs[i].span;
                }
            }
            sss[j++] = ss;
        }
        rss[r++] = rs;
    }
    req->resource_spans = rss;
    req->n_resource_spans = r;
    return g->err == 0 ? req : NULL;
}

/* --- public API ------------------------------------------------------------ */

void spangen_options_init(spangen_options *o) {
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->min_trace_spans = 3;
    o->max_trace_spans = 12;
    o->error_rate = 0.05;
}

int spangen_create(const spangen_options *o, spangen **out) {
    spangen *g = NULL;
    int rc = 0;
    if (o->nservices != 0 && (o->nservices < 5 || o->nservices > SG_MAX_SVC)) {
        rc = SL_EINVAL;
        goto fail;
    }
    if (o->min_trace_spans < 1 || o->max_trace_spans < o->min_trace_spans ||
        o->max_trace_spans > 64 || !(o->error_rate >= 0.0 && o->error_rate <= 1.0)) {
        rc = SL_EINVAL;
        goto fail;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    g->opt = *o;
    uint64_t x = o->seed;
    for (int i = 0; i < 4; i++) {
        g->s[i] = splitmix64(&x);
    }
    g->nsvc = o->nservices != 0 ? o->nservices : (uint32_t)rnd_range(g, 5, SG_MAX_SVC);
    g->clock = o->start_unix_nano != 0 ? o->start_unix_nano : sl_now_unix_nano();
    for (uint32_t s = 0; s < g->nsvc; s++) {
        g->ninst[s] = (uint8_t)rnd_range(g, 2, SG_MAX_INST);
        for (int i = 0; i < g->ninst[s]; i++) {
            gen_instance *in = &g->inst[s][i];
            uint8_t b[16];
            rnd_bytes(g, b, sizeof(b));
            char hex[33];
            sl_hex_encode(b, sizeof(b), hex);
            snprintf(in->instance_id, sizeof(in->instance_id), "%.8s-%.4s-4%.3s-a%.3s-%.12s", hex,
                     hex + 8, hex + 12, hex + 15, hex + 18);
            int third = (int)rnd_range(g, 1, 30);
            int fourth = (int)rnd_range(g, 2, 250);
            snprintf(in->ip, sizeof(in->ip), "10.0.%d.%d", third, fourth);
            snprintf(in->host, sizeof(in->host), "ip-10-0-%d-%d.ec2.internal", third, fourth);
            snprintf(in->pod, sizeof(in->pod), "%s-%.10s-%.5s", svc_defs[s].name, hex + 20,
                     hex + 2);
            in->pid = rnd_range(g, 1, 64);
        }
    }
    sl_arena_init(&g->own, 0);
    *out = g;
    return 0;
fail:
    free(g);
    *out = NULL;
    return rc;
}

void spangen_destroy(spangen *g) {
    if (g == NULL) {
        return;
    }
    sl_arena_free(&g->own);
    free(g);
}

int spangen_request_msg(spangen *g, size_t nspans, sl_arena *arena, pb_request **out) {
    int rc = 0;
    pb_request *req = NULL;
    if (nspans < 1 || nspans > 100000) {
        rc = SL_EINVAL;
        goto out;
    }
    g->arena = arena;
    g->err = 0;
    g->nrecs = 0;
    g->caprecs = nspans;
    g->recs = galloc(g, nspans * sizeof(*g->recs));
    for (uint32_t s = 0; s < g->nsvc; s++) {
        g->cur_inst[s] = (uint8_t)rnd_below(g, g->ninst[s]);
    }
    size_t left = nspans;
    int lo = (int)g->opt.min_trace_spans;
    int hi = (int)g->opt.max_trace_spans;
    while (left > 0 && g->err == 0) {
        int n;
        if (left <= (size_t)hi) {
            n = (int)left;
        } else {
            n = (int)rnd_range(g, lo, hi);
            /* Never leave a remainder too small for a whole trace. */
            if (left - (size_t)n < (size_t)lo) {
                n = (int)left - lo;
            }
        }
        gen_one_trace(g, n);
        left -= (size_t)n;
    }
    if (g->err == 0 && g->nrecs != nspans) {
        g->err = SL_EINVAL; /* a bug in the budget accounting */
    }
    if (g->err == 0) {
        req = assemble(g);
    }
    rc = g->err;
    if (rc == 0) {
        g->stats.requests++;
        g->stats.spans += nspans;
        for (size_t i = 0; i < g->nrecs; i++) {
            const pb_span *sp = g->recs[i].span;
            g->stats.events += sp->n_events;
            g->stats.attributes += sp->n_attributes;
            g->stats.error_spans +=
                sp->status != NULL &&
                sp->status->code ==
                    OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        }
        *out = req;
    }
out:
    g->arena = NULL;
    g->recs = NULL;
    return rc;
}

int spangen_request(spangen *g, size_t nspans, sl_buf *out) {
    pb_request *req = NULL;
    sl_arena_reset(&g->own);
    int rc = spangen_request_msg(g, nspans, &g->own, &req);
    if (rc != 0) {
        goto out;
    }
    size_t size =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            req);
    rc = sl_buf_reserve(out, size);
    if (rc != 0) {
        goto out;
    }
    size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(
        req, out->data + out->len);
    out->len += n;
out:
    sl_arena_reset(&g->own);
    return rc;
}

void spangen_get_stats(const spangen *g, spangen_stats *out) {
    *out = g->stats;
}

/* --- wire helpers ---------------------------------------------------------- */

/* Reads one field header and, for length-delimited fields, the bounds of its
 * payload; other wire types are skipped. Returns 0 or SL_EDECODE. */
static int wire_next(const uint8_t **p, const uint8_t *end, uint32_t *field, const uint8_t **sub,
                     const uint8_t **sub_end) {
    uint64_t tag = 0;
    uint64_t v = 0;
    if (sl_get_uvarint(p, end, &tag) != 0) {
        return SL_EDECODE;
    }
    *field = (uint32_t)(tag >> 3);
    *sub = NULL;
    *sub_end = NULL;
    switch (tag & 7) {
    case 0:
        return sl_get_uvarint(p, end, &v) == 0 ? 0 : SL_EDECODE;
    case 1:
        if (end - *p < 8) {
            return SL_EDECODE;
        }
        *p += 8;
        return 0;
    case 2:
        if (sl_get_uvarint(p, end, &v) != 0 || v > (uint64_t)(end - *p)) {
            return SL_EDECODE;
        }
        *sub = *p;
        *sub_end = *p + v;
        *p += v;
        return 0;
    case 5:
        if (end - *p < 4) {
            return SL_EDECODE;
        }
        *p += 4;
        return 0;
    default:
        return SL_EDECODE;
    }
}

/* Walks ExportTraceServiceRequest.resource_spans (1) > ResourceSpans.scope_spans
 * (2) > ScopeSpans.spans (2) and records id offsets: with all_ids, both halves
 * of trace_id (1) and span_id (2) and parent_span_id (4); without, the start of
 * each 16-byte trace_id. */
static int find_ids(const uint8_t *body, size_t size, size_t *offs, size_t max, size_t *nids,
                    bool all_ids) {
    const uint8_t *p = body;
    const uint8_t *end = body + size;
    size_t n = 0;
    int rc = 0;
    uint32_t f;
    const uint8_t *a;
    const uint8_t *ae;
    while (p < end && rc == 0) {
        rc = wire_next(&p, end, &f, &a, &ae);
        if (rc != 0 || f != 1 || a == NULL) {
            continue;
        }
        while (a < ae && rc == 0) {
            const uint8_t *b;
            const uint8_t *be;
            rc = wire_next(&a, ae, &f, &b, &be);
            if (rc != 0 || f != 2 || b == NULL) {
                continue;
            }
            while (b < be && rc == 0) {
                const uint8_t *c;
                const uint8_t *ce;
                rc = wire_next(&b, be, &f, &c, &ce);
                if (rc != 0 || f != 2 || c == NULL) {
                    continue;
                }
                while (c < ce && rc == 0) {
                    const uint8_t *d;
                    const uint8_t *de;
                    rc = wire_next(&c, ce, &f, &d, &de);
                    /* trace_id (1, both halves of its 16 bytes: salting only
                     * one half would leave resent copies of a trace sorting
                     * next to each other), span_id (2), parent_span_id (4) */
                    bool id = d != NULL &&
                              ((f == 1 && de - d == 16) || ((f == 2 || f == 4) && de - d == 8));
                    if (!all_ids) {
                        id = id && f == 1;
                    }
                    if (rc == 0 && id && f == 1) {
                        if (n >= max) {
                            rc = SL_ETOOBIG;
                        } else {
                            offs[n++] = (size_t)(d - body);
                        }
                    }
                    if (rc == 0 && id && all_ids) {
                        if (n >= max) {
                            rc = SL_ETOOBIG;
                        } else {
                            offs[n++] = (size_t)(de - 8 - body);
                        }
                    }
                }
            }
        }
    }
    if (rc == 0) {
        *nids = n;
    }
    return rc;
}

int spangen_find_trace_ids(const uint8_t *body, size_t size, size_t *offs, size_t max,
                           size_t *nids) {
    return find_ids(body, size, offs, max, nids, false);
}

int spangen_find_ids(const uint8_t *body, size_t size, size_t *offs, size_t max, size_t *nids) {
    return find_ids(body, size, offs, max, nids, true);
}

void spangen_rekey(uint8_t *body, const size_t *offs, size_t n, uint64_t salt) {
    for (size_t i = 0; i < n; i++) {
        uint8_t *id = body + offs[i] + 8;
        for (int j = 0; j < 8; j++) {
            id[j] ^= (uint8_t)(salt >> (8 * j));
        }
    }
}

void spangen_rekey8(uint8_t *body, const size_t *offs, size_t n, uint64_t salt) {
    for (size_t i = 0; i < n; i++) {
        uint8_t *id = body + offs[i];
        for (int j = 0; j < 8; j++) {
            id[j] ^= (uint8_t)(salt >> (8 * j));
        }
    }
}
