/* upstream_resp: judges an upstream's answer to the upgrade; builds the client's 101. */
#include "gateway/upstream_resp.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "gateway/ws_handshake.h"

/* A response header as counted and located by name. */
struct found {
    const struct http1_header *first;
    size_t count;
};

static struct found
find(const struct http1_response *resp, const char *name)
{
    struct found f = {NULL, 0};
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct http1_header *h = &resp->headers[i];
        if (!http1_str_ieq(h->name, h->name_len, name))
            continue;
        if (f.count++ == 0)
            f.first = h;
    }
    return f;
}

/* True when some `name` header's list holds `token` (case-insensitive). */
static bool
any_list_contains(const struct http1_response *resp, const char *name, const char *token)
{
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct http1_header *h = &resp->headers[i];
        if (http1_str_ieq(h->name, h->name_len, name) &&
            http1_token_list_contains(h->value, h->value_len, token))
            return true;
    }
    return false;
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* An extension element's name: up to its first ';', OWS trimmed. */
static size_t
extension_name(const char *e, size_t n)
{
    const char *semi = memchr(e, ';', n);
    size_t k = semi != NULL ? (size_t)(semi - e) : n;
    while (k > 0 && is_ows(e[k - 1]))
        k--;
    return k;
}

static bool
same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return false;
    }
    return true;
}

/* True when list[0..len) names the extension name[0..n) (case-insensitive). */
static bool
extension_offered(const char *list, size_t len, const char *name, size_t n)
{
    size_t pos = 0, elen;
    const char *e;
    while (http1_list_next(list, len, &pos, &e, &elen))
        if (same_name(e, extension_name(e, elen), name, n))
            return true;
    return false;
}

/* True when list[0..len) holds the element p[0..n) exactly (case-sensitive). */
static bool
protocol_offered(const char *list, size_t len, const char *p, size_t n)
{
    size_t pos = 0, elen;
    const char *e;
    while (http1_list_next(list, len, &pos, &e, &elen))
        if (elen == n && memcmp(e, p, n) == 0)
            return true;
    return false;
}

/* Sec-WebSocket-Accept: exactly one, equal to the value for the offered key. */
static const char *
check_accept(const struct http1_response *resp, const struct upstream_offer *offer)
{
    struct found f = find(resp, "sec-websocket-accept");
    if (f.count == 0)
        return "upstream 101 without Sec-WebSocket-Accept";
    if (f.count > 1)
        return "upstream 101 with several Sec-WebSocket-Accept";
    char want[WS_ACCEPT_LEN + 1];
    if (offer->key == NULL || ws_accept_key(offer->key, offer->key_len, want) != 0)
        return "no key to check Sec-WebSocket-Accept against";
    if (f.first->value_len != WS_ACCEPT_LEN ||
        memcmp(f.first->value, want, WS_ACCEPT_LEN) != 0)
        return "upstream 101 with a wrong Sec-WebSocket-Accept";
    return NULL;
}

/* At most one Sec-WebSocket-Protocol, one of the offered (RFC 6455 §4.1). */
static const char *
check_protocol(const struct http1_response *resp, const struct upstream_offer *offer,
               struct upstream_choice *choice)
{
    struct found f = find(resp, "sec-websocket-protocol");
    if (f.count == 0)
        return NULL;
    if (f.count > 1)
        return "upstream 101 with several Sec-WebSocket-Protocol";
    const struct http1_header *h = f.first;
    if (h->value_len == 0 || memchr(h->value, ',', h->value_len) != NULL)
        return "upstream 101 did not select exactly one subprotocol";
    if (offer->protocols == NULL ||
        !protocol_offered(offer->protocols, offer->protocols_len, h->value, h->value_len))
        return "upstream 101 selected a subprotocol that was not offered";
    choice->protocol = h->value;
    choice->protocol_len = h->value_len;
    return NULL;
}

