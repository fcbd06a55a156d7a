/*
 * fc_totp: RFC 4226 HOTP / RFC 6238 TOTP with HMAC-SHA1 (OpenSSL), base32
 * and otpauth URIs. See fc/fc_totp.h.
 */
#include "fc/fc_totp.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int fc_hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits, uint32_t *code) {
    static const uint32_t pow10[] = {1000000, 10000000, 100000000};
    if (digits < 6 || digits > 8 || keylen == 0 || keylen > 64) {
        return SL_EINVAL;
    }
    uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    if (!HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof msg, mac, &maclen) || maclen != 20) {
        return SL_EINVAL;
    }
    /* Dynamic truncation (RFC 4226 section 5.3). */
    int off = mac[19] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    *code = bin % pow10[digits - 6];
    return 0;
}

int fc_totp_at(const uint8_t *key, size_t keylen, int64_t unix_s, int digits, uint32_t *code) {
    if (unix_s < 0) {
        return SL_EINVAL;
    }
    return fc_hotp(key, keylen, (uint64_t)unix_s / FC_TOTP_STEP_S, digits, code);
}

int fc_totp_verify(const uint8_t *key, size_t keylen, int64_t unix_s, const char *code,
                   int64_t last_step, int64_t *matched_step) {
    if (!code || strlen(code) != FC_TOTP_DIGITS || unix_s < FC_TOTP_STEP_S) {
        return FC_EDENIED;
    }
    uint32_t want = 0;
    for (int i = 0; i < FC_TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return FC_EDENIED;
        }
        want = want * 10 + (uint32_t)(code[i] - '0');
    }
    int64_t now_step = unix_s / FC_TOTP_STEP_S;
    int found = 0;
    int64_t step_found = 0;
    /* Every candidate is computed and compared, so the time taken does not
     * say which step matched. */
    for (int64_t s = now_step - 1; s <= now_step + 1; s++) {
        uint32_t got = 0;
        if (fc_hotp(key, keylen, (uint64_t)s, FC_TOTP_DIGITS, &got) != 0) {
            return FC_EDENIED;
        }
        int eq = sodium_memcmp(&got, &want, sizeof got) == 0;
        if (eq && !found && s > last_step) {
            found = 1;
            step_found = s;
        }
    }
    if (!found) {
        return FC_EDENIED;
    }
    *matched_step = step_found;
    return 0;
}

static const char fc_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int fc_base32_encode(const uint8_t *in, size_t len, char *out, size_t outcap) {
    size_t need = (len * 8 + 4) / 5 + 1;
    if (outcap < need) {
        return SL_EINVAL;
    }
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = fc_b32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) {
        out[o++] = fc_b32[(buf << (5 - bits)) & 31];
    }
    out[o] = '\0';
    return 0;
}

int fc_base32_decode(const char *in, uint8_t *out, size_t outcap) {
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        int v;
        if (c == '=' || c == ' ') {
            continue;
        }
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= '2' && c <= '7') {
            v = c - '2' + 26;
        } else {
            return SL_EINVAL;
        }
        buf = (buf << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (o >= outcap) {
                return SL_EINVAL;
            }
            out[o++] = (uint8_t)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)o;
}

int fc_totp_secret(char *out, size_t outcap) {
    uint8_t key[FC_TOTP_SECRET_BYTES];
    if (fc_crypto_init() != 0) {
        return SL_EINVAL;
    }
    randombytes_buf(key, sizeof key);
    int rc = fc_base32_encode(key, sizeof key, out, outcap);
    sodium_memzero(key, sizeof key);
    return rc;
}

static size_t fc_pct(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~' || c == '@';
        if (o + 4 > cap) {
            return cap;
        }
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

int fc_totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out,
                size_t outcap) {
    char is[256], ac[256];
    if (fc_pct(issuer, is, sizeof is) >= sizeof is || fc_pct(account, ac, sizeof ac) >= sizeof ac) {
        return SL_ETOOBIG;
    }
    int n = snprintf(out, outcap,
                     "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d&period=%d",
                     is, ac, secret_b32, is, FC_TOTP_DIGITS, FC_TOTP_STEP_S);
    return n < 0 || (size_t)n >= outcap ? SL_ETOOBIG : 0;
}
