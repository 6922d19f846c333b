/* identity: merges provider answers and lists the upstream identity headers. */
#include "gateway/identity.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t
find(const struct upstream_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return i;
    return n;
}

int
gw_identity_add(struct gw_identity *id, const struct auth_result *res)
{
    char *subject = NULL;
    if (id->subject == NULL && res->subject != NULL &&
        (subject = strdup(res->subject)) == NULL)
        return -1;
    /* Copy everything first, so a failure leaves id as it was. */
    size_t cap = id->nheaders + res->nheaders;
    struct upstream_header *h = cap > 0 ? calloc(cap, sizeof(*h)) : NULL;
    char **names = res->nheaders > 0 ? calloc(res->nheaders * 2, sizeof(char *)) : NULL;
    bool ok = (cap == 0 || h != NULL) && (res->nheaders == 0 || names != NULL);
    for (size_t i = 0; ok && i < res->nheaders; i++) {
        names[2 * i] = strdup(res->headers[i].name);
        names[2 * i + 1] = strdup(res->headers[i].value);
        ok = names[2 * i] != NULL && names[2 * i + 1] != NULL;
    }
    if (!ok) {
        for (size_t i = 0; names != NULL && i < res->nheaders * 2; i++)
            free(names[i]);
        free(names);
        free(h);
        free(subject);
        return -1;
    }
    size_t n = id->nheaders;
    if (n > 0)
        memcpy(h, id->headers, n * sizeof(*h));
    for (size_t i = 0; i < res->nheaders; i++) {
        size_t at = find(h, n, names[2 * i]);
        if (at < n) {
            free((char *)h[at].name);
            free((char *)h[at].value);
        } else {
            n++;
        }
        h[at] = (struct upstream_header){names[2 * i], names[2 * i + 1]};
    }
    free(names);
    free(id->headers);
    id->headers = h;
    id->nheaders = n;
    if (subject != NULL)
        id->subject = subject;
    if (res->expires_at > 0 && (id->expires_at == 0 || res->expires_at < id->expires_at))
        id->expires_at = res->expires_at;
    return 0;
}

void
gw_identity_clear(struct gw_identity *id)
{
    for (size_t i = 0; i < id->nheaders; i++) {
        free((char *)id->headers[i].name);
        free((char *)id->headers[i].value);
    }
    free(id->headers);
    free(id->subject);
    *id = (struct gw_identity){0};
}

long
gw_identity_upstream_headers(const struct gw_identity *id, const struct cfg *cfg,
                             struct upstream_header **out)
{
    size_t cap = 1 + id->nheaders;
    for (size_t i = 0; i < cfg->nproviders; i++)
        cap += cfg->providers[i].nidentity_headers;
    struct upstream_header *h = calloc(cap, sizeof(*h));
    if (h == NULL)
        return -1;
    size_t n = 0;
    h[n++] = (struct upstream_header){GW_IDENTITY_SUBJECT_HEADER, id->subject};
    for (size_t i = 0; i < id->nheaders; i++)
        if (find(h, n, id->headers[i].name) == n)
            h[n++] = id->headers[i];
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct cfg_provider *p = &cfg->providers[i];
        for (size_t k = 0; k < p->nidentity_headers; k++)
            if (find(h, n, p->identity_headers[k]) == n)
                h[n++] = (struct upstream_header){p->identity_headers[k], NULL};
    }
    *out = h;
    return (long)n;
}
