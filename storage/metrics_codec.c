/*
 * The metrics engine's pure codecs (formats in metrics_int.h): canonical
 * label sets, Gorilla chunks (delta-of-delta timestamps, XOR values),
 * postings lists, the metrics WAL record, and the appender that resolves
 * out-of-order samples, duplicates and delta accumulation.
 *
 * Every decoder checks every length against its input: they read what clients
 * and disks give them (fuzzed by tests/fuzz/fuzz_metrics_chunk.c).
 * Thread-safety: stateless, reentrant.
 */
#include "metrics_int.h"

#include "sl_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- canonical labels ---------------------------------------------------- */

static uint8_t *put_varint_raw(uint8_t *w, uint64_t v) {
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

/* Copies len bytes, inline for the short strings labels are made of: two
 * overlapping loads and stores, never touching a byte outside either range. */
static inline uint8_t *copy_short(uint8_t *w, const char *src, size_t len) {
    const uint8_t *p = (const uint8_t *)src;
    if (len >= 8 && len <= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        memcpy(w, &a, 8);
        memcpy(w + len - 8, &b, 8);
    } else if (len >= 4 && len < 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        memcpy(w, &a, 4);
        memcpy(w + len - 4, &b, 4);
    } else if (len < 4) {
        for (size_t i = 0; i < len; i++) {
            w[i] = p[i];
        }
    } else {
        memcpy(w, p, len);
    }
    return w + len;
}

/* Writes the canonical encoding at w, which has room for it; returns the end. */
static uint8_t *labels_write(uint8_t *w, const stg_label *l, size_t n) {
    for (size_t i = 0; i < n; i++) {
        w = put_varint_raw(w, l[i].name.len);
        w = copy_short(w, l[i].name.ptr, l[i].name.len);
        w = put_varint_raw(w, l[i].value.len);
        w = copy_short(w, l[i].value.ptr, l[i].value.len);
    }
    return w;
}

int ms_labels_encode(const stg_label *l, size_t n, sl_buf *out) {
    size_t bound = 0;
    for (size_t i = 0; i < n; i++) {
        bound += l[i].name.len + l[i].value.len + 20;
    }
    if (sl_buf_reserve(out, bound) == 0) {
        out->len = (size_t)(labels_write(out->data + out->len, l, n) - out->data);
        return 0;
    }
    int rc = 0; /* the buffer's cap: append what fits, and fail as it does */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = sl_buf_put_uvarint(out, l[i].name.len)) == 0 &&
            (rc = sl_buf_append(out, l[i].name.ptr, l[i].name.len)) == 0 &&
            (rc = sl_buf_put_uvarint(out, l[i].value.len)) == 0) {
            rc = sl_buf_append(out, l[i].value.ptr, l[i].value.len);
        }
    }
    return rc;
}

static int get_str(const uint8_t **p, const uint8_t *end, sl_str *out) {
    uint64_t len;
    if (sl_get_uvarint(p, end, &len) != 0 || len > (uint64_t)(end - *p)) {
        return SL_ECORRUPT;
    }
    *out = (sl_str){(const char *)*p, (size_t)len};
    *p += len;
    return 0;
}

int ms_labels_decode(const uint8_t *p, size_t size, sl_arena *a, stg_label **out, size_t *n) {
    const uint8_t *end = p + size, *q = p;
    size_t count = 0;
    while (q < end) {
        sl_str x, y;
        if (get_str(&q, end, &x) != 0 || get_str(&q, end, &y) != 0) {
            return SL_ECORRUPT;
        }
        count++;
    }
    stg_label *l = count > 0 ? sl_arena_alloc(a, count * sizeof(*l)) : NULL;
    if (count > 0 && l == NULL) {
        return SL_ENOMEM;
    }
    q = p;
    for (size_t i = 0; i < count; i++) {
        get_str(&q, end, &l[i].name);
        get_str(&q, end, &l[i].value);
    }
    *out = l;
    *n = count;
    return 0;
}

