/* upstream: connects to a route's upstream and relays the upgrade, with retries. */
#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway/balancer.h"
#include "gateway/log.h"
#include "gateway/tls.h"

/* The most of a refusing upstream's body passed on to the client. */
#define GW_UP_BODY_MAX 4096

struct gw_up_target {
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0 until resolved */
    bool literal;      /* an IP literal: never resolved again */
    uint64_t resolved_ms;
};

struct probe_arg {
    struct gw_up_route *ur;
    size_t idx;
};

struct gw_up_route {
    const struct cfg_route *cfg;
    struct balancer *bal;
    struct gw_up_target *targets; /* parallel to cfg->upstreams */
    SSL_CTX *tls;                 /* for wss:// upstreams, or NULL */
    /* Active health checks: one probe per upstream at most. */
    struct event *health_timer;
    struct gw_up **probes;   /* parallel to targets */
    bool *down;              /* the last verdict of each, to log changes only */
    struct probe_arg *pargs; /* each probe's callback argument */
    struct event_base *base;
    struct evdns_base *dns;
};

enum gw_up_state {
    GW_UP_IDLE = 1,   /* between tries */
    GW_UP_RESOLVING,  /* evdns lookup pending */
    GW_UP_CONNECTING, /* TCP (and TLS) connect; timer: connect_timeout */
    GW_UP_WAITING,    /* request sent; timer: upstream_timeout */
    GW_UP_BODY,       /* reading a refusal's short body; same timer */
};

struct gw_up {
    struct gw_up_params p;
    gw_up_done_fn done;
    void *arg;
    enum gw_up_state state;
    int idx;        /* upstream being tried */
    bool counted;   /* idx's least_conn count includes this attempt */
    uint64_t tried; /* bitmap of upstreams tried */
    struct evdns_getaddrinfo_request *dns_req;
    struct bufferevent *bev;
    struct event *timer;
    struct event *kick; /* runs the next try from the loop, never inline */
    size_t last_len;
    size_t head_len; /* a refusal's head, still at the front of the input */
    size_t body_len; /* the part of its body we wait for */
    struct http1_response resp;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
target_literal(struct gw_up_target *t, const struct cfg_upstream *u)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
    if (inet_pton(AF_INET, u->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(u->port);
        t->addrlen = sizeof(*a4);
    } else if (inet_pton(AF_INET6, u->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(u->port);
        t->addrlen = sizeof(*a6);
    } else {
        return 0;
    }
    t->literal = true;
    return 1;
}

/* The client TLS context of a route with wss:// upstreams. */
static SSL_CTX *
client_tls(const struct cfg_route *r, struct gw_err *err)
{
    const struct cfg_upstream_tls *t = r->upstream_tls;
    char detail[400];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    bool verify = t == NULL || t->verify;
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (t != NULL && t->ca_file != NULL
            ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1
            : SSL_CTX_set_default_verify_paths(ctx) != 1)
        goto fail;
    if (t != NULL && t->certificate != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, t->certificate) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1))
        goto fail;
    return ctx;
fail:
    gw_tls_errors(detail, sizeof(detail));
    gw_err_set(err, "route %s: upstream TLS: %s", r->name, detail);
    SSL_CTX_free(ctx);
    return NULL;
}

struct gw_up_route *
gw_up_route_new(const struct cfg_route *route, unsigned seed, struct gw_err *err)
{
    struct gw_up_route *ur = calloc(1, sizeof(*ur));
    if (ur == NULL ||
        (ur->targets = calloc(route->nupstreams, sizeof(*ur->targets))) == NULL ||
        (ur->bal = balancer_new(route->balance, route->upstreams, route->nupstreams,
                                seed)) == NULL) {
        gw_up_route_free(ur);
        gw_err_set(err, "out of memory");
        return NULL;
    }
    ur->cfg = route;
    bool any_tls = false;
    for (size_t i = 0; i < route->nupstreams; i++) {
        target_literal(&ur->targets[i], &route->upstreams[i]);
        any_tls |= route->upstreams[i].tls;
    }
    if (any_tls && (ur->tls = client_tls(route, err)) == NULL) {
        gw_up_route_free(ur);
        return NULL;
    }
    return ur;
}

void
gw_up_route_free(struct gw_up_route *ur)
{
    if (ur == NULL)
        return;
    gw_up_route_stop_health(ur);
    balancer_free(ur->bal);
    SSL_CTX_free(ur->tls);
    free(ur->targets);
    free(ur);
}

