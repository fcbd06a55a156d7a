/*
 * The registry client (see sf_registry.h). Threads: the heartbeat thread
 * (register / heartbeat / re-register), and any caller of sf_registry_pick.
 * One mutex guards the registration id and the discovery cache; it is never
 * held across an HTTP call. The heartbeat thread sleeps on a condition
 * variable so that deregistration wakes it at once.
 */
#include "sf/sf_registry.h"

#include "rt_int.h"
#include "sf/sf_err.h"
#include "sl_buf.h"
#include "sl_err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_MAX 64
#define INSTANCES_MAX 256

typedef struct cache_entry {
    char *key; /* "name\x1fversion\x1ftag" */
    char **addrs;
    size_t n;
    uint64_t fetched_ms;
    unsigned rr;
} cache_entry;

struct sf_registry {
    sf_registry_options o;
    char *url, *service, *version, *address, *tags;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char id[128];
    bool running, stop, registered_logged, failing;
    pthread_t thread;
    cache_entry cache[CACHE_MAX];
    size_t ncache;
};

void sf_registry_options_init(sf_registry_options *o) {
    memset(o, 0, sizeof(*o));
    o->ttl_s = 30;
    o->heartbeat_ms = 10000;
    o->cache_ttl_ms = 2000;
}

static char *dup_or_empty(const char *s) {
    return strdup(s != NULL ? s : "");
}

int sf_registry_create(const sf_registry_options *o, sf_registry **out) {
    *out = NULL;
    if (o == NULL || o->url == NULL || o->client == NULL) {
        return SL_EINVAL;
    }
    sf_registry *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    r->o = *o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->url = dup_or_empty(o->url);
    r->service = dup_or_empty(o->service);
    r->version = dup_or_empty(o->version);
    r->address = dup_or_empty(o->address);
    r->tags = dup_or_empty(o->tags);
    if (r->url == NULL || r->service == NULL || r->version == NULL || r->address == NULL ||
        r->tags == NULL) {
        sf_registry_destroy(r);
        return SL_ENOMEM;
    }
    /* Drop a trailing slash so paths join cleanly. */
    size_t ul = strlen(r->url);
    if (ul > 0 && r->url[ul - 1] == '/') {
        r->url[ul - 1] = '\0';
    }
    if (r->o.ttl_s == 0) {
        r->o.ttl_s = 30;
    }
    if (r->o.heartbeat_ms == 0 || r->o.heartbeat_ms > r->o.ttl_s * 1000 / 3) {
        r->o.heartbeat_ms = r->o.ttl_s * 1000 / 3;
    }
    if (r->o.cache_ttl_ms == 0) {
        r->o.cache_ttl_ms = 2000;
    }
    *out = r;
    return 0;
}

/* A registry call: untraced (heartbeats and lookups would otherwise pepper
 * every trace and every few seconds start new ones). */
static int call(sf_registry *r, const char *method, const char *path, const json_t *body,
                long *status, json_t **json) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", r->url, path);
    sf_call c;
    sf_call_init(&c);
    c.method = method;
    c.upstream = "registry";
    c.url = url;
    c.scope = "registry";
    c.untraced = true;
    return sf_client_json(r->o.client, &c, body, status, json);
}

/* A call on this instance's registration: /v1/registry/instances/{id}{suffix}
 * (no answer body wanted). */
static int instance_call(sf_registry *r, const char *method, const char *id, const char *suffix,
                         long *status) {
    char path[256];
    snprintf(path, sizeof path, "/v1/registry/instances/%s%s", id, suffix);
    json_t *ans = NULL;
    int rc = call(r, method, path, NULL, status, &ans);
    json_decref(ans);
    return rc;
}

static int register_once(sf_registry *r) {
    json_t *tags = json_array();
    if (tags == NULL) {
        return SL_ENOMEM;
    }
    for (const char *p = r->tags; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            json_array_append_new(tags, json_stringn(p, n));
        }
        p += n + (p[n] == ',' ? 1 : 0);
    }
    json_t *body = json_pack("{s:s,s:s,s:s,s:o,s:i}", "name", r->service, "version", r->version,
                             "address", r->address, "tags", tags, "ttl_s", (int)r->o.ttl_s);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    long status = 0;
    json_t *ans = NULL;
    int rc = call(r, "POST", "/v1/registry/instances", body, &status, &ans);
    json_decref(body);
    const char *id = json_string_value(json_object_get(ans, "id"));
    if (rc == 0 && (status == 200 || status == 201) && id != NULL && id[0] != '\0') {
        pthread_mutex_lock(&r->mu);
        snprintf(r->id, sizeof r->id, "%s", id);
        pthread_mutex_unlock(&r->mu);
        sf_log(SL_SEVERITY_INFO, "registered with %s as %s", r->url, id);
    } else if (rc == 0) {
        sf_log(SL_SEVERITY_WARN, "registry %s answered %ld to the registration", r->url, status);
        rc = SF_EUPSTREAM;
    }
    json_decref(ans);
    return rc;
}

