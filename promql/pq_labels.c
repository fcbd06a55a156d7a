/*
 * Label sets, the label-set hash map, Prometheus's number formatting and
 * durations. Label sets are immutable once built: every edit makes a new set
 * in the caller's arena, so sets can be shared freely between vectors.
 * Thread-safety: pure functions over caller-owned memory.
 */
#include "pq_int.h"

#include "sl_err.h"
#include "sl_fmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const pq_lset pq_lset_empty = {0xcbf29ce484222325ULL, 0};

static const sl_str g_name_label = SL_STR_INIT("__name__");

int pq_is_stale(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits == PQ_STALE_NAN_BITS;
}

static int str_cmp(sl_str a, sl_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

static uint64_t hash_label(uint64_t h, const pq_label *l) {
    for (size_t j = 0; j < l->name.len; j++) {
        h = (h ^ (uint8_t)l->name.ptr[j]) * 0x100000001b3ULL;
    }
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (size_t j = 0; j < l->value.len; j++) {
        h = (h ^ (uint8_t)l->value.ptr[j]) * 0x100000001b3ULL;
    }
    return (h ^ 0xfe) * 0x100000001b3ULL;
}

uint64_t pq_hash_labels(const pq_label *l, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h = hash_label(h, &l[i]);
    }
    return h;
}

static int label_cmp(const void *a, const void *b) {
    return str_cmp(((const pq_label *)a)->name, ((const pq_label *)b)->name);
}

static pq_lset *lset_alloc(sl_arena *a, size_t n) {
    return sl_arena_alloc(a, sizeof(pq_lset) + n * sizeof(pq_label));
}

pq_lset *pq_lset_make(sl_arena *a, const pq_label *l, size_t n, bool copy_strings) {
    pq_lset *ls = lset_alloc(a, n);
    if (ls == NULL) {
        return NULL;
    }
    ls->n = n;
    for (size_t i = 0; i < n; i++) {
        ls->l[i] = l[i];
        if (copy_strings) {
            char *nm = sl_arena_strndup(a, l[i].name.ptr ? l[i].name.ptr : "", l[i].name.len);
            char *v = sl_arena_strndup(a, l[i].value.ptr ? l[i].value.ptr : "", l[i].value.len);
            if (nm == NULL || v == NULL) {
                return NULL;
            }
            ls->l[i].name.ptr = nm;
            ls->l[i].value.ptr = v;
        }
    }
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) {
        sorted = str_cmp(ls->l[i - 1].name, ls->l[i].name) < 0;
    }
    if (!sorted) {
        qsort(ls->l, n, sizeof(pq_label), label_cmp);
    }
    ls->hash = pq_hash_labels(ls->l, n);
    return ls;
}

sl_str pq_lset_get(const pq_lset *ls, sl_str name) {
    for (size_t i = 0; i < ls->n; i++) {
        if (sl_str_eq(ls->l[i].name, name)) {
            return ls->l[i].value;
        }
    }
    return (sl_str){"", 0};
}

bool pq_lset_eq(const pq_lset *a, const pq_lset *b) {
    if (a == b) {
        return true;
    }
    if (a->hash != b->hash || a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (!sl_str_eq(a->l[i].name, b->l[i].name) || !sl_str_eq(a->l[i].value, b->l[i].value)) {
            return false;
        }
    }
    return true;
}

int pq_lset_cmp(const pq_lset *a, const pq_lset *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int c = str_cmp(a->l[i].name, b->l[i].name);
        if (c != 0) {
            return c;
        }
        c = str_cmp(a->l[i].value, b->l[i].value);
        if (c != 0) {
            return c;
        }
    }
    return a->n < b->n ? -1 : (a->n > b->n ? 1 : 0);
}

static bool in_names(sl_str name, const sl_str *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (sl_str_eq(name, names[i])) {
            return true;
        }
    }
    return false;
}

/* Whether a label belongs to a projection (see pq_lset_sig_hash). */
static bool sig_includes(sl_str name, const sl_str *names, size_t n, bool keep) {
    bool listed = in_names(name, names, n);
    return keep ? listed : (!listed && !sl_str_eq(name, g_name_label));
}

uint64_t pq_lset_sig_hash(const pq_lset *ls, const sl_str *names, size_t n, bool keep) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < ls->n; i++) {
        if (sig_includes(ls->l[i].name, names, n, keep)) {
            h = hash_label(h, &ls->l[i]);
        }
    }
    return h;
}

bool pq_lset_sig_eq(const pq_lset *a, const pq_lset *b, const sl_str *names, size_t n, bool keep) {
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a->n && !sig_includes(a->l[i].name, names, n, keep)) {
            i++;
        }
        while (j < b->n && !sig_includes(b->l[j].name, names, n, keep)) {
            j++;
        }
        if (i == a->n || j == b->n) {
            return i == a->n && j == b->n;
        }
        if (!sl_str_eq(a->l[i].name, b->l[j].name) || !sl_str_eq(a->l[i].value, b->l[j].value)) {
            return false;
        }
        i++;
        j++;
    }
}

