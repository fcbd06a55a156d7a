/*
 * The process skeleton (see sf_app.h): configuration, the order in which the
 * parts start and stop, and the signal handling. SIGTERM and SIGINT are
 * blocked before any thread starts, so every thread inherits the mask and the
 * main thread alone takes them in sf_app_run (sigtimedwait).
 */
#include "sf/sf_app.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_err.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_FLAGS 32
#define MAX_REQUIRED 16

typedef struct required {
    struct sf_app *app;
    char name[64];
} required;

struct sf_app {
    sf_app_options o;
    sf_config cfg;
    const char *flag_values[MAX_FLAGS];
    sf_telemetry *tel;
    sf_jwt_key *key;
    sqlite3 *db;
    sf_server *server;
    sf_client *client;
    sf_registry *registry;
    sf_bus *bus;
    required required[MAX_REQUIRED];
    size_t nrequired;
    char address[64];
    atomic_bool stop;
};

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static void usage(const sf_app_options *o) {
    printf("usage: fleet-%s [flags]\n%s%s"
           "\n"
           "  --listen HOST:PORT       address to serve (FLEET_LISTEN; 127.0.0.1:0)\n"
           "  --db FILE                SQLite database (FLEET_DB)\n"
           "  --registry URL           registry to register with (FLEET_REGISTRY)\n"
           "  --nats URL               NATS server (FLEET_NATS)\n"
           "  --service-key-file FILE  HS256 key of service tokens (FLEET_SERVICE_KEY_FILE)\n"
           "  --version V              this instance's version (FLEET_VERSION; 1.0.0)\n"
           "  --tags a,b               this instance's tags (FLEET_TAGS)\n"
           "  --enable-faults          serve /admin/faults (FLEET_ENABLE_FAULTS=1)\n"
           "  --max-body-size BYTES    request body limit (FLEET_MAX_BODY_SIZE; 1048576)\n"
           "  --drain-timeout-ms MS    shutdown drain bound (FLEET_DRAIN_TIMEOUT_MS; 10000)\n"
           "  --log-level LEVEL        debug, info, warn, error (FLEET_LOG_LEVEL; info)\n",
           o->service, o->description != NULL ? o->description : "",
           o->description != NULL ? "\n" : "");
    for (size_t i = 0; i < o->flag_count; i++) {
        printf("  --%-22s %s%s%s%s\n", o->flags[i].name, o->flags[i].help,
               o->flags[i].env != NULL ? " (" : "", o->flags[i].env != NULL ? o->flags[i].env : "",
               o->flags[i].env != NULL ? ")" : "");
    }
    printf("Telemetry: the standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT...).\n");
}

static int parse_size(const char *s, unsigned long long max, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max || s[0] == '-') {
        return SF_EUSAGE;
    }
    *out = v;
    return 0;
}

