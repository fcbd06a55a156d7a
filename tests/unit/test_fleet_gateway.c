/*
 * Unit tests of the gateway's pure logic: the route table (YAML loading with
 * errors by line, longest-prefix matching with methods, the shipped
 * routes.yaml), balancing (round-robin, weights, the counted 5% canary,
 * skipping unusable instances), token-bucket rate limits with Retry-After
 * and bounded keys, request checks, error bodies and deprecation headers.
 */
#include "sl_test.h"

#include "gw_balance.h"
#include "gw_ratelimit.h"
#include "gw_request.h"
#include "gw_routes.h"

#include "sl_err.h"

#define SEC 1000000000ULL

static const char CFG[] = "routes:\n"
                          "  - prefix: /v1/users/\n"
                          "    service: users\n"
                          "    deprecated: 2026-09-01\n"
                          "    sunset: 2027-06-30T12:00:00Z\n"
                          "    successor: /v2/users\n"
                          "    canary: {version: \"2\", percent: 5}\n"
                          "  - path: /v1/tenants\n"
                          "    service: tenants\n"
                          "    auth: none\n"
                          "    methods: [POST]\n"
                          "  - prefix: /v1/tenants\n"
                          "    service: tenants\n"
                          "    methods: [GET, DELETE]\n"
                          "    timeout_ms: 1500\n"
                          "    scope: tenants.write audit\n"
                          "  - prefix: /\n"
                          "    service: fallback\n"
                          "    auth: none\n"
                          "    methods: [GET]\n"
                          "limits: {max_body_bytes: 100}\n"
                          "rate_limits:\n"
                          "  per_key: {rate: 2, burst: 4}\n";

static const gw_route *match(const gw_config *c, const char *method, const char *path,
                             uint32_t *allowed) {
    return gw_config_match(c, gw_method_bit(method), path, strlen(path), allowed);
}

static void test_config_and_match(void) {
    gw_config c;
    char err[256];
    ASSERT_EQ(gw_config_parse(CFG, strlen(CFG), &c, err, sizeof(err)), 0);
    ASSERT_EQ(c.n_routes, 4);
    ASSERT_EQ(c.max_body_bytes, 100);
    ASSERT_EQ(c.max_path_bytes, 2048);
    ASSERT_DBL_EQ(c.per_key.rate, 2);
    ASSERT_DBL_EQ(c.per_key.burst, 4);
    ASSERT_DBL_EQ(c.per_tenant.rate, 0);
    const gw_route *u = &c.routes[0];
    ASSERT_STR_EQ(u->prefix, "/v1/users");
    ASSERT_TRUE(u->auth_user);
    ASSERT_EQ(u->canary_permille, 50);
    ASSERT_STR_EQ(u->canary_version, "2");
    ASSERT_EQ(u->deprecated_unix, 1788220800);
    ASSERT_EQ(u->sunset_unix, 1814356800);
    uint32_t allowed;
    ASSERT_TRUE(match(&c, "GET", "/v1/users", &allowed) == u);
    ASSERT_TRUE(match(&c, "PATCH", "/v1/users/42/profile", &allowed) == u);
    ASSERT_TRUE(match(&c, "GET", "/v1/usersx", &allowed) == &c.routes[3]);
    ASSERT_TRUE(match(&c, "POST", "/v1/tenants", &allowed) == &c.routes[1]);
    ASSERT_TRUE(!c.routes[1].auth_user);
    ASSERT_TRUE(match(&c, "GET", "/v1/tenants", &allowed) == &c.routes[2]);
    ASSERT_TRUE(match(&c, "GET", "/v1/tenants/t1", &allowed) == &c.routes[2]);
    ASSERT_EQ(c.routes[2].timeout_ms, 1500);
    ASSERT_STR_EQ(c.routes[2].scope, "tenants.write audit");
    ASSERT_TRUE(c.routes[0].scope == NULL);
    /* POST is admitted on the exact path only. */
    ASSERT_TRUE(match(&c, "POST", "/v1/tenants/t1", &allowed) == NULL);
    ASSERT_EQ(allowed, GW_METHOD_GET | GW_METHOD_DELETE);
    char allow[64];
    gw_methods_allow(allowed, allow, sizeof(allow));
    ASSERT_STR_EQ(allow, "GET, DELETE");
    ASSERT_TRUE(match(&c, "GET", "/anything", &allowed) == &c.routes[3]);
    ASSERT_TRUE(match(&c, "PUT", "/anything", &allowed) == NULL);
    ASSERT_EQ(allowed, GW_METHOD_GET);
    gw_config_free(&c);

    const char *nomatch = "routes:\n  - {prefix: /v1/a, service: a}\n";
    ASSERT_EQ(gw_config_parse(nomatch, strlen(nomatch), &c, err, sizeof(err)), 0);
    ASSERT_TRUE(match(&c, "GET", "/v2/a", &allowed) == NULL);
    ASSERT_EQ(allowed, 0);
    ASSERT_TRUE(c.routes[0].auth_user); /* closed by default */
    gw_config_free(&c);
}

