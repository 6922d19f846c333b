/* wsbench: WebSocket load generator (echo, idle, churn) that samples a proxy's CPU and
 * RSS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Usage text, also the reference of what each mode reports. */
static const char usage[] =
    "usage: wsbench -u ws://IP:PORT/PATH [-m echo|idle|churn] [-c CONNS]\n"
    "               [-k INFLIGHT | -r RATE] [-s SIZE] [-d SECS] [-w SECS]\n"
    "               [-n STEPS] [-T] [-p PID]...\n"
    "  echo:  CONNS connections; closed loop with INFLIGHT messages each, or\n"
    "         RATE messages/s in all (open loop); reports msgs/s and latency\n"
    "  idle:  opens CONNS connections in STEPS steps, RSS after each; -T then\n"
    "         echoes one SIZE message on each and reports RSS again\n"
    "  churn: CONNS parallel loops of connect, upgrade, one echo, close;\n"
    "         with -r, RATE such cycles a second (open loop, CONNS at most)\n"
    "  -p PID (repeatable): the proxy's processes, whose CPU time over the\n"
    "         measured window and RSS are reported\n"
    "One line of key=value results goes to stdout.\n";

enum bench_mode { MODE_ECHO = 1, MODE_IDLE, MODE_CHURN };

enum conn_state {
    CS_FREE = 0,
    CS_CONNECTING, /* connect() in progress */
    CS_UPGRADING,  /* request sent, reading the 101 */
    CS_OPEN,       /* frames flow */
    CS_CLOSING,    /* our close frame sent, waiting for the peer's */
};

struct opts {
    struct sockaddr_in addr;
    char host[96], path[256];
    enum bench_mode mode;
    unsigned conns, inflight, steps;
    double rate, duration, warmup;
    size_t size;
    bool touch;
    pid_t pids[8];
    unsigned npids;
};

struct conn {
    int fd;
    enum conn_state state;
    uint8_t *out; /* bytes the socket did not take yet */
    size_t out_len, out_cap;
    char head[1024]; /* the upgrade response so far */
    size_t head_len;
    /* frame reader: header bytes, then payload, of which the first 8 bytes
     * are the sender's timestamp */
    uint8_t hdr[14];
    size_t hdr_have;
    uint64_t payload_left;
    uint8_t ts[8];
    unsigned ts_have;
    uint8_t opcode;
    unsigned outstanding; /* messages sent, echo not yet seen */
    bool writable_wait;   /* EPOLLOUT armed */
};

struct lat_samples {
    uint32_t *v;
    size_t n, cap;
};

struct bench {
    struct opts o;
    int ep;
    struct conn *conns;
    uint8_t mask[4];
    uint8_t *frame; /* one masked message, timestamp slot at payload offset 0 */
    size_t frame_len, frame_hdr;
    uint64_t t0, measure_from, measure_to;
    uint64_t sent, recv, recv_window, errors, upgrades, closes, late;
    unsigned open_now, pending_connects;
    struct lat_samples lat;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time, in nanoseconds, of every thread of the given processes so far:
 * the scheduler's own account (/proc/PID/task/TID/schedstat), not the
 * 10 ms ticks of /proc/PID/stat, which made short windows coarse. -1 if
 * unknown. */
static long long
proc_cpu_ns(const struct opts *o)
{
    long long sum = 0;
    for (unsigned i = 0; i < o->npids; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)o->pids[i]);
        DIR *d = opendir(path);
        if (d == NULL)
            return -1;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[320];
            snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)o->pids[i],
                     e->d_name);
            FILE *f = fopen(p, "r");
            unsigned long long ns = 0;
            if (f != NULL) {
                if (fscanf(f, "%llu", &ns) != 1)
                    ns = 0;
                fclose(f);
            }
            sum += (long long)ns;
        }
        closedir(d);
    }
    return sum;
}

/* Sum of VmRSS, in KiB, of the given processes; -1 if unknown. */
static long long
proc_rss_kib(const struct opts *o)
{
    long long sum = 0;
    for (unsigned i = 0; i < o->npids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)o->pids[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return -1;
        long long kib = -1;
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
                break;
        fclose(f);
        if (kib < 0)
            return -1;
        sum += kib;
    }
    return sum;
}

