/*
 * The registry's instance table: every registered service instance, found by
 * id and grouped by service name (two hash maps), with TTL expiry driven by a
 * min-heap of deadlines so that a tick touches only the instances whose
 * deadline has passed, never the whole table. An instance is "passing" while
 * it heartbeats within its TTL and its last active health check (if any)
 * succeeded; otherwise it is "critical". A critical-by-TTL instance that stays
 * silent for reap_after_ns more is removed.
 *
 * Times are wall-clock nanoseconds passed in by the caller (tests drive the
 * clock). Not thread-safe: the registry service serializes access with one
 * mutex. Ids are the first 128 bits of SHA-256(name NUL address) in hex, so
 * re-registering the same name and address yields the same id, also across
 * restarts.
 */
#ifndef REG_TABLE_H
#define REG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_ID_LEN 32
#define REG_MAX_TAGS 16
#define REG_MAX_FIELD 256 /* name, version, address, each tag (bytes) */

typedef struct reg_table reg_table;

/* A borrowed read-only view of one instance, valid until the next call that
 * modifies the table. */
typedef struct reg_view {
    const char *id;
    const char *name;
    const char *version;
    const char *address;
    const char *const *tags;
    size_t n_tags;
    uint32_t ttl_s;
    uint64_t registered_unix_ns;
    uint64_t last_heartbeat_unix_ns;
    bool passing;
    bool ttl_expired;
    bool check_failing;
    const char *check_output; /* last failed check's reason, "" when none */
} reg_view;

/* What one registration carries. Strings are borrowed for the call. */
typedef struct reg_spec {
    const char *name;
    const char *version;
    const char *address;
    const char *const *tags;
    size_t n_tags;
    uint32_t ttl_s;
} reg_spec;

/* Creates an empty table. reap_after_ns: how long an instance stays listed
 * (critical) after its TTL expired before it is removed; 0 = never. Returns 0
 * or SL_ENOMEM. */
int reg_table_create(uint64_t reap_after_ns, reg_table **out);
void reg_table_destroy(reg_table *t);

/* Checks a registration: non-empty name of [A-Za-z0-9._-], an http:// or
 * https:// address, printable fields within REG_MAX_FIELD, at most
 * REG_MAX_TAGS tags without commas, ttl_s in [1, 86400]. Returns 0 or
 * SL_EINVAL with a static reason in *why. */
int reg_spec_check(const reg_spec *s, const char **why);

/* Computes the id of name+address into id[REG_ID_LEN + 1]. */
void reg_instance_id(const char *name, const char *address, char id[REG_ID_LEN + 1]);

/* Registers (or re-registers: same name and address = same id, fields
 * replaced) an instance, heartbeated at now. *created tells which. The id is
 * copied to id_out. Returns 0, SL_EINVAL (spec invalid) or SL_ENOMEM. */
int reg_table_register(reg_table *t, const reg_spec *s, uint64_t now_ns,
                       char id_out[REG_ID_LEN + 1], bool *created);

/* Restores an instance loaded from the store with its original times; its
 * TTL restarts at now_ns (a grace period after a registry restart, since
 * clients could not heartbeat while it was down). Returns like register. */
int reg_table_restore(reg_table *t, const reg_spec *s, uint64_t registered_unix_ns,
                      uint64_t last_heartbeat_unix_ns, uint64_t now_ns);

/* Records a heartbeat. Returns 0 or SL_ENOTFOUND. */
int reg_table_heartbeat(reg_table *t, const char *id, uint64_t now_ns);

/* Removes an instance. Returns 0 or SL_ENOTFOUND. */
int reg_table_remove(reg_table *t, const char *id);

/* Records an active health check's outcome (output: a short reason when it
 * failed, may be NULL). Returns 0 or SL_ENOTFOUND. */
int reg_table_set_check(reg_table *t, const char *id, bool ok, const char *output);

/* Called once per removed-or-expired instance by reg_table_expire. */
typedef void (*reg_event_fn)(void *ud, const reg_view *v, bool removed);

/* Processes every deadline <= now_ns: instances past their TTL turn critical,
 * those critical for reap_after_ns more are removed. on_event (may be NULL)
 * sees each one before removal. Cost: O(k log n) for k due deadlines.
 * Returns the number of instances that changed. */
size_t reg_table_expire(reg_table *t, uint64_t now_ns, reg_event_fn on_event, void *ud);

/* Looks up one instance. Returns 0 and fills *v, or SL_ENOTFOUND. */
int reg_table_get(const reg_table *t, const char *id, reg_view *v);

/* Number of instances and of services. */
size_t reg_table_count(const reg_table *t);
size_t reg_table_service_count(const reg_table *t);
/* Number of passing instances (sums the services' counts). */
size_t reg_table_passing(const reg_table *t);

/* Visits services in name order: fn(ud, name, instances, passing). Returns 0
 * or SL_ENOMEM (sorting needs a temporary array). */
typedef void (*reg_service_fn)(void *ud, const char *name, size_t instances, size_t passing);
int reg_table_each_service(const reg_table *t, reg_service_fn fn, void *ud);

/* A discovery filter. version: a pattern for edge_version_match (NULL = any).
 * tags: every listed tag must be present. include_critical: list critical
 * instances too. */
typedef struct reg_filter {
    const char *version;
    const char *const *tags;
    size_t n_tags;
    bool include_critical;
} reg_filter;

/* Visits the instances of service name that pass the filter, in registration
 * order. Returns the number visited. */
typedef void (*reg_instance_fn)(void *ud, const reg_view *v);
size_t reg_table_each_instance(const reg_table *t, const char *name, const reg_filter *f,
                               reg_instance_fn fn, void *ud);

/* Visits every instance (any order). */
void reg_table_each(const reg_table *t, reg_instance_fn fn, void *ud);

/* Heartbeats not yet persisted: visits every instance whose last heartbeat
 * changed since the previous call and clears the mark. */
size_t reg_table_take_dirty(reg_table *t, reg_instance_fn fn, void *ud);

#endif
