/*
 * fleet-users: the users of each tenant (create, read, list, update,
 * delete) in two representations: v2 (display_name, version, timestamps)
 * and the deprecated v1 (name, tenant_id, created_at) that older clients
 * still call. Every change writes its event (user.created, user.updated,
 * user.deleted) into the outbox in the same transaction; the runtime's
 * relay publishes it to JetStream.
 *
 * Plans: users keeps each tenant's user limit from the tenant.* events it
 * consumes (durable consumer "users"), and refuses a user beyond it (403);
 * a tenant it has not heard of has no limit.
 *
 * Callers (service tokens): gateway (the user's tenant in X-Tenant-Id),
 * auth (sign-up), tenants (the sign-up saga creates and, compensating,
 * deletes the admin). Threads: libmicrohttpd's connection threads run the
 * handlers; the database mutex serializes transactions.
 */
#include "fc/fc_api.h"
#include "fc/fc_outbox.h"

#include <sf/sf_telemetry.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct users_svc {
    fc_db *db;
    sf_outbox *relay;
} users_svc;

static const fc_migration users_migrations[] = {
    {"users", "CREATE TABLE users(tenant TEXT NOT NULL, id TEXT NOT NULL, email TEXT NOT NULL,"
              " name TEXT NOT NULL, role TEXT NOT NULL, created_ms INTEGER NOT NULL,"
              " updated_ms INTEGER NOT NULL, version INTEGER NOT NULL,"
              " PRIMARY KEY(tenant, id), UNIQUE(tenant, email));"},
    {"outbox", FC_OUTBOX_MIGRATION_SQL},
    {"tenant_limits", "CREATE TABLE tenant_limits(tenant TEXT PRIMARY KEY, plan TEXT NOT NULL,"
                      " max_users INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"},
};

typedef struct user_row {
    char id[65], tenant[65], email[256], name[256], role[16];
    int64_t created_ms, updated_ms;
    int version;
} user_row;

#define USER_COLS "id, tenant, email, name, role, created_ms, updated_ms, version"

static void user_read(sqlite3_stmt *st, user_row *u) {
    snprintf(u->id, sizeof u->id, "%s", fc_db_col_text(st, 0));
    snprintf(u->tenant, sizeof u->tenant, "%s", fc_db_col_text(st, 1));
    snprintf(u->email, sizeof u->email, "%s", fc_db_col_text(st, 2));
    snprintf(u->name, sizeof u->name, "%s", fc_db_col_text(st, 3));
    snprintf(u->role, sizeof u->role, "%s", fc_db_col_text(st, 4));
    u->created_ms = sqlite3_column_int64(st, 5);
    u->updated_ms = sqlite3_column_int64(st, 6);
    u->version = sqlite3_column_int(st, 7);
}

/* The user's JSON in the API version asked for (1 or 2). */
static json_t *user_json(const user_row *u, int api) {
    char created[32], updated[32];
    fc_api_time(u->created_ms, created);
    fc_api_time(u->updated_ms, updated);
    if (api == 1) {
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", u->id, "tenant_id", u->tenant,
                         "email", u->email, "name", u->name, "role", u->role, "created_at",
                         created);
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "id", u->id, "tenant", u->tenant,
                     "email", u->email, "display_name", u->name, "role", u->role, "created",
                     created, "updated", updated, "version", u->version);
}

static int user_get(fc_db *db, const char *tenant, const char *id, user_row *u) {
    sqlite3_stmt *st =
        fc_db_stmt(db, "SELECT " USER_COLS " FROM users WHERE tenant = ?1 AND id = ?2");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        user_read(st, u);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? SL_ENOTFOUND : SL_ESTORAGE;
}

/* The event's data: the user as v2 shows it, minus timestamps. */
static int user_event(users_svc *s, sf_req *r, const user_row *u, const char *type) {
    char tp[64];
    fc_api_traceparent(r, tp);
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "user_id", u->id, "email", u->email,
                          "display_name", u->name, "role", u->role, "version", u->version);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!text) {
        return SL_ENOMEM;
    }
    int rc = fc_outbox_add(s->db, u->tenant, type, text, tp, sf_req_header(r, "tracestate"), NULL);
    free(text);
    return rc;
}

static int api_version(sf_req *r) {
    return strncmp(sf_req_path(r), "/v1/", 4) == 0 ? 1 : 2;
}

/* A user may change themselves; an administrator (or a service) anyone. */
static bool may_change(sf_req *r, const char *id) {
    const char *me = fc_api_user(r);
    return fc_api_admin(r) || (me && id && strcmp(me, id) == 0);
}

