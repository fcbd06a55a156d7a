/*
 * Bearer tokens (see sl_auth.h). The table is an array of (SHA-256, tenant,
 * scopes) rows, immutable once loaded; a reload builds a new one and swaps
 * the pointer under the write lock. A lookup hashes the presented token and
 * compares it with every row in constant time (CRYPTO_memcmp, no early exit),
 * so neither the match nor its position shows in the timing.
 */
#include "sl_auth.h"

#include "sl_buf.h"
#include "sl_err.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct token_row {
    unsigned char hash[32];
    char tenant[65];
    unsigned scopes;
} token_row;

typedef struct token_table {
    token_row *rows;
    size_t n;
} token_table;

struct sl_auth {
    pthread_rwlock_t lock;
    token_table *table; /* NULL: authentication off */
};

bool sl_tenant_valid(sl_str name) {
    if (name.len == 0 || name.len > 64 || sl_str_eqc(name, ".") || sl_str_eqc(name, "..")) {
        return false;
    }
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

static void table_free(token_table *t) {
    if (t != NULL) {
        if (t->rows != NULL) {
            OPENSSL_cleanse(t->rows, t->n * sizeof(*t->rows));
        }
        free(t->rows);
        free(t);
    }
}

int sl_auth_new(sl_auth **out) {
    sl_auth *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return SL_ENOMEM;
    }
    pthread_rwlock_init(&a->lock, NULL);
    *out = a;
    return 0;
}

void sl_auth_free(sl_auth *a) {
    if (a != NULL) {
        table_free(a->table);
        pthread_rwlock_destroy(&a->lock);
        free(a);
    }
}

static int sha256(const void *data, size_t len, unsigned char out[32]) {
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : SL_ENOMEM;
}

int sl_auth_hash_hex(sl_str token, char hex[65]) {
    unsigned char h[32];
    int rc = sha256(token.ptr, token.len, h);
    if (rc == 0) {
        static const char digits[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            hex[2 * i] = digits[h[i] >> 4];
            hex[2 * i + 1] = digits[h[i] & 15];
        }
        hex[64] = '\0';
    }
    return rc;
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Splits off the next whitespace-separated field of *s. */
static sl_str next_field(sl_str *s) {
    size_t i = 0;
    while (i < s->len && (s->ptr[i] == ' ' || s->ptr[i] == '\t')) {
        i++;
    }
    size_t j = i;
    while (j < s->len && s->ptr[j] != ' ' && s->ptr[j] != '\t') {
        j++;
    }
    sl_str f = {s->ptr + i, j - i};
    s->ptr += j;
    s->len -= j;
    return f;
}

static int parse_scopes(sl_str f, unsigned *out) {
    *out = 0;
    while (f.len > 0) {
        size_t k = 0;
        while (k < f.len && f.ptr[k] != ',') {
            k++;
        }
        sl_str w = {f.ptr, k};
        if (sl_str_eqc(w, "ingest")) {
            *out |= SL_SCOPE_INGEST;
        } else if (sl_str_eqc(w, "query")) {
            *out |= SL_SCOPE_QUERY;
        } else if (sl_str_eqc(w, "admin")) {
            *out |= SL_SCOPE_ADMIN;
        } else {
            return SL_EINVAL;
        }
        f.ptr += k < f.len ? k + 1 : k;
        f.len -= k < f.len ? k + 1 : k;
    }
    return *out != 0 ? 0 : SL_EINVAL;
}

/* One line into row. Returns 0, 1 (blank or comment) or SL_EINVAL. */
static int parse_line(sl_str line, token_row *row, const char **why) {
    sl_str rest = line;
    sl_str hash = next_field(&rest);
    if (hash.len == 0 || hash.ptr[0] == '#') {
        return 1;
    }
    if (hash.len > 7 && memcmp(hash.ptr, "sha256:", 7) == 0) {
        hash.ptr += 7;
        hash.len -= 7;
    }
    if (hash.len != 64) {
        *why = "the first field must be the token's SHA-256 as 64 hex digits";
        return SL_EINVAL;
    }
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hash.ptr[2 * i]), lo = hexval(hash.ptr[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            *why = "the first field must be the token's SHA-256 as 64 hex digits";
            return SL_EINVAL;
        }
        row->hash[i] = (unsigned char)(hi << 4 | lo);
    }
    sl_str tenant = next_field(&rest);
    if (!sl_tenant_valid(tenant)) {
        *why = "the second field must be a tenant id (1-64 of [A-Za-z0-9_.-])";
        return SL_EINVAL;
    }
    memcpy(row->tenant, tenant.ptr, tenant.len);
    row->tenant[tenant.len] = '\0';
    if (parse_scopes(next_field(&rest), &row->scopes) != 0) {
        *why = "the third field must be scopes: ingest, query and/or admin, comma-separated";
        return SL_EINVAL;
    }
    if (next_field(&rest).len != 0) {
        *why = "unexpected text after the scopes";
        return SL_EINVAL;
    }
    return 0;
}

