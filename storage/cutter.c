/*
 * The block cutter: turns a partition's WAL records into large blocks sorted
 * by trace id and start time, writes them with their index entries and deletes
 * the WAL records they cover, all in one LMDB transaction (so a crash leaves
 * either the WAL records or the blocks, never both or neither).
 *
 * The expensive part (decoding records, sorting, encoding, compressing,
 * building index entries) runs outside any write transaction, so the writer's
 * group commits are only held up for the short final transaction.
 * Runs on the store's background thread (or stg_maintain's caller).
 */
#include "block_codec.h"
#include "storage_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CUT_MAX_SPANS (128u * 1024u)  /* spans per pass; also bounds the pages one cut rewrites */
#define CUT_ARENA_MAX (1024ull << 20) /* memory for one pass */
#define BLOCK_SPANS 8192u             /* target spans per block */
#define ATTR_MAX_VALUE 256u           /* longer values are not indexed */

/* --- a small hash set of (key, value) string pairs ---------------------- */

typedef struct kv_entry {
    uint64_t hash;
    sl_str key;
    sl_str val; /* val.ptr == NULL: a key-only entry (distinct-value counter) */
    uint32_t count;
    int used;
} kv_entry;

typedef struct kv_set {
    kv_entry *slots;
    size_t cap; /* power of two */
    size_t len;
    uint32_t epoch; /* note_attr's memo is valid for entries of this epoch */
    /* Pair hashes of keys already over STG_LOWCARD_MAX: bloom-only. */
    uint64_t *hashes;
    size_t nhashes, hashes_cap;
} kv_set;

/* A fast 64-bit hash, eight bytes at a time (the cutter hashes every
 * attribute of every span, so byte-at-a-time FNV was a visible cost). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t len) {
    const uint8_t *b = p;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
        b += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len > 0) {
        memcpy(&w, b, len);
    }
    h = (h ^ w ^ ((uint64_t)len << 56)) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

uint64_t stg_pair_hash(sl_str key, sl_str value) {
    uint64_t h = hash_bytes(0x165667b19e3779f9ull, key.ptr, key.len);
    h = hash_bytes(h ^ 0xff, value.ptr, value.len);
    return h;
}

/* Filters are sized exactly (earlier ones were rounded up to a power of two,
 * 1.4 times the bits on average): a probe maps the high half of its 64-bit
 * hash onto [0, nbits) by a multiply instead of a mask. */
#define BLOOM_MAX_BITS (UINT32_MAX - 63u)

size_t stg_bloom_size(size_t n) {
    size_t nbits = n * STG_BLOOM_BITS_PER_VALUE;
    nbits = nbits < 512 ? 512 : nbits > BLOOM_MAX_BITS ? BLOOM_MAX_BITS : nbits;
    return (nbits + 63) / 64 * 8 + 1;
}

static inline size_t bloom_bit(uint64_t x, uint64_t nbits) {
    return (size_t)(((x >> 32) * nbits) >> 32);
}

/* The probes' step: all 64 bits count, since probes take the high half. */
static inline uint64_t bloom_step(uint64_t h) {
    return ((h ^ (h >> 31)) * 0x9e3779b97f4a7c15ull) | 1;
}

void stg_bloom_add(uint8_t *filter, size_t size, uint64_t h) {
    uint64_t h1 = h, h2 = bloom_step(h), nbits = (uint64_t)(size - 1) * 8;
    filter[size - 1] = STG_BLOOM_TAG;
    for (int i = 0; i < STG_BLOOM_PROBES; i++) {
        size_t bit = bloom_bit(h1 + (uint64_t)i * h2, nbits);
        filter[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
}

bool stg_bloom_maybe(const uint8_t *filter, size_t size, uint64_t h) {
    uint64_t h1 = h, h2 = (h >> 33) | 1;
    if (size >= 64 && (size & (size - 1)) == 0) {
        /* The older format: a power-of-two size, probed by masking. */
        uint64_t mask = (uint64_t)size * 8 - 1;
        for (int i = 0; i < STG_BLOOM_PROBES; i++) {
            size_t bit = (size_t)((h1 + (uint64_t)i * h2) & mask);
            if ((filter[bit / 8] & (1u << (bit % 8))) == 0) {
                return false;
            }
        }
        return true;
    }
    if (size < 9 || size % 8 != 1 || filter[size - 1] != STG_BLOOM_TAG) {
        return true;
    }
    uint64_t nbits = (uint64_t)(size - 1) * 8;
    h2 = bloom_step(h);
    for (int i = 0; i < STG_BLOOM_PROBES; i++) {
        size_t bit = bloom_bit(h1 + (uint64_t)i * h2, nbits);
        if ((filter[bit / 8] & (1u << (bit % 8))) == 0) {
            return false;
        }
    }
    return true;
}

static uint64_t kv_hash(sl_str k, sl_str v, bool key_only) {
    uint64_t h = hash_bytes(key_only ? 0x2545f4914f6cdd1dull : 0x165667b19e3779f9ull, k.ptr, k.len);
    return key_only ? h : hash_bytes(h, v.ptr, v.len);
}

static int kv_grow(kv_set *s) {
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    kv_entry *n = calloc(ncap, sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].used) {
            size_t j = s->slots[i].hash & (ncap - 1);
            while (n[j].used) {
                j = (j + 1) & (ncap - 1);
            }
            n[j] = s->slots[i];
        }
    }
    free(s->slots);
    s->slots = n;
    s->cap = ncap;
    return 0;
}