static void test_config_errors(void) {
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"routes:\n  - prefix: /a\n    service: a\n    auht: none\n",
         "line 4: unknown route key auht"},
        {"routes:\n  - prefix: /a\n", "line 2: a route needs prefix (or path) and service"},
        {"routes:\n  - prefix: a\n    service: a\n",
         "line 2: prefix must be a clean absolute path"},
        {"routes:\n  - prefix: /a/../b\n    service: a\n", "line 2: prefix must be"},
        {"routes:\n  - prefix: /a\n    service: a\n    sunset: tomorrow\n", "line 4: sunset must"},
        {"routes:\n  - prefix: /a\n    service: a\n    sunset: 2026-02-30\n",
         "line 4: sunset must"},
        {"routes:\n  - prefix: /a\n    service: a\n    methods: [GET, FETCH]\n",
         "line 4: unknown method FETCH"},
        {"routes:\n  - prefix: /a\n    service: a\n    canary: {version: '2', percent: 101}\n",
         "line 4: canary.percent must be between 0 and 100"},
        {"routes:\n  - prefix: /a\n    service: a\n    auth: maybe\n", "line 4: auth must be"},
        {"routes: []\n", "no routes"},
        {"routes:\n  - prefix: /a\n    service: a\nrate_limits: {per_ip: {rate: 1}}\n",
         "line 4: unknown rate limit per_ip"},
        {"routes:\n  - prefix: /a\n    service: a\nlimits: {max_body_bytes: -1}\n",
         "line 4: max_body_bytes must be"},
        {"routes: [\n", "line 2"},
        {"", "empty configuration"},
        {"- a\n- b\n", "the configuration must be a mapping"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        gw_config c;
        char err[256];
        int rc = gw_config_parse(cases[k].yaml, strlen(cases[k].yaml), &c, err, sizeof(err));
        if (rc != SL_EINVAL || strstr(err, cases[k].want) == NULL) {
            SL_FAIL_AT("case %zu: rc %d, err \"%s\", want \"%s\"", k, rc, err, cases[k].want);
        }
    }
}

static void test_shipped_routes(void) {
    gw_config c;
    char err[256];
    int rc = gw_config_load(GW_ROUTES_FILE, &c, err, sizeof(err));
    if (rc != 0) {
        SL_FAIL_AT("%s", err);
        return;
    }
    uint32_t allowed;
    const gw_route *r = match(&c, "POST", "/v1/auth/signup", &allowed);
    ASSERT_TRUE(r != NULL && !r->auth_user);
    ASSERT_STR_EQ(r->service, "auth");
    r = match(&c, "GET", "/v1/users/u1", &allowed);
    ASSERT_TRUE(r != NULL && r->auth_user && r->deprecated_unix > 0 && r->sunset_unix > 0);
    ASSERT_EQ(r->canary_permille, 50);
    r = match(&c, "GET", "/v2/users/u1", &allowed);
    ASSERT_TRUE(r != NULL && r->deprecated_unix == 0);
    r = match(&c, "POST", "/v1/tenants", &allowed);
    ASSERT_TRUE(r != NULL && !r->auth_user);
    r = match(&c, "GET", "/v1/tenants/t1", &allowed);
    ASSERT_TRUE(r != NULL && r->auth_user);
    r = match(&c, "GET", "/v1/analytics/t1", &allowed);
    ASSERT_TRUE(r != NULL && strcmp(r->service, "analytics") == 0);
    ASSERT_TRUE(match(&c, "GET", "/v3/nothing", &allowed) == NULL);
    gw_config_free(&c);
}

