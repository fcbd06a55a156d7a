/*
 * Alert templates: the subset of Go's text/template that Prometheus rules use
 * in labels and annotations. A template is text with actions `{{ pipeline }}`;
 * a pipeline is commands joined by `|`, each either one operand ($labels.x,
 * .Labels.x, $value, .Value, $externalLabels.x, $externalURL, a string or
 * number literal) or a function applied to operands, the previous command's
 * result being its last argument. `{{-` and `-}}` trim the neighbouring
 * white space; a comment action expands to nothing. Control actions (if,
 * range, with, define) are refused with an error at load time, so a rule
 * that loads always expands. Reentrant: no state outside the call.
 */
#include "alerting.h"

#include "promql.h"
#include "sl_err.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value: a number or a string (owned). */
typedef struct tv {
    bool num;
    double d;
    char *s;
} tv;

static void tv_free(tv *v) {
    free(v->s);
    v->s = NULL;
}

static int tv_str(tv *v, const char *s, size_t n) {
    v->num = false;
    v->s = malloc(n + 1);
    if (v->s == NULL) {
        return SL_ENOMEM;
    }
    memcpy(v->s, s, n);
    v->s[n] = '\0';
    return 0;
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which fmt's %v uses: the
 * shortest digits that round-trip, in %e form when the exponent is below -4
 * or at least 6 (Go decides with precision 6 for the shortest form). */
static void go_format_g(double v, char *buf, size_t cap) {
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(buf, cap, signbit(v) ? "-0" : "0");
        return;
    }
    char e[40];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) {
            break;
        }
    }
    const char *ep = strchr(e, 'e');
    int exp = (int)strtol(ep + 1, NULL, 10);
    if (exp < -4 || exp >= 6) {
        /* mantissa without trailing zeros, exponent with at least 2 digits */
        char mant[32];
        size_t ml = (size_t)(ep - e);
        memcpy(mant, e, ml);
        mant[ml] = '\0';
        snprintf(buf, cap, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    int decimals = p - 1 - exp;
    snprintf(buf, cap, "%.*f", decimals < 0 ? 0 : decimals, v);
}

/* Go's %.4g (C's, except for the spelling of NaN and infinities). */
static void go_format_4g(double v, const char *suffix, char *buf, size_t cap) {
    if (isnan(v) || isinf(v)) {
        go_format_g(v, buf, cap);
        return;
    }
    snprintf(buf, cap, "%.4g%s", v, suffix);
}

static int tv_number(const tv *v, double *out) {
    if (v->num) {
        *out = v->d;
        return 0;
    }
    char *end = NULL;
    const char *s = v->s;
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    *out = strtod(s, &end);
    return (*s != '\0' && end != NULL && *end == '\0') ? 0 : SL_EINVAL;
}

/* The text a value prints as. */
static void tv_text(const tv *v, char *buf, size_t cap, const char **out) {
    if (v->num) {
        go_format_g(v->d, buf, cap);
        *out = buf;
    } else {
        *out = v->s;
    }
}

static void humanize(double v, const char *fn, char *buf, size_t cap) {
    static const char *big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
    static const char *big2[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
    static const char *small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    const char *prefix = "";
    if (strcmp(fn, "humanizePercentage") == 0) {
        go_format_4g(v * 100, "%", buf, cap);
        return;
    }
    if (strcmp(fn, "humanize1024") == 0) {
        if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
            go_format_4g(v, "", buf, cap);
            return;
        }
        for (size_t i = 0; i < 8 && fabs(v) >= 1024; i++) {
            prefix = big2[i];
            v /= 1024;
        }
        go_format_4g(v, prefix, buf, cap);
        return;
    }
    if (strcmp(fn, "humanizeDuration") == 0) {
        if (isnan(v) || isinf(v)) {
            go_format_4g(v, "", buf, cap);
            return;
        }
        if (fabs(v) >= 1) {
            const char *sign = v < 0 ? "-" : "";
            v = fabs(v);
            long long d = (long long)v;
            long long s = d % 60, m = (d / 60) % 60, h = (d / 3600) % 24, days = d / 86400;
            if (days != 0) {
                snprintf(buf, cap, "%s%lldd %lldh %lldm %llds", sign, days, h, m, s);
            } else if (h != 0) {
                snprintf(buf, cap, "%s%lldh %lldm %llds", sign, h, m, s);
            } else if (m != 0) {
                snprintf(buf, cap, "%s%lldm %llds", sign, m, s);
            } else {
                snprintf(buf, cap, "%s%.4gs", sign, v);
            }
            return;
        }
        for (size_t i = 0; i < 8 && fabs(v) < 1 && v != 0; i++) {
            prefix = small[i];
            v *= 1000;
        }
        char unit[8];
        snprintf(unit, sizeof(unit), "%ss", prefix);
        go_format_4g(v, unit, buf, cap);
        return;
    }
    /* humanize */
    if (v == 0 || isnan(v) || isinf(v)) {
        go_format_4g(v, "", buf, cap);
        return;
    }
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < 8 && fabs(v) >= 1000; i++) {
            prefix = big[i];
            v /= 1000;
        }
    } else {
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    go_format_4g(v, prefix, buf, cap);
}

