/*
 * A persisted saga: a sequence of steps, each with a compensating action,
 * whose progress lives in the service's SQLite database so that a restart
 * resumes it where it stopped.
 *
 * States: running (next step to run = step) -> completed; or, when a step
 * fails, compensating (next step to undo = step, counting down over the
 * steps that completed) -> failed, with the failing step and its reason
 * kept. Each transition and each step's outcome is committed before the
 * next action (saga_log keeps the history), so after a crash the saga
 * repeats at most the one action that was in flight: steps and compensations
 * must be idempotent (use ids derived from the saga id, treat "already
 * done" as success). A compensation that fails is retried with backoff; if
 * it still fails the saga stays compensating and the next resume retries.
 *
 * Tables (FC_SAGA_MIGRATION_SQL):
 *   sagas(id PRIMARY KEY, kind, status, step, data JSON, error, failed_step,
 *         created_ms, updated_ms)
 *   saga_log(seq, saga_id, step, action run|compensate, outcome ok|error,
 *            detail, at_ms)
 *
 * Thread-safety: one saga id must be driven by one thread at a time (the
 * service runs a saga in the request that started it, and resumes
 * unfinished ones at start-up before it serves). Different sagas may run
 * concurrently. Step callbacks run without the database mutex held, so they
 * may open their own transactions and make network calls.
 */
#ifndef FC_SAGA_H
#define FC_SAGA_H

#include "fc/fc_db.h"

#include <jansson.h>

#define FC_SAGA_MIGRATION_SQL                                                                      \
    "CREATE TABLE sagas(id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,"            \
    " step INTEGER NOT NULL, data TEXT NOT NULL, error TEXT, failed_step TEXT,"                    \
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"                                  \
    "CREATE INDEX sagas_open ON sagas(status) WHERE status IN ('running', 'compensating');"        \
    "CREATE TABLE saga_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, saga_id TEXT NOT NULL,"          \
    " step TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT,"               \
    " at_ms INTEGER NOT NULL);"                                                                    \
    "CREATE INDEX saga_log_id ON saga_log(saga_id, seq);"

typedef enum fc_saga_status {
    FC_SAGA_RUNNING,
    FC_SAGA_COMPENSATING,
    FC_SAGA_COMPLETED,
    FC_SAGA_FAILED,
} fc_saga_status;

/* A step's action: app is the engine's opaque pointer, data the saga's JSON
 * object (the action may add or change keys; they are saved with the
 * outcome). Returns 0 on success; a negative value is a failure explained in
 * why (NUL-terminated, whycap bytes). */
typedef int (*fc_saga_fn)(void *app, const char *saga_id, json_t *data, char *why, size_t whycap);

typedef struct fc_saga_step {
    const char *name;
    fc_saga_fn run;
    fc_saga_fn compensate; /* NULL: nothing to undo */
} fc_saga_step;

typedef struct fc_saga_def {
    const char *kind;
    const fc_saga_step *steps;
    size_t nsteps;
    int compensate_attempts; /* tries per compensation in one run (0 = 3) */
    int backoff_ms;          /* first retry delay, doubled each try (0 = 50) */
} fc_saga_def;

/* Creates saga id of def's kind with the initial data (borrowed; NULL for
 * {}), status running at step 0, inside the caller's write transaction (so
 * it commits with the state change that starts it). Returns 0, FC_ECONFLICT
 * (id exists), SL_EINVAL or SL_ESTORAGE. */
int fc_saga_create(fc_db *db, const fc_saga_def *def, const char *id, json_t *data);

/* Drives saga id until it completes, fails, or a compensation keeps failing.
 * Takes its own transactions. *status gets the state reached. Returns 0,
 * SL_ENOTFOUND, SL_ECORRUPT (stored data unreadable or kind mismatch) or
 * SL_ESTORAGE. */
int fc_saga_run(fc_db *db, const fc_saga_def *def, void *app, const char *id,
                fc_saga_status *status);

/* Runs every saga of def's kind left running or compensating (after a
 * restart). Returns the number driven, or SL_ESTORAGE. */
int fc_saga_resume_all(fc_db *db, const fc_saga_def *def, void *app);

/* A JSON view of the saga for an API: {"id","kind","status","step",
 * "steps":[...],"error","failed_step","data","created","updated",
 * "history":[{"step","action","outcome","detail","at"}]}. The caller owns
 * *out. Takes its own read transaction. Returns 0, SL_ENOTFOUND, SL_ENOMEM
 * or SL_ESTORAGE. */
int fc_saga_get(fc_db *db, const fc_saga_def *def, const char *id, json_t **out);

/* "running", "compensating", "completed", "failed". */
const char *fc_saga_status_name(fc_saga_status s);

#endif
