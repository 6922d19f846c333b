/* snapshot: the immutable, refcounted configuration that connections start with. */
#include "gateway/snapshot.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handler.h"
#include "gateway/plugin.h"
#include "gateway/tunnel.h"
#include "gateway/upstream.h"
#include "gateway/ws_endpoint.h"

/* The environment of route i's create on worker wk; *kv is malloc'd (the
 * options as gw_kv) and freed by the caller. */
static int
handler_env(const struct cfg *cfg, size_t i, struct event_base *base,
            const struct gw_wsnap_worker *wk, struct gw_handler_env *env,
            struct gw_kv **kv)
{
    const struct cfg_route *r = &cfg->routes[i];
    *kv = calloc(r->noptions ? r->noptions : 1, sizeof(**kv));
    if (*kv == NULL)
        return -1;
    for (size_t k = 0; k < r->noptions; k++)
        (*kv)[k] = (struct gw_kv){r->options[k].name, r->options[k].value};
    *env = (struct gw_handler_env){
        .route = r->name,
        .options = *kv,
        .noptions = r->noptions,
        .base = base,
        .worker = wk->id,
        .nworkers = wk->nworkers,
        .cfg = r,
        .bus = wk->bus,
    };
    return 0;
}

/* Creates route i's instance; on failure err says why, at the route's
 * options (or its plugin when it has none). */
static int
handler_create(const struct cfg *cfg, size_t i, const struct gw_handler *h,
               struct event_base *base, const struct gw_wsnap_worker *wk, void **inst,
               struct gw_err *err)
{
    const struct cfg_route *r = &cfg->routes[i];
    struct gw_handler_env env;
    struct gw_kv *kv;
    char why[256] = "";
    *inst = NULL;
    if (h->create == NULL)
        return 0;
    if (handler_env(cfg, i, base, wk, &env, &kv) != 0)
        return gw_err_set(err, "out of memory");
    int rc = h->create(&env, inst, why, sizeof(why));
    free(kv);
    if (rc == 0)
        return 0;
    *inst = NULL;
    bool opts = r->options_mark.line > 0;
    struct cfg_mark m = opts                      ? r->options_mark
                        : r->plugin_mark.line > 0 ? r->plugin_mark
                                                  : r->mark;
    gw_err_set(err, "%s:%d:%d: routes[%zu]%s: handler %s: %s", cfg->file, m.line,
               m.column, i,
               opts        ? ".options"
               : r->plugin ? ".plugin"
                           : "",
               h->name ? h->name : "?", why[0] ? why : "create failed");
    return -1;
}

/* Resolves each handler route's handler; loads plugins and checks that
 * their create accepts the route's options. */
static int
snapshot_handlers(struct gw_snapshot *s, struct gw_err *err)
{
    const struct cfg *cfg = s->cfg;
    size_t n = cfg->nroutes ? cfg->nroutes : 1;
    s->handlers = calloc(n, sizeof(*s->handlers));
    s->plugins = calloc(n, sizeof(*s->plugins));
    if (s->handlers == NULL || s->plugins == NULL)
        return gw_err_set(err, "out of memory");
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct cfg_route *r = &cfg->routes[i];
        if (r->kind != CFG_ROUTE_HANDLER)
            continue;
        if (r->plugin == NULL) {
            if ((s->handlers[i] = gw_handler_find(r->handler)) == NULL)
                return gw_err_set(err, "routes[%zu]: unknown handler", i);
            continue;
        }
        char why[512];
        s->handlers[i] = gw_plugin_open(r->plugin, &s->plugins[i], why, sizeof(why));
        if (s->handlers[i] == NULL)
            return gw_err_set(err, "%s:%d:%d: routes[%zu].plugin: %s", cfg->file,
                              r->plugin_mark.line, r->plugin_mark.column, i, why);
        struct event_base *base = event_base_new();
        struct gw_wsnap_worker wk = {0, 1, NULL};
        void *inst;
        if (base == NULL)
            return gw_err_set(err, "out of memory");
        int rc = handler_create(cfg, i, s->handlers[i], base, &wk, &inst, err);
        if (rc == 0 && inst != NULL)
            s->handlers[i]->destroy(inst);
        event_base_free(base);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void
snapshot_free(struct gw_snapshot *s)
{
    for (size_t i = 0; s->plugins != NULL && i < s->cfg->nroutes; i++)
        gw_plugin_close(s->plugins[i]);
    free(s->plugins);
    free(s->handlers);
    router_free(s->router);
    cfg_free(s->cfg);
    free(s->ws_counters);
    free(s->tunnel_counters);
    free(s);
}

struct gw_snapshot *
gw_snapshot_new(struct cfg *cfg, unsigned generation, struct gw_err *err)
{
    struct gw_snapshot *s = calloc(1, sizeof(*s));
    struct router *r = router_new(cfg);
    struct gw_ws_counters *k = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*k));
    struct gw_tunnel_counters *tk = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*tk));
    if (s == NULL || r == NULL || k == NULL || tk == NULL) {
        free(s);
        free(k);
        free(tk);
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
    s->tunnel_counters = tk;
    if (snapshot_handlers(s, err) != 0) {
        snapshot_free(s);
        return NULL;
    }
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
    snapshot_free(s);
}

