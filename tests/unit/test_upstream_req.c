/* test_upstream_req: the upstream upgrade request, from a client's head and the route. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/upstream_req.h"

#define CLIENT_IP "203.0.113.7"
#define KEYV                                                                             \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

/* What every case's upstream request starts with, and the lines the gateway
 * adds after the client's, for the default parameters. */
#define START(target) "GET " target " HTTP/1.1\r\nHost: gw.example.com\r\n" KEYV
#define ADDED(xff)                                                                       \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-For: " xff                 \
    "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.example.com\r\n"
#define RID "X-Request-Id: rid-1\r\n"
#define TAIL ADDED(CLIENT_IP) RID

static const struct upstream_header subject_alice[] = {{"X-Auth-Subject", "alice"}};
static const struct upstream_header subject_none[] = {{"X-Auth-Subject", NULL}};
static const struct upstream_header two_identities[] = {
    {"X-Auth-Subject", "alice"},
    {"X-Auth-Roles", "admin, ops"},
};
static const struct upstream_header identity_authorization[] = {
    {"Authorization", "Bearer internal"}};

/* A client request and route parameters; NULL client_ip and request_id
 * stand for CLIENT_IP and "rid-1" ("" for none). want NULL expects -1. */
struct req_case {
    const char *name;
    const char *target;
    const char *headers; /* client lines after Host, Upgrade, Connection, Key, Version */
    const char *want;
    size_t strip_len;
    const char *upstream_path;
    const char *host;
    const char *client_ip;
    bool client_tls;
    const char *request_id;
    const char *drop_query;
    const char *drop_cookie;
    bool drop_authorization;
    bool drop_bearer;
    const struct upstream_header *identity;
    size_t nidentity;
};

#define IDENT(a) .identity = a, .nidentity = sizeof(a) / sizeof((a)[0])

