/*
 * QMP commands on the NBD server: nbd-server-start, nbd-server-stop, and
 * the older export commands nbd-server-add and nbd-server-remove; the nbd
 * type of block-export-add and friends (qmp-export.c dispatches here).
 * Also --nbd-server, which runs the same code, and the daemon's teardown
 * of the server.
 *
 * Addresses: --nbd-server takes QEMU's flat SocketAddress (addr.type=unix,
 * addr.path=... or addr.type=inet,addr.host=...,addr.port=... or
 * addr.type=fd,addr.str=<n>), plus addr.mode for a unix socket's
 * permissions; QMP's nbd-server-start also takes the legacy shape
 * {"type": "unix", "data": {"path": ...}}.  io/ turns either into a typed
 * SocketAddress (socket_address_from_keyval) that nbd_server_start() takes
 * as it is.
 */
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/input.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "dataplane/object.h"
#include "dataplane/socket.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"
#include "qmp-json.h"

/* The TLS objects the running server uses (it is their user). */
static Object *server_tls_creds_obj;
static Object *server_tls_authz_obj;
#define NBD_SERVER_USER "NBD server"

/* ---- the server ---------------------------------------------------------- */

bool daemon_nbd_server_start(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = daemon_opts_copy(opts);
    g_autoptr(GHashTable) addr_opts = keyval_take_prefix(o, "addr");
    g_autofree char *tls = keyval_take(o, "tls-creds");
    g_autofree char *authz = keyval_take(o, "tls-authz");
    g_autoptr(SocketAddress) addr = NULL;
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;
    int64_t max_conn = so.max_connections;
    int64_t handshake = so.handshake_max_seconds;
    int64_t idle = so.idle_max_seconds;
    bool poll_sockets = so.poll_sockets;
    Object *creds_obj = NULL, *authz_obj = NULL;

    addr = socket_address_from_keyval(addr_opts, "addr", errp);
    if (!addr ||
        !daemon_take_int(o, "max-connections", 0, INT32_MAX, &max_conn, errp) ||
        !daemon_take_int(o, "handshake-max-seconds", 0, INT32_MAX, &handshake,
                         errp) ||
        !daemon_take_int(o, "idle-max-seconds", 0, INT32_MAX, &idle, errp) ||
        !daemon_take_size(o, "max-buffer-size", &so.max_buffer_size, errp) ||
        !daemon_take_bool(o, "x-poll-sockets", &poll_sockets, errp) ||
        !keyval_check_empty(o, "nbd-server", errp)) {
        return false;
    }
    if (nbd_server_is_running()) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (tls && !(so.tls_creds = tls_creds_find(tls, &creds_obj, errp))) {
        return false;
    }
    if (authz && !(so.tls_authz = authz_find(authz, &authz_obj, errp))) {
        return false;
    }
    so.max_connections = (int)max_conn;
    so.handshake_max_seconds = (int)handshake;
    so.idle_max_seconds = (int)idle;
    so.poll_sockets = poll_sockets;
    nbd_set_export_gone_handler(daemon_export_gone, NULL);
    if (!nbd_server_start(addr, &so, errp)) {
        return false;
    }
    /* Refuses object-del of what the server uses, until it stops. */
    if (creds_obj) {
        object_user_add(creds_obj, NBD_SERVER_USER);
        server_tls_creds_obj = creds_obj;
    }
    if (authz_obj) {
        object_user_add(authz_obj, NBD_SERVER_USER);
        server_tls_authz_obj = authz_obj;
    }
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
        /* dataplaned's own (docs/security.md) */
        {"idle-max-seconds", QMP_ARG_INT, false},
        {"max-buffer-size", QMP_ARG_INT, false},
        {"x-poll-sockets", QMP_ARG_BOOL, false},
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

/* Stops the server (every export it drops reports through
 * daemon_export_gone) and lets its TLS objects go. */
static bool server_stop(Error **errp)
{
    if (!nbd_server_stop(errp)) {
        return false;
    }
    if (server_tls_creds_obj) {
        object_user_remove(server_tls_creds_obj, NBD_SERVER_USER);
        server_tls_creds_obj = NULL;
    }
    if (server_tls_authz_obj) {
        object_user_remove(server_tls_authz_obj, NBD_SERVER_USER);
        server_tls_authz_obj = NULL;
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

    g_autofree AioContext **ctxs = NULL;
    NbdExportConfig cfg = {.id = c->id,
                           .node_name = c->node_name,
                           .name = name,
                           .description = description,
                           .writable = c->writable};

    if (!daemon_take_bool(o, "allocation-depth", &alloc_depth, errp)) {
        return false;
    }
    if (!keyval_check_empty(o, "export", errp)) {
        return false;
    }
    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    if (!daemon_export_prepare_node(c, errp)) {
        return false;
    }
    cfg.allocation_depth = alloc_depth;
    if (c->n_iothreads > 0) {
        /* Multi-threaded: connections are spread over the IOThreads. */
        ctxs = g_new(AioContext *, c->n_iothreads);
        for (unsigned i = 0; i < c->n_iothreads; i++) {
            ctxs[i] = iothread_get_aio_context(c->iothreads[i]);
        }
        cfg.ctxs = ctxs;
        cfg.n_ctxs = c->n_iothreads;
    }
    if (!nbd_export_add_config(&cfg, errp)) {
        return false;
    }
    if (c->n_iothreads > 0) {
        daemon_export_hold_iothreads(c);
    }
    return true;
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
    json_t *e = json_pack("{s:s,s:o,s:o,s:b}", "type", "nbd", "id",
                          qmp_json_str(info->id), "node-name",
                          qmp_json_str(info->node_name), "shutting-down", 0);
    const char *const *ids = daemon_export_iothread_ids(info->id);

    if (ids) {
        /* A multi-threaded export: the IOThreads, as block-export-add
         * took them (QEMU's query does not show them). */
        json_t *list = json_array();
        int i;

        for (i = 0; ids[i]; i++) {
            json_array_append_new(list, qmp_json_str(ids[i]));
        }
        json_object_set_new(e, "iothread", list);
        /* And how many connections each serves now (ours only). */
        list = json_array();
        for (i = 0; i < (int)info->n_contexts; i++) {
            json_array_append_new(list,
                                  json_integer(info->context_connections[i]));
        }
        json_object_set_new(e, "x-iothread-connections", list);
    }
    json_array_append_new(opaque, e);
}

void daemon_nbd_export_query(json_t *list)
{
    nbd_export_foreach(export_info_append, list);
}

void daemon_nbd_exports_cleanup(void)
{
    /* Its socket file goes too, if it is still ours. */
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
