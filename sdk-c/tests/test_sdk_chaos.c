/*
 * Failing-allocator test: a scenario touching every allocation site of the
 * SDK (provider set-up, pools, attribute trees, events, links, encoding, log
 * records, metric series, collection) runs once to count its allocations,
 * then once per allocation with that one failing. Every run must end
 * cleanly: errors returned, nothing crashes, nothing leaks (the ASan build
 * checks leaks). The linker wraps malloc/calloc/realloc for the SDK's
 * objects (libcurl's own allocations are not counted).
 */
#include "sl_test.h"

#include "../src/sdk_int.h"

#include <stdatomic.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);

static atomic_long alloc_count;
static atomic_long fail_at = -1;

static bool should_fail(void) {
    long n = atomic_fetch_add(&alloc_count, 1);
    return n == atomic_load(&fail_at);
}

void *__wrap_malloc(size_t n) {
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b) {
    return should_fail() ? NULL : __real_calloc(a, b);
}

void *__wrap_realloc(void *p, size_t n) {
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void scenario(void) {
    sl_provider_options o;
    sl_provider_options_init(&o);
    o.endpoint = "http://127.0.0.1:9";
    o.bsp.schedule_delay_ms = 3600 * 1000;
    o.bsp.max_queue_size = 4; /* few preallocated spans: the pool grows */
    o.blrp.schedule_delay_ms = 3600 * 1000;
    o.metric_export_interval_ms = 3600 * 1000;
    o.resource_attributes = "a=b,c=d%20e";
    sl_provider *p;
    if (sl_provider_create(&o, &p) != 0) {
        return;
    }
    sl_tracer *t = NULL;
    sl_logger *lg = NULL;
    sl_meter *m = NULL;
    sl_provider_tracer(p, "chaos", "1", &t);
    sl_provider_logger(p, "chaos", "1", &lg);
    sl_provider_meter(p, "chaos", "1", &m);
    sl_any arr[3] = {SL_ANY_STR("x"), SL_ANY_I64(1), SL_ANY_STR("a longer string value")};
    sl_kv kvl[2] = {SL_KV_STR("k", "v"), SL_KV_ARRAY("a", arr, 3)};
    sl_kv attrs[] = {SL_KV_STR("s", "value"), SL_KV_INT("i", 1), SL_KV_ARRAY("arr", arr, 3),
                     SL_KV_KVLIST("map", kvl, 2)};
    sl_span *spans[8] = {0};
    for (int i = 0; i < 8; i++) {
        sl_span_start(t, "op", NULL, &spans[i]);
        sl_span_set_attrs(spans[i], attrs, 4);
        for (int e = 0; e < 6; e++) {
            sl_span_add_event(spans[i], "event", 0, attrs, 4);
        }
        sl_span_context lc;
        if (sl_span_get_context(spans[i], &lc) == 0) {
            sl_link link = {&lc, attrs, 2};
            for (int l = 0; l < 3; l++) {
                sl_span_add_link(spans[i], &link);
            }
        }
        sl_span_set_status(spans[i], SL_STATUS_ERROR, "boom");
    }
    /* Encode the recording ones by hand, both encodings. */
    void *items[8];
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (sl_span_is_recording(spans[i])) {
            spans[i]->end_ns = spans[i]->start_ns + 1;
            items[n++] = spans[i];
        } else {
            sl_span_end(spans[i], 0);
        }
    }
    for (int json = 0; json < 2; json++) {
        ot_buf b = {0};
        ot_enc e;
        ot_enc_init(&e, &b, json);
        ot_span_ops.encode(p, items, n, &e);
        ot_enc_finish(&e);
        ot_buf_free(&b);
    }
    ot_span_ops.release(p, items, n);
    sl_span *queued = NULL;
    sl_span_start(t, "queued", NULL, &queued);
    sl_span_end(queued, 0);

    for (int i = 0; i < 6; i++) {
        sl_logger_emit(lg, SL_SEVERITY_INFO, "log line", attrs, 4);
    }
    sl_instrument *c = NULL, *h = NULL;
    sl_meter_counter(m, "chaos.count", NULL, NULL, &c);
    sl_meter_histogram(m, "chaos.hist", NULL, NULL, &h);
    for (int i = 0; i < 40; i++) {
        sl_kv a = SL_KV_INT("i", i);
        sl_instrument_add_int(c, 1, &a, 1);
        sl_instrument_record(h, i, &a, 1);
    }
    if (p->metrics != NULL) {
        const uint8_t *body;
        size_t len;
        ot_metrics_collect(p->metrics, false, &body, &len);
    }
    sl_provider_shutdown(p, 0);
    sl_provider_destroy(p);
}

static void test_every_allocation_fails_once(void) {
    atomic_store(&fail_at, -1);
    atomic_store(&alloc_count, 0);
    scenario();
    long total = atomic_load(&alloc_count);
    ASSERT_TRUE(total > 50);
    for (long k = 0; k < total; k++) {
        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, k);
        scenario();
    }
    atomic_store(&fail_at, -1);
    fprintf(stderr, "%ld allocation sites exercised\n", total);
}

int main(void) {
    RUN(test_every_allocation_fails_once);
    return SL_TEST_RESULT();
}
