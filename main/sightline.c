/*
 * The sightline binary: parses flags and SIGHTLINE_* variables, opens storage,
 * starts the query server and the OTLP collector, and waits for SIGINT or
 * SIGTERM to shut down in reverse order (the collector drains in-flight
 * requests before storage closes). The main thread only waits for signals.
 */
#include "alerting_main.h"
#include "debug_cmd.h"
#include "collector.h"
#include "config_file.h"
#include "limits_file.h"
#include "query.h"
#include "rules_cmd.h"
#include "storage.h"

#include "sl_auth.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_util.h"

#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SL_VERSION
#define SL_VERSION "dev"
#endif

typedef struct config {
    const char *host;
    uint64_t otlp_http_port;
    int64_t otlp_grpc_port; /* < 0: off */
    uint64_t grpc_max_message;
    uint64_t query_port;
    const char *data_dir;
    uint64_t partition_ns;
    uint64_t retention_ns;
    uint64_t max_body_size;
    uint64_t queue_max;
    uint64_t max_inflight_bytes;
    uint64_t max_connections;
    uint64_t request_timeout_ns;
    uint64_t idle_timeout_ns;
    uint64_t cut_interval_ns;
    uint64_t block_level;
    uint64_t map_size;
    uint64_t wal_map_size;
    uint64_t metrics_cache;
    const char *log_level;
    const char *ui_dir;
    const char *ports_file;
    const char *auth_tokens;
    const char *limits;
    uint64_t active_series_window_ns;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_client_ca;
    alerting_settings al;
    uint64_t health_down_after_ns;
    uint64_t health_max_p95_ns;
    double health_max_error_ratio;
} config;

enum {
    OPT_HOST = 1000,
    OPT_OTLP_HTTP_PORT,
    OPT_OTLP_GRPC_PORT,
    OPT_GRPC_MAX_MESSAGE,
    OPT_QUERY_PORT,
    OPT_DATA_DIR,
    OPT_PARTITION,
    OPT_RETENTION,
    OPT_MAX_BODY,
    OPT_QUEUE_MAX,
    OPT_MAX_INFLIGHT,
    OPT_MAX_CONNECTIONS,
    OPT_REQUEST_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_CUT_INTERVAL,
    OPT_BLOCK_LEVEL,
    OPT_MAP_SIZE,
    OPT_WAL_MAP_SIZE,
    OPT_METRICS_CACHE,
    OPT_LOG_LEVEL,
    OPT_UI_DIR,
    OPT_PORTS_FILE,
    OPT_AUTH_TOKENS,
    OPT_LIMITS,
    OPT_ACTIVE_SERIES_WINDOW,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CLIENT_CA,
    OPT_CONFIG,
    OPT_RULES_DIR,
    OPT_RULE_INTERVAL,
    OPT_ALERT_WEBHOOK,
    OPT_ALERTMANAGER,
    OPT_ALERT_GROUP_BY,
    OPT_ALERT_GROUP_WAIT,
    OPT_ALERT_GROUP_INTERVAL,
    OPT_ALERT_REPEAT,
    OPT_ALERT_MAX_ALERTS,
    OPT_EXTERNAL_URL,
    OPT_HEALTH_ERROR_RATIO,
    OPT_HEALTH_P95,
    OPT_HEALTH_DOWN_AFTER,
    OPT_HEALTH_CHECKS,
    OPT_HEALTH_CHECK_INTERVAL,
};

typedef enum flag_kind {
    V_STR,      /* const char *, kept as given */
    V_UINT,     /* uint64_t, a whole number */
    V_SIZE,     /* uint64_t bytes: "16MiB", "512K", a bare number */
    V_DURATION, /* uint64_t ns: "90s", "7d", a bare "0" */
    V_RATIO,    /* double in [0, 1] */
    V_OTHER,
} flag_kind;

#define SEC 1000000000ull
#define ANY UINT64_MAX
/* The field's offset, and a compile error if it is not of type T. */
#define FIELD(f, T) _Generic(((config *)0)->f, T : offsetof(config, f))
#define STR(f) V_STR, FIELD(f, const char *), 0, 0
#define NUM(kind, f, lo, hi) kind, FIELD(f, uint64_t), lo, hi
#define RATIO(f) V_RATIO, FIELD(f, double), 0, 0
#define OTHER V_OTHER, 0, 0, 0

/* One table drives getopt, the environment, the config file, --help and the
 * parsing and bounds of every value. */
