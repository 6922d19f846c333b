/* snapshot: the immutable, refcounted configuration that connections start with. */
#include "gateway/snapshot.h"

#include <stdlib.h>

struct gw_snapshot *
gw_snapshot_new(struct cfg *cfg, unsigned generation, struct gw_err *err)
{
    struct gw_snapshot *s = calloc(1, sizeof(*s));
    struct router *r = router_new(cfg);
    if (s == NULL || r == NULL) {
        free(s);
        router_free(r);
        cfg_free(cfg);
        gw_err_set(err, "out of memory building the configuration snapshot");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->router = r;
    s->generation = generation;
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
    free(s);
}

static void
wsnap_free(struct gw_wsnap *w)
{
    if (w->providers != NULL)
        for (size_t i = 0; i < w->snap->cfg->nproviders; i++)
            auth_provider_free(w->providers[i]);
    free(w->providers);
    gw_snapshot_unref(w->snap);
    free(w);
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
