/*
 * Private declarations of the SDK (prefix ot_ for internal non-static
 * functions). Nothing here is part of the installed API.
 *
 * Memory model: spans and log records are "records" that keep their strings
 * and attribute trees in two growable arrays (ot_rec). Records are recycled
 * through a per-provider free list with their capacity, so that steady state
 * allocates nothing; capacity beyond OT_REC_KEEP_* is given back on recycling.
 */
#ifndef SL_OTEL_SDK_INT_H
#define SL_OTEL_SDK_INT_H

#include <sightline/sightline.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define OT_MAX_DEPTH 8 /* nesting of array/kvlist values */
#define OT_REC_KEEP_STR (16u * 1024)
#define OT_REC_KEEP_NODES 512u

/* ---- growable byte buffer with a sticky allocation failure -------------- */
typedef struct ot_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} ot_buf;

int ot_buf_reserve(ot_buf *b, size_t extra);
void ot_buf_put(ot_buf *b, const void *p, size_t n);
void ot_buf_putc(ot_buf *b, char c);
void ot_buf_puts(ot_buf *b, const char *s);
void ot_buf_free(ot_buf *b);

/* ---- attribute trees ----------------------------------------------------- */

/* One node of a flattened AnyValue tree, in pre-order. Top-level nodes carry
 * a key and an owner (which attribute list they belong to: the record's own,
 * an event's, a link's, a log body); children of arrays and kvlists follow
 * their parent and are skipped with desc. */
enum { OT_NODE_DELETED = 255 };

typedef struct ot_node {
    uint8_t type; /* sl_any_type or OT_NODE_DELETED */
    uint16_t owner;
    uint32_t key_off, key_len;
    uint32_t n;    /* children of ARRAY/KVLIST */
    uint32_t desc; /* all descendants */
    union {
        int64_t i;
        double d;
        bool b;
        struct {
            uint32_t off, len;
        } s;
    } u;
} ot_node;

typedef struct ot_rec {
    ot_buf str;
    ot_node *nodes;
    uint32_t nnodes, cap_nodes;
} ot_rec;

enum { OT_OWNER_SELF = 0, OT_OWNER_BODY = 1, OT_OWNER_EVENT0 = 2 };

/* Appends a string to rec->str; returns its offset (UINT32_MAX on failure). */
uint32_t ot_rec_str(ot_rec *r, const char *s, size_t len);
/* Sets attribute kv under owner: replaces a same-key attribute of that owner,
 * else appends unless *count reached max (then SL_OTEL_ELIMIT and *dropped++).
 * Strings are cut to value_len. */
int ot_rec_set(ot_rec *r, uint16_t owner, const sl_kv *kv, uint32_t max, uint32_t value_len,
               uint32_t *count, uint32_t *dropped);
/* Appends a value (no key) as a top-level node of owner (log bodies). */
int ot_rec_value(ot_rec *r, uint16_t owner, const sl_any *v, uint32_t value_len);
void ot_rec_reset(ot_rec *r);
void ot_rec_free(ot_rec *r);
static inline const char *ot_rec_ptr(const ot_rec *r, uint32_t off) {
    return (const char *)r->str.p + off;
}

/* ---- encoding (OTLP protobuf or OTLP/JSON through one emitter) ----------- */
typedef struct ot_enc {
    ot_buf *out;
    bool json;
    int depth;
    bool first[40];  /* JSON: no comma needed yet at this depth */
    size_t mark[40]; /* protobuf: where each open message's length goes */
} ot_enc;

void ot_enc_init(ot_enc *e, ot_buf *out, bool json);
void ot_enc_finish(ot_enc *e);                             /* closes the top-level JSON object */
void ot_enc_begin(ot_enc *e, int field, const char *name); /* nested message */
void ot_enc_end(ot_enc *e);
void ot_enc_array_begin(ot_enc *e, const char *name); /* JSON array of a repeated field */
void ot_enc_array_end(ot_enc *e);
void ot_enc_str(ot_enc *e, int field, const char *name, const char *p, size_t n);
void ot_enc_id(ot_enc *e, int field, const char *name, const uint8_t *p, size_t n); /* hex */
void ot_enc_u32(ot_enc *e, int field, const char *name, uint32_t v);                /* varint */
void ot_enc_i64(ot_enc *e, int field, const char *name, int64_t v);                 /* varint */
void ot_enc_fixed32(ot_enc *e, int field, const char *name, uint32_t v);
void ot_enc_fixed64(ot_enc *e, int field, const char *name, uint64_t v);
void ot_enc_sfixed64(ot_enc *e, int field, const char *name, int64_t v);
void ot_enc_double(ot_enc *e, int field, const char *name, double v);
void ot_enc_bool(ot_enc *e, int field, const char *name, bool v);
void ot_enc_fixed64_packed(ot_enc *e, int field, const char *name, const uint64_t *v, size_t n);
void ot_enc_double_packed(ot_enc *e, int field, const char *name, const double *v, size_t n);
/* Attributes of one owner as repeated KeyValue (field), in insertion order. */
void ot_enc_attrs(ot_enc *e, int field, const ot_rec *r, uint16_t owner);
/* One AnyValue message from the node at *i (advances *i past it). */
void ot_enc_anyvalue(ot_enc *e, int field, const char *name, const ot_rec *r, uint32_t *i);

