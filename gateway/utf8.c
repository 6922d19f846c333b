/* utf8: a table-driven UTF-8 DFA with a word-at-a-time ASCII fast path. */
#include "gateway/utf8.h"

#include <string.h>

/* Where the automaton stands. Each state is also the bit offset of its
 * 6-bit field in a transition row (below), so states are multiples of 6;
 * ACCEPT is 0 so that UTF8_INIT starts there. */
enum utf8_dfa_state {
    UTF8_S_ACCEPT = 0, /* on a character boundary */
    UTF8_S_REJECT = 6, /* can never become valid; absorbing */
    UTF8_S_TAIL1 = 12, /* one continuation byte (80-BF) still due */
    UTF8_S_TAIL2 = 18, /* two still due, the first unrestricted */
    UTF8_S_TAIL3 = 24, /* three still due, the first unrestricted */
    UTF8_S_E0 = 30,    /* after E0: A0-BF, since 80-9F would be overlong */
    UTF8_S_ED = 36,    /* after ED: 80-9F, since A0-BF would be a surrogate */
    UTF8_S_F0 = 42,    /* after F0: 90-BF, since 80-8F would be overlong */
    UTF8_S_F4 = 48,    /* after F4: 80-8F, since 90-BF would pass U+10FFFF */
};
#define UTF8_S_BITS 6
#define UTF8_S_MASK 63u

/* A transition row: for one input byte, the next state from each state,
 * packed so that `row >> state & UTF8_S_MASK` is the next state. Loading the
 * row does not wait for the state, so one byte's step waits on the last only
 * for a shift and a mask, where a [state][class] table would put a load on
 * that path too: about twice the speed on non-ASCII text. */
#define UTF8_ROW(accept, reject, tail1, tail2, tail3, e0, ed, f0, f4)                    \
    ((uint64_t)(accept) << UTF8_S_ACCEPT | (uint64_t)(reject) << UTF8_S_REJECT |         \
     (uint64_t)(tail1) << UTF8_S_TAIL1 | (uint64_t)(tail2) << UTF8_S_TAIL2 |             \
     (uint64_t)(tail3) << UTF8_S_TAIL3 | (uint64_t)(e0) << UTF8_S_E0 |                   \
     (uint64_t)(ed) << UTF8_S_ED | (uint64_t)(f0) << UTF8_S_F0 |                         \
     (uint64_t)(f4) << UTF8_S_F4)

/* clang-format off */
#define OK UTF8_S_ACCEPT
#define XX UTF8_S_REJECT
#define T1 UTF8_S_TAIL1
#define T2 UTF8_S_TAIL2
#define T3 UTF8_S_TAIL3
/* The transition function by byte class; every cell is spelt out, so that no
 * forgotten pair silently means ACCEPT.
 *                      from: ACCEPT     REJECT TAIL1 TAIL2 TAIL3 E0  ED  F0  F4 */
