/*
 * fleet-echo: the smallest service on the runtime, used by the runtime's
 * integration tests and as a template. Routes:
 *   GET  /v1/echo/hello          public; {"hello":"world","trace_id":...}
 *   POST /v1/echo/messages       callers gateway or tester with scope echo.write;
 *                                body {"message": string 1..256}; answers 201
 *   GET  /v1/echo/items/{id}     any authenticated caller; {"id": ...}
 *   GET  /v1/echo/slow?ms=N      public; answers after N ms (drain tests)
 *   GET  /v1/echo/proxy?url=U    public; calls U through the runtime's client
 *                                (upstream "echo-upstream") and reports the answer
 *   GET  /v1/echo/call/{service}/...  public; a discovery-aware call to service
 *   POST /v1/echo/events         public; with --db and --nats: stores the item
 *                                and its event (events.<tenant>.<type>) in one
 *                                transaction; the outbox relay publishes it
 *   POST /v1/echo/publish        public; with --nats: {"subject","id"} published on
 *                                core NATS (at most once)
 *   GET  /v1/echo/received       public; with --consume NAME or --subscribe SUBJECT:
 *                                the events this instance got (deduplicated by id)
 */
#include <sf/sf_app.h>
#include <sf/sf_outbox.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct echo {
    sf_app *app;
    sf_outbox *outbox;
    pthread_mutex_t mu;
    json_t *received; /* event id -> {subject, traceparent, delivery} */
    long deliveries;
} echo;

static void trace_hex(const sf_req *r, char out[33]) {
    sl_span_context c;
    sf_req_context(r, &c);
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", c.trace_id[i]);
    }
}

static void hello(sf_req *r, void *ud) {
    (void)ud;
    char tid[33];
    trace_hex(r, tid);
    sf_log(SL_SEVERITY_INFO, "saying hello");
    sf_reply_json(r, 200, sf_json_pack("{s:s,s:s}", "hello", "world", "trace_id", tid));
}

static void post_message(sf_req *r, void *ud) {
    (void)ud;
    static const sf_json_field fields[] = {{"message", SF_JSON_STRING, true, 1, 256}};
    json_t *body;
    if (sf_req_json(r, fields, 1, false, &body) != 0) {
        return;
    }
    sf_reply_json(r, 201,
                  sf_json_pack("{s:s,s:s?}", "message", sf_json_str(body, "message", ""), "caller",
                               sf_req_caller(r)));
    json_decref(body);
}

static void get_item(sf_req *r, void *ud) {
    (void)ud;
    sf_reply_json(r, 200, sf_json_pack("{s:s}", "id", sf_req_param(r, "id")));
}

static void slow(sf_req *r, void *ud) {
    (void)ud;
    const char *ms = sf_req_query(r, "ms");
    long n = ms != NULL ? strtol(ms, NULL, 10) : 100;
    if (n < 0 || n > 30000) {
        sf_reply_error(r, 400, "ms must be between 0 and 30000");
        return;
    }
    struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    sf_reply_json(r, 200, sf_json_pack("{s:i}", "slept_ms", (int)n));
}

static void reply_call(sf_req *r, int rc, sf_response *resp) {
    if (rc != 0) {
        sf_reply_json(
            r, 502,
            sf_json_pack("{s:s,s:i}", "error", sf_strerror(rc), "attempts", (int)resp->attempts));
    } else {
        json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
        sf_reply_json(r, 200,
                      sf_json_pack("{s:i,s:o,s:i,s:s}", "status", (int)resp->status, "body",
                                   j != NULL ? j : json_string(resp->body), "attempts",
                                   (int)resp->attempts, "instance", resp->instance));
    }
    sf_response_free(resp);
}

static void proxy(sf_req *r, void *ud) {
    echo *e = ud;
    const char *url = sf_req_query(r, "url");
    if (url == NULL || strncmp(url, "http://", 7) != 0) {
        sf_reply_error(r, 400, "url=http://... is required");
        return;
    }
    sf_call c;
    sf_call_init(&c);
    c.upstream = "echo-upstream";
    c.url = url;
    c.timeout_ms = 1000;
    sf_response resp;
    reply_call(r, sf_client_do(sf_app_client(e->app), &c, &resp), &resp);
}

