/*
 * The metrics engine's windows and cutter (plugged into the store through
 * stg_metrics_ops): one LMDB environment per tenant per ingest window under
 * <data>/<tenant>/metrics/<window start, unix s>/ (databases in metrics_int.h).
 *
 * The cutter takes a bounded slice of a tenant's metrics WAL records, groups
 * their samples by series (canonical labels), and per window in one write
 * transaction: resolves or creates series ids (with their postings), runs the
 * appender (out-of-order, duplicates, delta accumulation) against the series'
 * head, appends to its open Gorilla chunk (sealed at MS_CHUNK_SAMPLES), and
 * stores the head, exemplars, metadata and the window's cut mark. Then it
 * deletes the WAL records. Records at or below a window's mark were cut
 * before a crash and are only deleted (exactly once).
 *
 * A series' state carries across windows: a series new to a window starts
 * from its head in the newest other window that has it, so counters built
 * from deltas continue and out-of-order rules hold across window boundaries,
 * also after a restart (the heads are on disk).
 *
 * Threads: cut and retention run on the store's background thread (under
 * s->cut_mu); the window list and reference counts are guarded by the
 * module's mutex; readers use MDB_NOTLS read transactions from any thread.
 */
#include "metrics_int.h"

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MS_CUT_MAX_SAMPLES (1u << 20)    /* samples per pass */
#define MS_CUT_ARENA_MAX (1024ull << 20) /* memory for one pass */
#define MS_CUT_MAX_WINDOWS 16
#define MS_MIN_MAP (64ull << 20)

typedef struct ms_state {
    pthread_mutex_t mu;
    ms_window *wins; /* every tenant, newest window first */
    sl_metric *m_appended, *m_dup, *m_ooo, *m_series;
    ms_bcache *cache; /* decompressed blocks of compacted windows (NULL: none) */
} ms_state;

static ms_state *state(stg_store *s) {
    return s->sig[STG_METRICS];
}

static char info_mark[] = "mark", info_bounds[] = "bounds", info_next[] = "next";

/* --- windows ------------------------------------------------------------------ */

static void win_free(ms_window *w) {
    if (w == NULL) {
        return;
    }
    ms_bcache_purge(w->cache, w->cache_id);
    if (w->env != NULL) {
        mdb_env_close(w->env);
    }
    free(w->tenant);
    free(w->path);
    free(w);
}

static uint64_t win_map_size(stg_store *s) {
    uint64_t m = s->opt.map_size / 32;
    return m < MS_MIN_MAP ? MS_MIN_MAP : m;
}

/* Opens w->path's environment and databases and reads its info. */
static int win_env_open(stg_store *s, ms_window *w, bool create) {
    MDB_txn *txn = NULL;
    int rc;
    w->cache_id = ms_bcache_next_id();
    if ((rc = stg_env_open(w->path, create, 10, win_map_size(s), &w->env)) != 0 ||
        (rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, 0, &txn))) != 0) {
        goto fail;
    }
    struct {
        const char *name;
        MDB_dbi *dbi;
        unsigned flags;
    } dbs[] = {{"series", &w->db_series, MDB_DUPSORT},
               {"sid", &w->db_sid, 0},
               {"post", &w->db_post, 0},
               {"chunks", &w->db_chunks, 0},
               {"head", &w->db_head, 0},
               {"meta", &w->db_meta, 0},
               {"ex", &w->db_ex, 0},
               {"info", &w->db_info, 0},
               {"blocks", &w->db_blocks, 0}};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        if ((rc = stg_lmdb_err(
                 mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbs[i].dbi))) != 0) {
            goto fail;
        }
    }
    MDB_val k = {4, info_mark}, v;
    if (mdb_get(txn, w->db_info, &k, &v) == 0 && v.mv_size == 8) {
        memcpy(&w->mark, v.mv_data, 8);
    }
    k = (MDB_val){4, info_next};
    if (mdb_get(txn, w->db_info, &k, &v) == 0 && v.mv_size == 4) {
        memcpy(&w->next_id, v.mv_data, 4);
    }
    k = (MDB_val){6, info_bounds};
    if (mdb_get(txn, w->db_info, &k, &v) == 0 && v.mv_size == 16) {
        int64_t b[2];
        memcpy(b, v.mv_data, 16);
        atomic_store(&w->min_t, b[0]);
        atomic_store(&w->max_t, b[1]);
    }
    w->compacted = ms_info_compacted(txn, w->db_info);
    const uint8_t *pairs;
    size_t npairs;
    w->hashes = w->compacted && ms_info_hashes(txn, w->db_info, &pairs, &npairs);
    rc = stg_lmdb_err(mdb_txn_commit(txn));
    txn = NULL;
    if (rc == 0) {
        return 0;
    }
fail:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (w->env != NULL) {
        mdb_env_close(w->env);
        w->env = NULL;
    }
    return rc;
}

