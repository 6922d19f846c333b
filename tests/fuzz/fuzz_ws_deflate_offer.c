/* fuzz_ws_deflate_offer: Sec-WebSocket-Extensions values; accepted answers re-read. */
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that reading past the value is caught. */
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    struct ws_deflate_params p;
    enum ws_deflate_verdict v = ws_deflate_negotiate(copy, size, &p);
    FUZZ_CHECK(v == WS_DEFLATE_MALFORMED || v == WS_DEFLATE_DECLINED ||
               v == WS_DEFLATE_ACCEPTED);
    if (v == WS_DEFLATE_ACCEPTED) {
        FUZZ_CHECK(p.server_max_window_bits >= 9 && p.server_max_window_bits <= 15);
        /* The answer, read as an offer, is accepted with the same terms. */
        char out[WS_DEFLATE_RESPONSE_MAX];
        size_t n = ws_deflate_response(&p, out);
        FUZZ_CHECK(n < sizeof(out) && strlen(out) == n);
        struct ws_deflate_params q;
        FUZZ_CHECK(ws_deflate_negotiate(out, n, &q) == WS_DEFLATE_ACCEPTED);
        FUZZ_CHECK(q.server_no_context_takeover == p.server_no_context_takeover);
        FUZZ_CHECK(q.client_no_context_takeover == p.client_no_context_takeover);
        FUZZ_CHECK(q.server_max_window_bits == p.server_max_window_bits);
    }
    free(copy);
    return 0;
}
