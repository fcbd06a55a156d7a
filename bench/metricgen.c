/*
 * metricgen: node-exporter-like metrics for the metrics benchmark
 * (bench/metrics_bench.sh, figures in bench/RESULTS.md).
 *
 * H hosts each expose about 250 series (per-CPU mode counters, memory and
 * filesystem gauges, network and disk counters, load averages, constant info
 * gauges), scraped every 15 s for S steps ending now. Values come from one
 * deterministic function of (host, series, step), rounded as node_exporter
 * reports them, so that both targets get exactly the same samples:
 *
 *   metricgen --hosts H --steps S --prom FILE
 *       writes the samples as Prometheus text with millisecond timestamps
 *       (VictoriaMetrics' /api/v1/import/prometheus);
 *   metricgen --hosts H --steps S --otlp 127.0.0.1:PORT [--connections C]
 *   metricgen --hosts H --steps S --vm 127.0.0.1:PORT [--connections C]
 *       posts one request per (host, scrape) over C keep-alive connections,
 *       closed loop, scrape-major order: OTLP/HTTP protobuf to Sightline's
 *       /v1/metrics (gauges as Gauge, counters as cumulative monotonic Sum,
 *       job/instance from service.name/service.instance.id), or the same
 *       samples as Prometheus text to VictoriaMetrics' import endpoint.
 *       Prints "RESULT samples=N seconds=T samples_per_s=R errors=E".
 *
 * Only loopback targets are accepted. Threads: main and one sender per
 * connection; they share the read-only series table and an atomic cursor.
 */
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MG_INTERVAL_MS 15000
#define MG_MAX_SERIES 512
#define MG_MAX_CONNS 64

typedef enum { MG_COUNTER, MG_GAUGE_SLOW, MG_GAUGE_CONST, MG_LOAD } mg_kind;

typedef struct mg_series {
    const char *name;
    char lname[2][16];
    char lval[2][32];
    int nlabels;
    mg_kind kind;
    double base, rate; /* counters: per-second rate; gauges: level and drift */
} mg_series;

static mg_series g_series[MG_MAX_SERIES];
static int g_nseries;
static int g_hosts = 10, g_steps = 240, g_conns = 4;
static int64_t g_start_ms;

static void add(const char *name, const char *l1, const char *v1, const char *l2, const char *v2,
                mg_kind kind, double base, double rate) {
    mg_series *s = &g_series[g_nseries++];
    s->name = name;
    s->kind = kind;
    s->base = base;
    s->rate = rate;
    s->nlabels = 0;
    if (l1 != NULL) {
        snprintf(s->lname[0], sizeof(s->lname[0]), "%s", l1);
        snprintf(s->lval[0], sizeof(s->lval[0]), "%s", v1);
        s->nlabels = 1;
    }
    if (l2 != NULL) {
        snprintf(s->lname[1], sizeof(s->lname[1]), "%s", l2);
        snprintf(s->lval[1], sizeof(s->lval[1]), "%s", v2);
        s->nlabels = 2;
    }
}

