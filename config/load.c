/* load: reads YAML with libyaml into a node tree with positions, and frees
 * configurations. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "config/config_internal.h"

/* Deeper nesting is never a configuration; the cap keeps cfg_node_free's
 * recursion shallow whatever the input. */
#define MAX_DEPTH 64
/* A configuration file is a few kilobytes; anything near this is a mistake. */
#define MAX_FILE_SIZE (16u << 20)

/* State while turning libyaml's events into a tree. */
struct builder {
    const char *file;
    const char *text;
    size_t len;
    struct cfg_errors *errs;
    struct cfg_node *root;
    struct cfg_node *open[MAX_DEPTH]; /* containers not yet closed, outermost first */
    size_t depth;
    int ndocs;
};

int
cfg_errors_push(struct cfg_errors *errs, char *msg)
{
    if (msg == NULL)
        return -1;
    char **msgs = realloc(errs->msgs, (errs->count + 1) * sizeof(*msgs));
    if (msgs == NULL) {
        free(msg);
        return -1;
    }
    msgs[errs->count++] = msg;
    errs->msgs = msgs;
    return 0;
}

void
cfg_errors_free(struct cfg_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->count = 0;
}

/* Appends "FILE:LINE:COLUMN: message" (or "FILE: message" when line is 0). */
static void add_error(const struct builder *b, struct cfg_mark m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
add_error(const struct builder *b, struct cfg_mark m, const char *fmt, ...)
{
    char body[512];
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    int rc = m.line > 0 ? asprintf(&msg, "%s:%d:%d: %s", b->file, m.line, m.column, body)
                        : asprintf(&msg, "%s: %s", b->file, body);
    cfg_errors_push(b->errs, rc < 0 ? NULL : msg);
}

static struct cfg_mark
to_mark(yaml_mark_t m)
{
    struct cfg_mark r = {(int)m.line + 1, (int)m.column + 1};
    return r;
}

/* The position of a byte offset, for reader errors that carry no mark. */
static struct cfg_mark
offset_mark(const struct builder *b, size_t off)
{
    struct cfg_mark m = {1, 1};
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->text[i] == '\n') {
            m.line++;
            m.column = 1;
        } else {
            m.column++;
        }
    }
    return m;
}

static void
syntax_error(const struct builder *b, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "unknown error";

    if (p->error == YAML_MEMORY_ERROR) {
        struct cfg_mark none = {0, 0};
        add_error(b, none, "out of memory");
    } else if (p->error == YAML_READER_ERROR) {
        add_error(b, offset_mark(b, p->problem_offset), "invalid input: %s", problem);
    } else if (p->context != NULL) {
        struct cfg_mark c = to_mark(p->context_mark);
        add_error(b, to_mark(p->problem_mark),
                  "syntax error: %s (%s at line %d, column %d)", problem, p->context,
                  c.line, c.column);
    } else {
        add_error(b, to_mark(p->problem_mark), "syntax error: %s", problem);
    }
}

void
cfg_node_free(struct cfg_node *node)
{
    if (node == NULL)
        return;
    free(node->scalar);
    if (node->kind == CFG_NODE_SEQUENCE)
        for (size_t i = 0; i < node->n; i++)
            cfg_node_free(node->items[i]);
    if (node->kind == CFG_NODE_MAPPING)
        for (size_t i = 0; i < node->n; i++) {
            cfg_node_free(node->pairs[i].key);
            cfg_node_free(node->pairs[i].value);
        }
    free(node->items);
    free(node->pairs);
    free(node);
}