uint64_t ms_hash(const void *p, size_t len) {
    /* FNV-1a folded with a final mix: stable across builds (it keys disk). */
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* --- bit streams ---------------------------------------------------------- */

typedef struct bitw {
    sl_buf *b;
    uint64_t acc;
    int nacc; /* bits in acc, < 8 after each call */
    int rc;
} bitw;

/* One byte out: a store into reserved room, a call only to grow. */
static inline void bw_byte(bitw *w, uint8_t c) {
    sl_buf *b = w->b;
    if (b->len < b->cap) {
        b->data[b->len++] = c;
    } else if (w->rc == 0) {
        w->rc = sl_buf_append(b, &c, 1);
    }
}

static void bw_put(bitw *w, uint64_t v, int nbits) {
    /* Writes the low nbits of v, most significant first. */
    while (nbits > 0) {
        int take = nbits > 56 ? 56 : nbits;
        uint64_t part = (v >> (nbits - take)) & (~0ull >> (64 - take));
        w->acc = (w->acc << take) | part;
        w->nacc += take;
        nbits -= take;
        while (w->nacc >= 8) {
            bw_byte(w, (uint8_t)(w->acc >> (w->nacc - 8)));
            w->nacc -= 8;
        }
        w->acc &= (1ull << w->nacc) - 1;
    }
}

static void bw_flush(bitw *w) {
    if (w->nacc > 0) {
        bw_byte(w, (uint8_t)(w->acc << (8 - w->nacc)));
        w->nacc = 0;
    }
}

/* --- chunks ----------------------------------------------------------------- */

static int clz64(uint64_t v) {
    return v == 0 ? 64 : __builtin_clzll(v);
}

static int ctz64(uint64_t v) {
    return v == 0 ? 64 : __builtin_ctzll(v);
}

/* Signed value fits in nbits two's complement. */
static bool fits(int64_t v, int nbits) {
    int64_t lim = (int64_t)1 << (nbits - 1);
    return v >= -lim && v < lim;
}

/* The encoder's state after a sample: what appending to a chunk needs. */
typedef struct chunk_enc {
    bitw w;
    uint64_t prev_t, prev_delta, prev_v;
    int lead, trail;
} chunk_enc;

static void enc_first(chunk_enc *e, const stg_sample *s) {
    bw_put(&e->w, (uint64_t)s->t_ms, 64);
    bw_put(&e->w, ms_f2u(s->v), 64);
    e->prev_t = (uint64_t)s->t_ms;
    e->prev_delta = 0;
    e->prev_v = ms_f2u(s->v);
    e->lead = -1;
    e->trail = 0;
}

static void enc_next(chunk_enc *e, const stg_sample *s) {
    bitw *w = &e->w;
    /* Wrapping arithmetic: any two int64 times have a representable
     * difference modulo 2^64, and the 64-bit escape carries it. */
    uint64_t delta = (uint64_t)s->t_ms - e->prev_t;
    int64_t dod = (int64_t)(delta - e->prev_delta);
    if (dod == 0) {
        bw_put(w, 0, 1);
    } else if (fits(dod, 14)) {
        bw_put(w, 2, 2);
        bw_put(w, (uint64_t)dod, 14);
    } else if (fits(dod, 17)) {
        bw_put(w, 6, 3);
        bw_put(w, (uint64_t)dod, 17);
    } else if (fits(dod, 20)) {
        bw_put(w, 14, 4);
        bw_put(w, (uint64_t)dod, 20);
    } else {
        bw_put(w, 15, 4);
        bw_put(w, (uint64_t)dod, 64);
    }
    e->prev_delta = delta;
    e->prev_t = (uint64_t)s->t_ms;
    uint64_t v = ms_f2u(s->v), x = v ^ e->prev_v;
    if (x == 0) {
        bw_put(w, 0, 1);
    } else {
        int l = clz64(x), t = ctz64(x);
        if (l > 31) {
            l = 31;
        }
        if (e->lead >= 0 && l >= e->lead && t >= e->trail) {
            bw_put(w, 2, 2);
            bw_put(w, x >> e->trail, 64 - e->lead - e->trail);
        } else {
            int sig = 64 - l - t;
            bw_put(w, 3, 2);
            bw_put(w, (uint64_t)l, 5);
            bw_put(w, (uint64_t)(sig & 63), 6); /* 64 is written as 0 */
            bw_put(w, x >> t, sig);
            e->lead = l;
            e->trail = t;
        }
    }
    e->prev_v = v;
}

/* Flushes the stream and, for an open chunk, appends the trailer: u64 last
 * value bits (little-endian), uvarint last delta, u8 lead + 1, u8 trail, u8
 * bits used in the stream's last byte (0: all 8), u8 the trailer's size. */
static int enc_finish(chunk_enc *e, bool open) {
    int used = e->w.nacc;
    bw_flush(&e->w);
    if (!open || e->w.rc != 0) {
        return e->w.rc;
    }
    uint8_t t[24];
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        t[n++] = (uint8_t)(e->prev_v >> (8 * i));
    }
    uint64_t d = e->prev_delta;
    while (d >= 0x80) {
        t[n++] = (uint8_t)(d | 0x80);
        d >>= 7;
    }
    t[n++] = (uint8_t)d;
    t[n++] = (uint8_t)(e->lead + 1);
    t[n++] = (uint8_t)e->trail;
    t[n++] = (uint8_t)used;
    t[n] = (uint8_t)(n + 1);
    return sl_buf_append(e->w.b, t, n + 1);
}

