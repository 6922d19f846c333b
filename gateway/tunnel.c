/* tunnel: relays frames between a client and its upstream, tracking boundaries. */
#include "gateway/tunnel.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/log.h"
#include "gateway/ws_frame.h"

/* One direction of the relay: frames read from `from` go to `to`. The frame
 * headers are parsed (never the payloads, which stay masked), so the tunnel
 * knows where each frame and message ends. */
struct tun_dir {
    struct bufferevent *from, *to;
    struct ws_frame_rules rules;
    bool to_upstream;   /* the upstream is `to`: injected frames are masked */
    uint64_t remaining; /* payload bytes of the current frame still to move */
    uint64_t msg_len;   /* data bytes of the current message so far */
    bool closed_frame;  /* a close frame went through */
    bool injected;      /* our own close went into this stream */
    bool eof;           /* `from` is at EOF */
    bool shut;          /* `to` got its write side shut */
    uint64_t msgs, bytes;
};

struct gw_tunnel {
    struct tun_dir up;   /* client to upstream */
    struct tun_dir down; /* upstream to client */
    struct gw_tunnel_env env;
    uint16_t closing; /* code we are closing both sides with, or 0 */
    const char *why;
    bool done;
    struct event *timer; /* idle checks, then the close deadline */
    struct timeval last; /* last time a byte moved */
};

static void pump(struct gw_tunnel *t, struct tun_dir *d);

static void
finish(struct gw_tunnel *t)
{
    if (t->done)
        return;
    t->done = true;
    bufferevent_disable(t->up.from, EV_READ);
    bufferevent_disable(t->down.from, EV_READ);
    t->env.finished(t->env.owner);
}

static void
arm(struct gw_tunnel *t, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(t->timer, &tv);
}

/* Writes our close frame into d's stream; masked towards the upstream, as
 * a client must. */
static void
inject_close(struct tun_dir *d, uint16_t code, const char *why)
{
    uint8_t payload[WS_CONTROL_MAX], hdr[WS_FRAME_MAX_HEADER], mask[4] = {0};
    size_t n = ws_close_build(payload, code, why);
    if (d->to_upstream)
        RAND_bytes(mask, sizeof(mask));
    size_t hl = ws_frame_encode_header(hdr, true, 0, WS_OP_CLOSE,
                                       d->to_upstream ? mask : NULL, n);
    if (d->to_upstream)
        ws_frame_mask(payload, n, mask, 0);
    struct evbuffer *out = bufferevent_get_output(d->to);
    evbuffer_add(out, hdr, hl);
    evbuffer_add(out, payload, n);
    d->injected = true;
    bufferevent_enable(d->to, EV_WRITE);
}

/* Ends the relay with `code` to both sides, each at its next frame
 * boundary; then both connections close once flushed. */
static void
close_both(struct gw_tunnel *t, uint16_t code, const char *why)
{
    if (t->closing != 0)
        return;
    GW_LOG_INFO("tunnel_close", "route=%s code=%u reason=\"%s\"", t->env.route, code,
                why);
    t->closing = code;
    t->why = why;
    arm(t, t->env.close_timeout_ms);
    pump(t, &t->up);
    pump(t, &t->down);
}

static bool
flushed(const struct tun_dir *d)
{
    return evbuffer_get_length(bufferevent_get_output(d->to)) == 0;
}

/* After our closes: finish once both went out. */
static void
check_closed(struct gw_tunnel *t)
{
    if (t->closing != 0 && t->up.injected && t->down.injected && flushed(&t->up) &&
        flushed(&t->down))
        finish(t);
}

/* At a frame boundary: parses the next header in d's input and moves it.
 * Returns 1 to go on, 0 to wait for more bytes, -1 when the relay ends. */
