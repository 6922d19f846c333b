/* auth: the provider registry, dispatch to providers, secret comparison. */
#include "auth/auth.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "config/config_internal.h"

struct auth_provider {
    const struct auth_provider_ops *ops;
    void *state;
    char *name;
};

const struct auth_provider_ops *const auth_provider_types[] = {
    &auth_static_ops, &auth_jwt_ops, &auth_http_ops, &auth_plugin_ops, NULL,
};

/* The configuration's provider types, spelled as their ops tables name them. */
static const char *const auth_type_names[] = {
    [CFG_PROVIDER_STATIC] = "static",
    [CFG_PROVIDER_JWT] = "jwt",
    [CFG_PROVIDER_HTTP] = "http",
    [CFG_PROVIDER_PLUGIN] = "plugin",
};

static const struct auth_provider_ops *
auth_find_ops(enum cfg_provider_type type)
{
    if ((size_t)type >= sizeof(auth_type_names) / sizeof(auth_type_names[0]) ||
        auth_type_names[type] == NULL)
        return NULL;
    for (size_t i = 0; auth_provider_types[i] != NULL; i++) {
        if (strcmp(auth_provider_types[i]->type, auth_type_names[type]) == 0)
            return auth_provider_types[i];
    }
    return NULL;
}

struct auth_provider *
auth_provider_new(const struct cfg_provider *cfg, struct event_base *base,
                  struct gw_err *err)
{
    const char *name = cfg->name != NULL ? cfg->name : "";
    const struct auth_provider_ops *ops = auth_find_ops(cfg->type);
    if (ops == NULL) {
        gw_err_set(err, "auth.providers.%s: unknown provider type %d", name,
                   (int)cfg->type);
        return NULL;
    }

    struct auth_provider *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = strdup(name)) == NULL) {
        free(p);
        gw_err_set(err, "out of memory");
        return NULL;
    }
    p->ops = ops;
    if (ops->create(cfg, base, &p->state, err) != 0) {
        free(p->name);
        free(p);
        return NULL;
    }
    return p;
}

void
auth_provider_free(struct auth_provider *p)
{
    if (p == NULL)
        return;
    p->ops->destroy(p->state);
    free(p->name);
    free(p);
}

const char *
auth_provider_name(const struct auth_provider *p)
{
    return p->name;
}

int
auth_start(struct auth_provider *p, const struct auth_request *req, auth_done_fn done,
           void *arg, struct auth_check **pending)
{
    /* A provider that answers synchronously never sets it. */
    *pending = NULL;
    return p->ops->start(p->state, req, done, arg, pending);
}

void
auth_cancel(struct auth_provider *p, struct auth_check *check)
{
    if (check != NULL)
        p->ops->cancel(p->state, check);
}

int
auth_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Comparing fixed-size digests takes the same time wherever the inputs
     * differ and whatever their lengths; only the hashing time depends on
     * the lengths, never on the content. */
    unsigned char da[SHA256_DIGEST_LENGTH];
    unsigned char db[SHA256_DIGEST_LENGTH];
    int ok = EVP_Digest(a, alen, da, NULL, EVP_sha256(), NULL) == 1 &&
             EVP_Digest(b, blen, db, NULL, EVP_sha256(), NULL) == 1;
    int equal = ok && CRYPTO_memcmp(da, db, sizeof(da)) == 0 && alen == blen;
    OPENSSL_cleanse(da, sizeof(da));
    OPENSSL_cleanse(db, sizeof(db));
    return equal;
}

/* Appends "FILE:LINE:COLUMN: message" at err's position, or p's. */
static int
prepare_fail(const struct cfg *cfg, const struct cfg_provider *p,
             const struct gw_err *err, struct cfg_errors *errs)
{
    int line = err->line > 0 ? err->line : p->mark.line;
    int column = err->line > 0 ? err->column : p->mark.column;
    char *msg = NULL;
    if (asprintf(&msg, "%s:%d:%d: %s", cfg->file, line, column, err->msg) < 0)
        msg = NULL;
    cfg_errors_push(errs, msg);
    return -1;
}

int
auth_config_prepare(struct cfg *cfg, struct cfg_errors *errs)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct cfg_provider *p = &cfg->providers[i];
        struct gw_err err = {.msg = ""};
        /* Only jwt needs it, and other types may need an event base. */
        if (p->type != CFG_PROVIDER_JWT)
            continue;
        if (auth_jwt_read_files(p, &err) != 0) {
            rc = prepare_fail(cfg, p, &err, errs);
            continue;
        }
        /* A trial instance: what would fail on a worker fails here, with a
         * position, before the configuration is used. */
        struct auth_provider *trial = auth_provider_new(p, NULL, &err);
        if (trial == NULL)
            rc = prepare_fail(cfg, p, &err, errs);
        auth_provider_free(trial);
    }
    return rc;
}

int
auth_providers_verify(const struct cfg *cfg, struct cfg_errors *errs)
{
    if (cfg->nproviders == 0)
        return 0;
    struct event_base *base = event_base_new();
    if (base == NULL)
        return cfg_errors_push(errs, strdup("cannot create an event base")), -1;
    int rc = 0;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct gw_err err = {.msg = ""};
        struct auth_provider *p = auth_provider_new(&cfg->providers[i], base, &err);
        if (p != NULL) {
            auth_provider_free(p);
            continue;
        }
        struct cfg_mark at = cfg->providers[i].mark;
        if (err.line > 0)
            at = (struct cfg_mark){err.line, err.column};
        char *msg = NULL;
        if (asprintf(&msg, "%s:%d:%d: %s", cfg->file, at.line, at.column, err.msg) < 0)
            msg = NULL;
        cfg_errors_push(errs, msg);
        rc = -1;
    }
    event_base_free(base);
    return rc;
}