static bool not_b(void *ud, const gw_target *t) {
    (void)ud;
    return strcmp(t->id, "b") != 0;
}

static void test_balance(void) {
    gw_balancer b;
    gw_balancer_init(&b);
    gw_target t[] = {{"a", "http://a", "1.0.0", 1},
                     {"b", "http://b", "1.0.0", 1},
                     {"c", "http://c", "1.2.0", 1}};
    int counts[3] = {0};
    bool canary;
    for (int k = 0; k < 300; k++) {
        int i = gw_balance_pick(&b, t, 3, NULL, 0, NULL, NULL, &canary);
        ASSERT_TRUE(i >= 0 && !canary);
        counts[i]++;
    }
    ASSERT_EQ(counts[0], 100);
    ASSERT_EQ(counts[1], 100);
    ASSERT_EQ(counts[2], 100);
    /* Weights 3:1:1. */
    t[0].weight = 3;
    memset(counts, 0, sizeof(counts));
    for (int k = 0; k < 500; k++) {
        counts[gw_balance_pick(&b, t, 3, NULL, 0, NULL, NULL, &canary)]++;
    }
    ASSERT_EQ(counts[0], 300);
    ASSERT_EQ(counts[1], 100);
    t[0].weight = 1;
    /* An unusable instance is skipped. */
    memset(counts, 0, sizeof(counts));
    for (int k = 0; k < 300; k++) {
        counts[gw_balance_pick(&b, t, 3, NULL, 0, not_b, NULL, &canary)]++;
    }
    ASSERT_EQ(counts[1], 0);
    ASSERT_EQ(counts[0] + counts[2], 300);
    ASSERT_EQ(gw_balance_pick(&b, &t[1], 1, NULL, 0, not_b, NULL, &canary), -1);
    ASSERT_EQ(gw_balance_pick(&b, t, 0, NULL, 0, NULL, NULL, &canary), -1);
    ASSERT_EQ(gw_weight_from_tags((const char *const[]){"x", "weight=7"}, 2), 7);
    ASSERT_EQ(gw_weight_from_tags((const char *const[]){"weight=0"}, 1), 1);
    ASSERT_EQ(gw_weight_from_tags((const char *const[]){"weight=5x"}, 1), 1);
}

static void test_canary_split(void) {
    gw_balancer b;
    gw_balancer_init(&b);
    gw_target t[] = {{"s1", "http://s1", "1.0.0", 1},
                     {"s2", "http://s2", "1.0.0", 1},
                     {"c1", "http://c1", "2.0.0", 1}};
    int canaries = 0, last = -100, min_gap = 1000;
    for (int k = 0; k < 1000; k++) {
        bool canary;
        int i = gw_balance_pick(&b, t, 3, "2", 50, NULL, NULL, &canary);
        ASSERT_EQ(canary, i == 2);
        if (canary) {
            canaries++;
            if (k - last < min_gap) {
                min_gap = k - last;
            }
            last = k;
        }
    }
    ASSERT_EQ(canaries, 50);
    ASSERT_EQ(min_gap, 20); /* evenly spread: one in twenty */
    /* No canary instance: all stable. Only canaries: all canary. */
    bool canary;
    for (int k = 0; k < 100; k++) {
        ASSERT_TRUE(gw_balance_pick(&b, t, 2, "2", 50, NULL, NULL, &canary) < 2 && !canary);
        ASSERT_EQ(gw_balance_pick(&b, &t[2], 1, "2", 50, NULL, NULL, &canary), 0);
        ASSERT_TRUE(canary);
    }
    /* The canary pool unusable: its share falls back to the stable pool. */
    int stable = 0;
    for (int k = 0; k < 100; k++) {
        stable += gw_balance_pick(&b, t, 3, "2", 50, not_b, NULL, &canary) != 2;
    }
    ASSERT_EQ(stable, 95);
}

