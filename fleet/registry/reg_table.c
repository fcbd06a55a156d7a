/*
 * The registry's instance table; see reg_table.h. Each instance is one
 * malloc'd block with its strings; it sits in the id map, in its service's
 * doubly linked list, in the deadline heap (position kept in the instance, so
 * a heartbeat re-sifts it in O(log n)) and, when its heartbeat is not yet
 * persisted, in the dirty list. Services are created on first registration
 * and freed with their last instance.
 */
#include "reg_table.h"

#include "edge_hmap.h"
#include "edge_version.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_util.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_HEAP SIZE_MAX

typedef struct reg_service reg_service;

typedef struct reg_inst {
    edge_hnode by_id;
    char id[REG_ID_LEN + 1];
    char *name; /* points into the service (shared) */
    char *version;
    char *address;
    char *tags[REG_MAX_TAGS];
    size_t n_tags;
    uint32_t ttl_s;
    uint64_t registered_unix_ns;
    uint64_t last_heartbeat_unix_ns;
    uint64_t ttl_deadline_ns; /* when the TTL runs out (from the latest heartbeat or restore) */
    bool ttl_expired;
    bool check_failing;
    char check_output[96];
    reg_service *svc;
    struct reg_inst *svc_prev, *svc_next;
    size_t heap_pos;
    bool dirty;
    struct reg_inst *dirty_next;
    struct reg_inst **dirty_pprev; /* the pointer that points at this one */
} reg_inst;

struct reg_service {
    edge_hnode by_name;
    char *name;
    reg_inst *head, *tail;
    size_t instances;
    size_t passing;
};

struct reg_table {
    edge_hmap ids;
    edge_hmap services;
    reg_inst **heap;
    size_t heap_len, heap_cap;
    reg_inst *dirty;
    uint64_t reap_after_ns;
};

static bool inst_passing(const reg_inst *i) {
    return !i->ttl_expired && !i->check_failing;
}

/* The time of the instance's next event, or UINT64_MAX for none. */
static uint64_t inst_deadline(const reg_table *t, const reg_inst *i) {
    if (!i->ttl_expired) {
        return i->ttl_deadline_ns;
    }
    return t->reap_after_ns == 0 ? UINT64_MAX : i->ttl_deadline_ns + t->reap_after_ns;
}

/* --- the deadline heap --------------------------------------------------- */

static void heap_set(reg_table *t, size_t pos, reg_inst *i) {
    t->heap[pos] = i;
    i->heap_pos = pos;
}

static void heap_up(reg_table *t, size_t pos) {
    reg_inst *i = t->heap[pos];
    uint64_t d = inst_deadline(t, i);
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (inst_deadline(t, t->heap[parent]) <= d) {
            break;
        }
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, i);
}

static void heap_down(reg_table *t, size_t pos) {
    reg_inst *i = t->heap[pos];
    uint64_t d = inst_deadline(t, i);
    for (;;) {
        size_t l = 2 * pos + 1, best = pos;
        uint64_t bd = d;
        if (l < t->heap_len && inst_deadline(t, t->heap[l]) < bd) {
            best = l;
            bd = inst_deadline(t, t->heap[l]);
        }
        if (l + 1 < t->heap_len && inst_deadline(t, t->heap[l + 1]) < bd) {
            best = l + 1;
        }
        if (best == pos) {
            break;
        }
        heap_set(t, pos, t->heap[best]);
        pos = best;
    }
    heap_set(t, pos, i);
}

static int heap_push(reg_table *t, reg_inst *i) {
    if (sl_array_grow(&t->heap, &t->heap_cap, t->heap_len + 1, sizeof(*t->heap)) != 0) {
        return SL_ENOMEM;
    }
    heap_set(t, t->heap_len++, i);
    heap_up(t, i->heap_pos);
    return 0;
}

static void heap_remove(reg_table *t, reg_inst *i) {
    size_t pos = i->heap_pos;
    if (pos == NO_HEAP) {
        return;
    }
    i->heap_pos = NO_HEAP;
    reg_inst *last = t->heap[--t->heap_len];
    if (last == i) {
        return;
    }
    heap_set(t, pos, last);
    heap_up(t, pos);
    heap_down(t, last->heap_pos);
}

/* Re-positions i after its deadline changed (in either direction): an
 * instance without a next event leaves the heap, one that regains an event
 * (a heartbeat after expiry with no reaping) re-enters it. */
