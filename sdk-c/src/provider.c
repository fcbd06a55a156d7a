/*
 * The provider: options and their OTEL_* environment variables, the resource
 * (detected attributes < OTEL_RESOURCE_ATTRIBUTES < code < service name), one
 * exporter and processor per signal, scopes (tracers, loggers, meters), stats,
 * flush and shutdown with deadlines.
 * Thread-safety: create/destroy by one thread; everything else from any.
 */
#include "sdk_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "http://localhost:4318"

static const sl_batch_options default_batch = {2048, 5000, 512, 30000};

void sl_provider_options_init(sl_provider_options *o) {
    if (o == NULL) {
        return;
    }
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
    o->protocol = SL_PROTOCOL_HTTP_PROTOBUF;
    sl_exporter_options none = {NULL, NULL, 0, -1, -1, NULL, NULL, NULL};
    o->traces = o->logs = o->metrics = none;
    o->retry_initial_ms = 500;
    o->retry_max_ms = 5000;
    o->sampler = SL_SAMPLER_PARENTBASED_ALWAYS_ON;
    o->sampler_arg = 1.0;
    o->span_limits = (sl_span_limits){128, UINT32_MAX, 128, 128, 128, 128};
    o->bsp = default_batch;
    o->blrp = default_batch;
    o->blrp.schedule_delay_ms = 1000;
    o->log_attribute_count = 128;
    o->log_attribute_value_length = UINT32_MAX;
    o->metric_export_interval_ms = 60000;
    o->metric_export_timeout_ms = 30000;
    o->metric_temporality = SL_TEMPORALITY_CUMULATIVE;
    o->metric_cardinality_limit = 2000;
}

/* ---- environment ------------------------------------------------------------ */

size_t ot_pct_decode(const char *v, size_t vl, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] == '%' && vl - i > 2) {
            char h[3] = {v[i + 1], v[i + 2], 0};
            char *end;
            long c = strtol(h, &end, 16);
            if (end == h + 2) {
                out[o++] = (char)c;
                i += 2;
                continue;
            }
        }
        out[o++] = v[i];
    }
    return o;
}

