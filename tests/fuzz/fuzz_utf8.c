/* fuzz_utf8: the validator in input-derived pieces against a naive decoder. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

/* What the naive decoder makes of an input: the offset of the first byte that
 * no valid text can have there (len when none), and for every prefix length
 * k up to that byte whether the prefix ends on a character boundary. */
struct fuzz_ref {
    size_t bad;
    bool *boundary; /* len + 1 entries */
};

/* Sequence length by the top five bits of its first byte; 0 for bytes that
 * cannot start one (continuations, and F8-FF of the old 5- and 6-byte forms). */
static const uint8_t fuzz_len_of_lead[32] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 00-7F */
    0, 0, 0, 0, 0, 0, 0, 0,                         /* 80-BF */
    2, 2, 2, 2, 3, 3, 4, 0,                         /* C0-DF, E0-EF, F0-F7, F8-FF */
};

/* Lowest and highest scalar value a sequence of each length may carry. */
static const uint32_t fuzz_lowest[5] = {0, 0, 0x80, 0x800, 0x10000};
static const uint32_t fuzz_highest[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};

/* Whether a sequence of n bytes whose first k give the top bits v can still
 * end as a scalar value of the right length. */
static bool
fuzz_can_finish(uint32_t v, unsigned n, unsigned k)
{
    unsigned open_bits = 6 * (n - k);
    uint32_t least = v << open_bits;
    uint32_t most = least + ((UINT32_C(1) << open_bits) - 1);
    if (most < fuzz_lowest[n] || least > fuzz_highest[n])
        return false;
    return least < 0xD800 || most > 0xDFFF;
}

static void
fuzz_reference(const uint8_t *p, size_t len, struct fuzz_ref *ref)
{
    memset(ref->boundary, 0, len + 1);
    ref->boundary[0] = true;
    size_t i = 0;
    while (i < len) {
        unsigned n = fuzz_len_of_lead[p[i] >> 3];
        if (n == 0) {
            ref->bad = i;
            return;
        }
        uint32_t v = n == 1 ? p[i] : p[i] & (0x7Fu >> n);
        for (unsigned k = 1; k <= n; k++) {
            if (k > 1) {
                if (i + k - 1 == len) {
                    ref->bad = len;
                    return;
                }
                uint8_t c = p[i + k - 1];
                if (c < 0x80 || c > 0xBF) {
                    ref->bad = i + k - 1;
                    return;
                }
                v = v << 6 | (c & 0x3Fu);
            }
            if (!fuzz_can_finish(v, n, k)) {
                ref->bad = i + k - 1;
                return;
            }
        }
        i += n;
        ref->boundary[i] = true;
    }
    ref->bad = len;
}

/* The result the validator owes after the first k bytes. */
static enum utf8_result
fuzz_expected(const struct fuzz_ref *ref, size_t k)
{
    if (k > ref->bad)
        return UTF8_INVALID;
    return ref->boundary[k] ? UTF8_OK : UTF8_INCOMPLETE;
}

static uint64_t
fuzz_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Feeds p in pieces of 0 to max_piece bytes, checking each result against the
 * reference for that prefix, the offset where it fails, and that it stays
 * failed. max_piece 0 means the whole buffer in one call. */
static void
fuzz_pieces(const uint8_t *p, size_t len, const struct fuzz_ref *ref, uint64_t *rng,
            size_t max_piece)
{
    struct utf8_state st = UTF8_INIT;
    size_t at = 0;
    do {
        size_t n = max_piece == 0 ? len - at : (size_t)(fuzz_rng(rng) % (max_piece + 1));
        if (n > len - at)
            n = len - at;
        size_t off = SIZE_MAX;
        enum utf8_result r = utf8_validate(&st, p + at, n, &off);
        FUZZ_CHECK(r == fuzz_expected(ref, at + n));
        if (r == UTF8_INVALID)
            FUZZ_CHECK(off == (at > ref->bad ? 0 : ref->bad - at));
        else
            FUZZ_CHECK(off == SIZE_MAX);
        at += n;
    } while (at < len);
}

static void
fuzz_bytewise(const uint8_t *p, size_t len, const struct fuzz_ref *ref)
{
    struct utf8_state st = UTF8_INIT;
    for (size_t k = 0; k < len; k++) {
        size_t off = SIZE_MAX;
        enum utf8_result r = utf8_validate(&st, p + k, 1, &off);
        FUZZ_CHECK(r == fuzz_expected(ref, k + 1));
        FUZZ_CHECK(r != UTF8_INVALID || off == 0);
    }
}

/* Splits at every position while the input is small enough for it. */
static void
fuzz_every_split(const uint8_t *p, size_t len, const struct fuzz_ref *ref)
{
    if (len > 256)
        return;
    for (size_t split = 0; split <= len; split++) {
        struct utf8_state st = UTF8_INIT;
        size_t off1 = SIZE_MAX, off2 = SIZE_MAX;
        enum utf8_result r1 = utf8_validate(&st, p, split, &off1);
        enum utf8_result r2 = utf8_validate(&st, p + split, len - split, &off2);
        FUZZ_CHECK(r1 == fuzz_expected(ref, split) && r2 == fuzz_expected(ref, len));
        if (r1 == UTF8_INVALID)
            FUZZ_CHECK(off1 == ref->bad && off2 == 0);
        else if (r2 == UTF8_INVALID)
            FUZZ_CHECK(split + off2 == ref->bad);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The pieces are derived from the input (FNV-1a), so a crash replays. */
    uint64_t seed = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * UINT64_C(0x100000001b3);
    seed |= 1;

    struct fuzz_ref ref;
    ref.boundary = malloc(size + 1);
    FUZZ_CHECK(ref.boundary != NULL);
    fuzz_reference(data, size, &ref);

    /* A copy that starts misaligned and still ends where its block does. */
    size_t align = 1 + (size_t)(seed >> 32) % 7;
    uint8_t *block = malloc(align + size);
    FUZZ_CHECK(block != NULL);
    uint8_t *copy = block + align;
    if (size > 0)
        memcpy(copy, data, size);

    fuzz_pieces(data, size, &ref, &seed, 0);
    fuzz_pieces(copy, size, &ref, &seed, 0);
    FUZZ_CHECK(utf8_valid(data, size) == (fuzz_expected(&ref, size) == UTF8_OK));
    fuzz_pieces(data, size, &ref, &seed, 3);
    fuzz_pieces(copy, size, &ref, &seed, 17);
    fuzz_pieces(data, size, &ref, &seed, 200);
    fuzz_bytewise(data, size, &ref);
    fuzz_every_split(data, size, &ref);

    free(block);
    free(ref.boundary);
    return 0;
}
