/* jwt_verify: parses a compact JWS, checks its signature and registered claims. */
#include "auth/jwt_verify.h"

#include <math.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* The longest token accepted; the gateway's credentials are shorter still. */
#define JWT_MAX_LEN 16384
#define JWT_KID_MAX 256
#define JWT_RSA_MIN_BITS 2048

struct jwt_alg_def {
    const char *name;
    enum jwt_family family;
    const char *md;    /* digest name */
    size_t size;       /* HMAC: output (and minimum secret) size; EC: coordinate size */
    const char *curve; /* EC group name */
    bool pss;
};

static const struct jwt_alg_def jwt_algs[JWT_NALGS] = {
    [JWT_HS256] = {"HS256", JWT_FAMILY_HMAC, "SHA256", 32, NULL, false},
    [JWT_HS384] = {"HS384", JWT_FAMILY_HMAC, "SHA384", 48, NULL, false},
    [JWT_HS512] = {"HS512", JWT_FAMILY_HMAC, "SHA512", 64, NULL, false},
    [JWT_RS256] = {"RS256", JWT_FAMILY_RSA, "SHA256", 0, NULL, false},
    [JWT_RS384] = {"RS384", JWT_FAMILY_RSA, "SHA384", 0, NULL, false},
    [JWT_RS512] = {"RS512", JWT_FAMILY_RSA, "SHA512", 0, NULL, false},
    [JWT_PS256] = {"PS256", JWT_FAMILY_RSA, "SHA256", 0, NULL, true},
    [JWT_PS384] = {"PS384", JWT_FAMILY_RSA, "SHA384", 0, NULL, true},
    [JWT_PS512] = {"PS512", JWT_FAMILY_RSA, "SHA512", 0, NULL, true},
    [JWT_ES256] = {"ES256", JWT_FAMILY_EC, "SHA256", 32, "prime256v1", false},
    [JWT_ES384] = {"ES384", JWT_FAMILY_EC, "SHA384", 48, "secp384r1", false},
    [JWT_ES512] = {"ES512", JWT_FAMILY_EC, "SHA512", 66, "secp521r1", false},
};

static const struct {
    enum jwt_status status;
    const char *reason;
} jwt_reasons[] = {
    {JWT_OK, "valid token"},
    {JWT_MALFORMED, "malformed token"},
    {JWT_ALG_REFUSED, "token algorithm not allowed"},
    {JWT_NO_KEY, "no key for the token"},
    {JWT_BAD_SIGNATURE, "invalid token signature"},
    {JWT_EXPIRED, "token expired"},
    {JWT_NOT_YET_VALID, "token not yet valid"},
    {JWT_ISSUED_FUTURE, "token issued in the future"},
    {JWT_BAD_ISSUER, "wrong token issuer"},
    {JWT_BAD_AUDIENCE, "wrong token audience"},
    {JWT_MISSING_CLAIM, "token lacks a required claim"},
    {JWT_BAD_CLAIM, "token claim of the wrong type"},
    {JWT_UNSUPPORTED, "token uses an unsupported critical header"},
    {JWT_NOMEM, "out of memory"},
};

/* The JWK "crv" names and the group names OpenSSL knows them by. */
static const struct {
    const char *crv;
    const char *group;
    size_t size;
} jwt_curves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct jwt_key {
    char *kid; /* NULL when the key has none */
    enum jwt_family family;
    int alg; /* the JWK's "alg" restriction, or -1 */
    unsigned char *secret;
    size_t secret_len;
    EVP_PKEY *pkey;
    char group[32]; /* EC keys: the curve's group name */
};

struct jwt_keyset {
    struct jwt_key *keys;
    size_t n, cap;
};

