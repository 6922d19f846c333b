/* test_balancer: each policy, passive health, the tried bitmap, ring stability. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/balancer.h"

#define MAXUP 64
#define NKEYS 10000

/* Upstreams "10.0.0.<i+1>:9000/p<i>" in ups[0..n). */
static struct cfg_upstream ups[MAXUP];
static char hosts[MAXUP][16];
static char paths[MAXUP][8];

static void
make_upstreams(void)
{
    for (size_t i = 0; i < MAXUP; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "10.0.0.%zu", i + 1);
        snprintf(paths[i], sizeof(paths[i]), "/p%zu", i);
        ups[i] = (struct cfg_upstream){.host = hosts[i], .port = 9000, .path = paths[i]};
    }
}

static struct balancer *
new_or_die(enum cfg_balance policy, const struct cfg_upstream *u, size_t n, uint32_t seed)
{
    struct balancer *b = balancer_new(policy, u, n, seed);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* The client address of key number k. */
static const char *
key_ip(size_t k, char buf[32])
{
    snprintf(buf, 32, "198.%zu.%zu.%zu", k >> 16 & 255, k >> 8 & 255, k & 255);
    return buf;
}

static const struct {
    size_t n;
    uint32_t seed;
    int want[8];
} rr_cases[] = {
    {1, 0, {0, 0, 0, 0, 0, 0, 0, 0}},           {3, 0, {0, 1, 2, 0, 1, 2, 0, 1}},
    {3, 7, {1, 2, 0, 1, 2, 0, 1, 2}},           {4, 3, {3, 0, 1, 2, 3, 0, 1, 2}},
    {2, 4294967295u, {1, 0, 1, 0, 1, 0, 1, 0}},
};

START_TEST(test_round_robin)
{
    struct balancer *b =
        new_or_die(CFG_BALANCE_ROUND_ROBIN, ups, rr_cases[_i].n, rr_cases[_i].seed);
    for (size_t k = 0; k < 8; k++)
        ck_assert_int_eq(balancer_pick(b, "1.2.3.4", NULL, 0, 0), rr_cases[_i].want[k]);
    balancer_free(b);
}
END_TEST

START_TEST(test_round_robin_distribution)
{
    size_t count[5] = {0};
    struct balancer *b = new_or_die(CFG_BALANCE_ROUND_ROBIN, ups, 5, 12345);
    for (size_t k = 0; k < 5000; k++) {
        int i = balancer_pick(b, "1.2.3.4", NULL, 0, 1000);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, 5);
        count[i]++;
    }
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(count[i], 1000);
    balancer_free(b);
}
END_TEST

START_TEST(test_round_robin_down)
{
    struct balancer *b = new_or_die(CFG_BALANCE_ROUND_ROBIN, ups, 3, 0);
    balancer_mark_down(b, 1, 1000);
    static const int while_down[] = {0, 2, 0, 2, 0};
    for (size_t k = 0; k < 5; k++)
        ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 999), while_down[k]);
    /* Its back-off over at 1000: back in turn. */
    static const int after[] = {1, 2, 0, 1};
    for (size_t k = 0; k < 4; k++)
        ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 1000), after[k]);
    balancer_mark_down(b, 2, 5000);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 2000), 0);
    balancer_mark_up(b, 2);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 2000), 1);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 2000), 2);
    balancer_free(b);
}
END_TEST

START_TEST(test_least_conn)
{
    struct balancer *b = new_or_die(CFG_BALANCE_LEAST_CONN, ups, 3, 0);
    /* All idle: round-robin order. */
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 0);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 1);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 2);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 0);

    balancer_conn_start(b, 0);
    balancer_conn_start(b, 0);
    balancer_conn_start(b, 1);
    for (size_t k = 0; k < 3; k++)
        ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 2);
    balancer_conn_start(b, 2);
    /* 1 and 2 tie at one: round-robin order among them, from after 2. */
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 1);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 2);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 1);
    balancer_conn_end(b, 0);
    balancer_conn_end(b, 0);
    balancer_conn_end(b, 0); /* one too many: stays at zero */
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 0);
    balancer_conn_start(b, 0);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 1);
    /* Fewest, but down or tried: skipped (the others tie: round-robin order). */
    balancer_conn_end(b, 2);
    balancer_mark_down(b, 2, 100);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 50), 0);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 100), 2);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 1u << 2, 100), 0);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 1u << 2, 100), 1);
    balancer_free(b);
}
END_TEST

