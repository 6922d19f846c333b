/* config: the gateway's configuration as loaded from YAML, and its loader. */
#ifndef WSGATE_CONFIG_H
#define WSGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/gw_err.h"

/* A position in the configuration file (1-based line and column). */
struct cfg_mark {
    int line;
    int column;
};

struct cfg_tls {
    char *certificate;    /* PEM file path */
    char *key;            /* PEM file path */
    struct cfg_mark mark; /* of the tls mapping, where load errors point */
};

struct cfg_listener {
    char *address;       /* as written: "0.0.0.0:8080", "[::1]:8080", "127.0.0.1:0" */
    char *host;          /* split out of address: "0.0.0.0", "::1" */
    uint16_t port;       /* 0 lets the kernel choose (tests) */
    struct cfg_tls *tls; /* NULL for plain HTTP */
    struct cfg_mark mark;
};

struct cfg_limits {
    uint64_t max_connections;      /* across all workers; default 50000 */
    uint64_t max_request_head;     /* bytes; default 16 KiB */
    uint64_t handshake_timeout_ms; /* default 10 s */
    uint64_t idle_timeout_ms;      /* default 10 min */
    uint64_t max_message_size;     /* bytes; default 1 MiB */
    uint64_t proxy_buffer;         /* bytes queued per direction of a proxied
                                      connection before the other side's reading
                                      pauses; default 64 KiB, 4 KiB..16 MiB */
};

enum cfg_log_level {
    CFG_LOG_DEBUG = 0,
    CFG_LOG_INFO,
    CFG_LOG_WARN,
    CFG_LOG_ERROR,
};

enum cfg_log_format {
    CFG_LOG_TEXT = 0,
    CFG_LOG_JSON,
};

struct cfg_log {
    enum cfg_log_level level;   /* default info */
    enum cfg_log_format format; /* default text */
};

enum cfg_token_kind {
    CFG_TOKEN_HEADER = 1, /* Authorization: Bearer <token> */
    CFG_TOKEN_QUERY,      /* query=NAME */
    CFG_TOKEN_COOKIE,     /* cookie=NAME */
    CFG_TOKEN_SUBPROTOCOL /* Sec-WebSocket-Protocol entry "bearer.<token>" */
};

struct cfg_token_source {
    enum cfg_token_kind kind;
    char *name; /* parameter or cookie name; NULL for header and subprotocol */
};

enum cfg_provider_type {
    CFG_PROVIDER_STATIC = 1,
    CFG_PROVIDER_JWT,
    CFG_PROVIDER_HTTP,   /* forward auth: ask an HTTP service (auth/http.c) */
    CFG_PROVIDER_PLUGIN, /* a shared object (auth/plugin.c) */
};

/* jwt: a claim copied into an upstream request header. */
struct cfg_claim_header {
    char *claim;
    char *header;
};

/* The settings of a `type: jwt` provider (auth/jwt.c). */
struct cfg_jwt {
    char **algorithms; /* allowed, by JWS name ("HS256"); checked by the schema */
    size_t nalgorithms;
    char *secret;       /* HS*: the shared secret, or NULL */
    char *public_key;   /* PEM file path, or NULL */
    char *jwks;         /* JWK Set file path, or NULL */
    uint64_t leeway_ms; /* clock skew allowed on exp/nbf/iat; default 30s */
    char *issuer;       /* required iss, or NULL */
    char **audience;    /* aud must hold one of these; none: unchecked */
    size_t naudience;
    char **required_claims;
    size_t nrequired_claims;
    char *subject_claim; /* the claim that becomes X-Auth-Subject; "sub" */
    struct cfg_claim_header *claims_to_headers;
    size_t nclaims_to_headers;
    /* The files' contents, read by auth_config_prepare (at start and on
     * each reload), so that every worker builds its keys from the same
     * bytes; NULL until then. */
    char *public_key_text;
    size_t public_key_len;
    char *jwks_text;
    size_t jwks_len;
    struct cfg_mark algorithms_mark, secret_mark, public_key_mark, jwks_mark;
};

/* type http: an external auth service asked per request, as nginx's
 * auth_request or Traefik's ForwardAuth. */
