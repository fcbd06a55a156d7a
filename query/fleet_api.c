/*
 * GET /api/service-map and GET /api/fleet/health: the live service graph
 * (storage's deps.c) as nodes and edges with calls, errors and latency, and
 * every service's status (healthy, degraded, down, unknown) with the reasons,
 * against the thresholds of qry_options. Runs on a query thread.
 */
#include "query_int.h"

#include "promql.h"
#include "sl_err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void rfc3339_ns(uint64_t ns, char *buf, size_t cap) {
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ns / 1000000u % 1000));
}

/* A quantile as JSON: null when there were no calls. */
static json_t *q_json(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static void answer(qry_resp *resp, int status, json_t *doc) {
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (s == NULL || sl_buf_append_str(&resp->body, s) != 0) {
        free(s);
        qry_resp_error(resp, 503, "out of memory");
        return;
    }
    free(s);
    resp->status = status;
    resp->content_type = "application/json";
}

static json_t *stats_json(const stg_dep_stats *st, double seconds) {
    return json_pack("{s:I,s:I,s:f,s:f,s:o,s:o,s:o}", "calls", (json_int_t)st->calls, "errors",
                     (json_int_t)st->errors, "errorRatio",
                     st->calls ? (double)st->errors / (double)st->calls : 0.0, "requestRate",
                     seconds > 0 ? (double)st->calls / seconds : 0.0, "p50", q_json(st->p50_s),
                     "p95", q_json(st->p95_s), "p99", q_json(st->p99_s));
}

void qry_api_service_map(const qry_req *req, qry_resp *resp) {
    qry_errbuf err;
    uint64_t start_ns, end_ns;
    stg_dep_edge *edges;
    stg_dep_service *svcs;
    size_t nedges, nsvcs;
    if (qry_parse_deps_params(&req->args, req->now_unix_nano, &start_ns, &end_ns, &err) != 0) {
        qry_resp_error(resp, 400, err.msg);
        return;
    }
    int rc = stg_deps_get(req->store, req->tenant, start_ns, end_ns, req->arena, &edges, &nedges,
                          &svcs, &nsvcs);
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    double seconds = (double)(end_ns - start_ns) / 1e9;
    json_t *nodes = json_array(), *ej = json_array();
    for (size_t i = 0; i < nsvcs; i++) {
        char seen[40];
        rfc3339_ns(svcs[i].last_seen_unix_nano, seen, sizeof(seen));
        json_t *n = stats_json(&svcs[i].stats, seconds);
        json_object_set_new(n, "service", json_string(svcs[i].name));
        json_object_set_new(n, "instances", json_integer(svcs[i].instances));
        json_object_set_new(n, "lastSeen", json_string(seen));
        json_array_append_new(nodes, n);
    }
    for (size_t i = 0; i < nedges; i++) {
        json_t *e = stats_json(&edges[i].stats, seconds);
        json_object_set_new(e, "parent", json_string(edges[i].parent));
        json_object_set_new(e, "child", json_string(edges[i].child));
        json_object_set_new(e, "callCount", json_integer((json_int_t)edges[i].stats.calls));
        json_array_append_new(ej, e);
    }
    answer(resp, 200, json_pack("{s:{s:o,s:o}}", "data", "nodes", nodes, "edges", ej));
}

void qry_api_fleet_health(const qry_req *req, qry_resp *resp) {
    const qry_options *o = req->opts;
    int64_t window_ms = 5 * 60 * 1000;
    sl_str w;
    if (qry_args_get(&req->args, "window", &w) &&
        (pq_parse_duration(w, &window_ms) != 0 || window_ms <= 0 || window_ms > 24 * 3600 * 1000)) {
        qry_resp_error(resp, 400, "window: a duration such as 5m, at most 24h");
        return;
    }
    uint64_t end_ns = req->now_unix_nano, start_ns = end_ns - (uint64_t)window_ms * 1000000u;
    stg_dep_edge *edges;
    stg_dep_service *svcs;
    size_t nedges, nsvcs;
    int rc = stg_deps_get(req->store, req->tenant, start_ns, end_ns, req->arena, &edges, &nedges,
                          &svcs, &nsvcs);
    if (rc != 0) {
        qry_resp_storage_error(resp, rc);
        return;
    }
    json_t *arr = json_array();
    size_t counts[4] = {0};
    static const char *names[4] = {"healthy", "degraded", "down", "unknown"};
    for (size_t i = 0; i < nsvcs; i++) {
        const stg_dep_service *sv = &svcs[i];
        json_t *reasons = json_array();
        json_t *alerts = NULL;
        if (o->firing_alerts != NULL) {
            sl_buf b;
            sl_buf_init(&b, 1u << 20);
            if (o->firing_alerts(o->firing_ud, req->tenant, sv->name, &b) == 0 && b.len > 0) {
                alerts = json_loadb((const char *)b.data, b.len, 0, NULL);
            }
            sl_buf_free(&b);
        }
        if (alerts == NULL) {
            alerts = json_array();
        }
        int status = 0;
        char msg[300];
        uint64_t idle_ns = end_ns > sv->last_seen_unix_nano ? end_ns - sv->last_seen_unix_nano : 0;
        double ratio = sv->stats.calls ? (double)sv->stats.errors / (double)sv->stats.calls : 0;
        if (o->check_failing != NULL &&
            o->check_failing(o->firing_ud, req->tenant, sv->name, msg, sizeof(msg))) {
            status = 2;
            json_array_append_new(reasons, json_string(msg));
        } else if (idle_ns > o->health_down_after_ms * 1000000u) {
            status = 2;
            snprintf(msg, sizeof(msg), "no telemetry for %llus (down after %llus)",
                     (unsigned long long)(idle_ns / 1000000000u),
                     (unsigned long long)(o->health_down_after_ms / 1000));
            json_array_append_new(reasons, json_string(msg));
        } else {
            if (sv->stats.calls > 0 && ratio > o->health_max_error_ratio) {
                status = 1;
                snprintf(msg, sizeof(msg), "error ratio %.4g above %.4g", ratio,
                         o->health_max_error_ratio);
                json_array_append_new(reasons, json_string(msg));
            }
            if (sv->stats.calls > 0 && !isnan(sv->stats.p95_s) &&
                sv->stats.p95_s > o->health_max_p95_s) {
                status = 1;
                snprintf(msg, sizeof(msg), "p95 latency %.4gs above %.4gs", sv->stats.p95_s,
                         o->health_max_p95_s);
                json_array_append_new(reasons, json_string(msg));
            }
            if (json_array_size(alerts) > 0) {
                status = 1;
                snprintf(msg, sizeof(msg), "%zu firing alert(s)", json_array_size(alerts));
                json_array_append_new(reasons, json_string(msg));
            }
            if (status == 0 && sv->stats.calls == 0) {
                status = 3;
                json_array_append_new(reasons,
                                      json_string("no requests in the window (only client or "
                                                  "internal spans)"));
            }
        }
        counts[status]++;
        char seen[40];
        rfc3339_ns(sv->last_seen_unix_nano, seen, sizeof(seen));
        json_t *j = stats_json(&sv->stats, (double)window_ms / 1000);
        json_object_set_new(j, "service", json_string(sv->name));
        json_object_set_new(j, "status", json_string(names[status]));
        json_object_set_new(j, "reasons", reasons);
        json_object_set_new(j, "instances", json_integer(sv->instances));
        json_object_set_new(j, "lastSeen", json_string(seen));
        json_object_set_new(j, "firingAlerts", alerts);
        json_array_append_new(arr, j);
    }
    answer(resp, 200,
           json_pack("{s:{s:f,s:{s:f,s:f,s:f},s:{s:I,s:I,s:I,s:I},s:o}}", "data", "windowSeconds",
                     (double)window_ms / 1000, "thresholds", "maxErrorRatio",
                     o->health_max_error_ratio, "maxP95Seconds", o->health_max_p95_s,
                     "downAfterSeconds", (double)o->health_down_after_ms / 1000, "summary",
                     "healthy", (json_int_t)counts[0], "degraded", (json_int_t)counts[1], "down",
                     (json_int_t)counts[2], "unknown", (json_int_t)counts[3], "services", arr));
}
