/*
 * The request path: checks, in-flight tracking, deferred completion and FUA
 * emulation, common to every driver.
 *
 * Every request is counted in bs->in_flight from the submit call until just
 * before its callback runs, which is what drain waits on.  The count is
 * changed only in the node's context (by its thread or a thread holding
 * it) and read by drain with the context held, so plain seq_cst atomics
 * suffice and no lock is needed.
 */
#include <errno.h>

#include "block/block-int.h"
#include "util/atomic.h"

static void bdrv_done_bh(void *opaque);

void bdrv_assert_can_submit(BlockDriverState *bs)
{
    AioContext *ctx = bdrv_get_aio_context(bs);

    if (!aio_context_in_current_thread(ctx)) {
        g_error("block I/O on node '%s' from a thread that neither runs its "
                "AioContext nor holds it (include/dataplane/block.h: submit "
                "from the node's context, or acquire it)",
                bdrv_get_node_name(bs));
    }
}

void bdrv_io_attach(BlockDriverState *bs, AioContext *ctx)
{
    bs->done_bh = aio_bh_new(ctx, bdrv_done_bh, bs);
}

void bdrv_io_detach(BlockDriverState *bs)
{
    /* Nothing is in flight, so nothing waits on the queue. */
    g_assert(STAILQ_EMPTY(&bs->done_list));
    aio_bh_delete(bs->done_bh);
    bs->done_bh = NULL;
}

static BdrvRequest *request_new(BlockDriverState *bs, BdrvRequestType type,
                                int64_t offset, int64_t bytes, IOVector *qiov,
                                int flags)
{
    BdrvRequest *req;

    /* Every bdrv_aio_* entry point comes through here. */
    bdrv_assert_can_submit(bs);
    req = g_new0(BdrvRequest, 1);

    req->bs = bs;
    req->type = type;
    req->offset = offset;
    req->bytes = bytes;
    req->qiov = qiov;
    req->flags = flags;
    dp_atomic_fetch_add_seq_cst(&bs->in_flight, 1);
    return req;
}

static void request_finish(BdrvRequest *req, int ret)
{
    BlockDriverState *bs = req->bs;

    /* Drop the count before the callback: a callback that drains (or
     * submits and then drains) must not wait for itself. */
    dp_atomic_fetch_sub_seq_cst(&bs->in_flight, 1);
    if (req->type == BDRV_REQUEST_STATUS) {
        req->status_cb(req->opaque, ret, ret < 0 ? 0 : req->pnum,
                       ret < 0 ? 0 : req->status);
    } else {
        req->cb(req->opaque, ret);
    }
    g_free(req);
}

void bdrv_request_complete(BdrvRequest *req, int ret)
{
    BlockDriverState *bs = req->bs;

    if (ret == 0 && req->fua_pending) {
        /* The write is done; make it stable before reporting it. */
        req->fua_pending = false;
        req->type = BDRV_REQUEST_FLUSH;
        bs->drv->bdrv_aio_flush(bs, req);
        return;
    }
    request_finish(req, ret);
}

void bdrv_request_complete_later(BdrvRequest *req, int ret)
{
    BlockDriverState *bs = req->bs;

    req->ret = ret;
    STAILQ_INSERT_TAIL(&bs->done_list, req, done_next);
    aio_bh_schedule(bs->done_bh);
}

static void bdrv_done_bh(void *opaque)
{
    BlockDriverState *bs = opaque;
    BdrvRequest *req;
    /* Only the requests queued so far: one completed here that submits
     * again re-schedules the BH rather than looping forever. */
    STAILQ_HEAD(, BdrvRequest) batch = STAILQ_HEAD_INITIALIZER(batch);

    STAILQ_CONCAT(&batch, &bs->done_list);
    while ((req = STAILQ_FIRST(&batch))) {
        STAILQ_REMOVE_HEAD(&batch, done_next);
        bdrv_request_complete(req, req->ret);
    }
}

/* Checks the range; 0 or -errno. */
static int check_range(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    if (offset < 0 || bytes < 0 || offset > bs->total_bytes ||
        bytes > bs->total_bytes - offset) {
        return -EINVAL;
    }
    return 0;
}

static int check_write(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    if (bs->read_only) {
        return -EPERM;
    }
    return check_range(bs, offset, bytes);
}

/*
 * Starts a read, write, discard or write-zeroes request: counts it in
 * flight, then checks the range (and, for all but a read, that the node is
 * writable) and that flags holds no bit outside allowed_flags.  Returns
 * the request for the driver, or NULL when it has been queued to complete
 * with the error or, having no byte to touch, with success.
 */
