/*
 * QMP commands on the NBD server: nbd-server-start, nbd-server-stop, and
 * the older export commands nbd-server-add and nbd-server-remove; the nbd
 * type of block-export-add and friends (qmp-export.c dispatches here).
 * Also --nbd-server, which runs the same code, and the daemon's teardown
 * of the server.
 *
 * Addresses: --nbd-server takes QEMU's flat SocketAddress (addr.type=unix,
 * addr.path=... or addr.type=inet,addr.host=...,addr.port=...); QMP's
 * nbd-server-start also takes the legacy shape {"type": "unix", "data":
 * {"path": ...}}.  Both end up as the address string of nbd_server_start().
 */
#include <string.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"

/* The unix socket we listen on, to remove it when we stop (NULL: TCP). */
static char *server_socket_path;

/* ---- the server ---------------------------------------------------------- */

/*
 * Turns addr.* (SocketAddress, flat or legacy) into nbd_server_start()'s
 * address string; sets *unix_path for unix sockets.
 */
static char *address_from_opts(GHashTable *o, char **unix_path, Error **errp)
{
    g_autoptr(GHashTable) addr = keyval_take_prefix(o, "addr");
    g_autoptr(GHashTable) data = keyval_take_prefix(addr, "data");
    g_autofree char *type = keyval_take(addr, "type");
    GHashTableIter it;
    gpointer k, v;

    /* Legacy {"type": .., "data": {..}}: the members of data, one up. */
    g_hash_table_iter_init(&it, data);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(addr, g_strdup(k), g_strdup(v));
    }
    if (!type) {
        error_setg(errp, "Parameter 'addr.type' is missing");
        return NULL;
    }
    if (!strcmp(type, "unix")) {
        g_autofree char *path = keyval_take(addr, "path");
        g_autofree char *abstract = keyval_take(addr, "abstract");

        if (!path) {
            error_setg(errp, "Parameter 'addr.path' is missing");
            return NULL;
        }
        if (abstract) {
            error_setg(errp, "Abstract unix sockets are not supported");
            return NULL;
        }
        if (!keyval_check_empty(addr, "addr", errp)) {
            return NULL;
        }
        *unix_path = g_strdup(path);
        return g_strdup_printf("unix:%s", path);
    }
    if (!strcmp(type, "inet")) {
        g_autofree char *host = keyval_take(addr, "host");
        g_autofree char *port = keyval_take(addr, "port");
        int64_t portnum;

        if (!host) {
            error_setg(errp, "Parameter 'addr.host' is missing");
            return NULL;
        }
        if (!port) {
            error_setg(errp, "Parameter 'addr.port' is missing");
            return NULL;
        }
        if (!keyval_parse_int("addr.port", port, 0, 65535, &portnum, errp) ||
            !keyval_check_empty(addr, "addr", errp)) {
            return NULL;
        }
        *unix_path = NULL;
        if (strchr(host, ':')) {
            return g_strdup_printf("[%s]:%" G_GINT64_FORMAT, host, portnum);
        }
        return g_strdup_printf("%s:%" G_GINT64_FORMAT, host, portnum);
    }
    error_setg(errp,
               "Parameter 'addr.type' does not accept value '%s' "
               "(unix or inet)",
               type);
    return NULL;
}

bool daemon_nbd_server_start(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = daemon_opts_copy(opts);
    g_autofree char *tls = keyval_take(o, "tls-creds");
    g_autofree char *authz = keyval_take(o, "tls-authz");
    g_autofree char *addr = NULL;
    g_autofree char *unix_path = NULL;
    int64_t max_conn = NBD_DEFAULT_MAX_CONNECTIONS;
    int64_t handshake = NBD_DEFAULT_HANDSHAKE_MAX_SECONDS;

    if (tls || authz) {
        error_setg(errp, "TLS is not supported");
        return false;
    }
    addr = address_from_opts(o, &unix_path, errp);
    if (!addr ||
        !daemon_take_int(o, "max-connections", 0, INT32_MAX, &max_conn, errp) ||
        !daemon_take_int(o, "handshake-max-seconds", 0, INT32_MAX, &handshake,
                         errp) ||
        !keyval_check_empty(o, "nbd-server", errp)) {
        return false;
    }
    if (nbd_server_is_running()) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    nbd_set_export_gone_handler(daemon_export_gone, NULL);
    if (!nbd_server_start(addr, (int)max_conn, (int)handshake, errp)) {
        return false;
    }
    g_free(server_socket_path);
    server_socket_path = g_steal_pointer(&unix_path);
    return true;
}

json_t *qmp_cmd_nbd_server_start(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"addr", QMP_ARG_OBJECT, true},
        {"tls-creds", QMP_ARG_STR, false},
        {"tls-authz", QMP_ARG_STR, false},
        {"max-connections", QMP_ARG_INT, false},
        {"handshake-max-seconds", QMP_ARG_INT, false},
        {NULL},
    };
    g_autoptr(GHashTable) opts = keyval_new();

    if (!qmp_args_check(args, spec, errp) ||
        !keyval_add_json(opts, args, NULL, errp) ||
        !daemon_nbd_server_start(opts, errp)) {
        return NULL;
    }
    return json_object();
}

