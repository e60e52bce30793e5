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

bool bdrv_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    AioContext *ctx;
    int ret;

    bdrv_assert_main_loop(__func__);
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

    bdrv_drained_begin(bs);
    ctx = bdrv_get_aio_context(bs);
    aio_context_acquire(ctx);
    ret = bs->drv->bdrv_truncate(bs, size, errp);
    if (ret == 0) {
        bdrv_size_changed(bs, size);
    }
    aio_context_release(ctx);
    bdrv_drained_end(bs);
    return ret == 0;
}
