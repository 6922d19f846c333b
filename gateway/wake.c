/* wake: an eventfd doorbell on an event loop. */
#include "gateway/wake.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct gw_wake {
    int fd;
    struct event *ev;
    void (*cb)(void *);
    void *arg;
};

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_wake *w = arg;
    uint64_t n;
    /* Resets the counter; the rings before this read are all answered by
     * the call below, those after it ring again. */
    if (read(fd, &n, sizeof(n)) < 0)
        return; /* EAGAIN: another read took them */
    w->cb(w->arg);
}

struct gw_wake *
gw_wake_new(struct event_base *base, void (*cb)(void *), void *arg)
{
    struct gw_wake *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cb = cb;
    w->arg = arg;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0 ||
        (w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, wake_cb, w)) == NULL ||
        event_add(w->ev, NULL) != 0) {
        gw_wake_free(w);
        return NULL;
    }
    return w;
}

void
gw_wake_ring(struct gw_wake *w)
{
    uint64_t one = 1;
    /* Fails only when the counter is at its maximum: then it rang already. */
    ssize_t rc = write(w->fd, &one, sizeof(one));
    (void)rc;
}

void
gw_wake_free(struct gw_wake *w)
{
    if (w == NULL)
        return;
    if (w->ev != NULL)
        event_free(w->ev);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}
