/*
 * Error objects: a sentence for a person, plus a class for the QMP monitor.
 *
 * A function whose failure needs explaining takes a trailing `Error **errp`
 * and also returns false/NULL/negative.  Callers pass NULL to ignore the
 * error, &error_abort to abort on it, or the address of a NULL `Error *`
 * to receive it.
 *
 * Thread-safety: every function here is safe from any thread; an Error
 * object itself belongs to one thread at a time.
 */
#ifndef DATAPLANE_ERROR_H
#define DATAPLANE_ERROR_H

#include <stdbool.h>
#include <glib.h>
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
} ErrorClass;

typedef struct Error Error;

/* Pass &error_abort as errp to abort the program on error. */
extern Error *error_abort;

void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
void error_setg(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Appends ": strerror(errnum)" to the message. */
void error_setg_errno(Error **errp, int errnum, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Puts "prefix" in front of the message of *errp, if there is one. */
void error_prepend(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Moves local_err into *dst (or frees it if dst is NULL or already set). */
void error_propagate(Error **dst, Error *local_err);

const char *error_get_pretty(const Error *err);
ErrorClass error_get_class(const Error *err);
/* "GenericError", "CommandNotFound", ... as QMP spells them. */
const char *error_class_name(ErrorClass cls);

void error_free(Error *err);
/* Prints "dataplane: <message>" style text to stderr and frees err. */
void error_report_err(Error *err);
/* Prints a formatted message to stderr, prefixed with the program name. */
void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

DP_API_END

#endif /* DATAPLANE_ERROR_H */
