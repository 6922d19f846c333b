/* auth_internal: the provider types' ops tables, shared by auth.c and providers. */
#ifndef WSGATE_AUTH_INTERNAL_H
#define WSGATE_AUTH_INTERNAL_H

#include "auth/auth.h"

/* type "static": a fixed list of accepted tokens (auth/static.c). */
extern const struct auth_provider_ops auth_static_ops;

#endif
