/*
 * A growable byte buffer with a hard maximum (curl's dynbuf): appends fail with
 * SL_ETOOBIG instead of growing past max_size. Owned by one thread at a time.
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sl_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max_size; /* 0 = unlimited */
} sl_buf;

void sl_buf_init(sl_buf *b, size_t max_size);
/* Frees the memory; the buffer is empty and reusable. NULL is fine. */
void sl_buf_free(sl_buf *b);
/* Ensures room for extra more bytes. Returns 0, SL_ENOMEM or SL_ETOOBIG. */
int sl_buf_reserve(sl_buf *b, size_t extra);
/* The growing paths of the inline functions below (not for direct use). */
int sl_buf_append_grow(sl_buf *b, const void *p, size_t len);
int sl_buf_put_uvarint_grow(sl_buf *b, uint64_t v);

/* Appends len bytes. Returns 0, SL_ENOMEM or SL_ETOOBIG. Inline: encoders
 * append a few bytes at a time, and the common case (room left) is a copy. */
static inline int sl_buf_append(sl_buf *b, const void *p, size_t len) {
    if (len <= b->cap - b->len) {
        if (len > 0) {
            memcpy(b->data + b->len, p, len);
            b->len += len;
        }
        return 0;
    }
    return sl_buf_append_grow(b, p, len);
}
int sl_buf_append_str(sl_buf *b, const char *s);
/* Appends one byte. */
static inline int sl_buf_putc(sl_buf *b, uint8_t c) {
    if (b->len < b->cap) {
        b->data[b->len++] = c;
        return 0;
    }
    return sl_buf_append_grow(b, &c, 1);
}
/* Appends printf-formatted text. Returns 0 or an error. */
int sl_buf_printf(sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends an unsigned LEB128 varint (in place when 10 bytes are free). */
static inline int sl_buf_put_uvarint(sl_buf *b, uint64_t v) {
    if (b->cap - b->len >= 10) {
        uint8_t *p = b->data + b->len;
        while (v >= 0x80) {
            *p++ = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        *p++ = (uint8_t)v;
        b->len = (size_t)(p - b->data);
        return 0;
    }
    return sl_buf_put_uvarint_grow(b, v);
}
/* Grows the array whose pointer is stored at *slot (elements of elem bytes,
 * capacity *cap) so that it holds at least need elements, doubling. The
 * pointer is read and written with memcpy so that one function serves arrays
 * of any element type: pass &array. Returns 0 or SL_ENOMEM (nothing changed). */
int sl_array_grow(void *slot, size_t *cap, size_t need, size_t elem);

/* Hands the memory to the caller (who frees it with free()) and empties b. */
uint8_t *sl_buf_take(sl_buf *b, size_t *len);

#endif
