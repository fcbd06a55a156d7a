/*
 * sightline-otel: an OpenTelemetry SDK for C (traces, logs, metrics) that
 * exports OTLP/HTTP (protobuf or JSON) to any OTLP collector.
 *
 * This header is the specification. Conventions:
 * - Functions returning int return 0 on success and a negative SL_OTEL_E*
 *   code on failure (sl_otel_strerror() names it). Out-parameters are written
 *   only on success; a failed constructor sets *out = NULL.
 * - Handles are opaque. Every function accepts a NULL handle harmlessly (it
 *   does nothing and returns SL_OTEL_EINVAL), so instrumentation never has to
 *   check whether telemetry is configured.
 * - Strings passed in are borrowed for the duration of the call and copied
 *   when kept. Nothing returned by the SDK must be freed by the caller unless
 *   the function says "the caller owns".
 * - The only public structs are views (sl_any, sl_kv), plain data
 *   (sl_span_context, sl_provider_stats) and options structs filled by their
 *   *_init() function; fields are only ever appended.
 * - Thread-safety: every function may be called from any thread, except that
 *   one span (or series) handle must not be ended while another thread still
 *   uses it. The SDK never aborts, exits or prints: diagnostics go through the
 *   log callback of sl_provider_options.
 * - There is no global state besides the calling thread's current-context
 *   stack (sl_context_*), which sl_context_reset() clears.
 */
#ifndef SIGHTLINE_OTEL_H
#define SIGHTLINE_OTEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SL_OTEL_BUILDING)
#define SL_API __attribute__((visibility("default")))
#else
#define SL_API
#endif

#define SL_OTEL_VERSION_MAJOR 0
#define SL_OTEL_VERSION_MINOR 1
#define SL_OTEL_VERSION_PATCH 0
#define SL_OTEL_VERSION_STRING "0.1.0"

/* Returns the library's version string ("0.1.0"); compare it with
 * SL_OTEL_VERSION_STRING to detect a header/library mismatch. */
SL_API const char *sl_otel_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* The SDK's own codes live in the band -20001..-20099 (the OS errors it may
 * pass through are -errno). */
#define SL_OTEL_ERR_MAP(X)                                                                         \
    X(NOMEM, -20001, "out of memory")                                                              \
    X(INVAL, -20002, "invalid argument")                                                           \
    X(FULL, -20003, "queue full: item dropped")                                                    \
    X(TIMEOUT, -20004, "deadline exceeded")                                                        \
    X(SHUTDOWN, -20005, "provider is shut down")                                                   \
    X(EXPORT, -20006, "export failed")                                                             \
    X(PARSE, -20007, "malformed input")                                                            \
    X(NOTFOUND, -20008, "not found")                                                               \
    X(LIMIT, -20009, "limit reached: item dropped")                                                \
    X(DISABLED, -20010, "telemetry is disabled")

enum {
#define SL_OTEL_ERR_ENUM(name, code, msg) SL_OTEL_E##name = (code),
    SL_OTEL_ERR_MAP(SL_OTEL_ERR_ENUM)
#undef SL_OTEL_ERR_ENUM
};

/* Returns a static message for any code (SDK or -errno). Never NULL. */
SL_API const char *sl_otel_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Values and attributes (OTLP AnyValue and KeyValue), as borrowed views    */

typedef enum {
    SL_ANY_EMPTY = 0,
    SL_ANY_STRING,
    SL_ANY_BOOL,
    SL_ANY_INT,
    SL_ANY_DOUBLE,
    SL_ANY_BYTES,
    SL_ANY_ARRAY,
    SL_ANY_KVLIST
} sl_any_type;

/* len: byte length for STRING (SL_LEN_AUTO = NUL-terminated) and BYTES,
 * element count for ARRAY and KVLIST. */
#define SL_LEN_AUTO ((size_t)-1)

typedef struct sl_kv sl_kv;
typedef struct sl_any {
    sl_any_type type;
    size_t len;
    union {
        const char *str;
        const void *bytes;
        bool b;
        int64_t i;
        double d;
        const struct sl_any *array;
        const sl_kv *kvlist;
    } v;
} sl_any;

struct sl_kv {
    const char *key;
    sl_any value;
};

