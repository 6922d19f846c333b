/* probe: a test handler plugin that reports what the handler API shows it.
 *
 * on_open sends one text message of "key=value" lines: path, query, host,
 * route, peer, subject, the x-probe header, worker and nworkers. Messages:
 * "close CODE REASON" closes with that code; "count" answers with the
 * number of messages this connection sent before; "open" with the
 * connections open on this worker; anything else is echoed. on_close
 * appends "CODE REASON" lines to the file named by option close_log. Option
 * fail makes create fail with its value (for wsgate -t). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handler.h"

struct probe {
    char *close_log;
    unsigned worker, nworkers;
    unsigned long open;
};

struct probe_conn {
    unsigned long messages;
};

static int
probe_create(const struct gw_handler_env *env, void **instance, char *err, size_t errlen)
{
    const char *fail = gw_handler_option(env, "fail");
    const char *log = gw_handler_option(env, "close_log");
    if (fail != NULL) {
        snprintf(err, errlen, "%s", fail);
        return -1;
    }
    struct probe *p = calloc(1, sizeof(*p));
    if (p == NULL || (log != NULL && (p->close_log = strdup(log)) == NULL)) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->worker = env->worker;
    p->nworkers = env->nworkers;
    *instance = p;
    return 0;
}

static void
probe_destroy(void *instance)
{
    struct probe *p = instance;
    free(p->close_log);
    free(p);
}

static void
probe_on_open(void *instance, struct gw_ws *ws, const struct gw_request *req)
{
    struct probe *p = instance;
    struct probe_conn *c = calloc(1, sizeof(*c));
    char buf[4096];
    if (c == NULL) {
        gw_ws_close(ws, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    gw_ws_set_data(ws, c);
    p->open++;
    const char *x = gw_request_header(req, "X-Probe");
    int n = snprintf(buf, sizeof(buf),
                     "path=%s\nquery=%s\nhost=%s\nroute=%s\npeer=%s\nsubject=%s\n"
                     "x-probe=%s\nheaders=%zu\nworker=%u\nnworkers=%u",
                     req->path, req->query, req->host, req->route, req->peer,
                     req->subject ? req->subject : "(none)", x ? x : "(none)",
                     req->nheaders, p->worker, p->nworkers);
    gw_ws_send(ws, WS_OP_TEXT, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
probe_on_message(void *instance, struct gw_ws *ws, enum ws_opcode opcode,
                 const uint8_t *data, size_t len)
{
    struct probe *p = instance;
    struct probe_conn *c = gw_ws_get_data(ws);
    char buf[256];
    if (len > 6 && memcmp(data, "close ", 6) == 0 && len < sizeof(buf)) {
        memcpy(buf, data, len);
        buf[len] = '\0';
        char *reason = NULL;
        unsigned long code = strtoul(buf + 6, &reason, 10);
        gw_ws_close(ws, (uint16_t)code, *reason == ' ' ? reason + 1 : "");
        return;
    }
    int n = -1;
    if (len == 5 && memcmp(data, "count", 5) == 0)
        n = snprintf(buf, sizeof(buf), "%lu", c->messages);
    else if (len == 4 && memcmp(data, "open", 4) == 0)
        n = snprintf(buf, sizeof(buf), "%lu", p->open);
    c->messages++;
    if (n >= 0)
        gw_ws_send(ws, WS_OP_TEXT, buf, (size_t)n);
    else
        gw_ws_send(ws, opcode, data, len);
}

static void
probe_on_close(void *instance, struct gw_ws *ws, uint16_t code, const uint8_t *reason,
               size_t len)
{
    struct probe *p = instance;
    free(gw_ws_get_data(ws));
    gw_ws_set_data(ws, NULL);
    p->open--;
    if (p->close_log == NULL)
        return;
    FILE *f = fopen(p->close_log, "a");
    if (f == NULL)
        return;
    fprintf(f, "%u %.*s\n", code, (int)len, (const char *)reason);
    fclose(f);
}

const struct gw_handler wsgate_handler = {
    .abi = WSGATE_HANDLER_ABI,
    .name = "probe",
    .create = probe_create,
    .destroy = probe_destroy,
    .on_open = probe_on_open,
    .on_message = probe_on_message,
    .on_close = probe_on_close,
};