static void build_series(void) {
    static const char *modes[] = {"idle", "user", "system", "iowait", "irq", "softirq", "steal",
                                  "nice"};
    static const double mode_rate[] = {0.85, 0.08, 0.04, 0.01, 0.001, 0.005, 0.0, 0.002};
    for (int c = 0; c < 8; c++) {
        char cpu[8];
        snprintf(cpu, sizeof(cpu), "%d", c);
        for (int m = 0; m < 8; m++) {
            add("node_cpu_seconds_total", "cpu", cpu, "mode", modes[m], MG_COUNTER, 1e5,
                mode_rate[m]);
        }
    }
    static const char *mem[] = {"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached",
                                "SwapCached", "Active", "Inactive", "Active_anon",
                                "Inactive_anon", "Active_file", "Inactive_file", "Unevictable",
                                "Mlocked", "SwapTotal", "SwapFree", "Dirty", "Writeback",
                                "AnonPages", "Mapped", "Shmem", "Slab", "SReclaimable",
                                "SUnreclaim", "KernelStack", "PageTables", "NFS_Unstable",
                                "Bounce", "WritebackTmp", "CommitLimit", "Committed_AS",
                                "VmallocTotal", "VmallocUsed", "VmallocChunk", "HugePages_Total",
                                "HugePages_Free", "Hugepagesize", "DirectMap4k", "DirectMap2M",
                                "DirectMap1G"};
    static char mem_names[40][48];
    for (int i = 0; i < 40; i++) {
        snprintf(mem_names[i], sizeof(mem_names[i]), "node_memory_%s_bytes", mem[i]);
        add(mem_names[i], NULL, NULL, NULL, NULL,
            i % 3 == 0 ? MG_GAUGE_CONST : MG_GAUGE_SLOW, (double)(1u << 30) * (1 + i % 7), 4096);
    }
    static const char *dev[] = {"eth0", "eth1", "lo", "docker0"};
    static const char *net[] = {"node_network_receive_bytes_total",
                                "node_network_transmit_bytes_total",
                                "node_network_receive_packets_total",
                                "node_network_transmit_packets_total",
                                "node_network_receive_errs_total",
                                "node_network_transmit_errs_total",
                                "node_network_receive_drop_total",
                                "node_network_transmit_drop_total"};
    for (int d = 0; d < 4; d++) {
        for (int k = 0; k < 8; k++) {
            add(net[k], "device", dev[d], NULL, NULL, MG_COUNTER, 1e9,
                k < 2 ? 2e5 / (d + 1) : k < 4 ? 300.0 / (d + 1) : 0.0);
        }
    }
    static const char *disks[] = {"sda", "sdb", "nvme0n1", "nvme1n1"};
    static const char *dio[] = {"node_disk_reads_completed_total",
                                "node_disk_writes_completed_total",
                                "node_disk_read_bytes_total", "node_disk_written_bytes_total",
                                "node_disk_io_time_seconds_total"};
    static const double drate[] = {20, 40, 4e5, 9e5, 0.05};
    for (int d = 0; d < 4; d++) {
        for (int k = 0; k < 5; k++) {
            add(dio[k], "device", disks[d], NULL, NULL, MG_COUNTER, 1e6, drate[k]);
        }
    }
    static const char *mounts[] = {"/", "/boot", "/var", "/home", "/tmp", "/srv", "/data", "/opt"};
    static const char *fs[] = {"node_filesystem_size_bytes", "node_filesystem_free_bytes",
                               "node_filesystem_avail_bytes", "node_filesystem_files",
                               "node_filesystem_files_free"};
    for (int m = 0; m < 8; m++) {
        for (int k = 0; k < 5; k++) {
            add(fs[k], "mountpoint", mounts[m], NULL, NULL,
                k == 0 || k == 3 ? MG_GAUGE_CONST : MG_GAUGE_SLOW, 5e10 * (m + 1), 4096);
        }
    }
    add("node_load1", NULL, NULL, NULL, NULL, MG_LOAD, 1.5, 0.3);
    add("node_load5", NULL, NULL, NULL, NULL, MG_LOAD, 1.2, 0.1);
    add("node_load15", NULL, NULL, NULL, NULL, MG_LOAD, 1.0, 0.05);
    static char misc[50][40];
    for (int i = 0; i < 50; i++) {
        snprintf(misc[i], sizeof(misc[i]), "node_misc_state_%02d", i);
        add(misc[i], NULL, NULL, NULL, NULL, MG_GAUGE_CONST, (double)(i % 5), 0);
    }
}

/* A cheap deterministic hash -> [0, 1). */
static double unit_noise(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ b * 0xc2b2ae3d27d4eb4full ^ c * 0x165667b19e3779f9ull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return (double)(h >> 11) / 9007199254740992.0;
}

