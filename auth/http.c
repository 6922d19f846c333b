/* http: forward authentication — asks an HTTP service, as nginx auth_request does. */
#include <arpa/inet.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/auth_internal.h"

/* Bounds on what the auth service may answer. */
#define HTTP_AUTH_MAX_HEADERS_SIZE 16384
#define HTTP_AUTH_MAX_BODY_SIZE 65536
#define HTTP_AUTH_MAX_VALUE 1024
/* Flights in progress are found by their cache key. */
#define HTTP_AUTH_FLIGHT_BUCKETS 256

/* One cached decision, keyed by a SHA-256 of what the service was shown
 * (never the credential itself). */
struct http_cache_entry {
    uint8_t key[32];
    bool used;
    int32_t next;        /* bucket chain, or -1 */
    uint64_t expires_ms; /* monotonic */
    enum auth_verdict verdict;
    char *subject;
    char *www_authenticate;
    struct auth_header *headers; /* names point into the configuration */
    size_t nheaders;
};

/* Decisions in insertion order: the oldest is replaced when full. */
struct http_cache {
    struct http_cache_entry *entries;
    size_t size, next_slot;
    int32_t *buckets; /* nbuckets heads, -1 when empty */
    size_t nbuckets;
};

struct http_conn {
    struct evhttp_connection *evcon;
    unsigned inflight;
};

struct http_auth {
    const struct cfg_provider *cfg;
    const struct cfg_http_auth *hc;
    struct event_base *base;
    struct evdns_base *dns; /* only for a host name */
    SSL_CTX *tls;           /* https:// only */
    struct http_conn *conns;
    size_t nconns;
    struct http_cache cache;
    struct http_flight *flights[HTTP_AUTH_FLIGHT_BUCKETS];
    char host_header[300];
};

/* One request to the service and the checks waiting for its answer: with
 * the cache on, checks for the same key while one is in flight join it
 * instead of asking again (a reconnect storm with one credential is one
 * request). */
struct http_flight {
    struct http_auth *h;
    struct http_flight *next; /* in h->flights, while keyed */
    struct http_conn *conn;   /* the connection it went on, while in flight */
    struct evhttp_request *req;
    struct auth_check *waiters; /* in arrival order */
    struct evkeyvalq headers;   /* what each attempt sends */
    uint8_t key[32];
    bool keyed;     /* listed in h->flights */
    bool retried;   /* the one retry was used */
    bool finishing; /* answering its waiters */
};

/* One gateway check: a waiter on a flight, with its own deadline. */
struct auth_check {
    struct http_flight *f;
    struct auth_check *next;
    struct event *timer;
    auth_done_fn done;
    void *arg;
};

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the decision cache ---- */

static void
entry_clear(struct http_cache_entry *e)
{
    free(e->subject);
    free(e->www_authenticate);
    for (size_t i = 0; i < e->nheaders; i++)
        free((char *)e->headers[i].value);
    free(e->headers);
    e->subject = e->www_authenticate = NULL;
    e->headers = NULL;
    e->nheaders = 0;
    e->used = false;
}

static size_t
bucket_of(const struct http_cache *c, const uint8_t key[32])
{
    uint64_t v;
    memcpy(&v, key, sizeof(v));
    return (size_t)(v % c->nbuckets);
}

static struct http_cache_entry *
cache_find(struct http_cache *c, const uint8_t key[32], uint64_t now)
{
    if (c->size == 0)
        return NULL;
    for (int32_t i = c->buckets[bucket_of(c, key)]; i >= 0; i = c->entries[i].next)
        if (CRYPTO_memcmp(c->entries[i].key, key, 32) == 0)
            return c->entries[i].expires_ms > now ? &c->entries[i] : NULL;
    return NULL;
}

static void
cache_unlink(struct http_cache *c, int32_t idx)
{
    int32_t *p = &c->buckets[bucket_of(c, c->entries[idx].key)];
    while (*p >= 0 && *p != idx)
        p = &c->entries[*p].next;
    if (*p == idx)
        *p = c->entries[idx].next;
}

