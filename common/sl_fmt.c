/*
 * Shortest round-trip formatting of doubles (sl_fmt.h).
 *
 * Integers, then decimals of up to about 12 significant digits (most gauge
 * values and means of them), are found with one exact division check each
 * (fm_short_decimal); everything else takes the search below.
 *
 * The fast path handles every double the Prometheus API sees in practice
 * (integers below 2^53 and magnitudes from about 1e-6 up): for the k
 * decimal places that give 15, then 16, then 17 significant digits it takes
 * the integer m nearest to |v| * 10^k (computed in long double, so m is off
 * by at most one) and tests m - 1, m and m + 1 exactly, in 128-bit
 * integers, against the rounding interval of |v|: the
 * decimal m * 10^-k reads back as M * 2^E (M the 53-bit significand) when
 * (4M - 2) * 10^k < m * 2^(2-E) < (4M + 2) * 10^k (4M - 1 below a power of
 * two), or on a bound when M is even (round half to even). The first k with
 * a candidate gives the fewest digits (15 digits padded with zeros when
 * fewer suffice); of two candidates the closer wins, the even one on a tie,
 * as Go's shortest formatting does. Anything outside those ranges (subnormals,
 * huge or tiny magnitudes) goes to the slow path.
 *
 * Thread-safety: stateless.
 */
#include "sl_fmt.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 fm_u128;

#define FM_MAX_K 21

static const long double fm_p10l[FM_MAX_K + 1] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,  1e10L,
    1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L};

static fm_u128 fm_p10(int k) {
    static const uint64_t p10[20] = {1ull,
                                     10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull,
                                     10000000000000000000ull};
    return k < 20 ? (fm_u128)p10[k] : (fm_u128)p10[19] * p10[k - 19];
}

/* Decimal digits of m (> 0) into out; returns their count. */
static size_t fm_utoa(uint64_t m, char *out) {
    char rev[24];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m > 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = rev[n - 1 - i];
    }
    return n;
}

/* m's digits without trailing zeros; *exp10 = the first digit's exponent when
 * m stands for m * 10^-k. */
static size_t fm_digits(uint64_t m, int k, char *digits, int *exp10) {
    size_t n = fm_utoa(m, digits);
    *exp10 = (int)n - 1 - k;
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    return n;
}

/* The slow path: glibc's correctly rounded 15-, 16- and 17-digit
 * conversions, each checked with strtod. When any k <= 15 digits read back,
 * |v| sits within half an ulp of a k-digit decimal, so the 15-digit rounding
 * is that decimal padded with zeros; the closest d-digit decimal reads back
 * whenever any d-digit one does. Subnormals have too few bits for the
 * argument and are searched from one digit. */
