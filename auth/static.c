/* static: the provider that accepts a credential from a fixed list of tokens. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_internal.h"

/* Points into the configuration, which outlives its providers (a worker
 * frees its providers before it drops the snapshot): the secrets are never
 * copied. */
struct auth_static {
    const struct cfg_provider *cfg;
    const char *subject; /* the provider's name */
};

static int
static_create(const struct cfg_provider *cfg, struct event_base *base, void **state,
              struct gw_err *err)
{
    const char *name = cfg->name != NULL ? cfg->name : "static";

    /* An empty list or an empty token (a ${VAR} that expanded to nothing)
     * is a misconfiguration that would deny everyone without saying why. */
    if (cfg->ntokens == 0)
        return gw_err_set(err, "auth.providers.%s: a static provider needs tokens", name);
    for (size_t i = 0; i < cfg->ntokens; i++) {
        if (cfg->tokens[i] == NULL || cfg->tokens[i][0] == '\0')
            return gw_err_set(err, "auth.providers.%s.tokens[%zu]: empty token", name, i);
    }

    struct auth_static *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return gw_err_set(err, "out of memory");
    s->cfg = cfg;
    s->subject = name;
    *state = s;
    return 0;
}

/* Answers before returning; *pending stays NULL. */
static int
static_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
             struct auth_check **pending)
{
    const struct auth_static *s = state;
    const struct token_found *cred = req->credential;
    struct auth_result res = {.verdict = AUTH_DENY};

    *pending = NULL;
    if (cred == NULL || cred->kind == 0) {
        res.reason = "missing credentials";
        done(arg, &res);
        return 0;
    }

    /* Every token is compared, so the time taken says nothing about which
     * one (if any) matched. */
    int match = 0;
    for (size_t i = 0; i < s->cfg->ntokens; i++) {
        const char *t = s->cfg->tokens[i];
        match |= auth_secret_equal(cred->token, cred->token_len, t, strlen(t));
    }
    if (match) {
        res.verdict = AUTH_ALLOW;
        res.subject = s->subject;
    } else {
        res.error = "invalid_token";
        res.reason = "invalid token";
    }
    done(arg, &res);
    return 0;
}

/* Never called: this provider has no pending checks to cancel. */
static void
static_cancel(void *state, struct auth_check *check)
{
}

static void
static_destroy(void *state)
{
    free(state);
}

const struct auth_provider_ops auth_static_ops = {
    .type = "static",
    .create = static_create,
    .start = static_start,
    .cancel = static_cancel,
    .destroy = static_destroy,
};
