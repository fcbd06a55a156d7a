/*
 * fleet/common: migrations and WAL, the outbox written with its state change,
 * argon2id hashes, TOTP against the RFC 4226 / RFC 6238 test vectors,
 * rotating refresh tokens with reuse detection, and the saga engine
 * (success, compensation in reverse order, retried compensation, a crash in
 * the middle of a step resumed by a new process).
 */
#include "sl_test.h"

#include "fc/fc_db.h"
#include "fc/fc_outbox.h"
#include "fc/fc_password.h"
#include "fc/fc_refresh.h"
#include "fc/fc_saga.h"
#include "fc/fc_totp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

static void path_in_tmp(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static const fc_migration mig_v2[] = {
    {"items", "CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER NOT NULL);"},
    {"outbox", FC_OUTBOX_MIGRATION_SQL},
    {"refresh", FC_REFRESH_MIGRATION_SQL},
    {"sagas", FC_SAGA_MIGRATION_SQL},
};

static int count_rows(fc_db *db, const char *sql) {
    if (fc_db_begin(db, false) != 0) {
        return -1;
    }
    sqlite3_stmt *st = fc_db_stmt(db, sql);
    int n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    fc_db_rollback(db);
    return n;
}

static void test_db_migrations_and_wal(void) {
    char path[128], err[256];
    path_in_tmp(path, sizeof path, "mig.db");
    fc_db *db = NULL;
    ASSERT_EQ(fc_db_open(path, mig_v2, 1, 0, &db, err, sizeof err), 0);
    ASSERT_EQ(fc_db_version(db), 1);
    fc_db_close(db);
    /* Reopening with more migrations applies only the new ones. */
    ASSERT_EQ(fc_db_open(path, mig_v2, 4, 0, &db, err, sizeof err), 0);
    ASSERT_EQ(fc_db_version(db), 4);
    ASSERT_EQ(fc_db_begin(db, false), 0);
    sqlite3_stmt *st = fc_db_stmt(db, "PRAGMA journal_mode");
    ASSERT_TRUE(st && sqlite3_step(st) == SQLITE_ROW);
    ASSERT_STR_EQ(fc_db_col_text(st, 0), "wal");
    sqlite3_reset(st);
    fc_db_rollback(db);
    /* A UNIQUE violation is a conflict; a rolled-back write leaves nothing. */
    ASSERT_EQ(fc_db_begin(db, true), 0);
    st = fc_db_stmt(db, "INSERT INTO items(id, n) VALUES(?1, 1)");
    sqlite3_bind_text(st, 1, "a", -1, SQLITE_STATIC);
    ASSERT_EQ(fc_db_step_done(db, st), 0);
    st = fc_db_stmt(db, "INSERT INTO items(id, n) VALUES(?1, 1)");
    sqlite3_bind_text(st, 1, "a", -1, SQLITE_STATIC);
    ASSERT_EQ(fc_db_step_done(db, st), FC_ECONFLICT);
    ASSERT_EQ(fc_db_commit(db), 0);
    ASSERT_EQ(fc_db_begin(db, true), 0);
    ASSERT_EQ(fc_db_exec(db, "INSERT INTO items(id, n) VALUES('b', 2)"), 0);
    fc_db_rollback(db);
    ASSERT_EQ(count_rows(db, "SELECT count(*) FROM items"), 1);
    fc_db_close(db);
    /* A binary that knows fewer migrations than the file refuses it. */
    ASSERT_EQ(fc_db_open(path, mig_v2, 2, 0, &db, err, sizeof err), SL_ECORRUPT);
    ASSERT_TRUE(db == NULL);
    ASSERT_TRUE(strstr(err, "newer") != NULL);
    /* A broken migration is reported by name and leaves the version. */
    static const fc_migration bad[] = {{"items", "CREATE TABLE items(id TEXT PRIMARY KEY, n"
                                                 " INTEGER NOT NULL);"},
                                       {"broken", "CREATE TABLE oops("}};
    path_in_tmp(path, sizeof path, "bad.db");
    ASSERT_EQ(fc_db_open(path, bad, 2, 0, &db, err, sizeof err), SL_ESTORAGE);
    ASSERT_TRUE(strstr(err, "broken") != NULL);
    ASSERT_EQ(fc_db_open(path, bad, 1, 0, &db, err, sizeof err), 0);
    ASSERT_EQ(fc_db_version(db), 1);
    fc_db_close(db);
    fc_db_close(NULL);
}

static void test_outbox_commits_with_state(void) {
    char err[256];
    fc_db *db = NULL;
    ASSERT_EQ(fc_db_open(":memory:", mig_v2, 4, 0, &db, err, sizeof err), 0);
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char id[37];
    /* State change and event rolled back together: nothing pending. */
    ASSERT_EQ(fc_db_begin(db, true), 0);
    ASSERT_EQ(fc_db_exec(db, "INSERT INTO items(id, n) VALUES('u1', 1)"), 0);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.created", "{\"user_id\":\"u1\"}", tp, NULL, id), 0);
    fc_db_rollback(db);
    ASSERT_EQ(count_rows(db, "SELECT count(*) FROM items"), 0);
    ASSERT_EQ(count_rows(db, "SELECT count(*) FROM outbox"), 0);
    /* Committed together: the event is pending, in order. */
    ASSERT_EQ(fc_db_begin(db, true), 0);
    ASSERT_EQ(fc_db_exec(db, "INSERT INTO items(id, n) VALUES('u1', 1)"), 0);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.created", "{\"user_id\":\"u1\"}", tp, NULL, id), 0);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.updated", NULL, NULL, NULL, NULL), 0);
    /* Bad input is refused: a tenant that would break the subject, a type
     * with wildcards, data that is not an object. */
    ASSERT_EQ(fc_outbox_add(db, "t.1", "user.created", NULL, NULL, NULL, NULL), SL_EINVAL);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.>", NULL, NULL, NULL, NULL), SL_EINVAL);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user..x", NULL, NULL, NULL, NULL), SL_EINVAL);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.created", "[1]", NULL, NULL, NULL), SL_EINVAL);
    ASSERT_EQ(fc_outbox_add(db, "t1", "user.created", "{bad", NULL, NULL, NULL), SL_EINVAL);
    ASSERT_EQ(fc_db_commit(db), 0);

    /* The rows, in order, as the relay will read them. */
    ASSERT_EQ(count_rows(db, "SELECT count(*) FROM outbox WHERE sent_ms IS NULL"), 2);
    ASSERT_EQ(fc_db_begin(db, false), 0);
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT event_id, subject, payload, traceparent FROM outbox"
                                      " ORDER BY seq");
    ASSERT_TRUE(st && sqlite3_step(st) == SQLITE_ROW);
    ASSERT_STR_EQ(fc_db_col_text(st, 0), id);
    ASSERT_STR_EQ(fc_db_col_text(st, 1), "events.t1.user.created");
    ASSERT_STR_EQ(fc_db_col_text(st, 3), tp);
    json_t *p = json_loads(fc_db_col_text(st, 2), 0, NULL);
    ASSERT_TRUE(p != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "id")), id);
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "type")), "user.created");
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "tenant")), "t1");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(p, "data"), "user_id")), "u1");
    ASSERT_TRUE(json_is_string(json_object_get(p, "time")));
    json_decref(p);
    ASSERT_TRUE(sqlite3_step(st) == SQLITE_ROW);
    ASSERT_STR_EQ(fc_db_col_text(st, 1), "events.t1.user.updated");
    ASSERT_TRUE(sqlite3_column_type(st, 3) == SQLITE_NULL);
    sqlite3_reset(st);
    fc_db_rollback(db);
    fc_db_close(db);
}

