/* response: the HTTP responses the gateway writes before a connection upgrades. */
#include "gateway/response.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

/* Every status the gateway answers with, and the headers each requires. */
static const struct {
    int status;
    const char *reason;
    const char *headers; /* extra fixed header lines, CRLF-terminated */
} statuses[] = {
    {400, "Bad Request", ""},
    {401, "Unauthorized", ""},
    {403, "Forbidden", ""},
    {404, "Not Found", ""},
    {405, "Method Not Allowed", "Allow: GET\r\n"},
    {408, "Request Timeout", ""},
    {426, "Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
    {429, "Too Many Requests", ""},
    {431, "Request Header Fields Too Large", ""},
    {500, "Internal Server Error", ""},
    {502, "Bad Gateway", ""},
    {503, "Service Unavailable", ""},
    {504, "Gateway Timeout", ""},
};

static int
status_index(int status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status)
            return (int)i;
    return -1;
}

const char *
gw_response_reason(int status)
{
    int i = status_index(status);
    return i < 0 ? NULL : statuses[i].reason;
}

int
gw_response_error(struct evbuffer *out, int status, const char *body,
                  const struct gw_response_extra *extra)
{
    int i = status_index(status);
    if (i < 0)
        return -1;
    if (body == NULL)
        body = statuses[i].reason;
    /* A response with Upgrade lists it in Connection (RFC 9110 §7.8). */
    const char *connection = status == 426 ? "Upgrade, close" : "close";
    char auth[600] = "";
    char retry[64] = "";
    if (extra != NULL && extra->www_authenticate != NULL &&
        (status == 401 || status == 403))
        snprintf(auth, sizeof(auth), "WWW-Authenticate: %s\r\n", extra->www_authenticate);
    if (extra != NULL && extra->retry_after > 0)
        snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", extra->retry_after);
    int n = evbuffer_add_printf(out,
                                "HTTP/1.1 %d %s\r\n"
                                "%s%s%s"
                                "Connection: %s\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "Content-Length: %zu\r\n"
                                "Cache-Control: no-store\r\n"
                                "\r\n"
                                "%s\n",
                                status, statuses[i].reason, statuses[i].headers, auth,
                                retry, connection, strlen(body) + 1, body);
    return n < 0 ? -1 : 0;
}

int
gw_response_upgrade(struct evbuffer *out, const char *key, size_t key_len,
                    const char *extensions)
{
    char accept[WS_ACCEPT_LEN + 1];
    if (ws_accept_key(key, key_len, accept) != 0)
        return -1;
    int n = evbuffer_add_printf(out,
                                "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: %s\r\n"
                                "%s%s%s"
                                "\r\n",
                                accept, extensions ? "Sec-WebSocket-Extensions: " : "",
                                extensions ? extensions : "", extensions ? "\r\n" : "");
    return n < 0 ? -1 : 0;
}
