/* conn: one client connection's state machine, from accept to its one free. */
#include "gateway/conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/origin.h"
#include "gateway/handler.h"
#include "gateway/http1_parse.h"
#include "gateway/identity.h"
#include "gateway/log.h"
#include "gateway/response.h"
#include "gateway/router.h"
#include "gateway/snapshot.h"
#include "gateway/throttle.h"
#include "gateway/tunnel.h"
#include "gateway/upstream.h"
#include "gateway/upstream_req.h"
#include "gateway/ws_endpoint.h"
#include "gateway/ws_handshake.h"

/* Lingering close (as nginx's lingering_close): after the last bytes we
 * read and drop what the peer still sends, so that our close cannot reset
 * the connection before it has read them. The peer gets GW_LINGER_MS of
 * silence at most, GW_LINGER_TOTAL_MS in all, and GW_LINGER_BYTES (one
 * oversized message on its way, typically). */
#define GW_LINGER_MS 2000
#define GW_LINGER_TOTAL_MS 5000
#define GW_LINGER_BYTES (16 * 1024 * 1024)
#define GW_LINGER_REFUSED_MS 1000
/* How long the endpoint waits for a peer's close frame. */
#define GW_CLOSE_TIMEOUT_MS 5000

enum gw_conn_state {
    GW_CONN_HEAD = 1, /* reading the request head; timer: handshake_timeout */
    GW_CONN_AUTH,     /* head valid, provider deciding; same timer */
    GW_CONN_UPSTREAM, /* connecting to the upstream; its own timers */
    GW_CONN_WS,       /* upgraded: the endpoint owns the protocol */
    GW_CONN_TUNNEL,   /* upgraded through an upstream: the tunnel relays */
    GW_CONN_CLOSING,  /* last bytes queued (an error response or a close
                         frame): flush, half-close, drain until the peer's FIN */
    GW_CONN_CLOSED,   /* on the reap list; freed after this callback */
};

/* What a complete head leaves behind until the upgrade: a private copy of the
 * head (the views below point into it) and the credential. */
struct conn_hs {
    char *head;
    struct http1_request req;
    struct ws_handshake hs;
    struct token_header th[HTTP1_MAX_HEADERS];
    struct token_found cred;
    char *protocols;  /* Sec-WebSocket-Protocol as forwarded upstream, or NULL */
    char *extensions; /* Sec-WebSocket-Extensions likewise (all lines joined) */
};

struct gw_conn {
    struct gw_conn *next, *prev; /* ctx->conns, or ctx->reap once closed */
    struct gw_ctx *ctx;
    struct bufferevent *bev;
    struct gw_wsnap *wsnap; /* the configuration this conn started with */
    enum gw_conn_state state;
    bool admitted; /* counted in shared->nconns */
    bool tls;
    bool shut_wr;  /* last bytes flushed, our write side shut */
    bool peer_eof; /* the peer shut its side while we flushed */
    uint64_t id;
    struct event *timer; /* head deadline, then linger; NULL once upgraded */
    struct conn_hs *hs;
    size_t last_len;  /* head bytes parsed by the last -2 */
    size_t discarded; /* bytes dropped while lingering */
    const struct cfg_route *route;
    struct auth_provider *provider;
    struct auth_check *auth_pending;
    size_t auth_step; /* the provider of the route's chain being asked */
    struct gw_ws *ws;
    struct gw_up *up;         /* the upstream attempt, while connecting */
    struct gw_tunnel *tunnel; /* once proxied */
    size_t upstream;          /* index of the upstream the tunnel goes to */
    struct gw_identity ident; /* who the route's providers said the client is */
    struct event *expiry;     /* closes 1008 when the credential expires */
    char peer[INET6_ADDRSTRLEN];
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short events, void *arg);

static const struct cfg_limits *
conn_limits(const struct gw_conn *c)
{
    return &c->wsnap->snap->cfg->limits;
}

