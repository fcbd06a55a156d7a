/*
 * The outbox relay (see sf_outbox.h). The relay thread owns a second SQLite
 * connection to the service's database file, so its reads and marks never
 * join a transaction the service has open on its own connection (WAL mode:
 * the service's writer and the relay's reads run side by side; the busy
 * timeout orders the writes). A mutex and condition variable let
 * sf_outbox_notify wake it and sf_outbox_stop end it.
 */
#include "sf/sf_outbox.h"

#include "rt_int.h"
#include "sf/sf_app.h"
#include "sf/sf_breaker.h"
#include "sf/sf_err.h"
#include "sl_err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define TABLE_MAX 64

struct sf_outbox {
    sf_outbox_options o;
    char table[TABLE_MAX];
    sqlite3 *db; /* the relay's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kick;
    uint64_t drain_deadline_ms; /* set by stop: publish until then */
};

/* Table names are interpolated into SQL: only [A-Za-z0-9_] is accepted. */
static bool table_ok(const char *t) {
    size_t n = t != NULL ? strlen(t) : 0;
    if (n == 0 || n >= TABLE_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

int sf_outbox_schema(sqlite3 *db, const char *table) {
    if (table == NULL) {
        table = "outbox";
    }
    if (db == NULL || !table_ok(table)) {
        return SL_EINVAL;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
             "event_id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, payload TEXT NOT NULL, "
             "traceparent TEXT, tracestate TEXT, created_ms INTEGER NOT NULL, sent_ms INTEGER);"
             "CREATE INDEX IF NOT EXISTS %s_pending ON %s(seq) WHERE sent_ms IS NULL;",
             table, table, table);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        sf_log(SL_SEVERITY_ERROR, "outbox table %s: %s", table, err);
        sqlite3_free(err);
        return SF_EDB;
    }
    return 0;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sf_outbox_new_id(char out[37]) {
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        for (size_t i = 0; i < sizeof r; i++) {
            r[i] = (uint8_t)(rt_random01() * 256);
        }
    }
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

int sf_outbox_add(sqlite3 *db, const char *table, const char *subject, const char *id,
                  const void *payload, size_t len, char *id_out) {
    if (table == NULL) {
        table = "outbox";
    }
    if (db == NULL || subject == NULL || !table_ok(table) || len > INT32_MAX ||
        (payload == NULL && len > 0)) {
        return SL_EINVAL;
    }
    char gen[37];
    if (id == NULL) {
        sf_outbox_new_id(gen);
        id = gen;
    }
    char tp[SL_TRACEPARENT_LEN + 1] = "";
    sl_span_context ctx;
    bool has_ctx = sl_context_current(&ctx) == 0 && sl_traceparent_format(&ctx, tp) == 0;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s(event_id, subject, payload, traceparent, tracestate, created_ms) "
             "VALUES(?,?,?,?,?,?)",
             table);
    sqlite3_stmt *st = NULL;
    int rc = SF_EDB;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, subject, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, payload != NULL ? payload : "", (int)len, SQLITE_TRANSIENT);
        if (has_ctx) {
            sqlite3_bind_text(st, 4, tp, -1, SQLITE_TRANSIENT);
            if (ctx.trace_state[0] != '\0') {
                sqlite3_bind_text(st, 5, ctx.trace_state, -1, SQLITE_TRANSIENT);
            }
        }
        sqlite3_bind_int64(st, 6, now_ms());
        if (sqlite3_step(st) == SQLITE_DONE) {
            rc = 0;
        }
    }
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "outbox insert into %s: %s", table, sqlite3_errmsg(db));
    } else if (id_out != NULL) {
        snprintf(id_out, 37, "%.36s", id);
    }
    sqlite3_finalize(st);
    return rc;
}

void sf_outbox_options_init(sf_outbox_options *o) {
    memset(o, 0, sizeof(*o));
    o->table = "outbox";
    o->batch = 256;
    o->poll_ms = 500;
    o->retry_max_ms = 5000;
    o->keep_sent_s = 3600;
}

/* One row read for publication. */
typedef struct row {
    int64_t seq;
    char *id, *subject;
    void *payload;
    size_t len;
    sl_span_context ctx;
    bool has_ctx;
} row;

static void rows_free(row *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].subject);
        free(rows[i].payload);
    }
    free(rows);
}