/* Connections that start on the pick and end at random stay balanced. */
START_TEST(test_least_conn_distribution)
{
    struct balancer *b = new_or_die(CFG_BALANCE_LEAST_CONN, ups, 4, 9);
    size_t active[4] = {0};
    for (size_t k = 0; k < 400; k++) {
        int i = balancer_pick(b, NULL, NULL, 0, 0);
        balancer_conn_start(b, (size_t)i);
        active[i]++;
        if (k % 3 == 2) { /* one of them ends */
            size_t j = (k * 7) % 4;
            if (active[j] > 0) {
                balancer_conn_end(b, j);
                active[j]--;
            }
        }
        size_t lo = active[0], hi = active[0];
        for (size_t m = 1; m < 4; m++) {
            lo = active[m] < lo ? active[m] : lo;
            hi = active[m] > hi ? active[m] : hi;
        }
        ck_assert_uint_le(hi - lo, 2);
    }
    balancer_free(b);
}
END_TEST

static const enum cfg_balance hash_policies[] = {CFG_BALANCE_HASH_IP,
                                                 CFG_BALANCE_HASH_SUBJECT};

/* Picks for key k with a hash policy: the IP, or the subject with a decoy IP. */
static int
hash_pick(struct balancer *b, enum cfg_balance policy, size_t k, uint64_t tried,
          uint64_t now_ms)
{
    char key[32], decoy[32];
    if (policy == CFG_BALANCE_HASH_IP)
        return balancer_pick(b, key_ip(k, key), "ignored-subject", tried, now_ms);
    snprintf(key, sizeof(key), "user-%zu", k);
    return balancer_pick(b, key_ip(k * 31 + 7, decoy), key, tried, now_ms);
}

/* Shares of NKEYS keys over n upstreams stay near 1/n each. */
START_TEST(test_hash_distribution)
{
    enum cfg_balance policy = hash_policies[_i];
    for (size_t n = 2; n <= 8; n *= 2) {
        struct balancer *b = new_or_die(policy, ups, n, 0);
        size_t count[8] = {0};
        for (size_t k = 0; k < NKEYS; k++) {
            int i = hash_pick(b, policy, k, 0, 0);
            ck_assert_int_ge(i, 0);
            ck_assert_int_lt(i, (int)n);
            count[i]++;
        }
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(count[i] > NKEYS / n * 3 / 4 && count[i] < NKEYS / n * 5 / 4,
                          "n=%zu: upstream %zu has %zu of %d", n, i, count[i], NKEYS);
        balancer_free(b);
    }
}
END_TEST

/* The same key maps to the same upstream (by address, not index) on every
 * worker (another seed), after a reload that reorders the list, and every
 * time it is asked. */
START_TEST(test_hash_same_key)
{
    enum cfg_balance policy = hash_policies[_i];
    struct cfg_upstream reversed[5];
    for (size_t i = 0; i < 5; i++)
        reversed[i] = ups[4 - i];
    struct balancer *a = new_or_die(policy, ups, 5, 1);
    struct balancer *w = new_or_die(policy, ups, 5, 987654);
    struct balancer *r = new_or_die(policy, reversed, 5, 3);
    for (size_t k = 0; k < NKEYS; k++) {
        int i = hash_pick(a, policy, k, 0, 0);
        ck_assert_int_eq(hash_pick(a, policy, k, 0, 0), i);
        ck_assert_int_eq(hash_pick(w, policy, k, 0, 0), i);
        ck_assert_int_eq(hash_pick(r, policy, k, 0, 0), 4 - i);
    }
    balancer_free(a);
    balancer_free(w);
    balancer_free(r);
}
END_TEST

/* Removing one of n upstreams moves only its own keys, about 1/n of them;
 * adding one moves keys only onto the new one. */
START_TEST(test_hash_removal)
{
    enum cfg_balance policy = hash_policies[_i];
    const size_t n = 5, gone = 2;
    struct cfg_upstream fewer[4];
    for (size_t i = 0, j = 0; i < n; i++)
        if (i != gone)
            fewer[j++] = ups[i];
    struct balancer *all = new_or_die(policy, ups, n, 0);
    struct balancer *less = new_or_die(policy, fewer, n - 1, 0);
    size_t moved = 0;
    for (size_t k = 0; k < NKEYS; k++) {
        int before = hash_pick(all, policy, k, 0, 0);
        int after = hash_pick(less, policy, k, 0, 0);
        const char *was = ups[before].host, *now = fewer[after].host;
        if (strcmp(was, now) != 0) {
            ck_assert_msg((size_t)before == gone, "key %zu moved from %s to %s", k, was,
                          now);
            moved++;
        } else {
            ck_assert_uint_ne((size_t)before, gone);
        }
    }
    ck_assert_msg(moved > NKEYS / n * 3 / 4 && moved < NKEYS / n * 5 / 4,
                  "%zu keys moved", moved);
    /* Adding it back: keys move only onto it. */
    for (size_t k = 0; k < NKEYS; k++) {
        int before = hash_pick(less, policy, k, 0, 0);
        int after = hash_pick(all, policy, k, 0, 0);
        if ((size_t)after != gone)
            ck_assert_str_eq(fewer[before].host, ups[after].host);
    }
    balancer_free(all);
    balancer_free(less);
}
END_TEST

