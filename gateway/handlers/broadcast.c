/* broadcast: rooms where every message goes to every member, on every worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "config/config.h"
#include "gateway/bus.h"
#include "gateway/handler.h"
#include "gateway/log.h"

/* Room names longer than this are refused (close 1008). */
#define BCAST_MAX_ROOM_NAME 256

/* One route on one worker. */
struct bcast {
    struct gw_bus *bus;
    unsigned worker;
    char *route;
    enum cfg_room_from room_from;
    size_t prefix_len;             /* CFG_ROOM_PATH: the path_prefix's length */
    struct cfg_token_source query; /* CFG_ROOM_QUERY: the parameter */
    bool echo_to_sender;
    size_t max_members;
    size_t max_rooms;
};

/* One connection. */
struct bcast_member {
    struct gw_bus_member bm; /* first: the bus hands this back */
    struct gw_ws *ws;
    struct bcast *inst;
    bool dropped; /* closed for falling behind; its close is on the way */
};

static int
bcast_create(const struct gw_handler_env *env, void **instance, char *err, size_t errlen)
{
    const struct cfg_route *r = env->cfg;
    if (env->bus == NULL || r == NULL) {
        snprintf(err, errlen, "the broadcast bus is not running");
        return -1;
    }
    struct bcast *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->route = strdup(env->route)) == NULL ||
        (r->room_param != NULL && (b->query.name = strdup(r->room_param)) == NULL)) {
        if (b != NULL)
            free(b->route);
        free(b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->bus = env->bus;
    b->worker = env->worker;
    b->room_from = r->room_from;
    b->prefix_len = strlen(r->path);
    b->query.kind = CFG_TOKEN_QUERY;
    b->echo_to_sender = r->echo_to_sender;
    b->max_members = (size_t)r->max_room_members;
    b->max_rooms = (size_t)r->max_rooms;
    *instance = b;
    return 0;
}

static void
bcast_destroy(void *instance)
{
    struct bcast *b = instance;
    free(b->query.name);
    free(b->route);
    free(b);
}

/* The room of this request into *name and *len, or NULL with why. `found`
 * holds a decoded query parameter. */
static const char *
room_of(const struct bcast *b, const struct gw_request *req, struct token_found *found,
        const char **name, size_t *len)
{
    switch (b->room_from) {
    case CFG_ROOM_ROUTE:
        *name = "";
        *len = 0;
        return NULL;
    case CFG_ROOM_PATH:
        *name = req->path + b->prefix_len;
        *len = strlen(*name);
        return *len == 0 ? "no room in the path" : NULL;
    case CFG_ROOM_QUERY: {
        struct token_input in = {.query = req->query, .query_len = strlen(req->query)};
        enum token_status ts = token_extract(&in, &b->query, 1, found);
        if (ts == TOKEN_MALFORMED)
            return "malformed room parameter";
        if (ts != TOKEN_OK)
            return "no room parameter in the query";
        *name = found->token;
        *len = found->token_len;
        return NULL;
    }
    }
    return "no room";
}

/* A member's share of a message: by reference; one that cannot take it
 * (it stopped reading and its output reached max_send_queue) misses it or
 * is closed, as the route's slow_reader says, so that it never holds the
 * room back. */
static void
bcast_deliver(struct gw_bus_member *bm, struct gw_frame *f)
{
    struct bcast_member *m = (struct bcast_member *)bm;
    if (m->dropped)
        return;
    /* The route's slow_reader policy decides: under drop this message is
     * skipped for this member only; under close the endpoint has started a
     * 1008 close and the member is gone for the room. */
    int rc = gw_ws_send_frame(m->ws, f);
    if (rc == 0 || rc == GW_WS_SEND_DROPPED)
        return;
    m->dropped = true;
    GW_LOG_INFO("broadcast_slow", "route=%s bytes=%zu", m->inst->route,
                gw_frame_payload_len(f));
    gw_ws_close(m->ws, WS_CLOSE_POLICY, "too slow to read the room's messages");
}

static void
bcast_on_open(void *instance, struct gw_ws *ws, const struct gw_request *req)
{
    struct bcast *b = instance;
    struct token_found found;
    const char *name = NULL;
    size_t len = 0;
    const char *why = room_of(b, req, &found, &name, &len);
    if (why == NULL && len > BCAST_MAX_ROOM_NAME)
        why = "room name too long";
    if (why != NULL) {
        gw_ws_close(ws, WS_CLOSE_POLICY, why);
        return;
    }
    struct bcast_member *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    m->ws = ws;
    m->inst = b;
    m->bm.deliver = bcast_deliver;
    enum room_result rc = gw_bus_join(b->bus, b->worker, b->route, name, len,
                                      b->max_members, b->max_rooms, &m->bm);
    if (rc != ROOM_OK) {
        free(m);
        gw_ws_close(ws, rc == ROOM_NO_MEMORY ? WS_CLOSE_INTERNAL : WS_CLOSE_TRY_AGAIN,
                    rc == ROOM_FULL       ? "room is full"
                    : rc == ROOM_TOO_MANY ? "too many rooms"
                                          : "out of memory");
        return;
    }
    gw_ws_set_data(ws, m);
    GW_LOG_DEBUG("broadcast_join", "route=%s worker=%u room_bytes=%zu", b->route,
                 b->worker, len);
}

static void
bcast_on_message(void *instance, struct gw_ws *ws, enum ws_opcode opcode,
                 const uint8_t *data, size_t len)
{
    struct bcast *b = instance;
    struct bcast_member *m = gw_ws_get_data(ws);
    if (m == NULL)
        return; /* refused at open; its close is on the way */
    /* Encoded once, however many members and workers it goes to. */
    struct gw_frame *f = gw_frame_new(opcode, data, len);
    if (f == NULL || gw_bus_publish(b->bus, &m->bm, f, b->echo_to_sender) != 0)
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
    gw_frame_unref(f);
}

static void
bcast_on_close(void *instance, struct gw_ws *ws, uint16_t code, const uint8_t *reason,
               size_t len)
{
    struct bcast *b = instance;
    struct bcast_member *m = gw_ws_get_data(ws);
    if (m == NULL)
        return;
    gw_bus_leave(b->bus, &m->bm);
    gw_ws_set_data(ws, NULL);
    free(m);
}

const struct gw_handler gw_handler_broadcast = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "broadcast",
    .create = bcast_create,
    .destroy = bcast_destroy,
    .on_open = bcast_on_open,
    .on_message = bcast_on_message,
    .on_close = bcast_on_close,
};