static void
list_remove(struct gw_conn **head, struct gw_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void
list_push(struct gw_conn **head, struct gw_conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

static void
hs_free(struct gw_conn *c)
{
    if (c->hs == NULL)
        return;
    free(c->hs->head);
    free(c->hs->protocols);
    free(c->hs->extensions);
    /* The credential may be a secret: do not leave it in freed memory. */
    OPENSSL_cleanse(&c->hs->cred, sizeof(c->hs->cred));
    free(c->hs);
    c->hs = NULL;
}

/* The one place a connection is freed; reached only through the reaper. */
static void
conn_free(struct gw_conn *c)
{
    struct gw_ctx *ctx = c->ctx;
    if (c->auth_pending != NULL)
        auth_cancel(c->provider, c->auth_pending);
    gw_up_cancel(c->up);
    if (c->tunnel != NULL) {
        gw_tunnel_free(c->tunnel);
        gw_up_route_conn_end(gw_wsnap_up(c->wsnap, c->route), c->upstream);
    }
    gw_identity_clear(&c->ident);
    if (c->expiry != NULL)
        event_free(c->expiry);
    gw_ws_free(c->ws);
    if (c->timer != NULL)
        event_free(c->timer);
    hs_free(c);
    bufferevent_free(c->bev);
    if (c->admitted)
        atomic_fetch_sub(&ctx->shared->nconns, 1);
    gw_wsnap_unref(c->wsnap);
    ctx->nconns--;
    free(c);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ctx *ctx = arg;
    while (ctx->reap != NULL) {
        struct gw_conn *c = ctx->reap;
        list_remove(&ctx->reap, c);
        conn_free(c);
    }
    if (ctx->draining && ctx->nconns == 0 && ctx->on_empty != NULL)
        ctx->on_empty(ctx);
}

/* Idempotent close: the connection is freed by the reaper once the current
 * callback has unwound, so callers just return afterwards. */
static void
conn_close(struct gw_conn *c)
{
    if (c->state == GW_CONN_CLOSED)
        return;
    c->state = GW_CONN_CLOSED;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->auth_pending != NULL) {
        auth_cancel(c->provider, c->auth_pending);
        c->auth_pending = NULL;
    }
    gw_up_cancel(c->up);
    c->up = NULL;
    list_remove(&c->ctx->conns, c);
    list_push(&c->ctx->reap, c);
    event_active(c->ctx->ev_reap, EV_TIMEOUT, 0);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void
arm_timer(struct gw_conn *c, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(c->timer, &tv);
}

static void
log_reject(struct gw_conn *c, int status, const char *reason)
{
    char path[512] = "-";
    if (c->hs != NULL && c->hs->hs.path != NULL)
        gw_log_quote(path, sizeof(path), c->hs->hs.path, c->hs->hs.path_len);
    char why[256];
    gw_log_quote(why, sizeof(why), reason, strlen(reason));
    GW_LOG_INFO("reject",
                "status=%d reason=\"%s\" path=\"%s\" route=%s peer=%s conn=%llu", status,
                why, path, c->route ? c->route->name : "-", c->peer,
                (unsigned long long)c->id);
}

/* The response is out: shut our side and wait briefly for the client's. */
static void
start_linger(struct gw_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    /* Over TLS a raw shutdown would cut the record stream: keep draining
     * without it until the peer's EOF or the linger timers. */
    if (fd < 0 || (!c->tls && shutdown(fd, SHUT_WR) != 0)) {
        conn_close(c);
        return;
    }
    c->shut_wr = true;
}

/* The last bytes are queued: flush them, then linger. Keep reading (and
 * dropping) so that unread bytes cannot make the kernel reset the
 * connection before the peer has what we sent. */
static void
enter_closing(struct gw_conn *c)
{
    static const struct timeval linger = {GW_LINGER_MS / 1000,
                                          (GW_LINGER_MS % 1000) * 1000};
    c->state = GW_CONN_CLOSING;
    if (c->timer == NULL &&
        (c->timer = event_new(c->ctx->base, -1, 0, timer_cb, c)) == NULL) {
        conn_close(c);
        return;
    }
    /* Refused over max_connections: hold its descriptor as briefly as we can. */
    arm_timer(c, c->admitted ? GW_LINGER_TOTAL_MS : GW_LINGER_REFUSED_MS);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(c->bev, &linger, &linger);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        start_linger(c);
}

/* Answers with an error status and closes after it is flushed. A peer's
 * mistake, not ours: logged at info. */
static void
reject(struct gw_conn *c, int status, const char *reason,
       const struct gw_response_extra *extra)
{
    log_reject(c, status, reason);
    if (c->auth_pending != NULL) {
        auth_cancel(c->provider, c->auth_pending);
        c->auth_pending = NULL;
    }
    gw_up_cancel(c->up);
    c->up = NULL;
    hs_free(c);
    if (gw_response_error(bufferevent_get_output(c->bev), status, reason, extra) != 0) {
        conn_close(c);
        return;
    }
    enter_closing(c);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    switch (c->state) {
    case GW_CONN_HEAD:
    case GW_CONN_AUTH:
        reject(c, 408, "request head or authentication took too long", NULL);
        return;
    case GW_CONN_CLOSING:
    case GW_CONN_UPSTREAM:
    case GW_CONN_WS:
    case GW_CONN_TUNNEL:
    case GW_CONN_CLOSED:
        conn_close(c);
        return;
    }
}

static void
ws_finished(void *owner, bool graceful)
{
    struct gw_conn *c = owner;
    if (graceful) {
        enter_closing(c);
        return;
    }
    /* Timed out or gone: reset, so that what the kernel still holds for a
     * peer that does not read is dropped now instead of trickling out of an
     * orphaned socket. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    conn_close(c);
}

/* permessage-deflate on a handler route that enables it: the first offer,
 * over every Sec-WebSocket-Extensions line in order, that can be honoured.
 * A malformed line declines compression (the upgrade still succeeds). */
static bool
negotiate_deflate(struct gw_conn *c, struct ws_deflate_params *p)
{
    const struct http1_request *req = &c->hs->req;
    if (!c->route->deflate)
        return false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *hd = &req->headers[i];
        if (!http1_str_ieq(hd->name, hd->name_len, "sec-websocket-extensions"))
            continue;
        switch (ws_deflate_negotiate(hd->value, hd->value_len, p)) {
        case WS_DEFLATE_ACCEPTED:
            return true;
        case WS_DEFLATE_MALFORMED:
            return false;
        case WS_DEFLATE_DECLINED:
            break;
        }
    }
    return false;
}

/* The credential expired on a live connection: policy violation, to the
 * client and, through the tunnel, to the upstream. */
static void
expiry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    GW_LOG_INFO("expired", "route=%s peer=%s conn=%llu", c->route->name, c->peer,
                (unsigned long long)c->id);
    if (c->state == GW_CONN_WS)
        gw_ws_close(c->ws, WS_CLOSE_POLICY, "token expired");
    else if (c->state == GW_CONN_TUNNEL)
        gw_tunnel_close(c->tunnel, WS_CLOSE_POLICY, "token expired");
}

/* Arms the expiry close once upgraded, unless the route opts out. Returns
 * -1 only when out of memory. */
static int
arm_expiry(struct gw_conn *c)
{
    if (c->ident.expires_at <= 0 || !c->route->close_on_expiry)
        return 0;
    /* A timer counts from the loop's cached time, which lags the clock by
     * however long this iteration has run: refreshed, so that the close
     * never comes before exp. */
    event_base_update_cache_time(c->ctx->base);
    struct timeval now;
    evutil_gettimeofday(&now, NULL);
    long long us = c->ident.expires_at * 1000000LL -
                   ((long long)now.tv_sec * 1000000LL + now.tv_usec);
    if (us < 0)
        us = 0;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    if ((c->expiry = event_new(c->ctx->base, -1, 0, expiry_cb, c)) == NULL)
        return -1;
    return event_add(c->expiry, &tv);
}

/* The handshake as on_open sees it: NUL-terminated copies of the views in
 * one block (returned, for the caller to free) with kv[] over the headers. */
static char *
handler_request(struct gw_conn *c, struct gw_request *req, struct gw_kv *kv)
{
    const struct conn_hs *hs = c->hs;
    size_t nid = c->ident.nheaders;
    size_t need = nid * sizeof(struct gw_kv) + hs->hs.path_len + hs->hs.query_len +
                  hs->hs.host_len + 3;
    for (size_t i = 0; i < hs->req.num_headers; i++)
        need += hs->req.headers[i].name_len + hs->req.headers[i].value_len + 2;
    char *block = malloc(need), *p = block;
    if (block == NULL)
        return NULL;
    /* The identity headers first (malloc's alignment); views into c->ident. */
    struct gw_kv *ikv = (struct gw_kv *)(void *)block;
    for (size_t i = 0; i < nid; i++)
        ikv[i] = (struct gw_kv){c->ident.headers[i].name, c->ident.headers[i].value};
    p += nid * sizeof(struct gw_kv);
#define COPY(dst, src, len)                                                              \
    do {                                                                                 \
        if ((len) > 0)                                                                   \
            memcpy(p, (src), (len));                                                     \
        p[len] = '\0';                                                                   \
        (dst) = p;                                                                       \
        p += (len) + 1;                                                                  \
    } while (0)
    *req = (struct gw_request){.route = c->route->name,
                               .peer = c->peer,
                               .headers = kv,
                               .nheaders = hs->req.num_headers,
                               .subject = c->ident.subject,
                               .identity = ikv,
                               .nidentity = nid};
    COPY(req->path, hs->hs.path, hs->hs.path_len);
    COPY(req->query, hs->hs.query, hs->hs.query_len);
    COPY(req->host, hs->hs.host, hs->hs.host_len);
    for (size_t i = 0; i < hs->req.num_headers; i++) {
        const struct http1_header *h = &hs->req.headers[i];
        COPY(kv[i].name, h->name, h->name_len);
        COPY(kv[i].value, h->value, h->value_len);
    }
#undef COPY
    return block;
}

static void
upgrade(struct gw_conn *c)
{
    void *instance = NULL;
    const struct gw_handler *h = gw_wsnap_handler(c->wsnap, c->route, &instance);
    const struct cfg_limits *lim = conn_limits(c);
    const struct cfg_route *r = c->route;
    struct ws_deflate_params dp;
    bool deflate = negotiate_deflate(c, &dp);
    char ext[WS_DEFLATE_RESPONSE_MAX];
    if (deflate)
        ws_deflate_response(&dp, ext);
    struct gw_ws_env env = {
        .max_message_size = lim->max_message_size,
        .idle_timeout_ms = lim->idle_timeout_ms,
        .close_timeout_ms = GW_CLOSE_TIMEOUT_MS,
        .ping_interval_ms = r->ping_interval_ms,
        .max_send_queue = r->max_send_queue != 0 ? r->max_send_queue
                                                 : 2 * (lim->max_message_size + 65536),
        .slow_reader = r->slow_reader,
        .deflate = deflate ? &dp : NULL,
        .deflate_threshold = r->deflate_threshold,
        .counters = &c->wsnap->snap->ws_counters[r - c->wsnap->snap->cfg->routes],
        .route = r->name,
        .conn_id = c->id,
        .finished = ws_finished,
        .owner = c,
    };
    /* The endpoint exists only once the 101 is queued: a handler never sees
     * on_close without its on_open. */
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (h == NULL || gw_response_upgrade(out, c->hs->hs.key, c->hs->hs.key_len,
                                         deflate ? ext : NULL) != 0) {
        reject(c, 500, "cannot start the WebSocket handler", NULL);
        return;
    }
    struct gw_request req;
    struct gw_kv kv[HTTP1_MAX_HEADERS];
    char *block = handler_request(c, &req, kv);
    /* The expiry timer before the endpoint: a handler whose on_open never
     * ran must not get an on_close either. */
    if (block == NULL || arm_expiry(c) != 0 ||
        (c->ws = gw_ws_new(c->bev, h, instance, &env, c->ident.subject)) == NULL) {
        free(block);
        conn_close(c); /* the 101 is queued: no HTTP answer is possible now */
        return;
    }
    char path[512];
    gw_log_quote(path, sizeof(path), c->hs->hs.path, c->hs->hs.path_len);
    GW_LOG_INFO("upgrade",
                "status=101 path=\"%s\" route=%s peer=%s conn=%llu worker=%u deflate=%s",
                path, c->route->name, c->peer, (unsigned long long)c->id,
                c->ctx->worker_id, deflate ? "on" : "off");
    event_free(c->timer);
    c->timer = NULL;
    c->state = GW_CONN_WS;
    gw_ws_start(c->ws, &req);
    free(block);
    hs_free(c);
}

/* Where the route's credential is looked for: its own token_from, or auth's. */
static const struct cfg_token_source *
conn_token_sources(const struct gw_conn *c, size_t *n)
{
    if (c->route->token_from != NULL) {
        *n = c->route->ntoken_from;
        return c->route->token_from;
    }
    *n = c->wsnap->snap->cfg->ntoken_from;
    return c->wsnap->snap->cfg->token_from;
}

/* bearer.* subprotocol entries are credentials, never forwarded, when the
 * credential came from one or the route reads credentials from them. */
static bool
conn_drops_bearer(const struct gw_conn *c)
{
    if (c->hs->cred.kind == CFG_TOKEN_SUBPROTOCOL)
        return true;
    if (c->route->nauth == 0)
        return false;
    size_t n;
    const struct cfg_token_source *src = conn_token_sources(c, &n);
    for (size_t i = 0; i < n; i++)
        if (src[i].kind == CFG_TOKEN_SUBPROTOCOL)
            return true;
    return false;
}

static int
build_upstream_request(void *arg, size_t idx, char *out, size_t cap)
{
    struct gw_conn *c = arg;
    const struct cfg_route *r = c->route;
    const struct token_found *cred = &c->hs->cred;
    const struct cfg_token_source *src = cred->kind != 0 ? cred->source : NULL;
    /* The headers through which the upstream learns who the client is; a
     * client's own copies are always removed, so they cannot be spoofed. */
    struct upstream_header *id = NULL;
    long nid = gw_identity_upstream_headers(&c->ident, c->wsnap->snap->cfg, &id);
    if (nid < 0)
        return -1;
    char request_id[40];
    snprintf(request_id, sizeof(request_id), "%08x%04x%016llx",
             (unsigned)c->wsnap->snap->generation, c->ctx->worker_id,
             (unsigned long long)c->id);
    struct upstream_req_params p = {
        .req = &c->hs->req,
        .hs = &c->hs->hs,
        .strip_len = r->strip_prefix ? strlen(r->path) : 0,
        .upstream_path = r->upstreams[idx].path,
        .host = r->upstream_host,
        .client_ip = c->peer,
        .client_tls = c->tls,
        .request_id = request_id,
        .drop_query_param = src && src->kind == CFG_TOKEN_QUERY ? src->name : NULL,
        .drop_cookie = src && src->kind == CFG_TOKEN_COOKIE ? src->name : NULL,
        .drop_authorization = src && src->kind == CFG_TOKEN_HEADER,
        .drop_bearer_protocol = conn_drops_bearer(c),
        .identity = id,
        .nidentity = (size_t)nid,
    };
    int n = upstream_req_build(&p, out, cap);
    free(id);
    return n;
}

static void
tunnel_finished(void *owner)
{
    conn_close(owner);
}

static void
start_tunnel(struct gw_conn *c, const struct gw_up_result *res)
{
    const struct cfg_limits *lim = conn_limits(c);
    struct gw_tunnel_env env = {
        .max_message_size = lim->max_message_size,
        .idle_timeout_ms = lim->idle_timeout_ms,
        .close_timeout_ms = GW_CLOSE_TIMEOUT_MS,
        .buffer = (size_t)lim->proxy_buffer,
        .route = c->route->name,
        .conn_id = c->id,
        .counters =
            &c->wsnap->snap->tunnel_counters[c->route - c->wsnap->snap->cfg->routes],
        .finished = tunnel_finished,
        .owner = c,
    };
    c->upstream = res->upstream;
    if (bufferevent_write(c->bev, res->response, res->response_len) != 0) {
        bufferevent_free(res->bev); /* the tunnel would have owned it */
        gw_up_route_conn_end(gw_wsnap_up(c->wsnap, c->route), res->upstream);
        conn_close(c);
        return;
    }
    if ((c->tunnel = gw_tunnel_new(c->bev, res->bev, &env)) == NULL) {
        gw_up_route_conn_end(gw_wsnap_up(c->wsnap, c->route), res->upstream);
        conn_close(c);
        return;
    }
    char path[512];
    gw_log_quote(path, sizeof(path), c->hs->hs.path, c->hs->hs.path_len);
    GW_LOG_INFO("upgrade",
                "status=101 path=\"%s\" route=%s upstream=%zu peer=%s conn=%llu", path,
                c->route->name, res->upstream, c->peer, (unsigned long long)c->id);
    event_free(c->timer);
    c->timer = NULL;
    hs_free(c);
    c->state = GW_CONN_TUNNEL;
    if (arm_expiry(c) != 0) {
        conn_close(c);
        return;
    }
    gw_tunnel_start(c->tunnel);
}

static void
upstream_done(void *arg, const struct gw_up_result *res)
{
    struct gw_conn *c = arg;
    c->up = NULL;
    if (res->status == 101) {
        start_tunnel(c, res);
        return;
    }
    if (res->response == NULL) {
        reject(c, res->status, res->reason, NULL);
        return;
    }
    /* The upstream's own refusal, passed through as it answered. */
    log_reject(c, res->status, res->reason);
    hs_free(c);
    if (bufferevent_write(c->bev, res->response, res->response_len) != 0) {
        conn_close(c);
        return;
    }
    enter_closing(c);
}

static void
proxy(struct gw_conn *c)
{
    struct conn_hs *hs = c->hs;
    struct upstream_offer offer = {.key = hs->hs.key, .key_len = hs->hs.key_len};
    /* The upstream may select only what it was offered: the forwarded list,
     * without the bearer.* entries, which it therefore can never select. */
    struct upstream_req_params rp = {.req = &hs->req,
                                     .drop_bearer_protocol = conn_drops_bearer(c)};
    size_t cap = (size_t)conn_limits(c)->max_request_head + 1;
    int plen, elen;
    if ((hs->protocols = malloc(cap)) == NULL || (hs->extensions = malloc(cap)) == NULL ||
        (plen = upstream_req_protocols(&rp, hs->protocols, cap)) < 0 ||
        (elen = upstream_req_extensions(&rp, hs->extensions, cap)) < 0) {
        reject(c, 503, "out of memory", NULL);
        return;
    }
    if (plen > 0) {
        offer.protocols = hs->protocols;
        offer.protocols_len = (size_t)plen;
    }
    if (elen > 0) {
        offer.extensions = hs->extensions;
        offer.extensions_len = (size_t)elen;
    }
    const struct cfg_limits *lim = conn_limits(c);
    struct gw_up_params p = {
        .route = gw_wsnap_up(c->wsnap, c->route),
        .cfg = c->route,
        .base = c->ctx->base,
        .dns = c->wsnap->dns,
        .build_request = build_upstream_request,
        .build_arg = c,
        .request_cap = (size_t)lim->max_request_head + 1024,
        .offer = offer,
        .client_ip = c->peer,
        .subject = c->ident.subject,
        .max_head = (size_t)lim->max_request_head,
        .probe = -1,
    };
    /* The upstream attempt has its own connect and answer timers. */
    event_del(c->timer);
    c->state = GW_CONN_UPSTREAM;
    if ((c->up = gw_up_start(&p, upstream_done, c)) == NULL)
        reject(c, 503, "out of memory", NULL);
}

/* The request may go on: to the route's handler or its upstream. */
static void
admit(struct gw_conn *c)
{
    if (c->route->kind == CFG_ROUTE_UPSTREAM)
        proxy(c);
    else
        upgrade(c);
}

static void auth_next(struct gw_conn *c);

/* Monotonic milliseconds, the same clock in every worker. */
static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A 401 counts against the client's address in the auth throttle. */
static void
throttle_failure(struct gw_conn *c)
{
    const struct cfg_auth_throttle *t = c->wsnap->snap->cfg->throttle;
    struct gw_throttle_key key;
    if (t == NULL || c->ctx->shared->throttle == NULL ||
        gw_throttle_key_from_text(c->peer, &key) != 0)
        return;
    struct gw_throttle_rule rule = {t->failures, t->window_ms, t->block_ms};
    if (gw_throttle_fail(c->ctx->shared->throttle, &key, now_ms(), &rule) > 0)
        GW_LOG_INFO("throttle", "peer=%s blocked_ms=%llu conn=%llu", c->peer,
                    (unsigned long long)t->block_ms, (unsigned long long)c->id);
}

/* Seconds (rounded up) the client must wait before authenticating again, or 0. */
static unsigned
throttle_wait(struct gw_conn *c)
{
    struct gw_throttle_key key;
    if (c->wsnap->snap->cfg->throttle == NULL || c->ctx->shared->throttle == NULL ||
        gw_throttle_key_from_text(c->peer, &key) != 0)
        return 0;
    uint64_t ms = gw_throttle_blocked(c->ctx->shared->throttle, &key, now_ms());
    return (unsigned)((ms + 999) / 1000);
}

static void
auth_done(void *arg, const struct auth_result *res)
{
    struct gw_conn *c = arg;
    c->auth_pending = NULL;
    if (c->state != GW_CONN_AUTH)
        return;
    char challenge[256];
    struct gw_response_extra extra = {.www_authenticate = res->www_authenticate};
    switch (res->verdict) {
    case AUTH_ALLOW:
        if (gw_identity_add(&c->ident, res) != 0) {
            reject(c, 503, "out of memory", NULL);
            return;
        }
        /* A chain: every provider must allow, in order. */
        if (++c->auth_step < c->route->nauth) {
            auth_next(c);
            return;
        }
        admit(c);
        return;
    case AUTH_FORBID:
        reject(c, 403, res->reason ? res->reason : "forbidden", &extra);
        return;
    case AUTH_UNAVAILABLE:
        extra.retry_after = 1;
        reject(c, 503, res->reason ? res->reason : "authentication unavailable", &extra);
        return;
    case AUTH_DENY:
        break;
    }
    throttle_failure(c);
    /* RFC 6750 §3: an error code only when a credential was presented. */
    if (res->www_authenticate != NULL)
        extra.www_authenticate = res->www_authenticate;
    else if (res->error != NULL)
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"wsgate\", error=\"%s\"",
                 res->error);
    else
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"wsgate\"");
    if (res->www_authenticate == NULL)
        extra.www_authenticate = challenge;
    reject(c, 401, res->reason ? res->reason : "unauthorized", &extra);
}

