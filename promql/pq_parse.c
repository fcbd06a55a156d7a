/*
 * The PromQL lexer and parser: a hand-written recursive-descent parser with
 * operator precedence climbing, producing the tree of pq_int.h with static
 * types checked as Prometheus checks them. Errors carry the position of the
 * offending token as "line:col: parse error: ..." (column in bytes, from 1).
 *
 * Precedence, lowest first: or; and unless; == != <= < >= >; + -; * / %
 * atan2; ^ (right associative). Unary minus binds tighter than * but looser
 * than ^ (-2^2 is -4); offset, @ and [..] bind to the expression before them.
 *
 * Errors unwind with longjmp to pq_parse: every allocation is in the query's
 * arena and every compiled regex is attached to its node at once, so the
 * query's free releases all. Thread-safety: one parse per pq_query.
 */
#include "pq_int.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_EOF,
    T_IDENT,
    T_NUM,
    T_DUR,
    T_STR,
    T_LPAREN,
    T_RPAREN,
    T_LBRACE,
    T_RBRACE,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
    T_COLON,
    T_AT,
    T_ASSIGN,
    T_EQLC,
    T_NEQ,
    T_RE,
    T_NRE,
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_MOD,
    T_POW,
    T_GTR,
    T_LSS,
    T_GTE,
    T_LTE,
} tok_kind;

typedef struct tok {
    tok_kind kind;
    uint32_t pos, end;
} tok;

typedef struct parser {
    pq_query *q;
    const char *s;
    size_t len;
    size_t pos; /* lexer position */
    tok t;      /* current token */
    int depth;  /* nesting of parse_expr, bounded so hostile input cannot
                 * exhaust the stack (here or in the recursive evaluator) */
    pq_error *err;
    jmp_buf jb;
} parser;

static _Noreturn void fail_at(parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void fail_at(parser *p, size_t pos, const char *fmt, ...) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->err->kind = PQ_ERR_BAD_DATA;
    snprintf(p->err->msg, sizeof(p->err->msg), "%zu:%zu: parse error: %s", line, col, msg);
    longjmp(p->jb, 1);
}

static _Noreturn void fail_nomem(parser *p) {
    p->err->kind = PQ_ERR_INTERNAL;
    snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
    longjmp(p->jb, 2);
}

static void *palloc(parser *p, size_t size) {
    void *m = sl_arena_calloc(&p->q->arena, 1, size);
    if (m == NULL) {
        fail_nomem(p);
    }
    return m;
}

/* --- lexer ------------------------------------------------------------------- */