static int read_pending(sf_outbox *ob, row **out, size_t *n) {
    *out = NULL;
    *n = 0;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT seq, event_id, subject, payload, traceparent, tracestate FROM %s "
             "WHERE sent_ms IS NULL ORDER BY seq LIMIT %u",
             ob->table, ob->o.batch);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return SF_EDB;
    }
    row *rows = calloc(ob->o.batch, sizeof(row));
    int rc = rows != NULL ? 0 : SL_ENOMEM;
    size_t k = 0;
    int step;
    while (rc == 0 && k < ob->o.batch && (step = sqlite3_step(st)) == SQLITE_ROW) {
        row *r = &rows[k];
        r->seq = sqlite3_column_int64(st, 0);
        r->id = strdup((const char *)sqlite3_column_text(st, 1));
        r->subject = strdup((const char *)sqlite3_column_text(st, 2));
        r->len = (size_t)sqlite3_column_bytes(st, 3);
        r->payload = malloc(r->len > 0 ? r->len : 1);
        if (r->id == NULL || r->subject == NULL || r->payload == NULL) {
            rc = SL_ENOMEM;
        } else if (r->len > 0) {
            memcpy(r->payload, sqlite3_column_blob(st, 3), r->len);
        }
        const char *tp = (const char *)sqlite3_column_text(st, 4);
        if (tp != NULL && sl_traceparent_parse(tp, strlen(tp), &r->ctx) == 0) {
            r->has_ctx = true;
            const char *ts = (const char *)sqlite3_column_text(st, 5);
            if (ts != NULL) {
                sl_tracestate_parse(ts, strlen(ts), r->ctx.trace_state, sizeof r->ctx.trace_state);
            }
        }
        k++;
    }
    sqlite3_finalize(st);
    if (rc != 0 || k == 0) {
        rows_free(rows, k);
        return rc;
    }
    *out = rows;
    *n = k;
    return 0;
}

static int mark_sent(sf_outbox *ob, const row *rows, const sf_bus_pub *pubs, size_t n) {
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE %s SET sent_ms=? WHERE seq=?", ob->table);
    sqlite3_stmt *st = NULL;
    int rc = SF_EDB;
    if (sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        return rc;
    }
    if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) == SQLITE_OK) {
        rc = 0;
        int64_t t = now_ms();
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (pubs[i].result != 0) {
                continue;
            }
            sqlite3_bind_int64(st, 1, t);
            sqlite3_bind_int64(st, 2, rows[i].seq);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = SF_EDB;
            }
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(ob->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
        rc = SF_EDB;
    }
    return rc;
}

static void delete_old(sf_outbox *ob) {
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE sent_ms IS NOT NULL AND sent_ms < %lld",
             ob->table, (long long)(now_ms() - (int64_t)ob->o.keep_sent_s * 1000));
    sqlite3_exec(ob->db, sql, NULL, NULL, NULL);
}

/* One round: returns the rows published, or a negative error. *full tells
 * whether more may be waiting. */
static int relay_round(sf_outbox *ob, bool *full) {
    *full = false;
    row *rows;
    size_t n;
    int rc = read_pending(ob, &rows, &n);
    if (rc != 0 || n == 0) {
        return rc;
    }
    sf_bus_pub *pubs = calloc(n, sizeof(sf_bus_pub));
    if (pubs == NULL) {
        rows_free(rows, n);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        pubs[i] = (sf_bus_pub){rows[i].subject,
                               rows[i].payload,
                               rows[i].len,
                               rows[i].id,
                               rows[i].has_ctx ? &rows[i].ctx : NULL,
                               0};
    }
    /* Rows without a stored context must not inherit this thread's. */
    sl_context_reset();
    int prc = sf_bus_js_publish_batch(ob->o.bus, pubs, n);
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        sent += pubs[i].result == 0;
    }
    if (sent > 0 && (rc = mark_sent(ob, rows, pubs, n)) != 0) {
        sf_log(SL_SEVERITY_ERROR, "outbox: cannot mark %d rows sent: %s", sent,
               sqlite3_errmsg(ob->db));
    }
    *full = n == ob->o.batch && prc == 0;
    free(pubs);
    rows_free(rows, n);
    if (rc != 0) {
        return rc;
    }
    return prc != 0 ? prc : sent;
}

/* Waits up to ms for a notification or stop; returns false when stopping
 * and (past the drain deadline or nothing left to do). */
static void wait_ms(sf_outbox *ob, unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&ob->mu);
    while (!ob->stop && !ob->kick && pthread_cond_timedwait(&ob->cv, &ob->mu, &ts) == 0) {
    }
    ob->kick = false;
    pthread_mutex_unlock(&ob->mu);
}

