/*
 * Active checks: HTTP health endpoints (each fleet service's /health)
 * probed on an interval by one thread with libcurl. Every probe records
 * success (a 2xx answer within the timeout) and its duration, writes them as
 * the probe_success and probe_duration_seconds series (Prometheus's
 * blackbox-exporter names) when a writer is configured, and feeds the fleet
 * health page. Results are read under the prober's mutex.
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

typedef struct check {
    char *service;
    char *url;
    bool probed, success;
    double duration_s;
    int64_t last_ms;
    char error[160];
} check;

struct al_prober {
    check *checks;
    size_t n;
    int64_t interval_ms, timeout_ms;
    al_source src;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static size_t discard(char *p, size_t size, size_t nmemb, void *ud) {
    (void)p;
    (void)ud;
    return size * nmemb;
}

static void write_series(al_prober *p, const check *c, int64_t t_ms) {
    if (p->src.append == NULL) {
        return;
    }
    pq_label l1[4] = {{SL_STR_LIT("__name__"), SL_STR_LIT("probe_success")},
                      {SL_STR_LIT("instance"), sl_str_c(c->url)},
                      {SL_STR_LIT("job"), SL_STR_LIT("sightline_checks")},
                      {SL_STR_LIT("service_name"), sl_str_c(c->service)}};
    pq_label l2[4] = {{SL_STR_LIT("__name__"), SL_STR_LIT("probe_duration_seconds")},
                      {SL_STR_LIT("instance"), sl_str_c(c->url)},
                      {SL_STR_LIT("job"), SL_STR_LIT("sightline_checks")},
                      {SL_STR_LIT("service_name"), sl_str_c(c->service)}};
    const pq_label *ls[2] = {l1, l2};
    size_t ns[2] = {4, 4};
    double vs[2] = {c->success ? 1 : 0, c->duration_s};
    p->src.append(p->src.ud, "default", ls, ns, vs, 2, t_ms);
}

static void probe(al_prober *p, CURL *curl, check *c) {
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "Sightline-Checks/1");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
    uint64_t t0 = sl_mono_nano();
    CURLcode cc = curl_easy_perform(curl);
    double dur = (double)(sl_mono_nano() - t0) / 1e9;
    long status = 0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    int64_t now = (int64_t)(sl_now_unix_nano() / 1000000u);
    pthread_mutex_lock(&p->mu);
    c->probed = true;
    c->success = cc == CURLE_OK && status >= 200 && status < 300;
    c->duration_s = dur;
    c->last_ms = now;
    if (cc != CURLE_OK) {
        snprintf(c->error, sizeof(c->error), "%.150s", err[0] ? err : curl_easy_strerror(cc));
    } else if (!c->success) {
        snprintf(c->error, sizeof(c->error), "HTTP %ld", status);
    } else {
        c->error[0] = '\0';
    }
    pthread_mutex_unlock(&p->mu);
    write_series(p, c, now);
}

static void *prober_main(void *arg) {
    al_prober *p = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < p->n && curl != NULL; i++) {
            probe(p, curl, &p->checks[i]);
        }
        pthread_mutex_lock(&p->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += (time_t)(p->interval_ms / 1000);
        dl.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &dl) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&p->mu);
    curl_easy_cleanup(curl);
    return NULL;
}

int al_prober_create(const char *spec, int64_t interval_ms, int64_t timeout_ms,
                     const al_source *src, al_prober **out) {
    *out = NULL;
    al_prober *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    p->interval_ms = interval_ms > 0 ? interval_ms : 15000;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    if (src != NULL) {
        p->src = *src;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = 0;
    size_t cap = 0;
    const char *s = spec ? spec : "";
    while (rc == 0 && *s != '\0') {
        size_t len = strcspn(s, ",");
        const char *item = s, *eq = memchr(item, '=', len);
        const char *url = eq ? eq + 1 : item;
        size_t url_len = len - (size_t)(url - item);
        bool ok = url_len > 7 && (strncmp(url, "http://", 7) == 0 ||
                                  (url_len > 8 && strncmp(url, "https://", 8) == 0));
        if (len > 0 && (!ok || (eq != NULL && eq == item))) {
            rc = SL_EINVAL;
            break;
        }
        if (len > 0) {
            if (sl_array_grow(&p->checks, &cap, p->n + 1, sizeof(check)) != 0) {
                rc = SL_ENOMEM;
                break;
            }
            check *c = &p->checks[p->n];
            *c = (check){0};
            c->url = strndup(url, url_len);
            c->service = eq ? strndup(item, (size_t)(eq - item)) : strndup(url, url_len);
            p->n++;
            if (c->url == NULL || c->service == NULL) {
                rc = SL_ENOMEM;
            }
        }
        s += len;
        s += *s == ',';
    }
    if (rc == 0 && p->n > 0) {
        rc = -pthread_create(&p->thread, NULL, prober_main, p);
        p->started = rc == 0;
    }
    if (rc != 0) {
        al_prober_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

int al_prober_failing(al_prober *p, const char *service, char *why, size_t why_size) {
    int failing = 0;
    if (p == NULL) {
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n && !failing; i++) {
        check *c = &p->checks[i];
        if (c->probed && !c->success && strcmp(c->service, service) == 0) {
            failing = 1;
            snprintf(why, why_size, "active check %s failed: %s", c->url, c->error);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return failing;
}

int al_prober_json(al_prober *p, sl_buf *out) {
    json_t *arr = json_array();
    for (size_t i = 0; p != NULL && i < p->n; i++) {
        pthread_mutex_lock(&p->mu);
        check c = p->checks[i];
        json_t *j = json_pack("{s:s,s:s,s:b,s:f,s:I,s:s}", "service", c.service, "url", c.url,
                              "success", c.success, "durationSeconds", c.duration_s, "lastProbeMs",
                              (json_int_t)c.last_ms, "error", c.error);
        pthread_mutex_unlock(&p->mu);
        json_array_append_new(arr, j);
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_buf_append_str(out, s);
    free(s);
    return rc;
}

void al_prober_destroy(al_prober *p) {
    if (p == NULL) {
        return;
    }
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n; i++) {
        free(p->checks[i].url);
        free(p->checks[i].service);
    }
    free(p->checks);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
