/* conn: one client connection's state machine, from accept to its one free. */
#ifndef WSGATE_CONN_H
#define WSGATE_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event;
struct event_base;
struct gw_bus;
struct gw_conn;
struct gw_throttle;
struct gw_wsnap;
struct sockaddr;

/* Process-wide state shared by every worker. */
struct gw_shared {
    atomic_ulong nconns;          /* admitted connections, all workers */
    struct gw_throttle *throttle; /* auth failures per client IP; NULL: none */
    struct gw_bus *bus;           /* broadcast rooms across workers; NULL in tests */
    unsigned nworkers;
};

/* What a worker gives its connections. Owned by the worker; every field is
 * touched only from the worker's thread. */
struct gw_ctx {
    struct event_base *base;
    struct gw_wsnap *wsnap; /* current configuration; conns keep their own ref */
    struct gw_shared *shared;
    unsigned worker_id;
    bool draining;
    struct gw_conn *conns; /* live connections (intrusive list) */
    size_t nconns;         /* on this worker, admitted or not */
    struct gw_conn *reap;  /* closed, waiting for the reaper */
    struct event *ev_reap; /* runs the reaper after the current callback */
    uint64_t next_id;
    /* Called after a connection was freed while draining and none is left. */
    void (*on_empty)(struct gw_ctx *ctx);
};

/* Sets up ctx for use on base (creates the reaper event). Returns 0 or -1. */
int gw_ctx_init(struct gw_ctx *ctx, struct event_base *base, struct gw_shared *shared,
                unsigned worker_id);
/* Frees every connection still alive and the reaper; releases ctx->wsnap. */
void gw_ctx_cleanup(struct gw_ctx *ctx);

/* Takes ownership of bev (created with BEV_OPT_CLOSE_ON_FREE) for a client
 * just accepted from addr, and starts reading its request head — or, at
 * max_connections or while draining, answers 503. Never calls back
 * synchronously into the caller. Returns 0, or -1 (bev freed) when out of
 * memory. */
int gw_conn_accept(struct gw_ctx *ctx, struct bufferevent *bev,
                   const struct sockaddr *addr, bool tls);

/* Starts draining: connections reading a head are answered 503 (or closed if
 * they sent nothing), WebSocket connections get close 1001. ctx->on_empty
 * runs once none is left (possibly before this returns, via the reaper). */
void gw_ctx_drain(struct gw_ctx *ctx);

#endif
