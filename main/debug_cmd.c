/*
 * `sightline debug series|metadata --data-dir D [--tenant T] [MATCHER...]`:
 * prints the stored metric series (one JSON object per line: labels and
 * [t_ms, "value"] samples) or the metric metadata of a data directory, read
 * through the storage read path (WAL and windows). A diagnostic and test aid,
 * not a query API: the server need not run, and when it does the dump is a
 * snapshot (LMDB lets several processes read).
 */
#include "debug_cmd.h"

#include "storage.h"

#include "sl_err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_json_str(sl_str s) {
    putchar('"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static int print_series(void *ud, const stg_label *l, size_t nl, const stg_sample *s, size_t n) {
    (void)ud;
    printf("{\"labels\":{");
    for (size_t i = 0; i < nl; i++) {
        printf(i > 0 ? "," : "");
        put_json_str(l[i].name);
        putchar(':');
        put_json_str(l[i].value);
    }
    printf("},\"samples\":[");
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &s[i].v, 8);
        if (bits == 0x7ff0000000000002ull) {
            printf("%s[%" PRId64 ",\"stale\"]", i > 0 ? "," : "", s[i].t_ms);
        } else if (isnan(s[i].v) || isinf(s[i].v)) {
            printf("%s[%" PRId64 ",\"%s\"]", i > 0 ? "," : "", s[i].t_ms,
                   isnan(s[i].v) ? "NaN"
                   : s[i].v > 0  ? "+Inf"
                                 : "-Inf");
        } else {
            printf("%s[%" PRId64 ",\"%.17g\"]", i > 0 ? "," : "", s[i].t_ms, s[i].v);
        }
    }
    printf("]}\n");
    return 0;
}

static int print_meta(void *ud, const stg_metric_meta *m) {
    (void)ud;
    printf("{\"metric\":");
    put_json_str(m->metric);
    printf(",\"type\":");
    put_json_str(m->type);
    printf(",\"help\":");
    put_json_str(m->help);
    printf(",\"unit\":");
    put_json_str(m->unit);
    printf("}\n");
    return 0;
}

/* name=value, name!=value, name=~re, name!~re. */
static int parse_matcher(const char *arg, stg_matcher *m) {
    const char *op = strpbrk(arg, "=!");
    if (op == NULL || op == arg) {
        return SL_EINVAL;
    }
    m->name = (sl_str){arg, (size_t)(op - arg)};
    if (op[0] == '=' && op[1] == '~') {
        m->op = STG_MATCH_RE;
        m->value = sl_str_c(op + 2);
    } else if (op[0] == '!' && op[1] == '~') {
        m->op = STG_MATCH_NRE;
        m->value = sl_str_c(op + 2);
    } else if (op[0] == '!' && op[1] == '=') {
        m->op = STG_MATCH_NE;
        m->value = sl_str_c(op + 2);
    } else if (op[0] == '=') {
        m->op = STG_MATCH_EQ;
        m->value = sl_str_c(op + 1);
    } else {
        return SL_EINVAL;
    }
    return 0;
}

int sl_debug_main(int argc, char **argv) {
    const char *dir = NULL, *tenant = "default";
    stg_matcher m[32];
    size_t nm = 0;
    if (argc < 2 || (strcmp(argv[1], "series") != 0 && strcmp(argv[1], "metadata") != 0)) {
        fprintf(stderr, "usage: sightline debug series|metadata --data-dir DIR [--tenant T] "
                        "[name=value|name!=value|name=~re|name!~re ...]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc) {
            tenant = argv[++i];
        } else if (nm < 32 && parse_matcher(argv[i], &m[nm]) == 0) {
            nm++;
        } else {
            fprintf(stderr, "sightline debug: bad argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "sightline debug: --data-dir is required\n");
        return 2;
    }
    stg_options o;
    stg_options_init(&o);
    o.data_dir = dir;
    o.background = 0;
    stg_store *s;
    int rc = stg_open(&o, &s);
    if (rc != 0) {
        fprintf(stderr, "sightline debug: cannot open %s: %s\n", dir, sl_strerror(rc));
        return 1;
    }
    if (strcmp(argv[1], "series") == 0) {
        rc = stg_select_series(s, tenant, m, nm, INT64_MIN, INT64_MAX, print_series, NULL);
    } else {
        rc = stg_metric_metadata(s, tenant, (sl_str){"", 0}, print_meta, NULL);
    }
    stg_close(s);
    if (rc != 0) {
        fprintf(stderr, "sightline debug: %s\n", sl_strerror(rc));
        return 1;
    }
    return 0;
}
