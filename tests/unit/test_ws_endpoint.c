/* test_ws_endpoint: the endpoint over a bufferevent pair — the slow-reader policy. */
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/ws_endpoint.h"
#include "gateway/ws_frame.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A handler that answers each message with a burst of copies, as a
 * broadcast does for a client that reads slowly, and records each send's
 * result. */
static struct {
    size_t burst;    /* copies per message */
    size_t copy_len; /* bytes per copy */
    int results[64]; /* gw_ws_send's results, in order */
    size_t nresults;
    int closes; /* on_close calls */
    uint16_t close_code;
} h;

static void
burst_on_message(void *instance, struct gw_ws *ws, enum ws_opcode op, const uint8_t *data,
                 size_t len)
{
    uint8_t *copy = malloc(h.copy_len);
    ck_assert_ptr_nonnull(copy);
    memset(copy, 'b', h.copy_len);
    for (size_t i = 0; i < h.burst; i++) {
        int rc = gw_ws_send(ws, WS_OP_BINARY, copy, h.copy_len);
        if (h.nresults < N_ELEMS(h.results))
            h.results[h.nresults++] = rc;
    }
    free(copy);
}

static void
burst_on_close(void *instance, struct gw_ws *ws, uint16_t code, const uint8_t *reason,
               size_t len)
{
    h.closes++;
    h.close_code = code;
}

static const struct gw_handler burst_handler = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "burst",
    .on_message = burst_on_message,
    .on_close = burst_on_close,
};

struct fixture {
    struct event_base *base;
    struct bufferevent *pair[2]; /* [0] the endpoint's, [1] the peer's */
    struct gw_ws *ws;
    struct gw_ws_counters counters;
    int finished;
};

static struct fixture fx;

static void
srv_read(struct bufferevent *bev, void *arg)
{
    gw_ws_on_read(fx.ws);
}

static void
srv_write(struct bufferevent *bev, void *arg)
{
    gw_ws_on_write(fx.ws);
}

static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_TIMEOUT)
        gw_ws_on_timeout(fx.ws, (what & BEV_EVENT_WRITING) != 0);
    else
        gw_ws_on_eof(fx.ws);
}

static void
on_finished(void *owner, bool graceful)
{
    fx.finished++;
}

static void
start(enum cfg_slow_reader policy, uint64_t max_send_queue)
{
    memset(&h, 0, sizeof(h));
    memset(&fx, 0, sizeof(fx));
    fx.base = event_base_new();
    ck_assert_ptr_nonnull(fx.base);
    ck_assert_int_eq(bufferevent_pair_new(fx.base, 0, fx.pair), 0);
    struct gw_ws_env env = {
        .max_message_size = 64 * 1024,
        .idle_timeout_ms = 60000,
        .close_timeout_ms = 60000,
        .max_send_queue = max_send_queue,
        .slow_reader = policy,
        .counters = &fx.counters,
        .route = "burst",
        .conn_id = 1,
        .finished = on_finished,
    };
    fx.ws = gw_ws_new(fx.pair[0], &burst_handler, NULL, &env, NULL);
    ck_assert_ptr_nonnull(fx.ws);
    bufferevent_setcb(fx.pair[0], srv_read, srv_write, srv_event, NULL);
    struct gw_request req = {.route = "burst",
                             .path = "/burst",
                             .query = "",
                             .host = "h",
                             .peer = "127.0.0.1"};
    gw_ws_start(fx.ws, &req);
    /* The peer does not read: what the endpoint sends stays queued. */
    bufferevent_disable(fx.pair[1], EV_READ);
    bufferevent_enable(fx.pair[1], EV_WRITE);
}

static void
stop(void)
{
    gw_ws_free(fx.ws);
    bufferevent_free(fx.pair[0]);
    bufferevent_free(fx.pair[1]);
    event_base_free(fx.base);
}

static void
pump(void)
{
    for (int i = 0; i < 10; i++)
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
}

/* The peer sends one masked binary message. */
static void
peer_send(const char *text)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t hdr[WS_FRAME_MAX_HEADER], payload[125];
    size_t n = strlen(text);
    memcpy(payload, text, n);
    ws_frame_mask(payload, n, mask, 0);
    size_t hl = ws_frame_encode_header(hdr, true, 0, WS_OP_BINARY, mask, n);
    bufferevent_write(fx.pair[1], hdr, hl);
    bufferevent_write(fx.pair[1], payload, n);
    pump();
}

