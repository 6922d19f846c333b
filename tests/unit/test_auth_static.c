/* test_auth_static: the provider registry, the static provider, and secret comparison. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char *edge_tokens[] = {(char *)"s3cret-one", (char *)"s3cret-two",
                              (char *)"a-much-longer-third-token-0123456789"};

static const struct cfg_provider edge_cfg = {
    .name = (char *)"edge",
    .type = CFG_PROVIDER_STATIC,
    .tokens = edge_tokens,
    .ntokens = N_ELEMS(edge_tokens),
    .mark = {3, 5},
};

/* What the done callback saw, copied out while its strings were valid. */
struct seen {
    int calls;
    enum auth_verdict verdict;
    char subject[64];
    char error[64];
    char reason[64];
    bool has_subject;
    bool has_error;
    bool has_reason;
};

static void
copy_opt(char *dst, size_t cap, bool *has, const char *src)
{
    *has = src != NULL;
    dst[0] = '\0';
    if (src != NULL) {
        ck_assert_uint_lt(strlen(src), cap);
        strcpy(dst, src);
    }
}

static void
record_done(void *arg, const struct auth_result *res)
{
    struct seen *s = arg;
    s->calls++;
    s->verdict = res->verdict;
    copy_opt(s->subject, sizeof(s->subject), &s->has_subject, res->subject);
    copy_opt(s->error, sizeof(s->error), &s->has_error, res->error);
    copy_opt(s->reason, sizeof(s->reason), &s->has_reason, res->reason);
}

static struct auth_provider *
new_edge(void)
{
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    struct auth_provider *p = auth_provider_new(&edge_cfg, NULL, &err);
    ck_assert_msg(p != NULL, "auth_provider_new: %s", err.msg);
    return p;
}

/* Runs one check and asserts the synchronous contract: 0, done exactly once
 * before returning, *pending NULL. */
static void
run_check(struct auth_provider *p, const struct token_found *cred, struct seen *seen)
{
    struct auth_request req = {
        .method = "GET",
        .method_len = 3,
        .path = "/foo",
        .path_len = 4,
        .host = "example.com",
        .host_len = 11,
        .peer = "127.0.0.1",
        .credential = cred,
    };
    /* A stale value the start must overwrite. */
    struct auth_check *pending = (struct auth_check *)&pending;
    memset(seen, 0, sizeof(*seen));
    ck_assert_int_eq(auth_start(p, &req, record_done, seen, &pending), 0);
    ck_assert_int_eq(seen->calls, 1);
    ck_assert_ptr_null(pending);
}

static struct token_found *
make_cred(enum cfg_token_kind kind, const char *token, size_t len)
{
    struct token_found *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    f->kind = kind;
    memcpy(f->token, token, len);
    f->token_len = len;
    return f;
}

struct cred_case {
    const char *token;
    size_t len;
    enum auth_verdict verdict;
};

#define T(s) s, sizeof(s) - 1

/* clang-format off */
static const struct cred_case cred_cases[] = {
    {T("s3cret-one"), AUTH_ALLOW},
    {T("s3cret-two"), AUTH_ALLOW},
    {T("a-much-longer-third-token-0123456789"), AUTH_ALLOW},
    {T("s3cret-on"), AUTH_DENY},   /* a prefix */
    {T("s3cret-one1"), AUTH_DENY}, /* an extension */
    {T("S3cret-one"), AUTH_DENY},  /* case differs */
    {T("s3cret-one\0"), AUTH_DENY}, /* a NUL inside the length */
    {T("s3cret-thr"), AUTH_DENY},
    {T("x"), AUTH_DENY},
    {T("edge"), AUTH_DENY}, /* the name is not a credential */
};
/* clang-format on */