int
jwt_alg_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < JWT_NALGS; i++)
        if (strlen(jwt_algs[i].name) == len && memcmp(jwt_algs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

const char *
jwt_alg_name(enum jwt_alg alg)
{
    return (unsigned)alg < JWT_NALGS ? jwt_algs[alg].name : "?";
}

enum jwt_family
jwt_alg_family(enum jwt_alg alg)
{
    return jwt_algs[alg].family;
}

const char *
jwt_status_reason(enum jwt_status st)
{
    for (size_t i = 0; i < NELEMS(jwt_reasons); i++)
        if (jwt_reasons[i].status == st)
            return jwt_reasons[i].reason;
    return "invalid token";
}

/* ---- base64url ---- */

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long
jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, so that each value has one encoding. */
    if (acc != 0)
        return -1;
    return (long)o;
}

/* Decodes a base64url text into a new buffer; NULL on error. */
static unsigned char *
b64_dup(const char *in, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len * 3 / 4 + 1);
    if (out == NULL)
        return NULL;
    long n = jwt_b64url_decode(in, len, out);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)n;
    return out;
}

/* ---- keys ---- */

struct jwt_keyset *
jwt_keyset_new(void)
{
    return calloc(1, sizeof(struct jwt_keyset));
}

void
jwt_keyset_free(struct jwt_keyset *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        if (ks->keys[i].secret != NULL)
            OPENSSL_clear_free(ks->keys[i].secret, ks->keys[i].secret_len);
        EVP_PKEY_free(ks->keys[i].pkey);
    }
    free(ks->keys);
    free(ks);
}

/* Appends a zeroed key; NULL when out of memory. */
static struct jwt_key *
key_push(struct jwt_keyset *ks)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        struct jwt_key *k = realloc(ks->keys, cap * sizeof(*k));
        if (k == NULL)
            return NULL;
        ks->keys = k;
        ks->cap = cap;
    }
    struct jwt_key *k = &ks->keys[ks->n++];
    memset(k, 0, sizeof(*k));
    k->alg = -1;
    return k;
}

static void
key_pop(struct jwt_keyset *ks)
{
    struct jwt_key *k = &ks->keys[--ks->n];
    free(k->kid);
    if (k->secret != NULL)
        OPENSSL_clear_free(k->secret, k->secret_len);
    EVP_PKEY_free(k->pkey);
}

int
jwt_keyset_add_secret(struct jwt_keyset *ks, const void *secret, size_t len,
                      struct gw_err *err)
{
    if (len == 0)
        return gw_err_set(err, "empty secret");
    struct jwt_key *k = key_push(ks);
    if (k == NULL || (k->secret = OPENSSL_malloc(len)) == NULL) {
        if (k != NULL)
            key_pop(ks);
        return gw_err_set(err, "out of memory");
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    k->family = JWT_FAMILY_HMAC;
    return 0;
}

/* Drains OpenSSL's error queue into a short reason. */
static const char *
ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, size, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* Files a parsed public key as RSA or EC after checking it can be used. */
static int
key_adopt(struct jwt_keyset *ks, EVP_PKEY *pkey, const char *kid, int alg,
          struct gw_err *err)
{
    enum jwt_family family;
    char group[32] = "";
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        family = JWT_FAMILY_RSA;
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < JWT_RSA_MIN_BITS) {
            EVP_PKEY_free(pkey);
            return gw_err_set(err, "RSA key of %d bits (at least %d needed)", bits,
                              JWT_RSA_MIN_BITS);
        }
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        family = JWT_FAMILY_EC;
        size_t glen = 0;
        bool known = false;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen) == 1)
            for (size_t i = 0; i < NELEMS(jwt_curves); i++)
                known |= strcmp(jwt_curves[i].group, group) == 0;
        if (!known) {
            EVP_PKEY_free(pkey);
            ERR_clear_error();
            return gw_err_set(err, "EC key on an unsupported curve (P-256, P-384 and "
                                   "P-521 are)");
        }
    } else {
        EVP_PKEY_free(pkey);
        return gw_err_set(err, "unsupported key type (RSA and EC are)");
    }
    struct jwt_key *k = key_push(ks);
    if (k == NULL || (kid != NULL && (k->kid = strdup(kid)) == NULL)) {
        if (k != NULL)
            key_pop(ks);
        EVP_PKEY_free(pkey);
        return gw_err_set(err, "out of memory");
    }
    k->family = family;
    k->pkey = pkey;
    k->alg = alg;
    memcpy(k->group, group, sizeof(group));
    return 0;
}

