/*
 * fc_saga: the persisted saga engine. See fc/fc_saga.h for the states and
 * the idempotency contract. Runs on the calling thread.
 */
#include "fc/fc_saga.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const fc_saga_names[] = {"running", "compensating", "completed", "failed"};

const char *fc_saga_status_name(fc_saga_status s) {
    return (unsigned)s < 4 ? fc_saga_names[s] : "unknown";
}

static int fc_saga_status_parse(const char *s, fc_saga_status *out) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, fc_saga_names[i]) == 0) {
            *out = (fc_saga_status)i;
            return 0;
        }
    }
    return SL_ECORRUPT;
}

int fc_saga_create(fc_db *db, const fc_saga_def *def, const char *id, json_t *data) {
    if (!id || !*id || strlen(id) > 128 || (data && !json_is_object(data))) {
        return SL_EINVAL;
    }
    char *text = data ? json_dumps(data, JSON_COMPACT) : strdup("{}");
    if (!text) {
        return SL_ENOMEM;
    }
    int64_t now = fc_now_ms();
    int rc = SL_ESTORAGE;
    sqlite3_stmt *st = fc_db_stmt(db, "INSERT INTO sagas(id, kind, status, step, data,"
                                      " created_ms, updated_ms) VALUES(?1, ?2, 'running', 0, ?3,"
                                      " ?4, ?4)");
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, def->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        rc = fc_db_step_done(db, st);
    }
    free(text);
    return rc;
}

typedef struct fc_saga_row {
    fc_saga_status status;
    int step;
    json_t *data;
} fc_saga_row;

static int fc_saga_load(fc_db *db, const fc_saga_def *def, const char *id, fc_saga_row *row) {
    int rc = fc_db_begin(db, false);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT kind, status, step, data FROM sagas WHERE id = ?1");
    if (!st) {
        fc_db_rollback(db);
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? SL_ENOTFOUND : SL_ESTORAGE;
    } else if (strcmp(fc_db_col_text(st, 0), def->kind) != 0 ||
               fc_saga_status_parse(fc_db_col_text(st, 1), &row->status) != 0) {
        rc = SL_ECORRUPT;
    } else {
        row->step = sqlite3_column_int(st, 2);
        row->data = json_loads(fc_db_col_text(st, 3), 0, NULL);
        rc = row->data && json_is_object(row->data) ? 0 : SL_ECORRUPT;
        if (rc != 0) {
            json_decref(row->data);
            row->data = NULL;
        }
    }
    sqlite3_reset(st);
    fc_db_rollback(db);
    return rc;
}

/* Records one action's outcome and the saga's new position in one
 * transaction. failed_step/error are set only when not NULL. */
static int fc_saga_save(fc_db *db, const char *id, fc_saga_status status, int step, json_t *data,
                        const char *step_name, const char *action, int ok, const char *detail,
                        const char *failed_step) {
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text) {
        return SL_ENOMEM;
    }
    int64_t now = fc_now_ms();
    int rc = fc_db_begin(db, true);
    if (rc != 0) {
        free(text);
        return rc;
    }
    sqlite3_stmt *st = fc_db_stmt(
        db, "UPDATE sagas SET status = ?2, step = ?3, data = ?4, updated_ms = ?5,"
            " error = coalesce(?6, error), failed_step = coalesce(?7, failed_step) WHERE id = ?1");
    rc = SL_ESTORAGE;
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, fc_saga_status_name(status), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, step);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
        if (failed_step) {
            sqlite3_bind_text(st, 6, detail ? detail : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 7, failed_step, -1, SQLITE_STATIC);
        }
        rc = fc_db_step_done(db, st);
    }
    if (rc == 0 && step_name) {
        st = fc_db_stmt(db, "INSERT INTO saga_log(saga_id, step, action, outcome, detail, at_ms)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, step_name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, ok ? "ok" : "error", -1, SQLITE_STATIC);
            if (detail && *detail) {
                sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
            }
            sqlite3_bind_int64(st, 6, now);
            rc = fc_db_step_done(db, st);
        }
    }
    if (rc == 0) {
        rc = fc_db_commit(db);
    } else {
        fc_db_rollback(db);
    }
    free(text);
    return rc;
}

