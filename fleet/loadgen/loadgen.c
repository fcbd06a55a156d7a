/*
 * fleet-loadgen: drives realistic user journeys through the gateway at a set
 * request rate and injects faults on a schedule, so that Sightline's traces,
 * RED metrics, alerts and health view have something real to show.
 *
 * Journeys (weights in parentheses): sign-up (10), login (15), profile read
 * (35: v2, one in ten through the deprecated v1), profile update (15), token
 * refresh (5), tenant sign-up (5), analytics read (15), and MFA (3: a new
 * user enrols TOTP, confirms it with the current code and logs in with the
 * next one; such users are not reused, since each code is good once).
 * --journeys restricts the mix. Users signed up by the run are remembered
 * (at most --users) and reused by the other journeys.
 * Each request is a CLIENT span (when OTEL_EXPORTER_OTLP_ENDPOINT is set)
 * whose traceparent the gateway continues.
 *
 * Faults (--chaos, a comma-separated list of AT:KIND:SERVICE:ARG:FOR, seconds
 * into each --chaos-period): latency (ARG ms) and errors (ARG ratio) are set
 * on every instance of SERVICE through POST /admin/faults (a service token
 * with scope admin, from --service-key-file) and cleared FOR seconds later;
 * kill sends SIGKILL to the pid in <--pid-dir>/SERVICE.pid after creating
 * SERVICE.hold beside it, and removes the hold file FOR seconds later: the
 * run script's supervisor restarts a dead service once its hold file is gone.
 *
 * At the end (--duration, or SIGINT/SIGTERM) it prints a summary: requests,
 * rate, status counts, transport errors, latency percentiles per journey and
 * overall; every --report-s a one-line progress report goes to stderr.
 *
 * Threads: --concurrency workers share a pacer (an atomic next-slot time) and
 * the user pool (a mutex); the chaos thread runs the schedule.
 */
#include <fc/fc_totp.h>
#include <sf/sf_jwt.h>
#include <sf/sf_telemetry.h>

#include "sl_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { J_SIGNUP, J_LOGIN, J_READ, J_UPDATE, J_REFRESH, J_TENANT, J_ANALYTICS, J_MFA, J_COUNT };
static const char *const JOURNEY[J_COUNT] = {"signup",         "login",   "profile_read",
                                             "profile_update", "refresh", "tenant_signup",
                                             "analytics",      "mfa"};
static int weight[J_COUNT] = {10, 15, 35, 15, 5, 5, 15, 3}; /* --journeys zeroes the others */

#define MAX_LAT 400000 /* latency samples kept per journey */
#define MAX_CHAOS 32

typedef struct user {
    char id[72];
    char email[96];
    char tenant[72];
    char token[2048];
    char refresh[128];
} user;

typedef struct chaos {
    unsigned at_s, for_s;
    char kind[16];
    char service[64];
    double arg;
} chaos;

typedef struct stats {
    pthread_mutex_t mu;
    uint64_t requests, transport_errors;
    uint64_t status[600];
    uint32_t *lat_us[J_COUNT];
    size_t n_lat[J_COUNT];
    uint64_t count[J_COUNT];
} stats;

static struct {
    const char *gateway;
    const char *registry;
    const char *pid_dir;
    double rate;
    unsigned duration_s, concurrency, max_users, report_s, chaos_period_s;
    chaos chaos[MAX_CHAOS];
    size_t n_chaos;
    sf_jwt_key *service_key;
    sf_telemetry *tel;
} cfg = {"http://127.0.0.1:8080", NULL, NULL, 20, 0, 4, 2000, 10, 300, {{0}}, 0, NULL, NULL};

static atomic_bool stopping;
static atomic_uint_fast64_t next_slot_ns;
static stats st;
static pthread_mutex_t users_mu = PTHREAD_MUTEX_INITIALIZER;
static user *users;
static size_t n_users;
static const char *const TENANTS[] = {"acme", "globex", "initech", "umbrella"};

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stopping, true);
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --- HTTP --------------------------------------------------------------------- */

