/*
 * loggen (see loggen.h). Each service has log statements written as format
 * strings whose conversions draw realistic values: %r route, %s HTTP status,
 * %d duration in ms, %u user name, %i numeric id, %x request id (8 random
 * hex digits), %a amount, %p IPv4 address, %k SKU, %n small count, %e error
 * text. The i-th value also becomes the i-th attribute (keys per statement),
 * typed as the value is (ints, doubles, strings). A "request" is 2-6 records
 * of one service sharing a trace id (and one or two span ids), a few ms
 * apart; background records have no trace context.
 *
 * Thread: the generator's owner.
 */
#include "loggen.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

#include "sl_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stmt {
    int severity; /* OTLP severity number */
    int traced;   /* 1: request-scoped (carries trace context) */
    const char *fmt;
    const char *keys[4];
} stmt;

typedef struct svc {
    const char *name;
    const char *lang;
    const stmt *stmts;
    size_t nstmts;
} svc;

static const stmt g_gateway[] = {
    {9, 1, "%r %s %dms", {"http.route", "http.status_code", "duration_ms"}},
    {9, 1, "proxying request %x to %r", {"request.id", "upstream.route"}},
    {13, 1, "slow upstream response for %r: %dms", {"http.route", "duration_ms"}},
    {13, 1, "rate limit reached for client %p (%n requests in window)", {"client.ip", "count"}},
    {17,
     1,
     "upstream %r failed with status %s after %dms",
     {"http.route", "http.status_code", "duration_ms"}},
    {5, 0, "health check ok (%n backends)", {"backends"}},
};
static const stmt g_users[] = {
    {9, 1, "user %u logged in from %p", {"user.name", "client.ip"}},
    {9, 1, "loaded profile for user %i in %dms", {"user.id", "duration_ms"}},
    {9, 1, "user %u updated email preferences", {"user.name"}},
    {13, 1, "failed login attempt %n for user %u from %p", {"attempt", "user.name", "client.ip"}},
    {5, 1, "db query SELECT * FROM users WHERE id = $1 took %dms", {"db.duration_ms"}},
    {5, 0, "cache refresh: %n entries, %n evicted", {"entries", "evicted"}},
};
static const stmt g_orders[] = {
    {9,
     1,
     "order %i created for customer %u: %n items, total %a EUR",
     {"order.id", "user.name", "items", "amount"}},
    {9, 1, "order %i status changed to shipped", {"order.id"}},
    {9, 1, "reserved stock for order %i (sku %k, qty %n)", {"order.id", "sku", "qty"}},
    {13, 1, "order %i is waiting for payment for %dms", {"order.id", "wait_ms"}},
    {17, 1, "cannot create order for customer %u: %e", {"user.name", "error"}},
    {5, 0, "outbox flushed %n events in %dms", {"events", "duration_ms"}},
};
static const stmt g_payments[] = {
    {9,
     1,
     "payment %x authorized for order %i amount %a EUR",
     {"payment.id", "order.id", "amount"}},
    {9, 1, "charging card ending %n for order %i", {"card.last4", "order.id"}},
    {13, 1, "payment provider latency %dms above threshold", {"duration_ms"}},
    {17, 1, "payment %x declined for order %i: %e", {"payment.id", "order.id", "error"}},
    {5, 0, "reconciliation batch %i processed %n transactions", {"batch.id", "count"}},
};
static const stmt g_inventory[] = {
    {9, 1, "stock level for %k is %n", {"sku", "stock"}},
    {9, 1, "reserved %n units of %k", {"qty", "sku"}},
    {13, 1, "low stock for %k: %n left", {"sku", "stock"}},
    {5, 0, "warehouse sync completed in %dms (%n skus)", {"duration_ms", "skus"}},
};
static const stmt g_auth[] = {
    {9, 1, "issued token for user %u, expires in %n s", {"user.name", "ttl_s"}},
    {9, 1, "validated token %x for %r", {"token.id", "http.route"}},
    {13, 1, "token %x expired %n s ago", {"token.id", "age_s"}},
    {17, 1, "signature verification failed for token %x: %e", {"token.id", "error"}},
    {5, 0, "rotated signing keys (%n active)", {"keys"}},
};
static const stmt g_notify[] = {
    {9, 1, "sent email to %u (template order_confirmation) in %dms", {"user.name", "duration_ms"}},
    {9, 1, "webhook delivered to %p with status %s", {"target.ip", "http.status_code"}},
    {13,
     1,
     "webhook to %p failed with status %s, retry %n",
     {"target.ip", "http.status_code", "retry"}},
    {5, 0, "queue depth %n, consumers %n", {"queue.depth", "consumers"}},
};
static const stmt g_search[] = {
    {9, 1, "query for %u returned %n hits in %dms", {"user.name", "hits", "duration_ms"}},
    {5, 1, "index shard %n answered in %dms", {"shard", "duration_ms"}},
    {13, 1, "search timeout after %dms on shard %n", {"duration_ms", "shard"}},
    {5, 0, "merged %n segments in %dms", {"segments", "duration_ms"}},
};

