/*
 * loadgen: a closed-loop OTLP/HTTP load generator for the benchmark.
 *
 * It pre-encodes K distinct spangen requests, then runs one thread per
 * keep-alive connection, each with exactly one request outstanding: send a
 * POST /v1/traces (application/x-protobuf), read the whole response (status
 * line, headers, Content-Length or chunked body), record the latency, send the
 * next. Every send gets fresh trace, span and parent ids (their bytes are XORed with a
 * per-send salt, so traces never merge across sends and nothing can dedup),
 * without re-encoding. 429 and 503 are counted and retried after a short sleep
 * that loosely honours Retry-After. The run is bounded by a duration (default
 * 20 s, at most 600 s) and optionally a request count. Only loopback targets
 * are accepted: this tool must never load someone else's server.
 *
 * Output: a human summary and one machine-readable line starting "RESULT".
 *
 * Threads: main (setup, summary) and one worker per connection. Workers share
 * only read-only payloads and a few atomics; each keeps its own counters and
 * latency samples, merged by main after join.
 */
#include "loggen.h"
#include "spangen.h"

#include "sl_err.h"
#include "sl_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_CONNS 256
#define LG_MAX_DURATION_S 600
#define LG_IO_TIMEOUT_S 10
#define LG_MAX_LINE 8192
#define LG_MAX_BODY (1u << 20)
#define LG_MAX_SAMPLES_PER_WORKER (4u << 20)

typedef struct req_tmpl {
    uint8_t *bytes; /* request line + headers + body */
    size_t size;
    size_t *id_offs; /* offsets of trace ids within bytes */
    size_t nids;
} req_tmpl;

typedef struct shared {
    const req_tmpl *reqs;
    size_t nreqs;
    size_t spans_per_req;
    struct sockaddr_in addr;
    uint64_t measure_start; /* monotonic ns; sends before it are warm-up */
    uint64_t deadline;      /* monotonic ns */
    uint64_t max_requests;  /* 0: bounded by time only */
    uint64_t salt_base;
    bool rekey;
    int nworkers;
    atomic_uint_fast64_t started; /* requests begun (count limit) */
    atomic_uint_fast64_t sends;   /* salt sequence */
    atomic_int reported;          /* unexpected answers printed so far */
} shared;

typedef struct reader {
    int fd;
    size_t start;
    size_t end;
    uint8_t buf[65536];
} reader;

typedef struct response {
    int status;
    bool close;
    bool protobuf;
    int64_t retry_after_s; /* -1: absent */
    sl_buf body;
} response;

typedef struct counters {
    uint64_t ok; /* 2xx */
    uint64_t s429;
    uint64_t s503;
    uint64_t other;
    uint64_t io_errors;
    uint64_t connects;
    uint64_t spans_acked;
    uint64_t spans_rejected;
    uint64_t bytes_sent;
} counters;

typedef struct worker {
    pthread_t thread;
    shared *sh;
    int id;
    uint8_t *sendbuf;
    size_t sendcap;
    uint64_t *lat_ns;
    size_t nlat;
    size_t caplat;
    counters c;
    uint64_t end_ns;
    reader rd;
    response resp;
} worker;

