/*
 * Rule files: Prometheus's rule-file YAML read with libyaml's document loader
 * and checked the way promtool checks it. Every problem is reported with its
 * line, and checking goes on after the first one so that one run shows them
 * all. A file is all or nothing: its groups join the ruleset only when it has
 * no error. Runs on the thread that loads (start, `rules check`, reload).
 *
 * Aliases are resolved by libyaml without copying, so a hostile file could
 * make the walk revisit a node many times; the walk is bounded by MAX_RULES
 * and MAX_ITEMS instead of by the file's size.
 */
#include "alerting.h"

#include "promql.h"
#include "sl_err.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_RULES 100000
#define MAX_ITEMS 1000 /* labels or annotations per rule */
#define MAX_FILE_SIZE (64u << 20)

typedef struct loader {
    const char *file;
    yaml_document_t *doc;
    sl_buf *errs;
    int nerrors;
    size_t nrules;
    bool oom;
} loader;

static void report(loader *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(loader *l, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    l->nerrors++;
    if (l->errs != NULL && l->nerrors <= 1000) {
        sl_buf_printf(l->errs, "%s:%d: %s\n", l->file, line, msg);
    }
}

static int node_line(const yaml_node_t *n) {
    return n ? (int)n->start_mark.line + 1 : 0;
}

static yaml_node_t *node(loader *l, int idx) {
    return yaml_document_get_node(l->doc, idx);
}

static const char *scalar(const yaml_node_t *n) {
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *dup_or_oom(loader *l, const char *s) {
    char *d = strdup(s ? s : "");
    if (d == NULL) {
        l->oom = true;
    }
    return d;
}

static bool valid_label_name(const char *s) {
    if (*s == '\0' || !(isalpha((unsigned char)*s) || *s == '_')) {
        return false;
    }
    for (s++; *s != '\0'; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_')) {
            return false;
        }
    }
    return true;
}

static bool valid_metric_name(const char *s) {
    if (*s == '\0' || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':')) {
        return false;
    }
    for (s++; *s != '\0'; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':')) {
            return false;
        }
    }
    return true;
}

static int duration(const char *s, int64_t *ms) {
    return pq_parse_duration(sl_str_c(s), ms);
}

static void kv_free(al_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static void rule_free(al_rule *r) {
    free(r->name);
    free(r->expr);
    kv_free(r->labels, r->nlabels);
    kv_free(r->annotations, r->nannotations);
}

static void group_free(al_group *g) {
    for (size_t i = 0; i < g->nrules; i++) {
        rule_free(&g->rules[i]);
    }
    free(g->rules);
    free(g->name);
    free(g->file);
}

/* A mapping of strings to strings (labels or annotations); what = "label"
 * or "annotation". Templates are checked to expand. */
static void load_kv(loader *l, yaml_node_t *map, const char *ctx, const char *what, al_kv **out,
                    size_t *nout) {
    if (map->type == YAML_SCALAR_NODE && map->data.scalar.length == 0) {
        return; /* `labels:` with nothing after it */
    }
    if (map->type != YAML_MAPPING_NODE) {
        report(l, node_line(map), "%s: %ss must be a mapping of names to values", ctx, what);
        return;
    }
    size_t cap = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        const char *ks = scalar(k), *vs = scalar(v);
        if (ks == NULL || vs == NULL) {
            report(l, node_line(k), "%s: %s names and values must be strings", ctx, what);
            continue;
        }
        if (!valid_label_name(ks)) {
            report(l, node_line(k), "%s: invalid %s name: %s", ctx, what, ks);
            continue;
        }
        char terr[400];
        if (al_template_check(vs, terr, sizeof(terr)) != 0) {
            report(l, node_line(v), "%s: %s %s: template: %s", ctx, what, ks, terr);
            continue;
        }
        if (*nout >= MAX_ITEMS) {
            report(l, node_line(k), "%s: more than %d %ss", ctx, MAX_ITEMS, what);
            return;
        }
        for (size_t i = 0; i < *nout; i++) {
            if (strcmp((*out)[i].name, ks) == 0) {
                report(l, node_line(k), "%s: %s %s is repeated", ctx, what, ks);
            }
        }
        if (sl_array_grow(out, &cap, *nout + 1, sizeof(al_kv)) != 0) {
            l->oom = true;
            return;
        }
        (*out)[*nout] = (al_kv){dup_or_oom(l, ks), dup_or_oom(l, vs)};
        (*nout)++;
    }
}

