/* fuzz_ws_inflate: compressed messages from the input, in input-derived pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws_deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

/* The first byte picks the terms and the limit; the rest is split into
 * messages at 0xA5 0x5A markers, each fed in pieces of 1 to 16 bytes. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t cfg = data[0];
    struct ws_deflate_params p = {.client_no_context_takeover = (cfg & 1) != 0,
                                  .server_no_context_takeover = (cfg & 2) != 0,
                                  .server_max_window_bits =
                                      (uint8_t)(9 + (cfg >> 2) % 7)};
    size_t limit = (cfg & 0x80) ? 1u << 20 : 4096;
    struct ws_deflate *d = ws_deflate_new(&p);
    FUZZ_CHECK(d != NULL);
    const uint8_t *s = data + 1, *end = data + size;
    uint64_t rng = 0x9e3779b97f4a7c15u ^ size;
    while (s < end) {
        const uint8_t *m = s;
        while (m + 1 < end && !(m[0] == 0xA5 && m[1] == 0x5A))
            m++;
        const uint8_t *msg_end = m + 1 < end ? m : end;
        struct ws_inflate_buf buf = {0};
        enum ws_inflate_result r = WS_INFLATE_OK;
        for (const uint8_t *q = s; q < msg_end && r == WS_INFLATE_OK;) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t n = 1 + (size_t)(rng % 16);
            if (n > (size_t)(msg_end - q))
                n = (size_t)(msg_end - q);
            r = ws_deflate_inflate(d, q, n, false, &buf, limit);
            q += n;
        }
        if (r == WS_INFLATE_OK)
            r = ws_deflate_inflate(d, NULL, 0, true, &buf, limit);
        FUZZ_CHECK(buf.cap <= limit + 1 && buf.len <= buf.cap);
        FUZZ_CHECK(r != WS_INFLATE_OK || buf.len <= limit);
        /* Whatever came out compresses and reads back the same. */
        if (r == WS_INFLATE_OK) {
            uint8_t *z;
            size_t zlen;
            FUZZ_CHECK(ws_deflate_compress(d, buf.data, buf.len, &z, &zlen) == 0);
            struct ws_deflate_params rp = {.server_max_window_bits = 15};
            struct ws_deflate *back = ws_deflate_new(&rp);
            struct ws_inflate_buf b2 = {0};
            if (!p.server_no_context_takeover) {
                /* With context the stream depends on earlier messages: only
                 * a fresh codec's first message can be read alone. */
                free(z);
                z = NULL;
            }
            if (z != NULL) {
                FUZZ_CHECK(ws_deflate_inflate(back, z, zlen, true, &b2, limit) ==
                           WS_INFLATE_OK);
                FUZZ_CHECK(b2.len == buf.len &&
                           (buf.len == 0 || memcmp(b2.data, buf.data, buf.len) == 0));
            }
            free(b2.data);
            free(z);
            ws_deflate_free(back);
        }
        free(buf.data);
        if (r != WS_INFLATE_OK)
            break;
        s = msg_end + 2;
    }
    ws_deflate_free(d);
    return 0;
}
