/*
 * Sightline storage: time-partitioned LMDB holding zstd-compressed span blocks.
 *
 * Layout: <data_dir>/<tenant>/traces/<window start, unix seconds>/ is one LMDB
 * environment per tenant per ingest window, holding blocks and indexes; and
 * <data_dir>/<tenant>/wal/ is the tenant's write-ahead log (WAL). A request is
 * appended to the WAL; a 2xx may be sent once stg_write_batch() has returned 0
 * (the commit is fsync'd). A cutter thread turns WAL records into large sorted
 * blocks plus indexes in the window they arrived in, then deletes the records
 * (exactly once, see storage_int.h). Queries read the WAL and the blocks, so
 * acknowledged data is visible at once. Retention drops whole windows.
 *
 * Thread-safety: stg_write_batch() calls are serialized (the collector's writer
 * thread makes nearly all of them); every read function may be called from any number of threads
 * concurrently with it (LMDB MVCC: readers never block the writer).
 */
#ifndef SL_STORAGE_H
#define SL_STORAGE_H

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_limits.h"
#include "sl_model.h"
#include "sl_util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct stg_store stg_store;

typedef struct stg_options {
    const char *data_dir;         /* created if missing */
    uint64_t partition_ns;        /* window length; default 1 h */
    uint64_t retention_ns;        /* windows older than this are dropped; default 7 d */
    uint64_t map_size;            /* LMDB map of a writable window; default 256 GiB (sparse:
                                   * address space only; ended windows are remapped at
                                   * their file size) */
    uint64_t wal_map_size;        /* LMDB map of a tenant's WAL; default 8 GiB */
    uint32_t cut_interval_ms;     /* how often the cutter runs; default 2000 */
    uint64_t cut_max_bytes;       /* WAL bytes that trigger an early cut; default 32 MiB */
    int block_level;              /* zstd level of cut blocks; default 3 */
    uint64_t metrics_cache_bytes; /* decompressed blocks of compacted metrics windows kept
                                   * for the next reads; 0: none; default 128 MiB */
    int background;               /* 1: run the cutter/retention thread (default) */
    sl_limits *limits;            /* per-tenant, per-signal retention (borrowed); NULL: none */
} stg_options;

/* Fills o with the defaults above. */
void stg_options_init(stg_options *o);

/* Opens (creating) the store and, when o->background, starts the cutter and
 * retention thread. Existing WAL records are cut on the first pass, so a
 * restart after a crash loses nothing that was acknowledged.
 * Returns 0, -errno, SL_ENOMEM or SL_ESTORAGE; on failure *out = NULL. */
int stg_open(const stg_options *o, stg_store **out);

/* Stops the background thread and closes every environment. NULL is fine. */
void stg_close(stg_store *s);

/* True when name is a valid tenant id: 1-64 chars of [A-Za-z0-9_.-], not "."
 * or "..". */
int stg_tenant_valid(sl_str name);

/* --- write path ------------------------------------------------------- */

/* The three OpenTelemetry signals. Each has its own WAL database and record
 * format and its own windows; the WAL commit (the 2xx) is shared. */
typedef enum { STG_TRACES = 0, STG_LOGS = 1, STG_METRICS = 2 } stg_signal;
#define STG_NSIGNALS 3

/* Encodes n spans as one WAL record (the block format, lightly compressed)
 * appended to out. Pure and thread-safe: decode workers call it off the writer
 * thread. Returns 0, SL_ENOMEM or SL_ETOOBIG. */
int stg_wal_encode(const sl_span *spans, size_t n, sl_buf *out);

typedef struct stg_write {
    const char *tenant; /* borrowed; validated by the caller */
    stg_signal signal;
    const uint8_t *rec; /* a record of the signal's format (traces: stg_wal_encode); borrowed */
    size_t rec_size;
    uint32_t nitems;
} stg_write;

/* Appends n records (of any tenants and signals) in one durable transaction
 * per tenant: when it returns 0 every record is on disk. On error nothing of
 * the batch may be assumed durable (some tenants' records may be, so a retry
 * can store them twice). Calls from several threads (the collector's writer,
 * the rule evaluator, the active checks) are serialized by a mutex.
 * Returns 0, SL_EMAPFULL (a WAL map is full and could not grow), -errno (e.g. -ENOSPC: the disk is
 * full), SL_ESTORAGE, SL_ENOMEM or SL_EINVAL (an unknown signal). */