int sf_config_parse(const sf_app_options *o, int argc, char **argv, sf_config *c,
                    const char **flag_values, char *err, size_t cap) {
    memset(c, 0, sizeof(*c));
    c->listen = env_or("FLEET_LISTEN", "127.0.0.1:0");
    c->db = env_or("FLEET_DB", NULL);
    c->registry = env_or("FLEET_REGISTRY", NULL);
    c->nats = env_or("FLEET_NATS", NULL);
    c->service_key_file = env_or("FLEET_SERVICE_KEY_FILE", NULL);
    c->version = env_or("FLEET_VERSION", "1.0.0");
    c->tags = env_or("FLEET_TAGS", "");
    const char *faults = env_or("FLEET_ENABLE_FAULTS", "0");
    c->enable_faults = strcmp(faults, "1") == 0 || strcasecmp(faults, "true") == 0;
    const char *body = env_or("FLEET_MAX_BODY_SIZE", "1048576");
    const char *drain = env_or("FLEET_DRAIN_TIMEOUT_MS", "10000");
    c->log_level = env_or("FLEET_LOG_LEVEL", "info");
    if (o->flag_count > MAX_FLAGS) {
        snprintf(err, cap, "too many service flags");
        return SF_EUSAGE;
    }
    for (size_t i = 0; i < o->flag_count; i++) {
        flag_values[i] =
            o->flags[i].env != NULL ? env_or(o->flags[i].env, o->flags[i].dflt) : o->flags[i].dflt;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(o);
            return 1;
        }
        if (strcmp(a, "--enable-faults") == 0) {
            c->enable_faults = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, cap, "unexpected argument %s", a);
            return SF_EUSAGE;
        }
        /* --name=value or --name value */
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        static const char *const common[] = {
            "listen",           "db",       "registry", "nats",
            "service-key-file", "version",  "tags",     "max-body-size",
            "drain-timeout-ms", "log-level"};
        const char **slots[] = {&c->listen,  &c->db,   &c->registry, &c->nats, &c->service_key_file,
                                &c->version, &c->tags, &body,        &drain,   &c->log_level};
        const char **slot = NULL; /* where the flag's value goes */
        for (size_t k = 0; k < sizeof common / sizeof common[0] && slot == NULL; k++) {
            if (strlen(common[k]) == nlen && strncmp(common[k], name, nlen) == 0) {
                slot = slots[k];
            }
        }
        for (size_t k = 0; k < o->flag_count && slot == NULL; k++) {
            if (strlen(o->flags[k].name) == nlen && strncmp(o->flags[k].name, name, nlen) == 0) {
                slot = &flag_values[k];
            }
        }
        if (slot == NULL) {
            snprintf(err, cap, "unknown flag --%.*s (see --help)", (int)nlen, name);
            return SF_EUSAGE;
        }
        const char *val = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (val == NULL) {
            snprintf(err, cap, "flag --%s needs a value", name);
            return SF_EUSAGE;
        }
        *slot = val;
    }
    unsigned long long v;
    if (parse_size(body, (unsigned long long)1 << 30, &v) != 0) {
        snprintf(err, cap, "bad --max-body-size %s", body);
        return SF_EUSAGE;
    }
    c->max_body_size = (size_t)v;
    if (parse_size(drain, 600000, &v) != 0) {
        snprintf(err, cap, "bad --drain-timeout-ms %s", drain);
        return SF_EUSAGE;
    }
    c->drain_timeout_ms = (unsigned)v;
    if (sf_log_set_level(c->log_level) != 0) {
        snprintf(err, cap, "bad --log-level %s", c->log_level);
        return SF_EUSAGE;
    }
    if (c->version[0] == '\0') {
        snprintf(err, cap, "--version must not be empty");
        return SF_EUSAGE;
    }
    return 0;
}

int sf_db_open(const char *path, sqlite3 **out) {
    *out = NULL;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sf_log(SL_SEVERITY_ERROR, "cannot open database %s: %s", path,
               db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return SF_EDB;
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    rc = sqlite3_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                      "PRAGMA foreign_keys=ON;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        sf_log(SL_SEVERITY_ERROR, "cannot set up database %s: %s", path, msg);
        sqlite3_free(msg);
        sqlite3_close(db);
        return SF_EDB;
    }
    *out = db;
    return 0;
}

int sf_db_begin(sqlite3 *db) {
    sqlite3_mutex_enter(sqlite3_db_mutex(db));
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sf_log(SL_SEVERITY_ERROR, "BEGIN: %s", sqlite3_errmsg(db));
        sqlite3_mutex_leave(sqlite3_db_mutex(db));
        return SF_EDB;
    }
    return 0;
}

int sf_db_commit(sqlite3 *db) {
    int rc = 0;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sf_log(SL_SEVERITY_ERROR, "COMMIT: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        rc = SF_EDB;
    }
    sqlite3_mutex_leave(sqlite3_db_mutex(db));
    return rc;
}

void sf_db_rollback(sqlite3 *db) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_mutex_leave(sqlite3_db_mutex(db));
}

static int check_db(void *ud, char *err, size_t cap) {
    sqlite3 *db = ud;
    int rc = sqlite3_exec(db, "SELECT 1", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "%s", sqlite3_errmsg(db));
        return SF_EDB;
    }
    return 0;
}

static int check_upstream(void *ud, char *err, size_t cap) {
    required *r = ud;
    if (sf_client_breaker_state(r->app->client, r->name) == SF_BREAKER_OPEN) {
        snprintf(err, cap, "circuit breaker open");
        return SF_EOPEN;
    }
    char addr[256];
    if (r->app->registry != NULL &&
        sf_registry_pick(r->app->registry, r->name, NULL, NULL, addr, sizeof addr) != 0) {
        snprintf(err, cap, "no passing instance in the registry");
        return SF_ENOINSTANCE;
    }
    return 0;
}

