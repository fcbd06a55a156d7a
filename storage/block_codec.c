/*
 * The span block codec: turns an array of spans into one self-describing,
 * checksummed, zstd-compressed block and back. docs/block-format.md is the
 * byte-level specification; this comment is the map.
 *
 * Encoding walks the spans twice. Pass one gathers the distinct resources
 * (by pointer, then by content) and writes them first; pass two writes every
 * span field to its own column (an sl_buf): trace ids as runs, span ids raw,
 * parents as back-references, times as deltas, strings as references into a
 * block-wide dictionary, attribute lists as a "shape" (the list of keys and
 * types, stored once per distinct list) plus values written to one column per
 * attribute key. The columns are concatenated with length prefixes into the
 * raw payload, which is zstd-compressed (or stored when that does not help).
 *
 * Invariants the format relies on:
 * - A dictionary string gets its id the first time it is referenced, and the
 *   reference says "new" instead of naming the id. Encoder and decoder must
 *   therefore visit references in exactly the same order: resources first,
 *   then span by span, field by field (see enc_span / dec_span).
 * - The same holds for shapes and value columns: defined at first use.
 * - The decoder trusts nothing: each read is bounds-checked (a failed read
 *   sets a sticky error and yields 0, which is always a safe value), every
 *   id is checked against what was defined so far, every count is checked
 *   against the bytes that must back it before anything is allocated, and
 *   every column must be consumed exactly.
 *
 * Thread: any. Each thread keeps its own zstd contexts and scratch buffers
 * (thread-local, freed by a pthread key destructor when the thread exits and
 * trimmed after any call that made them large), so calls never share state.
 */
#include "block_codec.h"

#include "sl_err.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#define BLK_MAGIC "SLB1"
#define BLK_VERSION 2u /* what the encoder writes; the decoder also reads 1 */
#define BLK_FLAG_ZSTD 0x01u
#define BLK_FIXED_HDR 10u                /* magic, version, flags, checksum */
#define BLK_MAX_RAW (256u << 20)         /* largest raw payload either side accepts */
#define BLK_PARENT_WINDOW 64u            /* how far back a parent reference may point */
#define BLK_SEG_MIN 1024u                /* smallest run of columns given its own zstd block */
#define BLK_TRIM_SIZE ((size_t)16 << 20) /* scratch above this is freed after a call */

/* Columns, in payload order. docs/block-format.md describes each one. */
enum {
    COL_COUNTS,
    COL_DICT_LENS,
    COL_DICT_BYTES,
    COL_SHAPES,
    COL_VAL_LENS,
    COL_RES,
    COL_TRACE_IDS,
    COL_TRACE_RUNS,
    COL_SPAN_IDS,
    COL_PARENT,
    COL_PARENT_RAW,
    COL_START,
    COL_DUR,
    COL_RES_REF,
    COL_NAME,
    COL_KIND,
    COL_STATUS,
    COL_STATUS_MSG,
    COL_FLAGS,
    COL_TRACE_STATE,
    COL_SCOPE_NAME,
    COL_SCOPE_VERSION,
    COL_SPAN_SHAPE,
    COL_DROPPED,
    COL_EV_COUNT,
    COL_EV_TIME,
    COL_EV_NAME,
    COL_EV_SHAPE,
    COL_EV_DROPPED,
    COL_LK_COUNT,
    COL_LK_IDS,
    COL_LK_TRACE_STATE,
    COL_LK_FLAGS,
    COL_LK_SHAPE,
    COL_LK_DROPPED,
    COL_VAL_DATA,
    COL_COUNT
};

/* Reference codes shared by strings and shapes: 0 is the predefined empty
 * value, 1 defines the next new entry. Shapes then use c >= 2 for shape
 * c - 2 (shape ids start at 0). */
enum { REF_EMPTY = 0, REF_NEW = 1 };

/* String references add a third code, 2: the string last referenced through
 * the same column (ids then start at code 3). Values that repeat from span
 * to span of a trace (request ids, user ids) then cost one frequent byte. */
enum { REF_REPEAT = 2 };

/* Parent codes: 0 root, 1 raw id follows in COL_PARENT_RAW, k + 1 the span k
 * positions earlier in the same trace run. */
enum { PARENT_NONE = 0, PARENT_RAW = 1 };

/* ---- hashing -------------------------------------------------------------- */

static inline uint64_t load_le64(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

#define XXH_P1 11400714785074694791ULL
#define XXH_P2 14029467366897019727ULL
#define XXH_P3 1609587929392839161ULL
#define XXH_P4 9650029242287828579ULL
#define XXH_P5 2870177450012600261ULL

static inline uint64_t xxh_round(uint64_t acc, uint64_t in) {
    acc += in * XXH_P2;
    return rotl64(acc, 31) * XXH_P1;
}

static inline uint64_t xxh_merge(uint64_t h, uint64_t v) {
    h ^= xxh_round(0, v);
    return h * XXH_P1 + XXH_P4;
}

/* XXH64 (seed 0), the block checksum. Written out here because libzstd does
 * not export its copy; the result is the published XXH64 so that external
 * tools can verify blocks. */
static uint64_t blk_xxh64(const uint8_t *p, size_t len) {
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = 0 - XXH_P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, load_le64(p));
            v2 = xxh_round(v2, load_le64(p + 8));
            v3 = xxh_round(v3, load_le64(p + 16));
            v4 = xxh_round(v4, load_le64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = XXH_P5;
    }
    h += (uint64_t)len;
    while (end - p >= 8) {
        h ^= xxh_round(0, load_le64(p));
        h = rotl64(h, 27) * XXH_P1 + XXH_P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)load_le32(p) * XXH_P1;
        h = rotl64(h, 23) * XXH_P2 + XXH_P3;
        p += 4;
    }
    while (p < end) {
        h ^= *p++ * XXH_P5;
        h = rotl64(h, 11) * XXH_P1;
    }
    h ^= h >> 33;
    h *= XXH_P2;
    h ^= h >> 29;
    h *= XXH_P3;
    h ^= h >> 32;
    return h;
}

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 29;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 32;
    return h;
}

/* The in-memory hash of dictionary strings: never stored, so it may read
 * words in native order. One multiply per 8 bytes keeps short keys cheap. */
static inline uint64_t str_hash(const char *s, size_t len) {
    return sl_hash_bytes(s, len);
}

/* ---- small growable arrays and open-addressing tables --------------------- */

/* A table of 32-bit indexes into an owner's entry array. Each slot carries
 * the generation it was written in, so clearing the table between calls is
 * one increment instead of a memset of a table sized for the largest block
 * ever seen. The owner compares entries and rebuilds on growth. */
typedef struct htab {
    uint64_t *slot; /* gen << 32 | index; gen 0 never matches */
    uint32_t mask;
    uint32_t gen;
    uint32_t count;
} htab;

