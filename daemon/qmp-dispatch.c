/* QMP request validation and command dispatch; see qmp-dispatch.h. */
#include <string.h>

#include "qmp-dispatch.h"
#include "qmp-json.h"

json_t *qmp_error_response(ErrorClass cls, const char *desc)
{
    /* desc may quote input (jansson's parse errors do). */
    return json_pack("{s:{s:s,s:o}}", "error", "class", error_class_name(cls),
                     "desc", qmp_json_str(desc));
}

static json_t *error_response_from(Error *err)
{
    json_t *resp =
        qmp_error_response(error_get_class(err), error_get_pretty(err));

    error_free(err);
    return resp;
}

static const QmpCommand *command_find(const QmpCommand *table, const char *name)
{
    for (const QmpCommand *c = table; c->name; c++) {
        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    return NULL;
}

/* Checks the request's shape; returns the command name, or NULL + errp. */
static const char *request_check(json_t *request, json_t **args, Error **errp)
{
    const char *key;
    json_t *value;
    json_t *exec;

    if (!json_is_object(request)) {
        error_setg(errp, "QMP input must be a JSON object");
        return NULL;
    }
    json_object_foreach(request, key, value)
    {
        if (!strcmp(key, "execute")) {
            if (!json_is_string(value)) {
                error_setg(errp, "QMP input member 'execute' must be a string");
                return NULL;
            }
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(value)) {
                error_setg(errp,
                           "QMP input member 'arguments' must be an object");
                return NULL;
            }
        } else if (strcmp(key, "id") != 0) {
            error_setg(errp, "QMP input member '%s' is unexpected", key);
            return NULL;
        }
    }
    exec = json_object_get(request, "execute");
    if (!exec) {
        error_setg(errp, "QMP input lacks member 'execute'");
        return NULL;
    }
    *args = json_object_get(request, "arguments");
    return json_string_value(exec);
}

struct QmpPending {
    json_t *id; /* the request's, or NULL */
    QmpResponseFunc *cb;
    void *opaque;
};

/* The response to a request with this id: ret (stolen) or err (freed). */
static json_t *response_new(json_t *ret, Error *err, json_t *id)
{
    json_t *resp;

    if (err) {
        resp = error_response_from(err);
    } else {
        resp = json_object();
        json_object_set_new(resp, "return", ret);
    }
    if (id) {
        json_object_set(resp, "id", id);
    }
    return resp;
}

static void pending_finish(QmpPending *p, json_t *ret, Error *err)
{
    json_t *resp = response_new(ret, err, p->id);

    json_decref(p->id);
    p->cb(p->opaque, resp);
    g_free(p);
}

void qmp_pending_return(QmpPending *pending, json_t *ret)
{
    g_assert(ret);
    pending_finish(pending, ret, NULL);
}

void qmp_pending_error(QmpPending *pending, Error *err)
{
    g_assert(err);
    pending_finish(pending, NULL, err);
}

void qmp_dispatch_async(const QmpCommand *table, json_t *request,
                        bool *negotiated, QmpResponseFunc *cb, void *opaque)
{
    Error *err = NULL;
    json_t *args = NULL;
    json_t *ret = NULL;
    json_t *id;
    const QmpCommand *cmd;
    const char *name = request_check(request, &args, &err);

    id = json_is_object(request) ? json_object_get(request, "id") : NULL;
    if (!name) {
        goto done;
    }
    cmd = command_find(table, name);
    if (!*negotiated && (!cmd || !(cmd->flags & QMP_CMD_NEGOTIATION))) {
        error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Expecting capabilities negotiation with 'qmp_capabilities'");
        goto done;
    }
    if (!cmd) {
        error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "The command %s has not been found", name);
        goto done;
    }
    if (*negotiated && (cmd->flags & QMP_CMD_NEGOTIATION)) {
        error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Capabilities negotiation is already complete, command "
                  "ignored");
        goto done;
    }
    if (args) {
        json_incref(args);
    } else {
        args = json_object();
    }
    if (cmd->async_fn) {
        QmpPending *p = g_new0(QmpPending, 1);

        g_assert(!(cmd->flags & QMP_CMD_NEGOTIATION));
        p->id = id ? json_incref(id) : NULL;
        p->cb = cb;
        p->opaque = opaque;
        cmd->async_fn(args, p);
        json_decref(args);
        return;
    }
    ret = cmd->fn(args, &err);
    json_decref(args);
    /* A handler that fails must say why, and one that succeeds must not. */
    g_assert(!ret == !!err);
    if (ret && (cmd->flags & QMP_CMD_NEGOTIATION)) {
        *negotiated = true;
    }

done:
    cb(opaque, response_new(ret, err, id));
}

static void store_response(void *opaque, json_t *resp)
{
    json_t **out = opaque;

    *out = resp;
}

json_t *qmp_dispatch(const QmpCommand *table, json_t *request, bool *negotiated)
{
    json_t *resp = NULL;

    qmp_dispatch_async(table, request, negotiated, store_response, &resp);
    if (!resp) {
        g_error("qmp_dispatch: an asynchronous command did not reply at "
                "once (use qmp_dispatch_async)");
    }
    return resp;
}

/* ---- arguments ---------------------------------------------------------- */

static const char *arg_type_name(QmpArgType t)
{
    switch (t) {
    case QMP_ARG_STR:
        return "string";
    case QMP_ARG_INT:
        return "integer";
    case QMP_ARG_BOOL:
        return "boolean";
    case QMP_ARG_OBJECT:
        return "object";
    case QMP_ARG_ARRAY:
        return "array";
    case QMP_ARG_STR_OR_NULL:
        return "string or null";
    case QMP_ARG_ANY:
    default:
        return "value";
    }
}

static bool arg_type_ok(QmpArgType t, json_t *v)
{
    switch (t) {
    case QMP_ARG_STR:
        return json_is_string(v);
    case QMP_ARG_INT:
        return json_is_integer(v);
    case QMP_ARG_BOOL:
        return json_is_boolean(v);
    case QMP_ARG_OBJECT:
        return json_is_object(v);
    case QMP_ARG_ARRAY:
        return json_is_array(v);
    case QMP_ARG_STR_OR_NULL:
        return json_is_string(v) || json_is_null(v);
    case QMP_ARG_ANY:
    default:
        return true;
    }
}

bool qmp_args_check(json_t *args, const QmpArg *spec, Error **errp)
{
    const char *key;
    json_t *value;

    json_object_foreach(args, key, value)
    {
        const QmpArg *a = spec;

        while (a->name && strcmp(a->name, key) != 0) {
            a++;
        }
        if (!a->name) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return false;
        }
        if (!arg_type_ok(a->type, value)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                       key, arg_type_name(a->type));
            return false;
        }
    }
    for (const QmpArg *a = spec; a->name; a++) {
        if (a->required && !json_object_get(args, a->name)) {
            error_setg(errp, "Parameter '%s' is missing", a->name);
            return false;
        }
    }
    return true;
}

const char *qmp_arg_str(json_t *args, const char *name, const char *dflt)
{
    json_t *v = json_object_get(args, name);

    return json_is_string(v) ? json_string_value(v) : dflt;
}

int64_t qmp_arg_int(json_t *args, const char *name, int64_t dflt)
{
    json_t *v = json_object_get(args, name);

    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

bool qmp_arg_bool(json_t *args, const char *name, bool dflt)
{
    json_t *v = json_object_get(args, name);

    return json_is_boolean(v) ? json_is_true(v) : dflt;
}