typedef struct reply {
    long status;
    char body[16384];
    size_t len;
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    reply *r = ud;
    size_t take = size * n;
    size_t room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take < room ? take : room);
    r->len += take < room ? take : room;
    r->body[r->len] = '\0';
    return size * n;
}

/* One request through the gateway (or to an absolute URL), as a CLIENT span.
 * Returns the status (0 on a transport error) and records it for journey j
 * (j < 0: not counted, e.g. admin calls). */
static long request(CURL *e, int j, const char *method, const char *url, const char *token,
                    const char *auth_header, const json_t *body, reply *out) {
    char full[1024];
    if (strncmp(url, "http", 4) == 0) {
        snprintf(full, sizeof(full), "%s", url);
    } else {
        snprintf(full, sizeof(full), "%s%s", cfg.gateway, url);
    }
    char *payload = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *h = NULL;
    char line[2200];
    sl_span *span = NULL;
    if (cfg.tel != NULL) {
        sl_span_options so;
        sl_span_options_init(&so);
        so.kind = SL_SPAN_KIND_CLIENT;
        so.root = true;
        char name[64];
        snprintf(name, sizeof(name), "%s %s", method, j >= 0 ? JOURNEY[j] : "admin");
        sl_span_start(sf_telemetry_tracer(cfg.tel), name, &so, &span);
        sl_span_set_str(span, "http.request.method", method);
        sl_span_set_str(span, "url.full", full);
        if (j >= 0) {
            sl_span_set_str(span, "loadgen.journey", JOURNEY[j]);
        }
        sl_span_context ctx;
        char tp[SL_TRACEPARENT_LEN + 1];
        if (sl_span_get_context(span, &ctx) == 0 && sl_traceparent_format(&ctx, tp) == 0) {
            snprintf(line, sizeof(line), "traceparent: %s", tp);
            h = curl_slist_append(h, line);
        }
    }
    if (token != NULL) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, line);
    } else if (auth_header != NULL) {
        h = curl_slist_append(h, auth_header);
    }
    if (payload != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
    }
    /* One API key per worker handle keeps the per-key limit per client. */
    snprintf(line, sizeof(line), "X-API-Key: loadgen-%p", (void *)e);
    h = curl_slist_append(h, line);
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, payload != NULL ? (long)strlen(payload) : 0L);
    if (payload == NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, strcmp(method, "GET") == 0 ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    out->len = 0;
    out->body[0] = '\0';
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    uint64_t t0 = sl_mono_nano();
    CURLcode rc = curl_easy_perform(e);
    uint64_t us = (sl_mono_nano() - t0) / 1000;
    out->status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    }
    curl_slist_free_all(h);
    free(payload);
    if (span != NULL) {
        sl_span_set_int(span, "http.response.status_code", out->status);
        if (out->status == 0 || out->status >= 500) {
            sl_span_set_status(span, SL_STATUS_ERROR,
                               rc != CURLE_OK ? curl_easy_strerror(rc) : "server error");
        }
        sl_span_end(span, 0);
    }
    if (j >= 0) {
        pthread_mutex_lock(&st.mu);
        st.requests++;
        st.count[j]++;
        if (out->status == 0) {
            st.transport_errors++;
        } else if (out->status < 600) {
            st.status[out->status]++;
        }
        if (st.n_lat[j] < MAX_LAT && st.lat_us[j] != NULL) {
            st.lat_us[j][st.n_lat[j]++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        }
        pthread_mutex_unlock(&st.mu);
    }
    return out->status;
}

/* --- journeys ------------------------------------------------------------------- */

static bool random_user(user *out, unsigned *seed) {
    pthread_mutex_lock(&users_mu);
    bool ok = n_users > 0;
    if (ok) {
        *out = users[(size_t)rand_r(seed) % n_users];
    }
    pthread_mutex_unlock(&users_mu);
    return ok;
}

