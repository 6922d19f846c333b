/* ws_endpoint: the server side of an RFC 6455 connection, driving a handler. */
#include "gateway/ws_endpoint.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/log.h"
#include "gateway/shared_frame.h"
#include "gateway/utf8.h"

/* Keep a reassembly buffer between messages only while it is this small, so
 * that an idle connection holds no large allocation. */
#define WS_MSG_KEEP 4096
/* Compressed payload is inflated through a buffer of this size. */
#define WS_INFLATE_CHUNK 16384
/* RSV1: the permessage-deflate bit (RFC 7692 §6). */
#define WS_RSV1 0x4

enum ws_state {
    WS_ST_OPEN = 1,    /* messages flow both ways */
    WS_ST_CLOSE_SENT,  /* our close is queued; waiting for the peer's */
    WS_ST_FLUSH_CLOSE, /* handshake over or failed: flush output, then finish */
    WS_ST_DONE,        /* env.finished was called */
};

struct gw_ws {
    struct bufferevent *bev;
    const struct gw_handler *handler;
    void *instance; /* the handler's per-worker state, passed to its callbacks */
    struct gw_ws_env env;
    struct ws_deflate_params deflate_params; /* env.deflate points here */
    enum ws_state state;
    bool closed_notified; /* handler's on_close has run */
    uint16_t close_code;  /* what on_close was told */
    bool read_paused;     /* stopped reading while the peer's output is full */
    /* The data frame whose payload is being read. */
    bool in_frame;
    struct ws_frame_header fh;
    uint64_t frame_left; /* payload bytes still to come */
    uint64_t frame_off;  /* payload bytes read so far: the mask's phase */
    /* The message being reassembled. */
    uint8_t msg_opcode; /* or 0 between messages */
    bool msg_compressed;
    uint64_t msg_wire;      /* its payload bytes as sent (compressed) */
    struct utf8_state utf8; /* of a text message */
    struct ws_inflate_buf msg;
    struct ws_deflate *deflate; /* NULL without permessage-deflate */
    size_t out_high;            /* output size at which we stop reading */
    struct event *deadline;     /* the close timeout, armed once a close starts */
    struct event *keepalive;    /* pings and the idle timeout */
    uint64_t last_rx_ms;        /* when the last whole frame arrived */
    uint64_t next_ping_ms;
    uint64_t msgs_in, msgs_out, drops;
    void *user;
    char *subject;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* a + b, saturating: durations in the configuration may be huge. */
static uint64_t
add_ms(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static struct timeval
ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void
set_timeouts(struct gw_ws *ws, uint64_t read_ms, uint64_t write_ms)
{
    struct timeval r = ms_tv(read_ms), w = ms_tv(write_ms);
    bufferevent_set_timeouts(ws->bev, read_ms ? &r : NULL, write_ms ? &w : NULL);
}

static void
notify_close(struct gw_ws *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    if (ws->closed_notified)
        return;
    ws->closed_notified = true;
    ws->close_code = code;
    if (ws->handler->on_close != NULL)
        ws->handler->on_close(ws->instance, ws, code, reason, len);
}

static uint64_t
counter(atomic_uint_fast64_t *c)
{
    return (uint64_t)atomic_load_explicit(c, memory_order_relaxed);
}

/* graceful: everything queued was flushed, so the owner may half-close and
 * wait for the peer's FIN rather than reset a peer that is still sending. */
static void
finish(struct gw_ws *ws, bool graceful)
{
    if (ws->state == WS_ST_DONE)
        return;
    ws->state = WS_ST_DONE;
    notify_close(ws, WS_CLOSE_ABNORMAL, NULL, 0);
    bufferevent_disable(ws->bev, EV_READ);
    if (ws->keepalive != NULL)
        evtimer_del(ws->keepalive);
    struct gw_ws_counters *k = ws->env.counters;
    GW_LOG_INFO("ws_closed",
                "code=%u route=%s conn=%llu msgs_in=%llu msgs_out=%llu deflate=%s "
                "slow_reader_drops=%llu route_slow_reader_drops=%llu "
                "route_slow_reader_closes=%llu",
                ws->close_code, ws->env.route ? ws->env.route : "-",
                (unsigned long long)ws->env.conn_id, (unsigned long long)ws->msgs_in,
                (unsigned long long)ws->msgs_out, ws->deflate ? "on" : "off",
                (unsigned long long)ws->drops,
                (unsigned long long)(k ? counter(&k->slow_reader_drops) : 0),
                (unsigned long long)(k ? counter(&k->slow_reader_closes) : 0));
    ws->env.finished(ws->env.owner, graceful);
}

/* Queues one frame; the caller has admitted it (see ws_send_admit). */
static int
send_frame(struct gw_ws *ws, uint8_t rsv, uint8_t opcode, const void *data, size_t len)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    size_t hl = ws_frame_encode_header(hdr, true, rsv, opcode, NULL, len);
    struct evbuffer *out = bufferevent_get_output(ws->bev);
    if (evbuffer_add(out, hdr, hl) != 0 || (len > 0 && evbuffer_add(out, data, len) != 0))
        return -1;
    return 0;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ws *ws = arg;
    GW_LOG_INFO("ws_close_timeout", "timeout_ms=%llu route=%s conn=%llu",
                (unsigned long long)ws->env.close_timeout_ms,
                ws->env.route ? ws->env.route : "-", (unsigned long long)ws->env.conn_id);
    finish(ws, false);
}

/* Starts the one fixed deadline of a close: unlike the bufferevent's
 * timeouts, a peer that keeps sending cannot push it back. */
static void
arm_deadline(struct gw_ws *ws)
{
    if (ws->keepalive != NULL)
        evtimer_del(ws->keepalive);
    if (ws->deadline != NULL)
        return;
    ws->deadline = evtimer_new(bufferevent_get_base(ws->bev), deadline_cb, ws);
    struct timeval tv = ms_tv(ws->env.close_timeout_ms);
    if (ws->deadline != NULL)
        evtimer_add(ws->deadline, &tv);
    set_timeouts(ws, 0, 0);
}

/* Flushes what is queued, then finishes: the last step of every close. */
static void
flush_then_finish(struct gw_ws *ws)
{
    ws->state = WS_ST_FLUSH_CLOSE;
    bufferevent_disable(ws->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
        finish(ws, true);
        return;
    }
    arm_deadline(ws);
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    bufferevent_enable(ws->bev, EV_WRITE);
}

/* The peer broke the protocol: tell it why, and close once that is sent. */
static void
fail(struct gw_ws *ws, uint16_t code, const char *reason)
{
    GW_LOG_INFO("ws_fail", "code=%u reason=\"%s\" route=%s conn=%llu", code, reason,
                ws->env.route ? ws->env.route : "-", (unsigned long long)ws->env.conn_id);
    if (ws->state == WS_ST_OPEN) {
        uint8_t payload[WS_CONTROL_MAX];
        size_t n = ws_close_build(payload, code, reason);
        send_frame(ws, 0, WS_OP_CLOSE, payload, n);
    }
    /* Closing before on_close runs, so the handler cannot send after it. */
    ws->state = WS_ST_FLUSH_CLOSE;
    notify_close(ws, code, (const uint8_t *)reason, strlen(reason));
    flush_then_finish(ws);
}

void
gw_ws_close(struct gw_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state != WS_ST_OPEN)
        return;
    /* 1005, 1006 and 1015 (and unassigned codes) never go on the wire: a
     * handler's mistake becomes 1011 rather than a peer's protocol error. */
    if (!ws_close_code_valid(code)) {
        GW_LOG_WARN("ws_bad_close_code", "code=%u route=%s conn=%llu", code,
                    ws->env.route ? ws->env.route : "-",
                    (unsigned long long)ws->env.conn_id);
        code = WS_CLOSE_INTERNAL;
    }
    uint8_t payload[WS_CONTROL_MAX];
    size_t n = ws_close_build(payload, code, reason);
    /* Should the frame not fit in memory, the deadline still ends it. */
    send_frame(ws, 0, WS_OP_CLOSE, payload, n);
    ws->state = WS_ST_CLOSE_SENT;
    /* Keep reading so the peer's close frame is seen, until the deadline. */
    ws->read_paused = false;
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
    arm_deadline(ws);
}

