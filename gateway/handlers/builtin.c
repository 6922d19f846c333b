/* builtin: the table of in-process handlers that routes name with `handler:`. */
#include "gateway/handler.h"

#include <string.h>
#include <strings.h>

/* Every built-in handler; config's cfg_handler_known accepts the same names
 * (and "plugin", which names none of these). */
static const struct gw_handler *const builtin_handlers[] = {
    &gw_handler_echo,
    &gw_handler_broadcast,
};

const struct gw_handler *
gw_handler_find(const char *name)
{
    for (size_t i = 0; i < sizeof(builtin_handlers) / sizeof(builtin_handlers[0]); i++)
        if (strcmp(builtin_handlers[i]->name, name) == 0)
            return builtin_handlers[i];
    return NULL;
}

const char *
gw_handler_option(const struct gw_handler_env *env, const char *name)
{
    for (size_t i = 0; i < env->noptions; i++)
        if (strcmp(env->options[i].name, name) == 0)
            return env->options[i].value;
    return NULL;
}

const char *
gw_request_header(const struct gw_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}
