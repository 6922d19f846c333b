/* response: the HTTP responses the gateway writes before a connection upgrades. */
#ifndef WSGATE_RESPONSE_H
#define WSGATE_RESPONSE_H

#include <stddef.h>

#include "gateway/ws_handshake.h"

struct evbuffer;

/* Extra header lines for an error response; NULL fields are left out. */
struct gw_response_extra {
    const char *www_authenticate; /* value for 401 (and 403 when given) */
    unsigned retry_after;         /* seconds, for 429 and 503; 0 leaves it out */
};

/* Appends a complete error response for `status` to out: status line with
 * the standard reason phrase, the headers the status requires (Allow: GET
 * for 405; Upgrade and Sec-WebSocket-Version: 13 for 426; WWW-Authenticate
 * for 401; Retry-After where given), Connection: close, Content-Type:
 * text/plain, Content-Length, and `body` plus a newline. Returns 0, or -1
 * when the status is not one the gateway sends or out of memory. */
int gw_response_error(struct evbuffer *out, int status, const char *body,
                      const struct gw_response_extra *extra);

/* The reason phrase of a status the gateway sends, or NULL for another. */
const char *gw_response_reason(int status);

/* Appends the 101 Switching Protocols response with Sec-WebSocket-Accept
 * computed from the client's key, and a Sec-WebSocket-Extensions line when
 * `extensions` is not NULL. Returns 0, or -1 on failure. */
int gw_response_upgrade(struct evbuffer *out, const char *key, size_t key_len,
                        const char *extensions);

#endif