int sl_auth_reload(sl_auth *a, const char *path, size_t *ntokens, char *err, size_t errcap) {
    if (errcap > 0) {
        err[0] = '\0';
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        if (errcap > 0) {
            snprintf(err, errcap, "cannot read %s: %s", path, strerror(e));
        }
        return -e;
    }
    token_table *t = calloc(1, sizeof(*t));
    size_t cap = 0;
    int rc = t == NULL ? SL_ENOMEM : 0;
    char line[1024];
    int lineno = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        if (len == sizeof(line) - 1) {
            rc = SL_EINVAL;
            snprintf(err, errcap, "%s:%d: line too long", path, lineno);
            break;
        }
        token_row row;
        const char *why = NULL;
        int prc = parse_line((sl_str){line, len}, &row, &why);
        if (prc == 1) {
            continue;
        }
        if (prc != 0) {
            rc = SL_EINVAL;
            if (errcap > 0) {
                snprintf(err, errcap, "%s:%d: %s", path, lineno, why);
            }
            break;
        }
        if ((rc = sl_array_grow(&t->rows, &cap, t->n + 1, sizeof(*t->rows))) == 0) {
            t->rows[t->n++] = row;
        }
        OPENSSL_cleanse(&row, sizeof(row));
    }
    OPENSSL_cleanse(line, sizeof(line));
    if (rc == 0 && ferror(f)) {
        rc = SL_EINVAL;
        snprintf(err, errcap, "cannot read %s", path);
    }
    fclose(f);
    if (rc != 0) {
        table_free(t);
        return rc;
    }
    pthread_rwlock_wrlock(&a->lock);
    token_table *old = a->table;
    a->table = t;
    pthread_rwlock_unlock(&a->lock);
    table_free(old);
    if (ntokens != NULL) {
        *ntokens = t->n;
    }
    return 0;
}

bool sl_auth_enabled(sl_auth *a) {
    if (a == NULL) {
        return false;
    }
    pthread_rwlock_rdlock(&a->lock);
    bool on = a->table != NULL;
    pthread_rwlock_unlock(&a->lock);
    return on;
}

/* The token of an Authorization header value ("Bearer <token>", the scheme
 * case-insensitive), or an empty view. */
static sl_str bearer_token(const sl_str *h) {
    sl_str none = {"", 0};
    if (h == NULL || h->len < 7 || strncasecmp(h->ptr, "bearer ", 7) != 0) {
        return none;
    }
    sl_str t = {h->ptr + 7, h->len - 7};
    while (t.len > 0 && t.ptr[0] == ' ') {
        t.ptr++;
        t.len--;
    }
    while (t.len > 0 && (t.ptr[t.len - 1] == ' ' || t.ptr[t.len - 1] == '\t')) {
        t.len--;
    }
    return t;
}

int sl_auth_decide(sl_auth *a, const sl_str *authorization, const sl_str *orgid, unsigned scope,
                   char tenant[65], const char **why) {
    bool has_org = orgid != NULL && orgid->len > 0;
    if (has_org && !sl_tenant_valid(*orgid)) {
        *why = "invalid X-Scope-OrgID: 1-64 characters of [A-Za-z0-9_.-]";
        return 400;
    }
    if (a != NULL) {
        pthread_rwlock_rdlock(&a->lock);
    }
    token_table *t = a != NULL ? a->table : NULL;
    int status = 0;
    if (t == NULL) {
        if (has_org) {
            memcpy(tenant, orgid->ptr, orgid->len);
            tenant[orgid->len] = '\0';
        } else {
            memcpy(tenant, "default", 8);
        }
    } else {
        sl_str tok = bearer_token(authorization);
        unsigned char h[32];
        const token_row *match = NULL;
        if (tok.len > 0 && sha256(tok.ptr, tok.len, h) == 0) {
            for (size_t i = 0; i < t->n; i++) {
                /* Every row is compared: no early exit. */
                bool eq = CRYPTO_memcmp(h, t->rows[i].hash, 32) == 0;
                match = eq && match == NULL ? &t->rows[i] : match;
            }
            OPENSSL_cleanse(h, sizeof(h));
        }
        if (match == NULL) {
            status = 401;
            *why = tok.len == 0 ? "authentication required: send Authorization: Bearer <token>"
                                : "invalid token";
        } else if ((match->scopes & scope) != scope) {
            status = 403;
            *why = "the token does not allow this operation";
        } else if (has_org && !sl_str_eqc(*orgid, match->tenant)) {
            status = 403;
            *why = "the token does not allow this tenant";
        } else {
            memcpy(tenant, match->tenant, strlen(match->tenant) + 1);
        }
    }
    if (a != NULL) {
        pthread_rwlock_unlock(&a->lock);
    }
    return status;
}
