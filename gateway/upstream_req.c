/* upstream_req: builds the upgrade request head a proxied route sends upstream. */
#include "gateway/upstream_req.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* The Connection-named headers are a bitmap over the request's headers. */
_Static_assert(HTTP1_MAX_HEADERS <= 64, "one bit per header in a uint64_t");

/* How a client header travels upstream. */
enum req_fate {
    FATE_KEEP = 0,      /* forwarded as sent */
    FATE_DROP,          /* hop-by-hop, or replaced by one the gateway writes */
    FATE_XFF,           /* X-Forwarded-For: its elements precede the client address */
    FATE_REQUEST_ID,    /* X-Request-Id: the client's when usable, else ours */
    FATE_PROTOCOL,      /* Sec-WebSocket-Protocol: one merged list, less bearer.* */
    FATE_EXTENSIONS,    /* Sec-WebSocket-Extensions: one merged list */
    FATE_COOKIE,        /* Cookie: less the consumed cookie */
    FATE_AUTHORIZATION, /* Authorization: dropped when the gateway consumed it */
    FATE_SKIP,          /* named by Connection, or an identity header: left out */
};

/* Client headers that do not simply travel on, by lower-case name; the first
 * entry that matches wins. `ours` marks the names the gateway writes itself
 * (or forwards from the handshake), which no identity header may take. */
static const struct {
    const char *name;
    bool prefix; /* matches every name starting with it */
    enum req_fate fate;
    bool ours;
} req_headers[] = {
    {"connection", false, FATE_DROP, true},
    {"keep-alive", false, FATE_DROP, true},
    {"proxy-", true, FATE_DROP, true}, /* Proxy-Connection, Proxy-Authorization */
    {"te", false, FATE_DROP, true},
    {"trailer", false, FATE_DROP, true},
    {"transfer-encoding", false, FATE_DROP, true},
    {"upgrade", false, FATE_DROP, true},
    {"http2-settings", false, FATE_DROP, true}, /* h2c upgrades only */
    {"host", false, FATE_DROP, true},
    {"forwarded", false, FATE_DROP, true},
    {"x-forwarded-for", false, FATE_XFF, true},
    {"x-forwarded-", true, FATE_DROP, true},
    {"x-real-ip", false, FATE_DROP, true},
    {"x-request-id", false, FATE_REQUEST_ID, true},
    {"sec-websocket-protocol", false, FATE_PROTOCOL, true},
    {"sec-websocket-extensions", false, FATE_EXTENSIONS, true},
    {"sec-websocket-", true, FATE_KEEP, true}, /* Key, Version: forwarded as sent */
    {"cookie", false, FATE_COOKIE, false},
    {"authorization", false, FATE_AUTHORIZATION, false},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The Sec-WebSocket-Protocol element that carries a credential (auth/token.c). */
static const char bearer_prefix[] = "bearer.";

/* The longest client X-Request-Id kept. */
#define REQUEST_ID_MAX 128

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII lower case, with '_' read as '-': CGI-style upstreams map both to
 * the same variable, so "X_Auth_Subject" would spoof "X-Auth-Subject". */
static unsigned char
fold(char c)
{
    unsigned char u = (unsigned char)c;
    if (u >= 'A' && u <= 'Z')
        return (unsigned char)(u | 0x20);
    return u == '_' ? '-' : u;
}

/* True when name[0..len) equals lit (or starts with it, for a prefix) under fold. */
static bool
name_matches(const char *name, size_t len, const char *lit, bool prefix)
{
    size_t i = 0;
    for (; lit[i] != '\0'; i++)
        if (i == len || fold(name[i]) != fold(lit[i]))
            return false;
    return prefix || i == len;
}

static bool
views_match(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (fold(a[i]) != fold(b[i]))
            return false;
    return true;
}

static enum req_fate
header_fate(const struct http1_header *h)
{
    for (size_t i = 0; i < NELEM(req_headers); i++) {
        if (!name_matches(h->name, h->name_len, req_headers[i].name,
                          req_headers[i].prefix))
            continue;
        /* A name that matches only through '_' is a look-alike: never
         * read for its meaning, only removed. */
        if (memchr(h->name, '_', h->name_len) != NULL && req_headers[i].fate != FATE_KEEP)
            return FATE_DROP;
        return req_headers[i].fate;
    }
    return FATE_KEEP;
}

/* tchar (RFC 9110 §5.6.2). */
static bool
is_tchar(unsigned char c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr(specials, c) != NULL);
}

