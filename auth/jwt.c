/* jwt: the provider that accepts a signed JSON Web Token and maps its claims. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/auth_internal.h"
#include "auth/jwt_verify.h"
#include "gateway/http1_parse.h"

/* Key files larger than this are not key files. */
#define JWT_FILE_MAX (1024 * 1024)
/* The longest subject or claim header value passed upstream. */
#define JWT_VALUE_MAX 4096

struct auth_jwt {
    const struct cfg_provider *cfg; /* outlives the provider */
    const char *name;
    struct jwt_keyset *keys;
    struct jwt_policy policy;
};

/* Fills err with a message at mark (the configuration's position of a key). */
static int jwt_fail(struct gw_err *err, struct cfg_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
jwt_fail(struct gw_err *err, struct cfg_mark mark, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->file = NULL;
    err->line = mark.line;
    err->column = mark.column;
    return -1;
}

static int
jwt_allowed(const struct cfg_jwt *j, unsigned *mask, struct gw_err *err)
{
    *mask = 0;
    for (size_t i = 0; i < j->nalgorithms; i++) {
        const char *a = j->algorithms[i];
        int alg = a != NULL ? jwt_alg_from_name(a, strlen(a)) : -1;
        if (alg < 0)
            return jwt_fail(err, j->algorithms_mark, "unknown algorithm");
        *mask |= 1u << alg;
    }
    return *mask != 0 ? 0 : jwt_fail(err, j->algorithms_mark, "no algorithm allowed");
}

/* Builds the keys: the PEM key first, so that its fit can be checked alone. */
static int
jwt_keys(struct auth_jwt *s, const char *name, struct gw_err *err)
{
    const struct cfg_jwt *j = s->cfg->jwt;
    struct gw_err kerr = {.msg = ""};
    if ((s->keys = jwt_keyset_new()) == NULL)
        return gw_err_set(err, "out of memory");
    if (j->public_key != NULL) {
        if (j->public_key_text == NULL)
            return jwt_fail(err, j->public_key_mark,
                            "auth.providers.%s.public_key: %s was not read", name,
                            j->public_key);
        if (jwt_keyset_add_pem(s->keys, j->public_key_text, j->public_key_len, &kerr) !=
            0)
            return jwt_fail(err, j->public_key_mark,
                            "auth.providers.%s.public_key: %s: %s", name, j->public_key,
                            kerr.msg);
        bool fits = false;
        for (int a = 0; a < JWT_NALGS; a++)
            fits |= (s->policy.allowed >> a & 1) &&
                    jwt_alg_family(a) != JWT_FAMILY_HMAC &&
                    jwt_keyset_serves(s->keys, (enum jwt_alg)a);
        if (!fits)
            return jwt_fail(err, j->public_key_mark,
                            "auth.providers.%s.public_key: %s: no allowed algorithm "
                            "uses this key (RS*/PS* need RSA; ES256, ES384, ES512 need "
                            "P-256, P-384, P-521)",
                            name, j->public_key);
    }
    if (j->secret != NULL &&
        jwt_keyset_add_secret(s->keys, j->secret, strlen(j->secret), &kerr) != 0)
        return jwt_fail(err, j->secret_mark, "auth.providers.%s.secret: %s", name,
                        kerr.msg);
    if (j->jwks != NULL) {
        if (j->jwks_text == NULL)
            return jwt_fail(err, j->jwks_mark, "auth.providers.%s.jwks: %s was not read",
                            name, j->jwks);
        if (jwt_keyset_add_jwks(s->keys, j->jwks_text, j->jwks_len, &kerr) < 0)
            return jwt_fail(err, j->jwks_mark, "auth.providers.%s.jwks: %s: %s", name,
                            j->jwks, kerr.msg);
    }
    for (int a = 0; a < JWT_NALGS; a++)
        if ((s->policy.allowed >> a & 1) && !jwt_keyset_serves(s->keys, (enum jwt_alg)a))
            return jwt_fail(err, j->algorithms_mark,
                            "auth.providers.%s.algorithms: no configured key can verify "
                            "%s",
                            name, jwt_alg_name((enum jwt_alg)a));
    return 0;
}

static void
jwt_destroy(void *state)
{
    struct auth_jwt *s = state;
    if (s == NULL)
        return;
    jwt_keyset_free(s->keys);
    free(s);
}

static int
jwt_create(const struct cfg_provider *cfg, struct event_base *base, void **state,
           struct gw_err *err)
{
    const char *name = cfg->name != NULL ? cfg->name : "jwt";
    const struct cfg_jwt *j = cfg->jwt;
    if (j == NULL)
        return gw_err_set(err, "auth.providers.%s: no jwt settings", name);
    struct auth_jwt *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return gw_err_set(err, "out of memory");
    s->cfg = cfg;
    s->name = name;
    s->policy = (struct jwt_policy){
        .leeway = (long long)(j->leeway_ms / 1000),
        .issuer = j->issuer,
        .audience = (const char *const *)j->audience,
        .naudience = j->naudience,
        .required = (const char *const *)j->required_claims,
        .nrequired = j->nrequired_claims,
    };
    if (jwt_allowed(j, &s->policy.allowed, err) != 0 || jwt_keys(s, name, err) != 0) {
        jwt_destroy(s);
        return -1;
    }
    *state = s;
    return 0;
}

/* Appends one claim value (string, number or boolean) to buf; false when it
 * has another type, does not fit or holds characters a header cannot. */
static bool
jwt_append_scalar(json_t *v, char *buf, size_t cap, size_t *len)
{
    char num[64];
    const char *p;
    size_t n;
    if (json_is_string(v)) {
        p = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                             json_integer_value(v));
        p = num;
    } else if (json_is_real(v)) {
        n = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        p = num;
    } else if (json_is_boolean(v)) {
        p = json_is_true(v) ? "true" : "false";
        n = strlen(p);
    } else {
        return false;
    }
    if (n >= cap - *len || !http1_value_ok(p, n))
        return false;
    memcpy(buf + *len, p, n);
    *len += n;
    buf[*len] = '\0';
    return true;
}

