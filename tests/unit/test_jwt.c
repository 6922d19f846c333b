/* test_jwt: the pure JWS verifier for every algorithm, key loading, and the jwt provider.
 */
#include <check.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/jwt_verify.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1700000000LL

static const char secret256[] = "0123456789abcdef0123456789abcdef";
static const char secret512[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Keys generated once for the whole run. */
static EVP_PKEY *rsa_key, *rsa_other, *ec256, *ec384, *ec521;
static char *rsa_pem;

static EVP_PKEY *
key_for(enum jwt_alg alg)
{
    switch (jwt_alg_family(alg)) {
    case JWT_FAMILY_RSA:
        return rsa_key;
    case JWT_FAMILY_EC:
        return alg == JWT_ES256 ? ec256 : alg == JWT_ES384 ? ec384 : ec521;
    case JWT_FAMILY_HMAC:
        break;
    }
    return NULL;
}

static char *
pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PUBKEY(b, k), 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

static void
setup_keys(void)
{
    if (rsa_key != NULL)
        return;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    ck_assert(rsa_key && rsa_other && ec256 && ec384 && ec521);
    rsa_pem = pem_of(rsa_key);
}

/* ---- building tokens ---- */

static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = tab[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return o;
}

static const char *
md_of(enum jwt_alg alg)
{
    const char *n = jwt_alg_name(alg);
    return strcmp(n + 2, "256") == 0   ? "SHA256"
           : strcmp(n + 2, "384") == 0 ? "SHA384"
                                       : "SHA512";
}

/* Signs input with alg into sig; returns its length. */
static size_t
sign(enum jwt_alg alg, const char *input, unsigned char *sig, const void *hkey,
     size_t hkey_len)
{
    const char *md = md_of(alg);
    if (jwt_alg_family(alg) == JWT_FAMILY_HMAC) {
        unsigned int n = 0;
        HMAC(EVP_get_digestbyname(md), hkey, (int)hkey_len, (const unsigned char *)input,
             strlen(input), sig, &n);
        return n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ck_assert_int_eq(
        EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key_for(alg), NULL), 1);
    if (alg >= JWT_PS256 && alg <= JWT_PS512) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    unsigned char der[1024];
    size_t n = sizeof(der);
    ck_assert_int_eq(
        EVP_DigestSign(ctx, der, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (jwt_alg_family(alg) != JWT_FAMILY_EC) {
        memcpy(sig, der, n);
        return n;
    }
    /* DER to R || S, each left-padded to the curve's size. */
    size_t size = alg == JWT_ES256 ? 32 : alg == JWT_ES384 ? 48 : 66;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    ck_assert_ptr_nonnull(es);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)size);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + size, (int)size);
    ECDSA_SIG_free(es);
    return 2 * size;
}

static const void *
hkey_for(enum jwt_alg alg, size_t *len)
{
    const char *k = alg == JWT_HS256 ? secret256 : secret512;
    *len = strlen(k);
    return k;
}

/* A token with header {"alg":alg_name[,"kid":kid]} and the given claims,
 * signed with alg (and the default keys). Caller frees. */
