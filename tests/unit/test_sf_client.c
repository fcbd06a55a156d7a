/*
 * Unit tests of the fleet runtime's client side: the circuit breaker's state
 * machine on an injected clock, the backoff's bounds, and the HTTP client
 * against an in-process sf_server on loopback: traceparent and the service
 * token on the wire, retries of idempotent calls only, timeouts, and the
 * breaker opening on a dead upstream.
 */
#include "sf/sf_breaker.h"
#include "sf/sf_client.h"
#include "sf/sf_err.h"
#include "sf/sf_server.h"
#include "sl_err.h"
#include "sl_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t fake_now;
static uint64_t fake_clock(void *ud) {
    (void)ud;
    return fake_now;
}

static int transitions;
static void count_change(void *ud, const char *name, sf_breaker_state from, sf_breaker_state to) {
    (void)ud;
    (void)name;
    (void)from;
    (void)to;
    transitions++;
}

static sf_breaker *make_breaker(void) {
    sf_breaker_options o;
    sf_breaker_options_init(&o);
    o.consecutive_failures = 5;
    o.error_ratio = 0.5;
    o.min_calls = 10;
    o.window_ms = 10000;
    o.open_ms = 3000;
    o.probes = 2;
    o.now_ms = fake_clock;
    o.on_change = count_change;
    sf_breaker *b = NULL;
    sf_breaker_create("users", &o, &b);
    return b;
}

static void test_breaker_consecutive(void) {
    fake_now = 1000000;
    transitions = 0;
    sf_breaker *b = make_breaker();
    ASSERT_TRUE(b != NULL);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(sf_breaker_allow(b), 0);
        sf_breaker_record(b, false);
    }
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED);
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, true); /* a success resets the run */
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(sf_breaker_allow(b), 0);
        sf_breaker_record(b, false);
    }
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED);
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, false);
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_OPEN);
    ASSERT_EQ(transitions, 1);
    /* Open: refused until the cool-down passed. */
    ASSERT_EQ(sf_breaker_allow(b), SF_EOPEN);
    fake_now += 2999;
    ASSERT_EQ(sf_breaker_allow(b), SF_EOPEN);
    fake_now += 1;
    /* Half-open: two probes at most in flight. */
    ASSERT_EQ(sf_breaker_allow(b), 0);
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_HALF_OPEN);
    ASSERT_EQ(sf_breaker_allow(b), 0);
    ASSERT_EQ(sf_breaker_allow(b), SF_EOPEN);
    sf_breaker_record(b, true);
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_HALF_OPEN);
    sf_breaker_record(b, false); /* a failed probe: open again, new cool-down */
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_OPEN);
    ASSERT_EQ(sf_breaker_allow(b), SF_EOPEN);
    fake_now += 3000;
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, true);
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, true);
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED);
    ASSERT_EQ(transitions, 5); /* open, half, open, half, closed */
    /* Closed again with a clean slate. */
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(sf_breaker_allow(b), 0);
        sf_breaker_record(b, false);
    }
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED);
    sf_breaker_destroy(b);
}

static void test_breaker_ratio_window(void) {
    fake_now = 5000000;
    sf_breaker *b = make_breaker();
    /* Alternating outcomes: never 5 failures in a row, but half of them
     * fail: the tenth outcome reaches min_calls and trips the ratio. */
    for (int i = 0; i < 9; i++) {
        ASSERT_EQ(sf_breaker_allow(b), 0);
        sf_breaker_record(b, i % 2 == 0);
        fake_now += 100;
    }
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED); /* 4 of 9: under the ratio */
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, false); /* 5 of 10 */
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_OPEN);
    sf_breaker_destroy(b);

    /* Failures older than the window do not count. */
    b = make_breaker();
    for (int i = 0; i < 4; i++) {
        sf_breaker_allow(b);
        sf_breaker_record(b, false);
        sf_breaker_allow(b);
        sf_breaker_record(b, true);
    }
    fake_now += 11000;
    for (int i = 0; i < 9; i++) {
        sf_breaker_allow(b);
        sf_breaker_record(b, i != 0); /* 1 failure in 9 */
    }
    ASSERT_EQ(sf_breaker_allow(b), 0);
    sf_breaker_record(b, true);
    ASSERT_EQ(sf_breaker_get_state(b), SF_BREAKER_CLOSED);
    sf_breaker_destroy(b);
}

static void test_backoff_bounds(void) {
    ASSERT_EQ(sf_backoff_ms(0, 50, 1000, 0.5), 0);
    for (unsigned attempt = 1; attempt <= 12; attempt++) {
        unsigned d = 50u << (attempt - 1 > 10 ? 10 : attempt - 1);
        if (d > 1000) {
            d = 1000;
        }
        for (int k = 0; k <= 10; k++) {
            double r = k == 10 ? 0.9999999 : k / 10.0;
            unsigned v = sf_backoff_ms(attempt, 50, 1000, r);
            if (v < d / 2 || v > d) {
                SL_FAIL_AT("attempt %u r %.2f: %u not in [%u, %u]", attempt, r, v, d / 2, d);
                return;
            }
        }
        ASSERT_EQ(sf_backoff_ms(attempt, 50, 1000, 0), d / 2);
    }
    ASSERT_EQ(sf_backoff_ms(3, 50, 1000, 0.5), 150);  /* d = 200: 100 + 50 */
    ASSERT_EQ(sf_backoff_ms(40, 50, 1000, 2.0), 999); /* r clamped below 1 */
}

