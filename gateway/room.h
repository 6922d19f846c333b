/* room: the broadcast rooms of all routes and their members on each worker. */
#ifndef WSGATE_ROOM_H
#define WSGATE_ROOM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Pure bookkeeping: no locks and no I/O. The caller (the bus) serializes
 * room_join and room_leave; a worker's member list (room->local[w]) is only
 * ever touched by worker w, so that worker may walk it without a lock. */

struct room;
struct room_group;

/* A connection in a room; embedded in the caller's per-connection state. */
struct room_member {
    struct room_member *prev, *next;
    struct room *room; /* NULL while not in a room */
    unsigned worker;
};

/* The members of one room on one worker. */
struct room_local {
    struct room_member *head;
    struct room_member *cursor; /* the next member of a walk in progress */
    atomic_size_t n;            /* read by other workers without the lock */
};

struct room {
    struct room *hnext; /* hash chain */
    struct room_group *group;
    atomic_uint refs; /* 1 while in the table, plus one per message in flight */
    size_t nmembers;  /* on all workers */
    char *key;        /* group name, NUL, room name */
    size_t key_len;
    size_t name_len;
    unsigned nworkers;
    struct room_local local[];
};

struct room_table;

enum room_result {
    ROOM_OK = 0,
    ROOM_FULL = -1,     /* the room has max_members already */
    ROOM_TOO_MANY = -2, /* the group has max_rooms already */
    ROOM_NO_MEMORY = -3,
};

/* A table for nworkers workers (at least 1). NULL when out of memory. */
struct room_table *room_table_new(unsigned nworkers);
/* Frees the table; every member must have left (rooms still referenced by
 * messages in flight stay until their last room_unref). */
void room_table_free(struct room_table *t);

/* Adds m (not in a room) on `worker` to room `name` (name_len bytes, any
 * bytes) of `group` (a route name), creating the room if needed within
 * max_rooms rooms per group and max_members members per room. */
enum room_result room_join(struct room_table *t, const char *group, const char *name,
                           size_t name_len, size_t max_members, size_t max_rooms,
                           struct room_member *m, unsigned worker);

/* Removes m from its room (no-op when in none); an empty room leaves the
 * table and is freed once no message refers to it. A walk of m's worker's
 * list in progress skips m correctly. */
void room_leave(struct room_table *t, struct room_member *m);

/* A reference held by a message in flight. room_unref from any thread. */
void room_ref(struct room *r);
void room_unref(struct room *r);

/* The rooms of `group` now, and all rooms (for tests and metrics). */
size_t room_table_rooms(const struct room_table *t, const char *group);
size_t room_table_size(const struct room_table *t);

#endif