/* Asks the provider at c->auth_step of the route's chain. */
static void
auth_next(struct gw_conn *c)
{
    struct conn_hs *hs = c->hs;
    struct auth_request req = {
        .method = hs->req.method,
        .method_len = hs->req.method_len,
        .path = hs->hs.path,
        .path_len = hs->hs.path_len,
        .host = hs->hs.host,
        .host_len = hs->hs.host_len,
        .peer = c->peer,
        .credential = &hs->cred,
        .headers = hs->th,
        .nheaders = hs->req.num_headers,
        .tls = c->tls,
    };
    c->provider = gw_wsnap_provider(c->wsnap, c->route->providers[c->auth_step]);
    /* auth_done may run before auth_start returns (a synchronous provider);
     * then auth_pending stays NULL and the state has moved on. */
    struct auth_check *pending = NULL;
    if (auth_start(c->provider, &req, auth_done, c, &pending) != 0) {
        struct gw_response_extra extra = {.retry_after = 1};
        reject(c, 503, "cannot start authentication", &extra);
        return;
    }
    if (pending != NULL && c->state == GW_CONN_AUTH)
        c->auth_pending = pending;
}

static void
authenticate(struct gw_conn *c)
{
    struct conn_hs *hs = c->hs;
    for (size_t i = 0; i < hs->req.num_headers; i++) {
        const struct http1_header *h = &hs->req.headers[i];
        hs->th[i] = (struct token_header){h->name, h->name_len, h->value, h->value_len};
    }
    struct token_input in = {hs->th, hs->req.num_headers, hs->hs.query, hs->hs.query_len};
    size_t nsrc;
    const struct cfg_token_source *src = conn_token_sources(c, &nsrc);
    enum token_status ts = token_extract(&in, src, nsrc, &hs->cred);
    c->state = GW_CONN_AUTH;
    if (ts == TOKEN_MALFORMED) {
        struct auth_result bad = {.verdict = AUTH_DENY,
                                  .error = "invalid_request",
                                  .reason = "malformed credentials"};
        auth_done(c, &bad);
        return;
    }
    if (ts == TOKEN_NONE)
        hs->cred.kind = 0;
    c->auth_step = 0;
    auth_next(c);
}