/* Stores a copy of res under key; out of memory just leaves it uncached. */
static void
cache_put(struct http_auth *h, const uint8_t key[32], const struct auth_result *res)
{
    struct http_cache *c = &h->cache;
    if (c->size == 0)
        return;
    struct http_cache_entry *old = cache_find(c, key, 0);
    int32_t idx = old != NULL ? (int32_t)(old - c->entries) : (int32_t)c->next_slot;
    if (old == NULL)
        c->next_slot = (c->next_slot + 1) % c->size;
    struct http_cache_entry *e = &c->entries[idx];
    if (e->used) {
        cache_unlink(c, idx);
        entry_clear(e);
    }
    e->verdict = res->verdict;
    e->subject = res->subject != NULL ? strdup(res->subject) : NULL;
    e->www_authenticate =
        res->www_authenticate != NULL ? strdup(res->www_authenticate) : NULL;
    e->headers = res->nheaders > 0 ? calloc(res->nheaders, sizeof(*e->headers)) : NULL;
    bool ok = (res->subject == NULL || e->subject != NULL) &&
              (res->www_authenticate == NULL || e->www_authenticate != NULL) &&
              (res->nheaders == 0 || e->headers != NULL);
    for (size_t i = 0; ok && i < res->nheaders; i++) {
        e->headers[i].name = res->headers[i].name; /* from the configuration */
        ok = (e->headers[i].value = strdup(res->headers[i].value)) != NULL;
        e->nheaders = i + 1;
    }
    if (!ok) {
        entry_clear(e);
        return;
    }
    memcpy(e->key, key, 32);
    e->used = true;
    e->expires_ms = mono_ms() + h->hc->cache_ttl_ms;
    size_t b = bucket_of(c, key);
    e->next = c->buckets[b];
    c->buckets[b] = idx;
}

static int
cache_init(struct http_cache *c, size_t size)
{
    c->size = size;
    c->nbuckets = size * 2;
    c->entries = calloc(size, sizeof(*c->entries));
    c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
    if (c->entries == NULL || c->buckets == NULL)
        return -1;
    for (size_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = -1;
    return 0;
}

static void
cache_free(struct http_cache *c)
{
    for (size_t i = 0; c->entries != NULL && i < c->size; i++)
        entry_clear(&c->entries[i]);
    free(c->entries);
    free(c->buckets);
}

/* ---- the provider ---- */

static void
http_destroy(void *state)
{
    struct http_auth *h = state;
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nconns; i++)
        if (h->conns[i].evcon != NULL)
            evhttp_connection_free(h->conns[i].evcon);
    free(h->conns);
    if (h->dns != NULL)
        evdns_base_free(h->dns, 1);
    SSL_CTX_free(h->tls);
    cache_free(&h->cache);
    free(h);
}

static bool
is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The client context for https://: TLS 1.2 or later, the peer verified
 * against ca_file or the system's CAs. */