/* Adds (k, v) or the key-only entry for k; *added tells whether it was new.
 * Returns the entry or NULL when out of memory. */
static kv_entry *kv_add(kv_set *s, sl_str k, sl_str v, bool key_only, bool *added) {
    if ((s->len + 1) * 2 > s->cap && kv_grow(s) != 0) {
        return NULL;
    }
    uint64_t h = kv_hash(k, v, key_only);
    size_t j = h & (s->cap - 1);
    while (s->slots[j].used) {
        kv_entry *e = &s->slots[j];
        if (e->hash == h && sl_str_eq(e->key, k) && (key_only == (e->val.ptr == NULL)) &&
            (key_only || sl_str_eq(e->val, v))) {
            *added = false;
            return e;
        }
        j = (j + 1) & (s->cap - 1);
    }
    kv_entry *e = &s->slots[j];
    e->used = 1;
    e->hash = h;
    e->key = k;
    e->val = key_only ? (sl_str){NULL, 0} : v;
    e->count = 0;
    s->len++;
    *added = true;
    return e;
}

/* Looks up an entry without ever growing the table (safe while iterating). */
static kv_entry *kv_find(const kv_set *s, sl_str k, sl_str v, bool key_only) {
    if (s->cap == 0) {
        return NULL;
    }
    uint64_t h = kv_hash(k, v, key_only);
    for (size_t j = h & (s->cap - 1); s->slots[j].used; j = (j + 1) & (s->cap - 1)) {
        kv_entry *e = &s->slots[j];
        if (e->hash == h && sl_str_eq(e->key, k) && (key_only == (e->val.ptr == NULL)) &&
            (key_only || sl_str_eq(e->val, v))) {
            return e;
        }
    }
    return NULL;
}

static void kv_clear(kv_set *s) {
    if (s->slots != NULL) {
        memset(s->slots, 0, s->cap * sizeof(kv_entry));
    }
    s->len = 0;
    s->nhashes = 0;
    /* A new epoch (unique per thread: the memo is per thread) forgets the
     * memo without touching it. */
    static _Thread_local uint32_t next_epoch;
    s->epoch = ++next_epoch == 0 ? ++next_epoch : next_epoch;
}

/* --- index keys --------------------------------------------------------- */

/* svcop key: service \0 operation \0 kind, each part truncated so the key fits
 * LMDB's limit. Queries build the same truncated prefix; exact matching is done
 * on decoded spans. Returns the key length. */
size_t stg_svcop_key(sl_str service, sl_str op, int kind, uint8_t *buf) {
    size_t sl = service.len > 200 ? 200 : service.len;
    size_t ol = op.len > 260 ? 260 : op.len;
    size_t n = 0;
    if (sl > 0) {
        memcpy(buf, service.ptr, sl);
        n += sl;
    }
    buf[n++] = 0;
    if (ol > 0) {
        memcpy(buf + n, op.ptr, ol);
        n += ol;
    }
    buf[n++] = 0;
    if (kind >= 0) {
        buf[n++] = (uint8_t)kind;
    }
    return n;
}

/* attr key: key \0 value-text (or key \0 0xff for "not indexed here"). */
size_t stg_attr_key(sl_str key, sl_str val, bool highcard, uint8_t *buf) {
    size_t kl = key.len > 200 ? 200 : key.len;
    size_t n = 0;
    if (kl > 0) {
        memcpy(buf, key.ptr, kl);
        n += kl;
    }
    buf[n++] = 0;
    if (highcard) {
        buf[n++] = STG_HIGHCARD_MARK;
    } else if (val.len > 0) {
        memcpy(buf + n, val.ptr, val.len);
        n += val.len;
    }
    return n;
}

/* --- cutting ------------------------------------------------------------ */

static int cmp_span(const void *a, const void *b) {
    const sl_span *x = *(const sl_span *const *)a, *y = *(const sl_span *const *)b;
    int c = memcmp(x->trace_id, y->trace_id, 16);
    if (c != 0) {
        return c;
    }
    return x->start_unix_nano < y->start_unix_nano ? -1 : x->start_unix_nano > y->start_unix_nano;
}