static bool is_ident_start(char c) {
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_ident_char(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static sl_str tok_text(const parser *p, tok t) {
    return (sl_str){p->s + t.pos, t.end - t.pos};
}

static const char *tok_desc(parser *p, tok t, char *buf, size_t cap) {
    if (t.kind == T_EOF) {
        return "end of input";
    }
    sl_str x = tok_text(p, t);
    snprintf(buf, cap, "\"%.*s\"", (int)(x.len > 40 ? 40 : x.len), x.ptr);
    return buf;
}

static void lex(parser *p) {
    const char *s = p->s;
    size_t i = p->pos;
    for (;;) {
        while (i < p->len && isspace((unsigned char)s[i])) {
            i++;
        }
        if (i < p->len && s[i] == '#') {
            while (i < p->len && s[i] != '\n') {
                i++;
            }
            continue;
        }
        break;
    }
    tok t = {T_EOF, (uint32_t)i, (uint32_t)i};
    if (i >= p->len) {
        p->t = t;
        p->pos = i;
        return;
    }
    char c = s[i];
    char n = i + 1 < p->len ? s[i + 1] : '\0';
    size_t j = i + 1;
    switch (c) {
    case '(':
        t.kind = T_LPAREN;
        break;
    case ')':
        t.kind = T_RPAREN;
        break;
    case '{':
        t.kind = T_LBRACE;
        break;
    case '}':
        t.kind = T_RBRACE;
        break;
    case '[':
        t.kind = T_LBRACK;
        break;
    case ']':
        t.kind = T_RBRACK;
        break;
    case ',':
        t.kind = T_COMMA;
        break;
    case '@':
        t.kind = T_AT;
        break;
    case '+':
        t.kind = T_ADD;
        break;
    case '-':
        t.kind = T_SUB;
        break;
    case '*':
        t.kind = T_MUL;
        break;
    case '/':
        t.kind = T_DIV;
        break;
    case '%':
        t.kind = T_MOD;
        break;
    case '^':
        t.kind = T_POW;
        break;
    case '=':
        t.kind = n == '=' ? T_EQLC : (n == '~' ? T_RE : T_ASSIGN);
        j += n == '=' || n == '~';
        break;
    case '!':
        if (n != '=' && n != '~') {
            fail_at(p, i, "unexpected character after '!': %s",
                    n ? (char[]){'\'', n, '\'', 0} : "end of input");
        }
        t.kind = n == '=' ? T_NEQ : T_NRE;
        j++;
        break;
    case '>':
        t.kind = n == '=' ? T_GTE : T_GTR;
        j += n == '=';
        break;
    case '<':
        t.kind = n == '=' ? T_LTE : T_LSS;
        j += n == '=';
        break;
    case ':':
        /* A ':' inside brackets separates range and step; elsewhere it
         * starts an identifier (recording-rule names). */
        if (i + 1 < p->len && is_ident_char(n) && !isdigit((unsigned char)n)) {
            goto ident;
        }
        t.kind = T_COLON;
        break;
    case '"':
    case '\'':
    case '`': {
        char q = c;
        while (j < p->len && s[j] != q) {
            if (s[j] == '\\' && q != '`') {
                j++;
            }
            if (q != '`' && j < p->len && s[j] == '\n') {
                break;
            }
            j++;
        }
        if (j >= p->len || s[j] != q) {
            fail_at(p, i, "unterminated quoted string");
        }
        j++;
        t.kind = T_STR;
        break;
    }
    default:
        if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)n))) {
            j = i;
            bool hex = c == '0' && (n == 'x' || n == 'X');
            if (hex) {
                j += 2;
                while (j < p->len && isxdigit((unsigned char)s[j])) {
                    j++;
                }
            } else {
                while (j < p->len && isdigit((unsigned char)s[j])) {
                    j++;
                }
                if (j < p->len && s[j] == '.') {
                    j++;
                    while (j < p->len && isdigit((unsigned char)s[j])) {
                        j++;
                    }
                }
                if (j < p->len && (s[j] == 'e' || s[j] == 'E') && j + 1 < p->len &&
                    (isdigit((unsigned char)s[j + 1]) ||
                     ((s[j + 1] == '+' || s[j + 1] == '-') && j + 2 < p->len &&
                      isdigit((unsigned char)s[j + 2])))) {
                    j += 2;
                    while (j < p->len && isdigit((unsigned char)s[j])) {
                        j++;
                    }
                }
            }
            t.kind = T_NUM;
            if (j < p->len && is_ident_char(s[j]) && s[j] != ':') {
                /* A duration: digits and units ("1h30m"). */
                while (j < p->len && isalnum((unsigned char)s[j])) {
                    j++;
                }
                t.kind = T_DUR;
            }
            break;
        }
        if (is_ident_start(c)) {
        ident:
            j = i + 1;
            while (j < p->len && is_ident_char(s[j])) {
                j++;
            }
            t.kind = T_IDENT;
            break;
        }
        fail_at(p, i, "unexpected character: '%c'", isprint((unsigned char)c) ? c : '?');
    }
    t.end = (uint32_t)j;
    p->t = t;
    p->pos = j;
}

static bool tok_is(const parser *p, tok t, const char *kw) {
    if (t.kind != T_IDENT) {
        return false;
    }
    sl_str x = tok_text(p, t);
    return x.len == strlen(kw) && strncasecmp(x.ptr, kw, x.len) == 0;
}

static bool is_kw(const parser *p, const char *kw) {
    return tok_is(p, p->t, kw);
}

static _Noreturn void unexpected(parser *p, const char *context) {
    char b[64];
    fail_at(p, p->t.pos, "unexpected %s%s%s", tok_desc(p, p->t, b, sizeof(b)), context ? " " : "",
            context ? context : "");
}

static void expect(parser *p, tok_kind k, const char *context) {
    if (p->t.kind != k) {
        unexpected(p, context);
    }
    lex(p);
}

/* Saves and restores the lexer for one token of lookahead beyond p->t. */
static tok peek2(parser *p) {
    size_t pos = p->pos;
    tok t = p->t;
    lex(p);
    tok r = p->t;
    p->pos = pos;
    p->t = t;
    return r;
}

/* --- literals ------------------------------------------------------------------ */

static void put_utf8(char *out, size_t *k, uint32_t cp) {
    if (cp < 0x80) {
        out[(*k)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*k)++] = (char)(0xc0 | (cp >> 6));
        out[(*k)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*k)++] = (char)(0xe0 | (cp >> 12));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*k)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*k)++] = (char)(0xf0 | (cp >> 18));
        out[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*k)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Unquotes the current string token (Go escapes in "..." and '...'). */
