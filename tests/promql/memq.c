/*
 * The in-memory querier (see memq.h). Series live in a growable array with a
 * hash index on their canonical label string; selection walks them in label
 * order and applies matchers as Prometheus does (a missing label is "").
 */
#include "memq.h"

#include "pq_int.h"
#include "sl_buf.h"
#include "sl_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mseries {
    pq_label *l;
    size_t nl;
    char *key;
    pq_sample *s;
    size_t n, cap;
} mseries;

struct memq {
    mseries *series;
    size_t n, cap;
    size_t *index; /* hash slots: series index + 1, 0 empty */
    size_t icap;
    int sorted;
};

memq *memq_create(void) {
    return calloc(1, sizeof(memq));
}

void memq_destroy(memq *q) {
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < q->n; i++) {
        for (size_t j = 0; j < q->series[i].nl; j++) {
            free((void *)(uintptr_t)q->series[i].l[j].name.ptr);
            free((void *)(uintptr_t)q->series[i].l[j].value.ptr);
        }
        free(q->series[i].l);
        free(q->series[i].key);
        free(q->series[i].s);
    }
    free(q->series);
    free(q->index);
    free(q);
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    }
    return h;
}

static int label_cmp(const void *a, const void *b) {
    const pq_label *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    return c != 0 ? c : (x->name.len < y->name.len ? -1 : x->name.len > y->name.len);
}

static void reindex(memq *q) {
    free(q->index);
    q->icap = 1024;
    while (q->icap < q->n * 2 + 2) {
        q->icap *= 2;
    }
    q->index = calloc(q->icap, sizeof(size_t));
    for (size_t i = 0; i < q->n; i++) {
        size_t k = hash_str(q->series[i].key) & (q->icap - 1);
        while (q->index[k] != 0) {
            k = (k + 1) & (q->icap - 1);
        }
        q->index[k] = i + 1;
    }
}

/* Finds or creates the series with these labels (taken: names and values are
 * malloc'd strings). */
static mseries *get_series(memq *q, pq_label *l, size_t nl) {
    qsort(l, nl, sizeof(pq_label), label_cmp);
    sl_buf b;
    sl_buf_init(&b, 0);
    for (size_t i = 0; i < nl; i++) {
        sl_buf_append(&b, l[i].name.ptr, l[i].name.len);
        sl_buf_putc(&b, 0xff);
        sl_buf_append(&b, l[i].value.ptr, l[i].value.len);
        sl_buf_putc(&b, 0xfe);
    }
    sl_buf_putc(&b, 0);
    char *key = (char *)b.data;
    if (q->index == NULL || q->n * 2 + 2 > q->icap) {
        reindex(q);
    }
    size_t k = hash_str(key) & (q->icap - 1);
    while (q->index[k] != 0) {
        mseries *s = &q->series[q->index[k] - 1];
        if (strcmp(s->key, key) == 0) {
            free(key);
            for (size_t i = 0; i < nl; i++) {
                free((void *)(uintptr_t)l[i].name.ptr);
                free((void *)(uintptr_t)l[i].value.ptr);
            }
            free(l);
            return s;
        }
        k = (k + 1) & (q->icap - 1);
    }
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->series = realloc(q->series, q->cap * sizeof(mseries));
    }
    mseries *s = &q->series[q->n];
    memset(s, 0, sizeof(*s));
    s->l = l;
    s->nl = nl;
    s->key = key;
    q->index[k] = ++q->n;
    q->sorted = 0;
    return s;
}

static void add_sample(mseries *s, int64_t t, double v) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->s = realloc(s->s, s->cap * sizeof(pq_sample));
    }
    s->s[s->n++] = (pq_sample){t, v};
}

