/*
 * Query-string parsing for the Jaeger API: Go duration strings, lookbacks,
 * trace ids, tags={json} and tag=key:value, and the full parameter sets of
 * /api/traces and /api/dependencies.
 *
 * Invariants: parsers never trust their input; every failure is SL_EINVAL
 * with a message fit for a 400 answer, and nothing is written to an
 * out-parameter unless the whole parse succeeded.
 * Thread-safety: pure functions; any thread.
 */
#include "query_int.h"

#include "sl_err.h"

#include <jansson.h>

#include <stdio.h>
#include <string.h>

#define NS_PER_US UINT64_C(1000)
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_H (UINT64_C(3600) * NS_PER_S)

#define DEFAULT_TRACE_LIMIT 20
#define DEFAULT_LOOKBACK_NS NS_PER_H
#define DEFAULT_DEPS_LOOKBACK_MS (UINT64_C(24) * 3600 * 1000)

int qry_args_get(const qry_args *a, const char *key, sl_str *out) {
    for (size_t i = 0; i < a->n; i++) {
        if (sl_str_eqc(a->kv[i].key, key) && a->kv[i].val.len > 0) {
            *out = a->kv[i].val;
            return 1;
        }
    }
    return 0;
}

/* Writes "<what>: <value>" quoting at most 64 bytes of the offending value:
 * enough to recognise it, not enough to echo a whole hostile query back. */
static void set_err(qry_errbuf *err, const char *what, sl_str arg) {
    int len = arg.len > 64 ? 64 : (int)arg.len;
    snprintf(err->msg, sizeof(err->msg), "%s: %.*s", what, len, arg.ptr ? arg.ptr : "");
}

/* --- durations ------------------------------------------------------------ */

typedef struct unit_def {
    const char *name;
    uint64_t ns;
} unit_def;

/* Go's unitMap, plus days and weeks for lookbacks. Both spellings of the
 * micro sign are accepted, as Go does: U+00B5 and U+03BC. */
