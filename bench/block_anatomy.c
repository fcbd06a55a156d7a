/*
 * Where a block's bytes go: generates spangen requests (fresh, never resent),
 * converts them to spans as the collector does, sorts them by trace as the
 * cutter does, and encodes 8192-span blocks at the cutter's level, once as
 * they are and once with each part of the spans taken away. The difference
 * is what that part costs per span on disk. Single-threaded, offline.
 *
 * Usage: block_anatomy [--requests N (64)] [--spans N (500)] [--seed N (5)]
 *                      [--level N (3)]
 */
#include "block_codec.h"
#include "decode_traces.h"
#include "spangen.h"

#include "sl_arena.h"
#include "sl_err.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CUT_NONE, CUT_EVENTS, CUT_DOUBLES, CUT_INTS, CUT_STRINGS, CUT_ALL_ATTRS, CUT_NS, N_CUTS };

static const char *g_names[N_CUTS] = {
    "as generated",
    "without span events",
    "without double attributes",
    "without int attributes",
    "without string attributes",
    "without any span attribute",
    "timestamps rounded to microseconds",
};

static int cmp_span(const void *a, const void *b) {
    const sl_span *x = *(const sl_span *const *)a, *y = *(const sl_span *const *)b;
    int c = memcmp(x->trace_id, y->trace_id, 16);
    if (c != 0) {
        return c;
    }
    return x->start_unix_nano < y->start_unix_nano ? -1 : x->start_unix_nano > y->start_unix_nano;
}

/* Applies one cut to a copy of sp (attributes are filtered into a). */
static int cut_span(const sl_span *sp, int cut, sl_arena *a, sl_span *out) {
    *out = *sp;
    if (cut == CUT_EVENTS) {
        out->nevents = 0;
    } else if (cut == CUT_NS) {
        out->start_unix_nano -= out->start_unix_nano % 1000;
        out->end_unix_nano -= out->end_unix_nano % 1000;
    } else if (cut != CUT_NONE) {
        sl_attr *kept = sl_arena_calloc(a, sp->nattrs ? sp->nattrs : 1, sizeof(sl_attr));
        if (kept == NULL) {
            return SL_ENOMEM;
        }
        uint32_t w = 0;
        for (uint32_t i = 0; i < sp->nattrs; i++) {
            uint8_t t = sp->attrs[i].val.type;
            bool drop = cut == CUT_ALL_ATTRS || (cut == CUT_DOUBLES && t == SL_VAL_DOUBLE) ||
                        (cut == CUT_INTS && t == SL_VAL_INT) ||
                        (cut == CUT_STRINGS && t == SL_VAL_STR);
            if (!drop) {
                kept[w++] = sp->attrs[i];
            }
        }
        out->attrs = kept;
        out->nattrs = w;
    }
    return 0;
}

static long arg(int argc, char **argv, const char *name, long def) {
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return strtol(argv[i + 1], NULL, 10);
        }
    }
    return def;
}

int main(int argc, char **argv) {
    long nreq = arg(argc, argv, "--requests", 64), per = arg(argc, argv, "--spans", 500);
    int level = (int)arg(argc, argv, "--level", 3);
    int rc = 1;
    sl_arena a;
    sl_arena_init(&a, 0);
    spangen *g = NULL;
    spangen_options o;
    spangen_options_init(&o);
    o.seed = (uint64_t)arg(argc, argv, "--seed", 5);
    sl_span **all = NULL, *cut = NULL;
    size_t n = 0;
    if (nreq < 1 || per < 1 || nreq * per > 10000000 || spangen_create(&o, &g) != 0 ||
        (all = calloc((size_t)(nreq * per), sizeof(*all))) == NULL ||
        (cut = calloc((size_t)(nreq * per), sizeof(*cut))) == NULL) {
        fprintf(stderr, "block_anatomy: bad arguments or out of memory\n");
        goto out;
    }
    for (long r = 0; r < nreq; r++) {
        sl_buf b;
        sl_buf_init(&b, 0);
        sl_span *sp;
        size_t k, rejected;
        char err[128];
        ProtobufCMessage *m = NULL;
        if (spangen_request(g, (size_t)per, &b) == 0) {
            m = protobuf_c_message_unpack(
                &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                sl_arena_pb(&a), b.len, b.data);
        }
        sl_buf_free(&b);
        if (m == NULL ||
            col_traces_to_model(
                (const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)m,
                &a, &sp, &k, &rejected, err, sizeof(err)) != 0) {
            fprintf(stderr, "block_anatomy: generating request %ld failed\n", r);
            goto out;
        }
        for (size_t i = 0; i < k && n < (size_t)(nreq * per); i++) {
            all[n++] = &sp[i];
        }
    }
    qsort(all, n, sizeof(*all), cmp_span);
    printf("%zu spans, blocks of 8192, zstd level %d\n", n, level);
    double base = 0;
    for (int c = 0; c < N_CUTS; c++) {
        const sl_span **ptrs = calloc(n, sizeof(*ptrs));
        size_t total = 0;
        for (size_t i = 0; ptrs != NULL && i < n; i++) {
            if (cut_span(all[i], c, &a, &cut[i]) != 0) {
                goto out;
            }
            ptrs[i] = &cut[i];
        }
        for (size_t i = 0; ptrs != NULL && i < n; i += 8192) {
            sl_buf blk;
            sl_buf_init(&blk, 0);
            if (stg_block_encode(ptrs + i, n - i < 8192 ? n - i : 8192, level, &blk) != 0) {
                free(ptrs);
                goto out;
            }
            total += blk.len;
            sl_buf_free(&blk);
        }
        free(ptrs);
        double bps = (double)total / (double)n;
        if (c == CUT_NONE) {
            base = bps;
            printf("  %-36s %6.1f bytes/span\n", g_names[c], bps);
        } else {
            printf("  %-36s %6.1f bytes/span (that part: %4.1f)\n", g_names[c], bps, base - bps);
        }
    }
    rc = 0;
out:
    free(all);
    free(cut);
    spangen_destroy(g);
    sl_arena_free(&a);
    return rc;
}
