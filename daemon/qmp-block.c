/*
 * QMP commands on block nodes: blockdev-add, blockdev-del,
 * query-named-block-nodes, x-blockdev-set-iothread, block_resize.  Also
 * --blockdev, which runs the same code as blockdev-add, and the daemon's
 * teardown of the nodes.
 *
 * IOThread users: a node that runs in an IOThread is recorded as a user of
 * that IOThread's object ("block node 'disk0'"), so that object-del of the
 * IOThread is refused with a sentence saying what uses it.  The records
 * are recomputed from the graph after every change (nodes_sync_users), so
 * children that moved along with their parent are covered too.
 */
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "daemon.h"
#include "qmp-commands.h"

/* Nodes made by --blockdev / blockdev-add, in creation order (names). */
static GPtrArray *owned_nodes;
/* node name -> id of the IOThread object it is recorded as a user of. */
static GHashTable *node_users;

/* ---- IOThread users ----------------------------------------------------- */

typedef struct FindByCtx {
    AioContext *ctx;
    IOThread *found;
} FindByCtx;

static void find_by_ctx(IOThread *iothread, void *opaque)
{
    FindByCtx *f = opaque;

    if (iothread_get_aio_context(iothread) == f->ctx) {
        f->found = iothread;
    }
}

/* The IOThread whose context this is, or NULL (the main loop). */
static IOThread *iothread_of_ctx(AioContext *ctx)
{
    FindByCtx f = {.ctx = ctx};

    if (ctx != main_loop_get_aio_context()) {
        iothread_foreach(find_by_ctx, &f);
    }
    return f.found;
}

static char *user_name(const char *node_name)
{
    return g_strdup_printf("block node '%s'", node_name);
}

static void user_drop(const char *node_name, const char *iothread_id)
{
    Object *obj = object_find(iothread_id);
    g_autofree char *user = user_name(node_name);

    if (obj) {
        object_user_remove(obj, user);
    }
}

static void sync_one(BlockDriverState *bs, void *opaque)
{
    GHashTable *seen = opaque;
    const char *name = bdrv_get_node_name(bs);
    IOThread *t = iothread_of_ctx(bdrv_get_aio_context(bs));
    const char *want = t ? iothread_get_id(t) : NULL;
    const char *have = g_hash_table_lookup(node_users, name);

    g_hash_table_add(seen, g_strdup(name));
    if (g_strcmp0(want, have) == 0) {
        return;
    }
    if (have) {
        user_drop(name, have);
        g_hash_table_remove(node_users, name);
    }
    if (want && object_find(want)) {
        g_autofree char *user = user_name(name);

        object_user_add(object_find(want), user);
        g_hash_table_insert(node_users, g_strdup(name), g_strdup(want));
    }
}

/* Brings the IOThread user records in line with where the nodes run. */
static void nodes_sync_users(void)
{
    g_autoptr(GHashTable) seen =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer k, v;

    if (!node_users) {
        node_users =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    }
    bdrv_foreach_node(sync_one, seen);
    /* Nodes that are gone. */
    g_hash_table_iter_init(&it, node_users);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (!g_hash_table_contains(seen, k)) {
            user_drop(k, v);
            g_hash_table_iter_remove(&it);
        }
    }
}

bool daemon_node_set_iothread(BlockDriverState *bs, IOThread *iothread,
                              Error **errp)
{
    AioContext *ctx = iothread ? iothread_get_aio_context(iothread)
                               : main_loop_get_aio_context();
    bool ok;

    if (!daemon_check_running("move a node", errp)) {
        return false;
    }
    ok = bdrv_get_aio_context(bs) == ctx || bdrv_set_aio_context(bs, ctx, errp);
    nodes_sync_users();
    return ok;
}

/* ---- blockdev-add / --blockdev ------------------------------------------ */

