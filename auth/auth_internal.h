/* auth_internal: the provider types' ops tables, shared by auth.c and providers. */
#ifndef WSGATE_AUTH_INTERNAL_H
#define WSGATE_AUTH_INTERNAL_H

#include "auth/auth.h"

/* type "static": a fixed list of accepted tokens (auth/static.c). */
extern const struct auth_provider_ops auth_static_ops;
/* type "http": forward authentication to an HTTP service (auth/http.c). */
extern const struct auth_provider_ops auth_http_ops;
/* type "plugin": a provider loaded from a shared object (auth/plugin.c). */
extern const struct auth_provider_ops auth_plugin_ops;

#endif
