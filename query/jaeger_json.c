/*
 * sl_span -> Jaeger UI JSON, written by hand into an sl_buf (a 10k-span trace
 * renders in milliseconds; a DOM library would allocate per value). The shape
 * follows Jaeger's model/json and the OpenTelemetry -> Jaeger translator:
 * the parent becomes a CHILD_OF reference and links FOLLOWS_FROM ones; kind,
 * status, scope and trace state become the tags Jaeger derives from them;
 * events become logs whose first field is "event"; resources become
 * processes, identical ones folded into one.
 *
 * Invariants: whatever bytes the spans hold, the output is valid JSON
 * (strings escaped, invalid UTF-8 replaced by U+FFFD, non-finite doubles
 * written as strings). Spans are never modified.
 * Thread-safety: pure functions; any thread.
 */
#include "query_int.h"

#include "sl_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the writer ------------------------------------------------------------ */

void qry_jw_raw(qry_jw *w, const char *p, size_t len) {
    if (w->err == 0) {
        w->err = sl_buf_append(w->b, p, len);
    }
}

/* Length of the well-formed UTF-8 sequence starting at s (2-4), or 0 when the
 * bytes there are not one (Unicode table 3-7: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_seq_len(const uint8_t *s, const uint8_t *e) {
    uint8_t c = s[0];
    size_t n;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if ((size_t)(e - s) < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

void qry_jw_str(qry_jw *w, const char *p, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)p;
    const uint8_t *e = s + len;
    const uint8_t *run = s;

    if (w->err != 0) {
        return;
    }
    /* Most strings need no escaping: reserve for the common case once. */
    if (len < SIZE_MAX - 2) {
        w->err = sl_buf_reserve(w->b, len + 2);
    }
    qry_jw_raw(w, "\"", 1);
    while (s < e && w->err == 0) {
        uint8_t c = *s;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            s++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq_len(s, e);
            if (n > 0) {
                s += n;
                continue;
            }
        }
        qry_jw_raw(w, (const char *)run, (size_t)(s - run));
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t esc_len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c < 0x20) {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc_len = 6;
            } else {
                /* A byte that starts no valid UTF-8 sequence. */
                memcpy(esc, "\xef\xbf\xbd", 3);
                esc_len = 3;
            }
            break;
        }
        qry_jw_raw(w, esc, esc_len);
        s++;
        run = s;
    }
    qry_jw_raw(w, (const char *)run, (size_t)(s - run));
    qry_jw_raw(w, "\"", 1);
}

void qry_jw_u64(qry_jw *w, uint64_t v) {
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    qry_jw_raw(w, tmp + i, sizeof(tmp) - i);
}

void qry_jw_i64(qry_jw *w, int64_t v) {
    if (v < 0) {
        qry_jw_raw(w, "-", 1);
        qry_jw_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        qry_jw_u64(w, (uint64_t)v);
    }
}

void qry_jw_double(qry_jw *w, double v) {
    char tmp[40];
    if (!isfinite(v)) {
        QRY_JW_LIT(w, "null");
        return;
    }
    /* %.15g is exact for most values people type; fall back to the 17 digits
     * that always round-trip. Either form is valid JSON (1e+20, -0, 0.5). */
    int n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (n > 0 && strtod(tmp, NULL) != v) {
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    }
    if (n <= 0 || (size_t)n >= sizeof(tmp)) {
        QRY_JW_LIT(w, "null");
        return;
    }
    qry_jw_raw(w, tmp, (size_t)n);
}

void qry_jw_hex(qry_jw *w, const uint8_t *p, size_t len) {
    char tmp[66];
    if (len > 32) {
        len = 32;
    }
    tmp[0] = '"';
    sl_hex_encode(p, len, tmp + 1);
    tmp[1 + 2 * len] = '"';
    qry_jw_raw(w, tmp, 2 * len + 2);
}