static void fc_saga_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int fc_saga_run(fc_db *db, const fc_saga_def *def, void *app, const char *id,
                fc_saga_status *status) {
    int attempts = def->compensate_attempts > 0 ? def->compensate_attempts : 3;
    int backoff0 = def->backoff_ms > 0 ? def->backoff_ms : 50;
    for (;;) {
        fc_saga_row row = {0};
        int rc = fc_saga_load(db, def, id, &row);
        if (rc != 0) {
            return rc;
        }
        char why[256] = "";
        if (row.status == FC_SAGA_RUNNING && row.step >= (int)def->nsteps) {
            rc = fc_saga_save(db, id, FC_SAGA_COMPLETED, row.step, row.data, NULL, NULL, 1, NULL,
                              NULL);
        } else if (row.status == FC_SAGA_RUNNING) {
            const fc_saga_step *s = &def->steps[row.step];
            int ok = s->run(app, id, row.data, why, sizeof why) == 0;
            if (!ok && !why[0]) {
                snprintf(why, sizeof why, "step %s failed", s->name);
            }
            if (ok) {
                int next = row.step + 1;
                rc = fc_saga_save(db, id,
                                  next >= (int)def->nsteps ? FC_SAGA_COMPLETED : FC_SAGA_RUNNING,
                                  next, row.data, s->name, "run", 1, NULL, NULL);
            } else {
                /* The failed step is assumed not to have taken effect (steps
                 * are atomic or undo themselves); compensation starts with
                 * the step before it. */
                rc = fc_saga_save(db, id, row.step > 0 ? FC_SAGA_COMPENSATING : FC_SAGA_FAILED,
                                  row.step - 1, row.data, s->name, "run", 0, why, s->name);
            }
        } else if (row.status == FC_SAGA_COMPENSATING && row.step < 0) {
            rc = fc_saga_save(db, id, FC_SAGA_FAILED, -1, row.data, NULL, NULL, 1, NULL, NULL);
        } else if (row.status == FC_SAGA_COMPENSATING) {
            const fc_saga_step *s = &def->steps[row.step];
            int ok = 1;
            for (int i = 0; s->compensate && i < attempts; i++) {
                why[0] = '\0';
                ok = s->compensate(app, id, row.data, why, sizeof why) == 0;
                if (ok) {
                    break;
                }
                if (i + 1 < attempts) {
                    fc_saga_sleep_ms(backoff0 << i);
                }
            }
            int next = row.step - 1;
            rc = fc_saga_save(db, id,
                              ok ? (next < 0 ? FC_SAGA_FAILED : FC_SAGA_COMPENSATING)
                                 : FC_SAGA_COMPENSATING,
                              ok ? next : row.step, row.data, s->name, "compensate", ok,
                              ok ? (s->compensate ? NULL : "nothing to undo") : why, NULL);
            if (rc == 0 && !ok) {
                /* Leave it compensating; a later resume retries. */
                json_decref(row.data);
                *status = FC_SAGA_COMPENSATING;
                return 0;
            }
        } else {
            json_decref(row.data);
            *status = row.status;
            return 0;
        }
        json_decref(row.data);
        if (rc != 0) {
            return rc;
        }
    }
}

int fc_saga_resume_all(fc_db *db, const fc_saga_def *def, void *app) {
    size_t n = 0, cap = 0;
    char **ids = NULL;
    int rc = fc_db_begin(db, false);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT id FROM sagas WHERE status IN ('running',"
                                      " 'compensating') AND kind = ?1 ORDER BY created_ms");
    if (!st) {
        fc_db_rollback(db);
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, def->kind, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nids = realloc(ids, ncap * sizeof *ids);
            if (!nids) {
                rc = SL_ENOMEM;
                break;
            }
            ids = nids;
            cap = ncap;
        }
        ids[n] = strdup(fc_db_col_text(st, 0));
        if (!ids[n]) {
            rc = SL_ENOMEM;
            break;
        }
        n++;
    }
    sqlite3_reset(st);
    fc_db_rollback(db);
    int driven = 0;
    for (size_t i = 0; i < n; i++) {
        fc_saga_status s;
        if (rc == 0 && fc_saga_run(db, def, app, ids[i], &s) == 0) {
            driven++;
        }
        free(ids[i]);
    }
    free(ids);
    return rc != 0 ? rc : driven;
}

static int fc_saga_history(fc_db *db, const char *id, json_t *hist) {
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT step, action, outcome, detail, at_ms FROM saga_log"
                                      " WHERE saga_id = ?1 ORDER BY seq");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "step", fc_db_col_text(st, 0), "action",
                              fc_db_col_text(st, 1), "outcome", fc_db_col_text(st, 2), "at",
                              (json_int_t)sqlite3_column_int64(st, 4));
        if (!e) {
            rc = SL_ENOMEM;
            break;
        }
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            json_object_set_new(e, "detail", json_string(fc_db_col_text(st, 3)));
        }
        json_array_append_new(hist, e);
    }
    sqlite3_reset(st);
    return rc;
}

int fc_saga_get(fc_db *db, const fc_saga_def *def, const char *id, json_t **out) {
    json_t *o = NULL;
    int rc = fc_db_begin(db, false);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT kind, status, step, data, error, failed_step,"
                                      " created_ms, updated_ms FROM sagas WHERE id = ?1");
    if (!st) {
        rc = SL_ESTORAGE;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = step == SQLITE_DONE ? SL_ENOTFOUND : SL_ESTORAGE;
        goto out;
    }
    json_t *steps = json_array();
    for (size_t i = 0; steps && i < def->nsteps; i++) {
        json_array_append_new(steps, json_string(def->steps[i].name));
    }
    json_t *data = json_loads(fc_db_col_text(st, 3), 0, NULL);
    o = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I, s:I, s:[]}", "id", id, "kind",
                  fc_db_col_text(st, 0), "status", fc_db_col_text(st, 1), "step",
                  sqlite3_column_int(st, 2), "steps", steps ? steps : json_array(), "data",
                  data ? data : json_object(), "created", (json_int_t)sqlite3_column_int64(st, 6),
                  "updated", (json_int_t)sqlite3_column_int64(st, 7), "history");
    if (o && sqlite3_column_type(st, 4) != SQLITE_NULL) {
        json_object_set_new(o, "error", json_string(fc_db_col_text(st, 4)));
        json_object_set_new(o, "failed_step", json_string(fc_db_col_text(st, 5)));
    }
    sqlite3_reset(st);
    if (!o) {
        rc = SL_ENOMEM;
        goto out;
    }
    rc = fc_saga_history(db, id, json_object_get(o, "history"));
out:
    fc_db_rollback(db);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}
