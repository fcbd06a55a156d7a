/*
 * Example: a traced HTTP client on libcurl.
 *
 * One INTERNAL span "checkout" wraps COUNT requests to URL; each request is a
 * CLIENT span whose context is injected as traceparent/tracestate into the
 * request headers, so the server's spans join the same trace.
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 sl-example-client URL [COUNT]
 *
 * Prints {"trace_id": "..."} and each response body, then flushes its
 * telemetry. Exit status 1 when a request failed.
 */
#include <sightline/sightline.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Carrier over a curl header list. */
static int header_set(void *carrier, const char *name, const char *value) {
    struct curl_slist **list = carrier;
    char line[SL_TRACESTATE_MAX + 64];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(*list, line);
    if (n == NULL) {
        return SL_OTEL_ENOMEM;
    }
    *list = n;
    return 0;
}

static size_t print_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    (void)ud;
    fwrite(ptr, size, nmemb, stdout);
    return size * nmemb;
}

static int get(sl_tracer *t, CURL *curl, const char *url) {
    sl_span_options so;
    sl_span_options_init(&so);
    so.kind = SL_SPAN_KIND_CLIENT;
    sl_kv attrs[] = {SL_KV_STR("http.request.method", "GET"), SL_KV_STR("url.full", url)};
    so.attrs = attrs;
    so.attr_count = 2;
    sl_span *span;
    sl_span_start(t, "GET", &so, &span);
    /* Inject this span's context (not the current one: it is the parent). */
    sl_span_context ctx;
    sl_span_get_context(span, &ctx);
    struct curl_slist *headers = NULL;
    sl_propagation_inject(&ctx, header_set, &headers);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, print_body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    int failed = 0;
    if (cc != CURLE_OK) {
        sl_span_record_error(span, "curl", curl_easy_strerror(cc));
        failed = 1;
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        sl_span_set_int(span, "http.response.status_code", code);
        if (code >= 400) {
            sl_span_set_status(span, SL_STATUS_ERROR, NULL);
            failed = 1;
        }
    }
    sl_span_end(span, 0);
    curl_slist_free_all(headers);
    return failed;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sl-example-client URL [COUNT]\n");
        return 2;
    }
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.service_name = "example-client"; /* OTEL_SERVICE_NAME wins */
    sl_provider_options_from_env(&o);
    sl_provider *p;
    int rc = sl_provider_create(&o, &p);
    if (rc != 0) {
        fprintf(stderr, "telemetry: %s\n", sl_otel_strerror(rc));
        return 1;
    }
    sl_tracer *t;
    sl_provider_tracer(p, "sl-example-client", SL_OTEL_VERSION_STRING, &t);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();

    sl_span *root;
    sl_span_start(t, "checkout", NULL, &root);
    sl_span_context rc_ctx;
    sl_span_get_context(root, &rc_ctx);
    char tid[SL_TRACEPARENT_LEN + 1];
    sl_traceparent_format(&rc_ctx, tid);
    printf("{\"trace_id\":\"%.32s\"}\n", tid + 3);
    sl_context_push_span(root);
    int failed = 0;
    for (long i = 0; i < count && curl != NULL; i++) {
        failed |= get(t, curl, argv[1]);
    }
    sl_context_pop();
    sl_span_end(root, 0);
    fflush(stdout);

    curl_easy_cleanup(curl);
    rc = sl_provider_force_flush(p, 10000);
    if (rc != 0) {
        fprintf(stderr, "telemetry: flush: %s\n", sl_otel_strerror(rc));
    }
    sl_provider_destroy(p);
    return failed || curl == NULL;
}
