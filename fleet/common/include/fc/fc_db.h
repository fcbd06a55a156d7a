/*
 * The services' SQLite layer. One connection per database file, opened in WAL
 * mode (readers never block the writer, a commit is one fsync of the log)
 * with a busy timeout (a second connection, such as an outbox relay, waits
 * instead of failing), foreign keys on, and the schema brought up to date by
 * numbered migrations recorded in PRAGMA user_version.
 *
 * Thread-safety: the connection is shared by the service's threads through a
 * mutex that a transaction holds from fc_db_begin to fc_db_commit /
 * fc_db_rollback; every statement runs inside one. Prepared statements are
 * cached per connection (keyed by their SQL text), so a hot query is parsed
 * once.
 */
#ifndef FC_DB_H
#define FC_DB_H

#include "fc/fc.h"

#include <sqlite3.h>
#include <stdbool.h>

typedef struct fc_db fc_db;

/* A schema migration: applied once, in order, inside one transaction; the
 * database's user_version counts those applied. Append new ones only. */
typedef struct fc_migration {
    const char *name;
    const char *sql; /* one or more statements */
} fc_migration;

/* Opens (creating) the database at path (":memory:" works for tests), sets
 * WAL, busy_timeout_ms (0 = 5000), foreign keys, then applies the pending
 * migrations. Returns 0; SL_ESTORAGE (cannot open, a migration failed: err
 * names it) or SL_ECORRUPT (the file's user_version is newer than this
 * binary knows). err (NUL-terminated when errcap > 0) explains a failure.
 * On failure *out = NULL. */
int fc_db_open(const char *path, const fc_migration *migrations, size_t nmigrations,
               int busy_timeout_ms, fc_db **out, char *err, size_t errcap);

/* Finalizes cached statements and closes. NULL is harmless. Must not be
 * called inside a transaction. */
void fc_db_close(fc_db *db);

/* The schema version (number of migrations applied). */
int fc_db_version(fc_db *db);

/* Starts a transaction and takes the connection's mutex. write = true takes
 * SQLite's write lock at once (BEGIN IMMEDIATE), so the transaction cannot
 * fail later on a lock upgrade. Returns 0 or SL_ESTORAGE (mutex released). */
int fc_db_begin(fc_db *db, bool write);

/* Commits and releases the mutex. Returns 0 or SL_ESTORAGE, in which case the
 * transaction was rolled back. Either way the mutex is released. */
int fc_db_commit(fc_db *db);

/* Rolls back and releases the mutex. */
void fc_db_rollback(fc_db *db);

/* A cached prepared statement for sql, reset with its bindings cleared;
 * borrowed until the transaction ends. NULL on a prepare error (the message
 * is fc_db_errmsg). Only inside a transaction. */
sqlite3_stmt *fc_db_stmt(fc_db *db, const char *sql);

/* Runs sql (no results) inside the current transaction. 0 or SL_ESTORAGE. */
int fc_db_exec(fc_db *db, const char *sql);

/* Steps a statement that returns no rows: 0, FC_ECONFLICT on a UNIQUE or
 * PRIMARY KEY violation, SL_ESTORAGE otherwise. */
int fc_db_step_done(fc_db *db, sqlite3_stmt *st);

/* Rows changed by the last statement. */
int fc_db_changes(fc_db *db);

/* The last SQLite error message (borrowed, valid until the next call). */
const char *fc_db_errmsg(fc_db *db);

/* The raw handle, for code that needs SQLite directly (inside a transaction
 * only). */
sqlite3 *fc_db_handle(fc_db *db);

/* A column as a C string ("" for NULL). Borrowed until the next step. */
const char *fc_db_col_text(sqlite3_stmt *st, int col);

#endif