static bool role_valid(const char *role) {
    return strcmp(role, "member") == 0 || strcmp(role, "admin") == 0;
}

/* The tenant's user limit (-1: none known). */
static int plan_limit(fc_db *db, const char *tenant, int *limit) {
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT max_users FROM tenant_limits WHERE tenant = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    *limit = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    return 0;
}

static int tenant_users(fc_db *db, const char *tenant) {
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT count(*) FROM users WHERE tenant = ?1");
    if (!st) {
        return 0;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return n;
}

/* tenant.created / tenant.updated carry the tenant with its plan's limits. */
static int on_tenant_event(const sf_bus_msg *m, void *ud) {
    users_svc *s = ud;
    size_t len = 0;
    const void *raw = sf_bus_msg_data(m, &len);
    json_t *ev = json_loadb(raw, len, 0, NULL);
    json_t *d = json_object_get(ev, "data");
    const char *tenant = json_string_value(json_object_get(ev, "tenant"));
    const char *plan = json_string_value(json_object_get(d, "plan"));
    json_t *max = json_object_get(json_object_get(d, "limits"), "max_users");
    int rc = 0;
    if (tenant && fc_id_valid(tenant) && plan && json_is_integer(max)) {
        rc = fc_db_begin(s->db, true);
        if (rc == 0) {
            sqlite3_stmt *st = fc_db_stmt(s->db, "INSERT INTO tenant_limits(tenant, plan,"
                                                 " max_users, updated_ms) VALUES(?1, ?2, ?3, ?4)"
                                                 " ON CONFLICT(tenant) DO UPDATE SET"
                                                 " plan = excluded.plan,"
                                                 " max_users = excluded.max_users,"
                                                 " updated_ms = excluded.updated_ms");
            rc = SL_ESTORAGE;
            if (st) {
                sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, plan, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, json_integer_value(max));
                sqlite3_bind_int64(st, 4, fc_now_ms());
                rc = fc_db_step_done(s->db, st);
            }
            rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
        }
    }
    json_decref(ev);
    return rc;
}

static void h_create(sf_req *r, void *ud) {
    users_svc *s = ud;
    int api = api_version(r);
    const sf_json_field fields[] = {
        {"id", SF_JSON_STRING, false, 1, 64},
        {"email", SF_JSON_STRING, true, 3, 254},
        {api == 1 ? "name" : "display_name", SF_JSON_STRING, api == 1, 1, 200},
        {"role", SF_JSON_STRING, false, 1, 16},
        {"tenant", SF_JSON_STRING, false, 1, 64},
    };
    json_t *b = NULL;
    if (sf_req_json(r, fields, 5, false, &b) != 0) {
        return;
    }
    const char *tenant = fc_api_tenant(r, b);
    if (!tenant) {
        json_decref(b);
        return;
    }
    if (!fc_api_admin(r)) {
        sf_reply_error(r, 403, "only a tenant administrator creates users");
        json_decref(b);
        return;
    }
    user_row u = {0};
    const char *email = json_string_value(json_object_get(b, "email"));
    const char *id = sf_json_str(b, "id", NULL);
    const char *name = sf_json_str(b, fields[2].name, email);
    const char *role = sf_json_str(b, "role", "member");
    if (!strchr(email, '@') || !role_valid(role) || (id && !fc_id_valid(id))) {
        sf_reply_error(r, 400, "%s",
                       !strchr(email, '@') ? "email needs an @"
                       : !role_valid(role) ? "role is member or admin"
                                           : "invalid id");
        json_decref(b);
        return;
    }
    if (id) {
        snprintf(u.id, sizeof u.id, "%s", id);
    } else {
        fc_uuid(u.id);
    }
    snprintf(u.tenant, sizeof u.tenant, "%s", tenant);
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", role);
    u.created_ms = u.updated_ms = fc_now_ms();
    u.version = 1;
    json_decref(b);

    int rc = fc_db_begin(s->db, true);
    if (rc != 0) {
        fc_api_fail(r, rc, "create user");
        return;
    }
    int limit = -1;
    if ((rc = plan_limit(s->db, u.tenant, &limit)) == 0 && limit >= 0) {
        /* A retried create of an existing user is not a new user. */
        user_row old;
        if (user_get(s->db, u.tenant, u.id, &old) == SL_ENOTFOUND &&
            tenant_users(s->db, u.tenant) >= limit) {
            fc_db_rollback(s->db);
            sf_reply_error(r, 403, "tenant %s's plan allows %d users", u.tenant, limit);
            return;
        }
    }
    sqlite3_stmt *st = fc_db_stmt(s->db, "INSERT INTO users(" USER_COLS ")"
                                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)");
    rc = SL_ESTORAGE;
    if (st) {
        sqlite3_bind_text(st, 1, u.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u.tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, u.email, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, u.name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, u.role, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, u.created_ms);
        rc = fc_db_step_done(s->db, st);
    }
    if (rc == FC_ECONFLICT) {
        /* A retried create (same id, same email) is answered with what
         * exists, so callers such as a resumed saga step are idempotent. */
        user_row old;
        bool same = user_get(s->db, u.tenant, u.id, &old) == 0 && strcmp(old.email, u.email) == 0;
        fc_db_rollback(s->db);
        if (same) {
            sf_reply_json(r, 200, user_json(&old, api));
        } else {
            sf_reply_error(r, 409, "a user with this email or id exists in tenant %s", u.tenant);
        }
        return;
    }
    if (rc == 0) {
        rc = user_event(s, r, &u, "user.created");
    }
    rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    if (rc != 0) {
        fc_api_fail(r, rc, "create user");
        return;
    }
    sf_outbox_notify(s->relay);
    char loc[128];
    snprintf(loc, sizeof loc, "/v%d/users/%s", api, u.id);
    fc_api_created(r, loc, user_json(&u, api));
}

