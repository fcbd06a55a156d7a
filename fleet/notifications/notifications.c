/*
 * fleet-notifications: turns events into webhook deliveries.
 *
 * In: every event from JetStream (durable consumer "notifications", queue
 * group "notifications", explicit ack), and POST /v1/notifications from
 * tenants (the welcome message of the sign-up saga). Each becomes one row of
 * `deliveries`, keyed by the event (or notification) id, so a redelivered
 * event is recorded once; the message is acknowledged only after the row
 * commits. tenant.* events carrying a webhook_url update the tenant's
 * webhook (event-carried state), as does PUT /v1/notifications/webhooks/{t}.
 *
 * Out: a delivery thread POSTs due rows to the tenant's webhook URL (JSON
 * body = the event; headers X-Fleet-Event-Id and X-Fleet-Event-Type so a
 * receiver can deduplicate; traceparent of a CLIENT span that is a child of
 * the CONSUMER span). 2xx = delivered; 408, 429, 5xx or no answer = retried
 * with exponential backoff and jitter up to MAX_ATTEMPTS; other 4xx =
 * failed. A tenant without a webhook gets its rows marked skipped.
 * GET /v1/notifications/deliveries lists them.
 *
 * Threads: the bus's delivery thread (consumer), the server's connection
 * threads (API), one webhook thread (deliveries); the database mutex
 * orders their transactions, and no transaction is open during a POST.
 */
#include "fc/fc_api.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sf/sf_err.h>
#include <sf/sf_telemetry.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 6
#define FIRST_BACKOFF_MS 200
#define WEBHOOK_TIMEOUT_MS 3000
#define BATCH 16

typedef struct notif_svc {
    sf_app *app;
    fc_db *db;
    pthread_t worker;
    bool worker_started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;
} notif_svc;

static const fc_migration notif_migrations[] = {
    {"deliveries",
     "CREATE TABLE webhooks(tenant TEXT PRIMARY KEY, url TEXT NOT NULL, updated_ms INTEGER NOT"
     " NULL);"
     "CREATE TABLE deliveries(id TEXT PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL,"
     " payload TEXT NOT NULL, traceparent TEXT, status TEXT NOT NULL, url TEXT,"
     " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,"
     " last_status INTEGER, last_error TEXT, created_ms INTEGER NOT NULL,"
     " delivered_ms INTEGER);"
     "CREATE INDEX deliveries_due ON deliveries(next_attempt_ms) WHERE status = 'pending';"
     "CREATE INDEX deliveries_tenant ON deliveries(tenant, created_ms);"},
};

static void wake_worker(notif_svc *s) {
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

static int webhook_set(fc_db *db, const char *tenant, const char *url) {
    sqlite3_stmt *st = fc_db_stmt(db, "INSERT INTO webhooks(tenant, url, updated_ms)"
                                      " VALUES(?1, ?2, ?3) ON CONFLICT(tenant) DO UPDATE"
                                      " SET url = excluded.url, updated_ms = excluded.updated_ms");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, fc_now_ms());
    return fc_db_step_done(db, st);
}

