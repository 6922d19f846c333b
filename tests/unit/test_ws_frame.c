/* test_ws_frame: the frame codec against RFC 6455 §5 examples and every violation. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws_frame.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum rules_kind {
    R_SERVER = 0, /* receiving from a client: frames must be masked */
    R_CLIENT,     /* receiving from a server: frames must not be masked */
    R_ANY,        /* the tunnel: either */
    R_DEFLATE,    /* a server with permessage-deflate: RSV1 allowed */
};

static const struct ws_frame_rules rules_table[] = {
    [R_SERVER] = {.allowed_rsv = 0, .require_masked = true},
    [R_CLIENT] = {.allowed_rsv = 0, .forbid_masked = true},
    [R_ANY] = {.allowed_rsv = 0},
    [R_DEFLATE] = {.allowed_rsv = 0x4, .require_masked = true},
};

struct header_case {
    const char *name;
    const char *bytes; /* the header, possibly followed by payload bytes */
    size_t len;
    enum rules_kind rules;
    int result; /* header length, or -1 */
    bool fin;
    uint8_t rsv;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
};

/* clang-format off */
#define B(s) s, sizeof(s) - 1
/* A header that violates RFC 6455 under the given rules. */
#define BAD(name, s, r) {name, B(s), r, -1, false, 0, 0, false, {0}, 0}

#define TXT WS_OP_TEXT
#define BIN WS_OP_BINARY
#define CONT WS_OP_CONTINUATION
#define M37 {0x37, 0xfa, 0x21, 0x3d}
#define M1234 {1, 2, 3, 4}
#define NOMASK {0}

/* Each valid case: name and bytes, then rules, header length, fin, rsv,
 * opcode, masked, mask, payload length. */