static int
next_frame(struct gw_tunnel *t, struct tun_dir *d, struct evbuffer *in,
           struct evbuffer *out)
{
    uint8_t hb[WS_FRAME_MAX_HEADER];
    size_t n = evbuffer_copyout(in, hb, sizeof(hb));
    struct ws_frame_header h;
    uint16_t code = 0;
    int hl = n < 2 ? -2 : ws_frame_parse_header(hb, n, &d->rules, &h, &code);
    if (hl == -2)
        return 0;
    if (hl < 0) {
        close_both(t, code,
                   d->to_upstream ? "client broke the protocol"
                                  : "upstream broke the protocol");
        return -1;
    }
    if (!ws_opcode_is_control(h.opcode)) {
        uint64_t base = h.opcode == WS_OP_CONTINUATION ? d->msg_len : 0;
        if (h.payload_len > t->env.max_message_size - base) {
            close_both(t, WS_CLOSE_TOO_BIG, "message too big");
            return -1;
        }
        d->msg_len = base + h.payload_len;
        if (h.fin) {
            d->msgs++;
            d->msg_len = 0;
        }
    } else if (h.opcode == WS_OP_CLOSE) {
        d->closed_frame = true;
    }
    evbuffer_remove_buffer(in, out, (size_t)hl);
    d->remaining = h.payload_len;
    return 1;
}

/* Moves what d's input holds to its output, frame by frame, until the
 * input is empty or the output is full. */
static void
pump(struct gw_tunnel *t, struct tun_dir *d)
{
    struct evbuffer *in = bufferevent_get_input(d->from);
    struct evbuffer *out = bufferevent_get_output(d->to);
    while (!t->done) {
        if (d->remaining == 0 && t->closing != 0) {
            /* At a boundary: our close goes in, the rest is dropped. */
            if (!d->injected)
                inject_close(d, t->closing, t->why);
            evbuffer_drain(in, evbuffer_get_length(in));
            check_closed(t);
            return;
        }
        if (evbuffer_get_length(out) >= t->env.buffer) {
            /* Backpressure: read again once `to` has taken half. */
            bufferevent_disable(d->from, EV_READ);
            bufferevent_setwatermark(d->to, EV_WRITE, t->env.buffer / 2, 0);
            return;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        if (d->remaining > 0) {
            size_t n = avail < d->remaining ? avail : (size_t)d->remaining;
            evbuffer_remove_buffer(in, out, n);
            d->remaining -= n;
            d->bytes += n;
            event_base_gettimeofday_cached(bufferevent_get_base(d->from), &t->last);
            continue;
        }
        if (next_frame(t, d, in, out) <= 0)
            return;
    }
}

/* `from` hit EOF: pass the half-close on once its bytes are out. */
static void
pass_eof(struct gw_tunnel *t, struct tun_dir *d)
{
    if (!d->eof || d->shut || !flushed(d))
        return;
    evutil_socket_t fd = bufferevent_getfd(d->to);
    struct tun_dir *other = d == &t->up ? &t->down : &t->up;
    /* Over TLS a raw shutdown would cut the record stream: end both. */
    if (other->eof || d->closed_frame || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        finish(t);
        return;
    }
    d->shut = true;
}

static void
drained(struct gw_tunnel *t, struct tun_dir *d)
{
    if (t->done)
        return;
    if (!d->eof && t->closing == 0 && !(bufferevent_get_enabled(d->from) & EV_READ) &&
        evbuffer_get_length(bufferevent_get_output(d->to)) <= t->env.buffer / 2) {
        bufferevent_setwatermark(d->to, EV_WRITE, 0, 0);
        bufferevent_enable(d->from, EV_READ);
        pump(t, d);
    }
    check_closed(t);
    pass_eof(t, d);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_tunnel *t = arg;
    pump(t, &t->up);
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_tunnel *t = arg;
    pump(t, &t->down);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_tunnel *t = arg;
    drained(t, &t->down);
}

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_tunnel *t = arg;
    drained(t, &t->up);
}

/* The upstream vanished without a close frame: the client is told so with
 * 1014 (bad gateway) at the next frame boundary, instead of a bare reset. */
static void
upstream_gone(struct gw_tunnel *t)
{
    struct tun_dir *d = &t->down;
    d->eof = true;
    pump(t, d);
    if (d->closed_frame || d->remaining != 0 || t->closing != 0) {
        finish(t);
        return;
    }
    GW_LOG_INFO("tunnel_close", "route=%s code=%u reason=\"upstream went away\"",
                t->env.route, WS_CLOSE_BAD_GATEWAY);
    t->closing = WS_CLOSE_BAD_GATEWAY;
    t->why = "upstream went away";
    t->up.injected = true; /* nothing more goes to a dead upstream */
    inject_close(d, t->closing, t->why);
    arm(t, t->env.close_timeout_ms);
    pump(t, &t->up); /* drops what the client still sends */
    check_closed(t);
}