static double value(int host, int si, int step) {
    const mg_series *s = &g_series[si];
    double r;
    switch (s->kind) {
    case MG_COUNTER: {
        /* Rate with per-host variation; the value is the integral, reported
         * with two decimals (seconds) or as an integer (bytes, packets). */
        double rate = s->rate * (0.5 + unit_noise((uint64_t)host, (uint64_t)si, 0));
        double v = s->base * (1 + host % 3) + rate * 15.0 * step +
                   rate * 15.0 * unit_noise((uint64_t)host, (uint64_t)si, (uint64_t)step);
        r = s->rate < 10 ? round(v * 100) / 100 : floor(v);
        break;
    }
    case MG_GAUGE_SLOW:
        /* Changes now and then, by whole pages. */
        r = s->base + s->rate * floor(unit_noise((uint64_t)host, (uint64_t)si,
                                                 (uint64_t)(step / 4)) * 1000);
        break;
    case MG_LOAD:
        r = round((s->base + s->rate * sin(step / 20.0 + host)) * 100) / 100;
        break;
    default:
        r = s->base;
        break;
    }
    return r;
}

/* --- Prometheus text -------------------------------------------------------------- */

static void write_series_text(FILE *f, int host, int si, int step) {
    const mg_series *s = &g_series[si];
    fprintf(f, "%s{job=\"node\",instance=\"host-%03d\"", s->name, host);
    for (int i = 0; i < s->nlabels; i++) {
        fprintf(f, ",%s=\"%s\"", s->lname[i], s->lval[i]);
    }
    fprintf(f, "} %.17g %lld\n", value(host, si, step),
            (long long)(g_start_ms + (int64_t)step * MG_INTERVAL_MS));
}

/* --- OTLP --------------------------------------------------------------------------- */

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_num;

/* One host's request: the structure is built once, times and values are
 * updated per scrape before packing. */
typedef struct host_req {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm, *rms[1];
    Opentelemetry__Proto__Resource__V1__Resource res;
    pb_kv rkv[2], *rkvp[2];
    pb_any rav[2];
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm, *sms[1];
    Opentelemetry__Proto__Metrics__V1__Metric metrics[MG_MAX_SERIES], *mp[MG_MAX_SERIES];
    Opentelemetry__Proto__Metrics__V1__Gauge gauges[MG_MAX_SERIES];
    Opentelemetry__Proto__Metrics__V1__Sum sums[MG_MAX_SERIES];
    pb_num pts[MG_MAX_SERIES], *ptp[MG_MAX_SERIES];
    pb_kv akv[MG_MAX_SERIES][2], *akvp[MG_MAX_SERIES][2];
    pb_any aav[MG_MAX_SERIES][2];
    int pt_series[MG_MAX_SERIES];
    char instance[24];
} host_req;

static void kv_init(pb_kv *kv, pb_any *av, const char *k, const char *v) {
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)(uintptr_t)v;
    kv->key = (char *)(uintptr_t)k;
    kv->value = av;
}