void
gw_up_route_conn_end(struct gw_up_route *ur, size_t upstream)
{
    balancer_conn_end(ur->bal, upstream);
}

static void arm(struct gw_up *up, uint64_t ms);

static void
drop_bev(struct gw_up *up)
{
    if (up->bev != NULL)
        bufferevent_free(up->bev);
    up->bev = NULL;
}

/* least_conn counts attempts in flight too: a burst of clients would
 * otherwise all pick the upstream that has no established connection yet. */
static void
uncount(struct gw_up *up)
{
    if (up->counted)
        balancer_conn_end(up->p.route->bal, (size_t)up->idx);
    up->counted = false;
}

/* Frees the attempt; the upstream connection unless it was handed over. */
static void
up_free(struct gw_up *up)
{
    uncount(up);
    if (up->dns_req != NULL)
        evdns_getaddrinfo_cancel(up->dns_req);
    drop_bev(up);
    event_free(up->timer);
    event_free(up->kick);
    free(up);
}

/* Reports the outcome and frees the attempt: the end of every path. */
static void
finish(struct gw_up *up, struct gw_up_result *res)
{
    res->upstream = up->idx < 0 ? 0 : (size_t)up->idx;
    if (res->status == 101) {
        res->bev = up->bev;
        up->bev = NULL;
        bufferevent_setcb(res->bev, NULL, NULL, NULL, NULL);
        up->counted = false; /* the connection keeps the count: conn_end */
    }
    up->done(up->arg, res);
    up_free(up);
}

static void
fail_with(struct gw_up *up, int status, const char *reason)
{
    struct gw_up_result res = {.status = status, .reason = reason};
    finish(up, &res);
}

/* This upstream could not be reached: skip it for a while, try another. */
static void
unreachable(struct gw_up *up, const char *why)
{
    const struct cfg_upstream *u = &up->p.cfg->upstreams[up->idx];
    if (up->p.probe >= 0) {
        fail_with(up, 502, why); /* the health check decides, not the back-off */
        return;
    }
    GW_LOG_WARN("upstream_down", "route=%s upstream=%s:%u error=\"%s\" backoff_ms=%llu",
                up->p.cfg->name, u->host, u->port, why,
                (unsigned long long)up->p.cfg->backoff_ms);
    balancer_mark_down(up->p.route->bal, (size_t)up->idx,
                       now_ms() + up->p.cfg->backoff_ms);
    uncount(up);
    drop_bev(up);
    event_del(up->timer);
    up->state = GW_UP_IDLE;
    event_active(up->kick, EV_TIMEOUT, 0);
}

static void
send_request(struct gw_up *up)
{
    balancer_mark_up(up->p.route->bal, (size_t)up->idx);
    struct evbuffer *out = bufferevent_get_output(up->bev);
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)up->p.request_cap, &v, 1) < 1) {
        fail_with(up, 502, "out of memory");
        return;
    }
    int n = up->p.build_request(up->p.build_arg, (size_t)up->idx, v.iov_base, v.iov_len);
    if (n < 0) {
        fail_with(up, 502, "cannot build the upstream request");
        return;
    }
    v.iov_len = (size_t)n;
    evbuffer_commit_space(out, &v, 1);
    up->state = GW_UP_WAITING;
    bufferevent_setwatermark(up->bev, EV_READ, 0, up->p.max_head);
    short what = EV_READ | EV_WRITE;
    if (bufferevent_openssl_get_ssl(up->bev) == NULL) {
        /* Plain and connected: write now rather than when epoll says the
         * socket can take it, which it can. The bufferevent froze its
         * output's start so that only it writes from there; this is such
         * a write. Write interest only for what is left. */
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, bufferevent_getfd(up->bev));
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) == 0)
            what = EV_READ;
    }
    bufferevent_enable(up->bev, what);
    arm(up, up->p.timeout_ms ? up->p.timeout_ms : up->p.cfg->upstream_timeout_ms);
}

/* Passes a refusal (4xx/5xx) on: its status, the headers a client acts on,
 * and a body of at most GW_UP_BODY_MAX bytes. */
