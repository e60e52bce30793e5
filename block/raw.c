/*
 * driver=raw: passes requests to its file child, optionally through an
 * offset/size window (a partition of the child, say).
 *
 * A request is re-submitted on the child with its offset shifted; the
 * child's callback finishes the raw request in the same context, so raw
 * adds one tracked request per level and no copies.
 */
#include <errno.h>

#include "block/block-int.h"

typedef struct RawState {
    int64_t offset;
    bool has_size; /* size= given: the window is fixed */
} RawState;

static const BlockOptDesc raw_opts[] = {
    {"offset", BLOCK_OPT_SIZE, NULL},
    {"size", BLOCK_OPT_SIZE, NULL},
    {NULL},
};

static int raw_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    RawState *s = bs->opaque;
    int64_t child_len = bdrv_getlength(bs->file);
    int64_t size;

    s->offset = bdrv_opt_get_size(opts, "offset", 0);
    if (s->offset > child_len) {
        error_setg(errp,
                   "Parameter 'offset' (%" G_GINT64_FORMAT ") is past "
                   "the end of the file child (%" G_GINT64_FORMAT " bytes)",
                   s->offset, child_len);
        return -EINVAL;
    }
    s->has_size = bdrv_opt_get(opts, "size") != NULL;
    size = bdrv_opt_get_size(opts, "size", child_len - s->offset);
    if (size > child_len - s->offset) {
        error_setg(errp,
                   "Parameter 'size' (%" G_GINT64_FORMAT ") reaches "
                   "past the end of the file child (%" G_GINT64_FORMAT
                   " bytes from offset %" G_GINT64_FORMAT ")",
                   size, child_len - s->offset, s->offset);
        return -EINVAL;
    }
    bs->total_bytes = size;
    return 0;
}

static void raw_close(BlockDriverState *bs)
{
}

static void raw_child_done(void *opaque, int ret)
{
    bdrv_request_complete(opaque, ret);
}

static void raw_child_status_done(void *opaque, int ret, int64_t pnum,
                                  unsigned status)
{
    BdrvRequest *req = opaque;

    req->pnum = pnum;
    req->status = status;
    bdrv_request_complete(req, ret);
}

static void raw_preadv(BlockDriverState *bs, BdrvRequest *req)
{
    RawState *s = bs->opaque;

    bdrv_aio_preadv(bs->file, s->offset + req->offset, req->qiov, 0,
                    raw_child_done, req);
}

static void raw_pwritev(BlockDriverState *bs, BdrvRequest *req)
{
    RawState *s = bs->opaque;

    bdrv_aio_pwritev(bs->file, s->offset + req->offset, req->qiov, req->flags,
                     raw_child_done, req);
}

static void raw_flush(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_aio_flush(bs->file, raw_child_done, req);
}

static void raw_pdiscard(BlockDriverState *bs, BdrvRequest *req)
{
    RawState *s = bs->opaque;

    bdrv_aio_pdiscard(bs->file, s->offset + req->offset, req->bytes,
                      raw_child_done, req);
}

static void raw_pwrite_zeroes(BlockDriverState *bs, BdrvRequest *req)
{
    RawState *s = bs->opaque;

    bdrv_aio_pwrite_zeroes(bs->file, s->offset + req->offset, req->bytes,
                           req->flags, raw_child_done, req);
}

static void raw_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    RawState *s = bs->opaque;

    bdrv_aio_block_status(bs->file, s->offset + req->offset, req->bytes,
                          raw_child_status_done, req);
}

/* A raw node without size= is its child from `offset` on: resizing it
 * resizes the child, as in QEMU. */
static int raw_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    RawState *s = bs->opaque;

    if (s->has_size) {
        error_setg(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    if (INT64_MAX - size < s->offset) {
        error_setg(errp, "Disk size too large for the chosen offset");
        return -EINVAL;
    }
    return bdrv_truncate(bs->file, s->offset + size, errp) ? 0 : -EINVAL;
}

static void raw_child_resized(BlockDriverState *bs)
{
    RawState *s = bs->opaque;
    int64_t child_len = bdrv_getlength(bs->file);

    if (!s->has_size) {
        bdrv_size_changed(bs, MAX(child_len - s->offset, 0));
    }
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = sizeof(RawState),
    .options = raw_opts,
    .has_file_child = true,
    .file_child_required = true,
    /* The child handles (or emulates) these itself. */
    .supported_write_flags = BDRV_REQ_FUA,
    .supported_zero_flags = BDRV_REQ_FUA,
    .bdrv_open = raw_open,
    .bdrv_close = raw_close,
    .bdrv_aio_preadv = raw_preadv,
    .bdrv_aio_pwritev = raw_pwritev,
    .bdrv_aio_flush = raw_flush,
    .bdrv_aio_pdiscard = raw_pdiscard,
    .bdrv_aio_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_aio_block_status = raw_block_status,
    .bdrv_truncate = raw_truncate,
    .supports_shrink = true, /* the child decides */
    .bdrv_child_resized = raw_child_resized,
};
