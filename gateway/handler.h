/* handler: the API of in-process WebSocket handlers, built in or loaded as plugins. */
#ifndef WSGATE_HANDLER_H
#define WSGATE_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/ws_frame.h"

/* The version of this API. A plugin's `wsgate_handler.abi` must equal the
 * gateway's; it changes whenever a struct below or a callback's signature
 * changes incompatibly (fields are only ever appended to the structs the
 * gateway fills, which old plugins may ignore). */
#define WSGATE_HANDLER_ABI 1

/* The symbol a plugin exports: `const struct gw_handler wsgate_handler`. */
#define WSGATE_HANDLER_SYMBOL "wsgate_handler"

struct cfg_route;
struct event_base;
struct gw_bus;

/* One WebSocket connection as a handler sees it. Valid from on_open until
 * on_close returns; never free it. */
struct gw_ws;

/* A name and a value, both NUL-terminated. */
struct gw_kv {
    const char *name;
    const char *value;
};

/* What `create` gets: once per worker thread and route, so that everything
 * the instance holds is touched by one thread only. The struct and the
 * options array are valid during create; the strings they point to (route,
 * option names and values) until destroy. */
struct gw_handler_env {
    const char *route;           /* the route's name */
    const struct gw_kv *options; /* routes[].options, in file order */
    size_t noptions;
    struct event_base *base; /* the worker's loop, for the instance's own
                                events; they must be gone after destroy */
    unsigned worker;         /* 0 .. nworkers-1 */
    unsigned nworkers;
    /* The gateway's internals for built-in handlers; plugins ignore these. */
    const struct cfg_route *cfg;
    struct gw_bus *bus;
};

/* The opening handshake, as on_open sees it. Every string is NUL-terminated
 * and valid only during on_open: copy what you keep. */
struct gw_request {
    const char *path;            /* as sent, without the query */
    const char *query;           /* after '?', without it; "" when none */
    const char *host;            /* the Host header, port included if sent */
    const char *route;           /* the route's name */
    const char *peer;            /* the client's IP address */
    const struct gw_kv *headers; /* every request header, in order, as sent */
    size_t nheaders;
    /* The authenticated identity: NULL and 0 on a route without auth. The
     * identity headers are those the route's providers set (struct
     * auth_result.headers: JWT claims, an auth service's answer), the same
     * names and values an upstream gets, X-Auth-Subject excluded. */
    const char *subject;
    const struct gw_kv *identity;
    size_t nidentity;
};

/* A handler is a table: every callback runs on the connection's worker
 * thread, so neither the instance nor per-connection data needs locks.
 * `instance` is what create returned (NULL without create). Any callback
 * may be NULL except that a table with create should have destroy. */
struct gw_handler {
    unsigned abi;     /* WSGATE_HANDLER_ABI */
    const char *name; /* for logs */
    /* Once per worker and route, when a configuration is loaded (at start
     * and after each reload, which creates new instances beside the old
     * ones). Returns 0 with *instance set, or -1 with a one-line reason in
     * err[0..errlen) (an option it cannot use, typically): the configuration
     * is then rejected, by `wsgate -t` too. To check the options before any
     * worker uses them, a plugin's create also runs once on the loading
     * thread with a throwaway event_base (worker 0 of 1), destroyed at once. */
    int (*create)(const struct gw_handler_env *env, void **instance, char *err,
                  size_t errlen);
    /* Once per create, on the same thread, when the configuration it was
     * created for is released (every connection of it closed) or at exit. */
    void (*destroy)(void *instance);
    /* The connection is open (the 101 was queued). */
    void (*on_open)(void *instance, struct gw_ws *ws, const struct gw_request *req);
    /* A whole message: WS_OP_TEXT (valid UTF-8) or WS_OP_BINARY, unmasked
     * and reassembled from its fragments. The data is valid only during the
     * call. */
    void (*on_message)(void *instance, struct gw_ws *ws, enum ws_opcode opcode,
                       const uint8_t *data, size_t len);
    /* The connection is closing or gone: code is what the peer sent (1005
     * when none), what the gateway failed it with (1002, 1007, 1009...), or
     * 1006 when it vanished without a close frame. Called exactly once for
     * every on_open; the connection may no longer be sent to. */
    void (*on_close)(void *instance, struct gw_ws *ws, uint16_t code,
                     const uint8_t *reason, size_t len);
};

/* The built-in handlers (gateway/handlers/). */
extern const struct gw_handler gw_handler_echo;
extern const struct gw_handler gw_handler_broadcast;

/* The built-in handler named `name`, or NULL ("plugin" is not one). */
const struct gw_handler *gw_handler_find(const char *name);

/* The value of option `name` in env, or NULL. */
const char *gw_handler_option(const struct gw_handler_env *env, const char *name);

/* The value of request header `name` (case-insensitive; the first of
 * several), or NULL. */
const char *gw_request_header(const struct gw_request *req, const char *name);

/* gw_ws_send's result when the route's `slow_reader: drop` dropped the
 * message: the peer's queue was over max_send_queue. */
#define GW_WS_SEND_DROPPED (-2)

/* Queues one message (WS_OP_TEXT or WS_OP_BINARY) for the peer; copies data
 * (and compresses it when permessage-deflate was negotiated and it is at
 * least deflate_threshold long). Returns 0; GW_WS_SEND_DROPPED (see above);
 * or -1 when the connection is closing — including a close this send
 * started under `slow_reader: close` — or out of memory. Never calls back. */
int gw_ws_send(struct gw_ws *ws, enum ws_opcode opcode, const void *data, size_t len);

/* An encoded server frame that many connections can send without copying:
 * for fan-out. Refcounted; may be passed between threads. */
struct gw_frame;

/* Encodes one unfragmented, uncompressed message (WS_OP_TEXT or
 * WS_OP_BINARY) into a new frame holding one reference. Returns NULL when out
 * of memory. Uncompressed frames are valid on every connection, also those
 * that negotiated permessage-deflate. */
struct gw_frame *gw_frame_new(enum ws_opcode opcode, const void *data, size_t len);
void gw_frame_ref(struct gw_frame *f);
/* Drops a reference; the last frees the frame. Any thread; NULL is ignored. */
void gw_frame_unref(struct gw_frame *f);
/* The payload's length. */
size_t gw_frame_payload_len(const struct gw_frame *f);

/* Queues frame f for the peer by reference (the connection holds its own
 * reference until the bytes are written). Same checks and results as
 * gw_ws_send (the slow_reader policy included). */
int gw_ws_send_frame(struct gw_ws *ws, struct gw_frame *f);

/* Starts the close handshake with `code` (a code valid on the wire; any
 * other, such as 1005 or 1006, is sent as 1011) and a short reason.
 * Idempotent. Never calls back synchronously. */
void gw_ws_close(struct gw_ws *ws, uint16_t code, const char *reason);

/* Per-connection user data for the handler; NULL until set. */
void gw_ws_set_data(struct gw_ws *ws, void *data);
void *gw_ws_get_data(const struct gw_ws *ws);

/* The authenticated subject, or NULL on a route without auth. Valid until
 * on_close returns. */
const char *gw_ws_subject(const struct gw_ws *ws);

#endif
