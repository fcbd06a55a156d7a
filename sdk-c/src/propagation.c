/*
 * W3C Trace Context: traceparent and tracestate parsing/formatting, inject
 * and extract through header callbacks, and the per-thread stack of current
 * contexts. Parsers are strict (the spec's grammar) and never read past len.
 * Thread-safety: pure functions, plus thread-local state for the stack.
 */
#include "sdk_int.h"

#include <string.h>

#define CTX_DEPTH 32

static _Thread_local sl_span_context ctx_stack[CTX_DEPTH];
static _Thread_local int ctx_depth; /* may exceed CTX_DEPTH: overflowed pushes */

bool sl_span_context_is_valid(const sl_span_context *c) {
    if (c == NULL) {
        return false;
    }
    static const uint8_t zero[16];
    return memcmp(c->trace_id, zero, 16) != 0 && memcmp(c->span_id, zero, 8) != 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1; /* uppercase is invalid in traceparent */
}

static bool parse_hex(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

int sl_traceparent_parse(const char *value, size_t len, sl_span_context *out) {
    if (value == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    while (len > 0 && is_ows(value[0])) {
        value++;
        len--;
    }
    while (len > 0 && is_ows(value[len - 1])) {
        len--;
    }
    if (len < SL_TRACEPARENT_LEN) {
        return SL_OTEL_EPARSE;
    }
    uint8_t version;
    if (!parse_hex(value, &version, 1) || version == 0xff) {
        return SL_OTEL_EPARSE;
    }
    /* Version 00 is exactly 55 characters; a later version may append
     * fields, separated by '-', which this parser ignores. */
    if (version == 0 && len != SL_TRACEPARENT_LEN) {
        return SL_OTEL_EPARSE;
    }
    if (len > SL_TRACEPARENT_LEN && value[SL_TRACEPARENT_LEN] != '-') {
        return SL_OTEL_EPARSE;
    }
    if (value[2] != '-' || value[35] != '-' || value[52] != '-') {
        return SL_OTEL_EPARSE;
    }
    sl_span_context c;
    memset(&c, 0, sizeof c);
    if (!parse_hex(value + 3, c.trace_id, 16) || !parse_hex(value + 36, c.span_id, 8) ||
        !parse_hex(value + 53, &c.trace_flags, 1)) {
        return SL_OTEL_EPARSE;
    }
    if (!sl_span_context_is_valid(&c)) {
        return SL_OTEL_EPARSE;
    }
    if (version == 0) {
        c.trace_flags &= SL_TRACE_FLAG_SAMPLED; /* other bits are not defined in 00 */
    }
    c.is_remote = true;
    memcpy(out->trace_id, c.trace_id, 16);
    memcpy(out->span_id, c.span_id, 8);
    out->trace_flags = c.trace_flags;
    out->is_remote = true;
    out->trace_state[0] = '\0';
    return 0;
}

int sl_traceparent_format(const sl_span_context *c, char out[SL_TRACEPARENT_LEN + 1]) {
    if (c == NULL || out == NULL || !sl_span_context_is_valid(c)) {
        return SL_OTEL_EINVAL;
    }
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = '0';
    *p++ = '0';
    *p++ = '-';
    for (int i = 0; i < 16; i++) {
        *p++ = hex[c->trace_id[i] >> 4];
        *p++ = hex[c->trace_id[i] & 15];
    }
    *p++ = '-';
    for (int i = 0; i < 8; i++) {
        *p++ = hex[c->span_id[i] >> 4];
        *p++ = hex[c->span_id[i] & 15];
    }
    *p++ = '-';
    *p++ = hex[c->trace_flags >> 4];
    *p++ = hex[c->trace_flags & 15];
    *p = '\0';
    return 0;
}

/* tracestate key: simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-"/ "*" / "/"),
 * multi-tenant-key = tenant-id "@" system-id with tenant-id = (lcalpha / DIGIT)
 * 0*240(...) and system-id = lcalpha 0*13(...). */
static bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/';
}

static bool valid_key(const char *k, size_t n) {
    if (n == 0 || n > 256) {
        return false;
    }
    const char *at = memchr(k, '@', n);
    if (at == NULL) {
        if (!(k[0] >= 'a' && k[0] <= 'z')) {
            return false;
        }
        for (size_t i = 1; i < n; i++) {
            if (!key_char(k[i])) {
                return false;
            }
        }
        return true;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn == 0 || tn > 241 || sn == 0 || sn > 14) {
        return false;
    }
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9'))) {
        return false;
    }
    for (size_t i = 1; i < tn; i++) {
        if (!key_char(k[i])) {
            return false;
        }
    }
    if (!(at[1] >= 'a' && at[1] <= 'z')) {
        return false;
    }
    for (size_t i = 2; i <= sn; i++) {
        if (!key_char(at[i])) {
            return false;
        }
    }
    return true;
}