/* ---- exporter (OTLP/HTTP on libcurl) ------------------------------------ */
typedef struct ot_exporter ot_exporter;
typedef struct ot_export_cfg {
    const char *url; /* full, per signal */
    const char *headers;
    uint32_t timeout_ms;
    bool gzip;
    bool json;
    uint32_t retry_initial_ms, retry_max_ms;
    const char *ca_file, *cert_file, *key_file; /* TLS, NULL: none */
} ot_export_cfg;

int ot_exporter_create(sl_provider *p, const ot_export_cfg *cfg, ot_exporter **out);
void ot_exporter_destroy(ot_exporter *x);
bool ot_exporter_is_json(const ot_exporter *x);
/* Response parsing (exposed for the fuzz target): partial_success's rejected
 * count (0 when absent), and a Retry-After value in ms (-1 when invalid). */
int64_t ot_parse_rejected(const uint8_t *p, size_t len, bool json);
int64_t ot_parse_retry_after(const char *v, size_t n, time_t now);
/* Sends body, retrying what is retryable until deadline_ns (monotonic).
 * Returns 0 (and *rejected from partial_success) or SL_OTEL_EEXPORT. */
int ot_exporter_send(ot_exporter *x, const uint8_t *body, size_t len, uint64_t deadline_ns,
                     int64_t *rejected);

/* ---- batch processor: bounded queue + one background thread -------------- */
typedef struct ot_batch ot_batch;
typedef struct ot_batch_ops {
    /* Encodes items[0..n) as one export request into out. */
    void (*encode)(sl_provider *p, void **items, size_t n, ot_enc *e);
    /* Gives items back to the pool. */
    void (*release)(sl_provider *p, void **items, size_t n);
} ot_batch_ops;

typedef struct ot_batch_counters {
    atomic_uint_fast64_t *dropped, *exported, *failed;
} ot_batch_counters;

int ot_batch_create(sl_provider *p, const sl_batch_options *o, const ot_batch_ops *ops,
                    ot_batch_counters counters, ot_exporter *x, bool json, const char *name,
                    ot_batch **out);
/* Never blocks on the network: SL_OTEL_EFULL when the queue is full (the
 * item is released and counted as dropped). */
int ot_batch_push(ot_batch *b, void *item);
int ot_batch_flush(ot_batch *b, uint64_t deadline_ns);
/* Takes up to max queued items out (tests drive encoding by hand). */
size_t ot_batch_take(ot_batch *b, void **items, size_t max);
/* Stops the thread after draining what the deadline allows; frees queue. */
int ot_batch_shutdown(ot_batch *b, uint64_t deadline_ns);
void ot_batch_destroy(ot_batch *b);

/* ---- the provider --------------------------------------------------------- */
typedef struct ot_scope {
    char *name, *version;
} ot_scope;

struct sl_tracer {
    sl_provider *p;
    ot_scope scope;
    struct sl_tracer *next;
};

struct sl_logger {
    sl_provider *p;
    ot_scope scope;
    struct sl_logger *next;
};

typedef struct ot_event {
    uint64_t ts;
    uint32_t name_off, name_len;
    uint32_t nattrs, dropped;
} ot_event;

typedef struct ot_link {
    uint8_t trace_id[16], span_id[8];
    uint32_t flags;
    uint32_t ts_off, ts_len;
    uint32_t nattrs, dropped;
} ot_link;

