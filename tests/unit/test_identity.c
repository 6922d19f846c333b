/* test_identity: merging provider answers and the upstream identity headers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/identity.h"

static struct upstream_header *
find(struct upstream_header *h, long n, const char *name)
{
    for (long i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return &h[i];
    return NULL;
}

START_TEST(empty_identity_strips_subject)
{
    struct gw_identity id = {0};
    struct cfg cfg = {0};
    struct upstream_header *h = NULL;
    long n = gw_identity_upstream_headers(&id, &cfg, &h);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(h[0].name, "X-Auth-Subject");
    ck_assert_ptr_null(h[0].value);
    free(h);
}
END_TEST

START_TEST(chain_merges_first_subject_later_headers_earliest_expiry)
{
    struct gw_identity id = {0};
    struct auth_header a[] = {{"X-Auth-Roles", "user"}, {"X-Tenant", "t1"}};
    struct auth_result r1 = {.verdict = AUTH_ALLOW,
                             .subject = "alice",
                             .headers = a,
                             .nheaders = 2,
                             .expires_at = 2000};
    ck_assert_int_eq(gw_identity_add(&id, &r1), 0);
    struct auth_header b[] = {{"x-auth-roles", "admin"}, {"X-Plan", "pro"}};
    struct auth_result r2 = {.verdict = AUTH_ALLOW,
                             .subject = "bob",
                             .headers = b,
                             .nheaders = 2,
                             .expires_at = 1500};
    ck_assert_int_eq(gw_identity_add(&id, &r2), 0);
    struct auth_result r3 = {.verdict = AUTH_ALLOW, .expires_at = 0};
    ck_assert_int_eq(gw_identity_add(&id, &r3), 0);

    ck_assert_str_eq(id.subject, "alice");
    ck_assert_int_eq(id.nheaders, 3);
    ck_assert_int_eq(id.expires_at, 1500);
    ck_assert_str_eq(id.headers[0].name, "x-auth-roles");
    ck_assert_str_eq(id.headers[0].value, "admin");
    ck_assert_str_eq(id.headers[1].value, "t1");
    ck_assert_str_eq(id.headers[2].value, "pro");
    gw_identity_clear(&id);
    ck_assert_ptr_null(id.subject);
    ck_assert_int_eq(id.nheaders, 0);
}
END_TEST

START_TEST(every_configured_name_is_stripped_once)
{
    struct gw_identity id = {0};
    struct auth_header a[] = {{"X-Auth-Roles", "user"}};
    struct auth_result r = {
        .verdict = AUTH_ALLOW, .subject = "alice", .headers = a, .nheaders = 1};
    ck_assert_int_eq(gw_identity_add(&id, &r), 0);

    char *jwt_names[] = {"X-Auth-Roles", "X-Auth-Email"};
    char *http_names[] = {"x-auth-email", "X-User-Id", "X-Auth-Subject"};
    struct cfg_provider prov[2] = {
        {.identity_headers = jwt_names, .nidentity_headers = 2},
        {.identity_headers = http_names, .nidentity_headers = 3},
    };
    struct cfg cfg = {.providers = prov, .nproviders = 2};
    struct upstream_header *h = NULL;
    long n = gw_identity_upstream_headers(&id, &cfg, &h);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(find(h, n, "X-Auth-Subject")->value, "alice");
    ck_assert_str_eq(find(h, n, "X-Auth-Roles")->value, "user");
    ck_assert_ptr_null(find(h, n, "X-Auth-Email")->value);
    ck_assert_ptr_null(find(h, n, "X-User-Id")->value);
    ck_assert_ptr_null(find(h, n, "x-auth-email"));
    free(h);
    gw_identity_clear(&id);
}
END_TEST

static Suite *
identity_suite(void)
{
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, empty_identity_strips_subject);
    tcase_add_test(tc, chain_merges_first_subject_later_headers_earliest_expiry);
    tcase_add_test(tc, every_configured_name_is_stripped_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(identity_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
