/*
 * sl_buf implementation. Invariant: len <= cap, and cap <= max_size when
 * max_size is set (growth is clamped to the maximum).
 */
#include "sl_buf.h"

#include "sl_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_buf_init(sl_buf *b, size_t max_size) {
    memset(b, 0, sizeof(*b));
    b->max_size = max_size;
}

void sl_buf_free(sl_buf *b) {
    if (b == NULL) {
        return;
    }
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int sl_buf_reserve(sl_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) {
        return SL_ETOOBIG;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    if (b->max_size != 0 && need > b->max_size) {
        return SL_ETOOBIG;
    }
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (b->max_size != 0 && cap > b->max_size) {
        cap = b->max_size;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int sl_buf_append_grow(sl_buf *b, const void *p, size_t len) {
    if (len == 0) {
        return 0;
    }
    int rc = sl_buf_reserve(b, len);
    if (rc != 0) {
        return rc;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

int sl_buf_append_str(sl_buf *b, const char *s) {
    return sl_buf_append(b, s, strlen(s));
}

int sl_buf_printf(sl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return SL_EINVAL;
    }
    if ((size_t)n < sizeof(small)) {
        return sl_buf_append(b, small, (size_t)n);
    }
    int rc = sl_buf_reserve(b, (size_t)n + 1);
    if (rc != 0) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int sl_buf_put_uvarint_grow(sl_buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return sl_buf_append_grow(b, tmp, n);
}

uint8_t *sl_buf_take(sl_buf *b, size_t *len) {
    uint8_t *p = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int sl_array_grow(void *slot, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap < 16 ? 16 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) {
            return SL_ENOMEM;
        }
        ncap *= 2;
    }
    void *old;
    memcpy(&old, slot, sizeof(old));
    void *n = realloc(old, ncap * elem);
    if (n == NULL) {
        return SL_ENOMEM;
    }
    memcpy(slot, &n, sizeof(n));
    *cap = ncap;
    return 0;
}
