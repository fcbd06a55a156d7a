/*
 * The live service graph: per tenant, per service and per edge (parent
 * service -> child service, from parent/child spans across services), call
 * and error counts in one-minute slots over the last 24 hours and latency
 * histograms in half-hour slots, kept up to date by the cutter as it takes
 * spans from the WAL (so only acknowledged, durable spans count; no batch
 * job scans stored data). Read by /api/dependencies, /api/service-map and
 * the fleet health page.
 *
 * A child span's parent may arrive in a later request (SDKs export a
 * parent after its children): recent span ids are remembered (span id ->
 * service) and children waiting for an unknown parent are kept, both in
 * bounded open-addressing tables that are emptied when full, so memory is
 * bounded whatever the load; an edge whose parent never comes is not
 * counted. The graph is memory only; at start the background thread
 * rebuilds it from the spans stored in the last 24 hours' windows
 * (stg_deps_rebuild) before it cuts anything. Thread-safety: one mutex per
 * graph; the cutter (and the rebuild, on the same thread) writes, query
 * threads read.
 */
#include "storage_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 1440 /* one-minute count slots: 24 h */
#define LAT_SLOTS 144  /* ten-minute latency slots: 24 h */
#define LAT_BUCKETS 64 /* 2^(i/2) microseconds: 1 us .. ~50 min */
#define SEEN_CAP (1u << 16)
#define PENDING_CAP (1u << 13)
#define MAX_SERVICES 1024
#define MAX_EDGES 2048
#define MAX_INSTANCES 256
#define DAY_NS (86400ull * 1000000000ull)
#define STG_DEPS_SCAN_MAX 2000000u /* spans read for a range before the last 24 h */

typedef struct counts {
    uint32_t minute[MIN_SLOTS]; /* the minute (unix / 60) each slot holds */
    uint32_t calls[MIN_SLOTS];
    uint32_t errors[MIN_SLOTS];
    uint32_t lat_slot[LAT_SLOTS]; /* the ten-minute period each slot holds */
    uint32_t lat[LAT_SLOTS][LAT_BUCKETS];
} counts;

typedef struct instance {
    char *name;
    uint64_t last_seen_ns;
} instance;

typedef struct service {
    char *name;
    counts c; /* requests: server and consumer spans, and roots */
    uint64_t last_seen_ns;
    instance *inst;
    size_t ninst, cap_inst;
} service;

typedef struct edge {
    uint32_t parent, child;
    counts c;
} edge;

typedef struct seen_slot {
    uint8_t id[8];
    uint32_t svc; /* +1; 0: empty */
} seen_slot;

typedef struct pending_slot {
    uint8_t parent[8];
    uint32_t child_svc; /* +1; 0: empty */
    uint8_t error;
    uint64_t start_ns, dur_ns;
} pending_slot;

typedef struct graph {
    char *tenant;
    service **svcs;
    size_t nsvcs, cap_svcs;
    edge **edges;
    size_t nedges, cap_edges;
    seen_slot *seen;
    size_t nseen;
    pending_slot *pending;
    size_t npending;
    bool totals; /* a range scan's graph: every call in slot 0, whatever its time */
    struct graph *next;
} graph;

typedef struct deps {
    pthread_mutex_t mu;
    graph *graphs;
} deps;

int stg_deps_open(stg_store *s) {
    deps *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_init(&d->mu, NULL);
    s->deps = d;
    return 0;
}