static const struct req_case req_cases[] = {
    {.name = "minimal", .target = "/x", .headers = "", .want = START("/x") TAIL "\r\n"},
    {.name = "end-to-end headers kept in order",
     .target = "/x",
     .headers =
         "Origin: https://app.example.com\r\nUser-Agent: t\r\nX-Custom: a, b\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
     .want = START("/x") "Origin: https://app.example.com\r\nUser-Agent: t\r\n"
                         "X-Custom: a, b\r\n"
                         "Sec-WebSocket-Extensions: permessage-deflate; "
                         "client_max_window_bits\r\n" TAIL "\r\n"},
    {.name = "Connection-named headers",
     .target = "/x",
     .headers = "Connection: X-Hop, x-other\r\nX-Hop: 1\r\nX-Keep: 2\r\nX-Other: 3\r\n",
     .want = START("/x") "X-Keep: 2\r\n" TAIL "\r\n"},
    {.name = "Connection names a look-alike",
     .target = "/x",
     .headers = "Connection: x_hop\r\nX-Hop: 1\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "identity spoofing removed",
     .target = "/x",
     .headers =
         "X-Auth-Subject: mallory\r\nx-auth-subject: m2\r\nX_Auth_Subject: m3\r\n"
         "X-AUTH-SUBJECT: m4\r\nX-Auth-Subject-Extra: kept\r\nX-Auth-Roles: root\r\n",
     .want = START("/x") "X-Auth-Subject-Extra: kept\r\nX-Auth-Roles: root\r\n" TAIL
                         "X-Auth-Subject: alice\r\n\r\n",
     IDENT(subject_alice)},
    {.name = "identity without a value only removes",
     .target = "/x",
     .headers = "X-Auth-Subject: mallory\r\nX-Keep: 1\r\n",
     .want = START("/x") "X-Keep: 1\r\n" TAIL "\r\n",
     IDENT(subject_none)},
    {.name = "several identity headers",
     .target = "/x",
     .headers = "X-Auth-Roles: root\r\n",
     .want = START("/x") TAIL "X-Auth-Subject: alice\r\nX-Auth-Roles: admin, ops\r\n\r\n",
     IDENT(two_identities)},
    {.name = "identity replaces Authorization",
     .target = "/x",
     .headers = "Authorization: Bearer client\r\n",
     .want = START("/x") TAIL "Authorization: Bearer internal\r\n\r\n",
     IDENT(identity_authorization)},
    {.name = "X-Forwarded-For appended",
     .target = "/x",
     .headers =
         "X-Forwarded-For: 198.51.100.1, 198.51.100.2\r\nx-forwarded-for: 10.0.0.1\r\n",
     .want = START("/x") ADDED("198.51.100.1, 198.51.100.2, 10.0.0.1, " CLIENT_IP) RID
     "\r\n"},
    {.name = "X-Forwarded-For empty elements",
     .target = "/x",
     .headers = "X-Forwarded-For: , 198.51.100.1,,\r\nX-Forwarded-For:\r\n",
     .want = START("/x") ADDED("198.51.100.1, " CLIENT_IP) RID "\r\n"},
    {.name = "X-Forwarded-For look-alike not appended",
     .target = "/x",
     .headers = "X_Forwarded_For: 6.6.6.6\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "X-Forwarded-For without a client address",
     .target = "/x",
     .headers = "X-Forwarded-For: 198.51.100.1\r\n",
     .client_ip = "",
     .want = START("/x") ADDED("198.51.100.1") RID "\r\n"},
    {.name = "no X-Forwarded-For at all",
     .target = "/x",
     .headers = "",
     .client_ip = "",
     .want =
         START("/x") "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "X-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.example.com\r\n" RID
                     "\r\n"},
    {.name = "client X-Request-Id kept",
     .target = "/x",
     .headers = "X-Request-Id: abc-123\r\n",
     .want = START("/x") ADDED(CLIENT_IP) "X-Request-Id: abc-123\r\n\r\n"},
    {.name = "client X-Request-Id of 128 characters kept",
     .target = "/x",
     .headers = "X-Request-Id: "
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
     .want =
         START("/x") ADDED(CLIENT_IP) "X-Request-Id: "
                                      "0123456789abcdef0123456789abcdef0123456789abcdef"
                                      "0123456789abcdef0123456789abcdef0123456789abcdef"
                                      "0123456789abcdef0123456789abcdef\r\n\r\n"},
    {.name = "client X-Request-Id of 129 characters replaced",
     .target = "/x",
     .headers = "X-Request-Id: "
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "client X-Request-Id with a space replaced",
     .target = "/x",
     .headers = "X-Request-Id: a b\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "client X-Request-Id with obs-text replaced",
     .target = "/x",
     .headers = "X-Request-Id: caf\xc3\xa9\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "two client X-Request-Id replaced",
     .target = "/x",
     .headers = "X-Request-Id: a\r\nX-Request-Id: b\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "no X-Request-Id at all",
     .target = "/x",
     .headers = "",
     .request_id = "",
     .want = START("/x") ADDED(CLIENT_IP) "\r\n"},
    {.name = "cookie removed, others kept",
     .target = "/x",
     .headers = "Cookie: a=1; session=SECRET; b=\"2\"\r\n",
     .drop_cookie = "session",
     .want = START("/x") "Cookie: a=1; b=\"2\"\r\n" TAIL "\r\n"},
    {.name = "only cookie removed",
     .target = "/x",
     .headers = "Cookie:  session = SECRET \r\n",
     .drop_cookie = "session",
     .want = START("/x") TAIL "\r\n"},
    {.name = "cookie in several headers",
     .target = "/x",
     .headers = "Cookie: session=S1\r\nX-A: 1\r\nCookie: x=1;session=S2;;y\r\n",
     .drop_cookie = "session",
     .want = START("/x") "X-A: 1\r\nCookie: x=1; y\r\n" TAIL "\r\n"},
    {.name = "similar cookie names kept",
     .target = "/x",
     .headers = "Cookie: sessionx=1; Session=2; xsession=3\r\n",
     .drop_cookie = "session",
     .want = START("/x") "Cookie: sessionx=1; Session=2; xsession=3\r\n" TAIL "\r\n"},
    {.name = "cookies untouched without a cookie credential",
     .target = "/x",
     .headers = "Cookie: a=1;session=S\r\n",
     .want = START("/x") "Cookie: a=1;session=S\r\n" TAIL "\r\n"},
    {.name = "Authorization removed",
     .target = "/x",
     .headers = "Authorization: Bearer SECRET\r\nauthorization: Basic x\r\n",
     .drop_authorization = true,
     .want = START("/x") TAIL "\r\n"},
    {.name = "Authorization kept",
     .target = "/x",
     .headers = "Authorization: Bearer x\r\n",
     .want = START("/x") "Authorization: Bearer x\r\n" TAIL "\r\n"},
    {.name = "bearer subprotocol removed",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: bearer.SECRET, chat.v1\r\n",
     .drop_bearer = true,
     .want = START("/x") "Sec-WebSocket-Protocol: chat.v1\r\n" TAIL "\r\n"},
    {.name = "only a bearer subprotocol",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: bearer.SECRET\r\n",
     .drop_bearer = true,
     .want = START("/x") TAIL "\r\n"},
    {.name = "subprotocol lines merged",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: bearer.S\r\nX-A: 1\r\n"
                "sec-websocket-protocol: chat,  superchat ,\r\n",
     .drop_bearer = true,
     .want =
         START("/x") "Sec-WebSocket-Protocol: chat, superchat\r\nX-A: 1\r\n" TAIL "\r\n"},
    {.name = "bearer subprotocol kept when not consumed",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: bearer.x, chat\r\n",
     .want = START("/x") "Sec-WebSocket-Protocol: bearer.x, chat\r\n" TAIL "\r\n"},
    {.name = "bearer prefix is case-sensitive, as in the token source",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: Bearer.x, bearer, bearer.\r\n",
     .drop_bearer = true,
     .want = START("/x") "Sec-WebSocket-Protocol: Bearer.x, bearer\r\n" TAIL "\r\n"},
    {.name = "subprotocol split at every comma, as in the token source",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol: \"x,bearer.S\"\r\n",
     .drop_bearer = true,
     .want = START("/x") "Sec-WebSocket-Protocol: \"x\r\n" TAIL "\r\n"},
    {.name = "empty subprotocol header",
     .target = "/x",
     .headers = "Sec-WebSocket-Protocol:\r\n",
     .want = START("/x") TAIL "\r\n"},
    {.name = "extension lines merged",
     .target = "/x",
     .headers = "Sec-WebSocket-Extensions: permessage-deflate; x=\"1,2\"\r\n"
                "Sec-WebSocket-Extensions: foo, bar\r\n",
     .want = START("/x") "Sec-WebSocket-Extensions: permessage-deflate; x=\"1,2\", foo, "
                         "bar\r\n" TAIL "\r\n"},
    {.name = "Host set by the route",
     .target = "/x",
     .headers = "",
     .host = "backend.internal:9000",
     .want = "GET /x HTTP/1.1\r\nHost: backend.internal:9000\r\n" KEYV TAIL "\r\n"},
    {.name = "TLS client",
     .target = "/x",
     .headers = "",
     .client_tls = true,
     .want = START(
         "/x") "Upgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-For: " CLIENT_IP
               "\r\nX-Forwarded-Proto: https\r\n"
               "X-Forwarded-Host: gw.example.com\r\n" RID "\r\n"},
    {.name = "everything at once",
     .target = "/bar/chat?room=1&access_token=SECRET",
     .headers = "Connection: keep-alive\r\nKeep-Alive: 5\r\nOrigin: https://a\r\n"
                "Cookie: session=S; theme=dark\r\nAuthorization: Bearer S\r\n"
                "Sec-WebSocket-Protocol: bearer.S, chat\r\nX-Auth-Subject: mallory\r\n"
                "X-Forwarded-For: 198.51.100.1\r\nX-Real-IP: 1.1.1.1\r\n",
     .strip_len = 4,
     .upstream_path = "/api",
     .drop_query = "access_token",
     .drop_cookie = "session",
     .drop_authorization = true,
     .drop_bearer = true,
     .want = START("/api/chat?room=1") "Origin: https://a\r\nCookie: theme=dark\r\n"
                                       "Sec-WebSocket-Protocol: chat\r\n" ADDED(
                                           "198.51.100.1, " CLIENT_IP) RID
     "X-Auth-Subject: alice\r\n\r\n",
     IDENT(subject_alice)},
};