static char *
make_token_hdr(const char *header, const char *claims, enum jwt_alg alg)
{
    char *out = malloc(16384);
    size_t n = b64url((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += b64url((const unsigned char *)claims, strlen(claims), out + n);
    unsigned char sig[1024];
    size_t hl;
    const void *hk = hkey_for(alg, &hl);
    size_t sl = sign(alg, out, sig, hk, hl);
    out[n++] = '.';
    b64url(sig, sl, out + n);
    return out;
}

static char *
make_token(enum jwt_alg alg, const char *claims)
{
    char header[128];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
             jwt_alg_name(alg));
    return make_token_hdr(header, claims, alg);
}

/* A keyset with the HMAC secrets, the RSA key and the three EC keys. */
static struct jwt_keyset *
all_keys(void)
{
    struct gw_err err = {.msg = ""};
    struct jwt_keyset *ks = jwt_keyset_new();
    ck_assert_int_eq(jwt_keyset_add_secret(ks, secret256, strlen(secret256), &err), 0);
    ck_assert_int_eq(jwt_keyset_add_secret(ks, secret512, strlen(secret512), &err), 0);
    EVP_PKEY *keys[] = {rsa_key, ec256, ec384, ec521};
    for (size_t i = 0; i < NELEMS(keys); i++) {
        char *pem = pem_of(keys[i]);
        ck_assert_msg(jwt_keyset_add_pem(ks, pem, strlen(pem), &err) == 0, "%s", err.msg);
        free(pem);
    }
    return ks;
}

static struct jwt_policy
policy_all(void)
{
    return (struct jwt_policy){.allowed = (1u << JWT_NALGS) - 1, .leeway = 30};
}

static enum jwt_status
verify(const char *tok, const struct jwt_keyset *ks, const struct jwt_policy *p)
{
    json_t *claims = NULL;
    long long exp = -1;
    enum jwt_status st = jwt_verify(tok, strlen(tok), ks, p, NOW, &claims, &exp);
    if (st == JWT_OK)
        ck_assert_ptr_nonnull(claims);
    else
        ck_assert(claims == NULL && exp == 0);
    json_decref(claims);
    return st;
}

/* ---- per algorithm ---- */

struct claim_case {
    const char *name;
    const char *claims; /* printf with NOW three times at most */
    enum jwt_status want;
};

static const struct claim_case claim_cases[] = {
    {"valid", "{\"sub\":\"alice\",\"exp\":%lld}", JWT_OK},
    {"no exp", "{\"sub\":\"alice\"}", JWT_OK},
    {"expired", "{\"sub\":\"a\",\"exp\":%lld}", JWT_EXPIRED},
    {"expired in leeway", "{\"sub\":\"a\",\"exp\":%lld}", JWT_OK},
    {"not yet valid", "{\"sub\":\"a\",\"nbf\":%lld}", JWT_NOT_YET_VALID},
    {"nbf in leeway", "{\"sub\":\"a\",\"nbf\":%lld}", JWT_OK},
    {"iat in the future", "{\"sub\":\"a\",\"iat\":%lld}", JWT_ISSUED_FUTURE},
    {"exp a string", "{\"sub\":\"a\",\"exp\":\"%lld\"}", JWT_BAD_CLAIM},
    {"fractional exp", "{\"sub\":\"a\",\"exp\":%lld.5}", JWT_OK},
};

/* The time each case puts in its claim. */
static long long
case_time(size_t i)
{
    static const long long offset[] = {3600, 0, -31, -10, 31, 10, 31, 3600, 3600};
    return NOW + offset[i];
}

START_TEST(test_alg_claims)
{
    setup_keys();
    enum jwt_alg alg = (enum jwt_alg)(_i / NELEMS(claim_cases));
    const struct claim_case *cc = &claim_cases[_i % NELEMS(claim_cases)];
    char claims[256];
    const char *at = strstr(cc->claims, "%lld");
    if (at != NULL)
        snprintf(claims, sizeof(claims), "%.*s%lld%s", (int)(at - cc->claims), cc->claims,
                 case_time(_i % NELEMS(claim_cases)), at + 4);
    else
        snprintf(claims, sizeof(claims), "%s", cc->claims);
    struct jwt_keyset *ks = all_keys();
    struct jwt_policy p = policy_all();
    char *tok = make_token(alg, claims);
    ck_assert_msg(verify(tok, ks, &p) == cc->want, "%s %s: %s", jwt_alg_name(alg),
                  cc->name, jwt_status_reason(verify(tok, ks, &p)));
    if (cc->want == JWT_OK && strstr(cc->claims, "exp") != NULL) {
        json_t *c;
        long long exp;
        ck_assert_int_eq(jwt_verify(tok, strlen(tok), ks, &p, NOW, &c, &exp), JWT_OK);
        ck_assert_int_eq(exp, case_time(_i % NELEMS(claim_cases)) +
                                  (strchr(claims, '.') != NULL ? 1 : 0));
        if (strstr(claims, "alice") != NULL)
            ck_assert_str_eq(json_string_value(json_object_get(c, "sub")), "alice");
        json_decref(c);
    }
    free(tok);
    jwt_keyset_free(ks);
}
END_TEST

/* Forged, refused, confused and malformed tokens, for every algorithm. */
START_TEST(test_alg_attacks)
{
    setup_keys();
    enum jwt_alg alg = (enum jwt_alg)_i;
    struct jwt_keyset *ks = all_keys();
    struct jwt_policy p = policy_all();
    char *tok = make_token(alg, "{\"sub\":\"alice\"}");
    ck_assert_int_eq(verify(tok, ks, &p), JWT_OK);

    /* A flipped bit anywhere in the signature, header or payload. */
    char *dot2 = strrchr(tok, '.');
    size_t positions[] = {1, (size_t)(strchr(tok, '.') - tok) + 2,
                          (size_t)(dot2 - tok) + 3, strlen(tok) - 2};
    for (size_t i = 0; i < NELEMS(positions); i++) {
        char *bad = strdup(tok);
        bad[positions[i]] = bad[positions[i]] == 'A' ? 'B' : 'A';
        enum jwt_status st = verify(bad, ks, &p);
        ck_assert_msg(st == JWT_BAD_SIGNATURE || st == JWT_MALFORMED ||
                          st == JWT_ALG_REFUSED,
                      "%s flip %zu: %d", jwt_alg_name(alg), i, st);
        free(bad);
    }
    /* The claims of another token under this signature. */
    char *other = make_token(alg, "{\"sub\":\"mallory\"}");
    char spliced[16384];
    const char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
    const char *t1 = strchr(tok, '.');
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(t1 - tok), tok, (int)(o2 - o1),
             o1, dot2);
    ck_assert_int_eq(verify(spliced, ks, &p), JWT_BAD_SIGNATURE);
    free(other);

    /* Not in the allowed list. */
    struct jwt_policy only_other = p;
    only_other.allowed = ~(1u << alg) & ((1u << JWT_NALGS) - 1);
    ck_assert_int_eq(verify(tok, ks, &only_other), JWT_ALG_REFUSED);

    /* A verifier without a key of the family. */
    struct gw_err err = {.msg = ""};
    struct jwt_keyset *wrong = jwt_keyset_new();
    if (jwt_alg_family(alg) == JWT_FAMILY_HMAC) {
        char *pem = pem_of(rsa_key);
        ck_assert_int_eq(jwt_keyset_add_pem(wrong, pem, strlen(pem), &err), 0);
        free(pem);
    } else {
        ck_assert_int_eq(jwt_keyset_add_secret(wrong, secret512, 64, &err), 0);
    }
    ck_assert_int_eq(verify(tok, wrong, &p), JWT_NO_KEY);
    jwt_keyset_free(wrong);

    /* A different key of the right family. */
    if (jwt_alg_family(alg) == JWT_FAMILY_RSA) {
        struct jwt_keyset *ko = jwt_keyset_new();
        char *pem = pem_of(rsa_other);
        ck_assert_int_eq(jwt_keyset_add_pem(ko, pem, strlen(pem), &err), 0);
        free(pem);
        ck_assert_int_eq(verify(tok, ko, &p), JWT_BAD_SIGNATURE);
        jwt_keyset_free(ko);
    }

    /* A token that is not three segments, or not base64url JSON. */
    char buf[16384];
    snprintf(buf, sizeof(buf), "%s.", tok);
    ck_assert_int_eq(verify(buf, ks, &p), JWT_MALFORMED);
    snprintf(buf, sizeof(buf), "%.*s", (int)(dot2 - tok), tok);
    ck_assert_int_eq(verify(buf, ks, &p), JWT_MALFORMED);
    snprintf(buf, sizeof(buf), "%s=", tok);
    ck_assert_int_eq(verify(buf, ks, &p), JWT_MALFORMED);
    snprintf(buf, sizeof(buf), "*%s", tok);
    ck_assert_int_eq(verify(buf, ks, &p), JWT_MALFORMED);
    free(tok);
    jwt_keyset_free(ks);
}
END_TEST