#define SVC(n, l, s)                                                                               \
    { n, l, s, sizeof(s) / sizeof(s[0]) }
static const svc g_svcs[] = {
    SVC("gateway", "go", g_gateway),          SVC("users", "java", g_users),
    SVC("orders", "java", g_orders),          SVC("payments", "python", g_payments),
    SVC("inventory", "rust", g_inventory),    SVC("auth", "go", g_auth),
    SVC("notifications", "nodejs", g_notify), SVC("search", "java", g_search),
};
#define NSVC (sizeof(g_svcs) / sizeof(g_svcs[0]))

static const char *const g_names[] = {
    "alice",   "bob",  "carol",  "dave",  "erin",   "frank", "grace", "heidi",  "ivan",   "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara",
    "zoe",     "liam", "noah",   "emma",  "ava",    "mia",   "lucas", "ella",   "leo",    "nora"};
static const char *const g_routes[] = {
    "/api/v1/users/{id}", "/api/v1/orders",   "/api/v1/orders/{id}",     "/api/v1/cart",
    "/api/v1/search",     "/api/v1/payments", "/api/v1/inventory/{sku}", "/health",
    "/api/v1/login"};
static const char *const g_errors[] = {"connection reset by peer",
                                       "context deadline exceeded",
                                       "insufficient funds",
                                       "card expired",
                                       "upstream returned 503",
                                       "invalid signature",
                                       "duplicate key value violates unique constraint"};
static const int g_statuses[] = {200, 200, 200, 200, 201, 204, 304, 400, 401, 404, 500, 503};

struct loggen {
    uint64_t rng;
    uint64_t now;
    /* the request in progress: service, trace, span, records left, and the
     * values its records share (a request is about one user, one order...) */
    int cur_svc;
    int left;
    uint8_t trace[16];
    uint8_t span[8];
    bool in_req;
    uint64_t ctx[8]; /* random draws behind %u %i %x %p %k, and the thread */
    sl_resource res[NSVC];
    sl_attr res_attrs[NSVC][6];
    char res_text[NSVC][3][48];
};

