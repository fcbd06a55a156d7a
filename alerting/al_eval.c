/*
 * The rule evaluator: per tenant, per group, per rule, Prometheus's state
 * machine for alerting rules (inactive -> pending -> firing -> resolved, with
 * `for` and `keep_firing_for`), recording rules, the ALERTS and
 * ALERTS_FOR_STATE series written back, alerts handed to the notifier with
 * Prometheus's resend rules, and a state file so that alerts survive a
 * restart. One mutex guards everything; the evaluator thread holds it while
 * it evaluates a group, API readers while they render.
 *
 * Invariants: an active alert is pending, firing, or inactive (resolved, kept
 * 15 minutes so that the resolution reaches the notifier); its labels are
 * sorted by name and include alertname; fingerprints are unique per rule.
 */
#include "alerting.h"

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESOLVED_RETENTION_MS (15 * 60 * 1000)
#define RESEND_DELAY_MS (60 * 1000)

typedef enum { ST_INACTIVE, ST_PENDING, ST_FIRING } al_state;

static const char *state_name(al_state s) {
    return s == ST_FIRING ? "firing" : s == ST_PENDING ? "pending" : "inactive";
}

typedef struct active {
    uint64_t fp;
    al_kv *labels;
    size_t nlabels;
    al_kv *ann;
    size_t nann;
    al_state state;
    double value;
    int64_t active_at, fired_at, resolved_at, keep_firing_since, last_sent, valid_until;
} active;

typedef struct rule_state {
    active *alerts;
    size_t n, cap;
    int64_t last_eval_ms;
    double eval_seconds;
    char *last_error;
} rule_state;

typedef struct tenant {
    char *name;
    al_ruleset rs;
    rule_state **st;     /* [group][rule] */
    int64_t *next_eval;  /* per group */
    int64_t *group_last; /* per group: last evaluation */
    double *group_seconds;
} tenant;

struct al_engine {
    al_engine_options o;
    char *rules_dir, *state_file, *external_url;
    pthread_mutex_t mu;
    tenant *tenants;
    size_t ntenants;
    bool dirty; /* state changed since the file was written */
    pthread_t thread;
    bool started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
    sl_metric *m_evals, *m_eval_failures;
};

/* --- small helpers --------------------------------------------------------------- */

uint64_t al_fingerprint(const al_kv *labels, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = labels[i].name; *p; p++) {
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        }
        h = (h ^ 0xff) * 1099511628211ull;
        for (const char *p = labels[i].value; *p; p++) {
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        }
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static void kvs_free(al_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static int kv_cmp(const void *a, const void *b) {
    return strcmp(((const al_kv *)a)->name, ((const al_kv *)b)->name);
}

/* Sets name=value in the array (replacing an existing name). */
static int kv_set(al_kv **kv, size_t *n, size_t *cap, const char *name, size_t name_len,
                  const char *value, size_t value_len) {
    char *nm = strndup(name, name_len), *v = strndup(value, value_len);
    if (nm == NULL || v == NULL) {
        free(nm);
        free(v);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].name, nm) == 0) {
            free((*kv)[i].value);
            (*kv)[i].value = v;
            free(nm);
            return 0;
        }
    }
    if (sl_array_grow(kv, cap, *n + 1, sizeof(al_kv)) != 0) {
        free(nm);
        free(v);
        return SL_ENOMEM;
    }
    (*kv)[(*n)++] = (al_kv){nm, v};
    return 0;
}

static void active_free(active *a) {
    kvs_free(a->labels, a->nlabels);
    kvs_free(a->ann, a->nann);
}

static void rule_state_free(rule_state *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        active_free(&rs->alerts[i]);
    }
    free(rs->alerts);
    free(rs->last_error);
    *rs = (rule_state){0};
}

static void tenant_free(tenant *t) {
    for (size_t g = 0; g < t->rs.ngroups; g++) {
        for (size_t r = 0; r < t->rs.groups[g].nrules; r++) {
            rule_state_free(&t->st[g][r]);
        }
        free(t->st[g]);
    }
    free(t->st);
    free(t->next_eval);
    free(t->group_last);
    free(t->group_seconds);
    al_ruleset_clear(&t->rs);
    free(t->name);
}

static int tenant_alloc_state(tenant *t) {
    size_t ng = t->rs.ngroups ? t->rs.ngroups : 1;
    t->st = calloc(ng, sizeof(rule_state *));
    t->next_eval = calloc(ng, sizeof(int64_t));
    t->group_last = calloc(ng, sizeof(int64_t));
    t->group_seconds = calloc(ng, sizeof(double));
    if (t->st == NULL || t->next_eval == NULL || t->group_last == NULL ||
        t->group_seconds == NULL) {
        return SL_ENOMEM;
    }
    for (size_t g = 0; g < t->rs.ngroups; g++) {
        t->st[g] = calloc(t->rs.groups[g].nrules ? t->rs.groups[g].nrules : 1, sizeof(rule_state));
        if (t->st[g] == NULL) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

static int64_t group_interval(const al_engine *e, const al_group *g) {
    return g->interval_ms > 0 ? g->interval_ms : e->o.default_interval_ms;
}

/* --- loading ---------------------------------------------------------------------- */

static bool valid_tenant_dir(const char *name) {
    if (name[0] == '.' || strlen(name) > 150) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.')) {
            return false;
        }
    }
    return true;
}

/* Loads the top-level files as tenant "default" and each subdirectory as a
 * tenant. Fills *out (ntenants). */
