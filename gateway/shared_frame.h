/* shared_frame: one encoded server frame, sent by reference to many connections. */
#ifndef WSGATE_SHARED_FRAME_H
#define WSGATE_SHARED_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/handler.h"

/* Header and payload in one allocation, so that a connection's output
 * references it as one chain. */
struct gw_frame {
    atomic_uint refs;
    size_t payload_len;
    size_t len; /* of bytes[]: header + payload */
    uint8_t bytes[];
};

/* evbuffer_add_reference's cleanup: drops the reference the buffer held. */
void gw_frame_release_cb(const void *data, size_t len, void *arg);

#endif
