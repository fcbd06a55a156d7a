/*
 * The notifier: a small Alertmanager inside Sightline. Alerts from the
 * evaluator join aggregation groups (by the configured labels); a group is
 * flushed group_wait after it appears and then every group_interval, and a
 * flush sends a webhook notification (Alertmanager's v4 payload) when
 * Alertmanager would: new firing alerts, alerts resolved, or repeat_interval
 * passed. Or, when forwarding, alerts go as they come to a real
 * Alertmanager's POST /api/v2/alerts.
 *
 * What each group last notified (its firing and resolved fingerprints and
 * when: Alertmanager's notification log) is written to options.state_file
 * after every tick that changed it, and read back at start: a group formed
 * again after a restart finds its entry and is not notified again before
 * something changes or repeat_interval passes. Entries of groups that do not
 * come back are kept until their repeat_interval has passed.
 *
 * Threads: put() and tick() run on the evaluator's thread (or a test's) and
 * only touch memory under the mutex; one sender thread owns libcurl and does
 * every HTTP attempt, with retries and backoff, so a slow or failing
 * receiver never blocks evaluation. The queue between them is bounded: when
 * it is full a notification is dropped and counted.
 */
#include "alerting.h"

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct galert {
    uint64_t fp;
    al_kv *labels;
    size_t nlabels;
    al_kv *ann;
    size_t nann;
    int64_t starts_ms, ends_ms;
    char *generator_url;
} galert;

typedef struct agroup {
    char *tenant;
    char *key; /* groupKey */
    al_kv *glabels;
    size_t nglabels;
    galert *alerts;
    size_t n, cap;
    int64_t next_flush_ms;
    bool notified; /* a notification went out (the nflog entry exists) */
    uint64_t *last_firing, *last_resolved;
    size_t nlast_firing, nlast_resolved;
    int64_t last_notify_ms;
} agroup;

/* A notification log entry read at start and not yet claimed by a group. */
typedef struct nflog_entry {
    char *tenant, *key;
    uint64_t *firing, *resolved;
    size_t nfiring, nresolved;
    int64_t at_ms;
} nflog_entry;

typedef struct job {
    char *url;
    char *body;
    struct job *next;
} job;

struct al_notifier {
    al_notifier_options o;
    char *webhook_url, *am_url, *receiver, *external_url;
    char **group_by;
    size_t ngroup_by;
    bool group_all;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the sender waits for jobs or stop */
    pthread_cond_t idle_cv; /* drain waits for an empty queue */
    agroup *groups;
    size_t ngroups, groups_cap;
    char *state_file;
    nflog_entry *nflog; /* unclaimed entries of the state file */
    size_t nnflog, nflog_cap;
    bool nflog_dirty;
    job *head, *tail;
    size_t queued;
    bool busy, stop;
    pthread_t thread;
    sl_metric *m_sent, *m_failed, *m_retries, *m_dropped, *m_alerts, *m_truncated;
};

static void kvs_free(al_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static int kvs_dup(const al_kv *src, size_t n, al_kv **out) {
    *out = calloc(n ? n : 1, sizeof(al_kv));
    if (*out == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        (*out)[i].name = strdup(src[i].name);
        (*out)[i].value = strdup(src[i].value);
        if ((*out)[i].name == NULL || (*out)[i].value == NULL) {
            kvs_free(*out, i + 1);
            *out = NULL;
            return SL_ENOMEM;
        }
    }
    return 0;
}

static void galert_free(galert *a) {
    kvs_free(a->labels, a->nlabels);
    kvs_free(a->ann, a->nann);
    free(a->generator_url);
}

static void agroup_free(agroup *g) {
    for (size_t i = 0; i < g->n; i++) {
        galert_free(&g->alerts[i]);
    }
    free(g->alerts);
    kvs_free(g->glabels, g->nglabels);
    free(g->tenant);
    free(g->key);
    free(g->last_firing);
    free(g->last_resolved);
}

static void nflog_entry_free(nflog_entry *e) {
    free(e->tenant);
    free(e->key);
    free(e->firing);
    free(e->resolved);
}

static json_t *fps_json(const uint64_t *fps, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fps[i]);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

static int fps_from_json(const json_t *a, uint64_t **out, size_t *n) {
    size_t len = json_array_size(a), i;
    *n = 0;
    *out = calloc(len ? len : 1, sizeof(uint64_t));
    if (*out == NULL) {
        return SL_ENOMEM;
    }
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *hex = json_string_value(v);
        char *end = NULL;
        unsigned long long fp = hex != NULL ? strtoull(hex, &end, 16) : 0;
        if (hex != NULL && end != hex && *end == '\0') {
            (*out)[(*n)++] = fp;
        }
    }
    return 0;
}