static sl_str string_value(parser *p, tok t) {
    const char *s = p->s + t.pos + 1;
    size_t n = t.end - t.pos - 2;
    char *out = palloc(p, n + 1);
    size_t k = 0;
    if (p->s[t.pos] == '`') {
        memcpy(out, s, n);
        return (sl_str){out, n};
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[k++] = s[i];
            continue;
        }
        if (++i >= n) {
            fail_at(p, t.pos, "invalid escape sequence at end of string");
        }
        char c = s[i];
        int digits = 0;
        switch (c) {
        case 'a':
            out[k++] = '\a';
            break;
        case 'b':
            out[k++] = '\b';
            break;
        case 'f':
            out[k++] = '\f';
            break;
        case 'n':
            out[k++] = '\n';
            break;
        case 'r':
            out[k++] = '\r';
            break;
        case 't':
            out[k++] = '\t';
            break;
        case 'v':
            out[k++] = '\v';
            break;
        case '\\':
        case '\'':
        case '"':
            out[k++] = c;
            break;
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = 4;
            break;
        case 'U':
            digits = 8;
            break;
        default:
            if (c >= '0' && c <= '7' && i + 2 < n && s[i + 1] >= '0' && s[i + 1] <= '7' &&
                s[i + 2] >= '0' && s[i + 2] <= '7') {
                int v = (c - '0') * 64 + (s[i + 1] - '0') * 8 + (s[i + 2] - '0');
                if (v > 255) {
                    fail_at(p, t.pos, "invalid octal escape in string");
                }
                out[k++] = (char)v;
                i += 2;
                break;
            }
            fail_at(p, t.pos + 1 + (uint32_t)i - 1, "unknown escape sequence '\\%c'",
                    isprint((unsigned char)c) ? c : '?');
        }
        if (digits > 0) {
            uint32_t v = 0;
            for (int d = 0; d < digits; d++) {
                if (i + 1 >= n || !isxdigit((unsigned char)s[i + 1])) {
                    fail_at(p, t.pos, "invalid hex escape in string");
                }
                i++;
                char h = s[i];
                v = v * 16 + (uint32_t)(isdigit((unsigned char)h)
                                            ? h - '0'
                                            : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (digits == 2) {
                out[k++] = (char)v;
            } else {
                if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
                    fail_at(p, t.pos, "invalid unicode escape in string");
                }
                put_utf8(out, &k, v);
            }
        }
    }
    out[k] = '\0';
    return (sl_str){out, k};
}

static double number_value(parser *p, tok t) {
    sl_str x = tok_text(p, t);
    char buf[128];
    if (x.len >= sizeof(buf)) {
        fail_at(p, t.pos, "bad number syntax");
    }
    memcpy(buf, x.ptr, x.len);
    buf[x.len] = '\0';
    char *end = NULL;
    errno = 0;
    long long iv = strtoll(buf, &end, 0);
    if (end == buf + x.len && errno == 0) {
        return (double)iv;
    }
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + x.len) {
        fail_at(p, t.pos, "bad number syntax: \"%s\"", buf);
    }
    return v;
}

static int64_t duration_value(parser *p, tok t) {
    int64_t ms;
    if (t.kind != T_DUR || pq_parse_duration(tok_text(p, t), &ms) != 0) {
        sl_str x = tok_text(p, t);
        fail_at(p, t.pos, "bad duration syntax: \"%.*s\"", (int)(x.len > 40 ? 40 : x.len), x.ptr);
    }
    return ms;
}

/* --- nodes ------------------------------------------------------------------------ */

static pq_node *new_node(parser *p, pq_node_kind kind, pq_type type, uint32_t pos) {
    pq_node *n = palloc(p, sizeof(*n));
    n->kind = kind;
    n->type = type;
    n->pos = pos;
    n->end = pos;
    return n;
}

const char *pq_type_name(pq_type t) {
    switch (t) {
    case PQ_SCALAR:
        return "scalar";
    case PQ_VECTOR:
        return "instant vector";
    case PQ_MATRIX:
        return "range vector";
    case PQ_STRING:
        return "string";
    }
    return "unknown";
}

static pq_node *parse_expr(parser *p, int min_prec);

/* Binary operator precedence of the current token, or 0. */
static int binop_prec(parser *p, pq_binop *op) {
    static const struct {
        tok_kind k;
        pq_binop op;
        int prec;
    } ops[] = {
        {T_ADD, PQ_OP_ADD, 4}, {T_SUB, PQ_OP_SUB, 4}, {T_MUL, PQ_OP_MUL, 5},  {T_DIV, PQ_OP_DIV, 5},
        {T_MOD, PQ_OP_MOD, 5}, {T_POW, PQ_OP_POW, 6}, {T_EQLC, PQ_OP_EQL, 3}, {T_NEQ, PQ_OP_NEQ, 3},
        {T_GTR, PQ_OP_GTR, 3}, {T_LSS, PQ_OP_LSS, 3}, {T_GTE, PQ_OP_GTE, 3},  {T_LTE, PQ_OP_LTE, 3},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (p->t.kind == ops[i].k) {
            *op = ops[i].op;
            return ops[i].prec;
        }
    }
    if (is_kw(p, "and")) {
        *op = PQ_OP_AND;
        return 2;
    }
    if (is_kw(p, "unless")) {
        *op = PQ_OP_UNLESS;
        return 2;
    }
    if (is_kw(p, "or")) {
        *op = PQ_OP_OR;
        return 1;
    }
    if (is_kw(p, "atan2")) {
        *op = PQ_OP_ATAN2;
        return 5;
    }
    return 0;
}

static bool is_comparison(pq_binop op) {
    return op >= PQ_OP_EQL && op <= PQ_OP_LTE;
}

static bool is_setop(pq_binop op) {
    return op == PQ_OP_AND || op == PQ_OP_OR || op == PQ_OP_UNLESS;
}

static const char *binop_name(pq_binop op) {
    static const char *const names[] = {"",   "+", "-", "*",  "/",  "%",   "^",  "atan2", "==",
                                        "!=", ">", "<", ">=", "<=", "and", "or", "unless"};
    return names[op];
}