/* The one gate of every message towards the peer (gw_ws_send, and any send
 * of a pre-encoded frame): whether `bytes` more may be queued. Nothing
 * queued admits any message; otherwise the queue may not pass
 * env.max_send_queue, and when it would, the route's slow_reader policy
 * decides: drop this message (GW_WS_SEND_DROPPED) or start a close with 1008
 * (-1; the close frame is queued past the limit, and close_timeout ends a
 * peer that reads nothing). Also -1 once the connection is closing. Counts
 * both outcomes. Never calls back. */
static int
ws_send_admit(struct gw_ws *ws, size_t bytes)
{
    if (ws->state != WS_ST_OPEN)
        return -1;
    size_t queued = evbuffer_get_length(bufferevent_get_output(ws->bev));
    size_t cap = (size_t)ws->env.max_send_queue;
    if (queued == 0 || (queued <= cap && bytes <= cap - queued))
        return 0;
    struct gw_ws_counters *k = ws->env.counters;
    if (ws->env.slow_reader == CFG_SLOW_READER_DROP) {
        if (k != NULL)
            atomic_fetch_add_explicit(&k->slow_reader_drops, 1, memory_order_relaxed);
        if (ws->drops++ == 0) /* once per connection; ws_closed has the count */
            GW_LOG_INFO("ws_slow_reader",
                        "action=drop queued=%zu limit=%llu route=%s "
                        "conn=%llu",
                        queued, (unsigned long long)ws->env.max_send_queue,
                        ws->env.route ? ws->env.route : "-",
                        (unsigned long long)ws->env.conn_id);
        return GW_WS_SEND_DROPPED;
    }
    if (k != NULL)
        atomic_fetch_add_explicit(&k->slow_reader_closes, 1, memory_order_relaxed);
    GW_LOG_INFO("ws_slow_reader",
                "action=close code=1008 queued=%zu limit=%llu route=%s "
                "conn=%llu",
                queued, (unsigned long long)ws->env.max_send_queue,
                ws->env.route ? ws->env.route : "-", (unsigned long long)ws->env.conn_id);
    gw_ws_close(ws, WS_CLOSE_POLICY, "slow reader");
    return -1;
}