static host_req *host_req_create(int host) {
    host_req *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    snprintf(h->instance, sizeof(h->instance), "host-%03d", host);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&h->req);
    opentelemetry__proto__metrics__v1__resource_metrics__init(&h->rm);
    opentelemetry__proto__resource__v1__resource__init(&h->res);
    opentelemetry__proto__metrics__v1__scope_metrics__init(&h->sm);
    kv_init(&h->rkv[0], &h->rav[0], "service.name", "node");
    kv_init(&h->rkv[1], &h->rav[1], "service.instance.id", h->instance);
    h->rkvp[0] = &h->rkv[0];
    h->rkvp[1] = &h->rkv[1];
    h->res.attributes = h->rkvp;
    h->res.n_attributes = 2;
    h->rm.resource = &h->res;
    h->rms[0] = &h->rm;
    h->req.resource_metrics = h->rms;
    h->req.n_resource_metrics = 1;
    h->sms[0] = &h->sm;
    h->rm.scope_metrics = h->sms;
    h->rm.n_scope_metrics = 1;
    /* One Metric per series name run (series of a name are adjacent). */
    int nm = 0;
    for (int i = 0; i < g_nseries; i++) {
        const mg_series *s = &g_series[i];
        pb_num *p = &h->pts[i];
        opentelemetry__proto__metrics__v1__number_data_point__init(p);
        p->has_time_unix_nano = 1;
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        for (int l = 0; l < s->nlabels; l++) {
            kv_init(&h->akv[i][l], &h->aav[i][l], s->lname[l], s->lval[l]);
            h->akvp[i][l] = &h->akv[i][l];
        }
        p->attributes = h->akvp[i];
        p->n_attributes = (size_t)s->nlabels;
        h->ptp[i] = p;
        if (i == 0 || strcmp(g_series[i - 1].name, s->name) != 0) {
            Opentelemetry__Proto__Metrics__V1__Metric *m = &h->metrics[nm];
            opentelemetry__proto__metrics__v1__metric__init(m);
            m->name = (char *)(uintptr_t)s->name;
            if (s->kind == MG_COUNTER) {
                Opentelemetry__Proto__Metrics__V1__Sum *sum = &h->sums[nm];
                opentelemetry__proto__metrics__v1__sum__init(sum);
                sum->aggregation_temporality = 2;
                sum->has_aggregation_temporality = 1;
                sum->is_monotonic = 1;
                sum->has_is_monotonic = 1;
                sum->data_points = &h->ptp[i];
                m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
                m->sum = sum;
            } else {
                Opentelemetry__Proto__Metrics__V1__Gauge *g = &h->gauges[nm];
                opentelemetry__proto__metrics__v1__gauge__init(g);
                g->data_points = &h->ptp[i];
                m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
                m->gauge = g;
            }
            h->mp[nm++] = m;
        }
        Opentelemetry__Proto__Metrics__V1__Metric *m = &h->metrics[nm - 1];
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
            m->sum->n_data_points++;
        } else {
            m->gauge->n_data_points++;
        }
    }
    h->sm.metrics = h->mp;
    h->sm.n_metrics = (size_t)nm;
    return h;
}

/* --- the sender --------------------------------------------------------------------- */

typedef struct target {
    struct sockaddr_in addr;
    bool vm;
    atomic_long next;
    atomic_long errors;
} target;

static int connect_to(const struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one response; returns its status or -1. */
static int read_response(int fd) {
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0) {
            return -1;
        }
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            if (have >= sizeof(buf) - 1) {
                return -1;
            }
            continue;
        }
        int status = atoi(buf + 9);
        long clen = 0;
        for (char *q = buf; q < end; q++) {
            if ((*q == 'c' || *q == 'C') && strncmp(q + 1, "ontent-", 7) == 0 &&
                (q[8] == 'l' || q[8] == 'L') && strncmp(q + 9, "ength:", 6) == 0) {
                clen = atol(q + 15);
                break;
            }
        }
        size_t body_have = have - (size_t)(end + 4 - buf);
        while ((long)body_have < clen) {
            r = recv(fd, buf, sizeof(buf), 0);
            if (r <= 0) {
                return -1;
            }
            body_have += (size_t)r;
        }
        return status;
    }
}

