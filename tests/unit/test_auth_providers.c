/* test_auth_providers: http and plugin provider creation errors, and
 * auth_providers_verify's positioned messages. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"

START_TEST(test_http_needs_url)
{
    struct cfg_provider cfg = {.name = (char *)"ext", .type = CFG_PROVIDER_HTTP};
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    ck_assert_ptr_null(auth_provider_new(&cfg, NULL, &err));
    ck_assert_str_eq(err.msg, "auth.providers.ext: an http provider needs a url");
}
END_TEST

/* An IP literal needs no resolver; nothing connects until a check. */
START_TEST(test_http_creates_without_connecting)
{
    struct event_base *base = event_base_new();
    struct cfg_http_auth h = {.host = (char *)"127.0.0.1",
                              .port = 1,
                              .target = (char *)"/",
                              .timeout_ms = 100,
                              .cache_size = 4,
                              .cache_ttl_ms = 1000,
                              .connections = 3};
    struct cfg_provider cfg = {
        .name = (char *)"ext", .type = CFG_PROVIDER_HTTP, .http = &h};
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    struct auth_provider *p = auth_provider_new(&cfg, base, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    ck_assert_str_eq(auth_provider_name(p), "ext");
    auth_provider_free(p);
    event_base_free(base);
}
END_TEST

struct seen {
    int calls;
    enum auth_verdict verdict;
    char reason[128];
};

static void
on_done(void *arg, const struct auth_result *res)
{
    struct seen *s = arg;
    s->calls++;
    s->verdict = res->verdict;
    snprintf(s->reason, sizeof(s->reason), "%s", res->reason ? res->reason : "");
}

/* Nothing listens on the port: the check (and its one retry) fails with
 * 503, answered later through the callback, exactly once. */
START_TEST(test_http_unreachable_is_unavailable)
{
    struct event_base *base = event_base_new();
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)),
                     0); /* never listens */
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    struct cfg_http_auth h = {.host = (char *)"127.0.0.1",
                              .port = ntohs(sin.sin_port),
                              .target = (char *)"/check",
                              .timeout_ms = 5000,
                              .cache_size = 4,
                              .connections = 1};
    struct cfg_provider cfg = {
        .name = (char *)"ext", .type = CFG_PROVIDER_HTTP, .http = &h};
    struct gw_err err;
    struct auth_provider *p = auth_provider_new(&cfg, base, &err);
    ck_assert_ptr_nonnull(p);
    struct token_found cred = {.kind = 0};
    struct auth_request req = {.method = "GET",
                               .method_len = 3,
                               .path = "/x",
                               .path_len = 2,
                               .host = "h",
                               .host_len = 1,
                               .peer = "192.0.2.1",
                               .credential = &cred};
    struct seen seen = {0};
    struct auth_check *pending = NULL;
    ck_assert_int_eq(auth_start(p, &req, on_done, &seen, &pending), 0);
    if (pending != NULL)
        event_base_dispatch(base);
    ck_assert_int_eq(seen.calls, 1);
    ck_assert_int_eq(seen.verdict, AUTH_UNAVAILABLE);

    /* A cancelled check never calls back, and leaves nothing behind. */
    struct seen cancelled = {0};
    ck_assert_int_eq(auth_start(p, &req, on_done, &cancelled, &pending), 0);
    ck_assert_ptr_nonnull(pending);
    auth_cancel(p, pending);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(cancelled.calls, 0);
    auth_provider_free(p);
    event_base_free(base);
    close(fd);
}
END_TEST

START_TEST(test_plugin_missing_file_is_positioned)
{
    struct cfg_plugin_auth pl = {.path = (char *)"/nonexistent/p.so",
                                 .path_mark = {12, 15}};
    struct cfg_provider cfg = {.name = (char *)"mine",
                               .type = CFG_PROVIDER_PLUGIN,
                               .plugin = &pl,
                               .mark = {11, 5}};
    struct gw_err err;
    memset(&err, 0, sizeof(err));
    ck_assert_ptr_null(auth_provider_new(&cfg, NULL, &err));
    ck_assert_msg(strncmp(err.msg, "auth.providers.mine.path: cannot load: ", 39) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(err.line, 12);
    ck_assert_int_eq(err.column, 15);

    struct cfg whole = {.file = (char *)"gw.yaml", .providers = &cfg, .nproviders = 1};
    struct cfg_errors errs = {0};
    ck_assert_int_eq(auth_providers_verify(&whole, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_msg(strncmp(errs.msgs[0],
                          "gw.yaml:12:15: auth.providers.mine.path: cannot load",
                          52) == 0,
                  "%s", errs.msgs[0]);
    cfg_errors_free(&errs);
}
END_TEST

START_TEST(test_verify_nothing)
{
    struct cfg whole = {.file = (char *)"gw.yaml"};
    struct cfg_errors errs = {0};
    ck_assert_int_eq(auth_providers_verify(&whole, &errs), 0);
    ck_assert_uint_eq(errs.count, 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("auth_providers");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_http_needs_url);
    tcase_add_test(tc, test_http_creates_without_connecting);
    tcase_add_test(tc, test_http_unreachable_is_unavailable);
    tcase_add_test(tc, test_plugin_missing_file_is_positioned);
    tcase_add_test(tc, test_verify_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
