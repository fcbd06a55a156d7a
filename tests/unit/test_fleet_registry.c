/*
 * Unit tests of the registry's core: the edge hash map and query parsing, the
 * instance table (ids, TTL expiry through the deadline heap, reaping, passing
 * counts, discovery filters), the SQLite store across a "restart", active
 * health checks against a tiny HTTP server on a loopback thread, and the
 * HTTP API as a function.
 */
#include "sl_test.h"

#include "edge_hmap.h"
#include "edge_query.h"
#include "edge_version.h"
#include "reg_check.h"
#include "reg_store.h"
#include "reg_table.h"
#include "registry.h"

#include "sl_err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEC 1000000000ULL

typedef struct item {
    edge_hnode node;
    char key[16];
} item;

static void test_hmap(void) {
    enum { N = 5000 };
    static item items[N];
    edge_hmap m;
    edge_hmap_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        ASSERT_EQ(edge_hmap_put(&m, &items[i].node, items[i].key, strlen(items[i].key)), 0);
    }
    ASSERT_EQ(m.count, N);
    for (int i = 0; i < N; i += 7) {
        edge_hnode *n = edge_hmap_get(&m, items[i].key, strlen(items[i].key));
        ASSERT_TRUE(n == &items[i].node);
    }
    ASSERT_TRUE(edge_hmap_get(&m, "nope", 4) == NULL);
    for (int i = 0; i < N; i += 2) {
        edge_hmap_del(&m, &items[i].node);
    }
    ASSERT_EQ(m.count, N / 2);
    size_t b, seen = 0;
    for (edge_hnode *n = edge_hmap_first(&m, &b); n != NULL; n = edge_hmap_next(&m, n, &b)) {
        seen++;
    }
    ASSERT_EQ(seen, N / 2);
    ASSERT_TRUE(edge_hmap_get(&m, "k0", 2) == NULL);
    ASSERT_TRUE(edge_hmap_get(&m, "k1", 2) == &items[1].node);
    edge_hmap_free(&m);
}

static void test_query(void) {
    const char *q = "version=2.0&tag=a%2Cb&all=1&x&tag=c+d&&bad=%zz&end=%41";
    char k[16], v[16];
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_STR_EQ(k, "version");
    ASSERT_STR_EQ(v, "2.0");
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_STR_EQ(v, "a,b");
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_STR_EQ(k, "x");
    ASSERT_STR_EQ(v, "");
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_STR_EQ(v, "c d");
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), SL_EINVAL);
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 1);
    ASSERT_STR_EQ(v, "A");
    ASSERT_EQ(edge_query_next(&q, k, sizeof(k), v, sizeof(v)), 0);
    char small[4];
    ASSERT_EQ(edge_url_decode("abcd", 4, small, sizeof(small)), SL_ETOOBIG);
    ASSERT_EQ(edge_url_decode("a%0", 3, small, sizeof(small)), SL_EINVAL);
    ASSERT_EQ(edge_url_decode("%00", 3, small, sizeof(small)), SL_EINVAL);
    sl_buf b;
    sl_buf_init(&b, 64);
    ASSERT_EQ(edge_url_encode("a b&c=d/é~-_.", &b), 0);
    ASSERT_EQ(sl_buf_putc(&b, 0), 0);
    ASSERT_STR_EQ((const char *)b.data, "a%20b%26c%3Dd%2F%C3%A9~-_.");
    char back[64];
    ASSERT_EQ(edge_url_decode((const char *)b.data, b.len - 1, back, sizeof(back)), 0);
    ASSERT_STR_EQ(back, "a b&c=d/é~-_.");
    sl_buf_free(&b);
    uint8_t raw[8];
    ASSERT_EQ(edge_b64url_decode("_-8", 3, raw, sizeof(raw)), 2);
    ASSERT_EQ(raw[0], 0xff);
    ASSERT_EQ(raw[1], 0xef);
    ASSERT_EQ(edge_b64url_decode("aGVsbG8", 7, raw, sizeof(raw)), 5);
    ASSERT_TRUE(memcmp(raw, "hello", 5) == 0);
    ASSERT_EQ(edge_b64url_decode("aGVsbG8=", 8, raw, sizeof(raw)), 5);
    ASSERT_EQ(edge_b64url_decode("a+b", 3, raw, sizeof(raw)), SL_EINVAL);
    ASSERT_EQ(edge_b64url_decode("a", 1, raw, sizeof(raw)), SL_EINVAL);
    ASSERT_EQ(edge_b64url_decode("aGVsbG8gd29ybGQ", 15, raw, 4), SL_ETOOBIG);
}

