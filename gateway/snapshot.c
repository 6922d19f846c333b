/* snapshot: the immutable, refcounted configuration that connections start with. */
#include "gateway/snapshot.h"

#include <event2/dns.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/upstream.h"
#include "gateway/ws_endpoint.h"

struct gw_snapshot *
gw_snapshot_new(struct cfg *cfg, unsigned generation, struct gw_err *err)
{
    struct gw_snapshot *s = calloc(1, sizeof(*s));
    struct router *r = router_new(cfg);
    struct gw_ws_counters *k = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*k));
    if (s == NULL || r == NULL || k == NULL) {
        free(s);
        free(k);
        router_free(r);
        cfg_free(cfg);
        gw_err_set(err, "out of memory building the configuration snapshot");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->router = r;
    s->generation = generation;
    s->ws_counters = k;
    return s;
}

void
gw_snapshot_ref(struct gw_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void
gw_snapshot_unref(struct gw_snapshot *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    router_free(s->router);
    cfg_free(s->cfg);
    free(s->ws_counters);
    free(s);
}

static void
wsnap_free(struct gw_wsnap *w)
{
    if (w->providers != NULL)
        for (size_t i = 0; i < w->snap->cfg->nproviders; i++)
            auth_provider_free(w->providers[i]);
    free(w->providers);
    if (w->up != NULL)
        for (size_t i = 0; i < w->snap->cfg->nroutes; i++)
            gw_up_route_free(w->up[i]);
    free(w->up);
    if (w->dns != NULL)
        evdns_base_free(w->dns, 1); /* fails lookups still pending */
    gw_snapshot_unref(w->snap);
    free(w);
}

/* The upstream state of each proxied route, and a resolver when a route
 * names its upstream by host name. */
static int
wsnap_upstreams(struct gw_wsnap *w, struct event_base *base, struct gw_err *err)
{
    const struct cfg *cfg = w->snap->cfg;
    if ((w->up = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*w->up))) == NULL)
        return gw_err_set(err, "out of memory");
    bool any = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (cfg->routes[i].kind != CFG_ROUTE_UPSTREAM)
            continue;
        any = true;
        unsigned seed = (unsigned)(uintptr_t)w ^ (unsigned)i;
        if ((w->up[i] = gw_up_route_new(&cfg->routes[i], seed, err)) == NULL)
            return -1;
    }
    if (any &&
        (w->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (w->dns = evdns_base_new(base, 0)) == NULL)
        return gw_err_set(err, "cannot create a DNS resolver");
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (w->up[i] != NULL &&
            gw_up_route_start_health(w->up[i], base, w->dns, err) != 0)
            return -1;
    return 0;
}

struct gw_wsnap *
gw_wsnap_new(struct gw_snapshot *snap, struct event_base *base, struct gw_err *err)
{
    struct gw_wsnap *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        gw_err_set(err, "out of memory");
        return NULL;
    }
    gw_snapshot_ref(snap);
    w->snap = snap;
    w->refs = 1;
    size_t n = snap->cfg->nproviders;
    w->providers = calloc(n ? n : 1, sizeof(*w->providers));
    if (w->providers == NULL) {
        gw_err_set(err, "out of memory");
        wsnap_free(w);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        w->providers[i] = auth_provider_new(&snap->cfg->providers[i], base, err);
        if (w->providers[i] == NULL) {
            wsnap_free(w);
            return NULL;
        }
    }
    if (wsnap_upstreams(w, base, err) != 0) {
        wsnap_free(w);
        return NULL;
    }
    return w;
}

void
gw_wsnap_ref(struct gw_wsnap *w)
{
    w->refs++;
}

void
gw_wsnap_unref(struct gw_wsnap *w)
{
    if (w != NULL && --w->refs == 0)
        wsnap_free(w);
}

struct auth_provider *
gw_wsnap_provider(const struct gw_wsnap *w, const struct cfg_provider *p)
{
    return w->providers[p - w->snap->cfg->providers];
}

struct gw_up_route *
gw_wsnap_up(const struct gw_wsnap *w, const struct cfg_route *r)
{
    return w->up[r - w->snap->cfg->routes];
}
