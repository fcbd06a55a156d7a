/*
 * Private declarations shared by the runtime's files (prefix rt_). Nothing
 * here is part of the public headers under include/sf/.
 */
#ifndef RT_INT_H
#define RT_INT_H

#include <sightline/sightline.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base64url without padding (RFC 4648 section 5). encode writes
 * rt_b64url_len(n) bytes plus a NUL; decode refuses padding, other alphabets,
 * a length of 1 mod 4 and non-zero trailing bits, returning the decoded
 * length or -1. out must hold len * 3 / 4 + 1 bytes. */
size_t rt_b64url_len(size_t n);
void rt_b64url_encode(const uint8_t *in, size_t n, char *out);
long rt_b64url_decode(const char *in, size_t len, uint8_t *out);

/* Monotonic and wall clocks. */
uint64_t rt_mono_ms(void);
uint64_t rt_mono_ns(void);
int64_t rt_unix_s(void);

/* xorshift-style random numbers for jitter and sampling, per thread, seeded
 * from the OS; uniform in [0, 1). */
double rt_random01(void);

/* Creates an sdk-c histogram in seconds on meter (NULL meter: *out NULL,
 * which the SDK's record calls accept). bounds NULL = the SDK's default. */
void rt_seconds_histogram(sl_meter *meter, const char *name, const char *description,
                          const double *bounds, size_t nbounds, sl_instrument **out);

/* True when the space-separated list contains word exactly. */
bool rt_word_in(const char *list, const char *word, size_t word_len);

#endif