/* Makes room for one more item or pair in a container. */
static int
reserve(struct cfg_node *c)
{
    if (c->n < c->cap)
        return 0;
    size_t cap = c->cap == 0 ? 4 : c->cap * 2;
    if (c->kind == CFG_NODE_SEQUENCE) {
        struct cfg_node **items = realloc(c->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        c->items = items;
    } else {
        struct cfg_pair *pairs = realloc(c->pairs, cap * sizeof(*pairs));
        if (pairs == NULL)
            return -1;
        c->pairs = pairs;
    }
    c->cap = cap;
    return 0;
}

/* Hangs a new node under the innermost open container (or makes it the
 * root), taking ownership of it: freed here on failure. */
static int
attach(struct builder *b, struct cfg_node *node)
{
    struct cfg_mark none = {0, 0};

    if (b->depth == 0) {
        b->root = node;
        return 0;
    }
    struct cfg_node *parent = b->open[b->depth - 1];
    bool want_value = parent->kind == CFG_NODE_MAPPING && parent->n > 0 &&
                      parent->pairs[parent->n - 1].value == NULL;
    if (want_value) {
        parent->pairs[parent->n - 1].value = node;
        return 0;
    }
    if (parent->kind == CFG_NODE_MAPPING && node->kind != CFG_NODE_SCALAR) {
        add_error(b, node->mark,
                  "a mapping key must be a string, not a list or a mapping");
        cfg_node_free(node);
        return -1;
    }
    if (reserve(parent) != 0) {
        add_error(b, none, "out of memory");
        cfg_node_free(node);
        return -1;
    }
    if (parent->kind == CFG_NODE_SEQUENCE) {
        parent->items[parent->n++] = node;
    } else {
        parent->pairs[parent->n].key = node;
        parent->pairs[parent->n].value = NULL;
        parent->n++;
    }
    return 0;
}

/* Creates a node for a scalar or a container start; NULL after reporting. */
static struct cfg_node *
new_node(struct builder *b, const yaml_event_t *ev, enum cfg_node_kind kind)
{
    struct cfg_mark none = {0, 0};
    struct cfg_node *node = calloc(1, sizeof(*node));

    if (node == NULL) {
        add_error(b, none, "out of memory");
        return NULL;
    }
    node->kind = kind;
    node->mark = to_mark(ev->start_mark);
    if (kind != CFG_NODE_SCALAR)
        return node;
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (memchr(v, '\0', n) != NULL) {
        add_error(b, node->mark, "a NUL character is not allowed in a value");
        free(node);
        return NULL;
    }
    node->scalar = strndup(v, n);
    if (node->scalar == NULL) {
        add_error(b, none, "out of memory");
        free(node);
        return NULL;
    }
    return node;
}

/* The anchor of a node event, if any: anchors are refused, so that a tree
 * is always a tree and no alias can make a walk exponential. */
static const yaml_char_t *
event_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/* Applies one event to the tree. Returns 0, or -1 after reporting. */
static int
on_event(struct builder *b, const yaml_event_t *ev)
{
    struct cfg_mark at = to_mark(ev->start_mark);
    struct cfg_node *node;
    enum cfg_node_kind kind = CFG_NODE_SCALAR;

    if (event_anchor(ev) != NULL || ev->type == YAML_ALIAS_EVENT) {
        add_error(b, at, "anchors and aliases are not supported");
        return -1;
    }
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1) {
            add_error(b, at, "only one YAML document is allowed");
            return -1;
        }
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth == MAX_DEPTH) {
            add_error(b, at, "nested deeper than %d levels", MAX_DEPTH);
            return -1;
        }
        kind =
            ev->type == YAML_SEQUENCE_START_EVENT ? CFG_NODE_SEQUENCE : CFG_NODE_MAPPING;
        /* fall through */
    case YAML_SCALAR_EVENT:
        node = new_node(b, ev, kind);
        if (node == NULL || attach(b, node) != 0)
            return -1;
        if (kind != CFG_NODE_SCALAR)
            b->open[b->depth++] = node;
        return 0;
    default:
        return 0;
    }
}

/* Parses text into a tree in *root (NULL for an empty stream). Returns 0, or
 * -1 after appending one error to b->errs. */
static int
build_tree(struct builder *b)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) {
        struct cfg_mark none = {0, 0};
        add_error(b, none, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)b->text, b->len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(b, &parser);
            rc = -1;
            break;
        }
        rc = on_event(b, &ev);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

int
cfg_load_string(const char *file, const char *text, size_t len, cfg_getenv_fn getenv_fn,
                void *getenv_arg, struct cfg **out, struct cfg_errors *errs)
{
    struct builder b = {
        .file = file != NULL ? file : "<string>",
        .text = text,
        .len = len,
        .errs = errs,
    };

    *out = NULL;
    if (build_tree(&b) != 0) {
        cfg_node_free(b.root);
        return -1;
    }
    int rc = cfg_schema_apply(b.file, b.root, getenv_fn, getenv_arg, out, errs);
    cfg_node_free(b.root);
    return rc;
}

/* Reads a whole file into a new NUL-terminated buffer. Returns 0, or -1 with
 * errno set (EFBIG when it is larger than MAX_FILE_SIZE). */