typedef struct svcop_acc {
    sl_str service, op;
    int kind;
    uint32_t next_kind; /* another accumulator of the same (service, op); or none */
    stg_svcop_val v;
} svcop_acc;

#define NO_ACC UINT32_MAX

typedef struct cut_block {
    uint64_t id;
    sl_buf data; /* the encoded block */
    sl_buf idx;  /* its index entries, prepared for the write transaction */
    stg_block_meta meta;
    size_t first, count; /* range in the sorted span array */
} cut_block;

/* Index entries are prepared off the write transaction (in parallel, one
 * block per worker) as a list of puts: u8 database, u16 key size, key,
 * u32 value size, value. */
enum { IDX_TID, IDX_SVCOP, IDX_ATTR, IDX_BLOOM };

static int idx_emit(sl_buf *out, int db, const void *k, size_t klen, const void *v, size_t vlen) {
    uint16_t kl = (uint16_t)klen;
    uint32_t vl = (uint32_t)vlen;
    int rc = sl_buf_reserve(out, 1 + 2 + klen + 4 + vlen);
    if (rc == 0) {
        out->data[out->len++] = (uint8_t)db;
        memcpy(out->data + out->len, &kl, 2);
        memcpy(out->data + out->len + 2, k, klen);
        memcpy(out->data + out->len + 2 + klen, &vl, 4);
        memcpy(out->data + out->len + 6 + klen, v, vlen);
        out->len += 6 + klen + vlen;
    }
    return rc;
}

/* Replays prepared entries into txn. */
static int idx_put(stg_partition *p, MDB_txn *txn, const sl_buf *idx) {
    const MDB_dbi dbis[] = {p->db_tid, p->db_svcop, p->db_attr, p->db_bloom};
    size_t off = 0;
    while (off < idx->len) {
        uint16_t kl;
        uint32_t vl;
        uint8_t db = idx->data[off];
        memcpy(&kl, idx->data + off + 1, 2);
        MDB_val k = {kl, idx->data + off + 3};
        memcpy(&vl, idx->data + off + 3 + kl, 4);
        MDB_val v = {vl, idx->data + off + 7 + kl};
        off += 7 + (size_t)kl + vl;
        int rc = mdb_put(txn, dbis[db], &k, &v, 0);
        if (rc != 0 && rc != MDB_KEYEXIST) {
            return rc;
        }
    }
    return 0;
}

/* Adds one attribute's (key, value-text) to the block's attribute set and
 * counts the key's distinct values in its key-only entry. A value too long to
 * be an LMDB key forces the key into the bloom filter. */
static int push_hash(kv_set *pairs, uint64_t h) {
    if (sl_array_grow(&pairs->hashes, &pairs->hashes_cap, pairs->nhashes + 1,
                      sizeof(*pairs->hashes)) != 0) {
        return SL_ENOMEM;
    }
    pairs->hashes[pairs->nhashes++] = h;
    return 0;
}

