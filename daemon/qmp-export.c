/*
 * Block exports of every type: block-export-add, block-export-del,
 * query-block-exports and --export, dispatched by "type" to the file of
 * that type (qmp-nbd.c, qmp-vhost-user-blk.c).  Export ids are unique
 * across types, as in QEMU.  Also the teardown of every export.
 *
 * What is common to every type is handled here: id, node-name, iothread
 * (the node moves there before the export is created), fixed-iothread,
 * writable, writethrough.  The type's own keys stay in the table for its
 * add function, which must consume them all.
 */
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/input.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"

/* How long teardown waits for export connections to finish closing. */
#define EXPORT_CLOSE_WAIT_NS (5 * (int64_t)1000000000)

typedef struct ExportType {
    const char *name;
    bool (*add)(GHashTable *o, const DaemonExportCommon *c, Error **errp);
    bool (*exists)(const char *id);
    bool (*del)(const char *id, bool hard, Error **errp);
    /* Appends {type, id, node-name, shutting-down} objects to list. */
    void (*query)(json_t *list);
    /* The id of an export of node_name, or NULL. */
    const char *(*using_node)(const char *node_name);
    /* Drops every export of the type (hard). */
    void (*cleanup)(void);
    /* Connections still closing. */
    unsigned (*connections)(void);
} ExportType;

static const ExportType export_types[] = {
    {"nbd", daemon_nbd_export_add, daemon_nbd_export_exists,
     daemon_nbd_export_del, daemon_nbd_export_query,
     daemon_nbd_export_using_node, daemon_nbd_exports_cleanup,
     daemon_nbd_connections},
    {"vhost-user-blk", daemon_vhost_user_blk_export_add,
     daemon_vhost_user_blk_export_exists, daemon_vhost_user_blk_export_del,
     daemon_vhost_user_blk_export_query,
     daemon_vhost_user_blk_export_using_node,
     daemon_vhost_user_blk_exports_cleanup, daemon_vhost_user_blk_connections},
};

#define N_TYPES (sizeof(export_types) / sizeof(export_types[0]))

static const ExportType *type_of_id(const char *id)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (export_types[i].exists(id)) {
            return &export_types[i];
        }
    }
    return NULL;
}

/* Copies a table, so that consuming keys leaves the caller's intact. */
GHashTable *daemon_opts_copy(GHashTable *opts)
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

bool daemon_take_int(GHashTable *o, const char *key, int64_t min, int64_t max,
                     int64_t *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_int(key, v, min, max, out, errp);
}

bool daemon_take_bool(GHashTable *o, const char *key, bool *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_bool(key, v, out, errp);
}

/*
 * BLOCK_EXPORT_DELETED, as QEMU: the export is gone for good (its last
 * client has closed and its node is free for blockdev-del), which may be
 * well after block-export-del has returned.
 */
void daemon_export_gone(const char *id, void *opaque)
{
    monitor_emit_event("BLOCK_EXPORT_DELETED", json_pack("{s:s}", "id", id));
}

bool daemon_export_prepare_node(const DaemonExportCommon *c, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(c->node_name);
    IOThread *iothread;

    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", c->node_name);
        return false;
    }
    if (!c->iothread_id) {
        return true;
    }
    iothread = iothread_find(c->iothread_id);
    if (!iothread) {
        error_setg(errp, "iothread \"%s\" not found", c->iothread_id);
        return false;
    }
    return daemon_node_set_iothread(bs, iothread, errp);
}

