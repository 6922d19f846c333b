/* test_tunnel: the frame relay over two bufferevent pairs, with scripted bytes. */
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/log.h"
#include "gateway/tunnel.h"
#include "gateway/ws_frame.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define KIB 1024
#define MIB (1024 * 1024)
/* How much may sit queued towards a peer that does not read. */
#define QUEUE_BOUND(buffer) (2 * (size_t)(buffer) + 64 * KIB)

/* How a byte stream reaches the tunnel (STYLE rule 20): in one write, or
 * one byte per write with the loop run in between. A loop test's index
 * carries it in its low bit. */
enum feed {
    FEED_WHOLE = 0,
    FEED_BYTES,
};

static const uint8_t client_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Each pair: [0] is the tunnel's end, [1] the scripted peer's. The tunnel
 * owns up[0] once started; cli[0] stays ours, as it stays the caller's. */
struct fixture {
    struct event_base *base;
    struct bufferevent *cli[2];
    struct bufferevent *up[2];
    struct gw_tunnel *t;
    struct gw_tunnel_env env;
    struct gw_tunnel_counters counters;
    int finished;
    struct evbuffer *at_client, *at_upstream; /* what each peer received */
    struct evbuffer *scratch[16]; /* a case's own buffers, freed in teardown */
    size_t nscratch;
};

static struct fixture fx;

static void
on_finished(void *owner)
{
    ck_assert_ptr_eq(owner, &fx);
    fx.finished++;
}

/* Moves what reached each peer into its record. */
static void
collect(void)
{
    evbuffer_add_buffer(fx.at_client, bufferevent_get_input(fx.cli[1]));
    if (fx.up[1] != NULL)
        evbuffer_add_buffer(fx.at_upstream, bufferevent_get_input(fx.up[1]));
}

/* Runs the loop until no callback is pending (pairs defer theirs), without
 * waiting for timers. */
static void
settle(void)
{
    for (int i = 0; i < 10000; i++) {
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        if (event_base_get_num_events(fx.base, EVENT_BASE_COUNT_ACTIVE) == 0)
            break;
    }
    collect();
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

static long
ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs the loop, timers included, until done() holds or max_ms passed; a
 * ticking event keeps a blocking loop from waiting past the limit. */
static void
run_until(bool (*done)(void), long max_ms)
{
    struct event *tick = event_new(fx.base, -1, EV_PERSIST, tick_cb, NULL);
    ck_assert_ptr_nonnull(tick);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (settle(); !done() && ms_since(&t0) < max_ms; settle())
        event_base_loop(fx.base, EVLOOP_ONCE);
    event_free(tick);
}

static bool
is_finished(void)
{
    return fx.finished > 0;
}

static bool
both_received(void)
{
    return evbuffer_get_length(fx.at_client) > 0 &&
           evbuffer_get_length(fx.at_upstream) > 0;
}

static void
setup(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.base = event_base_new();
    ck_assert_ptr_nonnull(fx.base);
    ck_assert_int_eq(bufferevent_pair_new(fx.base, BEV_OPT_CLOSE_ON_FREE, fx.cli), 0);
    ck_assert_int_eq(bufferevent_pair_new(fx.base, BEV_OPT_CLOSE_ON_FREE, fx.up), 0);
    bufferevent_enable(fx.cli[1], EV_READ | EV_WRITE);
    bufferevent_enable(fx.up[1], EV_READ | EV_WRITE);
    fx.at_client = evbuffer_new();
    fx.at_upstream = evbuffer_new();
    fx.env = (struct gw_tunnel_env){
        .max_message_size = 2 * MIB,
        .idle_timeout_ms = 60000,
        .close_timeout_ms = 60000,
        .buffer = 256 * KIB,
        .route = "test",
        .conn_id = 1,
        .counters = &fx.counters,
        .finished = on_finished,
        .owner = &fx,
    };
}

/* Frees the tunnel (and with it up[0]), which adds its totals to the
 * counters. */
static void
free_tunnel(void)
{
    gw_tunnel_free(fx.t);
    fx.t = NULL;
    fx.up[0] = NULL;
}

static void
teardown(void)
{
    if (fx.t != NULL)
        free_tunnel();
    if (fx.up[0] != NULL)
        bufferevent_free(fx.up[0]);
    bufferevent_free(fx.cli[0]);
    bufferevent_free(fx.cli[1]);
    if (fx.up[1] != NULL)
        bufferevent_free(fx.up[1]);
    evbuffer_free(fx.at_client);
    evbuffer_free(fx.at_upstream);
    for (size_t i = 0; i < fx.nscratch; i++)
        evbuffer_free(fx.scratch[i]);
    event_base_free(fx.base);
}

/* A buffer for a case's bytes, freed by teardown even when the case
 * fails. */
static struct evbuffer *
scratch_buf(void)
{
    ck_assert_uint_lt(fx.nscratch, N_ELEMS(fx.scratch));
    struct evbuffer *b = evbuffer_new();
    ck_assert_ptr_nonnull(b);
    fx.scratch[fx.nscratch++] = b;
    return b;
}

/* Starts a tunnel with fx.env between the two pairs. */
static void
start(void)
{
    fx.t = gw_tunnel_new(fx.cli[0], fx.up[0], &fx.env);
    ck_assert_ptr_nonnull(fx.t);
    gw_tunnel_start(fx.t);
    settle();
    ck_assert_int_eq(fx.finished, 0);
}

static struct bufferevent *
peer(bool client)
{
    return client ? fx.cli[1] : fx.up[1];
}

/* What the client or the upstream received so far. */
static struct evbuffer *
got(bool client)
{
    return client ? fx.at_client : fx.at_upstream;
}

static void
feed(struct bufferevent *to, const uint8_t *p, size_t n, size_t step)
{
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        ck_assert_int_eq(bufferevent_write(to, p + off, k), 0);
        settle();
    }
    settle();
}

