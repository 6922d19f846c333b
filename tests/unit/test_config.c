/* test_config: unit parsers, ${VAR} expansion, every schema table, defaults and golden
 * error files. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a fixed environment ---- */

static const struct {
    const char *name;
    const char *value;
} fake_env[] = {
    {"WSGATE_TOKEN", "tok-from-env"}, {"EMPTY", ""}, {"PORT", "9000"}, {"LEVEL", "debug"},
    {"SECRET", "hunter2-secret"},
};

static const char *
fake_getenv(const char *name, void *arg)
{
    for (size_t i = 0; i < NELEMS(fake_env); i++)
        if (strcmp(fake_env[i].name, name) == 0)
            return fake_env[i].value;
    return NULL;
}

static const char *
no_env(const char *name, void *arg)
{
    return NULL;
}

/* Loads text named "test.yaml"; stores every error, one per line, in *out
 * (caller frees). Checks the contract: a configuration xor errors. */
static struct cfg *
load_named(const char *file, const char *text, size_t len, cfg_getenv_fn env, char **out)
{
    struct cfg *cfg = (struct cfg *)1;
    struct cfg_errors errs = {0};
    int rc = cfg_load_string(file, text, len, env, NULL, &cfg, &errs);
    size_t total = 1;

    ck_assert_int_eq(rc == 0, cfg != NULL);
    ck_assert_int_eq(rc == 0, errs.count == 0);
    for (size_t i = 0; i < errs.count; i++)
        total += strlen(errs.msgs[i]) + 1;
    char *joined = malloc(total);
    ck_assert_ptr_nonnull(joined);
    joined[0] = '\0';
    for (size_t i = 0; i < errs.count; i++) {
        strcat(joined, errs.msgs[i]);
        strcat(joined, "\n");
    }
    cfg_errors_free(&errs);
    ck_assert_uint_eq(errs.count, 0);
    *out = joined;
    return cfg;
}

static struct cfg *
load(const char *text, char **errors)
{
    return load_named("test.yaml", text, strlen(text), fake_getenv, errors);
}

/* Loads text that must be valid; fails the test with its errors otherwise. */
static struct cfg *
load_ok(const char *text)
{
    char *errors;
    struct cfg *cfg = load(text, &errors);
    ck_assert_msg(cfg != NULL, "unexpected errors:\n%s", errors);
    free(errors);
    return cfg;
}

/* Loads text that must be invalid and returns its errors (caller frees). */
static char *
load_bad(const char *text)
{
    char *errors;
    struct cfg *cfg = load(text, &errors);
    ck_assert_msg(cfg == NULL, "loaded, but should not have:\n%s", text);
    return errors;
}

