/*
 * The store: options, opening (discovering partitions on disk), the background
 * thread that cuts WAL records into blocks and applies retention, and
 * store-wide statistics.
 */
#include "storage_int.h"

#include "sl_auth.h"
#include "sl_err.h"
#include "sl_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void stg_options_init(stg_options *o) {
    memset(o, 0, sizeof(*o));
    o->data_dir = "./data";
    o->partition_ns = 3600ull * 1000000000ull;
    o->retention_ns = 7ull * 24 * 3600 * 1000000000ull;
    o->map_size = 256ull << 30;
    o->wal_map_size = 8ull << 30;
    o->cut_interval_ms = 2000;
    o->cut_max_bytes = 32ull << 20;
    o->block_level = 3;
    o->metrics_cache_bytes = 128ull << 20;
    o->background = 1;
}

int stg_tenant_valid(sl_str name) {
    return sl_tenant_valid(name);
}

int stg_list_tenants(stg_store *s, stg_str_cb cb, void *ud) {
    DIR *top = opendir(s->data_dir);
    if (top == NULL) {
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(top)) != NULL) {
        char path[4400];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", s->data_dir, e->d_name);
        if (e->d_name[0] != '.' && stg_tenant_valid(sl_str_c(e->d_name)) && stat(path, &sb) == 0 &&
            S_ISDIR(sb.st_mode)) {
            rc = cb(ud, sl_str_c(e->d_name));
        }
    }
    closedir(top);
    return rc;
}

/* The signals plugged into the store. Traces are built in (their cut and
 * retention are listed here so that one loop drives all three). */
static const stg_signal_ops traces_ops = {
    .name = "traces", .cut = stg_cut_wal, .retention = stg_retention_run};

static const stg_signal_ops *const signal_ops[STG_NSIGNALS] = {
    [STG_TRACES] = &traces_ops,

    [STG_LOGS] = &stg_logs_ops,

    [STG_METRICS] = &stg_metrics_ops,
};

/* One maintenance pass: cut every tenant's WAL of every signal (all of it
 * when force, else only logs past the size trigger), then retention. */
static int maintain(stg_store *s, uint64_t now_ns, bool force) {
    stg_wal **wals;
    size_t n;
    int rc = stg_wals_list(s, &wals, &n);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&s->cut_mu);
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        const stg_signal_ops *ops = signal_ops[sig];
        if (ops == NULL || ops->cut == NULL) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            /* One pass handles a bounded slice: repeat while it makes progress. */
            for (int round = 0; round < 64; round++) {
                uint64_t recs = atomic_load(&wals[i]->records[sig]);
                uint64_t bytes = atomic_load(&wals[i]->bytes[sig]);
                if (recs == 0 || (!force && bytes < s->opt.cut_max_bytes)) {
                    break;
                }
                int crc = ops->cut(s, wals[i]);
                if (crc != 0) {
                    SL_LOG_W("storage", "%s cut for tenant %s: %s", ops->name, wals[i]->tenant,
                             sl_strerror(crc));
                    rc = crc;
                    break;
                }
                if (atomic_load(&wals[i]->records[sig]) >= recs) {
                    break;
                }
            }
        }
    }
    stg_seal_run(s, now_ns);
    pthread_mutex_unlock(&s->cut_mu);
    free(wals);
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        const stg_signal_ops *ops = signal_ops[sig];
        if (ops != NULL && ops->retention != NULL) {
            int rrc = ops->retention(s, now_ns);
            rc = rc != 0 ? rc : rrc;
        }
    }
    return rc;
}

int stg_maintain(stg_store *s, uint64_t now_unix_nano) {
    return maintain(s, now_unix_nano, true);
}

static void *bg_main(void *arg) {
    stg_store *s = arg;
    uint64_t last_full = sl_mono_nano();
    /* Before the first cut, so that no span is observed twice. */
    stg_deps_rebuild(s);
    pthread_mutex_lock(&s->bg_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        /* Wake often enough to react to a size-triggered cut quickly. */
        uint64_t wait_ms = s->opt.cut_interval_ms < 200 ? s->opt.cut_interval_ms : 200;
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->bg_cond, &s->bg_mu, &ts);
        if (s->stopping) {
            break;
        }
        pthread_mutex_unlock(&s->bg_mu);
        uint64_t now = sl_mono_nano();
        bool full = now - last_full >= (uint64_t)s->opt.cut_interval_ms * 1000000u;
        if (full) {
            last_full = now;
        }
        int rc = maintain(s, sl_now_unix_nano(), full);
        if (rc != 0) {
            SL_LOG_W("storage", "maintenance pass: %s", sl_strerror(rc));
        }
        pthread_mutex_lock(&s->bg_mu);
    }
    pthread_mutex_unlock(&s->bg_mu);
    return NULL;
}