static void *sender(void *arg) {
    target *t = arg;
    int fd = connect_to(&t->addr);
    host_req **hosts = calloc((size_t)g_hosts, sizeof(*hosts));
    size_t cap = 1 << 20;
    char *body = malloc(cap), *req = malloc(cap + 512);
    long total = (long)g_hosts * g_steps;
    for (;;) {
        long k = atomic_fetch_add(&t->next, 1);
        if (k >= total || fd < 0) {
            break;
        }
        int step = (int)(k / g_hosts), host = (int)(k % g_hosts);
        size_t blen;
        if (t->vm) {
            FILE *f = fmemopen(body, cap, "w");
            for (int i = 0; i < g_nseries; i++) {
                write_series_text(f, host, i, step);
            }
            blen = (size_t)ftell(f);
            fclose(f);
        } else {
            if (hosts[host] == NULL) {
                hosts[host] = host_req_create(host);
            }
            host_req *h = hosts[host];
            uint64_t t_ns = (uint64_t)(g_start_ms + (int64_t)step * MG_INTERVAL_MS) * 1000000u;
            for (int i = 0; i < g_nseries; i++) {
                h->pts[i].time_unix_nano = t_ns;
                h->pts[i].as_double = value(host, i, step);
            }
            blen = protobuf_c_message_pack(&h->req.base, (uint8_t *)body);
        }
        int hl = snprintf(req, 512,
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          t->vm ? "/api/v1/import/prometheus" : "/v1/metrics",
                          t->vm ? "text/plain" : "application/x-protobuf", blen);
        memcpy(req + hl, body, blen);
        for (int attempt = 0; attempt < 50; attempt++) {
            int st = -1;
            if (send_all(fd, req, (size_t)hl + blen)) {
                st = read_response(fd);
            }
            if (st >= 200 && st < 300) {
                break;
            }
            atomic_fetch_add(&t->errors, 1);
            if (st < 0) {
                close(fd);
                fd = connect_to(&t->addr);
            }
            usleep(100000);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    for (int i = 0; i < g_hosts; i++) {
        free(hosts[i]);
    }
    free(hosts);
    free(body);
    free(req);
    return NULL;
}

static int parse_target(const char *s, struct sockaddr_in *a) {
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
        (ntohl(a->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "metricgen: only loopback targets are allowed\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *prom = NULL, *otlp = NULL, *vm = NULL;
    int64_t start_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hosts") == 0 && i + 1 < argc) {
            g_hosts = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
            g_steps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc) {
            g_conns = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--start-ms") == 0 && i + 1 < argc) {
            start_ms = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--prom") == 0 && i + 1 < argc) {
            prom = argv[++i];
        } else if (strcmp(argv[i], "--otlp") == 0 && i + 1 < argc) {
            otlp = argv[++i];
        } else if (strcmp(argv[i], "--vm") == 0 && i + 1 < argc) {
            vm = argv[++i];
        } else {
            fprintf(stderr, "usage: metricgen --hosts H --steps S [--start-ms T] "
                            "(--prom FILE | --otlp ADDR:PORT | --vm ADDR:PORT) [--connections C]\n");
            return 2;
        }
    }
    if (g_hosts < 1 || g_steps < 1 || g_conns < 1 || g_conns > MG_MAX_CONNS) {
        fprintf(stderr, "metricgen: bad sizes\n");
        return 2;
    }
    build_series();
    if (start_ms < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000;
        start_ms = (now_ms - (int64_t)g_steps * MG_INTERVAL_MS) / MG_INTERVAL_MS * MG_INTERVAL_MS;
    }
    g_start_ms = start_ms;
    long samples = (long)g_hosts * g_steps * g_nseries;
    if (prom != NULL) {
        FILE *f = fopen(prom, "w");
        if (f == NULL) {
            perror(prom);
            return 1;
        }
        for (int step = 0; step < g_steps; step++) {
            for (int h = 0; h < g_hosts; h++) {
                for (int i = 0; i < g_nseries; i++) {
                    write_series_text(f, h, i, step);
                }
            }
        }
        fclose(f);
        printf("RESULT samples=%ld series=%d start_ms=%lld\n", samples, g_hosts * g_nseries,
               (long long)g_start_ms);
        return 0;
    }
    target t = {0};
    t.vm = vm != NULL;
    if ((otlp == NULL && vm == NULL) || parse_target(otlp != NULL ? otlp : vm, &t.addr) != 0) {
        fprintf(stderr, "metricgen: need --prom, --otlp or --vm\n");
        return 2;
    }
    if (g_conns > g_hosts) {
        g_conns = g_hosts; /* keeps one host's scrapes in order */
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[MG_MAX_CONNS];
    for (int i = 0; i < g_conns; i++) {
        pthread_create(&th[i], NULL, sender, &t);
    }
    for (int i = 0; i < g_conns; i++) {
        pthread_join(th[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("RESULT samples=%ld series=%d seconds=%.3f samples_per_s=%.0f errors=%ld start_ms=%lld\n",
           samples, g_hosts * g_nseries, secs, (double)samples / secs, atomic_load(&t.errors),
           (long long)g_start_ms);
    return 0;
}
