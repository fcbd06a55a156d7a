/*
 * Glue between the alerting module and the rest of the binary: the
 * evaluator reads through the query module's storage querier, writes its
 * samples back through storage (once the metrics write path exists, see
 * append_samples), and its endpoints are served by the query server.
 */
#include "alerting_main.h"

#include "alerting.h"
#include "qry_querier.h"
#include "sl_err.h"
#include "sl_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct alerting_rt {
    al_engine *engine;
    al_notifier *notifier;
    al_prober *prober;
    stg_store *store;
    pthread_mutex_t reload_mu; /* one reload at a time (SIGHUP and HTTP) */
};

static int select_tenant(void *ud, const char *tenant, const pq_matcher *m, size_t nm,
                         int64_t mint_ms, int64_t maxt_ms, pq_series_cb cb, void *cb_ud) {
    alerting_rt *rt = ud;
    qry_store_querier q = {rt->store, tenant};
    return qry_store_select(&q, m, nm, mint_ms, maxt_ms, cb, cb_ud);
}

/* Writes rule and probe samples as one metrics WAL record, durably (the
 * collector's path for /v1/metrics), so they are queryable at once and
 * survive a restart. */
static int append_samples(void *ud, const char *tenant, const pq_label *const *labels,
                          const size_t *nlabels, const double *values, size_t n, int64_t t_ms) {
    alerting_rt *rt = ud;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += nlabels[i];
    }
    stg_mseries *ser = calloc(n ? n : 1, sizeof(*ser));
    stg_sample *smp = calloc(n ? n : 1, sizeof(*smp));
    stg_label *lab = calloc(total ? total : 1, sizeof(*lab));
    sl_buf rec;
    sl_buf_init(&rec, 64u << 20);
    int rc = ser && smp && lab ? 0 : SL_ENOMEM;
    for (size_t i = 0, k = 0; rc == 0 && i < n; i++) {
        for (size_t j = 0; j < nlabels[i]; j++) {
            lab[k + j] = (stg_label){labels[i][j].name, labels[i][j].value};
        }
        smp[i] = (stg_sample){t_ms, values[i]};
        ser[i] = (stg_mseries){.labels = lab + k,
                               .nlabels = nlabels[i],
                               .kind = STG_MS_CUMULATIVE,
                               .samples = &smp[i],
                               .nsamples = 1};
        k += nlabels[i];
    }
    if (rc == 0 && (rc = stg_metrics_encode(ser, n, NULL, 0, &rec)) == 0) {
        stg_write w = {tenant, STG_METRICS, rec.data, rec.len, (uint32_t)n};
        rc = stg_write_batch(rt->store, &w, 1);
    }
    sl_buf_free(&rec);
    free(ser);
    free(smp);
    free(lab);
    return rc;
}

static void log_errors(const sl_buf *errs) {
    const char *p = (const char *)errs->data;
    const char *end = p + errs->len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0) {
            SL_LOG_E("alerting", "%.*s", (int)len, p);
        }
        p = nl ? nl + 1 : NULL;
    }
}

int alerting_create(const alerting_settings *s, stg_store *store, const char *data_dir,
                    alerting_rt **out) {
    *out = NULL;
    alerting_rt *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return SL_ENOMEM;
    }
    rt->store = store;
    pthread_mutex_init(&rt->reload_mu, NULL);
    al_global_init();
    int rc = 0;
    if (s->webhook_url != NULL || s->alertmanager_url != NULL) {
        al_notifier_options no;
        al_notifier_options_init(&no);
        no.webhook_url = s->webhook_url;
        no.alertmanager_url = s->alertmanager_url;
        no.group_by = s->group_by;
        no.group_wait_ms = (int64_t)(s->group_wait_ns / 1000000u);
        no.group_interval_ms = (int64_t)(s->group_interval_ns / 1000000u);
        no.repeat_interval_ms = (int64_t)(s->repeat_interval_ns / 1000000u);
        no.max_alerts = (size_t)s->max_alerts;
        char nflog[4200];
        snprintf(nflog, sizeof(nflog), "%s/.alerting-notifications.json", data_dir);
        no.state_file = nflog;
        no.external_url = s->external_url;
        if ((rc = al_notifier_create(&no, &rt->notifier)) != 0) {
            goto fail;
        }
    }
    al_source probe_src = {select_tenant, append_samples, rt};
    if ((rc = al_prober_create(s->checks, (int64_t)(s->check_interval_ns / 1000000u), 5000,
                               &probe_src, &rt->prober)) != 0) {
        SL_LOG_E("alerting", "--health-checks: %s (want service=http://host:port/path,...)",
                 sl_strerror(rc));
        goto fail;
    }
    char state[4200];
    snprintf(state, sizeof(state), "%s/.alerting-state.json", data_dir);
    al_engine_options eo;
    al_engine_options_init(&eo);
    eo.default_interval_ms = (int64_t)(s->rule_interval_ns / 1000000u);
    eo.rules_dir = s->rules_dir;
    eo.state_file = state;
    eo.external_url = s->external_url;
    eo.source = (al_source){select_tenant, append_samples, rt};
    eo.notifier = rt->notifier;
    sl_buf errs;
    sl_buf_init(&errs, 1u << 20);
    rc = al_engine_create(&eo, &rt->engine, &errs);
    if (rc != 0) {
        log_errors(&errs);
        SL_LOG_E("alerting", "rules in %s not loaded: %s", s->rules_dir, sl_strerror(rc));
    }
    sl_buf_free(&errs);
    if (rc != 0) {
        goto fail;
    }
    *out = rt;
    return 0;