/* ---- tokens every verifier must refuse ---- */

START_TEST(test_alg_none_and_unknown)
{
    setup_keys();
    struct jwt_keyset *ks = all_keys();
    struct jwt_policy p = policy_all();
    /* An unsigned token: "none", with and without a signature segment. */
    char h[64], c[64], tok[256];
    b64url((const unsigned char *)"{\"alg\":\"none\"}", 14, h);
    b64url((const unsigned char *)"{\"sub\":\"a\"}", 11, c);
    snprintf(tok, sizeof(tok), "%s.%s.", h, c);
    ck_assert_int_eq(verify(tok, ks, &p), JWT_MALFORMED); /* empty signature */
    snprintf(tok, sizeof(tok), "%s.%s.AAAA", h, c);
    ck_assert_int_eq(verify(tok, ks, &p), JWT_ALG_REFUSED);
    char *t = make_token_hdr("{\"alg\":\"None\"}", "{}", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_ALG_REFUSED);
    free(t);
    t = make_token_hdr("{\"alg\":\"hs256\"}", "{}", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_ALG_REFUSED);
    free(t);
    t = make_token_hdr("{\"typ\":\"JWT\"}", "{}", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_MALFORMED);
    free(t);
    t = make_token_hdr("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}",
                       JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_UNSUPPORTED);
    free(t);
    t = make_token_hdr("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_MALFORMED); /* duplicate member */
    free(t);
    t = make_token_hdr("{\"alg\":\"HS256\"}", "[1,2]", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_MALFORMED);
    free(t);
    t = make_token_hdr("{\"alg\":\"HS256\"}", "{\"sub\":", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_MALFORMED);
    free(t);
    t = make_token_hdr("{\"alg\":\"HS256\",\"kid\":7}", "{}", JWT_HS256);
    ck_assert_int_eq(verify(t, ks, &p), JWT_MALFORMED);
    free(t);
    ck_assert_int_eq(verify("", ks, &p), JWT_MALFORMED);
    ck_assert_int_eq(verify("..", ks, &p), JWT_MALFORMED);
    ck_assert_int_eq(verify("a.b.c.d", ks, &p), JWT_MALFORMED);
    jwt_keyset_free(ks);
}
END_TEST

/* HS256 signed with the RSA public key's PEM as the secret must not pass a
 * verifier that holds that RSA key (and allows HS256 with another secret). */
START_TEST(test_confusion)
{
    setup_keys();
    struct jwt_keyset *ks = all_keys();
    struct jwt_policy p = policy_all();
    char header[] = "{\"alg\":\"HS256\"}";
    char *out = malloc(16384);
    size_t n = b64url((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += b64url((const unsigned char *)"{\"sub\":\"x\"}", 11, out + n);
    unsigned char sig[64];
    size_t sl = sign(JWT_HS256, out, sig, rsa_pem, strlen(rsa_pem));
    out[n++] = '.';
    b64url(sig, sl, out + n);
    ck_assert_int_eq(verify(out, ks, &p), JWT_BAD_SIGNATURE);
    struct jwt_keyset *rsa_only = jwt_keyset_new();
    struct gw_err err;
    ck_assert_int_eq(jwt_keyset_add_pem(rsa_only, rsa_pem, strlen(rsa_pem), &err), 0);
    ck_assert_int_eq(verify(out, rsa_only, &p), JWT_NO_KEY);
    /* An RS256 token does not verify with the secret family. */
    char *rs = make_token(JWT_RS256, "{\"sub\":\"x\"}");
    struct jwt_keyset *hs_only = jwt_keyset_new();
    ck_assert_int_eq(jwt_keyset_add_secret(hs_only, rsa_pem, strlen(rsa_pem), &err), 0);
    ck_assert_int_eq(verify(rs, hs_only, &p), JWT_NO_KEY);
    free(rs);
    free(out);
    jwt_keyset_free(hs_only);
    jwt_keyset_free(rsa_only);
    jwt_keyset_free(ks);
}
END_TEST

/* ---- issuer, audience, required claims ---- */

START_TEST(test_claims_policy)
{
    setup_keys();
    struct jwt_keyset *ks = all_keys();
    const char *aud[] = {"chat", "api"};
    const char *req[] = {"exp", "sub"};
    struct jwt_policy p = policy_all();
    p.issuer = "https://auth.example.com";
    p.audience = aud;
    p.naudience = 2;
    p.required = req;
    p.nrequired = 2;
    static const struct {
        const char *claims;
        enum jwt_status want;
    } cases[] = {
        {"{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"a\",\"exp\":"
         "1800000000}",
         JWT_OK},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":[\"x\",\"api\"],\"sub\":\"a\","
         "\"exp\":1800000000}",
         JWT_OK},
        {"{\"iss\":\"https://evil.example.com\",\"aud\":\"chat\",\"sub\":\"a\",\"exp\":"
         "1800000000}",
         JWT_BAD_ISSUER},
        {"{\"aud\":\"chat\",\"sub\":\"a\",\"exp\":1800000000}", JWT_BAD_ISSUER},
        {"{\"iss\":7,\"aud\":\"chat\",\"sub\":\"a\",\"exp\":1800000000}", JWT_BAD_CLAIM},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":\"other\",\"sub\":\"a\",\"exp\":"
         "1800000000}",
         JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":[],\"sub\":\"a\",\"exp\":"
         "1800000000}",
         JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://auth.example.com\",\"sub\":\"a\",\"exp\":1800000000}",
         JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":{},\"sub\":\"a\",\"exp\":"
         "1800000000}",
         JWT_BAD_CLAIM},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"exp\":1800000000}",
         JWT_MISSING_CLAIM},
        {"{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"a\"}",
         JWT_MISSING_CLAIM},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        char *t = make_token(JWT_HS256, cases[i].claims);
        ck_assert_msg(verify(t, ks, &p) == cases[i].want, "case %zu: got %s", i,
                      jwt_status_reason(verify(t, ks, &p)));
        free(t);
    }
    jwt_keyset_free(ks);
}
END_TEST

