/*
 * driver=null-co: a disk that stores nothing.  Writes succeed and are
 * dropped; reads return zeroes with read-zeroes=on, or leave the buffer as
 * it is (the fastest read there is, for benchmarks) with read-zeroes=off.
 */
#include <errno.h>

#include "block/block-int.h"

typedef struct NullState {
    bool read_zeroes;
} NullState;

static const BlockOptDesc null_opts[] = {
    {"size", BLOCK_OPT_SIZE, NULL},
    {"read-zeroes", BLOCK_OPT_BOOL, NULL},
    {NULL},
};

static int null_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    NullState *s = bs->opaque;

    /* QEMU's default size for null-co is 1 GiB. */
    bs->total_bytes = bdrv_opt_get_size(opts, "size", INT64_C(1) << 30);
    s->read_zeroes = bdrv_opt_get_bool(opts, "read-zeroes", false);
    return 0;
}

static void null_close(BlockDriverState *bs)
{
}

static void null_preadv(BlockDriverState *bs, BdrvRequest *req)
{
    NullState *s = bs->opaque;

    if (s->read_zeroes) {
        iov_memset(req->qiov, 0, 0, req->qiov->size);
    }
    bdrv_request_complete_later(req, 0);
}

static void null_complete(BlockDriverState *bs, BdrvRequest *req)
{
    bdrv_request_complete_later(req, 0);
}

static void null_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    NullState *s = bs->opaque;

    req->pnum = req->bytes;
    req->status = s->read_zeroes ? BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO : 0;
    bdrv_request_complete_later(req, 0);
}

static int null_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    /* Nothing is stored: the size is all there is. */
    return 0;
}

const BlockDriver bdrv_null_co = {
    .format_name = "null-co",
    .instance_size = sizeof(NullState),
    .options = null_opts,
    .supported_write_flags = BDRV_REQ_FUA,
    .supported_zero_flags = BDRV_REQ_FUA,
    .bdrv_open = null_open,
    .bdrv_close = null_close,
    .bdrv_aio_preadv = null_preadv,
    .bdrv_aio_pwritev = null_complete,
    .bdrv_aio_flush = null_complete,
    .bdrv_aio_pdiscard = null_complete,
    .bdrv_aio_pwrite_zeroes = null_complete,
    .bdrv_aio_block_status = null_block_status,
    .bdrv_truncate = null_truncate,
    .supports_shrink = true,
};