static int note_attr(kv_set *pairs, sl_arena *a, const sl_attr *at) {
    /* Spans decoded from one WAL record share their strings, so most
     * attributes repeat an earlier one by identity (same key memory, same
     * value memory or scalar): remember recent ones and skip hashing them. */
    typedef struct {
        const char *key;
        uint64_t val;
        uint32_t key_len;
        uint32_t epoch;
        uint8_t type;
    } seen_ent;
    static _Thread_local seen_ent seen[4096];
    /* Keys known to be over STG_LOWCARD_MAX in this block (a key never goes
     * back under it), by identity. */
    typedef struct {
        const char *key;
        uint32_t key_len;
        uint32_t epoch;
    } hot_ent;
    static _Thread_local hot_ent hot[256];
    uint64_t raw = 0;
    switch (at->val.type) {
    case SL_VAL_INT:
    case SL_VAL_DOUBLE:
        memcpy(&raw, &at->val.v, sizeof(raw));
        break;
    case SL_VAL_BOOL:
        raw = (uint64_t)at->val.v.b;
        break;
    default:
        raw = (uint64_t)(uintptr_t)at->val.v.s.ptr ^ ((uint64_t)at->val.v.s.len << 48);
        break;
    }
    size_t slot = (((uintptr_t)at->key.ptr >> 3) ^ (raw * 0x9e3779b97f4a7c15ull >> 40)) & 4095;
    size_t hslot = ((uintptr_t)at->key.ptr >> 3) & 255;
    if (seen[slot].epoch == pairs->epoch && seen[slot].key == at->key.ptr &&
        seen[slot].key_len == at->key.len && seen[slot].val == raw &&
        seen[slot].type == at->val.type && at->key.len > 0) {
        return 0;
    }
    char tmp[64];
    sl_str v = stg_value_text(&at->val, tmp, sizeof(tmp));
    bool added;
    if (at->val.type == SL_VAL_EMPTY) {
        return 0;
    }
    /* A key known (by identity) to have many values here goes to the bloom
     * filter anyway: keep only the pair's hash, not a set entry. A key whose
     * memo slot was taken by another just takes the set path again. */
    bool is_hot = hot[hslot].epoch == pairs->epoch && hot[hslot].key == at->key.ptr &&
                  hot[hslot].key_len == at->key.len;
    if (is_hot) {
        if (push_hash(pairs, stg_pair_hash(at->key, v)) != 0) {
            return SL_ENOMEM;
        }
        seen[slot] =
            (seen_ent){at->key.ptr, raw, (uint32_t)at->key.len, pairs->epoch, at->val.type};
        return 0;
    }
    if (v.ptr == tmp) {
        char *c = sl_arena_memdup(a, tmp, v.len);
        if (c == NULL) {
            return SL_ENOMEM;
        }
        v.ptr = c;
    }
    kv_entry *e = kv_add(pairs, at->key, v, false, &added);
    if (e == NULL) {
        return SL_ENOMEM;
    }
    if (added) {
        kv_entry *k = kv_add(pairs, at->key, v, true, &added);
        if (k == NULL) {
            return SL_ENOMEM;
        }
        k->count = v.len > ATTR_MAX_VALUE ? UINT32_MAX / 2 : k->count + (k->count < UINT32_MAX / 2);
        if (k->count > STG_LOWCARD_MAX) {
            /* From now on its values only need their hash (see above); the
             * pairs already in the set are put in the filter at the end. */
            hot[hslot] = (hot_ent){at->key.ptr, (uint32_t)at->key.len, pairs->epoch};
        }
    }
    seen[slot] = (seen_ent){at->key.ptr, raw, (uint32_t)at->key.len, pairs->epoch, at->val.type};
    return 0;
}

static int note_synthetic(kv_set *pairs, sl_arena *a, const sl_span *sp) {
    sl_attr at;
    int rc = 0;
    if (sp->status_code == SL_STATUS_ERROR) {
        at = (sl_attr){SL_STR_LIT("error"), {.type = SL_VAL_STR, .v.s = SL_STR_LIT("true")}};
        rc |= note_attr(pairs, a, &at);
        at = (sl_attr){SL_STR_LIT("otel.status_code"),
                       {.type = SL_VAL_STR, .v.s = SL_STR_LIT("ERROR")}};
        rc |= note_attr(pairs, a, &at);
    } else if (sp->status_code == SL_STATUS_OK) {
        at = (sl_attr){SL_STR_LIT("otel.status_code"),
                       {.type = SL_VAL_STR, .v.s = SL_STR_LIT("OK")}};
        rc |= note_attr(pairs, a, &at);
    }
    if (sp->kind != SL_KIND_UNSPECIFIED) {
        at = (sl_attr){SL_STR_LIT("span.kind"),
                       {.type = SL_VAL_STR, .v.s = sl_str_c(stg_kind_name(sp->kind))}};
        rc |= note_attr(pairs, a, &at);
    }
    if (sp->status_message.len > 0) {
        at = (sl_attr){SL_STR_LIT("otel.status_description"),
                       {.type = SL_VAL_STR, .v.s = sp->status_message}};
        rc |= note_attr(pairs, a, &at);
    }
    return rc;
}