static char *arena_strdup(sl_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sl_arena_alloc(a, n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

static void graph_free(graph *g) {
    if (g == NULL) {
        return;
    }
    for (size_t i = 0; i < g->nsvcs; i++) {
        for (size_t k = 0; k < g->svcs[i]->ninst; k++) {
            free(g->svcs[i]->inst[k].name);
        }
        free(g->svcs[i]->inst);
        free(g->svcs[i]->name);
        free(g->svcs[i]);
    }
    for (size_t i = 0; i < g->nedges; i++) {
        free(g->edges[i]);
    }
    free(g->svcs);
    free(g->edges);
    free(g->seen);
    free(g->pending);
    free(g->tenant);
    free(g);
}

static graph *graph_new(const char *tenant) {
    graph *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->tenant = strdup(tenant)) == NULL ||
        (g->seen = calloc(SEEN_CAP, sizeof(seen_slot))) == NULL ||
        (g->pending = calloc(PENDING_CAP, sizeof(pending_slot))) == NULL) {
        graph_free(g);
        return NULL;
    }
    return g;
}

void stg_deps_close(stg_store *s) {
    deps *d = s->deps;
    if (d == NULL) {
        return;
    }
    graph *g = d->graphs;
    while (g != NULL) {
        graph *n = g->next;
        graph_free(g);
        g = n;
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
    s->deps = NULL;
}

static graph *graph_get(deps *d, const char *tenant, bool create) {
    for (graph *g = d->graphs; g != NULL; g = g->next) {
        if (strcmp(g->tenant, tenant) == 0) {
            return g;
        }
    }
    if (!create) {
        return NULL;
    }
    graph *g = graph_new(tenant);
    if (g == NULL) {
        return NULL;
    }
    g->next = d->graphs;
    d->graphs = g;
    return g;
}

static uint32_t hash8(const uint8_t *id) {
    uint64_t v;
    memcpy(&v, id, 8);
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (uint32_t)v;
}

/* The service's index, created on first sight; UINT32_MAX when full. */
static uint32_t svc_index(graph *g, sl_str name) {
    for (size_t i = 0; i < g->nsvcs; i++) {
        if (sl_str_eqc(name, g->svcs[i]->name)) {
            return (uint32_t)i;
        }
    }
    if (g->nsvcs >= MAX_SERVICES ||
        sl_array_grow(&g->svcs, &g->cap_svcs, g->nsvcs + 1, sizeof(service *)) != 0) {
        return UINT32_MAX;
    }
    service *sv = calloc(1, sizeof(*sv));
    if (sv == NULL || (sv->name = strndup(name.ptr ? name.ptr : "", name.len)) == NULL) {
        free(sv);
        return UINT32_MAX;
    }
    g->svcs[g->nsvcs] = sv;
    return (uint32_t)g->nsvcs++;
}

static int lat_bucket(uint64_t dur_ns) {
    double us = (double)dur_ns / 1000.0;
    if (us <= 1) {
        return 0;
    }
    int b = (int)ceil(log2(us) * 2);
    return b >= LAT_BUCKETS ? LAT_BUCKETS - 1 : b;
}

/* Counts one call at start_ns (clamped to now: clocks of clients drift). */
static void count(const graph *g, counts *c, uint64_t start_ns, uint64_t now_ns, uint64_t dur_ns,
                  bool error) {
    if (g->totals) {
        c->calls[0]++;
        c->errors[0] += error;
        c->lat[0][lat_bucket(dur_ns)]++;
        return;
    }
    uint64_t t = start_ns > now_ns || start_ns == 0 ? now_ns : start_ns;
    if (now_ns - t > 86400ull * 1000000000ull) {
        return; /* older than the graph keeps */
    }
    uint32_t minute = (uint32_t)(t / 60000000000ull);
    size_t i = minute % MIN_SLOTS;
    if (c->minute[i] != minute) {
        c->minute[i] = minute;
        c->calls[i] = c->errors[i] = 0;
    }
    c->calls[i]++;
    c->errors[i] += error;
    uint32_t period = minute / 30;
    size_t l = period % LAT_SLOTS;
    if (c->lat_slot[l] != period) {
        c->lat_slot[l] = period;
        memset(c->lat[l], 0, sizeof(c->lat[l]));
    }
    c->lat[l][lat_bucket(dur_ns)]++;
}

static void add_edge(graph *g, uint32_t parent, uint32_t child, uint64_t start_ns, uint64_t now_ns,
                     uint64_t dur_ns, bool error) {
    if (parent == child) {
        return;
    }
    edge *e = NULL;
    for (size_t i = 0; i < g->nedges && e == NULL; i++) {
        if (g->edges[i]->parent == parent && g->edges[i]->child == child) {
            e = g->edges[i];
        }
    }
    if (e == NULL) {
        if (g->nedges >= MAX_EDGES ||
            sl_array_grow(&g->edges, &g->cap_edges, g->nedges + 1, sizeof(edge *)) != 0 ||
            (e = calloc(1, sizeof(*e))) == NULL) {
            return;
        }
        e->parent = parent;
        e->child = child;
        g->edges[g->nedges++] = e;
    }
    count(g, &e->c, start_ns, now_ns, dur_ns, error);
}

static void seen_put(graph *g, const uint8_t *id, uint32_t svc) {
    if (g->nseen >= SEEN_CAP * 3 / 4) {
        memset(g->seen, 0, SEEN_CAP * sizeof(seen_slot)); /* forget the oldest at once */
        g->nseen = 0;
    }
    for (uint32_t h = hash8(id) & (SEEN_CAP - 1);; h = (h + 1) & (SEEN_CAP - 1)) {
        seen_slot *s = &g->seen[h];
        if (s->svc == 0) {
            memcpy(s->id, id, 8);
            s->svc = svc + 1;
            g->nseen++;
            return;
        }
        if (memcmp(s->id, id, 8) == 0) {
            s->svc = svc + 1;
            return;
        }
    }
}

static uint32_t seen_get(const graph *g, const uint8_t *id) {
    for (uint32_t h = hash8(id) & (SEEN_CAP - 1);; h = (h + 1) & (SEEN_CAP - 1)) {
        const seen_slot *s = &g->seen[h];
        if (s->svc == 0) {
            return UINT32_MAX;
        }
        if (memcmp(s->id, id, 8) == 0) {
            return s->svc - 1;
        }
    }
}

static void pending_put(graph *g, const sl_span *sp, uint32_t child) {
    if (g->npending >= PENDING_CAP * 3 / 4) {
        memset(g->pending, 0, PENDING_CAP * sizeof(pending_slot));
        g->npending = 0;
    }
    for (uint32_t h = hash8(sp->parent_span_id) & (PENDING_CAP - 1);;
         h = (h + 1) & (PENDING_CAP - 1)) {
        pending_slot *p = &g->pending[h];
        if (p->child_svc == 0) {
            memcpy(p->parent, sp->parent_span_id, 8);
            p->child_svc = child + 1;
            p->error = sp->status_code == SL_STATUS_ERROR;
            p->start_ns = sp->start_unix_nano;
            p->dur_ns = sp->end_unix_nano > sp->start_unix_nano
                            ? sp->end_unix_nano - sp->start_unix_nano
                            : 0;
            g->npending++;
            return;
        }
    }
}

/* Resolves the children waiting for span id (their parent) in service svc.
 * Entries stay (without tombstones a later lookup could stop early); their
 * child_svc is set to UINT32_MAX so that they count once. */
static void pending_resolve(graph *g, const uint8_t *id, uint32_t svc, uint64_t now_ns) {
    for (uint32_t h = hash8(id) & (PENDING_CAP - 1);; h = (h + 1) & (PENDING_CAP - 1)) {
        pending_slot *p = &g->pending[h];
        if (p->child_svc == 0) {
            return;
        }
        if (p->child_svc != UINT32_MAX && memcmp(p->parent, id, 8) == 0) {
            add_edge(g, svc, p->child_svc - 1, p->start_ns, now_ns, p->dur_ns, p->error != 0);
            p->child_svc = UINT32_MAX;
        }
    }
}

static const sl_str *instance_of(const sl_span *sp) {
    const sl_resource *r = sp->resource;
    for (uint32_t i = 0; r != NULL && i < r->nattrs; i++) {
        if (r->attrs[i].val.type == SL_VAL_STR &&
            (sl_str_eqc(r->attrs[i].key, "service.instance.id"))) {
            return &r->attrs[i].val.v.s;
        }
    }
    for (uint32_t i = 0; r != NULL && i < r->nattrs; i++) {
        if (r->attrs[i].val.type == SL_VAL_STR && sl_str_eqc(r->attrs[i].key, "host.name")) {
            return &r->attrs[i].val.v.s;
        }
    }
    return NULL;
}

static void note_instance(service *sv, sl_str name, uint64_t now_ns) {
    for (size_t i = 0; i < sv->ninst; i++) {
        if (sl_str_eqc(name, sv->inst[i].name)) {
            if (now_ns > sv->inst[i].last_seen_ns) {
                sv->inst[i].last_seen_ns = now_ns;
            }
            return;
        }
    }
    if (sv->ninst >= MAX_INSTANCES ||
        sl_array_grow(&sv->inst, &sv->cap_inst, sv->ninst + 1, sizeof(instance)) != 0) {
        return;
    }
    char *n = strndup(name.ptr, name.len);
    if (n != NULL) {
        sv->inst[sv->ninst++] = (instance){n, now_ns};
    }
}

static void observe_into(graph *g, sl_span *const *spans, size_t n, bool replay);

/* Counts n spans into the tenant's graph. Live, a service was last seen when
 * its span was stored (now); replayed from storage, when the span ended. */
static void observe(stg_store *s, const char *tenant, sl_span *const *spans, size_t n,
                    bool replay) {
    deps *d = s->deps;
    if (d == NULL || n == 0) {
        return;
    }
    pthread_mutex_lock(&d->mu);
    graph *g = graph_get(d, tenant, true);
    if (g != NULL) {
        observe_into(g, spans, n, replay);
    }
    pthread_mutex_unlock(&d->mu);
}

/* Counts n spans into g (its mutex held, or g private to the caller). */
static void observe_into(graph *g, sl_span *const *spans, size_t n, bool replay) {
    uint64_t now = sl_now_unix_nano();
    uint32_t *svc = malloc(n * sizeof(uint32_t));
    if (svc == NULL) {
        return;
    }
    /* 1: every span's service is known by its id; requests are counted */
    for (size_t i = 0; i < n; i++) {
        const sl_span *sp = spans[i];
        sl_str name = sp->resource ? sp->resource->service : (sl_str){0};
        svc[i] = svc_index(g, name.len ? name : SL_STR_LIT("unknown_service"));
        if (svc[i] == UINT32_MAX) {
            continue;
        }
        seen_put(g, sp->span_id, svc[i]);
        service *sv = g->svcs[svc[i]];
        uint64_t seen = now;
        if (replay) {
            uint64_t end =
                sp->end_unix_nano > sp->start_unix_nano ? sp->end_unix_nano : sp->start_unix_nano;
            seen = end < now ? end : now;
        }
        sv->last_seen_ns = seen > sv->last_seen_ns ? seen : sv->last_seen_ns;
        const sl_str *inst = instance_of(sp);
        if (inst != NULL && inst->len > 0) {
            note_instance(sv, *inst, seen);
        }
        bool root = sl_is_zero(sp->parent_span_id, 8);
        if (root || sp->kind == SL_KIND_SERVER || sp->kind == SL_KIND_CONSUMER) {
            count(g, &sv->c, sp->start_unix_nano, now,
                  sp->end_unix_nano > sp->start_unix_nano ? sp->end_unix_nano - sp->start_unix_nano
                                                          : 0,
                  sp->status_code == SL_STATUS_ERROR);
        }
    }
    /* 2: children that waited for one of these spans */
    for (size_t i = 0; i < n; i++) {
        if (svc[i] != UINT32_MAX) {
            pending_resolve(g, spans[i]->span_id, svc[i], now);
        }
    }
    /* 3: this batch's children */
    for (size_t i = 0; i < n; i++) {
        const sl_span *sp = spans[i];
        if (svc[i] == UINT32_MAX || sl_is_zero(sp->parent_span_id, 8)) {
            continue;
        }
        uint32_t parent = seen_get(g, sp->parent_span_id);
        if (parent == UINT32_MAX) {
            pending_put(g, sp, svc[i]);
        } else {
            add_edge(g, parent, svc[i], sp->start_unix_nano, now,
                     sp->end_unix_nano > sp->start_unix_nano
                         ? sp->end_unix_nano - sp->start_unix_nano
                         : 0,
                     sp->status_code == SL_STATUS_ERROR);
        }
    }
    free(svc);
}

void stg_deps_observe(stg_store *s, const char *tenant, sl_span *const *spans, size_t n) {
    observe(s, tenant, spans, n, false);
}

typedef struct rebuild_ctx {
    stg_store *s;
    const char *tenant;
    graph *g; /* range scans */
    uint64_t spans, max;
} rebuild_ctx;

/* Replays a batch of stored spans: into c->g (a range scan's private graph)
 * or, at start, into the tenant's live graph; stops past c->max spans. */
static int replay_batch(void *ud, const sl_span *spans, size_t n) {
    rebuild_ctx *c = ud;
    sl_span **ptrs = malloc(n * sizeof(*ptrs));
    if (ptrs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = (sl_span *)(uintptr_t)&spans[i];
    }
    if (c->g != NULL) {
        observe_into(c->g, ptrs, n, true);
    } else {
        observe(c->s, c->tenant, ptrs, n, true);
    }
    free(ptrs);
    c->spans += n;
    return c->spans >= c->max ? SL_ETOOBIG : 0;
}

void stg_deps_rebuild(stg_store *s) {
    uint64_t t0 = sl_mono_nano(), now = sl_now_unix_nano();
    uint64_t from = now > DAY_NS ? now - DAY_NS : 0;
    stg_partition **parts = NULL;
    size_t np = 0;
    if (s->deps == NULL || stg_parts_list(s, NULL, &parts, &np) != 0) {
        return;
    }
    sl_arena tmp;
    sl_arena_init(&tmp, 256u << 20);
    rebuild_ctx c = {.s = s, .max = STG_DEPS_REBUILD_MAX};
    int rc = 0;
    /* Each tenant's list is newest first: walk it backwards, oldest first,
     * as the cutter saw the spans. */
    for (size_t i = np; i > 0 && rc == 0; i--) {
        stg_partition *p = parts[i - 1];
        if (p->window_start_ns + s->opt.partition_ns <= from) {
            continue;
        }
        c.tenant = p->tenant;
        rc = stg_scan_partition(p, from, UINT64_MAX, &tmp, replay_batch, &c);
    }
    sl_arena_free(&tmp);
    stg_parts_release(s, parts, np);
    if (rc == SL_ETOOBIG) {
        SL_LOG_W("storage", "service graph rebuilt from the first %llu stored spans only",
                 (unsigned long long)c.spans);
    } else if (rc != 0) {
        SL_LOG_W("storage", "service graph rebuild stopped: %s", sl_strerror(rc));
    } else if (c.spans > 0) {
        SL_LOG_I("storage", "service graph rebuilt from %llu stored spans in %llu ms",
                 (unsigned long long)c.spans,
                 (unsigned long long)((sl_mono_nano() - t0) / 1000000u));
    }
}

/* Calls, errors and the latency histogram of one service or edge, summed
 * over a range from the live graph and from a range scan. */
typedef struct acc {
    uint64_t calls, errors;
    uint64_t hist[LAT_BUCKETS];
} acc;

/* Adds c's slots in [start_ns, end_ns] to a (a scan graph's slot 0 whole). */
static void acc_add(acc *a, const counts *c, bool totals, uint64_t start_ns, uint64_t end_ns) {
    if (totals) {
        a->calls += c->calls[0];
        a->errors += c->errors[0];
        for (size_t b = 0; b < LAT_BUCKETS; b++) {
            a->hist[b] += c->lat[0][b];
        }
        return;
    }
    uint32_t m0 = (uint32_t)(start_ns / 60000000000ull), m1 = (uint32_t)(end_ns / 60000000000ull);
    for (size_t i = 0; i < MIN_SLOTS; i++) {
        if (c->minute[i] >= m0 && c->minute[i] <= m1 && c->calls[i] > 0) {
            a->calls += c->calls[i];
            a->errors += c->errors[i];
        }
    }
    for (size_t l = 0; l < LAT_SLOTS; l++) {
        if (c->lat_slot[l] >= m0 / 30 && c->lat_slot[l] <= m1 / 30) {
            for (size_t b = 0; b < LAT_BUCKETS; b++) {
                a->hist[b] += c->lat[l][b];
            }
        }
    }
}

/* Calls, errors and latency quantiles (seconds; NaN without calls). */
static void acc_finish(const acc *a, stg_dep_stats *out) {
    uint64_t total = 0;
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        total += a->hist[b];
    }
    out->calls = a->calls;
    out->errors = a->errors;
    double qs[3] = {0.5, 0.95, 0.99};
    double *outs[3] = {&out->p50_s, &out->p95_s, &out->p99_s};
    for (int q = 0; q < 3; q++) {
        *outs[q] = NAN;
        if (total == 0) {
            continue;
        }
        uint64_t rank = (uint64_t)ceil(qs[q] * (double)total), sum = 0;
        for (size_t b = 0; b < LAT_BUCKETS; b++) {
            sum += a->hist[b];
            if (sum >= rank) {
                /* the bucket's upper bound, 2^(b/2) microseconds */
                *outs[q] = pow(2.0, (double)b / 2.0) / 1e6;
                break;
            }
        }
    }
}

