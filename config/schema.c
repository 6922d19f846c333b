/* schema: walks the YAML node tree into struct cfg, one static key table per mapping. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
/* How much of a key or a value an error message shows. */
#define SHOW_MAX 64

const char cfg_default_yaml[] =
    "# wsgate's built-in configuration, used without -c FILE.\n"
    "listeners:\n"
    "  - address: 127.0.0.1:8080\n"
    "routes:\n"
    "  - name: echo\n"
    "    path: /echo\n"
    "    handler: echo\n";

/* The in-process handlers; gateway/handlers/builtin.c serves the same names. */
static const char *const known_handlers[] = {"echo", "broadcast", "plugin"};

bool
cfg_handler_known(const char *name)
{
    for (size_t i = 0; i < NELEMS(known_handlers); i++)
        if (strcmp(known_handlers[i], name) == 0)
            return true;
    return false;
}

/* One error, kept with its position so that all can be sorted at the end. */
struct walk_error {
    struct cfg_mark mark;
    size_t seq;
    char *msg;
};

/* What a route's keys leave behind for the checks that span several keys. */
struct route_walk {
    bool has_path, has_prefix, has_handler, has_upstream, has_upstreams, has_name;
    bool has_strip;
    bool has_plugin;
    bool bad_upstream; /* an upstream URL was rejected */
    struct cfg_mark name_mark, path_mark, auth_mark, strip_mark;
    const struct cfg_node *auth_node; /* `auth` as written, for resolve_routes */
    const char *name_raw, *path_raw, *auth_raw; /* as written, for messages */
};

struct cfg_walk {
    const char *file;
    cfg_getenv_fn getenv_fn;
    void *getenv_arg;
    struct cfg *cfg;
    struct walk_error *errs;
    size_t nerrs, caperrs;
    bool lost;                 /* an error could not be recorded (out of memory) */
    struct route_walk *routes; /* parallel to cfg->routes */
    char path[256];            /* the key path being walked: "routes[2].path" */
    size_t plen;
};

/* Records "FILE:LINE:COLUMN: key.path: message" for the current path. */
static void fail(struct cfg_walk *w, struct cfg_mark m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
fail(struct cfg_walk *w, struct cfg_mark m, const char *fmt, ...)
{
    char body[512];
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (w->nerrs == w->caperrs) {
        size_t cap = w->caperrs == 0 ? 8 : w->caperrs * 2;
        struct walk_error *e = realloc(w->errs, cap * sizeof(*e));
        if (e == NULL) {
            w->lost = true;
            return;
        }
        w->errs = e;
        w->caperrs = cap;
    }
    if (asprintf(&msg, "%s:%d:%d: %s%s%s", w->file, m.line, m.column, w->path,
                 w->plen > 0 ? ": " : "", body) < 0) {
        w->lost = true;
        return;
    }
    w->errs[w->nerrs].mark = m;
    w->errs[w->nerrs].seq = w->nerrs;
    w->errs[w->nerrs].msg = msg;
    w->nerrs++;
}

static void
oom(struct cfg_walk *w, struct cfg_mark m)
{
    fail(w, m, "out of memory");
}

/* Appends to the key path; returns the length to restore with path_pop. */
static size_t path_push(struct cfg_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t
path_push(struct cfg_walk *w, const char *fmt, ...)
{
    size_t old = w->plen;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(w->path + w->plen, sizeof(w->path) - w->plen, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->plen += (size_t)n < sizeof(w->path) - w->plen ? (size_t)n
                                                         : sizeof(w->path) - 1 - w->plen;
    return old;
}

static void
path_pop(struct cfg_walk *w, size_t len)
{
    w->plen = len;
    w->path[len] = '\0';
}

/* Copies s for a message: at most SHOW_MAX bytes, control and non-ASCII
 * bytes as '?', so that an error line stays one printable line. */
static const char *
show(const char *s, char buf[SHOW_MAX + 4])
{
    size_t i = 0;
    for (; i < SHOW_MAX && s[i] != '\0'; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* Joins the names of a table whose entries start with a `const char *name`,
 * for messages that list what is allowed: "echo, broadcast". */
static const char *
join_names(char *buf, size_t size, const void *table, size_t n, size_t stride)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const char *name = *(const char *const *)((const char *)table + i * stride);
        int k = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", name);
        used += k > 0 ? (size_t)k : 0;
    }
    return buf;
}

#define JOIN_NAMES(buf, table)                                                           \
    join_names(buf, sizeof(buf), table, NELEMS(table), sizeof(table[0]))

static size_t
path_key(struct cfg_walk *w, const char *key)
{
    char buf[SHOW_MAX + 4];
    return path_push(w, "%s%s", w->plen > 0 ? "." : "", show(key, buf));
}

/* Expands ${VAR} in a scalar into a new string, or records why not and
 * returns NULL. Messages name variables, never their values. */
static char *
expand(struct cfg_walk *w, const struct cfg_node *v)
{
    struct gw_err err = {.msg = ""};
    char *out = NULL;

    if (cfg_expand_env(v->scalar, w->getenv_fn, w->getenv_arg, &out, &err) != 0) {
        fail(w, v->mark, "%s", err.msg);
        return NULL;
    }
    return out;
}

/* Values are quoted in messages as written, before expansion, so that a
 * secret that came from the environment is never printed. */
static void
fail_value(struct cfg_walk *w, const struct cfg_node *v, const char *why)
{
    char buf[SHOW_MAX + 4];
    fail(w, v->mark, "invalid value \"%s\": %s", show(v->scalar, buf), why);
}

static char *lower(char *s);
static const struct cfg_node *find_value(const struct cfg_node *map, const char *name);
static const char *check_host_port(const char *s);

/* ---- key tables ---- */

static const char *const kind_names[] = {
    [CFG_NODE_SCALAR] = "a single value",
    [CFG_NODE_SEQUENCE] = "a list",
    [CFG_NODE_MAPPING] = "a mapping",
    [CFG_NODE_SCALAR_OR_SEQUENCE] = "a single value or a list",
};

/* Edit distance between two short strings, counting a swap of neighbours
 * as one edit (optimal string alignment), for "did you mean". */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][SHOW_MAX + 1];

    if (la > SHOW_MAX || lb > SHOW_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

static void
fail_unknown_key(struct cfg_walk *w, const struct cfg_node *key,
                 const struct cfg_key_def *keys, size_t nkeys)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only names within two edits */
    char known[256];

    for (size_t i = 0; i < nkeys; i++) {
        size_t d = distance(key->scalar, keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    if (best != NULL)
        fail(w, key->mark, "unknown key (did you mean \"%s\"?)", best);
    else
        fail(w, key->mark, "unknown key (expected one of: %s)",
             join_names(known, sizeof(known), keys, nkeys, sizeof(keys[0])));
}

static bool
kind_ok(struct cfg_walk *w, const struct cfg_node *v, enum cfg_node_kind want)
{
    if (v->kind == want ||
        (want == CFG_NODE_SCALAR_OR_SEQUENCE && v->kind != CFG_NODE_MAPPING))
        return true;
    if (v->kind == CFG_NODE_SCALAR && v->scalar[0] == '\0')
        fail(w, v->mark, "expected %s, found an empty value", kind_names[want]);
    else
        fail(w, v->mark, "expected %s, not %s", kind_names[want], kind_names[v->kind]);
    return false;
}

/* Walks a mapping by its table: unknown, duplicate and missing required
 * keys are errors; every known key's handler runs in document order. */
static void
walk_map(struct cfg_walk *w, const struct cfg_node *map, const struct cfg_key_def *keys,
         size_t nkeys, void *obj)
{
    uint64_t seen = 0;

    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_node *key = map->pairs[i].key, *v = map->pairs[i].value;
        size_t old = path_key(w, key->scalar);
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k].name, key->scalar) != 0)
            k++;
        if (k == nkeys)
            fail_unknown_key(w, key, keys, nkeys);
        else if (seen & (UINT64_C(1) << k))
            fail(w, key->mark, "duplicate key");
        else if (v != NULL && (keys[k].kind == 0 || kind_ok(w, v, keys[k].kind)))
            keys[k].fn(w, v, obj, keys[k].arg);
        if (k < nkeys)
            seen |= UINT64_C(1) << k;
        path_pop(w, old);
    }
    for (size_t k = 0; k < nkeys; k++) {
        if (!keys[k].required || (seen & (UINT64_C(1) << k)))
            continue;
        size_t old = path_key(w, keys[k].name);
        fail(w, map->mark, "missing required key");
        path_pop(w, old);
    }
}

/* ---- scalar interpreters ---- */

/* Expands a value that must not be empty; NULL after recording an error. */
static char *
nonempty(struct cfg_walk *w, const struct cfg_node *v)
{
    char *s = expand(w, v);
    if (s != NULL && s[0] == '\0') {
        fail(w, v->mark, "must not be empty%s",
             strstr(v->scalar, "${") != NULL ? " (a variable expanded to nothing)" : "");
        free(s);
        return NULL;
    }
    return s;
}

/* True when s is printable ASCII with no space. */
static bool
visible_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

static int
get_bool(struct cfg_walk *w, const struct cfg_node *v, bool *out)
{
    static const struct {
        const char *name;
        bool value;
    } bools[] = {{"true", true}, {"false", false}};
    char *s = expand(w, v);

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < NELEMS(bools); i++) {
        if (strcmp(s, bools[i].name) == 0) {
            *out = bools[i].value;
            free(s);
            return 0;
        }
    }
    free(s);
    fail_value(w, v, "expected true or false");
    return -1;
}

struct enum_name {
    const char *name;
    int value;
};

/* Looks a value up in a table of names; lists them when it is not there. */
static int
get_enum(struct cfg_walk *w, const struct cfg_node *v, const struct enum_name *names,
         size_t n, int *out)
{
    char known[128], why[160];
    char *s = expand(w, v);

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].value;
            free(s);
            return 0;
        }
    }
    free(s);
    snprintf(why, sizeof(why), "expected one of: %s",
             join_names(known, sizeof(known), names, n, sizeof(names[0])));
    fail_value(w, v, why);
    return -1;
}

/* ---- top level: workers, limits, log ---- */

static void
on_workers(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;
    struct gw_err err = {.msg = ""};
    uint64_t n;
    char *s = expand(w, v);

    if (s == NULL)
        return;
    if (strcmp(s, "auto") == 0)
        cfg->workers = 0;
    else if (cfg_parse_uint(s, &n, &err) != 0 || n < 1 || n > 256)
        fail_value(w, v, "expected auto or an integer from 1 to 256");
    else
        cfg->workers = (unsigned)n;
    free(s);
}

enum limit_type {
    LIMIT_COUNT = 1,
    LIMIT_SIZE,
    LIMIT_DURATION,
};

/* One numeric limit: how to read it, its range, and where it goes. */
struct limit_def {
    enum limit_type type;
    uint64_t min, max;
    const char *range; /* the range in words, for the error */
    size_t offset;     /* in struct cfg_limits */
};

static const struct limit_def limit_max_connections = {
    LIMIT_COUNT, 1, UINT64_MAX, "at least 1",
    offsetof(struct cfg_limits, max_connections)};
static const struct limit_def limit_max_request_head = {
    LIMIT_SIZE, KIB, MIB, "from 1KiB to 1MiB",
    offsetof(struct cfg_limits, max_request_head)};
static const struct limit_def limit_handshake_timeout = {
    LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
    offsetof(struct cfg_limits, handshake_timeout_ms)};
