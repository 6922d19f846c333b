/* snapshot: the immutable, refcounted configuration that connections start with. */
#ifndef WSGATE_SNAPSHOT_H
#define WSGATE_SNAPSHOT_H

#include <stdatomic.h>

#include "auth/auth.h"
#include "config/config.h"
#include "gateway/router.h"

struct event_base;
struct evdns_base;
struct gw_bus;
struct gw_handler;
struct gw_up_route;
struct gw_ws_counters;
struct gw_tunnel_counters;

/* Shared by all workers; replaced as a whole on reload. */
struct gw_snapshot {
    atomic_uint refs;
    struct cfg *cfg;
    struct router *router;
    unsigned generation;
    struct gw_ws_counters *ws_counters;         /* parallel to cfg->routes */
    struct gw_tunnel_counters *tunnel_counters; /* likewise */
    const struct gw_handler **handlers;         /* parallel to cfg->routes; NULL for
                                                   upstream routes */
    void **plugins;                             /* dlopen handles, parallel likewise */
};

/* Builds a snapshot over cfg and takes ownership of it (also on failure):
 * resolves every handler route's handler, loading plugins and creating (then
 * destroying) one trial instance of each so that a plugin that rejects its
 * options fails here. Returns NULL with err filled on failure (as
 * "FILE:LINE:COLUMN: routes[N].plugin: reason" for a plugin). The caller
 * holds one reference. */
struct gw_snapshot *gw_snapshot_new(struct cfg *cfg, unsigned generation,
                                    struct gw_err *err);
void gw_snapshot_ref(struct gw_snapshot *s);
/* Drops a reference; the last one frees the snapshot and its cfg. Any thread. */
void gw_snapshot_unref(struct gw_snapshot *s);

/* One worker's view of a snapshot: the snapshot plus that worker's provider
 * instances (providers are per worker so their callbacks need no locks).
 * Referenced by the worker and by each connection that started on it; only
 * ever touched from its worker's thread. */
struct gw_wsnap {
    unsigned refs;
    struct gw_snapshot *snap;
    struct auth_provider **providers; /* parallel to snap->cfg->providers */
    struct gw_up_route **up;          /* parallel to snap->cfg->routes; NULL
                                         for handler routes */
    struct evdns_base *dns;           /* resolves upstream host names */
    void **instances;                 /* handler instances, parallel to
                                         snap->cfg->routes */
};

/* Which worker a gw_wsnap belongs to, for its handler instances. */
struct gw_wsnap_worker {
    unsigned id;
    unsigned nworkers;
    struct gw_bus *bus; /* the broadcast bus; NULL: no broadcast routes work */
};

/* Creates the worker view, taking a new reference on snap, with its
 * provider and handler instances (wk NULL: worker 0 of 1, no bus). Returns
 * NULL with err filled when one cannot be created. The caller holds one
 * reference. The last unref destroys the handler instances. */
struct gw_wsnap *gw_wsnap_new(struct gw_snapshot *snap, struct event_base *base,
                              const struct gw_wsnap_worker *wk, struct gw_err *err);
void gw_wsnap_ref(struct gw_wsnap *w);
void gw_wsnap_unref(struct gw_wsnap *w);

/* The upstream state of route r (which must belong to w's configuration and
 * be an upstream route). */
struct gw_up_route *gw_wsnap_up(const struct gw_wsnap *w, const struct cfg_route *r);

/* The handler of route r (a handler route of w's configuration), with its
 * instance on this worker in *instance. */
const struct gw_handler *gw_wsnap_handler(const struct gw_wsnap *w,
                                          const struct cfg_route *r, void **instance);

/* The instance of provider p (which must belong to w's configuration). */
struct auth_provider *gw_wsnap_provider(const struct gw_wsnap *w,
                                        const struct cfg_provider *p);

#endif