static void remember(const user *u) {
    pthread_mutex_lock(&users_mu);
    if (n_users < cfg.max_users) {
        users[n_users++] = *u;
    } else {
        users[(size_t)rand() % n_users] = *u;
    }
    pthread_mutex_unlock(&users_mu);
}

static void update_token(const user *u) {
    pthread_mutex_lock(&users_mu);
    for (size_t i = 0; i < n_users; i++) {
        if (strcmp(users[i].id, u->id) == 0) {
            snprintf(users[i].token, sizeof(users[i].token), "%s", u->token);
            snprintf(users[i].refresh, sizeof(users[i].refresh), "%s", u->refresh);
        }
    }
    pthread_mutex_unlock(&users_mu);
}

static bool take_tokens(const reply *r, user *u) {
    json_t *j = json_loads(r->body, 0, NULL);
    const char *at = json_string_value(json_object_get(j, "access_token"));
    const char *rt = json_string_value(json_object_get(j, "refresh_token"));
    const char *id = json_string_value(json_object_get(j, "user_id"));
    const char *tenant = json_string_value(json_object_get(j, "tenant"));
    bool ok = at != NULL;
    if (ok) {
        snprintf(u->token, sizeof(u->token), "%s", at);
        snprintf(u->refresh, sizeof(u->refresh), "%s", rt ? rt : "");
        if (id != NULL) {
            snprintf(u->id, sizeof(u->id), "%s", id);
        }
        if (tenant != NULL) {
            snprintf(u->tenant, sizeof(u->tenant), "%s", tenant);
        }
    }
    json_decref(j);
    return ok;
}

#define PASSWORD "correct-horse-battery"

static atomic_uint_fast64_t serial;

/* Signs up a fresh user into *u (tokens included). */
static bool sign_up(CURL *e, int j, unsigned *seed, user *u) {
    reply r;
    memset(u, 0, sizeof(*u));
    snprintf(u->email, sizeof(u->email), "user%lu-%u@example.com",
             (unsigned long)atomic_fetch_add(&serial, 1), (unsigned)rand_r(seed));
    const char *tenant = TENANTS[(size_t)rand_r(seed) % 4];
    json_t *b = json_pack("{ss ss ss ss}", "email", u->email, "password", PASSWORD, "name",
                          "Load Tester", "tenant", tenant);
    bool ok =
        request(e, j, "POST", "/v1/auth/signup", NULL, NULL, b, &r) == 201 && take_tokens(&r, u);
    json_decref(b);
    return ok;
}

/* The TOTP code of the base32 secret at unix_s, as an authenticator app
 * shows it. */
static bool totp_code(const char *secret, int64_t unix_s, char code[8]) {
    uint8_t key[64];
    uint32_t v = 0;
    int n = fc_base32_decode(secret, key, sizeof(key));
    if (n <= 0 || fc_totp_at(key, (size_t)n, unix_s, FC_TOTP_DIGITS, &v) != 0) {
        return false;
    }
    snprintf(code, 8, "%06u", (unsigned)v);
    return true;
}

/* Sign-up, TOTP enrolment, its confirmation with the current code, then a
 * login with password and the next step's code (the current one is spent:
 * auth refuses a step at or before the last one used). */
static void mfa_journey(CURL *e, int j, unsigned *seed) {
    reply r;
    user u;
    char secret[128], code[8];
    if (!sign_up(e, j, seed, &u) ||
        request(e, j, "POST", "/v1/auth/totp/enroll", u.token, NULL, NULL, &r) != 200) {
        return;
    }
    json_t *en = json_loads(r.body, 0, NULL);
    const char *sv = json_string_value(json_object_get(en, "secret"));
    snprintf(secret, sizeof(secret), "%s", sv ? sv : "");
    json_decref(en);
    int64_t now = (int64_t)time(NULL);
    if (!totp_code(secret, now, code)) {
        fprintf(stderr, "loadgen: mfa: no usable secret in the enrolment answer\n");
        return;
    }
    json_t *b = json_pack("{ss}", "code", code);
    long st_verify = request(e, j, "POST", "/v1/auth/totp/verify", u.token, NULL, b, &r);
    json_decref(b);
    if (st_verify != 200 || !totp_code(secret, now + FC_TOTP_STEP_S, code)) {
        return;
    }
    b = json_pack("{ss ss ss}", "email", u.email, "password", PASSWORD, "totp_code", code);
    request(e, j, "POST", "/v1/auth/login", NULL, NULL, b, &r);
    json_decref(b);
}