/* ---- JWKS ---- */

static void
jwk_b64_bn(EVP_PKEY *k, const char *param, char *out, size_t pad)
{
    BIGNUM *bn = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    unsigned char raw[1024];
    int n = pad > 0 ? BN_bn2binpad(bn, raw, (int)pad) : BN_bn2bin(bn, raw);
    b64url(raw, (size_t)n, out);
    BN_free(bn);
}

/* A JWK for k with kid (RSA or EC). */
static void
jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    char a[1024], b[1024];
    if (EVP_PKEY_is_a(k, "RSA")) {
        jwk_b64_bn(k, OSSL_PKEY_PARAM_RSA_N, a, 0);
        jwk_b64_bn(k, OSSL_PKEY_PARAM_RSA_E, b, 0);
        snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}",
                 kid, a, b);
        return;
    }
    size_t size = k == ec256 ? 32 : k == ec384 ? 48 : 66;
    jwk_b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, a, size);
    jwk_b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, b, size);
    snprintf(out, cap,
             "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
             kid,
             size == 32   ? "P-256"
             : size == 48 ? "P-384"
                          : "P-521",
             a, b);
}

START_TEST(test_jwks_kid)
{
    setup_keys();
    char k1[4096], k2[4096], k3[4096], k4[4096], oct[256], jwks[32768];
    jwk_of(rsa_key, "r1", k1, sizeof(k1));
    jwk_of(rsa_other, "r2", k2, sizeof(k2));
    jwk_of(ec256, "e1", k3, sizeof(k3));
    jwk_of(ec521, "e3", k4, sizeof(k4));
    char kb[128];
    b64url((const unsigned char *)secret256, 32, kb);
    snprintf(oct, sizeof(oct), "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\"}", kb);
    snprintf(jwks, sizeof(jwks),
             "{\"keys\":[%s,%s,%s,%s,{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"},"
             "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
             k1, k3, k4, oct);
    struct gw_err err = {.msg = ""};
    struct jwt_keyset *ks = jwt_keyset_new();
    ck_assert_msg(jwt_keyset_add_jwks(ks, jwks, strlen(jwks), &err) == 4, "%s", err.msg);
    struct jwt_policy p = policy_all();

    static const struct {
        enum jwt_alg alg;
        const char *kid;
        enum jwt_status want;
    } cases[] = {
        {JWT_RS256, "r1", JWT_OK},     {JWT_PS512, "r1", JWT_OK},
        {JWT_RS256, NULL, JWT_OK},     {JWT_RS256, "r2", JWT_NO_KEY},
        {JWT_ES256, "e1", JWT_OK},     {JWT_ES512, "e3", JWT_OK},
        {JWT_ES256, "e3", JWT_NO_KEY}, {JWT_HS256, "h1", JWT_OK},
        {JWT_HS256, "r1", JWT_NO_KEY}, {JWT_ES384, NULL, JWT_NO_KEY},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        char hdr[128];
        if (cases[i].kid != NULL)
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\"}",
                     jwt_alg_name(cases[i].alg), cases[i].kid);
        else
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", jwt_alg_name(cases[i].alg));
        char *t = make_token_hdr(hdr, "{\"sub\":\"a\"}", cases[i].alg);
        ck_assert_msg(verify(t, ks, &p) == cases[i].want, "case %zu: %s", i,
                      jwt_status_reason(verify(t, ks, &p)));
        free(t);
    }
    /* Rotation: the key r2 arrives in a new set. */
    struct jwt_keyset *ks2 = jwt_keyset_new();
    snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", k2);
    ck_assert_int_eq(jwt_keyset_add_jwks(ks2, jwks, strlen(jwks), &err), 1);
    /* make_token_hdr signs RS with rsa_key; swap it for the rotation check. */
    EVP_PKEY *saved = rsa_key;
    rsa_key = rsa_other;
    char *t = make_token_hdr("{\"alg\":\"RS256\",\"kid\":\"r2\"}", "{\"sub\":\"a\"}",
                             JWT_RS256);
    rsa_key = saved;
    ck_assert_int_eq(verify(t, ks, &p), JWT_NO_KEY);
    ck_assert_int_eq(verify(t, ks2, &p), JWT_OK);
    free(t);
    jwt_keyset_free(ks2);
    jwt_keyset_free(ks);
}
END_TEST

