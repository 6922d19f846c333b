/* test_upstream_resp: judging an upstream's answer to the upgrade; the client's 101. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/upstream_resp.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 §1.3 */
#define UPGRADED                                                                         \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
#define OK101 UPGRADED "Sec-WebSocket-Accept: " ACCEPT "\r\n"

struct resp_case {
    const char *name;
    const char *head;       /* a complete response head */
    const char *protocols;  /* offered, NULL for none */
    const char *extensions; /* offered, NULL for none */
    enum upstream_verdict verdict;
    const char *protocol;    /* chosen, when ACCEPTED */
    const char *chosen_ext;  /* chosen, when ACCEPTED */
    const char *reason_part; /* in choice.reason, when INVALID */
};

#define PD "permessage-deflate"

static const struct resp_case resp_cases[] = {
    {"valid 101", OK101 "\r\n", NULL, NULL, UPSTREAM_ACCEPTED, NULL, NULL, NULL},
    {"valid 101 with offers unused", OK101 "\r\n", "chat", PD, UPSTREAM_ACCEPTED, NULL,
     NULL, NULL},
    {"names and values in any case",
     "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, UPGRADE\r\n"
     "sec-websocket-accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_ACCEPTED, NULL, NULL, NULL},
    {"other headers ignored",
     OK101 "Date: x\r\nServer: y\r\nSec-WebSocket-Version: 13\r\n\r\n", NULL, NULL,
     UPSTREAM_ACCEPTED, NULL, NULL, NULL},
    {"protocol chosen", OK101 "Sec-WebSocket-Protocol: superchat\r\n\r\n",
     "chat, superchat", NULL, UPSTREAM_ACCEPTED, "superchat", NULL, NULL},
    {"extension chosen with its parameters",
     OK101 "Sec-WebSocket-Extensions: " PD "; server_no_context_takeover\r\n\r\n", "chat",
     PD "; client_max_window_bits, x-other", UPSTREAM_ACCEPTED, NULL,
     PD "; server_no_context_takeover", NULL},
    {"extension name in another case",
     OK101 "Sec-WebSocket-Extensions: Permessage-Deflate\r\n\r\n", NULL, PD,
     UPSTREAM_ACCEPTED, NULL, "Permessage-Deflate", NULL},
    {"two offered extensions chosen",
     OK101 "Sec-WebSocket-Extensions: x-a;p=\"1,2\", x-b\r\n\r\n", NULL, "x-b, x-a",
     UPSTREAM_ACCEPTED, NULL, "x-a;p=\"1,2\", x-b", NULL},
    {"empty extensions header chooses none", OK101 "Sec-WebSocket-Extensions:\r\n\r\n",
     NULL, PD, UPSTREAM_ACCEPTED, NULL, NULL, NULL},
    {"protocol and extension",
     OK101 "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: " PD "\r\n\r\n",
     "chat", PD, UPSTREAM_ACCEPTED, "chat", PD, NULL},

    {"wrong accept",
     UPGRADED "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n", NULL, NULL,
     UPSTREAM_INVALID, NULL, NULL, "wrong Sec-WebSocket-Accept"},
    {"accept in another case",
     UPGRADED "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n", NULL, NULL,
     UPSTREAM_INVALID, NULL, NULL, "wrong Sec-WebSocket-Accept"},
    {"accept with a trailing byte", UPGRADED "Sec-WebSocket-Accept: " ACCEPT "x\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "wrong Sec-WebSocket-Accept"},
    {"accept truncated",
     UPGRADED "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n", NULL, NULL,
     UPSTREAM_INVALID, NULL, NULL, "wrong Sec-WebSocket-Accept"},
    {"no accept", UPGRADED "\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL,
     "without Sec-WebSocket-Accept"},
    {"two accepts", OK101 "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", NULL, NULL,
     UPSTREAM_INVALID, NULL, NULL, "several Sec-WebSocket-Accept"},
    {"no Upgrade",
     "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "Upgrade: websocket"},
    {"Upgrade to another protocol",
     "HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "Upgrade: websocket"},
    {"no Connection",
     "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "Connection: upgrade"},
    {"Connection without upgrade",
     "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "Connection: upgrade"},
    {"101 over HTTP/1.0",
     "HTTP/1.0 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "HTTP/1.0"},
    {"protocol not offered", OK101 "Sec-WebSocket-Protocol: chat2\r\n\r\n",
     "chat, superchat", NULL, UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"protocol in another case", OK101 "Sec-WebSocket-Protocol: Chat\r\n\r\n", "chat",
     NULL, UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"protocol a prefix of an offered one", OK101 "Sec-WebSocket-Protocol: cha\r\n\r\n",
     "chat", NULL, UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"protocol when none was offered", OK101 "Sec-WebSocket-Protocol: chat\r\n\r\n", NULL,
     NULL, UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"two protocol headers",
     OK101 "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: superchat\r\n\r\n",
     "chat, superchat", NULL, UPSTREAM_INVALID, NULL, NULL,
     "several Sec-WebSocket-Protocol"},
    {"two protocols in one header",
     OK101 "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n", "chat, superchat", NULL,
     UPSTREAM_INVALID, NULL, NULL, "exactly one"},
    {"empty protocol header", OK101 "Sec-WebSocket-Protocol:\r\n\r\n", "chat", NULL,
     UPSTREAM_INVALID, NULL, NULL, "exactly one"},
    {"extension not offered",
     OK101 "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n", NULL, PD,
     UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"extension when none was offered", OK101 "Sec-WebSocket-Extensions: " PD "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "not offered"},
    {"extension name a prefix of an offered one",
     OK101 "Sec-WebSocket-Extensions: permessage\r\n\r\n", NULL, PD, UPSTREAM_INVALID,
     NULL, NULL, "not offered"},
    {"one of two extensions not offered",
     OK101 "Sec-WebSocket-Extensions: " PD ", x-evil\r\n\r\n", NULL, PD, UPSTREAM_INVALID,
     NULL, NULL, "not offered"},
    {"extension twice", OK101 "Sec-WebSocket-Extensions: " PD ", " PD "; x=1\r\n\r\n",
     NULL, PD, UPSTREAM_INVALID, NULL, NULL, "twice"},
    {"two extension headers",
     OK101 "Sec-WebSocket-Extensions: x-a\r\nSec-WebSocket-Extensions: x-b\r\n\r\n", NULL,
     "x-a, x-b", UPSTREAM_INVALID, NULL, NULL, "several Sec-WebSocket-Extensions"},
    {"unnamed extension", OK101 "Sec-WebSocket-Extensions: ; x=1\r\n\r\n", NULL, PD,
     UPSTREAM_INVALID, NULL, NULL, "unnamed"},

    {"100", "HTTP/1.1 100 Continue\r\n\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL,
     "101"},
    {"102", "HTTP/1.1 102 Processing\r\n\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL,
     "101"},
    {"200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", NULL, NULL, UPSTREAM_INVALID,
     NULL, NULL, "101"},
    {"200 that looks like an upgrade",
     "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "101"},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL,
     "101"},
    {"302", "HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n", NULL, NULL,
     UPSTREAM_INVALID, NULL, NULL, "101"},
    {"304", "HTTP/1.1 304 Not Modified\r\n\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL,
     "101"},
    {"399", "HTTP/1.1 399 x\r\n\r\n", NULL, NULL, UPSTREAM_INVALID, NULL, NULL, "101"},

    {"400", "HTTP/1.1 400 Bad Request\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED, NULL, NULL,
     NULL},
    {"401", "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n\r\n", NULL, NULL,
     UPSTREAM_REFUSED, NULL, NULL, NULL},
    {"403", "HTTP/1.1 403 Forbidden\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED, NULL, NULL,
     NULL},
    {"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n", NULL, NULL,
     UPSTREAM_REFUSED, NULL, NULL, NULL},
    {"426", "HTTP/1.1 426 Upgrade Required\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED, NULL,
     NULL, NULL},
    {"429", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n", NULL, NULL,
     UPSTREAM_REFUSED, NULL, NULL, NULL},
    {"500", "HTTP/1.1 500 Internal Server Error\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED,
     NULL, NULL, NULL},
    {"503", "HTTP/1.1 503 Service Unavailable\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED,
     NULL, NULL, NULL},
    {"503 over HTTP/1.0", "HTTP/1.0 503\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED, NULL,
     NULL, NULL},
    {"599", "HTTP/1.1 599 x\r\n\r\n", NULL, NULL, UPSTREAM_REFUSED, NULL, NULL, NULL},
};

static void
parse(const char *head, struct http1_response *resp)
{
    struct http1_error err;
    int n = http1_parse_response(head, strlen(head), 0, resp, &err);
    ck_assert_msg(n == (int)strlen(head), "test head does not parse: %s",
                  err.reason ? err.reason : "-");
}

static struct upstream_offer
offer_of(const char *key, const char *protocols, const char *extensions)
{
    return (struct upstream_offer){
        .key = key,
        .key_len = key != NULL ? strlen(key) : 0,
        .protocols = protocols,
        .protocols_len = protocols != NULL ? strlen(protocols) : 0,
        .extensions = extensions,
        .extensions_len = extensions != NULL ? strlen(extensions) : 0,
    };
}

static void
assert_view(const char *p, size_t n, const char *want, const char *what, const char *name)
{
    if (want == NULL) {
        ck_assert_msg(p == NULL && n == 0, "%s: %s chosen: %.*s", name, what, (int)n,
                      p ? p : "");
        return;
    }
    ck_assert_msg(p != NULL && n == strlen(want) && memcmp(p, want, n) == 0,
                  "%s: %s %.*s, want %s", name, what, (int)n, p ? p : "", want);
}

START_TEST(test_check)
{
    const struct resp_case *tc = &resp_cases[_i];
    struct http1_response resp;
    parse(tc->head, &resp);
    struct upstream_offer offer = offer_of(KEY, tc->protocols, tc->extensions);
    struct upstream_choice choice;
    enum upstream_verdict v = upstream_resp_check(&resp, &offer, &choice);
    ck_assert_msg(v == tc->verdict, "%s: verdict %d, want %d (%s)", tc->name, v,
                  tc->verdict, choice.reason ? choice.reason : "-");
    assert_view(choice.protocol, choice.protocol_len, tc->protocol, "protocol", tc->name);
    assert_view(choice.extensions, choice.extensions_len, tc->chosen_ext, "extensions",
                tc->name);
    if (tc->verdict == UPSTREAM_INVALID) {
        ck_assert_ptr_nonnull(choice.reason);
        ck_assert_msg(strstr(choice.reason, tc->reason_part) != NULL,
                      "%s: reason \"%s\" lacks \"%s\"", tc->name, choice.reason,
                      tc->reason_part);
    }
}
END_TEST

/* A 101 for another key, and a check without a key at all. */
START_TEST(test_check_key)
{
    struct http1_response resp;
    parse(OK101 "\r\n", &resp);
    struct upstream_choice choice;
    struct upstream_offer offer = offer_of("x3JJHMbDL1EzLkh9GBhXDw==", NULL, NULL);
    ck_assert_int_eq(upstream_resp_check(&resp, &offer, &choice), UPSTREAM_INVALID);
    offer = offer_of(NULL, NULL, NULL);
    ck_assert_int_eq(upstream_resp_check(&resp, &offer, &choice), UPSTREAM_INVALID);
    ck_assert_ptr_nonnull(choice.reason);
}
END_TEST

/* The client's 101 for each choice, byte for byte. */
static const struct {
    const char *protocol;
    const char *extensions;
    const char *want;
} client_cases[] = {
    {NULL, NULL, OK101 "\r\n"},
    {"chat", NULL, OK101 "Sec-WebSocket-Protocol: chat\r\n\r\n"},
    {NULL, PD "; server_no_context_takeover",
     OK101 "Sec-WebSocket-Extensions: " PD "; server_no_context_takeover\r\n\r\n"},
    {"chat", PD,
     OK101 "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: " PD "\r\n\r\n"},
};

START_TEST(test_client_101)
{
    const char *proto = client_cases[_i].protocol, *ext = client_cases[_i].extensions;
    const char *want = client_cases[_i].want;
    struct upstream_choice choice = {
        .protocol = proto,
        .protocol_len = proto != NULL ? strlen(proto) : 0,
        .extensions = ext,
        .extensions_len = ext != NULL ? strlen(ext) : 0,
    };
    char out[512];
    int n = upstream_resp_client_101(KEY, strlen(KEY), &choice, out, sizeof(out));
    ck_assert_int_eq(n, (int)strlen(want));
    ck_assert_mem_eq(out, want, (size_t)n);

    /* The client's 101 passes the same check the upstream's did. */
    struct http1_response resp;
    struct http1_error err;
    ck_assert_int_eq(http1_parse_response(out, (size_t)n, 0, &resp, &err), n);
    struct upstream_offer offer = offer_of(KEY, proto, ext);
    struct upstream_choice again;
    ck_assert_int_eq(upstream_resp_check(&resp, &offer, &again), UPSTREAM_ACCEPTED);
    assert_view(again.protocol, again.protocol_len, proto, "protocol", "again");
    assert_view(again.extensions, again.extensions_len, ext, "extensions", "again");

    for (size_t cap = 0; cap < (size_t)n; cap++) {
        char *small = malloc(cap > 0 ? cap : 1);
        ck_assert_ptr_nonnull(small);
        ck_assert_int_eq(upstream_resp_client_101(KEY, strlen(KEY), &choice, small, cap),
                         -1);
        free(small);
    }
    ck_assert_int_eq(upstream_resp_client_101(KEY, strlen(KEY), &choice, NULL, 0), -1);
}
END_TEST

/* Nothing that could break a line reaches the client. */
START_TEST(test_client_101_refuses)
{
    char out[512];
    struct upstream_choice choice = {.protocol = "a\r\nX: 1", .protocol_len = 8};
    ck_assert_int_eq(
        upstream_resp_client_101(KEY, strlen(KEY), &choice, out, sizeof(out)), -1);
    choice = (struct upstream_choice){.extensions = "a\nb", .extensions_len = 3};
    ck_assert_int_eq(
        upstream_resp_client_101(KEY, strlen(KEY), &choice, out, sizeof(out)), -1);
    choice = (struct upstream_choice){0};
    ck_assert_int_eq(upstream_resp_client_101(NULL, 0, &choice, out, sizeof(out)), -1);
}
END_TEST

/* What a valid 101 chose from a full offer, end to end: client 101 from the
 * upstream's answer. */
START_TEST(test_pass_on)
{
    static const char up[] = OK101 "Sec-WebSocket-Protocol: chat.v1\r\n"
                                   "Sec-WebSocket-Extensions: " PD
                                   "; client_max_window_bits=10\r\n\r\n\x81\x05hello";
    struct http1_response resp;
    struct http1_error err;
    int head = http1_parse_response(up, sizeof(up) - 1, 0, &resp, &err);
    ck_assert_int_eq(head, (int)(sizeof(up) - 1 - 7));
    struct upstream_offer offer =
        offer_of(KEY, "chat.v1, chat.v2", PD "; client_max_window_bits");
    struct upstream_choice choice;
    ck_assert_int_eq(upstream_resp_check(&resp, &offer, &choice), UPSTREAM_ACCEPTED);
    char out[512];
    int n = upstream_resp_client_101(KEY, strlen(KEY), &choice, out, sizeof(out));
    ck_assert_int_eq(n, head);
    ck_assert_mem_eq(out, up, (size_t)n);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
upstream_resp_suite(void)
{
    Suite *s = suite_create("upstream_resp");
    TCase *tc = tcase_create("check");
    tcase_add_loop_test(tc, test_check, 0, NELEM(resp_cases));
    tcase_add_test(tc, test_check_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("client_101");
    tcase_add_loop_test(tc, test_client_101, 0, NELEM(client_cases));
    tcase_add_test(tc, test_client_101_refuses);
    tcase_add_test(tc, test_pass_on);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(upstream_resp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
