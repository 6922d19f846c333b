/* ws_handshake: RFC 6455 §4.2.1 handshake checks and the Sec-WebSocket-Accept key. */
#include "gateway/ws_handshake.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

/* RFC 6455 §1.3: appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int
hs_fail(struct ws_hs_error *err, int status, const char *reason)
{
    err->status = status;
    err->reason = reason;
    return -1;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* uri-host [":" port] (RFC 9110 §7.2): a reg-name or a bracketed IP literal. */
static bool
host_valid(const char *h, size_t len)
{
    static const char reg_name_extra[] = "-._~!$&'()*+,;=%";
    size_t i = 0;
    if (len > 0 && h[0] == '[') {
        for (i = 1; i < len && h[i] != ']'; i++)
            if (hex_value(h[i]) < 0 && h[i] != ':' && h[i] != '.')
                return false;
        if (i == len || i == 1)
            return false;
        i++;
    } else {
        for (; i < len && h[i] != ':'; i++)
            if (!is_alnum(h[i]) &&
                memchr(reg_name_extra, h[i], sizeof(reg_name_extra) - 1) == NULL)
                return false;
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (h[i] != ':')
        return false;
    for (i++; i < len; i++)
        if (!is_digit(h[i]))
            return false;
    return true;
}

/* Returns why path[0..len) could dodge a route prefix, or NULL. A segment is
 * "." or ".." spelled with dots or %2e; segments end at "/" or "\" and at
 * their percent-encodings too, which some upstreams decode into separators. */
static const char *
path_problem(const char *path, size_t len)
{
    size_t seg_len = 0, dots = 0;
    for (size_t i = 0; i <= len; i++) {
        int ch = i == len ? '/' : (unsigned char)path[i];
        if (ch == '%') {
            if (len - i < 3 || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0)
                return "invalid percent-encoding in path";
            ch = hex_value(path[i + 1]) << 4 | hex_value(path[i + 2]);
            i += 2;
        }
        if (ch == '/' || ch == '\\') {
            if (seg_len > 0 && seg_len == dots && dots <= 2)
                return "dot-segment in path";
            seg_len = dots = 0;
            continue;
        }
        seg_len++;
        if (ch == '.')
            dots++;
    }
    return NULL;
}

int
ws_handshake_target(const struct http1_request *req, struct ws_handshake *hs,
                    struct ws_hs_error *err)
{
    memset(hs, 0, sizeof(*hs));
    err->status = 0;
    err->reason = NULL;

    size_t nhost = http1_header_count(req, "host");
    if (nhost == 0)
        return hs_fail(err, 400, "missing Host");
    if (nhost > 1)
        return hs_fail(err, 400, "duplicate Host");
    const struct http1_header *h = &req->headers[http1_find_header(req, "host")];
    if (!host_valid(h->value, h->value_len))
        return hs_fail(err, 400, "invalid Host");
    hs->host = h->value;
    hs->host_len = h->value_len;

    /* Absolute-form is not taken apart: no WebSocket client sends it. */
    const char *t = req->target;
    size_t tlen = req->target_len;
    if (tlen == 0 || t[0] != '/')
        return hs_fail(err, 400, "request-target not in origin-form");
    if (memchr(t, '#', tlen) != NULL)
        return hs_fail(err, 400, "fragment in request-target");
    const char *q = memchr(t, '?', tlen);
    size_t path_len = q != NULL ? (size_t)(q - t) : tlen;
    const char *problem = path_problem(t, path_len);
    if (problem != NULL)
        return hs_fail(err, 400, problem);
    hs->path = t;
    hs->path_len = path_len;
    if (q != NULL) {
        hs->query = q + 1;
        hs->query_len = tlen - path_len - 1;
    }
    return 0;
}

static const char *
check_method(const struct http1_request *req, struct ws_handshake *hs)
{
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
        return "method not allowed";
    return NULL;
}

static const char *
check_version(const struct http1_request *req, struct ws_handshake *hs)
{
    return req->minor_version >= 1 ? NULL : "HTTP/1.1 required";
}

/* An upgrade request has no body (RFC 6455 §4.1): bytes after the head are
 * frames, and a body would be misread as them (and, proxied, desynchronise
 * the two sides' framing). */
static const char *
check_no_body(const struct http1_request *req, struct ws_handshake *hs)
{
    if (http1_find_header(req, "transfer-encoding") >= 0)
        return "upgrade request with a body";
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (http1_str_ieq(h->name, h->name_len, "content-length") &&
            !(h->value_len == 1 && h->value[0] == '0'))
            return "upgrade request with a body";
    }
    return NULL;
}