/* A parenthesised list of label names for by/without/on/ignoring/group_x. */
static sl_str *label_list(parser *p, size_t *n) {
    expect(p, T_LPAREN, "in grouping opts, expected \"(\"");
    size_t cap = 8;
    sl_str *out = palloc(p, cap * sizeof(sl_str));
    *n = 0;
    while (p->t.kind != T_RPAREN) {
        if (p->t.kind != T_IDENT || memchr(p->s + p->t.pos, ':', p->t.end - p->t.pos) != NULL) {
            unexpected(p, "in grouping opts, expected label");
        }
        if (*n == cap) {
            sl_str *bigger = palloc(p, cap * 2 * sizeof(sl_str));
            memcpy(bigger, out, cap * sizeof(sl_str));
            out = bigger;
            cap *= 2;
        }
        out[(*n)++] = tok_text(p, p->t);
        lex(p);
        if (p->t.kind == T_COMMA) {
            lex(p);
        } else if (p->t.kind != T_RPAREN) {
            unexpected(p, "in grouping opts, expected \",\" or \")\"");
        }
    }
    lex(p);
    return out;
}

int pq_query_track_regex(pq_query *q, pq_regex *re) {
    if (q->nregexes == q->regexes_cap &&
        sl_array_grow(&q->regexes, &q->regexes_cap, q->nregexes + 1, sizeof(pq_regex *)) != 0) {
        pq_regex_free(re);
        return SL_ENOMEM;
    }
    q->regexes[q->nregexes++] = re;
    return 0;
}

/* Every compiled regex is owned by the query from the moment it exists, so a
 * parse error anywhere later still frees it. */
static void track_regex(parser *p, pq_regex *re) {
    if (pq_query_track_regex(p->q, re) != 0) {
        fail_nomem(p);
    }
}

static bool matches_empty(parser *p, const pq_matcher *m, pq_regex *re) {
    (void)p;
    switch (m->op) {
    case PQ_MATCH_EQ:
        return m->value.len == 0;
    case PQ_MATCH_NE:
        return m->value.len != 0;
    case PQ_MATCH_RE:
        return pq_regex_match(re, (sl_str){"", 0});
    case PQ_MATCH_NRE:
        return !pq_regex_match(re, (sl_str){"", 0});
    }
    return true;
}

/* Parses {matchers} into sel (after an optional metric name already set). */
static void parse_matchers(parser *p, pq_node *sel, sl_str metric, bool has_metric) {
    size_t cap = 4, n = 0;
    pq_matcher *m = palloc(p, cap * sizeof(*m));
    pq_regex **re = palloc(p, cap * sizeof(*re));
    uint32_t start = p->t.pos;
    if (has_metric) {
        m[n++] = (pq_matcher){PQ_MATCH_EQ, SL_STR_LIT("__name__"), metric};
    }
    if (p->t.kind == T_LBRACE) {
        lex(p);
        while (p->t.kind != T_RBRACE) {
            if (p->t.kind != T_IDENT) {
                unexpected(p, "in label matching, expected label");
            }
            tok name = p->t;
            sl_str nm = tok_text(p, name);
            lex(p);
            pq_match_op op;
            switch (p->t.kind) {
            case T_ASSIGN:
                op = PQ_MATCH_EQ;
                break;
            case T_NEQ:
                op = PQ_MATCH_NE;
                break;
            case T_RE:
                op = PQ_MATCH_RE;
                break;
            case T_NRE:
                op = PQ_MATCH_NRE;
                break;
            default:
                unexpected(p, "in label matching, expected label matching operator");
            }
            lex(p);
            if (p->t.kind != T_STR) {
                unexpected(p, "in label matching, expected string");
            }
            tok vt = p->t;
            sl_str val = string_value(p, vt);
            lex(p);
            if (n == cap) {
                pq_matcher *bm = palloc(p, cap * 2 * sizeof(*m));
                pq_regex **br = palloc(p, cap * 2 * sizeof(*re));
                memcpy(bm, m, cap * sizeof(*m));
                memcpy(br, re, cap * sizeof(*re));
                m = bm;
                re = br;
                cap *= 2;
            }
            if (has_metric && sl_str_eqc(nm, "__name__")) {
                fail_at(p, name.pos, "metric name must not be set twice: \"%.*s\" or \"%.*s\"",
                        (int)metric.len, metric.ptr, (int)val.len, val.ptr);
            }
            m[n] = (pq_matcher){op, nm, val};
            re[n] = NULL;
            if (op == PQ_MATCH_RE || op == PQ_MATCH_NRE) {
                char emsg[200];
                int rc = pq_regex_compile(val, &re[n], emsg, sizeof(emsg));
                if (rc == SL_ENOMEM) {
                    fail_nomem(p);
                }
                if (rc != 0) {
                    fail_at(p, vt.pos, "%s", emsg);
                }
                track_regex(p, re[n]);
            }
            n++;
            if (p->t.kind == T_COMMA) {
                lex(p);
            } else if (p->t.kind != T_RBRACE) {
                unexpected(p, "in label matching, expected \",\" or \"}\"");
            }
        }
        sel->end = p->t.end;
        lex(p);
    }
    sel->m = m;
    sel->re = re;
    sel->nm = n;
    bool nonempty = false;
    for (size_t i = 0; i < n && !nonempty; i++) {
        nonempty = !matches_empty(p, &m[i], re[i]);
    }
    if (!nonempty) {
        fail_at(p, has_metric ? sel->pos : start,
                "vector selector must contain at least one non-empty matcher");
    }
}