static void ht_free(htab *t) {
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

static void ht_clear(htab *t) {
    t->count = 0;
    if (++t->gen == 0) {
        if (t->slot != NULL) {
            memset(t->slot, 0, ((size_t)t->mask + 1) * sizeof(uint64_t));
        }
        t->gen = 1;
    }
}

/* Returns the first slot position for hash h (callers probe linearly). */
static inline uint32_t ht_pos(const htab *t, uint64_t h) {
    return (uint32_t)h & t->mask;
}

static inline bool ht_live(const htab *t, uint32_t pos, uint32_t *idx) {
    uint64_t s = t->slot[pos];
    if ((uint32_t)(s >> 32) != t->gen) {
        return false;
    }
    *idx = (uint32_t)s;
    return true;
}

static inline void ht_put(htab *t, uint32_t pos, uint32_t idx) {
    t->slot[pos] = (uint64_t)t->gen << 32 | idx;
    t->count++;
}

/* Inserts idx for hash h without comparing (used when rebuilding). */
static void ht_insert_raw(htab *t, uint64_t h, uint32_t idx) {
    uint32_t pos = ht_pos(t, h), dummy;
    while (ht_live(t, pos, &dummy)) {
        pos = (pos + 1) & t->mask;
    }
    ht_put(t, pos, idx);
}

/* Makes room for one more entry: when the table would pass half full it is
 * replaced by one twice the size and refilled from hashes[first..end). */
static int ht_reserve(htab *t, const uint64_t *hashes, size_t stride, uint32_t first,
                      uint32_t end) {
    size_t size = t->slot == NULL ? 0 : (size_t)t->mask + 1;
    if ((size_t)t->count + 1 <= size / 2) {
        return 0;
    }
    size_t nsize = size == 0 ? 64 : size * 2;
    if (nsize > ((size_t)1 << 31)) {
        return SL_ENOMEM;
    }
    uint64_t *n = calloc(nsize, sizeof(uint64_t));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    free(t->slot);
    t->slot = n;
    t->mask = (uint32_t)(nsize - 1);
    t->gen = 1;
    t->count = 0;
    for (uint32_t i = first; i < end; i++) {
        ht_insert_raw(t, *(const uint64_t *)(const void *)((const char *)hashes + i * stride), i);
    }
    return 0;
}

/* ---- encoder state -------------------------------------------------------- */

typedef struct str_ent {
    uint64_t hash; /* first: ht_reserve reads it through a stride */
    const char *ptr;
    size_t len;
} str_ent;

typedef struct shape_ent {
    uint64_t hash;
    uint32_t off; /* into enc.items */
    uint32_t len;
} shape_ent;

typedef struct res_ent {
    uint64_t hash; /* content hash */
    const sl_resource *r;
} res_ent;

typedef struct rptr_ent {
    uint64_t hash; /* pointer hash */
    const sl_resource *r;
    uint32_t idx;
} rptr_ent;

/* An encoder column: its bytes, the id of the last string referenced
 * through it (for the REF_REPEAT code), and its section of the dictionary:
 * the strings first referenced through it (lengths, bytes, count). */
typedef struct ecol {
    sl_buf b;
    uint32_t last;
    sl_buf dict_lens, dict_bytes;
    uint32_t nnew;
} ecol;

typedef struct enc {
    int err; /* sticky: the first failure of any write */
    ecol col[COL_COUNT];
    sl_buf payload;
    sl_buf zbuf;
    /* Dictionary: strs[gid], gid 0 is the empty string and never hashed;
     * keycol[gid] is 1 + the value column of that key, 0 when none yet. */
    str_ent *strs;
    size_t nstrs, strs_cap;
    uint32_t *keycol;
    size_t keycol_cap;
    htab stab;
    /* Shapes: each a run of items (column << 3 | type) in items. */
    shape_ent *shapes;
    size_t nshapes, shapes_cap;
    uint32_t *items;
    size_t nitems, items_cap;
    uint32_t *tmp;
    size_t tmp_cap;
    htab shtab;
    /* One value column per attribute key, in first-use order. */
    ecol *vcol;
    size_t nvcol, vcol_cap;
    /* Resources: by content (res) and by pointer (rptrs). */
    res_ent *res;
    size_t nres, res_cap;
    htab rtab;
    rptr_ent *rptrs;
    size_t nrptrs, rptrs_cap;
    htab ptab;
    uint32_t *span_res; /* pass one's answer: 0 none, else 1 + resource index */
    size_t span_res_cap;
    uint64_t *span_end; /* end of each span so far, in time units */
    size_t span_end_cap;
    uint32_t *last_child; /* per span: index of its latest child so far */
    size_t last_child_cap;
    size_t *seg; /* payload offsets where zstd should end a block */
    size_t nseg, seg_cap;
    uint64_t unit; /* 10^unit_exp divides every timestamp of the block */
    uint32_t unit_exp;
    /* Key pointer -> value column, for attribute keys seen before: spans
     * decoded from one record share their key strings, so the cutter finds
     * most keys here without hashing them. */
    struct {
        const char *ptr;
        size_t len;
        uint32_t col;
    } kcache[64];
} enc;

/* A decoder column: unread bytes, the last string id read from it and
 * (version 2) its dictionary section: dict[dnext..dend) not referenced yet. */
typedef struct rd {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t last;
    uint32_t dnext, dend;
} rd;

typedef struct dec_scratch {
    uint8_t *raw;
    size_t raw_cap;
    sl_str *dict;
    size_t dict_cap;
    uint32_t *shape_off;
    uint32_t *shape_len;
    size_t shape_cap, shape_len_cap;
    uint32_t *items;
    size_t items_cap;
    rd *vcol;
    size_t vcol_cap;
    sl_str *vkey;
    size_t vkey_cap;
    uint32_t *gmap; /* string id -> dictionary index */
    size_t gmap_cap;
    uint64_t *times; /* per span: start and end in time units (version 2) */
    size_t times_cap;
    uint32_t *last_child;
    size_t last_child_cap;
} dec_scratch;

typedef struct codec_tls {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    enc e;
    dec_scratch ds;
} codec_tls;

static void enc_free(enc *e) {
    for (size_t i = 0; i < COL_COUNT; i++) {
        sl_buf_free(&e->col[i].b);
        sl_buf_free(&e->col[i].dict_lens);
        sl_buf_free(&e->col[i].dict_bytes);
    }
    sl_buf_free(&e->payload);
    sl_buf_free(&e->zbuf);
    for (size_t i = 0; i < e->vcol_cap; i++) {
        sl_buf_free(&e->vcol[i].b);
        sl_buf_free(&e->vcol[i].dict_lens);
        sl_buf_free(&e->vcol[i].dict_bytes);
    }
    free(e->span_end);
    free(e->last_child);
    free(e->vcol);
    free(e->strs);
    free(e->keycol);
    free(e->shapes);
    free(e->items);
    free(e->tmp);
    free(e->res);
    free(e->rptrs);
    free(e->span_res);
    free(e->seg);
    ht_free(&e->stab);
    ht_free(&e->shtab);
    ht_free(&e->rtab);
    ht_free(&e->ptab);
    memset(e, 0, sizeof(*e));
}

static size_t enc_footprint(const enc *e) {
    size_t sz = e->payload.cap + e->zbuf.cap;
    for (size_t i = 0; i < COL_COUNT; i++) {
        sz += e->col[i].b.cap + e->col[i].dict_lens.cap + e->col[i].dict_bytes.cap;
    }
    for (size_t i = 0; i < e->vcol_cap; i++) {
        sz +=
            e->vcol[i].b.cap + e->vcol[i].dict_lens.cap + e->vcol[i].dict_bytes.cap + sizeof(ecol);
    }
    sz += (e->span_end_cap + e->last_child_cap) * sizeof(uint64_t);
    sz += e->strs_cap * (sizeof(str_ent) + sizeof(uint32_t));
    sz += e->items_cap * sizeof(uint32_t) + e->shapes_cap * sizeof(shape_ent);
    sz += e->span_res_cap * sizeof(uint32_t);
    const htab *t[] = {&e->stab, &e->shtab, &e->rtab, &e->ptab};
    for (size_t i = 0; i < 4; i++) {
        sz += t[i]->slot == NULL ? 0 : ((size_t)t[i]->mask + 1) * sizeof(uint64_t);
    }
    return sz;
}

static void dec_scratch_free(dec_scratch *s) {
    free(s->gmap);
    free(s->times);
    free(s->last_child);
    free(s->raw);
    free(s->dict);
    free(s->shape_off);
    free(s->shape_len);
    free(s->items);
    free(s->vcol);
    free(s->vkey);
    memset(s, 0, sizeof(*s));
}

static size_t dec_footprint(const dec_scratch *s) {
    return s->raw_cap + s->dict_cap * sizeof(sl_str) + s->gmap_cap * sizeof(uint32_t) +
           s->times_cap * sizeof(uint64_t) + s->last_child_cap * sizeof(uint32_t) +
           (s->shape_cap + s->shape_len_cap + s->items_cap) * sizeof(uint32_t) +
           s->vcol_cap * sizeof(rd) + s->vkey_cap * sizeof(sl_str);
}

/* ---- thread-local contexts ------------------------------------------------ */

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static bool tls_key_ok;
static _Thread_local codec_tls *tls_cur;

static void tls_destroy(void *p) {
    codec_tls *t = p;
    if (t == NULL) {
        return;
    }
    ZSTD_freeCCtx(t->cctx);
    ZSTD_freeDCtx(t->dctx);
    enc_free(&t->e);
    dec_scratch_free(&t->ds);
    free(t);
}

static void tls_make_key(void) {
    tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

/* This thread's codec context, created on first use; NULL when out of
 * memory. The pthread key frees it when the thread exits. */
static codec_tls *tls_get(void) {
    if (tls_cur != NULL) {
        return tls_cur;
    }
    pthread_once(&tls_once, tls_make_key);
    codec_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (tls_key_ok) {
        (void)pthread_setspecific(tls_key, t);
    }
    tls_cur = t;
    return t;
}

/* ---- encoder: primitive writes (sticky error) ---------------------------- */

static int enc_fail(enc *e, int rc) {
    if (e->err == 0) {
        e->err = rc;
    }
    return rc;
}

static inline bool buf_room(enc *e, sl_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) {
        return true;
    }
    int rc = sl_buf_reserve(b, extra);
    if (rc != 0) {
        enc_fail(e, rc);
        return false;
    }
    return true;
}

static inline void put_uv(enc *e, sl_buf *b, uint64_t v) {
    if (!buf_room(e, b, 10)) {
        return;
    }
    uint8_t *p = b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)(p - b->data);
}

static inline void put_u8(enc *e, sl_buf *b, uint8_t v) {
    if (buf_room(e, b, 1)) {
        b->data[b->len++] = v;
    }
}

static inline void put_bytes(enc *e, sl_buf *b, const void *p, size_t len) {
    if (len > 0 && buf_room(e, b, len)) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
    }
}

/* Zigzag of a wrapped 64-bit difference: exact for every pair of uint64. */
static inline uint64_t zz_diff(uint64_t a, uint64_t b) {
    uint64_t d = a - b;
    return (d << 1) ^ (0 - (d >> 63));
}

static inline uint64_t unzz(uint64_t z) {
    return (z >> 1) ^ (0 - (z & 1));
}

/* ---- encoder: dictionary -------------------------------------------------- */

#define GID_NONE UINT32_MAX

/* Returns the id of s, or GID_NONE when s is not in the dictionary yet. */
static inline uint32_t str_find(const enc *e, const char *p, size_t len, uint64_t h) {
    if (e->stab.slot == NULL) {
        return GID_NONE;
    }
    uint32_t pos = ht_pos(&e->stab, h), gid;
    while (ht_live(&e->stab, pos, &gid)) {
        const str_ent *s = &e->strs[gid];
        if (s->hash == h && s->len == len && memcmp(s->ptr, p, len) == 0) {
            return gid;
        }
        pos = (pos + 1) & e->stab.mask;
    }
    return GID_NONE;
}

/* Adds s as the next id, writing it to the dictionary section of column c
 * (the column that references it first). Returns the id or GID_NONE on
 * failure (e->err is set). */
static uint32_t str_add(enc *e, ecol *c, const char *p, size_t len, uint64_t h) {
    if (e->nstrs >= UINT32_MAX - 1) {
        enc_fail(e, SL_ETOOBIG);
        return GID_NONE;
    }
    if (sl_array_grow(&e->strs, &e->strs_cap, e->nstrs + 1, sizeof(str_ent)) != 0 ||
        sl_array_grow(&e->keycol, &e->keycol_cap, e->nstrs + 1, sizeof(uint32_t)) != 0 ||
        ht_reserve(&e->stab, &e->strs[0].hash, sizeof(str_ent), 1, (uint32_t)e->nstrs) != 0) {
        enc_fail(e, SL_ENOMEM);
        return GID_NONE;
    }
    uint32_t gid = (uint32_t)e->nstrs++;
    e->strs[gid] = (str_ent){h, p, len};
    e->keycol[gid] = 0;
    ht_insert_raw(&e->stab, h, gid);
    put_uv(e, &c->dict_lens, len);
    put_bytes(e, &c->dict_bytes, p, len);
    c->nnew++;
    return gid;
}