/* The part of a range older than the live graph keeps (24 h): a graph of
 * totals from the stored spans that start in it, at most STG_DEPS_SCAN_MAX
 * of them (what the graph was before it was kept live). NULL when empty. */
static int scan_range(stg_store *s, const char *tenant, uint64_t start_ns, uint64_t end_ns,
                      graph **out) {
    *out = NULL;
    graph *g = graph_new(tenant);
    if (g == NULL) {
        return SL_ENOMEM;
    }
    g->totals = true;
    rebuild_ctx c = {.s = s, .g = g, .max = STG_DEPS_SCAN_MAX};
    int rc = stg_scan_spans(s, tenant, start_ns, end_ns, replay_batch, &c);
    if (rc == SL_ETOOBIG) {
        SL_LOG_W("storage",
                 "dependencies of tenant %s before the last 24 h: the first %llu spans "
                 "of the range only",
                 tenant, (unsigned long long)c.spans);
        rc = 0;
    }
    if (rc != 0 || g->nsvcs == 0) {
        graph_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static size_t find_svc(const graph *g, const char *name) {
    for (size_t i = 0; g != NULL && i < g->nsvcs; i++) {
        if (strcmp(g->svcs[i]->name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static const edge *find_edge(const graph *g, const char *parent, const char *child) {
    size_t p = find_svc(g, parent), c = find_svc(g, child);
    for (size_t i = 0; p != SIZE_MAX && c != SIZE_MAX && i < g->nedges; i++) {
        if (g->edges[i]->parent == p && g->edges[i]->child == c) {
            return g->edges[i];
        }
    }
    return NULL;
}

int stg_deps_get(stg_store *s, const char *tenant, uint64_t start_ns, uint64_t end_ns, sl_arena *a,
                 stg_dep_edge **edges, size_t *nedges, stg_dep_service **svcs, size_t *nsvcs) {
    deps *d = s->deps;
    *edges = NULL;
    *svcs = NULL;
    *nedges = *nsvcs = 0;
    if (d == NULL) {
        return 0;
    }
    uint64_t now = sl_now_unix_nano();
    uint64_t cutoff = now > DAY_NS ? now - DAY_NS : 0;
    graph *old = NULL; /* [start, cutoff): from stored spans */
    int rc = 0;
    if (start_ns < cutoff &&
        (rc = scan_range(s, tenant, start_ns, end_ns < cutoff ? end_ns : cutoff - 1, &old)) != 0) {
        return rc;
    }
    uint64_t live_start = start_ns > cutoff ? start_ns : cutoff;
    pthread_mutex_lock(&d->mu);
    graph *g = graph_get(d, tenant, false);
    const graph *both[2] = {g, old};
    size_t max_edges = (g ? g->nedges : 0) + (old ? old->nedges : 0);
    size_t max_svcs = (g ? g->nsvcs : 0) + (old ? old->nsvcs : 0);
    *edges = sl_arena_alloc(a, (max_edges ? max_edges : 1) * sizeof(stg_dep_edge));
    *svcs = sl_arena_alloc(a, (max_svcs ? max_svcs : 1) * sizeof(stg_dep_service));
    if (*edges == NULL || *svcs == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    /* Edges and services of the live graph (with the scan's of the same
     * names), then those only the scan has. */
    for (int k = 0; k < 2; k++) {
        const graph *x = both[k];
        for (size_t i = 0; x != NULL && i < x->nedges; i++) {
            const char *pn = x->svcs[x->edges[i]->parent]->name;
            const char *cn = x->svcs[x->edges[i]->child]->name;
            if (k == 1 && find_edge(g, pn, cn) != NULL) {
                continue; /* counted with the live edge */
            }
            acc sum = {0};
            acc_add(&sum, &x->edges[i]->c, x->totals, live_start, end_ns);
            const edge *o = k == 0 ? find_edge(old, pn, cn) : NULL;
            if (o != NULL) {
                acc_add(&sum, &o->c, true, 0, 0);
            }
            if (sum.calls == 0) {
                continue;
            }
            stg_dep_edge *e = &(*edges)[(*nedges)++];
            acc_finish(&sum, &e->stats);
            e->parent = arena_strdup(a, pn);
            e->child = arena_strdup(a, cn);
            if (e->parent == NULL || e->child == NULL) {
                rc = SL_ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; x != NULL && i < x->nsvcs; i++) {
            const service *sv = x->svcs[i];
            if (k == 1 && find_svc(g, sv->name) != SIZE_MAX) {
                continue;
            }
            acc sum = {0};
            acc_add(&sum, &sv->c, x->totals, live_start, end_ns);
            size_t oi = k == 0 ? find_svc(old, sv->name) : SIZE_MAX;
            const service *osv = oi != SIZE_MAX ? old->svcs[oi] : NULL;
            if (osv != NULL) {
                acc_add(&sum, &osv->c, true, 0, 0);
            }
            stg_dep_service *o = &(*svcs)[(*nsvcs)++];
            acc_finish(&sum, &o->stats);
            o->name = arena_strdup(a, sv->name);
            if (o->name == NULL) {
                rc = SL_ENOMEM;
                goto out;
            }
            o->last_seen_unix_nano = sv->last_seen_ns;
            if (osv != NULL && osv->last_seen_ns > o->last_seen_unix_nano) {
                o->last_seen_unix_nano = osv->last_seen_ns;
            }
            o->instances = 0;
            for (size_t j = 0; j < sv->ninst; j++) {
                o->instances += x->totals || sv->inst[j].last_seen_ns + (end_ns - start_ns) >= now;
            }
        }
    }
out:
    pthread_mutex_unlock(&d->mu);
    graph_free(old);
    return rc;
}
