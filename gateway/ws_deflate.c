/* ws_deflate: permessage-deflate offers (RFC 7692 §5, §7) and its zlib codec. */
#include "gateway/ws_deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
/* The longest parameter value worth keeping; longer ones are never valid. */
#define PARAM_VALUE_MAX 16
/* The byte sequence a sync flush ends with (RFC 7692 §7.2.1). */
static const uint8_t ws_deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1, RFC 9110 §5.6) ---- */

static bool
is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && memchr(extra, c, sizeof(extra) - 1) != NULL);
}

/* A cursor over the field value. */
struct ext_cursor {
    const char *s;
    size_t len;
    size_t i;
};

static void
skip_ows(struct ext_cursor *c)
{
    while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t'))
        c->i++;
}

/* Reads a token; returns its length (0 when there is none). */
static size_t
read_token(struct ext_cursor *c, const char **tok)
{
    size_t start = c->i;
    while (c->i < c->len && is_tchar((unsigned char)c->s[c->i]))
        c->i++;
    *tok = c->s + start;
    return c->i - start;
}

/* Reads a token or a quoted-string into out (unescaped, truncated to
 * PARAM_VALUE_MAX with *too_long set). Returns -1 on a syntax error. The
 * unescaped value of a quoted string must itself be a token (§9.1). */
static int
read_value(struct ext_cursor *c, char out[PARAM_VALUE_MAX + 1], size_t *out_len,
           bool *too_long)
{
    size_t n = 0;
    *too_long = false;
    if (c->i < c->len && c->s[c->i] == '"') {
        for (c->i++;; c->i++) {
            if (c->i >= c->len)
                return -1; /* unterminated */
            char ch = c->s[c->i];
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (++c->i >= c->len)
                    return -1;
                ch = c->s[c->i];
            }
            if (!is_tchar((unsigned char)ch))
                return -1;
            if (n < PARAM_VALUE_MAX)
                out[n++] = ch;
            else
                *too_long = true;
        }
        c->i++;
        if (n == 0)
            return -1;
    } else {
        const char *tok;
        size_t tl = read_token(c, &tok);
        if (tl == 0)
            return -1;
        n = tl < PARAM_VALUE_MAX ? tl : PARAM_VALUE_MAX;
        *too_long = tl > PARAM_VALUE_MAX;
        memcpy(out, tok, n);
    }
    out[n] = '\0';
    *out_len = n;
    return 0;
}

static bool
token_ieq(const char *tok, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(tok, want, len) == 0;
}

/* ---- one permessage-deflate offer ---- */

enum deflate_param {
    P_SERVER_NCT = 0,
    P_CLIENT_NCT,
    P_SERVER_BITS,
    P_CLIENT_BITS,
};

/* The parameters RFC 7692 §7.1 defines: whether each takes a value. */
static const struct {
    const char *name;
    enum { V_NONE, V_REQUIRED, V_OPTIONAL } value;
} deflate_params[] = {
    [P_SERVER_NCT] = {"server_no_context_takeover", V_NONE},
    [P_CLIENT_NCT] = {"client_no_context_takeover", V_NONE},
    [P_SERVER_BITS] = {"server_max_window_bits", V_REQUIRED},
    [P_CLIENT_BITS] = {"client_max_window_bits", V_OPTIONAL},
};

/* A window size: "8" to "15" with no leading zero; 0 when it is not one. */
static unsigned
window_bits(const char *v, size_t len, bool too_long)
{
    if (too_long || len == 0 || len > 2 || v[0] == '0')
        return 0;
    unsigned n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        n = n * 10 + (unsigned)(v[i] - '0');
    }
    return n >= 8 && n <= 15 ? n : 0;
}

/* The state of the offer being read. */
struct offer {
    bool deflate; /* it is permessage-deflate */
    bool ok;      /* no reason to decline it so far */
    unsigned seen;
    struct ws_deflate_params p;
};

static void
offer_param(struct offer *o, const char *name, size_t name_len, bool has_value,
            const char *v, size_t vlen, bool too_long)
{
    size_t k = 0;
    while (k < NELEMS(deflate_params) &&
           !token_ieq(name, name_len, deflate_params[k].name))
        k++;
    if (k == NELEMS(deflate_params) || (o->seen & (1u << k)) != 0) {
        o->ok = false; /* unknown, or given twice */
        return;
    }
    o->seen |= 1u << k;
    if ((deflate_params[k].value == V_NONE && has_value) ||
        (deflate_params[k].value == V_REQUIRED && !has_value)) {
        o->ok = false;
        return;
    }
    unsigned bits = has_value ? window_bits(v, vlen, too_long) : 15;
    if (bits == 0) {
        o->ok = false;
        return;
    }
    switch ((enum deflate_param)k) {
    case P_SERVER_NCT:
        o->p.server_no_context_takeover = true;
        break;
    case P_CLIENT_NCT:
        o->p.client_no_context_takeover = true;
        break;
    case P_SERVER_BITS:
        /* zlib cannot compress with a 256-byte window (see the header). */
        if (bits < 9)
            o->ok = false;
        o->p.server_max_window_bits = (uint8_t)bits;
        o->p.server_bits_in_response = true;
        break;
    case P_CLIENT_BITS:
        break; /* we inflate with the largest window: nothing to agree */
    }
}