int
gw_ws_send(struct gw_ws *ws, enum ws_opcode opcode, const void *data, size_t len)
{
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)
        return -1;
    int rc = ws_send_admit(ws, len + WS_FRAME_MAX_HEADER);
    if (rc != 0)
        return rc;
    /* Compressed only after admission: with context takeover, whatever the
     * compressor has seen must reach the peer. */
    if (ws->deflate != NULL && len >= ws->env.deflate_threshold) {
        uint8_t *z;
        size_t zlen;
        if (ws_deflate_compress(ws->deflate, data, len, &z, &zlen) != 0) {
            gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
            return -1;
        }
        rc = send_frame(ws, WS_RSV1, (uint8_t)opcode, z, zlen);
        free(z);
        /* The compressor has moved on: the peer's inflater cannot follow
         * a stream with a message missing. */
        if (rc != 0)
            gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
    } else {
        rc = send_frame(ws, 0, (uint8_t)opcode, data, len);
    }
    if (rc == 0)
        ws->msgs_out++;
    return rc;
}

int
gw_ws_send_frame(struct gw_ws *ws, struct gw_frame *f)
{
    int rc = ws_send_admit(ws, f->len);
    if (rc != 0)
        return rc;
    /* By reference: one encoding shared by every recipient; the buffer holds
     * a reference until the bytes are written. Sent uncompressed, which is
     * valid also after permessage-deflate was negotiated. */
    gw_frame_ref(f);
    if (evbuffer_add_reference(bufferevent_get_output(ws->bev), f->bytes, f->len,
                               gw_frame_release_cb, f) != 0) {
        gw_frame_unref(f);
        return -1;
    }
    ws->msgs_out++;
    return 0;
}

