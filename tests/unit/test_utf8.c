/* test_utf8: the UTF-8 validator against tables, Autobahn §6, walks and a reference. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/utf8.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Hot loops assert only on failure: check records a mark point for every
 * passing ck_assert, which in fork mode is a write per call. */
#define EXPECT(cond, ...)                                                                \
    do {                                                                                 \
        if (!(cond))                                                                     \
            ck_abort_msg(__VA_ARGS__);                                                   \
    } while (0)

/* What validating a whole input comes to; bad is absolute and only set for
 * UTF8_INVALID. */
struct outcome {
    enum utf8_result result;
    size_t bad;
};

static const char *
result_name(enum utf8_result r)
{
    switch (r) {
    case UTF8_OK:
        return "OK";
    case UTF8_INCOMPLETE:
        return "INCOMPLETE";
    case UTF8_INVALID:
        return "INVALID";
    }
    return "?";
}

static bool
same_outcome(struct outcome a, struct outcome b)
{
    return a.result == b.result && (a.result != UTF8_INVALID || a.bad == b.bad);
}

/* --- the reference --------------------------------------------------------- */

/* Smallest code point that needs n bytes, for n = 2..4. */
static const uint32_t ref_min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};

/* True when some completion of a sequence of n bytes, whose first k bytes
 * give the high bits `cp`, decodes to a scalar value RFC 3629 allows. Works on
 * code point ranges, not byte ranges, so it shares nothing with the DFA. */
static bool
ref_feasible(uint32_t cp, unsigned n, unsigned k)
{
    unsigned rest_bits = 6 * (n - k);
    uint32_t lo = cp << rest_bits;
    uint32_t hi = lo | ((UINT32_C(1) << rest_bits) - 1);
    if (hi < ref_min_of_len[n] || lo > 0x10FFFF)
        return false;
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* A naive decoder: code point by code point, failing at the first byte after
 * which no valid completion exists. */
static struct outcome
ref_validate(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = buf[i];
        unsigned n;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC0 && b < 0xE0) {
            n = 2;
            cp = b & 0x1Fu;
        } else if (b >= 0xE0 && b < 0xF0) {
            n = 3;
            cp = b & 0x0Fu;
        } else if (b >= 0xF0 && b < 0xF8) {
            n = 4;
            cp = b & 0x07u;
        } else {
            return (struct outcome){UTF8_INVALID, i};
        }
        for (unsigned k = 1;; k++) {
            if (!ref_feasible(cp, n, k))
                return (struct outcome){UTF8_INVALID, i + k - 1};
            if (k == n)
                break;
            if (i + k == len)
                return (struct outcome){UTF8_INCOMPLETE, 0};
            uint8_t c = buf[i + k];
            if ((c & 0xC0) != 0x80)
                return (struct outcome){UTF8_INVALID, i + k};
            cp = cp << 6 | (c & 0x3Fu);
        }
        i += n;
    }
    return (struct outcome){UTF8_OK, 0};
}

