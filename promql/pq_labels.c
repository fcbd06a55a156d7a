/*
 * Label sets, the label-set hash map, Prometheus's number formatting and
 * durations. Label sets are immutable once built: every edit makes a new set
 * in the caller's arena, so sets can be shared freely between vectors.
 * Thread-safety: pure functions over caller-owned memory.
 */
#include "pq_int.h"

#include "sl_err.h"

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

/* Builds "d.ddde<x>" from digits for strtod. */
static void e_string(const char *d, size_t nd, int x, char *out) {
    size_t k = 0;
    out[k++] = d[0];
    out[k++] = '.';
    for (size_t i = 1; i < nd; i++) {
        out[k++] = d[i];
    }
    out[k++] = 'e';
    if (x < 0) {
        out[k++] = '-';
        x = -x;
    }
    char rev[8];
    size_t r = 0;
    do {
        rev[r++] = (char)('0' + x % 10);
        x /= 10;
    } while (x > 0);
    while (r > 0) {
        out[k++] = rev[--r];
    }
    out[k] = '\0';
}

/* The fewest significant digits of |v| (finite, nonzero) that read back as
 * |v|, without trailing zeros, and the decimal exponent of the first one.
 * When any k <= 15 digits read back, |v| sits within half an ulp of a
 * 15-digit decimal, so the 15-digit rounding is that decimal padded with
 * zeros: trying 15, 16 and 17 digits finds the shortest. The candidates are
 * rounded from one 17-digit conversion and each is checked with strtod, so a
 * rare double-rounding slip only costs a longer (still exact) answer.
 * Subnormals have too few bits for the argument and are searched. */
static size_t shortest_digits(double v, char *digits, int *exp10) {
    char e[40];
    double a = fabs(v);
    int p = 16;
    if (a < DBL_MIN) {
        for (p = 0; p < 16; p++) {
            snprintf(e, sizeof(e), "%.*e", p, a);
            if (strtod(e, NULL) == a) {
                break;
            }
        }
    }
    snprintf(e, sizeof(e), "%.*e", p, a);
    size_t nd = 0;
    const char *q = e;
    for (; *q != 'e' && *q != '\0'; q++) {
        if (*q >= '0' && *q <= '9') {
            digits[nd++] = *q;
        }
    }
    int x = *q == 'e' ? (int)strtol(q + 1, NULL, 10) : 0;
    if (a >= DBL_MIN) {
        for (size_t want = 15; want < nd; want++) {
            /* Rounded up, and (when the dropped tail is a bare 5, where the
             * 17-digit conversion may itself have rounded up) down. */
            bool tail5 = digits[want] == '5';
            for (size_t i = want + 1; i < nd && tail5; i++) {
                tail5 = digits[i] == '0';
            }
            bool found = false;
            for (int down = 0; down <= (int)tail5 && !found; down++) {
                char c[24];
                int cx = x;
                memcpy(c, digits, want);
                if (!down && digits[want] >= '5') {
                    size_t i = want;
                    while (i > 0 && c[i - 1] == '9') {
                        c[--i] = '0';
                    }
                    if (i == 0) {
                        c[0] = '1';
                        cx++;
                    } else {
                        c[i - 1]++;
                    }
                }
                char t[48];
                e_string(c, want, cx, t);
                if (strtod(t, NULL) == a) {
                    memcpy(digits, c, want);
                    nd = want;
                    x = cx;
                    found = true;
                }
            }
            if (found) {
                break;
            }
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    *exp10 = x;
    return nd;
}

size_t pq_format_value(double v, char *buf, size_t cap) {
    int n;
    if (isnan(v)) {
        n = snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        n = snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        n = snprintf(buf, cap, signbit(v) ? "-0" : "0");
    } else {
        /* Shortest digits that read back equal, then written without an
         * exponent as Go's strconv.FormatFloat(v, 'f', -1, 64) does. */
        if (v == (double)(int64_t)v && fabs(v) < 1e15) {
            /* Integers (most counters and gauges) need no search. */
            n = snprintf(buf, cap, "%lld", (long long)v);
            return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
        }
        char digits[24];
        int exp10;
        size_t nd = shortest_digits(v, digits, &exp10);
        bool neg = v < 0;
        char out[400];
        size_t k = 0;
        if (neg) {
            out[k++] = '-';
        }
        if (exp10 < 0) {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = -1; i > exp10; i--) {
                out[k++] = '0';
            }
            for (size_t i = 0; i < nd; i++) {
                out[k++] = digits[i];
            }
        } else {
            for (int i = 0; i <= exp10 || (size_t)i < nd; i++) {
                if (i == exp10 + 1) {
                    out[k++] = '.';
                }
                out[k++] = (size_t)i < nd ? digits[i] : '0';
            }
        }
        out[k] = '\0';
        n = snprintf(buf, cap, "%s", out);
    }
    if (n < 0) {
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
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
