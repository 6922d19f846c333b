/* test_room: joining and leaving rooms, their limits, cleanup and safe walks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/room.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static size_t
members_on(const struct room *r, unsigned worker)
{
    size_t n = 0;
    for (const struct room_member *m = r->local[worker].head; m != NULL; m = m->next)
        n++;
    ck_assert_uint_eq(n, atomic_load(&r->local[worker].n));
    return n;
}

START_TEST(test_join_leave_cleanup)
{
    struct room_table *t = room_table_new(2);
    struct room_member a = {0}, b = {0}, c = {0};
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(room_join(t, "chat", "r1", 2, 10, 10, &a, 0), ROOM_OK);
    ck_assert_int_eq(room_join(t, "chat", "r1", 2, 10, 10, &b, 1), ROOM_OK);
    ck_assert_ptr_eq(a.room, b.room);
    ck_assert_int_eq(room_join(t, "chat", "r2", 2, 10, 10, &c, 1), ROOM_OK);
    ck_assert_ptr_ne(a.room, c.room);
    ck_assert_uint_eq(room_table_rooms(t, "chat"), 2);
    ck_assert_uint_eq(members_on(a.room, 0), 1);
    ck_assert_uint_eq(members_on(a.room, 1), 1);
    ck_assert_uint_eq(a.room->nmembers, 2);
    room_leave(t, &a);
    ck_assert_ptr_null(a.room);
    ck_assert_uint_eq(room_table_rooms(t, "chat"), 2);
    room_leave(t, &b);
    room_leave(t, &b); /* twice: a no-op */
    ck_assert_uint_eq(room_table_rooms(t, "chat"), 1);
    room_leave(t, &c);
    ck_assert_uint_eq(room_table_size(t), 0);
    room_table_free(t);
}
END_TEST

/* The same room name under two routes is two rooms; names are bytes. */
START_TEST(test_groups_and_binary_names)
{
    struct room_table *t = room_table_new(1);
    struct room_member a = {0}, b = {0}, c = {0}, d = {0};
    ck_assert_int_eq(room_join(t, "one", "x", 1, 10, 10, &a, 0), ROOM_OK);
    ck_assert_int_eq(room_join(t, "two", "x", 1, 10, 10, &b, 0), ROOM_OK);
    ck_assert_ptr_ne(a.room, b.room);
    /* "on" + "\0e\0x" must not collide with "one" + "\0x". */
    ck_assert_int_eq(room_join(t, "on", "e\0x", 3, 10, 10, &c, 0), ROOM_OK);
    ck_assert_ptr_ne(a.room, c.room);
    ck_assert_int_eq(room_join(t, "one", "", 0, 10, 10, &d, 0), ROOM_OK);
    ck_assert_ptr_ne(a.room, d.room);
    ck_assert_uint_eq(room_table_rooms(t, "one"), 2);
    ck_assert_uint_eq(room_table_rooms(t, "two"), 1);
    ck_assert_uint_eq(room_table_rooms(t, "three"), 0);
    room_leave(t, &a);
    room_leave(t, &b);
    room_leave(t, &c);
    room_leave(t, &d);
    room_table_free(t);
}
END_TEST

START_TEST(test_limits)
{
    struct room_table *t = room_table_new(2);
    struct room_member m[5] = {0};
    ck_assert_int_eq(room_join(t, "g", "a", 1, 2, 2, &m[0], 0), ROOM_OK);
    ck_assert_int_eq(room_join(t, "g", "a", 1, 2, 2, &m[1], 1), ROOM_OK);
    ck_assert_int_eq(room_join(t, "g", "a", 1, 2, 2, &m[2], 0), ROOM_FULL);
    ck_assert_ptr_null(m[2].room);
    ck_assert_int_eq(room_join(t, "g", "b", 1, 2, 2, &m[2], 0), ROOM_OK);
    ck_assert_int_eq(room_join(t, "g", "c", 1, 2, 2, &m[3], 0), ROOM_TOO_MANY);
    /* Another route has its own count. */
    ck_assert_int_eq(room_join(t, "h", "c", 1, 2, 2, &m[3], 0), ROOM_OK);
    ck_assert_int_eq(room_join(t, "g", "a", 1, 2, 2, &m[4], 2),
                     ROOM_NO_MEMORY); /* bad worker */
    room_leave(t, &m[2]);             /* room b empty: gone, so c fits */
    ck_assert_int_eq(room_join(t, "g", "c", 1, 2, 2, &m[4], 1), ROOM_OK);
    for (size_t i = 0; i < NELEMS(m); i++)
        room_leave(t, &m[i]);
    ck_assert_uint_eq(room_table_size(t), 0);
    room_table_free(t);
}
END_TEST