/* --- the parser/evaluator ------------------------------------------------------ */

typedef struct tctx {
    const char *src;
    const al_tmpl_data *d;
    char *err;
    size_t err_size;
} tctx;

static int tfail(tctx *c, const char *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the error with the line:column of position p. Returns SL_EINVAL. */
static int tfail(tctx *c, const char *p, const char *fmt, ...) {
    int line = 1, col = 1;
    for (const char *q = c->src; q < p; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_size, "%d:%d: %s", line, col, msg);
    return SL_EINVAL;
}

typedef enum { TK_END, TK_PIPE, TK_STRING, TK_NUMBER, TK_WORD } tk_kind;

typedef struct tok {
    tk_kind kind;
    const char *p;
    size_t n;
} tok;

/* Next token of the action in [*pp, end). */
static int next_tok(tctx *c, const char **pp, const char *end, tok *t) {
    const char *p = *pp;
    while (p < end && isspace((unsigned char)*p)) {
        p++;
    }
    t->p = p;
    t->n = 0;
    if (p >= end) {
        t->kind = TK_END;
    } else if (*p == '|') {
        t->kind = TK_PIPE;
        p++;
    } else if (*p == '"' || *p == '`') {
        char q = *p++;
        while (p < end && *p != q) {
            if (q == '"' && *p == '\\' && p + 1 < end) {
                p++;
            }
            p++;
        }
        if (p >= end) {
            return tfail(c, t->p, "%s", "unterminated string");
        }
        p++;
        t->kind = TK_STRING;
    } else if (isdigit((unsigned char)*p) || ((*p == '-' || *p == '+' || *p == '.') &&
                                              p + 1 < end && isdigit((unsigned char)p[1]))) {
        while (p < end && !isspace((unsigned char)*p) && *p != '|') {
            p++;
        }
        t->kind = TK_NUMBER;
    } else if (*p == '$' || *p == '.' || isalpha((unsigned char)*p) || *p == '_') {
        p++;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == ':')) {
            p++;
        }
        t->kind = TK_WORD;
    } else if (*p == '(' || *p == ')') {
        return tfail(c, p, "%s", "parenthesized pipelines are not supported");
    } else {
        char ch[2] = {*p, '\0'};
        return tfail(c, p, "unexpected character '%s' in action", ch);
    }
    t->n = (size_t)(p - t->p);
    *pp = p;
    return 0;
}

static const al_kv *kv_find(const al_kv *kv, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++) {
        if (strlen(kv[i].name) == len && memcmp(kv[i].name, name, len) == 0) {
            return &kv[i];
        }
    }
    return NULL;
}

/* An operand token's value. */
static int operand(tctx *c, const tok *t, tv *out) {
    *out = (tv){0};
    if (t->kind == TK_STRING) {
        char *s = malloc(t->n);
        if (s == NULL) {
            return SL_ENOMEM;
        }
        size_t n = 0;
        bool raw = t->p[0] == '`';
        for (size_t i = 1; i + 1 < t->n; i++) {
            char ch = t->p[i];
            if (!raw && ch == '\\' && i + 2 < t->n) {
                ch = t->p[++i];
                ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
            }
            s[n++] = ch;
        }
        s[n] = '\0';
        out->s = s;
        return 0;
    }
    if (t->kind == TK_NUMBER) {
        char tmp[64];
        if (t->n >= sizeof(tmp)) {
            return tfail(c, t->p, "%s", "number too long");
        }
        memcpy(tmp, t->p, t->n);
        tmp[t->n] = '\0';
        char *end = NULL;
        out->num = true;
        out->d = strtod(tmp, &end);
        if (*end != '\0') {
            return tfail(c, t->p, "bad number syntax: %s", tmp);
        }
        return 0;
    }
    sl_str w = {t->p, t->n};
    if (sl_str_eqc(w, "$value") || sl_str_eqc(w, ".Value")) {
        out->num = true;
        out->d = c->d->value;
        return 0;
    }
    if (sl_str_eqc(w, "$externalURL") || sl_str_eqc(w, ".ExternalURL")) {
        const char *u = c->d->external_url ? c->d->external_url : "";
        return tv_str(out, u, strlen(u));
    }
    static const struct {
        const char *prefix;
        bool external;
    } maps[] = {{"$labels.", false},
                {".Labels.", false},
                {"$externalLabels.", true},
                {".ExternalLabels.", true}};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        size_t pl = strlen(maps[i].prefix);
        if (t->n > pl && memcmp(t->p, maps[i].prefix, pl) == 0) {
            const al_kv *kv =
                maps[i].external
                    ? kv_find(c->d->external_labels, c->d->nexternal_labels, t->p + pl, t->n - pl)
                    : kv_find(c->d->labels, c->d->nlabels, t->p + pl, t->n - pl);
            /* A missing label prints as Go prints a missing map key here:
             * "<no value>". */
            const char *v = kv ? kv->value : "<no value>";
            return tv_str(out, v, strlen(v));
        }
    }
    char name[80];
    snprintf(name, sizeof(name), "%.*s", (int)(t->n > 60 ? 60 : t->n), t->p);
    return tfail(c, t->p, "undefined variable or field \"%s\"", name);
}