static reg_spec spec(const char *name, const char *version, const char *address, uint32_t ttl) {
    static const char *const tags[] = {"zone-a", "http"};
    return (reg_spec){.name = name,
                      .version = version,
                      .address = address,
                      .tags = tags,
                      .n_tags = 2,
                      .ttl_s = ttl};
}

static void test_spec_check(void) {
    const char *why;
    reg_spec s = spec("users", "1.0.0", "http://127.0.0.1:8102", 30);
    ASSERT_EQ(reg_spec_check(&s, &why), 0);
    s.name = "";
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    s.name = "us ers";
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    s.name = "users/x";
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    ASSERT_TRUE(why != NULL);
    s.name = "users";
    s.address = "ftp://x";
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    s.address = "http://127.0.0.1:1";
    s.ttl_s = 0;
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    s.ttl_s = 86401;
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
    s.ttl_s = 10;
    const char *const comma[] = {"a,b"};
    s.tags = comma;
    s.n_tags = 1;
    ASSERT_EQ(reg_spec_check(&s, &why), SL_EINVAL);
}

static void test_register_same_id(void) {
    reg_table *t;
    ASSERT_EQ(reg_table_create(0, &t), 0);
    reg_spec s = spec("users", "1.0.0", "http://127.0.0.1:8102", 30);
    char id1[REG_ID_LEN + 1], id2[REG_ID_LEN + 1], id3[REG_ID_LEN + 1];
    bool created;
    ASSERT_EQ(reg_table_register(t, &s, 1 * SEC, id1, &created), 0);
    ASSERT_TRUE(created);
    s.version = "1.1.0";
    ASSERT_EQ(reg_table_register(t, &s, 2 * SEC, id2, &created), 0);
    ASSERT_TRUE(!created);
    ASSERT_STR_EQ(id1, id2);
    ASSERT_EQ(reg_table_count(t), 1);
    reg_view v;
    ASSERT_EQ(reg_table_get(t, id1, &v), 0);
    ASSERT_STR_EQ(v.version, "1.1.0");
    ASSERT_U64_EQ(v.registered_unix_ns, 1 * SEC);
    ASSERT_U64_EQ(v.last_heartbeat_unix_ns, 2 * SEC);
    s.address = "http://127.0.0.1:8103";
    ASSERT_EQ(reg_table_register(t, &s, 2 * SEC, id3, &created), 0);
    ASSERT_TRUE(created);
    ASSERT_TRUE(strcmp(id1, id3) != 0);
    ASSERT_EQ(reg_table_count(t), 2);
    ASSERT_EQ(reg_table_service_count(t), 1);
    ASSERT_EQ(reg_table_remove(t, id1), 0);
    ASSERT_EQ(reg_table_remove(t, id1), SL_ENOTFOUND);
    ASSERT_EQ(reg_table_heartbeat(t, id1, 3 * SEC), SL_ENOTFOUND);
    ASSERT_EQ(reg_table_remove(t, id3), 0);
    ASSERT_EQ(reg_table_service_count(t), 0);
    reg_table_destroy(t);
}

typedef struct events {
    int expired, removed;
} events;

static void count_event(void *ud, const reg_view *v, bool removed) {
    events *e = ud;
    (void)v;
    if (removed) {
        e->removed++;
    } else {
        e->expired++;
    }
}

typedef struct ids {
    char id[8][REG_ID_LEN + 1];
    size_t n;
} ids;

static void collect(void *ud, const reg_view *v) {
    ids *g = ud;
    if (g->n < 8) {
        memcpy(g->id[g->n++], v->id, REG_ID_LEN + 1);
    }
}