static BdrvRequest *request_start(BlockDriverState *bs, BdrvRequestType type,
                                  int64_t offset, int64_t bytes, IOVector *qiov,
                                  int flags, int allowed_flags,
                                  BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req = request_new(bs, type, offset, bytes, qiov, flags);
    int ret = type == BDRV_REQUEST_READ ? check_range(bs, offset, bytes)
                                        : check_write(bs, offset, bytes);

    req->cb = cb;
    req->opaque = opaque;
    if (ret == 0 && (flags & ~allowed_flags)) {
        ret = -EINVAL;
    }
    if (ret < 0 || bytes == 0) {
        bdrv_request_complete_later(req, ret);
        return NULL;
    }
    return req;
}

/* A driver without FUA among supported_flags gets the request without it;
 * bdrv_request_complete() then makes the write stable with a flush. */
static void request_emulate_fua(BdrvRequest *req, int supported_flags)
{
    if ((req->flags & BDRV_REQ_FUA) && !(supported_flags & BDRV_REQ_FUA)) {
        req->fua_pending = true;
        req->flags &= ~BDRV_REQ_FUA;
    }
}

/* Hands a checked write-zeroes request to the driver. */
static void bdrv_submit_zeroes(BlockDriverState *bs, BdrvRequest *req)
{
    request_emulate_fua(req, bs->drv->supported_zero_flags);
    bs->drv->bdrv_aio_pwrite_zeroes(bs, req);
}

void bdrv_aio_preadv(BlockDriverState *bs, int64_t offset, IOVector *qiov,
                     int flags, BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req =
        request_start(bs, BDRV_REQUEST_READ, offset, (int64_t)qiov->size, qiov,
                      flags, 0, cb, opaque);

    if (req) {
        bs->drv->bdrv_aio_preadv(bs, req);
    }
}

void bdrv_aio_pwritev(BlockDriverState *bs, int64_t offset, IOVector *qiov,
                      int flags, BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req =
        request_start(bs, BDRV_REQUEST_WRITE, offset, (int64_t)qiov->size, qiov,
                      flags, BDRV_REQ_FUA, cb, opaque);

    if (!req) {
        return;
    }
    if (bs->detect_zeroes != BDRV_DETECT_ZEROES_OFF &&
        iov_is_zero(qiov, 0, qiov->size)) {
        /* detect-zeroes: the same request, as a zeroing that may leave a
         * hole instead of writing a buffer of zeroes. */
        req->type = BDRV_REQUEST_ZEROES;
        req->qiov = NULL;
        if (bs->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP) {
            req->flags |= BDRV_REQ_MAY_UNMAP;
        }
        bdrv_submit_zeroes(bs, req);
        return;
    }
    request_emulate_fua(req, bs->drv->supported_write_flags);
    bs->drv->bdrv_aio_pwritev(bs, req);
}

void bdrv_aio_flush(BlockDriverState *bs, BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req = request_new(bs, BDRV_REQUEST_FLUSH, 0, 0, NULL, 0);

    req->cb = cb;
    req->opaque = opaque;
    /* Flushing a read-only node is harmless and succeeds, as in QEMU;
     * cache.no-flush=on asks for flushes to be skipped. */
    if (bs->read_only || bs->no_flush) {
        bdrv_request_complete_later(req, 0);
        return;
    }
    bs->drv->bdrv_aio_flush(bs, req);
}

void bdrv_aio_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req = request_start(bs, BDRV_REQUEST_DISCARD, offset, bytes,
                                     NULL, 0, 0, cb, opaque);

    if (req) {
        bs->drv->bdrv_aio_pdiscard(bs, req);
    }
}

void bdrv_aio_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int flags, BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req = request_start(
        bs, BDRV_REQUEST_ZEROES, offset, bytes, NULL, flags,
        BDRV_REQ_FUA | BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK, cb, opaque);

    if (req) {
        bdrv_submit_zeroes(bs, req);
    }
}

void bdrv_aio_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           BlockStatusFunc *cb, void *opaque)
{
    BdrvRequest *req =
        request_new(bs, BDRV_REQUEST_STATUS, offset, bytes, NULL, 0);
    int ret = check_range(bs, offset, bytes);

    req->status_cb = cb;
    req->opaque = opaque;
    if (ret == 0 && bytes == 0) {
        ret = -EINVAL; /* no byte to describe */
    }
    if (ret < 0 || !bs->drv->bdrv_aio_block_status) {
        req->pnum = bytes;
        req->status = 0;
        bdrv_request_complete_later(req, ret);
        return;
    }
    bs->drv->bdrv_aio_block_status(bs, req);
}