/* Parses a client head into *req and *hs; views stay in `head`. */
static void
client_request(const char *target, const char *headers, char *head, size_t cap,
               struct http1_request *req, struct ws_handshake *hs)
{
    int n = snprintf(head, cap,
                     "GET %s HTTP/1.1\r\nHost: gw.example.com\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n" KEYV "%s\r\n",
                     target, headers);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_lt((size_t)n, cap);
    struct http1_error perr;
    ck_assert_int_eq(http1_parse_request(head, (size_t)n, 0, req, &perr), n);
    struct ws_hs_error herr;
    ck_assert_int_eq(ws_handshake_target(req, hs, &herr), 0);
}

static struct upstream_req_params
params_of(const struct req_case *tc, const struct http1_request *req,
          const struct ws_handshake *hs)
{
    return (struct upstream_req_params){
        .req = req,
        .hs = hs,
        .strip_len = tc->strip_len,
        .upstream_path = tc->upstream_path != NULL ? tc->upstream_path : "",
        .host = tc->host,
        .client_ip = tc->client_ip != NULL ? tc->client_ip : CLIENT_IP,
        .client_tls = tc->client_tls,
        .request_id = tc->request_id != NULL ? tc->request_id : "rid-1",
        .drop_query_param = tc->drop_query,
        .drop_cookie = tc->drop_cookie,
        .drop_authorization = tc->drop_authorization,
        .drop_bearer_protocol = tc->drop_bearer,
        .identity = tc->identity,
        .nidentity = tc->nidentity,
    };
}

