/* builtin: the table of in-process handlers that routes name with `handler:`. */
#include "gateway/handler.h"

#include <string.h>

/* Every built-in handler; config's cfg_handler_known accepts the same names. */
static const struct gw_handler *const builtin_handlers[] = {
    &gw_handler_echo,
};

const struct gw_handler *
gw_handler_find(const char *name)
{
    for (size_t i = 0; i < sizeof(builtin_handlers) / sizeof(builtin_handlers[0]); i++)
        if (strcmp(builtin_handlers[i]->name, name) == 0)
            return builtin_handlers[i];
    return NULL;
}
