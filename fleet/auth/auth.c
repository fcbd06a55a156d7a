/*
 * fleet-auth: sign-up, login (with TOTP when the user enabled it), refresh,
 * logout, TOTP enrolment, and the key set the gateway verifies user tokens
 * with.
 *
 * Credentials (email, argon2id hash, TOTP secret) live here; the profile
 * lives in users, which sign-up calls (a CLIENT span of this request, so one
 * trace covers gateway -> auth -> users). Access tokens are EdDSA JWTs
 * (15 min) signed with --user-key-file (64 hex digits, an Ed25519 seed);
 * refresh tokens are opaque, stored hashed, rotated on use (fc_refresh).
 * See the "User tokens" part of fleet/README.md.
 *
 * Threads: handlers on the server's connection threads; password hashing
 * runs outside the database mutex (it takes tens of milliseconds).
 */
#include "auth_int.h"

#include "fc/fc_password.h"
#include "fc/fc_refresh.h"
#include "fc/fc_totp.h"
#include "sl_util.h"

#include <sf/sf_telemetry.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCESS_TTL_S 900
#define REFRESH_TTL_MS (30LL * 24 * 3600 * 1000)

static const fc_migration auth_migrations[] = {
    {"credentials",
     "CREATE TABLE credentials(email TEXT PRIMARY KEY, user_id TEXT NOT NULL UNIQUE,"
     " tenant TEXT NOT NULL, role TEXT NOT NULL, pw_hash TEXT NOT NULL, totp_secret TEXT,"
     " totp_pending TEXT, totp_last_step INTEGER NOT NULL DEFAULT -1,"
     " created_ms INTEGER NOT NULL);"},
    {"refresh_tokens", FC_REFRESH_MIGRATION_SQL},
};

/* Lower-cases an email into out; false when it is not plausible. */
static bool email_norm(const char *in, char out[256]) {
    size_t n = in ? strlen(in) : 0;
    const char *at = in ? strchr(in, '@') : NULL;
    if (n < 3 || n > 254 || !at || at == in || !at[1] || strchr(at + 1, '@')) {
        return false;
    }
    for (size_t i = 0; i <= n; i++) {
        char c = in[i];
        if ((unsigned char)c <= ' ' && c != '\0') {
            return false;
        }
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return true;
}

#define CRED_COLS "email, user_id, tenant, role, pw_hash, totp_secret, totp_pending, totp_last_step"

static int cred_get(fc_db *db, const char *col_sql, const char *key, cred *c) {
    sqlite3_stmt *st = fc_db_stmt(db, col_sql);
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(c->email, sizeof c->email, "%s", fc_db_col_text(st, 0));
        snprintf(c->user_id, sizeof c->user_id, "%s", fc_db_col_text(st, 1));
        snprintf(c->tenant, sizeof c->tenant, "%s", fc_db_col_text(st, 2));
        snprintf(c->role, sizeof c->role, "%s", fc_db_col_text(st, 3));
        snprintf(c->pw_hash, sizeof c->pw_hash, "%s", fc_db_col_text(st, 4));
        snprintf(c->totp_secret, sizeof c->totp_secret, "%s", fc_db_col_text(st, 5));
        snprintf(c->totp_pending, sizeof c->totp_pending, "%s", fc_db_col_text(st, 6));
        c->totp_last_step = sqlite3_column_int64(st, 7);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? SL_ENOTFOUND : SL_ESTORAGE;
}

static int cred_by_email(fc_db *db, const char *email, cred *c) {
    return cred_get(db, "SELECT " CRED_COLS " FROM credentials WHERE email = ?1", email, c);
}

static int cred_by_user(fc_db *db, const char *user_id, cred *c) {
    return cred_get(db, "SELECT " CRED_COLS " FROM credentials WHERE user_id = ?1", user_id, c);
}

/* --- tokens ------------------------------------------------------------------ */

static char *access_token(auth_svc *s, const cred *c) {
    char jti[37];
    char *tok = NULL;
    fc_uuid(jti);
    json_t *claims = sf_claims_new(AUTH_ISSUER, AUTH_AUDIENCE, c->user_id, 0, ACCESS_TTL_S,
                                   strcmp(c->role, "admin") == 0 ? "user admin" : "user");
    if (claims) {
        json_object_set_new(claims, "tenant", json_string(c->tenant));
        json_object_set_new(claims, "jti", json_string(jti));
        if (sf_jwt_sign(s->user_key, claims, &tok) != 0) {
            tok = NULL;
        }
    }
    json_decref(claims);
    return tok;
}

/* Answers status with a fresh access token and the refresh token given. */
static void reply_tokens(sf_req *r, auth_svc *s, unsigned status, const cred *c,
                         const char *refresh) {
    char *at = access_token(s, c);
    if (!at) {
        sf_reply_error(r, 503, "cannot sign the access token");
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "user_id", c->user_id, "tenant",
                          c->tenant, "access_token", at, "token_type", "Bearer", "expires_in",
                          ACCESS_TTL_S, "refresh_token", refresh);
    free(at);
    sf_reply_header(r, "Cache-Control", "no-store");
    sf_reply_json(r, status, o);
}

/* Issues a new refresh family for c and answers with both tokens. */
static void login_ok(sf_req *r, auth_svc *s, unsigned status, const cred *c) {
    char refresh[FC_REFRESH_TOKEN_SIZE];
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = fc_refresh_issue(s->db, c->user_id, c->tenant, NULL, REFRESH_TTL_MS, refresh);
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "session");
        return;
    }
    reply_tokens(r, s, status, c, refresh);
}