/* Writes one block's index entries into txn. */
static int prepare_block_index(cut_block *b, const sl_span *const *spans, kv_set *pairs,
                               sl_arena *a) {
    int rc = 0;
    uint8_t bid[8], key[STG_MAX_KEY + 16];
    stg_be64(bid, b->id);
    sl_buf *out = &b->idx;

    /* trace id -> block (spans are sorted by trace: one put per run) */
    for (size_t i = b->first; i < b->first + b->count; i++) {
        if (i > b->first && memcmp(spans[i]->trace_id, spans[i - 1]->trace_id, 16) == 0) {
            continue;
        }
        uint8_t item[STG_TID_FRAG + 4];
        memcpy(item, spans[i]->trace_id + STG_TID_OFF + STG_TID_KEY, STG_TID_FRAG);
        memcpy(item + STG_TID_FRAG, bid + 4, 4);
        if ((rc = idx_emit(out, IDX_TID, spans[i]->trace_id + STG_TID_OFF, STG_TID_KEY, item,
                           sizeof(item))) != 0) {
            return rc;
        }
    }

    /* (service, operation, kind) -> block + bounds */
    kv_set acc = {0};
    svcop_acc *accs = sl_arena_calloc(a, b->count, sizeof(*accs));
    size_t naccs = 0;
    if (accs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = b->first; i < b->first + b->count; i++) {
        const sl_span *sp = spans[i];
        sl_str svc = sp->resource ? sp->resource->service : SL_STR_LIT("unknown_service");
        uint64_t dur = sl_span_duration_nano(sp);
        bool added;
        /* One set entry per (service, op); its accumulators, one per kind
         * seen (almost always one), are chained from e->count. */
        kv_entry *e = kv_add(&acc, svc, sp->name, false, &added);
        if (e == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        uint32_t ai = added ? NO_ACC : e->count, last = NO_ACC;
        while (ai != NO_ACC && accs[ai].kind != sp->kind) {
            last = ai;
            ai = accs[ai].next_kind;
        }
        if (ai == NO_ACC) {
            ai = (uint32_t)naccs++;
            if (added) {
                e->count = ai;
            } else {
                accs[last].next_kind = ai;
            }
            svcop_acc *s = &accs[ai];
            s->service = svc;
            s->op = sp->name;
            s->kind = sp->kind;
            s->next_kind = NO_ACC;
            memcpy(s->v.block_id, bid, 8);
            s->v.min_start = s->v.max_start = sp->start_unix_nano;
            s->v.min_dur = s->v.max_dur = dur;
        } else {
            svcop_acc *s = &accs[ai];
            if (sp->start_unix_nano < s->v.min_start) {
                s->v.min_start = sp->start_unix_nano;
            }
            if (sp->start_unix_nano > s->v.max_start) {
                s->v.max_start = sp->start_unix_nano;
            }
            if (dur < s->v.min_dur) {
                s->v.min_dur = dur;
            }
            if (dur > s->v.max_dur) {
                s->v.max_dur = dur;
            }
        }
    }
    for (size_t i = 0; i < naccs; i++) {
        size_t kl = stg_svcop_key(accs[i].service, accs[i].op, accs[i].kind, key);
        if ((rc = idx_emit(out, IDX_SVCOP, key, kl, &accs[i].v, sizeof(stg_svcop_val))) != 0) {
            goto out;
        }
    }

    /* attribute key=value -> block; keys with too many distinct values in
     * this block get one "must scan" marker instead. */
    kv_clear(pairs);
    const sl_resource *last_res = NULL;
    for (size_t i = b->first; i < b->first + b->count && rc == 0; i++) {
        const sl_span *sp = spans[i];
        for (uint32_t j = 0; j < sp->nattrs && rc == 0; j++) {
            rc = note_attr(pairs, a, &sp->attrs[j]);
        }
        if (rc == 0) {
            rc = note_synthetic(pairs, a, sp);
        }
        if (sp->resource != NULL && sp->resource != last_res) {
            last_res = sp->resource;
            for (uint32_t j = 0; j < sp->resource->nattrs && rc == 0; j++) {
                rc = note_attr(pairs, a, &sp->resource->attrs[j]);
            }
        }
    }
    if (rc != 0) {
        goto out;
    }
    /* Keys with few distinct values in this block get one index entry per
     * value; the others get a marker entry, and their values go into the
     * block's bloom filter, so that an id-like tag (request id, user id)
     * costs about ten bits per value instead of an LMDB entry. */
    for (size_t i = 0; i < pairs->cap; i++) {
        kv_entry *e = &pairs->slots[i];
        if (!e->used) {
            continue;
        }
        bool hc;
        if (e->val.ptr == NULL) {
            if (e->count <= STG_LOWCARD_MAX) {
                continue; /* its values are indexed one by one */
            }
            hc = true;
        } else {
            const kv_entry *ke = kv_find(pairs, e->key, e->val, true);
            if (ke == NULL) {
                continue;
            }
            if (ke->count > STG_LOWCARD_MAX) {
                /* Its hash joins those note_attr kept, for the filter. */
                if ((rc = push_hash(pairs, stg_pair_hash(e->key, e->val))) != 0) {
                    goto out;
                }
                continue;
            }
            hc = false;
        }
        size_t kl = stg_attr_key(e->key, e->val, hc, key);
        if ((rc = idx_emit(out, IDX_ATTR, key, kl, bid, 8)) != 0) {
            goto out;
        }
    }
    if (pairs->nhashes > 1) {
        /* Repeats would oversize the filter: keep one of each (an
         * open-addressing set of the hashes; 0 marks an empty slot). */
        size_t cap = 16;
        while (cap < pairs->nhashes * 2) {
            cap *= 2;
        }
        uint64_t *set = calloc(cap, sizeof(uint64_t));
        if (set == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        size_t w = 0;
        for (size_t i = 0; i < pairs->nhashes; i++) {
            uint64_t h = pairs->hashes[i] | 1;
            size_t j = (size_t)(h >> 7) & (cap - 1);
            while (set[j] != 0 && set[j] != h) {
                j = (j + 1) & (cap - 1);
            }
            if (set[j] == 0) {
                set[j] = h;
                pairs->hashes[w++] = pairs->hashes[i];
            }
        }
        free(set);
        pairs->nhashes = w;
    }
    size_t nbloom = pairs->nhashes;
    if (nbloom > 0) {
        size_t size = stg_bloom_size(nbloom);
        uint8_t *filter = sl_arena_calloc(a, size, 1);
        if (filter == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < pairs->nhashes; i++) {
            stg_bloom_add(filter, size, pairs->hashes[i]);
        }
        if ((rc = idx_emit(out, IDX_BLOOM, bid, 8, filter, size)) != 0) {
            goto out;
        }
    }
out:
    free(acc.slots);
    return rc;
}

/* Maps an LMDB or errno code from the cutter to SL_ESTORAGE, logging it. */
static int cut_err(const char *path, int rc) {
    if (rc == MDB_MAP_FULL) {
        return SL_EMAPFULL; /* the caller grows the map and tries again */
    }
    if (rc > 0 || (rc <= -30780 && rc >= -30999)) {
        SL_LOG_E("storage", "%s: cut failed: %s", path, mdb_strerror(rc));
        return SL_ESTORAGE;
    }
    return rc;
}

/* Encoding blocks and preparing their index entries is pure CPU work on
 * disjoint data: with several blocks in a pass, helper threads take every
 * other block so that a cut (and the backlog drain after a burst) uses more
 * than one core. Only the puts themselves wait for the write transaction. */
typedef struct encode_job {
    stg_store *s;
    cut_block *blocks;
    size_t nblocks, first, stride;
    sl_span **spans;
    int rc;
} encode_job;

static void *encode_worker(void *arg) {
    encode_job *j = arg;
    kv_set pairs = {0};
    sl_arena a;
    sl_arena_init(&a, CUT_ARENA_MAX / 4);
    for (size_t i = j->first; i < j->nblocks && j->rc == 0; i += j->stride) {
        cut_block *b = &j->blocks[i];
        j->rc = stg_block_encode((const sl_span *const *)j->spans + b->first, b->count,
                                 j->s->opt.block_level, &b->data);
        if (j->rc == 0) {
            j->rc = prepare_block_index(b, (const sl_span *const *)j->spans, &pairs, &a);
        }
        sl_arena_reset(&a);
    }
    free(pairs.slots);
    free(pairs.hashes);
    sl_arena_free(&a);
    return NULL;
}

static int encode_blocks(stg_store *s, cut_block *blocks, size_t nblocks, sl_span **spans) {
    enum { MAX_HELPERS = 3 };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = ncpu > 1 ? (size_t)ncpu : 1;
    if (nthreads > MAX_HELPERS + 1) {
        nthreads = MAX_HELPERS + 1;
    }
    if (nthreads > nblocks) {
        nthreads = nblocks > 0 ? nblocks : 1;
    }
    encode_job jobs[MAX_HELPERS + 1];
    pthread_t tids[MAX_HELPERS];
    size_t started = 0;
    for (size_t t = 0; t < nthreads; t++) {
        jobs[t] = (encode_job){s, blocks, nblocks, t, nthreads, spans, 0};
    }
    for (size_t t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[t - 1], NULL, encode_worker, &jobs[t]) != 0) {
            break;
        }
        started++;
    }
    if (started + 1 < nthreads) {
        /* No helper thread to be had: this thread takes the rest too. */
        for (size_t t = started + 1; t < nthreads; t++) {
            encode_worker(&jobs[t]);
        }
    }
    encode_worker(&jobs[0]);
    int rc = jobs[0].rc;
    for (size_t t = 1; t <= started; t++) {
        pthread_join(tids[t - 1], NULL);
        rc = rc != 0 ? rc : jobs[t].rc;
    }
    for (size_t t = started + 1; t < nthreads; t++) {
        rc = rc != 0 ? rc : jobs[t].rc;
    }
    return rc;
}

