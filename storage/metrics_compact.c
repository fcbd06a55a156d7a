/*
 * Compaction of ended metrics windows (called from the store's maintenance
 * pass): once a window has ended and nothing of it is left in the WAL, its
 * per-series Gorilla chunks, labels and heads are rewritten into zstd blocks
 * of consecutive series, in a fresh environment that replaces the window's
 * (so the free pages left by rewriting open chunks disappear too):
 *
 *   blocks  u32be last series id in the block -> zstd frame of, per series:
 *           uvarint id delta | uvarint labels size, canonical labels |
 *           head: zigzag varint last_t, u64 last_v bits, u64 total bits |
 *           uvarint samples size, samples (ms_samples_encode)
 *
 * `sid`, `head`, `chunks` and `series` are left empty; `post`, `meta`, `ex`
 * and `info` are copied; `info` gets "compact" = 2 and "hashes", the series
 * index: (u32be top half of the labels' ms_hash, u32be id) pairs, sorted
 * (format 1, written by older builds and still read: "compact" = 1 and the
 * `series` database copied). Samples (ms_samples_encode): uvarint count |
 * timestamps as zigzag varint delta-of-deltas | one byte e | values. When
 * every value is an exact integer times 10^-e (e <= 9, as node_exporter
 * prints them), e is that exponent and the integers are either delta-coded
 * zigzag varints or, with e | 0x40 (when that is 20% smaller: dense deltas,
 * counters), bit-packed: zigzag varint first integer, zigzag varint smallest
 * delta d, uvarint g, u8 width w, then each (delta - d) / g in w bits, least
 * significant first (g is the gcd of those differences: page-sized memory
 * gauges step by 4096). Otherwise e = 0xff and the values are XORed bits as
 * uvarints.
 *
 * The swap needs the window to be unreferenced (no reader, no cut): it is
 * retried on a later pass otherwise. A crash mid-swap is repaired at start
 * (ms_compact_recover). Thread: the store's maintenance thread.
 */
#include "metrics_int.h"

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#define MC_BLOCK_RAW (512u << 10) /* raw bytes per block before compression */
#define MC_LEVEL 19
#define MC_PACKED 0x40 /* exponent byte flag: the values are bit-packed */

static char info_compact[] = "compact";
static char info_hashes[] = "hashes";

/* --- the sample codec ----------------------------------------------------------- */

static const double mc_pow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* The smallest e with every value an exact integer times 10^-e, or -1. */
static int mc_decimal_exp(const stg_sample *s, size_t n) {
    for (int e = 0; e < 10; e++) {
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            double v = s[i].v, x = v * mc_pow10[e];
            ok = isfinite(v) && fabs(x) < 9e15 && (double)llround(x) / mc_pow10[e] == v &&
                 !(v == 0 && signbit(v));
        }
        if (ok) {
            return e;
        }
    }
    return -1;
}

/* Bytes of v as a uvarint. */
static size_t mc_uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint64_t mc_gcd(uint64_t a, uint64_t b) {
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int mc_bits(uint64_t v) {
    int w = 0;
    while (v != 0) {
        w++;
        v >>= 1;
    }
    return w;
}

/* Bit-packs the decimal integers x[0..n) (n >= 2): x0, then the deltas as
 * frame of reference: min delta, their gcd above it, width, the packed
 * quotients. Returns 0 or SL_ENOMEM; *size receives the coded size first
 * when out is NULL. */
static int mc_pack(const int64_t *x, size_t n, sl_buf *out, size_t *size) {
    uint64_t mx = 0, g = 0;
    int64_t dmin = INT64_MAX;
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)((uint64_t)x[i] - (uint64_t)x[i - 1]);
        dmin = d < dmin ? d : dmin;
    }
    for (size_t i = 1; i < n; i++) {
        uint64_t k = (uint64_t)x[i] - (uint64_t)x[i - 1] - (uint64_t)dmin;
        g = mc_gcd(k, g);
        mx = k > mx ? k : mx;
    }
    g = g != 0 ? g : 1;
    int w = mc_bits(mx / g);
    size_t bytes = ((n - 1) * (size_t)w + 7) / 8;
    if (out == NULL) {
        *size = mc_uvarint_size(sl_zigzag(x[0])) + mc_uvarint_size(sl_zigzag(dmin)) +
                mc_uvarint_size(g) + 1 + bytes;
        return 0;
    }
    int rc = sl_buf_put_uvarint(out, sl_zigzag(x[0]));
    if (rc == 0) {
        rc = sl_buf_put_uvarint(out, sl_zigzag(dmin));
    }
    if (rc == 0) {
        rc = sl_buf_put_uvarint(out, g);
    }
    if (rc == 0) {
        rc = sl_buf_putc(out, (uint8_t)w);
    }
    if (rc == 0) {
        rc = sl_buf_reserve(out, bytes);
    }
    if (rc != 0) {
        return rc;
    }
    uint8_t *p = out->data + out->len;
    memset(p, 0, bytes);
    size_t bit = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t k = ((uint64_t)x[i] - (uint64_t)x[i - 1] - (uint64_t)dmin) / g;
        for (int left = w; left > 0;) {
            int off = (int)(bit & 7), take = 8 - off < left ? 8 - off : left;
            p[bit >> 3] |= (uint8_t)((k & ((1u << take) - 1)) << off);
            k >>= take;
            bit += (size_t)take;
            left -= take;
        }
    }
    out->len += bytes;
    return 0;
}