bool daemon_blockdev_add(GHashTable *opts, Error **errp)
{
    BlockDriverState *bs;

    if (!g_hash_table_lookup(opts, "node-name")) {
        /* blockdev-add's rule: a node the monitor owns needs a name. */
        error_setg(errp, "Parameter 'node-name' is missing");
        return false;
    }
    bs = bdrv_open(opts, errp);
    if (!bs) {
        return false;
    }
    if (!owned_nodes) {
        owned_nodes = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(owned_nodes, g_strdup(bdrv_get_node_name(bs)));
    nodes_sync_users();
    return true;
}

json_t *qmp_cmd_blockdev_add(json_t *args, Error **errp)
{
    g_autoptr(GHashTable) opts = keyval_new();

    if (!json_object_get(args, "driver")) {
        error_setg(errp, "Parameter 'driver' is missing");
        return NULL;
    }
    if (!keyval_add_json(opts, args, NULL, errp) || !keyval_check(opts, errp) ||
        !daemon_blockdev_add(opts, errp)) {
        return NULL;
    }
    return json_object();
}

/* ---- blockdev-del -------------------------------------------------------- */

static bool owned_remove(const char *name)
{
    for (guint i = 0; owned_nodes && i < owned_nodes->len; i++) {
        if (!strcmp(g_ptr_array_index(owned_nodes, i), name)) {
            g_ptr_array_remove_index(owned_nodes, i);
            return true;
        }
    }
    return false;
}

static bool owned_contains(const char *name)
{
    for (guint i = 0; owned_nodes && i < owned_nodes->len; i++) {
        if (!strcmp(g_ptr_array_index(owned_nodes, i), name)) {
            return true;
        }
    }
    return false;
}

json_t *qmp_cmd_blockdev_del(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"node-name", QMP_ARG_STR, true},
        {NULL},
    };
    const char *name;
    const char *export_id;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    name = qmp_arg_str(args, "node-name", NULL);
    if (!bdrv_find_node(name)) {
        error_setg(errp, "Failed to find node with node-name='%s'", name);
        return NULL;
    }
    if (!owned_contains(name)) {
        error_setg(errp, "Node %s is not owned by the monitor", name);
        return NULL;
    }
    export_id = daemon_export_using_node(name);
    if (export_id) {
        error_setg(errp, "Node '%s' is in use by export '%s'", name, export_id);
        return NULL;
    }
    if (!daemon_check_running("delete a node", errp) ||
        !bdrv_blockdev_del(name, errp)) {
        return NULL;
    }
    owned_remove(name);
    nodes_sync_users();
    return json_object();
}

/* ---- query-named-block-nodes -------------------------------------------- */

static void node_info_append(BlockDriverState *bs, void *opaque)
{
    json_t *list = opaque;
    const char *drv = bdrv_get_driver_name(bs);
    const char *filename = bdrv_get_filename(bs);
    g_autofree char *file =
        filename ? g_strdup(filename) : g_strdup_printf("%s://", drv);
    json_t *info = json_pack(
        "{s:s,s:s,s:b,s:s,s:b,s:s,s:i,s:{s:s,s:s,s:I},s:{s:b,s:b,s:b}}",
        "node-name", bdrv_get_node_name(bs), "drv", drv, "ro",
        bdrv_is_read_only(bs), "file", file, "encrypted", 0, "detect_zeroes",
        "off", "backing_file_depth", 0, "image", "filename", file, "format",
        drv, "virtual-size", (json_int_t)bdrv_getlength(bs), "cache",
        "writeback", 1, "direct", 0, "no-flush", 0);
    static const char *const zero_limits[] = {
        "bps",     "bps_rd",  "bps_wr",          "iops",
        "iops_rd", "iops_wr", "write_threshold",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(zero_limits); i++) {
        json_object_set_new(info, zero_limits[i], json_integer(0));
    }
    json_array_append_new(list, info);
}

json_t *qmp_cmd_query_named_block_nodes(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"flat", QMP_ARG_BOOL, false},
        {NULL},
    };
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    bdrv_foreach_node(node_info_append, list);
    return list;
}

/* ---- x-blockdev-set-iothread -------------------------------------------- */