static void load_rule(loader *l, const char *group, size_t index, yaml_node_t *n, al_rule *r) {
    char ctx[400];
    snprintf(ctx, sizeof(ctx), "group \"%s\", rule %zu", group, index + 1);
    r->line = node_line(n);
    if (n->type != YAML_MAPPING_NODE) {
        report(l, r->line, "%s: a rule must be a mapping", ctx);
        return;
    }
    yaml_node_t *alert = NULL, *record = NULL, *expr = NULL, *fr = NULL, *kff = NULL,
                *labels = NULL, *annotations = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        const char *ks = scalar(k);
        yaml_node_t **slot = NULL;
        if (ks == NULL) {
            report(l, node_line(k), "%s: keys must be strings", ctx);
            continue;
        }
        if (strcmp(ks, "alert") == 0) {
            slot = &alert;
        } else if (strcmp(ks, "record") == 0) {
            slot = &record;
        } else if (strcmp(ks, "expr") == 0) {
            slot = &expr;
        } else if (strcmp(ks, "for") == 0) {
            slot = &fr;
        } else if (strcmp(ks, "keep_firing_for") == 0) {
            slot = &kff;
        } else if (strcmp(ks, "labels") == 0) {
            slot = &labels;
        } else if (strcmp(ks, "annotations") == 0) {
            slot = &annotations;
        } else {
            report(l, node_line(k), "%s: field %s not found in type rulefmt.Rule", ctx, ks);
            continue;
        }
        if (*slot != NULL) {
            report(l, node_line(k), "%s: field %s is repeated", ctx, ks);
        }
        *slot = v;
    }
    const char *name = scalar(alert ? alert : record);
    if (name != NULL) {
        snprintf(ctx, sizeof(ctx), "group \"%s\", rule %zu, \"%s\"", group, index + 1, name);
    }
    if (alert == NULL && record == NULL) {
        report(l, r->line, "%s: one of 'record' or 'alert' must be set", ctx);
        return;
    }
    if (alert != NULL && record != NULL) {
        report(l, r->line, "%s: only one of 'record' and 'alert' must be set", ctx);
        return;
    }
    r->alert = alert != NULL;
    if (name == NULL || *name == '\0') {
        report(l, node_line(alert ? alert : record), "%s: %s name must be a non-empty string", ctx,
               r->alert ? "alert" : "record");
    } else if (!r->alert && !valid_metric_name(name)) {
        report(l, node_line(record), "%s: invalid recording rule name: %s", ctx, name);
    }
    r->name = dup_or_oom(l, name);
    const char *es = scalar(expr);
    if (expr == NULL || es == NULL || *es == '\0') {
        report(l, expr ? node_line(expr) : r->line, "%s: field 'expr' must be set in rule", ctx);
    } else {
        pq_query *q = NULL;
        pq_error perr = {0};
        int prc = pq_parse(sl_str_c(es), &q, &perr);
        if (prc == SL_ENOMEM) {
            l->oom = true;
        } else if (prc != 0) {
            report(l, node_line(expr), "%s: could not parse expression: %s", ctx, perr.msg);
        } else if (pq_query_type(q) != PQ_VECTOR && pq_query_type(q) != PQ_SCALAR) {
            report(l, node_line(expr),
                   "%s: invalid expression type: the rule needs an instant vector or scalar", ctx);
        }
        pq_query_free(q);
        r->expr = dup_or_oom(l, es);
    }
    struct {
        yaml_node_t *n;
        int64_t *out;
        const char *key;
    } durs[] = {{fr, &r->for_ms, "for"}, {kff, &r->keep_firing_for_ms, "keep_firing_for"}};
    for (size_t i = 0; i < 2; i++) {
        if (durs[i].n == NULL) {
            continue;
        }
        if (!r->alert) {
            report(l, node_line(durs[i].n), "%s: invalid field '%s' in recording rule", ctx,
                   durs[i].key);
        } else if (scalar(durs[i].n) == NULL || duration(scalar(durs[i].n), durs[i].out) != 0) {
            report(l, node_line(durs[i].n), "%s: %s: not a valid duration string: \"%s\"", ctx,
                   durs[i].key, scalar(durs[i].n) ? scalar(durs[i].n) : "");
        }
    }
    if (labels != NULL) {
        load_kv(l, labels, ctx, "label", &r->labels, &r->nlabels);
    }
    if (annotations != NULL) {
        if (!r->alert) {
            report(l, node_line(annotations), "%s: invalid field 'annotations' in recording rule",
                   ctx);
        } else {
            load_kv(l, annotations, ctx, "annotation", &r->annotations, &r->nannotations);
        }
    }
}