static void
pass_refusal(struct gw_up *up)
{
    static const char *const kept[] = {"www-authenticate", "retry-after", "content-type"};
    struct evbuffer *in = bufferevent_get_input(up->bev);
    size_t avail = evbuffer_get_length(in) - up->head_len;
    size_t body = avail < up->body_len ? avail : up->body_len;
    /* More input may have moved the head: parse it again where it is now. */
    const char *buf =
        (const char *)evbuffer_pullup(in, (ev_ssize_t)(up->head_len + body));
    struct http1_error err;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL || http1_parse_response(buf, up->head_len, 0, &up->resp, &err) < 0) {
        if (out != NULL)
            evbuffer_free(out);
        fail_with(up, 502, "out of memory");
        return;
    }
    const struct http1_response *r = &up->resp;
    evbuffer_add_printf(out, "HTTP/1.1 %d %.*s\r\n", r->status, (int)r->reason_len,
                        r->reason);
    for (size_t i = 0; i < r->num_headers; i++)
        for (size_t k = 0; k < sizeof(kept) / sizeof(kept[0]); k++)
            if (http1_str_ieq(r->headers[i].name, r->headers[i].name_len, kept[k]))
                evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)r->headers[i].name_len,
                                    r->headers[i].name, (int)r->headers[i].value_len,
                                    r->headers[i].value);
    evbuffer_add_printf(out, "Connection: close\r\nContent-Length: %zu\r\n\r\n", body);
    evbuffer_add(out, buf + up->head_len, body);
    struct gw_up_result res = {
        .status = r->status,
        .response = (const char *)evbuffer_pullup(out, -1),
        .response_len = evbuffer_get_length(out),
        .reason = "upstream refused the upgrade",
    };
    finish(up, &res);
    evbuffer_free(out);
}

/* How much of a refusal's body to wait for (and pass on): its
 * Content-Length; none for a chunked one (not worth decoding for an error);
 * otherwise it ends when the upstream closes (RFC 9112 §6.3), so wait for
 * GW_UP_BODY_MAX or the close, whichever comes first. */
static size_t
refusal_body_len(const struct http1_response *r)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct http1_header *h = &r->headers[i];
        if (http1_str_ieq(h->name, h->name_len, "transfer-encoding"))
            return 0;
        if (!http1_str_ieq(h->name, h->name_len, "content-length"))
            continue;
        unsigned long n = strtoul(h->value, NULL, 10);
        return n > GW_UP_BODY_MAX ? GW_UP_BODY_MAX : (size_t)n;
    }
    return r->status == 204 || r->status == 304 ? 0 : GW_UP_BODY_MAX;
}

static void
on_head(struct gw_up *up, size_t head_len)
{
    struct gw_up_result res = {0};
    struct upstream_choice choice;
    char head[1024];
    switch (upstream_resp_check(&up->resp, &up->p.offer, &choice)) {
    case UPSTREAM_ACCEPTED: {
        int n = upstream_resp_client_101(up->p.offer.key, up->p.offer.key_len, &choice,
                                         head, sizeof(head));
        if (n < 0) {
            fail_with(up, 502, "upstream choices too long");
            return;
        }
        /* The head is answered; what follows are the upstream's frames. */
        evbuffer_drain(bufferevent_get_input(up->bev), head_len);
        res = (struct gw_up_result){.status = 101,
                                    .response = head,
                                    .response_len = (size_t)n,
                                    .reason = "upgraded"};
        finish(up, &res);
        return;
    }
    case UPSTREAM_REFUSED:
        up->head_len = head_len;
        up->body_len = refusal_body_len(&up->resp);
        up->state = GW_UP_BODY;
        if (evbuffer_get_length(bufferevent_get_input(up->bev)) >=
            head_len + up->body_len)
            pass_refusal(up);
        return;
    case UPSTREAM_INVALID:
        fail_with(up, 502, choice.reason ? choice.reason : "invalid upstream response");
        return;
    }
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_up *up = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if (up->state == GW_UP_BODY) {
        if (len >= up->head_len + up->body_len)
            pass_refusal(up);
        return;
    }
    if (up->state != GW_UP_WAITING)
        return;
    size_t n = len < up->p.max_head ? len : up->p.max_head;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    struct http1_error err;
    int r = http1_parse_response(buf, n, up->last_len, &up->resp, &err);
    if (r == -2 && n >= up->p.max_head) {
        fail_with(up, 502, "upstream response head too large");
        return;
    }
    if (r == -2) {
        up->last_len = n;
        return;
    }
    if (r < 0) {
        fail_with(up, 502, "malformed upstream response");
        return;
    }
    /* The views in up->resp point into the input until it is drained. */
    on_head(up, (size_t)r);
}