static uint64_t rnd(loggen *g) {
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t below(loggen *g, uint64_t n) {
    return rnd(g) % n;
}

/* Log-uniformish duration in ms: mostly small, sometimes large. */
static int64_t duration_ms(loggen *g) {
    uint64_t r = below(g, 100);
    return r < 70   ? (int64_t)(1 + below(g, 40))
           : r < 95 ? (int64_t)(40 + below(g, 400))
                    : (int64_t)(400 + below(g, 5000));
}

int loggen_create(uint64_t seed, uint64_t start_unix_nano, loggen **out) {
    loggen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return SL_ENOMEM;
    }
    g->rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    g->now = start_unix_nano ? start_unix_nano : sl_now_unix_nano();
    for (size_t i = 0; i < NSVC; i++) {
        snprintf(g->res_text[i][0], 48, "%s-7d9f8c%02zu-x%zuq", g_svcs[i].name, i, i * 7 % 10);
        snprintf(g->res_text[i][1], 48, "node-%zu.eu-west-1.internal", i % 3);
        snprintf(g->res_text[i][2], 48, "1.%zu.%zu", i % 4, i * 3 % 11);
        sl_attr *a = g->res_attrs[i];
        a[0] = (sl_attr){SL_STR_LIT("service.name"),
                         {.type = SL_VAL_STR, .v.s = sl_str_c(g_svcs[i].name)}};
        a[1] = (sl_attr){SL_STR_LIT("service.version"),
                         {.type = SL_VAL_STR, .v.s = sl_str_c(g->res_text[i][2])}};
        a[2] = (sl_attr){SL_STR_LIT("k8s.pod.name"),
                         {.type = SL_VAL_STR, .v.s = sl_str_c(g->res_text[i][0])}};
        a[3] = (sl_attr){SL_STR_LIT("host.name"),
                         {.type = SL_VAL_STR, .v.s = sl_str_c(g->res_text[i][1])}};
        a[4] = (sl_attr){SL_STR_LIT("deployment.environment"),
                         {.type = SL_VAL_STR, .v.s = SL_STR_LIT("production")}};
        a[5] = (sl_attr){SL_STR_LIT("telemetry.sdk.language"),
                         {.type = SL_VAL_STR, .v.s = sl_str_c(g_svcs[i].lang)}};
        g->res[i] = (sl_resource){sl_str_c(g_svcs[i].name), a, 6, 0};
    }
    *out = g;
    return 0;
}

void loggen_destroy(loggen *g) {
    free(g);
}

static const char *const g_sev_text[] = {"",     "TRACE", "", "", "",     "DEBUG", "", "", "",
                                         "INFO", "",      "", "", "WARN", "",      "", "", "ERROR"};

/* A value for conversion slot k: the request's while one is in progress
 * (its records talk about the same user, order, client...), else fresh. */
static uint64_t draw(loggen *g, int k) {
    return g->in_req ? g->ctx[k] : rnd(g);
}

static const char *const g_components[] = {"Api",    "Service", "Repository",
                                           "Client", "Worker",  "Scheduler"};

/* Fills r from statement st (number si of its service's): body text and
 * attributes in a, plus the logger (code.namespace) and thread.name. */