static void journey(CURL *e, int j, unsigned *seed) {
    reply r;
    user u;
    if (j == J_MFA) {
        mfa_journey(e, j, seed);
        return;
    }
    if (j != J_SIGNUP && j != J_TENANT && !random_user(&u, seed)) {
        j = J_SIGNUP; /* nobody to act as yet */
    }
    switch (j) {
    case J_SIGNUP:
        if (sign_up(e, j, seed, &u)) {
            remember(&u);
        }
        break;
    case J_LOGIN: {
        json_t *b = json_pack("{ss ss}", "email", u.email, "password", PASSWORD);
        if (request(e, j, "POST", "/v1/auth/login", NULL, NULL, b, &r) == 200 &&
            take_tokens(&r, &u)) {
            update_token(&u);
        }
        json_decref(b);
        break;
    }
    case J_READ: {
        char path[160];
        snprintf(path, sizeof(path), "/%s/users/%s", rand_r(seed) % 10 == 0 ? "v1" : "v2", u.id);
        request(e, j, "GET", path, u.token, NULL, NULL, &r);
        break;
    }
    case J_UPDATE: {
        char path[160];
        bool v1 = rand_r(seed) % 10 == 0;
        snprintf(path, sizeof(path), "/%s/users/%s", v1 ? "v1" : "v2", u.id);
        char name[64];
        snprintf(name, sizeof(name), "Tester %u", (unsigned)rand_r(seed) % 1000);
        json_t *b = json_pack("{ss}", v1 ? "name" : "display_name", name);
        request(e, j, v1 ? "PUT" : "PATCH", path, u.token, NULL, b, &r);
        json_decref(b);
        break;
    }
    case J_REFRESH: {
        json_t *b = json_pack("{ss}", "refresh_token", u.refresh[0] ? u.refresh : "none");
        if (request(e, j, "POST", "/v1/auth/refresh", NULL, NULL, b, &r) == 200 &&
            take_tokens(&r, &u)) {
            update_token(&u);
        }
        json_decref(b);
        break;
    }
    case J_TENANT: {
        char name[64], email[96];
        unsigned k = (unsigned)rand_r(seed);
        snprintf(name, sizeof(name), "Company %u", k % 100000);
        snprintf(email, sizeof(email), "admin%u-%lu@example.com", k,
                 (unsigned long)atomic_fetch_add(&serial, 1));
        json_t *b = json_pack("{ss ss ss ss}", "name", name, "plan", "free", "admin_email", email,
                              "admin_name", "Admin");
        request(e, j, "POST", "/v1/tenants", NULL, NULL, b, &r);
        json_decref(b);
        break;
    }
    case J_ANALYTICS: {
        char path[160];
        snprintf(path, sizeof(path), "/v1/analytics/tenants/%s", u.tenant);
        request(e, j, "GET", path, u.token, NULL, NULL, &r);
        break;
    }
    default:
        break;
    }
}

static int pick_journey(unsigned *seed) {
    int total = 0;
    for (int j = 0; j < J_COUNT; j++) {
        total += weight[j];
    }
    int x = rand_r(seed) % total;
    for (int j = 0; j < J_COUNT; j++) {
        if (x < weight[j]) {
            return j;
        }
        x -= weight[j];
    }
    return J_READ;
}

/* Waits for this worker's next slot of the shared request rate. Returns
 * false when stopping. */