/* --- handlers ---------------------------------------------------------------- */

static void h_signup(sf_req *r, void *ud) {
    auth_svc *s = ud;
    static const sf_json_field fields[] = {
        {"email", SF_JSON_STRING, true, 3, 254},
        {"password", SF_JSON_STRING, true, FC_PASSWORD_MIN_LEN, FC_PASSWORD_MAX_LEN},
        {"name", SF_JSON_STRING, false, 1, 200},
        {"tenant", SF_JSON_STRING, false, 1, 64},
    };
    json_t *b = NULL;
    cred c = {0};
    if (sf_req_json(r, fields, 4, false, &b) != 0) {
        return;
    }
    const char *pw = json_string_value(json_object_get(b, "password"));
    const char *tenant = sf_json_str(b, "tenant", "default");
    if (!email_norm(json_string_value(json_object_get(b, "email")), c.email)) {
        sf_reply_error(r, 400, "email is not an address");
        goto out;
    }
    if (!fc_id_valid(tenant)) {
        sf_reply_error(r, 400, "invalid tenant id (1-64 of A-Z a-z 0-9 _ -)");
        goto out;
    }
    snprintf(c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf(c.role, sizeof c.role, "member");
    /* A taken email is answered before the expensive work. */
    cred old;
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        rc = cred_by_email(s->db, c.email, &old);
        fc_db_rollback(s->db);
    }
    if (rc == 0) {
        sf_reply_error(r, 409, "an account with this email exists");
        goto out;
    }
    if (rc != SL_ENOTFOUND) {
        fc_api_fail(r, rc, "sign-up");
        goto out;
    }
    rc = fc_password_hash(pw, strlen(pw), c.pw_hash);
    if (rc != 0) {
        fc_api_fail(r, rc, "password");
        goto out;
    }
    fc_uuid(c.user_id);
    unsigned status = 0;
    char why[256];
    rc = auth_users_create(s, &c, sf_json_str(b, "name", c.email), &status, why, sizeof why);
    if (rc != 0) {
        sf_reply_error(r, status >= 400 && status < 500 ? status : 502, "users: %s", why);
        goto out;
    }
    rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        sqlite3_stmt *st = fc_db_stmt(s->db, "INSERT INTO credentials(email, user_id, tenant,"
                                             " role, pw_hash, created_ms)"
                                             " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
        rc = SL_ESTORAGE;
        if (st) {
            sqlite3_bind_text(st, 1, c.email, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, c.user_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, c.tenant, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, c.role, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, c.pw_hash, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 6, fc_now_ms());
            rc = fc_db_step_done(s->db, st);
        }
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    if (rc != 0) {
        /* A concurrent sign-up took the email (or the database failed):
         * the profile just made must not stay behind. */
        auth_users_delete(s, &c);
        fc_api_fail(r, rc, "sign-up");
        goto out;
    }
    sf_log(SL_SEVERITY_INFO, "signed up user %s in tenant %s", c.user_id, c.tenant);
    login_ok(r, s, 201, &c);
out:
    json_decref(b);
}

static void h_login(sf_req *r, void *ud) {
    auth_svc *s = ud;
    static const sf_json_field fields[] = {
        {"email", SF_JSON_STRING, true, 3, 254},
        {"password", SF_JSON_STRING, true, 1, FC_PASSWORD_MAX_LEN},
        {"totp_code", SF_JSON_STRING, false, 1, 16},
    };
    json_t *b = NULL;
    if (sf_req_json(r, fields, 3, false, &b) != 0) {
        return;
    }
    const char *pw = json_string_value(json_object_get(b, "password"));
    const char *code = sf_json_str(b, "totp_code", NULL);
    char email[256];
    cred c;
    int rc = SL_ENOTFOUND;
    if (email_norm(json_string_value(json_object_get(b, "email")), email) &&
        (rc = fc_db_begin(s->db, false)) == 0) {
        rc = cred_by_email(s->db, email, &c);
        fc_db_rollback(s->db);
    }
    if (rc == SL_ENOTFOUND) {
        fc_password_burn(pw, strlen(pw));
        sf_reply_error(r, 401, "wrong email or password");
        goto out;
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "login");
        goto out;
    }
    if (fc_password_verify(c.pw_hash, pw, strlen(pw)) != 0) {
        sf_reply_error(r, 401, "wrong email or password");
        goto out;
    }
    if (c.totp_secret[0]) {
        uint8_t key[64];
        int64_t step = 0;
        int klen = fc_base32_decode(c.totp_secret, key, sizeof key);
        if (!code) {
            sf_reply_json(
                r, 401,
                json_pack("{s:s, s:b}", "error", "a TOTP code is required", "mfa_required", 1));
            goto out;
        }
        rc = klen > 0 ? fc_totp_verify(key, (size_t)klen, fc_now_ms() / 1000, code,
                                       c.totp_last_step, &step)
                      : FC_EDENIED;
        sodium_memzero(key, sizeof key);
        if (rc == 0) {
            /* Record the step so this code cannot be replayed; the update
             * is conditional, so two concurrent logins with one code cannot
             * both pass. */
            rc = fc_db_begin(s->db, true);
            if (rc == 0) {
                sqlite3_stmt *st = fc_db_stmt(s->db, "UPDATE credentials SET totp_last_step = ?2"
                                                     " WHERE user_id = ?1 AND totp_last_step < ?2");
                rc = SL_ESTORAGE;
                if (st) {
                    sqlite3_bind_text(st, 1, c.user_id, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(st, 2, step);
                    rc = fc_db_step_done(s->db, st);
                    if (rc == 0 && fc_db_changes(s->db) != 1) {
                        rc = FC_EDENIED;
                    }
                }
                rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
            }
        }
        if (rc != 0) {
            sf_reply_error(r, 401, "wrong or already used TOTP code");
            goto out;
        }
    }
    login_ok(r, s, 200, &c);
out:
    json_decref(b);
}

static void h_refresh(sf_req *r, void *ud) {
    auth_svc *s = ud;
    static const sf_json_field fields[] = {{"refresh_token", SF_JSON_STRING, true, 1, 256}};
    json_t *b = NULL;
    if (sf_req_json(r, fields, 1, false, &b) != 0) {
        return;
    }
    char next[FC_REFRESH_TOKEN_SIZE], uid[65], ten[65];
    cred c;
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = fc_refresh_rotate(s->db, json_string_value(json_object_get(b, "refresh_token")),
                               REFRESH_TTL_MS, next, uid, ten);
        if (rc == 0) {
            rc = cred_by_user(s->db, uid, &c);
            rc = rc == SL_ENOTFOUND ? FC_EDENIED : rc;
        }
        /* A detected reuse commits: the family's revocation must stick. */
        rc = rc == 0 || rc == FC_EREUSE ? (fc_db_commit(s->db) == 0 ? rc : SL_ESTORAGE)
                                        : (fc_db_rollback(s->db), rc);
    }
    json_decref(b);
    if (rc == FC_EREUSE) {
        sf_log(SL_SEVERITY_WARN, "refresh token reused: session revoked");
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "refresh");
        return;
    }
    reply_tokens(r, s, 200, &c, next);
}

