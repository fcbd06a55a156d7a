/*
 * The process's sdk-c provider and the logging helpers. The default
 * telemetry pointer is set once (first create) and cleared on destroy; the
 * stderr level is an atomic. Thread-safe.
 */
#include "sf/sf_telemetry.h"

#include "sl_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct sf_telemetry {
    sl_provider *provider;
    sl_tracer *tracer;
    sl_logger *logger;
    sl_meter *meter;
    bool exporting;
    char *service;
    char *version;
};

static _Atomic(sf_telemetry *) g_default;
static atomic_int g_level = SL_SEVERITY_INFO;

static void diag(void *ud, sl_diag level, const char *message) {
    (void)ud;
    if (level <= SL_DIAG_WARN) {
        fprintf(stderr, "telemetry: %s\n", message);
    }
}

static bool env_set(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

int sf_telemetry_create(const char *service, const char *version, sf_telemetry **out) {
    *out = NULL;
    int rc = 0;
    sf_telemetry *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->service = strdup(service)) == NULL ||
        (t->version = strdup(version != NULL ? version : "0.0.0")) == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.service_name = t->service;
    sl_kv res[] = {SL_KV_STR("service.version", t->version)};
    o.resource = res;
    o.resource_count = 1;
    o.log = diag;
    sl_provider_options_from_env(&o); /* a malformed variable is reported by diag */
    o.log = diag;
    t->exporting = env_set("OTEL_EXPORTER_OTLP_ENDPOINT") ||
                   env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ||
                   env_set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") ||
                   env_set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    if (!t->exporting) {
        o.disabled = true;
    }
    if ((rc = sl_provider_create(&o, &t->provider)) != 0 ||
        (rc = sl_provider_tracer(t->provider, "sightline-fleet-rt", "0.1.0", &t->tracer)) != 0 ||
        (rc = sl_provider_logger(t->provider, "sightline-fleet-rt", "0.1.0", &t->logger)) != 0 ||
        (rc = sl_provider_meter(t->provider, "sightline-fleet-rt", "0.1.0", &t->meter)) != 0) {
        if (rc != SL_OTEL_EDISABLED) {
            goto fail;
        }
        rc = 0; /* no meter without export: instruments are then no-ops */
    }
    sf_telemetry *expected = NULL;
    atomic_compare_exchange_strong(&g_default, &expected, t);
    *out = t;
    return 0;
fail:
    if (t != NULL) {
        sl_provider_destroy(t->provider);
        free(t->service);
        free(t->version);
        free(t);
    }
    return rc;
}

sl_tracer *sf_telemetry_tracer(const sf_telemetry *t) {
    return t != NULL ? t->tracer : NULL;
}
sl_logger *sf_telemetry_logger(const sf_telemetry *t) {
    return t != NULL ? t->logger : NULL;
}
sl_meter *sf_telemetry_meter(const sf_telemetry *t) {
    return t != NULL ? t->meter : NULL;
}
sl_provider *sf_telemetry_provider(const sf_telemetry *t) {
    return t != NULL ? t->provider : NULL;
}
const char *sf_telemetry_service(const sf_telemetry *t) {
    return t != NULL ? t->service : "unknown";
}
bool sf_telemetry_exporting(const sf_telemetry *t) {
    return t != NULL && t->exporting;
}

void sf_telemetry_shutdown(sf_telemetry *t, unsigned timeout_ms) {
    if (t != NULL) {
        sl_provider_shutdown(t->provider, timeout_ms);
    }
}

void sf_telemetry_destroy(sf_telemetry *t, unsigned timeout_ms) {
    if (t == NULL) {
        return;
    }
    sf_telemetry *expected = t;
    atomic_compare_exchange_strong(&g_default, &expected, NULL);
    sl_provider_shutdown(t->provider, timeout_ms);
    sl_provider_destroy(t->provider);
    free(t->service);
    free(t->version);
    free(t);
}

int sf_log_set_level(const char *level) {
    static const struct {
        const char *name;
        int sev;
    } levels[] = {{"debug", SL_SEVERITY_DEBUG},
                  {"info", SL_SEVERITY_INFO},
                  {"warn", SL_SEVERITY_WARN},
                  {"error", SL_SEVERITY_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcasecmp(level, levels[i].name) == 0) {
            atomic_store(&g_level, levels[i].sev);
            return 0;
        }
    }
    return SL_EINVAL;
}

static const char *sev_name(sl_severity sev) {
    if (sev >= SL_SEVERITY_ERROR) {
        return "error";
    }
    if (sev >= SL_SEVERITY_WARN) {
        return "warn";
    }
    return sev >= SL_SEVERITY_INFO ? "info" : "debug";
}

__attribute__((format(printf, 4, 0))) static void vlog(sl_severity sev, const sl_kv *attrs,
                                                       size_t n, const char *fmt, va_list ap) {
    if ((int)sev < atomic_load(&g_level)) {
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sf_telemetry *t = atomic_load(&g_default);
    {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr, "%s %s %s: %s\n", ts, sev_name(sev), t != NULL ? t->service : "fleet", msg);
    }
    if (t != NULL) {
        sl_logger_emit(t->logger, sev, msg, attrs, n);
    }
}

void sf_log(sl_severity sev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(sev, NULL, 0, fmt, ap);
    va_end(ap);
}

void sf_log_attrs(sl_severity sev, const sl_kv *attrs, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(sev, attrs, n, fmt, ap);
    va_end(ap);
}
