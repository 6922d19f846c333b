/* throttle: a bounded table of clients that keep failing authentication. */
#include "gateway/throttle.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct throttle_entry {
    struct gw_throttle_key key;
    bool used;
    uint32_t failures;      /* within the window that started at first_ms */
    uint64_t first_ms;      /* the window's start */
    uint64_t blocked_until; /* 0 when not blocked */
    uint64_t last_ms;       /* last failure or check, for eviction */
};

struct gw_throttle {
    pthread_mutex_t lock;
    struct throttle_entry *entries;
    size_t nsets;
    uint64_t seed;
};

struct gw_throttle *
gw_throttle_new(uint64_t entries, uint64_t seed)
{
    struct gw_throttle *t = calloc(1, sizeof(*t));
    size_t nsets = (size_t)((entries + GW_THROTTLE_WAYS - 1) / GW_THROTTLE_WAYS);
    if (nsets == 0)
        nsets = 1;
    if (t == NULL ||
        (t->entries = calloc(nsets * GW_THROTTLE_WAYS, sizeof(*t->entries))) == NULL ||
        pthread_mutex_init(&t->lock, NULL) != 0) {
        if (t != NULL)
            free(t->entries);
        free(t);
        return NULL;
    }
    t->nsets = nsets;
    t->seed = seed;
    return t;
}

void
gw_throttle_free(struct gw_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->entries);
    free(t);
}

int
gw_throttle_key_from_text(const char *peer, struct gw_throttle_key *key)
{
    memset(key, 0, sizeof(*key));
    if (inet_pton(AF_INET6, peer, key->addr) == 1)
        return 0;
    if (inet_pton(AF_INET, peer, key->addr + 12) != 1)
        return -1;
    key->addr[10] = key->addr[11] = 0xff;
    return 0;
}

/* A seeded 64-bit mix (splitmix64 finaliser over the address words), so
 * that nobody can choose addresses that crowd one set without the seed. */
static size_t
set_of(const struct gw_throttle *t, const struct gw_throttle_key *key)
{
    uint64_t a, b;
    memcpy(&a, key->addr, 8);
    memcpy(&b, key->addr + 8, 8);
    uint64_t h = t->seed ^ a;
    for (int round = 0; round < 2; round++) {
        h ^= round == 0 ? 0 : b;
        h += 0x9e3779b97f4a7c15ULL;
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    return (size_t)(h % t->nsets);
}

static struct throttle_entry *
find(struct gw_throttle *t, const struct gw_throttle_key *key)
{
    struct throttle_entry *set = &t->entries[set_of(t, key) * GW_THROTTLE_WAYS];
    for (size_t i = 0; i < GW_THROTTLE_WAYS; i++)
        if (set[i].used && memcmp(set[i].key.addr, key->addr, sizeof(key->addr)) == 0)
            return &set[i];
    return NULL;
}

/* The entry to reuse for a new client: a free one, else the least recently
 * seen unblocked one, else the one whose block ends first. */
static struct throttle_entry *
victim(struct gw_throttle *t, const struct gw_throttle_key *key, uint64_t now_ms)
{
    struct throttle_entry *set = &t->entries[set_of(t, key) * GW_THROTTLE_WAYS];
    struct throttle_entry *best = NULL;
    for (size_t i = 0; i < GW_THROTTLE_WAYS; i++) {
        struct throttle_entry *e = &set[i];
        if (!e->used)
            return e;
        bool blocked = e->blocked_until > now_ms;
        bool best_blocked = best != NULL && best->blocked_until > now_ms;
        if (best == NULL || (best_blocked && !blocked) ||
            (best_blocked == blocked && (blocked ? e->blocked_until < best->blocked_until
                                                 : e->last_ms < best->last_ms)))
            best = e;
    }
    return best;
}

uint64_t
gw_throttle_blocked(struct gw_throttle *t, const struct gw_throttle_key *key,
                    uint64_t now_ms)
{
    pthread_mutex_lock(&t->lock);
    struct throttle_entry *e = find(t, key);
    uint64_t left =
        e != NULL && e->blocked_until > now_ms ? e->blocked_until - now_ms : 0;
    pthread_mutex_unlock(&t->lock);
    return left;
}

uint64_t
gw_throttle_fail(struct gw_throttle *t, const struct gw_throttle_key *key,
                 uint64_t now_ms, const struct gw_throttle_rule *rule)
{
    pthread_mutex_lock(&t->lock);
    struct throttle_entry *e = find(t, key);
    if (e == NULL) {
        e = victim(t, key, now_ms);
        *e = (struct throttle_entry){.key = *key, .used = true, .first_ms = now_ms};
    }
    /* A block that ended, or a window that passed, starts over. */
    if ((e->blocked_until != 0 && e->blocked_until <= now_ms) ||
        now_ms - e->first_ms >= rule->window_ms) {
        e->failures = 0;
        e->first_ms = now_ms;
        e->blocked_until = 0;
    }
    e->last_ms = now_ms;
    if (e->blocked_until == 0 && ++e->failures >= rule->failures)
        e->blocked_until = now_ms + rule->block_ms;
    uint64_t left = e->blocked_until > now_ms ? e->blocked_until - now_ms : 0;
    pthread_mutex_unlock(&t->lock);
    return left;
}
