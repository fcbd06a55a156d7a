/*
 * JSON Web Tokens (RFC 7519) in compact JWS form, signed with HS256 (HMAC
 * SHA-256, RFC 7518) or EdDSA over Ed25519 (RFC 8037), on OpenSSL.
 *
 * Verification is strict: the header's "alg" must be the key's algorithm
 * exactly ("none" and any other value are refused, so a token cannot pick its
 * own algorithm), "crit" is refused, MACs are compared in constant time, and
 * the signature is checked before the payload is parsed. Then exp (required by
 * default), nbf, iat, aud and iss are checked against the options.
 *
 * Claims are jansson objects: the small helpers below build and read them.
 * Keys are immutable once made, so one key may sign and verify from any
 * number of threads at once.
 */
#ifndef SF_JWT_H
#define SF_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SF_JWT_HS256 = 0, SF_JWT_EDDSA = 1 } sf_jwt_alg;

typedef struct sf_jwt_key sf_jwt_key;

/* Tokens longer than this are refused before any work (SF_ETOKEN). */
#define SF_JWT_MAX_LEN 8192

/* An HS256 key from secret bytes (at least 16, RFC 7518 asks for 32). The
 * caller owns *out. Errors: SL_EINVAL (too short), SL_ENOMEM. */
int sf_jwt_key_hs256(const void *secret, size_t len, sf_jwt_key **out);

/* An HS256 key from a file's contents, trailing whitespace removed (the
 * --service-key-file format). Errors: -errno, SL_EINVAL, SL_ETOOBIG (> 4 KiB). */
int sf_jwt_key_hs256_file(const char *path, sf_jwt_key **out);

/* An Ed25519 key: from its 32-byte private seed (signs and verifies), from
 * its 32-byte public key (verifies only), or freshly generated. Errors:
 * SL_EINVAL, SL_ENOMEM. */
int sf_jwt_key_ed25519_private(const uint8_t seed[32], sf_jwt_key **out);
int sf_jwt_key_ed25519_public(const uint8_t pub[32], sf_jwt_key **out);
int sf_jwt_key_ed25519_generate(sf_jwt_key **out);
/* Writes the raw public key of an Ed25519 key. SL_EINVAL for an HS256 key. */
int sf_jwt_key_ed25519_public_raw(const sf_jwt_key *k, uint8_t out[32]);

sf_jwt_alg sf_jwt_key_alg(const sf_jwt_key *k);
/* NULL is harmless. */
void sf_jwt_key_destroy(sf_jwt_key *k);

/* Signs claims (a JSON object, borrowed) into a compact token; the caller
 * owns *out (free()). Errors: SL_EINVAL (not an object, or a verify-only key),
 * SL_ENOMEM. */
int sf_jwt_sign(const sf_jwt_key *k, const json_t *claims, char **out);

typedef struct sf_jwt_verify_options {
    const char *audience; /* NULL: aud not checked; else aud must name it */
    const char *issuer;   /* NULL: iss not checked */
    int64_t now_s;        /* 0: the current time */
    uint32_t leeway_s;    /* clock skew allowed on exp, nbf and iat: 5 */
    bool exp_optional;    /* false: a token without exp is refused */
} sf_jwt_verify_options;

void sf_jwt_verify_options_init(sf_jwt_verify_options *o);

/* Verifies a compact token (len bytes, no NUL needed) and on success stores
 * its claims in *claims (the caller owns them: json_decref). o NULL = defaults.
 * Errors: SF_ETOKEN (not three base64url parts, bad JSON, too long), SF_EALG,
 * SF_ESIGNATURE, SF_EEXPIRED, SF_ENOTYET (nbf, or iat in the future),
 * SF_EAUDIENCE, SF_EISSUER, SF_ECLAIMS (exp/nbf/iat not numbers, exp missing),
 * SL_ENOMEM. */
int sf_jwt_verify(const sf_jwt_key *k, const char *token, size_t len,
                  const sf_jwt_verify_options *o, json_t **claims);

/* --- claims ---------------------------------------------------------------- */

/* A new claims object {iss, aud, sub, iat, exp = iat + ttl_s, scope}; NULL
 * string arguments are left out; iat 0 = now. The caller owns it. NULL when
 * out of memory. */
json_t *sf_claims_new(const char *iss, const char *aud, const char *sub, int64_t iat, int64_t ttl_s,
                      const char *scope);
/* A string claim, borrowed from claims; NULL when absent or not a string. */
const char *sf_claims_str(const json_t *claims, const char *name);
/* An integer claim into *out: 0, or SL_ENOTFOUND (absent or not a number). */
int sf_claims_int(const json_t *claims, const char *name, int64_t *out);
/* True when the space-separated "scope" claim contains scope exactly. */
bool sf_claims_has_scope(const json_t *claims, const char *scope);
/* True when "aud" (a string or an array of strings) names audience. */
bool sf_claims_has_audience(const json_t *claims, const char *audience);

/* Mints a service token: HS256 claims iss=issuer, aud=audience, iat=now,
 * exp=now+ttl_s, scope (space-separated, may be NULL). The caller owns *out. */
int sf_service_token(const sf_jwt_key *k, const char *issuer, const char *audience,
                     const char *scope, int64_t ttl_s, char **out);

#ifdef __cplusplus
}
#endif

#endif