static char *
data_path(const char *rel)
{
    const char *dir = getenv("WSGATE_TEST_DATA");
    char *p = NULL;
    ck_assert_msg(dir != NULL, "WSGATE_TEST_DATA is not set (run from ctest)");
    ck_assert_int_ge(asprintf(&p, "%s/%s", dir, rel), 0);
    return p;
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        char *p = realloc(buf, n + 4097);
        ck_assert_ptr_nonnull(p);
        buf = p;
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- sizes ---- */

static const struct {
    const char *in;
    int rc;
    uint64_t want;
} size_cases[] = {
    {"0", 0, 0},
    {"512", 0, 512},
    {"1B", 0, 1},
    {"16KiB", 0, 16384},
    {"10KB", 0, 10000},
    {"1MiB", 0, 1048576},
    {"3MB", 0, 3000000},
    {"2GiB", 0, 2147483648ULL},
    {"1GB", 0, 1000000000ULL},
    {"007KiB", 0, 7168},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551616", -1, 0},
    {"17179869184GiB", -1, 0},
    {"18446744073709552KB", -1, 0},
    {"", -1, 0},
    {"KiB", -1, 0},
    {"-1", -1, 0},
    {"+1", -1, 0},
    {"1.5MiB", -1, 0},
    {"16 KiB", -1, 0},
    {" 16KiB", -1, 0},
    {"16KiB ", -1, 0},
    {"16kib", -1, 0},
    {"16kb", -1, 0},
    {"16K", -1, 0},
    {"16XB", -1, 0},
    {"16TiB", -1, 0},
    {"0x10", -1, 0},
};

START_TEST(test_parse_size)
{
    struct gw_err err = {.msg = ""};
    uint64_t v = 12345;
    int rc = cfg_parse_size(size_cases[_i].in, &v, &err);

    ck_assert_msg(rc == size_cases[_i].rc, "\"%s\": rc %d (%s)", size_cases[_i].in, rc,
                  err.msg);
    if (rc == 0)
        ck_assert_uint_eq(v, size_cases[_i].want);
    else
        ck_assert_msg(err.msg[0] != '\0', "\"%s\": no message", size_cases[_i].in);
    ck_assert_int_eq(cfg_parse_size(size_cases[_i].in, &v, NULL), size_cases[_i].rc);
}
END_TEST

/* ---- durations ---- */

static const struct {
    const char *in;
    int rc;
    uint64_t want_ms;
    const char *msg; /* a substring of the error, or NULL */
} duration_cases[] = {
    {"500ms", 0, 500, NULL},
    {"0ms", 0, 0, NULL},
    {"10s", 0, 10000, NULL},
    {"5m", 0, 300000, NULL},
    {"1h", 0, 3600000, NULL},
    {"48h", 0, 172800000, NULL},
    {"18446744073709551615ms", 0, UINT64_MAX, NULL},
    {"18446744073709552s", -1, 0, "too large"},
    {"18446744073709551s", 0, 18446744073709551000ULL, NULL},
    {"5124095576030432h", -1, 0, "too large"},
    {"99999999999999999999ms", -1, 0, "too large"},
    {"10", -1, 0, "missing unit"},
    {"0", -1, 0, "missing unit"},
    {"", -1, 0, NULL},
    {"s", -1, 0, NULL},
    {"1.5s", -1, 0, "unknown duration unit"},
    {"10 s", -1, 0, "unknown duration unit"},
    {"10S", -1, 0, "unknown duration unit"},
    {"10sec", -1, 0, "unknown duration unit"},
    {"1d", -1, 0, "unknown duration unit"},
    {"10us", -1, 0, "unknown duration unit"},
    {"-5s", -1, 0, NULL},
};

START_TEST(test_parse_duration)
{
    struct gw_err err = {.msg = ""};
    uint64_t v = 12345;
    int rc = cfg_parse_duration(duration_cases[_i].in, &v, &err);

    ck_assert_msg(rc == duration_cases[_i].rc, "\"%s\": rc %d (%s)",
                  duration_cases[_i].in, rc, err.msg);
    if (rc == 0)
        ck_assert_uint_eq(v, duration_cases[_i].want_ms);
    if (duration_cases[_i].msg != NULL)
        ck_assert_msg(strstr(err.msg, duration_cases[_i].msg) != NULL,
                      "\"%s\": got \"%s\"", duration_cases[_i].in, err.msg);
    ck_assert_int_eq(cfg_parse_duration(duration_cases[_i].in, &v, NULL),
                     duration_cases[_i].rc);
}
END_TEST

/* ---- addresses ---- */

static const struct {
    const char *in;
    const char *host; /* NULL: must fail */
    uint16_t port;
} address_cases[] = {
    {"127.0.0.1:8080", "127.0.0.1", 8080},
    {"0.0.0.0:0", "0.0.0.0", 0},
    {":9000", "0.0.0.0", 9000},
    {"[::1]:8080", "::1", 8080},
    {"[::]:443", "::", 443},
    {"[fe80::1:2]:65535", "fe80::1:2", 65535},
    {"localhost:80", "localhost", 80},
    {"gw-1.example.com:8443", "gw-1.example.com", 8443},
    {"my_service:80", "my_service", 80},
    {"host:00080", "host", 80},
    {"127.0.0.1", NULL, 0},
    {"host:", NULL, 0},
    {"host:65536", NULL, 0},
    {"host:99999999999999999999", NULL, 0},
    {"host:-1", NULL, 0},
    {"host:80x", NULL, 0},
    {"host: 80", NULL, 0},
    {":", NULL, 0},
    {"", NULL, 0},
    {"::1:80", NULL, 0},
    {"[::1]", NULL, 0},
    {"[::1]80", NULL, 0},
    {"[::1:80", NULL, 0},
    {"[zz]:80", NULL, 0},
    {"[127.0.0.1]:80", NULL, 0},
    {"[]:80", NULL, 0},
    {"999.1.1.1:80", NULL, 0},
    {"1.2.3:80", NULL, 0},
    {"a b:80", NULL, 0},
    {"-host:80", NULL, 0},
    {"a..b:80", NULL, 0},
    {".a:80", NULL, 0},
    {"a.:80", NULL, 0},
    {"h/st:80", NULL, 0},
};

START_TEST(test_parse_address)
{
    struct gw_err err = {.msg = ""};
    char *host = NULL;
    uint16_t port = 1;
    int rc = cfg_parse_address(address_cases[_i].in, &host, &port, &err);

    if (address_cases[_i].host == NULL) {
        ck_assert_msg(rc == -1, "\"%s\" accepted", address_cases[_i].in);
        ck_assert_ptr_null(host);
        ck_assert(err.msg[0] != '\0');
        return;
    }
    ck_assert_msg(rc == 0, "\"%s\": %s", address_cases[_i].in, err.msg);
    ck_assert_str_eq(host, address_cases[_i].host);
    ck_assert_uint_eq(port, address_cases[_i].port);
    free(host);
}
END_TEST

/* ---- upstream URLs ---- */

static const struct {
    const char *in;
    const char *host; /* NULL: must fail */
    uint16_t port;
    bool tls;
    const char *path; /* for failures: the exact message */
} url_cases[] = {
    {"ws://127.0.0.1:9001", "127.0.0.1", 9001, false, ""},
    {"ws://h", "h", 80, false, ""},
    {"wss://h", "h", 443, true, ""},
    {"ws://h/", "h", 80, false, ""},
    {"ws://h:8080/", "h", 8080, false, ""},
    {"wss://Chat.Example.COM:8443/API/v1/", "chat.example.com", 8443, true, "/API/v1"},
    {"WSS://h/x", "h", 443, true, "/x"},
    {"Ws://h", "h", 80, false, ""},
    {"ws://h/a//", "h", 80, false, "/a"},
    {"ws://h//", "h", 80, false, ""},
    {"ws://h/a/b", "h", 80, false, "/a/b"},
    {"ws://h/p%20q/@x", "h", 80, false, "/p%20q/@x"},
    {"ws://[::1]:9000", "::1", 9000, false, ""},
    {"wss://[FE80::1]/x/", "fe80::1", 443, true, "/x"},
    {"ws://[::ffff:10.0.0.1]", "::ffff:10.0.0.1", 80, false, ""},
    {"ws://h:1", "h", 1, false, ""},
    {"ws://h:65535", "h", 65535, false, ""},
    {"ws://h:00080", "h", 80, false, ""},
    {"ws://my_svc.ns.svc.cluster.local:80", "my_svc.ns.svc.cluster.local", 80, false, ""},
    {"http://h", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"https://h", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"ws:/h", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"ws:h", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"//h", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"h:80", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"", NULL, 0, false, "must be a ws:// or wss:// URL"},
    {"ws://", NULL, 0, false, "has no host"},
    {"ws:///x", NULL, 0, false, "has no host"},
    {"ws://:9000/x", NULL, 0, false, "has no host"},
    {"ws://u:p@h", NULL, 0, false, "must not hold user information (\"user:password@\")"},
    {"ws://u@h:1/x", NULL, 0, false,
     "must not hold user information (\"user:password@\")"},
    {"ws://@h", NULL, 0, false, "must not hold user information (\"user:password@\")"},
    {"ws://h/x?y", NULL, 0, false, "must not hold a query (\"?...\")"},
    {"ws://h?y", NULL, 0, false, "must not hold a query (\"?...\")"},
    {"ws://h/?", NULL, 0, false, "must not hold a query (\"?...\")"},
    {"ws://h/x#f", NULL, 0, false, "must not hold a fragment (\"#...\")"},
    {"ws://h#f?q", NULL, 0, false, "must not hold a fragment (\"#...\")"},
    {"ws://h:0", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:65536", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:99999999999999999999", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:/x", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:-1", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://h:8a", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://[::1]:", NULL, 0, false, "has an invalid port (1 to 65535)"},
    {"ws://::1", NULL, 0, false,
     "has an invalid host (an IPv6 address goes in brackets)"},
    {"ws://fe80::1:80", NULL, 0, false,
     "has an invalid host (an IPv6 address goes in brackets)"},
    {"ws://[::1", NULL, 0, false, "has an invalid host"},
    {"ws://[::1]x", NULL, 0, false, "has an invalid host"},
    {"ws://[]:80", NULL, 0, false, "has an invalid host"},
    {"ws://[zz]", NULL, 0, false, "has an invalid host"},
    {"ws://[127.0.0.1]", NULL, 0, false, "has an invalid host"},
    {"ws://[fe80::1%25eth0]", NULL, 0, false, "has an invalid host"},
    {"ws://bad_host!/", NULL, 0, false, "has an invalid host"},
    {"ws://999.1.1.1", NULL, 0, false, "has an invalid host"},
    {"ws://-h", NULL, 0, false, "has an invalid host"},
    {"ws://a..b", NULL, 0, false, "has an invalid host"},
    {"ws://h/a b", NULL, 0, false, "must be printable ASCII without spaces"},
    {"ws://h\t", NULL, 0, false, "must be printable ASCII without spaces"},
    {"ws://h/\xc3\xa9", NULL, 0, false, "must be printable ASCII without spaces"},
};

START_TEST(test_parse_upstream_url)
{
    struct gw_err err = {.msg = ""};
    struct cfg_upstream u = {.mark = {7, 9}};
    int rc = cfg_parse_upstream_url(url_cases[_i].in, &u, &err);

    if (url_cases[_i].host == NULL) {
        ck_assert_msg(rc == -1, "\"%s\" accepted", url_cases[_i].in);
        ck_assert_str_eq(err.msg, url_cases[_i].path);
        ck_assert_ptr_null(u.url);
        ck_assert_ptr_null(u.host);
        ck_assert_ptr_null(u.path);
        ck_assert_int_eq(cfg_parse_upstream_url(url_cases[_i].in, &u, NULL), -1);
        return;
    }
    ck_assert_msg(rc == 0, "\"%s\": %s", url_cases[_i].in, err.msg);
    ck_assert_str_eq(u.url, url_cases[_i].in);
    ck_assert_str_eq(u.host, url_cases[_i].host);
    ck_assert_uint_eq(u.port, url_cases[_i].port);
    ck_assert_int_eq(u.tls, url_cases[_i].tls);
    ck_assert_str_eq(u.path, url_cases[_i].path);
    ck_assert_int_eq(u.mark.line, 7);
    ck_assert_int_eq(u.mark.column, 9);
    cfg_upstream_clear(&u);
    ck_assert_ptr_null(u.url);
    cfg_upstream_clear(&u);
}
END_TEST

/* ---- ${VAR} expansion ---- */

static const struct {
    const char *in;
    const char *want; /* NULL: must fail */
    const char *msg;  /* for failures: the exact message */
} expand_cases[] = {
    {"plain", "plain", NULL},
    {"", "", NULL},
    {"${WSGATE_TOKEN}", "tok-from-env", NULL},
    {"a${PORT}b${PORT}", "a9000b9000", NULL},
    {"ws://127.0.0.1:${PORT}/", "ws://127.0.0.1:9000/", NULL},
    {"${UNSET:-fallback}", "fallback", NULL},
    {"${UNSET:-}", "", NULL},
    {"${UNSET:-a b:c-d}", "a b:c-d", NULL},
    {"${EMPTY}", "", NULL},
    {"${EMPTY:-used}", "used", NULL},
    {"${PORT:-1}", "9000", NULL},
    {"$$", "$", NULL},
    {"$${PORT}", "${PORT}", NULL},
    {"$$$${PORT}", "$${PORT}", NULL},
    {"cost $5", "cost $5", NULL},
    {"end$", "end$", NULL},
    {"$PORT", "$PORT", NULL},
    {"${_x1:-ok}", "ok", NULL},
    {"${UNSET}", NULL, "${UNSET} is not set"},
    {"a${SOME_UNSET}b", NULL, "${SOME_UNSET} is not set"},
    {"${", NULL, "unterminated \"${\""},
    {"${PORT", NULL, "unterminated \"${\""},
    {"${}", NULL, "empty variable name in \"${}\""},
    {"${:-x}", NULL, "invalid variable name in \"${:-x}\""},
    {"${1X}", NULL, "invalid variable name in \"${1X}\""},
    {"${A-b}", NULL, "invalid variable name in \"${A-b}\""},
    {"${A B}", NULL, "invalid variable name in \"${A B}\""},
    {"${A:b}", NULL, "invalid variable name in \"${A:b}\""},
};

START_TEST(test_expand_env)
{
    struct gw_err err = {.msg = ""};
    char *out = NULL;
    int rc = cfg_expand_env(expand_cases[_i].in, fake_getenv, NULL, &out, &err);

    if (expand_cases[_i].want == NULL) {
        ck_assert_msg(rc == -1, "\"%s\" expanded to \"%s\"", expand_cases[_i].in, out);
        ck_assert_str_eq(err.msg, expand_cases[_i].msg);
        ck_assert_ptr_null(out);
        return;
    }
    ck_assert_msg(rc == 0, "\"%s\": %s", expand_cases[_i].in, err.msg);
    ck_assert_str_eq(out, expand_cases[_i].want);
    free(out);
}
END_TEST

START_TEST(test_expand_env_no_lookup)
{
    char *out = NULL;
    struct gw_err err = {.msg = ""};

    ck_assert_int_eq(cfg_expand_env("${X:-d}", NULL, NULL, &out, &err), 0);
    ck_assert_str_eq(out, "d");
    free(out);
    ck_assert_int_eq(cfg_expand_env("${X}", NULL, NULL, &out, &err), -1);
    ck_assert_str_eq(err.msg, "${X} is not set");
}
END_TEST

START_TEST(test_handler_known)
{
    ck_assert(cfg_handler_known("echo"));
    ck_assert(!cfg_handler_known("ECHO"));
    ck_assert(!cfg_handler_known("echo "));
    ck_assert(!cfg_handler_known(""));
    ck_assert(cfg_handler_known("broadcast"));
    ck_assert(cfg_handler_known("plugin"));
    ck_assert(!cfg_handler_known("broadcasts"));
}
END_TEST

/* ---- every schema table ---- */

/* Where each table's mapping sits in a document: "@" is replaced by it.
 * The rest of each document is valid. */
static const struct {
    const char *path;   /* as in cfg_schema_tables */
    const char *doc;    /* a document with "@" where the mapping goes */
    const char *prefix; /* the key path of the mapping's keys in errors */
    bool standalone;    /* the mapping's required keys alone make it valid */
} table_docs[] = {
    {"", "@", "", true},
    {"listeners[]", "{listeners: [@], routes: [{path: /e, handler: echo}]}",
     "listeners[0].", true},
    {"listeners[].tls",
     "{listeners: [{address: ':0', tls: @}], routes: [{path: /e, handler: echo}]}",
     "listeners[0].tls.", true},
    {"limits",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}], limits: @}",
     "limits.", true},
    {"log", "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}], log: @}",
     "log.", true},
    {"auth",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}], auth: @}",
     "auth.", true},
    {"auth.providers.*",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}],"
     " auth: {providers: {p: @}}}",
     "auth.providers.p.", true},
    /* Not standalone: which keys an algorithm needs is checked across keys. */
    {"auth.providers.*(jwt)",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}],"
     " auth: {providers: {p: @}}}",
     "auth.providers.p.", false},
    {"auth.throttle",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}],"
     " auth: {throttle: @}}",
     "auth.throttle.", true},
    {"routes[]", "{listeners: [{address: ':0'}], routes: [@]}", "routes[0].", false},
    /* Not standalone: certificate alone is an error (it needs key). */
    {"routes[].upstream_tls",
     "{listeners: [{address: ':0'}], routes: [{path: /u, upstream: 'wss://h',"
     " upstream_tls: @}]}",
     "routes[0].upstream_tls.", false},
    {"resolver",
     "{listeners: [{address: ':0'}], routes: [{path: /e, handler: echo}], resolver: @}",
     "resolver.", true},
    {"routes[].health_check",
     "{listeners: [{address: ':0'}], routes: [{path: /u, upstream: 'ws://h',"
     " health_check: @}]}",
     "routes[0].health_check.", true},
};