static void
on_close_frame(struct gw_ws *ws, const uint8_t *payload, size_t len)
{
    uint16_t code;
    const uint8_t *reason;
    size_t reason_len;
    if (ws_close_parse(payload, len, &code, &reason, &reason_len) != 0) {
        fail(ws, WS_CLOSE_PROTOCOL_ERROR, "invalid close frame");
        return;
    }
    if (!utf8_valid(reason, reason_len)) {
        fail(ws, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason");
        return;
    }
    if (ws->state == WS_ST_OPEN) {
        /* Echo the peer's code, as RFC 6455 §5.5.1 suggests; none for 1005. */
        uint8_t reply[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        send_frame(ws, 0, WS_OP_CLOSE, reply, code == WS_CLOSE_NO_STATUS ? 0 : 2);
    }
    ws->state = WS_ST_FLUSH_CLOSE;
    notify_close(ws, code, reason, reason_len);
    flush_then_finish(ws);
}

static void
on_control(struct gw_ws *ws, const struct ws_frame_header *h, uint8_t *payload)
{
    size_t len = (size_t)h->payload_len;
    ws_frame_mask(payload, len, h->mask, 0);
    switch (h->opcode) {
    case WS_OP_PING:
        /* Control frames are not admitted by ws_send_admit: they are small,
         * and a ping's answer is owed (RFC 6455 §5.5.2). */
        if (ws->state == WS_ST_OPEN)
            send_frame(ws, 0, WS_OP_PONG, payload, len);
        return;
    case WS_OP_PONG:
        return; /* its arrival counts for the idle timeout, nothing more */
    case WS_OP_CLOSE:
        on_close_frame(ws, payload, len);
        return;
    }
}

static int
msg_reserve(struct gw_ws *ws, size_t need)
{
    if (need <= ws->msg.cap)
        return 0;
    size_t cap = ws->msg.cap ? ws->msg.cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > ws->env.max_message_size && need <= ws->env.max_message_size)
        cap = (size_t)ws->env.max_message_size;
    uint8_t *p = realloc(ws->msg.data, cap);
    if (p == NULL)
        return -1;
    ws->msg.data = p;
    ws->msg.cap = cap;
    return 0;
}

static void
deliver(struct gw_ws *ws)
{
    uint8_t opcode = ws->msg_opcode;
    ws->msg_opcode = 0;
    ws->msgs_in++;
    if (ws->state == WS_ST_OPEN && ws->handler->on_message != NULL)
        ws->handler->on_message(ws->instance, ws, (enum ws_opcode)opcode, ws->msg.data,
                                ws->msg.len);
    ws->msg.len = 0;
    if (ws->msg.cap > WS_MSG_KEEP) {
        free(ws->msg.data);
        ws->msg.data = NULL;
        ws->msg.cap = 0;
    }
}

/* Checks the text that msg gained from offset `from` on; -1 after failing.
 * Text is checked as it arrives, so a bad byte fails the connection at once
 * rather than after the rest of a long message (RFC 6455 §8.1). */
static int
check_text(struct gw_ws *ws, size_t from, bool complete)
{
    if (ws->msg_opcode != WS_OP_TEXT)
        return 0;
    /* msg.data is NULL while an empty message has allocated nothing. */
    const uint8_t *p = ws->msg.len > from ? ws->msg.data + from : NULL;
    enum utf8_result u = utf8_validate(&ws->utf8, p, ws->msg.len - from, NULL);
    if (u == UTF8_INVALID || (complete && u != UTF8_OK)) {
        fail(ws, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in text message");
        return -1;
    }
    return 0;
}

/* Inflates in[0..len) (the end of the message when `last`); -1 after failing. */
static int
inflate_piece(struct gw_ws *ws, const uint8_t *in, size_t len, bool last)
{
    size_t from = ws->msg.len;
    enum ws_inflate_result r = ws_deflate_inflate(ws->deflate, in, len, last, &ws->msg,
                                                  (size_t)ws->env.max_message_size);
    switch (r) {
    case WS_INFLATE_OK:
        return check_text(ws, from, last);
    case WS_INFLATE_TOO_BIG:
        fail(ws, WS_CLOSE_TOO_BIG, "message too big");
        return -1;
    case WS_INFLATE_BAD:
        /* RFC 7692 §8 only says to fail; like the ws library, 1007: the
         * payload is not what the negotiated extension says it is. */
        fail(ws, WS_CLOSE_INVALID_DATA, "invalid compressed data");
        return -1;
    case WS_INFLATE_NOMEM:
        break;
    }
    fail(ws, WS_CLOSE_INTERNAL, "out of memory");
    return -1;
}

/* Moves what has arrived of the current data frame's payload out of `in`.
 * Returns 1 when the frame is complete, 0 when more is needed, -1 after
 * failing. */
static int
read_payload(struct gw_ws *ws, struct evbuffer *in)
{
    while (ws->frame_left > 0) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return 0;
        size_t take = avail < ws->frame_left ? avail : (size_t)ws->frame_left;
        if (ws->state != WS_ST_OPEN) {
            /* After our close the peer's data is read and dropped. */
            evbuffer_drain(in, take);
        } else if (ws->msg_compressed) {
            uint8_t chunk[WS_INFLATE_CHUNK];
            if (take > sizeof(chunk))
                take = sizeof(chunk);
            evbuffer_remove(in, chunk, take);
            ws_frame_mask(chunk, take, ws->fh.mask, ws->frame_off);
            if (inflate_piece(ws, chunk, take, false) != 0)
                return -1;
        } else {
            /* The frame header check keeps msg.len + take within the limit. */
            if (msg_reserve(ws, ws->msg.len + take) != 0) {
                fail(ws, WS_CLOSE_INTERNAL, "out of memory");
                return -1;
            }
            size_t from = ws->msg.len;
            evbuffer_remove(in, ws->msg.data + from, take);
            ws_frame_mask(ws->msg.data + from, take, ws->fh.mask, ws->frame_off);
            ws->msg.len += take;
            if (check_text(ws, from, false) != 0)
                return -1;
        }
        ws->frame_left -= take;
        ws->frame_off += take;
    }
    return 1;
}

/* The current data frame is wholly read; -1 after failing. */
static int
end_frame(struct gw_ws *ws)
{
    ws->in_frame = false;
    if (!ws->fh.fin)
        return 0;
    if (ws->state != WS_ST_OPEN) {
        ws->msg_opcode = 0;
        return 0;
    }
    if (ws->msg_compressed ? inflate_piece(ws, NULL, 0, true) != 0
                           : check_text(ws, 0, true) != 0)
        return -1;
    deliver(ws);
    return 0;
}

/* A data frame's header: sequencing, size limits, and the start of a
 * message. Returns 0, or -1 after failing. */
static int
start_data_frame(struct gw_ws *ws, const struct ws_frame_header *h)
{
    bool cont = h->opcode == WS_OP_CONTINUATION;
    if (cont && ws->msg_opcode == 0) {
        fail(ws, WS_CLOSE_PROTOCOL_ERROR, "continuation without a message");
        return -1;
    }
    if (!cont && ws->msg_opcode != 0) {
        fail(ws, WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
        return -1;
    }
    if (!cont) {
        ws->msg_opcode = h->opcode;
        ws->msg_compressed = (h->rsv & WS_RSV1) != 0;
        ws->msg_wire = 0;
        ws->msg.len = 0;
        ws->utf8 = (struct utf8_state)UTF8_INIT;
    }
    /* Checked before anything is buffered. Compressed payload is limited on
     * the wire too, with room for incompressible data's stored blocks (5
     * bytes per 64 KiB); its inflated size is checked as it is produced. */
    uint64_t max = ws->env.max_message_size;
    uint64_t limit = ws->msg_compressed ? max + max / 1024 + 64 : max;
    uint64_t used = ws->msg_compressed ? ws->msg_wire : ws->msg.len;
    if (h->payload_len > limit - used) {
        if (ws->state != WS_ST_OPEN) {
            finish(ws, false); /* not worth reading after our close */
            return -1;
        }
        fail(ws, WS_CLOSE_TOO_BIG, "message too big");
        return -1;
    }
    ws->msg_wire += h->payload_len;
    ws->in_frame = true;
    ws->fh = *h;
    ws->frame_left = h->payload_len;
    ws->frame_off = 0;
    return 0;
}

/* Reads the next frame header, and a control frame whole. Returns 1 when a
 * frame started or a control frame was handled, 0 when more bytes are
 * needed, -1 after failing. */
static int
read_header(struct gw_ws *ws, struct evbuffer *in, bool *got_frame)
{
    static const struct ws_frame_rules plain = {.require_masked = true};
    static const struct ws_frame_rules deflate = {.allowed_rsv = WS_RSV1,
                                                  .require_masked = true};
    size_t avail = evbuffer_get_length(in);
    uint8_t hb[WS_FRAME_MAX_HEADER];
    size_t n = avail < sizeof(hb) ? avail : sizeof(hb);
    if (n < 2)
        return 0;
    evbuffer_copyout(in, hb, n);
    struct ws_frame_header h;
    uint16_t code = 0;
    int hl = ws_frame_parse_header(hb, n, ws->deflate ? &deflate : &plain, &h, &code);
    if (hl == -2)
        return 0;
    if (hl < 0) {
        fail(ws, code, "invalid frame header");
        return -1;
    }
    bool control = ws_opcode_is_control(h.opcode);
    /* RFC 7692 §6.1: RSV1 marks a message's first frame only. */
    if ((h.rsv & WS_RSV1) != 0 && (control || h.opcode == WS_OP_CONTINUATION)) {
        fail(ws, WS_CLOSE_PROTOCOL_ERROR, "RSV1 on a control or continuation frame");
        return -1;
    }
    if (control) {
        if (avail - (size_t)hl < h.payload_len)
            return 0; /* at most 125 bytes: wait for all of them */
        evbuffer_drain(in, (size_t)hl);
        uint8_t payload[WS_CONTROL_MAX];
        evbuffer_remove(in, payload, (size_t)h.payload_len);
        *got_frame = true;
        on_control(ws, &h, payload);
        return 1;
    }
    if (start_data_frame(ws, &h) != 0)
        return -1;
    evbuffer_drain(in, (size_t)hl);
    return 1;
}

static bool
output_full(struct gw_ws *ws)
{
    return evbuffer_get_length(bufferevent_get_output(ws->bev)) >= ws->out_high;
}

/* Stops reading until the peer has taken half of what waits for it. */
static void
pause_reading(struct gw_ws *ws)
{
    ws->read_paused = true;
    bufferevent_disable(ws->bev, EV_READ);
    bufferevent_setwatermark(ws->bev, EV_WRITE, ws->out_high / 2, 0);
}

void
gw_ws_on_read(struct gw_ws *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    bool got_frame = false;
    while (ws->state == WS_ST_OPEN || ws->state == WS_ST_CLOSE_SENT) {
        if (ws->state == WS_ST_OPEN && output_full(ws)) {
            pause_reading(ws);
            break;
        }
        int r;
        if (!ws->in_frame) {
            r = read_header(ws, in, &got_frame);
        } else {
            r = read_payload(ws, in);
            if (r == 1) {
                got_frame = true;
                r = end_frame(ws) == 0 ? 1 : -1;
            }
        }
        if (r <= 0)
            break;
    }
    if (got_frame)
        ws->last_rx_ms = now_ms();
}

void
gw_ws_on_write(struct gw_ws *ws)
{
    size_t queued = evbuffer_get_length(bufferevent_get_output(ws->bev));
    if (ws->state == WS_ST_FLUSH_CLOSE) {
        if (queued == 0)
            finish(ws, true);
        return;
    }
    if (ws->read_paused && queued <= ws->out_high / 2) {
        ws->read_paused = false;
        bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
        bufferevent_enable(ws->bev, EV_READ);
        gw_ws_on_read(ws);
    }
}

void
gw_ws_on_timeout(struct gw_ws *ws, bool writing)
{
    /* Only the write timeout is set while open: a peer that has not read
     * for idle_timeout will not read a close frame either. */
    if (ws->state == WS_ST_OPEN && !writing) {
        gw_ws_close(ws, WS_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    finish(ws, false);
}

void
gw_ws_on_eof(struct gw_ws *ws)
{
    finish(ws, false);
}

/* Arms the keepalive timer for the earlier of the next ping and the moment
 * the peer has been silent for idle_timeout. */
static void
keepalive_arm(struct gw_ws *ws, uint64_t now)
{
    uint64_t due = add_ms(ws->last_rx_ms, ws->env.idle_timeout_ms);
    if (ws->env.ping_interval_ms != 0 && ws->next_ping_ms < due)
        due = ws->next_ping_ms;
    /* Beyond a year it is as good as never (and time_t stays in range). */
    uint64_t wait = due > now ? due - now : 0;
    struct timeval tv =
        ms_tv(wait < 365ULL * 86400 * 1000 ? wait : 365ULL * 86400 * 1000);
    evtimer_add(ws->keepalive, &tv);
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ws *ws = arg;
    if (ws->state != WS_ST_OPEN)
        return;
    uint64_t now = now_ms();
    /* While we are not reading, the peer's silence is ours; the write
     * timeout judges whether it reads. */
    if (ws->read_paused)
        ws->last_rx_ms = now;
    if (now - ws->last_rx_ms >= ws->env.idle_timeout_ms) {
        GW_LOG_INFO("ws_idle", "timeout_ms=%llu route=%s conn=%llu",
                    (unsigned long long)ws->env.idle_timeout_ms,
                    ws->env.route ? ws->env.route : "-",
                    (unsigned long long)ws->env.conn_id);
        gw_ws_close(ws, WS_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    if (ws->env.ping_interval_ms != 0 && now >= ws->next_ping_ms) {
        /* A peer that reads nothing gets no pile of pings. */
        if (evbuffer_get_length(bufferevent_get_output(ws->bev)) < ws->env.max_send_queue)
            send_frame(ws, 0, WS_OP_PING, NULL, 0);
        ws->next_ping_ms = add_ms(now, ws->env.ping_interval_ms);
    }
    keepalive_arm(ws, now);
}

struct gw_ws *
gw_ws_new(struct bufferevent *bev, const struct gw_handler *handler, void *instance,
          const struct gw_ws_env *env, const char *subject)
{
    struct gw_ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    if (subject != NULL && (ws->subject = strdup(subject)) == NULL) {
        free(ws);
        return NULL;
    }
    ws->bev = bev;
    ws->handler = handler;
    ws->instance = instance;
    ws->env = *env;
    if (env->deflate != NULL) {
        ws->deflate_params = *env->deflate;
        ws->env.deflate = &ws->deflate_params;
        ws->deflate = ws_deflate_new(&ws->deflate_params);
    }
    ws->keepalive = evtimer_new(bufferevent_get_base(bev), keepalive_cb, ws);
    if (ws->keepalive == NULL || (env->deflate != NULL && ws->deflate == NULL)) {
        ws->closed_notified = true; /* the handler never saw it open */
        gw_ws_free(ws);
        return NULL;
    }
    ws->state = WS_ST_OPEN;
    /* Reading pauses at half the queue, so that a handler answering what it
     * reads (echo) slows its peer down long before the queue's limit. */
    ws->out_high = (size_t)(env->max_send_queue / 2);
    return ws;
}

void
gw_ws_start(struct gw_ws *ws, const struct gw_request *req)
{
    bufferevent_setwatermark(ws->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    /* The peer's silence is timed by the keepalive timer (frames, not
     * bytes); the write timeout catches a peer that stopped reading. */
    set_timeouts(ws, 0, ws->env.idle_timeout_ms);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
    uint64_t now = now_ms();
    ws->last_rx_ms = now;
    ws->next_ping_ms = add_ms(now, ws->env.ping_interval_ms);
    keepalive_arm(ws, now);
    if (ws->handler->on_open != NULL)
        ws->handler->on_open(ws->instance, ws, req);
    if (evbuffer_get_length(bufferevent_get_input(ws->bev)) > 0)
        gw_ws_on_read(ws);
}

void
gw_ws_free(struct gw_ws *ws)
{
    if (ws == NULL)
        return;
    notify_close(ws, WS_CLOSE_ABNORMAL, NULL, 0);
    if (ws->deadline != NULL)
        event_free(ws->deadline);
    if (ws->keepalive != NULL)
        event_free(ws->keepalive);
    ws_deflate_free(ws->deflate);
    free(ws->msg.data);
    free(ws->subject);
    free(ws);
}

void
gw_ws_set_data(struct gw_ws *ws, void *data)
{
    ws->user = data;
}

void *
gw_ws_get_data(const struct gw_ws *ws)
{
    return ws->user;
}

const char *
gw_ws_subject(const struct gw_ws *ws)
{
    return ws->subject;
}
