/* fuzz_origin: origin_allowed over fuzzed Origin values against fixed patterns. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/origin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Survives NDEBUG, which release builds define. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

static const char *const patterns[] = {
    "https://app.example.com",
    "https://*.example.org",
    "http://localhost:3000",
    "https://[::1]:8443",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan sees any read past the value. */
    char *v = malloc(size ? size : 1);
    if (v == NULL)
        return 0;
    memcpy(v, data, size);
    bool allowed = origin_allowed(patterns, 4, v, size);
    /* Case never changes the answer. */
    for (size_t i = 0; i < size; i++)
        v[i] = (char)toupper((unsigned char)v[i]);
    FUZZ_CHECK(origin_allowed(patterns, 4, v, size) == allowed);
    /* An allowed value has no control bytes, spaces or path. */
    for (size_t i = 0; allowed && i < size; i++)
        FUZZ_CHECK(v[i] > 0x20 && v[i] < 0x7f);
    free(v);
    return 0;
}