static void
event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct gw_up *up = arg;
    if (events & BEV_EVENT_CONNECTED) {
        send_request(up);
        return;
    }
    char why[256];
    unsigned long tls_err = 0;
    if (up->p.cfg->upstreams[up->idx].tls && (events & BEV_EVENT_ERROR) &&
        (tls_err = bufferevent_get_openssl_error(bev)) != 0) {
        /* OpenSSL's reason, and the certificate's when it failed to verify. */
        char reason[160];
        ERR_error_string_n(tls_err, reason, sizeof(reason));
        while (bufferevent_get_openssl_error(bev) != 0)
            ;
        ERR_clear_error();
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
        snprintf(why, sizeof(why), "TLS handshake failed: %s%s%s", reason,
                 v != X509_V_OK ? ": " : "",
                 v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    } else {
        snprintf(why, sizeof(why), "%s",
                 (events & BEV_EVENT_EOF)
                     ? "connection closed"
                     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    if (up->state == GW_UP_CONNECTING) {
        unreachable(up, why);
        return;
    }
    if (up->state == GW_UP_BODY) {
        pass_refusal(up); /* the upstream closed after a short body */
        return;
    }
    fail_with(up, 502, "upstream closed before answering the upgrade");
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_up *up = arg;
    switch (up->state) {
    case GW_UP_CONNECTING:
        unreachable(up, "connect timeout");
        return;
    case GW_UP_WAITING:
        fail_with(up, 504, "upstream did not answer the upgrade in time");
        return;
    case GW_UP_BODY:
        pass_refusal(up);
        return;
    case GW_UP_RESOLVING:
        /* connect_timeout covers the lookup too: a resolver that does not
         * answer must not hold the client until evdns gives up. */
        if (up->dns_req != NULL) {
            struct evdns_getaddrinfo_request *req = up->dns_req;
            up->dns_req = NULL;
            evdns_getaddrinfo_cancel(req); /* dns_cb sees EVUTIL_EAI_CANCEL */
        }
        unreachable(up, "DNS lookup timed out");
        return;
    case GW_UP_IDLE:
        return;
    }
}

/* The lookup and the connect together; a probe has its own timeout. */
static uint64_t
connect_timeout_ms(const struct gw_up *up)
{
    return up->p.timeout_ms ? up->p.timeout_ms : up->p.cfg->connect_timeout_ms;
}

static void
arm(struct gw_up *up, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(up->timer, &tv);
}

/* Frames are relayed as they come: Nagle would hold a message's tail
 * behind the upstream's delayed ACK (40 ms a 64 KiB message). */
static void
no_delay(evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A plain upstream: connects its own socket. On loopback and most LANs the
 * TCP handshake is over by the time connect returns; then the request goes
 * out at once, as HAProxy sends it, instead of after a trip through epoll
 * for write readiness. Otherwise the bufferevent waits for the connect. */
static void
connect_plain(struct gw_up *up, const struct gw_up_target *t)
{
    const struct sockaddr *sa = (const struct sockaddr *)&t->addr;
    evutil_socket_t fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        unreachable(up, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return;
    }
    no_delay(fd);
    if (connect(fd, sa, t->addrlen) != 0 && errno != EINPROGRESS) {
        char why[128];
        snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(errno));
        close(fd);
        unreachable(up, why);
        return;
    }
    if ((up->bev = bufferevent_socket_new(up->p.base, fd, BEV_OPT_CLOSE_ON_FREE)) ==
        NULL) {
        close(fd);
        fail_with(up, 502, "out of memory");
        return;
    }
    bufferevent_setcb(up->bev, read_cb, NULL, event_cb, up);
    /* A new bufferevent starts with writing enabled: it would arm write
     * interest as soon as the request is queued. */
    bufferevent_disable(up->bev, EV_WRITE);
    up->state = GW_UP_CONNECTING;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        ti.tcpi_state == TCP_ESTABLISHED) {
        send_request(up);
        return;
    }
    arm(up, connect_timeout_ms(up));
    /* No address: the bufferevent waits for the connect already started. */
    if (bufferevent_socket_connect(up->bev, NULL, 0) != 0)
        unreachable(up, "connect failed");
}

static void
connect_to(struct gw_up *up, const struct gw_up_target *t)
{
    const struct cfg_upstream *u = &up->p.cfg->upstreams[up->idx];
    if (u->tls) {
        SSL *ssl = SSL_new(up->p.route->tls);
        const char *name = up->p.cfg->upstream_tls && up->p.cfg->upstream_tls->server_name
                               ? up->p.cfg->upstream_tls->server_name
                               : u->host;
        if (ssl == NULL) {
            fail_with(up, 502, "out of memory");
            return;
        }
        /* No IP address in SNI (RFC 6066 §3); a configured name always. */
        if (name != u->host || !t->literal)
            SSL_set_tlsext_host_name(ssl, name);
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
            SSL_set1_host(ssl, name);
        up->bev = bufferevent_openssl_socket_new(
            up->p.base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    } else {
        connect_plain(up, t);
        return;
    }
    if (up->bev == NULL) {
        fail_with(up, 502, "out of memory");
        return;
    }
    bufferevent_setcb(up->bev, read_cb, NULL, event_cb, up);
    up->state = GW_UP_CONNECTING;
    arm(up, connect_timeout_ms(up));
    if (bufferevent_socket_connect(up->bev, (const struct sockaddr *)&t->addr,
                                   (int)t->addrlen) != 0) {
        unreachable(up, "connect failed");
        return;
    }
    no_delay(bufferevent_getfd(up->bev));
}

static void
dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    /* A cancelled lookup is answered later, from evdns's deferred queue,
     * when the attempt may be freed already: touch nothing then. */
    if (result == EVUTIL_EAI_CANCEL)
        return;
    struct gw_up *up = arg;
    up->dns_req = NULL;
    if (result != 0 || res == NULL) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        unreachable(up, evutil_gai_strerror(result));
        return;
    }
    struct gw_up_target *t = &up->p.route->targets[up->idx];
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = (socklen_t)res->ai_addrlen;
    t->resolved_ms = now_ms();
    evutil_freeaddrinfo(res);
    connect_to(up, t);
}