/* The output parses as a request again, with nothing after its head. */
static void
assert_reparses(const char *out, int n)
{
    struct http1_request req;
    struct http1_error err;
    ck_assert_msg(http1_parse_request(out, (size_t)n, 0, &req, &err) == n,
                  "output does not parse: %s at %zu", err.reason ? err.reason : "-",
                  err.offset);
}

START_TEST(test_build)
{
    const struct req_case *tc = &req_cases[_i];
    char head[2048], out[2048];
    struct http1_request req;
    struct ws_handshake hs;
    client_request(tc->target, tc->headers, head, sizeof(head), &req, &hs);
    struct upstream_req_params p = params_of(tc, &req, &hs);
    int n = upstream_req_build(&p, out, sizeof(out));
    ck_assert_msg(n >= 0, "%s: -1", tc->name);
    ck_assert_msg((size_t)n == strlen(tc->want) && memcmp(out, tc->want, (size_t)n) == 0,
                  "%s:\ngot:\n%.*s\nwant:\n%s", tc->name, n, out, tc->want);
    assert_reparses(out, n);
}
END_TEST

/* Each offered list equals the line the request forwards (none when it
 * forwards none), and never overflows its cap. */
static void
check_list(const struct req_case *tc, const char *name,
           int (*list_of)(const struct upstream_req_params *, char *, size_t))
{
    char head[2048], out[2048], list[2048], prefix[64];
    struct http1_request req;
    struct ws_handshake hs;
    client_request(tc->target, tc->headers, head, sizeof(head), &req, &hs);
    struct upstream_req_params p = params_of(tc, &req, &hs);
    int n = upstream_req_build(&p, out, sizeof(out));
    ck_assert_int_gt(n, 0);
    out[n] = '\0';
    snprintf(prefix, sizeof(prefix), "\r\n%s: ", name);
    const char *line = strstr(out, prefix);
    int m = list_of(&p, list, sizeof(list));
    if (line == NULL) {
        ck_assert_msg(m == 0, "%s: %s: %d", tc->name, name, m);
        ck_assert_str_eq(list, "");
        return;
    }
    line += strlen(prefix);
    size_t want = (size_t)(strstr(line, "\r\n") - line);
    ck_assert_msg((size_t)m == want && memcmp(list, line, want) == 0 && list[m] == '\0',
                  "%s: %s: got %d \"%s\", want \"%.*s\"", tc->name, name, m, list,
                  (int)want, line);
    for (size_t cap = 0; cap <= (size_t)m; cap++) {
        char *small = malloc(cap > 0 ? cap : 1);
        ck_assert_int_eq(list_of(&p, cap > 0 ? small : NULL, cap), -1);
        free(small);
    }
}