/* The route's origins allow-list: browsers always send Origin on a
 * WebSocket; other clients usually do not, and are let through. */
static bool
origin_ok(const struct gw_conn *c)
{
    const struct cfg_route *r = c->route;
    if (r->norigins == 0)
        return true;
    int i = http1_find_header(&c->hs->req, "origin");
    if (i < 0)
        return true;
    const struct http1_header *h = &c->hs->req.headers[i];
    return origin_allowed((const char *const *)r->origins, r->norigins, h->value,
                          h->value_len);
}

/* A complete head of head_len bytes is at the front of the input. */
static void
on_head(struct gw_conn *c, const char *buf, size_t head_len)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct conn_hs *hs = calloc(1, sizeof(*hs));
    if (hs == NULL || (hs->head = malloc(head_len)) == NULL) {
        free(hs);
        reject(c, 503, "out of memory", NULL);
        return;
    }
    c->hs = hs;
    memcpy(hs->head, buf, head_len);
    evbuffer_drain(in, head_len);
    /* Re-parse the private copy so every view points into memory we own;
     * it cannot fail differently from the parse that found the head. */
    struct http1_error perr;
    http1_parse_request(hs->head, head_len, 0, &hs->req, &perr);
    struct ws_hs_error herr;
    if (ws_handshake_target(&hs->req, &hs->hs, &herr) != 0) {
        reject(c, herr.status, herr.reason, NULL);
        return;
    }
    c->route = router_match(c->wsnap->snap->router, hs->hs.host, hs->hs.host_len,
                            hs->hs.path, hs->hs.path_len);
    if (c->route == NULL) {
        reject(c, 404, "no route for this path", NULL);
        return;
    }
    if (ws_handshake_validate(&hs->req, &hs->hs, &herr) != 0) {
        reject(c, herr.status, herr.reason, NULL);
        return;
    }
    if (!origin_ok(c)) {
        reject(c, 403, "origin not allowed", NULL);
        return;
    }
    if (c->route->nauth > 0) {
        unsigned wait = throttle_wait(c);
        if (wait > 0) {
            struct gw_response_extra extra = {.retry_after = wait};
            reject(c, 429, "too many failed authentication attempts", &extra);
            return;
        }
        authenticate(c);
        return;
    }
    admit(c);
}

