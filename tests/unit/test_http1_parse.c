/* test_http1_parse: both head parsers fed whole, split and byte-wise; list helpers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http1_parse.h"

/* A literal and its length, so that cases may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1

#define RL "GET / HTTP/1.1\r\n" /* 16 bytes: headers start at offset 16 */

struct parse_case {
    const char *name;
    const char *in;
    size_t len;
    int ret;            /* the head's length, -2, or -1 */
    int status;         /* when -1 */
    size_t offset;      /* when -1 */
    const char *reason; /* when -1 */
};

/* Heads that parse, that need more bytes, and that are rejected. */
static const struct parse_case parse_cases[] = {
    {"minimal", S("GET / HTTP/1.1\r\n\r\n"), 18, 0, 0, NULL},
    {"upgrade request",
     S("GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n"),
     161, 0, 0, NULL},
    {"HTTP/1.0", S("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 27, 0, 0, NULL},
    {"bytes after the head", S(RL "Host: a\r\n\r\nGET / HTTP/1.1\r\n"), 27, 0, 0, NULL},
    {"one leading empty line", S("\r\n" RL "\r\n"), 20, 0, 0, NULL},
    {"OWS trimmed", S(RL "X-A: \t v a\tl \t \r\n\r\n"), 35, 0, 0, NULL},
    {"empty value", S(RL "X-E:\r\nX-F:   \r\n\r\n"), 33, 0, 0, NULL},
    {"obs-text in value", S(RL "X: caf\xc3\xa9\r\n\r\n"), 28, 0, 0, NULL},
    {"every tchar",
     S("!#$%&'*+-.^_`|~09AZaz / HTTP/1.1\r\n!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n"), 62, 0, 0,
     NULL},
    {"every VCHAR in target",
     S("GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\n\r\n"), 56, 0, 0, NULL},
    {"asterisk-form", S("OPTIONS * HTTP/1.1\r\n\r\n"), 22, 0, 0, NULL},
    {"absolute-form", S("GET http://a/b HTTP/1.1\r\n\r\n"), 27, 0, 0, NULL},
    {"colon in value", S(RL "Host: example.com:8080\r\n\r\n"), 42, 0, 0, NULL},

    {"empty", S(""), -2, 0, 0, NULL},
    {"no blank line", S(RL "Host: a\r\n"), -2, 0, 0, NULL},
    {"half a blank line", S(RL "Host: a\r\n\r"), -2, 0, 0, NULL},
    {"error not decidable yet", S("G@T / HTTP/1.1\r\nHost: a\r\n"), -2, 0, 0, NULL},
    {"CR at the end", S("GET / HTTP/1.1\r"), -2, 0, 0, NULL},

    {"leading SP", S(" GET / HTTP/1.1\r\n\r\n"), -1, 400, 0, "invalid method"},
    {"bad method char", S("G@T / HTTP/1.1\r\n\r\n"), -1, 400, 1, "invalid method"},
    {"HTAB after method", S("GET\t/ HTTP/1.1\r\n\r\n"), -1, 400, 3, "invalid method"},
    {"NUL in method", S("GE\0T / HTTP/1.1\r\n\r\n"), -1, 400, 2, "invalid method"},
    {"no target", S("GET\r\n\r\n"), -1, 400, 3, "invalid method"},
    {"two leading empty lines", S("\r\n\r\n" RL "\r\n"), -1, 400, 2, "invalid method"},
    {"leading bare LF", S("\n" RL "\r\n"), -1, 400, 0, "bare LF"},
    {"empty target", S("GET  / HTTP/1.1\r\n\r\n"), -1, 400, 4, "invalid request-target"},
    {"HTAB in target", S("GET /a\tb HTTP/1.1\r\n\r\n"), -1, 400, 6,
     "invalid request-target"},
    {"CTL in target", S("GET /a\x01 HTTP/1.1\r\n\r\n"), -1, 400, 6,
     "invalid request-target"},
    {"DEL in target", S("GET /a\x7f HTTP/1.1\r\n\r\n"), -1, 400, 6,
     "invalid request-target"},
    {"non-ASCII target", S("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), -1, 400, 8,
     "invalid request-target"},
    {"bare CR in target", S("GET /\r HTTP/1.1\r\n\r\n"), -1, 400, 5, "bare CR"},
    {"HTTP/0.9", S("GET /\r\n\r\n"), -1, 400, 5, "missing HTTP version"},
    {"HTTP/2.0", S("GET / HTTP/2.0\r\n\r\n"), -1, 400, 11, "unsupported HTTP version"},
    {"HTTP/1.2", S("GET / HTTP/1.2\r\n\r\n"), -1, 400, 13, "unsupported HTTP version"},
    {"HTTP/0.9 version", S("GET / HTTP/0.9\r\n\r\n"), -1, 400, 11,
     "unsupported HTTP version"},
    {"HTTP/1.10", S("GET / HTTP/1.10\r\n\r\n"), -1, 400, 14, "invalid HTTP version"},
    {"HTTX", S("GET / HTTX/1.1\r\n\r\n"), -1, 400, 9, "invalid HTTP version"},
    {"lower-case http", S("GET / http/1.1\r\n\r\n"), -1, 400, 6, "invalid HTTP version"},
    {"no minor", S("GET / HTTP/1\r\n\r\n"), -1, 400, 12, "invalid HTTP version"},
    {"SP after version", S("GET / HTTP/1.1 \r\n\r\n"), -1, 400, 14,
     "invalid HTTP version"},
    {"bare LF after request line", S("GET / HTTP/1.1\nHost: a\n\n"), -1, 400, 14,
     "bare LF"},
    {"bare LF after header", S(RL "Host: a\n\r\n"), -1, 400, 23, "bare LF"},
    {"bare LF as blank line", S(RL "Host: a\r\n\n"), -1, 400, 25, "bare LF"},
    {"bare CR in value", S(RL "X: a\rb\r\n\r\n"), -1, 400, 20, "bare CR"},
    {"bare CR as blank line", S(RL "Host: a\r\n\rX"), -1, 400, 25, "bare CR"},
    {"NUL in value", S(RL "X: a\0b\r\n\r\n"), -1, 400, 20, "invalid header value"},
    {"DEL in value",
     S(RL "X: a\x7f"
          "b\r\n\r\n"),
     -1, 400, 20, "invalid header value"},
    {"ESC in value",
     S(RL "X: a\x1b"
          "b\r\n\r\n"),
     -1, 400, 20, "invalid header value"},
    {"NUL in name", S(RL "X\0: a\r\n\r\n"), -1, 400, 17, "invalid header name"},
    {"SP before colon", S(RL "Host : a\r\n\r\n"), -1, 400, 20, "whitespace before colon"},
    {"HTAB before colon", S(RL "Host\t: a\r\n\r\n"), -1, 400, 20,
     "whitespace before colon"},
    {"empty name", S(RL ": a\r\n\r\n"), -1, 400, 16, "empty header name"},
    {"no colon", S(RL "Host\r\n\r\n"), -1, 400, 20, "invalid header name"},
    {"separator in name", S(RL "Ho(st: a\r\n\r\n"), -1, 400, 18, "invalid header name"},
    {"non-ASCII name", S(RL "H\xc3\xb6st: a\r\n\r\n"), -1, 400, 17,
     "invalid header name"},
    {"obs-fold SP", S(RL "X: a\r\n b\r\n\r\n"), -1, 400, 22, "obs-fold"},
    {"obs-fold HTAB", S(RL "X: a\r\n\tb\r\n\r\n"), -1, 400, 22, "obs-fold"},
    {"SP before first header", S(RL " Host: a\r\n\r\n"), -1, 400, 16, "obs-fold"},
    {"first error wins", S("G@T / HTTP/1.1\r\nX: \0\r\n\r\n"), -1, 400, 1,
     "invalid method"},
};

#define SL "HTTP/1.1 200 OK\r\n" /* 17 bytes: headers start at offset 17 */

/* Response heads: the same rules over a status line. */
static const struct parse_case resp_cases[] = {
    {"101 upgrade",
     S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
     129, 0, 0, NULL},
    {"HTTP/1.0 200", S("HTTP/1.0 200 OK\r\n\r\n"), 19, 0, 0, NULL},
    {"empty reason", S("HTTP/1.1 404 \r\n\r\n"), 17, 0, 0, NULL},
    {"no reason, no SP", S("HTTP/1.1 404\r\n\r\n"), 16, 0, 0, NULL},
    {"reason with HTAB and obs-text",
     S("HTTP/1.1 503 Service\tUnavailable \xc3\xa9\r\nRetry-After: 5\r\n\r\n"), 55, 0, 0,
     NULL},
    {"frames after the head", S("HTTP/1.1 101 OK\r\n\r\n\x81\x00"), 19, 0, 0, NULL},
    {"status 100", S("HTTP/1.1 100 Continue\r\n\r\n"), 25, 0, 0, NULL},
    {"status 599", S("HTTP/1.1 599 x\r\n\r\n"), 18, 0, 0, NULL},
    {"long reason", S("HTTP/1.1 401 Unauthorized because the token expired\r\n\r\n"), 55,
     0, 0, NULL},

    {"empty", S(""), -2, 0, 0, NULL},
    {"status line only", S(SL), -2, 0, 0, NULL},
    {"half a blank line", S(SL "\r"), -2, 0, 0, NULL},
    {"half a status code", S("HTTP/1.1 1"), -2, 0, 0, NULL},
    {"error not decidable yet", S("HTTP/1.1 2x0 OK\r\n"), -2, 0, 0, NULL},

    {"leading empty line", S("\r\n" SL "\r\n"), -1, 400, 0, "invalid HTTP version"},
    {"a request", S("GET / HTTP/1.1\r\n\r\n"), -1, 400, 0, "invalid HTTP version"},
    {"lower-case http", S("http/1.1 200 OK\r\n\r\n"), -1, 400, 0, "invalid HTTP version"},
    {"HTTP/2.0", S("HTTP/2.0 200 OK\r\n\r\n"), -1, 400, 5, "unsupported HTTP version"},
    {"HTTP/1.2", S("HTTP/1.2 200 OK\r\n\r\n"), -1, 400, 7, "unsupported HTTP version"},
    {"HTAB after version", S("HTTP/1.1\t200 OK\r\n\r\n"), -1, 400, 8,
     "invalid HTTP version"},
    {"no status", S("HTTP/1.1\r\n\r\n"), -1, 400, 8, "invalid HTTP version"},
    {"two SP before status", S("HTTP/1.1  200 OK\r\n\r\n"), -1, 400, 9,
     "invalid status code"},
    {"two-digit status", S("HTTP/1.1 20 OK\r\n\r\n"), -1, 400, 11, "invalid status code"},
    {"four-digit status", S("HTTP/1.1 2000 OK\r\n\r\n"), -1, 400, 12,
     "invalid status code"},
    {"status 099", S("HTTP/1.1 099 x\r\n\r\n"), -1, 400, 9, "invalid status code"},
    {"status 600", S("HTTP/1.1 600 x\r\n\r\n"), -1, 400, 9, "invalid status code"},
    {"letter in status", S("HTTP/1.1 2x0 OK\r\n\r\n"), -1, 400, 10,
     "invalid status code"},
    {"CTL in reason", S("HTTP/1.1 200 O\x01K\r\n\r\n"), -1, 400, 14,
     "invalid reason phrase"},
    {"DEL in reason", S("HTTP/1.1 200 OK\x7f\r\n\r\n"), -1, 400, 15,
     "invalid reason phrase"},
    {"NUL in reason", S("HTTP/1.1 200 O\0K\r\n\r\n"), -1, 400, 14,
     "invalid reason phrase"},
    {"bare LF after reason", S("HTTP/1.1 200 OK\n\r\n"), -1, 400, 15, "bare LF"},
    {"bare LF after status", S("HTTP/1.1 200\n\r\n"), -1, 400, 12, "bare LF"},
    {"bare CR in reason", S("HTTP/1.1 200 OK\rX\r\n\r\n"), -1, 400, 15, "bare CR"},
    {"bare LF after header", S(SL "Upgrade: websocket\n\r\n"), -1, 400, 35, "bare LF"},
    {"SP before colon", S(SL "Upgrade : websocket\r\n\r\n"), -1, 400, 24,
     "whitespace before colon"},
    {"obs-fold", S(SL "X: a\r\n b\r\n\r\n"), -1, 400, 23, "obs-fold"},
    {"NUL in value", S(SL "X: a\0b\r\n\r\n"), -1, 400, 21, "invalid header value"},
    {"empty name", S(SL ": a\r\n\r\n"), -1, 400, 17, "empty header name"},
    {"first error wins", S("HTTP/1.1 2x0 OK\r\nX: \0\r\n\r\n"), -1, 400, 10,
     "invalid status code"},
};

/* Either parser, with its result struct behind `out`. */
typedef int (*parse_fn)(const char *buf, size_t len, size_t last_len, void *out,
                        struct http1_error *err);

static int
parse_req(const char *buf, size_t len, size_t last_len, void *out,
          struct http1_error *err)
{
    return http1_parse_request(buf, len, last_len, out, err);
}

static int
parse_resp(const char *buf, size_t len, size_t last_len, void *out,
           struct http1_error *err)
{
    return http1_parse_response(buf, len, last_len, out, err);
}

/* Parses a heap copy of exactly len bytes with fn, so that ASan sees any
 * overread; the copy is returned in *copy for the views to stay valid. */
static int
parse_copy_with(parse_fn fn, const char *in, size_t len, size_t last_len, char **copy,
                void *out, struct http1_error *err)
{
    free(*copy);
    *copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    if (len > 0)
        memcpy(*copy, in, len);
    return fn(*copy, len, last_len, out, err);
}

static int
parse_copy(const char *in, size_t len, size_t last_len, char **copy,
           struct http1_request *req, struct http1_error *err)
{
    return parse_copy_with(parse_req, in, len, last_len, copy, req, err);
}

static void
assert_outcome(const struct parse_case *tc, int r, const struct http1_error *err,
               const char *how)
{
    ck_assert_msg(r == tc->ret, "%s (%s): got %d, want %d (%s at %zu)", tc->name, how, r,
                  tc->ret, err->reason ? err->reason : "-", err->offset);
    if (r != -1)
        return;
    ck_assert_int_eq(err->status, tc->status);
    ck_assert_msg(err->offset == tc->offset, "%s (%s): offset %zu, want %zu", tc->name,
                  how, err->offset, tc->offset);
    ck_assert_str_eq(err->reason, tc->reason);
}

static void
run_whole(const struct parse_case *tc, parse_fn fn, void *out)
{
    struct http1_error err = {0};
    char *copy = NULL;
    int r = parse_copy_with(fn, tc->in, tc->len, 0, &copy, out, &err);
    assert_outcome(tc, r, &err, "whole");
    free(copy);
}

/* One byte at a time, passing last_len as a reading loop does: -2 until the
 * outcome is decidable, then the outcome of the whole; a head is decidable
 * exactly at its end, an error no sooner than its offending byte. */
static void
run_bytewise(const struct parse_case *tc, parse_fn fn, void *out)
{
    struct http1_error err = {0};
    char *copy = NULL;
    size_t last = 0, k;
    int r = -2;
    for (k = 1; k <= tc->len; k++) {
        r = parse_copy_with(fn, tc->in, k, last, &copy, out, &err);
        if (r != -2)
            break;
        last = k;
    }
    assert_outcome(tc, r, &err, "bytewise");
    if (r >= 0)
        ck_assert_uint_eq(k, (size_t)r);
    if (r == -1)
        ck_assert_uint_gt(k, tc->offset);
    free(copy);
}

/* Two reads, split at every point: the second passes the first's length. */
static void
run_split(const struct parse_case *tc, parse_fn fn, void *out)
{
    struct http1_error err = {0};
    char *copy = NULL;
    for (size_t s = 1; s < tc->len; s++) {
        int r = parse_copy_with(fn, tc->in, s, 0, &copy, out, &err);
        if (r == -2)
            r = parse_copy_with(fn, tc->in, tc->len, s, &copy, out, &err);
        char how[32];
        snprintf(how, sizeof(how), "split at %zu", s);
        assert_outcome(tc, r, &err, how);
    }
    free(copy);
}

START_TEST(test_parse_whole)
{
    struct http1_request req;
    run_whole(&parse_cases[_i], parse_req, &req);
}
END_TEST

START_TEST(test_parse_bytewise)
{
    struct http1_request req;
    run_bytewise(&parse_cases[_i], parse_req, &req);
}
END_TEST

START_TEST(test_parse_split)
{
    struct http1_request req;
    run_split(&parse_cases[_i], parse_req, &req);
}
END_TEST

static void
assert_view(const char *p, size_t len, const char *want)
{
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(p, want, len);
}

START_TEST(test_parse_fields)
{
    static const char in[] = "\r\nPOST /a/b?c=d%20e HTTP/1.0\r\nHost:  example.com \r\n"
                             "X-A: \t v a\tl \t \r\nX-Empty:\r\nX-Spaces: \t \r\n"
                             "x-obs: caf\xc3\xa9\r\n\r\nbody";
    struct http1_request req;
    struct http1_error err = {0};
    int r = http1_parse_request(in, sizeof(in) - 1, 0, &req, &err);
    ck_assert_int_eq(r, (int)(sizeof(in) - 1 - 4));
    assert_view(req.method, req.method_len, "POST");
    assert_view(req.target, req.target_len, "/a/b?c=d%20e");
    ck_assert_int_eq(req.minor_version, 0);
    ck_assert_uint_eq(req.num_headers, 5);
    static const char *const want[][2] = {
        {"Host", "example.com"}, {"X-A", "v a\tl"},        {"X-Empty", ""},
        {"X-Spaces", ""},        {"x-obs", "caf\xc3\xa9"},
    };
    for (size_t i = 0; i < 5; i++) {
        assert_view(req.headers[i].name, req.headers[i].name_len, want[i][0]);
        assert_view(req.headers[i].value, req.headers[i].value_len, want[i][1]);
    }
}
END_TEST

/* A head with n headers "X-<i>: <i>", in a buffer the caller frees. */
static char *
head_with_headers(size_t n, size_t *len, size_t *last_line)
{
    size_t cap = 64 + n * 32, off = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    off += (size_t)snprintf(buf + off, cap - off, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < n; i++) {
        *last_line = off;
        off += (size_t)snprintf(buf + off, cap - off, "X-%zu: %zu\r\n", i, i);
    }
    off += (size_t)snprintf(buf + off, cap - off, "\r\n");
    *len = off;
    return buf;
}

START_TEST(test_header_limit)
{
    struct http1_request req;
    struct http1_error err = {0};
    size_t len, last_line;
    char *buf = head_with_headers(HTTP1_MAX_HEADERS, &len, &last_line);
    struct parse_case ok = {"64 headers", buf, len, (int)len, 0, 0, NULL};
    char *copy = NULL;
    assert_outcome(&ok, parse_copy(buf, len, 0, &copy, &req, &err), &err, "whole");
    ck_assert_uint_eq(req.num_headers, HTTP1_MAX_HEADERS);
    assert_view(req.headers[63].name, req.headers[63].name_len, "X-63");
    assert_view(req.headers[63].value, req.headers[63].value_len, "63");
    free(buf);

    buf = head_with_headers(HTTP1_MAX_HEADERS + 1, &len, &last_line);
    struct parse_case over = {"65 headers",      buf, len, -1, 431, last_line,
                              "too many headers"};
    assert_outcome(&over, parse_copy(buf, len, 0, &copy, &req, &err), &err, "whole");
    size_t last = 0;
    int r = -2;
    for (size_t k = 1; k <= len && r == -2; k++) {
        r = parse_copy(buf, k, last, &copy, &req, &err);
        last = k;
    }
    assert_outcome(&over, r, &err, "bytewise");
    free(copy);
    free(buf);
}
END_TEST

/* One byte planted at every position of a long value, so that it lands at
 * every place within the words the parser skips over at a time. */
static const struct {
    unsigned char byte;
    bool ok;
} planted[] = {
    {0x00, false}, {0x01, false}, {0x08, false}, {0x0b, false},
    {0x1f, false}, {0x7f, false}, {0x09, true},  {0x20, true},
    {0x7e, true},  {0x80, true},  {0xa0, true},  {0xff, true},
};

START_TEST(test_planted_byte)
{
    char in[128];
    size_t pre = sizeof(RL) - 1 + 3; /* RL "X: " */
    for (size_t at = 0; at < 40; at++) {
        size_t n = (size_t)snprintf(in, sizeof(in), RL "X: %.*s", 40,
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN");
        in[pre + at] = (char)planted[_i].byte;
        memcpy(in + n, "z\r\n\r\n", 5);
        n += 5;
        char name[48];
        snprintf(name, sizeof(name), "byte %#x at %zu", planted[_i].byte, at);
        struct parse_case tc = {name, in, n, (int)n, 0, 0, NULL};
        if (!planted[_i].ok) {
            tc.ret = -1;
            tc.status = 400;
            tc.offset = pre + at;
            tc.reason = "invalid header value";
        }
        struct http1_request req;
        struct http1_error err = {0};
        char *copy = NULL;
        assert_outcome(&tc, parse_copy(in, n, 0, &copy, &req, &err), &err, "whole");
        size_t last = 0;
        int r = -2;
        for (size_t k = 1; k <= n && r == -2; k++) {
            r = parse_copy(in, k, last, &copy, &req, &err);
            last = k;
        }
        assert_outcome(&tc, r, &err, "bytewise");
        free(copy);
    }
}
END_TEST

/* last_len past len (a caller's slip) must not skip the scan. */
START_TEST(test_last_len_beyond)
{
    static const char in[] = "GET / HTTP/1.1\r\n\r\n";
    struct http1_request req;
    struct http1_error err = {0};
    ck_assert_int_eq(http1_parse_request(in, sizeof(in) - 1, 100, &req, &err), 18);
}
END_TEST

/* Values the gateway may write into a header: never CR, LF, NUL or DEL. */
START_TEST(test_value_ok)
{
    ck_assert(http1_value_ok("", 0));
    ck_assert(http1_value_ok("admin, dev\tops", 14));
    ck_assert(http1_value_ok("caf\xc3\xa9", 5));
    ck_assert(!http1_value_ok("a\r\nX-Evil: 1", 13));
    ck_assert(!http1_value_ok("a\nb", 3));
    ck_assert(!http1_value_ok("a\0b", 3));
    ck_assert(!http1_value_ok("a\x7f", 2));
    ck_assert(!http1_value_ok("\x01", 1));
}
END_TEST

START_TEST(test_find_header)
{
    static const char in[] = RL "Host: a\r\nUPGRADE: websocket\r\nX-Dup: 1\r\n"
                                "x-dup: 2\r\nX-Dup-Not: 3\r\n\r\n";
    struct http1_request req;
    struct http1_error err = {0};
    ck_assert_int_gt(http1_parse_request(in, sizeof(in) - 1, 0, &req, &err), 0);
    ck_assert_int_eq(http1_find_header(&req, "host"), 0);
    ck_assert_int_eq(http1_find_header(&req, "Upgrade"), 1);
    ck_assert_int_eq(http1_find_header(&req, "x-dup"), 2);
    ck_assert_int_eq(http1_find_header(&req, "X-Du"), -1);
    ck_assert_int_eq(http1_find_header(&req, "Origin"), -1);
    ck_assert_uint_eq(http1_header_count(&req, "X-DUP"), 2);
    ck_assert_uint_eq(http1_header_count(&req, "host"), 1);
    ck_assert_uint_eq(http1_header_count(&req, "origin"), 0);
}
END_TEST

static const struct {
    const char *s;
    const char *lit;
    bool eq;
} ieq_cases[] = {
    {"Upgrade", "upgrade", true},
    {"WEBSOCKET", "websocket", true},
    {"websocket", "websockets", false},
    {"websockets", "websocket", false},
    {"", "", true},
    {"", "a", false},
    {"@", "`", false}, /* 0x40 and 0x60 differ only in the case bit */
    {"[", "{", false},
    {"^", "~", false},
    {"Sec-WebSocket-Key", "sec-websocket-key", true},
};

START_TEST(test_str_ieq)
{
    const char *s = ieq_cases[_i].s;
    ck_assert_msg(http1_str_ieq(s, strlen(s), ieq_cases[_i].lit) == ieq_cases[_i].eq,
                  "\"%s\" vs \"%s\"", s, ieq_cases[_i].lit);
}
END_TEST

static const struct {
    const char *value;
    const char *token;
    bool contains;
} token_cases[] = {
    {"Upgrade", "upgrade", true},
    {"keep-alive, Upgrade", "upgrade", true},
    {"upgrade,,", "upgrade", true},
    {",, ,upgrade", "upgrade", true},
    {"\tkeep-alive\t,\tupgrade\t", "upgrade", true},
    {"keep-alive ,  UPGRADE  , close", "upgrade", true},
    {"keep-alive", "upgrade", false},
    {"upgrades", "upgrade", false},
    {"up grade", "upgrade", false},
    {"upgrade-h2c", "upgrade", false},
    {"", "upgrade", false},
    {",, ,\t", "upgrade", false},
    {"x=\"a,upgrade\"", "upgrade", false},
    {"websocket", "websocket", true},
    {"h2c, WebSocket", "websocket", true},
};

START_TEST(test_token_list)
{
    const char *v = token_cases[_i].value;
    ck_assert_msg(http1_token_list_contains(v, strlen(v), token_cases[_i].token) ==
                      token_cases[_i].contains,
                  "\"%s\" / \"%s\"", v, token_cases[_i].token);
}
END_TEST

/* Each value and its elements joined by '|'. */
static const struct {
    const char *value;
    const char *elems;
} list_cases[] = {
    {"a, b ,c", "a|b|c"},
    {"  a  ", "a"},
    {"", ""},
    {" , ,, ", ""},
    {",a,,b,", "a|b"},
    {"\ta b\t,c", "a b|c"},
    {"permessage-deflate; x=\"1,2\", y", "permessage-deflate; x=\"1,2\"|y"},
    {"x=\"a\\\",b\", c", "x=\"a\\\",b\"|c"},
    {"x=\"unterminated, y", "x=\"unterminated, y"},
};

START_TEST(test_list_next)
{
    const char *v = list_cases[_i].value;
    size_t len = strlen(v), pos = 0, elem_len, n = 0;
    const char *elem;
    char got[128] = "";
    while (http1_list_next(v, len, &pos, &elem, &elem_len)) {
        ck_assert_uint_gt(elem_len, 0);
        ck_assert_uint_le(pos, len);
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%.*s", n ? "|" : "",
                              (int)elem_len, elem);
    }
    ck_assert_uint_eq(pos, len);
    ck_assert_str_eq(got, list_cases[_i].elems);
    ck_assert(!http1_list_next(v, len, &pos, &elem, &elem_len));
}
END_TEST

START_TEST(test_resp_whole)
{
    struct http1_response resp;
    run_whole(&resp_cases[_i], parse_resp, &resp);
}
END_TEST

START_TEST(test_resp_bytewise)
{
    struct http1_response resp;
    run_bytewise(&resp_cases[_i], parse_resp, &resp);
}
END_TEST

START_TEST(test_resp_split)
{
    struct http1_response resp;
    run_split(&resp_cases[_i], parse_resp, &resp);
}
END_TEST

START_TEST(test_resp_fields)
{
    static const char in[] =
        "HTTP/1.1 101 Switching  Protocols \r\nUpgrade:  websocket \r\n"
        "connection: Upgrade\r\nX-Empty:\r\n\r\n\x81";
    struct http1_response resp;
    struct http1_error err = {0};
    int r = http1_parse_response(in, sizeof(in) - 1, 0, &resp, &err);
    ck_assert_int_eq(r, (int)(sizeof(in) - 2));
    ck_assert_int_eq(resp.minor_version, 1);
    ck_assert_int_eq(resp.status, 101);
    assert_view(resp.reason, resp.reason_len, "Switching  Protocols ");
    ck_assert_uint_eq(resp.num_headers, 3);
    static const char *const want[][2] = {
        {"Upgrade", "websocket"}, {"connection", "Upgrade"}, {"X-Empty", ""}};
    for (size_t i = 0; i < 3; i++) {
        assert_view(resp.headers[i].name, resp.headers[i].name_len, want[i][0]);
        assert_view(resp.headers[i].value, resp.headers[i].value_len, want[i][1]);
    }
}
END_TEST

/* An empty reason is an empty view, so that it prints as "%.*s" safely. */
START_TEST(test_resp_empty_reason)
{
    static const char *const in[] = {"HTTP/1.0 404\r\n\r\n", "HTTP/1.0 404 \r\n\r\n"};
    for (size_t i = 0; i < 2; i++) {
        struct http1_response resp;
        struct http1_error err = {0};
        ck_assert_int_eq(http1_parse_response(in[i], strlen(in[i]), 0, &resp, &err),
                         (int)strlen(in[i]));
        ck_assert_int_eq(resp.status, 404);
        ck_assert_int_eq(resp.minor_version, 0);
        ck_assert_ptr_nonnull(resp.reason);
        ck_assert_uint_eq(resp.reason_len, 0);
        ck_assert_uint_eq(resp.num_headers, 0);
    }
}
END_TEST

/* A failed parse leaves no stale result behind. */
START_TEST(test_resp_reset)
{
    static const char ok[] = SL "X: 1\r\n\r\n", bad[] = "HTTP/1.1 2x0\r\n\r\n";
    struct http1_response resp;
    struct http1_error err = {0};
    ck_assert_int_eq(http1_parse_response(ok, sizeof(ok) - 1, 0, &resp, &err),
                     (int)sizeof(ok) - 1);
    ck_assert_int_eq(http1_parse_response(bad, sizeof(bad) - 1, 0, &resp, &err), -1);
    ck_assert_uint_eq(resp.num_headers, 0);
    ck_assert_int_eq(resp.status, 0);
}
END_TEST

START_TEST(test_resp_header_limit)
{
    char buf[64 + (HTTP1_MAX_HEADERS + 1) * 32];
    for (size_t n = HTTP1_MAX_HEADERS; n <= HTTP1_MAX_HEADERS + 1; n++) {
        size_t off = (size_t)snprintf(buf, sizeof(buf), SL), last_line = 0;
        for (size_t i = 0; i < n; i++) {
            last_line = off;
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "X-%zu: %zu\r\n", i, i);
        }
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\r\n");
        struct parse_case tc = {"headers", buf, off, (int)off, 0, 0, NULL};
        if (n > HTTP1_MAX_HEADERS) {
            tc.ret = -1;
            tc.status = 431;
            tc.offset = last_line;
            tc.reason = "too many headers";
        }
        struct http1_response resp;
        run_whole(&tc, parse_resp, &resp);
        run_bytewise(&tc, parse_resp, &resp);
    }
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
http1_parse_suite(void)
{
    Suite *s = suite_create("http1_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_parse_whole, 0, NELEM(parse_cases));
    tcase_add_loop_test(tc, test_parse_bytewise, 0, NELEM(parse_cases));
    tcase_add_loop_test(tc, test_parse_split, 0, NELEM(parse_cases));
    tcase_add_test(tc, test_parse_fields);
    tcase_add_test(tc, test_header_limit);
    tcase_add_test(tc, test_last_len_beyond);
    tcase_add_loop_test(tc, test_planted_byte, 0, NELEM(planted));
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_loop_test(tc, test_resp_whole, 0, NELEM(resp_cases));
    tcase_add_loop_test(tc, test_resp_bytewise, 0, NELEM(resp_cases));
    tcase_add_loop_test(tc, test_resp_split, 0, NELEM(resp_cases));
    tcase_add_test(tc, test_resp_fields);
    tcase_add_test(tc, test_resp_empty_reason);
    tcase_add_test(tc, test_resp_reset);
    tcase_add_test(tc, test_resp_header_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, test_find_header);
    tcase_add_test(tc, test_value_ok);
    tcase_add_loop_test(tc, test_str_ieq, 0, NELEM(ieq_cases));
    tcase_add_loop_test(tc, test_token_list, 0, NELEM(token_cases));
    tcase_add_loop_test(tc, test_list_next, 0, NELEM(list_cases));
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(http1_parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