/* Reads the parameters after an extension's name, up to the next ',' or
 * the end. Returns -1 on a syntax error. */
static int
read_params(struct ext_cursor *c, struct offer *o)
{
    for (;;) {
        skip_ows(c);
        if (c->i >= c->len || c->s[c->i] == ',')
            return 0;
        if (c->s[c->i] != ';')
            return -1;
        c->i++;
        skip_ows(c);
        const char *name;
        size_t name_len = read_token(c, &name);
        if (name_len == 0)
            return -1;
        skip_ows(c);
        char v[PARAM_VALUE_MAX + 1] = "";
        size_t vlen = 0;
        bool has_value = false, too_long = false;
        if (c->i < c->len && c->s[c->i] == '=') {
            c->i++;
            skip_ows(c);
            if (read_value(c, v, &vlen, &too_long) != 0)
                return -1;
            has_value = true;
        }
        if (o->deflate && o->ok)
            offer_param(o, name, name_len, has_value, v, vlen, too_long);
    }
}

enum ws_deflate_verdict
ws_deflate_negotiate(const char *value, size_t len, struct ws_deflate_params *out)
{
    struct ext_cursor c = {value, len, 0};
    bool accepted = false;
    struct ws_deflate_params chosen = {0};

    /* The whole value is read even after an acceptable offer, so that a
     * malformed tail is reported the same way wherever it is. */
    for (;;) {
        skip_ows(&c);
        while (c.i < c.len &&
               c.s[c.i] == ',') { /* empty list elements (RFC 9110 §5.6.1) */
            c.i++;
            skip_ows(&c);
        }
        if (c.i >= c.len)
            break;
        const char *name;
        size_t name_len = read_token(&c, &name);
        if (name_len == 0)
            return WS_DEFLATE_MALFORMED;
        struct offer o = {.deflate = token_ieq(name, name_len, "permessage-deflate"),
                          .ok = true,
                          .p = {.server_max_window_bits = 15}};
        if (read_params(&c, &o) != 0)
            return WS_DEFLATE_MALFORMED;
        if (o.deflate && o.ok && !accepted) {
            chosen = o.p;
            accepted = true;
        }
    }
    if (!accepted)
        return WS_DEFLATE_DECLINED;
    *out = chosen;
    return WS_DEFLATE_ACCEPTED;
}

size_t
ws_deflate_response(const struct ws_deflate_params *p, char out[WS_DEFLATE_RESPONSE_MAX])
{
    int n = snprintf(out, WS_DEFLATE_RESPONSE_MAX, "permessage-deflate%s%s",
                     p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     p->client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (p->server_bits_in_response)
        n += snprintf(out + n, WS_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; server_max_window_bits=%u", (unsigned)p->server_max_window_bits);
    return (size_t)n;
}

/* ---- the codec ---- */

struct ws_deflate {
    struct ws_deflate_params p;
    z_stream def;
    z_stream inf;
    bool def_live; /* deflateInit2 succeeded and deflateEnd is due */
    bool inf_live;
    bool inf_ended; /* a BFINAL block ended the stream, and nothing came after */
};

struct ws_deflate *
ws_deflate_new(const struct ws_deflate_params *p)
{
    struct ws_deflate *d = calloc(1, sizeof(*d));
    if (d != NULL)
        d->p = *p;
    return d;
}

static void
deflate_drop(struct ws_deflate *d)
{
    if (d->def_live)
        deflateEnd(&d->def);
    d->def_live = false;
}

static void
inflate_drop(struct ws_deflate *d)
{
    if (d->inf_live)
        inflateEnd(&d->inf);
    d->inf_live = false;
}

void
ws_deflate_free(struct ws_deflate *d)
{
    if (d == NULL)
        return;
    deflate_drop(d);
    inflate_drop(d);
    free(d);
}

int
ws_deflate_compress(struct ws_deflate *d, const uint8_t *in, size_t len, uint8_t **out,
                    size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len == 0) {
        /* An empty stored block (RFC 7692 §7.2.3.6): a sync flush right after
         * another one would emit nothing, which is not a valid payload. */
        if ((*out = calloc(1, 1)) == NULL)
            return -1;
        *out_len = 1;
        return 0;
    }
    if (!d->def_live) {
        memset(&d->def, 0, sizeof(d->def));
        /* Negative window bits: raw DEFLATE, no zlib header or checksum. */
        if (deflateInit2(&d->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                         -(int)d->p.server_max_window_bits, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        d->def_live = true;
    }
    /* deflateBound covers the blocks; a sync flush adds at most an empty
     * stored block and the bits before it. */
    size_t cap = (size_t)deflateBound(&d->def, (uLong)len) + 16;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        deflate_drop(d);
        return -1;
    }
    d->def.next_in = (Bytef *)in;
    d->def.avail_in = (uInt)len;
    size_t used = 0;
    for (;;) {
        d->def.next_out = buf + used;
        d->def.avail_out = (uInt)(cap - used);
        int rc = deflate(&d->def, Z_SYNC_FLUSH);
        used = cap - d->def.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            deflate_drop(d);
            return -1;
        }
        if (d->def.avail_out > 0 && d->def.avail_in == 0)
            break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            deflate_drop(d);
            return -1;
        }
        buf = bigger;
        cap *= 2;
    }
    /* A sync flush always ends with the empty stored block's 00 00 ff ff. */
    if (used >= 4 && memcmp(buf + used - 4, ws_deflate_tail, 4) == 0)
        used -= 4;
    if (d->p.server_no_context_takeover)
        deflate_drop(d);
    *out = buf;
    *out_len = used;
    return 0;
}