static const struct flag {
    int id;
    const char *name;
    const char *env;
    const char *arg;
    const char *help;
    flag_kind kind; /* V_OTHER: parsed by apply_other() */
    size_t off;     /* of the value in config */
    uint64_t min, max;
} g_flags[] = {
    {OPT_HOST, "host", "SIGHTLINE_HOST", "ADDR", "listen address for every port (default 0.0.0.0)",
     STR(host)},
    {OPT_OTLP_HTTP_PORT, "otlp-http-port", "SIGHTLINE_OTLP_HTTP_PORT", "PORT",
     "OTLP/HTTP receiver port; 0 picks a free port (default 4318)",
     NUM(V_UINT, otlp_http_port, 0, 65535)},
    {OPT_OTLP_GRPC_PORT, "otlp-grpc-port", "SIGHTLINE_OTLP_GRPC_PORT", "PORT",
     "OTLP/gRPC receiver port (h2c); 0 picks a free port, off disables it (default 4317)", OTHER},
    {OPT_GRPC_MAX_MESSAGE, "grpc-max-message-size", "SIGHTLINE_GRPC_MAX_MESSAGE_SIZE", "BYTES",
     "largest gRPC message, compressed or after decompression (default 4MiB)",
     NUM(V_SIZE, grpc_max_message, 1, 1ull << 30)},
    {OPT_QUERY_PORT, "query-port", "SIGHTLINE_QUERY_PORT", "PORT",
     "query API and UI port; 0 picks a free port (default 16686)",
     NUM(V_UINT, query_port, 0, 65535)},
    {OPT_DATA_DIR, "data-dir", "SIGHTLINE_DATA_DIR", "DIR", "where data is stored (default ./data)",
     STR(data_dir)},
    {OPT_PARTITION, "partition", "SIGHTLINE_PARTITION", "DURATION",
     "length of one storage window, at least 1s (default 1h)",
     NUM(V_DURATION, partition_ns, SEC, ANY)},
    {OPT_RETENTION, "retention", "SIGHTLINE_RETENTION", "DURATION",
     "windows older than this are deleted; 0 keeps everything (default 7d)",
     NUM(V_DURATION, retention_ns, 0, ANY)},
    {OPT_MAX_BODY, "max-body-size", "SIGHTLINE_MAX_BODY_SIZE", "BYTES",
     "largest request body after decompression, e.g. 16MiB (default 16MiB)",
     NUM(V_SIZE, max_body_size, 1, ANY)},
    {OPT_QUEUE_MAX, "queue-max", "SIGHTLINE_QUEUE_MAX", "N",
     "requests decoding or waiting to be written before 503 (default 256)",
     NUM(V_UINT, queue_max, 1, 1000000)},
    {OPT_MAX_INFLIGHT, "max-inflight-bytes", "SIGHTLINE_MAX_INFLIGHT_BYTES", "BYTES",
     "request bodies decoding or waiting to be written before 503 (default 256MiB)",
     NUM(V_SIZE, max_inflight_bytes, 1u << 20, ANY)},
    {OPT_MAX_CONNECTIONS, "max-connections", "SIGHTLINE_MAX_CONNECTIONS", "N",
     "open OTLP connections (HTTP and gRPC together); more are closed at once (default 1024)",
     NUM(V_UINT, max_connections, 1, 1000000)},
    {OPT_REQUEST_TIMEOUT, "request-timeout", "SIGHTLINE_REQUEST_TIMEOUT", "DURATION",
     "an OTLP request must arrive whole within this of its first byte (default 30s)",
     NUM(V_DURATION, request_timeout_ns, SEC / 10, 3600 * SEC)},
    {OPT_IDLE_TIMEOUT, "idle-timeout", "SIGHTLINE_IDLE_TIMEOUT", "DURATION",
     "OTLP connections without traffic or pending replies close after this (default 60s)",
     NUM(V_DURATION, idle_timeout_ns, SEC / 10, 86400 * SEC)},
    {OPT_CUT_INTERVAL, "cut-interval", "SIGHTLINE_CUT_INTERVAL", "DURATION",
     "how often the write-ahead log is cut into blocks (default 2s)",
     NUM(V_DURATION, cut_interval_ns, SEC / 1000, ANY)},
    {OPT_BLOCK_LEVEL, "block-level", "SIGHTLINE_BLOCK_LEVEL", "N",
     "zstd level of stored blocks, 1-19 (default 3)", NUM(V_UINT, block_level, 1, 19)},
    {OPT_MAP_SIZE, "map-size", "SIGHTLINE_MAP_SIZE", "BYTES",
     "LMDB map of a storage window being written (address space, not disk; metrics windows "
     "get a 32nd) (default 256GiB)",
     NUM(V_SIZE, map_size, 1u << 20, ANY)},
    {OPT_WAL_MAP_SIZE, "wal-map-size", "SIGHTLINE_WAL_MAP_SIZE", "BYTES",
     "LMDB map of a tenant's write-ahead log; writes past it are answered 503 until the "
     "cutter drains it (default 8GiB)",
     NUM(V_SIZE, wal_map_size, 1u << 20, ANY)},
    {OPT_METRICS_CACHE, "metrics-cache", "SIGHTLINE_METRICS_CACHE", "BYTES",
     "memory for decompressed blocks of compacted metrics windows, kept for the next "
     "queries; 0: none (default 128MiB)",
     NUM(V_SIZE, metrics_cache, 0, ANY)},
    {OPT_LOG_LEVEL, "log-level", "SIGHTLINE_LOG_LEVEL", "LEVEL",
     "error, warn, info or debug (default info)", OTHER},
    {OPT_UI_DIR, "ui-dir", "SIGHTLINE_UI_DIR", "DIR",
     "static UI files served at / (default: none; scripts/run.sh passes ./ui-static)", STR(ui_dir)},
    {OPT_PORTS_FILE, "ports-file", "SIGHTLINE_PORTS_FILE", "FILE",
     "write the bound ports as JSON to FILE once listening (for tests and scripts)",
     STR(ports_file)},
    {OPT_AUTH_TOKENS, "auth-tokens", "SIGHTLINE_AUTH_TOKENS", "FILE",
     "bearer tokens: lines of `<sha256 hex of token> <tenant> <ingest,query,admin>`; every "
     "OTLP and API request then needs one (reloaded on SIGHUP; default: no authentication)",
     STR(auth_tokens)},
    {OPT_LIMITS, "limits", "SIGHTLINE_LIMITS", "FILE",
     "YAML file of per-tenant limits (defaults: and tenants:): ingestion rates per signal, "
     "attribute limits, active series, retention per signal (reloaded on SIGHUP)",
     STR(limits)},
    {OPT_ACTIVE_SERIES_WINDOW, "active-series-window", "SIGHTLINE_ACTIVE_SERIES_WINDOW", "DURATION",
     "a series without samples for this long stops counting towards its tenant's "
     "max_active_series (default 10m)",
     NUM(V_DURATION, active_series_window_ns, SEC, ANY)},
    {OPT_TLS_CERT, "tls-cert", "SIGHTLINE_TLS_CERT", "FILE",
     "PEM certificate (chain): TLS 1.2+ on every port (OTLP/HTTP, OTLP/gRPC with ALPN h2, "
     "query and UI); needs --tls-key",
     STR(tls_cert)},
    {OPT_TLS_KEY, "tls-key", "SIGHTLINE_TLS_KEY", "FILE", "PEM private key of --tls-cert",
     STR(tls_key)},
    {OPT_TLS_CLIENT_CA, "tls-client-ca", "SIGHTLINE_TLS_CLIENT_CA", "FILE",
     "PEM CA: OTLP clients must present a certificate it signed (mutual TLS on ingest)",
     STR(tls_client_ca)},
    {OPT_CONFIG, "config", "SIGHTLINE_CONFIG", "FILE",
     "YAML file of settings keyed by these flag names (e.g. `retention: 3d`); "
     "variables and flags override it",
     OTHER},
    {OPT_RULES_DIR, "rules-dir", "SIGHTLINE_RULES_DIR", "DIR",
     "Prometheus rule files (*.yml) of tenant default; subdirectories hold other tenants' "
     "(reloaded on SIGHUP and POST /-/reload; default: none)",
     STR(al.rules_dir)},
    {OPT_RULE_INTERVAL, "rule-interval", "SIGHTLINE_RULE_INTERVAL", "DURATION",
     "evaluation interval of rule groups without their own (default 1m)",
     NUM(V_DURATION, al.rule_interval_ns, SEC, ANY)},
    {OPT_ALERT_WEBHOOK, "alert-webhook-url", "SIGHTLINE_ALERT_WEBHOOK_URL", "URL",
     "receiver of Alertmanager webhook notifications (version 4) (default: none)",
     STR(al.webhook_url)},
    {OPT_ALERTMANAGER, "alertmanager-url", "SIGHTLINE_ALERTMANAGER_URL", "URL",
     "send alerts to this Alertmanager's /api/v2/alerts instead of grouping them here",
     STR(al.alertmanager_url)},
    {OPT_ALERT_GROUP_BY, "alert-group-by", "SIGHTLINE_ALERT_GROUP_BY", "LABELS",
     "labels that group alerts into one notification, comma-separated; ... for all "
     "(default alertname)",
     STR(al.group_by)},
    {OPT_ALERT_GROUP_WAIT, "alert-group-wait", "SIGHTLINE_ALERT_GROUP_WAIT", "DURATION",
     "wait before a new group's first notification (default 30s)",
     NUM(V_DURATION, al.group_wait_ns, 0, ANY)},
    {OPT_ALERT_GROUP_INTERVAL, "alert-group-interval", "SIGHTLINE_ALERT_GROUP_INTERVAL", "DURATION",
     "wait before notifying a group's changes (default 5m)",
     NUM(V_DURATION, al.group_interval_ns, SEC / 1000, ANY)},
    {OPT_ALERT_REPEAT, "alert-repeat-interval", "SIGHTLINE_ALERT_REPEAT_INTERVAL", "DURATION",
     "wait before repeating an unchanged notification (default 4h)",
     NUM(V_DURATION, al.repeat_interval_ns, SEC / 1000, ANY)},
    {OPT_ALERT_MAX_ALERTS, "alert-max-alerts", "SIGHTLINE_ALERT_MAX_ALERTS", "N",
     "alerts in one webhook notification, firing ones first; the payload's truncatedAlerts "
     "counts the rest (Alertmanager's max_alerts; default 0: all)",
     NUM(V_UINT, al.max_alerts, 0, 1000000)},
    {OPT_EXTERNAL_URL, "external-url", "SIGHTLINE_EXTERNAL_URL", "URL",
     "this server's URL as users reach it, for links in alerts (default "
     "http://<host>:<query port>)",
     STR(al.external_url)},
    {OPT_HEALTH_ERROR_RATIO, "health-max-error-ratio", "SIGHTLINE_HEALTH_MAX_ERROR_RATIO", "RATIO",
     "a service with a higher error ratio is degraded on /api/fleet/health "
     "(default 0.05)",
     RATIO(health_max_error_ratio)},
    {OPT_HEALTH_P95, "health-max-p95", "SIGHTLINE_HEALTH_MAX_P95", "DURATION",
     "a service with a slower p95 latency is degraded (default 2s)",
     NUM(V_DURATION, health_max_p95_ns, 0, ANY)},
    {OPT_HEALTH_DOWN_AFTER, "health-down-after", "SIGHTLINE_HEALTH_DOWN_AFTER", "DURATION",
     "a service without spans for this long is down (default 5m)",
     NUM(V_DURATION, health_down_after_ns, SEC, ANY)},
    {OPT_HEALTH_CHECKS, "health-checks", "SIGHTLINE_HEALTH_CHECKS", "LIST",
     "active checks: service=http://host:port/health,... probed on an interval; a failing "
     "one makes its service down (default: none)",
     STR(al.checks)},
    {OPT_HEALTH_CHECK_INTERVAL, "health-check-interval", "SIGHTLINE_HEALTH_CHECK_INTERVAL",
     "DURATION", "how often active checks run (default 15s)",
     NUM(V_DURATION, al.check_interval_ns, SEC / 10, ANY)},
};
#define NFLAGS (sizeof(g_flags) / sizeof(g_flags[0]))