#define SL_ANY_STR(s) ((sl_any){.type = SL_ANY_STRING, .len = SL_LEN_AUTO, .v.str = (s)})
#define SL_ANY_I64(x) ((sl_any){.type = SL_ANY_INT, .v.i = (x)})
#define SL_KV_STR(k, s) ((sl_kv){(k), {.type = SL_ANY_STRING, .len = SL_LEN_AUTO, .v.str = (s)}})
#define SL_KV_STRN(k, s, n) ((sl_kv){(k), {.type = SL_ANY_STRING, .len = (n), .v.str = (s)}})
#define SL_KV_INT(k, x) ((sl_kv){(k), {.type = SL_ANY_INT, .v.i = (x)}})
#define SL_KV_DOUBLE(k, x) ((sl_kv){(k), {.type = SL_ANY_DOUBLE, .v.d = (x)}})
#define SL_KV_BOOL(k, x) ((sl_kv){(k), {.type = SL_ANY_BOOL, .v.b = (x)}})
#define SL_KV_BYTES(k, p, n) ((sl_kv){(k), {.type = SL_ANY_BYTES, .len = (n), .v.bytes = (p)}})
#define SL_KV_ARRAY(k, a, n) ((sl_kv){(k), {.type = SL_ANY_ARRAY, .len = (n), .v.array = (a)}})
#define SL_KV_KVLIST(k, a, n) ((sl_kv){(k), {.type = SL_ANY_KVLIST, .len = (n), .v.kvlist = (a)}})

/* ------------------------------------------------------------------------ */
/* Provider: resource, exporters, processors; owns tracers, loggers, meters */

typedef struct sl_provider sl_provider;
typedef struct sl_tracer sl_tracer;
typedef struct sl_span sl_span;
typedef struct sl_logger sl_logger;
typedef struct sl_meter sl_meter;
typedef struct sl_instrument sl_instrument;
typedef struct sl_series sl_series;
typedef struct sl_observer sl_observer;

typedef enum { SL_PROTOCOL_HTTP_PROTOBUF = 0, SL_PROTOCOL_HTTP_JSON = 1 } sl_protocol;

typedef enum {
    SL_SAMPLER_PARENTBASED_ALWAYS_ON = 0, /* the OTel default */
    SL_SAMPLER_ALWAYS_ON,
    SL_SAMPLER_ALWAYS_OFF,
    SL_SAMPLER_TRACEIDRATIO,
    SL_SAMPLER_PARENTBASED_ALWAYS_OFF,
    SL_SAMPLER_PARENTBASED_TRACEIDRATIO
} sl_sampler;

typedef enum { SL_TEMPORALITY_CUMULATIVE = 0, SL_TEMPORALITY_DELTA = 1 } sl_temporality;

typedef enum { SL_DIAG_ERROR = 0, SL_DIAG_WARN = 1, SL_DIAG_INFO = 2, SL_DIAG_DEBUG = 3 } sl_diag;

/* Receives the SDK's diagnostics (export failures, bad configuration). Called
 * from any SDK thread; must not call back into the SDK. */
typedef void (*sl_log_fn)(void *userdata, sl_diag level, const char *message);

/* Per-signal exporter settings. NULL/0 fields inherit the generic ones. */
typedef struct sl_exporter_options {
    const char *endpoint; /* full URL, used as is (…/v1/traces) */
    const char *headers;  /* "k=v,k2=v2", values percent-decoded */
    uint32_t timeout_ms;
    int compression; /* -1 inherit, 0 none, 1 gzip */
    int protocol;    /* -1 inherit, else sl_protocol */
    /* TLS (https endpoints), PEM file paths: the CA bundle that verifies
     * the collector, and a client certificate and key for mutual TLS. */
    const char *certificate;
    const char *client_certificate;
    const char *client_key;
} sl_exporter_options;

/* Batch processor settings (OTEL_BSP_* / OTEL_BLRP_*). */
typedef struct sl_batch_options {
    uint32_t max_queue_size;        /* 2048 */
    uint32_t schedule_delay_ms;     /* 5000 for spans, 1000 for logs */
    uint32_t max_export_batch_size; /* 512 */
    uint32_t export_timeout_ms;     /* 30000: deadline of one export with its retries */
} sl_batch_options;

typedef struct sl_span_limits {
    uint32_t attribute_count;        /* 128 */
    uint32_t attribute_value_length; /* UINT32_MAX = unlimited (strings are cut) */
    uint32_t event_count;            /* 128 */
    uint32_t link_count;             /* 128 */
    uint32_t attributes_per_event;   /* 128 */
    uint32_t attributes_per_link;    /* 128 */
} sl_span_limits;