static void
wsnap_free(struct gw_wsnap *w)
{
    /* Instances first: a handler's destroy may still use what follows. */
    for (size_t i = 0; w->instances != NULL && i < w->snap->cfg->nroutes; i++)
        if (w->instances[i] != NULL)
            w->snap->handlers[i]->destroy(w->instances[i]);
    free(w->instances);
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

/* The worker's resolver: the configured nameservers (and /etc/hosts), or
 * the system's from /etc/resolv.conf; timeout and attempts as set. */
static struct evdns_base *
new_resolver(struct event_base *base, const struct cfg_resolver *r, struct gw_err *err)
{
    struct evdns_base *dns = NULL;
    if (r->nnameservers == 0) {
        dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (dns == NULL) /* no usable resolv.conf: names then fail to resolve */
            dns = evdns_base_new(base, 0);
    } else if ((dns = evdns_base_new(base, 0)) != NULL) {
        evdns_base_load_hosts(dns, NULL);
        for (size_t i = 0; i < r->nnameservers; i++) {
            if (evdns_base_nameserver_ip_add(dns, r->nameservers[i]) != 0) {
                evdns_base_free(dns, 0);
                gw_err_set(err, "resolver: cannot use nameserver %s", r->nameservers[i]);
                return NULL;
            }
        }
    }
    if (dns == NULL) {
        gw_err_set(err, "cannot create a DNS resolver");
        return NULL;
    }
    char v[32];
    if (r->timeout_ms > 0) {
        snprintf(v, sizeof(v), "%.3f", (double)r->timeout_ms / 1000.0);
        evdns_base_set_option(dns, "timeout:", v);
    }
    if (r->attempts > 0) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)r->attempts);
        evdns_base_set_option(dns, "attempts:", v);
    }
    return dns;
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
    if (any && (w->dns = new_resolver(base, &cfg->resolver, err)) == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (w->up[i] != NULL &&
            gw_up_route_start_health(w->up[i], base, w->dns, err) != 0)
            return -1;
    return 0;
}

/* One instance of each handler route's handler for this worker. */
static int
wsnap_handlers(struct gw_wsnap *w, struct event_base *base,
               const struct gw_wsnap_worker *wk, struct gw_err *err)
{
    const struct cfg *cfg = w->snap->cfg;
    if ((w->instances = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(void *))) == NULL)
        return gw_err_set(err, "out of memory");
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (w->snap->handlers[i] != NULL &&
            handler_create(cfg, i, w->snap->handlers[i], base, wk, &w->instances[i],
                           err) != 0)
            return -1;
    return 0;
}

struct gw_wsnap *
gw_wsnap_new(struct gw_snapshot *snap, struct event_base *base,
             const struct gw_wsnap_worker *wk, struct gw_err *err)
{
    static const struct gw_wsnap_worker solo = {0, 1, NULL};
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
    if (wsnap_upstreams(w, base, err) != 0 ||
        wsnap_handlers(w, base, wk != NULL ? wk : &solo, err) != 0) {
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

const struct gw_handler *
gw_wsnap_handler(const struct gw_wsnap *w, const struct cfg_route *r, void **instance)
{
    size_t i = (size_t)(r - w->snap->cfg->routes);
    *instance = w->instances[i];
    return w->snap->handlers[i];
}

struct gw_up_route *
gw_wsnap_up(const struct gw_wsnap *w, const struct cfg_route *r)
{
    return w->up[r - w->snap->cfg->routes];
}
