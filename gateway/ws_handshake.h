/* ws_handshake: RFC 6455 §4.2.1 opening-handshake validation and the accept key. */
#ifndef WSGATE_WS_HANDSHAKE_H
#define WSGATE_WS_HANDSHAKE_H

#include <stddef.h>

#include "gateway/http1_parse.h"

/* The length of a Sec-WebSocket-Accept value (base64 of a SHA-1), without NUL. */
#define WS_ACCEPT_LEN 28

/* What a valid upgrade request carries, as views into the request buffer.
 * A view that is absent has ptr NULL and len 0. */
struct ws_handshake {
    const char *host; /* Host header value (may include a port) */
    size_t host_len;
    const char *path; /* request-target up to '?' */
    size_t path_len;
    const char *query; /* after '?', without it; NULL when none */
    size_t query_len;
    const char *key; /* Sec-WebSocket-Key as sent */
    size_t key_len;
    const char *origin; /* Origin, if sent */
    size_t origin_len;
};

/* The outcome of a check: status 0 when valid, otherwise the HTTP status to
 * answer (400, 405, 426) with a short static reason. */
struct ws_hs_error {
    int status;
    const char *reason;
};

/* Extracts Host and the target's path and query. Needed before routing, so
 * that a malformed target or a missing/duplicate Host is a 400 before any
 * 404. The target must be origin-form ("/..."), have no fragment, and its
 * path must have no "." or ".." segments (also percent-encoded): those would
 * let a path dodge a route's prefix. Returns 0, or -1 with *err filled. */
int ws_handshake_target(const struct http1_request *req, struct ws_handshake *hs,
                        struct ws_hs_error *err);

/* Validates the rest of the opening handshake once a WebSocket route matched:
 * method GET (else 405), HTTP/1.1 or later (400), "Upgrade: websocket" (426
 * when absent or another protocol), "Connection" containing "upgrade" (400),
 * exactly one Sec-WebSocket-Version equal to "13" (426), exactly one
 * Sec-WebSocket-Key that is base64 of 16 bytes (400), no body (no
 * Transfer-Encoding, Content-Length only 0: 400). Fills key and origin in
 * *hs. Returns 0, or -1 with *err filled. */
int ws_handshake_validate(const struct http1_request *req, struct ws_handshake *hs,
                          struct ws_hs_error *err);

/* Computes Sec-WebSocket-Accept for key[0..key_len) into out (WS_ACCEPT_LEN
 * characters plus a NUL). Returns 0, or -1 if OpenSSL fails. */
int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

#endif