static void call_service(sf_req *r, void *ud) {
    echo *e = ud;
    char path[512];
    snprintf(path, sizeof path, "/%s", sf_req_param(r, "*"));
    sf_call c;
    sf_call_init(&c);
    c.upstream = sf_req_param(r, "service");
    c.path = path;
    c.version = sf_req_query(r, "version");
    sf_response resp;
    reply_call(r, sf_client_do(sf_app_client(e->app), &c, &resp), &resp);
}

static void post_event(sf_req *r, void *ud) {
    echo *e = ud;
    sqlite3 *db = sf_app_db(e->app);
    if (db == NULL || e->outbox == NULL) {
        sf_reply_error(r, 503, "events need --db and --nats");
        return;
    }
    static const sf_json_field fields[] = {{"tenant", SF_JSON_STRING, true, 1, 64},
                                           {"type", SF_JSON_STRING, true, 1, 64},
                                           {"data", SF_JSON_OBJECT, false, 0, 0}};
    json_t *body;
    if (sf_req_json(r, fields, 3, false, &body) != 0) {
        return;
    }
    char subject[160], id[37];
    snprintf(subject, sizeof subject, "events.%s.%s", sf_json_str(body, "tenant", ""),
             sf_json_str(body, "type", ""));
    /* The event id comes first so that the payload can carry it. */
    sf_outbox_new_id(id);
    json_t *ev =
        json_pack("{s:s,s:s,s:s,s:O?}", "id", id, "type", sf_json_str(body, "type", ""), "tenant",
                  sf_json_str(body, "tenant", ""), "data", json_object_get(body, "data"));
    char *payload = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    char *item = json_dumps(body, JSON_COMPACT);
    json_decref(ev);
    int rc = payload != NULL && item != NULL ? sf_db_begin(db) : SF_EDB;
    if (rc == 0) {
        /* The state change and its event, in one transaction. */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "INSERT INTO items(body) VALUES(?)", -1, &st, NULL) !=
                SQLITE_OK ||
            sqlite3_bind_text(st, 1, item, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE) {
            rc = SF_EDB;
        }
        sqlite3_finalize(st);
        if (rc == 0) {
            rc = sf_outbox_add(db, NULL, subject, id, payload, strlen(payload), NULL);
        }
        if (rc == 0) {
            rc = sf_db_commit(db);
        } else {
            sf_db_rollback(db);
        }
    }
    free(payload);
    free(item);
    json_decref(body);
    if (rc != 0) {
        sf_reply_error(r, 500, "cannot store the event");
        return;
    }
    sf_outbox_notify(e->outbox);
    sf_reply_json(r, 201, sf_json_pack("{s:s,s:s}", "id", id, "subject", subject));
}

static int on_event(const sf_bus_msg *m, void *ud) {
    echo *e = ud;
    size_t len;
    const char *data = sf_bus_msg_data(m, &len);
    json_t *ev = json_loadb(data, len, 0, NULL);
    const char *id = json_string_value(json_object_get(ev, "id"));
    if (id == NULL) {
        sf_log(SL_SEVERITY_WARN, "event without id on %s: dropped", sf_bus_msg_subject(m));
        json_decref(ev);
        return 0; /* malformed: acknowledge, never redeliver */
    }
    const char *tp = sf_bus_msg_header(m, "traceparent");
    pthread_mutex_lock(&e->mu);
    e->deliveries++;
    if (json_object_get(e->received, id) == NULL) {
        json_object_set_new(e->received, id,
                            json_pack("{s:s,s:s?,s:I}", "subject", sf_bus_msg_subject(m),
                                      "traceparent", tp, "delivery",
                                      (json_int_t)sf_bus_msg_delivery(m)));
    }
    pthread_mutex_unlock(&e->mu);
    sf_log(SL_SEVERITY_INFO, "consumed event %s", id);
    json_decref(ev);
    return 0;
}

static void publish(sf_req *r, void *ud) {
    echo *e = ud;
    static const sf_json_field fields[] = {{"subject", SF_JSON_STRING, true, 1, 128},
                                           {"id", SF_JSON_STRING, true, 1, 64}};
    json_t *body;
    if (sf_app_bus(e->app) == NULL) {
        sf_reply_error(r, 503, "publishing needs --nats");
        return;
    }
    if (sf_req_json(r, fields, 2, false, &body) != 0) {
        return;
    }
    json_t *msg = json_pack("{s:s}", "id", sf_json_str(body, "id", ""));
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    int rc = text != NULL ? sf_bus_publish(sf_app_bus(e->app), sf_json_str(body, "subject", ""),
                                           text, strlen(text), NULL)
                          : SF_EBUS;
    if (rc == 0) {
        sf_reply_json(r, 202, sf_json_pack("{s:s}", "id", sf_json_str(body, "id", "")));
    } else {
        sf_reply_error(r, 503, "%s", sf_strerror(rc));
    }
    free(text);
    json_decref(msg);
    json_decref(body);
}

