/* Error objects; see include/dataplane/error.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/error.h"

struct Error {
    char *msg;
    ErrorClass cls;
};

/* Only its address matters: error_setv() recognises it. */
Error *error_abort;

static void error_setv(Error **errp, ErrorClass cls, int errnum,
                       const char *fmt, va_list ap)
{
    char *msg;
    Error *err;

    if (!errp) {
        return;
    }
    msg = g_strdup_vprintf(fmt, ap);
    if (errnum) {
        char *with_errno = g_strdup_printf("%s: %s", msg, g_strerror(errnum));
        g_free(msg);
        msg = with_errno;
    }
    if (errp == &error_abort) {
        g_error("Unexpected error: %s", msg);
    }
    if (*errp) {
        /* The first error wins; a second one is a caller bug we tolerate. */
        g_free(msg);
        return;
    }
    err = g_new0(Error, 1);
    err->msg = msg;
    err->cls = cls;
    *errp = err;
}

void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, cls, 0, fmt, ap);
    va_end(ap);
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR, 0, fmt, ap);
    va_end(ap);
}

void error_setg_errno(Error **errp, int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR, errnum < 0 ? -errnum : errnum,
               fmt, ap);
    va_end(ap);
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    va_list ap;
    char *prefix;
    char *msg;

    if (!errp || errp == &error_abort || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free(prefix);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
}

void error_propagate(Error **dst, Error *local_err)
{
    if (!local_err) {
        return;
    }
    if (dst == &error_abort) {
        g_error("Unexpected error: %s", local_err->msg);
    }
    if (!dst || *dst) {
        error_free(local_err);
        return;
    }
    *dst = local_err;
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

ErrorClass error_get_class(const Error *err)
{
    return err->cls;
}

const char *error_class_name(ErrorClass cls)
{
    switch (cls) {
    case ERROR_CLASS_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case ERROR_CLASS_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    case ERROR_CLASS_DEVICE_NOT_ACTIVE:
        return "DeviceNotActive";
    case ERROR_CLASS_GENERIC_ERROR:
    default:
        return "GenericError";
    }
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        g_free(err);
    }
}

void error_report(const char *fmt, ...)
{
    va_list ap;
    const char *prog = g_get_prgname();

    if (prog) {
        fprintf(stderr, "%s: ", prog);
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void error_report_err(Error *err)
{
    error_report("%s", err->msg);
    error_free(err);
}
