/* snapshot: the immutable, refcounted configuration that connections start with. */
#ifndef WSGATE_SNAPSHOT_H
#define WSGATE_SNAPSHOT_H

#include <stdatomic.h>

#include "auth/auth.h"
#include "config/config.h"
#include "gateway/router.h"

struct event_base;
struct evdns_base;
struct gw_up_route;
struct gw_ws_counters;

/* Shared by all workers; replaced as a whole on reload. */
struct gw_snapshot {
    atomic_uint refs;
    struct cfg *cfg;
    struct router *router;
    unsigned generation;
    struct gw_ws_counters *ws_counters; /* parallel to cfg->routes */
};

/* Builds a snapshot over cfg and takes ownership of it (also on failure).
 * Returns NULL with err filled on failure. The caller holds one reference. */
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
};

/* Creates the worker view, taking a new reference on snap. Returns NULL with
 * err filled when a provider cannot be created. The caller holds one
 * reference. */
struct gw_wsnap *gw_wsnap_new(struct gw_snapshot *snap, struct event_base *base,
                              struct gw_err *err);
void gw_wsnap_ref(struct gw_wsnap *w);
void gw_wsnap_unref(struct gw_wsnap *w);

/* The upstream state of route r (which must belong to w's configuration and
 * be an upstream route). */
struct gw_up_route *gw_wsnap_up(const struct gw_wsnap *w, const struct cfg_route *r);

/* The instance of provider p (which must belong to w's configuration). */
struct auth_provider *gw_wsnap_provider(const struct gw_wsnap *w,
                                        const struct cfg_provider *p);

#endif
