/*
 * Private declarations of the storage module (see storage.h for the model).
 *
 * Each tenant has one write-ahead log environment (<tenant>/wal/) with one
 * database per signal, all keyed u64be window start ns, u64be seq (one
 * sequence per tenant, shared by the signals):
 *   wal          -> trace WAL record (header with the span start bounds and
 *                   trace-id list, then a level-1 block)
 *   wal.logs     -> log WAL record (format owned by the logs module)
 *   wal.metrics  -> metrics WAL record (format owned by the metrics module)
 * It only ever holds what the cutters have not taken yet, so its file stays as
 * small as the backlog, and the window files never hold WAL pages.
 *
 * A partition is one LMDB environment: one tenant, one ingest window. Its
 * named databases:
 *   blocks u64be block id       -> block (columnar, zstd)
 *   bmeta  u64be block id       -> stg_block_meta (time bounds, counts)
 *   tid    byte 8 of the trace id -> dupsort, fixed 9-byte items: bytes
 *          9-13 of the trace id, u32be block id. 256 keys with many packed
 *          items (LMDB stores fixed-size duplicates without per-item
 *          headers): 9 bytes per trace and block plus page slack, where a
 *          key per trace costs about 32. A shared 6-byte id fragment only costs
 *          decoding a block; spans are matched on the whole id.
 *   trace  (windows written before `tid`: read, never written) last 8 bytes
 *          of the trace id -> dupsort u32be block ids
 *   svcop  service\0op\0kind    -> dupsort stg_svcop_val (block id + bounds)
 *   attr   key\0value-text      -> dupsort u64be block ids
 *          key\0\xff            -> blocks where key had more than STG_LOWCARD_MAX
 *                                 distinct values: they are in the block's bloom
 *   bloom  u64be block id       -> bloom filter over those blocks' (key, value) pairs
 *   bmeta also holds "span" (the window's span start bounds) and "mark" (the
 *   highest WAL seq cut into it: a cut commits blocks and mark together, then
 *   deletes the WAL records; after a crash between the two, records at or
 *   below the mark are known to be cut already and are only deleted).
 * Partitions are reference-counted so that retention never closes an
 * environment under a reader.
 */
#ifndef SL_STORAGE_INT_H
#define SL_STORAGE_INT_H

#include "storage.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define STG_MAX_KEY 480           /* below LMDB's default 511-byte key limit */
#define STG_WAL_MAGIC 0x534c5731u /* "SLW1" */
#define STG_HIGHCARD_MARK 0xff
#define STG_TRACE_KEY 8    /* bytes of the trace id (its random end) keying `trace` */
#define STG_TID_OFF 8      /* the trace id's bytes 8..13 key `tid`: ... */
#define STG_TID_KEY 1      /* ... one in the key ... */
#define STG_TID_FRAG 5     /* ... five in the item, before the block id */
#define STG_LOWCARD_MAX 16 /* distinct values per key per block in `attr` */
#define STG_BLOOM_BITS_PER_VALUE 10
#define STG_BLOOM_PROBES 7 /* about 1% false positives at 10 bits */

/* bmeta key of the partition's span start bounds (two u64). */
extern char stg_bounds_key[4];
/* bmeta key of the highest WAL sequence cut into the window (u64). */
extern char stg_mark_key[4];

typedef struct stg_partition {
    struct stg_partition *next; /* in the tenant's list, newest window first */
    char *tenant;
    char *path;
    uint64_t window_start_ns;
    MDB_env *env;
    MDB_dbi db_blocks, db_bmeta, db_tid, db_svcop, db_attr, db_bloom;
    MDB_dbi db_trace; /* the older trace-id index, when the window has one */
    bool has_trace;
    int refs;            /* readers and writers holding it (under store mu) */
    bool dropped;        /* removed by retention; freed at refs == 0 */
    uint64_t next_block; /* next block id; cutter thread only */
    uint64_t mark;       /* highest WAL seq cut into it; cutter thread only */
    bool sealed;         /* mapped at its file size: read-only until unsealed */
    atomic_uint_least64_t blocks;
    atomic_uint_least64_t min_start; /* span start bounds of everything in it */
    atomic_uint_least64_t max_start;
} stg_partition;