static void test_rate_limit(void) {
    gw_limiter *l;
    ASSERT_EQ(gw_limiter_create(0, 1, 10, &l), SL_EINVAL);
    ASSERT_EQ(gw_limiter_create(1, 3, 4, &l), 0);
    gw_limit_result r;
    uint64_t t0 = 1000 * SEC;
    for (int k = 0; k < 3; k++) {
        gw_limiter_take(l, "key-a", t0, &r);
        ASSERT_TRUE(r.allowed);
        ASSERT_EQ(r.remaining, 2 - k);
        ASSERT_EQ(r.limit, 3);
    }
    gw_limiter_take(l, "key-a", t0, &r);
    ASSERT_TRUE(!r.allowed);
    ASSERT_EQ(r.retry_after_s, 1);
    /* Another key has its own bucket. */
    gw_limiter_take(l, "key-b", t0, &r);
    ASSERT_TRUE(r.allowed);
    gw_limiter_take(l, "key-a", t0 + SEC / 2, &r);
    ASSERT_TRUE(!r.allowed);
    gw_limiter_take(l, "key-a", t0 + SEC, &r);
    ASSERT_TRUE(r.allowed);
    ASSERT_EQ(r.remaining, 0);
    gw_limiter_destroy(l);

    /* A slow rate: Retry-After is the whole seconds until the next token. */
    ASSERT_EQ(gw_limiter_create(0.1, 1, 4, &l), 0);
    gw_limiter_take(l, "k", t0, &r);
    ASSERT_TRUE(r.allowed);
    gw_limiter_take(l, "k", t0, &r);
    ASSERT_TRUE(!r.allowed);
    ASSERT_EQ(r.retry_after_s, 10);
    gw_limiter_take(l, "k", t0 + 7 * SEC + SEC / 2, &r);
    ASSERT_EQ(r.retry_after_s, 3);
    /* Bounded keys: past 4, idle (full) buckets go first, then the oldest. */
    char key[16];
    for (int k = 0; k < 20; k++) {
        snprintf(key, sizeof(key), "x%d", k);
        gw_limiter_take(l, key, t0 + 8 * SEC + (uint64_t)k, &r);
        ASSERT_TRUE(r.allowed);
        ASSERT_TRUE(gw_limiter_size(l) <= 4);
    }
    gw_limiter_destroy(l);
    gw_limiter_destroy(NULL);
}

