/*
 * Fuzz target for sdk-c's parsers of untrusted input. The input is given to
 * each of them: the traceparent and tracestate parsers, extract through a
 * carrier (both headers), the key=value list parser behind
 * OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS with percent-decoding,
 * and the collector's answers: partial_success in a protobuf or JSON export
 * response, and Retry-After.
 * Checks: no crash or over-read (the parsers get exactly size bytes), a
 * parsed traceparent formats back to its canonical form, a parsed tracestate
 * parses again to itself.
 */
#include <sightline/sightline.h>

#include "sdk_int.h"

#include <stdlib.h>
#include <string.h>

static const char *get_value(void *carrier, const char *name) {
    (void)name;
    return carrier;
}

static int on_item(void *ud, const char *k, size_t kl, const char *v, size_t vl) {
    (void)k;
    (void)kl;
    char *out = malloc(vl + 1);
    if (out == NULL) {
        return 0;
    }
    size_t n = ot_pct_decode(v, vl, out);
    if (n > vl) {
        abort();
    }
    free(out);
    (*(size_t *)ud)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy so that ASan catches any read past the end. */
    char *exact = malloc(size ? size : 1);
    if (exact == NULL) {
        return 0;
    }
    memcpy(exact, data, size);
    if (ot_parse_rejected((const uint8_t *)exact, size, false) < 0 ||
        ot_parse_rejected((const uint8_t *)exact, size, true) < 0) {
        abort();
    }
    int64_t ra = ot_parse_retry_after(exact, size, 1700000000);
    if (ra < -1 || ra > 86400000) {
        abort();
    }
    sl_span_context c;
    if (sl_traceparent_parse(exact, size, &c) == 0) {
        char out[SL_TRACEPARENT_LEN + 1];
        if (sl_traceparent_format(&c, out) != 0 || !sl_span_context_is_valid(&c)) {
            abort();
        }
    }
    char ts[SL_TRACESTATE_MAX + 1], ts2[SL_TRACESTATE_MAX + 1];
    if (sl_tracestate_parse(exact, size, ts, sizeof ts) == 0) {
        if (sl_tracestate_parse(ts, strlen(ts), ts2, sizeof ts2) != 0 || strcmp(ts, ts2) != 0) {
            abort();
        }
    }
    free(exact);

    char *z = malloc(size + 1);
    if (z == NULL) {
        return 0;
    }
    memcpy(z, data, size);
    z[size] = '\0';
    sl_propagation_extract(get_value, z, &c);
    size_t items = 0;
    ot_parse_kv_list(z, on_item, &items);
    free(z);
    return 0;
}