/* A message in flight keeps an emptied room alive; a new join makes a new one. */
START_TEST(test_ref_outlives_members)
{
    struct room_table *t = room_table_new(1);
    struct room_member a = {0}, b = {0};
    ck_assert_int_eq(room_join(t, "g", "a", 1, 9, 9, &a, 0), ROOM_OK);
    struct room *r = a.room;
    room_ref(r);
    room_leave(t, &a);
    ck_assert_uint_eq(room_table_size(t), 0);
    ck_assert_ptr_null(r->local[0].head); /* still readable: referenced */
    ck_assert_int_eq(room_join(t, "g", "a", 1, 9, 9, &b, 0), ROOM_OK);
    ck_assert_uint_eq(room_table_size(t), 1);
    room_unref(r);
    room_leave(t, &b);
    room_table_free(t);
}
END_TEST

/* Many rooms: the table grows and every room stays findable. */
START_TEST(test_many_rooms)
{
    enum { N = 5000 };
    struct room_table *t = room_table_new(3);
    struct room_member *m = calloc(2 * N, sizeof(*m));
    char name[32];
    for (size_t i = 0; i < N; i++) {
        int n = snprintf(name, sizeof(name), "room-%zu", i);
        ck_assert_int_eq(room_join(t, "g", name, (size_t)n, 2, N, &m[i], i % 3), ROOM_OK);
    }
    for (size_t i = 0; i < N; i++) {
        int n = snprintf(name, sizeof(name), "room-%zu", i);
        ck_assert_int_eq(room_join(t, "g", name, (size_t)n, 2, N, &m[N + i], 2), ROOM_OK);
        ck_assert_ptr_eq(m[N + i].room, m[i].room);
    }
    ck_assert_uint_eq(room_table_rooms(t, "g"), N);
    for (size_t i = 0; i < 2 * N; i++)
        room_leave(t, &m[i]);
    ck_assert_uint_eq(room_table_size(t), 0);
    free(m);
    room_table_free(t);
}
END_TEST

/* Members leaving during a walk (as a delivery may make them) are skipped
 * correctly: the walk follows the cursor, as the bus does. */
START_TEST(test_leave_during_walk)
{
    struct room_table *t = room_table_new(1);
    struct room_member m[6] = {0};
    for (size_t i = 0; i < NELEMS(m); i++)
        ck_assert_int_eq(room_join(t, "g", "r", 1, 10, 10, &m[i], 0), ROOM_OK);
    struct room *r = m[0].room;
    struct room_local *l = &r->local[0];
    size_t visited = 0;
    for (struct room_member *p = l->head; p != NULL; p = l->cursor) {
        l->cursor = p->next;
        visited++;
        if (p == &m[4]) {
            room_leave(t, &m[4]); /* itself */
            room_leave(t, &m[3]); /* the next one (head-first order: 5 4 3 2 1 0) */
        }
    }
    l->cursor = NULL;
    ck_assert_uint_eq(visited, 5);
    ck_assert_uint_eq(members_on(r, 0), 4);
    for (size_t i = 0; i < NELEMS(m); i++)
        room_leave(t, &m[i]);
    room_table_free(t);
}
END_TEST

static Suite *
room_suite(void)
{
    Suite *s = suite_create("room");
    TCase *tc = tcase_create("rooms");
    tcase_add_test(tc, test_join_leave_cleanup);
    tcase_add_test(tc, test_groups_and_binary_names);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_ref_outlives_members);
    tcase_add_test(tc, test_many_rooms);
    tcase_add_test(tc, test_leave_during_walk);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(room_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