/* The client (masked) or the upstream (unmasked) sends the bytes in b. */
static void
send_from(bool client, struct evbuffer *b, enum feed how)
{
    size_t n = evbuffer_get_length(b);
    feed(peer(client), n > 0 ? evbuffer_pullup(b, -1) : NULL, n,
         how == FEED_BYTES ? 1 : (n > 0 ? n : 1));
}

/* Appends a frame; a NULL payload is a letter pattern. Frames from the
 * client are masked, as a client's must be. */
static void
put_frame(struct evbuffer *out, bool fin, uint8_t op, bool masked, const void *payload,
          size_t len)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    size_t hl = ws_frame_encode_header(hdr, fin, 0, op, masked ? client_mask : NULL, len);
    ck_assert_int_eq(evbuffer_add(out, hdr, hl), 0);
    uint8_t *p = malloc(len + 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = payload != NULL ? ((const uint8_t *)payload)[i]
                               : (uint8_t)('a' + (i + len) % 26);
    if (masked)
        ws_frame_mask(p, len, client_mask, 0);
    ck_assert_int_eq(evbuffer_add(out, p, len), 0);
    free(p);
}

static void
put_close(struct evbuffer *out, bool masked, uint16_t code, const char *reason)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t n = ws_close_build(payload, code, reason);
    put_frame(out, true, WS_OP_CLOSE, masked, payload, n);
}

/* A peer's close frame, sent in one go or byte by byte. */
static void
close_from(bool client, uint16_t code, enum feed how)
{
    struct evbuffer *b = evbuffer_new();
    put_close(b, client, code, "bye");
    send_from(client, b, how);
    evbuffer_free(b);
}

/* Data and a ping the peer sends after our close, to be dropped. */
static void
chatter_from(bool client, enum feed how)
{
    struct evbuffer *b = evbuffer_new();
    put_frame(b, true, WS_OP_TEXT, client, "late", 4);
    put_frame(b, true, WS_OP_PING, client, "p", 1);
    put_frame(b, true, WS_OP_BINARY, client, NULL, 300);
    send_from(client, b, how);
    evbuffer_free(b);
}

/* The upstream's peer ends its stream (a pair reports that through a flush
 * with BEV_FINISHED) and vanishes. */
static void
upstream_vanishes(void)
{
    bufferevent_flush(fx.up[1], EV_WRITE, BEV_FINISHED);
    settle();
    bufferevent_free(fx.up[1]);
    fx.up[1] = NULL;
    settle();
}

/* Asserts that g starts with want, and removes that part. */
static void
take_bytes(struct evbuffer *g, struct evbuffer *want, const char *what)
{
    size_t n = evbuffer_get_length(want), have = evbuffer_get_length(g);
    ck_assert_msg(have >= n, "%s: received %zu bytes, expected at least %zu", what, have,
                  n);
    if (n == 0)
        return;
    const uint8_t *a = evbuffer_pullup(g, (ssize_t)n), *b = evbuffer_pullup(want, -1);
    size_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    ck_assert_msg(i == n, "%s: first difference at byte %zu of %zu", what, i, n);
    evbuffer_drain(g, n);
}

/* Asserts that g holds exactly want. */
static void
expect_bytes(struct evbuffer *g, struct evbuffer *want, const char *what)
{
    take_bytes(g, want, what);
    ck_assert_msg(evbuffer_get_length(g) == 0, "%s: %zu bytes more than expected", what,
                  evbuffer_get_length(g));
}

/* Removes one close frame from what the client (unmasked) or the upstream
 * (masked) received and checks its code and, unless NULL, its reason. */