/* Reads the notification log (start-up, before the sender runs). */
static void nflog_load(al_notifier *n) {
    json_error_t jerr;
    json_t *root = json_load_file(n->state_file, 0, &jerr);
    if (root == NULL) {
        if (access(n->state_file, F_OK) == 0) {
            SL_LOG_W("alerting", "notification log %s unreadable (%s); starting without it",
                     n->state_file, jerr.text);
        }
        return;
    }
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(root, "groups"), i, j) {
        const char *tenant = json_string_value(json_object_get(j, "tenant"));
        const char *key = json_string_value(json_object_get(j, "groupKey"));
        if (tenant == NULL || key == NULL ||
            sl_array_grow(&n->nflog, &n->nflog_cap, n->nnflog + 1, sizeof(nflog_entry)) != 0) {
            continue;
        }
        nflog_entry e = {.tenant = strdup(tenant),
                         .key = strdup(key),
                         .at_ms = json_integer_value(json_object_get(j, "notifiedAt"))};
        if (e.tenant == NULL || e.key == NULL ||
            fps_from_json(json_object_get(j, "firing"), &e.firing, &e.nfiring) != 0 ||
            fps_from_json(json_object_get(j, "resolved"), &e.resolved, &e.nresolved) != 0) {
            nflog_entry_free(&e);
            continue;
        }
        n->nflog[n->nnflog++] = e;
    }
    json_decref(root);
}

/* A new group takes over its entry of the log, if there is one. Mutex held. */
static void nflog_claim(al_notifier *n, agroup *g) {
    for (size_t i = 0; i < n->nnflog; i++) {
        nflog_entry *e = &n->nflog[i];
        if (strcmp(e->tenant, g->tenant) == 0 && strcmp(e->key, g->key) == 0) {
            g->notified = true;
            g->last_firing = e->firing;
            g->nlast_firing = e->nfiring;
            g->last_resolved = e->resolved;
            g->nlast_resolved = e->nresolved;
            g->last_notify_ms = e->at_ms;
            e->firing = e->resolved = NULL;
            nflog_entry_free(e);
            n->nflog[i] = n->nflog[--n->nnflog];
            return;
        }
    }
}

/* Writes the log (mutex held): every group that notified, and the unclaimed
 * entries whose repeat_interval has not passed yet. */
static void nflog_save(al_notifier *n, int64_t now_ms) {
    if (n->state_file == NULL || !n->nflog_dirty) {
        return;
    }
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "version", json_integer(1));
    json_object_set(root, "groups", arr);
    for (size_t i = 0; i < n->ngroups; i++) {
        const agroup *g = &n->groups[i];
        if (g->notified) {
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:o,s:o,s:I}", "tenant", g->tenant, "groupKey", g->key,
                               "firing", fps_json(g->last_firing, g->nlast_firing), "resolved",
                               fps_json(g->last_resolved, g->nlast_resolved), "notifiedAt",
                               (json_int_t)g->last_notify_ms));
        }
    }
    for (size_t i = 0; i < n->nnflog;) {
        nflog_entry *e = &n->nflog[i];
        if (e->at_ms + n->o.repeat_interval_ms <= now_ms) {
            nflog_entry_free(e);
            n->nflog[i] = n->nflog[--n->nnflog];
            continue;
        }
        json_array_append_new(arr,
                              json_pack("{s:s,s:s,s:o,s:o,s:I}", "tenant", e->tenant, "groupKey",
                                        e->key, "firing", fps_json(e->firing, e->nfiring),
                                        "resolved", fps_json(e->resolved, e->nresolved),
                                        "notifiedAt", (json_int_t)e->at_ms));
        i++;
    }
    json_decref(arr);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", n->state_file);
    if (json_dump_file(root, tmp, JSON_COMPACT) != 0 || rename(tmp, n->state_file) != 0) {
        SL_LOG_W("alerting", "cannot write the notification log %s: %s", n->state_file,
                 strerror(errno));
    } else {
        n->nflog_dirty = false;
    }
    json_decref(root);
}

