/* shared_frame: one encoded server frame, sent by reference to many connections. */
#include "gateway/shared_frame.h"

#include <stdlib.h>
#include <string.h>

struct gw_frame *
gw_frame_new(enum ws_opcode opcode, const void *data, size_t len)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)
        return NULL;
    size_t hl = ws_frame_encode_header(hdr, true, 0, (uint8_t)opcode, NULL, len);
    if (len > SIZE_MAX - sizeof(struct gw_frame) - hl)
        return NULL;
    struct gw_frame *f = malloc(sizeof(*f) + hl + len);
    if (f == NULL)
        return NULL;
    atomic_init(&f->refs, 1);
    f->payload_len = len;
    f->len = hl + len;
    memcpy(f->bytes, hdr, hl);
    if (len > 0)
        memcpy(f->bytes + hl, data, len);
    return f;
}

void
gw_frame_ref(struct gw_frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void
gw_frame_unref(struct gw_frame *f)
{
    if (f != NULL && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

size_t
gw_frame_payload_len(const struct gw_frame *f)
{
    return f->payload_len;
}

void
gw_frame_release_cb(const void *data, size_t len, void *arg)
{
    gw_frame_unref(arg);
}