static const struct {
    const char *name;
    pq_aggop op;
} g_aggs[] = {
    {"sum", PQ_AGG_SUM},           {"avg", PQ_AGG_AVG},
    {"count", PQ_AGG_COUNT},       {"min", PQ_AGG_MIN},
    {"max", PQ_AGG_MAX},           {"group", PQ_AGG_GROUP},
    {"stddev", PQ_AGG_STDDEV},     {"stdvar", PQ_AGG_STDVAR},
    {"topk", PQ_AGG_TOPK},         {"bottomk", PQ_AGG_BOTTOMK},
    {"quantile", PQ_AGG_QUANTILE}, {"count_values", PQ_AGG_COUNT_VALUES},
};

static pq_node *parse_call_args(parser *p, pq_node *n) {
    expect(p, T_LPAREN, "in call, expected \"(\"");
    size_t cap = 4;
    n->args = palloc(p, cap * sizeof(pq_node *));
    while (p->t.kind != T_RPAREN) {
        if (n->nargs == cap) {
            pq_node **b = palloc(p, cap * 2 * sizeof(pq_node *));
            memcpy(b, n->args, cap * sizeof(pq_node *));
            n->args = b;
            cap *= 2;
        }
        n->args[n->nargs++] = parse_expr(p, 1);
        if (p->t.kind == T_COMMA) {
            lex(p);
            if (p->t.kind == T_RPAREN) {
                unexpected(p, "in call, trailing commas not allowed in function call args");
            }
        } else if (p->t.kind != T_RPAREN) {
            unexpected(p, "in call, expected \",\" or \")\"");
        }
    }
    n->end = p->t.end;
    lex(p);
    return n;
}

static void check_arg(parser *p, const char *fname, pq_node *arg, pq_type want) {
    if (arg->type != want) {
        fail_at(p, arg->pos, "expected type %s in call to function \"%s\", got %s",
                pq_type_name(want), fname, pq_type_name(arg->type));
    }
}

static pq_node *parse_aggregation(parser *p, pq_aggop op, tok name) {
    pq_node *n = new_node(p, PQ_N_AGG, PQ_VECTOR, name.pos);
    n->agg = op;
    lex(p);
    bool grouped = false;
    if (is_kw(p, "by") || is_kw(p, "without")) {
        n->without = is_kw(p, "without");
        lex(p);
        n->grouping = label_list(p, &n->ngrouping);
        grouped = true;
    }
    pq_node tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (p->t.kind != T_LPAREN) {
        unexpected(p, "in aggregation, expected \"(\"");
    }
    parse_call_args(p, &tmp);
    n->end = tmp.end;
    if (!grouped && (is_kw(p, "by") || is_kw(p, "without"))) {
        n->without = is_kw(p, "without");
        lex(p);
        n->grouping = label_list(p, &n->ngrouping);
    }
    bool has_param = op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK || op == PQ_AGG_QUANTILE ||
                     op == PQ_AGG_COUNT_VALUES;
    size_t want = has_param ? 2 : 1;
    if (tmp.nargs != want) {
        fail_at(
            p, name.pos,
            "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
            want, tmp.nargs);
    }
    n->a = tmp.args[want - 1];
    if (has_param) {
        n->b = tmp.args[0];
        pq_type pt = op == PQ_AGG_COUNT_VALUES ? PQ_STRING : PQ_SCALAR;
        if (n->b->type != pt) {
            fail_at(p, n->b->pos, "expected type %s in aggregation parameter, got %s",
                    pq_type_name(pt), pq_type_name(n->b->type));
        }
    }
    if (n->a->type != PQ_VECTOR) {
        fail_at(p, n->a->pos, "expected type instant vector in aggregation expression, got %s",
                pq_type_name(n->a->type));
    }
    return n;
}

/* A primary expression: literal, selector, call, aggregation, parentheses,
 * unary operator. */
