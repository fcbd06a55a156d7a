/*
 * Alerting: Prometheus rule files (alerting and recording rules), their
 * templates, and (see the sections below) the evaluator's state machine and
 * the notifier. The rules module knows nothing of storage: evaluation reads
 * through the PromQL engine's querier and writes samples through a callback,
 * so the server adapts storage to it and unit tests feed it in-memory series.
 *
 * Thread-safety: a loaded al_ruleset is immutable and may be read by any
 * number of threads; each function below says what else holds.
 */
#ifndef SL_ALERTING_H
#define SL_ALERTING_H

#include "promql.h"
#include "sl_buf.h"
#include "sl_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- rule files ----------------------------------------------------------------- */

typedef struct al_kv {
    char *name;
    char *value; /* a template for alert labels and annotations */
} al_kv;

typedef struct al_rule {
    char *name; /* the alert name, or the recorded metric name */
    bool alert; /* an alerting rule (else a recording rule) */
    char *expr; /* PromQL text, checked to parse */
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    al_kv *labels;
    size_t nlabels;
    al_kv *annotations;
    size_t nannotations;
    int line; /* 1-based line of the rule in its file */
} al_rule;

typedef struct al_group {
    char *name;
    char *file;
    int64_t interval_ms; /* 0: the evaluator's default */
    int64_t limit;       /* 0: no limit on alerts or series a rule may produce */
    al_rule *rules;
    size_t nrules;
    int line;
} al_group;

typedef struct al_ruleset {
    al_group *groups;
    size_t ngroups;
} al_ruleset;

/* Parses and validates one rule file (Prometheus's rule-file format: groups of
 * alerting and recording rules). Every problem found is appended to errs as a
 * line "FILE:LINE: message" (group, rule index and name when known), as
 * promtool reports them; the first one does not stop the check. The groups
 * are appended to *rs (which may already hold other files' groups) only when
 * the file has no error. Returns 0, SL_EINVAL (errs says why), SL_ENOMEM, or
 * a negative errno when the file cannot be read. */
int al_rules_load_file(const char *path, al_ruleset *rs, sl_buf *errs);

/* Same over a buffer; name is used in messages. */
int al_rules_load_buffer(const char *name, const char *data, size_t len, al_ruleset *rs,
                         sl_buf *errs);

/* Loads every *.yml and *.yaml file of dir (sorted by name) into *rs. Errors
 * of all files are reported; *rs is filled only when there are none.
 * Returns 0, SL_EINVAL, SL_ENOMEM or a negative errno. */
int al_rules_load_dir(const char *dir, al_ruleset *rs, sl_buf *errs);

/* Frees what the ruleset holds and empties it; safe on an empty one. */
void al_ruleset_clear(al_ruleset *rs);

/* --- templates -------------------------------------------------------------------- */

/* The data a template sees: {{ $labels.x }} / {{ .Labels.x }}, {{ $value }} /
 * {{ .Value }}, {{ $externalLabels.x }}, {{ $externalURL }}. */
typedef struct al_tmpl_data {
    const al_kv *labels;
    size_t nlabels;
    double value;
    const al_kv *external_labels;
    size_t nexternal_labels;
    const char *external_url;
} al_tmpl_data;

/* Expands a template in Go's text/template syntax (the subset rules use:
 * variables and fields above, string and number literals, pipelines, and the
 * functions humanize, humanize1024, humanizePercentage, humanizeDuration,
 * printf, toUpper, toLower, title, and `{{-`/`-}}` trimming) into out.
 * Returns 0, SL_EINVAL with err filled ("1:12: unknown function ...") or
 * SL_ENOMEM / SL_ETOOBIG. Reentrant. */
int al_template_expand(const char *tmpl, const al_tmpl_data *d, sl_buf *out, char *err,
                       size_t err_size);

/* Checks a template's syntax (the expansion with empty data). Same returns. */
int al_template_check(const char *tmpl, char *err, size_t err_size);

/* --- notifications ----------------------------------------------------------------- */

/* An alert as Prometheus hands it to an Alertmanager: firing while ends_ms is
 * in the future, resolved once it has passed. Labels sorted by name. */
typedef struct al_alert_msg {
    const char *tenant;
    const al_kv *labels;
    size_t nlabels;
    const al_kv *annotations;
    size_t nannotations;
    int64_t starts_ms;
    int64_t ends_ms;
    const char *generator_url;
} al_alert_msg;

typedef struct al_notifier al_notifier;

typedef struct al_notifier_options {
    const char *webhook_url;      /* Alertmanager webhook receivers (v4 payload); NULL: none */
    const char *alertmanager_url; /* forward to an Alertmanager's /api/v2/alerts instead */
    const char *receiver;         /* the payload's "receiver" (default "webhook") */
    const char *group_by;         /* comma-separated labels; "..." groups by all; default
                                     "alertname" */
    int64_t group_wait_ms;        /* default 30 s */
    int64_t group_interval_ms;    /* default 5 min */
    int64_t repeat_interval_ms;   /* default 4 h */
    const char *external_url;     /* the payload's externalURL */
    int64_t timeout_ms;           /* one HTTP attempt; default 10 s */
    int64_t retry_max_ms;         /* give a notification up after this; default 5 min */
    int64_t backoff_ms;           /* first retry delay, doubled up to 30 s; default 500 ms */
    size_t queue_max;             /* notifications waiting to be sent; default 1024 */
    const char *state_file;       /* the notification log (what each group last notified,
                                   * as Alertmanager's nflog), kept across restarts;
                                   * NULL: memory only */
    size_t max_alerts;            /* alerts in one webhook notification, firing ones first
                                   * (Alertmanager's webhook max_alerts; the rest are
                                   * counted in truncatedAlerts); 0: all */
} al_notifier_options;

