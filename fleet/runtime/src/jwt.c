/*
 * JWT signing and verification (HS256 on HMAC-SHA-256, EdDSA on Ed25519),
 * with OpenSSL doing the cryptography and jansson the JSON. Verification
 * checks the signature over the two first parts before it parses the
 * payload, and compares MACs with CRYPTO_memcmp. Keys are read-only after
 * creation: every function is thread-safe.
 */
#include "sf/sf_jwt.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_err.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HS256_MIN_SECRET 16
#define KEY_FILE_MAX 4096
#define SIG_MAX 64 /* both SHA-256 MACs (32) and Ed25519 signatures (64) */

struct sf_jwt_key {
    sf_jwt_alg alg;
    bool can_sign;
    EVP_PKEY *pkey; /* EdDSA */
    size_t secret_len;
    uint8_t secret[]; /* HS256 */
};

static const char *alg_name(sf_jwt_alg alg) {
    return alg == SF_JWT_HS256 ? "HS256" : "EdDSA";
}

int sf_jwt_key_hs256(const void *secret, size_t len, sf_jwt_key **out) {
    *out = NULL;
    if (secret == NULL || len < HS256_MIN_SECRET) {
        return SL_EINVAL;
    }
    sf_jwt_key *k = calloc(1, sizeof(*k) + len);
    if (k == NULL) {
        return SL_ENOMEM;
    }
    k->alg = SF_JWT_HS256;
    k->can_sign = true;
    k->secret_len = len;
    memcpy(k->secret, secret, len);
    *out = k;
    return 0;
}

int sf_jwt_key_hs256_file(const char *path, sf_jwt_key **out) {
    *out = NULL;
    int rc = 0;
    char buf[KEY_FILE_MAX + 1];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -errno;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    if (ferror(f)) {
        rc = SL_EINVAL;
    } else if (n > KEY_FILE_MAX) {
        rc = SL_ETOOBIG;
    }
    fclose(f);
    if (rc != 0) {
        return rc;
    }
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        n--;
    }
    rc = sf_jwt_key_hs256(buf, n, out);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int key_from_pkey(EVP_PKEY *pkey, bool can_sign, sf_jwt_key **out) {
    if (pkey == NULL) {
        return SL_EINVAL;
    }
    sf_jwt_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return SL_ENOMEM;
    }
    k->alg = SF_JWT_EDDSA;
    k->can_sign = can_sign;
    k->pkey = pkey;
    *out = k;
    return 0;
}

int sf_jwt_key_ed25519_private(const uint8_t seed[32], sf_jwt_key **out) {
    *out = NULL;
    return key_from_pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32), true, out);
}

int sf_jwt_key_ed25519_public(const uint8_t pub[32], sf_jwt_key **out) {
    *out = NULL;
    return key_from_pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32), false, out);
}

int sf_jwt_key_ed25519_generate(sf_jwt_key **out) {
    *out = NULL;
    return key_from_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), true, out);
}

int sf_jwt_key_ed25519_public_raw(const sf_jwt_key *k, uint8_t out[32]) {
    size_t len = 32;
    if (k == NULL || k->alg != SF_JWT_EDDSA ||
        EVP_PKEY_get_raw_public_key(k->pkey, out, &len) != 1 || len != 32) {
        return SL_EINVAL;
    }
    return 0;
}

sf_jwt_alg sf_jwt_key_alg(const sf_jwt_key *k) {
    return k->alg;
}

void sf_jwt_key_destroy(sf_jwt_key *k) {
    if (k == NULL) {
        return;
    }
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k);
}

/* Signs data into sig (SIG_MAX bytes); returns the signature's length or a
 * negative error. */