/* --- client against an in-process server ----------------------------------- */

static sf_jwt_key *g_key;
static atomic_int g_flaky; /* answers 503 while positive */

static int add_kv(void *ud, const char *name, const char *value) {
    json_object_set_new(ud, name, value != NULL ? json_string(value) : json_null());
    return 0;
}

static void h_echo_headers(sf_req *r, void *ud) {
    (void)ud;
    const char *tp = sf_req_header(r, "traceparent");
    json_t *q = json_object(), *h = json_object();
    sf_req_foreach_query(r, add_kv, q);
    int nh = sf_req_foreach_header(r, add_kv, h);
    sf_reply_json(r, 200,
                  sf_json_pack("{s:s?,s:s?,s:s?,s:o,s:i,s:O?}", "traceparent", tp, "caller",
                               sf_req_caller(r), "x", sf_req_header(r, "X-Extra"), "query", q,
                               "nheaders", nh, "x_from_foreach", json_object_get(h, "X-Extra")));
    json_decref(h);
}

static void h_flaky(sf_req *r, void *ud) {
    (void)ud;
    if (atomic_fetch_sub(&g_flaky, 1) > 0) {
        sf_reply_error(r, 503, "try again");
        return;
    }
    sf_reply_json(r, 200, sf_json_pack("{s:b}", "ok", 1));
}

static void h_sleep(sf_req *r, void *ud) {
    (void)ud;
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    sf_reply_json(r, 200, sf_json_pack("{}"));
}

static sf_server *start_server(sf_telemetry *tel) {
    sf_server_options so;
    sf_server_options_init(&so);
    so.service = "upstream";
    so.service_key = g_key;
    so.telemetry = tel;
    sf_server *s = NULL;
    if (sf_server_create(&so, &s) != 0) {
        return NULL;
    }
    sf_route routes[] = {
        {"GET", "/echo", h_echo_headers, NULL, false, "tester", "read"},
        {NULL, "/flaky", h_flaky, NULL, false, NULL, NULL},
        {"GET", "/sleep", h_sleep, NULL, true, NULL, NULL},
    };
    for (size_t i = 0; i < 3; i++) {
        sf_server_route(s, &routes[i]);
    }
    if (sf_server_start(s) != 0) {
        sf_server_destroy(s);
        return NULL;
    }
    return s;
}

static sf_client *make_client(sf_telemetry *tel, const sf_jwt_key *key) {
    sf_client_options co;
    sf_client_options_init(&co);
    co.service = "tester";
    co.service_key = key;
    co.telemetry = tel;
    co.timeout_ms = 2000;
    co.backoff_base_ms = 5;
    co.backoff_max_ms = 20;
    sf_client *c = NULL;
    sf_client_create(&co, &c);
    return c;
}