int
jwt_keyset_add_pem(struct jwt_keyset *ks, const char *pem, size_t len, struct gw_err *err)
{
    char why[256];
    if (len > INT32_MAX)
        return gw_err_set(err, "PEM text too large");
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return gw_err_set(err, "out of memory");
    /* "PUBLIC KEY" (SubjectPublicKeyInfo) and "RSA PUBLIC KEY" (PKCS#1). */
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
        &pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (dctx == NULL || OSSL_DECODER_from_bio(dctx, bio) != 1)
        pkey = NULL;
    OSSL_DECODER_CTX_free(dctx);
    if (pkey == NULL) {
        BIO_reset(bio);
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x != NULL)
            pkey = X509_get_pubkey(x);
        X509_free(x);
    }
    if (pkey == NULL) {
        /* The first attempt's reason says most: "no start line" and so on. */
        ssl_reason(why, sizeof(why));
        BIO_free(bio);
        return gw_err_set(err, "not a PEM public key or certificate (%s)", why);
    }
    BIO_free(bio);
    ERR_clear_error();
    return key_adopt(ks, pkey, NULL, -1, err);
}

/* A JWK member that must be a non-empty base64url string; NULL otherwise. */
static unsigned char *
jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return NULL;
    return b64_dup(json_string_value(v), json_string_length(v), len);
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *
jwk_rsa(json_t *jwk, const char **why)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = jwk_bytes(jwk, "n", &nlen), *e = jwk_bytes(jwk, "e", &elen);
    EVP_PKEY *pkey = NULL;
    *why = "an RSA key needs base64url \"n\" and \"e\"";
    if (n != NULL && e != NULL && nlen > 0 && elen > 0 && elen <= 8) {
        BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bn != NULL && be != NULL && bld != NULL &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
            pkey = pkey_fromdata("RSA", bld);
        if (pkey == NULL)
            *why = "invalid RSA key";
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
    }
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *
jwk_ec(json_t *jwk, const char **why)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t c = 0;
    while (crv != NULL && c < NELEMS(jwt_curves) && strcmp(jwt_curves[c].crv, crv) != 0)
        c++;
    if (crv == NULL || c == NELEMS(jwt_curves)) {
        *why = "an EC key needs \"crv\" P-256, P-384 or P-521";
        return NULL;
    }
    size_t xlen = 0, ylen = 0, size = jwt_curves[c].size;
    unsigned char *x = jwk_bytes(jwk, "x", &xlen), *y = jwk_bytes(jwk, "y", &ylen);
    unsigned char point[1 + 2 * 66];
    EVP_PKEY *pkey = NULL;
    *why = "an EC key needs base64url \"x\" and \"y\" of the curve's size";
    if (x != NULL && y != NULL && xlen == size && ylen == size) {
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, size);
        memcpy(point + 1 + size, y, size);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld != NULL &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            jwt_curves[c].group, 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             1 + 2 * size) == 1)
            pkey = pkey_fromdata("EC", bld);
        if (pkey == NULL)
            *why = "invalid EC key (not a point on the curve)";
        OSSL_PARAM_BLD_free(bld);
    }
    free(x);
    free(y);
    return pkey;
}

