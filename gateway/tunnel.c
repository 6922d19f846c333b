/* tunnel: relays frames between a client and its upstream, tracking boundaries. */
#include "gateway/tunnel.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/log.h"
#include "gateway/ws_frame.h"

/* Bytes read in one go, and room in front of them for a frame header that
 * straddled the previous read. One buffer per worker thread: a read is
 * written out (or queued) before the next read, so nothing idle holds it. */
#define TUN_READ_MAX (256 * 1024)
#define TUN_HOLD WS_FRAME_MAX_HEADER
static _Thread_local uint8_t scratch[TUN_HOLD + TUN_READ_MAX];

/* What a read or a pump ended with. */
enum tun_io {
    TUN_WAIT = 1, /* nothing more for now */
    TUN_EOF,      /* the source is at end of file */
    TUN_ERROR,    /* the source failed */
    TUN_FAILED,   /* the destination failed */
};

/* One connection. A plain socket is read and written directly, the way
 * nginx relays: what is read goes straight to the other socket and only
 * what that socket does not take is queued (in the bufferevent's output,
 * which owns the descriptor and stays disabled); write interest is armed
 * only then. TLS and socketless (pair) bufferevents are driven through
 * their bufferevent. */
struct tun_side {
    struct bufferevent *bev;
    evutil_socket_t fd;    /* >= 0: direct I/O on the socket */
    struct event *rd, *wr; /* direct only */
    bool at_eof;           /* direct: recv said end of file */
    struct gw_tunnel *t;   /* the callbacks' argument is the side */
    struct tun_dir *reads; /* the direction this side is the source of */
    struct tun_dir *takes; /* the direction this side is the destination of */
};

/* One direction of the relay: frames read from `from` go to `to`. The frame
 * headers are parsed (never the payloads, which stay masked), so the tunnel
 * knows where each frame and message ends. */
struct tun_dir {
    struct tun_side *from, *to;
    struct ws_frame_rules rules;
    bool to_upstream;       /* the upstream is `to`: injected frames are masked */
    uint64_t remaining;     /* payload bytes of the current frame still to move */
    uint64_t msg_len;       /* data bytes of the current message so far */
    uint8_t hold[TUN_HOLD]; /* a frame header's first bytes, not yet sent */
    uint8_t hold_len;
    bool closed_frame; /* a close frame went through */
    bool injected;     /* our own close went into this stream */
    bool answered;     /* after our close: the source's own close came (dropped) */
    bool skip_close;   /* the frame being dropped is a close frame */
    uint64_t skip;     /* payload bytes of the frame being dropped still to come */
    bool eof;          /* `from` is at EOF */
    bool shut;         /* `to` got its write side shut */
    bool paused;       /* `from` not read: `to` has a full queue */
    uint64_t msgs, bytes;
};

struct gw_tunnel {
    struct tun_side client, upstream;
    struct tun_dir up;   /* client to upstream */
    struct tun_dir down; /* upstream to client */
    struct gw_tunnel_env env;
    uint16_t closing; /* code we are closing both sides with, or 0 */
    const char *why;
    bool done;
    struct tun_dir *scanning; /* the direction whose read is being relayed */
    struct event *timer;      /* idle checks, then the close deadline */
    struct timeval last;      /* last time a byte moved */
};

static void run(struct gw_tunnel *t, struct tun_dir *d);
static void source_ended(struct gw_tunnel *t, struct tun_dir *d);

/* The direction opposite d: its source is d's destination. */
static struct tun_dir *
other_dir(struct gw_tunnel *t, const struct tun_dir *d)
{
    return d == &t->up ? &t->down : &t->up;
}

/* Whether a failed recv or send only means "not now". */
static bool
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static struct evbuffer *
side_out(const struct tun_side *s)
{
    return bufferevent_get_output(s->bev);
}

static bool
flushed(const struct tun_dir *d)
{
    return evbuffer_get_length(side_out(d->to)) == 0;
}

