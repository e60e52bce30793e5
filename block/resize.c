/*
 * block_resize: bdrv_truncate() and the propagation of a new size to the
 * users of a node and to the parents whose size follows their child's.
 *
 * A resize runs in the main loop inside a drained section of the node's
 * whole graph, with its context held: no request is in flight and none
 * starts, so the new size is what every later request is checked against
 * (the context's lock orders the write before the IOThread's reads).
 */
#include <errno.h>
#include <inttypes.h>

#include "block/block-int.h"
#include "dataplane/main-loop.h"
#include "dataplane/threadlet.h"

void bdrv_size_changed(BlockDriverState *bs, int64_t size)
{
    g_autoptr(GPtrArray) parents = NULL;
    guint i;

    if (bs->total_bytes == size) {
        return;
    }
    bs->total_bytes = size;
    bdrv_users_resized(bs);
    /* A copy: nothing here should change the graph, but a hook that did
     * must not leave us walking a freed array. */
    parents = g_ptr_array_copy(bs->parents, NULL, NULL);
    for (i = 0; i < parents->len; i++) {
        BlockDriverState *p = g_ptr_array_index(parents, i);

        if (p->drv->bdrv_child_resized) {
            p->drv->bdrv_child_resized(p);
        }
    }
}

/* The refusals, common to both forms. */
static bool truncate_check(BlockDriverState *bs, int64_t size, Error **errp)
{
    bdrv_assert_main_loop("bdrv_truncate");
    if (size < 0) {
        error_setg(errp, "Image size cannot be negative");
        return false;
    }
    if (bs->read_only) {
        error_setg(errp, "Cannot resize node '%s': it is read-only",
                   bs->node_name);
        return false;
    }
    if (!bs->drv->bdrv_truncate) {
        error_setg(errp,
                   "Cannot resize node '%s': driver '%s' does not support "
                   "resize",
                   bs->node_name, bs->drv->format_name);
        return false;
    }
    if (size < bs->total_bytes && !bs->drv->supports_shrink) {
        error_setg(errp,
                   "Cannot shrink node '%s' from %" PRId64 " to %" PRId64
                   " bytes: driver '%s' can only grow",
                   bs->node_name, bs->total_bytes, size, bs->drv->format_name);
        return false;
    }
    if (bs->resizing) {
        error_setg(errp, "Node '%s' is being resized already", bs->node_name);
        return false;
    }
    return true;
}

/* Records the new size after the driver's success; ends the section. */
static void truncate_finish(BlockDriverState *bs, int64_t size, int ret)
{
    AioContext *ctx = bdrv_get_aio_context(bs);

    if (ret == 0) {
        aio_context_acquire(ctx);
        bdrv_size_changed(bs, size);
        aio_context_release(ctx);
    }
    bdrv_drained_end(bs);
}

bool bdrv_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    AioContext *ctx;
    int ret;

    if (!truncate_check(bs, size, errp)) {
        return false;
    }
    bdrv_drained_begin(bs);
    ctx = bdrv_get_aio_context(bs);
    aio_context_acquire(ctx);
    ret = bs->drv->bdrv_truncate(bs, size, errp);
    aio_context_release(ctx);
    truncate_finish(bs, size, ret);
    return ret == 0;
}

typedef struct TruncateJob {
    BlockDriverState *bs;
    int64_t size;
    BlockTruncateFunc *cb;
    void *opaque;
    Error *err; /* set by the threadlet */
} TruncateJob;

/* A threadlet: the driver's wait (the node is drained, no lock held). */
static int truncate_job_run(void *arg)
{
    TruncateJob *job = arg;

    return job->bs->drv->bdrv_truncate(job->bs, job->size, &job->err);
}

static void truncate_job_done(void *opaque, int ret)
{
    TruncateJob *job = opaque;
    BlockDriverState *bs = job->bs;

    if (ret < 0 && !job->err) {
        error_setg_errno(&job->err, -ret, "Cannot resize node '%s'",
                         bs->node_name);
    }
    truncate_finish(bs, job->size, ret);
    bs->resizing = false;
    job->cb(job->opaque, job->err);
    bdrv_unref(bs);
    g_free(job);
    bdrv_background_end();
}

void bdrv_truncate_async(BlockDriverState *bs, int64_t size,
                         BlockTruncateFunc *cb, void *opaque)
{
    Error *err = NULL;
    TruncateJob *job;

    if (!bs->drv->truncate_blocks) {
        bdrv_truncate(bs, size, &err);
        cb(opaque, err);
        return;
    }
    if (!truncate_check(bs, size, &err)) {
        cb(opaque, err);
        return;
    }
    job = g_new0(TruncateJob, 1);
    job->bs = bs;
    job->size = size;
    job->cb = cb;
    job->opaque = opaque;
    /* The node stays drained (its users paused) and referenced (it cannot
     * be deleted) until the driver is done. */
    bs->resizing = true;
    bdrv_ref(bs);
    bdrv_drained_begin(bs);
    bdrv_background_begin();
    threadlet_submit_aio(main_loop_get_aio_context(), truncate_job_run, job,
                         truncate_job_done, job);
}