/* Adds one JWK; returns 1 when added, 0 when skipped, -1 on error. */
static int
jwks_entry(struct jwt_keyset *ks, json_t *jwk, size_t i, struct gw_err *err)
{
    if (!json_is_object(jwk))
        return gw_err_set(err, "keys[%zu]: not an object", i);
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    json_t *kidv = json_object_get(jwk, "kid"), *algv = json_object_get(jwk, "alg");
    if (kty == NULL)
        return gw_err_set(err, "keys[%zu]: no \"kty\"", i);
    if (kidv != NULL && (!json_is_string(kidv) || json_string_length(kidv) == 0 ||
                         json_string_length(kidv) > JWT_KID_MAX))
        return gw_err_set(err, "keys[%zu]: \"kid\" must be a non-empty string", i);
    if (use != NULL && strcmp(use, "sig") != 0)
        return 0;
    int alg = -1;
    if (algv != NULL) {
        if (!json_is_string(algv))
            return gw_err_set(err, "keys[%zu]: \"alg\" must be a string", i);
        alg = jwt_alg_from_name(json_string_value(algv), json_string_length(algv));
        if (alg < 0)
            return 0; /* a key for an algorithm this gateway never accepts */
    }
    const char *kid = json_string_value(kidv), *why = NULL;
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "oct") == 0) {
        size_t klen = 0;
        unsigned char *k = jwk_bytes(jwk, "k", &klen);
        if (k == NULL)
            return gw_err_set(err, "keys[%zu]: an oct key needs base64url \"k\"", i);
        struct gw_err kerr = {.msg = ""};
        int rc = jwt_keyset_add_secret(ks, k, klen, &kerr);
        OPENSSL_clear_free(k, klen);
        if (rc != 0)
            return gw_err_set(err, "keys[%zu]: %s", i, kerr.msg);
        ks->keys[ks->n - 1].alg = alg;
        if (kid != NULL && (ks->keys[ks->n - 1].kid = strdup(kid)) == NULL)
            return gw_err_set(err, "out of memory");
        return 1;
    }
    if (strcmp(kty, "RSA") == 0)
        pkey = jwk_rsa(jwk, &why);
    else if (strcmp(kty, "EC") == 0)
        pkey = jwk_ec(jwk, &why);
    else
        return 0;
    ERR_clear_error();
    if (pkey == NULL)
        return gw_err_set(err, "keys[%zu]: %s", i, why);
    struct gw_err kerr = {.msg = ""};
    if (key_adopt(ks, pkey, kid, alg, &kerr) != 0)
        return gw_err_set(err, "keys[%zu]: %s", i, kerr.msg);
    return 1;
}

int
jwt_keyset_add_jwks(struct jwt_keyset *ks, const char *json, size_t len,
                    struct gw_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return gw_err_set(err, "invalid JSON at line %d, column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        json_decref(root);
        return gw_err_set(err, "a JWK Set is an object with a \"keys\" array");
    }
    int added = 0;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        int rc = jwks_entry(ks, json_array_get(keys, i), i, err);
        if (rc < 0) {
            json_decref(root);
            return -1;
        }
        added += rc;
    }
    json_decref(root);
    return added;
}

/* True when key k may verify with alg. */
static bool
key_fits(const struct jwt_key *k, enum jwt_alg alg)
{
    const struct jwt_alg_def *a = &jwt_algs[alg];
    if (k->family != a->family || (k->alg >= 0 && k->alg != (int)alg))
        return false;
    return a->family != JWT_FAMILY_EC || strcmp(k->group, a->curve) == 0;
}

bool
jwt_keyset_serves(const struct jwt_keyset *ks, enum jwt_alg alg)
{
    for (size_t i = 0; i < ks->n; i++)
        if (key_fits(&ks->keys[i], alg))
            return true;
    return false;
}

/* ---- signatures ---- */