static void
die(const char *what)
{
    fprintf(stderr, "wsbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int
parse_url(struct opts *o, const char *url)
{
    unsigned port;
    char ip[64];
    int n = 0;
    if (sscanf(url, "ws://%63[0-9.]:%u%n", ip, &port, &n) != 2 || port == 0 ||
        port > 65535)
        return -1;
    const char *path = url + n;
    if (*path == '\0')
        path = "/";
    if (*path != '/' || strlen(path) >= sizeof(o->path))
        return -1;
    o->addr.sin_family = AF_INET;
    o->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &o->addr.sin_addr) != 1)
        return -1;
    snprintf(o->host, sizeof(o->host), "%s:%u", ip, port);
    snprintf(o->path, sizeof(o->path), "%s", path);
    return 0;
}

static int
parse_opts(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){.mode = MODE_ECHO,
                       .conns = 1,
                       .inflight = 1,
                       .steps = 1,
                       .duration = 10,
                       .warmup = 1,
                       .size = 64};
    bool have_url = false;
    int c;
    while ((c = getopt(argc, argv, "u:m:c:k:r:s:d:w:n:Tp:h")) != -1) {
        switch (c) {
        case 'u':
            if (parse_url(o, optarg) != 0)
                return -1;
            have_url = true;
            break;
        case 'm':
            o->mode = !strcmp(optarg, "echo")    ? MODE_ECHO
                      : !strcmp(optarg, "idle")  ? MODE_IDLE
                      : !strcmp(optarg, "churn") ? MODE_CHURN
                                                 : 0;
            if (o->mode == 0)
                return -1;
            break;
        case 'c':
            o->conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            o->inflight = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->rate = strtod(optarg, NULL);
            break;
        case 's':
            o->size = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            o->duration = strtod(optarg, NULL);
            break;
        case 'w':
            o->warmup = strtod(optarg, NULL);
            break;
        case 'n':
            o->steps = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'T':
            o->touch = true;
            break;
        case 'p':
            if (o->npids == sizeof(o->pids) / sizeof(o->pids[0]))
                return -1;
            o->pids[o->npids++] = (pid_t)strtol(optarg, NULL, 10);
            break;
        default:
            return -1;
        }
    }
    if (!have_url || o->conns == 0 || o->inflight == 0 || o->steps == 0 || o->size < 8 ||
        o->size > (64u << 20) || o->duration <= 0 || o->rate < 0)
        return -1;
    return 0;
}

static void
lat_push(struct lat_samples *l, uint32_t us)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL)
            die("realloc");
    }
    l->v[l->n++] = us;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t
