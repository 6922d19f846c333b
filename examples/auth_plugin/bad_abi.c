/* bad_abi: a plugin built for another ABI version, for the load-error tests. */
#include "auth/auth_plugin.h"

const struct wsgate_auth_plugin wsgate_auth_plugin = {
    .abi = WSGATE_AUTH_PLUGIN_ABI + 41,
    .name = "bad-abi",
};