static const struct {
    const char *json;
    const char *want; /* in the error */
} bad_jwks[] = {
    {"", "invalid JSON"},
    {"{\"keys\":{}}", "\"keys\" array"},
    {"[]", "\"keys\" array"},
    {"{\"keys\":[1]}", "keys[0]: not an object"},
    {"{\"keys\":[{\"n\":\"AQAB\"}]}", "keys[0]: no \"kty\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}", "keys[0]: an RSA key needs"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "at least 2048"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}]}",
     "P-256, P-384 or P-521"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
     "of the curve's size"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
     "\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
     "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
     "not a point on the curve"},
    {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"!!\"}]}", "an oct key needs"},
    {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":5}]}", "\"kid\" must be"},
};

START_TEST(test_jwks_bad)
{
    struct gw_err err = {.msg = ""};
    struct jwt_keyset *ks = jwt_keyset_new();
    ck_assert_int_eq(
        jwt_keyset_add_jwks(ks, bad_jwks[_i].json, strlen(bad_jwks[_i].json), &err), -1);
    ck_assert_msg(strstr(err.msg, bad_jwks[_i].want) != NULL, "%s: %s", bad_jwks[_i].json,
                  err.msg);
    jwt_keyset_free(ks);
}
END_TEST

START_TEST(test_pem_bad)
{
    setup_keys();
    struct gw_err err = {.msg = ""};
    struct jwt_keyset *ks = jwt_keyset_new();
    ck_assert_int_eq(jwt_keyset_add_pem(ks, "garbage", 7, &err), -1);
    ck_assert_msg(strstr(err.msg, "not a PEM public key") != NULL, "%s", err.msg);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *pem = pem_of(small);
    ck_assert_int_eq(jwt_keyset_add_pem(ks, pem, strlen(pem), &err), -1);
    ck_assert_msg(strstr(err.msg, "1024 bits") != NULL, "%s", err.msg);
    free(pem);
    EVP_PKEY_free(small);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    pem = pem_of(ed);
    ck_assert_int_eq(jwt_keyset_add_pem(ks, pem, strlen(pem), &err), -1);
    ck_assert_msg(strstr(err.msg, "unsupported key type") != NULL, "%s", err.msg);
    free(pem);
    EVP_PKEY_free(ed);
    /* A private key is not a public key. */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, rsa_key, NULL, NULL, 0, NULL, NULL);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    ck_assert_int_eq(jwt_keyset_add_pem(ks, p, (size_t)n, &err), -1);
    BIO_free(b);
    ck_assert(!jwt_keyset_serves(ks, JWT_RS256));
    jwt_keyset_free(ks);
}
END_TEST

