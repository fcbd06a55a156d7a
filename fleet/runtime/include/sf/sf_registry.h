/*
 * The registry client: registers this instance with the fleet's registry
 * (fleet-registry, API in fleet/README.md), keeps it alive with heartbeats
 * from a background thread (re-registering when the registry answers 404,
 * e.g. after the registry restarted or expired the instance), discovers the
 * instances of other services with a local cache, and deregisters on
 * shutdown. Calls go through the runtime's HTTP client (upstream "registry",
 * scope "registry": tokens, timeouts, retries, the breaker) but untraced:
 * heartbeats and cache refreshes would otherwise start a trace every few
 * seconds and sprinkle lookups through the services' traces.
 *
 * Discovery: sf_registry_pick() answers from the cache while it is fresh
 * (cache_ttl_ms), refreshes it otherwise, and keeps serving a stale list when
 * the registry cannot be reached (availability over freshness). Instances of
 * a list are handed out round-robin. Thread-safe.
 */
#ifndef SF_REGISTRY_H
#define SF_REGISTRY_H

#include "sf_client.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_registry sf_registry;

typedef struct sf_registry_options {
    const char *url;     /* required: "http://127.0.0.1:8500" */
    sf_client *client;   /* required, borrowed */
    const char *service; /* this instance (for register) */
    const char *version;
    const char *address;   /* "http://127.0.0.1:PORT" */
    const char *tags;      /* "a,b" */
    unsigned ttl_s;        /* 30 */
    unsigned heartbeat_ms; /* 10000 (and at most ttl_s * 1000 / 3) */
    unsigned cache_ttl_ms; /* 2000 */
} sf_registry_options;

void sf_registry_options_init(sf_registry_options *o);

/* Copies the strings. The caller owns *out. Errors: SL_EINVAL, SL_ENOMEM. */
int sf_registry_create(const sf_registry_options *o, sf_registry **out);

/* Sets (copies) the address registered for this instance, when it was not
 * known at creation (the port is chosen when the server binds). Call before
 * sf_registry_register, from the thread that registers. */
int sf_registry_set_address(sf_registry *r, const char *address);

/* Registers this instance and starts the heartbeat thread. A registry that
 * cannot be reached is retried by the heartbeat thread: the error is
 * returned (and logged) but the thread runs. Errors: the client's, SF_EUPSTREAM
 * (unexpected answer). */
int sf_registry_register(sf_registry *r);

/* Stops the heartbeat thread and deletes the registration (one attempt,
 * bounded by the client's timeout). */
int sf_registry_deregister(sf_registry *r);

/* The registration id ("" before the first successful registration),
 * copied into out. */
void sf_registry_id(sf_registry *r, char *out, size_t cap);

/* Picks an instance address of service (version and tag: NULL = any),
 * round-robin over the passing instances. Errors: SF_ENOINSTANCE (none, or
 * the registry unreachable with nothing cached). */
int sf_registry_pick(sf_registry *r, const char *service, const char *version, const char *tag,
                     char *address, size_t cap);

/* Drops the cached list of service (e.g. after its instance failed). */
void sf_registry_invalidate(sf_registry *r, const char *service);

/* Stops (deregistering if needed) and frees. NULL harmless. */
void sf_registry_destroy(sf_registry *r);

#ifdef __cplusplus
}
#endif

#endif
