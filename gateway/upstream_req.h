/* upstream_req: builds the upgrade request a proxied route sends upstream. */
#ifndef WSGATE_UPSTREAM_REQ_H
#define WSGATE_UPSTREAM_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/http1_parse.h"
#include "gateway/ws_handshake.h"

/* A header to set (identity headers from the auth provider). */
struct upstream_header {
    const char *name;
    const char *value;
};

/* Everything the request depends on. Views stay owned by the caller. */
struct upstream_req_params {
    const struct http1_request *req; /* the client's request */
    const struct ws_handshake *hs;   /* its host, path, query */
    size_t strip_len;          /* bytes of the path to drop (strip_prefix), 0 for none */
    const char *upstream_path; /* the upstream URL's path prefix, "" for none */
    const char *host;          /* Host to send; NULL keeps the client's */
    const char *client_ip;     /* for X-Forwarded-For */
    bool client_tls;           /* X-Forwarded-Proto: https or http */
    const char *request_id;    /* X-Request-Id when the client sent none */
    /* The credential the gateway consumed, which must not travel on. */
    const char *drop_query_param; /* query parameter name, or NULL */
    const char *drop_cookie;      /* cookie name, or NULL */
    bool drop_authorization;      /* remove Authorization */
    bool drop_bearer_protocol;    /* remove "bearer.*" Sec-WebSocket-Protocol entries */
    /* Set after removing client copies; an entry whose value is NULL only
     * removes them, so identity cannot be spoofed on routes without auth. */
    const struct upstream_header *identity;
    size_t nidentity;
};

/* Writes the upstream request head into out[0..cap): "GET <path> HTTP/1.1",
 * where path is upstream_path + (client path minus strip_len, kept starting
 * with '/') + the query without drop_query_param; Host; the client's other
 * end-to-end headers in order, except hop-by-hop ones (Connection, the
 * headers it names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding,
 * Upgrade), Forwarded/X-Forwarded-* (replaced), X-Real-IP, the consumed
 * credential, and any header named like an identity header; then Upgrade:
 * websocket, Connection: Upgrade, X-Forwarded-For (appended to the client's
 * list), X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id, and the identity
 * headers. The client's Sec-WebSocket-Key, -Version, -Protocol (less
 * bearer.* entries, and left out when none remain) and -Extensions are
 * forwarded. Returns the length written, or -1 when it does not fit in cap.
 * Pure; allocates nothing. */
int upstream_req_build(const struct upstream_req_params *p, char *out, size_t cap);

/* Writes the Sec-WebSocket-Protocol list that upstream_req_build forwards
 * for p (elements joined with ", ", bearer.* entries dropped as p says) into
 * out[0..cap) with a NUL, so that an upstream's choice is checked against
 * what it was offered. Returns the list's length (0 when nothing is
 * forwarded), or -1 when it does not fit. Pure. */
int upstream_req_protocols(const struct upstream_req_params *p, char *out, size_t cap);

/* The same for Sec-WebSocket-Extensions: every line's elements, joined as
 * upstream_req_build forwards them. */
int upstream_req_extensions(const struct upstream_req_params *p, char *out, size_t cap);

#endif
