/* tls: OpenSSL server contexts for TLS listeners. */
#include "gateway/tls.h"

#include <openssl/err.h>
#include <string.h>

void
gw_tls_errors(char *buf, size_t bufsz)
{
    size_t o = 0;
    unsigned long e;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        int n = snprintf(buf + o, bufsz - o, "%s%s", o ? "; " : "", one);
        if (n < 0 || (size_t)n >= bufsz - o)
            o = bufsz - 1;
        else
            o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, bufsz, "unknown TLS error");
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *
gw_tls_server_ctx(const struct cfg_tls *tls, struct gw_err *err)
{
    char detail[400];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1)
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1)
        goto fail;
    if (SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;
fail:
    gw_tls_errors(detail, sizeof(detail));
    gw_err_set(err, "TLS certificate %s / key %s: %s", tls->certificate, tls->key,
               detail);
    SSL_CTX_free(ctx);
    return NULL;
}
