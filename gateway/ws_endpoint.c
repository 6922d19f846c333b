/* ws_endpoint: the server side of an RFC 6455 connection, driving a handler. */
#include "gateway/ws_endpoint.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/shared_frame.h"
#include "gateway/utf8.h"

/* Keep a reassembly buffer between messages only while it is this small, so
 * that an idle connection holds no large allocation. */
#define WS_MSG_KEEP 4096

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
    enum ws_state state;
    bool closed_notified;   /* handler's on_close has run */
    bool read_paused;       /* stopped reading while the peer's output is full */
    uint8_t msg_opcode;     /* opcode of the message being reassembled, or 0 */
    struct utf8_state utf8; /* of the text message being reassembled */
    uint8_t *msg;
    size_t msg_len;
    size_t msg_cap;
    size_t out_high;        /* output size at which we stop reading */
    struct event *deadline; /* the close timeout, armed once a close starts */
    void *user;
    char *subject;
};

static const struct ws_frame_rules server_rules = {
    .allowed_rsv = 0,
    .require_masked = true,
};

static void
set_timeouts(struct gw_ws *ws, uint64_t read_ms, uint64_t write_ms)
{
    struct timeval r = {(time_t)(read_ms / 1000), (suseconds_t)(read_ms % 1000) * 1000};
    struct timeval w = {(time_t)(write_ms / 1000), (suseconds_t)(write_ms % 1000) * 1000};
    bufferevent_set_timeouts(ws->bev, read_ms ? &r : NULL, write_ms ? &w : NULL);
}

static void
notify_close(struct gw_ws *ws, uint16_t code, const uint8_t *reason, size_t len)
{
    if (ws->closed_notified)
        return;
    ws->closed_notified = true;
    if (ws->handler->on_close != NULL)
        ws->handler->on_close(ws->instance, ws, code, reason, len);
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
    ws->env.finished(ws->env.owner, graceful);
}

static int
send_frame(struct gw_ws *ws, uint8_t opcode, const void *data, size_t len)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    size_t hl = ws_frame_encode_header(hdr, true, 0, opcode, NULL, len);
    struct evbuffer *out = bufferevent_get_output(ws->bev);
    if (evbuffer_add(out, hdr, hl) != 0 || (len > 0 && evbuffer_add(out, data, len) != 0))
        return -1;
    return 0;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ws *ws = arg;
    GW_LOG_INFO("ws_close_timeout", "timeout_ms=%llu",
                (unsigned long long)ws->env.close_timeout_ms);
    finish(ws, false);
}

/* Starts the one fixed deadline of a close: unlike the bufferevent's
 * timeouts, a peer that keeps sending cannot push it back. */
static void
arm_deadline(struct gw_ws *ws)
{
    if (ws->deadline != NULL)
        return;
    ws->deadline = evtimer_new(bufferevent_get_base(ws->bev), deadline_cb, ws);
    uint64_t ms = ws->env.close_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
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
    GW_LOG_INFO("ws_fail", "code=%u reason=\"%s\"", code, reason);
    if (ws->state == WS_ST_OPEN) {
        uint8_t payload[WS_CONTROL_MAX];
        size_t n = ws_close_build(payload, code, reason);
        send_frame(ws, WS_OP_CLOSE, payload, n);
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
    uint8_t payload[WS_CONTROL_MAX];
    size_t n = ws_close_build(payload, code, reason);
    /* Should the frame not fit in memory, the deadline still ends it. */
    send_frame(ws, WS_OP_CLOSE, payload, n);
    ws->state = WS_ST_CLOSE_SENT;
    /* Keep reading so the peer's close frame is seen, until the deadline. */
    ws->read_paused = false;
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
    arm_deadline(ws);
}

/* A peer that does not read cannot make us hold more than this. */
static bool
over_send_cap(struct gw_ws *ws, size_t len)
{
    return evbuffer_get_length(bufferevent_get_output(ws->bev)) + len > 2 * ws->out_high;
}

int
gw_ws_send(struct gw_ws *ws, enum ws_opcode opcode, const void *data, size_t len)
{
    if (ws->state != WS_ST_OPEN || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY))
        return -1;
    if (over_send_cap(ws, len))
        return -1;
    return send_frame(ws, (uint8_t)opcode, data, len);
}

int
gw_ws_send_frame(struct gw_ws *ws, struct gw_frame *f)
{
    if (ws->state != WS_ST_OPEN || over_send_cap(ws, f->payload_len))
        return -1;
    /* By reference: one encoding shared by every recipient; the buffer holds
     * a reference until the bytes are written. Sent uncompressed, which is
     * valid also after permessage-deflate was negotiated. */
    gw_frame_ref(f);
    if (evbuffer_add_reference(bufferevent_get_output(ws->bev), f->bytes, f->len,
                               gw_frame_release_cb, f) != 0) {
        gw_frame_unref(f);
        return -1;
    }
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
        send_frame(ws, WS_OP_CLOSE, reply, code == WS_CLOSE_NO_STATUS ? 0 : 2);
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
        if (ws->state == WS_ST_OPEN)
            send_frame(ws, WS_OP_PONG, payload, len);
        return;
    case WS_OP_PONG:
        return;
    case WS_OP_CLOSE:
        on_close_frame(ws, payload, len);
        return;
    }
}