static void test_password_argon2id(void) {
    char h[FC_PASSWORD_HASH_SIZE], h2[FC_PASSWORD_HASH_SIZE];
    const char *pw = "correct horse battery";
    ASSERT_EQ(fc_password_hash(pw, strlen(pw), h), 0);
    ASSERT_TRUE(strncmp(h, "$argon2id$", 10) == 0);
    ASSERT_EQ(fc_password_verify(h, pw, strlen(pw)), 0);
    ASSERT_EQ(fc_password_verify(h, "correct horse batterY", strlen(pw)), FC_EDENIED);
    ASSERT_EQ(fc_password_verify("$argon2id$garbage", pw, strlen(pw)), FC_EDENIED);
    ASSERT_EQ(fc_password_verify("", pw, strlen(pw)), FC_EDENIED);
    /* Salted: the same password hashes differently. */
    ASSERT_EQ(fc_password_hash(pw, strlen(pw), h2), 0);
    ASSERT_TRUE(strcmp(h, h2) != 0);
    ASSERT_TRUE(!fc_password_needs_rehash(h));
    ASSERT_EQ(fc_password_hash("short", 5, h), SL_EINVAL);
    fc_password_burn(pw, strlen(pw));
}

static const uint8_t rfc_key[] = "12345678901234567890";

