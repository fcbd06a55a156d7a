/*
 * fleet-auth's private declarations: the service state shared by the
 * handlers (auth.c) and the calls to users (auth_upstream.c).
 */
#ifndef AUTH_INT_H
#define AUTH_INT_H

#include "fc/fc_api.h"
#include "fc/fc_password.h"

#include <sf/sf_jwt.h>

#define AUTH_ISSUER "fleet-auth"
#define AUTH_AUDIENCE "fleet"

/* A credentials row. */
typedef struct cred {
    char email[256], user_id[65], tenant[65], role[16];
    char pw_hash[FC_PASSWORD_HASH_SIZE];
    char totp_secret[64], totp_pending[64];
    int64_t totp_last_step;
} cred;

typedef struct auth_svc {
    sf_app *app;
    fc_db *db;
    sf_jwt_key *user_key;
    char jwk_x[48]; /* base64url of the Ed25519 public key */
    char kid[17];
    const char *users_url; /* --users-url; NULL: users found in the registry */
} auth_svc;

/* Creates c's profile in users (POST /v2/users with c's user id, so a retry
 * is idempotent). On failure *status is users' answer (0 when unreachable)
 * and why explains. Returns 0 or an error. */
int auth_users_create(auth_svc *s, const cred *c, const char *name, unsigned *status, char *why,
                      size_t cap);

/* Deletes c's profile (compensating a sign-up that could not finish);
 * best effort, logged. */
void auth_users_delete(auth_svc *s, const cred *c);

#endif
