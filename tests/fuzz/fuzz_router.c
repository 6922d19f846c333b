/* fuzz_router: fuzzed Host and path over fixed routes, checked against a naive scan. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfg_route routes[] = {
    {.name = "root", .path = "/", .prefix = true},
    {.name = "echo", .path = "/echo"},
    {.name = "bar", .path = "/bar/", .prefix = true},
    {.name = "bar-deep", .path = "/bar/deep/", .prefix = true},
    {.name = "bar-x", .path = "/bar/x"},
    {.name = "chat", .path = "/chat"},
    {.name = "chat-dup", .path = "/chat"},
    {.name = "api-any", .path = "/", .prefix = true, .host = "api.example.com"},
    {.name = "api-chat", .path = "/chat", .host = "api.example.com"},
    {.name = "api-v2", .path = "/v2/", .prefix = true, .host = "api.example.com"},
    {.name = "b-only", .path = "/only", .host = "b"},
    {.name = "v6", .path = "/v6", .host = "::1"},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static struct router *router;

/* The Host's name, lower-cased, as the router is meant to see it. */
static size_t
naive_name(const char *h, size_t len, char *out)
{
    size_t start = 0, stop = len;
    if (len > 0 && h[0] == '[') {
        start = 1;
        for (size_t i = 1; i < len; i++)
            if (h[i] == ']') {
                stop = i;
                break;
            }
    } else {
        for (size_t i = 0; i < len; i++)
            if (h[i] == ':') {
                stop = i;
                break;
            }
        if (stop > 0 && h[stop - 1] == '.')
            stop--;
    }
    for (size_t i = start; i < stop; i++)
        out[i - start] = (char)(h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 32 : h[i]);
    return stop - start;
}

/* Exact first (first declared), else longest prefix (first declared). */
static const struct cfg_route *
naive_group(bool with_host, const char *name, size_t name_len, const char *path,
            size_t path_len)
{
    const struct cfg_route *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        const struct cfg_route *rt = &routes[i];
        if ((rt->host != NULL) != with_host)
            continue;
        if (with_host && (name == NULL || strlen(rt->host) != name_len ||
                          memcmp(rt->host, name, name_len) != 0))
            continue;
        size_t n = strlen(rt->path);
        if (!rt->prefix && n == path_len && memcmp(rt->path, path, n) == 0)
            return rt;
        if (rt->prefix && n <= path_len && memcmp(rt->path, path, n) == 0 &&
            (best == NULL || n > best_len)) {
            best = rt;
            best_len = n;
        }
    }
    return best;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (router == NULL) {
        static struct cfg cfg = {.routes = routes, .nroutes = NROUTES};
        router = router_new(&cfg);
        if (router == NULL)
            abort();
    }
    /* "host\npath"; without a newline there is no Host at all. */
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    const char *host = nl != NULL ? in : NULL;
    size_t host_len = nl != NULL ? (size_t)(nl - in) : 0;
    const char *path = nl != NULL ? nl + 1 : in;
    size_t path_len = nl != NULL ? size - host_len - 1 : size;

    char *name = NULL;
    size_t name_len = 0;
    if (host != NULL) {
        name = malloc(host_len + 1);
        if (name == NULL)
            return 0;
        name_len = naive_name(host, host_len, name);
    }
    const struct cfg_route *want = naive_group(true, name, name_len, path, path_len);
    if (want == NULL)
        want = naive_group(false, NULL, 0, path, path_len);
    if (router_match(router, host, host_len, path, path_len) != want)
        abort();
    free(name);
    return 0;
}
