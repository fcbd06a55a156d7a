/*
 * /api/logs parameters: severities by number or name, times as unix
 * nanoseconds or RFC 3339, span ids, and the full-text `q` (words and
 * "quoted phrases"). Pure functions over the decoded query string; every
 * failure writes a message for the 400 answer.
 *
 * Thread-safety: reentrant.
 */
#include "query_int.h"

#include "sl_err.h"

#include <stdio.h>
#include <string.h>

static void log_err(qry_errbuf *err, const char *what, sl_str arg) {
    int len = arg.len > 64 ? 64 : (int)arg.len;
    snprintf(err->msg, sizeof(err->msg), "%s: '%.*s'", what, len, arg.ptr ? arg.ptr : "");
}

static char lc(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool ieq(sl_str s, const char *c) {
    size_t n = strlen(c);
    if (s.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (lc(s.ptr[i]) != c[i]) {
            return false;
        }
    }
    return true;
}

int qry_parse_severity(sl_str s, int *out) {
    static const struct {
        const char *name;
        int number;
    } names[] = {
        {"trace", 1},    {"debug", 5},  {"info", 9}, {"information", 9}, {"warn", 13},
        {"warning", 13}, {"error", 17}, {"err", 17}, {"fatal", 21},      {"critical", 21},
    };
    uint64_t v;
    if (sl_parse_u64(s, &v) == 0) {
        if (v > 24) {
            return SL_EINVAL;
        }
        *out = (int)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ieq(s, names[i].name)) {
            *out = names[i].number;
            return 0;
        }
    }
    return SL_EINVAL;
}

/* Reads exactly n digits at s[*i]. */
static bool digits(sl_str s, size_t *i, size_t n, int *out) {
    int v = 0;
    if (*i + n > s.len) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        char c = s.ptr[*i + k];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *i += n;
    *out = v;
    return true;
}

static bool expect(sl_str s, size_t *i, const char *set) {
    if (*i < s.len && strchr(set, s.ptr[*i]) != NULL && s.ptr[*i] != '\0') {
        (*i)++;
        return true;
    }
    return false;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_rfc3339(sl_str s, uint64_t *out) {
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 0;
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    if (!digits(s, &i, 4, &y) || !expect(s, &i, "-") || !digits(s, &i, 2, &mo) ||
        !expect(s, &i, "-") || !digits(s, &i, 2, &d) || !expect(s, &i, "Tt ") ||
        !digits(s, &i, 2, &h) || !expect(s, &i, ":") || !digits(s, &i, 2, &mi) ||
        !expect(s, &i, ":") || !digits(s, &i, 2, &sec)) {
        return SL_EINVAL;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 60) {
        return SL_EINVAL;
    }
    uint64_t frac = 0;
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        size_t nd = 0;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            if (nd < 9) {
                frac = frac * 10 + (uint64_t)(s.ptr[i] - '0');
            }
            nd++;
            i++;
        }
        if (nd == 0) {
            return SL_EINVAL;
        }
        for (; nd < 9; nd++) {
            frac *= 10;
        }
    }
    int sign = 0;
    if (expect(s, &i, "Zz")) {
        sign = 0;
    } else if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) {
        sign = s.ptr[i] == '+' ? 1 : -1;
        i++;
        if (!digits(s, &i, 2, &oh) || !expect(s, &i, ":") || !digits(s, &i, 2, &om) || oh > 23 ||
            om > 59) {
            return SL_EINVAL;
        }
    } else {
        return SL_EINVAL;
    }
    if (i != s.len) {
        return SL_EINVAL;
    }
    int64_t secs =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    if (secs < 0 || (uint64_t)secs > UINT64_MAX / 1000000000u - 1) {
        return SL_EINVAL;
    }
    *out = (uint64_t)secs * 1000000000u + frac;
    return 0;
}

int qry_parse_time_ns(sl_str s, uint64_t *out) {
    if (sl_parse_u64(s, out) == 0) {
        return 0;
    }
    return parse_rfc3339(s, out);
}

/* Appends one term (lower-cased copy). */
static int add_term(qry_log_params *p, sl_arena *a, const char *ptr, size_t len, bool phrase,
                    qry_errbuf *err) {
    if (p->q.nterms == QRY_MAX_LOG_TERMS) {
        snprintf(err->msg, sizeof(err->msg), "too many search terms in 'q' (at most %d)",
                 QRY_MAX_LOG_TERMS);
        return SL_EINVAL;
    }
    char *t = sl_arena_alloc(a, len + 1);
    if (t == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        t[i] = lc(ptr[i]);
    }
    t[len] = '\0';
    p->terms[p->q.nterms++] = (stg_log_term){{t, len}, phrase ? 1 : 0};
    return 0;
}

