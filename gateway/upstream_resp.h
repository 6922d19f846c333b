/* upstream_resp: checks an upstream's answer to the upgrade and builds the client's. */
#ifndef WSGATE_UPSTREAM_RESP_H
#define WSGATE_UPSTREAM_RESP_H

#include <stddef.h>

#include "gateway/http1_parse.h"

enum upstream_verdict {
    UPSTREAM_INVALID = 0, /* not a usable answer: 502 to the client */
    UPSTREAM_REFUSED,     /* a non-101 answer to pass to the client */
    UPSTREAM_ACCEPTED,    /* a valid 101 */
};

/* What the client offered, as the forwarded header values (views; NULL and
 * 0 when not sent). Several header lines are joined by the caller with
 * ", ". */
struct upstream_offer {
    const char *key; /* Sec-WebSocket-Key */
    size_t key_len;
    const char *protocols; /* Sec-WebSocket-Protocol as forwarded */
    size_t protocols_len;
    const char *extensions; /* Sec-WebSocket-Extensions as forwarded */
    size_t extensions_len;
};

/* What a valid 101 chose (views into the response). */
struct upstream_choice {
    const char *protocol; /* NULL when none */
    size_t protocol_len;
    const char *extensions; /* NULL when none */
    size_t extensions_len;
    const char *reason; /* why UPSTREAM_INVALID, for logs and the 502 body */
};

/* Judges resp against the offer: a 101 must carry Upgrade: websocket,
 * Connection: upgrade, the Sec-WebSocket-Accept for offer->key, at most one
 * Sec-WebSocket-Protocol that is one of the offered protocols, and only
 * extensions whose names were offered (each extension's parameters as the
 * upstream answered them); a 1xx other than 101, 2xx or 3xx is invalid; a
 * 4xx or 5xx is UPSTREAM_REFUSED (passed through). Fills *choice. Pure. */
enum upstream_verdict upstream_resp_check(const struct http1_response *resp,
                                          const struct upstream_offer *offer,
                                          struct upstream_choice *choice);

/* Writes the client's 101 (Upgrade, Connection, Sec-WebSocket-Accept for
 * key, and the choice's protocol and extensions) into out[0..cap); returns
 * its length or -1 when it does not fit. */
int upstream_resp_client_101(const char *key, size_t key_len,
                             const struct upstream_choice *choice, char *out, size_t cap);

#endif
