/*
 * One emitter for both OTLP encodings: the signal encoders (trace.c, logs.c,
 * metrics.c) walk their data once and call ot_enc_*, which writes either
 * protobuf or OTLP/JSON.
 *
 * Protobuf: a small hand-written writer (the SDK only encodes, so it does not
 * need protobuf-c and its users do not either). A nested message reserves five
 * bytes for its length, and ot_enc_end writes the varint and moves the body
 * back over the unused bytes: one pass, no size precomputation.
 * JSON: the OTLP/JSON mapping (lowerCamelCase, ids as hex, 64-bit integers as
 * strings, enums as numbers, bytes as base64).
 * Runs on the exporting thread; no shared state.
 */
#include "sdk_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static void pb_varint(ot_buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    ot_buf_put(b, tmp, n);
}

static void pb_tag(ot_buf *b, int field, int wt) {
    pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

static void pb_le(ot_buf *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (uint8_t)(v >> (8 * i));
    }
    ot_buf_put(b, tmp, n);
}

static uint64_t dbl_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ---- JSON helpers ---------------------------------------------------------- */

static void js_sep(ot_enc *e) {
    if (!e->first[e->depth]) {
        ot_buf_putc(e->out, ',');
    }
    e->first[e->depth] = false;
}

static void js_key(ot_enc *e, const char *name) {
    js_sep(e);
    if (name != NULL) {
        ot_buf_putc(e->out, '"');
        ot_buf_puts(e->out, name);
        ot_buf_puts(e->out, "\":");
    }
}

static void js_string(ot_buf *b, const char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    ot_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ot_buf_put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ot_buf_put(b, esc, 6);
        } else {
            ot_buf_putc(b, (char)c);
        }
    }
    ot_buf_putc(b, '"');
}

static void js_raw(ot_enc *e, const char *name, const char *text) {
    js_key(e, name);
    ot_buf_puts(e->out, text);
}

static void js_open(ot_enc *e, const char *name, char c) {
    js_key(e, name);
    ot_buf_putc(e->out, c);
    if (e->depth + 1 < (int)(sizeof e->first / sizeof e->first[0])) {
        e->depth++;
    } else {
        e->out->oom = true; /* deeper than any OTLP message: refuse */
    }
    e->first[e->depth] = true;
}

/* ---- the emitter ------------------------------------------------------------ */

void ot_enc_init(ot_enc *e, ot_buf *out, bool json) {
    memset(e, 0, sizeof *e);
    e->out = out;
    e->json = json;
    if (json) {
        ot_buf_putc(out, '{');
        e->first[0] = true;
    }
}

void ot_enc_begin(ot_enc *e, int field, const char *name) {
    if (e->json) {
        js_open(e, name, '{');
        return;
    }
    pb_tag(e->out, field, WT_LEN);
    if (ot_buf_reserve(e->out, 5) != 0 ||
        e->depth + 1 >= (int)(sizeof e->mark / sizeof e->mark[0])) {
        e->out->oom = true;
        return;
    }
    e->mark[++e->depth] = e->out->len;
    e->out->len += 5;
}

void ot_enc_end(ot_enc *e) {
    if (e->out->oom) {
        return;
    }
    if (e->json) {
        ot_buf_putc(e->out, '}');
        e->depth--;
        return;
    }
    size_t mark = e->mark[e->depth--];
    size_t body = e->out->len - mark - 5;
    uint8_t tmp[5];
    size_t n = 0;
    uint64_t v = body;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    memcpy(e->out->p + mark, tmp, n);
    memmove(e->out->p + mark + n, e->out->p + mark + 5, body);
    e->out->len -= 5 - n;
}

void ot_enc_array_begin(ot_enc *e, const char *name) {
    if (e->json) {
        js_open(e, name, '[');
    }
}

void ot_enc_array_end(ot_enc *e) {
    if (e->json && !e->out->oom) {
        ot_buf_putc(e->out, ']');
        e->depth--;
    }
}

void ot_enc_str(ot_enc *e, int field, const char *name, const char *p, size_t n) {
    if (e->json) {
        js_key(e, name);
        js_string(e->out, p, n);
        return;
    }
    pb_tag(e->out, field, WT_LEN);
    pb_varint(e->out, n);
    ot_buf_put(e->out, p, n);
}

