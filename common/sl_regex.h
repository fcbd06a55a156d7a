/*
 * Regular expressions with the semantics Prometheus label matchers use: RE2
 * syntax, matched against the whole string (the pattern is anchored as
 * ^(?:pattern)$). Implemented on PCRE2, whose syntax is a superset of RE2's
 * for everything label matchers use (classes, \d \w \s, (?i), non-greedy,
 * alternation, repetition counts); PCRE2-only constructs such as
 * back-references are rejected so that a pattern means the same as in
 * Prometheus or fails.
 *
 * Thread-safety: a compiled sl_regex is immutable; sl_regex_match may be
 * called on it from any number of threads.
 */
#ifndef SL_REGEX_H
#define SL_REGEX_H

#include "sl_util.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sl_regex sl_regex;

/* Compiles pattern. Returns 0, SL_EINVAL (err receives a message with the
 * offset of the problem, NUL-terminated when errcap > 0) or SL_ENOMEM. */
int sl_regex_compile(sl_str pattern, sl_regex **out, char *err, size_t errcap);

/* True when the whole of s matches. */
bool sl_regex_match(const sl_regex *re, sl_str s);

/* NULL is fine. */
void sl_regex_free(sl_regex *re);

#endif
