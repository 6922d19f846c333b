/* plugin: loads a handler from a shared object and checks its ABI version. */
#ifndef WSGATE_PLUGIN_H
#define WSGATE_PLUGIN_H

#include <stddef.h>

#include "gateway/handler.h"

/* Loads the shared object at path and returns its exported
 * WSGATE_HANDLER_SYMBOL, storing the dlopen handle (for gw_plugin_close) in
 * *dl. Returns NULL with a one-line reason in why[0..n) when the file cannot
 * be loaded, lacks the symbol, or was built for another ABI version. */
const struct gw_handler *gw_plugin_open(const char *path, void **dl, char *why, size_t n);

/* Releases a handle from gw_plugin_open; NULL is ignored. The code stays
 * mapped until exit (RTLD_NODELETE), so nothing a plugin left behind can
 * call into unmapped memory. */
void gw_plugin_close(void *dl);

#endif
