/*
 * The Prometheus HTTP API: /api/v1/query, /api/v1/query_range, /api/v1/series,
 * /api/v1/labels, /api/v1/label/{name}/values and /api/v1/metadata, answered
 * with Prometheus's envelope ({"status":"success","data":...} or
 * {"status":"error","errorType":...,"error":...}), string-encoded sample
 * values and float-second timestamps, so that a Grafana Prometheus data
 * source works unchanged.
 *
 * The PromQL engine (promql/) reads the metrics store through a querier
 * adapter defined here over stg_select_series; the engine itself knows
 * nothing of storage. Errors map as Prometheus maps them: parse and parameter
 * errors 400 bad_data, evaluation errors 422 execution, timeouts 503 timeout,
 * storage failures 503 unavailable.
 *
 * Thread-safety: every handler works on per-request state only; the store is
 * thread-safe by contract.
 */
#include "qry_querier.h"
#include "query_int.h"

#include "promql.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prometheus's minTime/maxTime for series and label requests without bounds. */
#define MIN_TIME_MS (INT64_MIN / 4)
#define MAX_TIME_MS (INT64_MAX / 4)
#define DEFAULT_QUERY_TIMEOUT_MS 120000
#define MAX_MATCH_PARAMS 64

/* --- envelope ----------------------------------------------------------------- */

static void prom_error(qry_resp *resp, int status, const char *type, const char *msg) {
    qry_jw w;
    resp->body.len = 0;
    qry_jw_init(&w, &resp->body);
    QRY_JW_LIT(&w, "{\"status\":\"error\",\"errorType\":");
    qry_jw_str(&w, type, strlen(type));
    QRY_JW_LIT(&w, ",\"error\":");
    qry_jw_str(&w, msg, strlen(msg));
    QRY_JW_LIT(&w, "}");
    resp->status = status;
    resp->content_type = "application/json";
    if (w.err != 0) {
        resp->body.len = 0;
    }
}

static void bad_param(qry_resp *resp, const char *name, const char *what, sl_str v) {
    char msg[300];
    snprintf(msg, sizeof(msg), "invalid parameter \"%s\": cannot parse \"%.*s\" to a valid %s",
             name, (int)(v.len > 100 ? 100 : v.len), v.ptr ? v.ptr : "", what);
    prom_error(resp, 400, "bad_data", msg);
}

static void storage_error(qry_resp *resp, int rc) {
    if (rc == SL_EINVAL) {
        prom_error(resp, 400, "bad_data", "invalid matcher");
    } else {
        prom_error(resp, 503, "unavailable", sl_strerror(rc));
    }
}

static void success_open(qry_jw *w) {
    QRY_JW_LIT(w, "{\"status\":\"success\",\"data\":");
}

/* Finishes a success body; a writer error (size limit, memory) becomes an
 * error answer. */