static int chunk_put_header(sl_buf *out, size_t n, int64_t mint, int64_t maxt) {
    int rc;
    if ((rc = sl_buf_put_uvarint(out, n)) != 0 ||
        (rc = sl_buf_put_uvarint(out, sl_zigzag(mint))) != 0) {
        return rc;
    }
    /* A sample takes at most 4 + 64 + 2 + 5 + 6 + 64 bits; room reserved
     * up front keeps bw_byte a store (a bounded buffer just grows per byte). */
    rc = sl_buf_put_uvarint(out, sl_zigzag(maxt));
    (void)sl_buf_reserve(out, n * 19 + 40);
    return rc;
}

static int chunk_encode(const stg_sample *s, size_t n, bool open, sl_buf *out) {
    if (n == 0) {
        return sl_buf_put_uvarint(out, 0);
    }
    int rc = chunk_put_header(out, n, s[0].t_ms, s[n - 1].t_ms);
    if (rc != 0) {
        return rc;
    }
    chunk_enc e = {.w = {out, 0, 0, 0}};
    enc_first(&e, &s[0]);
    for (size_t i = 1; i < n; i++) {
        enc_next(&e, &s[i]);
    }
    return enc_finish(&e, open);
}

int ms_chunk_encode(const stg_sample *s, size_t n, sl_buf *out) {
    return chunk_encode(s, n, false, out);
}

int ms_chunk_encode_open(const stg_sample *s, size_t n, sl_buf *out) {
    return chunk_encode(s, n, true, out);
}

