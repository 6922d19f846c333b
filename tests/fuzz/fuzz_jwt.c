/* fuzz_jwt: jwt_verify over fuzzed tokens, and the JWKS and PEM key loaders. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

/* The secret the seed tokens are signed with (tests/fuzz/corpus/jwt). */
static const char fuzz_secret[] = "0123456789abcdef0123456789abcdef";

/* One keyset for the run: the secret and an EC P-256 key. */
static struct jwt_keyset *
fuzz_keys(void)
{
    static struct jwt_keyset *ks;
    if (ks != NULL)
        return ks;
    ks = jwt_keyset_new();
    FUZZ_CHECK(ks != NULL);
    FUZZ_CHECK(jwt_keyset_add_secret(ks, fuzz_secret, strlen(fuzz_secret), NULL) == 0);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *b = BIO_new(BIO_s_mem());
    FUZZ_CHECK(k != NULL && b != NULL && PEM_write_bio_PUBKEY(b, k) == 1);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    FUZZ_CHECK(jwt_keyset_add_pem(ks, pem, (size_t)n, NULL) == 0);
    BIO_free(b);
    EVP_PKEY_free(k);
    return ks;
}

/* Input: one byte choosing what to do, then the text. Each text gets a heap
 * block of exact size so that ASan sees any over-read. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const aud[] = {"chat"};
    static const char *const req[] = {"sub"};
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *text = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(text != NULL);
    if (n > 0)
        memcpy(text, data + 1, n);
    struct gw_err err;
    switch (data[0] % 3) {
    case 0: {
        struct jwt_policy p = {.allowed = (1u << JWT_NALGS) - 1,
                               .leeway = data[0] >> 2,
                               .issuer =
                                   (data[0] & 0x40) ? "https://auth.example.com" : NULL,
                               .audience = aud,
                               .naudience = (data[0] & 0x80) ? 1 : 0,
                               .required = req,
                               .nrequired = (data[0] & 0x20) ? 1 : 0};
        json_t *claims = NULL;
        long long exp = -1;
        enum jwt_status st =
            jwt_verify(text, n, fuzz_keys(), &p, 1700000000LL, &claims, &exp);
        FUZZ_CHECK(st == JWT_OK ? claims != NULL && json_is_object(claims)
                                : claims == NULL && exp == 0);
        FUZZ_CHECK(jwt_status_reason(st) != NULL);
        json_decref(claims);
        break;
    }
    case 1: {
        struct jwt_keyset *ks = jwt_keyset_new();
        FUZZ_CHECK(ks != NULL);
        int added = jwt_keyset_add_jwks(ks, text, n, &err);
        FUZZ_CHECK(added >= -1);
        jwt_keyset_free(ks);
        break;
    }
    default: {
        struct jwt_keyset *ks = jwt_keyset_new();
        FUZZ_CHECK(ks != NULL);
        jwt_keyset_add_pem(ks, text, n, &err);
        jwt_keyset_free(ks);
        break;
    }
    }
    free(text);
    return 0;
}
