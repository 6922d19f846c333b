/* ws_deflate: permessage-deflate (RFC 7692) — offer negotiation and the zlib codec. */
#ifndef WSGATE_WS_DEFLATE_H
#define WSGATE_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest response ws_deflate_response writes, with its NUL. */
#define WS_DEFLATE_RESPONSE_MAX 128

/* What was agreed for one connection (the server's side of it). */
struct ws_deflate_params {
    bool server_no_context_takeover; /* we reset our compressor after each message */
    bool client_no_context_takeover; /* the client resets; we reset our inflater */
    uint8_t server_max_window_bits;  /* our LZ77 window, 9..15 */
    bool server_bits_in_response;    /* the offer limited it: answer with the value */
};

/* The outcome of ws_deflate_negotiate. */
enum ws_deflate_verdict {
    WS_DEFLATE_MALFORMED = -1, /* the field value breaks RFC 6455 §9.1's grammar */
    WS_DEFLATE_DECLINED = 0,   /* no permessage-deflate offer we can honour */
    WS_DEFLATE_ACCEPTED = 1,   /* *out holds the first offer we can honour */
};

/* Reads one Sec-WebSocket-Extensions field value value[0..len) — a list of
 * extension offers in the client's order of preference — and picks the first
 * permessage-deflate offer the server can honour (RFC 7692 §5, §7.1). An
 * offer is declined, and the next one considered, when it has an unknown
 * parameter, a parameter twice, a value where none is allowed (the
 * *_no_context_takeover ones), a window-bits value that is not 8..15 without
 * leading zeros (RFC 7692 §7.1.2), or server_max_window_bits=8: zlib's
 * smallest raw-deflate window is 9 bits (2^9 bytes), larger than the 256
 * bytes the client would then allow, so that offer cannot be honoured
 * (§7.1.2.1) — an offer of 9 or more is used as given. client_max_window_bits
 * (with or without a value) needs nothing of us: we inflate with a 15-bit
 * window, which reads any smaller one, and answer without the parameter.
 * Quoted-string values are unescaped before they are checked. Other
 * extensions are skipped. Pure; out is written only on WS_DEFLATE_ACCEPTED. */
enum ws_deflate_verdict ws_deflate_negotiate(const char *value, size_t len,
                                             struct ws_deflate_params *out);

/* Writes the Sec-WebSocket-Extensions response value for p into
 * out[0..WS_DEFLATE_RESPONSE_MAX) (NUL-terminated); returns its length. */
size_t ws_deflate_response(const struct ws_deflate_params *p,
                           char out[WS_DEFLATE_RESPONSE_MAX]);

/* One connection's compressor and decompressor. The zlib streams are
 * created on first use and, without context takeover, freed after each
 * message, so that an idle connection holds none. */
struct ws_deflate;

/* Returns a new codec for p, or NULL when out of memory. */
struct ws_deflate *ws_deflate_new(const struct ws_deflate_params *p);
void ws_deflate_free(struct ws_deflate *d);

/* Compresses one whole message in[0..len) (in may be NULL when len is 0)
 * into a new malloc'd buffer *out of *out_len bytes that the caller frees —
 * the payload of a frame with RSV1 set: the DEFLATE blocks ended by a sync
 * flush whose trailing 00 00 ff ff is removed (RFC 7692 §7.2.1); an empty
 * message is the single byte 00 (an empty stored block). Returns 0,
 * or -1 when out of memory (the codec is then unusable: fail the
 * connection). */
int ws_deflate_compress(struct ws_deflate *d, const uint8_t *in, size_t len,
                        uint8_t **out, size_t *out_len);

enum ws_inflate_result {
    WS_INFLATE_OK = 0,
    WS_INFLATE_TOO_BIG = -1, /* the message would exceed the limit: 1009 */
    WS_INFLATE_BAD = -2,     /* not valid DEFLATE data: fail the connection */
    WS_INFLATE_NOMEM = -3,   /* out of memory: 1011 */
};

/* The growing buffer a message is inflated into; owned by the caller, who
 * frees data. len counts the bytes inflated so far. */
struct ws_inflate_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* Inflates the next piece in[0..len) of a compressed message, appending to
 * buf, which never grows past limit + 1 bytes: WS_INFLATE_TOO_BIG as soon as
 * the output passes `limit`, so a decompression bomb costs at most that much
 * memory. `last` marks the message's final piece: the 00 00 ff ff removed by
 * the sender is fed after it, and without client context takeover the
 * stream is freed. A DEFLATE block with BFINAL set ends a stream, and the
 * bytes after it start a new one (RFC 7692 §7.2.3.4 allows it). After any
 * error the codec is reset; fail the connection. */
enum ws_inflate_result ws_deflate_inflate(struct ws_deflate *d, const uint8_t *in,
                                          size_t len, bool last,
                                          struct ws_inflate_buf *buf, size_t limit);

#endif