int qry_parse_log_terms(sl_str q, sl_arena *a, qry_log_params *p, qry_errbuf *err) {
    size_t i = 0;
    int rc = 0;
    while (i < q.len && rc == 0) {
        char c = q.ptr[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        if (c == '"') {
            const char *end = memchr(q.ptr + i + 1, '"', q.len - i - 1);
            if (end == NULL) {
                log_err(err, "unterminated quoted phrase in 'q'", q);
                return SL_EINVAL;
            }
            size_t start = i + 1, len = (size_t)(end - (q.ptr + start));
            /* A phrase without a single word character matches nothing
             * useful: it is ignored like empty quotes. */
            bool has_word = false;
            for (size_t k = 0; k < len; k++) {
                has_word = has_word || stg_log_word_char((unsigned char)q.ptr[start + k]);
            }
            if (has_word) {
                rc = add_term(p, a, q.ptr + start, len, true, err);
            }
            i = (size_t)(end - q.ptr) + 1;
            continue;
        }
        /* A bare chunk: one word, or (with separators, like code=51 or
         * user-42) a phrase of its words. */
        size_t start = i;
        bool sep = false, has_word = false;
        while (i < q.len && q.ptr[i] != ' ' && q.ptr[i] != '\t' && q.ptr[i] != '\n' &&
               q.ptr[i] != '\r' && q.ptr[i] != '"') {
            bool w = stg_log_word_char((unsigned char)q.ptr[i]);
            has_word = has_word || w;
            sep = sep || !w;
            i++;
        }
        if (!has_word) {
            continue;
        }
        /* Separators at the chunk's ends (trailing punctuation) do not count. */
        size_t s0 = start, s1 = i;
        while (!stg_log_word_char((unsigned char)q.ptr[s0])) {
            s0++;
        }
        while (!stg_log_word_char((unsigned char)q.ptr[s1 - 1])) {
            s1--;
        }
        sep = false;
        for (size_t k = s0; k < s1; k++) {
            sep = sep || !stg_log_word_char((unsigned char)q.ptr[k]);
        }
        rc = add_term(p, a, q.ptr + s0, s1 - s0, sep, err);
    }
    return rc;
}

int qry_parse_log_params(const qry_args *args, sl_arena *a, qry_log_params *out, qry_errbuf *err) {
    sl_str v;
    memset(out, 0, sizeof(*out));
    out->q.limit = QRY_LOG_DEFAULT_LIMIT;
    out->q.terms = out->terms;
    if (qry_args_get(args, "service", &v)) {
        out->q.service = v;
    }
    if (qry_args_get(args, "severity", &v) && qry_parse_severity(v, &out->q.min_severity) != 0) {
        log_err(err, "invalid 'severity' (a number 0-24 or trace, debug, info, warn, error, fatal)",
                v);
        return SL_EINVAL;
    }
    if (qry_args_get(args, "trace_id", &v)) {
        if (v.len != 32 || sl_hex_decode(v.ptr, v.len, out->trace_id, 16) != 0) {
            log_err(err, "invalid 'trace_id' (32 hex digits)", v);
            return SL_EINVAL;
        }
        out->q.trace_id = out->trace_id;
    }
    if (qry_args_get(args, "span_id", &v)) {
        if (v.len != 16 || sl_hex_decode(v.ptr, v.len, out->span_id, 8) != 0) {
            log_err(err, "invalid 'span_id' (16 hex digits)", v);
            return SL_EINVAL;
        }
        out->q.span_id = out->span_id;
    }
    if (qry_args_get(args, "start", &v) && qry_parse_time_ns(v, &out->q.start_unix_nano) != 0) {
        log_err(err, "invalid 'start' (unix nanoseconds or RFC 3339)", v);
        return SL_EINVAL;
    }
    if (qry_args_get(args, "end", &v) && qry_parse_time_ns(v, &out->q.end_unix_nano) != 0) {
        log_err(err, "invalid 'end' (unix nanoseconds or RFC 3339)", v);
        return SL_EINVAL;
    }
    if (out->q.end_unix_nano != 0 && out->q.start_unix_nano > out->q.end_unix_nano) {
        snprintf(err->msg, sizeof(err->msg), "'start' is after 'end'");
        return SL_EINVAL;
    }
    if (qry_args_get(args, "limit", &v)) {
        uint64_t lim;
        if (sl_parse_u64(v, &lim) != 0 || lim == 0 || lim > QRY_LOG_MAX_LIMIT) {
            char what[80];
            snprintf(what, sizeof(what), "invalid 'limit' (1-%d)", QRY_LOG_MAX_LIMIT);
            log_err(err, what, v);
            return SL_EINVAL;
        }
        out->q.limit = (size_t)lim;
    }
    if (qry_args_get(args, "direction", &v)) {
        if (ieq(v, "forward")) {
            out->q.forward = 1;
        } else if (!ieq(v, "backward")) {
            log_err(err, "invalid 'direction' (backward or forward)", v);
            return SL_EINVAL;
        }
    }
    if (qry_args_get(args, "q", &v)) {
        return qry_parse_log_terms(v, a, out, err);
    }
    return 0;
}
