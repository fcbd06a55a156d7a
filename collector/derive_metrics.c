/*
 * Span RED metrics and log counts (see derive_metrics.h): items are sorted by
 * their series key, runs are aggregated into one delta per series, and the
 * series are encoded as one metrics WAL record (stg_metrics_encode).
 *
 * Thread: a decode worker; memory from the request's arena.
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

static const char *const dv_kinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                       "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                       "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const dv_status[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

static int dv_cmp_str(sl_str a, sl_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    return c != 0 ? c : (a.len > b.len) - (a.len < b.len);
}

static int dv_cmp_span(const void *a, const void *b) {
    const sl_span *x = *(const sl_span *const *)a, *y = *(const sl_span *const *)b;
    int c = dv_cmp_str(x->resource->service, y->resource->service);
    if (c == 0) {
        c = dv_cmp_str(x->name, y->name);
    }
    if (c == 0) {
        c = (int)x->kind - (int)y->kind;
    }
    return c != 0 ? c : (int)x->status_code - (int)y->status_code;
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

int col_span_metrics(const sl_span *spans, size_t n, uint64_t now_unix_nano, sl_arena *a,
                     col_series_gate *gate, sl_buf *out) {
    if (n == 0) {
        return 0;
    }
    const sl_span **order = sl_arena_alloc(a, n * sizeof(*order));
    if (order == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &spans[i];
    }
    qsort(order, n, sizeof(*order), dv_cmp_span);
    dv_list l = {.a = a, .t_ms = (int64_t)(now_unix_nano / 1000000u)};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i + 1;
        while (j < n && dv_cmp_span(&order[i], &order[j]) == 0) {
            j++;
        }
        const sl_span *sp = order[i];
        double counts[DV_NB + 1] = {0}, sum = 0;
        for (size_t k = i; k < j; k++) {
            double d = (double)sl_span_duration_nano(order[k]) / 1e9;
            size_t b = 0;
            while (b < DV_NB && d > dv_bounds[b]) {
                b++;
            }
            counts[b]++;
            sum += d;
        }
        /* Labels in name order: __name__, job, [le,] service_name,
         * span_kind, span_name, status_code. */
        sl_str svc = sp->resource->service;
        stg_label lab[7] = {
            {SL_STR_LIT("__name__"), SL_STR_LIT("traces_span_metrics_calls_total")},
            {SL_STR_LIT("job"), svc},
            {SL_STR_LIT("le"), {"", 0}},
            {SL_STR_LIT("service_name"), svc},
            {SL_STR_LIT("span_kind"), sl_str_c(dv_kinds[sp->kind <= 5 ? sp->kind : 0])},
            {SL_STR_LIT("span_name"), sp->name},
            {SL_STR_LIT("status_code"),
             sl_str_c(dv_status[sp->status_code <= 2 ? sp->status_code : 0])},
        };
        /* Series without le: skip slot 2. */
        stg_label nole[6] = {lab[0], lab[1], lab[3], lab[4], lab[5], lab[6]};
        size_t first = l.n;
        rc = dv_add(&l, nole, 6, (double)(j - i));
        double cum = 0;
        lab[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_bucket");
        for (size_t b = 0; b <= DV_NB && rc == 0; b++) {
            cum += counts[b];
            lab[2].value = sl_str_c(dv_le[b]);
            rc = dv_add(&l, lab, 7, cum);
        }
        nole[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_sum");
        if (rc == 0) {
            rc = dv_add(&l, nole, 6, sum);
        }
        nole[0].value = SL_STR_LIT("traces_span_metrics_duration_seconds_count");
        if (rc == 0) {
            rc = dv_add(&l, nole, 6, (double)(j - i));
        }
        if (rc == 0 && !col_series_admit(gate, l.series + first, l.n - first)) {
            l.n = first; /* over the tenant's series limit: the spans are kept, not the series */
        }
        i = j;
    }
    stg_metric_meta meta[2] = {
        {SL_STR_LIT("traces_span_metrics_calls_total"),
         SL_STR_LIT("counter"),
         SL_STR_LIT("Spans received, by service, span name, kind and status"),
         {"", 0}},
        {SL_STR_LIT("traces_span_metrics_duration_seconds"), SL_STR_LIT("histogram"),
         SL_STR_LIT("Span durations, by service, span name, kind and status"),
         SL_STR_LIT("seconds")},
    };
    return rc != 0 || l.n == 0 ? rc : stg_metrics_encode(l.series, l.n, meta, 2, out);
}

static const char *dv_severity(int32_t num) {
    static const char *const names[] = {"trace", "debug", "info", "warn", "error", "fatal"};
    return num >= 1 && num <= 24 ? names[(num - 1) / 4] : "unspecified";
}

static int dv_cmp_log(const void *a, const void *b) {
    const sl_log_record *x = *(const sl_log_record *const *)a,
                        *y = *(const sl_log_record *const *)b;
    sl_str sx = x->resource != NULL ? x->resource->service : SL_STR_LIT("unknown_service");
    sl_str sy = y->resource != NULL ? y->resource->service : SL_STR_LIT("unknown_service");
    int c = dv_cmp_str(sx, sy);
    return c != 0 ? c : strcmp(dv_severity(x->severity_number), dv_severity(y->severity_number));
}

int col_log_metrics(const sl_log_record *logs, size_t n, uint64_t now_unix_nano, sl_arena *a,
                    col_series_gate *gate, sl_buf *out) {
    if (n == 0) {
        return 0;
    }
    const sl_log_record **order = sl_arena_alloc(a, n * sizeof(*order));
    if (order == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &logs[i];
    }
    qsort(order, n, sizeof(*order), dv_cmp_log);
    dv_list l = {.a = a, .t_ms = (int64_t)(now_unix_nano / 1000000u)};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i + 1;
        while (j < n && dv_cmp_log(&order[i], &order[j]) == 0) {
            j++;
        }
        sl_str svc = order[i]->resource != NULL ? order[i]->resource->service
                                                : SL_STR_LIT("unknown_service");
        stg_label lab[4] = {
            {SL_STR_LIT("__name__"), SL_STR_LIT("logs_records_total")},
            {SL_STR_LIT("job"), svc},
            {SL_STR_LIT("service_name"), svc},
            {SL_STR_LIT("severity"), sl_str_c(dv_severity(order[i]->severity_number))},
        };
        rc = dv_add(&l, lab, 4, (double)(j - i));
        if (rc == 0 && !col_series_admit(gate, l.series + l.n - 1, 1)) {
            l.n--;
        }
        i = j;
    }
    stg_metric_meta meta = {SL_STR_LIT("logs_records_total"),
                            SL_STR_LIT("counter"),
                            SL_STR_LIT("Log records received, by service and severity"),
                            {"", 0}};
    return rc != 0 || l.n == 0 ? rc : stg_metrics_encode(l.series, l.n, &meta, 1, out);
}
