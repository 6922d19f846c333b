/* http1_parse: a strict HTTP/1.1 request- and response-head parser over (buf, len). */
#include "gateway/http1_parse.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Character classes, one bit per context a byte may appear in. */
enum {
    C_TOKEN = 1, /* tchar (RFC 9110 §5.6.2): method and field names */
    C_VCHAR = 2, /* visible ASCII: the request-target */
    C_FIELD = 4, /* field-value content: HTAB, SP, VCHAR, obs-text */
    C_STOP = 8,  /* CR, LF and the controls no context allows (all but HTAB, DEL too) */
};

#define K (C_TOKEN | C_VCHAR | C_FIELD)
#define P (C_VCHAR | C_FIELD)
#define F C_FIELD
#define S C_STOP
static const unsigned char char_class[256] = {
    /* 00 */ S, S, S, S, S, S, S, S, S, F, S, S, S, S, S, S,
    /* 10 */ S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S,
    /* 20 */ F, K, P, K, K, K, K, K, P, P, K, K, P, K, K, P,
    /* 30 */ K, K, K, K, K, K, K, K, K, K, P, P, P, P, P, P,
    /* 40 */ P, K, K, K, K, K, K, K, K, K, K, K, K, K, K, K,
    /* 50 */ K, K, K, K, K, K, K, K, K, K, K, P, P, P, K, K,
    /* 60 */ K, K, K, K, K, K, K, K, K, K, K, K, K, K, K, K,
    /* 70 */ K, K, K, K, K, K, K, K, K, K, K, P, K, P, K, S,
    /* 80 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* 90 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* a0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* b0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* c0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* d0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* e0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
    /* f0 */ F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F,
};
#undef K
#undef P
#undef F
#undef S