void ot_enc_id(ot_enc *e, int field, const char *name, const uint8_t *p, size_t n) {
    if (e->json) {
        static const char hex[] = "0123456789abcdef";
        char tmp[64];
        for (size_t i = 0; i < n && i < 32; i++) {
            tmp[2 * i] = hex[p[i] >> 4];
            tmp[2 * i + 1] = hex[p[i] & 15];
        }
        js_key(e, name);
        js_string(e->out, tmp, 2 * (n < 32 ? n : 32));
        return;
    }
    pb_tag(e->out, field, WT_LEN);
    pb_varint(e->out, n);
    ot_buf_put(e->out, p, n);
}

static void enc_bytes_b64(ot_enc *e, int field, const char *name, const uint8_t *p, size_t n) {
    if (!e->json) {
        ot_enc_id(e, field, name, p, n);
        return;
    }
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    js_key(e, name);
    ot_buf_putc(e->out, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        ot_buf_put(e->out, q, 4);
    }
    ot_buf_putc(e->out, '"');
}

void ot_enc_u32(ot_enc *e, int field, const char *name, uint32_t v) {
    if (e->json) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%u", v);
        js_raw(e, name, tmp);
        return;
    }
    pb_tag(e->out, field, WT_VARINT);
    pb_varint(e->out, v);
}

void ot_enc_i64(ot_enc *e, int field, const char *name, int64_t v) {
    if (e->json) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)v);
        js_raw(e, name, tmp);
        return;
    }
    pb_tag(e->out, field, WT_VARINT);
    pb_varint(e->out, (uint64_t)v);
}

void ot_enc_fixed32(ot_enc *e, int field, const char *name, uint32_t v) {
    if (e->json) {
        ot_enc_u32(e, field, name, v);
        return;
    }
    pb_tag(e->out, field, WT_I32);
    pb_le(e->out, v, 4);
}

void ot_enc_fixed64(ot_enc *e, int field, const char *name, uint64_t v) {
    if (e->json) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\"%llu\"", (unsigned long long)v);
        js_raw(e, name, tmp);
        return;
    }
    pb_tag(e->out, field, WT_I64);
    pb_le(e->out, v, 8);
}

void ot_enc_sfixed64(ot_enc *e, int field, const char *name, int64_t v) {
    if (e->json) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)v);
        js_raw(e, name, tmp);
        return;
    }
    pb_tag(e->out, field, WT_I64);
    pb_le(e->out, (uint64_t)v, 8);
}

static void js_double(ot_buf *b, double v) {
    char tmp[40];
    if (isnan(v)) {
        ot_buf_puts(b, "\"NaN\"");
    } else if (isinf(v)) {
        ot_buf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
        snprintf(tmp, sizeof tmp, "%.17g", v);
        ot_buf_puts(b, tmp);
    }
}

void ot_enc_double(ot_enc *e, int field, const char *name, double v) {
    if (e->json) {
        js_key(e, name);
        js_double(e->out, v);
        return;
    }
    pb_tag(e->out, field, WT_I64);
    pb_le(e->out, dbl_bits(v), 8);
}

void ot_enc_bool(ot_enc *e, int field, const char *name, bool v) {
    if (e->json) {
        js_raw(e, name, v ? "true" : "false");
        return;
    }
    pb_tag(e->out, field, WT_VARINT);
    pb_varint(e->out, v ? 1 : 0);
}

void ot_enc_fixed64_packed(ot_enc *e, int field, const char *name, const uint64_t *v, size_t n) {
    if (e->json) {
        js_key(e, name);
        ot_buf_putc(e->out, '[');
        for (size_t i = 0; i < n; i++) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%s\"%llu\"", i ? "," : "", (unsigned long long)v[i]);
            ot_buf_puts(e->out, tmp);
        }
        ot_buf_putc(e->out, ']');
        return;
    }
    pb_tag(e->out, field, WT_LEN);
    pb_varint(e->out, n * 8);
    for (size_t i = 0; i < n; i++) {
        pb_le(e->out, v[i], 8);
    }
}

