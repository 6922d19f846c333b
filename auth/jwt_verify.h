/* jwt_verify: parses a compact JWS, checks its signature and registered claims. */
#ifndef WSGATE_JWT_VERIFY_H
#define WSGATE_JWT_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/gw_err.h"

/* The signature algorithms (RFC 7518 §3.1); a bit each in an allowed mask. */
enum jwt_alg {
    JWT_HS256 = 0,
    JWT_HS384,
    JWT_HS512,
    JWT_RS256,
    JWT_RS384,
    JWT_RS512,
    JWT_PS256,
    JWT_PS384,
    JWT_PS512,
    JWT_ES256,
    JWT_ES384,
    JWT_ES512,
    JWT_NALGS,
};

/* The kind of key an algorithm needs; a key serves only its own family. */
enum jwt_family {
    JWT_FAMILY_HMAC = 1, /* a shared secret: HS* */
    JWT_FAMILY_RSA,      /* an RSA public key: RS*, PS* */
    JWT_FAMILY_EC,       /* an EC public key on the algorithm's curve: ES* */
};

/* The algorithm named `name` ("HS256"), or -1 ("none" and unknown names). */
int jwt_alg_from_name(const char *name, size_t len);
const char *jwt_alg_name(enum jwt_alg alg);
enum jwt_family jwt_alg_family(enum jwt_alg alg);

/* Outcomes of jwt_verify. 0 is the only success. */
enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED = -1,      /* not three base64url segments of JSON objects */
    JWT_ALG_REFUSED = -2,    /* "none", unknown, or not in the allowed list */
    JWT_NO_KEY = -3,         /* no configured key for its alg (and kid) */
    JWT_BAD_SIGNATURE = -4,  /* the signature does not verify */
    JWT_EXPIRED = -5,        /* exp + leeway <= now */
    JWT_NOT_YET_VALID = -6,  /* nbf - leeway > now */
    JWT_ISSUED_FUTURE = -7,  /* iat - leeway > now */
    JWT_BAD_ISSUER = -8,     /* iss missing or not the configured issuer */
    JWT_BAD_AUDIENCE = -9,   /* aud missing or none of the configured ones */
    JWT_MISSING_CLAIM = -10, /* a required claim is absent */
    JWT_BAD_CLAIM = -11,     /* exp/nbf/iat not a number, iss/aud of wrong type */
    JWT_UNSUPPORTED = -12,   /* a "crit" header parameter */
    JWT_NOMEM = -13,
};

/* A short, fixed text for logs and the 401 body; never quotes the token. */
const char *jwt_status_reason(enum jwt_status st);

/* The verification keys: secrets, PEM public keys and JWKS entries. */
struct jwt_keyset;

struct jwt_keyset *jwt_keyset_new(void);
void jwt_keyset_free(struct jwt_keyset *ks);

/* Adds a shared secret (copied) for the HS* algorithms. Returns 0 or -1
 * with err filled. */
int jwt_keyset_add_secret(struct jwt_keyset *ks, const void *secret, size_t len,
                          struct gw_err *err);

/* Adds the public key in PEM text pem[0..len): a "PUBLIC KEY" (RSA or EC
 * P-256/P-384/P-521), an "RSA PUBLIC KEY", or a "CERTIFICATE" whose key is
 * used. RSA keys must have at least 2048 bits. Returns 0 or -1 with err
 * filled (with OpenSSL's reason). */
int jwt_keyset_add_pem(struct jwt_keyset *ks, const char *pem, size_t len,
                       struct gw_err *err);

/* Adds the keys of a JWK Set (RFC 7517) in json[0..len): kty RSA (n, e), EC
 * (crv P-256/P-384/P-521, x, y) and oct (k); entries with "use" other than
 * "sig" or with another kty are skipped. A malformed entry is an error
 * naming its index. Returns the number of keys added, or -1 with err
 * filled. */
int jwt_keyset_add_jwks(struct jwt_keyset *ks, const char *json, size_t len,
                        struct gw_err *err);

/* True when ks holds a key that alg can use. */
bool jwt_keyset_serves(const struct jwt_keyset *ks, enum jwt_alg alg);

/* What a token must satisfy besides its signature. Views; not copied. */
struct jwt_policy {
    unsigned allowed;            /* bit (1u << alg) per allowed algorithm */
    long long leeway;            /* seconds of clock skew tolerated on exp, nbf, iat */
    const char *issuer;          /* required iss, or NULL */
    const char *const *audience; /* aud must hold one of these; n 0: unchecked */
    size_t naudience;
    const char *const *required; /* claims that must be present */
    size_t nrequired;
};

/* Verifies the compact JWS token[0..len) at time `now` (Unix seconds). The
 * algorithm comes from the token's header but must be in policy->allowed
 * and have a key of its family (and curve) in ks; a "kid" selects among
 * them, otherwise each such key is tried. On JWT_OK stores the claims object
 * (caller frees with json_decref) in *claims and the exp claim (0 when
 * absent) in *exp; otherwise *claims is NULL. Pure. */
enum jwt_status jwt_verify(const char *token, size_t len, const struct jwt_keyset *ks,
                           const struct jwt_policy *policy, long long now,
                           json_t **claims, long long *exp);

/* Decodes base64url without padding (RFC 7515 §2) from in[0..len) into out
 * (at least len * 3 / 4 + 1 bytes). Returns the decoded length, or -1 for a
 * character outside the alphabet, padding, an impossible length, or
 * non-zero unused bits. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
