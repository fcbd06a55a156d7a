/*
 * decode_limit: how fast can one core merely decode the benchmark's OTLP
 * requests? A bare loop of protobuf_c_message_unpack + free over K
 * pre-encoded spangen requests: with protobuf-c's default allocator and
 * free_unpacked (the "decode limit" of the benchmark's targets), into a
 * per-request sl_arena reset after each request (the collector's way), and
 * into an arena pre-grown once (no malloc at all: the floor of decoding
 * itself). The modes alternate in 1-second rounds; the best round of each is
 * reported (the least disturbed by other processes) with the median beside it.
 * run.sh compares the server's sustained rate against these figures.
 *
 * Invariants: the payloads are exactly those loadgen sends with the same
 * --seed/--spans/--distinct/--services (loadgen only rewrites trace-id bytes).
 * Single-threaded.
 */
#include "spangen.h"

#include "sl_err.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;

typedef struct payload {
    uint8_t *data;
    size_t size;
} payload;

enum { MODE_MALLOC, MODE_ARENA, MODE_WARM, NMODES };
static const char *const mode_names[NMODES] = {"malloc", "arena", "arena-warm"};

#define MAX_ROUNDS 120

typedef struct mode_result {
    double rate[MAX_ROUNDS]; /* spans/s of each round */
    int nrounds;
    uint64_t requests;
    uint64_t bytes;
    double seconds;
} mode_result;

static void usage(FILE *f) {
    fputs("usage: decode_limit [options]\n"
          "  --spans N      spans per request (default 500)\n"
          "  --distinct K   distinct pre-encoded requests (default 64)\n"
          "  --seed N       spangen seed (default 1)\n"
          "  --services N   services in the fleet, 5..10 (default: from the seed)\n"
          "  --seconds S    seconds per mode, 1..120, run as 1-second rounds that alternate\n"
          "                 between the modes (default 5)\n"
          "  --mode M       malloc, arena, arena-warm or all (default all)\n"
          "modes: malloc = protobuf-c's default allocator and free_unpacked; arena = a\n"
          "per-request sl_arena reset after each request (the collector's way); arena-warm =\n"
          "the same arena pre-grown to its peak once, so no malloc at all per request\n"
          "prints a summary and one machine-readable line starting with RESULT (best rounds)\n",
          f);
}

static size_t count_spans(const pb_request *req) {
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
            n += req->resource_spans[r]->scope_spans[s]->n_spans;
        }
    }
    return n;
}

/* Unpacks the payloads round-robin, starting at *next, until seconds have
 * passed. With arena non-NULL every request decodes into it and the arena is
 * reset afterwards. Adds to r. Returns 0 or SL_EDECODE (a payload did not
 * decode: a bug). */
