/*
 * Private declarations of the metrics engine (metrics_codec.c, metrics_store.c,
 * metrics_read.c).
 *
 * Model: a series is a sorted label set (including __name__) in its canonical
 * encoding: for each label, uvarint name length, name, uvarint value length,
 * value. Two series are the same when their canonical bytes are equal.
 *
 * WAL record (STG_METRICS; written by stg_metrics_encode, little-endian):
 *   u32 magic "SLM1" | uvarint nseries | series... | uvarint nmeta | meta...
 *   series: uvarint labels size, canonical labels | u8 kind (stg_ms_kind) |
 *           uvarint nsamples | per sample: zigzag varint t_ms (first absolute,
 *           then the difference to the previous one), u64 value bits |
 *           uvarint nexemplars | per exemplar: zigzag varint t_ms, u64 value
 *           bits, 16-byte trace id, 8-byte span id, uvarint labels size,
 *           canonical labels
 *   meta:   four strings (uvarint length + bytes): metric, type, help, unit
 *
 * Window environment <data>/<tenant>/metrics/<window start, unix s>/, named
 * databases:
 *   series  u64be hash of the canonical labels -> dupsort u32be series ids
 *   sid     u32be series id -> canonical labels
 *   post    label name \0 value (truncated to STG_MAX_KEY) -> postings list
 *           (uvarint count, then uvarint id deltas, ascending)
 *   chunks  u32be series id + u32be chunk number -> Gorilla chunk
 *   head    u32be series id -> ms_head (the appender's state)
 *   meta    metric family name -> type \0 unit \0 help
 *   ex      u32be series id + u64be (t_ms + 2^63) -> exemplar (value bits,
 *           trace id, span id, canonical labels)
 *   info    "mark" -> u64 highest WAL sequence cut in; "bounds" -> i64 min and
 *           max sample time (ms); "next" -> u32 next series id
 *
 * Chunk (metrics_codec.c): uvarint n | zigzag varint min t | zigzag varint
 * max t | bit stream: t0 (64 bits), v0 (64 bits), then per sample a
 * delta-of-delta timestamp ('0' | '10'+14 bits | '110'+17 | '1110'+20 |
 * '1111'+64) and an XOR-coded value ('0' same | '10' within the previous
 * leading/trailing window | '11' + 5 bits leading + 6 bits length + bits).
 * A window's open chunk (fewer than MS_CHUNK_SAMPLES samples) is followed by
 * the encoder's state, which decoders never reach: u64le last value bits |
 * uvarint last delta | u8 lead + 1 | u8 trail | u8 bits used in the stream's
 * last byte | u8 the trailer's size; the cutter appends to the stream
 * through it (ms_chunk_append) when the series' head says so (tail).
 */
#ifndef SL_METRICS_INT_H
#define SL_METRICS_INT_H

#include "storage_int.h"

#include <stdbool.h>
#include <stdint.h>

#define MS_WAL_MAGIC 0x314d4c53u /* "SLM1" */
#define MS_CHUNK_SAMPLES 240     /* a chunk is sealed at this many samples */
#define MS_STALE_BITS 0x7ff0000000000002ull
#define MS_HEAD_TAIL 0xa7 /* ms_head.tail (older builds left the byte zero) */
/* Delta samples of one series within one cut are summed into one cumulative
 * sample per this many milliseconds (stamped with the latest time among them). */
#define MS_DELTA_MERGE_MS 10000