static void test_hotp_rfc4226_vectors(void) {
    static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314,
                                    254676, 287922, 162583, 399871, 520489};
    for (uint64_t i = 0; i < 10; i++) {
        uint32_t code = 0;
        ASSERT_EQ(fc_hotp(rfc_key, 20, i, 6, &code), 0);
        ASSERT_EQ(code, want[i]);
    }
    uint32_t code;
    ASSERT_EQ(fc_hotp(rfc_key, 20, 0, 5, &code), SL_EINVAL);
    ASSERT_EQ(fc_hotp(rfc_key, 0, 0, 6, &code), SL_EINVAL);
}

static void test_totp_rfc6238_vectors(void) {
    /* RFC 6238 appendix B, SHA1 column, 8 digits. */
    static const struct {
        int64_t t;
        uint32_t code;
    } v[] = {{59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
             {1234567890, 89005924}, {2000000000, 69279037}, {20000000000, 65353130}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint32_t code = 0;
        ASSERT_EQ(fc_totp_at(rfc_key, 20, v[i].t, 8, &code), 0);
        ASSERT_EQ(code, v[i].code);
    }
}

static void test_totp_verify_window_and_replay(void) {
    int64_t t = 1234567890, step = t / 30, matched = 0;
    char code[8];
    uint32_t c;
    ASSERT_EQ(fc_totp_at(rfc_key, 20, t, 6, &c), 0);
    snprintf(code, sizeof code, "%06u", c);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t, code, -1, &matched), 0);
    ASSERT_EQ(matched, step);
    /* One step of drift either way is accepted; two are not. */
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t + 30, code, -1, &matched), 0);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t - 30, code, -1, &matched), 0);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t + 60, code, -1, &matched), FC_EDENIED);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t - 60, code, -1, &matched), FC_EDENIED);
    /* The step just used cannot be used again. */
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t, code, step, &matched), FC_EDENIED);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t, "12345", -1, &matched), FC_EDENIED);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t, "12a456", -1, &matched), FC_EDENIED);
    ASSERT_EQ(fc_totp_verify(rfc_key, 20, t, NULL, -1, &matched), FC_EDENIED);
}

