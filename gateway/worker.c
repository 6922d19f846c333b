/* worker: one thread, one event loop, its own listening sockets and connections. */
#include "gateway/worker.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/bus.h"
#include "gateway/log.h"
#include "gateway/tls.h"
#include "gateway/upstream.h"
#include "gateway/wake.h"

/* Pause before accepting again when out of file descriptors. */
#define GW_ACCEPT_RESUME_MS 100

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
          void *arg)
{
    struct gw_worker *w = arg;
    size_t i = 0;
    while (i < w->nlisteners && w->listeners[i] != l)
        i++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev;
    SSL *ssl = NULL;
    if (w->socks[i].tls != NULL) {
        if ((ssl = SSL_new(w->socks[i].tls)) == NULL) {
            close(fd);
            return;
        }
        bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    } else {
        bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        /* bufferevent_openssl_socket_new frees ssl on failure. */
        close(fd);
        GW_LOG_ERROR("accept", "error=\"cannot create bufferevent\" worker=%u", w->id);
        return;
    }
    if (gw_conn_accept(&w->ctx, bev, sa, ssl != NULL) != 0)
        GW_LOG_ERROR("accept", "error=\"out of memory\" worker=%u", w->id);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    if (w->ctx.draining)
        return;
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_enable(w->listeners[i]);
}

/* accept() failed: out of descriptors must not become a busy loop. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct gw_worker *w = arg;
    int e = EVUTIL_SOCKET_ERROR();
    GW_LOG_WARN("accept", "error=\"%s\" worker=%u", strerror(e), w->id);
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_disable(w->listeners[i]);
    struct timeval tv = {0, GW_ACCEPT_RESUME_MS * 1000};
    event_add(w->ev_resume, &tv);
}

static void
on_empty(struct gw_ctx *ctx)
{
    event_base_loopbreak(ctx->base);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    GW_LOG_WARN("drain_timeout", "worker=%u open=%zu", w->id, w->ctx.nconns);
    event_base_loopbreak(w->base);
}

/* This worker's view of snap: its handler instances and upstream state,
 * made on the worker's thread (handler.h: destroy runs where create ran). */
static struct gw_wsnap *
worker_view(struct gw_worker *w, struct gw_snapshot *snap, struct gw_err *err)
{
    struct gw_wsnap_worker wk = {w->id, w->ctx.shared->nworkers, w->ctx.shared->bus};
    return gw_wsnap_new(snap, w->base, &wk, err);
}

static void
apply_reload(struct gw_worker *w, struct gw_snapshot *snap)
{
    struct gw_err err;
    struct gw_wsnap *ws = worker_view(w, snap, &err);
    gw_snapshot_unref(snap);
    if (ws == NULL) {
        GW_LOG_ERROR("reload", "worker=%u error=\"%s\"", w->id, err.msg);
        return;
    }
    struct gw_wsnap *old = w->ctx.wsnap;
    for (size_t i = 0; i < old->snap->cfg->nroutes; i++)
        if (old->up[i] != NULL)
            gw_up_route_stop_health(old->up[i]);
    gw_wsnap_unref(old);
    w->ctx.wsnap = ws;
    GW_LOG_INFO("reload_applied", "worker=%u generation=%u", w->id, ws->snap->generation);
}

static void
start_drain(struct gw_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    w->nlisteners = 0;
    struct timeval tv = {(time_t)(w->drain_timeout_ms / 1000),
                         (suseconds_t)(w->drain_timeout_ms % 1000) * 1000};
    event_add(w->ev_deadline, &tv);
    gw_ctx_drain(&w->ctx);
}

static void
cmd_cb(void *arg)
{
    struct gw_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    struct gw_snapshot *snap = w->pending_snap;
    bool drain = w->pending_drain && !w->ctx.draining;
    w->pending_snap = NULL;
    pthread_mutex_unlock(&w->lock);
    if (snap != NULL)
        apply_reload(w, snap);
    if (drain)
        start_drain(w);
}

/* A worker's loop. The changelist folds the epoll_ctl calls one callback
 * makes on a descriptor into one, or none: a connection switching from its
 * bufferevent to the tunnel's own events deletes and re-adds the same
 * read interest, and that costs nothing with it. */