/* Encodes cp in exactly n bytes (1 to 4), overlong or out of range as asked. */
static size_t
encode_n(uint32_t cp, unsigned n, uint8_t *out)
{
    static const uint8_t lead_mark[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    for (unsigned k = n - 1; k > 0; k--) {
        out[k] = (uint8_t)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (uint8_t)(lead_mark[n] | cp);
    return n;
}

static unsigned
min_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* --- feeding --------------------------------------------------------------- */

/* A heap copy that ends exactly where the allocation does, `align` bytes
 * into it, so that ASan sees any read past len and words load misaligned. */
struct exact {
    uint8_t *block;
    uint8_t *p;
};

static struct exact
exact_copy(const void *bytes, size_t len, size_t align)
{
    struct exact e;
    e.block = malloc(align + len + (align + len == 0));
    ck_assert_ptr_nonnull(e.block);
    e.p = e.block + align;
    if (len > 0)
        memcpy(e.p, bytes, len);
    return e;
}

/* Feeds buf in pieces ending at cuts[0..ncuts) and then len, checking that an
 * invalid state stays invalid (offset 0) in later pieces. */
static struct outcome
feed_pieces(const uint8_t *buf, size_t len, const size_t *cuts, size_t ncuts)
{
    struct utf8_state st = UTF8_INIT;
    struct outcome out = {UTF8_OK, 0};
    size_t start = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t off = SIZE_MAX;
        enum utf8_result r = utf8_validate(&st, buf + start, end - start, &off);
        if (out.result == UTF8_INVALID) {
            EXPECT(r == UTF8_INVALID && off == 0, "piece %zu after invalid gave %s, %zu",
                   k, result_name(r), off);
        } else if (r == UTF8_INVALID) {
            EXPECT(off < end - start, "offset %zu outside piece of %zu", off,
                   end - start);
            out = (struct outcome){UTF8_INVALID, start + off};
        } else {
            out.result = r;
        }
        start = end;
    }
    return out;
}

static struct outcome
feed_whole(const uint8_t *buf, size_t len)
{
    return feed_pieces(buf, len, NULL, 0);
}

static struct outcome
feed_split(const uint8_t *buf, size_t len, size_t split)
{
    return feed_pieces(buf, len, &split, 1);
}

/* Feeds one byte at a time; after each byte the result must be what the
 * reference says of that prefix, so the failure is reported at exactly the
 * byte that causes it and never earlier. */
static struct outcome
feed_bytewise(const char *name, const uint8_t *buf, size_t len)
{
    struct utf8_state st = UTF8_INIT;
    struct outcome out = {UTF8_OK, 0};
    for (size_t k = 0; k < len; k++) {
        size_t off = SIZE_MAX;
        enum utf8_result r = utf8_validate(&st, buf + k, 1, &off);
        struct outcome want = ref_validate(buf, k + 1);
        struct outcome got = {r, 0};
        if (out.result == UTF8_INVALID) {
            EXPECT(r == UTF8_INVALID && off == 0,
                   "%s: byte %zu after invalid gave %s@%zu", name, k, result_name(r),
                   off);
            got.bad = out.bad;
        } else if (r == UTF8_INVALID) {
            got.bad = k + off;
        }
        EXPECT(same_outcome(got, want), "%s: after byte %zu got %s@%zu, want %s@%zu",
               name, k, result_name(got.result), got.bad, result_name(want.result),
               want.bad);
        out = got;
    }
    return out;
}

static uint64_t
rng_next(uint64_t *s)
{
    /* splitmix64: small, seedable, good enough to pick test inputs */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t
rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

/* Feeds buf in random pieces of 0 to max_piece bytes. */
static struct outcome
feed_random_pieces(const uint8_t *buf, size_t len, uint64_t *rng, size_t max_piece)
{
    size_t cuts[1024];
    size_t n = 0;
    size_t at = 0;
    while (n < N_ELEMS(cuts)) {
        at += rng_below(rng, max_piece + 1);
        if (at >= len)
            break;
        cuts[n++] = at;
    }
    return feed_pieces(buf, len, cuts, n);
}

/* --- the case table -------------------------------------------------------- */

struct utf8_case {
    const char *name;
    const char *bytes;
    size_t len;
    enum utf8_result result;
    size_t bad; /* absolute offset of the offending byte when invalid */
};

/* clang-format off */
#define B(s) s, sizeof(s) - 1
#define VALID(name, s) {name, B(s), UTF8_OK, 0}
#define PART(name, s) {name, B(s), UTF8_INCOMPLETE, 0}
#define BAD(name, s, at) {name, B(s), UTF8_INVALID, at}

/* κόσμε, the Autobahn suite's 11-byte valid Greek word */
#define KOSME "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
#define ASCII64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct utf8_case cases[] = {
    /* ASCII */
    VALID("empty", ""),
    VALID("NUL", "\x00"),
    VALID("DEL", "\x7f"),
    VALID("hello", "hello, world"),
    VALID("64 ASCII", ASCII64),
    VALID("all of ASCII",
          "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
          "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
          " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_"
          "`abcdefghijklmnopqrstuvwxyz{|}~\x7f"),

    /* each length at its boundaries */
    VALID("U+0080", "\xc2\x80"),
    VALID("U+07FF", "\xdf\xbf"),
    VALID("U+0800", "\xe0\xa0\x80"),
    VALID("U+0FFF", "\xe0\xbf\xbf"),
    VALID("U+1000", "\xe1\x80\x80"),
    VALID("U+D7FF", "\xed\x9f\xbf"),
    VALID("U+E000", "\xee\x80\x80"),
    VALID("U+FFFD", "\xef\xbf\xbd"),
    VALID("U+FFFF", "\xef\xbf\xbf"),
    VALID("U+10000", "\xf0\x90\x80\x80"),
    VALID("U+3FFFF", "\xf0\xbf\xbf\xbf"),
    VALID("U+40000", "\xf1\x80\x80\x80"),
    VALID("U+FFFFF", "\xf3\xbf\xbf\xbf"),
    VALID("U+100000", "\xf4\x80\x80\x80"),
    VALID("U+10FFFF", "\xf4\x8f\xbf\xbf"),
    VALID("emoji", "\xf0\x9f\x98\x80"),
    VALID("euro", "\xe2\x82\xac"),
    VALID("mixed lengths", "a\xc2\xa2" "b\xe2\x82\xac" "c\xf0\xa4\xad\xa2" "d"),

    /* overlongs of each length */
    BAD("overlong U+0000 in 2", "\xc0\x80", 0),
    BAD("overlong U+007F in 2", "\xc1\xbf", 0),
    BAD("overlong C0 alone", "\xc0", 0),
    BAD("overlong U+0000 in 3", "\xe0\x80\x80", 1),
    BAD("overlong U+07FF in 3", "\xe0\x9f\xbf", 1),
    BAD("overlong U+0000 in 4", "\xf0\x80\x80\x80", 1),
    BAD("overlong U+FFFF in 4", "\xf0\x8f\xbf\xbf", 1),
    BAD("overlong '/' in 2", "\xc0\xaf", 0),
    BAD("overlong after text", "abc\xe0\x9f", 4),

    /* surrogates */
    BAD("U+D800", "\xed\xa0\x80", 1),
    BAD("U+DBFF", "\xed\xaf\xbf", 1),
    BAD("U+DC00", "\xed\xb0\x80", 1),
    BAD("U+DFFF", "\xed\xbf\xbf", 1),
    BAD("ED A0 alone", "\xed\xa0", 1),
    BAD("surrogate pair", "\xed\xa0\xbd\xed\xb8\x80", 1),
    BAD("CESU-8 emoji after text", "ok \xed\xa0\xbd\xed\xb8\x80", 4),

    /* above U+10FFFF */
    BAD("U+110000", "\xf4\x90\x80\x80", 1),
    BAD("U+13FFFF", "\xf4\xbf\xbf\xbf", 1),
    BAD("F4 90 alone", "\xf4\x90", 1),
    BAD("U+140000 lead F5", "\xf5\x80\x80\x80", 0),
    BAD("lead F7", "\xf7\xbf\xbf\xbf", 0),

    /* truncated sequences */
    PART("2-byte lead", "\xc2"),
    PART("3-byte lead", "\xe1"),
    PART("3-byte lead E0", "\xe0"),
    PART("3-byte lead ED", "\xed"),
    PART("3-byte, one of two", "\xe2\x82"),
    PART("4-byte lead F0", "\xf0"),
    PART("4-byte lead F4", "\xf4"),
    PART("4-byte, two of three", "\xf0\x9f\x98"),
    PART("ED 9F", "\xed\x9f"),
    PART("F4 8F BF", "\xf4\x8f\xbf"),
    PART("text then lead", "hello \xf0\x9f"),
    PART("64 ASCII then lead", ASCII64 "\xe2"),

    /* invalid bytes and misplaced continuations */
    BAD("byte C1", "\xc1", 0),
    BAD("byte F5", "\xf5", 0),
    BAD("byte F8", "\xf8", 0),
    BAD("byte FE", "\xfe", 0),
    BAD("byte FF", "\xff", 0),
    BAD("lone 80", "\x80", 0),
    BAD("lone BF", "\xbf", 0),
    BAD("continuation after ASCII", "abc\x80", 3),
    BAD("continuation after a whole char", "\xc3\xa9\xa9", 2),
    BAD("ASCII where continuation due", "\xc3" "a", 1),
    BAD("lead where continuation due", "\xe2\x82\xe2\x82\xac", 2),
    BAD("4-byte cut by lead", "\xf0\x9f\xc3\xa9", 2),
    BAD("4-byte cut by ASCII at the end", "\xf0\x9f\x98" "a", 3),
    BAD("invalid after 64 ASCII", ASCII64 "\xff", 64),
    BAD("invalid at 63", "0123456789abcdef0123456789abcdef"
                         "0123456789abcdef0123456789abcde\xff" "f", 63),
    BAD("invalid at 7", "0123456\x80" "89abcdef", 7),
    BAD("invalid at 8", "01234567\x80" "9abcdef", 8),
    BAD("invalid at 15", "0123456789abcde\x80" "0123", 15),
    BAD("invalid at 16", "0123456789abcdef\x80" "123", 16),

    /* Autobahn 6.2-6.4 */
    VALID("6.2.1 Hello-µ@ßöäüàá-UTF-8!!",
          "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"),
    BAD("6.3.1 kosme ED A0 80 edited", KOSME "\xed\xa0\x80" "edited", 12),
    BAD("6.4.1 kosme F4 90 80 80 edited", KOSME "\xf4\x90\x80\x80" "edited", 12),
    PART("6.4.2 first frame", KOSME "\xf4"),
    BAD("6.4.2 up to the offending byte", KOSME "\xf4\x90", 12),

    /* Autobahn 6.5-6.23 (from Markus Kuhn's stress test) */
    VALID("6.5.1 hello$world", "hello\x24world"),
    VALID("6.5.2 hello¢world", "hello\xc2\xa2world"),
    VALID("6.5.3 hello€world", "hello\xe2\x82\xacworld"),
    VALID("6.5.4 hello𤭢world", "hello\xf0\xa4\xad\xa2world"),
    VALID("6.5.5 kosme", KOSME),
    PART("6.6.1 kosme[:1]", "\xce"),
    VALID("6.6.2 kosme[:2]", "\xce\xba"),
    PART("6.6.3 kosme[:3]", "\xce\xba\xe1"),
    PART("6.6.4 kosme[:4]", "\xce\xba\xe1\xbd"),
    VALID("6.6.5 kosme[:5]", "\xce\xba\xe1\xbd\xb9"),
    PART("6.6.10 kosme[:10]", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"),
    VALID("6.7.1 first 1-byte", "\x00"),
    VALID("6.7.2 first 2-byte", "\xc2\x80"),
    VALID("6.7.3 first 3-byte", "\xe0\xa0\x80"),
    VALID("6.7.4 first 4-byte", "\xf0\x90\x80\x80"),
    BAD("6.8.1 first 5-byte", "\xf8\x88\x80\x80\x80", 0),
    BAD("6.8.2 first 6-byte", "\xfc\x84\x80\x80\x80\x80", 0),
    VALID("6.9.1 last 1-byte", "\x7f"),
    VALID("6.9.2 last 2-byte", "\xdf\xbf"),
    VALID("6.9.3 last 3-byte", "\xef\xbf\xbf"),
    VALID("6.9.4 last 4-byte", "\xf4\x8f\xbf\xbf"),
    BAD("6.10.1 last 4-byte scheme", "\xf7\xbf\xbf\xbf", 0),
    BAD("6.10.2 last 5-byte scheme", "\xfb\xbf\xbf\xbf\xbf", 0),
    BAD("6.10.3 last 6-byte scheme", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    VALID("6.11.1 U+D7FF", "\xed\x9f\xbf"),
    VALID("6.11.2 U+E000", "\xee\x80\x80"),
    VALID("6.11.3 U+FFFD", "\xef\xbf\xbd"),
    VALID("6.11.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    BAD("6.11.5 U+110000", "\xf4\x90\x80\x80", 1),
    BAD("6.12.1 80", "\x80", 0),
    BAD("6.12.2 BF", "\xbf", 0),
    BAD("6.12.3 80 BF", "\x80\xbf", 0),
    BAD("6.12.4 80 BF 80", "\x80\xbf\x80", 0),
    BAD("6.12.5 80 BF 80 BF", "\x80\xbf\x80\xbf", 0),
    BAD("6.12.6 80 BF 80 BF 80", "\x80\xbf\x80\xbf\x80", 0),
    BAD("6.12.7 80 BF 80 BF 80 BF", "\x80\xbf\x80\xbf\x80\xbf", 0),
    BAD("6.12.8 80..BE",
        "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
        "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
        "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
        "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe", 0),
    BAD("6.13.1 lonely C0..DE", "\xc0 \xc1 \xc2 \xc3 \xc4 \xc5 \xc6 \xc7 \xc8 \xc9 \xca "
        "\xcb \xcc \xcd \xce \xcf \xd0 \xd1 \xd2 \xd3 \xd4 \xd5 \xd6 \xd7 \xd8 \xd9 \xda "
        "\xdb \xdc \xdd \xde ", 0),
    BAD("6.13.1' lonely C2..DE", "\xc2 \xc3 \xc4 \xc5", 1),
    BAD("6.13.2 lonely E0..EE", "\xe0 \xe1 \xe2 \xe3 \xe4 \xe5 \xe6 \xe7 \xe8 \xe9 \xea "
        "\xeb \xec \xed \xee ", 1),
    BAD("6.13.3 lonely F0..F6", "\xf0 \xf1 \xf2 \xf3 \xf4 \xf5 \xf6 ", 1),
    BAD("6.13.4 lonely F8..FA", "\xf8 \xf9 \xfa ", 0),
    BAD("6.13.5 lonely FC", "\xfc ", 0),
    BAD("6.14.1 C0", "\xc0", 0),
    BAD("6.14.2 E0 80", "\xe0\x80", 1),
    BAD("6.14.3 F0 80 80", "\xf0\x80\x80", 1),
    BAD("6.14.4 F8 80 80 80", "\xf8\x80\x80\x80", 0),
    BAD("6.14.5 FC 80 80 80 80", "\xfc\x80\x80\x80\x80", 0),
    PART("6.14.6 DF", "\xdf"),
    PART("6.14.7 EF BF", "\xef\xbf"),
    BAD("6.14.8 F7 BF BF", "\xf7\xbf\xbf", 0),
    BAD("6.14.9 FB BF BF BF", "\xfb\xbf\xbf\xbf", 0),
    BAD("6.14.10 FD BF BF BF BF", "\xfd\xbf\xbf\xbf\xbf", 0),
    BAD("6.15.1 concatenated incompletes",
        "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf", 0),
    BAD("6.15.1' without C0", "\xe0\x80\xf0\x80\x80", 1),
    BAD("6.15.1'' the valid-lead tail", "\xdf\xef\xbf", 1),
    BAD("6.16.1 FE", "\xfe", 0),
    BAD("6.16.2 FF", "\xff", 0),
    BAD("6.16.3 FE FE FF FF", "\xfe\xfe\xff\xff", 0),
    BAD("6.17.1 overlong / in 2", "\xc0\xaf", 0),
    BAD("6.17.2 overlong / in 3", "\xe0\x80\xaf", 1),
    BAD("6.17.3 overlong / in 4", "\xf0\x80\x80\xaf", 1),
    BAD("6.17.4 overlong / in 5", "\xf8\x80\x80\x80\xaf", 0),
    BAD("6.17.5 overlong / in 6", "\xfc\x80\x80\x80\x80\xaf", 0),
    BAD("6.18.1 max overlong 2", "\xc1\xbf", 0),
    BAD("6.18.2 max overlong 3", "\xe0\x9f\xbf", 1),
    BAD("6.18.3 max overlong 4", "\xf0\x8f\xbf\xbf", 1),
    BAD("6.18.4 max overlong 5", "\xf8\x87\xbf\xbf\xbf", 0),
    BAD("6.18.5 max overlong 6", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    BAD("6.19.1 overlong NUL 2", "\xc0\x80", 0),
    BAD("6.19.2 overlong NUL 3", "\xe0\x80\x80", 1),
    BAD("6.19.3 overlong NUL 4", "\xf0\x80\x80\x80", 1),
    BAD("6.19.4 overlong NUL 5", "\xf8\x80\x80\x80\x80", 0),
    BAD("6.19.5 overlong NUL 6", "\xfc\x80\x80\x80\x80\x80", 0),
    BAD("6.20.1 U+D800", "\xed\xa0\x80", 1),
    BAD("6.20.2 U+DB7F", "\xed\xad\xbf", 1),
    BAD("6.20.3 U+DB80", "\xed\xae\x80", 1),
    BAD("6.20.4 U+DBFF", "\xed\xaf\xbf", 1),
    BAD("6.20.5 U+DC00", "\xed\xb0\x80", 1),
    BAD("6.20.6 U+DF80", "\xed\xbe\x80", 1),
    BAD("6.20.7 U+DFFF", "\xed\xbf\xbf", 1),
    BAD("6.21.1 D800 DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("6.21.2 D800 DFFF", "\xed\xa0\x80\xed\xbf\xbf", 1),
    BAD("6.21.3 DB7F DC00", "\xed\xad\xbf\xed\xb0\x80", 1),
    BAD("6.21.4 DB7F DFFF", "\xed\xad\xbf\xed\xbf\xbf", 1),
    BAD("6.21.5 DB80 DC00", "\xed\xae\x80\xed\xb0\x80", 1),
    BAD("6.21.6 DB80 DFFF", "\xed\xae\x80\xed\xbf\xbf", 1),
    BAD("6.21.7 DBFF DC00", "\xed\xaf\xbf\xed\xb0\x80", 1),
    BAD("6.21.8 DBFF DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    VALID("6.22.1 U+FFFE", "\xef\xbf\xbe"),
    VALID("6.22.2 U+FFFF", "\xef\xbf\xbf"),
    VALID("6.22.3 U+1FFFE", "\xf0\x9f\xbf\xbe"),
    VALID("6.22.4 U+1FFFF", "\xf0\x9f\xbf\xbf"),
    VALID("6.22.5 U+2FFFE", "\xf0\xaf\xbf\xbe"),
    VALID("6.22.7 U+3FFFE", "\xf0\xbf\xbf\xbe"),
    VALID("6.22.9 U+4FFFE", "\xf1\x8f\xbf\xbe"),
    VALID("6.22.25 U+CFFFF", "\xf3\x8f\xbf\xbf"),
    VALID("6.22.33 U+FFFFF", "\xf3\xbf\xbf\xbf"),
    VALID("6.22.34 U+10FFFE", "\xf4\x8f\xbf\xbe"),
    VALID("6.23.1 U+FFF9", "\xef\xbf\xb9"),
    VALID("6.23.5 U+FFFD", "\xef\xbf\xbd"),
    VALID("6.23.7 U+FFFF", "\xef\xbf\xbf"),
};
/* clang-format on */

static const uint8_t *
case_bytes(const struct utf8_case *c)
{
    return (const uint8_t *)c->bytes;
}

static struct outcome
case_want(const struct utf8_case *c)
{
    return (struct outcome){c->result, c->bad};
}

/* The hand-written expectation agrees with the reference, and the whole
 * buffer gives it at every alignment. */
START_TEST(test_case_whole)
{
    const struct utf8_case *c = &cases[_i];
    struct outcome want = case_want(c);
    struct outcome ref = ref_validate(case_bytes(c), c->len);
    ck_assert_msg(same_outcome(ref, want), "%s: reference says %s@%zu", c->name,
                  result_name(ref.result), ref.bad);
    for (size_t align = 0; align < 16; align++) {
        struct exact e = exact_copy(c->bytes, c->len, align);
        struct outcome got = feed_whole(e.p, c->len);
        ck_assert_msg(same_outcome(got, want), "%s (align %zu): got %s@%zu, want %s@%zu",
                      c->name, align, result_name(got.result), got.bad,
                      result_name(want.result), want.bad);
        ck_assert_msg(utf8_valid(e.p, c->len) == (want.result == UTF8_OK),
                      "%s: utf8_valid", c->name);
        free(e.block);
    }
}
END_TEST

START_TEST(test_case_bytewise)
{
    const struct utf8_case *c = &cases[_i];
    struct exact e = exact_copy(c->bytes, c->len, 0);
    struct outcome got = feed_bytewise(c->name, e.p, c->len);
    ck_assert_msg(same_outcome(got, case_want(c)), "%s: bytewise got %s@%zu", c->name,
                  result_name(got.result), got.bad);
    free(e.block);
}
END_TEST

START_TEST(test_case_split)
{
    const struct utf8_case *c = &cases[_i];
    struct outcome want = case_want(c);
    for (size_t align = 0; align < 8; align++) {
        struct exact e = exact_copy(c->bytes, c->len, align);
        for (size_t split = 0; split <= c->len; split++) {
            struct outcome got = feed_split(e.p, c->len, split);
            ck_assert_msg(same_outcome(got, want),
                          "%s split at %zu: got %s@%zu, want %s@%zu", c->name, split,
                          result_name(got.result), got.bad, result_name(want.result),
                          want.bad);
        }
        free(e.block);
    }
}
END_TEST

/* --- Autobahn's fragmented messages ---------------------------------------- */

struct fragment_case {
    const char *name;
    const char *pieces[3];
    enum utf8_result results[3]; /* after each piece */
    size_t bad;                  /* offset within the piece that fails */
};

static const struct fragment_case fragment_cases[] = {
    {"6.4.1 / 6.4.3",
     {KOSME, "\xf4\x90\x80\x80", "edited"},
     {UTF8_OK, UTF8_INVALID, UTF8_INVALID},
     1},
    {"6.4.2 / 6.4.4",
     {KOSME "\xf4", "\x90",
      "\x80\x80"
      "edited"},
     {UTF8_INCOMPLETE, UTF8_INVALID, UTF8_INVALID},
     0},
    {"surrogate in the middle frame",
     {KOSME, "\xed\xa0\x80", "edited"},
     {UTF8_OK, UTF8_INVALID, UTF8_INVALID},
     1},
    {"validator: edited | ED A0 80",
     {"edited", "\xed\xa0\x80", ""},
     {UTF8_OK, UTF8_INVALID, UTF8_INVALID},
     1},
    {"validator: edit | ed ED A0 80",
     {"edit", "ed\xed\xa0\x80", ""},
     {UTF8_OK, UTF8_INVALID, UTF8_INVALID},
     3},
    {"validator: edited ED | A0 80",
     {"edited\xed", "\xa0\x80", ""},
     {UTF8_INCOMPLETE, UTF8_INVALID, UTF8_INVALID},
     0},
    {"6.2.2 split inside characters",
     {"Hello-\xc2", "\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3", "\xa1-UTF-8!!"},
     {UTF8_INCOMPLETE, UTF8_INCOMPLETE, UTF8_OK},
     0},
};

START_TEST(test_fragments)
{
    const struct fragment_case *c = &fragment_cases[_i];
    struct utf8_state st = UTF8_INIT;
    bool failed = false;
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(c->pieces[k]);
        struct exact e = exact_copy(c->pieces[k], n, 0);
        size_t off = SIZE_MAX;
        enum utf8_result r = utf8_validate(&st, e.p, n, &off);
        ck_assert_msg(r == c->results[k], "%s piece %zu: got %s", c->name, k,
                      result_name(r));
        if (r == UTF8_INVALID)
            ck_assert_msg(off == (failed ? 0 : c->bad), "%s piece %zu: offset %zu",
                          c->name, k, off);
        failed = failed || r == UTF8_INVALID;
        free(e.block);
    }
}
END_TEST

/* --- walks ----------------------------------------------------------------- */

/* Every single byte: the byte-class table. */
START_TEST(test_walk_single_bytes)
{
    for (unsigned b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        size_t off = SIZE_MAX;
        struct utf8_state st = UTF8_INIT;
        enum utf8_result r = utf8_validate(&st, &byte, 1, &off);
        enum utf8_result want = b < 0x80                 ? UTF8_OK
                                : b >= 0xC2 && b <= 0xF4 ? UTF8_INCOMPLETE
                                                         : UTF8_INVALID;
        ck_assert_msg(r == want, "byte %02X: got %s", b, result_name(r));
        if (r == UTF8_INVALID)
            ck_assert_uint_eq(off, 0);
    }
}
END_TEST

/* The well-formed first two bytes of a multi-byte sequence (Unicode Table
 * 3-7); any other second byte after these leads is the offending one. */
static const struct {
    uint8_t lead_lo, lead_hi;
    uint8_t second_lo, second_hi;
    unsigned len;
} well_formed[] = {
    {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3}, {0xE1, 0xEC, 0x80, 0xBF, 3},
    {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3}, {0xF0, 0xF0, 0x90, 0xBF, 4},
    {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
};

/* Every lead byte against every second byte: the transition table. */
START_TEST(test_walk_second_bytes)
{
    for (size_t w = 0; w < N_ELEMS(well_formed); w++) {
        for (unsigned lead = well_formed[w].lead_lo; lead <= well_formed[w].lead_hi;
             lead++) {
            for (unsigned b = 0; b < 256; b++) {
                uint8_t pair[2] = {(uint8_t)lead, (uint8_t)b};
                bool ok = b >= well_formed[w].second_lo && b <= well_formed[w].second_hi;
                struct outcome want = {
                    ok ? (well_formed[w].len == 2 ? UTF8_OK : UTF8_INCOMPLETE)
                       : UTF8_INVALID,
                    1};
                struct outcome got = feed_whole(pair, 2);
                EXPECT(same_outcome(got, want), "%02X %02X: got %s@%zu", lead, b,
                       result_name(got.result), got.bad);
                got = feed_split(pair, 2, 1);
                EXPECT(same_outcome(got, want), "%02X | %02X: got %s@%zu", lead, b,
                       result_name(got.result), got.bad);
            }
        }
    }
}
END_TEST

/* Every value below 2^21 in every length that can hold it: shortest forms of
 * scalar values are valid and every proper prefix incomplete; overlongs,
 * surrogates and values past U+10FFFF fail at the first byte that shows it. */
START_TEST(test_walk_code_points)
{
    static const uint32_t cap_of_len[5] = {0, 0x80, 0x800, 0x10000, 0x200000};
    for (uint32_t cp = 0; cp < 0x200000; cp++) {
        for (unsigned n = 1; n <= 4; n++) {
            if (cp >= cap_of_len[n])
                continue;
            uint8_t buf[4];
            encode_n(cp, n, buf);
            struct outcome want = {UTF8_OK, 0};
            if (n > min_len(cp))
                want = (struct outcome){UTF8_INVALID, n == 2 ? 0 : 1};
            else if (cp >= 0xD800 && cp <= 0xDFFF)
                want = (struct outcome){UTF8_INVALID, 1};
            else if (cp > 0x10FFFF)
                want = (struct outcome){UTF8_INVALID, cp >= 0x140000 ? 0 : 1};
            struct outcome got = feed_whole(buf, n);
            EXPECT(same_outcome(got, want), "U+%04X in %u: got %s@%zu, want %s@%zu", cp,
                   n, result_name(got.result), got.bad, result_name(want.result),
                   want.bad);
            for (unsigned k = 1; k < n; k++) {
                struct outcome part = feed_whole(buf, k);
                bool shown = want.result == UTF8_INVALID && want.bad < k;
                EXPECT(part.result == (shown ? UTF8_INVALID : UTF8_INCOMPLETE),
                       "U+%04X in %u, %u bytes: got %s", cp, n, k,
                       result_name(part.result));
            }
            EXPECT(utf8_valid(buf, n) == (want.result == UTF8_OK), "U+%04X utf8_valid",
                   cp);
        }
    }
}
END_TEST

/* Every string of one, two and three bytes against the reference, whole and
 * split at a position that cycles through all of them. */
START_TEST(test_exhaustive_short)
{
    uint8_t *buf = malloc(3);
    ck_assert_ptr_nonnull(buf);
    for (size_t n = 1; n <= 3; n++) {
        uint8_t *p = buf + 3 - n;
        for (uint32_t v = 0; v < (UINT32_C(1) << (8 * n)); v++) {
            for (size_t k = 0; k < n; k++)
                p[k] = (uint8_t)(v >> (8 * k));
            struct outcome want = ref_validate(p, n);
            struct outcome got = feed_whole(p, n);
            EXPECT(same_outcome(got, want), "%06X/%zu: got %s@%zu, want %s@%zu", v, n,
                   result_name(got.result), got.bad, result_name(want.result), want.bad);
            got = feed_split(p, n, v % (n + 1));
            EXPECT(same_outcome(got, want), "%06X/%zu split: got %s@%zu", v, n,
                   result_name(got.result), got.bad);
        }
    }
    free(buf);
}
END_TEST

/* Every first two bytes with a grid of interesting third and fourth bytes. */
START_TEST(test_four_byte_grid)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF4};
    uint8_t *buf = malloc(4);
    ck_assert_ptr_nonnull(buf);
    for (uint32_t v = 0; v < 0x10000; v++) {
        buf[0] = (uint8_t)(v >> 8);
        buf[1] = (uint8_t)v;
        for (size_t a = 0; a < N_ELEMS(tails); a++) {
            for (size_t b = 0; b < N_ELEMS(tails); b++) {
                buf[2] = tails[a];
                buf[3] = tails[b];
                struct outcome want = ref_validate(buf, 4);
                struct outcome got = feed_whole(buf, 4);
                EXPECT(same_outcome(got, want), "%02X %02X %02X %02X: got %s@%zu", buf[0],
                       buf[1], buf[2], buf[3], result_name(got.result), got.bad);
            }
        }
    }
    free(buf);
}
END_TEST

/* --- the fast path --------------------------------------------------------- */

/* ASCII runs of every length up to 80 at every alignment, ended by something
 * that is not ASCII, so the first non-ASCII byte falls at every position of a
 * word and at every distance from the end. */
START_TEST(test_ascii_runs)
{
    static const struct {
        const char *tail;
        enum utf8_result result;
        size_t bad; /* from the end of the run */
    } tails[] = {
        {"", UTF8_OK, 0},
        {"\x80", UTF8_INVALID, 0},
        {"\xff"
         "abcdefghijklmnopqrstuvwxyz",
         UTF8_INVALID, 0},
        {"\xed\xa0\x80"
         "0123456789abcdef",
         UTF8_INVALID, 1},
        {"\xf4\x90", UTF8_INVALID, 1},
        {"\xf0\x9f\x98", UTF8_INCOMPLETE, 0},
        {"\xc3\xa9"
         "0123456789abcdef0123",
         UTF8_OK, 0},
        {"\xe2\x82\xac\xe2\x82\xac"
         "0123456789",
         UTF8_OK, 0},
        {"\xc3\xa9"
         "0123456789abcdef\xc3",
         UTF8_INCOMPLETE, 0},
        {"\xc3\xa9"
         "0123456789abcdef\x80",
         UTF8_INVALID, 18},
    };
    uint8_t text[160];
    for (size_t run = 0; run <= 80; run++) {
        for (size_t t = 0; t < N_ELEMS(tails); t++) {
            size_t tl = strlen(tails[t].tail);
            for (size_t k = 0; k < run; k++)
                text[k] = (uint8_t)(' ' + (k * 7) % 95);
            memcpy(text + run, tails[t].tail, tl);
            size_t len = run + tl;
            struct outcome want = {tails[t].result, run + tails[t].bad};
            for (size_t align = 0; align < 8; align++) {
                struct exact e = exact_copy(text, len, align);
                struct outcome got = feed_whole(e.p, len);
                EXPECT(same_outcome(got, want), "run %zu tail %zu align %zu: got %s@%zu",
                       run, t, align, result_name(got.result), got.bad);
                for (size_t split = 0; split <= len; split++) {
                    got = feed_split(e.p, len, split);
                    EXPECT(same_outcome(got, want),
                           "run %zu tail %zu split %zu: got %s@%zu", run, t, split,
                           result_name(got.result), got.bad);
                }
                free(e.block);
            }
        }
    }
}
END_TEST

/* A non-ASCII byte at each position of a 64-byte ASCII run. */
START_TEST(test_high_byte_in_run)
{
    static const uint8_t bytes[] = {0x80, 0xBF, 0xC0, 0xF5, 0xFF};
    uint8_t text[64];
    for (size_t b = 0; b < N_ELEMS(bytes); b++) {
        for (size_t at = 0; at < sizeof(text); at++) {
            memset(text, 'x', sizeof(text));
            text[at] = bytes[b];
            for (size_t align = 0; align < 8; align++) {
                struct exact e = exact_copy(text, sizeof(text), align);
                struct outcome got = feed_whole(e.p, sizeof(text));
                EXPECT(got.result == UTF8_INVALID && got.bad == at,
                       "%02X at %zu align %zu: got %s@%zu", bytes[b], at, align,
                       result_name(got.result), got.bad);
                free(e.block);
            }
        }
    }
}
END_TEST

/* --- random input against the reference ----------------------------------- */

static size_t
put_code_point(uint8_t *out, uint32_t cp)
{
    return encode_n(cp, min_len(cp), out);
}

/* Appends one piece of text: mostly valid (ASCII runs, characters of each
 * length, boundary values), now and then a defect. */
static size_t
gen_piece(uint64_t *rng, uint8_t *out)
{
    static const uint32_t edges[] = {0x7F,   0x80,   0x7FF,  0x800,   0xD7FF,
                                     0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF};
    size_t roll = rng_below(rng, 1000);
    uint32_t cp;

    if (roll < 400) {
        size_t n = 1 + rng_below(rng, 24);
        for (size_t k = 0; k < n; k++)
            out[k] = (uint8_t)rng_below(rng, 0x80);
        return n;
    }
    if (roll < 550)
        return put_code_point(out, 0x80 + (uint32_t)rng_below(rng, 0x800 - 0x80));
    if (roll < 700) {
        do
            cp = 0x800 + (uint32_t)rng_below(rng, 0x10000 - 0x800);
        while (cp >= 0xD800 && cp <= 0xDFFF);
        return put_code_point(out, cp);
    }
    if (roll < 830)
        return put_code_point(out,
                              0x10000 + (uint32_t)rng_below(rng, 0x110000 - 0x10000));
    if (roll < 970)
        return put_code_point(out, edges[rng_below(rng, N_ELEMS(edges))]);
    /* defects, about one piece in 33 */
    switch (roll % 6) {
    case 0: /* any byte */
        out[0] = (uint8_t)rng_next(rng);
        return 1;
    case 1: /* a truncated character */
        cp = 0x80 + (uint32_t)rng_below(rng, 0x110000 - 0x80);
        return put_code_point(out, cp) - 1;
    case 2: /* a surrogate */
        return encode_n(0xD800 + (uint32_t)rng_below(rng, 0x800), 3, out);
    case 3: /* an overlong */
        cp = (uint32_t)rng_below(rng, 0x10000);
        return encode_n(cp, min_len(cp) + 1 + (unsigned)rng_below(rng, 4 - min_len(cp)),
                        out);
    case 4: /* past U+10FFFF */
        return encode_n(0x110000 + (uint32_t)rng_below(rng, 0xF0000), 4, out);
    default: /* a lone continuation */
        out[0] = (uint8_t)(0x80 + rng_below(rng, 0x40));
        return 1;
    }
}

static size_t
gen_text(uint64_t *rng, uint8_t *out, size_t target)
{
    size_t len = 0;
    while (len < target)
        len += gen_piece(rng, out + len);
    return len;
}

#define RANDOM_SEQUENCES 300000

START_TEST(test_random_vs_reference)
{
    uint64_t rng = UINT64_C(0x7574663820746573); /* fixed: failures reproduce */
    uint8_t text[600];
    size_t valid = 0;
    for (size_t n = 0; n < RANDOM_SEQUENCES; n++) {
        size_t target =
            rng_below(&rng, 8) == 0 ? rng_below(&rng, 512) : rng_below(&rng, 96);
        size_t len = gen_text(&rng, text, target);
        struct outcome want = ref_validate(text, len);
        valid += want.result == UTF8_OK;
        struct exact e = exact_copy(text, len, rng_below(&rng, 8));
        struct outcome got = feed_whole(e.p, len);
        EXPECT(same_outcome(got, want), "sequence %zu whole: got %s@%zu, want %s@%zu", n,
               result_name(got.result), got.bad, result_name(want.result), want.bad);
        got = feed_split(e.p, len, rng_below(&rng, len + 1));
        EXPECT(same_outcome(got, want), "sequence %zu split: got %s@%zu", n,
               result_name(got.result), got.bad);
        got = feed_random_pieces(e.p, len, &rng, 1 + rng_below(&rng, 20));
        EXPECT(same_outcome(got, want), "sequence %zu pieces: got %s@%zu", n,
               result_name(got.result), got.bad);
        EXPECT(utf8_valid(e.p, len) == (want.result == UTF8_OK),
               "sequence %zu utf8_valid", n);
        free(e.block);
    }
    /* The generator must produce plenty of both kinds to mean anything. */
    ck_assert_msg(valid > RANDOM_SEQUENCES / 2 && valid < RANDOM_SEQUENCES * 9 / 10,
                  "%zu of %d valid", valid, RANDOM_SEQUENCES);
}
END_TEST

/* Long messages of mixed text, valid and then with one defect at a random
 * place, fed in random pieces. */
START_TEST(test_long_mixed)
{
    enum { LONG_LEN = 1 << 16 };
    uint64_t rng = UINT64_C(0x6c6f6e67206d6978);
    uint8_t *text = malloc(LONG_LEN + 8);
    ck_assert_ptr_nonnull(text);
    for (int round = 0; round < 64; round++) {
        size_t len = 0;
        while (len < LONG_LEN - 64) {
            uint8_t piece[32];
            size_t n = gen_piece(&rng, piece);
            if (ref_validate(piece, n).result != UTF8_OK)
                continue;
            memcpy(text + len, piece, n);
            len += n;
        }
        ck_assert(ref_validate(text, len).result == UTF8_OK);
        ck_assert(utf8_valid(text, len));

        size_t at = rng_below(&rng, len);
        text[at] = (uint8_t)(0xF8 | rng_below(&rng, 8));
        struct outcome want = {UTF8_INVALID, at};
        struct outcome got = feed_whole(text, len);
        ck_assert_msg(same_outcome(got, want), "round %d: got %s@%zu, want @%zu", round,
                      result_name(got.result), got.bad, at);
        got = feed_random_pieces(text, len, &rng, 4096);
        ck_assert_msg(same_outcome(got, want), "round %d pieces: got %s@%zu, want @%zu",
                      round, result_name(got.result), got.bad, at);
    }
    free(text);
}
END_TEST

/* --- the state ------------------------------------------------------------- */

START_TEST(test_sticky_invalid)
{
    struct utf8_state st = UTF8_INIT;
    size_t off = SIZE_MAX;
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"ab\xc0", 3, &off),
                     UTF8_INVALID);
    ck_assert_uint_eq(off, 2);
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"plain", 5, &off), UTF8_INVALID);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(utf8_validate(&st, NULL, 0, &off), UTF8_INVALID);
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"x", 1, NULL), UTF8_INVALID);
}
END_TEST