#define CLASS(p) char_class[(unsigned char)*(p)]
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* Nonzero when one of the 8 bytes at p is a control character (below 0x20, or
 * DEL): lets the hot loops skip a word at a time over ordinary text. Exact as
 * a yes/no answer for any byte order (Hacker's Delight "hasless"). */
static inline uint64_t
word_has_ctl(const char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t w, del;
    memcpy(&w, p, sizeof(w));
    del = w ^ (ones * 0x7f);
    return (((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs;
}

/* The parse position over buf[0..end) and where an error is reported. */
struct cursor {
    const char *buf;
    const char *p;
    const char *end;
    struct http1_error *err;
};

static int
fail(struct cursor *c, const char *at, int status, const char *reason)
{
    c->err->status = status;
    c->err->reason = reason;
    c->err->offset = (size_t)(at - c->buf);
    return -1;
}

/* True when buf[from..len) shows enough for the full parse to conclude: the
 * blank line that ends the head, or bytes no head may contain anywhere (a
 * control character, a bare CR or LF, a line starting with whitespace).
 * Every such byte is looked at with at most one byte of lookahead, so resuming
 * one byte before the previous length finds everything a byte-wise feed adds. */
static bool
head_decidable(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++) {
        while (len - i >= 8 && !word_has_ctl(buf + i))
            i += 8;
        if (i == len)
            break;
        unsigned char ch = (unsigned char)buf[i];
        if (!(char_class[ch] & C_STOP))
            continue;
        if (ch == '\r') {
            if (i + 1 == len)
                return false;
            if (buf[i + 1] != '\n')
                return true; /* bare CR */
            if (i >= 2 && buf[i - 2] == '\r' && buf[i - 1] == '\n')
                return true; /* the blank line */
        } else if (ch == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return true; /* bare LF */
            if (i + 1 < len && IS_OWS(buf[i + 1]))
                return true; /* obs-fold */
        } else {
            return true;
        }
    }
    return false;
}

/* Consumes the CRLF that must be at c->p, where its callers saw a CR or LF. */
static int
expect_crlf(struct cursor *c)
{
    if (c->p == c->end)
        return -2;
    if (*c->p == '\n')
        return fail(c, c->p, 400, "bare LF");
    if (c->p + 1 == c->end)
        return -2;
    if (c->p[1] != '\n')
        return fail(c, c->p, 400, "bare CR");
    c->p += 2;
    return 0;
}

/* Reports why a line stopped at c->p, a byte its context does not allow. */
static int
bad_byte(struct cursor *c, const char *reason)
{
    if (*c->p == '\n')
        return fail(c, c->p, 400, "bare LF");
    if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] != '\n')
        return fail(c, c->p, 400, "bare CR");
    return fail(c, c->p, 400, reason);
}

/* "HTTP/" DIGIT "." DIGIT, of which only 1.0 and 1.1 are accepted. */
static int
parse_version(struct cursor *c, int *minor)
{
    static const char pattern[] = "HTTP/#.#"; /* '#' is a digit */
    const char *v = c->p;
    for (size_t i = 0; pattern[i] != '\0'; i++, c->p++) {
        if (c->p == c->end)
            return -2;
        bool ok = pattern[i] == '#' ? *c->p >= '0' && *c->p <= '9' : *c->p == pattern[i];
        if (!ok)
            return bad_byte(c, "invalid HTTP version");
    }
    if (v[5] != '1')
        return fail(c, v + 5, 400, "unsupported HTTP version");
    if (v[7] > '1')
        return fail(c, v + 7, 400, "unsupported HTTP version");
    *minor = v[7] - '0';
    return 0;
}

/* method SP request-target SP HTTP-version CRLF (RFC 9112 §3). */
static int
parse_request_line(struct cursor *c, struct http1_request *req)
{
    req->method = c->p;
    while (c->p < c->end && (CLASS(c->p) & C_TOKEN))
        c->p++;
    if (c->p == c->end)
        return -2;
    if (*c->p != ' ' || c->p == req->method)
        return bad_byte(c, "invalid method");
    req->method_len = (size_t)(c->p - req->method);
    c->p++;

    req->target = c->p;
    while (c->p < c->end && (CLASS(c->p) & C_VCHAR))
        c->p++;
    if (c->p == c->end)
        return -2;
    if (*c->p != ' ' || c->p == req->target)
        return bad_byte(c, *c->p == '\r' && c->p != req->target
                               ? "missing HTTP version"
                               : "invalid request-target");
    req->target_len = (size_t)(c->p - req->target);
    c->p++;

    int r = parse_version(c, &req->minor_version);
    if (r != 0)
        return r;
    if (c->p < c->end && *c->p != '\r' && *c->p != '\n')
        return fail(c, c->p, 400, "invalid HTTP version");
    return expect_crlf(c);
}

/* HTTP-version SP status-code SP [reason-phrase] CRLF (RFC 9112 §4); the SP
 * before an empty reason may be missing, as many servers send it. */
static int
parse_status_line(struct cursor *c, struct http1_response *resp)
{
    int r = parse_version(c, &resp->minor_version);
    if (r != 0)
        return r;
    if (c->p == c->end)
        return -2;
    if (*c->p != ' ')
        return bad_byte(c, "invalid HTTP version");
    c->p++;

    const char *code = c->p;
    int status = 0;
    for (int i = 0; i < 3; i++, c->p++) {
        if (c->p == c->end)
            return -2;
        if (*c->p < '0' || *c->p > '9')
            return bad_byte(c, "invalid status code");
        status = status * 10 + (*c->p - '0');
    }
    if (status < 100 || status > 599)
        return fail(c, code, 400, "invalid status code");
    resp->status = status;
    if (c->p == c->end)
        return -2;
    resp->reason = c->p; /* an empty reason is an empty view, never NULL */
    if (*c->p == ' ') {
        resp->reason = ++c->p;
        while (c->end - c->p >= 8 && !word_has_ctl(c->p))
            c->p += 8;
        while (c->p < c->end && (CLASS(c->p) & C_FIELD))
            c->p++;
        if (c->p == c->end)
            return -2;
        if (*c->p != '\r')
            return bad_byte(c, "invalid reason phrase");
        resp->reason_len = (size_t)(c->p - resp->reason);
    } else if (*c->p != '\r' && *c->p != '\n') {
        return bad_byte(c, "invalid status code");
    }
    return expect_crlf(c);
}

/* One field line, name ":" OWS value OWS CRLF (RFC 9112 §5), at c->p. */
static int
parse_field(struct cursor *c, struct http1_header *h)
{
    h->name = c->p;
    while (c->p < c->end && (CLASS(c->p) & C_TOKEN))
        c->p++;
    if (c->p == c->end)
        return -2;
    if (*c->p != ':') {
        if (IS_OWS(*c->p) && c->p != h->name)
            return fail(c, c->p, 400, "whitespace before colon");
        return bad_byte(c, "invalid header name");
    }
    if (c->p == h->name)
        return fail(c, c->p, 400, "empty header name");
    h->name_len = (size_t)(c->p - h->name);
    c->p++;

    while (c->p < c->end && IS_OWS(*c->p))
        c->p++;
    h->value = c->p;
    while (c->end - c->p >= 8 && !word_has_ctl(c->p))
        c->p += 8;
    while (c->p < c->end && (CLASS(c->p) & C_FIELD))
        c->p++;
    if (c->p == c->end)
        return -2;
    if (*c->p != '\r')
        return bad_byte(c, "invalid header value");
    const char *stop = c->p;
    while (stop > h->value && IS_OWS(stop[-1]))
        stop--;
    h->value_len = (size_t)(stop - h->value);
    return expect_crlf(c);
}

/* The field lines after the start line and the blank line that ends them;
 * returns the head's length. */
static int
parse_fields(struct cursor *c, struct http1_header *headers, size_t *num_headers)
{
    int r;
    for (;;) {
        if (c->p == c->end)
            return -2;
        if (*c->p == '\r' || *c->p == '\n') {
            if ((r = expect_crlf(c)) != 0)
                return r;
            break;
        }
        if (IS_OWS(*c->p))
            return fail(c, c->p, 400, "obs-fold");
        if (*num_headers == HTTP1_MAX_HEADERS)
            return fail(c, c->p, 431, "too many headers");
        if ((r = parse_field(c, &headers[*num_headers])) != 0)
            return r;
        (*num_headers)++;
    }
    return (int)(c->p - c->buf);
}

/* The whole request head from the start, sequentially: the first error wins. */
static int
parse_request_head(struct cursor *c, struct http1_request *req)
{
    int r;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
     * the request-line; one is ignored, so that a run of them stays cheap. */
    if (c->end - c->p >= 2 && c->p[0] == '\r' && c->p[1] == '\n')
        c->p += 2;
    if ((r = parse_request_line(c, req)) != 0)
        return r;
    return parse_fields(c, req->headers, &req->num_headers);
}

/* Clears *err and bounds len; false when buf[0..len) cannot decide yet. */
static bool
parse_start(const char *buf, size_t *len, size_t last_len, struct http1_error *err)
{
    err->status = 0;
    err->reason = NULL;
    err->offset = 0;

    /* A head longer than an int can express never completes; the caller's
     * head cap answers it long before. */
    if (*len > INT_MAX)
        *len = INT_MAX;
    size_t from = last_len > 0 && last_len <= *len ? last_len - 1 : 0;
    return head_decidable(buf, *len, from);
}

int
http1_parse_request(const char *buf, size_t len, size_t last_len,
                    struct http1_request *req, struct http1_error *err)
{
    req->method = req->target = NULL;
    req->method_len = req->target_len = 0;
    req->minor_version = -1;
    req->num_headers = 0;
    if (!parse_start(buf, &len, last_len, err))
        return -2;

    struct cursor c = {.buf = buf, .p = buf, .end = buf + len, .err = err};
    return parse_request_head(&c, req);
}

int
http1_parse_response(const char *buf, size_t len, size_t last_len,
                     struct http1_response *resp, struct http1_error *err)
{
    resp->minor_version = -1;
    resp->status = 0;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->num_headers = 0;
    if (!parse_start(buf, &len, last_len, err))
        return -2;

    struct cursor c = {.buf = buf, .p = buf, .end = buf + len, .err = err};
    int r = parse_status_line(&c, resp);
    if (r != 0)
        return r;
    return parse_fields(&c, resp->headers, &resp->num_headers);
}

bool
http1_str_ieq(const char *s, size_t len, const char *lit)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)lit[i];
        if (b == '\0')
            return false;
        if (a >= 'A' && a <= 'Z')
            a |= 0x20;
        if (b >= 'A' && b <= 'Z')
            b |= 0x20;
        if (a != b)
            return false;
    }
    return lit[len] == '\0';
}