static bool url_ok(const char *u) {
    return u && strlen(u) < 1000 &&
           (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

/* Records a delivery (once per id) inside the caller's transaction.
 * Returns 0, or FC_ECONFLICT when the id was recorded before. */
static int delivery_add(fc_db *db, const char *id, const char *tenant, const char *type,
                        const char *payload, const char *traceparent) {
    sqlite3_stmt *st = fc_db_stmt(db, "INSERT INTO deliveries(id, tenant, type, payload,"
                                      " traceparent, status, next_attempt_ms, created_ms)"
                                      " VALUES(?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, payload, -1, SQLITE_STATIC);
    if (traceparent && *traceparent) {
        sqlite3_bind_text(st, 5, traceparent, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 6, fc_now_ms());
    return fc_db_step_done(db, st);
}

/* --- the consumer ------------------------------------------------------------ */

static int on_event(const sf_bus_msg *m, void *ud) {
    notif_svc *s = ud;
    size_t len = 0;
    const void *raw = sf_bus_msg_data(m, &len);
    json_t *ev = json_loadb(raw, len, 0, NULL);
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *tenant = json_string_value(json_object_get(ev, "tenant"));
    if (!id || !type || !tenant || !fc_id_valid(tenant) || strlen(id) > 128 || strlen(type) > 64) {
        sf_log(SL_SEVERITY_WARN, "dropping a malformed event (%zu bytes)", len);
        json_decref(ev);
        return 0;
    }
    /* The delivery's trace continues from this CONSUMER span. */
    char tp[SL_TRACEPARENT_LEN + 1] = "";
    sl_span_context ctx;
    if (sl_context_current(&ctx) == 0) {
        sl_traceparent_format(&ctx, tp);
    }
    const char *hook =
        json_string_value(json_object_get(json_object_get(ev, "data"), "webhook_url"));
    char *payload = json_dumps(ev, JSON_COMPACT);
    int rc = payload ? fc_db_begin(s->db, true) : SL_ENOMEM;
    if (rc == 0) {
        if (strncmp(type, "tenant.", 7) == 0 && url_ok(hook)) {
            rc = webhook_set(s->db, tenant, hook);
        }
        if (rc == 0) {
            rc = delivery_add(s->db, id, tenant, type, payload, tp);
        }
        if (rc == FC_ECONFLICT) {
            sf_log(SL_SEVERITY_DEBUG, "event %s already recorded", id);
            fc_db_rollback(s->db);
            rc = 0;
        } else {
            rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
        }
    }
    free(payload);
    json_decref(ev);
    if (rc == 0) {
        wake_worker(s);
    }
    return rc;
}

/* --- webhook delivery --------------------------------------------------------- */

typedef struct due {
    char id[129], tenant[65], type[65], url[1024];
    char *payload;
    char traceparent[64];
    int attempts;
} due;

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

/* POSTs one delivery; returns the HTTP status, or 0 with err set. */
static long post_webhook(notif_svc *s, const due *d, char *err, size_t cap) {
    sl_span_context parent;
    sl_span_options so;
    sl_span *span = NULL;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_CLIENT;
    so.root = true;
    if (d->traceparent[0] &&
        sl_traceparent_parse(d->traceparent, strlen(d->traceparent), &parent) == 0) {
        so.parent = &parent;
        so.root = false;
    }
    sl_span_start(sf_telemetry_tracer(sf_app_telemetry(s->app)), "POST webhook", &so, &span);
    sl_span_set_str(span, "http.request.method", "POST");
    sl_span_set_str(span, "url.full", d->url);
    sl_span_set_str(span, "fleet.event.id", d->id);
    sl_span_set_str(span, "fleet.event.type", d->type);
    sl_span_set_int(span, "fleet.delivery.attempt", d->attempts + 1);

    char h_id[200], h_type[100], h_tp[80];
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(h_id, sizeof h_id, "X-Fleet-Event-Id: %s", d->id);
    snprintf(h_type, sizeof h_type, "X-Fleet-Event-Type: %s", d->type);
    hdrs = curl_slist_append(hdrs, h_id);
    hdrs = curl_slist_append(hdrs, h_type);
    sl_span_context sc;
    char tp[SL_TRACEPARENT_LEN + 1];
    if (sl_span_get_context(span, &sc) == 0 && sl_traceparent_format(&sc, tp) == 0) {
        snprintf(h_tp, sizeof h_tp, "traceparent: %s", tp);
        hdrs = curl_slist_append(hdrs, h_tp);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c || !hdrs) {
        snprintf(err, cap, "out of memory");
    } else {
        curl_easy_setopt(c, CURLOPT_URL, d->url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->payload);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "fleet-notifications");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode cc = curl_easy_perform(c);
        if (cc == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        } else {
            snprintf(err, cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    sl_span_set_int(span, "http.response.status_code", status);
    if (status < 200 || status >= 300) {
        sl_span_set_status(span, SL_STATUS_ERROR, status ? "webhook answered an error" : err);
    }
    sl_span_end(span, 0);
    return status;
}

/* The next attempt's delay: FIRST_BACKOFF_MS doubled per attempt, with up
 * to 50% jitter so that many failing deliveries do not retry in step. */
static int64_t backoff_ms(int attempts) {
    int64_t base = (int64_t)FIRST_BACKOFF_MS << (attempts < 10 ? attempts : 10);
    fc_crypto_init();
    return base + (int64_t)randombytes_uniform((uint32_t)(base / 2 + 1));
}

static void record_outcome(notif_svc *s, const due *d, long status, const char *err) {
    const char *state;
    int64_t next = 0, now = fc_now_ms();
    if (status >= 200 && status < 300) {
        state = "delivered";
    } else if (status == 0 || status == 408 || status == 429 || status >= 500) {
        state = d->attempts + 1 >= MAX_ATTEMPTS ? "failed" : "pending";
        next = now + backoff_ms(d->attempts);
    } else {
        state = "failed";
    }
    if (fc_db_begin(s->db, true) != 0) {
        return;
    }
    sqlite3_stmt *st = fc_db_stmt(s->db, "UPDATE deliveries SET status = ?2, attempts = ?3,"
                                         " next_attempt_ms = ?4, last_status = ?5, last_error = ?6,"
                                         " url = ?7, delivered_ms = ?8 WHERE id = ?1");
    int rc = SL_ESTORAGE;
    if (st) {
        sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, d->attempts + 1);
        sqlite3_bind_int64(st, 4, next);
        if (status) {
            sqlite3_bind_int64(st, 5, status);
        }
        if (err && *err) {
            sqlite3_bind_text(st, 6, err, -1, SQLITE_STATIC);
        }
        sqlite3_bind_text(st, 7, d->url, -1, SQLITE_STATIC);
        if (strcmp(state, "delivered") == 0) {
            sqlite3_bind_int64(st, 8, now);
        }
        rc = fc_db_step_done(s->db, st);
    }
    if (rc == 0) {
        fc_db_commit(s->db);
    } else {
        fc_db_rollback(s->db);
    }
    if (strcmp(state, "pending") != 0) {
        sf_log(strcmp(state, "delivered") == 0 ? SL_SEVERITY_INFO : SL_SEVERITY_WARN,
               "webhook %s for %s (%s): %s after %d attempt(s)", d->id, d->tenant, d->type, state,
               d->attempts + 1);
    }
}

/* Takes up to BATCH due deliveries; rows of tenants without a webhook are
 * marked skipped on the way. Returns how many were taken, and in
 * *next_ms when the earliest pending one is due. */
static int take_due(notif_svc *s, due *out, int64_t *next_ms) {
    int n = 0;
    int64_t now = fc_now_ms();
    *next_ms = now + 1000;
    if (fc_db_begin(s->db, true) != 0) {
        return 0;
    }
    fc_db_exec(s->db, "UPDATE deliveries SET status = 'skipped', last_error = 'no webhook for"
                      " the tenant' WHERE status = 'pending' AND tenant NOT IN"
                      " (SELECT tenant FROM webhooks)");
    sqlite3_stmt *st =
        fc_db_stmt(s->db, "SELECT d.id, d.tenant, d.type, d.payload, d.traceparent, d.attempts,"
                          " w.url FROM deliveries d JOIN webhooks w ON w.tenant = d.tenant"
                          " WHERE d.status = 'pending' AND d.next_attempt_ms <= ?1"
                          " ORDER BY d.next_attempt_ms LIMIT ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int(st, 2, BATCH);
        while (n < BATCH && sqlite3_step(st) == SQLITE_ROW) {
            due *d = &out[n];
            snprintf(d->id, sizeof d->id, "%s", fc_db_col_text(st, 0));
            snprintf(d->tenant, sizeof d->tenant, "%s", fc_db_col_text(st, 1));
            snprintf(d->type, sizeof d->type, "%s", fc_db_col_text(st, 2));
            d->payload = strdup(fc_db_col_text(st, 3));
            snprintf(d->traceparent, sizeof d->traceparent, "%s", fc_db_col_text(st, 4));
            d->attempts = sqlite3_column_int(st, 5);
            snprintf(d->url, sizeof d->url, "%s", fc_db_col_text(st, 6));
            if (d->payload) {
                n++;
            }
        }
        sqlite3_reset(st);
    }
    st = fc_db_stmt(s->db, "SELECT min(next_attempt_ms) FROM deliveries WHERE status ="
                           " 'pending'");
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t t = sqlite3_column_int64(st, 0);
        *next_ms = t < *next_ms ? t : *next_ms;
    }
    if (st) {
        sqlite3_reset(st);
    }
    fc_db_commit(s->db);
    return n;
}

static void *worker_main(void *arg) {
    notif_svc *s = arg;
    due *batch = calloc(BATCH, sizeof *batch);
    while (batch && !atomic_load(&s->stop)) {
        int64_t next_ms;
        int n = take_due(s, batch, &next_ms);
        for (int i = 0; i < n; i++) {
            char err[256] = "";
            long status = atomic_load(&s->stop) ? 0 : post_webhook(s, &batch[i], err, sizeof err);
            if (!atomic_load(&s->stop)) {
                record_outcome(s, &batch[i], status, err);
            }
            free(batch[i].payload);
        }
        if (n > 0) {
            continue;
        }
        int64_t wait = next_ms - fc_now_ms();
        if (wait <= 0) {
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        if (!atomic_load(&s->stop)) {
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    free(batch);
    return NULL;
}

/* --- the API ------------------------------------------------------------------ */

static void h_send(sf_req *r, void *ud) {
    notif_svc *s = ud;
    static const sf_json_field fields[] = {
        {"id", SF_JSON_STRING, true, 1, 128},
        {"tenant", SF_JSON_STRING, true, 1, 64},
        {"type", SF_JSON_STRING, true, 1, 64},
        {"data", SF_JSON_OBJECT, false, 0, 0},
        {"webhook_url", SF_JSON_STRING, false, 8, 1000},
    };
    json_t *b = NULL;
    if (sf_req_json(r, fields, 5, false, &b) != 0) {
        return;
    }
    const char *id = json_string_value(json_object_get(b, "id"));
    const char *tenant = json_string_value(json_object_get(b, "tenant"));
    const char *type = json_string_value(json_object_get(b, "type"));
    const char *hook = sf_json_str(b, "webhook_url", NULL);
    if (!fc_id_valid(tenant) || (hook && !url_ok(hook))) {
        sf_reply_error(r, 400, "%s", !fc_id_valid(tenant) ? "invalid tenant" : "bad webhook_url");
        json_decref(b);
        return;
    }
    char tp[64];
    fc_api_traceparent(r, tp);
    char when[32];
    fc_api_time(fc_now_ms(), when);
    json_t *data = json_object_get(b, "data");
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", id, "type", type, "tenant", tenant,
                           "time", when, "data", data ? data : json_object());
    char *payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    int rc = payload ? fc_db_begin(s->db, true) : SL_ENOMEM;
    bool dup = false;
    if (rc == 0) {
        if (hook) {
            rc = webhook_set(s->db, tenant, hook);
        }
        if (rc == 0) {
            rc = delivery_add(s->db, id, tenant, type, payload, tp);
        }
        if (rc == FC_ECONFLICT) {
            dup = true;
            rc = 0;
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    free(payload);
    if (rc != 0) {
        fc_api_fail(r, rc, "notification");
    } else {
        wake_worker(s);
        sf_reply_json(r, 202, json_pack("{s:s, s:b}", "id", id, "duplicate", dup));
    }
    json_decref(b);
}

static void h_webhook(sf_req *r, void *ud) {
    notif_svc *s = ud;
    static const sf_json_field fields[] = {{"url", SF_JSON_STRING, true, 8, 1000}};
    json_t *b = NULL;
    if (sf_req_json(r, fields, 1, false, &b) != 0) {
        return;
    }
    const char *tenant = sf_req_param(r, "tenant");
    const char *url = json_string_value(json_object_get(b, "url"));
    if (!fc_id_valid(tenant) || !url_ok(url)) {
        sf_reply_error(r, 400, "%s", !fc_id_valid(tenant) ? "invalid tenant" : "bad url");
        json_decref(b);
        return;
    }
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = webhook_set(s->db, tenant, url);
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    if (rc != 0) {
        json_decref(b);
        fc_api_fail(r, rc, "webhook");
        return;
    }
    sf_reply_json(r, 200, json_pack("{s:s, s:s}", "tenant", tenant, "url", url));
    json_decref(b);
}

static json_t *delivery_json(sqlite3_stmt *st) {
    char created[32];
    fc_api_time(sqlite3_column_int64(st, 7), created);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "id", fc_db_col_text(st, 0), "tenant",
                  fc_db_col_text(st, 1), "type", fc_db_col_text(st, 2), "status",
                  fc_db_col_text(st, 3), "attempts", sqlite3_column_int(st, 4), "created", created);
    if (o && sqlite3_column_type(st, 5) != SQLITE_NULL) {
        json_object_set_new(o, "last_status", json_integer(sqlite3_column_int(st, 5)));
    }
    if (o && sqlite3_column_type(st, 6) != SQLITE_NULL) {
        json_object_set_new(o, "last_error", json_string(fc_db_col_text(st, 6)));
    }
    if (o && sqlite3_column_type(st, 8) != SQLITE_NULL) {
        char t[32];
        fc_api_time(sqlite3_column_int64(st, 8), t);
        json_object_set_new(o, "delivered", json_string(t));
    }
    if (o && sqlite3_column_type(st, 9) != SQLITE_NULL) {
        json_object_set_new(o, "url", json_string(fc_db_col_text(st, 9)));
    }
    return o;
}

#define DELIVERY_COLS                                                                              \
    "id, tenant, type, status, attempts, last_status, last_error, created_ms, delivered_ms, url"

static void h_list(sf_req *r, void *ud) {
    notif_svc *s = ud;
    int limit;
    const char *tenant = sf_req_query(r, "tenant"), *status = sf_req_query(r, "status");
    if (fc_api_from_gateway(r)) {
        tenant = sf_req_header(r, "X-Tenant-Id");
    }
    if (fc_api_query_int(r, "limit", 100, 1, 1000, &limit) != 0) {
        return;
    }
    if (tenant && !fc_id_valid(tenant)) {
        sf_reply_error(r, 400, "invalid tenant");
        return;
    }
    json_t *arr = json_array();
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        sqlite3_stmt *st =
            fc_db_stmt(s->db, "SELECT " DELIVERY_COLS " FROM deliveries WHERE (?1 IS NULL OR"
                              " tenant = ?1) AND (?2 IS NULL OR status = ?2)"
                              " ORDER BY created_ms DESC, id LIMIT ?3");
        rc = SL_ESTORAGE;
        if (st) {
            if (tenant) {
                sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
            }
            if (status) {
                sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
            }
            sqlite3_bind_int(st, 3, limit);
            while (sqlite3_step(st) == SQLITE_ROW) {
                json_array_append_new(arr, delivery_json(st));
            }
            sqlite3_reset(st);
            rc = 0;
        }
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        json_decref(arr);
        fc_api_fail(r, rc, "deliveries");
        return;
    }
    sf_reply_json(r, 200, json_pack("{s:o}", "data", arr));
}

static void h_get(sf_req *r, void *ud) {
    notif_svc *s = ud;
    json_t *o = NULL;
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        sqlite3_stmt *st =
            fc_db_stmt(s->db, "SELECT " DELIVERY_COLS " FROM deliveries WHERE id = ?1");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, sf_req_param(r, "id"), -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_ROW ? 0 : SL_ENOTFOUND;
            if (rc == 0) {
                o = delivery_json(st);
            }
            sqlite3_reset(st);
        }
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "delivery");
        return;
    }
    if (fc_api_from_gateway(r)) {
        const char *mine = sf_req_header(r, "X-Tenant-Id");
        if (!mine || strcmp(mine, json_string_value(json_object_get(o, "tenant"))) != 0) {
            json_decref(o);
            sf_reply_error(r, 404, "delivery: not found");
            return;
        }
    }
    sf_reply_json(r, 200, o);
}

static int notif_setup(sf_app *app, void *ud) {
    notif_svc *s = ud;
    s->app = app;
    int rc = fc_api_open_db(app, notif_migrations, 1, &s->db);
    if (rc != 0) {
        return rc;
    }
    const sf_route routes[] = {
        {"POST", "/v1/notifications", h_send, s, false, "tenants", NULL},
        {"PUT", "/v1/notifications/webhooks/{tenant}", h_webhook, s, false, "tenants gateway",
         NULL},
        {"GET", "/v1/notifications/deliveries", h_list, s, false, NULL, NULL},
        {"GET", "/v1/notifications/deliveries/{id}", h_get, s, false, NULL, NULL},
    };
    if ((rc = fc_api_routes(app, routes, sizeof routes / sizeof routes[0])) != 0) {
        return rc;
    }
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        return SL_ENOMEM;
    }
    s->worker_started = true;
    rc = sf_bus_consume(sf_app_bus(app), "events.>", "notifications", on_event, s);
    if (rc != 0) {
        sf_log(SL_SEVERITY_ERROR, "consuming events: %s", sf_strerror(rc));
    }
    return rc;
}

static void notif_stop(sf_app *app, void *ud) {
    notif_svc *s = ud;
    (void)app;
    atomic_store(&s->stop, true);
    if (s->worker_started) {
        wake_worker(s);
        pthread_join(s->worker, NULL);
        s->worker_started = false;
    }
}

int main(int argc, char **argv) {
    notif_svc s = {0};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.wake, NULL);
    sf_app_options o = {
        .service = "notifications",
        .description = "webhook deliveries for events, with retries",
        .needs_db = true,
        .needs_nats = true,
        .on_stop = notif_stop,
        .userdata = &s,
    };
    int rc = sf_app_main(&o, argc, argv, notif_setup, &s);
    notif_stop(NULL, &s);
    fc_db_close(s.db);
    pthread_cond_destroy(&s.wake);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
