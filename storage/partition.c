/*
 * Partitions: one LMDB environment per tenant per ingest window, found on disk
 * at start-up, created on first write, dropped whole by retention. The list
 * and reference counts are guarded by stg_store.mu; LMDB handles inside a
 * partition are used by many threads (MDB_NOTLS read transactions).
 */
#include "storage_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

char stg_bounds_key[4] = {'s', 'p', 'a', 'n'};
char stg_mark_key[4] = {'m', 'a', 'r', 'k'};

int stg_mkdirs(const char *path) {
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp)) {
        return SL_EINVAL;
    }
    memcpy(tmp, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -errno;
            }
            tmp[i] = c;
        }
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int stg_rmtree(const char *path) {
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

int stg_lmdb_err(int rc) {
    if (rc == 0) {
        return 0;
    }
    if (rc > 0) {
        return -rc; /* an errno value */
    }
    if (rc != MDB_NOTFOUND && rc != MDB_KEYEXIST) {
        /* The caller reports "storage error"; the log says which. */
        SL_LOG_W("storage", "lmdb: %s", mdb_strerror(rc));
    }
    return rc == MDB_MAP_FULL ? SL_EMAPFULL : SL_ESTORAGE;
}

int stg_env_grow(MDB_env *env, const char *path) {
    MDB_envinfo info;
    MDB_stat st;
    int mrc = mdb_env_info(env, &info);
    if (mrc == 0) {
        mrc = mdb_env_stat(env, &st);
    }
    if (mrc == 0) {
        uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
        uint64_t size = info.me_mapsize * 2;
        size = size < used + (64u << 20) ? used + (64u << 20) : size;
        size = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
        mrc = mdb_env_set_mapsize(env, (size_t)size);
        if (mrc == 0) {
            SL_LOG_W("storage", "%s: map was full; grown from %llu to %llu MiB", path,
                     (unsigned long long)(info.me_mapsize >> 20), (unsigned long long)(size >> 20));
        }
    }
    if (mrc != 0) {
        SL_LOG_E("storage", "%s: map is full and cannot grow: %s", path, mdb_strerror(mrc));
    }
    return mrc == 0 ? 0 : SL_EMAPFULL;
}

/* Free bytes on the file system of path (or of its nearest existing
 * ancestor). */
static uint64_t free_bytes(const char *path) {
    char p[4200];
    snprintf(p, sizeof(p), "%s", path);
    for (;;) {
        struct statvfs vfs;
        if (statvfs(p, &vfs) == 0) {
            return (uint64_t)vfs.f_bavail * vfs.f_frsize;
        }
        char *slash = strrchr(p, '/');
        if (slash == NULL || slash == p) {
            return UINT64_MAX;
        }
        *slash = '\0';
    }
}

int stg_env_open(const char *path, bool create, unsigned maxdbs, uint64_t map_size, MDB_env **out) {
    MDB_env *env = NULL;
    char file[4200];
    struct stat sb;
    snprintf(file, sizeof(file), "%s/data.mdb", path);
    /* Creating an environment on a full disk can fault (SIGBUS) on LMDB's
     * first access to its map: refuse while almost nothing is free. */
    if (create && stat(file, &sb) != 0 && free_bytes(path) < STG_ENV_CREATE_MIN) {
        return -ENOSPC;
    }
    int rc = create ? stg_mkdirs(path) : 0;
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_env_create(&env));
    }
    if (rc == 0) {
        mdb_env_set_maxdbs(env, maxdbs);
        mdb_env_set_maxreaders(env, 512);
        mdb_env_set_mapsize(env, (size_t)map_size);
        /* NOTLS: read transactions are not tied to threads (the query
         * server's pool); NORDAHEAD: blocks are read by key, not in order. */
        rc = stg_lmdb_err(mdb_env_open(env, path, MDB_NOTLS | MDB_NORDAHEAD, 0644));
        if (rc != 0) {
            mdb_env_close(env);
        }
    }
    if (rc == 0) {
        *out = env;
    }
    return rc;
}

