/* fuzz_ws_handshake: parse, extract the target, validate; verdicts stay sane. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
view_in(const char *buf, size_t len, const char *p, size_t n)
{
    if (p == NULL) {
        if (n != 0)
            abort();
        return;
    }
    if (p < buf || n > len || (size_t)(p - buf) > len - n)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_request req;
    struct http1_error perr;
    struct ws_handshake hs;
    struct ws_hs_error err;

    int r = http1_parse_request(buf, size, 0, &req, &perr);
    if (r < 0)
        return 0;
    if (ws_handshake_target(&req, &hs, &err) != 0) {
        if (err.status != 400 || err.reason == NULL)
            abort();
        return 0;
    }
    view_in(buf, (size_t)r, hs.host, hs.host_len);
    view_in(buf, (size_t)r, hs.path, hs.path_len);
    view_in(buf, (size_t)r, hs.query, hs.query_len);
    if (hs.path == NULL || hs.path_len == 0 || hs.path[0] != '/' ||
        memchr(hs.path, '?', hs.path_len) != NULL || hs.host_len == 0)
        abort();

    if (ws_handshake_validate(&req, &hs, &err) != 0) {
        if ((err.status != 400 && err.status != 405 && err.status != 426) ||
            err.reason == NULL)
            abort();
        return 0;
    }
    view_in(buf, (size_t)r, hs.key, hs.key_len);
    view_in(buf, (size_t)r, hs.origin, hs.origin_len);
    if (hs.key_len != 24 || err.status != 0)
        abort();
    char accept[WS_ACCEPT_LEN + 1];
    if (ws_accept_key(hs.key, hs.key_len, accept) != 0 || strlen(accept) != WS_ACCEPT_LEN)
        abort();
    return 0;
}
