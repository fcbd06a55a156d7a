/*
 * fc_outbox: event rows written in the state change's transaction; see
 * fc/fc_outbox.h for the table and the relay contract.
 */
#include "fc/fc_outbox.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fc_type_valid(const char *type) {
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n > 64 || type[0] == '.' || type[n - 1] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = type[i];
        if (c == '.' && type[i + 1] == '.') {
            return 0;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

int fc_outbox_add(fc_db *db, const char *tenant, const char *type, const char *data_json,
                  const char *traceparent, const char *tracestate, char *event_id) {
    int rc = SL_EINVAL;
    json_t *data = NULL, *ev = NULL;
    char *payload = NULL;
    char subject[160], id[37], when[64];
    if (!fc_id_valid(tenant) || !fc_type_valid(type)) {
        goto out;
    }
    data = data_json ? json_loads(data_json, 0, NULL) : json_object();
    if (!data || !json_is_object(data)) {
        goto out;
    }
    int64_t now = fc_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000));
    fc_uuid(id);
    snprintf(subject, sizeof subject, "events.%s.%s", tenant, type);
    ev = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", id, "type", type, "tenant", tenant, "time",
                   when, "data", data);
    payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    if (!payload) {
        rc = SL_ENOMEM;
        goto out;
    }
    sqlite3_stmt *st =
        fc_db_stmt(db, "INSERT INTO outbox(event_id, subject, payload, traceparent, tracestate,"
                       " created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st) {
        rc = SL_ESTORAGE;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, payload, -1, SQLITE_STATIC);
    if (traceparent && *traceparent) {
        sqlite3_bind_text(st, 4, traceparent, -1, SQLITE_STATIC);
    }
    if (tracestate && *tracestate) {
        sqlite3_bind_text(st, 5, tracestate, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 6, now);
    rc = fc_db_step_done(db, st);
    if (rc == 0 && event_id) {
        memcpy(event_id, id, sizeof id);
    }
out:
    free(payload);
    json_decref(ev);
    json_decref(data);
    return rc;
}