/* Builds the document for table t with a mapping of its required keys
 * (except `skip`) followed by `extra` (a "key: value" text, or NULL). */
static char *
table_doc(const struct cfg_schema_table *t, const char *doc, const char *skip,
          const char *extra)
{
    char map[2048] = "{";
    char *out = NULL;

    for (size_t k = 0; k < t->nkeys; k++) {
        if (!t->keys[k].required || (skip != NULL && strcmp(skip, t->keys[k].name) == 0))
            continue;
        size_t n = strlen(map);
        snprintf(map + n, sizeof(map) - n, "%s%s: %s", n > 1 ? ", " : "", t->keys[k].name,
                 t->keys[k].example);
    }
    size_t n = strlen(map);
    snprintf(map + n, sizeof(map) - n, "%s%s}", extra != NULL && n > 1 ? ", " : "",
             extra != NULL ? extra : "");
    const char *at = strchr(doc, '@');
    ck_assert_ptr_nonnull(at);
    ck_assert_int_ge(asprintf(&out, "%.*s%s%s", (int)(at - doc), doc, map, at + 1), 0);
    return out;
}

/* Asserts that loading doc yields an error line containing want. */
static void
expect_error(const char *doc, const char *want)
{
    char *errors = load_bad(doc);
    ck_assert_msg(strstr(errors, want) != NULL, "document:\n%s\nwanted: %s\ngot:\n%s",
                  doc, want, errors);
    free(errors);
}

START_TEST(test_schema_table)
{
    const struct cfg_schema_table *t = &cfg_schema_tables[_i];
    size_t d = 0;
    char want[256], kv[512];

    while (d < NELEMS(table_docs) && strcmp(table_docs[d].path, t->path) != 0)
        d++;
    ck_assert_msg(d < NELEMS(table_docs), "no document for table \"%s\"", t->path);
    const char *doc = table_docs[d].doc, *prefix = table_docs[d].prefix;
    ck_assert_uint_gt(t->nkeys, 0);

    for (size_t k = 0; k < t->nkeys; k++) {
        const struct cfg_key_def *key = &t->keys[k];
        ck_assert_ptr_nonnull(key->fn);
        ck_assert_ptr_nonnull(key->example);
        for (size_t j = 0; j < k; j++)
            ck_assert_str_ne(t->keys[j].name, key->name);

        /* Its example is accepted. */
        snprintf(kv, sizeof(kv), "%s: %s", key->name, key->example);
        char *text = table_doc(t, doc, key->name, kv);
        char *errors;
        struct cfg *cfg = load(text, &errors);
        snprintf(want, sizeof(want), ": %s%s:", prefix, key->name);
        ck_assert_msg(strstr(errors, want) == NULL, "%s rejected:\n%s", text, errors);
        snprintf(want, sizeof(want), ": %s%s[", prefix, key->name); /* list items */
        ck_assert_msg(strstr(errors, want) == NULL, "%s rejected:\n%s", text, errors);
        if (table_docs[d].standalone)
            ck_assert_msg(cfg != NULL, "%s rejected:\n%s", text, errors);
        cfg_free(cfg);
        free(errors);
        free(text);

        /* The wrong kind of node is not. */
        snprintf(kv, sizeof(kv), "%s: %s", key->name,
                 key->kind == CFG_NODE_SCALAR                                 ? "[x]"
                 : key->kind == 0 || key->kind == CFG_NODE_SCALAR_OR_SEQUENCE ? "{x: y}"
                                                                              : "x");
        text = table_doc(t, doc, key->name, kv);
        snprintf(want, sizeof(want), ": %s%s: expected ", prefix, key->name);
        expect_error(text, want);
        free(text);

        /* Nor is the key twice. */
        snprintf(kv, sizeof(kv), "%s: %s, %s: %s", key->name, key->example, key->name,
                 key->example);
        text = table_doc(t, doc, key->name, kv);
        snprintf(want, sizeof(want), ": %s%s: duplicate key", prefix, key->name);
        expect_error(text, want);
        free(text);

        /* A required key cannot be left out. */
        if (key->required) {
            text = table_doc(t, doc, key->name, NULL);
            snprintf(want, sizeof(want), ": %s%s: missing required key", prefix,
                     key->name);
            expect_error(text, want);
            free(text);
        }
    }

    /* An unknown key is an error, with a suggestion for a near miss. */
    char *text = table_doc(t, doc, NULL, "no_such_key_here: 1");
    snprintf(want, sizeof(want), ": %sno_such_key_here: unknown key (expected one of: %s",
             prefix, t->keys[0].name);
    expect_error(text, want);
    free(text);
    snprintf(kv, sizeof(kv), "%sx: 1", t->keys[t->nkeys - 1].name);
    text = table_doc(t, doc, NULL, kv);
    snprintf(want, sizeof(want), ": %s%sx: unknown key (did you mean \"%s\"?)", prefix,
             t->keys[t->nkeys - 1].name, t->keys[t->nkeys - 1].name);
    expect_error(text, want);
    free(text);
}
END_TEST

/* ---- defaults and values ---- */

