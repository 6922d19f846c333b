/* bus: broadcast rooms across workers, each message encoded once. */
#include "gateway/bus.h"

#include <pthread.h>
#include <stdlib.h>

#include "gateway/wake.h"

/* One message on its way to another worker's members of a room. */
struct bus_item {
    struct bus_item *next;
    struct room *room; /* referenced until delivered */
    struct gw_frame *frame;
};

/* What other workers hand one worker; the lock guards head, tail, open. */
struct bus_inbox {
    pthread_mutex_t lock;
    struct bus_item *head, **tail;
    bool open;
    struct gw_wake *wake; /* rung by the poster when the queue was empty */
    struct gw_bus *bus;
    unsigned worker;
};

struct gw_bus {
    pthread_mutex_t lock; /* guards rooms, except each worker's own lists */
    struct room_table *rooms;
    unsigned nworkers;
    struct bus_inbox inbox[];
};

struct gw_bus *
gw_bus_new(unsigned nworkers)
{
    if (nworkers == 0)
        nworkers = 1;
    struct gw_bus *b = calloc(1, sizeof(*b) + nworkers * sizeof(b->inbox[0]));
    if (b == NULL)
        return NULL;
    if ((b->rooms = room_table_new(nworkers)) == NULL) {
        free(b);
        return NULL;
    }
    b->nworkers = nworkers;
    pthread_mutex_init(&b->lock, NULL);
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&b->inbox[i].lock, NULL);
        b->inbox[i].tail = &b->inbox[i].head;
        b->inbox[i].bus = b;
        b->inbox[i].worker = i;
    }
    return b;
}

void
gw_bus_free(struct gw_bus *b)
{
    if (b == NULL)
        return;
    for (unsigned i = 0; i < b->nworkers; i++) {
        gw_bus_detach(b, i);
        pthread_mutex_destroy(&b->inbox[i].lock);
    }
    room_table_free(b->rooms);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static void
item_free(struct bus_item *it)
{
    room_unref(it->room);
    gw_frame_unref(it->frame);
    free(it);
}

/* Hands f to every member of r on `worker` but `skip`; the walk survives
 * members leaving from inside deliver. */
static void
deliver_local(struct room *r, unsigned worker, struct gw_bus_member *skip,
              struct gw_frame *f)
{
    struct room_local *l = &r->local[worker];
    struct room_member *m = l->head;
    while (m != NULL) {
        l->cursor = m->next;
        if (skip == NULL || m != &skip->rm) {
            struct gw_bus_member *bm = (struct gw_bus_member *)m;
            bm->deliver(bm, f);
        }
        m = l->cursor;
    }
    l->cursor = NULL;
}

static void
inbox_cb(void *arg)
{
    struct bus_inbox *in = arg;
    pthread_mutex_lock(&in->lock);
    struct bus_item *it = in->head;
    in->head = NULL;
    in->tail = &in->head;
    pthread_mutex_unlock(&in->lock);
    while (it != NULL) {
        struct bus_item *next = it->next;
        deliver_local(it->room, in->worker, NULL, it->frame);
        item_free(it);
        it = next;
    }
}

int
gw_bus_attach(struct gw_bus *b, unsigned worker, struct event_base *base)
{
    struct bus_inbox *in = &b->inbox[worker];
    struct gw_wake *wake = gw_wake_new(base, inbox_cb, in);
    if (wake == NULL)
        return -1;
    pthread_mutex_lock(&in->lock);
    in->wake = wake;
    in->open = true;
    pthread_mutex_unlock(&in->lock);
    return 0;
}

void
gw_bus_detach(struct gw_bus *b, unsigned worker)
{
    struct bus_inbox *in = &b->inbox[worker];
    pthread_mutex_lock(&in->lock);
    struct bus_item *it = in->head;
    struct gw_wake *wake = in->wake;
    in->head = NULL;
    in->tail = &in->head;
    in->open = false;
    in->wake = NULL;
    pthread_mutex_unlock(&in->lock);
    while (it != NULL) {
        struct bus_item *next = it->next;
        item_free(it);
        it = next;
    }
    gw_wake_free(wake);
}

enum room_result
gw_bus_join(struct gw_bus *b, unsigned worker, const char *group, const char *name,
            size_t name_len, size_t max_members, size_t max_rooms,
            struct gw_bus_member *m)
{
    pthread_mutex_lock(&b->lock);
    enum room_result rc = room_join(b->rooms, group, name, name_len, max_members,
                                    max_rooms, &m->rm, worker);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

void
gw_bus_leave(struct gw_bus *b, struct gw_bus_member *m)
{
    if (m->rm.room == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    room_leave(b->rooms, &m->rm);
    pthread_mutex_unlock(&b->lock);
}

/* Queues f for r's members on worker v; wakes v when its queue was empty. */
static int
post(struct gw_bus *b, unsigned v, struct room *r, struct gw_frame *f)
{
    struct bus_item *it = malloc(sizeof(*it));
    if (it == NULL)
        return -1;
    room_ref(r);
    gw_frame_ref(f);
    *it = (struct bus_item){NULL, r, f};
    struct bus_inbox *in = &b->inbox[v];
    pthread_mutex_lock(&in->lock);
    if (!in->open) {
        pthread_mutex_unlock(&in->lock);
        item_free(it); /* that worker has stopped: its members are gone */
        return 0;
    }
    bool wake = in->head == NULL;
    *in->tail = it;
    in->tail = &it->next;
    if (wake)
        gw_wake_ring(in->wake);
    pthread_mutex_unlock(&in->lock);
    return 0;
}

int
gw_bus_publish(struct gw_bus *b, struct gw_bus_member *sender, struct gw_frame *f,
               bool to_sender)
{
    struct room *r = sender->rm.room;
    unsigned w = sender->rm.worker;
    int rc = 0;
    if (r == NULL)
        return 0;
    /* A hold on the room: a member leaving inside deliver may empty it. */
    room_ref(r);
    for (unsigned v = 0; v < b->nworkers; v++)
        if (v != w && atomic_load_explicit(&r->local[v].n, memory_order_relaxed) > 0 &&
            post(b, v, r, f) != 0)
            rc = -1;
    deliver_local(r, w, to_sender ? NULL : sender, f);
    room_unref(r);
    return rc;
}