static void ignore_view(void *ud, const reg_view *v) {
    (void)ud;
    (void)v;
}
#define NULL_FN ignore_view

static void test_ttl_expiry_and_reap(void) {
    reg_table *t;
    ASSERT_EQ(reg_table_create(60 * SEC, &t), 0);
    char a[REG_ID_LEN + 1], b[REG_ID_LEN + 1];
    reg_spec sa = spec("auth", "1.0.0", "http://127.0.0.1:1", 10);
    reg_spec sb = spec("auth", "1.0.0", "http://127.0.0.1:2", 30);
    ASSERT_EQ(reg_table_register(t, &sa, 100 * SEC, a, NULL), 0);
    ASSERT_EQ(reg_table_register(t, &sb, 100 * SEC, b, NULL), 0);
    events e = {0};
    ASSERT_EQ(reg_table_expire(t, 109 * SEC, count_event, &e), 0);
    ASSERT_EQ(reg_table_passing(t), 2);
    /* a heartbeats at 105: its deadline moves to 115. */
    ASSERT_EQ(reg_table_heartbeat(t, a, 105 * SEC), 0);
    ASSERT_EQ(reg_table_expire(t, 111 * SEC, count_event, &e), 0);
    ASSERT_EQ(reg_table_expire(t, 115 * SEC, count_event, &e), 1);
    ASSERT_EQ(e.expired, 1);
    reg_view v;
    ASSERT_EQ(reg_table_get(t, a, &v), 0);
    ASSERT_TRUE(!v.passing && v.ttl_expired);
    ASSERT_EQ(reg_table_passing(t), 1);
    /* Discovery leaves critical instances out unless asked. */
    ids got = {0};
    ASSERT_EQ(reg_table_each_instance(t, "auth", NULL, collect, &got), 1);
    ASSERT_STR_EQ(got.id[0], b);
    reg_filter all = {.include_critical = true};
    got.n = 0;
    ASSERT_EQ(reg_table_each_instance(t, "auth", &all, collect, &got), 2);
    /* A heartbeat revives it. */
    ASSERT_EQ(reg_table_heartbeat(t, a, 116 * SEC), 0);
    ASSERT_EQ(reg_table_passing(t), 2);
    /* b expires at 130 and is reaped 60 s later; a keeps heartbeating. */
    for (uint64_t now = 120; now <= 200; now += 5) {
        ASSERT_EQ(reg_table_heartbeat(t, a, now * SEC), 0);
        reg_table_expire(t, now * SEC, count_event, &e);
    }
    ASSERT_EQ(e.expired, 2);
    ASSERT_EQ(e.removed, 1);
    ASSERT_EQ(reg_table_count(t), 1);
    ASSERT_EQ(reg_table_get(t, b, &v), SL_ENOTFOUND);
    reg_table_destroy(t);
}