static void test_client_wire(void) {
    sf_telemetry *tel = NULL;
    ASSERT_EQ(sf_telemetry_create("tester", "1.0.0", &tel), 0);
    sf_jwt_key_hs256("unit-test-key-unit-test-key-0123", 32, &g_key);
    sf_server *s = start_server(tel);
    ASSERT_TRUE(s != NULL);
    sf_client *c = make_client(tel, g_key);
    ASSERT_TRUE(c != NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/echo?a=1&b=two%%20words&flag",
             (unsigned)sf_server_port(s));

    /* traceparent on the wire: the CLIENT span's context, in the caller's trace. */
    sl_span_context parent = {0};
    memcpy(parent.trace_id, "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16);
    memcpy(parent.span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
    parent.trace_flags = 1;
    sl_context_push(&parent);
    sf_call call;
    sf_call_init(&call);
    call.upstream = "upstream";
    call.url = url;
    call.scope = "read write";
    static const char *const extra[] = {"X-Extra: 42", NULL};
    call.headers = extra;
    long status = 0;
    json_t *ans = NULL;
    ASSERT_EQ(sf_client_json(c, &call, NULL, &status, &ans), 0);
    sl_context_pop();
    ASSERT_EQ(status, 200);
    const char *tp = json_string_value(json_object_get(ans, "traceparent"));
    ASSERT_TRUE(tp != NULL);
    ASSERT_EQ(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
    ASSERT_TRUE(strstr(tp, "00f067aa0ba902b7") == NULL); /* a new span: the CLIENT one */
    ASSERT_STR_EQ(json_string_value(json_object_get(ans, "caller")), "tester");
    ASSERT_STR_EQ(json_string_value(json_object_get(ans, "x")), "42");
    ASSERT_STR_EQ(json_string_value(json_object_get(ans, "x_from_foreach")), "42");
    ASSERT_TRUE(json_integer_value(json_object_get(ans, "nheaders")) >= 5);
    const json_t *q = json_object_get(ans, "query");
    ASSERT_STR_EQ(json_string_value(json_object_get(q, "a")), "1");
    ASSERT_STR_EQ(json_string_value(json_object_get(q, "b")), "two words");
    ASSERT_TRUE(json_is_null(json_object_get(q, "flag")));
    json_decref(ans);

    /* A client without telemetry still passes the caller's context on. */
    sf_client *bare = make_client(NULL, g_key);
    sl_context_push(&parent);
    ASSERT_EQ(sf_client_json(bare, &call, NULL, &status, &ans), 0);
    sl_context_pop();
    ASSERT_STR_EQ(json_string_value(json_object_get(ans, "traceparent")),
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    json_decref(ans);
    sf_client_destroy(bare);

    /* No current context: the client span starts a trace, still on the wire. */
    sf_response r;
    ASSERT_EQ(sf_client_do(c, &call, &r), 0);
    ASSERT_TRUE(strstr(r.body, "\"traceparent\":\"00-") != NULL);
    char hv[128];
    ASSERT_TRUE(sf_response_header(&r, "content-type", hv, sizeof hv));
    ASSERT_STR_EQ(hv, "application/json");
    ASSERT_TRUE(!sf_response_header(&r, "x-missing", hv, sizeof hv));
    sf_response_free(&r);

    /* The scope the route asks for is missing: 403; a wrong key: 401. */
    call.scope = "write";
    ASSERT_EQ(sf_client_do(c, &call, &r), 0);
    ASSERT_EQ(r.status, 403);
    sf_response_free(&r);
    sf_jwt_key *other = NULL;
    sf_jwt_key_hs256("another-key-another-key-01234567", 32, &other);
    sf_client *c2 = make_client(tel, other);
    call.scope = "read";
    ASSERT_EQ(sf_client_do(c2, &call, &r), 0);
    ASSERT_EQ(r.status, 401);
    sf_response_free(&r);
    sf_client_destroy(c2);
    sf_jwt_key_destroy(other);

    /* Retries: GET retried through two 503s; POST not retried. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/flaky", (unsigned)sf_server_port(s));
    call.scope = NULL;
    atomic_store(&g_flaky, 2);
    ASSERT_EQ(sf_client_do(c, &call, &r), 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.attempts, 3);
    sf_response_free(&r);
    atomic_store(&g_flaky, 1);
    call.method = "POST";
    call.body = "{}";
    call.body_len = 2;
    ASSERT_EQ(sf_client_do(c, &call, &r), 0);
    ASSERT_EQ(r.status, 503);
    ASSERT_EQ(r.attempts, 1);
    sf_response_free(&r);
    atomic_store(&g_flaky, 0);
    call.idempotent = 1; /* a POST marked idempotent is retried */
    atomic_store(&g_flaky, 1);
    ASSERT_EQ(sf_client_do(c, &call, &r), 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.attempts, 2);
    sf_response_free(&r);

    /* A per-call timeout. */
    sf_call_init(&call);
    call.upstream = "sleepy";
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sleep", (unsigned)sf_server_port(s));
    call.url = url;
    call.timeout_ms = 100;
    call.idempotent = 0;
    ASSERT_EQ(sf_client_do(c, &call, &r), SF_ETIMEOUT);
    ASSERT_EQ(r.status, 0);
    sf_response_free(&r);

    sf_server_drain(s, 2000);
    sf_server_destroy(s);
    sf_telemetry_shutdown(tel, 1000);
    sf_client_destroy(c);
    sf_jwt_key_destroy(g_key);
    sf_telemetry_destroy(tel, 1000);
}

static void test_breaker_opens_on_dead_upstream(void) {
    /* A port nobody listens on: bind, read the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)ntohs(sa.sin_port));
    sf_client *c = make_client(NULL, NULL);
    sf_call call;
    sf_call_init(&call);
    call.upstream = "dead";
    call.url = url;
    sf_response r;
    /* Each GET is tried 3 times (2 retries): the 5th failure opens. */
    ASSERT_EQ(sf_client_do(c, &call, &r), SF_EUPSTREAM);
    ASSERT_EQ(r.attempts, 3);
    sf_response_free(&r);
    ASSERT_EQ(sf_client_breaker_state(c, "dead"), SF_BREAKER_CLOSED);
    ASSERT_EQ(sf_client_do(c, &call, &r), SF_EUPSTREAM);
    ASSERT_EQ(r.attempts, 2); /* the breaker stopped the retries */
    sf_response_free(&r);
    ASSERT_EQ(sf_client_breaker_state(c, "dead"), SF_BREAKER_OPEN);
    ASSERT_EQ(sf_client_do(c, &call, &r), SF_EOPEN);
    ASSERT_EQ(r.attempts, 0);
    sf_response_free(&r);
    ASSERT_EQ(sf_client_breaker_state(c, "other"), SF_BREAKER_CLOSED);
    sf_client_destroy(c);
}

int main(void) {
    RUN(test_breaker_consecutive);
    RUN(test_breaker_ratio_window);
    RUN(test_backoff_bounds);
    RUN(test_client_wire);
    RUN(test_breaker_opens_on_dead_upstream);
    return SL_TEST_RESULT();
}
