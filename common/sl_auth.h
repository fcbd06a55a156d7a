/*
 * Bearer-token authentication and tenant selection, shared by the OTLP
 * receivers and the query API.
 *
 * Without a token table every request is let in and its tenant is the
 * X-Scope-OrgID header (validated), or "default". With one, a request must
 * carry `Authorization: Bearer <token>`; the token's SHA-256 is looked up in
 * the table, which gives the only tenant the request may touch and the scopes
 * it may use. An X-Scope-OrgID naming another tenant is refused, so a token
 * for tenant A can never read or write tenant B, whatever it sends.
 *
 * Token file: one token per line, `<sha256 hex of the token> <tenant>
 * <scopes>`, scopes a comma-separated subset of ingest, query, admin; blank
 * lines and lines starting with # are ignored. Only hashes are stored, hashes
 * are compared in constant time, and tokens are never logged.
 *
 * Thread-safety: sl_auth_decide may run on any number of threads while
 * another thread calls sl_auth_reload (a read-write lock guards the swap).
 */
#ifndef SL_AUTH_H
#define SL_AUTH_H

#include "sl_util.h"

#include <stdbool.h>
#include <stddef.h>

enum { SL_SCOPE_INGEST = 1, SL_SCOPE_QUERY = 2, SL_SCOPE_ADMIN = 4 };

typedef struct sl_auth sl_auth;

/* A holder with no table: authentication off. Returns 0 or SL_ENOMEM. */
int sl_auth_new(sl_auth **out);
void sl_auth_free(sl_auth *a);

/* Reads the token file at path and, only when the whole file is valid,
 * replaces the table (a request already being checked finishes with the old
 * one). Returns 0, -errno (cannot read), or SL_EINVAL with err naming the
 * line (err is NUL-terminated when errcap > 0). *ntokens gets the count. */
int sl_auth_reload(sl_auth *a, const char *path, size_t *ntokens, char *err, size_t errcap);

/* True when a token table is loaded. */
bool sl_auth_enabled(sl_auth *a);

/* Decides a request. authorization and orgid are the header values, or NULL
 * when absent (they need not be NUL-terminated: sl_str). On success tenant
 * (65 bytes) receives the tenant and the result is 0; otherwise the result is
 * the HTTP status to answer (400 bad X-Scope-OrgID, 401 no or unknown token,
 * 403 token lacks the scope or names another tenant) and *why a static
 * message. a may be NULL (authentication off). */
int sl_auth_decide(sl_auth *a, const sl_str *authorization, const sl_str *orgid, unsigned scope,
                   char tenant[65], const char **why);

/* True when name is a valid tenant id: 1-64 chars of [A-Za-z0-9_.-], not "."
 * or "..". */
bool sl_tenant_valid(sl_str name);

/* Lower-case hex SHA-256 of token into hex (65 bytes): what the token file
 * holds. Returns 0 or SL_ENOMEM. */
int sl_auth_hash_hex(sl_str token, char hex[65]);

#endif
