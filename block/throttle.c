/*
 * driver=throttle: a filter that holds reads and writes back to the limits
 * of its throttle group, then passes them to its file child.  Other
 * requests (flush, discard, write-zeroes, block status) pass at once.
 *
 * Reads and writes wait in two FIFO queues (a throttled write does not
 * hold up reads, as in QEMU).  A request goes straight through when its
 * queue is empty and the group admits it; otherwise it queues, and the
 * node's timer, armed for when the group expects room, lets the queue's
 * head through.  The queues and the timer belong to the node's context.
 * In a drained section the node lets everything through at once, so that
 * drain (and moves) never wait for the limits.
 */
#include <errno.h>

#include "block/block-int.h"
#include "block/throttle-groups.h"

typedef STAILQ_HEAD(, BdrvRequest) ThrottleQueue;

typedef struct ThrottleState {
    BlockDriverState *bs;
    ThrottleGroup *tg;
    Object *tg_obj;
    char *user; /* "node '<name>'", our entry in the object's users */
    ThrottleMember member;
    AioTimer *timer;         /* node's context */
    ThrottleQueue queues[2]; /* [is_write] */
} ThrottleState;

static const BlockOptDesc throttle_opts[] = {
    {"throttle-group", BLOCK_OPT_STRING, NULL},
    {NULL},
};

static void throttle_child_done(void *opaque, int ret)
{
    bdrv_request_complete(opaque, ret);
}

static void throttle_child_status_done(void *opaque, int ret, int64_t pnum,
                                       unsigned status)
{
    BdrvRequest *req = opaque;

    req->pnum = pnum;
    req->status = status;
    bdrv_request_complete(req, ret);
}

static void throttle_forward(BlockDriverState *bs, BdrvRequest *req)
{
    if (req->type == BDRV_REQUEST_READ) {
        bdrv_aio_preadv(bs->file, req->offset, req->qiov, 0,
                        throttle_child_done, req);
    } else {
        bdrv_aio_pwritev(bs->file, req->offset, req->qiov, req->flags,
                         throttle_child_done, req);
    }
}

/* Lets queued requests through while the group admits them; re-arms the
 * timer for the first that must wait. */
static void throttle_run_queues(ThrottleState *s)
{
    int64_t wait_ns = 0;
    int w;

    for (w = 0; w < 2; w++) {
        BdrvRequest *req;

        while ((req = STAILQ_FIRST(&s->queues[w]))) {
            int64_t wait = s->bs->quiesce_counter
                               ? 0
                               : throttle_group_admit(s->tg, w, req->bytes);

            if (wait > 0) {
                wait_ns = wait_ns ? MIN(wait_ns, wait) : wait;
                break;
            }
            STAILQ_REMOVE_HEAD(&s->queues[w], drv_next);
            throttle_forward(s->bs, req);
        }
    }
    if (wait_ns) {
        aio_timer_mod_ns(s->timer,
                         aio_clock_get_ns(AIO_CLOCK_REALTIME) + wait_ns);
    }
}

static void throttle_timer_cb(void *opaque)
{
    throttle_run_queues(opaque);
}

/* The group's kick (limits changed): re-evaluate at once.  Any thread. */
static void throttle_kick(void *opaque)
{
    ThrottleState *s = opaque;

    aio_timer_mod_ns(s->timer, 0);
}

static void throttle_rw(BlockDriverState *bs, BdrvRequest *req)
{
    ThrottleState *s = bs->opaque;
    bool w = req->type == BDRV_REQUEST_WRITE;
    int64_t wait;
    int64_t deadline;

    if (STAILQ_EMPTY(&s->queues[w])) {
        wait = bs->quiesce_counter ? 0
                                   : throttle_group_admit(s->tg, w, req->bytes);
        if (wait == 0) {
            throttle_forward(bs, req);
            return;
        }
        deadline = aio_clock_get_ns(AIO_CLOCK_REALTIME) + wait;
        if (!aio_timer_pending(s->timer) ||
            aio_timer_expire_time(s->timer) > deadline) {
            aio_timer_mod_ns(s->timer, deadline);
        }
    }
    STAILQ_INSERT_TAIL(&s->queues[w], req, drv_next);
}

