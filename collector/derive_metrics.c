/*
 * Span RED metrics and log counts (see derive_metrics.h): a request's items
 * are aggregated by group in a hash table (col_span_groups, col_log_groups);
 * the writer merges the groups of a batch's requests and expands each into
 * its series, encoded as one metrics WAL record (col_dgroups_encode).
 *
 * Thread: any; scratch memory comes from the caller's arena.
 */
#include "derive_metrics.h"

#include "storage.h"

#include "sl_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The OpenTelemetry Collector spanmetrics connector's default buckets (s). */
static const double dv_bounds[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                   0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const dv_le[] = {"0.002", "0.004", "0.006", "0.008", "0.01", "0.05",
                                    "0.1",   "0.2",   "0.4",   "0.8",   "1",    "1.4",
                                    "2",     "5",     "10",    "15",    "+Inf"};
#define DV_NB (sizeof(dv_bounds) / sizeof(dv_bounds[0]))
_Static_assert(DV_NB + 1 == COL_DV_COUNTS, "one count per bucket and +Inf");

static const char *const dv_kinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                       "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                       "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const dv_status[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

static const char *const dv_sev[] = {"unspecified", "trace", "debug", "info",
                                     "warn",        "error", "fatal"};

/* 0 (unspecified) or 1..6, the SeverityNumber's range. */
static uint8_t dv_severity(int32_t num) {
    return num >= 1 && num <= 24 ? (uint8_t)(1 + (num - 1) / 4) : 0;
}

/* A growing list of series being built for one record. */
typedef struct dv_list {
    sl_arena *a;
    stg_mseries *series;
    size_t n, cap;
    int64_t t_ms;
} dv_list;

static int dv_add(dv_list *l, const stg_label *labels, size_t nl, double v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        stg_mseries *s = sl_arena_alloc(l->a, cap * sizeof(*s));
        if (s == NULL) {
            return SL_ENOMEM;
        }
        if (l->n > 0) {
            memcpy(s, l->series, l->n * sizeof(*s));
        }
        l->series = s;
        l->cap = cap;
    }
    stg_label *lc = sl_arena_alloc(l->a, nl * sizeof(*lc));
    stg_sample *smp = sl_arena_alloc(l->a, sizeof(*smp));
    if (lc == NULL || smp == NULL) {
        return SL_ENOMEM;
    }
    size_t w = 0;
    for (size_t i = 0; i < nl; i++) {
        if (labels[i].value.len > 0) { /* Prometheus has no empty labels */
            lc[w++] = labels[i];
        }
    }
    nl = w;
    *smp = (stg_sample){l->t_ms, v};
    l->series[l->n++] = (stg_mseries){lc, nl, STG_MS_DELTA, smp, 1, NULL, 0};
    return 0;
}

/* A group being aggregated: its key and sums. */
typedef struct dv_acc {
    uint64_t hash;
    uint8_t type, kind, status;
    sl_str svc, name;
    double counts[COL_DV_COUNTS];
    double sum;
} dv_acc;

/* Appends g's series to l: 20 for a span group, 1 for a log group. */
static int dv_expand(const dv_acc *g, dv_list *l) {
    sl_str svc = g->svc;
    const double *counts = g->counts;
    if (g->type == COL_DG_LOG) {
        stg_label lab[4] = {
            {SL_STR_LIT("__name__"), SL_STR_LIT("logs_records_total")},
            {SL_STR_LIT("job"), svc},
            {SL_STR_LIT("service_name"), svc},
            {SL_STR_LIT("severity"), sl_str_c(dv_sev[g->kind])},
        };
        return dv_add(l, lab, 4, counts[0]);
    }
    double calls = 0;
    for (size_t b = 0; b <= DV_NB; b++) {
        calls += counts[b];
    }
    /* Labels in name order: __name__, job, [le,] service_name, span_kind,
     * span_name, status_code. */
    stg_label lab[7] = {
        {SL_STR_LIT("__name__"), SL_STR_LIT("traces_span_metrics_calls_total")},
        {SL_STR_LIT("job"), svc},
        {SL_STR_LIT("le"), {"", 0}},
        {SL_STR_LIT("service_name"), svc},
        {SL_STR_LIT("span_kind"), sl_str_c(dv_kinds[g->kind])},
        {SL_STR_LIT("span_name"), g->name},
        {SL_STR_LIT("status_code"), sl_str_c(dv_status[g->status])},
    };
    /* Series without le: skip slot 2. */
    stg_label nole[6] = {lab[0], lab[1], lab[3], lab[4], lab[5], lab[6]};
    int rc = dv_add(l, nole, 6, calls);
    double cum = 0;
    lab[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_bucket");
    for (size_t b = 0; b <= DV_NB && rc == 0; b++) {
        cum += counts[b];
        lab[2].value = sl_str_c(dv_le[b]);
        rc = dv_add(l, lab, 7, cum);
    }
    nole[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_sum");
    if (rc == 0) {
        rc = dv_add(l, nole, 6, g->sum);
    }
    nole[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_count");
    return rc == 0 ? dv_add(l, nole, 6, calls) : rc;
}

/* --- grouping ------------------------------------------------------------------- */

/* An open-addressing table of groups by key. */
typedef struct dv_table {
    uint32_t *slot; /* group index + 1; 0: empty */
    uint32_t mask;
    dv_acc *acc;
    size_t n;
} dv_table;

static int dv_table_init(dv_table *t, size_t max_groups, sl_arena *a) {
    size_t cap = 16;
    while (cap < 2 * max_groups) {
        cap *= 2;
    }
    t->slot = sl_arena_calloc(a, cap, sizeof(*t->slot));
    t->acc = sl_arena_alloc(a, max_groups * sizeof(*t->acc));
    t->mask = (uint32_t)(cap - 1);
    t->n = 0;
    return t->slot == NULL || t->acc == NULL ? SL_ENOMEM : 0;
}

static uint64_t dv_key_hash(uint8_t type, uint8_t kind, uint8_t status, uint64_t svc_hash,
                            sl_str name) {
    uint64_t h = sl_hash_bytes(name.ptr, name.len) ^ (svc_hash * 0x9e3779b97f4a7c15ull);
    return h ^ ((uint64_t)type << 16 | (uint64_t)kind << 8 | status) * 0xc2b2ae3d27d4eb4full;
}

/* The group of this key, added (zeroed) when new; the table has room. */
static dv_acc *dv_find(dv_table *t, uint64_t h, uint8_t type, uint8_t kind, uint8_t status,
                       sl_str svc, sl_str name) {
    uint32_t pos = (uint32_t)h & t->mask;
    for (;; pos = (pos + 1) & t->mask) {
        uint32_t s = t->slot[pos];
        if (s == 0) {
            break;
        }
        dv_acc *g = &t->acc[s - 1];
        if (g->hash == h && g->type == type && g->kind == kind && g->status == status &&
            sl_str_eq(g->svc, svc) && sl_str_eq(g->name, name)) {
            return g;
        }
    }
    dv_acc *g = &t->acc[t->n++];
    *g =
        (dv_acc){.hash = h, .type = type, .kind = kind, .status = status, .svc = svc, .name = name};
    t->slot[pos] = (uint32_t)t->n;
    return g;
}

/* Appends the group to out as a col_dgroup entry, unless the gate refuses
 * its series. */
static int dv_emit(const dv_acc *g, sl_arena *a, col_series_gate *gate, sl_buf *out) {
    size_t size = (sizeof(col_dgroup) + g->svc.len + g->name.len + 7) & ~(size_t)7;
    if (g->svc.len > UINT32_MAX || g->name.len > UINT32_MAX || size > UINT32_MAX) {
        return 0; /* cannot happen for strings of a request within the body limit */
    }
    if (sl_buf_reserve(out, size) != 0) {
        return SL_ENOMEM;
    }
    col_dgroup *e = (col_dgroup *)(void *)(out->data + out->len);
    memset(e, 0, size);
    e->hash = g->hash;
    e->size = (uint32_t)size;
    e->type = g->type;
    e->kind = g->kind;
    e->status = g->status;
    e->svc_len = (uint32_t)g->svc.len;
    e->name_len = (uint32_t)g->name.len;
    memcpy(e->counts, g->counts, sizeof(e->counts));
    e->sum = g->sum;
    if (g->svc.len > 0) {
        memcpy(e + 1, g->svc.ptr, g->svc.len);
    }
    if (g->name.len > 0) {
        memcpy((char *)(e + 1) + g->svc.len, g->name.ptr, g->name.len);
    }
    if (gate != NULL && gate->lim != NULL && gate->max > 0) {
        dv_list l = {.a = a};
        int rc = dv_expand(g, &l);
        if (rc != 0) {
            return rc;
        }
        if (!col_series_admit(gate, l.series, l.n)) {
            return 0; /* over the tenant's series limit: the items are kept, not the series */
        }
    }
    out->len += size;
    return 0;
}

static int dv_emit_all(const dv_table *t, sl_arena *a, col_series_gate *gate, sl_buf *out) {
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        rc = dv_emit(&t->acc[i], a, gate, out);
    }
    return rc;
}

int col_span_groups(const sl_span *spans, size_t n, sl_arena *a, col_series_gate *gate,
                    sl_buf *out) {
    if (n == 0) {
        return 0;
    }
    dv_table t;
    if (dv_table_init(&t, n, a) != 0) {
        return SL_ENOMEM;
    }
    const sl_resource *res = NULL;
    uint64_t svc_hash = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_span *sp = &spans[i];
        if (sp->resource != res) {
            res = sp->resource;
            svc_hash = sl_hash_bytes(res->service.ptr, res->service.len);
        }
        uint8_t kind = sp->kind <= 5 ? (uint8_t)sp->kind : 0;
        uint8_t status = sp->status_code <= 2 ? (uint8_t)sp->status_code : 0;
        uint64_t h = dv_key_hash(COL_DG_SPAN, kind, status, svc_hash, sp->name);
        dv_acc *g = dv_find(&t, h, COL_DG_SPAN, kind, status, res->service, sp->name);
        double d = (double)sl_span_duration_nano(sp) / 1e9;
        size_t b = 0;
        while (b < DV_NB && d > dv_bounds[b]) {
            b++;
        }
        g->counts[b]++;
        g->sum += d;
    }
    return dv_emit_all(&t, a, gate, out);
}

int col_log_groups(const sl_log_record *logs, size_t n, sl_arena *a, col_series_gate *gate,
                   sl_buf *out) {
    if (n == 0) {
        return 0;
    }
    dv_table t;
    if (dv_table_init(&t, n, a) != 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sl_str svc =
            logs[i].resource != NULL ? logs[i].resource->service : SL_STR_LIT("unknown_service");
        uint8_t sev = dv_severity(logs[i].severity_number);
        uint64_t h =
            dv_key_hash(COL_DG_LOG, sev, 0, sl_hash_bytes(svc.ptr, svc.len), SL_STR_LIT(""));
        dv_find(&t, h, COL_DG_LOG, sev, 0, svc, SL_STR_LIT(""))->counts[0]++;
    }
    return dv_emit_all(&t, a, gate, out);
}

/* --- the writer's merge ------------------------------------------------------- */

static sl_str dv_svc(const col_dgroup *g) {
    return (sl_str){(const char *)(g + 1), g->svc_len};
}

static sl_str dv_name(const col_dgroup *g) {
    return (sl_str){(const char *)(g + 1) + g->svc_len, g->name_len};
}

/* The entry at *off of buf, moving *off past it; NULL at the end. */
static const col_dgroup *dv_next(const sl_buf *buf, size_t *off) {
    if (*off + sizeof(col_dgroup) > buf->len) {
        return NULL;
    }
    const col_dgroup *e = (const col_dgroup *)(const void *)(buf->data + *off);
    if (e->size < sizeof(col_dgroup) || e->size > buf->len - *off) {
        return NULL; /* not written by col_*_groups */
    }
    *off += e->size;
    return e;
}

int col_dgroups_encode(const sl_buf *const *bufs, size_t nbufs, int64_t t_ms, sl_arena *a,
                       sl_buf *out) {
    size_t bytes = 0;
    for (size_t i = 0; i < nbufs; i++) {
        bytes += bufs[i]->len;
    }
    if (bytes < sizeof(col_dgroup)) {
        return 0;
    }
    dv_table t;
    if (dv_table_init(&t, bytes / sizeof(col_dgroup), a) != 0) { /* at most that many entries */
        return SL_ENOMEM;
    }
    bool spans = false, logs = false;
    for (size_t i = 0; i < nbufs; i++) {
        const col_dgroup *e;
        for (size_t off = 0; (e = dv_next(bufs[i], &off)) != NULL;) {
            dv_acc *g = dv_find(&t, e->hash, e->type, e->kind, e->status, dv_svc(e), dv_name(e));
            for (size_t b = 0; b < COL_DV_COUNTS; b++) {
                g->counts[b] += e->counts[b];
            }
            g->sum += e->sum;
            spans |= e->type == COL_DG_SPAN;
            logs |= e->type == COL_DG_LOG;
        }
    }
    dv_list l = {.a = a, .t_ms = t_ms};
    int rc = 0;
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        rc = dv_expand(&t.acc[i], &l);
    }
    stg_metric_meta meta[3];
    size_t nmeta = 0;
    if (spans) {
        meta[nmeta++] =
            (stg_metric_meta){SL_STR_LIT("traces_span_metrics_calls_total"),
                              SL_STR_LIT("counter"),
                              SL_STR_LIT("Spans received, by service, span name, kind and status"),
                              {"", 0}};
        meta[nmeta++] = (stg_metric_meta){
            SL_STR_LIT("traces_span_metrics_duration_seconds"), SL_STR_LIT("histogram"),
            SL_STR_LIT("Span durations, by service, span name, kind and status"),
            SL_STR_LIT("seconds")};
    }
    if (logs) {
        meta[nmeta++] =
            (stg_metric_meta){SL_STR_LIT("logs_records_total"),
                              SL_STR_LIT("counter"),
                              SL_STR_LIT("Log records received, by service and severity"),
                              {"", 0}};
    }
    if (rc == 0 && l.n > 0) {
        rc = stg_metrics_encode(l.series, l.n, meta, nmeta, out);
    }
    return rc;
}
