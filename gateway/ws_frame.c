/* ws_frame: the RFC 6455 frame codec — headers, masking and close payloads. */
#include "gateway/ws_frame.h"

#include <stdint.h>
#include <string.h>

/* Opcodes RFC 6455 §5.2 defines; every other value is reserved. */
static const bool ws_opcode_known[16] = {
    [WS_OP_CONTINUATION] = true, [WS_OP_TEXT] = true, [WS_OP_BINARY] = true,
    [WS_OP_CLOSE] = true,        [WS_OP_PING] = true, [WS_OP_PONG] = true,
};

/* Close codes that may appear on the wire (RFC 6455 §7.4, IANA registry);
 * everything outside these ranges is invalid. */
static const struct {
    uint16_t lo;
    uint16_t hi;
} ws_close_ranges[] = {
    {1000, 1003}, /* normal, going away, protocol error, unsupported data */
    {1007, 1014}, /* invalid data .. bad gateway; 1004-1006 are reserved */
    {3000, 4999}, /* registered (3xxx) and private (4xxx) use */
};

static uint64_t
ws_be_load(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void
ws_be_store(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

static int
ws_frame_fail(uint16_t *close_code)
{
    *close_code = WS_CLOSE_PROTOCOL_ERROR;
    return -1;
}

int
ws_frame_parse_header(const uint8_t *buf, size_t len, const struct ws_frame_rules *rules,
                      struct ws_frame_header *h, uint16_t *close_code)
{
    if (len < 2)
        return -2;

    /* Everything the first two bytes say is checked before waiting for more,
     * so a violation is reported as early as it can be seen. */
    bool fin = (buf[0] & 0x80) != 0;
    uint8_t rsv = (buf[0] >> 4) & 0x7;
    uint8_t opcode = buf[0] & 0x0F;
    bool masked = (buf[1] & 0x80) != 0;
    uint8_t len7 = buf[1] & 0x7F;

    if ((rsv & ~rules->allowed_rsv) != 0 || !ws_opcode_known[opcode])
        return ws_frame_fail(close_code);
    if (ws_opcode_is_control(opcode) && (!fin || len7 > WS_CONTROL_MAX))
        return ws_frame_fail(close_code);
    if ((masked && rules->forbid_masked) || (!masked && rules->require_masked))
        return ws_frame_fail(close_code);

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t need = 2 + ext + (masked ? 4 : 0);
    if (len < 2 + ext)
        return -2;

    uint64_t payload_len = ext == 0 ? len7 : ws_be_load(buf + 2, ext);
    /* RFC 6455 §5.2: the top bit of a 64-bit length is 0, and the minimal
     * number of bytes MUST be used (browsers fail non-minimal lengths too). */
    if (ext == 8 && (payload_len >> 63) != 0)
        return ws_frame_fail(close_code);
    if ((ext == 2 && payload_len < 126) || (ext == 8 && payload_len <= UINT16_MAX))
        return ws_frame_fail(close_code);
    if (len < need)
        return -2;

    h->fin = fin;
    h->rsv = rsv;
    h->opcode = opcode;
    h->masked = masked;
    if (masked)
        memcpy(h->mask, buf + 2 + ext, 4);
    else
        memset(h->mask, 0, sizeof(h->mask));
    h->payload_len = payload_len;
    return (int)need;
}

size_t
ws_frame_encode_header(uint8_t out[WS_FRAME_MAX_HEADER], bool fin, uint8_t rsv,
                       uint8_t opcode, const uint8_t *mask, uint64_t payload_len)
{
    size_t n = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F));
    out[1] = mask != NULL ? 0x80 : 0;
    if (payload_len < 126) {
        out[1] |= (uint8_t)payload_len;
    } else if (payload_len <= UINT16_MAX) {
        out[1] |= 126;
        ws_be_store(out + 2, payload_len, 2);
        n += 2;
    } else {
        out[1] |= 127;
        ws_be_store(out + 2, payload_len, 8);
        n += 8;
    }
    if (mask != NULL) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void
ws_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    size_t i = 0;
    unsigned k = (unsigned)(offset & 3);

    /* Bytes up to an 8-byte boundary one at a time, then whole words with the
     * mask rotated to the current phase (8 is a multiple of 4, so the phase
     * stays put across words), then the tail. memcpy keeps the word loads and
     * stores free of alignment and aliasing trouble and compiles to plain
     * moves. */
    while (i < len && ((uintptr_t)(data + i) & 7) != 0) {
        data[i++] ^= mask[k];
        k = (k + 1) & 3;
    }
    if (len - i >= 8) {
        uint8_t m8[8];
        uint64_t m64;
        for (unsigned j = 0; j < 8; j++)
            m8[j] = mask[(k + j) & 3];
        memcpy(&m64, m8, sizeof(m64));
        for (; len - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, data + i, sizeof(w));
            w ^= m64;
            memcpy(data + i, &w, sizeof(w));
        }
    }
    while (i < len) {
        data[i++] ^= mask[k];
        k = (k + 1) & 3;
    }
}

bool
ws_close_code_valid(uint16_t code)
{
    for (size_t i = 0; i < sizeof(ws_close_ranges) / sizeof(ws_close_ranges[0]); i++) {
        if (code >= ws_close_ranges[i].lo && code <= ws_close_ranges[i].hi)
            return true;
    }
    return false;
}

int
ws_close_parse(const uint8_t *payload, size_t len, uint16_t *code, const uint8_t **reason,
               size_t *reason_len)
{
    static const uint8_t empty[1];

    if (len == 0) {
        *code = WS_CLOSE_NO_STATUS;
        *reason = empty;
        *reason_len = 0;
        return 0;
    }
    if (len == 1)
        return -1;
    uint16_t c = (uint16_t)ws_be_load(payload, 2);
    if (!ws_close_code_valid(c))
        return -1;
    *code = c;
    *reason = payload + 2;
    *reason_len = len - 2;
    return 0;
}

size_t
ws_close_build(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason)
{
    /* 1005 means "no status": its wire form is the empty payload, so that
     * echoing what ws_close_parse returned is always correct. */
    if (code == WS_CLOSE_NO_STATUS)
        return 0;

    size_t n = reason != NULL ? strlen(reason) : 0;
    if (n > WS_CONTROL_MAX - 2) {
        /* Cut before the sequence that straddles the limit: back up over
         * continuation bytes (10xxxxxx) to the lead byte of that sequence. */
        n = WS_CONTROL_MAX - 2;
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
            n--;
    }
    ws_be_store(out, code, 2);
    if (n > 0)
        memcpy(out + 2, reason, n);
    return 2 + n;
}