static int fill(loggen *g, const svc *sv, size_t si, sl_arena *a, sl_log_record *r) {
    const stmt *st = &sv->stmts[si];
    char body[512];
    size_t bl = 0;
    sl_attr *attrs = sl_arena_calloc(a, 6, sizeof(sl_attr));
    if (attrs == NULL) {
        return SL_ENOMEM;
    }
    uint32_t na = 0;
    for (const char *f = st->fmt; *f != '\0' && bl < sizeof(body) - 64; f++) {
        if (*f != '%') {
            body[bl++] = *f;
            continue;
        }
        char c = *++f;
        char tmp[64];
        sl_value v = {.type = SL_VAL_STR};
        int k = 0;
        switch (c) {
        case 'r':
            k = snprintf(tmp, sizeof(tmp), "%s",
                         g_routes[below(g, sizeof(g_routes) / sizeof(g_routes[0]))]);
            break;
        case 's':
            v = (sl_value){.type = SL_VAL_INT,
                           .v.i = g_statuses[below(g, sizeof(g_statuses) / sizeof(g_statuses[0]))]};
            break;
        case 'd':
            v = (sl_value){.type = SL_VAL_INT, .v.i = duration_ms(g)};
            break;
        case 'u':
            k = snprintf(tmp, sizeof(tmp), "%s",
                         g_names[draw(g, 0) % (sizeof(g_names) / sizeof(g_names[0]))]);
            break;
        case 'i':
            v = (sl_value){.type = SL_VAL_INT, .v.i = (int64_t)(100000 + draw(g, 1) % 900000)};
            break;
        case 'x':
            k = snprintf(tmp, sizeof(tmp), "%08llx",
                         (unsigned long long)(draw(g, 2) & 0xffffffffu));
            break;
        case 'a':
            v = (sl_value){.type = SL_VAL_DOUBLE, .v.d = (double)(100 + below(g, 50000)) / 100.0};
            break;
        case 'p': {
            uint64_t ip = draw(g, 3);
            k = snprintf(tmp, sizeof(tmp), "10.%u.%u.%u", (unsigned)(ip % 4),
                         (unsigned)((ip >> 8) % 256), (unsigned)((ip >> 16) % 256));
            break;
        }
        case 'k':
            k = snprintf(tmp, sizeof(tmp), "SKU-%05u", (unsigned)(draw(g, 4) % 3000));
            break;
        case 'n':
            v = (sl_value){.type = SL_VAL_INT, .v.i = (int64_t)below(g, 100)};
            break;
        default:
            k = snprintf(tmp, sizeof(tmp), "%s",
                         g_errors[below(g, sizeof(g_errors) / sizeof(g_errors[0]))]);
            break;
        }
        if (v.type == SL_VAL_INT) {
            k = snprintf(tmp, sizeof(tmp), "%lld", (long long)v.v.i);
        } else if (v.type == SL_VAL_DOUBLE) {
            k = snprintf(tmp, sizeof(tmp), "%.2f", v.v.d);
        } else {
            char *s = sl_arena_strndup(a, tmp, (size_t)k);
            if (s == NULL) {
                return SL_ENOMEM;
            }
            v.v.s = (sl_str){s, (size_t)k};
        }
        memcpy(body + bl, tmp, (size_t)k);
        bl += (size_t)k;
        if (na < 4 && st->keys[na] != NULL) {
            attrs[na] = (sl_attr){sl_str_c(st->keys[na]), v};
            na++;
        }
    }
    char logger[64], thread[32];
    int ll = snprintf(logger, sizeof(logger), "com.acme.%s.%s", sv->name, g_components[si % 6]);
    int tl = g->in_req
                 ? snprintf(thread, sizeof(thread), "http-nio-8080-exec-%u",
                            (unsigned)(g->ctx[5] % 24 + 1))
                 : snprintf(thread, sizeof(thread), "scheduler-%u", (unsigned)below(g, 4) + 1);
    char *lg = sl_arena_strndup(a, logger, (size_t)ll);
    char *th = sl_arena_strndup(a, thread, (size_t)tl);
    char *b = sl_arena_strndup(a, body, bl);
    if (b == NULL || lg == NULL || th == NULL) {
        return SL_ENOMEM;
    }
    attrs[na++] =
        (sl_attr){SL_STR_LIT("code.namespace"), {.type = SL_VAL_STR, .v.s = {lg, (size_t)ll}}};
    attrs[na++] =
        (sl_attr){SL_STR_LIT("thread.name"), {.type = SL_VAL_STR, .v.s = {th, (size_t)tl}}};
    r->body = (sl_value){.type = SL_VAL_STR, .v.s = {b, bl}};
    r->attrs = na > 0 ? attrs : NULL;
    r->nattrs = na;
    r->severity_number = st->severity;
    r->severity_text = sl_str_c(g_sev_text[st->severity]);
    return 0;
}

