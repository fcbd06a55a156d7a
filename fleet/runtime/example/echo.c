/*
 * fleet-echo: the smallest service on the runtime, used by the runtime's
 * integration tests and as a template. Routes:
 *   GET  /v1/echo/hello          public; {"hello":"world","trace_id":...}
 *   POST /v1/echo/messages       callers gateway or tester with scope echo.write;
 *                                body {"message": string 1..256}; answers 201
 *   GET  /v1/echo/items/{id}     any authenticated caller; {"id": ...}
 *   GET  /v1/echo/slow?ms=N      public; answers after N ms (drain tests)
 */
#include <sf/sf_app.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

static int setup(sf_app *app, void *ud) {
    (void)ud;
    sf_server *s = sf_app_server(app);
    sf_route routes[] = {
        {"GET", "/v1/echo/hello", hello, NULL, true, NULL, NULL},
        {"POST", "/v1/echo/messages", post_message, NULL, false, "gateway tester", "echo.write"},
        {"GET", "/v1/echo/items/{id}", get_item, NULL, false, NULL, NULL},
        {"GET", "/v1/echo/slow", slow, NULL, true, NULL, NULL},
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
    sf_app_options o = {0};
    o.service = "echo";
    o.description = "A minimal service on the fleet runtime.";
    return sf_app_main(&o, argc, argv, setup, NULL);
}
