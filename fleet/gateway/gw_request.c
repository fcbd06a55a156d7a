/*
 * Request checks and answer pieces of the gateway; see gw_request.h.
 */
#include "gw_request.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool reject(gw_verdict *v, int status, const char *code, const char *msg) {
    v->status = status;
    v->code = code;
    snprintf(v->message, sizeof(v->message), "%s", msg);
    return false;
}

bool gw_check_path(const char *path, size_t len, size_t max, gw_verdict *v) {
    v->status = 0;
    if (len > max) {
        return reject(v, 414, "uri_too_long", "the request path is too long");
    }
    if (len == 0 || path[0] != '/') {
        return reject(v, 400, "bad_path", "the request path must start with '/'");
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\') {
            return reject(v, 400, "bad_path", "the request path holds a forbidden character");
        }
        if (c == '%' && i + 2 < len) {
            char a = path[i + 1], b = (char)(path[i + 2] | 0x20);
            if (a == '0' && b == '0') {
                return reject(v, 400, "bad_path", "the request path holds an encoded NUL");
            }
            if ((a == '2' && b == 'f') || (a == '5' && b == 'c') || (a == '2' && b == 'e')) {
                return reject(v, 400, "bad_path",
                              "the request path holds an encoded '/', '\\' or '.'");
            }
        }
        if (c == '/' && i + 1 < len) {
            const char *seg = path + i + 1;
            size_t rest = len - i - 1;
            if (seg[0] == '/') {
                return reject(v, 400, "bad_path", "the request path holds an empty segment");
            }
            if (seg[0] == '.' &&
                (rest == 1 || seg[1] == '/' || (seg[1] == '.' && (rest == 2 || seg[2] == '/')))) {
                return reject(v, 400, "bad_path", "the request path holds a dot segment");
            }
        }
    }
    return true;
}

/* Refuses n > max with status and code, naming what (headers, body). */
static bool check_size(uint64_t n, size_t max, int status, const char *code, const char *what,
                       gw_verdict *v) {
    v->status = 0;
    if (n > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the request %s exceed%s %zu bytes", what,
                 strcmp(what, "body") == 0 ? "s" : "", max);
        return reject(v, status, code, msg);
    }
    return true;
}

bool gw_check_header_bytes(size_t bytes, size_t max, gw_verdict *v) {
    return check_size(bytes, max, 431, "headers_too_large", "headers", v);
}

bool gw_check_body_size(uint64_t declared, size_t max, gw_verdict *v) {
    return check_size(declared, max, 413, "body_too_large", "body", v);
}

static bool is_json_type(const char *ct) {
    if (ct == NULL) {
        return false;
    }
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ') {
        n--;
    }
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) {
        return true;
    }
    /* application/<something>+json (problem+json, merge-patch+json). */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

bool gw_check_body(const char *content_type, const char *body, size_t len, size_t max,
                   gw_verdict *v) {
    v->status = 0;
    if (!gw_check_body_size(len, max, v)) {
        return false;
    }
    if (len == 0) {
        return true;
    }
    if (!is_json_type(content_type)) {
        return reject(v, 415, "unsupported_media_type", "request bodies must be application/json");
    }
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL || !(json_is_object(j) || json_is_array(j))) {
        char msg[200];
        snprintf(msg, sizeof(msg), "the request body is not a JSON object or array%s%.120s",
                 j == NULL ? ": " : "", j == NULL ? err.text : "");
        json_decref(j);
        return reject(v, 400, "invalid_json", msg);
    }
    json_decref(j);
    return true;
}

char *gw_error_body(int status, const char *code, const char *message) {
    json_t *j = json_pack("{s{sissss}}", "error", "status", status, "code", code, "message",
                          message != NULL ? message : "");
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

void gw_route_deprecation(const gw_route *r, const char *rest, gw_deprecation *out) {
    out->deprecation[0] = out->sunset[0] = out->link[0] = '\0';
    if (r->deprecated_unix > 0) {
        snprintf(out->deprecation, sizeof(out->deprecation), "@%" PRId64, r->deprecated_unix);
    }
    if (r->sunset_unix > 0) {
        gw_http_date(r->sunset_unix, out->sunset);
    }
    if (r->successor != NULL) {
        /* Only safe characters reach the header: the path passed gw_check_path. */
        const char *sep = rest != NULL && rest[0] != '\0' && rest[0] != '/' ? "/" : "";
        snprintf(out->link, sizeof(out->link), "<%s%s%.400s>; rel=\"successor-version\"",
                 r->successor, sep, rest != NULL ? rest : "");
    }
}