static void received(sf_req *r, void *ud) {
    echo *e = ud;
    /* A copy: the reply is written after the lock is released, while the
     * consumer thread appends to the list (a shared reference raced it). */
    pthread_mutex_lock(&e->mu);
    json_t *j = json_pack("{s:o,s:i}", "events", json_deep_copy(e->received), "deliveries",
                          (int)e->deliveries);
    pthread_mutex_unlock(&e->mu);
    sf_reply_json(r, 200, j);
}

static void on_stop(sf_app *app, void *ud) {
    (void)app;
    echo *e = ud;
    sf_outbox_stop(e->outbox, 2000);
    e->outbox = NULL;
}

static int setup(sf_app *app, void *ud) {
    echo *e = ud;
    e->app = app;
    sf_server *s = sf_app_server(app);
    sqlite3 *db = sf_app_db(app);
    if (db != NULL) {
        int rc = sf_outbox_schema(db, NULL);
        if (rc != 0 || sqlite3_exec(db,
                                    "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, "
                                    "body TEXT NOT NULL)",
                                    NULL, NULL, NULL) != SQLITE_OK) {
            return rc != 0 ? rc : SF_EDB;
        }
    }
    if (db != NULL && sf_app_bus(app) != NULL) {
        sf_outbox_options oo;
        sf_outbox_options_init(&oo);
        oo.db = db;
        oo.bus = sf_app_bus(app);
        int rc = sf_outbox_start(&oo, &e->outbox);
        if (rc != 0) {
            return rc;
        }
    }
    const char *durable = sf_app_flag(app, "consume");
    if (durable != NULL) {
        if (sf_app_bus(app) == NULL) {
            return SF_EUSAGE;
        }
        int rc = sf_bus_consume(sf_app_bus(app), "events.>", durable, on_event, e);
        if (rc != 0) {
            return rc;
        }
    }
    const char *core = sf_app_flag(app, "subscribe");
    if (core != NULL) {
        int rc = sf_app_bus(app) == NULL
                     ? SF_EUSAGE
                     : sf_bus_subscribe(sf_app_bus(app), core, "echo-core", on_event, e);
        if (rc != 0) {
            return rc;
        }
    }
    const char *req = sf_app_flag(app, "require");
    for (const char *p = req; p != NULL && *p != '\0';) {
        char name[64];
        size_t n = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        int rc = n > 0 ? sf_app_require_upstream(app, name) : 0;
        if (rc != 0) {
            return rc;
        }
        p += n + (p[n] == ',');
    }
    sf_route routes[] = {
        {"GET", "/v1/echo/hello", hello, NULL, true, NULL, NULL},
        {"POST", "/v1/echo/messages", post_message, NULL, false, "gateway tester", "echo.write"},
        {"GET", "/v1/echo/items/{id}", get_item, NULL, false, NULL, NULL},
        {"GET", "/v1/echo/slow", slow, NULL, true, NULL, NULL},
        {"GET", "/v1/echo/proxy", proxy, e, true, NULL, NULL},
        {"GET", "/v1/echo/call/{service}/*", call_service, e, true, NULL, NULL},
        {"POST", "/v1/echo/events", post_event, e, true, NULL, NULL},
        {"GET", "/v1/echo/received", received, e, true, NULL, NULL},
        {"POST", "/v1/echo/publish", publish, e, true, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = sf_server_route(s, &routes[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    static echo e = {.mu = PTHREAD_MUTEX_INITIALIZER};
    e.received = json_object();
    static const sf_flag flags[] = {
        {"consume", "ECHO_CONSUME", "consume events.> as this durable queue consumer", NULL},
        {"require", "ECHO_REQUIRE", "upstreams /ready depends on (a,b)", NULL},
        {"subscribe", "ECHO_SUBSCRIBE", "core NATS subject to take in queue group echo-core",
         NULL}};
    sf_app_options o = {0};
    o.service = "echo";
    o.description = "A minimal service on the fleet runtime.";
    o.flags = flags;
    o.flag_count = 3;
    o.on_stop = on_stop;
    o.userdata = &e;
    int rc = sf_app_main(&o, argc, argv, setup, &e);
    json_decref(e.received);
    return rc;
}