void al_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void al_notifier_options_init(al_notifier_options *o) {
    *o = (al_notifier_options){.receiver = "webhook",
                               .group_by = "alertname",
                               .group_wait_ms = 30000,
                               .group_interval_ms = 300000,
                               .repeat_interval_ms = 4 * 3600 * 1000,
                               .timeout_ms = 10000,
                               .retry_max_ms = 300000,
                               .backoff_ms = 500,
                               .queue_max = 1024};
}

/* --- JSON ------------------------------------------------------------------------ */

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

static json_t *kv_obj(const al_kv *kv, size_t n) {
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        json_object_set_new(o, kv[i].name, json_string(kv[i].value));
    }
    return o;
}

/* The labels (or annotations) every alert of the list shares. */
static json_t *common_kv(const galert *const *as, size_t n, bool annotations) {
    json_t *o = json_object();
    if (n == 0) {
        return o;
    }
    const al_kv *first = annotations ? as[0]->ann : as[0]->labels;
    size_t nfirst = annotations ? as[0]->nann : as[0]->nlabels;
    for (size_t k = 0; k < nfirst; k++) {
        bool all = true;
        for (size_t i = 1; i < n && all; i++) {
            const al_kv *kv = annotations ? as[i]->ann : as[i]->labels;
            size_t nkv = annotations ? as[i]->nann : as[i]->nlabels;
            bool found = false;
            for (size_t j = 0; j < nkv && !found; j++) {
                found = strcmp(kv[j].name, first[k].name) == 0 &&
                        strcmp(kv[j].value, first[k].value) == 0;
            }
            all = found;
        }
        if (all) {
            json_object_set_new(o, first[k].name, json_string(first[k].value));
        }
    }
    return o;
}

static json_t *alert_v4(const galert *a, bool firing) {
    char s[40], e[40], fp[17];
    rfc3339(a->starts_ms, s, sizeof(s));
    rfc3339(firing ? 0 : a->ends_ms, e, sizeof(e));
    snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)a->fp);
    return json_pack("{s:s,s:o,s:o,s:s,s:s,s:s,s:s}", "status", firing ? "firing" : "resolved",
                     "labels", kv_obj(a->labels, a->nlabels), "annotations",
                     kv_obj(a->ann, a->nann), "startsAt", s, "endsAt", e, "generatorURL",
                     a->generator_url ? a->generator_url : "", "fingerprint", fp);
}

/* --- the queue and the sender ------------------------------------------------- */

/* Queues body for url (takes body). Mutex held. */
static void enqueue(al_notifier *n, const char *url, char *body) {
    if (n->queued >= n->o.queue_max) {
        SL_LOG_W("alerting", "notification queue full: a notification to %s is dropped", url);
        sl_metric_add(n->m_dropped, 1);
        free(body);
        return;
    }
    job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->url = strdup(url)) == NULL) {
        free(j);
        free(body);
        sl_metric_add(n->m_dropped, 1);
        return;
    }
    j->body = body;
    if (n->tail) {
        n->tail->next = j;
    } else {
        n->head = j;
    }
    n->tail = j;
    n->queued++;
    pthread_cond_signal(&n->cv);
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud) {
    (void)p;
    (void)ud;
    return size * nmemb;
}

/* One POST. Returns the HTTP status, or 0 when no answer came. */
static long post_once(al_notifier *n, CURL *c, const job *j, char *err, size_t err_size) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)n->o.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)n->o.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Sightline-Alerting/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(err, err_size, "%s", curl_easy_strerror(cc));
    }
    curl_slist_free_all(h);
    return status;
}

/* Sleeps ms unless stopping. Returns true when stopping. Mutex not held. */
static bool nap(al_notifier *n, int64_t ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &dl) != ETIMEDOUT) {
    }
    bool stop = n->stop;
    pthread_mutex_unlock(&n->mu);
    return stop;
}