START_TEST(test_defaults)
{
    struct cfg *cfg = load_ok("listeners: [{address: ':8080'}]\n"
                              "routes: [{path: /echo, handler: echo}]\n");

    ck_assert_str_eq(cfg->file, "test.yaml");
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_str_eq(cfg->listeners[0].address, ":8080");
    ck_assert_str_eq(cfg->listeners[0].host, "0.0.0.0");
    ck_assert_uint_eq(cfg->listeners[0].port, 8080);
    ck_assert_ptr_null(cfg->listeners[0].tls);
    ck_assert_int_eq(cfg->listeners[0].mark.line, 1);
    ck_assert_uint_eq(cfg->workers, 0);
    ck_assert_uint_eq(cfg->limits.max_connections, 50000);
    ck_assert_uint_eq(cfg->limits.max_request_head, 16 * 1024);
    ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 10 * 1000);
    ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 10 * 60 * 1000);
    ck_assert_uint_eq(cfg->limits.max_message_size, 1024 * 1024);
    ck_assert_uint_eq(cfg->limits.proxy_buffer, 64 * 1024);
    ck_assert_int_eq(cfg->log.level, CFG_LOG_INFO);
    ck_assert_int_eq(cfg->log.format, CFG_LOG_TEXT);
    ck_assert_uint_eq(cfg->ntoken_from, 1);
    ck_assert_int_eq(cfg->token_from[0].kind, CFG_TOKEN_HEADER);
    ck_assert_ptr_null(cfg->token_from[0].name);
    ck_assert_uint_eq(cfg->nproviders, 0);
    ck_assert_uint_eq(cfg->nroutes, 1);
    const struct cfg_route *r = &cfg->routes[0];
    ck_assert_str_eq(r->name, "/echo");
    ck_assert_str_eq(r->path, "/echo");
    ck_assert(!r->prefix);
    ck_assert(!r->strip_prefix);
    ck_assert_ptr_null(r->host);
    ck_assert_int_eq(r->kind, CFG_ROUTE_HANDLER);
    ck_assert_str_eq(r->handler, "echo");
    ck_assert_uint_eq(r->nupstreams, 0);
    ck_assert_ptr_null(r->upstreams);
    ck_assert_ptr_null(r->upstream_host);
    ck_assert_ptr_null(r->upstream_tls);
    ck_assert_ptr_null(r->health_check);
    ck_assert_uint_eq(r->connect_timeout_ms, 0); /* upstream routes only */
    ck_assert_uint_eq(r->upstream_timeout_ms, 0);
    ck_assert_uint_eq(r->backoff_ms, 0);
    ck_assert_uint_eq(r->resolve_interval_ms, 0);
    ck_assert_ptr_null(r->auth);
    ck_assert_ptr_null(r->provider);
    ck_assert_int_eq(r->mark.line, 2);
    ck_assert_int_eq(r->mark.column, 10);
    cfg_free(cfg);
}
END_TEST

static const char full_yaml[] =
    "listeners:\n"
    "  - address: 0.0.0.0:8080\n"
    "  - address: '[::1]:${PORT}'\n"
    "    tls: { certificate: /etc/wsgate/cert.pem, key: /etc/wsgate/key.pem }\n"
    "workers: 8\n"
    "limits:\n"
    "  max_connections: 100\n"
    "  max_request_head: 8KiB\n"
    "  handshake_timeout: 500ms\n"
    "  idle_timeout: 2h\n"
    "  max_message_size: 1GiB\n"
    "  proxy_buffer: 4KiB\n"
    "log: { level: '${LEVEL}', format: json }\n"
    "auth:\n"
    "  token_from: [header, query=access_token, cookie=session, subprotocol]\n"
    "  providers:\n"
    "    edge: { type: static, tokens: ['${WSGATE_TOKEN}', literal, '$$dollar'] }\n"
    "    other: { type: static, tokens: [x] }\n"
    "routes:\n"
    "  - { name: echo, path: /echo, handler: echo }\n"
    "  - { path: /e2, handler: echo, auth: none, host: Chat.Example.COM }\n"
    "  - name: foo\n"
    "    path: /foo\n"
    "    upstream: ws://127.0.0.1:9001\n"
    "    auth: other\n"
    "  - name: bar\n"
    "    path_prefix: /bar/\n"
    "    strip_prefix: true\n"
    "    upstreams: ['ws://10.0.0.5:9000', 'wss://[FE80::1]:9443/x/', 'ws://H:${PORT}']\n"
    "    auth: edge\n"
    "    host: '[::1]'\n";

START_TEST(test_full)
{
    struct cfg *cfg = load_ok(full_yaml);

    ck_assert_uint_eq(cfg->nlisteners, 2);
    ck_assert_str_eq(cfg->listeners[1].address, "[::1]:9000");
    ck_assert_str_eq(cfg->listeners[1].host, "::1");
    ck_assert_uint_eq(cfg->listeners[1].port, 9000);
    ck_assert_ptr_nonnull(cfg->listeners[1].tls);
    ck_assert_str_eq(cfg->listeners[1].tls->certificate, "/etc/wsgate/cert.pem");
    ck_assert_str_eq(cfg->listeners[1].tls->key, "/etc/wsgate/key.pem");
    ck_assert_int_eq(cfg->listeners[1].mark.line, 3);
    ck_assert_int_eq(cfg->listeners[1].mark.column, 5);
    ck_assert_uint_eq(cfg->workers, 8);
    ck_assert_uint_eq(cfg->limits.max_connections, 100);
    ck_assert_uint_eq(cfg->limits.max_request_head, 8192);
    ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 500);
    ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 2 * 3600 * 1000);
    ck_assert_uint_eq(cfg->limits.max_message_size, 1ULL << 30);
    ck_assert_uint_eq(cfg->limits.proxy_buffer, 4096);
    ck_assert_int_eq(cfg->log.level, CFG_LOG_DEBUG);
    ck_assert_int_eq(cfg->log.format, CFG_LOG_JSON);

    ck_assert_uint_eq(cfg->ntoken_from, 4);
    ck_assert_int_eq(cfg->token_from[0].kind, CFG_TOKEN_HEADER);
    ck_assert_int_eq(cfg->token_from[1].kind, CFG_TOKEN_QUERY);
    ck_assert_str_eq(cfg->token_from[1].name, "access_token");
    ck_assert_int_eq(cfg->token_from[2].kind, CFG_TOKEN_COOKIE);
    ck_assert_str_eq(cfg->token_from[2].name, "session");
    ck_assert_int_eq(cfg->token_from[3].kind, CFG_TOKEN_SUBPROTOCOL);

    ck_assert_uint_eq(cfg->nproviders, 2);
    const struct cfg_provider *edge = &cfg->providers[0];
    ck_assert_str_eq(edge->name, "edge");
    ck_assert_int_eq(edge->type, CFG_PROVIDER_STATIC);
    ck_assert_uint_eq(edge->ntokens, 3);
    ck_assert_str_eq(edge->tokens[0], "tok-from-env");
    ck_assert_str_eq(edge->tokens[1], "literal");
    ck_assert_str_eq(edge->tokens[2], "$dollar");
    ck_assert_int_eq(edge->mark.line, 17);
    ck_assert_int_eq(edge->mark.column, 5);

    ck_assert_uint_eq(cfg->nroutes, 4);
    const struct cfg_route *r = cfg->routes;
    ck_assert_str_eq(r[0].name, "echo");
    ck_assert_str_eq(r[1].name, "/e2");
    ck_assert_str_eq(r[1].host, "chat.example.com");
    ck_assert_ptr_null(r[1].auth);
    ck_assert_ptr_null(r[1].provider);
    ck_assert_int_eq(r[2].kind, CFG_ROUTE_UPSTREAM);
    ck_assert_uint_eq(r[2].nupstreams, 1);
    ck_assert_str_eq(r[2].upstreams[0].url, "ws://127.0.0.1:9001");
    ck_assert_str_eq(r[2].upstreams[0].host, "127.0.0.1");
    ck_assert_uint_eq(r[2].upstreams[0].port, 9001);
    ck_assert(!r[2].upstreams[0].tls);
    ck_assert_str_eq(r[2].upstreams[0].path, "");
    ck_assert_int_eq(r[2].upstreams[0].mark.line, 24);
    ck_assert_int_eq(r[2].upstreams[0].mark.column, 15);
    ck_assert_int_eq(r[2].balance, CFG_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(r[2].connect_timeout_ms, 5000);
    ck_assert_uint_eq(r[2].upstream_timeout_ms, 10000);
    ck_assert_uint_eq(r[2].backoff_ms, 10000);
    ck_assert_uint_eq(r[2].resolve_interval_ms, 30000);
    ck_assert_ptr_null(r[2].upstream_host);
    ck_assert_ptr_null(r[2].upstream_tls);
    ck_assert_ptr_null(r[2].health_check);
    ck_assert_ptr_null(r[2].handler);
    ck_assert_str_eq(r[2].auth, "other");
    ck_assert_ptr_eq(r[2].provider, &cfg->providers[1]);
    ck_assert_int_eq(r[3].kind, CFG_ROUTE_UPSTREAM);
    ck_assert_str_eq(r[3].path, "/bar/");
    ck_assert(r[3].prefix);
    ck_assert(r[3].strip_prefix);
    ck_assert_uint_eq(r[3].nupstreams, 3);
    ck_assert_str_eq(r[3].upstreams[1].url, "wss://[FE80::1]:9443/x/");
    ck_assert_str_eq(r[3].upstreams[1].host, "fe80::1");
    ck_assert_uint_eq(r[3].upstreams[1].port, 9443);
    ck_assert(r[3].upstreams[1].tls);
    ck_assert_str_eq(r[3].upstreams[1].path, "/x");
    ck_assert_str_eq(r[3].upstreams[2].url, "ws://H:9000");
    ck_assert_str_eq(r[3].upstreams[2].host, "h");
    ck_assert_uint_eq(r[3].upstreams[2].port, 9000);
    ck_assert_int_eq(r[3].upstreams[2].mark.line, 29);
    ck_assert_ptr_eq(r[3].provider, edge);
    ck_assert_str_eq(r[3].host, "[::1]");
    ck_assert_int_eq(r[3].mark.line, 26);
    cfg_free(cfg);
}
END_TEST

