/* test_conn: the connection state machine over bufferevent pairs, with scripted bytes. */
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "gateway/conn.h"
#include "gateway/log.h"
#include "gateway/snapshot.h"
#include "gateway/ws_frame.h"

#define JWT_SECRET "0123456789abcdef0123456789abcdef"

static const char base_yaml[] =
    "listeners: [{address: '127.0.0.1:0'}]\n"
    "limits: {max_connections: %s, max_request_head: 1KiB, handshake_timeout: %s,\n"
    "         max_message_size: 64KiB}\n"
    "log: {level: error}\n"
    "auth:\n"
    "  token_from: [header, query=access_token, cookie=session]\n"
    "  providers:\n"
    "    edge: {type: static, tokens: [s3cret]}\n"
    "    jwt: {type: jwt, algorithms: [HS256], secret: " JWT_SECRET ", leeway: 0s}\n"
    "routes:\n"
    "  - {name: jwt, path: /jwt, handler: echo, auth: jwt, token_from: [subprotocol]}\n"
    "  - {name: echo, path: /echo, handler: echo}\n"
    "  - {name: private, path: /private, handler: echo, auth: edge}\n"
    "  - {name: up, path: /up, upstream: 'ws://127.0.0.1:1'}\n";

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define UPGRADE(path, extra)                                                             \
    "GET " path " HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"                        \
    "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"                              \
    "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

struct fixture {
    struct event_base *base;
    struct gw_shared shared;
    struct gw_ctx ctx;
    int empty_calls;
};

static struct fixture fx;

static void
on_empty(struct gw_ctx *ctx)
{
    fx.empty_calls++;
}

static const char *
env_lookup(const char *name, void *arg)
{
    return getenv(name);
}

static void
setup_with(const char *max_conns, const char *timeout)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), base_yaml, max_conns, timeout);
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    ck_assert_int_eq(
        cfg_load_string("conn.yaml", yaml, strlen(yaml), env_lookup, NULL, &cfg, &errs),
        0);
    memset(&fx, 0, sizeof(fx));
    fx.base = event_base_new();
    ck_assert_int_eq(gw_ctx_init(&fx.ctx, fx.base, &fx.shared, 0), 0);
    fx.ctx.on_empty = on_empty;
    struct gw_snapshot *snap = gw_snapshot_new(cfg, 1, NULL);
    ck_assert_ptr_nonnull(snap);
    gw_log_configure(cfg->log.level, cfg->log.format);
    fx.ctx.wsnap = gw_wsnap_new(snap, fx.base, NULL, NULL);
    ck_assert_ptr_nonnull(fx.ctx.wsnap);
    gw_snapshot_unref(snap);
}

static void
setup(void)
{
    setup_with("100", "10s");
}

static void
teardown(void)
{
    gw_ctx_cleanup(&fx.ctx);
    event_base_free(fx.base);
}

/* Runs the loop until nothing is pending. */
static void
pump(void)
{
    for (int i = 0; i < 50; i++)
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
}

/* A new connection; returns the client's end of the pair. */
static struct bufferevent *
client(void)
{
    struct bufferevent *pair[2];
    ck_assert_int_eq(bufferevent_pair_new(
                         fx.base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair),
                     0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000001)};
    ck_assert_int_eq(gw_conn_accept(&fx.ctx, pair[0], (struct sockaddr *)&sin, false), 0);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    return pair[1];
}

static void
send_str(struct bufferevent *cl, const char *s)
{
    bufferevent_write(cl, s, strlen(s));
    pump();
}

/* Everything the gateway sent so far, NUL-terminated (caller frees). */
static char *
received(struct bufferevent *cl, size_t *len)
{
    struct evbuffer *in = bufferevent_get_input(cl);
    size_t n = evbuffer_get_length(in);
    char *s = malloc(n + 1);
    evbuffer_remove(in, s, n);
    s[n] = '\0';
    if (len != NULL)
        *len = n;
    return s;
}

