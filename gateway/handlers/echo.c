/* echo: the in-process handler that sends every message back to its sender. */
#include "gateway/handler.h"

static void
echo_on_message(void *instance, struct gw_ws *ws, enum ws_opcode opcode,
                const uint8_t *data, size_t len)
{
    /* A message dropped under slow_reader: drop is simply not echoed. */
    if (gw_ws_send(ws, opcode, data, len) == -1)
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "cannot queue echo");
}

const struct gw_handler gw_handler_echo = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "echo",
    .on_message = echo_on_message,
};