/* Stops the server; every export it drops reports through export_gone. */
static bool server_stop(Error **errp)
{
    if (!nbd_server_stop(errp)) {
        return false;
    }
    if (server_socket_path) {
        /* Ours to remove, whether or not the server already did. */
        unlink(server_socket_path);
        g_clear_pointer(&server_socket_path, g_free);
    }
    return true;
}

json_t *qmp_cmd_nbd_server_stop(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return NULL;
    }
    if (!server_stop(errp)) {
        return NULL;
    }
    return json_object();
}

/* ---- the nbd export type (qmp-export.c dispatches here) ----------------- */

bool daemon_nbd_export_add(GHashTable *o, const DaemonExportCommon *c,
                           Error **errp)
{
    g_autofree char *name = keyval_take(o, "name");
    g_autofree char *description = keyval_take(o, "description");
    bool alloc_depth = false;

    if (!daemon_take_bool(o, "allocation-depth", &alloc_depth, errp)) {
        return false;
    }
    if (alloc_depth) {
        error_setg(errp, "allocation-depth=on is not supported");
        return false;
    }
    if (!keyval_check_empty(o, "export", errp)) {
        return false;
    }
    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    return daemon_export_prepare_node(c, errp) &&
           nbd_export_add(c->id, c->node_name, name, description, c->writable,
                          errp);
}

typedef struct FindExport {
    const char *node_name; /* match by node, or */
    const char *id;        /* by id */
    const char *found;     /* the id found */
} FindExport;

static void find_export(const NbdExportInfo *info, void *opaque)
{
    FindExport *f = opaque;

    if (f->found) {
        return;
    }
    if ((f->node_name && !strcmp(info->node_name, f->node_name)) ||
        (f->id && !strcmp(info->id, f->id))) {
        f->found = info->id;
    }
}

bool daemon_nbd_export_exists(const char *id)
{
    FindExport f = {.id = id};

    nbd_export_foreach(find_export, &f);
    return f.found != NULL;
}

const char *daemon_nbd_export_using_node(const char *node_name)
{
    FindExport f = {.node_name = node_name};

    nbd_export_foreach(find_export, &f);
    return f.found;
}

bool daemon_nbd_export_del(const char *id, bool hard, Error **errp)
{
    return nbd_export_del(id, hard ? NBD_EXPORT_DEL_HARD : NBD_EXPORT_DEL_SAFE,
                          errp);
}

static void export_info_append(const NbdExportInfo *info, void *opaque)
{
    json_array_append_new(
        opaque, json_pack("{s:s,s:s,s:s,s:b}", "type", "nbd", "id", info->id,
                          "node-name", info->node_name, "shutting-down", 0));
}

void daemon_nbd_export_query(json_t *list)
{
    nbd_export_foreach(export_info_append, list);
}

void daemon_nbd_exports_cleanup(void)
{
    if (nbd_server_is_running()) {
        server_stop(NULL);
    }
}

unsigned daemon_nbd_connections(void)
{
    return nbd_server_get_connection_count();
}

/*
 * nbd-server-add and nbd-server-remove: QEMU's older NBD export commands,
 * still in qemu-storage-daemon and in scripts that predate block-export-add.
 * As there, the export's id is its NBD name, which defaults to the node's.
 */
json_t *qmp_cmd_nbd_server_add(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"device", QMP_ARG_STR, true},
        {"name", QMP_ARG_STR, false},
        {"description", QMP_ARG_STR, false},
        {"writable", QMP_ARG_BOOL, false},
        {NULL},
    };
    g_autoptr(GHashTable) opts = keyval_new();
    json_t *export_args;
    const char *device;
    const char *name;
    bool ok;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    device = qmp_arg_str(args, "device", NULL);
    name = qmp_arg_str(args, "name", device);
    export_args = json_deep_copy(args);
    json_object_del(export_args, "device");
    json_object_set_new(export_args, "type", json_string("nbd"));
    json_object_set_new(export_args, "id", json_string(name));
    json_object_set_new(export_args, "node-name", json_string(device));
    json_object_set_new(export_args, "name", json_string(name));
    ok = keyval_add_json(opts, export_args, NULL, errp) &&
         daemon_export_add(opts, errp);
    json_decref(export_args);
    return ok ? json_object() : NULL;
}

json_t *qmp_cmd_nbd_server_remove(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"name", QMP_ARG_STR, true},
        {"mode", QMP_ARG_STR, false},
        {NULL},
    };
    json_t *del_args;
    json_t *ret;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    del_args = json_deep_copy(args);
    json_object_set(del_args, "id", json_object_get(args, "name"));
    json_object_del(del_args, "name");
    ret = qmp_cmd_block_export_del(del_args, errp);
    json_decref(del_args);
    return ret;
}
