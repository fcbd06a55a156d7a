/*
 * Loading and matching the gateway's route table; see gw_routes.h. The YAML
 * document is walked with libyaml's document API; unknown keys are errors
 * (a typo in a route must not silently open it to anonymous callers).
 */
#include "gw_routes.h"

#include "sl_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

typedef struct parse_ctx {
    yaml_document_t *doc;
    char *err;
    size_t err_size;
} parse_ctx;

__attribute__((format(printf, 3, 4))) static int fail(parse_ctx *c, const yaml_node_t *n,
                                                      const char *fmt, ...) {
    snprintf(c->err, c->err_size,
             "line %lu: ", n != NULL ? (unsigned long)n->start_mark.line + 1 : 0UL);
    size_t used = strlen(c->err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + used, c->err_size - used, fmt, ap);
    va_end(ap);
    return SL_EINVAL;
}

static const char *scalar(const yaml_node_t *n) {
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_uint(parse_ctx *c, const yaml_node_t *n, const char *key, uint64_t max,
                    uint64_t *out) {
    const char *s = scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = s != NULL ? strtoull(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v > max) {
        return fail(c, n, "%s must be a non-negative integer in range", key);
    }
    *out = v;
    return 0;
}

static int get_double(parse_ctx *c, const yaml_node_t *n, const char *key, double *out) {
    const char *s = scalar(n);
    char *end;
    double v = s != NULL ? strtod(s, &end) : -1;
    if (s == NULL || *s == '\0' || *end != '\0' || !(v >= 0) || v > 1e9) {
        return fail(c, n, "%s must be a non-negative number", key);
    }
    *out = v;
    return 0;
}

static int is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int gw_parse_time(const char *s, int64_t *unix_s) {
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    if (len == 10) {
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) {
            return SL_EINVAL;
        }
    } else if (len == 20 && s[10] == 'T' && s[19] == 'Z') {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
            n != 20) {
            return SL_EINVAL;
        }
    } else {
        return SL_EINVAL;
    }
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) ||
        h > 23 || mi > 59 || sec > 59 || h < 0 || mi < 0 || sec < 0) {
        return SL_EINVAL;
    }
    *unix_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

void gw_http_date(int64_t unix_s, char out[40]) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
             mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const struct {
    const char *name;
    uint32_t bit;
} METHODS[] = {{"GET", GW_METHOD_GET},        {"HEAD", GW_METHOD_HEAD},
               {"POST", GW_METHOD_POST},      {"PUT", GW_METHOD_PUT},
               {"PATCH", GW_METHOD_PATCH},    {"DELETE", GW_METHOD_DELETE},
               {"OPTIONS", GW_METHOD_OPTIONS}};

uint32_t gw_method_bit(const char *method) {
    for (size_t k = 0; k < sizeof(METHODS) / sizeof(METHODS[0]); k++) {
        if (strcmp(method, METHODS[k].name) == 0) {
            return METHODS[k].bit;
        }
    }
    return 0;
}

void gw_methods_allow(uint32_t methods, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof(METHODS) / sizeof(METHODS[0]); k++) {
        if ((methods & METHODS[k].bit) != 0 && used < size) {
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                                     METHODS[k].name);
        }
    }
}

/* Normalizes a route path: must start with '/', printable, no "..", no
 * trailing '/' except the root. Returns a malloc'd copy or NULL. */
static char *norm_prefix(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || s[0] != '/' || n > 1024 || strstr(s, "..") != NULL || strstr(s, "//") != NULL) {
        return NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if ((unsigned char)s[k] <= 0x20 || (unsigned char)s[k] >= 0x7f || s[k] == '?' ||
            s[k] == '#') {
            return NULL;
        }
    }
    while (n > 1 && s[n - 1] == '/') {
        n--;
    }
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void route_free(gw_route *r) {
    free(r->prefix);
    r->prefix = NULL;
    free(r->service);
    r->service = NULL;
    free(r->canary_version);
    r->canary_version = NULL;
    free(r->successor);
    r->successor = NULL;
    free(r->scope);
    r->scope = NULL;
}

static int parse_canary(parse_ctx *c, yaml_node_t *n, gw_route *r) {
    if (n->type != YAML_MAPPING_NODE) {
        return fail(c, n, "%s must be a mapping {version, percent}", "canary");
    }
    double percent = -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *key = scalar(k);
        if (key != NULL && strcmp(key, "version") == 0 && scalar(v) != NULL && *scalar(v)) {
            free(r->canary_version);
            r->canary_version = NULL;
            if ((r->canary_version = strdup(scalar(v))) == NULL) {
                return SL_ENOMEM;
            }
        } else if (key != NULL && strcmp(key, "percent") == 0) {
            if (get_double(c, v, "canary.percent", &percent) != 0 || percent > 100) {
                return fail(c, v, "%s must be between 0 and 100", "canary.percent");
            }
        } else {
            return fail(c, k, "unknown or invalid canary key %s", key ? key : "?");
        }
    }
    if (r->canary_version == NULL || percent < 0) {
        return fail(c, n, "%s needs version and percent", "canary");
    }
    r->canary_permille = (uint32_t)(percent * 10 + 0.5);
    return 0;
}