static int heap_fix(reg_table *t, reg_inst *i) {
    bool has_event = inst_deadline(t, i) != UINT64_MAX;
    if (i->heap_pos == NO_HEAP) {
        return has_event ? heap_push(t, i) : 0;
    }
    if (!has_event) {
        heap_remove(t, i);
        return 0;
    }
    heap_up(t, i->heap_pos);
    heap_down(t, i->heap_pos);
    return 0;
}

/* --- checks and ids ----------------------------------------------------- */

static bool field_ok(const char *s, bool allow_empty) {
    if (s == NULL) {
        return allow_empty;
    }
    size_t n = strlen(s);
    if ((n == 0 && !allow_empty) || n > REG_MAX_FIELD) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x21 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

int reg_spec_check(const reg_spec *s, const char **why) {
    *why = NULL;
    if (!field_ok(s->name, false)) {
        *why = "name must be 1-256 printable characters";
        return SL_EINVAL;
    }
    for (const char *p = s->name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            *why = "name may hold only letters, digits, '.', '_' and '-'";
            return SL_EINVAL;
        }
    }
    if (!field_ok(s->version, true)) {
        *why = "version must be at most 256 printable characters";
        return SL_EINVAL;
    }
    if (!field_ok(s->address, false) ||
        (strncmp(s->address, "http://", 7) != 0 && strncmp(s->address, "https://", 8) != 0) ||
        strlen(s->address) < 9) {
        *why = "address must be an http:// or https:// URL";
        return SL_EINVAL;
    }
    if (s->n_tags > REG_MAX_TAGS) {
        *why = "at most 16 tags";
        return SL_EINVAL;
    }
    for (size_t k = 0; k < s->n_tags; k++) {
        if (!field_ok(s->tags[k], false) || strchr(s->tags[k], ',') != NULL) {
            *why = "tags must be 1-256 printable characters without commas";
            return SL_EINVAL;
        }
    }
    if (s->ttl_s < 1 || s->ttl_s > 86400) {
        *why = "ttl_s must be between 1 and 86400";
        return SL_EINVAL;
    }
    return 0;
}

void reg_instance_id(const char *name, const char *address, char id[REG_ID_LEN + 1]) {
    /* Both fields are at most REG_MAX_FIELD bytes once checked; longer input
     * is cut, which only makes the id less specific, never unsafe. */
    unsigned char in[2 * REG_MAX_FIELD + 2], md[SHA256_DIGEST_LENGTH];
    size_t nn = strnlen(name, REG_MAX_FIELD), na = strnlen(address, REG_MAX_FIELD);
    memcpy(in, name, nn);
    in[nn] = '\0';
    memcpy(in + nn + 1, address, na);
    SHA256(in, nn + 1 + na, md);
    sl_hex_encode(md, REG_ID_LEN / 2, id);
    id[REG_ID_LEN] = '\0';
}

/* --- table --------------------------------------------------------------- */

int reg_table_create(uint64_t reap_after_ns, reg_table **out) {
    *out = NULL;
    reg_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return SL_ENOMEM;
    }
    edge_hmap_init(&t->ids);
    edge_hmap_init(&t->services);
    t->reap_after_ns = reap_after_ns;
    *out = t;
    return 0;
}

static void inst_free_fields(reg_inst *i) {
    free(i->version);
    free(i->address);
    for (size_t k = 0; k < i->n_tags; k++) {
        free(i->tags[k]);
    }
    i->version = i->address = NULL;
    i->n_tags = 0;
}

void reg_table_destroy(reg_table *t) {
    if (t == NULL) {
        return;
    }
    size_t b;
    edge_hnode *n = edge_hmap_first(&t->ids, &b);
    while (n != NULL) {
        edge_hnode *next = edge_hmap_next(&t->ids, n, &b);
        reg_inst *i = EDGE_CONTAINER(n, reg_inst, by_id);
        inst_free_fields(i);
        free(i);
        n = next;
    }
    n = edge_hmap_first(&t->services, &b);
    while (n != NULL) {
        edge_hnode *next = edge_hmap_next(&t->services, n, &b);
        reg_service *s = EDGE_CONTAINER(n, reg_service, by_name);
        free(s->name);
        free(s);
        n = next;
    }
    edge_hmap_free(&t->ids);
    edge_hmap_free(&t->services);
    free(t->heap);
    free(t);
}