/* A down upstream's keys go elsewhere while it is down, the others stay,
 * and all come back when it is up. */
START_TEST(test_hash_down)
{
    enum cfg_balance policy = hash_policies[_i];
    struct balancer *b = new_or_die(policy, ups, 4, 0);
    int home[1000];
    for (size_t k = 0; k < 1000; k++)
        home[k] = hash_pick(b, policy, k, 0, 0);
    balancer_mark_down(b, 1, 500);
    for (size_t k = 0; k < 1000; k++) {
        int i = hash_pick(b, policy, k, 0, 499);
        if (home[k] == 1)
            ck_assert_int_ne(i, 1);
        else
            ck_assert_int_eq(i, home[k]);
        /* Tried: the same as down, for this client only. */
        int t = hash_pick(b, policy, k, UINT64_C(1) << home[k], 500);
        ck_assert_int_ne(t, home[k]);
        ck_assert_int_ge(t, 0);
    }
    for (size_t k = 0; k < 1000; k++)
        ck_assert_int_eq(hash_pick(b, policy, k, 0, 500), home[k]);
    balancer_mark_down(b, 3, 900);
    balancer_mark_up(b, 3);
    for (size_t k = 0; k < 1000; k++)
        ck_assert_int_eq(hash_pick(b, policy, k, 0, 600), home[k]);
    balancer_free(b);
}
END_TEST

/* hash_subject without a subject hashes the client address. */
START_TEST(test_hash_subject_fallback)
{
    struct balancer *ip = new_or_die(CFG_BALANCE_HASH_IP, ups, 6, 0);
    struct balancer *sub = new_or_die(CFG_BALANCE_HASH_SUBJECT, ups, 6, 0);
    char key[32];
    for (size_t k = 0; k < 1000; k++) {
        key_ip(k, key);
        ck_assert_int_eq(balancer_pick(sub, key, NULL, 0, 0),
                         balancer_pick(ip, key, NULL, 0, 0));
        /* A subject that is the address spelled the same lands the same. */
        ck_assert_int_eq(balancer_pick(sub, "0.0.0.0", key, 0, 0),
                         balancer_pick(ip, key, NULL, 0, 0));
    }
    /* No key at all still picks. */
    int i = balancer_pick(sub, NULL, NULL, 0, 0);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(balancer_pick(ip, NULL, NULL, 0, 0), i);
    balancer_free(ip);
    balancer_free(sub);
}
END_TEST

static const enum cfg_balance all_policies[] = {
    CFG_BALANCE_ROUND_ROBIN,
    CFG_BALANCE_LEAST_CONN,
    CFG_BALANCE_HASH_IP,
    CFG_BALANCE_HASH_SUBJECT,
};

/* The tried bitmap: never a tried upstream; -1 once all were. */
START_TEST(test_tried)
{
    struct balancer *b = new_or_die(all_policies[_i], ups, 4, 0);
    for (size_t k = 0; k < 200; k++) {
        uint64_t tried = k % 15; /* never all four */
        int i = balancer_pick(b, "192.0.2.1", "bob", tried, 0);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, 4);
        ck_assert_msg((tried >> i & 1) == 0, "tried %#llx, picked %d",
                      (unsigned long long)tried, i);
    }
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "bob", 0xf, 0), -1);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "bob", ~UINT64_C(0), 0), -1);
    /* Bits past n mean nothing. */
    ck_assert_int_ge(balancer_pick(b, "192.0.2.1", "bob", ~UINT64_C(0) << 4, 0), 0);
    balancer_free(b);
}
END_TEST

/* All down: the one whose back-off ends first, among the untried; -1 once
 * all were tried. */
START_TEST(test_all_down)
{
    struct balancer *b = new_or_die(all_policies[_i], ups, 3, 2);
    balancer_mark_down(b, 0, 3000);
    balancer_mark_down(b, 1, 1000);
    balancer_mark_down(b, 2, 2000);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 0, 500), 1);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 0, 500), 1);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 1u << 1, 500), 2);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 1u << 1 | 1u << 2, 500), 0);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 7, 500), -1);
    /* Down but untried beats nothing; up beats down. */
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 0, 1000), 1);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 1u << 1, 1500), 2);
    balancer_mark_up(b, 0);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", NULL, 1u << 1, 1500), 0);
    balancer_free(b);
}
END_TEST