START_TEST(test_protocols)
{
    check_list(&req_cases[_i], "Sec-WebSocket-Protocol", upstream_req_protocols);
}
END_TEST

/* Several Extensions lines are one offer: an upstream may pick from any. */
START_TEST(test_extensions)
{
    check_list(&req_cases[_i], "Sec-WebSocket-Extensions", upstream_req_extensions);
}
END_TEST

/* Every cap short of the length fails without writing past it; the exact
 * length succeeds. */
START_TEST(test_overflow)
{
    const struct req_case *tc = &req_cases[_i];
    char head[2048], want[2048];
    struct http1_request req;
    struct ws_handshake hs;
    client_request(tc->target, tc->headers, head, sizeof(head), &req, &hs);
    struct upstream_req_params p = params_of(tc, &req, &hs);
    int n = upstream_req_build(&p, want, sizeof(want));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(upstream_req_build(&p, NULL, 0), -1);
    for (size_t cap = 0; cap <= (size_t)n; cap++) {
        char *out = malloc(cap > 0 ? cap : 1);
        ck_assert_ptr_nonnull(out);
        int r = upstream_req_build(&p, out, cap);
        ck_assert_int_eq(r, cap == (size_t)n ? n : -1);
        if (r > 0)
            ck_assert_mem_eq(out, want, (size_t)n);
        free(out);
    }
}
END_TEST

/* The request-target sent upstream, from the client's and the route's. */
static const struct {
    const char *target;
    size_t strip_len;
    const char *upstream_path;
    const char *drop_query;
    const char *want;
} target_cases[] = {
    {"/bar/x", 4, "", NULL, "/x"},
    {"/bar", 4, "", NULL, "/"},
    {"/bar/", 4, "", NULL, "/"},
    {"/bar/x", 5, "", NULL, "/x"}, /* path_prefix "/bar/" */
    {"/bar/", 5, "", NULL, "/"},
    {"/bar/x/y/", 4, "", NULL, "/x/y/"},
    {"/bar/x", 0, "", NULL, "/bar/x"},
    {"/", 0, "", NULL, "/"},
    {"/bar/x", 0, "/api", NULL, "/api/bar/x"},
    {"/bar/x", 4, "/api", NULL, "/api/x"},
    {"/bar/x", 5, "/api", NULL, "/api/x"},
    {"/bar", 4, "/api", NULL, "/api"},
    {"/bar/", 4, "/api", NULL, "/api/"},
    {"/bar/", 5, "/api", NULL, "/api"},
    {"/bar/x", 4, "/a/b", NULL, "/a/b/x"},
    {"/bar", 99, "", NULL, "/"}, /* a strip longer than the path */
    {"/bar/x?q=1", 4, "/api", NULL, "/api/x?q=1"},
    {"/x?", 0, "", NULL, "/x?"},
    {"/x?access_token=t", 0, "", NULL, "/x?access_token=t"},
    {"/x?access_token=t&a=1", 0, "", "access_token", "/x?a=1"},
    {"/x?a=1&access_token=t&b=2", 0, "", "access_token", "/x?a=1&b=2"},
    {"/x?a=1&access_token=t", 0, "", "access_token", "/x?a=1"},
    {"/x?access_token=t", 0, "", "access_token", "/x"},
    {"/x?access_token=", 0, "", "access_token", "/x"},
    {"/x?access_token", 0, "", "access_token", "/x"},
    {"/x?a=1&b=2", 0, "", "access_token", "/x?a=1&b=2"},
    {"/x?access_token=a&c&access_token=b", 0, "", "access_token", "/x?c"},
    {"/x?access_token_x=1&xaccess_token=2", 0, "", "access_token",
     "/x?access_token_x=1&xaccess_token=2"},
    {"/x?Access_Token=1", 0, "", "access_token", "/x?Access_Token=1"},
    {"/x?access%5Ftoken=1", 0, "", "access_token", "/x?access%5Ftoken=1"},
    {"/x?a=%20b&access_token=t&c=d+e&e==%3D", 0, "", "access_token",
     "/x?a=%20b&c=d+e&e==%3D"},
    {"/x?a=1&&access_token=t", 0, "", "access_token", "/x?a=1&"},
    {"/x?", 0, "", "access_token", "/x?"},
    {"/bar/x?access_token=t&k=v", 4, "/api", "access_token", "/api/x?k=v"},
};

