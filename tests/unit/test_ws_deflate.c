/* test_ws_deflate: permessage-deflate offers (table), responses, and the codec. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gateway/ws_deflate.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* An offer and what the server makes of it: the verdict, and for an accepted
 * one the response it answers with. */
static const struct {
    const char *offer;
    enum ws_deflate_verdict verdict;
    const char *response;
} offers[] = {
    {"permessage-deflate", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {"PERMESSAGE-DEFLATE", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {" permessage-deflate ", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits=8", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits=15", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits=\"10\"", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits=\"1\\0\"", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"permessage-deflate;server_no_context_takeover", WS_DEFLATE_ACCEPTED,
     "permessage-deflate; server_no_context_takeover"},
    {"permessage-deflate ; client_no_context_takeover", WS_DEFLATE_ACCEPTED,
     "permessage-deflate; client_no_context_takeover"},
    {"permessage-deflate; server_max_window_bits=9", WS_DEFLATE_ACCEPTED,
     "permessage-deflate; server_max_window_bits=9"},
    {"permessage-deflate; server_max_window_bits = 12", WS_DEFLATE_ACCEPTED,
     "permessage-deflate; server_max_window_bits=12"},
    {"permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
     "server_max_window_bits=15; client_max_window_bits=15",
     WS_DEFLATE_ACCEPTED,
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15"},
    {"foo, permessage-deflate", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {"foo; a=1; b=\"x y\"", WS_DEFLATE_MALFORMED, NULL}, /* quoted value not a token */
    {"foo; a=1; b=\"xy\", permessage-deflate", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {",, permessage-deflate ,", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    {"permessage-deflate; server_max_window_bits=8", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=8, permessage-deflate; "
     "server_max_window_bits=9",
     WS_DEFLATE_ACCEPTED, "permessage-deflate; server_max_window_bits=9"},
    {"permessage-deflate; server_max_window_bits", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=7", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=16", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=010", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=1x", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_max_window_bits=99999999999999999999",
     WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; client_max_window_bits=0", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; server_no_context_takeover=true", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; client_no_context_takeover=\"\"", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
     WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; client_max_window_bits; client_max_window_bits=10",
     WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; x-unknown", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate; x-unknown, permessage-deflate", WS_DEFLATE_ACCEPTED,
     "permessage-deflate"},
    {"x-webkit-deflate-frame", WS_DEFLATE_DECLINED, NULL},
    {"", WS_DEFLATE_DECLINED, NULL},
    {"permessage-deflate;", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate; =1", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate; a=", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate; a=\"open", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate; a=\"esc\\", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate x", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate, \"quoted\"", WS_DEFLATE_MALFORMED, NULL},
    {"permessage-deflate, foo; bar=1 ; baz", WS_DEFLATE_ACCEPTED, "permessage-deflate"},
    /* A malformed tail makes the whole value malformed, even after a match. */
    {"permessage-deflate, ;", WS_DEFLATE_MALFORMED, NULL},
};

static void
check_offer(size_t i, const char *value, size_t len)
{
    struct ws_deflate_params p;
    memset(&p, 0xa5, sizeof(p));
    enum ws_deflate_verdict v = ws_deflate_negotiate(value, len, &p);
    ck_assert_msg(v == offers[i].verdict, "offer \"%s\": verdict %d, want %d",
                  offers[i].offer, v, offers[i].verdict);
    if (v != WS_DEFLATE_ACCEPTED)
        return;
    char out[WS_DEFLATE_RESPONSE_MAX];
    size_t n = ws_deflate_response(&p, out);
    ck_assert_uint_eq(n, strlen(out));
    ck_assert_msg(strcmp(out, offers[i].response) == 0, "offer \"%s\": response \"%s\"",
                  offers[i].offer, out);
}

START_TEST(test_offers)
{
    check_offer((size_t)_i, offers[_i].offer, strlen(offers[_i].offer));
}
END_TEST

/* The value is read as (buf, len): no NUL is needed, and a copy with no
 * terminator (bytes beyond it are poison) reads the same. */
START_TEST(test_offers_unterminated)
{
    size_t len = strlen(offers[_i].offer);
    char *copy = malloc(len + 8);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, offers[_i].offer, len);
    memcpy(copy + len, ";\"=,x\\  ", 8);
    check_offer((size_t)_i, copy, len);
    free(copy);
}
END_TEST

START_TEST(test_response_longest)
{
    struct ws_deflate_params p = {true, true, 15, true};
    char out[WS_DEFLATE_RESPONSE_MAX];
    size_t n = ws_deflate_response(&p, out);
    ck_assert_uint_lt(n, sizeof(out));
    ck_assert_str_eq(out, "permessage-deflate; server_no_context_takeover; "
                          "client_no_context_takeover; server_max_window_bits=15");
}
END_TEST

/* The peer's side of a connection: what a client's zlib does. */
struct peer {
    z_stream def; /* the client's compressor */
    z_stream inf; /* reads the server's messages */
};

static void
peer_init(struct peer *pe, int server_bits)
{
    memset(pe, 0, sizeof(*pe));
    ck_assert_int_eq(deflateInit2(&pe->def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    ck_assert_int_eq(inflateInit2(&pe->inf, -server_bits), Z_OK);
}

static void
peer_free(struct peer *pe)
{
    deflateEnd(&pe->def);
    inflateEnd(&pe->inf);
}

/* Compresses a message as a client does, without the 4-byte tail. */
static size_t
peer_compress(struct peer *pe, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    pe->def.next_in = (Bytef *)in;
    pe->def.avail_in = (uInt)len;
    pe->def.next_out = out;
    pe->def.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&pe->def, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_eq(pe->def.avail_in, 0);
    size_t n = cap - pe->def.avail_out;
    ck_assert_uint_ge(n, 4);
    ck_assert_mem_eq(out + n - 4, "\x00\x00\xff\xff", 4);
    return n - 4;
}

/* Inflates what the server compressed, as a client does. */
static size_t
peer_inflate(struct peer *pe, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    uint8_t *joined = malloc(len + 4);
    ck_assert_ptr_nonnull(joined);
    memcpy(joined, in, len);
    memcpy(joined + len, tail, 4);
    pe->inf.next_in = joined;
    pe->inf.avail_in = (uInt)(len + 4);
    pe->inf.next_out = out;
    pe->inf.avail_out = (uInt)cap;
    int rc = inflate(&pe->inf, Z_SYNC_FLUSH);
    ck_assert_msg(rc == Z_OK || rc == Z_BUF_ERROR, "client inflate: %d", rc);
    ck_assert_uint_eq(pe->inf.avail_in, 0);
    free(joined);
    return cap - pe->inf.avail_out;
}

static void
fill_text(uint8_t *buf, size_t len, unsigned seed)
{
    static const char words[] = "alpha beta gamma delta epsilon zeta eta theta ";
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)words[(i * 7 + seed + i / 97) % (sizeof(words) - 1)];
}

/* The server's messages, read by a client's inflater, with and without
 * context takeover, for every window size the server may be held to. */
START_TEST(test_compress_round_trip)
{
    static const size_t sizes[] = {0, 1, 100, 5000, 70000, 300000};
    bool nct = _i & 1;
    unsigned bits = 9 + (unsigned)(_i >> 1);
    struct ws_deflate_params p = {.server_no_context_takeover = nct,
                                  .server_max_window_bits = (uint8_t)bits};
    struct ws_deflate *d = ws_deflate_new(&p);
    struct peer pe;
    peer_init(&pe, (int)bits);
    uint8_t *msg = malloc(300000), *back = malloc(300001);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(back);
    for (size_t round = 0; round < 2; round++) {
        for (size_t k = 0; k < N_ELEMS(sizes); k++) {
            fill_text(msg, sizes[k], (unsigned)(k + round));
            uint8_t *z;
            size_t zlen;
            ck_assert_int_eq(ws_deflate_compress(d, msg, sizes[k], &z, &zlen), 0);
            if (nct) { /* each message must stand alone */
                inflateEnd(&pe.inf);
                ck_assert_int_eq(inflateInit2(&pe.inf, -(int)bits), Z_OK);
            }
            size_t n = peer_inflate(&pe, z, zlen, back, 300001);
            ck_assert_uint_eq(n, sizes[k]);
            ck_assert(sizes[k] == 0 || memcmp(msg, back, n) == 0);
            if (sizes[k] >= 5000)
                ck_assert_uint_lt(zlen, sizes[k] / 2);
            free(z);
        }
    }
    free(msg);
    free(back);
    peer_free(&pe);
    ws_deflate_free(d);
}
END_TEST

/* The client's messages, fed to the server's inflater whole and in pieces
 * of every size up to 7 bytes, with and without client context takeover. */
START_TEST(test_inflate_pieces)
{
    bool nct = _i >= 8;
    size_t piece = (size_t)(_i % 8); /* 0: whole */
    struct ws_deflate_params p = {.client_no_context_takeover = nct,
                                  .server_max_window_bits = 15};
    struct ws_deflate *d = ws_deflate_new(&p);
    struct peer pe;
    peer_init(&pe, 15);
    uint8_t msg[20000], z[25000];
    for (unsigned m = 0; m < 4; m++) {
        fill_text(msg, sizeof(msg), m % 2);
        if (nct) {
            deflateEnd(&pe.def);
            ck_assert_int_eq(deflateInit2(&pe.def, 6, Z_DEFLATED, -15, 8, 0), Z_OK);
        }
        size_t zlen = peer_compress(&pe, msg, sizeof(msg), z, sizeof(z));
        struct ws_inflate_buf buf = {0};
        size_t at = 0;
        do {
            size_t n = piece == 0 ? zlen - at : piece;
            if (n > zlen - at)
                n = zlen - at;
            ck_assert_int_eq(ws_deflate_inflate(d, z + at, n, false, &buf, sizeof(msg)),
                             WS_INFLATE_OK);
            at += n;
        } while (at < zlen);
        ck_assert_int_eq(ws_deflate_inflate(d, NULL, 0, true, &buf, sizeof(msg)),
                         WS_INFLATE_OK);
        ck_assert_uint_eq(buf.len, sizeof(msg));
        ck_assert_mem_eq(buf.data, msg, sizeof(msg));
        free(buf.data);
    }
    peer_free(&pe);
    ws_deflate_free(d);
}
END_TEST

/* A bomb stops at limit + 1 bytes of output, whatever it would inflate to. */
START_TEST(test_inflate_bomb)
{
    struct ws_deflate_params p = {.server_max_window_bits = 15};
    struct ws_deflate *d = ws_deflate_new(&p);
    struct peer pe;
    peer_init(&pe, 15);
    size_t big = 16u << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *z = malloc(big / 100);
    ck_assert_ptr_nonnull(zeros);
    ck_assert_ptr_nonnull(z);
    size_t zlen = peer_compress(&pe, zeros, big, z, big / 100);
    ck_assert_uint_lt(zlen, 64 * 1024);
    const size_t limit = 100000;
    struct ws_inflate_buf buf = {0};
    ck_assert_int_eq(ws_deflate_inflate(d, z, zlen, true, &buf, limit),
                     WS_INFLATE_TOO_BIG);
    ck_assert_uint_le(buf.cap, limit + 1);
    free(buf.data);
    /* Exactly the limit is fine (a fresh codec: the failed one was reset). */
    ws_deflate_free(d);
    d = ws_deflate_new(&p);
    peer_free(&pe);
    peer_init(&pe, 15);
    zlen = peer_compress(&pe, zeros, limit, z, big / 100);
    memset(&buf, 0, sizeof(buf));
    ck_assert_int_eq(ws_deflate_inflate(d, z, zlen, true, &buf, limit), WS_INFLATE_OK);
    ck_assert_uint_eq(buf.len, limit);
    free(buf.data);
    free(zeros);
    free(z);
    peer_free(&pe);
    ws_deflate_free(d);
}
END_TEST

START_TEST(test_inflate_garbage)
{
    static const uint8_t bad[][6] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* reserved block type 11 */
        {0x00, 0x05, 0x00, 0x00, 0x00, 0x00}, /* stored block, LEN != ~NLEN */
    };
    struct ws_deflate_params p = {.server_max_window_bits = 15};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct ws_deflate *d = ws_deflate_new(&p);
        struct ws_inflate_buf buf = {0};
        ck_assert_int_eq(ws_deflate_inflate(d, bad[i], sizeof(bad[i]), true, &buf, 1000),
                         WS_INFLATE_BAD);
        free(buf.data);
        ws_deflate_free(d);
    }
}
END_TEST

/* A message ended by a BFINAL block has no sync flush (no tail); the next
 * message starts a fresh stream. */
START_TEST(test_inflate_bfinal)
{
    struct ws_deflate_params p = {.server_max_window_bits = 15};
    struct ws_deflate *d = ws_deflate_new(&p);
    for (int m = 0; m < 3; m++) {
        uint8_t msg[3000], z[4000];
        fill_text(msg, sizeof(msg), (unsigned)m);
        uLongf zlen = sizeof(z);
        z_stream s;
        memset(&s, 0, sizeof(s));
        ck_assert_int_eq(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
                         Z_OK);
        s.next_in = msg;
        s.avail_in = sizeof(msg);
        s.next_out = z;
        s.avail_out = (uInt)zlen;
        ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
        zlen = sizeof(z) - s.avail_out;
        deflateEnd(&s);
        struct ws_inflate_buf buf = {0};
        ck_assert_int_eq(ws_deflate_inflate(d, z, zlen, true, &buf, sizeof(msg)),
                         WS_INFLATE_OK);
        ck_assert_uint_eq(buf.len, sizeof(msg));
        ck_assert_mem_eq(buf.data, msg, sizeof(msg));
        free(buf.data);
    }
    ws_deflate_free(d);
}
END_TEST

static Suite *
ws_deflate_suite(void)
{
    Suite *s = suite_create("ws_deflate");
    TCase *tc = tcase_create("negotiation");
    tcase_add_loop_test(tc, test_offers, 0, (int)N_ELEMS(offers));
    tcase_add_loop_test(tc, test_offers_unterminated, 0, (int)N_ELEMS(offers));
    tcase_add_test(tc, test_response_longest);
    suite_add_tcase(s, tc);

    tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_compress_round_trip, 0, 14); /* bits 9..15 x nct */
    tcase_add_loop_test(tc, test_inflate_pieces, 0, 16);
    tcase_add_test(tc, test_inflate_bomb);
    tcase_add_test(tc, test_inflate_garbage);
    tcase_add_test(tc, test_inflate_bfinal);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_deflate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
