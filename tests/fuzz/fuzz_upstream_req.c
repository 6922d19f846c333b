/* fuzz_upstream_req: a client head rebuilt for an upstream parses and leaks nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/upstream_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Client heads with more headers are left out: the gateway adds up to eight
 * of its own, which could take the result past HTTP1_MAX_HEADERS. */
#define CLIENT_HEADERS_MAX (HTTP1_MAX_HEADERS - 12)

static const struct upstream_header subject[] = {{"X-Auth-Subject", "alice"}};
static const struct upstream_header nobody[] = {{"X-Auth-Subject", NULL}};
static const struct upstream_header two[] = {{"X-Auth-Subject", "bob"},
                                             {"X-Auth-Roles", "admin, ops"}};

/* Headers that must never reach an upstream, whatever the parameters. */
static const char *const never[] = {
    "keep-alive",       "te",
    "trailer",          "transfer-encoding",
    "proxy-connection", "forwarded",
    "x-real-ip",        "proxy-authorization",
    "http2-settings",   "x-forwarded-port",
};

/* Headers the result carries exactly once / at most once. */
static const char *const once[] = {"host", "upgrade", "connection", "x-forwarded-proto",
                                   "x-forwarded-host"};
static const char *const at_most_once[] = {"x-request-id", "x-forwarded-for",
                                           "sec-websocket-protocol",
                                           "sec-websocket-extensions"};

/* ASCII case and '_' versus '-' folded, as upstreams that map names to
 * CGI-style variables do. */
static bool
named_like(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; lit[i] != '\0'; i++) {
        if (i == n)
            return false;
        unsigned char a = (unsigned char)s[i], b = (unsigned char)lit[i];
        a = a == '_' ? '-' : a >= 'A' && a <= 'Z' ? (unsigned char)(a | 0x20) : a;
        b = b == '_' ? '-' : b >= 'A' && b <= 'Z' ? (unsigned char)(b | 0x20) : b;
        if (a != b)
            return false;
    }
    return i == n;
}

static size_t
count_named(const struct http1_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        n += named_like(req->headers[i].name, req->headers[i].name_len, name);
    return n;
}

/* Elements of v[0..n) split at every `sep`, OWS trimmed (as auth/token.c
 * reads cookies and subprotocols): calls fn on each until it says true. */
static bool
any_element(const char *v, size_t n, char sep,
            bool (*fn)(const char *e, size_t len, const char *arg), const char *arg)
{
    size_t pos = 0;
    while (pos <= n) {
        const char *e = v + pos;
        const char *end = memchr(e, sep, n - pos);
        size_t len = end ? (size_t)(end - e) : n - pos;
        pos += len + 1;
        while (len > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            len--;
        }
        while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
            len--;
        if (fn(e, len, arg))
            return true;
    }
    return false;
}

static bool
has_prefix(const char *e, size_t len, const char *prefix)
{
    return len >= strlen(prefix) && memcmp(e, prefix, strlen(prefix)) == 0;
}

static bool
is_cookie(const char *e, size_t len, const char *name)
{
    const char *eq = memchr(e, '=', len);
    if (eq == NULL)
        return false;
    size_t k = (size_t)(eq - e);
    while (k > 0 && (e[k - 1] == ' ' || e[k - 1] == '\t'))
        k--;
    return k == strlen(name) && memcmp(e, name, k) == 0;
}

static bool
is_query_param(const char *e, size_t len, const char *name)
{
    const char *eq = memchr(e, '=', len);
    size_t k = eq ? (size_t)(eq - e) : len;
    return k == strlen(name) && memcmp(e, name, k) == 0;
}

static bool
identity_named(const struct upstream_req_params *p, const char *name)
{
    for (size_t k = 0; k < p->nidentity; k++)
        if (named_like(p->identity[k].name, strlen(p->identity[k].name), name))
            return true;
    return false;
}

/* The consumed credential is nowhere in the result. */
static void
check_credentials(const struct http1_request *out, const struct ws_handshake *hs,
                  const struct upstream_req_params *p)
{
    if (p->drop_query_param != NULL && hs->query != NULL &&
        any_element(hs->query, hs->query_len, '&', is_query_param, p->drop_query_param))
        abort();
    for (size_t i = 0; i < out->num_headers; i++) {
        const struct http1_header *h = &out->headers[i];
        if (p->drop_authorization && !identity_named(p, "authorization") &&
            http1_str_ieq(h->name, h->name_len, "authorization"))
            abort();
        if (p->drop_bearer_protocol &&
            http1_str_ieq(h->name, h->name_len, "sec-websocket-protocol") &&
            any_element(h->value, h->value_len, ',', has_prefix, "bearer."))
            abort();
        if (p->drop_cookie != NULL && http1_str_ieq(h->name, h->name_len, "cookie") &&
            any_element(h->value, h->value_len, ';', is_cookie, p->drop_cookie))
            abort();
    }
}

