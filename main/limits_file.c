/*
 * The tenant limits file (--limits FILE), read with libyaml:
 *
 *   defaults:
 *     ingestion_rate_spans: 50000      # per second; 0 = unlimited
 *     ingestion_rate_logs: 20000
 *     ingestion_rate_samples: 100000
 *     ingestion_burst_seconds: 2       # bucket = rate x this (default 1)
 *     max_attributes_per_item: 128
 *     max_attribute_value_length: 4096
 *     max_active_series: 100000
 *     retention: 7d                    # all signals; or per signal:
 *     retention_traces: 3d
 *     retention_logs: 14d
 *     retention_metrics: 30d
 *   tenants:
 *     acme:
 *       ingestion_rate_spans: 1000
 *
 * A tenant's settings start from the defaults (wherever they appear in the
 * file). Unknown keys and bad values are errors with their line. Start-up and
 * SIGHUP (main thread).
 */
#include "limits_file.h"

#include "config_file.h"

#include "sl_auth.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct pending {
    char tenant[65];
    char key[65];
    char value[64];
    int line;
} pending;

static int apply(sl_tenant_limits *t, const char *key, const char *val, const char *path, int line,
                 char *err, size_t errcap) {
    static const char *const rates[] = {"ingestion_rate_spans", "ingestion_rate_logs",
                                        "ingestion_rate_samples"};
    static const char *const rets[] = {"retention_traces", "retention_logs", "retention_metrics"};
    char *end = NULL;
    for (int i = 0; i < SL_LIMITS_NSIGNALS; i++) {
        if (strcmp(key, rates[i]) == 0) {
            double v = strtod(val, &end);
            if (end == val || *end != '\0' || !isfinite(v) || v < 0) {
                goto bad;
            }
            t->rate[i] = v;
            return 0;
        }
        if (strcmp(key, rets[i]) == 0) {
            if (parse_duration(val, &t->retention_ns[i]) != 0) {
                goto bad;
            }
            return 0;
        }
    }
    if (strcmp(key, "retention") == 0) {
        uint64_t ns;
        if (parse_duration(val, &ns) != 0) {
            goto bad;
        }
        for (int i = 0; i < SL_LIMITS_NSIGNALS; i++) {
            t->retention_ns[i] = ns;
        }
        return 0;
    }
    if (strcmp(key, "ingestion_burst_seconds") == 0) {
        double v = strtod(val, &end);
        if (end == val || *end != '\0' || !isfinite(v) || v <= 0 || v > 3600) {
            goto bad;
        }
        t->burst_seconds = v;
        return 0;
    }
    uint64_t u;
    if (sl_parse_u64(sl_str_c(val), &u) != 0) {
        if (strcmp(key, "max_attributes_per_item") == 0 ||
            strcmp(key, "max_attribute_value_length") == 0 ||
            strcmp(key, "max_active_series") == 0) {
            goto bad;
        }
    } else if (strcmp(key, "max_attributes_per_item") == 0 && u <= UINT32_MAX) {
        t->max_attributes = (uint32_t)u;
        return 0;
    } else if (strcmp(key, "max_attribute_value_length") == 0 && u <= UINT32_MAX) {
        t->max_attr_value_length = (uint32_t)u;
        return 0;
    } else if (strcmp(key, "max_active_series") == 0) {
        t->max_active_series = u;
        return 0;
    }
    snprintf(err, errcap, "%s:%d: unknown limit '%s'", path, line, key);
    return SL_EINVAL;
bad:
    snprintf(err, errcap, "%s:%d: invalid value '%s' for %s", path, line, val, key);
    return SL_EINVAL;
}

int limits_load(const char *path, sl_limits **out, char *err, size_t errcap) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -errno;
    }
    yaml_parser_t parser;
    yaml_event_t ev;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    pending *items = NULL;
    size_t n = 0, cap = 0;
    /* Keys above the current scalar: [0] section, [1] tenant. */
    char keys[3][65] = {"", "", ""};
    int depth = 0;         /* mappings open */
    bool want_key = false; /* next scalar is a key */
    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errcap, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "YAML syntax error");
            rc = SL_EINVAL;
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_MAPPING_START_EVENT:
            if (depth >= 3 || (depth > 0 && want_key)) {
                snprintf(err, errcap, "%s:%d: unexpected mapping", path, line);
                rc = SL_EINVAL;
            }
            depth++;
            want_key = true;
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            want_key = true;
            break;
        case YAML_SCALAR_EVENT: {
            const char *text = (const char *)ev.data.scalar.value;
            size_t len = ev.data.scalar.length;
            if (depth == 0) {
                if (len != 0) {
                    snprintf(err, errcap, "%s:%d: expected defaults: and tenants:", path, line);
                    rc = SL_EINVAL;
                }
            } else if (want_key) {
                if (len > 64) {
                    snprintf(err, errcap, "%s:%d: key too long", path, line);
                    rc = SL_EINVAL;
                    break;
                }
                memcpy(keys[depth - 1], text, len + 1);
                want_key = false;
                if (depth == 1 && strcmp(text, "defaults") != 0 && strcmp(text, "tenants") != 0) {
                    snprintf(err, errcap, "%s:%d: expected defaults: or tenants:, not %s", path,
                             line, text);
                    rc = SL_EINVAL;
                } else if (depth == 2 && strcmp(keys[0], "tenants") == 0 &&
                           !sl_tenant_valid((sl_str){text, len})) {
                    snprintf(err, errcap, "%s:%d: invalid tenant id '%s'", path, line, text);
                    rc = SL_EINVAL;
                }
            } else {
                bool in_defaults = depth == 2 && strcmp(keys[0], "defaults") == 0;
                bool in_tenant = depth == 3 && strcmp(keys[0], "tenants") == 0;
                if (!in_defaults && !in_tenant) {
                    snprintf(err, errcap, "%s:%d: misplaced value", path, line);
                    rc = SL_EINVAL;
                    break;
                }
                if (len >= sizeof(items->value) ||
                    sl_array_grow(&items, &cap, n + 1, sizeof(*items)) != 0) {
                    snprintf(err, errcap, "%s:%d: value too long", path, line);
                    rc = SL_EINVAL;
                    break;
                }
                pending *p = &items[n++];
                snprintf(p->tenant, sizeof(p->tenant), "%s", in_tenant ? keys[1] : "");
                snprintf(p->key, sizeof(p->key), "%s", keys[depth - 1]);
                memcpy(p->value, text, len + 1);
                p->line = line;
                want_key = true;
            }
            break;
        }
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        default:
            snprintf(err, errcap, "%s:%d: lists, anchors and aliases are not supported", path,
                     line);
            rc = SL_EINVAL;
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    sl_limits *l = NULL;
    if (rc == 0 && (rc = sl_limits_new(&l)) == 0) {
        /* Defaults first, wherever they were written; then the tenants. */
        sl_tenant_limits d;
        sl_limits_lookup(NULL, "", &d);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (items[i].tenant[0] == '\0') {
                rc = apply(&d, items[i].key, items[i].value, path, items[i].line, err, errcap);
            }
        }
        sl_limits_set_defaults(l, &d);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (items[i].tenant[0] != '\0') {
                sl_tenant_limits *t = sl_limits_tenant(l, items[i].tenant);
                rc = t == NULL
                         ? SL_ENOMEM
                         : apply(t, items[i].key, items[i].value, path, items[i].line, err, errcap);
            }
        }
    }
    free(items);
    if (rc != 0) {
        sl_limits_free(l);
        return rc;
    }
    *out = l;
    return 0;
}