static void
expect_status(struct bufferevent *cl, const char *status_line)
{
    char *r = received(cl, NULL);
    ck_assert_msg(strncmp(r, status_line, strlen(status_line)) == 0, "got: %s", r);
    ck_assert_ptr_nonnull(strstr(r, "Connection: close\r\n"));
    free(r);
}

/* The client hangs up (a pair only tells its partner through a flush with
 * BEV_FINISHED), then every connection must be gone. */
static void
hang_up(struct bufferevent *cl)
{
    bufferevent_flush(cl, EV_WRITE, BEV_FINISHED);
    pump();
    bufferevent_free(cl);
}

static void
expect_all_freed(struct bufferevent *cl)
{
    hang_up(cl);
    pump();
    ck_assert_uint_eq(fx.ctx.nconns, 0);
    ck_assert_uint_eq(atomic_load(&fx.shared.nconns), 0);
}

static void
send_frame(struct bufferevent *cl, uint8_t opcode, const void *data, size_t len)
{
    static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    size_t hl = ws_frame_encode_header(hdr, true, 0, opcode, mask, len);
    uint8_t *p = malloc(len + 1);
    memcpy(p, data, len);
    ws_frame_mask(p, len, mask, 0);
    bufferevent_write(cl, hdr, hl);
    bufferevent_write(cl, p, len);
    free(p);
    pump();
}

/* Reads one unmasked server frame from the client's input. */
static int
read_frame(struct bufferevent *cl, uint8_t *opcode, uint8_t *payload, size_t cap,
           size_t *len)
{
    struct evbuffer *in = bufferevent_get_input(cl);
    uint8_t hb[WS_FRAME_MAX_HEADER];
    size_t n = evbuffer_copyout(in, hb, sizeof(hb));
    struct ws_frame_rules rules = {.forbid_masked = true};
    struct ws_frame_header h;
    uint16_t code;
    int hl = ws_frame_parse_header(hb, n, &rules, &h, &code);
    if (hl < 0 || evbuffer_get_length(in) < (size_t)hl + h.payload_len ||
        h.payload_len > cap)
        return -1;
    evbuffer_drain(in, (size_t)hl);
    evbuffer_remove(in, payload, (size_t)h.payload_len);
    *opcode = h.opcode;
    *len = (size_t)h.payload_len;
    return 0;
}

static void
expect_upgrade(struct bufferevent *cl)
{
    struct evbuffer *in = bufferevent_get_input(cl);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    ck_assert_int_ge(end.pos, 0);
    char head[512];
    size_t n = (size_t)end.pos + 4;
    ck_assert_uint_lt(n, sizeof(head));
    evbuffer_remove(in, head, n);
    head[n] = '\0';
    ck_assert_msg(strncmp(head, "HTTP/1.1 101 ", 13) == 0, "got: %s", head);
    ck_assert_ptr_nonnull(strstr(head, "Sec-WebSocket-Accept: " ACCEPT "\r\n"));
}

