/*
 * Alerting unit tests: templates (Prometheus's functions and Go's number
 * formatting), rule-file checks with line numbers, and the evaluator's state
 * machine (pending, firing, keep_firing_for, resolved; ALERTS and
 * ALERTS_FOR_STATE written back; recording rules; state across a reload and
 * a restart) over the in-memory querier.
 */
#include "alerting.h"
#include "promql/memq.h"
#include "sl_test.h"

#include "sl_err.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_n1[] = "service_name", g_v1[] = "cart", g_n2[] = "instance", g_v2[] = "a:80";
static al_kv g_labels[2] = {{g_n2, g_v2}, {g_n1, g_v1}};

static const char *expand(const char *tmpl, double v) {
    static char out[512];
    al_tmpl_data d = {.labels = g_labels, .nlabels = 2, .value = v, .external_url = "http://x"};
    sl_buf b;
    sl_buf_init(&b, 4096);
    char err[256];
    int rc = al_template_expand(tmpl, &d, &b, err, sizeof(err));
    if (rc != 0) {
        snprintf(out, sizeof(out), "ERR %s", err);
    } else {
        snprintf(out, sizeof(out), "%.*s", (int)b.len, b.len ? (const char *)b.data : "");
    }
    sl_buf_free(&b);
    return out;
}

static void test_templates(void) {
    ASSERT_STR_EQ(expand("{{ $labels.service_name }} at {{ $value }}", 0.25), "cart at 0.25");
    ASSERT_STR_EQ(expand("{{ .Labels.instance }}/{{ .Value }}", 1e6), "a:80/1e+06");
    ASSERT_STR_EQ(expand("{{ $value }}", 123456), "123456");
    ASSERT_STR_EQ(expand("{{ $value | humanize }}", 1234567), "1.235M");
    ASSERT_STR_EQ(expand("{{ $value | humanize }}", 0.0123), "12.3m");
    ASSERT_STR_EQ(expand("{{ humanize1024 $value }}", 2048), "2ki");
    ASSERT_STR_EQ(expand("{{ $value | humanizePercentage }}", 0.1234), "12.34%");
    ASSERT_STR_EQ(expand("{{ $value | humanizeDuration }}", 3725), "1h 2m 5s");
    ASSERT_STR_EQ(expand("{{ $value | humanizeDuration }}", 0.25), "250ms");
    ASSERT_STR_EQ(expand("{{ printf \"%.2f\" $value }}", 2.0 / 3), "0.67");
    ASSERT_STR_EQ(expand("{{ printf \"%s=%d\" $labels.service_name 42 }}", 0), "cart=42");
    ASSERT_STR_EQ(expand("{{ $labels.service_name | toUpper }}", 0), "CART");
    ASSERT_STR_EQ(expand("{{ $labels.missing }}", 0), "<no value>");
    ASSERT_STR_EQ(expand("a  {{- /* note */ -}}  b", 0), "ab");
    ASSERT_STR_EQ(expand("{{ $value }}", NAN), "NaN");
    ASSERT_STR_EQ(expand("{{ $externalURL }}", 0), "http://x");
    ASSERT_STR_EQ(expand("{{ $value | nosuch }}", 0), "ERR 1:13: function \"nosuch\" not defined");
    ASSERT_STR_EQ(expand("x\n{{ if $value }}", 0),
                  "ERR 2:4: action \"if\" is not supported in Sightline's templates");
    ASSERT_STR_EQ(expand("{{ $value ", 0), "ERR 1:1: unclosed action");
    ASSERT_STR_EQ(expand("{{ $lab }}", 0), "ERR 1:4: undefined variable or field \"$lab\"");
}

static int load(const char *text, al_ruleset *rs, sl_buf *errs) {
    return al_rules_load_buffer("r.yml", text, strlen(text), rs, errs);
}

