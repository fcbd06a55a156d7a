/*
 * The registry service's core; see registry.h. Threads: the HTTP server's
 * threads call reg_registry_handle; the ticker thread expires TTLs and
 * flushes heartbeat times; the checker thread runs active health checks. One
 * mutex guards the table. Store writes of registrations and removals happen
 * under it too (so a row never outlives or predates its table entry); the
 * batched heartbeat flush and the health-check HTTP calls run outside it.
 */
#include "registry.h"

#include "edge_query.h"
#include "reg_check.h"
#include "reg_store.h"
#include "reg_table.h"

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct reg_registry {
    reg_options opt;
    pthread_mutex_t mu;
    reg_table *table;
    reg_store *store; /* NULL without a database */
    atomic_bool stop;
    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cv;
    pthread_t ticker, checker;
    bool ticker_started, checker_started;
    sl_metric *m_instances, *m_passing, *m_registrations, *m_heartbeats, *m_expired, *m_checks_ok,
        *m_checks_failed;
};

void reg_options_init(reg_options *o) {
    memset(o, 0, sizeof(*o));
    o->reap_after_ns = 600ULL * 1000000000ULL;
    o->default_ttl_s = 30;
    o->tick_ms = 500;
    o->check_interval_ms = 10000;
    o->check_concurrency = 32;
    o->check_timeout_ms = 2000;
}