static const struct header_case header_cases[] = {
    /* RFC 6455 §5.7 */
    {"unmasked Hello", B("\x81\x05Hello"),
     R_CLIENT, 2, true, 0, TXT, false, NOMASK, 5},
    {"masked Hello", B("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
     R_SERVER, 6, true, 0, TXT, true, M37, 5},
    {"fragment Hel", B("\x01\x03Hel"),
     R_CLIENT, 2, false, 0, TXT, false, NOMASK, 3},
    {"fragment lo", B("\x80\x02lo"),
     R_CLIENT, 2, true, 0, CONT, false, NOMASK, 2},
    {"unmasked ping", B("\x89\x05Hello"),
     R_CLIENT, 2, true, 0, WS_OP_PING, false, NOMASK, 5},
    {"masked pong", B("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
     R_SERVER, 6, true, 0, WS_OP_PONG, true, M37, 5},
    {"256 bytes binary", B("\x82\x7e\x01\x00"),
     R_CLIENT, 4, true, 0, BIN, false, NOMASK, 256},
    {"64KiB binary", B("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
     R_CLIENT, 10, true, 0, BIN, false, NOMASK, 65536},
    /* length boundaries */
    {"empty text", B("\x81\x00"),
     R_CLIENT, 2, true, 0, TXT, false, NOMASK, 0},
    {"125 in 7 bits", B("\x82\x7d"),
     R_CLIENT, 2, true, 0, BIN, false, NOMASK, 125},
    {"126 in 16 bits", B("\x82\x7e\x00\x7e"),
     R_CLIENT, 4, true, 0, BIN, false, NOMASK, 126},
    {"65535 in 16 bits", B("\x82\x7e\xff\xff"),
     R_CLIENT, 4, true, 0, BIN, false, NOMASK, 65535},
    {"largest 63-bit length", B("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
     R_CLIENT, 10, true, 0, BIN, false, NOMASK, UINT64_C(0x7fffffffffffffff)},
    {"masked 64-bit", B("\x02\xff\x00\x00\x00\x01\x00\x00\x00\x00\x01\x02\x03\x04"),
     R_SERVER, 14, false, 0, BIN, true, M1234, UINT64_C(0x100000000)},
    {"masked 16-bit", B("\x82\xfe\x01\x00\x37\xfa\x21\x3d"),
     R_SERVER, 8, true, 0, BIN, true, M37, 256},
    /* control frames at their limit, close frames */
    {"ping of 125", B("\x89\x7d"),
     R_CLIENT, 2, true, 0, WS_OP_PING, false, NOMASK, 125},
    {"empty masked close", B("\x88\x80\x01\x02\x03\x04"),
     R_SERVER, 6, true, 0, WS_OP_CLOSE, true, M1234, 0},
    {"close 1000", B("\x88\x02\x03\xe8"),
     R_CLIENT, 2, true, 0, WS_OP_CLOSE, false, NOMASK, 2},
    /* rules */
    {"RSV1 with deflate", B("\xc1\x85\x01\x02\x03\x04"),
     R_DEFLATE, 6, true, 0x4, TXT, true, M1234, 5},
    {"any: masked", B("\x81\x81\x01\x02\x03\x04"),
     R_ANY, 6, true, 0, TXT, true, M1234, 1},
    {"any: unmasked", B("\x81\x01"),
     R_ANY, 2, true, 0, TXT, false, NOMASK, 1},

    /* violations */
    BAD("RSV1 without extension", "\xc1\x05", R_CLIENT),
    BAD("RSV2 with deflate", "\xa1\x85\x01\x02\x03\x04", R_DEFLATE),
    BAD("RSV3", "\x91\x85\x01\x02\x03\x04", R_SERVER),
    BAD("opcode 3", "\x83\x00", R_CLIENT),
    BAD("opcode 7", "\x87\x00", R_CLIENT),
    BAD("opcode 0xB", "\x8b\x00", R_CLIENT),
    BAD("opcode 0xF", "\x8f\x00", R_CLIENT),
    BAD("fragmented ping", "\x09\x00", R_CLIENT),
    BAD("fragmented close", "\x08\x02\x03\xe8", R_CLIENT),
    BAD("ping of 126", "\x89\x7e\x00\x7e", R_CLIENT),
    BAD("close with 64-bit length", "\x88\x7f\x00\x00\x00\x00\x00\x01\x00\x00", R_CLIENT),
    BAD("64-bit length top bit", "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", R_CLIENT),
    BAD("16-bit length under 126", "\x82\x7e\x00\x7d", R_CLIENT),
    BAD("16-bit length of 0", "\x82\x7e\x00\x00", R_CLIENT),
    BAD("64-bit length < 64KiB", "\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff", R_CLIENT),
    BAD("masked from server", "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", R_CLIENT),
    BAD("unmasked from client", "\x81\x05Hello", R_SERVER),
};
/* clang-format on */

static void
check_fields(const struct header_case *c, const struct ws_frame_header *h)
{
    ck_assert_msg(h->fin == c->fin, "%s: fin", c->name);
    ck_assert_msg(h->rsv == c->rsv, "%s: rsv", c->name);
    ck_assert_msg(h->opcode == c->opcode, "%s: opcode", c->name);
    ck_assert_msg(h->masked == c->masked, "%s: masked", c->name);
    if (c->masked)
        ck_assert_msg(memcmp(h->mask, c->mask, 4) == 0, "%s: mask", c->name);
    ck_assert_msg(h->payload_len == c->payload_len, "%s: payload_len", c->name);
}

/* Parses exactly bytes[0..n) from a heap copy, so ASan sees any over-read. */
static int
parse_exact(const char *bytes, size_t n, enum rules_kind r, struct ws_frame_header *h,
            uint16_t *close_code)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, n);
    int rv = ws_frame_parse_header(copy, n, &rules_table[r], h, close_code);
    free(copy);
    return rv;
}

START_TEST(test_header_whole)
{
    const struct header_case *c = &header_cases[_i];
    struct ws_frame_header h;
    uint16_t code = 0;
    int rv = parse_exact(c->bytes, c->len, c->rules, &h, &code);
    ck_assert_msg(rv == c->result, "%s: got %d, want %d", c->name, rv, c->result);
    if (c->result > 0)
        check_fields(c, &h);
    else
        ck_assert_msg(code == WS_CLOSE_PROTOCOL_ERROR, "%s: close code %u", c->name,
                      code);
}
END_TEST

START_TEST(test_header_bytewise)
{
    const struct header_case *c = &header_cases[_i];
    struct ws_frame_header h;
    bool failed = false;

    for (size_t k = 0; k <= c->len; k++) {
        uint16_t code = 0;
        int rv = parse_exact(c->bytes, k, c->rules, &h, &code);
        if (c->result > 0) {
            /* Every proper prefix of the header is incomplete; from the full
             * header on, trailing payload bytes are not looked at. */
            int want = k < (size_t)c->result ? -2 : c->result;
            ck_assert_msg(rv == want, "%s: %zu bytes gave %d, want %d", c->name, k, rv,
                          want);
            if (rv > 0)
                check_fields(c, &h);
        } else {
            /* A violation may show before the header is complete, and once
             * shown it stays. */
            ck_assert_msg(rv == -2 || rv == -1, "%s: %zu bytes gave %d", c->name, k, rv);
            ck_assert_msg(!(failed && rv == -2), "%s: -1 then -2 at %zu", c->name, k);
            if (rv == -1) {
                ck_assert_uint_eq(code, WS_CLOSE_PROTOCOL_ERROR);
                failed = true;
            }
        }
    }
    if (c->result < 0)
        ck_assert_msg(failed, "%s: never failed", c->name);
}
END_TEST

START_TEST(test_rfc_masked_hello_payload)
{
    uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_frame_header h;
    uint16_t code;
    int n =
        ws_frame_parse_header(frame, sizeof(frame), &rules_table[R_SERVER], &h, &code);
    ck_assert_int_eq(n, 6);
    ws_frame_mask(frame + n, (size_t)h.payload_len, h.mask, 0);
    ck_assert_mem_eq(frame + n, "Hello", 5);
}
END_TEST

/* Every opcode value against the table of defined ones. */
START_TEST(test_opcodes_walked)
{
    for (unsigned op = 0; op < 16; op++) {
        uint8_t buf[2] = {(uint8_t)(0x80 | op), 0x00};
        struct ws_frame_header h;
        uint16_t code = 0;
        bool known = op <= 2 || (op >= 8 && op <= 10);
        int rv = ws_frame_parse_header(buf, 2, &rules_table[R_CLIENT], &h, &code);
        ck_assert_msg(rv == (known ? 2 : -1), "opcode %u gave %d", op, rv);
        if (known)
            ck_assert_uint_eq(h.opcode, op);
        ck_assert_msg(ws_opcode_is_control((uint8_t)op) == (op >= 8), "control %u", op);
    }
}
END_TEST

/* Every combination of reserved bits against every allowed set. */
START_TEST(test_rsv_walked)
{
    for (unsigned allowed = 0; allowed < 8; allowed++) {
        for (unsigned rsv = 0; rsv < 8; rsv++) {
            struct ws_frame_rules r = {.allowed_rsv = (uint8_t)allowed};
            uint8_t buf[2] = {(uint8_t)(0x80 | rsv << 4 | WS_OP_BINARY), 0x00};
            struct ws_frame_header h;
            uint16_t code = 0;
            int rv = ws_frame_parse_header(buf, 2, &r, &h, &code);
            bool ok = (rsv & ~allowed) == 0;
            ck_assert_msg(rv == (ok ? 2 : -1), "rsv %u allowed %u gave %d", rsv, allowed,
                          rv);
            if (ok)
                ck_assert_uint_eq(h.rsv, rsv);
        }
    }
}
END_TEST

struct encode_case {
    bool fin;
    uint8_t rsv;
    uint8_t opcode;
    const char *mask; /* NULL for unmasked */
    uint64_t payload_len;
    const char *bytes;
    size_t len;
};

/* clang-format off */
static const struct encode_case encode_cases[] = {
    {true, 0, WS_OP_TEXT, NULL, 5, B("\x81\x05")},
    {true, 0, WS_OP_TEXT, "\x37\xfa\x21\x3d", 5, B("\x81\x85\x37\xfa\x21\x3d")},
    {false, 0, WS_OP_TEXT, NULL, 3, B("\x01\x03")},
    {true, 0, WS_OP_CONTINUATION, NULL, 2, B("\x80\x02")},
    {true, 0, WS_OP_PING, NULL, 0, B("\x89\x00")},
    {true, 0, WS_OP_BINARY, NULL, 125, B("\x82\x7d")},
    {true, 0, WS_OP_BINARY, NULL, 126, B("\x82\x7e\x00\x7e")},
    {true, 0, WS_OP_BINARY, NULL, 256, B("\x82\x7e\x01\x00")},
    {true, 0, WS_OP_BINARY, NULL, 65535, B("\x82\x7e\xff\xff")},
    {true, 0, WS_OP_BINARY, NULL, 65536, B("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00")},
    {true, 0, WS_OP_BINARY, NULL, UINT64_C(0x7fffffffffffffff),
     B("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff")},
    {true, 0x4, WS_OP_TEXT, "\x01\x02\x03\x04", 65536,
     B("\xc1\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04")},
    {true, 0x7, WS_OP_BINARY, "\x00\x00\x00\x00", 300,
     B("\xf2\xfe\x01\x2c\x00\x00\x00\x00")},
};
/* clang-format on */

START_TEST(test_encode)
{
    const struct encode_case *c = &encode_cases[_i];
    uint8_t out[WS_FRAME_MAX_HEADER];
    size_t n = ws_frame_encode_header(out, c->fin, c->rsv, c->opcode,
                                      (const uint8_t *)c->mask, c->payload_len);
    ck_assert_uint_eq(n, c->len);
    ck_assert_mem_eq(out, c->bytes, n);

    /* It parses back to what was encoded. */
    struct ws_frame_rules r = {.allowed_rsv = 0x7};
    struct ws_frame_header h;
    uint16_t code;
    ck_assert_int_eq(ws_frame_parse_header(out, n, &r, &h, &code), (int)n);
    ck_assert(h.fin == c->fin);
    ck_assert_uint_eq(h.rsv, c->rsv);
    ck_assert_uint_eq(h.opcode, c->opcode);
    ck_assert(h.masked == (c->mask != NULL));
    if (c->mask != NULL)
        ck_assert_mem_eq(h.mask, c->mask, 4);
    ck_assert_uint_eq(h.payload_len, c->payload_len);
}
END_TEST

static void
naive_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(offset + i) % 4];
}

