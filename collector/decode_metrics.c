/*
 * OTLP metrics request -> Prometheus series and metadata (see
 * decode_metrics.h for the translation rules). Strings are views into the
 * request where they can be; translated names, label arrays and formatted
 * values live in the request's arena.
 *
 * Thread: whichever thread decodes the request (a decode worker).
 */
#include "decode_metrics.h"

#include "decode_traces.h"

#include "sl_err.h"
#include "sl_fmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_rm;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_sm;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_num;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hist;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pb_ehist;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pb_summary;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar;

#define DM_TEMP_DELTA                                                                              \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define DM_TEMP_CUMULATIVE                                                                         \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define DM_NO_RECORDED_VALUE 1u
#define DM_MAX_EXP_BUCKETS 1024
#define DM_STALE_BITS 0x7ff0000000000002ull

static sl_str dm_view(const char *s) {
    return s != NULL ? (sl_str){s, strlen(s)} : (sl_str){"", 0};
}

static sl_str dm_dup(sl_arena *a, const char *p, size_t n) {
    char *c = sl_arena_strndup(a, p, n);
    return c != NULL ? (sl_str){c, n} : (sl_str){NULL, 0};
}

static double dm_stale(void) {
    uint64_t b = DM_STALE_BITS;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* --- names ------------------------------------------------------------------- */

static bool dm_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool dm_name_char(char c) {
    return dm_alnum(c) || c == '_';
}

/* Replaces characters outside [a-zA-Z0-9_] by '_' and puts prefix before a
 * leading digit (label names). */
static sl_str dm_sanitize(sl_arena *a, sl_str in, const char *digit_prefix) {
    size_t plen = strlen(digit_prefix);
    char *out = sl_arena_alloc(a, in.len + plen + 1);
    if (out == NULL) {
        return (sl_str){NULL, 0};
    }
    size_t n = 0;
    if (in.len > 0 && in.ptr[0] >= '0' && in.ptr[0] <= '9') {
        memcpy(out, digit_prefix, plen);
        n = plen;
    }
    for (size_t i = 0; i < in.len; i++) {
        out[n++] = dm_name_char(in.ptr[i]) ? in.ptr[i] : '_';
    }
    out[n] = '\0';
    return (sl_str){out, n};
}

sl_str col_prom_label_name(sl_arena *a, sl_str key) {
    sl_str s = dm_sanitize(a, key, "key_");
    if (s.ptr != NULL && s.len >= 1 && s.ptr[0] == '_' && (s.len < 2 || s.ptr[1] != '_')) {
        /* A single leading underscore: reserved-looking, prefixed. */
        char *out = sl_arena_alloc(a, s.len + 4);
        if (out == NULL) {
            return (sl_str){NULL, 0};
        }
        memcpy(out, "key", 3);
        memcpy(out + 3, s.ptr, s.len + 1);
        s = (sl_str){out, s.len + 3};
    }
    return s;
}

typedef struct dm_unit {
    const char *otel, *prom;
} dm_unit;

static const dm_unit dm_units[] = {
    {"d", "days"},          {"h", "hours"},
    {"min", "minutes"},     {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"},
    {"ns", "nanoseconds"},  {"By", "bytes"},
    {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},  {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},   {"MBy", "megabytes"},
    {"GBy", "gigabytes"},   {"TBy", "terabytes"},
    {"m", "meters"},        {"V", "volts"},
    {"A", "amperes"},       {"J", "joules"},
    {"W", "watts"},         {"g", "grams"},
    {"Cel", "celsius"},     {"Hz", "hertz"},
    {"%", "percent"},       {"1", ""},
};

/* The "per" side: singular words, and "m" is a minute there. */
static const dm_unit dm_per_units[] = {{"s", "second"}, {"m", "minute"}, {"h", "hour"},
                                       {"d", "day"},    {"w", "week"},   {"mo", "month"},
                                       {"y", "year"}};

/* A name split into words: the runs of [a-zA-Z0-9] (Prometheus's
 * normalisation drops every other character, '_' and ':' included). */
#define DM_MAX_WORDS 64

typedef struct dm_words {
    sl_str w[DM_MAX_WORDS];
    size_t n;
    bool overflow;
} dm_words;

static void dm_words_add(dm_words *ws, sl_str w) {
    if (ws->n == DM_MAX_WORDS) {
        ws->overflow = true;
        return;
    }
    ws->w[ws->n++] = w;
}

static void dm_split(sl_str s, dm_words *ws) {
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && !dm_alnum(s.ptr[i])) {
            i++;
        }
        size_t b = i;
        while (i < s.len && dm_alnum(s.ptr[i])) {
            i++;
        }
        if (i > b) {
            dm_words_add(ws, (sl_str){s.ptr + b, i - b});
        }
    }
}

static bool dm_has_word(const dm_words *ws, sl_str w) {
    for (size_t i = 0; i < ws->n; i++) {
        if (sl_str_eq(ws->w[i], w)) {
            return true;
        }
    }
    return false;
}

static void dm_drop_word(dm_words *ws, sl_str w) {
    size_t k = 0;
    for (size_t i = 0; i < ws->n; i++) {
        if (!sl_str_eq(ws->w[i], w)) {
            ws->w[k++] = ws->w[i];
        }
    }
    ws->n = k;
}

static sl_str dm_join(sl_arena *a, const sl_str *w, size_t n, const char *prefix) {
    size_t len = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        len += w[i].len + 1;
    }
    char *out = sl_arena_alloc(a, len + 1);
    if (out == NULL) {
        return (sl_str){NULL, 0};
    }
    size_t m = strlen(prefix);
    memcpy(out, prefix, m);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            out[m++] = '_';
        }
        memcpy(out + m, w[i].ptr, w[i].len);
        m += w[i].len;
    }
    out[m] = '\0';
    return (sl_str){out, m};
}