static int sign_bytes(const sf_jwt_key *k, const char *data, size_t len, uint8_t *sig) {
    if (k->alg == SF_JWT_HS256) {
        unsigned mlen = 0;
        if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len, (const unsigned char *)data, len, sig,
                 &mlen) == NULL) {
            return SL_ENOMEM;
        }
        return (int)mlen;
    }
    int rc = SL_ENOMEM;
    size_t slen = SIG_MAX;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
        EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)data, len) == 1) {
        rc = (int)slen;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

static bool verify_bytes(const sf_jwt_key *k, const char *data, size_t len, const uint8_t *sig,
                         size_t sig_len) {
    if (k->alg == SF_JWT_HS256) {
        uint8_t mac[SIG_MAX];
        int n = sign_bytes(k, data, len, mac);
        return n == 32 && sig_len == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
    }
    if (sig_len != 64) {
        return false;
    }
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1) {
        ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data, len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    return ok;
}

int sf_jwt_sign(const sf_jwt_key *k, const json_t *claims, char **out) {
    *out = NULL;
    if (k == NULL || !k->can_sign || !json_is_object(claims)) {
        return SL_EINVAL;
    }
    int rc = 0;
    char header[64];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_name(k->alg));
    char *payload = json_dumps(claims, JSON_COMPACT);
    char *tok = NULL;
    if (payload == NULL) {
        return SL_ENOMEM;
    }
    size_t hlen = strlen(header), plen = strlen(payload);
    size_t cap = rt_b64url_len(hlen) + 1 + rt_b64url_len(plen) + 1 + rt_b64url_len(SIG_MAX) + 1;
    tok = malloc(cap);
    if (tok == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    rt_b64url_encode((const uint8_t *)header, hlen, tok);
    size_t n = strlen(tok);
    tok[n++] = '.';
    rt_b64url_encode((const uint8_t *)payload, plen, tok + n);
    n += strlen(tok + n);
    uint8_t sig[SIG_MAX];
    int slen = sign_bytes(k, tok, n, sig);
    if (slen < 0) {
        rc = slen;
        goto out;
    }
    tok[n++] = '.';
    rt_b64url_encode(sig, (size_t)slen, tok + n);
    *out = tok;
    tok = NULL;
out:
    free(tok);
    free(payload);
    return rc;
}

void sf_jwt_verify_options_init(sf_jwt_verify_options *o) {
    memset(o, 0, sizeof(*o));
    o->leeway_s = 5;
}

/* Decodes one base64url part holding a JSON object. */
static int decode_json_part(const char *p, size_t len, json_t **out) {
    *out = NULL;
    uint8_t *buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    long n = rt_b64url_decode(p, len, buf);
    int rc = SF_ETOKEN;
    if (n >= 0) {
        json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(j)) {
            *out = j;
            rc = 0;
        } else {
            json_decref(j);
        }
    }
    free(buf);
    return rc;
}

/* Reads a NumericDate claim: 0 with *present false when absent, SF_ECLAIMS
 * when it is not a number. */
static int numeric_claim(const json_t *c, const char *name, bool *present, int64_t *v) {
    const json_t *j = json_object_get(c, name);
    *present = j != NULL;
    if (j == NULL) {
        return 0;
    }
    if (json_is_integer(j)) {
        *v = (int64_t)json_integer_value(j);
    } else if (json_is_real(j) && json_real_value(j) > -9e18 && json_real_value(j) < 9e18) {
        *v = (int64_t)json_real_value(j);
    } else {
        return SF_ECLAIMS;
    }
    return 0;
}

static int check_claims(const json_t *c, const sf_jwt_verify_options *o) {
    int64_t now = o->now_s != 0 ? o->now_s : rt_unix_s();
    int64_t leeway = o->leeway_s, v = 0;
    bool present;
    int rc = numeric_claim(c, "exp", &present, &v);
    if (rc != 0 || (!present && !o->exp_optional)) {
        return SF_ECLAIMS;
    }
    if (present && now >= v + leeway) {
        return SF_EEXPIRED;
    }
    if ((rc = numeric_claim(c, "nbf", &present, &v)) != 0) {
        return rc;
    }
    if (present && now + leeway < v) {
        return SF_ENOTYET;
    }
    if ((rc = numeric_claim(c, "iat", &present, &v)) != 0) {
        return rc;
    }
    if (present && now + leeway < v) {
        return SF_ENOTYET;
    }
    if (o->audience != NULL && !sf_claims_has_audience(c, o->audience)) {
        return SF_EAUDIENCE;
    }
    if (o->issuer != NULL) {
        const char *iss = sf_claims_str(c, "iss");
        if (iss == NULL || strcmp(iss, o->issuer) != 0) {
            return SF_EISSUER;
        }
    }
    return 0;
}