/* --- HTTP/1.1 client ------------------------------------------------------ */

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int connect_to(const struct sockaddr_in *addr, int *out) {
    int rc = 0;
    int one = 1;
    struct timeval tv = {LG_IO_TIMEOUT_S, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        rc = -errno;
        goto fail;
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        rc = -errno;
        goto fail;
    }
    *out = fd;
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into r. Returns the count, or -ECONNRESET on EOF, -errno. */
static ssize_t rd_fill(reader *r) {
    if (r->start > 0 && r->start == r->end) {
        r->start = r->end = 0;
    }
    if (r->end == sizeof(r->buf)) {
        if (r->start == 0) {
            return -E2BIG;
        }
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    for (;;) {
        ssize_t n = recv(r->fd, r->buf + r->end, sizeof(r->buf) - r->end, 0);
        if (n > 0) {
            r->end += (size_t)n;
            return n;
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Returns the next CRLF-terminated line (without CRLF), valid until the next
 * reader call. Returns 0, -E2BIG (line too long) or an I/O error. */
static int rd_line(reader *r, const char **line, size_t *len) {
    size_t scanned = r->start;
    for (;;) {
        for (size_t i = scanned; i + 1 < r->end; i++) {
            if (r->buf[i] == '\r' && r->buf[i + 1] == '\n') {
                *line = (const char *)r->buf + r->start;
                *len = i - r->start;
                r->start = i + 2;
                return 0;
            }
        }
        if (r->end - r->start > LG_MAX_LINE) {
            return -E2BIG;
        }
        size_t had = r->end - r->start;
        ssize_t n = rd_fill(r);
        if (n < 0) {
            return (int)n;
        }
        scanned = r->start + (had > 0 ? had - 1 : 0);
    }
}

/* Consumes n body bytes, keeping up to LG_MAX_BODY of them in keep. */
static int rd_body(reader *r, size_t n, sl_buf *keep) {
    while (n > 0) {
        if (r->start == r->end) {
            ssize_t got = rd_fill(r);
            if (got < 0) {
                return (int)got;
            }
        }
        size_t take = r->end - r->start < n ? r->end - r->start : n;
        if (keep->len + take <= LG_MAX_BODY && sl_buf_append(keep, r->buf + r->start, take) != 0) {
            return SL_ENOMEM;
        }
        r->start += take;
        n -= take;
    }
    return 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen) {
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) {
        return false;
    }
    const char *v = line + nl + 1;
    const char *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    *value = v;
    *vlen = (size_t)(e - v);
    return true;
}

static bool contains_ci(const char *s, size_t len, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++) {
        if (strncasecmp(s + i, needle, nl) == 0) {
            return true;
        }
    }
    return false;
}

/* Reads one whole response. Returns 0, SL_EDECODE (malformed) or an I/O
 * error; the connection is unusable after an error. */
static int read_response(reader *r, response *resp) {
    const char *line = NULL;
    size_t len = 0;
    const char *v;
    size_t vlen;
    uint64_t content_length = 0;
    bool have_length = false;
    bool chunked = false;
    uint64_t u = 0;
    resp->status = 0;
    resp->close = false;
    resp->protobuf = false;
    resp->retry_after_s = -1;
    resp->body.len = 0;

    int rc = rd_line(r, &line, &len);
    if (rc != 0) {
        return rc;
    }
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
        sl_parse_u64((sl_str){line + 9, 3}, &u) != 0) {
        return SL_EDECODE;
    }
    resp->status = (int)u;
    if (line[7] == '0') {
        resp->close = true; /* HTTP/1.0 closes unless told otherwise */
    }
    for (;;) {
        rc = rd_line(r, &line, &len);
        if (rc != 0) {
            return rc;
        }
        if (len == 0) {
            break;
        }
        if (header_is(line, len, "content-length", &v, &vlen)) {
            if (sl_parse_u64((sl_str){v, vlen}, &content_length) != 0) {
                return SL_EDECODE;
            }
            have_length = true;
        } else if (header_is(line, len, "transfer-encoding", &v, &vlen)) {
            chunked = contains_ci(v, vlen, "chunked");
        } else if (header_is(line, len, "connection", &v, &vlen)) {
            if (contains_ci(v, vlen, "close")) {
                resp->close = true;
            } else if (contains_ci(v, vlen, "keep-alive")) {
                resp->close = false;
            }
        } else if (header_is(line, len, "retry-after", &v, &vlen)) {
            if (sl_parse_u64((sl_str){v, vlen}, &u) == 0) {
                resp->retry_after_s = (int64_t)(u > 3600 ? 3600 : u);
            }
        } else if (header_is(line, len, "content-type", &v, &vlen)) {
            resp->protobuf = contains_ci(v, vlen, "protobuf");
        }
    }
    if (chunked) {
        for (;;) {
            rc = rd_line(r, &line, &len);
            if (rc != 0) {
                return rc;
            }
            size_t hl = 0;
            uint64_t size = 0;
            while (hl < len && hl < 16) {
                char c = line[hl];
                int d = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (d < 0) {
                    break;
                }
                size = size * 16 + (uint64_t)d;
                hl++;
            }
            if (hl == 0) {
                return SL_EDECODE;
            }
            if (size == 0) {
                break;
            }
            rc = rd_body(r, (size_t)size, &resp->body);
            if (rc == 0) {
                rc = rd_line(r, &line, &len);
            }
            if (rc != 0) {
                return rc;
            }
            if (len != 0) {
                return SL_EDECODE;
            }
        }
        /* Trailers, up to the empty line. */
        do {
            rc = rd_line(r, &line, &len);
            if (rc != 0) {
                return rc;
            }
        } while (len != 0);
        return 0;
    }
    if (have_length) {
        return rd_body(r, (size_t)content_length, &resp->body);
    }
    if (resp->status == 204 || resp->status == 304 || resp->status / 100 == 1) {
        return 0;
    }
    /* No framing: the body runs to the end of the connection. */
    resp->close = true;
    for (;;) {
        ssize_t n = rd_fill(r);
        if (n == -ECONNRESET) {
            break;
        }
        if (n < 0) {
            return (int)n;
        }
        rc = rd_body(r, r->end - r->start, &resp->body);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Rejected spans reported in a protobuf ExportTraceServiceResponse body. */
static uint64_t rejected_spans(const response *resp) {
    if (!resp->protobuf || resp->body.len == 0) {
        return 0;
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *m =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, resp->body.len, resp->body.data);
    uint64_t n = 0;
    if (m != NULL) {
        if (m->partial_success != NULL && m->partial_success->rejected_spans > 0) {
            n = (uint64_t)m->partial_success->rejected_spans;
        }
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
            m, NULL);
    }
    return n;
}

/* --- workers ---------------------------------------------------------------- */

static void record_latency(worker *w, uint64_t ns) {
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat == 0 ? 4096 : w->caplat * 2;
        uint64_t *p =
            cap <= LG_MAX_SAMPLES_PER_WORKER ? realloc(w->lat_ns, cap * sizeof(*p)) : NULL;
        if (p == NULL) {
            return; /* the sample is lost, not the run */
        }
        w->lat_ns = p;
        w->caplat = cap;
    }
    w->lat_ns[w->nlat++] = ns;
}

static void report_unexpected(worker *w, const response *resp) {
    if (atomic_fetch_add(&w->sh->reported, 1) >= 5) {
        return;
    }
    size_t n = resp->body.len < 200 ? resp->body.len : 200;
    fprintf(stderr, "loadgen: connection %d: HTTP %d: %.*s\n", w->id, resp->status, (int)n,
            resp->protobuf ? "(protobuf)" : (const char *)resp->body.data);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    int fd = -1;
    bool retry = false;
    size_t next = (size_t)w->id;
    const req_tmpl *rq = NULL;
    sl_buf_init(&w->resp.body, 0);

    for (;;) {
        uint64_t now = sl_mono_nano();
        if (now >= sh->deadline) {
            break;
        }
        if (fd < 0) {
            int rc = connect_to(&sh->addr, &fd);
            if (rc != 0) {
                w->c.io_errors++;
                if (w->c.io_errors <= 1) {
                    fprintf(stderr, "loadgen: connection %d: connect: %s\n", w->id, strerror(-rc));
                }
                sleep_ms(100);
                continue;
            }
            w->c.connects++;
            w->rd.fd = fd;
            w->rd.start = w->rd.end = 0;
        }
        if (!retry) {
            if (sh->max_requests != 0 && atomic_fetch_add(&sh->started, 1) >= sh->max_requests) {
                break;
            }
            rq = &sh->reqs[next % sh->nreqs];
            next += (size_t)sh->nworkers;
            memcpy(w->sendbuf, rq->bytes, rq->size);
            if (sh->rekey) {
                uint64_t seq = sh->salt_base + atomic_fetch_add(&sh->sends, 1);
                uint64_t salt = seq * 0x9e3779b97f4a7c15ull;
                salt ^= salt >> 29;
                spangen_rekey8(w->sendbuf, rq->id_offs, rq->nids, salt | 1);
            }
        }
        retry = false;
        uint64_t t0 = sl_mono_nano();
        int rc = send_all(fd, w->sendbuf, rq->size);
        if (rc == 0) {
            rc = read_response(&w->rd, &w->resp);
        }
        uint64_t t1 = sl_mono_nano();
        bool counted = t0 >= sh->measure_start;
        if (rc != 0) {
            /* The request may or may not have been stored; it is not resent. */
            if (counted) {
                w->c.io_errors++;
            }
            if (w->c.io_errors == 1 && counted) {
                fprintf(stderr, "loadgen: connection %d: %s\n", w->id,
                        rc == SL_EDECODE ? "malformed response" : strerror(-rc));
            }
            close(fd);
            fd = -1;
            continue;
        }
        if (counted) {
            w->c.bytes_sent += rq->size;
        }
        int st = w->resp.status;
        if (st >= 200 && st < 300) {
            if (counted) {
                uint64_t rej = rejected_spans(&w->resp);
                w->c.ok++;
                w->c.spans_rejected += rej;
                w->c.spans_acked += sh->spans_per_req - (rej < sh->spans_per_req ? rej : 0);
                record_latency(w, t1 - t0);
            }
        } else if (st == 429 || st == 503) {
            if (counted) {
                *(st == 429 ? &w->c.s429 : &w->c.s503) += 1;
            }
            /* Back off briefly: Retry-After is in seconds, which would idle a
             * benchmark; honour it loosely, capped at 250 ms. */
            uint64_t ms = w->resp.retry_after_s > 0 ? (uint64_t)w->resp.retry_after_s * 1000 : 20;
            sleep_ms(ms > 250 ? 250 : ms);
            retry = true;
        } else {
            if (counted) {
                w->c.other++;
            }
            report_unexpected(w, &w->resp);
        }
        if (w->resp.close) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    w->end_ns = sl_mono_nano();
    sl_buf_free(&w->resp.body);
    return NULL;
}

/* --- setup and summary ------------------------------------------------------ */

static void usage(FILE *f) {
    fputs("usage: loadgen --port P [options]\n"
          "  --host H          loopback address only: 127.x.y.z or localhost (default "
          "127.0.0.1)\n"
          "  --port P          OTLP/HTTP port (required)\n"
          "  --path PATH       default /v1/traces\n"
          "  --connections N   keep-alive connections, one thread each (default 8, max 256)\n"
          "  --duration S      seconds of measured load (default 20, max 600)\n"
          "  --warmup S        seconds of unmeasured load before (default 0)\n"
          "  --requests N      stop after N requests (default: duration only)\n"
          "  --spans N         spans per request (default 500)\n"
          "  --distinct K      distinct pre-encoded requests (default 64)\n"
          "  --seed N          spangen seed (default 1)\n"
          "  --services N      services in the fleet, 5..10 (default: from the seed)\n"
          "  --tenant T        send X-Scope-OrgID: T\n"
          "  --no-rekey        resend the K payloads unchanged (same trace ids)\n"
          "  --logs            send loggen log requests to /v1/logs instead (--spans is then\n"
          "                    records per request, and the figures labelled spans count\n"
          "                    log records; payloads are resent unchanged)\n"
          "prints a summary and one machine-readable line starting with RESULT\n",
          f);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double q) {
    if (n == 0) {
        return 0.0;
    }
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

/* Resolves host to a loopback IPv4 address. Returns 0 or SL_EINVAL. */
static int loopback_addr(const char *host, struct in_addr *out) {
    struct in_addr a;
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
        return SL_EINVAL;
    }
    *out = a;
    return 0;
}

/* One request body of n loggen records (the --logs mode). */
static int logs_body(loggen *lg, size_t n, sl_buf *body) {
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_log_record *recs;
    int rc = loggen_records(lg, n, &a, &recs);
    if (rc == 0) {
        rc = loggen_pack(recs, n, body);
    }
    sl_arena_free(&a);
    return rc;
}

static int build_requests(const spangen_options *o, bool logs, size_t k, size_t nspans,
                          const char *host, uint16_t port, const char *path, const char *tenant,
                          req_tmpl *reqs, size_t *max_size) {
    spangen *g = NULL;
    loggen *lg = NULL;
    sl_buf body;
    sl_buf head;
    sl_buf_init(&body, 0);
    sl_buf_init(&head, 64u << 20);
    int rc = logs ? loggen_create(o->seed, 0, &lg) : spangen_create(o, &g);
    if (rc != 0) {
        goto out;
    }
    *max_size = 0;
    for (size_t i = 0; i < k; i++) {
        body.len = 0;
        head.len = 0;
        rc = logs ? logs_body(lg, nspans, &body) : spangen_request(g, nspans, &body);
        if (rc != 0) {
            goto out;
        }
        rc =
            sl_buf_printf(&head,
                          "POST %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: sightline-loadgen/0.1\r\n"
                          "Content-Type: application/x-protobuf\r\nContent-Length: %zu\r\n",
                          path, host, (unsigned)port, body.len);
        if (rc == 0 && tenant != NULL) {
            rc = sl_buf_printf(&head, "X-Scope-OrgID: %s\r\n", tenant);
        }
        if (rc == 0) {
            rc = sl_buf_append_str(&head, "\r\n");
        }
        size_t hdr_size = head.len;
        if (rc == 0) {
            rc = sl_buf_append(&head, body.data, body.len);
        }
        reqs[i].id_offs = rc == 0 ? calloc(4 * nspans, sizeof(size_t)) : NULL;
        if (rc == 0 && reqs[i].id_offs == NULL) {
            rc = SL_ENOMEM;
        }
        if (rc == 0 && !logs) {
            rc = spangen_find_ids(body.data, body.len, reqs[i].id_offs, 4 * nspans, &reqs[i].nids);
        }
        if (rc != 0) {
            goto out;
        }
        for (size_t j = 0; j < reqs[i].nids; j++) {
            reqs[i].id_offs[j] += hdr_size;
        }
        reqs[i].bytes = sl_buf_take(&head, &reqs[i].size);
        if (reqs[i].size > *max_size) {
            *max_size = reqs[i].size;
        }
    }
out:
    spangen_destroy(g);
    loggen_destroy(lg);
    sl_buf_free(&body);
    sl_buf_free(&head);
    return rc;
}

int main(int argc, char **argv) {
    spangen_options o;
    spangen_options_init(&o);
    const char *host = "127.0.0.1";
    const char *path = "/v1/traces";
    const char *tenant = NULL;
    uint64_t port = 0;
    uint64_t conns = 8;
    uint64_t duration_s = 20;
    uint64_t warmup_s = 0;
    uint64_t max_requests = 0;
    uint64_t nspans = 500;
    uint64_t k = 64;
    uint64_t v = 0;
    bool rekey = true;
    bool logs = false;
    int rc = 0;
    req_tmpl *reqs = NULL;
    worker *ws = NULL;
    uint64_t *all = NULL;
    int started = 0;
    static shared sh;

    for (int i = 1, step = 2; i < argc; i += step) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        step = 2;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            goto out;
        }
        if (strcmp(a, "--no-rekey") == 0) {
            rekey = false;
            step = 1;
            continue;
        }
        if (strcmp(a, "--logs") == 0) {
            logs = true;
            rekey = false;
            if (strcmp(path, "/v1/traces") == 0) {
                path = "/v1/logs";
            }
            step = 1;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "loadgen: unknown option or missing value: %s\n", a);
            rc = 2;
            goto out;
        }
        int prc = 0;
        if (strcmp(a, "--host") == 0) {
            host = val;
        } else if (strcmp(a, "--path") == 0) {
            path = val;
        } else if (strcmp(a, "--tenant") == 0) {
            tenant = val;
        } else if (strcmp(a, "--port") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &port);
        } else if (strcmp(a, "--connections") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &conns);
        } else if (strcmp(a, "--duration") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &duration_s);
        } else if (strcmp(a, "--warmup") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &warmup_s);
        } else if (strcmp(a, "--requests") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &max_requests);
        } else if (strcmp(a, "--spans") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &nspans);
        } else if (strcmp(a, "--distinct") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &k);
        } else if (strcmp(a, "--seed") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &o.seed);
        } else if (strcmp(a, "--services") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &v);
            o.nservices = v <= 10 ? (uint32_t)v : 1; /* 1 is rejected by spangen */
        } else {
            fprintf(stderr, "loadgen: unknown option: %s\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (prc != 0) {
            fprintf(stderr, "loadgen: %s needs a non-negative integer, got '%s'\n", a, val);
            rc = 2;
            goto out;
        }
    }
    if (port < 1 || port > 65535 || conns < 1 || conns > LG_MAX_CONNS || duration_s < 1 ||
        duration_s > LG_MAX_DURATION_S || warmup_s > 60 || nspans < 1 || nspans > 100000 || k < 1 ||
        k > 4096 || path[0] != '/' || strpbrk(path, " \r\n") != NULL ||
        (tenant != NULL && strpbrk(tenant, "\r\n") != NULL)) {
        fprintf(stderr, "loadgen: missing --port or an option out of range (see --help)\n");
        rc = 2;
        goto out;
    }
    struct in_addr ia;
    if (loopback_addr(host, &ia) != 0) {
        fprintf(stderr,
                "loadgen: refusing to target '%s': only loopback (127.x.y.z, "
                "localhost) is allowed\n",
                host);
        rc = 2;
        goto out;
    }

    reqs = calloc(k, sizeof(*reqs));
    ws = calloc(conns, sizeof(*ws));
    if (reqs == NULL || ws == NULL) {
        rc = 1;
        goto out;
    }
    size_t max_size = 0;
    rc = build_requests(&o, logs, (size_t)k, (size_t)nspans, host, (uint16_t)port, path, tenant,
                        reqs, &max_size);
    if (rc != 0) {
        fprintf(stderr, "loadgen: building requests: %s\n", sl_strerror(rc));
        rc = 1;
        goto out;
    }
    size_t total_bytes = 0;
    for (size_t i = 0; i < k; i++) {
        total_bytes += reqs[i].size;
    }

    sh.reqs = reqs;
    sh.nreqs = (size_t)k;
    sh.spans_per_req = (size_t)nspans;
    sh.addr.sin_family = AF_INET;
    sh.addr.sin_port = htons((uint16_t)port);
    sh.addr.sin_addr = ia;
    sh.max_requests = max_requests;
    sh.salt_base = sl_now_unix_nano(); /* fresh ids across runs too */
    sh.rekey = rekey;
    sh.nworkers = (int)conns;
    atomic_init(&sh.started, 0);
    atomic_init(&sh.sends, 0);
    atomic_init(&sh.reported, 0);
    uint64_t t0 = sl_mono_nano();
    sh.measure_start = t0 + warmup_s * 1000000000ull;
    sh.deadline = sh.measure_start + duration_s * 1000000000ull;

    printf("loadgen: %s:%llu %s, %llu connections, %llu spans/request, %llu distinct payloads "
           "(%.1f KiB avg), %llu s%s\n",
           host, (unsigned long long)port, path, (unsigned long long)conns,
           (unsigned long long)nspans, (unsigned long long)k,
           (double)total_bytes / (double)k / 1024.0, (unsigned long long)duration_s,
           warmup_s ? " after warm-up" : "");
    fflush(stdout);
    for (uint64_t i = 0; i < conns && rc == 0; i++) {
        ws[i].sh = &sh;
        ws[i].id = (int)i;
        ws[i].sendbuf = malloc(max_size);
        ws[i].sendcap = max_size;
        if (ws[i].sendbuf == NULL) {
            rc = 1;
        } else if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %llu\n", (unsigned long long)i);
            rc = 1;
        } else {
            started++;
        }
    }
    /* Threads already started run to the deadline; they are always joined. */
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
    }
    if (rc != 0) {
        goto out;
    }

    counters tot;
    size_t nlat = 0;
    memset(&tot, 0, sizeof(tot));
    uint64_t end = sh.measure_start;
    for (uint64_t i = 0; i < conns; i++) {
        tot.ok += ws[i].c.ok;
        tot.s429 += ws[i].c.s429;
        tot.s503 += ws[i].c.s503;
        tot.other += ws[i].c.other;
        tot.io_errors += ws[i].c.io_errors;
        tot.connects += ws[i].c.connects;
        tot.spans_acked += ws[i].c.spans_acked;
        tot.spans_rejected += ws[i].c.spans_rejected;
        tot.bytes_sent += ws[i].c.bytes_sent;
        nlat += ws[i].nlat;
        if (ws[i].end_ns > end) {
            end = ws[i].end_ns;
        }
    }
    all = malloc((nlat ? nlat : 1) * sizeof(*all));
    if (all == NULL) {
        rc = 1;
        goto out;
    }
    size_t n = 0;
    for (uint64_t i = 0; i < conns; i++) {
        memcpy(all + n, ws[i].lat_ns, ws[i].nlat * sizeof(*all));
        n += ws[i].nlat;
    }
    qsort(all, n, sizeof(*all), cmp_u64);
    double secs = (double)(end - sh.measure_start) / 1e9;
    if (secs <= 0) {
        secs = 1e-9;
    }
    double p50 = pct_ms(all, n, 0.50);
    double p90 = pct_ms(all, n, 0.90);
    double p99 = pct_ms(all, n, 0.99);
    double max = n ? (double)all[n - 1] / 1e6 : 0.0;
    double sps = (double)tot.spans_acked / secs;
    printf("requests  2xx %llu  429 %llu  503 %llu  other %llu  io-errors %llu  connects %llu\n",
           (unsigned long long)tot.ok, (unsigned long long)tot.s429, (unsigned long long)tot.s503,
           (unsigned long long)tot.other, (unsigned long long)tot.io_errors,
           (unsigned long long)tot.connects);
    printf("spans     %llu acknowledged (%llu rejected)  %.0f spans/s  %.1f req/s  %.1f MB/s "
           "in %.2f s\n",
           (unsigned long long)tot.spans_acked, (unsigned long long)tot.spans_rejected, sps,
           (double)tot.ok / secs, (double)tot.bytes_sent / secs / 1e6, secs);
    printf("latency   p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (2xx only)\n", p50, p90,
           p99, max);
    /* The client shares the machine with the server: say what it cost. */
    struct rusage ru;
    double cpu_s = 0.0;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    printf("client    %.2f CPU s (including building the payloads)\n", cpu_s);
    printf("RESULT requests=%llu spans=%llu seconds=%.3f spans_per_s=%.0f p50_ms=%.3f "
           "p90_ms=%.3f p99_ms=%.3f max_ms=%.3f s429=%llu s503=%llu other=%llu io_errors=%llu "
           "rejected=%llu client_cpu_s=%.2f\n",
           (unsigned long long)tot.ok, (unsigned long long)tot.spans_acked, secs, sps, p50, p90,
           p99, max, (unsigned long long)tot.s429, (unsigned long long)tot.s503,
           (unsigned long long)tot.other, (unsigned long long)tot.io_errors,
           (unsigned long long)tot.spans_rejected, cpu_s);
    if (tot.ok == 0) {
        rc = 1; /* nothing was acknowledged: a failed run, whatever else happened */
    }
out:
    if (ws != NULL) {
        for (uint64_t i = 0; i < conns; i++) {
            free(ws[i].sendbuf);
            free(ws[i].lat_ns);
        }
    }
    if (reqs != NULL) {
        for (uint64_t i = 0; i < k; i++) {
            free(reqs[i].bytes);
            free(reqs[i].id_offs);
        }
    }
    free(all);
    free(ws);
    free(reqs);
    return rc;
}