int loggen_records(loggen *g, size_t n, sl_arena *a, sl_log_record **out) {
    sl_log_record *recs = sl_arena_calloc(a, n ? n : 1, sizeof(*recs));
    if (recs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sl_log_record *r = &recs[i];
        /* ~5 000 records/s over the fleet, microsecond clocks. */
        g->now += (50 + below(g, 300)) * 1000;
        const svc *sv;
        size_t si;
        bool traced = below(g, 100) < 60;
        if (traced || g->left > 0) {
            if (g->left == 0) {
                g->cur_svc = (int)below(g, NSVC);
                g->left = 3 + (int)below(g, 6);
                for (int k = 0; k < 16; k += 8) {
                    uint64_t x = rnd(g);
                    memcpy(g->trace + k, &x, 8);
                }
                uint64_t x = rnd(g);
                memcpy(g->span, &x, 8);
                for (int k = 0; k < 8; k++) {
                    g->ctx[k] = rnd(g);
                }
            } else if (below(g, 4) == 0) {
                uint64_t x = rnd(g); /* a child span logs too */
                memcpy(g->span, &x, 8);
            }
            g->left--;
            g->in_req = true;
            sv = &g_svcs[g->cur_svc];
            do {
                si = below(g, sv->nstmts);
            } while (!sv->stmts[si].traced);
            memcpy(r->trace_id, g->trace, 16);
            memcpy(r->span_id, g->span, 8);
            r->flags = 1;
        } else {
            g->in_req = false;
            sv = &g_svcs[below(g, NSVC)];
            do {
                si = below(g, sv->nstmts);
            } while (sv->stmts[si].traced);
        }
        r->time_unix_nano = g->now;
        /* The SDK stamps observed time as it emits: a few µs later. */
        r->observed_unix_nano = g->now + below(g, 20) * 1000;
        r->resource = &g->res[sv - g_svcs];
        r->scope_name = SL_STR_LIT("app.logger");
        int rc = fill(g, sv, si, a, r);
        if (rc != 0) {
            return rc;
        }
    }
    *out = recs;
    return 0;
}

/* --- protobuf --------------------------------------------------------------- */

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

static void to_any(const sl_value *v, pb_any *o) {
    opentelemetry__proto__common__v1__any_value__init(o);
    switch (v->type) {
    case SL_VAL_INT:
        o->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        o->int_value = v->v.i;
        break;
    case SL_VAL_DOUBLE:
        o->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        o->double_value = v->v.d;
        break;
    case SL_VAL_BOOL:
        o->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        o->bool_value = v->v.b;
        break;
    default:
        o->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        /* protobuf-c wants NUL-terminated strings: the generator's are. */
        o->string_value = (char *)(uintptr_t)v->v.s.ptr;
        break;
    }
}

static int to_kvs(sl_arena *a, const sl_attr *attrs, uint32_t n, pb_kv ***out) {
    pb_kv **kvs = sl_arena_calloc(a, n ? n : 1, sizeof(*kvs));
    pb_kv *kv = sl_arena_calloc(a, n ? n : 1, sizeof(*kv));
    pb_any *av = sl_arena_calloc(a, n ? n : 1, sizeof(*av));
    if (kvs == NULL || kv == NULL || av == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        kv[i].key = (char *)(uintptr_t)attrs[i].key.ptr;
        to_any(&attrs[i].val, &av[i]);
        kv[i].value = &av[i];
        kvs[i] = &kv[i];
    }
    *out = kvs;
    return 0;
}

