/* test_ws_handshake: target checks, every handshake verdict, the accept key. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws_handshake.h"

#define HOST "Host: example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define REST UPG CONN KEY VER "\r\n"
#define GET(target) "GET " target " HTTP/1.1\r\n"

struct hs_case {
    const char *name;
    const char *req;
    int target_status; /* 0 when ws_handshake_target accepts */
    const char *target_reason;
    int status; /* of ws_handshake_validate, when the target was accepted */
    const char *reason;
};

static const struct hs_case hs_cases[] = {
    {"valid", GET("/chat") HOST REST, 0, NULL, 0, NULL},
    {"Content-Length: 0 is no body", GET("/chat") HOST "Content-Length: 0\r\n" REST, 0,
     NULL, 0, NULL},
    {"keep-alive, Upgrade",
     GET("/") HOST UPG "Connection: keep-alive, Upgrade\r\n" KEY VER "\r\n", 0, NULL, 0,
     NULL},
    {"upgrade,,", GET("/") HOST UPG "Connection: upgrade,,\r\n" KEY VER "\r\n", 0, NULL,
     0, NULL},
    {"tabs in lists",
     GET("/") HOST "Upgrade:\th2c\t,\tWebSocket\t\r\nConnection:\tUPGRADE\r\n" KEY VER
                   "\r\n",
     0, NULL, 0, NULL},
    {"Upgrade over two lines",
     GET("/") HOST "Upgrade: h2c\r\nUpgrade: websocket\r\n" CONN KEY VER "\r\n", 0, NULL,
     0, NULL},
    {"Connection over two lines",
     GET("/") HOST UPG "Connection: keep-alive\r\nConnection: upgrade\r\n" KEY VER "\r\n",
     0, NULL, 0, NULL},
    {"version with OWS", GET("/") HOST UPG CONN KEY "Sec-WebSocket-Version:  13 \r\n\r\n",
     0, NULL, 0, NULL},
    {"host with port", GET("/") "Host: example.com:8080\r\n" REST, 0, NULL, 0, NULL},
    {"IPv6 host", GET("/") "Host: [::1]:8080\r\n" REST, 0, NULL, 0, NULL},
    {"IPv4 host", GET("/") "Host: 127.0.0.1\r\n" REST, 0, NULL, 0, NULL},
    {"empty port", GET("/") "Host: example.com:\r\n" REST, 0, NULL, 0, NULL},
    {"dots in query", GET("/chat?x=/../y&z=%2e%2e") HOST REST, 0, NULL, 0, NULL},
    {"dots inside segments", GET("/.well-known/a..b/.../c.") HOST REST, 0, NULL, 0, NULL},
    {"percent-encoded path", GET("/a%20b/%41") HOST REST, 0, NULL, 0, NULL},
    {"empty segments", GET("//chat//") HOST REST, 0, NULL, 0, NULL},

    {"missing Host", GET("/") REST, 400, "missing Host", 0, NULL},
    {"duplicate Host", GET("/") HOST "host: example.org\r\n" REST, 400, "duplicate Host",
     0, NULL},
    {"empty Host", GET("/") "Host:\r\n" REST, 400, "invalid Host", 0, NULL},
    {"Host with SP", GET("/") "Host: a b\r\n" REST, 400, "invalid Host", 0, NULL},
    {"Host with userinfo", GET("/") "Host: u@a\r\n" REST, 400, "invalid Host", 0, NULL},
    {"Host with bad port", GET("/") "Host: a:80x\r\n" REST, 400, "invalid Host", 0, NULL},
    {"Host port only", GET("/") "Host: :80\r\n" REST, 400, "invalid Host", 0, NULL},
    {"unclosed IPv6 Host", GET("/") "Host: [::1\r\n" REST, 400, "invalid Host", 0, NULL},
    {"empty IPv6 Host", GET("/") "Host: []\r\n" REST, 400, "invalid Host", 0, NULL},
    {"junk after IPv6 Host", GET("/") "Host: [::1]x\r\n" REST, 400, "invalid Host", 0,
     NULL},
    {"asterisk-form", GET("*") HOST REST, 400, "request-target not in origin-form", 0,
     NULL},
    {"absolute-form", GET("http://example.com/chat") HOST REST, 400,
     "request-target not in origin-form", 0, NULL},
    {"fragment", GET("/chat#top") HOST REST, 400, "fragment in request-target", 0, NULL},
    {"fragment in query", GET("/chat?a#b") HOST REST, 400, "fragment in request-target",
     0, NULL},
    {"/a/../b", GET("/a/../b") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"/./", GET("/./") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"trailing /.", GET("/a/.") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"trailing /..", GET("/a/..") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"trailing /.. before query", GET("/a/..?x") HOST REST, 400, "dot-segment in path", 0,
     NULL},
    {"%2e%2e", GET("/%2e%2e/admin") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"%2E.", GET("/a/%2E./admin") HOST REST, 400, "dot-segment in path", 0, NULL},
    {".%2e", GET("/a/.%2e") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"%2e alone", GET("/a/%2e/b") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"encoded slash", GET("/a%2f..%2Fb") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"backslash", GET("/a\\..\\b") HOST REST, 400, "dot-segment in path", 0, NULL},
    {"encoded backslash", GET("/a%5c..%5Cb") HOST REST, 400, "dot-segment in path", 0,
     NULL},
    {"truncated percent", GET("/a%2") HOST REST, 400, "invalid percent-encoding in path",
     0, NULL},
    {"lone percent", GET("/a%") HOST REST, 400, "invalid percent-encoding in path", 0,
     NULL},
    {"non-hex percent", GET("/a%zz") HOST REST, 400, "invalid percent-encoding in path",
     0, NULL},

    {"POST", "POST / HTTP/1.1\r\n" HOST REST, 0, NULL, 405, "method not allowed"},
    {"lower-case get", "get / HTTP/1.1\r\n" HOST REST, 0, NULL, 405,
     "method not allowed"},
    {"GETS", "GETS / HTTP/1.1\r\n" HOST REST, 0, NULL, 405, "method not allowed"},
    {"HTTP/1.0", "GET / HTTP/1.0\r\n" HOST REST, 0, NULL, 400, "HTTP/1.1 required"},
    {"Content-Length body", GET("/") HOST "Content-Length: 5\r\n" REST, 0, NULL, 400,
     "upgrade request with a body"},
    {"chunked body", GET("/") HOST "Transfer-Encoding: chunked\r\n" REST, 0, NULL, 400,
     "upgrade request with a body"},
    {"no Upgrade", GET("/") HOST CONN KEY VER "\r\n", 0, NULL, 426, "missing Upgrade"},
    {"Upgrade h2c", GET("/") HOST "Upgrade: h2c\r\n" CONN KEY VER "\r\n", 0, NULL, 426,
     "Upgrade is not websocket"},
    {"Upgrade websockets", GET("/") HOST "Upgrade: websockets\r\n" CONN KEY VER "\r\n", 0,
     NULL, 426, "Upgrade is not websocket"},
    {"empty Upgrade", GET("/") HOST "Upgrade:\r\n" CONN KEY VER "\r\n", 0, NULL, 426,
     "Upgrade is not websocket"},
    {"no Connection", GET("/") HOST UPG KEY VER "\r\n", 0, NULL, 400,
     "Connection lacks upgrade"},
    {"Connection keep-alive",
     GET("/") HOST UPG "Connection: keep-alive\r\n" KEY VER "\r\n", 0, NULL, 400,
     "Connection lacks upgrade"},
    {"Connection upgrades", GET("/") HOST UPG "Connection: upgrades\r\n" KEY VER "\r\n",
     0, NULL, 400, "Connection lacks upgrade"},
    {"no version", GET("/") HOST UPG CONN KEY "\r\n", 0, NULL, 426,
     "missing Sec-WebSocket-Version"},
    {"duplicate version", GET("/") HOST UPG CONN KEY VER VER "\r\n", 0, NULL, 426,
     "duplicate Sec-WebSocket-Version"},
    {"version 8", GET("/") HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n\r\n", 0, NULL,
     426, "unsupported Sec-WebSocket-Version"},
    {"version list", GET("/") HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n\r\n", 0,
     NULL, 426, "unsupported Sec-WebSocket-Version"},
    {"version 013", GET("/") HOST UPG CONN KEY "Sec-WebSocket-Version: 013\r\n\r\n", 0,
     NULL, 426, "unsupported Sec-WebSocket-Version"},
    {"no key", GET("/") HOST UPG CONN VER "\r\n", 0, NULL, 400,
     "missing Sec-WebSocket-Key"},
    {"duplicate key", GET("/") HOST UPG CONN KEY KEY VER "\r\n", 0, NULL, 400,
     "duplicate Sec-WebSocket-Key"},
    {"empty key", GET("/") HOST UPG CONN "Sec-WebSocket-Key:\r\n" VER "\r\n", 0, NULL,
     400, "invalid Sec-WebSocket-Key"},
    {"key without padding",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VER "\r\n", 0,
     NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key of 15 bytes",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n" VER "\r\n", 0,
     NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key of 17 bytes",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ+=\r\n" VER "\r\n",
     0, NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key with one =",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQA=\r\n" VER "\r\n",
     0, NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key with bad char",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2*jZQ==\r\n" VER "\r\n",
     0, NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key with inner =",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2=jZQ==\r\n" VER "\r\n",
     0, NULL, 400, "invalid Sec-WebSocket-Key"},
    {"key url-safe alphabet",
     GET("/") HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2-jZQ==\r\n" VER "\r\n",
     0, NULL, 400, "invalid Sec-WebSocket-Key"},

    /* Check order: method, version, upgrade, connection, ws-version, key. */
    {"POST over HTTP/1.0", "POST / HTTP/1.0\r\n" HOST "\r\n", 0, NULL, 405,
     "method not allowed"},
    {"HTTP/1.0 without Upgrade", "GET / HTTP/1.0\r\n" HOST "\r\n", 0, NULL, 400,
     "HTTP/1.1 required"},
    {"no Upgrade, no Connection", GET("/") HOST "\r\n", 0, NULL, 426, "missing Upgrade"},
    {"no Connection, version 8", GET("/") HOST UPG "Sec-WebSocket-Version: 8\r\n\r\n", 0,
     NULL, 400, "Connection lacks upgrade"},
    {"version 8, no key", GET("/") HOST UPG CONN "Sec-WebSocket-Version: 8\r\n\r\n", 0,
     NULL, 426, "unsupported Sec-WebSocket-Version"},
    {"bad target before method", "POST /a/../b HTTP/1.0\r\n" HOST "\r\n", 400,
     "dot-segment in path", 0, NULL},
};