/* Writes spans (of one window, any order) as blocks with their indexes into
 * p, together with the window's new cut mark, in one transaction. */
static int cut_window(stg_store *s, stg_partition *p, sl_span **spans, size_t nspans,
                      uint64_t mark) {
    int rc = 0;
    MDB_txn *txn = NULL;
    cut_block *blocks = NULL;
    size_t nblocks = 0;
    MDB_val k, v;

    /* Sort by trace, then cut into blocks without splitting a trace unless it
     * is itself larger than a block. */
    qsort(spans, nspans, sizeof(*spans), cmp_span);
    blocks = calloc(nspans / BLOCK_SPANS + 2, sizeof(*blocks));
    if (blocks == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    uint64_t pmin = UINT64_MAX, pmax = 0;
    for (size_t i = 0; i < nspans;) {
        size_t end = i + BLOCK_SPANS < nspans ? i + BLOCK_SPANS : nspans;
        while (end < nspans && end < i + 2 * BLOCK_SPANS &&
               memcmp(spans[end]->trace_id, spans[end - 1]->trace_id, 16) == 0) {
            end++;
        }
        cut_block *b = &blocks[nblocks++];
        b->id = p->next_block + nblocks - 1;
        b->first = i;
        b->count = end - i;
        sl_buf_init(&b->data, 0);
        sl_buf_init(&b->idx, 0);
        b->meta.min_start = UINT64_MAX;
        b->meta.nspans = (uint32_t)b->count;
        for (size_t j = i; j < end; j++) {
            uint64_t st = spans[j]->start_unix_nano;
            b->meta.min_start = st < b->meta.min_start ? st : b->meta.min_start;
            b->meta.max_start = st > b->meta.max_start ? st : b->meta.max_start;
            b->meta.ntraces += j == i || memcmp(spans[j]->trace_id, spans[j - 1]->trace_id, 16);
        }
        pmin = b->meta.min_start < pmin ? b->meta.min_start : pmin;
        pmax = b->meta.max_start > pmax ? b->meta.max_start : pmax;
        i = end;
    }
    if ((rc = encode_blocks(s, blocks, nblocks, spans)) != 0) {
        goto out;
    }

    /* The trace index stores block ids in 32 bits. */
    if (p->next_block + nblocks > UINT32_MAX) {
        rc = SL_EFULL;
        goto out;
    }
    /* One write transaction: blocks, their indexes, bounds and the mark. */
    if ((rc = mdb_txn_begin(p->env, NULL, 0, &txn)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < nblocks; i++) {
        uint8_t bid[8];
        stg_be64(bid, blocks[i].id);
        k = (MDB_val){8, bid};
        v = (MDB_val){blocks[i].data.len, blocks[i].data.data};
        if ((rc = mdb_put(txn, p->db_blocks, &k, &v, MDB_APPEND)) != 0) {
            goto out;
        }
        v = (MDB_val){sizeof(stg_block_meta), &blocks[i].meta};
        if ((rc = mdb_put(txn, p->db_bmeta, &k, &v, 0)) != 0) {
            goto out;
        }
        if ((rc = idx_put(p, txn, &blocks[i].idx)) != 0) {
            goto out;
        }
    }
    stg_widen_bounds(p, pmin, pmax);
    uint64_t bounds[2] = {atomic_load(&p->min_start), atomic_load(&p->max_start)};
    k = (MDB_val){4, stg_bounds_key};
    v = (MDB_val){16, bounds};
    if ((rc = mdb_put(txn, p->db_bmeta, &k, &v, 0)) != 0) {
        goto out;
    }
    k = (MDB_val){4, stg_mark_key};
    v = (MDB_val){8, &mark};
    if ((rc = mdb_put(txn, p->db_bmeta, &k, &v, 0)) != 0) {
        goto out;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        goto out;
    }
    p->next_block += nblocks;
    p->mark = mark;
    atomic_fetch_add(&p->blocks, nblocks);
    SL_LOG_D("storage", "%s: cut %zu spans into %zu blocks", p->path, nspans, nblocks);
out:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    for (size_t i = 0; i < nblocks; i++) {
        sl_buf_free(&blocks[i].data);
        sl_buf_free(&blocks[i].idx);
    }
    free(blocks);
    return cut_err(p->path, rc);
}

/* The spans of one window gathered by a pass over the WAL. */
typedef struct win_group {
    uint64_t window;
    stg_partition *p; /* NULL: the window is past retention, its records are dropped */
    uint64_t max_seq;
    sl_span **spans;
    size_t n, cap;
} win_group;

#define CUT_MAX_WINDOWS 16

int stg_cut_wal(stg_store *s, stg_wal *w) {
    int rc = 0;
    sl_arena a;
    sl_arena_init(&a, CUT_ARENA_MAX);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    win_group groups[CUT_MAX_WINDOWS];
    size_t ngroups = 0, nspans = 0, nrecords = 0;
    uint8_t last_key[STG_WAL_KEY];
    bool busy = false;
    uint64_t rec_bytes = 0, now = sl_now_unix_nano();
    uint64_t cutoff = stg_retention_cutoff(s, w->tenant, STG_TRACES, now);

    /* While txn is open, w->resize is held shared (stg_wal_txn_begin). */
    if ((rc = stg_wal_txn_begin(w, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_cursor_open(txn, w->dbs[STG_TRACES], &cur)) != 0) {
        goto out;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && nspans < CUT_MAX_SPANS) {
        if (k.mv_size != STG_WAL_KEY) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        uint64_t window = sl_get_be64(k.mv_data), seq = sl_get_be64((uint8_t *)k.mv_data + 8);
        win_group *g = NULL;
        for (size_t i = 0; i < ngroups; i++) {
            if (groups[i].window == window) {
                g = &groups[i];
            }
        }
        if (g == NULL) {
            if (ngroups == CUT_MAX_WINDOWS) {
                break; /* the rest waits for the next pass */
            }
            g = &groups[ngroups++];
            memset(g, 0, sizeof(*g));
            g->window = window;
            if (window + s->opt.partition_ns > cutoff &&
                (rc = stg_part_get(s, w->tenant, window, &g->p)) != 0) {
                ngroups--;
                goto out;
            }
            if (g->p != NULL && g->p->sealed) {
                /* A past window is mapped read-only-sized: reopen it for
                 * writing, which needs it to be ours alone for a moment. */
                pthread_mutex_lock(&s->mu);
                int urc = g->p->refs == 1 ? stg_part_reseal(s, g->p, false) : SL_EFULL;
                pthread_mutex_unlock(&s->mu);
                if (urc != 0) {
                    busy = true; /* readers hold it: try again next pass */
                    break;
                }
            }
        }
        /* Records at or below the window's mark were cut before a crash
         * kept them from being deleted: only delete them now. */
        if (g->p != NULL && seq > g->p->mark) {
            const uint8_t *ids, *blk;
            size_t nids, blk_size;
            sl_span *rs = NULL;
            size_t rn = 0;
            int prc = stg_wal_parse(v.mv_data, v.mv_size, &ids, &nids, &blk, &blk_size);
            if (prc == 0) {
                prc = stg_block_decode(blk, blk_size, &a, &rs, &rn);
            }
            if (prc == SL_ENOMEM) {
                if (nrecords == 0) {
                    rc = prc;
                    goto out;
                }
                break; /* this pass is full; the rest waits for the next one */
            }
            if (prc != 0) {
                /* A record that cannot be read would block the log forever:
                 * drop it with the others, loudly. */
                SL_LOG_E("storage", "%s: dropping unreadable WAL record %llu: %s", w->path,
                         (unsigned long long)seq, sl_strerror(prc));
            }
            if (sl_array_grow(&g->spans, &g->cap, g->n + rn, sizeof(*g->spans)) != 0) {
                rc = SL_ENOMEM;
                goto out;
            }
            for (size_t i = 0; i < rn; i++) {
                g->spans[g->n++] = &rs[i];
            }
            nspans += rn;
            g->max_seq = seq;
        }
        memcpy(last_key, k.mv_data, STG_WAL_KEY);
        rec_bytes += v.mv_size;
        nrecords++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !busy) {
        rc = mrc;
        goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    stg_wal_txn_done(w);
    txn = NULL;
    if (nrecords == 0 || busy) {
        goto out;
    }
    for (size_t i = 0; i < ngroups; i++) {
        win_group *g = &groups[i];
        if (g->p != NULL && g->n > 0 &&
            (rc = cut_window(s, g->p, g->spans, g->n, g->max_seq)) == SL_EMAPFULL) {
            /* The window's map is full: grow it while it is ours alone (no
             * reader can take it under s->mu) and try once more; readers
             * holding it make the next pass try again. */
            pthread_mutex_lock(&s->mu);
            int grc = g->p->refs == 1 ? stg_env_grow(g->p->env, g->p->path) : SL_EMAPFULL;
            pthread_mutex_unlock(&s->mu);
            rc = grc == 0 ? cut_window(s, g->p, g->spans, g->n, g->max_seq) : grc;
            if (rc == SL_EMAPFULL) {
                SL_LOG_W("storage",
                         "%s: map full; its spans stay in the write-ahead log until "
                         "it can grow",
                         g->p->path);
            }
        }
        if (rc != 0) {
            goto out;
        }
        /* Durable in its window: the live service graph counts it. */
        stg_deps_observe(s, w->tenant, groups[i].spans, groups[i].n);
    }

    /* Every window holds its blocks now: delete the records they came from. */
    rc = stg_wal_trim(s, w, STG_TRACES, last_key, nrecords, rec_bytes);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
        stg_wal_txn_done(w);
    }
    for (size_t i = 0; i < ngroups; i++) {
        free(groups[i].spans);
        if (groups[i].p != NULL) {
            stg_part_release(s, groups[i].p);
        }
    }
    sl_arena_free(&a);
    return cut_err(w->path, rc);
}