START_TEST(test_static_credentials)
{
    const struct cred_case *c = &cred_cases[_i];
    struct auth_provider *p = new_edge();
    int kinds[] = {CFG_TOKEN_HEADER, CFG_TOKEN_QUERY, CFG_TOKEN_COOKIE,
                   CFG_TOKEN_SUBPROTOCOL};
    for (size_t k = 0; k < N_ELEMS(kinds); k++) {
        struct token_found *cred =
            make_cred((enum cfg_token_kind)kinds[k], c->token, c->len);
        struct seen seen;
        run_check(p, cred, &seen);
        ck_assert_int_eq(seen.verdict, c->verdict);
        if (c->verdict == AUTH_ALLOW) {
            ck_assert(seen.has_subject);
            ck_assert_str_eq(seen.subject, "edge");
            ck_assert(!seen.has_error);
        } else {
            ck_assert(!seen.has_subject);
            ck_assert(seen.has_error);
            ck_assert_str_eq(seen.error, "invalid_token");
            ck_assert_str_eq(seen.reason, "invalid token");
        }
        free(cred);
    }
    auth_provider_free(p);
}
END_TEST

START_TEST(test_static_missing)
{
    struct auth_provider *p = new_edge();
    struct token_found none = {0};
    const struct token_found *creds[] = {NULL, &none};
    for (size_t i = 0; i < N_ELEMS(creds); i++) {
        struct seen seen;
        run_check(p, creds[i], &seen);
        ck_assert_int_eq(seen.verdict, AUTH_DENY);
        ck_assert(!seen.has_subject);
        /* RFC 6750 §3.1: no error code when no credentials were sent */
        ck_assert(!seen.has_error);
        ck_assert_str_eq(seen.reason, "missing credentials");
    }
    /* kind 0 means "none sent" even if the buffer holds a valid token */
    struct token_found *stale = make_cred(CFG_TOKEN_HEADER, T("s3cret-one"));
    stale->kind = 0;
    struct seen seen;
    run_check(p, stale, &seen);
    ck_assert_int_eq(seen.verdict, AUTH_DENY);
    ck_assert_str_eq(seen.reason, "missing credentials");
    free(stale);
    auth_provider_free(p);
}
END_TEST

START_TEST(test_static_name_and_cancel)
{
    struct auth_provider *p = new_edge();
    ck_assert_str_eq(auth_provider_name(p), "edge");
    /* A handle is only ever NULL for a synchronous provider; cancelling
     * nothing is harmless. */
    auth_cancel(p, NULL);
    auth_provider_free(p);
    auth_provider_free(NULL);
}
END_TEST

START_TEST(test_static_single_token)
{
    char *tokens[] = {(char *)"only"};
    struct cfg_provider cfg = {.name = (char *)"solo",
                               .type = CFG_PROVIDER_STATIC,
                               .tokens = tokens,
                               .ntokens = 1,
                               .mark = {1, 1}};
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    struct auth_provider *p = auth_provider_new(&cfg, NULL, &err);
    ck_assert_ptr_nonnull(p);
    struct token_found *cred = make_cred(CFG_TOKEN_QUERY, T("only"));
    struct seen seen;
    run_check(p, cred, &seen);
    ck_assert_int_eq(seen.verdict, AUTH_ALLOW);
    ck_assert_str_eq(seen.subject, "solo");
    free(cred);
    auth_provider_free(p);
}
END_TEST

struct bad_cfg_case {
    enum cfg_provider_type type;
    const char *tokens[2];
    size_t ntokens;
    const char *msg_part;
};

/* clang-format off */
static const struct bad_cfg_case bad_cfg_cases[] = {
    {CFG_PROVIDER_STATIC, {NULL}, 0, "needs tokens"},
    {CFG_PROVIDER_STATIC, {""}, 1, "empty token"},
    {CFG_PROVIDER_STATIC, {"ok", ""}, 2, "tokens[1]"},
    {(enum cfg_provider_type)0, {"ok"}, 1, "unknown provider type"},
    {(enum cfg_provider_type)99, {"ok"}, 1, "unknown provider type"},
};
/* clang-format on */