static reg_inst *find(const reg_table *t, const char *id) {
    edge_hnode *n = edge_hmap_get(&t->ids, id, strlen(id));
    return n == NULL ? NULL : EDGE_CONTAINER(n, reg_inst, by_id);
}

static void view_of(const reg_inst *i, reg_view *v) {
    v->id = i->id;
    v->name = i->name;
    v->version = i->version;
    v->address = i->address;
    v->tags = (const char *const *)i->tags;
    v->n_tags = i->n_tags;
    v->ttl_s = i->ttl_s;
    v->registered_unix_ns = i->registered_unix_ns;
    v->last_heartbeat_unix_ns = i->last_heartbeat_unix_ns;
    v->passing = inst_passing(i);
    v->ttl_expired = i->ttl_expired;
    v->check_failing = i->check_failing;
    v->check_output = i->check_output;
}

/* Applies a change of i's state to its service's passing count: call with
 * the passing state from before the change. */
static void recount(reg_inst *i, bool was_passing) {
    bool now = inst_passing(i);
    if (was_passing && !now) {
        i->svc->passing--;
    } else if (!was_passing && now) {
        i->svc->passing++;
    }
}

static void mark_dirty(reg_table *t, reg_inst *i) {
    if (!i->dirty) {
        i->dirty = true;
        i->dirty_next = t->dirty;
        if (t->dirty != NULL) {
            t->dirty->dirty_pprev = &i->dirty_next;
        }
        i->dirty_pprev = &t->dirty;
        t->dirty = i;
    }
}

/* Copies the spec's variable fields into i (replacing old ones). */
static int inst_set_fields(reg_inst *i, const reg_spec *s) {
    char *version = strdup(s->version ? s->version : "");
    char *address = strdup(s->address);
    char *tags[REG_MAX_TAGS];
    size_t n = 0;
    bool ok = version != NULL && address != NULL;
    for (; ok && n < s->n_tags; n++) {
        tags[n] = strdup(s->tags[n]);
        ok = tags[n] != NULL;
    }
    if (!ok) {
        free(version);
        free(address);
        for (size_t k = 0; k < n; k++) {
            free(tags[k]);
        }
        return SL_ENOMEM;
    }
    inst_free_fields(i);
    i->version = version;
    i->address = address;
    memcpy(i->tags, tags, n * sizeof(*tags));
    i->n_tags = n;
    i->ttl_s = s->ttl_s;
    return 0;
}

static reg_service *service_get_or_create(reg_table *t, const char *name) {
    edge_hnode *n = edge_hmap_get(&t->services, name, strlen(name));
    if (n != NULL) {
        return EDGE_CONTAINER(n, reg_service, by_name);
    }
    reg_service *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        return NULL;
    }
    if (edge_hmap_put(&t->services, &s->by_name, s->name, strlen(s->name)) != 0) {
        free(s->name);
        free(s);
        return NULL;
    }
    return s;
}

/* Inserts a new instance or updates the existing one with the same id. */
static int upsert(reg_table *t, const reg_spec *s, uint64_t registered_ns, uint64_t heartbeat_ns,
                  uint64_t deadline_from_ns, char id_out[REG_ID_LEN + 1], bool *created) {
    const char *why;
    if (reg_spec_check(s, &why) != 0) {
        return SL_EINVAL;
    }
    char id[REG_ID_LEN + 1];
    reg_instance_id(s->name, s->address, id);
    reg_inst *i = find(t, id);
    if (i != NULL) {
        bool was = inst_passing(i);
        if (inst_set_fields(i, s) != 0) {
            return SL_ENOMEM;
        }
        i->last_heartbeat_unix_ns = heartbeat_ns;
        i->ttl_deadline_ns = deadline_from_ns + (uint64_t)s->ttl_s * 1000000000ULL;
        i->ttl_expired = false;
        recount(i, was);
        if (heap_fix(t, i) != 0) {
            return SL_ENOMEM;
        }
        mark_dirty(t, i);
        if (id_out != NULL) {
            memcpy(id_out, id, sizeof(id));
        }
        if (created != NULL) {
            *created = false;
        }
        return 0;
    }
    reg_service *svc = service_get_or_create(t, s->name);
    if (svc == NULL) {
        return SL_ENOMEM;
    }
    i = calloc(1, sizeof(*i));
    if (i == NULL || inst_set_fields(i, s) != 0) {
        free(i);
        i = NULL;
        goto fail;
    }
    memcpy(i->id, id, sizeof(id));
    i->name = svc->name;
    i->registered_unix_ns = registered_ns;
    i->last_heartbeat_unix_ns = heartbeat_ns;
    i->ttl_deadline_ns = deadline_from_ns + (uint64_t)s->ttl_s * 1000000000ULL;
    i->heap_pos = NO_HEAP;
    i->svc = svc;
    if (edge_hmap_put(&t->ids, &i->by_id, i->id, REG_ID_LEN) != 0) {
        goto fail;
    }
    if (heap_push(t, i) != 0) {
        edge_hmap_del(&t->ids, &i->by_id);
        goto fail;
    }
    i->svc_prev = svc->tail;
    if (svc->tail != NULL) {
        svc->tail->svc_next = i;
    } else {
        svc->head = i;
    }
    svc->tail = i;
    svc->instances++;
    svc->passing++;
    mark_dirty(t, i);
    if (id_out != NULL) {
        memcpy(id_out, id, sizeof(id));
    }
    if (created != NULL) {
        *created = true;
    }
    return 0;
fail:
    if (i != NULL) {
        inst_free_fields(i);
        free(i);
    }
    if (svc->instances == 0) {
        edge_hmap_del(&t->services, &svc->by_name);
        free(svc->name);
        free(svc);
    }
    return SL_ENOMEM;
}