/* A tenant's write-ahead log environment. Created on first write, never
 * dropped while the store is open (retention drops windows, not the log). */
typedef struct stg_wal {
    struct stg_wal *next;
    char *tenant;
    char *path;
    MDB_env *env;
    MDB_dbi dbs[STG_NSIGNALS];                   /* one database per signal */
    uint64_t next_seq;                           /* writer thread only */
    uint64_t last_window;                        /* keys stay increasing if the clock steps back */
    atomic_uint_least64_t bytes[STG_NSIGNALS];   /* uncut record bytes per signal */
    atomic_uint_least64_t records[STG_NSIGNALS]; /* uncut records per signal */
    atomic_uint_least64_t min_start;             /* span start bounds of the trace records */
    atomic_uint_least64_t max_start;
    /* Held shared by every transaction on env, exclusively by the writer
     * while it grows the map (mdb_env_set_mapsize needs no transaction
     * open in the process). */
    pthread_rwlock_t resize;
} stg_wal;

typedef struct stg_block_meta {
    uint64_t min_start;
    uint64_t max_start;
    uint32_t nspans;
    uint32_t ntraces;
} stg_block_meta;

typedef struct stg_svcop_val {
    uint8_t block_id[8]; /* big-endian so dupsort orders by block */
    uint64_t min_start;
    uint64_t max_start;
    uint64_t min_dur;
    uint64_t max_dur;
} stg_svcop_val;

/* What a signal other than traces plugs into the store (traces are built
 * in: partition.c, cutter.c, read.c). Every member may be NULL.
 *   open      - in stg_open, after the trace windows and before the WALs are
 *               discovered: finds the module's windows on disk and raises
 *               s->max_mark to the highest WAL seq cut into any of them (WAL
 *               sequences resume above it, so a mark never covers a new
 *               record); state goes in s->sig[signal] (owned by the module)
 *   close     - in stg_close, after the background thread stopped; also
 *               after a failed open (s->sig[signal] may be NULL)
 *   cut       - moves a bounded slice of w's records of the signal
 *               (w->dbs[signal]) into the module's windows and deletes them,
 *               exactly once across crashes; called with s->cut_mu held,
 *               repeatedly while it makes progress
 *   retention - drops the module's windows older than now - retention
 *   stats     - adds the module's figures to out (bytes_on_disk, partitions,
 *               blocks); the WAL counters are added by the store */
typedef struct stg_signal_ops {
    const char *name;
    int (*open)(stg_store *s);
    void (*close)(stg_store *s);
    int (*cut)(stg_store *s, stg_wal *w);
    int (*retention)(stg_store *s, uint64_t now_ns);
    void (*stats)(stg_store *s, stg_stats *out);
} stg_signal_ops;

/* The logs module (logs_store.c). */
extern const stg_signal_ops stg_logs_ops;

/* The metrics engine (metrics_store.c). */
extern const stg_signal_ops stg_metrics_ops;

struct stg_store {
    stg_options opt;
    char *data_dir;
    pthread_mutex_t mu;                /* guards the partition list and refs */
    stg_partition *parts;              /* all tenants, newest window first */
    stg_wal *wals;                     /* one per tenant */
    uint64_t max_mark;                 /* highest cut mark of any window, at open */
    atomic_uint_least64_t wal_backlog; /* uncut WAL bytes of every partition */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t cut_mu;   /* one cutter at a time (background or stg_maintain) */
    pthread_mutex_t write_mu; /* one stg_write_batch at a time (collector, rule evaluator) */
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
    bool stopping;
    void *sig[STG_NSIGNALS]; /* per-signal module state (stg_signal_ops.open) */
    void *deps;              /* the live service graph (deps.c) */
};

/* deps.c: the live service graph, fed by the cutter with the spans it cut. */
int stg_deps_open(stg_store *s);
void stg_deps_close(stg_store *s);
void stg_deps_observe(stg_store *s, const char *tenant, sl_span *const *spans, size_t n);
/* Fills the graphs from the spans already cut into windows of the last 24
 * hours (at most STG_DEPS_REBUILD_MAX of them), so that a restart loses
 * nothing of the graph. The background thread runs it once, before its first
 * cut: spans still in the WAL are observed when they are cut, so none counts
 * twice. */