int ms_chunk_append(const uint8_t *p, size_t size, const stg_sample *add, size_t nadd, bool open,
                    sl_buf *out) {
    const uint8_t *end = p + size;
    uint64_t cnt, zmin, zmax;
    if (nadd == 0 || sl_get_uvarint(&p, end, &cnt) != 0 || cnt == 0 ||
        sl_get_uvarint(&p, end, &zmin) != 0 || sl_get_uvarint(&p, end, &zmax) != 0 || p >= end) {
        return SL_ECORRUPT;
    }
    size_t tl = end[-1];
    if (tl < 13 || tl > 22 || tl > (size_t)(end - p)) {
        return SL_ECORRUPT;
    }
    const uint8_t *t = end - tl, *tend = end - 4;
    chunk_enc e = {.w = {out, 0, 0, 0}};
    for (int i = 0; i < 8; i++) {
        e.prev_v |= (uint64_t)t[i] << (8 * i);
    }
    const uint8_t *q = t + 8;
    if (sl_get_uvarint(&q, tend, &e.prev_delta) != 0 || q != tend) {
        return SL_ECORRUPT;
    }
    e.lead = tend[0] - 1;
    e.trail = tend[1];
    int used = tend[2];
    size_t stream = (size_t)(t - p);
    /* Every sample takes at least 2 bits of the stream: a count beyond that
     * is corrupt (and checked before it is multiplied). */
    if (e.lead < -1 || e.lead > 31 || e.trail > 63 || used > 7 || stream < 16 ||
        cnt > (uint64_t)stream * 4 || (cnt * 2 + 126) / 8 > stream) {
        return SL_ECORRUPT;
    }
    e.prev_t = (uint64_t)sl_unzigzag(zmax);
    int rc = chunk_put_header(out, (size_t)cnt + nadd, sl_unzigzag(zmin), add[nadd - 1].t_ms);
    if (rc == 0) {
        /* The stream minus a partly used last byte, whose bits go back
         * into the writer. */
        size_t whole = used > 0 ? stream - 1 : stream;
        rc = sl_buf_append(out, p, whole);
        if (used > 0) {
            e.w.acc = (uint64_t)(p[whole] >> (8 - used));
            e.w.nacc = used;
        }
    }
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < nadd; i++) {
        enc_next(&e, &add[i]);
    }
    return enc_finish(&e, open);
}

static int chunk_header(const uint8_t **p, const uint8_t *end, size_t *n, int64_t *mint,
                        int64_t *maxt) {
    uint64_t cnt, a, b;
    if (sl_get_uvarint(p, end, &cnt) != 0) {
        return SL_ECORRUPT;
    }
    if (cnt == 0) {
        *n = 0;
        *mint = *maxt = 0;
        return 0;
    }
    if (sl_get_uvarint(p, end, &a) != 0 || sl_get_uvarint(p, end, &b) != 0 ||
        cnt > (uint64_t)(end - *p) * 8) { /* each sample takes >= 2 bits, the first 128 */
        return SL_ECORRUPT;
    }
    *n = (size_t)cnt;
    *mint = sl_unzigzag(a);
    *maxt = sl_unzigzag(b);
    return 0;
}

int ms_chunk_info(const uint8_t *p, size_t size, size_t *n, int64_t *mint, int64_t *maxt) {
    return chunk_header(&p, p + size, n, mint, maxt);
}

/* Decoding reads the bit stream from a copy followed by CHUNK_PAD zero bytes:
 * a sample is at most 145 bits and the reader loads 9 bytes from a bit's
 * byte, so a sample that starts inside the stream reads inside the copy, and
 * the stream's end is checked once per sample instead of once per field. */
#define CHUNK_PAD 32
#define CHUNK_STACK 4096

/* The 64 bits from bit pos on, most significant first. */
static inline uint64_t cd_peek(const uint8_t *p, size_t pos) {
    const uint8_t *q = p + (pos >> 3);
    unsigned off = (unsigned)(pos & 7);
    return (sl_get_be64(q) << off) | (((uint64_t)q[8] << off) >> 8);
}

