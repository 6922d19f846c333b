/* main: command line, signals and workers; the only file that prints errors and exits. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "config/config.h"
#include "gateway/bus.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "auth/auth.h"
#include "gateway/snapshot.h"
#include "gateway/throttle.h"
#include "gateway/tls.h"
#include "gateway/worker.h"

/* How long SIGTERM waits for WebSocket close handshakes before exiting. */
#define GW_DRAIN_TIMEOUT_MS 10000
#define GW_MAX_WORKERS 256
/* Clients the auth throttle tracks at once (about 48 bytes each). */
#define GW_THROTTLE_ENTRIES 16384

struct gw_main {
    const char *config_path; /* NULL: the built-in default */
    struct event_base *base;
    struct gw_shared shared;
    struct gw_snapshot *snap;
    struct gw_worker *workers;
    unsigned nworkers;
    SSL_CTX **tls; /* one per listener, or NULL */
    size_t nlisteners;
    unsigned generation;
    bool draining;
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: wsgate [-c FILE] [-t] [-h] [--version]\n"
            "  -c, --config FILE  run with this YAML configuration\n"
            "                     (default: listen on 127.0.0.1:8080, serve /echo)\n"
            "  -t, --test         check the configuration and exit: 0 and OK, or 1 and\n"
            "                     every error as FILE:LINE:COLUMN: key.path: message\n"
            "  -h, --help         show this help\n"
            "      --version      print the version\n"
            "signals: SIGHUP reloads the configuration; SIGTERM and SIGINT drain\n"
            "(close 1001 to WebSocket clients) and exit; a second one exits at once.\n");
}

static void
print_errors(const struct cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
}

static struct cfg *
load_config(const char *path, struct cfg_errors *errs)
{
    if (path == NULL)
        return cfg_load_default();
    struct cfg *cfg = NULL;
    if (cfg_load_file(path, &cfg, errs) != 0)
        return NULL;
    /* Key files are read, and what only creating the providers can tell (a
     * plugin that does not load) is a configuration error too, for -t,
     * start and reload. */
    if (auth_config_prepare(cfg, errs) != 0 || auth_providers_verify(cfg, errs) != 0) {
        cfg_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Builds a TLS context per TLS listener (NULL for plain ones). */
static SSL_CTX **
make_tls(const struct cfg *cfg, struct gw_err *err)
{
    SSL_CTX **tls = calloc(cfg->nlisteners, sizeof(*tls));
    if (tls == NULL) {
        gw_err_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].tls == NULL)
            continue;
        if ((tls[i] = gw_tls_server_ctx(cfg->listeners[i].tls, err)) == NULL) {
            for (size_t j = 0; j < i; j++)
                SSL_CTX_free(tls[j]);
            free(tls);
            /* Where the configuration named the files, like a load error. */
            struct gw_err why = *err;
            const struct cfg_mark *m = &cfg->listeners[i].tls->mark;
            gw_err_set(err, "%s:%d:%d: listeners[%zu].tls: %s", cfg->file, m->line,
                       m->column, i, why.msg);
            return NULL;
        }
    }
    return tls;
}

static void
free_tls(SSL_CTX **tls, size_t n)
{
    for (size_t i = 0; tls != NULL && i < n; i++)
        SSL_CTX_free(tls[i]);
    free(tls);
}

static unsigned
worker_count(const struct cfg *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > GW_MAX_WORKERS ? GW_MAX_WORKERS : (unsigned)n;
}

/* Opens every listener once per worker (SO_REUSEPORT spreads connections over
 * the workers' sockets) and starts the workers. */