/* Reads at most cap bytes: what the bufferevent already holds first. */
static ssize_t
side_read(struct tun_side *s, uint8_t *buf, size_t cap, int *io)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    if (evbuffer_get_length(in) > 0 || s->fd < 0) {
        int n = evbuffer_remove(in, buf, cap);
        *io = TUN_WAIT; /* a bufferevent reports EOF through its event */
        return n > 0 ? n : 0;
    }
    if (s->at_eof) { /* a recv would say so again */
        *io = TUN_EOF;
        return 0;
    }
    ssize_t n = recv(s->fd, buf, cap, 0);
    if (n > 0)
        return n;
    if (n == 0) {
        /* A level-triggered read event would report the EOF forever. */
        s->at_eof = true;
        event_del(s->rd);
    }
    *io = n == 0 ? TUN_EOF : would_block() ? TUN_WAIT : TUN_ERROR;
    return 0;
}

/* Sends bytes on, queueing what the socket does not take now. Returns 0,
 * or -1 when the destination failed. */
static int
side_send(struct tun_side *s, const uint8_t *p, size_t n)
{
    if (s->fd < 0)
        return bufferevent_write(s->bev, p, n);
    struct evbuffer *out = side_out(s);
    if (evbuffer_get_length(out) == 0) {
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && !would_block())
            return -1;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (evbuffer_add(out, p, n) != 0)
        return -1;
    return event_add(s->wr, NULL);
}

static void
side_read_enable(struct tun_side *s, bool on)
{
    if (s->fd < 0) {
        if (on)
            bufferevent_enable(s->bev, EV_READ);
        else
            bufferevent_disable(s->bev, EV_READ);
    } else if (on) {
        event_add(s->rd, NULL);
    } else {
        event_del(s->rd);
    }
}

static void
finish(struct gw_tunnel *t)
{
    if (t->done)
        return;
    t->done = true;
    side_read_enable(&t->client, false);
    side_read_enable(&t->upstream, false);
    t->env.finished(t->env.owner);
}

static void
arm(struct gw_tunnel *t, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(t->timer, &tv);
}

/* A whole close frame went from d's source to its destination. */
static bool
close_passed(const struct tun_dir *d)
{
    return d->closed_frame && d->remaining == 0;
}

/* d's source has nothing more to say: it answered our close with its own,
 * or passed one on, or is at its end. */
static bool
source_done(const struct tun_dir *d)
{
    return d->answered || close_passed(d) || d->eof;
}

/* Finishes once the close handshake is over and its frames went out:
 * after our closes both ways and each peer's answer (or its end, or the
 * close deadline), or after the peers' own closes both ways. The gateway is
 * the client's server, which closes the TCP connection first (RFC 6455
 * §7.1.1), so it does not wait for the upstream's FIN either. Closing
 * before a peer's answer would reset a connection whose close frame it has
 * not read yet. */
static void
check_closed(struct gw_tunnel *t)
{
    bool ours = t->closing != 0 && t->up.injected && t->down.injected &&
                source_done(&t->up) && source_done(&t->down);
    bool theirs = close_passed(&t->up) && close_passed(&t->down);
    if ((ours || theirs) && flushed(&t->up) && flushed(&t->down))
        finish(t);
}

/* Parses the frame header at p[0..len) by d's rules; one cut short (-2) is
 * kept in d->hold, to be completed by the next read. */
static int
next_header(struct tun_dir *d, const uint8_t *p, size_t len, struct ws_frame_header *h,
            uint16_t *code)
{
    int hl = ws_frame_parse_header(p, len, &d->rules, h, code);
    if (hl == -2) {
        d->hold_len = (uint8_t)len;
        memcpy(d->hold, p, len);
    }
    return hl;
}

/* Takes what of `avail` bytes belongs to the *left payload bytes still to
 * come of the current frame; returns how many. */
static size_t
through(uint64_t *left, size_t avail)
{
    uint64_t k = avail < *left ? avail : *left;
    *left -= k;
    return (size_t)k;
}

/* After our close, what d's source still sends is dropped, but its frames
 * are followed so that its close, the answer to ours, is seen. A header cut
 * short waits in d->hold, as when relaying. */
