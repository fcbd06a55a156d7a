/*
 * Small helpers of the runtime: base64url, clocks, per-thread random numbers,
 * word lists. All thread-safe (the random state is thread-local).
 */
#include "rt_int.h"

#include <sightline/sightline.h>

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t rt_b64url_len(size_t n) {
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void rt_b64url_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static int b64url_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    return c == '_' ? 63 : -1;
}

long rt_b64url_decode(const char *in, size_t len, uint8_t *out) {
    if (len % 4 == 1) {
        return -1;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: one encoding per byte string. */
    if (acc != 0) {
        return -1;
    }
    return (long)o;
}

uint64_t rt_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t rt_unix_s(void) {
    return (int64_t)time(NULL);
}

double rt_random01(void) {
    static _Thread_local uint64_t state;
    if (state == 0) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state || state == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            state = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull | 1;
        }
    }
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t r = state * 0x2545F4914F6CDD1Dull;
    return (double)(r >> 11) / 9007199254740992.0;
}

bool rt_word_in(const char *list, const char *word, size_t word_len) {
    if (list == NULL || word_len == 0) {
        return false;
    }
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != ' ' && *p != ',') {
            p++;
        }
        if ((size_t)(p - start) == word_len && memcmp(start, word, word_len) == 0) {
            return true;
        }
    }
    return false;
}

uint64_t rt_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rt_seconds_histogram(sl_meter *meter, const char *name, const char *description,
                          const double *bounds, size_t nbounds, sl_instrument **out) {
    sl_instrument_options io;
    sl_instrument_options_init(&io);
    io.kind = SL_INSTRUMENT_HISTOGRAM;
    io.name = name;
    io.unit = "s";
    io.description = description;
    io.buckets = bounds;
    io.bucket_count = nbounds;
    *out = NULL;
    sl_meter_create(meter, &io, out);
}