/* An identity header's name: a token that is not one the gateway writes. */
static bool
identity_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)name[i]))
            return false;
    for (size_t i = 0; i < NELEM(req_headers); i++)
        if (req_headers[i].ours &&
            name_matches(name, len, req_headers[i].name, req_headers[i].prefix))
            return false;
    return true;
}

static bool
is_identity(const struct upstream_req_params *p, const struct http1_header *h)
{
    for (size_t i = 0; i < p->nidentity; i++)
        if (name_matches(h->name, h->name_len, p->identity[i].name, false))
            return true;
    return false;
}

/* Headers named by a Connection header (RFC 9110 §7.6.1), bit i for header i. */
static uint64_t
connection_named(const struct http1_request *req)
{
    uint64_t named = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *c = &req->headers[i];
        if (!name_matches(c->name, c->name_len, "connection", false))
            continue;
        size_t pos = 0, elen;
        const char *e;
        while (http1_list_next(c->value, c->value_len, &pos, &e, &elen))
            for (size_t j = 0; j < req->num_headers; j++)
                if (views_match(req->headers[j].name, req->headers[j].name_len, e, elen))
                    named |= UINT64_C(1) << j;
    }
    return named;
}

/* The output, which stops growing (and remembers it) once cap is reached. */
struct out {
    char *buf;
    size_t cap;
    size_t len;
    bool over;
    uint8_t fate[HTTP1_MAX_HEADERS]; /* each client header's, from classify() */
};

static void
put(struct out *o, const char *s, size_t n)
{
    if (o->over || n > o->cap - o->len) {
        o->over = true;
        return;
    }
    if (n > 0)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_line(struct out *o, const char *name, size_t name_len, const char *value,
         size_t value_len)
{
    put(o, name, name_len);
    put(o, ": ", 2);
    put(o, value, value_len);
    put(o, "\r\n", 2);
}

/* A list line written element by element, left out when no element is. */
struct list_line {
    size_t start; /* o->len before the name */
    size_t count; /* elements written */
};

static void
list_begin(struct out *o, struct list_line *l, const char *name)
{
    l->start = o->len;
    l->count = 0;
    put_str(o, name);
    put(o, ": ", 2);
}

static void
list_add(struct out *o, struct list_line *l, const char *sep, const char *e, size_t n)
{
    if (l->count++ > 0)
        put_str(o, sep);
    put(o, e, n);
}

static void
list_end(struct out *o, struct list_line *l)
{
    if (l->count == 0 && !o->over)
        o->len = l->start;
    else
        put(o, "\r\n", 2);
}

/* The next element of value[0..len) split at every `sep` (no quoting), OWS
 * trimmed, empty ones skipped: how auth/token.c reads cookies and
 * subprotocols, so that exactly what it consumed is what is removed. */
static bool
split_next(const char *value, size_t len, char sep, size_t *pos, const char **e,
           size_t *n)
{
    while (*pos < len) {
        const char *s = value + *pos;
        const char *end = memchr(s, sep, len - *pos);
        size_t seg = end != NULL ? (size_t)(end - s) : len - *pos;
        *pos += seg + (end != NULL);
        while (seg > 0 && is_ows(*s)) {
            s++;
            seg--;
        }
        while (seg > 0 && is_ows(s[seg - 1]))
            seg--;
        if (seg > 0) {
            *e = s;
            *n = seg;
            return true;
        }
    }
    return false;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* True when the first segment of s[0..n) is "." or "..", spelled with dots
 * or %2e and ended by '/', '\\' or their encodings: the rules by which
 * ws_handshake_target refused such segments in the client's path. */
static bool
first_segment_is_dots(const char *s, size_t n)
{
    size_t seg_len = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%' && n - i >= 3 && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            ch = hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]);
            i += 2;
        }
        if (ch == '/' || ch == '\\')
            break;
        seg_len++;
        dots += ch == '.';
    }
    return seg_len > 0 && seg_len == dots && dots <= 2;
}