typedef struct sl_provider_options {
    /* Resource. service_name NULL = "unknown_service:<process name>". */
    const char *service_name;
    const char *resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES syntax */
    const sl_kv *resource;           /* extra attributes, win over the above */
    size_t resource_count;

    /* Export. endpoint is the base URL (default http://localhost:4318);
     * /v1/traces, /v1/logs and /v1/metrics are appended to it. */
    const char *endpoint;
    const char *headers;
    uint32_t timeout_ms; /* 10000, one HTTP attempt */
    int compression;     /* 0 none, 1 gzip */
    sl_protocol protocol;
    sl_exporter_options traces, logs, metrics;
    const char *certificate; /* TLS: CA bundle (PEM); NULL: the system's */
    const char *client_certificate;
    const char *client_key;
    /* Retries on 429/502/503/504 and connection failures: exponential
     * backoff from retry_initial_ms up to retry_max_ms with full jitter, a
     * Retry-After header wins; bounded by the batch's export_timeout_ms. */
    uint32_t retry_initial_ms; /* 500 */
    uint32_t retry_max_ms;     /* 5000 */

    sl_sampler sampler;
    double sampler_arg; /* ratio for the traceidratio samplers, 1.0 */
    sl_span_limits span_limits;
    sl_batch_options bsp;                /* spans */
    sl_batch_options blrp;               /* log records */
    uint32_t log_attribute_count;        /* 128 */
    uint32_t log_attribute_value_length; /* UINT32_MAX */

    uint32_t metric_export_interval_ms; /* 60000 */
    uint32_t metric_export_timeout_ms;  /* 30000 */
    sl_temporality metric_temporality;  /* cumulative */
    uint32_t metric_cardinality_limit;  /* 2000 series per instrument */

    bool disabled; /* OTEL_SDK_DISABLED: everything becomes a no-op */
    sl_log_fn log;
    void *log_userdata;
} sl_provider_options;

/* Fills *o with the OpenTelemetry defaults. Never fails. */
SL_API void sl_provider_options_init(sl_provider_options *o);

/* Overlays the standard variables on *o: OTEL_SDK_DISABLED, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_{ENDPOINT,HEADERS,TIMEOUT,
 * COMPRESSION,PROTOCOL,CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY} and their
 * _TRACES_/_LOGS_/_METRICS_ variants (a per-signal endpoint is used as is),
 * OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_BLRP_*, OTEL_SPAN_*_LIMIT, OTEL_LOGRECORD_*_LIMIT,
 * OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT and
 * OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE. String fields point into
 * the environment: create the provider before changing it. A malformed value
 * is ignored (the default stays) and reported: the return value is then
 * SL_OTEL_EPARSE, with every valid variable still applied. */
SL_API int sl_provider_options_from_env(sl_provider_options *o);

/* Creates a provider: builds the resource (service.name,
 * service.instance.id, host.name, process.pid, process.executable.name,
 * telemetry.sdk.*), one exporter per signal and starts the background
 * threads (one per batch processor, one for the metric reader). The caller
 * owns *out (sl_provider_destroy). Errors: SL_OTEL_EINVAL (bad option),
 * SL_OTEL_ENOMEM, -errno when a thread cannot start. With o->disabled the
 * provider exists but records and exports nothing. */
SL_API int sl_provider_create(const sl_provider_options *o, sl_provider **out);

/* Exports everything queued so far (and collects metrics once), waiting at
 * most timeout_ms. Returns 0, SL_OTEL_ETIMEOUT, or SL_OTEL_EEXPORT when an
 * export in the flush failed. Blocks the caller (never call it on a hot path). */
SL_API int sl_provider_force_flush(sl_provider *p, uint32_t timeout_ms);

/* Flushes, then stops the threads; later spans, logs and measurements are
 * dropped. Waits at most timeout_ms in total: a collector that does not
 * answer makes it return SL_OTEL_ETIMEOUT with the rest dropped. Idempotent. */
SL_API int sl_provider_shutdown(sl_provider *p, uint32_t timeout_ms);

/* Shuts down (5 s deadline) if needed and frees everything the provider owns
 * (tracers, loggers, meters, instruments). Every span must have been ended
 * before. NULL is harmless. */
SL_API void sl_provider_destroy(sl_provider *p);