int reg_table_register(reg_table *t, const reg_spec *s, uint64_t now_ns,
                       char id_out[REG_ID_LEN + 1], bool *created) {
    return upsert(t, s, now_ns, now_ns, now_ns, id_out, created);
}

int reg_table_restore(reg_table *t, const reg_spec *s, uint64_t registered_unix_ns,
                      uint64_t last_heartbeat_unix_ns, uint64_t now_ns) {
    return upsert(t, s, registered_unix_ns, last_heartbeat_unix_ns, now_ns, NULL, NULL);
}

int reg_table_heartbeat(reg_table *t, const char *id, uint64_t now_ns) {
    reg_inst *i = find(t, id);
    if (i == NULL) {
        return SL_ENOTFOUND;
    }
    bool was = inst_passing(i);
    i->last_heartbeat_unix_ns = now_ns;
    i->ttl_deadline_ns = now_ns + (uint64_t)i->ttl_s * 1000000000ULL;
    i->ttl_expired = false;
    recount(i, was);
    mark_dirty(t, i);
    /* The heap only shrinks after creation except here, where an expired
     * instance re-enters; the array had room for it before. */
    return heap_fix(t, i);
}

static void unlink_inst(reg_table *t, reg_inst *i) {
    reg_service *svc = i->svc;
    edge_hmap_del(&t->ids, &i->by_id);
    heap_remove(t, i);
    if (i->dirty) {
        *i->dirty_pprev = i->dirty_next;
        if (i->dirty_next != NULL) {
            i->dirty_next->dirty_pprev = i->dirty_pprev;
        }
    }
    if (i->svc_prev != NULL) {
        i->svc_prev->svc_next = i->svc_next;
    } else {
        svc->head = i->svc_next;
    }
    if (i->svc_next != NULL) {
        i->svc_next->svc_prev = i->svc_prev;
    } else {
        svc->tail = i->svc_prev;
    }
    svc->instances--;
    if (inst_passing(i)) {
        svc->passing--;
    }
    inst_free_fields(i);
    free(i);
    if (svc->instances == 0) {
        edge_hmap_del(&t->services, &svc->by_name);
        free(svc->name);
        free(svc);
    }
}

int reg_table_remove(reg_table *t, const char *id) {
    reg_inst *i = find(t, id);
    if (i == NULL) {
        return SL_ENOTFOUND;
    }
    unlink_inst(t, i);
    return 0;
}

int reg_table_set_check(reg_table *t, const char *id, bool ok, const char *output) {
    reg_inst *i = find(t, id);
    if (i == NULL) {
        return SL_ENOTFOUND;
    }
    bool was = inst_passing(i);
    i->check_failing = !ok;
    snprintf(i->check_output, sizeof(i->check_output), "%s", ok || output == NULL ? "" : output);
    recount(i, was);
    return 0;
}