static void
take_close(bool client, uint16_t code, const char *reason)
{
    const char *who = client ? "client" : "upstream";
    struct evbuffer *g = got(client);
    uint8_t hb[WS_FRAME_MAX_HEADER];
    size_t n = evbuffer_copyout(g, hb, sizeof(hb));
    struct ws_frame_rules rules = {.require_masked = !client, .forbid_masked = client};
    struct ws_frame_header h;
    uint16_t why = 0;
    int hl = ws_frame_parse_header(hb, n, &rules, &h, &why);
    ck_assert_msg(hl > 0, "%s: no whole %s frame header (%d, %zu bytes)", who,
                  client ? "unmasked" : "masked", hl, n);
    ck_assert_msg(h.opcode == WS_OP_CLOSE, "%s: opcode %u, not close", who,
                  (unsigned)h.opcode);
    ck_assert(h.fin);
    ck_assert_uint_ge(h.payload_len, 2);
    ck_assert_uint_ge(evbuffer_get_length(g), (size_t)hl + h.payload_len);
    uint8_t payload[WS_CONTROL_MAX];
    evbuffer_drain(g, (size_t)hl);
    evbuffer_remove(g, payload, (size_t)h.payload_len);
    if (h.masked)
        ws_frame_mask(payload, (size_t)h.payload_len, h.mask, 0);
    ck_assert_msg((payload[0] << 8 | payload[1]) == code, "%s: close %u, expected %u",
                  who, (unsigned)(payload[0] << 8 | payload[1]), (unsigned)code);
    if (reason != NULL) {
        ck_assert_uint_eq(h.payload_len - 2, strlen(reason));
        ck_assert(memcmp(payload + 2, reason, strlen(reason)) == 0);
    }
}

/* The peer's record holds exactly one close frame. */
static void
expect_only_close(bool client, uint16_t code, const char *reason)
{
    take_close(client, code, reason);
    ck_assert_msg(evbuffer_get_length(got(client)) == 0, "%s: %zu bytes after the close",
                  client ? "client" : "upstream", evbuffer_get_length(got(client)));
}

static void
expect_nothing(void)
{
    ck_assert_uint_eq(evbuffer_get_length(fx.at_client), 0);
    ck_assert_uint_eq(evbuffer_get_length(fx.at_upstream), 0);
}

/* One frame of a script; op END ends the list. */
struct spec {
    bool fin;
    uint8_t op;
    uint32_t len;
};
#define END 0xff

static void
put_specs(struct evbuffer *out, const struct spec *s, bool masked)
{
    for (; s->op != END; s++)
        put_frame(out, s->fin, s->op, masked, NULL, s->len);
}

static uint64_t
count_messages(const struct spec *s)
{
    uint64_t n = 0;
    for (; s->op != END; s++)
        n += s->fin && !ws_opcode_is_control(s->op);
    return n;
}

/* 1. Frames relay byte for byte: masked ones to the upstream still masked,
 * unmasked ones to the client; every length form and a fragmented message
 * with control frames between its fragments. */
struct relay_case {
    const char *name;
    struct spec frames[8];
};

/* Each is sent from the client and from the upstream. */
static const struct relay_case relay_cases[] = {
    {"text, 7-bit length", {{true, WS_OP_TEXT, 5}, {.op = END}}},
    {"binary, 0 and 125",
     {{true, WS_OP_BINARY, 0}, {true, WS_OP_BINARY, 125}, {.op = END}}},
    {"binary, 16-bit lengths",
     {{true, WS_OP_BINARY, 126}, {true, WS_OP_BINARY, 65535}, {.op = END}}},
    {"binary, 64-bit length", {{true, WS_OP_BINARY, 65536}, {.op = END}}},
    {"fragments, ping between",
     {{false, WS_OP_TEXT, 3},
      {true, WS_OP_PING, 1},
      {false, WS_OP_CONTINUATION, 2},
      {true, WS_OP_PONG, 0},
      {true, WS_OP_CONTINUATION, 4},
      {true, WS_OP_BINARY, 7},
      {.op = END}}},
};

START_TEST(relays_byte_exact)
{
    const struct relay_case *tc = &relay_cases[_i / 4];
    bool from_client = (_i / 2) % 2 == 0;
    enum feed how = (enum feed)(_i % 2);
    char name[96];
    snprintf(name, sizeof(name), "%s %s", from_client ? "client" : "upstream", tc->name);
    start();
    struct evbuffer *b = scratch_buf();
    put_specs(b, tc->frames, from_client);
    size_t n = evbuffer_get_length(b);
    send_from(from_client, b, how);
    expect_bytes(got(!from_client), b, name);
    ck_assert_uint_eq(evbuffer_get_length(got(from_client)), 0);
    ck_assert_int_eq(fx.finished, 0);
    free_tunnel();
    uint64_t msgs = count_messages(tc->frames);
    ck_assert_uint_eq(fx.counters.tunnels, 1);
    ck_assert_uint_eq(from_client ? fx.counters.msgs_up : fx.counters.msgs_down, msgs);
    ck_assert_uint_eq(from_client ? fx.counters.bytes_up : fx.counters.bytes_down, n);
    ck_assert_uint_eq(from_client ? fx.counters.msgs_down : fx.counters.msgs_up, 0);
    ck_assert_uint_eq(fx.counters.too_big, 0);
}
END_TEST

/* 2. A message over max_message_size (1000 here): what came before it is
 * relayed, then both sides get close 1009 (the upstream's masked), and
 * nothing of the offending frame or after it goes on. */
struct big_case {
    const char *name;
    bool from_client;
    struct spec ok[6]; /* relayed */
    struct spec bad;   /* the frame that makes the message too big */
};

