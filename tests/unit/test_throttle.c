/* test_throttle: the auth-failure table: windows, blocks, bounds, eviction. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/throttle.h"

static const struct gw_throttle_rule rule = {
    .failures = 3, .window_ms = 60000, .block_ms = 300000};

static struct gw_throttle_key
key(const char *text)
{
    struct gw_throttle_key k;
    ck_assert_int_eq(gw_throttle_key_from_text(text, &k), 0);
    return k;
}

START_TEST(test_keys)
{
    struct gw_throttle_key a = key("192.0.2.1"), b = key("::ffff:192.0.2.1");
    ck_assert_mem_eq(a.addr, b.addr, 16); /* IPv4 is mapped into IPv6 */
    struct gw_throttle_key c = key("2001:db8::1");
    ck_assert_int_eq(c.addr[0], 0x20);
    ck_assert_int_eq(gw_throttle_key_from_text("-", &c), -1);
    ck_assert_int_eq(gw_throttle_key_from_text("1.2.3", &c), -1);
}
END_TEST

START_TEST(test_blocks_after_failures_in_window)
{
    struct gw_throttle *t = gw_throttle_new(64, 1);
    struct gw_throttle_key a = key("192.0.2.1"), b = key("192.0.2.2");
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 1000), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 1000, &rule), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 2000, &rule), 0);
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 2000), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 3000, &rule), 300000);
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 3000), 300000);
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 303000 - 1), 1);
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 303000), 0);
    /* Another client is not affected. */
    ck_assert_uint_eq(gw_throttle_blocked(t, &b, 3000), 0);
    /* Failures while blocked do not extend the block. */
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 4000, &rule), 299000);
    /* After the block, counting starts over. */
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 303000, &rule), 0);
    ck_assert_uint_eq(gw_throttle_blocked(t, &a, 303000), 0);
    gw_throttle_free(t);
}
END_TEST

START_TEST(test_window_expires)
{
    struct gw_throttle *t = gw_throttle_new(64, 2);
    struct gw_throttle_key a = key("2001:db8::7");
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 0, &rule), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 59999, &rule), 0);
    /* The window of the first failure has passed: this one starts a new one. */
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 60000, &rule), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 60001, &rule), 0);
    ck_assert_uint_eq(gw_throttle_fail(t, &a, 60002, &rule), 300000);
    gw_throttle_free(t);
}
END_TEST

/* Many more addresses than entries: memory stays fixed, and blocked clients
 * are evicted last. */
START_TEST(test_bounded_and_blocked_survive)
{
    struct gw_throttle *t = gw_throttle_new(16, 3); /* two sets of eight */
    struct gw_throttle_key a = key("198.51.100.1");
    for (int i = 0; i < 3; i++)
        gw_throttle_fail(t, &a, 10, &rule);
    ck_assert_uint_gt(gw_throttle_blocked(t, &a, 10), 0);
    char ip[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct gw_throttle_key k = key(ip);
        gw_throttle_fail(t, &k, 20, &rule);
    }
    ck_assert_uint_gt(gw_throttle_blocked(t, &a, 30), 0);
    gw_throttle_free(t);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("throttle");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_blocks_after_failures_in_window);
    tcase_add_test(tc, test_window_expires);
    tcase_add_test(tc, test_bounded_and_blocked_survive);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