static void usage(FILE *f) {
    fprintf(f,
            "Sightline %s: an OpenTelemetry backend (traces over OTLP, Jaeger-compatible API)\n\n"
            "Usage: sightline serve [flags]\n"
            "       sightline debug series|metadata --data-dir DIR [--tenant T] [MATCHER...]\n"
            "       sightline version\n"
            "       sightline hash-token < token   (prints the hash for --auth-tokens)\n"
            "       sightline rules check FILE...  (checks Prometheus rule files)\n"
            "       sightline --help\n\n"
            "Flags (each may also be set by its environment variable; a flag wins):\n",
            SL_VERSION);
    for (size_t i = 0; i < NFLAGS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", g_flags[i].name, g_flags[i].arg);
        fprintf(f, "  %-28s %s\n  %-28s [%s]\n", left, g_flags[i].help, "", g_flags[i].env);
    }
    fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

/* Parses a whole number followed by one of units (exact match) into
 * number * mult. A bare number is accepted when bare_mult is nonzero (it is
 * multiplied by that), else only "0" is. Returns 0 or SL_EINVAL. */
static int parse_scaled(const char *s, const unit *units, size_t n, uint64_t bare_mult,
                        uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno != 0 || s[0] == '-') {
        return SL_EINVAL;
    }
    if (*end == '\0' && bare_mult == 0) {
        if (v != 0) {
            return SL_EINVAL; /* a bare duration is ambiguous; only 0 is allowed */
        }
        *out = 0;
        return 0;
    }
    uint64_t mult = *end == '\0' ? bare_mult : 0;
    for (size_t i = 0; mult == 0 && i < n; i++) {
        if (strcmp(end, units[i].name) == 0) {
            mult = units[i].mult;
        }
    }
    if (mult == 0 || v > UINT64_MAX / mult) {
        return SL_EINVAL;
    }
    *out = v * mult;
    return 0;
}