static sl_str dm_trim(sl_str s) {
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

/* One side of a unit as a word ("" when it has none or is an annotation):
 * the table's word, else the unit itself cleaned to [a-zA-Z0-9_]. */
static sl_str dm_unit_word(sl_arena *a, sl_str u, const dm_unit *map, size_t n) {
    u = dm_trim(u);
    if (u.len == 0 || memchr(u.ptr, '{', u.len) != NULL || memchr(u.ptr, '}', u.len) != NULL) {
        return (sl_str){"", 0};
    }
    for (size_t i = 0; i < n; i++) {
        if (sl_str_eqc(u, map[i].otel)) {
            return sl_str_c(map[i].prom);
        }
    }
    dm_words ws = {0};
    dm_split(u, &ws);
    return dm_join(a, ws.w, ws.n, "");
}

static void dm_unit_split(sl_str unit, sl_str *main, sl_str *per) {
    const char *slash = memchr(unit.ptr, '/', unit.len);
    *main = unit;
    *per = (sl_str){"", 0};
    if (slash != NULL) {
        *main = (sl_str){unit.ptr, (size_t)(slash - unit.ptr)};
        *per = (sl_str){slash + 1, unit.len - main->len - 1};
    }
}

static sl_str dm_unit_text(sl_arena *a, sl_str unit) {
    sl_str main, per;
    dm_unit_split(unit, &main, &per);
    sl_str mw = dm_unit_word(a, main, dm_units, sizeof(dm_units) / sizeof(dm_units[0]));
    sl_str pw = dm_unit_word(a, per, dm_per_units, sizeof(dm_per_units) / sizeof(dm_per_units[0]));
    if (mw.ptr == NULL || pw.ptr == NULL) {
        return (sl_str){NULL, 0};
    }
    sl_str w[3] = {mw, SL_STR_LIT("per"), pw};
    if (pw.len == 0) {
        return mw;
    }
    return mw.len > 0 ? dm_join(a, w, 3, "") : dm_join(a, w + 1, 2, "");
}

static sl_str dm_metric_name(sl_arena *a, sl_str name, sl_str unit, bool gauge, bool counter) {
    dm_words ws = {0};
    dm_split(name, &ws);
    sl_str main, per;
    dm_unit_split(unit, &main, &per);
    sl_str mw = dm_unit_word(a, main, dm_units, sizeof(dm_units) / sizeof(dm_units[0]));
    sl_str pw = dm_unit_word(a, per, dm_per_units, sizeof(dm_per_units) / sizeof(dm_per_units[0]));
    if (mw.ptr == NULL || pw.ptr == NULL) {
        return (sl_str){NULL, 0};
    }
    /* A unit already among the name's words is not repeated. */
    if (mw.len > 0 && !dm_has_word(&ws, mw)) {
        dm_words_add(&ws, mw);
    }
    if (pw.len > 0 && !dm_has_word(&ws, pw)) {
        dm_words_add(&ws, SL_STR_LIT("per"));
        dm_words_add(&ws, pw);
    }
    if (counter) {
        dm_drop_word(&ws, SL_STR_LIT("total"));
        dm_words_add(&ws, SL_STR_LIT("total"));
    }
    if (gauge && sl_str_eqc(unit, "1")) {
        dm_drop_word(&ws, SL_STR_LIT("ratio"));
        dm_words_add(&ws, SL_STR_LIT("ratio"));
    }
    if (ws.overflow) {
        return (sl_str){"", 0}; /* dm_metric refuses such names first */
    }
    bool digit = ws.n > 0 && ws.w[0].ptr[0] >= '0' && ws.w[0].ptr[0] <= '9';
    return dm_join(a, ws.w, ws.n, digit ? "_" : "");
}

/* Translated names and units, remembered per decoding thread: exporters
 * send the same metrics in every request, and translating a name (its
 * words, its unit's words, the suffixes) costs more than decoding the
 * metric's points. A 4-way set-associative table of fixed entries (no
 * allocation, nothing to free at thread exit; a direct-mapped one lost a
 * third of a request's 250 names to collisions), replaced round-robin
 * within a set; a key or result too long for an entry is not remembered.
 * Results are copied into the request's arena: a later miss may replace
 * the entry. */
#define DM_MEMO_WAYS 4
#define DM_MEMO_SETS 128 /* a power of two */
#define DM_MEMO_KEY 96
#define DM_MEMO_OUT 128

typedef struct dm_memo_ent {
    uint32_t key_len; /* 0: empty */
    uint32_t out_len;
    char key[DM_MEMO_KEY];
    char out[DM_MEMO_OUT];
} dm_memo_ent;

static _Thread_local dm_memo_ent dm_memo[DM_MEMO_SETS][DM_MEMO_WAYS];
static _Thread_local uint8_t dm_memo_next[DM_MEMO_SETS]; /* next way to replace */

typedef struct dm_memo_key {
    char k[DM_MEMO_KEY];
    size_t len; /* 0: too long to remember */
    dm_memo_ent *slot;
} dm_memo_key;

/* Builds the key tag, a, NUL, b and finds its slot. Returns the remembered
 * translation copied into the arena, or {NULL, 0} on a miss (k says where
 * dm_memo_put stores the answer). */
static sl_str dm_memo_get(sl_arena *ar, char tag, sl_str a, sl_str b, dm_memo_key *k) {
    size_t kl = 1 + a.len + 1 + b.len;
    k->len = 0;
    k->slot = NULL;
    if (kl > DM_MEMO_KEY) {
        return (sl_str){NULL, 0};
    }
    k->k[0] = tag;
    if (a.len > 0) {
        memcpy(k->k + 1, a.ptr, a.len);
    }
    k->k[1 + a.len] = '\0';
    if (b.len > 0) {
        memcpy(k->k + 2 + a.len, b.ptr, b.len);
    }
    k->len = kl;
    size_t set = sl_hash_bytes(k->k, kl) & (DM_MEMO_SETS - 1);
    const dm_memo_ent *e = NULL;
    for (size_t w = 0; w < DM_MEMO_WAYS && e == NULL; w++) {
        const dm_memo_ent *x = &dm_memo[set][w];
        if (x->key_len == kl && memcmp(x->key, k->k, kl) == 0) {
            e = x;
        }
    }
    if (e == NULL) {
        k->slot = &dm_memo[set][dm_memo_next[set]];
        dm_memo_next[set] = (uint8_t)((dm_memo_next[set] + 1) % DM_MEMO_WAYS);
        return (sl_str){NULL, 0};
    }
    char *out = sl_arena_alloc(ar, e->out_len + 1);
    if (out != NULL) {
        memcpy(out, e->out, e->out_len + 1);
    }
    return (sl_str){out, out != NULL ? e->out_len : 0};
}

static sl_str dm_memo_put(const dm_memo_key *k, sl_str r) {
    if (k->slot != NULL && r.ptr != NULL && r.len < DM_MEMO_OUT) {
        dm_memo_ent *e = k->slot;
        memcpy(e->key, k->k, k->len);
        e->key_len = (uint32_t)k->len;
        if (r.len > 0) {
            memcpy(e->out, r.ptr, r.len);
        }
        e->out[r.len] = '\0';
        e->out_len = (uint32_t)r.len;
    }
    return r;
}

sl_str col_prom_metric_name(sl_arena *a, sl_str name, sl_str unit, bool gauge, bool counter) {
    dm_memo_key k;
    sl_str r = dm_memo_get(a, (char)('0' + (gauge ? 1 : 0) + (counter ? 2 : 0)), name, unit, &k);
    return r.ptr != NULL ? r : dm_memo_put(&k, dm_metric_name(a, name, unit, gauge, counter));
}

sl_str col_prom_unit(sl_arena *a, sl_str unit) {
    dm_memo_key k;
    sl_str r = dm_memo_get(a, 'u', unit, (sl_str){"", 0}, &k);
    return r.ptr != NULL ? r : dm_memo_put(&k, dm_unit_text(a, unit));
}

/* s + "_" + suffix, always (histogram and summary series names). */
static sl_str dm_concat(sl_arena *a, sl_str s, const char *suffix) {
    size_t sl = strlen(suffix);
    char *out = s.ptr != NULL ? sl_arena_alloc(a, s.len + sl + 2) : NULL;
    if (out == NULL) {
        return (sl_str){NULL, 0};
    }
    memcpy(out, s.ptr, s.len);
    out[s.len] = '_';
    memcpy(out + s.len + 1, suffix, sl + 1);
    return (sl_str){out, s.len + sl + 1};
}

/* --- float text ------------------------------------------------------------- */

size_t col_prom_float(double v, char *buf) {
    return sl_fmt_double(v, buf);
}

/* --- labels ------------------------------------------------------------------- */

typedef struct dm_label {
    sl_str name;
    sl_str value;
    sl_str key; /* original attribute key: orders colliding values */
    int prio;   /* 0 attribute, 1 resource/scope, 2 metric-defined */
} dm_label;

static int dm_cmp_label(const void *a, const void *b) {
    const dm_label *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = n > 0 ? memcmp(x->name.ptr, y->name.ptr, n) : 0;
    if (c != 0 || x->name.len != y->name.len) {
        return c != 0 ? c : (x->name.len < y->name.len ? -1 : 1);
    }
    if (x->prio != y->prio) {
        return x->prio - y->prio;
    }
    n = x->key.len < y->key.len ? x->key.len : y->key.len;
    c = n > 0 ? memcmp(x->key.ptr, y->key.ptr, n) : 0;
    return c != 0 ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* The text of an attribute value as a label value. */
static int dm_value_text(sl_arena *a, const Opentelemetry__Proto__Common__V1__AnyValue *av,
                         sl_str *out) {
    sl_value v;
    int rc = col_any_value(a, av, &v);
    if (rc != 0) {
        return rc;
    }
    char tmp[SL_FMT_DOUBLE_MAX];
    switch (v.type) {
    case SL_VAL_BOOL:
        *out = v.v.b ? SL_STR_LIT("true") : SL_STR_LIT("false");
        return 0;
    case SL_VAL_INT:
        *out = dm_dup(a, tmp, (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64, v.v.i));
        break;
    case SL_VAL_DOUBLE:
        *out = dm_dup(a, tmp, col_prom_float(v.v.d, tmp));
        break;
    case SL_VAL_EMPTY:
        *out = (sl_str){"", 0};
        return 0;
    default:
        *out = v.v.s;
        return 0;
    }
    return out->ptr != NULL ? 0 : SL_ENOMEM;
}

static int dm_merge_labels(sl_arena *a, const dm_label *in, const uint8_t *ord, size_t n,
                           stg_label **out, size_t *nout);

/* Sorted, merged labels: equal names keep the highest priority's value, or
 * for attributes alone their values joined with ';' in key order. Empty
 * values are dropped (Prometheus has no empty labels). */
static int dm_finish_labels(sl_arena *a, dm_label *in, size_t n, stg_label **out, size_t *nout) {
    if (n > 16) {
        qsort(in, n, sizeof(*in), dm_cmp_label);
    } else {
        /* A point's few labels: insertion sort, no calls through qsort. */
        for (size_t i = 1; i < n; i++) {
            dm_label x = in[i];
            size_t j = i;
            while (j > 0 && dm_cmp_label(&in[j - 1], &x) > 0) {
                in[j] = in[j - 1];
                j--;
            }
            in[j] = x;
        }
    }
    return dm_merge_labels(a, in, NULL, n, out, nout);
}

/* dm_finish_labels over labels already sorted: in order, or in the order of
 * the indexes ord when it is not NULL. */
static int dm_merge_labels(sl_arena *a, const dm_label *in, const uint8_t *ord, size_t n,
                           stg_label **out, size_t *nout) {
#define DM_AT(i) (&in[ord != NULL ? ord[i] : (i)])
    stg_label *l = sl_arena_alloc(a, (n ? n : 1) * sizeof(*l));
    if (l == NULL) {
        return SL_ENOMEM;
    }
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        const dm_label *x = DM_AT(i);
        size_t j = i + 1;
        while (j < n && sl_str_eq(DM_AT(j)->name, x->name)) {
            j++;
        }
        sl_str value = DM_AT(j - 1)->value;
        if (DM_AT(j - 1)->prio == 0 && j - i > 1) {
            size_t len = 0;
            for (size_t k = i; k < j; k++) {
                len += DM_AT(k)->value.len + 1;
            }
            char *buf = sl_arena_alloc(a, len);
            if (buf == NULL) {
                return SL_ENOMEM;
            }
            size_t m = 0;
            for (size_t k = i; k < j; k++) {
                if (k > i) {
                    buf[m++] = ';';
                }
                memcpy(buf + m, DM_AT(k)->value.ptr, DM_AT(k)->value.len);
                m += DM_AT(k)->value.len;
            }
            value = (sl_str){buf, m};
        }
        if (value.len > 0) {
            l[w++] = (stg_label){x->name, value};
        }
        i = j;
    }
#undef DM_AT
    *out = l;
    *nout = w;
    return 0;
}

/* --- the batch ---------------------------------------------------------------- */

#define DM_NAME_CACHE 32
#define DM_PERM_MAX 16

typedef struct dm_ctx {
    sl_arena *a;
    col_mbatch *out;
    char *err;
    size_t err_size;
    bool err_set;
    /* per resource + scope */
    dm_label base[4];
    size_t nbase;
    int64_t res_max_t;
    bool res_any;
    /* per point: attributes (sanitized) */
    dm_label *attrs;
    size_t nattrs;
    /* Reused across the points of a request, whose attributes mostly repeat:
     * label names by attribute key, and the order the last label sort found
     * for its input's (name, priority, key) sequence. */
    sl_str nc_key[DM_NAME_CACHE], nc_name[DM_NAME_CACHE];
    size_t nnc, nc_next;
    dm_label perm_in[DM_PERM_MAX];
    uint8_t perm[DM_PERM_MAX];
    size_t nperm;
    /* open-addressed index over out->meta by family (entry + 1; 0 empty) */
    uint32_t *midx;
    size_t mslots;
} dm_ctx;

static void dm_reject(dm_ctx *c, sl_str metric, size_t point, const char *why) {
    c->out->rejected++;
    if (!c->err_set && c->err != NULL && c->err_size > 0) {
        snprintf(c->err, c->err_size, "metric \"%.*s\" point %zu: %s",
                 (int)(metric.len > 100 ? 100 : metric.len), metric.ptr != NULL ? metric.ptr : "",
                 point, why);
        c->err_set = true;
    }
}

/* The active series limit over the series one point produced (from first
 * on): all of them are stored or none. */
static bool dm_gate(dm_ctx *c, size_t first, sl_str metric, size_t point) {
    col_mbatch *b = c->out;
    if (col_series_admit(b->gate, b->series + first, b->nseries - first)) {
        return true;
    }
    b->nseries = first;
    char why[128];
    snprintf(why, sizeof(why),
             "tenant's active series limit (max_active_series %llu) reached; new series are "
             "refused until idle ones expire",
             (unsigned long long)b->gate->max);
    dm_reject(c, metric, point, why);
    return false;
}

/* col_prom_label_name through the request's cache of recent keys. */
static sl_str dm_label_name(dm_ctx *c, sl_str key) {
    for (size_t i = 0; i < c->nnc; i++) {
        if (sl_str_eq(c->nc_key[i], key)) {
            return c->nc_name[i];
        }
    }
    sl_str name = col_prom_label_name(c->a, key);
    if (name.ptr != NULL) {
        size_t i = c->nnc < DM_NAME_CACHE ? c->nnc++ : c->nc_next++ % DM_NAME_CACHE;
        c->nc_key[i] = key;
        c->nc_name[i] = name;
    }
    return name;
}

/* The order dm_finish_labels would sort in[0..n) into (by name, priority,
 * key; stable), as indexes, reused when the sequence of names, priorities
 * and keys is the one ordered last: the order depends on nothing else.
 * NULL when n is above DM_PERM_MAX. */
static const uint8_t *dm_label_order(dm_ctx *c, const dm_label *in, size_t n) {
    if (n > DM_PERM_MAX) {
        return NULL;
    }
    bool same = n == c->nperm;
    for (size_t i = 0; i < n && same; i++) {
        same = in[i].prio == c->perm_in[i].prio && sl_str_eq(in[i].name, c->perm_in[i].name) &&
               sl_str_eq(in[i].key, c->perm_in[i].key);
    }
    if (!same) {
        /* Insertion sort of the indexes: a point's few labels. */
        memcpy(c->perm_in, in, n * sizeof(*in));
        c->nperm = n;
        for (size_t i = 0; i < n; i++) {
            size_t j = i;
            while (j > 0 && dm_cmp_label(&in[c->perm[j - 1]], &in[i]) > 0) {
                c->perm[j] = c->perm[j - 1];
                j--;
            }
            c->perm[j] = (uint8_t)i;
        }
    }
    return c->perm;
}

static int dm_point_attrs(dm_ctx *c, pb_kv *const *kvs, size_t n) {
    c->attrs = sl_arena_alloc(c->a, (n + c->nbase + 2) * sizeof(dm_label));
    if (c->attrs == NULL) {
        return SL_ENOMEM;
    }
    c->nattrs = 0;
    for (size_t i = 0; i < n; i++) {
        sl_str key = dm_view(kvs[i]->key);
        dm_label *l = &c->attrs[c->nattrs];
        l->key = key;
        l->prio = 0;
        l->name = dm_label_name(c, key);
        if (l->name.ptr == NULL) {
            return SL_ENOMEM;
        }
        if (l->name.len == 0) {
            continue;
        }
        int rc = dm_value_text(c->a, kvs[i]->value, &l->value);
        if (rc != 0) {
            return rc;
        }
        c->nattrs++;
    }
    memcpy(c->attrs + c->nattrs, c->base, c->nbase * sizeof(dm_label));
    c->nattrs += c->nbase;
    return 0;
}

/* Adds one series: the point's labels plus __name__ and an optional extra
 * label (le, quantile). Returns its index in out->series via *idx. */
static int dm_series(dm_ctx *c, sl_str name, const char *extra_name, sl_str extra_value,
                     stg_ms_kind kind, int64_t t_ms, double v, size_t *idx) {
    /* The point's labels, then __name__ and the extra label in the two
     * slots dm_point_attrs left after them (rewritten for each series of
     * the point). */
    size_t n = c->nattrs;
    dm_label *in = c->attrs;
    in[n++] = (dm_label){SL_STR_LIT("__name__"), name, {"", 0}, 2};
    if (extra_name != NULL) {
        in[n++] = (dm_label){sl_str_c(extra_name), extra_value, {"", 0}, 2};
    }
    stg_label *l;
    size_t nl;
    const uint8_t *ord = dm_label_order(c, in, n);
    int rc;
    if (ord != NULL) {
        rc = dm_merge_labels(c->a, in, ord, n, &l, &nl);
    } else {
        dm_label *tmp = sl_arena_alloc(c->a, n * sizeof(dm_label));
        if (tmp == NULL) {
            return SL_ENOMEM;
        }
        memcpy(tmp, in, n * sizeof(dm_label));
        rc = dm_finish_labels(c->a, tmp, n, &l, &nl);
    }
    if (rc != 0) {
        return rc;
    }
    col_mbatch *b = c->out;
    if (b->nseries == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        stg_mseries *ns = sl_arena_alloc(c->a, cap * sizeof(*ns));
        if (ns == NULL) {
            return SL_ENOMEM;
        }
        if (b->nseries > 0) {
            memcpy(ns, b->series, b->nseries * sizeof(*ns));
        }
        b->series = ns;
        b->cap = cap;
    }
    stg_sample *smp = sl_arena_alloc(c->a, sizeof(*smp));
    if (smp == NULL) {
        return SL_ENOMEM;
    }
    *smp = (stg_sample){t_ms, v};
    b->series[b->nseries] = (stg_mseries){l, nl, kind, smp, 1, NULL, 0};
    *idx = b->nseries++;
    if (t_ms > c->res_max_t || !c->res_any) {
        c->res_max_t = t_ms;
        c->res_any = true;
    }
    return 0;
}

static size_t dm_fam_slot(sl_str f, size_t slots) {
    return sl_hash_bytes(f.ptr, f.len) & (slots - 1);
}

/* Keeps the family index at most half full (rebuilt from out->meta when it
 * doubles). Returns 0 or SL_ENOMEM. */
static int dm_meta_index(dm_ctx *c) {
    col_mbatch *b = c->out;
    if ((b->nmeta + 1) * 2 <= c->mslots) {
        return 0;
    }
    size_t slots = c->mslots ? c->mslots * 2 : 64;
    while ((b->nmeta + 1) * 2 > slots) {
        slots *= 2;
    }
    uint32_t *idx = sl_arena_calloc(c->a, slots, sizeof(*idx));
    if (idx == NULL) {
        return SL_ENOMEM;
    }
    for (size_t k = 0; k < b->nmeta; k++) {
        size_t i = dm_fam_slot(b->meta[k].metric, slots);
        while (idx[i] != 0) {
            i = (i + 1) & (slots - 1);
        }
        idx[i] = (uint32_t)k + 1;
    }
    c->midx = idx;
    c->mslots = slots;
    return 0;
}

static int dm_meta(dm_ctx *c, sl_str family, const char *type, const pb_metric *m) {
    col_mbatch *b = c->out;
    if (dm_meta_index(c) != 0) {
        return SL_ENOMEM;
    }
    size_t slot = dm_fam_slot(family, c->mslots);
    for (; c->midx[slot] != 0; slot = (slot + 1) & (c->mslots - 1)) {
        if (sl_str_eq(b->meta[c->midx[slot] - 1].metric, family)) {
            return 0;
        }
    }
    if (b->nmeta == b->mcap) {
        size_t cap = b->mcap ? b->mcap * 2 : 16;
        stg_metric_meta *nm = sl_arena_alloc(c->a, cap * sizeof(*nm));
        if (nm == NULL) {
            return SL_ENOMEM;
        }
        if (b->nmeta > 0) {
            memcpy(nm, b->meta, b->nmeta * sizeof(*nm));
        }
        b->meta = nm;
        b->mcap = cap;
    }
    sl_str unit = m != NULL ? col_prom_unit(c->a, dm_view(m->unit)) : (sl_str){"", 0};
    if (unit.ptr == NULL) {
        return SL_ENOMEM;
    }
    c->midx[slot] = (uint32_t)b->nmeta + 1;
    b->meta[b->nmeta++] = (stg_metric_meta){
        family, sl_str_c(type), m != NULL ? dm_view(m->description) : (sl_str){"", 0}, unit};
    return 0;
}

/* Exemplars of a point, attached to series idx. */
static int dm_exemplars(dm_ctx *c, size_t idx, pb_exemplar *const *ex, size_t n) {
    if (n == 0) {
        return 0;
    }
    stg_mseries *sr = &c->out->series[idx];
    stg_exemplar *e = sl_arena_calloc(c->a, n + sr->nexemplars, sizeof(*e));
    if (e == NULL) {
        return SL_ENOMEM;
    }
    if (sr->nexemplars > 0) {
        memcpy(e, sr->exemplars, sr->nexemplars * sizeof(*e));
    }
    size_t w = sr->nexemplars;
    for (size_t i = 0; i < n; i++) {
        const pb_exemplar *x = ex[i];
        stg_exemplar *o = &e[w];
        o->t_ms = (int64_t)(x->time_unix_nano / 1000000u);
        o->v = x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                   ? (double)x->as_int
                   : x->as_double;
        if (x->trace_id.len == 16) {
            memcpy(o->trace_id, x->trace_id.data, 16);
        }
        if (x->span_id.len == 8) {
            memcpy(o->span_id, x->span_id.data, 8);
        }
        dm_label *tmp = sl_arena_alloc(c->a, (x->n_filtered_attributes + 1) * sizeof(*tmp));
        if (tmp == NULL) {
            return SL_ENOMEM;
        }
        size_t nt = 0;
        for (size_t j = 0; j < x->n_filtered_attributes; j++) {
            sl_str key = dm_view(x->filtered_attributes[j]->key);
            tmp[nt] = (dm_label){col_prom_label_name(c->a, key), {"", 0}, key, 0};
            if (tmp[nt].name.ptr == NULL ||
                dm_value_text(c->a, x->filtered_attributes[j]->value, &tmp[nt].value) != 0) {
                return SL_ENOMEM;
            }
            nt += tmp[nt].name.len > 0;
        }
        stg_label *l;
        size_t nl;
        if (dm_finish_labels(c->a, tmp, nt, &l, &nl) != 0) {
            return SL_ENOMEM;
        }
        o->labels = l;
        o->nlabels = nl;
        w++;
    }
    sr->exemplars = e;
    sr->nexemplars = w;
    return 0;
}

static int64_t dm_ms(uint64_t ns) {
    return (int64_t)(ns / 1000000u);
}

/* Number points: gauges and sums. */
static int dm_numbers(dm_ctx *c, const pb_metric *m, sl_str mname, pb_num *const *pts, size_t n,
                      bool is_sum, int temporality, bool monotonic) {
    bool counter = is_sum && monotonic;
    sl_str name = col_prom_metric_name(c->a, mname, dm_view(m->unit), !is_sum, counter);
    if (name.ptr == NULL) {
        return SL_ENOMEM;
    }
    bool delta = is_sum && temporality == DM_TEMP_DELTA;
    bool meta = false;
    for (size_t i = 0; i < n; i++) {
        const pb_num *p = pts[i];
        bool stale = (p->flags & DM_NO_RECORDED_VALUE) != 0;
        if (is_sum && temporality != DM_TEMP_DELTA && temporality != DM_TEMP_CUMULATIVE) {
            dm_reject(c, mname, i, "sum without aggregation temporality");
            continue;
        }
        if (p->time_unix_nano == 0) {
            dm_reject(c, mname, i, "missing time_unix_nano");
            continue;
        }
        double v;
        if (stale) {
            v = dm_stale();
        } else if (p->value_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
            v = (double)p->as_int;
        } else if (p->value_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
            v = p->as_double;
        } else {
            dm_reject(c, mname, i, "data point without a value");
            continue;
        }
        size_t idx;
        size_t first = c->out->nseries;
        int rc = dm_point_attrs(c, p->attributes, p->n_attributes);
        if (rc == 0) {
            rc = dm_series(c, name, NULL, (sl_str){"", 0}, delta ? STG_MS_DELTA : STG_MS_CUMULATIVE,
                           dm_ms(p->time_unix_nano), v, &idx);
        }
        if (rc == 0) {
            rc = dm_exemplars(c, idx, p->exemplars, p->n_exemplars);
        }
        if (rc == SL_EDECODE) {
            dm_reject(c, mname, i, "attribute value nested too deeply");
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (!dm_gate(c, first, mname, i)) {
            continue;
        }
        c->out->points++;
        meta = true;
    }
    return meta ? dm_meta(c, name, counter ? "counter" : "gauge", m) : 0;
}

/* Emits one classic histogram point: cumulative bucket counts with their
 * upper bounds (ascending, without +Inf), count, optional sum. */
static int dm_classic(dm_ctx *c, sl_str base, stg_ms_kind kind, int64_t t, bool stale,
                      const double *bounds, const double *cum, size_t nb, double count,
                      bool has_sum, double sum, pb_exemplar *const *ex, size_t nex) {
    sl_str bucket = dm_concat(c->a, base, "bucket");
    sl_str sname = dm_concat(c->a, base, "sum");
    sl_str cname = dm_concat(c->a, base, "count");
    if (bucket.ptr == NULL || sname.ptr == NULL || cname.ptr == NULL) {
        return SL_ENOMEM;
    }
    double st = dm_stale();
    size_t first = c->out->nseries, idx;
    int rc = 0;
    for (size_t i = 0; i <= nb && rc == 0; i++) {
        char le[SL_FMT_DOUBLE_MAX];
        size_t len = i < nb ? col_prom_float(bounds[i], le) : col_prom_float(INFINITY, le);
        sl_str lev = dm_dup(c->a, le, len);
        if (lev.ptr == NULL) {
            return SL_ENOMEM;
        }
        rc = dm_series(c, bucket, "le", lev, kind, t, stale ? st : (i < nb ? cum[i] : count), &idx);
    }
    if (rc == 0) {
        rc = dm_series(c, cname, NULL, (sl_str){"", 0}, kind, t, stale ? st : count, &idx);
    }
    if (rc == 0 && has_sum) {
        rc = dm_series(c, sname, NULL, (sl_str){"", 0}, kind, t, stale ? st : sum, &idx);
    }
    /* Each exemplar goes to the bucket holding its value. */
    for (size_t i = 0; i < nex && rc == 0; i++) {
        double v = ex[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                       ? (double)ex[i]->as_int
                       : ex[i]->as_double;
        size_t b = 0;
        while (b < nb && v > bounds[b]) {
            b++;
        }
        rc = dm_exemplars(c, first + b, &ex[i], 1);
    }
    return rc;
}

static int dm_histograms(dm_ctx *c, const pb_metric *m, sl_str mname, int temporality) {
    const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
    sl_str base = col_prom_metric_name(c->a, mname, dm_view(m->unit), false, false);
    if (base.ptr == NULL) {
        return SL_ENOMEM;
    }
    bool meta = false;
    for (size_t i = 0; i < h->n_data_points; i++) {
        const pb_hist *p = h->data_points[i];
        if (temporality != DM_TEMP_DELTA && temporality != DM_TEMP_CUMULATIVE) {
            dm_reject(c, mname, i, "histogram without aggregation temporality");
            continue;
        }
        if (p->time_unix_nano == 0) {
            dm_reject(c, mname, i, "missing time_unix_nano");
            continue;
        }
        if (p->n_bucket_counts != 0 && p->n_bucket_counts != p->n_explicit_bounds + 1) {
            dm_reject(c, mname, i, "bucket_counts must have one more entry than explicit_bounds");
            continue;
        }
        bool sorted = true;
        for (size_t j = 0; j < p->n_explicit_bounds; j++) {
            if (isnan(p->explicit_bounds[j]) || isinf(p->explicit_bounds[j]) ||
                (j > 0 && !(p->explicit_bounds[j] > p->explicit_bounds[j - 1]))) {
                sorted = false;
            }
        }
        if (!sorted) {
            dm_reject(c, mname, i, "explicit_bounds must be finite and strictly increasing");
            continue;
        }
        size_t nb = p->n_bucket_counts != 0 ? p->n_explicit_bounds : 0;
        double *cum = sl_arena_alloc(c->a, (nb + 1) * sizeof(double));
        if (cum == NULL) {
            return SL_ENOMEM;
        }
        double acc = 0;
        for (size_t j = 0; j < nb; j++) {
            acc += (double)p->bucket_counts[j];
            cum[j] = acc;
        }
        size_t first = c->out->nseries;
        int rc = dm_point_attrs(c, p->attributes, p->n_attributes);
        if (rc == 0) {
            rc =
                dm_classic(c, base, temporality == DM_TEMP_DELTA ? STG_MS_DELTA : STG_MS_CUMULATIVE,
                           dm_ms(p->time_unix_nano), (p->flags & DM_NO_RECORDED_VALUE) != 0,
                           p->explicit_bounds, cum, nb, (double)p->count, p->has_sum, p->sum,
                           p->exemplars, p->n_exemplars);
        }
        if (rc == SL_EDECODE) {
            dm_reject(c, mname, i, "attribute value nested too deeply");
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (!dm_gate(c, first, mname, i)) {
            continue;
        }
        c->out->points++;
        meta = true;
    }
    return meta ? dm_meta(c, base, "histogram", m) : 0;
}

static int dm_exp_histograms(dm_ctx *c, const pb_metric *m, sl_str mname, int temporality) {
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = m->exponential_histogram;
    sl_str base = col_prom_metric_name(c->a, mname, dm_view(m->unit), false, false);
    if (base.ptr == NULL) {
        return SL_ENOMEM;
    }
    bool meta = false;
    for (size_t i = 0; i < h->n_data_points; i++) {
        const pb_ehist *p = h->data_points[i];
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets
            *pos = p->positive,
            *neg = p->negative;
        size_t npos = pos != NULL ? pos->n_bucket_counts : 0;
        size_t nneg = neg != NULL ? neg->n_bucket_counts : 0;
        if (temporality != DM_TEMP_DELTA && temporality != DM_TEMP_CUMULATIVE) {
            dm_reject(c, mname, i, "exponential histogram without aggregation temporality");
            continue;
        }
        if (p->time_unix_nano == 0) {
            dm_reject(c, mname, i, "missing time_unix_nano");
            continue;
        }
        if (p->scale < -10 || p->scale > 20) {
            dm_reject(c, mname, i, "scale outside [-10, 20]");
            continue;
        }
        if (npos > DM_MAX_EXP_BUCKETS || nneg > DM_MAX_EXP_BUCKETS) {
            dm_reject(c, mname, i, "more than 1024 buckets per side");
            continue;
        }
        double *bounds = sl_arena_alloc(c->a, (npos + nneg + 1) * sizeof(double));
        double *cum = sl_arena_alloc(c->a, (npos + nneg + 1) * sizeof(double));
        if (bounds == NULL || cum == NULL) {
            return SL_ENOMEM;
        }
        /* Bucket index i covers (base^i, base^(i+1)], base = 2^(2^-scale). */
        double step = ldexp(1.0, -p->scale);
        size_t nb = 0;
        double acc = 0;
        for (size_t j = nneg; j > 0; j--) {
            double idx = (double)neg->offset + (double)(j - 1);
            acc += (double)neg->bucket_counts[j - 1];
            double b = -exp2(idx * step);
            if (isinf(b) || (nb > 0 && !(b > bounds[nb - 1]))) {
                continue; /* folds into the next bound */
            }
            bounds[nb] = b;
            cum[nb++] = acc;
        }
        acc += (double)p->zero_count;
        double zt = p->zero_threshold > 0 ? p->zero_threshold : 0;
        if (nb == 0 || zt > bounds[nb - 1]) {
            bounds[nb] = zt;
            cum[nb++] = acc;
        } else {
            cum[nb - 1] = acc;
        }
        for (size_t j = 0; j < npos; j++) {
            double idx = (double)pos->offset + (double)j;
            acc += (double)pos->bucket_counts[j];
            double b = exp2((idx + 1) * step);
            if (isinf(b)) {
                break; /* the rest are counted by +Inf */
            }
            if (!(b > bounds[nb - 1])) {
                cum[nb - 1] = acc;
                continue;
            }
            bounds[nb] = b;
            cum[nb++] = acc;
        }
        size_t first = c->out->nseries;
        int rc = dm_point_attrs(c, p->attributes, p->n_attributes);
        if (rc == 0) {
            rc = dm_classic(
                c, base, temporality == DM_TEMP_DELTA ? STG_MS_DELTA : STG_MS_CUMULATIVE,
                dm_ms(p->time_unix_nano), (p->flags & DM_NO_RECORDED_VALUE) != 0, bounds, cum, nb,
                (double)p->count, p->has_sum, p->sum, p->exemplars, p->n_exemplars);
        }
        if (rc == SL_EDECODE) {
            dm_reject(c, mname, i, "attribute value nested too deeply");
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (!dm_gate(c, first, mname, i)) {
            continue;
        }
        c->out->points++;
        meta = true;
    }
    return meta ? dm_meta(c, base, "histogram", m) : 0;
}

static int dm_summaries(dm_ctx *c, const pb_metric *m, sl_str mname) {
    const Opentelemetry__Proto__Metrics__V1__Summary *s = m->summary;
    sl_str base = col_prom_metric_name(c->a, mname, dm_view(m->unit), false, false);
    sl_str sname = dm_concat(c->a, base, "sum");
    sl_str cname = dm_concat(c->a, base, "count");
    if (base.ptr == NULL || sname.ptr == NULL || cname.ptr == NULL) {
        return SL_ENOMEM;
    }
    bool meta = false;
    double st = dm_stale();
    for (size_t i = 0; i < s->n_data_points; i++) {
        const pb_summary *p = s->data_points[i];
        bool stale = (p->flags & DM_NO_RECORDED_VALUE) != 0, ok = true;
        if (p->time_unix_nano == 0) {
            dm_reject(c, mname, i, "missing time_unix_nano");
            continue;
        }
        for (size_t j = 0; j < p->n_quantile_values; j++) {
            double q = p->quantile_values[j]->quantile;
            ok = ok && q >= 0 && q <= 1;
        }
        if (!ok) {
            dm_reject(c, mname, i, "quantile outside [0, 1]");
            continue;
        }
        int64_t t = dm_ms(p->time_unix_nano);
        size_t idx;
        size_t first = c->out->nseries;
        int rc = dm_point_attrs(c, p->attributes, p->n_attributes);
        for (size_t j = 0; j < p->n_quantile_values && rc == 0; j++) {
            char q[SL_FMT_DOUBLE_MAX];
            sl_str qv = dm_dup(c->a, q, col_prom_float(p->quantile_values[j]->quantile, q));
            if (qv.ptr == NULL) {
                return SL_ENOMEM;
            }
            rc = dm_series(c, base, "quantile", qv, STG_MS_CUMULATIVE, t,
                           stale ? st : p->quantile_values[j]->value, &idx);
        }
        if (rc == 0) {
            rc = dm_series(c, sname, NULL, (sl_str){"", 0}, STG_MS_CUMULATIVE, t,
                           stale ? st : p->sum, &idx);
        }
        if (rc == 0) {
            rc = dm_series(c, cname, NULL, (sl_str){"", 0}, STG_MS_CUMULATIVE, t,
                           stale ? st : (double)p->count, &idx);
        }
        if (rc == SL_EDECODE) {
            dm_reject(c, mname, i, "attribute value nested too deeply");
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (!dm_gate(c, first, mname, i)) {
            continue;
        }
        c->out->points++;
        meta = true;
    }
    return meta ? dm_meta(c, base, "summary", m) : 0;
}

static size_t dm_metric_points(const pb_metric *m) {
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge != NULL ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum != NULL ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram != NULL ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram != NULL ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary != NULL ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

/* How many words dm_split would find in s, counted only as far as the
 * checks on it need: a name of up to 2 * limit - 1 bytes cannot have more
 * than limit words, so one letter or digit settles it. */
static size_t dm_count_words(sl_str s, size_t limit) {
    if (s.len < 2 * limit) {
        for (size_t i = 0; i < s.len; i++) {
            if (dm_alnum(s.ptr[i])) {
                return 1; /* at least one word, at most limit */
            }
        }
        return 0;
    }
    size_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s.len; i++) {
        bool w = dm_alnum(s.ptr[i]);
        n += w && !in;
        in = w;
    }
    return n;
}

static int dm_metric(dm_ctx *c, const pb_metric *m) {
    sl_str mname = dm_view(m->name);
    size_t npts = dm_metric_points(m);
    size_t nwords = dm_count_words(mname, DM_MAX_WORDS - 4);
    /* Room for the unit and type words too (col_prom_metric_name). */
    if (nwords == 0 || nwords > DM_MAX_WORDS - 4) {
        for (size_t i = 0; i < npts; i++) {
            dm_reject(c, mname, i,
                      nwords == 0 ? "metric name without letters or digits"
                                  : "metric name of more than 60 words");
        }
        return 0;
    }
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge == NULL ? 0
                                : dm_numbers(c, m, mname, m->gauge->data_points,
                                             m->gauge->n_data_points, false, 0, false);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum == NULL
                   ? 0
                   : dm_numbers(c, m, mname, m->sum->data_points, m->sum->n_data_points, true,
                                (int)m->sum->aggregation_temporality, m->sum->is_monotonic);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram == NULL
                   ? 0
                   : dm_histograms(c, m, mname, (int)m->histogram->aggregation_temporality);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram == NULL
                   ? 0
                   : dm_exp_histograms(c, m, mname,
                                       (int)m->exponential_histogram->aggregation_temporality);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary == NULL ? 0 : dm_summaries(c, m, mname);
    default:
        /* A metric without data has no points to reject. */
        return 0;
    }
}

/* The value of resource attribute key as label text ("" when absent), as
 * Prometheus reads it: whatever its type. */
static int dm_res_value(sl_arena *a, const Opentelemetry__Proto__Resource__V1__Resource *r,
                        const char *key, sl_str *out) {
    *out = (sl_str){"", 0};
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const pb_kv *kv = r->attributes[i];
        if (kv->key != NULL && strcmp(kv->key, key) == 0) {
            return dm_value_text(a, kv->value, out);
        }
    }
    return 0;
}

static bool dm_identifying(const char *k) {
    return strcmp(k, "service.name") == 0 || strcmp(k, "service.namespace") == 0 ||
           strcmp(k, "service.instance.id") == 0;
}

/* target_info{job, instance, service_name, <other resource attributes>} = 1,
 * when the resource has other attributes, stamped with the resource's latest
 * sample time. */
static int dm_target_info(dm_ctx *c, const Opentelemetry__Proto__Resource__V1__Resource *r) {
    size_t extra = 0;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key != NULL ? r->attributes[i]->key : "";
        extra += !dm_identifying(k);
    }
    if (extra == 0 || !c->res_any) {
        return 0;
    }
    pb_kv **kvs = sl_arena_alloc(c->a, extra * sizeof(*kvs));
    if (kvs == NULL) {
        return SL_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key != NULL ? r->attributes[i]->key : "";
        if (!dm_identifying(k)) {
            kvs[n++] = r->attributes[i];
        }
    }
    int rc = dm_point_attrs(c, kvs, n);
    size_t idx;
    size_t first = c->out->nseries;
    if (rc == 0) {
        rc = dm_series(c, SL_STR_LIT("target_info"), NULL, (sl_str){"", 0}, STG_MS_CUMULATIVE,
                       c->res_max_t, 1.0, &idx);
    }
    if (rc == 0 && !col_series_admit(c->out->gate, c->out->series + first, 1)) {
        c->out->nseries = first; /* counted by the gate; not a data point of the request */
        return 0;
    }
    if (rc == 0) {
        rc = dm_meta(c, SL_STR_LIT("target_info"), "gauge", NULL);
    }
    return rc == SL_EDECODE ? 0 : rc;
}

int col_metrics_to_series(
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
    sl_arena *a, col_mbatch *out, char *err, size_t err_size) {
    dm_ctx c = {.a = a, .out = out, .err = err, .err_size = err_size};
    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        const pb_rm *rm = req->resource_metrics[r];
        const Opentelemetry__Proto__Resource__V1__Resource *res = rm->resource;
        sl_str svc, ns, inst;
        int rc = dm_res_value(a, res, "service.name", &svc);
        if (rc == 0) {
            rc = dm_res_value(a, res, "service.namespace", &ns);
        }
        if (rc == 0) {
            rc = dm_res_value(a, res, "service.instance.id", &inst);
        }
        if (rc == SL_EDECODE) {
            svc = ns = inst = (sl_str){"", 0}; /* nested too deeply: not a usable name */
        } else if (rc != 0) {
            return rc;
        }
        c.nbase = 0;
        c.res_any = false;
        c.res_max_t = 0;
        if (svc.len > 0) {
            sl_str job = svc;
            if (ns.len > 0) {
                char *j = sl_arena_alloc(a, ns.len + svc.len + 2);
                if (j == NULL) {
                    return SL_ENOMEM;
                }
                int n = snprintf(j, ns.len + svc.len + 2, "%.*s/%.*s", (int)ns.len, ns.ptr,
                                 (int)svc.len, svc.ptr);
                job = (sl_str){j, (size_t)n};
            }
            c.base[c.nbase++] = (dm_label){SL_STR_LIT("job"), job, {"", 0}, 1};
            /* Not Prometheus's: the span-derived series carry service_name,
             * so OTLP series carry it too and the two join on it. */
            c.base[c.nbase++] = (dm_label){SL_STR_LIT("service_name"), svc, {"", 0}, 1};
        }
        if (inst.len > 0) {
            c.base[c.nbase++] = (dm_label){SL_STR_LIT("instance"), inst, {"", 0}, 1};
        }
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            const pb_sm *sm = rm->scope_metrics[s];
            for (size_t m = 0; m < sm->n_metrics; m++) {
                rc = dm_metric(&c, sm->metrics[m]);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        if (res != NULL) {
            rc = dm_target_info(&c, res);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}
