/* listener: opens the listening sockets that workers share with SO_REUSEPORT. */
#ifndef WSGATE_LISTENER_H
#define WSGATE_LISTENER_H

#include <stdint.h>

#include "config/config.h"

/* Opens a non-blocking socket bound to l->host and `port` (l->port, or the
 * port the first socket of this listener got when l->port is 0) with
 * SO_REUSEADDR and SO_REUSEPORT, listening. Returns the fd, or -1 with err
 * filled ("127.0.0.1:8080: bind: Address already in use"). */
int gw_listen_open(const struct cfg_listener *l, uint16_t port, struct gw_err *err);

/* The local port a socket is bound to, or 0. */
uint16_t gw_listen_port(int fd);

#endif