static void
resolve(struct gw_up *up)
{
    const struct cfg_upstream *u = &up->p.cfg->upstreams[up->idx];
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_ADDRCONFIG};
    up->state = GW_UP_RESOLVING;
    arm(up, connect_timeout_ms(up));
    /* evdns may answer before returning (then NULL comes back and dns_cb
     * already ran): keep the handle only while the lookup is pending. */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(up->p.dns, u->host, port, &hints, dns_cb, up);
    if (req != NULL && up->state == GW_UP_RESOLVING)
        up->dns_req = req;
}

/* Picks the next upstream and tries it; runs from the event loop only. */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_up *up = arg;
    uint64_t now = now_ms();
    if (up->p.probe >= 0)
        up->idx = up->tried != 0 ? -1 : up->p.probe;
    else
        up->idx = balancer_pick(up->p.route->bal, up->p.client_ip, up->p.subject,
                                up->tried, now);
    if (up->idx < 0) {
        up->idx = 0;
        fail_with(up, 502, "no upstream could be reached");
        return;
    }
    up->tried |= (uint64_t)1 << up->idx;
    up->last_len = 0;
    if (up->p.probe < 0) {
        balancer_conn_start(up->p.route->bal, (size_t)up->idx);
        up->counted = true;
    }
    struct gw_up_target *t = &up->p.route->targets[up->idx];
    if (t->literal ||
        (t->addrlen > 0 && now - t->resolved_ms < up->p.cfg->resolve_interval_ms))
        connect_to(up, t);
    else
        resolve(up);
}

struct gw_up *
gw_up_start(const struct gw_up_params *p, gw_up_done_fn done, void *arg)
{
    struct gw_up *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->p = *p;
    up->done = done;
    up->arg = arg;
    up->state = GW_UP_IDLE;
    up->idx = -1;
    up->timer = evtimer_new(p->base, timer_cb, up);
    up->kick = event_new(p->base, -1, 0, kick_cb, up);
    if (up->timer == NULL || up->kick == NULL) {
        if (up->timer != NULL)
            event_free(up->timer);
        if (up->kick != NULL)
            event_free(up->kick);
        free(up);
        return NULL;
    }
    event_active(up->kick, EV_TIMEOUT, 0);
    return up;
}

void
gw_up_cancel(struct gw_up *up)
{
    if (up != NULL)
        up_free(up);
}

