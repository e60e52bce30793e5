/*
 * QMP command dispatch: a request object in, a response object out.
 *
 * Requests are {"execute": name, "arguments": {...}, "id": any}; the
 * response is {"return": value} or {"error": {"class", "desc"}}, with the
 * request's id copied when it had one.  Before capabilities negotiation only
 * commands flagged QMP_CMD_NEGOTIATION run; afterwards only the others.
 *
 * Thread-safety: main loop thread only (commands touch the object registry
 * and the block graph, both owned by the main loop).
 */
#ifndef DATAPLANE_DAEMON_QMP_DISPATCH_H
#define DATAPLANE_DAEMON_QMP_DISPATCH_H

#include <stdbool.h>
#include <jansson.h>

#include "dataplane/error.h"

/*
 * A command handler.  args is always an object (empty when the request had
 * no "arguments"); it is borrowed.  Returns a new reference to the return
 * value (usually an object; {} when there is nothing to say), or NULL with
 * *errp set.
 */
typedef json_t *QmpHandler(json_t *args, Error **errp);

/*
 * A command that replies later (one whose work waits for another thread,
 * such as opening a block node on a network store): the handler starts the
 * work and returns; whoever finishes it calls qmp_pending_return() or
 * qmp_pending_error() exactly once, in the dispatching thread, inside the
 * handler or after it returned.  args is borrowed for the call only.
 * Until the reply, the monitor reads no further request of that client
 * (replies stay in request order); other clients and events go on.
 */
typedef struct QmpPending QmpPending;
typedef void QmpAsyncHandler(json_t *args, QmpPending *pending);

/* The reply of an asynchronous command: ret (stolen; {} when there is
 * nothing to say), or err (stolen).  Frees pending. */
void qmp_pending_return(QmpPending *pending, json_t *ret);
void qmp_pending_error(QmpPending *pending, Error *err);

enum {
    QMP_CMD_NEGOTIATION = 1, /* runs only before negotiation completes */
};

/* Exactly one of fn and async_fn is set; async commands cannot be
 * negotiation commands. */
typedef struct QmpCommand {
    const char *name;
    QmpHandler *fn;
    unsigned flags;
    QmpAsyncHandler *async_fn;
} QmpCommand;

/* The daemon's table, ending with a { NULL } entry (qmp-commands.c). */
extern const QmpCommand qmp_commands[];

/* Receives a response (a new reference, the callee's). */
typedef void QmpResponseFunc(void *opaque, json_t *resp);

/*
 * Runs the request.  *negotiated is the session's state; a successful
 * negotiation command sets it.  cb(opaque, response) runs exactly once:
 * inside this call, except for an asynchronous command, whose reply may
 * come later (the caller keeps opaque valid until then).
 */
void qmp_dispatch_async(const QmpCommand *table, json_t *request,
                        bool *negotiated, QmpResponseFunc *cb, void *opaque);

/*
 * As qmp_dispatch_async(), returning the response (new reference).  For
 * callers that never run an asynchronous command which replies later: that
 * aborts.
 */
json_t *qmp_dispatch(const QmpCommand *table, json_t *request,
                     bool *negotiated);

/* The response for a message that never became a request. */
json_t *qmp_error_response(ErrorClass cls, const char *desc);

/* ---- argument checking, shared by the command files --------------------- */

typedef enum QmpArgType {
    QMP_ARG_STR,
    QMP_ARG_INT,
    QMP_ARG_BOOL,
    QMP_ARG_OBJECT,
    QMP_ARG_ARRAY,
    QMP_ARG_STR_OR_NULL,
    QMP_ARG_ANY,
} QmpArgType;

typedef struct QmpArg {
    const char *name;
    QmpArgType type;
    bool required;
} QmpArg;

/*
 * Checks args against spec (ending with a { NULL } entry): no member
 * outside it, every required one present, each of the right type.  The
 * messages are QEMU's: "Parameter 'x' is missing", "Parameter 'x' is
 * unexpected", "Invalid parameter type for 'x', expected: string".
 */
bool qmp_args_check(json_t *args, const QmpArg *spec, Error **errp);

/* After qmp_args_check(): the value, or dflt when the member is absent. */
const char *qmp_arg_str(json_t *args, const char *name, const char *dflt);
int64_t qmp_arg_int(json_t *args, const char *name, int64_t dflt);
bool qmp_arg_bool(json_t *args, const char *name, bool dflt);

#endif /* DATAPLANE_DAEMON_QMP_DISPATCH_H */