/* A double's bits and back. */
static inline uint64_t ms_f2u(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline double ms_u2f(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static inline bool ms_is_stale(double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    return b == MS_STALE_BITS;
}

/* --- canonical labels --------------------------------------------------- */

/* Appends the canonical encoding of n labels (already sorted). */
int ms_labels_encode(const stg_label *l, size_t n, sl_buf *out);
/* Decodes canonical labels into an arena array. Returns 0, SL_ECORRUPT or
 * SL_ENOMEM. Strings point into p. */
int ms_labels_decode(const uint8_t *p, size_t size, sl_arena *a, stg_label **out, size_t *n);
uint64_t ms_hash(const void *p, size_t len);

/* --- chunks ------------------------------------------------------------- */

/* Appends the chunk of n samples (ascending times) to out. */
int ms_chunk_encode(const stg_sample *s, size_t n, sl_buf *out);
/* The same for a window's open chunk, followed by the encoder's state
 * (a trailer that decoders ignore: they stop after the chunk's count). */
int ms_chunk_encode_open(const stg_sample *s, size_t n, sl_buf *out);
/* Writes to out the open chunk [p, p + size) (made by the two functions here,
 * with a trailer) with the nadd samples add appended, as encoding all the
 * samples at once would (open: with a trailer again). Returns 0, SL_ECORRUPT
 * (no usable trailer: decode and encode instead) or SL_ENOMEM. */
int ms_chunk_append(const uint8_t *p, size_t size, const stg_sample *add, size_t nadd, bool open,
                    sl_buf *out);
/* Reads a chunk's count and time bounds without decoding it. */
int ms_chunk_info(const uint8_t *p, size_t size, size_t *n, int64_t *mint, int64_t *maxt);
/* Decodes a chunk into out (room for the count ms_chunk_info reports; at most
 * cap). Returns 0 or SL_ECORRUPT. */
int ms_chunk_decode(const uint8_t *p, size_t size, stg_sample *out, size_t cap, size_t *n);

/* --- postings ----------------------------------------------------------- */

int ms_postings_encode(const uint32_t *ids, size_t n, sl_buf *out);
/* Count only (to size the array). */
int ms_postings_count(const uint8_t *p, size_t size, size_t *n);
int ms_postings_decode(const uint8_t *p, size_t size, uint32_t *out, size_t cap, size_t *n);

/* --- WAL records -------------------------------------------------------- */

typedef struct ms_rec_series {
    const uint8_t *labels; /* canonical, borrowed from the record */
    size_t labels_size;
    uint8_t kind;
    stg_sample *samples; /* in the arena */
    size_t nsamples;
    stg_exemplar *exemplars; /* labels left empty: ex_labels holds them */
    const uint8_t **ex_labels;
    size_t *ex_labels_size;
    size_t nexemplars;
} ms_rec_series;

typedef struct ms_record {
    ms_rec_series *series;
    size_t nseries;
    stg_metric_meta *meta;
    size_t nmeta;
} ms_record;

/* Parses a WAL record; arrays in a, strings borrowed from p. Returns 0,
 * SL_ECORRUPT or SL_ENOMEM. */
int ms_record_decode(const uint8_t *p, size_t size, sl_arena *a, ms_record *out);

/* --- the appender: out-of-order, duplicates, delta accumulation ---------- */

/* The state of a series' end: its last sample, the running total of a delta
 * series (the last non-stale value) and the open chunk. */
typedef struct ms_head {
    int64_t last_t;
    double last_v;
    double total;
    uint32_t chunk; /* number of the open chunk */
    uint32_t nopen; /* samples in it */
    uint8_t has;    /* any sample yet */
    uint8_t tail;   /* MS_HEAD_TAIL: the open chunk has the encoder's trailer */
    uint8_t pad[6];
} ms_head;

typedef struct ms_append_stats {
    uint64_t appended, duplicates, out_of_order;
} ms_append_stats;

/* Applies one series' incoming samples (in arrival order) to h and appends
 * the samples to store to out (*nout, room for n). Cumulative samples older
 * than the head are rejected (out_of_order); one at the head's time with the
 * same value bits is dropped (duplicates), with another value rejected as
 * Prometheus does. Delta samples are summed into h->total: consecutive ones
 * within MS_DELTA_MERGE_MS become one sample stamped with the latest time;
 * a stale marker passes as is. */
void ms_apply(ms_head *h, uint8_t kind, const stg_sample *in, size_t n, stg_sample *out,
              size_t *nout, ms_append_stats *st);

/* --- a map of series by canonical labels (cutter and reads) --------------- */

typedef struct ms_sitem {
    const uint8_t *labels; /* canonical; owned by the caller */
    size_t labels_size;
    uint64_t hash;  /* ms_hash of the labels (it keys `series` on disk) */
    uint64_t mhash; /* the map's own, faster hash */
    uint8_t kind;
    stg_sample *samples; /* cut: incoming samples; read: stored ones (malloc'd) */
    size_t n, cap;
    stg_sample *wal; /* read: samples still in the WAL (malloc'd) */
    size_t nwal, walcap;
    const ms_rec_series **ex; /* cut: record series carrying exemplars */
    size_t nex, excap;
    ms_head head; /* read: the series' head in the newest window having it */
    bool has_head;
} ms_sitem;

typedef struct ms_smap {
    uint32_t *slots; /* item index + 1; 0: empty */
    size_t cap;
    ms_sitem *items; /* in insertion order */
    size_t n, icap;
} ms_smap;

/* The item for labels, added (zeroed, labels borrowed) when missing. The
 * pointer is valid until the next call. Returns 0 or SL_ENOMEM. */
int ms_smap_get(ms_smap *m, const uint8_t *labels, size_t size, ms_sitem **out);
void ms_smap_free(ms_smap *m);

/* --- store module (metrics_store.c) ------------------------------------- */

typedef struct ms_window {
    struct ms_window *next; /* newest first within the module's list */
    char *tenant;
    char *path;
    uint64_t window_start_ns;
    MDB_env *env;
    MDB_dbi db_series, db_sid, db_post, db_chunks, db_head, db_meta, db_ex, db_info, db_blocks;
    bool compacted;          /* chunks, labels and heads are in zstd blocks (metrics_compact.c) */
    struct ms_bcache *cache; /* the store's block cache (NULL: none) */
    uint64_t cache_id;       /* this environment's blocks in it: new at every open */
    bool hashes;             /* compacted: the series index is info "hashes", `series` is empty */
    int refs;
    bool dropped;
    uint64_t mark;                /* cutter thread only */
    uint32_t next_id;             /* cutter thread only */
    _Atomic int64_t min_t, max_t; /* sample time bounds (ms) */
} ms_window;

/* --- compacted windows (metrics_compact.c) -------------------------------- */

/* Samples coded for zstd (see metrics_compact.c). */
int ms_samples_encode(const stg_sample *s, size_t n, sl_buf *out);
int ms_samples_decode(const uint8_t *p, size_t size, stg_sample *out, size_t cap, size_t *n);

/* Decompressed blocks of compacted windows, shared by readers and kept for
 * the next queries (least recently used first out, bounded in bytes). Blocks
 * never change while their window's environment is open, so an entry is
 * keyed by the window's cache_id (new at every open) and the block key.
 * Thread-safe. */
typedef struct ms_bentry ms_bentry;
typedef struct ms_bcache ms_bcache;
/* NULL when cap is 0 (every reader then decompresses for itself) or on ENOMEM. */
ms_bcache *ms_bcache_new(size_t cap);
void ms_bcache_free(ms_bcache *c);
/* Forgets the blocks of the window with this cache_id (held ones live on
 * until their readers let go). */
void ms_bcache_purge(ms_bcache *c, uint64_t win);
/* A new cache_id, never 0. */
uint64_t ms_bcache_next_id(void);
typedef struct ms_bcache_stats {
    uint64_t hits, misses, bytes, blocks;
} ms_bcache_stats;
void ms_bcache_stats_get(ms_bcache *c, ms_bcache_stats *out);

/* The block of a compacted window a reader is at. */
typedef struct ms_cblock {
    ms_bentry *e;     /* the block (a reference to a shared entry or a private one); NULL: none */
    size_t scan_pos;  /* past the section last found (0: none), */
    uint32_t scan_id; /* whose id this is: a search for a later id goes on from there */
} ms_cblock;

typedef struct ms_csection {
    const uint8_t *labels;
    size_t labels_size;
    ms_head head;
    const uint8_t *samples;
    size_t samples_size;
} ms_csection;

/* The section of series id in a compacted window, read in txn through c.
 * Returns 0, SL_ENOTFOUND, SL_ECORRUPT or SL_ENOMEM. */
int ms_cblock_find(ms_window *w, MDB_txn *txn, uint32_t id, ms_cblock *c, ms_csection *out);
void ms_cblock_free(ms_cblock *c);
/* Calls cb for every series section of compacted window w, in id order,
 * read in txn (sections are borrowed for the call). A nonzero return from
 * cb stops the walk and is returned; otherwise 0, SL_ECORRUPT, SL_ENOMEM or
 * an LMDB error. */
typedef int (*ms_csection_cb)(void *ud, uint32_t id, const ms_csection *sec);
int ms_cblock_each(ms_window *w, MDB_txn *txn, ms_csection_cb cb, void *ud);
/* True when the window's info says it was compacted. */
bool ms_info_compacted(MDB_txn *txn, MDB_dbi info);
/* The series index of a compacted window written by this build: n pairs of
 * u32be (top half of ms_hash of the labels, series id), sorted, borrowed from
 * txn. Returns false for windows compacted with a `series` database. */
bool ms_info_hashes(MDB_txn *txn, MDB_dbi info, const uint8_t **pairs, size_t *n);
/* Rewrites ended window w compacted and has swap() put it in place. */
int ms_compact_window(stg_store *s, ms_window *w, int (*swap)(stg_store *, ms_window *));
/* Repairs what a crash during a swap left in a tenant's metrics directory. */
void ms_compact_recover(const char *metrics_dir);

/* Snapshot of a tenant's windows, newest first, each referenced. */
int ms_windows_list(stg_store *s, const char *tenant, ms_window ***out, size_t *n);
void ms_windows_release(stg_store *s, ms_window **w, size_t n);
/* The head of a series (by canonical labels) in w, read in txn. Returns 0,
 * SL_ENOTFOUND or an error. *id receives its id. */
int ms_series_find(ms_window *w, MDB_txn *txn, const uint8_t *labels, size_t size, uint32_t *id);

#endif