static SSL_CTX *
tls_context(const struct cfg_http_auth *hc, const char *name, struct gw_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        gw_err_set(err, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (hc->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, hc->ca_file, NULL) != 1
                            : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        unsigned long e = ERR_get_error();
        char why[256] = "unknown error";
        if (e != 0)
            ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        gw_err_set(err, "auth.providers.%s%s: cannot load the CAs%s%s: %s", name,
                   hc->ca_file ? ".ca_file" : "", hc->ca_file ? " from " : "",
                   hc->ca_file ? hc->ca_file : "", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* One keep-alive connection to the service; over TLS, its SSL checks the
 * URL's host (name or IP address) and sends it as SNI. libevent resets
 * (SSL_clear) and reuses the SSL when it reconnects. */
static struct evhttp_connection *
new_connection(struct http_auth *h)
{
    const struct cfg_http_auth *hc = h->hc;
    if (h->tls == NULL)
        return evhttp_connection_base_new(h->base, h->dns, hc->host, hc->port);
    SSL *ssl = SSL_new(h->tls);
    if (ssl == NULL)
        return NULL;
    bool ip = is_ip_literal(hc->host);
    if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hc->host)
            : SSL_set1_host(ssl, hc->host)) != 1 ||
        (!ip && SSL_set_tlsext_host_name(ssl, hc->host) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    /* Frees ssl on failure; with CLOSE_ON_FREE, the bufferevent owns it. */
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL)
        return NULL;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *evcon =
        evhttp_connection_base_bufferevent_new(h->base, h->dns, bev, hc->host, hc->port);
    if (evcon == NULL)
        bufferevent_free(bev);
    return evcon;
}

static int
http_create(const struct cfg_provider *cfg, struct event_base *base, void **state,
            struct gw_err *err)
{
    const char *name = cfg->name != NULL ? cfg->name : "http";
    const struct cfg_http_auth *hc = cfg->http;
    if (hc == NULL || hc->host == NULL)
        return gw_err_set(err, "auth.providers.%s: an http provider needs a url", name);
    struct http_auth *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return gw_err_set(err, "out of memory");
    h->cfg = cfg;
    h->hc = hc;
    h->base = base;
    bool v6 = strchr(hc->host, ':') != NULL;
    snprintf(h->host_header, sizeof(h->host_header), "%s%s%s:%u", v6 ? "[" : "", hc->host,
             v6 ? "]" : "", hc->port);
    /* evhttp resolves a host name with a blocking call unless given evdns. */
    if (!is_ip_literal(hc->host) &&
        (h->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (h->dns = evdns_base_new(base, 0)) == NULL) {
        http_destroy(h);
        return gw_err_set(err, "auth.providers.%s: cannot create a DNS resolver", name);
    }
    h->nconns = (size_t)hc->connections;
    if ((h->conns = calloc(h->nconns, sizeof(*h->conns))) == NULL ||
        (hc->cache_ttl_ms > 0 && cache_init(&h->cache, (size_t)hc->cache_size) != 0)) {
        http_destroy(h);
        return gw_err_set(err, "out of memory");
    }
    if (hc->tls && (h->tls = tls_context(hc, name, err)) == NULL) {
        http_destroy(h);
        return -1;
    }
    struct timeval tv = {(time_t)(hc->timeout_ms / 1000),
                         (suseconds_t)(hc->timeout_ms % 1000) * 1000};
    for (size_t i = 0; i < h->nconns; i++) {
        struct evhttp_connection *evcon = new_connection(h);
        if (evcon == NULL) {
            http_destroy(h);
            return gw_err_set(err, "auth.providers.%s: cannot create a connection", name);
        }
        h->conns[i].evcon = evcon;
        evhttp_connection_set_timeout_tv(evcon, &tv);
        evhttp_connection_set_max_headers_size(evcon, HTTP_AUTH_MAX_HEADERS_SIZE);
        evhttp_connection_set_max_body_size(evcon, HTTP_AUTH_MAX_BODY_SIZE);
    }
    *state = h;
    return 0;
}

/* The client's header `name` as a malloc'd string (which the caller
 * cleanses and frees), or NULL (also when out of memory). */
static char *
client_header(const struct auth_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct token_header *th = &req->headers[i];
        if (th->name_len == strlen(name) &&
            strncasecmp(th->name, name, th->name_len) == 0)
            return strndup(th->value, th->value_len);
    }
    return NULL;
}

static int
add_view(struct evkeyvalq *q, const char *name, const char *v, size_t len)
{
    char *s = strndup(v, len);
    int rc = s != NULL ? evhttp_add_header(q, name, s) : -1;
    free(s);
    return rc;
}

static void
free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* What the service is shown: the original request and the credential. The
 * cache key hashes method, host, path and the credential headers. */
static int
build_headers(struct http_flight *f, const struct auth_request *req, EVP_MD_CTX *md)
{
    struct evkeyvalq *q = &f->headers;
    const struct token_found *cred = req->credential;
    char *authz = NULL;
    int rc = 0;

    if (cred != NULL && cred->kind != 0) {
        if (asprintf(&authz, "Bearer %.*s", (int)cred->token_len, cred->token) < 0)
            return -1;
    } else {
        authz = client_header(req, "authorization");
    }
    char *cookie = client_header(req, "cookie");
    rc |= evhttp_add_header(q, "Host", f->h->host_header);
    rc |= add_view(q, "X-Forwarded-Method", req->method, req->method_len);
    rc |= add_view(q, "X-Forwarded-Uri", req->path, req->path_len);
    rc |= add_view(q, "X-Original-URI", req->path, req->path_len);
    rc |= add_view(q, "X-Forwarded-Host", req->host, req->host_len);
    rc |= evhttp_add_header(q, "X-Forwarded-Proto", req->tls ? "https" : "http");
    rc |= evhttp_add_header(q, "X-Forwarded-For", req->peer);
    if (authz != NULL)
        rc |= evhttp_add_header(q, "Authorization", authz);
    if (cookie != NULL)
        rc |= evhttp_add_header(q, "Cookie", cookie);
    if (md != NULL) {
        const char *parts[] = {authz != NULL ? authz : "", cookie != NULL ? cookie : ""};
        EVP_DigestUpdate(md, req->method, req->method_len);
        EVP_DigestUpdate(md, "\n", 1);
        EVP_DigestUpdate(md, req->host, req->host_len);
        EVP_DigestUpdate(md, "\n", 1);
        EVP_DigestUpdate(md, req->path, req->path_len);
        for (size_t i = 0; i < 2; i++) {
            /* A marker for absent, so "no cookie" and "empty cookie" differ. */
            EVP_DigestUpdate(
                md, i == 0 ? (authz ? "\nA" : "\na") : (cookie ? "\nC" : "\nc"), 2);
            EVP_DigestUpdate(md, parts[i], strlen(parts[i]));
        }
    }
    free_secret(authz);
    free_secret(cookie);
    return rc == 0 ? 0 : -1;
}

/* ---- flights: one request to the service, answering every check that
 * waits for the same decision ---- */

static size_t
flight_bucket(const uint8_t key[32])
{
    uint64_t v;
    memcpy(&v, key + 8, sizeof(v));
    return (size_t)(v % HTTP_AUTH_FLIGHT_BUCKETS);
}

static void
flight_free(struct http_flight *f)
{
    if (f->keyed) {
        struct http_flight **p = &f->h->flights[flight_bucket(f->key)];
        while (*p != NULL && *p != f)
            p = &(*p)->next;
        if (*p == f)
            *p = f->next;
    }
    struct evkeyval *kv;
    while ((kv = TAILQ_FIRST(&f->headers)) != NULL) {
        TAILQ_REMOVE(&f->headers, kv, next);
        OPENSSL_cleanse(kv->value, strlen(kv->value));
        free(kv->key);
        free(kv->value);
        free(kv);
    }
    free(f);
}

static void
check_free(struct auth_check *k)
{
    if (k->timer != NULL)
        event_free(k->timer);
    free(k);
}

/* Takes k off its flight's list of waiters. */
static void
waiter_remove(struct auth_check *k)
{
    struct auth_check **p = &k->f->waiters;
    while (*p != NULL && *p != k)
        p = &(*p)->next;
    if (*p == k)
        *p = k->next;
    k->next = NULL;
}

/* The request is over (answered or failed): answers every waiter (in the
 * order they came), then frees the flight. A waiter's `done` may cancel
 * other waiters of this flight (a chain that gives up): they are taken off
 * the list, so each is answered or cancelled exactly once. */
static void
flight_finish(struct http_flight *f, const struct auth_result *res, bool cacheable)
{
    if (f->conn != NULL)
        f->conn->inflight--;
    f->conn = NULL;
    f->req = NULL;
    if (cacheable && f->keyed)
        cache_put(f->h, f->key, res);
    /* Unlisted first: a done() that starts a check for the same key gets
     * the cached answer or a flight of its own, never this one. */
    if (f->keyed) {
        struct http_flight **p = &f->h->flights[flight_bucket(f->key)];
        while (*p != NULL && *p != f)
            p = &(*p)->next;
        if (*p == f)
            *p = f->next;
        f->keyed = false;
    }
    f->finishing = true;
    while (f->waiters != NULL) {
        struct auth_check *k = f->waiters;
        f->waiters = k->next;
        auth_done_fn done = k->done;
        void *arg = k->arg;
        check_free(k);
        done(arg, res);
    }
    flight_free(f);
}

/* A response header's value when it is printable and not too long. */
static const char *
printable_header(struct evkeyvalq *in, const char *name)
{
    const char *v = evhttp_find_header(in, name);
    if (v == NULL || strlen(v) > HTTP_AUTH_MAX_VALUE)
        return NULL;
    for (const char *p = v; *p != '\0'; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return NULL;
    return v;
}

static void
answer_allow(struct http_flight *f, struct evkeyvalq *in)
{
    const struct cfg_http_auth *hc = f->h->hc;
    struct auth_header copied[64];
    size_t n = 0;
    struct auth_result res = {.verdict = AUTH_ALLOW, .subject = f->h->cfg->name};

    if (hc->subject_header != NULL) {
        const char *s = evhttp_find_header(in, hc->subject_header);
        if (s != NULL &&
            ((s = printable_header(in, hc->subject_header)) == NULL || *s == '\0')) {
            struct auth_result bad = {.verdict = AUTH_UNAVAILABLE,
                                      .reason = "auth service sent an invalid subject"};
            flight_finish(f, &bad, false);
            return;
        }
        if (s != NULL)
            res.subject = s;
    }
    for (size_t i = 0; i < hc->ncopy_headers && n < 64; i++) {
        const char *v = printable_header(in, hc->copy_headers[i]);
        if (v != NULL)
            copied[n++] = (struct auth_header){hc->copy_headers[i], v};
    }
    res.headers = copied;
    res.nheaders = n;
    flight_finish(f, &res, true);
}

static int send_attempt(struct http_flight *f);

static void
response_cb(struct evhttp_request *req, void *arg)
{
    struct http_flight *f = arg;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        /* A reused keep-alive connection the service closed meanwhile
         * fails the request at once: one retry on a fresh connection. */
        if (f->conn != NULL)
            f->conn->inflight--;
        f->conn = NULL;
        f->req = NULL;
        if (!f->retried) {
            f->retried = true;
            (void)send_attempt(f);
            return;
        }
        struct auth_result res = {.verdict = AUTH_UNAVAILABLE,
                                  .reason = "auth service unreachable"};
        flight_finish(f, &res, false);
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    if (code >= 200 && code < 300) {
        answer_allow(f, in);
        return;
    }
    struct auth_result res = {.www_authenticate =
                                  printable_header(in, "WWW-Authenticate")};
    if (code == 401) {
        res.verdict = AUTH_DENY;
        res.reason = "rejected by the auth service";
    } else if (code == 403) {
        res.verdict = AUTH_FORBID;
        res.reason = "forbidden by the auth service";
    } else {
        struct auth_result bad = {.verdict = AUTH_UNAVAILABLE,
                                  .reason = "auth service failed"};
        flight_finish(f, &bad, false);
        return;
    }
    flight_finish(f, &res, true);
}

/* Sends the flight on the least busy connection. Returns 0, or -1 after
 * answering its waiters 503 (and freeing f) when it cannot. */
static int
send_attempt(struct http_flight *f)
{
    struct http_auth *h = f->h;
    struct http_conn *best = &h->conns[0];
    for (size_t i = 1; i < h->nconns; i++)
        if (h->conns[i].inflight < best->inflight)
            best = &h->conns[i];
    struct evhttp_request *req = evhttp_request_new(response_cb, f);
    if (req == NULL) {
        struct auth_result res = {.verdict = AUTH_UNAVAILABLE, .reason = "out of memory"};
        flight_finish(f, &res, false);
        return -1;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &f->headers, next)
    {
        evhttp_add_header(out, kv->key, kv->value);
    }
    /* The connection owns req from here, and frees it on failure. */
    if (evhttp_make_request(best->evcon, req, EVHTTP_REQ_GET, h->hc->target) != 0) {
        struct auth_result res = {.verdict = AUTH_UNAVAILABLE,
                                  .reason = "cannot send to the auth service"};
        flight_finish(f, &res, false);
        return -1;
    }
    best->inflight++;
    f->conn = best;
    f->req = req;
    return 0;
}

/* The last waiter left: nobody needs the answer any more. */
static void
flight_abandon(struct http_flight *f)
{
    if (f->req != NULL) {
        evhttp_cancel_request(
            f->req); /* its callback never runs; resets a busy connection */
        f->conn->inflight--;
    }
    flight_free(f);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct auth_check *k = arg;
    struct http_flight *f = k->f;
    waiter_remove(k);
    auth_done_fn done = k->done;
    void *done_arg = k->arg;
    check_free(k);
    if (f->waiters == NULL)
        flight_abandon(f);
    struct auth_result res = {.verdict = AUTH_UNAVAILABLE,
                              .reason = "auth service timed out"};
    done(done_arg, &res);
}

/* Answers a cached decision synchronously. */
static void
answer_cached(const struct http_cache_entry *e, auth_done_fn done, void *arg)
{
    struct auth_result res = {
        .verdict = e->verdict,
        .subject = e->subject,
        .www_authenticate = e->www_authenticate,
        .headers = e->headers,
        .nheaders = e->nheaders,
        .reason = e->verdict == AUTH_ALLOW  ? NULL
                  : e->verdict == AUTH_DENY ? "rejected by the auth service (cached)"
                                            : "forbidden by the auth service (cached)",
    };
    done(arg, &res);
}

static struct http_flight *
flight_find(struct http_auth *h, const uint8_t key[32])
{
    for (struct http_flight *f = h->flights[flight_bucket(key)]; f != NULL; f = f->next)
        if (memcmp(f->key, key, 32) == 0)
            return f;
    return NULL;
}

/* A new flight for req, keyed when the cache is on; NULL when out of memory. */
static struct http_flight *
flight_new(struct http_auth *h, const struct auth_request *req)
{
    struct http_flight *f = calloc(1, sizeof(*f));
    EVP_MD_CTX *md = h->cache.size > 0 ? EVP_MD_CTX_new() : NULL;
    if (f == NULL || (h->cache.size > 0 && md == NULL)) {
        free(f);
        EVP_MD_CTX_free(md);
        return NULL;
    }
    TAILQ_INIT(&f->headers);
    f->h = h;
    int rc = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ? -1 : 0;
    rc = rc == 0 ? build_headers(f, req, md) : -1;
    if (rc == 0 && md != NULL)
        rc = EVP_DigestFinal_ex(md, f->key, NULL) == 1 ? 0 : -1;
    EVP_MD_CTX_free(md);
    if (rc != 0) {
        flight_free(f);
        return NULL;
    }
    return f;
}

static int
http_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
           struct auth_check **pending)
{
    struct http_auth *h = state;
    struct http_flight *f = flight_new(h, req);
    struct auth_check *k = calloc(1, sizeof(*k));
    if (f == NULL || k == NULL ||
        (k->timer = event_new(h->base, -1, 0, timeout_cb, k)) == NULL) {
        if (f != NULL)
            flight_free(f);
        free(k);
        return -1;
    }
    k->done = done;
    k->arg = arg;
    if (h->cache.size > 0) {
        const struct http_cache_entry *e = cache_find(&h->cache, f->key, mono_ms());
        struct http_flight *same = e == NULL ? flight_find(h, f->key) : NULL;
        if (e != NULL || same != NULL)
            flight_free(f);
        if (e != NULL) {
            check_free(k);
            answer_cached(e, done, arg);
            return 0;
        }
        if (same != NULL) {
            f = same; /* a check for the same decision is in flight: wait for it */
        } else {
            size_t b = flight_bucket(f->key);
            f->keyed = true;
            f->next = h->flights[b];
            h->flights[b] = f;
        }
    }
    struct timeval tv = {(time_t)(h->hc->timeout_ms / 1000),
                         (suseconds_t)(h->hc->timeout_ms % 1000) * 1000};
    event_add(k->timer, &tv);
    k->f = f;
    /* Waiters are answered in the order they came. */
    struct auth_check **tail = &f->waiters;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = k;
    /* A new flight is sent; one that k joined is on its way already. */
    if (f->waiters == k && send_attempt(f) != 0)
        return 0; /* answered 503 synchronously */
    *pending = k;
    return 0;
}

static void
http_cancel(void *state, struct auth_check *k)
{
    struct http_flight *f = k->f;
    waiter_remove(k);
    check_free(k);
    if (f->waiters == NULL && !f->finishing)
        flight_abandon(f);
}

const struct auth_provider_ops auth_http_ops = {
    .type = "http",
    .create = http_create,
    .start = http_start,
    .cancel = http_cancel,
    .destroy = http_destroy,
};