static int chunk_bits(const uint8_t *p, size_t nbits, size_t cnt, stg_sample *out) {
    uint64_t t = sl_get_be64(p), v = sl_get_be64(p + 8), delta = 0;
    size_t pos = 128;
    if (nbits < pos) {
        return SL_ECORRUPT;
    }
    out[0] = (stg_sample){(int64_t)t, ms_u2f(v)};
    int lead = -1, trail = 0;
    for (size_t i = 1; i < cnt; i++) {
        if (pos >= nbits) {
            return SL_ECORRUPT; /* a sample takes at least 2 bits */
        }
        /* The delta-of-delta: '0', or '10', '110', '1110' with 14, 17 or
         * 20 bits, or '1111' with 64. */
        uint64_t w = cd_peek(p, pos);
        int have; /* the valid bits left at the top of w */
        if ((w >> 63) == 0) {
            pos++;
            w <<= 1;
            have = 63;
        } else {
            static const int widths[5] = {0, 14, 17, 20, 64};
            int ones = w == ~0ull ? 4 : __builtin_clzll(~w);
            ones = ones > 4 ? 4 : ones;
            int nb = widths[ones];
            pos += (size_t)(ones < 4 ? ones + 1 : 4);
            uint64_t raw = cd_peek(p, pos) >> (64 - nb);
            pos += (size_t)nb;
            if (nb < 64 && (raw >> (nb - 1)) != 0) {
                raw |= ~0ull << nb; /* sign-extend */
            }
            delta += raw;
            w = cd_peek(p, pos);
            have = 64;
        }
        t += delta;
        /* The value: '0' the same, '10' XOR bits inside the previous
         * window, '11' a new window (5 bits leading zeros, 6 bits length). */
        if ((w >> 63) == 0) {
            pos++;
        } else if ((w >> 62) == 2) {
            if (lead < 0) {
                return SL_ECORRUPT;
            }
            int nb = 64 - lead - trail;
            uint64_t x = nb + 2 <= have ? (w << 2) >> (64 - nb) : cd_peek(p, pos + 2) >> (64 - nb);
            v ^= x << trail;
            pos += 2 + (size_t)nb;
        } else {
            int l = (int)((w >> 57) & 31), sig = (int)((w >> 51) & 63);
            if (sig == 0) {
                sig = 64;
            }
            if (l + sig > 64) {
                return SL_ECORRUPT;
            }
            pos += 13;
            uint64_t x = sig + 13 <= have ? (w << 13) >> (64 - sig) : cd_peek(p, pos) >> (64 - sig);
            pos += (size_t)sig;
            lead = l;
            trail = 64 - l - sig;
            v ^= trail < 64 ? x << trail : 0;
        }
        if (pos > nbits) {
            return SL_ECORRUPT;
        }
        out[i] = (stg_sample){(int64_t)t, ms_u2f(v)};
    }
    return 0;
}

int ms_chunk_decode(const uint8_t *p, size_t size, stg_sample *out, size_t cap, size_t *n) {
    const uint8_t *end = p + size;
    size_t cnt;
    int64_t mint, maxt;
    if (chunk_header(&p, end, &cnt, &mint, &maxt) != 0 || cnt > cap) {
        return SL_ECORRUPT;
    }
    *n = 0;
    if (cnt == 0) {
        return 0;
    }
    size_t len = (size_t)(end - p);
    uint8_t stack[CHUNK_STACK + CHUNK_PAD];
    uint8_t *copy = len <= CHUNK_STACK ? stack : malloc(len + CHUNK_PAD);
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    memcpy(copy, p, len);
    memset(copy + len, 0, CHUNK_PAD);
    int rc = chunk_bits(copy, len * 8, cnt, out);
    if (copy != stack) {
        free(copy);
    }
    if (rc == 0) {
        *n = cnt;
    }
    return rc;
}

/* --- postings --------------------------------------------------------------- */

int ms_postings_encode(const uint32_t *ids, size_t n, sl_buf *out) {
    int rc = sl_buf_put_uvarint(out, n);
    uint32_t prev = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sl_buf_put_uvarint(out, ids[i] - prev);
        prev = ids[i];
    }
    return rc;
}

int ms_postings_count(const uint8_t *p, size_t size, size_t *n) {
    uint64_t cnt;
    if (sl_get_uvarint(&p, p + size, &cnt) != 0 || cnt > size) {
        return SL_ECORRUPT;
    }
    *n = (size_t)cnt;
    return 0;
}

int ms_postings_decode(const uint8_t *p, size_t size, uint32_t *out, size_t cap, size_t *n) {
    const uint8_t *end = p + size;
    uint64_t cnt, cur = 0;
    if (sl_get_uvarint(&p, end, &cnt) != 0 || cnt > cap) {
        return SL_ECORRUPT;
    }
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t d;
        if (sl_get_uvarint(&p, end, &d) != 0 || (i > 0 && d == 0) || cur + d > UINT32_MAX) {
            return SL_ECORRUPT;
        }
        cur += d;
        out[i] = (uint32_t)cur;
    }
    *n = (size_t)cnt;
    return 0;
}