static pq_node *parse_primary(parser *p) {
    tok t = p->t;
    switch (t.kind) {
    case T_NUM: {
        pq_node *n = new_node(p, PQ_N_NUM, PQ_SCALAR, t.pos);
        n->num = number_value(p, t);
        n->end = t.end;
        lex(p);
        return n;
    }
    case T_DUR:
        fail_at(p, t.pos, "unexpected duration \"%.*s\"", (int)(t.end - t.pos), p->s + t.pos);
    case T_STR: {
        pq_node *n = new_node(p, PQ_N_STR, PQ_STRING, t.pos);
        n->str = string_value(p, t);
        n->end = t.end;
        lex(p);
        return n;
    }
    case T_LPAREN: {
        lex(p);
        pq_node *n = new_node(p, PQ_N_PAREN, PQ_SCALAR, t.pos);
        n->a = parse_expr(p, 1);
        n->type = n->a->type;
        n->end = p->t.end;
        expect(p, T_RPAREN, "in paren expression, expected \")\"");
        return n;
    }
    case T_LBRACE: {
        pq_node *n = new_node(p, PQ_N_SEL, PQ_VECTOR, t.pos);
        parse_matchers(p, n, (sl_str){"", 0}, false);
        return n;
    }
    case T_ADD:
    case T_SUB: {
        lex(p);
        /* The operand binds everything tighter than '*': only '^'. */
        pq_node *a = parse_expr(p, 6);
        if (a->type != PQ_SCALAR && a->type != PQ_VECTOR) {
            fail_at(p, t.pos,
                    "unary expression only allowed on expressions of type scalar or instant "
                    "vector, got %s",
                    pq_type_name(a->type));
        }
        if (t.kind == T_ADD) {
            return a;
        }
        if (a->kind == PQ_N_NUM) {
            a->num = -a->num;
            a->pos = t.pos;
            return a;
        }
        pq_node *n = new_node(p, PQ_N_NEG, a->type, t.pos);
        n->a = a;
        n->end = a->end;
        return n;
    }
    case T_IDENT: {
        sl_str name = tok_text(p, t);
        if (tok_is(p, t, "inf") || tok_is(p, t, "nan")) {
            pq_node *n = new_node(p, PQ_N_NUM, PQ_SCALAR, t.pos);
            n->num = tok_is(p, t, "inf") ? INFINITY : NAN;
            n->end = t.end;
            lex(p);
            return n;
        }
        for (size_t i = 0; i < sizeof(g_aggs) / sizeof(g_aggs[0]); i++) {
            if (tok_is(p, t, g_aggs[i].name)) {
                tok nx = peek2(p);
                if (nx.kind == T_LPAREN || tok_is(p, nx, "by") || tok_is(p, nx, "without")) {
                    return parse_aggregation(p, g_aggs[i].op, t);
                }
                fail_at(p, nx.pos, "unexpected %s in aggregation",
                        nx.kind == T_EOF ? "end of input" : "token");
            }
        }
        static const char *const reserved[] = {"by",         "without",     "on",     "ignoring",
                                               "group_left", "group_right", "offset", "bool",
                                               "and",        "or",          "unless", "atan2"};
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
            if (tok_is(p, t, reserved[i])) {
                unexpected(p, NULL);
            }
        }
        tok nx = peek2(p);
        if (nx.kind == T_LPAREN) {
            const pq_func *fn = pq_func_lookup(name);
            if (fn == NULL) {
                fail_at(p, t.pos, "unknown function with name \"%.*s\"", (int)name.len, name.ptr);
            }
            pq_node *n = new_node(p, PQ_N_CALL, fn->ret, t.pos);
            n->fn = fn;
            lex(p);
            parse_call_args(p, n);
            size_t nargs = n->nargs;
            size_t maxargs = fn->optional < 0 ? SIZE_MAX : (size_t)(fn->nargs + fn->optional);
            if (nargs < (size_t)fn->nargs || nargs > maxargs) {
                if (fn->optional != 0) {
                    fail_at(p, t.pos, "expected at least %d argument(s) in call to \"%s\", got %zu",
                            fn->nargs, fn->name, nargs);
                }
                fail_at(p, t.pos, "expected %d argument(s) in call to \"%s\", got %zu", fn->nargs,
                        fn->name, nargs);
            }
            for (size_t i = 0; i < nargs; i++) {
                size_t ai = i < 5 ? i : 4;
                check_arg(p, fn->name, n->args[i], fn->args[ai]);
            }
            return n;
        }
        pq_node *n = new_node(p, PQ_N_SEL, PQ_VECTOR, t.pos);
        n->end = t.end;
        lex(p);
        parse_matchers(p, n, name, true);
        return n;
    }
    default:
        unexpected(p, NULL);
    }
}

static int64_t at_timestamp(parser *p) {
    bool neg = false;
    if (p->t.kind == T_SUB || p->t.kind == T_ADD) {
        neg = p->t.kind == T_SUB;
        lex(p);
    }
    if (p->t.kind != T_NUM) {
        unexpected(p, "in @, expected number or start() or end()");
    }
    double v = number_value(p, p->t);
    if (neg) {
        v = -v;
    }
    double ms = round(v * 1000.0);
    if (!isfinite(v) || ms > 9.2e18 || ms < -9.2e18) {
        fail_at(p, p->t.pos, "timestamp out of bounds for @ modifier: %g", v);
    }
    lex(p);
    return (int64_t)ms;
}

