/* bad_abi: a test plugin built for a handler ABI version wsgate does not have. */
#include "gateway/handler.h"

const struct gw_handler wsgate_handler = {
    .abi = WSGATE_HANDLER_ABI + 1,
    .name = "bad_abi",
};