static void
on_event(struct gw_tunnel *t, struct tun_dir *d, short events)
{
    if (t->done)
        return;
    if (d == &t->down && !d->closed_frame && t->closing == 0) {
        upstream_gone(t);
        return;
    }
    if ((events & BEV_EVENT_EOF) && (events & BEV_EVENT_READING)) {
        d->eof = true;
        pump(t, d);
        pass_eof(t, d);
        return;
    }
    finish(t); /* an error on either connection ends both */
}

static void
client_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct gw_tunnel *t = arg;
    on_event(t, &t->up, events);
}

static void
upstream_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct gw_tunnel *t = arg;
    on_event(t, &t->down, events);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_tunnel *t = arg;
    if (t->closing != 0) {
        finish(t); /* the close deadline */
        return;
    }
    struct timeval now, idle;
    event_base_gettimeofday_cached(bufferevent_get_base(t->up.from), &now);
    timersub(&now, &t->last, &idle);
    uint64_t ms = (uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000;
    if (ms >= t->env.idle_timeout_ms) {
        close_both(t, WS_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    arm(t, t->env.idle_timeout_ms - ms);
}

struct gw_tunnel *
gw_tunnel_new(struct bufferevent *client, struct bufferevent *upstream,
              const struct gw_tunnel_env *env)
{
    struct gw_tunnel *t = calloc(1, sizeof(*t));
    if (t == NULL ||
        (t->timer = evtimer_new(bufferevent_get_base(client), timer_cb, t)) == NULL) {
        free(t);
        bufferevent_free(upstream);
        return NULL;
    }
    t->env = *env;
    t->up = (struct tun_dir){.from = client,
                             .to = upstream,
                             .to_upstream = true,
                             .rules = {.allowed_rsv = 0x7, .require_masked = true}};
    t->down = (struct tun_dir){.from = upstream,
                               .to = client,
                               .rules = {.allowed_rsv = 0x7, .forbid_masked = true}};
    bufferevent_setcb(client, client_read_cb, client_write_cb, client_event_cb, t);
    bufferevent_setcb(upstream, upstream_read_cb, upstream_write_cb, upstream_event_cb,
                      t);
    return t;
}

void
gw_tunnel_start(struct gw_tunnel *t)
{
    struct bufferevent *bevs[2] = {t->up.from, t->down.from};
    for (size_t i = 0; i < 2; i++) {
        bufferevent_set_timeouts(bevs[i], NULL, NULL);
        bufferevent_setwatermark(bevs[i], EV_READ, 0, 0);
        bufferevent_setwatermark(bevs[i], EV_WRITE, 0, 0);
        bufferevent_enable(bevs[i], EV_READ | EV_WRITE);
    }
    event_base_gettimeofday_cached(bufferevent_get_base(t->up.from), &t->last);
    arm(t, t->env.idle_timeout_ms);
    pump(t, &t->down);
    pump(t, &t->up);
}

void
gw_tunnel_close(struct gw_tunnel *t, uint16_t code, const char *reason)
{
    close_both(t, code, reason);
}

void
gw_tunnel_drain(struct gw_tunnel *t)
{
    gw_tunnel_close(t, WS_CLOSE_GOING_AWAY, "server shutting down");
}

void
gw_tunnel_free(struct gw_tunnel *t)
{
    if (t == NULL)
        return;
    GW_LOG_DEBUG("tunnel_end",
                 "route=%s msgs_up=%llu msgs_down=%llu bytes_up=%llu "
                 "bytes_down=%llu",
                 t->env.route, (unsigned long long)t->up.msgs,
                 (unsigned long long)t->down.msgs, (unsigned long long)t->up.bytes,
                 (unsigned long long)t->down.bytes);
    event_free(t->timer);
    bufferevent_free(t->down.from);
    free(t);
}