/* Writes a reference to s to column c, adding s to the dictionary at its
 * first use. Returns the string's id (0 for "") or GID_NONE on failure. */
static inline uint32_t enc_str(enc *e, ecol *c, sl_str s) {
    uint32_t gid = 0;
    if (s.len == 0) {
        put_u8(e, &c->b, REF_EMPTY);
    } else if (s.ptr == NULL) {
        enc_fail(e, SL_EINVAL);
        return GID_NONE;
    } else if (c->last != 0 && e->strs[c->last].ptr == s.ptr && e->strs[c->last].len == s.len) {
        /* The very string referenced last (same memory): no need to hash. */
        gid = c->last;
        put_u8(e, &c->b, REF_REPEAT);
    } else {
        uint64_t h = str_hash(s.ptr, s.len);
        gid = str_find(e, s.ptr, s.len, h);
        if (gid == GID_NONE) {
            gid = str_add(e, c, s.ptr, s.len, h);
            if (gid == GID_NONE) {
                return GID_NONE;
            }
            put_u8(e, &c->b, REF_NEW);
        } else if (gid == c->last) {
            put_u8(e, &c->b, REF_REPEAT);
        } else {
            put_uv(e, &c->b, (uint64_t)gid + 2);
        }
    }
    c->last = gid;
    return gid;
}

/* ---- encoder: attribute lists --------------------------------------------- */

static uint64_t items_hash(const uint32_t *it, uint32_t n) {
    uint64_t h = 0x2545f4914f6cdd1dULL ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h = (h + it[i]) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return mix64(h);
}

static uint32_t shape_find(const enc *e, const uint32_t *it, uint32_t n, uint64_t h) {
    if (e->shtab.slot == NULL) {
        return GID_NONE;
    }
    uint32_t pos = ht_pos(&e->shtab, h), sid;
    while (ht_live(&e->shtab, pos, &sid)) {
        const shape_ent *s = &e->shapes[sid];
        if (s->hash == h && s->len == n &&
            memcmp(&e->items[s->off], it, n * sizeof(uint32_t)) == 0) {
            return sid;
        }
        pos = (pos + 1) & e->shtab.mask;
    }
    return GID_NONE;
}

/* Resolves key to its value column, or UINT32_MAX when the key has none yet. */
static inline uint32_t key_col(enc *e, sl_str key) {
    uint32_t gid = 0;
    size_t slot = ((uintptr_t)key.ptr >> 3) & 63;
    if (key.len > 0 && e->kcache[slot].ptr == key.ptr && e->kcache[slot].len == key.len) {
        return e->kcache[slot].col;
    }
    if (key.len > 0) {
        gid = str_find(e, key.ptr, key.len, str_hash(key.ptr, key.len));
        if (gid == GID_NONE) {
            return UINT32_MAX;
        }
    }
    uint32_t col = e->keycol != NULL && e->keycol[gid] != 0 ? e->keycol[gid] - 1 : UINT32_MAX;
    if (col != UINT32_MAX && key.len > 0) {
        e->kcache[slot].ptr = key.ptr;
        e->kcache[slot].len = key.len;
        e->kcache[slot].col = col;
    }
    return col;
}

/* Writes one shape item of a new shape to COL_SHAPES, creating the key's
 * value column when this is its first use. Returns the column or
 * UINT32_MAX on failure. */
static uint32_t shape_item_def(enc *e, sl_str key, uint8_t type) {
    ecol *shc = &e->col[COL_SHAPES];
    sl_buf *sh = &shc->b;
    uint32_t col = key_col(e, key);
    if (col != UINT32_MAX) {
        put_uv(e, sh, (uint64_t)col + 1);
        put_u8(e, sh, type);
        return col;
    }
    put_u8(e, sh, 0);
    uint32_t gid = enc_str(e, shc, key);
    if (gid == GID_NONE) {
        return UINT32_MAX;
    }
    if (e->nvcol == e->vcol_cap) {
        size_t old = e->vcol_cap;
        if (sl_array_grow(&e->vcol, &e->vcol_cap, e->nvcol + 1, sizeof(ecol)) != 0) {
            enc_fail(e, SL_ENOMEM);
            return UINT32_MAX;
        }
        memset(&e->vcol[old], 0, (e->vcol_cap - old) * sizeof(ecol));
    }
    col = (uint32_t)e->nvcol++;
    e->vcol[col].b.len = 0;
    e->vcol[col].last = 0;
    e->vcol[col].dict_lens.len = 0;
    e->vcol[col].dict_bytes.len = 0;
    e->vcol[col].nnew = 0;
    e->keycol[gid] = col + 1;
    put_u8(e, sh, type);
    return col;
}

/* Doubles (version 2): most attribute doubles are decimals with few digits
 * (0.25, 1.5, 12.345), which take 8 random-looking bytes as IEEE bits. Such a
 * value is written as one varint, (zigzag(m) << 4 | k) + 1, meaning m / 10^k
 * (k <= 15, |m| < 2^53), when that division gives back the very same bits;
 * anything else (other fractions, -0.0, NaN, infinities) is DBL_RAW
 * followed by the 8 bytes. */
#define DBL_RAW 0u
#define DBL_MAX_EXP 15
#define DBL_MAX_MANT 9007199254740992.0 /* 2^53 */

static const double pow10_tab[DBL_MAX_EXP + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

static inline double dbl_from_decimal(int64_t m, unsigned k) {
    return (double)m / pow10_tab[k];
}

static uint64_t dbl_decimal(double d) {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    if (!(d > -DBL_MAX_MANT && d < DBL_MAX_MANT) || bits == 0x8000000000000000ull) {
        return DBL_RAW; /* NaN, too large, or -0.0 */
    }
    for (unsigned k = 0; k <= DBL_MAX_EXP; k++) {
        double x = d * pow10_tab[k];
        if (!(x > -DBL_MAX_MANT && x < DBL_MAX_MANT)) {
            break;
        }
        int64_t m = (int64_t)x;
        if ((double)m != x) {
            continue;
        }
        double back = dbl_from_decimal(m, k);
        uint64_t bb;
        memcpy(&bb, &back, 8);
        if (bb == bits) {
            return (sl_zigzag(m) << 4 | k) + 1;
        }
    }
    return DBL_RAW;
}

static inline void enc_value(enc *e, ecol *c, const sl_value *v) {
    sl_buf *b = &c->b;
    switch (v->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        enc_str(e, c, v->v.s);
        break;
    case SL_VAL_INT:
        put_uv(e, b, sl_zigzag(v->v.i));
        break;
    case SL_VAL_BOOL:
        put_uv(e, b, sl_zigzag((int64_t)v->v.b));
        break;
    case SL_VAL_DOUBLE: {
        uint64_t dec = dbl_decimal(v->v.d);
        put_uv(e, b, dec);
        if (dec == DBL_RAW) {
            uint64_t bits;
            memcpy(&bits, &v->v.d, 8);
            if (buf_room(e, b, 8)) {
                store_le64(b->data + b->len, bits);
                b->len += 8;
            }
        }
        break;
    }
    default: /* SL_VAL_EMPTY: one zero byte, so every value costs a byte */
        put_u8(e, b, 0);
        break;
    }
}

/* Writes an attribute list: a shape reference to refcol (defining the shape
 * in COL_SHAPES at its first use), then each value to its key's column. */
static void enc_attrs(enc *e, ecol *rc, const sl_attr *attrs, uint32_t n) {
    sl_buf *refcol = &rc->b;
    if (n == 0) {
        put_u8(e, refcol, REF_EMPTY);
        return;
    }
    if (attrs == NULL) {
        enc_fail(e, SL_EINVAL);
        return;
    }
    if (sl_array_grow(&e->tmp, &e->tmp_cap, n, sizeof(uint32_t)) != 0) {
        enc_fail(e, SL_ENOMEM);
        return;
    }
    uint32_t *it = e->tmp;
    bool known = true;
    for (uint32_t j = 0; j < n; j++) {
        uint8_t type = attrs[j].val.type;
        if (type > SL_VAL_BYTES || (attrs[j].key.len > 0 && attrs[j].key.ptr == NULL)) {
            enc_fail(e, SL_EINVAL);
            return;
        }
        uint32_t col = key_col(e, attrs[j].key);
        if (col == UINT32_MAX) {
            known = false;
            break;
        }
        it[j] = col << 3 | type;
    }
    uint32_t sid = GID_NONE;
    if (known) {
        sid = shape_find(e, it, n, items_hash(it, n));
    }
    if (sid != GID_NONE) {
        put_uv(e, refcol, (uint64_t)sid + 2);
    } else {
        /* A new shape: defined inline, creating value columns for new keys. */
        if (e->nshapes >= UINT32_MAX - 2 || e->nitems + n > UINT32_MAX ||
            sl_array_grow(&e->items, &e->items_cap, e->nitems + n, sizeof(uint32_t)) != 0 ||
            sl_array_grow(&e->shapes, &e->shapes_cap, e->nshapes + 1, sizeof(shape_ent)) != 0 ||
            ht_reserve(&e->shtab, &e->shapes[0].hash, sizeof(shape_ent), 0, (uint32_t)e->nshapes) !=
                0) {
            enc_fail(e, SL_ENOMEM);
            return;
        }
        put_u8(e, refcol, REF_NEW);
        put_uv(e, &e->col[COL_SHAPES].b, n);
        uint32_t *def = &e->items[e->nitems];
        for (uint32_t j = 0; j < n; j++) {
            uint8_t type = attrs[j].val.type;
            if (type > SL_VAL_BYTES || (attrs[j].key.len > 0 && attrs[j].key.ptr == NULL)) {
                enc_fail(e, SL_EINVAL);
                return;
            }
            uint32_t col = shape_item_def(e, attrs[j].key, type);
            if (col == UINT32_MAX || col >= (1u << 29)) {
                enc_fail(e, SL_ETOOBIG);
                return;
            }
            def[j] = col << 3 | type;
        }
        uint64_t h = items_hash(def, n);
        sid = (uint32_t)e->nshapes++;
        e->shapes[sid] = (shape_ent){h, (uint32_t)e->nitems, n};
        e->nitems += n;
        ht_insert_raw(&e->shtab, h, sid);
        it = def;
    }
    for (uint32_t j = 0; j < n; j++) {
        enc_value(e, &e->vcol[it[j] >> 3], &attrs[j].val);
    }
}

/* ---- encoder: resources --------------------------------------------------- */

static uint64_t value_hash(uint64_t h, const sl_value *v) {
    h = (h ^ v->type) * 0x9e3779b97f4a7c15ULL;
    switch (v->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return h ^ (v->v.s.len > 0 && v->v.s.ptr != NULL ? str_hash(v->v.s.ptr, v->v.s.len) : 0);
    case SL_VAL_INT:
        return h ^ mix64((uint64_t)v->v.i);
    case SL_VAL_BOOL:
        return h ^ mix64((uint64_t)(int64_t)v->v.b);
    case SL_VAL_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->v.d, 8);
        return h ^ mix64(bits);
    }
    default:
        return h;
    }
}

