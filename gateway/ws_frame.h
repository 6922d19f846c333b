/* ws_frame: the RFC 6455 frame codec; pure functions over byte buffers. */
#ifndef WSGATE_WS_FRAME_H
#define WSGATE_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 §7.4.1). */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never on the wire */
    WS_CLOSE_ABNORMAL = 1006,  /* never on the wire */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_EXTENSION = 1010,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_TRY_AGAIN = 1013,
    WS_CLOSE_BAD_GATEWAY = 1014, /* IANA: a gateway's upstream failed */
    WS_CLOSE_TLS = 1015,         /* never on the wire */
};

/* The largest frame header: 2 bytes, 8 of extended length, 4 of mask. */
#define WS_FRAME_MAX_HEADER 14
/* Control frames carry at most this many payload bytes. */
#define WS_CONTROL_MAX 125

struct ws_frame_header {
    bool fin;
    uint8_t rsv;    /* RSV1..3 as bits 0x4, 0x2, 0x1 */
    uint8_t opcode; /* enum ws_opcode */
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
};

/* What the parser accepts: reserved bits an extension has claimed, and
 * whether frames must be masked (server side) or must not be (client). */
struct ws_frame_rules {
    uint8_t allowed_rsv; /* e.g. 0x4 when permessage-deflate is on */
    bool require_masked; /* a server receiving from a client */
    bool forbid_masked;  /* a client receiving from a server */
};

/* Parses one frame header from buf[0..len). Returns the header length (2 to
 * 14) when complete, -2 when more bytes are needed, -1 when the header
 * violates RFC 6455 — reserved bits not allowed by rules, a reserved opcode,
 * a fragmented or over-125-byte control frame, a 64-bit length with its top
 * bit set, a mask where none may be or none where one must be — with the
 * close code to send (1002) in *close_code. Does not look at the payload. */
int ws_frame_parse_header(const uint8_t *buf, size_t len,
                          const struct ws_frame_rules *rules, struct ws_frame_header *h,
                          uint16_t *close_code);

/* Encodes a frame header into out and returns its length (2 to 14). mask is
 * NULL for an unmasked frame (server to client). */
size_t ws_frame_encode_header(uint8_t out[WS_FRAME_MAX_HEADER], bool fin, uint8_t rsv,
                              uint8_t opcode, const uint8_t *mask, uint64_t payload_len);

/* XORs data[0..len) with mask, where data starts at byte `offset` of the
 * payload (so a payload can be unmasked in pieces). */
void ws_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* True for data opcodes and continuation, false for control opcodes. */
static inline bool
ws_opcode_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

/* True when a close frame may carry `code` on the wire (RFC 6455 §7.4):
 * 1000-1003, 1007-1011, 1012-1014 (IANA), and 3000-4999. */
bool ws_close_code_valid(uint16_t code);

/* Parses a close frame's (unmasked) payload. An empty payload yields code
 * 1005 and an empty reason. Returns 0, or -1 when the payload is one byte
 * long or its code may not be sent (1002). Does not validate the reason's
 * UTF-8. */
int ws_close_parse(const uint8_t *payload, size_t len, uint16_t *code,
                   const uint8_t **reason, size_t *reason_len);

/* Builds a close payload (code, then reason truncated to fit 125 bytes) into
 * out; returns its length. */
size_t ws_close_build(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason);

#endif