static void load_group(loader *l, yaml_node_t *n, al_group *g, const al_group *prev, size_t nprev) {
    g->line = node_line(n);
    if (n->type != YAML_MAPPING_NODE) {
        report(l, g->line, "a group must be a mapping");
        return;
    }
    yaml_node_t *name = NULL, *interval = NULL, *limit = NULL, *rules = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        const char *ks = scalar(k);
        if (ks != NULL && strcmp(ks, "name") == 0) {
            name = v;
        } else if (ks != NULL && strcmp(ks, "interval") == 0) {
            interval = v;
        } else if (ks != NULL && strcmp(ks, "limit") == 0) {
            limit = v;
        } else if (ks != NULL && strcmp(ks, "rules") == 0) {
            rules = v;
        } else {
            report(l, node_line(k), "field %s not found in type rulefmt.RuleGroup",
                   ks ? ks : "(not a string)");
        }
    }
    const char *gname = scalar(name);
    if (gname == NULL || *gname == '\0') {
        report(l, g->line, "Groupname must not be empty");
        gname = "";
    }
    for (size_t i = 0; i < nprev; i++) {
        if (*gname != '\0' && prev[i].name != NULL && strcmp(prev[i].name, gname) == 0) {
            report(l, node_line(name), "groupname: \"%s\" is repeated in the same file", gname);
        }
    }
    g->name = dup_or_oom(l, gname);
    g->file = dup_or_oom(l, l->file);
    if (interval != NULL &&
        (scalar(interval) == NULL || duration(scalar(interval), &g->interval_ms) != 0 ||
         g->interval_ms <= 0)) {
        report(l, node_line(interval),
               "group \"%s\": interval: not a valid duration string: \"%s\"", gname,
               scalar(interval) ? scalar(interval) : "");
    }
    if (limit != NULL) {
        const char *ls = scalar(limit);
        if (ls == NULL || sl_parse_i64(sl_str_c(ls), &g->limit) != 0 || g->limit < 0) {
            report(l, node_line(limit), "group \"%s\": limit must be a non-negative integer",
                   gname);
        }
    }
    if (rules == NULL || (rules->type == YAML_SCALAR_NODE && rules->data.scalar.length == 0)) {
        return; /* a group without rules is valid */
    }
    if (rules->type != YAML_SEQUENCE_NODE) {
        report(l, node_line(rules), "group \"%s\": rules must be a list", gname);
        return;
    }
    size_t n_items = (size_t)(rules->data.sequence.items.top - rules->data.sequence.items.start);
    if (l->nrules + n_items > MAX_RULES) {
        report(l, node_line(rules), "group \"%s\": more than %d rules", gname, MAX_RULES);
        return;
    }
    l->nrules += n_items;
    g->rules = calloc(n_items ? n_items : 1, sizeof(al_rule));
    if (g->rules == NULL) {
        l->oom = true;
        return;
    }
    for (size_t i = 0; i < n_items && !l->oom; i++) {
        load_rule(l, gname, i, node(l, rules->data.sequence.items.start[i]), &g->rules[i]);
        g->nrules = i + 1;
    }
}

int al_rules_load_buffer(const char *name, const char *data, size_t len, al_ruleset *rs,
                         sl_buf *errs) {
    loader l = {.file = name, .errs = errs};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_doc = false;
    al_group *groups = NULL;
    size_t ngroups = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        report(&l, (int)parser.problem_mark.line + 1, "yaml: %s%s%s",
               parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
               parser.context ? parser.context : "");
        goto out;
    }
    have_doc = true;
    l.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        goto out; /* an empty file: no groups */
    }
    if (root->type != YAML_MAPPING_NODE) {
        report(&l, node_line(root), "a rule file must be a mapping with a 'groups' list");
        goto out;
    }
    yaml_node_t *gl = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(&l, p->key);
        const char *ks = scalar(k);
        if (ks != NULL && strcmp(ks, "groups") == 0) {
            gl = node(&l, p->value);
        } else {
            report(&l, node_line(k), "field %s not found in type rulefmt.RuleGroups",
                   ks ? ks : "(not a string)");
        }
    }
    if (gl == NULL || (gl->type == YAML_SCALAR_NODE && gl->data.scalar.length == 0)) {
        goto out;
    }
    if (gl->type != YAML_SEQUENCE_NODE) {
        report(&l, node_line(gl), "groups must be a list");
        goto out;
    }
    size_t n = (size_t)(gl->data.sequence.items.top - gl->data.sequence.items.start);
    groups = calloc(n ? n : 1, sizeof(al_group));
    if (groups == NULL) {
        l.oom = true;
        goto out;
    }
    for (size_t i = 0; i < n && !l.oom && l.nerrors < 1000; i++) {
        load_group(&l, node(&l, gl->data.sequence.items.start[i]), &groups[i], groups, i);
        ngroups = i + 1;
    }
    /* A second document is not part of the format. */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        if (yaml_document_get_root_node(&extra) != NULL) {
            report(&l, (int)extra.start_mark.line + 1, "a rule file holds one YAML document");
        }
        yaml_document_delete(&extra);
    }