static int load_all(const char *dir, tenant **out, size_t *nout, sl_buf *errs) {
    tenant *ts = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, first = 0;
    if (sl_array_grow(&ts, &cap, 1, sizeof(tenant)) != 0) {
        return SL_ENOMEM;
    }
    ts[0] = (tenant){.name = strdup("default")};
    n = 1;
    if (ts[0].name == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    int lrc = al_rules_load_dir(dir, &ts[0].rs, errs);
    if (lrc == SL_ENOMEM || (lrc < 0 && lrc > -4096)) {
        rc = lrc;
        goto out;
    }
    first = lrc;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!valid_tenant_dir(de->d_name) || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (sl_array_grow(&ts, &cap, n + 1, sizeof(tenant)) != 0) {
            rc = SL_ENOMEM;
            break;
        }
        ts[n] = (tenant){.name = strdup(de->d_name)};
        n++;
        if (ts[n - 1].name == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        lrc = al_rules_load_dir(path, &ts[n - 1].rs, errs);
        if (lrc == SL_ENOMEM) {
            rc = lrc;
            break;
        }
        if (lrc != 0 && first == 0) {
            first = lrc;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (rc == 0) {
        rc = first;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = tenant_alloc_state(&ts[i]);
    }
out:
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            tenant_free(&ts[i]);
        }
        free(ts);
        return rc;
    }
    *out = ts;
    *nout = n;
    return 0;
}

/* Moves the state of rules that survive a reload from old into new. */
static void carry_state(al_engine *e, tenant *old, size_t nold, tenant *nw, size_t nnew) {
    for (size_t i = 0; i < nnew; i++) {
        tenant *t = &nw[i];
        for (size_t o = 0; o < nold; o++) {
            tenant *ot = &old[o];
            if (strcmp(ot->name, t->name) != 0) {
                continue;
            }
            for (size_t g = 0; g < t->rs.ngroups; g++) {
                al_group *G = &t->rs.groups[g];
                for (size_t og = 0; og < ot->rs.ngroups; og++) {
                    al_group *OG = &ot->rs.groups[og];
                    if (strcmp(OG->name, G->name) != 0 || strcmp(OG->file, G->file) != 0) {
                        continue;
                    }
                    t->next_eval[g] = ot->next_eval[og];
                    t->group_last[g] = ot->group_last[og];
                    if (group_interval(e, OG) != group_interval(e, G)) {
                        t->next_eval[g] = 0;
                    }
                    for (size_t r = 0; r < G->nrules; r++) {
                        /* the k-th rule of that name in each group */
                        size_t k = 0;
                        for (size_t x = 0; x < r; x++) {
                            k += strcmp(G->rules[x].name, G->rules[r].name) == 0;
                        }
                        for (size_t orr = 0; orr < OG->nrules; orr++) {
                            if (strcmp(OG->rules[orr].name, G->rules[r].name) != 0 ||
                                OG->rules[orr].alert != G->rules[r].alert) {
                                continue;
                            }
                            if (k-- == 0) {
                                rule_state_free(&t->st[g][r]);
                                t->st[g][r] = ot->st[og][orr];
                                ot->st[og][orr] = (rule_state){0};
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* --- the state file ------------------------------------------------------------- */

static json_t *kvs_json(const al_kv *kv, size_t n) {
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        json_object_set_new(o, kv[i].name, json_string(kv[i].value));
    }
    return o;
}

static int kvs_from_json(json_t *o, al_kv **out, size_t *nout) {
    const char *k;
    json_t *v;
    size_t cap = 0;
    *out = NULL;
    *nout = 0;
    json_object_foreach(o, k, v) {
        if (!json_is_string(v)) {
            continue;
        }
        if (kv_set(out, nout, &cap, k, strlen(k), json_string_value(v), json_string_length(v)) !=
            0) {
            return SL_ENOMEM;
        }
    }
    if (*nout > 1) {
        qsort(*out, *nout, sizeof(al_kv), kv_cmp);
    }
    return 0;
}

/* Writes every active alert as JSON, to a temporary file renamed over the
 * state file (atomic). Called with the mutex held. */
static void save_state(al_engine *e) {
    if (e->state_file == NULL || !e->dirty) {
        return;
    }
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "version", json_integer(1));
    json_object_set(root, "alerts", arr);
    for (size_t i = 0; i < e->ntenants; i++) {
        tenant *t = &e->tenants[i];
        for (size_t g = 0; g < t->rs.ngroups; g++) {
            for (size_t r = 0; r < t->rs.groups[g].nrules; r++) {
                rule_state *rs = &t->st[g][r];
                for (size_t a = 0; a < rs->n; a++) {
                    active *al = &rs->alerts[a];
                    json_t *j = json_pack(
                        "{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "tenant",
                        t->name, "file", t->rs.groups[g].file, "group", t->rs.groups[g].name,
                        "rule", t->rs.groups[g].rules[r].name, "labels",
                        kvs_json(al->labels, al->nlabels), "annotations",
                        kvs_json(al->ann, al->nann), "state", state_name(al->state), "value",
                        isfinite(al->value) ? al->value : 0.0, "activeAt",
                        (json_int_t)al->active_at, "firedAt", (json_int_t)al->fired_at,
                        "resolvedAt", (json_int_t)al->resolved_at, "keepFiringSince",
                        (json_int_t)al->keep_firing_since, "lastSent", (json_int_t)al->last_sent,
                        "validUntil", (json_int_t)al->valid_until);
                    if (j != NULL) {
                        json_array_append_new(arr, j);
                    }
                }
            }
        }
    }
    json_decref(arr);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", e->state_file);
    if (json_dump_file(root, tmp, JSON_COMPACT) != 0 || rename(tmp, e->state_file) != 0) {
        SL_LOG_W("alerting", "cannot write the alert state file %s: %s", e->state_file,
                 strerror(errno));
    } else {
        e->dirty = false;
    }
    json_decref(root);
}

static al_state state_from(const char *s) {
    return strcmp(s, "firing") == 0    ? ST_FIRING
           : strcmp(s, "pending") == 0 ? ST_PENDING
                                       : ST_INACTIVE;
}

/* Puts the saved alerts back into the rules they belong to (same tenant,
 * group file and name, rule name). Alerts of rules gone are dropped. */
static void restore_state(al_engine *e) {
    if (e->state_file == NULL) {
        return;
    }
    json_error_t jerr;
    json_t *root = json_load_file(e->state_file, 0, &jerr);
    if (root == NULL) {
        if (access(e->state_file, F_OK) == 0) {
            SL_LOG_W("alerting", "alert state file %s unreadable (%s); starting without it",
                     e->state_file, jerr.text);
        }
        return;
    }
    size_t restored = 0, i;
    json_t *j;
    json_array_foreach(json_object_get(root, "alerts"), i, j) {
        const char *tn = json_string_value(json_object_get(j, "tenant"));
        const char *file = json_string_value(json_object_get(j, "file"));
        const char *group = json_string_value(json_object_get(j, "group"));
        const char *rule = json_string_value(json_object_get(j, "rule"));
        const char *st = json_string_value(json_object_get(j, "state"));
        if (tn == NULL || file == NULL || group == NULL || rule == NULL || st == NULL) {
            continue;
        }
        for (size_t t = 0; t < e->ntenants; t++) {
            tenant *T = &e->tenants[t];
            if (strcmp(T->name, tn) != 0) {
                continue;
            }
            for (size_t g = 0; g < T->rs.ngroups; g++) {
                al_group *G = &T->rs.groups[g];
                if (strcmp(G->name, group) != 0 || strcmp(G->file, file) != 0) {
                    continue;
                }
                for (size_t r = 0; r < G->nrules; r++) {
                    if (!G->rules[r].alert || strcmp(G->rules[r].name, rule) != 0) {
                        continue;
                    }
                    rule_state *rs = &T->st[g][r];
                    active a = {.state = state_from(st)};
                    if (kvs_from_json(json_object_get(j, "labels"), &a.labels, &a.nlabels) != 0 ||
                        kvs_from_json(json_object_get(j, "annotations"), &a.ann, &a.nann) != 0 ||
                        sl_array_grow(&rs->alerts, &rs->cap, rs->n + 1, sizeof(active)) != 0) {
                        active_free(&a);
                        continue;
                    }
                    a.fp = al_fingerprint(a.labels, a.nlabels);
                    a.value = json_number_value(json_object_get(j, "value"));
                    a.active_at = json_integer_value(json_object_get(j, "activeAt"));
                    a.fired_at = json_integer_value(json_object_get(j, "firedAt"));
                    a.resolved_at = json_integer_value(json_object_get(j, "resolvedAt"));
                    a.keep_firing_since = json_integer_value(json_object_get(j, "keepFiringSince"));
                    /* Sent again at once: the notifier rebuilds its groups
                     * from them (its notification log keeps it from repeating what it sent). */
                    a.last_sent = 0;
                    a.valid_until = json_integer_value(json_object_get(j, "validUntil"));
                    rs->alerts[rs->n++] = a;
                    restored++;
                    goto next;
                }
            }
        }
    next:;
    }
    json_decref(root);
    if (restored > 0) {
        SL_LOG_I("alerting", "restored %zu alerts from %s", restored, e->state_file);
    }
}

/* --- evaluation ------------------------------------------------------------------ */

typedef struct tenant_q {
    al_engine *e;
    const char *tenant;
} tenant_q;

static int tenant_select(void *ud, const pq_matcher *m, size_t nm, int64_t mint_ms, int64_t maxt_ms,
                         pq_series_cb cb, void *cb_ud) {
    tenant_q *tq = ud;
    return tq->e->o.source.select(tq->e->o.source.ud, tq->tenant, m, nm, mint_ms, maxt_ms, cb,
                                  cb_ud);
}

/* Samples to write back, gathered over a group's evaluation. */
typedef struct outbox {
    pq_label **labels;
    size_t *nlabels;
    double *values;
    size_t n, cap, cap_nl, cap_v;
    bool oom;
} outbox;

/* Adds a sample whose labels are kv plus __name__=name (and extra_name=
 * extra_value when given), sorted by name. The label array and its strings
 * are one allocation owned by the outbox. */
static void outbox_add(outbox *ob, const al_kv *kv, size_t n, const char *name,
                       const char *extra_name, const char *extra_value, double v) {
    size_t total = n + 1 + (extra_name != NULL);
    size_t bytes = total * sizeof(pq_label) + strlen(name) + 9;
    for (size_t i = 0; i < n; i++) {
        bytes += strlen(kv[i].name) + strlen(kv[i].value);
    }
    if (extra_name != NULL) {
        bytes += strlen(extra_name) + strlen(extra_value);
    }
    pq_label *l = malloc(bytes);
    size_t cap_l = ob->cap;
    if (l == NULL || sl_array_grow(&ob->labels, &cap_l, ob->n + 1, sizeof(pq_label *)) != 0 ||
        sl_array_grow(&ob->nlabels, &ob->cap_nl, ob->n + 1, sizeof(size_t)) != 0 ||
        sl_array_grow(&ob->values, &ob->cap_v, ob->n + 1, sizeof(double)) != 0) {
        free(l);
        ob->oom = true;
        return;
    }
    ob->cap = cap_l;
    char *sp = (char *)(l + total);
    size_t k = 0;
#define PUT(dst, src)                                                                              \
    do {                                                                                           \
        size_t len_ = strlen(src);                                                                 \
        memcpy(sp, (src), len_);                                                                   \
        (dst) = (sl_str){sp, len_};                                                                \
        sp += len_;                                                                                \
    } while (0)
    PUT(l[k].name, "__name__");
    PUT(l[k].value, name);
    k++;
    for (size_t i = 0; i < n; i++, k++) {
        PUT(l[k].name, kv[i].name);
        PUT(l[k].value, kv[i].value);
    }
    if (extra_name != NULL) {
        PUT(l[k].name, extra_name);
        PUT(l[k].value, extra_value);
        k++;
    }
#undef PUT
    /* insertion sort by name: label sets are small */
    for (size_t i = 1; i < k; i++) {
        pq_label x = l[i];
        size_t j = i;
        while (j > 0) {
            sl_str a = l[j - 1].name;
            size_t m = a.len < x.name.len ? a.len : x.name.len;
            int c = memcmp(a.ptr, x.name.ptr, m);
            if (c < 0 || (c == 0 && a.len <= x.name.len)) {
                break;
            }
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
    ob->labels[ob->n] = l;
    ob->nlabels[ob->n] = k;
    ob->values[ob->n] = v;
    ob->n++;
}

static void outbox_free(outbox *ob) {
    for (size_t i = 0; i < ob->n; i++) {
        free(ob->labels[i]);
    }
    free(ob->labels);
    free(ob->nlabels);
    free(ob->values);
}

static void set_error(rule_state *rs, const char *msg) {
    free(rs->last_error);
    rs->last_error = msg ? strdup(msg) : NULL;
}

/* The labels and value of one result sample (the scalar's when the
 * expression is a scalar). */
typedef struct sample_view {
    const pq_label *labels;
    size_t nlabels;
    double v;
} sample_view;

static int run_query(al_engine *e, const char *tenant_name, const char *expr, int64_t ts,
                     pq_query **q, sample_view **out, size_t *nout, char *err, size_t err_size) {
    pq_error perr = {0};
    int rc = pq_parse(sl_str_c(expr), q, &perr);
    if (rc == 0) {
        tenant_q tq = {e, tenant_name};
        pq_querier qr = {tenant_select, &tq};
        pq_eval_opts eo;
        pq_eval_opts_init(&eo);
        eo.start_ms = eo.end_ms = ts;
        eo.deadline_mono_ns = sl_mono_nano() + 60ull * 1000000000ull;
        pq_result res;
        rc = pq_eval(*q, &qr, &eo, &res, &perr);
        if (rc == 0) {
            size_t n = res.type == PQ_SCALAR ? 1 : res.nseries;
            *out = calloc(n ? n : 1, sizeof(sample_view));
            if (*out == NULL) {
                return SL_ENOMEM;
            }
            if (res.type == PQ_SCALAR) {
                (*out)[0] = (sample_view){NULL, 0, res.scalar.v};
            } else {
                for (size_t i = 0; i < n; i++) {
                    const pq_series *s = &res.series[i];
                    (*out)[i] = (sample_view){s->labels, s->nlabels,
                                              s->npoints ? s->points[s->npoints - 1].v : NAN};
                }
            }
            *nout = n;
            return 0;
        }
    }
    snprintf(err, err_size, "%s", perr.msg);
    return rc;
}

static active *find_alert(rule_state *rs, uint64_t fp) {
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->alerts[i].fp == fp) {
            return &rs->alerts[i];
        }
    }
    return NULL;
}

static void eval_alerting(al_engine *e, tenant *t, al_group *g, al_rule *r, rule_state *rs,
                          int64_t ts, outbox *ob) {
    pq_query *q = NULL;
    sample_view *sv = NULL;
    size_t nsv = 0;
    char err[600];
    uint64_t *seen = NULL;
    size_t nseen = 0;
    int rc = run_query(e, t->name, r->expr, ts, &q, &sv, &nsv, err, sizeof(err));
    if (rc != 0) {
        set_error(rs, err);
        sl_metric_add(e->m_eval_failures, 1);
        goto out;
    }
    set_error(rs, NULL);
    seen = calloc(nsv ? nsv : 1, sizeof(uint64_t));
    if (seen == NULL) {
        goto out;
    }
    for (size_t i = 0; i < nsv; i++) {
        al_kv *labels = NULL, *ann = NULL;
        size_t nl = 0, capl = 0, na = 0, capa = 0;
        bool ok = true;
        for (size_t k = 0; k < sv[i].nlabels && ok; k++) {
            const pq_label *pl = &sv[i].labels[k];
            if (sl_str_eqc(pl->name, "__name__")) {
                continue;
            }
            ok = kv_set(&labels, &nl, &capl, pl->name.ptr, pl->name.len, pl->value.ptr,
                        pl->value.len) == 0;
        }
        al_tmpl_data td = {
            .labels = labels, .nlabels = nl, .value = sv[i].v, .external_url = e->external_url};
        sl_buf b;
        sl_buf_init(&b, 1u << 20);
        size_t base_n = nl;
        al_kv *base = labels;
        /* templates see the sample's labels, not the rule's */
        al_kv *tlabels = NULL;
        size_t ntl = 0, captl = 0;
        for (size_t k = 0; k < base_n && ok; k++) {
            ok = kv_set(&tlabels, &ntl, &captl, base[k].name, strlen(base[k].name), base[k].value,
                        strlen(base[k].value)) == 0;
        }
        td.labels = tlabels;
        td.nlabels = ntl;
        for (size_t k = 0; k < r->nlabels && ok; k++) {
            b.len = 0;
            char terr[300];
            if (al_template_expand(r->labels[k].value, &td, &b, terr, sizeof(terr)) != 0) {
                b.len = 0;
                sl_buf_printf(&b, "<error expanding template: %s>", terr);
            }
            ok = kv_set(&labels, &nl, &capl, r->labels[k].name, strlen(r->labels[k].name),
                        b.len ? (const char *)b.data : "", b.len) == 0;
        }
        for (size_t k = 0; k < r->nannotations && ok; k++) {
            b.len = 0;
            char terr[300];
            if (al_template_expand(r->annotations[k].value, &td, &b, terr, sizeof(terr)) != 0) {
                b.len = 0;
                sl_buf_printf(&b, "<error expanding template: %s>", terr);
            }
            ok = kv_set(&ann, &na, &capa, r->annotations[k].name, strlen(r->annotations[k].name),
                        b.len ? (const char *)b.data : "", b.len) == 0;
        }
        sl_buf_free(&b);
        kvs_free(tlabels, ntl);
        if (ok) {
            ok = kv_set(&labels, &nl, &capl, "alertname", 9, r->name, strlen(r->name)) == 0;
        }
        if (!ok) {
            kvs_free(labels, nl);
            kvs_free(ann, na);
            set_error(rs, "out of memory");
            goto out;
        }
        if (nl > 1) {
            qsort(labels, nl, sizeof(al_kv), kv_cmp);
        }
        if (na > 1) {
            qsort(ann, na, sizeof(al_kv), kv_cmp);
        }
        uint64_t fp = al_fingerprint(labels, nl);
        bool dup = false;
        for (size_t k = 0; k < nseen; k++) {
            dup |= seen[k] == fp;
        }
        if (dup) {
            kvs_free(labels, nl);
            kvs_free(ann, na);
            set_error(rs, "vector contains metrics with the same labelset after applying alert "
                          "labels");
            goto out;
        }
        seen[nseen++] = fp;
        active *a = find_alert(rs, fp);
        if (a != NULL && a->state != ST_INACTIVE) {
            a->value = sv[i].v;
            kvs_free(a->ann, a->nann);
            a->ann = ann;
            a->nann = na;
            kvs_free(labels, nl);
            continue;
        }
        if (a == NULL) {
            if (sl_array_grow(&rs->alerts, &rs->cap, rs->n + 1, sizeof(active)) != 0) {
                kvs_free(labels, nl);
                kvs_free(ann, na);
                goto out;
            }
            a = &rs->alerts[rs->n++];
        } else {
            active_free(a); /* a resolved alert becomes a new pending one */
        }
        *a = (active){.fp = fp,
                      .labels = labels,
                      .nlabels = nl,
                      .ann = ann,
                      .nann = na,
                      .state = ST_PENDING,
                      .value = sv[i].v,
                      .active_at = ts};
        e->dirty = true;
    }
    size_t nactive = 0;
    for (size_t i = 0; i < rs->n;) {
        active *a = &rs->alerts[i];
        bool in_result = false;
        for (size_t k = 0; k < nseen; k++) {
            in_result |= seen[k] == a->fp;
        }
        if (!in_result) {
            bool keep = false;
            if (a->state == ST_FIRING && r->keep_firing_for_ms > 0) {
                if (a->keep_firing_since == 0) {
                    a->keep_firing_since = ts;
                    e->dirty = true;
                }
                keep = ts - a->keep_firing_since < r->keep_firing_for_ms;
            }
            if (a->state == ST_PENDING || (a->resolved_at != 0 && a->state == ST_INACTIVE &&
                                           ts - a->resolved_at > RESOLVED_RETENTION_MS)) {
                active_free(a);
                rs->alerts[i] = rs->alerts[--rs->n];
                e->dirty = true;
                continue;
            }
            if (a->state != ST_INACTIVE && !keep) {
                a->state = ST_INACTIVE;
                a->resolved_at = ts;
                e->dirty = true;
            }
            if (!keep) {
                i++;
                continue;
            }
        } else if (a->keep_firing_since != 0) {
            a->keep_firing_since = 0;
            e->dirty = true;
        }
        nactive++;
        if (a->state == ST_PENDING && ts - a->active_at >= r->for_ms) {
            a->state = ST_FIRING;
            a->fired_at = ts;
            e->dirty = true;
        }
        i++;
    }
    if (g->limit > 0 && (int64_t)nactive > g->limit) {
        for (size_t i = 0; i < rs->n; i++) {
            active_free(&rs->alerts[i]);
        }
        rs->n = 0;
        char msg[128];
        snprintf(msg, sizeof(msg), "exceeded limit of %lld with %zu alerts", (long long)g->limit,
                 nactive);
        set_error(rs, msg);
        e->dirty = true;
        goto out;
    }
    for (size_t i = 0; i < rs->n; i++) {
        active *a = &rs->alerts[i];
        if (a->state == ST_INACTIVE) {
            continue;
        }
        outbox_add(ob, a->labels, a->nlabels, "ALERTS", "alertstate", state_name(a->state), 1);
        outbox_add(ob, a->labels, a->nlabels, "ALERTS_FOR_STATE", NULL, NULL,
                   (double)(a->active_at / 1000));
    }
out:
    free(seen);
    free(sv);
    pq_query_free(q);
}

static void eval_recording(al_engine *e, tenant *t, al_rule *r, rule_state *rs, int64_t ts,
                           outbox *ob) {
    pq_query *q = NULL;
    sample_view *sv = NULL;
    size_t nsv = 0;
    char err[600];
    if (run_query(e, t->name, r->expr, ts, &q, &sv, &nsv, err, sizeof(err)) != 0) {
        set_error(rs, err);
        sl_metric_add(e->m_eval_failures, 1);
        goto out;
    }
    set_error(rs, NULL);
    for (size_t i = 0; i < nsv; i++) {
        al_kv *labels = NULL;
        size_t nl = 0, cap = 0;
        bool ok = true;
        for (size_t k = 0; k < sv[i].nlabels && ok; k++) {
            const pq_label *pl = &sv[i].labels[k];
            if (!sl_str_eqc(pl->name, "__name__")) {
                ok = kv_set(&labels, &nl, &cap, pl->name.ptr, pl->name.len, pl->value.ptr,
                            pl->value.len) == 0;
            }
        }
        for (size_t k = 0; k < r->nlabels && ok; k++) {
            ok = kv_set(&labels, &nl, &cap, r->labels[k].name, strlen(r->labels[k].name),
                        r->labels[k].value, strlen(r->labels[k].value)) == 0;
        }
        if (ok && !pq_is_stale(sv[i].v)) {
            outbox_add(ob, labels, nl, r->name, NULL, NULL, sv[i].v);
        }
        kvs_free(labels, nl);
    }
out:
    free(sv);
    pq_query_free(q);
}

static void url_escape(sl_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sl_buf_putc(b, c);
        } else {
            sl_buf_putc(b, '%');
            sl_buf_putc(b, (uint8_t)hex[c >> 4]);
            sl_buf_putc(b, (uint8_t)hex[c & 15]);
        }
    }
}

/* Prometheus's sendAlerts: firing alerts again every minute, resolved ones
 * once resolved (and again every minute while kept), pending ones never. */
static void send_alerts(al_engine *e, tenant *t, al_group *g, al_rule *r, rule_state *rs,
                        int64_t ts) {
    if (e->o.notifier == NULL) {
        return;
    }
    al_alert_msg *msgs = calloc(rs->n ? rs->n : 1, sizeof(al_alert_msg));
    sl_buf url;
    sl_buf_init(&url, 1u << 20);
    sl_buf_printf(&url, "%s/graph?g0.expr=", e->external_url ? e->external_url : "");
    url_escape(&url, r->expr);
    sl_buf_append_str(&url, "&g0.tab=1");
    sl_buf_putc(&url, 0);
    if (msgs == NULL || url.data == NULL) {
        goto out;
    }
    int64_t interval = group_interval(e, g);
    int64_t resend = interval > RESEND_DELAY_MS ? interval : RESEND_DELAY_MS;
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        active *a = &rs->alerts[i];
        if (a->state == ST_PENDING) {
            continue;
        }
        bool send = (a->state == ST_INACTIVE && a->resolved_at > a->last_sent) ||
                    a->last_sent + RESEND_DELAY_MS < ts || a->last_sent == 0;
        if (!send) {
            continue;
        }
        a->last_sent = ts;
        a->valid_until = ts + 4 * resend;
        e->dirty = true;
        msgs[n++] =
            (al_alert_msg){.tenant = t->name,
                           .labels = a->labels,
                           .nlabels = a->nlabels,
                           .annotations = a->ann,
                           .nannotations = a->nann,
                           .starts_ms = a->fired_at,
                           .ends_ms = a->state == ST_INACTIVE ? a->resolved_at : a->valid_until,
                           .generator_url = (const char *)url.data};
    }
    if (n > 0) {
        al_notifier_put(e->o.notifier, msgs, n, ts);
    }
out:
    free(msgs);
    sl_buf_free(&url);
}

static void eval_group(al_engine *e, tenant *t, size_t gi, int64_t ts) {
    al_group *g = &t->rs.groups[gi];
    outbox ob = {0};
    uint64_t g0 = sl_mono_nano();
    for (size_t r = 0; r < g->nrules; r++) {
        rule_state *rs = &t->st[gi][r];
        uint64_t t0 = sl_mono_nano();
        if (g->rules[r].alert) {
            eval_alerting(e, t, g, &g->rules[r], rs, ts, &ob);
            send_alerts(e, t, g, &g->rules[r], rs, ts);
        } else {
            eval_recording(e, t, &g->rules[r], rs, ts, &ob);
            if (ob.n > 0 && e->o.source.append != NULL) {
                /* later rules of the group read what earlier ones recorded */
                e->o.source.append(e->o.source.ud, t->name, (const pq_label *const *)ob.labels,
                                   ob.nlabels, ob.values, ob.n, ts);
                outbox_free(&ob);
                ob = (outbox){0};
            }
        }
        rs->last_eval_ms = ts;
        rs->eval_seconds = (double)(sl_mono_nano() - t0) / 1e9;
        sl_metric_add(e->m_evals, 1);
    }
    if (ob.n > 0 && e->o.source.append != NULL) {
        int rc = e->o.source.append(e->o.source.ud, t->name, (const pq_label *const *)ob.labels,
                                    ob.nlabels, ob.values, ob.n, ts);
        if (rc != 0) {
            SL_LOG_W("alerting", "tenant %s group %s: cannot write %zu samples: %s", t->name,
                     g->name, ob.n, sl_strerror(rc));
        }
    }
    outbox_free(&ob);
    t->group_last[gi] = ts;
    t->group_seconds[gi] = (double)(sl_mono_nano() - g0) / 1e9;
}

void al_engine_eval_due(al_engine *e, int64_t now_ms) {
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->ntenants; i++) {
        tenant *t = &e->tenants[i];
        for (size_t g = 0; g < t->rs.ngroups; g++) {
            int64_t iv = group_interval(e, &t->rs.groups[g]);
            if (t->next_eval[g] == 0) {
                /* the first evaluation at once, the next ones on the interval's grid */
                t->next_eval[g] = now_ms;
            }
            if (now_ms < t->next_eval[g]) {
                continue;
            }
            eval_group(e, t, g, now_ms);
            t->next_eval[g] = (now_ms / iv + 1) * iv;
        }
    }
    save_state(e);
    pthread_mutex_unlock(&e->mu);
}

/* --- the thread ----------------------------------------------------------------- */

static void *engine_main(void *arg) {
    al_engine *e = arg;
    pthread_mutex_lock(&e->stop_mu);
    while (!e->stop) {
        pthread_mutex_unlock(&e->stop_mu);
        int64_t now = (int64_t)(sl_now_unix_nano() / 1000000u);
        al_engine_eval_due(e, now);
        if (e->o.notifier != NULL) {
            al_notifier_tick(e->o.notifier, now);
        }
        pthread_mutex_lock(&e->stop_mu);
        if (e->stop) {
            break;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 200 * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->stop_cv, &e->stop_mu, &dl);
    }
    pthread_mutex_unlock(&e->stop_mu);
    return NULL;
}

void al_engine_options_init(al_engine_options *o) {
    *o = (al_engine_options){.default_interval_ms = 60000};
}

int al_engine_create(const al_engine_options *o, al_engine **out, sl_buf *errs) {
    *out = NULL;
    al_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return SL_ENOMEM;
    }
    e->o = *o;
    if (e->o.default_interval_ms <= 0) {
        e->o.default_interval_ms = 60000;
    }
    e->rules_dir = o->rules_dir ? strdup(o->rules_dir) : NULL;
    e->state_file = o->state_file ? strdup(o->state_file) : NULL;
    e->external_url = strdup(o->external_url ? o->external_url : "");
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->stop_mu, NULL);
    pthread_cond_init(&e->stop_cv, NULL);
    e->m_evals = sl_counter("sightline_rule_evaluations_total", "",
                            "Rule evaluations (alerting and recording).");
    e->m_eval_failures = sl_counter("sightline_rule_evaluation_failures_total", "",
                                    "Rule evaluations whose query failed.");
    int rc = 0;
    if (e->external_url == NULL || (o->rules_dir && e->rules_dir == NULL) ||
        (o->state_file && e->state_file == NULL)) {
        rc = SL_ENOMEM;
    } else if (e->rules_dir != NULL) {
        rc = load_all(e->rules_dir, &e->tenants, &e->ntenants, errs);
    }
    if (rc != 0) {
        al_engine_destroy(e);
        return rc;
    }
    restore_state(e);
    *out = e;
    return 0;
}

int al_engine_reload(al_engine *e, sl_buf *errs) {
    if (e->rules_dir == NULL) {
        return 0;
    }
    tenant *nt = NULL;
    size_t nn = 0;
    int rc = load_all(e->rules_dir, &nt, &nn, errs);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&e->mu);
    carry_state(e, e->tenants, e->ntenants, nt, nn);
    for (size_t i = 0; i < e->ntenants; i++) {
        tenant_free(&e->tenants[i]);
    }
    free(e->tenants);
    e->tenants = nt;
    e->ntenants = nn;
    e->dirty = true;
    save_state(e);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int al_engine_start(al_engine *e) {
    int rc = pthread_create(&e->thread, NULL, engine_main, e);
    if (rc != 0) {
        return -rc;
    }
    e->started = true;
    return 0;
}

void al_engine_destroy(al_engine *e) {
    if (e == NULL) {
        return;
    }
    if (e->started) {
        pthread_mutex_lock(&e->stop_mu);
        e->stop = true;
        pthread_cond_signal(&e->stop_cv);
        pthread_mutex_unlock(&e->stop_mu);
        pthread_join(e->thread, NULL);
    }
    pthread_mutex_lock(&e->mu);
    save_state(e);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < e->ntenants; i++) {
        tenant_free(&e->tenants[i]);
    }
    free(e->tenants);
    free(e->rules_dir);
    free(e->state_file);
    free(e->external_url);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->stop_mu);
    pthread_cond_destroy(&e->stop_cv);
    free(e);
}