static void h_logout(sf_req *r, void *ud) {
    auth_svc *s = ud;
    static const sf_json_field fields[] = {{"refresh_token", SF_JSON_STRING, true, 1, 256}};
    json_t *b = NULL;
    if (sf_req_json(r, fields, 1, false, &b) != 0) {
        return;
    }
    int rc = fc_db_begin(s->db, true);
    if (rc == 0) {
        rc = fc_refresh_revoke(s->db, json_string_value(json_object_get(b, "refresh_token")));
        rc = rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
    }
    json_decref(b);
    if (rc != 0) {
        fc_api_fail(r, rc, "logout");
        return;
    }
    sf_reply(r, 204, NULL, NULL, 0);
}

/* The signed-in user's credentials (X-User-Id from the gateway), or NULL
 * after answering. */
static int current_user(sf_req *r, auth_svc *s, cred *c) {
    const char *uid = fc_api_user(r);
    if (!uid) {
        sf_reply_error(r, 401, "sign in first (no X-User-Id from the gateway)");
        return -1;
    }
    int rc = fc_db_begin(s->db, false);
    if (rc == 0) {
        rc = cred_by_user(s->db, uid, c);
        fc_db_rollback(s->db);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "user");
        return -1;
    }
    return 0;
}

static int totp_store(auth_svc *s, const char *user_id, const char *sql, const char *secret) {
    int rc = fc_db_begin(s->db, true);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = fc_db_stmt(s->db, sql);
    rc = SL_ESTORAGE;
    if (st) {
        sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
        if (secret) {
            sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
        }
        rc = fc_db_step_done(s->db, st);
    }
    return rc == 0 ? fc_db_commit(s->db) : (fc_db_rollback(s->db), rc);
}