/* A claim as a header value: a scalar as text, an array's scalars joined
 * with ","; false when it cannot be one. */
static bool
jwt_claim_value(json_t *v, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (!json_is_array(v))
        return jwt_append_scalar(v, buf, cap, &len);
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (i > 0 && len + 1 < cap)
            buf[len++] = ',';
        if (!jwt_append_scalar(json_array_get(v, i), buf, cap, &len))
            return false;
    }
    buf[len] = '\0';
    return true;
}

/* Maps the verified claims to the result's subject and headers; returns
 * NULL, or why the token cannot be used. values has room for
 * nclaims_to_headers + 1 values of JWT_VALUE_MAX bytes. */
static const char *
jwt_identity(const struct auth_jwt *s, json_t *claims, char *values,
             struct auth_header *headers, struct auth_result *res)
{
    const struct cfg_jwt *j = s->cfg->jwt;
    json_t *sub = json_object_get(claims, j->subject_claim);
    if (sub == NULL || json_is_array(sub) ||
        !jwt_claim_value(sub, values, JWT_VALUE_MAX) || values[0] == '\0')
        return "token has no usable subject claim";
    res->subject = values;
    for (size_t i = 0; i < j->nclaims_to_headers; i++) {
        json_t *v = json_object_get(claims, j->claims_to_headers[i].claim);
        char *buf = values + (i + 1) * JWT_VALUE_MAX;
        if (v == NULL || json_is_null(v))
            continue;
        if (!jwt_claim_value(v, buf, JWT_VALUE_MAX))
            return "token claim cannot be sent as a header";
        headers[res->nheaders++] =
            (struct auth_header){j->claims_to_headers[i].header, buf};
    }
    res->headers = headers;
    return NULL;
}

/* Unix seconds by the precise clock. time() reads the coarse one, which
 * lags it by up to a scheduler tick: a token issued this very second would
 * look issued in the future, and exp would be judged a tick late. */
static long long
wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

/* Answers before returning; *pending stays NULL. */
static int
jwt_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
          struct auth_check **pending)
{
    const struct auth_jwt *s = state;
    const struct token_found *cred = req->credential;
    struct auth_result res = {.verdict = AUTH_DENY};
    *pending = NULL;
    if (cred == NULL || cred->kind == 0) {
        res.reason = "missing credentials";
        done(arg, &res);
        return 0;
    }
    size_t n = s->cfg->jwt->nclaims_to_headers;
    char *values = malloc((n + 1) * JWT_VALUE_MAX);
    struct auth_header *headers = calloc(n + 1, sizeof(*headers));
    if (values == NULL || headers == NULL) {
        free(values);
        free(headers);
        return -1;
    }
    json_t *claims = NULL;
    long long exp = 0;
    long long now = wall_seconds();
    enum jwt_status st =
        jwt_verify(cred->token, cred->token_len, s->keys, &s->policy, now, &claims, &exp);
    const char *why = st == JWT_OK ? jwt_identity(s, claims, values, headers, &res)
                                   : jwt_status_reason(st);
    if (st == JWT_NOMEM) {
        res.verdict = AUTH_UNAVAILABLE;
        res.reason = why;
    } else if (why != NULL) {
        res = (struct auth_result){
            .verdict = AUTH_DENY, .error = "invalid_token", .reason = why};
    } else {
        res.verdict = AUTH_ALLOW;
        /* A live connection ends at exp; leeway only forgives skew at the
         * handshake, so a token accepted after its exp gets that grace. */
        res.expires_at = exp <= 0 ? 0 : exp > now ? exp : exp + s->policy.leeway;
    }
    done(arg, &res);
    json_decref(claims);
    free(values);
    free(headers);
    return 0;
}

/* Never called: this provider has no pending checks to cancel. */
static void
jwt_cancel(void *state, struct auth_check *check)
{
}

const struct auth_provider_ops auth_jwt_ops = {
    .type = "jwt",
    .create = jwt_create,
    .start = jwt_start,
    .cancel = jwt_cancel,
    .destroy = jwt_destroy,
};

/* Reads a key file whole; on failure returns -1 with errno's reason. */
static int
jwt_read_file(const char *path, char **text, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    *why = NULL;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        *why = strerror(errno);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > JWT_FILE_MAX) {
        fclose(f);
        *why = S_ISREG(st.st_mode) ? "larger than 1MiB" : "not a regular file";
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf != NULL ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (buf == NULL || ferror(f)) {
        *why = buf == NULL ? "out of memory" : strerror(errno);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int
auth_jwt_read_files(struct cfg_provider *p, struct gw_err *err)
{
    struct cfg_jwt *j = p->jwt;
    const char *why;
    if (j == NULL)
        return 0;
    if (j->public_key != NULL && j->public_key_text == NULL &&
        jwt_read_file(j->public_key, &j->public_key_text, &j->public_key_len, &why) != 0)
        return jwt_fail(err, j->public_key_mark,
                        "auth.providers.%s.public_key: cannot read %s: %s", p->name,
                        j->public_key, why);
    if (j->jwks != NULL && j->jwks_text == NULL &&
        jwt_read_file(j->jwks, &j->jwks_text, &j->jwks_len, &why) != 0)
        return jwt_fail(err, j->jwks_mark, "auth.providers.%s.jwks: cannot read %s: %s",
                        p->name, j->jwks, why);
    return 0;
}