static bool is_func(sl_str w) {
    static const char *fns[] = {"humanize",         "humanize1024", "humanizePercentage",
                                "humanizeDuration", "printf",       "toUpper",
                                "toLower",          "title",        "print"};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (sl_str_eqc(w, fns[i])) {
            return true;
        }
    }
    return false;
}

/* Go's printf for the verbs templates use: %s %v %d %f %e %g %x %q %% with
 * flags, width and precision. The C format handed to snprintf is built here
 * from the template's verb, but only of the characters "+-# 0", digits, '.'
 * and a verb chosen below to match the argument's C type, hence the local
 * exemption from -Wformat-nonliteral. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int go_printf(tctx *c, const char *at, const tv *args, size_t nargs, sl_buf *out) {
    const char *f = args[0].num ? "" : args[0].s;
    size_t ai = 1;
    int rc = 0;
    while (*f != '\0' && rc == 0) {
        if (*f != '%') {
            rc = sl_buf_putc(out, (uint8_t)*f++);
            continue;
        }
        const char *start = f++;
        while (*f != '\0' && strchr("+-# 0", *f) != NULL) {
            f++;
        }
        const char *w0 = f;
        while (isdigit((unsigned char)*f)) {
            f++;
        }
        size_t wlen = (size_t)(f - w0), plen = 0;
        if (*f == '.') {
            const char *p0 = ++f;
            while (isdigit((unsigned char)*f)) {
                f++;
            }
            plen = (size_t)(f - p0);
        }
        if (wlen > 3 || plen > 3) {
            /* widths and precisions of a few hundred are plenty; larger
             * ones would only make long strings */
            return tfail(c, at, "%s", "printf: width or precision above 999");
        }
        char verb = *f;
        if (verb == '\0') {
            return tfail(c, at, "%s", "printf: format ends in the middle of a verb");
        }
        f++;
        if (verb == '%') {
            rc = sl_buf_putc(out, '%');
            continue;
        }
        char spec[32];
        size_t sl = (size_t)(f - start) - 1;
        if (sl + 3 > sizeof(spec)) {
            return tfail(c, at, "%s", "printf: verb too long");
        }
        memcpy(spec, start, sl);
        if (ai >= nargs) {
            rc = sl_buf_printf(out, "%%!%c(MISSING)", verb);
            continue;
        }
        const tv *a = &args[ai++];
        double d = 0;
        char txt[64];
        const char *s;
        switch (verb) {
        case 'd':
        case 'x':
            if (tv_number(a, &d) != 0) {
                tv_text(a, txt, sizeof(txt), &s);
                rc = sl_buf_printf(out, "%%!%c(string=%s)", verb, s);
                break;
            }
            memcpy(spec + sl, verb == 'd' ? "lld" : "llx", 4);
            rc = sl_buf_printf(out, spec, (long long)d);
            break;
        case 'f':
        case 'e':
        case 'g':
        case 'F':
        case 'E':
        case 'G':
            if (tv_number(a, &d) != 0) {
                tv_text(a, txt, sizeof(txt), &s);
                rc = sl_buf_printf(out, "%%!%c(string=%s)", verb, s);
                break;
            }
            if (isnan(d) || isinf(d)) {
                go_format_g(d, txt, sizeof(txt));
                rc = sl_buf_append_str(out, txt);
                break;
            }
            spec[sl] = verb;
            spec[sl + 1] = '\0';
            rc = sl_buf_printf(out, spec, d);
            break;
        case 's':
        case 'v':
        case 'q':
            tv_text(a, txt, sizeof(txt), &s);
            spec[sl] = 's';
            spec[sl + 1] = '\0';
            if (verb == 'q') {
                rc = sl_buf_printf(out, "\"%s\"", s);
            } else {
                rc = sl_buf_printf(out, spec, s);
            }
            break;
        default:
            rc = sl_buf_printf(out, "%%!%c(BADVERB)", verb);
        }
    }
    for (; ai < nargs && rc == 0; ai++) {
        char txt[64];
        const char *s;
        tv_text(&args[ai], txt, sizeof(txt), &s);
        rc = sl_buf_printf(out, "%%!(EXTRA %s)", s);
    }
    return rc;
}
#pragma GCC diagnostic pop