struct cfg_http_auth {
    char *url;            /* as written (after ${VAR} expansion) */
    bool tls;             /* https:// */
    char *host;           /* lower-cased, IPv6 without brackets */
    uint16_t port;        /* default 80, or 443 with https:// */
    char *ca_file;        /* https: CAs the service is verified against; NULL:
                             the system's */
    char *target;         /* path and query from the URL; "/" when absent */
    uint64_t timeout_ms;  /* `timeout`: the whole check; default 2s */
    char *subject_header; /* response header naming the subject, or NULL */
    char **copy_headers;  /* response headers passed upstream (identity) */
    size_t ncopy_headers;
    uint64_t cache_ttl_ms; /* `cache_ttl`: 0 (default) disables the cache */
    uint64_t cache_size;   /* `cache_size`: decisions kept per worker; 1024 */
    uint64_t connections;  /* `connections`: keep-alive connections per worker; 4 */
};

/* type plugin: an auth provider loaded from a shared object. */
struct cfg_plugin_auth {
    char *path;           /* the .so to dlopen */
    char **option_names;  /* `options`: a string map handed to the plugin */
    char **option_values; /* parallel to option_names */
    size_t noptions;
    struct cfg_mark path_mark, options_mark; /* where load errors point */
};

struct cfg_provider {
    char *name; /* the key under auth.providers */
    enum cfg_provider_type type;
    char **tokens; /* static: the accepted tokens, after ${VAR} expansion */
    size_t ntokens;
    /* Names of the identity headers this provider may set (besides
     * X-Auth-Subject); a client's copies are removed on every route. */
    char **identity_headers;
    size_t nidentity_headers;
    struct cfg_jwt *jwt;            /* type jwt; NULL otherwise */
    struct cfg_http_auth *http;     /* CFG_PROVIDER_HTTP, else NULL */
    struct cfg_plugin_auth *plugin; /* CFG_PROVIDER_PLUGIN, else NULL */
    struct cfg_mark mark;
};

/* auth.throttle: clients (by IP) that fail authentication `failures` times
 * within `window` get 429 for `block`, before any provider is asked. */
struct cfg_auth_throttle {
    uint64_t failures;  /* default 10 */
    uint64_t window_ms; /* default 1m */
    uint64_t block_ms;  /* default 5m */
};

/* One upstream WebSocket server, parsed from a ws:// or wss:// URL. */
struct cfg_upstream {
    char *url;     /* as written (after ${VAR} expansion) */
    bool tls;      /* wss:// */
    char *host;    /* host name or IP literal, IPv6 without brackets */
    uint16_t port; /* from the URL, else 80 (ws) or 443 (wss) */
    char *path;    /* path prefix from the URL without a trailing '/', or "" */
    struct cfg_mark mark;
};

/* The most upstreams a route may have: the balancer tracks them in a 64-bit
 * mask. */
#define CFG_MAX_UPSTREAMS 64

/* How a route picks among its upstreams. */
enum cfg_balance {
    CFG_BALANCE_ROUND_ROBIN = 0,
    CFG_BALANCE_LEAST_CONN,
    CFG_BALANCE_HASH_IP,      /* consistent hash of the client IP */
    CFG_BALANCE_HASH_SUBJECT, /* consistent hash of the authenticated subject */
};

/* TLS towards wss:// upstreams (routes[].upstream_tls). */
struct cfg_upstream_tls {
    char *ca_file;     /* PEM CA bundle; NULL: the system's CAs */
    char *certificate; /* client certificate (PEM), or NULL */
    char *key;         /* its key, required with certificate */
    char *server_name; /* SNI and the name verified; NULL: the URL's host */
    bool verify;       /* default true; false only for tests and labs */
};

/* Active health checks (routes[].health_check): a WebSocket handshake to
 * each upstream every interval; one that fails is skipped until one passes. */
struct cfg_health_check {
    uint64_t interval_ms; /* default 10s */
    uint64_t timeout_ms;  /* default 2s */
    char *path;           /* request path; default "/" */
};

/* What the endpoint does with a message that would take a handler route's
 * queue towards a client past max_send_queue (routes[].slow_reader). */
enum cfg_slow_reader {
    CFG_SLOW_READER_CLOSE = 0, /* close 1008, then TCP close at close_timeout */
    CFG_SLOW_READER_DROP,      /* drop the message, keep the connection */
};

/* Defaults of the handler-route endpoint keys. */
#define CFG_DEFLATE_THRESHOLD_DEFAULT 1024
#define CFG_PING_INTERVAL_DEFAULT_MS (30ULL * 1000)
/* One entry of routes[].options: a string passed to a handler plugin. */
struct cfg_option {
    char *name;
    char *value; /* after ${VAR} expansion */
};