static void success_close(qry_jw *w, qry_resp *resp) {
    QRY_JW_LIT(w, "}");
    if (w->err != 0) {
        prom_error(resp, w->err == SL_ETOOBIG ? 422 : 503,
                   w->err == SL_ETOOBIG ? "execution" : "unavailable",
                   w->err == SL_ETOOBIG ? "response larger than the configured limit"
                                        : "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
}

/* --- parameters ------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *p, size_t n, int *out) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 with optional fraction: 2006-01-02T15:04:05.999Z or +hh:mm. */
static int parse_rfc3339(sl_str s, int64_t *out_ms) {
    const char *p = s.ptr;
    int y, mo, d, h, mi, sec;
    if (s.len < 20 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't') ||
        p[13] != ':' || p[16] != ':' || digits(p, 4, &y) || digits(p + 5, 2, &mo) ||
        digits(p + 8, 2, &d) || digits(p + 11, 2, &h) || digits(p + 14, 2, &mi) ||
        digits(p + 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60) {
        return SL_EINVAL;
    }
    size_t i = 19;
    int64_t ms = 0;
    if (i < s.len && p[i] == '.') {
        i++;
        int scale = 100;
        size_t start = i;
        while (i < s.len && p[i] >= '0' && p[i] <= '9') {
            ms += (p[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) {
            return SL_EINVAL;
        }
    }
    int64_t off_s = 0;
    if (i < s.len && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
    } else if (i + 6 == s.len && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
        int oh, om;
        if (digits(p + i + 1, 2, &oh) || digits(p + i + 4, 2, &om)) {
            return SL_EINVAL;
        }
        off_s = (p[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        i += 6;
    } else {
        return SL_EINVAL;
    }
    if (i != s.len) {
        return SL_EINVAL;
    }
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out_ms = secs * 1000 + ms;
    return 0;
}

/* Parses s as a whole as a floating-point number. Returns 0 or SL_EINVAL. */
static int parse_float(sl_str s, double *out) {
    char buf[64];
    if (s.len == 0 || s.len >= sizeof(buf)) {
        return SL_EINVAL;
    }
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + s.len) {
        return SL_EINVAL;
    }
    *out = v;
    return 0;
}

/* Prometheus's parseTime: float seconds (millisecond precision) or RFC 3339. */
static int parse_time(sl_str s, int64_t *out_ms) {
    double v;
    if (parse_float(s, &v) == 0) {
        double ms = round(v * 1000.0);
        if (!isfinite(v) || ms < -9.2e15 || ms > 9.2e15) {
            return SL_EINVAL;
        }
        *out_ms = (int64_t)ms;
        return 0;
    }
    return parse_rfc3339(s, out_ms);
}

/* Prometheus's parseDuration: float seconds or a duration ("1m30s"). */
static int parse_step(sl_str s, int64_t *out_ms) {
    double v;
    if (parse_float(s, &v) == 0) {
        if (!isfinite(v) || v * 1000.0 > 9.2e15 || v * 1000.0 < -9.2e15) {
            return SL_EINVAL;
        }
        *out_ms = (int64_t)(v * 1000.0);
        return 0;
    }
    return pq_parse_duration(s, out_ms);
}

static int time_param(const qry_req *req, qry_resp *resp, const char *name, int64_t dflt,
                      int64_t *out) {
    sl_str v;
    if (!qry_args_get(&req->args, name, &v)) {
        *out = dflt;
        return 0;
    }
    if (parse_time(v, out) != 0) {
        bad_param(resp, name, "timestamp", v);
        return SL_EINVAL;
    }
    return 0;
}

/* The deadline of an evaluation: the server's default, shortened by a
 * timeout parameter. */
static int deadline(const qry_req *req, qry_resp *resp, uint64_t *out_ns) {
    int64_t ms = DEFAULT_QUERY_TIMEOUT_MS;
    sl_str v;
    if (qry_args_get(&req->args, "timeout", &v)) {
        int64_t t;
        if (parse_step(v, &t) != 0 || t <= 0) {
            bad_param(resp, "timeout", "duration", v);
            return SL_EINVAL;
        }
        if (t < ms) {
            ms = t;
        }
    }
    *out_ns = sl_mono_nano() + (uint64_t)ms * 1000000ULL;
    return 0;
}

int qry_parse_form(sl_str body, sl_arena *a, qry_kv *kv, size_t cap, size_t *n) {
    size_t i = 0;
    while (i < body.len) {
        size_t j = i;
        while (j < body.len && body.ptr[j] != '&') {
            j++;
        }
        if (j > i) {
            if (*n >= cap) {
                return SL_ETOOBIG;
            }
            char *dec = sl_arena_alloc(a, j - i + 1);
            if (dec == NULL) {
                return SL_ENOMEM;
            }
            size_t k = 0, eq = SIZE_MAX;
            for (size_t p = i; p < j; p++) {
                char c = body.ptr[p];
                if (c == '=' && eq == SIZE_MAX) {
                    eq = k;
                    dec[k++] = '\0';
                    continue;
                }
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi = p + 2 < j ? body.ptr[p + 1] : 0, lo = p + 2 < j ? body.ptr[p + 2] : 0;
                    uint8_t byte;
                    char hex[2] = {(char)hi, (char)lo};
                    if (sl_hex_decode(hex, 2, &byte, 1) != 0) {
                        return SL_EINVAL;
                    }
                    c = (char)byte;
                    p += 2;
                }
                dec[k++] = c;
            }
            if (eq == SIZE_MAX) {
                kv[*n].key = (sl_str){dec, k};
                kv[*n].val = (sl_str){"", 0};
            } else {
                kv[*n].key = (sl_str){dec, eq};
                kv[*n].val = (sl_str){dec + eq + 1, k - eq - 1};
            }
            (*n)++;
        }
        i = j + 1;
    }
    return 0;
}

/* --- the querier over the store ---------------------------------------------------- */

typedef struct select_ctx {
    pq_series_cb cb;
    void *cb_ud;
    pq_label *labels;
    size_t labels_cap;
} select_ctx;

static int forward_series(void *ud, const stg_label *labels, size_t nlabels,
                          const stg_sample *samples, size_t nsamples) {
    select_ctx *c = ud;
    if (nlabels > c->labels_cap &&
        sl_array_grow(&c->labels, &c->labels_cap, nlabels, sizeof(pq_label)) != 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < nlabels; i++) {
        c->labels[i] = (pq_label){labels[i].name, labels[i].value};
    }
    return c->cb(c->cb_ud, c->labels, nlabels, samples, nsamples); /* one sample type */
}

static stg_matcher *convert_matchers(const pq_matcher *m, size_t nm, sl_arena *a) {
    stg_matcher *sm = sl_arena_alloc(a, (nm ? nm : 1) * sizeof(stg_matcher));
    if (sm == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < nm; i++) {
        static const stg_match_op ops[] = {STG_MATCH_EQ, STG_MATCH_NE, STG_MATCH_RE, STG_MATCH_NRE};
        sm[i] = (stg_matcher){ops[m[i].op], m[i].name, m[i].value};
    }
    return sm;
}

int qry_store_select(void *ud, const pq_matcher *m, size_t nm, int64_t mint_ms, int64_t maxt_ms,
                     pq_series_cb cb, void *cb_ud) {
    qry_store_querier *sq = ud;
    sl_arena a;
    sl_arena_init(&a, (size_t)1 << 20);
    select_ctx c = {cb, cb_ud, NULL, 0};
    stg_matcher *sm = convert_matchers(m, nm, &a);
    int rc = sm == NULL ? SL_ENOMEM
                        : stg_select_series(sq->store, sq->tenant, sm, nm, mint_ms, maxt_ms,
                                            forward_series, &c);
    free(c.labels);
    sl_arena_free(&a);
    return rc;
}

/* --- rendering ------------------------------------------------------------------------ */

/* A timestamp as Prometheus writes it, seconds with up to three decimals,
 * into out (room for 24); returns the length. Integer arithmetic only:
 * result timestamps are whole milliseconds (multiples of the step). */
static size_t fmt_time(int64_t ms, char *out) {
    char rev[24];
    size_t n = 0, r = 0;
    int64_t s = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        s -= 1;
    }
    uint64_t u = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    if (s < 0) {
        out[n++] = '-';
    }
    do {
        rev[r++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    while (r > 0) {
        out[n++] = rev[--r];
    }
    if (frac != 0) {
        out[n++] = '.';
        out[n++] = (char)('0' + frac / 100);
        out[n++] = (char)('0' + frac / 10 % 10);
        out[n++] = (char)('0' + frac % 10);
        while (out[n - 1] == '0') {
            n--;
        }
    }
    return n;
}

static void jw_time(qry_jw *w, int64_t ms) {
    char buf[24];
    qry_jw_raw(w, buf, fmt_time(ms, buf));
}

/* [t,"v"], after a comma unless first: one append per point. */
static void jw_point_sep(qry_jw *w, pq_sample p, bool first) {
    char buf[SL_FMT_DOUBLE_MAX + 32];
    size_t n = 0;
    if (!first) {
        buf[n++] = ',';
    }
    buf[n++] = '[';
    n += fmt_time(p.t_ms, buf + n);
    buf[n++] = ',';
    buf[n++] = '"';
    n += sl_fmt_double(p.v, buf + n);
    buf[n++] = '"';
    buf[n++] = ']';
    qry_jw_raw(w, buf, n);
}

static void jw_point(qry_jw *w, pq_sample p) {
    jw_point_sep(w, p, true);
}

static void jw_labels(qry_jw *w, const pq_label *l, size_t n) {
    QRY_JW_LIT(w, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            QRY_JW_LIT(w, ",");
        }
        qry_jw_str(w, l[i].name.ptr, l[i].name.len);
        QRY_JW_LIT(w, ":");
        qry_jw_str(w, l[i].value.ptr, l[i].value.len);
    }
    QRY_JW_LIT(w, "}");
}

static void render_result(qry_jw *w, const pq_result *r) {
    static const char *const types[] = {"scalar", "vector", "matrix", "string"};
    QRY_JW_LIT(w, "{\"resultType\":\"");
    qry_jw_raw(w, types[r->type], strlen(types[r->type]));
    QRY_JW_LIT(w, "\",\"result\":");
    if (r->type == PQ_SCALAR) {
        jw_point(w, r->scalar);
    } else if (r->type == PQ_STRING) {
        QRY_JW_LIT(w, "[");
        jw_time(w, r->scalar.t_ms);
        QRY_JW_LIT(w, ",");
        qry_jw_str(w, r->string.ptr, r->string.len);
        QRY_JW_LIT(w, "]");
    } else {
        QRY_JW_LIT(w, "[");
        for (size_t i = 0; i < r->nseries && w->err == 0; i++) {
            const pq_series *s = &r->series[i];
            if (i > 0) {
                QRY_JW_LIT(w, ",");
            }
            QRY_JW_LIT(w, "{\"metric\":");
            jw_labels(w, s->labels, s->nlabels);
            if (r->type == PQ_VECTOR) {
                QRY_JW_LIT(w, ",\"value\":");
                jw_point(w, s->points[0]);
            } else {
                QRY_JW_LIT(w, ",\"values\":[");
                for (size_t j = 0; j < s->npoints; j++) {
                    jw_point_sep(w, s->points[j], j == 0);
                }
                QRY_JW_LIT(w, "]");
            }
            QRY_JW_LIT(w, "}");
        }
        QRY_JW_LIT(w, "]");
    }
    QRY_JW_LIT(w, "}");
}

/* --- query and query_range --------------------------------------------------------- */

static void run_query(const qry_req *req, qry_resp *resp, const pq_eval_opts *o) {
    sl_str text = {"", 0};
    qry_args_get(&req->args, "query", &text);
    pq_query *q = NULL;
    pq_error err;
    pq_result r;
    int rc = pq_parse(text, &q, &err);
    if (rc == 0) {
        qry_store_querier sq = {req->store, req->tenant};
        pq_querier qr = {qry_store_select, &sq};
        rc = pq_eval(q, &qr, o, &r, &err);
    }
    if (rc != 0) {
        switch (err.kind) {
        case PQ_ERR_BAD_DATA:
            prom_error(resp, 400, "bad_data", err.msg);
            break;
        case PQ_ERR_EXECUTION:
            prom_error(resp, 422, "execution", err.msg);
            break;
        case PQ_ERR_TIMEOUT:
            prom_error(resp, 503, "timeout", err.msg);
            break;
        default:
            prom_error(resp, 503, "unavailable", err.msg[0] ? err.msg : sl_strerror(rc));
            break;
        }
        pq_query_free(q);
        return;
    }
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    success_open(&w);
    render_result(&w, &r);
    success_close(&w, resp);
    pq_query_free(q);
}

void qry_api_prom_query(const qry_req *req, qry_resp *resp) {
    pq_eval_opts o;
    pq_eval_opts_init(&o);
    int64_t now_ms = (int64_t)(req->now_unix_nano / 1000000);
    if (time_param(req, resp, "time", now_ms, &o.start_ms) != 0 ||
        deadline(req, resp, &o.deadline_mono_ns) != 0) {
        return;
    }
    o.end_ms = o.start_ms;
    run_query(req, resp, &o);
}

void qry_api_prom_query_range(const qry_req *req, qry_resp *resp) {
    pq_eval_opts o;
    pq_eval_opts_init(&o);
    sl_str v;
    static const char *const required[] = {"start", "end", "step"};
    for (size_t i = 0; i < 3; i++) {
        if (!qry_args_get(&req->args, required[i], &v)) {
            char msg[96];
            snprintf(msg, sizeof(msg), "invalid parameter \"%s\": missing", required[i]);
            prom_error(resp, 400, "bad_data", msg);
            return;
        }
    }
    if (time_param(req, resp, "start", 0, &o.start_ms) != 0 ||
        time_param(req, resp, "end", 0, &o.end_ms) != 0) {
        return;
    }
    if (o.end_ms < o.start_ms) {
        prom_error(resp, 400, "bad_data",
                   "invalid parameter \"end\": end timestamp must not be before start time");
        return;
    }
    qry_args_get(&req->args, "step", &v);
    if (parse_step(v, &o.step_ms) != 0) {
        bad_param(resp, "step", "duration", v);
        return;
    }
    if (o.step_ms <= 0) {
        prom_error(resp, 400, "bad_data",
                   "invalid parameter \"step\": zero or negative query resolution step widths "
                   "are not accepted. Try a positive integer");
        return;
    }
    if ((o.end_ms - o.start_ms) / o.step_ms >= 11000) {
        prom_error(resp, 400, "bad_data",
                   "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                   "the query resolution (?step=XX)");
        return;
    }
    if (deadline(req, resp, &o.deadline_mono_ns) != 0) {
        return;
    }
    run_query(req, resp, &o);
}

/* --- series, labels, label values ------------------------------------------------------- */

/* The match[] selectors of a request, parsed. */
typedef struct match_set {
    pq_query *q[MAX_MATCH_PARAMS];
    stg_matcher *m[MAX_MATCH_PARAMS];
    size_t nm[MAX_MATCH_PARAMS];
    size_t n;
} match_set;

static void match_set_free(match_set *ms) {
    for (size_t i = 0; i < ms->n; i++) {
        pq_query_free(ms->q[i]);
    }
    ms->n = 0;
}

static int parse_matches(const qry_req *req, qry_resp *resp, match_set *ms) {
    ms->n = 0;
    for (size_t i = 0; i < req->args.n; i++) {
        if (!sl_str_eqc(req->args.kv[i].key, "match[]")) {
            continue;
        }
        if (ms->n == MAX_MATCH_PARAMS) {
            prom_error(resp, 400, "bad_data", "too many match[] parameters");
            match_set_free(ms);
            return SL_EINVAL;
        }
        const pq_matcher *m;
        size_t nm;
        pq_error err;
        int rc = pq_parse_selector(req->args.kv[i].val, &ms->q[ms->n], &m, &nm, &err);
        if (rc != 0) {
            prom_error(resp, rc == SL_EINVAL ? 400 : 503,
                       rc == SL_EINVAL ? "bad_data" : "unavailable", err.msg);
            return rc;
        }
        ms->nm[ms->n] = nm;
        ms->m[ms->n] = convert_matchers(m, nm, req->arena);
        ms->n++;
        if (ms->m[ms->n - 1] == NULL) {
            prom_error(resp, 503, "unavailable", "out of memory");
            match_set_free(ms);
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* A set of distinct strings (label names, values) or label sets (series,
 * rendered as JSON objects), kept sorted for output. */
typedef struct str_set {
    sl_arena *a;
    sl_str *v;
    size_t n, cap;
    uint64_t *h; /* open addressing over hashes; index + 1, 0 empty */
    uint32_t *idx;
    size_t hcap;
    int err;
} str_set;

static uint64_t hash_bytes(sl_str s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (uint8_t)s.ptr[i]) * 0x100000001b3ULL;
    }
    return h;
}

static int set_rehash(str_set *s, size_t cap) {
    uint64_t *h = sl_arena_calloc(s->a, cap, sizeof(uint64_t));
    uint32_t *idx = sl_arena_calloc(s->a, cap, sizeof(uint32_t));
    if (h == NULL || idx == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        uint64_t hv = hash_bytes(s->v[i]);
        size_t k = hv & (cap - 1);
        while (idx[k] != 0) {
            k = (k + 1) & (cap - 1);
        }
        h[k] = hv;
        idx[k] = (uint32_t)i + 1;
    }
    s->h = h;
    s->idx = idx;
    s->hcap = cap;
    return 0;
}

static int set_add(str_set *s, sl_str v) {
    if ((s->n + 1) * 2 > s->hcap && set_rehash(s, s->hcap ? s->hcap * 2 : 256) != 0) {
        return SL_ENOMEM;
    }
    uint64_t hv = hash_bytes(v);
    size_t k = hv & (s->hcap - 1);
    while (s->idx[k] != 0) {
        if (s->h[k] == hv && sl_str_eq(s->v[s->idx[k] - 1], v)) {
            return 0;
        }
        k = (k + 1) & (s->hcap - 1);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        sl_str *b = sl_arena_alloc(s->a, cap * sizeof(sl_str));
        if (b == NULL) {
            return SL_ENOMEM;
        }
        if (s->n > 0) {
            memcpy(b, s->v, s->n * sizeof(sl_str));
        }
        s->v = b;
        s->cap = cap;
    }
    char *copy = sl_arena_strndup(s->a, v.ptr ? v.ptr : "", v.len);
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    s->v[s->n] = (sl_str){copy, v.len};
    s->h[k] = hv;
    s->idx[k] = (uint32_t)++s->n;
    return 0;
}

static int str_cmp(const void *a, const void *b) {
    const sl_str *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static int collect_str(void *ud, sl_str v) {
    return set_add(ud, v);
}

/* Series are collected as their rendered JSON label objects: distinct and
 * sortable as strings, and ready to write. */
static int collect_series(void *ud, const stg_label *labels, size_t nlabels,
                          const stg_sample *samples, size_t nsamples) {
    str_set *s = ud;
    sl_buf b;
    qry_jw w;
    (void)samples;
    (void)nsamples;
    sl_buf_init(&b, (size_t)1 << 20);
    qry_jw_init(&w, &b);
    QRY_JW_LIT(&w, "{");
    for (size_t i = 0; i < nlabels; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        qry_jw_str(&w, labels[i].name.ptr, labels[i].name.len);
        QRY_JW_LIT(&w, ":");
        qry_jw_str(&w, labels[i].value.ptr, labels[i].value.len);
    }
    QRY_JW_LIT(&w, "}");
    int rc = w.err != 0 ? w.err : set_add(s, (sl_str){(const char *)b.data, b.len});
    sl_buf_free(&b);
    return rc;
}

static void render_set(qry_resp *resp, str_set *s, bool raw) {
    if (s->n > 1) {
        qsort(s->v, s->n, sizeof(sl_str), str_cmp);
    }
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    success_open(&w);
    QRY_JW_LIT(&w, "[");
    for (size_t i = 0; i < s->n && w.err == 0; i++) {
        if (i > 0) {
            QRY_JW_LIT(&w, ",");
        }
        if (raw) {
            qry_jw_raw(&w, s->v[i].ptr, s->v[i].len);
        } else {
            qry_jw_str(&w, s->v[i].ptr, s->v[i].len);
        }
    }
    QRY_JW_LIT(&w, "]");
    success_close(&w, resp);
}

static int time_range(const qry_req *req, qry_resp *resp, int64_t *start, int64_t *end) {
    if (time_param(req, resp, "start", MIN_TIME_MS, start) != 0 ||
        time_param(req, resp, "end", MAX_TIME_MS, end) != 0) {
        return SL_EINVAL;
    }
    if (*end < *start) {
        prom_error(resp, 400, "bad_data",
                   "invalid parameter \"end\": end timestamp must not be before start time");
        return SL_EINVAL;
    }
    return 0;
}

void qry_api_prom_series(const qry_req *req, qry_resp *resp) {
    int64_t start, end;
    match_set ms;
    if (time_range(req, resp, &start, &end) != 0 || parse_matches(req, resp, &ms) != 0) {
        return;
    }
    if (ms.n == 0) {
        prom_error(resp, 400, "bad_data", "no match[] parameter provided");
        return;
    }
    str_set set = {.a = req->arena};
    int rc = 0;
    for (size_t i = 0; i < ms.n && rc == 0; i++) {
        rc = stg_select_series(req->store, req->tenant, ms.m[i], ms.nm[i], start, end,
                               collect_series, &set);
    }
    match_set_free(&ms);
    if (rc != 0) {
        storage_error(resp, rc);
        return;
    }
    render_set(resp, &set, true);
}

/* Answers /api/v1/labels (name NULL) or /api/v1/label/{name}/values: the
 * union over every match[] selector, or over all series without one. */
static void label_query(const qry_req *req, qry_resp *resp, const sl_str *name) {
    int64_t start, end;
    match_set ms;
    if (time_range(req, resp, &start, &end) != 0 || parse_matches(req, resp, &ms) != 0) {
        return;
    }
    str_set set = {.a = req->arena};
    int rc = 0;
    for (size_t i = 0; i < (ms.n ? ms.n : 1) && rc == 0; i++) {
        const stg_matcher *m = ms.n ? ms.m[i] : NULL;
        size_t nm = ms.n ? ms.nm[i] : 0;
        rc = name != NULL
                 ? stg_label_values(req->store, req->tenant, *name, m, nm, start, end, collect_str,
                                    &set)
                 : stg_label_names(req->store, req->tenant, m, nm, start, end, collect_str, &set);
    }
    match_set_free(&ms);
    if (rc != 0) {
        storage_error(resp, rc);
        return;
    }
    render_set(resp, &set, false);
}

void qry_api_prom_labels(const qry_req *req, qry_resp *resp) {
    label_query(req, resp, NULL);
}

void qry_api_prom_label_values(const qry_req *req, sl_str name, qry_resp *resp) {
    if (!pq_valid_label_name(name)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid label name: \"%.*s\"",
                 (int)(name.len > 100 ? 100 : name.len), name.ptr);
        prom_error(resp, 400, "bad_data", msg);
        return;
    }
    label_query(req, resp, &name);
}

/* --- metadata ----------------------------------------------------------------------- */

typedef struct meta_ctx {
    qry_jw *w;
    size_t n;     /* families written */
    size_t limit; /* 0: no limit */
} meta_ctx;

static int write_meta(void *ud, const stg_metric_meta *m) {
    meta_ctx *c = ud;
    if (c->limit > 0 && c->n >= c->limit) {
        return 1; /* stop: enough families */
    }
    if (c->n > 0) {
        QRY_JW_LIT(c->w, ",");
    }
    qry_jw_str(c->w, m->metric.ptr, m->metric.len);
    QRY_JW_LIT(c->w, ":[{\"type\":");
    qry_jw_str(c->w, m->type.ptr, m->type.len);
    QRY_JW_LIT(c->w, ",\"help\":");
    qry_jw_str(c->w, m->help.ptr, m->help.len);
    QRY_JW_LIT(c->w, ",\"unit\":");
    qry_jw_str(c->w, m->unit.ptr, m->unit.len);
    QRY_JW_LIT(c->w, "}]");
    c->n++;
    return c->w->err;
}

void qry_api_prom_metadata(const qry_req *req, qry_resp *resp) {
    sl_str metric = {"", 0};
    sl_str v;
    meta_ctx c = {NULL, 0, 0};
    qry_args_get(&req->args, "metric", &metric);
    if (qry_args_get(&req->args, "limit", &v)) {
        int64_t limit;
        if (sl_parse_i64(v, &limit) != 0) {
            prom_error(resp, 400, "bad_data", "limit must be a number");
            return;
        }
        c.limit = limit > 0 ? (size_t)limit : 0;
    }
    qry_jw w;
    qry_jw_init(&w, &resp->body);
    c.w = &w;
    success_open(&w);
    QRY_JW_LIT(&w, "{");
    int rc = stg_metric_metadata(req->store, req->tenant, metric, write_meta, &c);
    if (rc < 0 && w.err == 0) {
        storage_error(resp, rc);
        return;
    }
    QRY_JW_LIT(&w, "}");
    success_close(&w, resp);
}