int ms_samples_encode(const stg_sample *s, size_t n, sl_buf *out) {
    int rc = sl_buf_put_uvarint(out, n);
    uint64_t prev_t = 0, prev_d = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t d = (uint64_t)s[i].t_ms - prev_t;
        rc = sl_buf_put_uvarint(out, sl_zigzag((int64_t)(d - prev_d)));
        prev_d = i == 0 ? 0 : d;
        prev_t = (uint64_t)s[i].t_ms;
    }
    int e = mc_decimal_exp(s, n);
    int64_t *x = NULL;
    bool pack = false;
    if (rc == 0 && e >= 0 && n >= 2) {
        /* Dense deltas (counters) cost their width packed; sparse ones (gauges
         * that move now and then) are left to zstd as varints. */
        if ((x = malloc(n * sizeof(*x))) == NULL) {
            return SL_ENOMEM;
        }
        size_t vsize = 0, psize;
        for (size_t i = 0; i < n; i++) {
            x[i] = llround(s[i].v * mc_pow10[e]);
            vsize += mc_uvarint_size(sl_zigzag(i > 0 ? x[i] - x[i - 1] : x[i]));
        }
        mc_pack(x, n, NULL, &psize);
        pack = psize * 5 < vsize * 4;
    }
    if (rc == 0) {
        rc = sl_buf_putc(out, (uint8_t)(e < 0 ? 0xff : pack ? MC_PACKED | e : e));
    }
    if (rc == 0 && pack) {
        rc = mc_pack(x, n, out, NULL);
        free(x);
        return rc;
    }
    free(x);
    int64_t prev_x = 0;
    uint64_t prev_b = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (e >= 0) {
            int64_t xi = llround(s[i].v * mc_pow10[e]);
            rc = sl_buf_put_uvarint(out, sl_zigzag(xi - prev_x));
            prev_x = xi;
        } else {
            uint64_t b = ms_f2u(s[i].v);
            rc = sl_buf_put_uvarint(out, b ^ prev_b);
            prev_b = b;
        }
    }
    return rc;
}

