/*
 * The request path: checks, in-flight tracking, deferred completion, FUA
 * emulation and multiqueue forwarding, common to every driver.
 *
 * Every request is counted in bs->in_flight (striped by context) from the
 * submit call until its callback (just before it in the home context, just
 * after it elsewhere), which is what drain waits on.  The counts are
 * seq_cst atomics; the decrement pairs with drain's registration
 * (bdrv_drain_waiters) so that a drainer asleep in another context is
 * always woken (drain.c).
 *
 * Where a request lives (bdrv_request_ctx): the submitting thread's own
 * context, unless that thread runs or holds the node's home context (or
 * runs none): then the home context.  A multiqueue driver runs it there; a
 * request for another driver is forwarded to the home context with
 * aio_defer(), and its completion is deferred back the same way, so the
 * callback always runs in the submitter's context.  Both hand-offs end in
 * aio_notify of the receiving context (DESIGN.md rule 6).
 */
#include <errno.h>

#include "block/block-int.h"
#include "util/atomic.h"

/*
 * The threading contract of bdrv_aio_* (block.h), checked on every call:
 * the caller runs a context of its own (any: the node is multiqueue, or
 * forwards) or holds the node's home context.  Anything else would
 * complete in a context nobody runs for the caller.
 */
void bdrv_assert_can_submit(BlockDriverState *bs)
{
    if (G_UNLIKELY(!aio_get_current_context() &&
                   !aio_context_in_current_thread(bdrv_get_aio_context(bs)))) {
        g_error("block I/O on node '%s' from a thread that neither runs an "
                "AioContext nor holds the node's (include/dataplane/block.h: "
                "submit from a thread that runs a context, or acquire the "
                "node's)",
                bdrv_get_node_name(bs));
    }
}

/* The context a request submitted now by this thread belongs to. */
static AioContext *bdrv_request_ctx(BlockDriverState *bs)
{
    AioContext *home = dp_atomic_load_acquire(&bs->ctx);
    AioContext *cur = aio_get_current_context();

    /* Every bdrv_aio_* entry point comes through here. */
    bdrv_assert_can_submit(bs);
    if (!cur || cur == home || aio_context_in_current_thread(home)) {
        return home;
    }
    return cur;
}

static BdrvInFlightStripe *request_stripe(BdrvRequest *req)
{
    return &req->bs->in_flight[aio_context_get_index(req->ctx) %
                               BDRV_IN_FLIGHT_STRIPES];
}

unsigned bdrv_in_flight_sum(BlockDriverState *bs)
{
    unsigned n = 0;
    int i;

    for (i = 0; i < BDRV_IN_FLIGHT_STRIPES; i++) {
        n += dp_atomic_load_seq_cst(&bs->in_flight[i].count);
    }
    return n;
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
    req->ctx = bdrv_request_ctx(bs);
    dp_atomic_fetch_add_seq_cst(&request_stripe(req)->count, 1);
    return req;
}

/* The last use of req->bs: a drainer may go on as soon as the count
 * drops. */
static void request_dec_in_flight(BdrvRequest *req)
{
    if (dp_atomic_fetch_sub_seq_cst(&request_stripe(req)->count, 1) == 1 &&
        dp_atomic_load_seq_cst(&bdrv_drain_waiters)) {
        bdrv_drain_kick();
    }
}

/*
 * In req->ctx: the end of the request.  In the home context the count
 * drops before the callback, so that a callback that drains (or submits
 * and then drains) does not wait for itself; the drainer runs the home
 * context, so it has run the callback by the time it sees zero.  In any
 * other context the callback runs in its own thread, concurrently with a
 * drainer: there the count drops after it, so that a drained section
 * begins only once every callback has returned.  (Such a callback cannot
 * drain the node: draining takes the home context.)
 */
static void request_finish(BdrvRequest *req, int ret)
{
    BlockDriverState *bs = req->bs;
    bool home = req->ctx == bs->ctx;

    if (ret == 0 && bs->growable &&
        (req->type == BDRV_REQUEST_WRITE || req->type == BDRV_REQUEST_ZEROES) &&
        req->offset + req->bytes > bs->total_bytes) {
        /* A format driver extended its file; the node's context owns the
         * size, and bdrv_getlength readers hold a reference there. */
        dp_atomic_store_relaxed(&bs->total_bytes, req->offset + req->bytes);
    }
    if (home) {
        request_dec_in_flight(req);
    }
    if (req->type == BDRV_REQUEST_STATUS) {
        int depth = req->depth;

        if (depth < 0) {
            depth = (req->status & BDRV_BLOCK_HOLE) ? 0 : 1;
        }
        if (req->depth_cb) {
            req->depth_cb(req->opaque, ret, ret < 0 ? 0 : req->pnum,
                          ret < 0 ? 0 : req->status, ret < 0 ? 0 : depth);
        } else {
            req->status_cb(req->opaque, ret, ret < 0 ? 0 : req->pnum,
                           ret < 0 ? 0 : req->status);
        }
    } else {
        req->cb(req->opaque, ret);
    }
    if (!home) {
        request_dec_in_flight(req);
    }
    g_free(req);
}