/* Sends one notification, retrying 5xx, 429 and network errors with a
 * doubling backoff until retry_max_ms has passed. */
static void deliver(al_notifier *n, CURL *c, const job *j) {
    uint64_t t0 = sl_mono_nano();
    int64_t backoff = n->o.backoff_ms;
    for (int attempt = 1;; attempt++) {
        char err[CURL_ERROR_SIZE] = "";
        long status = post_once(n, c, j, err, sizeof(err));
        if (status >= 200 && status < 300) {
            sl_metric_add(n->m_sent, 1);
            return;
        }
        bool retry = status == 0 || status >= 500 || status == 429;
        int64_t spent_ms = (int64_t)((sl_mono_nano() - t0) / 1000000u);
        if (!retry || spent_ms + backoff > n->o.retry_max_ms) {
            if (status != 0) {
                snprintf(err, sizeof(err), "HTTP %ld", status);
            }
            SL_LOG_W("alerting", "notification to %s failed after %d attempts: %s", j->url, attempt,
                     err);
            sl_metric_add(n->m_failed, 1);
            return;
        }
        sl_metric_add(n->m_retries, 1);
        SL_LOG_D("alerting", "notification to %s: attempt %d failed (%s%ld); retrying in %lld ms",
                 j->url, attempt, status ? "HTTP " : "", status, (long long)backoff);
        if (nap(n, backoff)) {
            sl_metric_add(n->m_failed, 1);
            return;
        }
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
}

static void *sender_main(void *arg) {
    al_notifier *n = arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (n->head == NULL && !n->stop) {
            pthread_cond_wait(&n->cv, &n->mu);
        }
        if (n->stop) {
            break;
        }
        job *j = n->head;
        n->head = j->next;
        if (n->head == NULL) {
            n->tail = NULL;
        }
        n->busy = true;
        pthread_mutex_unlock(&n->mu);
        if (c != NULL) {
            deliver(n, c, j);
        } else {
            sl_metric_add(n->m_failed, 1);
        }
        free(j->url);
        free(j->body);
        free(j);
        pthread_mutex_lock(&n->mu);
        n->queued--;
        n->busy = false;
        if (n->head == NULL) {
            pthread_cond_broadcast(&n->idle_cv);
        }
    }
    pthread_mutex_unlock(&n->mu);
    curl_easy_cleanup(c);
    return NULL;
}

/* --- grouping --------------------------------------------------------------- */

static const char *label_of(const al_alert_msg *a, const char *name) {
    for (size_t i = 0; i < a->nlabels; i++) {
        if (strcmp(a->labels[i].name, name) == 0) {
            return a->labels[i].value;
        }
    }
    return NULL;
}

/* The group labels of an alert and the group's key. */
static int group_of(al_notifier *n, const al_alert_msg *a, al_kv **gl, size_t *ngl, sl_buf *key) {
    size_t cap = 0;
    *gl = NULL;
    *ngl = 0;
    int rc = 0;
    if (strcmp(a->tenant, "default") == 0) {
        rc = sl_buf_append_str(key, "{}:{");
    } else {
        rc = sl_buf_printf(key, "{}/{tenant=\"%s\"}:{", a->tenant);
    }
    for (size_t i = 0; i < a->nlabels && rc == 0; i++) {
        bool want = n->group_all;
        for (size_t g = 0; g < n->ngroup_by && !want; g++) {
            want = strcmp(n->group_by[g], a->labels[i].name) == 0;
        }
        if (!want) {
            continue;
        }
        if (sl_array_grow(gl, &cap, *ngl + 1, sizeof(al_kv)) != 0) {
            return SL_ENOMEM;
        }
        (*gl)[*ngl] = (al_kv){strdup(a->labels[i].name), strdup(a->labels[i].value)};
        (*ngl)++;
        rc = sl_buf_printf(key, "%s%s=\"%s\"", *ngl > 1 ? ", " : "", a->labels[i].name,
                           a->labels[i].value);
    }
    if (rc == 0) {
        rc = sl_buf_append(key, "}", 2);
    }
    (void)label_of;
    return rc;
}