json_t *qmp_cmd_x_blockdev_set_iothread(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"node-name", QMP_ARG_STR, true},
        {"iothread", QMP_ARG_STR_OR_NULL, true},
        {"force", QMP_ARG_BOOL, false},
        {NULL},
    };
    const char *name;
    const char *id;
    const char *export_id;
    BlockDriverState *bs;
    IOThread *iothread = NULL;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    name = qmp_arg_str(args, "node-name", NULL);
    id = qmp_arg_str(args, "iothread", NULL); /* NULL for null */
    bs = bdrv_find_node(name);
    if (!bs) {
        error_setg(errp, "Failed to find node with node-name='%s'", name);
        return NULL;
    }
    /* As QEMU: a node someone uses only moves when the caller insists. */
    export_id = daemon_export_using_node(name);
    if (export_id && !qmp_arg_bool(args, "force", false)) {
        error_setg(errp,
                   "Node %s is in use by export '%s' (use force=true to "
                   "override this check)",
                   name, export_id);
        return NULL;
    }
    if (id) {
        iothread = iothread_find(id);
        if (!iothread) {
            error_setg(errp, "Cannot find iothread %s", id);
            return NULL;
        }
    }
    if (!daemon_node_set_iothread(bs, iothread, errp)) {
        return NULL;
    }
    return json_object();
}

/* ---- block_resize -------------------------------------------------------- */

json_t *qmp_cmd_block_resize(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"device", QMP_ARG_STR, false},
        {"node-name", QMP_ARG_STR, false},
        {"size", QMP_ARG_INT, true},
        {NULL},
    };
    const char *device;
    const char *name;
    int64_t size;
    BlockDriverState *bs;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    device = qmp_arg_str(args, "device", NULL);
    name = qmp_arg_str(args, "node-name", NULL);
    size = qmp_arg_int(args, "size", -1);
    /* qemu-storage-daemon has no devices (BlockBackends with a name): a
     * device argument never matches, and the node is found by node-name
     * alone, with QEMU's sentence when it is not. */
    bs = name ? bdrv_find_node(name) : NULL;
    if (!bs) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Cannot find device='%s' nor node-name='%s'",
                  device ? device : "", name ? name : "");
        return NULL;
    }
    if (size < 0) {
        error_setg(errp, "Parameter 'size' expects a >0 size");
        return NULL;
    }
    if (!daemon_check_running("resize a node", errp) ||
        !bdrv_truncate(bs, size, errp)) {
        return NULL;
    }
    return json_object();
}

/* ---- teardown ------------------------------------------------------------ */

static void flush_done(void *opaque, int ret)
{
    int *result = opaque;

    *result = ret;
}

/* Flushes bs and waits for it, running its context meanwhile. */
static void node_flush_sync(BlockDriverState *bs)
{
    AioContext *ctx = bdrv_get_aio_context(bs);
    int result = 1; /* flush_done stores 0 or -errno */

    aio_context_acquire(ctx);
    bdrv_aio_flush(bs, flush_done, &result);
    /* Bounded by the flush itself: its callback always runs. */
    while (result == 1) {
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
    if (result < 0) {
        error_report("flushing node '%s' failed: %s", bdrv_get_node_name(bs),
                     g_strerror(-result));
    }
}

void daemon_blockdevs_cleanup(void)
{
    bdrv_drain_all();
    /* Newest first, so that a node goes before the nodes it was built on. */
    while (owned_nodes && owned_nodes->len > 0) {
        guint last = owned_nodes->len - 1;
        const char *name = g_ptr_array_index(owned_nodes, last);
        BlockDriverState *bs = bdrv_find_node(name);
        Error *err = NULL;

        if (bs) {
            node_flush_sync(bs);
            if (!bdrv_blockdev_del(name, &err)) {
                error_report("closing node '%s': %s", name,
                             error_get_pretty(err));
                error_free(err);
            }
        }
        g_ptr_array_remove_index(owned_nodes, last);
    }
    g_clear_pointer(&owned_nodes, g_ptr_array_unref);
    if (node_users) {
        nodes_sync_users();
        g_clear_pointer(&node_users, g_hash_table_unref);
    }
}
