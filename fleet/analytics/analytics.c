/*
 * fleet-analytics: consumes every event from JetStream (durable consumer
 * "analytics", queue group "analytics", explicit ack) and keeps counts per
 * tenant and event type. Idempotent: an event id is counted once (the
 * processed id and the count change commit together), so a redelivered or
 * twice-published event changes nothing. GET /v1/analytics/tenants/{id}
 * answers the tenant's counts.
 *
 * Threads: the bus's delivery thread runs the consumer; handlers run on the
 * server's connection threads; the database mutex orders them.
 */
#include "fc/fc_api.h"

#include <sf/sf_err.h>
#include <sf/sf_telemetry.h>
#include <stdio.h>
#include <string.h>

typedef struct analytics_svc {
    sf_app *app;
    fc_db *db;
} analytics_svc;

static const fc_migration analytics_migrations[] = {
    {"counts", "CREATE TABLE processed(event_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);"
               "CREATE TABLE counts(tenant TEXT NOT NULL, type TEXT NOT NULL,"
               " n INTEGER NOT NULL, last_ms INTEGER NOT NULL, PRIMARY KEY(tenant, type));"},
};

/* Counts one event. Returns 0 (counted, or already counted before) or an
 * error: the message is then not acknowledged and comes back. A malformed
 * event is dropped (acknowledged) with a warning: redelivery cannot fix it. */
static int count_event(analytics_svc *s, const char *payload, size_t len, bool *dup) {
    json_error_t jerr;
    json_t *ev = json_loadb(payload, len, 0, &jerr);
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *tenant = json_string_value(json_object_get(ev, "tenant"));
    *dup = false;
    if (!id || !type || !tenant || !fc_id_valid(tenant) || strlen(id) > 128 || strlen(type) > 64) {
        sf_log(SL_SEVERITY_WARN, "dropping a malformed event (%zu bytes)", len);
        json_decref(ev);
        return 0;
    }
    int64_t now = fc_now_ms();
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "INSERT INTO processed(event_id, at_ms)"
                                             " VALUES(?1, ?2)");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, now);
            rc = fc_db_step_done(s->db, st);
        }
        if (rc == 0) {
            st = fc_db_stmt(s->db, "INSERT INTO counts(tenant, type, n, last_ms)"
                                   " VALUES(?1, ?2, 1, ?3) ON CONFLICT(tenant, type)"
                                   " DO UPDATE SET n = n + 1, last_ms = excluded.last_ms");
            rc = SL_ESTORAGE;
            if (st) {
                sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, now);
                rc = fc_db_step_done(s->db, st);
            }
        }
        if (rc == FC_ECONFLICT) {
            *dup = true;
            fc_db_rollback(s->db);
            rc = 0;
        } else {
            rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
        }
    }
    json_decref(ev);
    return rc;
}

static int on_event(const sf_bus_msg *m, void *ud) {
    analytics_svc *s = ud;
    bool dup = false;
    size_t len = 0;
    const void *data = sf_bus_msg_data(m, &len);
    int rc = count_event(s, data, len, &dup);
    if (dup) {
        sf_log(SL_SEVERITY_DEBUG, "event already counted");
    }
    return rc;
}

static void h_tenant(sf_req *r, void *ud) {
    analytics_svc *s = ud;
    const char *id = sf_req_param(r, "id");
    if (!fc_id_valid(id)) {
        sf_reply_error(r, 400, "invalid tenant id");
        return;
    }
    if (fc_api_from_gateway(r)) {
        const char *mine = sf_req_header(r, "X-Tenant-Id");
        if (!mine || strcmp(mine, id) != 0) {
            sf_reply_error(r, 403, "a user may read only their own tenant's analytics");
            return;
        }
    }
    json_t *counts = json_object();
    json_int_t total = 0;
    int64_t last = 0;
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "SELECT type, n, last_ms FROM counts WHERE"
                                             " tenant = ?1 ORDER BY type");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW) {
                json_int_t n = sqlite3_column_int64(st, 1);
                json_object_set_new(counts, fc_db_col_text(st, 0), json_integer(n));
                total += n;
                if (sqlite3_column_int64(st, 2) > last) {
                    last = sqlite3_column_int64(st, 2);
                }
            }
            sqlite3_reset(st);
            rc = 0;
        }
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        json_decref(counts);
        fc_api_fail(r, rc, "analytics");
        return;
    }
    json_t *o = json_pack("{s:s, s:I, s:o}", "tenant", id, "total", total, "counts", counts);
    if (o && last) {
        char t[32];
        fc_api_time(last, t);
        json_object_set_new(o, "last_event", json_string(t));
    }
    sf_reply_json(r, 200, o);
}

static int analytics_setup(sf_app *app, void *ud) {
    analytics_svc *s = ud;
    s->app = app;
    int rc = fc_api_open_db(app, analytics_migrations, 1, &s->db);
    if (rc != 0) {
        return rc;
    }
    const sf_route route = {"GET", "/v1/analytics/tenants/{id}", h_tenant, s, false, NULL, NULL};
    if ((rc = fc_api_routes(app, &route, 1)) != 0) {
        return rc;
    }
    rc = sf_bus_consume(sf_app_bus(app), "events.>", "analytics", on_event, s);
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "consuming events: %s", sf_strerror(rc));
    }
    return rc;
}

int main(int argc, char **argv) {
    analytics_svc s = {0};
    sf_app_options o = {
        .service = "analytics",
        .description = "event counts per tenant and type, from JetStream",
        .needs_db = true,
        .needs_nats = true,
        .userdata = &s,
    };
    int rc = sf_app_main(&o, argc, argv, analytics_setup, &s);
    fc_db_close(s.db);
    return rc;
}
