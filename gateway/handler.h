/* handler: the API of in-process WebSocket handlers (echo and those to come). */
#ifndef WSGATE_HANDLER_H
#define WSGATE_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/ws_frame.h"

/* One WebSocket connection as a handler sees it. Valid from on_open until
 * on_close returns; never free it. */
struct gw_ws;

/* A handler is a table of callbacks; all run on the connection's worker
 * thread, so a handler's per-connection state needs no locks. Any callback
 * may be NULL. */
struct gw_handler {
    const char *name;
    /* The connection is open (the 101 was sent). */
    void (*on_open)(struct gw_ws *ws);
    /* A whole message: WS_OP_TEXT or WS_OP_BINARY, payload unmasked. The
     * data is valid only during the call. */
    void (*on_message)(struct gw_ws *ws, enum ws_opcode opcode, const uint8_t *data,
                       size_t len);
    /* The connection is closing or gone: code is what the peer sent (1005
     * when none) or 1006 when it vanished without a close frame. Called
     * exactly once; the connection may no longer be sent to. */
    void (*on_close)(struct gw_ws *ws, uint16_t code, const uint8_t *reason, size_t len);
};

/* The built-in handlers (gateway/handlers/). */
extern const struct gw_handler gw_handler_echo;

/* The built-in handler named `name`, or NULL. */
const struct gw_handler *gw_handler_find(const char *name);

/* gw_ws_send's result when the route's `slow_reader: drop` dropped the
 * message: the peer's queue was over max_send_queue. */
#define GW_WS_SEND_DROPPED (-2)

/* Queues one message (WS_OP_TEXT or WS_OP_BINARY) for the peer; copies data
 * (and compresses it when permessage-deflate was negotiated and it is at
 * least deflate_threshold long). Returns 0; GW_WS_SEND_DROPPED (see above);
 * or -1 when the connection is closing — including a close this send
 * started under `slow_reader: close` — or out of memory. Never calls back. */
int gw_ws_send(struct gw_ws *ws, enum ws_opcode opcode, const void *data, size_t len);

/* Starts the close handshake with `code` (a code valid on the wire; any
 * other, such as 1005 or 1006, is sent as 1011) and a short reason.
 * Idempotent. Never calls back synchronously. */
void gw_ws_close(struct gw_ws *ws, uint16_t code, const char *reason);

/* Per-connection user data for the handler; NULL until set. */
void gw_ws_set_data(struct gw_ws *ws, void *data);
void *gw_ws_get_data(const struct gw_ws *ws);

/* The authenticated subject, or NULL on a route without auth. */
const char *gw_ws_subject(const struct gw_ws *ws);

#endif
