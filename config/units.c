/* units: parsers for the configuration's sizes, durations, addresses and ${VAR}s. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"

struct unit {
    const char *suffix;
    uint64_t factor;
};

/* Case-sensitive, as written: KB is 1000 bytes, KiB is 1024; no suffix is bytes. */
static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000ULL},
    {"MB", 1000ULL * 1000},
    {"GB", 1000ULL * 1000 * 1000},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
};

static const struct unit duration_units[] = {
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_VAR_NAME 255
#define MAX_HOST_NAME 253

/* Reads the leading decimal digits of s into *out and the rest into *rest.
 * Returns 0, or -1 with a message when there are none or they overflow. */
static int
parse_digits(const char *s, uint64_t *out, const char **rest, struct gw_err *err)
{
    uint64_t v = 0;
    const char *p = s;

    /* Outputs are always set, so no caller reads them uninitialised. */
    *out = 0;
    *rest = s;
    if (*p < '0' || *p > '9')
        return gw_err_set(err, "expected a non-negative integer");
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return gw_err_set(err, "number too large");
        v = v * 10 + d;
    }
    *out = v;
    *rest = p;
    return 0;
}

int
cfg_parse_uint(const char *s, uint64_t *out, struct gw_err *err)
{
    uint64_t v;
    const char *rest;

    if (parse_digits(s, &v, &rest, err) != 0)
        return -1;
    if (*rest != '\0')
        return gw_err_set(err, "expected a non-negative integer");
    *out = v;
    return 0;
}

/* Parses digits followed by one of units[]. Returns 0, -1 with a message on
 * overflow, -2 (no message) on an unknown suffix, or -3 (no message) when
 * there is no number. */
static int
parse_with_unit(const char *s, const struct unit *units, size_t nunits, uint64_t *out,
                struct gw_err *err)
{
    uint64_t v;
    const char *rest;

    if (*s < '0' || *s > '9')
        return -3;
    if (parse_digits(s, &v, &rest, err) != 0)
        return -1;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(units[i].suffix, rest) != 0)
            continue;
        if (v > UINT64_MAX / units[i].factor)
            return gw_err_set(err, "number too large");
        *out = v * units[i].factor;
        return 0;
    }
    return -2;
}

int
cfg_parse_size(const char *s, uint64_t *out, struct gw_err *err)
{
    int rc = parse_with_unit(s, size_units, NELEMS(size_units), out, err);
    if (rc == -3)
        return gw_err_set(err,
                          "expected a number of bytes, optionally followed by B, KB, "
                          "MB, GB, KiB, MiB or GiB");
    if (rc == -2)
        return gw_err_set(err, "unknown size unit (use B, KB, MB, GB, KiB, MiB or GiB)");
    return rc;
}

int
cfg_parse_duration(const char *s, uint64_t *out_ms, struct gw_err *err)
{
    int rc = parse_with_unit(s, duration_units, NELEMS(duration_units), out_ms, err);
    if (rc == -2 && s[strspn(s, "0123456789")] == '\0')
        return gw_err_set(err, "missing unit (use ms, s, m or h)");
    if (rc == -3)
        return gw_err_set(err, "expected a number followed by ms, s, m or h");
    if (rc == -2)
        return gw_err_set(err, "unknown duration unit (use ms, s, m or h)");
    return rc;
}

static bool
is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A dotted-quad IPv4 literal. */
static bool
ipv4_valid(const char *h, size_t len)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a4;

    if (len == 0 || len >= sizeof(buf) || strspn(h, "0123456789.") < len)
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a4) == 1;
}

/* A dotted-quad IPv4 literal, or a DNS name of letters, digits, '-' and '_'
 * in non-empty dot-separated labels. */
static bool
name_valid(const char *h, size_t len)
{
    bool label_start = true;

    if (len == 0 || len > MAX_HOST_NAME)
        return false;
    if (strspn(h, "0123456789.") >= len)
        return ipv4_valid(h, len);
    for (size_t i = 0; i < len; i++) {
        if (h[i] == '.') {
            if (label_start)
                return false;
            label_start = true;
        } else if (is_alnum(h[i]) || h[i] == '_' || (h[i] == '-' && !label_start)) {
            label_start = false;
        } else {
            return false;
        }
    }
    return !label_start;
}

static bool
ipv6_valid(const char *h, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a6) == 1;
}

bool
cfg_host_valid(const char *h, size_t len)
{
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']')
        return ipv6_valid(h + 1, len - 2);
    return name_valid(h, len);
}