static void
parse(const char *text, struct http1_request *req)
{
    struct http1_error err = {0};
    int r = http1_parse_request(text, strlen(text), 0, req, &err);
    ck_assert_msg(r == (int)strlen(text), "parse: %d (%s at %zu)", r,
                  err.reason ? err.reason : "-", err.offset);
}

START_TEST(test_handshake_cases)
{
    const struct hs_case *tc = &hs_cases[_i];
    struct http1_request req;
    struct ws_handshake hs;
    struct ws_hs_error err;
    parse(tc->req, &req);

    int r = ws_handshake_target(&req, &hs, &err);
    ck_assert_msg(r == (tc->target_status ? -1 : 0), "%s: target %d (%s)", tc->name, r,
                  err.reason ? err.reason : "-");
    ck_assert_int_eq(err.status, tc->target_status);
    if (r != 0) {
        ck_assert_str_eq(err.reason, tc->target_reason);
        return;
    }
    ck_assert_ptr_nonnull(hs.host);
    ck_assert_ptr_nonnull(hs.path);

    r = ws_handshake_validate(&req, &hs, &err);
    ck_assert_msg(r == (tc->status ? -1 : 0), "%s: validate %d (%s)", tc->name, r,
                  err.reason ? err.reason : "-");
    ck_assert_int_eq(err.status, tc->status);
    if (r != 0) {
        ck_assert_str_eq(err.reason, tc->reason);
        return;
    }
    ck_assert_ptr_null(err.reason);
    ck_assert_uint_eq(hs.key_len, 24);
    ck_assert_mem_eq(hs.key, "dGhlIHNhbXBsZSBub25jZQ==", 24);
}
END_TEST