/* Every alignment of the buffer, every starting phase, lengths across the
 * word boundaries, against the byte-by-byte definition. */
START_TEST(test_mask_matches_naive)
{
    enum { MAX = 300 };
    static uint8_t src[MAX + 16], fast[MAX + 16], slow[MAX + 16];
    const uint8_t mask[4] = {0x9e, 0x37, 0x01, 0xc4};
    srand(12345);
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)rand();

    for (size_t align = 0; align < 16; align++) {
        for (uint64_t offset = 0; offset < 9; offset++) {
            for (size_t len = 0; len <= MAX; len += (len < 40 ? 1 : 37)) {
                memcpy(fast, src, sizeof(src));
                memcpy(slow, src, sizeof(src));
                ws_frame_mask(fast + align, len, mask, offset);
                naive_mask(slow + align, len, mask, offset);
                ck_assert_msg(memcmp(fast, slow, sizeof(fast)) == 0,
                              "align %zu offset %llu len %zu", align,
                              (unsigned long long)offset, len);
            }
        }
    }
}
END_TEST

/* A payload unmasked in random pieces equals one unmasked whole, and masking
 * twice restores it. */
START_TEST(test_mask_in_pieces)
{
    enum { LEN = 4096 };
    uint8_t *orig = malloc(LEN), *whole = malloc(LEN), *pieces = malloc(LEN);
    ck_assert_ptr_nonnull(orig);
    ck_assert_ptr_nonnull(whole);
    ck_assert_ptr_nonnull(pieces);
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    srand(777);
    for (size_t i = 0; i < LEN; i++)
        orig[i] = (uint8_t)rand();

    for (int round = 0; round < 50; round++) {
        memcpy(whole, orig, LEN);
        memcpy(pieces, orig, LEN);
        ws_frame_mask(whole, LEN, mask, 0);
        size_t at = 0;
        while (at < LEN) {
            size_t n = (size_t)rand() % 50;
            if (n > LEN - at)
                n = LEN - at;
            ws_frame_mask(pieces + at, n, mask, at);
            at += n;
        }
        ck_assert_mem_eq(whole, pieces, LEN);
        ws_frame_mask(whole, LEN, mask, 0);
        ck_assert_mem_eq(whole, orig, LEN);
    }
    free(orig);
    free(whole);
    free(pieces);
}
END_TEST

