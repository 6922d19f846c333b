/* router: picks a route by Host and path from a precedence-ordered table. */
#include "gateway/router.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A route with what matching needs measured once. */
struct router_entry {
    const struct cfg_route *route;
    const char *host; /* bare name: no brackets, no trailing dot; NULL for any */
    size_t host_len;
    size_t path_len;
    size_t index; /* position in the config, the last tie-breaker */
};

/* Entries in precedence order: host routes, then host-less ones; within each
 * group exact paths, then prefixes from longest to shortest. The first entry
 * that matches is the answer. */
struct router {
    size_t n;
    struct router_entry entries[];
};

/* Narrows a host to the name that is compared: "[::1]:80" to "::1",
 * "Example.com.:8080" to "Example.com". A route's host has no port, so a
 * colon there belongs to an unbracketed IPv6 address. */
static void
bare_host(const char *h, size_t len, bool has_port, const char **out, size_t *out_len)
{
    size_t start = 0, stop = len;
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        start = 1;
        if (close != NULL)
            stop = (size_t)(close - h);
    } else {
        const char *colon = has_port ? memchr(h, ':', len) : NULL;
        if (colon != NULL)
            stop = (size_t)(colon - h);
        if (stop > 0 && h[stop - 1] == '.')
            stop--;
    }
    *out = h + start;
    *out_len = stop - start;
}

static int
entry_cmp(const void *pa, const void *pb)
{
    const struct router_entry *a = pa, *b = pb;
    if ((a->host == NULL) != (b->host == NULL))
        return a->host == NULL ? 1 : -1;
    if (a->route->prefix != b->route->prefix)
        return a->route->prefix ? 1 : -1;
    if (a->route->prefix && a->path_len != b->path_len)
        return a->path_len > b->path_len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

struct router *
router_new(const struct cfg *cfg)
{
    if (cfg->nroutes > (SIZE_MAX - sizeof(struct router)) / sizeof(struct router_entry))
        return NULL;
    struct router *r = malloc(sizeof(*r) + cfg->nroutes * sizeof(r->entries[0]));
    if (r == NULL)
        return NULL;
    r->n = cfg->nroutes;
    for (size_t i = 0; i < r->n; i++) {
        struct router_entry *e = &r->entries[i];
        e->route = &cfg->routes[i];
        e->path_len = strlen(e->route->path);
        e->index = i;
        e->host = NULL;
        e->host_len = 0;
        if (e->route->host != NULL)
            bare_host(e->route->host, strlen(e->route->host), false, &e->host,
                      &e->host_len);
    }
    qsort(r->entries, r->n, sizeof(r->entries[0]), entry_cmp);
    return r;
}

void
router_free(struct router *r)
{
    free(r);
}

static bool
host_matches(const struct router_entry *e, const char *host, size_t host_len)
{
    /* wsgate never calls setlocale, so this folds ASCII case only. */
    return e->host_len == host_len && strncasecmp(e->host, host, host_len) == 0;
}

static bool
path_matches(const struct router_entry *e, const char *path, size_t path_len)
{
    if (e->route->prefix)
        return path_len >= e->path_len && memcmp(path, e->route->path, e->path_len) == 0;
    return path_len == e->path_len && memcmp(path, e->route->path, path_len) == 0;
}

const struct cfg_route *
router_match(const struct router *r, const char *host, size_t host_len, const char *path,
             size_t path_len)
{
    const char *name = NULL;
    size_t name_len = 0;
    if (host != NULL)
        bare_host(host, host_len, true, &name, &name_len);
    for (size_t i = 0; i < r->n; i++) {
        const struct router_entry *e = &r->entries[i];
        if (e->host != NULL && (name == NULL || !host_matches(e, name, name_len)))
            continue;
        if (path_matches(e, path, path_len))
            return e->route;
    }
    return NULL;
}