static int last_key_u64(MDB_txn *txn, MDB_dbi dbi, uint64_t *out) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) {
        *out = sl_get_be64(k.mv_data) + 1;
    } else if (rc == MDB_NOTFOUND) {
        *out = 1;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Reads the partition's block count, span bounds and cut mark once at open. */
static int load_state(stg_partition *p) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = last_key_u64(txn, p->db_blocks, &p->next_block);
    MDB_stat st;
    if (rc == 0 && mdb_stat(txn, p->db_blocks, &st) == 0) {
        atomic_store(&p->blocks, st.ms_entries);
    }
    MDB_val k = {4, stg_bounds_key}, v;
    if (rc == 0 && mdb_get(txn, p->db_bmeta, &k, &v) == 0 && v.mv_size == 16) {
        uint64_t b[2];
        memcpy(b, v.mv_data, 16);
        atomic_store(&p->min_start, b[0]);
        atomic_store(&p->max_start, b[1]);
    }
    k = (MDB_val){4, stg_mark_key};
    if (rc == 0 && mdb_get(txn, p->db_bmeta, &k, &v) == 0 && v.mv_size == 8) {
        memcpy(&p->mark, v.mv_data, 8);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* The map size of a sealed window: its file, with room to spare. */
static uint64_t sealed_map_size(const char *dir) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    return (size + (2u << 20)) & ~(uint64_t)((1u << 20) - 1);
}

/* Opens p's environment at map_size and its databases. */
static int part_env_open(stg_partition *p, bool create, uint64_t map_size) {
    MDB_txn *txn = NULL;
    int rc = stg_env_open(p->path, create, 8, map_size, &p->env);
    if (rc == 0) {
        rc = stg_lmdb_err(mdb_txn_begin(p->env, NULL, 0, &txn));
    }
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[] = {
        {"blocks", 0, &p->db_blocks},
        {"bmeta", 0, &p->db_bmeta},
        {"tid", MDB_DUPSORT | MDB_DUPFIXED, &p->db_tid},
        {"svcop", MDB_DUPSORT | MDB_DUPFIXED, &p->db_svcop},
        {"attr", MDB_DUPSORT | MDB_DUPFIXED, &p->db_attr},
        {"bloom", 0, &p->db_bloom},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = stg_lmdb_err(mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbs[i].dbi));
    }
    /* Windows cut before `tid` existed keep their `trace` index: read it. */
    p->has_trace = false;
    if (rc == 0) {
        int trc = mdb_dbi_open(txn, "trace", MDB_DUPSORT | MDB_DUPFIXED, &p->db_trace);
        p->has_trace = trc == 0;
        rc = trc == 0 || trc == MDB_NOTFOUND ? 0 : stg_lmdb_err(trc);
    }
    if (txn != NULL) {
        if (rc == 0) {
            rc = stg_lmdb_err(mdb_txn_commit(txn));
        } else {
            mdb_txn_abort(txn);
        }
    }
    if (rc != 0 && p->env != NULL) {
        mdb_env_close(p->env);
        p->env = NULL;
    }
    return rc;
}

int stg_part_reseal(stg_store *s, stg_partition *p, bool sealed) {
    if (p->sealed == sealed) {
        return 0;
    }
    mdb_env_close(p->env);
    p->env = NULL;
    int rc = part_env_open(p, false, sealed ? sealed_map_size(p->path) : s->opt.map_size);
    if (rc != 0) {
        /* Try the other way round so that the window stays readable. */
        if (part_env_open(p, false, s->opt.map_size) == 0) {
            p->sealed = false;
        }
        return rc;
    }
    p->sealed = sealed;
    return 0;
}

