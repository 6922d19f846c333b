/* log: leveled, thread-safe log lines in text or JSON to stderr. */
#include "gateway/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = CFG_LOG_INFO;
static atomic_int log_format = CFG_LOG_TEXT;

static const char *const level_names[] = {
    [CFG_LOG_DEBUG] = "debug",
    [CFG_LOG_INFO] = "info",
    [CFG_LOG_WARN] = "warn",
    [CFG_LOG_ERROR] = "error",
};

void
gw_log_configure(enum cfg_log_level level, enum cfg_log_format format)
{
    atomic_store(&log_level, (int)level);
    atomic_store(&log_format, (int)format);
}

int
gw_log_enabled(enum cfg_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

const char *
gw_log_quote(char *out, size_t outsz, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends s[0..len) to out as the inside of a JSON string. */
static size_t
json_escape(char *out, size_t o, size_t outsz, const char *s, size_t len)
{
    for (size_t i = 0; i < len && o + 7 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* Turns `k=v k2="v 2"` into `,"k":"v","k2":"v 2"`, unescaping quoted values
 * (which gw_log_quote escaped) and re-escaping them for JSON. */
static size_t
kv_to_json(char *out, size_t o, size_t outsz, const char *kv)
{
    const char *p = kv;
    while (*p != '\0' && o + 8 < outsz) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (*p == '\0' || eq == NULL)
            break;
        out[o++] = ',';
        out[o++] = '"';
        o = json_escape(out, o, outsz, p, (size_t)(eq - p));
        out[o++] = '"';
        out[o++] = ':';
        out[o++] = '"';
        p = eq + 1;
        if (*p == '"') {
            p++;
            while (*p != '\0' && *p != '"' && o + 8 < outsz) {
                if (*p == '\\' && p[1] == 'x' && p[2] && p[3]) {
                    char hex[3] = {p[2], p[3], 0};
                    char c = (char)strtol(hex, NULL, 16);
                    o = json_escape(out, o, outsz, &c, 1);
                    p += 4;
                    continue;
                }
                if (*p == '\\' && p[1] != '\0')
                    p++;
                o = json_escape(out, o, outsz, p, 1);
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            const char *end = strchr(p, ' ');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            o = json_escape(out, o, outsz, p, n);
            p += n;
        }
        out[o++] = '"';
    }
    return o;
}

void
gw_log(enum cfg_log_level level, const char *event, const char *fmt, ...)
{
    if (!gw_log_enabled(level))
        return;
    char kv[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kv, sizeof(kv), fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[4096];
    size_t o;
    if (atomic_load(&log_format) == CFG_LOG_JSON) {
        o = (size_t)snprintf(line, sizeof(line),
                             "{\"time\":\"%s\",\"level\":\"%s\",\"event\":\"", stamp,
                             level_names[level]);
        o = json_escape(line, o, sizeof(line), event, strlen(event));
        line[o++] = '"';
        o = kv_to_json(line, o, sizeof(line) - 3, kv);
        line[o++] = '}';
    } else {
        o = (size_t)snprintf(line, sizeof(line), "%s %s %s%s%s", stamp,
                             level_names[level], event, kv[0] ? " " : "", kv);
        if (o > sizeof(line) - 2)
            o = sizeof(line) - 2;
    }
    line[o++] = '\n';
    /* One fwrite per line: stdio's lock keeps lines from interleaving. */
    fwrite(line, 1, o, stderr);
}
