/* auth: the provider interface — an asynchronous, cancellable credential check. */
#ifndef WSGATE_AUTH_H
#define WSGATE_AUTH_H

#include <stddef.h>

#include "auth/token.h"
#include "config/config.h"
#include "config/gw_err.h"

struct event_base;

/* A provider's verdict. 0 denies; exactly one value allows. */
enum auth_verdict {
    AUTH_DENY = 0,        /* no or invalid credential: 401 */
    AUTH_FORBID = 2,      /* valid credential, not for this route: 403 */
    AUTH_UNAVAILABLE = 3, /* the provider could not decide: 503 */
    AUTH_ALLOW = 0x600d,  /* the only value that lets a request through */
};

/* What a check looks at. Views into the request; valid until the check's
 * callback has run or the check was cancelled — a provider that needs them
 * later copies them. */
struct auth_request {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *host;
    size_t host_len;
    const char *peer;                     /* client IP as text */
    const struct token_found *credential; /* kind 0 when none was sent */
    const struct token_header *headers;
    size_t nheaders;
};

/* A header an allowing provider wants set on the upstream request (a JWT
 * claim as X-Auth-Roles, a header copied from an auth service's answer). Its
 * name must be one of the provider's cfg_provider.identity_headers, so that
 * a client's copy is removed on every route even when the provider does not
 * set it. */
struct auth_header {
    const char *name;
    const char *value;
};

/* The answer handed to the done callback; its strings are valid only during
 * the callback. */
struct auth_result {
    enum auth_verdict verdict;
    const char *subject; /* the authenticated identity; NULL unless allowed */
    const char *error;   /* RFC 6750 error code for WWW-Authenticate
                            ("invalid_token"), or NULL */
    const char *reason;  /* short text for logs and the response body */
    const struct auth_header *headers; /* identity headers; only when allowed */
    size_t nheaders;
    long long expires_at; /* Unix time the credential expires (JWT exp), or 0 */
};

typedef void (*auth_done_fn)(void *arg, const struct auth_result *result);

struct auth_provider;
struct auth_check;

/* One provider type: a table entry per type (static now; jwt, http, plugin
 * later). `start` follows the contract of auth_start. */
struct auth_provider_ops {
    const char *type;
    int (*create)(const struct cfg_provider *cfg, struct event_base *base, void **state,
                  struct gw_err *err);
    int (*start)(void *state, const struct auth_request *req, auth_done_fn done,
                 void *arg, struct auth_check **pending);
    void (*cancel)(void *state, struct auth_check *check);
    void (*destroy)(void *state);
};

/* Creates the provider described by cfg for use on one worker's event base
 * (providers are per worker, so their callbacks need no locks). Returns NULL
 * with err filled on failure. */
struct auth_provider *auth_provider_new(const struct cfg_provider *cfg,
                                        struct event_base *base, struct gw_err *err);
void auth_provider_free(struct auth_provider *p);
const char *auth_provider_name(const struct auth_provider *p);

/* Starts checking req. Returns 0 when started; then `done` is called exactly
 * once, unless the check is cancelled first. A provider may answer
 * synchronously: then `done` runs before auth_start returns and *pending is
 * NULL; otherwise *pending is the handle to cancel. The caller keeps its own
 * copy of the handle, clears it in `done`, and cancels only while it is set.
 * Returns -1 (and never calls `done`) when the check cannot be started. */
int auth_start(struct auth_provider *p, const struct auth_request *req, auth_done_fn done,
               void *arg, struct auth_check **pending);

/* Cancels a pending check: `done` is never called for it afterwards. */
void auth_cancel(struct auth_provider *p, struct auth_check *check);

/* Constant-time comparison of two secrets of possibly different lengths;
 * returns 1 when equal. */
int auth_secret_equal(const char *a, size_t alen, const char *b, size_t blen);

/* The provider types, for tests that walk the table. */
extern const struct auth_provider_ops *const auth_provider_types[];

#endif