static int
msg_reserve(struct gw_ws *ws, size_t need)
{
    if (need <= ws->msg_cap)
        return 0;
    size_t cap = ws->msg_cap ? ws->msg_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > ws->env.max_message_size && need <= ws->env.max_message_size)
        cap = (size_t)ws->env.max_message_size;
    uint8_t *p = realloc(ws->msg, cap);
    if (p == NULL)
        return -1;
    ws->msg = p;
    ws->msg_cap = cap;
    return 0;
}

static void
deliver(struct gw_ws *ws)
{
    uint8_t opcode = ws->msg_opcode;
    ws->msg_opcode = 0;
    if (ws->state == WS_ST_OPEN && ws->handler->on_message != NULL)
        ws->handler->on_message(ws->instance, ws, (enum ws_opcode)opcode, ws->msg,
                                ws->msg_len);
    ws->msg_len = 0;
    if (ws->msg_cap > WS_MSG_KEEP) {
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
}

/* A data frame whose payload is wholly in `in`. Returns 0 or -1 when the
 * endpoint failed. */
static int
on_data(struct gw_ws *ws, const struct ws_frame_header *h, struct evbuffer *in)
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
    size_t len = (size_t)h->payload_len;
    if (ws->state != WS_ST_OPEN) {
        /* After our close the peer's data is read and dropped. */
        evbuffer_drain(in, len);
        ws->msg_opcode = h->fin ? 0 : (cont ? ws->msg_opcode : h->opcode);
        return 0;
    }
    if (msg_reserve(ws, ws->msg_len + len) != 0) {
        fail(ws, WS_CLOSE_INTERNAL, "out of memory");
        return -1;
    }
    if (!cont) {
        ws->msg_opcode = h->opcode;
        ws->utf8 = (struct utf8_state)UTF8_INIT;
    }
    uint8_t *frag = NULL; /* ws->msg may still be NULL for an empty message */
    if (len > 0) {
        frag = ws->msg + ws->msg_len;
        evbuffer_remove(in, frag, len);
        ws_frame_mask(frag, len, h->mask, 0);
        ws->msg_len += len;
    }
    /* Text is checked as it arrives, so a bad byte fails the connection at
     * once rather than after the rest of a long message (RFC 6455 §8.1). */
    if (ws->msg_opcode == WS_OP_TEXT) {
        enum utf8_result u = utf8_validate(&ws->utf8, frag, len, NULL);
        if (u == UTF8_INVALID || (h->fin && u != UTF8_OK)) {
            fail(ws, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in text message");
            return -1;
        }
    }
    if (h->fin)
        deliver(ws);
    return 0;
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
    while (ws->state == WS_ST_OPEN || ws->state == WS_ST_CLOSE_SENT) {
        if (ws->state == WS_ST_OPEN && output_full(ws)) {
            pause_reading(ws);
            return;
        }
        size_t avail = evbuffer_get_length(in);
        uint8_t hb[WS_FRAME_MAX_HEADER];
        size_t n = avail < sizeof(hb) ? avail : sizeof(hb);
        if (n < 2)
            return;
        evbuffer_copyout(in, hb, n);
        struct ws_frame_header h;
        uint16_t code = 0;
        int hl = ws_frame_parse_header(hb, n, &server_rules, &h, &code);
        if (hl == -2)
            return;
        if (hl < 0) {
            fail(ws, code, "invalid frame header");
            return;
        }
        bool control = ws_opcode_is_control(h.opcode);
        if (!control && h.payload_len > ws->env.max_message_size - ws->msg_len) {
            if (ws->state == WS_ST_OPEN)
                fail(ws, WS_CLOSE_TOO_BIG, "message too big");
            else
                finish(ws, false); /* not worth buffering after our close */
            return;
        }
        if (avail - (size_t)hl < h.payload_len)
            return; /* the rest of the frame has not arrived yet */
        evbuffer_drain(in, (size_t)hl);
        if (control) {
            uint8_t payload[WS_CONTROL_MAX];
            evbuffer_remove(in, payload, (size_t)h.payload_len);
            on_control(ws, &h, payload);
        } else if (on_data(ws, &h, in) != 0) {
            return;
        }
    }
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
    /* A peer that has not read for idle_timeout will not read a close frame
     * either; one that has not sent anything is asked to close. */
    if (ws->state == WS_ST_OPEN && !writing) {
        GW_LOG_INFO("ws_idle", "timeout_ms=%llu",
                    (unsigned long long)ws->env.idle_timeout_ms);
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
    ws->state = WS_ST_OPEN;
    /* One whole message can always be queued for the peer. */
    ws->out_high = (size_t)env->max_message_size + 64 * 1024;
    return ws;
}

void
gw_ws_start(struct gw_ws *ws, const struct gw_request *req)
{
    bufferevent_setwatermark(ws->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    set_timeouts(ws, ws->env.idle_timeout_ms, ws->env.idle_timeout_ms);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
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
    free(ws->msg);
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