static int parse_route(parse_ctx *c, yaml_node_t *n, gw_route *r) {
    if (n->type != YAML_MAPPING_NODE) {
        return fail(c, n, "%s", "a route must be a mapping");
    }
    r->methods = GW_METHOD_ALL;
    r->timeout_ms = 5000;
    r->auth_user = true; /* closed unless the file says otherwise */
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         rc == 0 && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *key = scalar(k), *val = scalar(v);
        uint64_t u = 0;
        if (key == NULL) {
            rc = fail(c, k, "%s", "route keys must be scalars");
        } else if (strcmp(key, "prefix") == 0 || strcmp(key, "path") == 0) {
            free(r->prefix);
            r->prefix = NULL;
            r->exact = key[1] == 'a';
            if (val == NULL || (r->prefix = norm_prefix(val)) == NULL) {
                rc = fail(c, v, "%s must be a clean absolute path", key);
            }
        } else if (strcmp(key, "service") == 0) {
            free(r->service);
            r->service = NULL;
            if (val == NULL || *val == '\0' || (r->service = strdup(val)) == NULL) {
                rc = fail(c, v, "%s must be a service name", key);
            }
        } else if (strcmp(key, "auth") == 0) {
            if (val != NULL && strcmp(val, "user") == 0) {
                r->auth_user = true;
            } else if (val != NULL && strcmp(val, "none") == 0) {
                r->auth_user = false;
            } else {
                rc = fail(c, v, "%s must be user or none", key);
            }
        } else if (strcmp(key, "methods") == 0) {
            if (v->type != YAML_SEQUENCE_NODE) {
                rc = fail(c, v, "%s must be a list", key);
                break;
            }
            r->methods = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 rc == 0 && it < v->data.sequence.items.top; it++) {
                yaml_node_t *m = yaml_document_get_node(c->doc, *it);
                uint32_t bit = scalar(m) != NULL ? gw_method_bit(scalar(m)) : 0;
                if (bit == 0) {
                    rc = fail(c, m, "unknown method %s", scalar(m) ? scalar(m) : "?");
                }
                r->methods |= bit;
            }
        } else if (strcmp(key, "timeout_ms") == 0) {
            if ((rc = get_uint(c, v, key, 600000, &u)) == 0) {
                r->timeout_ms = (uint32_t)(u ? u : 1);
            }
        } else if (strcmp(key, "canary") == 0) {
            rc = parse_canary(c, v, r);
        } else if (strcmp(key, "deprecated") == 0 || strcmp(key, "sunset") == 0) {
            int64_t *dst = key[0] == 'd' ? &r->deprecated_unix : &r->sunset_unix;
            if (val == NULL || gw_parse_time(val, dst) != 0) {
                rc = fail(c, v, "%s must be a date (2026-12-31 or 2026-12-31T00:00:00Z)", key);
            }
        } else if (strcmp(key, "scope") == 0) {
            free(r->scope);
            r->scope = NULL;
            if (val == NULL || *val == '\0' || strlen(val) > 256 ||
                (r->scope = strdup(val)) == NULL) {
                rc = fail(c, v, "%s must be a space-separated scope list", key);
            }
        } else if (strcmp(key, "successor") == 0) {
            free(r->successor);
            r->successor = NULL;
            if (val == NULL || (r->successor = norm_prefix(val)) == NULL) {
                rc = fail(c, v, "%s must be a clean absolute path", key);
            }
        } else {
            rc = fail(c, k, "unknown route key %s", key);
        }
    }
    if (rc == 0 && (r->prefix == NULL || r->service == NULL)) {
        rc = fail(c, n, "%s", "a route needs prefix (or path) and service");
    }
    return rc;
}