/* Range, subquery, offset and @ after a primary expression. */
static pq_node *parse_postfix(parser *p, pq_node *n) {
    for (;;) {
        if (p->t.kind == T_LBRACK) {
            tok lb = p->t;
            lex(p);
            tok rt = p->t;
            if (rt.kind != T_DUR && rt.kind != T_NUM) {
                unexpected(p, "in subquery or range selector, expected duration");
            }
            int64_t range = duration_value(p, rt);
            lex(p);
            if (p->t.kind == T_COLON) {
                lex(p);
                int64_t step = 0;
                if (p->t.kind != T_RBRACK) {
                    if (p->t.kind != T_DUR) {
                        unexpected(p, "in subquery, expected duration");
                    }
                    step = duration_value(p, p->t);
                    if (step == 0) {
                        fail_at(p, p->t.pos, "zero step in subquery");
                    }
                    lex(p);
                }
                if (n->type != PQ_VECTOR) {
                    fail_at(p, n->pos, "subquery is only allowed on instant vector, got %s",
                            pq_type_name(n->type));
                }
                pq_node *s = new_node(p, PQ_N_SUBQ, PQ_MATRIX, n->pos);
                s->a = n;
                s->range_ms = range;
                s->step_ms = step;
                s->end = p->t.end;
                expect(p, T_RBRACK, "in subquery, expected \"]\"");
                n = s;
                continue;
            }
            if (n->kind != PQ_N_SEL || n->range_ms > 0) {
                fail_at(p, lb.pos, "ranges only allowed for vector selectors");
            }
            if (n->has_offset || n->at != PQ_AT_NONE) {
                fail_at(p, lb.pos, "no offset or @ modifiers allowed before range");
            }
            if (range <= 0) {
                fail_at(p, rt.pos, "range must be greater than 0");
            }
            n->range_ms = range;
            n->type = PQ_MATRIX;
            n->end = p->t.end;
            expect(p, T_RBRACK, "in range selector, expected \"]\"");
            continue;
        }
        if (is_kw(p, "offset")) {
            tok ot = p->t;
            lex(p);
            bool neg = false;
            if (p->t.kind == T_SUB) {
                neg = true;
                lex(p);
            }
            if (p->t.kind != T_DUR) {
                unexpected(p, "in offset, expected duration");
            }
            int64_t off = duration_value(p, p->t);
            n->end = p->t.end;
            lex(p);
            if (n->kind != PQ_N_SEL && n->kind != PQ_N_SUBQ) {
                fail_at(p, ot.pos,
                        "offset modifier must be preceded by an instant vector selector or range "
                        "vector selector or a subquery");
            }
            if (n->has_offset) {
                fail_at(p, ot.pos, "offset may not be set multiple times");
            }
            n->has_offset = true;
            n->offset_ms = neg ? -off : off;
            continue;
        }
        if (p->t.kind == T_AT) {
            tok at = p->t;
            lex(p);
            pq_at kind = PQ_AT_TS;
            int64_t ts = 0;
            if ((is_kw(p, "start") || is_kw(p, "end")) && peek2(p).kind == T_LPAREN) {
                kind = is_kw(p, "start") ? PQ_AT_START : PQ_AT_END;
                lex(p);
                lex(p);
                expect(p, T_RPAREN, "in @, expected \")\"");
            } else {
                ts = at_timestamp(p);
            }
            if (n->kind != PQ_N_SEL && n->kind != PQ_N_SUBQ) {
                fail_at(p, at.pos,
                        "@ modifier must be preceded by an instant vector selector or range vector "
                        "selector or a subquery");
            }
            if (n->at != PQ_AT_NONE) {
                fail_at(p, at.pos, "@ <timestamp> may not be set multiple times");
            }
            n->at = kind;
            n->at_ms = ts;
            continue;
        }
        return n;
    }
}

static bool has_label(const sl_str *l, size_t n, sl_str x) {
    for (size_t i = 0; i < n; i++) {
        if (sl_str_eq(l[i], x)) {
            return true;
        }
    }
    return false;
}

#define MAX_DEPTH 200

