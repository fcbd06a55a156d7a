/*
 * Self-metrics registry. Metrics live in a singly linked list that only grows
 * (under g_mu); readers walk it without the lock because nodes are published
 * with a release store and never freed while the process runs.
 */
#include "sl_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };
#define SL_HIST_MAX 16

struct sl_metric {
    sl_metric *next;
    int type;
    char *name;
    char *labels;
    char *help;
    atomic_uint_least64_t value;     /* counter/gauge value; histogram count */
    atomic_uint_least64_t sum_micro; /* histogram sum in millionths */
    int nbounds;
    double bounds[SL_HIST_MAX];
    atomic_uint_least64_t buckets[SL_HIST_MAX];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(sl_metric *) g_head;

const double sl_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const int sl_latency_nbounds = (int)(sizeof(sl_latency_bounds) / sizeof(sl_latency_bounds[0]));

static sl_metric *lookup(const char *name, const char *labels) {
    for (sl_metric *m = atomic_load(&g_head); m != NULL; m = m->next) {
        if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0) {
            return m;
        }
    }
    return NULL;
}

static sl_metric *reg(int type, const char *name, const char *labels, const char *help,
                      const double *bounds, int nbounds) {
    pthread_mutex_lock(&g_mu);
    sl_metric *m = lookup(name, labels);
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m != NULL) {
            m->type = type;
            m->name = strdup(name);
            m->labels = strdup(labels);
            m->help = strdup(help);
            if (m->name == NULL || m->labels == NULL || m->help == NULL) {
                free(m->name);
                free(m->labels);
                free(m->help);
                free(m);
                m = NULL;
            } else {
                m->nbounds = nbounds > SL_HIST_MAX ? SL_HIST_MAX : nbounds;
                for (int i = 0; i < m->nbounds; i++) {
                    m->bounds[i] = bounds[i];
                }
                /* Append at the tail so output keeps registration order,
                 * which groups the series of one family together. */
                sl_metric *tail = atomic_load(&g_head);
                if (tail == NULL) {
                    atomic_store(&g_head, m);
                } else {
                    while (tail->next != NULL) {
                        tail = tail->next;
                    }
                    tail->next = m;
                }
            }
        }
    }
    pthread_mutex_unlock(&g_mu);
    return m;
}

sl_metric *sl_counter(const char *name, const char *labels, const char *help) {
    return reg(M_COUNTER, name, labels, help, NULL, 0);
}

sl_metric *sl_gauge(const char *name, const char *labels, const char *help) {
    return reg(M_GAUGE, name, labels, help, NULL, 0);
}

sl_metric *sl_histogram(const char *name, const char *labels, const char *help,
                        const double *bounds, int nbounds) {
    return reg(M_HISTOGRAM, name, labels, help, bounds, nbounds);
}

void sl_metric_add(sl_metric *m, uint64_t n) {
    if (m != NULL) {
        atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
    }
}

void sl_metric_sub(sl_metric *m, uint64_t n) {
    if (m != NULL) {
        atomic_fetch_sub_explicit(&m->value, n, memory_order_relaxed);
    }
}

void sl_metric_set(sl_metric *m, uint64_t v) {
    if (m != NULL) {
        atomic_store_explicit(&m->value, v, memory_order_relaxed);
    }
}

uint64_t sl_metric_value(const sl_metric *m) {
    return m != NULL ? atomic_load(&m->value) : 0;
}

void sl_metric_observe(sl_metric *m, double v) {
    if (m == NULL) {
        return;
    }
    for (int i = 0; i < m->nbounds; i++) {
        if (v <= m->bounds[i]) {
            atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed);
    if (v > 0 && isfinite(v)) {
        atomic_fetch_add_explicit(&m->sum_micro, (uint64_t)(v * 1e6), memory_order_relaxed);
    }
}

static int render_one(sl_buf *out, const sl_metric *m, const char *prev_name) {
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    if (prev_name == NULL || strcmp(prev_name, m->name) != 0) {
        rc |= sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                            types[m->type]);
    }
    const char *sep = m->labels[0] ? "," : "";
    if (m->type != M_HISTOGRAM) {
        if (m->labels[0]) {
            rc |= sl_buf_printf(out, "%s{%s} %llu\n", m->name, m->labels,
                                (unsigned long long)atomic_load(&m->value));
        } else {
            rc |= sl_buf_printf(out, "%s %llu\n", m->name,
                                (unsigned long long)atomic_load(&m->value));
        }
        return rc;
    }
    uint64_t cum = 0;
    for (int i = 0; i < m->nbounds; i++) {
        cum += atomic_load(&m->buckets[i]);
        rc |= sl_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name, m->labels, sep,
                            m->bounds[i], (unsigned long long)cum);
    }
    uint64_t count = atomic_load(&m->value);
    rc |= sl_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, m->labels, sep,
                        (unsigned long long)count);
    const char *lb = m->labels[0] ? "{" : "";
    const char *rb = m->labels[0] ? "}" : "";
    rc |= sl_buf_printf(out, "%s_sum%s%s%s %.6f\n", m->name, lb, m->labels, rb,
                        (double)atomic_load(&m->sum_micro) / 1e6);
    rc |= sl_buf_printf(out, "%s_count%s%s%s %llu\n", m->name, lb, m->labels, rb,
                        (unsigned long long)count);
    return rc;
}

int sl_metrics_render(sl_buf *out) {
    int rc = 0;
    const char *prev = NULL;
    /* Registration appends under g_mu (a tail's next pointer, the new
     * metric's fields): walk the list under it too. Rare on both sides. */
    pthread_mutex_lock(&g_mu);
    /* Families were registered together in practice; render in list order but
     * emit each family's header once by walking families in first-seen order. */
    for (sl_metric *f = atomic_load(&g_head); f != NULL; f = f->next) {
        int seen = 0;
        for (sl_metric *g = atomic_load(&g_head); g != f; g = g->next) {
            if (strcmp(g->name, f->name) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen) {
            continue;
        }
        prev = NULL;
        for (sl_metric *m = f; m != NULL; m = m->next) {
            if (strcmp(m->name, f->name) == 0) {
                rc |= render_one(out, m, prev);
                prev = m->name;
            }
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc != 0 ? -1 : 0;
}