void ot_enc_double_packed(ot_enc *e, int field, const char *name, const double *v, size_t n) {
    if (e->json) {
        js_key(e, name);
        ot_buf_putc(e->out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) {
                ot_buf_putc(e->out, ',');
            }
            js_double(e->out, v[i]);
        }
        ot_buf_putc(e->out, ']');
        return;
    }
    pb_tag(e->out, field, WT_LEN);
    pb_varint(e->out, n * 8);
    for (size_t i = 0; i < n; i++) {
        pb_le(e->out, dbl_bits(v[i]), 8);
    }
}

/* ---- attribute trees ---------------------------------------------------------- */

static void enc_keyvalue(ot_enc *e, int field, const ot_rec *r, uint32_t *i) {
    const ot_node *n = &r->nodes[*i];
    ot_enc_begin(e, field, NULL);
    ot_enc_str(e, 1, "key", ot_rec_ptr(r, n->key_off), n->key_len);
    ot_enc_anyvalue(e, 2, "value", r, i);
    ot_enc_end(e);
}

void ot_enc_anyvalue(ot_enc *e, int field, const char *name, const ot_rec *r, uint32_t *i) {
    const ot_node *n = &r->nodes[*i];
    uint32_t idx = (*i)++;
    ot_enc_begin(e, field, name);
    switch (n->type) {
    case SL_ANY_STRING:
        ot_enc_str(e, 1, "stringValue", ot_rec_ptr(r, n->u.s.off), n->u.s.len);
        break;
    case SL_ANY_BOOL:
        ot_enc_bool(e, 2, "boolValue", n->u.b);
        break;
    case SL_ANY_INT:
        ot_enc_i64(e, 3, "intValue", n->u.i);
        break;
    case SL_ANY_DOUBLE:
        ot_enc_double(e, 4, "doubleValue", n->u.d);
        break;
    case SL_ANY_BYTES:
        enc_bytes_b64(e, 7, "bytesValue", (const uint8_t *)ot_rec_ptr(r, n->u.s.off), n->u.s.len);
        break;
    case SL_ANY_ARRAY:
    case SL_ANY_KVLIST: {
        bool arr = n->type == SL_ANY_ARRAY;
        ot_enc_begin(e, arr ? 5 : 6, arr ? "arrayValue" : "kvlistValue");
        ot_enc_array_begin(e, "values");
        for (uint32_t k = 0; k < r->nodes[idx].n; k++) {
            if (arr) {
                ot_enc_anyvalue(e, 1, NULL, r, i);
            } else {
                enc_keyvalue(e, 1, r, i);
            }
        }
        ot_enc_array_end(e);
        ot_enc_end(e);
        break;
    }
    default: /* EMPTY: an AnyValue with no field set */
        break;
    }
    ot_enc_end(e);
    *i = idx + r->nodes[idx].desc + 1;
}

void ot_enc_attrs(ot_enc *e, int field, const ot_rec *r, uint16_t owner) {
    bool any = false;
    for (uint32_t i = 0; i < r->nnodes;) {
        const ot_node *n = &r->nodes[i];
        if (n->owner != owner || n->type == OT_NODE_DELETED || n->key_len == 0) {
            i += n->desc + 1;
            continue;
        }
        if (!any) {
            ot_enc_array_begin(e, "attributes");
            any = true;
        }
        enc_keyvalue(e, field, r, &i);
    }
    if (any) {
        ot_enc_array_end(e);
    }
}

void ot_enc_resource(ot_enc *e, sl_provider *p) {
    ot_enc_begin(e, 1, "resource");
    ot_enc_attrs(e, 1, &p->resource, OT_OWNER_SELF);
    ot_enc_end(e);
}

void ot_enc_scope(ot_enc *e, const ot_scope *s) {
    ot_enc_begin(e, 1, "scope");
    ot_enc_str(e, 1, "name", s->name, strlen(s->name));
    if (s->version != NULL && s->version[0] != '\0') {
        ot_enc_str(e, 2, "version", s->version, strlen(s->version));
    }
    ot_enc_end(e);
}

void ot_enc_finish(ot_enc *e) {
    if (e->json) {
        ot_buf_putc(e->out, '}');
    }
}