static int
start_workers(struct gw_main *m, struct gw_err *err)
{
    const struct cfg *cfg = m->snap->cfg;
    size_t nl = cfg->nlisteners;
    struct gw_worker_listen *socks = calloc(nl * m->nworkers, sizeof(*socks));
    m->workers = calloc(m->nworkers, sizeof(*m->workers));
    if (socks == NULL || m->workers == NULL) {
        free(socks);
        return gw_err_set(err, "out of memory");
    }
    for (size_t l = 0; l < nl; l++) {
        uint16_t port = cfg->listeners[l].port;
        for (unsigned w = 0; w < m->nworkers; w++) {
            struct gw_worker_listen *s = &socks[w * nl + l];
            s->tls = m->tls[l];
            s->fd = gw_listen_open(&cfg->listeners[l], port, err);
            if (s->fd < 0) {
                for (size_t k = 0; k < nl * m->nworkers; k++)
                    if (socks[k].fd > 0)
                        close(socks[k].fd);
                free(socks);
                return -1;
            }
            port = gw_listen_port(s->fd); /* port 0: the others share the first's */
        }
        const char *h = cfg->listeners[l].host;
        GW_LOG_INFO("listening", "address=%s%s%s:%u tls=%s workers=%u",
                    strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", port,
                    m->tls[l] ? "yes" : "no", m->nworkers);
    }
    int rc = 0;
    for (unsigned w = 0; w < m->nworkers && rc == 0; w++) {
        rc = gw_worker_init(&m->workers[w], w, &socks[w * nl], nl, m->snap, &m->shared,
                            err);
        for (unsigned k = w + 1; rc != 0 && k < m->nworkers; k++)
            for (size_t l = 0; l < nl; l++)
                close(socks[k * nl + l].fd);
    }
    free(socks);
    for (unsigned w = 0; w < m->nworkers && rc == 0; w++)
        rc = gw_worker_start(&m->workers[w], err);
    /* Workers already running must end before anyone joins them. */
    for (unsigned w = 0; rc != 0 && w < m->nworkers; w++)
        if (m->workers[w].started)
            gw_worker_post_drain(&m->workers[w], 0);
    return rc;
}