/* The peer reads what reached it: counts the data frames, returns the code
 * of a close frame (0 when none). */
static uint16_t
peer_read(size_t *frames)
{
    bufferevent_enable(fx.pair[1], EV_READ);
    pump();
    struct evbuffer *in = bufferevent_get_input(fx.pair[1]);
    uint16_t code = 0;
    *frames = 0;
    for (;;) {
        uint8_t hb[WS_FRAME_MAX_HEADER];
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < sizeof(hb) ? avail : sizeof(hb);
        if (n < 2)
            break;
        evbuffer_copyout(in, hb, n);
        static const struct ws_frame_rules client = {.forbid_masked = true};
        struct ws_frame_header fh;
        uint16_t why;
        int hl = ws_frame_parse_header(hb, n, &client, &fh, &why);
        ck_assert_int_gt(hl, 0);
        ck_assert_uint_ge(avail, (size_t)hl + fh.payload_len);
        evbuffer_drain(in, (size_t)hl);
        uint8_t payload[2];
        if (fh.opcode == WS_OP_CLOSE) {
            ck_assert_uint_ge(fh.payload_len, 2);
            evbuffer_remove(in, payload, 2);
            code = (uint16_t)(payload[0] << 8 | payload[1]);
            evbuffer_drain(in, (size_t)fh.payload_len - 2);
        } else {
            (*frames)++;
            evbuffer_drain(in, (size_t)fh.payload_len);
        }
    }
    bufferevent_disable(fx.pair[1], EV_READ);
    return code;
}

/* Each copy is 1000 bytes plus a 4-byte header; 4 fit in 4 KiB, the 5th
 * does not. */
START_TEST(test_close_policy)
{
    start(CFG_SLOW_READER_CLOSE, 4096);
    h.burst = 8;
    h.copy_len = 1000;
    peer_send("go");
    ck_assert_uint_eq(h.nresults, 8);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(h.results[i], 0);
    for (size_t i = 4; i < 8; i++)
        ck_assert_int_eq(h.results[i], -1);
    ck_assert_uint_eq(fx.counters.slow_reader_closes, 1);
    ck_assert_uint_eq(fx.counters.slow_reader_drops, 0);
    size_t frames;
    ck_assert_uint_eq(peer_read(&frames), WS_CLOSE_POLICY);
    ck_assert_uint_eq(frames, 4);
    stop();
    ck_assert_int_eq(h.closes, 1);
}
END_TEST

START_TEST(test_drop_policy)
{
    start(CFG_SLOW_READER_DROP, 4096);
    h.burst = 8;
    h.copy_len = 1000;
    peer_send("go");
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(h.results[i], 0);
    for (size_t i = 4; i < 8; i++)
        ck_assert_int_eq(h.results[i], GW_WS_SEND_DROPPED);
    ck_assert_uint_eq(fx.counters.slow_reader_drops, 4);
    ck_assert_uint_eq(fx.counters.slow_reader_closes, 0);
    size_t frames;
    ck_assert_uint_eq(peer_read(&frames), 0);
    ck_assert_uint_eq(frames, 4);
    /* Once the peer has read, the queue takes messages again. */
    h.nresults = 0;
    peer_send("again");
    ck_assert_int_eq(h.results[0], 0);
    ck_assert_int_eq(fx.finished, 0);
    stop();
}
END_TEST

/* With nothing queued any message goes, however large. */
START_TEST(test_empty_queue_admits_a_large_message)
{
    start(CFG_SLOW_READER_CLOSE, 4096);
    h.burst = 2;
    h.copy_len = 10000;
    peer_send("go");
    ck_assert_int_eq(h.results[0], 0);
    ck_assert_int_eq(h.results[1], -1);
    ck_assert_uint_eq(fx.counters.slow_reader_closes, 1);
    stop();
}
END_TEST

static Suite *
ws_endpoint_suite(void)
{
    Suite *s = suite_create("ws_endpoint");
    TCase *tc = tcase_create("slow reader");
    tcase_add_test(tc, test_close_policy);
    tcase_add_test(tc, test_drop_policy);
    tcase_add_test(tc, test_empty_queue_admits_a_large_message);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    gw_log_configure(CFG_LOG_ERROR, CFG_LOG_TEXT);
    SRunner *sr = srunner_create(ws_endpoint_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