size_t reg_table_expire(reg_table *t, uint64_t now_ns, reg_event_fn on_event, void *ud) {
    size_t changed = 0;
    while (t->heap_len > 0) {
        reg_inst *i = t->heap[0];
        uint64_t d = inst_deadline(t, i);
        if (d > now_ns) {
            break;
        }
        changed++;
        reg_view v;
        if (!i->ttl_expired) {
            bool was = inst_passing(i);
            i->ttl_expired = true;
            recount(i, was);
            if (inst_deadline(t, i) == UINT64_MAX) {
                heap_remove(t, i);
            } else {
                heap_down(t, 0);
            }
            if (on_event != NULL) {
                view_of(i, &v);
                on_event(ud, &v, false);
            }
        } else {
            if (on_event != NULL) {
                view_of(i, &v);
                on_event(ud, &v, true);
            }
            unlink_inst(t, i);
        }
    }
    return changed;
}

int reg_table_get(const reg_table *t, const char *id, reg_view *v) {
    reg_inst *i = find(t, id);
    if (i == NULL) {
        return SL_ENOTFOUND;
    }
    view_of(i, v);
    return 0;
}

size_t reg_table_count(const reg_table *t) {
    return t->ids.count;
}

size_t reg_table_service_count(const reg_table *t) {
    return t->services.count;
}

size_t reg_table_passing(const reg_table *t) {
    size_t n = 0, b;
    for (edge_hnode *h = edge_hmap_first(&t->services, &b); h != NULL;
         h = edge_hmap_next(&t->services, h, &b)) {
        n += EDGE_CONTAINER(h, reg_service, by_name)->passing;
    }
    return n;
}

static int cmp_service(const void *a, const void *b) {
    const reg_service *x = *(reg_service *const *)a, *y = *(reg_service *const *)b;
    return strcmp(x->name, y->name);
}

int reg_table_each_service(const reg_table *t, reg_service_fn fn, void *ud) {
    size_t n = t->services.count, k = 0, b;
    if (n == 0) {
        return 0;
    }
    reg_service **all = malloc(n * sizeof(*all));
    if (all == NULL) {
        return SL_ENOMEM;
    }
    for (edge_hnode *h = edge_hmap_first(&t->services, &b); h != NULL;
         h = edge_hmap_next(&t->services, h, &b)) {
        all[k++] = EDGE_CONTAINER(h, reg_service, by_name);
    }
    qsort(all, n, sizeof(*all), cmp_service);
    for (k = 0; k < n; k++) {
        fn(ud, all[k]->name, all[k]->instances, all[k]->passing);
    }
    free(all);
    return 0;
}

static bool has_tag(const reg_inst *i, const char *tag) {
    for (size_t k = 0; k < i->n_tags; k++) {
        if (strcmp(i->tags[k], tag) == 0) {
            return true;
        }
    }
    return false;
}

size_t reg_table_each_instance(const reg_table *t, const char *name, const reg_filter *f,
                               reg_instance_fn fn, void *ud) {
    edge_hnode *h = edge_hmap_get(&t->services, name, strlen(name));
    if (h == NULL) {
        return 0;
    }
    reg_service *svc = EDGE_CONTAINER(h, reg_service, by_name);
    size_t visited = 0;
    for (reg_inst *i = svc->head; i != NULL; i = i->svc_next) {
        if (f != NULL) {
            if (!f->include_critical && !inst_passing(i)) {
                continue;
            }
            if (!edge_version_match(f->version, i->version)) {
                continue;
            }
            bool all = true;
            for (size_t k = 0; all && k < f->n_tags; k++) {
                all = has_tag(i, f->tags[k]);
            }
            if (!all) {
                continue;
            }
        } else if (!inst_passing(i)) {
            continue;
        }
        reg_view v;
        view_of(i, &v);
        fn(ud, &v);
        visited++;
    }
    return visited;
}

void reg_table_each(const reg_table *t, reg_instance_fn fn, void *ud) {
    size_t b;
    for (edge_hnode *h = edge_hmap_first(&t->ids, &b); h != NULL;
         h = edge_hmap_next(&t->ids, h, &b)) {
        reg_view v;
        view_of(EDGE_CONTAINER(h, reg_inst, by_id), &v);
        fn(ud, &v);
    }
}

size_t reg_table_take_dirty(reg_table *t, reg_instance_fn fn, void *ud) {
    size_t n = 0;
    reg_inst *i = t->dirty;
    t->dirty = NULL;
    while (i != NULL) {
        reg_inst *next = i->dirty_next;
        i->dirty = false;
        i->dirty_next = NULL;
        i->dirty_pprev = NULL;
        reg_view v;
        view_of(i, &v);
        fn(ud, &v);
        n++;
        i = next;
    }
    return n;
}