int
http1_find_header(const struct http1_request *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (http1_str_ieq(req->headers[i].name, req->headers[i].name_len, name))
            return (int)i;
    return -1;
}

size_t
http1_header_count(const struct http1_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        if (http1_str_ieq(req->headers[i].name, req->headers[i].name_len, name))
            n++;
    return n;
}

/* Elements are split at commas outside quoted-strings (RFC 9110 §5.6.1,
 * §5.6.4), so that an extension parameter such as x="a,b" stays whole. */
bool
http1_list_next(const char *value, size_t len, size_t *pos, const char **elem,
                size_t *elem_len)
{
    size_t i = *pos;
    while (i < len && (IS_OWS(value[i]) || value[i] == ','))
        i++;
    if (i >= len) {
        *pos = len;
        return false;
    }
    size_t start = i;
    bool quoted = false;
    for (; i < len; i++) {
        if (quoted) {
            if (value[i] == '\\' && i + 1 < len)
                i++;
            else if (value[i] == '"')
                quoted = false;
        } else if (value[i] == '"') {
            quoted = true;
        } else if (value[i] == ',') {
            break;
        }
    }
    size_t stop = i;
    while (stop > start && IS_OWS(value[stop - 1]))
        stop--;
    *elem = value + start;
    *elem_len = stop - start;
    *pos = i < len ? i + 1 : len;
    return true;
}

bool
http1_token_list_contains(const char *value, size_t len, const char *token)
{
    size_t pos = 0;
    const char *elem;
    size_t elem_len;
    while (http1_list_next(value, len, &pos, &elem, &elem_len))
        if (http1_str_ieq(elem, elem_len, token))
            return true;
    return false;
}

bool
http1_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}
