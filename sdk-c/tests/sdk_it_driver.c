/*
 * The SDK as an application uses it, driven by the integration tests
 * (tests/integration/test_sdk_*.py). Configuration comes from the standard
 * OTEL_* variables; results are printed as one JSON object per line.
 *
 *   sdk-it-driver emit      a trace of three spans (every attribute type,
 *                           events, a link, an error), two correlated logs,
 *                           metrics of every instrument kind; flush; then a
 *                           second one-span trace and flush again (two export
 *                           requests on one connection)
 *   sdk-it-driver downup N  phase 1: N spans while nothing listens; print
 *                           stats; wait for a line on stdin; phase 2: flush
 *                           (drains the queue), a trace, flush; print; wait for a line; phase 3: N
 * spans, shutdown with a 1 s deadline (the collector is gone again); print
 */
#include <sightline/sightline.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void diag(void *ud, sl_diag level, const char *msg) {
    (void)ud;
    fprintf(stderr, "sdk[%d]: %s\n", (int)level, msg);
}

static void hex(const uint8_t *p, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void print_stats(const char *phase, sl_provider *p, int rc, double ms, const char *extra) {
    sl_provider_stats s;
    sl_provider_stats_get(p, &s);
    printf("{\"phase\":\"%s\",\"rc\":%d,\"ms\":%.1f,%s\"stats\":{\"spans_started\":%" PRIu64
           ",\"spans_dropped\":%" PRIu64 ",\"spans_exported\":%" PRIu64
           ",\"spans_export_failed\":%" PRIu64 ",\"logs_emitted\":%" PRIu64
           ",\"logs_dropped\":%" PRIu64 ",\"logs_exported\":%" PRIu64
           ",\"logs_export_failed\":%" PRIu64 ",\"metric_points_exported\":%" PRIu64
           ",\"metric_exports_failed\":%" PRIu64 ",\"export_requests\":%" PRIu64
           ",\"export_retries\":%" PRIu64 ",\"partial_success_rejected\":%" PRIu64 "}}\n",
           phase, rc, ms, extra ? extra : "", s.spans_started, s.spans_dropped, s.spans_exported,
           s.spans_export_failed, s.logs_emitted, s.logs_dropped, s.logs_exported,
           s.logs_export_failed, s.metric_points_exported, s.metric_exports_failed,
           s.export_requests, s.export_retries, s.partial_success_rejected);
    fflush(stdout);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void observe_queue(sl_observer *obs, void *ud) {
    (void)ud;
    sl_kv a = SL_KV_STR("queue", "jobs");
    sl_observer_observe_int(obs, 42, &a, 1);
}

/* The three-span trace; writes its ids (hex) to ids[0..2]. */
static void emit_trace(sl_tracer *t, sl_logger *lg, char ids[4][33]) {
    static const uint8_t blob[3] = {0, 1, 2};
    sl_any list[2] = {SL_ANY_STR("a"), SL_ANY_I64(2)};
    sl_kv attrs[] = {SL_KV_STR("http.request.method", "GET"),
                     SL_KV_INT("http.response.status_code", 200),
                     SL_KV_DOUBLE("ratio", 0.25),
                     SL_KV_BOOL("retry", true),
                     SL_KV_BYTES("blob", blob, 3),
                     SL_KV_ARRAY("list", list, 2)};
    sl_span_options o;
    sl_span_options_init(&o);
    o.kind = SL_SPAN_KIND_SERVER;
    o.attrs = attrs;
    o.attr_count = sizeof attrs / sizeof attrs[0];
    o.root = true;
    sl_span *root, *child, *linked;
    sl_span_start(t, "GET /checkout", &o, &root);
    sl_kv ev = SL_KV_STR("cache.key", "u:1");
    sl_span_add_event(root, "cache miss", 0, &ev, 1);
    sl_context_push_span(root);
    sl_kv la = SL_KV_STR("user.id", "u-7");
    sl_logger_emit(lg, SL_SEVERITY_INFO, "checkout started", &la, 1);

    sl_span_options_init(&o);
    o.kind = SL_SPAN_KIND_CLIENT;
    sl_span_start(t, "POST /charge", &o, &child);
    sl_span_set_str(child, "peer.service", "payments");
    sl_span_record_error(child, "CardDeclined", "card declined");
    sl_context_push_span(child);
    sl_logger_emit(lg, SL_SEVERITY_ERROR, "charge failed", NULL, 0);
    sl_context_pop();
    sl_span_context cc;
    sl_span_get_context(child, &cc);
    sl_span_end(child, 0);

    sl_link link = {&cc, NULL, 0};
    sl_span_options_init(&o);
    o.links = &link;
    o.link_count = 1;
    sl_span_start(t, "audit", &o, &linked);
    sl_span_end(linked, 0);
    sl_context_pop();

    sl_span_context rc_, lc;
    sl_span_get_context(root, &rc_);
    sl_span_get_context(linked, &lc);
    hex(rc_.trace_id, 16, ids[0]);
    hex(rc_.span_id, 8, ids[1]);
    hex(cc.span_id, 8, ids[2]);
    hex(lc.span_id, 8, ids[3]);
    sl_span_end(root, 0);
}

static void emit_metrics(sl_meter *m) {
    sl_instrument *c, *h, *g, *q;
    sl_meter_counter(m, "it.requests", "{request}", "Requests served", &c);
    sl_meter_histogram(m, "it.latency", "ms", "Request latency", &h);
    sl_instrument_options io;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_GAUGE;
    io.name = "it.temperature";
    sl_meter_create(m, &io, &g);
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_OBSERVABLE_GAUGE;
    io.name = "it.queue.depth";
    io.is_int = true;
    io.callback = observe_queue;
    sl_meter_create(m, &io, &q);
    sl_kv route = SL_KV_STR("route", "/checkout");
    sl_instrument_add_int(c, 5, &route, 1);
    sl_instrument_record(h, 3, &route, 1);
    sl_instrument_record(h, 30, &route, 1);
    sl_instrument_record(h, 300, &route, 1);
    sl_instrument_record(g, 21.5, NULL, 0);
}

static void emit_roots(sl_tracer *t, int n) {
    sl_span_options o;
    sl_span_options_init(&o);
    o.root = true;
    for (int i = 0; i < n; i++) {
        sl_span *s;
        sl_span_start(t, "background job", &o, &s);
        sl_span_set_int(s, "job.id", i);
        sl_span_end(s, 0);
    }
}

static int wait_line(void) {
    char line[64];
    return fgets(line, sizeof line, stdin) != NULL ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sdk-it-driver emit | downup N\n");
        return 2;
    }
    sl_provider_options o;
    sl_provider_options_init(&o);
    int erc = sl_provider_options_from_env(&o);
    if (erc != 0) {
        fprintf(stderr, "environment: %s\n", sl_otel_strerror(erc));
    }
    o.log = diag;
    o.retry_initial_ms = 100;
    o.retry_max_ms = 400;
    sl_provider *p;
    int rc = sl_provider_create(&o, &p);
    if (rc != 0) {
        fprintf(stderr, "provider: %s\n", sl_otel_strerror(rc));
        return 1;
    }
    sl_tracer *t;
    sl_logger *lg;
    sl_meter *m;
    sl_provider_tracer(p, "sdk-it", "1.0.0", &t);
    sl_provider_logger(p, "sdk-it", "1.0.0", &lg);
    sl_provider_meter(p, "sdk-it", "1.0.0", &m);
    char extra[512];
    char ids[4][33];
    int status = 0;
    if (strcmp(argv[1], "emit") == 0) {
        emit_trace(t, lg, ids);
        emit_metrics(m);
        double t0 = now_ms();
        rc = sl_provider_force_flush(p, 20000);
        snprintf(extra, sizeof extra,
                 "\"trace_id\":\"%s\",\"root\":\"%s\",\"child\":\"%s\",\"linked\":\"%s\",", ids[0],
                 ids[1], ids[2], ids[3]);
        print_stats("flush1", p, rc, now_ms() - t0, extra);
        sl_span *s;
        sl_span_options so;
        sl_span_options_init(&so);
        so.root = true;
        sl_span_start(t, "second", &so, &s);
        sl_span_context c;
        sl_span_get_context(s, &c);
        sl_span_end(s, 0);
        t0 = now_ms();
        rc = sl_provider_force_flush(p, 20000);
        hex(c.trace_id, 16, ids[0]);
        snprintf(extra, sizeof extra, "\"trace_id\":\"%s\",", ids[0]);
        print_stats("flush2", p, rc, now_ms() - t0, extra);
    } else if (strcmp(argv[1], "downup") == 0 && argc == 3) {
        int n = (int)strtol(argv[2], NULL, 10);
        double t0 = now_ms();
        emit_roots(t, n);
        print_stats("down", p, 0, now_ms() - t0, NULL);
        if (wait_line() == 0) {
            /* The queue is still full of phase 1 spans: let it drain to the
             * collector that is now up, then trace something new. */
            sl_provider_force_flush(p, 20000);
            emit_trace(t, lg, ids);
            t0 = now_ms();
            rc = sl_provider_force_flush(p, 20000);
            snprintf(extra, sizeof extra, "\"trace_id\":\"%s\",", ids[0]);
            print_stats("up", p, rc, now_ms() - t0, extra);
        }
        if (wait_line() == 0) {
            emit_roots(t, n);
            t0 = now_ms();
            rc = sl_provider_shutdown(p, 1000);
            print_stats("gone", p, rc, now_ms() - t0, NULL);
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        status = 2;
    }
    sl_provider_shutdown(p, 5000);
    sl_provider_destroy(p);
    return status;
}
