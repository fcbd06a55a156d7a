/*
 * Private declarations of the query module: the request/response shapes the
 * handlers work on (free of libmicrohttpd so that parsing and rendering can be
 * unit-tested without a server), the query-string parsers, the streaming JSON
 * writer and the Jaeger renderer.
 *
 * Invariants: a qry_req and everything in its arena live for one request and
 * one thread; a qry_resp's body is handed to libmicrohttpd once complete.
 * Thread-safety: every function here is reentrant; the only shared state is
 * the borrowed store (thread-safe by contract) and the metrics registry.
 */
#ifndef SL_QUERY_INT_H
#define SL_QUERY_INT_H

#include "query.h"

#include "sl_arena.h"
#include "sl_buf.h"
#include "sl_model.h"
#include "sl_util.h"

#include <stddef.h>
#include <stdint.h>

/* --- query-string arguments --------------------------------------------- */

/* One decoded query-string pair; val is empty for "key" without "=". */
typedef struct qry_kv {
    sl_str key;
    sl_str val;
} qry_kv;

typedef struct qry_args {
    const qry_kv *kv;
    size_t n;
} qry_args;

/* A message for a 4xx answer, written by the parsers. */
typedef struct qry_errbuf {
    char msg[256];
} qry_errbuf;

/* Most tags (tags={..} plus tag=k:v) and traceID parameters one request may carry. */
#define QRY_MAX_TAGS 64

/* Returns 1 and sets *out to the first value of key when it is present and
 * non-empty (Jaeger treats an empty parameter as an absent one), else 0. */
int qry_args_get(const qry_args *a, const char *key, sl_str *out);

/* Parses a Go duration string ("1.5ms", "100us", "1µs", "2h45m", "0") into
 * nanoseconds. Negative or overflowing durations are rejected.
 * Returns 0 or SL_EINVAL. */
int qry_parse_duration(sl_str s, uint64_t *out_ns);

/* Like qry_parse_duration but also accepts the units "d" (24 h) and "w" (7 d)
 * used by the UI's lookback selector ("1h", "2d"). Returns 0 or SL_EINVAL. */
int qry_parse_lookback(sl_str s, uint64_t *out_ns);

/* Parses 1-32 hex digits (either case) into a 16-byte trace id, left-padding
 * short ids with zeros as Jaeger does. Returns 0 or SL_EINVAL. */
int qry_parse_trace_id(sl_str s, uint8_t out[16]);

/* Parses a tags={"k":"v",...} value: a JSON object whose values are strings.
 * Appends to tags[*n..cap); keys and values are copied into a.
 * Returns 0, SL_EINVAL (malformed, or more than cap tags) or SL_ENOMEM. */
int qry_parse_tags_json(sl_str s, sl_arena *a, stg_tag *tags, size_t cap, size_t *n);

/* Parses one tag=key:value value, splitting at the first ':' (values may hold
 * colons). The result borrows s. Returns 0 or SL_EINVAL (no ':' or empty key). */
int qry_parse_tag_kv(sl_str s, stg_tag *out);

/* Everything /api/traces was asked. When ntrace_ids > 0 the request names
 * traces directly and q is not used for a search. */
typedef struct qry_trace_params {
    stg_trace_query q; /* tenant left NULL for the caller to fill */
    uint8_t (*trace_ids)[16];
    size_t ntrace_ids;
} qry_trace_params;

/* Parses /api/traces parameters (see jaeger_api.c for their meaning). Memory
 * comes from a; strings borrow the arguments. On SL_EINVAL err holds the reason.
 * Returns 0, SL_EINVAL or SL_ENOMEM. */
int qry_parse_trace_params(const qry_args *args, uint64_t now_unix_nano, unsigned max_limit,
                           sl_arena *a, qry_trace_params *out, qry_errbuf *err);

/* Parses /api/dependencies' endTs and lookback (milliseconds; defaults now and
 * 24 h) into a [start, end] window in unix nanoseconds.
 * Returns 0 or SL_EINVAL with err filled. */
int qry_parse_deps_params(const qry_args *args, uint64_t now_unix_nano, uint64_t *start_ns,
                          uint64_t *end_ns, qry_errbuf *err);