static int win_open(stg_store *s, const char *tenant, uint64_t start_ns, bool create,
                    ms_window **out) {
    int rc = 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/metrics/%llu", s->data_dir, tenant,
             (unsigned long long)(start_ns / 1000000000ull));
    ms_window *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return SL_ENOMEM;
    }
    w->tenant = strdup(tenant);
    w->path = strdup(path);
    w->window_start_ns = start_ns;
    w->cache = state(s)->cache;
    w->next_id = 1;
    atomic_store(&w->min_t, INT64_MAX);
    atomic_store(&w->max_t, INT64_MIN);
    if (w->tenant == NULL || w->path == NULL) {
        rc = SL_ENOMEM;
    } else {
        rc = win_env_open(s, w, create);
    }
    if (rc != 0) {
        SL_LOG_E("storage", "cannot open metrics window %s: %s", path, sl_strerror(rc));
        win_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* Inserts w keeping the list newest first. Caller holds st->mu. */
static void win_insert(ms_state *st, ms_window *w) {
    ms_window **pp = &st->wins;
    while (*pp != NULL && (*pp)->window_start_ns > w->window_start_ns) {
        pp = &(*pp)->next;
    }
    w->next = *pp;
    *pp = w;
}

/* The window (tenant, start), opened or created, with a reference taken. */
static int win_get(stg_store *s, const char *tenant, uint64_t start_ns, ms_window **out) {
    ms_state *st = state(s);
    pthread_mutex_lock(&st->mu);
    for (ms_window *w = st->wins; w != NULL; w = w->next) {
        if (w->window_start_ns == start_ns && strcmp(w->tenant, tenant) == 0) {
            w->refs++;
            pthread_mutex_unlock(&st->mu);
            *out = w;
            return 0;
        }
    }
    ms_window *w = NULL;
    int rc = win_open(s, tenant, start_ns, true, &w);
    if (rc == 0) {
        w->refs = 1;
        win_insert(st, w);
        *out = w;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void win_release(stg_store *s, ms_window *w) {
    ms_state *st = state(s);
    pthread_mutex_lock(&st->mu);
    bool drop = --w->refs == 0 && w->dropped;
    pthread_mutex_unlock(&st->mu);
    if (drop) {
        char *path = strdup(w->path);
        win_free(w);
        if (path != NULL) {
            stg_rmtree(path);
            free(path);
        }
    }
}

int ms_windows_list(stg_store *s, const char *tenant, ms_window ***out, size_t *n) {
    ms_state *st = state(s);
    *out = NULL;
    *n = 0;
    if (st == NULL) {
        return 0;
    }
    pthread_mutex_lock(&st->mu);
    size_t count = 0;
    for (ms_window *w = st->wins; w != NULL; w = w->next) {
        count += tenant == NULL || strcmp(w->tenant, tenant) == 0;
    }
    ms_window **arr = malloc((count ? count : 1) * sizeof(*arr));
    if (arr != NULL) {
        size_t i = 0;
        for (ms_window *w = st->wins; w != NULL; w = w->next) {
            if (tenant == NULL || strcmp(w->tenant, tenant) == 0) {
                w->refs++;
                arr[i++] = w;
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (arr == NULL) {
        return SL_ENOMEM;
    }
    *out = arr;
    *n = count;
    return 0;
}

void ms_windows_release(stg_store *s, ms_window **w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        win_release(s, w[i]);
    }
    free(w);
}

/* Whether series id of compacted window w has these labels. */
static bool compacted_labels_are(ms_window *w, MDB_txn *txn, uint32_t id, ms_cblock *cb,
                                 const uint8_t *labels, size_t size) {
    ms_csection sec;
    return ms_cblock_find(w, txn, id, cb, &sec) == 0 && sec.labels_size == size &&
           memcmp(sec.labels, labels, size) == 0;
}

/* ms_series_find in a window whose index is info "hashes". */
static int series_find_hashes(ms_window *w, MDB_txn *txn, const uint8_t *labels, size_t size,
                              uint32_t *id) {
    const uint8_t *pairs;
    size_t n;
    if (!ms_info_hashes(txn, w->db_info, &pairs, &n)) {
        return SL_ESTORAGE;
    }
    uint32_t h = (uint32_t)(ms_hash(labels, size) >> 32);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sl_get_be32(pairs + mid * 8) < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    ms_cblock cb = {0};
    int rc = SL_ENOTFOUND;
    for (; lo < n && sl_get_be32(pairs + lo * 8) == h; lo++) {
        uint32_t cand = sl_get_be32(pairs + lo * 8 + 4);
        if (compacted_labels_are(w, txn, cand, &cb, labels, size)) {
            *id = cand;
            rc = 0;
            break;
        }
    }
    ms_cblock_free(&cb);
    return rc;
}

int ms_series_find(ms_window *w, MDB_txn *txn, const uint8_t *labels, size_t size, uint32_t *id) {
    if (w->hashes) {
        return series_find_hashes(w, txn, labels, size, id);
    }
    uint8_t hk[8];
    stg_be64(hk, ms_hash(labels, size));
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, w->db_series, &cur);
    if (rc != 0) {
        return stg_lmdb_err(rc);
    }
    MDB_val k = {8, hk}, v;
    ms_cblock cb = {0};
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    rc = SL_ENOTFOUND;
    while (mrc == 0) {
        if (v.mv_size == 4) {
            uint8_t ik[4];
            memcpy(ik, v.mv_data, 4);
            MDB_val sk = {4, ik}, sv;
            if ((mdb_get(txn, w->db_sid, &sk, &sv) == 0 && sv.mv_size == size &&
                 memcmp(sv.mv_data, labels, size) == 0) ||
                (w->compacted &&
                 compacted_labels_are(w, txn, sl_get_be32(ik), &cb, labels, size))) {
                *id = sl_get_be32(ik);
                rc = 0;
                break;
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    ms_cblock_free(&cb);
    return rc;
}

/* --- module open/close/retention/stats ------------------------------------- */

static int metrics_open(stg_store *s) {
    ms_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->m_appended = sl_counter("sightline_metrics_samples_total", "result=\"appended\"",
                                "Metric samples cut into storage, by outcome");
    st->m_dup = sl_counter("sightline_metrics_samples_total", "result=\"duplicate\"",
                           "Metric samples cut into storage, by outcome");
    st->m_ooo = sl_counter("sightline_metrics_samples_total", "result=\"out_of_order\"",
                           "Metric samples cut into storage, by outcome");
    st->m_series = sl_counter("sightline_metrics_series_created_total", "",
                              "Series created in metrics windows");
    st->cache = ms_bcache_new(s->opt.metrics_cache_bytes);
    s->sig[STG_METRICS] = st;
    int rc = 0;
    DIR *top = opendir(s->data_dir);
    if (top == NULL) {
        return -errno;
    }
    struct dirent *te;
    while (rc == 0 && (te = readdir(top)) != NULL) {
        if (te->d_name[0] == '.' || !stg_tenant_valid(sl_str_c(te->d_name))) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/metrics", s->data_dir, te->d_name);
        DIR *d = opendir(path);
        if (d == NULL) {
            continue;
        }
        ms_compact_recover(path);
        struct dirent *we;
        while (rc == 0 && (we = readdir(d)) != NULL) {
            uint64_t secs;
            char file[4400];
            struct stat sb;
            snprintf(file, sizeof(file), "%s/%s/data.mdb", path, we->d_name);
            if (sl_parse_u64(sl_str_c(we->d_name), &secs) != 0 || stat(file, &sb) != 0) {
                continue;
            }
            ms_window *w = NULL;
            rc = win_open(s, te->d_name, secs * 1000000000ull, false, &w);
            if (rc == 0) {
                if (w->mark > s->max_mark) {
                    s->max_mark = w->mark;
                }
                pthread_mutex_lock(&st->mu);
                win_insert(st, w);
                pthread_mutex_unlock(&st->mu);
            }
        }
        closedir(d);
    }
    closedir(top);
    return rc;
}

static void metrics_close(stg_store *s) {
    ms_state *st = state(s);
    if (st == NULL) {
        return;
    }
    ms_window *w = st->wins;
    while (w != NULL) {
        ms_window *n = w->next;
        win_free(w);
        w = n;
    }
    ms_bcache_free(st->cache);
    pthread_mutex_destroy(&st->mu);
    free(st);
    s->sig[STG_METRICS] = NULL;
}

/* The window of the tenant's oldest metrics WAL record (UINT64_MAX: none). */
static uint64_t wal_oldest_metrics(stg_store *s, const char *tenant) {
    stg_wal *wal;
    return stg_wal_get(s, tenant, false, &wal) != 0 ? UINT64_MAX
                                                    : stg_wal_oldest_window_of(wal, STG_METRICS);
}

/* Replaces w's environment by its compacted copy (<path>.compact) when
 * nobody else holds the window. Caller holds one reference. */
static int win_swap(stg_store *s, ms_window *w) {
    ms_state *st = state(s);
    char tmp[4200], old[4200];
    snprintf(tmp, sizeof(tmp), "%s.compact", w->path);
    snprintf(old, sizeof(old), "%s.old", w->path);
    pthread_mutex_lock(&st->mu);
    if (w->refs != 1 || w->dropped) {
        pthread_mutex_unlock(&st->mu);
        return SL_EFULL; /* in use: next pass */
    }
    mdb_env_close(w->env);
    w->env = NULL;
    ms_bcache_purge(w->cache, w->cache_id);
    int rc = 0;
    if (rename(w->path, old) != 0 || rename(tmp, w->path) != 0) {
        rc = -errno;
        rename(old, w->path);
    }
    int orc = win_env_open(s, w, false);
    pthread_mutex_unlock(&st->mu);
    if (rc == 0 && orc == 0) {
        stg_rmtree(old);
    }
    return rc != 0 ? rc : orc;
}

/* Compacts at most one ended window per pass (metrics_compact.c). */
static void compact_pass(stg_store *s, uint64_t now_ns) {
    ms_window **ws;
    size_t n;
    if (ms_windows_list(s, NULL, &ws, &n) != 0) {
        return;
    }
    uint64_t settle = 2ull * s->opt.cut_interval_ms * 1000000u + 10000000000ull;
    for (size_t i = 0; i < n; i++) {
        ms_window *w = ws[i];
        if (w->compacted || w->window_start_ns + s->opt.partition_ns + settle > now_ns ||
            wal_oldest_metrics(s, w->tenant) <= w->window_start_ns) {
            continue;
        }
        /* Only our reference may remain for the swap. */
        for (size_t j = 0; j < n; j++) {
            if (j != i) {
                win_release(s, ws[j]);
            }
        }
        uint64_t t0 = sl_mono_nano();
        int rc = ms_compact_window(s, w, win_swap);
        if (rc == 0) {
            SL_LOG_I("storage", "%s: compacted in %.1f s", w->path,
                     (double)(sl_mono_nano() - t0) / 1e9);
        } else if (rc != SL_EFULL) {
            SL_LOG_W("storage", "%s: compaction failed: %s", w->path, sl_strerror(rc));
        }
        win_release(s, w);
        free(ws);
        return;
    }
    ms_windows_release(s, ws, n);
}

static int metrics_retention(stg_store *s, uint64_t now_ns) {
    ms_state *st = state(s);
    if (st == NULL) {
        return 0;
    }
    compact_pass(s, now_ns);
    ms_window *victims = NULL;
    pthread_mutex_lock(&st->mu);
    ms_window **pp = &st->wins;
    while (*pp != NULL) {
        ms_window *w = *pp;
        uint64_t cutoff = stg_retention_cutoff(s, w->tenant, STG_METRICS, now_ns);
        if (cutoff != 0 && w->window_start_ns + s->opt.partition_ns <= cutoff) {
            *pp = w->next;
            w->dropped = true;
            w->refs++;
            w->next = victims;
            victims = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&st->mu);
    while (victims != NULL) {
        ms_window *w = victims;
        victims = w->next;
        SL_LOG_I("storage", "retention drops %s", w->path);
        win_release(s, w);
    }
    return 0;
}

static void metrics_stats(stg_store *s, stg_stats *out) {
    ms_window **ws;
    size_t n;
    if (ms_windows_list(s, NULL, &ws, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char file[4200];
        struct stat sb;
        snprintf(file, sizeof(file), "%s/data.mdb", ws[i]->path);
        if (stat(file, &sb) == 0) {
            out->bytes_on_disk += (uint64_t)sb.st_blocks * 512u;
        }
        out->partitions++;
    }
    ms_windows_release(s, ws, n);
}

/* --- the cutter ---------------------------------------------------------------- */

/* Adds a record's series to the map. */
static int cut_add_record(ms_smap *m, const ms_record *r) {
    for (size_t i = 0; i < r->nseries; i++) {
        const ms_rec_series *rs = &r->series[i];
        ms_sitem *c;
        if (ms_smap_get(m, rs->labels, rs->labels_size, &c) != 0 ||
            sl_array_grow(&c->samples, &c->cap, c->n + rs->nsamples, sizeof(stg_sample)) != 0) {
            return SL_ENOMEM;
        }
        c->kind = rs->kind;
        memcpy(c->samples + c->n, rs->samples, rs->nsamples * sizeof(stg_sample));
        c->n += rs->nsamples;
        if (rs->nexemplars > 0) {
            if (sl_array_grow(&c->ex, &c->excap, c->nex + 1, sizeof(*c->ex)) != 0) {
                return SL_ENOMEM;
            }
            c->ex[c->nex++] = rs;
        }
    }
    return 0;
}

/* The head a series new to w starts from: its head in the newest other
 * window of the tenant that has it (zero when none). */
static int carry_head(stg_store *s, ms_window *w, const ms_sitem *c, ms_head *h) {
    memset(h, 0, sizeof(*h));
    ms_window **ws;
    size_t n;
    int rc = ms_windows_list(s, w->tenant, &ws, &n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (ws[i] == w) {
            continue;
        }
        MDB_txn *txn;
        if ((rc = stg_lmdb_err(mdb_txn_begin(ws[i]->env, NULL, MDB_RDONLY, &txn))) != 0) {
            break;
        }
        uint32_t id;
        int frc = ms_series_find(ws[i], txn, c->labels, c->labels_size, &id);
        if (frc == 0) {
            uint8_t ik[4];
            sl_put_be32(ik, id);
            MDB_val k = {4, ik}, v;
            ms_cblock cb = {0};
            ms_csection sec;
            if (mdb_get(txn, ws[i]->db_head, &k, &v) == 0 && v.mv_size == sizeof(*h)) {
                memcpy(h, v.mv_data, sizeof(*h));
            } else if (ws[i]->compacted && ms_cblock_find(ws[i], txn, id, &cb, &sec) == 0) {
                *h = sec.head;
            }
            ms_cblock_free(&cb);
            h->chunk = 0;
            h->nopen = 0;
            h->tail = 0;
        } else if (frc != SL_ENOTFOUND) {
            rc = frc;
        }
        mdb_txn_abort(txn);
        if (frc == 0) {
            break;
        }
    }
    ms_windows_release(s, ws, n);
    return rc;
}

/* Postings additions of a pass: label pair key -> new ids (ascending, since
 * ids are handed out in order). */
typedef struct post_add {
    uint8_t key[STG_MAX_KEY];
    size_t klen;
    uint32_t *ids;
    size_t n, cap;
} post_add;

static size_t post_key(sl_str name, sl_str value, uint8_t *buf) {
    size_t n = name.len < STG_MAX_KEY - 1 ? name.len : STG_MAX_KEY - 1;
    memcpy(buf, name.ptr, n);
    buf[n++] = 0;
    size_t vn = value.len < STG_MAX_KEY - n ? value.len : STG_MAX_KEY - n;
    memcpy(buf + n, value.ptr, vn);
    return n + vn;
}

static int cmp_post(const void *a, const void *b) {
    const post_add *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Writes the postings of the series created in this pass: created[i] got the
 * id ids[i] (both in creation order, so ids ascend). */
static int put_postings(ms_window *w, MDB_txn *txn, sl_arena *a, const uint32_t *ids,
                        const ms_sitem *const *created, size_t ncreated) {
    post_add *adds = NULL;
    size_t nadds = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < ncreated && rc == 0; i++) {
        stg_label *l;
        size_t nl;
        if ((rc = ms_labels_decode(created[i]->labels, created[i]->labels_size, a, &l, &nl)) != 0) {
            break;
        }
        for (size_t j = 0; j < nl && rc == 0; j++) {
            uint8_t key[STG_MAX_KEY];
            size_t klen = post_key(l[j].name, l[j].value, key);
            /* Linear probing over a sorted-later array would be slow for big
             * passes: look up by a small hash index instead. */
            post_add *p = NULL;
            for (size_t q = nadds; q > 0 && q + 64 > nadds; q--) {
                if (adds[q - 1].klen == klen && memcmp(adds[q - 1].key, key, klen) == 0) {
                    p = &adds[q - 1];
                    break;
                }
            }
            if (p == NULL) {
                if (sl_array_grow(&adds, &cap, nadds + 1, sizeof(*adds)) != 0) {
                    rc = SL_ENOMEM;
                    break;
                }
                p = &adds[nadds++];
                memset(p, 0, sizeof(*p));
                memcpy(p->key, key, klen);
                p->klen = klen;
            }
            if (sl_array_grow(&p->ids, &p->cap, p->n + 1, sizeof(uint32_t)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            p->ids[p->n++] = ids[i];
        }
    }
    if (rc == 0 && nadds > 1) {
        qsort(adds, nadds, sizeof(*adds), cmp_post);
    }
    /* Entries with equal keys (not merged by the recent-window lookup above)
     * are adjacent now: merge them while writing. */
    sl_buf buf;
    sl_buf_init(&buf, 0);
    for (size_t i = 0; i < nadds && rc == 0;) {
        size_t j = i + 1;
        while (j < nadds && cmp_post(&adds[i], &adds[j]) == 0) {
            j++;
        }
        MDB_val k = {adds[i].klen, adds[i].key}, v;
        uint32_t *old = NULL;
        size_t nold = 0, total = 0;
        if (mdb_get(txn, w->db_post, &k, &v) == 0) {
            if (ms_postings_count(v.mv_data, v.mv_size, &nold) != 0) {
                nold = 0;
            } else if ((old = malloc((nold ? nold : 1) * sizeof(uint32_t))) == NULL) {
                rc = SL_ENOMEM;
                break;
            } else if (ms_postings_decode(v.mv_data, v.mv_size, old, nold, &nold) != 0) {
                nold = 0;
            }
        }
        for (size_t q = i; q < j; q++) {
            total += adds[q].n;
        }
        uint32_t *all = malloc((nold + total) * sizeof(uint32_t));
        if (all == NULL) {
            free(old);
            rc = SL_ENOMEM;
            break;
        }
        size_t na = 0;
        if (nold > 0) {
            memcpy(all, old, nold * sizeof(uint32_t));
        }
        na = nold;
        for (size_t q = i; q < j; q++) {
            memcpy(all + na, adds[q].ids, adds[q].n * sizeof(uint32_t));
            na += adds[q].n;
        }
        /* Ids are new and larger than any stored one; merged groups may
         * interleave, so sort what was added. */
        for (size_t x = nold + 1; x < na; x++) {
            uint32_t y = all[x];
            size_t z = x;
            while (z > nold && all[z - 1] > y) {
                all[z] = all[z - 1];
                z--;
            }
            all[z] = y;
        }
        buf.len = 0;
        rc = ms_postings_encode(all, na, &buf);
        if (rc == 0) {
            v = (MDB_val){buf.len, buf.data};
            rc = stg_lmdb_err(mdb_put(txn, w->db_post, &k, &v, 0));
        }
        free(all);
        free(old);
        i = j;
    }
    sl_buf_free(&buf);
    for (size_t i = 0; i < nadds; i++) {
        free(adds[i].ids);
    }
    free(adds);
    return rc;
}

/* Appends samples to series id's chunks starting from head h. The open
 * chunk carries the encoder's state (ms_chunk_encode_open), so new samples
 * are appended to its bits without decoding it; an open chunk without that
 * trailer (older builds) is decoded and encoded again once. */
static int append_chunks(ms_window *w, MDB_txn *txn, uint32_t id, ms_head *h, const stg_sample *add,
                         size_t nadd, sl_buf *buf) {
    uint8_t ck[8];
    sl_put_be32(ck, id);
    int rc = 0;
    if (h->nopen > 0 && h->tail == MS_HEAD_TAIL && nadd > 0) {
        sl_put_be32(ck + 4, h->chunk);
        MDB_val k = {8, ck}, v;
        size_t take = MS_CHUNK_SAMPLES - h->nopen < nadd ? MS_CHUNK_SAMPLES - h->nopen : nadd;
        bool open = h->nopen + take < MS_CHUNK_SAMPLES;
        size_t n;
        int64_t lo, hi;
        buf->len = 0;
        if (mdb_get(txn, w->db_chunks, &k, &v) == 0 &&
            ms_chunk_info(v.mv_data, v.mv_size, &n, &lo, &hi) == 0 && n == h->nopen &&
            ms_chunk_append(v.mv_data, v.mv_size, add, take, open, buf) == 0) {
            v = (MDB_val){buf->len, buf->data};
            if ((rc = stg_lmdb_err(mdb_put(txn, w->db_chunks, &k, &v, 0))) != 0) {
                return rc;
            }
            if (open) {
                h->nopen += (uint32_t)take;
            } else {
                h->chunk++;
                h->nopen = 0;
                h->tail = 0;
            }
            add += take;
            nadd -= take;
            if (nadd == 0) {
                return 0;
            }
        }
    }
    size_t total = h->nopen + nadd;
    stg_sample *all = malloc((total ? total : 1) * sizeof(*all));
    if (all == NULL) {
        return SL_ENOMEM;
    }
    size_t have = 0;
    if (h->nopen > 0) {
        sl_put_be32(ck + 4, h->chunk);
        MDB_val k = {8, ck}, v;
        if (mdb_get(txn, w->db_chunks, &k, &v) != 0 ||
            ms_chunk_decode(v.mv_data, v.mv_size, all, h->nopen, &have) != 0) {
            have = 0; /* a lost open chunk restarts empty rather than blocking the series */
        }
    }
    memcpy(all + have, add, nadd * sizeof(*add));
    total = have + nadd;
    size_t off = 0;
    while (rc == 0 && off < total) {
        size_t take = total - off > MS_CHUNK_SAMPLES ? MS_CHUNK_SAMPLES : total - off;
        bool open = take < MS_CHUNK_SAMPLES;
        buf->len = 0;
        if ((rc = (open ? ms_chunk_encode_open : ms_chunk_encode)(all + off, take, buf)) != 0) {
            break;
        }
        sl_put_be32(ck + 4, h->chunk);
        MDB_val k = {8, ck}, v = {buf->len, buf->data};
        if ((rc = stg_lmdb_err(mdb_put(txn, w->db_chunks, &k, &v, 0))) != 0) {
            break;
        }
        off += take;
        if (!open) {
            h->chunk++;
            h->nopen = 0;
            h->tail = 0;
        } else {
            h->nopen = (uint32_t)take;
            h->tail = MS_HEAD_TAIL;
        }
    }
    free(all);
    return rc;
}

static int put_exemplars(ms_window *w, MDB_txn *txn, uint32_t id, const ms_sitem *c, sl_buf *buf) {
    int rc = 0;
    for (size_t i = 0; i < c->nex && rc == 0; i++) {
        const ms_rec_series *rs = c->ex[i];
        for (size_t j = 0; j < rs->nexemplars && rc == 0; j++) {
            const stg_exemplar *e = &rs->exemplars[j];
            uint8_t key[12];
            sl_put_be32(key, id);
            sl_put_be64(key + 4, (uint64_t)e->t_ms ^ (1ull << 63));
            buf->len = 0;
            if ((rc = sl_buf_append(buf, &e->v, 8)) != 0 ||
                (rc = sl_buf_append(buf, e->trace_id, 16)) != 0 ||
                (rc = sl_buf_append(buf, e->span_id, 8)) != 0 ||
                (rc = sl_buf_append(buf, rs->ex_labels[j], rs->ex_labels_size[j])) != 0) {
                break;
            }
            MDB_val k = {12, key}, v = {buf->len, buf->data};
            rc = stg_lmdb_err(mdb_put(txn, w->db_ex, &k, &v, 0));
        }
    }
    return rc;
}

static int put_meta(ms_window *w, MDB_txn *txn, const stg_metric_meta *m, sl_buf *buf) {
    if (m->metric.len == 0 || m->metric.len > STG_MAX_KEY) {
        return 0;
    }
    buf->len = 0;
    int rc = sl_buf_append(buf, m->type.ptr, m->type.len);
    if (rc == 0 && (rc = sl_buf_putc(buf, 0)) == 0 &&
        (rc = sl_buf_append(buf, m->unit.ptr, m->unit.len)) == 0 &&
        (rc = sl_buf_putc(buf, 0)) == 0) {
        rc = sl_buf_append(buf, m->help.ptr, m->help.len);
    }
    if (rc != 0) {
        return rc;
    }
    MDB_val k = {m->metric.len, (void *)(uintptr_t)m->metric.ptr}, v = {buf->len, buf->data};
    return stg_lmdb_err(mdb_put(txn, w->db_meta, &k, &v, 0));
}

/* Cuts the records of one window (decoded, in WAL order) into w. */
static int cut_window(stg_store *s, ms_window *w, ms_record *recs, size_t nrecs, uint64_t mark,
                      sl_arena *a) {
    ms_state *st = state(s);
    int rc = 0;
    MDB_txn *txn = NULL;
    ms_smap map = {0};
    sl_buf buf;
    sl_buf_init(&buf, 0);
    uint32_t *ids = NULL, *created_ids = NULL;
    const ms_sitem **created = NULL;
    size_t ncreated = 0;
    stg_sample *out = NULL;
    size_t outcap = 0;
    ms_append_stats stats = {0};
    int64_t mint = INT64_MAX, maxt = INT64_MIN;

    for (size_t i = 0; i < nrecs && rc == 0; i++) {
        rc = cut_add_record(&map, &recs[i]);
    }
    if (rc != 0) {
        goto out;
    }
    ids = malloc((map.n ? map.n : 1) * sizeof(*ids));
    created = malloc((map.n ? map.n : 1) * sizeof(*created));
    created_ids = malloc((map.n ? map.n : 1) * sizeof(*created_ids));
    if (ids == NULL || created == NULL || created_ids == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    /* Heads of series new to this window come from other windows: look them
     * up before the write transaction (they need their own read ones). */
    ms_head *heads = map.n > 0 ? sl_arena_calloc(a, map.n, sizeof(*heads)) : NULL;
    bool *isnew = map.n > 0 ? sl_arena_calloc(a, map.n, sizeof(bool)) : NULL;
    if (map.n > 0 && (heads == NULL || isnew == NULL)) {
        rc = SL_ENOMEM;
        goto out;
    }
    if ((rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn))) != 0) {
        goto out;
    }
    for (size_t i = 0; i < map.n && rc == 0; i++) {
        ms_sitem *c = &map.items[i];
        int frc = ms_series_find(w, txn, c->labels, c->labels_size, &ids[i]);
        if (frc == SL_ENOTFOUND) {
            isnew[i] = true;
        } else if (frc != 0) {
            rc = frc;
        }
    }
    mdb_txn_abort(txn);
    txn = NULL;
    for (size_t i = 0; i < map.n && rc == 0; i++) {
        if (isnew[i]) {
            rc = carry_head(s, w, &map.items[i], &heads[i]);
        }
    }
    if (rc != 0) {
        goto out;
    }

    if ((rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, 0, &txn))) != 0) {
        goto out;
    }
    uint32_t next_id = w->next_id;
    for (size_t i = 0; i < map.n && rc == 0; i++) {
        ms_sitem *c = &map.items[i];
        uint8_t ik[4];
        if (isnew[i]) {
            ids[i] = next_id++;
            sl_put_be32(ik, ids[i]);
            uint8_t hk[8];
            stg_be64(hk, c->hash);
            MDB_val k = {8, hk}, v = {4, ik};
            if ((rc = stg_lmdb_err(mdb_put(txn, w->db_series, &k, &v, 0))) != 0) {
                break;
            }
            k = (MDB_val){4, ik};
            v = (MDB_val){c->labels_size, (void *)(uintptr_t)c->labels};
            if ((rc = stg_lmdb_err(mdb_put(txn, w->db_sid, &k, &v, MDB_APPEND))) != 0) {
                break;
            }
            created_ids[ncreated] = ids[i];
            created[ncreated++] = c;
        } else {
            sl_put_be32(ik, ids[i]);
            MDB_val k = {4, ik}, v;
            if (mdb_get(txn, w->db_head, &k, &v) == 0 && v.mv_size == sizeof(ms_head)) {
                memcpy(&heads[i], v.mv_data, sizeof(ms_head));
            }
        }
        if (sl_array_grow(&out, &outcap, c->n, sizeof(*out)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        size_t nout = 0;
        ms_apply(&heads[i], c->kind, c->samples, c->n, out, &nout, &stats);
        if (nout > 0) {
            if ((rc = append_chunks(w, txn, ids[i], &heads[i], out, nout, &buf)) != 0) {
                break;
            }
            mint = out[0].t_ms < mint ? out[0].t_ms : mint;
            maxt = out[nout - 1].t_ms > maxt ? out[nout - 1].t_ms : maxt;
        }
        MDB_val k = {4, ik}, v = {sizeof(ms_head), &heads[i]};
        if ((rc = stg_lmdb_err(mdb_put(txn, w->db_head, &k, &v, 0))) != 0 ||
            (rc = put_exemplars(w, txn, ids[i], c, &buf)) != 0) {
            break;
        }
    }
    if (rc == 0) {
        rc = put_postings(w, txn, a, created_ids, created, ncreated);
    }
    for (size_t i = 0; i < nrecs && rc == 0; i++) {
        for (size_t j = 0; j < recs[i].nmeta && rc == 0; j++) {
            rc = put_meta(w, txn, &recs[i].meta[j], &buf);
        }
    }
    if (rc != 0) {
        goto out;
    }
    int64_t b[2] = {atomic_load(&w->min_t), atomic_load(&w->max_t)};
    b[0] = mint < b[0] ? mint : b[0];
    b[1] = maxt > b[1] ? maxt : b[1];
    MDB_val k = {4, info_mark}, v = {8, &mark};
    if ((rc = stg_lmdb_err(mdb_put(txn, w->db_info, &k, &v, 0))) != 0) {
        goto out;
    }
    k = (MDB_val){4, info_next};
    v = (MDB_val){4, &next_id};
    if ((rc = stg_lmdb_err(mdb_put(txn, w->db_info, &k, &v, 0))) != 0) {
        goto out;
    }
    k = (MDB_val){6, info_bounds};
    v = (MDB_val){16, b};
    if ((rc = stg_lmdb_err(mdb_put(txn, w->db_info, &k, &v, 0))) != 0) {
        goto out;
    }
    rc = stg_lmdb_err(mdb_txn_commit(txn));
    txn = NULL;
    if (rc != 0) {
        goto out;
    }
    w->mark = mark;
    w->next_id = next_id;
    atomic_store(&w->min_t, b[0]);
    atomic_store(&w->max_t, b[1]);
    sl_metric_add(st->m_appended, stats.appended);
    sl_metric_add(st->m_dup, stats.duplicates);
    sl_metric_add(st->m_ooo, stats.out_of_order);
    sl_metric_add(st->m_series, ncreated);
out:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        SL_LOG_E("storage", "%s: metrics cut failed: %s", w->path, sl_strerror(rc));
    }
    free(out);
    free(ids);
    free(created);
    free(created_ids);
    sl_buf_free(&buf);
    ms_smap_free(&map);
    return rc;
}

typedef struct cut_group {
    uint64_t window;
    ms_window *w; /* NULL: past retention, records are only deleted */
    uint64_t max_seq;
    ms_record *recs;
    size_t n, cap;
} cut_group;

static int metrics_cut(stg_store *s, stg_wal *wal) {
    int rc = 0;
    sl_arena a;
    sl_arena_init(&a, MS_CUT_ARENA_MAX);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    cut_group groups[MS_CUT_MAX_WINDOWS];
    size_t ngroups = 0, nsamples = 0, nrecords = 0;
    uint8_t last_key[STG_WAL_KEY];
    uint64_t rec_bytes = 0, now = sl_now_unix_nano();
    uint64_t cutoff = stg_retention_cutoff(s, wal->tenant, STG_METRICS, now);
    MDB_dbi dbi = wal->dbs[STG_METRICS];

    /* While txn is open, wal->resize is held shared (stg_wal_txn_begin). */
    if ((rc = stg_lmdb_err(stg_wal_txn_begin(wal, MDB_RDONLY, &txn))) != 0 ||
        (rc = stg_lmdb_err(mdb_cursor_open(txn, dbi, &cur))) != 0) {
        goto out;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && nsamples < MS_CUT_MAX_SAMPLES) {
        if (k.mv_size != STG_WAL_KEY) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        uint64_t window = sl_get_be64(k.mv_data), seq = sl_get_be64((uint8_t *)k.mv_data + 8);
        cut_group *g = NULL;
        for (size_t i = 0; i < ngroups; i++) {
            if (groups[i].window == window) {
                g = &groups[i];
            }
        }
        if (g == NULL) {
            if (ngroups == MS_CUT_MAX_WINDOWS) {
                break;
            }
            g = &groups[ngroups++];
            memset(g, 0, sizeof(*g));
            g->window = window;
            if (window + s->opt.partition_ns > cutoff &&
                (rc = win_get(s, wal->tenant, window, &g->w)) != 0) {
                ngroups--;
                goto out;
            }
        }
        if (g->w != NULL && seq > g->w->mark) {
            ms_record r;
            int prc = ms_record_decode(v.mv_data, v.mv_size, &a, &r);
            if (prc == SL_ENOMEM) {
                if (nrecords == 0) {
                    rc = prc;
                    goto out;
                }
                break;
            }
            if (prc != 0) {
                SL_LOG_E("storage", "%s: dropping unreadable metrics WAL record %llu: %s",
                         wal->path, (unsigned long long)seq, sl_strerror(prc));
            } else {
                if (sl_array_grow(&g->recs, &g->cap, g->n + 1, sizeof(*g->recs)) != 0) {
                    rc = SL_ENOMEM;
                    goto out;
                }
                g->recs[g->n++] = r;
                for (size_t i = 0; i < r.nseries; i++) {
                    nsamples += r.series[i].nsamples;
                }
            }
            g->max_seq = seq;
        }
        memcpy(last_key, k.mv_data, STG_WAL_KEY);
        rec_bytes += v.mv_size;
        nrecords++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
        goto out;
    }
    /* Records stay readable in the WAL until deleted below; the arena holds
     * decoded copies of the samples, but labels point into the map: keep the
     * read transaction open while cutting. */
    if (nrecords == 0) {
        goto out;
    }
    for (size_t i = 0; i < ngroups; i++) {
        cut_group *g = &groups[i];
        if (g->w != NULL && g->max_seq > g->w->mark &&
            (rc = cut_window(s, g->w, g->recs, g->n, g->max_seq, &a)) == SL_EMAPFULL) {
            /* As for logs and traces: grow the full map while the window is
             * ours alone, then retry once. */
            ms_state *st = state(s);
            pthread_mutex_lock(&st->mu);
            int grc = g->w->refs == 1 ? stg_env_grow(g->w->env, g->w->path) : SL_EMAPFULL;
            pthread_mutex_unlock(&st->mu);
            rc = grc == 0 ? cut_window(s, g->w, g->recs, g->n, g->max_seq, &a) : grc;
        }
        if (rc != 0) {
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    stg_wal_txn_done(wal);
    txn = NULL;

    rc = stg_lmdb_err(stg_wal_trim(s, wal, STG_METRICS, last_key, nrecords, rec_bytes));
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(wal);
    }
    for (size_t i = 0; i < ngroups; i++) {
        free(groups[i].recs);
        if (groups[i].w != NULL) {
            win_release(s, groups[i].w);
        }
    }
    sl_arena_free(&a);
    return rc;
}

const stg_signal_ops stg_metrics_ops = {.name = "metrics",
                                        .open = metrics_open,
                                        .close = metrics_close,
                                        .cut = metrics_cut,
                                        .retention = metrics_retention,
                                        .stats = metrics_stats};