static const struct big_case big_cases[] = {
    {"client, one frame",
     true,
     {{true, WS_OP_BINARY, 1000}, {.op = END}},
     {true, WS_OP_BINARY, 1001}},
    {"client, across fragments",
     true,
     {{false, WS_OP_TEXT, 600},
      {true, WS_OP_PING, 2},
      {false, WS_OP_CONTINUATION, 400},
      {.op = END}},
     {true, WS_OP_CONTINUATION, 1}},
    {"client, 64-bit length",
     true,
     {{true, WS_OP_TEXT, 10}, {.op = END}},
     {true, WS_OP_BINARY, 70000}},
    {"upstream, one frame",
     false,
     {{true, WS_OP_BINARY, 1000}, {.op = END}},
     {true, WS_OP_BINARY, 1001}},
    {"upstream, across fragments",
     false,
     {{false, WS_OP_BINARY, 999},
      {true, WS_OP_PONG, 0},
      {false, WS_OP_CONTINUATION, 1},
      {.op = END}},
     {false, WS_OP_CONTINUATION, 200}},
    {"upstream, 64-bit length",
     false,
     {{true, WS_OP_TEXT, 10}, {.op = END}},
     {true, WS_OP_BINARY, 70000}},
};

START_TEST(too_big_closes_1009)
{
    const struct big_case *tc = &big_cases[_i / 2];
    enum feed how = (enum feed)(_i % 2);
    fx.env.max_message_size = 1000;
    start();
    struct evbuffer *ok = scratch_buf(), *all = scratch_buf();
    put_specs(ok, tc->ok, tc->from_client);
    evbuffer_add(all, evbuffer_pullup(ok, -1), evbuffer_get_length(ok));
    put_frame(all, tc->bad.fin, tc->bad.op, tc->from_client, NULL, tc->bad.len);
    /* What follows the offending frame is not relayed either. */
    put_frame(all, true, WS_OP_TEXT, tc->from_client, "after", 5);
    send_from(tc->from_client, all, how);
    take_bytes(got(!tc->from_client), ok, tc->name);
    expect_only_close(!tc->from_client, WS_CLOSE_TOO_BIG, NULL);
    expect_only_close(tc->from_client, WS_CLOSE_TOO_BIG, NULL);
    ck_assert_int_eq(fx.finished, 0); /* both answers are awaited */
    free_tunnel();
    ck_assert_uint_eq(fx.counters.too_big, 1);
}
END_TEST

/* 3. After the gateway's close, the tunnel waits for both peers' own close
 * frames; what they send meanwhile is dropped; then it finishes once. */
