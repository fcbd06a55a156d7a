/*
 * The metrics read path (storage.h, Prometheus data model). Placeholder
 * until the metrics engine lands: no metrics are stored yet, so every
 * selection is empty. Arguments are still validated, so that callers see
 * the same errors they will see later.
 */
#include "storage_int.h"

#include "sl_err.h"
#include "sl_regex.h"

static int check_matchers(const stg_matcher *m, size_t nm) {
    for (size_t i = 0; i < nm; i++) {
        if (m[i].op == STG_MATCH_RE || m[i].op == STG_MATCH_NRE) {
            sl_regex *re;
            char err[160];
            int rc = sl_regex_compile(m[i].value, &re, err, sizeof(err));
            if (rc != 0) {
                return rc;
            }
            sl_regex_free(re);
        } else if (m[i].op != STG_MATCH_EQ && m[i].op != STG_MATCH_NE) {
            return SL_EINVAL;
        }
    }
    return 0;
}

int stg_select_series(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                      int64_t mint_ms, int64_t maxt_ms, stg_series_cb cb, void *ud) {
    (void)s, (void)tenant, (void)mint_ms, (void)maxt_ms, (void)cb, (void)ud;
    return check_matchers(m, nm);
}

int stg_label_names(stg_store *s, const char *tenant, const stg_matcher *m, size_t nm,
                    int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud) {
    (void)s, (void)tenant, (void)mint_ms, (void)maxt_ms, (void)cb, (void)ud;
    return check_matchers(m, nm);
}

int stg_label_values(stg_store *s, const char *tenant, sl_str name, const stg_matcher *m, size_t nm,
                     int64_t mint_ms, int64_t maxt_ms, stg_str_cb cb, void *ud) {
    (void)s, (void)tenant, (void)name, (void)mint_ms, (void)maxt_ms, (void)cb, (void)ud;
    return check_matchers(m, nm);
}

int stg_metric_metadata(stg_store *s, const char *tenant, sl_str metric, stg_meta_cb cb, void *ud) {
    (void)s, (void)tenant, (void)metric, (void)cb, (void)ud;
    return 0;
}