static bool pace(void) {
    uint64_t interval = (uint64_t)(1e9 / cfg.rate);
    uint64_t now = sl_mono_nano();
    uint64_t slot = atomic_fetch_add(&next_slot_ns, interval);
    if (slot + 1000000000ULL < now) {
        /* Far behind (a slow phase): do not burst to catch up. */
        atomic_store(&next_slot_ns, now + interval);
        slot = now;
    }
    while (!atomic_load(&stopping)) {
        now = sl_mono_nano();
        if (now >= slot) {
            return true;
        }
        uint64_t wait = slot - now;
        struct timespec ts = {(time_t)(wait / 1000000000ULL), (long)(wait % 1000000000ULL)};
        if (wait > 100000000ULL) {
            ts.tv_sec = 0;
            ts.tv_nsec = 100000000L;
        }
        nanosleep(&ts, NULL);
    }
    return false;
}

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u ^ (unsigned)time(NULL);
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    while (pace()) {
        journey(e, pick_journey(&seed), &seed);
    }
    curl_easy_cleanup(e);
    return NULL;
}

/* --- chaos -------------------------------------------------------------------- */

static void service_auth(const char *audience, const char *scope, char *line, size_t cap) {
    line[0] = '\0';
    char *tok = NULL;
    if (cfg.service_key != NULL &&
        sf_service_token(cfg.service_key, "loadgen", audience, scope, 60, &tok) == 0) {
        snprintf(line, cap, "Authorization: Bearer %s", tok);
        free(tok);
    }
}

/* Sets (or clears, when clear) faults on every instance of service. */
static void set_faults(CURL *e, const chaos *c, bool clear) {
    if (cfg.registry == NULL) {
        fprintf(stderr, "loadgen: chaos %s needs --registry\n", c->kind);
        return;
    }
    char url[512], auth[1024];
    reply r;
    snprintf(url, sizeof(url), "%s/v1/registry/services/%s", cfg.registry, c->service);
    service_auth("registry", "registry", auth, sizeof(auth));
    if (request(e, -1, "GET", url, NULL, auth[0] ? auth : NULL, NULL, &r) != 200) {
        fprintf(stderr, "loadgen: cannot list %s instances (HTTP %ld)\n", c->service, r.status);
        return;
    }
    json_t *doc = json_loads(r.body, 0, NULL);
    size_t i;
    json_t *inst;
    service_auth(c->service, "admin", auth, sizeof(auth));
    json_array_foreach(json_object_get(doc, "instances"), i, inst) {
        const char *addr = json_string_value(json_object_get(inst, "address"));
        if (addr == NULL) {
            continue;
        }
        snprintf(url, sizeof(url), "%s/admin/faults", addr);
        json_t *b = NULL;
        if (!clear) {
            b = strcmp(c->kind, "latency") == 0
                    ? json_pack("{sI}", "latency_ms", (json_int_t)c->arg)
                    : json_pack("{sf}", "error_ratio", c->arg);
        }
        long s = request(e, -1, clear ? "DELETE" : "POST", url, NULL, auth[0] ? auth : NULL, b, &r);
        fprintf(stderr, "loadgen: chaos: %s %s fault on %s %s: HTTP %ld\n",
                clear ? "cleared" : "set", c->kind, c->service, addr, s);
        json_decref(b);
    }
    json_decref(doc);
}

static void hold_path(const chaos *c, const char *ext, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.%s", cfg.pid_dir, c->service, ext);
}