static void h_get(sf_req *r, void *ud) {
    users_svc *s = ud;
    const char *tenant = fc_api_tenant(r, NULL);
    if (!tenant) {
        return;
    }
    user_row u;
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        rc = user_get(s->db, tenant, sf_req_param(r, "id"), &u);
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "user");
        return;
    }
    sf_reply_json(r, 200, user_json(&u, api_version(r)));
}

static void h_list(sf_req *r, void *ud) {
    users_svc *s = ud;
    int limit, offset, api = api_version(r);
    const char *tenant = fc_api_tenant(r, NULL);
    if (!tenant || fc_api_query_int(r, "limit", 50, 1, 1000, &limit) != 0 ||
        fc_api_query_int(r, "offset", 0, 0, 1000000000, &offset) != 0) {
        return;
    }
    json_t *arr = json_array();
    int rc = fc_db_begin(s->db, false);
    int64_t total = 0;
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "SELECT " USER_COLS " FROM users WHERE tenant = ?1"
                                             " ORDER BY created_ms, id LIMIT ?2 OFFSET ?3");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, limit);
            sqlite3_bind_int(st, 3, offset);
            while (sqlite3_step(st) == SQLITE_ROW) {
                user_row u;
                user_read(st, &u);
                json_array_append_new(arr, user_json(&u, api));
            }
            sqlite3_reset(st);
            st = fc_db_stmt(s->db, "SELECT count(*) FROM users WHERE tenant = ?1");
            if (st) {
                sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW) {
                    total = sqlite3_column_int64(st, 0);
                    rc = 0;
                }
                sqlite3_reset(st);
            }
        }
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        json_decref(arr);
        fc_api_fail(r, rc, "list users");
        return;
    }
    sf_reply_json(r, 200,
                  json_pack("{s:o, s:I, s:i, s:i}", api == 1 ? "users" : "data", arr, "total",
                            (json_int_t)total, "limit", limit, "offset", offset));
}

