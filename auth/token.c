/* token: finds the credential in the configured request sources, in order. */
#include "auth/token.h"

#include <stdbool.h>
#include <string.h>

/* A source looks for its credential; NONE when the request carries none
 * there, MALFORMED when it carries one that cannot be read unambiguously. */
typedef enum token_status (*token_source_fn)(const struct token_input *in,
                                             const char *name, struct token_found *found);

static const char token_bearer_scheme[] = "bearer";
static const char token_subprotocol_prefix[] = "bearer.";

static char
token_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True when p[0..n) equals the lower-case literal s, ignoring ASCII case. */
static bool
token_ieq(const char *p, size_t n, const char *s, size_t slen)
{
    if (n != slen)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (token_lower(p[i]) != s[i])
            return false;
    }
    return true;
}

static bool
token_header_is(const struct token_header *h, const char *lname)
{
    return token_ieq(h->name, h->name_len, lname, strlen(lname));
}

static bool
token_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void
token_trim(const char **p, size_t *n)
{
    while (*n > 0 && token_is_ows((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && token_is_ows((*p)[*n - 1]))
        (*n)--;
}

static int
token_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = token_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Accepts found->token[0..n): not empty and free of control characters, which
 * could otherwise smuggle CR/LF into a header a provider builds from it. */
static enum token_status
token_finish(struct token_found *found, size_t n)
{
    if (n == 0)
        return TOKEN_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)found->token[i];
        if (c < 0x20 || c == 0x7F)
            return TOKEN_MALFORMED;
    }
    found->token[n] = '\0';
    found->token_len = n;
    return TOKEN_OK;
}

static enum token_status
token_store(struct token_found *found, const char *p, size_t n)
{
    if (n > TOKEN_MAX)
        return TOKEN_MALFORMED;
    memcpy(found->token, p, n);
    return token_finish(found, n);
}

/* Percent-decodes p[0..n) into found ('+' is a space, as in form encoding). */
static enum token_status
token_store_decoded(struct token_found *found, const char *p, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            int hi = n - i >= 3 ? token_hex(p[i + 1]) : -1;
            int lo = n - i >= 3 ? token_hex(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return TOKEN_MALFORMED;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o == TOKEN_MAX)
            return TOKEN_MALFORMED;
        found->token[o++] = c;
    }
    return token_finish(found, o);
}

/* Authorization: Bearer <token>. One header only: two would let the gateway
 * and the service behind it read different credentials. */
static enum token_status
token_from_header(const struct token_input *in, const char *name,
                  struct token_found *found)
{
    const struct token_header *auth = NULL;

    for (size_t i = 0; i < in->nheaders; i++) {
        if (!token_header_is(&in->headers[i], "authorization"))
            continue;
        if (auth != NULL)
            return TOKEN_MALFORMED;
        auth = &in->headers[i];
    }
    if (auth == NULL)
        return TOKEN_NONE;

    const char *v = auth->value;
    size_t n = auth->value_len;
    token_trim(&v, &n);
    const char *sp = n > 0 ? memchr(v, ' ', n) : NULL;
    size_t scheme_len = sp != NULL ? (size_t)(sp - v) : n;
    if (sp == NULL ||
        !token_ieq(v, scheme_len, token_bearer_scheme, sizeof(token_bearer_scheme) - 1))
        return TOKEN_MALFORMED;
    while (scheme_len < n && v[scheme_len] == ' ')
        scheme_len++;
    v += scheme_len;
    n -= scheme_len;
    /* token68 holds no whitespace; "Bearer a b" is not one credential. */
    for (size_t i = 0; i < n; i++) {
        if (token_is_ows(v[i]))
            return TOKEN_MALFORMED;
    }
    return token_store(found, v, n);
}

/* The query parameter `name`, matched exactly before decoding. */
static enum token_status
token_from_query(const struct token_input *in, const char *name,
                 struct token_found *found)
{
    if (in->query == NULL || name == NULL)
        return TOKEN_NONE;

    size_t name_len = strlen(name);
    const char *p = in->query;
    const char *end = in->query + in->query_len;
    const char *val = NULL;
    size_t val_len = 0;

