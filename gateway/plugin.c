/* plugin: loads a handler from a shared object and checks its ABI version. */
#include "gateway/plugin.h"

#include <dlfcn.h>
#include <stdio.h>

const struct gw_handler *
gw_plugin_open(const char *path, void **dl, char *why, size_t n)
{
    *dl = NULL;
    /* RTLD_NOW: a symbol the gateway does not export fails here, at load,
     * not in the middle of a connection. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(why, n, "cannot load plugin: %s", e != NULL ? e : "unknown error");
        return NULL;
    }
    dlerror();
    const struct gw_handler *t = dlsym(h, WSGATE_HANDLER_SYMBOL);
    if (t == NULL) {
        snprintf(why, n,
                 "cannot load plugin: it does not export \"%s\" (const struct "
                 "gw_handler)",
                 WSGATE_HANDLER_SYMBOL);
        dlclose(h);
        return NULL;
    }
    if (t->abi != WSGATE_HANDLER_ABI) {
        snprintf(why, n,
                 "cannot load plugin: it was built for handler ABI version %u, wsgate "
                 "needs %u",
                 t->abi, WSGATE_HANDLER_ABI);
        dlclose(h);
        return NULL;
    }
    if (t->create != NULL && t->destroy == NULL) {
        snprintf(why, n, "cannot load plugin: it has create but no destroy");
        dlclose(h);
        return NULL;
    }
    *dl = h;
    return t;
}

void
gw_plugin_close(void *dl)
{
    if (dl != NULL)
        dlclose(dl);
}