fail:
    alerting_destroy(rt);
    return rc;
}

int alerting_run(alerting_rt *rt) {
    return al_engine_start(rt->engine);
}

/* Reloads; errs gets the problems. */
static int reload(alerting_rt *rt, sl_buf *errs) {
    pthread_mutex_lock(&rt->reload_mu);
    int rc = al_engine_reload(rt->engine, errs);
    pthread_mutex_unlock(&rt->reload_mu);
    if (rc != 0) {
        log_errors(errs);
        SL_LOG_E("alerting", "rules not reloaded (the previous ones stay): %s", sl_strerror(rc));
    } else {
        SL_LOG_I("alerting", "rules reloaded");
    }
    return rc;
}

void alerting_reload(alerting_rt *rt) {
    sl_buf errs;
    sl_buf_init(&errs, 1u << 20);
    reload(rt, &errs);
    sl_buf_free(&errs);
}

int alerting_http(void *ud, const qry_ext_req *r, int *status, sl_buf *body) {
    alerting_rt *rt = ud;
    int rc;
    *status = 200;
    if (strcmp(r->path, "/api/v1/rules") == 0) {
        char buf[32];
        const char *type = r->arg(r, "type", buf, sizeof(buf));
        if (type != NULL && strcmp(type, "alert") != 0 && strcmp(type, "record") != 0) {
            *status = 400;
            return sl_buf_append_str(body, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                           "\"error\":\"unsupported type: use alert or record\"}");
        }
        return al_engine_rules_json(rt->engine, r->tenant, type, body);
    }
    if (strcmp(r->path, "/api/v1/alerts") == 0) {
        return al_engine_alerts_json(rt->engine, r->tenant, body);
    }
    if (strcmp(r->path, "/-/reload") == 0) {
        sl_buf errs;
        sl_buf_init(&errs, 1u << 20);
        rc = reload(rt, &errs);
        if (rc == 0) {
            rc = sl_buf_append_str(body, "{\"status\":\"success\"}");
        } else {
            *status = rc == SL_EINVAL ? 400 : 503;
            sl_buf_putc(&errs, 0);
            char *msg = NULL;
            /* JSON-escape the error lines */
            size_t n = errs.len ? errs.len : 1;
            msg = malloc(n * 6 + 1);
            size_t k = 0;
            for (size_t i = 0; msg != NULL && i + 1 < errs.len; i++) {
                unsigned char c = errs.data[i];
                if (c == '"' || c == '\\') {
                    msg[k++] = '\\';
                    msg[k++] = (char)c;
                } else if (c < 0x20) {
                    k += (size_t)snprintf(msg + k, 7, "\\u%04x", c);
                } else {
                    msg[k++] = (char)c;
                }
            }
            if (msg != NULL) {
                msg[k] = '\0';
            }
            rc = sl_buf_printf(body,
                               "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"%s\"}",
                               msg ? msg : "out of memory");
            free(msg);
        }
        sl_buf_free(&errs);
        return rc;
    }
    return SL_ENOTFOUND;
}

int alerting_firing(void *ud, const char *tenant, const char *service, sl_buf *out) {
    alerting_rt *rt = ud;
    return al_engine_firing_for(rt->engine, tenant, service, out);
}

int alerting_check_failing(void *ud, const char *tenant, const char *service, char *why,
                           size_t why_size) {
    alerting_rt *rt = ud;
    /* checks are configuration, so they belong to the default tenant */
    return strcmp(tenant, "default") == 0 ? al_prober_failing(rt->prober, service, why, why_size)
                                          : 0;
}

void alerting_destroy(alerting_rt *rt) {
    if (rt == NULL) {
        return;
    }
    al_prober_destroy(rt->prober);
    al_engine_destroy(rt->engine);
    al_notifier_destroy(rt->notifier);
    pthread_mutex_destroy(&rt->reload_mu);
    free(rt);
}
