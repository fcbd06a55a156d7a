/*
 * Fuzz target: the /api/logs parameter parsers (query/logs_params.c). The
 * input is split at NUL bytes; each piece goes through the severity, time and
 * term parsers and, as the value of every parameter, through the whole
 * parameter parser. None may crash, over-read or accept an unterminated
 * phrase.
 */
#include "query_int.h"

#include "sl_arena.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const keys[] = {"service", "severity", "q",     "trace_id", "span_id",
                                       "start",   "end",      "limit", "direction"};
    const char *p = (const char *)data;
    const char *end = p + size;
    sl_arena a;
    sl_arena_init(&a, 1u << 20);
    while (p <= end) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        sl_str s = {p, (size_t)((z ? z : end) - p)};
        int sev;
        uint64_t t;
        qry_errbuf err;
        (void)qry_parse_severity(s, &sev);
        (void)qry_parse_time_ns(s, &t);
        qry_kv kv[9];
        for (size_t i = 0; i < 9; i++) {
            kv[i] = (qry_kv){sl_str_c(keys[i]), s};
        }
        for (size_t i = 0; i < 9; i++) {
            qry_args args = {&kv[i], 1};
            qry_log_params lp;
            (void)qry_parse_log_params(&args, &a, &lp, &err);
            sl_arena_reset(&a);
        }
        qry_args all = {kv, 9};
        qry_log_params lp;
        (void)qry_parse_log_params(&all, &a, &lp, &err);
        sl_arena_reset(&a);
        if (z == NULL) {
            break;
        }
        p = z + 1;
    }
    sl_arena_free(&a);
    return 0;
}