static void
read_head(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = (size_t)conn_limits(c)->max_request_head;
    size_t len = evbuffer_get_length(in);
    size_t n = len < max ? len : max;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    struct http1_request req;
    struct http1_error err;
    int r = http1_parse_request(buf, n, c->last_len, &req, &err);
    if (r == -2) {
        if (n >= max)
            reject(c, 431, "request head too large", NULL);
        else
            c->last_len = n;
        return;
    }
    if (r < 0) {
        reject(c, err.status, err.reason, NULL);
        return;
    }
    on_head(c, buf, (size_t)r);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    switch (c->state) {
    case GW_CONN_HEAD:
        read_head(c);
        return;
    case GW_CONN_AUTH:
    case GW_CONN_UPSTREAM:
        /* A client may not send frames before the 101; they wait, bounded
         * by the read watermark, and are processed after the upgrade. */
        return;
    case GW_CONN_TUNNEL: /* the tunnel has its own callbacks */
        return;
    case GW_CONN_WS:
        gw_ws_on_read(c->ws);
        return;
    case GW_CONN_CLOSING:
        c->discarded += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->discarded > GW_LINGER_BYTES)
            conn_close(c);
        return;
    case GW_CONN_CLOSED:
        return;
    }
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;
    if (c->state == GW_CONN_WS) {
        gw_ws_on_write(c->ws);
        return;
    }
    if (c->state != GW_CONN_CLOSING || c->shut_wr ||
        evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (c->peer_eof) /* nothing left to wait for */
        conn_close(c);
    else
        start_linger(c);
}