static void
expect_echo(struct bufferevent *cl, uint8_t opcode, const char *text)
{
    uint8_t op, buf[256];
    size_t len;
    ck_assert_int_eq(read_frame(cl, &op, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(op, opcode);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert(memcmp(buf, text, len) == 0);
}

/* The close handshake from the client's side: the gateway answers with the
 * same code and then closes, which frees the connection. */
static void
close_cleanly(struct bufferevent *cl)
{
    uint8_t payload[2] = {0x03, 0xe8};
    send_frame(cl, WS_OP_CLOSE, payload, 2);
    uint8_t op, buf[128];
    size_t len;
    ck_assert_int_eq(read_frame(cl, &op, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(op, WS_OP_CLOSE);
    ck_assert_uint_eq(len, 2);
    ck_assert_uint_eq(buf[0] << 8 | buf[1], 1000);
    ck_assert_uint_eq(fx.ctx.nconns, 0);
    expect_all_freed(cl);
}

START_TEST(upgrade_echo_close)
{
    struct bufferevent *cl = client();
    send_str(cl, UPGRADE("/echo", ""));
    expect_upgrade(cl);
    send_frame(cl, WS_OP_TEXT, "hello", 5);
    expect_echo(cl, WS_OP_TEXT, "hello");
    send_frame(cl, WS_OP_PING, "p", 1);
    expect_echo(cl, WS_OP_PONG, "p");
    close_cleanly(cl);
}
END_TEST

START_TEST(head_one_byte_at_a_time_with_pipelined_frame)
{
    struct bufferevent *cl = client();
    const char *head = UPGRADE("/echo?x=1", "");
    size_t n = strlen(head);
    for (size_t i = 0; i < n; i++) {
        bufferevent_write(cl, &head[i], 1);
        pump();
        if (i + 1 < n) /* nothing is answered before the head is complete */
            ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(cl)), 0);
    }
    /* A frame in the same write as the rest of a head is not lost. */
    struct bufferevent *cl2 = client();
    static const uint8_t frame[] = {0x82, 0x83, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3};
    struct evbuffer *both = evbuffer_new();
    evbuffer_add(both, UPGRADE("/echo", ""), strlen(UPGRADE("/echo", "")));
    evbuffer_add(both, frame, sizeof(frame));
    bufferevent_write_buffer(cl2, both);
    evbuffer_free(both);
    pump();
    expect_upgrade(cl);
    expect_upgrade(cl2);
    expect_echo(cl2, WS_OP_BINARY, "abc");
    hang_up(cl); /* vanishing without a close frame also frees it */
    close_cleanly(cl2);
}
END_TEST

START_TEST(fragmented_message_reassembled)
{
    struct bufferevent *cl = client();
    send_str(cl, UPGRADE("/echo", ""));
    expect_upgrade(cl);
    static const uint8_t m[4] = {0, 0, 0, 0};
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    size_t hl = ws_frame_encode_header(hdr, false, 0, WS_OP_TEXT, m, 3);
    bufferevent_write(cl, hdr, hl);
    bufferevent_write(cl, "hel", 3);
    hl = ws_frame_encode_header(hdr, true, 0, WS_OP_PING, m, 0);
    bufferevent_write(cl, hdr, hl);
    hl = ws_frame_encode_header(hdr, true, 0, WS_OP_CONTINUATION, m, 2);
    bufferevent_write(cl, hdr, hl);
    bufferevent_write(cl, "lo", 2);
    pump();
    expect_echo(cl, WS_OP_PONG, "");
    expect_echo(cl, WS_OP_TEXT, "hello");
    close_cleanly(cl);
}
END_TEST

START_TEST(utf8_split_across_fragments)
{
    struct bufferevent *cl = client();
    send_str(cl, UPGRADE("/echo", ""));
    expect_upgrade(cl);
    static const uint8_t m[4] = {0, 0, 0, 0};
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    /* "κ" is CE BA: the code point is split between the two fragments. */
    size_t hl = ws_frame_encode_header(hdr, false, 0, WS_OP_TEXT, m, 2);
    bufferevent_write(cl, hdr, hl);
    bufferevent_write(cl, "a\xce", 2);
    hl = ws_frame_encode_header(hdr, true, 0, WS_OP_CONTINUATION, m, 2);
    bufferevent_write(cl, hdr, hl);
    bufferevent_write(cl,
                      "\xba"
                      "b",
                      2);
    pump();
    expect_echo(cl, WS_OP_TEXT,
                "a\xce\xba"
                "b");
    close_cleanly(cl);
}
END_TEST

/* A protocol violation gets a close code and the connection is released. */
static void
expect_close_code(const uint8_t *bytes, size_t n, uint16_t code)
{
    struct bufferevent *cl = client();
    send_str(cl, UPGRADE("/echo", ""));
    expect_upgrade(cl);
    bufferevent_write(cl, bytes, n);
    pump();
    uint8_t op, buf[128];
    size_t len;
    ck_assert_int_eq(read_frame(cl, &op, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(op, WS_OP_CLOSE);
    ck_assert_uint_ge(len, 2);
    ck_assert_uint_eq(buf[0] << 8 | buf[1], code);
    ck_assert_uint_eq(fx.ctx.nconns, 0);
    expect_all_freed(cl);
}

START_TEST(violations_close)
{
    static const uint8_t unmasked[] = {0x81, 0x01, 'a'};
    expect_close_code(unmasked, sizeof(unmasked), WS_CLOSE_PROTOCOL_ERROR);
    static const uint8_t cont_first[] = {0x80, 0x80, 0, 0, 0, 0};
    expect_close_code(cont_first, sizeof(cont_first), WS_CLOSE_PROTOCOL_ERROR);
    static const uint8_t rsv[] = {0xC1, 0x80, 0, 0, 0, 0};
    expect_close_code(rsv, sizeof(rsv), WS_CLOSE_PROTOCOL_ERROR);
    /* 64 KiB + 1 announced: over max_message_size before any payload. */
    static const uint8_t big[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
    expect_close_code(big, sizeof(big), WS_CLOSE_TOO_BIG);
    static const uint8_t bad_close[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed}; /* 1005 */
    expect_close_code(bad_close, sizeof(bad_close), WS_CLOSE_PROTOCOL_ERROR);
    /* Fail fast: ED A0 is a surrogate; the message is not finished yet. */
    static const uint8_t surrogate[] = {0x01, 0x82, 0, 0, 0, 0, 0xed, 0xa0};
    expect_close_code(surrogate, sizeof(surrogate), WS_CLOSE_INVALID_DATA);
    static const uint8_t truncated[] = {0x81, 0x81, 0, 0, 0, 0, 0xce};
    expect_close_code(truncated, sizeof(truncated), WS_CLOSE_INVALID_DATA);
    static const uint8_t bad_reason[] = {0x88, 0x83, 0, 0, 0, 0, 0x03, 0xe8, 0xff};
    expect_close_code(bad_reason, sizeof(bad_reason), WS_CLOSE_INVALID_DATA);
}
END_TEST

struct status_case {
    const char *request;
    const char *status;
    const char *header; /* a header line the response must carry, or NULL */
};

static const struct status_case status_cases[] = {
    {"garbage\r\n\r\n", "HTTP/1.1 400 ", NULL},
    {"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "HTTP/1.1 400 ", NULL},
    {UPGRADE("/nope", ""), "HTTP/1.1 404 ", NULL},
    {"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 ",
     "Allow: GET\r\n"},
    {"GET /echo HTTP/1.1\r\nHost: gw\r\n\r\n", "HTTP/1.1 426 ",
     "Sec-WebSocket-Version: 13\r\n"},
    {UPGRADE("/private", ""), "HTTP/1.1 401 ",
     "WWW-Authenticate: Bearer realm=\"wsgate\"\r\n"},
    {UPGRADE("/private", "Authorization: Bearer nope\r\n"), "HTTP/1.1 401 ",
     "WWW-Authenticate: Bearer realm=\"wsgate\", error=\"invalid_token\"\r\n"},
    {UPGRADE("/up", ""), "HTTP/1.1 502 ", NULL},
};

START_TEST(error_statuses)
{
    const struct status_case *tc = &status_cases[_i];
    struct bufferevent *cl = client();
    send_str(cl, tc->request);
    char *r = received(cl, NULL);
    ck_assert_msg(strncmp(r, tc->status, strlen(tc->status)) == 0, "case %d got: %s", _i,
                  r);
    /* A 426 carries Upgrade, so its Connection lists it (RFC 9110 §7.8). */
    ck_assert_ptr_nonnull(strstr(r, strncmp(tc->status, "HTTP/1.1 426 ", 13) == 0
                                        ? "Connection: Upgrade, close\r\n"
                                        : "Connection: close\r\n"));
    if (tc->header != NULL)
        ck_assert_msg(strstr(r, tc->header) != NULL, "case %d missing %s in %s", _i,
                      tc->header, r);
    free(r);
    /* Over a pair there is no socket to linger on: freed once flushed. */
    ck_assert_uint_eq(fx.ctx.nconns, 0);
    expect_all_freed(cl);
}
END_TEST

START_TEST(token_sources_allow)
{
    static const char *const reqs[] = {
        UPGRADE("/private", "Authorization: Bearer s3cret\r\n"),
        UPGRADE("/private?access_token=s3cret", ""),
        UPGRADE("/private", "Cookie: a=b; session=s3cret\r\n"),
    };
    for (size_t i = 0; i < 3; i++) {
        struct bufferevent *cl = client();
        send_str(cl, reqs[i]);
        expect_upgrade(cl);
        close_cleanly(cl);
    }
}
END_TEST

/* An HS256 token for sub "ada" expiring at exp, in out. */
static void
jwt_token(long long exp, char *out, size_t cap)
{
    char claims[128], input[512];
    snprintf(claims, sizeof(claims), "{\"sub\":\"ada\",\"exp\":%lld}", exp);
    unsigned char b64[256];
    int n = EVP_EncodeBlock(b64, (const unsigned char *)"{\"alg\":\"HS256\"}", 15);
    snprintf(input, sizeof(input), "%.*s.", n, (const char *)b64);
    n = EVP_EncodeBlock(b64, (const unsigned char *)claims, (int)strlen(claims));
    snprintf(input + strlen(input), sizeof(input) - strlen(input), "%.*s", n,
             (const char *)b64);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), JWT_SECRET, 32, (const unsigned char *)input, strlen(input), mac,
         &maclen);
    n = EVP_EncodeBlock(b64, mac, (int)maclen);
    snprintf(out, cap, "%s.%.*s", input, n, (const char *)b64);
    /* base64 to base64url without padding */
    char *w = out;
    for (const char *r = out; *r != '\0'; r++) {
        if (*r == '=')
            continue;
        *w++ = *r == '+' ? '-' : *r == '/' ? '_' : *r;
    }
    *w = '\0';
}

/* A subprotocol token: the 101 selects no subprotocol, and the connection
 * gets close 1008 once the token expires. */
START_TEST(jwt_expiry_closes_1008)
{
    char tok[512], req[1024];
    jwt_token((long long)time(NULL) + 1, tok, sizeof(tok));
    snprintf(req, sizeof(req),
             UPGRADE("/jwt", "Sec-WebSocket-Protocol: bearer.%s, chat\r\n"), tok);
    struct bufferevent *cl = client();
    send_str(cl, req);
    struct evbuffer *in = bufferevent_get_input(cl);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    ck_assert_int_ge(end.pos, 0);
    char head[512];
    evbuffer_copyout(in, head, (size_t)end.pos + 4);
    head[end.pos + 4] = '\0';
    ck_assert_ptr_null(strstr(head, "Sec-WebSocket-Protocol"));
    expect_upgrade(cl);
    send_frame(cl, WS_OP_TEXT, "before expiry", 13);
    expect_echo(cl, WS_OP_TEXT, "before expiry");
    /* Waits for the expiry timer (the hang guard is the suite's timeout). */
    while (evbuffer_get_length(in) == 0)
        event_base_loop(fx.base, EVLOOP_ONCE);
    pump();
    uint8_t op, buf[128];
    size_t len;
    ck_assert_int_eq(read_frame(cl, &op, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(op, WS_OP_CLOSE);
    ck_assert_uint_eq(buf[0] << 8 | buf[1], 1008);
    ck_assert_uint_eq(len, 2 + strlen("token expired"));
    ck_assert_int_eq(memcmp(buf + 2, "token expired", len - 2), 0);
    uint8_t reply[2] = {0x03, 0xf0};
    send_frame(cl, WS_OP_CLOSE, reply, 2);
    expect_all_freed(cl);
}
END_TEST

START_TEST(jwt_expired_401)
{
    char tok[512], req[1024];
    jwt_token((long long)time(NULL) - 1, tok, sizeof(tok));
    snprintf(req, sizeof(req), UPGRADE("/jwt", "Sec-WebSocket-Protocol: bearer.%s\r\n"),
             tok);
    struct bufferevent *cl = client();
    send_str(cl, req);
    expect_status(cl, "HTTP/1.1 401 ");
    expect_all_freed(cl);
}
END_TEST

START_TEST(head_too_large)
{
    struct bufferevent *cl = client();
    char big[1200];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /echo HTTP/1.1\r\nX: ", 23);
    bufferevent_write(cl, big, sizeof(big));
    pump();
    expect_status(cl, "HTTP/1.1 431 ");
    expect_all_freed(cl);
}
END_TEST

START_TEST(client_gone_mid_head)
{
    struct bufferevent *cl = client();
    send_str(cl, "GET /echo HTTP/1.1\r\nHo");
    ck_assert_uint_eq(fx.ctx.nconns, 1);
    expect_all_freed(cl);
}
END_TEST

START_TEST(max_connections_503)
{
    teardown();
    setup_with("1", "10s");
    struct bufferevent *a = client();
    struct bufferevent *b = client();
    pump();
    char *r = received(b, NULL);
    ck_assert_msg(strncmp(r, "HTTP/1.1 503 ", 13) == 0, "got %s", r);
    ck_assert_ptr_nonnull(strstr(r, "Retry-After: 1\r\n"));
    free(r);
    hang_up(b);
    send_str(a, UPGRADE("/echo", ""));
    expect_upgrade(a);
    close_cleanly(a);
}
END_TEST

START_TEST(handshake_timeout_408)
{
    teardown();
    setup_with("10", "100ms");
    struct bufferevent *cl = client();
    send_str(cl, "GET /echo HTTP/1.1\r\n");
    event_base_loop(fx.base, EVLOOP_ONCE); /* waits for the timer */
    pump();
    expect_status(cl, "HTTP/1.1 408 ");
    expect_all_freed(cl);
}
END_TEST

START_TEST(drain_closes_with_1001)
{
    struct bufferevent *ws = client();
    send_str(ws, UPGRADE("/echo", ""));
    expect_upgrade(ws);
    struct bufferevent *idle = client();
    struct bufferevent *partial = client();
    send_str(partial, "GET /echo HTTP/1.1\r\n");
    gw_ctx_drain(&fx.ctx);
    pump();
    uint8_t op, buf[128];
    size_t len;
    ck_assert_int_eq(read_frame(ws, &op, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(op, WS_OP_CLOSE);
    ck_assert_uint_eq(buf[0] << 8 | buf[1], 1001);
    expect_status(partial, "HTTP/1.1 503 ");
    ck_assert_uint_eq(fx.ctx.nconns, 1); /* the WebSocket waits for its close */
    ck_assert_int_eq(fx.empty_calls, 0);
    uint8_t reply[2] = {0x03, 0xe9};
    send_frame(ws, WS_OP_CLOSE, reply, 2);
    ck_assert_uint_eq(fx.ctx.nconns, 0);
    ck_assert_int_ge(fx.empty_calls, 1);
    /* New connections while draining are refused. */
    struct bufferevent *late = client();
    pump();
    expect_status(late, "HTTP/1.1 503 ");
    hang_up(late);
    hang_up(idle);
    hang_up(partial);
    expect_all_freed(ws);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("state machine");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, upgrade_echo_close);
    tcase_add_test(tc, head_one_byte_at_a_time_with_pipelined_frame);
    tcase_add_test(tc, fragmented_message_reassembled);
    tcase_add_test(tc, violations_close);
    tcase_add_test(tc, utf8_split_across_fragments);
    tcase_add_loop_test(tc, error_statuses, 0,
                        (int)(sizeof(status_cases) / sizeof(status_cases[0])));
    tcase_add_test(tc, token_sources_allow);
    tcase_add_test(tc, jwt_expiry_closes_1008);
    tcase_add_test(tc, jwt_expired_401);
    tcase_add_test(tc, head_too_large);
    tcase_add_test(tc, client_gone_mid_head);
    tcase_add_test(tc, max_connections_503);
    tcase_add_test(tc, handshake_timeout_408);
    tcase_add_test(tc, drain_closes_with_1001);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