void qry_jw_base64(qry_jw *w, const uint8_t *p, size_t len) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char tmp[256];
    size_t t = 0;
    size_t i = 0;

    qry_jw_raw(w, "\"", 1);
    while (i + 3 <= len) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        tmp[t++] = tbl[v >> 18];
        tmp[t++] = tbl[(v >> 12) & 63];
        tmp[t++] = tbl[(v >> 6) & 63];
        tmp[t++] = tbl[v & 63];
        i += 3;
        if (t + 4 > sizeof(tmp)) {
            qry_jw_raw(w, tmp, t);
            t = 0;
        }
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        tmp[t++] = tbl[v >> 18];
        tmp[t++] = tbl[(v >> 12) & 63];
        tmp[t++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        tmp[t++] = '=';
    }
    qry_jw_raw(w, tmp, t);
    qry_jw_raw(w, "\"", 1);
}

/* --- envelope ------------------------------------------------------------- */

void qry_envelope_open(qry_jw *w) {
    QRY_JW_LIT(w, "{\"data\":");
}

void qry_envelope_close(qry_jw *w, size_t total, sl_str errors) {
    QRY_JW_LIT(w, ",\"total\":");
    qry_jw_u64(w, total);
    QRY_JW_LIT(w, ",\"limit\":0,\"offset\":0,\"errors\":");
    if (errors.len > 0) {
        qry_jw_raw(w, errors.ptr, errors.len);
    } else {
        QRY_JW_LIT(w, "null");
    }
    QRY_JW_LIT(w, "}");
}

int qry_render_error(sl_buf *b, int code, const char *msg) {
    qry_jw w;
    qry_jw_init(&w, b);
    QRY_JW_LIT(&w, "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":");
    qry_jw_i64(&w, code);
    QRY_JW_LIT(&w, ",\"msg\":");
    qry_jw_str(&w, msg, strlen(msg));
    QRY_JW_LIT(&w, "}]}");
    return w.err;
}

/* --- values and tags -------------------------------------------------------- */

const char *qry_kind_name(int kind) {
    switch (kind) {
    case SL_KIND_INTERNAL:
        return "internal";
    case SL_KIND_SERVER:
        return "server";
    case SL_KIND_CLIENT:
        return "client";
    case SL_KIND_PRODUCER:
        return "producer";
    case SL_KIND_CONSUMER:
        return "consumer";
    default:
        return "";
    }
}

/* Writes {"key":..,"type":..,"value":..} for one attribute. */
static void write_kv(qry_jw *w, sl_str key, const sl_value *val) {
    QRY_JW_LIT(w, "{\"key\":");
    qry_jw_str(w, key.ptr, key.len);
    switch (val->type) {
    case SL_VAL_BOOL:
        QRY_JW_LIT(w, ",\"type\":\"bool\",\"value\":");
        if (val->v.b) {
            QRY_JW_LIT(w, "true}");
        } else {
            QRY_JW_LIT(w, "false}");
        }
        return;
    case SL_VAL_INT:
        QRY_JW_LIT(w, ",\"type\":\"int64\",\"value\":");
        qry_jw_i64(w, val->v.i);
        break;
    case SL_VAL_DOUBLE:
        if (isfinite(val->v.d)) {
            QRY_JW_LIT(w, ",\"type\":\"float64\",\"value\":");
            qry_jw_double(w, val->v.d);
        } else if (isnan(val->v.d)) {
            /* JSON has no NaN or Inf: Go's spelling, as a string tag. */
            QRY_JW_LIT(w, ",\"type\":\"string\",\"value\":\"NaN\"");
        } else if (val->v.d > 0) {
            QRY_JW_LIT(w, ",\"type\":\"string\",\"value\":\"+Inf\"");
        } else {
            QRY_JW_LIT(w, ",\"type\":\"string\",\"value\":\"-Inf\"");
        }
        break;
    case SL_VAL_BYTES:
        QRY_JW_LIT(w, ",\"type\":\"binary\",\"value\":");
        qry_jw_base64(w, (const uint8_t *)val->v.s.ptr, val->v.s.len);
        break;
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
        /* Arrays and maps are carried as their JSON text; Jaeger shows them as
         * string tags too. */
        QRY_JW_LIT(w, ",\"type\":\"string\",\"value\":");
        qry_jw_str(w, val->v.s.ptr, val->v.s.len);
        break;
    default:
        QRY_JW_LIT(w, ",\"type\":\"string\",\"value\":\"\"");
        break;
    }
    QRY_JW_LIT(w, "}");
}

static void write_str_tag(qry_jw *w, int *first, const char *key, sl_str val) {
    if (!*first) {
        QRY_JW_LIT(w, ",");
    }
    *first = 0;
    sl_value v = {.type = SL_VAL_STR, .v.s = val};
    write_kv(w, sl_str_c(key), &v);
}

/* --- processes -------------------------------------------------------------- */

static const sl_str g_unknown_service = {"unknown_service", sizeof("unknown_service") - 1};
static const sl_str g_service_name_key = {"service.name", sizeof("service.name") - 1};

typedef struct proc {
    const sl_resource *res; /* representative; NULL for spans without one */
    uint64_t hash;
} proc;

static uint64_t fnv(uint64_t h, const void *p, size_t len) {
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    }
    return h;
}