static void
reload(struct gw_main *m)
{
    struct cfg_errors errs = {0};
    struct cfg *cfg = load_config(m->config_path, &errs);
    if (cfg == NULL) {
        for (size_t i = 0; i < errs.count; i++) {
            char q[1024];
            GW_LOG_ERROR("reload_failed", "error=\"%s\"",
                         gw_log_quote(q, sizeof(q), errs.msgs[i], strlen(errs.msgs[i])));
        }
        cfg_errors_free(&errs);
        GW_LOG_WARN("reload", "result=rejected keeping=%u", m->generation);
        return;
    }
    if (cfg->nlisteners != m->nlisteners || worker_count(cfg) != m->nworkers)
        GW_LOG_WARN("reload", "note=\"listeners and workers change only on restart\"");
    /* The snapshot first (it loads handler plugins and checks their
     * options): a rejected reload changes nothing, not even logging. */
    struct gw_err err;
    struct gw_snapshot *snap = gw_snapshot_new(cfg, m->generation + 1, &err);
    if (snap == NULL) {
        char q[1024];
        GW_LOG_ERROR("reload_failed", "error=\"%s\"",
                     gw_log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        GW_LOG_WARN("reload", "result=rejected keeping=%u", m->generation);
        return;
    }
    m->generation++;
    gw_log_configure(cfg->log.level, cfg->log.format);
    for (unsigned w = 0; w < m->nworkers; w++)
        gw_worker_post_reload(&m->workers[w], snap);
    gw_snapshot_unref(m->snap);
    m->snap = snap;
    GW_LOG_INFO("reload", "result=ok generation=%u", m->generation);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct gw_main *m = arg;
    if (sig == SIGHUP) {
        reload(m);
        return;
    }
    GW_LOG_INFO("drain", "signal=%d timeout_ms=%d", (int)sig, GW_DRAIN_TIMEOUT_MS);
    m->draining = true;
    for (unsigned w = 0; w < m->nworkers; w++)
        gw_worker_post_drain(&m->workers[w], GW_DRAIN_TIMEOUT_MS);
    /* The workers finish on their own; main only waits for them. */
    event_base_loopbreak(m->base);
}

static int
check_only(struct cfg *cfg, const char *path)
{
    struct gw_err err;
    SSL_CTX **tls = make_tls(cfg, &err);
    if (tls == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        cfg_free(cfg);
        return 1;
    }
    free_tls(tls, cfg->nlisteners);
    size_t nl = cfg->nlisteners, nr = cfg->nroutes;
    /* Loads plugins and lets them check their options, as a start would. */
    struct gw_snapshot *snap = gw_snapshot_new(cfg, 0, &err);
    if (snap == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gw_snapshot_unref(snap);
    printf("%s: configuration OK (%zu listeners, %zu routes)\n",
           path ? path : "<default>", nl, nr);
    return 0;
}

static int
run(struct gw_main *m, struct cfg *cfg)
{
    struct gw_err err = {0};
    int rc = 1;
    m->nlisteners = cfg->nlisteners;
    m->nworkers = worker_count(cfg);
    if ((m->tls = make_tls(cfg, &err)) == NULL) {
        cfg_free(cfg);
        goto out;
    }
    if ((m->snap = gw_snapshot_new(cfg, ++m->generation, &err)) == NULL)
        goto out;
    /* Always there: a reload may turn auth.throttle on. */
    uint64_t seed = 0;
    RAND_bytes((unsigned char *)&seed, sizeof(seed));
    m->shared.nworkers = m->nworkers;
    if ((m->shared.throttle = gw_throttle_new(GW_THROTTLE_ENTRIES, seed)) == NULL ||
        (m->shared.bus = gw_bus_new(m->nworkers)) == NULL) {
        gw_err_set(&err, "out of memory");
        goto out;
    }
    m->base = event_base_new();
    int sigs[] = {SIGHUP, SIGTERM, SIGINT};
    struct event *sev[3] = {0};
    for (size_t i = 0; i < 3 && m->base != NULL; i++)
        if ((sev[i] = evsignal_new(m->base, sigs[i], signal_cb, m)) == NULL ||
            event_add(sev[i], NULL) != 0)
            goto out_events;
    if (m->base == NULL || start_workers(m, &err) != 0)
        goto out_events;
    event_base_dispatch(m->base);
    /* A second SIGTERM or SIGINT while draining now ends the process at once. */
    for (size_t i = 1; i < 3; i++) {
        event_free(sev[i]);
        sev[i] = NULL;
    }
    rc = 0;
out_events:
    for (unsigned w = 0; m->workers != NULL && w < m->nworkers; w++)
        gw_worker_join_free(&m->workers[w]);
    for (size_t i = 0; i < 3; i++)
        if (sev[i] != NULL)
            event_free(sev[i]);
out:
    if (rc != 0 && err.msg[0] != '\0')
        fprintf(stderr, "wsgate: %s\n", err.msg);
    free(m->workers);
    gw_throttle_free(m->shared.throttle);
    gw_bus_free(m->shared.bus);
    gw_snapshot_unref(m->snap);
    free_tls(m->tls, m->nlisteners);
    if (m->base != NULL)
        event_base_free(m->base);
    if (rc == 0)
        GW_LOG_INFO("exit", "status=0");
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool test = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("wsgate %s\n", WSGATE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wsgate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    struct cfg_errors errs = {0};
    struct cfg *cfg = load_config(path, &errs);
    if (cfg == NULL) {
        print_errors(&errs);
        cfg_errors_free(&errs);
        return 1;
    }
    if (test)
        return check_only(cfg, path);
    gw_log_configure(cfg->log.level, cfg->log.format);
    signal(SIGPIPE, SIG_IGN);
    /* No evthread_use_pthreads(): each event_base is looped and touched by
     * one thread only (gateway/wake.h), so libevent's locks would only
     * cost (a lock pair per event, per evbuffer call). */
    struct gw_main m = {.config_path = path};
    return run(&m, cfg);
}