static void throttle_flush(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_aio_flush(bs->file, throttle_child_done, req);
}

static void throttle_pdiscard(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_aio_pdiscard(bs->file, req->offset, req->bytes, throttle_child_done,
                      req);
}

static void throttle_pwrite_zeroes(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_aio_pwrite_zeroes(bs->file, req->offset, req->bytes, req->flags,
                           throttle_child_done, req);
}

static void throttle_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_aio_block_status(bs->file, req->offset, req->bytes,
                          throttle_child_status_done, req);
}

static int throttle_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    ThrottleState *s = bs->opaque;
    const char *group = bdrv_opt_get(opts, "throttle-group");

    if (!group) {
        error_setg(errp, "Parameter 'throttle-group' is required by driver "
                         "'throttle'");
        return -EINVAL;
    }
    s->tg = throttle_group_find(group, &s->tg_obj);
    if (!s->tg) {
        error_setg(errp,
                   "Throttle group '%s' does not exist (parameter "
                   "'throttle-group')",
                   group);
        return -EINVAL;
    }
    s->bs = bs;
    STAILQ_INIT(&s->queues[0]);
    STAILQ_INIT(&s->queues[1]);
    s->timer = aio_timer_new(bs->ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                             throttle_timer_cb, s);
    s->member.kick = throttle_kick;
    s->member.opaque = s;
    throttle_group_add_member(s->tg, &s->member);
    s->user = g_strdup_printf("node '%s'", bs->node_name);
    object_user_add(s->tg_obj, s->user);
    bs->total_bytes = bdrv_getlength(bs->file);
    return 0;
}

static void throttle_close(BlockDriverState *bs)
{
    ThrottleState *s = bs->opaque;

    throttle_group_remove_member(s->tg, &s->member);
    object_user_remove(s->tg_obj, s->user);
    g_free(s->user);
    aio_timer_free(s->timer);
}

static void throttle_drained_begin(BlockDriverState *bs)
{
    ThrottleState *s = bs->opaque;

    /* Let the queues go now rather than at the next timer expiry. */
    aio_timer_mod_ns(s->timer, 0);
}

static void throttle_detach_aio_context(BlockDriverState *bs)
{
    ThrottleState *s = bs->opaque;

    /* Drained: the queues are empty.  The group's kick may look at the
     * timer from the main loop, which is also the thread moving us. */
    g_assert(STAILQ_EMPTY(&s->queues[0]) && STAILQ_EMPTY(&s->queues[1]));
    aio_timer_free(s->timer);
    s->timer = NULL;
}

static void throttle_attach_aio_context(BlockDriverState *bs, AioContext *ctx)
{
    ThrottleState *s = bs->opaque;

    s->timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                             throttle_timer_cb, s);
}

/* A filter: the child is resized, and its new size comes back through
 * throttle_child_resized(). */
static int throttle_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    return bdrv_truncate(bs->file, size, errp) ? 0 : -EINVAL;
}

static void throttle_child_resized(BlockDriverState *bs)
{
    bdrv_size_changed(bs, bdrv_getlength(bs->file));
}

const BlockDriver bdrv_throttle = {
    .format_name = "throttle",
    .instance_size = sizeof(ThrottleState),
    .options = throttle_opts,
    .has_file_child = true,
    .file_child_required = true,
    .supported_write_flags = BDRV_REQ_FUA,
    .supported_zero_flags = BDRV_REQ_FUA,
    .bdrv_open = throttle_open,
    .bdrv_close = throttle_close,
    .bdrv_aio_preadv = throttle_rw,
    .bdrv_aio_pwritev = throttle_rw,
    .bdrv_aio_flush = throttle_flush,
    .bdrv_aio_pdiscard = throttle_pdiscard,
    .bdrv_aio_pwrite_zeroes = throttle_pwrite_zeroes,
    .bdrv_aio_block_status = throttle_block_status,
    .bdrv_detach_aio_context = throttle_detach_aio_context,
    .bdrv_attach_aio_context = throttle_attach_aio_context,
    .bdrv_drained_begin = throttle_drained_begin,
    .bdrv_truncate = throttle_truncate,
    .supports_shrink = true, /* the child decides */
    .bdrv_child_resized = throttle_child_resized,
};
