/* worker: one thread, one event loop, its own listening sockets and connections. */
#ifndef WSGATE_WORKER_H
#define WSGATE_WORKER_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway/conn.h"
#include "gateway/snapshot.h"

struct evconnlistener;
struct gw_wake;

/* One listening socket handed to a worker. */
struct gw_worker_listen {
    int fd;
    SSL_CTX *tls; /* borrowed; NULL for plain HTTP */
};

struct gw_worker {
    unsigned id;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct gw_ctx ctx;
    struct evconnlistener **listeners;
    struct gw_worker_listen *socks;
    size_t nlisteners;
    struct gw_wake *cmd;       /* rung by other threads through post_* */
    struct event *ev_deadline; /* ends a drain that takes too long */
    struct event *ev_resume;   /* re-enables accepting after EMFILE */
    pthread_mutex_t lock;      /* guards the pending_* fields */
    struct gw_snapshot *pending_snap;
    bool pending_drain;
    uint64_t drain_timeout_ms;
    /* The first configuration's handler instances are created on the
     * worker's thread, like every later one (handler.h: destroy runs where
     * create ran); start waits for that under lock. */
    struct gw_snapshot *first_snap;
    pthread_cond_t ready_cond;
    int ready; /* 0 not yet, 1 serving, -1 failed with ready_err */
    struct gw_err ready_err;
};

/* Prepares worker `id` with its own event base over socks[0..n) (taking
 * ownership of the fds) and the initial snapshot. Returns 0, or -1 with err
 * filled. */
int gw_worker_init(struct gw_worker *w, unsigned id, const struct gw_worker_listen *socks,
                   size_t n, struct gw_snapshot *snap, struct gw_shared *shared,
                   struct gw_err *err);

/* Starts the worker's thread, which creates its handler instances; returns
 * once they are (0), or -1 with err filled (the thread has then ended). */
int gw_worker_start(struct gw_worker *w, struct gw_err *err);

/* From any thread: switch new connections to snap (the worker takes its own
 * reference); start draining (stop accepting, close 1001, exit when empty
 * or after drain_timeout_ms). */
void gw_worker_post_reload(struct gw_worker *w, struct gw_snapshot *snap);
void gw_worker_post_drain(struct gw_worker *w, uint64_t drain_timeout_ms);

/* Waits for the thread (if started) and frees everything the worker owns. */
void gw_worker_join_free(struct gw_worker *w);

#endif