    for (;;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *key_end = eq != NULL ? eq : seg_end;
        if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
            if (val != NULL)
                return TOKEN_MALFORMED;
            val = eq != NULL ? eq + 1 : seg_end;
            val_len = (size_t)(seg_end - val);
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    if (val == NULL)
        return TOKEN_NONE;
    return token_store_decoded(found, val, val_len);
}

/* Finds cookie `name` in one Cookie header's cookie-string (RFC 6265 §4.2.1,
 * read leniently about whitespace). Returns -1 on a second occurrence. */
static int
token_cookie_scan(const char *p, size_t n, const char *name, size_t name_len,
                  const char **val, size_t *val_len)
{
    const char *end = p + n;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi != NULL ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (eq != NULL) {
            const char *k = p;
            size_t klen = (size_t)(eq - p);
            token_trim(&k, &klen);
            if (klen == name_len && memcmp(k, name, name_len) == 0) {
                if (*val != NULL)
                    return -1;
                *val = eq + 1;
                *val_len = (size_t)(pair_end - *val);
                token_trim(val, val_len);
            }
        }
        p = semi != NULL ? semi + 1 : end;
    }
    return 0;
}

/* The cookie `name`, across every Cookie header. */
static enum token_status
token_from_cookie(const struct token_input *in, const char *name,
                  struct token_found *found)
{
    if (name == NULL)
        return TOKEN_NONE;

    size_t name_len = strlen(name);
    const char *val = NULL;
    size_t val_len = 0;

    for (size_t i = 0; i < in->nheaders; i++) {
        const struct token_header *h = &in->headers[i];
        if (!token_header_is(h, "cookie"))
            continue;
        if (token_cookie_scan(h->value, h->value_len, name, name_len, &val, &val_len) < 0)
            return TOKEN_MALFORMED;
    }
    if (val == NULL)
        return TOKEN_NONE;
    if (val_len > 0 && val[0] == '"') {
        if (val_len < 2 || val[val_len - 1] != '"')
            return TOKEN_MALFORMED;
        val++;
        val_len -= 2;
    }
    return token_store(found, val, val_len);
}

/* The Sec-WebSocket-Protocol element "bearer.<token>", across every such
 * header and every comma-separated element. */
static enum token_status
token_from_subprotocol(const struct token_input *in, const char *name,
                       struct token_found *found)
{
    const size_t plen = sizeof(token_subprotocol_prefix) - 1;
    const char *val = NULL;
    size_t val_len = 0;

    for (size_t i = 0; i < in->nheaders; i++) {
        const struct token_header *h = &in->headers[i];
        if (!token_header_is(h, "sec-websocket-protocol"))
            continue;
        const char *p = h->value;
        const char *end = h->value + h->value_len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = p;
            size_t elen = (size_t)((comma != NULL ? comma : end) - p);
            token_trim(&e, &elen);
            if (elen >= plen && memcmp(e, token_subprotocol_prefix, plen) == 0) {
                if (val != NULL)
                    return TOKEN_MALFORMED;
                val = e + plen;
                val_len = elen - plen;
            }
            p = comma != NULL ? comma + 1 : end;
        }
    }
    if (val == NULL)
        return TOKEN_NONE;
    return token_store(found, val, val_len);
}

static const token_source_fn token_sources[] = {
    [CFG_TOKEN_HEADER] = token_from_header,
    [CFG_TOKEN_QUERY] = token_from_query,
    [CFG_TOKEN_COOKIE] = token_from_cookie,
    [CFG_TOKEN_SUBPROTOCOL] = token_from_subprotocol,
};

enum token_status
token_extract(const struct token_input *in, const struct cfg_token_source *sources,
              size_t nsources, struct token_found *found)
{
    found->kind = 0;
    found->source = NULL;
    found->token_len = 0;
    found->token[0] = '\0';

    for (size_t i = 0; i < nsources; i++) {
        size_t kind = (size_t)sources[i].kind;
        if (kind >= sizeof(token_sources) / sizeof(token_sources[0]) ||
            token_sources[kind] == NULL)
            continue;
        enum token_status st = token_sources[kind](in, sources[i].name, found);
        if (st == TOKEN_NONE)
            continue;
        if (st == TOKEN_OK) {
            found->kind = sources[i].kind;
            found->source = &sources[i];
            return TOKEN_OK;
        }
        /* The first source that carries a credential decides, even when it
         * cannot be read: falling through to the next would let a client
         * pick which source the gateway believes. */
        found->token_len = 0;
        found->token[0] = '\0';
        return TOKEN_MALFORMED;
    }
    return TOKEN_NONE;
}