lat_pct(const struct lat_samples *l, double p)
{
    if (l->n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->v[i];
}

/* The message every connection sends: a masked binary frame whose first
 * 8 payload bytes are overwritten (masked) with the send time. */
static void
build_frame(struct bench *b)
{
    size_t n = b->o.size, h = 2;
    uint8_t hdr[14];
    hdr[0] = 0x82;
    if (n < 126) {
        hdr[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        hdr[1] = 0x80 | 126;
        hdr[2] = (uint8_t)(n >> 8);
        hdr[3] = (uint8_t)n;
        h = 4;
    } else {
        hdr[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    for (int i = 0; i < 4; i++)
        b->mask[i] = (uint8_t)(rand() & 0xff);
    memcpy(hdr + h, b->mask, 4);
    h += 4;
    b->frame_hdr = h;
    b->frame_len = h + n;
    b->frame = malloc(b->frame_len);
    if (b->frame == NULL)
        die("malloc");
    memcpy(b->frame, hdr, h);
    for (size_t i = 0; i < n; i++)
        b->frame[h + i] = (uint8_t)('a' + i % 26) ^ b->mask[i % 4];
}

static void
conn_arm(struct bench *b, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl");
}

/* Queues bytes and writes what the socket takes now. Returns -1 when the
 * connection failed. */
static int
conn_send(struct bench *b, struct conn *c, const void *data, size_t len)
{
    if (c->out_len == 0) {
        ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w < 0)
            w = 0;
        data = (const uint8_t *)data + w;
        len -= (size_t)w;
        if (len == 0)
            return 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL)
            die("realloc");
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (!c->writable_wait) {
        c->writable_wait = true;
        conn_arm(b, c, EPOLLIN | EPOLLOUT);
    }
    return 0;
}

static int
conn_flush(struct bench *b, struct conn *c)
{
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    if (c->writable_wait) {
        c->writable_wait = false;
        conn_arm(b, c, EPOLLIN);
    }
    return 0;
}

static int
send_message(struct bench *b, struct conn *c)
{
    uint64_t t = now_ns();
    uint8_t *p = b->frame + b->frame_hdr;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(t >> (8 * i)) ^ b->mask[i % 4];
    c->outstanding++;
    b->sent++;
    return conn_send(b, c, b->frame, b->frame_len);
}

static int
send_close(struct bench *b, struct conn *c)
{
    /* Close 1000, masked with zeros (any key is a valid key). */
    static const uint8_t frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    c->state = CS_CLOSING;
    return conn_send(b, c, frame, sizeof(frame));
}

static void
conn_free(struct bench *b, struct conn *c, bool failed)
{
    if (c->state == CS_FREE)
        return;
    if (c->state == CS_CONNECTING || c->state == CS_UPGRADING)
        b->pending_connects--;
    if (c->state == CS_OPEN || c->state == CS_CLOSING)
        b->open_now--;
    if (failed)
        b->errors++;
    close(c->fd);
    free(c->out);
    *c = (struct conn){.fd = -1};
}

static int
conn_open(struct bench *b, struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *c = (struct conn){.fd = fd, .state = CS_CONNECTING};
    b->pending_connects++;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl");
    if (connect(fd, (struct sockaddr *)&b->o.addr, sizeof(b->o.addr)) != 0 &&
        errno != EINPROGRESS) {
        conn_free(b, c, true);
        return -1;
    }
    return 0;
}

static int
send_upgrade(struct bench *b, struct conn *c)
{
    char req[512];
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 b->o.path, b->o.host);
    c->state = CS_UPGRADING;
    conn_arm(b, c, EPOLLIN);
    return conn_send(b, c, req, (size_t)n);
}

static int on_open(struct bench *b, struct conn *c);
static int on_echo(struct bench *b, struct conn *c, uint64_t sent_ns);

/* Reads the upgrade response; bytes after it are frames. Returns the
 * offset of those in buf, or -1 on failure, or -2 when incomplete. */
static ssize_t
read_upgrade(struct bench *b, struct conn *c, const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (c->head_len == sizeof(c->head))
            return -1;
        c->head[c->head_len++] = (char)buf[i];
        if (c->head_len >= 4 && !memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4))
            break;
    }
    if (i == len)
        return -2;
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.1 101", 12) != 0)
        return -1;
    b->pending_connects--;
    b->open_now++;
    b->upgrades++;
    c->state = CS_OPEN;
    if (on_open(b, c) != 0)
        return -1;
    return (ssize_t)(i + 1);
}

