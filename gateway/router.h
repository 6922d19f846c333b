/* router: picks a route by Host and path; a pure lookup over the config. */
#ifndef WSGATE_ROUTER_H
#define WSGATE_ROUTER_H

#include <stddef.h>

#include "config/config.h"

struct router;

/* Builds a router over cfg->routes. The router keeps pointers into cfg, which
 * must outlive it. Returns NULL only when out of memory. */
struct router *router_new(const struct cfg *cfg);
void router_free(struct router *r);

/* Finds the route for host[0..host_len) (a Host header value, port and case
 * ignored; may be NULL) and path[0..path_len) (no query). Routes with a host
 * are tried first, among those whose host matches; when none of them
 * matches, routes without a host are tried. Within a group an exact `path`
 * wins over any `path_prefix`, and the longest matching prefix wins among
 * prefixes. Returns the route or NULL (404). */
const struct cfg_route *router_match(const struct router *r, const char *host,
                                     size_t host_len, const char *path, size_t path_len);

#endif