static void test_rules_file(void) {
    al_ruleset rs = {0};
    sl_buf errs;
    sl_buf_init(&errs, 1 << 16);
    ASSERT_EQ(load("groups:\n"
                   "- name: g\n"
                   "  interval: 30s\n"
                   "  rules:\n"
                   "  - record: job:x:sum\n"
                   "    expr: sum by (job) (x)\n"
                   "  - alert: Down\n"
                   "    expr: up == 0\n"
                   "    for: 5m\n"
                   "    keep_firing_for: 1m\n"
                   "    labels: {severity: page}\n"
                   "    annotations:\n"
                   "      summary: '{{ $labels.instance }} down'\n",
                   &rs, &errs),
              0);
    ASSERT_EQ(rs.ngroups, 1);
    ASSERT_EQ(rs.groups[0].interval_ms, 30000);
    ASSERT_EQ(rs.groups[0].nrules, 2);
    ASSERT_TRUE(!rs.groups[0].rules[0].alert);
    ASSERT_STR_EQ(rs.groups[0].rules[1].name, "Down");
    ASSERT_EQ(rs.groups[0].rules[1].for_ms, 300000);
    ASSERT_EQ(rs.groups[0].rules[1].keep_firing_for_ms, 60000);
    ASSERT_EQ(rs.groups[0].rules[1].line, 7);
    ASSERT_STR_EQ(rs.groups[0].rules[1].annotations[0].value, "{{ $labels.instance }} down");
    al_ruleset_clear(&rs);

    errs.len = 0;
    ASSERT_EQ(load("groups:\n"
                   "- name: g\n"
                   "  rules:\n"
                   "  - alert: A\n"
                   "    expr: rate(x[5m]\n"
                   "  - record: r\n"
                   "    expr: x\n"
                   "    annotations: {a: b}\n",
                   &rs, &errs),
              SL_EINVAL);
    ASSERT_EQ(rs.ngroups, 0);
    sl_buf_putc(&errs, 0);
    const char *e = (const char *)errs.data;
    ASSERT_TRUE(strstr(e, "r.yml:5: group \"g\", rule 1, \"A\": could not parse expression") !=
                NULL);
    ASSERT_TRUE(strstr(e, "r.yml:8: group \"g\", rule 2, \"r\": invalid field 'annotations' in "
                          "recording rule") != NULL);

    errs.len = 0;
    ASSERT_EQ(
        load("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n  bad: 1\n", &rs, &errs),
        SL_EINVAL);
    sl_buf_putc(&errs, 0);
    ASSERT_TRUE(strstr((const char *)errs.data,
                       "r.yml:6: field bad not found in type rulefmt.RuleGroup") != NULL);
    errs.len = 0;
    ASSERT_EQ(load("groups: [\n", &rs, &errs), SL_EINVAL);
    sl_buf_putc(&errs, 0);
    ASSERT_TRUE(strstr((const char *)errs.data, "r.yml:2: yaml:") != NULL);
    errs.len = 0;
    ASSERT_EQ(load("", &rs, &errs), 0);
    ASSERT_EQ(rs.ngroups, 0);
    sl_buf_free(&errs);
}

/* --- the state machine ------------------------------------------------------- */

typedef struct sink {
    int alerts_firing, alerts_pending, for_state, recorded;
    double for_state_value, recorded_value;
} sink;

static int mem_select(void *ud, const char *tenant, const pq_matcher *m, size_t nm, int64_t mint,
                      int64_t maxt, pq_series_cb cb, void *cb_ud) {
    (void)tenant;
    pq_querier q = memq_querier(ud);
    return q.select(q.ud, m, nm, mint, maxt, cb, cb_ud);
}

static sink g_sink;