static void h_totp_enroll(sf_req *r, void *ud) {
    auth_svc *s = ud;
    cred c;
    char secret[64], uri[512];
    if (current_user(r, s, &c) != 0) {
        return;
    }
    int rc = fc_totp_secret(secret, sizeof secret);
    if (rc == 0) {
        rc = fc_totp_uri("Sightline fleet", c.email, secret, uri, sizeof uri);
    }
    if (rc == 0) {
        rc = totp_store(s, c.user_id, "UPDATE credentials SET totp_pending = ?2 WHERE user_id = ?1",
                        secret);
    }
    if (rc != 0) {
        fc_api_fail(r, rc, "totp enrolment");
        return;
    }
    sf_reply_header(r, "Cache-Control", "no-store");
    sf_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:i, s:i}", "secret", secret, "otpauth_uri", uri, "digits",
                            FC_TOTP_DIGITS, "period", FC_TOTP_STEP_S));
}

static void h_totp_verify(sf_req *r, void *ud) {
    auth_svc *s = ud;
    static const sf_json_field fields[] = {{"code", SF_JSON_STRING, true, 1, 16}};
    json_t *b = NULL;
    cred c;
    if (sf_req_json(r, fields, 1, false, &b) != 0) {
        return;
    }
    if (current_user(r, s, &c) != 0) {
        json_decref(b);
        return;
    }
    uint8_t key[64];
    int64_t step = 0;
    int klen = c.totp_pending[0] ? fc_base32_decode(c.totp_pending, key, sizeof key) : -1;
    int rc = klen > 0 ? fc_totp_verify(key, (size_t)klen, fc_now_ms() / 1000,
                                       json_string_value(json_object_get(b, "code")), -1, &step)
                      : FC_EDENIED;
    sodium_memzero(key, sizeof key);
    json_decref(b);
    if (rc != 0) {
        sf_reply_error(r, klen > 0 ? 401 : 409,
                       klen > 0 ? "wrong TOTP code" : "no TOTP enrolment in progress");
        return;
    }
    char steps[32];
    snprintf(steps, sizeof steps, "%lld", (long long)step);
    rc = totp_store(s, c.user_id,
                    "UPDATE credentials SET totp_secret = totp_pending, totp_pending = NULL,"
                    " totp_last_step = ?2 WHERE user_id = ?1",
                    steps);
    if (rc != 0) {
        fc_api_fail(r, rc, "totp");
        return;
    }
    sf_reply_json(r, 200, json_pack("{s:b}", "totp_enabled", 1));
}