/* Where a broadcast route takes a connection's room from (routes[].room_from). */
enum cfg_room_from {
    CFG_ROOM_ROUTE = 1, /* `route`: one room for the whole route */
    CFG_ROOM_PATH,      /* `path`: the path after a path_prefix */
    CFG_ROOM_QUERY,     /* `query=NAME`: a query parameter, percent-decoded */
};

enum cfg_route_kind {
    CFG_ROUTE_HANDLER = 1, /* served in-process */
    CFG_ROUTE_UPSTREAM,    /* reverse-proxied */
};

struct cfg_route {
    char *name;        /* unique; defaults to the path when not given */
    char *path;        /* exact path or prefix, always starts with '/' */
    bool prefix;       /* true when given as path_prefix */
    bool strip_prefix; /* upstream routes only */
    char *host;        /* NULL matches any Host; lower-cased, no port */
    enum cfg_route_kind kind;
    char *handler; /* CFG_ROUTE_HANDLER: a built-in handler name ("echo"), or
                      "plugin" for a handler loaded from `plugin` */
    char *plugin;  /* handler plugin: path of the shared object */
    struct cfg_mark plugin_mark; /* of the `plugin` value, for load errors */
    struct cfg_option *options;  /* `options`: handed to the handler's create */
    size_t noptions;
    struct cfg_mark options_mark;
    enum cfg_room_from room_from;   /* broadcast: default path on path_prefix
                                       routes, route otherwise */
    char *room_param;               /* CFG_ROOM_QUERY: the parameter's name */
    bool echo_to_sender;            /* broadcast: the sender gets its own
                                       messages too; default false */
    uint64_t max_room_members;      /* broadcast: per room, all workers;
                                       default 10000 */
    uint64_t max_rooms;             /* broadcast: rooms of this route at once;
                                       default 10000 */
    struct cfg_upstream *upstreams; /* CFG_ROUTE_UPSTREAM: `upstream` or `upstreams` */
    size_t nupstreams;
    enum cfg_balance balance; /* `balance`; default round_robin */
    char *upstream_host;      /* Host sent upstream; NULL keeps the client's */
    struct cfg_upstream_tls *upstream_tls; /* NULL: defaults (verify, system CAs) */
    struct cfg_health_check *health_check; /* NULL: passive health only */
    uint64_t
        connect_timeout_ms; /* `connect_timeout`: TCP (and TLS) connect; default 5s */
    uint64_t upstream_timeout_ms; /* `upstream_timeout`: the upstream's answer to the
                                     upgrade request; default 10s, then 504 */
    uint64_t backoff_ms;          /* `backoff`: an upstream that failed to connect is
                                     skipped this long; default 10s */
    uint64_t resolve_interval_ms; /* `resolve_interval`: host names are resolved again
                                     this often; default 30s */
    char *auth;                   /* provider name, or NULL for none */
    const struct cfg_provider *provider; /* resolved from auth; NULL for none */
    /* `token_from`: where this route's credential is looked for; NULL (and
     * 0) uses auth.token_from. */
    struct cfg_token_source *token_from;
    size_t ntoken_from;
    bool close_on_expiry; /* `close_on_expiry`: close 1008 when the credential
                             expires (JWT exp); default true */
    /* Handler routes only (the endpoint's own WebSocket behaviour). */
    bool deflate;               /* `deflate`: accept permessage-deflate; default off */
    uint64_t deflate_threshold; /* smaller messages go out uncompressed; 1 KiB */
    uint64_t ping_interval_ms;  /* `ping_interval`: 0 when off; default 30s */
    uint64_t max_send_queue;    /* bytes queued towards the client; 0: the default,
                                   2 * (limits.max_message_size + 64 KiB) */
    enum cfg_slow_reader slow_reader; /* default close */
    /* `auth: [a, b]`: every provider must allow, in order; auth/provider
     * above are the first. Length 1 for `auth: name`, 0 for none. */
    char **auth_chain;
    const struct cfg_provider **providers; /* resolved, parallel to auth_chain */
    size_t nauth;
    /* `origins`: allowed Origin values, lower-cased, as
     * "https://app.example.com" or with a wildcard first label; without
     * the key, any origin. */
    char **origins;
    size_t norigins;
    struct cfg_mark mark;
};

