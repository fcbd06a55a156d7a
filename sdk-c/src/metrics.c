/*
 * Metrics: meters, instruments and their series, and the periodic reader
 * (one background thread) that collects and exports them.
 *
 * A series is one attribute set of one instrument. It is created on first
 * use (the only allocation) and lives until the provider is destroyed, so a
 * bound handle (sl_instrument_bind) stays valid and updates with one atomic
 * operation. Unbound updates find their series through a hash of the sorted,
 * serialised attribute set under the instrument's mutex. Sums and gauges are
 * atomics; a histogram point takes its series' mutex so that its buckets,
 * count and sum stay consistent.
 * Collection runs on the reader thread: it calls observable callbacks,
 * reads (cumulative) or swaps out (delta) every series and encodes an
 * ExportMetricsServiceRequest.
 */
#include "sdk_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX 2048
#define MAX_SERIES_ATTRS 64

static const double default_bounds[] = {0,   5,   10,   25,   50,   75,   100,  250,
                                        500, 750, 1000, 2500, 5000, 7500, 10000};

struct sl_series {
    struct sl_series *next_hash, *next_all;
    sl_instrument *inst;
    uint64_t hash;
    uint8_t *key;
    size_t key_len;
    ot_rec attrs;
    uint32_t nattrs;
    uint64_t start_ns;
    _Atomic int64_t i;
    _Atomic uint64_t d; /* double bits */
    atomic_bool touched;
    /* Histograms. */
    pthread_mutex_t mu;
    uint64_t *counts;
    uint64_t count;
    double sum, min, max;
    /* Observable sums in delta temporality: the previous reading. */
    double last_d;
    int64_t last_i;
};

struct sl_instrument {
    struct sl_instrument *next;
    sl_meter *m;
    sl_instrument_kind kind;
    char *name, *unit, *desc;
    bool is_int;
    double *bounds;
    size_t nbounds;
    sl_observe_fn cb;
    void *ud;
    sl_temporality temp;
    pthread_mutex_t mu;
    sl_series **table;
    uint32_t tcap, nseries;
    sl_series *all;
    sl_series *overflow;
};

struct sl_meter {
    struct sl_meter *next;
    sl_provider *p;
    ot_scope scope;
    sl_instrument *insts;
};

struct sl_observer {
    sl_instrument *inst;
};

struct ot_metrics {
    sl_provider *p;
    pthread_mutex_t mu; /* meters and instrument lists; collection */
    sl_meter *meters;
    pthread_t thread;
    bool started;
    pthread_mutex_t tmu; /* reader thread control */
    pthread_cond_t wake, done;
    bool stop;
    uint64_t flush_req, flush_done;
    int flush_rc;
    uint64_t interval_ns;
    uint32_t timeout_ms;
    sl_temporality temp;
    uint32_t card_limit;
    uint64_t start_ns;
    ot_buf body;
};

/* ---- series keys ------------------------------------------------------------------ */

typedef struct keybuf {
    uint8_t p[KEY_MAX];
    size_t len;
    bool over;
} keybuf;

static void kb_put(keybuf *k, const void *p, size_t n) {
    if (k->over || n > KEY_MAX - k->len) {
        k->over = true;
        return;
    }
    memcpy(k->p + k->len, p, n);
    k->len += n;
}

static void key_value(keybuf *k, const sl_any *v, int depth) {
    uint8_t t = (uint8_t)v->type;
    kb_put(k, &t, 1);
    if (depth > OT_MAX_DEPTH) {
        k->over = true;
        return;
    }
    switch (v->type) {
    case SL_ANY_STRING:
    case SL_ANY_BYTES: {
        const char *s = v->type == SL_ANY_STRING ? v->v.str : (const char *)v->v.bytes;
        size_t n = s == NULL
                       ? 0
                       : (v->type == SL_ANY_STRING && v->len == SL_LEN_AUTO ? strlen(s) : v->len);
        uint32_t n32 = (uint32_t)n;
        kb_put(k, &n32, sizeof n32);
        kb_put(k, s, n);
        break;
    }
    case SL_ANY_BOOL:
        kb_put(k, &v->v.b, 1);
        break;
    case SL_ANY_INT:
        kb_put(k, &v->v.i, 8);
        break;
    case SL_ANY_DOUBLE:
        kb_put(k, &v->v.d, 8);
        break;
    case SL_ANY_ARRAY:
    case SL_ANY_KVLIST: {
        uint32_t n32 = (uint32_t)v->len;
        kb_put(k, &n32, sizeof n32);
        for (size_t i = 0; i < v->len && !k->over; i++) {
            if (v->type == SL_ANY_ARRAY) {
                key_value(k, &v->v.array[i], depth + 1);
            } else {
                kb_put(k, v->v.kvlist[i].key, strlen(v->v.kvlist[i].key) + 1);
                key_value(k, &v->v.kvlist[i].value, depth + 1);
            }
        }
        break;
    }
    default:
        break;
    }
}