/* One heartbeat (or a registration when there is no id yet). */
static int beat(sf_registry *r) {
    char id[128];
    pthread_mutex_lock(&r->mu);
    snprintf(id, sizeof id, "%s", r->id);
    pthread_mutex_unlock(&r->mu);
    if (id[0] == '\0') {
        return register_once(r);
    }
    long status = 0;
    int rc = instance_call(r, "PUT", id, "/heartbeat", &status);
    if (rc == 0 && status == 404) {
        sf_log(SL_SEVERITY_WARN, "the registry forgot instance %s: registering again", id);
        pthread_mutex_lock(&r->mu);
        r->id[0] = '\0';
        pthread_mutex_unlock(&r->mu);
        return register_once(r);
    }
    if (rc == 0 && status >= 300) {
        rc = SF_EUPSTREAM;
    }
    return rc;
}

static void *heartbeat_main(void *arg) {
    sf_registry *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)r->o.heartbeat_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0) {
        }
        if (r->stop) {
            break;
        }
        pthread_mutex_unlock(&r->mu);
        int rc = beat(r);
        pthread_mutex_lock(&r->mu);
        if (rc != 0 && !r->failing) {
            sf_log(SL_SEVERITY_WARN, "registry heartbeat failed: %s (retrying)", sf_strerror(rc));
        } else if (rc == 0 && r->failing) {
            sf_log(SL_SEVERITY_INFO, "registry heartbeats succeed again");
        }
        r->failing = rc != 0;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int sf_registry_set_address(sf_registry *r, const char *address) {
    char *a = strdup(address);
    if (a == NULL) {
        return SL_ENOMEM;
    }
    free(r->address);
    r->address = a;
    return 0;
}