static void
check_output(const char *out, int n, const struct upstream_req_params *p)
{
    struct http1_request req;
    struct http1_error err;
    if (http1_parse_request(out, (size_t)n, 0, &req, &err) != n)
        abort();
    if (req.method_len != 3 || memcmp(req.method, "GET", 3) != 0 ||
        req.minor_version != 1)
        abort();
    struct ws_handshake hs;
    struct ws_hs_error herr;
    if (ws_handshake_target(&req, &hs, &herr) != 0)
        abort(); /* a dot-segment or a bad Host made it through */

    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (count_named(&req, never[i]) != 0)
            abort();
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        if (count_named(&req, once[i]) != 1)
            abort();
    for (size_t i = 0; i < sizeof(at_most_once) / sizeof(at_most_once[0]); i++)
        if (count_named(&req, at_most_once[i]) > 1)
            abort();

    /* Identity headers: ours only (those with a value), last, in order. */
    size_t ours = 0, found = 0;
    const struct upstream_header *with_value[8];
    for (size_t k = 0; k < p->nidentity; k++)
        if (p->identity[k].value != NULL)
            with_value[ours++] = &p->identity[k];
    for (size_t i = 0; i < req.num_headers; i++) {
        const struct http1_header *h = &req.headers[i];
        for (size_t k = 0; k < p->nidentity; k++) {
            if (!named_like(h->name, h->name_len, p->identity[k].name))
                continue;
            if (found == ours || i != req.num_headers - ours + found ||
                h->value_len != strlen(with_value[found]->value) ||
                memcmp(h->value, with_value[found]->value, h->value_len) != 0)
                abort();
            found++;
            break;
        }
    }
    if (found != ours)
        abort();
    check_credentials(&req, &hs, p);
}

/* Builds with p into a roomy and a tight buffer; they agree, and a result
 * passes check_output. */
static void
build(const struct upstream_req_params *p, char *big, size_t big_cap)
{
    int n = upstream_req_build(p, big, big_cap);
    if (n < 0) {
        /* Only a strip that cuts a segment into a dot-segment is refused. */
        if (p->strip_len == 0 || p->strip_len >= p->hs->path_len ||
            p->hs->path[p->strip_len] == '/')
            abort();
        return;
    }
    if ((size_t)n > big_cap)
        abort();
    check_output(big, n, p);

    char small[300];
    int m = upstream_req_build(p, small, sizeof(small));
    if (m >= 0 && (m != n || memcmp(small, big, (size_t)n) != 0))
        abort();
    if (m < 0 && (size_t)n <= sizeof(small))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_request req;
    struct http1_error perr;
    struct ws_handshake hs;
    struct ws_hs_error herr;

    if (http1_parse_request(buf, size, 0, &req, &perr) < 0 ||
        req.num_headers > CLIENT_HEADERS_MAX ||
        ws_handshake_target(&req, &hs, &herr) != 0)
        return 0;

    size_t cap = 2 * size + 2048;
    char *big = malloc(cap);
    if (big == NULL)
        return 0;

    struct upstream_req_params all = {
        .req = &req,
        .hs = &hs,
        .strip_len = 4,
        .upstream_path = "/api",
        .client_ip = "203.0.113.7",
        .client_tls = true,
        .request_id = "rid-1",
        .drop_query_param = "access_token",
        .drop_cookie = "session",
        .drop_authorization = true,
        .drop_bearer_protocol = true,
        .identity = subject,
        .nidentity = 1,
    };
    build(&all, big, cap);

    struct upstream_req_params none = {
        .req = &req,
        .hs = &hs,
        .upstream_path = "",
        .client_ip = "",
        .identity = nobody,
        .nidentity = 1,
    };
    build(&none, big, cap);

    /* The strip cuts anywhere, as a prefix without a trailing '/' may. */
    struct upstream_req_params cut = {
        .req = &req,
        .hs = &hs,
        .strip_len = (size + data[size - 1]) % (hs.path_len + 1),
        .upstream_path = "/up/stream",
        .host = "backend.internal:9000",
        .client_ip = "2001:db8::1",
        .request_id = "r",
        .drop_query_param = "a",
        .drop_cookie = "a",
        .drop_bearer_protocol = true,
        .identity = two,
        .nidentity = 2,
    };
    build(&cut, big, cap);

    free(big);
    return 0;
}