struct sl_span {
    struct sl_span *next_free;
    sl_tracer *tracer;
    uint8_t trace_id[16], span_id[8], parent_id[8];
    uint8_t trace_flags;
    bool recording, has_parent, parent_remote, ended;
    uint8_t kind, status;
    uint64_t start_ns, end_ns;
    uint32_t name_off, name_len, status_off, status_len, ts_off, ts_len;
    uint32_t nattrs, dropped_attrs, dropped_events, dropped_links;
    ot_rec rec;
    ot_event *events;
    uint32_t nevents, cap_events;
    ot_link *links;
    uint32_t nlinks, cap_links;
};

typedef struct ot_log {
    struct ot_log *next_free;
    sl_logger *logger;
    uint64_t ts_ns, observed_ns;
    uint8_t trace_id[16], span_id[8];
    uint8_t trace_flags;
    bool has_trace, has_body;
    int severity;
    uint32_t sev_off, sev_len;
    uint32_t nattrs, dropped_attrs;
    ot_rec rec;
} ot_log;

typedef struct ot_stats {
    atomic_uint_fast64_t spans_started, spans_not_sampled, spans_dropped, spans_exported,
        spans_export_failed, logs_emitted, logs_dropped, logs_exported, logs_export_failed,
        metric_points_exported, metric_exports_failed, export_requests, export_retries,
        partial_success_rejected;
} ot_stats;

typedef struct ot_metrics ot_metrics;

struct sl_provider {
    bool disabled;
    sl_log_fn log;
    void *log_ud;
    sl_sampler sampler;
    uint64_t ratio_bound; /* traceidratio: sampled when id < bound */
    double ratio;
    sl_span_limits limits;
    uint32_t log_attr_count, log_attr_len;
    atomic_bool shut_down;
    /* Monotonic ns after which exports give up (UINT64_MAX: none). */
    _Atomic uint64_t abort_deadline_ns;

    ot_rec resource; /* attributes, owner SELF */
    uint32_t resource_n;

    pthread_mutex_t mu; /* scopes, pools */
    sl_tracer *tracers;
    sl_logger *loggers;
    sl_span *free_spans;
    ot_log *free_logs;
    uint32_t nfree_spans, nfree_logs;
    uint32_t span_pool_max, log_pool_max; /* idle records kept */

    ot_exporter *x_traces, *x_logs, *x_metrics;
    ot_batch *bsp, *blrp;
    ot_metrics *metrics;
    ot_stats stats;
};

void ot_diag(sl_provider *p, sl_diag level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t ot_now_ns(void);  /* wall clock */
uint64_t ot_mono_ns(void); /* monotonic */
uint64_t ot_deadline(uint32_t timeout_ms);
void ot_random_bytes(uint8_t *out, size_t n); /* fast per-thread generator */
uint64_t ot_random_u64(void);
char *ot_strdup(const char *s);
int ot_cond_init_mono(pthread_cond_t *cv);
int ot_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns);

/* The resource's encoding (shared by the three signals). */
void ot_enc_resource(ot_enc *e, sl_provider *p);
void ot_enc_scope(ot_enc *e, const ot_scope *s);

/* Trace / log / metric parts of the provider (trace.c, logs.c, metrics.c). */
extern const ot_batch_ops ot_span_ops;
extern const ot_batch_ops ot_log_ops;
int ot_spans_prealloc(sl_provider *p, uint32_t n);
void ot_spans_free_all(sl_provider *p);
void ot_logs_free_all(sl_provider *p);
int ot_metrics_create(sl_provider *p, const sl_provider_options *o, ot_metrics **out);
int ot_metrics_flush(ot_metrics *m, uint64_t deadline_ns);
int ot_metrics_shutdown(ot_metrics *m, uint64_t deadline_ns);
void ot_metrics_destroy(ot_metrics *m);
/* Collects into the reader's buffer (tests; the reader thread must be idle). */
size_t ot_metrics_collect(ot_metrics *m, bool json, const uint8_t **body, size_t *len);
int ot_meter_get(sl_provider *p, const char *name, const char *version, sl_meter **out);

/* Sampler decision for a new span (trace.c; exposed for tests). */
bool ot_sample(const sl_provider *p, const sl_span_context *parent, const uint8_t trace_id[16]);

/* The calling thread's current context, borrowed (NULL: none). */
const sl_span_context *ot_context_top(void);

/* Environment helpers (provider.c). ot_parse_kv_list calls fn for each
 * "k=v" of a comma-separated list (spaces around items trimmed, v raw);
 * ot_pct_decode writes the percent-decoded v (at most vl bytes) to out. */
size_t ot_pct_decode(const char *v, size_t vl, char *out);
int ot_parse_kv_list(const char *s,
                     int (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                     void *ud);

#endif
