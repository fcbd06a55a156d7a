/*
 * Example: a traced HTTP server on libmicrohttpd.
 *
 * Every request continues the caller's trace (W3C traceparent/tracestate
 * extracted from the request headers), gets a SERVER span with the HTTP
 * semantic-convention attributes and an INTERNAL child span, logs a line
 * correlated with the span, and counts and times itself with a counter and
 * a histogram. Configuration comes from the OTEL_* variables.
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 sl-example-server [PORT]
 *
 * Prints "listening on PORT" (PORT 0 = any free port), serves until SIGINT
 * or SIGTERM, then flushes its telemetry and exits.
 */
#include <sightline/sightline.h>

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct app {
    sl_tracer *tracer;
    sl_logger *logger;
    sl_instrument *requests;
    sl_instrument *duration;
} app;

/* Carrier over the request's headers (names are case-insensitive in MHD). */
static const char *header_get(void *carrier, const char *name) {
    return MHD_lookup_connection_value(carrier, MHD_HEADER_KIND, name);
}

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls) {
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    app *a = cls;
    double t0 = mono_ms();

    sl_span_context parent;
    sl_span_options so;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_SERVER;
    /* A request without (or with a malformed) traceparent starts a trace. */
    if (sl_propagation_extract(header_get, conn, &parent) == 0) {
        so.parent = &parent;
    } else {
        so.root = true;
    }
    char name[128];
    snprintf(name, sizeof name, "%s %s", method, url);
    sl_kv attrs[] = {SL_KV_STR("http.request.method", method), SL_KV_STR("url.path", url),
                     SL_KV_STR("network.protocol.version", "1.1")};
    so.attrs = attrs;
    so.attr_count = sizeof attrs / sizeof attrs[0];
    sl_span *span;
    sl_span_start(a->tracer, name, &so, &span);
    sl_context_push_span(span);

    unsigned status = strcmp(url, "/hello") == 0 ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND;
    sl_span *work;
    sl_span_start(a->tracer, "render greeting", NULL, &work);
    sl_span_context ctx;
    sl_span_get_context(span, &ctx);
    char tid[33];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        tid[2 * i] = hex[ctx.trace_id[i] >> 4];
        tid[2 * i + 1] = hex[ctx.trace_id[i] & 15];
    }
    tid[32] = '\0';
    char body[128];
    int n = snprintf(body, sizeof body, "%s trace %s\n",
                     status == MHD_HTTP_OK ? "hello from" : "not found in", tid);
    sl_span_end(work, 0);

    sl_kv la = SL_KV_STR("url.path", url);
    sl_logger_emit(a->logger, status == MHD_HTTP_OK ? SL_SEVERITY_INFO : SL_SEVERITY_WARN,
                   "request handled", &la, 1);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_NO;
    if (resp != NULL) {
        MHD_add_response_header(resp, "Content-Type", "text/plain");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
    }
    sl_span_set_int(span, "http.response.status_code", status);
    if (status >= 500) {
        sl_span_set_status(span, SL_STATUS_ERROR, "server error");
    }
    sl_kv ma[] = {SL_KV_STR("http.request.method", method),
                  SL_KV_INT("http.response.status_code", status)};
    sl_instrument_add_int(a->requests, 1, ma, 2);
    sl_instrument_record(a->duration, (mono_ms() - t0) / 1e3, ma, 2);
    sl_context_pop();
    sl_span_end(span, 0);
    return ret;
}

static void diag(void *ud, sl_diag level, const char *msg) {
    (void)ud;
    if (level <= SL_DIAG_WARN) {
        fprintf(stderr, "telemetry: %s\n", msg);
    }
}

int main(int argc, char **argv) {
    unsigned port = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 8080;
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.service_name = "example-server"; /* OTEL_SERVICE_NAME wins */
    sl_provider_options_from_env(&o);
    o.log = diag;
    sl_provider *p;
    int rc = sl_provider_create(&o, &p);
    if (rc != 0) {
        fprintf(stderr, "telemetry: %s\n", sl_otel_strerror(rc));
        return 1;
    }
    app a;
    sl_meter *m;
    sl_provider_tracer(p, "sl-example-server", SL_OTEL_VERSION_STRING, &a.tracer);
    sl_provider_logger(p, "sl-example-server", SL_OTEL_VERSION_STRING, &a.logger);
    sl_provider_meter(p, "sl-example-server", SL_OTEL_VERSION_STRING, &m);
    sl_meter_counter(m, "http.server.requests", "{request}", "Requests served", &a.requests);
    sl_meter_histogram(m, "http.server.request.duration", "s", "Request duration", &a.duration);

    /* Block the stop signals before MHD starts its thread, then wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, handle, &a, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "cannot listen on port %u\n", port);
        sl_provider_destroy(p);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on %u\n", info ? (unsigned)info->port : port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    rc = sl_provider_shutdown(p, 5000);
    if (rc != 0) {
        fprintf(stderr, "telemetry: shutdown: %s\n", sl_otel_strerror(rc));
    }
    sl_provider_destroy(p);
    return 0;
}
