/* test_bus: cross-worker delivery: exactly once, per-sender order, sender rule, detach.
 */
#include <check.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/bus.h"
#include "gateway/shared_frame.h"
#include "gateway/wake.h"

#define NW 3
#define PER_WORKER 4 /* members on each worker */
#define NMSG 2000    /* messages per sender */

struct tmember {
    struct gw_bus_member bm; /* first */
    unsigned id;
    unsigned worker;
    unsigned *next_seq; /* [sender id]: the sequence number expected next */
    size_t got;
    bool bad; /* out of order or duplicated */
};

static atomic_size_t delivered;

static void
deliver(struct gw_bus_member *bm, struct gw_frame *f)
{
    struct tmember *m = (struct tmember *)bm;
    unsigned sender, seq;
    char text[64];
    size_t n = f->payload_len < sizeof(text) - 1 ? f->payload_len : sizeof(text) - 1;
    memcpy(text, f->bytes + (f->len - f->payload_len), n);
    text[n] = '\0';
    ck_assert_int_eq(sscanf(text, "%u:%u", &sender, &seq), 2);
    if (m->next_seq[sender] != seq)
        m->bad = true;
    m->next_seq[sender] = seq + 1;
    m->got++;
    atomic_fetch_add(&delivered, 1);
}

static struct tmember *
members_new(struct gw_bus *bus, const char *room)
{
    struct tmember *m = calloc(NW * PER_WORKER, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    for (unsigned i = 0; i < NW * PER_WORKER; i++) {
        m[i].id = i;
        m[i].worker = i % NW;
        m[i].bm.deliver = deliver;
        m[i].next_seq = calloc(NW * PER_WORKER, sizeof(unsigned));
        ck_assert_int_eq(gw_bus_join(bus, m[i].worker, "route", room, strlen(room), 1000,
                                     1000, &m[i].bm),
                         ROOM_OK);
    }
    return m;
}

static void
members_free(struct gw_bus *bus, struct tmember *m)
{
    for (unsigned i = 0; i < NW * PER_WORKER; i++) {
        gw_bus_leave(bus, &m[i].bm);
        free(m[i].next_seq);
    }
    free(m);
}

static void
publish(struct gw_bus *bus, struct tmember *sender, unsigned seq, bool to_sender)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "%u:%u", sender->id, seq);
    struct gw_frame *f = gw_frame_new(WS_OP_TEXT, text, (size_t)n);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gw_bus_publish(bus, &sender->bm, f, to_sender), 0);
    gw_frame_unref(f);
}

/* One thread: local members get a message at once, others after their
 * worker's loop ran; the sender only when asked. */
START_TEST(test_fanout_one_thread)
{
    struct event_base *base[NW];
    struct gw_bus *bus = gw_bus_new(NW);
    ck_assert_ptr_nonnull(bus);
    for (unsigned w = 0; w < NW; w++) {
        base[w] = event_base_new();
        ck_assert_int_eq(gw_bus_attach(bus, w, base[w]), 0);
    }
    struct tmember *m = members_new(bus, "r");
    publish(bus, &m[0], 0, false);
    publish(bus, &m[0], 1, true);
    for (unsigned i = 0; i < NW * PER_WORKER; i++)
        if (m[i].worker == 0)
            ck_assert_uint_eq(m[i].got, i == 0 ? 1 : 2);
        else
            ck_assert_uint_eq(m[i].got, 0);
    for (unsigned w = 0; w < NW; w++)
        event_base_loop(base[w], EVLOOP_NONBLOCK);
    for (unsigned i = 0; i < NW * PER_WORKER; i++) {
        ck_assert_uint_eq(m[i].got, i == 0 ? 1 : 2);
        ck_assert(i == 0 || !m[i].bad); /* the sender saw only 1, not 0 */
    }
    /* Another room hears nothing. */
    struct tmember other = {.id = 0, .bm.deliver = deliver};
    unsigned seqs[NW * PER_WORKER] = {0};
    other.next_seq = seqs;
    ck_assert_int_eq(gw_bus_join(bus, 1, "route", "s", 1, 10, 10, &other.bm), ROOM_OK);
    publish(bus, &m[3], 0, false);
    for (unsigned w = 0; w < NW; w++)
        event_base_loop(base[w], EVLOOP_NONBLOCK);
    ck_assert_uint_eq(other.got, 0);
    gw_bus_leave(bus, &other.bm);
    members_free(bus, m);
    for (unsigned w = 0; w < NW; w++) {
        gw_bus_detach(bus, w);
        event_base_free(base[w]);
    }
    gw_bus_free(bus);
}
END_TEST

