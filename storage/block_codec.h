/*
 * The span block format: a columnar, dictionary-encoded, zstd-compressed
 * encoding of an array of spans. Used both for WAL records (fast level) and for
 * the blocks the cutter writes (higher level). Pure functions, thread-safe.
 */
#ifndef SL_BLOCK_CODEC_H
#define SL_BLOCK_CODEC_H

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"

#include <stddef.h>
#include <stdint.h>

/* Encodes the n spans spans[0..n-1] in that order, appending to out. Strings
 * (names, attribute keys and values, services, resources) are stored once per
 * block. level is the zstd level (1 = fast, for WAL records; 3..9 for blocks).
 * Returns 0, SL_ENOMEM, SL_ETOOBIG (out's limit) or SL_EINVAL. */
int stg_block_encode(const sl_span *const *spans, size_t n, int level, sl_buf *out);

/* Decodes a block. The spans, their strings and resources are allocated in a;
 * spans that shared a resource share one sl_resource again. Never trusts the
 * input: any inconsistency is SL_ECORRUPT, never a crash or an over-read.
 * Returns 0, SL_ECORRUPT or SL_ENOMEM (arena cap). */
int stg_block_decode(const uint8_t *data, size_t size, sl_arena *a, sl_span **spans, size_t *n);

#endif
