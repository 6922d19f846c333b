/* room: the broadcast rooms of all routes and their members on each worker. */
#include "gateway/room.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A route's rooms are counted against its max_rooms. Groups are few (one
 * per broadcast route name ever loaded) and live as long as the table. */
struct room_group {
    struct room_group *next;
    size_t nrooms;
    char name[];
};

struct room_table {
    unsigned nworkers;
    struct room **buckets;
    size_t nbuckets; /* a power of two */
    size_t nrooms;
    struct room_group *groups;
};

static uint64_t
hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct room_table *
room_table_new(unsigned nworkers)
{
    struct room_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->nworkers = nworkers ? nworkers : 1;
    t->nbuckets = 64;
    if ((t->buckets = calloc(t->nbuckets, sizeof(*t->buckets))) == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void
room_table_free(struct room_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct room *r = t->buckets[i], *next;
        for (; r != NULL; r = next) {
            next = r->hnext;
            room_unref(r);
        }
    }
    while (t->groups != NULL) {
        struct room_group *g = t->groups;
        t->groups = g->next;
        free(g);
    }
    free(t->buckets);
    free(t);
}

static struct room_group *
find_group(const struct room_table *t, const char *name)
{
    for (struct room_group *g = t->groups; g != NULL; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

static struct room_group *
get_group(struct room_table *t, const char *name)
{
    struct room_group *g = find_group(t, name);
    if (g != NULL)
        return g;
    size_t n = strlen(name);
    if ((g = calloc(1, sizeof(*g) + n + 1)) == NULL)
        return NULL;
    memcpy(g->name, name, n + 1);
    g->next = t->groups;
    t->groups = g;
    return g;
}

/* Doubles the buckets when rooms outnumber them; failure only costs speed. */
static void
grow(struct room_table *t)
{
    if (t->nrooms < t->nbuckets || t->nbuckets > SIZE_MAX / 4)
        return;
    size_t nb = t->nbuckets * 2;
    struct room **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct room *r = t->buckets[i], *next;
        for (; r != NULL; r = next) {
            next = r->hnext;
            size_t k = hash(r->key, r->key_len) & (nb - 1);
            r->hnext = b[k];
            b[k] = r;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

static struct room *
room_new(struct room_table *t, struct room_group *g, const char *key, size_t key_len,
         size_t name_len)
{
    struct room *r = calloc(1, sizeof(*r) + t->nworkers * sizeof(r->local[0]));
    if (r == NULL || (r->key = malloc(key_len)) == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->key, key, key_len);
    r->key_len = key_len;
    r->name_len = name_len;
    r->group = g;
    r->nworkers = t->nworkers;
    atomic_init(&r->refs, 1);
    for (unsigned i = 0; i < t->nworkers; i++)
        atomic_init(&r->local[i].n, 0);
    size_t k = hash(key, key_len) & (t->nbuckets - 1);
    r->hnext = t->buckets[k];
    t->buckets[k] = r;
    t->nrooms++;
    g->nrooms++;
    grow(t);
    return r;
}

enum room_result
room_join(struct room_table *t, const char *group, const char *name, size_t name_len,
          size_t max_members, size_t max_rooms, struct room_member *m, unsigned worker)
{
    size_t glen = strlen(group);
    if (name_len > SIZE_MAX - glen - 1 || worker >= t->nworkers)
        return ROOM_NO_MEMORY;
    size_t key_len = glen + 1 + name_len;
    char stack[512];
    char *key = key_len <= sizeof(stack) ? stack : malloc(key_len);
    if (key == NULL)
        return ROOM_NO_MEMORY;
    memcpy(key, group, glen + 1);
    memcpy(key + glen + 1, name, name_len);
    struct room *r = t->buckets[hash(key, key_len) & (t->nbuckets - 1)];
    while (r != NULL && (r->key_len != key_len || memcmp(r->key, key, key_len) != 0))
        r = r->hnext;
    enum room_result rc = ROOM_OK;
    if (r == NULL) {
        struct room_group *g = get_group(t, group);
        if (g == NULL)
            rc = ROOM_NO_MEMORY;
        else if (g->nrooms >= max_rooms)
            rc = ROOM_TOO_MANY;
        else if ((r = room_new(t, g, key, key_len, name_len)) == NULL)
            rc = ROOM_NO_MEMORY;
    } else if (r->nmembers >= max_members) {
        rc = ROOM_FULL;
    }
    if (key != stack)
        free(key);
    if (rc != ROOM_OK)
        return rc;
    struct room_local *l = &r->local[worker];
    m->room = r;
    m->worker = worker;
    m->prev = NULL;
    m->next = l->head;
    if (l->head != NULL)
        l->head->prev = m;
    l->head = m;
    atomic_fetch_add_explicit(&l->n, 1, memory_order_relaxed);
    r->nmembers++;
    return ROOM_OK;
}

static void
unlink_room(struct room_table *t, struct room *r)
{
    struct room **p = &t->buckets[hash(r->key, r->key_len) & (t->nbuckets - 1)];
    while (*p != r)
        p = &(*p)->hnext;
    *p = r->hnext;
    r->hnext = NULL;
    t->nrooms--;
    r->group->nrooms--;
}

void
room_leave(struct room_table *t, struct room_member *m)
{
    struct room *r = m->room;
    if (r == NULL)
        return;
    struct room_local *l = &r->local[m->worker];
    if (l->cursor == m)
        l->cursor = m->next;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
    m->room = NULL;
    atomic_fetch_sub_explicit(&l->n, 1, memory_order_relaxed);
    if (--r->nmembers == 0) {
        unlink_room(t, r);
        room_unref(r);
    }
}

void
room_ref(struct room *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void
room_unref(struct room *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(r->key);
    free(r);
}

size_t
room_table_rooms(const struct room_table *t, const char *group)
{
    const struct room_group *g = find_group(t, group);
    return g != NULL ? g->nrooms : 0;
}

size_t
room_table_size(const struct room_table *t)
{
    return t->nrooms;
}