static int mem_append(void *ud, const char *tenant, const pq_label *const *labels,
                      const size_t *nlabels, const double *values, size_t n, int64_t t_ms) {
    (void)ud;
    (void)tenant;
    (void)t_ms;
    for (size_t i = 0; i < n; i++) {
        sl_str name = {0}, state = {0};
        for (size_t k = 0; k < nlabels[i]; k++) {
            if (sl_str_eqc(labels[i][k].name, "__name__")) {
                name = labels[i][k].value;
            } else if (sl_str_eqc(labels[i][k].name, "alertstate")) {
                state = labels[i][k].value;
            }
        }
        if (sl_str_eqc(name, "ALERTS")) {
            g_sink.alerts_firing += sl_str_eqc(state, "firing");
            g_sink.alerts_pending += sl_str_eqc(state, "pending");
        } else if (sl_str_eqc(name, "ALERTS_FOR_STATE")) {
            g_sink.for_state++;
            g_sink.for_state_value = values[i];
        } else if (sl_str_eqc(name, "errors:ratio")) {
            g_sink.recorded++;
            g_sink.recorded_value = values[i];
        }
    }
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static bool json_has(al_engine *e, const char *needle) {
    sl_buf b;
    sl_buf_init(&b, 1 << 20);
    al_engine_alerts_json(e, "default", &b);
    sl_buf_putc(&b, 0);
    bool found = strstr((const char *)b.data, needle) != NULL;
    sl_buf_free(&b);
    return found;
}

static void test_state_machine(void) {
    char dir[] = "/tmp/sl-alert-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char rules[256], state[256];
    snprintf(rules, sizeof(rules), "%s/r.yml", dir);
    snprintf(state, sizeof(state), "%s/state.json", dir);
    write_file(rules, "groups:\n"
                      "- name: g\n"
                      "  interval: 10s\n"
                      "  rules:\n"
                      "  - record: errors:ratio\n"
                      "    expr: err / total\n"
                      "  - alert: HighErrors\n"
                      "    expr: err / total > 0.1\n"
                      "    for: 20s\n"
                      "    keep_firing_for: 15s\n"
                      "    labels: {severity: page}\n"
                      "    annotations: {summary: '{{ $labels.svc }} at {{ $value }}'}\n");
    memq *q = memq_create();
    /* 10 s samples: errors at 50% from t=100 s to t=160 s, then none */
    for (int64_t t = 0; t <= 400; t += 10) {
        memq_add(q, "__name__=total,svc=cart", t * 1000, 100);
        memq_add(q, "__name__=err,svc=cart", t * 1000, t >= 100 && t <= 160 ? 50 : 0);
    }
    al_engine_options o;
    al_engine_options_init(&o);
    o.rules_dir = dir;
    o.state_file = state;
    o.source = (al_source){mem_select, mem_append, q};
    al_engine *e = NULL;
    sl_buf errs;
    sl_buf_init(&errs, 1 << 16);
    ASSERT_EQ(al_engine_create(&o, &e, &errs), 0);
    g_sink = (sink){0};
    al_engine_eval_due(e, 90000);
    ASSERT_EQ(g_sink.recorded, 1);
    ASSERT_DBL_EQ(g_sink.recorded_value, 0);
    ASSERT_TRUE(!json_has(e, "HighErrors"));
    al_engine_eval_due(e, 100000);
    ASSERT_TRUE(json_has(e, "\"state\":\"pending\""));
    ASSERT_EQ(g_sink.alerts_pending, 1);
    ASSERT_EQ(g_sink.for_state, 1);
    ASSERT_DBL_EQ(g_sink.for_state_value, 100);
    ASSERT_TRUE(json_has(e, "\"summary\":\"cart at 0.5\""));
    al_engine_eval_due(e, 110000);
    ASSERT_TRUE(json_has(e, "\"state\":\"pending\""));
    al_engine_eval_due(e, 120000); /* 20 s after activeAt: firing */
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));
    ASSERT_EQ(g_sink.alerts_firing, 1);
    ASSERT_TRUE(json_has(e, "\"severity\":\"page\""));

    /* a restart keeps the firing alert */
    al_engine_destroy(e);
    e = NULL;
    ASSERT_EQ(al_engine_create(&o, &e, &errs), 0);
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));
    ASSERT_TRUE(json_has(e, "\"activeAt\":\"1970-01-01T00:01:40.000Z\""));

    /* a reload keeps it too */
    ASSERT_EQ(al_engine_reload(e, &errs), 0);
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));
    /* a broken file is refused and the old rules stay */
    write_file(rules, "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: (\n");
    errs.len = 0;
    ASSERT_EQ(al_engine_reload(e, &errs), SL_EINVAL);
    sl_buf_putc(&errs, 0);
    ASSERT_TRUE(strstr((const char *)errs.data, "r.yml:5:") != NULL);
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));

    /* errors stop at 160 s; keep_firing_for holds it 15 s more */
    al_engine_eval_due(e, 170000);
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));
    ASSERT_TRUE(json_has(e, "keepFiringSince"));
    al_engine_eval_due(e, 180000);
    ASSERT_TRUE(json_has(e, "\"state\":\"firing\""));
    g_sink = (sink){0};
    al_engine_eval_due(e, 190000); /* 20 s >= 15 s: resolved */
    ASSERT_TRUE(!json_has(e, "HighErrors"));
    ASSERT_EQ(g_sink.alerts_firing, 0);

    sl_buf b;
    sl_buf_init(&b, 1 << 20);
    ASSERT_EQ(al_engine_rules_json(e, "default", NULL, &b), 0);
    sl_buf_putc(&b, 0);
    ASSERT_TRUE(strstr((const char *)b.data, "\"type\":\"recording\"") != NULL);
    ASSERT_TRUE(strstr((const char *)b.data, "\"health\":\"ok\"") != NULL);
    ASSERT_TRUE(strstr((const char *)b.data, "\"duration\":20") != NULL);
    sl_buf_free(&b);

    al_engine_destroy(e);
    memq_destroy(q);
    sl_buf_free(&errs);
    unlink(rules);
    unlink(state);
    rmdir(dir);
}

int main(void) {
    RUN(test_templates);
    RUN(test_rules_file);
    RUN(test_state_machine);
    return SL_TEST_RESULT();
}