/* --- the APIs ------------------------------------------------------------------- */

static void rfc3339(int64_t ms, char *buf, size_t cap) {
    if (ms <= 0) {
        snprintf(buf, cap, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

static json_t *alert_json(const active *a) {
    char at[40], val[64];
    rfc3339(a->active_at, at, sizeof(at));
    pq_format_value(a->value, val, sizeof(val));
    json_t *j = json_pack("{s:o,s:o,s:s,s:s,s:s}", "labels", kvs_json(a->labels, a->nlabels),
                          "annotations", kvs_json(a->ann, a->nann), "state", state_name(a->state),
                          "activeAt", at, "value", val);
    if (j != NULL && a->keep_firing_since != 0) {
        char kf[40];
        rfc3339(a->keep_firing_since, kf, sizeof(kf));
        json_object_set_new(j, "keepFiringSince", json_string(kf));
    }
    return j;
}

static tenant *find_tenant(al_engine *e, const char *name) {
    for (size_t i = 0; i < e->ntenants; i++) {
        if (strcmp(e->tenants[i].name, name) == 0) {
            return &e->tenants[i];
        }
    }
    return NULL;
}

static int dump(json_t *data, sl_buf *out) {
    json_t *root = json_pack("{s:s,s:o}", "status", "success", "data", data);
    if (root == NULL) {
        return SL_ENOMEM;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_buf_append_str(out, s);
    free(s);
    return rc;
}

int al_engine_rules_json(al_engine *e, const char *tenant_name, const char *type, sl_buf *out) {
    json_t *groups = json_array();
    pthread_mutex_lock(&e->mu);
    tenant *t = find_tenant(e, tenant_name);
    for (size_t g = 0; t != NULL && g < t->rs.ngroups; g++) {
        al_group *G = &t->rs.groups[g];
        json_t *rules = json_array();
        for (size_t r = 0; r < G->nrules; r++) {
            al_rule *R = &G->rules[r];
            rule_state *rs = &t->st[g][r];
            if (type != NULL && strcmp(type, R->alert ? "alert" : "record") != 0) {
                continue;
            }
            char last[40];
            rfc3339(rs->last_eval_ms, last, sizeof(last));
            const char *health = rs->last_eval_ms == 0 ? "unknown" : rs->last_error ? "err" : "ok";
            json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:s,s:f}", "name", R->name, "query", R->expr,
                                  "labels", kvs_json(R->labels, R->nlabels), "health", health,
                                  "lastEvaluation", last, "evaluationTime", rs->eval_seconds);
            if (j == NULL) {
                continue;
            }
            if (rs->last_error != NULL) {
                json_object_set_new(j, "lastError", json_string(rs->last_error));
            }
            if (R->alert) {
                al_state worst = ST_INACTIVE;
                json_t *alerts = json_array();
                for (size_t a = 0; a < rs->n; a++) {
                    if (rs->alerts[a].state == ST_INACTIVE) {
                        continue;
                    }
                    worst = rs->alerts[a].state > worst ? rs->alerts[a].state : worst;
                    json_array_append_new(alerts, alert_json(&rs->alerts[a]));
                }
                json_object_set_new(j, "state", json_string(state_name(worst)));
                json_object_set_new(j, "duration", json_real((double)R->for_ms / 1000));
                json_object_set_new(j, "keepFiringFor",
                                    json_real((double)R->keep_firing_for_ms / 1000));
                json_object_set_new(j, "annotations", kvs_json(R->annotations, R->nannotations));
                json_object_set_new(j, "alerts", alerts);
                json_object_set_new(j, "type", json_string("alerting"));
            } else {
                json_object_set_new(j, "type", json_string("recording"));
            }
            json_array_append_new(rules, j);
        }
        char last[40];
        rfc3339(t->group_last[g], last, sizeof(last));
        json_array_append_new(
            groups,
            json_pack("{s:s,s:s,s:o,s:f,s:f,s:s,s:I}", "name", G->name, "file", G->file, "rules",
                      rules, "interval", (double)group_interval(e, G) / 1000, "evaluationTime",
                      t->group_seconds[g], "lastEvaluation", last, "limit", (json_int_t)G->limit));
    }
    pthread_mutex_unlock(&e->mu);
    return dump(json_pack("{s:o}", "groups", groups), out);
}

/* Appends the tenant's pending and firing alerts (only firing ones, and only
 * those with service_name=service when only_firing) to arr. Mutex held. */
static void collect_alerts(al_engine *e, const char *tenant_name, bool only_firing,
                           const char *service, json_t *arr) {
    tenant *t = find_tenant(e, tenant_name);
    for (size_t g = 0; t != NULL && g < t->rs.ngroups; g++) {
        for (size_t r = 0; r < t->rs.groups[g].nrules; r++) {
            rule_state *rs = &t->st[g][r];
            for (size_t a = 0; a < rs->n; a++) {
                active *A = &rs->alerts[a];
                if (A->state == ST_INACTIVE || (only_firing && A->state != ST_FIRING)) {
                    continue;
                }
                if (service != NULL) {
                    bool match = false;
                    for (size_t k = 0; k < A->nlabels; k++) {
                        match |= strcmp(A->labels[k].name, "service_name") == 0 &&
                                 strcmp(A->labels[k].value, service) == 0;
                    }
                    if (!match) {
                        continue;
                    }
                }
                json_array_append_new(arr, alert_json(A));
            }
        }
    }
}

int al_engine_alerts_json(al_engine *e, const char *tenant_name, sl_buf *out) {
    json_t *arr = json_array();
    pthread_mutex_lock(&e->mu);
    collect_alerts(e, tenant_name, false, NULL, arr);
    pthread_mutex_unlock(&e->mu);
    return dump(json_pack("{s:o}", "alerts", arr), out);
}

int al_engine_firing_for(al_engine *e, const char *tenant_name, const char *service, sl_buf *out) {
    json_t *arr = json_array();
    pthread_mutex_lock(&e->mu);
    collect_alerts(e, tenant_name, true, service, arr);
    pthread_mutex_unlock(&e->mu);
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_buf_append_str(out, s);
    free(s);
    return rc;
}