/* Feeds server frames; calls on_echo at the end of each data message. */
static int
read_frames(struct bench *b, struct conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        if (c->payload_left == 0 && c->hdr_have < 2) {
            c->hdr[c->hdr_have++] = *p++;
            len--;
            continue;
        }
        if (c->payload_left == 0) {
            size_t need = (c->hdr[1] & 0x7f) == 126   ? 4
                          : (c->hdr[1] & 0x7f) == 127 ? 10
                                                      : 2;
            while (c->hdr_have < need && len > 0) {
                c->hdr[c->hdr_have++] = *p++;
                len--;
            }
            if (c->hdr_have < need)
                return 0;
            uint64_t pl = c->hdr[1] & 0x7f;
            if (need == 4)
                pl = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (need == 10)
                for (int i = 0; i < 8; i++)
                    pl = (i ? pl << 8 : 0) | c->hdr[2 + i];
            c->opcode = c->hdr[0] & 0x0f;
            c->hdr_have = 0;
            c->ts_have = 0;
            if (c->opcode == 0x8) {
                if (c->state != CS_CLOSING && send_close(b, c) != 0)
                    return -1;
                return 1; /* the peer's close: done with this connection */
            }
            c->payload_left = pl;
            if (pl == 0)
                continue;
        }
        size_t n = len < c->payload_left ? len : (size_t)c->payload_left;
        for (size_t i = 0; i < n && c->ts_have < 8; i++)
            c->ts[c->ts_have++] = p[i];
        p += n;
        len -= n;
        c->payload_left -= n;
        if (c->payload_left == 0 && (c->opcode == 0x1 || c->opcode == 0x2)) {
            uint64_t t = 0;
            for (int i = 0; i < 8; i++)
                t |= (uint64_t)c->ts[i] << (8 * i);
            if (on_echo(b, c, t) != 0)
                return -1;
        }
    }
    return 0;
}

static void
on_readable(struct bench *b, struct conn *c)
{
    static uint8_t buf[256 * 1024];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            bool clean = c->state == CS_CLOSING;
            if (clean)
                b->closes++;
            conn_free(b, c, !clean);
            return;
        }
        size_t off = 0;
        if (c->state == CS_UPGRADING) {
            ssize_t r = read_upgrade(b, c, buf, (size_t)n);
            if (r == -2)
                continue;
            if (r < 0) {
                conn_free(b, c, true);
                return;
            }
            off = (size_t)r;
        }
        int rc = read_frames(b, c, buf + off, (size_t)n - off);
        if (rc < 0) {
            conn_free(b, c, true);
            return;
        }
    }
}

static void
on_writable(struct bench *b, struct conn *c)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0 || send_upgrade(b, c) != 0)
            conn_free(b, c, true);
        return;
    }
    if (conn_flush(b, c) != 0)
        conn_free(b, c, true);
}

static int
on_open(struct bench *b, struct conn *c)
{
    if (b->o.mode == MODE_IDLE)
        return 0;
    if (b->o.mode == MODE_CHURN)
        return send_message(b, c);
    if (b->o.rate > 0)
        return 0; /* the pacer sends */
    for (unsigned i = 0; i < b->o.inflight; i++)
        if (send_message(b, c) != 0)
            return -1;
    return 0;
}

static int
on_echo(struct bench *b, struct conn *c, uint64_t sent_ns)
{
    uint64_t t = now_ns();
    if (c->outstanding > 0)
        c->outstanding--;
    b->recv++;
    if (sent_ns >= b->measure_from && t < b->measure_to) {
        b->recv_window++;
        uint64_t us = (t - sent_ns) / 1000;
        lat_push(&b->lat, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    }
    switch (b->o.mode) {
    case MODE_CHURN:
        return send_close(b, c);
    case MODE_ECHO:
        if (b->o.rate > 0 || t >= b->measure_to)
            return 0;
        return send_message(b, c);
    default:
        return 0;
    }
}

/* One loop turn: waits at most timeout_ms and handles what is ready. */
static void
poll_once(struct bench *b, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(b->ep, evs, 256, timeout_ms);
    if (n < 0 && errno != EINTR)
        die("epoll_wait");
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->state == CS_FREE)
            continue;
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            on_writable(b, c);
            if (c->state == CS_FREE || c->state == CS_UPGRADING)
                continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            on_readable(b, c);
    }
}

/* Opens conns [from, to), at most 256 upgrades pending at once, until each
 * is open or failed. */
static void
open_range(struct bench *b, unsigned from, unsigned to)
{
    unsigned next = from;
    uint64_t deadline = now_ns() + 60ull * 1000000000u;
    while ((next < to || b->pending_connects > 0) && now_ns() < deadline) {
        while (next < to && b->pending_connects < 256)
            conn_open(b, &b->conns[next++]);
        poll_once(b, 10);
    }
}