/* upstream_path + the client path less strip_len, joined by one '/'.
 * False when the strip cut a segment so that its rest is a dot-segment
 * ("/bar../x" under a "/bar" prefix): sent on, it would climb out of the
 * upstream's path. */
static bool
put_path(struct out *o, const struct upstream_req_params *p)
{
    const struct ws_handshake *hs = p->hs;
    size_t strip = p->strip_len < hs->path_len ? p->strip_len : hs->path_len;
    const char *rest = hs->path + strip;
    size_t rest_len = hs->path_len - strip;
    const char *prefix = p->upstream_path != NULL ? p->upstream_path : "";

    put_str(o, prefix);
    if (rest_len == 0) {
        if (prefix[0] == '\0')
            put(o, "/", 1);
        return true;
    }
    if (rest[0] != '/') {
        if (first_segment_is_dots(rest, rest_len))
            return false;
        put(o, "/", 1);
    }
    put(o, rest, rest_len);
    return true;
}

/* The query less every drop_query_param parameter (matched by its raw
 * name); the others byte for byte, in order. */
static void
put_query(struct out *o, const struct upstream_req_params *p)
{
    const char *q = p->hs->query;
    size_t qlen = p->hs->query_len;
    if (q == NULL)
        return;
    if (p->drop_query_param == NULL) {
        put(o, "?", 1);
        put(o, q, qlen);
        return;
    }
    size_t name_len = strlen(p->drop_query_param);
    size_t start = o->len, kept = 0;
    put(o, "?", 1);
    for (size_t pos = 0;;) {
        const char *seg = q + pos;
        const char *amp = memchr(seg, '&', qlen - pos);
        size_t seg_len = amp != NULL ? (size_t)(amp - seg) : qlen - pos;
        const char *eq = memchr(seg, '=', seg_len);
        size_t key_len = eq != NULL ? (size_t)(eq - seg) : seg_len;
        if (key_len != name_len || memcmp(seg, p->drop_query_param, name_len) != 0) {
            if (kept++ > 0)
                put(o, "&", 1);
            put(o, seg, seg_len);
        }
        if (amp == NULL)
            break;
        pos += seg_len + 1;
    }
    if (kept == 0 && !o->over)
        o->len = start;
}

/* Each client header's fate, worked out once for the passes below: those
 * named by Connection and identity headers are left out whatever their
 * name says. */
static void
classify(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    uint64_t named = connection_named(req);
    for (size_t i = 0; i < req->num_headers; i++)
        o->fate[i] = (named >> i & 1) != 0 || is_identity(p, &req->headers[i])
                         ? FATE_SKIP
                         : (uint8_t)header_fate(&req->headers[i]);
}

/* Every Sec-WebSocket-Protocol element on one line, less bearer.* entries. */
static void
put_protocols(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    const size_t plen = sizeof(bearer_prefix) - 1;
    struct list_line l;
    list_begin(o, &l, "Sec-WebSocket-Protocol");
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (o->fate[i] != FATE_PROTOCOL)
            continue;
        size_t pos = 0, n;
        const char *e;
        while (split_next(h->value, h->value_len, ',', &pos, &e, &n)) {
            if (p->drop_bearer_protocol && n >= plen &&
                memcmp(e, bearer_prefix, plen) == 0)
                continue;
            list_add(o, &l, ", ", e, n);
        }
    }
    list_end(o, &l);
}

