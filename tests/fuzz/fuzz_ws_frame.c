/* fuzz_ws_frame: parses frame after frame under every rule set; checks round trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

static const struct ws_frame_rules fuzz_rules[] = {
    {.allowed_rsv = 0, .require_masked = true},   /* server */
    {.allowed_rsv = 0, .forbid_masked = true},    /* client */
    {.allowed_rsv = 0},                           /* tunnel */
    {.allowed_rsv = 0x4, .require_masked = true}, /* server with deflate */
    {.allowed_rsv = 0x7},                         /* everything allowed */
};

static void
fuzz_same_header(const struct ws_frame_header *a, const struct ws_frame_header *b)
{
    FUZZ_CHECK(a->fin == b->fin && a->rsv == b->rsv && a->opcode == b->opcode);
    FUZZ_CHECK(a->masked == b->masked && a->payload_len == b->payload_len);
    FUZZ_CHECK(!a->masked || memcmp(a->mask, b->mask, 4) == 0);
}

/* Unmasks a copy of the payload in two pieces and compares with the
 * byte-by-byte definition; masking again must restore it. */
static void
fuzz_mask(const uint8_t *payload, size_t n, const uint8_t mask[4], uint8_t *out)
{
    uint8_t *fast = malloc(n + 1);
    FUZZ_CHECK(fast != NULL);
    memcpy(fast, payload, n);
    size_t split = n / 3;
    ws_frame_mask(fast, split, mask, 0);
    ws_frame_mask(fast + split, n - split, mask, split);
    for (size_t i = 0; i < n; i++) {
        out[i] = payload[i] ^ mask[i & 3];
        FUZZ_CHECK(fast[i] == out[i]);
    }
    ws_frame_mask(fast, n, mask, 0);
    FUZZ_CHECK(memcmp(fast, payload, n) == 0);
    free(fast);
}

static void
fuzz_close(const uint8_t *payload, size_t n)
{
    uint16_t code;
    const uint8_t *reason;
    size_t reason_len;
    if (ws_close_parse(payload, n, &code, &reason, &reason_len) != 0) {
        FUZZ_CHECK(n == 1 ||
                   !ws_close_code_valid((uint16_t)(payload[0] << 8 | payload[1])));
        return;
    }
    FUZZ_CHECK(reason_len <= n);
    char text[WS_CONTROL_MAX + 1];
    size_t tl = reason_len < WS_CONTROL_MAX ? reason_len : WS_CONTROL_MAX;
    memcpy(text, reason, tl);
    text[tl] = '\0';
    uint8_t out[WS_CONTROL_MAX];
    size_t m = ws_close_build(out, code, text);
    FUZZ_CHECK(m <= WS_CONTROL_MAX);
    uint16_t code2;
    const uint8_t *reason2;
    size_t reason2_len;
    FUZZ_CHECK(ws_close_parse(out, m, &code2, &reason2, &reason2_len) == 0);
    FUZZ_CHECK(code2 == code);
    FUZZ_CHECK(reason2_len <= strlen(text) && memcmp(reason2, text, reason2_len) == 0);
}

static void
fuzz_stream(const uint8_t *p, size_t left, const struct ws_frame_rules *rules)
{
    uint8_t *scratch = malloc(left + 1);
    FUZZ_CHECK(scratch != NULL);
    while (left > 0) {
        struct ws_frame_header h;
        uint16_t code = 0;
        int rv = ws_frame_parse_header(p, left, rules, &h, &code);
        if (rv == -2)
            break;
        if (rv == -1) {
            FUZZ_CHECK(code == WS_CLOSE_PROTOCOL_ERROR);
            break;
        }
        FUZZ_CHECK(rv >= 2 && rv <= WS_FRAME_MAX_HEADER && (size_t)rv <= left);
        FUZZ_CHECK(!ws_opcode_is_control(h.opcode) || (h.fin && h.payload_len <= 125));
        FUZZ_CHECK((h.rsv & ~rules->allowed_rsv) == 0);
        for (int k = 0; k < rv; k++) {
            struct ws_frame_header hk;
            FUZZ_CHECK(ws_frame_parse_header(p, (size_t)k, rules, &hk, &code) == -2);
        }

        /* Lengths are minimal on the wire, so re-encoding gives the same bytes. */
        uint8_t out[WS_FRAME_MAX_HEADER];
        size_t m = ws_frame_encode_header(out, h.fin, h.rsv, h.opcode,
                                          h.masked ? h.mask : NULL, h.payload_len);
        FUZZ_CHECK(m == (size_t)rv && memcmp(out, p, m) == 0);
        struct ws_frame_header h2;
        FUZZ_CHECK(ws_frame_parse_header(out, m, rules, &h2, &code) == rv);
        fuzz_same_header(&h, &h2);

        p += rv;
        left -= (size_t)rv;
        size_t n = h.payload_len < left ? (size_t)h.payload_len : left;
        const uint8_t *payload = p;
        if (h.masked) {
            fuzz_mask(p, n, h.mask, scratch);
            payload = scratch;
        }
        if (h.opcode == WS_OP_CLOSE && n == h.payload_len)
            fuzz_close(payload, n);
        p += n;
        left -= n;
    }
    free(scratch);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof(fuzz_rules) / sizeof(fuzz_rules[0]); i++)
        fuzz_stream(data, size, &fuzz_rules[i]);
    return 0;
}