static char *dupn(const char *p, size_t n) {
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int memq_add(memq *q, const char *labels, int64_t t_ms, double v) {
    size_t cap = 16, n = 0;
    pq_label *l = calloc(cap, sizeof(pq_label));
    const char *p = labels;
    while (*p) {
        const char *eq = strchr(p, '=');
        if (eq == NULL) {
            break;
        }
        const char *end = strchr(eq, ',');
        if (end == NULL) {
            end = eq + strlen(eq);
        }
        if (n == cap) {
            cap *= 2;
            l = realloc(l, cap * sizeof(pq_label));
        }
        l[n].name = (sl_str){dupn(p, (size_t)(eq - p)), (size_t)(eq - p)};
        l[n].value = (sl_str){dupn(eq + 1, (size_t)(end - eq - 1)), (size_t)(end - eq - 1)};
        n++;
        p = *end ? end + 1 : end;
    }
    add_sample(get_series(q, l, n), t_ms, v);
    return 0;
}

/* Parses one exposition line into the series and sample. */
static int parse_line(memq *q, char *line, long lineno) {
    char *p = line;
    char *name = p;
    while (*p && *p != '{' && *p != ' ') {
        p++;
    }
    size_t namelen = (size_t)(p - name);
    size_t cap = 8, n = 0;
    pq_label *l = calloc(cap, sizeof(pq_label));
    l[n].name = (sl_str){dupn("__name__", 8), 8};
    l[n].value = (sl_str){dupn(name, namelen), namelen};
    n++;
    if (*p == '{') {
        p++;
        while (*p && *p != '}') {
            char *ln = p;
            while (*p && *p != '=') {
                p++;
            }
            size_t lnlen = (size_t)(p - ln);
            if (p[0] != '=' || p[1] != '"') {
                fprintf(stderr, "line %ld: bad label\n", lineno);
                free(l);
                return -1;
            }
            p += 2;
            char *val = malloc(strlen(p) + 1);
            size_t k = 0;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) {
                    p++;
                    val[k++] = *p == 'n' ? '\n' : *p;
                } else {
                    val[k++] = *p;
                }
                p++;
            }
            val[k] = '\0';
            if (*p == '"') {
                p++;
            }
            if (*p == ',') {
                p++;
            }
            if (n == cap) {
                cap *= 2;
                l = realloc(l, cap * sizeof(pq_label));
            }
            l[n].name = (sl_str){dupn(ln, lnlen), lnlen};
            l[n].value = (sl_str){val, k};
            n++;
        }
        if (*p == '}') {
            p++;
        }
    }
    char *end;
    double v = strtod(p, &end);
    if (end == p) {
        fprintf(stderr, "line %ld: bad value\n", lineno);
        return -1;
    }
    p = end;
    double ts = strtod(p, &end);
    if (end == p) {
        fprintf(stderr, "line %ld: missing timestamp\n", lineno);
        return -1;
    }
    add_sample(get_series(q, l, n), (int64_t)llround(ts * 1000.0), v);
    return 0;
}

long memq_load_openmetrics(memq *q, const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long count = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0 || line[0] == '#') {
            continue;
        }
        if (parse_line(q, line, lineno) != 0) {
            count = -1;
            break;
        }
        count++;
    }
    free(line);
    fclose(f);
    return count;
}

static int series_cmp(const void *a, const void *b) {
    const mseries *x = a, *y = b;
    size_t n = x->nl < y->nl ? x->nl : y->nl;
    for (size_t i = 0; i < n; i++) {
        int c = label_cmp(&x->l[i], &y->l[i]);
        if (c == 0) {
            size_t m =
                x->l[i].value.len < y->l[i].value.len ? x->l[i].value.len : y->l[i].value.len;
            c = memcmp(x->l[i].value.ptr, y->l[i].value.ptr, m);
            if (c == 0 && x->l[i].value.len != y->l[i].value.len) {
                c = x->l[i].value.len < y->l[i].value.len ? -1 : 1;
            }
        }
        if (c != 0) {
            return c;
        }
    }
    return x->nl < y->nl ? -1 : x->nl > y->nl;
}

static sl_str get_label(const mseries *s, sl_str name) {
    for (size_t i = 0; i < s->nl; i++) {
        if (sl_str_eq(s->l[i].name, name)) {
            return s->l[i].value;
        }
    }
    return (sl_str){"", 0};
}

static int memq_select(void *ud, const pq_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                       pq_series_cb cb, void *cb_ud) {
    memq *q = ud;
    if (!q->sorted) {
        if (q->n > 1) {
            qsort(q->series, q->n, sizeof(mseries), series_cmp);
        }
        reindex(q);
        q->sorted = 1;
    }
    pq_regex **re = calloc(nm + 1, sizeof(pq_regex *));
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0; i++) {
        if (m[i].op == PQ_MATCH_RE || m[i].op == PQ_MATCH_NRE) {
            char err[200];
            rc = pq_regex_compile(m[i].value, &re[i], err, sizeof(err));
        }
    }
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        const mseries *s = &q->series[i];
        int ok = 1;
        for (size_t j = 0; j < nm && ok; j++) {
            sl_str v = get_label(s, m[j].name);
            switch (m[j].op) {
            case PQ_MATCH_EQ:
                ok = sl_str_eq(v, m[j].value);
                break;
            case PQ_MATCH_NE:
                ok = !sl_str_eq(v, m[j].value);
                break;
            case PQ_MATCH_RE:
                ok = pq_regex_match(re[j], v);
                break;
            case PQ_MATCH_NRE:
                ok = !pq_regex_match(re[j], v);
                break;
            }
        }
        if (!ok) {
            continue;
        }
        size_t lo = 0;
        while (lo < s->n && s->s[lo].t_ms < mint) {
            lo++;
        }
        size_t hi = lo;
        while (hi < s->n && s->s[hi].t_ms <= maxt) {
            hi++;
        }
        if (hi > lo) {
            rc = cb(cb_ud, s->l, s->nl, s->s + lo, hi - lo);
        }
    }
    for (size_t i = 0; i < nm; i++) {
        pq_regex_free(re[i]);
    }
    free(re);
    return rc;
}

pq_querier memq_querier(memq *q) {
    return (pq_querier){memq_select, q};
}
