/*
 * fleet-tenants: tenants and their plans (free, pro, enterprise with their
 * limits), and the tenant sign-up saga:
 *   0 reserve_tenant        the tenant row exists (status provisioning);
 *                           undo: mark it failed
 *   1 create_admin          the admin user in users; undo: delete it
 *   2 welcome_notification  notifications stores the tenant's webhook and
 *                           sends the welcome message
 *   3 activate              status active and the tenant.created event
 * The saga's state (fc_saga) is in this service's database: a step that
 * fails makes the completed ones compensate in reverse, the tenant ends
 * failed with the reason, and GET /v1/tenants/{id} shows it all. Sagas left
 * unfinished by a crash are resumed at start-up, before serving.
 *
 * Threads: a POST drives its saga on its connection thread (the answer
 * carries the outcome); other handlers run concurrently.
 */
#include "tenants_int.h"

#include "fc/fc_outbox.h"

#include <sf/sf_telemetry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan {
    const char *name;
    int max_users; /* -1: unlimited */
    int requests_per_minute;
    int retention_days;
} plan;

static const plan plans[] = {
    {"free", 5, 600, 7},
    {"pro", 100, 6000, 30},
    {"enterprise", -1, 60000, 365},
};

static const plan *plan_find(const char *name) {
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        if (strcmp(plans[i].name, name) == 0) {
            return &plans[i];
        }
    }
    return NULL;
}

static json_t *plan_json(const plan *p) {
    return json_pack("{s:s, s:i, s:i, s:i}", "name", p->name, "max_users", p->max_users,
                     "requests_per_minute", p->requests_per_minute, "retention_days",
                     p->retention_days);
}

static const fc_migration tenants_migrations[] = {
    {"tenants", "CREATE TABLE tenants(id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL,"
                " status TEXT NOT NULL, admin_email TEXT NOT NULL, admin_user_id TEXT NOT NULL,"
                " webhook_url TEXT, saga_id TEXT NOT NULL, created_ms INTEGER NOT NULL,"
                " updated_ms INTEGER NOT NULL);"},
    {"outbox", FC_OUTBOX_MIGRATION_SQL},
    {"sagas", FC_SAGA_MIGRATION_SQL},
};

typedef struct tenant_row {
    char id[65], name[256], plan[16], status[16], admin_email[256], admin_user_id[65];
    char webhook_url[1024], saga_id[80];
    int64_t created_ms, updated_ms;
} tenant_row;

#define TENANT_COLS                                                                                \
    "id, name, plan, status, admin_email, admin_user_id, webhook_url, saga_id, created_ms,"        \
    " updated_ms"

static int tenant_get(fc_db *db, const char *id, tenant_row *t) {
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(t->id, sizeof t->id, "%s", fc_db_col_text(st, 0));
        snprintf(t->name, sizeof t->name, "%s", fc_db_col_text(st, 1));
        snprintf(t->plan, sizeof t->plan, "%s", fc_db_col_text(st, 2));
        snprintf(t->status, sizeof t->status, "%s", fc_db_col_text(st, 3));
        snprintf(t->admin_email, sizeof t->admin_email, "%s", fc_db_col_text(st, 4));
        snprintf(t->admin_user_id, sizeof t->admin_user_id, "%s", fc_db_col_text(st, 5));
        snprintf(t->webhook_url, sizeof t->webhook_url, "%s", fc_db_col_text(st, 6));
        snprintf(t->saga_id, sizeof t->saga_id, "%s", fc_db_col_text(st, 7));
        t->created_ms = sqlite3_column_int64(st, 8);
        t->updated_ms = sqlite3_column_int64(st, 9);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? SL_ENOTFOUND : SL_ESTORAGE;
}

static json_t *tenant_json(const tenant_row *t) {
    char created[32], updated[32];
    fc_api_time(t->created_ms, created);
    fc_api_time(t->updated_ms, updated);
    const plan *p = plan_find(t->plan);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s}", "id", t->id, "name",
                          t->name, "plan", t->plan, "limits", p ? plan_json(p) : json_null(),
                          "status", t->status, "admin_email", t->admin_email, "admin_user_id",
                          t->admin_user_id, "created", created, "updated", updated);
    if (o && t->webhook_url[0]) {
        json_object_set_new(o, "webhook_url", json_string(t->webhook_url));
    }
    return o;
}