int sf_registry_register(sf_registry *r) {
    int rc = register_once(r);
    if (rc != 0) {
        sf_log(SL_SEVERITY_WARN, "cannot register with %s: %s (the heartbeat thread retries)",
               r->url, sf_strerror(rc));
    }
    pthread_mutex_lock(&r->mu);
    r->failing = rc != 0;
    if (!r->running) {
        r->stop = false;
        if (pthread_create(&r->thread, NULL, heartbeat_main, r) == 0) {
            r->running = true;
        } else {
            rc = SL_ENOMEM;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int sf_registry_deregister(sf_registry *r) {
    pthread_mutex_lock(&r->mu);
    bool running = r->running;
    r->stop = true;
    r->running = false;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (running) {
        pthread_join(r->thread, NULL);
    }
    char id[128];
    pthread_mutex_lock(&r->mu);
    snprintf(id, sizeof id, "%s", r->id);
    r->id[0] = '\0';
    pthread_mutex_unlock(&r->mu);
    if (id[0] == '\0') {
        return 0;
    }
    long status = 0;
    int rc = instance_call(r, "DELETE", id, "", &status);
    if (rc == 0 && status != 204 && status != 200 && status != 404) {
        rc = SF_EUPSTREAM;
    }
    if (rc == 0) {
        sf_log(SL_SEVERITY_INFO, "deregistered %s", id);
    } else {
        sf_log(SL_SEVERITY_WARN, "cannot deregister %s: %s", id, sf_strerror(rc));
    }
    return rc;
}

void sf_registry_id(sf_registry *r, char *out, size_t cap) {
    pthread_mutex_lock(&r->mu);
    snprintf(out, cap, "%s", r->id);
    pthread_mutex_unlock(&r->mu);
}

/* --- discovery ----------------------------------------------------------------- */

static void entry_clear(cache_entry *e) {
    for (size_t i = 0; i < e->n; i++) {
        free(e->addrs[i]);
    }
    free(e->addrs);
    e->addrs = NULL;
    e->n = 0;
}

/* Appends s percent-encoded (everything but unreserved characters). */
static void url_escape(sl_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            sl_buf_putc(b, ch);
        } else {
            sl_buf_putc(b, '%');
            sl_buf_putc(b, (uint8_t)hex[ch >> 4]);
            sl_buf_putc(b, (uint8_t)hex[ch & 15]);
        }
    }
}

/* Fetches the passing instances; *addrs (n entries) is owned by the caller. */
static int fetch(sf_registry *r, const char *service, const char *version, const char *tag,
                 char ***addrs, size_t *n) {
    *addrs = NULL;
    *n = 0;
    sl_buf path;
    sl_buf_init(&path, 2048);
    sl_buf_append_str(&path, "/v1/registry/services/");
    url_escape(&path, service);
    if (version != NULL) {
        sl_buf_append_str(&path, "?version=");
        url_escape(&path, version);
    }
    if (tag != NULL) {
        sl_buf_append_str(&path, version != NULL ? "&tag=" : "?tag=");
        url_escape(&path, tag);
    }
    int rc = sl_buf_putc(&path, '\0');
    long status = 0;
    json_t *ans = NULL;
    if (rc == 0) {
        rc = call(r, "GET", (const char *)path.data, NULL, &status, &ans);
    }
    sl_buf_free(&path);
    if (rc == 0 && status == 404) {
        rc = SF_ENOINSTANCE; /* the registry knows no such service */
    } else if (rc == 0 && (status != 200 || !json_is_array(json_object_get(ans, "instances")))) {
        rc = SF_EUPSTREAM;
    }
    if (rc != 0) {
        json_decref(ans);
        return rc;
    }
    const json_t *list = json_object_get(ans, "instances");
    size_t cap = json_array_size(list) < INSTANCES_MAX ? json_array_size(list) : INSTANCES_MAX;
    char **out = calloc(cap > 0 ? cap : 1, sizeof(char *));
    size_t k = 0;
    size_t i;
    const json_t *inst;
    json_array_foreach(list, i, inst) {
        const char *addr = json_string_value(json_object_get(inst, "address"));
        const char *st = json_string_value(json_object_get(inst, "status"));
        if (out == NULL || k >= cap || addr == NULL || (st != NULL && strcmp(st, "passing") != 0)) {
            continue;
        }
        if ((out[k] = strdup(addr)) != NULL) {
            k++;
        }
    }
    json_decref(ans);
    if (out == NULL) {
        return SL_ENOMEM;
    }
    *addrs = out;
    *n = k;
    return 0;
}

static cache_entry *find_entry(sf_registry *r, const char *key) {
    for (size_t i = 0; i < r->ncache; i++) {
        if (strcmp(r->cache[i].key, key) == 0) {
            return &r->cache[i];
        }
    }
    return NULL;
}

int sf_registry_pick(sf_registry *r, const char *service, const char *version, const char *tag,
                     char *address, size_t cap) {
    char key[512];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", service, version != NULL ? version : "",
             tag != NULL ? tag : "");
    uint64_t now = rt_mono_ms();
    pthread_mutex_lock(&r->mu);
    cache_entry *e = find_entry(r, key);
    if (e != NULL && e->n > 0 && now - e->fetched_ms < r->o.cache_ttl_ms) {
        snprintf(address, cap, "%s", e->addrs[e->rr++ % e->n]);
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    pthread_mutex_unlock(&r->mu);

    char **addrs;
    size_t n;
    int frc = fetch(r, service, version, tag, &addrs, &n);
    int rc = SF_ENOINSTANCE;
    pthread_mutex_lock(&r->mu);
    e = find_entry(r, key);
    if (frc == 0) {
        if (e == NULL) {
            if (r->ncache == CACHE_MAX) {
                /* Full: the oldest list goes. */
                size_t old = 0;
                for (size_t i = 1; i < r->ncache; i++) {
                    if (r->cache[i].fetched_ms < r->cache[old].fetched_ms) {
                        old = i;
                    }
                }
                entry_clear(&r->cache[old]);
                free(r->cache[old].key);
                r->cache[old] = r->cache[--r->ncache];
            }
            e = &r->cache[r->ncache];
            memset(e, 0, sizeof(*e));
            e->key = strdup(key);
            if (e->key != NULL) {
                r->ncache++;
            } else {
                e = NULL;
            }
        }
        if (e != NULL) {
            entry_clear(e);
            e->addrs = addrs;
            e->n = n;
            e->fetched_ms = now;
            addrs = NULL;
        }
    } else if (e != NULL && frc != SF_ENOINSTANCE) {
        /* Registry unreachable: keep serving the stale list. */
        e->fetched_ms = now - r->o.cache_ttl_ms + 500;
    } else if (e != NULL) {
        entry_clear(e);
    }
    if (e != NULL && e->n > 0) {
        snprintf(address, cap, "%s", e->addrs[e->rr++ % e->n]);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; addrs != NULL && i < n; i++) {
        free(addrs[i]);
    }
    free(addrs);
    return rc;
}

void sf_registry_invalidate(sf_registry *r, const char *service) {
    size_t n = strlen(service);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ncache; i++) {
        if (strncmp(r->cache[i].key, service, n) == 0 && r->cache[i].key[n] == '\x1f') {
            r->cache[i].fetched_ms = 0;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

void sf_registry_destroy(sf_registry *r) {
    if (r == NULL) {
        return;
    }
    if (r->running) {
        sf_registry_deregister(r);
    }
    for (size_t i = 0; i < r->ncache; i++) {
        entry_clear(&r->cache[i]);
        free(r->cache[i].key);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->url);
    free(r->service);
    free(r->version);
    free(r->address);
    free(r->tags);
    free(r);
}
