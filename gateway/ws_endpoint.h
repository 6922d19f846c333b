/* ws_endpoint: the server side of an RFC 6455 connection, driving a handler. */
#ifndef WSGATE_WS_ENDPOINT_H
#define WSGATE_WS_ENDPOINT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/handler.h"

#include "config/config.h"
#include "gateway/ws_deflate.h"

struct bufferevent;

/* What a route's endpoints count together, across workers (relaxed atomics:
 * the events are rare). One per route, in the configuration snapshot, so
 * they count from the last (re)load. */
struct gw_ws_counters {
    atomic_uint_fast64_t slow_reader_closes; /* connections closed with 1008 */
    atomic_uint_fast64_t slow_reader_drops;  /* messages dropped */
};

/* What the endpoint needs from the connection that owns it. */
struct gw_ws_env {
    uint64_t max_message_size; /* a bigger message is closed with 1009 */
    uint64_t idle_timeout_ms;  /* no frame from the peer for this long: close
                                  1001; nothing of its queue read this long:
                                  drop the connection */
    uint64_t close_timeout_ms; /* wait this long for the peer's close frame */
    uint64_t ping_interval_ms; /* send a ping this often; 0: never */
    uint64_t max_send_queue;   /* bytes queued for the peer beyond which a
                                  message meets slow_reader */
    enum cfg_slow_reader slow_reader;
    /* permessage-deflate as negotiated (copied), or NULL when not. */
    const struct ws_deflate_params *deflate;
    uint64_t deflate_threshold;      /* smaller messages go out uncompressed */
    struct gw_ws_counters *counters; /* the route's; may be NULL */
    const char *route;               /* for log lines; outlives the endpoint */
    uint64_t conn_id;                /* for log lines */
    /* Called once when the endpoint is finished and the TCP connection should
     * be closed; may be called from inside any gw_ws_on_* function, so the
     * owner must defer freeing (and must not call back into the endpoint
     * except gw_ws_free). `graceful` is true when all output was flushed and
     * the peer may still be sending: half-close and drain its bytes instead
     * of resetting it; false when the peer is gone or timed out. */
    void (*finished)(void *owner, bool graceful);
    void *owner;
};

/* Creates an endpoint over bev, which stays owned by the caller (who routes
 * its callbacks to gw_ws_on_read, _on_write, _on_timeout and _on_eof), for
 * handler with its per-worker instance. Copies env and subject. Returns NULL
 * when out of memory. */
struct gw_ws *gw_ws_new(struct bufferevent *bev, const struct gw_handler *handler,
                        void *instance, const struct gw_ws_env *env, const char *subject);

/* Calls the handler's on_open with req (valid during the call), sets the endpoint's
 * timeouts on bev, and processes any frames already in bev's input (bytes that arrived
 * with the request head). May call env->finished. */
void gw_ws_start(struct gw_ws *ws, const struct gw_request *req);

/* bev's input has data / its output drained below the low mark / a read or
 * write timeout fired (`writing`: the peer stopped reading) / the peer
 * closed or the socket failed. */
void gw_ws_on_read(struct gw_ws *ws);
void gw_ws_on_write(struct gw_ws *ws);
void gw_ws_on_timeout(struct gw_ws *ws, bool writing);
void gw_ws_on_eof(struct gw_ws *ws);

/* Frees the endpoint; calls the handler's on_close with 1006 if it has not
 * been called. Does not touch bev beyond what was queued. */
void gw_ws_free(struct gw_ws *ws);

#endif
