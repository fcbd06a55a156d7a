/*
 * The registry's SQLite persistence, so that a restarted registry keeps its
 * instances. Registrations and removals are written at once (the API answers
 * after the row is committed); heartbeats are batched: the registry hands the
 * store the instances heartbeated since the last flush and the store updates
 * them in one transaction (a lost second of heartbeat times costs nothing: a
 * restored instance gets a fresh TTL anyway). WAL journal, synchronous=NORMAL.
 * Every function is thread-safe (one mutex around the connection).
 */
#ifndef REG_STORE_H
#define REG_STORE_H

#include "reg_table.h"

typedef struct reg_store reg_store;

/* Opens (creating if needed) the database at path. Returns 0, SL_ESTORAGE
 * (with a log line saying why) or SL_ENOMEM. */
int reg_store_open(const char *path, reg_store **out);
void reg_store_close(reg_store *s);

/* Loads every stored instance into t (reg_table_restore at now_ns). Rows
 * that no longer pass reg_spec_check are skipped with a warning. *loaded
 * gets the count. Returns 0 or SL_ESTORAGE / SL_ENOMEM. */
int reg_store_load(reg_store *s, reg_table *t, uint64_t now_ns, size_t *loaded);

/* Inserts or replaces the row of one instance. Returns 0 or SL_ESTORAGE. */
int reg_store_put(reg_store *s, const reg_view *v);

/* Deletes the row of id (absent is fine). Returns 0 or SL_ESTORAGE. */
int reg_store_delete(reg_store *s, const char *id);

/* One heartbeat time to persist. */
typedef struct reg_beat {
    char id[REG_ID_LEN + 1];
    uint64_t last_heartbeat_unix_ns;
} reg_beat;

/* Updates the heartbeat times of n instances in one transaction (ids without
 * a row are ignored). Returns 0 or SL_ESTORAGE. */
int reg_store_put_beats(reg_store *s, const reg_beat *beats, size_t n);

#endif
