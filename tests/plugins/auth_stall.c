/* auth_stall: a test auth plugin whose checks never answer; reports them on stderr. */
#include <stdio.h>
#include <stdlib.h>

#include "auth/auth_plugin.h"

/* Every check stays pending until the gateway cancels it. Each start and
 * each cancel is one stderr line naming the request's path (never its
 * credential), so that a test knows a check was pending before it lets
 * the client go; destroy reports how many were left, which must be none. */
struct stall_auth {
    unsigned long pending;
};

struct auth_check {
    char path[256];
};

static void
report(const char *what, const char *path, unsigned long pending)
{
    char line[400];
    int n = snprintf(line, sizeof(line), "auth_stall %s path=%s pending=%lu\n", what,
                     path, pending);
    if (n > 0 && (size_t)n < sizeof(line))
        fwrite(line, 1, (size_t)n, stderr); /* one line, as the gateway logs */
}

static int
stall_create(const struct wsgate_auth_option *opts, size_t n, struct event_base *base,
             void **state, char *err, size_t errlen)
{
    (void)opts;
    (void)base;
    if (n > 0) {
        snprintf(err, errlen, "takes no options");
        return -1;
    }
    struct stall_auth *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *state = s;
    return 0;
}

static int
stall_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
            struct auth_check **pending)
{
    struct stall_auth *s = state;
    (void)done;
    (void)arg;
    struct auth_check *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -1;
    snprintf(k->path, sizeof(k->path), "%.*s", (int)req->path_len, req->path);
    s->pending++;
    report("pending", k->path, s->pending);
    *pending = k;
    return 0;
}

static void
stall_cancel(void *state, struct auth_check *k)
{
    struct stall_auth *s = state;
    s->pending--;
    report("cancelled", k->path, s->pending);
    free(k);
}

static void
stall_destroy(void *state)
{
    struct stall_auth *s = state;
    report("destroy", "-", s->pending);
    free(s);
}

const struct wsgate_auth_plugin wsgate_auth_plugin = {
    .abi = WSGATE_AUTH_PLUGIN_ABI,
    .name = "stall",
    .create = stall_create,
    .start = stall_start,
    .cancel = stall_cancel,
    .destroy = stall_destroy,
};
