/* fuzz_config: feeds arbitrary bytes to the config loader and the unit parsers, freeing
 * everything. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed environment, so that runs are reproducible. */
static const char *
fake_getenv(const char *name, void *arg)
{
    static const char *const env[][2] = {
        {"WSGATE_TOKEN", "tok"},
        {"PORT", "9000"},
        {"EMPTY", ""},
    };
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        if (strcmp(env[i][0], name) == 0)
            return env[i][1];
    return NULL;
}

/* A parsed URL must be what the parser promises: lower-case host, no
 * brackets, a port, a path that is empty or starts with '/' and does not end
 * with one. */
static void
fuzz_upstream_url(const char *s)
{
    struct gw_err err;
    struct cfg_upstream u = {0};

    if (cfg_parse_upstream_url(s, &u, &err) != 0) {
        if (u.url != NULL || u.host != NULL || u.path != NULL)
            abort();
        return;
    }
    size_t plen = strlen(u.path);
    if (u.port == 0 || u.host[0] == '\0' || strcmp(u.url, s) != 0 ||
        strpbrk(u.host, "[]@/?#ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL ||
        strpbrk(u.path, "?#") != NULL || (plen > 0 && u.path[0] != '/') ||
        (plen > 0 && u.path[plen - 1] == '/'))
        abort();
    free(u.url);
    free(u.host);
    free(u.path);
}

/* The unit parsers take NUL-terminated strings: try the input as one. */
static void
fuzz_units(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct gw_err err;
    uint64_t v;
    char *out = NULL, *host = NULL;
    uint16_t port;

    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    cfg_parse_size(s, &v, &err);
    cfg_parse_duration(s, &v, &err);
    if (cfg_parse_address(s, &host, &port, &err) == 0)
        free(host);
    fuzz_upstream_url(s);
    if (cfg_expand_env(s, fake_getenv, NULL, &out, &err) == 0)
        free(out);
    cfg_handler_known(s);
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = cfg_load_string("fuzz.yaml", (const char *)data, size, fake_getenv, NULL,
                             &cfg, &errs);

    /* The contract: a configuration and no errors, or errors and none. */
    if ((rc == 0) != (cfg != NULL) || (rc == 0) != (errs.count == 0))
        abort();
    cfg_free(cfg);
    cfg_errors_free(&errs);
    if (size < 512)
        fuzz_units(data, size);
    return 0;
}
