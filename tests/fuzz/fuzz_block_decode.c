/*
 * libFuzzer target for the span block decoder (storage/block_codec.c).
 *
 * Any input must either decode or be rejected with SL_ECORRUPT / SL_ENOMEM,
 * never crash, over-read or leak. Whatever decodes is a round-trip oracle:
 * encoding the decoded spans and decoding that block again must give the
 * same spans, field for field (doubles bit for bit), and spans that shared a
 * resource must still share one. A mismatch abort()s so the fuzzer reports it.
 *
 * The codec is compiled with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (see
 * tests/storage_codec.cmake), which skips only the block checksum so that
 * mutations reach the column parser. Single-threaded.
 */
#include "block_codec.h"

#include "sl_err.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_ARENA_MAX ((size_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int attrs_same(const sl_attr *a, uint32_t na, const sl_attr *b, uint32_t nb) {
    if (na != nb) {
        return 0;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (!sl_str_eq(a[i].key, b[i].key) || !sl_value_eq(&a[i].val, &b[i].val)) {
            return 0;
        }
    }
    return 1;
}

static int resource_same(const sl_resource *a, const sl_resource *b) {
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return sl_str_eq(a->service, b->service) && a->dropped_attrs == b->dropped_attrs &&
           attrs_same(a->attrs, a->nattrs, b->attrs, b->nattrs);
}

static int span_same(const sl_span *a, const sl_span *b) {
    if (memcmp(a->trace_id, b->trace_id, 16) != 0 || memcmp(a->span_id, b->span_id, 8) != 0 ||
        memcmp(a->parent_span_id, b->parent_span_id, 8) != 0 || a->flags != b->flags ||
        a->kind != b->kind || a->status_code != b->status_code ||
        a->start_unix_nano != b->start_unix_nano || a->end_unix_nano != b->end_unix_nano ||
        !sl_str_eq(a->name, b->name) || !sl_str_eq(a->trace_state, b->trace_state) ||
        !sl_str_eq(a->status_message, b->status_message) ||
        !sl_str_eq(a->scope_name, b->scope_name) ||
        !sl_str_eq(a->scope_version, b->scope_version) ||
        !resource_same(a->resource, b->resource) ||
        !attrs_same(a->attrs, a->nattrs, b->attrs, b->nattrs) ||
        a->dropped_attrs != b->dropped_attrs || a->nevents != b->nevents ||
        a->dropped_events != b->dropped_events || a->nlinks != b->nlinks ||
        a->dropped_links != b->dropped_links) {
        return 0;
    }
    for (uint32_t i = 0; i < a->nevents; i++) {
        const sl_event *x = &a->events[i], *y = &b->events[i];
        if (x->ts_unix_nano != y->ts_unix_nano || !sl_str_eq(x->name, y->name) ||
            x->dropped_attrs != y->dropped_attrs ||
            !attrs_same(x->attrs, x->nattrs, y->attrs, y->nattrs)) {
            return 0;
        }
    }
    for (uint32_t i = 0; i < a->nlinks; i++) {
        const sl_link *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) != 0 || memcmp(x->span_id, y->span_id, 8) != 0 ||
            !sl_str_eq(x->trace_state, y->trace_state) || x->flags != y->flags ||
            x->dropped_attrs != y->dropped_attrs ||
            !attrs_same(x->attrs, x->nattrs, y->attrs, y->nattrs)) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_arena a1, a2;
    sl_buf buf;
    sl_span *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    const sl_span **ptrs = NULL;
    sl_arena_init(&a1, FUZZ_ARENA_MAX);
    sl_arena_init(&a2, FUZZ_ARENA_MAX);
    sl_buf_init(&buf, 0);

    int rc = stg_block_decode(data, size, &a1, &s1, &n1);
    if (rc != 0) {
        if (rc != SL_ECORRUPT && rc != SL_ENOMEM) {
            abort();
        }
        goto out;
    }
    ptrs = malloc((n1 + 1) * sizeof(*ptrs));
    if (ptrs == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n1; i++) {
        ptrs[i] = &s1[i];
    }
    /* Vary the level with the input so the stored and compressed paths and
     * zstd's fast levels all see decoded data. */
    static const int levels[] = {1, -5, 3, 6};
    rc = stg_block_encode(ptrs, n1, levels[size % 4], &buf);
    if (rc == SL_ENOMEM) {
        goto out;
    }
    if (rc != 0) {
        abort();
    }
    rc = stg_block_decode(buf.data, buf.len, &a2, &s2, &n2);
    if (rc == SL_ENOMEM) {
        goto out;
    }
    if (rc != 0 || n2 != n1) {
        abort();
    }
    for (size_t i = 0; i < n1; i++) {
        if (!span_same(&s1[i], &s2[i])) {
            abort();
        }
        if (i > 0 && s1[i].resource == s1[i - 1].resource && s2[i].resource != s2[i - 1].resource) {
            abort();
        }
    }

out:
    free(ptrs);
    sl_buf_free(&buf);
    sl_arena_free(&a1);
    sl_arena_free(&a2);
    return 0;
}