static void
skim(struct tun_dir *d, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len && !d->answered) {
        if (d->skip > 0) {
            off += through(&d->skip, len - off);
            d->answered = d->skip == 0 && d->skip_close;
            continue;
        }
        struct ws_frame_header h;
        uint16_t code = 0;
        int hl = next_header(d, p + off, len - off, &h, &code);
        if (hl == -2)
            return;
        if (hl < 0) {
            d->answered = true; /* a broken stream: no answer will come */
            return;
        }
        off += (size_t)hl;
        d->skip = h.payload_len;
        d->skip_close = h.opcode == WS_OP_CLOSE;
        d->answered = d->skip == 0 && d->skip_close;
    }
}

/* Writes our close frame into d's stream, which is at a frame boundary;
 * masked towards the upstream, as a client must. */
static void
inject_close(struct gw_tunnel *t, struct tun_dir *d)
{
    uint8_t frame[WS_FRAME_MAX_HEADER + WS_CONTROL_MAX], payload[WS_CONTROL_MAX];
    uint8_t mask[4] = {0};
    size_t n = ws_close_build(payload, t->closing, t->why);
    if (d->to_upstream)
        RAND_bytes(mask, sizeof(mask));
    size_t hl = ws_frame_encode_header(frame, true, 0, WS_OP_CLOSE,
                                       d->to_upstream ? mask : NULL, n);
    if (d->to_upstream)
        ws_frame_mask(payload, n, mask, 0);
    memcpy(frame + hl, payload, n);
    d->injected = true;
    if (side_send(d->to, frame, hl + n) != 0)
        finish(t);
}

/* Ends the relay with `code` to both sides, each at its next frame
 * boundary; then both connections close once flushed. A direction at a
 * boundary gets the close now, unless its read is being relayed: that one
 * sends what it read first. */
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
    struct tun_dir *dirs[2] = {&t->up, &t->down};
    for (size_t i = 0; i < 2 && !t->done; i++)
        if (dirs[i] != t->scanning && dirs[i]->remaining == 0 && !dirs[i]->injected)
            inject_close(t, dirs[i]);
    if (!t->done)
        check_closed(t);
}

/* Walks the frames in p[0..len) from d's current position. Returns how
 * many bytes are relayed: all, or up to a boundary where the relay closes
 * (a broken or oversized frame, or a close asked for); a header cut short
 * at the end is kept in d->hold. */
static size_t
scan(struct gw_tunnel *t, struct tun_dir *d, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (d->remaining > 0) {
            off += through(&d->remaining, len - off);
            continue;
        }
        if (t->closing != 0)
            return off;
        struct ws_frame_header h;
        uint16_t code = 0;
        int hl = next_header(d, p + off, len - off, &h, &code);
        if (hl == -2)
            return off;
        if (hl < 0) {
            close_both(t, code,
                       d->to_upstream ? "client broke the protocol"
                                      : "upstream broke the protocol");
            return off;
        }
        if (!ws_opcode_is_control(h.opcode)) {
            uint64_t base = h.opcode == WS_OP_CONTINUATION ? d->msg_len : 0;
            if (h.payload_len > t->env.max_message_size - base) {
                close_both(t, WS_CLOSE_TOO_BIG, "message too big");
                return off;
            }
            d->msg_len = base + h.payload_len;
            if (h.fin) {
                d->msgs++;
                d->msg_len = 0;
            }
        } else if (h.opcode == WS_OP_CLOSE) {
            d->closed_frame = true;
        }
        off += (size_t)hl;
        d->remaining = h.payload_len;
    }
    return off;
}

/* Relays what d's source has, until it has no more, `to` has a full queue,
 * or the relay ends. Once closing, d's close goes in at its boundary and
 * what the source sends after it is read and dropped. */
