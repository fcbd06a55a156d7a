/*
 * SQLite persistence of the registry's instances; see reg_store.h. One table:
 *   instances(id TEXT PRIMARY KEY, name, version, address, tags (comma-joined),
 *             ttl_s, registered_ns, last_heartbeat_ns)
 * Prepared statements are kept for the connection's life.
 */
#include "reg_store.h"

#include "sl_err.h"
#include "sl_log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reg_store {
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *put, *del, *beat;
};

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS instances ("
                             " id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
                             " address TEXT NOT NULL, tags TEXT NOT NULL, ttl_s INTEGER NOT NULL,"
                             " registered_ns INTEGER NOT NULL, last_heartbeat_ns INTEGER NOT NULL)";

static int db_fail(reg_store *s, const char *what) {
    SL_LOG_E("registry", "store: %s: %s", what, sqlite3_errmsg(s->db));
    return SL_ESTORAGE;
}

void reg_store_close(reg_store *s) {
    if (s == NULL) {
        return;
    }
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->beat);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int reg_store_open(const char *path, reg_store **out) {
    *out = NULL;
    reg_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = db_fail(s, path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "schema");
        goto fail;
    }
    if (sqlite3_prepare_v2(
            s->db, "INSERT OR REPLACE INTO instances VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
            &s->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM instances WHERE id = ?1", -1, &s->del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE instances SET last_heartbeat_ns = ?2 WHERE id = ?1", -1,
                           &s->beat, NULL) != SQLITE_OK) {
        rc = db_fail(s, "prepare");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    reg_store_close(s);
    return rc;
}

/* Splits a comma-joined tag list in place into at most REG_MAX_TAGS tags. */
static size_t split_tags(char *joined, const char *tags[REG_MAX_TAGS]) {
    size_t n = 0;
    char *p = joined;
    while (*p != '\0' && n < REG_MAX_TAGS) {
        char *comma = strchr(p, ',');
        tags[n++] = p;
        if (comma == NULL) {
            break;
        }
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

int reg_store_load(reg_store *s, reg_table *t, uint64_t now_ns, size_t *loaded) {
    *loaded = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, name, version, address, tags, ttl_s, registered_ns,"
                           " last_heartbeat_ns FROM instances ORDER BY registered_ns, id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, "load");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tags[REG_MAX_TAGS];
        const unsigned char *joined = sqlite3_column_text(st, 4);
        char *copy = strdup(joined != NULL ? (const char *)joined : "");
        if (copy == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        reg_spec spec = {
            .name = (const char *)sqlite3_column_text(st, 1),
            .version = (const char *)sqlite3_column_text(st, 2),
            .address = (const char *)sqlite3_column_text(st, 3),
            .tags = tags,
            .n_tags = split_tags(copy, tags),
            .ttl_s = (uint32_t)sqlite3_column_int64(st, 5),
        };
        const char *why;
        if (spec.name == NULL || spec.address == NULL || reg_spec_check(&spec, &why) != 0) {
            SL_LOG_W("registry", "store: skipping unusable row %s",
                     (const char *)sqlite3_column_text(st, 0));
            free(copy);
            continue;
        }
        int r = reg_table_restore(t, &spec, (uint64_t)sqlite3_column_int64(st, 6),
                                  (uint64_t)sqlite3_column_int64(st, 7), now_ns);
        free(copy);
        if (r != 0) {
            rc = r;
            goto out;
        }
        (*loaded)++;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, "load");
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int reg_store_put(reg_store *s, const reg_view *v) {
    char tags[REG_MAX_TAGS * (REG_MAX_FIELD + 1) + 1];
    size_t len = 0;
    tags[0] = '\0';
    for (size_t k = 0; k < v->n_tags; k++) {
        len += (size_t)snprintf(tags + len, sizeof(tags) - len, "%s%s", k ? "," : "", v->tags[k]);
    }
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = s->put;
    sqlite3_bind_text(st, 1, v->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, v->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, v->ttl_s);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)v->registered_unix_ns);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)v->last_heartbeat_unix_ns);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, "put");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int reg_store_delete(reg_store *s, const char *id) {
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_bind_text(s->del, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s->del) != SQLITE_DONE) {
        rc = db_fail(s, "delete");
    }
    sqlite3_reset(s->del);
    sqlite3_clear_bindings(s->del);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int reg_store_put_beats(reg_store *s, const reg_beat *beats, size_t n) {
    if (n == 0) {
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, "begin");
        goto out;
    }
    for (size_t k = 0; k < n && rc == 0; k++) {
        sqlite3_bind_text(s->beat, 1, beats[k].id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->beat, 2, (sqlite3_int64)beats[k].last_heartbeat_unix_ns);
        if (sqlite3_step(s->beat) != SQLITE_DONE) {
            rc = db_fail(s, "heartbeat");
        }
        sqlite3_reset(s->beat);
    }
    if (sqlite3_exec(s->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        rc == 0) {
        rc = db_fail(s, "commit");
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}
