/*
 * The node graph: the node-name registry, opening and closing nodes, their
 * `file` children and reference counts.
 *
 * The registry and the graph's shape belong to the main loop thread; I/O
 * paths never look at them (they follow bs->file, which only changes when
 * the node is opened or closed).
 */
#include <errno.h>
#include <string.h>

#include "block/block-int.h"
#include "block/throttle-groups.h"
#include "dataplane/input.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"

static const BlockDriver *const drivers[] = {
    &bdrv_file, &bdrv_raw, &bdrv_null_co, &bdrv_memory, &bdrv_throttle,
};

/* Main loop thread: name -> node, and every node in opening order. */
static GHashTable *node_names;
static TAILQ_HEAD(, BlockDriverState) all_nodes =
    TAILQ_HEAD_INITIALIZER(all_nodes);
static unsigned next_auto_name;

void bdrv_assert_main_loop(const char *fn)
{
    if (!main_loop_is_main_thread()) {
        g_error("%s: graph changes belong to the main loop thread (call "
                "main_loop_init() first, and call this from that thread)",
                fn);
    }
}

void bdrv_init(void)
{
    bdrv_assert_main_loop(__func__);
    throttle_groups_init();
}

const BlockDriver *bdrv_find_driver(const char *name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (!strcmp(drivers[i]->format_name, name)) {
            return drivers[i];
        }
    }
    return NULL;
}

BlockDriverState *bdrv_find_node(const char *node_name)
{
    return node_names ? g_hash_table_lookup(node_names, node_name) : NULL;
}

/* Opens or looks up the `file` child named by opts.  Returns a new
 * reference, NULL with *errp on failure, NULL without error if none. */
static BlockDriverState *open_file_child(const BlockDriver *drv,
                                         GHashTable *opts, Error **errp)
{
    const char *ref = bdrv_opt_get(opts, "file");
    g_autoptr(GHashTable) sub = bdrv_opts_extract_child(opts, "file");
    BlockDriverState *child;

    if (ref && sub) {
        error_setg(errp, "Parameter 'file' is given both as a node name and "
                         "as file.* options");
        return NULL;
    }
    if (ref) {
        child = bdrv_find_node(ref);
        if (!child) {
            error_setg(errp, "Cannot find node '%s' (parameter 'file')", ref);
            return NULL;
        }
        bdrv_ref(child);
        return child;
    }
    if (sub) {
        Error *local_err = NULL;

        child = bdrv_open(sub, &local_err);
        if (!child) {
            error_propagate(errp, local_err);
            error_prepend(errp, "file: ");
        }
        return child;
    }
    if (drv->file_child_required) {
        error_setg(errp, "Parameter 'file' is required by driver '%s'",
                   drv->format_name);
    }
    return NULL;
}

/* Frees a node that is in no list, dropping its reference to its file
 * child: the end of both a failed bdrv_open() and bdrv_close(). */
static void bdrv_free(BlockDriverState *bs)
{
    if (bs->file) {
        bdrv_unref(bs->file);
    }
    g_ptr_array_free(bs->parents, true);
    g_array_free(bs->users, true);
    g_free(bs->opaque);
    g_free(bs->node_name);
    g_free(bs);
}

/*
 * bdrv_open, step 1: the driver named by opts, once every key is known to
 * it and the node name is valid and free.  NULL and *errp otherwise.
 */
static const BlockDriver *open_check_options(GHashTable *opts, Error **errp)
{
    const char *drv_name = bdrv_opt_get(opts, "driver");
    const char *node_name = bdrv_opt_get(opts, "node-name");
    const BlockDriver *drv;

    if (!drv_name) {
        error_setg(errp, "Parameter 'driver' is required");
        return NULL;
    }
    drv = bdrv_find_driver(drv_name);
    if (!drv) {
        error_setg(errp,
                   "Parameter 'driver' does not accept value '%s' "
                   "(file, raw, null-co, memory or throttle)",
                   drv_name);
        return NULL;
    }
    if (!bdrv_opts_validate(drv, opts, errp)) {
        return NULL;
    }
    if (node_name) {
        /* Generated names start with '#', which input_check_id()
         * refuses, so the two never collide. */
        if (!input_check_id("node-name", node_name, errp)) {
            return NULL;
        }
        if (bdrv_find_node(node_name)) {
            error_setg(errp, "Duplicate nodes with node-name='%s'", node_name);
            return NULL;
        }
    }
    return drv;
}

