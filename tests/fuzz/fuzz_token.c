/* fuzz_token: token_extract over fuzzed headers and query with every source kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

#define FUZZ_MAX_HEADERS 16

/* Input: two bytes choosing the sources, then lines: the query, then
 * "Name:value" headers. Each piece is copied to its own heap block of exact
 * size so that ASan sees an over-read of any one of them. */
struct fuzz_req {
    struct token_header headers[FUZZ_MAX_HEADERS];
    size_t nheaders;
    char *blocks[2 * FUZZ_MAX_HEADERS + 1];
    size_t nblocks;
    struct token_input in;
};

static const char *
fuzz_copy(struct fuzz_req *r, const uint8_t *p, size_t n)
{
    char *b = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(b != NULL);
    if (n > 0)
        memcpy(b, p, n);
    r->blocks[r->nblocks++] = b;
    return b;
}

static void
fuzz_split(struct fuzz_req *r, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    bool first = true;
    while (p <= end && r->nheaders < FUZZ_MAX_HEADERS) {
        const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const uint8_t *line_end = nl != NULL ? nl : end;
        size_t len = (size_t)(line_end - p);
        if (first) {
            r->in.query = fuzz_copy(r, p, len);
            r->in.query_len = len;
            first = false;
        } else {
            const uint8_t *colon = memchr(p, ':', len);
            size_t nlen = colon != NULL ? (size_t)(colon - p) : len;
            size_t vlen = colon != NULL ? len - nlen - 1 : 0;
            struct token_header *h = &r->headers[r->nheaders++];
            h->name = fuzz_copy(r, p, nlen);
            h->name_len = nlen;
            h->value = fuzz_copy(r, colon != NULL ? colon + 1 : p, vlen);
            h->value_len = vlen;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    r->in.headers = r->headers;
    r->in.nheaders = r->nheaders;
}

static void
fuzz_check_found(enum token_status st, const struct token_found *f,
                 const struct cfg_token_source *src, size_t nsrc)
{
    if (st != TOKEN_OK) {
        FUZZ_CHECK(st == TOKEN_NONE || st == TOKEN_MALFORMED);
        FUZZ_CHECK(f->kind == 0 && f->token_len == 0);
        return;
    }
    bool listed = false;
    for (size_t i = 0; i < nsrc; i++)
        listed |= src[i].kind == f->kind;
    FUZZ_CHECK(listed);
    FUZZ_CHECK(f->token_len >= 1 && f->token_len <= TOKEN_MAX);
    FUZZ_CHECK(f->token[f->token_len] == '\0' && strlen(f->token) == f->token_len);
    for (size_t i = 0; i < f->token_len; i++) {
        unsigned char c = (unsigned char)f->token[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct token_found found;
    static const struct cfg_token_source all[] = {
        {CFG_TOKEN_HEADER, NULL},
        {CFG_TOKEN_QUERY, (char *)"access_token"},
        {CFG_TOKEN_COOKIE, (char *)"session"},
        {CFG_TOKEN_SUBPROTOCOL, NULL},
    };
    if (size < 2)
        return 0;

    struct cfg_token_source order[4];
    size_t norder = (size_t)(data[0] & 3) + 1;
    for (size_t i = 0; i < norder; i++)
        order[i] = all[(data[1] >> (2 * i)) & 3];

    struct fuzz_req r;
    memset(&r, 0, sizeof(r));
    fuzz_split(&r, data + 2, size - 2);
    if (data[0] & 0x80)
        r.in.query = NULL;

    /* Each source alone, then the oracle for any order: the first source
     * that alone gives more than NONE decides, with exactly its answer. */
    static struct token_found single[4];
    enum token_status single_st[4];
    for (size_t i = 0; i < 4; i++) {
        single_st[i] = token_extract(&r.in, &all[i], 1, &single[i]);
        fuzz_check_found(single_st[i], &single[i], &all[i], 1);
    }
    enum token_status st = token_extract(&r.in, order, norder, &found);
    fuzz_check_found(st, &found, order, norder);
    enum token_status want = TOKEN_NONE;
    const struct token_found *want_found = NULL;
    for (size_t i = 0; i < norder && want == TOKEN_NONE; i++) {
        size_t k = (size_t)order[i].kind - 1;
        want = single_st[k];
        want_found = &single[k];
    }
    FUZZ_CHECK(st == want);
    if (st == TOKEN_OK)
        FUZZ_CHECK(found.kind == want_found->kind &&
                   found.token_len == want_found->token_len &&
                   memcmp(found.token, want_found->token, found.token_len) == 0);

    for (size_t i = 0; i < r.nblocks; i++)
        free(r.blocks[i]);
    return 0;
}