static const struct limit_def limit_idle_timeout = {
    LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
    offsetof(struct cfg_limits, idle_timeout_ms)};
static const struct limit_def limit_max_message_size = {
    LIMIT_SIZE, 1, GIB, "from 1B to 1GiB", offsetof(struct cfg_limits, max_message_size)};
static const struct limit_def limit_proxy_buffer = {
    LIMIT_SIZE, 4 * KIB, 16 * MIB, "from 4KiB to 16MiB",
    offsetof(struct cfg_limits, proxy_buffer)};

/* Reads a number as def says into the uint64_t at def->offset in obj. Also
 * used for the durations of routes and health checks. */
static void
on_limit(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    const struct limit_def *def = arg;
    struct gw_err err = {.msg = ""};
    uint64_t n = 0;
    int rc = -1;
    char *s = expand(w, v);

    if (s == NULL)
        return;
    switch (def->type) {
    case LIMIT_COUNT:
        rc = cfg_parse_uint(s, &n, &err);
        break;
    case LIMIT_SIZE:
        rc = cfg_parse_size(s, &n, &err);
        break;
    case LIMIT_DURATION:
        rc = cfg_parse_duration(s, &n, &err);
        break;
    }
    free(s);
    if (rc != 0)
        fail_value(w, v, err.msg);
    else if (n < def->min || n > def->max)
        fail(w, v->mark, "must be %s", def->range);
    else
        memcpy((char *)obj + def->offset, &n, sizeof(n));
}

static const struct cfg_key_def limits_keys[] = {
    {"max_connections", CFG_NODE_SCALAR, false, on_limit, &limit_max_connections, "100"},
    {"max_request_head", CFG_NODE_SCALAR, false, on_limit, &limit_max_request_head,
     "32KiB"},
    {"handshake_timeout", CFG_NODE_SCALAR, false, on_limit, &limit_handshake_timeout,
     "5s"},
    {"idle_timeout", CFG_NODE_SCALAR, false, on_limit, &limit_idle_timeout, "1m"},
    {"max_message_size", CFG_NODE_SCALAR, false, on_limit, &limit_max_message_size,
     "2MiB"},
    {"proxy_buffer", CFG_NODE_SCALAR, false, on_limit, &limit_proxy_buffer, "128KiB"},
};

static void
on_limits(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    walk_map(w, v, limits_keys, NELEMS(limits_keys), &((struct cfg *)obj)->limits);
}

static const struct enum_name log_levels[] = {
    {"debug", CFG_LOG_DEBUG},
    {"info", CFG_LOG_INFO},
    {"warn", CFG_LOG_WARN},
    {"error", CFG_LOG_ERROR},
};

static const struct enum_name log_formats[] = {
    {"text", CFG_LOG_TEXT},
    {"json", CFG_LOG_JSON},
};

static void
on_log_level(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    int value;
    if (get_enum(w, v, log_levels, NELEMS(log_levels), &value) == 0)
        ((struct cfg_log *)obj)->level = (enum cfg_log_level)value;
}

static void
on_log_format(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    int value;
    if (get_enum(w, v, log_formats, NELEMS(log_formats), &value) == 0)
        ((struct cfg_log *)obj)->format = (enum cfg_log_format)value;
}

static const struct cfg_key_def log_keys[] = {
    {"level", CFG_NODE_SCALAR, false, on_log_level, NULL, "warn"},
    {"format", CFG_NODE_SCALAR, false, on_log_format, NULL, "json"},
};

static void
on_log(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    walk_map(w, v, log_keys, NELEMS(log_keys), &((struct cfg *)obj)->log);
}

/* ---- listeners ---- */

static void
on_address(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_listener *l = obj;
    struct gw_err err = {.msg = ""};
    char *s = nonempty(w, v);

    if (s == NULL)
        return;
    if (cfg_parse_address(s, &l->host, &l->port, &err) != 0) {
        fail_value(w, v, err.msg);
        free(s);
        return;
    }
    l->address = s;
    /* Listeners are walked in order, so the earlier ones are complete. */
    for (const struct cfg_listener *o = w->cfg->listeners; o < l; o++) {
        if (o->host != NULL && l->port != 0 && o->port == l->port &&
            strcmp(o->host, l->host) == 0) {
            fail(w, v->mark, "same address as listeners[%zu]",
                 (size_t)(o - w->cfg->listeners));
            return;
        }
    }
}

static void
on_tls_certificate(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                   const void *arg)
{
    ((struct cfg_tls *)obj)->certificate = nonempty(w, v);
}

static void
on_tls_key(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    ((struct cfg_tls *)obj)->key = nonempty(w, v);
}

static const struct cfg_key_def tls_keys[] = {
    {"certificate", CFG_NODE_SCALAR, true, on_tls_certificate, NULL, "cert.pem"},
    {"key", CFG_NODE_SCALAR, true, on_tls_key, NULL, "key.pem"},
};

static void
on_tls(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_listener *l = obj;

    l->tls = calloc(1, sizeof(*l->tls));
    if (l->tls == NULL) {
        oom(w, v->mark);
        return;
    }
    l->tls->mark = v->mark;
    walk_map(w, v, tls_keys, NELEMS(tls_keys), l->tls);
}

static const struct cfg_key_def listener_keys[] = {
    {"address", CFG_NODE_SCALAR, true, on_address, NULL, "127.0.0.1:0"},
    {"tls", CFG_NODE_MAPPING, false, on_tls, NULL,
     "{certificate: cert.pem, key: key.pem}"},
};

/* Allocates n zeroed elements for a list, or records why not. A list that
 * a key requires must not be empty. */
static void *
alloc_list(struct cfg_walk *w, const struct cfg_node *v, size_t size)
{
    void *p;

    if (v->n == 0) {
        fail(w, v->mark, "must not be empty");
        return NULL;
    }
    p = calloc(v->n, size);
    if (p == NULL)
        oom(w, v->mark);
    return p;
}

static void
on_listeners(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;

    cfg->listeners = alloc_list(w, v, sizeof(*cfg->listeners));
    if (cfg->listeners == NULL)
        return;
    cfg->nlisteners = v->n;
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        cfg->listeners[i].mark = v->items[i]->mark;
        if (kind_ok(w, v->items[i], CFG_NODE_MAPPING))
            walk_map(w, v->items[i], listener_keys, NELEMS(listener_keys),
                     &cfg->listeners[i]);
        path_pop(w, old);
    }
}

/* ---- auth ---- */

/* A token source as written: "header", "query=NAME", "cookie=NAME". */
struct token_source_def {
    const char *name;
    enum cfg_token_kind kind;
    bool takes_name;
};

static const struct token_source_def token_sources[] = {
    {"header", CFG_TOKEN_HEADER, false},
    {"query", CFG_TOKEN_QUERY, true},
    {"cookie", CFG_TOKEN_COOKIE, true},
    {"subprotocol", CFG_TOKEN_SUBPROTOCOL, false},
};

/* An HTTP token (RFC 9110 tchar): what a query parameter or cookie name may be. */
static bool
is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return false;
    return true;
}

/* Parses one token_from entry into src (name malloc'd); records errors. */
static void
parse_token_source(struct cfg_walk *w, const struct cfg_node *v,
                   struct cfg_token_source *src)
{
    char *s = expand(w, v);
    if (s == NULL)
        return;
    char *eq = strchr(s, '=');
    size_t nlen = eq != NULL ? (size_t)(eq - s) : strlen(s);
    const struct token_source_def *def = NULL;

    for (size_t i = 0; i < NELEMS(token_sources); i++)
        if (strlen(token_sources[i].name) == nlen &&
            strncmp(token_sources[i].name, s, nlen) == 0)
            def = &token_sources[i];
    if (def == NULL)
        fail_value(w, v, "expected header, query=NAME, cookie=NAME or subprotocol");
    else if (def->takes_name && (eq == NULL || !is_token(eq + 1)))
        fail_value(w, v, "expected a parameter or cookie name after \"=\"");
    else if (!def->takes_name && eq != NULL)
        fail_value(w, v, "this source takes no name");
    else if (def->takes_name && (src->name = strdup(eq + 1)) == NULL)
        oom(w, v->mark);
    else
        src->kind = def->kind;
    free(s);
}

static void
on_token_from(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;

    cfg->token_from = alloc_list(w, v, sizeof(*cfg->token_from));
    if (cfg->token_from == NULL)
        return;
    cfg->ntoken_from = v->n;
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        if (kind_ok(w, v->items[i], CFG_NODE_SCALAR))
            parse_token_source(w, v->items[i], &cfg->token_from[i]);
        path_pop(w, old);
    }
}

/* Reads a non-empty list of non-empty strings into a new array. */
static char **
get_strings(struct cfg_walk *w, const struct cfg_node *v, size_t *n)
{
    char **out = alloc_list(w, v, sizeof(*out));

    if (out == NULL)
        return NULL;
    *n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *item = v->items[i];
        size_t old = path_push(w, "[%zu]", i);
        if (kind_ok(w, item, CFG_NODE_SCALAR))
            out[i] = nonempty(w, item);
        path_pop(w, old);
    }
    return out;
}

static void
on_static_tokens(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_provider *p = obj;
    p->tokens = get_strings(w, v, &p->ntokens);
}

/* `type` is read before the walk, to choose the table; see walk_provider. */
static void
on_provider_type(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
}

static const struct cfg_key_def static_provider_keys[] = {
    {"type", CFG_NODE_SCALAR, true, on_provider_type, NULL, "static"},
    {"tokens", CFG_NODE_SEQUENCE, true, on_static_tokens, NULL,
     "[t1, \"${WSGATE_TOKEN}\"]"},
};

/* ---- jwt provider ---- */

/* The JWS algorithms a jwt provider may allow; auth/jwt_verify.c knows the
 * same names. "none" is not one of them. */
static const char *const jwt_algorithm_names[] = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
};

static void
on_jwt_algorithms(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                  const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    j->algorithms_mark = v->mark;
    j->algorithms = get_strings(w, v, &j->nalgorithms);
    for (size_t i = 0; j->algorithms != NULL && i < j->nalgorithms; i++) {
        const char *a = j->algorithms[i];
        size_t k = 0;
        while (a != NULL && k < NELEMS(jwt_algorithm_names) &&
               strcmp(jwt_algorithm_names[k], a) != 0)
            k++;
        if (a == NULL || k < NELEMS(jwt_algorithm_names))
            continue;
        char buf[SHOW_MAX + 4], known[128];
        size_t old = path_push(w, "[%zu]", i);
        if (strcasecmp(a, "none") == 0)
            fail(w, v->items[i]->mark,
                 "\"none\" is never allowed: a token must be signed");
        else
            fail(w, v->items[i]->mark, "unknown algorithm \"%s\" (known: %s)",
                 show(v->items[i]->scalar, buf),
                 join_names(known, sizeof(known), jwt_algorithm_names,
                            NELEMS(jwt_algorithm_names), sizeof(jwt_algorithm_names[0])));
        path_pop(w, old);
    }
}

static void
on_jwt_secret(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    j->secret_mark = v->mark;
    j->secret = nonempty(w, v);
}

static void
on_jwt_public_key(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                  const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    j->public_key_mark = v->mark;
    j->public_key = nonempty(w, v);
}

static void
on_jwt_jwks(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    j->jwks_mark = v->mark;
    j->jwks = nonempty(w, v);
}

