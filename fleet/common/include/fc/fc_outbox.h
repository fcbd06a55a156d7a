/*
 * The transactional outbox. A service that changes state and must announce
 * it writes the event into its own database's `outbox` table in the same
 * transaction as the change, so the two commit or vanish together; a relay
 * (the runtime's sf_outbox) then publishes pending rows to JetStream in seq order, with the stored
 * trace context as message headers, and marks a row sent only after
 * JetStream acknowledged it. Consumers deduplicate by event id, so a row
 * published twice (crash between ack and mark) is harmless.
 *
 * Table (FC_OUTBOX_MIGRATION_SQL, include it in the service's migrations):
 *   outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, -- publish order
 *          event_id TEXT NOT NULL UNIQUE,         -- UUID, the payload's "id"
 *          subject TEXT NOT NULL,                 -- events.<tenant>.<type>
 *          payload TEXT NOT NULL,                 -- JSON {id,type,tenant,time,data}
 *          traceparent TEXT, tracestate TEXT,     -- W3C context of the writer
 *          created_ms INTEGER NOT NULL,
 *          sent_ms INTEGER)                       -- NULL until JetStream acked
 *
 * Thread-safety: as fc_db (every call inside the caller's transaction).
 */
#ifndef FC_OUTBOX_H
#define FC_OUTBOX_H

#include "fc/fc_db.h"

#define FC_OUTBOX_MIGRATION_SQL                                                                    \
    "CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"                                   \
    " event_id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, payload TEXT NOT NULL,"                \
    " traceparent TEXT, tracestate TEXT, created_ms INTEGER NOT NULL, sent_ms INTEGER);"           \
    "CREATE INDEX outbox_pending ON outbox(seq) WHERE sent_ms IS NULL;"

/* Appends an event inside the caller's write transaction. tenant must pass
 * fc_id_valid; type is dot-separated words of [a-z0-9_] ("user.created");
 * data_json a JSON object (text) or NULL for {}. traceparent / tracestate
 * may be NULL. event_id (37 bytes) receives the new event's id when not
 * NULL. Returns 0, SL_EINVAL (bad tenant, type or data), SL_ENOMEM or
 * SL_ESTORAGE. */
int fc_outbox_add(fc_db *db, const char *tenant, const char *type, const char *data_json,
                  const char *traceparent, const char *tracestate, char *event_id);

#endif