/* What is queued for a worker that stops is dropped, and freed. */
START_TEST(test_detach_drops_queue)
{
    struct event_base *base[2] = {event_base_new(), event_base_new()};
    struct gw_bus *bus = gw_bus_new(2);
    for (unsigned w = 0; w < 2; w++)
        ck_assert_int_eq(gw_bus_attach(bus, w, base[w]), 0);
    struct tmember a = {.id = 0, .worker = 0, .bm.deliver = deliver};
    struct tmember b = {.id = 1, .worker = 1, .bm.deliver = deliver};
    unsigned sa[2] = {0}, sb[2] = {0};
    a.next_seq = sa;
    b.next_seq = sb;
    ck_assert_int_eq(gw_bus_join(bus, 0, "g", "r", 1, 10, 10, &a.bm), ROOM_OK);
    ck_assert_int_eq(gw_bus_join(bus, 1, "g", "r", 1, 10, 10, &b.bm), ROOM_OK);
    publish(bus, &a, 0, false);
    gw_bus_leave(bus, &b.bm); /* b's worker stops: its members are gone */
    gw_bus_detach(bus, 1);
    publish(bus, &a, 1, false); /* nobody there: not even queued */
    ck_assert_uint_eq(b.got, 0);
    gw_bus_leave(bus, &a.bm);
    gw_bus_detach(bus, 0);
    gw_bus_free(bus);
    event_base_free(base[0]);
    event_base_free(base[1]);
}
END_TEST

struct worker {
    struct event_base *base;
    struct gw_bus *bus;
    struct tmember *m; /* all members */
    unsigned id;
    pthread_t thread;
    struct gw_wake *stop; /* rung by the test's thread: the loop breaks itself */
};

static void
stop_cb(void *arg)
{
    struct worker *w = arg;
    event_base_loopbreak(w->base);
}

/* Every member on this worker sends NMSG messages, from the worker's thread. */
static void
send_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    for (unsigned seq = 0; seq < NMSG; seq++)
        for (unsigned i = 0; i < NW * PER_WORKER; i++)
            if (w->m[i].worker == w->id)
                publish(w->bus, &w->m[i], seq, false);
}

static void *
run(void *arg)
{
    struct worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Every member sends from its own worker thread at once: each member gets
 * each other member's messages exactly once, in their order. */
START_TEST(test_threads_order_and_once)
{
    struct worker w[NW];
    struct gw_bus *bus = gw_bus_new(NW);
    struct event *ev[NW];
    for (unsigned i = 0; i < NW; i++) {
        w[i] = (struct worker){.base = event_base_new(), .bus = bus, .id = i};
        ck_assert_int_eq(gw_bus_attach(bus, i, w[i].base), 0);
        ck_assert_ptr_nonnull(w[i].stop = gw_wake_new(w[i].base, stop_cb, &w[i]));
    }
    struct tmember *m = members_new(bus, "threads");
    atomic_store(&delivered, 0);
    for (unsigned i = 0; i < NW; i++) {
        w[i].m = m;
        ev[i] = event_new(w[i].base, -1, 0, send_cb, &w[i]);
        event_active(ev[i], EV_TIMEOUT, 0);
        ck_assert_int_eq(pthread_create(&w[i].thread, NULL, run, &w[i]), 0);
    }
    size_t n = NW * PER_WORKER;
    size_t want = n * (n - 1) * NMSG;
    /* A hang guard, not a timing assertion: 120 s for what takes well under one. */
    for (int i = 0; i < 12000 && atomic_load(&delivered) < want; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    /* As in the gateway, no thread calls into another's event base. */
    for (unsigned i = 0; i < NW; i++) {
        gw_wake_ring(w[i].stop);
        pthread_join(w[i].thread, NULL);
    }
    ck_assert_uint_eq(atomic_load(&delivered), want);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_uint_eq(m[i].got, (n - 1) * NMSG);
        ck_assert_msg(!m[i].bad, "member %u: a message out of order or twice", i);
        for (unsigned s = 0; s < n; s++)
            ck_assert_uint_eq(m[i].next_seq[s], s == i ? 0 : NMSG);
    }
    members_free(bus, m);
    for (unsigned i = 0; i < NW; i++) {
        event_free(ev[i]);
        gw_wake_free(w[i].stop);
        gw_bus_detach(bus, i);
        event_base_free(w[i].base);
    }
    gw_bus_free(bus);
}
END_TEST

static Suite *
bus_suite(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("bus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fanout_one_thread);
    tcase_add_test(tc, test_detach_drops_queue);
    tcase_add_test(tc, test_threads_order_and_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(bus_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