/* "90s", "7d", ... (ns, us, ms, s, m, h, d); a bare "0" means zero. */
int parse_duration(const char *s, uint64_t *out) {
    static const unit units[] = {{"ns", 1},
                                 {"us", 1000},
                                 {"ms", 1000000},
                                 {"s", 1000000000ull},
                                 {"m", 60ull * 1000000000ull},
                                 {"h", 3600ull * 1000000000ull},
                                 {"d", 86400ull * 1000000000ull}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 0, out);
}

/* "16MiB", "512K", "1048576", ... (bytes). */
static int parse_size(const char *s, uint64_t *out) {
    static const unit units[] = {
        {"B", 1},          {"K", 1024},          {"KiB", 1024},       {"M", 1u << 20},
        {"MiB", 1u << 20}, {"G", 1ull << 30},    {"GiB", 1ull << 30}, {"KB", 1000},
        {"MB", 1000000},   {"GB", 1000000000ull}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 1, out);
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
    uint64_t v;
    if (sl_parse_u64(sl_str_c(s), &v) != 0 || v > max) {
        return SL_EINVAL;
    }
    *out = v;
    return 0;
}

/* The flags whose values are more than a number or a string. */
static int apply_other(config *c, int id, const char *val) {
    switch (id) {
    case OPT_OTLP_GRPC_PORT: {
        if (strcmp(val, "off") == 0) {
            c->otlp_grpc_port = -1;
            return 0;
        }
        uint64_t port;
        int rc = parse_uint(val, 65535, &port);
        c->otlp_grpc_port = rc == 0 ? (int64_t)port : c->otlp_grpc_port;
        return rc;
    }
    case OPT_LOG_LEVEL: {
        sl_log_level l;
        if (sl_log_parse_level(val, &l) != 0) {
            return SL_EINVAL;
        }
        c->log_level = val;
        return 0;
    }
    case OPT_CONFIG:
        return 0; /* read before everything else, see configure() */
    default:
        return SL_EINVAL;
    }
}