static void
assert_view(const char *p, size_t len, const char *want)
{
    if (want == NULL) {
        ck_assert_ptr_null(p);
        ck_assert_uint_eq(len, 0);
        return;
    }
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(p, want, len);
}

/* What a valid request yields, view by view. */
static const struct {
    const char *req;
    const char *host, *path, *query, *origin;
} view_cases[] = {
    {GET("/chat?room=1&x=2") "Host: Example.com:8443\r\nOrigin: "
                             "https://app.example.com\r\n" REST,
     "Example.com:8443", "/chat", "room=1&x=2", "https://app.example.com"},
    {GET("/chat") HOST REST, "example.com", "/chat", NULL, NULL},
    {GET("/chat?") HOST REST, "example.com", "/chat", "", NULL},
    {GET("/?a?b") HOST "Origin: null\r\n" REST, "example.com", "/", "a?b", "null"},
    {GET("/") "Host: [::1]:80\r\nOrigin: a\r\nOrigin: b\r\n" REST, "[::1]:80", "/", NULL,
     "a"},
};

START_TEST(test_handshake_views)
{
    struct http1_request req;
    struct ws_handshake hs;
    struct ws_hs_error err;
    parse(view_cases[_i].req, &req);
    memset(&hs, 0xa5, sizeof(hs)); /* every field must be written */
    ck_assert_int_eq(ws_handshake_target(&req, &hs, &err), 0);
    ck_assert_int_eq(ws_handshake_validate(&req, &hs, &err), 0);
    assert_view(hs.host, hs.host_len, view_cases[_i].host);
    assert_view(hs.path, hs.path_len, view_cases[_i].path);
    assert_view(hs.query, hs.query_len, view_cases[_i].query);
    assert_view(hs.origin, hs.origin_len, view_cases[_i].origin);
    assert_view(hs.key, hs.key_len, "dGhlIHNhbXBsZSBub25jZQ==");
}
END_TEST

/* Expected values computed independently (Python hashlib + base64). */
static const struct {
    const char *key;
    const char *accept;
} accept_cases[] = {
    {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, /* RFC 6455 §1.3 */
    {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
    {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
    {"", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="},
};

START_TEST(test_accept_key)
{
    char out[WS_ACCEPT_LEN + 1];
    memset(out, 'x', sizeof(out));
    const char *key = accept_cases[_i].key;
    ck_assert_int_eq(ws_accept_key(key, strlen(key), out), 0);
    ck_assert_uint_eq(strlen(out), WS_ACCEPT_LEN);
    ck_assert_str_eq(out, accept_cases[_i].accept);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
ws_handshake_suite(void)
{
    Suite *s = suite_create("ws_handshake");
    TCase *tc = tcase_create("handshake");
    tcase_add_loop_test(tc, test_handshake_cases, 0, NELEM(hs_cases));
    tcase_add_loop_test(tc, test_handshake_views, 0, NELEM(view_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("accept");
    tcase_add_loop_test(tc, test_accept_key, 0, NELEM(accept_cases));
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_handshake_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