static void kill_service(const chaos *c, bool restore) {
    char path[600];
    if (cfg.pid_dir == NULL) {
        fprintf(stderr, "loadgen: chaos kill needs --pid-dir\n");
        return;
    }
    hold_path(c, "hold", path, sizeof(path));
    if (restore) {
        unlink(path);
        fprintf(stderr, "loadgen: chaos: %s may restart\n", c->service);
        return;
    }
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fclose(f);
    }
    char pidp[600];
    hold_path(c, "pid", pidp, sizeof(pidp));
    f = fopen(pidp, "r");
    long pid = 0;
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "loadgen: chaos: no pid for %s in %s\n", c->service, pidp);
    } else if (kill((pid_t)pid, SIGKILL) == 0) {
        fprintf(stderr, "loadgen: chaos: killed %s (pid %ld) for %u s\n", c->service, pid,
                c->for_s);
    } else {
        fprintf(stderr, "loadgen: chaos: kill %s (pid %ld): %s\n", c->service, pid,
                strerror(errno));
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void apply(CURL *e, const chaos *c, bool end) {
    if (strcmp(c->kind, "kill") == 0) {
        kill_service(c, end);
    } else {
        set_faults(e, c, end);
    }
}

static void *chaos_main(void *arg) {
    (void)arg;
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bool active[MAX_CHAOS] = {false};
    uint64_t t0 = sl_mono_nano();
    while (!atomic_load(&stopping)) {
        unsigned t = (unsigned)((sl_mono_nano() - t0) / 1000000000ULL) % cfg.chaos_period_s;
        for (size_t k = 0; k < cfg.n_chaos; k++) {
            const chaos *c = &cfg.chaos[k];
            bool on = t >= c->at_s && t < c->at_s + c->for_s;
            if (on != active[k]) {
                apply(e, c, !on);
                active[k] = on;
            }
        }
        sleep_ms(250);
    }
    for (size_t k = 0; k < cfg.n_chaos; k++) {
        if (active[k]) {
            apply(e, &cfg.chaos[k], true); /* leave nothing broken behind */
        }
    }
    curl_easy_cleanup(e);
    return NULL;
}

static int parse_chaos(const char *spec) {
    char *copy = strdup(spec);
    int rc = copy != NULL ? 0 : -1;
    for (char *tok = copy, *next; tok != NULL && rc == 0; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL) {
            *next++ = '\0';
        }
        chaos c = {0};
        char kind[16] = "", svc[64] = "";
        int n = 0;
        if (cfg.n_chaos == MAX_CHAOS ||
            sscanf(tok, "%u:%15[a-z]:%63[A-Za-z0-9_.-]:%lf:%u%n", &c.at_s, kind, svc, &c.arg,
                   &c.for_s, &n) != 5 ||
            tok[n] != '\0' ||
            (strcmp(kind, "latency") != 0 && strcmp(kind, "errors") != 0 &&
             strcmp(kind, "kill") != 0) ||
            c.for_s == 0 || (strcmp(kind, "errors") == 0 && (c.arg < 0 || c.arg > 1))) {
            fprintf(stderr,
                    "loadgen: bad --chaos entry '%s' (AT:latency|errors|kill:SERVICE:ARG:FOR)\n",
                    tok);
            rc = -1;
            break;
        }
        memcpy(c.kind, kind, sizeof(c.kind));
        memcpy(c.service, svc, sizeof(c.service));
        cfg.chaos[cfg.n_chaos++] = c;
    }
    free(copy);
    return rc;
}

/* Keeps the weights of the named journeys and zeroes the others. */
static int parse_journeys(const char *list) {
    bool keep[J_COUNT] = {false};
    bool any = false;
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        int j = 0;
        while (j < J_COUNT && (strlen(JOURNEY[j]) != n || strncmp(JOURNEY[j], p, n) != 0)) {
            j++;
        }
        if (j == J_COUNT) {
            fprintf(stderr, "loadgen: unknown journey '%.*s'\n", (int)n, p);
            return -1;
        }
        keep[j] = any = true;
        p += n + (p[n] == ',');
    }
    for (int j = 0; j < J_COUNT; j++) {
        weight[j] = keep[j] ? weight[j] : 0;
    }
    return any ? 0 : -1;
}

