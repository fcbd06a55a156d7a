/*
 * Query-string iteration and percent-decoding; see edge_query.h.
 */
#include "edge_query.h"

#include "sl_err.h"

#include <string.h>

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

int edge_url_decode(const char *src, size_t len, char *dst, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len) {
                return SL_EINVAL;
            }
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return SL_EINVAL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= cap) {
            return SL_ETOOBIG;
        }
        dst[o++] = c;
    }
    if (cap == 0) {
        return SL_ETOOBIG;
    }
    dst[o] = '\0';
    return 0;
}

int edge_query_next(const char **q, char *key, size_t key_cap, char *value, size_t value_cap) {
    const char *p = *q;
    if (p == NULL) {
        return 0;
    }
    while (*p == '&') {
        p++;
    }
    if (*p == '\0') {
        *q = p;
        return 0;
    }
    const char *end = strchr(p, '&');
    if (end == NULL) {
        end = p + strlen(p);
    }
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *kend = eq != NULL ? eq : end;
    *q = end;
    int rc = edge_url_decode(p, (size_t)(kend - p), key, key_cap);
    if (rc == 0) {
        rc = eq != NULL ? edge_url_decode(eq + 1, (size_t)(end - eq - 1), value, value_cap)
                        : edge_url_decode("", 0, value, value_cap);
    }
    return rc == 0 ? 1 : rc;
}

int edge_url_encode(const char *s, sl_buf *out) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        int rc = plain ? sl_buf_putc(out, c)
                       : sl_buf_append(out, (const char[]){'%', hex[c >> 4], hex[c & 15]}, 3);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int b64val(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int edge_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
    while (len > 0 && in[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return SL_EINVAL;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0) {
            return SL_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) {
                return SL_ETOOBIG;
            }
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}