/* Random heartbeats, removals and expiries against a brute-force model. */
static void test_heap_model(void) {
    enum { N = 400 };
    reg_table *t;
    ASSERT_EQ(reg_table_create(0, &t), 0);
    static char id[N][REG_ID_LEN + 1];
    uint64_t deadline[N];
    bool present[N], expired[N];
    char addr[64];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        snprintf(addr, sizeof(addr), "http://10.0.%d.%d:80", i / 256, i % 256);
        seed = seed * 1103515245u + 12345u;
        uint32_t ttl = 1 + (seed >> 16) % 40;
        reg_spec s = spec("svc", "1", addr, ttl);
        ASSERT_EQ(reg_table_register(t, &s, 0, id[i], NULL), 0);
        deadline[i] = ttl * SEC;
        present[i] = true;
        expired[i] = false;
    }
    for (uint64_t now = 1; now <= 200; now++) {
        for (int k = 0; k < 30; k++) {
            seed = seed * 1103515245u + 12345u;
            int i = (int)((seed >> 16) % N);
            if (!present[i]) {
                continue;
            }
            if ((seed & 0xff) < 8) {
                ASSERT_EQ(reg_table_remove(t, id[i]), 0);
                present[i] = false;
                continue;
            }
            reg_view v;
            ASSERT_EQ(reg_table_get(t, id[i], &v), 0);
            ASSERT_EQ(reg_table_heartbeat(t, id[i], now * SEC), 0);
            deadline[i] = now * SEC + v.ttl_s * SEC;
            expired[i] = false;
        }
        reg_table_expire(t, now * SEC, NULL, NULL);
        size_t passing = 0, count = 0;
        for (int i = 0; i < N; i++) {
            if (!present[i]) {
                continue;
            }
            count++;
            if (deadline[i] <= now * SEC) {
                expired[i] = true;
            }
            passing += !expired[i];
            reg_view v;
            ASSERT_EQ(reg_table_get(t, id[i], &v), 0);
            if (v.ttl_expired != expired[i]) {
                SL_FAIL_AT("instance %d at %llu: expired %d, want %d", i, (unsigned long long)now,
                           v.ttl_expired, expired[i]);
                reg_table_destroy(t);
                return;
            }
        }
        ASSERT_EQ(reg_table_count(t), count);
        ASSERT_EQ(reg_table_passing(t), passing);
    }
    reg_table_destroy(t);
}

static void test_filters_and_checks(void) {
    reg_table *t;
    ASSERT_EQ(reg_table_create(0, &t), 0);
    const char *const t1[] = {"canary", "zone-a"};
    const char *const t2[] = {"zone-b"};
    reg_spec s1 = {.name = "users",
                   .version = "1.4.0",
                   .address = "http://h:1",
                   .ttl_s = 30,
                   .tags = t2,
                   .n_tags = 1};
    reg_spec s2 = {.name = "users",
                   .version = "2.0.0",
                   .address = "http://h:2",
                   .ttl_s = 30,
                   .tags = t1,
                   .n_tags = 2};
    reg_spec s3 = {.name = "users", .version = "20.1", .address = "http://h:3", .ttl_s = 30};
    char a[REG_ID_LEN + 1], b[REG_ID_LEN + 1], c[REG_ID_LEN + 1];
    ASSERT_EQ(reg_table_register(t, &s1, SEC, a, NULL), 0);
    ASSERT_EQ(reg_table_register(t, &s2, SEC, b, NULL), 0);
    ASSERT_EQ(reg_table_register(t, &s3, SEC, c, NULL), 0);
    ids got = {0};
    reg_filter f = {.version = "2"};
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, collect, &got), 1);
    ASSERT_STR_EQ(got.id[0], b);
    f.version = "2.0.0";
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, NULL_FN, NULL), 1);
    f.version = "2.";
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, NULL_FN, NULL), 1);
    f.version = "1";
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, NULL_FN, NULL), 1);
    f.version = NULL;
    const char *const want[] = {"zone-a", "canary"};
    f.tags = want;
    f.n_tags = 2;
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, NULL_FN, NULL), 1);
    f.n_tags = 0;
    ASSERT_EQ(reg_table_each_instance(t, "nobody", &f, NULL_FN, NULL), 0);
    /* A failing active check makes an instance critical until it passes. */
    ASSERT_EQ(reg_table_set_check(t, a, false, "HTTP 503"), 0);
    ASSERT_EQ(reg_table_passing(t), 2);
    reg_view v;
    ASSERT_EQ(reg_table_get(t, a, &v), 0);
    ASSERT_TRUE(!v.passing && v.check_failing && !v.ttl_expired);
    ASSERT_STR_EQ(v.check_output, "HTTP 503");
    ASSERT_EQ(reg_table_each_instance(t, "users", &f, NULL_FN, NULL), 2);
    /* A heartbeat does not override a failing check. */
    ASSERT_EQ(reg_table_heartbeat(t, a, 2 * SEC), 0);
    ASSERT_EQ(reg_table_passing(t), 2);
    ASSERT_EQ(reg_table_set_check(t, a, true, NULL), 0);
    ASSERT_EQ(reg_table_passing(t), 3);
    ASSERT_EQ(reg_table_set_check(t, "0123", true, NULL), SL_ENOTFOUND);
    ASSERT_TRUE(edge_version_match(NULL, "1"));
    ASSERT_TRUE(edge_version_match("", "1"));
    ASSERT_TRUE(!edge_version_match("2.0", "2.01"));
    reg_table_destroy(t);
}

