/*
 * Small helpers of the SDK: error messages, clocks, the per-thread id
 * generator, growable buffers and the record store (strings + flattened
 * attribute trees) that spans and log records are built in.
 * Everything here is thread-safe or works on caller-owned data.
 */
#include "sdk_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

const char *sl_otel_version(void) {
    return SL_OTEL_VERSION_STRING;
}

const char *sl_otel_strerror(int err) {
    switch (err) {
    case 0:
        return "success";
#define SL_OTEL_ERR_CASE(name, code, msg)                                                          \
    case code:                                                                                     \
        return msg;
        SL_OTEL_ERR_MAP(SL_OTEL_ERR_CASE)
#undef SL_OTEL_ERR_CASE
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* strerror is not thread-safe everywhere; the common ones suffice. */
        switch (-err) {
        case EAGAIN:
            return "resource temporarily unavailable";
        case ENOMEM:
            return "out of memory";
        case EINVAL:
            return "invalid argument";
        default:
            return "system error";
        }
    }
    return "unknown error";
}

void ot_diag(sl_provider *p, sl_diag level, const char *fmt, ...) {
    if (p == NULL || p->log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->log(p->log_ud, level, msg);
}

uint64_t ot_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ot_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ot_deadline(uint32_t timeout_ms) {
    return ot_mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

char *ot_strdup(const char *s) {
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* xoshiro256** per thread, seeded from getrandom (ids need uniqueness and
 * unpredictability enough for sampling, not cryptographic strength). */
static _Thread_local uint64_t rng_s[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t ot_random_u64(void) {
    if (!rng_seeded) {
        if (getrandom(rng_s, sizeof rng_s, 0) != (ssize_t)sizeof rng_s) {
            uint64_t seed = ot_now_ns() ^ ((uint64_t)(uintptr_t)&rng_s << 17) ^ ot_mono_ns();
            for (int i = 0; i < 4; i++) { /* splitmix64 */
                seed += 0x9e3779b97f4a7c15u;
                uint64_t z = seed;
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
                rng_s[i] = z ^ (z >> 31);
            }
        }
        rng_seeded = true;
    }
    uint64_t result = rotl(rng_s[1] * 5, 7) * 9;
    uint64_t t = rng_s[1] << 17;
    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return result;
}

void ot_random_bytes(uint8_t *out, size_t n) {
    while (n > 0) {
        uint64_t r = ot_random_u64();
        size_t k = n < 8 ? n : 8;
        memcpy(out, &r, k);
        out += k;
        n -= k;
    }
}

/* ---- buffers -------------------------------------------------------------- */

int ot_buf_reserve(ot_buf *b, size_t extra) {
    if (b->oom) {
        return SL_OTEL_ENOMEM;
    }
    if (b->cap - b->len >= extra) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return SL_OTEL_ENOMEM;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return SL_OTEL_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ot_buf_put(ot_buf *b, const void *p, size_t n) {
    if (n == 0 || ot_buf_reserve(b, n) != 0) {
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void ot_buf_putc(ot_buf *b, char c) {
    if (ot_buf_reserve(b, 1) == 0) {
        b->p[b->len++] = (uint8_t)c;
    }
}

void ot_buf_puts(ot_buf *b, const char *s) {
    ot_buf_put(b, s, strlen(s));
}

void ot_buf_free(ot_buf *b) {
    free(b->p);
    *b = (ot_buf){0};
}

/* ---- records -------------------------------------------------------------- */

uint32_t ot_rec_str(ot_rec *r, const char *s, size_t len) {
    if (len > UINT32_MAX / 2 || r->str.len + len > UINT32_MAX / 2) {
        return UINT32_MAX;
    }
    uint32_t off = (uint32_t)r->str.len;
    if (len > 0) {
        if (ot_buf_reserve(&r->str, len) != 0) {
            r->str.oom = false; /* the record stays usable; this value is lost */
            return UINT32_MAX;
        }
        memcpy(r->str.p + r->str.len, s, len);
        r->str.len += len;
    }
    return off;
}

static ot_node *rec_node(ot_rec *r) {
    if (r->nnodes == r->cap_nodes) {
        uint32_t cap = r->cap_nodes ? r->cap_nodes * 2 : 16;
        ot_node *n = realloc(r->nodes, cap * sizeof *n);
        if (n == NULL) {
            return NULL;
        }
        r->nodes = n;
        r->cap_nodes = cap;
    }
    ot_node *n = &r->nodes[r->nnodes++];
    memset(n, 0, sizeof *n);
    return n;
}

static size_t any_len(const sl_any *v) {
    if (v->type == SL_ANY_STRING && v->len == SL_LEN_AUTO) {
        return v->v.str ? strlen(v->v.str) : 0;
    }
    return v->len;
}

/* Appends v and its descendants in pre-order; returns the index of its node
 * or a negative error (the partial nodes are then removed by the caller). */
static int rec_add_value(ot_rec *r, const sl_any *v, uint32_t value_len, int depth) {
    if (depth > OT_MAX_DEPTH || (unsigned)v->type > SL_ANY_KVLIST) {
        return SL_OTEL_EINVAL;
    }
    uint32_t idx = r->nnodes;
    ot_node *n = rec_node(r);
    if (n == NULL) {
        return SL_OTEL_ENOMEM;
    }
    n->type = (uint8_t)v->type;
    size_t len;
    switch (v->type) {
    case SL_ANY_EMPTY:
        break;
    case SL_ANY_BOOL:
        n->u.b = v->v.b;
        break;
    case SL_ANY_INT:
        n->u.i = v->v.i;
        break;
    case SL_ANY_DOUBLE:
        n->u.d = v->v.d;
        break;
    case SL_ANY_STRING:
    case SL_ANY_BYTES: {
        len = any_len(v);
        const char *s = v->type == SL_ANY_STRING ? v->v.str : (const char *)v->v.bytes;
        if (s == NULL) {
            len = 0;
        }
        if (len > value_len) {
            len = value_len;
            /* Never cut a UTF-8 sequence in the middle. */
            while (v->type == SL_ANY_STRING && len > 0 && ((uint8_t)s[len] & 0xC0) == 0x80) {
                len--;
            }
        }
        uint32_t off = ot_rec_str(r, s, len);
        if (off == UINT32_MAX) {
            return SL_OTEL_ENOMEM;
        }
        n = &r->nodes[idx];
        n->u.s.off = off;
        n->u.s.len = (uint32_t)len;
        break;
    }
    case SL_ANY_ARRAY:
    case SL_ANY_KVLIST: {
        if (v->len > 0 && v->v.array == NULL) {
            return SL_OTEL_EINVAL;
        }
        for (size_t i = 0; i < v->len; i++) {
            int rc;
            if (v->type == SL_ANY_ARRAY) {
                rc = rec_add_value(r, &v->v.array[i], value_len, depth + 1);
            } else {
                const sl_kv *kv = &v->v.kvlist[i];
                if (kv->key == NULL) {
                    return SL_OTEL_EINVAL;
                }
                uint32_t child = r->nnodes;
                rc = rec_add_value(r, &kv->value, value_len, depth + 1);
                if (rc >= 0) {
                    size_t kl = strlen(kv->key);
                    uint32_t ko = ot_rec_str(r, kv->key, kl);
                    if (ko == UINT32_MAX) {
                        return SL_OTEL_ENOMEM;
                    }
                    r->nodes[child].key_off = ko;
                    r->nodes[child].key_len = (uint32_t)kl;
                }
            }
            if (rc < 0) {
                return rc;
            }
        }
        n = &r->nodes[idx];
        n->n = (uint32_t)v->len;
        n->desc = r->nnodes - idx - 1;
        break;
    }
    }
    return (int)idx;
}

static bool node_key_eq(const ot_rec *r, const ot_node *n, const char *key, size_t kl) {
    return n->key_len == kl && memcmp(r->str.p + n->key_off, key, kl) == 0;
}

int ot_rec_set(ot_rec *r, uint16_t owner, const sl_kv *kv, uint32_t max, uint32_t value_len,
               uint32_t *count, uint32_t *dropped) {
    if (kv == NULL || kv->key == NULL || kv->key[0] == '\0') {
        return SL_OTEL_EINVAL;
    }
    size_t kl = strlen(kv->key);
    bool scalar = kv->value.type != SL_ANY_ARRAY && kv->value.type != SL_ANY_KVLIST;
    /* Replace a same-key attribute of this owner. */
    uint32_t old = UINT32_MAX;
    for (uint32_t i = 0; i < r->nnodes; i += r->nodes[i].desc + 1) {
        ot_node *n = &r->nodes[i];
        if (n->owner == owner && n->type != OT_NODE_DELETED && node_key_eq(r, n, kv->key, kl)) {
            old = i;
            break;
        }
    }
    if (old == UINT32_MAX && *count >= max) {
        (*dropped)++;
        return SL_OTEL_ELIMIT;
    }
    uint32_t keep = r->nnodes;
    size_t keep_str = r->str.len;
    int rc = rec_add_value(r, &kv->value, value_len, 0);
    uint32_t ko = UINT32_MAX;
    if (rc >= 0 && old != UINT32_MAX && scalar && r->nodes[old].desc == 0) {
        /* Overwrite in place (an old string's bytes stay unused). */
        ot_node nv = r->nodes[rc];
        r->nnodes = keep;
        r->nodes[old].type = nv.type;
        r->nodes[old].u = nv.u;
        return 0;
    }
    if (rc >= 0) {
        ko = old != UINT32_MAX ? r->nodes[old].key_off : ot_rec_str(r, kv->key, kl);
    }
    if (rc < 0 || ko == UINT32_MAX) {
        r->nnodes = keep;
        r->str.len = keep_str;
        if (old == UINT32_MAX) {
            (*dropped)++;
        }
        return rc < 0 ? rc : SL_OTEL_ENOMEM;
    }
    r->nodes[rc].owner = owner;
    r->nodes[rc].key_off = ko;
    r->nodes[rc].key_len = (uint32_t)kl;
    if (old != UINT32_MAX) {
        r->nodes[old].type = OT_NODE_DELETED; /* the new value is appended */
    } else {
        (*count)++;
    }
    return 0;
}

int ot_rec_value(ot_rec *r, uint16_t owner, const sl_any *v, uint32_t value_len) {
    uint32_t keep = r->nnodes;
    int rc = rec_add_value(r, v, value_len, 0);
    if (rc < 0) {
        r->nnodes = keep;
        return rc;
    }
    r->nodes[rc].owner = owner;
    return 0;
}

void ot_rec_reset(ot_rec *r) {
    r->nnodes = 0;
    r->str.len = 0;
    r->str.oom = false;
    /* Give back what an unusually large record grew, so that the pool stays
     * small; the next record of that size reallocates. */
    if (r->str.cap > OT_REC_KEEP_STR) {
        ot_buf_free(&r->str);
    }
    if (r->cap_nodes > OT_REC_KEEP_NODES) {
        free(r->nodes);
        r->nodes = NULL;
        r->cap_nodes = 0;
    }
}

void ot_rec_free(ot_rec *r) {
    ot_buf_free(&r->str);
    free(r->nodes);
    *r = (ot_rec){0};
}