/* Drains the connection's OpenSSL errors into one log line: a client's
 * failed handshake is its problem, logged at info. */
static void
log_tls_error(struct gw_conn *c)
{
    char msg[512];
    size_t o = 0;
    unsigned long e;
    msg[0] = '\0';
    while ((e = bufferevent_get_openssl_error(c->bev)) != 0 && o + 2 < sizeof(msg)) {
        if (o > 0)
            msg[o++] = ';';
        ERR_error_string_n(e, msg + o, sizeof(msg) - o);
        o += strlen(msg + o);
    }
    if (o == 0)
        return; /* a plain reset or EOF: nothing TLS-specific to say */
    char q[600];
    GW_LOG_INFO("tls_error", "error=\"%s\" peer=%s conn=%llu",
                gw_log_quote(q, sizeof(q), msg, o), c->peer, (unsigned long long)c->id);
}

static void
conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct gw_conn *c = arg;
    if (events & BEV_EVENT_CONNECTED)
        return; /* a TLS handshake finished; the head comes next */
    if ((events & BEV_EVENT_ERROR) && c->tls && c->state != GW_CONN_WS)
        log_tls_error(c);
    if (c->state == GW_CONN_WS) {
        if (events & BEV_EVENT_TIMEOUT)
            gw_ws_on_timeout(c->ws, (events & BEV_EVENT_WRITING) != 0);
        else
            gw_ws_on_eof(c->ws);
        return;
    }
    /* A client that shut its side may still read our response. */
    if (c->state == GW_CONN_CLOSING && events == (BEV_EVENT_EOF | BEV_EVENT_READING) &&
        !c->shut_wr && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        c->peer_eof = true; /* close once flushed */
        return;
    }
    /* EOF, error or timeout before the upgrade: nobody is left to answer. */
    if (c->state == GW_CONN_HEAD && evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
        (events & BEV_EVENT_EOF))
        GW_LOG_DEBUG("client_gone", "state=head peer=%s conn=%llu", c->peer,
                     (unsigned long long)c->id);
    conn_close(c);
}