static struct event_base *
new_base(void)
{
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int
gw_worker_init(struct gw_worker *w, unsigned id, const struct gw_worker_listen *socks,
               size_t n, struct gw_snapshot *snap, struct gw_shared *shared,
               struct gw_err *err)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready_cond, NULL);
    w->base = new_base();
    w->listeners = calloc(n ? n : 1, sizeof(*w->listeners));
    w->socks = calloc(n ? n : 1, sizeof(*w->socks));
    if (w->base == NULL || w->listeners == NULL || w->socks == NULL ||
        gw_ctx_init(&w->ctx, w->base, shared, id) != 0) {
        for (size_t i = 0; i < n; i++)
            close(socks[i].fd);
        return gw_err_set(err, "worker %u: out of memory", id);
    }
    w->ctx.on_empty = on_empty;
    w->cmd = gw_wake_new(w->base, cmd_cb, w);
    w->ev_deadline = event_new(w->base, -1, 0, deadline_cb, w);
    w->ev_resume = event_new(w->base, -1, 0, resume_cb, w);
    bool attached = shared->bus == NULL || gw_bus_attach(shared->bus, id, w->base) == 0;
    if (!attached || w->cmd == NULL || w->ev_deadline == NULL || w->ev_resume == NULL) {
        for (size_t i = 0; i < n; i++)
            close(socks[i].fd);
        return gw_err_set(err, "worker %u: out of memory", id);
    }
    gw_snapshot_ref(snap);
    w->first_snap = snap;
    for (size_t i = 0; i < n; i++) {
        w->socks[i] = socks[i];
        w->listeners[i] = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE,
                                             -1, socks[i].fd);
        if (w->listeners[i] == NULL) {
            for (size_t j = i; j < n; j++)
                close(socks[j].fd);
            return gw_err_set(err, "worker %u: cannot create listener", id);
        }
        evconnlistener_set_error_cb(w->listeners[i], accept_error_cb);
        w->nlisteners = i + 1;
    }
    return 0;
}

static void *
worker_main(void *arg)
{
    struct gw_worker *w = arg;
    struct gw_err err = {0};
    w->ctx.wsnap = worker_view(w, w->first_snap, &err);
    /* The view holds its own reference: a later reload can free this one. */
    gw_snapshot_unref(w->first_snap);
    w->first_snap = NULL;
    pthread_mutex_lock(&w->lock);
    w->ready = w->ctx.wsnap != NULL ? 1 : -1;
    w->ready_err = err;
    pthread_cond_signal(&w->ready_cond);
    pthread_mutex_unlock(&w->lock);
    if (w->ctx.wsnap != NULL)
        event_base_dispatch(w->base);
    /* Connections (their handlers' on_close) and the handler instances end
     * on this thread too. */
    gw_ctx_cleanup(&w->ctx);
    return NULL;
}

int
gw_worker_start(struct gw_worker *w, struct gw_err *err)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0)
        return gw_err_set(err, "worker %u: cannot start thread: %s", w->id, strerror(rc));
    w->started = true;
    pthread_mutex_lock(&w->lock);
    while (w->ready == 0)
        pthread_cond_wait(&w->ready_cond, &w->lock);
    int ready = w->ready;
    pthread_mutex_unlock(&w->lock);
    if (ready > 0)
        return 0;
    *err = w->ready_err;
    return -1;
}

void
gw_worker_post_reload(struct gw_worker *w, struct gw_snapshot *snap)
{
    gw_snapshot_ref(snap);
    pthread_mutex_lock(&w->lock);
    struct gw_snapshot *old = w->pending_snap;
    w->pending_snap = snap;
    pthread_mutex_unlock(&w->lock);
    gw_snapshot_unref(old);
    gw_wake_ring(w->cmd);
}

void
gw_worker_post_drain(struct gw_worker *w, uint64_t drain_timeout_ms)
{
    pthread_mutex_lock(&w->lock);
    w->pending_drain = true;
    w->drain_timeout_ms = drain_timeout_ms;
    pthread_mutex_unlock(&w->lock);
    gw_wake_ring(w->cmd);
}

void
gw_worker_join_free(struct gw_worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i] != NULL)
            evconnlistener_free(w->listeners[i]);
    free(w->listeners);
    free(w->socks);
    if (w->base != NULL) {
        /* Connections leave their rooms first; then nothing more is queued. */
        gw_ctx_cleanup(&w->ctx);
        if (w->ctx.shared != NULL && w->ctx.shared->bus != NULL)
            gw_bus_detach(w->ctx.shared->bus, w->id);
    }
    gw_snapshot_unref(w->pending_snap);
    gw_snapshot_unref(w->first_snap);
    gw_wake_free(w->cmd);
    if (w->ev_deadline != NULL)
        event_free(w->ev_deadline);
    if (w->ev_resume != NULL)
        event_free(w->ev_resume);
    if (w->base != NULL)
        event_base_free(w->base);
    pthread_cond_destroy(&w->ready_cond);
    pthread_mutex_destroy(&w->lock);
}
