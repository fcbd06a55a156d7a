/*
 * Fuzz target: the log block decoder (storage/logs_codec.c). Any input must
 * decode or fail cleanly; a block that decodes is re-encoded and must decode
 * again to the same record count (a round trip through the encoder), and its
 * records feed the token filter and the phrase matcher.
 */
#include "logs_codec.h"

#include "sl_arena.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_hash(void *ud, uint64_t h) {
    (void)ud;
    (void)h;
}

static void text_cb(void *ud, sl_str text) {
    stg_logs_tokens(text, no_hash, ud);
    (void)stg_logs_phrase_in(text, SL_STR_LIT("error code"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_arena a;
    sl_arena_init(&a, 64u << 20);
    sl_log_record *recs = NULL;
    size_t n = 0;
    if (stg_logs_decode(data, size, &a, &recs, &n, NULL) == 0) {
        const sl_log_record **ptrs = malloc((n ? n : 1) * sizeof(*ptrs));
        if (ptrs != NULL) {
            for (size_t i = 0; i < n; i++) {
                ptrs[i] = &recs[i];
                stg_logs_texts(&recs[i], text_cb, NULL);
            }
            sl_buf b, f;
            sl_buf_init(&b, 0);
            sl_buf_init(&f, 0);
            if (stg_logs_encode(ptrs, n, 1, &b) == 0) {
                sl_log_record *again = NULL;
                size_t m = 0;
                if (stg_logs_decode(b.data, b.len, &a, &again, &m, NULL) != 0 || m != n) {
                    abort();
                }
            }
            if (stg_logs_bloom_build(ptrs, n, &f) == 0) {
                (void)stg_logs_bloom_maybe(f.data, f.len, stg_logs_token_hash("error", 5));
            }
            sl_buf_free(&b);
            sl_buf_free(&f);
            free(ptrs);
        }
    }
    sl_arena_free(&a);
    return 0;
}
