/*
 * fleet_rt_bench: what the fleet runtime costs (bench/RESULTS.md, "Fleet runtime").
 *
 *   fleet_rt_bench http [REQUESTS]
 *     Per-request overhead of the runtime's server middleware: the same tiny
 *     JSON handler served by bare libmicrohttpd (same threading model) and by
 *     sf_server (trace context, SERVER span, token check, RED metrics, request
 *     log), then by sf_server with a service token on every request, each
 *     driven by one keep-alive libcurl client (closed loop), interleaved in
 *     rounds. Prints p50/p95/p99 latency and requests/s per mode. Telemetry
 *     follows OTEL_* (set OTEL_EXPORTER_OTLP_ENDPOINT for tracing on).
 *
 *   fleet_rt_bench nats NATS_URL [EVENTS]
 *     Events end to end through JetStream with tracing on: a producer
 *     connection publishes EVENTS events in acknowledged batches of 256 (the
 *     outbox relay's way: PRODUCER span each, traceparent in the headers), a
 *     second connection consumes them with a durable queue consumer (CONSUMER
 *     span each, explicit ack). Prints events/s from the first publication to
 *     the last delivery, and the SDK's span counters.
 */
#include <sf/sf_bus.h>
#include <sf/sf_client.h>
#include <sf/sf_server.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char k_body[] = "{\"id\":\"42\",\"name\":\"ada\"}";

/* --- bare libmicrohttpd ---------------------------------------------------- */

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *up,
                                    size_t *up_size, void **req_cls) {
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)up;
    (void)up_size;
    if (*req_cls == NULL) {
        *req_cls = (void *)1;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof k_body - 1, k_body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void rt_handler(sf_req *r, void *ud) {
    (void)ud;
    sf_reply(r, 200, "application/json", k_body, sizeof k_body - 1);
}

static size_t discard(char *p, size_t s, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return s * n;
}

/* Runs n GETs on one keep-alive handle; appends latencies (s) to lat. */
static int drive(CURL *h, const char *url, struct curl_slist *hdrs, int n, double *lat) {
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        if (curl_easy_perform(h) != CURLE_OK) {
            return -1;
        }
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200) {
            fprintf(stderr, "status %ld on %s\n", code, url);
            return -1;
        }
        lat[i] = now_s() - t0;
    }
    return 0;
}

static void report(const char *mode, double *lat, int n, double wall) {
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("| %s | %d | %.1f | %.1f | %.1f | %.0f |\n", mode, n, lat[n / 2] * 1e6,
           lat[(int)(n * 0.95)] * 1e6, lat[(int)(n * 0.99)] * 1e6, n / wall);
}

