/*
 * fleet/common helpers: error messages, libsodium start-up, clocks, ids,
 * hashes and random tokens. Thread-safe.
 */
#include "fc/fc.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

const char *fc_strerror(int err) {
    switch (err) {
#define FC_ERR_CASE(name, code, msg)                                                               \
    case code:                                                                                     \
        return msg;
        FC_ERR_MAP(FC_ERR_CASE)
#undef FC_ERR_CASE
    default:
        return sl_strerror(err);
    }
}

static pthread_once_t fc_sodium_once = PTHREAD_ONCE_INIT;
static int fc_sodium_rc;

static void fc_sodium_start(void) {
    fc_sodium_rc = sodium_init() < 0 ? SL_EUNSUPPORTED : 0;
}

int fc_crypto_init(void) {
    pthread_once(&fc_sodium_once, fc_sodium_start);
    return fc_sodium_rc;
}

int64_t fc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fc_uuid(char out[37]) {
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    (void)fc_crypto_init();
    randombytes_buf(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void fc_sha256_hex(const void *data, size_t len, char hex[65]) {
    uint8_t d[crypto_hash_sha256_BYTES];
    (void)fc_crypto_init();
    crypto_hash_sha256(d, data, len);
    sodium_bin2hex(hex, 65, d, sizeof d);
}

int fc_random_token(size_t n, char *out, size_t outcap) {
    uint8_t buf[64];
    if (n == 0 || n > sizeof buf ||
        outcap < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
        return SL_EINVAL;
    }
    (void)fc_crypto_init();
    randombytes_buf(buf, n);
    sodium_bin2base64(out, outcap, buf, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int fc_id_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}