const pq_lset *pq_lset_project(sl_arena *a, const pq_lset *ls, const sl_str *names, size_t n,
                               bool keep, bool drop_name) {
    pq_lset *out = lset_alloc(a, ls->n);
    if (out == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < ls->n; i++) {
        bool listed = in_names(ls->l[i].name, names, n);
        bool take =
            keep ? listed : (!listed && !(drop_name && sl_str_eq(ls->l[i].name, g_name_label)));
        if (take) {
            out->l[k++] = ls->l[i];
        }
    }
    if (k == ls->n) {
        return ls;
    }
    out->n = k;
    out->hash = pq_hash_labels(out->l, k);
    return out;
}

const pq_lset *pq_lset_drop_name(sl_arena *a, const pq_lset *ls) {
    if (ls->n == 0 || !sl_str_eq(ls->l[0].name, g_name_label)) {
        /* "__name__" sorts before any label name that starts with a letter,
         * but not before "_" followed by a smaller byte: search. */
        bool found = false;
        for (size_t i = 0; i < ls->n && !found; i++) {
            found = sl_str_eq(ls->l[i].name, g_name_label);
        }
        if (!found) {
            return ls;
        }
    }
    return pq_lset_project(a, ls, &g_name_label, 1, false, false);
}

const pq_lset *pq_lset_set(sl_arena *a, const pq_lset *ls, sl_str name, sl_str value) {
    pq_lset *out = lset_alloc(a, ls->n + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t k = 0;
    bool placed = value.len == 0;
    for (size_t i = 0; i < ls->n; i++) {
        int c = str_cmp(ls->l[i].name, name);
        if (c == 0) {
            continue;
        }
        if (c > 0 && !placed) {
            out->l[k++] = (pq_label){name, value};
            placed = true;
        }
        out->l[k++] = ls->l[i];
    }
    if (!placed) {
        out->l[k++] = (pq_label){name, value};
    }
    out->n = k;
    out->hash = pq_hash_labels(out->l, k);
    return out;
}

bool pq_valid_label_name(sl_str s) {
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* --- map --------------------------------------------------------------------- */

int pq_map_init(pq_map *m, sl_arena *a, size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2) {
        cap *= 2;
    }
    m->a = a;
    m->cap = cap;
    m->n = 0;
    m->h = sl_arena_alloc(a, cap * sizeof(uint64_t));
    m->idx = sl_arena_alloc(a, cap * sizeof(uint32_t));
    if (m->h == NULL || m->idx == NULL) {
        return SL_ENOMEM;
    }
    memset(m->idx, 0xff, cap * sizeof(uint32_t));
    return 0;
}

uint32_t pq_map_next(const pq_map *m, uint64_t h, size_t *it) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)(h + *it) & mask;; i = (i + 1) & mask) {
        (*it)++;
        if (m->idx[i] == UINT32_MAX || *it > m->cap) {
            return UINT32_MAX;
        }
        if (m->h[i] == h) {
            return m->idx[i];
        }
    }
}

int pq_map_put(pq_map *m, uint64_t h, uint32_t idx) {
    if ((m->n + 1) * 2 > m->cap) {
        pq_map bigger;
        if (pq_map_init(&bigger, m->a, m->cap) != 0) {
            return SL_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->idx[i] != UINT32_MAX) {
                pq_map_put(&bigger, m->h[i], m->idx[i]);
            }
        }
        *m = bigger;
    }
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->idx[i] != UINT32_MAX) {
        i = (i + 1) & mask;
    }
    m->h[i] = h;
    m->idx[i] = idx;
    m->n++;
    return 0;
}

/* --- numbers ------------------------------------------------------------------ */

size_t pq_format_value(double v, char *buf, size_t cap) {
    char tmp[SL_FMT_DOUBLE_MAX];
    size_t n = sl_fmt_double(v, tmp);
    if (cap == 0) {
        return 0;
    }
    n = n < cap ? n : cap - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

int pq_parse_duration(sl_str s, int64_t *out_ms) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 24 * 3600 * 1000},
                 {"w", 7LL * 24 * 3600 * 1000},
                 {"d", 24LL * 3600 * 1000},
                 {"h", 3600LL * 1000},
                 {"m", 60LL * 1000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t i = 0;
    size_t last_unit = 0;
    int64_t total = 0;
    if (s.len == 0) {
        return SL_EINVAL;
    }
    if (s.len == 1 && s.ptr[0] == '0') {
        *out_ms = 0;
        return 0;
    }
    while (i < s.len) {
        int64_t v = 0;
        size_t start = i;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                return SL_EINVAL;
            }
            v = v * 10 + (s.ptr[i] - '0');
            i++;
        }
        if (i == start || i == s.len) {
            return SL_EINVAL;
        }
        size_t u;
        size_t ulen = 0;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t l = strlen(units[u].unit);
            /* "ms" before "m": the longer unit wins when it fits. */
            if (u == 4 && i + 2 <= s.len && s.ptr[i] == 'm' && s.ptr[i + 1] == 's') {
                continue;
            }
            if (i + l <= s.len && memcmp(s.ptr + i, units[u].unit, l) == 0) {
                ulen = l;
                break;
            }
        }
        if (ulen == 0 || u + 1 <= last_unit) {
            return SL_EINVAL; /* unknown unit, or units out of order / repeated */
        }
        last_unit = u + 1;
        if (v > INT64_MAX / units[u].ms || total > INT64_MAX - v * units[u].ms) {
            return SL_EINVAL;
        }
        total += v * units[u].ms;
        i += ulen;
    }
    *out_ms = total;
    return 0;
}