/* A strip that cuts a segment so that its rest is a dot-segment is refused;
 * other cut segments are joined with '/'. */
static const struct {
    const char *target;
    size_t strip_len;
    const char *want; /* NULL: -1 */
} cut_cases[] = {
    {"/bar../x", 4, NULL},      {"/bar..", 4, NULL},       {"/bar.", 4, NULL},
    {"/bar./x", 4, NULL},       {"/bar%2e%2E/x", 4, NULL}, {"/bar.%2e/x", 4, NULL},
    {"/bar..%2fx", 4, NULL},    {"/bar..%5Cx", 4, NULL},   {"/bar..\\x", 4, NULL},
    {"/bar.../x", 4, "/.../x"}, {"/bar.x/y", 4, "/.x/y"},  {"/bar..x", 4, "/..x"},
    {"/barx/..x", 4, "/x/..x"}, {"/bar%2ex", 4, "/%2ex"},
};

START_TEST(test_cut_segment)
{
    char head[512], out[1024], want[256];
    struct http1_request req;
    struct ws_handshake hs;
    client_request(cut_cases[_i].target, "", head, sizeof(head), &req, &hs);
    struct upstream_req_params p = {.req = &req,
                                    .hs = &hs,
                                    .strip_len = cut_cases[_i].strip_len,
                                    .upstream_path = "/api"};
    int n = upstream_req_build(&p, out, sizeof(out));
    if (cut_cases[_i].want == NULL) {
        ck_assert_msg(n == -1, "%s: built %.*s", cut_cases[_i].target, n, out);
        return;
    }
    ck_assert_int_gt(n, 0);
    snprintf(want, sizeof(want), "GET /api%s HTTP/1.1\r\n", cut_cases[_i].want);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "%s: got %.*s, want %s",
                  cut_cases[_i].target, (int)(strchr(out, '\r') - out), out, want);
}
END_TEST

START_TEST(test_target)
{
    char head[512], out[1024], want[256];
    struct http1_request req;
    struct ws_handshake hs;
    client_request(target_cases[_i].target, "", head, sizeof(head), &req, &hs);
    struct upstream_req_params p = {
        .req = &req,
        .hs = &hs,
        .strip_len = target_cases[_i].strip_len,
        .upstream_path = target_cases[_i].upstream_path,
        .drop_query_param = target_cases[_i].drop_query,
        .client_ip = CLIENT_IP,
    };
    int n = upstream_req_build(&p, out, sizeof(out));
    ck_assert_int_gt(n, 0);
    snprintf(want, sizeof(want), "GET %s HTTP/1.1\r\n", target_cases[_i].want);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "%s: got %.*s, want %s",
                  target_cases[_i].target, (int)(strchr(out, '\r') - out), out, want);
    assert_reparses(out, n);
}
END_TEST

/* Each hop-by-hop or replaced header alone, in any case, never travels on. */
static const char *const dropped_headers[] = {
    "Connection: keep-alive",
    "Keep-Alive: timeout=5",
    "Proxy-Connection: keep-alive",
    "Proxy-Authorization: Basic eDp5",
    "Proxy-Anything: 1",
    "TE: trailers",
    "Trailer: X-T",
    "Transfer-Encoding: chunked",
    "Upgrade: h2c",
    "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
    "Forwarded: for=198.51.100.9",
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: evil.example.com",
    "X-Forwarded-Port: 443",
    "X-Forwarded-Prefix: /evil",
    "X-Real-IP: 198.51.100.9",
    "x-real-ip: 198.51.100.9",
    "X_Real_IP: 198.51.100.9",
    "PROXY-CONNECTION: close",
};