static void test_base32_and_uri(void) {
    char b32[64], uri[256];
    uint8_t back[32];
    ASSERT_EQ(fc_base32_encode(rfc_key, 20, b32, sizeof b32), 0);
    ASSERT_STR_EQ(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    ASSERT_EQ(fc_base32_decode("gezdgnbvgy3tqojq GEZDGNBVGY3TQOJQ", back, sizeof back), 20);
    ASSERT_TRUE(memcmp(back, rfc_key, 20) == 0);
    ASSERT_EQ(fc_base32_encode((const uint8_t *)"f", 1, b32, sizeof b32), 0);
    ASSERT_STR_EQ(b32, "MY");
    ASSERT_EQ(fc_base32_decode("MY======", back, sizeof back), 1);
    ASSERT_EQ(back[0], 'f');
    ASSERT_EQ(fc_base32_decode("M1", back, sizeof back), SL_EINVAL);
    ASSERT_EQ(fc_base32_decode("GEZDGNBVGY3TQOJQ", back, 4), SL_EINVAL);
    ASSERT_EQ(fc_base32_encode(rfc_key, 20, b32, 10), SL_EINVAL);
    ASSERT_EQ(fc_totp_secret(b32, sizeof b32), 0);
    ASSERT_EQ(strlen(b32), 32);
    ASSERT_EQ(fc_base32_decode(b32, back, sizeof back), 20);
    ASSERT_EQ(fc_totp_uri("Sight line", "ann@example.com", "GEZDGNBV", uri, sizeof uri), 0);
    ASSERT_STR_EQ(uri, "otpauth://totp/Sight%20line:ann@example.com?secret=GEZDGNBV&issuer="
                       "Sight%20line&algorithm=SHA1&digits=6&period=30");
    ASSERT_EQ(fc_totp_uri("x", "y", "GEZDGNBV", uri, 20), SL_ETOOBIG);
}

static void test_refresh_rotation_and_reuse(void) {
    char err[256], t1[FC_REFRESH_TOKEN_SIZE], t2[FC_REFRESH_TOKEN_SIZE], t3[FC_REFRESH_TOKEN_SIZE];
    char uid[65], ten[65];
    fc_db *db = NULL;
    ASSERT_EQ(fc_db_open(":memory:", mig_v2, 4, 0, &db, err, sizeof err), 0);
    ASSERT_EQ(fc_db_begin(db, true), 0);
    ASSERT_EQ(fc_refresh_issue(db, "u1", "t1", NULL, 60000, t1), 0);
    ASSERT_EQ(strlen(t1), 43);
    /* Only the hash is stored. */
    sqlite3_stmt *st = fc_db_stmt(db, "SELECT count(*) FROM refresh_tokens WHERE hash = ?1");
    sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    ASSERT_TRUE(sqlite3_step(st) == SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 0);
    sqlite3_reset(st);
    /* Rotation gives a new token for the same user. */
    ASSERT_EQ(fc_refresh_rotate(db, t1, 60000, t2, uid, ten), 0);
    ASSERT_STR_EQ(uid, "u1");
    ASSERT_STR_EQ(ten, "t1");
    ASSERT_TRUE(strcmp(t1, t2) != 0);
    /* The old token again: reuse, and the whole family dies, t2 included. */
    ASSERT_EQ(fc_refresh_rotate(db, t1, 60000, t3, uid, ten), FC_EREUSE);
    ASSERT_EQ(fc_refresh_rotate(db, t2, 60000, t3, uid, ten), FC_EDENIED);
    ASSERT_EQ(fc_refresh_rotate(db, "nonsense", 60000, t3, uid, ten), FC_EDENIED);
    /* Logout revokes; an unknown token's logout is a no-op. */
    ASSERT_EQ(fc_refresh_issue(db, "u2", "t1", NULL, 60000, t1), 0);
    ASSERT_EQ(fc_refresh_revoke(db, t1), 0);
    ASSERT_EQ(fc_refresh_rotate(db, t1, 60000, t3, uid, ten), FC_EDENIED);
    ASSERT_EQ(fc_refresh_revoke(db, "unknown"), 0);
    /* Expiry. */
    ASSERT_EQ(fc_refresh_issue(db, "u3", "t1", NULL, 1, t1), 0);
    usleep(5000);
    ASSERT_EQ(fc_refresh_rotate(db, t1, 60000, t3, uid, ten), FC_EEXPIRED);
    ASSERT_EQ(fc_refresh_issue(db, "u3", "bad tenant", NULL, 1000, t1), SL_EINVAL);
    ASSERT_EQ(fc_db_commit(db), 0);
    fc_db_close(db);
}

/* A three-step saga whose steps record what ran in a string, with knobs to
 * fail a step, to fail a compensation a number of times, or to die (as a
 * process) inside a step. */
typedef struct saga_app {
    char trail[256];
    int fail_step;     /* -1: none */
    int comp_failures; /* compensation of step 0 fails this many times */
    int die_in_step;   /* -1: none; else _exit(0) inside that step's run */
} saga_app;

static int saga_step(saga_app *a, int i, json_t *data, char *why, size_t whycap) {
    if (i == a->die_in_step) {
        _exit(0);
    }
    if (i == a->fail_step) {
        snprintf(why, whycap, "step %d refused", i);
        return -1;
    }
    char key[16];
    snprintf(key, sizeof key, "s%d", i);
    json_object_set_new(data, key, json_true());
    size_t n = strlen(a->trail);
    snprintf(a->trail + n, sizeof a->trail - n, "r%d ", i);
    return 0;
}

static int saga_comp(saga_app *a, int i, char *why, size_t whycap) {
    if (i == 0 && a->comp_failures > 0) {
        a->comp_failures--;
        snprintf(why, whycap, "undo %d unavailable", i);
        return -1;
    }
    size_t n = strlen(a->trail);
    snprintf(a->trail + n, sizeof a->trail - n, "c%d ", i);
    return 0;
}

#define SAGA_STEP_FNS(i)                                                                           \
    static int run##i(void *app, const char *id, json_t *d, char *why, size_t cap) {               \
        (void)id;                                                                                  \
        return saga_step(app, i, d, why, cap);                                                     \
    }                                                                                              \
    static int comp##i(void *app, const char *id, json_t *d, char *why, size_t cap) {              \
        (void)id;                                                                                  \
        (void)d;                                                                                   \
        return saga_comp(app, i, why, cap);                                                        \
    }