static int bench_http(int total) {
    sf_telemetry *tel = NULL;
    if (sf_telemetry_create("bench", "1.0.0", &tel) != 0) {
        return 1;
    }
    struct MHD_Daemon *bare = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                                   MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC,
                                               0, NULL, NULL, bare_handler, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *bi = MHD_get_daemon_info(bare, MHD_DAEMON_INFO_BIND_PORT);
    sf_jwt_key *key = NULL;
    sf_jwt_key_hs256("bench-key-bench-key-bench-key-01", 32, &key);
    sf_server *servers[2];
    for (int k = 0; k < 2; k++) {
        sf_server_options so;
        sf_server_options_init(&so);
        so.service = "bench";
        so.telemetry = tel;
        so.service_key = k == 1 ? key : NULL;
        sf_server_create(&so, &servers[k]);
        sf_route r = {"GET", "/v1/users/{id}", rt_handler, NULL, k == 0, "caller", "read"};
        sf_server_route(servers[k], &r);
        if (sf_server_start(servers[k]) != 0) {
            return 1;
        }
    }
    char urls[3][96];
    snprintf(urls[0], sizeof urls[0], "http://127.0.0.1:%u/v1/users/42", (unsigned)bi->port);
    snprintf(urls[1], sizeof urls[1], "http://127.0.0.1:%u/v1/users/42",
             (unsigned)sf_server_port(servers[0]));
    snprintf(urls[2], sizeof urls[2], "http://127.0.0.1:%u/v1/users/42",
             (unsigned)sf_server_port(servers[1]));
    char *tok = NULL;
    sf_service_token(key, "caller", "bench", "read", 3600, &tok);
    char auth[1024];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    struct curl_slist *with_tp = curl_slist_append(
        NULL, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    struct curl_slist *with_auth = curl_slist_append(
        curl_slist_append(NULL,
                          "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        auth);
    static const char *names[3] = {"bare libmicrohttpd", "sf_server (public route)",
                                   "sf_server + service token check"};
    struct curl_slist *hdrs[3] = {with_tp, with_tp, with_auth};
    const int rounds = 10, per = total / rounds;
    double *lat[3];
    double wall[3] = {0, 0, 0};
    CURL *h[3];
    for (int m = 0; m < 3; m++) {
        lat[m] = calloc((size_t)total, sizeof(double));
        h[m] = curl_easy_init();
        drive(h[m], urls[m], hdrs[m], 500, lat[m]); /* warm-up */
    }
    for (int r = 0; r < rounds; r++) {
        for (int m = 0; m < 3; m++) {
            double t0 = now_s();
            if (drive(h[m], urls[m], hdrs[m], per, lat[m] + r * per) != 0) {
                return 1;
            }
            wall[m] += now_s() - t0;
        }
    }
    printf("| server | requests | p50 µs | p95 µs | p99 µs | requests/s "
           "|\n|---|---|---|---|---|---|\n");
    for (int m = 0; m < 3; m++) {
        report(names[m], lat[m], per * rounds, wall[m]);
        curl_easy_cleanup(h[m]);
        free(lat[m]);
    }
    sl_provider_stats st;
    sl_provider_stats_get(sf_telemetry_provider(tel), &st);
    printf("\nspans started %llu, exported %llu, dropped %llu (telemetry %s)\n",
           (unsigned long long)st.spans_started, (unsigned long long)st.spans_exported,
           (unsigned long long)st.spans_dropped, sf_telemetry_exporting(tel) ? "on" : "off");
    curl_slist_free_all(with_tp);
    curl_slist_free_all(with_auth);
    free(tok);
    MHD_stop_daemon(bare);
    for (int k = 0; k < 2; k++) {
        sf_server_drain(servers[k], 1000);
        sf_server_destroy(servers[k]);
    }
    sf_telemetry_destroy(tel, 10000);
    sf_jwt_key_destroy(key);
    return 0;
}

/* --- NATS ------------------------------------------------------------------ */

static atomic_long g_consumed;
static double g_last_delivery;

static int on_event(const sf_bus_msg *m, void *ud) {
    (void)m;
    (void)ud;
    atomic_fetch_add(&g_consumed, 1);
    g_last_delivery = now_s();
    return 0;
}

static int bench_nats(const char *url, long events) {
    sf_telemetry *tel = NULL;
    if (sf_telemetry_create("bench-bus", "1.0.0", &tel) != 0) {
        return 1;
    }
    char subject[128], durable[48];
    snprintf(durable, sizeof durable, "bench%ld", (long)time(NULL));
    snprintf(subject, sizeof subject, "events.%s.bench", durable);
    sf_bus_options bo;
    sf_bus_options_init(&bo);
    bo.url = url;
    bo.service = "bench-producer";
    bo.telemetry = tel;
    sf_bus *prod = NULL, *cons = NULL;
    if (sf_bus_connect(&bo, &prod) != 0 || sf_bus_ensure_stream(prod) != 0) {
        fprintf(stderr, "cannot reach JetStream at %s\n", url);
        return 1;
    }
    bo.service = "bench-consumer";
    if (sf_bus_connect(&bo, &cons) != 0 ||
        sf_bus_consume(cons, subject, durable, on_event, NULL) != 0) {
        return 1;
    }
    enum { BATCH = 256 };
    sf_bus_pub pubs[BATCH];
    char payloads[BATCH][256], ids[BATCH][80];
    long published = 0, failed = 0;
    double t0 = now_s();
    while (published + failed < events) {
        size_t n =
            (size_t)(events - published - failed < BATCH ? events - published - failed : BATCH);
        for (size_t i = 0; i < n; i++) {
            long seq = published + failed + (long)i;
            snprintf(ids[i], sizeof ids[i], "%s-%ld", durable, seq);
            int len = snprintf(payloads[i], sizeof payloads[i],
                               "{\"id\":\"%s\",\"type\":\"bench\",\"tenant\":\"t1\","
                               "\"data\":{\"seq\":%ld}}",
                               ids[i], seq);
            pubs[i] = (sf_bus_pub){subject, payloads[i], (size_t)len, ids[i], NULL, 0};
        }
        sf_bus_js_publish_batch(prod, pubs, n);
        for (size_t i = 0; i < n; i++) {
            if (pubs[i].result == 0) {
                published++;
            } else {
                failed++;
            }
        }
    }
    double t_pub = now_s() - t0;
    double deadline = now_s() + 120;
    while (atomic_load(&g_consumed) < published && now_s() < deadline) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    long consumed = atomic_load(&g_consumed);
    double t_all = g_last_delivery - t0;
    printf("| events | published | failed | consumed | publish s | end-to-end s | events/s end to "
           "end |\n|---|---|---|---|---|---|---|\n");
    printf("| %ld | %ld | %ld | %ld | %.2f | %.2f | %.0f |\n", events, published, failed, consumed,
           t_pub, t_all, consumed / t_all);
    sf_bus_close(cons);
    sf_bus_close(prod);
    sl_provider_force_flush(sf_telemetry_provider(tel), 30000);
    sl_provider_stats st;
    sl_provider_stats_get(sf_telemetry_provider(tel), &st);
    printf("\nspans started %llu, exported %llu, dropped %llu (telemetry %s)\n",
           (unsigned long long)st.spans_started, (unsigned long long)st.spans_exported,
           (unsigned long long)st.spans_dropped, sf_telemetry_exporting(tel) ? "on" : "off");
    sf_telemetry_destroy(tel, 30000);
    return consumed == published && failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc >= 2 && strcmp(argv[1], "http") == 0) {
        return bench_http(argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20000);
    }
    if (argc >= 3 && strcmp(argv[1], "nats") == 0) {
        return bench_nats(argv[2], argc > 3 ? strtol(argv[3], NULL, 10) : 50000);
    }
    fprintf(stderr, "usage: fleet_rt_bench http [REQUESTS] | nats NATS_URL [EVENTS]\n");
    return 2;
}
