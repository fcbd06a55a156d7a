/*
 * The process skeleton every fleet service uses: command-line flags (and
 * FLEET_* environment variables), telemetry through sdk-c, the HTTP server,
 * the service key, the SQLite database, and a clean shutdown on SIGTERM.
 *
 * Common flags (the flag wins over its variable):
 *   --listen HOST:PORT     FLEET_LISTEN            127.0.0.1:0 (0 = ephemeral)
 *   --db FILE              FLEET_DB                SQLite database (WAL mode)
 *   --registry URL         FLEET_REGISTRY          omit: no registration
 *   --nats URL             FLEET_NATS              nats://127.0.0.1:4222 style
 *   --service-key-file F   FLEET_SERVICE_KEY_FILE  shared HS256 key for service tokens
 *   --version V            FLEET_VERSION           the instance's version (1.0.0)
 *   --tags a,b             FLEET_TAGS
 *   --enable-faults        FLEET_ENABLE_FAULTS=1   serve /admin/faults
 *   --max-body-size BYTES  FLEET_MAX_BODY_SIZE     1048576
 *   --drain-timeout-ms MS  FLEET_DRAIN_TIMEOUT_MS  10000
 *   --log-level L          FLEET_LOG_LEVEL         info
 * plus the service's own flags (sf_app_options.flags).
 *
 * sf_app_create also makes the HTTP client (service tokens with the key),
 * the registry client with --registry (sf_app_run registers once serving,
 * heartbeats, and the client's discovery-aware calls use its cache) and the
 * bus with --nats (its /ready check included).
 *
 * Once serving, the process prints exactly one line
 * "listening on http://HOST:PORT" on stdout and flushes it. On SIGTERM or
 * SIGINT it deregisters, stops accepting, drains in-flight requests
 * (bounded), runs the service's stop hook, closes the bus and the database,
 * flushes telemetry and returns 0.
 *
 * Thread-safety: create/run/destroy from the main thread; the getters may be
 * called from any thread once created.
 */
#ifndef SF_APP_H
#define SF_APP_H

#include "sf_bus.h"
#include "sf_client.h"
#include "sf_err.h"
#include "sf_registry.h"
#include "sf_server.h"
#include "sf_telemetry.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_app sf_app;

/* A service-specific string flag "--name VALUE" (env: its env name). */
typedef struct sf_flag {
    const char *name; /* without the dashes */
    const char *env;  /* NULL: none */
    const char *help;
    const char *dflt; /* NULL: unset */
} sf_flag;

typedef struct sf_config {
    const char *listen;
    const char *db;
    const char *registry;
    const char *nats;
    const char *service_key_file;
    const char *version;
    const char *tags;
    bool enable_faults;
    size_t max_body_size;
    unsigned drain_timeout_ms;
    const char *log_level;
} sf_config;

typedef struct sf_app_options {
    const char *service; /* required: "users" (the binary is fleet-users) */
    const char *description;
    const sf_flag *flags;
    size_t flag_count;
    bool needs_db;   /* refuse to start without --db */
    bool needs_nats; /* refuse to start without --nats */
    /* Called after the server stopped and before the bus and database close. */
    void (*on_stop)(sf_app *app, void *userdata);
    void *userdata;
} sf_app_options;

/* Parses the configuration from argv and the environment (strings borrowed
 * from them). With --help prints the usage on stdout and returns 1; on a bad
 * flag writes the reason into err and returns SF_EUSAGE. */
int sf_config_parse(const sf_app_options *o, int argc, char **argv, sf_config *c,
                    const char **flag_values, char *err, size_t cap);

/* Blocks SIGTERM/SIGINT (they are taken by sf_app_run) and ignores SIGPIPE,
 * parses the configuration, creates the telemetry, loads the service key,
 * opens the database and creates the server (not listening yet). Returns 1
 * after printing --help; SF_EUSAGE (reason on stderr) or another error
 * otherwise. The caller owns *out. */
int sf_app_create(const sf_app_options *o, int argc, char **argv, sf_app **out);

/* Starts serving, prints the listening line, waits for SIGTERM/SIGINT and
 * shuts down as described above. Returns 0 on a clean shutdown. */
int sf_app_run(sf_app *app);

/* Asks a running sf_app_run to shut down (as SIGTERM would); any thread. */
void sf_app_stop(sf_app *app);

/* Frees everything. NULL harmless. */
void sf_app_destroy(sf_app *app);

/* One call for a service's main(): create, setup (routes, checks,
 * subscriptions; a non-zero return aborts), run, destroy. Returns the
 * process exit code. */
int sf_app_main(const sf_app_options *o, int argc, char **argv,
                int (*setup)(sf_app *app, void *userdata), void *userdata);

const sf_config *sf_app_config(const sf_app *app);
/* A service flag's value (NULL when unset). */
const char *sf_app_flag(const sf_app *app, const char *name);
const char *sf_app_service(const sf_app *app);
sf_server *sf_app_server(sf_app *app);
sf_telemetry *sf_app_telemetry(sf_app *app);
/* The service key (NULL without --service-key-file). */
const sf_jwt_key *sf_app_service_key(const sf_app *app);
/* The database (NULL without --db): WAL mode, a 5 s busy timeout, foreign
 * keys on. One connection shared by the process's threads (SQLite's
 * serialized mode): single statements need nothing more, but a transaction
 * must hold the connection for its whole length, which sf_db_begin /
 * sf_db_commit / sf_db_rollback do (the connection's own recursive mutex). */
sqlite3 *sf_app_db(sf_app *app);
/* The HTTP client (always made; tokens when a key is configured). */
sf_client *sf_app_client(sf_app *app);
/* The registry client (NULL without --registry). */
sf_registry *sf_app_registry(sf_app *app);
/* The bus (NULL without --nats). */
sf_bus *sf_app_bus(sf_app *app);
/* The address the instance is reachable at, "http://127.0.0.1:PORT" (after
 * the server started). */
const char *sf_app_address(const sf_app *app);

/* Declares that this service cannot serve without `service`: /ready then
 * checks it (503 naming it) — with --registry, that discovery finds a passing
 * instance of it; in any case, that its circuit breaker is not open. Call
 * from the setup function. Errors: SL_ENOMEM. */
int sf_app_require_upstream(sf_app *app, const char *service);

/* Opens (creating) a SQLite database the way sf_app does. Errors: SF_EDB. */
int sf_db_open(const char *path, sqlite3 **out);

/* BEGIN IMMEDIATE with the connection held by the calling thread until
 * sf_db_commit or sf_db_rollback (which release it whatever they return).
 * Errors: SF_EDB (then the connection is already released). */
int sf_db_begin(sqlite3 *db);
int sf_db_commit(sqlite3 *db);
void sf_db_rollback(sqlite3 *db);

#ifdef __cplusplus
}
#endif

#endif