/* Parses a port: 1 to 5 digits, at most 65535, nothing after. */
static int
parse_port(const char *s, uint16_t *port, struct gw_err *err)
{
    uint64_t v;
    const char *rest;

    if (*s == '\0')
        return gw_err_set(err, "missing port after \":\"");
    if (parse_digits(s, &v, &rest, err) != 0 || *rest != '\0' || v > 65535)
        return gw_err_set(err, "port must be a number from 0 to 65535");
    *port = (uint16_t)v;
    return 0;
}

bool
cfg_nameserver_valid(const char *s)
{
    size_t len = strlen(s);
    const char *port;

    if (ipv6_valid(s, len))
        return true; /* bare IPv6: no port */
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || !ipv6_valid(s + 1, (size_t)(close - s - 1)))
            return false;
        if (close[1] == '\0')
            return true;
        if (close[1] != ':')
            return false;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!ipv4_valid(s, colon != NULL ? (size_t)(colon - s) : len))
            return false;
        if (colon == NULL)
            return true;
        port = colon + 1;
    }
    uint16_t p = 0;
    struct gw_err err;
    return parse_port(port, &p, &err) == 0 && p != 0;
}

int
cfg_parse_address(const char *s, char **host, uint16_t *port, struct gw_err *err)
{
    const char *hs = s, *he, *colon;
    uint16_t p = 0;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return gw_err_set(err, "missing \"]\" after an IPv6 address");
        if (!ipv6_valid(s + 1, (size_t)(close - s - 1)))
            return gw_err_set(err, "invalid IPv6 address");
        if (close[1] != ':')
            return gw_err_set(err, "expected \":PORT\" after \"]\"");
        hs = s + 1;
        he = close;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return gw_err_set(err, "missing port (use HOST:PORT)");
        he = colon;
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            return gw_err_set(err, "an IPv6 address needs brackets: [ADDRESS]:PORT");
        if (he > hs && !name_valid(hs, (size_t)(he - hs)))
            return gw_err_set(err, "invalid host (use an IP address or a host name)");
    }
    if (parse_port(colon + 1, &p, err) != 0)
        return -1;
    char *h = he > hs ? strndup(hs, (size_t)(he - hs)) : strdup("0.0.0.0");
    if (h == NULL)
        return gw_err_set(err, "out of memory");
    *host = h;
    *port = p;
    return 0;
}

/* A growing output string for cfg_expand_env. */
struct strbuf {
    char *p;
    size_t len;
    size_t cap;
};

static int
strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Expands the "${...}" that starts at s (s[0] == '$', s[1] == '{') into b and
 * stores the length consumed in *used. As in the shell, ":-" takes the
 * default when VAR is unset or empty; the default runs to the first '}' and
 * is not itself expanded. Messages name variables, never their values. */
static int
expand_one(const char *s, cfg_getenv_fn getenv_fn, void *arg, struct strbuf *b,
           size_t *used, struct gw_err *err)
{
    const char *name = s + 2;
    const char *close = strchr(name, '}');
    size_t nlen = 0;
    char buf[MAX_VAR_NAME + 1];

    if (close == NULL)
        return gw_err_set(err, "unterminated \"${\"");
    while (is_alnum(name[nlen]) || name[nlen] == '_')
        nlen++;
    if (nlen == 0 && name[0] == '}')
        return gw_err_set(err, "empty variable name in \"${}\"");
    bool has_default = name[nlen] == ':' && name[nlen + 1] == '-';
    if (nlen == 0 || (name[0] >= '0' && name[0] <= '9') ||
        (name[nlen] != '}' && !has_default))
        return gw_err_set(err, "invalid variable name in \"${%.*s}\"",
                          (int)(close - name > 64 ? 64 : close - name), name);
    if (nlen > MAX_VAR_NAME)
        return gw_err_set(err, "variable name too long");
    memcpy(buf, name, nlen);
    buf[nlen] = '\0';

    const char *value = getenv_fn != NULL ? getenv_fn(buf, arg) : NULL;
    if (has_default && (value == NULL || value[0] == '\0')) {
        const char *def = name + nlen + 2;
        value = NULL;
        if (strbuf_add(b, def, (size_t)(close - def)) != 0)
            return gw_err_set(err, "out of memory");
    } else if (value == NULL) {
        return gw_err_set(err, "${%s} is not set", buf);
    }
    if (value != NULL && strbuf_add(b, value, strlen(value)) != 0)
        return gw_err_set(err, "out of memory");
    *used = (size_t)(close + 1 - s);
    return 0;
}

int
cfg_expand_env(const char *s, cfg_getenv_fn getenv_fn, void *arg, char **out,
               struct gw_err *err)
{
    struct strbuf b = {0};
    size_t i = 0;

