/* plugin: auth providers loaded from shared objects with dlopen. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_internal.h"
#include "auth/auth_plugin.h"

struct plugin_auth {
    const struct cfg_provider *cfg;
    void *dl;
    const struct wsgate_auth_plugin *api;
    void *state;
};

/* A check in flight: the plugin's answer passes through here so that only
 * the provider's identity headers reach the upstream. */
struct plugin_call {
    struct plugin_auth *p;
    auth_done_fn done;
    void *arg;
    struct auth_check *inner;
};

/* Fills err with a message positioned at mark. */
static int
fail_at(struct gw_err *err, struct cfg_mark mark, const char *name, const char *key,
        const char *msg)
{
    gw_err_set(err, "auth.providers.%s.%s: %s", name, key, msg);
    if (err != NULL) {
        err->line = mark.line;
        err->column = mark.column;
    }
    return -1;
}

static void
plugin_destroy(void *state)
{
    struct plugin_auth *p = state;
    if (p == NULL)
        return;
    if (p->state != NULL)
        p->api->destroy(p->state);
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p);
}

/* Opens the shared object and checks what it exports. */
static int
plugin_open(struct plugin_auth *p, const char *name, struct gw_err *err)
{
    const struct cfg_plugin_auth *pc = p->cfg->plugin;
    char msg[400];
    if ((p->dl = dlopen(pc->path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        const char *why = dlerror();
        snprintf(msg, sizeof(msg), "cannot load: %s",
                 why != NULL ? why : "unknown error");
        return fail_at(err, pc->path_mark, name, "path", msg);
    }
    dlerror();
    p->api = dlsym(p->dl, WSGATE_AUTH_PLUGIN_SYMBOL);
    if (p->api == NULL)
        return fail_at(err, pc->path_mark, name, "path",
                       "not a wsgate auth plugin (no symbol " WSGATE_AUTH_PLUGIN_SYMBOL
                       ")");
    if (p->api->abi != WSGATE_AUTH_PLUGIN_ABI) {
        snprintf(msg, sizeof(msg),
                 "plugin ABI version %u, this wsgate needs %u (rebuild it)", p->api->abi,
                 WSGATE_AUTH_PLUGIN_ABI);
        return fail_at(err, pc->path_mark, name, "path", msg);
    }
    if (p->api->create == NULL || p->api->start == NULL || p->api->cancel == NULL ||
        p->api->destroy == NULL)
        return fail_at(err, pc->path_mark, name, "path",
                       "the plugin leaves create, start, cancel or destroy unset");
    return 0;
}

static int
plugin_create(const struct cfg_provider *cfg, struct event_base *base, void **state,
              struct gw_err *err)
{
    const char *name = cfg->name != NULL ? cfg->name : "plugin";
    const struct cfg_plugin_auth *pc = cfg->plugin;
    if (pc == NULL || pc->path == NULL)
        return gw_err_set(err, "auth.providers.%s: a plugin provider needs a path", name);
    struct plugin_auth *p = calloc(1, sizeof(*p));
    struct wsgate_auth_option *opts = calloc(pc->noptions + 1, sizeof(*opts));
    if (p == NULL || opts == NULL) {
        free(p);
        free(opts);
        return gw_err_set(err, "out of memory");
    }
    p->cfg = cfg;
    if (plugin_open(p, name, err) != 0) {
        free(opts);
        plugin_destroy(p);
        return -1;
    }
    for (size_t i = 0; i < pc->noptions; i++)
        opts[i] = (struct wsgate_auth_option){pc->option_names[i], pc->option_values[i]};
    char msg[256] = "";
    int rc = p->api->create(opts, pc->noptions, base, &p->state, msg, sizeof(msg));
    free(opts);
    if (rc != 0) {
        msg[sizeof(msg) - 1] = '\0';
        p->state = NULL;
        struct cfg_mark at = pc->options_mark.line > 0 ? pc->options_mark : pc->path_mark;
        fail_at(err, at, name, pc->options_mark.line > 0 ? "options" : "path",
                msg[0] != '\0' ? msg : "the plugin refused its options");
        plugin_destroy(p);
        return -1;
    }
    *state = p;
    return 0;
}

static bool
identity_header(const struct cfg_provider *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nidentity_headers; i++)
        if (strcasecmp(cfg->identity_headers[i], name) == 0)
            return true;
    return false;
}

static void
call_done(void *arg, const struct auth_result *res)
{
    struct plugin_call *call = arg;
    struct auth_result out = *res;
    struct auth_header kept[64];
    size_t n = 0;
    for (size_t i = 0; res->verdict == AUTH_ALLOW && i < res->nheaders && n < 64; i++)
        if (res->headers[i].name != NULL && res->headers[i].value != NULL &&
            identity_header(call->p->cfg, res->headers[i].name))
            kept[n++] = res->headers[i];
    out.headers = n > 0 ? kept : NULL;
    out.nheaders = n;
    if (out.verdict == AUTH_ALLOW && out.subject == NULL)
        out.subject = call->p->cfg->name;
    if (out.verdict != AUTH_ALLOW && out.verdict != AUTH_DENY &&
        out.verdict != AUTH_FORBID)
        out.verdict = AUTH_UNAVAILABLE; /* anything else is not a decision */
    auth_done_fn done = call->done;
    void *done_arg = call->arg;
    free(call);
    done(done_arg, &out);
}

static int
plugin_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
             struct auth_check **pending)
{
    struct plugin_auth *p = state;
    struct plugin_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return -1;
    *call = (struct plugin_call){.p = p, .done = done, .arg = arg};
    struct auth_check *inner = NULL;
    if (p->api->start(p->state, req, call_done, call, &inner) != 0) {
        free(call);
        return -1;
    }
    /* A synchronous answer has freed call already. */
    if (inner != NULL) {
        call->inner = inner;
        *pending = (struct auth_check *)call;
    }
    return 0;
}

static void
plugin_cancel(void *state, struct auth_check *check)
{
    struct plugin_auth *p = state;
    struct plugin_call *call = (struct plugin_call *)check;
    p->api->cancel(p->state, call->inner);
    free(call);
}

const struct auth_provider_ops auth_plugin_ops = {
    .type = "plugin",
    .create = plugin_create,
    .start = plugin_start,
    .cancel = plugin_cancel,
    .destroy = plugin_destroy,
};
