/*
 * TLS for the OTLP receivers, on OpenSSL with memory BIOs so that libuv keeps
 * doing the socket I/O: ciphertext read from the socket is written into the
 * connection's read BIO and plaintext comes out of SSL_read; plaintext to
 * send goes into SSL_write and the ciphertext is drained from the write BIO
 * into a buffer for uv_write. Handshake records flow the same way. TLS 1.2
 * and later only; ALPN picks h2 on the gRPC port and http/1.1 on the HTTP
 * port; with a client CA every client must present a certificate it signed
 * (mTLS). Loop thread only (one SSL per connection); the SSL_CTX is shared
 * read-only.
 */
#include "col_int.h"

#include "sl_err.h"
#include "sl_log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

struct col_tls {
    SSL *ssl;
    BIO *rbio;     /* network -> SSL */
    BIO *wbio;     /* SSL -> network */
    sl_buf before; /* plaintext written before the handshake finished */
};

static unsigned char alpn_h2[] = "\x02h2";
static unsigned char alpn_http1[] = "\x08http/1.1";

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const unsigned char *want = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, want, (unsigned)want[0] + 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        /* No common protocol: carry on without ALPN (HTTP/1.1 clients often
         * send none); a gRPC client without h2 fails on its own. */
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void ssl_err(char *err, size_t cap, const char *what, const char *path) {
    unsigned long e = ERR_get_error();
    char buf[200];
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, cap, "%s %s: %s", what, path != NULL ? path : "", e != 0 ? buf : "failed");
    ERR_clear_error();
}

SSL_CTX *col_tls_ctx_new(const char *cert, const char *key, const char *client_ca, bool h2,
                         char *err, size_t errcap) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, errcap, "cannot create a TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_err(err, errcap, "cannot load the TLS certificate", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, errcap, "cannot load the TLS key (or it does not match the certificate)", key);
        goto fail;
    }
    if (client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            ssl_err(err, errcap, "cannot load the client CA", client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, h2 ? alpn_h2 : alpn_http1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void col_tls_ctx_free(SSL_CTX *ctx) {
    SSL_CTX_free(ctx);
}

col_tls *col_tls_new(SSL_CTX *ctx) {
    col_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns them now */
    SSL_set_accept_state(t->ssl);
    sl_buf_init(&t->before, 1u << 20);
    return t;
}

void col_tls_free(col_tls *t) {
    if (t != NULL) {
        SSL_free(t->ssl);
        sl_buf_free(&t->before);
        free(t);
    }
}

static int write_plain(col_tls *t, const void *data, size_t n, sl_buf *out);

/* Moves pending ciphertext from the write BIO to out. */
static int drain(col_tls *t, sl_buf *out) {
    char buf[16384];
    int n;
    while ((n = BIO_read(t->wbio, buf, sizeof(buf))) > 0) {
        if (sl_buf_append(out, buf, (size_t)n) != 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

int col_tls_recv(col_tls *t, const void *in, size_t n, sl_buf *plain, sl_buf *out) {
    size_t off = 0;
    while (off < n) {
        int w = BIO_write(t->rbio, (const char *)in + off, (int)(n - off));
        if (w <= 0) {
            return SL_ENOMEM;
        }
        off += (size_t)w;
        for (;;) {
            char buf[16384];
            int r = SSL_read(t->ssl, buf, sizeof(buf));
            if (r > 0) {
                if (sl_buf_append(plain, buf, (size_t)r) != 0) {
                    return SL_ENOMEM;
                }
                continue;
            }
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (SSL_is_init_finished(t->ssl) && t->before.len > 0) {
                    int rc = write_plain(t, t->before.data, t->before.len, out);
                    sl_buf_free(&t->before);
                    if (rc != 0) {
                        return rc;
                    }
                }
                break; /* needs more ciphertext (or has handshake data to send) */
            }
            if (e == SSL_ERROR_ZERO_RETURN) {
                drain(t, out);
                return SL_ESHUTDOWN; /* close_notify */
            }
            unsigned long code = ERR_peek_error();
            char why[160];
            ERR_error_string_n(code, why, sizeof(why));
            SL_LOG_D("collector", "TLS: %s", code != 0 ? why : "connection error");
            ERR_clear_error();
            drain(t, out); /* an alert for the peer, when there is one */
            return SL_EDECODE;
        }
    }
    return drain(t, out);
}

int col_tls_send(col_tls *t, const void *data, size_t n, sl_buf *out) {
    if (!SSL_is_init_finished(t->ssl)) {
        /* e.g. the HTTP/2 server preface, queued at accept: sent once the
         * handshake is through. */
        return sl_buf_append(&t->before, data, n);
    }
    return write_plain(t, data, n, out);
}

static int write_plain(col_tls *t, const void *data, size_t n, sl_buf *out) {
    size_t off = 0;
    while (off < n) {
        int w = SSL_write(t->ssl, (const char *)data + off, (int)(n - off));
        if (w <= 0) {
            ERR_clear_error();
            return SL_EDECODE; /* handshake not done or connection failed */
        }
        off += (size_t)w;
        if (drain(t, out) != 0) {
            return SL_ENOMEM;
        }
    }
    return drain(t, out);
}
