/* no_symbol: a test plugin that forgot to export wsgate_handler. */
#include "gateway/handler.h"

const struct gw_handler not_the_handler = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "no_symbol",
};