int stg_open(const stg_options *o, stg_store **out) {
    int rc = 0;
    *out = NULL;
    if (o->partition_ns < 1000000000ull || o->cut_interval_ms == 0) {
        return SL_EINVAL;
    }
    stg_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->opt = *o;
    s->data_dir = strdup(o->data_dir);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cut_mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_cond, NULL);
    if (s->data_dir == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    s->opt.data_dir = s->data_dir;
    /* Windows first (every signal's): their cut marks decide where WAL
     * sequences resume. */
    if ((rc = stg_deps_open(s)) != 0 || (rc = stg_mkdirs(s->data_dir)) != 0 ||
        (rc = stg_discover(s)) != 0) {
        goto fail;
    }
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        if (signal_ops[sig] != NULL && signal_ops[sig]->open != NULL &&
            (rc = signal_ops[sig]->open(s)) != 0) {
            goto fail;
        }
    }
    if ((rc = stg_wal_discover(s)) != 0) {
        goto fail;
    }
    if (o->background) {
        if (pthread_create(&s->thread, NULL, bg_main, s) != 0) {
            rc = SL_ENOMEM;
            goto fail;
        }
        s->thread_started = true;
        /* Kick a first pass at once: a restart cuts what the crash left. */
        pthread_cond_signal(&s->bg_cond);
    }
    *out = s;
    return 0;
fail:
    stg_close(s);
    return rc;
}

void stg_close(stg_store *s) {
    if (s == NULL) {
        return;
    }
    if (s->thread_started) {
        pthread_mutex_lock(&s->bg_mu);
        s->stopping = true;
        pthread_cond_signal(&s->bg_cond);
        pthread_mutex_unlock(&s->bg_mu);
        pthread_join(s->thread, NULL);
    }
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        if (signal_ops[sig] != NULL && signal_ops[sig]->close != NULL) {
            signal_ops[sig]->close(s);
        }
    }
    stg_partition *p = s->parts;
    while (p != NULL) {
        stg_partition *n = p->next;
        stg_part_close(p);
        p = n;
    }
    stg_wal *w = s->wals;
    while (w != NULL) {
        stg_wal *n = w->next;
        stg_wal_close(w);
        w = n;
    }
    stg_deps_close(s);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cut_mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->bg_mu);
    pthread_cond_destroy(&s->bg_cond);
    free(s->data_dir);
    free(s);
}

static uint64_t file_bytes(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

uint64_t stg_wal_backlog(stg_store *s) {
    return atomic_load(&s->wal_backlog);
}

void stg_get_stats(stg_store *s, stg_stats *out) {
    memset(out, 0, sizeof(*out));
    stg_partition **parts;
    size_t n;
    if (stg_parts_list(s, NULL, &parts, &n) != 0) {
        return;
    }
    out->partitions = n;
    for (size_t i = 0; i < n; i++) {
        out->bytes_on_disk += file_bytes(parts[i]->path, "data.mdb");
        out->blocks += atomic_load(&parts[i]->blocks);
    }
    stg_parts_release(s, parts, n);
    stg_wal **wals;
    if (stg_wals_list(s, &wals, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            out->bytes_on_disk += file_bytes(wals[i]->path, "data.mdb");
            for (int sig = 0; sig < STG_NSIGNALS; sig++) {
                out->wal_records += atomic_load(&wals[i]->records[sig]);
                out->wal_bytes += atomic_load(&wals[i]->bytes[sig]);
            }
        }
        free(wals);
    }
    for (int sig = 0; sig < STG_NSIGNALS; sig++) {
        if (signal_ops[sig] != NULL && signal_ops[sig]->stats != NULL) {
            signal_ops[sig]->stats(s, out);
        }
    }
}