static size_t fm_slow(double a, char *digits, int *exp10) {
    char e[40];
    for (int p = a < DBL_MIN ? 0 : 14; p <= 16; p++) {
        snprintf(e, sizeof(e), "%.*e", p, a);
        if (p == 16 || strtod(e, NULL) == a) {
            break;
        }
    }
    size_t nd = 0;
    const char *q = e;
    for (; *q != 'e' && *q != '\0'; q++) {
        if (*q >= '0' && *q <= '9') {
            digits[nd++] = *q;
        }
    }
    *exp10 = *q == 'e' ? (int)strtol(q + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    return nd;
}

/* The candidate among m0 - 1, m0, m0 + 1 whose m * 10^-k reads back as |v|
 * (the closest; on a tie the even one), or 0. See the top for the scale. */
static uint64_t fm_pick(uint64_t m0, fm_u128 p, uint64_t M, bool pow2, int shift) {
    fm_u128 mid = (fm_u128)(4 * M) * p;
    fm_u128 lo = mid - (pow2 ? p : 2 * p), hi = mid + 2 * p;
    uint64_t best = 0;
    fm_u128 best_d = 0;
    for (uint64_t m = m0 > 0 ? m0 - 1 : 0; m <= m0 + 1; m++) {
        if (m == 0) {
            continue;
        }
        fm_u128 lhs = (fm_u128)m << shift;
        bool in = (lhs > lo && lhs < hi) || ((lhs == lo || lhs == hi) && (M & 1) == 0);
        if (!in) {
            continue;
        }
        fm_u128 d = lhs > mid ? lhs - mid : mid - lhs;
        if (best == 0 || d < best_d || (d == best_d && (m & 1) == 0)) {
            best = m;
            best_d = d;
        }
    }
    return best;
}

/* The fast path; false when a is outside its ranges (see the top). */
static bool fm_fast(double a, char *digits, size_t *nd, int *exp10) {
    if (a < 9007199254740992.0 && a == floor(a)) {
        *nd = fm_digits((uint64_t)a, 0, digits, exp10);
        return true;
    }
    uint64_t bits;
    memcpy(&bits, &a, 8);
    int be = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & ((1ull << 52) - 1);
    if (be <= 1) {
        return false; /* subnormal, or a neighbour of one */
    }
    uint64_t M = frac | (1ull << 52);
    int E = be - 1075;
    /* Everything is scaled by 10^k * 2^(2-E): |v| is 4M, its neighbours'
     * midpoints 4M + 2 and 4M - 2, or 4M - 1 below a power of two (whose
     * lower neighbour is half as far). */
    int shift = 2 - E;
    bool pow2 = frac == 0;
    if (E >= 0 || shift > 70) {
        return false;
    }
    /* k for 15 significant digits: when a representation of at most 15
     * digits exists, the 15-digit one is it padded with zeros; else 16, else
     * 17 digits. */
    int k = 14 - (int)floor((E + 52) * 0.30102999566398120); /* log10(a), or one less */
    for (int tries = 0; tries < 5; tries++) {
        if (k < 0 || k > FM_MAX_K) {
            return false;
        }
        long double x = (long double)a * fm_p10l[k];
        if (x < 1e14L) {
            k++;
        } else if (x >= 1e15L) {
            k--;
        } else {
            break;
        }
    }
    for (int d = 0; d < 3; d++, k++) {
        if (k > FM_MAX_K) {
            return false;
        }
        long double x = (long double)a * fm_p10l[k];
        uint64_t m = fm_pick((uint64_t)(x + 0.5L), fm_p10(k), M, pow2, shift);
        if (m != 0) {
            *nd = fm_digits(m, k, digits, exp10);
            return true;
        }
    }
    return false;
}

size_t sl_fmt_shortest(double v, char *digits, int *exp10) {
    double a = fabs(v);
    size_t nd;
    if (fm_fast(a, digits, &nd, exp10)) {
        return nd;
    }
    return fm_slow(a, digits, exp10);
}

/* Values with few significant digits (most gauges, means of them, ratios
 * such as 0.25): up to about 12, with k <= 22 places. The first k for
 * which the integer m nearest to |v| * 10^k gives m / 10^k == |v|: with
 * m < 2^53 and 10^k exact, that division is correctly rounded, so the
 * decimal m * 10^-k reads back as |v|; while |v| * 10^k < 2^52 the rounding
 * interval of |v| scaled by 10^k is narrower than 1, so m is the only
 * k-place decimal that does. A smaller k would have been found first, and
 * fewer places mean fewer significant digits (two candidates of the same
 * length on either side of a power of ten would put that power of ten, one
 * digit, in the interval): m * 10^-k is the shortest, and the only one of
 * its length, as Go's formatting chooses. k goes up to kmax, the most
 * places with x = |v| * 10^kmax < 2^40. Writes the decimal in the 'f'
 * layout; 0 when there is none (then the search decides). */
static size_t fm_short_decimal(double a, char *out) {
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    /* kmax from the binary exponent e (|v| < 2^(e+1)): floor((39 - e)
     * log10 2), or one more. */
    uint64_t bits;
    memcpy(&bits, &a, 8);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    int kmax = (int)floor((39 - e) * 0.30102999566398120);
    kmax = kmax > 22 ? 22 : kmax;
    if (kmax < 0) {
        return 0; /* |v| >= 2^39 */
    }
    if (kmax < 22 && a * p10[kmax + 1] < 0x1p40) {
        kmax++;
    }
    /* When a k-place decimal D (k <= kmax) reads back, |v| * 10^kmax is
     * within |v| * 10^kmax * 2^-52 < 2^-12 of the integer D * 10^kmax, so x
     * is within a few ulps of an integer: a test that sends other values
     * (rates, ratios; all but a few in a thousand) straight to the search.
     * The same bound at each k skips the division elsewhere. */
    double xm = a * p10[kmax], rm = floor(xm + 0.5);
    if (rm == 0 || fabs(xm - rm) > xm * 0x1p-49) {
        return 0;
    }
    for (int k = 1; k <= kmax; k++) {
        double x = a * p10[k];
        double r = floor(x + 0.5);
        if (fabs(x - r) > x * 0x1p-49 || r == 0 || r / p10[k] != a) {
            continue;
        }
        char d[24];
        size_t nd = fm_utoa((uint64_t)r, d), n = 0;
        if (nd <= (size_t)k) {
            out[n++] = '0';
            out[n++] = '.';
            for (size_t i = nd; i < (size_t)k; i++) {
                out[n++] = '0';
            }
            memcpy(out + n, d, nd);
            return n + nd;
        }
        memcpy(out, d, nd - (size_t)k);
        n = nd - (size_t)k;
        out[n++] = '.';
        memcpy(out + n, d + nd - (size_t)k, (size_t)k);
        return n + (size_t)k;
    }
    return 0;
}

size_t sl_fmt_double(double v, char *buf) {
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    size_t k = 0;
    if (signbit(v)) {
        buf[k++] = '-';
    }
    double a = fabs(v);
    if (a == 0) {
        buf[k++] = '0';
        buf[k] = '\0';
        return k;
    }
    if (a < 1e15 && a == floor(a)) {
        /* Integers (most counters and gauges) need no search. */
        k += fm_utoa((uint64_t)a, buf + k);
        buf[k] = '\0';
        return k;
    }
    size_t sd = fm_short_decimal(a, buf + k);
    if (sd > 0) {
        k += sd;
        buf[k] = '\0';
        return k;
    }
    char digits[24];
    int exp10;
    size_t nd = sl_fmt_shortest(a, digits, &exp10);
    if (exp10 < 0) {
        buf[k++] = '0';
        buf[k++] = '.';
        for (int i = -1; i > exp10; i--) {
            buf[k++] = '0';
        }
        memcpy(buf + k, digits, nd);
        k += nd;
    } else {
        for (int i = 0; i <= exp10 || (size_t)i < nd; i++) {
            if (i == exp10 + 1) {
                buf[k++] = '.';
            }
            buf[k++] = (size_t)i < nd ? digits[i] : '0';
        }
    }
    buf[k] = '\0';
    return k;
}