#define STG_DEPS_REBUILD_MAX 5000000u
void stg_deps_rebuild(stg_store *s);
/* Calls cb with the spans of p's blocks starting in [lo, hi] (read.c). */
int stg_scan_partition(stg_partition *p, uint64_t lo, uint64_t hi, sl_arena *tmp, stg_span_cb cb,
                       void *ud);

/* partition.c */
int stg_part_open(stg_store *s, const char *tenant, uint64_t window_start_ns, bool create,
                  stg_partition **out);
void stg_part_close(stg_partition *p);
/* Returns the partition for (tenant, window), opening or creating it, with a
 * reference taken. Caller releases with stg_part_release. */
int stg_part_get(stg_store *s, const char *tenant, uint64_t window_start_ns, stg_partition **out);
void stg_part_release(stg_store *s, stg_partition *p);
/* Reopens p's environment sealed (mapped at its file's size, for reads) or
 * unsealed (the full map size, writable). Caller holds s->mu and the only
 * reference(s) to p, so that no transaction is open on it. */
int stg_part_reseal(stg_store *s, stg_partition *p, bool sealed);
/* Seals windows that ended a while ago and have nothing left to cut. */
void stg_seal_run(stg_store *s, uint64_t now_ns);
/* Snapshot of the tenant's partitions (NULL tenant: all), newest first, each
 * with a reference taken. *parts is malloc'd; release with stg_parts_release. */
int stg_parts_list(stg_store *s, const char *tenant, stg_partition ***parts, size_t *n);
void stg_parts_release(stg_store *s, stg_partition **parts, size_t n);
int stg_discover(stg_store *s);
int stg_retention_run(stg_store *s, uint64_t now_ns);
/* Data of the tenant's signal older than this is dropped: now minus the
 * tenant's retention for the signal (limits), else the store's; 0 when
 * everything is kept. */
uint64_t stg_retention_cutoff(stg_store *s, const char *tenant, stg_signal sig, uint64_t now_ns);
int stg_mkdirs(const char *path);
/* 0 for 0; -errno for LMDB's errno results; SL_ESTORAGE for its own codes. */
int stg_lmdb_err(int rc);
/* Opens (creating the directory when create) an LMDB environment with the
 * project's flags. On failure nothing is left open. */
int stg_env_open(const char *path, bool create, unsigned maxdbs, uint64_t map_size, MDB_env **out);
/* Doubles the map of env (at least to its file and 64 MiB more) after a
 * MDB_MAP_FULL: the map is address space, the disk is the real limit. The
 * caller guarantees that no transaction is open on env in the process (it
 * holds the window's only reference under the lock that hands them out).
 * 0 or SL_EMAPFULL; path is for the log. */
int stg_env_grow(MDB_env *env, const char *path);
int stg_rmtree(const char *path);
void stg_widen_bounds(stg_partition *p, uint64_t min_start, uint64_t max_start);

/* cutter.c: cuts a bounded slice of the tenant's WAL into its windows. */
int stg_cut_wal(stg_store *s, stg_wal *w);

/* wal.c */
/* Parses a WAL value into its trace-id list and block payload. */
int stg_wal_parse(const uint8_t *v, size_t size, const uint8_t **ids, size_t *nids,
                  const uint8_t **block, size_t *block_size);
/* The span start bounds in a record's header. */
void stg_wal_bounds(const uint8_t *v, size_t size, uint64_t *min_start, uint64_t *max_start);
/* The tenant's WAL, opened or created (create) on first use; NULL tenant
 * never. Returns 0, SL_ENOTFOUND (!create and none on disk) or an error. */
int stg_wal_get(stg_store *s, const char *tenant, bool create, stg_wal **out);
/* Every transaction on a WAL environment begins here (taking w->resize
 * shared; returns LMDB's code, the lock released on failure) and calls
 * stg_wal_txn_done once it committed or aborted. */
