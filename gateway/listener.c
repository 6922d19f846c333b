/* listener: opens the listening sockets that workers share with SO_REUSEPORT. */
#include "gateway/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_LISTEN_BACKLOG 4096

static int
fail_errno(struct gw_err *err, const struct cfg_listener *l, const char *what, int fd)
{
    gw_err_set(err, "%s: %s: %s", l->address, what, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int
gw_listen_open(const struct cfg_listener *l, uint16_t port, struct gw_err *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    int rc = getaddrinfo(l->host, service, &hints, &ai);
    if (rc != 0)
        return gw_err_set(err, "%s: cannot resolve: %s", l->address, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return fail_errno(err, l, "socket", -1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        freeaddrinfo(ai);
        return fail_errno(err, l, "SO_REUSEPORT", fd);
    }
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0)
        return fail_errno(err, l, "bind", fd);
    if (listen(fd, GW_LISTEN_BACKLOG) != 0)
        return fail_errno(err, l, "listen", fd);
    return fd;
}

uint16_t
gw_listen_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}