static int parse_rate(parse_ctx *c, yaml_node_t *n, const char *what, gw_rate *out) {
    if (n->type != YAML_MAPPING_NODE) {
        return fail(c, n, "%s must be a mapping {rate, burst}", what);
    }
    out->burst = -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *key = scalar(k);
        int rc;
        if (key != NULL && strcmp(key, "rate") == 0) {
            rc = get_double(c, v, "rate", &out->rate);
        } else if (key != NULL && strcmp(key, "burst") == 0) {
            rc = get_double(c, v, "burst", &out->burst);
        } else {
            rc = fail(c, k, "unknown rate-limit key %s", key ? key : "?");
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (out->burst < 0) {
        out->burst = out->rate > 1 ? out->rate : 1;
    }
    if (out->rate > 0 && out->burst < 1) {
        return fail(c, n, "%s.burst must be at least 1", what);
    }
    return 0;
}

static int parse_top(parse_ctx *c, yaml_node_t *root, gw_config *cfg) {
    if (root == NULL) {
        return fail(c, NULL, "%s", "empty configuration");
    }
    if (root->type != YAML_MAPPING_NODE) {
        return fail(c, root, "%s", "the configuration must be a mapping");
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *key = scalar(k);
        int rc = 0;
        if (key != NULL && strcmp(key, "routes") == 0) {
            if (v->type != YAML_SEQUENCE_NODE) {
                return fail(c, v, "%s must be a list", key);
            }
            if (cfg->routes != NULL) {
                return fail(c, k, "%s given twice", key);
            }
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            cfg->routes = calloc(n ? n : 1, sizeof(*cfg->routes));
            if (cfg->routes == NULL) {
                return SL_ENOMEM;
            }
            for (size_t i = 0; i < n && rc == 0; i++) {
                rc = parse_route(c, yaml_document_get_node(c->doc, v->data.sequence.items.start[i]),
                                 &cfg->routes[i]);
                cfg->routes[i].index = i;
                cfg->n_routes = i + 1;
            }
        } else if (key != NULL && strcmp(key, "limits") == 0 && v->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 rc == 0 && q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *lk = yaml_document_get_node(c->doc, q->key);
                yaml_node_t *lv = yaml_document_get_node(c->doc, q->value);
                const char *lkey = scalar(lk);
                uint64_t u = 0;
                size_t *dst = NULL;
                if (lkey != NULL && strcmp(lkey, "max_body_bytes") == 0) {
                    dst = &cfg->max_body_bytes;
                } else if (lkey != NULL && strcmp(lkey, "max_path_bytes") == 0) {
                    dst = &cfg->max_path_bytes;
                } else if (lkey != NULL && strcmp(lkey, "max_header_bytes") == 0) {
                    dst = &cfg->max_header_bytes;
                } else {
                    rc = fail(c, lk, "unknown limit %s", lkey ? lkey : "?");
                    break;
                }
                if ((rc = get_uint(c, lv, lkey, 1ULL << 30, &u)) == 0) {
                    *dst = u;
                }
            }
        } else if (key != NULL && strcmp(key, "rate_limits") == 0 && v->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 rc == 0 && q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *lk = yaml_document_get_node(c->doc, q->key);
                yaml_node_t *lv = yaml_document_get_node(c->doc, q->value);
                const char *lkey = scalar(lk);
                if (lkey != NULL && strcmp(lkey, "per_key") == 0) {
                    rc = parse_rate(c, lv, lkey, &cfg->per_key);
                } else if (lkey != NULL && strcmp(lkey, "per_tenant") == 0) {
                    rc = parse_rate(c, lv, lkey, &cfg->per_tenant);
                } else {
                    rc = fail(c, lk, "unknown rate limit %s", lkey ? lkey : "?");
                }
            }
        } else {
            return fail(c, k, "unknown or malformed top-level key %s", key ? key : "?");
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (cfg->n_routes == 0) {
        return fail(c, root, "%s", "no routes");
    }
    return 0;
}

int gw_config_parse(const char *text, size_t len, gw_config *cfg, char *err, size_t err_size) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_body_bytes = 1 << 20;
    cfg->max_path_bytes = 2048;
    cfg->max_header_bytes = 16384;
    yaml_parser_t parser;
    yaml_document_t doc;
    parse_ctx c = {.doc = &doc, .err = err, .err_size = err_size};
    err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        return SL_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, err_size, "line %lu: %s", (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        return SL_EINVAL;
    }
    int rc = parse_top(&c, yaml_document_get_root_node(&doc), cfg);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        if (err[0] == '\0') {
            snprintf(err, err_size, "%s", sl_strerror(rc));
        }
        gw_config_free(cfg);
    }
    return rc;
}

int gw_config_load(const char *path, gw_config *cfg, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_size, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    bool toobig = buf != NULL && !feof(f);
    fclose(f);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    if (toobig) {
        free(buf);
        snprintf(err, err_size, "%s: larger than 1 MiB", path);
        return SL_EINVAL;
    }
    int rc = gw_config_parse(buf, n, cfg, err, err_size);
    free(buf);
    return rc;
}

void gw_config_free(gw_config *cfg) {
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        route_free(&cfg->routes[i]);
    }
    free(cfg->routes);
    cfg->routes = NULL;
    cfg->n_routes = 0;
}

static bool route_covers(const gw_route *r, const char *path, size_t path_len) {
    size_t n = strlen(r->prefix);
    if (path_len < n || memcmp(path, r->prefix, n) != 0) {
        return false;
    }
    bool whole = path_len == n || (path_len == n + 1 && path[n] == '/');
    return r->exact ? whole : (whole || n == 1 || path[n] == '/');
}

/* Longest prefix wins; at equal length an exact route beats a prefix. */
static bool better(const gw_route *r, const gw_route *best) {
    size_t n = strlen(r->prefix), bn = best != NULL ? strlen(best->prefix) : 0;
    return best == NULL || n > bn || (n == bn && r->exact && !best->exact);
}

const gw_route *gw_config_match(const gw_config *cfg, uint32_t method, const char *path,
                                size_t path_len, uint32_t *allowed) {
    const gw_route *best = NULL;
    *allowed = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const gw_route *r = &cfg->routes[i];
        if (!route_covers(r, path, path_len)) {
            continue;
        }
        *allowed |= r->methods;
        if ((r->methods & method) != 0 && better(r, best)) {
            best = r;
        }
    }
    return best;
}
