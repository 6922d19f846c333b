/* gw_err: a human-readable error that travels up to the caller who prints it. */
#ifndef WSGATE_GW_ERR_H
#define WSGATE_GW_ERR_H

#include <stdarg.h>
#include <stdio.h>

/* Filled by a failing function; only main() prints it. file/line/column are
 * 0/NULL when the error has no position in a file. */
struct gw_err {
    char msg[512];
    const char *file;
    int line;
    int column;
};

/* Formats msg (printf-style) into err, if err is not NULL; returns -1 so that
 * callers can write `return gw_err_set(err, ...);`. */
static inline int gw_err_set(struct gw_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int
gw_err_set(struct gw_err *err, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->file = NULL;
        err->line = 0;
        err->column = 0;
    }
    return -1;
}

#endif
