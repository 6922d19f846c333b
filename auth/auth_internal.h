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

/* type "jwt": signed JSON Web Tokens (auth/jwt.c). */
extern const struct auth_provider_ops auth_jwt_ops;

/* Reads a jwt provider's public_key and jwks files into its cfg_jwt (no-op
 * for other types and for files already read). Returns 0, or -1 with err
 * naming the key's position (err->line/column), the path and the reason. */
int auth_jwt_read_files(struct cfg_provider *p, struct gw_err *err);

#endif