static const struct flag *flag_by_id(int id);

/* Sets the flag id from val, within the table's bounds. */
static int apply(config *c, int id, const char *val) {
    const struct flag *f = flag_by_id(id);
    if (f == NULL) {
        return SL_EINVAL;
    }
    char *field = (char *)c + f->off;
    uint64_t v = 0;
    int rc = 0;
    switch (f->kind) {
    case V_STR:
        memcpy(field, &val, sizeof(val));
        return 0;
    case V_RATIO: {
        char *end;
        double r = strtod(val, &end);
        if (end == val || *end != '\0' || !(r >= 0 && r <= 1)) {
            return SL_EINVAL;
        }
        memcpy(field, &r, sizeof(r));
        return 0;
    }
    case V_UINT:
        rc = parse_uint(val, UINT64_MAX, &v);
        break;
    case V_SIZE:
        rc = parse_size(val, &v);
        break;
    case V_DURATION:
        rc = parse_duration(val, &v);
        break;
    case V_OTHER:
        return apply_other(c, id, val);
    }
    if (rc != 0 || v < f->min || v > f->max) {
        return SL_EINVAL;
    }
    memcpy(field, &v, sizeof(v));
    return 0;
}

static const struct flag *flag_by_id(int id) {
    for (size_t i = 0; i < NFLAGS; i++) {
        if (g_flags[i].id == id) {
            return &g_flags[i];
        }
    }
    return NULL;
}

/* Values read from the YAML file outlive it: c keeps pointers to them. */
static char *g_yaml_values[64];
static size_t g_nyaml;

