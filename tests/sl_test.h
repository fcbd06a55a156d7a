/*
 * The project's tiny test harness: ASSERT_* macros that print both sides on
 * failure and count, and a RUN() driver. A test file defines
 * `static void test_x(void)` functions and a main() that RUN()s them and
 * returns SL_TEST_RESULT().
 */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sl_test_failures;
static const char *sl_test_current;

#define SL_FAIL_AT(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, sl_test_current);                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        sl_test_failures++;                                                                        \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            SL_FAIL_AT("expected true: %s", #c);                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long sl_a_ = (long long)(a), sl_b_ = (long long)(b);                                  \
        if (sl_a_ != sl_b_) {                                                                      \
            SL_FAIL_AT("%s == %s: %lld != %lld", #a, #b, sl_a_, sl_b_);                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_U64_EQ(a, b)                                                                        \
    do {                                                                                           \
        uint64_t sl_a_ = (uint64_t)(a), sl_b_ = (uint64_t)(b);                                     \
        if (sl_a_ != sl_b_) {                                                                      \
            SL_FAIL_AT("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, sl_a_, sl_b_);                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_DBL_EQ(a, b)                                                                        \
    do {                                                                                           \
        double sl_a_ = (a), sl_b_ = (b);                                                           \
        if (sl_a_ != sl_b_) {                                                                      \
            SL_FAIL_AT("%s == %s: %.17g != %.17g", #a, #b, sl_a_, sl_b_);                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *sl_a_ = (a), *sl_b_ = (b);                                                     \
        if (sl_a_ == NULL || sl_b_ == NULL || strcmp(sl_a_, sl_b_) != 0) {                         \
            SL_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, sl_a_ ? sl_a_ : "(null)",             \
                       sl_b_ ? sl_b_ : "(null)");                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Compares an sl_str with a C string. */
#define ASSERT_SLSTR_EQ(s, c)                                                                      \
    do {                                                                                           \
        sl_str sl_s_ = (s);                                                                        \
        const char *sl_c_ = (c);                                                                   \
        if (sl_s_.len != strlen(sl_c_) || memcmp(sl_s_.ptr, sl_c_, sl_s_.len) != 0) {              \
            SL_FAIL_AT("%s == %s: \"%.*s\" != \"%s\"", #s, #c, (int)sl_s_.len, sl_s_.ptr, sl_c_);  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        sl_test_current = #fn;                                                                     \
        int sl_before_ = sl_test_failures;                                                         \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", sl_test_failures == sl_before_ ? "ok  " : "FAIL", #fn);         \
    } while (0)

#define SL_TEST_RESULT() (sl_test_failures == 0 ? 0 : 1)

#endif