int ot_parse_kv_list(const char *s,
                     int (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                     void *ud) {
    int rc = 0;
    while (*s != '\0') {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (eq == NULL) {
            /* An item without '=' is skipped; the rest still applies. */
            if (n > 0) {
                rc = SL_OTEL_EPARSE;
            }
        } else {
            const char *k = s, *v = eq + 1;
            size_t kl = (size_t)(eq - s), vl = n - kl - 1;
            while (kl > 0 && (*k == ' ' || *k == '\t')) {
                k++, kl--;
            }
            while (kl > 0 && (k[kl - 1] == ' ' || k[kl - 1] == '\t')) {
                kl--;
            }
            while (vl > 0 && (*v == ' ' || *v == '\t')) {
                v++, vl--;
            }
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                vl--;
            }
            int r = kl > 0 ? fn(ud, k, kl, v, vl) : SL_OTEL_EPARSE;
            if (r != 0) {
                rc = r;
            }
        }
        if (e == NULL) {
            break;
        }
        s = e + 1;
    }
    return rc;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int env_u32(const char *name, uint32_t *out) {
    const char *v = env(name);
    if (v == NULL) {
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x > UINT32_MAX || v[0] == '-') {
        return SL_OTEL_EPARSE;
    }
    *out = (uint32_t)x;
    return 0;
}

static int env_compression(const char *name, int *out) {
    const char *v = env(name);
    if (v == NULL) {
        return 0;
    }
    if (strcasecmp(v, "gzip") == 0) {
        *out = 1;
    } else if (strcasecmp(v, "none") == 0) {
        *out = 0;
    } else {
        return SL_OTEL_EPARSE;
    }
    return 0;
}

static int env_protocol(const char *name, int *out) {
    const char *v = env(name);
    if (v == NULL) {
        return 0;
    }
    if (strcmp(v, "http/protobuf") == 0) {
        *out = SL_PROTOCOL_HTTP_PROTOBUF;
    } else if (strcmp(v, "http/json") == 0) {
        *out = SL_PROTOCOL_HTTP_JSON;
    } else {
        return SL_OTEL_EPARSE; /* grpc is not offered: keep http/protobuf */
    }
    return 0;
}

static int env_batch(const char *prefix, sl_batch_options *b) {
    char name[64];
    int rc = 0, r;
    snprintf(name, sizeof name, "OTEL_%s_MAX_QUEUE_SIZE", prefix);
    if ((r = env_u32(name, &b->max_queue_size)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_%s_SCHEDULE_DELAY", prefix);
    if ((r = env_u32(name, &b->schedule_delay_ms)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_%s_MAX_EXPORT_BATCH_SIZE", prefix);
    if ((r = env_u32(name, &b->max_export_batch_size)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_%s_EXPORT_TIMEOUT", prefix);
    if ((r = env_u32(name, &b->export_timeout_ms)) != 0) {
        rc = r;
    }
    return rc;
}

static int env_signal(const char *sig, sl_exporter_options *x) {
    char name[64];
    int rc = 0, r;
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_ENDPOINT", sig);
    if (env(name)) {
        x->endpoint = env(name);
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_HEADERS", sig);
    if (env(name)) {
        x->headers = env(name);
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_TIMEOUT", sig);
    if ((r = env_u32(name, &x->timeout_ms)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_COMPRESSION", sig);
    if ((r = env_compression(name, &x->compression)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_PROTOCOL", sig);
    if ((r = env_protocol(name, &x->protocol)) != 0) {
        rc = r;
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_CERTIFICATE", sig);
    if (env(name)) {
        x->certificate = env(name);
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_CLIENT_CERTIFICATE", sig);
    if (env(name)) {
        x->client_certificate = env(name);
    }
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s_CLIENT_KEY", sig);
    if (env(name)) {
        x->client_key = env(name);
    }
    return rc;
}

int sl_provider_options_from_env(sl_provider_options *o) {
    if (o == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = 0, r;
#define TRY(expr)                                                                                  \
    if ((r = (expr)) != 0)                                                                         \
    rc = r
    const char *v;
    if ((v = env("OTEL_SDK_DISABLED")) != NULL) {
        o->disabled = strcasecmp(v, "true") == 0;
    }
    if ((v = env("OTEL_SERVICE_NAME")) != NULL) {
        o->service_name = v;
    }
    if ((v = env("OTEL_RESOURCE_ATTRIBUTES")) != NULL) {
        o->resource_attributes = v;
    }
    if ((v = env("OTEL_EXPORTER_OTLP_ENDPOINT")) != NULL) {
        o->endpoint = v;
    }
    if ((v = env("OTEL_EXPORTER_OTLP_HEADERS")) != NULL) {
        o->headers = v;
    }
    if ((v = env("OTEL_EXPORTER_OTLP_CERTIFICATE")) != NULL) {
        o->certificate = v;
    }
    if ((v = env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")) != NULL) {
        o->client_certificate = v;
    }
    if ((v = env("OTEL_EXPORTER_OTLP_CLIENT_KEY")) != NULL) {
        o->client_key = v;
    }
    TRY(env_u32("OTEL_EXPORTER_OTLP_TIMEOUT", &o->timeout_ms));
    TRY(env_compression("OTEL_EXPORTER_OTLP_COMPRESSION", &o->compression));
    int proto = o->protocol;
    TRY(env_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", &proto));
    o->protocol = (sl_protocol)proto;
    TRY(env_signal("TRACES", &o->traces));
    TRY(env_signal("LOGS", &o->logs));
    TRY(env_signal("METRICS", &o->metrics));
    if ((v = env("OTEL_TRACES_SAMPLER")) != NULL) {
        static const struct {
            const char *name;
            sl_sampler s;
        } samplers[] = {{"always_on", SL_SAMPLER_ALWAYS_ON},
                        {"always_off", SL_SAMPLER_ALWAYS_OFF},
                        {"traceidratio", SL_SAMPLER_TRACEIDRATIO},
                        {"parentbased_always_on", SL_SAMPLER_PARENTBASED_ALWAYS_ON},
                        {"parentbased_always_off", SL_SAMPLER_PARENTBASED_ALWAYS_OFF},
                        {"parentbased_traceidratio", SL_SAMPLER_PARENTBASED_TRACEIDRATIO}};
        bool found = false;
        for (size_t i = 0; i < sizeof samplers / sizeof samplers[0]; i++) {
            if (strcmp(v, samplers[i].name) == 0) {
                o->sampler = samplers[i].s;
                found = true;
            }
        }
        if (!found) {
            rc = SL_OTEL_EPARSE;
        }
    }
    if ((v = env("OTEL_TRACES_SAMPLER_ARG")) != NULL) {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0)) {
            rc = SL_OTEL_EPARSE;
        } else {
            o->sampler_arg = d;
        }
    }
    TRY(env_batch("BSP", &o->bsp));
    TRY(env_batch("BLRP", &o->blrp));
    sl_span_limits *l = &o->span_limits;
    uint32_t general_count = 0, general_len = 0;
    if (env_u32("OTEL_ATTRIBUTE_COUNT_LIMIT", &general_count) == 0 && general_count) {
        l->attribute_count = l->attributes_per_event = l->attributes_per_link = general_count;
        o->log_attribute_count = general_count;
    }
    if (env_u32("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", &general_len) == 0 && general_len) {
        l->attribute_value_length = o->log_attribute_value_length = general_len;
    }
    TRY(env_u32("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", &l->attribute_count));
    TRY(env_u32("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", &l->attribute_value_length));
    TRY(env_u32("OTEL_SPAN_EVENT_COUNT_LIMIT", &l->event_count));
    TRY(env_u32("OTEL_SPAN_LINK_COUNT_LIMIT", &l->link_count));
    TRY(env_u32("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", &l->attributes_per_event));
    TRY(env_u32("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", &l->attributes_per_link));
    TRY(env_u32("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", &o->log_attribute_count));
    TRY(env_u32("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", &o->log_attribute_value_length));
    TRY(env_u32("OTEL_METRIC_EXPORT_INTERVAL", &o->metric_export_interval_ms));
    TRY(env_u32("OTEL_METRIC_EXPORT_TIMEOUT", &o->metric_export_timeout_ms));
    if ((v = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")) != NULL) {
        if (strcasecmp(v, "delta") == 0) {
            o->metric_temporality = SL_TEMPORALITY_DELTA;
        } else if (strcasecmp(v, "cumulative") == 0 || strcasecmp(v, "lowmemory") == 0) {
            /* lowmemory is delta for synchronous counters and histograms only;
             * cumulative is the closest this SDK offers. */
            o->metric_temporality = SL_TEMPORALITY_CUMULATIVE;
        } else {
            rc = SL_OTEL_EPARSE;
        }
    }
#undef TRY
    return rc;
}

/* ---- resource ----------------------------------------------------------------- */

struct res_ctx {
    sl_provider *p;
    bool has_service;
};

static void res_set(sl_provider *p, const sl_kv *kv) {
    uint32_t dropped = 0;
    ot_rec_set(&p->resource, OT_OWNER_SELF, kv, UINT32_MAX, UINT32_MAX, &p->resource_n, &dropped);
}

static int res_kv(void *ud, const char *k, size_t kl, const char *v, size_t vl) {
    struct res_ctx *c = ud;
    char key[256], val[1024];
    if (kl >= sizeof key || vl >= sizeof val) {
        return SL_OTEL_EPARSE;
    }
    memcpy(key, k, kl);
    key[kl] = '\0';
    size_t n = ot_pct_decode(v, vl, val);
    val[n] = '\0';
    sl_kv kv = SL_KV_STRN(key, val, n);
    res_set(c->p, &kv);
    if (strcmp(key, "service.name") == 0) {
        c->has_service = true;
    }
    return 0;
}

static int build_resource(sl_provider *p, const sl_provider_options *o) {
    char host[256] = "", exe[256] = "", inst[37];
    if (gethostname(host, sizeof host - 1) != 0) {
        host[0] = '\0';
    }
    FILE *f = fopen("/proc/self/comm", "r");
    if (f != NULL) {
        if (fgets(exe, sizeof exe, f) == NULL) {
            exe[0] = '\0';
        }
        fclose(f);
        exe[strcspn(exe, "\n")] = '\0';
    }
    uint8_t u[16];
    ot_random_bytes(u, 16);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* UUID v4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(inst, sizeof inst,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    char svc[300];
    snprintf(svc, sizeof svc, "unknown_service%s%s", exe[0] ? ":" : "", exe);
    sl_kv detected[] = {SL_KV_STR("service.name", svc),
                        SL_KV_STR("service.instance.id", inst),
                        SL_KV_STR("telemetry.sdk.name", "sightline-otel"),
                        SL_KV_STR("telemetry.sdk.language", "c"),
                        SL_KV_STR("telemetry.sdk.version", SL_OTEL_VERSION_STRING),
                        SL_KV_INT("process.pid", (int64_t)getpid())};
    for (size_t i = 0; i < sizeof detected / sizeof detected[0]; i++) {
        res_set(p, &detected[i]);
    }
    if (host[0]) {
        sl_kv kv = SL_KV_STR("host.name", host);
        res_set(p, &kv);
    }
    if (exe[0]) {
        sl_kv kv = SL_KV_STR("process.executable.name", exe);
        res_set(p, &kv);
    }
    struct res_ctx c = {p, false};
    if (o->resource_attributes != NULL &&
        ot_parse_kv_list(o->resource_attributes, res_kv, &c) != 0) {
        ot_diag(p, SL_DIAG_WARN, "resource attributes: malformed items ignored");
    }
    for (size_t i = 0; i < o->resource_count && o->resource != NULL; i++) {
        res_set(p, &o->resource[i]);
    }
    if (o->service_name != NULL && o->service_name[0] != '\0') {
        sl_kv kv = SL_KV_STR("service.name", o->service_name);
        res_set(p, &kv);
    }
    return p->resource.str.oom ? SL_OTEL_ENOMEM : 0;
}

/* ---- create / destroy ------------------------------------------------------------ */

static int make_exporter(sl_provider *p, const sl_provider_options *o,
                         const sl_exporter_options *sig, const char *path, ot_exporter **out,
                         bool *json) {
    char url[2048];
    if (sig->endpoint != NULL) {
        snprintf(url, sizeof url, "%s", sig->endpoint);
    } else {
        const char *base = o->endpoint ? o->endpoint : DEFAULT_ENDPOINT;
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/') {
            bl--;
        }
        size_t pl = strlen(path);
        if (bl + pl + 1 > sizeof url) {
            return SL_OTEL_EINVAL;
        }
        memcpy(url, base, bl);
        memcpy(url + bl, path, pl + 1);
    }
    int protocol = sig->protocol >= 0 ? sig->protocol : (int)o->protocol;
    *json = protocol == SL_PROTOCOL_HTTP_JSON;
    ot_export_cfg cfg = {
        .url = url,
        .headers = sig->headers ? sig->headers : o->headers,
        .timeout_ms = sig->timeout_ms ? sig->timeout_ms : o->timeout_ms,
        .gzip = (sig->compression >= 0 ? sig->compression : o->compression) == 1,
        .json = *json,
        .retry_initial_ms = o->retry_initial_ms,
        .retry_max_ms = o->retry_max_ms,
        .ca_file = sig->certificate ? sig->certificate : o->certificate,
        .cert_file = sig->client_certificate ? sig->client_certificate : o->client_certificate,
        .key_file = sig->client_key ? sig->client_key : o->client_key,
    };
    return ot_exporter_create(p, &cfg, out);
}

int sl_provider_create(const sl_provider_options *o, sl_provider **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (o == NULL || out == NULL || o->sampler_arg < 0 || o->sampler_arg > 1 ||
        (unsigned)o->sampler > SL_SAMPLER_PARENTBASED_TRACEIDRATIO) {
        return SL_OTEL_EINVAL;
    }
    sl_provider *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return SL_OTEL_ENOMEM;
    }
    p->disabled = o->disabled;
    p->log = o->log;
    p->log_ud = o->log_userdata;
    p->sampler = o->sampler;
    p->ratio = o->sampler_arg;
    p->ratio_bound =
        o->sampler_arg >= 1.0 ? (1ull << 63) : (uint64_t)(o->sampler_arg * 9223372036854775808.0);
    p->limits = o->span_limits;
    p->log_attr_count = o->log_attribute_count;
    p->log_attr_len = o->log_attribute_value_length;
    p->span_pool_max = (o->bsp.max_queue_size ? o->bsp.max_queue_size : 2048) +
                       2 * (o->bsp.max_export_batch_size ? o->bsp.max_export_batch_size : 512) +
                       1024;
    p->log_pool_max = (o->blrp.max_queue_size ? o->blrp.max_queue_size : 2048) +
                      2 * (o->blrp.max_export_batch_size ? o->blrp.max_export_batch_size : 512) +
                      1024;
    atomic_init(&p->abort_deadline_ns, UINT64_MAX);
    atomic_init(&p->shut_down, false);
    pthread_mutex_init(&p->mu, NULL);
    int rc = build_resource(p, o);
    if (rc != 0 || p->disabled) {
        goto done;
    }
    bool jt, jl, jm;
    if ((rc = make_exporter(p, o, &o->traces, "/v1/traces", &p->x_traces, &jt)) != 0 ||
        (rc = make_exporter(p, o, &o->logs, "/v1/logs", &p->x_logs, &jl)) != 0 ||
        (rc = make_exporter(p, o, &o->metrics, "/v1/metrics", &p->x_metrics, &jm)) != 0) {
        goto done;
    }
    ot_batch_counters sc = {&p->stats.spans_dropped, &p->stats.spans_exported,
                            &p->stats.spans_export_failed};
    ot_batch_counters lc = {&p->stats.logs_dropped, &p->stats.logs_exported,
                            &p->stats.logs_export_failed};
    uint32_t pre = o->bsp.max_queue_size < 256 ? o->bsp.max_queue_size : 256;
    if ((rc = ot_spans_prealloc(p, pre)) != 0 ||
        (rc = ot_batch_create(p, &o->bsp, &ot_span_ops, sc, p->x_traces, jt, "spans", &p->bsp)) !=
            0 ||
        (rc = ot_batch_create(p, &o->blrp, &ot_log_ops, lc, p->x_logs, jl, "logs", &p->blrp)) !=
            0 ||
        (rc = ot_metrics_create(p, o, &p->metrics)) != 0) {
        goto done;
    }
    (void)jm;
done:
    if (rc != 0) {
        sl_provider_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

int sl_provider_force_flush(sl_provider *p, uint32_t timeout_ms) {
    if (p == NULL) {
        return SL_OTEL_EINVAL;
    }
    if (p->disabled) {
        return 0;
    }
    if (atomic_load(&p->shut_down)) {
        return SL_OTEL_ESHUTDOWN;
    }
    uint64_t dl = ot_deadline(timeout_ms);
    int rc = 0, r;
    if (p->bsp && (r = ot_batch_flush(p->bsp, dl)) != 0) {
        rc = r;
    }
    if (p->blrp && (r = ot_batch_flush(p->blrp, dl)) != 0 && rc == 0) {
        rc = r;
    }
    if (p->metrics && (r = ot_metrics_flush(p->metrics, dl)) != 0 && rc == 0) {
        rc = r;
    }
    return rc;
}

int sl_provider_shutdown(sl_provider *p, uint32_t timeout_ms) {
    if (p == NULL) {
        return SL_OTEL_EINVAL;
    }
    if (atomic_exchange(&p->shut_down, true)) {
        return 0;
    }
    uint64_t dl = ot_deadline(timeout_ms);
    int rc = 0, r;
    /* Every export from now on gives up at the deadline: first the metric
     * reader's last collection, then the processors drain their queues. */
    atomic_store(&p->abort_deadline_ns, dl);
    if (p->metrics && (r = ot_metrics_shutdown(p->metrics, dl)) != 0) {
        rc = r;
    }
    if (p->bsp && (r = ot_batch_shutdown(p->bsp, dl)) != 0 && rc == 0) {
        rc = r;
    }
    if (p->blrp && (r = ot_batch_shutdown(p->blrp, dl)) != 0 && rc == 0) {
        rc = r;
    }
    return rc;
}

void sl_provider_destroy(sl_provider *p) {
    if (p == NULL) {
        return;
    }
    sl_provider_shutdown(p, 5000);
    ot_batch_destroy(p->bsp);
    ot_batch_destroy(p->blrp);
    ot_metrics_destroy(p->metrics);
    ot_exporter_destroy(p->x_traces);
    ot_exporter_destroy(p->x_logs);
    ot_exporter_destroy(p->x_metrics);
    ot_spans_free_all(p);
    ot_logs_free_all(p);
    for (sl_tracer *t = p->tracers; t != NULL;) {
        sl_tracer *n = t->next;
        free(t->scope.name);
        free(t->scope.version);
        free(t);
        t = n;
    }
    for (sl_logger *l = p->loggers; l != NULL;) {
        sl_logger *n = l->next;
        free(l->scope.name);
        free(l->scope.version);
        free(l);
        l = n;
    }
    ot_rec_free(&p->resource);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int sl_provider_stats_get(sl_provider *p, sl_provider_stats *out) {
    if (p == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    const ot_stats *s = &p->stats;
    out->spans_started = atomic_load(&s->spans_started);
    out->spans_not_sampled = atomic_load(&s->spans_not_sampled);
    out->spans_dropped = atomic_load(&s->spans_dropped);
    out->spans_exported = atomic_load(&s->spans_exported);
    out->spans_export_failed = atomic_load(&s->spans_export_failed);
    out->logs_emitted = atomic_load(&s->logs_emitted);
    out->logs_dropped = atomic_load(&s->logs_dropped);
    out->logs_exported = atomic_load(&s->logs_exported);
    out->logs_export_failed = atomic_load(&s->logs_export_failed);
    out->metric_points_exported = atomic_load(&s->metric_points_exported);
    out->metric_exports_failed = atomic_load(&s->metric_exports_failed);
    out->export_requests = atomic_load(&s->export_requests);
    out->export_retries = atomic_load(&s->export_retries);
    out->partial_success_rejected = atomic_load(&s->partial_success_rejected);
    return 0;
}

/* ---- scopes --------------------------------------------------------------------- */

static bool same_scope(const ot_scope *s, const char *name, const char *version) {
    const char *v = version ? version : "";
    return strcmp(s->name, name) == 0 && strcmp(s->version ? s->version : "", v) == 0;
}

static int scope_init(ot_scope *s, const char *name, const char *version) {
    s->name = ot_strdup(name);
    s->version = ot_strdup(version ? version : "");
    if (s->name == NULL || s->version == NULL) {
        free(s->name);
        free(s->version);
        return SL_OTEL_ENOMEM;
    }
    return 0;
}

int sl_provider_tracer(sl_provider *p, const char *scope_name, const char *scope_version,
                       sl_tracer **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (p == NULL || scope_name == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    sl_tracer *t = p->tracers;
    while (t != NULL && !same_scope(&t->scope, scope_name, scope_version)) {
        t = t->next;
    }
    if (t == NULL) {
        t = calloc(1, sizeof *t);
        if (t == NULL || scope_init(&t->scope, scope_name, scope_version) != 0) {
            free(t);
            t = NULL;
            rc = SL_OTEL_ENOMEM;
        } else {
            t->p = p;
            t->next = p->tracers;
            p->tracers = t;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == 0) {
        *out = t;
    }
    return rc;
}

int sl_provider_logger(sl_provider *p, const char *scope_name, const char *scope_version,
                       sl_logger **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (p == NULL || scope_name == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    sl_logger *l = p->loggers;
    while (l != NULL && !same_scope(&l->scope, scope_name, scope_version)) {
        l = l->next;
    }
    if (l == NULL) {
        l = calloc(1, sizeof *l);
        if (l == NULL || scope_init(&l->scope, scope_name, scope_version) != 0) {
            free(l);
            l = NULL;
            rc = SL_OTEL_ENOMEM;
        } else {
            l->p = p;
            l->next = p->loggers;
            p->loggers = l;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == 0) {
        *out = l;
    }
    return rc;
}

int sl_provider_meter(sl_provider *p, const char *scope_name, const char *scope_version,
                      sl_meter **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (p == NULL || scope_name == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    return ot_meter_get(p, scope_name, scope_version, out);
}