static int parse_detect_zeroes(const char *value)
{
    if (!value || !strcmp(value, "off")) {
        return BDRV_DETECT_ZEROES_OFF;
    }
    return !strcmp(value, "on") ? BDRV_DETECT_ZEROES_ON
                                : BDRV_DETECT_ZEROES_UNMAP;
}

/* Step 3: a node not yet opened by its driver nor known to anyone, with
 * the common options applied and its name (given or generated). */
static BlockDriverState *open_new_node(const BlockDriver *drv, GHashTable *opts)
{
    const char *node_name = bdrv_opt_get(opts, "node-name");
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = drv;
    bs->refcnt = 1;
    bs->opaque = drv->instance_size ? g_malloc0(drv->instance_size) : NULL;
    bs->read_only = bdrv_opt_get_bool(opts, "read-only", false);
    bs->no_flush = bdrv_opt_get_bool(opts, "cache.no-flush", false);
    bs->detect_zeroes =
        parse_detect_zeroes(bdrv_opt_get(opts, "detect-zeroes"));
    bs->parents = g_ptr_array_new();
    bs->users = g_array_new(false, false, sizeof(BlockUser));
    STAILQ_INIT(&bs->done_list);
    if (node_name) {
        bs->node_name = g_strdup(node_name);
    } else {
        /* A generated name may have been taken by an earlier user-named
         * node only if it started with '#', which is not allowed. */
        bs->node_name = g_strdup_printf("#block%u", next_auto_name++);
    }
    return bs;
}

/*
 * Step 4: bs takes its file child (may be NULL), becoming read-only with
 * it if auto-read-only allows, and joins its AioContext: the connected
 * graph shares one.  Without a child, the main loop's.
 */
static bool open_attach_file(BlockDriverState *bs, BlockDriverState *file,
                             GHashTable *opts, Error **errp)
{
    bs->file = file;
    bs->ctx = file ? file->ctx : main_loop_get_aio_context();
    if (!file || !file->read_only || bs->read_only) {
        return true;
    }
    if (bdrv_opt_get_bool(opts, "auto-read-only", false)) {
        bs->read_only = true;
        return true;
    }
    error_setg(errp,
               "Cannot open '%s' read-write: its file child "
               "'%s' is read-only (add read-only=on)",
               bdrv_opt_get(opts, "node-name") ? bs->node_name
                                               : bs->drv->format_name,
               file->node_name);
    return false;
}

/* Step 5: the driver's open, in the node's context. */
static bool open_driver(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    AioContext *ctx = bs->ctx;
    int ret;

    aio_context_acquire(ctx);
    bdrv_io_attach(bs, ctx);
    ret = bs->drv->bdrv_open(bs, opts, errp);
    if (ret < 0) {
        bdrv_io_detach(bs);
    }
    aio_context_release(ctx);
    return ret >= 0;
}

/* Step 6: the node becomes known: to its child, by name, in the list. */
static void open_register(BlockDriverState *bs)
{
    if (bs->file) {
        g_ptr_array_add(bs->file->parents, bs);
    }
    if (!node_names) {
        node_names = g_hash_table_new(g_str_hash, g_str_equal);
    }
    g_hash_table_insert(node_names, bs->node_name, bs);
    TAILQ_INSERT_TAIL(&all_nodes, bs, all_next);
}

BlockDriverState *bdrv_open(GHashTable *opts, Error **errp)
{
    const BlockDriver *drv;
    BlockDriverState *bs;
    BlockDriverState *file = NULL;
    Error *local_err = NULL;

    bdrv_assert_main_loop(__func__);
    drv = open_check_options(opts, errp);
    if (!drv) {
        return NULL;
    }
    /* Step 2: the file child, opened or looked up (a reference). */
    if (drv->has_file_child) {
        file = open_file_child(drv, opts, &local_err);
        if (local_err) {
            error_propagate(errp, local_err);
            return NULL;
        }
    }
    bs = open_new_node(drv, opts);
    if (!open_attach_file(bs, file, opts, errp) ||
        !open_driver(bs, opts, errp)) {
        bdrv_free(bs); /* drops the child's reference too */
        return NULL;
    }
    open_register(bs);
    return bs;
}