static int
read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int e = 0;

    if (f == NULL)
        return -1;
    while (e == 0) {
        if (n + 1 >= cap) {
            size_t ncap = cap == 0 ? 8192 : cap * 2;
            char *p = cap > MAX_FILE_SIZE ? NULL : realloc(buf, ncap);
            if (p == NULL) {
                e = cap > MAX_FILE_SIZE ? EFBIG : ENOMEM;
                break;
            }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0 && ferror(f))
            e = errno != 0 ? errno : EIO;
        if (got == 0)
            break;
    }
    fclose(f);
    if (e == 0 && n > MAX_FILE_SIZE)
        e = EFBIG;
    if (e != 0) {
        free(buf);
        errno = e;
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static const char *
process_getenv(const char *name, void *arg)
{
    return getenv(name);
}

int
cfg_load_file(const char *path, struct cfg **out, struct cfg_errors *errs)
{
    char *text;
    size_t len;

    *out = NULL;
    if (read_file(path, &text, &len) != 0) {
        char *msg = NULL;
        int rc = asprintf(&msg, "%s: cannot read: %s", path, strerror(errno));
        cfg_errors_push(errs, rc < 0 ? NULL : msg);
        return -1;
    }
    int rc = cfg_load_string(path, text, len, process_getenv, NULL, out, errs);
    free(text);
    return rc;
}

/* Returns NULL only when out of memory: the built-in text is known good. */
struct cfg *
cfg_load_default(void)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};

    cfg_load_string("<default>", cfg_default_yaml, strlen(cfg_default_yaml), NULL, NULL,
                    &cfg, &errs);
    cfg_errors_free(&errs);
    return cfg;
}

static void
free_listener(struct cfg_listener *l)
{
    free(l->address);
    free(l->host);
    if (l->tls != NULL) {
        free(l->tls->certificate);
        free(l->tls->key);
        free(l->tls);
    }
}

static void
free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
cfg_upstream_clear(struct cfg_upstream *u)
{
    free(u->url);
    free(u->host);
    free(u->path);
    u->url = u->host = u->path = NULL;
}

static void
free_route(struct cfg_route *r)
{
    free(r->name);
    free(r->path);
    free(r->host);
    free(r->handler);
    free(r->plugin);
    for (size_t i = 0; i < r->noptions; i++) {
        free(r->options[i].name);
        free(r->options[i].value);
    }
    free(r->options);
    free(r->room_param);
    for (size_t i = 0; i < r->nupstreams; i++)
        cfg_upstream_clear(&r->upstreams[i]);
    free(r->upstreams);
    free(r->upstream_host);
    if (r->upstream_tls != NULL) {
        free(r->upstream_tls->ca_file);
        free(r->upstream_tls->certificate);
        free(r->upstream_tls->key);
        free(r->upstream_tls->server_name);
        free(r->upstream_tls);
    }
    if (r->health_check != NULL) {
        free(r->health_check->path);
        free(r->health_check);
    }
    free(r->auth);
    for (size_t i = 0; i < r->ntoken_from; i++)
        free(r->token_from[i].name);
    free(r->token_from);
    free_strings(r->auth_chain, r->nauth);
    free(r->providers);
    free_strings(r->origins, r->norigins);
}

static void
free_jwt(struct cfg_jwt *j)
{
    if (j == NULL)
        return;
    free_strings(j->algorithms, j->nalgorithms);
    if (j->secret != NULL) {
        /* A secret does not linger in freed memory. */
        volatile char *p = j->secret;
        while (*p != '\0')
            *p++ = '\0';
        free(j->secret);
    }
    free(j->public_key);
    free(j->jwks);
    free(j->issuer);
    free_strings(j->audience, j->naudience);
    free_strings(j->required_claims, j->nrequired_claims);
    free(j->subject_claim);
    for (size_t i = 0; i < j->nclaims_to_headers; i++) {
        free(j->claims_to_headers[i].claim);
        free(j->claims_to_headers[i].header);
    }
    free(j->claims_to_headers);
    free(j->public_key_text);
    free(j->jwks_text);
    free(j);
}

void
cfg_free(struct cfg *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->file);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        free_listener(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->ntoken_from; i++)
        free(cfg->token_from[i].name);
    free(cfg->token_from);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        free(cfg->providers[i].name);
        free_strings(cfg->providers[i].tokens, cfg->providers[i].ntokens);
        free_strings(cfg->providers[i].identity_headers,
                     cfg->providers[i].nidentity_headers);
        free_jwt(cfg->providers[i].jwt);
        struct cfg_http_auth *h = cfg->providers[i].http;
        if (h != NULL) {
            free(h->url);
            free(h->host);
            free(h->target);
            free(h->ca_file);
            free(h->subject_header);
            free_strings(h->copy_headers, h->ncopy_headers);
            free(h);
        }
        struct cfg_plugin_auth *pl = cfg->providers[i].plugin;
        if (pl != NULL) {
            free(pl->path);
            free_strings(pl->option_names, pl->noptions);
            free_strings(pl->option_values, pl->noptions);
            free(pl);
        }
    }
    free(cfg->throttle);
    free_strings(cfg->resolver.nameservers, cfg->resolver.nnameservers);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nroutes; i++)
        free_route(&cfg->routes[i]);
    free(cfg->routes);
    free(cfg);
}
