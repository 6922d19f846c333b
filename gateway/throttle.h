/* throttle: a bounded table of clients that keep failing authentication. */
#ifndef WSGATE_THROTTLE_H
#define WSGATE_THROTTLE_H

#include <stdint.h>

/* Shared by every worker (a client's connections spread over the workers'
 * SO_REUSEPORT sockets); each call takes the table's mutex. The table has
 * a fixed number of entries in sets of GW_THROTTLE_WAYS: a client hashes
 * to one set (with a per-table random seed) and, when the set is full,
 * replaces its least recently seen entry that is not blocked (or, when all
 * are blocked, the one whose block ends first) — so a botnet's addresses
 * cannot grow it, only evict each other. */
#define GW_THROTTLE_WAYS 8

struct gw_throttle;

/* A client's key: its IPv6 address, or IPv4 mapped into IPv6. */
struct gw_throttle_key {
    uint8_t addr[16];
};

/* What a failure counts against: see struct cfg_auth_throttle. */
struct gw_throttle_rule {
    uint64_t failures;
    uint64_t window_ms;
    uint64_t block_ms;
};

/* A table of at least `entries` entries (rounded up to whole sets), or NULL
 * when out of memory. */
struct gw_throttle *gw_throttle_new(uint64_t entries, uint64_t seed);
void gw_throttle_free(struct gw_throttle *t);

/* Parses a peer address as text (IPv4 or IPv6) into key; -1 when it is
 * neither. */
int gw_throttle_key_from_text(const char *peer, struct gw_throttle_key *key);

/* Milliseconds the client stays blocked after now_ms, or 0 when it may try. */
uint64_t gw_throttle_blocked(struct gw_throttle *t, const struct gw_throttle_key *key,
                             uint64_t now_ms);

/* Counts one failed authentication at now_ms: the first failure opens a
 * window of rule->window_ms; the rule->failures-th within it blocks the
 * client for rule->block_ms. Returns the milliseconds blocked from now (0
 * when not blocked). A success does not reset the count (see README). */
uint64_t gw_throttle_fail(struct gw_throttle *t, const struct gw_throttle_key *key,
                          uint64_t now_ms, const struct gw_throttle_rule *rule);

#endif