/* ---- active health checks ---- */

/* Any valid key will do: the probe only checks that a 101 comes back. */
static const char probe_key[] = "d3NnYXRlLWhlYWx0aC1jaw==";

static int
build_probe(void *arg, size_t idx, char *out, size_t cap)
{
    struct gw_up_route *ur = arg;
    const struct cfg_upstream *u = &ur->cfg->upstreams[idx];
    bool v6 = strchr(u->host, ':') != NULL;
    int n =
        snprintf(out, cap,
                 "GET %s%s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\nUser-Agent: wsgate-health-check\r\n\r\n",
                 u->path, ur->cfg->health_check->path, v6 ? "[" : "", u->host,
                 v6 ? "]" : "", (unsigned)u->port, probe_key);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static void
probe_done(void *arg, const struct gw_up_result *res)
{
    struct probe_arg *pa = arg;
    struct gw_up_route *ur = pa->ur;
    size_t i = pa->idx;
    ur->probes[i] = NULL;
    const struct cfg_upstream *u = &ur->cfg->upstreams[i];
    bool was_down = ur->down[i];
    ur->down[i] = res->status != 101;
    if (res->status == 101) {
        bufferevent_free(res->bev);
        balancer_mark_up(ur->bal, i);
        if (was_down)
            GW_LOG_INFO("health_check", "route=%s upstream=%s:%u result=up",
                        ur->cfg->name, u->host, u->port);
        return;
    }
    balancer_mark_down(ur->bal, i, UINT64_MAX); /* until a check passes again */
    if (!was_down)
        GW_LOG_WARN("health_check",
                    "route=%s upstream=%s:%u result=down status=%d reason=\"%s\"",
                    ur->cfg->name, u->host, u->port, res->status, res->reason);
}

static void
health_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_up_route *ur = arg;
    const struct cfg_health_check *hc = ur->cfg->health_check;
    for (size_t i = 0; i < ur->cfg->nupstreams; i++) {
        if (ur->probes[i] != NULL)
            continue; /* still running: its own timeouts end it */
        struct probe_arg *pa = &ur->pargs[i];
        *pa = (struct probe_arg){ur, i};
        struct gw_up_params p = {
            .route = ur,
            .cfg = ur->cfg,
            .base = ur->base,
            .dns = ur->dns,
            .build_request = build_probe,
            .build_arg = ur,
            .request_cap = 1024 + strlen(hc->path) + strlen(ur->cfg->upstreams[i].path),
            .offer = {.key = probe_key, .key_len = sizeof(probe_key) - 1},
            .client_ip = "-",
            .max_head = 16384,
            .probe = (int)i,
            .timeout_ms = hc->timeout_ms,
        };
        ur->probes[i] = gw_up_start(&p, probe_done, pa); /* NULL: next round */
    }
    struct timeval tv = {(time_t)(hc->interval_ms / 1000),
                         (suseconds_t)(hc->interval_ms % 1000) * 1000};
    event_add(ur->health_timer, &tv);
}

int
gw_up_route_start_health(struct gw_up_route *ur, struct event_base *base,
                         struct evdns_base *dns, struct gw_err *err)
{
    if (ur->cfg->health_check == NULL)
        return 0;
    ur->base = base;
    ur->dns = dns;
    ur->probes = calloc(ur->cfg->nupstreams, sizeof(*ur->probes));
    ur->down = calloc(ur->cfg->nupstreams, sizeof(*ur->down));
    ur->pargs = calloc(ur->cfg->nupstreams, sizeof(*ur->pargs));
    ur->health_timer = evtimer_new(base, health_cb, ur);
    if (ur->probes == NULL || ur->down == NULL || ur->pargs == NULL ||
        ur->health_timer == NULL)
        return gw_err_set(err, "out of memory");
    event_active(ur->health_timer, EV_TIMEOUT, 0); /* the first round at once */
    return 0;
}

void
gw_up_route_stop_health(struct gw_up_route *ur)
{
    if (ur->health_timer != NULL)
        event_free(ur->health_timer);
    ur->health_timer = NULL;
    for (size_t i = 0; ur->probes != NULL && i < ur->cfg->nupstreams; i++)
        gw_up_cancel(ur->probes[i]);
    free(ur->probes);
    ur->probes = NULL;
    free(ur->down);
    ur->down = NULL;
    free(ur->pargs);
    ur->pargs = NULL;
}
