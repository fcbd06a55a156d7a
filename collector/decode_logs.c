/*
 * OTLP logs request -> sl_log_record model (see decode_logs.h). It counts
 * before it allocates: one array for all records, one per ResourceLogs for
 * resources, one attribute array per record. Values are converted by the
 * traces decoder's shared helpers (same AnyValue rules for all signals).
 *
 * Invariants: repeated message elements of req are non-NULL (as protobuf-c
 * and col_json_decode produce them); singular message pointers may be NULL.
 *
 * Thread: whichever thread decodes the request (a decode worker).
 */
#include "decode_logs.h"

#include "decode_traces.h"
#include "sl_err.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_rlogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_slogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;

#define DL_MAX_SEVERITY 24

static sl_str dl_view(const char *s) {
    return s != NULL ? (sl_str){s, strlen(s)} : (sl_str){"", 0};
}

/* Why the record is invalid, or NULL. */
static const char *dl_check(const pb_log *l) {
    if (l->trace_id.len != 0 && l->trace_id.len != 16) {
        return "invalid trace_id (must be empty or 16 bytes)";
    }
    if (l->span_id.len != 0 && l->span_id.len != 8) {
        return "invalid span_id (must be empty or 8 bytes)";
    }
    if ((int)l->severity_number < 0 || (int)l->severity_number > DL_MAX_SEVERITY) {
        return "invalid severity_number (must be 0..24)";
    }
    if ((uint64_t)l->n_attributes > UINT32_MAX) {
        return "too many attributes";
    }
    return NULL;
}

/* Fills out from a record that passed dl_check. 0, SL_EDECODE or SL_ENOMEM. */
static int dl_record(sl_arena *a, const pb_log *l, uint64_t now, sl_log_record *out) {
    memset(out, 0, sizeof(*out));
    out->observed_unix_nano = l->observed_time_unix_nano != 0 ? l->observed_time_unix_nano : now;
    out->time_unix_nano = l->time_unix_nano != 0 ? l->time_unix_nano : out->observed_unix_nano;
    out->severity_number = (int32_t)l->severity_number;
    out->severity_text = dl_view(l->severity_text);
    out->event_name = dl_view(l->event_name);
    out->flags = l->flags;
    if (l->trace_id.len == 16) {
        memcpy(out->trace_id, l->trace_id.data, 16);
    }
    if (l->span_id.len == 8) {
        memcpy(out->span_id, l->span_id.data, 8);
    }
    out->dropped_attrs = l->dropped_attributes_count;
    int rc = col_any_value(a, l->body, &out->body);
    if (rc != 0) {
        return rc;
    }
    if (l->n_attributes > 0) {
        out->attrs = sl_arena_alloc(a, l->n_attributes * sizeof(sl_attr));
        if (out->attrs == NULL) {
            return SL_ENOMEM;
        }
        out->nattrs = (uint32_t)l->n_attributes;
        rc = col_kv_attrs(a, l->attributes, l->n_attributes, out->attrs);
    }
    return rc;
}

int col_logs_to_model(
    const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req, sl_arena *a,
    uint64_t now_unix_nano, sl_log_record **recs, size_t *nrecs, size_t *rejected, char *err,
    size_t err_size) {
    assert(req != NULL && a != NULL && recs != NULL && nrecs != NULL && rejected != NULL);
    sl_log_record *out = NULL;
    sl_resource *resources = NULL;
    size_t kept = 0, bad = 0, idx = 0, total = 0;
    int rc = 0;
    if (err == NULL) {
        err_size = 0;
    }
    if (err_size > 0) {
        err[0] = '\0';
    }
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        for (size_t s = 0; s < req->resource_logs[r]->n_scope_logs; s++) {
            total += req->resource_logs[r]->scope_logs[s]->n_log_records;
        }
    }
    if (total == 0) {
        goto out;
    }
    out = sl_arena_alloc(a, total * sizeof(*out));
    resources = sl_arena_alloc(a, req->n_resource_logs * sizeof(*resources));
    if (out == NULL || resources == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const pb_rlogs *rl = req->resource_logs[r];
        const char *res_bad = NULL;
        rc = col_pb_resource(a, rl->resource, &resources[r]);
        if (rc == SL_EDECODE) {
            res_bad = "resource attribute value nested too deeply";
            rc = 0;
        } else if (rc != 0) {
            goto out;
        }
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const pb_slogs *sl = rl->scope_logs[s];
            sl_str scope_name = dl_view(sl->scope != NULL ? sl->scope->name : NULL);
            sl_str scope_version = dl_view(sl->scope != NULL ? sl->scope->version : NULL);
            for (size_t k = 0; k < sl->n_log_records; k++, idx++) {
                const pb_log *pl = sl->log_records[k];
                const char *why = res_bad != NULL ? res_bad : dl_check(pl);
                if (why == NULL) {
                    sl_log_record *lr = &out[kept];
                    rc = dl_record(a, pl, now_unix_nano, lr);
                    if (rc == SL_EDECODE) {
                        why = "body or attribute value nested too deeply";
                        rc = 0;
                    } else if (rc != 0) {
                        goto out;
                    } else {
                        lr->resource = &resources[r];
                        lr->scope_name = scope_name;
                        lr->scope_version = scope_version;
                        kept++;
                    }
                }
                if (why != NULL) {
                    if (bad == 0 && err_size > 0) {
                        snprintf(err, err_size, "log record %zu: %s", idx, why);
                    }
                    bad++;
                }
            }
        }
    }
out:
    if (rc == 0) {
        *recs = kept > 0 ? out : NULL;
        *nrecs = kept;
        *rejected = bad;
    } else if (err_size > 0) {
        snprintf(err, err_size, "out of memory converting log records (arena limit reached)");
    }
    return rc;
}
