/*
 * OTLP/HTTP exporter on libcurl. One exporter per signal, used only by that
 * signal's background thread, so its easy handle (and with it the keep-alive
 * connection) is reused without locking.
 *
 * Retries: 429, 502, 503, 504 and transport failures (refused, reset,
 * timeout) are retried with exponential backoff and jitter, or after the
 * server's Retry-After; every other answer is final. All of it stops at the
 * batch's deadline (or the provider's shutdown deadline), so a dead
 * collector costs the application nothing but dropped, counted items.
 */
#include "sdk_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

struct ot_exporter {
    sl_provider *p;
    char *url;
    struct curl_slist *hdrs;
    CURL *curl;
    uint32_t timeout_ms;
    bool gzip, json;
    uint32_t retry_initial_ms, retry_max_ms;
    ot_buf gz;
    ot_buf resp;
    int64_t retry_after_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    ot_exporter *x = ud;
    size_t n = size * nmemb;
    if (x->resp.len < 64 * 1024) { /* only the start matters: partial success, errors */
        ot_buf_put(&x->resp, ptr, n);
    }
    return n;
}

int64_t ot_parse_retry_after(const char *v, size_t n, time_t now) {
    char buf[64];
    if (n >= sizeof buf) {
        n = sizeof buf - 1;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == '\r' || s[l - 1] == '\n' || s[l - 1] == ' ' || s[l - 1] == '\t')) {
        s[--l] = '\0';
    }
    if (l == 0) {
        return -1;
    }
    if (s[0] >= '0' && s[0] <= '9') {
        char *end;
        long long secs = strtoll(s, &end, 10);
        if (*end != '\0' || secs < 0) {
            return -1;
        }
        return secs > 86400 ? 86400000 : (int64_t)secs * 1000; /* a day at most */
    }
    time_t when = curl_getdate(s, NULL); /* an HTTP date */
    if (when == -1) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    return when - now > 86400 ? 86400000 : (int64_t)(when - now) * 1000;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    ot_exporter *x = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
        x->retry_after_ms =
            ot_parse_retry_after(ptr + sizeof name - 1, n - (sizeof name - 1), time(NULL));
    }
    return n;
}

/* "k1=v1,k2=v2" (values percent-encoded) -> "k1: v1" header lines. */
static int add_header(void *ud, const char *k, size_t kl, const char *v, size_t vl) {
    struct curl_slist **list = ud;
    char line[2048];
    if (kl == 0 || kl + vl + 3 > sizeof line) {
        return SL_OTEL_EINVAL;
    }
    memcpy(line, k, kl);
    size_t o = kl;
    line[o++] = ':';
    line[o++] = ' ';
    o += ot_pct_decode(v, vl, line + o);
    line[o] = '\0';
    for (size_t i = 0; i < o; i++) {
        if (line[i] == '\r' || line[i] == '\n') {
            return SL_OTEL_EINVAL; /* no header injection through a value */
        }
    }
    struct curl_slist *n = curl_slist_append(*list, line);
    if (n == NULL) {
        return SL_OTEL_ENOMEM;
    }
    *list = n;
    return 0;
}

void ot_exporter_destroy(ot_exporter *x) {
    if (x == NULL) {
        return;
    }
    if (x->curl != NULL) {
        curl_easy_cleanup(x->curl);
    }
    curl_slist_free_all(x->hdrs);
    free(x->url);
    ot_buf_free(&x->gz);
    ot_buf_free(&x->resp);
    free(x);
}