static int yaml_set(void *ud, const char *key, const char *value, int line, char *err,
                    size_t err_size) {
    config *c = ud;
    for (size_t i = 0; i < NFLAGS; i++) {
        const char *n = g_flags[i].name;
        size_t j = 0;
        while (n[j] != '\0' && (key[j] == n[j] || (n[j] == '-' && key[j] == '_'))) {
            j++;
        }
        if (n[j] != '\0' || key[j] != '\0') {
            continue;
        }
        char *copy =
            g_nyaml < sizeof(g_yaml_values) / sizeof(g_yaml_values[0]) ? strdup(value) : NULL;
        if (copy == NULL) {
            snprintf(err, err_size, "line %d: too many settings", line);
            return -1;
        }
        g_yaml_values[g_nyaml++] = copy;
        if (g_flags[i].id == OPT_CONFIG || apply(c, g_flags[i].id, copy) != 0) {
            snprintf(err, err_size, "line %d: invalid %s: %s (%s)", line, key, value,
                     g_flags[i].help);
            return -1;
        }
        return 0;
    }
    snprintf(err, err_size, "line %d: unknown setting '%s' (see sightline --help)", line, key);
    return -1;
}

static void free_yaml_values(void) {
    for (size_t i = 0; i < g_nyaml; i++) {
        free(g_yaml_values[i]);
    }
    g_nyaml = 0;
}

/* The --config argument (or SIGHTLINE_CONFIG), found before flags are parsed
 * because the file has the lowest precedence. */
static const char *config_path(int argc, char **argv) {
    const char *path = getenv("SIGHTLINE_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
    }
    return path != NULL && *path != '\0' ? path : NULL;
}

/* Fills c from defaults, then the YAML file, then the environment, then argv.
 * Returns 0, 1 when help was shown, or -1 on a bad value (already reported). */