static void
wait_ns(struct bench *b, uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    for (uint64_t t = now_ns(); t < end; t = now_ns())
        poll_once(b, (int)((end - t) / 1000000) + 1);
}

/* Prints the result line's CPU fields for `per` units of work. */
static void
print_cpu(const struct bench *b, long long t0, long long t1, uint64_t per)
{
    if (b->o.npids == 0 || t0 < 0 || t1 < 0)
        return;
    double s = (double)(t1 - t0) / 1e9;
    printf(" cpu_s=%.2f cpu_us_per=%.2f", s, per ? s * 1e6 / (double)per : 0.0);
}

/* A connection with this many echoes missing is skipped by the pacer: the
 * proxy is not keeping up, which shows as `late`. */
#define PACER_MAX_OUTSTANDING 1000

static bool
can_send(const struct conn *c)
{
    return c->state == CS_OPEN && c->outstanding < PACER_MAX_OUTSTANDING;
}

static bool
is_free(const struct conn *c)
{
    return c->state == CS_FREE;
}

/* The pacers' round robin: the next connection from *rr on that `ok`
 * accepts, or NULL when none does. */
static struct conn *
next_conn(struct bench *b, unsigned *rr, bool (*ok)(const struct conn *))
{
    for (unsigned tries = 0; tries < b->o.conns; tries++) {
        struct conn *c = &b->conns[(*rr)++ % b->o.conns];
        if (ok(c))
            return c;
    }
    return NULL;
}

static void
run_echo(struct bench *b)
{
    open_range(b, 0, b->o.conns);
    b->t0 = now_ns();
    b->measure_from = b->t0 + (uint64_t)(b->o.warmup * 1e9);
    b->measure_to = b->measure_from + (uint64_t)(b->o.duration * 1e9);
    long long cpu0 = -1, cpu1 = -1;
    bool measuring = false;
    uint64_t paced = 0;
    unsigned rr = 0;
    for (uint64_t t = now_ns(); t < b->measure_to; t = now_ns()) {
        if (!measuring && t >= b->measure_from) {
            measuring = true;
            cpu0 = proc_cpu_ns(&b->o);
        }
        if (b->o.rate > 0) {
            uint64_t due = (uint64_t)((double)(t - b->t0) * b->o.rate / 1e9);
            for (; paced < due; paced++) {
                struct conn *c = next_conn(b, &rr, can_send);
                if (c == NULL) {
                    b->late++;
                    continue;
                }
                if (send_message(b, c) != 0)
                    conn_free(b, c, true);
            }
        }
        poll_once(b, b->o.rate > 0 ? 1 : 10);
    }
    cpu1 = proc_cpu_ns(&b->o);
    qsort(b->lat.v, b->lat.n, sizeof(*b->lat.v), cmp_u32);
    double secs = b->o.duration;
    printf("mode=echo conns=%u size=%zu open=%u msgs=%" PRIu64 " mps=%.0f p50_us=%u "
           "p99_us=%u p999_us=%u errors=%" PRIu64 " late=%" PRIu64,
           b->o.conns, b->o.size, b->open_now, b->recv_window,
           (double)b->recv_window / secs, lat_pct(&b->lat, 0.50), lat_pct(&b->lat, 0.99),
           lat_pct(&b->lat, 0.999), b->errors, b->late);
    print_cpu(b, cpu0, cpu1, b->recv_window);
}