static int run_round(const payload *p, size_t k, size_t *next, double seconds, sl_arena *arena,
                     size_t nspans, mode_result *r) {
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    ProtobufCAllocator *alloc = arena != NULL ? sl_arena_pb(arena) : NULL;
    uint64_t t0 = sl_mono_nano();
    uint64_t limit = t0 + (uint64_t)(seconds * 1e9);
    uint64_t now = t0;
    uint64_t requests = 0;
    size_t i = *next;
    int rc = 0;
    while (now < limit) {
        ProtobufCMessage *m = protobuf_c_message_unpack(d, alloc, p[i].size, p[i].data);
        if (m == NULL) {
            rc = SL_EDECODE;
            goto out;
        }
        if (arena != NULL) {
            sl_arena_reset(arena);
        } else {
            protobuf_c_message_free_unpacked(m, NULL);
        }
        requests++;
        r->bytes += p[i].size;
        i = i + 1 == k ? 0 : i + 1;
        now = sl_mono_nano();
    }
    double secs = (double)(now - t0) / 1e9;
    r->requests += requests;
    r->seconds += secs;
    if (r->nrounds < MAX_ROUNDS) {
        r->rate[r->nrounds++] = (double)requests * (double)nspans / secs;
    }
    *next = i;
out:
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the rounds; returns the best and the median. */
static void summarize(mode_result *r, double *best, double *median) {
    qsort(r->rate, (size_t)r->nrounds, sizeof(r->rate[0]), cmp_double);
    *best = r->nrounds > 0 ? r->rate[r->nrounds - 1] : 0.0;
    *median = r->nrounds > 0 ? r->rate[r->nrounds / 2] : 0.0;
}

/* Grows a fresh arena to the peak one request needs and resets it, so that
 * it keeps one chunk that large for every later request. */
static int warm_arena(sl_arena *a, const payload *p, size_t k) {
    size_t peak = 0;
    for (size_t i = 0; i < k; i++) {
        sl_arena_init(a, 0);
        ProtobufCMessage *m = protobuf_c_message_unpack(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            sl_arena_pb(a), p[i].size, p[i].data);
        if (m != NULL && a->used > peak) {
            peak = a->used;
        }
        sl_arena_free(a);
    }
    sl_arena_init(a, 0);
    /* One allocation larger than a chunk gets a dedicated chunk of exactly
     * its size; reset keeps the oldest chunk, which is this one. */
    if (sl_arena_alloc(a, peak + peak / 8) == NULL) {
        return SL_ENOMEM;
    }
    sl_arena_reset(a);
    return 0;
}

int main(int argc, char **argv) {
    spangen_options o;
    spangen_options_init(&o);
    uint64_t nspans = 500;
    uint64_t k = 64;
    uint64_t seconds = 5;
    uint64_t v = 0;
    const char *mode = "all";
    int rc = 0;
    spangen *g = NULL;
    payload *p = NULL;
    sl_buf buf;
    sl_buf_init(&buf, 0);
    sl_arena arena;
    sl_arena warm;
    sl_arena_init(&arena, 0);
    sl_arena_init(&warm, 0);
    static mode_result res[NMODES];

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            goto out;
        }
        if (val == NULL) {
            fprintf(stderr, "decode_limit: unknown option or missing value: %s\n", a);
            rc = 2;
            goto out;
        }
        int prc = 0;
        if (strcmp(a, "--spans") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &nspans);
        } else if (strcmp(a, "--distinct") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &k);
        } else if (strcmp(a, "--seed") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &o.seed);
        } else if (strcmp(a, "--services") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &v);
            o.nservices = v <= 10 ? (uint32_t)v : 1; /* 1 is rejected by spangen */
        } else if (strcmp(a, "--seconds") == 0) {
            prc = sl_parse_u64(sl_str_c(val), &seconds);
        } else if (strcmp(a, "--mode") == 0) {
            mode = val;
        } else {
            fprintf(stderr, "decode_limit: unknown option: %s\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (prc != 0) {
            fprintf(stderr, "decode_limit: %s needs a non-negative integer, got '%s'\n", a, val);
            rc = 2;
            goto out;
        }
    }
    if (nspans < 1 || nspans > 100000 || k < 1 || k > 4096 || seconds < 1 || seconds > 120 ||
        (strcmp(mode, "all") != 0 && strcmp(mode, "malloc") != 0 && strcmp(mode, "arena") != 0 &&
         strcmp(mode, "arena-warm") != 0)) {
        fprintf(stderr, "decode_limit: an option is out of range (see --help)\n");
        rc = 2;
        goto out;
    }
    rc = spangen_create(&o, &g);
    if (rc != 0) {
        fprintf(stderr, "decode_limit: bad generator options: %s\n", sl_strerror(rc));
        rc = 2;
        goto out;
    }
    p = calloc(k, sizeof(*p));
    if (p == NULL) {
        rc = 1;
        goto out;
    }
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
        buf.len = 0;
        rc = spangen_request(g, (size_t)nspans, &buf);
        if (rc != 0) {
            fprintf(stderr, "decode_limit: generating: %s\n", sl_strerror(rc));
            rc = 1;
            goto out;
        }
        p[i].data = sl_buf_take(&buf, &p[i].size);
        total += p[i].size;
        /* Check the payload round-trips before timing anything. */
        pb_request *req =
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                NULL, p[i].size, p[i].data);
        size_t got = req != NULL ? count_spans(req) : 0;
        if (req != NULL) {
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
                req, NULL);
        }
        if (got != nspans) {
            fprintf(stderr, "decode_limit: request %zu decodes to %zu spans, not %llu\n", i, got,
                    (unsigned long long)nspans);
            rc = 1;
            goto out;
        }
    }
    printf("decode_limit: %llu distinct requests x %llu spans, %.1f KiB/request, %.0f B/span, "
           "one thread\n",
           (unsigned long long)k, (unsigned long long)nspans, (double)total / (double)k / 1024.0,
           (double)total / (double)(k * nspans));

    rc = warm_arena(&warm, p, (size_t)k);
    if (rc != 0) {
        fprintf(stderr, "decode_limit: cannot grow the warm arena\n");
        rc = 1;
        goto out;
    }
    /* Modes alternate round by round so that noise from other processes
     * spreads over all of them alike. */
    size_t next = 0;
    for (uint64_t round = 0; round < seconds; round++) {
        for (int m = 0; m < NMODES; m++) {
            if (strcmp(mode, "all") != 0 && strcmp(mode, mode_names[m]) != 0) {
                continue;
            }
            sl_arena *a = m == MODE_MALLOC ? NULL : m == MODE_ARENA ? &arena : &warm;
            rc = run_round(p, (size_t)k, &next, 1.0, a, (size_t)nspans, &res[m]);
            if (rc != 0) {
                fprintf(stderr, "decode_limit: unpack failed (%s)\n", mode_names[m]);
                rc = 1;
                goto out;
            }
        }
    }
    double best[NMODES] = {0};
    double median[NMODES] = {0};
    printf("%-10s %14s %14s %10s\n", "mode", "best spans/s", "median", "MB/s");
    for (int m = 0; m < NMODES; m++) {
        if (res[m].nrounds == 0) {
            continue;
        }
        summarize(&res[m], &best[m], &median[m]);
        printf("%-10s %14.0f %14.0f %10.1f\n", mode_names[m], best[m], median[m],
               (double)res[m].bytes / res[m].seconds / 1e6);
    }
    printf("RESULT spans_per_request=%llu bytes_per_span=%.1f malloc_spans_per_s=%.0f "
           "arena_spans_per_s=%.0f arena_warm_spans_per_s=%.0f malloc_median=%.0f "
           "arena_median=%.0f arena_warm_median=%.0f\n",
           (unsigned long long)nspans, (double)total / (double)(k * nspans), best[MODE_MALLOC],
           best[MODE_ARENA], best[MODE_WARM], median[MODE_MALLOC], median[MODE_ARENA],
           median[MODE_WARM]);
out:
    if (p != NULL) {
        for (size_t i = 0; i < k; i++) {
            free(p[i].data);
        }
        free(p);
    }
    sl_arena_free(&arena);
    sl_arena_free(&warm);
    sl_buf_free(&buf);
    spangen_destroy(g);
    return rc;
}
