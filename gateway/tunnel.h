/* tunnel: relays frames between a client and its upstream, tracking boundaries. */
#ifndef WSGATE_TUNNEL_H
#define WSGATE_TUNNEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct gw_tunnel;

/* What a route's tunnels count together, across workers, since the
 * configuration was (re)loaded: each tunnel adds its totals when it ends,
 * so the relay itself touches no shared cache line. */
struct gw_tunnel_counters {
    atomic_uint_fast64_t tunnels;
    atomic_uint_fast64_t msgs_up, msgs_down;   /* data messages, each way */
    atomic_uint_fast64_t bytes_up, bytes_down; /* frame bytes, each way */
    atomic_uint_fast64_t too_big;              /* tunnels closed with 1009 */
};

struct gw_tunnel_env {
    uint64_t max_message_size;           /* a larger message: close 1009 to both sides */
    uint64_t idle_timeout_ms;            /* no byte either way this long: close 1001 */
    uint64_t close_timeout_ms;           /* a close that cannot complete: drop both */
    size_t buffer;                       /* queued bytes per direction before pausing */
    const char *route;                   /* for the log */
    uint64_t conn_id;                    /* for the log */
    struct gw_tunnel_counters *counters; /* the route's; may be NULL */
    /* Called once when both connections should be closed; may be called
     * from inside any tunnel callback, so the owner defers freeing. */
    void (*finished)(void *owner);
    void *owner;
};

/* Relays between client (owned by the caller, which keeps freeing it) and
 * upstream (owned by the tunnel from now on). Replaces both bufferevents'
 * callbacks. Bytes either already holds are relayed when started. Returns
 * NULL when out of memory (upstream is then freed). */
struct gw_tunnel *gw_tunnel_new(struct bufferevent *client, struct bufferevent *upstream,
                                const struct gw_tunnel_env *env);

/* Starts relaying; may call env->finished. */
void gw_tunnel_start(struct gw_tunnel *t);

/* Sends close `code` with `reason` (a string that outlives the tunnel, such
 * as a literal) to both sides, each at its next frame boundary, and
 * finishes once both are flushed (or the close timeout passes). Idempotent:
 * the first close wins. */
void gw_tunnel_close(struct gw_tunnel *t, uint16_t code, const char *reason);

/* Sends close 1001 to both sides, each at its next frame boundary, and
 * finishes once both are flushed (or the close timeout passes). */
void gw_tunnel_drain(struct gw_tunnel *t);

/* Frees the tunnel and the upstream connection; logs the counts. */
void gw_tunnel_free(struct gw_tunnel *t);

#endif