START_TEST(test_dropped)
{
    char headers[256], head[1024], out[2048];
    snprintf(headers, sizeof(headers), "%s\r\n", dropped_headers[_i]);
    struct http1_request req;
    struct ws_handshake hs;
    client_request("/x", headers, head, sizeof(head), &req, &hs);
    struct upstream_req_params p = {
        .req = &req, .hs = &hs, .client_ip = CLIENT_IP, .request_id = "rid-1"};
    int n = upstream_req_build(&p, out, sizeof(out));
    static const char want[] = START("/x") TAIL "\r\n";
    ck_assert_msg(n == (int)strlen(want) && memcmp(out, want, (size_t)n) == 0,
                  "%s travelled on:\n%.*s", dropped_headers[_i], n, out);
}
END_TEST

static const struct upstream_header bad_ident_crlf[] = {
    {"X-Auth-Subject", "a\r\nX-Admin: 1"}};
static const struct upstream_header bad_ident_lf[] = {{"X-Auth-Subject", "a\nb"}};
static const struct upstream_header bad_ident_ctl[] = {{"X-Auth-Subject", "a\x01"}};
static const struct upstream_header bad_ident_del[] = {{"X-Auth-Subject", "a\x7f"}};
static const struct upstream_header bad_name_space[] = {{"X Auth", "a"}};
static const struct upstream_header bad_name_colon[] = {{"X-Auth:", "a"}};
static const struct upstream_header bad_name_empty[] = {{"", "a"}};
static const struct upstream_header bad_name_null[] = {{NULL, "a"}};
static const struct upstream_header bad_name_host[] = {{"Host", "a"}};
static const struct upstream_header bad_name_xff[] = {{"x-forwarded-for", "a"}};
static const struct upstream_header bad_name_xfx[] = {{"X-Forwarded-User", "a"}};
static const struct upstream_header bad_name_rid[] = {{"X-Request-Id", "a"}};
static const struct upstream_header bad_name_key[] = {{"Sec-WebSocket-Key", "a"}};
static const struct upstream_header bad_name_proto[] = {{"Sec-WebSocket-Protocol", "a"}};
static const struct upstream_header bad_name_upgrade[] = {{"Upgrade", "a"}};
static const struct upstream_header bad_name_conn[] = {{"Connection", "a"}};
static const struct upstream_header bad_name_proxy[] = {{"Proxy-User", "a"}};
static const struct upstream_header bad_name_te[] = {{"Transfer_Encoding", "a"}};

/* Parameters that would break the head or take a name the gateway writes. */
static const struct req_case bad_cases[] = {
    {.name = "identity CRLF", IDENT(bad_ident_crlf)},
    {.name = "identity LF", IDENT(bad_ident_lf)},
    {.name = "identity CTL", IDENT(bad_ident_ctl)},
    {.name = "identity DEL", IDENT(bad_ident_del)},
    {.name = "identity name with SP", IDENT(bad_name_space)},
    {.name = "identity name with colon", IDENT(bad_name_colon)},
    {.name = "empty identity name", IDENT(bad_name_empty)},
    {.name = "NULL identity name", IDENT(bad_name_null)},
    {.name = "identity Host", IDENT(bad_name_host)},
    {.name = "identity X-Forwarded-For", IDENT(bad_name_xff)},
    {.name = "identity X-Forwarded-*", IDENT(bad_name_xfx)},
    {.name = "identity X-Request-Id", IDENT(bad_name_rid)},
    {.name = "identity Sec-WebSocket-Key", IDENT(bad_name_key)},
    {.name = "identity Sec-WebSocket-Protocol", IDENT(bad_name_proto)},
    {.name = "identity Upgrade", IDENT(bad_name_upgrade)},
    {.name = "identity Connection", IDENT(bad_name_conn)},
    {.name = "identity Proxy-*", IDENT(bad_name_proxy)},
    {.name = "identity Transfer_Encoding", IDENT(bad_name_te)},
    {.name = "request id CRLF", .request_id = "r\r\nX-Admin: 1"},
    {.name = "client ip LF", .client_ip = "1.2.3.4\n"},
    {.name = "client ip with a comma", .client_ip = "1.2.3.4, 5.6.7.8"},
    {.name = "host CRLF", .host = "a\r\nb"},
    {.name = "empty host", .host = ""},
    {.name = "upstream path without '/'", .upstream_path = "api"},
    {.name = "upstream path with SP", .upstream_path = "/a b"},
    {.name = "upstream path with '?'", .upstream_path = "/a?b"},
    {.name = "upstream path with '#'", .upstream_path = "/a#b"},
    {.name = "upstream path with CR", .upstream_path = "/a\r"},
    {.name = "upstream path with obs-text", .upstream_path = "/caf\xc3\xa9"},
};

