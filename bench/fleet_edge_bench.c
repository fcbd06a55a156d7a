/*
 * fleet-edge-bench: the fleet edge's benchmarks (bench/fleet_edge.sh starts
 * the processes and calls it; figures in bench/RESULTS.md).
 *
 *   fleet-edge-bench overhead DIRECT_URL GATEWAY_URL N
 *       N sequential GETs on one keep-alive connection each way, interleaved
 *       in rounds of 100 (direct, then through the gateway) so that both see
 *       the same machine; prints p50/p95/p99 of both and the added latency.
 *   fleet-edge-bench throughput URL SECONDS CONNECTIONS
 *       closed loop: CONNECTIONS threads, each one keep-alive connection and
 *       one request at a time; prints requests/s, status counts, p50/p99.
 *   fleet-edge-bench registry REGISTRY_URL INSTANCES PERIOD_S SECONDS PID
 *       registers INSTANCES instances (ttl 3 x PERIOD_S), then heartbeats each
 *       once per PERIOD_S from 4 threads for SECONDS, and reads the CPU time of
 *       process PID (/proc/PID/stat) over that window: prints heartbeats/s,
 *       their p50/p99 latency, the registry's CPU share of one core and RSS.
 * Loopback only; plain libcurl (no tracing) so that only the target's cost
 * is measured.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t sink(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

typedef struct body {
    char data[256];
    size_t len;
} body;

static size_t keep(char *p, size_t size, size_t n, void *ud) {
    body *b = ud;
    size_t take = size * n, room = sizeof(b->data) - 1 - b->len;
    take = take < room ? take : room;
    memcpy(b->data + b->len, p, take);
    b->len += take;
    b->data[b->len] = '\0';
    return size * n;
}

static CURL *handle(void) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    return e;
}

/* One request; returns its status (0 = transport error) and latency. */
static long get(CURL *e, const char *url, uint64_t *ns) {
    curl_easy_setopt(e, CURLOPT_URL, url);
    uint64_t t0 = now_ns();
    CURLcode rc = curl_easy_perform(e);
    *ns = now_ns() - t0;
    long status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    return status;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p) {
    if (n == 0) {
        return 0;
    }
    return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1e6;
}

static int overhead(const char *direct, const char *via, long n) {
    uint64_t *d = calloc((size_t)n, sizeof(*d)), *g = calloc((size_t)n, sizeof(*g));
    CURL *ed = handle(), *eg = handle();
    size_t nd = 0, ng = 0;
    long bad = 0;
    uint64_t ns;
    for (int warm = 0; warm < 200; warm++) {
        get(ed, direct, &ns);
        get(eg, via, &ns);
    }
    for (long done = 0; done < n; done += 100) {
        for (long k = 0; k < 100 && done + k < n; k++) {
            bad += get(ed, direct, &ns) != 200;
            d[nd++] = ns;
        }
        for (long k = 0; k < 100 && done + k < n; k++) {
            bad += get(eg, via, &ns) != 200;
            g[ng++] = ns;
        }
    }
    qsort(d, nd, sizeof(*d), cmp_u64);
    qsort(g, ng, sizeof(*g), cmp_u64);
    printf("requests %ld each way, non-200 %ld\n", n, bad);
    printf("direct   p50 %.3f ms  p95 %.3f ms  p99 %.3f ms\n", pct_ms(d, nd, .5),
           pct_ms(d, nd, .95), pct_ms(d, nd, .99));
    printf("gateway  p50 %.3f ms  p95 %.3f ms  p99 %.3f ms\n", pct_ms(g, ng, .5),
           pct_ms(g, ng, .95), pct_ms(g, ng, .99));
    printf("added    p50 %.3f ms  p95 %.3f ms\n", pct_ms(g, ng, .5) - pct_ms(d, nd, .5),
           pct_ms(g, ng, .95) - pct_ms(d, nd, .95));
    curl_easy_cleanup(ed);
    curl_easy_cleanup(eg);
    free(d);
    free(g);
    return bad > 0;
}

typedef struct tp_ctx {
    const char *url;
    uint64_t until;
    uint64_t *lat;
    size_t n, cap;
    long ok, other, errors;
    long by_status[600];
} tp_ctx;