/* 64 upstreams, the most a tried bitmap holds. */
START_TEST(test_sixty_four)
{
    struct balancer *b = new_or_die(all_policies[_i], ups, MAXUP, 0);
    for (size_t last = 0; last < MAXUP; last += 9) {
        uint64_t tried = ~(UINT64_C(1) << last);
        ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "s", tried, 0), (int)last);
    }
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "s", ~UINT64_C(0), 0), -1);
    for (size_t i = 0; i < MAXUP; i++)
        balancer_mark_down(b, i, 100 + (i * 37) % 64);
    /* (i * 37) % 64 is 0 only for i = 0. */
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "s", 0, 0), 0);
    ck_assert_int_eq(balancer_pick(b, "192.0.2.1", "s", 1, 0), 45); /* 45*37 % 64 == 1 */
    balancer_free(b);
}
END_TEST

START_TEST(test_new_limits)
{
    ck_assert_ptr_null(balancer_new(CFG_BALANCE_ROUND_ROBIN, ups, 0, 0));
    ck_assert_ptr_null(balancer_new(CFG_BALANCE_HASH_IP, ups, MAXUP + 1, 0));
    ck_assert_ptr_null(balancer_new((enum cfg_balance)99, ups, 1, 0));
    balancer_free(NULL);
    /* Out-of-range indices are ignored. */
    struct balancer *b = new_or_die(CFG_BALANCE_LEAST_CONN, ups, 2, 0);
    balancer_mark_down(b, 2, 100);
    balancer_mark_up(b, 5);
    balancer_conn_start(b, 2);
    balancer_conn_end(b, 7);
    ck_assert_int_eq(balancer_pick(b, NULL, NULL, 0, 0), 0);
    balancer_free(b);
}
END_TEST

/* An upstream without host or path still has a place on the ring, and the
 * port alone tells two upstreams apart. */
START_TEST(test_sparse_upstreams)
{
    struct cfg_upstream u[3] = {
        {.host = NULL, .port = 80, .path = NULL},
        {.host = "a", .port = 80, .path = ""},
        {.host = "a", .port = 81, .path = ""},
    };
    struct balancer *b = new_or_die(CFG_BALANCE_HASH_IP, u, 3, 0);
    size_t count[3] = {0};
    char key[32];
    for (size_t k = 0; k < 3000; k++)
        count[balancer_pick(b, key_ip(k, key), NULL, 0, 0)]++;
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_gt(count[i], 500);
    balancer_free(b);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static Suite *
balancer_suite(void)
{
    Suite *s = suite_create("balancer");
    TCase *tc = tcase_create("round_robin");
    tcase_add_unchecked_fixture(tc, make_upstreams, NULL);
    tcase_add_loop_test(tc, test_round_robin, 0, NELEM(rr_cases));
    tcase_add_test(tc, test_round_robin_distribution);
    tcase_add_test(tc, test_round_robin_down);
    suite_add_tcase(s, tc);

    tc = tcase_create("least_conn");
    tcase_add_unchecked_fixture(tc, make_upstreams, NULL);
    tcase_add_test(tc, test_least_conn);
    tcase_add_test(tc, test_least_conn_distribution);
    suite_add_tcase(s, tc);

    tc = tcase_create("hash");
    tcase_add_unchecked_fixture(tc, make_upstreams, NULL);
    tcase_add_loop_test(tc, test_hash_distribution, 0, NELEM(hash_policies));
    tcase_add_loop_test(tc, test_hash_same_key, 0, NELEM(hash_policies));
    tcase_add_loop_test(tc, test_hash_removal, 0, NELEM(hash_policies));
    tcase_add_loop_test(tc, test_hash_down, 0, NELEM(hash_policies));
    tcase_add_test(tc, test_hash_subject_fallback);
    tcase_add_test(tc, test_sparse_upstreams);
    suite_add_tcase(s, tc);

    tc = tcase_create("health");
    tcase_add_unchecked_fixture(tc, make_upstreams, NULL);
    tcase_add_loop_test(tc, test_tried, 0, NELEM(all_policies));
    tcase_add_loop_test(tc, test_all_down, 0, NELEM(all_policies));
    tcase_add_loop_test(tc, test_sixty_four, 0, NELEM(all_policies));
    tcase_add_test(tc, test_new_limits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(balancer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
