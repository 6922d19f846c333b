/* fuzz_http1_parse: whole, split and byte-wise parses agree; views stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same_outcome(int a, const struct http1_error *ea, int b, const struct http1_error *eb)
{
    if (a != b)
        abort();
    if (a == -1 && (ea->status != eb->status || ea->offset != eb->offset ||
                    strcmp(ea->reason, eb->reason) != 0))
        abort();
}

static void
in_bounds(const char *buf, size_t len, const char *p, size_t n)
{
    if (p < buf || n > len || (size_t)(p - buf) > len - n)
        abort();
}

static void
check_lists(const char *value, size_t len)
{
    size_t pos = 0, elem_len;
    const char *elem;
    while (http1_list_next(value, len, &pos, &elem, &elem_len)) {
        if (elem_len == 0 || pos > len)
            abort();
        in_bounds(value, len, elem, elem_len);
    }
    if (pos != len)
        abort();
    (void)http1_token_list_contains(value, len, "upgrade");
}

static void
check_request(const char *buf, int r, const struct http1_request *req)
{
    size_t head = (size_t)r;
    in_bounds(buf, head, req->method, req->method_len);
    in_bounds(buf, head, req->target, req->target_len);
    if (req->method_len == 0 || req->target_len == 0 ||
        req->num_headers > HTTP1_MAX_HEADERS ||
        (req->minor_version != 0 && req->minor_version != 1))
        abort();
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        in_bounds(buf, head, h->name, h->name_len);
        in_bounds(buf, head, h->value, h->value_len);
        if (h->name_len == 0)
            abort();
        check_lists(h->value, h->value_len);
    }
    int host = http1_find_header(req, "host");
    if ((host < 0) != (http1_header_count(req, "host") == 0))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_request req, req2;
    struct http1_error err, err2;

    int r = http1_parse_request(buf, size, 0, &req, &err);
    if (r >= 0) {
        if ((size_t)r > size)
            abort();
        check_request(buf, r, &req);
    } else if (r == -1) {
        if (err.offset >= size || (err.status != 400 && err.status != 431) ||
            err.reason == NULL)
            abort();
    } else if (r != -2) {
        abort();
    }

    /* Two reads, the second passing the first's length. */
    if (size > 1) {
        size_t split = 1 + (size_t)data[0] % (size - 1);
        int r2 = http1_parse_request(buf, split, 0, &req2, &err2);
        if (r2 == -2)
            r2 = http1_parse_request(buf, size, split, &req2, &err2);
        same_outcome(r, &err, r2, &err2);
    }

    /* One byte at a time, on inputs small enough to keep this quadratic walk fast. */
    if (size <= 512) {
        int r2 = -2;
        size_t last = 0;
        for (size_t k = 1; k <= size && r2 == -2; k++) {
            r2 = http1_parse_request(buf, k, last, &req2, &err2);
            last = k;
        }
        same_outcome(r, &err, r2, &err2);
    }
    return 0;
}