int sf_app_require_upstream(sf_app *a, const char *service) {
    if (a->nrequired == MAX_REQUIRED || strlen(service) >= sizeof a->required[0].name) {
        return SL_EINVAL;
    }
    required *r = &a->required[a->nrequired];
    r->app = a;
    snprintf(r->name, sizeof r->name, "%s", service);
    int rc = sf_server_add_check(a->server, service, check_upstream, r);
    if (rc == 0) {
        a->nrequired++;
    }
    return rc;
}

int sf_app_create(const sf_app_options *o, int argc, char **argv, sf_app **out) {
    *out = NULL;
    if (o == NULL || o->service == NULL) {
        return SL_EINVAL;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* libcurl's global state, from the main thread before any other. */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    sf_app *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return SL_ENOMEM;
    }
    a->o = *o;
    char err[256];
    int rc = sf_config_parse(o, argc, argv, &a->cfg, a->flag_values, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) {
            fprintf(stderr, "fleet-%s: %s\n", o->service, err);
        }
        goto fail;
    }
    if (o->needs_db && a->cfg.db == NULL) {
        fprintf(stderr, "fleet-%s: --db FILE is required\n", o->service);
        rc = SF_EUSAGE;
        goto fail;
    }
    if (o->needs_nats && a->cfg.nats == NULL) {
        fprintf(stderr, "fleet-%s: --nats URL is required\n", o->service);
        rc = SF_EUSAGE;
        goto fail;
    }
    if ((rc = sf_telemetry_create(o->service, a->cfg.version, &a->tel)) != 0) {
        fprintf(stderr, "fleet-%s: telemetry: %s\n", o->service, sl_otel_strerror(rc));
        goto fail;
    }
    if (a->cfg.service_key_file != NULL &&
        (rc = sf_jwt_key_hs256_file(a->cfg.service_key_file, &a->key)) != 0) {
        sf_log(SL_SEVERITY_ERROR, "cannot load the service key %s: %s", a->cfg.service_key_file,
               sf_strerror(rc));
        goto fail;
    }
    if (a->key == NULL) {
        sf_log(SL_SEVERITY_WARN, "no --service-key-file: service tokens are neither sent "
                                 "nor checked");
    }
    if (a->cfg.db != NULL && (rc = sf_db_open(a->cfg.db, &a->db)) != 0) {
        goto fail;
    }
    sf_server_options so;
    sf_server_options_init(&so);
    so.service = o->service;
    so.listen = a->cfg.listen;
    so.max_body_size = a->cfg.max_body_size;
    so.service_key = a->key;
    so.enable_faults = a->cfg.enable_faults;
    so.telemetry = a->tel;
    if ((rc = sf_server_create(&so, &a->server)) != 0) {
        goto fail;
    }
    if (a->db != NULL && (rc = sf_server_add_check(a->server, "db", check_db, a->db)) != 0) {
        goto fail;
    }
    sf_client_options co;
    sf_client_options_init(&co);
    co.service = o->service;
    co.service_key = a->key;
    co.telemetry = a->tel;
    if ((rc = sf_client_create(&co, &a->client)) != 0) {
        goto fail;
    }
    if (a->cfg.registry != NULL) {
        /* Made before the server starts (its threads read these pointers);
         * the address is filled in once the port is known. */
        sf_registry_options ro;
        sf_registry_options_init(&ro);
        ro.url = a->cfg.registry;
        ro.client = a->client;
        ro.service = o->service;
        ro.version = a->cfg.version;
        ro.tags = a->cfg.tags;
        if ((rc = sf_registry_create(&ro, &a->registry)) != 0) {
            goto fail;
        }
        sf_client_set_registry(a->client, a->registry);
    }
    if (a->cfg.nats != NULL) {
        sf_bus_options bo;
        sf_bus_options_init(&bo);
        bo.url = a->cfg.nats;
        bo.service = o->service;
        bo.telemetry = a->tel;
        if ((rc = sf_bus_connect(&bo, &a->bus)) != 0 ||
            (rc = sf_server_add_check(a->server, "nats", sf_bus_check, a->bus)) != 0) {
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    sf_app_destroy(a);
    return rc;
}

int sf_app_run(sf_app *a) {
    int rc = sf_server_bind(a->server);
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "cannot listen on %s: %s", a->cfg.listen, sf_strerror(rc));
        return rc;
    }
    const char *host = "127.0.0.1";
    const char *colon = strrchr(a->cfg.listen, ':');
    char hbuf[48];
    if (colon != NULL && colon != a->cfg.listen && (size_t)(colon - a->cfg.listen) < sizeof hbuf &&
        strncmp(a->cfg.listen, "0.0.0.0", 7) != 0) {
        memcpy(hbuf, a->cfg.listen, (size_t)(colon - a->cfg.listen));
        hbuf[colon - a->cfg.listen] = '\0';
        host = hbuf;
    }
    snprintf(a->address, sizeof a->address, "http://%s:%u", host,
             (unsigned)sf_server_port(a->server));
    /* The address is known before the server's threads start (they may read it). */
    if ((rc = sf_server_start(a->server)) != 0) {
        sf_log(SL_SEVERITY_ERROR, "cannot serve on %s: %s", a->address, sf_strerror(rc));
        return rc;
    }
    sf_log(SL_SEVERITY_INFO, "version %s serving on %s%s", a->cfg.version, a->address,
           sf_telemetry_exporting(a->tel) ? "" : " (telemetry export off)");
    printf("listening on %s\n", a->address);
    fflush(stdout);
    if (a->registry != NULL) {
        sf_registry_set_address(a->registry, a->address);
        sf_registry_register(a->registry); /* failures are retried by its thread */
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    struct timespec tick = {0, 200 * 1000000L};
    int sig = -1;
    while (!atomic_load(&a->stop)) {
        sig = sigtimedwait(&stop, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }
    if (a->registry != NULL) {
        sf_registry_deregister(a->registry);
    }
    sf_log(SL_SEVERITY_INFO, "%s: draining %u in-flight requests",
           sig == SIGINT ? "SIGINT" : "shutting down", sf_server_in_flight(a->server));
    rc = sf_server_drain(a->server, a->cfg.drain_timeout_ms);
    if (rc != 0) {
        sf_log(SL_SEVERITY_WARN, "drain timed out after %u ms", a->cfg.drain_timeout_ms);
    }
    if (a->o.on_stop != NULL) {
        a->o.on_stop(a, a->o.userdata);
    }
    sf_log(SL_SEVERITY_INFO, "stopped");
    return 0;
}

void sf_app_stop(sf_app *a) {
    atomic_store(&a->stop, true);
}

void sf_app_destroy(sf_app *a) {
    if (a == NULL) {
        return;
    }
    sf_server_destroy(a->server);
    sf_bus_close(a->bus);
    /* The last export and metric collection, while what they read exists. */
    sf_telemetry_shutdown(a->tel, 5000);
    if (a->client != NULL) { /* NULL when start-up failed before it was made */
        sf_client_set_registry(a->client, NULL);
    }
    sf_registry_destroy(a->registry);
    sf_client_destroy(a->client);
    if (a->db != NULL) {
        sqlite3_close(a->db);
    }
    sf_jwt_key_destroy(a->key);
    sf_telemetry_destroy(a->tel, 5000);
    free(a);
}

int sf_app_main(const sf_app_options *o, int argc, char **argv,
                int (*setup)(sf_app *app, void *userdata), void *userdata) {
    sf_app *a;
    int rc = sf_app_create(o, argc, argv, &a);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (setup != NULL && (rc = setup(a, userdata)) != 0) {
        sf_log(SL_SEVERITY_ERROR, "setup failed: %s", sf_strerror(rc));
        sf_app_destroy(a);
        return 1;
    }
    rc = sf_app_run(a);
    sf_app_destroy(a);
    return rc == 0 ? 0 : 1;
}

const sf_config *sf_app_config(const sf_app *a) {
    return &a->cfg;
}
const char *sf_app_flag(const sf_app *a, const char *name) {
    for (size_t i = 0; i < a->o.flag_count; i++) {
        if (strcmp(a->o.flags[i].name, name) == 0) {
            return a->flag_values[i];
        }
    }
    return NULL;
}
const char *sf_app_service(const sf_app *a) {
    return a->o.service;
}
sf_server *sf_app_server(sf_app *a) {
    return a->server;
}
sf_telemetry *sf_app_telemetry(sf_app *a) {
    return a->tel;
}
const sf_jwt_key *sf_app_service_key(const sf_app *a) {
    return a->key;
}
sqlite3 *sf_app_db(sf_app *a) {
    return a->db;
}
sf_client *sf_app_client(sf_app *a) {
    return a->client;
}
sf_registry *sf_app_registry(sf_app *a) {
    return a->registry;
}
sf_bus *sf_app_bus(sf_app *a) {
    return a->bus;
}
const char *sf_app_address(const sf_app *a) {
    return a->address;
}
