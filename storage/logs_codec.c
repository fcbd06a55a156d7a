/*
 * The log block codec (see logs_codec.h; docs/logs-format.md is the byte
 * layout). Encoding writes every record field to its own column (an sl_buf):
 * times as deltas, strings as ids into one block dictionary, trace and span
 * ids as ids into per-block id tables, resources once per block, attribute
 * values by type into value columns. A string body is split into a template
 * (the text with each plain decimal number replaced by a marker byte) and
 * its numbers: the template goes to the dictionary, so a million lines from
 * one log statement cost one dictionary entry plus an id and a few varints
 * each. The columns are concatenated behind a table of their lengths and the
 * whole payload is one zstd frame with its content checksum.
 *
 * Invariants: the dictionary is written before every column that refers to
 * it; the decoder checks every id against the table it names, every count
 * against the bytes that must back it before allocating, and every column
 * must be consumed exactly, so a malformed block is SL_ECORRUPT, never a
 * crash or an unbounded allocation.
 *
 * Thread: any; all state is per call.
 */
#include "logs_codec.h"

#include "sl_err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define FLAG_ZSTD 0x01u
#define TPL_NUM 0x11u /* a number was lifted out here */
#define TPL_ESC 0x12u /* the next byte is literal */
#define MAX_NUM_DIGITS 18
#define INLINE_MIN 129 /* attribute strings this long bypass the dictionary */
#define VT_INLINE 0x80u
#define VT_NUMREF (0x40u | SL_VAL_INT) /* an int attribute equal to a body number */
#define MAX_REF_NUMS 32                /* body numbers an attribute may refer to */

/* Columns, in payload order. */
enum {
    C_DICT_LENS,
    C_DICT_BYTES,
    C_RES,
    C_RES_IDX,
    C_SCOPE,
    C_TIME,
    C_OBS,
    C_SEV,
    C_SEVTXT,
    C_EVENT,
    C_FLAGS,
    C_TRACE,
    C_TRACE_IDS,
    C_SPAN,
    C_SPAN_IDS,
    C_BTYPE,
    C_BODY,
    C_NUM,
    C_NATTR,
    C_DROP,
    C_AKEY,
    C_VTYPE,
    C_VREF,
    C_VINT,
    C_VDBL,
    C_TEXT,
    C_COUNT
};

/* --- encoder: a byte-string -> id table --------------------------------- */

typedef struct dict {
    sl_str *items;
    size_t n, cap;
    uint32_t *slots; /* id + 1, 0 = empty */
    size_t nslots;   /* power of two */
} dict;

static uint64_t hash_bytes(const void *p, size_t len) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ s[i]) * 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static void dict_free(dict *d) {
    free(d->items);
    free(d->slots);
}