static int
pump(struct gw_tunnel *t, struct tun_dir *d)
{
    int io = TUN_WAIT;
    while (!t->done) {
        bool drop = t->closing != 0 && d->remaining == 0;
        if (drop && !d->injected) {
            inject_close(t, d);
            check_closed(t);
            continue;
        }
        size_t queued = evbuffer_get_length(side_out(d->to));
        if (!drop && queued >= t->env.buffer) {
            /* Backpressure: read again once `to` has taken half. */
            d->paused = true;
            side_read_enable(d->from, false);
            if (d->to->fd < 0)
                bufferevent_setwatermark(d->to->bev, EV_WRITE, t->env.buffer / 2, 0);
            return TUN_WAIT;
        }
        size_t cap = drop ? TUN_READ_MAX : t->env.buffer - queued;
        if (cap > TUN_READ_MAX)
            cap = TUN_READ_MAX;
        ssize_t n = side_read(d->from, scratch + TUN_HOLD, cap, &io);
        if (n == 0)
            return io;
        /* A short read emptied the source (nginx's rule too): reading on
         * would cost a recv that says EAGAIN; the level-triggered read
         * event reports whatever arrives next. */
        bool more = (size_t)n == cap;
        uint8_t *p = scratch + TUN_HOLD - d->hold_len;
        memcpy(p, d->hold, d->hold_len);
        size_t len = (size_t)n + d->hold_len;
        d->hold_len = 0;
        if (drop) {
            skim(d, p, len);
            check_closed(t);
            if (!more)
                return TUN_WAIT;
            continue;
        }
        t->scanning = d;
        size_t fwd = scan(t, d, p, len);
        t->scanning = NULL;
        if (fwd > 0) {
            d->bytes += fwd;
            event_base_gettimeofday_cached(bufferevent_get_base(d->from->bev), &t->last);
            if (side_send(d->to, p, fwd) != 0)
                return TUN_FAILED;
        }
        /* The relay closed at a boundary inside this read: the rest is
         * dropped, though followed for the source's answer. */
        if (t->closing != 0 && fwd < len && d->hold_len == 0 && d->remaining == 0)
            skim(d, p + fwd, len - fwd);
        if (!more && t->closing == 0)
            return TUN_WAIT;
    }
    return TUN_WAIT;
}

/* `from` hit EOF: pass the half-close on once its bytes are out. */
static void
pass_eof(struct gw_tunnel *t, struct tun_dir *d)
{
    /* While closing, check_closed decides: our close awaits the answers. */
    if (!d->eof || d->shut || !flushed(d) || t->closing != 0)
        return;
    struct tun_dir *other = other_dir(t, d);
    /* Over TLS (or a pair) a raw shutdown would cut the record stream, and
     * `fd` is -1 for those: end both. */
    evutil_socket_t fd = d->to->fd;
    if (other->eof || d->closed_frame || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        finish(t);
        return;
    }
    d->shut = true;
}

/* `to` took bytes: resume a paused source below half the cap. */
static void
drained(struct gw_tunnel *t, struct tun_dir *d)
{
    if (t->done)
        return;
    if (d->paused && evbuffer_get_length(side_out(d->to)) <= t->env.buffer / 2) {
        d->paused = false;
        if (d->to->fd < 0)
            bufferevent_setwatermark(d->to->bev, EV_WRITE, 0, 0);
        if (d->eof) {
            source_ended(t, d); /* the rest of what it sent before its EOF */
        } else {
            side_read_enable(d->from, true);
            run(t, d);
        }
        if (t->done)
            return;
    }
    check_closed(t);
    if (!t->done)
        pass_eof(t, d);
}

/* The upstream vanished without a close frame, and what it sent before is
 * relayed: the client is told so with 1014 (bad gateway) at the next frame
 * boundary, instead of a bare reset. */
static void
upstream_gone(struct gw_tunnel *t)
{
    struct tun_dir *d = &t->down;
    if (d->closed_frame || d->remaining != 0 || t->closing != 0) {
        finish(t);
        return;
    }
    GW_LOG_INFO("tunnel_close", "route=%s code=%u reason=\"upstream went away\"",
                t->env.route, WS_CLOSE_BAD_GATEWAY);
    t->closing = WS_CLOSE_BAD_GATEWAY;
    t->why = "upstream went away";
    t->up.injected = true; /* nothing more goes to a dead upstream */
    arm(t, t->env.close_timeout_ms);
    inject_close(t, d);
    if (!t->done)
        check_closed(t);
}

/* d's source is at EOF: relay what it still holds, then pass the end on
 * (a half-close; or 1014 to the client for an upstream gone without a
 * close frame). A source paused with bytes left comes back through
 * drained() once its destination took some. */
