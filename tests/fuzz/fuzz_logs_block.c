/*
 * Fuzz target: the log block decoder (storage/logs_codec.c). Every input is
 * tried twice: as a block, and as the inside of one (two bytes of record
 * count, then a raw payload that the target compresses and wraps in a valid
 * header, so that mutations reach the column parser instead of dying at
 * zstd's checksum). Any input must decode or fail cleanly; a block that
 * decodes is re-encoded and must decode again to the same record count (a
 * round trip through the encoder), and its records feed the token filter
 * and the phrase matcher.
 */
#include "logs_codec.h"

#include "sl_arena.h"

#include <stdlib.h>
#include <string.h>

#include <zstd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_hash(void *ud, uint64_t h) {
    (void)ud;
    (void)h;
}

static void text_cb(void *ud, sl_str text) {
    stg_logs_tokens(text, no_hash, ud);
    (void)stg_logs_phrase_in(text, SL_STR_LIT("error code"));
}

static void try_block(const uint8_t *data, size_t size) {
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_block(data, size);
    if (size >= 2) {
        uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8;
        size_t raw = size - 2;
        size_t bound = ZSTD_compressBound(raw);
        uint8_t *blk = malloc(STG_LOGS_HDR + bound);
        if (blk != NULL) {
            size_t z = ZSTD_compress(blk + STG_LOGS_HDR, bound, data + 2, raw, 1);
            if (!ZSTD_isError(z)) {
                memcpy(blk, STG_LOGS_MAGIC, 4);
                blk[4] = 1;
                for (int i = 0; i < 4; i++) {
                    blk[5 + i] = (uint8_t)(n >> (8 * i));
                    blk[9 + i] = (uint8_t)((uint32_t)raw >> (8 * i));
                }
                try_block(blk, STG_LOGS_HDR + z);
            }
            free(blk);
        }
    }
    return 0;
}