/* ---- base64url ---- */

START_TEST(test_b64url)
{
    static const struct {
        const char *in;
        long want;
        const char *out;
    } cases[] = {
        {"", 0, ""},       {"QQ", 1, "A"},         {"QUI", 2, "AB"},   {"QUJD", 3, "ABC"},
        {"Q", -1, NULL},   {"QR", -1, NULL},       {"QQ==", -1, NULL}, {"Q+I", -1, NULL},
        {"Q/I", -1, NULL}, {"-_8", 2, "\xfb\xff"}, {"QU I", -1, NULL},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        unsigned char out[16];
        long n = jwt_b64url_decode(cases[i].in, strlen(cases[i].in), out);
        ck_assert_msg(n == cases[i].want, "%s: %ld", cases[i].in, n);
        if (n > 0)
            ck_assert_mem_eq(out, cases[i].out, (size_t)n);
    }
    ck_assert_int_eq(jwt_alg_from_name("none", 4), -1);
    ck_assert_int_eq(jwt_alg_from_name("HS256", 5), JWT_HS256);
    ck_assert_int_eq(jwt_alg_from_name("HS2560", 6), -1);
    for (int a = 0; a < JWT_NALGS; a++)
        ck_assert_int_eq(jwt_alg_from_name(jwt_alg_name(a), strlen(jwt_alg_name(a))), a);
}
END_TEST