out:
    if (have_doc) {
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    int rc = l.oom ? SL_ENOMEM : l.nerrors > 0 ? SL_EINVAL : 0;
    if (rc == 0 && ngroups > 0) {
        size_t cap = rs->ngroups;
        al_group *ng = rs->groups;
        if (sl_array_grow(&ng, &cap, rs->ngroups + ngroups, sizeof(al_group)) != 0) {
            rc = SL_ENOMEM;
        } else {
            rs->groups = ng;
            memcpy(rs->groups + rs->ngroups, groups, ngroups * sizeof(al_group));
            rs->ngroups += ngroups;
            ngroups = 0;
        }
    }
    for (size_t i = 0; i < ngroups; i++) {
        group_free(&groups[i]);
    }
    free(groups);
    return rc;
}

int al_rules_load_file(const char *path, al_ruleset *rs, sl_buf *errs) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int rc = -errno;
        sl_buf_printf(errs, "%s: %s\n", path, strerror(errno));
        return rc;
    }
    sl_buf data;
    sl_buf_init(&data, MAX_FILE_SIZE);
    int rc = 0;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if ((rc = sl_buf_append(&data, chunk, n)) != 0) {
            sl_buf_printf(errs, "%s: %s\n", path,
                          rc == SL_ETOOBIG ? "file larger than 64 MiB" : sl_strerror(rc));
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        sl_buf_printf(errs, "%s: read error\n", path);
    }
    fclose(f);
    if (rc == 0) {
        rc =
            al_rules_load_buffer(path, data.len ? (const char *)data.data : "", data.len, rs, errs);
    }
    sl_buf_free(&data);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int al_rules_load_dir(const char *dir, al_ruleset *rs, sl_buf *errs) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = -errno;
        sl_buf_printf(errs, "%s: %s\n", dir, strerror(errno));
        return rc;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        bool yml = (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0) ||
                   (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0);
        if (!yml || e->d_name[0] == '.') {
            continue;
        }
        if (sl_array_grow(&names, &cap, n + 1, sizeof(char *)) != 0 ||
            (names[n] = strdup(e->d_name)) == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(char *), cmp_names);
    }
    al_ruleset tmp = {0};
    int first_err = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        int frc = al_rules_load_file(path, &tmp, errs);
        if (frc == SL_ENOMEM) {
            rc = frc;
        } else if (frc != 0 && first_err == 0) {
            first_err = frc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    if (rc == 0) {
        rc = first_err;
    }
    if (rc == 0) {
        size_t c2 = rs->ngroups;
        al_group *ng = rs->groups;
        if (tmp.ngroups > 0 &&
            sl_array_grow(&ng, &c2, rs->ngroups + tmp.ngroups, sizeof(al_group)) != 0) {
            rc = SL_ENOMEM;
        } else if (tmp.ngroups > 0) {
            rs->groups = ng;
            memcpy(rs->groups + rs->ngroups, tmp.groups, tmp.ngroups * sizeof(al_group));
            rs->ngroups += tmp.ngroups;
            free(tmp.groups);
            tmp = (al_ruleset){0};
        }
    }
    al_ruleset_clear(&tmp);
    return rc;
}

void al_ruleset_clear(al_ruleset *rs) {
    for (size_t i = 0; i < rs->ngroups; i++) {
        group_free(&rs->groups[i]);
    }
    free(rs->groups);
    rs->groups = NULL;
    rs->ngroups = 0;
}