START_TEST(test_bad_params)
{
    const struct req_case *tc = &bad_cases[_i];
    char head[512], out[2048];
    struct http1_request req;
    struct ws_handshake hs;
    client_request("/x", "", head, sizeof(head), &req, &hs);
    struct upstream_req_params p = params_of(tc, &req, &hs);
    ck_assert_msg(upstream_req_build(&p, out, sizeof(out)) == -1, "%s: built", tc->name);
}
END_TEST

START_TEST(test_missing_inputs)
{
    char head[512], out[2048];
    struct http1_request req;
    struct ws_handshake hs;
    client_request("/x", "", head, sizeof(head), &req, &hs);
    struct upstream_req_params p = {.req = NULL, .hs = &hs};
    ck_assert_int_eq(upstream_req_build(&p, out, sizeof(out)), -1);
    p = (struct upstream_req_params){.req = &req, .hs = NULL};
    ck_assert_int_eq(upstream_req_build(&p, out, sizeof(out)), -1);
    struct upstream_header id = {"X-A", "1"};
    p = (struct upstream_req_params){
        .req = &req, .hs = &hs, .identity = NULL, .nidentity = 1};
    ck_assert_int_eq(upstream_req_build(&p, out, sizeof(out)), -1);
    p = (struct upstream_req_params){
        .req = &req, .hs = &hs, .identity = &id, .nidentity = 1};
    ck_assert_int_gt(upstream_req_build(&p, out, sizeof(out)), 0);
}
END_TEST

/* The most headers a client may send, each named like the identity header:
 * none survives, and the connection-named bitmap covers header 63. */
START_TEST(test_many_headers)
{
    char headers[4096] = "", head[8192], out[8192];
    size_t off = 0;
    /* After the 5 fixed lines: look-alikes, a Connection and the header it names. */
    for (size_t i = 0; i < HTTP1_MAX_HEADERS - 7; i++)
        off += (size_t)snprintf(headers + off, sizeof(headers) - off,
                                "X-Auth-Subject: m%zu\r\n", i);
    snprintf(headers + off, sizeof(headers) - off, "Connection: X-Last\r\nX-Last: 1\r\n");
    struct http1_request req;
    struct ws_handshake hs;
    client_request("/x", headers, head, sizeof(head), &req, &hs);
    ck_assert_uint_eq(req.num_headers, HTTP1_MAX_HEADERS);
    struct upstream_req_params p = {.req = &req,
                                    .hs = &hs,
                                    .client_ip = CLIENT_IP,
                                    .request_id = "rid-1",
                                    IDENT(subject_alice)};
    int n = upstream_req_build(&p, out, sizeof(out));
    static const char want[] = START("/x") TAIL "X-Auth-Subject: alice\r\n\r\n";
    ck_assert_msg(n == (int)strlen(want) && memcmp(out, want, (size_t)n) == 0,
                  "got:\n%.*s", n, out);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
upstream_req_suite(void)
{
    Suite *s = suite_create("upstream_req");
    TCase *tc = tcase_create("build");
    tcase_add_loop_test(tc, test_build, 0, NELEM(req_cases));
    tcase_add_loop_test(tc, test_overflow, 0, NELEM(req_cases));
    tcase_add_loop_test(tc, test_protocols, 0, NELEM(req_cases));
    tcase_add_loop_test(tc, test_extensions, 0, NELEM(req_cases));
    tcase_add_loop_test(tc, test_target, 0, NELEM(target_cases));
    tcase_add_loop_test(tc, test_cut_segment, 0, NELEM(cut_cases));
    tcase_add_loop_test(tc, test_dropped, 0, NELEM(dropped_headers));
    tcase_add_test(tc, test_many_headers);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_loop_test(tc, test_bad_params, 0, NELEM(bad_cases));
    tcase_add_test(tc, test_missing_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(upstream_req_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