/* True when any field line named `name` lists `token`: repeated lines of a
 * list-valued field are one list (RFC 9110 §5.3). */
static bool
any_lists(const struct http1_request *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (http1_str_ieq(h->name, h->name_len, name) &&
            http1_token_list_contains(h->value, h->value_len, token))
            return true;
    }
    return false;
}

static const char *
check_upgrade(const struct http1_request *req, struct ws_handshake *hs)
{
    if (http1_find_header(req, "upgrade") < 0)
        return "missing Upgrade";
    return any_lists(req, "upgrade", "websocket") ? NULL : "Upgrade is not websocket";
}

static const char *
check_connection(const struct http1_request *req, struct ws_handshake *hs)
{
    return any_lists(req, "connection", "upgrade") ? NULL : "Connection lacks upgrade";
}

static const char *
check_ws_version(const struct http1_request *req, struct ws_handshake *hs)
{
    size_t n = http1_header_count(req, "sec-websocket-version");
    if (n == 0)
        return "missing Sec-WebSocket-Version";
    if (n > 1)
        return "duplicate Sec-WebSocket-Version";
    const struct http1_header *h =
        &req->headers[http1_find_header(req, "sec-websocket-version")];
    if (h->value_len != 2 || memcmp(h->value, "13", 2) != 0)
        return "unsupported Sec-WebSocket-Version";
    return NULL;
}

static bool
is_base64(char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

/* base64 of 16 bytes is 22 characters and "==" (RFC 6455 §4.1 item 7). */
static bool
key_valid(const char *k, size_t len)
{
    if (len != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64(k[i]))
            return false;
    return true;
}

static const char *
check_key(const struct http1_request *req, struct ws_handshake *hs)
{
    size_t n = http1_header_count(req, "sec-websocket-key");
    if (n == 0)
        return "missing Sec-WebSocket-Key";
    if (n > 1)
        return "duplicate Sec-WebSocket-Key";
    const struct http1_header *h =
        &req->headers[http1_find_header(req, "sec-websocket-key")];
    if (!key_valid(h->value, h->value_len))
        return "invalid Sec-WebSocket-Key";
    hs->key = h->value;
    hs->key_len = h->value_len;
    return NULL;
}

/* The checks in the order they are made; the first that fails answers. */
struct hs_check {
    const char *(*check)(const struct http1_request *req, struct ws_handshake *hs);
    int status; /* answered when check returns a reason */
};

static const struct hs_check hs_checks[] = {
    {check_method, 405},  {check_version, 400},    {check_no_body, 400},
    {check_upgrade, 426}, {check_connection, 400}, {check_ws_version, 426},
    {check_key, 400},
};

int
ws_handshake_validate(const struct http1_request *req, struct ws_handshake *hs,
                      struct ws_hs_error *err)
{
    err->status = 0;
    err->reason = NULL;
    hs->key = hs->origin = NULL;
    hs->key_len = hs->origin_len = 0;
    for (size_t i = 0; i < sizeof(hs_checks) / sizeof(hs_checks[0]); i++) {
        const char *reason = hs_checks[i].check(req, hs);
        if (reason != NULL)
            return hs_fail(err, hs_checks[i].status, reason);
    }
    int o = http1_find_header(req, "origin");
    if (o >= 0) {
        hs->origin = req->headers[o].value;
        hs->origin_len = req->headers[o].value_len;
    }
    return 0;
}

/* SHA-1 fetched once: an implicit fetch per digest cost more than the
 * digest itself. A fetched EVP_MD may be shared by threads. */
static EVP_MD *sha1;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void
fetch_sha1(void)
{
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int
ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    pthread_once(&sha1_once, fetch_sha1);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = sha1 != NULL && ctx != NULL && EVP_DigestInit_ex(ctx, sha1, NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, key_len) == 1 &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    /* 20 bytes encode to exactly WS_ACCEPT_LEN characters plus the NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    return 0;
}