static void *tp_main(void *arg) {
    tp_ctx *c = arg;
    CURL *e = handle();
    uint64_t ns;
    while (now_ns() < c->until) {
        long s = get(e, c->url, &ns);
        if (s == 200) {
            c->ok++;
        } else if (s == 0) {
            c->errors++;
        } else {
            c->other++;
        }
        if (s > 0 && s < 600) {
            c->by_status[s]++;
        }
        if (c->n < c->cap) {
            c->lat[c->n++] = ns;
        }
    }
    curl_easy_cleanup(e);
    return NULL;
}

static int throughput(const char *url, long secs, long conns) {
    tp_ctx *c = calloc((size_t)conns, sizeof(*c));
    pthread_t *th = calloc((size_t)conns, sizeof(*th));
    uint64_t t0 = now_ns();
    for (long i = 0; i < conns; i++) {
        c[i] = (tp_ctx){.url = url, .until = t0 + (uint64_t)secs * 1000000000ULL, .cap = 2000000};
        c[i].lat = malloc(c[i].cap * sizeof(uint64_t));
        pthread_create(&th[i], NULL, tp_main, &c[i]);
    }
    long ok = 0, other = 0, errors = 0;
    size_t total = 0;
    for (long i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok;
        other += c[i].other;
        errors += c[i].errors;
        total += c[i].n;
    }
    double wall = (double)(now_ns() - t0) / 1e9;
    uint64_t *all = malloc(total * sizeof(*all));
    size_t k = 0;
    for (long i = 0; i < conns; i++) {
        memcpy(all + k, c[i].lat, c[i].n * sizeof(*all));
        k += c[i].n;
        free(c[i].lat);
    }
    qsort(all, k, sizeof(*all), cmp_u64);
    printf("%ld connections, %.1f s: %.0f requests/s (200: %ld, other: %ld, errors: %ld), "
           "p50 %.3f ms, p99 %.3f ms\n",
           conns, wall, (double)(ok + other) / wall, ok, other, errors, pct_ms(all, k, .5),
           pct_ms(all, k, .99));
    for (int st = 100; st < 600; st++) {
        long n = 0;
        for (long i = 0; i < conns; i++) {
            n += c[i].by_status[st];
        }
        if (n > 0 && st != 200) {
            printf("  status %d: %ld\n", st, n);
        }
    }
    free(all);
    free(c);
    free(th);
    return errors > 0;
}

/* --- registry capacity ----------------------------------------------------------- */

typedef struct hb_ctx {
    const char *base;
    char (*ids)[33];
    size_t from, to;
    double period_s;
    uint64_t start, until;
    uint64_t *lat;
    size_t n, cap;
    long ok, bad;
} hb_ctx;

static void *hb_main(void *arg) {
    hb_ctx *c = arg;
    CURL *e = handle();
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    char url[256];
    size_t count = c->to - c->from;
    /* Instance i of this slice beats at start + i * period / count, then every period. */
    for (uint64_t round = 0;; round++) {
        for (size_t i = 0; i < count; i++) {
            uint64_t due = c->start + (uint64_t)((double)round * c->period_s * 1e9) +
                           (uint64_t)((double)i * c->period_s * 1e9 / (double)count);
            uint64_t now = now_ns();
            if (due >= c->until) {
                curl_easy_cleanup(e);
                return NULL;
            }
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000ULL),
                                      (long)((due - now) % 1000000000ULL)};
                nanosleep(&ts, NULL);
            }
            snprintf(url, sizeof(url), "%s/v1/registry/instances/%s/heartbeat", c->base,
                     c->ids[c->from + i]);
            uint64_t ns;
            long s = get(e, url, &ns);
            if (s == 200) {
                c->ok++;
            } else {
                c->bad++;
            }
            if (c->n < c->cap) {
                c->lat[c->n++] = ns;
            }
        }
    }
}

static int read_cpu(long pid, double *cpu_s, long *rss_kb) {
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    const char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    long rss = 0;
    /* After "pid (comm)": state, then fields 4..; utime is 14, stime 15, rss 24. */
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
                            "%*d %*d %*d %*d %*u %*u %ld",
                            &utime, &stime, &rss) != 3) {
        return -1;
    }
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    *rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
    return 0;
}