/* ---- the provider ---- */

struct seen {
    int calls;
    enum auth_verdict verdict;
    char subject[64], error[64], reason[64], headers[256];
    long long expires_at;
};

static void
record(void *arg, const struct auth_result *res)
{
    struct seen *s = arg;
    s->calls++;
    s->verdict = res->verdict;
    snprintf(s->subject, sizeof(s->subject), "%s", res->subject ? res->subject : "-");
    snprintf(s->error, sizeof(s->error), "%s", res->error ? res->error : "-");
    snprintf(s->reason, sizeof(s->reason), "%s", res->reason ? res->reason : "-");
    s->headers[0] = '\0';
    for (size_t i = 0; i < res->nheaders; i++) {
        size_t n = strlen(s->headers);
        snprintf(s->headers + n, sizeof(s->headers) - n, "%s=%s;", res->headers[i].name,
                 res->headers[i].value);
    }
    s->expires_at = res->expires_at;
}

static char *algs_hs[] = {(char *)"HS256"};
static char *aud_chat[] = {(char *)"chat"};
static struct cfg_claim_header c2h[] = {{(char *)"roles", (char *)"X-Auth-Roles"},
                                        {(char *)"tenant", (char *)"X-Tenant"}};

static struct cfg_jwt jwt_cfg = {
    .algorithms = algs_hs,
    .nalgorithms = 1,
    .secret = (char *)secret256,
    .leeway_ms = 5000,
    .issuer = (char *)"https://auth.example.com",
    .audience = aud_chat,
    .naudience = 1,
    .subject_claim = (char *)"sub",
    .claims_to_headers = c2h,
    .nclaims_to_headers = 2,
};

static struct cfg_provider users_cfg = {
    .name = (char *)"users", .type = CFG_PROVIDER_JWT, .jwt = &jwt_cfg};

static struct seen
check_token(struct auth_provider *p, const char *tok)
{
    static struct token_found cred;
    memset(&cred, 0, sizeof(cred));
    if (tok != NULL) {
        cred.kind = CFG_TOKEN_HEADER;
        snprintf(cred.token, sizeof(cred.token), "%s", tok);
        cred.token_len = strlen(cred.token);
    }
    struct auth_request req = {.credential = &cred};
    struct seen s = {0};
    struct auth_check *pending = (struct auth_check *)1;
    ck_assert_int_eq(auth_start(p, &req, record, &s, &pending), 0);
    ck_assert_ptr_null(pending);
    ck_assert_int_eq(s.calls, 1);
    return s;
}