START_TEST(test_bad_config)
{
    const struct bad_cfg_case *c = &bad_cfg_cases[_i];
    struct cfg_provider cfg = {.name = (char *)"broken",
                               .type = c->type,
                               .tokens = (char **)c->tokens,
                               .ntokens = c->ntokens,
                               .mark = {7, 9}};
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    ck_assert_ptr_null(auth_provider_new(&cfg, NULL, &err));
    ck_assert_msg(strstr(err.msg, c->msg_part) != NULL, "message: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "broken") != NULL, "message: %s", err.msg);
}
END_TEST

/* Every provider type has every operation and a unique name; the table ends
 * at NULL and holds "static". */
START_TEST(test_ops_table_walked)
{
    size_t n = 0;
    bool has_static = false;
    for (; auth_provider_types[n] != NULL; n++) {
        const struct auth_provider_ops *ops = auth_provider_types[n];
        ck_assert_ptr_nonnull(ops->type);
        ck_assert_uint_gt(strlen(ops->type), 0);
        ck_assert_ptr_nonnull(ops->create);
        ck_assert_ptr_nonnull(ops->start);
        ck_assert_ptr_nonnull(ops->cancel);
        ck_assert_ptr_nonnull(ops->destroy);
        for (size_t j = 0; j < n; j++)
            ck_assert_str_ne(auth_provider_types[j]->type, ops->type);
        has_static |= strcmp(ops->type, "static") == 0;
        ck_assert_uint_lt(n, 64);
    }
    ck_assert_uint_ge(n, 1);
    ck_assert(has_static);
}
END_TEST

START_TEST(test_verdict_values)
{
    /* 0 denies, and a zeroed result can never allow. */
    ck_assert_int_eq(AUTH_DENY, 0);
    ck_assert_int_ne(AUTH_ALLOW, 1);
    ck_assert_int_ne(AUTH_ALLOW, AUTH_FORBID);
    ck_assert_int_ne(AUTH_ALLOW, AUTH_UNAVAILABLE);
}
END_TEST

struct equal_case {
    const char *a;
    size_t alen;
    const char *b;
    size_t blen;
    int equal;
};

/* clang-format off */
static const struct equal_case equal_cases[] = {
    {T("a"), T("a"), 1},
    {T("a"), T("b"), 0},
    {T(""), T(""), 1},
    {T(""), T("a"), 0},
    {T("a"), T(""), 0},
    {T("abc"), T("abcd"), 0},
    {T("abcd"), T("abc"), 0},
    {T("a\0b"), T("a\0b"), 1},
    {T("a\0b"), T("a\0c"), 0},
    {T("a\0"), T("a"), 0},
    {T("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"),
     T("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"), 1},
    {T("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"),
     T("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0124"), 0},
};
/* clang-format on */

START_TEST(test_secret_equal)
{
    const struct equal_case *c = &equal_cases[_i];
    ck_assert_int_eq(auth_secret_equal(c->a, c->alen, c->b, c->blen), c->equal);
    ck_assert_int_eq(auth_secret_equal(c->b, c->blen, c->a, c->alen), c->equal);
}
END_TEST

static Suite *
auth_static_suite(void)
{
    Suite *s = suite_create("auth_static");
    TCase *tc = tcase_create("static");
    tcase_add_loop_test(tc, test_static_credentials, 0, N_ELEMS(cred_cases));
    tcase_add_test(tc, test_static_missing);
    tcase_add_test(tc, test_static_name_and_cancel);
    tcase_add_test(tc, test_static_single_token);
    tcase_add_loop_test(tc, test_bad_config, 0, N_ELEMS(bad_cfg_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("registry");
    tcase_add_test(tc, test_ops_table_walked);
    tcase_add_test(tc, test_verdict_values);
    tcase_add_loop_test(tc, test_secret_equal, 0, N_ELEMS(equal_cases));
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(auth_static_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
