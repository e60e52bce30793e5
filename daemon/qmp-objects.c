/*
 * QMP commands on the object registry and the event loops: object-add,
 * object-del, qom-list, qom-get, qom-set, query-iothreads, stop, cont.
 * Also --object, which runs the same code as object-add.
 */
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"

static bool world_stopped;

/* ---- shared with the command line --------------------------------------- */

void daemon_objects_init(void)
{
    /* main_loop_init() registered "iothread"; the block layer brings
     * "throttle-group". */
    bdrv_init();
}

bool daemon_object_add(GHashTable *opts, Error **errp)
{
    return object_add_opts(opts, errp) != NULL;
}

void daemon_objects_cleanup(void)
{
    /* Destroys user-created objects newest first: IOThreads stop here. */
    object_registry_cleanup();
}

/* ---- object-add, object-del --------------------------------------------- */

json_t *qmp_cmd_object_add(json_t *args, Error **errp)
{
    g_autoptr(GHashTable) opts = keyval_new();

    if (!json_object_get(args, "qom-type")) {
        error_setg(errp, "Parameter 'qom-type' is missing");
        return NULL;
    }
    if (!keyval_add_json(opts, args, NULL, errp) || !keyval_check(opts, errp) ||
        !object_add_opts(opts, errp)) {
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_object_del(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"id", QMP_ARG_STR, true},
        {NULL},
    };

    if (!qmp_args_check(args, spec, errp) ||
        !object_del(qmp_arg_str(args, "id", NULL), errp)) {
        return NULL;
    }
    return json_object();
}

/* ---- qom-list, qom-get, qom-set ----------------------------------------- */

static json_t *value_to_json(const ObjectValue *v)
{
    switch (v->type) {
    case OBJECT_VALUE_STR:
        return json_string(v->s ? v->s : "");
    case OBJECT_VALUE_INT:
        return json_integer(v->i);
    case OBJECT_VALUE_BOOL:
    default:
        return json_boolean(v->b);
    }
}

static bool is_root(const char *path)
{
    return !strcmp(path, "/") || !strcmp(path, "");
}

static bool is_objects_container(const char *path)
{
    return !strcmp(path, "/objects") || !strcmp(path, "/objects/") ||
           !strcmp(path, "objects");
}

json_t *qmp_cmd_qom_list(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"path", QMP_ARG_STR, true},
        {NULL},
    };
    const char *path;
    json_t *list;
    Object *obj;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    path = qmp_arg_str(args, "path", NULL);
    list = json_array();
    if (is_root(path)) {
        json_array_append_new(list, json_pack("{s:s,s:s}", "name", "objects",
                                              "type", "child<container>"));
        return list;
    }
    if (is_objects_container(path)) {
        g_autoptr(GPtrArray) objs = object_list();

        for (guint i = 0; i < objs->len; i++) {
            ObjectInfo *info = g_ptr_array_index(objs, i);
            g_autofree char *type = g_strdup_printf("child<%s>", info->type);

            json_array_append_new(
                list, json_pack("{s:s,s:s}", "name", info->id, "type", type));
        }
        return list;
    }
    obj = object_resolve(path, errp);
    if (!obj) {
        json_decref(list);
        return NULL;
    }
    g_autoptr(GPtrArray) props = object_property_list(obj);
    for (guint i = 0; i < props->len; i++) {
        ObjectPropertyDesc *d = g_ptr_array_index(props, i);
        json_t *entry = json_pack("{s:s,s:s}", "name", d->name, "type",
                                  object_value_type_qom_name(d->type));

        if (d->description) {
            json_object_set_new(entry, "description",
                                json_string(d->description));
        }
        json_array_append_new(list, entry);
    }
    return list;
}

/*
 * QEMU's struct-valued properties, such as a throttle-group's "limits"
 * ({"iops-total": 1000, ...}), are here the flat properties "limits.<key>".
 * A property name with such members and no property of its own is read
 * as one JSON object and set from one, so scripts written for QEMU's
 * `qom-set ... "limits"` work unchanged.
 */