static const struct limit_def jwt_leeway = {LIMIT_DURATION, 0, 10ULL * 60 * 1000,
                                            "at most 10m",
                                            offsetof(struct cfg_jwt, leeway_ms)};

static void
on_jwt_leeway(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    on_limit(w, v, ((struct cfg_provider *)obj)->jwt, arg);
}

static void
on_jwt_issuer(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    ((struct cfg_provider *)obj)->jwt->issuer = nonempty(w, v);
}

/* A single audience or a list of them. */
static void
on_jwt_audience(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    if (v->kind == CFG_NODE_SEQUENCE) {
        j->audience = get_strings(w, v, &j->naudience);
        return;
    }
    if (v->kind != CFG_NODE_SCALAR) {
        fail(w, v->mark, "expected a single value or a list, not %s",
             kind_names[v->kind]);
        return;
    }
    char *s = nonempty(w, v);
    if (s == NULL)
        return;
    if ((j->audience = calloc(1, sizeof(*j->audience))) == NULL) {
        free(s);
        oom(w, v->mark);
        return;
    }
    j->audience[0] = s;
    j->naudience = 1;
}

static void
on_jwt_required(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    j->required_claims = get_strings(w, v, &j->nrequired_claims);
}

static void
on_jwt_subject_claim(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                     const void *arg)
{
    struct cfg_jwt *j = ((struct cfg_provider *)obj)->jwt;
    char *s = nonempty(w, v);
    if (s == NULL)
        return;
    free(j->subject_claim);
    j->subject_claim = s;
}

/* Headers the gateway itself writes, forwards by its own rules, or that
 * carry the HTTP framing: a claim may not become one of them. Lower case;
 * a trailing '*' matches any suffix. The same names as gateway/upstream_req.c
 * reserves, plus the credentials it may strip. */
static const char *const jwt_reserved_headers[] = {
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "http2-settings",
    "proxy-*",
    "authorization",
    "cookie",
    "origin",
    "forwarded",
    "x-forwarded-*",
    "x-real-ip",
    "x-request-id",
    "x-auth-subject",
    "sec-websocket-*",
};

/* Compares as the gateway matches header names: ASCII case and '_' = '-'
 * (some servers read both as the same variable). */
static bool
header_name_is(const char *name, const char *lit, bool prefix)
{
    size_t i = 0;
    for (; lit[i] != '\0'; i++) {
        char c = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] | 0x20) : name[i];
        if ((c == '_' ? '-' : c) != lit[i])
            return false;
    }
    return prefix || name[i] == '\0';
}

static bool
header_reserved(const char *name)
{
    char lit[32];
    for (size_t i = 0; i < NELEMS(jwt_reserved_headers); i++) {
        const char *r = jwt_reserved_headers[i];
        size_t n = strlen(r);
        bool prefix = r[n - 1] == '*';
        snprintf(lit, sizeof(lit), "%.*s", (int)(prefix ? n - 1 : n), r);
        if (header_name_is(name, lit, prefix))
            return true;
    }
    return false;
}

/* claims_to_headers: {claim: Header-Name, ...}; the names join the
 * provider's identity headers, which the gateway strips from clients. */
static void
on_jwt_claims_to_headers(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                         const void *arg)
{
    struct cfg_provider *p = obj;
    struct cfg_jwt *j = p->jwt;
    if (v->n == 0)
        return;
    j->claims_to_headers = calloc(v->n, sizeof(*j->claims_to_headers));
    p->identity_headers = calloc(v->n, sizeof(*p->identity_headers));
    if (j->claims_to_headers == NULL || p->identity_headers == NULL) {
        oom(w, v->mark);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *key = v->pairs[i].key, *hv = v->pairs[i].value;
        size_t old = path_key(w, key->scalar);
        char *h = hv != NULL && kind_ok(w, hv, CFG_NODE_SCALAR) ? nonempty(w, hv) : NULL;
        bool dup = false;
        for (size_t k = 0; h != NULL && k < p->nidentity_headers; k++) {
            char lit[256];
            snprintf(lit, sizeof(lit), "%s", p->identity_headers[k]);
            for (char *q = lit; *q != '\0'; q++)
                *q = *q >= 'A' && *q <= 'Z' ? (char)(*q | 0x20) : *q == '_' ? '-' : *q;
            dup |= header_name_is(h, lit, false);
        }
        if (h != NULL && !is_token(h))
            fail_value(w, hv, "a header name is an HTTP token");
        else if (h != NULL && header_reserved(h))
            fail_value(w, hv, "the gateway sets or forwards this header itself");
        else if (h != NULL && dup)
            fail_value(w, hv, "another claim already goes to this header");
        else if (h != NULL && key->scalar[0] == '\0')
            fail(w, key->mark, "empty claim name");
        else if (h != NULL) {
            char *claim = strdup(key->scalar), *copy = strdup(h);
            if (claim == NULL || copy == NULL) {
                free(claim);
                free(copy);
                oom(w, key->mark);
            } else {
                j->claims_to_headers[j->nclaims_to_headers++] =
                    (struct cfg_claim_header){claim, h};
                p->identity_headers[p->nidentity_headers++] = copy;
                h = NULL;
            }
        }
        free(h);
        path_pop(w, old);
    }
}

/* ---- type http ---- */

/* Splits an http:// or https:// URL into h's tls, host, port and target;
 * returns why not. */
static const char *
parse_http_url(const char *s, struct cfg_http_auth *h)
{
    const char *hs;
    if (strncasecmp(s, "https://", 8) == 0) {
        h->tls = true;
        hs = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        hs = s + 7;
    } else {
        return "expected an http:// or https:// URL";
    }
    const char *end = hs + strcspn(hs, "/?#");
    if (*end == '#' || strchr(end, '#') != NULL)
        return "must not hold a fragment";
    if (memchr(hs, '@', (size_t)(end - hs)) != NULL)
        return "must not hold user information";
    const char *close = hs[0] == '[' ? memchr(hs, ']', (size_t)(end - hs)) : NULL;
    const char *colon = memchr(close != NULL ? close : hs, ':',
                               (size_t)(end - (close != NULL ? close : hs)));
    const char *he = colon != NULL ? colon : end;
    if (!cfg_host_valid(hs, (size_t)(he - hs)))
        return "expected a host name or an IP address after the scheme";
    unsigned long port = h->tls ? 443 : 80;
    if (colon != NULL) {
        size_t digits = strspn(colon + 1, "0123456789");
        port = digits > 0 && digits <= 5 ? strtoul(colon + 1, NULL, 10) : 0;
        if (colon + 1 + digits != end || port < 1 || port > 65535)
            return "the port must be a number from 1 to 65535";
    }
    if (!visible_ascii(end))
        return "the path must be printable ASCII without spaces";
    size_t skip = hs[0] == '[' ? 1 : 0;
    h->host = strndup(hs + skip, (size_t)(he - hs) - 2 * skip);
    h->target = strdup(*end == '\0' ? "/" : end);
    h->port = (uint16_t)port;
    if (h->host == NULL || h->target == NULL)
        return "out of memory";
    if (h->target[0] == '?') { /* "http://h?x" means "/?x" */
        char *t = NULL;
        if (asprintf(&t, "/%s", h->target) < 0)
            return "out of memory";
        free(h->target);
        h->target = t;
    }
    lower(h->host);
    return NULL;
}

static void
on_http_url(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_http_auth *h = ((struct cfg_provider *)obj)->http;
    char *s = nonempty(w, v);

    if (s == NULL)
        return;
    /* Never quoted back: the URL may carry a secret from the environment. */
    const char *why = parse_http_url(s, h);
    if (why != NULL) {
        fail(w, v->mark, "%s", why);
        free(s);
        return;
    }
    h->url = s;
}

static const struct limit_def http_timeout = {LIMIT_DURATION, 1, 60ULL * 1000,
                                              "from 1ms to 1m",
                                              offsetof(struct cfg_http_auth, timeout_ms)};
static const struct limit_def http_cache_ttl = {
    LIMIT_DURATION, 0, 24ULL * 3600 * 1000, "at most 24h",
    offsetof(struct cfg_http_auth, cache_ttl_ms)};
static const struct limit_def http_cache_size = {
    LIMIT_COUNT, 1, 1000000, "from 1 to 1000000",
    offsetof(struct cfg_http_auth, cache_size)};
static const struct limit_def http_connections = {
    LIMIT_COUNT, 1, 256, "from 1 to 256", offsetof(struct cfg_http_auth, connections)};

static void
on_http_limit(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    on_limit(w, v, ((struct cfg_provider *)obj)->http, arg);
}

/* A header name: an HTTP token the gateway does not manage itself. */
static char *
get_header_name(struct cfg_walk *w, const struct cfg_node *v, bool reserved_ok)
{
    char *s = nonempty(w, v);

    if (s == NULL)
        return NULL;
    if (!is_token(s))
        fail_value(w, v, "expected a header name");
    else if (!reserved_ok && header_reserved(s))
        fail_value(w, v, "the gateway sets or removes this header itself");
    else
        return s;
    free(s);
    return NULL;
}

static void
on_http_subject_header(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                       const void *arg)
{
    ((struct cfg_provider *)obj)->http->subject_header = get_header_name(w, v, true);
}

/* Reads a list of header names into *names; each must be unique. */
static void
get_header_names(struct cfg_walk *w, const struct cfg_node *v, char ***names, size_t *n)
{
    if ((*names = alloc_list(w, v, sizeof(**names))) == NULL)
        return;
    *n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        if (kind_ok(w, v->items[i], CFG_NODE_SCALAR))
            (*names)[i] = get_header_name(w, v->items[i], false);
        for (size_t j = 0; (*names)[i] != NULL && j < i; j++)
            if ((*names)[j] != NULL && strcasecmp((*names)[j], (*names)[i]) == 0)
                fail(w, v->items[i]->mark, "duplicate header name");
        path_pop(w, old);
    }
}

static const struct cfg_key_def jwt_provider_keys[] = {
    {"type", CFG_NODE_SCALAR, true, on_provider_type, NULL, "jwt"},
    {"algorithms", CFG_NODE_SEQUENCE, true, on_jwt_algorithms, NULL, "[HS256, RS256]"},
    {"secret", CFG_NODE_SCALAR, false, on_jwt_secret, NULL,
     "0123456789abcdef0123456789abcdef"},
    {"public_key", CFG_NODE_SCALAR, false, on_jwt_public_key, NULL, "keys/jwt.pem"},
    {"jwks", CFG_NODE_SCALAR, false, on_jwt_jwks, NULL, "keys/jwks.json"},
    {"leeway", CFG_NODE_SCALAR, false, on_jwt_leeway, &jwt_leeway, "5s"},
    {"issuer", CFG_NODE_SCALAR, false, on_jwt_issuer, NULL, "https://auth.example.com"},
    {"audience", 0, false, on_jwt_audience, NULL, "[chat, api]"},
    {"required_claims", CFG_NODE_SEQUENCE, false, on_jwt_required, NULL, "[exp, sub]"},
    {"subject_claim", CFG_NODE_SCALAR, false, on_jwt_subject_claim, NULL, "email"},
    {"claims_to_headers", CFG_NODE_MAPPING, false, on_jwt_claims_to_headers, NULL,
     "{roles: X-Auth-Roles}"},
};