/* Counters for self-monitoring; all monotonic. */
typedef struct sl_provider_stats {
    uint64_t spans_started;       /* recording spans */
    uint64_t spans_not_sampled;   /* sampler said drop */
    uint64_t spans_dropped;       /* queue full or shut down */
    uint64_t spans_exported;      /* acknowledged by the collector */
    uint64_t spans_export_failed; /* given up after retries or refused */
    uint64_t logs_emitted;
    uint64_t logs_dropped;
    uint64_t logs_exported;
    uint64_t logs_export_failed;
    uint64_t metric_points_exported;
    uint64_t metric_exports_failed;
    uint64_t export_requests; /* HTTP attempts of all signals */
    uint64_t export_retries;
    uint64_t partial_success_rejected; /* items the collector refused in a 2xx */
} sl_provider_stats;

/* Copies the counters into *out (a consistent-enough snapshot). */
SL_API int sl_provider_stats_get(sl_provider *p, sl_provider_stats *out);

/* Returns the tracer / logger / meter of an instrumentation scope, creating it
 * on first use (the same name and version give the same handle). Borrowed:
 * the provider owns it until sl_provider_destroy. Errors: SL_OTEL_EINVAL (NULL
 * name), SL_OTEL_ENOMEM. */
SL_API int sl_provider_tracer(sl_provider *p, const char *scope_name, const char *scope_version,
                              sl_tracer **out);
SL_API int sl_provider_logger(sl_provider *p, const char *scope_name, const char *scope_version,
                              sl_logger **out);
SL_API int sl_provider_meter(sl_provider *p, const char *scope_name, const char *scope_version,
                             sl_meter **out);

/* ------------------------------------------------------------------------ */
/* Span context and W3C Trace Context propagation                           */

#define SL_TRACESTATE_MAX 512
#define SL_TRACEPARENT_LEN 55
#define SL_TRACE_FLAG_SAMPLED 0x01

typedef struct sl_span_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool is_remote;
    char trace_state[SL_TRACESTATE_MAX + 1]; /* NUL-terminated, "" when none */
} sl_span_context;

/* True when both ids are non-zero. */
SL_API bool sl_span_context_is_valid(const sl_span_context *c);

/* Parses a traceparent header value per W3C Trace Context level 1
 * (version 00 exactly 55 characters; higher versions may carry more fields
 * after a '-'; version ff, uppercase hex, all-zero ids are invalid).
 * Surrounding spaces/tabs are ignored. On success fills the ids and flags of
 * *out, sets is_remote and clears trace_state. Errors: SL_OTEL_EPARSE. */
SL_API int sl_traceparent_parse(const char *value, size_t len, sl_span_context *out);

/* Writes "00-<trace>-<span>-<flags>" plus NUL (56 bytes). SL_OTEL_EINVAL when
 * the context is invalid. */
SL_API int sl_traceparent_format(const sl_span_context *c, char out[SL_TRACEPARENT_LEN + 1]);

/* Validates a tracestate header value (list of key=value members, at most 32,
 * keys and values per the W3C grammar, no duplicate keys; empty members and
 * optional whitespace around them are dropped) and writes its normalised form
 * to out (cap bytes with the NUL). Errors: SL_OTEL_EPARSE (the whole header
 * is then to be discarded, as the spec allows), SL_OTEL_ELIMIT (too long). */
SL_API int sl_tracestate_parse(const char *value, size_t len, char *out, size_t cap);

/* Carrier callbacks: get returns the header's value (NULL when absent; for a
 * repeated header, the values joined with ','), borrowed until the next call;
 * set adds or replaces a header and returns 0 or a negative error. */
typedef const char *(*sl_carrier_get_fn)(void *carrier, const char *name);
typedef int (*sl_carrier_set_fn)(void *carrier, const char *name, const char *value);

/* Writes traceparent (and tracestate when not empty) for ctx, or for the
 * thread's current context when ctx is NULL. Returns SL_OTEL_ENOTFOUND when
 * there is no valid context (nothing is written), or set's error. */
SL_API int sl_propagation_inject(const sl_span_context *ctx, sl_carrier_set_fn set, void *carrier);

/* Reads traceparent and tracestate into *out (is_remote = true). An invalid
 * tracestate is dropped, keeping the traceparent. Errors: SL_OTEL_ENOTFOUND
 * (no traceparent), SL_OTEL_EPARSE (malformed traceparent): start a new trace. */
SL_API int sl_propagation_extract(sl_carrier_get_fn get, void *carrier, sl_span_context *out);

/* The calling thread's stack of current contexts (implicit parents, log
 * correlation, inject with ctx NULL). Pushes copy the context, so ending a
 * span that is still current is safe. Depth 32: deeper pushes return
 * SL_OTEL_ELIMIT but still count, so pops stay balanced. */
