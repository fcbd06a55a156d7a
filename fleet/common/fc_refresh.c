/*
 * fc_refresh: hashed, rotating refresh tokens with reuse detection. See
 * fc/fc_refresh.h.
 */
#include "fc/fc_refresh.h"

#include <stdio.h>
#include <string.h>

int fc_refresh_issue(fc_db *db, const char *user_id, const char *tenant, const char *family,
                     int64_t ttl_ms, char token[FC_REFRESH_TOKEN_SIZE]) {
    char fam[37], hash[65], tok[FC_REFRESH_TOKEN_SIZE];
    if (!user_id || !*user_id || strlen(user_id) > 64 || !fc_id_valid(tenant) || ttl_ms <= 0) {
        return SL_EINVAL;
    }
    if (!family) {
        fc_uuid(fam);
        family = fam;
    }
    if (fc_random_token(32, tok, sizeof tok) != 0) {
        return SL_EINVAL;
    }
    fc_sha256_hex(tok, strlen(tok), hash);
    int64_t now = fc_now_ms();
    sqlite3_stmt *st =
        fc_db_stmt(db, "INSERT INTO refresh_tokens(hash, family, user_id, tenant, created_ms,"
                       " expires_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, family, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now + ttl_ms);
    int rc = fc_db_step_done(db, st);
    if (rc == 0) {
        memcpy(token, tok, sizeof tok);
    }
    return rc == FC_ECONFLICT ? SL_ESTORAGE : rc;
}

static int fc_refresh_revoke_family(fc_db *db, const char *family) {
    sqlite3_stmt *st = fc_db_stmt(db, "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, family, -1, SQLITE_TRANSIENT);
    return fc_db_step_done(db, st);
}

int fc_refresh_rotate(fc_db *db, const char *token, int64_t ttl_ms,
                      char new_token[FC_REFRESH_TOKEN_SIZE], char user_id[65], char tenant[65]) {
    char hash[65], fam[65], uid[65], ten[65];
    if (!token || strlen(token) >= FC_REFRESH_TOKEN_SIZE) {
        return FC_EDENIED;
    }
    fc_sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT family, user_id, tenant, expires_ms, used_ms,"
                                      " revoked FROM refresh_tokens WHERE hash = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        return step == SQLITE_DONE ? FC_EDENIED : SL_ESTORAGE;
    }
    snprintf(fam, sizeof fam, "%s", fc_db_col_text(st, 0));
    snprintf(uid, sizeof uid, "%s", fc_db_col_text(st, 1));
    snprintf(ten, sizeof ten, "%s", fc_db_col_text(st, 2));
    int64_t expires = sqlite3_column_int64(st, 3);
    int used = sqlite3_column_type(st, 4) != SQLITE_NULL;
    int revoked = sqlite3_column_int(st, 5);
    sqlite3_reset(st);
    if (revoked) {
        return FC_EDENIED;
    }
    if (used) {
        int rc = fc_refresh_revoke_family(db, fam);
        return rc == 0 ? FC_EREUSE : rc;
    }
    int64_t now = fc_now_ms();
    if (expires <= now) {
        return FC_EEXPIRED;
    }
    st = fc_db_stmt(db, "UPDATE refresh_tokens SET used_ms = ?2 WHERE hash = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = fc_db_step_done(db, st);
    if (rc == 0) {
        rc = fc_refresh_issue(db, uid, ten, fam, ttl_ms, new_token);
    }
    if (rc == 0) {
        memcpy(user_id, uid, sizeof uid);
        memcpy(tenant, ten, sizeof ten);
    }
    return rc;
}

int fc_refresh_revoke(fc_db *db, const char *token) {
    char hash[65];
    if (!token || strlen(token) >= FC_REFRESH_TOKEN_SIZE) {
        return 0;
    }
    fc_sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT family FROM refresh_tokens WHERE hash = ?1");
    if (!st) {
        return SL_ESTORAGE;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    char fam[65];
    snprintf(fam, sizeof fam, "%s", fc_db_col_text(st, 0));
    sqlite3_reset(st);
    return fc_refresh_revoke_family(db, fam);
}