int ot_exporter_create(sl_provider *p, const ot_export_cfg *cfg, ot_exporter **out) {
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        return SL_OTEL_ENOMEM;
    }
    ot_exporter *x = calloc(1, sizeof *x);
    if (x == NULL) {
        return SL_OTEL_ENOMEM;
    }
    x->p = p;
    x->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
    x->gzip = cfg->gzip;
    x->json = cfg->json;
    x->retry_initial_ms = cfg->retry_initial_ms ? cfg->retry_initial_ms : 500;
    x->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 5000;
    x->url = ot_strdup(cfg->url);
    x->curl = curl_easy_init();
    int rc = SL_OTEL_ENOMEM;
    if (x->url == NULL || x->curl == NULL) {
        goto fail;
    }
    const char *ct =
        x->json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf";
    struct curl_slist *h = curl_slist_append(NULL, ct);
    if (h == NULL) {
        goto fail;
    }
    x->hdrs = h;
    if (x->gzip && (h = curl_slist_append(x->hdrs, "Content-Encoding: gzip")) != NULL) {
        x->hdrs = h;
    }
    /* curl would send "Expect: 100-continue" for large bodies: one round trip
     * lost per export for nothing. */
    if ((h = curl_slist_append(x->hdrs, "Expect:")) != NULL) {
        x->hdrs = h;
    }
    if (cfg->headers != NULL && cfg->headers[0] != '\0') {
        rc = ot_parse_kv_list(cfg->headers, add_header, &x->hdrs);
        if (rc != 0) {
            ot_diag(p, SL_DIAG_WARN, "exporter: malformed headers setting ignored in part");
        }
    }
    CURL *c = x->curl;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sightline-otel/" SL_OTEL_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* curl copies option strings: the configuration need not outlive this. */
    if (cfg->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->cert_file != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert_file);
    }
    if (cfg->key_file != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key_file);
    }
    *out = x;
    return 0;
fail:
    ot_exporter_destroy(x);
    return rc;
}

static int gzip_body(ot_exporter *x, const uint8_t *in, size_t len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return SL_OTEL_ENOMEM;
    }
    size_t bound = deflateBound(&zs, (uLong)len);
    x->gz.len = 0;
    x->gz.oom = false;
    if (ot_buf_reserve(&x->gz, bound) != 0) {
        deflateEnd(&zs);
        return SL_OTEL_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = x->gz.p;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    x->gz.len = zs.total_out;
    deflateEnd(&zs);
    return zr == Z_STREAM_END ? 0 : SL_OTEL_ENOMEM;
}

/* Reads a varint from [*p, end); 0 or -1 (truncated or longer than 10 bytes). */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* partial_success.rejected_* of an Export*ServiceResponse (field 1, then
 * its field 1), protobuf or JSON; 0 when absent or unreadable. */
int64_t ot_parse_rejected(const uint8_t *p, size_t len, bool json) {
    const uint8_t *end = p + len;
    if (len == 0) {
        return 0;
    }
    if (json) {
        char tmp[256];
        size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        const char *r = strstr(tmp, "\"rejected");
        if (r == NULL || (r = strchr(r, ':')) == NULL) {
            return 0;
        }
        r++;
        while (*r == ' ' || *r == '"') {
            r++;
        }
        long long v = strtoll(r, NULL, 10);
        return v > 0 ? v : 0;
    }
    for (int level = 0; level < 2;) {
        uint64_t key, v = 0;
        if (read_varint(&p, end, &key) != 0) {
            return 0;
        }
        int wt = (int)(key & 7);
        if (wt != 0 && wt != 2) {
            return 0; /* no other wire types in these messages */
        }
        if (read_varint(&p, end, &v) != 0) {
            return 0;
        }
        if ((key >> 3) == 1 && wt == 2 && level == 0) {
            if (v > (uint64_t)(end - p)) {
                return 0;
            }
            end = p + v; /* into partial_success */
            level++;
        } else if ((key >> 3) == 1 && wt == 0 && level == 1) {
            return v > INT64_MAX ? 0 : (int64_t)v;
        } else if (wt == 2) {
            if (v > (uint64_t)(end - p)) {
                return 0;
            }
            p += v;
        }
    }
    return 0;
}

static bool transient(CURLcode cc) {
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_PEER_FAILED_VERIFICATION:
        return false; /* configuration errors: retrying cannot help */
    default:
        return true;
    }
}

static uint64_t effective_deadline(const ot_exporter *x, uint64_t deadline_ns) {
    uint64_t a = atomic_load(&x->p->abort_deadline_ns);
    return a < deadline_ns ? a : deadline_ns;
}

