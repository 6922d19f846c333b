/* utf8: incremental, fail-fast UTF-8 validation for text messages. */
#ifndef WSGATE_UTF8_H
#define WSGATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a message stands between calls: a character boundary, the middle of
 * a sequence, or invalid for good. Opaque to callers, owned by them; one per
 * text message, reset to UTF8_INIT before the next. */
struct utf8_state {
    uint32_t state;
}; /* zero-initialise to start */
#define UTF8_INIT                                                                        \
    {                                                                                    \
        0                                                                                \
    }

enum utf8_result { UTF8_OK = 0, UTF8_INCOMPLETE = 1, UTF8_INVALID = -1 };

/* Feeds buf[0..len) (continuing a message whose earlier bytes were fed with
 * the same state). Returns UTF8_INVALID as soon as the bytes can no longer
 * become valid UTF-8 — at the first impossible byte, not at the end — and
 * stays invalid afterwards; otherwise UTF8_OK when the input so far ends on a
 * character boundary, UTF8_INCOMPLETE when it ends inside a sequence. When
 * `bad_offset` is not NULL and the result is UTF8_INVALID, it receives the
 * offset within buf of the byte that made it invalid.
 * Valid means RFC 3629: shortest form only, no surrogates (U+D800-DFFF),
 * nothing above U+10FFFF. A state already invalid on entry yields offset 0.
 * buf may be NULL when len is 0; it is not kept. Pure: no I/O, no callbacks. */
enum utf8_result utf8_validate(struct utf8_state *st, const uint8_t *buf, size_t len,
                               size_t *bad_offset);

/* Whole-buffer convenience: true when buf[0..len) is complete valid UTF-8. */
bool utf8_valid(const uint8_t *buf, size_t len);

#endif