static int configure(config *c, int argc, char **argv) {
    *c = (config){.host = "0.0.0.0",
                  .otlp_http_port = 4318,
                  .otlp_grpc_port = 4317,
                  .grpc_max_message = 4ull << 20,
                  .max_connections = 1024,
                  .max_inflight_bytes = 256ull << 20,
                  .request_timeout_ns = 30ull * 1000000000ull,
                  .idle_timeout_ns = 60ull * 1000000000ull,
                  .active_series_window_ns = 600ull * 1000000000ull,
                  .query_port = 16686,
                  .data_dir = "./data",
                  .partition_ns = 3600ull * 1000000000ull,
                  .retention_ns = 7ull * 86400 * 1000000000ull,
                  .max_body_size = 16ull << 20,
                  .queue_max = 256,
                  .cut_interval_ns = 2000000000ull,
                  .block_level = 3,
                  .map_size = 256ull << 30,
                  .wal_map_size = 8ull << 30,
                  .metrics_cache = 128ull << 20,
                  .log_level = "info",
                  .al = {.rule_interval_ns = 60ull * 1000000000ull,
                         .group_by = "alertname",
                         .group_wait_ns = 30ull * 1000000000ull,
                         .group_interval_ns = 300ull * 1000000000ull,
                         .repeat_interval_ns = 4ull * 3600 * 1000000000ull,
                         .check_interval_ns = 15ull * 1000000000ull},
                  .health_down_after_ns = 300ull * 1000000000ull,
                  .health_max_p95_ns = 2ull * 1000000000ull,
                  .health_max_error_ratio = 0.05};
    const char *path = config_path(argc, argv);
    if (path != NULL) {
        char err[512];
        if (cfg_load_yaml(path, yaml_set, c, err, sizeof(err)) != 0) {
            fprintf(stderr, "sightline: config %s%s%s\n", strstr(err, path) ? "" : path,
                    strstr(err, path) ? "" : ": ", err);
            return -1;
        }
    }
    for (size_t i = 0; i < NFLAGS; i++) {
        const char *v = getenv(g_flags[i].env);
        if (v != NULL && *v != '\0' && apply(c, g_flags[i].id, v) != 0) {
            fprintf(stderr, "sightline: invalid %s=%s (%s)\n", g_flags[i].env, v, g_flags[i].help);
            return -1;
        }
    }
    struct option longopts[NFLAGS + 2];
    for (size_t i = 0; i < NFLAGS; i++) {
        longopts[i] = (struct option){g_flags[i].name, required_argument, NULL, g_flags[i].id};
    }
    longopts[NFLAGS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NFLAGS + 1] = (struct option){NULL, 0, NULL, 0};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
        const struct flag *f = flag_by_id(ch);
        if (f == NULL) {
            usage(stderr);
            return -1;
        }
        if (apply(c, ch, optarg) != 0) {
            fprintf(stderr, "sightline: invalid --%s %s (%s)\n", f->name, optarg, f->help);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sightline: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int write_ports(const char *path, uint16_t otlp, uint16_t grpc, uint16_t query) {
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -errno;
    }
    fprintf(f, "{\"otlp_http\":%u,\"otlp_grpc\":%u,\"query\":%u}\n", otlp, grpc, query);
    if (fclose(f) != 0) {
        return -errno;
    }
    return rename(tmp, path) == 0 ? 0 : -errno;
}

/* (Re)loads the token file; logs the outcome, never a token. */
static int load_tokens(sl_auth *auth, const char *path) {
    char err[300];
    size_t n = 0;
    int rc = sl_auth_reload(auth, path, &n, err, sizeof(err));
    if (rc != 0) {
        SL_LOG_E("main", "authentication tokens not loaded: %s", err);
    } else {
        SL_LOG_I("main", "authentication: %zu tokens from %s", n, path);
    }
    return rc;
}

/* (Re)loads the limits file into limits; a bad file keeps the limits in
 * force. */
static int load_limits(sl_limits *limits, const char *path) {
    char err[300];
    sl_limits *fresh = NULL;
    int rc = limits_load(path, &fresh, err, sizeof(err));
    if (rc != 0) {
        SL_LOG_E("main", "tenant limits not loaded: %s", err);
        return rc;
    }
    sl_limits_swap_in(limits, fresh);
    SL_LOG_I("main", "tenant limits loaded from %s", path);
    return 0;
}

static int serve(const config *c) {
    int rc = 0;
    stg_store *store = NULL;
    qry_server *qs = NULL;
    col_collector *col = NULL;
    sl_auth *auth = NULL;
    sl_limits *limits = NULL;
    alerting_rt *al = NULL;
    sl_log_level level;
    sl_log_parse_level(c->log_level, &level);
    sl_log_set_level(level);
#ifdef __GLIBC__
    /* Query answers and their evaluation take a few MiB each: below 16 MiB
     * they come from the heap, and up to 64 MiB freed at a heap's top stays
     * for the next query instead of being unmapped and faulted in again
     * (a 4 MiB answer of 600 series: 30 -> 23 ms of CPU). */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif

    /* Block the shutdown and reload signals in every thread; main waits for
     * them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((c->tls_cert == NULL) != (c->tls_key == NULL) ||
        (c->tls_client_ca != NULL && c->tls_cert == NULL)) {
        SL_LOG_E("main", "TLS needs both --tls-cert and --tls-key (and them for --tls-client-ca)");
        rc = SL_EINVAL;
        goto out;
    }
    if (c->auth_tokens != NULL) {
        if ((rc = sl_auth_new(&auth)) != 0 || (rc = load_tokens(auth, c->auth_tokens)) != 0) {
            goto out;
        }
    }
    if (c->limits != NULL) {
        if ((rc = sl_limits_new(&limits)) != 0 || (rc = load_limits(limits, c->limits)) != 0) {
            goto out;
        }
    }
    stg_options so;
    stg_options_init(&so);
    so.limits = limits;
    so.data_dir = c->data_dir;
    so.partition_ns = c->partition_ns;
    so.retention_ns = c->retention_ns;
    so.cut_interval_ms = (uint32_t)(c->cut_interval_ns / 1000000u);
    so.block_level = (int)c->block_level;
    so.map_size = c->map_size;
    so.wal_map_size = c->wal_map_size;
    so.metrics_cache_bytes = c->metrics_cache;
    if ((rc = stg_open(&so, &store)) != 0) {
        SL_LOG_E("main", "cannot open storage in %s: %s", c->data_dir, sl_strerror(rc));
        goto out;
    }
    alerting_settings as = c->al;
    char ext_url[300];
    if (as.external_url == NULL) {
        snprintf(ext_url, sizeof(ext_url), "http://%s:%u",
                 strcmp(c->host, "0.0.0.0") == 0 ? "localhost" : c->host, (unsigned)c->query_port);
        as.external_url = ext_url;
    }
    if ((rc = alerting_create(&as, store, c->data_dir, &al)) != 0) {
        goto out;
    }
    qry_options qo;
    qry_options_init(&qo);
    qo.ext = alerting_http;
    qo.ext_ud = al;
    qo.firing_alerts = alerting_firing;
    qo.check_failing = alerting_check_failing;
    qo.firing_ud = al;
    qo.health_down_after_ms = c->health_down_after_ns / 1000000u;
    qo.health_max_p95_s = (double)c->health_max_p95_ns / 1e9;
    qo.health_max_error_ratio = c->health_max_error_ratio;
    qo.host = c->host;
    qo.port = (uint16_t)c->query_port;
    qo.ui_dir = c->ui_dir;
    qo.auth = auth;
    qo.tls_cert = c->tls_cert;
    qo.tls_key = c->tls_key;
    if ((rc = qry_start(&qo, store, &qs)) != 0) {
        SL_LOG_E("main", "cannot start the query server on port %u: %s", qo.port, sl_strerror(rc));
        goto out;
    }
    col_options co;
    col_options_init(&co);
    co.host = c->host;
    co.http_port = (uint16_t)c->otlp_http_port;
    co.max_body_size = c->max_body_size;
    co.grpc_port = (int32_t)c->otlp_grpc_port;
    co.grpc_max_message = c->grpc_max_message;
    co.queue_max = (uint32_t)c->queue_max;
    co.max_connections = (uint32_t)c->max_connections;
    co.queue_max_bytes = c->max_inflight_bytes;
    co.request_timeout_ms = (uint32_t)(c->request_timeout_ns / 1000000u);
    co.idle_timeout_ms = (uint32_t)(c->idle_timeout_ns / 1000000u);
    co.auth = auth;
    co.tls_cert = c->tls_cert;
    co.tls_key = c->tls_key;
    co.tls_client_ca = c->tls_client_ca;
    co.limits = limits;
    co.active_series_window_ns = c->active_series_window_ns;
    if ((rc = col_start(&co, store, &col)) != 0) {
        SL_LOG_E("main", "cannot start the OTLP receiver on port %u: %s", co.http_port,
                 sl_strerror(rc));
        goto out;
    }
    const char *shown = strcmp(c->host, "0.0.0.0") == 0 ? "localhost" : c->host;
    SL_LOG_I("main", "Sightline %s: data in %s", SL_VERSION, c->data_dir);
    SL_LOG_I("main", "OTLP/HTTP receiver: %s://%s:%u/v1/traces", c->tls_cert ? "https" : "http",
             shown, col_http_port(col));
    if (col_grpc_port(col) != 0) {
        SL_LOG_I("main", "OTLP/gRPC receiver: %s://%s:%u%s", c->tls_cert ? "https" : "http", shown,
                 col_grpc_port(col), c->tls_cert ? " (TLS, ALPN h2)" : " (h2c)");
    }
    const char *scheme = c->tls_cert != NULL ? "https" : "http";
    SL_LOG_I("main", "query API and UI:   %s://%s:%u/", scheme, shown, qry_port(qs));
    if (c->ports_file != NULL && (rc = write_ports(c->ports_file, col_http_port(col),
                                                   col_grpc_port(col), qry_port(qs))) != 0) {
        SL_LOG_E("main", "cannot write %s: %s", c->ports_file, sl_strerror(rc));
        goto out;
    }
    if ((rc = alerting_run(al)) != 0) {
        SL_LOG_E("main", "cannot start the rule evaluator: %s", sl_strerror(rc));
        goto out;
    }
    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
        /* A bad file keeps what is in force. */
        if (auth != NULL) {
            load_tokens(auth, c->auth_tokens); /* a bad file keeps the old tokens */
        }
        if (limits != NULL) {
            load_limits(limits, c->limits);
        }
        alerting_reload(al); /* a bad rule file keeps the old rules */
    }
    SL_LOG_I("main", "signal %d: shutting down", sig);
out:
    col_stop(col);
    qry_stop(qs);
    alerting_destroy(al);
    stg_close(store);
    sl_auth_free(auth);
    sl_limits_free(limits);
    return rc == 0 ? 0 : 1;
}

/* `sightline hash-token`: reads a token on stdin (so that it stays out of
 * shell history and process lists) and prints the line's hash field. */
static int hash_token(void) {
    char tok[1024];
    if (fgets(tok, sizeof(tok), stdin) == NULL) {
        fprintf(stderr, "hash-token: give the token on standard input\n");
        return 2;
    }
    size_t n = strcspn(tok, "\r\n");
    char hex[65];
    if (n == 0 || sl_auth_hash_hex((sl_str){tok, n}, hex) != 0) {
        fprintf(stderr, "hash-token: empty token\n");
        return 2;
    }
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("sightline %s\n", SL_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "hash-token") == 0) {
        return hash_token();
    }
    if (argc >= 2 && strcmp(argv[1], "debug") == 0) {
        return sl_debug_main(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "rules") == 0) {
        return rules_cmd(argc - 1, argv + 1);
    }
    if (argc < 2 || strcmp(argv[1], "serve") != 0) {
        usage(stderr);
        return 2;
    }
    config c;
    int rc = configure(&c, argc - 1, argv + 1);
    if (rc == 0) {
        rc = serve(&c);
    } else {
        rc = rc > 0 ? 0 : 2;
    }
    free_yaml_values();
    return rc;
}
