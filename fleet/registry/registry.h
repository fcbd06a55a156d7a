/*
 * The registry service's core, independent of the HTTP server library: the
 * instance table behind one mutex, its SQLite store, a ticker thread (TTL
 * expiry and heartbeat flushes every tick) and a checker thread (active
 * /health checks of every instance on an interval with bounded concurrency),
 * and the registry HTTP API as one function from a request to a JSON answer.
 *
 * API (JSON bodies; errors are {"error":"..."} with a 4xx):
 *   POST   /v1/registry/instances            {"name","version","address","tags","ttl_s"}
 *          -> 201 {"id"} (200 when the same name+address re-registers)
 *   PUT    /v1/registry/instances/{id}/heartbeat -> 200 {"id","status"} | 404
 *   DELETE /v1/registry/instances/{id}       -> 204 | 404
 *   GET    /v1/registry/instances/{id}       -> 200 instance | 404
 *   GET    /v1/registry/services             -> {"services":[{"name","instances","passing"}]}
 *   GET    /v1/registry/services/{name}?version=&tag=&all=1 -> {"instances":[...]}
 * reg_registry_handle is thread-safe: the HTTP server calls it from any thread.
 */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct reg_registry reg_registry;

typedef struct reg_options {
    const char *db_path;    /* SQLite file; NULL = in memory only */
    uint64_t reap_after_ns; /* critical-by-TTL instances removed after this; 0 = never */
    uint32_t default_ttl_s; /* when a registration omits ttl_s */
    int tick_ms;            /* expiry and heartbeat-flush period */
    int check_interval_ms;  /* active health checks; 0 = off */
    int check_concurrency;  /* checks in flight at most */
    long check_timeout_ms;  /* per check */
} reg_options;

/* Defaults: no database, reap after 10 min, ttl 30 s, tick 500 ms, checks
 * every 10 s, 32 in flight, 2 s timeout. */
void reg_options_init(reg_options *o);

/* Opens the store, loads what it holds and starts the ticker and checker
 * threads. Returns 0, SL_ESTORAGE, SL_ENOMEM or -errno (thread creation). */
int reg_registry_create(const reg_options *o, reg_registry **out);

/* Stops the threads, flushes pending heartbeat times, closes the store. */
void reg_registry_destroy(reg_registry *r);

/* One answer of the API: status and a malloc'd JSON body (NULL for 204). */
typedef struct reg_reply {
    int status;
    char *body;
} reg_reply;

/* Answers one request. path excludes the query string; query is the raw
 * query string without '?' (NULL or "" for none). Thread-safe. The caller
 * frees reply->body. */
void reg_registry_handle(reg_registry *r, const char *method, const char *path, const char *query,
                         const char *body, size_t body_len, reg_reply *reply);

/* Instances and passing instances (for /metrics and the benchmark). */
void reg_registry_counts(reg_registry *r, size_t *instances, size_t *passing);

/* Runs the ticker's work once at now_ns (tests drive the clock with it). */
void reg_registry_tick(reg_registry *r, uint64_t now_ns);

/* Runs one round of active checks synchronously (tests). */
void reg_registry_check_now(reg_registry *r);

#endif