static void test_request_checks(void) {
    gw_verdict v;
    static const char *const good[] = {"/", "/v1/users/42", "/v1/a.b/c..d/", "/v1/x%41y"};
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        if (!gw_check_path(good[k], strlen(good[k]), 2048, &v)) {
            SL_FAIL_AT("%s: %s", good[k], v.message);
        }
    }
    static const char *const bad[] = {"",          "v1",    "/a//b",  "/a/./b", "/a/../b",
                                      "/a/..",     "/a/.",  "/a b",   "/a\\b",  "/a%2fb",
                                      "/a%2E%2e/", "/a%00", "/a\x7f", "/a/\x01"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (gw_check_path(bad[k], strlen(bad[k]), 2048, &v) || v.status != 400) {
            SL_FAIL_AT("bad path %zu passed (%d)", k, v.status);
        }
    }
    ASSERT_TRUE(!gw_check_path("/abcdef", 7, 4, &v));
    ASSERT_EQ(v.status, 414);
    ASSERT_TRUE(!gw_check_body_size(101, 100, &v));
    ASSERT_EQ(v.status, 413);
    ASSERT_STR_EQ(v.code, "body_too_large");
    ASSERT_TRUE(gw_check_body_size(100, 100, &v));
    ASSERT_TRUE(gw_check_header_bytes(4096, 4096, &v));
    ASSERT_EQ(v.status, 0);
    ASSERT_TRUE(!gw_check_header_bytes(4097, 4096, &v));
    ASSERT_EQ(v.status, 431);
    ASSERT_STR_EQ(v.code, "headers_too_large");
    ASSERT_TRUE(gw_check_body(NULL, NULL, 0, 100, &v));
    ASSERT_TRUE(gw_check_body("application/json; charset=utf-8", "{\"a\":1}", 7, 100, &v));
    ASSERT_TRUE(gw_check_body("application/merge-patch+json", "[1]", 3, 100, &v));
    ASSERT_TRUE(!gw_check_body("text/plain", "{}", 2, 100, &v));
    ASSERT_EQ(v.status, 415);
    ASSERT_TRUE(!gw_check_body(NULL, "{}", 2, 100, &v));
    ASSERT_EQ(v.status, 415);
    ASSERT_TRUE(!gw_check_body("application/json", "{\"a\":", 5, 100, &v));
    ASSERT_EQ(v.status, 400);
    ASSERT_STR_EQ(v.code, "invalid_json");
    ASSERT_TRUE(!gw_check_body("application/json", "42", 2, 100, &v));
    ASSERT_EQ(v.status, 400);
    ASSERT_TRUE(!gw_check_body("application/json", "{\"a\":1,\"a\":2}", 13, 100, &v));
    ASSERT_TRUE(!gw_check_body("application/json", "{}", 2, 1, &v));
    ASSERT_EQ(v.status, 413);
    char *body = gw_error_body(429, "rate_limited", "slow \"down\"");
    ASSERT_STR_EQ(body, "{\"error\":{\"status\":429,\"code\":\"rate_limited\",\"message\":"
                        "\"slow \\\"down\\\"\"}}");
    free(body);
}

static void test_deprecation_headers(void) {
    int64_t t;
    ASSERT_EQ(gw_parse_time("2027-06-30T00:00:00Z", &t), 0);
    ASSERT_EQ(t, 1814313600);
    ASSERT_EQ(gw_parse_time("2024-02-29", &t), 0);
    ASSERT_EQ(gw_parse_time("2023-02-29", &t), SL_EINVAL);
    ASSERT_EQ(gw_parse_time("2027-06-30 00:00:00", &t), SL_EINVAL);
    char date[40];
    gw_http_date(1814313600, date);
    ASSERT_STR_EQ(date, "Wed, 30 Jun 2027 00:00:00 GMT");
    gw_config c;
    char err[256];
    ASSERT_EQ(gw_config_parse(CFG, strlen(CFG), &c, err, sizeof(err)), 0);
    gw_deprecation d;
    gw_route_deprecation(&c.routes[0], "/42/profile", &d);
    ASSERT_STR_EQ(d.deprecation, "@1788220800");
    ASSERT_STR_EQ(d.sunset, "Wed, 30 Jun 2027 12:00:00 GMT");
    ASSERT_STR_EQ(d.link, "</v2/users/42/profile>; rel=\"successor-version\"");
    gw_route_deprecation(&c.routes[2], "", &d);
    ASSERT_STR_EQ(d.deprecation, "");
    ASSERT_STR_EQ(d.sunset, "");
    ASSERT_STR_EQ(d.link, "");
    gw_config_free(&c);
}

int main(void) {
    RUN(test_config_and_match);
    RUN(test_config_errors);
    RUN(test_shipped_routes);
    RUN(test_balance);
    RUN(test_canary_split);
    RUN(test_rate_limit);
    RUN(test_request_checks);
    RUN(test_deprecation_headers);
    return SL_TEST_RESULT();
}