/* Which key each algorithm family needs; the checks that span the keys. */
static void
check_jwt(struct cfg_walk *w, const struct cfg_node *map, struct cfg_provider *p)
{
    const struct cfg_jwt *j = p->jwt;
    bool hmac = false, pub = false;
    size_t min_secret = 0;
    for (size_t i = 0; j->algorithms != NULL && i < j->nalgorithms; i++) {
        const char *a = j->algorithms[i];
        size_t k = 0;
        while (a != NULL && k < NELEMS(jwt_algorithm_names) &&
               strcmp(jwt_algorithm_names[k], a) != 0)
            k++;
        if (a == NULL || k == NELEMS(jwt_algorithm_names))
            continue; /* already reported */
        if (a[0] == 'H') {
            hmac = true;
            size_t bytes = (size_t)atoi(a + 2) / 8; /* RFC 7518 §3.2 */
            min_secret = bytes > min_secret ? bytes : min_secret;
        } else {
            pub = true;
        }
    }
    if (hmac && j->secret == NULL && j->jwks == NULL)
        fail(w, map->mark, "an HS* algorithm needs secret (or jwks with oct keys)");
    if (pub && j->public_key == NULL && j->jwks == NULL)
        fail(w, map->mark, "an RS*, PS* or ES* algorithm needs public_key or jwks");
    /* A key no allowed algorithm can use is a sign of algorithm confusion. */
    size_t old = path_key(w, "secret");
    if (j->secret != NULL && !hmac && j->algorithms != NULL)
        fail(w, j->secret_mark, "given, but no HS* algorithm is allowed");
    if (j->secret != NULL && hmac && strlen(j->secret) < min_secret)
        fail(w, j->secret_mark,
             "%zu bytes; the allowed HS* algorithms need at least %zu (RFC 7518 "
             "section 3.2)",
             strlen(j->secret), min_secret);
    path_pop(w, old);
    old = path_key(w, "public_key");
    if (j->public_key != NULL && !pub && j->algorithms != NULL)
        fail(w, j->public_key_mark, "given, but no RS*, PS* or ES* algorithm is allowed");
    path_pop(w, old);
}

/* The provider's identity headers are the names it may set upstream: the
 * gateway strips clients' copies of them on every route. */
static void
set_identity_headers(struct cfg_walk *w, const struct cfg_node *v, struct cfg_provider *p,
                     char **names, size_t n)
{
    if (names == NULL || (p->identity_headers = calloc(n, sizeof(char *))) == NULL) {
        if (names != NULL)
            oom(w, v->mark);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (names[i] != NULL &&
            (p->identity_headers[p->nidentity_headers++] = strdup(names[i])) == NULL)
            oom(w, v->mark);
}

static void
on_http_copy_headers(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                     const void *arg)
{
    struct cfg_provider *p = obj;
    get_header_names(w, v, &p->http->copy_headers, &p->http->ncopy_headers);
    set_identity_headers(w, v, p, p->http->copy_headers, p->http->ncopy_headers);
}

static void
on_http_ca_file(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    ((struct cfg_provider *)obj)->http->ca_file = nonempty(w, v);
}

static const struct cfg_key_def http_provider_keys[] = {
    {"type", CFG_NODE_SCALAR, true, on_provider_type, NULL, "http"},
    {"url", CFG_NODE_SCALAR, true, on_http_url, NULL,
     "\"https://Auth.local:9100/check\""},
    {"timeout", CFG_NODE_SCALAR, false, on_http_limit, &http_timeout, "500ms"},
    {"subject_header", CFG_NODE_SCALAR, false, on_http_subject_header, NULL,
     "X-Auth-User"},
    {"copy_headers", CFG_NODE_SEQUENCE, false, on_http_copy_headers, NULL,
     "[X-User-Id, X-User-Roles]"},
    {"cache_ttl", CFG_NODE_SCALAR, false, on_http_limit, &http_cache_ttl, "10s"},
    {"cache_size", CFG_NODE_SCALAR, false, on_http_limit, &http_cache_size, "5000"},
    {"connections", CFG_NODE_SCALAR, false, on_http_limit, &http_connections, "8"},
    {"ca_file", CFG_NODE_SCALAR, false, on_http_ca_file, NULL, "auth-ca.pem"},
};

/* ---- type plugin ---- */

static void
on_plugin_path(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_plugin_auth *pl = ((struct cfg_provider *)obj)->plugin;
    pl->path = nonempty(w, v);
    pl->path_mark = v->mark;
}

static void
on_plugin_options(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                  const void *arg)
{
    struct cfg_plugin_auth *pl = ((struct cfg_provider *)obj)->plugin;

    pl->options_mark = v->mark;
    if (v->n == 0)
        return;
    pl->option_names = calloc(v->n, sizeof(char *));
    pl->option_values = calloc(v->n, sizeof(char *));
    if (pl->option_names == NULL || pl->option_values == NULL) {
        oom(w, v->mark);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *key = v->pairs[i].key, *val = v->pairs[i].value;
        size_t old = path_key(w, key->scalar);
        if (find_value(v, key->scalar) != val)
            fail(w, key->mark, "duplicate key");
        else if (val != NULL && kind_ok(w, val, CFG_NODE_SCALAR)) {
            char *s = expand(w, val);
            if (s != NULL &&
                (pl->option_names[pl->noptions] = strdup(key->scalar)) == NULL) {
                free(s);
                oom(w, key->mark);
            } else if (s != NULL) {
                pl->option_values[pl->noptions++] = s;
            }
        }
        path_pop(w, old);
    }
}

static void
on_plugin_identity_headers(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                           const void *arg)
{
    struct cfg_provider *p = obj;
    char **names = NULL;
    size_t n = 0;
    get_header_names(w, v, &names, &n);
    set_identity_headers(w, v, p, names, n);
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

static const struct cfg_key_def plugin_provider_keys[] = {
    {"type", CFG_NODE_SCALAR, true, on_provider_type, NULL, "plugin"},
    {"path", CFG_NODE_SCALAR, true, on_plugin_path, NULL, "/usr/lib/wsgate/auth.so"},
    {"options", CFG_NODE_MAPPING, false, on_plugin_options, NULL,
     "{key: \"${HMAC_KEY:-k}\", delay: 5ms}"},
    {"identity_headers", CFG_NODE_SEQUENCE, false, on_plugin_identity_headers, NULL,
     "[X-User-Roles]"},
};

/* Each provider type and the keys its mapping may hold. */
struct provider_type_def {
    const char *name;
    enum cfg_provider_type type;
    const struct cfg_key_def *keys;
    size_t nkeys;
};

static const struct provider_type_def provider_types[] = {
    {"static", CFG_PROVIDER_STATIC, static_provider_keys, NELEMS(static_provider_keys)},
    {"jwt", CFG_PROVIDER_JWT, jwt_provider_keys, NELEMS(jwt_provider_keys)},
    {"http", CFG_PROVIDER_HTTP, http_provider_keys, NELEMS(http_provider_keys)},
    {"plugin", CFG_PROVIDER_PLUGIN, plugin_provider_keys, NELEMS(plugin_provider_keys)},
};

/* Finds the provider's type, then walks its mapping with that type's table;
 * an unknown type leaves the other keys unchecked. */
static void
walk_provider(struct cfg_walk *w, const struct cfg_node *map, struct cfg_provider *p)
{
    const struct cfg_node *tv = NULL;

    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key->scalar, "type") == 0 && tv == NULL)
            tv = map->pairs[i].value;
    if (tv == NULL) {
        size_t old = path_key(w, "type");
        fail(w, map->mark, "missing required key");
        path_pop(w, old);
        return;
    }
    size_t old = path_key(w, "type");
    char *s = kind_ok(w, tv, CFG_NODE_SCALAR) ? expand(w, tv) : NULL;
    const struct provider_type_def *def = NULL;
    for (size_t i = 0; s != NULL && i < NELEMS(provider_types); i++)
        if (strcmp(provider_types[i].name, s) == 0)
            def = &provider_types[i];
    if (s != NULL && def == NULL) {
        char buf[SHOW_MAX + 4], known[128];
        fail(w, tv->mark, "unknown provider type \"%s\" (known: %s)",
             show(tv->scalar, buf), JOIN_NAMES(known, provider_types));
    }
    free(s);
    path_pop(w, old);
    if (def == NULL)
        return;
    p->type = def->type;
    if (def->type == CFG_PROVIDER_JWT) {
        if ((p->jwt = calloc(1, sizeof(*p->jwt))) == NULL ||
            (p->jwt->subject_claim = strdup("sub")) == NULL) {
            oom(w, map->mark);
            return;
        }
        p->jwt->leeway_ms = 30 * 1000;
    }
    if (def->type == CFG_PROVIDER_HTTP &&
        (p->http = calloc(1, sizeof(*p->http))) != NULL) {
        p->http->timeout_ms = 2000;
        p->http->cache_size = 1024;
        p->http->connections = 4;
    }
    if (def->type == CFG_PROVIDER_PLUGIN)
        p->plugin = calloc(1, sizeof(*p->plugin));
    if ((def->type == CFG_PROVIDER_HTTP && p->http == NULL) ||
        (def->type == CFG_PROVIDER_PLUGIN && p->plugin == NULL)) {
        oom(w, map->mark);
        return;
    }
    walk_map(w, map, def->keys, def->nkeys, p);
    if (def->type == CFG_PROVIDER_JWT)
        check_jwt(w, map, p);
    const struct cfg_node *ca = find_value(map, "ca_file");
    if (p->http != NULL && ca != NULL && p->http->url != NULL && !p->http->tls) {
        size_t at = path_key(w, "ca_file");
        fail(w, ca->mark, "applies only to an https:// url");
        path_pop(w, at);
    }
}

/* Provider and route names appear in key paths, logs and metrics. */
static bool
name_valid(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void
on_providers(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;

    if (v->n == 0)
        return;
    cfg->providers = calloc(v->n, sizeof(*cfg->providers));
    if (cfg->providers == NULL) {
        oom(w, v->mark);
        return;
    }
    cfg->nproviders = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *key = v->pairs[i].key, *pv = v->pairs[i].value;
        struct cfg_provider *p = &cfg->providers[i];
        size_t old = path_key(w, key->scalar);
        p->mark = key->mark;
        size_t j = 0;
        while (j < i && strcmp(v->pairs[j].key->scalar, key->scalar) != 0)
            j++;
        if (j < i)
            fail(w, key->mark, "duplicate provider name");
        else if (!name_valid(key->scalar))
            fail(w, key->mark,
                 "a provider name may hold only letters, digits, '_', '-', '.'");
        else if (strcmp(key->scalar, "none") == 0)
            fail(w, key->mark,
                 "\"none\" is reserved (auth: none on a route means no authentication)");
        else if ((p->name = strdup(key->scalar)) == NULL)
            oom(w, key->mark);
        else if (kind_ok(w, pv, CFG_NODE_MAPPING))
            walk_provider(w, pv, p);
        path_pop(w, old);
    }
}

static const struct limit_def throttle_failures = {
    LIMIT_COUNT, 1, 1000000, "from 1 to 1000000",
    offsetof(struct cfg_auth_throttle, failures)};
static const struct limit_def throttle_window = {
    LIMIT_DURATION, 1000, 24ULL * 3600 * 1000, "from 1s to 24h",
    offsetof(struct cfg_auth_throttle, window_ms)};
static const struct limit_def throttle_block = {
    LIMIT_DURATION, 1000, 24ULL * 3600 * 1000, "from 1s to 24h",
    offsetof(struct cfg_auth_throttle, block_ms)};

