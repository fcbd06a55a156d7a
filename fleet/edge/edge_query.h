/*
 * URL query strings for the edge services: iterate key=value pairs of a raw
 * query string, percent-decoded ('+' is a space) into bounded buffers. Pure
 * and thread-safe.
 */
#ifndef EDGE_QUERY_H
#define EDGE_QUERY_H

#include <stdbool.h>
#include "sl_buf.h"

#include <stddef.h>
#include <stdint.h>

/* Percent-decodes src[0..len) into dst (room for cap bytes including the
 * NUL). Returns 0, SL_EINVAL (bad escape or an embedded NUL) or SL_ETOOBIG. */
int edge_url_decode(const char *src, size_t len, char *dst, size_t cap);

/* Reads the next pair from *q (advanced past it) into key and value. A pair
 * without '=' has an empty value. Returns 1 for a pair, 0 at the end, or a
 * negative error from edge_url_decode for a bad pair (which is skipped). */
int edge_query_next(const char **q, char *key, size_t key_cap, char *value, size_t value_cap);

/* Appends s percent-encoded for a query component (RFC 3986 unreserved
 * characters stay, everything else is %XX). Returns 0 or an sl_buf error. */
int edge_url_encode(const char *s, sl_buf *out);

/* Decodes unpadded base64url (RFC 4648 section 5; '=' padding tolerated)
 * into out (cap bytes). Returns the decoded length, or SL_EINVAL (bad
 * character or length) / SL_ETOOBIG. */
int edge_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