/* Every Sec-WebSocket-Extensions element on one line, as sent. */
static void
put_extensions(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    struct list_line l;
    list_begin(o, &l, "Sec-WebSocket-Extensions");
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (o->fate[i] != FATE_EXTENSIONS)
            continue;
        size_t pos = 0, n;
        const char *e;
        while (http1_list_next(h->value, h->value_len, &pos, &e, &n))
            list_add(o, &l, ", ", e, n);
    }
    list_end(o, &l);
}

/* One Cookie line less the cookie named drop_cookie (exact name, as
 * auth/token.c matches it); left out when no cookie remains. */
static void
put_cookie(struct out *o, const struct http1_header *h, const char *drop)
{
    size_t drop_len = strlen(drop), pos = 0, n;
    const char *e;
    struct list_line l;
    list_begin(o, &l, "Cookie");
    while (split_next(h->value, h->value_len, ';', &pos, &e, &n)) {
        const char *eq = memchr(e, '=', n);
        if (eq != NULL) {
            size_t k = (size_t)(eq - e);
            while (k > 0 && is_ows(e[k - 1]))
                k--;
            if (k == drop_len && memcmp(e, drop, drop_len) == 0)
                continue;
        }
        list_add(o, &l, "; ", e, n);
    }
    list_end(o, &l);
}

/* The client's headers in order, less those the gateway drops or replaces. */
static void
put_client_headers(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    bool protocols = false, extensions = false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        switch ((enum req_fate)o->fate[i]) {
        case FATE_SKIP:
        case FATE_DROP:
        case FATE_XFF:
        case FATE_REQUEST_ID:
            continue;
        case FATE_PROTOCOL:
            if (!protocols)
                put_protocols(o, p);
            protocols = true;
            continue;
        case FATE_EXTENSIONS:
            if (!extensions)
                put_extensions(o, p);
            extensions = true;
            continue;
        case FATE_COOKIE:
            if (p->drop_cookie != NULL) {
                put_cookie(o, h, p->drop_cookie);
                continue;
            }
            break;
        case FATE_AUTHORIZATION:
            if (p->drop_authorization)
                continue;
            break;
        case FATE_KEEP:
            break;
        }
        put_line(o, h->name, h->name_len, h->value, h->value_len);
    }
}

/* X-Forwarded-For: the client's list, then the client's address. */
static void
put_forwarded_for(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    struct list_line l;
    list_begin(o, &l, "X-Forwarded-For");
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (o->fate[i] != FATE_XFF)
            continue;
        size_t pos = 0, n;
        const char *e;
        while (http1_list_next(h->value, h->value_len, &pos, &e, &n))
            list_add(o, &l, ", ", e, n);
    }
    if (p->client_ip != NULL && p->client_ip[0] != '\0')
        list_add(o, &l, ", ", p->client_ip, strlen(p->client_ip));
    list_end(o, &l);
}

/* The client's X-Request-Id when it sent exactly one of at most
 * REQUEST_ID_MAX visible ASCII characters, else request_id (or none). */
static void
put_request_id(struct out *o, const struct upstream_req_params *p)
{
    const struct http1_request *req = p->req;
    const struct http1_header *mine = NULL;
    size_t count = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        if (o->fate[i] != FATE_REQUEST_ID)
            continue;
        mine = &req->headers[i];
        count++;
    }
    bool usable = count == 1 && mine->value_len > 0 && mine->value_len <= REQUEST_ID_MAX;
    for (size_t i = 0; usable && i < mine->value_len; i++)
        usable = mine->value[i] > ' ' && mine->value[i] < 0x7f;
    if (usable)
        put_line(o, "X-Request-Id", 12, mine->value, mine->value_len);
    else if (p->request_id != NULL && p->request_id[0] != '\0')
        put_line(o, "X-Request-Id", 12, p->request_id, strlen(p->request_id));
}

/* What the caller passes that ends up in the head: nothing that could break
 * a line or take a name the gateway writes. */