int stg_write_batch(stg_store *s, const stg_write *w, size_t n);

/* Bytes of WAL records written but not yet cut into blocks, over all
 * windows. The collector refuses new data (503) while this is too large, so
 * an ingest rate above what the cutter sustains cannot grow the WAL without
 * bound. Thread-safe, lock-free. */
uint64_t stg_wal_backlog(stg_store *s);

/* Runs one cutter pass and one retention pass now (tests and shutdown; the
 * background thread does this on its own). now_unix_nano decides retention. */
int stg_maintain(stg_store *s, uint64_t now_unix_nano);

/* --- read path -------------------------------------------------------- */

typedef struct stg_tag {
    sl_str key;
    sl_str value; /* compared with the value's text form (true, 42, 1.5, ...) */
} stg_tag;

typedef struct stg_trace_query {
    const char *tenant;
    sl_str service;   /* empty: any */
    sl_str operation; /* empty: any */
    const stg_tag *tags;
    size_t ntags;
    uint64_t start_min_unix_nano; /* 0: open */
    uint64_t start_max_unix_nano; /* 0: open */
    uint64_t min_duration_nano;   /* 0: none */
    uint64_t max_duration_nano;   /* 0: none */
    size_t limit;                 /* traces wanted, > 0 */
} stg_trace_query;

/* Finds up to q->limit traces having at least one span that matches every
 * criterion (service is the span's resource service; tags match span
 * attributes, resource attributes or, for "error"/"span.kind"-style tags, the
 * Jaeger projections of status and kind). Most recent traces first.
 * ids must hold q->limit entries; *n receives the count.
 * Returns 0, SL_EINVAL, SL_ENOMEM or SL_ESTORAGE. */
int stg_find_traces(stg_store *s, const stg_trace_query *q, uint8_t (*ids)[16], size_t *n);

/* Every stored span of one trace, from every window, block and WAL record,
 * without duplicates. Spans and their strings are allocated in a (the caller
 * owns the arena). Returns 0, SL_ENOTFOUND, SL_ENOMEM or SL_ESTORAGE. */
int stg_get_trace(stg_store *s, const char *tenant, const uint8_t trace_id[16], sl_arena *a,
                  sl_span **spans, size_t *n);

/* Calls cb once for every distinct (service, operation, kind) stored for the
 * tenant. Strings are borrowed for the duration of the call. A nonzero return
 * from cb stops the walk and is returned. */
typedef int (*stg_op_cb)(void *ud, sl_str service, sl_str operation, int kind);
int stg_list_operations(stg_store *s, const char *tenant, stg_op_cb cb, void *ud);

/* Calls cb with batches of spans whose start lies in [start_min, start_max]
 * (unix ns; 0 = open). Batches are borrowed for the duration of the call; a
 * nonzero return from cb stops the scan and is returned. */
typedef int (*stg_span_cb)(void *ud, const sl_span *spans, size_t n);
int stg_scan_spans(stg_store *s, const char *tenant, uint64_t start_min, uint64_t start_max,
                   stg_span_cb cb, void *ud);

/* --- metrics read path (Prometheus data model) --- */
typedef enum { STG_MATCH_EQ, STG_MATCH_NE, STG_MATCH_RE, STG_MATCH_NRE } stg_match_op;
typedef struct stg_matcher {
    stg_match_op op;
    sl_str name;
    sl_str value; /* RE/NRE: RE2 syntax, fully anchored (Prometheus semantics) */
} stg_matcher;
typedef struct stg_label {
    sl_str name;
    sl_str value;
} stg_label;
typedef sl_sample stg_sample;

/* Called once per series: labels sorted by name (including __name__), samples in
 * ascending time, only those within [mint_ms, maxt_ms]; Prometheus stale markers (the
 * NaN with bits 0x7ff0000000000002) are included as samples. Borrowed for the call.
 * A nonzero return stops the walk and is returned. */
typedef int (*stg_series_cb)(void *ud, const stg_label *labels, size_t nlabels,
                             const stg_sample *samples, size_t nsamples);