/* Sleeps up to ms or until stop is set. Returns false when stopping. */
static bool nap(reg_registry *r, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->wait_mu);
    while (!atomic_load(&r->stop)) {
        if (pthread_cond_timedwait(&r->wait_cv, &r->wait_mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&r->wait_mu);
    return !atomic_load(&r->stop);
}

/* Under r->mu. */
static void update_gauges(reg_registry *r) {
    sl_metric_set(r->m_instances, reg_table_count(r->table));
    sl_metric_set(r->m_passing, reg_table_passing(r->table));
}

/* --- ticker ---------------------------------------------------------------- */

typedef struct tick_ctx {
    char (*removed)[REG_ID_LEN + 1];
    size_t n_removed, cap_removed;
    reg_beat *beats;
    size_t n_beats, cap_beats;
    size_t expired;
} tick_ctx;

static void on_expire(void *ud, const reg_view *v, bool removed) {
    tick_ctx *c = ud;
    if (removed) {
        SL_LOG_I("registry", "removing %s %s (%s): silent past its TTL", v->name, v->address,
                 v->id);
        if (sl_array_grow(&c->removed, &c->cap_removed, c->n_removed + 1, sizeof(*c->removed)) ==
            0) {
            memcpy(c->removed[c->n_removed++], v->id, REG_ID_LEN + 1);
        }
    } else {
        SL_LOG_I("registry", "%s %s (%s) is critical: no heartbeat within %us", v->name, v->address,
                 v->id, v->ttl_s);
        c->expired++;
    }
}

static void on_dirty(void *ud, const reg_view *v) {
    tick_ctx *c = ud;
    if (sl_array_grow(&c->beats, &c->cap_beats, c->n_beats + 1, sizeof(*c->beats)) == 0) {
        memcpy(c->beats[c->n_beats].id, v->id, REG_ID_LEN + 1);
        c->beats[c->n_beats++].last_heartbeat_unix_ns = v->last_heartbeat_unix_ns;
    }
}

void reg_registry_tick(reg_registry *r, uint64_t now_ns) {
    tick_ctx c = {0};
    pthread_mutex_lock(&r->mu);
    reg_table_expire(r->table, now_ns, on_expire, &c);
    if (r->store != NULL) {
        reg_table_take_dirty(r->table, on_dirty, &c);
    }
    update_gauges(r);
    pthread_mutex_unlock(&r->mu);
    sl_metric_add(r->m_expired, c.expired);
    if (r->store != NULL) {
        for (size_t k = 0; k < c.n_removed; k++) {
            reg_store_delete(r->store, c.removed[k]);
        }
        reg_store_put_beats(r->store, c.beats, c.n_beats);
    }
    free(c.removed);
    free(c.beats);
}

static void on_dirty_ignore(void *ud, const reg_view *v) {
    (void)ud;
    (void)v;
}

static void *ticker_main(void *arg) {
    reg_registry *r = arg;
    while (nap(r, r->opt.tick_ms)) {
        reg_registry_tick(r, sl_now_unix_nano());
    }
    return NULL;
}

/* --- checker --------------------------------------------------------------- */

typedef struct snap_ctx {
    reg_check_item *items;
    size_t n, cap;
} snap_ctx;

static void on_snapshot(void *ud, const reg_view *v) {
    snap_ctx *c = ud;
    if (sl_array_grow(&c->items, &c->cap, c->n + 1, sizeof(*c->items)) == 0) {
        reg_check_item_init(&c->items[c->n++], v->id, v->address);
    }
}

void reg_registry_check_now(reg_registry *r) {
    snap_ctx c = {0};
    pthread_mutex_lock(&r->mu);
    reg_table_each(r->table, on_snapshot, &c);
    pthread_mutex_unlock(&r->mu);
    if (reg_check_run(c.items, c.n, r->opt.check_concurrency, r->opt.check_timeout_ms, &r->stop) ==
        0) {
        size_t ok = 0;
        pthread_mutex_lock(&r->mu);
        for (size_t k = 0; k < c.n; k++) {
            reg_view v;
            bool was_failing = reg_table_get(r->table, c.items[k].id, &v) == 0 && v.check_failing;
            if (reg_table_set_check(r->table, c.items[k].id, c.items[k].ok, c.items[k].output) !=
                0) {
                continue; /* removed meanwhile */
            }
            ok += c.items[k].ok;
            if (c.items[k].ok == was_failing) {
                SL_LOG_I("registry", "%s %s: health check %s%s%s", v.name, v.address,
                         c.items[k].ok ? "passing" : "failing: ", c.items[k].ok ? "" : "",
                         c.items[k].output);
            }
        }
        pthread_mutex_unlock(&r->mu);
        sl_metric_add(r->m_checks_ok, ok);
        sl_metric_add(r->m_checks_failed, c.n - ok);
    }
    free(c.items);
}

static void *checker_main(void *arg) {
    reg_registry *r = arg;
    while (nap(r, r->opt.check_interval_ms)) {
        reg_registry_check_now(r);
    }
    return NULL;
}

/* --- life cycle -------------------------------------------------------------- */

int reg_registry_create(const reg_options *o, reg_registry **out) {
    *out = NULL;
    reg_registry *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    r->opt = *o;
    if (r->opt.tick_ms <= 0) {
        r->opt.tick_ms = 500;
    }
    if (r->opt.default_ttl_s == 0) {
        r->opt.default_ttl_s = 30;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->wait_mu, NULL);
    pthread_cond_init(&r->wait_cv, NULL);
    atomic_init(&r->stop, false);
    r->m_instances = sl_gauge("registry_instances", "", "Registered instances");
    r->m_passing = sl_gauge("registry_instances_passing", "", "Instances passing TTL and checks");
    r->m_registrations = sl_counter("registry_registrations_total", "", "Registrations received");
    r->m_heartbeats = sl_counter("registry_heartbeats_total", "", "Heartbeats received");
    r->m_expired =
        sl_counter("registry_ttl_expired_total", "", "Instances that went critical by TTL");
    r->m_checks_ok =
        sl_counter("registry_health_checks_total", "result=\"passing\"", "Active health checks");
    r->m_checks_failed =
        sl_counter("registry_health_checks_total", "result=\"critical\"", "Active health checks");
    int rc = reg_table_create(o->reap_after_ns, &r->table);
    if (rc != 0) {
        goto fail;
    }
    if (o->db_path != NULL) {
        size_t loaded = 0;
        if ((rc = reg_store_open(o->db_path, &r->store)) != 0 ||
            (rc = reg_store_load(r->store, r->table, sl_now_unix_nano(), &loaded)) != 0) {
            goto fail;
        }
        /* Loading marks every row dirty; they are already stored. */
        reg_table_take_dirty(r->table, on_dirty_ignore, NULL);
        SL_LOG_I("registry", "restored %zu instance(s) from %s", loaded, o->db_path);
    }
    if ((rc = -pthread_create(&r->ticker, NULL, ticker_main, r)) != 0) {
        goto fail;
    }
    r->ticker_started = true;
    if (o->check_interval_ms > 0) {
        if ((rc = -pthread_create(&r->checker, NULL, checker_main, r)) != 0) {
            goto fail;
        }
        r->checker_started = true;
    }
    *out = r;
    return 0;
fail:
    reg_registry_destroy(r);
    return rc;
}

void reg_registry_destroy(reg_registry *r) {
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->wait_mu);
    atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->wait_cv);
    pthread_mutex_unlock(&r->wait_mu);
    if (r->ticker_started) {
        pthread_join(r->ticker, NULL);
    }
    if (r->checker_started) {
        pthread_join(r->checker, NULL);
    }
    if (r->store != NULL && r->table != NULL) {
        tick_ctx c = {0};
        reg_table_take_dirty(r->table, on_dirty, &c);
        reg_store_put_beats(r->store, c.beats, c.n_beats);
        free(c.beats);
    }
    reg_store_close(r->store);
    reg_table_destroy(r->table);
    pthread_cond_destroy(&r->wait_cv);
    pthread_mutex_destroy(&r->wait_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void reg_registry_counts(reg_registry *r, size_t *instances, size_t *passing) {
    pthread_mutex_lock(&r->mu);
    *instances = reg_table_count(r->table);
    *passing = reg_table_passing(r->table);
    pthread_mutex_unlock(&r->mu);
}

/* --- the HTTP API ------------------------------------------------------------- */

static void reply_json(reg_reply *rep, int status, json_t *j) {
    rep->status = status;
    rep->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (rep->body == NULL) {
        rep->status = 500;
    }
}

static void reply_error(reg_reply *rep, int status, const char *msg) {
    reply_json(rep, status, json_pack("{ss}", "error", msg));
}

static json_t *view_json(const reg_view *v) {
    json_t *tags = json_array();
    for (size_t k = 0; k < v->n_tags; k++) {
        json_array_append_new(tags, json_string(v->tags[k]));
    }
    char hb[32];
    time_t secs = (time_t)(v->last_heartbeat_unix_ns / 1000000000ULL);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(hb, sizeof(hb), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *o = json_pack("{ss ss ss ss so ss ss sI sI}", "id", v->id, "name", v->name, "version",
                          v->version, "address", v->address, "tags", tags, "status",
                          v->passing ? "passing" : "critical", "last_heartbeat", hb, "ttl_s",
                          (json_int_t)v->ttl_s, "last_heartbeat_unix_nano",
                          (json_int_t)v->last_heartbeat_unix_ns);
    if (o != NULL && !v->passing) {
        json_object_set_new(o, "reason",
                            json_string(v->ttl_expired ? "ttl expired" : v->check_output));
    }
    return o;
}

static void handle_register(reg_registry *r, const char *body, size_t len, reg_reply *rep) {
    json_error_t err;
    json_t *j = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL || !json_is_object(j)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "body is not a JSON object: %s", j ? "" : err.text);
        json_decref(j);
        reply_error(rep, 400, msg);
        return;
    }
    const char *tags[REG_MAX_TAGS + 1];
    reg_spec s = {.tags = tags};
    json_t *name = json_object_get(j, "name"), *version = json_object_get(j, "version");
    json_t *address = json_object_get(j, "address"), *jt = json_object_get(j, "tags");
    json_t *ttl = json_object_get(j, "ttl_s");
    const char *bad = NULL;
    if (!json_is_string(name) || !json_is_string(address)) {
        bad = "name and address are required strings";
    } else if (version != NULL && !json_is_string(version)) {
        bad = "version must be a string";
    } else if (jt != NULL && (!json_is_array(jt) || json_array_size(jt) > REG_MAX_TAGS)) {
        bad = "tags must be an array of at most 16 strings";
    } else if (ttl != NULL && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                               json_integer_value(ttl) > 86400)) {
        bad = "ttl_s must be an integer between 1 and 86400";
    }
    if (bad == NULL) {
        s.name = json_string_value(name);
        s.address = json_string_value(address);
        s.version = version != NULL ? json_string_value(version) : "";
        s.ttl_s = ttl != NULL ? (uint32_t)json_integer_value(ttl) : r->opt.default_ttl_s;
        for (size_t k = 0; jt != NULL && k < json_array_size(jt) && bad == NULL; k++) {
            json_t *e = json_array_get(jt, k);
            if (!json_is_string(e)) {
                bad = "tags must be strings";
            } else {
                tags[s.n_tags++] = json_string_value(e);
            }
        }
    }
    if (bad == NULL && reg_spec_check(&s, &bad) != 0 && bad == NULL) {
        bad = "invalid registration";
    }
    if (bad != NULL) {
        reply_error(rep, 400, bad);
        json_decref(j);
        return;
    }
    char id[REG_ID_LEN + 1];
    bool created = false;
    pthread_mutex_lock(&r->mu);
    int rc = reg_table_register(r->table, &s, sl_now_unix_nano(), id, &created);
    if (rc == 0 && r->store != NULL) {
        reg_view v;
        reg_table_get(r->table, id, &v);
        rc = reg_store_put(r->store, &v);
        if (rc != 0 && created) {
            reg_table_remove(r->table, id); /* not durable: not registered */
        }
    }
    pthread_mutex_unlock(&r->mu);
    json_decref(j);
    if (rc != 0) {
        reply_error(rep, rc == SL_ENOMEM ? 503 : 500, sl_strerror(rc));
        return;
    }
    sl_metric_add(r->m_registrations, 1);
    SL_LOG_D("registry", "%s %s as %s", created ? "registered" : "re-registered", s.name, id);
    reply_json(rep, created ? 201 : 200, json_pack("{ss}", "id", id));
}