static const struct cfg_key_def throttle_keys[] = {
    {"failures", CFG_NODE_SCALAR, false, on_limit, &throttle_failures, "5"},
    {"window", CFG_NODE_SCALAR, false, on_limit, &throttle_window, "30s"},
    {"block", CFG_NODE_SCALAR, false, on_limit, &throttle_block, "10m"},
};

static void
on_throttle(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;
    struct cfg_auth_throttle *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        oom(w, v->mark);
        return;
    }
    t->failures = 10;
    t->window_ms = 60ULL * 1000;
    t->block_ms = 5ULL * 60 * 1000;
    cfg->throttle = t;
    walk_map(w, v, throttle_keys, NELEMS(throttle_keys), t);
}

static const struct cfg_key_def auth_keys[] = {
    {"token_from", CFG_NODE_SEQUENCE, false, on_token_from, NULL,
     "[header, query=access_token]"},
    {"providers", CFG_NODE_MAPPING, false, on_providers, NULL,
     "{edge: {type: static, tokens: [t]}}"},
    {"throttle", CFG_NODE_MAPPING, false, on_throttle, NULL,
     "{failures: 5, window: 1m, block: 5m}"},
};

static void
on_auth(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    walk_map(w, v, auth_keys, NELEMS(auth_keys), obj);
}

/* ---- routes ---- */

/* The route being walked: route_keys' handlers get one of these. */
struct route_ctx {
    struct cfg_route *r;
    struct route_walk *rw;
};

static void
on_route_name(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    char *s = nonempty(w, v);

    if (s != NULL && !visible_ascii(s)) {
        fail_value(w, v, "a route name must be printable ASCII without spaces");
        free(s);
        s = NULL;
    }
    c->r->name = s;
    c->rw->has_name = s != NULL;
    c->rw->name_mark = v->mark;
    c->rw->name_raw = v->scalar;
}

/* Returns NULL when s can be matched against a request path, or why not. */
static const char *
check_route_path(const char *s)
{
    if (s[0] != '/')
        return "must start with \"/\"";
    if (!visible_ascii(s))
        return "must be printable ASCII without spaces (percent-encode the rest)";
    if (strpbrk(s, "?#") != NULL)
        return "must not hold a query or a fragment";
    return NULL;
}

static void
on_route_path(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    bool prefix = arg != NULL;
    char *s = expand(w, v);

    *(prefix ? &c->rw->has_prefix : &c->rw->has_path) = true;
    if (s == NULL)
        return;
    const char *why = check_route_path(s);
    if (why != NULL) {
        fail_value(w, v, why);
        free(s);
        return;
    }
    free(c->r->path); /* both path and path_prefix: reported by check_route */
    c->r->path = s;
    c->r->prefix = prefix;
    c->rw->path_mark = v->mark;
    c->rw->path_raw = v->scalar;
}

/* Returns NULL when s (lower-cased) is a host a route can match, or why not. */
static const char *
check_route_host(const char *s)
{
    size_t len = strlen(s);
    const char *close = s[0] == '[' ? strchr(s, ']') : NULL;
    const char *colon = strchr(s, ':');

    if (close != NULL && close[1] != '\0')
        return "must not include a port";
    if (close == NULL && colon != NULL)
        return strchr(colon + 1, ':') == NULL ? "must not include a port"
                                              : "an IPv6 address goes in brackets";
    if (!cfg_host_valid(s, len))
        return "expected a host name or an IP address";
    return NULL;
}

static void
on_route_host(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    char *s = nonempty(w, v);

    if (s == NULL)
        return;
    for (char *p = s; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *why = check_route_host(s);
    if (why != NULL) {
        fail_value(w, v, why);
        free(s);
        return;
    }
    c->r->host = s;
}

static void
on_route_handler(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    char buf[SHOW_MAX + 4], known[128];
    char *s = expand(w, v);

    c->rw->has_handler = true;
    if (s == NULL)
        return;
    if (cfg_handler_known(s)) {
        c->r->handler = s;
        return;
    }
    free(s);
    fail(w, v->mark, "unknown handler \"%s\" (known: %s)", show(v->scalar, buf),
         JOIN_NAMES(known, known_handlers));
}

static void
on_route_plugin(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    char *s = nonempty(w, v);

    c->rw->has_plugin = true;
    if (s == NULL)
        return;
    if (s[0] != '/') {
        /* dlopen would search the library path for a bare name. */
        fail_value(w, v, "must be an absolute path to a shared object");
        free(s);
        return;
    }
    c->r->plugin = s;
    c->r->plugin_mark = v->mark;
}

/* options: a flat mapping of names to strings, handed to the handler. */
static void
on_route_options(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;

    c->r->options_mark = v->mark;
    if (v->n == 0)
        return;
    c->r->options = calloc(v->n, sizeof(*c->r->options));
    if (c->r->options == NULL) {
        oom(w, v->mark);
        return;
    }
    c->r->noptions = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *key = v->pairs[i].key, *ov = v->pairs[i].value;
        struct cfg_option *o = &c->r->options[i];
        size_t old = path_key(w, key->scalar);
        size_t j = 0;
        while (j < i && strcmp(v->pairs[j].key->scalar, key->scalar) != 0)
            j++;
        if (j < i)
            fail(w, key->mark, "duplicate key");
        else if (key->scalar[0] == '\0' || !visible_ascii(key->scalar))
            fail(w, key->mark, "an option name must be printable ASCII without spaces");
        else if (ov == NULL)
            fail(w, key->mark, "expected a single value, found an empty value");
        else if (kind_ok(w, ov, CFG_NODE_SCALAR) && (o->value = expand(w, ov)) != NULL &&
                 (o->name = strdup(key->scalar)) == NULL)
            oom(w, key->mark);
        path_pop(w, old);
    }
}

/* room_from: route | path | query=NAME */
static void
on_route_room_from(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                   const void *arg)
{
    struct route_ctx *c = obj;
    char *s = expand(w, v);

    if (s == NULL)
        return;
    if (strcmp(s, "route") == 0) {
        c->r->room_from = CFG_ROOM_ROUTE;
    } else if (strcmp(s, "path") == 0) {
        c->r->room_from = CFG_ROOM_PATH;
    } else if (strncmp(s, "query=", 6) == 0 && s[6] != '\0' && visible_ascii(s + 6) &&
               strpbrk(s + 6, "&=#") == NULL) {
        c->r->room_from = CFG_ROOM_QUERY;
        if ((c->r->room_param = strdup(s + 6)) == NULL)
            oom(w, v->mark);
    } else {
        fail_value(w, v, "expected route, path or query=NAME");
    }
    free(s);
}

static void
on_route_echo_to_sender(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                        const void *arg)
{
    get_bool(w, v, &((struct route_ctx *)obj)->r->echo_to_sender);
}

static const struct limit_def route_max_room_members = {
    LIMIT_COUNT, 1, 1000000, "from 1 to 1000000",
    offsetof(struct cfg_route, max_room_members)};
static const struct limit_def route_max_rooms = {
    LIMIT_COUNT, 1, 1000000, "from 1 to 1000000", offsetof(struct cfg_route, max_rooms)};

static void
on_route_count(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    on_limit(w, v, ((struct route_ctx *)obj)->r, arg);
}

/* Parses one upstream URL into out (whose mark is set); records why not.
 * The URL is never quoted back: it may carry a secret from the environment. */
static int
parse_upstream(struct cfg_walk *w, const struct cfg_node *v, struct cfg_upstream *out)
{
    struct gw_err err = {.msg = ""};
    char *s = nonempty(w, v);

    if (s == NULL)
        return -1;
    int rc = cfg_parse_upstream_url(s, out, &err);
    free(s);
    if (rc != 0)
        fail(w, v->mark, "%s", err.msg);
    return rc;
}

static void
on_route_upstream(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                  const void *arg)
{
    struct route_ctx *c = obj;
    struct cfg_upstream u = {.mark = v->mark};

    c->rw->has_upstream = true;
    if (parse_upstream(w, v, &u) != 0) {
        c->rw->bad_upstream = true;
        return;
    }
    if (c->r->upstreams != NULL) { /* upstreams came first: reported after the walk */
        cfg_upstream_clear(&u);
        return;
    }
    c->r->upstreams = malloc(sizeof(*c->r->upstreams));
    if (c->r->upstreams == NULL) {
        oom(w, v->mark);
        cfg_upstream_clear(&u);
        return;
    }
    c->r->upstreams[0] = u;
    c->r->nupstreams = 1;
}

static void
on_route_upstreams(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                   const void *arg)
{
    struct route_ctx *c = obj;

    c->rw->has_upstreams = true;
    if (v->n > CFG_MAX_UPSTREAMS) {
        fail(w, v->mark, "at most %d upstreams (found %zu)", CFG_MAX_UPSTREAMS, v->n);
        c->rw->bad_upstream = true;
        return;
    }
    struct cfg_upstream *list = alloc_list(w, v, sizeof(*list));
    if (list == NULL) {
        c->rw->bad_upstream = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        list[i].mark = v->items[i]->mark;
        if (!kind_ok(w, v->items[i], CFG_NODE_SCALAR) ||
            parse_upstream(w, v->items[i], &list[i]) != 0)
            c->rw->bad_upstream = true;
        path_pop(w, old);
    }
    if (c->r->upstreams == NULL) {
        c->r->upstreams = list;
        c->r->nupstreams = v->n;
        return;
    }
    for (size_t i = 0; i < v->n; i++) /* upstream came first: reported after the walk */
        cfg_upstream_clear(&list[i]);
    free(list);
}

static void
on_route_strip(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    if (get_bool(w, v, &c->r->strip_prefix) == 0) {
        c->rw->has_strip = true;
        c->rw->strip_mark = v->mark;
    }
}

/* `auth: name`, `auth: none` or `auth: [a, b]` (a chain: all must allow);
 * names are resolved once every provider is known (resolve_routes). */
static void
on_route_auth(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    size_t n = v->kind == CFG_NODE_SEQUENCE ? v->n : 1;

    c->rw->auth_mark = v->mark;
    c->rw->auth_raw = v->kind == CFG_NODE_SCALAR ? v->scalar : "";
    if (v->kind == CFG_NODE_SEQUENCE && n == 0) {
        fail(w, v->mark, "must not be empty (write auth: none for no authentication)");
        return;
    }
    if ((c->r->auth_chain = calloc(n, sizeof(char *))) == NULL ||
        (c->r->providers = calloc(n, sizeof(*c->r->providers))) == NULL) {
        oom(w, v->mark);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t old = v->kind == CFG_NODE_SEQUENCE ? path_push(w, "[%zu]", i) : w->plen;
        const struct cfg_node *item = v->kind == CFG_NODE_SEQUENCE ? v->items[i] : v;
        char *s = kind_ok(w, item, CFG_NODE_SCALAR) ? nonempty(w, item) : NULL;
        if (s != NULL && strcmp(s, "none") == 0 && v->kind == CFG_NODE_SEQUENCE) {
            fail(w, item->mark, "\"none\" cannot be part of a chain");
            free(s);
            s = NULL;
        }
        for (size_t j = 0; s != NULL && j < i; j++)
            if (c->r->auth_chain[j] != NULL && strcmp(c->r->auth_chain[j], s) == 0) {
                fail(w, item->mark, "provider \"%s\" is already in the chain",
                     c->r->auth_chain[j]);
                break;
            }
        c->r->auth_chain[i] = s;
        path_pop(w, old);
    }
    c->r->nauth = n;
    if (v->kind == CFG_NODE_SCALAR && c->r->auth_chain[0] != NULL &&
        strcmp(c->r->auth_chain[0], "none") == 0) {
        free(c->r->auth_chain[0]);
        c->r->auth_chain[0] = NULL;
        c->r->nauth = 0;
        return;
    }
    c->rw->auth_node = v;
    if (c->r->auth_chain[0] != NULL && (c->r->auth = strdup(c->r->auth_chain[0])) == NULL)
        oom(w, v->mark);
}