int stg_wal_txn_begin(stg_wal *w, unsigned flags, MDB_txn **txn);
void stg_wal_txn_done(stg_wal *w);
/* Calls cb for each uncut record of one signal of the tenant, oldest first,
 * inside one read transaction (the record is borrowed for the call). A
 * tenant without a WAL has no records (returns 0). A nonzero return from cb
 * stops the walk and is returned. */
typedef int (*stg_wal_cb)(void *ud, uint64_t window_ns, uint64_t seq, const uint8_t *rec,
                          size_t size);
int stg_wal_scan(stg_store *s, const char *tenant, stg_signal sig, stg_wal_cb cb, void *ud);
/* Opens the WAL of every tenant directory found at start-up. */
int stg_wal_discover(stg_store *s);
void stg_wal_close(stg_wal *w);
/* The window of the oldest uncut record (UINT64_MAX: none; 0: unknown), of
 * traces or of one signal. */
uint64_t stg_wal_oldest_window(stg_wal *w);
uint64_t stg_wal_oldest_window_of(stg_wal *w, stg_signal sig);
/* Deletes the signal's records up to and including last_key (the ones a cut
 * took, at the head of the log) in one transaction, then takes nrecords and
 * bytes off the counters. Returns 0 or an LMDB/errno code (not mapped). */
int stg_wal_trim(stg_store *s, stg_wal *w, stg_signal sig, const uint8_t *last_key,
                 uint64_t nrecords, uint64_t bytes);
void stg_widen_wal_bounds(stg_wal *w, uint64_t min_start, uint64_t max_start);
/* Snapshot of all WALs (the list only grows; entries live until stg_close). */
int stg_wals_list(stg_store *s, stg_wal ***out, size_t *n);
/* WAL keys: window start and sequence, both big-endian. */
#define STG_WAL_KEY 16
/* Free bytes under which a failed write is taken for a full disk. */
#define STG_DISK_LOW (16ull << 20)
/* Free space below which no new LMDB environment is created (stg_env_open). */
#define STG_ENV_CREATE_MIN (1ull << 20)

/* Index keys (cutter.c): service\0op\0kind (kind < 0: the prefix without
 * it) and key\0value-text (highcard: key\0 0xff), truncated to fit LMDB. */
size_t stg_svcop_key(sl_str service, sl_str op, int kind, uint8_t *buf);
size_t stg_attr_key(sl_str key, sl_str val, bool highcard, uint8_t *buf);

/* Attribute bloom filters (cutter.c): a stable hash of (key, value-text) and
 * the filter operations; nbits is a power of two. */
uint64_t stg_pair_hash(sl_str key, sl_str value);
/* A block's bloom filter over (key, value) pair hashes (stg_pair_hash), as
 * stored in `bloom`: STG_BLOOM_BITS_PER_VALUE bits per value, a multiple of
 * 64, then one tag byte STG_BLOOM_TAG (an odd size, which the older filters,
 * power-of-two sizes probed by masking, never have). stg_bloom_size gives
 * the stored size for n values; stg_bloom_add sets a hash's bits in a
 * zeroed value of that size; stg_bloom_maybe answers false only when the
 * filter (of either format) cannot hold h, and true for anything malformed. */
#define STG_BLOOM_TAG 0x02
size_t stg_bloom_size(size_t n);
void stg_bloom_add(uint8_t *filter, size_t size, uint64_t h);
bool stg_bloom_maybe(const uint8_t *filter, size_t size, uint64_t h);

/* span_util.c */
/* Text form of a value used by tag indexes and tag matching. Writes at most
 * cap bytes to buf (not NUL-terminated) and returns the view. */
sl_str stg_value_text(const sl_value *v, char *buf, size_t cap);
/* Deep-copies n spans into a (strings, attributes, events, links; resources
 * copied once each). Returns 0 or SL_ENOMEM. */
int stg_spans_copy(const sl_span *const *src, size_t n, sl_arena *a, sl_span **out);
/* Jaeger tag matching: span attribute, resource attribute, or the projections
 * error=true, span.kind=..., otel.status_code=..., otel.status_description. */
bool stg_span_has_tag(const sl_span *sp, sl_str key, sl_str value);
const char *stg_kind_name(int kind);

static inline void stg_be64(uint8_t out[8], uint64_t v) {
    sl_put_be64(out, v);
}

#endif