static void
peer_text(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    const void *a = NULL;
    if (sa != NULL && sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa != NULL && sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (a == NULL || inet_ntop(sa->sa_family, a, out, INET6_ADDRSTRLEN) == NULL)
        strcpy(out, "-");
}

/* A client sends its head as soon as its connect completes, so it is
 * usually there when we accept: read it now instead of one trip through
 * epoll later (HAProxy does the same). One recv; nothing there is fine,
 * the read event will say when it comes. */
static void
read_early(struct gw_conn *c, size_t max)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_iovec v;
    /* The bufferevent froze its input's end: only its reads add there.
     * This is one of them, done the way it does its own. */
    evbuffer_unfreeze(in, 0);
    bool got = false;
    if (evbuffer_reserve_space(in, (ev_ssize_t)max, &v, 1) == 1) {
        ssize_t n = recv(bufferevent_getfd(c->bev), v.iov_base, max, 0);
        /* n <= 0: EAGAIN, or an EOF the bufferevent reads again */
        v.iov_len = n > 0 ? (size_t)n : 0;
        got = n > 0 && evbuffer_commit_space(in, &v, 1) == 0;
    }
    evbuffer_freeze(in, 0);
    if (got)
        read_head(c);
}

int
gw_conn_accept(struct gw_ctx *ctx, struct bufferevent *bev, const struct sockaddr *addr,
               bool tls)
{
    struct gw_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->timer = event_new(ctx->base, -1, 0, timer_cb, c)) == NULL) {
        free(c);
        bufferevent_free(bev);
        return -1;
    }
    c->ctx = ctx;
    c->bev = bev;
    c->tls = tls;
    c->id = ++ctx->next_id;
    c->wsnap = ctx->wsnap;
    gw_wsnap_ref(c->wsnap);
    peer_text(addr, c->peer);
    c->state = GW_CONN_HEAD;
    list_push(&ctx->conns, c);
    ctx->nconns++;
    bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);

    const struct cfg_limits *lim = conn_limits(c);
    unsigned long prev = atomic_fetch_add(&ctx->shared->nconns, 1);
    c->admitted = true;
    if (ctx->draining || prev >= lim->max_connections) {
        atomic_fetch_sub(&ctx->shared->nconns, 1);
        c->admitted = false;
        struct gw_response_extra extra = {.retry_after = ctx->draining ? 5 : 1};
        reject(c, 503, ctx->draining ? "shutting down" : "too many connections", &extra);
        return 0;
    }
    /* Bound what a client can make us hold before its head is complete. */
    bufferevent_setwatermark(bev, EV_READ, 0, (size_t)lim->max_request_head);
    /* Write interest comes with the answer (enter_closing, the endpoint,
     * the tunnel): armed now, it would only report an empty queue. */
    bufferevent_enable(bev, EV_READ);
    arm_timer(c, lim->handshake_timeout_ms);
    if (!tls)
        read_early(c, (size_t)lim->max_request_head);
    return 0;
}

