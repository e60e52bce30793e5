/*
 * QMP commands on the NBD server and its exports: nbd-server-start,
 * nbd-server-stop, block-export-add, block-export-del, query-block-exports,
 * and the older nbd-server-add and nbd-server-remove.
 * Also --nbd-server and --export, which run the same code, and the
 * daemon's teardown of the server.
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

/* How long teardown waits for NBD connections to finish closing. */
#define NBD_CLOSE_WAIT_NS (5 * (int64_t)1000000000)

/* The TLS objects the running server uses (it is their user). */
static Object *server_tls_creds_obj;
static Object *server_tls_authz_obj;
#define NBD_SERVER_USER "NBD server"

/* Copies a table, so that consuming keys leaves the caller's intact. */
static GHashTable *opts_copy(GHashTable *opts)
{
    GHashTable *copy = keyval_new();
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, opts);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(copy, g_strdup(k), g_strdup(v));
    }
    return copy;
}

static bool take_int(GHashTable *o, const char *key, int64_t min, int64_t max,
                     int64_t *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_int(key, v, min, max, out, errp);
}

static bool take_size(GHashTable *o, const char *key, uint64_t *out,
                      Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_size(key, v, INT64_MAX, out, errp);
}

static bool take_bool(GHashTable *o, const char *key, bool *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_bool(key, v, out, errp);
}

/* ---- the server ---------------------------------------------------------- */

/*
 * As QEMU: BLOCK_EXPORT_DELETED says the export is gone for good (its last
 * client has closed and its node is free for blockdev-del), which may be
 * well after block-export-del or nbd-server-stop has returned.
 */
/* Multi-threaded exports: export id -> GStrv of the IOThread ids its
 * connections are spread over (each IOThread records the export as a
 * user, so it cannot be deleted under it).  Main loop. */
static GHashTable *export_iothreads;

static char *export_user_name(const char *id)
{
    return g_strdup_printf("block export '%s'", id);
}

static void export_iothreads_drop(const char *id)
{
    GStrv ids =
        export_iothreads ? g_hash_table_lookup(export_iothreads, id) : NULL;
    g_autofree char *user = export_user_name(id);
    int i;

    if (!ids) {
        return;
    }
    for (i = 0; ids[i]; i++) {
        Object *obj = object_find(ids[i]);

        /* A list may name an IOThread twice: one user record each. */
        if (obj) {
            object_user_remove(obj, user);
        }
    }
    g_hash_table_remove(export_iothreads, id);
}

static void export_gone(const char *id, void *opaque)
{
    export_iothreads_drop(id);
    monitor_emit_event("BLOCK_EXPORT_DELETED",
                       json_pack("{s:o}", "id", qmp_json_str(id)));
}

