/*
 * Refresh tokens for user sessions. A refresh token is 32 random bytes
 * (URL-safe base64); the database keeps only its SHA-256, so a stolen
 * database yields no usable token. Every token belongs to a family (one
 * login); using a token rotates it: it is marked used and a new token of the
 * same family is issued. Presenting a token that was already used means two
 * parties hold it (one of them a thief): the whole family is revoked and the
 * caller learns FC_EREUSE, so both must log in again. Logout revokes the
 * family.
 *
 * Table (FC_REFRESH_MIGRATION_SQL, include it in the auth migrations):
 *   refresh_tokens(hash TEXT PRIMARY KEY, family TEXT, user_id TEXT,
 *                  tenant TEXT, created_ms, expires_ms, used_ms, revoked)
 *
 * Every call runs inside the caller's write transaction (fc_db).
 */
#ifndef FC_REFRESH_H
#define FC_REFRESH_H

#include "fc/fc_db.h"

#define FC_REFRESH_MIGRATION_SQL                                                                   \
    "CREATE TABLE refresh_tokens(hash TEXT PRIMARY KEY, family TEXT NOT NULL,"                     \
    " user_id TEXT NOT NULL, tenant TEXT NOT NULL, created_ms INTEGER NOT NULL,"                   \
    " expires_ms INTEGER NOT NULL, used_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0);"          \
    "CREATE INDEX refresh_family ON refresh_tokens(family);"

#define FC_REFRESH_TOKEN_SIZE 48 /* 43 base64url chars and a NUL */

/* Issues a token for user_id/tenant valid ttl_ms from now, in family (a new
 * family when NULL). token receives it. Returns 0, SL_EINVAL or
 * SL_ESTORAGE. */
int fc_refresh_issue(fc_db *db, const char *user_id, const char *tenant, const char *family,
                     int64_t ttl_ms, char token[FC_REFRESH_TOKEN_SIZE]);

/* Rotates token: on success new_token gets its successor and user_id /
 * tenant (65 bytes each) the session's owner. Returns 0; FC_EDENIED
 * (unknown or revoked), FC_EEXPIRED, FC_EREUSE (already used: the family
 * is now revoked; the caller must commit so the revocation sticks) or
 * SL_ESTORAGE. */
int fc_refresh_rotate(fc_db *db, const char *token, int64_t ttl_ms,
                      char new_token[FC_REFRESH_TOKEN_SIZE], char user_id[65], char tenant[65]);

/* Revokes token's family (logout). Returns 0 (also for an unknown token:
 * logout is idempotent) or SL_ESTORAGE. */
int fc_refresh_revoke(fc_db *db, const char *token);

#endif
