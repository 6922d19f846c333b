/* test_router: route precedence by host, exact path and longest prefix. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/router.h"

/* Declared in an order that sorting must undo: prefixes before exact paths,
 * short prefixes before long ones, host-less routes before host routes. */
static struct cfg_route routes[] = {
    {.name = "root", .path = "/", .prefix = true},
    {.name = "echo", .path = "/echo"},
    {.name = "bar", .path = "/bar/", .prefix = true},
    {.name = "bar-deep", .path = "/bar/deep/", .prefix = true},
    {.name = "bar-exact", .path = "/bar/x"},
    {.name = "chat", .path = "/chat"},
    {.name = "chat-again", .path = "/chat"}, /* a duplicate: the first declared wins */
    {.name = "q-short", .path = "/q/", .prefix = true},
    {.name = "q-long", .path = "/q/long/", .prefix = true},
    {.name = "api-any", .path = "/", .prefix = true, .host = "api.example.com"},
    {.name = "api-chat", .path = "/chat", .host = "api.example.com"},
    {.name = "api-v2", .path = "/v2/", .prefix = true, .host = "api.example.com"},
    {.name = "only", .path = "/only", .host = "other.example.com"},
    {.name = "v6", .path = "/v6", .host = "::1"},
    {.name = "v6-bracketed", .path = "/v6b", .host = "[fe80::1]"},
};

static const struct {
    const char *host; /* NULL: no Host at all */
    const char *path;
    const char *want; /* route name, or NULL for 404 */
} match_cases[] = {
    {NULL, "/echo", "echo"},
    {"example.com", "/echo", "echo"},
    {"example.com", "/echo/", "root"},
    {"example.com", "/echoes", "root"},
    {"example.com", "/chat", "chat"},
    {NULL, "/chat", "chat"},
    {"api.example.com", "/chat", "api-chat"},
    {"API.Example.COM", "/chat", "api-chat"},
    {"api.example.com:8443", "/chat", "api-chat"},
    {"api.example.com.", "/chat", "api-chat"},
    {"api.example.com.:80", "/chat", "api-chat"},
    {"api.example.com", "/echo",
     "api-any"}, /* a host prefix beats a host-less exact path */
    {"api.example.com", "/v2/x", "api-v2"},
    {"api.example.com", "/v2", "api-any"},
    {"api.example.com.evil", "/chat", "chat"},
    {"api.example.co", "/chat", "chat"},
    {"xapi.example.com", "/chat", "chat"},
    {"example.com", "/bar/x", "bar-exact"},
    {"example.com", "/bar/x/", "bar"},
    {"example.com", "/bar/deep/1", "bar-deep"},
    {"example.com", "/bar/deep/", "bar-deep"},
    {"example.com", "/bar/deep", "bar"},
    {"example.com", "/bar/", "bar"},
    {"example.com", "/bar", "root"},
    {"example.com", "/BAR/", "root"}, /* paths are case-sensitive */
    {"", "/q/long/x", "q-long"},
    {"", "/q/lon", "q-short"},
    {"other.example.com", "/only", "only"},
    {"other.example.com", "/echo",
     "echo"}, /* no route of its host matches: host-less ones do */
    {"example.com", "/only", "root"},
    {NULL, "/only", "root"},
    {"[::1]:8080", "/v6", "v6"},
    {"[::1]", "/v6", "v6"},
    {"[FE80::1]:443", "/v6b", "v6-bracketed"},
    {"[fe80::1", "/v6b", "v6-bracketed"},
    {"[::2]", "/v6", "root"},
    {"example.com", "", NULL},
    {"example.com", "echo", NULL},
};

static struct cfg test_cfg = {.routes = routes,
                              .nroutes = sizeof(routes) / sizeof(routes[0])};

START_TEST(test_match)
{
    struct router *r = router_new(&test_cfg);
    ck_assert_ptr_nonnull(r);
    const char *host = match_cases[_i].host, *path = match_cases[_i].path;
    const struct cfg_route *got =
        router_match(r, host, host ? strlen(host) : 0, path, strlen(path));
    const char *want = match_cases[_i].want;
    ck_assert_msg(want == NULL ? got == NULL
                               : got != NULL && strcmp(got->name, want) == 0,
                  "%s %s: got %s, want %s", host ? host : "(no host)", path,
                  got ? got->name : "NULL", want ? want : "NULL");
    if (got != NULL)
        ck_assert(got >= routes && got < routes + test_cfg.nroutes);
    router_free(r);
}
END_TEST

/* The host-less group and the host group both run dry: 404. */
START_TEST(test_no_match)
{
    struct cfg_route few[] = {
        {.name = "echo", .path = "/echo"},
        {.name = "a-x", .path = "/x/", .prefix = true, .host = "a.example"},
    };
    struct cfg cfg = {.routes = few, .nroutes = 2};
    struct router *r = router_new(&cfg);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(router_match(r, "a.example", 9, "/nope", 5));
    ck_assert_ptr_null(router_match(r, "b.example", 9, "/x/1", 4));
    ck_assert_ptr_null(router_match(r, NULL, 0, "/x/1", 4));
    ck_assert_ptr_eq(router_match(r, "a.example", 9, "/x/1", 4), &few[1]);
    ck_assert_ptr_eq(router_match(r, "b.example", 9, "/echo", 5), &few[0]);
    /* The path is a view: bytes past path_len are not looked at. */
    ck_assert_ptr_eq(router_match(r, "b.example", 9, "/echo?x", 5), &few[0]);
    ck_assert_ptr_null(router_match(r, "b.example", 9, "/echo", 4));
    router_free(r);
}
END_TEST

START_TEST(test_empty)
{
    struct cfg cfg = {.routes = NULL, .nroutes = 0};
    struct router *r = router_new(&cfg);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(router_match(r, "example.com", 11, "/", 1));
    ck_assert_ptr_null(router_match(r, NULL, 0, "/", 1));
    router_free(r);
    router_free(NULL);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");
    tcase_add_loop_test(tc, test_match, 0, NELEM(match_cases));
    tcase_add_test(tc, test_no_match);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