/* Every key of an upstream route, each away from its default. */
static const char upstream_yaml[] =
    "listeners: [{address: ':8080'}]\n"
    "routes:\n"
    "  - name: chat\n"
    "    path_prefix: /chat/\n"
    "    upstreams: ['ws://10.0.0.5:9000/v1/', 'WSS://Chat-2.Internal']\n"
    "    balance: hash_subject\n"
    "    upstream_host: Chat.Internal:8443\n"
    "    upstream_tls:\n"
    "      ca_file: /etc/ssl/ca.pem\n"
    "      certificate: '${SECRET}.pem'\n"
    "      key: /etc/wsgate/client.key\n"
    "      server_name: Chat.Internal\n"
    "      verify: false\n"
    "    health_check: {interval: 1m, timeout: 59s, path: /healthz?deep=1}\n"
    "    connect_timeout: 1ms\n"
    "    upstream_timeout: 3s\n"
    "    backoff: 2m\n"
    "    resolve_interval: 1h\n"
    "  - {path: /a, upstream: 'wss://a', upstream_tls: {}, health_check: {}}\n"
    "  - {path: /b, upstream: 'ws://b', balance: least_conn, health_check: {interval: "
    "3s}}\n"
    "  - {path: /c, upstream: 'ws://[::1]', balance: hash_ip, upstream_host: '[::1]',\n"
    "     health_check: {timeout: 9s}}\n"
    "  - {path: /d, upstream: 'ws://d', balance: round_robin, upstream_host: d}\n";

START_TEST(test_upstream_route)
{
    struct cfg *cfg = load_ok(upstream_yaml);
    const struct cfg_route *r = cfg->routes;

    ck_assert_uint_eq(cfg->nroutes, 5);
    ck_assert_int_eq(r[0].kind, CFG_ROUTE_UPSTREAM);
    ck_assert_uint_eq(r[0].nupstreams, 2);
    ck_assert_str_eq(r[0].upstreams[0].host, "10.0.0.5");
    ck_assert_uint_eq(r[0].upstreams[0].port, 9000);
    ck_assert_str_eq(r[0].upstreams[0].path, "/v1");
    ck_assert(!r[0].upstreams[0].tls);
    ck_assert_int_eq(r[0].upstreams[0].mark.line, 5);
    ck_assert_int_eq(r[0].upstreams[0].mark.column, 17);
    ck_assert_str_eq(r[0].upstreams[1].url, "WSS://Chat-2.Internal");
    ck_assert_str_eq(r[0].upstreams[1].host, "chat-2.internal");
    ck_assert_uint_eq(r[0].upstreams[1].port, 443);
    ck_assert(r[0].upstreams[1].tls);
    ck_assert_int_eq(r[0].upstreams[1].mark.column, 43);
    ck_assert_int_eq(r[0].balance, CFG_BALANCE_HASH_SUBJECT);
    ck_assert_str_eq(r[0].upstream_host, "chat.internal:8443");
    ck_assert_ptr_nonnull(r[0].upstream_tls);
    ck_assert_str_eq(r[0].upstream_tls->ca_file, "/etc/ssl/ca.pem");
    ck_assert_str_eq(r[0].upstream_tls->certificate, "hunter2-secret.pem");
    ck_assert_str_eq(r[0].upstream_tls->key, "/etc/wsgate/client.key");
    ck_assert_str_eq(r[0].upstream_tls->server_name, "chat.internal");
    ck_assert(!r[0].upstream_tls->verify);
    ck_assert_ptr_nonnull(r[0].health_check);
    ck_assert_uint_eq(r[0].health_check->interval_ms, 60000);
    ck_assert_uint_eq(r[0].health_check->timeout_ms, 59000);
    ck_assert_str_eq(r[0].health_check->path, "/healthz?deep=1");
    ck_assert_uint_eq(r[0].connect_timeout_ms, 1);
    ck_assert_uint_eq(r[0].upstream_timeout_ms, 3000);
    ck_assert_uint_eq(r[0].backoff_ms, 120000);
    ck_assert_uint_eq(r[0].resolve_interval_ms, 3600000);

    /* Empty mappings take every default. */
    ck_assert_int_eq(r[1].balance, CFG_BALANCE_ROUND_ROBIN);
    ck_assert_ptr_null(r[1].upstream_host);
    ck_assert_ptr_nonnull(r[1].upstream_tls);
    ck_assert_ptr_null(r[1].upstream_tls->ca_file);
    ck_assert_ptr_null(r[1].upstream_tls->certificate);
    ck_assert_ptr_null(r[1].upstream_tls->key);
    ck_assert_ptr_null(r[1].upstream_tls->server_name);
    ck_assert(r[1].upstream_tls->verify);
    ck_assert_ptr_nonnull(r[1].health_check);
    ck_assert_uint_eq(r[1].health_check->interval_ms, 10000);
    ck_assert_uint_eq(r[1].health_check->timeout_ms, 2000);
    ck_assert_str_eq(r[1].health_check->path, "/");
    ck_assert_uint_eq(r[1].connect_timeout_ms, 5000);
    ck_assert_uint_eq(r[1].upstream_timeout_ms, 10000);
    ck_assert_uint_eq(r[1].backoff_ms, 10000);
    ck_assert_uint_eq(r[1].resolve_interval_ms, 30000);

    ck_assert_int_eq(r[2].balance, CFG_BALANCE_LEAST_CONN);
    ck_assert_uint_eq(r[2].health_check->interval_ms, 3000);
    ck_assert_uint_eq(r[2].health_check->timeout_ms, 2000);
    ck_assert_ptr_null(r[2].upstream_tls);
    ck_assert_int_eq(r[3].balance, CFG_BALANCE_HASH_IP);
    ck_assert_str_eq(r[3].upstream_host, "[::1]");
    ck_assert_str_eq(r[3].upstreams[0].host, "::1");
    ck_assert_uint_eq(r[3].health_check->interval_ms, 10000);
    ck_assert_uint_eq(r[3].health_check->timeout_ms, 9000);
    ck_assert_int_eq(r[4].balance, CFG_BALANCE_ROUND_ROBIN);
    ck_assert_str_eq(r[4].upstream_host, "d");
    ck_assert_ptr_null(r[4].health_check);
    cfg_free(cfg);
}
END_TEST

/* A route may have CFG_MAX_UPSTREAMS upstreams, and no more. */
START_TEST(test_max_upstreams)
{
    char doc[8192];
    size_t n = (size_t)snprintf(doc, sizeof(doc),
                                "listeners: [{address: ':1'}]\n"
                                "routes: [{path: /a, upstreams: [");

    for (int i = 0; i < CFG_MAX_UPSTREAMS; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sws://h%d", i > 0 ? ", " : "",
                              i);
    snprintf(doc + n, sizeof(doc) - n, "]}]\n");
    struct cfg *cfg = load_ok(doc);
    ck_assert_uint_eq(cfg->routes[0].nupstreams, CFG_MAX_UPSTREAMS);
    ck_assert_str_eq(cfg->routes[0].upstreams[CFG_MAX_UPSTREAMS - 1].host, "h63");
    cfg_free(cfg);

    snprintf(doc + n, sizeof(doc) - n, ", ws://h64]}]\n");
    char *errors = load_bad(doc);
    ck_assert_str_eq(
        errors, "test.yaml:2:32: routes[0].upstreams: at most 64 upstreams (found 65)\n");
    free(errors);
}
END_TEST

