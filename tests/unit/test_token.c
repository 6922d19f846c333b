/* test_token: extraction from each source, their order, and malformed input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_HEADERS 4
#define MAX_SOURCES 4

enum {
    HDR = CFG_TOKEN_HEADER,
    QRY = CFG_TOKEN_QUERY,
    CKE = CFG_TOKEN_COOKIE,
    SUB = CFG_TOKEN_SUBPROTOCOL
};

struct token_case {
    const char *name;
    const char *headers[MAX_HEADERS][2]; /* name, value; ends at a NULL name */
    const char *query;                   /* NULL when the request has none */
    int sources[MAX_SOURCES];            /* ends at 0 */
    enum token_status status;
    int kind;
    const char *token;
};

/* clang-format off */
#define AZ "Authorization"
#define SWP "Sec-WebSocket-Protocol"
#define OK(kind, token) TOKEN_OK, kind, token
#define NONE_ TOKEN_NONE, 0, ""
#define BAD TOKEN_MALFORMED, 0, ""

static const struct token_case token_cases[] = {
    /* Authorization */
    {"bearer", {{AZ, "Bearer abc"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"scheme lower", {{AZ, "bearer abc"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"scheme upper", {{AZ, "BEARER abc"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"header name case", {{"AUTHORIZATION", "Bearer abc"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"several spaces", {{AZ, "Bearer    abc"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"surrounding OWS", {{AZ, " \tBearer abc \t"}}, NULL, {HDR}, OK(HDR, "abc")},
    {"jwt-like", {{AZ, "Bearer eyJ0.eyJz.c2ln-_~+/=="}}, NULL, {HDR},
     OK(HDR, "eyJ0.eyJz.c2ln-_~+/==")},
    {"basic scheme", {{AZ, "Basic dXNlcjpwYXNz"}}, NULL, {HDR}, BAD},
    {"scheme only", {{AZ, "Bearer"}}, NULL, {HDR}, BAD},
    {"scheme and space", {{AZ, "Bearer "}}, NULL, {HDR}, BAD},
    {"empty value", {{AZ, ""}}, NULL, {HDR}, BAD},
    {"no space", {{AZ, "Bearerabc"}}, NULL, {HDR}, BAD},
    {"tab separator", {{AZ, "Bearer\tabc"}}, NULL, {HDR}, BAD},
    {"two tokens", {{AZ, "Bearer a b"}}, NULL, {HDR}, BAD},
    {"control char", {{AZ, "Bearer ab\x01"}}, NULL, {HDR}, BAD},
    {"two headers", {{AZ, "Bearer a"}, {"authorization", "Bearer a"}}, NULL, {HDR}, BAD},
    {"absent", {{"Host", "example.com"}}, NULL, {HDR}, NONE_},
    {"similar names", {{"Authorization2", "Bearer a"}, {"Proxy-Authorization", "b"}},
     NULL, {HDR}, NONE_},

    /* query */
    {"query middle", {{NULL}}, "a=1&access_token=xyz&b", {QRY}, OK(QRY, "xyz")},
    {"query only", {{NULL}}, "access_token=xyz", {QRY}, OK(QRY, "xyz")},
    {"query last", {{NULL}}, "a=1&access_token=xyz", {QRY}, OK(QRY, "xyz")},
    {"query decode", {{NULL}}, "access_token=%41b%2fc%2F", {QRY}, OK(QRY, "Ab/c/")},
    {"query plus", {{NULL}}, "access_token=a+b", {QRY}, OK(QRY, "a b")},
    {"query utf-8", {{NULL}}, "access_token=%C3%A9", {QRY}, OK(QRY, "\xc3\xa9")},
    {"query equals in value", {{NULL}}, "access_token=a=b", {QRY}, OK(QRY, "a=b")},
    {"query empty params", {{NULL}}, "&&access_token=x&&", {QRY}, OK(QRY, "x")},
    {"query bad hex", {{NULL}}, "access_token=%zz", {QRY}, BAD},
    {"query short escape", {{NULL}}, "access_token=%4", {QRY}, BAD},
    {"query trailing percent", {{NULL}}, "access_token=ab%", {QRY}, BAD},
    {"query half hex", {{NULL}}, "access_token=%4g&x=1", {QRY}, BAD},
    {"query empty value", {{NULL}}, "access_token=", {QRY}, BAD},
    {"query empty value, more", {{NULL}}, "access_token=&b=1", {QRY}, BAD},
    {"query no value", {{NULL}}, "access_token", {QRY}, BAD},
    {"query no value, more", {{NULL}}, "access_token&b=1", {QRY}, BAD},
    {"query NUL", {{NULL}}, "access_token=a%00b", {QRY}, BAD},
    {"query CRLF", {{NULL}}, "access_token=a%0d%0aX-Evil:1", {QRY}, BAD},
    {"query twice", {{NULL}}, "access_token=a&access_token=a", {QRY}, BAD},
    {"query longer names", {{NULL}}, "access_tokenx=1&xaccess_token=2", {QRY}, NONE_},
    {"query name case", {{NULL}}, "Access_token=1", {QRY}, NONE_},
    {"query encoded name", {{NULL}}, "access%5Ftoken=1", {QRY}, NONE_},
    {"query empty", {{NULL}}, "", {QRY}, NONE_},
    {"query absent", {{NULL}}, NULL, {QRY}, NONE_},

    /* cookie */
    {"cookie second", {{"Cookie", "a=1; session=xyz"}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie only", {{"Cookie", "session=xyz"}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie first", {{"Cookie", "session=xyz; a=1"}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie header case", {{"cookie", "session=xyz"}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie no space", {{"Cookie", "a=1;session=xyz"}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie loose spaces", {{"Cookie", "a=1 ;  session = xyz ;b=2"}}, NULL, {CKE},
     OK(CKE, "xyz")},
    {"cookie quoted", {{"Cookie", "session=\"xyz\""}}, NULL, {CKE}, OK(CKE, "xyz")},
    {"cookie not decoded", {{"Cookie", "session=a%41+"}}, NULL, {CKE}, OK(CKE, "a%41+")},
    {"cookie equals in value", {{"Cookie", "session=YWJj=="}}, NULL, {CKE},
     OK(CKE, "YWJj==")},
    {"cookie second header", {{"Cookie", "a=1"}, {"Host", "h"}, {"Cookie", "session=x"}},
     NULL, {CKE}, OK(CKE, "x")},
    {"cookie open quote", {{"Cookie", "session=\"xyz"}}, NULL, {CKE}, BAD},
    {"cookie lone quote", {{"Cookie", "session=\""}}, NULL, {CKE}, BAD},
    {"cookie empty", {{"Cookie", "session=; a=1"}}, NULL, {CKE}, BAD},
    {"cookie empty quoted", {{"Cookie", "session=\"\""}}, NULL, {CKE}, BAD},
    {"cookie twice", {{"Cookie", "session=a; session=a"}}, NULL, {CKE}, BAD},
    {"cookie twice, two headers", {{"Cookie", "session=a"}, {"Cookie", "session=a"}},
     NULL, {CKE}, BAD},
    {"cookie similar names", {{"Cookie", "sessionx=1; xsession=2; Session=3"}}, NULL,
     {CKE}, NONE_},
    {"cookie without equals", {{"Cookie", "session"}}, NULL, {CKE}, NONE_},
    {"cookie empty header", {{"Cookie", ""}}, NULL, {CKE}, NONE_},
    {"cookie absent", {{"Host", "h"}}, NULL, {CKE}, NONE_},

    /* subprotocol */
    {"sub first", {{SWP, "bearer.abc, chat.v1"}}, NULL, {SUB}, OK(SUB, "abc")},
    {"sub second", {{SWP, "chat.v1, bearer.abc"}}, NULL, {SUB}, OK(SUB, "abc")},
    {"sub no space", {{SWP, "chat.v1,bearer.abc"}}, NULL, {SUB}, OK(SUB, "abc")},
    {"sub spaces", {{SWP, "  bearer.abc  ,chat"}}, NULL, {SUB}, OK(SUB, "abc")},
    {"sub header case", {{"sec-websocket-protocol", "bearer.abc"}}, NULL, {SUB},
     OK(SUB, "abc")},
    {"sub dots in token", {{SWP, "bearer.a.b.c"}}, NULL, {SUB}, OK(SUB, "a.b.c")},
    {"sub two headers", {{SWP, "chat"}, {SWP, "bearer.abc"}}, NULL, {SUB},
     OK(SUB, "abc")},
    {"sub empty token", {{SWP, "bearer., chat"}}, NULL, {SUB}, BAD},
    {"sub twice", {{SWP, "bearer.a, bearer.a"}}, NULL, {SUB}, BAD},
    {"sub twice, two headers", {{SWP, "bearer.a"}, {SWP, "bearer.a"}}, NULL, {SUB}, BAD},
    {"sub none", {{SWP, "chat.v1, superchat"}}, NULL, {SUB}, NONE_},
    {"sub prefix case", {{SWP, "Bearer.abc"}}, NULL, {SUB}, NONE_},
    {"sub embedded prefix", {{SWP, "xbearer.abc"}}, NULL, {SUB}, NONE_},
    {"sub no dot", {{SWP, "bearer"}}, NULL, {SUB}, NONE_},
    {"sub empty elements", {{SWP, ",, ,"}}, NULL, {SUB}, NONE_},

    /* order: the first source that carries a credential decides */
    {"header before query", {{AZ, "Bearer h"}}, "access_token=q", {HDR, QRY},
     OK(HDR, "h")},
    {"query before header", {{AZ, "Bearer h"}}, "access_token=q", {QRY, HDR},
     OK(QRY, "q")},
    {"falls through to query", {{"Host", "h"}}, "access_token=q", {HDR, QRY},
     OK(QRY, "q")},
    {"malformed first decides", {{AZ, "Basic x"}}, "access_token=q", {HDR, QRY}, BAD},
    {"malformed query decides", {{"Cookie", "session=c"}}, "access_token=%zz", {QRY, CKE},
     BAD},
    {"cookie then subprotocol", {{SWP, "bearer.s, chat"}}, NULL, {CKE, SUB},
     OK(SUB, "s")},
    {"all four, last carries", {{"Cookie", "other=1"}, {SWP, "chat, bearer.s"}}, "a=1",
     {HDR, QRY, CKE, SUB}, OK(SUB, "s")},
    {"all four, none carries", {{"Cookie", "other=1"}, {SWP, "chat"}}, "a=1",
     {HDR, QRY, CKE, SUB}, NONE_},
    {"no sources", {{AZ, "Bearer h"}}, "access_token=q", {0}, NONE_},
    {"source not listed", {{AZ, "Bearer h"}}, NULL, {QRY, CKE, SUB}, NONE_},
};
/* clang-format on */

/* The request as the gateway hands it over, each string copied to a heap
 * block of exactly its length (no NUL), so ASan catches any over-read. */
struct built_input {
    struct token_input in;
    struct token_header headers[MAX_HEADERS];
    char *blocks[2 * MAX_HEADERS + 1];
    size_t nblocks;
    struct cfg_token_source sources[MAX_SOURCES];
    size_t nsources;
};

static const char *
exact_copy(struct built_input *b, const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len > 0 ? *len : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, s, *len);
    b->blocks[b->nblocks++] = p;
    return p;
}

static void
build_input(struct built_input *b, const struct token_case *c)
{
    memset(b, 0, sizeof(*b));
    size_t n = 0;
    while (n < MAX_HEADERS && c->headers[n][0] != NULL) {
        struct token_header *h = &b->headers[n];
        h->name = exact_copy(b, c->headers[n][0], &h->name_len);
        h->value = exact_copy(b, c->headers[n][1], &h->value_len);
        n++;
    }
    b->in.headers = b->headers;
    b->in.nheaders = n;
    if (c->query != NULL)
        b->in.query = exact_copy(b, c->query, &b->in.query_len);
    while (b->nsources < MAX_SOURCES && c->sources[b->nsources] != 0) {
        struct cfg_token_source *s = &b->sources[b->nsources];
        s->kind = (enum cfg_token_kind)c->sources[b->nsources];
        s->name = s->kind == CFG_TOKEN_QUERY    ? (char *)"access_token"
                  : s->kind == CFG_TOKEN_COOKIE ? (char *)"session"
                                                : NULL;
        b->nsources++;
    }
}

static void
free_input(struct built_input *b)
{
    for (size_t i = 0; i < b->nblocks; i++)
        free(b->blocks[i]);
}

START_TEST(test_token_case)
{
    const struct token_case *c = &token_cases[_i];
    struct built_input b;
    build_input(&b, c);
    struct token_found *found = malloc(sizeof(*found));
    ck_assert_ptr_nonnull(found);
    /* Left over from an earlier request: must not survive. */
    memset(found, 'x', sizeof(*found));
    found->kind = CFG_TOKEN_HEADER;
    found->token_len = 3;

    enum token_status st = token_extract(&b.in, b.sources, b.nsources, found);
    ck_assert_msg(st == c->status, "%s: status %d, want %d", c->name, st, c->status);
    ck_assert_msg((int)found->kind == c->kind, "%s: kind %d, want %d", c->name,
                  (int)found->kind, c->kind);
    ck_assert_msg(found->token_len == strlen(c->token), "%s: token_len %zu", c->name,
                  found->token_len);
    ck_assert_msg(memcmp(found->token, c->token, found->token_len + 1) == 0,
                  "%s: token \"%s\", want \"%s\"", c->name, found->token, c->token);
    free(found);
    free_input(&b);
}
END_TEST

/* A value of exactly n bytes of 'k', as the source kind would carry it. */
static char *
long_value(const char *prefix, size_t n, const char *unit)
{
    size_t plen = strlen(prefix), ulen = strlen(unit);
    char *s = malloc(plen + n * ulen + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, plen);
    for (size_t i = 0; i < n; i++)
        memcpy(s + plen + i * ulen, unit, ulen);
    s[plen + n * ulen] = '\0';
    return s;
}

struct limit_case {
    int kind;
    const char *header; /* NULL: the value is the query */
    const char *prefix;
    const char *unit; /* one decoded byte, as written */
};

/* clang-format off */
static const struct limit_case limit_cases[] = {
    {HDR, "Authorization", "Bearer ", "k"},
    {QRY, NULL, "access_token=", "k"},
    {QRY, NULL, "access_token=", "%6b"}, /* the limit is on the decoded length */
    {CKE, "Cookie", "session=", "k"},
    {SUB, "Sec-WebSocket-Protocol", "bearer.", "k"},
};
/* clang-format on */

START_TEST(test_token_max)
{
    const struct limit_case *c = &limit_cases[_i];
    static struct token_found found;
    for (size_t n = TOKEN_MAX - 1; n <= TOKEN_MAX + 1; n++) {
        char *v = long_value(c->prefix, n, c->unit);
        struct token_header h = {c->header, c->header ? strlen(c->header) : 0, v,
                                 strlen(v)};
        struct token_input in = {&h, c->header != NULL ? 1 : 0, NULL, 0};
        if (c->header == NULL) {
            in.query = v;
            in.query_len = strlen(v);
        }
        struct cfg_token_source src = {(enum cfg_token_kind)c->kind,
                                       c->kind == QRY   ? (char *)"access_token"
                                       : c->kind == CKE ? (char *)"session"
                                                        : NULL};
        enum token_status st = token_extract(&in, &src, 1, &found);
        if (n <= TOKEN_MAX) {
            ck_assert_int_eq(st, TOKEN_OK);
            ck_assert_uint_eq(found.token_len, n);
            ck_assert_uint_eq(strlen(found.token), n);
            ck_assert_int_eq(found.token[n - 1], 'k');
        } else {
            ck_assert_int_eq(st, TOKEN_MALFORMED);
            ck_assert_int_eq(found.kind, 0);
        }
        free(v);
    }
}
END_TEST

/* Query decoding of every byte value, as %XX in both cases. */
START_TEST(test_query_every_escape)
{
    static struct token_found found;
    struct cfg_token_source src = {CFG_TOKEN_QUERY, (char *)"t"};
    static const char *const hex[2] = {"0123456789abcdef", "0123456789ABCDEF"};
    for (unsigned v = 0; v < 256; v++) {
        for (int upper = 0; upper < 2; upper++) {
            char q[16] = "t=a%";
            q[4] = hex[upper][v >> 4];
            q[5] = hex[upper][v & 15];
            struct token_input in = {NULL, 0, q, 6};
            enum token_status st = token_extract(&in, &src, 1, &found);
            if (v < 0x20 || v == 0x7f) {
                ck_assert_msg(st == TOKEN_MALFORMED, "%%%02x accepted", v);
                continue;
            }
            ck_assert_msg(st == TOKEN_OK, "%s gave %d", q, st);
            ck_assert_uint_eq(found.token_len, 2);
            ck_assert_uint_eq((unsigned char)found.token[1], v);
        }
    }
}
END_TEST

static Suite *
token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("sources");
    tcase_add_loop_test(tc, test_token_case, 0, N_ELEMS(token_cases));
    tcase_add_loop_test(tc, test_token_max, 0, N_ELEMS(limit_cases));
    tcase_add_test(tc, test_query_every_escape);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(token_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
