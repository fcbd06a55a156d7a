/*
 * Request body decompression with a running limit: output goes into an sl_buf
 * whose max_size is the body limit, so a gzip or zstd bomb is cut off as soon
 * as it inflates past the limit, never fully allocated. Runs on decode workers.
 */
#include "col_int.h"

#include "sl_err.h"

#include <zlib.h>
#include <zstd.h>

static int inflate_zlib(int window_bits, const uint8_t *in, size_t len, sl_buf *out) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, window_bits) != Z_OK) {
        return SL_ENOMEM;
    }
    int rc = 0;
    zs.next_in = (Bytef *)(uintptr_t)in;
    size_t left = len;
    for (;;) {
        if (zs.avail_in == 0 && left > 0) {
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.avail_in = chunk;
            left -= chunk;
        }
        if ((rc = sl_buf_reserve(out, 64 * 1024)) != 0) {
            /* Reserve fails at the limit: allow filling what is left. */
            if (out->max_size == 0 || out->len >= out->max_size) {
                break;
            }
            rc = sl_buf_reserve(out, out->max_size - out->len);
            if (rc != 0) {
                break;
            }
        }
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        int zr = inflate(&zs, Z_NO_FLUSH);
        out->len = out->cap - zs.avail_out;
        if (zr == Z_STREAM_END) {
            /* Concatenated gzip members are legal; keep going if bytes are left. */
            if (zs.avail_in == 0 && left == 0) {
                rc = 0;
                break;
            }
            if (inflateReset(&zs) != Z_OK) {
                rc = SL_EDECODE;
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) {
            rc = SL_EDECODE; /* truncated */
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = zr == Z_MEM_ERROR ? SL_ENOMEM : SL_EDECODE;
            break;
        }
        if (out->max_size != 0 && out->len >= out->max_size && zs.avail_out == 0) {
            rc = SL_ETOOBIG;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

static int inflate_zstd(const uint8_t *in, size_t len, sl_buf *out) {
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (ds == NULL) {
        return SL_ENOMEM;
    }
    /* Refuse frames that would need a huge window (memory) up front. */
    ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, 27);
    ZSTD_inBuffer ib = {in, len, 0};
    int rc = 0;
    size_t zr = 1;
    while (ib.pos < ib.size || zr != 0) {
        if ((rc = sl_buf_reserve(out, 64 * 1024)) != 0) {
            if (out->max_size == 0 || out->len >= out->max_size) {
                break;
            }
            if ((rc = sl_buf_reserve(out, out->max_size - out->len)) != 0) {
                break;
            }
        }
        ZSTD_outBuffer ob = {out->data, out->cap, out->len};
        zr = ZSTD_decompressStream(ds, &ob, &ib);
        out->len = ob.pos;
        if (ZSTD_isError(zr)) {
            rc = SL_EDECODE;
            break;
        }
        if (zr != 0 && ib.pos == ib.size && ob.pos < ob.size) {
            rc = SL_EDECODE; /* truncated frame */
            break;
        }
        if (out->max_size != 0 && out->len >= out->max_size && zr != 0) {
            rc = SL_ETOOBIG;
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

int col_inflate(col_enc enc, const uint8_t *in, size_t len, sl_buf *out) {
    switch (enc) {
    case COL_ENC_GZIP:
        return inflate_zlib(15 + 16, in, len, out);
    case COL_ENC_DEFLATE:
        return inflate_zlib(15 + 32, in, len, out); /* zlib or gzip header */
    case COL_ENC_ZSTD:
        return inflate_zstd(in, len, out);
    default:
        return SL_EDECODE;
    }
}