/* Sets the tenant's status (and emits type when not NULL) in one
 * transaction. */
static int tenant_set_status(tenants_svc *s, const char *id, const char *status, const char *type,
                             const char *traceparent) {
    int rc = fc_db_begin(s->db, true);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st =
        fc_db_stmt(s->db, "UPDATE tenants SET status = ?2, updated_ms = ?3 WHERE id = ?1");
    rc = SL_ESTORAGE;
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, fc_now_ms());
        rc = fc_db_step_done(s->db, st);
    }
    tenant_row t;
    if (rc == 0 && type && (rc = tenant_get(s->db, id, &t)) == 0) {
        json_t *d = tenant_json(&t);
        char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
        rc = text ? fc_outbox_add(s->db, id, type, text, traceparent, NULL, NULL) : SL_ENOMEM;
        free(text);
        json_decref(d);
    }
    return rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
}

/* --- the saga's steps (data: tenant, admin_user_id, admin_email, admin_name,
 * webhook_url?, traceparent?) ----------------------------------------------- */

static const char *dstr(const json_t *d, const char *k) {
    return json_string_value(json_object_get(d, k));
}

static int step_reserve(void *app, const char *id, json_t *d, char *why, size_t cap) {
    (void)app;
    (void)id;
    (void)d;
    (void)why;
    (void)cap;
    /* The row was inserted with the saga itself (one transaction). */
    return 0;
}

static int undo_reserve(void *app, const char *id, json_t *d, char *why, size_t cap) {
    (void)id;
    int rc = tenant_set_status(app, dstr(d, "tenant"), "failed", "tenant.failed",
                               dstr(d, "traceparent"));
    if (rc != 0) {
        snprintf(why, cap, "marking the tenant failed: %s", fc_strerror(rc));
    }
    return rc;
}

static int step_admin(void *app, const char *id, json_t *d, char *why, size_t cap) {
    (void)id;
    return tenants_create_admin(app, dstr(d, "tenant"), dstr(d, "admin_user_id"),
                                dstr(d, "admin_email"), dstr(d, "admin_name"), why, cap);
}

static int undo_admin(void *app, const char *id, json_t *d, char *why, size_t cap) {
    (void)id;
    return tenants_delete_admin(app, dstr(d, "tenant"), dstr(d, "admin_user_id"), why, cap);
}

static int step_welcome(void *app, const char *id, json_t *d, char *why, size_t cap) {
    char nid[160];
    snprintf(nid, sizeof nid, "welcome-%s", id);
    json_t *data = json_pack("{s:s, s:s, s:s}", "tenant", dstr(d, "tenant"), "admin_email",
                             dstr(d, "admin_email"), "admin_user_id", dstr(d, "admin_user_id"));
    int rc = tenants_request_welcome(app, dstr(d, "tenant"), nid, dstr(d, "webhook_url"), data, why,
                                     cap);
    json_decref(data);
    return rc;
}

static int step_activate(void *app, const char *id, json_t *d, char *why, size_t cap) {
    (void)id;
    int rc = tenant_set_status(app, dstr(d, "tenant"), "active", "tenant.created",
                               dstr(d, "traceparent"));
    if (rc != 0) {
        snprintf(why, cap, "activating: %s", fc_strerror(rc));
    }
    return rc;
}

static const fc_saga_step signup_steps[] = {
    {"reserve_tenant", step_reserve, undo_reserve},
    {"create_admin", step_admin, undo_admin},
    {"welcome_notification", step_welcome, NULL},
    {"activate", step_activate, NULL},
};
static const fc_saga_def signup_saga = {"tenant_signup", signup_steps, 4, 3, 100};

/* --- handlers ---------------------------------------------------------------- */

static json_t *tenant_view(tenants_svc *s, const char *id, int *rc) {
    tenant_row t;
    json_t *saga = NULL;
    *rc = fc_db_begin(s->db, false);
    if (*rc != 0) {
        return NULL;
    }
    *rc = tenant_get(s->db, id, &t);
    fc_db_rollback(s->db);
    if (*rc != 0) {
        return NULL;
    }
    json_t *o = tenant_json(&t);
    if (o && fc_saga_get(s->db, &signup_saga, t.saga_id, &saga) == 0) {
        json_object_del(saga, "data");
        json_object_set_new(o, "saga", saga);
    }
    return o;
}