START_TEST(test_provider)
{
    struct gw_err err = {.msg = ""};
    struct auth_provider *p = auth_provider_new(&users_cfg, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    long long now = (long long)time(NULL);
    char claims[512];
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"alice\","
             "\"exp\":%lld,\"roles\":[\"admin\",\"dev\"],\"tenant\":42}",
             now + 600);
    char *t = make_token(JWT_HS256, claims);
    struct seen s = check_token(p, t);
    ck_assert_int_eq(s.verdict, AUTH_ALLOW);
    ck_assert_str_eq(s.subject, "alice");
    ck_assert_str_eq(s.headers, "X-Auth-Roles=admin,dev;X-Tenant=42;");
    ck_assert_int_eq(s.expires_at, now + 600); /* a live connection ends at exp */
    free(t);

    /* Accepted within the leeway after exp: the leeway is its grace. */
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"alice\","
             "\"exp\":%lld}",
             now - 2);
    t = make_token(JWT_HS256, claims);
    s = check_token(p, t);
    ck_assert_int_eq(s.verdict, AUTH_ALLOW);
    ck_assert_int_eq(s.expires_at, now - 2 + 5);
    free(t);

    s = check_token(p, NULL);
    ck_assert_int_eq(s.verdict, AUTH_DENY);
    ck_assert_str_eq(s.error, "-");

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"alice\","
             "\"exp\":%lld}",
             now - 60);
    t = make_token(JWT_HS256, claims);
    s = check_token(p, t);
    ck_assert_int_eq(s.verdict, AUTH_DENY);
    ck_assert_str_eq(s.error, "invalid_token");
    ck_assert_str_eq(s.reason, "token expired");
    free(t);

    /* No subject, a claim a header cannot carry, a nested claim. */
    static const char *const denied[] = {
        "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\"}",
        "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"a\\r\\nX: y\"}",
        "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"a\","
        "\"roles\":\"x\\ny\"}",
        "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":\"a\","
        "\"roles\":[{\"a\":1}]}",
        "{\"iss\":\"https://auth.example.com\",\"aud\":\"chat\",\"sub\":[\"a\"]}",
    };
    for (size_t i = 0; i < NELEMS(denied); i++) {
        t = make_token(JWT_HS256, denied[i]);
        s = check_token(p, t);
        ck_assert_msg(s.verdict == AUTH_DENY, "%s", denied[i]);
        ck_assert_str_eq(s.error, "invalid_token");
        free(t);
    }
    auth_provider_free(p);
}
END_TEST

START_TEST(test_provider_config_errors)
{
    setup_keys();
    struct gw_err err = {.msg = ""};
    struct cfg_jwt j = jwt_cfg;
    struct cfg_provider pc = users_cfg;
    pc.jwt = &j;
    char *rs[] = {(char *)"RS256"};
    char *es[] = {(char *)"ES256"};
    /* RS256 with no public key. */
    j.algorithms = rs;
    j.algorithms_mark = (struct cfg_mark){7, 9};
    ck_assert_ptr_null(auth_provider_new(&pc, NULL, &err));
    ck_assert_msg(strstr(err.msg, "no configured key can verify RS256") != NULL, "%s",
                  err.msg);
    ck_assert_int_eq(err.line, 7);
    ck_assert_int_eq(err.column, 9);
    /* An RSA public key for ES256. */
    j.algorithms = es;
    j.public_key = (char *)"rsa.pem";
    j.public_key_text = rsa_pem;
    j.public_key_len = strlen(rsa_pem);
    ck_assert_ptr_null(auth_provider_new(&pc, NULL, &err));
    ck_assert_msg(strstr(err.msg, "rsa.pem: no allowed algorithm uses this key") != NULL,
                  "%s", err.msg);
    /* Garbage PEM: the path and OpenSSL's reason. */
    j.public_key_text = (char *)"garbage";
    j.public_key_len = 7;
    ck_assert_ptr_null(auth_provider_new(&pc, NULL, &err));
    ck_assert_msg(
        strstr(err.msg, "auth.providers.users.public_key: rsa.pem: not a PEM") != NULL,
        "%s", err.msg);
    /* RS256 with that key loads. */
    j.algorithms = rs;
    j.public_key_text = rsa_pem;
    j.public_key_len = strlen(rsa_pem);
    struct auth_provider *p = auth_provider_new(&pc, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    auth_provider_free(p);
}
END_TEST

static Suite *
jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *t = tcase_create("verify");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_alg_claims, 0, JWT_NALGS * (int)NELEMS(claim_cases));
    tcase_add_loop_test(t, test_alg_attacks, 0, JWT_NALGS);
    tcase_add_test(t, test_alg_none_and_unknown);
    tcase_add_test(t, test_confusion);
    tcase_add_test(t, test_claims_policy);
    tcase_add_test(t, test_jwks_kid);
    tcase_add_loop_test(t, test_jwks_bad, 0, NELEMS(bad_jwks));
    tcase_add_test(t, test_pem_bad);
    tcase_add_test(t, test_b64url);
    suite_add_tcase(s, t);
    TCase *pr = tcase_create("provider");
    tcase_set_timeout(pr, 60);
    tcase_add_test(pr, test_provider);
    tcase_add_test(pr, test_provider_config_errors);
    suite_add_tcase(s, pr);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(jwt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec256);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec521);
    free(rsa_pem);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