static void
run_idle(struct bench *b)
{
    long long base = proc_rss_kib(&b->o), cpu0 = proc_cpu_ns(&b->o);
    printf("mode=idle conns=%u rss_base_kib=%lld", b->o.conns, base);
    for (unsigned s = 1; s <= b->o.steps; s++) {
        unsigned to = (unsigned)((uint64_t)b->o.conns * s / b->o.steps);
        open_range(b, (unsigned)((uint64_t)b->o.conns * (s - 1) / b->o.steps), to);
        wait_ns(b, 500000000u); /* let the proxy settle its buffers */
        printf(" step%u_open=%u step%u_rss_kib=%lld", s, b->open_now, s,
               proc_rss_kib(&b->o));
    }
    long long idle = proc_rss_kib(&b->o), cpu1 = proc_cpu_ns(&b->o);
    unsigned held = b->open_now;
    printf(" open=%u errors=%" PRIu64, held, b->errors);
    /* The settling waits are idle time: this is CPU per upgrade. */
    print_cpu(b, cpu0, cpu1, b->upgrades);
    if (held > 0 && base >= 0)
        printf(" idle_kib_per_conn=%.2f", (double)(idle - base) / held);
    if (b->o.touch) {
        b->measure_from = 0;
        b->measure_to = UINT64_MAX;
        for (unsigned i = 0; i < b->o.conns; i++)
            if (b->conns[i].state == CS_OPEN && send_message(b, &b->conns[i]) != 0)
                conn_free(b, &b->conns[i], true);
        uint64_t deadline = now_ns() + 60ull * 1000000000u;
        while (b->recv < b->sent && now_ns() < deadline && b->open_now > 0)
            poll_once(b, 10);
        wait_ns(b, 500000000u);
        long long touched = proc_rss_kib(&b->o);
        printf(" touched=%" PRIu64 " touched_kib_per_conn=%.2f", b->recv,
               held ? (double)(touched - base) / held : 0.0);
    }
}

static void
run_churn(struct bench *b)
{
    b->t0 = now_ns();
    b->measure_from = b->t0 + (uint64_t)(b->o.warmup * 1e9);
    b->measure_to = b->measure_from + (uint64_t)(b->o.duration * 1e9);
    long long cpu0 = -1;
    uint64_t closes0 = 0, paced = 0, late0 = 0;
    unsigned rr = 0;
    bool measuring = false;
    for (uint64_t t = now_ns(); t < b->measure_to; t = now_ns()) {
        if (!measuring && t >= b->measure_from) {
            measuring = true;
            cpu0 = proc_cpu_ns(&b->o);
            closes0 = b->closes;
            late0 = b->late;
        }
        if (b->o.rate > 0) {
            /* Open loop: RATE new connections a second, each in a free
             * slot; with none free the proxy is not keeping up (late). */
            uint64_t due = (uint64_t)((double)(t - b->t0) * b->o.rate / 1e9);
            for (; paced < due; paced++) {
                struct conn *c = next_conn(b, &rr, is_free);
                if (c == NULL)
                    b->late++;
                else
                    conn_open(b, c);
            }
        } else {
            for (unsigned i = 0; i < b->o.conns; i++)
                if (b->conns[i].state == CS_FREE)
                    conn_open(b, &b->conns[i]);
        }
        poll_once(b, b->o.rate > 0 ? 1 : 10);
    }
    long long cpu1 = proc_cpu_ns(&b->o);
    uint64_t done = b->closes - closes0;
    qsort(b->lat.v, b->lat.n, sizeof(*b->lat.v), cmp_u32);
    printf("mode=churn conns=%u cycles=%" PRIu64 " cps=%.0f p50_us=%u p99_us=%u "
           "errors=%" PRIu64 " late=%" PRIu64,
           b->o.conns, done, (double)done / b->o.duration, lat_pct(&b->lat, 0.50),
           lat_pct(&b->lat, 0.99), b->errors, b->late - late0);
    print_cpu(b, cpu0, cpu1, done);
}

int
main(int argc, char **argv)
{
    struct bench b = {0};
    if (parse_opts(&b.o, argc, argv) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)now_ns());
    if ((b.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    if ((b.conns = calloc(b.o.conns, sizeof(*b.conns))) == NULL)
        die("calloc");
    build_frame(&b);
    switch (b.o.mode) {
    case MODE_ECHO:
        run_echo(&b);
        break;
    case MODE_IDLE:
        run_idle(&b);
        break;
    case MODE_CHURN:
        run_churn(&b);
        break;
    }
    putchar('\n');
    fflush(stdout);
    for (unsigned i = 0; i < b.o.conns; i++)
        conn_free(&b, &b.conns[i], false);
    free(b.conns);
    free(b.frame);
    free(b.lat.v);
    close(b.ep);
    return 0;
}