/* Makes room for more output: doubles buf up to limit + 1 bytes. */
static enum ws_inflate_result
inflate_grow(struct ws_inflate_buf *buf, size_t limit)
{
    if (buf->cap > limit)
        return WS_INFLATE_TOO_BIG;
    size_t cap = buf->cap < 256 ? 256 : buf->cap * 2;
    if (cap > limit + 1 || cap < buf->cap)
        cap = limit + 1;
    uint8_t *p = realloc(buf->data, cap);
    if (p == NULL)
        return WS_INFLATE_NOMEM;
    buf->data = p;
    buf->cap = cap;
    return WS_INFLATE_OK;
}

/* Runs the inflater over in[0..len) into buf. */
static enum ws_inflate_result
inflate_run(struct ws_deflate *d, const uint8_t *in, size_t len,
            struct ws_inflate_buf *buf, size_t limit)
{
    z_stream *z = &d->inf;
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    for (;;) {
        if (buf->cap == buf->len) {
            enum ws_inflate_result g = inflate_grow(buf, limit);
            if (g != WS_INFLATE_OK)
                return g;
        }
        z->next_out = buf->data + buf->len;
        z->avail_out = (uInt)(buf->cap - buf->len);
        if (z->avail_in > 0)
            d->inf_ended = false;
        int rc = inflate(z, Z_SYNC_FLUSH);
        buf->len = buf->cap - z->avail_out;
        if (buf->len > limit)
            return WS_INFLATE_TOO_BIG;
        if (rc == Z_STREAM_END) {
            /* BFINAL: what follows, if anything, is a new stream. */
            if (inflateReset(z) != Z_OK)
                return WS_INFLATE_BAD;
            d->inf_ended = true;
        } else if (rc == Z_MEM_ERROR) {
            return WS_INFLATE_NOMEM;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return WS_INFLATE_BAD;
        }
        if (z->avail_out == 0)
            continue; /* there may be more output pending */
        if (z->avail_in == 0)
            return WS_INFLATE_OK;
        if (rc == Z_BUF_ERROR)
            return WS_INFLATE_BAD; /* no progress with input and room: cannot happen */
    }
}

enum ws_inflate_result
ws_deflate_inflate(struct ws_deflate *d, const uint8_t *in, size_t len, bool last,
                   struct ws_inflate_buf *buf, size_t limit)
{
    if (!d->inf_live) {
        memset(&d->inf, 0, sizeof(d->inf));
        /* The largest window reads whatever window the client compresses with. */
        int rc = inflateInit2(&d->inf, -15);
        if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? WS_INFLATE_NOMEM : WS_INFLATE_BAD;
        d->inf_live = true;
    }
    enum ws_inflate_result r = WS_INFLATE_OK;
    if (len > 0)
        r = inflate_run(d, in, len, buf, limit);
    /* After a BFINAL block the sender had no sync flush to strip. */
    if (r == WS_INFLATE_OK && last && !d->inf_ended)
        r = inflate_run(d, ws_deflate_tail, sizeof(ws_deflate_tail), buf, limit);
    if (last)
        d->inf_ended = false;
    if (r != WS_INFLATE_OK || (last && d->p.client_no_context_takeover))
        inflate_drop(d);
    return r;
}