static void request_finish_deferred(AioDeferred *d)
{
    BdrvRequest *req = container_of(d, BdrvRequest, defer);

    request_finish(req, req->ret);
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
    if (req->forwarded) {
        /* Back to the submitter's context. */
        req->ret = ret;
        aio_defer(req->ctx, &req->defer, request_finish_deferred);
        return;
    }
    request_finish(req, ret);
}

static void request_complete_deferred(AioDeferred *d)
{
    BdrvRequest *req = container_of(d, BdrvRequest, defer);

    bdrv_request_complete(req, req->ret);
}

void bdrv_request_complete_later(BdrvRequest *req, int ret)
{
    req->ret = ret;
    aio_defer(bdrv_request_run_ctx(req), &req->defer,
              request_complete_deferred);
}

typedef void BdrvDriverOp(BlockDriverState *bs, BdrvRequest *req);

/* The driver op a checked request goes to. */
static BdrvDriverOp *request_op(BdrvRequest *req)
{
    const BlockDriver *drv = req->bs->drv;

    switch (req->type) {
    case BDRV_REQUEST_READ:
        return drv->bdrv_aio_preadv;
    case BDRV_REQUEST_WRITE:
        return drv->bdrv_aio_pwritev;
    case BDRV_REQUEST_FLUSH:
        return drv->bdrv_aio_flush;
    case BDRV_REQUEST_DISCARD:
        return drv->bdrv_aio_pdiscard;
    case BDRV_REQUEST_ZEROES:
        return drv->bdrv_aio_pwrite_zeroes;
    case BDRV_REQUEST_STATUS:
        return drv->bdrv_aio_block_status;
    }
    g_assert_not_reached();
}

/* In the home context: run a request forwarded from another context. */
static void request_run_forwarded(AioDeferred *d)
{
    BdrvRequest *req = container_of(d, BdrvRequest, defer);

    request_op(req)(req->bs, req);
}

/* Hands a checked request to the driver, in the context it runs in. */
static void request_submit(BdrvRequest *req)
{
    BlockDriverState *bs = req->bs;

    if (!bs->drv->multiqueue && req->ctx != bs->ctx) {
        req->forwarded = true;
        aio_defer(bs->ctx, &req->defer, request_run_forwarded);
        return;
    }
    request_op(req)(bs, req);
}

bool bdrv_is_multiqueue(BlockDriverState *bs)
{
    for (; bs; bs = bs->file) {
        if (!bs->drv->multiqueue) {
            return false;
        }
    }
    return true;
}

/* Checks the range; 0 or -errno.  A growable node (the file of a format)
 * may be read and written past its end. */
static int check_range(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    int64_t limit = bs->growable ? BDRV_MAX_LENGTH : bs->total_bytes;

    if (offset < 0 || bytes < 0 || offset > limit || bytes > limit - offset) {
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
    request_submit(req);
}

void bdrv_aio_preadv(BlockDriverState *bs, int64_t offset, IOVector *qiov,
                     int flags, BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req =
        request_start(bs, BDRV_REQUEST_READ, offset, (int64_t)qiov->size, qiov,
                      flags, 0, cb, opaque);

    if (req) {
        request_submit(req);
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
    request_submit(req);
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
    request_submit(req);
}

void bdrv_aio_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BlockCompletionFunc *cb, void *opaque)
{
    BdrvRequest *req = request_start(bs, BDRV_REQUEST_DISCARD, offset, bytes,
                                     NULL, 0, 0, cb, opaque);

    if (req) {
        request_submit(req);
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

static void block_status_start(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, BlockStatusFunc *cb,
                               BlockStatusDepthFunc *depth_cb, void *opaque)
{
    BdrvRequest *req =
        request_new(bs, BDRV_REQUEST_STATUS, offset, bytes, NULL, 0);
    int ret = check_range(bs, offset, bytes);

    req->status_cb = cb;
    req->depth_cb = depth_cb;
    req->depth = -1;
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
    request_submit(req);
}

void bdrv_aio_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           BlockStatusFunc *cb, void *opaque)
{
    block_status_start(bs, offset, bytes, cb, NULL, opaque);
}

void bdrv_aio_block_status_depth(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, BlockStatusDepthFunc *cb,
                                 void *opaque)
{
    block_status_start(bs, offset, bytes, NULL, cb, opaque);
}
