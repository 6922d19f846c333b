/* token: finds a credential in a request's header, query, cookie or subprotocol. */
#ifndef WSGATE_TOKEN_H
#define WSGATE_TOKEN_H

#include <stddef.h>

#include "config/config.h"

/* The largest credential accepted, after percent-decoding. */
#define TOKEN_MAX 4096

/* A request header as a view; the same shape as the gateway's parser output. */
struct token_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The parts of a request the token sources read. */
struct token_input {
    const struct token_header *headers;
    size_t nheaders;
    const char *query; /* after '?', without it; NULL when none */
    size_t query_len;
};

/* Where a credential was found, so the gateway can strip exactly that. */
struct token_found {
    enum cfg_token_kind kind; /* 0 when no credential was found */
    /* The source it came from, which names the query parameter or cookie to
     * strip before the request goes on; NULL when none was found. */
    const struct cfg_token_source *source;
    char token[TOKEN_MAX + 1]; /* decoded, NUL-terminated */
    size_t token_len;
};

enum token_status {
    TOKEN_OK = 0,         /* found, in *found */
    TOKEN_NONE = -1,      /* no source carried a credential */
    TOKEN_MALFORMED = -2, /* a source carried a credential we cannot read:
                             bad percent-encoding, over TOKEN_MAX, a scheme
                             other than Bearer, an empty token */
};

/* Tries each source in order and returns at the first that carries one:
 * Authorization "Bearer <token>" (scheme case-insensitive), the query
 * parameter `name` (percent-decoded, '+' is a space), the cookie `name`
 * (from every Cookie header), or the Sec-WebSocket-Protocol element
 * "bearer.<token>". Pure: writes only *found. */
enum token_status token_extract(const struct token_input *in,
                                const struct cfg_token_source *sources, size_t nsources,
                                struct token_found *found);

#endif
