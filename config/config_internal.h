/* config_internal: the YAML node tree that load.c builds and schema.c walks. */
#ifndef WSGATE_CONFIG_INTERNAL_H
#define WSGATE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum cfg_node_kind {
    CFG_NODE_SCALAR = 1,
    CFG_NODE_SEQUENCE,
    CFG_NODE_MAPPING,
    CFG_NODE_SCALAR_OR_SEQUENCE, /* only in cfg_key_def: a value or a list */
};

struct cfg_pair;

/* One YAML node with the position where it starts. A tree, never a graph:
 * the loader rejects anchors and aliases. */
struct cfg_node {
    enum cfg_node_kind kind;
    struct cfg_mark mark;
    char *scalar;            /* CFG_NODE_SCALAR: as written, before ${VAR}
                              * expansion; never contains a NUL byte */
    struct cfg_node **items; /* CFG_NODE_SEQUENCE */
    struct cfg_pair *pairs;  /* CFG_NODE_MAPPING, in document order */
    size_t n;                /* number of items or pairs */
    size_t cap;
};

/* A mapping entry; the key is always a scalar node. */
struct cfg_pair {
    struct cfg_node *key;
    struct cfg_node *value;
};

/* Frees a node and everything under it; NULL is ignored. */
void cfg_node_free(struct cfg_node *node);

/* Frees what an upstream's fields point to (not u itself) and sets them to
 * NULL; safe on a zeroed or half-filled struct. */
void cfg_upstream_clear(struct cfg_upstream *u);

/* Appends msg (malloc'd, already formatted) to errs, taking ownership of it;
 * NULL is ignored. Returns 0, or -1 when out of memory (msg is then freed). */
int cfg_errors_push(struct cfg_errors *errs, char *msg);

/* Parses a plain decimal integer (digits only, no sign or unit) into *out.
 * Returns 0 or -1 with a message in err. */
int cfg_parse_uint(const char *s, uint64_t *out, struct gw_err *err);

/* True when h[0..len) is an IPv4 literal, a host name, or an IPv6 literal in
 * brackets ("[::1]"). */
bool cfg_host_valid(const char *h, size_t len);
/* A nameserver as evdns_base_nameserver_ip_add takes it: an IPv4 or IPv6
 * address with an optional port ("10.0.0.2:5353", "[::1]:53", "::1"). */
bool cfg_nameserver_valid(const char *s);

/* The schema walk's state; private to schema.c. */
struct cfg_walk;

/* Called with the value of a known key whose node kind matched; `obj` is
 * what the enclosing mapping fills, `arg` the key's table data. Records its
 * own errors in the walk. */
typedef void (*cfg_key_fn)(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                           const void *arg);

/* One key a mapping may hold. */
struct cfg_key_def {
    const char *name;
    enum cfg_node_kind kind;
    bool required;
    cfg_key_fn fn;
    const void *arg;     /* handler data */
    const char *example; /* a valid value as YAML flow text, for the table test */
};

/* A mapping the schema walks by a table, named by its key path with "[]"
 * for any list index and "*" for any name: "routes[]", "auth.providers.*". */
struct cfg_schema_table {
    const char *path;
    const struct cfg_key_def *keys;
    size_t nkeys;
};

/* Every table the schema walks, for the unit test that walks each one. */
extern const struct cfg_schema_table cfg_schema_tables[];
extern const size_t cfg_schema_ntables;

/* Walks the tree (NULL for an empty document) into a new configuration
 * named `file`. On success returns 0 and stores it in *out; otherwise
 * returns -1, stores NULL and appends every error found to errs, sorted by
 * position. Expands ${VAR} in scalar values through getenv_fn. Does not
 * take ownership of root. */
int cfg_schema_apply(const char *file, const struct cfg_node *root,
                     cfg_getenv_fn getenv_fn, void *getenv_arg, struct cfg **out,
                     struct cfg_errors *errs);

#endif
