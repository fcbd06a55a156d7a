/*
 * fc_db: one SQLite connection behind a mutex, WAL mode, migrations by
 * user_version, a small prepared-statement cache. See fc/fc_db.h.
 */
#include "fc/fc_db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FC_DB_STMT_CACHE = 64 };

struct fc_db {
    sqlite3 *h;
    pthread_mutex_t mu;
    int version;
    size_t nstmts;
    struct {
        const char *sql; /* borrowed: statements are string literals */
        sqlite3_stmt *st;
    } stmts[FC_DB_STMT_CACHE];
};

static void fc_db_seterr(char *err, size_t errcap, const char *what, const char *detail) {
    if (errcap > 0) {
        snprintf(err, errcap, "%s: %s", what, detail ? detail : "");
    }
}

static int fc_db_migrate(fc_db *db, const fc_migration *m, size_t n, char *err, size_t errcap) {
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (version < 0) {
        fc_db_seterr(err, errcap, "reading user_version", sqlite3_errmsg(db->h));
        return SL_ESTORAGE;
    }
    if ((size_t)version > n) {
        char msg[96];
        snprintf(msg, sizeof msg, "schema version %d is newer than this binary's %zu", version, n);
        fc_db_seterr(err, errcap, "database", msg);
        return SL_ECORRUPT;
    }
    for (size_t i = (size_t)version; i < n; i++) {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu", i + 1);
        if (sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
            fc_db_seterr(err, errcap, "begin migration", sqlite3_errmsg(db->h));
            return SL_ESTORAGE;
        }
        if (sqlite3_exec(db->h, m[i].sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db->h, pragma, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            char what[128];
            snprintf(what, sizeof what, "migration %zu (%s)", i + 1, m[i].name);
            fc_db_seterr(err, errcap, what, sqlite3_errmsg(db->h));
            sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
            return SL_ESTORAGE;
        }
    }
    db->version = (int)n;
    return 0;
}

int fc_db_open(const char *path, const fc_migration *migrations, size_t nmigrations,
               int busy_timeout_ms, fc_db **out, char *err, size_t errcap) {
    int rc = SL_ESTORAGE;
    *out = NULL;
    if (errcap > 0) {
        err[0] = '\0';
    }
    fc_db *db = calloc(1, sizeof *db);
    if (!db) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&db->mu, NULL);
    if (sqlite3_open_v2(path, &db->h,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        fc_db_seterr(err, errcap, path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(db->h, busy_timeout_ms > 0 ? busy_timeout_ms : 5000);
    /* WAL: a commit appends to the log; synchronous=NORMAL there is durable
     * across a process crash and loses at most the last commits on power
     * loss, the usual trade for a service database. */
    if (sqlite3_exec(db->h,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fc_db_seterr(err, errcap, "pragmas", sqlite3_errmsg(db->h));
        goto fail;
    }
    rc = fc_db_migrate(db, migrations, nmigrations, err, errcap);
    if (rc != 0) {
        goto fail;
    }
    *out = db;
    return 0;
fail:
    fc_db_close(db);
    return rc;
}

void fc_db_close(fc_db *db) {
    if (!db) {
        return;
    }
    for (size_t i = 0; i < db->nstmts; i++) {
        sqlite3_finalize(db->stmts[i].st);
    }
    sqlite3_close(db->h);
    pthread_mutex_destroy(&db->mu);
    free(db);
}

int fc_db_version(fc_db *db) {
    return db->version;
}

int fc_db_begin(fc_db *db, bool write) {
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->h, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&db->mu);
        return SL_ESTORAGE;
    }
    return 0;
}

int fc_db_commit(fc_db *db) {
    int rc = 0;
    if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = SL_ESTORAGE;
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

void fc_db_rollback(fc_db *db) {
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&db->mu);
}

sqlite3_stmt *fc_db_stmt(fc_db *db, const char *sql) {
    for (size_t i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].sql == sql || strcmp(db->stmts[i].sql, sql) == 0) {
            sqlite3_stmt *st = db->stmts[i].st;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    if (db->nstmts < FC_DB_STMT_CACHE) {
        db->stmts[db->nstmts].sql = sql;
        db->stmts[db->nstmts].st = st;
        db->nstmts++;
        return st;
    }
    /* The cache is full (more distinct statements than any service has):
     * evict the oldest rather than grow. */
    sqlite3_finalize(db->stmts[0].st);
    memmove(&db->stmts[0], &db->stmts[1], (FC_DB_STMT_CACHE - 1) * sizeof db->stmts[0]);
    db->stmts[FC_DB_STMT_CACHE - 1].sql = sql;
    db->stmts[FC_DB_STMT_CACHE - 1].st = st;
    return st;
}

int fc_db_exec(fc_db *db, const char *sql) {
    return sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : SL_ESTORAGE;
}

int fc_db_step_done(fc_db *db, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    int ext = sqlite3_extended_errcode(db->h);
    sqlite3_reset(st);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return FC_ECONFLICT;
    }
    return SL_ESTORAGE;
}

int fc_db_changes(fc_db *db) {
    return sqlite3_changes(db->h);
}

const char *fc_db_errmsg(fc_db *db) {
    return sqlite3_errmsg(db->h);
}

sqlite3 *fc_db_handle(fc_db *db) {
    return db->h;
}

const char *fc_db_col_text(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