static int beats_seen;
static void count_dirty(void *ud, const reg_view *v) {
    (void)ud;
    (void)v;
    beats_seen++;
}

static void test_store_restart(void) {
    char path[] = "/tmp/sl-reg-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    reg_store *st;
    reg_table *t;
    ASSERT_EQ(reg_store_open(path, &st), 0);
    ASSERT_EQ(reg_table_create(0, &t), 0);
    char a[REG_ID_LEN + 1], b[REG_ID_LEN + 1];
    reg_spec sa = spec("auth", "1.0.0", "http://127.0.0.1:8101", 30);
    reg_spec sb = spec("users", "2.0.0", "http://127.0.0.1:8102", 15);
    ASSERT_EQ(reg_table_register(t, &sa, 10 * SEC, a, NULL), 0);
    ASSERT_EQ(reg_table_register(t, &sb, 11 * SEC, b, NULL), 0);
    reg_view v;
    ASSERT_EQ(reg_table_get(t, a, &v), 0);
    ASSERT_EQ(reg_store_put(st, &v), 0);
    ASSERT_EQ(reg_table_get(t, b, &v), 0);
    ASSERT_EQ(reg_store_put(st, &v), 0);
    beats_seen = 0;
    ASSERT_EQ(reg_table_take_dirty(t, count_dirty, NULL), 2);
    ASSERT_EQ(reg_table_take_dirty(t, count_dirty, NULL), 0);
    ASSERT_EQ(reg_table_heartbeat(t, b, 20 * SEC), 0);
    ASSERT_EQ(reg_table_heartbeat(t, b, 21 * SEC), 0);
    ASSERT_EQ(reg_table_take_dirty(t, count_dirty, NULL), 1);
    reg_beat beat = {.last_heartbeat_unix_ns = 21 * SEC};
    memcpy(beat.id, b, sizeof(beat.id));
    ASSERT_EQ(reg_store_put_beats(st, &beat, 1), 0);
    reg_store_close(st);
    reg_table_destroy(t);

    /* "Restart": a new table loads what the store kept. */
    ASSERT_EQ(reg_store_open(path, &st), 0);
    ASSERT_EQ(reg_table_create(0, &t), 0);
    size_t loaded;
    ASSERT_EQ(reg_store_load(st, t, 500 * SEC, &loaded), 0);
    ASSERT_EQ(loaded, 2);
    ASSERT_EQ(reg_table_get(t, b, &v), 0);
    ASSERT_STR_EQ(v.name, "users");
    ASSERT_STR_EQ(v.version, "2.0.0");
    ASSERT_EQ(v.n_tags, 2);
    ASSERT_STR_EQ(v.tags[1], "http");
    ASSERT_U64_EQ(v.registered_unix_ns, 11 * SEC);
    ASSERT_U64_EQ(v.last_heartbeat_unix_ns, 21 * SEC);
    /* The TTL restarts at the load: passing now, critical 15 s later. */
    ASSERT_TRUE(v.passing);
    ASSERT_EQ(reg_table_expire(t, 514 * SEC, NULL, NULL), 0);
    ASSERT_EQ(reg_table_expire(t, 515 * SEC, NULL, NULL), 1);
    ASSERT_EQ(reg_store_delete(st, a), 0);
    reg_store_close(st);
    reg_table_destroy(t);
    ASSERT_EQ(reg_store_open(path, &st), 0);
    ASSERT_EQ(reg_table_create(0, &t), 0);
    ASSERT_EQ(reg_store_load(st, t, 500 * SEC, &loaded), 0);
    ASSERT_EQ(loaded, 1);
    reg_store_close(st);
    reg_table_destroy(t);
    unlink(path);
    char side[sizeof(path) + 8];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

/* A tiny HTTP server: answers 200 for paths starting with /up/, 503 for
 * anything else, one request per connection, until told to stop. */
typedef struct mini_http {
    int fd;
    int port;
    int served;
} mini_http;

static void *mini_main(void *arg) {
    mini_http *m = arg;
    for (;;) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0) {
            return NULL;
        }
        char req[1024];
        ssize_t n = recv(c, req, sizeof(req) - 1, 0);
        if (n <= 0) {
            close(c);
            continue;
        }
        req[n] = '\0';
        if (strncmp(req, "QUIT", 4) == 0) {
            close(c);
            return NULL;
        }
        bool up = strncmp(req, "GET /up/", 8) == 0;
        const char *resp = up ? "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"
                                "{\"status\":\"ok\"}"
                              : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
        ssize_t w = send(c, resp, strlen(resp), 0);
        (void)w;
        m->served++;
        close(c);
    }
}