static sl_str res_service(const sl_resource *r) {
    return r != NULL && r->service.len > 0 ? r->service : g_unknown_service;
}

static int is_process_tag(const sl_attr *a) {
    return !sl_str_eq(a->key, g_service_name_key);
}

static uint64_t hash_value(uint64_t h, const sl_value *v) {
    h = fnv(h, &v->type, 1);
    switch (v->type) {
    case SL_VAL_BOOL: {
        uint8_t b = v->v.b != 0;
        return fnv(h, &b, 1);
    }
    case SL_VAL_INT:
        return fnv(h, &v->v.i, sizeof(v->v.i));
    case SL_VAL_DOUBLE:
        return fnv(h, &v->v.d, sizeof(v->v.d));
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return fnv(h, v->v.s.ptr, v->v.s.len);
    default:
        return h;
    }
}

static uint64_t hash_resource(const sl_resource *r) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    sl_str svc = res_service(r);
    h = fnv(h, svc.ptr, svc.len);
    h = fnv(h, "", 1);
    for (uint32_t i = 0; r != NULL && i < r->nattrs; i++) {
        if (is_process_tag(&r->attrs[i])) {
            h = fnv(h, r->attrs[i].key.ptr, r->attrs[i].key.len);
            h = fnv(h, "", 1);
            h = hash_value(h, &r->attrs[i].val);
        }
    }
    return h;
}

static int value_eq(const sl_value *a, const sl_value *b) {
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case SL_VAL_BOOL:
        return (a->v.b != 0) == (b->v.b != 0);
    case SL_VAL_INT:
        return a->v.i == b->v.i;
    case SL_VAL_DOUBLE:
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    case SL_VAL_STR:
    case SL_VAL_ARRAY:
    case SL_VAL_KVLIST:
    case SL_VAL_BYTES:
        return sl_str_eq(a->v.s, b->v.s);
    default:
        return 1;
    }
}

/* Same service and same process tags in the same order. */
static int resource_eq(const sl_resource *a, const sl_resource *b) {
    if (a == b) {
        return 1;
    }
    if (!sl_str_eq(res_service(a), res_service(b))) {
        return 0;
    }
    uint32_t na = a != NULL ? a->nattrs : 0;
    uint32_t nb = b != NULL ? b->nattrs : 0;
    uint32_t i = 0;
    uint32_t j = 0;
    for (;;) {
        while (i < na && !is_process_tag(&a->attrs[i])) {
            i++;
        }
        while (j < nb && !is_process_tag(&b->attrs[j])) {
            j++;
        }
        if (i == na || j == nb) {
            return i == na && j == nb;
        }
        if (!sl_str_eq(a->attrs[i].key, b->attrs[j].key) ||
            !value_eq(&a->attrs[i].val, &b->attrs[j].val)) {
            return 0;
        }
        i++;
        j++;
    }
}

/* Assigns each span (in sorted order) a process index. procs receives the
 * distinct processes in order of first use. */
