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
#include <sys/stat.h>

#include "block/block-int.h"
#include "block/throttle-groups.h"
#include "dataplane/input.h"
#include "dataplane/main-loop.h"
#include "dataplane/threadlet.h"
#include "util/atomic.h"

static const BlockDriver *const drivers[] = {
    &bdrv_file,     &bdrv_raw,   &bdrv_null_co, &bdrv_memory,
    &bdrv_throttle, &bdrv_qcow2, &bdrv_rbd,
};

/* Backing chains opened from image headers: deeper ones are refused (a
 * hostile header can name itself), and the files being opened, so that a
 * loop is named rather than recursed into. */
#define BACKING_CHAIN_MAX 256
static unsigned backing_open_depth;
static GHashTable *backing_opening; /* "dev:ino" of files in the chain */

/* Main loop thread: name -> node, and every node in opening order. */
static GHashTable *node_names;
static TAILQ_HEAD(, BlockDriverState) all_nodes =
    TAILQ_HEAD_INITIALIZER(all_nodes);
static unsigned next_auto_name;
/* Names of nodes whose bdrv_open_async() has not finished: taken. */
static GHashTable *pending_names;
/* Asynchronous opens and background closes not finished yet. */
static unsigned background_jobs;

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
    if (sub && bdrv_opt_get_bool(opts, "read-only", false) &&
        !g_hash_table_contains(sub, "read-only")) {
        /* As in QEMU, a read-only node opens its children read-only (so
         * that their image locks do not claim write access). */
        g_hash_table_insert(sub, g_strdup("read-only"), g_strdup("on"));
    }
    if (sub && bdrv_opt_get_bool(opts, "force-share", false) &&
        !g_hash_table_contains(sub, "force-share")) {
        /* As in QEMU, force-share reaches the children it opens. */
        g_hash_table_insert(sub, g_strdup("force-share"), g_strdup("on"));
        if (!g_hash_table_contains(sub, "read-only")) {
            g_hash_table_insert(sub, g_strdup("read-only"), g_strdup("on"));
        }
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

/*
 * The graph's edges (file, backing, parents) change in the main loop only,
 * but a drained section may read them from the node's own IOThread
 * (bdrv_graph_component(), with the context held): edges change with the
 * child's context held, which is the component's context.
 */
static void graph_link(BlockDriverState *child, BlockDriverState *parent)
{
    aio_context_acquire(child->ctx);
    g_ptr_array_add(child->parents, parent);
    aio_context_release(child->ctx);
}

static void graph_unlink(BlockDriverState *child, BlockDriverState *parent)
{
    aio_context_acquire(child->ctx);
    g_ptr_array_remove(child->parents, parent);
    aio_context_release(child->ctx);
}

/* Frees a node that is in no list, dropping its reference to its file
 * child: the end of both a failed bdrv_open() and bdrv_close(). */
static void bdrv_free(BlockDriverState *bs)
{
    if (bs->backing) {
        graph_unlink(bs->backing, bs);
        bdrv_unref(bs->backing);
    }
    if (bs->file) {
        bdrv_unref(bs->file);
    }
    g_free(bs->backing_file);
    g_free(bs->backing_format);
    g_ptr_array_free(bs->parents, true);
    g_array_free(bs->users, true);
    g_free(bs->opaque);
    g_free(bs->node_name);
    g_free(bs);
}

static void probe_done(void *opaque, int ret)
{
    int *result = opaque;

    *result = ret;
}

/* "qcow2" if the file node starts with the qcow2 magic, else "raw": the
 * format of a backing file whose image does not name it (as QEMU probes;
 * qemu-img create -F names it and then nothing is probed). */
static const char *probe_format(BlockDriverState *file)
{
    static const uint8_t magic[4] = {'Q', 'F', 'I', 0xfb};
    uint8_t buf[4] = {0};
    IOVector v;
    int result = 1;
    AioContext *ctx = file->ctx;

    if (file->total_bytes < 4) {
        return "raw";
    }
    iov_init(&v, 1);
    iov_add(&v, buf, sizeof(buf));
    aio_context_acquire(ctx);
    bdrv_aio_preadv(file, 0, &v, 0, probe_done, &result);
    /* Bounded by the read itself: its callback always runs. */
    while (result == 1) {
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
    iov_destroy(&v);
    return result == 0 && !memcmp(buf, magic, 4) ? "qcow2" : "raw";
}

/* The header's backing file name, relative to the image's directory. */
static char *backing_path(BlockDriverState *bs, Error **errp)
{
    const char *name = bs->backing_file;
    const char *image = bdrv_get_filename(bs);
    g_autofree char *dir = NULL;

    if (strstr(name, "://") || g_str_has_prefix(name, "json:")) {
        error_setg(errp,
                   "Backing file '%s' is not a local file name (protocols "
                   "and json: names are not supported; give backing=<node>)",
                   name);
        return NULL;
    }
    if (g_path_is_absolute(name) || !image) {
        return g_strdup(name);
    }
    dir = g_path_get_dirname(image);
    return g_build_filename(dir, name, NULL);
}

/* Opens the backing file the header names, read-only. */
static BlockDriverState *open_backing_file(BlockDriverState *bs,
                                           GHashTable *opts, Error **errp)
{
    g_autofree char *path = backing_path(bs, errp);
    g_autoptr(GHashTable) fopts = NULL;
    g_autoptr(GHashTable) bopts = NULL;
    g_autofree char *key = NULL;
    BlockDriverState *file, *backing;
    const char *fmt = bs->backing_format;
    Error *local_err = NULL;
    struct stat st;

    if (!path) {
        return NULL;
    }
    if (backing_open_depth >= BACKING_CHAIN_MAX) {
        error_setg(errp, "Backing chain is longer than %d images at '%s'",
                   BACKING_CHAIN_MAX, path);
        return NULL;
    }
    if (stat(path, &st) < 0) {
        error_setg_errno(errp, errno, "Could not open backing file '%s'", path);
        return NULL;
    }
    key =
        g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    if (!backing_opening) {
        backing_opening =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    if (g_hash_table_contains(backing_opening, key)) {
        error_setg(errp, "Backing chain loops: '%s' is its own backing file",
                   path);
        return NULL;
    }
    if (fmt && strcmp(fmt, "raw") && strcmp(fmt, "qcow2")) {
        error_setg(errp,
                   "Backing file '%s' has format '%s'; only raw and qcow2 "
                   "backing files are supported",
                   path, fmt);
        return NULL;
    }
    fopts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(fopts, g_strdup("driver"), g_strdup("file"));
    g_hash_table_insert(fopts, g_strdup("filename"), g_strdup(path));
    g_hash_table_insert(fopts, g_strdup("read-only"), g_strdup("on"));
    if (bs->force_share) {
        g_hash_table_insert(fopts, g_strdup("force-share"), g_strdup("on"));
    }
    {
        /* The parent's inline file options that a backing file inherits. */
        static const char *const keys[] = {"aio", "cache.direct", "locking"};
        size_t i;

        for (i = 0; i < G_N_ELEMENTS(keys); i++) {
            g_autofree char *pk = g_strconcat("file.", keys[i], NULL);
            const char *v = bdrv_opt_get(opts, pk);

            if (v) {
                g_hash_table_insert(fopts, g_strdup(keys[i]), g_strdup(v));
            }
        }
    }
    file = bdrv_open(fopts, errp);
    if (!file) {
        return NULL;
    }
    if (!fmt) {
        fmt = probe_format(file);
    }
    bopts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(bopts, g_strdup("driver"), g_strdup(fmt));
    g_hash_table_insert(bopts, g_strdup("file"), g_strdup(file->node_name));
    g_hash_table_insert(bopts, g_strdup("read-only"), g_strdup("on"));
    if (bs->force_share) {
        g_hash_table_insert(bopts, g_strdup("force-share"), g_strdup("on"));
    }
    g_hash_table_add(backing_opening, g_strdup(key));
    backing_open_depth++;
    backing = bdrv_open(bopts, &local_err);
    backing_open_depth--;
    g_hash_table_remove(backing_opening, key);
    bdrv_unref(file); /* the format node holds its own reference */
    if (!backing) {
        error_propagate(errp, local_err);
        error_prepend(errp, "Could not open backing file '%s': ", path);
    }
    return backing;
}

/*
 * Gives bs its `backing` child: backing=<node-name>, backing=null (none),
 * inline backing.* options, or else the file the driver's open found in
 * the image header.  The child joins bs's AioContext (its graph moves
 * there if it runs elsewhere).  False with *errp on failure.
 */
static bool open_backing(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    const char *ref = bdrv_opt_get(opts, "backing");
    g_autoptr(GHashTable) sub = bdrv_opts_extract_child(opts, "backing");
    BlockDriverState *backing = NULL;
    struct stat st;
    g_autofree char *self = NULL;
    const char *image = bdrv_get_filename(bs);

    if (ref && sub) {
        error_setg(errp, "Parameter 'backing' is given both as a node name "
                         "and as backing.* options");
        return false;
    }
    if (ref && !strcmp(ref, "null")) {
        return true;
    }
    if (ref) {
        backing = bdrv_find_node(ref);
        if (!backing) {
            error_setg(errp, "Cannot find node '%s' (parameter 'backing')",
                       ref);
            return false;
        }
        if (backing == bs) {
            error_setg(errp, "Node '%s' cannot be its own backing node", ref);
            return false;
        }
        bdrv_ref(backing);
    } else if (sub) {
        Error *local_err = NULL;

        if (!g_hash_table_contains(sub, "read-only")) {
            g_hash_table_insert(sub, g_strdup("read-only"), g_strdup("on"));
        }
        backing = bdrv_open(sub, &local_err);
        if (!backing) {
            error_propagate(errp, local_err);
            error_prepend(errp, "backing: ");
            return false;
        }
    } else if (bs->backing_file) {
        /* The top image itself counts for loop detection. */
        if (image && stat(image, &st) == 0) {
            self = g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev,
                                   (uintmax_t)st.st_ino);
            if (!backing_opening) {
                backing_opening = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                        g_free, NULL);
            }
            if (g_hash_table_contains(backing_opening, self)) {
                g_clear_pointer(&self, g_free);
            } else {
                g_hash_table_add(backing_opening, g_strdup(self));
            }
        }
        backing = open_backing_file(bs, opts, errp);
        if (self) {
            g_hash_table_remove(backing_opening, self);
        }
        if (!backing) {
            return false;
        }
    } else {
        return true;
    }
    if (backing->ctx != bs->ctx &&
        !bdrv_set_aio_context(backing, bs->ctx, errp)) {
        bdrv_unref(backing);
        return false;
    }
    bs->backing = backing;
    graph_link(backing, bs);
    return true;
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
                   "(file, raw, qcow2, null-co, memory, throttle or rbd)",
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
        if (bdrv_find_node(node_name) ||
            (pending_names &&
             g_hash_table_contains(pending_names, node_name))) {
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
    bs->force_share = bdrv_opt_get_bool(opts, "force-share", false);
    bs->detect_zeroes =
        parse_detect_zeroes(bdrv_opt_get(opts, "detect-zeroes"));
    bs->parents = g_ptr_array_new();
    bs->users = g_array_new(false, false, sizeof(BlockUser));
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
    ret = bs->drv->bdrv_open(bs, opts, errp);
    aio_context_release(ctx);
    return ret >= 0;
}

/* Step 6: the node becomes known: to its child, by name, in the list. */
static void open_register(BlockDriverState *bs)
{
    if (bs->file) {
        graph_link(bs->file, bs);
    }
    if (!node_names) {
        node_names = g_hash_table_new(g_str_hash, g_str_equal);
    }
    g_hash_table_insert(node_names, bs->node_name, bs);
    TAILQ_INSERT_TAIL(&all_nodes, bs, all_next);
}

/* Undoes open_start() after the driver's bdrv_open succeeded. */
static void open_abort(BlockDriverState *bs)
{
    AioContext *ctx = bs->ctx;

    aio_context_acquire(ctx);
    bs->drv->bdrv_close(bs);
    aio_context_release(ctx);
    bdrv_free(bs);
}

/* Steps 1 to 5b: a node opened by its driver, in no list yet (the caller
 * registers or aborts it), or NULL and *errp. */
static BlockDriverState *open_start(GHashTable *opts, Error **errp)
{
    const BlockDriver *drv;
    BlockDriverState *bs;
    BlockDriverState *file = NULL;
    Error *local_err = NULL;

    bdrv_assert_main_loop("bdrv_open");
    drv = open_check_options(opts, errp);
    if (!drv) {
        return NULL;
    }
    if (bdrv_opt_get_bool(opts, "force-share", false) &&
        !bdrv_opt_get_bool(opts, "read-only", false)) {
        error_setg(errp, "force-share=on can only be used with read-only "
                         "images");
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
    /* Step 5b: the backing child, now that the driver found its name. */
    if (drv->supports_backing && !open_backing(bs, opts, &local_err)) {
        error_propagate(errp, local_err);
        open_abort(bs);
        return NULL;
    }
    return bs;
}

BlockDriverState *bdrv_open(GHashTable *opts, Error **errp)
{
    BlockDriverState *bs = open_start(opts, errp);

    if (!bs) {
        return NULL;
    }
    /* A driver that waits on the network waits here (bdrv_open_async()
     * waits on a threadlet instead). */
    if (bs->drv->bdrv_open_blocking &&
        bs->drv->bdrv_open_blocking(bs, errp) < 0) {
        open_abort(bs);
        return NULL;
    }
    open_register(bs);
    return bs;
}

typedef struct OpenJob {
    BlockDriverState *bs;
    BlockOpenFunc *cb;
    void *opaque;
    Error *err; /* set by the threadlet */
} OpenJob;

/* A threadlet: the driver's wait on the network. */
static int open_job_run(void *arg)
{
    OpenJob *job = arg;

    return job->bs->drv->bdrv_open_blocking(job->bs, &job->err);
}

/* Main loop: the open's end. */
static void open_job_done(void *opaque, int ret)
{
    OpenJob *job = opaque;
    BlockDriverState *bs = job->bs;

    g_hash_table_remove(pending_names, bs->node_name);
    if (ret < 0) {
        if (!job->err) {
            error_setg_errno(&job->err, -ret, "Could not open node '%s'",
                             bs->node_name);
        }
        open_abort(bs);
        bs = NULL;
    } else {
        open_register(bs);
    }
    job->cb(job->opaque, bs, job->err);
    g_free(job);
    bdrv_background_end();
}

void bdrv_open_async(GHashTable *opts, BlockOpenFunc *cb, void *opaque)
{
    Error *err = NULL;
    BlockDriverState *bs = open_start(opts, &err);
    OpenJob *job;

    if (!bs || !bs->drv->bdrv_open_blocking) {
        if (bs) {
            open_register(bs);
        }
        cb(opaque, bs, err);
        return;
    }
    if (!pending_names) {
        pending_names =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    g_hash_table_add(pending_names, g_strdup(bs->node_name));
    job = g_new0(OpenJob, 1);
    job->bs = bs;
    job->cb = cb;
    job->opaque = opaque;
    bdrv_background_begin();
    threadlet_submit_aio(main_loop_get_aio_context(), open_job_run, job,
                         open_job_done, job);
}

void bdrv_background_begin(void)
{
    bdrv_assert_main_loop(__func__);
    background_jobs++;
}

void bdrv_background_end(void)
{
    bdrv_assert_main_loop(__func__);
    g_assert(background_jobs > 0);
    background_jobs--;
}

void bdrv_wait_background(void)
{
    AioContext *ctx = main_loop_get_aio_context();

    bdrv_assert_main_loop(__func__);
    aio_context_acquire(ctx);
    /* Bounded by the drivers' own timeouts (rbd: the cluster's). */
    while (background_jobs > 0) {
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
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
    aio_context_release(ctx);

    if (file) {
        graph_unlink(file, bs);
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

        error_setg(errp, "Node '%s' is busy: it is the %s child of '%s'",
                   node_name, parent->file == bs ? "file" : "backing",
                   parent->node_name);
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
        if (n->backing && !g_ptr_array_find(nodes, n->backing, NULL)) {
            g_ptr_array_add(nodes, n->backing);
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

static void snapshot_info_free(gpointer p)
{
    BdrvSnapshotInfo *sn = p;

    g_free(sn->id);
    g_free(sn->name);
    g_free(sn);
}

GPtrArray *bdrv_list_snapshots(BlockDriverState *bs)
{
    GPtrArray *list = g_ptr_array_new_with_free_func(snapshot_info_free);

    if (bs->drv->bdrv_snapshot_list) {
        bs->drv->bdrv_snapshot_list(bs, list);
    }
    return list;
}

BlockDriverState *bdrv_get_backing_child(BlockDriverState *bs)
{
    return bs->backing;
}

int bdrv_get_backing_depth(BlockDriverState *bs)
{
    int depth = 0;

    /* Through filters too: a raw node over a qcow2 one has its chain. */
    while (bs) {
        if (bs->backing) {
            depth++;
            bs = bs->backing;
        } else if (bs->drv == &bdrv_raw || bs->drv == &bdrv_throttle) {
            bs = bs->file;
        } else {
            break;
        }
    }
    return depth;
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
    return bdrv_in_flight_sum(bs);
}

AioContext *bdrv_get_aio_context(BlockDriverState *bs)
{
    return dp_atomic_load_acquire(&bs->ctx);
}