int sf_jwt_verify(const sf_jwt_key *k, const char *token, size_t len,
                  const sf_jwt_verify_options *o, json_t **claims) {
    *claims = NULL;
    sf_jwt_verify_options defaults;
    if (o == NULL) {
        sf_jwt_verify_options_init(&defaults);
        o = &defaults;
    }
    if (k == NULL || token == NULL || len == 0 || len > SF_JWT_MAX_LEN) {
        return k == NULL ? SL_EINVAL : SF_ETOKEN;
    }
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
        return SF_ETOKEN;
    }
    json_t *header = NULL, *payload = NULL;
    int rc = decode_json_part(token, (size_t)(dot1 - token), &header);
    if (rc != 0) {
        goto out;
    }
    const char *alg = json_string_value(json_object_get(header, "alg"));
    const char *typ = json_string_value(json_object_get(header, "typ"));
    if (alg == NULL || strcmp(alg, alg_name(k->alg)) != 0 ||
        json_object_get(header, "crit") != NULL) {
        rc = SF_EALG;
        goto out;
    }
    if (json_object_get(header, "typ") != NULL && (typ == NULL || strcasecmp(typ, "JWT") != 0)) {
        rc = SF_ETOKEN;
        goto out;
    }
    uint8_t sig[SIG_MAX + 3];
    size_t sig_b64 = len - (size_t)(dot2 + 1 - token);
    long slen = sig_b64 <= rt_b64url_len(SIG_MAX) ? rt_b64url_decode(dot2 + 1, sig_b64, sig) : -1;
    if (slen < 0) {
        rc = SF_ETOKEN;
        goto out;
    }
    if (!verify_bytes(k, token, (size_t)(dot2 - token), sig, (size_t)slen)) {
        rc = SF_ESIGNATURE;
        goto out;
    }
    if ((rc = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload)) != 0 ||
        (rc = check_claims(payload, o)) != 0) {
        goto out;
    }
    *claims = payload;
    payload = NULL;
out:
    json_decref(header);
    json_decref(payload);
    return rc;
}

json_t *sf_claims_new(const char *iss, const char *aud, const char *sub, int64_t iat, int64_t ttl_s,
                      const char *scope) {
    json_t *c = json_object();
    if (c == NULL) {
        return NULL;
    }
    if (iat == 0) {
        iat = rt_unix_s();
    }
    int bad = 0;
    if (iss != NULL) {
        bad |= json_object_set_new(c, "iss", json_string(iss));
    }
    if (aud != NULL) {
        bad |= json_object_set_new(c, "aud", json_string(aud));
    }
    if (sub != NULL) {
        bad |= json_object_set_new(c, "sub", json_string(sub));
    }
    bad |= json_object_set_new(c, "iat", json_integer(iat));
    bad |= json_object_set_new(c, "exp", json_integer(iat + ttl_s));
    if (scope != NULL) {
        bad |= json_object_set_new(c, "scope", json_string(scope));
    }
    if (bad != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

const char *sf_claims_str(const json_t *claims, const char *name) {
    return json_string_value(json_object_get(claims, name));
}

int sf_claims_int(const json_t *claims, const char *name, int64_t *out) {
    bool present;
    int64_t v = 0;
    if (numeric_claim(claims, name, &present, &v) != 0 || !present) {
        return SL_ENOTFOUND;
    }
    *out = v;
    return 0;
}

bool sf_claims_has_scope(const json_t *claims, const char *scope) {
    const char *s = sf_claims_str(claims, "scope");
    return s != NULL && scope != NULL && rt_word_in(s, scope, strlen(scope));
}

bool sf_claims_has_audience(const json_t *claims, const char *audience) {
    const json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), audience) == 0;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), audience) == 0) {
            return true;
        }
    }
    return false;
}

int sf_service_token(const sf_jwt_key *k, const char *issuer, const char *audience,
                     const char *scope, int64_t ttl_s, char **out) {
    *out = NULL;
    json_t *c = sf_claims_new(issuer, audience, NULL, 0, ttl_s, scope);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    int rc = sf_jwt_sign(k, c, out);
    json_decref(c);
    return rc;
}