static void h_create(sf_req *r, void *ud) {
    tenants_svc *s = ud;
    static const sf_json_field fields[] = {
        {"id", SF_JSON_STRING, false, 1, 64},
        {"name", SF_JSON_STRING, true, 1, 200},
        {"plan", SF_JSON_STRING, false, 1, 16},
        {"admin_email", SF_JSON_STRING, true, 3, 254},
        {"admin_name", SF_JSON_STRING, false, 1, 200},
        {"webhook_url", SF_JSON_STRING, false, 8, 1000},
    };
    json_t *b = NULL, *data = NULL;
    if (sf_req_json(r, fields, 6, false, &b) != 0) {
        return;
    }
    char id[65], admin[37], saga_id[80], tp[64];
    const char *plan_name = sf_json_str(b, "plan", "free");
    const char *email = json_string_value(json_object_get(b, "admin_email"));
    const char *hook = sf_json_str(b, "webhook_url", NULL);
    if (json_object_get(b, "id")) {
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(b, "id")));
    } else {
        fc_uuid(id);
    }
    if (!fc_id_valid(id) || !plan_find(plan_name) || !strchr(email, '@') ||
        (hook && strncmp(hook, "http://", 7) != 0 && strncmp(hook, "https://", 8) != 0)) {
        sf_reply_error(r, 400, "%s",
                       !fc_id_valid(id)        ? "invalid tenant id (1-64 of A-Z a-z 0-9 _ -)"
                       : !plan_find(plan_name) ? "plan is free, pro or enterprise"
                       : !strchr(email, '@')   ? "admin_email needs an @"
                                               : "webhook_url must be http(s)://");
        json_decref(b);
        return;
    }
    fc_uuid(admin);
    snprintf(saga_id, sizeof saga_id, "signup-%s", id);
    fc_api_traceparent(r, tp);
    data = json_pack("{s:s, s:s, s:s, s:s}", "tenant", id, "admin_user_id", admin, "admin_email",
                     email, "admin_name", sf_json_str(b, "admin_name", email));
    if (data && hook) {
        json_object_set_new(data, "webhook_url", json_string(hook));
    }
    if (data && tp[0]) {
        json_object_set_new(data, "traceparent", json_string(tp));
    }
    int64_t now = fc_now_ms();
    int rc = data ? fc_db_begin(s->db, true) : SL_ENOMEM;
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "INSERT INTO tenants(" TENANT_COLS ") VALUES(?1, ?2,"
                                             " ?3, 'provisioning', ?4, ?5, ?6, ?7, ?8, ?8)");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, json_string_value(json_object_get(b, "name")), -1,
                              SQLITE_STATIC);
            sqlite3_bind_text(st, 3, plan_name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, email, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, admin, -1, SQLITE_STATIC);
            if (hook) {
                sqlite3_bind_text(st, 6, hook, -1, SQLITE_STATIC);
            }
            sqlite3_bind_text(st, 7, saga_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 8, now);
            rc = fc_db_step_done(s->db, st);
        }
        if (rc == 0) {
            rc = fc_saga_create(s->db, &signup_saga, saga_id, data);
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    json_decref(data);
    json_decref(b);
    if (rc != 0) {
        fc_api_fail(r, rc, "tenant");
        return;
    }
    fc_saga_status st;
    rc = fc_saga_run(s->db, &signup_saga, s, saga_id, &st);
    sf_outbox_notify(s->relay);
    json_t *view = tenant_view(s, id, &rc);
    if (!view) {
        fc_api_fail(r, rc, "tenant");
        return;
    }
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/tenants/%s", id);
    sf_log(st == FC_SAGA_COMPLETED ? SL_SEVERITY_INFO : SL_SEVERITY_WARN,
           "tenant %s sign-up saga %s", id, fc_saga_status_name(st));
    if (st == FC_SAGA_COMPLETED) {
        fc_api_created(r, loc, view);
    } else {
        /* The tenant exists (failed, or still compensating) and its saga
         * says why; the failure was an upstream's. */
        sf_reply_header(r, "Location", loc);
        sf_reply_json(r, 502, view);
    }
}

