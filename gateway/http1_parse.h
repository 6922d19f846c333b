/* http1_parse: a pure, bounded HTTP/1.1 request-head parser over (buf, len). */
#ifndef WSGATE_HTTP1_PARSE_H
#define WSGATE_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Most headers accepted in one request head; more is a 431. */
#define HTTP1_MAX_HEADERS 64

/* A header as views into the parsed buffer: no copy, valid as long as it. The
 * value has its leading and trailing whitespace removed. */
struct http1_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct http1_request {
    const char *method;
    size_t method_len;
    const char *target; /* request-target as sent, e.g. "/chat?room=1" */
    size_t target_len;
    int minor_version; /* HTTP/1.<minor>; only major version 1 is accepted */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t num_headers;
};

/* Why a head was rejected: the HTTP status to answer (400 or 431), a short
 * static reason, and the byte offset where the problem was found. */
struct http1_error {
    int status;
    const char *reason;
    size_t offset;
};

/* Parses one request head from buf[0..len). Returns the head's length in
 * bytes (through the blank line) when complete, -2 when more bytes are
 * needed, -1 on a malformed head with *err filled. Rejects obs-fold, bare CR,
 * bare LF, NUL and other control characters, invalid token characters in
 * the method and header names, a missing or non-"HTTP/1.x" version, and more
 * than HTTP1_MAX_HEADERS headers (status 431). `last_len` is the length at
 * the previous call that returned -2 (0 the first time): it lets the parser
 * skip re-scanning for the end of the head. Never allocates; *req holds views
 * into buf. The caller enforces the total head size. */
int http1_parse_request(const char *buf, size_t len, size_t last_len,
                        struct http1_request *req, struct http1_error *err);

/* A response head (an upstream's answer to the upgrade request). */
struct http1_response {
    int minor_version; /* HTTP/1.<minor> */
    int status;        /* 100..599 */
    const char *reason;
    size_t reason_len;
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t num_headers;
};

/* Parses one response head from buf[0..len) under the same rules and
 * results as http1_parse_request (status line "HTTP/1.x DDD reason"; the
 * reason may be empty). */
int http1_parse_response(const char *buf, size_t len, size_t last_len,
                         struct http1_response *resp, struct http1_error *err);

/* Finds the first header named `name` (case-insensitive). Returns its index
 * or -1. Use http1_header_count to detect duplicates. */
int http1_find_header(const struct http1_request *req, const char *name);

/* Number of headers named `name` (case-insensitive). */
size_t http1_header_count(const struct http1_request *req, const char *name);

/* True when the comma-separated token list value[0..len) contains `token`
 * (case-insensitive, optional whitespace around elements, empty elements
 * ignored), e.g. "keep-alive, Upgrade" contains "upgrade". */
bool http1_token_list_contains(const char *value, size_t len, const char *token);

/* Iterates a comma-separated list: starting at *pos within value[0..len),
 * stores the next non-empty trimmed element in *elem and *elem_len, advances
 * *pos, and returns true; returns false when no element is left. */
bool http1_list_next(const char *value, size_t len, size_t *pos, const char **elem,
                     size_t *elem_len);

/* Case-insensitive comparison of a view with a NUL-terminated string. */
bool http1_str_ieq(const char *s, size_t len, const char *lit);

/* True when s[0..n) may be written as a field value: no control character
 * but HTAB (so never CR or LF), no DEL; other bytes (UTF-8) pass. */
bool http1_value_ok(const char *s, size_t n);

#endif
