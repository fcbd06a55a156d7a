/*
 * Regular expressions for label matchers and label_replace. Matching goes
 * through common/sl_regex (RE2 semantics, anchored as Prometheus anchors
 * "^(?:re)$"), the same code storage uses; label_replace also needs capture
 * groups and Go's template expansion ($1, ${1}, $name, ${name}, $$), which
 * this file adds on a PCRE2 compilation of the same anchored pattern.
 * Thread-safety: a compiled pattern may be matched from any thread (match
 * data is per call).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pq_int.h"

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_regex.h"

#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pq_regex {
    sl_regex *m;      /* the project's matcher semantics (RE2 subset, anchored) */
    pcre2_code *code; /* the same pattern with capture groups, for expansion */
};

int pq_regex_compile(sl_str pattern, pq_regex **out, char *err, size_t errcap) {
    *out = NULL;
    /* Validate and match with sl_regex so that the engine accepts exactly
     * the patterns storage accepts. */
    sl_regex *m = NULL;
    int rc = sl_regex_compile(pattern, &m, err, errcap);
    if (rc != 0) {
        if (rc == SL_EINVAL && errcap > 0 && strncmp(err, "error parsing regexp", 20) != 0) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "error parsing regexp: %s", err);
            snprintf(err, errcap, "%s", tmp);
        }
        return rc;
    }
    /* Wrapping keeps alternations inside the anchors: a|b must not become
     * ^a|b$. */
    sl_buf b;
    sl_buf_init(&b, 0);
    if (sl_buf_append_str(&b, "^(?:") != 0 || sl_buf_append(&b, pattern.ptr, pattern.len) != 0 ||
        sl_buf_append_str(&b, ")$") != 0) {
        sl_buf_free(&b);
        sl_regex_free(m);
        return SL_ENOMEM;
    }
    int code = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.data, b.len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                                   &code, &off, NULL);
    sl_buf_free(&b);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errcap, "error parsing regexp: %s", (const char *)msg);
        sl_regex_free(m);
        return SL_EINVAL;
    }
    pq_regex *r = malloc(sizeof(*r));
    if (r == NULL) {
        pcre2_code_free(re);
        sl_regex_free(m);
        return SL_ENOMEM;
    }
    r->m = m;
    r->code = re;
    *out = r;
    return 0;
}

void pq_regex_free(pq_regex *re) {
    if (re != NULL) {
        sl_regex_free(re->m);
        pcre2_code_free(re->code);
        free(re);
    }
}

bool pq_regex_match(const pq_regex *re, sl_str s) {
    return sl_regex_match(re->m, s);
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Appends group (by number or name) of the match to b; unknown groups expand
 * to nothing, as in Go. */
static int append_group(sl_buf *b, const pq_regex *re, pcre2_match_data *md, int rc, sl_str s,
                        const char *name, size_t nlen) {
    long idx = -1;
    bool numeric = nlen > 0;
    for (size_t i = 0; i < nlen; i++) {
        numeric = numeric && name[i] >= '0' && name[i] <= '9';
    }
    if (numeric) {
        idx = nlen > 9 ? -1 : strtol(name, NULL, 10);
    } else {
        char tmp[128];
        if (nlen >= sizeof(tmp)) {
            return 0;
        }
        memcpy(tmp, name, nlen);
        tmp[nlen] = '\0';
        int n = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)tmp);
        idx = n >= 0 ? n : -1;
    }
    if (idx < 0 || idx >= rc) {
        return 0;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * idx] == PCRE2_UNSET) {
        return 0;
    }
    return sl_buf_append(b, s.ptr + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
}

int pq_regex_expand(const pq_regex *re, sl_str s, sl_str tmpl, sl_arena *a, sl_str *out) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (md == NULL) {
        return SL_ENOMEM;
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s.ptr ? s.ptr : ""), s.len, 0, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return 0;
    }
    sl_buf b;
    sl_buf_init(&b, 0);
    int err = 0;
    for (size_t i = 0; i < tmpl.len && err == 0; i++) {
        char c = tmpl.ptr[i];
        if (c != '$' || i + 1 >= tmpl.len) {
            err = sl_buf_putc(&b, (uint8_t)c);
            continue;
        }
        if (tmpl.ptr[i + 1] == '$') {
            err = sl_buf_putc(&b, '$');
            i++;
            continue;
        }
        if (tmpl.ptr[i + 1] == '{') {
            size_t j = i + 2;
            while (j < tmpl.len && is_name_char(tmpl.ptr[j])) {
                j++;
            }
            if (j < tmpl.len && tmpl.ptr[j] == '}' && j > i + 2) {
                err = append_group(&b, re, md, rc, s, tmpl.ptr + i + 2, j - i - 2);
                i = j;
            } else {
                /* Not a valid reference: Go copies the '$' literally. */
                err = sl_buf_putc(&b, '$');
            }
            continue;
        }
        size_t j = i + 1;
        while (j < tmpl.len && is_name_char(tmpl.ptr[j])) {
            j++;
        }
        if (j == i + 1) {
            err = sl_buf_putc(&b, '$');
            continue;
        }
        err = append_group(&b, re, md, rc, s, tmpl.ptr + i + 1, j - i - 1);
        i = j - 1;
    }
    pcre2_match_data_free(md);
    if (err == 0) {
        char *p = sl_arena_strndup(a, b.len > 0 ? (const char *)b.data : "", b.len);
        if (p == NULL) {
            err = SL_ENOMEM;
        } else {
            *out = (sl_str){p, b.len};
        }
    }
    sl_buf_free(&b);
    return err != 0 ? SL_ENOMEM : 1;
}
