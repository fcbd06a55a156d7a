/*
 * sl_util implementation: clocks, hex, varints, integer parsing.
 */
#include "sl_util.h"

#include "sl_err.h"

#include <time.h>

uint64_t sl_now_unix_nano(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sl_mono_nano(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sl_hex_encode(const uint8_t *in, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int sl_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t len) {
    if (in_len != 2 * len) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return SL_EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool sl_is_zero(const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int sl_get_uvarint_slow(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (q >= end) {
            return SL_ECORRUPT;
        }
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *p = q;
            *out = v;
            return 0;
        }
    }
    return SL_ECORRUPT;
}

int sl_parse_u64(sl_str s, uint64_t *out) {
    if (s.len == 0 || s.len > 20) {
        return SL_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9') {
            return SL_EINVAL;
        }
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return SL_EINVAL;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sl_parse_i64(sl_str s, int64_t *out) {
    bool neg = s.len > 0 && s.ptr[0] == '-';
    if (neg || (s.len > 0 && s.ptr[0] == '+')) {
        s.ptr++;
        s.len--;
    }
    uint64_t u;
    if (sl_parse_u64(s, &u) != 0) {
        return SL_EINVAL;
    }
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1) {
            return SL_EINVAL;
        }
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX) {
            return SL_EINVAL;
        }
        *out = (int64_t)u;
    }
    return 0;
}