/* Values of the upstream keys that are refused, each with its exact error. */
static const struct {
    const char *route; /* the keys after "path: /a, upstream: 'wss://h', " */
    const char *want;
} upstream_key_cases[] = {
    {"balance: random", "routes[0].balance: invalid value \"random\": expected one of: "
                        "round_robin, least_conn, hash_ip, hash_subject"},
    {"balance: Round_Robin", "routes[0].balance: invalid value \"Round_Robin\""},
    {"upstream_host: 'a b'", "routes[0].upstream_host: invalid value \"a b\": expected a "
                             "host name or an IP address, optionally with :PORT"},
    {"upstream_host: 'h:0'", "routes[0].upstream_host: invalid value \"h:0\": the port "
                             "must be a number from 1 to 65535"},
    {"upstream_host: 'h:'", "the port must be a number from 1 to 65535"},
    {"upstream_host: 'h:1x'", "the port must be a number from 1 to 65535"},
    {"upstream_host: 'h:123456'", "the port must be a number from 1 to 65535"},
    {"upstream_host: '::1'", "an IPv6 address goes in brackets"},
    {"upstream_host: 'h/x'", "expected a host name or an IP address"},
    {"upstream_host: ''", "routes[0].upstream_host: must not be empty"},
    {"upstream_tls: {key: k.pem}",
     "routes[0].upstream_tls.certificate: missing (certificate and key go together)"},
    {"upstream_tls: {certificate: ''}", "routes[0].upstream_tls.certificate: must not "
                                        "be empty"},
    {"upstream_tls: {verify: yes}",
     "routes[0].upstream_tls.verify: invalid value \"yes\": expected true or false"},
    {"upstream_tls: {server_name: 'h:443'}",
     "routes[0].upstream_tls.server_name: invalid value \"h:443\": expected a host name "
     "or an IPv4 address"},
    {"upstream_tls: {server_name: '[::1]'}", "expected a host name or an IPv4 address"},
    {"upstream_tls: {sni: h}", "routes[0].upstream_tls.sni: unknown key"},
    {"upstream_tls: x", "routes[0].upstream_tls: expected a mapping, not a single value"},
    {"health_check: {interval: 0ms}", "routes[0].health_check.interval: must be at least "
                                      "1ms"},
    {"health_check: {interval: 2s}", "routes[0].health_check.interval: must be more than "
                                     "timeout (default 2s)"},
    {"health_check: {timeout: 10s}", "routes[0].health_check.timeout: must be less than "
                                     "interval (default 10s)"},
    {"health_check: {interval: 1s, timeout: 1s}",
     "routes[0].health_check.timeout: must be less than interval\n"},
    {"health_check: {timeout: 5}",
     "routes[0].health_check.timeout: invalid value \"5\": missing unit"},
    {"health_check: {path: healthz}",
     "routes[0].health_check.path: invalid value \"healthz\": must start with \"/\""},
    {"health_check: {path: '/a#b'}", "must not hold a fragment"},
    {"health_check: {path: '/a b'}", "must be printable ASCII without spaces"},
    {"connect_timeout: 0s", "routes[0].connect_timeout: must be at least 1ms"},
    {"upstream_timeout: 10", "routes[0].upstream_timeout: invalid value \"10\": missing "
                             "unit"},
    {"backoff: 1.5s", "routes[0].backoff: invalid value \"1.5s\""},
    {"resolve_interval: -1s", "routes[0].resolve_interval: invalid value \"-1s\""},
};

START_TEST(test_upstream_keys_bad)
{
    char *doc = NULL;

    ck_assert_int_ge(asprintf(&doc,
                              "listeners: [{address: ':1'}]\n"
                              "routes: [{path: /a, upstream: 'wss://h', %s}]\n",
                              upstream_key_cases[_i].route),
                     0);
    expect_error(doc, upstream_key_cases[_i].want);
    free(doc);
}
END_TEST

/* On a handler route, each upstream-only key is an error at that key. */
START_TEST(test_upstream_keys_on_handler)
{
    const struct cfg_schema_table *t = &cfg_schema_tables[0];
    size_t checked = 0;

    while (strcmp(t->path, "routes[]") != 0)
        t++;
    for (size_t k = 0; k < t->nkeys; k++) {
        static const char *const anywhere[] = {"name",
                                               "path",
                                               "path_prefix",
                                               "host",
                                               "handler",
                                               "upstream",
                                               "upstreams",
                                               "strip_prefix",
                                               "auth",
                                               "token_from",
                                               "close_on_expiry",
                                               "deflate",
                                               "deflate_threshold",
                                               "ping_interval",
                                               "max_send_queue",
                                               "slow_reader",
                                               "origins",
                                               "plugin",
                                               "options",
                                               "room_from",
                                               "echo_to_sender",
                                               "max_room_members",
                                               "max_rooms"};
        bool any = false;
        for (size_t j = 0; j < NELEMS(anywhere); j++)
            any = any || strcmp(anywhere[j], t->keys[k].name) == 0;
        if (any)
            continue;
        char *doc = NULL, want[128];
        ck_assert_int_ge(asprintf(&doc,
                                  "listeners: [{address: ':1'}]\n"
                                  "routes: [{path: /a, handler: echo, %s: %s}]\n",
                                  t->keys[k].name, t->keys[k].example),
                         0);
        snprintf(want, sizeof(want),
                 "test.yaml:2:36: routes[0].%s: applies only to "
                 "upstream routes\n",
                 t->keys[k].name);
        char *errors = load_bad(doc);
        ck_assert_str_eq(errors, want);
        free(errors);
        free(doc);
        checked++;
    }
    ck_assert_uint_eq(checked, 8);
}
END_TEST

/* The endpoint keys of handler routes: defaults, values, and that each is an
 * error on an upstream route. */
START_TEST(test_endpoint_keys)
{
    struct cfg *cfg =
        load_ok("listeners: [{address: ':1'}]\n"
                "routes:\n"
                "  - {path: /a, handler: echo}\n"
                "  - {path: /b, handler: echo, deflate: on, deflate_threshold: 0,"
                " ping_interval: off, max_send_queue: 64KiB, slow_reader: drop}\n"
                "  - {path: /c, handler: echo, deflate: off, ping_interval: 5s}\n");
    const struct cfg_route *r = cfg->routes;
    ck_assert(!r[0].deflate);
    ck_assert_uint_eq(r[0].deflate_threshold, 1024);
    ck_assert_uint_eq(r[0].ping_interval_ms, 30000);
    ck_assert_uint_eq(r[0].max_send_queue, 0);
    ck_assert_int_eq(r[0].slow_reader, CFG_SLOW_READER_CLOSE);
    ck_assert(r[1].deflate);
    ck_assert_uint_eq(r[1].deflate_threshold, 0);
    ck_assert_uint_eq(r[1].ping_interval_ms, 0);
    ck_assert_uint_eq(r[1].max_send_queue, 64 * 1024);
    ck_assert_int_eq(r[1].slow_reader, CFG_SLOW_READER_DROP);
    ck_assert(!r[2].deflate);
    ck_assert_uint_eq(r[2].ping_interval_ms, 5000);
    cfg_free(cfg);

    static const char *const keys[][2] = {
        {"deflate", "on"},        {"deflate_threshold", "1KiB"},
        {"ping_interval", "off"}, {"max_send_queue", "1MiB"},
        {"slow_reader", "close"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *doc = NULL, want[160];
        ck_assert_int_ge(asprintf(&doc,
                                  "listeners: [{address: ':1'}]\n"
                                  "routes: [{path: /a, upstream: 'ws://h', %s: %s}]\n",
                                  keys[i][0], keys[i][1]),
                         0);
        snprintf(want, sizeof(want),
                 "test.yaml:2:41: routes[0].%s: applies only to handler routes\n",
                 keys[i][0]);
        char *errors = load_bad(doc);
        ck_assert_str_eq(errors, want);
        free(errors);
        free(doc);
    }
}
END_TEST

/* plugin/options belong to handler: plugin, the room keys to broadcast; on
 * any other route each is an error at that key. */
static const struct {
    const char *route;
    const char *want;
} handler_key_cases[] = {
    {"{path: /a, handler: echo, plugin: /x.so}",
     "test.yaml:2:36: routes[0].plugin: applies only to routes with handler: plugin\n"},
    {"{path: /a, handler: broadcast, options: {a: b}}",
     "test.yaml:2:41: routes[0].options: applies only to routes with handler: plugin\n"},
    {"{path: /a, upstream: 'ws://h', room_from: route}",
     "test.yaml:2:41: routes[0].room_from: applies only to routes with handler: "
     "broadcast\n"},
    {"{path: /a, handler: plugin, plugin: /x.so, echo_to_sender: true}",
     "test.yaml:2:53: routes[0].echo_to_sender: applies only to routes with handler: "
     "broadcast\n"},
    {"{path: /a, handler: echo, max_rooms: 3, max_room_members: 4}",
     "test.yaml:2:36: routes[0].max_rooms: applies only to routes with handler: "
     "broadcast\n"
     "test.yaml:2:50: routes[0].max_room_members: applies only to routes with handler: "
     "broadcast\n"},
    {"{path: /a, handler: plugin}",
     "test.yaml:2:10: routes[0]: handler: plugin needs plugin (the shared object's "
     "path)\n"},
    {"{path: /a, handler: plugin, plugin: lib.so}",
     "test.yaml:2:46: routes[0].plugin: invalid value \"lib.so\": must be an absolute "
     "path to a shared object\n"},
    {"{path: /a, handler: plugin, plugin: /x.so, options: {a: [1]}}",
     "test.yaml:2:66: routes[0].options.a: expected a single value, not a list\n"},
    {"{path: /a, handler: broadcast, room_from: path}",
     "test.yaml:2:52: routes[0].room_from: path needs a path_prefix route, "
     "not path\n"},
    {"{path: /a, handler: broadcast, room_from: 'query='}",
     "test.yaml:2:52: routes[0].room_from: invalid value \"query=\": expected route, "
     "path "
     "or query=NAME\n"},
    {"{path: /a, handler: broadcast, room_from: cookie=x}",
     "test.yaml:2:52: routes[0].room_from: invalid value \"cookie=x\": expected route, "
     "path or query=NAME\n"},
    {"{path: /a, handler: broadcast, max_room_members: 0}",
     "test.yaml:2:59: routes[0].max_room_members: must be from 1 to 1000000\n"},
    {"{path: /a, handler: broadcast, echo_to_sender: yes}",
     "test.yaml:2:57: routes[0].echo_to_sender: invalid value \"yes\": expected true or "
     "false\n"},
};

START_TEST(test_handler_keys_bad)
{
    char *doc = NULL;

    ck_assert_int_ge(asprintf(&doc,
                              "listeners: [{address: ':1'}]\n"
                              "routes: [%s]\n",
                              handler_key_cases[_i].route),
                     0);
    char *errors = load_bad(doc);
    ck_assert_str_eq(errors, handler_key_cases[_i].want);
    free(errors);
    free(doc);
}
END_TEST

START_TEST(test_handler_keys)
{
    struct cfg *cfg = load_ok(
        "listeners: [{address: ':1'}]\n"
        "routes:\n"
        "  - {path: /p, handler: plugin, plugin: /opt/p.so, options: {a: '1', b: x}}\n"
        "  - {path_prefix: /chat/, handler: broadcast}\n"
        "  - {path: /q, handler: broadcast, room_from: query=room, echo_to_sender: "
        "true,\n"
        "     max_room_members: 5, max_rooms: 7}\n"
        "  - {path: /one, handler: broadcast}\n");

    const struct cfg_route *r = &cfg->routes[0];
    ck_assert_str_eq(r->handler, "plugin");
    ck_assert_str_eq(r->plugin, "/opt/p.so");
    ck_assert_int_eq(r->plugin_mark.line, 3);
    ck_assert_int_eq(r->plugin_mark.column, 41);
    ck_assert_uint_eq(r->noptions, 2);
    ck_assert_str_eq(r->options[0].name, "a");
    ck_assert_str_eq(r->options[0].value, "1");
    ck_assert_str_eq(r->options[1].name, "b");
    ck_assert_str_eq(r->options[1].value, "x");
    r = &cfg->routes[1];
    ck_assert_int_eq(r->room_from, CFG_ROOM_PATH);
    ck_assert(!r->echo_to_sender);
    ck_assert_uint_eq(r->max_room_members, 10000);
    ck_assert_uint_eq(r->max_rooms, 10000);
    r = &cfg->routes[2];
    ck_assert_int_eq(r->room_from, CFG_ROOM_QUERY);
    ck_assert_str_eq(r->room_param, "room");
    ck_assert(r->echo_to_sender);
    ck_assert_uint_eq(r->max_room_members, 5);
    ck_assert_uint_eq(r->max_rooms, 7);
    ck_assert_int_eq(cfg->routes[3].room_from, CFG_ROOM_ROUTE);
    cfg_free(cfg);
}
END_TEST

START_TEST(test_load_default)
{
    struct cfg *cfg = cfg_load_default();

    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->file, "<default>");
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_str_eq(cfg->listeners[0].host, "127.0.0.1");
    ck_assert_uint_eq(cfg->listeners[0].port, 8080);
    ck_assert_uint_eq(cfg->nroutes, 1);
    ck_assert_str_eq(cfg->routes[0].name, "echo");
    ck_assert_str_eq(cfg->routes[0].path, "/echo");
    ck_assert_str_eq(cfg->routes[0].handler, "echo");
    ck_assert_ptr_null(cfg->routes[0].provider);
    cfg_free(cfg);
    cfg_free(NULL);
}
END_TEST

