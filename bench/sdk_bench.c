/*
 * sdk-c benchmarks (bench/RESULTS.md, "sdk-c"):
 *
 *   span      start + 5 attributes + end, single thread, exporting for real to
 *             an in-process OTLP/HTTP sink (so the queue drains and spans come
 *             back to the pool as in production); ns per span and allocations
 *             per span in steady state (malloc/calloc/realloc of the SDK are
 *             counted through the linker's --wrap)
 *   counter   add on a bound series, and unbound add with 2 attributes
 *             (sorted-key hash lookup), ns per add, 1 and 2 threads
 *   export    exporter throughput: spans/s encoded and sent to the sink, for
 *             protobuf and JSON, with and without gzip
 *
 * usage: sdk_bench [span|counter|export|all]   (loopback only)
 */
#define _GNU_SOURCE /* memmem */
#include <sightline/sightline.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- allocation counting (--wrap=malloc,calloc,realloc) ------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
static atomic_ulong allocs;

void *__wrap_malloc(size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __real_calloc(a, b);
}

void *__wrap_realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __real_realloc(p, n);
}

/* ---- an in-process OTLP/HTTP sink: reads requests, answers 200 ------------------- */

static atomic_ulong sink_bytes, sink_requests;

static void *sink_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        char *hdr_end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
        if (hdr_end != NULL) {
            size_t hlen = (size_t)(hdr_end - buf) + 4, body = 0;
            for (char *p = buf; p < hdr_end; p++) {
                if (strncasecmp(p, "\ncontent-length:", 16) == 0) {
                    body = strtoul(p + 16, NULL, 10);
                }
            }
            if (len >= hlen + body) {
                static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf"
                                         "\r\nContent-Length: 0\r\n\r\n";
                if (write(fd, ok, sizeof ok - 1) < 0) {
                    break;
                }
                atomic_fetch_add(&sink_bytes, body);
                atomic_fetch_add(&sink_requests, 1);
                memmove(buf, buf + hlen + body, len - hlen - body);
                len -= hlen + body;
                continue;
            }
            if (hlen + body > cap) {
                cap = hlen + body;
                buf = realloc(buf, cap);
            }
        }
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    free(buf);
    close(fd);
    return NULL;
}

static void *sink_accept(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            return NULL;
        }
        pthread_t t;
        pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static int sink_start(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("sink");
        exit(1);
    }
    pthread_t t;
    pthread_create(&t, NULL, sink_accept, (void *)(intptr_t)fd);
    pthread_detach(t);
    return ntohs(a.sin_port);
}

/* ---- helpers ------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sl_provider *provider(int port, sl_protocol proto, int gzip, uint32_t queue) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.service_name = "bench";
    o.endpoint = url;
    o.protocol = proto;
    o.compression = gzip;
    o.sampler = SL_SAMPLER_ALWAYS_ON;
    o.bsp.max_queue_size = queue;
    o.bsp.max_export_batch_size = 512;
    o.bsp.schedule_delay_ms = 200;
    o.metric_export_interval_ms = 3600 * 1000;
    sl_provider *p;
    if (sl_provider_create(&o, &p) != 0) {
        fprintf(stderr, "provider failed\n");
        exit(1);
    }
    return p;
}

static void one_span(sl_tracer *t, long i) {
    sl_span *s;
    sl_span_start(t, "GET /api/users/{id}", NULL, &s);
    sl_span_set_str(s, "http.request.method", "GET");
    sl_span_set_str(s, "url.path", "/api/users/42");
    sl_span_set_int(s, "http.response.status_code", 200);
    sl_span_set_str(s, "server.address", "users.internal");
    sl_span_set_int(s, "request.seq", i);
    sl_span_end(s, 0);
}

/* ---- span ------------------------------------------------------------------------------ */

static void bench_span(int port) {
    /* The queue holds a whole round, so nothing is dropped: each round of
     * 4096 spans is timed, then flushed (untimed) before the next. The
     * exporter thread drains concurrently on the other core, as in an
     * application. */
    sl_provider *p = provider(port, SL_PROTOCOL_HTTP_PROTOBUF, 0, 8192);
    sl_tracer *t;
    sl_provider_tracer(p, "bench", "1", &t);
    const long round = 4096;
    for (long i = 0; i < 4 * round; i++) { /* warm-up: pool and buffers */
        one_span(t, i);
        if (i % round == round - 1) {
            sl_provider_force_flush(p, 30000);
        }
    }
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        sl_provider_stats before, after;
        sl_provider_stats_get(p, &before);
        double spent = 0;
        unsigned long a0 = atomic_load(&allocs);
        const long rounds = 100;
        for (long r = 0; r < rounds; r++) {
            double t0 = now_s();
            for (long i = 0; i < round; i++) {
                one_span(t, i);
            }
            spent += now_s() - t0;
            sl_provider_force_flush(p, 30000);
        }
        unsigned long a1 = atomic_load(&allocs);
        sl_provider_stats_get(p, &after);
        double n = (double)(rounds * round);
        double ns = spent * 1e9 / n;
        best = ns < best ? ns : best;
        printf("span start+5 attrs+end: %.0f ns/span, %.4f allocs/span (SDK, both threads, "
               "exports included), exported %llu, dropped %llu\n",
               ns, (double)(a1 - a0) / n,
               (unsigned long long)(after.spans_exported - before.spans_exported),
               (unsigned long long)(after.spans_dropped - before.spans_dropped));
    }
    printf("span best: %.0f ns/span\n", best);
    sl_provider_shutdown(p, 5000);
    sl_provider_destroy(p);
}

