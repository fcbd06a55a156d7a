/*
 * The transactional outbox: a service writes its state change and the event
 * announcing it in one SQLite transaction (sf_outbox_add inside the
 * service's own BEGIN ... COMMIT), and a relay thread publishes the pending
 * events to JetStream in order, marking a row sent only after the stream
 * acknowledged it. A NATS outage leaves rows pending; the relay retries with
 * backoff and publishes them once NATS is back. A crash between the
 * acknowledgement and the mark republishes the row with the same
 * Nats-Msg-Id, which the stream's duplicate window drops (and consumers
 * deduplicate by the event id anyway).
 *
 * Table (the layout of fleet/README.md, "Outbox table", which fleet/common's
 * FC_OUTBOX_MIGRATION_SQL creates too; sf_outbox_schema creates it for
 * services without fleet/common; the name is configurable):
 *   CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,
 *                       event_id TEXT NOT NULL UNIQUE, -- event id (Nats-Msg-Id)
 *                       subject TEXT NOT NULL, payload TEXT NOT NULL,
 *                       traceparent TEXT, tracestate TEXT,
 *                       created_ms INTEGER NOT NULL, sent_ms INTEGER)
 * The stored traceparent is the context current when the row was added (the
 * request's SERVER span): the relay's PRODUCER span is its child, so the
 * trace continues from the request through NATS to the consumers.
 *
 * Thread-safety: sf_outbox_add runs on the caller's connection and
 * transaction; the relay uses the same sqlite3 handle (serialized mode) from
 * its thread. Sent rows are deleted after keep_sent_s.
 */
#ifndef SF_OUTBOX_H
#define SF_OUTBOX_H

#include "sf_bus.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_outbox sf_outbox;

/* Creates the table (and its pending-rows index) if missing. Errors: SF_EDB. */
int sf_outbox_schema(sqlite3 *db, const char *table);

/* Writes a new random event id (UUID version 4 text, 36 characters + NUL). */
void sf_outbox_new_id(char out[37]);

/* Adds an event row (in the caller's transaction, if one is open): id (the
 * event_id column) must be unique (NULL = a random UUID, written to id_out
 * when given, 37 bytes), payload (JSON text) is stored as is. Captures the thread's current
 * trace context. Errors: SF_EDB (e.g. a duplicate id), SL_EINVAL. */
int sf_outbox_add(sqlite3 *db, const char *table, const char *subject, const char *id,
                  const void *payload, size_t len, char *id_out);

typedef struct sf_outbox_options {
    sqlite3 *db;           /* the service's connection (only its file name is used), */
    const char *path;      /* or the database file's path: one of the two is required */
    sf_bus *bus;           /* required, borrowed */
    const char *table;     /* "outbox" */
    unsigned batch;        /* rows per round: 256 */
    unsigned poll_ms;      /* idle poll: 500 (sf_outbox_notify wakes it sooner) */
    unsigned retry_max_ms; /* backoff cap while NATS fails: 5000 */
    unsigned keep_sent_s;  /* 3600 */
} sf_outbox_options;

void sf_outbox_options_init(sf_outbox_options *o);

/* Starts the relay thread. The caller owns *out. Errors: SL_EINVAL,
 * SL_ENOMEM, SF_EDB (no table). */
int sf_outbox_start(const sf_outbox_options *o, sf_outbox **out);

/* Wakes the relay (call after committing rows). */
void sf_outbox_notify(sf_outbox *ob);

/* Rows not yet sent (a gauge for /ready and tests); negative on error. */
int64_t sf_outbox_pending(sf_outbox *ob);

/* Publishes what is pending for up to timeout_ms, then stops the thread and
 * frees. NULL harmless. */
void sf_outbox_stop(sf_outbox *ob, unsigned timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