int ot_exporter_send(ot_exporter *x, const uint8_t *body, size_t len, uint64_t deadline_ns,
                     int64_t *rejected) {
    sl_provider *p = x->p;
    if (x->gzip) {
        if (gzip_body(x, body, len) != 0) {
            return SL_OTEL_EEXPORT;
        }
        body = x->gz.p;
        len = x->gz.len;
    }
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    for (uint32_t attempt = 0;; attempt++) {
        uint64_t now = ot_mono_ns(), dl = effective_deadline(x, deadline_ns);
        if (now >= dl) {
            ot_diag(p, SL_DIAG_WARN, "export to %s: deadline passed, batch dropped", x->url);
            return SL_OTEL_EEXPORT;
        }
        uint64_t left_ms = (dl - now) / 1000000u + 1;
        long t = (long)(left_ms < x->timeout_ms ? left_ms : x->timeout_ms);
        curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, t);
        curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, t);
        x->resp.len = 0;
        x->resp.oom = false;
        x->retry_after_ms = -1;
        atomic_fetch_add_explicit(&p->stats.export_requests, 1, memory_order_relaxed);
        CURLcode cc = curl_easy_perform(x->curl);
        long code = 0;
        if (cc == CURLE_OK) {
            curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
            if (code >= 200 && code < 300) {
                *rejected = ot_parse_rejected(x->resp.p, x->resp.len, x->json);
                return 0;
            }
        }
        bool retry = cc != CURLE_OK ? transient(cc)
                                    : (code == 429 || code == 502 || code == 503 || code == 504);
        if (!retry) {
            if (cc != CURLE_OK) {
                ot_diag(p, SL_DIAG_ERROR, "export to %s: %s", x->url, curl_easy_strerror(cc));
            } else {
                /* The body may be a protobuf Status: show its printable part. */
                char msg[201];
                size_t n = x->resp.len < 200 ? x->resp.len : 200;
                for (size_t i = 0; i < n; i++) {
                    char ch = (char)x->resp.p[i];
                    msg[i] = ch >= 0x20 && ch < 0x7f ? ch : '.';
                }
                msg[n] = '\0';
                ot_diag(p, SL_DIAG_ERROR, "export to %s: HTTP %ld (not retried): %s", x->url, code,
                        msg);
            }
            return SL_OTEL_EEXPORT;
        }
        uint64_t delay_ms;
        if (x->retry_after_ms >= 0) {
            delay_ms = (uint64_t)x->retry_after_ms;
        } else {
            uint64_t b = x->retry_initial_ms;
            for (uint32_t i = 0; i < attempt && b < x->retry_max_ms; i++) {
                b *= 2;
            }
            if (b > x->retry_max_ms) {
                b = x->retry_max_ms;
            }
            delay_ms = b / 2 + ot_random_u64() % (b / 2 + 1); /* equal jitter */
        }
        uint64_t wake = ot_mono_ns() + delay_ms * 1000000u;
        if (wake >= effective_deadline(x, deadline_ns)) {
            if (cc != CURLE_OK) {
                ot_diag(p, SL_DIAG_WARN, "export to %s: %s; no time left to retry: batch dropped",
                        x->url, curl_easy_strerror(cc));
            } else {
                ot_diag(p, SL_DIAG_WARN,
                        "export to %s: HTTP %ld; no time left to retry: batch dropped", x->url,
                        code);
            }
            return SL_OTEL_EEXPORT;
        }
        atomic_fetch_add_explicit(&p->stats.export_retries, 1, memory_order_relaxed);
        /* Sleep in short slices so that a shutdown deadline set meanwhile is
         * honoured. */
        for (;;) {
            uint64_t n = ot_mono_ns();
            uint64_t until = effective_deadline(x, wake);
            if (n >= until) {
                break;
            }
            uint64_t step = until - n < 20000000u ? until - n : 20000000u;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step};
            nanosleep(&ts, NULL);
        }
    }
}

bool ot_exporter_is_json(const ot_exporter *x) {
    return x != NULL && x->json;
}