/* ---- counter ---------------------------------------------------------------------------- */

typedef struct counter_arg {
    sl_instrument *c;
    sl_series *s;
    long n;
    int bound;
} counter_arg;

static void *counter_loop(void *arg) {
    counter_arg *a = arg;
    sl_kv attrs[2] = {SL_KV_STR("http.route", "/api/users/{id}"),
                      SL_KV_INT("http.response.status_code", 200)};
    for (long i = 0; i < a->n; i++) {
        if (a->bound) {
            sl_series_add_int(a->s, 1);
        } else {
            sl_instrument_add_int(a->c, 1, attrs, 2);
        }
    }
    return NULL;
}

static void bench_counter(int port) {
    sl_provider *p = provider(port, SL_PROTOCOL_HTTP_PROTOBUF, 0, 2048);
    sl_meter *m;
    sl_provider_meter(p, "bench", "1", &m);
    sl_instrument *c;
    sl_meter_counter(m, "bench.requests", "{request}", NULL, &c);
    sl_kv attrs[2] = {SL_KV_STR("http.route", "/api/users/{id}"),
                      SL_KV_INT("http.response.status_code", 200)};
    sl_series *s;
    sl_instrument_bind(c, attrs, 2, &s);
    for (int bound = 1; bound >= 0; bound--) {
        for (int threads = 1; threads <= 2; threads++) {
            long n = bound ? 20000000 : 5000000;
            counter_arg args[2];
            pthread_t th[2];
            unsigned long a0 = atomic_load(&allocs);
            double t0 = now_s();
            for (int k = 0; k < threads; k++) {
                args[k] = (counter_arg){c, s, n, bound};
                pthread_create(&th[k], NULL, counter_loop, &args[k]);
            }
            for (int k = 0; k < threads; k++) {
                pthread_join(th[k], NULL);
            }
            double dt = now_s() - t0;
            printf("counter add (%s, %d thread%s): %.1f ns/add per thread, %lu allocs\n",
                   bound ? "bound series" : "2 attributes, lookup", threads, threads > 1 ? "s" : "",
                   dt * 1e9 / (double)n, atomic_load(&allocs) - a0);
        }
    }
    sl_provider_shutdown(p, 5000);
    sl_provider_destroy(p);
}

/* ---- export throughput --------------------------------------------------------------------- */

static void bench_export(int port) {
    static const struct {
        sl_protocol proto;
        int gzip;
        const char *name;
    } modes[] = {{SL_PROTOCOL_HTTP_PROTOBUF, 0, "protobuf"},
                 {SL_PROTOCOL_HTTP_PROTOBUF, 1, "protobuf+gzip"},
                 {SL_PROTOCOL_HTTP_JSON, 0, "json"},
                 {SL_PROTOCOL_HTTP_JSON, 1, "json+gzip"}};
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        sl_provider *p = provider(port, modes[k].proto, modes[k].gzip, 65536);
        sl_tracer *t;
        sl_provider_tracer(p, "bench", "1", &t);
        unsigned long b0 = atomic_load(&sink_bytes), r0 = atomic_load(&sink_requests);
        const long total = 400000, chunk = 32768;
        double t0 = now_s();
        for (long i = 0; i < total; i += chunk) {
            for (long j = 0; j < chunk; j++) {
                one_span(t, i + j);
            }
            sl_provider_force_flush(p, 60000);
        }
        double dt = now_s() - t0;
        sl_provider_stats st;
        sl_provider_stats_get(p, &st);
        unsigned long bytes = atomic_load(&sink_bytes) - b0,
                      reqs = atomic_load(&sink_requests) - r0;
        printf("export %-14s: %.0f spans/s end to end (producer + exporter), %llu exported, "
               "%llu dropped, %lu requests, %.0f bytes/span on the wire\n",
               modes[k].name, (double)st.spans_exported / dt, (unsigned long long)st.spans_exported,
               (unsigned long long)st.spans_dropped, reqs,
               st.spans_exported ? (double)bytes / (double)st.spans_exported : 0.0);
        sl_provider_shutdown(p, 5000);
        sl_provider_destroy(p);
    }
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    int port = sink_start();
    if (strcmp(what, "span") == 0 || strcmp(what, "all") == 0) {
        bench_span(port);
    }
    if (strcmp(what, "counter") == 0 || strcmp(what, "all") == 0) {
        bench_counter(port);
    }
    if (strcmp(what, "export") == 0 || strcmp(what, "all") == 0) {
        bench_export(port);
    }
    return 0;
}