static char *
example_path(void)
{
    return data_path("../../config/example.yaml");
}

START_TEST(test_example)
{
    char *path = example_path();
    size_t len;
    char *text = read_all(path, &len);
    char *errors;

    ck_assert_msg(text != NULL, "%s: %s", path, strerror(errno));
    struct cfg *cfg = load_named("example.yaml", text, len, fake_getenv, &errors);
    ck_assert_msg(cfg != NULL, "example.yaml:\n%s", errors);
    free(errors);
    ck_assert_str_eq(cfg->listeners[0].address, "127.0.0.1:8080");
    ck_assert_uint_eq(cfg->ntoken_from, 3);
    ck_assert_uint_eq(cfg->nproviders, 1);
    ck_assert_str_eq(cfg->providers[0].tokens[0], "tok-from-env");
    ck_assert_uint_eq(cfg->nroutes, 2);
    ck_assert_ptr_null(cfg->routes[0].provider);
    ck_assert_str_eq(cfg->routes[1].path, "/private/echo");
    ck_assert_ptr_eq(cfg->routes[1].provider, &cfg->providers[0]);
    cfg_free(cfg);

    cfg = load_named("example.yaml", text, len, no_env, &errors);
    ck_assert_msg(cfg != NULL, "example.yaml:\n%s", errors);
    ck_assert_str_eq(cfg->providers[0].tokens[0], "change-me");
    cfg_free(cfg);
    free(errors);

    /* The same file through the file loader and the process environment. */
    struct cfg_errors errs = {0};
    ck_assert_int_eq(cfg_load_file(path, &cfg, &errs), 0);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_str_eq(cfg->file, path);
    cfg_free(cfg);
    free(text);
    free(path);
}
END_TEST

/* The example's commented-out upstream route, uncommented, is valid and
 * shows every upstream key. */
START_TEST(test_example_upstream)
{
    static const char marker[] = "\n  # - name: chat\n";
    char *path = example_path();
    size_t len, n = 0;
    char *text = read_all(path, &len);

    ck_assert_ptr_nonnull(text);
    char *start = strstr(text, marker);
    ck_assert_ptr_nonnull(start);
    char *out = malloc(len + 2);
    ck_assert_ptr_nonnull(out);
    n = (size_t)(start - text) + 1;
    memcpy(out, text, n);
    for (const char *line = start + 1; *line != '\0';) {
        size_t llen = strcspn(line, "\n");
        if (strncmp(line, "  # ", 4) == 0) { /* "  # x" becomes "  x" */
            memcpy(out + n, "  ", 2);
            memcpy(out + n + 2, line + 4, llen - 4);
            n += llen - 2;
        } else {
            memcpy(out + n, line, llen);
            n += llen;
        }
        out[n++] = '\n';
        line += llen + (line[llen] == '\n');
    }
    char *errors;
    struct cfg *cfg = load_named("example.yaml", out, n, fake_getenv, &errors);
    ck_assert_msg(cfg != NULL, "uncommented example.yaml:\n%.*s\n%s", (int)n, out,
                  errors);
    free(errors);
    ck_assert_uint_eq(cfg->nroutes, 3);
    const struct cfg_route *r = &cfg->routes[2];
    ck_assert_str_eq(r->name, "chat");
    ck_assert_int_eq(r->kind, CFG_ROUTE_UPSTREAM);
    ck_assert_uint_eq(r->nupstreams, 2);
    ck_assert_ptr_nonnull(r->upstream_host);
    ck_assert_ptr_nonnull(r->upstream_tls);
    ck_assert_ptr_nonnull(r->upstream_tls->ca_file);
    ck_assert_ptr_nonnull(r->upstream_tls->certificate);
    ck_assert_ptr_nonnull(r->upstream_tls->server_name);
    ck_assert_ptr_nonnull(r->health_check);
    ck_assert_ptr_eq(r->provider, &cfg->providers[0]);
    /* What the comments call defaults are the defaults. */
    ck_assert_int_eq(r->balance, CFG_BALANCE_ROUND_ROBIN);
    ck_assert(r->upstream_tls->verify);
    ck_assert_uint_eq(r->health_check->interval_ms, 10000);
    ck_assert_uint_eq(r->health_check->timeout_ms, 2000);
    ck_assert_str_eq(r->health_check->path, "/");
    ck_assert_uint_eq(r->connect_timeout_ms, 5000);
    ck_assert_uint_eq(r->upstream_timeout_ms, 10000);
    ck_assert_uint_eq(r->backoff_ms, 10000);
    ck_assert_uint_eq(r->resolve_interval_ms, 30000);
    ck_assert_uint_eq(cfg->limits.proxy_buffer, 64 * 1024);
    cfg_free(cfg);
    free(out);
    free(text);
    free(path);
}
END_TEST

/* Every prefix of the example loads or fails cleanly, never half-way. */
START_TEST(test_example_prefixes)
{
    char *path = example_path();
    size_t len;
    char *text = read_all(path, &len);

    ck_assert_ptr_nonnull(text);
    for (size_t n = 0; n <= len; n++) {
        char *errors;
        struct cfg *cfg = load_named("p.yaml", text, n, fake_getenv, &errors);
        cfg_free(cfg);
        free(errors);
    }
    free(text);
    free(path);
}
END_TEST

