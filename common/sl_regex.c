/*
 * sl_regex on PCRE2 (see sl_regex.h). The pattern is wrapped as
 * ^(?:pattern)$ -- with \z rather than $ so that a trailing newline is not
 * forgiven -- and compiled in UTF mode; JIT is used when the library has it.
 * Each thread keeps one small match-data block (a pthread key frees it when
 * the thread exits), so steady-state matching does not call malloc.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "sl_regex.h"

#include "sl_err.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_regex {
    pcre2_code *code;
};

/* Constructs RE2 does not have: back-references (\1..\9, \g, \k) and
 * possessive or atomic groups. Scans outside character classes. */
static int re2_incompatible(sl_str p, size_t *at) {
    bool in_class = false;
    for (size_t i = 0; i < p.len; i++) {
        char c = p.ptr[i];
        if (c == '\\' && i + 1 < p.len) {
            char n = p.ptr[i + 1];
            if (!in_class && ((n >= '1' && n <= '9') || n == 'g' || n == 'k')) {
                *at = i;
                return 1;
            }
            i++;
            continue;
        }
        if (in_class) {
            in_class = c != ']';
        } else if (c == '[') {
            in_class = true;
            if (i + 1 < p.len && p.ptr[i + 1] == ']') {
                i++; /* a leading ] is a literal */
            }
        } else if (c == '(' && i + 2 < p.len && p.ptr[i + 1] == '?' && p.ptr[i + 2] == '>') {
            *at = i;
            return 1;
        }
    }
    return 0;
}

int sl_regex_compile(sl_str pattern, sl_regex **out, char *err, size_t errcap) {
    *out = NULL;
    if (errcap > 0) {
        err[0] = '\0';
    }
    size_t at = 0;
    if (re2_incompatible(pattern, &at)) {
        if (errcap > 0) {
            snprintf(err, errcap, "invalid regular expression at offset %zu: not RE2 syntax", at);
        }
        return SL_EINVAL;
    }
    size_t wlen = pattern.len + 8;
    char *wrapped = malloc(wlen);
    sl_regex *re = calloc(1, sizeof(*re));
    if (wrapped == NULL || re == NULL) {
        free(wrapped);
        free(re);
        return SL_ENOMEM;
    }
    memcpy(wrapped, "^(?:", 4);
    memcpy(wrapped + 4, pattern.ptr, pattern.len);
    memcpy(wrapped + 4 + pattern.len, ")\\z", 3);
    int ecode;
    PCRE2_SIZE eoff;
    /* The pattern comes from users (PromQL, API parameters): PCRE2 must check
     * its UTF-8, since invalid UTF-8 under PCRE2_NO_UTF_CHECK is undefined
     * behaviour (a crash, found by fuzz_promql_parse). */
    re->code = pcre2_compile((PCRE2_SPTR)wrapped, pattern.len + 7, PCRE2_UTF, &ecode, &eoff, NULL);
    free(wrapped);
    if (re->code == NULL) {
        if (errcap > 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            size_t off = eoff >= 4 ? eoff - 4 : 0;
            off = off > pattern.len ? pattern.len : off;
            snprintf(err, errcap, "invalid regular expression at offset %zu: %s", off,
                     (const char *)msg);
        }
        free(re);
        return SL_EINVAL;
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional speed-up */
    *out = re;
    return 0;
}

/* One match-data block per thread, freed when the thread exits. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md) {
    pcre2_match_data_free(md);
}

static void md_key_init(void) {
    (void)pthread_key_create(&md_key, md_free);
}

bool sl_regex_match(const sl_regex *re, sl_str s) {
    pthread_once(&md_once, md_key_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL) {
        /* Only whether it matches is needed: one pair of offsets is enough. */
        md = pcre2_match_data_create(1, NULL);
        if (md == NULL || pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            return false;
        }
    }
    /* Invalid UTF-8 in the subject is an error (no match), never a crash. */
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s.ptr ? s.ptr : ""), s.len, 0, 0, md, NULL);
    return rc >= 0;
}

void sl_regex_free(sl_regex *re) {
    if (re != NULL) {
        pcre2_code_free(re->code);
        free(re);
    }
}
