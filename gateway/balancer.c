/* balancer: round robin, least connections and a consistent-hash ring. */
#include "gateway/balancer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Points each upstream puts on the hash ring: enough for an even share
 * (within a few percent) at a few kilobytes per upstream. */
#define BALANCER_POINTS 160

/* The most upstreams a balancer takes: one bit each in a `tried` bitmap. */
#define BALANCER_MAX 64

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct ring_point {
    uint64_t hash;
    uint32_t upstream;
};

struct upstream_state {
    uint64_t down_until; /* ms; down while now_ms < down_until */
    uint64_t active;     /* proxied connections, for least_conn */
};

struct balancer {
    enum cfg_balance policy;
    size_t n;
    size_t next;             /* round robin: where the next search starts */
    struct ring_point *ring; /* hash policies: n * BALANCER_POINTS, sorted */
    size_t npoints;
    struct upstream_state up[]; /* n */
};

/* FNV-1a, 64-bit, continued from h. */
static uint64_t
fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)

/* splitmix64's finaliser: FNV alone leaves similar keys (10.0.0.1,
 * 10.0.0.2) close together in its high bits, which the ring orders by. */
static uint64_t
mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t
key_hash(const char *key)
{
    return mix(fnv1a(FNV_OFFSET, key, key != NULL ? strlen(key) : 0));
}

/* An upstream's identity on the ring: host ":" port path, so that its points
 * depend neither on its position in the list nor on the worker or reload. */
static uint64_t
upstream_hash(const struct cfg_upstream *u)
{
    char port[8];
    int plen = 0;
    unsigned v = u->port;
    do
        port[sizeof(port) - 1 - plen++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    uint64_t h = FNV_OFFSET;
    if (u->host != NULL)
        h = fnv1a(h, u->host, strlen(u->host));
    h = fnv1a(h, ":", 1);
    h = fnv1a(h, port + sizeof(port) - plen, (size_t)plen);
    if (u->path != NULL)
        h = fnv1a(h, u->path, strlen(u->path));
    return h;
}

static int
point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->upstream < y->upstream ? -1 : x->upstream > y->upstream;
}

static bool
usable(const struct balancer *b, size_t i, uint64_t tried, uint64_t now_ms)
{
    return (tried >> i & 1) == 0 && now_ms >= b->up[i].down_until;
}

static int
pick_round_robin(struct balancer *b, const char *client_ip, const char *subject,
                 uint64_t tried, uint64_t now_ms)
{
    for (size_t k = 0; k < b->n; k++) {
        size_t i = (b->next + k) % b->n;
        if (usable(b, i, tried, now_ms)) {
            b->next = (i + 1) % b->n;
            return (int)i;
        }
    }
    return -1;
}

/* Fewest active connections; among equals, the first in round-robin order. */
static int
pick_least_conn(struct balancer *b, const char *client_ip, const char *subject,
                uint64_t tried, uint64_t now_ms)
{
    int best = -1;
    for (size_t k = 0; k < b->n; k++) {
        size_t i = (b->next + k) % b->n;
        if (usable(b, i, tried, now_ms) &&
            (best < 0 || b->up[i].active < b->up[best].active))
            best = (int)i;
    }
    if (best >= 0)
        b->next = ((size_t)best + 1) % b->n;
    return best;
}

/* The first usable upstream clockwise from the key's place on the ring: a
 * key moves only when its own upstream goes away (or down, or was tried). */
static int
pick_ring(const struct balancer *b, const char *key, uint64_t tried, uint64_t now_ms)
{
    uint64_t h = key_hash(key);
    size_t lo = 0, hi = b->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t seen = 0, all = b->n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << b->n) - 1;
    for (size_t k = 0; k < b->npoints && seen != all; k++) {
        size_t i = b->ring[(lo + k) % b->npoints].upstream;
        if (usable(b, i, tried, now_ms))
            return (int)i;
        seen |= UINT64_C(1) << i;
    }
    return -1;
}

/* Every untried upstream is down: the one back soonest (ties: lowest index). */
static int
pick_earliest(const struct balancer *b, uint64_t tried)
{
    int best = -1;
    for (size_t i = 0; i < b->n; i++)
        if ((tried >> i & 1) == 0 &&
            (best < 0 || b->up[i].down_until < b->up[best].down_until))
            best = (int)i;
    return best;
}

static int
pick_hash_ip(struct balancer *b, const char *client_ip, const char *subject,
             uint64_t tried, uint64_t now_ms)
{
    return pick_ring(b, client_ip, tried, now_ms);
}

static int
pick_hash_subject(struct balancer *b, const char *client_ip, const char *subject,
                  uint64_t tried, uint64_t now_ms)
{
    return pick_ring(b, subject != NULL ? subject : client_ip, tried, now_ms);
}

/* A policy's choice among the usable upstreams, or -1 when none is. */
typedef int (*balancer_policy_fn)(struct balancer *b, const char *client_ip,
                                  const char *subject, uint64_t tried, uint64_t now_ms);

static const struct {
    balancer_policy_fn pick;
    bool ring; /* needs the hash ring */
} balancer_policies[] = {
    [CFG_BALANCE_ROUND_ROBIN] = {pick_round_robin, false},
    [CFG_BALANCE_LEAST_CONN] = {pick_least_conn, false},
    [CFG_BALANCE_HASH_IP] = {pick_hash_ip, true},
    [CFG_BALANCE_HASH_SUBJECT] = {pick_hash_subject, true},
};

struct balancer *
balancer_new(enum cfg_balance policy, const struct cfg_upstream *ups, size_t n,
             uint32_t seed)
{
    if (n == 0 || n > BALANCER_MAX || (unsigned)policy >= NELEM(balancer_policies) ||
        balancer_policies[policy].pick == NULL)
        return NULL;
    struct balancer *b = calloc(1, sizeof(*b) + n * sizeof(b->up[0]));
    if (b == NULL)
        return NULL;
    b->policy = policy;
    b->n = n;
    b->next = seed % n;
    if (!balancer_policies[policy].ring)
        return b;

    b->npoints = n * BALANCER_POINTS;
    b->ring = malloc(b->npoints * sizeof(b->ring[0]));
    if (b->ring == NULL) {
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t base = upstream_hash(&ups[i]);
        for (size_t k = 0; k < BALANCER_POINTS; k++)
            b->ring[i * BALANCER_POINTS + k] = (struct ring_point){
                .hash = mix(base + (k + 1) * UINT64_C(0x9e3779b97f4a7c15)),
                .upstream = (uint32_t)i,
            };
    }
    qsort(b->ring, b->npoints, sizeof(b->ring[0]), point_cmp);
    return b;
}

void
balancer_free(struct balancer *b)
{
    if (b == NULL)
        return;
    free(b->ring);
    free(b);
}

int
balancer_pick(struct balancer *b, const char *client_ip, const char *subject,
              uint64_t tried, uint64_t now_ms)
{
    int i = balancer_policies[b->policy].pick(b, client_ip, subject, tried, now_ms);
    return i >= 0 ? i : pick_earliest(b, tried);
}

void
balancer_mark_down(struct balancer *b, size_t i, uint64_t until_ms)
{
    if (i < b->n)
        b->up[i].down_until = until_ms;
}

void
balancer_mark_up(struct balancer *b, size_t i)
{
    if (i < b->n)
        b->up[i].down_until = 0;
}

void
balancer_conn_start(struct balancer *b, size_t i)
{
    if (i < b->n)
        b->up[i].active++;
}

void
balancer_conn_end(struct balancer *b, size_t i)
{
    if (i < b->n && b->up[i].active > 0)
        b->up[i].active--;
}