START_TEST(test_mask_large_offset)
{
    uint8_t a[13] = "Hello, world", b[13] = "Hello, world";
    const uint8_t mask[4] = {1, 2, 3, 4};
    uint64_t offset = UINT64_C(0xfffffffffffffff1);
    ws_frame_mask(a, sizeof(a), mask, offset);
    naive_mask(b, sizeof(b), mask, offset);
    ck_assert_mem_eq(a, b, sizeof(a));
}
END_TEST

struct close_code_case {
    uint16_t code;
    bool valid;
};

/* clang-format off */
static const struct close_code_case close_code_cases[] = {
    {0, false},     {999, false},   {1000, true},   {1001, true},   {1002, true},
    {1003, true},   {1004, false},  {1005, false},  {1006, false},  {1007, true},
    {1008, true},   {1009, true},   {1010, true},   {1011, true},   {1012, true},
    {1013, true},   {1014, true},   {1015, false},  {1016, false},  {1100, false},
    {2000, false},  {2999, false},  {3000, true},   {3999, true},   {4000, true},
    {4999, true},   {5000, false},  {65535, false},
};
/* clang-format on */

START_TEST(test_close_code_cases)
{
    const struct close_code_case *c = &close_code_cases[_i];
    ck_assert_msg(ws_close_code_valid(c->code) == c->valid, "code %u", c->code);
}
END_TEST