static uint64_t resource_hash(const sl_resource *r) {
    uint64_t h =
        r->service.len > 0 && r->service.ptr != NULL ? str_hash(r->service.ptr, r->service.len) : 0;
    h = mix64(h ^ ((uint64_t)r->nattrs << 32 | r->dropped_attrs));
    for (uint32_t i = 0; i < r->nattrs && r->attrs != NULL; i++) {
        const sl_attr *a = &r->attrs[i];
        h = mix64(h +
                  (a->key.len > 0 && a->key.ptr != NULL ? str_hash(a->key.ptr, a->key.len) : 0x51));
        h = mix64(value_hash(h, &a->val));
    }
    return h;
}

/* Returns 1 + the block index of r, writing r to COL_RES when it is the first
 * of its content; 0 on failure (e->err set). */
static uint32_t enc_resource(enc *e, const sl_resource *r) {
    uint64_t ph = mix64((uint64_t)(uintptr_t)r);
    if (e->ptab.slot != NULL) {
        uint32_t pos = ht_pos(&e->ptab, ph), i;
        while (ht_live(&e->ptab, pos, &i)) {
            if (e->rptrs[i].r == r) {
                return e->rptrs[i].idx + 1;
            }
            pos = (pos + 1) & e->ptab.mask;
        }
    }
    if (r->nattrs > 0 && r->attrs == NULL) {
        enc_fail(e, SL_EINVAL);
        return 0;
    }
    uint64_t ch = resource_hash(r);
    uint32_t idx = GID_NONE;
    if (e->rtab.slot != NULL) {
        uint32_t pos = ht_pos(&e->rtab, ch), i;
        while (ht_live(&e->rtab, pos, &i)) {
            if (e->res[i].hash == ch && sl_resource_eq(e->res[i].r, r)) {
                idx = i;
                break;
            }
            pos = (pos + 1) & e->rtab.mask;
        }
    }
    if (idx == GID_NONE) {
        if (sl_array_grow(&e->res, &e->res_cap, e->nres + 1, sizeof(res_ent)) != 0 ||
            ht_reserve(&e->rtab, &e->res[0].hash, sizeof(res_ent), 0, (uint32_t)e->nres) != 0) {
            enc_fail(e, SL_ENOMEM);
            return 0;
        }
        idx = (uint32_t)e->nres++;
        e->res[idx] = (res_ent){ch, r};
        ht_insert_raw(&e->rtab, ch, idx);
        ecol *c = &e->col[COL_RES];
        enc_str(e, c, r->service);
        enc_attrs(e, c, r->attrs, r->nattrs);
        put_uv(e, &c->b, r->dropped_attrs);
    }
    if (sl_array_grow(&e->rptrs, &e->rptrs_cap, e->nrptrs + 1, sizeof(rptr_ent)) != 0 ||
        ht_reserve(&e->ptab, &e->rptrs[0].hash, sizeof(rptr_ent), 0, (uint32_t)e->nrptrs) != 0) {
        enc_fail(e, SL_ENOMEM);
        return 0;
    }
    uint32_t pi = (uint32_t)e->nrptrs++;
    e->rptrs[pi] = (rptr_ent){ph, r, idx};
    ht_insert_raw(&e->ptab, ph, pi);
    return idx + 1;
}

/* ---- encoder: spans ------------------------------------------------------- */

/* Start times (version 2) are predicted from the trace's shape: a span with
 * its parent earlier in the run usually starts shortly after its previous
 * sibling ended (sequential calls), or after its parent started (the first
 * child); other spans are predicted by the previous span's start. Only the
 * difference is written, so a child costs about the gap before it instead of
 * its previous sibling's duration. Encoder and decoder call this with the
 * same values: ends of earlier spans (time units) and, per span, its latest
 * child so far (UINT32_MAX: none), which this updates. */
static inline uint64_t time_pred(const uint64_t *span_end, uint32_t *last_child, size_t i,
                                 size_t parent, uint64_t prev_start, uint64_t parent_start) {
    last_child[i] = UINT32_MAX;
    if (parent == SIZE_MAX) {
        return prev_start;
    }
    uint32_t sib = last_child[parent];
    last_child[parent] = (uint32_t)i;
    return sib == UINT32_MAX ? parent_start : span_end[sib];
}

/* Timestamps are written in the block's time unit: t / e->unit. */
static inline uint64_t enc_time(const enc *e, uint64_t t) {
    return e->unit == 1 ? t : t / e->unit;
}

/* Lowers e->unit until it divides t. */
static inline void enc_unit_fit(enc *e, uint64_t t) {
    while (e->unit > 1 && t % e->unit != 0) {
        e->unit /= 10;
        e->unit_exp--;
    }
}

static void enc_span(enc *e, const sl_span *const *spans, size_t i, size_t run_start,
                     uint64_t prev_start) {
    const sl_span *s = spans[i];
    ecol *c = e->col;
    size_t parent = SIZE_MAX; /* index of the parent when it is earlier in the run */

    put_bytes(e, &c[COL_SPAN_IDS].b, s->span_id, 8);
    if (sl_is_zero(s->parent_span_id, 8)) {
        put_u8(e, &c[COL_PARENT].b, PARENT_NONE);
    } else {
        size_t back = i - run_start, k;
        if (back > BLK_PARENT_WINDOW) {
            back = BLK_PARENT_WINDOW;
        }
        for (k = 1; k <= back; k++) {
            if (memcmp(spans[i - k]->span_id, s->parent_span_id, 8) == 0) {
                break;
            }
        }
        if (k <= back) {
            put_u8(e, &c[COL_PARENT].b, (uint8_t)(k + 1));
            parent = i - k;
        } else {
            put_u8(e, &c[COL_PARENT].b, PARENT_RAW);
            put_bytes(e, &c[COL_PARENT_RAW].b, s->parent_span_id, 8);
        }
    }
    uint64_t start = enc_time(e, s->start_unix_nano), end = enc_time(e, s->end_unix_nano);
    put_uv(e, &c[COL_START].b,
           zz_diff(start, time_pred(e->span_end, e->last_child, i, parent, enc_time(e, prev_start),
                                    enc_time(e, parent != SIZE_MAX ? spans[parent]->start_unix_nano
                                                                   : 0))));
    put_uv(e, &c[COL_DUR].b, end - start);
    e->span_end[i] = end;
    put_uv(e, &c[COL_RES_REF].b, e->span_res[i]);
    enc_str(e, &c[COL_NAME], s->name);
    put_u8(e, &c[COL_KIND].b, s->kind);
    put_u8(e, &c[COL_STATUS].b, s->status_code);
    enc_str(e, &c[COL_STATUS_MSG], s->status_message);
    put_uv(e, &c[COL_FLAGS].b, s->flags);
    enc_str(e, &c[COL_TRACE_STATE], s->trace_state);
    enc_str(e, &c[COL_SCOPE_NAME], s->scope_name);
    enc_str(e, &c[COL_SCOPE_VERSION], s->scope_version);
    enc_attrs(e, &c[COL_SPAN_SHAPE], s->attrs, s->nattrs);
    put_uv(e, &c[COL_DROPPED].b, s->dropped_attrs);
    put_uv(e, &c[COL_DROPPED].b, s->dropped_events);
    put_uv(e, &c[COL_DROPPED].b, s->dropped_links);

    put_uv(e, &c[COL_EV_COUNT].b, s->nevents);
    if (s->nevents > 0 && s->events == NULL) {
        enc_fail(e, SL_EINVAL);
        return;
    }
    for (uint32_t j = 0; j < s->nevents; j++) {
        const sl_event *ev = &s->events[j];
        put_uv(e, &c[COL_EV_TIME].b, enc_time(e, ev->ts_unix_nano) - start);
        enc_str(e, &c[COL_EV_NAME], ev->name);
        enc_attrs(e, &c[COL_EV_SHAPE], ev->attrs, ev->nattrs);
        put_uv(e, &c[COL_EV_DROPPED].b, ev->dropped_attrs);
    }
    put_uv(e, &c[COL_LK_COUNT].b, s->nlinks);
    if (s->nlinks > 0 && s->links == NULL) {
        enc_fail(e, SL_EINVAL);
        return;
    }
    for (uint32_t j = 0; j < s->nlinks; j++) {
        const sl_link *lk = &s->links[j];
        put_bytes(e, &c[COL_LK_IDS].b, lk->trace_id, 16);
        put_bytes(e, &c[COL_LK_IDS].b, lk->span_id, 8);
        enc_str(e, &c[COL_LK_TRACE_STATE], lk->trace_state);
        put_uv(e, &c[COL_LK_FLAGS].b, lk->flags);
        enc_attrs(e, &c[COL_LK_SHAPE], lk->attrs, lk->nattrs);
        put_uv(e, &c[COL_LK_DROPPED].b, lk->dropped_attrs);
    }
}