/* --- WAL records ------------------------------------------------------------ */

static int put_str(sl_buf *b, sl_str s) {
    int rc = sl_buf_put_uvarint(b, s.len);
    return rc == 0 ? sl_buf_append(b, s.ptr, s.len) : rc;
}

static int put_u64(sl_buf *b, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) {
        le[i] = (uint8_t)(v >> (8 * i));
    }
    return sl_buf_append(b, le, 8);
}

static uint64_t get_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static size_t uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Appends labels as a length-prefixed canonical encoding (the size is known
 * up front: no staging buffer). */
static int put_labels(sl_buf *b, const stg_label *l, size_t n) {
    size_t bound = 10;
    for (size_t i = 0; i < n; i++) {
        bound += l[i].name.len + l[i].value.len + 20;
    }
    int rc = sl_buf_reserve(b, bound);
    if (rc == 0) {
        /* Written after room for a two-byte size (128 to 16383 bytes, the
         * usual), moved when the size takes another length. */
        uint8_t *start = b->data + b->len;
        uint8_t *end = labels_write(start + 2, l, n);
        size_t size = (size_t)(end - start - 2);
        size_t vl = uvarint_size(size);
        if (vl != 2) {
            memmove(start + vl, start + 2, size);
        }
        put_varint_raw(start, size);
        b->len += vl + size;
    }
    return rc;
}

int stg_metrics_encode(const stg_mseries *series, size_t n, const stg_metric_meta *meta,
                       size_t nmeta, sl_buf *out) {
    uint8_t magic[4] = {'S', 'L', 'M', '1'};
    /* Room for a typical record up front, not regrown (and copied) by
     * doubling; if this fails, the appends below fail as they should. */
    (void)sl_buf_reserve(out, 16 + n * 160 + nmeta * 64);
    int rc = sl_buf_append(out, magic, 4);
    if (rc == 0) {
        rc = sl_buf_put_uvarint(out, n);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const stg_mseries *sr = &series[i];
        if ((rc = put_labels(out, sr->labels, sr->nlabels)) != 0 ||
            (rc = sl_buf_putc(out, (uint8_t)sr->kind)) != 0 ||
            (rc = sl_buf_put_uvarint(out, sr->nsamples)) != 0) {
            break;
        }
        int64_t prev = 0;
        for (size_t j = 0; j < sr->nsamples && rc == 0; j++) {
            rc = sl_buf_put_uvarint(
                out, sl_zigzag((int64_t)((uint64_t)sr->samples[j].t_ms - (uint64_t)prev)));
            if (rc == 0) {
                rc = put_u64(out, ms_f2u(sr->samples[j].v));
            }
            prev = sr->samples[j].t_ms;
        }
        if (rc == 0) {
            rc = sl_buf_put_uvarint(out, sr->nexemplars);
        }
        for (size_t j = 0; j < sr->nexemplars && rc == 0; j++) {
            const stg_exemplar *e = &sr->exemplars[j];
            if ((rc = sl_buf_put_uvarint(out, sl_zigzag(e->t_ms))) == 0 &&
                (rc = put_u64(out, ms_f2u(e->v))) == 0 &&
                (rc = sl_buf_append(out, e->trace_id, 16)) == 0 &&
                (rc = sl_buf_append(out, e->span_id, 8)) == 0) {
                rc = put_labels(out, e->labels, e->nlabels);
            }
        }
    }
    if (rc == 0) {
        rc = sl_buf_put_uvarint(out, nmeta);
    }
    for (size_t i = 0; i < nmeta && rc == 0; i++) {
        if ((rc = put_str(out, meta[i].metric)) == 0 && (rc = put_str(out, meta[i].type)) == 0 &&
            (rc = put_str(out, meta[i].help)) == 0) {
            rc = put_str(out, meta[i].unit);
        }
    }
    return rc;
}

/* Count of elements announced by the record, bounded by what min_size bytes
 * each would take of the rest of the input. */
