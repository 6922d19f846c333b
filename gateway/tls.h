/* tls: OpenSSL server contexts for TLS listeners. */
#ifndef WSGATE_TLS_H
#define WSGATE_TLS_H

#include <openssl/ssl.h>

#include "config/config.h"

/* Builds a server context from the PEM certificate chain and key in tls:
 * TLS 1.2 or later, ALPN "http/1.1" only (WebSocket over HTTP/2 is not
 * offered). Returns NULL with the OpenSSL error queue drained into err. */
SSL_CTX *gw_tls_server_ctx(const struct cfg_tls *tls, struct gw_err *err);

/* Drains OpenSSL's error queue of this thread into one line in buf. */
void gw_tls_errors(char *buf, size_t bufsz);

#endif
