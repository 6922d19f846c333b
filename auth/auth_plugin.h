/* auth_plugin: the ABI of auth providers loaded from shared objects (type: plugin). */
#ifndef WSGATE_AUTH_PLUGIN_H
#define WSGATE_AUTH_PLUGIN_H

#include <stddef.h>

#include "auth/auth.h"

/* The version of struct wsgate_auth_plugin and of the auth.h types it uses
 * (auth_request, auth_result, auth_done_fn). A plugin built against another
 * version is refused when the configuration is loaded. */
#define WSGATE_AUTH_PLUGIN_ABI 1

/* The symbol a plugin exports: a `const struct wsgate_auth_plugin`. */
#define WSGATE_AUTH_PLUGIN_SYMBOL "wsgate_auth_plugin"

/* One entry of the provider's `options` mapping, after ${VAR} expansion. */
struct wsgate_auth_option {
    const char *name;
    const char *value;
};

/* What a plugin exports under WSGATE_AUTH_PLUGIN_SYMBOL. Every function is
 * called on one worker's thread: an instance is created per worker (and
 * once more, then destroyed, when the configuration is checked), so an
 * instance needs no locks. The plugin defines its own `struct auth_check`. */
struct wsgate_auth_plugin {
    unsigned abi; /* WSGATE_AUTH_PLUGIN_ABI */
    const char *name;
    /* Creates an instance for the worker's event loop `base` (timers, its
     * own connections). options are valid only during the call: copy what
     * is kept. Returns 0 with *state set, or non-zero with a message in
     * err[0..errlen) — reported as a configuration error at `options`. */
    int (*create)(const struct wsgate_auth_option *options, size_t noptions,
                  struct event_base *base, void **state, char *err, size_t errlen);
    /* As auth_provider_ops.start (auth/auth.h): 0 and `done` called exactly
     * once (synchronously with *pending NULL, or later with *pending set),
     * or -1 without calling `done`. req's views are valid until `done` runs
     * or the check is cancelled. Result headers must be named in the
     * provider's identity_headers; others are dropped. */
    int (*start)(void *state, const struct auth_request *req, auth_done_fn done,
                 void *arg, struct auth_check **pending);
    /* The client went away: `done` must never run for this check. */
    void (*cancel)(void *state, struct auth_check *check);
    /* No check is pending when this is called. */
    void (*destroy)(void *state);
};

#endif