static int get_count(const uint8_t **p, const uint8_t *end, size_t min_size, size_t *out) {
    uint64_t v;
    if (sl_get_uvarint(p, end, &v) != 0 || v > (uint64_t)(end - *p) / min_size) {
        return SL_ECORRUPT;
    }
    *out = (size_t)v;
    return 0;
}

int ms_record_decode(const uint8_t *p, size_t size, sl_arena *a, ms_record *out) {
    const uint8_t *end = p + size;
    memset(out, 0, sizeof(*out));
    if (size < 4 || memcmp(p, "SLM1", 4) != 0) {
        return SL_ECORRUPT;
    }
    p += 4;
    size_t ns;
    if (get_count(&p, end, 3, &ns) != 0) {
        return SL_ECORRUPT;
    }
    ms_rec_series *sr = ns > 0 ? sl_arena_calloc(a, ns, sizeof(*sr)) : NULL;
    if (ns > 0 && sr == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
        sl_str lab;
        if (get_str(&p, end, &lab) != 0 || p >= end) {
            return SL_ECORRUPT;
        }
        sr[i].labels = (const uint8_t *)lab.ptr;
        sr[i].labels_size = lab.len;
        sr[i].kind = *p++;
        if (sr[i].kind > STG_MS_DELTA || get_count(&p, end, 9, &sr[i].nsamples) != 0) {
            return SL_ECORRUPT;
        }
        if (sr[i].nsamples > 0 &&
            (sr[i].samples = sl_arena_alloc(a, sr[i].nsamples * sizeof(stg_sample))) == NULL) {
            return SL_ENOMEM;
        }
        uint64_t t = 0;
        for (size_t j = 0; j < sr[i].nsamples; j++) {
            uint64_t d;
            if (sl_get_uvarint(&p, end, &d) != 0 || end - p < 8) {
                return SL_ECORRUPT;
            }
            t += (uint64_t)sl_unzigzag(d);
            sr[i].samples[j] = (stg_sample){(int64_t)t, ms_u2f(get_u64le(p))};
            p += 8;
        }
        size_t ne;
        if (get_count(&p, end, 34, &ne) != 0) {
            return SL_ECORRUPT;
        }
        if (ne > 0) {
            sr[i].exemplars = sl_arena_calloc(a, ne, sizeof(stg_exemplar));
            sr[i].ex_labels = sl_arena_calloc(a, ne, sizeof(*sr[i].ex_labels));
            sr[i].ex_labels_size = sl_arena_calloc(a, ne, sizeof(size_t));
            if (sr[i].exemplars == NULL || sr[i].ex_labels == NULL ||
                sr[i].ex_labels_size == NULL) {
                return SL_ENOMEM;
            }
        }
        for (size_t j = 0; j < ne; j++) {
            uint64_t tz;
            stg_exemplar *e = &sr[i].exemplars[j];
            if (sl_get_uvarint(&p, end, &tz) != 0 || end - p < 32) {
                return SL_ECORRUPT;
            }
            e->t_ms = sl_unzigzag(tz);
            e->v = ms_u2f(get_u64le(p));
            memcpy(e->trace_id, p + 8, 16);
            memcpy(e->span_id, p + 24, 8);
            p += 32;
            sl_str el;
            if (get_str(&p, end, &el) != 0) {
                return SL_ECORRUPT;
            }
            sr[i].ex_labels[j] = (const uint8_t *)el.ptr;
            sr[i].ex_labels_size[j] = el.len;
        }
        sr[i].nexemplars = ne;
    }
    size_t nm;
    if (get_count(&p, end, 4, &nm) != 0) {
        return SL_ECORRUPT;
    }
    stg_metric_meta *m = nm > 0 ? sl_arena_calloc(a, nm, sizeof(*m)) : NULL;
    if (nm > 0 && m == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < nm; i++) {
        if (get_str(&p, end, &m[i].metric) != 0 || get_str(&p, end, &m[i].type) != 0 ||
            get_str(&p, end, &m[i].help) != 0 || get_str(&p, end, &m[i].unit) != 0) {
            return SL_ECORRUPT;
        }
    }
    if (p != end) {
        return SL_ECORRUPT;
    }
    out->series = sr;
    out->nseries = ns;
    out->meta = m;
    out->nmeta = nm;
    return 0;
}

