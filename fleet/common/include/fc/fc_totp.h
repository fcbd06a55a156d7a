/*
 * Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) with
 * HMAC-SHA1, a 30 s step and 6 digits, as every authenticator app expects,
 * plus the base32 secrets and otpauth:// URIs that enrolment shows.
 * Verification accepts the current step and one on either side (clock
 * drift) and refuses a step at or before the last one used, so an observed
 * code cannot be replayed. Thread-safe (pure functions).
 */
#ifndef FC_TOTP_H
#define FC_TOTP_H

#include "fc/fc.h"

#define FC_TOTP_STEP_S 30
#define FC_TOTP_DIGITS 6
#define FC_TOTP_SECRET_BYTES 20 /* 160 bits, RFC 4226's recommendation */

/* HOTP value of counter for key (digits 6..8). Returns 0 or SL_EINVAL. */
int fc_hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits, uint32_t *code);

/* TOTP value at unix_s (step FC_TOTP_STEP_S). Returns 0 or SL_EINVAL. */
int fc_totp_at(const uint8_t *key, size_t keylen, int64_t unix_s, int digits, uint32_t *code);

/* Checks a code typed by the user (exactly FC_TOTP_DIGITS ASCII digits)
 * at unix_s against steps -1, 0, +1. last_step is the last step accepted
 * for this secret (-1 when none): steps at or before it are refused.
 * Returns 0 and *matched_step, or FC_EDENIED. */
int fc_totp_verify(const uint8_t *key, size_t keylen, int64_t unix_s, const char *code,
                   int64_t last_step, int64_t *matched_step);

/* RFC 4648 base32 without padding (upper case). out needs
 * (len * 8 + 4) / 5 + 1 bytes. Returns 0 or SL_EINVAL (outcap too small). */
int fc_base32_encode(const uint8_t *in, size_t len, char *out, size_t outcap);

/* Decodes base32 (either case, '=' padding and spaces ignored) into out.
 * Returns the number of bytes, or SL_EINVAL (bad character, too long). */
int fc_base32_decode(const char *in, uint8_t *out, size_t outcap);

/* A fresh random secret in base32 (out >= 33 bytes). Returns 0 or SL_EINVAL. */
int fc_totp_secret(char *out, size_t outcap);

/* otpauth://totp/<issuer>:<account>?secret=..&issuer=..&algorithm=SHA1&
 * digits=6&period=30 into out, with issuer and account percent-encoded.
 * Returns 0 or SL_ETOOBIG. */
int fc_totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out,
                size_t outcap);

#endif