static void handle_instance(reg_registry *r, const char *method, const char *id, bool heartbeat,
                            reg_reply *rep) {
    if (strlen(id) != REG_ID_LEN) {
        reply_error(rep, 404, "unknown instance");
        return;
    }
    int rc;
    reg_view v;
    json_t *j = NULL;
    pthread_mutex_lock(&r->mu);
    if (heartbeat) {
        rc = reg_table_heartbeat(r->table, id, sl_now_unix_nano());
        if (rc == 0) {
            reg_table_get(r->table, id, &v);
            j = json_pack("{ss ss}", "id", id, "status", v.passing ? "passing" : "critical");
        }
    } else if (strcmp(method, "DELETE") == 0) {
        rc = reg_table_remove(r->table, id);
        if (rc == 0 && r->store != NULL) {
            rc = reg_store_delete(r->store, id);
        }
    } else {
        rc = reg_table_get(r->table, id, &v);
        if (rc == 0) {
            j = view_json(&v);
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == SL_ENOTFOUND) {
        reply_error(rep, 404, "unknown instance");
    } else if (rc != 0) {
        json_decref(j);
        reply_error(rep, 500, sl_strerror(rc));
    } else if (j != NULL) {
        if (heartbeat) {
            sl_metric_add(r->m_heartbeats, 1);
        }
        reply_json(rep, 200, j);
    } else {
        rep->status = 204;
        rep->body = NULL;
    }
}

static void on_service(void *ud, const char *name, size_t instances, size_t passing) {
    json_array_append_new(ud, json_pack("{ss sI sI}", "name", name, "instances",
                                        (json_int_t)instances, "passing", (json_int_t)passing));
}

static void on_instance(void *ud, const reg_view *v) {
    json_array_append_new(ud, view_json(v));
}

static void handle_discover(reg_registry *r, const char *name, const char *query, reg_reply *rep) {
    char key[32], val[REG_MAX_FIELD + 1];
    char version[REG_MAX_FIELD + 1] = "";
    char tagbuf[REG_MAX_TAGS][REG_MAX_FIELD + 1];
    const char *tags[REG_MAX_TAGS];
    reg_filter f = {.tags = tags};
    int rc;
    while ((rc = edge_query_next(&query, key, sizeof(key), val, sizeof(val))) != 0) {
        if (rc < 0) {
            reply_error(rep, 400, "malformed query string");
            return;
        }
        if (strcmp(key, "version") == 0) {
            snprintf(version, sizeof(version), "%s", val);
            f.version = version;
        } else if (strcmp(key, "tag") == 0) {
            if (f.n_tags == REG_MAX_TAGS) {
                reply_error(rep, 400, "at most 16 tag parameters");
                return;
            }
            snprintf(tagbuf[f.n_tags], sizeof(tagbuf[0]), "%s", val);
            tags[f.n_tags] = tagbuf[f.n_tags];
            f.n_tags++;
        } else if (strcmp(key, "all") == 0) {
            f.include_critical = strcmp(val, "1") == 0 || strcmp(val, "true") == 0;
        }
    }
    json_t *arr = json_array();
    pthread_mutex_lock(&r->mu);
    reg_table_each_instance(r->table, name, &f, on_instance, arr);
    pthread_mutex_unlock(&r->mu);
    reply_json(rep, 200, json_pack("{so}", "instances", arr));
}

void reg_registry_handle(reg_registry *r, const char *method, const char *path, const char *query,
                         const char *body, size_t body_len, reg_reply *rep) {
    static const char INST[] = "/v1/registry/instances";
    static const char SVCS[] = "/v1/registry/services";
    rep->status = 500;
    rep->body = NULL;
    bool get = strcmp(method, "GET") == 0;
    if (strcmp(path, INST) == 0) {
        if (strcmp(method, "POST") != 0) {
            reply_error(rep, 405, "use POST to register");
            return;
        }
        handle_register(r, body, body_len, rep);
        return;
    }
    if (strncmp(path, INST, sizeof(INST) - 1) == 0 && path[sizeof(INST) - 1] == '/') {
        char id[REG_ID_LEN + 2];
        const char *rest = path + sizeof(INST);
        const char *slash = strchr(rest, '/');
        size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
        if (n > REG_ID_LEN) {
            reply_error(rep, 404, "unknown instance");
            return;
        }
        memcpy(id, rest, n);
        id[n] = '\0';
        if (slash != NULL) {
            if (strcmp(slash, "/heartbeat") != 0) {
                reply_error(rep, 404, "no such resource");
            } else if (strcmp(method, "PUT") != 0) {
                reply_error(rep, 405, "use PUT to heartbeat");
            } else {
                handle_instance(r, method, id, true, rep);
            }
            return;
        }
        if (!get && strcmp(method, "DELETE") != 0) {
            reply_error(rep, 405, "use GET or DELETE on an instance");
            return;
        }
        handle_instance(r, method, id, false, rep);
        return;
    }
    if (strcmp(path, SVCS) == 0 || strcmp(path, "/v1/registry/services/") == 0) {
        if (!get) {
            reply_error(rep, 405, "use GET");
            return;
        }
        json_t *arr = json_array();
        pthread_mutex_lock(&r->mu);
        int rc = reg_table_each_service(r->table, on_service, arr);
        pthread_mutex_unlock(&r->mu);
        if (rc != 0) {
            json_decref(arr);
            reply_error(rep, 503, sl_strerror(rc));
            return;
        }
        reply_json(rep, 200, json_pack("{so}", "services", arr));
        return;
    }
    if (strncmp(path, SVCS, sizeof(SVCS) - 1) == 0 && path[sizeof(SVCS) - 1] == '/') {
        const char *name = path + sizeof(SVCS);
        if (!get) {
            reply_error(rep, 405, "use GET");
            return;
        }
        if (strchr(name, '/') != NULL || strlen(name) > REG_MAX_FIELD) {
            reply_error(rep, 404, "no such resource");
            return;
        }
        handle_discover(r, name, query, rep);
        return;
    }
    reply_error(rep, 404, "no such resource");
}