/* Everything /api/logs was asked (logs_params.c). q's pointers point into
 * the struct itself, so it must not be copied after parsing. */
#define QRY_MAX_LOG_TERMS 16
#define QRY_LOG_DEFAULT_LIMIT 100
#define QRY_LOG_MAX_LIMIT 5000
typedef struct qry_log_params {
    stg_log_query q; /* tenant left NULL for the caller to fill */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    stg_log_term terms[QRY_MAX_LOG_TERMS];
} qry_log_params;

/* Parses service, severity, q, trace_id, span_id, start, end, limit and
 * direction (see logs_api.c). Terms are lower-cased copies in a; the other
 * strings borrow the arguments. Returns 0, SL_EINVAL (err filled) or
 * SL_ENOMEM. */
int qry_parse_log_params(const qry_args *args, sl_arena *a, qry_log_params *out, qry_errbuf *err);
/* A minimum severity: a number 0-24 or a name (trace 1, debug 5, info 9,
 * warn 13, error 17, fatal 21; case-insensitive). 0 or SL_EINVAL. */
int qry_parse_severity(sl_str s, int *out);
/* Unix nanoseconds, or an RFC 3339 time (fraction to 9 digits, Z or an
 * offset) from 1970 on. 0 or SL_EINVAL. */
int qry_parse_time_ns(sl_str s, uint64_t *out);
/* Splits q into terms appended to p->terms: "quoted phrases"; bare words;
 * bare chunks with inner separators (code=51) become phrases. 0, SL_EINVAL
 * (unterminated quote, too many terms; err filled) or SL_ENOMEM. */
int qry_parse_log_terms(sl_str q, sl_arena *a, qry_log_params *p, qry_errbuf *err);

/* --- JSON writer ---------------------------------------------------------- */

/* A streaming JSON writer into an sl_buf. The first failing append is kept in
 * err and every later call does nothing, so callers check once at the end. */
typedef struct qry_jw {
    sl_buf *b;
    int err;
} qry_jw;

static inline void qry_jw_init(qry_jw *w, sl_buf *b) {
    w->b = b;
    w->err = 0;
}

/* Appends raw bytes (punctuation, pre-escaped keys). */
void qry_jw_raw(qry_jw *w, const char *p, size_t len);
/* Appends a string literal (the "" concatenation refuses anything else). */
#define QRY_JW_LIT(w, s) qry_jw_raw((w), "" s "", sizeof(s) - 1)
/* Appends a quoted JSON string: control characters are escaped and invalid
 * UTF-8 is replaced by U+FFFD, so the output is always valid JSON. */
void qry_jw_str(qry_jw *w, const char *p, size_t len);
void qry_jw_u64(qry_jw *w, uint64_t v);
void qry_jw_i64(qry_jw *w, int64_t v);
/* A finite double as the shortest text that reads back equal. */
void qry_jw_double(qry_jw *w, double v);
/* Lowercase hex of len bytes, quoted. */
void qry_jw_hex(qry_jw *w, const uint8_t *p, size_t len);
/* Standard base64 (with padding) of len bytes, quoted. */
void qry_jw_base64(qry_jw *w, const uint8_t *p, size_t len);

/* --- Jaeger rendering ----------------------------------------------------- */

/* Renders the n spans of one trace as a Jaeger UI trace object
 * {"traceID","spans","processes","warnings"}: spans sorted by start time,
 * identical resources folded into one process. spans are not modified;
 * scratch holds temporary arrays (the caller resets it). n must be > 0.
 * Returns 0, SL_ENOMEM or SL_ETOOBIG (the buffer's limit). */
int qry_render_trace(qry_jw *w, const sl_span *spans, size_t n, sl_arena *scratch);

/* Jaeger's span.kind tag value for an SL_KIND_*: "" for unspecified. */
const char *qry_kind_name(int kind);

/* Opens the Jaeger envelope: writes {"data": . */
void qry_envelope_open(qry_jw *w);
/* Closes it: ,"total":N,"limit":0,"offset":0,"errors":<errors>} where errors
 * is pre-rendered JSON (an array) or, when errors.len == 0, null. */
