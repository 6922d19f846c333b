/* bus: broadcast rooms across workers, each message encoded once. */
#ifndef WSGATE_BUS_H
#define WSGATE_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/handler.h"
#include "gateway/room.h"

struct event_base;
struct gw_bus;

/* A connection in a room, embedded in the handler's per-connection state.
 * deliver runs on the member's worker for every message of its room (but
 * its own when excluded); it must not free the member (gw_bus_leave is
 * safe, also for this member). */
struct gw_bus_member {
    struct room_member rm;
    void (*deliver)(struct gw_bus_member *m, struct gw_frame *f);
};

/* A bus for nworkers workers. NULL when out of memory. */
struct gw_bus *gw_bus_new(unsigned nworkers);
/* After every worker detached. */
void gw_bus_free(struct gw_bus *b);

/* Worker `worker` receives its messages from other workers through an event
 * on base. Returns 0 or -1 (out of memory). */
int gw_bus_attach(struct gw_bus *b, unsigned worker, struct event_base *base);
/* Stops delivery to `worker` and drops what is queued for it; from the
 * worker's thread or once it has stopped. */
void gw_bus_detach(struct gw_bus *b, unsigned worker);

/* Adds m to room `name` of route `group` on `worker` (its own thread).
 * Returns ROOM_OK, ROOM_FULL, ROOM_TOO_MANY or ROOM_NO_MEMORY. */
enum room_result gw_bus_join(struct gw_bus *b, unsigned worker, const char *group,
                             const char *name, size_t name_len, size_t max_members,
                             size_t max_rooms, struct gw_bus_member *m);
/* Removes m from its room; no-op when in none. On m's worker. */
void gw_bus_leave(struct gw_bus *b, struct gw_bus_member *m);

/* Sends f to every member of sender's room (to the sender too when
 * to_sender): at once to those on the sender's worker, through their inbox
 * to those on other workers (each worker's inbox is FIFO, so a sender's
 * messages keep their order). Each recipient gets its own reference to the
 * same frame. On the sender's worker. Returns 0, or -1 when a worker could
 * not be reached for lack of memory. */
int gw_bus_publish(struct gw_bus *b, struct gw_bus_member *sender, struct gw_frame *f,
                   bool to_sender);

#endif