static int dict_rehash(dict *d) {
    size_t ns = d->nslots ? d->nslots * 2 : 256;
    uint32_t *slots = calloc(ns, sizeof(*slots));
    if (slots == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++) {
        size_t j = hash_bytes(d->items[i].ptr, d->items[i].len) & (ns - 1);
        while (slots[j] != 0) {
            j = (j + 1) & (ns - 1);
        }
        slots[j] = (uint32_t)i + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = ns;
    return 0;
}

/* The id of s, adding it (as a view: s must outlive the dict). */
static int dict_id(dict *d, sl_str s, uint32_t *id) {
    if ((d->n + 1) * 2 > d->nslots && dict_rehash(d) != 0) {
        return SL_ENOMEM;
    }
    size_t j = hash_bytes(s.ptr, s.len) & (d->nslots - 1);
    while (d->slots[j] != 0) {
        sl_str t = d->items[d->slots[j] - 1];
        if (t.len == s.len && (s.len == 0 || memcmp(t.ptr, s.ptr, s.len) == 0)) {
            *id = d->slots[j] - 1;
            return 0;
        }
        j = (j + 1) & (d->nslots - 1);
    }
    if (sl_array_grow(&d->items, &d->cap, d->n + 1, sizeof(*d->items)) != 0) {
        return SL_ENOMEM;
    }
    d->items[d->n] = s;
    d->slots[j] = (uint32_t)d->n + 1;
    *id = (uint32_t)d->n++;
    return 0;
}

/* --- encoder ------------------------------------------------------------ */

typedef struct enc {
    sl_buf col[C_COUNT];
    dict strs, traces, spans;
    const sl_resource **res; /* distinct resources, by content */
    size_t nres, res_cap;
    sl_buf tpl;                  /* the current record's body template */
    sl_buf shape;                /* the current record's attribute shape */
    sl_arena keys;               /* copies of the templates in strs */
    uint64_t nums[MAX_REF_NUMS]; /* the current record's body numbers */
    size_t nnums;
    uint64_t *all; /* every body number, record after record */
    size_t nall, allcap;
    uint32_t *rec_tpl; /* per record: its template id (UINT32_MAX: none) */
    size_t *rec_off;   /* per record: where its numbers start in all */
    uint64_t unit;     /* times are stored in this unit (a power of ten, ns) */
    int err;
} enc;

static void put_u(enc *e, int c, uint64_t v) {
    if (e->err == 0) {
        e->err = sl_buf_put_uvarint(&e->col[c], v);
    }
}

static void put_bytes(enc *e, int c, const void *p, size_t n) {
    if (e->err == 0 && n > 0) {
        e->err = sl_buf_append(&e->col[c], p, n);
    }
}

static void put_str(enc *e, int c, sl_str s) {
    uint32_t id = 0;
    if (e->err == 0) {
        e->err = dict_id(&e->strs, s.ptr != NULL ? s : (sl_str){"", 0}, &id);
    }
    put_u(e, c, id);
}

/* Writes a value's payload to the value columns and returns its type byte
 * (with VT_INLINE / VT_NUMREF when they apply), which the caller stores. */
static uint8_t put_payload(enc *e, const sl_value *v) {
    uint8_t t = v->type;
    switch (t) {
    case SL_VAL_STR:
        if (v->v.s.len >= INLINE_MIN) {
            put_u(e, C_VREF, v->v.s.len);
            put_bytes(e, C_TEXT, v->v.s.ptr, v->v.s.len);
            return t | VT_INLINE;
        }
        put_str(e, C_VREF, v->v.s);
        return t;
    case SL_VAL_BOOL:
        put_u(e, C_VREF, v->v.b ? 1 : 0);
        return t;
    case SL_VAL_INT:
        for (size_t j = 0; j < e->nnums; j++) {
            if (v->v.i >= 0 && e->nums[j] == (uint64_t)v->v.i) {
                put_u(e, C_VREF, j);
                return VT_NUMREF;
            }
        }
        put_u(e, C_VINT, sl_zigzag(v->v.i));
        return t;
    case SL_VAL_DOUBLE:
        put_bytes(e, C_VDBL, &v->v.d, 8);
        return t;
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        put_u(e, C_VREF, v->v.s.len);
        put_bytes(e, C_TEXT, v->v.s.ptr, v->v.s.len);
        return t;
    default:
        return SL_VAL_EMPTY;
    }
}

static void put_value(enc *e, const sl_value *v) {
    uint8_t t = put_payload(e, v);
    put_bytes(e, C_VTYPE, &t, 1);
}

/* Adds s to the dictionary as an owned copy (s is scratch), writes its id
 * and returns it. */
static uint32_t put_scratch_str(enc *e, int col, sl_str s) {
    uint32_t id = 0;
    size_t before = e->strs.n;
    if (e->err == 0) {
        e->err = dict_id(&e->strs, s.len > 0 ? s : SL_STR_LIT(""), &id);
    }
    if (e->err == 0 && e->strs.n > before && s.len > 0) {
        char *copy = sl_arena_memdup(&e->keys, s.ptr, s.len);
        if (copy == NULL) {
            e->err = SL_ENOMEM;
        } else {
            e->strs.items[id].ptr = copy;
        }
    }
    put_u(e, col, id);
    return id;
}

/* A record's attributes: their "shape" (count, then key id and type byte
 * of each), stored once in the dictionary and referenced by id, and the
 * values in the value columns. Records of one log statement share a shape,
 * so keys and types cost next to nothing. */
static void put_shaped_attrs(enc *e, const sl_attr *attrs, uint32_t n) {
    e->shape.len = 0;
    int rc = sl_buf_put_uvarint(&e->shape, n);
    for (uint32_t i = 0; i < n && rc == 0 && e->err == 0; i++) {
        uint32_t kid = 0;
        e->err = dict_id(&e->strs, attrs[i].key.ptr != NULL ? attrs[i].key : SL_STR_LIT(""), &kid);
        uint8_t t = put_payload(e, &attrs[i].val);
        rc = sl_buf_put_uvarint(&e->shape, kid);
        if (rc == 0) {
            rc = sl_buf_putc(&e->shape, t);
        }
    }
    if (rc != 0 && e->err == 0) {
        e->err = rc;
    }
    (void)put_scratch_str(e, C_NATTR, (sl_str){(const char *)e->shape.data, e->shape.len});
}

static void put_attrs(enc *e, int count_col, const sl_attr *attrs, uint32_t n) {
    put_u(e, count_col, n);
    for (uint32_t i = 0; i < n; i++) {
        put_str(e, C_AKEY, attrs[i].key);
        put_value(e, &attrs[i].val);
    }
}

static bool resource_eq(const sl_resource *a, const sl_resource *b) {
    return a == b || (a != NULL && b != NULL && sl_resource_eq(a, b));
}

/* Resources are few per block; beyond this many distinct ones the encoder
 * stops comparing contents (each new pointer is then a new entry) so that a
 * hostile batch cannot make encoding quadratic. */
#define RES_COMPARE_MAX 64

static uint32_t res_id(enc *e, const sl_resource *r, const sl_resource **last, uint32_t *last_id) {
    if (r == *last) {
        return *last_id;
    }
    size_t i = 0;
    size_t lim = e->nres < RES_COMPARE_MAX ? e->nres : RES_COMPARE_MAX;
    for (; i < lim; i++) {
        if (resource_eq(e->res[i], r)) {
            break;
        }
    }
    if (i == lim) {
        if (sl_array_grow(&e->res, &e->res_cap, e->nres + 1, sizeof(*e->res)) != 0) {
            e->err = SL_ENOMEM;
            return 0;
        }
        i = e->nres;
        e->res[e->nres++] = r;
    }
    *last = r;
    *last_id = (uint32_t)i;
    return (uint32_t)i;
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Writes body as a template id (the template copied into the dictionary
 * when new) and keeps its numbers in e->all (written to C_NUM at the end,
 * grouped by template and position); the first MAX_REF_NUMS are also in
 * e->nums for the record's attributes to refer to. */
static void put_template(enc *e, size_t rec, sl_str body) {
    e->rec_off[rec] = e->nall;
    const unsigned char *s = (const unsigned char *)body.ptr;
    e->tpl.len = 0;
    e->nnums = 0;
    size_t i = 0;
    while (i < body.len && e->err == 0) {
        unsigned char c = s[i];
        if (is_digit(c) && (i == 0 || !is_digit(s[i - 1]))) {
            size_t j = i;
            while (j < body.len && is_digit(s[j])) {
                j++;
            }
            size_t nd = j - i;
            if (nd <= MAX_NUM_DIGITS && (nd == 1 || c != '0')) {
                uint64_t v = 0;
                for (size_t k = i; k < j; k++) {
                    v = v * 10 + (uint64_t)(s[k] - '0');
                }
                if (e->err == 0 &&
                    sl_array_grow(&e->all, &e->allcap, e->nall + 1, sizeof(*e->all)) != 0) {
                    e->err = SL_ENOMEM;
                } else if (e->err == 0) {
                    e->all[e->nall++] = v;
                }
                if (e->nnums < MAX_REF_NUMS) {
                    e->nums[e->nnums++] = v;
                }
                if (e->err == 0) {
                    e->err = sl_buf_putc(&e->tpl, TPL_NUM);
                }
            } else if (e->err == 0) {
                e->err = sl_buf_append(&e->tpl, s + i, nd);
            }
            i = j;
            continue;
        }
        if (c == TPL_NUM || c == TPL_ESC) {
            if (e->err == 0) {
                e->err = sl_buf_putc(&e->tpl, TPL_ESC);
            }
        }
        if (e->err == 0) {
            e->err = sl_buf_putc(&e->tpl, c);
        }
        i++;
    }
    e->rec_tpl[rec] = put_scratch_str(e, C_BODY, (sl_str){(const char *)e->tpl.data, e->tpl.len});
}

/* Writes the body numbers to C_NUM by template, then by position in the
 * template, then by record: numbers of one kind (durations of one log
 * statement, ids of another) sit together and compress far better than
 * interleaved. */
static void put_numbers(enc *e, size_t n) {
    size_t nt = e->strs.n;
    size_t *start = calloc(nt + 1, sizeof(*start));
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    if (start == NULL || order == NULL) {
        e->err = e->err != 0 ? e->err : SL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (e->rec_tpl[i] != UINT32_MAX) {
            start[e->rec_tpl[i] + 1]++;
        }
    }
    for (size_t t = 0; t < nt; t++) {
        start[t + 1] += start[t];
    }
    for (size_t i = 0; i < n; i++) {
        if (e->rec_tpl[i] != UINT32_MAX) {
            order[start[e->rec_tpl[i]]++] = i;
        }
    }
    /* start[t] now ends template t's run; rebuild the beginnings. */
    for (size_t t = nt; t > 0; t--) {
        start[t] = start[t - 1];
    }
    start[0] = 0;
    for (size_t t = 0; t < nt && e->err == 0; t++) {
        size_t uses = start[t + 1] - start[t];
        if (uses == 0) {
            continue;
        }
        /* Every use of a template has as many numbers as it has markers. */
        size_t slots = 0;
        sl_str tpl = e->strs.items[t];
        for (size_t k = 0; k < tpl.len; k++) {
            unsigned char c = (unsigned char)tpl.ptr[k];
            if (c == TPL_ESC) {
                k++;
            } else if (c == TPL_NUM) {
                slots++;
            }
        }
        for (size_t sl = 0; sl < slots; sl++) {
            for (size_t u = 0; u < uses; u++) {
                put_u(e, C_NUM, e->all[e->rec_off[order[start[t] + u]] + sl]);
            }
        }
    }
out:
    free(start);
    free(order);
}

/* The largest power of ten (ns) dividing every time and observed time. */
static uint64_t time_unit(const sl_log_record *const *recs, size_t n) {
    uint64_t unit = 1000000000u;
    for (size_t i = 0; i < n && unit > 1; i++) {
        while (unit > 1 &&
               (recs[i]->time_unix_nano % unit != 0 || recs[i]->observed_unix_nano % unit != 0)) {
            unit /= 10;
        }
    }
    return unit;
}

static void put_id(enc *e, int ref_col, int tab_col, dict *d, const uint8_t *id, size_t len) {
    if (sl_is_zero(id, len)) {
        put_u(e, ref_col, 0);
        return;
    }
    uint32_t k = 0;
    size_t before = d->n;
    if (e->err == 0) {
        e->err = dict_id(d, (sl_str){(const char *)id, len}, &k);
    }
    if (d->n > before) {
        put_bytes(e, tab_col, id, len);
    }
    put_u(e, ref_col, (uint64_t)k + 1);
}

static int compress_into(enc *e, size_t n, int level, sl_buf *out) {
    sl_buf raw;
    sl_buf_init(&raw, STG_LOGS_MAX_RAW);
    int rc = sl_buf_put_uvarint(&raw, C_COUNT);
    for (int c = 0; c < C_COUNT && rc == 0; c++) {
        rc = sl_buf_put_uvarint(&raw, e->col[c].len);
    }
    for (int c = 0; c < C_COUNT && rc == 0; c++) {
        if (e->col[c].len > 0) {
            rc = sl_buf_append(&raw, e->col[c].data, e->col[c].len);
        }
    }
    size_t bound = ZSTD_compressBound(raw.len);
    size_t start = out->len;
    if (rc == 0) {
        rc = sl_buf_reserve(out, STG_LOGS_HDR + bound);
    }
    if (rc == 0) {
        uint8_t *h = out->data + start;
        memcpy(h, STG_LOGS_MAGIC, 4);
        h[4] = FLAG_ZSTD;
        uint32_t nn = (uint32_t)n, rs = (uint32_t)raw.len;
        for (int i = 0; i < 4; i++) {
            h[5 + i] = (uint8_t)(nn >> (8 * i));
            h[9 + i] = (uint8_t)(rs >> (8 * i));
        }
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        if (cc == NULL) {
            rc = SL_ENOMEM;
        } else {
            ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
            ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
            size_t z = ZSTD_compress2(cc, h + STG_LOGS_HDR, bound, raw.data, raw.len);
            ZSTD_freeCCtx(cc);
            if (ZSTD_isError(z)) {
                rc = SL_ENOMEM;
            } else {
                out->len = start + STG_LOGS_HDR + z;
            }
        }
    }
    sl_buf_free(&raw);
    return rc;
}

int stg_logs_encode(const sl_log_record *const *recs, size_t n, int level, sl_buf *out) {
    if (n > STG_LOGS_MAX_RECORDS) {
        return SL_EINVAL;
    }
    enc e;
    memset(&e, 0, sizeof(e));
    for (int c = 0; c < C_COUNT; c++) {
        sl_buf_init(&e.col[c], STG_LOGS_MAX_RAW);
    }
    sl_buf_init(&e.tpl, STG_LOGS_MAX_RAW);
    sl_buf_init(&e.shape, STG_LOGS_MAX_RAW);
    sl_arena_init(&e.keys, 0);
    int rc = 0;
    e.rec_tpl = malloc((n ? n : 1) * sizeof(*e.rec_tpl));
    e.rec_off = malloc((n ? n : 1) * sizeof(*e.rec_off));
    if (e.rec_tpl == NULL || e.rec_off == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }

    /* Times in the block's coarsest exact unit (clocks often tick in µs). */
    e.unit = time_unit(recs, n);
    int exp10 = 0;
    for (uint64_t u = e.unit; u > 1; u /= 10) {
        exp10++;
    }
    put_u(&e, C_TIME, (uint64_t)exp10);
    const sl_resource *last = NULL;
    uint32_t last_id = 0;
    uint64_t prev_time = 0;
    for (size_t i = 0; i < n && e.err == 0; i++) {
        const sl_log_record *r = recs[i];
        put_u(&e, C_RES_IDX, res_id(&e, r->resource, &last, &last_id));
        put_str(&e, C_SCOPE, r->scope_name);
        put_str(&e, C_SCOPE, r->scope_version);
        uint64_t t = r->time_unix_nano / e.unit, obs = r->observed_unix_nano / e.unit;
        put_u(&e, C_TIME, sl_zigzag((int64_t)(t - prev_time)));
        prev_time = t;
        put_u(&e, C_OBS, sl_zigzag((int64_t)(obs - t)));
        put_u(&e, C_SEV, sl_zigzag(r->severity_number));
        put_str(&e, C_SEVTXT, r->severity_text);
        put_str(&e, C_EVENT, r->event_name);
        put_u(&e, C_FLAGS, r->flags);
        put_id(&e, C_TRACE, C_TRACE_IDS, &e.traces, r->trace_id, 16);
        put_id(&e, C_SPAN, C_SPAN_IDS, &e.spans, r->span_id, 8);
        uint8_t bt = r->body.type;
        e.nnums = 0;
        e.rec_tpl[i] = UINT32_MAX;
        if (bt == SL_VAL_STR) {
            put_bytes(&e, C_BTYPE, &bt, 1);
            put_template(&e, i, r->body.v.s);
        } else {
            bt = 0xff; /* the body is a value in the value columns */
            put_bytes(&e, C_BTYPE, &bt, 1);
            put_value(&e, &r->body);
        }
        put_shaped_attrs(&e, r->attrs, r->nattrs);
        put_u(&e, C_DROP, r->dropped_attrs);
    }
    e.nnums = 0;
    if (e.err == 0) {
        put_numbers(&e, n);
    }
    /* Resources: their attribute values follow the records' in the value
     * columns, so the decoder reads them after the records too. */
    put_u(&e, C_RES, e.nres);
    for (size_t i = 0; i < e.nres && e.err == 0; i++) {
        const sl_resource *r = e.res[i];
        static const sl_resource none = {{"unknown_service", 15}, NULL, 0, 0};
        if (r == NULL) {
            r = &none;
        }
        put_str(&e, C_RES, r->service);
        put_u(&e, C_RES, r->dropped_attrs);
        put_attrs(&e, C_RES, r->attrs, r->nattrs);
    }
    /* The dictionary. */
    for (size_t i = 0; i < e.strs.n && e.err == 0; i++) {
        put_u(&e, C_DICT_LENS, e.strs.items[i].len);
        put_bytes(&e, C_DICT_BYTES, e.strs.items[i].ptr, e.strs.items[i].len);
    }
    rc = e.err;
    if (rc == 0) {
        rc = compress_into(&e, n, level, out);
    }
out:
    free(e.rec_tpl);
    free(e.rec_off);
    free(e.all);
    for (int c = 0; c < C_COUNT; c++) {
        sl_buf_free(&e.col[c]);
    }
    sl_buf_free(&e.tpl);
    sl_buf_free(&e.shape);
    sl_arena_free(&e.keys);
    dict_free(&e.strs);
    dict_free(&e.traces);
    dict_free(&e.spans);
    free(e.res);
    return rc;
}

/* --- decoder ------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

typedef struct dec {
    rd col[C_COUNT];
    sl_str *strs;
    size_t nstrs;
    const uint8_t *trace_ids, *span_ids;
    size_t ntraces, nspans;
    sl_arena *a;
    uint64_t nums[MAX_REF_NUMS]; /* the current record's body numbers */
    size_t nnums;
    uint64_t *all; /* body numbers, per template: use after use */
    size_t *base;  /* per dictionary id: its numbers' start in all */
    size_t *slots; /* per dictionary id: numbers per use */
    size_t *next;  /* per dictionary id: uses expanded so far */
    int err;
} dec;

static uint64_t get_u(dec *d, int c) {
    uint64_t v = 0;
    if (d->err == 0 && sl_get_uvarint(&d->col[c].p, d->col[c].end, &v) != 0) {
        d->err = SL_ECORRUPT;
        v = 0;
    }
    return d->err == 0 ? v : 0;
}

static const uint8_t *get_bytes(dec *d, int c, size_t n) {
    rd *r = &d->col[c];
    if (d->err != 0 || (size_t)(r->end - r->p) < n) {
        d->err = d->err != 0 ? d->err : SL_ECORRUPT;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static sl_str get_str(dec *d, int c) {
    uint64_t id = get_u(d, c);
    if (d->err != 0 || id >= d->nstrs) {
        d->err = d->err != 0 ? d->err : SL_ECORRUPT;
        return (sl_str){"", 0};
    }
    return d->strs[id];
}

static sl_str get_text(dec *d, uint64_t len) {
    const uint8_t *p = get_bytes(d, C_TEXT, (size_t)len);
    if (p == NULL || len > SIZE_MAX) {
        return (sl_str){"", 0};
    }
    return len > 0 ? (sl_str){(const char *)p, (size_t)len} : (sl_str){"", 0};
}

static void get_value(dec *d, uint8_t t, sl_value *v) {
    *v = (sl_value){0};
    v->v.s = (sl_str){"", 0};
    switch (t) {
    case SL_VAL_STR:
        v->type = SL_VAL_STR;
        v->v.s = get_str(d, C_VREF);
        return;
    case SL_VAL_STR | VT_INLINE:
        v->type = SL_VAL_STR;
        v->v.s = get_text(d, get_u(d, C_VREF));
        return;
    case SL_VAL_BOOL: {
        uint64_t b = get_u(d, C_VREF);
        v->type = SL_VAL_BOOL;
        v->v.b = b != 0;
        if (b > 1) {
            d->err = SL_ECORRUPT;
        }
        return;
    }
    case SL_VAL_INT:
        v->type = SL_VAL_INT;
        v->v.i = sl_unzigzag(get_u(d, C_VINT));
        return;
    case VT_NUMREF: {
        uint64_t j = get_u(d, C_VREF);
        v->type = SL_VAL_INT;
        if (j >= d->nnums || d->nums[j] > INT64_MAX) {
            d->err = d->err != 0 ? d->err : SL_ECORRUPT;
        } else {
            v->v.i = (int64_t)d->nums[j];
        }
        return;
    }
    case SL_VAL_DOUBLE: {
        const uint8_t *p = get_bytes(d, C_VDBL, 8);
        v->type = SL_VAL_DOUBLE;
        if (p != NULL) {
            memcpy(&v->v.d, p, 8);
        }
        return;
    }
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        v->type = t;
        v->v.s = get_text(d, get_u(d, C_VREF));
        return;
    case SL_VAL_EMPTY:
        return;
    default:
        d->err = SL_ECORRUPT;
        return;
    }
}

static void get_vtype_value(dec *d, sl_value *v) {
    const uint8_t *t = get_bytes(d, C_VTYPE, 1);
    if (t != NULL) {
        get_value(d, *t, v);
    }
}

/* Reads a count and that many attributes (keys from C_AKEY). */
static sl_attr *get_attrs(dec *d, int count_col, uint32_t *n) {
    uint64_t cnt = get_u(d, count_col);
    *n = 0;
    if (cnt == 0 || d->err != 0) {
        return NULL;
    }
    /* Each attribute has at least one key byte and one type byte. */
    if (cnt > (uint64_t)(d->col[C_AKEY].end - d->col[C_AKEY].p) ||
        cnt > (uint64_t)(d->col[C_VTYPE].end - d->col[C_VTYPE].p)) {
        d->err = SL_ECORRUPT;
        return NULL;
    }
    sl_attr *attrs = sl_arena_alloc(d->a, (size_t)cnt * sizeof(*attrs));
    if (attrs == NULL) {
        d->err = SL_ENOMEM;
        return NULL;
    }
    for (uint64_t i = 0; i < cnt && d->err == 0; i++) {
        attrs[i].key = get_str(d, C_AKEY);
        get_vtype_value(d, &attrs[i].val);
    }
    *n = (uint32_t)cnt;
    return attrs;
}

/* A record's attributes from its shape (see put_shaped_attrs). */
static sl_attr *get_shaped_attrs(dec *d, uint32_t *n) {
    *n = 0;
    uint64_t sid = get_u(d, C_NATTR);
    if (d->err != 0 || sid >= d->nstrs) {
        d->err = d->err != 0 ? d->err : SL_ECORRUPT;
        return NULL;
    }
    rd sh = {(const uint8_t *)d->strs[sid].ptr,
             (const uint8_t *)d->strs[sid].ptr + d->strs[sid].len};
    uint64_t cnt;
    /* Each attribute takes two shape bytes at least. */
    if (sl_get_uvarint(&sh.p, sh.end, &cnt) != 0 || cnt > (uint64_t)(sh.end - sh.p) / 2) {
        d->err = SL_ECORRUPT;
        return NULL;
    }
    if (cnt == 0) {
        return sh.p == sh.end ? NULL : (d->err = SL_ECORRUPT, NULL);
    }
    sl_attr *attrs = sl_arena_alloc(d->a, (size_t)cnt * sizeof(*attrs));
    if (attrs == NULL) {
        d->err = SL_ENOMEM;
        return NULL;
    }
    for (uint64_t i = 0; i < cnt && d->err == 0; i++) {
        uint64_t kid;
        if (sl_get_uvarint(&sh.p, sh.end, &kid) != 0 || kid >= d->nstrs || sh.p == sh.end) {
            d->err = SL_ECORRUPT;
            break;
        }
        attrs[i].key = d->strs[kid];
        get_value(d, *sh.p++, &attrs[i].val);
    }
    if (d->err == 0 && sh.p != sh.end) {
        d->err = SL_ECORRUPT;
    }
    *n = (uint32_t)cnt;
    return attrs;
}

/* Numbers per use of template t (its markers), or SIZE_MAX when malformed. */
static size_t template_slots(sl_str t) {
    size_t n = 0;
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.ptr[i];
        if (c == TPL_ESC) {
            if (++i == t.len) {
                return SIZE_MAX;
            }
        } else if (c == TPL_NUM) {
            n++;
        }
    }
    return n;
}

/* Reads C_NUM into d->all, laid out per template as the encoder wrote it
 * (template, then position, then use). The template of every string body
 * is known up front from C_BODY. */
static int read_numbers(dec *d) {
    size_t nt = d->nstrs;
    if (nt == 0) {
        return d->col[C_NUM].p == d->col[C_NUM].end ? 0 : SL_ECORRUPT;
    }
    size_t *uses = sl_arena_calloc(d->a, nt, sizeof(size_t));
    d->base = sl_arena_calloc(d->a, nt, sizeof(size_t));
    d->slots = sl_arena_calloc(d->a, nt, sizeof(size_t));
    d->next = sl_arena_calloc(d->a, nt, sizeof(size_t));
    if (uses == NULL || d->base == NULL || d->slots == NULL || d->next == NULL) {
        return SL_ENOMEM;
    }
    rd body = d->col[C_BODY];
    while (body.p < body.end) {
        uint64_t t;
        if (sl_get_uvarint(&body.p, body.end, &t) != 0 || t >= nt) {
            return SL_ECORRUPT;
        }
        uses[t]++;
    }
    size_t avail = (size_t)(d->col[C_NUM].end - d->col[C_NUM].p), total = 0;
    for (size_t t = 0; t < nt; t++) {
        if (uses[t] == 0) {
            continue;
        }
        size_t sl = template_slots(d->strs[t]);
        /* Every number takes a byte at least: more than C_NUM holds is corrupt. */
        if (sl == SIZE_MAX || (sl > 0 && uses[t] > (avail - total) / sl)) {
            return SL_ECORRUPT;
        }
        d->slots[t] = sl;
        d->base[t] = total;
        total += uses[t] * sl;
    }
    d->all = total > 0 ? sl_arena_alloc(d->a, total * sizeof(uint64_t)) : NULL;
    if (total > 0 && d->all == NULL) {
        return SL_ENOMEM;
    }
    for (size_t t = 0; t < nt && d->err == 0; t++) {
        for (size_t sl = 0; sl < d->slots[t]; sl++) {
            for (size_t u = 0; u < uses[t]; u++) {
                d->all[d->base[t] + u * d->slots[t] + sl] = get_u(d, C_NUM);
            }
        }
    }
    return d->err;
}

/* Rebuilds a body from template id t and its next use's numbers. */
static sl_str expand_template(dec *d, uint64_t t) {
    if (d->err != 0 || t >= d->nstrs) {
        d->err = d->err != 0 ? d->err : SL_ECORRUPT;
        return (sl_str){"", 0};
    }
    sl_str tpl = d->strs[t];
    size_t nums = d->slots[t];
    const uint64_t *v = d->all != NULL ? d->all + d->base[t] + d->next[t]++ * nums : NULL;
    for (size_t i = 0; i < nums && i < MAX_REF_NUMS; i++) {
        d->nums[d->nnums++] = v[i];
    }
    if (nums == 0 && memchr(tpl.ptr, TPL_ESC, tpl.len) == NULL) {
        return tpl;
    }
    char *out = sl_arena_alloc(d->a, tpl.len + nums * 20 + 1);
    if (out == NULL) {
        d->err = SL_ENOMEM;
        return (sl_str){"", 0};
    }
    size_t o = 0, k = 0;
    for (size_t i = 0; i < tpl.len && d->err == 0; i++) {
        unsigned char c = (unsigned char)tpl.ptr[i];
        if (c == TPL_ESC) {
            out[o++] = tpl.ptr[++i]; /* template_slots checked the escapes */
        } else if (c == TPL_NUM) {
            char num[24];
            int w = snprintf(num, sizeof(num), "%" PRIu64, v[k++]);
            if (w <= 0 || w > MAX_NUM_DIGITS) {
                d->err = SL_ECORRUPT;
                break;
            }
            memcpy(out + o, num, (size_t)w);
            o += (size_t)w;
        } else {
            out[o++] = (char)c;
        }
    }
    return (sl_str){out, o};
}

static const uint8_t *get_id(dec *d, int c, const uint8_t *table, size_t count, size_t len) {
    uint64_t k = get_u(d, c);
    if (k == 0 || d->err != 0) {
        return NULL;
    }
    if (k > count) {
        d->err = SL_ECORRUPT;
        return NULL;
    }
    return table + (size_t)(k - 1) * len;
}

uint32_t stg_logs_count(const uint8_t *p, size_t size) {
    if (size < STG_LOGS_HDR || memcmp(p, STG_LOGS_MAGIC, 4) != 0) {
        return 0;
    }
    return (uint32_t)p[5] | (uint32_t)p[6] << 8 | (uint32_t)p[7] << 16 | (uint32_t)p[8] << 24;
}

static int decode_payload(dec *d, const uint8_t *raw, size_t raw_len, uint32_t n,
                          sl_log_record **out) {
    rd hdr = {raw, raw + raw_len};
    uint64_t ncols = 0;
    if (sl_get_uvarint(&hdr.p, hdr.end, &ncols) != 0 || ncols != C_COUNT) {
        return SL_ECORRUPT;
    }
    uint64_t lens[C_COUNT];
    for (int c = 0; c < C_COUNT; c++) {
        if (sl_get_uvarint(&hdr.p, hdr.end, &lens[c]) != 0) {
            return SL_ECORRUPT;
        }
    }
    const uint8_t *p = hdr.p;
    for (int c = 0; c < C_COUNT; c++) {
        if (lens[c] > (uint64_t)(hdr.end - p)) {
            return SL_ECORRUPT;
        }
        d->col[c] = (rd){p, p + lens[c]};
        p += lens[c];
    }
    if (p != hdr.end) {
        return SL_ECORRUPT;
    }
    /* The dictionary: every entry has a length byte at least. */
    size_t nlens = (size_t)(d->col[C_DICT_LENS].end - d->col[C_DICT_LENS].p);
    d->strs = nlens > 0 ? sl_arena_alloc(d->a, nlens * sizeof(sl_str)) : NULL;
    if (nlens > 0 && d->strs == NULL) {
        return SL_ENOMEM;
    }
    while (d->col[C_DICT_LENS].p < d->col[C_DICT_LENS].end && d->err == 0) {
        uint64_t len = get_u(d, C_DICT_LENS);
        const uint8_t *s = get_bytes(d, C_DICT_BYTES, (size_t)len);
        if (s != NULL) {
            d->strs[d->nstrs++] =
                len > 0 ? (sl_str){(const char *)s, (size_t)len} : (sl_str){"", 0};
        }
    }
    if (d->err != 0) {
        return d->err;
    }
    int nrc = read_numbers(d);
    if (nrc != 0) {
        return nrc;
    }
    d->trace_ids = d->col[C_TRACE_IDS].p;
    d->ntraces = (size_t)(d->col[C_TRACE_IDS].end - d->trace_ids);
    d->span_ids = d->col[C_SPAN_IDS].p;
    d->nspans = (size_t)(d->col[C_SPAN_IDS].end - d->span_ids);
    if (d->ntraces % 16 != 0 || d->nspans % 8 != 0) {
        return SL_ECORRUPT;
    }
    d->ntraces /= 16;
    d->nspans /= 8;
    d->col[C_TRACE_IDS].p = d->col[C_TRACE_IDS].end;
    d->col[C_SPAN_IDS].p = d->col[C_SPAN_IDS].end;

    /* Every record has one byte at least in C_RES_IDX. */
    if (n > (size_t)(d->col[C_RES_IDX].end - d->col[C_RES_IDX].p)) {
        return SL_ECORRUPT;
    }
    sl_log_record *recs = n > 0 ? sl_arena_calloc(d->a, n, sizeof(*recs)) : NULL;
    uint64_t *res_of = n > 0 ? sl_arena_alloc(d->a, n * sizeof(uint64_t)) : NULL;
    if (n > 0 && (recs == NULL || res_of == NULL)) {
        return SL_ENOMEM;
    }
    uint64_t exp10 = get_u(d, C_TIME), unit = 1;
    if (exp10 > 9) {
        return SL_ECORRUPT;
    }
    while (exp10-- > 0) {
        unit *= 10;
    }
    uint64_t t = 0;
    for (uint32_t i = 0; i < n && d->err == 0; i++) {
        sl_log_record *r = &recs[i];
        res_of[i] = get_u(d, C_RES_IDX);
        r->scope_name = get_str(d, C_SCOPE);
        r->scope_version = get_str(d, C_SCOPE);
        t += (uint64_t)sl_unzigzag(get_u(d, C_TIME));
        r->time_unix_nano = t * unit;
        r->observed_unix_nano = (t + (uint64_t)sl_unzigzag(get_u(d, C_OBS))) * unit;
        int64_t sev = sl_unzigzag(get_u(d, C_SEV));
        if (sev < INT32_MIN || sev > INT32_MAX) {
            d->err = SL_ECORRUPT;
        }
        r->severity_number = (int32_t)sev;
        r->severity_text = get_str(d, C_SEVTXT);
        r->event_name = get_str(d, C_EVENT);
        uint64_t flags = get_u(d, C_FLAGS);
        if (flags > UINT32_MAX) {
            d->err = SL_ECORRUPT;
        }
        r->flags = (uint32_t)flags;
        const uint8_t *tid = get_id(d, C_TRACE, d->trace_ids, d->ntraces, 16);
        const uint8_t *sid = get_id(d, C_SPAN, d->span_ids, d->nspans, 8);
        if (tid != NULL) {
            memcpy(r->trace_id, tid, 16);
        }
        if (sid != NULL) {
            memcpy(r->span_id, sid, 8);
        }
        const uint8_t *bt = get_bytes(d, C_BTYPE, 1);
        d->nnums = 0;
        if (bt != NULL && *bt == SL_VAL_STR) {
            r->body.type = SL_VAL_STR;
            r->body.v.s = expand_template(d, get_u(d, C_BODY));
        } else if (bt != NULL && *bt == 0xff) {
            get_vtype_value(d, &r->body);
            if (r->body.type == SL_VAL_STR) {
                r->body.type = 0xff; /* a string body must use the template path */
                d->err = SL_ECORRUPT;
            }
        } else if (bt != NULL) {
            d->err = SL_ECORRUPT;
        }
        r->attrs = get_shaped_attrs(d, &r->nattrs);
        uint64_t drop = get_u(d, C_DROP);
        if (drop > UINT32_MAX) {
            d->err = SL_ECORRUPT;
        }
        r->dropped_attrs = (uint32_t)drop;
    }
    d->nnums = 0;
    uint64_t nres = get_u(d, C_RES);
    if (d->err == 0 && nres > (uint64_t)(d->col[C_RES].end - d->col[C_RES].p)) {
        d->err = SL_ECORRUPT;
    }
    sl_resource *res = NULL;
    if (d->err == 0 && nres > 0 &&
        (res = sl_arena_calloc(d->a, (size_t)nres, sizeof(*res))) == NULL) {
        d->err = SL_ENOMEM;
    }
    for (uint64_t i = 0; i < nres && d->err == 0; i++) {
        res[i].service = get_str(d, C_RES);
        uint64_t drop = get_u(d, C_RES);
        if (drop > UINT32_MAX) {
            d->err = SL_ECORRUPT;
        }
        res[i].dropped_attrs = (uint32_t)drop;
        res[i].attrs = get_attrs(d, C_RES, &res[i].nattrs);
    }
    for (uint32_t i = 0; i < n && d->err == 0; i++) {
        if (res_of[i] >= nres) {
            d->err = SL_ECORRUPT;
        } else {
            recs[i].resource = &res[res_of[i]];
        }
    }
    if (d->err != 0) {
        return d->err;
    }
    for (int c = 0; c < C_COUNT; c++) {
        if (d->col[c].p != d->col[c].end) {
            return SL_ECORRUPT;
        }
    }
    *out = recs;
    return 0;
}

int stg_logs_decode(const uint8_t *p, size_t size, sl_arena *a, sl_log_record **out, size_t *n,
                    size_t *raw_size) {
    uint32_t cnt = stg_logs_count(p, size);
    if (size < STG_LOGS_HDR || memcmp(p, STG_LOGS_MAGIC, 4) != 0 || p[4] != FLAG_ZSTD ||
        cnt > STG_LOGS_MAX_RECORDS) {
        return SL_ECORRUPT;
    }
    uint32_t rs =
        (uint32_t)p[9] | (uint32_t)p[10] << 8 | (uint32_t)p[11] << 16 | (uint32_t)p[12] << 24;
    if (rs > STG_LOGS_MAX_RAW) {
        return SL_ECORRUPT;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(p + STG_LOGS_HDR, size - STG_LOGS_HDR);
    if (fcs != rs) {
        return SL_ECORRUPT;
    }
    uint8_t *raw = sl_arena_alloc(a, rs > 0 ? rs : 1);
    if (raw == NULL) {
        return SL_ENOMEM;
    }
    size_t got = ZSTD_decompress(raw, rs, p + STG_LOGS_HDR, size - STG_LOGS_HDR);
    if (ZSTD_isError(got) || got != rs) {
        return SL_ECORRUPT;
    }
    dec d;
    memset(&d, 0, sizeof(d));
    d.a = a;
    sl_log_record *recs = NULL;
    int rc = decode_payload(&d, raw, rs, cnt, &recs);
    if (rc == 0) {
        *out = recs;
        *n = cnt;
        if (raw_size != NULL) {
            *raw_size = rs;
        }
    }
    return rc;
}

/* --- tokens and the token filter ----------------------------------------- */

static unsigned char lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t stg_logs_token_hash(const char *p, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ lower((unsigned char)p[i])) * 1099511628211ull;
    }
    return mix64(h ^ len);
}

void stg_logs_tokens(sl_str text, stg_token_cb cb, void *ud) {
    const unsigned char *s = (const unsigned char *)text.ptr;
    size_t i = 0;
    while (i < text.len) {
        while (i < text.len && !stg_log_word_char(s[i])) {
            i++;
        }
        size_t j = i;
        while (j < text.len && stg_log_word_char(s[j])) {
            j++;
        }
        if (j > i) {
            cb(ud, stg_logs_token_hash(text.ptr + i, j - i));
        }
        i = j;
    }
}

static void value_texts(const sl_value *v, stg_text_cb cb, void *ud) {
    char buf[40];
    int k;
    switch (v->type) {
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
        cb(ud, v->v.s);
        return;
    case SL_VAL_BOOL:
        cb(ud, v->v.b ? SL_STR_LIT("true") : SL_STR_LIT("false"));
        return;
    case SL_VAL_INT:
        k = snprintf(buf, sizeof(buf), "%" PRId64, v->v.i);
        cb(ud, (sl_str){buf, k > 0 ? (size_t)k : 0});
        return;
    case SL_VAL_DOUBLE:
        k = snprintf(buf, sizeof(buf), "%.17g", v->v.d);
        cb(ud, (sl_str){buf, k > 0 ? (size_t)k : 0});
        return;
    default:
        return;
    }
}

void stg_logs_texts(const sl_log_record *r, stg_text_cb cb, void *ud) {
    value_texts(&r->body, cb, ud);
    for (uint32_t i = 0; i < r->nattrs; i++) {
        value_texts(&r->attrs[i].val, cb, ud);
    }
}

/* Distinct token hashes of a block, gathered before the filter is sized. */
typedef struct hset {
    uint64_t *slots; /* 0 = empty (a zero hash is stored as 1) */
    size_t n, cap;   /* cap: power of two */
    int err;
} hset;

static void hset_add(void *ud, uint64_t h) {
    hset *s = ud;
    if (s->err != 0) {
        return;
    }
    h = h != 0 ? h : 1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        uint64_t *ns = calloc(nc, sizeof(*ns));
        if (ns == NULL) {
            s->err = SL_ENOMEM;
            return;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i] != 0) {
                size_t j = s->slots[i] & (nc - 1);
                while (ns[j] != 0) {
                    j = (j + 1) & (nc - 1);
                }
                ns[j] = s->slots[i];
            }
        }
        free(s->slots);
        s->slots = ns;
        s->cap = nc;
    }
    size_t j = h & (s->cap - 1);
    while (s->slots[j] != 0) {
        if (s->slots[j] == h) {
            return;
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = h;
    s->n++;
}

static void text_tokens(void *ud, sl_str text) {
    stg_logs_tokens(text, hset_add, ud);
}

/* Probe positions: double hashing over the two halves of the token hash. */
static size_t probe(uint64_t h, int i, size_t mask) {
    uint64_t h2 = (h >> 32) | 1;
    return (size_t)((h + (uint64_t)i * h2) & mask);
}

int stg_logs_bloom_build(const sl_log_record *const *recs, size_t n, sl_buf *out) {
    hset set = {0};
    for (size_t i = 0; i < n && set.err == 0; i++) {
        stg_logs_texts(recs[i], text_tokens, &set);
    }
    int rc = set.err;
    if (rc == 0) {
        unsigned lg = 6;
        while (lg < 30 && ((size_t)1 << lg) < set.n * STG_LOGS_BLOOM_BITS) {
            lg++;
        }
        size_t nbits = (size_t)1 << lg;
        size_t start = out->len;
        rc = sl_buf_reserve(out, 1 + nbits / 8);
        if (rc == 0) {
            uint8_t *f = out->data + start;
            memset(f, 0, 1 + nbits / 8);
            f[0] = (uint8_t)lg;
            for (size_t i = 0; i < set.cap; i++) {
                if (set.slots[i] != 0) {
                    for (int k = 0; k < STG_LOGS_BLOOM_PROBES; k++) {
                        size_t b = probe(set.slots[i], k, nbits - 1);
                        f[1 + b / 8] |= (uint8_t)(1u << (b % 8));
                    }
                }
            }
            out->len = start + 1 + nbits / 8;
        }
    }
    free(set.slots);
    return rc;
}

bool stg_logs_bloom_maybe(const uint8_t *filter, size_t size, uint64_t hash) {
    if (size < 1 || filter[0] < 6 || filter[0] > 30 || size != 1 + ((size_t)1 << filter[0]) / 8) {
        return true;
    }
    hash = hash != 0 ? hash : 1;
    size_t mask = ((size_t)1 << filter[0]) - 1;
    for (int k = 0; k < STG_LOGS_BLOOM_PROBES; k++) {
        size_t b = probe(hash, k, mask);
        if ((filter[1 + b / 8] & (1u << (b % 8))) == 0) {
            return false;
        }
    }
    return true;
}

bool stg_logs_phrase_in(sl_str text, sl_str needle) {
    if (needle.len == 0) {
        return true;
    }
    if (needle.len > text.len) {
        return false;
    }
    const unsigned char *t = (const unsigned char *)text.ptr;
    const unsigned char *nd = (const unsigned char *)needle.ptr;
    bool word_start = stg_log_word_char(nd[0]);
    bool word_end = stg_log_word_char(nd[needle.len - 1]);
    for (size_t i = 0; i + needle.len <= text.len; i++) {
        if (lower(t[i]) != nd[0]) {
            continue;
        }
        if (word_start && i > 0 && stg_log_word_char(t[i - 1])) {
            continue;
        }
        size_t k = 1;
        while (k < needle.len && lower(t[i + k]) == nd[k]) {
            k++;
        }
        if (k < needle.len) {
            continue;
        }
        size_t e = i + needle.len;
        if (word_end && e < text.len && stg_log_word_char(t[e])) {
            continue;
        }
        return true;
    }
    return false;
}

bool stg_logs_token_in(sl_str text, sl_str token) {
    return token.len > 0 && stg_logs_phrase_in(text, token);
}