static void h_get(sf_req *r, void *ud) {
    tenants_svc *s = ud;
    const char *id = sf_req_param(r, "id");
    if (fc_api_from_gateway(r)) {
        const char *mine = sf_req_header(r, "X-Tenant-Id");
        if (mine && strcmp(mine, id) != 0) {
            sf_reply_error(r, 403, "a user may read only their own tenant");
            return;
        }
    }
    int rc;
    json_t *v = tenant_view(s, id, &rc);
    if (!v) {
        fc_api_fail(r, rc, "tenant");
        return;
    }
    sf_reply_json(r, 200, v);
}

static void h_list(sf_req *r, void *ud) {
    tenants_svc *s = ud;
    int limit, offset;
    if (fc_api_query_int(r, "limit", 50, 1, 1000, &limit) != 0 ||
        fc_api_query_int(r, "offset", 0, 0, 1000000000, &offset) != 0) {
        return;
    }
    json_t *arr = json_array();
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "SELECT id FROM tenants ORDER BY created_ms, id"
                                             " LIMIT ?1 OFFSET ?2");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_int(st, 1, limit);
            sqlite3_bind_int(st, 2, offset);
            rc = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                tenant_row t;
                char tid[65];
                snprintf(tid, sizeof tid, "%s", fc_db_col_text(st, 0));
                /* The cursor stays open; tenant_get uses another statement. */
                if (tenant_get(s->db, tid, &t) == 0) {
                    json_array_append_new(arr, tenant_json(&t));
                }
            }
            sqlite3_reset(st);
        }
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        json_decref(arr);
        fc_api_fail(r, rc, "tenants");
        return;
    }
    sf_reply_json(r, 200,
                  json_pack("{s:o, s:i, s:i}", "data", arr, "limit", limit, "offset", offset));
}

static void h_update(sf_req *r, void *ud) {
    tenants_svc *s = ud;
    static const sf_json_field fields[] = {
        {"name", SF_JSON_STRING, false, 1, 200},
        {"plan", SF_JSON_STRING, false, 1, 16},
        {"webhook_url", SF_JSON_STRING, false, 8, 1000},
    };
    json_t *b = NULL;
    if (sf_req_json(r, fields, 3, false, &b) != 0) {
        return;
    }
    const char *id = sf_req_param(r, "id");
    const char *plan_name = sf_json_str(b, "plan", NULL),
               *hook = sf_json_str(b, "webhook_url", NULL);
    if ((plan_name && !plan_find(plan_name)) ||
        (hook && strncmp(hook, "http://", 7) != 0 && strncmp(hook, "https://", 8) != 0)) {
        sf_reply_error(r, 400, "%s",
                       plan_name && !plan_find(plan_name) ? "plan is free, pro or enterprise"
                                                          : "webhook_url must be http(s)://");
        json_decref(b);
        return;
    }
    char why[256] = "";
    int rc = 0;
    if (hook) {
        /* notifications delivers to the URL: tell it first, so a tenant
         * never shows a URL that is not in use. */
        rc = tenants_set_webhook(s, id, hook, why, sizeof why);
        if (rc != 0) {
            sf_reply_error(r, 502, "notifications: %s", why);
            json_decref(b);
            return;
        }
    }
    tenant_row t;
    char tp[64];
    fc_api_traceparent(r, tp);
    rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = tenant_get(s->db, id, &t);
        if (rc == 0) {
            sqlite3_stmt *st = fc_db_stmt(
                s->db, "UPDATE tenants SET name = coalesce(?2, name), plan = coalesce(?3, plan),"
                       " webhook_url = coalesce(?4, webhook_url), updated_ms = ?5 WHERE id = ?1");
            rc = SL_ESTORAGE;
            if (st) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                const char *name = sf_json_str(b, "name", NULL);
                if (name) {
                    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
                }
                if (plan_name) {
                    sqlite3_bind_text(st, 3, plan_name, -1, SQLITE_STATIC);
                }
                if (hook) {
                    sqlite3_bind_text(st, 4, hook, -1, SQLITE_STATIC);
                }
                sqlite3_bind_int64(st, 5, fc_now_ms());
                rc = fc_db_step_done(s->db, st);
            }
        }
        if (rc == 0 && (rc = tenant_get(s->db, id, &t)) == 0) {
            json_t *d = tenant_json(&t);
            char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
            rc =
                text ? fc_outbox_add(s->db, id, "tenant.updated", text, tp, NULL, NULL) : SL_ENOMEM;
            free(text);
            json_decref(d);
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    json_decref(b);
    if (rc != 0) {
        fc_api_fail(r, rc, "tenant");
        return;
    }
    sf_outbox_notify(s->relay);
    sf_reply_json(r, 200, tenant_json(&t));
}

