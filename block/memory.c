/*
 * driver=memory: a sparse RAM disk.
 *
 * The disk is an array of 64 KiB chunks.  A chunk is a hole (NULL: never
 * written, or discarded), allocated zeroes (ZERO_CHUNK: written with
 * zeroes without permission to unmap) or a buffer.  Writes allocate on
 * first touch; discard and write-zeroes free the chunks they fully cover.
 * Everything runs in the node's context, so the array needs no lock;
 * completions are deferred through the generic completion BH.
 */
#include <errno.h>
#include <string.h>

#include "block/block-int.h"

#define CHUNK_SIZE (64 * 1024)

/* Any non-NULL address that is never a real buffer. */
static char zero_chunk_marker;
#define ZERO_CHUNK ((char *)&zero_chunk_marker)

typedef struct MemoryState {
    char **chunks;
    int64_t nchunks;
} MemoryState;

static const BlockOptDesc memory_opts[] = {
    {"size", BLOCK_OPT_SIZE, NULL},
    {NULL},
};

static int memory_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    MemoryState *s = bs->opaque;
    int64_t size = bdrv_opt_get_size(opts, "size", -1);

    if (size < 0) {
        error_setg(errp, "Parameter 'size' is required by driver 'memory'");
        return -EINVAL;
    }
    if (size > (INT64_C(1) << 50)) {
        error_setg(errp, "Parameter 'size' is too large for driver 'memory' "
                         "(at most 1P)");
        return -EINVAL;
    }
    s->nchunks = (size + CHUNK_SIZE - 1) / CHUNK_SIZE;
    s->chunks = g_new0(char *, s->nchunks);
    bs->total_bytes = size;
    return 0;
}

static void chunk_free(MemoryState *s, int64_t i)
{
    if (s->chunks[i] && s->chunks[i] != ZERO_CHUNK) {
        g_free(s->chunks[i]);
    }
    s->chunks[i] = NULL;
}

static void memory_close(BlockDriverState *bs)
{
    MemoryState *s = bs->opaque;
    int64_t i;

    for (i = 0; i < s->nchunks; i++) {
        chunk_free(s, i);
    }
    g_free(s->chunks);
}

/* A writable buffer for chunk i, allocating (zeroed) on first touch. */
static char *chunk_get(MemoryState *s, int64_t i)
{
    if (!s->chunks[i] || s->chunks[i] == ZERO_CHUNK) {
        s->chunks[i] = g_malloc0(CHUNK_SIZE);
    }
    return s->chunks[i];
}

static void memory_preadv(BlockDriverState *bs, BdrvRequest *req)
{
    MemoryState *s = bs->opaque;
    int64_t pos = req->offset;
    size_t done = 0;

    while (done < req->qiov->size) {
        int64_t i = pos / CHUNK_SIZE;
        size_t in = pos % CHUNK_SIZE;
        size_t n = MIN(CHUNK_SIZE - in, req->qiov->size - done);
        char *c = s->chunks[i];

        if (!c || c == ZERO_CHUNK) {
            iov_memset(req->qiov, done, 0, n);
        } else {
            iov_from_buf(req->qiov, done, c + in, n);
        }
        done += n;
        pos += n;
    }
    bdrv_request_complete_later(req, 0);
}

static void memory_pwritev(BlockDriverState *bs, BdrvRequest *req)
{
    MemoryState *s = bs->opaque;
    int64_t pos = req->offset;
    size_t done = 0;

    while (done < req->qiov->size) {
        int64_t i = pos / CHUNK_SIZE;
        size_t in = pos % CHUNK_SIZE;
        size_t n = MIN(CHUNK_SIZE - in, req->qiov->size - done);

        iov_to_buf(req->qiov, done, chunk_get(s, i) + in, n);
        done += n;
        pos += n;
    }
    bdrv_request_complete_later(req, 0);
}

static void memory_flush(BlockDriverState *bs, BdrvRequest *req)
{
    /* RAM is as stable as this disk gets. */
    bdrv_request_complete_later(req, 0);
}

/*
 * Zeroes [offset, offset + bytes): whole chunks become holes (unmap) or
 * ZERO_CHUNK; partial chunks are cleared in place unless they are already
 * holes or zero.
 */
static void memory_zero_range(MemoryState *s, int64_t offset, int64_t bytes,
                              bool unmap)
{
    int64_t end = offset + bytes;

    while (offset < end) {
        int64_t i = offset / CHUNK_SIZE;
        int64_t in = offset % CHUNK_SIZE;
        int64_t n = MIN(CHUNK_SIZE - in, end - offset);
        int64_t chunk_len =
            MIN(CHUNK_SIZE, s->nchunks * CHUNK_SIZE - i * CHUNK_SIZE);

        if (n == chunk_len) {
            chunk_free(s, i);
            if (!unmap) {
                s->chunks[i] = ZERO_CHUNK;
            }
        } else if (s->chunks[i] && s->chunks[i] != ZERO_CHUNK) {
            memset(s->chunks[i] + in, 0, n);
        }
        offset += n;
    }
}

static void memory_pdiscard(BlockDriverState *bs, BdrvRequest *req)
{
    memory_zero_range(bs->opaque, req->offset, req->bytes, true);
    bdrv_request_complete_later(req, 0);
}

static void memory_pwrite_zeroes(BlockDriverState *bs, BdrvRequest *req)
{
    memory_zero_range(bs->opaque, req->offset, req->bytes,
                      req->flags & BDRV_REQ_MAY_UNMAP);
    bdrv_request_complete_later(req, 0);
}

static unsigned chunk_status(MemoryState *s, int64_t i)
{
    if (!s->chunks[i]) {
        return BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    }
    return s->chunks[i] == ZERO_CHUNK ? BDRV_BLOCK_ZERO : 0;
}

static void memory_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    MemoryState *s = bs->opaque;
    int64_t end = req->offset + req->bytes;
    int64_t i = req->offset / CHUNK_SIZE;
    unsigned status = chunk_status(s, i);
    int64_t pos = (i + 1) * CHUNK_SIZE;

    while (pos < end && chunk_status(s, pos / CHUNK_SIZE) == status) {
        pos += CHUNK_SIZE;
    }
    req->pnum = MIN(pos, end) - req->offset;
    req->status = status;
    bdrv_request_complete_later(req, 0);
}

const BlockDriver bdrv_memory = {
    .format_name = "memory",
    .instance_size = sizeof(MemoryState),
    .options = memory_opts,
    .bdrv_open = memory_open,
    .bdrv_close = memory_close,
    .bdrv_aio_preadv = memory_preadv,
    .bdrv_aio_pwritev = memory_pwritev,
    .bdrv_aio_flush = memory_flush,
    .bdrv_aio_pdiscard = memory_pdiscard,
    .bdrv_aio_pwrite_zeroes = memory_pwrite_zeroes,
    .bdrv_aio_block_status = memory_block_status,
};