SAGA_STEP_FNS(0)
SAGA_STEP_FNS(1)
SAGA_STEP_FNS(2)

static const fc_saga_step saga_steps[] = {
    {"create_tenant", run0, comp0}, {"create_admin", run1, comp1}, {"notify", run2, comp2}};
static const fc_saga_def saga_def = {"tenant_signup", saga_steps, 3, 3, 1};

static int saga_new(fc_db *db, const char *id) {
    json_t *data = json_pack("{s:s}", "tenant", "acme");
    int rc = fc_db_begin(db, true);
    if (rc == 0) {
        rc = fc_saga_create(db, &saga_def, id, data);
        rc = rc == 0 ? fc_db_commit(db) : (fc_db_rollback(db), rc);
    }
    json_decref(data);
    return rc;
}

static void test_saga_success_and_compensation(void) {
    char err[256];
    fc_db *db = NULL;
    ASSERT_EQ(fc_db_open(":memory:", mig_v2, 4, 0, &db, err, sizeof err), 0);
    saga_app app = {.fail_step = -1, .die_in_step = -1};
    fc_saga_status s;
    ASSERT_EQ(saga_new(db, "s-ok"), 0);
    ASSERT_EQ(saga_new(db, "s-ok"), FC_ECONFLICT);
    ASSERT_EQ(fc_saga_run(db, &saga_def, &app, "s-ok", &s), 0);
    ASSERT_EQ(s, FC_SAGA_COMPLETED);
    ASSERT_STR_EQ(app.trail, "r0 r1 r2 ");
    json_t *v = NULL;
    ASSERT_EQ(fc_saga_get(db, &saga_def, "s-ok", &v), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "status")), "completed");
    ASSERT_TRUE(json_is_true(json_object_get(json_object_get(v, "data"), "s1")));
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(v, "data"), "tenant")), "acme");
    ASSERT_EQ(json_array_size(json_object_get(v, "history")), 3);
    json_decref(v);

    /* Step 2 fails: steps 1 and 0 are undone in reverse, the compensation of
     * step 0 succeeding on its third try; the saga ends failed with the
     * reason. */
    app = (saga_app){.fail_step = 2, .comp_failures = 2, .die_in_step = -1};
    ASSERT_EQ(saga_new(db, "s-fail"), 0);
    ASSERT_EQ(fc_saga_run(db, &saga_def, &app, "s-fail", &s), 0);
    ASSERT_EQ(s, FC_SAGA_FAILED);
    ASSERT_STR_EQ(app.trail, "r0 r1 c1 c0 ");
    ASSERT_EQ(fc_saga_get(db, &saga_def, "s-fail", &v), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "status")), "failed");
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "failed_step")), "notify");
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "error")), "step 2 refused");
    json_t *h = json_object_get(v, "history");
    ASSERT_EQ(json_array_size(h), 5);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 2), "outcome")), "error");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 4), "action")), "compensate");
    json_decref(v);

    /* A compensation that keeps failing leaves the saga compensating; a
     * later resume finishes it. */
    app = (saga_app){.fail_step = 1, .comp_failures = 5, .die_in_step = -1};
    ASSERT_EQ(saga_new(db, "s-stuck"), 0);
    ASSERT_EQ(fc_saga_run(db, &saga_def, &app, "s-stuck", &s), 0);
    ASSERT_EQ(s, FC_SAGA_COMPENSATING);
    ASSERT_EQ(fc_saga_resume_all(db, &saga_def, &app), 1);
    ASSERT_EQ(fc_saga_run(db, &saga_def, &app, "s-stuck", &s), 0);
    ASSERT_EQ(s, FC_SAGA_FAILED);
    ASSERT_EQ(fc_saga_run(db, &saga_def, &app, "nope", &s), SL_ENOTFOUND);
    ASSERT_EQ(fc_saga_get(db, &saga_def, "nope", &v), SL_ENOTFOUND);
    fc_db_close(db);
}