static char *struct_prefix(Object *obj, const char *name)
{
    g_autofree char *prefix = g_strconcat(name, ".", NULL);
    g_autoptr(GPtrArray) props = NULL;

    if (object_type_find_property(object_get_type_info(obj), name)) {
        return NULL;
    }
    props = object_property_list(obj);
    for (guint i = 0; i < props->len; i++) {
        ObjectPropertyDesc *d = g_ptr_array_index(props, i);

        if (g_str_has_prefix(d->name, prefix)) {
            return g_steal_pointer(&prefix);
        }
    }
    return NULL;
}

static json_t *struct_get(Object *obj, const char *prefix, Error **errp)
{
    g_autoptr(GPtrArray) props = object_property_list(obj);
    json_t *ret = json_object();

    for (guint i = 0; i < props->len; i++) {
        ObjectPropertyDesc *d = g_ptr_array_index(props, i);
        ObjectValue v = {0};

        if (!g_str_has_prefix(d->name, prefix)) {
            continue;
        }
        if (!object_property_get(obj, d->name, &v, errp)) {
            json_decref(ret);
            return NULL;
        }
        json_object_set_new(ret, d->name + strlen(prefix), value_to_json(&v));
        object_value_clear(&v);
    }
    return ret;
}

/*
 * Sets each (name, value) of `pending` (full property names -> json_t *).
 * Members are set one at a time and each setter checks the whole object,
 * so an order must be found in which every intermediate state is valid
 * (lower a burst before its rate, clear iops-total before iops-read is
 * set, ...): passes over what is left until one makes no progress.  At
 * most one pass per member, so bounded.  Returns false with the error of
 * a member that could not be set; what was set stays set.
 */
static bool struct_apply(Object *obj, GHashTable *pending, Error **errp)
{
    guint passes = g_hash_table_size(pending) + 1;

    while (g_hash_table_size(pending) > 0 && passes-- > 0) {
        Error *last = NULL;
        bool progress = false;
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, pending);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            Error *err = NULL;

            if (object_property_set_int(obj, k, json_integer_value(v), &err)) {
                g_hash_table_iter_remove(&it);
                progress = true;
            } else {
                error_free(last);
                last = err;
            }
        }
        if (!progress) {
            error_propagate(errp, last);
            return false;
        }
        error_free(last);
    }
    return true;
}

static bool struct_set(Object *obj, const char *prefix, json_t *value,
                       Error **errp)
{
    g_autoptr(GHashTable) pending = NULL;
    g_autoptr(GHashTable) undo = NULL;
    const char *key;
    json_t *member;

    if (!json_is_object(value)) {
        error_setg(errp, "Invalid parameter type for '%.*s', expected: object",
                   (int)strlen(prefix) - 1, prefix);
        return false;
    }
    pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    json_object_foreach(value, key, member)
    {
        g_autofree char *name = g_strconcat(prefix, key, NULL);
        const ObjectPropertyInfo *prop =
            object_type_find_property(object_get_type_info(obj), name);

        if (!prop) {
            error_setg(errp, "Parameter '%s' is unexpected", name);
            return false;
        }
        /* The struct properties there are (throttle limits) are all
         * integers. */
        if (prop->type != OBJECT_VALUE_INT || !json_is_integer(member)) {
            error_setg(errp,
                       "Invalid parameter type for '%s', expected: integer",
                       name);
            return false;
        }
        g_hash_table_insert(pending, g_steal_pointer(&name), member);
    }
    /* What to put back if the new values cannot all be set. */
    undo = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                 (GDestroyNotify)json_decref);
    {
        g_autoptr(GPtrArray) props = object_property_list(obj);

        for (guint i = 0; i < props->len; i++) {
            ObjectPropertyDesc *d = g_ptr_array_index(props, i);
            int64_t cur;

            if (g_str_has_prefix(d->name, prefix) &&
                object_property_get_int(obj, d->name, &cur, NULL)) {
                g_hash_table_insert(undo, g_strdup(d->name), json_integer(cur));
            }
        }
    }
    if (!struct_apply(obj, pending, errp)) {
        struct_apply(obj, undo, NULL);
        return false;
    }
    return true;
}

static const QmpArg qom_get_args[] = {
    {"path", QMP_ARG_STR, true},
    {"property", QMP_ARG_STR, true},
    {NULL},
};

