/* upstream: connects to a route's upstream and relays the upgrade, with retries. */
#ifndef WSGATE_UPSTREAM_H
#define WSGATE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "gateway/upstream_resp.h"

struct bufferevent;
struct event_base;
struct evdns_base;
struct gw_up;

/* One route's upstreams as one worker sees them: the balancer, each
 * upstream's cached address, and the TLS context for wss://. */
struct gw_up_route;

/* Creates the state of an upstream route for one worker; loads the
 * route's CA file and client certificate (files are read only here, at
 * start and reload). Returns NULL with err filled. */
struct gw_up_route *gw_up_route_new(const struct cfg_route *route, unsigned seed,
                                    struct gw_err *err);
void gw_up_route_free(struct gw_up_route *ur);

/* The outcome of a proxied upgrade. */
struct gw_up_result {
    int status;              /* 101, or the HTTP status the client gets */
    struct bufferevent *bev; /* 101 only: the upstream connection, now the
                                caller's; its input may already hold frames */
    const char *response;    /* the complete response for the client */
    size_t response_len;
    const char *reason; /* short text for the log */
    size_t upstream;    /* index of the upstream that answered (or last tried) */
};

/* Called once with the outcome; `res` and its strings are valid only during
 * the call. Never called after gw_up_cancel. */
typedef void (*gw_up_done_fn)(void *arg, const struct gw_up_result *res);

/* What the attempt needs; views are the caller's and must stay valid until
 * done runs or the attempt is cancelled. */
struct gw_up_params {
    struct gw_up_route *route;
    const struct cfg_route *cfg;
    struct event_base *base;
    struct evdns_base *dns;
    /* Writes the upgrade request for upstream `idx` (its URL's path prefix
     * may differ from the others') into out[0..cap); returns its length or
     * -1 when it does not fit. */
    int (*build_request)(void *arg, size_t idx, char *out, size_t cap);
    void *build_arg;
    size_t request_cap; /* the largest request build_request may write */
    struct upstream_offer offer;
    const char *client_ip;
    const char *subject; /* for hash_subject; may be NULL */
    size_t max_head;     /* largest response head accepted */
    int probe;           /* -1; or a health check of upstream `probe` alone:
                            no retry, no back-off, no connection counted */
    uint64_t timeout_ms; /* if not 0, replaces the route's connect_timeout
                            and upstream_timeout (health checks) */
};

/* Starts connecting: picks an upstream, resolves it (evdns), connects
 * within connect_timeout (TLS for wss://), sends the request and checks the
 * answer within upstream_timeout. An upstream that cannot be connected to
 * is marked down for `backoff` and the next is tried while any is left.
 * Never calls done synchronously. Returns the attempt (cancel it with
 * gw_up_cancel), or NULL when out of memory (done never called). */
struct gw_up *gw_up_start(const struct gw_up_params *p, gw_up_done_fn done, void *arg);

/* Stops an attempt and frees it; done is not called afterwards. */
void gw_up_cancel(struct gw_up *up);

/* Starts the route's active health checks (when it has health_check) on
 * base: every interval a WebSocket handshake to each upstream; one that
 * fails is skipped until one passes. Returns 0, or -1 with err filled. */
int gw_up_route_start_health(struct gw_up_route *ur, struct event_base *base,
                             struct evdns_base *dns, struct gw_err *err);

/* Stops the health checks (the route's configuration was replaced; the old
 * state lives on only for the connections that started with it). */
void gw_up_route_stop_health(struct gw_up_route *ur);

/* least_conn bookkeeping for a proxied connection that started / ended. */
void gw_up_route_conn_end(struct gw_up_route *ur, size_t upstream);

#endif