static int assign_processes(const sl_span *const *order, size_t n, sl_arena *a, uint32_t *pid,
                            proc *procs, size_t *nprocs) {
    size_t cap = 16;
    while (cap < 2 * n) {
        cap *= 2;
    }
    uint32_t *table = sl_arena_calloc(a, cap, sizeof(uint32_t)); /* proc index + 1 */
    if (table == NULL) {
        return SL_ENOMEM;
    }
    size_t np = 0;
    const sl_resource *last_res = NULL;
    uint32_t last_pid = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        const sl_resource *r = order[i]->resource;
        if (last_pid != UINT32_MAX && r == last_res) {
            pid[i] = last_pid;
            continue;
        }
        uint64_t h = hash_resource(r);
        size_t slot = (size_t)h & (cap - 1);
        uint32_t found = UINT32_MAX;
        while (table[slot] != 0) {
            const proc *p = &procs[table[slot] - 1];
            if (p->hash == h && resource_eq(p->res, r)) {
                found = table[slot] - 1;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
        if (found == UINT32_MAX) {
            found = (uint32_t)np;
            procs[np].res = r;
            procs[np].hash = h;
            np++;
            table[slot] = found + 1;
        }
        pid[i] = found;
        last_res = r;
        last_pid = found;
    }
    *nprocs = np;
    return 0;
}

static void write_process_id(qry_jw *w, uint32_t idx) {
    QRY_JW_LIT(w, "\"p");
    qry_jw_u64(w, (uint64_t)idx + 1);
    QRY_JW_LIT(w, "\"");
}

static void write_process(qry_jw *w, const proc *p) {
    sl_str svc = res_service(p->res);
    QRY_JW_LIT(w, "{\"serviceName\":");
    qry_jw_str(w, svc.ptr, svc.len);
    QRY_JW_LIT(w, ",\"tags\":[");
    int first = 1;
    for (uint32_t i = 0; p->res != NULL && i < p->res->nattrs; i++) {
        const sl_attr *at = &p->res->attrs[i];
        if (!is_process_tag(at)) {
            continue;
        }
        if (!first) {
            QRY_JW_LIT(w, ",");
        }
        first = 0;
        write_kv(w, at->key, &at->val);
    }
    QRY_JW_LIT(w, "]}");
}

/* --- spans ----------------------------------------------------------------- */

static int cmp_span(const void *pa, const void *pb) {
    const sl_span *a = *(const sl_span *const *)pa;
    const sl_span *b = *(const sl_span *const *)pb;
    if (a->start_unix_nano != b->start_unix_nano) {
        return a->start_unix_nano < b->start_unix_nano ? -1 : 1;
    }
    int c = memcmp(a->span_id, b->span_id, sizeof(a->span_id));
    if (c != 0) {
        return c;
    }
    return a < b ? -1 : (a > b ? 1 : 0);
}

static void write_reference(qry_jw *w, const char *type, const uint8_t trace_id[16],
                            const uint8_t span_id[8]) {
    QRY_JW_LIT(w, "{\"refType\":\"");
    qry_jw_raw(w, type, strlen(type));
    QRY_JW_LIT(w, "\",\"traceID\":");
    qry_jw_hex(w, trace_id, 16);
    QRY_JW_LIT(w, ",\"spanID\":");
    qry_jw_hex(w, span_id, 8);
    QRY_JW_LIT(w, "}");
}

static void write_span(qry_jw *w, const sl_span *s, uint32_t pid) {
    QRY_JW_LIT(w, "{\"traceID\":");
    qry_jw_hex(w, s->trace_id, 16);
    QRY_JW_LIT(w, ",\"spanID\":");
    qry_jw_hex(w, s->span_id, 8);
    QRY_JW_LIT(w, ",\"flags\":");
    /* Only the W3C trace flags byte means anything to Jaeger (bit 0: sampled). */
    qry_jw_u64(w, s->flags & 0xff);
    QRY_JW_LIT(w, ",\"operationName\":");
    qry_jw_str(w, s->name.ptr, s->name.len);

    QRY_JW_LIT(w, ",\"references\":[");
    int first = 1;
    if (!sl_is_zero(s->parent_span_id, sizeof(s->parent_span_id))) {
        write_reference(w, "CHILD_OF", s->trace_id, s->parent_span_id);
        first = 0;
    }
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const sl_link *l = &s->links[i];
        if (sl_is_zero(l->trace_id, sizeof(l->trace_id)) ||
            sl_is_zero(l->span_id, sizeof(l->span_id))) {
            continue;
        }
        if (!first) {
            QRY_JW_LIT(w, ",");
        }
        first = 0;
        write_reference(w, "FOLLOWS_FROM", l->trace_id, l->span_id);
    }

    QRY_JW_LIT(w, "],\"startTime\":");
    qry_jw_u64(w, s->start_unix_nano / 1000);
    QRY_JW_LIT(w, ",\"duration\":");
    qry_jw_u64(w, sl_span_duration_nano(s) / 1000);

    QRY_JW_LIT(w, ",\"tags\":[");
    first = 1;
    for (uint32_t i = 0; i < s->nattrs; i++) {
        if (!first) {
            QRY_JW_LIT(w, ",");
        }
        first = 0;
        write_kv(w, s->attrs[i].key, &s->attrs[i].val);
    }
    if (s->scope_name.len > 0) {
        write_str_tag(w, &first, "otel.scope.name", s->scope_name);
    }
    if (s->scope_version.len > 0) {
        write_str_tag(w, &first, "otel.scope.version", s->scope_version);
    }
    const char *kind = qry_kind_name(s->kind);
    if (kind[0] != '\0') {
        write_str_tag(w, &first, "span.kind", sl_str_c(kind));
    }
    if (s->status_code == SL_STATUS_OK) {
        write_str_tag(w, &first, "otel.status_code", SL_STR_LIT("OK"));
    } else if (s->status_code == SL_STATUS_ERROR) {
        write_str_tag(w, &first, "otel.status_code", SL_STR_LIT("ERROR"));
        if (!first) {
            QRY_JW_LIT(w, ",");
        }
        QRY_JW_LIT(w, "{\"key\":\"error\",\"type\":\"bool\",\"value\":true}");
    }
    if (s->status_message.len > 0) {
        write_str_tag(w, &first, "otel.status_description", s->status_message);
    }
    if (s->trace_state.len > 0) {
        write_str_tag(w, &first, "w3c.tracestate", s->trace_state);
    }

    QRY_JW_LIT(w, "],\"logs\":[");
    for (uint32_t i = 0; i < s->nevents; i++) {
        const sl_event *ev = &s->events[i];
        if (i > 0) {
            QRY_JW_LIT(w, ",");
        }
        QRY_JW_LIT(w, "{\"timestamp\":");
        qry_jw_u64(w, ev->ts_unix_nano / 1000);
        QRY_JW_LIT(w, ",\"fields\":[");
        int ffirst = 1;
        if (ev->name.len > 0) {
            write_str_tag(w, &ffirst, "event", ev->name);
        }
        for (uint32_t j = 0; j < ev->nattrs; j++) {
            if (!ffirst) {
                QRY_JW_LIT(w, ",");
            }
            ffirst = 0;
            write_kv(w, ev->attrs[j].key, &ev->attrs[j].val);
        }
        QRY_JW_LIT(w, "]}");
    }
    QRY_JW_LIT(w, "],\"processID\":");
    write_process_id(w, pid);
    QRY_JW_LIT(w, ",\"warnings\":null}");
}