static void enc_reset(enc *e) {
    e->err = 0;
    for (size_t i = 0; i < COL_COUNT; i++) {
        e->col[i].b.len = 0;
        e->col[i].last = 0;
        e->col[i].dict_lens.len = 0;
        e->col[i].dict_bytes.len = 0;
        e->col[i].nnew = 0;
    }
    e->payload.len = 0;
    e->zbuf.len = 0;
    e->nvcol = 0;
    e->nshapes = 0;
    e->nitems = 0;
    e->nres = 0;
    e->nrptrs = 0;
    e->unit = 1;
    e->unit_exp = 0;
    memset(e->kcache, 0, sizeof(e->kcache));
    ht_clear(&e->stab);
    ht_clear(&e->shtab);
    ht_clear(&e->rtab);
    ht_clear(&e->ptab);
    /* gid 0 is the empty string; its keycol entry serves the empty key. */
    e->nstrs = 0;
    if (sl_array_grow(&e->strs, &e->strs_cap, 1, sizeof(str_ent)) != 0 ||
        sl_array_grow(&e->keycol, &e->keycol_cap, 1, sizeof(uint32_t)) != 0) {
        enc_fail(e, SL_ENOMEM);
        return;
    }
    e->strs[0] = (str_ent){0, "", 0};
    e->keycol[0] = 0;
    e->nstrs = 1;
}

/* Notes the end of the payload so far as a zstd block boundary when enough
 * bytes have gathered since the previous one. */
static void enc_seg(enc *e, bool last) {
    size_t prev = e->nseg == 0 ? 0 : e->seg[e->nseg - 1];
    if (!last && e->payload.len - prev < BLK_SEG_MIN) {
        return;
    }
    if (sl_array_grow(&e->seg, &e->seg_cap, e->nseg + 1, sizeof(size_t)) != 0) {
        enc_fail(e, SL_ENOMEM);
        return;
    }
    e->seg[e->nseg++] = e->payload.len;
}

/* Builds the raw payload in e->payload from the columns, with the column
 * boundaries at which compression may start a fresh zstd block. */
static void enc_payload(enc *e) {
    ecol *c = e->col;
    put_uv(e, &c[COL_COUNTS].b, e->nstrs - 1);
    put_uv(e, &c[COL_COUNTS].b, e->nshapes);
    put_uv(e, &c[COL_COUNTS].b, e->nres);
    put_uv(e, &c[COL_COUNTS].b, e->nvcol);
    put_uv(e, &c[COL_COUNTS].b, e->unit_exp);
    size_t vtotal = 0, dtotal = 0;
    for (size_t k = 0; k < e->nvcol; k++) {
        put_uv(e, &c[COL_VAL_LENS].b, e->vcol[k].b.len);
        vtotal += e->vcol[k].b.len;
    }
    /* Dictionary sections: each column's new strings, span columns first,
     * then value columns; a count and the lengths in DICT_LENS. */
    for (size_t k = 0; k < COL_COUNT + e->nvcol; k++) {
        const ecol *sc = k < COL_COUNT ? &c[k] : &e->vcol[k - COL_COUNT];
        put_uv(e, &c[COL_DICT_LENS].b, sc->nnew);
        put_bytes(e, &c[COL_DICT_LENS].b, sc->dict_lens.data, sc->dict_lens.len);
        dtotal += sc->dict_bytes.len;
    }
    size_t total = vtotal + dtotal + 20;
    for (size_t k = 0; k < COL_VAL_DATA; k++) {
        total += c[k].b.len + 10;
    }
    e->nseg = 0;
    if (e->err != 0 || !buf_room(e, &e->payload, total)) {
        return;
    }
    for (size_t k = 0; k < COL_VAL_DATA; k++) {
        if (k == COL_DICT_BYTES) {
            /* The sections' bytes, each a run of similar strings (request
             * ids, URLs, statements): zstd may end a block after each. */
            put_uv(e, &e->payload, dtotal);
            for (size_t j = 0; j < COL_COUNT + e->nvcol; j++) {
                const ecol *sc = j < COL_COUNT ? &c[j] : &e->vcol[j - COL_COUNT];
                put_bytes(e, &e->payload, sc->dict_bytes.data, sc->dict_bytes.len);
                enc_seg(e, false);
            }
            continue;
        }
        put_uv(e, &e->payload, c[k].b.len);
        put_bytes(e, &e->payload, c[k].b.data, c[k].b.len);
        enc_seg(e, false);
    }
    put_uv(e, &e->payload, vtotal);
    for (size_t k = 0; k < e->nvcol; k++) {
        put_bytes(e, &e->payload, e->vcol[k].b.data, e->vcol[k].b.len);
        enc_seg(e, false);
    }
    if (e->nseg == 0 || e->seg[e->nseg - 1] != e->payload.len) {
        enc_seg(e, true);
    }
}

/* Compresses the payload into e->zbuf as one zstd frame, ending a zstd
 * block at each segment boundary so that every group of columns gets its
 * own entropy tables (one shared stream mixes their statistics and costs
 * about a tenth more). Returns 0, 1 when the result would not be smaller
 * than the payload, or SL_ENOMEM. */
static int enc_compress(enc *e, ZSTD_CCtx *cctx, int level) {
    size_t raw_size = e->payload.len;
    int rc = sl_buf_reserve(&e->zbuf, raw_size);
    if (rc != 0) {
        return rc;
    }
    if (ZSTD_isError(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, raw_size))) {
        return SL_ENOMEM;
    }
    size_t cap = raw_size > 0 ? raw_size - 1 : 0;
    if (e->nseg <= 1) {
        /* Small payloads: one-shot is cheaper than setting up a stream. */
        size_t zn = ZSTD_compress2(cctx, e->zbuf.data, cap, e->payload.data, raw_size);
        if (ZSTD_isError(zn)) {
            return ZSTD_getErrorCode(zn) == ZSTD_error_dstSize_tooSmall ? 1 : SL_ENOMEM;
        }
        e->zbuf.len = zn;
        return 0;
    }
    ZSTD_outBuffer ob = {e->zbuf.data, cap, 0};
    size_t from = 0;
    for (size_t k = 0; k < e->nseg; k++) {
        ZSTD_inBuffer ib = {e->payload.data + from, e->seg[k] - from, 0};
        ZSTD_EndDirective mode = k + 1 == e->nseg ? ZSTD_e_end : ZSTD_e_flush;
        size_t left;
        do {
            left = ZSTD_compressStream2(cctx, &ob, &ib, mode);
            if (ZSTD_isError(left)) {
                return ZSTD_getErrorCode(left) == ZSTD_error_dstSize_tooSmall ? 1 : SL_ENOMEM;
            }
            if (left != 0 && ob.pos == ob.size) {
                return 1;
            }
        } while (left != 0);
        from = e->seg[k];
    }
    e->zbuf.len = ob.pos;
    return 0;
}

