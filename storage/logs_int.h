/*
 * Private declarations of the logs storage module (logs_store.c: windows,
 * cutter, retention; logs_read.c: search).
 *
 * One LMDB environment per tenant per arrival window,
 * <data>/<tenant>/logs/<window start, unix seconds>/, with databases:
 *   blocks  u64be block id -> log block (logs_codec.c), zstd
 *   bmeta   u64be block id -> logs_bmeta + the block's service name;
 *           key "mark" -> u64: the highest WAL seq cut into the window (a
 *           cut commits blocks and mark together, then deletes the WAL
 *           records: after a crash between the two, records at or below
 *           the mark are only deleted; readers skip them in the WAL)
 *   svc     service\0severity-byte -> dupsort logs_svc_val (block id, time
 *           bounds of that block's records of that service and severity)
 *   trace   u64be block id -> the block's distinct trace ids, each as its
 *           last LOGS_TRACE_KEY bytes, sorted (a lookup binary-searches each
 *           block's table; written once per block, so the index never
 *           rewrites pages as a keyed B-tree of random ids would; a shared
 *           suffix only costs decoding a block, records are matched on the
 *           whole id)
 *   bloom   u64be block id -> token filter (logs_codec.h)
 * Blocks never mix services (a service's records are sorted by time in
 * them), so the svc index and a block's service are exact.
 *
 * Windows are reference-counted under logs_state.mu so that retention never
 * closes an environment under a reader.
 */
#ifndef STG_LOGS_INT_H
#define STG_LOGS_INT_H

#include "storage_int.h"

#define LOGS_MARK_KEY "mark"
#define LOGS_SVC_KEY_MAX 400

typedef struct logs_win {
    struct logs_win *next; /* newest window first */
    char *tenant;
    char *path;
    uint64_t window_ns;
    MDB_env *env;
    MDB_dbi db_blocks, db_bmeta, db_svc, db_trace, db_bloom;
    int refs;            /* under logs_state.mu */
    bool dropped;        /* removed by retention; deleted at refs == 0 */
    bool sealed;         /* mapped at its file size: reopened before writes */
    uint64_t next_block; /* cutter only */
    uint64_t mark;       /* cutter only */
    atomic_uint_least64_t blocks;
} logs_win;

typedef struct logs_state {
    pthread_mutex_t mu;
    logs_win *wins;
} logs_state;

/* Block metadata (bmeta value, followed by the service name). */
typedef struct logs_bmeta {
    uint64_t min_time;
    uint64_t max_time;
    uint32_t nrecs;
    uint32_t sev_mask;   /* bit s set: a record has severity s (0..24; > 24: bit 31) */
    uint64_t block_size; /* compressed bytes */
} logs_bmeta;

typedef struct logs_svc_val {
    uint8_t block_id[8]; /* big-endian, so dupsort orders by block */
    uint64_t min_time;
    uint64_t max_time;
} logs_svc_val;

static inline uint32_t logs_sev_bit(int32_t sev) {
    return sev >= 0 && sev <= 24 ? 1u << sev : 1u << 31;
}

#define LOGS_TRACE_KEY 5

/* A WAL record of STG_LOGS: a header (magic "SLLW", min and max record
 * time, severity bit mask, record count; little-endian) that lets a search
 * skip it without decoding, then a log block at zstd level 1. */
#define LOGS_WAL_MAGIC "SLLW"
#define LOGS_WAL_HDR 28
typedef struct logs_wal_hdr {
    uint64_t min_time, max_time;
    uint32_t sev_mask, nrecs;
} logs_wal_hdr;

/* Splits a logs WAL record into its header and block. 0 or SL_ECORRUPT. */
int logs_wal_parse(const uint8_t *v, size_t size, logs_wal_hdr *h, const uint8_t **block,
                   size_t *block_size);

/* logs_store.c */
/* Snapshot of the tenant's windows, newest first, each with a reference
 * taken. *out is malloc'd; release with logs_wins_release. */
int logs_wins_list(stg_store *s, const char *tenant, logs_win ***out, size_t *n);
void logs_wins_release(stg_store *s, logs_win **wins, size_t n);
/* The svc index key for (service, severity); returns its length. */
size_t logs_svc_key(sl_str service, int sev, uint8_t *buf);

#endif