int stg_part_open(stg_store *s, const char *tenant, uint64_t window_start_ns, bool create,
                  stg_partition **out) {
    int rc = 0;
    stg_partition *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/traces/%llu", s->data_dir, tenant,
             (unsigned long long)(window_start_ns / 1000000000u));
    p->tenant = strdup(tenant);
    p->path = strdup(path);
    p->window_start_ns = window_start_ns;
    atomic_store(&p->min_start, UINT64_MAX);
    if (p->tenant == NULL || p->path == NULL) {
        rc = SL_ENOMEM;
        goto fail;
    }
    /* A window that ended before we started only serves reads: map just
     * its file (sealed) so that days of windows do not each reserve the full
     * map size of address space. The cutter unseals it if it must write. */
    bool sealed = !create && window_start_ns + s->opt.partition_ns < sl_now_unix_nano();
    if ((rc = part_env_open(p, create, sealed ? sealed_map_size(path) : s->opt.map_size)) != 0) {
        goto fail;
    }
    p->sealed = sealed;
    if ((rc = stg_lmdb_err(load_state(p))) != 0) {
        goto fail;
    }
    *out = p;
    return 0;
fail:
    SL_LOG_E("storage", "cannot open partition %s: %s", path, sl_strerror(rc));
    stg_part_close(p);
    return rc;
}

void stg_part_close(stg_partition *p) {
    if (p == NULL) {
        return;
    }
    if (p->env != NULL) {
        mdb_env_close(p->env);
    }
    free(p->tenant);
    free(p->path);
    free(p);
}

/* Inserts p keeping the list ordered newest window first. Caller holds mu. */
static void insert_sorted(stg_store *s, stg_partition *p) {
    stg_partition **pp = &s->parts;
    while (*pp != NULL && (*pp)->window_start_ns > p->window_start_ns) {
        pp = &(*pp)->next;
    }
    p->next = *pp;
    *pp = p;
}