SL_API int sl_context_push(const sl_span_context *c);
SL_API int sl_context_push_span(const sl_span *s);
SL_API void sl_context_pop(void);
/* Copies the current context into *out; SL_OTEL_ENOTFOUND when there is none. */
SL_API int sl_context_current(sl_span_context *out);
/* Empties the calling thread's stack (tests, thread pools between tasks). */
SL_API void sl_context_reset(void);

/* ------------------------------------------------------------------------ */
/* Traces                                                                   */

typedef enum {
    SL_SPAN_KIND_UNSPECIFIED = 0,
    SL_SPAN_KIND_INTERNAL = 1,
    SL_SPAN_KIND_SERVER = 2,
    SL_SPAN_KIND_CLIENT = 3,
    SL_SPAN_KIND_PRODUCER = 4,
    SL_SPAN_KIND_CONSUMER = 5
} sl_span_kind;

typedef enum { SL_STATUS_UNSET = 0, SL_STATUS_OK = 1, SL_STATUS_ERROR = 2 } sl_status_code;

typedef struct sl_link {
    const sl_span_context *context;
    const sl_kv *attrs;
    size_t attr_count;
} sl_link;

typedef struct sl_span_options {
    sl_span_kind kind;             /* INTERNAL */
    const sl_span_context *parent; /* NULL: the thread's current context */
    bool root;                     /* true: ignore the current context */
    uint64_t start_unix_nano;      /* 0: now */
    const sl_kv *attrs;            /* seen by the sampler */
    size_t attr_count;
    const sl_link *links;
    size_t link_count;
} sl_span_options;

SL_API void sl_span_options_init(sl_span_options *o);

/* Starts a span (o may be NULL: an INTERNAL span under the current context).
 * The sampler decides: a span that is not sampled is returned non-recording
 * (its context still propagates; setters do nothing). The caller owns *out
 * until sl_span_end. Steady state allocates nothing (spans come from the
 * provider's pool). Errors: SL_OTEL_EINVAL, SL_OTEL_ENOMEM, SL_OTEL_EDISABLED
 * and SL_OTEL_ESHUTDOWN (then *out is a non-recording span all the same, so
 * callers may ignore the error). */
SL_API int sl_span_start(sl_tracer *t, const char *name, const sl_span_options *o, sl_span **out);

/* Sets (or replaces, by key) attributes. Beyond the attribute count limit a
 * new key is dropped and counted (SL_OTEL_ELIMIT); strings longer than the
 * value length limit are cut. Arrays and kvlists nest up to 8 levels. */
SL_API int sl_span_set_attrs(sl_span *s, const sl_kv *attrs, size_t n);
SL_API int sl_span_set_str(sl_span *s, const char *key, const char *value);
SL_API int sl_span_set_int(sl_span *s, const char *key, int64_t value);
SL_API int sl_span_set_double(sl_span *s, const char *key, double value);
SL_API int sl_span_set_bool(sl_span *s, const char *key, bool value);

/* Adds an event (ts_unix_nano 0 = now). Beyond the event limit it is dropped
 * and counted (SL_OTEL_ELIMIT). */
SL_API int sl_span_add_event(sl_span *s, const char *name, uint64_t ts_unix_nano,
                             const sl_kv *attrs, size_t n);
/* Adds an "exception" event (exception.type, exception.message) and sets the
 * status to ERROR with the message. */
SL_API int sl_span_record_error(sl_span *s, const char *type, const char *message);
SL_API int sl_span_add_link(sl_span *s, const sl_link *link);
/* Status: OK is final; ERROR keeps its description; UNSET is ignored. */
SL_API int sl_span_set_status(sl_span *s, sl_status_code code, const char *description);
SL_API int sl_span_update_name(sl_span *s, const char *name);
SL_API bool sl_span_is_recording(const sl_span *s);
SL_API int sl_span_get_context(const sl_span *s, sl_span_context *out);

/* Ends the span and hands it to the batch processor (never blocks: a full
 * queue drops it and counts spans_dropped). The handle is invalid afterwards.
 * ts_unix_nano 0 = now. NULL is harmless. */
SL_API void sl_span_end(sl_span *s, uint64_t ts_unix_nano);

/* ------------------------------------------------------------------------ */
/* Logs                                                                     */

typedef enum {
    SL_SEVERITY_UNSPECIFIED = 0,
    SL_SEVERITY_TRACE = 1,
    SL_SEVERITY_DEBUG = 5,
    SL_SEVERITY_INFO = 9,
    SL_SEVERITY_WARN = 13,
    SL_SEVERITY_ERROR = 17,
    SL_SEVERITY_FATAL = 21
} sl_severity;