/* Returns NULL when s (lower-cased) is an origin pattern: SCHEME://HOST or
 * SCHEME://HOST:PORT, where HOST may start with "*." (one or more labels). */
static const char *
check_origin(const char *s)
{
    const char *sep = strstr(s, "://");
    if (sep == NULL || sep == s)
        return "expected SCHEME://HOST[:PORT], as a browser sends in Origin";
    for (const char *p = s; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("+-.", *p)))
            return "the scheme may hold only letters, digits, '+', '-', '.'";
    const char *host = sep + 3;
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    if (strpbrk(host, "/?#") != NULL)
        return "an origin has no path, query or fragment";
    if (strchr(host, '*') != NULL)
        return "a wildcard may only be the first label (\"https://*.example.com\")";
    const char *why = check_host_port(host);
    return why != NULL ? "expected SCHEME://HOST[:PORT] with a host name or an IP address"
                       : NULL;
}

static void
on_route_origins(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;

    if ((c->r->origins = alloc_list(w, v, sizeof(char *))) == NULL)
        return;
    c->r->norigins = v->n;
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        char *s =
            kind_ok(w, v->items[i], CFG_NODE_SCALAR) ? nonempty(w, v->items[i]) : NULL;
        const char *why = s != NULL ? check_origin(lower(s)) : NULL;
        if (why != NULL) {
            fail_value(w, v->items[i], why);
            free(s);
            s = NULL;
        }
        c->r->origins[i] = s;
        path_pop(w, old);
    }
}

static const struct enum_name balances[] = {
    {"round_robin", CFG_BALANCE_ROUND_ROBIN},
    {"least_conn", CFG_BALANCE_LEAST_CONN},
    {"hash_ip", CFG_BALANCE_HASH_IP},
    {"hash_subject", CFG_BALANCE_HASH_SUBJECT},
};

static void
on_route_balance(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct route_ctx *c = obj;
    int value;
    if (get_enum(w, v, balances, NELEMS(balances), &value) == 0)
        c->r->balance = (enum cfg_balance)value;
}

/* Lower-cases s in place and returns it. */
static char *
lower(char *s)
{
    for (char *p = s; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

/* Returns NULL when s is a Host header value: a host name or IP address
 * (IPv6 in brackets) with an optional :PORT (1 to 65535), or why not. */
static const char *
check_host_port(const char *s)
{
    const char *close = s[0] == '[' ? strchr(s, ']') : NULL;
    const char *colon = strchr(close != NULL ? close : s, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);

    if (close == NULL && colon != NULL && strchr(colon + 1, ':') != NULL)
        return "an IPv6 address goes in brackets";
    if (!cfg_host_valid(s, hlen))
        return "expected a host name or an IP address, optionally with :PORT";
    if (colon == NULL)
        return NULL;
    size_t digits = strspn(colon + 1, "0123456789");
    unsigned long port = digits > 0 && digits <= 5 ? strtoul(colon + 1, NULL, 10) : 0;
    if (colon[1 + digits] != '\0' || port < 1 || port > 65535)
        return "the port must be a number from 1 to 65535";
    return NULL;
}

static void
on_route_upstream_host(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                       const void *arg)
{
    struct route_ctx *c = obj;
    char *s = nonempty(w, v);

    if (s == NULL)
        return;
    const char *why = check_host_port(lower(s));
    if (why != NULL) {
        fail_value(w, v, why);
        free(s);
        return;
    }
    c->r->upstream_host = s;
}

/* A string field of struct cfg_upstream_tls, at offset arg. */
static void
on_upstream_tls_file(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                     const void *arg)
{
    char **field = (char **)((char *)obj + *(const size_t *)arg);
    *field = nonempty(w, v);
}

static const size_t utls_ca_file = offsetof(struct cfg_upstream_tls, ca_file);
static const size_t utls_certificate = offsetof(struct cfg_upstream_tls, certificate);
static const size_t utls_key = offsetof(struct cfg_upstream_tls, key);

static void
on_upstream_tls_server_name(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                            const void *arg)
{
    struct cfg_upstream_tls *t = obj;
    char *s = nonempty(w, v);

    if (s == NULL)
        return;
    if (s[0] == '[' || !cfg_host_valid(lower(s), strlen(s))) {
        fail_value(w, v, "expected a host name or an IPv4 address");
        free(s);
        return;
    }
    t->server_name = s;
}

static void
on_upstream_tls_verify(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                       const void *arg)
{
    get_bool(w, v, &((struct cfg_upstream_tls *)obj)->verify);
}

static const struct cfg_key_def upstream_tls_keys[] = {
    {"ca_file", CFG_NODE_SCALAR, false, on_upstream_tls_file, &utls_ca_file, "ca.pem"},
    {"certificate", CFG_NODE_SCALAR, false, on_upstream_tls_file, &utls_certificate,
     "client.pem"},
    {"key", CFG_NODE_SCALAR, false, on_upstream_tls_file, &utls_key, "client.key"},
    {"server_name", CFG_NODE_SCALAR, false, on_upstream_tls_server_name, NULL,
     "Chat.Internal"},
    {"verify", CFG_NODE_SCALAR, false, on_upstream_tls_verify, NULL, "false"},
};

/* The value node of key `name` in map, or NULL. */
static const struct cfg_node *
find_value(const struct cfg_node *map, const char *name)
{
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key->scalar, name) == 0)
            return map->pairs[i].value;
    return NULL;
}

static void
on_route_upstream_tls(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                      const void *arg)
{
    struct route_ctx *c = obj;
    struct cfg_upstream_tls *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        oom(w, v->mark);
        return;
    }
    t->verify = true;
    c->r->upstream_tls = t;
    walk_map(w, v, upstream_tls_keys, NELEMS(upstream_tls_keys), t);
    /* Presence, not validity: an invalid value was reported already. */
    bool has_cert = find_value(v, "certificate") != NULL;
    bool has_key = find_value(v, "key") != NULL;
    if (has_cert != has_key) {
        size_t old = path_key(w, has_cert ? "key" : "certificate");
        fail(w, v->mark, "missing (certificate and key go together)");
        path_pop(w, old);
    }
}

#define HEALTH_INTERVAL_MS (10ULL * 1000)
#define HEALTH_TIMEOUT_MS (2ULL * 1000)

static const struct limit_def health_interval = {
    LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
    offsetof(struct cfg_health_check, interval_ms)};
static const struct limit_def health_timeout = {
    LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
    offsetof(struct cfg_health_check, timeout_ms)};

static void
on_health_path(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_health_check *hc = obj;
    char *s = expand(w, v);

    if (s == NULL)
        return;
    if (s[0] != '/')
        fail_value(w, v, "must start with \"/\"");
    else if (!visible_ascii(s))
        fail_value(w, v,
                   "must be printable ASCII without spaces (percent-encode the rest)");
    else if (strchr(s, '#') != NULL)
        fail_value(w, v, "must not hold a fragment");
    else {
        hc->path = s;
        return;
    }
    free(s);
}

static const struct cfg_key_def health_check_keys[] = {
    {"interval", CFG_NODE_SCALAR, false, on_limit, &health_interval, "30s"},
    {"timeout", CFG_NODE_SCALAR, false, on_limit, &health_timeout, "500ms"},
    {"path", CFG_NODE_SCALAR, false, on_health_path, NULL, "/healthz?probe=1"},
};

static void
on_route_health_check(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                      const void *arg)
{
    struct route_ctx *c = obj;
    struct cfg_health_check *hc = calloc(1, sizeof(*hc));
    size_t nerrs = w->nerrs;

    if (hc == NULL) {
        oom(w, v->mark);
        return;
    }
    hc->interval_ms = HEALTH_INTERVAL_MS;
    hc->timeout_ms = HEALTH_TIMEOUT_MS;
    c->r->health_check = hc;
    walk_map(w, v, health_check_keys, NELEMS(health_check_keys), hc);
    if (hc->path == NULL && (hc->path = strdup("/")) == NULL)
        oom(w, v->mark);
    if (w->nerrs != nerrs || hc->timeout_ms < hc->interval_ms)
        return; /* compare only values that were read */
    const struct cfg_node *timeout = find_value(v, "timeout");
    const struct cfg_node *interval = find_value(v, "interval");
    size_t old = path_key(w, timeout != NULL ? "timeout" : "interval");
    if (timeout != NULL)
        fail(w, timeout->mark, "must be less than interval%s",
             interval != NULL ? "" : " (default 10s)");
    else
        fail(w, interval->mark, "must be more than timeout (default 2s)");
    path_pop(w, old);
}

/* The timeouts of an upstream route, each at least 1ms, so that 0 means
 * "not given" until check_route fills the default. */
struct route_duration {
    struct limit_def def;
    uint64_t default_ms;
};

static const struct route_duration route_connect_timeout = {
    {LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
     offsetof(struct cfg_route, connect_timeout_ms)},
    5ULL * 1000};
static const struct route_duration route_upstream_timeout = {
    {LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
     offsetof(struct cfg_route, upstream_timeout_ms)},
    10ULL * 1000};
static const struct route_duration route_backoff = {
    {LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
     offsetof(struct cfg_route, backoff_ms)},
    10ULL * 1000};
static const struct route_duration route_resolve_interval = {
    {LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms",
     offsetof(struct cfg_route, resolve_interval_ms)},
    30ULL * 1000};

static const struct route_duration *const route_durations[] = {
    &route_connect_timeout,
    &route_upstream_timeout,
    &route_backoff,
    &route_resolve_interval,
};

static void
on_route_duration(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                  const void *arg)
{
    on_limit(w, v, ((struct route_ctx *)obj)->r,
             &((const struct route_duration *)arg)->def);
}

static void
on_route_deflate(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    static const struct enum_name onoff[] = {
        {"on", 1}, {"off", 0}, {"true", 1}, {"false", 0}};
    int value;
    if (get_enum(w, v, onoff, NELEMS(onoff), &value) == 0)
        ((struct route_ctx *)obj)->r->deflate = value != 0;
}

static const struct limit_def route_deflate_threshold = {
    LIMIT_SIZE, 0, GIB, "from 0B to 1GiB", offsetof(struct cfg_route, deflate_threshold)};
static const struct limit_def route_max_send_queue = {
    LIMIT_SIZE, 4 * KIB, 4 * GIB, "from 4KiB to 4GiB",
    offsetof(struct cfg_route, max_send_queue)};
static const struct limit_def route_ping_interval = {
    LIMIT_DURATION, 1, UINT64_MAX, "at least 1ms (or off)",
    offsetof(struct cfg_route, ping_interval_ms)};

static void
on_route_size(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    on_limit(w, v, ((struct route_ctx *)obj)->r, arg);
}

static void
on_route_ping_interval(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                       const void *arg)
{
    struct route_ctx *c = obj;
    if (strcmp(v->scalar, "off") == 0)
        c->r->ping_interval_ms = 0;
    else
        on_limit(w, v, c->r, &route_ping_interval);
}

