/*
 * Number formatting shared by the Prometheus API, the PromQL engine and the
 * OTLP metrics translation: the shortest decimal that reads back as the same
 * double, in the layout of Go's strconv.FormatFloat(v, 'f', -1, 64) (what
 * Prometheus prints for sample values and what its OTLP receiver writes into
 * le and quantile labels).
 *
 * Stateless and thread-safe.
 */
#ifndef SL_FMT_H
#define SL_FMT_H

#include <stddef.h>

/* Room for any double in the 'f' layout (5e-324 is "0." and 324 digits). */
#define SL_FMT_DOUBLE_MAX 340

/* The fewest significant digits of |v| (finite, nonzero) that read back as
 * |v| (the closest such when several have that length), without trailing
 * zeros, into digits (room for 17; not NUL-terminated); *exp10 receives the
 * decimal exponent of the first digit. Returns the number of digits. */
size_t sl_fmt_shortest(double v, char *digits, int *exp10);

/* v as Go's FormatFloat(v, 'f', -1, 64): "NaN", "+Inf", "-Inf", "-0",
 * "1000000", "0.00001", "0.30000000000000004". buf holds SL_FMT_DOUBLE_MAX
 * bytes; it is NUL-terminated. Returns the length. */
size_t sl_fmt_double(double v, char *buf);

#endif