/* Reads what mc_pack wrote. Arithmetic wraps on bad input (never UB). */
static int mc_unpack(const uint8_t **pp, const uint8_t *end, stg_sample *out, uint64_t cnt, int e) {
    const uint8_t *p = *pp;
    uint64_t z0, zmin, g;
    if (sl_get_uvarint(&p, end, &z0) != 0 || sl_get_uvarint(&p, end, &zmin) != 0 ||
        sl_get_uvarint(&p, end, &g) != 0 || p >= end || *p > 64) {
        return SL_ECORRUPT;
    }
    int w = *p++;
    if (cnt < 2 || (uint64_t)(end - p) < ((cnt - 1) * (uint64_t)w + 7) / 8) {
        return SL_ECORRUPT;
    }
    uint64_t x = (uint64_t)sl_unzigzag(z0), dmin = (uint64_t)sl_unzigzag(zmin);
    out[0].v = e == 0 ? (double)(int64_t)x : (double)(int64_t)x / mc_pow10[e];
    size_t bit = 0, avail = (size_t)(end - p);
    const uint64_t mask = w == 64 ? ~0ull : (1ull << w) - 1;
    for (uint64_t i = 1; i < cnt; i++) {
        uint64_t k = 0;
        if (w <= 56 && (bit >> 3) + 8 <= avail) {
            /* One little-endian word load holds the whole field (at most 7
             * bits of offset plus 56); only the last few fields of the
             * section, near its end, take the byte loop. */
            uint64_t word;
            memcpy(&word, p + (bit >> 3), 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            word = __builtin_bswap64(word);
#endif
            k = (word >> (bit & 7)) & mask;
            bit += (size_t)w;
        } else {
            for (int got = 0; got < w;) {
                int off = (int)(bit & 7), take = 8 - off < w - got ? 8 - off : w - got;
                k |= (uint64_t)((p[bit >> 3] >> off) & ((1u << take) - 1)) << got;
                bit += (size_t)take;
                got += take;
            }
        }
        x += dmin + k * g;
        out[i].v = e == 0 ? (double)(int64_t)x : (double)(int64_t)x / mc_pow10[e];
    }
    *pp = p + (bit + 7) / 8;
    return 0;
}

int ms_samples_decode(const uint8_t *p, size_t size, stg_sample *out, size_t cap, size_t *n) {
    const uint8_t *end = p + size;
    uint64_t cnt;
    if (sl_get_uvarint(&p, end, &cnt) != 0 || cnt > cap || cnt > size) {
        return SL_ECORRUPT;
    }
    uint64_t t = 0, d = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t z;
        if (sl_get_uvarint(&p, end, &z) != 0) {
            return SL_ECORRUPT;
        }
        if (i == 0) {
            t = (uint64_t)sl_unzigzag(z);
        } else {
            d += (uint64_t)sl_unzigzag(z);
            t += d;
        }
        out[i].t_ms = (int64_t)t;
    }
    if (p >= end && cnt > 0) {
        return SL_ECORRUPT;
    }
    int e = cnt > 0 ? *p++ : 0;
    if (e != 0xff && (e & ~MC_PACKED) > 9) {
        return SL_ECORRUPT;
    }
    if (e != 0xff && (e & MC_PACKED) != 0) {
        if (mc_unpack(&p, end, out, cnt, e & ~MC_PACKED) != 0) {
            return SL_ECORRUPT;
        }
        *n = (size_t)cnt;
        return p == end ? 0 : SL_ECORRUPT;
    }
    int64_t x = 0;
    uint64_t b = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t z;
        if (sl_get_uvarint(&p, end, &z) != 0) {
            return SL_ECORRUPT;
        }
        if (e == 0) {
            x = (int64_t)((uint64_t)x + (uint64_t)sl_unzigzag(z));
            out[i].v = (double)x; /* integers (counters): no division by 1 */
        } else if (e != 0xff) {
            x = (int64_t)((uint64_t)x + (uint64_t)sl_unzigzag(z)); /* wraps on bad input */
            out[i].v = (double)x / mc_pow10[e];
        } else {
            b ^= z;
            out[i].v = ms_u2f(b);
        }
    }
    *n = (size_t)cnt;
    return p == end ? 0 : SL_ECORRUPT;
}

/* --- the block cache ------------------------------------------------------------------ */

struct ms_bentry {
    ms_bentry *hnext;         /* hash chain (while cached) */
    ms_bentry *lprev, *lnext; /* LRU list, most recently used first (while cached) */
    uint64_t win;             /* the window's cache_id */
    uint32_t key, first;
    int refs;          /* readers holding it, plus one while cached */
    ms_bcache *shared; /* once put in a cache: whose mutex guards refs (NULL: private) */
    size_t len;
    uint8_t raw[];
};

#define BC_BUCKETS 1024u

struct ms_bcache {
    pthread_mutex_t mu;
    size_t cap, used, nblocks;
    ms_bentry *tab[BC_BUCKETS];
    ms_bentry *head, *tail;
    uint64_t hits, misses;
    sl_metric *m_hit, *m_miss, *m_bytes;
};

static atomic_uint_least64_t bc_ids = 1;

uint64_t ms_bcache_next_id(void) {
    return atomic_fetch_add(&bc_ids, 1);
}

ms_bcache *ms_bcache_new(size_t cap) {
    if (cap == 0) {
        return NULL;
    }
    ms_bcache *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        pthread_mutex_init(&c->mu, NULL);
        c->cap = cap;
        const char *help = "Reads of compacted metrics blocks, by whether the block cache had them";
        c->m_hit =
            sl_counter("sightline_metrics_block_cache_requests_total", "result=\"hit\"", help);
        c->m_miss =
            sl_counter("sightline_metrics_block_cache_requests_total", "result=\"miss\"", help);
        c->m_bytes = sl_gauge("sightline_metrics_block_cache_bytes", "",
                              "Decompressed metrics blocks held by the block cache");
    }
    return c;
}