static const struct enum_name slow_readers[] = {
    {"close", CFG_SLOW_READER_CLOSE},
    {"drop", CFG_SLOW_READER_DROP},
};

static void
on_route_slow_reader(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                     const void *arg)
{
    int value;
    if (get_enum(w, v, slow_readers, NELEMS(slow_readers), &value) == 0)
        ((struct route_ctx *)obj)->r->slow_reader = (enum cfg_slow_reader)value;
}

/* A route's own token_from, in the syntax of auth.token_from. */
static void
on_route_token_from(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                    const void *arg)
{
    struct cfg_route *r = ((struct route_ctx *)obj)->r;
    r->token_from = alloc_list(w, v, sizeof(*r->token_from));
    if (r->token_from == NULL)
        return;
    r->ntoken_from = v->n;
    for (size_t i = 0; i < v->n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        if (kind_ok(w, v->items[i], CFG_NODE_SCALAR))
            parse_token_source(w, v->items[i], &r->token_from[i]);
        path_pop(w, old);
    }
}

static void
on_route_close_on_expiry(struct cfg_walk *w, const struct cfg_node *v, void *obj,
                         const void *arg)
{
    get_bool(w, v, &((struct route_ctx *)obj)->r->close_on_expiry);
}

static const struct cfg_key_def route_keys[] = {
    {"name", CFG_NODE_SCALAR, false, on_route_name, NULL, "chat"},
    {"path", CFG_NODE_SCALAR, false, on_route_path, NULL, "/chat"},
    {"path_prefix", CFG_NODE_SCALAR, false, on_route_path, "prefix", "/api/"},
    {"host", CFG_NODE_SCALAR, false, on_route_host, NULL, "Example.COM"},
    {"handler", CFG_NODE_SCALAR, false, on_route_handler, NULL, "echo"},
    {"upstream", CFG_NODE_SCALAR, false, on_route_upstream, NULL,
     "\"ws://127.0.0.1:9001/x\""},
    {"upstreams", CFG_NODE_SEQUENCE, false, on_route_upstreams, NULL,
     "[\"ws://[::1]:9000\", \"WSS://svc.local/v1/\"]"},
    {"strip_prefix", CFG_NODE_SCALAR, false, on_route_strip, NULL, "true"},
    {"auth", CFG_NODE_SCALAR_OR_SEQUENCE, false, on_route_auth, NULL, "none"},
    {"origins", CFG_NODE_SEQUENCE, false, on_route_origins, NULL,
     "[\"https://App.example.com\", \"https://*.example.com:8443\"]"},
    {"balance", CFG_NODE_SCALAR, false, on_route_balance, NULL, "least_conn"},
    {"upstream_host", CFG_NODE_SCALAR, false, on_route_upstream_host, NULL,
     "Chat.Internal:8080"},
    {"upstream_tls", CFG_NODE_MAPPING, false, on_route_upstream_tls, NULL,
     "{verify: false}"},
    {"health_check", CFG_NODE_MAPPING, false, on_route_health_check, NULL,
     "{interval: 5s}"},
    {"connect_timeout", CFG_NODE_SCALAR, false, on_route_duration, &route_connect_timeout,
     "2s"},
    {"upstream_timeout", CFG_NODE_SCALAR, false, on_route_duration,
     &route_upstream_timeout, "3s"},
    {"backoff", CFG_NODE_SCALAR, false, on_route_duration, &route_backoff, "500ms"},
    {"resolve_interval", CFG_NODE_SCALAR, false, on_route_duration,
     &route_resolve_interval, "1m"},
    {"token_from", CFG_NODE_SEQUENCE, false, on_route_token_from, NULL,
     "[query=access_token, subprotocol]"},
    {"close_on_expiry", CFG_NODE_SCALAR, false, on_route_close_on_expiry, NULL, "false"},
    {"deflate", CFG_NODE_SCALAR, false, on_route_deflate, NULL, "on"},
    {"deflate_threshold", CFG_NODE_SCALAR, false, on_route_size, &route_deflate_threshold,
     "256B"},
    {"ping_interval", CFG_NODE_SCALAR, false, on_route_ping_interval, NULL, "20s"},
    {"max_send_queue", CFG_NODE_SCALAR, false, on_route_size, &route_max_send_queue,
     "8MiB"},
    {"slow_reader", CFG_NODE_SCALAR, false, on_route_slow_reader, NULL, "drop"},
    {"plugin", CFG_NODE_SCALAR, false, on_route_plugin, NULL, "/usr/lib/wsgate/h.so"},
    {"options", CFG_NODE_MAPPING, false, on_route_options, NULL, "{greeting: hi}"},
    {"room_from", CFG_NODE_SCALAR, false, on_route_room_from, NULL, "query=room"},
    {"echo_to_sender", CFG_NODE_SCALAR, false, on_route_echo_to_sender, NULL, "true"},
    {"max_room_members", CFG_NODE_SCALAR, false, on_route_count, &route_max_room_members,
     "500"},
    {"max_rooms", CFG_NODE_SCALAR, false, on_route_count, &route_max_rooms, "100"},
};

/* The keys that mean something only on an upstream route; strip_prefix,
 * which may be false anywhere, is checked on its own. */
static const char *const upstream_only_keys[] = {
    "balance",         "upstream_host",    "upstream_tls", "health_check",
    "connect_timeout", "upstream_timeout", "backoff",      "resolve_interval",
};

/* The keys of the in-process endpoint: an upstream negotiates its own. */
static const char *const endpoint_only_keys[] = {
    "deflate", "deflate_threshold", "ping_interval", "max_send_queue", "slow_reader",
};

/* walk_map tracks keys seen in a 64-bit mask. */
_Static_assert(NELEMS(route_keys) <= 64, "walk_map's mask holds 64 keys");

/* Reports each key of `keys` that the route has: one that applies only to
 * the other kind of route. */
static void
check_only(struct cfg_walk *w, const struct cfg_node *map, const char *const *keys,
           size_t nkeys, const char *why)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_node *key = map->pairs[i].key;
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k], key->scalar) != 0)
            k++;
        if (k == nkeys || find_value(map, key->scalar) != map->pairs[i].value)
            continue; /* not one, or a duplicate, reported already */
        size_t old = path_key(w, key->scalar);
        fail(w, key->mark, "%s", why);
        path_pop(w, old);
    }
}

/* Reports each upstream-only key that a handler route has. */
static void
check_upstream_only(struct cfg_walk *w, const struct cfg_node *map)
{
    check_only(w, map, upstream_only_keys, NELEMS(upstream_only_keys),
               "applies only to upstream routes");
}

/* The keys that belong to one handler: an error on any other route. */
static const struct {
    const char *key;
    const char *handler;
} handler_only_keys[] = {
    {"plugin", "plugin"},
    {"options", "plugin"},
    {"room_from", "broadcast"},
    {"echo_to_sender", "broadcast"},
    {"max_room_members", "broadcast"},
    {"max_rooms", "broadcast"},
};

/* Reports each key of handler_only_keys that route r (whose handler is
 * `handler`, or NULL for an upstream route) should not have. */
static void
check_handler_only(struct cfg_walk *w, const struct cfg_node *map, const char *handler)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_node *key = map->pairs[i].key;
        size_t k = 0;
        while (k < NELEMS(handler_only_keys) &&
               strcmp(handler_only_keys[k].key, key->scalar) != 0)
            k++;
        if (k == NELEMS(handler_only_keys) ||
            find_value(map, key->scalar) != map->pairs[i].value ||
            (handler != NULL && strcmp(handler, handler_only_keys[k].handler) == 0))
            continue;
        size_t old = path_key(w, key->scalar);
        fail(w, key->mark, "applies only to routes with handler: %s",
             handler_only_keys[k].handler);
        path_pop(w, old);
    }
}

/* Fills a broadcast route's defaults and checks where its room comes from. */
static void
broadcast_defaults(struct cfg_walk *w, const struct cfg_node *map, struct cfg_route *r)
{
    if (r->room_from == 0)
        r->room_from = r->prefix ? CFG_ROOM_PATH : CFG_ROOM_ROUTE;
    if (r->max_room_members == 0)
        r->max_room_members = 10000;
    if (r->max_rooms == 0)
        r->max_rooms = 10000;
    const struct cfg_node *rf = find_value(map, "room_from");
    if (rf != NULL && r->room_from == CFG_ROOM_PATH && !r->prefix && r->path != NULL) {
        size_t old = path_key(w, "room_from");
        fail(w, rf->mark, "path needs a path_prefix route, not path");
        path_pop(w, old);
    }
}

/* Fills an upstream route's unset timeouts, so that the gateway reads them
 * without checking, and checks what spans its upstreams and upstream_tls. */
static void
upstream_defaults(struct cfg_walk *w, const struct cfg_node *map, struct cfg_route *r,
                  const struct route_walk *rw)
{
    for (size_t i = 0; i < NELEMS(route_durations); i++) {
        uint64_t *ms = (uint64_t *)((char *)r + route_durations[i]->def.offset);
        if (*ms == 0)
            *ms = route_durations[i]->default_ms;
    }
    bool any_tls = false;
    for (size_t i = 0; i < r->nupstreams; i++)
        any_tls = any_tls || r->upstreams[i].tls;
    const struct cfg_node *tls = find_value(map, "upstream_tls");
    if (tls != NULL && !any_tls && !rw->bad_upstream && r->nupstreams > 0)
        fail(w, tls->mark, "upstream_tls needs a wss:// upstream");
}

/* The checks that span a route's keys; errors sit at the route's mapping. */
static void
check_route(struct cfg_walk *w, const struct cfg_node *map, struct cfg_route *r,
            struct route_walk *rw)
{
    bool upstream = rw->has_upstream || rw->has_upstreams;
    const char *up_key = rw->has_upstream ? "upstream" : "upstreams";

    if (rw->has_path && rw->has_prefix)
        fail(w, map->mark, "path and path_prefix cannot be used together");
    else if (!rw->has_path && !rw->has_prefix)
        fail(w, map->mark, "needs path or path_prefix");
    if (rw->has_upstream && rw->has_upstreams)
        fail(w, map->mark, "upstream and upstreams cannot be used together");
    if (rw->has_handler && upstream)
        fail(w, map->mark, "handler and %s cannot be used together", up_key);
    else if (!rw->has_handler && !upstream)
        fail(w, map->mark, "needs handler, upstream or upstreams");
    r->kind = upstream ? CFG_ROUTE_UPSTREAM : CFG_ROUTE_HANDLER;
    if (rw->has_strip && r->strip_prefix) {
        size_t old = path_key(w, "strip_prefix");
        if (rw->has_path)
            fail(w, rw->strip_mark, "needs path_prefix, not path");
        else if (rw->has_handler)
            fail(w, rw->strip_mark, "applies only to upstream routes");
        path_pop(w, old);
    }
    if (rw->has_handler && !upstream)
        check_upstream_only(w, map);
    if (upstream || r->handler != NULL)
        check_handler_only(w, map, upstream ? NULL : r->handler);
    if (r->handler != NULL && strcmp(r->handler, "plugin") == 0 && !rw->has_plugin)
        fail(w, map->mark, "handler: plugin needs plugin (the shared object's path)");
    if (r->handler != NULL && strcmp(r->handler, "broadcast") == 0)
        broadcast_defaults(w, map, r);
    if (r->kind == CFG_ROUTE_UPSTREAM)
        upstream_defaults(w, map, r, rw);
    if (upstream && !rw->has_handler)
        check_only(w, map, endpoint_only_keys, NELEMS(endpoint_only_keys),
                   "applies only to handler routes");
    if (r->name == NULL && !rw->has_name && r->path != NULL) {
        r->name = strdup(r->path);
        rw->name_mark = rw->path_mark;
        rw->name_raw = rw->path_raw;
        if (r->name == NULL)
            oom(w, map->mark);
    }
}