typedef struct sl_log_options {
    uint64_t ts_unix_nano;     /* 0: not set (observed time is always set) */
    int severity;              /* 1..24, SL_SEVERITY_* */
    const char *severity_text; /* NULL: derived from severity ("INFO") */
    const sl_any *body;        /* any value; NULL: none */
    const sl_kv *attrs;
    size_t attr_count;
    const sl_span_context *context; /* NULL: the thread's current context */
} sl_log_options;

SL_API void sl_log_options_init(sl_log_options *o);

/* Emits a log record with a string body, correlated with the thread's current
 * span (trace_id, span_id, flags). Never blocks: a full queue drops the
 * record (SL_OTEL_EFULL, counted in logs_dropped). */
SL_API int sl_logger_emit(sl_logger *l, sl_severity severity, const char *body, const sl_kv *attrs,
                          size_t n);
SL_API int sl_logger_emit_ex(sl_logger *l, const sl_log_options *o);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */

typedef enum {
    SL_INSTRUMENT_COUNTER = 0,
    SL_INSTRUMENT_UPDOWN_COUNTER,
    SL_INSTRUMENT_HISTOGRAM,
    SL_INSTRUMENT_GAUGE,
    SL_INSTRUMENT_OBSERVABLE_COUNTER,
    SL_INSTRUMENT_OBSERVABLE_UPDOWN_COUNTER,
    SL_INSTRUMENT_OBSERVABLE_GAUGE
} sl_instrument_kind;

/* Called on the metric reader's thread at each collection; report values
 * with sl_observer_observe*. Must not block for long, and must not create
 * instruments or meters (the reader holds the meters' lock). */
typedef void (*sl_observe_fn)(sl_observer *obs, void *userdata);

typedef struct sl_instrument_options {
    sl_instrument_kind kind;
    const char *name; /* required: [A-Za-z][A-Za-z0-9_./-]{0,254} */
    const char *unit;
    const char *description;
    bool is_int;           /* integer points (as_int) instead of double */
    const double *buckets; /* histogram bounds, increasing; NULL: OTel default */
    size_t bucket_count;
    sl_observe_fn callback; /* observable kinds */
    void *callback_userdata;
    int temporality; /* -1: the provider's; else sl_temporality */
} sl_instrument_options;

SL_API void sl_instrument_options_init(sl_instrument_options *o);

/* Creates an instrument (the meter owns it). The same name again returns the
 * existing one when its kind matches, SL_OTEL_EINVAL otherwise. */
SL_API int sl_meter_create(sl_meter *m, const sl_instrument_options *o, sl_instrument **out);
/* Shorthands: an integer counter, a double histogram (default buckets), a double gauge. */
SL_API int sl_meter_counter(sl_meter *m, const char *name, const char *unit,
                            const char *description, sl_instrument **out);
SL_API int sl_meter_histogram(sl_meter *m, const char *name, const char *unit,
                              const char *description, sl_instrument **out);

/* Counters and up-down counters: add (a counter refuses negative values with
 * SL_OTEL_EINVAL). Histograms and gauges: record. The attribute set selects
 * the series (order does not matter); past the cardinality limit values go to
 * the series {otel.metric.overflow=true}. */
SL_API int sl_instrument_add(sl_instrument *i, double v, const sl_kv *attrs, size_t n);
SL_API int sl_instrument_add_int(sl_instrument *i, int64_t v, const sl_kv *attrs, size_t n);
SL_API int sl_instrument_record(sl_instrument *i, double v, const sl_kv *attrs, size_t n);

/* Binds an attribute set once; the returned series (owned by the instrument)
 * then updates with one atomic operation and no lookup. */
SL_API int sl_instrument_bind(sl_instrument *i, const sl_kv *attrs, size_t n, sl_series **out);
SL_API int sl_series_add(sl_series *s, double v);
SL_API int sl_series_add_int(sl_series *s, int64_t v);
SL_API int sl_series_record(sl_series *s, double v);

/* Inside an observable instrument's callback: report one value for one
 * attribute set. */
SL_API int sl_observer_observe(sl_observer *obs, double v, const sl_kv *attrs, size_t n);
SL_API int sl_observer_observe_int(sl_observer *obs, int64_t v, const sl_kv *attrs, size_t n);

#ifdef __cplusplus
}
#endif

#endif