json_t *qmp_cmd_qom_get(json_t *args, Error **errp)
{
    ObjectValue v = {0};
    Object *obj;
    json_t *ret;

    if (!qmp_args_check(args, qom_get_args, errp)) {
        return NULL;
    }
    obj = object_resolve(qmp_arg_str(args, "path", NULL), errp);
    if (!obj) {
        return NULL;
    }
    g_autofree char *prefix =
        struct_prefix(obj, qmp_arg_str(args, "property", NULL));
    if (prefix) {
        return struct_get(obj, prefix, errp);
    }
    if (!object_property_get(obj, qmp_arg_str(args, "property", NULL), &v,
                             errp)) {
        return NULL;
    }
    ret = value_to_json(&v);
    object_value_clear(&v);
    return ret;
}

json_t *qmp_cmd_qom_set(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"path", QMP_ARG_STR, true},
        {"property", QMP_ARG_STR, true},
        {"value", QMP_ARG_ANY, true},
        {NULL},
    };
    const ObjectPropertyInfo *prop;
    const char *name;
    json_t *value;
    ObjectValue v = {0};
    Object *obj;
    bool ok;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    obj = object_resolve(qmp_arg_str(args, "path", NULL), errp);
    if (!obj) {
        return NULL;
    }
    name = qmp_arg_str(args, "property", NULL);
    value = json_object_get(args, "value");
    g_autofree char *prefix = struct_prefix(obj, name);
    if (prefix) {
        return struct_set(obj, prefix, value, errp) ? json_object() : NULL;
    }
    prop = object_type_find_property(object_get_type_info(obj), name);
    if (json_is_string(value) && prop && prop->type != OBJECT_VALUE_STR) {
        /* "on", "0x10": the keyval spelling, as a command line would give. */
        ok = object_property_parse(obj, name, json_string_value(value), errp);
    } else {
        if (json_is_string(value)) {
            v.type = OBJECT_VALUE_STR;
            v.s = (char *)json_string_value(value);
        } else if (json_is_integer(value)) {
            v.type = OBJECT_VALUE_INT;
            v.i = json_integer_value(value);
        } else if (json_is_boolean(value)) {
            v.type = OBJECT_VALUE_BOOL;
            v.b = json_is_true(value);
        } else {
            error_setg(errp, "Invalid parameter type for 'value', expected: "
                             "string, integer or boolean");
            return NULL;
        }
        /* v.s is borrowed from the request: object_property_set copies. */
        ok = object_property_set(obj, name, &v, errp);
    }
    return ok ? json_object() : NULL;
}

/* ---- query-iothreads ----------------------------------------------------- */

static void iothread_info_append(IOThread *iothread, void *opaque)
{
    json_t *list = opaque;
    IOThreadProps props;

    iothread_get_props(iothread, &props);
    json_array_append_new(
        list,
        json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "id", iothread_get_id(iothread),
                  "thread-id", (json_int_t)iothread_get_thread_id(iothread),
                  "poll-max-ns", (json_int_t)props.poll_max_ns, "poll-grow",
                  (json_int_t)props.poll_grow, "poll-shrink",
                  (json_int_t)props.poll_shrink, "aio-max-batch",
                  (json_int_t)props.aio_max_batch));
}

json_t *qmp_cmd_query_iothreads(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    iothread_foreach(iothread_info_append, list);
    return list;
}

/* ---- stop, cont ---------------------------------------------------------- */

bool daemon_check_running(const char *what, Error **errp)
{
    if (world_stopped) {
        error_setg(errp,
                   "Cannot %s while the daemon is stopped; send 'cont' "
                   "first",
                   what);
        return false;
    }
    return true;
}

void daemon_resume(void)
{
    if (world_stopped) {
        world_stopped = false;
        main_loop_resume_the_world();
    }
}

json_t *qmp_cmd_stop(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    /* As QEMU: stopping a stopped daemon is not an error. */
    if (!world_stopped) {
        /* Nothing may be in flight while the IOThreads are held. */
        bdrv_drain_all();
        main_loop_stop_the_world();
        world_stopped = true;
        monitor_emit_event("STOP", NULL);
    }
    return json_object();
}

json_t *qmp_cmd_cont(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    if (world_stopped) {
        daemon_resume();
        monitor_emit_event("RESUME", NULL);
    }
    return json_object();
}