static const unit_def g_units[] = {
    {"ns", 1},
    {"us", NS_PER_US},
    {"\xc2\xb5s", NS_PER_US},
    {"\xce\xbcs", NS_PER_US},
    {"ms", NS_PER_MS},
    {"s", NS_PER_S},
    {"m", UINT64_C(60) * NS_PER_S},
    {"h", NS_PER_H},
    {"d", UINT64_C(24) * NS_PER_H},
    {"w", UINT64_C(7) * 24 * NS_PER_H},
};
enum { GO_UNITS = 8 }; /* the first eight are Go's own */

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Go's time.ParseDuration, restricted to results >= 0 and extended with the
 * day and week units when ext is set. The grammar is
 * [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ where each number needs a digit on at least
 * one side of the dot, or the literal "0". */
static int parse_duration(sl_str s, int ext, uint64_t *out_ns) {
    const char *p = s.ptr;
    const char *end = s.ptr + s.len;
    int neg = 0;
    uint64_t total = 0;
    const uint64_t limit = (uint64_t)INT64_MAX; /* Go's durations are int64 */

    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    if (end - p == 1 && *p == '0') {
        *out_ns = 0;
        return 0;
    }
    if (p == end) {
        return SL_EINVAL;
    }
    while (p < end) {
        uint64_t v = 0;
        uint64_t frac = 0;
        double scale = 1;
        int pre = 0;
        int post = 0;
        int overflow = 0;

        if (!(*p == '.' || is_digit(*p))) {
            return SL_EINVAL;
        }
        for (; p < end && is_digit(*p); p++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (v > (limit - d) / 10) {
                return SL_EINVAL;
            }
            v = v * 10 + d;
            pre = 1;
        }
        if (p < end && *p == '.') {
            p++;
            for (; p < end && is_digit(*p); p++) {
                post = 1;
                /* Like Go, digits beyond what fits are consumed and ignored. */
                if (overflow) {
                    continue;
                }
                uint64_t d = (uint64_t)(*p - '0');
                if (frac > (limit - d) / 10) {
                    overflow = 1;
                    continue;
                }
                frac = frac * 10 + d;
                scale *= 10;
            }
        }
        if (!pre && !post) {
            return SL_EINVAL;
        }
        const char *u = p;
        while (p < end && *p != '.' && !is_digit(*p)) {
            p++;
        }
        size_t ulen = (size_t)(p - u);
        if (ulen == 0) {
            return SL_EINVAL;
        }
        const unit_def *unit = NULL;
        size_t nunits = ext ? sizeof(g_units) / sizeof(g_units[0]) : GO_UNITS;
        for (size_t i = 0; i < nunits; i++) {
            if (strlen(g_units[i].name) == ulen && memcmp(g_units[i].name, u, ulen) == 0) {
                unit = &g_units[i];
                break;
            }
        }
        if (unit == NULL) {
            return SL_EINVAL;
        }
        if (v > limit / unit->ns) {
            return SL_EINVAL;
        }
        v *= unit->ns;
        if (frac > 0) {
            double add = (double)frac * ((double)unit->ns / scale);
            if (add >= (double)limit || v > limit - (uint64_t)add) {
                return SL_EINVAL;
            }
            v += (uint64_t)add;
        }
        if (v > limit - total) {
            return SL_EINVAL;
        }
        total += v;
    }
    if (neg && total != 0) {
        return SL_EINVAL;
    }
    *out_ns = total;
    return 0;
}

int qry_parse_duration(sl_str s, uint64_t *out_ns) {
    return parse_duration(s, 0, out_ns);
}

int qry_parse_lookback(sl_str s, uint64_t *out_ns) {
    return parse_duration(s, 1, out_ns);
}

/* --- ids and tags ----------------------------------------------------------- */

int qry_parse_trace_id(sl_str s, uint8_t out[16]) {
    char padded[32];
    uint8_t id[16];

    if (s.len == 0 || s.len > 32) {
        return SL_EINVAL;
    }
    memset(padded, '0', sizeof(padded));
    memcpy(padded + 32 - s.len, s.ptr, s.len);
    if (sl_hex_decode(padded, sizeof(padded), id, sizeof(id)) != 0) {
        return SL_EINVAL;
    }
    memcpy(out, id, sizeof(id));
    return 0;
}

int qry_parse_tag_kv(sl_str s, stg_tag *out) {
    const char *colon = s.len > 0 ? memchr(s.ptr, ':', s.len) : NULL;
    if (colon == NULL || colon == s.ptr) {
        return SL_EINVAL;
    }
    size_t klen = (size_t)(colon - s.ptr);
    out->key = (sl_str){s.ptr, klen};
    out->value = (sl_str){colon + 1, s.len - klen - 1};
    return 0;
}

int qry_parse_tags_json(sl_str s, sl_arena *a, stg_tag *tags, size_t cap, size_t *n) {
    int rc = 0;
    json_error_t jerr;
    json_t *root = json_loadb(s.ptr, s.len, JSON_ALLOW_NUL, &jerr);
    size_t count = *n;
    const char *key;
    json_t *val;

    if (root == NULL || !json_is_object(root)) {
        rc = SL_EINVAL;
        goto out;
    }
    json_object_foreach(root, key, val) {
        size_t klen = strlen(key);
        if (!json_is_string(val) || klen == 0) {
            rc = SL_EINVAL;
            goto out;
        }
        if (count >= cap) {
            rc = SL_EINVAL;
            goto out;
        }
        size_t vlen = json_string_length(val);
        char *k = sl_arena_strndup(a, key, klen);
        char *v = sl_arena_strndup(a, json_string_value(val), vlen);
        if (k == NULL || v == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        tags[count].key = (sl_str){k, klen};
        tags[count].value = (sl_str){v, vlen};
        count++;
    }
    *n = count;
out:
    json_decref(root);
    return rc;
}

/* --- whole parameter sets --------------------------------------------------- */

/* Parses an optional µs timestamp into ns. Returns 0 (absent: *present = 0),
 * or SL_EINVAL with err set. */
static int parse_us_param(const qry_args *args, const char *name, uint64_t *out_ns, int *present,
                          qry_errbuf *err) {
    sl_str v;
    uint64_t us;
    *present = 0;
    if (!qry_args_get(args, name, &v)) {
        return 0;
    }
    if (sl_parse_u64(v, &us) != 0 || us > UINT64_MAX / NS_PER_US) {
        char what[96];
        snprintf(what, sizeof(what), "malformed parameter '%s' (microseconds since epoch)", name);
        set_err(err, what, v);
        return SL_EINVAL;
    }
    *out_ns = us * NS_PER_US;
    *present = 1;
    return 0;
}

static int parse_duration_param(const qry_args *args, const char *name, uint64_t *out_ns,
                                qry_errbuf *err) {
    sl_str v;
    *out_ns = 0;
    if (!qry_args_get(args, name, &v)) {
        return 0;
    }
    if (qry_parse_duration(v, out_ns) != 0) {
        char what[96];
        snprintf(what, sizeof(what), "malformed parameter '%s' (a duration like 1.2s, 100ms)",
                 name);
        set_err(err, what, v);
        return SL_EINVAL;
    }
    return 0;
}

/* Collects traceID=... parameters (repeatable) into out. */
static int parse_trace_ids(const qry_args *args, unsigned max_ids, sl_arena *a,
                           qry_trace_params *out, qry_errbuf *err) {
    size_t count = 0;
    for (size_t i = 0; i < args->n; i++) {
        if (sl_str_eqc(args->kv[i].key, "traceID") && args->kv[i].val.len > 0) {
            count++;
        }
    }
    if (count == 0) {
        return 0;
    }
    if (count > max_ids) {
        snprintf(err->msg, sizeof(err->msg), "too many 'traceID' parameters (at most %u)", max_ids);
        return SL_EINVAL;
    }
    uint8_t(*ids)[16] = sl_arena_alloc(a, count * 16);
    if (ids == NULL) {
        return SL_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < args->n; i++) {
        const qry_kv *kv = &args->kv[i];
        if (!sl_str_eqc(kv->key, "traceID") || kv->val.len == 0) {
            continue;
        }
        if (qry_parse_trace_id(kv->val, ids[k]) != 0) {
            set_err(err, "malformed parameter 'traceID' (1-32 hex digits)", kv->val);
            return SL_EINVAL;
        }
        k++;
    }
    out->trace_ids = ids;
    out->ntrace_ids = k;
    return 0;
}

static int parse_tags(const qry_args *args, sl_arena *a, stg_tag **out, size_t *nout,
                      qry_errbuf *err) {
    stg_tag *tags = sl_arena_calloc(a, QRY_MAX_TAGS, sizeof(*tags));
    size_t n = 0;
    if (tags == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < args->n; i++) {
        const qry_kv *kv = &args->kv[i];
        if (kv->val.len == 0) {
            continue;
        }
        if (sl_str_eqc(kv->key, "tags")) {
            int rc = qry_parse_tags_json(kv->val, a, tags, QRY_MAX_TAGS, &n);
            if (rc == SL_ENOMEM) {
                return rc;
            }
            if (rc != 0) {
                set_err(err, "malformed parameter 'tags' (a JSON object of strings, at most 64)",
                        kv->val);
                return SL_EINVAL;
            }
        } else if (sl_str_eqc(kv->key, "tag")) {
            if (n >= QRY_MAX_TAGS) {
                snprintf(err->msg, sizeof(err->msg), "too many tags (at most %d)", QRY_MAX_TAGS);
                return SL_EINVAL;
            }
            if (qry_parse_tag_kv(kv->val, &tags[n]) != 0) {
                set_err(err, "malformed parameter 'tag' (expected key:value)", kv->val);
                return SL_EINVAL;
            }
            n++;
        }
    }
    *out = n > 0 ? tags : NULL;
    *nout = n;
    return 0;
}

int qry_parse_trace_params(const qry_args *args, uint64_t now_unix_nano, unsigned max_limit,
                           sl_arena *a, qry_trace_params *out, qry_errbuf *err) {
    int rc;
    qry_trace_params p;
    sl_str v;
    uint64_t start = 0;
    uint64_t end = now_unix_nano;
    int has_start;
    int has_end;

    memset(&p, 0, sizeof(p));
    /* Empty views point at "" rather than NULL, so that a callee may memcpy
     * from them without a special case. */
    p.q.service = (sl_str){"", 0};
    p.q.operation = (sl_str){"", 0};
    if (max_limit == 0) {
        max_limit = 1;
    }
    rc = parse_trace_ids(args, max_limit, a, &p, err);
    if (rc != 0) {
        goto out;
    }
    if (qry_args_get(args, "service", &v)) {
        p.q.service = v;
    } else if (p.ntrace_ids == 0) {
        snprintf(err->msg, sizeof(err->msg), "parameter 'service' is required");
        rc = SL_EINVAL;
        goto out;
    }
    if (qry_args_get(args, "operation", &v)) {
        p.q.operation = v;
    }

    rc = parse_us_param(args, "end", &end, &has_end, err);
    if (rc != 0) {
        goto out;
    }
    if (!has_end) {
        end = now_unix_nano;
    }
    if (end == 0) {
        /* 0 means "open" to storage; the epoch itself holds no data. */
        end = 1;
    }
    rc = parse_us_param(args, "start", &start, &has_start, err);
    if (rc != 0) {
        goto out;
    }
    if (!has_start) {
        uint64_t lookback = DEFAULT_LOOKBACK_NS;
        if (qry_args_get(args, "lookback", &v) && !sl_str_eqc(v, "custom")) {
            if (qry_parse_lookback(v, &lookback) != 0) {
                set_err(err, "malformed parameter 'lookback' (like 1h, 2d or custom)", v);
                rc = SL_EINVAL;
                goto out;
            }
        }
        /* 0 would mean "open" to storage; 1 ns after the epoch is the same
         * window for any real data and keeps the range closed. */
        start = end > lookback ? end - lookback : 1;
    }
    if (start > end) {
        snprintf(err->msg, sizeof(err->msg), "'start' must not be after 'end'");
        rc = SL_EINVAL;
        goto out;
    }
    p.q.start_min_unix_nano = start;
    p.q.start_max_unix_nano = end;

    rc = parse_duration_param(args, "minDuration", &p.q.min_duration_nano, err);
    if (rc != 0) {
        goto out;
    }
    rc = parse_duration_param(args, "maxDuration", &p.q.max_duration_nano, err);
    if (rc != 0) {
        goto out;
    }
    if (p.q.min_duration_nano != 0 && p.q.max_duration_nano != 0 &&
        p.q.max_duration_nano < p.q.min_duration_nano) {
        snprintf(err->msg, sizeof(err->msg), "'maxDuration' must not be less than 'minDuration'");
        rc = SL_EINVAL;
        goto out;
    }

    p.q.limit = DEFAULT_TRACE_LIMIT;
    if (qry_args_get(args, "limit", &v)) {
        int64_t lim;
        if (sl_parse_i64(v, &lim) != 0 || lim <= 0) {
            set_err(err, "malformed parameter 'limit' (a positive integer)", v);
            rc = SL_EINVAL;
            goto out;
        }
        p.q.limit = (uint64_t)lim > max_limit ? max_limit : (size_t)lim;
    }
    if (p.q.limit > max_limit) {
        p.q.limit = max_limit;
    }

    {
        stg_tag *tags = NULL;
        size_t ntags = 0;
        rc = parse_tags(args, a, &tags, &ntags, err);
        if (rc != 0) {
            goto out;
        }
        p.q.tags = tags;
        p.q.ntags = ntags;
    }
    *out = p;
out:
    return rc;
}

int qry_parse_deps_params(const qry_args *args, uint64_t now_unix_nano, uint64_t *start_ns,
                          uint64_t *end_ns, qry_errbuf *err) {
    sl_str v;
    uint64_t end_ms = now_unix_nano / NS_PER_MS;
    uint64_t lookback_ms = DEFAULT_DEPS_LOOKBACK_MS;

    if (qry_args_get(args, "endTs", &v)) {
        if (sl_parse_u64(v, &end_ms) != 0 || end_ms > UINT64_MAX / NS_PER_MS) {
            set_err(err, "malformed parameter 'endTs' (milliseconds since epoch)", v);
            return SL_EINVAL;
        }
    }
    if (qry_args_get(args, "lookback", &v)) {
        if (sl_parse_u64(v, &lookback_ms) != 0 || lookback_ms > UINT64_MAX / NS_PER_MS) {
            set_err(err, "malformed parameter 'lookback' (milliseconds)", v);
            return SL_EINVAL;
        }
    }
    /* 0 means "open" to storage, so both ends stay at 1 ns or later. */
    uint64_t end = end_ms > 0 ? end_ms * NS_PER_MS : 1;
    uint64_t lookback = lookback_ms * NS_PER_MS;
    *end_ns = end;
    *start_ns = end > lookback ? end - lookback : 1;
    return 0;
}
