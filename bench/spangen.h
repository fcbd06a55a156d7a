/*
 * spangen: a deterministic generator of realistic OTLP trace export requests,
 * for the benchmark, the load generator and integration tests.
 *
 * It models a small microservice fleet (5-10 services, each with a few
 * instances, HTTP routes, a database and message topics) and produces whole
 * traces of 3-12 spans with real parent/child structure across services: a
 * client span in service A is the parent of the server span in service B, a
 * producer span of the consumer span. Spans carry 10-20 attributes in the
 * OpenTelemetry semantic conventions (HTTP, database, messaging, code), some
 * of them high-cardinality (request ids, URLs with ids), about 5% end in an
 * error with an exception event, and durations nest from microseconds to
 * seconds.
 *
 * A request holds whole traces grouped the way an SDK's batch exporter sends
 * them: one ResourceSpans per service, one ScopeSpans per instrumentation
 * scope, spans in the order they ended (children before parents).
 *
 * Invariants: the same options (seed, start_unix_nano, ...) and the same
 * sequence of calls produce byte-identical output; every span of a request has
 * a trace id not used by any earlier request of the same generator; a request
 * of nspans spans holds exactly nspans spans.
 *
 * Thread-safety: a generator belongs to one thread at a time. The wire helpers
 * at the end are pure and thread-safe.
 */
#ifndef SL_BENCH_SPANGEN_H
#define SL_BENCH_SPANGEN_H

#include "sl_arena.h"
#include "sl_buf.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct spangen spangen;

typedef struct spangen_options {
    uint64_t seed;            /* PRNG seed; default 1 */
    uint64_t start_unix_nano; /* timestamp of the first trace; 0 (default) = now */
    uint32_t nservices;       /* 5..10; 0 (default) = chosen by the seed */
    uint32_t min_trace_spans; /* default 3 */
    uint32_t max_trace_spans; /* default 12, at most 64 */
    double error_rate;        /* probability that a leaf operation fails; default 0.05,
                                 which with propagation gives about 5% error spans */
} spangen_options;

/* Fills o with the defaults above. */
void spangen_options_init(spangen_options *o);

/* Creates a generator. Returns 0, SL_EINVAL (an option out of range) or
 * SL_ENOMEM; on failure *out = NULL. The caller owns the generator. */
int spangen_create(const spangen_options *o, spangen **out);

/* Frees g. NULL is fine. */
void spangen_destroy(spangen *g);

/* Builds the next request of exactly nspans spans (1..100000) as protobuf-c
 * structures allocated from arena, which owns them (free them by resetting or
 * freeing the arena; never with free_unpacked). Returns 0, SL_EINVAL or
 * SL_ENOMEM; *out is written only on success. */
int spangen_request_msg(
    spangen *g, size_t nspans, sl_arena *arena,
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest **out);

/* Builds the next request of exactly nspans spans and appends its protobuf
 * encoding (an ExportTraceServiceRequest body, no length prefix) to out.
 * Returns 0, SL_EINVAL, SL_ENOMEM or SL_ETOOBIG (out's maximum); on error out
 * keeps its previous length. */
int spangen_request(spangen *g, size_t nspans, sl_buf *out);

typedef struct spangen_stats {
    uint64_t requests;
    uint64_t traces;
    uint64_t spans;
    uint64_t error_spans; /* status ERROR */
    uint64_t events;      /* span events of any kind */
    uint64_t attributes;  /* span attributes (not resource or event ones) */
} spangen_stats;

/* Counters over everything g has generated so far. */
void spangen_get_stats(const spangen *g, spangen_stats *out);

/* --- wire helpers (pure, thread-safe) ----------------------------------- */

/* Walks an encoded ExportTraceServiceRequest and stores the byte offset of
 * every span's 16-byte trace_id value in offs (up to max of them) and their
 * number in *nids (one per span for valid requests). Lets a load generator
 * give every send fresh trace ids without re-encoding (see spangen_rekey).
 * Returns 0, SL_EDECODE (malformed input) or SL_ETOOBIG (more than max). */
int spangen_find_trace_ids(const uint8_t *body, size_t size, size_t *offs, size_t max,
                           size_t *nids);

/* XORs salt into the last 8 bytes of each trace id at offs. Spans that shared
 * a trace id still share one; different salts give different ids. */
void spangen_rekey(uint8_t *body, const size_t *offs, size_t n, uint64_t salt);

/* Like spangen_find_trace_ids but for every id of every span: the offsets of
 * both 8-byte halves of its trace_id and of its span_id and parent_span_id
 * (up to 4 per span). XORing one salt into all of them with spangen_rekey8
 * keeps each trace's structure (parents still match) while no id repeats, so
 * resent payloads are as incompressible as fresh ones. */
int spangen_find_ids(const uint8_t *body, size_t size, size_t *offs, size_t max, size_t *nids);

/* XORs salt into the 8 bytes at each of offs. */
void spangen_rekey8(uint8_t *body, const size_t *offs, size_t n, uint64_t salt);

#endif
