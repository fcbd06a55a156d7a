/*
 * Small pure helpers used everywhere: string views, clocks, hex ids, varints.
 * All functions are stateless and thread-safe.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed string view; ptr need not be NUL-terminated. */
typedef struct sl_str {
    const char *ptr;
    size_t len;
} sl_str;

/* A metric sample: the storage and the PromQL engine share the type, so
 * series pass from one to the other without a copy. */
typedef struct sl_sample {
    int64_t t_ms; /* Unix milliseconds */
    double v;
} sl_sample;

/* A view of a string literal: SL_STR_LIT in expressions, SL_STR_INIT in static
 * initializers (where a compound literal is not a constant). */
#define SL_STR_LIT(s) ((sl_str){(s), sizeof(s) - 1})
#define SL_STR_INIT(s)                                                                             \
    { (s), sizeof(s) - 1 }

static inline sl_str sl_str_c(const char *s) {
    return (sl_str){s, s ? strlen(s) : 0};
}

static inline bool sl_str_eq(sl_str a, sl_str b) {
    return a.len == b.len && (a.len == 0 || a.ptr == b.ptr || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool sl_str_eqc(sl_str a, const char *c) {
    return sl_str_eq(a, sl_str_c(c));
}

/* Wall clock and monotonic clock in nanoseconds. */
uint64_t sl_now_unix_nano(void);
uint64_t sl_mono_nano(void);

/* Writes 2*len lowercase hex digits (no NUL) to out. */
void sl_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly 2*len hex digits (either case) from in. Returns 0 or SL_EINVAL. */
int sl_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t len);

/* True when all len bytes are zero. */
bool sl_is_zero(const uint8_t *p, size_t len);

/* Reads an unsigned LEB128 varint from [*p, end). Returns 0 or SL_ECORRUPT.
 * One-byte values, the most common in sample runs and indexes, inline. The
 * slow path works on copies, so the caller's cursor and result never have
 * their address passed out of line: a decoding loop keeps them in registers
 * instead of storing and reloading them through memory for every value. */
int sl_get_uvarint_slow(const uint8_t **p, const uint8_t *end, uint64_t *out);

static inline int sl_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *out = *q;
        *p = q + 1;
        return 0;
    }
    uint64_t v = 0;
    int rc = sl_get_uvarint_slow(&q, end, &v);
    if (rc == 0) {
        *p = q;
        *out = v;
    }
    return rc;
}

/* A fast in-memory hash of bytes, eight at a time (not for anything on disk:
 * it may change between versions). */
static inline uint64_t sl_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    h ^= h >> 29;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 32);
}

static inline uint64_t sl_zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t sl_unzigzag(uint64_t v) {
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline void sl_put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* One load and a byte swap: the byte-wise loop is not always merged into
 * one by the compiler, and chunk decoding reads a word per field. */
static inline uint64_t sl_get_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#elif !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
    v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
#endif
    return v;
}

static inline void sl_put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t sl_get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses a decimal unsigned 64-bit integer filling the whole of s. 0 or SL_EINVAL. */
int sl_parse_u64(sl_str s, uint64_t *out);
/* Parses a decimal signed 64-bit integer filling the whole of s. 0 or SL_EINVAL. */
int sl_parse_i64(sl_str s, int64_t *out);

#endif
