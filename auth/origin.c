/* origin: matches a request's Origin against a route's allow-list. */
#include "auth/origin.h"

#include <string.h>
#include <strings.h>

/* SCHEME://HOST[:PORT] split into views; the host keeps IPv6 brackets. */
struct origin_parts {
    const char *scheme, *host, *port;
    size_t scheme_len, host_len, port_len;
};

static bool
split(const char *s, size_t len, struct origin_parts *o)
{
    const char *end = s + len;
    const char *sep = len >= 3 ? memmem(s, len, "://", 3) : NULL;
    if (sep == NULL || sep == s)
        return false;
    o->scheme = s;
    o->scheme_len = (size_t)(sep - s);
    o->host = sep + 3;
    const char *close = o->host < end && *o->host == '['
                            ? memchr(o->host, ']', (size_t)(end - o->host))
                            : NULL;
    const char *from = close != NULL ? close : o->host;
    const char *colon = memchr(from, ':', (size_t)(end - from));
    o->host_len = (size_t)((colon != NULL ? colon : end) - o->host);
    o->port = colon != NULL ? colon + 1 : end;
    o->port_len = (size_t)(end - o->port);
    if (o->host_len == 0 || (colon != NULL && o->port_len == 0))
        return false;
    for (const char *p = s; p < end; p++)
        if (*p <= 0x20 || *p >= 0x7f || (*p == '/' && p > sep + 2))
            return false;
    return true;
}

static bool
host_matches(const struct origin_parts *pat, const struct origin_parts *o)
{
    if (pat->host_len >= 2 && pat->host[0] == '*' && pat->host[1] == '.') {
        /* ".example.com" must end the host, after at least one label. */
        size_t suffix = pat->host_len - 1;
        return o->host_len > suffix && o->host[o->host_len - suffix - 1] != '.' &&
               strncasecmp(o->host + o->host_len - suffix, pat->host + 1, suffix) == 0;
    }
    return o->host_len == pat->host_len &&
           strncasecmp(o->host, pat->host, o->host_len) == 0;
}

bool
origin_allowed(const char *const *patterns, size_t n, const char *origin, size_t len)
{
    struct origin_parts o;
    if (!split(origin, len, &o))
        return false;
    for (size_t i = 0; i < n; i++) {
        struct origin_parts pat;
        if (!split(patterns[i], strlen(patterns[i]), &pat))
            continue;
        if (pat.scheme_len == o.scheme_len &&
            strncasecmp(pat.scheme, o.scheme, o.scheme_len) == 0 &&
            pat.port_len == o.port_len && memcmp(pat.port, o.port, o.port_len) == 0 &&
            host_matches(&pat, &o))
            return true;
    }
    return false;
}