static void
on_routes(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg *cfg = obj;

    cfg->routes = alloc_list(w, v, sizeof(*cfg->routes));
    if (cfg->routes == NULL)
        return;
    w->routes = calloc(v->n, sizeof(*w->routes));
    if (w->routes == NULL) {
        oom(w, v->mark);
        return;
    }
    cfg->nroutes = v->n;
    for (size_t i = 0; i < v->n; i++) {
        struct route_ctx c = {&cfg->routes[i], &w->routes[i]};
        size_t old = path_push(w, "[%zu]", i);
        cfg->routes[i].mark = v->items[i]->mark;
        cfg->routes[i].close_on_expiry = true;
        cfg->routes[i].deflate_threshold = CFG_DEFLATE_THRESHOLD_DEFAULT;
        cfg->routes[i].ping_interval_ms = CFG_PING_INTERVAL_DEFAULT_MS;
        if (kind_ok(w, v->items[i], CFG_NODE_MAPPING)) {
            walk_map(w, v->items[i], route_keys, NELEMS(route_keys), &c);
            check_route(w, v->items[i], c.r, c.rw);
        }
        path_pop(w, old);
    }
}

/* ---- the whole document ---- */

/* ---- resolver ---- */

static void
on_nameservers(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    struct cfg_resolver *r = obj;
    r->nameservers = get_strings(w, v, &r->nnameservers);
    for (size_t i = 0; r->nameservers != NULL && i < r->nnameservers; i++) {
        if (r->nameservers[i] != NULL && !cfg_nameserver_valid(r->nameservers[i])) {
            size_t old = path_push(w, "[%zu]", i);
            fail_value(w, v->items[i],
                       "expected an IP address with an optional :PORT "
                       "(IPv6 in brackets then)");
            path_pop(w, old);
        }
    }
}

static const struct limit_def resolver_timeout = {
    LIMIT_DURATION, 100, 60ULL * 1000, "from 100ms to 1m",
    offsetof(struct cfg_resolver, timeout_ms)};
static const struct limit_def resolver_attempts = {
    LIMIT_COUNT, 1, 10, "from 1 to 10", offsetof(struct cfg_resolver, attempts)};

static const struct cfg_key_def resolver_keys[] = {
    {"nameservers", CFG_NODE_SEQUENCE, false, on_nameservers, NULL,
     "[\"10.0.0.2\", \"[::1]:5353\"]"},
    {"timeout", CFG_NODE_SCALAR, false, on_limit, &resolver_timeout, "2s"},
    {"attempts", CFG_NODE_SCALAR, false, on_limit, &resolver_attempts, "2"},
};

static void
on_resolver(struct cfg_walk *w, const struct cfg_node *v, void *obj, const void *arg)
{
    walk_map(w, v, resolver_keys, NELEMS(resolver_keys), &((struct cfg *)obj)->resolver);
}

static const struct cfg_key_def top_keys[] = {
    {"listeners", CFG_NODE_SEQUENCE, true, on_listeners, NULL, "[{address: \":0\"}]"},
    {"workers", CFG_NODE_SCALAR, false, on_workers, NULL, "4"},
    {"limits", CFG_NODE_MAPPING, false, on_limits, NULL, "{max_connections: 10}"},
    {"log", CFG_NODE_MAPPING, false, on_log, NULL, "{level: debug, format: json}"},
    {"auth", CFG_NODE_MAPPING, false, on_auth, NULL, "{token_from: [cookie=session]}"},
    {"routes", CFG_NODE_SEQUENCE, true, on_routes, NULL,
     "[{path: /echo, handler: echo}]"},
    {"resolver", CFG_NODE_MAPPING, false, on_resolver, NULL,
     "{nameservers: [\"127.0.0.1:53\"], timeout: 1s}"},
};

const struct cfg_schema_table cfg_schema_tables[] = {
    {"", top_keys, NELEMS(top_keys)},
    {"listeners[]", listener_keys, NELEMS(listener_keys)},
    {"listeners[].tls", tls_keys, NELEMS(tls_keys)},
    {"limits", limits_keys, NELEMS(limits_keys)},
    {"log", log_keys, NELEMS(log_keys)},
    {"auth", auth_keys, NELEMS(auth_keys)},
    {"auth.providers.*", static_provider_keys, NELEMS(static_provider_keys)},
    {"auth.providers.*(jwt)", jwt_provider_keys, NELEMS(jwt_provider_keys)},
    {"auth.providers.*", http_provider_keys, NELEMS(http_provider_keys)},
    {"auth.providers.*", plugin_provider_keys, NELEMS(plugin_provider_keys)},
    {"auth.throttle", throttle_keys, NELEMS(throttle_keys)},
    {"routes[]", route_keys, NELEMS(route_keys)},
    {"routes[].upstream_tls", upstream_tls_keys, NELEMS(upstream_tls_keys)},
    {"routes[].health_check", health_check_keys, NELEMS(health_check_keys)},
    {"resolver", resolver_keys, NELEMS(resolver_keys)},
};
const size_t cfg_schema_ntables = NELEMS(cfg_schema_tables);

/* Reports a route whose name, or whose host and path, an earlier route has. */
static void
check_route_unique(struct cfg_walk *w, const struct cfg *cfg, size_t i)
{
    const struct cfg_route *r = &cfg->routes[i];
    const struct route_walk *rw = &w->routes[i];
    const char *path_key_name = r->prefix ? "path_prefix" : "path";
    char buf[SHOW_MAX + 4];

    for (size_t j = 0; r->name != NULL && j < i; j++) {
        const struct cfg_route *o = &cfg->routes[j];
        if (o->name != NULL && strcmp(o->name, r->name) == 0) {
            size_t old = path_key(w, rw->has_name ? "name" : path_key_name);
            fail(w, rw->name_mark, "duplicate route name \"%s\" (also routes[%zu]%s)",
                 show(rw->name_raw, buf), j,
                 rw->has_name ? "" : "; the name defaults to the path");
            path_pop(w, old);
            return;
        }
        bool same_host =
            (o->host == NULL && r->host == NULL) ||
            (o->host != NULL && r->host != NULL && strcmp(o->host, r->host) == 0);
        if (same_host && o->path != NULL && r->path != NULL && o->prefix == r->prefix &&
            strcmp(o->path, r->path) == 0) {
            size_t old = path_key(w, path_key_name);
            fail(w, rw->path_mark, "same host and path as routes[%zu]", j);
            path_pop(w, old);
            return;
        }
    }
}

/* Route names must be unique; routes referring to providers must name one
 * that exists. Runs after the walk: auth may follow routes in the file. */
static void
resolve_routes(struct cfg_walk *w, struct cfg *cfg)
{
    for (size_t i = 0; w->routes != NULL && i < cfg->nroutes; i++) {
        struct cfg_route *r = &cfg->routes[i];
        size_t old = path_push(w, "routes[%zu]", i);
        check_route_unique(w, cfg, i);
        const struct cfg_node *an = w->routes[i].auth_node;
        for (size_t a = 0; an != NULL && a < r->nauth; a++) {
            const struct cfg_node *item =
                an->kind == CFG_NODE_SEQUENCE ? an->items[a] : an;
            for (size_t k = 0; r->auth_chain[a] != NULL && k < cfg->nproviders; k++)
                if (cfg->providers[k].name != NULL &&
                    strcmp(cfg->providers[k].name, r->auth_chain[a]) == 0)
                    r->providers[a] = &cfg->providers[k];
            if (r->auth_chain[a] == NULL || r->providers[a] != NULL)
                continue;
            char buf[SHOW_MAX + 4];
            size_t o = path_key(w, "auth");
            if (an->kind == CFG_NODE_SEQUENCE)
                path_push(w, "[%zu]", a);
            fail(w, item->mark, "unknown provider \"%s\" (not under auth.providers)",
                 show(item->scalar, buf));
            path_pop(w, o);
        }
        if (r->nauth > 0)
            r->provider = r->providers[0];
        path_pop(w, old);
    }
}

static void
set_defaults(struct cfg *cfg)
{
    cfg->workers = 0;
    cfg->limits.max_connections = 50000;
    cfg->limits.max_request_head = 16 * KIB;
    cfg->limits.handshake_timeout_ms = 10ULL * 1000;
    cfg->limits.idle_timeout_ms = 10ULL * 60 * 1000;
    cfg->limits.max_message_size = MIB;
    cfg->limits.proxy_buffer = 64 * KIB;
    cfg->log.level = CFG_LOG_INFO;
    cfg->log.format = CFG_LOG_TEXT;
}

static int
default_token_from(struct cfg *cfg)
{
    cfg->token_from = calloc(1, sizeof(*cfg->token_from));
    if (cfg->token_from == NULL)
        return -1;
    cfg->token_from[0].kind = CFG_TOKEN_HEADER;
    cfg->ntoken_from = 1;
    return 0;
}

static int
error_cmp(const void *pa, const void *pb)
{
    const struct walk_error *a = pa, *b = pb;
    if (a->mark.line != b->mark.line)
        return a->mark.line < b->mark.line ? -1 : 1;
    if (a->mark.column != b->mark.column)
        return a->mark.column < b->mark.column ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Hands the recorded errors to errs in file order; returns -1 when any. */
static int
flush_errors(struct cfg_walk *w, struct cfg_errors *errs)
{
    int rc = w->nerrs > 0 || w->lost ? -1 : 0;

    if (w->nerrs > 0)
        qsort(w->errs, w->nerrs, sizeof(*w->errs), error_cmp);
    for (size_t i = 0; i < w->nerrs; i++)
        cfg_errors_push(errs, w->errs[i].msg);
    free(w->errs);
    w->errs = NULL;
    w->nerrs = 0;
    return rc;
}

int
cfg_schema_apply(const char *file, const struct cfg_node *root, cfg_getenv_fn getenv_fn,
                 void *getenv_arg, struct cfg **out, struct cfg_errors *errs)
{
    struct cfg_walk w = {.file = file, .getenv_fn = getenv_fn, .getenv_arg = getenv_arg};
    struct cfg_node empty = {.kind = CFG_NODE_MAPPING, .mark = {1, 1}};
    struct cfg *cfg = calloc(1, sizeof(*cfg));

    *out = NULL;
    if (cfg == NULL || (cfg->file = strdup(file)) == NULL) {
        struct cfg_mark top = {1, 1};
        oom(&w, top);
        cfg_free(cfg);
        return flush_errors(&w, errs);
    }
    w.cfg = cfg;
    set_defaults(cfg);
    if (root == NULL)
        root = &empty;
    if (kind_ok(&w, root, CFG_NODE_MAPPING))
        walk_map(&w, root, top_keys, NELEMS(top_keys), cfg);
    resolve_routes(&w, cfg);
    if (cfg->token_from == NULL && default_token_from(cfg) != 0)
        oom(&w, root->mark);
    free(w.routes);
    if (flush_errors(&w, errs) != 0) {
        cfg_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}