static void test_saga_survives_crash(void) {
    char path[128], err[256];
    path_in_tmp(path, sizeof path, "saga.db");
    fc_db *db = NULL;
    ASSERT_EQ(fc_db_open(path, mig_v2, 4, 0, &db, err, sizeof err), 0);
    ASSERT_EQ(saga_new(db, "s-crash"), 0);
    fc_db_close(db);
    /* A child process runs the saga and dies inside step 1, after step 0
     * was recorded. */
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        fc_db *cdb = NULL;
        saga_app capp = {.fail_step = -1, .die_in_step = 1};
        fc_saga_status cs;
        if (fc_db_open(path, mig_v2, 4, 0, &cdb, err, sizeof err) == 0) {
            fc_saga_run(cdb, &saga_def, &capp, "s-crash", &cs);
        }
        _exit(3);
    }
    int wst = 0;
    ASSERT_EQ(waitpid(pid, &wst, 0), pid);
    ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    /* The restarted service resumes at step 1, not from the start. */
    ASSERT_EQ(fc_db_open(path, mig_v2, 4, 0, &db, err, sizeof err), 0);
    json_t *v = NULL;
    ASSERT_EQ(fc_saga_get(db, &saga_def, "s-crash", &v), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "status")), "running");
    ASSERT_EQ(json_integer_value(json_object_get(v, "step")), 1);
    json_decref(v);
    saga_app app = {.fail_step = -1, .die_in_step = -1};
    ASSERT_EQ(fc_saga_resume_all(db, &saga_def, &app), 1);
    ASSERT_STR_EQ(app.trail, "r1 r2 ");
    ASSERT_EQ(fc_saga_get(db, &saga_def, "s-crash", &v), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "status")), "completed");
    ASSERT_TRUE(json_is_true(json_object_get(json_object_get(v, "data"), "s0")));
    json_decref(v);
    ASSERT_EQ(fc_saga_resume_all(db, &saga_def, &app), 0);
    fc_db_close(db);
}

static void test_ids_and_tokens(void) {
    char u[37], tok[64], hex[65];
    fc_uuid(u);
    ASSERT_EQ(strlen(u), 36);
    ASSERT_EQ(u[14], '4');
    ASSERT_TRUE(fc_id_valid("acme-1_x"));
    ASSERT_TRUE(!fc_id_valid(""));
    ASSERT_TRUE(!fc_id_valid("a.b"));
    ASSERT_TRUE(!fc_id_valid("a b"));
    ASSERT_EQ(fc_random_token(32, tok, sizeof tok), 0);
    ASSERT_EQ(strlen(tok), 43);
    ASSERT_EQ(fc_random_token(32, tok, 10), SL_EINVAL);
    fc_sha256_hex("abc", 3, hex);
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ASSERT_STR_EQ(fc_strerror(FC_EREUSE), "refresh token reused: its family is revoked");
    ASSERT_STR_EQ(fc_strerror(SL_ENOMEM), "out of memory");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fc-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_db_migrations_and_wal);
    RUN(test_outbox_commits_with_state);
    RUN(test_password_argon2id);
    RUN(test_hotp_rfc4226_vectors);
    RUN(test_totp_rfc6238_vectors);
    RUN(test_totp_verify_window_and_replay);
    RUN(test_base32_and_uri);
    RUN(test_refresh_rotation_and_reuse);
    RUN(test_saga_success_and_compensation);
    RUN(test_saga_survives_crash);
    RUN(test_ids_and_tokens);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return SL_TEST_RESULT();
}