/* resolver: how upstream host names are resolved (evdns, never blocking). */
struct cfg_resolver {
    char **nameservers; /* "IP" or "IP:PORT" (IPv6 in brackets); none: the
                           system's, from /etc/resolv.conf */
    size_t nnameservers;
    uint64_t timeout_ms; /* a query unanswered this long is sent again; 0: evdns's */
    uint64_t attempts;   /* sends of one query before it fails; 0: evdns's */
};

struct cfg {
    char *file; /* the path it was loaded from, or "<default>" */
    struct cfg_listener *listeners;
    size_t nlisteners;
    unsigned workers; /* 0 means auto: one per core */
    struct cfg_limits limits;
    struct cfg_log log;
    struct cfg_token_source *token_from; /* default: [header] */
    size_t ntoken_from;
    struct cfg_provider *providers;
    size_t nproviders;
    struct cfg_auth_throttle *throttle; /* auth.throttle, or NULL: off */
    struct cfg_route *routes;
    size_t nroutes;
    struct cfg_resolver resolver;
};

/* Every error found while loading, each already formatted as
 * "FILE:LINE:COLUMN: key.path: message". */
struct cfg_errors {
    char **msgs;
    size_t count;
};

/* Environment lookup used for ${VAR} expansion; returns NULL when unset.
 * Tests pass their own; cfg_load passes getenv. */
typedef const char *(*cfg_getenv_fn)(const char *name, void *arg);

/* Loads and validates the YAML in text[0..len), naming it `file` in errors.
 * On success returns 0 and stores a new configuration in *out (free with
 * cfg_free). On failure returns -1, stores NULL in *out, and appends every
 * error found to errs (which the caller frees with cfg_errors_free). Pure: no
 * I/O beyond calling getenv_fn. */
int cfg_load_string(const char *file, const char *text, size_t len,
                    cfg_getenv_fn getenv_fn, void *getenv_arg, struct cfg **out,
                    struct cfg_errors *errs);

/* Reads `path` and loads it with cfg_load_string and the process environment.
 * An unreadable file is one error "FILE: cannot read: reason". */
int cfg_load_file(const char *path, struct cfg **out, struct cfg_errors *errs);

/* The built-in configuration used when wsgate runs without -c: listen on
 * 127.0.0.1:8080 and serve /echo in-process. Never fails. */
struct cfg *cfg_load_default(void);

/* The YAML text of the built-in configuration (for -h and documentation). */
extern const char cfg_default_yaml[];

void cfg_free(struct cfg *cfg);
void cfg_errors_free(struct cfg_errors *errs);

/* Parses "16KiB", "1MiB", "512", "2GiB", "10KB" (KB = 1000) into bytes.
 * Returns 0 or -1 with a message in err. */
int cfg_parse_size(const char *s, uint64_t *out, struct gw_err *err);

/* Parses "500ms", "10s", "5m", "1h" into milliseconds. A bare number is an
 * error (the unit is required). Returns 0 or -1 with a message in err. */
int cfg_parse_duration(const char *s, uint64_t *out_ms, struct gw_err *err);

/* Splits "host:port", "[v6]:port" or ":port" (meaning 0.0.0.0) into a
 * malloc'd host and a port. Returns 0 or -1 with a message in err. */
int cfg_parse_address(const char *s, char **host, uint16_t *port, struct gw_err *err);

/* Expands ${VAR} and ${VAR:-default} in s into a new malloc'd string stored
 * in *out. "$$" is a literal "$". An unset VAR without a default, an
 * unterminated "${", or an empty name is an error. Returns 0 or -1. */
int cfg_expand_env(const char *s, cfg_getenv_fn getenv_fn, void *arg, char **out,
                   struct gw_err *err);

/* Parses an upstream URL: ws:// or wss:// (any case), a host (a DNS name,
 * an IPv4 address or a bracketed IPv6 address), an optional :PORT (1 to
 * 65535) and an optional path; user information, a query and a fragment are
 * errors. On success returns 0 and fills out's url (a copy of s), tls, host
 * (lower-cased, IPv6 without brackets), port (80 or 443 when absent) and path
 * (without trailing '/'; "" when absent), all malloc'd and owned by the
 * caller, leaving out->mark as it was. On failure returns -1 with a message
 * in err that never quotes s (it may hold a secret from ${VAR}) and leaves
 * *out unchanged. */
int cfg_parse_upstream_url(const char *s, struct cfg_upstream *out, struct gw_err *err);

/* True when `name` is a built-in in-process handler ("echo"). */
bool cfg_handler_known(const char *name);

#endif