START_TEST(test_load_file_errors)
{
    struct cfg *cfg = (struct cfg *)1;
    struct cfg_errors errs = {0};
    char *dir = data_path("config");
    char *msg = NULL;

    ck_assert_int_eq(cfg_load_file("/nonexistent/wsgate.yaml", &cfg, &errs), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.msgs[0],
                     "/nonexistent/wsgate.yaml: cannot read: No such file or directory");
    ck_assert_int_eq(cfg_load_file(dir, &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 2);
    ck_assert_int_ge(asprintf(&msg, "%s: cannot read: Is a directory", dir), 0);
    ck_assert_str_eq(errs.msgs[1], msg);
    cfg_errors_free(&errs);
    cfg_errors_free(&errs);
    free(msg);
    free(dir);
}
END_TEST

/* Errors quote values as written: a variable's value never shows. */
static const char *const secret_docs[] = {
    "workers: ${SECRET}\n",
    "limits: {max_request_head: '${SECRET}', idle_timeout: 'x${SECRET}'}\n",
    "log: {level: '${SECRET}'}\n",
    "listeners: [{address: '${SECRET}'}]\n",
    "auth: {token_from: ['${SECRET}', 'query=${SECRET} x'], providers: {p: {type: "
    "'${SECRET}'}}}\n",
    "routes: [{path: '${SECRET}', host: '${SECRET}:1', handler: '${SECRET}'}]\n",
    "routes: [{path_prefix: /p/, upstream: 'ws://a:${SECRET}@h:99999', strip_prefix: "
    "'${SECRET}', auth: '${SECRET}'}]\n",
    "routes: [{path: /a, upstreams: ['ws://u:${SECRET}@h', 'ws://h/?t=${SECRET}', "
    "'ws://h/#${SECRET}', 'ws://h:${SECRET}', 'ws://${SECRET}', '${SECRET}://h'], "
    "auth: '${SECRET}'}]\n",
    "routes: [{path: /a, upstream: 'wss://h', upstream_host: '${SECRET}', balance: "
    "'${SECRET}', upstream_tls: {server_name: '${SECRET}', verify: '${SECRET}'}, "
    "health_check: {path: '${SECRET}', interval: '${SECRET}'}, backoff: '${SECRET}'}]\n",
    "routes: [{path: /a, name: '${SECRET}', handler: echo}, {path: /b, name: "
    "'${SECRET}', "
    "handler: echo}]\n",
};

START_TEST(test_secret_never_printed)
{
    char *errors = load_bad(secret_docs[_i]);
    ck_assert_msg(strstr(errors, "hunter2") == NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "${SECRET}") != NULL, "%s", errors);
    free(errors);
}
END_TEST

/* What the loader refuses before the schema sees anything. */
static const struct {
    const char *text;
    const char *want;
} loader_cases[] = {
    {"a: &x 1\nb: *x\n", "test.yaml:1:4: anchors and aliases are not supported\n"},
    {"a: *x\n", "test.yaml:1:4: anchors and aliases are not supported\n"},
    {"a: 1\n---\nb: 2\n", "test.yaml:2:1: only one YAML document is allowed\n"},
    {"? [a]\n: 1\n", "test.yaml:1:3: a mapping key must be a string, not a list or a "
                     "mapping\n"},
    {"a: \"x\\0y\"\n", "test.yaml:1:4: a NUL character is not allowed in a value\n"},
    {"a: b: c\n", "test.yaml:1:5: syntax error: mapping values are not allowed in this "
                  "context\n"},
    {"a: [1, 2\n", "test.yaml:2:1: syntax error: did not find expected ',' or ']' (while "
                   "parsing a flow sequence at line 1, column 4)\n"},
    {"a: 1\n\x01", "test.yaml:2:1: invalid input: control characters are not allowed\n"},
    {"a: \xff\n", "test.yaml:1:4: invalid input: invalid leading UTF-8 octet\n"},
    {"- 1\n- 2\n", "test.yaml:1:1: expected a mapping, not a list\n"},
    {"", "test.yaml:1:1: listeners: missing required key\n"
         "test.yaml:1:1: routes: missing required key\n"},
    {"# only a comment\n", "test.yaml:1:1: listeners: missing required key\n"
                           "test.yaml:1:1: routes: missing required key\n"},
};

START_TEST(test_loader)
{
    char *errors = load_bad(loader_cases[_i].text);
    ck_assert_str_eq(errors, loader_cases[_i].want);
    free(errors);
}
END_TEST

START_TEST(test_billion_laughs)
{
    char *errors = load_bad("a: &a [x, x, x, x, x, x, x, x, x]\n"
                            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                            "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n");
    ck_assert_str_eq(errors, "test.yaml:1:4: anchors and aliases are not supported\n");
    free(errors);
}
END_TEST

START_TEST(test_deep_nesting)
{
    char text[4096];
    size_t n = 0;

    n += (size_t)snprintf(text, sizeof(text), "a: ");
    for (int i = 0; i < 1000; i++)
        text[n++] = '[';
    text[n] = '\0';
    char *errors = load_bad(text);
    ck_assert_str_eq(errors, "test.yaml:1:67: nested deeper than 64 levels\n");
    free(errors);
}
END_TEST

/* ---- golden files: tests/data/config/NAME.yaml beside NAME.expected ---- */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the .yaml files in dir, sorted; stores their count in *n. */
static char **
list_yaml(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;

    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    *n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        char **more = realloc(names, (*n + 1) * sizeof(*names));
        ck_assert_ptr_nonnull(more);
        names = more;
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    ck_assert_ptr_nonnull(names);
    qsort(names, *n, sizeof(*names), name_cmp);
    return names;
}

/* Compares one golden file; with WSGATE_UPDATE_GOLDEN=1 rewrites .expected.
 * Returns 0 when it matches. */
static int
check_golden(const char *dir, const char *name, char **report)
{
    char *yaml_path = NULL, *exp_path = NULL;
    size_t len, elen;

    ck_assert_int_ge(asprintf(&yaml_path, "%s/%s", dir, name), 0);
    ck_assert_int_ge(
        asprintf(&exp_path, "%.*s.expected", (int)strlen(yaml_path) - 5, yaml_path), 0);
    char *text = read_all(yaml_path, &len);
    ck_assert_ptr_nonnull(text);
    char *errors;
    struct cfg *cfg = load_named(name, text, len, fake_getenv, &errors);
    cfg_free(cfg);
    char *expected = read_all(exp_path, &elen);
    const char *update = getenv("WSGATE_UPDATE_GOLDEN");
    int rc = 0;
    if (update != NULL && strcmp(update, "1") == 0) {
        FILE *f = fopen(exp_path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(errors, f);
        fclose(f);
    } else if (expected == NULL || strcmp(expected, errors) != 0) {
        char *r = NULL;
        ck_assert_int_ge(asprintf(&r, "%s--- %s: expected\n%s--- got\n%s", *report, name,
                                  expected != NULL ? expected : "(no .expected file)\n",
                                  errors),
                         0);
        free(*report);
        *report = r;
        rc = -1;
    }
    free(expected);
    free(errors);
    free(text);
    free(exp_path);
    free(yaml_path);
    return rc;
}

START_TEST(test_golden)
{
    char *dir = data_path("config");
    size_t n, failed = 0, ok = 0;
    char **names = list_yaml(dir, &n);
    char *report = strdup("");

    ck_assert_uint_ge(n, 20);
    for (size_t i = 0; i < n; i++) {
        if (check_golden(dir, names[i], &report) != 0)
            failed++;
        ok += strncmp(names[i], "ok_", 3) == 0;
        free(names[i]);
    }
    ck_assert_msg(failed == 0, "%zu of %zu golden files differ:\n%s", failed, n, report);
    ck_assert_uint_ge(ok, 1);
    free(report);
    free(names);
    free(dir);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *units = tcase_create("units");
    tcase_add_loop_test(units, test_parse_size, 0, NELEMS(size_cases));
    tcase_add_loop_test(units, test_parse_duration, 0, NELEMS(duration_cases));
    tcase_add_loop_test(units, test_parse_address, 0, NELEMS(address_cases));
    tcase_add_loop_test(units, test_parse_upstream_url, 0, NELEMS(url_cases));
    tcase_add_loop_test(units, test_expand_env, 0, NELEMS(expand_cases));
    tcase_add_test(units, test_expand_env_no_lookup);
    tcase_add_test(units, test_handler_known);
    suite_add_tcase(s, units);

    TCase *schema = tcase_create("schema");
    tcase_add_loop_test(schema, test_schema_table, 0, (int)cfg_schema_ntables);
    tcase_add_test(schema, test_defaults);
    tcase_add_test(schema, test_full);
    tcase_add_test(schema, test_upstream_route);
    tcase_add_test(schema, test_max_upstreams);
    tcase_add_loop_test(schema, test_upstream_keys_bad, 0, NELEMS(upstream_key_cases));
    tcase_add_test(schema, test_upstream_keys_on_handler);
    tcase_add_test(schema, test_endpoint_keys);
    tcase_add_loop_test(schema, test_handler_keys_bad, 0, NELEMS(handler_key_cases));
    tcase_add_test(schema, test_handler_keys);
    tcase_add_test(schema, test_load_default);
    tcase_add_loop_test(schema, test_secret_never_printed, 0, NELEMS(secret_docs));
    suite_add_tcase(s, schema);

    TCase *loader = tcase_create("loader");
    tcase_add_loop_test(loader, test_loader, 0, NELEMS(loader_cases));
    tcase_add_test(loader, test_billion_laughs);
    tcase_add_test(loader, test_deep_nesting);
    tcase_add_test(loader, test_load_file_errors);
    suite_add_tcase(s, loader);

    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_example);
    tcase_add_test(files, test_example_upstream);
    tcase_add_test(files, test_example_prefixes);
    tcase_add_test(files, test_golden);
    suite_add_tcase(s, files);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
