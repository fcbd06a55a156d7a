/*
 * Fuzz target: request-body decompression (gzip, deflate, zstd) with the
 * collector's running size limit. The first byte picks the encoding and a
 * small limit, the rest is the compressed body. Whatever the input, the
 * result is 0 with at most `limit` bytes, SL_ETOOBIG, SL_EDECODE or
 * SL_ENOMEM, and never more memory than the limit.
 */
#include "col_int.h"
#include "sl_err.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    static const col_enc encs[] = {COL_ENC_GZIP, COL_ENC_DEFLATE, COL_ENC_ZSTD};
    col_enc enc = encs[data[0] % 3];
    size_t limit = (size_t)1 << (8 + (data[0] >> 2) % 12); /* 256 B .. 512 KiB */
    sl_buf out;
    sl_buf_init(&out, limit);
    int rc = col_inflate(enc, data + 1, size - 1, &out);
    if (rc == 0 && out.len > limit) {
        abort();
    }
    if (rc != 0 && rc != SL_ETOOBIG && rc != SL_EDECODE && rc != SL_ENOMEM) {
        abort();
    }
    sl_buf_free(&out);
    return 0;
}