static size_t bc_bucket(uint64_t win, uint32_t key) {
    return (size_t)(((win * 0x9e3779b97f4a7c15ull) ^ key) * 0xff51afd7ed558ccdull >> 54) %
           BC_BUCKETS;
}

static void lru_unlink(ms_bcache *c, ms_bentry *e) {
    if (e->lprev != NULL) {
        e->lprev->lnext = e->lnext;
    } else {
        c->head = e->lnext;
    }
    if (e->lnext != NULL) {
        e->lnext->lprev = e->lprev;
    } else {
        c->tail = e->lprev;
    }
}

static void lru_push_front(ms_bcache *c, ms_bentry *e) {
    e->lprev = NULL;
    e->lnext = c->head;
    if (c->head != NULL) {
        c->head->lprev = e;
    } else {
        c->tail = e;
    }
    c->head = e;
}

/* Takes e out of the hash and the LRU list and drops the cache's reference;
 * returns e when nobody else holds it (the caller frees it outside the lock). */
static ms_bentry *bc_unlink(ms_bcache *c, ms_bentry *e) {
    ms_bentry **pp = &c->tab[bc_bucket(e->win, e->key)];
    while (*pp != e) {
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    lru_unlink(c, e);
    c->used -= e->len;
    c->nblocks--;
    return --e->refs == 0 ? e : NULL;
}

/* bc_unlink, keeping an entry nobody holds on *dead (freed by free_dead once
 * the lock is released). */
static void bc_drop(ms_bcache *c, ms_bentry *e, ms_bentry **dead) {
    ms_bentry *f = bc_unlink(c, e);
    if (f != NULL) {
        f->hnext = *dead;
        *dead = f;
    }
}

static void free_dead(ms_bentry *dead) {
    while (dead != NULL) {
        ms_bentry *next = dead->hnext;
        free(dead);
        dead = next;
    }
}

void ms_bcache_purge(ms_bcache *c, uint64_t win) {
    if (c == NULL) {
        return;
    }
    ms_bentry *dead = NULL;
    pthread_mutex_lock(&c->mu);
    for (ms_bentry *e = c->head, *next; e != NULL; e = next) {
        next = e->lnext;
        if (e->win == win) {
            bc_drop(c, e, &dead);
        }
    }
    sl_metric_set(c->m_bytes, c->used);
    pthread_mutex_unlock(&c->mu);
    free_dead(dead);
}

void ms_bcache_free(ms_bcache *c) {
    if (c == NULL) {
        return;
    }
    for (ms_bentry *e = c->head, *next; e != NULL; e = next) {
        next = e->lnext;
        free(e); /* readers are gone: only the cache's references are left */
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void ms_bcache_stats_get(ms_bcache *c, ms_bcache_stats *out) {
    memset(out, 0, sizeof(*out));
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->bytes = c->used;
    out->blocks = c->nblocks;
    pthread_mutex_unlock(&c->mu);
}

/* The cached block (win, key) with a reference taken, or NULL. */
static ms_bentry *bc_get(ms_bcache *c, uint64_t win, uint32_t key) {
    pthread_mutex_lock(&c->mu);
    ms_bentry *e = c->tab[bc_bucket(win, key)];
    while (e != NULL && (e->win != win || e->key != key)) {
        e = e->hnext;
    }
    if (e != NULL) {
        e->refs++;
        c->hits++;
        lru_unlink(c, e);
        lru_push_front(c, e);
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    sl_metric_add(e != NULL ? c->m_hit : c->m_miss, 1);
    return e;
}

/* Offers fresh entry e (one reference: the caller's) to the cache. Returns
 * the entry to use: e, or the one another reader put there first (then e is
 * freed). Evicts from the tail down to the cap; a block larger than half
 * the cache stays private. */
static ms_bentry *bc_put(ms_bcache *c, ms_bentry *e) {
    if (e->len > c->cap / 2) {
        return e;
    }
    ms_bentry *dead = NULL;
    pthread_mutex_lock(&c->mu);
    size_t b = bc_bucket(e->win, e->key);
    ms_bentry *o = c->tab[b];
    while (o != NULL && (o->win != e->win || o->key != e->key)) {
        o = o->hnext;
    }
    if (o != NULL) {
        o->refs++;
        pthread_mutex_unlock(&c->mu);
        free(e);
        return o;
    }
    e->refs++; /* the cache's */
    e->shared = c;
    e->hnext = c->tab[b];
    c->tab[b] = e;
    lru_push_front(c, e);
    c->used += e->len;
    c->nblocks++;
    while (c->used > c->cap && c->tail != e) {
        bc_drop(c, c->tail, &dead);
    }
    sl_metric_set(c->m_bytes, c->used);
    pthread_mutex_unlock(&c->mu);
    free_dead(dead);
    return e;
}

/* Drops a reader's reference (or a private entry's only one). */
static void bentry_release(ms_bentry *e) {
    if (e == NULL) {
        return;
    }
    ms_bcache *c = e->shared;
    bool last;
    if (c == NULL) {
        last = --e->refs == 0;
    } else {
        pthread_mutex_lock(&c->mu);
        last = --e->refs == 0;
        pthread_mutex_unlock(&c->mu);
    }
    if (last) {
        free(e);
    }
}

/* --- reading blocks ------------------------------------------------------------------ */

static void cblock_set(ms_cblock *c, ms_bentry *e) {
    *c = (ms_cblock){.e = e};
}

void ms_cblock_free(ms_cblock *c) {
    bentry_release(c->e);
    memset(c, 0, sizeof(*c));
}

/* Decompresses block value v (key: its last series id) into a new private
 * entry (one reference). */
static int bentry_inflate(uint64_t win, uint32_t key, const MDB_val *v, ms_bentry **out) {
    unsigned long long raw = ZSTD_getFrameContentSize(v->mv_data, v->mv_size);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > (64u << 20)) {
        return SL_ECORRUPT;
    }
    ms_bentry *e = malloc(sizeof(*e) + (size_t)raw + 1);
    if (e == NULL) {
        return SL_ENOMEM;
    }
    size_t got = ZSTD_decompress(e->raw, (size_t)raw, v->mv_data, v->mv_size);
    /* The first id of the block is its first section's. */
    const uint8_t *p = e->raw;
    uint64_t first;
    if (ZSTD_isError(got) || got != raw || sl_get_uvarint(&p, e->raw + got, &first) != 0) {
        free(e);
        return SL_ECORRUPT;
    }
    *e = (ms_bentry){.win = win, .key = key, .first = (uint32_t)first, .refs = 1, .len = got};
    *out = e;
    return 0;
}

/* Loads the block holding id into c (unless it is already there). */
static int cblock_load(ms_window *w, MDB_txn *txn, uint32_t id, ms_cblock *c) {
    if (c->e != NULL && id <= c->e->key && id >= c->e->first) {
        return 0;
    }
    MDB_cursor *cur;
    int rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_blocks, &cur));
    if (rc != 0) {
        return rc;
    }
    uint8_t k8[4];
    sl_put_be32(k8, id);
    MDB_val k = {4, k8}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc != 0 || k.mv_size != 4) {
        rc = mrc == MDB_NOTFOUND || mrc == 0 ? SL_ENOTFOUND : stg_lmdb_err(mrc);
    } else {
        uint32_t key = sl_get_be32(k.mv_data);
        ms_bentry *e = w->cache != NULL ? bc_get(w->cache, w->cache_id, key) : NULL;
        if (e == NULL && (rc = bentry_inflate(w->cache_id, key, &v, &e)) == 0 && w->cache != NULL) {
            e = bc_put(w->cache, e);
        }
        if (rc == 0) {
            ms_cblock_free(c);
            cblock_set(c, e);
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Parses the section at *pp (its id: *id plus the delta it starts with) and
 * moves *pp past it. Returns 0 or SL_ECORRUPT. */
static int csection_next(const uint8_t **pp, const uint8_t *end, uint64_t *id, ms_csection *out) {
    const uint8_t *p = *pp;
    uint64_t d, lsize, lt, ssize;
    if (sl_get_uvarint(&p, end, &d) != 0) {
        return SL_ECORRUPT;
    }
    *id += d;
    if (sl_get_uvarint(&p, end, &lsize) != 0 || lsize > (uint64_t)(end - p)) {
        return SL_ECORRUPT;
    }
    out->labels = p;
    out->labels_size = (size_t)lsize;
    p += lsize;
    if (sl_get_uvarint(&p, end, &lt) != 0 || end - p < 16) {
        return SL_ECORRUPT;
    }
    ms_head h = {0};
    h.last_t = sl_unzigzag(lt);
    uint64_t b;
    memcpy(&b, p, 8);
    h.last_v = ms_u2f(b);
    memcpy(&b, p + 8, 8);
    h.total = ms_u2f(b);
    h.has = 1;
    p += 16;
    if (sl_get_uvarint(&p, end, &ssize) != 0 || ssize > (uint64_t)(end - p)) {
        return SL_ECORRUPT;
    }
    out->head = h;
    out->samples = p;
    out->samples_size = (size_t)ssize;
    *pp = p + ssize;
    return 0;
}

int ms_cblock_find(ms_window *w, MDB_txn *txn, uint32_t id, ms_cblock *c, ms_csection *out) {
    int rc = cblock_load(w, txn, id, c);
    if (rc != 0) {
        return rc;
    }
    const uint8_t *raw = c->e->raw, *p = raw, *end = raw + c->e->len;
    uint64_t cur = 0;
    if (c->scan_pos > 0 && c->scan_id < id) {
        /* Readers ask for ids in ascending order: from the last one on,
         * a block's sections are walked once, not once per series. */
        p += c->scan_pos;
        cur = c->scan_id;
    }
    while (p < end) {
        ms_csection sec;
        if (csection_next(&p, end, &cur, &sec) != 0) {
            return SL_ECORRUPT;
        }
        if (cur == id) {
            *out = sec;
            c->scan_pos = (size_t)(p - raw);
            c->scan_id = (uint32_t)cur;
            return 0;
        }
        if (cur > id) {
            break;
        }
    }
    return SL_ENOTFOUND;
}

int ms_cblock_each(ms_window *w, MDB_txn *txn, ms_csection_cb cb, void *ud) {
    MDB_cursor *cur;
    int rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_blocks, &cur));
    if (rc != 0) {
        return rc;
    }
    ms_cblock c = {0}; /* private entries: a walk of every block would flush the cache */
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        ms_bentry *e = NULL;
        if (k.mv_size != 4 || (rc = bentry_inflate(0, sl_get_be32(k.mv_data), &v, &e)) != 0) {
            rc = rc != 0 ? rc : SL_ECORRUPT;
            break;
        }
        ms_cblock_free(&c);
        cblock_set(&c, e);
        const uint8_t *p = e->raw, *end = e->raw + e->len;
        uint64_t id = 0;
        while (p < end && rc == 0) {
            ms_csection sec;
            rc = csection_next(&p, end, &id, &sec);
            if (rc == 0) {
                rc = cb(ud, (uint32_t)id, &sec);
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    mdb_cursor_close(cur);
    ms_cblock_free(&c);
    return rc;
}

/* --- compaction ------------------------------------------------------------------------ */

typedef struct mc_out {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi series, post, meta, ex, info, blocks;
} mc_out;

static int copy_db(MDB_txn *from, MDB_dbi fdb, MDB_txn *to, MDB_dbi tdb, bool dup) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(from, fdb, &cur);
    if (rc != 0) {
        return stg_lmdb_err(rc);
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        rc = stg_lmdb_err(mdb_put(to, tdb, &k, &v, dup ? MDB_APPENDDUP : MDB_APPEND));
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc;
}

static int flush_block(mc_out *o, sl_buf *raw, uint32_t last_id, sl_buf *z) {
    if (raw->len == 0) {
        return 0;
    }
    size_t bound = ZSTD_compressBound(raw->len);
    z->len = 0;
    if (sl_buf_reserve(z, bound) != 0) {
        return SL_ENOMEM;
    }
    size_t n = ZSTD_compress(z->data, bound, raw->data, raw->len, MC_LEVEL);
    if (ZSTD_isError(n)) {
        return SL_ENOMEM;
    }
    uint8_t key[4];
    sl_put_be32(key, last_id);
    MDB_val k = {4, key}, v = {n, z->data};
    raw->len = 0;
    return stg_lmdb_err(mdb_put(o->txn, o->blocks, &k, &v, MDB_APPEND));
}

static int cmp_pair(const void *a, const void *b) {
    return memcmp(a, b, 8);
}

/* The `series` database (u64 hash -> dupsort ids) as one sorted array of
 * (u32be hash, u32be id) in info "hashes": 8 bytes a series instead of an
 * LMDB node of about 22. */
static int write_hashes(MDB_txn *from, MDB_dbi series, MDB_txn *to, MDB_dbi info) {
    MDB_cursor *cur;
    int rc = stg_lmdb_err(mdb_cursor_open(from, series, &cur));
    if (rc != 0) {
        return rc;
    }
    uint8_t *pairs = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        if (k.mv_size == 8 && v.mv_size == 4) {
            if (sl_array_grow(&pairs, &cap, (n + 1) * 8, 1) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            memcpy(pairs + n * 8, k.mv_data, 4); /* the big-endian top half */
            memcpy(pairs + n * 8 + 4, v.mv_data, 4);
            n++;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0) {
        qsort(pairs, n, 8, cmp_pair);
        k = (MDB_val){6, info_hashes};
        v = (MDB_val){n * 8, pairs};
        rc = stg_lmdb_err(mdb_put(to, info, &k, &v, 0));
    }
    free(pairs);
    return rc;
}

bool ms_info_hashes(MDB_txn *txn, MDB_dbi info, const uint8_t **pairs, size_t *n) {
    MDB_val k = {6, info_hashes}, v;
    if (mdb_get(txn, info, &k, &v) != 0 || v.mv_size % 8 != 0) {
        return false;
    }
    *pairs = v.mv_data;
    *n = v.mv_size / 8;
    return true;
}

/* Writes the compacted copy of w into dir. */
static int write_compact(stg_store *s, ms_window *w, const char *dir) {
    mc_out o = {0};
    MDB_txn *rtxn = NULL;
    MDB_cursor *sid = NULL, *ch = NULL;
    sl_buf raw, z, sbuf;
    sl_buf_init(&raw, 0);
    sl_buf_init(&z, 0);
    sl_buf_init(&sbuf, 0);
    stg_sample *smp = NULL, *tmp = NULL;
    size_t scap = 0, tcap = 0;
    int rc = stg_env_open(
        dir, true, 10, s->opt.map_size / 32 > (64ull << 20) ? s->opt.map_size / 32 : (64ull << 20),
        &o.env);
    if (rc != 0) {
        return rc;
    }
    if ((rc = stg_lmdb_err(mdb_txn_begin(o.env, NULL, 0, &o.txn))) != 0 ||
        (rc = stg_lmdb_err(mdb_txn_begin(w->env, NULL, MDB_RDONLY, &rtxn))) != 0) {
        goto out;
    }
    struct {
        const char *name;
        MDB_dbi *dbi;
        unsigned flags;
    } dbs[] = {{"series", &o.series, MDB_DUPSORT},
               {"post", &o.post, 0},
               {"meta", &o.meta, 0},
               {"ex", &o.ex, 0},
               {"info", &o.info, 0},
               {"blocks", &o.blocks, 0}};
    MDB_dbi unused;
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        if ((rc = stg_lmdb_err(
                 mdb_dbi_open(o.txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbs[i].dbi))) != 0) {
            goto out;
        }
    }
    /* The readers open these by name: create them empty. */
    if ((rc = stg_lmdb_err(mdb_dbi_open(o.txn, "sid", MDB_CREATE, &unused))) != 0 ||
        (rc = stg_lmdb_err(mdb_dbi_open(o.txn, "head", MDB_CREATE, &unused))) != 0 ||
        (rc = stg_lmdb_err(mdb_dbi_open(o.txn, "chunks", MDB_CREATE, &unused))) != 0) {
        goto out;
    }
    if ((rc = copy_db(rtxn, w->db_post, o.txn, o.post, false)) != 0 ||
        (rc = copy_db(rtxn, w->db_meta, o.txn, o.meta, false)) != 0 ||
        (rc = copy_db(rtxn, w->db_ex, o.txn, o.ex, false)) != 0 ||
        (rc = copy_db(rtxn, w->db_info, o.txn, o.info, false)) != 0 ||
        (rc = write_hashes(rtxn, w->db_series, o.txn, o.info)) != 0) {
        goto out;
    }
    if ((rc = stg_lmdb_err(mdb_cursor_open(rtxn, w->db_sid, &sid))) != 0 ||
        (rc = stg_lmdb_err(mdb_cursor_open(rtxn, w->db_chunks, &ch))) != 0) {
        goto out;
    }
    MDB_val k, v;
    uint32_t prev_id = 0, last_id = 0;
    int mrc = mdb_cursor_get(sid, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        if (k.mv_size != 4) {
            mrc = mdb_cursor_get(sid, &k, &v, MDB_NEXT);
            continue;
        }
        uint32_t id = sl_get_be32(k.mv_data);
        ms_head h = {0};
        MDB_val hv;
        if (mdb_get(rtxn, w->db_head, &k, &hv) == 0 && hv.mv_size == sizeof(h)) {
            memcpy(&h, hv.mv_data, sizeof(h));
        }
        /* Every chunk of the series, in order. */
        size_t n = 0;
        uint8_t ck[8];
        memcpy(ck, k.mv_data, 4);
        sl_put_be32(ck + 4, 0);
        MDB_val cv, ckv = {8, ck};
        int crc = mdb_cursor_get(ch, &ckv, &cv, MDB_SET_RANGE);
        while (crc == 0 && ckv.mv_size == 8 && memcmp(ckv.mv_data, ck, 4) == 0) {
            size_t cn;
            int64_t lo, hi;
            if (ms_chunk_info(cv.mv_data, cv.mv_size, &cn, &lo, &hi) != 0 ||
                sl_array_grow(&smp, &scap, n + cn, sizeof(*smp)) != 0 ||
                ms_chunk_decode(cv.mv_data, cv.mv_size, smp + n, cn, &cn) != 0) {
                rc = SL_ECORRUPT;
                break;
            }
            n += cn;
            crc = mdb_cursor_get(ch, &ckv, &cv, MDB_NEXT);
        }
        (void)tmp;
        (void)tcap;
        sbuf.len = 0;
        if (rc == 0) {
            rc = ms_samples_encode(smp, n, &sbuf);
        }
        uint64_t lv = ms_f2u(h.last_v), tv = ms_f2u(h.total);
        if (rc == 0 && (rc = sl_buf_put_uvarint(&raw, id - prev_id)) == 0 &&
            (rc = sl_buf_put_uvarint(&raw, v.mv_size)) == 0 &&
            (rc = sl_buf_append(&raw, v.mv_data, v.mv_size)) == 0 &&
            (rc = sl_buf_put_uvarint(&raw, sl_zigzag(h.last_t))) == 0 &&
            (rc = sl_buf_append(&raw, &lv, 8)) == 0 && (rc = sl_buf_append(&raw, &tv, 8)) == 0 &&
            (rc = sl_buf_put_uvarint(&raw, sbuf.len)) == 0) {
            rc = sl_buf_append(&raw, sbuf.data, sbuf.len);
        }
        prev_id = id;
        last_id = id;
        if (rc == 0 && raw.len >= MC_BLOCK_RAW) {
            rc = flush_block(&o, &raw, last_id, &z);
            prev_id = 0;
        }
        mrc = mdb_cursor_get(sid, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    if (rc == 0) {
        rc = flush_block(&o, &raw, last_id, &z);
    }
    if (rc == 0) {
        uint8_t two = 2; /* 1: with a `series` database */
        k = (MDB_val){7, info_compact};
        v = (MDB_val){1, &two};
        rc = stg_lmdb_err(mdb_put(o.txn, o.info, &k, &v, 0));
    }
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_txn_commit(o.txn));
        o.txn = NULL;
    }
out:
    if (sid != NULL) {
        mdb_cursor_close(sid);
    }
    if (ch != NULL) {
        mdb_cursor_close(ch);
    }
    if (rtxn != NULL) {
        mdb_txn_abort(rtxn);
    }
    if (o.txn != NULL) {
        mdb_txn_abort(o.txn);
    }
    mdb_env_close(o.env);
    free(smp);
    sl_buf_free(&raw);
    sl_buf_free(&z);
    sl_buf_free(&sbuf);
    return rc;
}

int ms_compact_window(stg_store *s, ms_window *w, int (*swap)(stg_store *, ms_window *)) {
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.compact", w->path);
    stg_rmtree(tmp);
    int rc = write_compact(s, w, tmp);
    if (rc == 0) {
        rc = swap(s, w);
    }
    if (rc != 0) {
        stg_rmtree(tmp);
    }
    return rc;
}

bool ms_info_compacted(MDB_txn *txn, MDB_dbi info) {
    MDB_val k = {7, info_compact}, v;
    return mdb_get(txn, info, &k, &v) == 0;
}

void ms_compact_recover(const char *metrics_dir) {
    DIR *d = opendir(metrics_dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[4400], base[4400];
        snprintf(path, sizeof(path), "%s/%s", metrics_dir, e->d_name);
        if (len > 8 && strcmp(e->d_name + len - 8, ".compact") == 0) {
            /* An unfinished copy, or one whose swap did not start. */
            stg_rmtree(path);
        } else if (len > 4 && strcmp(e->d_name + len - 4, ".old") == 0) {
            struct stat sb;
            snprintf(base, sizeof(base), "%s/%.*s", metrics_dir, (int)(len - 4), e->d_name);
            if (stat(base, &sb) == 0) {
                stg_rmtree(path); /* the swap completed */
            } else if (rename(path, base) != 0) {
                SL_LOG_W("storage", "cannot restore %s: %s", path, strerror(errno));
            }
        }
    }
    closedir(d);
}
