/* origin: matches a request's Origin against a route's allow-list. */
#ifndef WSGATE_ORIGIN_H
#define WSGATE_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* True when origin[0..len) (an Origin header value) matches one of the n
 * patterns, which the configuration has validated and lower-cased:
 * "SCHEME://HOST" or "SCHEME://HOST:PORT", where HOST may start with a
 * wildcard label "*." that matches one or more labels in front of the rest
 * (https + *.example.com matches a.example.com and a.b.example.com, never
 * example.com itself). Scheme and host compare case-insensitively; the
 * port must be the same, or absent from both (a browser leaves a default
 * port out). "null" and anything that is not SCHEME://HOST[:PORT] match
 * nothing. Pure. */
bool origin_allowed(const char *const *patterns, size_t n, const char *origin,
                    size_t len);

#endif
