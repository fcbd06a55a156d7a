/*
 * The series a tenant wrote lately (stg_metrics_recent_series), read back
 * from what the store holds so that the collector's active-series limit
 * survives a restart.
 *
 * Windows are by arrival time, so a series found in a window was written
 * somewhere in that window's span; its head (the newest sample) narrows that
 * down. Only the WAL and the windows whose span reaches the start of the
 * asked-for period are read: the index of the current window or two, never
 * the whole store. Non-compacted windows are walked through their `head`
 * database (id order) with each series' labels from `sid`; compacted ones
 * through their blocks, one decompression each.
 *
 * Thread-safety: reads only, in MDB_NOTLS read transactions; any thread.
 */
#include "metrics_int.h"

#include "sl_err.h"
#include "sl_util.h"

#include <string.h>

#define RA_ARENA_MAX (64ull << 20)

typedef struct ra_ctx {
    stg_recent_cb cb;
    void *ud;
    sl_arena labels; /* one series' decoded labels at a time */
    sl_arena recs;   /* one WAL record at a time */
    int64_t since_ms, now_ms, part_ms;
    int64_t win_lo, win_hi; /* the span of the window being read (ms) */
} ra_ctx;

/* Reports one series whose newest sample is at last_t, found in the window
 * [c->win_lo, c->win_hi): written no earlier than the window began (nor
 * than its newest sample) and no later than the window ended or now. */
static int ra_report(ra_ctx *c, const uint8_t *labels, size_t size, int64_t last_t) {
    int64_t hi = c->win_hi < c->now_ms ? c->win_hi : c->now_ms;
    int64_t t = last_t > c->win_lo ? last_t : c->win_lo;
    t = t < hi ? t : hi;
    if (t < c->since_ms) {
        return 0;
    }
    sl_arena_reset(&c->labels);
    stg_label *l;
    size_t nl;
    int rc = ms_labels_decode(labels, size, &c->labels, &l, &nl);
    if (rc == SL_ECORRUPT) {
        return 0; /* reads skip such a series too */
    }
    return rc != 0 ? rc : c->cb(c->ud, l, nl, t);
}

/* Sets the window span of window start ws_ns; false when it ended before
 * the period asked for. */
static bool ra_window(ra_ctx *c, uint64_t ws_ns) {
    c->win_lo = (int64_t)(ws_ns / 1000000u);
    c->win_hi = c->win_lo + c->part_ms;
    return c->win_hi > c->since_ms;
}

static int ra_wal_cb(void *ud, uint64_t window_ns, uint64_t seq, const uint8_t *rec, size_t size) {
    ra_ctx *c = ud;
    (void)seq;
    if (!ra_window(c, window_ns)) {
        return 0;
    }
    sl_arena_reset(&c->recs);
    ms_record r;
    int rc = ms_record_decode(rec, size, &c->recs, &r);
    if (rc != 0) {
        return rc == SL_ECORRUPT ? 0 : rc; /* the cutter drops it loudly */
    }
    for (size_t i = 0; i < r.nseries && rc == 0; i++) {
        const ms_rec_series *rs = &r.series[i];
        if (rs->nsamples == 0) {
            continue;
        }
        int64_t last = rs->samples[0].t_ms;
        for (size_t j = 1; j < rs->nsamples; j++) {
            last = rs->samples[j].t_ms > last ? rs->samples[j].t_ms : last;
        }
        rc = ra_report(c, rs->labels, rs->labels_size, last);
    }
    return rc;
}

static int ra_section_cb(void *ud, uint32_t id, const ms_csection *sec) {
    (void)id;
    return ra_report(ud, sec->labels, sec->labels_size, sec->head.last_t);
}

/* The series of a window that is not compacted: its heads, in id order,
 * with their labels. */
static int ra_heads(ra_ctx *c, ms_window *w, MDB_txn *txn) {
    MDB_cursor *cur;
    int rc = stg_lmdb_err(mdb_cursor_open(txn, w->db_head, &cur));
    if (rc != 0) {
        return rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        ms_head h;
        MDB_val lv;
        if (k.mv_size == 4 && v.mv_size == sizeof(h)) {
            memcpy(&h, v.mv_data, sizeof(h));
            if (h.has && mdb_get(txn, w->db_sid, &k, &lv) == 0) {
                rc = ra_report(c, lv.mv_data, lv.mv_size, h.last_t);
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = stg_lmdb_err(mrc);
    }
    mdb_cursor_close(cur);
    return rc;
}

int stg_metrics_recent_series(stg_store *s, const char *tenant, int64_t since_ms, stg_recent_cb cb,
                              void *ud) {
    ra_ctx c = {.cb = cb, .ud = ud, .since_ms = since_ms};
    c.now_ms = (int64_t)(sl_now_unix_nano() / 1000000u);
    c.part_ms = (int64_t)(s->opt.partition_ns / 1000000u);
    sl_arena_init(&c.labels, RA_ARENA_MAX);
    sl_arena_init(&c.recs, RA_ARENA_MAX);
    ms_window **ws = NULL;
    size_t nw = 0;
    int rc = stg_wal_scan(s, tenant, STG_METRICS, ra_wal_cb, &c);
    if (rc == 0) {
        rc = ms_windows_list(s, tenant, &ws, &nw);
    }
    for (size_t i = 0; i < nw && rc == 0; i++) {
        if (!ra_window(&c, ws[i]->window_start_ns)) {
            continue;
        }
        MDB_txn *txn;
        if ((rc = stg_lmdb_err(mdb_txn_begin(ws[i]->env, NULL, MDB_RDONLY, &txn))) != 0) {
            break;
        }
        rc = ws[i]->compacted ? ms_cblock_each(ws[i], txn, ra_section_cb, &c)
                              : ra_heads(&c, ws[i], txn);
        mdb_txn_abort(txn);
    }
    ms_windows_release(s, ws, nw);
    sl_arena_free(&c.labels);
    sl_arena_free(&c.recs);
    return rc == SL_ECORRUPT ? SL_ESTORAGE : rc;
}