static int call(tctx *c, const char *at, sl_str fn, tv *args, size_t nargs, tv *out) {
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)(fn.len < 31 ? fn.len : 31), fn.ptr);
    *out = (tv){0};
    if (strcmp(name, "printf") == 0 || strcmp(name, "print") == 0) {
        if (nargs == 0) {
            return tfail(c, at, "wrong number of args for %s: want at least 1 got 0", name);
        }
        sl_buf b;
        sl_buf_init(&b, 1u << 20);
        int rc = 0;
        if (strcmp(name, "printf") == 0) {
            rc = go_printf(c, at, args, nargs, &b);
        } else {
            for (size_t i = 0; i < nargs && rc == 0; i++) {
                char txt[64];
                const char *s;
                tv_text(&args[i], txt, sizeof(txt), &s);
                rc = sl_buf_append_str(&b, s);
            }
        }
        if (rc == 0) {
            rc = tv_str(out, b.len ? (const char *)b.data : "", b.len);
        }
        sl_buf_free(&b);
        return rc;
    }
    if (nargs != 1) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s: want 1 got %zu", name, nargs);
        return tfail(c, at, "wrong number of args for %s", msg);
    }
    char txt[64];
    if (strncmp(name, "humanize", 8) == 0) {
        double d;
        if (tv_number(&args[0], &d) != 0) {
            /* Prometheus fails the expansion; we say so in the text. */
            return tfail(c, at, "%s: argument is not a number", name);
        }
        humanize(d, name, txt, sizeof(txt));
        return tv_str(out, txt, strlen(txt));
    }
    const char *s;
    tv_text(&args[0], txt, sizeof(txt), &s);
    int rc = tv_str(out, s, strlen(s));
    if (rc != 0) {
        return rc;
    }
    bool word_start = true;
    for (char *p = out->s; *p != '\0'; p++) {
        if (strcmp(name, "toUpper") == 0) {
            *p = (char)toupper((unsigned char)*p);
        } else if (strcmp(name, "toLower") == 0) {
            *p = (char)tolower((unsigned char)*p);
        } else {
            if (word_start) {
                *p = (char)toupper((unsigned char)*p);
            }
            word_start = !isalnum((unsigned char)*p);
        }
    }
    return 0;
}

