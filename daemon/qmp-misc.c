/* QMP commands about the monitor itself: qmp_capabilities, query-version,
 * query-commands, quit. */
#include <string.h>

#include "daemon-version.h"
#include "daemon.h"
#include "qmp-commands.h"

json_t *qmp_cmd_qmp_capabilities(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"enable", QMP_ARG_ARRAY, false},
        {NULL},
    };
    json_t *enable;
    size_t i;
    json_t *cap;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    /* The greeting offers no capability, so none may be enabled; "oob" is
     * the only one QEMU knows at all. */
    enable = json_object_get(args, "enable");
    json_array_foreach(enable, i, cap)
    {
        if (!json_is_string(cap)) {
            error_setg(errp,
                       "Invalid parameter type for 'enable[%zu]', "
                       "expected: string",
                       i);
            return NULL;
        }
        if (strcmp(json_string_value(cap), "oob") != 0) {
            error_setg(errp,
                       "Parameter 'enable[%zu]' does not accept value "
                       "'%s'",
                       i, json_string_value(cap));
            return NULL;
        }
        error_setg(errp, "Capability 'oob' not available");
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_query_version(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "major",
                     DATAPLANE_VERSION_MAJOR, "minor", DATAPLANE_VERSION_MINOR,
                     "micro", DATAPLANE_VERSION_MICRO, "package",
                     "dataplaned " DATAPLANE_VERSION_STRING);
}

json_t *qmp_cmd_query_commands(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    for (const QmpCommand *c = qmp_commands; c->name; c++) {
        json_array_append_new(list, json_pack("{s:s}", "name", c->name));
    }
    return list;
}

json_t *qmp_cmd_quit(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    /* Only asks: the reply goes out first, SHUTDOWN follows at teardown. */
    daemon_request_shutdown("host-qmp-quit");
    return json_object();
}