int stg_part_get(stg_store *s, const char *tenant, uint64_t window_start_ns, stg_partition **out) {
    pthread_mutex_lock(&s->mu);
    for (stg_partition *p = s->parts; p != NULL; p = p->next) {
        if (p->window_start_ns == window_start_ns && strcmp(p->tenant, tenant) == 0) {
            p->refs++;
            pthread_mutex_unlock(&s->mu);
            *out = p;
            return 0;
        }
    }
    /* Opening under the lock keeps two threads from opening the same
     * environment twice (LMDB forbids that within a process); it happens once
     * per window. */
    stg_partition *p = NULL;
    int rc = stg_part_open(s, tenant, window_start_ns, true, &p);
    if (rc == 0) {
        p->refs = 1;
        insert_sorted(s, p);
        *out = p;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void stg_part_release(stg_store *s, stg_partition *p) {
    bool free_it = false;
    pthread_mutex_lock(&s->mu);
    p->refs--;
    free_it = p->dropped && p->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (free_it) {
        char *path = strdup(p->path);
        stg_part_close(p);
        if (path != NULL) {
            stg_rmtree(path);
            free(path);
        }
    }
}

int stg_parts_list(stg_store *s, const char *tenant, stg_partition ***parts, size_t *n) {
    pthread_mutex_lock(&s->mu);
    size_t count = 0;
    for (stg_partition *p = s->parts; p != NULL; p = p->next) {
        count += tenant == NULL || strcmp(p->tenant, tenant) == 0;
    }
    stg_partition **arr = malloc((count ? count : 1) * sizeof(*arr));
    if (arr == NULL) {
        pthread_mutex_unlock(&s->mu);
        return SL_ENOMEM;
    }
    size_t i = 0;
    for (stg_partition *p = s->parts; p != NULL; p = p->next) {
        if (tenant == NULL || strcmp(p->tenant, tenant) == 0) {
            p->refs++;
            arr[i++] = p;
        }
    }
    pthread_mutex_unlock(&s->mu);
    *parts = arr;
    *n = count;
    return 0;
}

void stg_parts_release(stg_store *s, stg_partition **parts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        stg_part_release(s, parts[i]);
    }
    free(parts);
}

static bool all_digits(const char *s) {
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

int stg_discover(stg_store *s) {
    DIR *top = opendir(s->data_dir);
    if (top == NULL) {
        return -errno;
    }
    struct dirent *te;
    int rc = 0;
    while (rc == 0 && (te = readdir(top)) != NULL) {
        if (!stg_tenant_valid(sl_str_c(te->d_name)) || te->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/traces", s->data_dir, te->d_name);
        DIR *d = opendir(path);
        if (d == NULL) {
            continue;
        }
        struct dirent *we;
        while (rc == 0 && (we = readdir(d)) != NULL) {
            if (!all_digits(we->d_name)) {
                continue;
            }
            uint64_t secs;
            if (sl_parse_u64(sl_str_c(we->d_name), &secs) != 0 || secs > UINT64_MAX / 1000000000u) {
                continue;
            }
            stg_partition *p = NULL;
            rc = stg_part_open(s, te->d_name, secs * 1000000000u, false, &p);
            if (rc == 0) {
                s->max_mark = p->mark > s->max_mark ? p->mark : s->max_mark;
                pthread_mutex_lock(&s->mu);
                insert_sorted(s, p);
                pthread_mutex_unlock(&s->mu);
            }
        }
        closedir(d);
    }
    closedir(top);
    return rc;
}

uint64_t stg_retention_cutoff(stg_store *s, const char *tenant, stg_signal sig, uint64_t now_ns) {
    sl_tenant_limits lim;
    sl_limits_lookup(s->opt.limits, tenant, &lim);
    uint64_t keep = lim.retention_ns[sig] != 0 ? lim.retention_ns[sig] : s->opt.retention_ns;
    return keep != 0 && now_ns > keep ? now_ns - keep : 0;
}

int stg_retention_run(stg_store *s, uint64_t now_ns) {
    stg_partition *victims = NULL;
    pthread_mutex_lock(&s->mu);
    stg_partition **pp = &s->parts;
    while (*pp != NULL) {
        stg_partition *p = *pp;
        /* A window is dropped once all of it is older than the cutoff. */
        uint64_t cutoff = stg_retention_cutoff(s, p->tenant, STG_TRACES, now_ns);
        if (cutoff != 0 && p->window_start_ns + s->opt.partition_ns <= cutoff) {
            *pp = p->next;
            p->dropped = true;
            p->refs++; /* ours, released below */
            p->next = victims;
            victims = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (victims != NULL) {
        stg_partition *p = victims;
        victims = p->next;
        SL_LOG_I("storage", "retention drops %s", p->path);
        stg_part_release(s, p);
    }
    return 0;
}

void stg_widen_bounds(stg_partition *p, uint64_t min_start, uint64_t max_start) {
    uint64_t cur = atomic_load(&p->min_start);
    while (min_start < cur && !atomic_compare_exchange_weak(&p->min_start, &cur, min_start)) {
    }
    cur = atomic_load(&p->max_start);
    while (max_start > cur && !atomic_compare_exchange_weak(&p->max_start, &cur, max_start)) {
    }
}

void stg_seal_run(stg_store *s, uint64_t now_ns) {
    uint64_t settle = 2ull * s->opt.cut_interval_ms * 1000000u;
    stg_wal **wals = NULL;
    size_t nw = 0;
    if (stg_wals_list(s, &wals, &nw) != 0) {
        return;
    }
    /* Records only ever join the current window, so once a tenant's oldest
     * uncut record is newer than a past window, nothing will write to it. */
    uint64_t *oldest = malloc((nw ? nw : 1) * sizeof(*oldest));
    if (oldest == NULL) {
        free(wals);
        return;
    }
    for (size_t i = 0; i < nw; i++) {
        oldest[i] = stg_wal_oldest_window(wals[i]);
    }
    pthread_mutex_lock(&s->mu);
    for (stg_partition *p = s->parts; p != NULL; p = p->next) {
        if (p->sealed || p->dropped || p->refs != 0 ||
            p->window_start_ns + s->opt.partition_ns + settle > now_ns) {
            continue;
        }
        uint64_t pending = UINT64_MAX;
        for (size_t i = 0; i < nw; i++) {
            if (strcmp(wals[i]->tenant, p->tenant) == 0) {
                pending = oldest[i];
            }
        }
        if (pending > p->window_start_ns) {
            int rc = stg_part_reseal(s, p, true);
            if (rc != 0) {
                SL_LOG_W("storage", "cannot seal %s: %s", p->path, sl_strerror(rc));
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(oldest);
    free(wals);
}
