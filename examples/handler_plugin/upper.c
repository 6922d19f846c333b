/* upper: an example handler plugin that answers every message in upper case.
 *
 * Build it against wsgate's gateway/handler.h as a shared object:
 *   cc -shared -fPIC -I/path/to/wsgate -o upper.so upper.c
 * and serve it on a route:
 *   - { path: /upper, handler: plugin, plugin: /path/to/upper.so,
 *       options: { prefix: "> ", max_messages: "100", greet: "true" } }
 *
 * Options (all optional): prefix, put in front of each answer; max_messages,
 * after which the connection is closed with 1000 (0: no limit); greet, when
 * "true" a first message names the authenticated subject. Each worker has
 * its own instance, so the counter below needs no lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handler.h"

struct upper {
    char *prefix;
    size_t prefix_len;
    unsigned long max_messages; /* 0: no limit */
    int greet;
    unsigned long open; /* connections open on this worker */
};

struct upper_conn {
    unsigned long messages;
};

static const char *const known[] = {"prefix", "max_messages", "greet"};

static int
upper_create(const struct gw_handler_env *env, void **instance, char *err, size_t errlen)
{
    for (size_t i = 0; i < env->noptions; i++) {
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) &&
               strcmp(known[k], env->options[i].name) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0])) {
            snprintf(err, errlen,
                     "unknown option \"%s\" (known: prefix, max_messages, greet)",
                     env->options[i].name);
            return -1;
        }
    }
    struct upper *u = calloc(1, sizeof(*u));
    const char *prefix = gw_handler_option(env, "prefix");
    const char *max = gw_handler_option(env, "max_messages");
    const char *greet = gw_handler_option(env, "greet");
    if (u == NULL || (u->prefix = strdup(prefix ? prefix : "")) == NULL) {
        free(u);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    u->prefix_len = strlen(u->prefix);
    if (max != NULL) {
        char *end;
        u->max_messages = strtoul(max, &end, 10);
        if (max[0] < '0' || max[0] > '9' || *end != '\0') {
            snprintf(err, errlen, "max_messages: expected a number, not \"%s\"", max);
            free(u->prefix);
            free(u);
            return -1;
        }
    }
    if (greet != NULL && strcmp(greet, "true") != 0 && strcmp(greet, "false") != 0) {
        snprintf(err, errlen, "greet: expected true or false, not \"%s\"", greet);
        free(u->prefix);
        free(u);
        return -1;
    }
    u->greet = greet != NULL && strcmp(greet, "true") == 0;
    *instance = u;
    return 0;
}

static void
upper_destroy(void *instance)
{
    struct upper *u = instance;
    free(u->prefix);
    free(u);
}

static void
upper_on_open(void *instance, struct gw_ws *ws, const struct gw_request *req)
{
    struct upper *u = instance;
    struct upper_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    gw_ws_set_data(ws, c);
    u->open++;
    if (u->greet) {
        char hello[256];
        int n = snprintf(hello, sizeof(hello), "hello %s on %s",
                         req->subject ? req->subject : "anonymous", req->route);
        gw_ws_send(ws, WS_OP_TEXT, hello,
                   n < (int)sizeof(hello) ? (size_t)n : sizeof(hello) - 1);
    }
}

static void
upper_on_message(void *instance, struct gw_ws *ws, enum ws_opcode opcode,
                 const uint8_t *data, size_t len)
{
    struct upper *u = instance;
    struct upper_conn *c = gw_ws_get_data(ws);
    uint8_t *out = malloc(u->prefix_len + len + 1);
    if (c == NULL || out == NULL) {
        free(out);
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    memcpy(out, u->prefix, u->prefix_len);
    /* ASCII letters only: UTF-8 text stays valid. */
    for (size_t i = 0; i < len; i++)
        out[u->prefix_len + i] =
            data[i] >= 'a' && data[i] <= 'z' ? (uint8_t)(data[i] - 'a' + 'A') : data[i];
    int rc = gw_ws_send(ws, opcode, out, u->prefix_len + len);
    free(out);
    if (rc != 0) {
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "cannot queue");
        return;
    }
    if (++c->messages == u->max_messages)
        gw_ws_close(ws, WS_CLOSE_NORMAL, "max_messages reached");
}

static void
upper_on_close(void *instance, struct gw_ws *ws, uint16_t code, const uint8_t *reason,
               size_t len)
{
    struct upper *u = instance;
    struct upper_conn *c = gw_ws_get_data(ws);
    if (c == NULL)
        return;
    u->open--;
    free(c);
}

/* The one symbol wsgate looks for. */
const struct gw_handler wsgate_handler = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "upper",
    .create = upper_create,
    .destroy = upper_destroy,
    .on_open = upper_on_open,
    .on_message = upper_on_message,
    .on_close = upper_on_close,
};