/* Every series of the tenant that matches all matchers (a matcher that matches the empty
 * string also matches series without that label, as in Prometheus) and has at least one
 * sample in [mint_ms, maxt_ms]. Series come in label order. Returns 0, SL_EINVAL (bad
 * regex), SL_ENOMEM or SL_ESTORAGE. */
int stg_select_series(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                      int64_t mint_ms, int64_t maxt_ms, stg_series_cb cb, void *ud);

typedef int (*stg_str_cb)(void *ud, sl_str s);
/* Distinct label names (sorted) of the series matching m (nm == 0: all series) with
 * samples in the range; and the distinct values (sorted) of one label name. */
int stg_label_names(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                    int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud);
int stg_label_values(stg_store *s, const char *tenant, sl_str name, const stg_matcher *m, size_t nm,
                     int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud);

typedef struct stg_metric_meta {
    sl_str metric; /* Prometheus family name, e.g. http_server_duration_seconds */
    sl_str type;   /* counter, gauge, histogram, summary or unknown */
    sl_str help;
    sl_str unit;
} stg_metric_meta;
typedef int (*stg_meta_cb)(void *ud, const stg_metric_meta *m);
/* Metadata of every metric family of the tenant (metric empty), or of one. */
int stg_metric_metadata(stg_store *s, const char *tenant, sl_str metric, stg_meta_cb cb, void *ud);

/* One series a tenant wrote lately (stg_metrics_recent_series): its labels,
 * sorted by name (including __name__) and borrowed for the call, and
 * written_ms (unix ms), the latest time the store can vouch it was written:
 * its newest sample's time, but not before the start of the ingest window it
 * arrived in, nor after that window's end or now. */
typedef int (*stg_recent_cb)(void *ud, const stg_label *labels, size_t nlabels, int64_t written_ms);

/* Calls cb for each series of the tenant's metrics WAL and windows written at
 * or after since_ms (unix ms) by that measure. Only the windows whose span
 * reaches since_ms are read, so the cost follows the series of the last
 * window or two, not the size of the store. A series may be reported more
 * than once (from the WAL and a window, or from two windows). Returns 0,
 * SL_ENOMEM, SL_ESTORAGE or cb's nonzero return. Thread-safe (reads only). */
int stg_metrics_recent_series(stg_store *s, const char *tenant, int64_t since_ms, stg_recent_cb cb,
                              void *ud);

/* Calls cb with the id of every tenant that has a directory in the store (any
 * order). Returns 0, -errno or cb's nonzero return. Thread-safe. */
int stg_list_tenants(stg_store *s, stg_str_cb cb, void *ud);

/* --- logs (logs_store.c, logs_read.c) --- */

/* Encodes n log records as one STG_LOGS WAL record appended to out (the log
 * block format at a fast zstd level). Pure and thread-safe. Returns 0,
 * SL_ENOMEM or SL_ETOOBIG. */
int stg_logs_wal_encode(const sl_log_record *recs, size_t n, sl_buf *out);

/* Full-text search works on tokens: maximal runs of word characters (ASCII
 * letters and digits, and every byte >= 0x80 so that UTF-8 words stay whole),
 * compared case-insensitively (ASCII). */
static inline int stg_log_word_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* A full-text search term: a word (one token, matched against whole tokens of
 * the body and attribute values) or a phrase (matched as a substring at token
 * boundaries). Case-insensitive: text must be lower-case. */
typedef struct stg_log_term {
    sl_str text;
    int phrase;
} stg_log_term;

typedef struct stg_log_query {
    const char *tenant;
    sl_str service;            /* empty: any */
    int min_severity;          /* records with severity_number >= this; 0: any */
    const stg_log_term *terms; /* all must match */
    size_t nterms;
    const uint8_t *trace_id;  /* 16 bytes, or NULL: any */
    const uint8_t *span_id;   /* 8 bytes, or NULL: any */
    uint64_t start_unix_nano; /* record time bounds, inclusive; 0: open */
    uint64_t end_unix_nano;   /* 0: open */
    size_t limit;             /* records wanted, > 0 */
    int forward;              /* 1: oldest first; 0: newest first */
} stg_log_query;