/* Sorts attrs by key into order[] (the series identity ignores order). */
static int sort_attrs(const sl_kv *attrs, size_t n, const sl_kv **order) {
    if (n > MAX_SERIES_ATTRS || (attrs == NULL && n > 0)) {
        return SL_OTEL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].key == NULL) {
            return SL_OTEL_EINVAL;
        }
        const sl_kv *x = &attrs[i];
        size_t j = i;
        while (j > 0 && strcmp(order[j - 1]->key, x->key) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    return 0;
}

/* Hashes the key 8 bytes at a time (a byte-wise FNV costs a multiply per
 * byte: it dominated the unbound add). */
static uint64_t key_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebu;
    return h ^ (h >> 29);
}

static sl_series *series_new(sl_instrument *in, const keybuf *k, uint64_t h, const sl_kv **order,
                             size_t n) {
    sl_series *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->inst = in;
    s->hash = h;
    s->key = malloc(k->len ? k->len : 1);
    if (in->kind == SL_INSTRUMENT_HISTOGRAM) {
        s->counts = calloc(in->nbounds + 1, sizeof *s->counts);
    }
    if (s->key == NULL || (in->kind == SL_INSTRUMENT_HISTOGRAM && s->counts == NULL)) {
        free(s->key);
        free(s->counts);
        free(s);
        return NULL;
    }
    memcpy(s->key, k->p, k->len);
    s->key_len = k->len;
    uint32_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        ot_rec_set(&s->attrs, OT_OWNER_SELF, order[i], UINT32_MAX, UINT32_MAX, &s->nattrs,
                   &dropped);
    }
    s->start_ns = in->m->p->metrics ? in->m->p->metrics->start_ns : ot_now_ns();
    s->min = INFINITY;
    s->max = -INFINITY;
    pthread_mutex_init(&s->mu, NULL);
    s->next_all = in->all;
    in->all = s;
    return s;
}

static int table_grow(sl_instrument *in) {
    uint32_t cap = in->tcap ? in->tcap * 2 : 16;
    sl_series **t = calloc(cap, sizeof *t);
    if (t == NULL) {
        return SL_OTEL_ENOMEM;
    }
    for (uint32_t i = 0; i < in->tcap; i++) {
        for (sl_series *s = in->table[i]; s != NULL;) {
            sl_series *next = s->next_hash;
            s->next_hash = t[s->hash & (cap - 1)];
            t[s->hash & (cap - 1)] = s;
            s = next;
        }
    }
    free(in->table);
    in->table = t;
    in->tcap = cap;
    return 0;
}