/* Every 16-bit value against RFC 6455 §7.4 stated as ranges. */
START_TEST(test_close_code_walked)
{
    for (uint32_t c = 0; c <= UINT16_MAX; c++) {
        bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                    (c >= 3000 && c <= 4999);
        ck_assert_msg(ws_close_code_valid((uint16_t)c) == want, "code %u", c);
    }
}
END_TEST

struct close_parse_case {
    const char *payload;
    size_t len;
    int result;
    uint16_t code;
    const char *reason;
};

/* clang-format off */
static const struct close_parse_case close_parse_cases[] = {
    {"", 0, 0, 1005, ""},
    {"\x03", 1, -1, 0, NULL},
    {B("\x03\xe8"), 0, 1000, ""},
    {B("\x03\xe8" "bye"), 0, 1000, "bye"},
    {B("\x03\xe9\xc3\xa9"), 0, 1001, "\xc3\xa9"},
    {B("\x0b\xb8"), 0, 3000, ""},
    {B("\x13\x87" "x"), 0, 4999, "x"},
    {B("\x03\xed"), -1, 0, NULL}, /* 1005 */
    {B("\x03\xee"), -1, 0, NULL}, /* 1006 */
    {B("\x03\xf7"), -1, 0, NULL}, /* 1015 */
    {B("\x03\xe7"), -1, 0, NULL}, /* 999 */
    {B("\x00\x00"), -1, 0, NULL},
    {B("\x0b\xb7"), -1, 0, NULL}, /* 2999 */
    {B("\x13\x88"), -1, 0, NULL}, /* 5000 */
};
/* clang-format on */

START_TEST(test_close_parse)
{
    const struct close_parse_case *c = &close_parse_cases[_i];
    uint8_t *copy = malloc(c->len > 0 ? c->len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, c->payload, c->len);
    uint16_t code = 0;
    const uint8_t *reason = NULL;
    size_t reason_len = 99;
    int rv = ws_close_parse(copy, c->len, &code, &reason, &reason_len);
    ck_assert_int_eq(rv, c->result);
    if (rv == 0) {
        ck_assert_uint_eq(code, c->code);
        ck_assert_uint_eq(reason_len, strlen(c->reason));
        ck_assert_ptr_nonnull(reason);
        ck_assert_mem_eq(reason, c->reason, reason_len);
    }
    free(copy);
}
END_TEST

/* One byte is never a code, even when the next byte in memory would make one. */
START_TEST(test_close_parse_one_byte)
{
    const uint8_t buf[2] = {0x03, 0xe8};
    uint16_t code = 0;
    const uint8_t *reason = NULL;
    size_t reason_len = 0;
    ck_assert_int_eq(ws_close_parse(buf, 1, &code, &reason, &reason_len), -1);
    ck_assert_int_eq(ws_close_parse(buf, 2, &code, &reason, &reason_len), 0);
    ck_assert_uint_eq(code, 1000);
}
END_TEST

static char *
repeat(char ch, size_t n, const char *suffix)
{
    char *s = malloc(n + strlen(suffix) + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, ch, n);
    strcpy(s + n, suffix);
    return s;
}

