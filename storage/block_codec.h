/*
 * The span block format: a columnar, dictionary-encoded, zstd-compressed
 * encoding of an array of spans, checksummed (XXH64 of the raw payload).
 * Used both for WAL records (fast level) and for the blocks the cutter
 * writes (higher level). docs/block-format.md specifies the bytes.
 *
 * Thread-safety: both functions may be called from any number of threads at
 * once. Each thread caches its own zstd contexts and scratch buffers (freed
 * when the thread exits; trimmed after any call that grew them past 16 MiB).
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
 * block; resources equal in content are stored once even when they are
 * different objects. level is the zstd level (1 = fast, for WAL records;
 * 3..9 for blocks; any level zstd accepts, negative ones included). Nothing is
 * kept from spans after the call. On error out is left as it was.
 * Returns 0, SL_ENOMEM, SL_ETOOBIG (out's limit, or more than 256 MiB of
 * encoded columns) or SL_EINVAL (level out of range, a value type above
 * SL_VAL_BYTES, a NULL pointer with a nonzero length or count). */
int stg_block_encode(const sl_span *const *spans, size_t n, int level, sl_buf *out);

/* Decodes a block. The spans, their strings and resources are allocated in a;
 * spans that shared a resource share one sl_resource again. Every decoded
 * sl_str points into the arena (or to a static "" when empty) and is followed
 * by a NUL byte, but may contain NULs itself (bytes values): use len. Nothing
 * points into data, which may be freed as soon as the call returns. Empty
 * arrays are NULL with a zero count; *spans is NULL when *n is 0.
 * Never trusts the input: any inconsistency is SL_ECORRUPT, never a crash or
 * an over-read. The output needs roughly 40 bytes per attribute and 200 per
 * span, so give a with a max_size when the block is not trusted.
 * *spans and *n are written only on success; on failure a may hold partial
 * allocations, which die with it.
 * Returns 0, SL_ECORRUPT or SL_ENOMEM (arena cap or malloc failure). */
int stg_block_decode(const uint8_t *data, size_t size, sl_arena *a, sl_span **spans, size_t *n);

/* For tools that show where a block's bytes go (bench/block_anatomy): calls
 * fn once per column of the raw payload, in payload order, with the column's
 * name and bytes (borrowed for the call); the attribute value columns come
 * last, numbered STG_BLOCK_VALUE_COLUMN + k in the order their keys were first
 * used, with a NULL name. Checks the header and checksum but not the columns.
 * Returns 0, SL_ECORRUPT or SL_ENOMEM. */
#define STG_BLOCK_VALUE_COLUMN 1000
typedef void (*stg_block_column_fn)(void *ctx, int col, const char *name, const uint8_t *p,
                                    size_t len);
int stg_block_columns(const uint8_t *data, size_t size, stg_block_column_fn fn, void *ctx);

#endif
