/* identity: who a client is, as the auth providers of its route said, and
 * the identity headers that carries to an upstream. */
#ifndef WSGATE_IDENTITY_H
#define WSGATE_IDENTITY_H

#include <stddef.h>

#include "auth/auth.h"
#include "config/config.h"
#include "gateway/upstream_req.h"

/* The header that carries the subject. */
#define GW_IDENTITY_SUBJECT_HEADER "X-Auth-Subject"

/* Owned copies of what allowing providers answered. Zero-initialised is
 * empty. */
struct gw_identity {
    char *subject;                   /* the first provider's subject, or NULL */
    struct upstream_header *headers; /* names and values, owned */
    size_t nheaders;
    long long expires_at; /* the earliest credential expiry, or 0 for none */
};

/* Adds an allowing result: keeps the first subject, replaces headers of the
 * same name (case-insensitive) with the later provider's value, and keeps
 * the earliest non-zero expiry. Returns 0, or -1 when out of memory (id is
 * then unchanged). */
int gw_identity_add(struct gw_identity *id, const struct auth_result *res);

/* Frees what id holds and empties it. */
void gw_identity_clear(struct gw_identity *id);

/* The identity headers of an upstream request: X-Auth-Subject, the headers
 * id holds, and, with a NULL value (remove the client's copies, set
 * nothing), every other name any provider of cfg may set — so identity
 * cannot be spoofed on routes with another provider or none. Names are
 * unique case-insensitively. Views into id and cfg. Returns the number of
 * entries, or -1 when out of memory; *out is freed by the caller. */
long gw_identity_upstream_headers(const struct gw_identity *id, const struct cfg *cfg,
                                  struct upstream_header **out);

#endif