/* Only offered extensions, each at most once; their parameters as answered. */
static const char *
check_extensions(const struct http1_response *resp, const struct upstream_offer *offer,
                 struct upstream_choice *choice)
{
    struct found f = find(resp, "sec-websocket-extensions");
    if (f.count == 0)
        return NULL;
    /* One line, so that the client's 101 can repeat it as one view. */
    if (f.count > 1)
        return "upstream 101 with several Sec-WebSocket-Extensions";
    const struct http1_header *h = f.first;
    size_t pos = 0, elen, count = 0;
    const char *e;
    while (http1_list_next(h->value, h->value_len, &pos, &e, &elen)) {
        size_t n = extension_name(e, elen);
        count++;
        if (n == 0)
            return "upstream 101 with an unnamed extension";
        if (offer->extensions == NULL ||
            !extension_offered(offer->extensions, offer->extensions_len, e, n))
            return "upstream 101 selected an extension that was not offered";
        /* A name answered twice: RFC 7692 §7 clients fail the connection. */
        if (extension_offered(h->value, (size_t)(e - h->value), e, n))
            return "upstream 101 selected an extension twice";
    }
    if (count > 0) { /* an empty list selects nothing */
        choice->extensions = h->value;
        choice->extensions_len = h->value_len;
    }
    return NULL;
}

static const char *
check_101(const struct http1_response *resp, const struct upstream_offer *offer,
          struct upstream_choice *choice)
{
    const char *why;
    if (resp->minor_version < 1)
        return "upstream 101 over HTTP/1.0";
    if (!any_list_contains(resp, "upgrade", "websocket"))
        return "upstream 101 without Upgrade: websocket";
    if (!any_list_contains(resp, "connection", "upgrade"))
        return "upstream 101 without Connection: upgrade";
    if ((why = check_accept(resp, offer)) != NULL)
        return why;
    if ((why = check_protocol(resp, offer, choice)) != NULL)
        return why;
    return check_extensions(resp, offer, choice);
}

enum upstream_verdict
upstream_resp_check(const struct http1_response *resp, const struct upstream_offer *offer,
                    struct upstream_choice *choice)
{
    memset(choice, 0, sizeof(*choice));
    if (resp->status >= 400 && resp->status <= 599)
        return UPSTREAM_REFUSED;
    if (resp->status != 101) {
        choice->reason = "upstream answered neither 101 nor an error status";
        return UPSTREAM_INVALID;
    }
    const char *why = check_101(resp, offer, choice);
    if (why != NULL) {
        memset(choice, 0, sizeof(*choice));
        choice->reason = why;
        return UPSTREAM_INVALID;
    }
    return UPSTREAM_ACCEPTED;
}

/* Appends s[0..n) to out[0..cap) at *len; false when it does not fit. */
static bool
append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (out == NULL || n > cap - *len)
        return false;
    memcpy(out + *len, s, n);
    *len += n;
    return true;
}

static bool
append_line(char *out, size_t cap, size_t *len, const char *name, const char *v, size_t n)
{
    return append(out, cap, len, name, strlen(name)) && append(out, cap, len, ": ", 2) &&
           append(out, cap, len, v, n) && append(out, cap, len, "\r\n", 2);
}

int
upstream_resp_client_101(const char *key, size_t key_len,
                         const struct upstream_choice *choice, char *out, size_t cap)
{
    static const char status[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    char accept[WS_ACCEPT_LEN + 1];
    if (key == NULL || ws_accept_key(key, key_len, accept) != 0)
        return -1;
    size_t len = 0;
    if (!append(out, cap, &len, status, sizeof(status) - 1) ||
        !append_line(out, cap, &len, "Sec-WebSocket-Accept", accept, WS_ACCEPT_LEN))
        return -1;
    /* A choice's views come from a parsed head; checked anyway, as whatever
     * is written here reaches the client verbatim. */
    if (choice->protocol != NULL && choice->protocol_len > 0 &&
        (!http1_value_ok(choice->protocol, choice->protocol_len) ||
         !append_line(out, cap, &len, "Sec-WebSocket-Protocol", choice->protocol,
                      choice->protocol_len)))
        return -1;
    if (choice->extensions != NULL && choice->extensions_len > 0 &&
        (!http1_value_ok(choice->extensions, choice->extensions_len) ||
         !append_line(out, cap, &len, "Sec-WebSocket-Extensions", choice->extensions,
                      choice->extensions_len)))
        return -1;
    if (!append(out, cap, &len, "\r\n", 2) || len > INT_MAX)
        return -1;
    return (int)len;
}
