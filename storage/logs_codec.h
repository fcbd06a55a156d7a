/*
 * The log block codec: an array of log records <-> one self-contained,
 * zstd-compressed, column-wise block (the unit the logs cutter writes and the
 * WAL record format of /v1/logs), plus the token filter that lets a full-text
 * search skip blocks. docs/logs-format.md is the byte-level description.
 *
 * Thread-safety: every function is reentrant (no shared state).
 */
#ifndef STG_LOGS_CODEC_H
#define STG_LOGS_CODEC_H

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"
#include "storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STG_LOGS_MAGIC "SLL1"
#define STG_LOGS_HDR 13u                /* magic, flags, record count, raw size */
#define STG_LOGS_MAX_RAW (256u << 20)   /* largest raw payload either side accepts */
#define STG_LOGS_MAX_RECORDS (1u << 22) /* records one block may hold */

/* Encodes n records (in the given order) into one block appended to out,
 * compressed at zstd level. Resources are deduplicated (same pointer or same
 * content), strings go to a block dictionary, numbers in string bodies are
 * lifted out into a varint column so that bodies made from one template
 * share one dictionary entry. Returns 0, SL_ENOMEM, SL_ETOOBIG (over
 * STG_LOGS_MAX_RAW or out's maximum) or SL_EINVAL (n over the maximum). */
int stg_logs_encode(const sl_log_record *const *recs, size_t n, int level, sl_buf *out);

/* Decodes a block. Records, resources, attributes and strings are allocated
 * in a (the caller owns it). *raw_size (may be NULL) receives the size of the
 * decompressed payload. Never trusts the input: returns 0, SL_ECORRUPT
 * (malformed, truncated or failing its checksum) or SL_ENOMEM (the arena's
 * cap); outputs are written only on success. */
int stg_logs_decode(const uint8_t *p, size_t size, sl_arena *a, sl_log_record **out, size_t *n,
                    size_t *raw_size);

/* The record count in a block's header, or 0 when it is not a block. */
uint32_t stg_logs_count(const uint8_t *p, size_t size);

/* --- tokens and the per-block token filter -------------------------------- */

/* Tokens: maximal runs of word characters (stg_log_word_char in
 * storage.h), compared lower-cased (ASCII). */

/* The hash of a token, case-insensitive. */
uint64_t stg_logs_token_hash(const char *p, size_t len);

/* Calls cb(ud, hash) for every token of text. */
typedef void (*stg_token_cb)(void *ud, uint64_t hash);
void stg_logs_tokens(sl_str text, stg_token_cb cb, void *ud);

/* Calls cb(ud, text) for each searchable text of a record: its body and its
 * attribute values (in their text form: strings, numbers, true/false, the
 * JSON of arrays and maps; bytes are not text). scratch holds number texts. */
typedef void (*stg_text_cb)(void *ud, sl_str text);
void stg_logs_texts(const sl_log_record *r, stg_text_cb cb, void *ud);

/* Builds the token filter of n records (a bloom filter over their tokens,
 * sized for the distinct tokens, about STG_LOGS_BLOOM_BITS bits each) into
 * out. Returns 0, SL_ENOMEM or SL_ETOOBIG. */
#define STG_LOGS_BLOOM_BITS 10
#define STG_LOGS_BLOOM_PROBES 6
int stg_logs_bloom_build(const sl_log_record *const *recs, size_t n, sl_buf *out);

/* False when the filter proves that no record of its block has the token
 * (hash from stg_logs_token_hash); true when it may. A malformed filter says
 * true (the block is then decoded and filtered exactly). */
bool stg_logs_bloom_maybe(const uint8_t *filter, size_t size, uint64_t hash);

/* Case-insensitive search of needle in text at token boundaries: the match
 * may not start or end inside a word (when the needle itself starts or ends
 * with a word character). needle must already be lower-case. */
bool stg_logs_phrase_in(sl_str text, sl_str needle_lower);

/* True when the token (lower-case) is one of text's tokens. */
bool stg_logs_token_in(sl_str text, sl_str token_lower);

#endif