static void
source_ended(struct gw_tunnel *t, struct tun_dir *d)
{
    pump(t, d);
    if (t->done ||
        (d->paused && evbuffer_get_length(bufferevent_get_input(d->from->bev)) > 0))
        return;
    if (t->closing != 0)
        check_closed(t); /* an end is an answer to our close too */
    else if (d == &t->down && !d->closed_frame)
        upstream_gone(t);
    else
        pass_eof(t, d);
}

/* Something happened to d's source: EOF, or an error on either side. */
static void
on_event(struct gw_tunnel *t, struct tun_dir *d, short events)
{
    if (t->done)
        return;
    if ((events & BEV_EVENT_EOF) && (events & BEV_EVENT_READING)) {
        d->eof = true;
        source_ended(t, d);
        return;
    }
    if (d == &t->down && !d->closed_frame && t->closing == 0) {
        d->eof = true;
        pump(t, d); /* what it sent before failing */
        if (!t->done)
            upstream_gone(t);
        return;
    }
    finish(t); /* an error on either connection ends both */
}

/* Pumps d and acts on how that ended. */
static void
run(struct gw_tunnel *t, struct tun_dir *d)
{
    switch (pump(t, d)) {
    case TUN_EOF:
        if (d->eof) /* already known: what was left is relayed */
            return;
        on_event(t, d, BEV_EVENT_EOF | BEV_EVENT_READING);
        return;
    case TUN_ERROR:
        on_event(t, d, BEV_EVENT_ERROR | BEV_EVENT_READING);
        return;
    case TUN_FAILED:
        /* The destination is the source of the other direction. */
        on_event(t, other_dir(t, d), BEV_EVENT_ERROR | BEV_EVENT_WRITING);
        return;
    default:
        if (close_passed(d))
            check_closed(t);
        return;
    }
}

/* A direct socket can take more: write what is queued for it. */
static void
flush_side(struct gw_tunnel *t, struct tun_side *s, struct tun_dir *d)
{
    struct evbuffer *out = side_out(s);
    while (evbuffer_get_length(out) > 0) {
        int w = evbuffer_write(out, s->fd);
        if (w < 0 && would_block())
            break;
        if (w <= 0) {
            event_del(s->wr);
            on_event(t, other_dir(t, d), BEV_EVENT_ERROR | BEV_EVENT_WRITING);
            return;
        }
    }
    if (evbuffer_get_length(out) == 0)
        event_del(s->wr);
    drained(t, d);
}

static void
side_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tun_side *s = arg;
    if (what & EV_READ)
        run(s->t, s->reads);
    else
        flush_side(s->t, s, s->takes);
}

static void
side_read_cb(struct bufferevent *bev, void *arg)
{
    struct tun_side *s = arg;
    run(s->t, s->reads);
}

static void
side_write_cb(struct bufferevent *bev, void *arg)
{
    struct tun_side *s = arg;
    drained(s->t, s->takes);
}