START_TEST(test_close_build_short)
{
    uint8_t out[WS_CONTROL_MAX];
    size_t n = ws_close_build(out, WS_CLOSE_GOING_AWAY, "draining");
    ck_assert_uint_eq(n, 10);
    const uint8_t going_away[] = {0x03, 0xe9, 'd', 'r', 'a', 'i', 'n', 'i', 'n', 'g'};
    ck_assert_mem_eq(out, going_away, sizeof(going_away));
    n = ws_close_build(out, WS_CLOSE_TOO_BIG, NULL);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(out, "\x03\xf1", 2);
    n = ws_close_build(out, 4000, "");
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(out, "\x0f\xa0", 2);
    /* "no status" is the empty payload on the wire */
    ck_assert_uint_eq(ws_close_build(out, WS_CLOSE_NO_STATUS, "ignored"), 0);
}
END_TEST

struct close_build_case {
    size_t pad;         /* ASCII bytes before the suffix */
    const char *suffix; /* then this */
    size_t want_reason; /* reason bytes kept */
};

/* clang-format off */
static const struct close_build_case close_build_cases[] = {
    {123, "", 123},              /* exactly fits */
    {124, "", 123},              /* one too many */
    {500, "", 123},
    {122, "\xc3\xa9", 122},      /* é straddles the limit */
    {121, "\xc3\xa9", 123},      /* é ends exactly at the limit */
    {121, "\xc3\xa9z", 123},
    {121, "\xe2\x82\xac", 121},  /* € (3 bytes) straddles */
    {120, "\xe2\x82\xac", 123},
    {122, "\xe2\x82\xac", 122},
    {121, "\xf0\x9f\x98\x80", 121}, /* 😀 (4 bytes) straddles by 2 */
    {120, "\xf0\x9f\x98\x80", 120},
    {122, "\xf0\x9f\x98\x80", 122},
    {119, "\xf0\x9f\x98\x80" "b", 123},
};
/* clang-format on */

START_TEST(test_close_build_truncates)
{
    const struct close_build_case c = close_build_cases[_i];
    char *reason = repeat('a', c.pad, c.suffix);
    uint8_t out[WS_CONTROL_MAX + 8];
    memset(out, 0xee, sizeof(out));
    size_t n = ws_close_build(out, WS_CLOSE_POLICY, reason);
    ck_assert_uint_le(n, WS_CONTROL_MAX);
    ck_assert_uint_eq(n, 2 + c.want_reason);
    ck_assert_uint_eq(out[WS_CONTROL_MAX], 0xee);
    ck_assert_mem_eq(out + 2, reason, c.want_reason);

    uint16_t code;
    const uint8_t *r;
    size_t rlen;
    ck_assert_int_eq(ws_close_parse(out, n, &code, &r, &rlen), 0);
    ck_assert_uint_eq(code, WS_CLOSE_POLICY);
    ck_assert_uint_eq(rlen, c.want_reason);
    /* never ends inside a UTF-8 sequence */
    if (rlen > 0) {
        size_t lead = rlen - 1;
        while (lead > 0 && (r[lead] & 0xc0) == 0x80)
            lead--;
        size_t seq = r[lead] < 0x80 ? 1 : r[lead] < 0xe0 ? 2 : r[lead] < 0xf0 ? 3 : 4;
        ck_assert_uint_eq(lead + seq, rlen);
    }
    free(reason);
}
END_TEST

static Suite *
ws_frame_suite(void)
{
    Suite *s = suite_create("ws_frame");
    TCase *tc = tcase_create("header");
    tcase_add_loop_test(tc, test_header_whole, 0, N_ELEMS(header_cases));
    tcase_add_loop_test(tc, test_header_bytewise, 0, N_ELEMS(header_cases));
    tcase_add_test(tc, test_rfc_masked_hello_payload);
    tcase_add_test(tc, test_opcodes_walked);
    tcase_add_test(tc, test_rsv_walked);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_loop_test(tc, test_encode, 0, N_ELEMS(encode_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("mask");
    tcase_add_test(tc, test_mask_matches_naive);
    tcase_add_test(tc, test_mask_in_pieces);
    tcase_add_test(tc, test_mask_large_offset);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_loop_test(tc, test_close_code_cases, 0, N_ELEMS(close_code_cases));
    tcase_add_test(tc, test_close_code_walked);
    tcase_add_loop_test(tc, test_close_parse, 0, N_ELEMS(close_parse_cases));
    tcase_add_test(tc, test_close_parse_one_byte);
    tcase_add_test(tc, test_close_build_short);
    tcase_add_loop_test(tc, test_close_build_truncates, 0, N_ELEMS(close_build_cases));
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_frame_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