    if (strbuf_add(&b, "", 0) != 0)
        return gw_err_set(err, "out of memory");
    while (s[i] != '\0') {
        size_t run = strcspn(s + i, "$");
        if (strbuf_add(&b, s + i, run) != 0)
            goto oom;
        i += run;
        if (s[i] == '\0')
            break;
        if (s[i + 1] == '{') {
            size_t used = 0;
            if (expand_one(s + i, getenv_fn, arg, &b, &used, err) != 0) {
                free(b.p);
                return -1;
            }
            i += used;
        } else {
            /* "$$" is one '$'; a '$' before anything else stays as written. */
            if (strbuf_add(&b, "$", 1) != 0)
                goto oom;
            i += s[i + 1] == '$' ? 2 : 1;
        }
    }
    *out = b.p;
    return 0;
oom:
    free(b.p);
    return gw_err_set(err, "out of memory");
}

/* The schemes an upstream URL may have, and what each implies. */
struct upstream_scheme {
    const char *prefix; /* matched case-insensitively, as RFC 3986 says */
    bool tls;
    uint16_t port; /* when the URL has none */
};

static const struct upstream_scheme upstream_schemes[] = {
    {"ws://", false, 80},
    {"wss://", true, 443},
};

/* Splits the authority a[0..len) ("host", "host:port", "[v6]:port") into the
 * host without brackets and the port (0 when absent). Returns 0 or -1. */
static int
split_authority(const char *a, size_t len, const char **host, size_t *hlen,
                uint16_t *port, struct gw_err *err)
{
    const char *colon;

    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || !ipv6_valid(a + 1, (size_t)(close - a - 1)))
            return gw_err_set(err, "has an invalid host");
        if (close + 1 < a + len && close[1] != ':')
            return gw_err_set(err, "has an invalid host");
        *host = a + 1;
        *hlen = (size_t)(close - a - 1);
        colon = close + 1 < a + len ? close + 1 : NULL;
    } else {
        colon = memchr(a, ':', len);
        *host = a;
        *hlen = colon != NULL ? (size_t)(colon - a) : len;
        if (colon != NULL && memchr(colon + 1, ':', len - *hlen - 1) != NULL)
            return gw_err_set(err,
                              "has an invalid host (an IPv6 address goes in brackets)");
        if (*hlen == 0)
            return gw_err_set(err, "has no host");
        if (!name_valid(a, *hlen))
            return gw_err_set(err, "has an invalid host");
    }
    *port = 0;
    if (colon != NULL) {
        size_t plen = len - (size_t)(colon + 1 - a);
        uint64_t v = 0;
        for (size_t i = 0; i < plen && v <= 65535; i++)
            v = colon[1 + i] >= '0' && colon[1 + i] <= '9'
                    ? v * 10 + (uint64_t)(colon[1 + i] - '0')
                    : 65536;
        if (plen == 0 || v < 1 || v > 65535)
            return gw_err_set(err, "has an invalid port (1 to 65535)");
        *port = (uint16_t)v;
    }
    return 0;
}

int
cfg_parse_upstream_url(const char *s, struct cfg_upstream *out, struct gw_err *err)
{
    const struct upstream_scheme *scheme = NULL;

    for (size_t i = 0; i < NELEMS(upstream_schemes) && scheme == NULL; i++)
        if (strncasecmp(s, upstream_schemes[i].prefix,
                        strlen(upstream_schemes[i].prefix)) == 0)
            scheme = &upstream_schemes[i];
    if (scheme == NULL)
        return gw_err_set(err, "must be a ws:// or wss:// URL");
    for (const char *p = s; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return gw_err_set(err, "must be printable ASCII without spaces");
    const char *a = s + strlen(scheme->prefix);
    size_t alen = strcspn(a, "/?#");
    if (memchr(a, '@', alen) != NULL)
        return gw_err_set(err, "must not hold user information (\"user:password@\")");
    const char *host = NULL;
    size_t hlen = 0;
    uint16_t port = 0;
    if (split_authority(a, alen, &host, &hlen, &port, err) != 0)
        return -1;
    const char *path = a + alen;
    size_t plen = strcspn(path, "?#");
    if (path[plen] == '?')
        return gw_err_set(err, "must not hold a query (\"?...\")");
    if (path[plen] == '#')
        return gw_err_set(err, "must not hold a fragment (\"#...\")");
    while (plen > 0 && path[plen - 1] == '/')
        plen--;

    struct cfg_upstream u = {.tls = scheme->tls, .port = port != 0 ? port : scheme->port};
    u.url = strdup(s);
    u.host = strndup(host, hlen);
    u.path = strndup(path, plen);
    if (u.url == NULL || u.host == NULL || u.path == NULL) {
        free(u.url);
        free(u.host);
        free(u.path);
        return gw_err_set(err, "out of memory");
    }
    for (char *p = u.host; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    u.mark = out->mark;
    *out = u;
    return 0;
}
