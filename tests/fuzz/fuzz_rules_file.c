/*
 * Fuzz target: the rule-file loader (YAML, rule checks, PromQL parse of each
 * expr, template checks) and the template expander over the raw input. None
 * may crash, leak or hang.
 */
#include "alerting.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    al_ruleset rs = {0};
    sl_buf errs;
    sl_buf_init(&errs, 1u << 20);
    al_rules_load_buffer("fuzz.yml", (const char *)data, size, &rs, &errs);
    al_ruleset_clear(&rs);
    sl_buf_free(&errs);

    char *tmpl = malloc(size + 1);
    if (tmpl == NULL) {
        return 0;
    }
    memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    char n1[] = "instance", v1[] = "a:9090", n2[] = "service_name", v2[] = "cart";
    al_kv labels[2] = {{n1, v1}, {n2, v2}};
    al_tmpl_data d = {.labels = labels, .nlabels = 2, .value = 0.1234, .external_url = "x"};
    sl_buf out;
    sl_buf_init(&out, 1u << 20);
    char err[256];
    al_template_expand(tmpl, &d, &out, err, sizeof(err));
    sl_buf_free(&out);
    free(tmpl);
    return 0;
}