void al_notifier_options_init(al_notifier_options *o);

/* Initializes libcurl's global state; call once from the main thread before
 * creating a notifier or prober (both run libcurl on their own threads). */
void al_global_init(void);

/* Starts the sender thread (libcurl). Returns 0, SL_EINVAL or SL_ENOMEM; *out
 * is NULL on failure. */
int al_notifier_create(const al_notifier_options *o, al_notifier **out);

/* Stops the sender (an attempt in flight finishes; queued ones are dropped
 * and counted) and frees everything. NULL is fine. */
void al_notifier_destroy(al_notifier *n);

/* Hands alerts to the notifier (an Alertmanager's POST /api/v2/alerts):
 * copies them into their aggregation groups, or queues them for the
 * Alertmanager. Never blocks on the network. Thread-safe. */
int al_notifier_put(al_notifier *n, const al_alert_msg *alerts, size_t nalerts, int64_t now_ms);

/* Flushes the groups whose group_wait or group_interval has passed, queueing
 * a webhook notification where Alertmanager would send one. Called by the
 * evaluator thread about once a second; tests call it with their own clock.
 * Thread-safe. */
void al_notifier_tick(al_notifier *n, int64_t now_ms);

/* Waits until nothing is queued or being sent (tests). */
void al_notifier_drain(al_notifier *n);

/* --- the evaluator --------------------------------------------------------------- */

/* Where rules read and write: select reads a tenant's series with the
 * querier's contract (promql.h); append writes one sample per series (labels
 * sorted by name, __name__ included) at t_ms, durably. append may be NULL
 * (nothing is written back). */
typedef struct al_source {
    int (*select)(void *ud, const char *tenant, const pq_matcher *m, size_t nm, int64_t mint_ms,
                  int64_t maxt_ms, pq_series_cb cb, void *cb_ud);
    int (*append)(void *ud, const char *tenant, const pq_label *const *labels,
                  const size_t *nlabels, const double *values, size_t n, int64_t t_ms);
    void *ud;
} al_source;

typedef struct al_engine al_engine;

typedef struct al_engine_options {
    int64_t default_interval_ms; /* groups without interval; default 1 min */
    const char *rules_dir;       /* rule files of tenant "default"; subdirectories: tenants */
    const char *state_file;      /* alert state kept across restarts; NULL: none */
    const char *external_url;    /* generatorURL prefix */
    al_source source;
    al_notifier *notifier; /* borrowed; NULL: no notifications */
} al_engine_options;

void al_engine_options_init(al_engine_options *o);

/* Creates the engine, restores the state file and loads the rules directory
 * (errors go to errs and fail the creation: SL_EINVAL). Returns 0, SL_EINVAL,
 * SL_ENOMEM or a negative errno. Does not start a thread. */
int al_engine_create(const al_engine_options *o, al_engine **out, sl_buf *errs);

/* Loads the rules directory anew. On any error the old rules stay and errs
 * says why (SL_EINVAL). Alerts of rules that still exist (same tenant, group
 * file and name, rule name and index among rules of that name) keep their
 * state. Thread-safe. */
int al_engine_reload(al_engine *e, sl_buf *errs);

/* Evaluates every group due at now_ms (each on its own interval, aligned to
 * it), writes back samples, hands alerts to the notifier and saves the state
 * file when it changed. Tests drive it with their own clock. Thread-safe. */
void al_engine_eval_due(al_engine *e, int64_t now_ms);

/* Starts / stops the evaluator thread (wall clock, ticks once a second:
 * evaluates due groups and ticks the notifier). */
int al_engine_start(al_engine *e);
void al_engine_destroy(al_engine *e);

/* The bodies of Prometheus's GET /api/v1/rules and /api/v1/alerts for a
 * tenant (the whole {"status":"success","data":...} object), appended to out.
 * type: NULL, "alert" or "record" (the rules endpoint's filter). Returns 0 or
 * SL_ENOMEM. Thread-safe. */
int al_engine_rules_json(al_engine *e, const char *tenant, const char *type, sl_buf *out);
int al_engine_alerts_json(al_engine *e, const char *tenant, sl_buf *out);

/* Firing alerts of a tenant whose labels include service_name=service (or,
 * with service NULL, all), as a JSON array of {"alertname","labels",...}; for
 * the fleet health page. Returns 0 or SL_ENOMEM. Thread-safe. */
int al_engine_firing_for(al_engine *e, const char *tenant, const char *service, sl_buf *out);

/* --- active checks ------------------------------------------------------------- */

typedef struct al_prober al_prober;

/* Probes HTTP endpoints on an interval from its own thread (libcurl GET; 2xx
 * is success): spec is "service=url,service=url" (a URL without a service
 * name is its own). Each probe writes probe_success and
 * probe_duration_seconds {service_name, instance=url, job="sightline_checks"}
 * through src->append for tenant "default" when append is set. Returns 0,
 * SL_EINVAL (bad spec) or SL_ENOMEM. */
int al_prober_create(const char *spec, int64_t interval_ms, int64_t timeout_ms,
                     const al_source *src, al_prober **out);

/* When a check of service failed at its last probe: 1 and why (URL and
 * error); else 0. Thread-safe. */
int al_prober_failing(al_prober *p, const char *service, char *why, size_t why_size);

/* Results of every check as a JSON array (service, url, success, duration
 * seconds, last probe time, error). Thread-safe. */
int al_prober_json(al_prober *p, sl_buf *out);

/* Stops the thread and frees everything. NULL is fine. */
void al_prober_destroy(al_prober *p);

/* Fingerprint of a label set (sorted by name), as Alertmanager shows it. */
uint64_t al_fingerprint(const al_kv *labels, size_t n);

#endif