static int mini_start(mini_http *m, pthread_t *th) {
    m->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(m->fd, 64) != 0 || getsockname(m->fd, (struct sockaddr *)&sa, &len) != 0) {
        return -1;
    }
    m->port = ntohs(sa.sin_port);
    return pthread_create(th, NULL, mini_main, m);
}

static void mini_stop(mini_http *m, pthread_t th) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)m->port)};
    if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        ssize_t w = send(c, "QUIT", 4, 0);
        (void)w;
    }
    close(c);
    pthread_join(th, NULL);
    close(m->fd);
}

/* A port nothing listens on: bind, read it, close. */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        sa.sin_port = htons(1);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_active_checks(void) {
    mini_http m = {0};
    pthread_t th;
    ASSERT_EQ(mini_start(&m, &th), 0);
    enum { N = 40 };
    static reg_check_item items[N];
    char addr[96], id[REG_ID_LEN + 8];
    int dead = dead_port();
    for (int i = 0; i < N; i++) {
        if (i % 10 == 9) {
            snprintf(addr, sizeof(addr), "http://127.0.0.1:%d/", dead);
        } else {
            snprintf(addr, sizeof(addr), "http://127.0.0.1:%d/%s/%d/", m.port,
                     i % 3 == 0 ? "down" : "up", i);
        }
        snprintf(id, sizeof(id), "%032d", i);
        reg_check_item_init(&items[i], id, addr);
    }
    ASSERT_TRUE(strstr(items[1].url, "/up/1/health") != NULL);
    atomic_bool stop;
    atomic_init(&stop, false);
    ASSERT_EQ(reg_check_run(items, N, 4, 2000, &stop), 0);
    for (int i = 0; i < N; i++) {
        bool want = i % 10 != 9 && i % 3 != 0;
        if (items[i].ok != want) {
            SL_FAIL_AT("item %d (%s): ok=%d (%s)", i, items[i].url, items[i].ok, items[i].output);
        }
    }
    ASSERT_STR_EQ(items[3].output, "HTTP 503");
    ASSERT_TRUE(items[9].output[0] != '\0');
    mini_stop(&m, th);
    ASSERT_EQ(m.served, N - N / 10);
}