int qry_render_trace(qry_jw *w, const sl_span *spans, size_t n, sl_arena *scratch) {
    int rc = 0;
    const sl_span **order = NULL;
    uint32_t *pid = NULL;
    proc *procs = NULL;
    size_t nprocs = 0;

    if (n == 0 || n > UINT32_MAX) {
        rc = SL_EINVAL;
        goto out;
    }
    order = sl_arena_calloc(scratch, n, sizeof(*order));
    pid = sl_arena_calloc(scratch, n, sizeof(*pid));
    procs = sl_arena_calloc(scratch, n, sizeof(*procs));
    if (order == NULL || pid == NULL || procs == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &spans[i];
    }
    qsort(order, n, sizeof(*order), cmp_span);
    rc = assign_processes(order, n, scratch, pid, procs, &nprocs);
    if (rc != 0) {
        goto out;
    }

    QRY_JW_LIT(w, "{\"traceID\":");
    qry_jw_hex(w, order[0]->trace_id, 16);
    QRY_JW_LIT(w, ",\"spans\":[");
    for (size_t i = 0; i < n && w->err == 0; i++) {
        if (i > 0) {
            QRY_JW_LIT(w, ",");
        }
        write_span(w, order[i], pid[i]);
    }
    QRY_JW_LIT(w, "],\"processes\":{");
    for (size_t i = 0; i < nprocs; i++) {
        if (i > 0) {
            QRY_JW_LIT(w, ",");
        }
        write_process_id(w, (uint32_t)i);
        QRY_JW_LIT(w, ":");
        write_process(w, &procs[i]);
    }
    QRY_JW_LIT(w, "},\"warnings\":null}");
    rc = w->err;
out:
    return rc;
}