static pq_node *parse_expr(parser *p, int min_prec) {
    if (++p->depth > MAX_DEPTH) {
        fail_at(p, p->t.pos, "expression nested deeper than %d levels", MAX_DEPTH);
    }
    pq_node *lhs = parse_postfix(p, parse_primary(p));
    for (;;) {
        pq_binop op;
        int prec = binop_prec(p, &op);
        if (prec == 0 || prec < min_prec) {
            p->depth--;
            return lhs;
        }
        tok optok = p->t;
        lex(p);
        pq_node *n = new_node(p, PQ_N_BIN, PQ_VECTOR, lhs->pos);
        n->op = op;
        n->card = is_setop(op) ? PQ_CARD_MANY_MANY : PQ_CARD_ONE_ONE;
        bool matching = false;
        if (is_kw(p, "bool")) {
            if (!is_comparison(op)) {
                fail_at(p, p->t.pos, "bool modifier can only be used on comparison operators");
            }
            n->bool_mod = true;
            lex(p);
        }
        if (is_kw(p, "on") || is_kw(p, "ignoring")) {
            n->on = is_kw(p, "on");
            lex(p);
            n->matchls = label_list(p, &n->nmatchls);
            matching = true;
            if (is_kw(p, "group_left") || is_kw(p, "group_right")) {
                tok gt = p->t;
                if (is_setop(op)) {
                    fail_at(p, gt.pos, "no grouping allowed for \"%s\" operation", binop_name(op));
                }
                n->card = is_kw(p, "group_left") ? PQ_CARD_MANY_ONE : PQ_CARD_ONE_MANY;
                lex(p);
                if (p->t.kind == T_LPAREN) {
                    n->include = label_list(p, &n->ninclude);
                }
                for (size_t i = 0; i < n->ninclude; i++) {
                    if (n->on && has_label(n->matchls, n->nmatchls, n->include[i])) {
                        fail_at(p, gt.pos,
                                "label \"%.*s\" must not occur in ON and GROUP clause at once",
                                (int)n->include[i].len, n->include[i].ptr);
                    }
                }
            }
        }
        /* '^' is right associative: its right operand may hold another '^'. */
        pq_node *rhs = parse_expr(p, op == PQ_OP_POW ? prec : prec + 1);
        n->a = lhs;
        n->b = rhs;
        n->end = rhs->end;
        for (int side = 0; side < 2; side++) {
            pq_node *x = side ? rhs : lhs;
            if (x->type != PQ_SCALAR && x->type != PQ_VECTOR) {
                fail_at(p, x->pos,
                        "binary expression must contain only scalar and instant vector types");
            }
        }
        bool scalars = lhs->type == PQ_SCALAR && rhs->type == PQ_SCALAR;
        if (is_comparison(op) && scalars && !n->bool_mod) {
            fail_at(p, optok.pos, "comparisons between scalars must use BOOL modifier");
        }
        if (is_setop(op) && (lhs->type == PQ_SCALAR || rhs->type == PQ_SCALAR)) {
            fail_at(p, optok.pos, "set operator \"%s\" not allowed in binary scalar expression",
                    binop_name(op));
        }
        if (matching && (lhs->type != PQ_VECTOR || rhs->type != PQ_VECTOR)) {
            fail_at(p, optok.pos, "vector matching only allowed between instant vectors");
        }
        n->type = scalars ? PQ_SCALAR : PQ_VECTOR;
        lhs = n;
    }
}

static int parse_into(pq_query *q, pq_error *err) {
    parser p;
    memset(&p, 0, sizeof(p));
    p.q = q;
    p.s = q->text.ptr;
    p.len = q->text.len;
    p.err = err;
    int jr = setjmp(p.jb);
    if (jr != 0) {
        return jr == 2 ? SL_ENOMEM : SL_EINVAL;
    }
    lex(&p);
    if (p.t.kind == T_EOF) {
        fail_at(&p, 0, "no expression found in input");
    }
    q->root = parse_expr(&p, 1);
    if (p.t.kind != T_EOF) {
        unexpected(&p, NULL);
    }
    return 0;
}

static int query_new(sl_str text, pq_query **out, pq_error *err) {
    *out = NULL;
    memset(err, 0, sizeof(*err));
    pq_query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        err->kind = PQ_ERR_INTERNAL;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return SL_ENOMEM;
    }
    sl_arena_init(&q->arena, (size_t)1 << 30);
    char *copy = sl_arena_strndup(&q->arena, text.ptr ? text.ptr : "", text.len);
    if (copy == NULL) {
        pq_query_free(q);
        err->kind = PQ_ERR_INTERNAL;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return SL_ENOMEM;
    }
    q->text = (sl_str){copy, text.len};
    *out = q;
    return 0;
}

int pq_parse(sl_str text, pq_query **out, pq_error *err) {
    pq_query *q;
    int rc = query_new(text, &q, err);
    if (rc != 0) {
        *out = NULL;
        return rc;
    }
    rc = parse_into(q, err);
    if (rc != 0) {
        pq_query_free(q);
        q = NULL;
    }
    *out = q;
    return rc;
}

int pq_parse_selector(sl_str text, pq_query **out, const pq_matcher **m, size_t *nm,
                      pq_error *err) {
    pq_query *q;
    int rc = pq_parse(text, &q, err);
    if (rc != 0) {
        *out = NULL;
        return rc;
    }
    pq_node *n = q->root;
    if (n->kind != PQ_N_SEL || n->range_ms > 0 || n->has_offset || n->at != PQ_AT_NONE) {
        err->kind = PQ_ERR_BAD_DATA;
        snprintf(err->msg, sizeof(err->msg), "1:1: parse error: expected a series selector, got %s",
                 n->kind == PQ_N_SEL ? "a selector with modifiers" : "an expression");
        pq_query_free(q);
        *out = NULL;
        return SL_EINVAL;
    }
    *m = n->m;
    *nm = n->nm;
    *out = q;
    return 0;
}

void pq_query_free(pq_query *q) {
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < q->nregexes; i++) {
        pq_regex_free(q->regexes[i]);
    }
    free(q->regexes);
    for (size_t i = 0; i < q->nres_points; i++) {
        free(q->res_points[i]);
    }
    free(q->res_points);
    sl_arena_free(&q->arena);
    free(q);
}

pq_type pq_query_type(const pq_query *q) {
    return q->root->type;
}