/* Finds or creates the series of an attribute set. */
static int series_get(sl_instrument *in, const sl_kv *attrs, size_t n, sl_series **out) {
    const sl_kv *order[MAX_SERIES_ATTRS];
    int rc = sort_attrs(attrs, n, order);
    if (rc != 0) {
        return rc;
    }
    keybuf k;
    k.len = 0;
    k.over = false;
    for (size_t i = 0; i < n; i++) {
        kb_put(&k, order[i]->key, strlen(order[i]->key) + 1);
        key_value(&k, &order[i]->value, 0);
    }
    if (k.over) {
        return SL_OTEL_ELIMIT;
    }
    uint64_t h = key_hash(k.p, k.len);
    pthread_mutex_lock(&in->mu);
    sl_series *s = NULL;
    if (in->tcap > 0) {
        for (s = in->table[h & (in->tcap - 1)]; s != NULL; s = s->next_hash) {
            if (s->hash == h && s->key_len == k.len && memcmp(s->key, k.p, k.len) == 0) {
                break;
            }
        }
    }
    if (s == NULL) {
        sl_provider *p = in->m->p;
        uint32_t limit = p->metrics ? p->metrics->card_limit : 2000;
        if (in->nseries + 1 >= limit) {
            /* Past the cardinality limit everything goes to one overflow
             * series, as the specification prescribes. */
            if (in->overflow == NULL) {
                sl_kv ov = SL_KV_BOOL("otel.metric.overflow", true);
                const sl_kv *ovp = &ov;
                keybuf ok = {.len = 0};
                kb_put(&ok, "\x01overflow", 10);
                in->overflow = series_new(in, &ok, 0, &ovp, 1);
            }
            s = in->overflow;
            rc = s ? 0 : SL_OTEL_ENOMEM;
        } else if ((in->nseries + 1) * 2 > in->tcap && (rc = table_grow(in)) != 0) {
            s = NULL;
        } else if ((s = series_new(in, &k, h, order, n)) == NULL) {
            rc = SL_OTEL_ENOMEM;
        } else {
            s->next_hash = in->table[h & (in->tcap - 1)];
            in->table[h & (in->tcap - 1)] = s;
            in->nseries++;
        }
    }
    pthread_mutex_unlock(&in->mu);
    if (s != NULL) {
        *out = s;
    }
    return s != NULL ? 0 : rc;
}

/* ---- updates ---------------------------------------------------------------------------- */