bool daemon_export_add(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = daemon_opts_copy(opts);
    g_autofree char *type = keyval_take(o, "type");
    g_autofree char *id = keyval_take(o, "id");
    g_autofree char *node_name = keyval_take(o, "node-name");
    g_autofree char *iothread_id = keyval_take(o, "iothread");
    DaemonExportCommon c = {0};
    const ExportType *t = NULL;
    bool writethrough = false;

    if (!type) {
        error_setg(errp, "Parameter 'type' is missing");
        return false;
    }
    for (size_t i = 0; i < N_TYPES; i++) {
        if (!strcmp(type, export_types[i].name)) {
            t = &export_types[i];
        }
    }
    if (!t) {
        error_setg(errp,
                   "Parameter 'type' does not accept value '%s' "
                   "(nbd or vhost-user-blk)",
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
    if (!daemon_take_bool(o, "writable", &c.writable, errp) ||
        !daemon_take_bool(o, "writethrough", &writethrough, errp) ||
        !daemon_take_bool(o, "fixed-iothread", &c.fixed_iothread, errp)) {
        return false;
    }
    if (writethrough) {
        error_setg(errp, "writethrough=on is not supported");
        return false;
    }
    if (type_of_id(id)) {
        error_setg(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    c.id = id;
    c.node_name = node_name;
    c.iothread_id = iothread_id;
    return t->add(o, &c, errp);
}

json_t *qmp_cmd_block_export_add(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"type", QMP_ARG_STR, true},
        {"id", QMP_ARG_STR, true},
        {"node-name", QMP_ARG_STR, true},
        {"writable", QMP_ARG_BOOL, false},
        {"writethrough", QMP_ARG_BOOL, false},
        {"iothread", QMP_ARG_STR, false},
        {"fixed-iothread", QMP_ARG_BOOL, false},
        /* nbd */
        {"name", QMP_ARG_STR, false},
        {"description", QMP_ARG_STR, false},
        {"allocation-depth", QMP_ARG_BOOL, false},
        /* vhost-user-blk */
        {"addr", QMP_ARG_OBJECT, false},
        {"logical-block-size", QMP_ARG_INT, false},
        {"num-queues", QMP_ARG_INT, false},
        {NULL},
    };
    g_autoptr(GHashTable) opts = keyval_new();

    if (!qmp_args_check(args, spec, errp) ||
        !keyval_add_json(opts, args, NULL, errp) ||
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
    const ExportType *t;
    const char *mode;
    const char *id;
    bool hard;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    id = qmp_arg_str(args, "id", NULL);
    mode = qmp_arg_str(args, "mode", "safe");
    if (!strcmp(mode, "safe")) {
        hard = false;
    } else if (!strcmp(mode, "hard")) {
        hard = true;
    } else {
        error_setg(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return NULL;
    }
    t = type_of_id(id);
    if (!t) {
        error_setg(errp, "Export '%s' is not found", id);
        return NULL;
    }
    if (!t->del(id, hard, errp)) {
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_query_block_exports(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    for (size_t i = 0; i < N_TYPES; i++) {
        export_types[i].query(list);
    }
    return list;
}

const char *daemon_export_using_node(const char *node_name)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        const char *id = export_types[i].using_node(node_name);

        if (id) {
            return id;
        }
    }
    return NULL;
}

/* ---- teardown ------------------------------------------------------------ */

static void close_wait_expired(void *opaque)
{
    *(bool *)opaque = true;
}

static unsigned connections_left(void)
{
    unsigned n = 0;

    for (size_t i = 0; i < N_TYPES; i++) {
        n += export_types[i].connections();
    }
    return n;
}

void daemon_exports_cleanup(void)
{
    bool expired = false;
    AioTimer *timer;

    for (size_t i = 0; i < N_TYPES; i++) {
        export_types[i].cleanup();
    }
    /* Connections close in their IOThreads and report to the main loop;
     * the nodes are free once the last one is gone. */
    timer = aio_timer_new(main_loop_get_aio_context(), AIO_CLOCK_REALTIME,
                          AIO_SCALE_NS, close_wait_expired, &expired);
    aio_timer_mod_ns(timer, aio_clock_get_ns(AIO_CLOCK_REALTIME) +
                                EXPORT_CLOSE_WAIT_NS);
    while (connections_left() > 0 && !expired) {
        main_loop_wait(true);
    }
    aio_timer_free(timer);
}