int loggen_pack(const sl_log_record *recs, size_t n, sl_buf *out) {
    typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_rl;
    typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_sl;
    typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_lr;
    sl_arena a;
    sl_arena_init(&a, 0);
    int rc = SL_ENOMEM;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req;
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
    pb_rl **rls = sl_arena_calloc(&a, n ? n : 1, sizeof(*rls));
    pb_lr *lrs = sl_arena_calloc(&a, n ? n : 1, sizeof(*lrs));
    pb_any *bodies = sl_arena_calloc(&a, n ? n : 1, sizeof(*bodies));
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = (char *)(uintptr_t) "app.logger";
    if (rls == NULL || lrs == NULL || bodies == NULL) {
        goto out;
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && recs[j].resource == recs[i].resource) {
            j++;
        }
        pb_rl *rl = sl_arena_calloc(&a, 1, sizeof(*rl));
        pb_sl *sl = sl_arena_calloc(&a, 1, sizeof(*sl));
        Opentelemetry__Proto__Resource__V1__Resource *res = sl_arena_calloc(&a, 1, sizeof(*res));
        pb_sl **sls = sl_arena_calloc(&a, 1, sizeof(*sls));
        pb_lr **lrp = sl_arena_calloc(&a, j - i, sizeof(*lrp));
        if (rl == NULL || sl == NULL || res == NULL || sls == NULL || lrp == NULL) {
            goto out;
        }
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        opentelemetry__proto__resource__v1__resource__init(res);
        if (to_kvs(&a, recs[i].resource->attrs, recs[i].resource->nattrs, &res->attributes) != 0) {
            goto out;
        }
        res->n_attributes = recs[i].resource->nattrs;
        for (size_t k = i; k < j; k++) {
            const sl_log_record *r = &recs[k];
            pb_lr *lr = &lrs[k];
            opentelemetry__proto__logs__v1__log_record__init(lr);
            lr->time_unix_nano = r->time_unix_nano;
            lr->observed_time_unix_nano = r->observed_unix_nano;
            lr->severity_number =
                (Opentelemetry__Proto__Logs__V1__SeverityNumber)r->severity_number;
            lr->severity_text = (char *)(uintptr_t)r->severity_text.ptr;
            to_any(&r->body, &bodies[k]);
            lr->body = &bodies[k];
            if (to_kvs(&a, r->attrs, r->nattrs, &lr->attributes) != 0) {
                goto out;
            }
            lr->n_attributes = r->nattrs;
            lr->flags = r->flags;
            if (!sl_is_zero(r->trace_id, 16)) {
                lr->trace_id = (ProtobufCBinaryData){16, (uint8_t *)(uintptr_t)r->trace_id};
                lr->span_id = (ProtobufCBinaryData){8, (uint8_t *)(uintptr_t)r->span_id};
            }
            lrp[k - i] = lr;
        }
        sl->scope = &scope;
        sl->log_records = lrp;
        sl->n_log_records = j - i;
        sls[0] = sl;
        rl->resource = res;
        rl->scope_logs = sls;
        rl->n_scope_logs = 1;
        rls[req.n_resource_logs++] = rl;
        i = j;
    }
    req.resource_logs = rls;
    size_t size =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(
            &req);
    if (sl_buf_reserve(out, size) == 0) {
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(
            &req, out->data + out->len);
        out->len += size;
        rc = 0;
    }
out:
    sl_arena_free(&a);
    return rc;
}

/* --- plain text ---------------------------------------------------------------- */

int loggen_text(const sl_log_record *r, sl_buf *out) {
    time_t secs = (time_t)(r->time_unix_nano / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[40];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    int rc = sl_buf_printf(out, "%s.%09lluZ %-5.*s %.*s ", ts,
                           (unsigned long long)(r->time_unix_nano % 1000000000u),
                           (int)r->severity_text.len, r->severity_text.ptr,
                           (int)r->resource->service.len, r->resource->service.ptr);
    if (rc == 0 && !sl_is_zero(r->trace_id, 16)) {
        char t[33], s[17];
        sl_hex_encode(r->trace_id, 16, t);
        sl_hex_encode(r->span_id, 8, s);
        t[32] = s[16] = '\0';
        rc = sl_buf_printf(out, "[trace_id=%s span_id=%s] ", t, s);
    }
    if (rc == 0) {
        rc = sl_buf_append(out, r->body.v.s.ptr, r->body.v.s.len);
    }
    for (uint32_t i = 0; i < r->nattrs && rc == 0; i++) {
        const sl_value *v = &r->attrs[i].val;
        if (v->type == SL_VAL_INT) {
            rc = sl_buf_printf(out, " %.*s=%lld", (int)r->attrs[i].key.len, r->attrs[i].key.ptr,
                               (long long)v->v.i);
        } else if (v->type == SL_VAL_DOUBLE) {
            rc = sl_buf_printf(out, " %.*s=%.2f", (int)r->attrs[i].key.len, r->attrs[i].key.ptr,
                               v->v.d);
        } else {
            rc = sl_buf_printf(out, " %.*s=%.*s", (int)r->attrs[i].key.len, r->attrs[i].key.ptr,
                               (int)v->v.s.len, v->v.s.ptr);
        }
    }
    if (rc == 0) {
        rc = sl_buf_putc(out, '\n');
    }
    return rc;
}