/* --- the series map ------------------------------------------------------------ */

void ms_smap_free(ms_smap *m) {
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].samples);
        free(m->items[i].wal);
        free(m->items[i].ex);
    }
    free(m->items);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* The map's in-memory hash, eight bytes at a time: a cut looks up every
 * series of every record (about a thousand per traces request through the
 * span-derived metrics), and byte-wise FNV over their labels was a tenth of
 * the server's CPU under trace load. ms_hash, which keys the disk, is only
 * computed for series new to the map. */
static uint64_t smap_hash(const uint8_t *p, size_t len) {
    return sl_hash_bytes(p, len);
}

static int smap_grow(ms_smap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->items[i].mhash & (cap - 1);
        while (slots[j] != 0) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = (uint32_t)i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ms_smap_get(ms_smap *m, const uint8_t *labels, size_t size, ms_sitem **out) {
    if ((m->n + 1) * 2 > m->cap && smap_grow(m) != 0) {
        return SL_ENOMEM;
    }
    uint64_t h = smap_hash(labels, size);
    size_t j = h & (m->cap - 1);
    while (m->slots[j] != 0) {
        ms_sitem *c = &m->items[m->slots[j] - 1];
        if (c->mhash == h && c->labels_size == size && memcmp(c->labels, labels, size) == 0) {
            *out = c;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (sl_array_grow(&m->items, &m->icap, m->n + 1, sizeof(*m->items)) != 0) {
        return SL_ENOMEM;
    }
    ms_sitem *c = &m->items[m->n];
    memset(c, 0, sizeof(*c));
    c->labels = labels;
    c->labels_size = size;
    c->hash = ms_hash(labels, size);
    c->mhash = h;
    m->slots[j] = (uint32_t)++m->n;
    *out = c;
    return 0;
}

/* --- the appender ----------------------------------------------------------- */

static bool same_bits(double a, double b) {
    return ms_f2u(a) == ms_f2u(b);
}

void ms_apply(ms_head *h, uint8_t kind, const stg_sample *in, size_t n, stg_sample *out,
              size_t *nout, ms_append_stats *st) {
    size_t no = 0;
    /* The group of merged delta samples this call is building (index in
     * out, time of its first sample), if any. */
    bool group = false;
    int64_t group_t0 = 0;
    for (size_t i = 0; i < n; i++) {
        stg_sample s = in[i];
        bool stale = ms_is_stale(s.v);
        if (kind == STG_MS_DELTA && !stale) {
            double total = h->total + s.v;
            if (group && s.t_ms >= group_t0 && s.t_ms - group_t0 < MS_DELTA_MERGE_MS) {
                if (s.t_ms > out[no - 1].t_ms) {
                    out[no - 1].t_ms = s.t_ms;
                }
                out[no - 1].v = total;
            } else if (h->has && s.t_ms < h->last_t) {
                st->out_of_order++;
                continue;
            } else {
                /* A stored sample already holds this time: the sum lands
                 * a millisecond later rather than being lost. */
                int64_t t = h->has && s.t_ms == h->last_t ? s.t_ms + 1 : s.t_ms;
                out[no++] = (stg_sample){t, total};
                group = true;
                group_t0 = s.t_ms;
                st->appended++;
            }
            h->total = total;
            h->last_t = out[no - 1].t_ms;
            h->last_v = total;
            h->has = 1;
            continue;
        }
        group = false;
        if (h->has && s.t_ms <= h->last_t) {
            if (s.t_ms == h->last_t && same_bits(s.v, h->last_v)) {
                st->duplicates++;
            } else {
                st->out_of_order++;
            }
            continue;
        }
        out[no++] = s;
        st->appended++;
        h->last_t = s.t_ms;
        h->last_v = s.v;
        if (!stale) {
            h->total = s.v;
        }
        h->has = 1;
    }
    *nout = no;
}
