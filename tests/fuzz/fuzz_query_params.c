/*
 * Fuzz target: the query-string parsers of the Jaeger API (durations,
 * lookbacks, trace ids, tags={json}, tag=k:v). The input is split at NUL bytes
 * and each piece goes through every parser; none may crash or over-read.
 */
#include "query_int.h"

#include "sl_arena.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    const char *end = p + size;
    while (p <= end) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        sl_str s = {p, (size_t)((z ? z : end) - p)};
        uint64_t v;
        uint8_t id[16];
        stg_tag tag;
        qry_parse_duration(s, &v);
        qry_parse_lookback(s, &v);
        qry_parse_trace_id(s, id);
        qry_parse_tag_kv(s, &tag);
        sl_arena a;
        sl_arena_init(&a, 1u << 20);
        stg_tag tags[QRY_MAX_TAGS];
        size_t n = 0;
        qry_parse_tags_json(s, &a, tags, QRY_MAX_TAGS, &n);
        sl_arena_free(&a);
        if (z == NULL) {
            break;
        }
        p = z + 1;
    }
    return 0;
}
