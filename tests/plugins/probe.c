/* probe: a test handler plugin that reports what the handler API shows it.
 *
 * on_open sends one text message of "key=value" lines: path, query, host,
 * route, peer, subject, the x-probe header, worker and nworkers, then
 * nidentity and one "identity.NAME=VALUE" line per identity header.
 * Messages: "close CODE REASON" closes with that code; "count" answers with
 * the number of messages this connection sent before; "open" with the
 * connections open on this worker; "subject" with gw_ws_subject; anything
 * else is echoed. on_close appends "CODE REASON" lines to the file named by
 * option close_log. Option life_log names a file that create and destroy
 * append a line to: "create seq=S worker=W nworkers=N route=R" and "destroy
 * seq=S worker=W nworkers=N route=R thread=same|other", S numbering the
 * instances of the process. Option fail makes create fail with its value
 * (for wsgate -t). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handler.h"

struct probe {
    char *close_log;
    char *life_log;
    const char *route; /* env's: valid until destroy */
    unsigned long seq;
    pthread_t creator;
    unsigned worker, nworkers;
    unsigned long open;
};

/* Instances created so far, on every thread. */
static atomic_ulong probe_seq;

/* Appends one line to the life log: how a test sees create and destroy. */
static void
probe_life(const struct probe *p, const char *event, const char *extra)
{
    if (p->life_log == NULL)
        return;
    FILE *f = fopen(p->life_log, "a");
    if (f == NULL)
        return;
    fprintf(f, "%s seq=%lu worker=%u nworkers=%u route=%s%s\n", event, p->seq, p->worker,
            p->nworkers, p->route, extra);
    fclose(f);
}

struct probe_conn {
    unsigned long messages;
};

static int
probe_create(const struct gw_handler_env *env, void **instance, char *err, size_t errlen)
{
    const char *fail = gw_handler_option(env, "fail");
    const char *log = gw_handler_option(env, "close_log");
    const char *life = gw_handler_option(env, "life_log");
    if (fail != NULL) {
        snprintf(err, errlen, "%s", fail);
        return -1;
    }
    struct probe *p = calloc(1, sizeof(*p));
    if (p == NULL || (log != NULL && (p->close_log = strdup(log)) == NULL) ||
        (life != NULL && (p->life_log = strdup(life)) == NULL)) {
        if (p != NULL)
            free(p->close_log);
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->route = env->route;
    p->seq = atomic_fetch_add(&probe_seq, 1) + 1;
    p->creator = pthread_self();
    p->worker = env->worker;
    p->nworkers = env->nworkers;
    probe_life(p, "create", "");
    *instance = p;
    return 0;
}

static void
probe_destroy(void *instance)
{
    struct probe *p = instance;
    probe_life(p, "destroy",
               pthread_equal(p->creator, pthread_self()) ? " thread=same"
                                                         : " thread=other");
    free(p->close_log);
    free(p->life_log);
    free(p);
}

/* Appends the identity lines to buf[0..size) after its first n bytes;
 * returns the new length (size - 1 at most: what does not fit is cut). */
static size_t
probe_identity(char *buf, size_t size, size_t n, const struct gw_request *req)
{
    for (size_t i = 0; i <= req->nidentity && n < size - 1; i++) {
        int k = i == 0 ? snprintf(buf + n, size - n, "\nnidentity=%zu", req->nidentity)
                       : snprintf(buf + n, size - n, "\nidentity.%s=%s",
                                  req->identity[i - 1].name, req->identity[i - 1].value);
        if (k < 0)
            return n;
        n = (size_t)k < size - n ? n + (size_t)k : size - 1;
    }
    return n;
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
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    len = probe_identity(buf, sizeof(buf), len, req);
    gw_ws_send(ws, WS_OP_TEXT, buf, len);
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
    else if (len == 7 && memcmp(data, "subject", 7) == 0)
        n = snprintf(buf, sizeof(buf), "%.200s",
                     gw_ws_subject(ws) ? gw_ws_subject(ws) : "(none)");
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