START_TEST(test_empty_keeps_state)
{
    struct utf8_state st = UTF8_INIT;
    ck_assert_int_eq(utf8_validate(&st, NULL, 0, NULL), UTF8_OK);
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"\xe2\x82", 2, NULL),
                     UTF8_INCOMPLETE);
    ck_assert_int_eq(utf8_validate(&st, NULL, 0, NULL), UTF8_INCOMPLETE);
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"\xac", 1, NULL), UTF8_OK);
    ck_assert(utf8_valid(NULL, 0));
}
END_TEST

START_TEST(test_offset_untouched_unless_invalid)
{
    struct utf8_state st = UTF8_INIT;
    size_t off = 12345;
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"ok\xc3", 3, &off),
                     UTF8_INCOMPLETE);
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"\xa9", 1, &off), UTF8_OK);
    ck_assert_uint_eq(off, 12345);
}
END_TEST

/* A state the automaton cannot produce is treated as invalid, not used. */
START_TEST(test_foreign_state)
{
    struct utf8_state st = {UINT32_MAX};
    size_t off = SIZE_MAX;
    ck_assert_int_eq(utf8_validate(&st, (const uint8_t *)"abc", 3, &off), UTF8_INVALID);
    ck_assert_uint_eq(off, 0);
}
END_TEST

static Suite *
utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("cases");
    tcase_add_loop_test(tc, test_case_whole, 0, N_ELEMS(cases));
    tcase_add_loop_test(tc, test_case_bytewise, 0, N_ELEMS(cases));
    tcase_add_loop_test(tc, test_case_split, 0, N_ELEMS(cases));
    tcase_add_loop_test(tc, test_fragments, 0, N_ELEMS(fragment_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("walks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_walk_single_bytes);
    tcase_add_test(tc, test_walk_second_bytes);
    tcase_add_test(tc, test_walk_code_points);
    tcase_add_test(tc, test_exhaustive_short);
    tcase_add_test(tc, test_four_byte_grid);
    suite_add_tcase(s, tc);

    tc = tcase_create("fast path");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ascii_runs);
    tcase_add_test(tc, test_high_byte_in_run);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_random_vs_reference);
    tcase_add_test(tc, test_long_mixed);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_test(tc, test_sticky_invalid);
    tcase_add_test(tc, test_empty_keeps_state);
    tcase_add_test(tc, test_offset_untouched_unless_invalid);
    tcase_add_test(tc, test_foreign_state);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(utf8_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
