/* log: leveled, thread-safe log lines in text or JSON to stderr. */
#ifndef WSGATE_LOG_H
#define WSGATE_LOG_H

#include "config/config.h"

/* Sets the threshold and format; safe to call again on reload (the values
 * are read atomically by other threads). */
void gw_log_configure(enum cfg_log_level level, enum cfg_log_format format);

/* True when a line at `level` would be written (to skip building it). */
int gw_log_enabled(enum cfg_log_level level);

/* Writes one line: a timestamp, the level, `event`, then the fields that
 * fmt renders as space-separated key=value pairs. A value containing spaces
 * or quotes must be written as key="..." (use gw_log_quote). In JSON format
 * each pair becomes a string member. Never pass a secret. */
void gw_log(enum cfg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s[0..len) into out (size outsz, NUL-terminated) with '"', '\\' and
 * control bytes escaped, for use inside key="..." fields; returns out. */
const char *gw_log_quote(char *out, size_t outsz, const char *s, size_t len);

#define GW_LOG_DEBUG(ev, ...) gw_log(CFG_LOG_DEBUG, ev, __VA_ARGS__)
#define GW_LOG_INFO(ev, ...) gw_log(CFG_LOG_INFO, ev, __VA_ARGS__)
#define GW_LOG_WARN(ev, ...) gw_log(CFG_LOG_WARN, ev, __VA_ARGS__)
#define GW_LOG_ERROR(ev, ...) gw_log(CFG_LOG_ERROR, ev, __VA_ARGS__)

#endif