static void h_jwks(sf_req *r, void *ud) {
    auth_svc *s = ud;
    sf_reply_header(r, "Cache-Control", "max-age=300");
    sf_reply_json(r, 200,
                  json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "OKP", "crv",
                            "Ed25519", "x", s->jwk_x, "alg", "EdDSA", "use", "sig", "kid", s->kid));
}

/* --- set-up ------------------------------------------------------------------ */

static int load_user_key(auth_svc *s, const char *path) {
    uint8_t seed[32], pub[32];
    if (path) {
        char hex[130];
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(hex, 1, sizeof hex - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' ')) {
            n--;
        }
        if (n != 64 || sl_hex_decode(hex, 64, seed, 32) != 0) {
            sf_log(SL_SEVERITY_ERROR, "--user-key-file %s: want 64 hex digits (an Ed25519 seed)",
                   path);
            return SL_EINVAL;
        }
    } else {
        sf_log(SL_SEVERITY_WARN, "no --user-key-file: user tokens signed with a key made for"
                                 " this process (the gateway must fetch /v1/auth/jwks)");
        fc_crypto_init();
        randombytes_buf(seed, sizeof seed);
    }
    int rc = sf_jwt_key_ed25519_private(seed, &s->user_key);
    sodium_memzero(seed, sizeof seed);
    if (rc == 0) {
        rc = sf_jwt_key_ed25519_public_raw(s->user_key, pub);
    }
    if (rc != 0) {
        return rc;
    }
    char h[65];
    sodium_bin2base64(s->jwk_x, sizeof s->jwk_x, pub, sizeof pub,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    fc_sha256_hex(pub, sizeof pub, h);
    snprintf(s->kid, sizeof s->kid, "%.16s", h);
    return 0;
}

static int auth_setup(sf_app *app, void *ud) {
    auth_svc *s = ud;
    s->app = app;
    int rc = fc_api_open_db(app, auth_migrations, 2, &s->db);
    if (rc == 0) {
        rc = load_user_key(s, sf_app_flag(app, "user-key-file"));
    }
    s->users_url = sf_app_flag(app, "users-url");
    if (rc == 0) {
        rc = sf_app_require_upstream(app, "users");
    }
    if (rc != 0) {
        return rc;
    }
    static const char gw[] = "gateway";
    const sf_route routes[] = {
        {"POST", "/v1/auth/signup", h_signup, s, false, gw, NULL},
        {"POST", "/v1/auth/login", h_login, s, false, gw, NULL},
        {"POST", "/v1/auth/refresh", h_refresh, s, false, gw, NULL},
        {"POST", "/v1/auth/logout", h_logout, s, false, gw, NULL},
        {"POST", "/v1/auth/totp/enroll", h_totp_enroll, s, false, gw, NULL},
        {"POST", "/v1/auth/totp/verify", h_totp_verify, s, false, gw, NULL},
        {"GET", "/v1/auth/jwks", h_jwks, s, true, NULL, NULL},
    };
    return fc_api_routes(app, routes, sizeof routes / sizeof routes[0]);
}

int main(int argc, char **argv) {
    auth_svc s = {0};
    static const sf_flag flags[] = {
        {"user-key-file", "FLEET_USER_KEY_FILE",
         "Ed25519 seed (64 hex digits) signing user access tokens", NULL},
        {"users-url", "FLEET_USERS_URL", "users' address (default: found in the registry)", NULL},
    };
    sf_app_options o = {
        .service = "auth",
        .description = "sign-up, login, TOTP, user tokens",
        .flags = flags,
        .flag_count = 2,
        .needs_db = true,
        .userdata = &s,
    };
    int rc = sf_app_main(&o, argc, argv, auth_setup, &s);
    sf_jwt_key_destroy(s.user_key);
    fc_db_close(s.db);
    return rc;
}