void
gw_ctx_drain(struct gw_ctx *ctx)
{
    ctx->draining = true;
    struct gw_conn *next;
    for (struct gw_conn *c = ctx->conns; c != NULL; c = next) {
        next = c->next;
        struct gw_response_extra extra = {.retry_after = 5};
        switch (c->state) {
        case GW_CONN_HEAD:
            if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
                conn_close(c);
            else
                reject(c, 503, "shutting down", &extra);
            break;
        case GW_CONN_AUTH:
        case GW_CONN_UPSTREAM:
            reject(c, 503, "shutting down", &extra);
            break;
        case GW_CONN_TUNNEL:
            gw_tunnel_drain(c->tunnel);
            break;
        case GW_CONN_WS:
            gw_ws_close(c->ws, WS_CLOSE_GOING_AWAY, "server shutting down");
            break;
        case GW_CONN_CLOSING:
        case GW_CONN_CLOSED:
            break;
        }
    }
    /* Let the reaper report emptiness even when nothing was open. */
    event_active(ctx->ev_reap, EV_TIMEOUT, 0);
}

int
gw_ctx_init(struct gw_ctx *ctx, struct event_base *base, struct gw_shared *shared,
            unsigned worker_id)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = base;
    ctx->shared = shared;
    ctx->worker_id = worker_id;
    ctx->ev_reap = event_new(base, -1, 0, reap_cb, ctx);
    return ctx->ev_reap == NULL ? -1 : 0;
}

void
gw_ctx_cleanup(struct gw_ctx *ctx)
{
    while (ctx->conns != NULL) {
        struct gw_conn *c = ctx->conns;
        list_remove(&ctx->conns, c);
        conn_free(c);
    }
    while (ctx->reap != NULL) {
        struct gw_conn *c = ctx->reap;
        list_remove(&ctx->reap, c);
        conn_free(c);
    }
    if (ctx->ev_reap != NULL)
        event_free(ctx->ev_reap);
    ctx->ev_reap = NULL;
    gw_wsnap_unref(ctx->wsnap);
    ctx->wsnap = NULL;
}