/* Evaluates one pipeline in [p, end) and appends its text to out. */
static int pipeline(tctx *c, const char *p, const char *end, sl_buf *out) {
    tv piped = {0};
    bool have_piped = false;
    tv args[8] = {{0}};
    size_t nargs = 0;
    int rc = 0;
    tok t;
    for (;;) {
        /* one command */
        const char *cmd_at = p;
        if ((rc = next_tok(c, &p, end, &t)) != 0) {
            goto out;
        }
        cmd_at = t.p;
        if (t.kind == TK_END || t.kind == TK_PIPE) {
            rc = tfail(c, t.p, "%s", "missing command in pipeline");
            goto out;
        }
        tok head = t;
        bool fn = head.kind == TK_WORD && is_func((sl_str){head.p, head.n});
        if (head.kind == TK_WORD && !fn && head.p[0] != '$' && head.p[0] != '.') {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(head.n > 60 ? 60 : head.n), head.p);
            rc = tfail(c, head.p,
                       strcmp(name, "if") == 0 || strcmp(name, "range") == 0 ||
                               strcmp(name, "with") == 0 || strcmp(name, "end") == 0 ||
                               strcmp(name, "define") == 0 || strcmp(name, "template") == 0
                           ? "action \"%s\" is not supported in Sightline's templates"
                           : "function \"%s\" not defined",
                       name);
            goto out;
        }
        nargs = 0;
        if (!fn) {
            if ((rc = operand(c, &head, &args[0])) != 0) {
                goto out;
            }
            nargs = 1;
        }
        for (;;) {
            if ((rc = next_tok(c, &p, end, &t)) != 0) {
                goto out;
            }
            if (t.kind == TK_END || t.kind == TK_PIPE) {
                break;
            }
            if (!fn) {
                rc = tfail(c, t.p, "%s", "can't give argument to non-function");
                goto out;
            }
            if (nargs + 1 >= sizeof(args) / sizeof(args[0])) {
                rc = tfail(c, t.p, "%s", "too many arguments");
                goto out;
            }
            if (t.kind == TK_WORD && is_func((sl_str){t.p, t.n})) {
                rc = tfail(c, t.p, "%s", "a function as an argument needs parentheses");
                goto out;
            }
            if ((rc = operand(c, &t, &args[nargs])) != 0) {
                goto out;
            }
            nargs++;
        }
        if (have_piped) {
            if (!fn) {
                rc = tfail(c, cmd_at, "%s", "can't give argument to non-function");
                goto out;
            }
            args[nargs++] = piped;
            piped = (tv){0};
            have_piped = false;
        }
        tv res;
        if (fn) {
            rc = call(c, cmd_at, (sl_str){head.p, head.n}, args, nargs, &res);
            for (size_t i = 0; i < nargs; i++) {
                tv_free(&args[i]);
            }
            nargs = 0;
            if (rc != 0) {
                goto out;
            }
        } else {
            res = args[0];
            args[0] = (tv){0};
            nargs = 0;
        }
        piped = res;
        have_piped = true;
        if (t.kind == TK_END) {
            break;
        }
    }
    char txt[64];
    const char *s;
    tv_text(&piped, txt, sizeof(txt), &s);
    rc = sl_buf_append_str(out, s);
out:
    for (size_t i = 0; i < nargs; i++) {
        tv_free(&args[i]);
    }
    tv_free(&piped);
    return rc;
}

int al_template_expand(const char *tmpl, const al_tmpl_data *d, sl_buf *out, char *err,
                       size_t err_size) {
    tctx c = {.src = tmpl, .d = d, .err = err, .err_size = err_size};
    const char *p = tmpl;
    int rc = 0;
    bool trim_next = false;
    while (*p != '\0' && rc == 0) {
        const char *open = strstr(p, "{{");
        const char *text_end = open ? open : p + strlen(p);
        const char *ts = p;
        if (trim_next) {
            while (ts < text_end && isspace((unsigned char)*ts)) {
                ts++;
            }
        }
        const char *te = text_end;
        bool trim_left = open != NULL && open[2] == '-' && isspace((unsigned char)open[3]);
        if (trim_left) {
            while (te > ts && isspace((unsigned char)te[-1])) {
                te--;
            }
        }
        if (te > ts && (rc = sl_buf_append(out, ts, (size_t)(te - ts))) != 0) {
            break;
        }
        if (open == NULL) {
            break;
        }
        const char *a = open + 2 + (trim_left ? 2 : 0);
        const char *close = strstr(a, "}}");
        if (close == NULL) {
            rc = tfail(&c, open, "%s", "unclosed action");
            break;
        }
        const char *ae = close;
        trim_next = false;
        if (ae - a >= 2 && ae[-1] == '-' && isspace((unsigned char)ae[-2])) {
            trim_next = true;
            ae -= 2;
        }
        const char *q = a;
        while (q < ae && isspace((unsigned char)*q)) {
            q++;
        }
        if (ae - q >= 4 && q[0] == '/' && q[1] == '*') {
            const char *ce = ae;
            while (ce > q && isspace((unsigned char)ce[-1])) {
                ce--;
            }
            if (ce - q < 4 || ce[-1] != '/' || ce[-2] != '*') {
                rc = tfail(&c, q, "%s", "unclosed comment");
            }
        } else if (q == ae) {
            rc = tfail(&c, open, "%s", "missing value for command");
        } else {
            rc = pipeline(&c, q, ae, out);
        }
        p = close + 2;
    }
    if (rc == 0 && out->len < out->cap) {
        out->data[out->len] = '\0';
    }
    return rc;
}

int al_template_check(const char *tmpl, char *err, size_t err_size) {
    al_tmpl_data d = {.value = 0};
    sl_buf b;
    sl_buf_init(&b, 1u << 20);
    int rc = al_template_expand(tmpl, &d, &b, err, err_size);
    sl_buf_free(&b);
    return rc;
}
