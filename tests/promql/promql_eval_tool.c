/*
 * The differential-test driver: loads an OpenMetrics file into the in-memory
 * querier, then reads queries from stdin, one per line,
 *     instant <t_ms> <query>
 *     range <start_ms> <end_ms> <step_ms> <query>
 * and writes one line of JSON per query in the shape of Prometheus's
 * /api/v1/query and /api/v1/query_range answers (string-encoded values,
 * float-second timestamps), so tests/integration/test_promql_diff.py can
 * compare the engine with a real Prometheus over the same samples.
 * With --repeat N every query is evaluated N times and the answer carries
 * "elapsed_ms": the median evaluation time (bench/promql_bench.py).
 * --stepwise evaluates range queries step by step even where the
 * series-major path applies (to compare the two).
 */
#include "memq.h"

#include "promql.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_str(const char *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void put_point(pq_sample s) {
    char buf[400];
    pq_format_value(s.v, buf, sizeof(buf));
    int64_t ms = s.t_ms;
    if (ms % 1000 == 0) {
        printf("[%" PRId64 ",\"%s\"]", ms / 1000, buf);
    } else {
        printf("[%.3f,\"%s\"]", (double)ms / 1000.0, buf);
    }
}

static void put_metric(const pq_series *s) {
    putchar('{');
    for (size_t i = 0; i < s->nlabels; i++) {
        if (i > 0) {
            putchar(',');
        }
        put_str(s->labels[i].name.ptr, s->labels[i].name.len);
        putchar(':');
        put_str(s->labels[i].value.ptr, s->labels[i].value.len);
    }
    putchar('}');
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void put_result(const pq_result *r, double elapsed_ms) {
    static const char *const types[] = {"scalar", "vector", "matrix", "string"};
    printf("{\"status\":\"success\",\"data\":{\"resultType\":\"%s\",\"result\":", types[r->type]);
    if (r->type == PQ_SCALAR) {
        put_point(r->scalar);
    } else if (r->type == PQ_STRING) {
        char buf[32];
        int64_t ms = r->scalar.t_ms;
        snprintf(buf, sizeof(buf), "%.3f", (double)ms / 1000.0);
        printf("[%s,", buf);
        put_str(r->string.ptr, r->string.len);
        putchar(']');
    } else {
        putchar('[');
        for (size_t i = 0; i < r->nseries; i++) {
            const pq_series *s = &r->series[i];
            printf("%s{\"metric\":", i ? "," : "");
            put_metric(s);
            if (r->type == PQ_VECTOR) {
                printf(",\"value\":");
                put_point(s->points[0]);
            } else {
                printf(",\"values\":[");
                for (size_t j = 0; j < s->npoints; j++) {
                    if (j > 0) {
                        putchar(',');
                    }
                    put_point(s->points[j]);
                }
                putchar(']');
            }
            putchar('}');
        }
        putchar(']');
    }
    if (elapsed_ms >= 0) {
        printf("},\"elapsed_ms\":%.3f}\n", elapsed_ms);
    } else {
        printf("}}\n");
    }
}

int main(int argc, char **argv) {
    int repeat = 0;
    bool stepwise = false;
    int argi = 2;
    for (; argi < argc; argi++) {
        if (strcmp(argv[argi], "--repeat") == 0 && argi + 1 < argc) {
            repeat = (int)strtol(argv[++argi], NULL, 10);
        } else if (strcmp(argv[argi], "--stepwise") == 0) {
            stepwise = true;
        } else {
            break;
        }
    }
    if (argc < 2 || argi != argc) {
        fprintf(stderr, "usage: %s DATA.om [--repeat N] [--stepwise] < queries\n", argv[0]);
        return 2;
    }
    memq *mq = memq_create();
    if (memq_load_openmetrics(mq, argv[1]) < 0) {
        memq_destroy(mq);
        return 1;
    }
    pq_querier qr = memq_querier(mq);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        pq_eval_opts o;
        pq_eval_opts_init(&o);
        o.stepwise = stepwise;
        int off = 0;
        if (strncmp(line, "instant ", 8) == 0 &&
            sscanf(line + 8, "%" SCNd64 " %n", &o.start_ms, &off) == 1) {
            o.end_ms = o.start_ms;
            off += 8;
        } else if (strncmp(line, "range ", 6) == 0 &&
                   sscanf(line + 6, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %n", &o.start_ms,
                          &o.end_ms, &o.step_ms, &off) == 3) {
            off += 6;
        } else {
            printf("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"bad line\"}\n");
            continue;
        }
        const char *text = line + off;
        pq_error err;
        pq_query *q = NULL;
        pq_result r;
        double times[64];
        int runs = repeat < 1 ? 1 : (repeat > 64 ? 64 : repeat);
        int rc = 0;
        for (int i = 0; i < runs && rc == 0; i++) {
            pq_query_free(q);
            q = NULL;
            uint64_t t0 = sl_mono_nano();
            rc = pq_parse(sl_str_c(text), &q, &err);
            if (rc == 0) {
                rc = pq_eval(q, &qr, &o, &r, &err);
            }
            times[i] = (double)(sl_mono_nano() - t0) / 1e6;
        }
        qsort(times, (size_t)runs, sizeof(double), cmp_double);
        if (rc != 0) {
            static const char *const kinds[] = {"none", "bad_data", "execution", "timeout",
                                                "internal"};
            printf("{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", kinds[err.kind]);
            put_str(err.msg, strlen(err.msg));
            printf("}\n");
        } else {
            put_result(&r, repeat > 0 ? times[runs / 2] : -1);
        }
        fflush(stdout);
        pq_query_free(q);
    }
    free(line);
    memq_destroy(mq);
    return 0;
}