static void
side_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct tun_side *s = arg;
    on_event(s->t, s->reads, events);
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
    event_base_gettimeofday_cached(bufferevent_get_base(t->client.bev), &now);
    timersub(&now, &t->last, &idle);
    uint64_t ms = (uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000;
    if (ms >= t->env.idle_timeout_ms) {
        close_both(t, WS_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    arm(t, t->env.idle_timeout_ms - ms);
}

/* Direct I/O for a plain socket; a TLS or socketless bufferevent keeps its
 * own. Returns -1 when out of memory. */
static int
side_init(struct gw_tunnel *t, struct tun_side *s, struct bufferevent *bev,
          struct tun_dir *reads, struct tun_dir *takes)
{
    *s = (struct tun_side){.bev = bev, .t = t, .reads = reads, .takes = takes};
    s->fd = bufferevent_openssl_get_ssl(bev) == NULL ? bufferevent_getfd(bev) : -1;
    if (s->fd < 0) {
        bufferevent_setcb(bev, side_read_cb, side_write_cb, side_event_cb, s);
        return 0;
    }
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    s->rd =
        event_new(bufferevent_get_base(bev), s->fd, EV_READ | EV_PERSIST, side_io_cb, s);
    s->wr =
        event_new(bufferevent_get_base(bev), s->fd, EV_WRITE | EV_PERSIST, side_io_cb, s);
    return s->rd != NULL && s->wr != NULL ? 0 : -1;
}

static void
side_free(struct tun_side *s)
{
    if (s->rd != NULL)
        event_free(s->rd);
    if (s->wr != NULL)
        event_free(s->wr);
    s->rd = s->wr = NULL;
}

static void
side_start(struct gw_tunnel *t, struct tun_side *s)
{
    bufferevent_set_timeouts(s->bev, NULL, NULL);
    bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    if (s->fd < 0) {
        bufferevent_enable(s->bev, EV_READ | EV_WRITE);
        return;
    }
    /* The bufferevent keeps the descriptor and the queue, nothing else;
     * it froze the queue's start so that only it drains it: now we do.
     * Our read interest goes in before the bufferevent's goes out, so
     * epoll's registration never changes. */
    event_add(s->rd, NULL);
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    evbuffer_unfreeze(side_out(s), 1);
    if (evbuffer_get_length(side_out(s)) > 0)
        flush_side(t, s, s->takes); /* the 101, queued before the tunnel */
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
    t->up = (struct tun_dir){.from = &t->client,
                             .to = &t->upstream,
                             .to_upstream = true,
                             .rules = {.allowed_rsv = 0x7, .require_masked = true}};
    t->down = (struct tun_dir){.from = &t->upstream,
                               .to = &t->client,
                               .rules = {.allowed_rsv = 0x7, .forbid_masked = true}};
    if (side_init(t, &t->client, client, &t->up, &t->down) != 0 ||
        side_init(t, &t->upstream, upstream, &t->down, &t->up) != 0) {
        side_free(&t->client);
        side_free(&t->upstream);
        event_free(t->timer);
        free(t);
        bufferevent_free(upstream);
        return NULL;
    }
    return t;
}

/* Whether a read on s could find bytes without waiting for its event. */
static bool
pending(const struct tun_side *s)
{
    return s->fd < 0 || evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
}

void
gw_tunnel_start(struct gw_tunnel *t)
{
    event_base_gettimeofday_cached(bufferevent_get_base(t->client.bev), &t->last);
    arm(t, t->env.idle_timeout_ms);
    side_start(t, &t->client);
    if (!t->done)
        side_start(t, &t->upstream);
    /* Bytes that came in with the handshakes; what is still in the
     * kernel wakes the read events. */
    if (!t->done && pending(&t->upstream))
        run(t, &t->down);
    if (!t->done && pending(&t->client))
        run(t, &t->up);
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

static void
add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A route total for the log line, 0 without counters. */
#define total(k, field)                                                                  \
    ((k) ? (unsigned long long)atomic_load_explicit(&(k)->field, memory_order_relaxed)   \
         : 0ULL)

void
gw_tunnel_free(struct gw_tunnel *t)
{
    if (t == NULL)
        return;
    struct gw_tunnel_counters *k = t->env.counters;
    if (k != NULL) {
        add(&k->tunnels, 1);
        add(&k->msgs_up, t->up.msgs);
        add(&k->msgs_down, t->down.msgs);
        add(&k->bytes_up, t->up.bytes);
        add(&k->bytes_down, t->down.bytes);
        add(&k->too_big, t->closing == WS_CLOSE_TOO_BIG);
    }
    GW_LOG_INFO("tunnel_closed",
                "route=%s conn=%llu code=%u msgs_up=%llu msgs_down=%llu bytes_up=%llu "
                "bytes_down=%llu route_tunnels=%llu route_msgs_up=%llu "
                "route_msgs_down=%llu route_bytes_up=%llu route_bytes_down=%llu "
                "route_too_big=%llu",
                t->env.route, (unsigned long long)t->env.conn_id, t->closing,
                (unsigned long long)t->up.msgs, (unsigned long long)t->down.msgs,
                (unsigned long long)t->up.bytes, (unsigned long long)t->down.bytes,
                total(k, tunnels), total(k, msgs_up), total(k, msgs_down),
                total(k, bytes_up), total(k, bytes_down), total(k, too_big));
    event_free(t->timer);
    side_free(&t->client);
    side_free(&t->upstream);
    bufferevent_free(t->upstream.bev);
    free(t);
}