static bool
verify_hmac(const struct jwt_key *k, const struct jwt_alg_def *a, const char *in,
            size_t inlen, const unsigned char *sig, size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const EVP_MD *md = EVP_get_digestbyname(a->md);
    if (md == NULL || HMAC(md, k->secret, (int)k->secret_len, (const unsigned char *)in,
                           inlen, mac, &maclen) == NULL)
        return false;
    bool ok = maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

/* JWS carries ECDSA signatures as R || S (RFC 7518 §3.4); EVP wants DER. */
static unsigned char *
ecdsa_der(const struct jwt_alg_def *a, const unsigned char *sig, size_t siglen,
          size_t *derlen)
{
    if (siglen != 2 * a->size)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)a->size, NULL);
    BIGNUM *s = BN_bin2bn(sig + a->size, (int)a->size, NULL);
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    int n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *derlen = (size_t)n;
    return der;
}

static bool
verify_pkey(const struct jwt_key *k, const struct jwt_alg_def *a, const char *in,
            size_t inlen, const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    size_t derlen = 0;
    if (a->family == JWT_FAMILY_EC) {
        if ((der = ecdsa_der(a, sig, siglen, &derlen)) == NULL)
            return false;
        sig = der;
        siglen = derlen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = ctx != NULL &&
              EVP_DigestVerifyInit_ex(ctx, &pctx, a->md, NULL, NULL, k->pkey, NULL) == 1;
    if (ok && a->pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)in, inlen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

/* ---- tokens ---- */

/* Decodes one segment as a JSON object; NULL when it is not one. */
static json_t *
segment_json(const char *seg, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64_dup(seg, len, &n);
    if (raw == NULL)
        return NULL;
    json_t *v = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Checks the header; stores the algorithm and the kid (or NULL). */
static enum jwt_status
check_header(json_t *hdr, const struct jwt_policy *p, enum jwt_alg *alg, const char **kid)
{
    json_t *a = json_object_get(hdr, "alg"), *k = json_object_get(hdr, "kid");
    if (!json_is_string(a))
        return JWT_MALFORMED;
    int found = jwt_alg_from_name(json_string_value(a), json_string_length(a));
    if (found < 0 || (p->allowed & (1u << found)) == 0)
        return JWT_ALG_REFUSED;
    if (json_object_get(hdr, "crit") != NULL)
        return JWT_UNSUPPORTED;
    if (k != NULL && !json_is_string(k))
        return JWT_MALFORMED;
    *alg = (enum jwt_alg)found;
    *kid = k != NULL ? json_string_value(k) : NULL;
    return JWT_OK;
}

static enum jwt_status
check_signature(const struct jwt_keyset *ks, enum jwt_alg alg, const char *kid,
                const char *input, size_t inlen, const unsigned char *sig, size_t siglen)
{
    const struct jwt_alg_def *a = &jwt_algs[alg];
    bool any = false;
    for (size_t i = 0; i < ks->n; i++) {
        const struct jwt_key *k = &ks->keys[i];
        if (!key_fits(k, alg) || (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid))))
            continue;
        any = true;
        bool ok = a->family == JWT_FAMILY_HMAC
                      ? verify_hmac(k, a, input, inlen, sig, siglen)
                      : verify_pkey(k, a, input, inlen, sig, siglen);
        if (ok)
            return JWT_OK;
    }
    return any ? JWT_BAD_SIGNATURE : JWT_NO_KEY;
}

/* A NumericDate claim (RFC 7519 §2) into *out; absent leaves *present false. */
static enum jwt_status
get_date(json_t *claims, const char *name, bool *present, double *out)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return JWT_OK;
    if (!json_is_number(v))
        return JWT_BAD_CLAIM;
    *out = json_number_value(v);
    return isfinite(*out) ? JWT_OK : JWT_BAD_CLAIM;
}