START_TEST(close_waits_for_both_answers)
{
    bool client_first = _i / 2 == 0;
    enum feed how = (enum feed)(_i % 2);
    start();
    gw_tunnel_drain(fx.t);
    settle();
    expect_only_close(true, WS_CLOSE_GOING_AWAY, NULL);
    expect_only_close(false, WS_CLOSE_GOING_AWAY, NULL);
    ck_assert_int_eq(fx.finished, 0);
    chatter_from(true, how);
    chatter_from(false, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 0);
    close_from(client_first, WS_CLOSE_GOING_AWAY, how);
    expect_nothing(); /* an answer to our close is not relayed */
    ck_assert_int_eq(fx.finished, 0);
    chatter_from(!client_first, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 0);
    close_from(!client_first, WS_CLOSE_GOING_AWAY, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
    /* Neither more bytes nor another close finish it again. */
    chatter_from(true, how);
    chatter_from(false, how);
    gw_tunnel_close(fx.t, WS_CLOSE_POLICY, "again");
    settle();
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 3b. A peer that never answers: finished once the close timeout passes. */
enum answers {
    ANSWER_NONE = 0,
    ANSWER_CLIENT_ONLY,
    ANSWER_UPSTREAM_ONLY,
};

START_TEST(close_timeout_finishes)
{
    enum answers a = (enum answers)_i;
    fx.env.close_timeout_ms = 50;
    start();
    gw_tunnel_drain(fx.t);
    settle();
    expect_only_close(true, WS_CLOSE_GOING_AWAY, NULL);
    expect_only_close(false, WS_CLOSE_GOING_AWAY, NULL);
    if (a == ANSWER_CLIENT_ONLY)
        close_from(true, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    if (a == ANSWER_UPSTREAM_ONLY)
        close_from(false, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    ck_assert_int_eq(fx.finished, 0);
    run_until(is_finished, 5000);
    ck_assert_int_eq(fx.finished, 1);
    /* A late answer does not finish it again. */
    close_from(true, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    close_from(false, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 3c. The upstream answers our close with its end (after its close frame,
 * or without one): that counts as its answer, and the client's is still
 * awaited. */
START_TEST(upstream_end_answers_our_close)
{
    bool with_close = _i / 2 == 0;
    enum feed how = (enum feed)(_i % 2);
    start();
    gw_tunnel_drain(fx.t);
    settle();
    expect_only_close(true, WS_CLOSE_GOING_AWAY, NULL);
    expect_only_close(false, WS_CLOSE_GOING_AWAY, NULL);
    if (with_close)
        close_from(false, WS_CLOSE_GOING_AWAY, how);
    upstream_vanishes();
    expect_nothing();
    ck_assert_int_eq(fx.finished, 0);
    chatter_from(true, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 0);
    close_from(true, WS_CLOSE_GOING_AWAY, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 4. The upstream's end without a close frame: the client gets close 1014
 * at a frame boundary. Mid-frame there is none: a close cannot follow a
 * partial frame, so the tunnel finishes at once and the client's
 * connection is simply closed. */
struct gone_case {
    const char *name;
    struct spec frames[4]; /* whole frames before the end */
    const uint8_t *tail;   /* then the start of one more frame */
    size_t tail_len;
    bool close_expected; /* else: the tail is relayed, no close */
};

static const uint8_t tail_header[] = {0x82, 0x7e, 0x01}; /* 16-bit length, cut */
static const uint8_t tail_payload[] = {0x82, 100, 'p', 'a', 'r', 't',
                                       'i',  'a', 'l', ' ', 'f', 'r'}; /* 10 of 100 */

static const struct gone_case gone_cases[] = {
    {"after whole frames",
     {{true, WS_OP_TEXT, 5}, {true, WS_OP_BINARY, 200}, {.op = END}},
     NULL,
     0,
     true},
    {"nothing sent", {{.op = END}}, NULL, 0, true},
    {"mid-header",
     {{true, WS_OP_TEXT, 5}, {.op = END}},
     tail_header,
     sizeof(tail_header),
     true},
    {"mid-payload",
     {{true, WS_OP_TEXT, 5}, {.op = END}},
     tail_payload,
     sizeof(tail_payload),
     false},
};

START_TEST(upstream_gone_closes_1014)
{
    const struct gone_case *tc = &gone_cases[_i / 2];
    enum feed how = (enum feed)(_i % 2);
    start();
    struct evbuffer *whole = scratch_buf(), *all = scratch_buf();
    put_specs(whole, tc->frames, false);
    if (evbuffer_get_length(whole) > 0)
        evbuffer_add(all, evbuffer_pullup(whole, -1), evbuffer_get_length(whole));
    evbuffer_add(all, tc->tail, tc->tail_len);
    send_from(false, all, how);
    upstream_vanishes();
    ck_assert_uint_eq(evbuffer_get_length(fx.at_upstream), 0);
    ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_output(fx.up[0])), 0);
    if (tc->close_expected) {
        take_bytes(fx.at_client, whole, tc->name);
        expect_only_close(true, WS_CLOSE_BAD_GATEWAY, "upstream went away");
        ck_assert_int_eq(fx.finished, 0); /* the client's answer is awaited */
        close_from(true, WS_CLOSE_BAD_GATEWAY, how);
        ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_output(fx.up[0])), 0);
    } else {
        expect_bytes(fx.at_client, all, tc->name);
    }
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 5. The peers close the usual way: each close frame is relayed byte for
 * byte (data the other side sends before its own close too), and the
 * tunnel finishes once both passed. */
START_TEST(peers_close_normally)
{
    bool client_first = _i / 2 == 0;
    enum feed how = (enum feed)(_i % 2);
    start();
    struct evbuffer *first = scratch_buf(), *second = scratch_buf();
    put_close(first, client_first, WS_CLOSE_NORMAL, "bye");
    put_frame(second, true, WS_OP_TEXT, !client_first, "last words", 10);
    put_close(second, !client_first, WS_CLOSE_NORMAL, "");
    send_from(client_first, first, how);
    expect_bytes(got(!client_first), first, "first close");
    ck_assert_uint_eq(evbuffer_get_length(got(client_first)), 0);
    ck_assert_int_eq(fx.finished, 0);
    send_from(!client_first, second, how);
    expect_bytes(got(client_first), second, "data and second close");
    ck_assert_uint_eq(evbuffer_get_length(got(!client_first)), 0);
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 6. A protocol violation: close 1002 to both sides (after what came
 * before it); the violator is not waited for, the other peer is. */
struct violation_case {
    const char *name;
    bool from_client;
    const uint8_t *bytes;
    size_t len;
};

static const uint8_t v_unmasked[] = {0x81, 0x01, 'a'};
static const uint8_t v_reserved_data[] = {0x83, 0x80, 1, 2, 3, 4};
static const uint8_t v_reserved_control[] = {0x8b, 0x80, 1, 2, 3, 4};
static const uint8_t v_masked_from_upstream[] = {0x81, 0x81, 1, 2, 3, 4, 'a' ^ 1};
static const uint8_t v_reserved_upstream[] = {0x83, 0x00};

static const struct violation_case violation_cases[] = {
    {"client unmasked frame", true, v_unmasked, sizeof(v_unmasked)},
    {"client reserved opcode 3", true, v_reserved_data, sizeof(v_reserved_data)},
    {"client reserved opcode 0xB", true, v_reserved_control, sizeof(v_reserved_control)},
    {"upstream masked frame", false, v_masked_from_upstream,
     sizeof(v_masked_from_upstream)},
    {"upstream reserved opcode 3", false, v_reserved_upstream,
     sizeof(v_reserved_upstream)},
};

START_TEST(violation_closes_1002)
{
    const struct violation_case *tc = &violation_cases[_i / 2];
    enum feed how = (enum feed)(_i % 2);
    start();
    struct evbuffer *ok = scratch_buf(), *all = scratch_buf();
    put_frame(ok, true, WS_OP_TEXT, tc->from_client, "ok", 2);
    evbuffer_add(all, evbuffer_pullup(ok, -1), evbuffer_get_length(ok));
    evbuffer_add(all, tc->bytes, tc->len);
    put_frame(all, true, WS_OP_TEXT, tc->from_client, "after", 5);
    send_from(tc->from_client, all, how);
    take_bytes(got(!tc->from_client), ok, tc->name);
    expect_only_close(!tc->from_client, WS_CLOSE_PROTOCOL_ERROR, NULL);
    expect_only_close(tc->from_client, WS_CLOSE_PROTOCOL_ERROR, NULL);
    ck_assert_int_eq(fx.finished, 0);
    close_from(!tc->from_client, WS_CLOSE_PROTOCOL_ERROR, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 7. Backpressure: towards a peer that does not read, the tunnel queues
 * about env.buffer and stops reading the source; once the peer reads,
 * everything arrives intact. Fed in one write and in 1000-byte writes
 * (one byte at a time would be a million loop runs). */
struct pressure_case {
    const char *name;
    bool from_client;
    size_t step;   /* bytes per write; 0: all at once */
    bool then_eof; /* the upstream ends before the client reads */
};

static const struct pressure_case pressure_cases[] = {
    {"upstream, one write", false, 0, false},
    {"upstream, 1000-byte writes", false, 1000, false},
    {"client, one write", true, 0, false},
    {"client, 1000-byte writes", true, 1000, false},
    {"upstream, then its end", false, 0, true},
    {"upstream, 1000-byte writes, then its end", false, 1000, true},
};

/* Bytes on their way to a peer: the tunnel's queue and the peer's input. */
static size_t
queued_to(bool client)
{
    struct bufferevent *end = client ? fx.cli[0] : fx.up[0];
    return evbuffer_get_length(bufferevent_get_output(end)) +
           evbuffer_get_length(bufferevent_get_input(peer(client)));
}

START_TEST(backpressure_bounds_the_queue)
{
    const struct pressure_case *tc = &pressure_cases[_i];
    bool to_client = !tc->from_client;
    struct bufferevent *src_end = tc->from_client ? fx.cli[0] : fx.up[0];
    fx.env.buffer = 4096;
    start();
    struct evbuffer *b = scratch_buf();
    for (int i = 0; i < 16; i++)
        put_frame(b, true, WS_OP_BINARY, tc->from_client, NULL, 65536);
    size_t total = evbuffer_get_length(b);
    ck_assert_uint_ge(total, MIB);
    bufferevent_disable(peer(to_client), EV_READ);
    const uint8_t *p = evbuffer_pullup(b, -1);
    size_t step = tc->step > 0 ? tc->step : total;
    for (size_t off = 0; off < total; off += step) {
        size_t k = total - off < step ? total - off : step;
        ck_assert_int_eq(bufferevent_write(peer(tc->from_client), p + off, k), 0);
        settle();
        ck_assert_msg(queued_to(to_client) <= QUEUE_BOUND(fx.env.buffer),
                      "%s: %zu bytes queued after %zu sent", tc->name,
                      queued_to(to_client), off + k);
    }
    /* The source is no longer read: what the tunnel took from it is what
     * it queued, and the rest waits on the source's side. */
    ck_assert_int_eq(bufferevent_get_enabled(src_end) & EV_READ, 0);
    size_t left = evbuffer_get_length(bufferevent_get_input(src_end)) +
                  evbuffer_get_length(bufferevent_get_output(peer(tc->from_client)));
    ck_assert_uint_le(total - left, QUEUE_BOUND(fx.env.buffer));
    ck_assert_uint_gt(queued_to(to_client), 0);
    if (tc->then_eof)
        upstream_vanishes();
    ck_assert_int_eq(fx.finished, 0); /* the client has not read the rest */
    bufferevent_enable(peer(to_client), EV_READ);
    for (int i = 0; i < 1000 && evbuffer_get_length(got(to_client)) < total; i++)
        settle();
    take_bytes(got(to_client), b, tc->name);
    if (tc->then_eof) {
        /* Everything sent before the end, then the 1014; finished once
         * the client answered, not before. */
        expect_only_close(true, WS_CLOSE_BAD_GATEWAY, NULL);
        ck_assert_int_eq(fx.finished, 0);
        close_from(true, WS_CLOSE_BAD_GATEWAY, FEED_WHOLE);
        ck_assert_int_eq(fx.finished, 1);
    } else {
        ck_assert_uint_eq(evbuffer_get_length(got(to_client)), 0);
        ck_assert_int_ne(bufferevent_get_enabled(src_end) & EV_READ, 0);
        ck_assert_uint_eq(evbuffer_get_length(got(tc->from_client)), 0);
        ck_assert_int_eq(fx.finished, 0);
    }
}
END_TEST

/* 7b. A drain while the client does not read and the tunnel is paused in
 * the middle of a frame: the upstream has its close at once; the client,
 * once it reads, the rest of that frame and then its close, and nothing of
 * the frames after it. */
START_TEST(drain_while_paused_mid_frame)
{
    fx.env.buffer = 4096;
    start();
    struct evbuffer *b = scratch_buf(), *first = scratch_buf();
    for (int i = 0; i < 16; i++)
        put_frame(b, true, WS_OP_BINARY, false, NULL, 65536);
    put_frame(first, true, WS_OP_BINARY, false, NULL, 65536);
    bufferevent_disable(fx.cli[1], EV_READ);
    send_from(false, b, FEED_WHOLE);
    ck_assert_uint_le(queued_to(true), QUEUE_BOUND(fx.env.buffer));
    ck_assert_uint_lt(queued_to(true), evbuffer_get_length(first));
    gw_tunnel_drain(fx.t);
    settle();
    expect_only_close(false, WS_CLOSE_GOING_AWAY, NULL);
    bufferevent_enable(fx.cli[1], EV_READ);
    for (int i = 0; i < 100 && evbuffer_get_length(fx.at_client) <= 65536; i++)
        settle();
    take_bytes(fx.at_client, first, "frame in flight");
    expect_only_close(true, WS_CLOSE_GOING_AWAY, NULL);
    ck_assert_int_eq(fx.finished, 0);
    close_from(true, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    ck_assert_int_eq(fx.finished, 0);
    close_from(false, WS_CLOSE_GOING_AWAY, FEED_WHOLE);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 8. Drain and an owner's close: the code (and reason) to both sides, the
 * upstream's masked, each at its next frame boundary; the first close
 * wins. A frame in flight when the close is asked for: mid-payload, it is
 * finished first; mid-header, none of it was sent, so the close goes at
 * once and the frame is dropped. */
enum in_flight {
    FLIGHT_NONE = 0,
    FLIGHT_PAYLOAD, /* 15 of 40 payload bytes sent */
    FLIGHT_HEADER,  /* 1 header byte sent */
};

struct close_case {
    const char *name;
    uint16_t code; /* 1001: gw_tunnel_drain */
    const char *reason;
    enum in_flight flight;
    bool from_client; /* who has the frame in flight */
};

static const struct close_case close_cases[] = {
    {"drain", WS_CLOSE_GOING_AWAY, NULL, FLIGHT_NONE, false},
    {"close 1008", WS_CLOSE_POLICY, "token expired", FLIGHT_NONE, false},
    {"drain, client mid-payload", WS_CLOSE_GOING_AWAY, NULL, FLIGHT_PAYLOAD, true},
    {"close 1008, upstream mid-payload", WS_CLOSE_POLICY, "token expired", FLIGHT_PAYLOAD,
     false},
    {"close 1008, client mid-header", WS_CLOSE_POLICY, "token expired", FLIGHT_HEADER,
     true},
    {"drain, upstream mid-header", WS_CLOSE_GOING_AWAY, NULL, FLIGHT_HEADER, false},
};

START_TEST(owner_close_reaches_both)
{
    const struct close_case *tc = &close_cases[_i / 2];
    enum feed how = (enum feed)(_i % 2);
    bool src = tc->from_client;
    start();
    struct evbuffer *frame = scratch_buf(), *head = scratch_buf(), *rest = scratch_buf(),
                    *relayed = scratch_buf();
    put_frame(frame, true, WS_OP_BINARY, src, NULL, 40);
    const uint8_t *f = evbuffer_pullup(frame, -1);
    size_t flen = evbuffer_get_length(frame);
    size_t split = tc->flight == FLIGHT_HEADER ? 1 : (src ? 6 : 2) + 15;
    if (tc->flight != FLIGHT_NONE) {
        evbuffer_add(head, f, split);
        send_from(src, head, how);
        if (tc->flight == FLIGHT_PAYLOAD)
            take_bytes(got(!src), head, "frame start");
        ck_assert_uint_eq(evbuffer_get_length(got(!src)), 0);
        if (tc->flight == FLIGHT_PAYLOAD) /* what must still go through */
            evbuffer_add(relayed, f + split, flen - split);
        evbuffer_add(rest, f + split, flen - split);
        put_frame(rest, true, WS_OP_TEXT, src, "dropped", 7);
    }
    if (tc->code == WS_CLOSE_GOING_AWAY)
        gw_tunnel_drain(fx.t);
    else
        gw_tunnel_close(fx.t, tc->code, tc->reason);
    settle();
    /* The source's peer has its close at once; so has the other unless a
     * frame's payload is still on its way to it. */
    expect_only_close(src, tc->code, tc->reason);
    if (tc->flight == FLIGHT_PAYLOAD)
        ck_assert_uint_eq(evbuffer_get_length(got(!src)), 0);
    else
        expect_only_close(!src, tc->code, tc->reason);
    if (tc->flight != FLIGHT_NONE) {
        send_from(src, rest, how);
        take_bytes(got(!src), relayed, "frame end");
        if (tc->flight == FLIGHT_PAYLOAD)
            expect_only_close(!src, tc->code, tc->reason);
        expect_nothing();
    }
    gw_tunnel_close(fx.t, WS_CLOSE_INTERNAL, "second");
    gw_tunnel_drain(fx.t);
    settle();
    expect_nothing();
    ck_assert_int_eq(fx.finished, 0);
    close_from(true, tc->code, how);
    close_from(false, tc->code, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* 9. No byte either way for idle_timeout_ms: close 1001 to both. */
START_TEST(idle_closes_1001)
{
    enum feed how = (enum feed)_i;
    fx.env.idle_timeout_ms = 50;
    start();
    run_until(both_received, 5000);
    expect_only_close(true, WS_CLOSE_GOING_AWAY, NULL);
    expect_only_close(false, WS_CLOSE_GOING_AWAY, NULL);
    ck_assert_int_eq(fx.finished, 0);
    close_from(false, WS_CLOSE_GOING_AWAY, how);
    close_from(true, WS_CLOSE_GOING_AWAY, how);
    expect_nothing();
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* The upstream ends without a close frame, so the gateway closes the
 * client with 1014 and, like every close of its own, waits for the
 * client's answer (or the close deadline) before finishing. This once
 * finished at once over a socketless or TLS client: pass_eof() ended both
 * connections when the 1014 was flushed. */
START_TEST(upstream_gone_waits_for_the_clients_answer)
{
    enum feed how = (enum feed)_i;
    start();
    struct evbuffer *b = scratch_buf();
    put_frame(b, true, WS_OP_TEXT, false, "hello", 5);
    send_from(false, b, how);
    upstream_vanishes();
    take_bytes(fx.at_client, b, "frame before the end");
    expect_only_close(true, WS_CLOSE_BAD_GATEWAY, "upstream went away");
    ck_assert_int_eq(fx.finished, 0);
    close_from(true, WS_CLOSE_BAD_GATEWAY, how);
    ck_assert_int_eq(fx.finished, 1);
}
END_TEST

/* The same after backpressure: the upstream sent 1 MiB and ended while the
 * client was not reading; once it reads, it gets everything and the 1014,
 * and the tunnel still waits for its answer. */
START_TEST(upstream_gone_after_backpressure_waits)
{
    fx.env.buffer = 4096;
    start();
    struct evbuffer *b = scratch_buf();
    for (int i = 0; i < 16; i++)
        put_frame(b, true, WS_OP_BINARY, false, NULL, 65536);
    bufferevent_disable(fx.cli[1], EV_READ);
    send_from(false, b, FEED_WHOLE);
    upstream_vanishes();
    bufferevent_enable(fx.cli[1], EV_READ);
    for (int i = 0; i < 1000 && evbuffer_get_length(fx.at_client) < MIB; i++)
        settle();
    take_bytes(fx.at_client, b, "1 MiB");
    expect_only_close(true, WS_CLOSE_BAD_GATEWAY, NULL);
    ck_assert_int_eq(fx.finished, 0);
}
END_TEST

static Suite *
tunnel_suite(void)
{
    Suite *s = suite_create("tunnel");
    TCase *tc = tcase_create("relay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, relays_byte_exact, 0, 4 * N_ELEMS(relay_cases));
    tcase_add_loop_test(tc, too_big_closes_1009, 0, 2 * N_ELEMS(big_cases));
    tcase_add_loop_test(tc, close_waits_for_both_answers, 0, 4);
    tcase_add_loop_test(tc, close_timeout_finishes, 0, 3);
    tcase_add_loop_test(tc, upstream_end_answers_our_close, 0, 4);
    tcase_add_loop_test(tc, upstream_gone_closes_1014, 0, 2 * N_ELEMS(gone_cases));
    tcase_add_loop_test(tc, peers_close_normally, 0, 4);
    tcase_add_loop_test(tc, violation_closes_1002, 0, 2 * N_ELEMS(violation_cases));
    tcase_add_loop_test(tc, backpressure_bounds_the_queue, 0, N_ELEMS(pressure_cases));
    tcase_add_test(tc, drain_while_paused_mid_frame);
    tcase_add_loop_test(tc, owner_close_reaches_both, 0, 2 * N_ELEMS(close_cases));
    tcase_add_loop_test(tc, idle_closes_1001, 0, 2);
    tcase_add_loop_test(tc, upstream_gone_waits_for_the_clients_answer, 0, 2);
    tcase_add_test(tc, upstream_gone_after_backpressure_waits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    gw_log_configure(CFG_LOG_ERROR, CFG_LOG_TEXT);
    SRunner *sr = srunner_create(tunnel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