static void h_delete(sf_req *r, void *ud) {
    tenants_svc *s = ud;
    char tp[64];
    fc_api_traceparent(r, tp);
    int rc = fc_db_begin(s->db, false);
    tenant_row t;
    if (rc == 0) {
        rc = tenant_get(s->db, sf_req_param(r, "id"), &t);
        fc_db_rollback(s->db);
    }
    if (rc == 0) {
        rc = tenant_set_status(s, t.id, "deleted", "tenant.deleted", tp);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "tenant");
        return;
    }
    sf_outbox_notify(s->relay);
    sf_reply(r, 204, NULL, NULL, 0);
}

static void h_plans(sf_req *r, void *ud) {
    (void)ud;
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        json_array_append_new(arr, plan_json(&plans[i]));
    }
    sf_reply_json(r, 200, json_pack("{s:o}", "plans", arr));
}

static int tenants_setup(sf_app *app, void *ud) {
    tenants_svc *s = ud;
    s->app = app;
    int rc = fc_api_open_db(app, tenants_migrations, 3, &s->db);
    if (rc == 0) {
        rc = fc_api_relay_start(app, &s->relay);
    }
    if (rc == 0 && (rc = sf_app_require_upstream(app, "users")) == 0) {
        rc = sf_app_require_upstream(app, "notifications");
    }
    if (rc != 0) {
        return rc;
    }
    s->users_url = sf_app_flag(app, "users-url");
    s->notifications_url = sf_app_flag(app, "notifications-url");
    /* Sagas a crash left halfway are finished before serving. */
    int n = fc_saga_resume_all(s->db, &signup_saga, s);
    if (n > 0) {
        sf_log(SL_SEVERITY_INFO, "resumed %d unfinished tenant sign-up saga(s)", n);
    }
    static const char callers[] = "gateway";
    const sf_route routes[] = {
        {"GET", "/v1/tenants/plans", h_plans, s, false, NULL, NULL},
        {"POST", "/v1/tenants", h_create, s, false, callers, NULL},
        {"GET", "/v1/tenants", h_list, s, false, callers, NULL},
        {"GET", "/v1/tenants/{id}", h_get, s, false, NULL, NULL},
        {"PATCH", "/v1/tenants/{id}", h_update, s, false, callers, NULL},
        {"DELETE", "/v1/tenants/{id}", h_delete, s, false, callers, NULL},
    };
    return fc_api_routes(app, routes, sizeof routes / sizeof routes[0]);
}

static void tenants_stop(sf_app *app, void *ud) {
    tenants_svc *s = ud;
    (void)app;
    sf_outbox_stop(s->relay, 2000);
    s->relay = NULL;
}

int main(int argc, char **argv) {
    tenants_svc s = {0};
    static const sf_flag flags[] = {
        {"users-url", "FLEET_USERS_URL", "users' address (default: found in the registry)", NULL},
        {"notifications-url", "FLEET_NOTIFICATIONS_URL",
         "notifications' address (default: found in the registry)", NULL},
    };
    sf_app_options o = {
        .service = "tenants",
        .description = "tenants, plans and the tenant sign-up saga",
        .flags = flags,
        .flag_count = 2,
        .needs_db = true,
        .needs_nats = true,
        .on_stop = tenants_stop,
        .userdata = &s,
    };
    int rc = sf_app_main(&o, argc, argv, tenants_setup, &s);
    fc_db_close(s.db);
    return rc;
}