int stg_block_encode(const sl_span *const *spans, size_t n, int level, sl_buf *out) {
    assert(out != NULL);
    assert(n == 0 || spans != NULL);
    size_t out_len0 = out->len;
    int rc = 0;
    codec_tls *t = tls_get();
    if (t == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    enc *e = &t->e;
    enc_reset(e);
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() || n > BLK_MAX_RAW / 8) {
        rc = level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() ? SL_EINVAL : SL_ETOOBIG;
        goto out;
    }
    if (sl_array_grow(&e->span_res, &e->span_res_cap, n, sizeof(uint32_t)) != 0 ||
        sl_array_grow(&e->span_end, &e->span_end_cap, n, sizeof(uint64_t)) != 0 ||
        sl_array_grow(&e->last_child, &e->last_child_cap, n, sizeof(uint32_t)) != 0) {
        rc = SL_ENOMEM;
        goto out;
    }

    /* Pass one: resources, so that their strings and shapes come first, and
     * the coarsest decimal time unit (µs-precision sources are common). */
    e->unit = 1000000000u;
    e->unit_exp = 9;
    for (size_t i = 0; i < n && e->err == 0; i++) {
        const sl_span *s = spans[i];
        if (e->unit > 1) {
            enc_unit_fit(e, s->start_unix_nano);
            enc_unit_fit(e, s->end_unix_nano);
            for (uint32_t j = 0; j < s->nevents && s->events != NULL; j++) {
                enc_unit_fit(e, s->events[j].ts_unix_nano);
            }
        }
        const sl_resource *r = s->resource;
        if (r == NULL) {
            e->span_res[i] = 0;
        } else if (i > 0 && r == spans[i - 1]->resource) {
            e->span_res[i] = e->span_res[i - 1];
        } else {
            e->span_res[i] = enc_resource(e, r);
        }
    }

    /* Pass two: spans, cutting trace-id runs as they change. */
    size_t run_start = 0;
    uint64_t prev_start = 0;
    for (size_t i = 0; i < n && e->err == 0; i++) {
        const sl_span *s = spans[i];
        if (i == 0 || memcmp(s->trace_id, spans[i - 1]->trace_id, 16) != 0) {
            if (i > 0) {
                put_uv(e, &e->col[COL_TRACE_RUNS].b, i - run_start);
            }
            put_bytes(e, &e->col[COL_TRACE_IDS].b, s->trace_id, 16);
            run_start = i;
        }
        enc_span(e, spans, i, run_start, prev_start);
        prev_start = s->start_unix_nano;
    }
    if (n > 0) {
        put_uv(e, &e->col[COL_TRACE_RUNS].b, n - run_start);
    }
    enc_payload(e);
    if (e->err != 0) {
        rc = e->err;
        goto out;
    }
    if (e->payload.len > BLK_MAX_RAW) {
        rc = SL_ETOOBIG;
        goto out;
    }

    const uint8_t *body = e->payload.data;
    size_t raw_size = e->payload.len, body_size = raw_size;
    uint8_t flags = 0;
    if (t->cctx == NULL && (t->cctx = ZSTD_createCCtx()) == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    rc = enc_compress(e, t->cctx, level);
    if (rc < 0) {
        goto out;
    }
    if (rc == 0) {
        body = e->zbuf.data;
        body_size = e->zbuf.len;
        flags = BLK_FLAG_ZSTD;
    }

    uint8_t hdr[BLK_FIXED_HDR + 30];
    memcpy(hdr, BLK_MAGIC, 4);
    hdr[4] = BLK_VERSION;
    hdr[5] = flags;
    uint32_t sum = (uint32_t)blk_xxh64(e->payload.data, raw_size);
    for (int k = 0; k < 4; k++) {
        hdr[6 + k] = (uint8_t)(sum >> (8 * k));
    }
    size_t hlen = BLK_FIXED_HDR;
    uint64_t vals[3] = {n, raw_size, body_size};
    for (int k = 0; k < 3; k++) {
        uint64_t v = vals[k];
        while (v >= 0x80) {
            hdr[hlen++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        hdr[hlen++] = (uint8_t)v;
    }
    if ((rc = sl_buf_reserve(out, hlen + body_size)) != 0) {
        goto out;
    }
    memcpy(out->data + out->len, hdr, hlen);
    memcpy(out->data + out->len + hlen, body, body_size);
    out->len += hlen + body_size;

out:
    if (rc != 0) {
        out->len = out_len0;
    }
    if (t != NULL && enc_footprint(&t->e) > BLK_TRIM_SIZE) {
        enc_free(&t->e);
    }
    return rc;
}

/* ---- decoder -------------------------------------------------------------- */

typedef struct dec {
    int err; /* sticky: first failure; reads after it yield 0 */
    unsigned ver;
    sl_arena *a;
    rd col[COL_COUNT];
    const sl_str *dict; /* [0] is "", then 1..ndict (version 2: section by section) */
    uint32_t *gmap;     /* string id -> dict index (the identity in version 1) */
    uint32_t ndict;
    uint32_t next_new;       /* id the next REF_NEW string gets */
    uint64_t *tstart, *tend; /* version 2: times of the spans so far, in time units */
    uint32_t *last_child;
    uint32_t *shape_off, *shape_len, *items;
    uint32_t nshapes, max_shapes;
    size_t nitems, max_items;
    rd *vcol;
    sl_str *vkey;
    uint32_t nvcol, max_vcol;
    uint32_t nres;
    size_t attr_budget; /* attribute values left: each takes >= 1 byte */
    size_t ev_budget;   /* events left: each takes >= 1 byte of COL_EV_TIME */
    size_t lk_budget;   /* links left: each takes 24 bytes of COL_LK_IDS */
    uint64_t unit;      /* the block's time unit in ns */
    uint64_t prev_q;    /* previous span's start, in units */
} dec;

static const uint8_t zero_bytes[24];
static const char empty_str[] = "";

static inline void dec_fail(dec *d, int rc) {
    if (d->err == 0) {
        d->err = rc;
    }
}

static uint64_t rd_uv_slow(dec *d, rd *r) {
    uint64_t v = 0;
    const uint8_t *p = r->p;
    for (unsigned shift = 0; shift < 64 && p < r->end; shift += 7) {
        uint8_t b = *p++;
        if (shift == 63 && b > 1) {
            break; /* more than 64 bits */
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            r->p = p;
            return v;
        }
    }
    dec_fail(d, SL_ECORRUPT);
    r->p = r->end;
    return 0;
}

static inline uint64_t rd_uv(dec *d, rd *r) {
    if (r->p < r->end && *r->p < 0x80) {
        return *r->p++;
    }
    return rd_uv_slow(d, r);
}

static inline uint32_t rd_u32(dec *d, rd *r) {
    uint64_t v = rd_uv(d, r);
    if (v > UINT32_MAX) {
        dec_fail(d, SL_ECORRUPT);
        return 0;
    }
    return (uint32_t)v;
}

static inline uint8_t rd_u8(dec *d, rd *r) {
    if (r->p < r->end) {
        return *r->p++;
    }
    dec_fail(d, SL_ECORRUPT);
    return 0;
}

/* Returns len (<= 24) bytes, or zeros after a failure. */
static inline const uint8_t *rd_fixed(dec *d, rd *r, size_t len) {
    if ((size_t)(r->end - r->p) >= len) {
        const uint8_t *p = r->p;
        r->p += len;
        return p;
    }
    dec_fail(d, SL_ECORRUPT);
    r->p = r->end;
    return zero_bytes;
}

static inline size_t rd_left(const rd *r) {
    return (size_t)(r->end - r->p);
}

static inline sl_str rd_str(dec *d, rd *r) {
    uint64_t c = rd_uv(d, r);
    uint32_t gid;
    if (c == REF_EMPTY) {
        gid = 0;
    } else if (c == REF_NEW) {
        if (d->next_new > d->ndict) {
            dec_fail(d, SL_ECORRUPT);
            return d->dict[0];
        }
        gid = d->next_new++;
        if (d->ver >= 2) {
            /* The next string of this column's own section. */
            if (r->dnext >= r->dend) {
                dec_fail(d, SL_ECORRUPT);
                return d->dict[0];
            }
            d->gmap[gid] = r->dnext++;
        }
    } else if (c == REF_REPEAT) {
        gid = r->last;
    } else if (c - 2 < d->next_new) {
        gid = (uint32_t)(c - 2);
    } else {
        dec_fail(d, SL_ECORRUPT);
        return d->dict[0];
    }
    r->last = gid;
    return d->dict[d->gmap[gid]];
}

static void *dec_alloc(dec *d, size_t n, size_t size) {
    void *p = sl_arena_alloc(d->a, n * size); /* n * size is bounded by the caller */
    if (p == NULL) {
        dec_fail(d, SL_ENOMEM);
    }
    return p;
}

/* Reads a shape definition from COL_SHAPES. Returns the shape id or
 * UINT32_MAX (d->err set). */
static uint32_t dec_shape_def(dec *d) {
    rd *sh = &d->col[COL_SHAPES];
    uint64_t k = rd_uv(d, sh);
    if (d->err != 0 || k == 0 || k > rd_left(sh) / 2 || d->nshapes >= d->max_shapes ||
        k > d->max_items - d->nitems) {
        dec_fail(d, SL_ECORRUPT);
        return UINT32_MAX;
    }
    uint32_t *def = &d->items[d->nitems];
    for (uint64_t j = 0; j < k; j++) {
        uint64_t cc = rd_uv(d, sh);
        uint32_t col;
        if (cc == 0) {
            if (d->nvcol >= d->max_vcol) {
                dec_fail(d, SL_ECORRUPT);
                return UINT32_MAX;
            }
            d->vkey[d->nvcol] = rd_str(d, sh);
            col = d->nvcol++;
        } else if (cc - 1 < d->nvcol) {
            col = (uint32_t)(cc - 1);
        } else {
            dec_fail(d, SL_ECORRUPT);
            return UINT32_MAX;
        }
        uint8_t type = rd_u8(d, sh);
        if (type > SL_VAL_BYTES || d->err != 0) {
            dec_fail(d, SL_ECORRUPT);
            return UINT32_MAX;
        }
        def[j] = col << 3 | type;
    }
    uint32_t sid = d->nshapes++;
    d->shape_off[sid] = (uint32_t)d->nitems;
    d->shape_len[sid] = (uint32_t)k;
    d->nitems += k;
    return sid;
}

static inline void dec_value(dec *d, rd *r, sl_value *v) {
    switch (v->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        v->v.s = rd_str(d, r);
        break;
    case SL_VAL_INT:
        v->v.i = sl_unzigzag(rd_uv(d, r));
        break;
    case SL_VAL_BOOL: {
        int64_t b = sl_unzigzag(rd_uv(d, r));
        if (b < INT_MIN || b > INT_MAX) {
            dec_fail(d, SL_ECORRUPT);
            b = 0;
        }
        v->v.b = (int)b;
        break;
    }
    case SL_VAL_DOUBLE: {
        uint64_t code = d->ver >= 2 ? rd_uv(d, r) : DBL_RAW;
        if (code == DBL_RAW) {
            uint64_t bits = load_le64(rd_fixed(d, r, 8));
            memcpy(&v->v.d, &bits, 8);
        } else {
            uint64_t m = (code - 1) >> 4;
            unsigned k = (unsigned)((code - 1) & 15);
            int64_t mi = sl_unzigzag(m);
            /* The encoder never writes |m| >= 2^53; refuse it as corrupt. */
            if (k > DBL_MAX_EXP || mi <= -(int64_t)(1ll << 53) || mi >= (int64_t)(1ll << 53)) {
                dec_fail(d, SL_ECORRUPT);
                mi = 0;
                k = 0;
            }
            v->v.d = dbl_from_decimal(mi, k);
        }
        break;
    }
    default:
        if (rd_u8(d, r) != 0) {
            dec_fail(d, SL_ECORRUPT);
        }
        break;
    }
}

/* Reads an attribute list whose shape reference is in refcol. */
static void dec_attrs(dec *d, rd *refcol, sl_attr **out, uint32_t *nout) {
    *out = NULL;
    *nout = 0;
    uint64_t c = rd_uv(d, refcol);
    if (c == REF_EMPTY || d->err != 0) {
        return;
    }
    uint32_t sid;
    if (c == REF_NEW) {
        sid = dec_shape_def(d);
        if (sid == UINT32_MAX) {
            return;
        }
    } else if (c - 2 < d->nshapes) {
        sid = (uint32_t)(c - 2);
    } else {
        dec_fail(d, SL_ECORRUPT);
        return;
    }
    uint32_t k = d->shape_len[sid];
    if (k > d->attr_budget) {
        dec_fail(d, SL_ECORRUPT);
        return;
    }
    d->attr_budget -= k;
    sl_attr *attrs = dec_alloc(d, k, sizeof(sl_attr));
    if (attrs == NULL) {
        return;
    }
    const uint32_t *it = &d->items[d->shape_off[sid]];
    for (uint32_t j = 0; j < k; j++) {
        uint32_t col = it[j] >> 3;
        sl_attr *at = &attrs[j];
        at->key = d->vkey[col];
        memset(&at->val, 0, sizeof(at->val));
        at->val.type = (uint8_t)(it[j] & 7);
        dec_value(d, &d->vcol[col], &at->val);
    }
    *out = attrs;
    *nout = k;
}

static void dec_span(dec *d, sl_span *spans, size_t i, size_t run_start, const sl_resource *res,
                     uint32_t nres) {
    rd *c = d->col;
    sl_span *s = &spans[i];

    memcpy(s->span_id, rd_fixed(d, &c[COL_SPAN_IDS], 8), 8);
    uint64_t pc = rd_uv(d, &c[COL_PARENT]);
    size_t parent = SIZE_MAX;
    if (pc == PARENT_RAW) {
        memcpy(s->parent_span_id, rd_fixed(d, &c[COL_PARENT_RAW], 8), 8);
    } else if (pc != PARENT_NONE) {
        if (pc - 1 > i - run_start) {
            dec_fail(d, SL_ECORRUPT);
            return;
        }
        parent = i - (pc - 1);
        memcpy(s->parent_span_id, spans[parent].span_id, 8);
    }
    /* Unsigned arithmetic wraps, so every uint64 round-trips exactly. */
    uint64_t start, end;
    if (d->ver >= 2) {
        uint64_t pred = time_pred(d->tend, d->last_child, i, parent, d->prev_q,
                                  parent != SIZE_MAX ? d->tstart[parent] : 0);
        start = pred + unzz(rd_uv(d, &c[COL_START]));
    } else {
        start = d->prev_q + unzz(rd_uv(d, &c[COL_START]));
    }
    end = start + rd_uv(d, &c[COL_DUR]);
    d->prev_q = start;
    s->start_unix_nano = start * d->unit;
    s->end_unix_nano = end * d->unit;
    if (d->ver >= 2) {
        d->tstart[i] = start;
        d->tend[i] = end;
    }
    uint64_t rr = rd_uv(d, &c[COL_RES_REF]);
    if (rr > nres) {
        dec_fail(d, SL_ECORRUPT);
        return;
    }
    s->resource = rr == 0 ? NULL : &res[rr - 1];
    s->name = rd_str(d, &c[COL_NAME]);
    s->kind = rd_u8(d, &c[COL_KIND]);
    s->status_code = rd_u8(d, &c[COL_STATUS]);
    s->status_message = rd_str(d, &c[COL_STATUS_MSG]);
    s->flags = rd_u32(d, &c[COL_FLAGS]);
    s->trace_state = rd_str(d, &c[COL_TRACE_STATE]);
    s->scope_name = rd_str(d, &c[COL_SCOPE_NAME]);
    s->scope_version = rd_str(d, &c[COL_SCOPE_VERSION]);
    dec_attrs(d, &c[COL_SPAN_SHAPE], &s->attrs, &s->nattrs);
    s->dropped_attrs = rd_u32(d, &c[COL_DROPPED]);
    s->dropped_events = rd_u32(d, &c[COL_DROPPED]);
    s->dropped_links = rd_u32(d, &c[COL_DROPPED]);

    uint32_t ne = rd_u32(d, &c[COL_EV_COUNT]);
    if (ne > 0 && d->err == 0) {
        if (ne > d->ev_budget) {
            dec_fail(d, SL_ECORRUPT);
            return;
        }
        d->ev_budget -= ne;
        s->events = dec_alloc(d, ne, sizeof(sl_event));
        if (s->events == NULL) {
            return;
        }
        memset(s->events, 0, ne * sizeof(sl_event));
        s->nevents = ne;
        for (uint32_t j = 0; j < ne && d->err == 0; j++) {
            sl_event *ev = &s->events[j];
            ev->ts_unix_nano = (start + rd_uv(d, &c[COL_EV_TIME])) * d->unit;
            ev->name = rd_str(d, &c[COL_EV_NAME]);
            dec_attrs(d, &c[COL_EV_SHAPE], &ev->attrs, &ev->nattrs);
            ev->dropped_attrs = rd_u32(d, &c[COL_EV_DROPPED]);
        }
    }
    uint32_t nl = rd_u32(d, &c[COL_LK_COUNT]);
    if (nl > 0 && d->err == 0) {
        if (nl > d->lk_budget) {
            dec_fail(d, SL_ECORRUPT);
            return;
        }
        d->lk_budget -= nl;
        s->links = dec_alloc(d, nl, sizeof(sl_link));
        if (s->links == NULL) {
            return;
        }
        memset(s->links, 0, nl * sizeof(sl_link));
        s->nlinks = nl;
        for (uint32_t j = 0; j < nl && d->err == 0; j++) {
            sl_link *lk = &s->links[j];
            const uint8_t *ids = rd_fixed(d, &c[COL_LK_IDS], 24);
            memcpy(lk->trace_id, ids, 16);
            memcpy(lk->span_id, ids + 16, 8);
            lk->trace_state = rd_str(d, &c[COL_LK_TRACE_STATE]);
            lk->flags = rd_u32(d, &c[COL_LK_FLAGS]);
            dec_attrs(d, &c[COL_LK_SHAPE], &lk->attrs, &lk->nattrs);
            lk->dropped_attrs = rd_u32(d, &c[COL_LK_DROPPED]);
        }
    }
}

/* Splits the raw payload into columns and reads the counts, the dictionary
 * and the value-column table into scratch. */
static int dec_setup(dec *d, dec_scratch *ds, const uint8_t *raw, size_t raw_size, size_t n) {
    rd r = {raw, raw + raw_size, 0, 0, 0};
    for (size_t k = 0; k < COL_COUNT; k++) {
        uint64_t len = rd_uv(d, &r);
        if (d->err != 0 || len > rd_left(&r)) {
            return SL_ECORRUPT;
        }
        d->col[k] = (rd){r.p, r.p + len, 0, 0, 0};
        r.p += len;
    }
    /* Columns with a fixed size per span bound n before anything is
     * allocated for it: a span costs at least 26 raw bytes. */
    if (rd_left(&r) != 0 || rd_left(&d->col[COL_SPAN_IDS]) != 8 * n ||
        rd_left(&d->col[COL_KIND]) != n || rd_left(&d->col[COL_STATUS]) != n ||
        rd_left(&d->col[COL_DROPPED]) < 3 * n) {
        return SL_ECORRUPT;
    }
    rd *cnt = &d->col[COL_COUNTS];
    uint64_t nd = rd_uv(d, cnt), ns = rd_uv(d, cnt), nr = rd_uv(d, cnt), nv = rd_uv(d, cnt);
    uint64_t unit_exp = rd_uv(d, cnt);
    if (d->err != 0 || rd_left(cnt) != 0 || unit_exp > 9 || nd > rd_left(&d->col[COL_DICT_LENS]) ||
        ns > rd_left(&d->col[COL_SHAPES]) / 3 || nr > rd_left(&d->col[COL_RES]) / 3 ||
        nv > rd_left(&d->col[COL_VAL_LENS])) {
        return SL_ECORRUPT;
    }
    size_t max_items = rd_left(&d->col[COL_SHAPES]) / 2 + 1;
    if (sl_array_grow(&ds->dict, &ds->dict_cap, nd + 1, sizeof(sl_str)) != 0 ||
        sl_array_grow(&ds->gmap, &ds->gmap_cap, nd + 1, sizeof(uint32_t)) != 0 ||
        (d->ver >= 2 &&
         (sl_array_grow(&ds->times, &ds->times_cap, 2 * n + 1, sizeof(uint64_t)) != 0 ||
          sl_array_grow(&ds->last_child, &ds->last_child_cap, n + 1, sizeof(uint32_t)) != 0)) ||
        sl_array_grow(&ds->shape_off, &ds->shape_cap, ns + 1, sizeof(uint32_t)) != 0 ||
        sl_array_grow(&ds->shape_len, &ds->shape_len_cap, ns + 1, sizeof(uint32_t)) != 0 ||
        sl_array_grow(&ds->items, &ds->items_cap, max_items, sizeof(uint32_t)) != 0 ||
        sl_array_grow(&ds->vcol, &ds->vcol_cap, nv + 1, sizeof(rd)) != 0 ||
        sl_array_grow(&ds->vkey, &ds->vkey_cap, nv + 1, sizeof(sl_str)) != 0) {
        return SL_ENOMEM;
    }

    /* Value columns: slices of COL_VAL_DATA. */
    rd *vl = &d->col[COL_VAL_LENS];
    rd *vd = &d->col[COL_VAL_DATA];
    for (uint64_t k = 0; k < nv; k++) {
        uint64_t len = rd_uv(d, vl);
        if (d->err != 0 || len > rd_left(vd)) {
            return SL_ECORRUPT;
        }
        ds->vcol[k] = (rd){vd->p, vd->p + len, 0, 0, 0};
        vd->p += len;
    }
    if (rd_left(vl) != 0 || rd_left(vd) != 0) {
        return SL_ECORRUPT;
    }

    /* Dictionary: one arena copy of every string, each followed by a NUL.
     * Version 1 lists the strings in the order they are first referenced;
     * version 2 in sections, one per column (span columns, then value
     * columns), each a count and the lengths of its strings. */
    rd *lens = &d->col[COL_DICT_LENS];
    rd *bytes = &d->col[COL_DICT_BYTES];
    size_t total = rd_left(bytes);
    char *copy = sl_arena_alloc(d->a, total + nd + 1);
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    ds->dict[0] = (sl_str){empty_str, 0};
    ds->gmap[0] = 0;
    size_t off = 0;
    uint64_t g = 1;
    for (uint64_t sec = 0; sec < (d->ver >= 2 ? COL_COUNT + nv : 1); sec++) {
        uint64_t nsec = d->ver >= 2 ? rd_uv(d, lens) : nd;
        rd *owner = d->ver < 2 ? NULL : sec < COL_COUNT ? &d->col[sec] : &ds->vcol[sec - COL_COUNT];
        if (d->err != 0 || nsec > nd + 1 - g) {
            return SL_ECORRUPT;
        }
        if (owner != NULL) {
            owner->dnext = (uint32_t)g;
            owner->dend = (uint32_t)(g + nsec);
        }
        for (uint64_t j = 0; j < nsec; j++, g++) {
            uint64_t len = rd_uv(d, lens);
            if (d->err != 0 || len > total - off) {
                return SL_ECORRUPT;
            }
            char *p = copy + off + (g - 1);
            memcpy(p, bytes->p + off, len);
            p[len] = '\0';
            ds->dict[g] = (sl_str){p, len};
            ds->gmap[g] = (uint32_t)g;
            off += len;
        }
    }
    if (g != nd + 1 || off != total || rd_left(lens) != 0) {
        return SL_ECORRUPT;
    }
    bytes->p = bytes->end;

    d->dict = ds->dict;
    d->gmap = ds->gmap;
    d->tstart = ds->times;
    d->tend = ds->times != NULL ? ds->times + n : NULL;
    d->last_child = ds->last_child;
    d->ndict = (uint32_t)nd;
    d->next_new = 1;
    d->shape_off = ds->shape_off;
    d->shape_len = ds->shape_len;
    d->items = ds->items;
    d->max_shapes = (uint32_t)ns;
    d->max_items = max_items;
    d->vcol = ds->vcol;
    d->vkey = ds->vkey;
    d->max_vcol = (uint32_t)nv;
    d->nres = (uint32_t)nr;
    d->unit = 1;
    for (uint64_t k = 0; k < unit_exp; k++) {
        d->unit *= 10;
    }
    d->attr_budget = rd_left(&d->col[COL_VAL_DATA]);
    for (uint64_t k = 0; k < nv; k++) {
        d->attr_budget += rd_left(&ds->vcol[k]);
    }
    d->ev_budget = rd_left(&d->col[COL_EV_TIME]);
    d->lk_budget = rd_left(&d->col[COL_LK_IDS]) / 24;
    return 0;
}

/* Decodes resources and spans once dec_setup has run, then checks that
 * every column, shape, value column and dictionary string was used up. */
static int dec_body(dec *d, size_t n, sl_span **out) {
    rd *c = d->col;
    sl_resource *res = NULL;
    sl_span *spans = NULL;
    if (d->nres > 0) {
        res = dec_alloc(d, d->nres, sizeof(sl_resource));
        for (uint32_t i = 0; i < d->nres && d->err == 0; i++) {
            res[i].service = rd_str(d, &c[COL_RES]);
            dec_attrs(d, &c[COL_RES], &res[i].attrs, &res[i].nattrs);
            res[i].dropped_attrs = rd_u32(d, &c[COL_RES]);
        }
    }
    if (n > 0 && d->err == 0) {
        spans = dec_alloc(d, n, sizeof(sl_span));
        if (spans != NULL) {
            memset(spans, 0, n * sizeof(sl_span));
        }
    }
    size_t run_start = 0, run_left = 0;
    const uint8_t *tid = zero_bytes;
    for (size_t i = 0; spans != NULL && i < n && d->err == 0; i++) {
        if (run_left == 0) {
            uint64_t len = rd_uv(d, &c[COL_TRACE_RUNS]);
            if (len == 0 || len > n - i) {
                dec_fail(d, SL_ECORRUPT);
                break;
            }
            run_left = (size_t)len;
            run_start = i;
            tid = rd_fixed(d, &c[COL_TRACE_IDS], 16);
        }
        memcpy(spans[i].trace_id, tid, 16);
        run_left--;
        dec_span(d, spans, i, run_start, res, d->nres);
    }
    if (d->err != 0) {
        return d->err;
    }
    for (size_t k = 0; k < COL_COUNT; k++) {
        if (rd_left(&c[k]) != 0) {
            return SL_ECORRUPT;
        }
    }
    for (uint32_t k = 0; k < d->max_vcol; k++) {
        if (rd_left(&d->vcol[k]) != 0 || d->vcol[k].dnext != d->vcol[k].dend) {
            return SL_ECORRUPT;
        }
    }
    for (size_t k = 0; k < COL_COUNT; k++) {
        if (c[k].dnext != c[k].dend) {
            return SL_ECORRUPT; /* a section with unreferenced strings */
        }
    }
    if (d->nvcol != d->max_vcol || d->nshapes != d->max_shapes || d->next_new != d->ndict + 1) {
        return SL_ECORRUPT;
    }
    *out = spans;
    return 0;
}

/* Checks a block's header and checksum and yields its raw payload (in the
 * thread's scratch when the body is compressed) and span count. */
static int dec_raw(const uint8_t *data, size_t size, codec_tls *t, const uint8_t **raw_out,
                   size_t *raw_size_out, uint64_t *nspans_out, unsigned *ver_out) {
    dec d;
    memset(&d, 0, sizeof(d));
    if (size < BLK_FIXED_HDR || memcmp(data, BLK_MAGIC, 4) != 0 || data[4] < 1 ||
        data[4] > BLK_VERSION || (data[5] & ~BLK_FLAG_ZSTD) != 0) {
        return SL_ECORRUPT;
    }
    uint32_t sum = load_le32(data + 6);
    rd h = {data + BLK_FIXED_HDR, data + size, 0, 0, 0};
    uint64_t nspans = rd_uv(&d, &h), raw_size = rd_uv(&d, &h), body_size = rd_uv(&d, &h);
    if (d.err != 0 || body_size != rd_left(&h) || raw_size > BLK_MAX_RAW || nspans > raw_size / 8) {
        return SL_ECORRUPT;
    }
    const uint8_t *raw = h.p;
    if (data[5] & BLK_FLAG_ZSTD) {
        if (ZSTD_getFrameContentSize(h.p, body_size) != raw_size ||
            ZSTD_findFrameCompressedSize(h.p, body_size) != body_size) {
            return SL_ECORRUPT;
        }
        if (sl_array_grow(&t->ds.raw, &t->ds.raw_cap, raw_size + 1, 1) != 0 ||
            (t->dctx == NULL && (t->dctx = ZSTD_createDCtx()) == NULL)) {
            return SL_ENOMEM;
        }
        size_t got = ZSTD_decompressDCtx(t->dctx, t->ds.raw, raw_size, h.p, body_size);
        if (ZSTD_isError(got) || got != raw_size) {
            return SL_ECORRUPT;
        }
        raw = t->ds.raw;
    } else if (body_size != raw_size) {
        return SL_ECORRUPT;
    }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Fuzz builds skip the checksum (as zstd's do) so that mutations reach
     * the column parser; every other check stays. */
    if ((uint32_t)blk_xxh64(raw, raw_size) != sum) {
        return SL_ECORRUPT;
    }
#else
    (void)sum;
#endif
    *raw_out = raw;
    *raw_size_out = (size_t)raw_size;
    *nspans_out = nspans;
    *ver_out = data[4];
    return 0;
}

int stg_block_decode(const uint8_t *data, size_t size, sl_arena *a, sl_span **spans, size_t *n) {
    assert(a != NULL && spans != NULL && n != NULL);
    assert(data != NULL || size == 0);
    int rc = SL_ECORRUPT;
    dec d;
    memset(&d, 0, sizeof(d));
    d.a = a;
    const uint8_t *raw = NULL;
    size_t raw_size = 0;
    uint64_t nspans = 0;
    codec_tls *t = tls_get();
    if (t == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    if ((rc = dec_raw(data, size, t, &raw, &raw_size, &nspans, &d.ver)) != 0) {
        goto out;
    }
    if ((rc = dec_setup(&d, &t->ds, raw, raw_size, nspans)) != 0) {
        goto out;
    }
    sl_span *res_spans = NULL;
    if ((rc = dec_body(&d, nspans, &res_spans)) != 0) {
        goto out;
    }
    *spans = res_spans;
    *n = nspans;

out:
    if (t != NULL && dec_footprint(&t->ds) > BLK_TRIM_SIZE) {
        dec_scratch_free(&t->ds);
    }
    return rc;
}

static const char *const col_names[COL_COUNT] = {
    "counts",    "dict_lens",      "dict_bytes", "shapes",        "val_lens",   "res",
    "trace_ids", "trace_runs",     "span_ids",   "parent",        "parent_raw", "start",
    "dur",       "res_ref",        "name",       "kind",          "status",     "status_msg",
    "flags",     "trace_state",    "scope_name", "scope_version", "span_shape", "dropped",
    "ev_count",  "ev_time",        "ev_name",    "ev_shape",      "ev_dropped", "lk_count",
    "lk_ids",    "lk_trace_state", "lk_flags",   "lk_shape",      "lk_dropped", "val_data",
};

int stg_block_columns(const uint8_t *data, size_t size, stg_block_column_fn fn, void *ctx) {
    assert(fn != NULL);
    const uint8_t *raw = NULL;
    size_t raw_size = 0;
    uint64_t nspans = 0;
    codec_tls *t = tls_get();
    if (t == NULL) {
        return SL_ENOMEM;
    }
    unsigned ver;
    int rc = dec_raw(data, size, t, &raw, &raw_size, &nspans, &ver);
    if (rc != 0) {
        return rc;
    }
    dec d;
    memset(&d, 0, sizeof(d));
    rd r = {raw, raw + raw_size, 0, 0, 0};
    rd cols[COL_COUNT];
    for (size_t k = 0; k < COL_COUNT; k++) {
        uint64_t len = rd_uv(&d, &r);
        if (d.err != 0 || len > rd_left(&r)) {
            return SL_ECORRUPT;
        }
        cols[k] = (rd){r.p, r.p + len, 0, 0, 0};
        r.p += len;
    }
    for (size_t k = 0; k < COL_VAL_DATA; k++) {
        fn(ctx, (int)k, col_names[k], cols[k].p, rd_left(&cols[k]));
    }
    rd *vl = &cols[COL_VAL_LENS];
    rd *vd = &cols[COL_VAL_DATA];
    for (int k = 0; rd_left(vl) > 0; k++) {
        uint64_t len = rd_uv(&d, vl);
        if (d.err != 0 || len > rd_left(vd)) {
            return SL_ECORRUPT;
        }
        fn(ctx, STG_BLOCK_VALUE_COLUMN + k, NULL, vd->p, (size_t)len);
        vd->p += len;
    }
    return 0;
}
