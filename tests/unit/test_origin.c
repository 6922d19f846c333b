/* test_origin: the route origins allow-list, table-driven. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/origin.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Patterns as the configuration stores them: validated and lower-cased. */
static const char *const patterns[] = {
    "https://app.example.com",
    "https://*.example.org",
    "http://localhost:3000",
    "https://[::1]:8443",
};

static const struct {
    const char *origin;
    bool allowed;
} cases[] = {
    {"https://app.example.com", true},
    {"HTTPS://App.Example.COM", true},      /* scheme and host: any case */
    {"http://app.example.com", false},      /* another scheme */
    {"https://app.example.com:443", false}, /* the port must match as written */
    {"https://app.example.com:8443", false},
    {"https://app.example.com.evil.net", false},
    {"https://evilapp.example.com", false},
    {"https://app.example.com/", false}, /* an Origin has no path */
    {"https://a.example.org", true},     /* wildcard: one label */
    {"https://a.b.example.org", true},   /* or several */
    {"https://example.org", false},      /* but at least one */
    {"https://.example.org", false},
    {"https://a..example.org", false},
    {"https://badexample.org", false},
    {"https://a.example.org:8443", false},
    {"http://localhost:3000", true},
    {"http://localhost", false},
    {"http://localhost:30000", false},
    {"https://[::1]:8443", true},
    {"https://[::1]", false},
    {"null", false},
    {"", false},
    {"://app.example.com", false},
    {"https://", false},
    {"https://app.example.com:", false},
    {"https://app example.com", false},
};

START_TEST(test_origin_cases)
{
    const char *o = cases[_i].origin;
    ck_assert_msg(origin_allowed(patterns, NELEMS(patterns), o, strlen(o)) ==
                      cases[_i].allowed,
                  "%s", o);
}
END_TEST

/* The value is a view: bytes after len are not part of it. */
START_TEST(test_origin_view)
{
    const char *o = "https://app.example.com.evil.net";
    ck_assert(
        origin_allowed(patterns, NELEMS(patterns), o, strlen("https://app.example.com")));
    ck_assert(!origin_allowed(patterns, 0, o, strlen(o)));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("origin");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_origin_cases, 0, NELEMS(cases));
    tcase_add_test(tc, test_origin_view);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