typedef struct stg_log_stats {
    uint64_t blocks_scanned; /* blocks decoded */
    uint64_t blocks_skipped; /* blocks of the windows searched that were not decoded */
    uint64_t bytes_decompressed;
    uint64_t wal_records; /* uncut WAL records decoded */
    uint64_t wal_skipped; /* uncut WAL records skipped by their headers */
} stg_log_stats;

/* The first q->limit records (by time, in q's direction; ties by observed
 * time) that match every criterion, from the uncut WAL and every window.
 * Records and their strings are allocated in a (the caller owns it).
 * Indexes and token filters choose the blocks; records are matched exactly.
 * Returns 0, SL_EINVAL, SL_ENOMEM or SL_ESTORAGE. Thread-safe. */
int stg_find_logs(stg_store *s, const stg_log_query *q, sl_arena *a, sl_log_record **out, size_t *n,
                  stg_log_stats *stats);

/* --- metrics write path ------------------------------------------------- */

/* An exemplar kept with a series: a sample with the trace and span it came from
 * (all-zero ids: none) and its filtered attributes as labels. */
typedef struct stg_exemplar {
    int64_t t_ms;
    double v;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    const stg_label *labels;
    size_t nlabels;
} stg_exemplar;

/* How a series' samples are stored: as they are (gauges, cumulative counters,
 * histogram buckets), or as deltas added to the series' running total. */
typedef enum { STG_MS_CUMULATIVE = 0, STG_MS_DELTA = 1 } stg_ms_kind;

/* One series of a metrics WAL record. labels: sorted by name, unique names,
 * including __name__. samples in the order the client sent them. */
typedef struct stg_mseries {
    const stg_label *labels;
    size_t nlabels;
    stg_ms_kind kind;
    const stg_sample *samples;
    size_t nsamples;
    const stg_exemplar *exemplars;
    size_t nexemplars;
} stg_mseries;

/* Encodes n series and nmeta metric family descriptions as one STG_METRICS
 * WAL record appended to out (the format is metrics_int.h's). Pure and
 * thread-safe: decode workers call it. Out-of-order and duplicate samples and
 * delta accumulation are resolved when the record is cut (and, the same way,
 * when a query reads it from the WAL). Returns 0, SL_ENOMEM or SL_ETOOBIG. */
int stg_metrics_encode(const stg_mseries *series, size_t n, const stg_metric_meta *meta,
                       size_t nmeta, sl_buf *out);

/* --- the live service graph (deps.c) ------------------------------------ */

/* Calls, errors and latency quantiles (seconds, NaN without calls) of a
 * service's requests (server and consumer spans, and roots) or of an edge
 * (child spans called from another service), over a time range. Latency
 * quantiles are histogram bucket bounds (about 41% apart). */
typedef struct stg_dep_stats {
    uint64_t calls;
    uint64_t errors;
    double p50_s, p95_s, p99_s;
} stg_dep_stats;

typedef struct stg_dep_edge {
    const char *parent;
    const char *child;
    stg_dep_stats stats;
} stg_dep_edge;

typedef struct stg_dep_service {
    const char *name;
    stg_dep_stats stats;
    uint64_t last_seen_unix_nano; /* when its last span was stored */
    uint32_t instances;           /* service.instance.id (or host.name) seen in the range's
                                     length before now */
} stg_dep_service;

/* The tenant's service graph over [start_ns, end_ns] (span start times,
 * one-minute resolution, the last 24 hours), maintained as spans are cut
 * from the WAL. Edges without calls in the range are left out; every
 * service seen in the last 24 hours is listed. Arrays live in a. Returns 0
 * or SL_ENOMEM. Thread-safe. */
int stg_deps_get(stg_store *s, const char *tenant, uint64_t start_ns, uint64_t end_ns, sl_arena *a,
                 stg_dep_edge **edges, size_t *nedges, stg_dep_service **svcs, size_t *nsvcs);

typedef struct stg_stats {
    uint64_t bytes_on_disk; /* sum of the data files' allocated sizes */
    uint64_t partitions;    /* open or closed windows on disk */
    uint64_t blocks;
    uint64_t wal_records; /* not yet cut */
    uint64_t wal_bytes;   /* their size */
} stg_stats;

/* A snapshot of store-wide figures. Thread-safe. */
void stg_get_stats(stg_store *s, stg_stats *out);

#endif
