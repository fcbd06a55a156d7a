/*
 * libFuzzer target for the metrics engine's decoders (storage/metrics_codec.c):
 * a Gorilla chunk, an open chunk's append trailer, a compacted sample run, a
 * postings list and a metrics WAL record, all from the same
 * input. Anything must decode or be rejected, never crash or over-read. What
 * decodes as a chunk is a round-trip oracle: encoding the samples again and
 * decoding that must give the same times and value bits, else abort().
 * Single-threaded.
 */
#include "metrics_int.h"

#include "sl_err.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n;
    int64_t lo, hi;
    if (ms_chunk_info(data, size, &n, &lo, &hi) == 0 && n <= 4096) {
        stg_sample *s = malloc((n ? n : 1) * sizeof(*s));
        size_t got;
        if (s != NULL && ms_chunk_decode(data, size, s, n, &got) == 0 && got > 0) {
            sl_buf b;
            sl_buf_init(&b, 0);
            stg_sample *t = malloc(got * sizeof(*t));
            size_t got2 = 0;
            if (t == NULL || ms_chunk_encode(s, got, &b) != 0 ||
                ms_chunk_decode(b.data, b.len, t, got, &got2) != 0 || got2 != got) {
                abort();
            }
            for (size_t i = 0; i < got; i++) {
                if (t[i].t_ms != s[i].t_ms || memcmp(&t[i].v, &s[i].v, 8) != 0) {
                    abort();
                }
            }
            free(t);
            sl_buf_free(&b);
        }
        free(s);
    }
    /* The compacted windows' sample codec. */
    stg_sample smp[512];
    size_t got;
    if (ms_samples_decode(data, size, smp, 512, &got) == 0 && got > 0) {
        sl_buf b;
        sl_buf_init(&b, 0);
        stg_sample back[512];
        size_t got2 = 0;
        if (ms_samples_encode(smp, got, &b) != 0 ||
            ms_samples_decode(b.data, b.len, back, 512, &got2) != 0 || got2 != got) {
            abort();
        }
        for (size_t i = 0; i < got; i++) {
            if (back[i].t_ms != smp[i].t_ms || memcmp(&back[i].v, &smp[i].v, 8) != 0) {
                abort();
            }
        }
        sl_buf_free(&b);
    }
    /* An open chunk's trailer: appending must parse it or refuse it; what
     * it appends to must still decode to the old count plus one. */
    sl_buf ab;
    sl_buf_init(&ab, 0);
    stg_sample one = {1700000000000, 1.5};
    if (ms_chunk_append(data, size, &one, 1, true, &ab) == 0) {
        size_t cnt, dn;
        int64_t amin, amax;
        if (ms_chunk_info(ab.data, ab.len, &cnt, &amin, &amax) != 0 || cnt < 2 ||
            amax != one.t_ms) {
            abort();
        }
        if (cnt <= 4096) {
            stg_sample *as = malloc(cnt * sizeof(*as));
            if (as != NULL) {
                (void)ms_chunk_decode(ab.data, ab.len, as, cnt, &dn);
            }
            free(as);
        }
    }
    sl_buf_free(&ab);
    if (ms_postings_count(data, size, &n) == 0) {
        uint32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
        if (ids != NULL) {
            (void)ms_postings_decode(data, size, ids, n, &n);
        }
        free(ids);
    }
    sl_arena a;
    sl_arena_init(&a, 64u << 20);
    ms_record r;
    if (ms_record_decode(data, size, &a, &r) == 0) {
        for (size_t i = 0; i < r.nseries; i++) {
            stg_label *l;
            size_t nl;
            (void)ms_labels_decode(r.series[i].labels, r.series[i].labels_size, &a, &l, &nl);
        }
    }
    sl_arena_free(&a);
    return 0;
}