static void h_update(sf_req *r, void *ud) {
    users_svc *s = ud;
    int api = api_version(r);
    const sf_json_field fields[] = {
        {"email", SF_JSON_STRING, false, 3, 254},
        {api == 1 ? "name" : "display_name", SF_JSON_STRING, false, 1, 200},
        {"role", SF_JSON_STRING, false, 1, 16},
        {"tenant", SF_JSON_STRING, false, 1, 64},
    };
    json_t *b = NULL;
    if (sf_req_json(r, fields, 4, false, &b) != 0) {
        return;
    }
    const char *tenant = fc_api_tenant(r, b);
    if (!tenant) {
        json_decref(b);
        return;
    }
    const char *email = sf_json_str(b, "email", NULL), *role = sf_json_str(b, "role", NULL);
    const char *name = sf_json_str(b, fields[1].name, NULL);
    if ((email && !strchr(email, '@')) || (role && !role_valid(role))) {
        sf_reply_error(r, 400, "%s",
                       role && !role_valid(role) ? "role is member or admin" : "email needs an @");
        json_decref(b);
        return;
    }
    if (!may_change(r, sf_req_param(r, "id")) || (role && !fc_api_admin(r))) {
        sf_reply_error(r, 403,
                       "a user changes their own profile; roles and others' profiles"
                       " are for a tenant administrator");
        json_decref(b);
        return;
    }
    user_row u;
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = user_get(s->db, tenant, sf_req_param(r, "id"), &u);
        if (rc == 0) {
            if (email) {
                snprintf(u.email, sizeof u.email, "%s", email);
            }
            if (name) {
                snprintf(u.name, sizeof u.name, "%s", name);
            }
            if (role) {
                snprintf(u.role, sizeof u.role, "%s", role);
            }
            u.updated_ms = fc_now_ms();
            u.version++;
            sqlite3_stmt *st = fc_db_stmt(s->db, "UPDATE users SET email = ?3, name = ?4,"
                                                 " role = ?5, updated_ms = ?6, version = ?7"
                                                 " WHERE tenant = ?1 AND id = ?2");
            rc = SL_ESTORAGE;
            if (st) {
                sqlite3_bind_text(st, 1, u.tenant, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, u.id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, u.email, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, u.name, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 5, u.role, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 6, u.updated_ms);
                sqlite3_bind_int(st, 7, u.version);
                rc = fc_db_step_done(s->db, st);
            }
        }
        if (rc == 0) {
            rc = user_event(s, r, &u, "user.updated");
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    json_decref(b);
    if (rc != 0) {
        fc_api_fail(r, rc, "update user");
        return;
    }
    sf_outbox_notify(s->relay);
    sf_reply_json(r, 200, user_json(&u, api));
}

static void h_delete(sf_req *r, void *ud) {
    users_svc *s = ud;
    const char *tenant = fc_api_tenant(r, NULL);
    if (!tenant) {
        return;
    }
    if (!may_change(r, sf_req_param(r, "id"))) {
        sf_reply_error(r, 403, "only a tenant administrator deletes other users");
        return;
    }
    user_row u;
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = user_get(s->db, tenant, sf_req_param(r, "id"), &u);
        if (rc == 0) {
            sqlite3_stmt *st = fc_db_stmt(s->db, "DELETE FROM users WHERE tenant = ?1 AND id = ?2");
            rc = SL_ESTORAGE;
            if (st) {
                sqlite3_bind_text(st, 1, u.tenant, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, u.id, -1, SQLITE_STATIC);
                rc = fc_db_step_done(s->db, st);
            }
        }
        if (rc == 0) {
            rc = user_event(s, r, &u, "user.deleted");
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "delete user");
        return;
    }
    sf_outbox_notify(s->relay);
    sf_reply(r, 204, NULL, NULL, 0);
}

static int users_setup(sf_app *app, void *ud) {
    users_svc *s = ud;
    int rc = fc_api_open_db(app, users_migrations, 3, &s->db);
    if (rc != 0) {
        return rc;
    }
    rc = fc_api_relay_start(app, &s->relay);
    if (rc == 0) {
        rc = sf_bus_consume(sf_app_bus(app), "events.*.tenant.>", "users", on_tenant_event, s);
    }
    if (rc != 0) {
        return rc;
    }
    static const char callers[] = "gateway auth tenants";
    const sf_route routes[] = {
        {"POST", "/v2/users", h_create, s, false, callers, NULL},
        {"GET", "/v2/users", h_list, s, false, callers, NULL},
        {"GET", "/v2/users/{id}", h_get, s, false, callers, NULL},
        {"PATCH", "/v2/users/{id}", h_update, s, false, callers, NULL},
        {"DELETE", "/v2/users/{id}", h_delete, s, false, callers, NULL},
        /* v1: the same handlers, the v1 representation (by the path). */
        {"POST", "/v1/users", h_create, s, false, callers, NULL},
        {"GET", "/v1/users", h_list, s, false, callers, NULL},
        {"GET", "/v1/users/{id}", h_get, s, false, callers, NULL},
        {"PUT", "/v1/users/{id}", h_update, s, false, callers, NULL},
        {"DELETE", "/v1/users/{id}", h_delete, s, false, callers, NULL},
    };
    return fc_api_routes(app, routes, sizeof routes / sizeof routes[0]);
}

static void users_stop(sf_app *app, void *ud) {
    users_svc *s = ud;
    (void)app;
    sf_outbox_stop(s->relay, 2000);
    s->relay = NULL;
}

int main(int argc, char **argv) {
    users_svc s = {0};
    sf_app_options o = {
        .service = "users",
        .description = "the users of each tenant (v1 and v2 APIs), events through the outbox",
        .needs_db = true,
        .needs_nats = true,
        .on_stop = users_stop,
        .userdata = &s,
    };
    int rc = sf_app_main(&o, argc, argv, users_setup, &s);
    fc_db_close(s.db);
    return rc;
}
