/*
 * The alerting part of `sightline serve`: the rule evaluator over storage,
 * the notifier, and their HTTP endpoints (/api/v1/rules, /api/v1/alerts,
 * POST /-/reload) handed to the query server. Started and stopped by the
 * main thread.
 */
#ifndef SL_ALERTING_MAIN_H
#define SL_ALERTING_MAIN_H

#include "query.h"
#include "storage.h"

#include <stdint.h>

typedef struct alerting_settings {
    const char *rules_dir;
    uint64_t rule_interval_ns;
    const char *webhook_url;
    const char *alertmanager_url;
    const char *group_by;
    uint64_t group_wait_ns;
    uint64_t group_interval_ns;
    uint64_t repeat_interval_ns;
    uint64_t max_alerts; /* per notification; 0: all */
    const char *external_url;
    const char *checks; /* "service=url,..." probed every check_interval_ns */
    uint64_t check_interval_ns;
} alerting_settings;

typedef struct alerting_rt alerting_rt;

/* Loads the rules (errors are logged, line by line, and fail the start),
 * restores the alert state kept in data_dir and creates the notifier. The
 * evaluator thread starts with alerting_run. Returns 0 or a negative code. */
int alerting_create(const alerting_settings *s, stg_store *store, const char *data_dir,
                    alerting_rt **out);
int alerting_run(alerting_rt *rt);

/* SIGHUP: reloads the rules, keeping alert state; a bad file keeps the old
 * rules (logged). */
void alerting_reload(alerting_rt *rt);

/* The query server's extension hook (qry_ext_fn); ud is the alerting_rt. */
int alerting_http(void *ud, const qry_ext_req *r, int *status, sl_buf *body);

/* Firing alerts labelled service_name=service, as a JSON array (for the
 * fleet health page); qry_options.firing_alerts. */
int alerting_firing(void *ud, const char *tenant, const char *service, sl_buf *out);

/* Whether an active check of service failed at its last probe (and why);
 * qry_options.check_failing. */
int alerting_check_failing(void *ud, const char *tenant, const char *service, char *why,
                           size_t why_size);

void alerting_destroy(alerting_rt *rt);

#endif