void qry_envelope_close(qry_jw *w, size_t total, sl_str errors);
/* Renders a whole Jaeger error envelope:
 * {"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":N,"msg":"..."}]}.
 * Returns 0 or the writer's error. */
int qry_render_error(sl_buf *b, int code, const char *msg);

/* --- requests and handlers ------------------------------------------------ */

/* The HTTP-independent request a handler sees. */
typedef struct qry_req {
    stg_store *store;        /* borrowed */
    const qry_options *opts; /* the server's options */
    const char *tenant;      /* the tenant decided by sl_auth_decide (tenant_buf) */
    char tenant_buf[65];
    qry_args args;   /* decoded query string */
    sl_arena *arena; /* dies with the request */
    uint64_t now_unix_nano;
    const char *method; /* GET, HEAD or POST */
} qry_req;

typedef struct qry_resp {
    int status;
    sl_buf body;
    const char *content_type;     /* static string */
    const char *allow;            /* Allow header value for a 405, or NULL */
    const char *www_authenticate; /* for a 401, or NULL */
    const char *cache_control;    /* Cache-Control value (static UI), or NULL */
    int fd;                       /* a file to send instead of body (static UI), or -1 */
    uint64_t fd_size;
} qry_resp;

/* Fills resp with a Jaeger error envelope. Never fails: when even that cannot
 * be rendered the body is left empty. */
void qry_resp_error(qry_resp *resp, int status, const char *msg);

/* Maps a storage error to an answer: SL_EINVAL 400, SL_ENOTFOUND 404,
 * SL_ETOOBIG 400 (result too large), anything else 503. */
void qry_resp_storage_error(qry_resp *resp, int rc);

/* The Jaeger API handlers (jaeger_api.c). Each fills resp completely. */
void qry_api_services(const qry_req *req, qry_resp *resp);
/* fleet_api.c: the live service graph and the services' health. */
void qry_api_service_map(const qry_req *req, qry_resp *resp);
void qry_api_fleet_health(const qry_req *req, qry_resp *resp);
void qry_api_service_operations(const qry_req *req, sl_str service, qry_resp *resp);
void qry_api_operations(const qry_req *req, qry_resp *resp);
void qry_api_traces(const qry_req *req, qry_resp *resp);
void qry_api_trace(const qry_req *req, sl_str trace_id_hex, qry_resp *resp);
void qry_api_dependencies(const qry_req *req, qry_resp *resp);
/* The logs API (logs_api.c): GET /api/logs and /api/traces/{id}/logs. */
/* Renders one record as the API's JSON object. */
void qry_render_log_record(qry_jw *w, const sl_log_record *r);
void qry_api_logs(const qry_req *req, qry_resp *resp);
void qry_api_trace_logs(const qry_req *req, sl_str trace_id_hex, qry_resp *resp);

/* The Prometheus HTTP API handlers (prom_api.c). Each fills resp completely
 * with Prometheus's envelope. */
void qry_api_prom_query(const qry_req *req, qry_resp *resp);
void qry_api_prom_query_range(const qry_req *req, qry_resp *resp);
void qry_api_prom_series(const qry_req *req, qry_resp *resp);
void qry_api_prom_labels(const qry_req *req, qry_resp *resp);
void qry_api_prom_label_values(const qry_req *req, sl_str name, qry_resp *resp);
void qry_api_prom_metadata(const qry_req *req, qry_resp *resp);

/* Decodes an application/x-www-form-urlencoded body into kv[*n..cap)
 * (strings copied into a). Returns 0, SL_EINVAL (bad %-escape), SL_ETOOBIG
 * (more than cap pairs) or SL_ENOMEM. */
int qry_parse_form(sl_str body, sl_arena *a, qry_kv *kv, size_t cap, size_t *n);

/* Static UI files (ui_files.c). ui_root is the canonical ui_dir; path is the
 * decoded request path. Fills resp with the file or a 404. */
void qry_serve_file(const char *ui_root, const char *path, qry_resp *resp);

/* The Content-Type for a file name, by extension; application/octet-stream
 * when unknown. */
const char *qry_content_type(const char *name);

#endif