bool daemon_nbd_server_start(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = opts_copy(opts);
    g_autoptr(GHashTable) addr_opts = keyval_take_prefix(o, "addr");
    g_autofree char *tls = keyval_take(o, "tls-creds");
    g_autofree char *authz = keyval_take(o, "tls-authz");
    g_autoptr(SocketAddress) addr = NULL;
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;
    int64_t max_conn = so.max_connections;
    int64_t handshake = so.handshake_max_seconds;
    int64_t idle = so.idle_max_seconds;

    Object *creds_obj = NULL, *authz_obj = NULL;

    addr = socket_address_from_keyval(addr_opts, "addr", errp);
    if (!addr ||
        !take_int(o, "max-connections", 0, INT32_MAX, &max_conn, errp) ||
        !take_int(o, "handshake-max-seconds", 0, INT32_MAX, &handshake, errp) ||
        !take_int(o, "idle-max-seconds", 0, INT32_MAX, &idle, errp) ||
        !take_size(o, "max-buffer-size", &so.max_buffer_size, errp) ||
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
    nbd_set_export_gone_handler(export_gone, NULL);
    so.idle_max_seconds = (int)idle;
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

/* Stops the server (every export it drops reports through export_gone)
 * and lets its TLS objects go. */
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

/* ---- exports ------------------------------------------------------------- */

/*
 * The list under key (key.0, key.1, ...) as a NULL-terminated vector, its
 * keys taken from o; NULL if there is no key.0.  keyval guarantees there
 * is no gap.
 */
static GStrv take_list(GHashTable *o, const char *key)
{
    g_autoptr(GPtrArray) items = g_ptr_array_new();
    unsigned i;

    for (i = 0;; i++) {
        g_autofree char *k = g_strdup_printf("%s.%u", key, i);
        char *v = keyval_take(o, k);

        if (!v) {
            break;
        }
        g_ptr_array_add(items, v);
    }
    if (items->len == 0) {
        return NULL;
    }
    g_ptr_array_add(items, NULL);
    return (GStrv)g_ptr_array_free(g_steal_pointer(&items), false);
}

/* block-export-add with an iothread list (QEMU 10.1's multi-threaded
 * export): the node stays where it is; connections are spread over the
 * listed IOThreads. */
static bool export_add_multi(const char *id, const char *node_name,
                             const char *name, const char *description,
                             bool writable, bool alloc_depth, GStrv iothreads,
                             Error **errp)
{
    guint n = g_strv_length(iothreads);
    g_autofree AioContext **ctxs = g_new(AioContext *, n);
    g_autofree char *user = export_user_name(id);
    guint i;

    for (i = 0; i < n; i++) {
        IOThread *t = iothread_find(iothreads[i]);

        if (!t) {
            error_setg(errp, "iothread \"%s\" not found", iothreads[i]);
            return false;
        }
        ctxs[i] = iothread_get_aio_context(t);
    }
    NbdExportConfig cfg = {.id = id,
                           .node_name = node_name,
                           .name = name,
                           .description = description,
                           .writable = writable,
                           .allocation_depth = alloc_depth,
                           .ctxs = ctxs,
                           .n_ctxs = n};

    if (!nbd_export_add_config(&cfg, errp)) {
        return false;
    }
    if (!export_iothreads) {
        export_iothreads = g_hash_table_new_full(
            g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    }
    for (i = 0; i < n; i++) {
        object_user_add(object_find(iothreads[i]), user);
    }
    g_hash_table_insert(export_iothreads, g_strdup(id), g_strdupv(iothreads));
    return true;
}

bool daemon_export_add(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = opts_copy(opts);
    g_autofree char *type = keyval_take(o, "type");
    g_autofree char *id = keyval_take(o, "id");
    g_autofree char *node_name = keyval_take(o, "node-name");
    g_autofree char *name = keyval_take(o, "name");
    g_autofree char *description = keyval_take(o, "description");
    g_autofree char *iothread_id = keyval_take(o, "iothread");
    g_auto(GStrv) iothread_list = take_list(o, "iothread");
    bool writable = false;
    bool writethrough = false;
    bool fixed = false;
    bool alloc_depth = false;
    IOThread *iothread = NULL;
    BlockDriverState *bs;

    if (!type) {
        error_setg(errp, "Parameter 'type' is missing");
        return false;
    }
    if (strcmp(type, "nbd") != 0) {
        error_setg(errp,
                   "Parameter 'type' does not accept value '%s' "
                   "(only nbd)",
                   type);
        return false;
    }
    if (!input_check_id("id", id, errp)) {
        return false;
    }
    if (!node_name) {
        error_setg(errp, "Parameter 'node-name' is missing");
        return false;
    }
    if (!take_bool(o, "writable", &writable, errp) ||
        !take_bool(o, "writethrough", &writethrough, errp) ||
        !take_bool(o, "fixed-iothread", &fixed, errp) ||
        !take_bool(o, "allocation-depth", &alloc_depth, errp)) {
        return false;
    }
    if (writethrough) {
        error_setg(errp, "writethrough=on is not supported");
        return false;
    }
    if (iothread_list && fixed) {
        error_setg(errp,
                   "Cannot use fixed-iothread for a multi-threaded export");
        return false;
    }
    if (!keyval_check_empty(o, "export", errp)) {
        return false;
    }
    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    bs = bdrv_find_node(node_name);
    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", node_name);
        return false;
    }
    if (iothread_id) {
        iothread = iothread_find(iothread_id);
        if (!iothread) {
            error_setg(errp, "iothread \"%s\" not found", iothread_id);
            return false;
        }
        if (!daemon_node_set_iothread(bs, iothread, errp)) {
            return false;
        }
    }
    if (iothread_list) {
        return export_add_multi(id, node_name, name, description, writable,
                                alloc_depth, iothread_list, errp);
    }
    {
        NbdExportConfig cfg = {.id = id,
                               .node_name = node_name,
                               .name = name,
                               .description = description,
                               .writable = writable,
                               .allocation_depth = alloc_depth};

        return nbd_export_add_config(&cfg, errp);
    }
}

json_t *qmp_cmd_block_export_add(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"type", QMP_ARG_STR, true},
        {"id", QMP_ARG_STR, true},
        {"node-name", QMP_ARG_STR, true},
        {"name", QMP_ARG_STR, false},
        {"description", QMP_ARG_STR, false},
        {"writable", QMP_ARG_BOOL, false},
        {"writethrough", QMP_ARG_BOOL, false},
        /* A string, or a list of them (QEMU 10.1's multi-threaded
         * export); an empty list is refused below. */
        {"iothread", QMP_ARG_ANY, false},
        {"fixed-iothread", QMP_ARG_BOOL, false},
        {"allocation-depth", QMP_ARG_BOOL, false},
        {NULL},
    };
    g_autoptr(GHashTable) opts = keyval_new();
    json_t *it;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    it = json_object_get(args, "iothread");
    if (it && !json_is_string(it) && !json_is_array(it)) {
        error_setg(errp, "Invalid parameter type for 'iothread', expected: "
                         "string or array of strings");
        return NULL;
    }
    if (it && json_is_array(it) && json_array_size(it) == 0) {
        error_setg(errp, "The set of I/O threads must not be empty");
        return NULL;
    }
    if (!keyval_add_json(opts, args, NULL, errp) ||
        !daemon_export_add(opts, errp)) {
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_block_export_del(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"id", QMP_ARG_STR, true},
        {"mode", QMP_ARG_STR, false},
        {NULL},
    };
    const char *mode;
    const char *id;
    NbdExportDelMode m;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    id = qmp_arg_str(args, "id", NULL);
    mode = qmp_arg_str(args, "mode", "safe");
    if (!strcmp(mode, "safe")) {
        m = NBD_EXPORT_DEL_SAFE;
    } else if (!strcmp(mode, "hard")) {
        m = NBD_EXPORT_DEL_HARD;
    } else {
        error_setg(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return NULL;
    }
    if (!nbd_export_del(id, m, errp)) {
        return NULL;
    }
    return json_object();
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

static void export_info_append(const NbdExportInfo *info, void *opaque)
{
    json_t *e = json_pack("{s:s,s:o,s:o,s:b}", "type", "nbd", "id",
                          qmp_json_str(info->id), "node-name",
                          qmp_json_str(info->node_name), "shutting-down", 0);
    GStrv ids = export_iothreads
                    ? g_hash_table_lookup(export_iothreads, info->id)
                    : NULL;

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

json_t *qmp_cmd_query_block_exports(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    nbd_export_foreach(export_info_append, list);
    return list;
}

typedef struct FindExport {
    const char *node_name;
    const char *id;
} FindExport;

static void find_export(const NbdExportInfo *info, void *opaque)
{
    FindExport *f = opaque;

    if (!f->id && !strcmp(info->node_name, f->node_name)) {
        f->id = info->id;
    }
}

const char *daemon_export_using_node(const char *node_name)
{
    FindExport f = {.node_name = node_name};

    nbd_export_foreach(find_export, &f);
    return f.id;
}

/* ---- teardown ------------------------------------------------------------ */

static void close_wait_expired(void *opaque)
{
    *(bool *)opaque = true;
}

void daemon_exports_cleanup(void)
{
    bool expired = false;
    AioTimer *timer;

    if (!nbd_server_is_running()) {
        return;
    }
    /* Its socket file goes too, if it is still ours. */
    server_stop(NULL);
    /* Connections close in their IOThreads and report to the main loop;
     * the nodes are free once the last one is gone. */
    timer = aio_timer_new(main_loop_get_aio_context(), AIO_CLOCK_REALTIME,
                          AIO_SCALE_NS, close_wait_expired, &expired);
    aio_timer_mod_ns(timer,
                     aio_clock_get_ns(AIO_CLOCK_REALTIME) + NBD_CLOSE_WAIT_NS);
    while (nbd_server_get_connection_count() > 0 && !expired) {
        main_loop_wait(true);
    }
    aio_timer_free(timer);
}