/* --- summary ------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p) {
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

static void report(FILE *out, double secs, bool final) {
    pthread_mutex_lock(&st.mu);
    uint64_t ok = 0, c4 = 0, c5 = 0;
    for (int s = 200; s < 600; s++) {
        ok += s < 400 ? st.status[s] : 0;
        c4 += s >= 400 && s < 500 ? st.status[s] : 0;
        c5 += s >= 500 ? st.status[s] : 0;
    }
    if (!final) {
        fprintf(out,
                "loadgen: %.0fs %lu requests (%.1f/s) 2xx/3xx %lu 4xx %lu 5xx %lu errors %lu\n",
                secs, (unsigned long)st.requests, secs > 0 ? (double)st.requests / secs : 0,
                (unsigned long)ok, (unsigned long)c4, (unsigned long)c5,
                (unsigned long)st.transport_errors);
        pthread_mutex_unlock(&st.mu);
        return;
    }
    fprintf(out, "\n== fleet-loadgen summary ==\n");
    fprintf(out, "duration %.1f s, requests %lu, %.1f requests/s, transport errors %lu\n", secs,
            (unsigned long)st.requests, secs > 0 ? (double)st.requests / secs : 0,
            (unsigned long)st.transport_errors);
    fprintf(out, "status:");
    for (int s = 100; s < 600; s++) {
        if (st.status[s] > 0) {
            fprintf(out, " %d=%lu", s, (unsigned long)st.status[s]);
        }
    }
    fprintf(out, "\n%-16s %8s %9s %9s %9s %9s\n", "journey", "requests", "p50 ms", "p95 ms",
            "p99 ms", "max ms");
    size_t total = 0;
    for (int j = 0; j < J_COUNT; j++) {
        total += st.n_lat[j];
    }
    uint32_t *all = malloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (int j = 0; j < J_COUNT; j++) {
        qsort(st.lat_us[j], st.n_lat[j], sizeof(uint32_t), cmp_u32);
        size_t n = st.n_lat[j];
        fprintf(out, "%-16s %8lu %9.2f %9.2f %9.2f %9.2f\n", JOURNEY[j], (unsigned long)st.count[j],
                pct(st.lat_us[j], n, .5), pct(st.lat_us[j], n, .95), pct(st.lat_us[j], n, .99),
                n ? st.lat_us[j][n - 1] / 1000.0 : 0);
        if (all != NULL) {
            memcpy(all + k, st.lat_us[j], n * sizeof(*all));
            k += n;
        }
    }
    if (all != NULL) {
        qsort(all, k, sizeof(*all), cmp_u32);
        fprintf(out, "%-16s %8lu %9.2f %9.2f %9.2f %9.2f\n", "all", (unsigned long)st.requests,
                pct(all, k, .5), pct(all, k, .95), pct(all, k, .99), k ? all[k - 1] / 1000.0 : 0);
        free(all);
    }
    pthread_mutex_unlock(&st.mu);
}

/* --- main ----------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(
        f, "usage: fleet-loadgen [options]\n"
           "  --gateway URL           the gateway (http://127.0.0.1:8080)\n"
           "  --rate N                requests per second, all workers together (20)\n"
           "  --duration S            stop after S seconds (0 = until SIGINT/SIGTERM)\n"
           "  --concurrency N         worker threads (4)\n"
           "  --users N               signed-up users remembered for reuse (2000)\n"
           "  --journeys LIST         only these journeys (comma-separated: signup, login,\n"
           "                          profile_read, profile_update, refresh, tenant_signup,\n"
           "                          analytics, mfa); default all, weighted\n"
           "  --report-s S            progress line every S seconds on stderr (10; 0 = off)\n"
           "  --chaos SPEC[,SPEC]     AT:KIND:SERVICE:ARG:FOR, KIND latency (ARG ms), errors\n"
           "                          (ARG ratio) or kill (ARG ignored); seconds into each period\n"
           "  --chaos-period S        the schedule repeats every S seconds (300)\n"
           "  --registry URL          where chaos finds the instances of a service\n"
           "  --service-key-file F    HS256 key for the admin service tokens of /admin/faults\n"
           "  --pid-dir DIR           SERVICE.pid files of the run script's supervisor\n"
           "Telemetry: OTEL_EXPORTER_OTLP_ENDPOINT etc. (service name fleet-loadgen).\n");
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv) {
    const char *key_file = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (v == NULL) {
            bad = 1;
        } else if (strcmp(a, "--gateway") == 0) {
            cfg.gateway = v;
        } else if (strcmp(a, "--registry") == 0) {
            cfg.registry = v;
        } else if (strcmp(a, "--pid-dir") == 0) {
            cfg.pid_dir = v;
        } else if (strcmp(a, "--service-key-file") == 0) {
            key_file = v;
        } else if (strcmp(a, "--rate") == 0) {
            char *end;
            cfg.rate = strtod(v, &end);
            bad = *end != '\0' || !(cfg.rate > 0) || cfg.rate > 1e6;
        } else if (strcmp(a, "--duration") == 0) {
            bad = parse_uint(v, 0, 86400 * 365, &cfg.duration_s);
        } else if (strcmp(a, "--concurrency") == 0) {
            bad = parse_uint(v, 1, 1024, &cfg.concurrency);
        } else if (strcmp(a, "--users") == 0) {
            bad = parse_uint(v, 1, 1000000, &cfg.max_users);
        } else if (strcmp(a, "--report-s") == 0) {
            bad = parse_uint(v, 0, 86400, &cfg.report_s);
        } else if (strcmp(a, "--chaos-period") == 0) {
            bad = parse_uint(v, 1, 86400, &cfg.chaos_period_s);
        } else if (strcmp(a, "--chaos") == 0) {
            bad = parse_chaos(v) != 0;
        } else if (strcmp(a, "--journeys") == 0) {
            bad = parse_journeys(v) != 0;
        } else {
            fprintf(stderr, "fleet-loadgen: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "fleet-loadgen: bad or missing value for %s\n", a);
            return 2;
        }
    }
    if (key_file != NULL && sf_jwt_key_hs256_file(key_file, &cfg.service_key) != 0) {
        fprintf(stderr, "fleet-loadgen: cannot read the service key %s\n", key_file);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != NULL) {
        if (getenv("OTEL_SERVICE_NAME") == NULL) {
            setenv("OTEL_SERVICE_NAME", "fleet-loadgen", 1);
        }
        sf_telemetry_create("fleet-loadgen", "1.0.0", &cfg.tel);
    }
    pthread_mutex_init(&st.mu, NULL);
    users = calloc(cfg.max_users, sizeof(*users));
    for (int j = 0; j < J_COUNT; j++) {
        st.lat_us[j] = malloc(MAX_LAT * sizeof(uint32_t));
    }
    if (users == NULL) {
        fprintf(stderr, "fleet-loadgen: out of memory\n");
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atomic_store(&next_slot_ns, sl_mono_nano());
    pthread_t *th = calloc(cfg.concurrency, sizeof(*th)), chaos_th;
    unsigned started = 0;
    for (unsigned i = 0; th != NULL && i < cfg.concurrency; i++) {
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0) {
            started++;
        }
    }
    bool chaos_started = cfg.n_chaos > 0 && pthread_create(&chaos_th, NULL, chaos_main, NULL) == 0;
    fprintf(stderr, "loadgen: %u workers, %.1f requests/s against %s%s\n", started, cfg.rate,
            cfg.gateway, cfg.n_chaos ? ", chaos on" : "");
    uint64_t t0 = sl_mono_nano(), last_report = t0;
    while (!atomic_load(&stopping)) {
        sleep_ms(100);
        uint64_t now = sl_mono_nano();
        if (cfg.duration_s > 0 && now - t0 >= (uint64_t)cfg.duration_s * 1000000000ULL) {
            atomic_store(&stopping, true);
        }
        if (cfg.report_s > 0 && now - last_report >= (uint64_t)cfg.report_s * 1000000000ULL) {
            report(stderr, (double)(now - t0) / 1e9, false);
            last_report = now;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    if (chaos_started) {
        pthread_join(chaos_th, NULL);
    }
    report(stdout, (double)(sl_mono_nano() - t0) / 1e9, true);
    fflush(stdout);
    sf_telemetry_destroy(cfg.tel, 5000);
    for (int j = 0; j < J_COUNT; j++) {
        free(st.lat_us[j]);
    }
    free(th);
    free(users);
    sf_jwt_key_destroy(cfg.service_key);
    curl_global_cleanup();
    return 0;
}