static void atomic_add_double(_Atomic uint64_t *a, double v) {
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed), nv;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += v;
        memcpy(&nv, &d, sizeof nv);
    } while (!atomic_compare_exchange_weak_explicit(a, &old, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static bool is_sum(sl_instrument_kind k) {
    return k == SL_INSTRUMENT_COUNTER || k == SL_INSTRUMENT_UPDOWN_COUNTER ||
           k == SL_INSTRUMENT_OBSERVABLE_COUNTER || k == SL_INSTRUMENT_OBSERVABLE_UPDOWN_COUNTER;
}

static bool is_monotonic(sl_instrument_kind k) {
    return k == SL_INSTRUMENT_COUNTER || k == SL_INSTRUMENT_OBSERVABLE_COUNTER;
}

static int series_add(sl_series *s, double v, int64_t iv, bool as_int) {
    sl_instrument *in = s->inst;
    if (in->kind != SL_INSTRUMENT_COUNTER && in->kind != SL_INSTRUMENT_UPDOWN_COUNTER) {
        return SL_OTEL_EINVAL;
    }
    if (in->kind == SL_INSTRUMENT_COUNTER && (as_int ? iv < 0 : !(v >= 0))) {
        return SL_OTEL_EINVAL; /* counters only go up; NaN is refused too */
    }
    if (in->is_int) {
        atomic_fetch_add_explicit(&s->i, as_int ? iv : (int64_t)llround(v), memory_order_relaxed);
    } else {
        atomic_add_double(&s->d, as_int ? (double)iv : v);
    }
    if (!atomic_load_explicit(&s->touched, memory_order_relaxed)) {
        atomic_store_explicit(&s->touched, true, memory_order_relaxed);
    }
    return 0;
}

static int series_record(sl_series *s, double v) {
    sl_instrument *in = s->inst;
    if (in->kind == SL_INSTRUMENT_GAUGE) {
        if (in->is_int) {
            atomic_store_explicit(&s->i, (int64_t)llround(v), memory_order_relaxed);
        } else {
            uint64_t bits;
            memcpy(&bits, &v, sizeof bits);
            atomic_store_explicit(&s->d, bits, memory_order_relaxed);
        }
        atomic_store_explicit(&s->touched, true, memory_order_release);
        return 0;
    }
    if (in->kind != SL_INSTRUMENT_HISTOGRAM || isnan(v)) {
        return SL_OTEL_EINVAL;
    }
    size_t lo = 0, hi = in->nbounds; /* first bound >= v; values above all go last */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= in->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->counts[lo]++;
    s->count++;
    s->sum += v;
    if (v < s->min) {
        s->min = v;
    }
    if (v > s->max) {
        s->max = v;
    }
    pthread_mutex_unlock(&s->mu);
    atomic_store_explicit(&s->touched, true, memory_order_relaxed);
    return 0;
}

int sl_instrument_add(sl_instrument *i, double v, const sl_kv *attrs, size_t n) {
    sl_series *s;
    if (i == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = series_get(i, attrs, n, &s);
    return rc != 0 ? rc : series_add(s, v, 0, false);
}

int sl_instrument_add_int(sl_instrument *i, int64_t v, const sl_kv *attrs, size_t n) {
    sl_series *s;
    if (i == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = series_get(i, attrs, n, &s);
    return rc != 0 ? rc : series_add(s, 0, v, true);
}

int sl_instrument_record(sl_instrument *i, double v, const sl_kv *attrs, size_t n) {
    sl_series *s;
    if (i == NULL) {
        return SL_OTEL_EINVAL;
    }
    int rc = series_get(i, attrs, n, &s);
    return rc != 0 ? rc : series_record(s, v);
}

int sl_instrument_bind(sl_instrument *i, const sl_kv *attrs, size_t n, sl_series **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (i == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    return series_get(i, attrs, n, out);
}

int sl_series_add(sl_series *s, double v) {
    return s == NULL ? SL_OTEL_EINVAL : series_add(s, v, 0, false);
}

int sl_series_add_int(sl_series *s, int64_t v) {
    return s == NULL ? SL_OTEL_EINVAL : series_add(s, 0, v, true);
}

int sl_series_record(sl_series *s, double v) {
    return s == NULL ? SL_OTEL_EINVAL : series_record(s, v);
}

static int observe(sl_observer *obs, double v, int64_t iv, bool as_int, const sl_kv *attrs,
                   size_t n) {
    if (obs == NULL || obs->inst == NULL) {
        return SL_OTEL_EINVAL;
    }
    sl_series *s;
    int rc = series_get(obs->inst, attrs, n, &s);
    if (rc != 0) {
        return rc;
    }
    if (obs->inst->is_int) {
        atomic_store_explicit(&s->i, as_int ? iv : (int64_t)llround(v), memory_order_relaxed);
    } else {
        double d = as_int ? (double)iv : v;
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        atomic_store_explicit(&s->d, bits, memory_order_relaxed);
    }
    atomic_store_explicit(&s->touched, true, memory_order_relaxed);
    return 0;
}

int sl_observer_observe(sl_observer *obs, double v, const sl_kv *attrs, size_t n) {
    return observe(obs, v, 0, false, attrs, n);
}

int sl_observer_observe_int(sl_observer *obs, int64_t v, const sl_kv *attrs, size_t n) {
    return observe(obs, 0, v, true, attrs, n);
}

/* ---- meters and instruments --------------------------------------------------------------- */

void sl_instrument_options_init(sl_instrument_options *o) {
    if (o != NULL) {
        memset(o, 0, sizeof *o);
        o->temporality = -1;
    }
}

int ot_meter_get(sl_provider *p, const char *name, const char *version, sl_meter **out) {
    ot_metrics *m = p->metrics;
    if (m == NULL) {
        return p->disabled ? SL_OTEL_EDISABLED : SL_OTEL_ESHUTDOWN;
    }
    const char *v = version ? version : "";
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    sl_meter *mt = m->meters;
    while (mt != NULL &&
           !(strcmp(mt->scope.name, name) == 0 && strcmp(mt->scope.version, v) == 0)) {
        mt = mt->next;
    }
    if (mt == NULL) {
        mt = calloc(1, sizeof *mt);
        if (mt != NULL) {
            mt->scope.name = ot_strdup(name);
            mt->scope.version = ot_strdup(v);
        }
        if (mt == NULL || mt->scope.name == NULL || mt->scope.version == NULL) {
            if (mt != NULL) {
                free(mt->scope.name);
                free(mt->scope.version);
                free(mt);
            }
            mt = NULL;
            rc = SL_OTEL_ENOMEM;
        } else {
            mt->p = p;
            mt->next = m->meters;
            m->meters = mt;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == 0) {
        *out = mt;
    }
    return rc;
}

static bool valid_name(const char *n) {
    size_t len = strlen(n);
    if (len == 0 || len > 255 || !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z'))) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '/')) {
            return false;
        }
    }
    return true;
}

static void inst_free(sl_instrument *in) {
    for (sl_series *s = in->all; s != NULL;) {
        sl_series *n = s->next_all;
        ot_rec_free(&s->attrs);
        pthread_mutex_destroy(&s->mu);
        free(s->key);
        free(s->counts);
        free(s);
        s = n;
    }
    pthread_mutex_destroy(&in->mu);
    free(in->table);
    free(in->name);
    free(in->unit);
    free(in->desc);
    free(in->bounds);
    free(in);
}

int sl_meter_create(sl_meter *mt, const sl_instrument_options *o, sl_instrument **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (mt == NULL || o == NULL || out == NULL || o->name == NULL || !valid_name(o->name) ||
        (unsigned)o->kind > SL_INSTRUMENT_OBSERVABLE_GAUGE ||
        (o->kind >= SL_INSTRUMENT_OBSERVABLE_COUNTER && o->callback == NULL) ||
        (o->buckets == NULL && o->bucket_count > 0)) {
        return SL_OTEL_EINVAL;
    }
    for (size_t i = 1; i < o->bucket_count; i++) {
        if (!(o->buckets[i] > o->buckets[i - 1])) {
            return SL_OTEL_EINVAL;
        }
    }
    ot_metrics *m = mt->p->metrics;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    sl_instrument *in = mt->insts;
    while (in != NULL && strcasecmp(in->name, o->name) != 0) {
        in = in->next;
    }
    if (in != NULL) {
        if (in->kind != o->kind || in->is_int != o->is_int) {
            rc = SL_OTEL_EINVAL;
        }
        goto out;
    }
    in = calloc(1, sizeof *in);
    if (in == NULL) {
        rc = SL_OTEL_ENOMEM;
        goto out;
    }
    pthread_mutex_init(&in->mu, NULL);
    in->m = mt;
    in->kind = o->kind;
    in->is_int = o->is_int;
    in->cb = o->callback;
    in->ud = o->callback_userdata;
    in->temp = o->temporality >= 0 ? (sl_temporality)o->temporality : m->temp;
    in->name = ot_strdup(o->name);
    in->unit = ot_strdup(o->unit ? o->unit : "");
    in->desc = ot_strdup(o->description ? o->description : "");
    const double *b = o->buckets ? o->buckets : default_bounds;
    in->nbounds = o->buckets ? o->bucket_count : sizeof default_bounds / sizeof default_bounds[0];
    in->bounds = malloc((in->nbounds ? in->nbounds : 1) * sizeof *in->bounds);
    if (in->name == NULL || in->unit == NULL || in->desc == NULL || in->bounds == NULL) {
        inst_free(in);
        in = NULL;
        rc = SL_OTEL_ENOMEM;
        goto out;
    }
    memcpy(in->bounds, b, in->nbounds * sizeof *b);
    in->next = mt->insts;
    mt->insts = in;
out:
    pthread_mutex_unlock(&m->mu);
    if (rc == 0) {
        *out = in;
    }
    return rc;
}

int sl_meter_counter(sl_meter *m, const char *name, const char *unit, const char *description,
                     sl_instrument **out) {
    sl_instrument_options o;
    sl_instrument_options_init(&o);
    o.kind = SL_INSTRUMENT_COUNTER;
    o.is_int = true;
    o.name = name;
    o.unit = unit;
    o.description = description;
    return sl_meter_create(m, &o, out);
}

int sl_meter_histogram(sl_meter *m, const char *name, const char *unit, const char *description,
                       sl_instrument **out) {
    sl_instrument_options o;
    sl_instrument_options_init(&o);
    o.kind = SL_INSTRUMENT_HISTOGRAM;
    o.name = name;
    o.unit = unit;
    o.description = description;
    return sl_meter_create(m, &o, out);
}

/* ---- collection ---------------------------------------------------------------------------- */

/* Whether s yields a point now (delta drops untouched series). */
static bool has_point(const sl_instrument *in, sl_series *s) {
    if (in->temp == SL_TEMPORALITY_DELTA || in->kind == SL_INSTRUMENT_GAUGE ||
        in->kind == SL_INSTRUMENT_OBSERVABLE_GAUGE ||
        in->kind >= SL_INSTRUMENT_OBSERVABLE_COUNTER) {
        return atomic_load(&s->touched);
    }
    return true;
}

static void enc_number(ot_enc *e, const sl_instrument *in, sl_series *s, uint64_t now) {
    bool delta = in->temp == SL_TEMPORALITY_DELTA;
    bool observable = in->kind >= SL_INSTRUMENT_OBSERVABLE_COUNTER;
    bool gauge = in->kind == SL_INSTRUMENT_GAUGE || in->kind == SL_INSTRUMENT_OBSERVABLE_GAUGE;
    int64_t iv;
    double dv;
    if (delta && !gauge && !observable) {
        iv = atomic_exchange(&s->i, 0);
        uint64_t bits = atomic_exchange(&s->d, 0);
        memcpy(&dv, &bits, sizeof dv);
    } else {
        iv = atomic_load(&s->i);
        uint64_t bits = atomic_load(&s->d);
        memcpy(&dv, &bits, sizeof dv);
        if (delta && observable && !gauge) {
            /* Observable sums report totals: the delta is the difference. */
            int64_t pi = s->last_i;
            double pd = s->last_d;
            s->last_i = iv;
            s->last_d = dv;
            iv -= pi;
            dv -= pd;
        }
    }
    ot_enc_begin(e, 1, NULL);
    ot_enc_attrs(e, 7, &s->attrs, OT_OWNER_SELF);
    if (!gauge) {
        ot_enc_fixed64(e, 2, "startTimeUnixNano", s->start_ns);
    }
    ot_enc_fixed64(e, 3, "timeUnixNano", now);
    if (in->is_int) {
        ot_enc_sfixed64(e, 6, "asInt", iv);
    } else {
        ot_enc_double(e, 4, "asDouble", dv);
    }
    ot_enc_end(e);
    if (delta) {
        s->start_ns = now;
        atomic_store(&s->touched, false);
    } else if (observable || gauge) {
        atomic_store(&s->touched, false); /* a callback must report again */
    }
}

static void enc_histogram(ot_enc *e, const sl_instrument *in, sl_series *s, uint64_t now,
                          uint64_t *counts) {
    bool delta = in->temp == SL_TEMPORALITY_DELTA;
    pthread_mutex_lock(&s->mu);
    memcpy(counts, s->counts, (in->nbounds + 1) * sizeof *counts);
    uint64_t count = s->count;
    double sum = s->sum, mn = s->min, mx = s->max;
    if (delta) {
        memset(s->counts, 0, (in->nbounds + 1) * sizeof *counts);
        s->count = 0;
        s->sum = 0;
        s->min = INFINITY;
        s->max = -INFINITY;
    }
    pthread_mutex_unlock(&s->mu);
    ot_enc_begin(e, 1, NULL);
    ot_enc_attrs(e, 9, &s->attrs, OT_OWNER_SELF);
    ot_enc_fixed64(e, 2, "startTimeUnixNano", s->start_ns);
    ot_enc_fixed64(e, 3, "timeUnixNano", now);
    ot_enc_fixed64(e, 4, "count", count);
    ot_enc_double(e, 5, "sum", sum);
    ot_enc_fixed64_packed(e, 6, "bucketCounts", counts, in->nbounds + 1);
    ot_enc_double_packed(e, 7, "explicitBounds", in->bounds, in->nbounds);
    if (count > 0) {
        ot_enc_double(e, 11, "min", mn);
        ot_enc_double(e, 12, "max", mx);
    }
    ot_enc_end(e);
    if (delta) {
        s->start_ns = now;
        atomic_store(&s->touched, false);
    }
}

/* Encodes one instrument; returns its number of points. */
static size_t enc_instrument(ot_enc *e, sl_instrument *in, uint64_t now) {
    if (in->cb != NULL) {
        sl_observer obs = {in};
        in->cb(&obs, in->ud);
    }
    pthread_mutex_lock(&in->mu);
    size_t points = 0;
    for (sl_series *s = in->all; s != NULL; s = s->next_all) {
        points += has_point(in, s);
    }
    if (points == 0) {
        pthread_mutex_unlock(&in->mu);
        return 0;
    }
    uint64_t counts_stack[64];
    uint64_t *counts = counts_stack;
    if (in->nbounds + 1 > 64) {
        counts = malloc((in->nbounds + 1) * sizeof *counts);
        if (counts == NULL) {
            pthread_mutex_unlock(&in->mu);
            return 0;
        }
    }
    ot_enc_begin(e, 2, NULL);
    ot_enc_str(e, 1, "name", in->name, strlen(in->name));
    if (in->desc[0]) {
        ot_enc_str(e, 2, "description", in->desc, strlen(in->desc));
    }
    if (in->unit[0]) {
        ot_enc_str(e, 3, "unit", in->unit, strlen(in->unit));
    }
    bool hist = in->kind == SL_INSTRUMENT_HISTOGRAM;
    bool sum = is_sum(in->kind);
    ot_enc_begin(e, hist ? 9 : sum ? 7 : 5, hist ? "histogram" : sum ? "sum" : "gauge");
    ot_enc_array_begin(e, "dataPoints");
    for (sl_series *s = in->all; s != NULL; s = s->next_all) {
        if (!has_point(in, s)) {
            continue;
        }
        if (hist) {
            enc_histogram(e, in, s, now, counts);
        } else {
            enc_number(e, in, s, now);
        }
    }
    ot_enc_array_end(e);
    if (hist || sum) {
        ot_enc_u32(e, 2, "aggregationTemporality", in->temp == SL_TEMPORALITY_DELTA ? 1 : 2);
    }
    if (sum) {
        ot_enc_bool(e, 3, "isMonotonic", is_monotonic(in->kind));
    }
    ot_enc_end(e);
    ot_enc_end(e);
    pthread_mutex_unlock(&in->mu);
    if (counts != counts_stack) {
        free(counts);
    }
    return points;
}

/* Collects everything into m->body; returns the number of points. */
static size_t collect(ot_metrics *m, bool json) {
    sl_provider *p = m->p;
    uint64_t now = ot_now_ns();
    m->body.len = 0;
    m->body.oom = false;
    ot_enc e;
    ot_enc_init(&e, &m->body, json);
    size_t points = 0;
    pthread_mutex_lock(&m->mu);
    ot_enc_array_begin(&e, "resourceMetrics");
    ot_enc_begin(&e, 1, NULL);
    ot_enc_resource(&e, p);
    ot_enc_array_begin(&e, "scopeMetrics");
    for (sl_meter *mt = m->meters; mt != NULL; mt = mt->next) {
        if (mt->insts == NULL) {
            continue;
        }
        ot_enc_begin(&e, 2, NULL);
        ot_enc_scope(&e, &mt->scope);
        ot_enc_array_begin(&e, "metrics");
        for (sl_instrument *in = mt->insts; in != NULL; in = in->next) {
            points += enc_instrument(&e, in, now);
        }
        ot_enc_array_end(&e);
        ot_enc_end(&e);
    }
    ot_enc_array_end(&e);
    ot_enc_end(&e);
    ot_enc_array_end(&e);
    pthread_mutex_unlock(&m->mu);
    ot_enc_finish(&e);
    return points;
}

static int collect_and_export(ot_metrics *m) {
    sl_provider *p = m->p;
    size_t points = collect(m, ot_exporter_is_json(p->x_metrics));
    if (points == 0) {
        return 0;
    }
    if (m->body.oom) {
        atomic_fetch_add(&p->stats.metric_exports_failed, 1);
        return SL_OTEL_ENOMEM;
    }
    uint64_t dl = ot_deadline(m->timeout_ms);
    uint64_t abort_at = atomic_load(&p->abort_deadline_ns);
    int64_t rejected = 0;
    int rc = ot_exporter_send(p->x_metrics, m->body.p, m->body.len, dl < abort_at ? dl : abort_at,
                              &rejected);
    if (rc == 0) {
        atomic_fetch_add(&p->stats.metric_points_exported,
                         points - (size_t)(rejected > 0 ? rejected : 0));
        atomic_fetch_add(&p->stats.partial_success_rejected,
                         (uint64_t)(rejected > 0 ? rejected : 0));
    } else {
        atomic_fetch_add(&p->stats.metric_exports_failed, 1);
    }
    return rc;
}

static void *reader(void *arg) {
    ot_metrics *m = arg;
    pthread_mutex_lock(&m->tmu);
    uint64_t next = ot_mono_ns() + m->interval_ns;
    for (;;) {
        while (!m->stop && m->flush_req == m->flush_done && ot_mono_ns() < next) {
            ot_cond_wait_until(&m->wake, &m->tmu, next);
        }
        if (m->stop && m->flush_req == m->flush_done) {
            break; /* shutdown's own flush made the last collection */
        }
        uint64_t want = m->flush_req;
        bool stop = m->stop;
        pthread_mutex_unlock(&m->tmu);
        int rc = collect_and_export(m);
        pthread_mutex_lock(&m->tmu);
        if (want != m->flush_done) {
            m->flush_rc = rc;
            m->flush_done = want;
            pthread_cond_broadcast(&m->done);
        }
        if (stop) {
            break;
        }
        next = ot_mono_ns() + m->interval_ns;
    }
    m->flush_done = m->flush_req;
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->tmu);
    return NULL;
}

int ot_metrics_create(sl_provider *p, const sl_provider_options *o, ot_metrics **out) {
    *out = NULL;
    ot_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return SL_OTEL_ENOMEM;
    }
    m->p = p;
    m->interval_ns =
        (uint64_t)(o->metric_export_interval_ms ? o->metric_export_interval_ms : 60000) * 1000000u;
    m->timeout_ms = o->metric_export_timeout_ms ? o->metric_export_timeout_ms : 30000;
    m->temp = o->metric_temporality;
    m->card_limit = o->metric_cardinality_limit ? o->metric_cardinality_limit : 2000;
    m->start_ns = ot_now_ns();
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->tmu, NULL);
    int rc = ot_cond_init_mono(&m->wake);
    if (rc == 0 && (rc = ot_cond_init_mono(&m->done)) != 0) {
        pthread_cond_destroy(&m->wake);
    }
    if (rc == 0 && (rc = -pthread_create(&m->thread, NULL, reader, m)) != 0) {
        pthread_cond_destroy(&m->wake);
        pthread_cond_destroy(&m->done);
    }
    if (rc != 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->tmu);
        free(m);
        return rc;
    }
    m->started = true;
    *out = m;
    return 0;
}

int ot_metrics_flush(ot_metrics *m, uint64_t deadline_ns) {
    int rc = 0;
    pthread_mutex_lock(&m->tmu);
    if (m->stop) {
        pthread_mutex_unlock(&m->tmu);
        return SL_OTEL_ESHUTDOWN;
    }
    uint64_t ticket = ++m->flush_req;
    pthread_cond_signal(&m->wake);
    while (m->flush_done < ticket) {
        if (ot_cond_wait_until(&m->done, &m->tmu, deadline_ns) == ETIMEDOUT &&
            m->flush_done < ticket) {
            rc = SL_OTEL_ETIMEOUT;
            break;
        }
    }
    if (rc == 0 && m->flush_rc != 0) {
        rc = SL_OTEL_EEXPORT;
    }
    pthread_mutex_unlock(&m->tmu);
    return rc;
}

int ot_metrics_shutdown(ot_metrics *m, uint64_t deadline_ns) {
    /* The last collection is a flush bounded by the deadline. */
    int rc = ot_metrics_flush(m, deadline_ns);
    pthread_mutex_lock(&m->tmu);
    bool was = m->stop;
    m->stop = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->tmu);
    if (!was && m->started) {
        pthread_join(m->thread, NULL);
        m->started = false;
    }
    return rc;
}

void ot_metrics_destroy(ot_metrics *m) {
    if (m == NULL) {
        return;
    }
    if (m->started) {
        ot_metrics_shutdown(m, ot_deadline(0));
    }
    for (sl_meter *mt = m->meters; mt != NULL;) {
        sl_meter *next = mt->next;
        for (sl_instrument *in = mt->insts; in != NULL;) {
            sl_instrument *ni = in->next;
            inst_free(in);
            in = ni;
        }
        free(mt->scope.name);
        free(mt->scope.version);
        free(mt);
        mt = next;
    }
    pthread_cond_destroy(&m->wake);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->tmu);
    ot_buf_free(&m->body);
    free(m);
}

size_t ot_metrics_collect(ot_metrics *m, bool json, const uint8_t **body, size_t *len) {
    size_t points = collect(m, json);
    *body = m->body.p;
    *len = m->body.len;
    return points;
}
