/* fuzz_upstream_resp: response heads parsed every way, judged, re-checked as 101s. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/upstream_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const struct {
    const char *protocols;
    const char *extensions;
} offers[] = {
    {"chat, superchat",
     "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"},
    {NULL, NULL},
    {"chat.v1", "permessage-deflate"},
};

static void
view_in(const char *buf, size_t len, const char *p, size_t n)
{
    if (p == NULL) {
        if (n != 0)
            abort();
        return;
    }
    if (p < buf || n > len || (size_t)(p - buf) > len - n)
        abort();
}

static bool
same_view(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* True when list[0..len) has the element e[0..n), compared exactly. */
static bool
list_has(const char *list, size_t len, const char *e, size_t n)
{
    size_t pos = 0, elen;
    const char *elem;
    while (http1_list_next(list, len, &pos, &elem, &elen))
        if (same_view(elem, elen, e, n))
            return true;
    return false;
}

static void
judge(const char *buf, size_t head, const struct http1_response *resp,
      const struct upstream_offer *offer)
{
    struct upstream_choice choice;
    enum upstream_verdict v = upstream_resp_check(resp, offer, &choice);
    switch (v) {
    case UPSTREAM_REFUSED:
        if (resp->status < 400 || resp->status > 599)
            abort();
        return;
    case UPSTREAM_INVALID:
        if (choice.reason == NULL || choice.protocol != NULL || choice.extensions != NULL)
            abort();
        return;
    case UPSTREAM_ACCEPTED:
        break;
    default:
        abort();
    }
    if (resp->status != 101)
        abort();
    view_in(buf, head, choice.protocol, choice.protocol_len);
    view_in(buf, head, choice.extensions, choice.extensions_len);
    if (choice.protocol != NULL &&
        (offer->protocols == NULL || !list_has(offer->protocols, offer->protocols_len,
                                               choice.protocol, choice.protocol_len)))
        abort();
    if (choice.extensions != NULL && offer->extensions == NULL)
        abort();

    /* The client's 101 passes the same check, with the same choice. */
    char out[1024];
    int n =
        upstream_resp_client_101(offer->key, offer->key_len, &choice, out, sizeof(out));
    if (n < 0)
        return; /* too long for this buffer */
    struct http1_response again;
    struct http1_error err;
    if (http1_parse_response(out, (size_t)n, 0, &again, &err) != n)
        abort();
    struct upstream_choice choice2;
    if (upstream_resp_check(&again, offer, &choice2) != UPSTREAM_ACCEPTED ||
        !same_view(choice.protocol, choice.protocol_len, choice2.protocol,
                   choice2.protocol_len) ||
        !same_view(choice.extensions, choice.extensions_len, choice2.extensions,
                   choice2.extensions_len))
        abort();
}

static void
same_outcome(int a, const struct http1_error *ea, int b, const struct http1_error *eb)
{
    if (a != b)
        abort();
    if (a == -1 && (ea->status != eb->status || ea->offset != eb->offset ||
                    strcmp(ea->reason, eb->reason) != 0))
        abort();
}

/* Split and byte-wise reads of the head reach the whole read's outcome. */
static void
check_incremental(const uint8_t *data, size_t size, int r, const struct http1_error *err)
{
    const char *buf = (const char *)data;
    struct http1_response resp;
    struct http1_error err2;
    if (size > 1) {
        size_t split = 1 + (size_t)data[0] % (size - 1);
        int r2 = http1_parse_response(buf, split, 0, &resp, &err2);
        if (r2 == -2)
            r2 = http1_parse_response(buf, size, split, &resp, &err2);
        same_outcome(r, err, r2, &err2);
    }
    if (size <= 512) {
        int r2 = -2;
        size_t last = 0;
        for (size_t k = 1; k <= size && r2 == -2; k++) {
            r2 = http1_parse_response(buf, k, last, &resp, &err2);
            last = k;
        }
        same_outcome(r, err, r2, &err2);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_response resp;
    struct http1_error err;
    int r = http1_parse_response(buf, size, 0, &resp, &err);
    check_incremental(data, size, r, &err);
    if (r == -1) {
        if (err.reason == NULL || err.offset >= size)
            abort();
        return 0;
    }
    if (r == -2)
        return 0;
    if (r < 0 || (size_t)r > size || resp.status < 100 || resp.status > 599 ||
        resp.num_headers > HTTP1_MAX_HEADERS || resp.reason == NULL)
        abort();
    view_in(buf, (size_t)r, resp.reason, resp.reason_len);

    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        struct upstream_offer offer = {
            .key = KEY,
            .key_len = sizeof(KEY) - 1,
            .protocols = offers[i].protocols,
            .protocols_len = offers[i].protocols ? strlen(offers[i].protocols) : 0,
            .extensions = offers[i].extensions,
            .extensions_len = offers[i].extensions ? strlen(offers[i].extensions) : 0,
        };
        judge(buf, (size_t)r, &resp, &offer);
    }
    return 0;
}