#define A_ /* 00-7F */ UTF8_ROW(OK,        XX, XX, XX, XX, XX, XX, XX, XX)
#define C8 /* 80-8F */ UTF8_ROW(XX,        XX, OK, T1, T2, XX, T1, XX, T2)
#define C9 /* 90-9F */ UTF8_ROW(XX,        XX, OK, T1, T2, XX, T1, T2, XX)
#define CA /* A0-BF */ UTF8_ROW(XX,        XX, OK, T1, T2, T1, XX, T2, XX)
#define L2 /* C2-DF */ UTF8_ROW(T1,        XX, XX, XX, XX, XX, XX, XX, XX)
#define E0 /* E0 */    UTF8_ROW(UTF8_S_E0, XX, XX, XX, XX, XX, XX, XX, XX)
#define L3 /* E1-EF */ UTF8_ROW(T2,        XX, XX, XX, XX, XX, XX, XX, XX)
#define ED /* ED */    UTF8_ROW(UTF8_S_ED, XX, XX, XX, XX, XX, XX, XX, XX)
#define F0 /* F0 */    UTF8_ROW(UTF8_S_F0, XX, XX, XX, XX, XX, XX, XX, XX)
#define L4 /* F1-F3 */ UTF8_ROW(T3,        XX, XX, XX, XX, XX, XX, XX, XX)
#define F4 /* F4 */    UTF8_ROW(UTF8_S_F4, XX, XX, XX, XX, XX, XX, XX, XX)
#define NV /* never */ UTF8_ROW(XX,        XX, XX, XX, XX, XX, XX, XX, XX)
/* Each byte's row; C0, C1 and F5-FF appear in no valid text. */
static const uint64_t utf8_row[256] = {
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 00 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 10 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 20 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 30 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 40 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 50 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 60 */
    A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_,A_, /* 70 */
    C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8,C8, /* 80 */
    C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9,C9, /* 90 */
    CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA, /* A0 */
    CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA,CA, /* B0 */
    NV,NV,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2, /* C0 */
    L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2, /* D0 */
    E0,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,ED,L3,L3, /* E0 */
    F0,L4,L4,L4,F4,NV,NV,NV,NV,NV,NV,NV,NV,NV,NV,NV, /* F0 */
};
#undef A_
#undef C8
#undef C9
#undef CA
#undef L2
#undef E0
#undef L3
#undef ED
#undef F0
#undef L4
#undef F4
#undef NV
#undef OK
#undef XX
#undef T1
#undef T2
#undef T3
/* clang-format on */

/* The high bit of each byte of a 64-bit word: set for every non-ASCII byte. */
#define UTF8_HIGH_BITS UINT64_C(0x8080808080808080)

/* Returns the offset of the first non-ASCII byte in buf[i..len), or len.
 * Words are tested two at a time; memcpy keeps unaligned loads defined, and
 * compilers turn it into a plain load. */
static size_t
utf8_skip_ascii(const uint8_t *buf, size_t i, size_t len)
{
    uint64_t w0, w1;

    while (len - i >= 16) {
        memcpy(&w0, buf + i, 8);
        memcpy(&w1, buf + i + 8, 8);
        if (((w0 | w1) & UTF8_HIGH_BITS) != 0)
            break;
        i += 16;
    }
    if (len - i >= 8) {
        memcpy(&w0, buf + i, 8);
        if ((w0 & UTF8_HIGH_BITS) == 0)
            i += 8;
    }
    while (i < len && buf[i] < 0x80)
        i++;
    return i;
}

/* Makes st invalid for good and reports the offending byte at buf[at]. */
static enum utf8_result
utf8_reject(struct utf8_state *st, size_t at, size_t *bad_offset)
{
    st->state = UTF8_S_REJECT;
    if (bad_offset != NULL)
        *bad_offset = at;
    return UTF8_INVALID;
}

enum utf8_result
utf8_validate(struct utf8_state *st, const uint8_t *buf, size_t len, size_t *bad_offset)
{
    uint32_t s = st->state;
    size_t i = 0;

    /* Once invalid, always: nothing of buf is looked at. A state the
     * automaton never produces counts as invalid rather than serve as a
     * shift. */
    if (s == UTF8_S_REJECT || s > UTF8_S_F4 || s % UTF8_S_BITS != 0)
        return utf8_reject(st, 0, bad_offset);

    while (i < len) {
        /* On a boundary, runs of ASCII go by a word at a time. */
        if (s == UTF8_S_ACCEPT && buf[i] < 0x80) {
            i = utf8_skip_ascii(buf, i, len);
            if (i == len)
                break;
        }
        /* A character, or the rest of one, a byte at a time. */
        do
            s = (uint32_t)(utf8_row[buf[i++]] >> s) & UTF8_S_MASK;
        while (s > UTF8_S_REJECT && i < len);
        if (s == UTF8_S_REJECT)
            return utf8_reject(st, i - 1, bad_offset);
    }
    st->state = s;
    return s == UTF8_S_ACCEPT ? UTF8_OK : UTF8_INCOMPLETE;
}

bool
utf8_valid(const uint8_t *buf, size_t len)
{
    struct utf8_state st = UTF8_INIT;
    return utf8_validate(&st, buf, len, NULL) == UTF8_OK;
}
