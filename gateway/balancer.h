/* balancer: picks an upstream for a new connection; a pure per-worker state. */
#ifndef WSGATE_BALANCER_H
#define WSGATE_BALANCER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct balancer;

/* A balancer over n upstreams (n >= 1) with the given policy; `seed` varies
 * round-robin start points between workers. Returns NULL when out of memory. */
struct balancer *balancer_new(enum cfg_balance policy, const struct cfg_upstream *ups,
                              size_t n, uint32_t seed);
void balancer_free(struct balancer *b);

/* Picks an upstream for a client: the policy's choice among the upstreams
 * that are not down at now_ms (passive or active health) and not set in
 * `tried` (a bitmap of upstreams already tried for this client, bit i for
 * upstream i; n <= 64). hash_ip hashes client_ip, hash_subject hashes
 * subject (falling back to client_ip when NULL), both on a consistent-hash
 * ring so that removing an upstream moves only its own clients. When every
 * untried upstream is down, the one whose back-off ends first is tried
 * rather than none. Returns the index, or -1 when all were tried. */
int balancer_pick(struct balancer *b, const char *client_ip, const char *subject,
                  uint64_t tried, uint64_t now_ms);

/* Passive health: a failed connect marks upstream i down until
 * now_ms + backoff_ms; a success marks it up. Active checks use the same. */
void balancer_mark_down(struct balancer *b, size_t i, uint64_t until_ms);
void balancer_mark_up(struct balancer *b, size_t i);

/* least_conn bookkeeping: a proxied connection to i started / ended. */
void balancer_conn_start(struct balancer *b, size_t i);
void balancer_conn_end(struct balancer *b, size_t i);

#endif