static void *relay_main(void *arg) {
    sf_outbox *ob = arg;
    unsigned failures = 0;
    uint64_t last_cleanup = 0;
    for (;;) {
        pthread_mutex_lock(&ob->mu);
        bool stopping = ob->stop;
        uint64_t deadline = ob->drain_deadline_ms;
        pthread_mutex_unlock(&ob->mu);
        if (stopping && rt_mono_ms() >= deadline) {
            break;
        }
        bool full;
        int rc = relay_round(ob, &full);
        if (rc < 0) {
            if (failures++ == 0) {
                sf_log(SL_SEVERITY_WARN, "outbox: publication failed (%s): retrying",
                       sf_strerror(rc));
            }
            if (stopping) {
                break; /* no retries while shutting down */
            }
            wait_ms(ob, sf_backoff_ms(failures, 100, ob->o.retry_max_ms, rt_random01()));
            continue;
        }
        if (failures > 0) {
            sf_log(SL_SEVERITY_INFO, "outbox: publishing again after %u failed rounds", failures);
            failures = 0;
        }
        if (rt_mono_ms() - last_cleanup > 60000) {
            delete_old(ob);
            last_cleanup = rt_mono_ms();
        }
        if (full) {
            continue;
        }
        if (stopping) {
            break; /* everything pending went out */
        }
        wait_ms(ob, ob->o.poll_ms);
    }
    return NULL;
}

int sf_outbox_start(const sf_outbox_options *o, sf_outbox **out) {
    *out = NULL;
    const char *table = o != NULL && o->table != NULL ? o->table : "outbox";
    if (o == NULL || (o->db == NULL && o->path == NULL) || o->bus == NULL || !table_ok(table)) {
        return SL_EINVAL;
    }
    const char *file = o->db != NULL ? sqlite3_db_filename(o->db, "main") : o->path;
    if (file == NULL || file[0] == '\0') {
        return SL_EINVAL; /* an in-memory database has no second connection */
    }
    sf_outbox *ob = calloc(1, sizeof(*ob));
    if (ob == NULL) {
        return SL_ENOMEM;
    }
    ob->o = *o;
    ob->o.db = NULL; /* the relay uses its own connection only */
    ob->o.path = NULL;
    snprintf(ob->table, sizeof ob->table, "%s", table);
    ob->o.table = ob->table;
    if (ob->o.batch == 0) {
        ob->o.batch = 256;
    }
    if (ob->o.poll_ms == 0) {
        ob->o.poll_ms = 500;
    }
    if (ob->o.retry_max_ms == 0) {
        ob->o.retry_max_ms = 5000;
    }
    if (ob->o.keep_sent_s == 0) {
        ob->o.keep_sent_s = 3600;
    }
    int rc = sf_db_open(file, &ob->db);
    if (rc == 0) {
        rc = sf_outbox_schema(ob->db, ob->table);
    }
    if (rc != 0) {
        sqlite3_close(ob->db);
        free(ob);
        return rc;
    }
    pthread_mutex_init(&ob->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ob->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ob->thread, NULL, relay_main, ob) != 0) {
        pthread_mutex_destroy(&ob->mu);
        pthread_cond_destroy(&ob->cv);
        sqlite3_close(ob->db);
        free(ob);
        return SL_ENOMEM;
    }
    *out = ob;
    return 0;
}

void sf_outbox_notify(sf_outbox *ob) {
    if (ob == NULL) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    ob->kick = true;
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
}

int64_t sf_outbox_pending(sf_outbox *ob) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE sent_ms IS NULL", ob->table);
    sqlite3 *db = NULL;
    /* A connection of the caller's own: the relay's belongs to its thread. */
    if (sf_db_open(sqlite3_db_filename(ob->db, "main"), &db) != 0) {
        return SF_EDB;
    }
    sqlite3_stmt *st = NULL;
    int64_t n = SF_EDB;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

void sf_outbox_stop(sf_outbox *ob, unsigned timeout_ms) {
    if (ob == NULL) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    ob->stop = true;
    ob->drain_deadline_ms = rt_mono_ms() + timeout_ms;
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
    pthread_join(ob->thread, NULL);
    pthread_mutex_destroy(&ob->mu);
    pthread_cond_destroy(&ob->cv);
    sqlite3_close(ob->db);
    free(ob);
}
