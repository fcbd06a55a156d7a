/*
 * logs_bench: what the logs storage costs and how fast it searches, on
 * loggen's realistic corpus, through the storage API (no HTTP: the OTLP
 * ingest rate is loadgen --logs' job).
 *
 *   logs_bench [--records N] [--seed S] [--dir DIR] [--keep]
 *
 * It writes N records (default 1 000 000) as WAL records of 1000 (one
 * group commit each), cuts them into blocks, then reports: raw text size
 * (the same records as plain-text log lines, loggen_text) and its zstd -3
 * size for reference; bytes on disk of the logs windows; bytes per record
 * and the compression ratio; write and cut rates; and for a set of searches
 * the time, blocks scanned/skipped and the scan rate (decompressed bytes and
 * records per second). A line starting "RESULT" repeats the figures.
 *
 * Single-threaded (the store runs without its background thread).
 */
#include "loggen.h"
#include "storage.h"

#include "sl_err.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#define BATCH 1000

static uint64_t g_du;

static int du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        g_du += (uint64_t)st->st_blocks * 512u;
    }
    return 0;
}

static uint64_t du(const char *dir) {
    g_du = 0;
    nftw(dir, du_entry, 16, FTW_PHYS);
    return g_du;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct search_case {
    const char *name;
    stg_log_query q;
    stg_log_term terms[2];
} search_case;

int main(int argc, char **argv) {
    uint64_t nrecs = 1000000, seed = 1;
    const char *dir = NULL;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--records") == 0 && v != NULL) {
            sl_parse_u64(sl_str_c(v), &nrecs);
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && v != NULL) {
            sl_parse_u64(sl_str_c(v), &seed);
            i++;
        } else if (strcmp(argv[i], "--dir") == 0 && v != NULL) {
            dir = v;
            i++;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = 1;
        } else {
            fprintf(stderr, "usage: logs_bench [--records N] [--seed S] [--dir DIR] [--keep]\n");
            return 2;
        }
    }
    char tmpl[] = "/tmp/logs-bench-XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    stg_options o;
    stg_options_init(&o);
    o.data_dir = dir;
    o.background = 0;
    o.retention_ns = 0;
    stg_store *s = NULL;
    int rc = stg_open(&o, &s);
    if (rc != 0) {
        fprintf(stderr, "stg_open: %s\n", sl_strerror(rc));
        return 1;
    }
    loggen *g = NULL;
    if (loggen_create(seed, 1763900000000000000ull, &g) != 0) {
        return 1;
    }
    sl_arena a;
    sl_arena_init(&a, 0);
    sl_buf text, rec;
    sl_buf_init(&text, 0);
    sl_buf_init(&rec, 0);
    uint64_t wal_bytes = 0, t_gen = 0, t_write = 0;
    uint8_t some_trace[16] = {0};
    static char rare_id[32] = "100001";
    static const uint8_t no_span[8] = {0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab};
    for (uint64_t done = 0; done < nrecs && rc == 0; done += BATCH) {
        size_t n = nrecs - done < BATCH ? (size_t)(nrecs - done) : BATCH;
        sl_log_record *recs;
        uint64_t t0 = sl_mono_nano();
        sl_arena_reset(&a);
        rc = loggen_records(g, n, &a, &recs);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = loggen_text(&recs[i], &text);
        }
        /* Something to look up later: a trace and an id-like number. */
        if (done >= nrecs / 2 && some_trace[0] == 0 && some_trace[15] == 0) {
            for (size_t i = 0; i < n; i++) {
                if (!sl_is_zero(recs[i].trace_id, 16) && recs[i].nattrs > 0 &&
                    recs[i].attrs[0].val.type == SL_VAL_INT && recs[i].attrs[0].val.v.i > 99999) {
                    memcpy(some_trace, recs[i].trace_id, 16);
                    snprintf(rare_id, sizeof(rare_id), "%lld", (long long)recs[i].attrs[0].val.v.i);
                    break;
                }
            }
        }
        uint64_t t1 = sl_mono_nano();
        rec.len = 0;
        if (rc == 0) {
            rc = stg_logs_wal_encode(recs, n, &rec);
        }
        stg_write w = {"default", STG_LOGS, rec.data, rec.len, (uint32_t)n};
        if (rc == 0) {
            rc = stg_write_batch(s, &w, 1);
        }
        wal_bytes += rec.len;
        t_gen += t1 - t0;
        t_write += sl_mono_nano() - t1;
    }
    if (rc != 0) {
        fprintf(stderr, "write: %s\n", sl_strerror(rc));
        return 1;
    }
    uint64_t t0 = sl_mono_nano();
    rc = stg_maintain(s, sl_now_unix_nano());
    uint64_t t_cut = sl_mono_nano() - t0;
    if (rc != 0) {
        fprintf(stderr, "cut: %s\n", sl_strerror(rc));
        return 1;
    }
    char logs_dir[4200];
    snprintf(logs_dir, sizeof(logs_dir), "%s/default/logs", dir);
    uint64_t disk = du(logs_dir);
    size_t zb = ZSTD_compressBound(text.len);
    void *z = malloc(zb);
    size_t zlen = z != NULL ? ZSTD_compress(z, zb, text.data, text.len, 3) : 0;
    free(z);
    stg_stats st;
    stg_get_stats(s, &st);

    printf("corpus: %llu records, raw text %.1f MiB (%.1f bytes/record), zstd -3 of the text "
           "%.2f MiB (%.1fx)\n",
           (unsigned long long)nrecs, (double)text.len / 1048576.0,
           (double)text.len / (double)nrecs, (double)zlen / 1048576.0,
           (double)text.len / (double)(zlen ? zlen : 1));
    printf("WAL records: %.1f MiB (%.1f bytes/record)\n", (double)wal_bytes / 1048576.0,
           (double)wal_bytes / (double)nrecs);
    printf("on disk (logs windows, allocated): %.2f MiB, %.2f bytes/record, %.1fx smaller than "
           "raw text; %llu blocks\n",
           (double)disk / 1048576.0, (double)disk / (double)nrecs,
           (double)text.len / (double)(disk ? disk : 1), (unsigned long long)st.blocks);
    printf("write (encode + group commit, 1000/commit): %.0f records/s; cut: %.0f records/s "
           "(generating the corpus: %.2f s)\n",
           (double)nrecs / ((double)t_write / 1e9), (double)nrecs / ((double)t_cut / 1e9),
           (double)t_gen / 1e9);

    /* Searches. */
    static search_case cases[] = {
        {"two words (q=heidi insufficient)", {0}, {{{"heidi", 5}, 0}, {{"insufficient", 12}, 0}}},
        {"an id (q=<one order/user id>)", {0}, {{{0}, 0}}},
        {"phrase (q=\"card expired\")", {0}, {{{"card expired", 12}, 1}}},
        {"service+severity (payments, >= error)", {0}, {{{0}, 0}}},
        {"trace_id", {0}, {{{0}, 0}}},
        {"absent word (q=nonexistentword)", {0}, {{{"nonexistentword", 15}, 0}}},
        {"full scan (span_id matching nothing)", {0}, {{{0}, 0}}},
    };
    cases[1].terms[0].text = sl_str_c(rare_id);
    double scan_rate = 0, scan_recs = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        search_case *c = &cases[i];
        c->q.tenant = "default";
        c->q.limit = 100;
        c->q.terms = c->terms;
        c->q.nterms = c->terms[0].text.len > 0 ? (c->terms[1].text.len > 0 ? 2 : 1) : 0;
        if (i == 3) {
            c->q.service = SL_STR_LIT("payments");
            c->q.min_severity = 17;
        } else if (i == 4) {
            c->q.trace_id = some_trace;
        } else if (i == 6) {
            c->q.span_id = no_span;
        }
        sl_arena qa;
        sl_arena_init(&qa, 0);
        sl_log_record *out;
        size_t n = 0;
        stg_log_stats ls = {0};
        uint64_t best = UINT64_MAX;
        for (int rep = 0; rep < 3; rep++) {
            sl_arena_reset(&qa);
            uint64_t q0 = sl_mono_nano();
            rc = stg_find_logs(s, &c->q, &qa, &out, &n, &ls);
            uint64_t dt = sl_mono_nano() - q0;
            best = dt < best ? dt : best;
            if (rc != 0) {
                fprintf(stderr, "search: %s\n", sl_strerror(rc));
                return 1;
            }
        }
        double secs = (double)best / 1e9;
        double rate = (double)ls.bytes_decompressed / 1048576.0 / secs;
        printf("search %-44s %8.2f ms  %4zu hits  blocks scanned %llu skipped %llu  "
               "%.0f MiB/s decompressed\n",
               c->name, secs * 1e3, n, (unsigned long long)ls.blocks_scanned,
               (unsigned long long)ls.blocks_skipped, ls.blocks_scanned ? rate : 0.0);
        if (i == 6) {
            scan_rate = rate;
            scan_recs = (double)nrecs / secs;
        }
        sl_arena_free(&qa);
    }
    printf("RESULT records=%llu raw_bytes=%zu disk_bytes=%llu bytes_per_record=%.2f ratio=%.1f "
           "zstd3_ratio=%.1f scan_mib_s=%.0f scan_records_s=%.0f\n",
           (unsigned long long)nrecs, text.len, (unsigned long long)disk,
           (double)disk / (double)nrecs, (double)text.len / (double)(disk ? disk : 1),
           (double)text.len / (double)(zlen ? zlen : 1), scan_rate, scan_recs);
    stg_close(s);
    loggen_destroy(g);
    sl_arena_free(&a);
    sl_buf_free(&text);
    sl_buf_free(&rec);
    if (!keep) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