static bool
params_ok(const struct upstream_req_params *p)
{
    const char *host = p->host != NULL ? p->host : p->hs->host;
    size_t host_len = p->host != NULL ? strlen(p->host) : p->hs->host_len;
    if (host == NULL || host_len == 0 || !http1_value_ok(host, host_len))
        return false;
    if (p->upstream_path != NULL) {
        const unsigned char *u = (const unsigned char *)p->upstream_path;
        if (u[0] != '\0' && u[0] != '/')
            return false;
        for (; *u != '\0'; u++)
            if (*u <= ' ' || *u >= 0x7f || *u == '?' || *u == '#')
                return false;
    }
    const char *plain[] = {p->client_ip, p->request_id};
    for (size_t i = 0; i < NELEM(plain); i++)
        if (plain[i] != NULL && !http1_value_ok(plain[i], strlen(plain[i])))
            return false;
    if (p->client_ip != NULL && strchr(p->client_ip, ',') != NULL)
        return false;
    if (p->nidentity > 0 && p->identity == NULL)
        return false;
    for (size_t i = 0; i < p->nidentity; i++) {
        const struct upstream_header *h = &p->identity[i];
        if (h->name == NULL || !identity_name_ok(h->name) ||
            (h->value != NULL && !http1_value_ok(h->value, strlen(h->value))))
            return false;
    }
    return true;
}

int
upstream_req_build(const struct upstream_req_params *p, char *out, size_t cap)
{
    if (p->req == NULL || p->hs == NULL || p->hs->path == NULL || !params_ok(p))
        return -1;
    struct out o = {.buf = out, .cap = out != NULL ? cap : 0};
    classify(&o, p);

    put_str(&o, "GET ");
    if (!put_path(&o, p))
        return -1;
    put_query(&o, p);
    put_str(&o, " HTTP/1.1\r\nHost: ");
    if (p->host != NULL)
        put_str(&o, p->host);
    else
        put(&o, p->hs->host, p->hs->host_len);
    put_str(&o, "\r\n");

    put_client_headers(&o, p);

    put_str(&o, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    put_forwarded_for(&o, p);
    put_str(&o, p->client_tls ? "X-Forwarded-Proto: https\r\n"
                              : "X-Forwarded-Proto: http\r\n");
    if (p->hs->host != NULL)
        put_line(&o, "X-Forwarded-Host", 16, p->hs->host, p->hs->host_len);
    put_request_id(&o, p);
    /* A NULL value (no authenticated identity) still removed the client's. */
    for (size_t i = 0; i < p->nidentity; i++)
        if (p->identity[i].value != NULL)
            put_line(&o, p->identity[i].name, strlen(p->identity[i].name),
                     p->identity[i].value, strlen(p->identity[i].value));
    put_str(&o, "\r\n");

    if (o.over || o.len > INT_MAX)
        return -1;
    return (int)o.len;
}

/* One header's merged list as forwarded, without its name and CRLF. */
static int
list_only(const struct upstream_req_params *p, char *out, size_t cap,
          void (*put_list)(struct out *, const struct upstream_req_params *),
          size_t name_len)
{
    if (p->req == NULL)
        return -1;
    struct out o = {.buf = out, .cap = out != NULL ? cap : 0};
    classify(&o, p);
    put_list(&o, p);
    if (o.over || o.len > INT_MAX)
        return -1;
    if (o.len == 0) {
        out[0] = '\0'; /* list_begin's name fitted, so cap > 0 */
        return 0;
    }
    size_t n = o.len - name_len - 2;
    memmove(out, out + name_len, n);
    out[n] = '\0';
    return (int)n;
}

int
upstream_req_protocols(const struct upstream_req_params *p, char *out, size_t cap)
{
    return list_only(p, out, cap, put_protocols, sizeof("Sec-WebSocket-Protocol: ") - 1);
}

int
upstream_req_extensions(const struct upstream_req_params *p, char *out, size_t cap)
{
    return list_only(p, out, cap, put_extensions,
                     sizeof("Sec-WebSocket-Extensions: ") - 1);
}
