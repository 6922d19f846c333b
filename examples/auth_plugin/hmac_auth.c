/* hmac_auth: an example auth plugin — tokens "USER.HEX(HMAC-SHA256(key, USER))". */
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_plugin.h"

/* Options: key (required, the HMAC secret), delay_ms (how long an answer
 * waits on a timer, default 0: still asynchronous), forbid (a comma-separated
 * list of users who get 403). Allowed users get subject USER and the
 * identity header X-Plugin-User. */
struct hmac_auth {
    struct event_base *base;
    unsigned char key[256];
    size_t key_len;
    unsigned delay_ms;
    char forbid[1024]; /* ",a,b," */
};

struct auth_check {
    struct event *timer;
    auth_done_fn done;
    void *arg;
    int verdict;
    char user[128];
    const char *error;
};

static int
hmac_create(const struct wsgate_auth_option *opts, size_t n, struct event_base *base,
            void **state, char *err, size_t errlen)
{
    struct hmac_auth *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    h->base = base;
    strcpy(h->forbid, ",");
    for (size_t i = 0; i < n; i++) {
        const char *v = opts[i].value;
        if (strcmp(opts[i].name, "key") == 0 && strlen(v) > 0 &&
            strlen(v) <= sizeof(h->key)) {
            h->key_len = strlen(v);
            memcpy(h->key, v, h->key_len);
        } else if (strcmp(opts[i].name, "delay_ms") == 0 &&
                   strspn(v, "0123456789") == strlen(v) && strlen(v) > 0 &&
                   strlen(v) <= 6) {
            h->delay_ms = (unsigned)atoi(v);
        } else if (strcmp(opts[i].name, "forbid") == 0 &&
                   strlen(v) < sizeof(h->forbid) - 2) {
            snprintf(h->forbid, sizeof(h->forbid), ",%s,", v);
        } else {
            snprintf(err, errlen,
                     "invalid option \"%s\" (expected key, delay_ms, forbid)",
                     opts[i].name);
            free(h);
            return -1;
        }
    }
    if (h->key_len == 0) {
        snprintf(err, errlen, "option \"key\" is required (1 to 256 bytes)");
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

/* Decides now; the answer is delivered from the timer. */
static void
decide(struct hmac_auth *h, const struct auth_request *req, struct auth_check *k)
{
    const struct token_found *cred = req->credential;
    k->verdict = AUTH_DENY;
    if (cred == NULL || cred->kind == 0)
        return;
    const char *dot = memchr(cred->token, '.', cred->token_len);
    size_t ulen = dot != NULL ? (size_t)(dot - cred->token) : 0;
    k->error = "invalid_token";
    if (dot == NULL || ulen == 0 || ulen >= sizeof(k->user))
        return;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), h->key, (int)h->key_len, (const unsigned char *)cred->token, ulen,
         mac, &maclen);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    size_t given = cred->token_len - ulen - 1;
    if (given != 2 * maclen || CRYPTO_memcmp(hex, dot + 1, given) != 0)
        return;
    memcpy(k->user, cred->token, ulen);
    k->user[ulen] = '\0';
    char probe[140];
    snprintf(probe, sizeof(probe), ",%s,", k->user);
    k->error = NULL;
    k->verdict = strstr(h->forbid, probe) != NULL ? AUTH_FORBID : AUTH_ALLOW;
}

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct auth_check *k = arg;
    struct auth_header hdr = {"X-Plugin-User", k->user};
    struct auth_result res = {.verdict = (enum auth_verdict)k->verdict,
                              .error = k->error};
    if (k->verdict == AUTH_ALLOW) {
        res.subject = k->user;
        res.headers = &hdr;
        res.nheaders = 1;
    } else {
        res.reason = k->verdict == AUTH_FORBID ? "user is forbidden" : "invalid token";
    }
    /* res points into k: free it only after the answer was taken. */
    k->done(k->arg, &res);
    event_free(k->timer);
    free(k);
}

static int
hmac_start(void *state, const struct auth_request *req, auth_done_fn done, void *arg,
           struct auth_check **pending)
{
    struct hmac_auth *h = state;
    struct auth_check *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->timer = event_new(h->base, -1, 0, answer_cb, k)) == NULL) {
        free(k);
        return -1;
    }
    k->done = done;
    k->arg = arg;
    decide(h, req, k);
    struct timeval tv = {h->delay_ms / 1000, (suseconds_t)(h->delay_ms % 1000) * 1000};
    event_add(k->timer, &tv);
    *pending = k;
    return 0;
}

static void
hmac_cancel(void *state, struct auth_check *k)
{
    event_free(k->timer);
    free(k);
}

static void
hmac_destroy(void *state)
{
    struct hmac_auth *h = state;
    OPENSSL_cleanse(h->key, sizeof(h->key));
    free(h);
}

const struct wsgate_auth_plugin wsgate_auth_plugin = {
    .abi = WSGATE_AUTH_PLUGIN_ABI,
    .name = "hmac",
    .create = hmac_create,
    .start = hmac_start,
    .cancel = hmac_cancel,
    .destroy = hmac_destroy,
};
