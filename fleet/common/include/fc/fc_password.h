/*
 * Password hashing with libsodium's argon2id (crypto_pwhash_str): a
 * self-describing string ($argon2id$v=19$m=...,t=...,p=1$salt$hash) with a
 * random salt, verified in constant time. The cost (FC_PASSWORD_OPSLIMIT
 * passes over FC_PASSWORD_MEMLIMIT bytes, OWASP's argon2id minimum) keeps a
 * login at a few tens of milliseconds on one core, which the load generator
 * can sustain; a stored hash with weaker parameters is reported by
 * fc_password_needs_rehash so that a login can upgrade it.
 * Thread-safe.
 */
#ifndef FC_PASSWORD_H
#define FC_PASSWORD_H

#include "fc/fc.h"

#include <stdbool.h>

#define FC_PASSWORD_HASH_SIZE 128 /* crypto_pwhash_STRBYTES */
#define FC_PASSWORD_OPSLIMIT 2
#define FC_PASSWORD_MEMLIMIT (19u * 1024 * 1024)
#define FC_PASSWORD_MIN_LEN 8
#define FC_PASSWORD_MAX_LEN 1024

/* Hashes pw (len bytes, FC_PASSWORD_MIN_LEN..FC_PASSWORD_MAX_LEN) into out
 * (NUL-terminated). Returns 0, SL_EINVAL (length out of range) or SL_ENOMEM
 * (argon2's memory could not be had). */
int fc_password_hash(const char *pw, size_t len, char out[FC_PASSWORD_HASH_SIZE]);

/* Checks pw against a stored hash. Returns 0 when it matches, FC_EDENIED
 * when not (or when the hash is malformed). */
int fc_password_verify(const char *hash, const char *pw, size_t len);

/* Spends the time of one verification and fails: called for an unknown
 * user so that timing does not tell which accounts exist. */
void fc_password_burn(const char *pw, size_t len);

/* True when hash was made with other parameters than the current ones. */
bool fc_password_needs_rehash(const char *hash);

#endif