void bdrv_ref(BlockDriverState *bs)
{
    dp_atomic_fetch_add_seq_cst(&bs->refcnt, 1);
}

static void bdrv_close(BlockDriverState *bs)
{
    AioContext *ctx = bs->ctx;
    BlockDriverState *file = bs->file;

    bdrv_assert_main_loop("bdrv_unref (of the last reference)");
    bdrv_drain(bs);
    g_assert(bs->users->len == 0);
    g_assert(bs->parents->len == 0);

    g_hash_table_remove(node_names, bs->node_name);
    TAILQ_REMOVE(&all_nodes, bs, all_next);

    aio_context_acquire(ctx);
    bs->drv->bdrv_close(bs);
    bdrv_io_detach(bs);
    aio_context_release(ctx);

    if (file) {
        g_ptr_array_remove(file->parents, bs);
    }
    bdrv_free(bs);
}

void bdrv_unref(BlockDriverState *bs)
{
    if (dp_atomic_fetch_sub_seq_cst(&bs->refcnt, 1) == 1) {
        bdrv_close(bs);
    }
}

bool bdrv_blockdev_del(const char *node_name, Error **errp)
{
    BlockDriverState *bs;
    bool busy;

    bdrv_assert_main_loop(__func__);
    bs = bdrv_find_node(node_name);
    if (!bs) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Failed to find node with node-name='%s'", node_name);
        return false;
    }
    if (bs->parents->len > 0) {
        BlockDriverState *parent = g_ptr_array_index(bs->parents, 0);

        error_setg(errp, "Node '%s' is busy: it is the file child of '%s'",
                   node_name, parent->node_name);
        return false;
    }
    /* Users register from the node's context too: look with it held. */
    aio_context_acquire(bs->ctx);
    busy = bs->users->len > 0 || dp_atomic_load_seq_cst(&bs->refcnt) > 1;
    aio_context_release(bs->ctx);
    if (busy) {
        error_setg(errp, "Node '%s' is busy: it is in use (by an export?)",
                   node_name);
        return false;
    }
    bdrv_unref(bs);
    return true;
}

void bdrv_foreach_node(BlockNodeFunc *fn, void *opaque)
{
    BlockDriverState *bs;

    TAILQ_FOREACH(bs, &all_nodes, all_next)
    {
        fn(bs, opaque);
    }
}

GPtrArray *bdrv_graph_component(BlockDriverState *bs)
{
    GPtrArray *nodes = g_ptr_array_new();
    guint i, j;

    g_ptr_array_add(nodes, bs);
    /* Breadth first over `file` edges in both directions; the graphs are
     * a handful of nodes, so the linear membership test is fine. */
    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        if (n->file && !g_ptr_array_find(nodes, n->file, NULL)) {
            g_ptr_array_add(nodes, n->file);
        }
        for (j = 0; j < n->parents->len; j++) {
            BlockDriverState *p = g_ptr_array_index(n->parents, j);

            if (!g_ptr_array_find(nodes, p, NULL)) {
                g_ptr_array_add(nodes, p);
            }
        }
    }
    return nodes;
}

const char *bdrv_get_node_name(BlockDriverState *bs)
{
    return bs->node_name;
}

const char *bdrv_get_driver_name(BlockDriverState *bs)
{
    return bs->drv->format_name;
}

const char *bdrv_get_filename(BlockDriverState *bs)
{
    for (; bs; bs = bs->file) {
        if (bs->drv == &bdrv_file) {
            return bdrv_file_get_filename(bs);
        }
    }
    return NULL;
}

BlockDriverState *bdrv_get_file_child(BlockDriverState *bs)
{
    return bs->file;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    return bs->total_bytes;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

unsigned bdrv_get_in_flight(BlockDriverState *bs)
{
    return dp_atomic_load_seq_cst(&bs->in_flight);
}

AioContext *bdrv_get_aio_context(BlockDriverState *bs)
{
    return dp_atomic_load_acquire(&bs->ctx);
}