static enum jwt_status
check_times(json_t *claims, const struct jwt_policy *p, long long now, long long *exp)
{
    double exp_v = 0, nbf = 0, iat = 0, t = (double)now, lw = (double)p->leeway;
    bool has_exp, has_nbf, has_iat;
    enum jwt_status st;
    if ((st = get_date(claims, "exp", &has_exp, &exp_v)) != JWT_OK ||
        (st = get_date(claims, "nbf", &has_nbf, &nbf)) != JWT_OK ||
        (st = get_date(claims, "iat", &has_iat, &iat)) != JWT_OK)
        return st;
    if (has_exp && exp_v + lw <= t)
        return JWT_EXPIRED;
    if (has_nbf && nbf - lw > t)
        return JWT_NOT_YET_VALID;
    if (has_iat && iat - lw > t)
        return JWT_ISSUED_FUTURE;
    /* Far-future values are clamped rather than converted out of range. */
    if (!has_exp)
        *exp = 0;
    else if (exp_v >= 9.0e15)
        *exp = 9000000000000000LL;
    else
        *exp = (long long)exp_v + ((double)(long long)exp_v < exp_v);
    return JWT_OK;
}

static bool
audience_match(const struct jwt_policy *p, const char *aud)
{
    for (size_t i = 0; i < p->naudience; i++)
        if (strcmp(p->audience[i], aud) == 0)
            return true;
    return false;
}

static enum jwt_status
check_claims(json_t *claims, const struct jwt_policy *p)
{
    for (size_t i = 0; i < p->nrequired; i++)
        if (json_object_get(claims, p->required[i]) == NULL)
            return JWT_MISSING_CLAIM;
    json_t *iss = json_object_get(claims, "iss");
    if (iss != NULL && !json_is_string(iss))
        return JWT_BAD_CLAIM;
    if (p->issuer != NULL && (iss == NULL || strcmp(json_string_value(iss), p->issuer)))
        return JWT_BAD_ISSUER;
    json_t *aud = json_object_get(claims, "aud");
    if (aud != NULL && !json_is_string(aud) && !json_is_array(aud))
        return JWT_BAD_CLAIM;
    if (p->naudience == 0)
        return JWT_OK;
    if (json_is_string(aud))
        return audience_match(p, json_string_value(aud)) ? JWT_OK : JWT_BAD_AUDIENCE;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        json_t *e = json_array_get(aud, i);
        if (json_is_string(e) && audience_match(p, json_string_value(e)))
            return JWT_OK;
    }
    return JWT_BAD_AUDIENCE;
}

enum jwt_status
jwt_verify(const char *token, size_t len, const struct jwt_keyset *ks,
           const struct jwt_policy *policy, long long now, json_t **claims,
           long long *exp)
{
    *claims = NULL;
    *exp = 0;
    if (len == 0 || len > JWT_MAX_LEN)
        return JWT_MALFORMED;
    const char *d1 = memchr(token, '.', len);
    const char *d2 =
        d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return JWT_MALFORMED;
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - token);
    if (hlen == 0 || plen == 0 || slen == 0) /* an unsigned token, among others */
        return JWT_MALFORMED;
    json_t *hdr = segment_json(token, hlen);
    json_t *body = hdr != NULL ? segment_json(d1 + 1, plen) : NULL;
    size_t siglen = 0;
    unsigned char *sig = body != NULL ? b64_dup(d2 + 1, slen, &siglen) : NULL;
    enum jwt_status st = sig == NULL ? JWT_MALFORMED : JWT_OK;
    enum jwt_alg alg = JWT_HS256;
    const char *kid = NULL;
    if (st == JWT_OK)
        st = check_header(hdr, policy, &alg, &kid);
    /* The signature is checked before any claim is believed. */
    if (st == JWT_OK)
        st = check_signature(ks, alg, kid, token, (size_t)(d2 - token), sig, siglen);
    if (st == JWT_OK)
        st = check_times(body, policy, now, exp);
    if (st == JWT_OK)
        st = check_claims(body, policy);
    free(sig);
    json_decref(hdr);
    if (st != JWT_OK) {
        json_decref(body);
        *exp = 0;
        return st;
    }
    *claims = body;
    return JWT_OK;
}