static int forward(al_notifier *n, const al_alert_msg *alerts, size_t nalerts) {
    json_t *arr = json_array();
    for (size_t i = 0; i < nalerts; i++) {
        char s[40], e[40];
        rfc3339(alerts[i].starts_ms, s, sizeof(s));
        rfc3339(alerts[i].ends_ms, e, sizeof(e));
        json_array_append_new(arr,
                              json_pack("{s:o,s:o,s:s,s:s,s:s}", "labels",
                                        kv_obj(alerts[i].labels, alerts[i].nlabels), "annotations",
                                        kv_obj(alerts[i].annotations, alerts[i].nannotations),
                                        "startsAt", s, "endsAt", e, "generatorURL",
                                        alerts[i].generator_url ? alerts[i].generator_url : ""));
    }
    char *body = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    char url[2048];
    snprintf(url, sizeof(url), "%s/api/v2/alerts", n->am_url);
    pthread_mutex_lock(&n->mu);
    enqueue(n, url, body);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int al_notifier_put(al_notifier *n, const al_alert_msg *alerts, size_t nalerts, int64_t now_ms) {
    sl_metric_add(n->m_alerts, nalerts);
    if (n->am_url != NULL) {
        return forward(n, alerts, nalerts);
    }
    if (n->webhook_url == NULL) {
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < nalerts && rc == 0; i++) {
        const al_alert_msg *a = &alerts[i];
        al_kv *gl = NULL;
        size_t ngl = 0;
        sl_buf key;
        sl_buf_init(&key, 1u << 16);
        rc = group_of(n, a, &gl, &ngl, &key);
        agroup *g = NULL;
        for (size_t k = 0; rc == 0 && k < n->ngroups && g == NULL; k++) {
            if (strcmp(n->groups[k].key, (const char *)key.data) == 0 &&
                strcmp(n->groups[k].tenant, a->tenant) == 0) {
                g = &n->groups[k];
            }
        }
        if (rc == 0 && g == NULL) {
            if (sl_array_grow(&n->groups, &n->groups_cap, n->ngroups + 1, sizeof(agroup)) != 0) {
                rc = SL_ENOMEM;
            } else {
                size_t key_len;
                g = &n->groups[n->ngroups++];
                *g = (agroup){.tenant = strdup(a->tenant),
                              .key = (char *)sl_buf_take(&key, &key_len),
                              .glabels = gl,
                              .nglabels = ngl,
                              .next_flush_ms = now_ms + n->o.group_wait_ms};
                gl = NULL;
                ngl = 0;
                nflog_claim(n, g);
            }
        }
        kvs_free(gl, ngl);
        sl_buf_free(&key);
        if (rc != 0) {
            break;
        }
        uint64_t fp = al_fingerprint(a->labels, a->nlabels);
        galert *ga = NULL;
        for (size_t k = 0; k < g->n && ga == NULL; k++) {
            if (g->alerts[k].fp == fp) {
                ga = &g->alerts[k];
            }
        }
        if (ga == NULL) {
            if (sl_array_grow(&g->alerts, &g->cap, g->n + 1, sizeof(galert)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            ga = &g->alerts[g->n++];
        } else {
            galert_free(ga);
        }
        *ga = (galert){.fp = fp, .starts_ms = a->starts_ms, .ends_ms = a->ends_ms};
        if (kvs_dup(a->labels, a->nlabels, &ga->labels) != 0 ||
            kvs_dup(a->annotations, a->nannotations, &ga->ann) != 0 ||
            (ga->generator_url = strdup(a->generator_url ? a->generator_url : "")) == NULL) {
            rc = SL_ENOMEM;
        }
        ga->nlabels = ga->labels ? a->nlabels : 0;
        ga->nann = ga->ann ? a->nannotations : 0;
    }
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static bool subset(const uint64_t *sub, size_t nsub, const uint64_t *set, size_t nset) {
    for (size_t i = 0; i < nsub; i++) {
        bool found = false;
        for (size_t k = 0; k < nset && !found; k++) {
            found = set[k] == sub[i];
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

/* Flushes one group (mutex held): Alertmanager's dedup decision, then the
 * notification, then resolved alerts leave the group. */
static void flush(al_notifier *n, agroup *g, int64_t now_ms) {
    uint64_t *firing = calloc(g->n ? g->n : 1, sizeof(uint64_t));
    uint64_t *resolved = calloc(g->n ? g->n : 1, sizeof(uint64_t));
    const galert **order = calloc(g->n ? g->n : 1, sizeof(galert *));
    size_t nf = 0, nr = 0;
    if (firing == NULL || resolved == NULL || order == NULL) {
        goto out;
    }
    for (size_t i = 0; i < g->n; i++) {
        if (g->alerts[i].ends_ms > now_ms || g->alerts[i].ends_ms <= 0) {
            firing[nf++] = g->alerts[i].fp;
        } else {
            resolved[nr++] = g->alerts[i].fp;
        }
    }
    bool need;
    if (!g->notified) {
        need = nf > 0;
    } else if (!subset(firing, nf, g->last_firing, g->nlast_firing)) {
        need = true;
    } else if (nf == 0) {
        need = g->nlast_firing > 0;
    } else if (!subset(resolved, nr, g->last_resolved, g->nlast_resolved)) {
        need = true;
    } else {
        need = g->last_notify_ms + n->o.repeat_interval_ms <= now_ms;
    }
    if (need) {
        /* firing alerts first, then resolved, each in arrival order */
        size_t k = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < g->n; i++) {
                bool f = g->alerts[i].ends_ms > now_ms || g->alerts[i].ends_ms <= 0;
                if (f == (pass == 0)) {
                    order[k++] = &g->alerts[i];
                }
            }
        }
        /* max_alerts as Alertmanager's webhook notifier applies it: the
         * payload (its status and common labels too) is made of the first
         * max_alerts alerts; the dedup state above still covers them all. */
        size_t nsend = n->o.max_alerts > 0 && g->n > n->o.max_alerts ? n->o.max_alerts : g->n;
        size_t truncated = g->n - nsend;
        sl_metric_add(n->m_truncated, truncated);
        json_t *alerts = json_array();
        for (size_t i = 0; i < nsend; i++) {
            json_array_append_new(alerts, alert_v4(order[i], i < nf));
        }
        json_t *root = json_pack(
            "{s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:s,s:s,s:I}", "receiver", n->receiver, "status",
            nf > 0 ? "firing" : "resolved", "alerts", alerts, "groupLabels",
            kv_obj(g->glabels, g->nglabels), "commonLabels", common_kv(order, nsend, false),
            "commonAnnotations", common_kv(order, nsend, true), "externalURL", n->external_url,
            "version", "4", "groupKey", g->key, "truncatedAlerts", (json_int_t)truncated);
        char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (body != NULL) {
            enqueue(n, n->webhook_url, body);
        }
        free(g->last_firing);
        free(g->last_resolved);
        g->last_firing = firing;
        g->nlast_firing = nf;
        g->last_resolved = resolved;
        g->nlast_resolved = nr;
        firing = resolved = NULL;
        g->notified = true;
        g->last_notify_ms = now_ms;
        n->nflog_dirty = true;
        /* resolved alerts were notified: they leave the group */
        for (size_t i = 0; i < g->n;) {
            if (g->alerts[i].ends_ms > 0 && g->alerts[i].ends_ms <= now_ms) {
                galert_free(&g->alerts[i]);
                g->alerts[i] = g->alerts[--g->n];
            } else {
                i++;
            }
        }
    }
    g->next_flush_ms = now_ms + n->o.group_interval_ms;
out:
    free(firing);
    free(resolved);
    free(order);
}

void al_notifier_tick(al_notifier *n, int64_t now_ms) {
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->ngroups;) {
        agroup *g = &n->groups[i];
        if (g->next_flush_ms <= now_ms) {
            flush(n, g, now_ms);
        }
        /* a group whose alerts all resolved and were notified is gone */
        if (g->n == 0) {
            n->nflog_dirty |= g->notified;
            agroup_free(g);
            n->groups[i] = n->groups[--n->ngroups];
            continue;
        }
        i++;
    }
    nflog_save(n, now_ms);
    pthread_mutex_unlock(&n->mu);
}

void al_notifier_drain(al_notifier *n) {
    pthread_mutex_lock(&n->mu);
    while (n->head != NULL || n->busy) {
        pthread_cond_wait(&n->idle_cv, &n->mu);
    }
    pthread_mutex_unlock(&n->mu);
}

int al_notifier_create(const al_notifier_options *o, al_notifier **out) {
    *out = NULL;
    al_notifier *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    n->o = *o;
    al_notifier_options def;
    al_notifier_options_init(&def);
    if (n->o.queue_max == 0) {
        n->o.queue_max = def.queue_max;
    }
    if (n->o.timeout_ms <= 0) {
        n->o.timeout_ms = def.timeout_ms;
    }
    if (n->o.backoff_ms <= 0) {
        n->o.backoff_ms = def.backoff_ms;
    }
    int rc = 0;
    n->webhook_url = o->webhook_url && *o->webhook_url ? strdup(o->webhook_url) : NULL;
    n->am_url = o->alertmanager_url && *o->alertmanager_url ? strdup(o->alertmanager_url) : NULL;
    n->receiver = strdup(o->receiver ? o->receiver : "webhook");
    n->external_url = strdup(o->external_url ? o->external_url : "");
    if (o->state_file != NULL && (n->state_file = strdup(o->state_file)) != NULL) {
        nflog_load(n);
    }
    const char *gb = o->group_by ? o->group_by : "alertname";
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    pthread_cond_init(&n->idle_cv, NULL);
    if (n->receiver == NULL || n->external_url == NULL) {
        rc = SL_ENOMEM;
    }
    while (rc == 0 && *gb != '\0') {
        size_t len = strcspn(gb, ",");
        size_t cap = n->ngroup_by;
        if (len == 3 && strncmp(gb, "...", 3) == 0) {
            n->group_all = true;
        } else if (len > 0) {
            char *name = strndup(gb, len);
            if (name == NULL ||
                sl_array_grow(&n->group_by, &cap, n->ngroup_by + 1, sizeof(char *)) != 0) {
                free(name);
                rc = SL_ENOMEM;
                break;
            }
            n->group_by[n->ngroup_by++] = name;
        }
        gb += len;
        gb += *gb == ',';
    }
    n->m_sent = sl_counter("sightline_notifications_total", "", "Notifications delivered.");
    n->m_failed = sl_counter("sightline_notifications_failed_total", "",
                             "Notifications given up after their retries (or refused with 4xx).");
    n->m_retries = sl_counter("sightline_notification_retries_total", "",
                              "Notification attempts that failed and were retried.");
    n->m_dropped = sl_counter("sightline_notifications_dropped_total", "",
                              "Notifications dropped because the queue was full.");
    n->m_alerts = sl_counter("sightline_alerts_received_total", "",
                             "Alerts handed to the notifier by the evaluator.");
    n->m_truncated = sl_counter("sightline_notification_alerts_truncated_total", "",
                                "Alerts left out of notifications by --alert-max-alerts.");
    if (rc == 0 && (rc = -pthread_create(&n->thread, NULL, sender_main, n)) != 0) {
        n->thread = 0;
    }
    if (rc != 0) {
        n->stop = true;
        al_notifier_destroy(n);
        return rc;
    }
    *out = n;
    return 0;
}

void al_notifier_destroy(al_notifier *n) {
    if (n == NULL) {
        return;
    }
    pthread_mutex_lock(&n->mu);
    bool running = !n->stop;
    n->stop = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (running) {
        pthread_join(n->thread, NULL);
    }
    while (n->head != NULL) {
        job *j = n->head;
        n->head = j->next;
        free(j->url);
        free(j->body);
        free(j);
        sl_metric_add(n->m_dropped, 1);
    }
    for (size_t i = 0; i < n->ngroups; i++) {
        agroup_free(&n->groups[i]);
    }
    free(n->groups);
    for (size_t i = 0; i < n->nnflog; i++) {
        nflog_entry_free(&n->nflog[i]);
    }
    free(n->nflog);
    free(n->state_file);
    for (size_t i = 0; i < n->ngroup_by; i++) {
        free(n->group_by[i]);
    }
    free(n->group_by);
    free(n->webhook_url);
    free(n->am_url);
    free(n->receiver);
    free(n->external_url);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    pthread_cond_destroy(&n->idle_cv);
    free(n);
}
