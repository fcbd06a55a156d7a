/*
 * A program of "another C project": compiled against the installed header
 * and linked through pkg-config (shared, then static) by install_test.sh.
 */
#include <sightline/sightline.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    if (strcmp(sl_otel_version(), SL_OTEL_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", SL_OTEL_VERSION_STRING, sl_otel_version());
        return 1;
    }
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.service_name = "consumer";
    o.endpoint = "http://127.0.0.1:9"; /* nothing listens: exports fail quietly */
    sl_provider *p;
    if (sl_provider_create(&o, &p) != 0) {
        return 1;
    }
    sl_tracer *t;
    sl_logger *l;
    sl_meter *m;
    sl_instrument *c;
    sl_span *s;
    if (sl_provider_tracer(p, "consumer", "1", &t) != 0 ||
        sl_provider_logger(p, "consumer", "1", &l) != 0 ||
        sl_provider_meter(p, "consumer", "1", &m) != 0 ||
        sl_meter_counter(m, "consumer.runs", NULL, NULL, &c) != 0 ||
        sl_span_start(t, "main", NULL, &s) != 0) {
        return 1;
    }
    sl_context_push_span(s);
    sl_logger_emit(l, SL_SEVERITY_INFO, "hello", NULL, 0);
    sl_instrument_add_int(c, 1, NULL, 0);
    sl_context_pop();
    sl_span_end(s, 0);
    sl_provider_shutdown(p, 100);
    sl_provider_destroy(p);
    printf("sightline-otel %s ok\n", sl_otel_version());
    return 0;
}