static void test_api(void) {
    reg_options o;
    reg_options_init(&o);
    o.check_interval_ms = 0;
    reg_registry *r;
    ASSERT_EQ(reg_registry_create(&o, &r), 0);
    reg_reply rep;
    const char *body = "{\"name\":\"users\",\"version\":\"2.0.0\",\"address\":"
                       "\"http://127.0.0.1:9\",\"tags\":[\"a\"],\"ttl_s\":30}";
    reg_registry_handle(r, "POST", "/v1/registry/instances", NULL, body, strlen(body), &rep);
    ASSERT_EQ(rep.status, 201);
    char id[REG_ID_LEN + 1];
    const char *p = strstr(rep.body, "\"id\":\"");
    ASSERT_TRUE(p != NULL);
    memcpy(id, p + 6, REG_ID_LEN);
    id[REG_ID_LEN] = '\0';
    free(rep.body);
    reg_registry_handle(r, "POST", "/v1/registry/instances", NULL, body, strlen(body), &rep);
    ASSERT_EQ(rep.status, 200);
    ASSERT_TRUE(strstr(rep.body, id) != NULL);
    free(rep.body);

    static const char *const bad[] = {"",
                                      "[]",
                                      "{\"name\":\"x\"}",
                                      "{\"name\":\"x\",\"address\":\"nope\"}",
                                      "{\"name\":\"x\",\"address\":\"http://a:1\",\"ttl_s\":0}",
                                      "{\"name\":\"x\",\"address\":\"http://a:1\",\"tags\":[1]}",
                                      "{\"name\":\"x\",\"address\":\"http://a:1\",\"version\":2}",
                                      "{\"name\":\"x\",\"name\":\"y\",\"address\":\"http://a:1\"}"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        reg_registry_handle(r, "POST", "/v1/registry/instances", "", bad[k], strlen(bad[k]), &rep);
        if (rep.status != 400) {
            SL_FAIL_AT("body %s: status %d", bad[k], rep.status);
        }
        ASSERT_TRUE(rep.body != NULL && strstr(rep.body, "\"error\"") != NULL);
        free(rep.body);
    }

    char path[128];
    snprintf(path, sizeof(path), "/v1/registry/instances/%s/heartbeat", id);
    reg_registry_handle(r, "PUT", path, NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 200);
    ASSERT_TRUE(strstr(rep.body, "\"passing\"") != NULL);
    free(rep.body);
    reg_registry_handle(r, "POST", path, NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 405);
    free(rep.body);
    reg_registry_handle(r, "PUT",
                        "/v1/registry/instances/00000000000000000000000000000000/heartbeat", NULL,
                        NULL, 0, &rep);
    ASSERT_EQ(rep.status, 404);
    free(rep.body);

    reg_registry_handle(r, "GET", "/v1/registry/services", NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 200);
    ASSERT_STR_EQ(rep.body, "{\"services\":[{\"name\":\"users\",\"instances\":1,\"passing\":1}]}");
    free(rep.body);
    reg_registry_handle(r, "GET", "/v1/registry/services/users", "version=2&tag=a", NULL, 0, &rep);
    ASSERT_EQ(rep.status, 200);
    ASSERT_TRUE(strstr(rep.body, "\"status\":\"passing\"") != NULL);
    ASSERT_TRUE(strstr(rep.body, "\"address\":\"http://127.0.0.1:9\"") != NULL);
    free(rep.body);
    reg_registry_handle(r, "GET", "/v1/registry/services/users", "version=1", NULL, 0, &rep);
    ASSERT_STR_EQ(rep.body, "{\"instances\":[]}");
    free(rep.body);
    reg_registry_handle(r, "GET", "/v1/registry/services/users", "tag=%zz", NULL, 0, &rep);
    ASSERT_EQ(rep.status, 400);
    free(rep.body);
    reg_registry_handle(r, "GET", "/v1/registry/nothing", NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 404);
    free(rep.body);

    snprintf(path, sizeof(path), "/v1/registry/instances/%s", id);
    reg_registry_handle(r, "GET", path, NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 200);
    ASSERT_TRUE(strstr(rep.body, "\"last_heartbeat\"") != NULL);
    free(rep.body);
    reg_registry_handle(r, "DELETE", path, NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 204);
    ASSERT_TRUE(rep.body == NULL);
    reg_registry_handle(r, "DELETE", path, NULL, NULL, 0, &rep);
    ASSERT_EQ(rep.status, 404);
    free(rep.body);
    size_t inst, passing;
    reg_registry_counts(r, &inst, &passing);
    ASSERT_EQ(inst, 0);
    reg_registry_destroy(r);
}

int main(void) {
    RUN(test_hmap);
    RUN(test_query);
    RUN(test_spec_check);
    RUN(test_register_same_id);
    RUN(test_ttl_expiry_and_reap);
    RUN(test_heap_model);
    RUN(test_filters_and_checks);
    RUN(test_store_restart);
    RUN(test_active_checks);
    RUN(test_api);
    return SL_TEST_RESULT();
}