static int registry(const char *base, long n, long period_s, long secs, long pid) {
    char(*ids)[33] = calloc((size_t)n, sizeof(*ids));
    CURL *e = handle();
    body b;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    char url[256], json[512];
    snprintf(url, sizeof(url), "%s/v1/registry/instances", base);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_URL, url);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(json, sizeof(json),
                 "{\"name\":\"svc-%ld\",\"version\":\"1.%ld.0\",\"address\":"
                 "\"http://10.%ld.%ld.%ld:8080\",\"tags\":[\"bench\",\"zone-%ld\"],\"ttl_s\":%ld}",
                 i % 50, i % 3, (i >> 16) & 255, (i >> 8) & 255, i & 255, i % 4, 3 * period_s);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
        b.len = 0;
        long status = 0;
        if (curl_easy_perform(e) == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        }
        const char *p = strstr(b.data, "\"id\":\"");
        if (status != 201 || p == NULL) {
            fprintf(stderr, "registration %ld failed: HTTP %ld %s\n", i, status, b.data);
            return 1;
        }
        memcpy(ids[i], p + 6, 32);
    }
    double reg_s = (double)(now_ns() - t0) / 1e9;
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    printf("registered %ld instances in %.1f s (%.0f/s)\n", n, reg_s, (double)n / reg_s);

    enum { THREADS = 4 };
    hb_ctx c[THREADS];
    pthread_t th[THREADS];
    double cpu0, cpu1;
    long rss0, rss1;
    if (read_cpu(pid, &cpu0, &rss0) != 0) {
        fprintf(stderr, "cannot read /proc/%ld/stat\n", pid);
        return 1;
    }
    uint64_t start = now_ns();
    for (int t = 0; t < THREADS; t++) {
        c[t] = (hb_ctx){.base = base,
                        .ids = ids,
                        .from = (size_t)(n * t / THREADS),
                        .to = (size_t)(n * (t + 1) / THREADS),
                        .period_s = (double)period_s,
                        .start = start,
                        .until = start + (uint64_t)secs * 1000000000ULL,
                        .cap = 4000000};
        c[t].lat = malloc(c[t].cap * sizeof(uint64_t));
        pthread_create(&th[t], NULL, hb_main, &c[t]);
    }
    long ok = 0, bad = 0;
    size_t total = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        ok += c[t].ok;
        bad += c[t].bad;
        total += c[t].n;
    }
    double wall = (double)(now_ns() - start) / 1e9;
    read_cpu(pid, &cpu1, &rss1);
    uint64_t *all = malloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (int t = 0; t < THREADS; t++) {
        memcpy(all + k, c[t].lat, c[t].n * sizeof(*all));
        k += c[t].n;
        free(c[t].lat);
    }
    qsort(all, k, sizeof(*all), cmp_u64);
    printf("heartbeats: %ld ok, %ld failed in %.1f s = %.0f/s; latency p50 %.3f ms, p99 %.3f ms\n",
           ok, bad, wall, (double)(ok + bad) / wall, pct_ms(all, k, .5), pct_ms(all, k, .99));
    printf("registry CPU: %.2f s over %.1f s = %.1f%% of one core; RSS %ld KiB\n", cpu1 - cpu0,
           wall, 100.0 * (cpu1 - cpu0) / wall, rss1);
    free(all);
    free(ids);
    return bad > 0;
}

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (argc == 5 && strcmp(argv[1], "overhead") == 0) {
        rc = overhead(argv[2], argv[3], strtol(argv[4], NULL, 10));
    } else if (argc == 5 && strcmp(argv[1], "throughput") == 0) {
        rc = throughput(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
    } else if (argc == 7 && strcmp(argv[1], "registry") == 0) {
        rc = registry(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10),
                      strtol(argv[5], NULL, 10), strtol(argv[6], NULL, 10));
    } else {
        fprintf(stderr, "usage: fleet-edge-bench overhead DIRECT_URL GATEWAY_URL N\n"
                        "       fleet-edge-bench throughput URL SECONDS CONNECTIONS\n"
                        "       fleet-edge-bench registry URL INSTANCES PERIOD_S SECONDS PID\n");
    }
    curl_global_cleanup();
    return rc;
}