/* value = 0*255(chr) nblk-chr, chr = %x20 / nblk-chr, nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static bool valid_value(const char *v, size_t n) {
    if (n == 0 || n > 256) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') {
            return false;
        }
    }
    return v[n - 1] != ' ';
}

int sl_tracestate_parse(const char *value, size_t len, char *out, size_t cap) {
    if (value == NULL || out == NULL || cap == 0) {
        return SL_OTEL_EINVAL;
    }
    struct {
        const char *k;
        size_t kn;
    } keys[32];
    int nkeys = 0;
    size_t o = 0;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && value[j] != ',') {
            j++;
        }
        const char *m = value + i;
        size_t mn = j - i;
        while (mn > 0 && is_ows(m[0])) {
            m++;
            mn--;
        }
        while (mn > 0 && is_ows(m[mn - 1])) {
            mn--;
        }
        if (mn > 0) {
            const char *eq = memchr(m, '=', mn);
            if (eq == NULL) {
                return SL_OTEL_EPARSE;
            }
            size_t kn = (size_t)(eq - m);
            if (!valid_key(m, kn) || !valid_value(eq + 1, mn - kn - 1)) {
                return SL_OTEL_EPARSE;
            }
            for (int k = 0; k < nkeys; k++) {
                if (keys[k].kn == kn && memcmp(keys[k].k, m, kn) == 0) {
                    return SL_OTEL_EPARSE; /* duplicate key */
                }
            }
            if (nkeys == 32) {
                return SL_OTEL_EPARSE; /* more than 32 members */
            }
            keys[nkeys].k = m;
            keys[nkeys].kn = kn;
            nkeys++;
            if (o + mn + (o ? 1 : 0) + 1 > cap) {
                return SL_OTEL_ELIMIT;
            }
            if (o) {
                out[o++] = ',';
            }
            memcpy(out + o, m, mn);
            o += mn;
        }
        i = j + 1;
    }
    out[o] = '\0';
    return 0;
}

int sl_propagation_inject(const sl_span_context *ctx, sl_carrier_set_fn set, void *carrier) {
    if (set == NULL) {
        return SL_OTEL_EINVAL;
    }
    sl_span_context cur;
    if (ctx == NULL) {
        if (sl_context_current(&cur) != 0) {
            return SL_OTEL_ENOTFOUND;
        }
        ctx = &cur;
    }
    char tp[SL_TRACEPARENT_LEN + 1];
    if (sl_traceparent_format(ctx, tp) != 0) {
        return SL_OTEL_ENOTFOUND;
    }
    int rc = set(carrier, "traceparent", tp);
    if (rc == 0 && ctx->trace_state[0] != '\0') {
        rc = set(carrier, "tracestate", ctx->trace_state);
    }
    return rc;
}

int sl_propagation_extract(sl_carrier_get_fn get, void *carrier, sl_span_context *out) {
    if (get == NULL || out == NULL) {
        return SL_OTEL_EINVAL;
    }
    const char *tp = get(carrier, "traceparent");
    if (tp == NULL) {
        return SL_OTEL_ENOTFOUND;
    }
    sl_span_context c;
    int rc = sl_traceparent_parse(tp, strlen(tp), &c);
    if (rc != 0) {
        return rc;
    }
    const char *ts = get(carrier, "tracestate");
    if (ts != NULL &&
        sl_tracestate_parse(ts, strlen(ts), c.trace_state, sizeof c.trace_state) != 0) {
        c.trace_state[0] = '\0';
    }
    *out = c;
    return 0;
}

/* ---- the current-context stack -------------------------------------------------- */

int sl_context_push(const sl_span_context *c) {
    if (c == NULL) {
        return SL_OTEL_EINVAL;
    }
    if (ctx_depth >= CTX_DEPTH) {
        ctx_depth++;
        return SL_OTEL_ELIMIT;
    }
    sl_span_context *d = &ctx_stack[ctx_depth++];
    memcpy(d->trace_id, c->trace_id, 16);
    memcpy(d->span_id, c->span_id, 8);
    d->trace_flags = c->trace_flags;
    d->is_remote = c->is_remote;
    size_t n = strnlen(c->trace_state, SL_TRACESTATE_MAX);
    memcpy(d->trace_state, c->trace_state, n);
    d->trace_state[n] = '\0';
    return 0;
}

int sl_context_push_span(const sl_span *s) {
    if (s == NULL) {
        return SL_OTEL_EINVAL;
    }
    sl_span_context c;
    sl_span_get_context(s, &c);
    return sl_context_push(&c);
}

void sl_context_pop(void) {
    if (ctx_depth > 0) {
        ctx_depth--;
    }
}

int sl_context_current(sl_span_context *out) {
    if (ctx_depth == 0 || ctx_depth > CTX_DEPTH) {
        /* Overflowed pushes have no stored context: report none rather than
         * a wrong parent. */
        return SL_OTEL_ENOTFOUND;
    }
    if (out != NULL) {
        *out = ctx_stack[ctx_depth - 1];
    }
    return 0;
}

void sl_context_reset(void) {
    ctx_depth = 0;
}

const sl_span_context *ot_context_top(void) {
    if (ctx_depth == 0 || ctx_depth > CTX_DEPTH) {
        return NULL;
    }
    return &ctx_stack[ctx_depth - 1];
}
