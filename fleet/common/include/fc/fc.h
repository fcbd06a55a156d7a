/*
 * fleet/common: what the fleet's business services (auth, users, tenants,
 * notifications, analytics) share besides the runtime: the SQLite layer, the
 * outbox table, password hashing, TOTP, refresh tokens and the saga engine.
 * Prefix fc_. Errors are the project's sl_err codes plus the few below, in
 * their own band (-30101..-30199; the runtime's sf_ codes use -30001..)
 * so that a service can map them to HTTP statuses at its edge.
 */
#ifndef FC_H
#define FC_H

#include "sl_err.h"

#include <stddef.h>
#include <stdint.h>

#define FC_ERR_MAP(X)                                                                              \
    X(CONFLICT, -30101, "already exists")                                                          \
    X(DENIED, -30102, "credentials rejected")                                                      \
    X(REUSE, -30103, "refresh token reused: its family is revoked")                                \
    X(EXPIRED, -30104, "expired")

enum {
#define FC_ERR_ENUM(name, code, msg) FC_E##name = (code),
    FC_ERR_MAP(FC_ERR_ENUM)
#undef FC_ERR_ENUM
};

/* A static message for an fc code, an sl code or -errno. Never NULL. */
const char *fc_strerror(int err);

/* Initializes libsodium once (thread-safe, idempotent). Returns 0, or
 * SL_EUNSUPPORTED when the library cannot start (no entropy source). Every
 * fc function that needs randomness or hashing calls it itself. */
int fc_crypto_init(void);

/* Wall clock in milliseconds since the Unix epoch. */
int64_t fc_now_ms(void);

/* Writes a random (version 4) UUID, 36 chars and a NUL, into out. */
void fc_uuid(char out[37]);

/* Lower-case hex SHA-256 of len bytes into hex (65 bytes with the NUL). */
void fc_sha256_hex(const void *data, size_t len, char hex[65]);

/* Writes n random bytes as URL-safe base64 without padding into out
 * (outcap >= 4*n/3 + 2). Returns 0 or SL_EINVAL when outcap is too small. */
int fc_random_token(size_t n, char *out, size_t outcap);

/* True when s is a valid identifier for a tenant or user: 1-64 characters
 * of [A-Za-z0-9_-] (usable as a NATS subject token and in a URL path). */
int fc_id_valid(const char *s);

#endif
