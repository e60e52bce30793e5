/*
 * driver=memory: a sparse RAM disk.
 *
 * The disk is an array of 64 KiB chunks, kept in a two-level table (an L1
 * array of L2 tables of 4096 chunks, 256 MiB of disk each) so that a large
 * empty disk costs a few bytes per 256 MiB.  A chunk is a hole (NULL: never
 * written, or discarded), allocated zeroes (ZERO_CHUNK: written with
 * zeroes without permission to unmap) or a buffer.  Writes allocate on
 * first touch; discard and write-zeroes free the chunks they fully cover.
 * Everything runs in the node's context, so the tables need no lock;
 * completions are deferred through the generic completion BH.
 */
#include <errno.h>
#include <string.h>

#include "block/block-int.h"

#define CHUNK_SIZE (64 * 1024)
#define L2_BITS 12
#define L2_SIZE (1 << L2_BITS) /* chunks per L2 table */
#define MEMORY_MAX_SIZE (INT64_C(1) << 50)

/* Any non-NULL address that is never a real buffer. */
static char zero_chunk_marker;
#define ZERO_CHUNK ((char *)&zero_chunk_marker)

typedef struct MemoryState {
    char ***l1; /* L2 tables, NULL until a chunk in their range is set */
    int64_t nl1;
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
    if (size > MEMORY_MAX_SIZE) {
        error_setg(errp, "Parameter 'size' is too large for driver 'memory' "
                         "(at most 1P)");
        return -EINVAL;
    }
    s->nchunks = (size + CHUNK_SIZE - 1) / CHUNK_SIZE;
    s->nl1 = (s->nchunks + L2_SIZE - 1) / L2_SIZE;
    s->l1 = g_new0(char **, s->nl1);
    bs->total_bytes = size;
    return 0;
}

/* Chunk i's pointer, or NULL for a hole. */
static char *chunk_peek(MemoryState *s, int64_t i)
{
    char **l2 = s->l1[i >> L2_BITS];

    return l2 ? l2[i & (L2_SIZE - 1)] : NULL;
}

/* Where chunk i's pointer lives, creating its L2 table. */
static char **chunk_slot(MemoryState *s, int64_t i)
{
    char ***l2 = &s->l1[i >> L2_BITS];

    if (!*l2) {
        *l2 = g_new0(char *, L2_SIZE);
    }
    return &(*l2)[i & (L2_SIZE - 1)];
}

/* Makes chunk i a hole (or, with zero, allocated zeroes). */
static void chunk_free(MemoryState *s, int64_t i, bool zero)
{
    char *c = chunk_peek(s, i);

    if (c && c != ZERO_CHUNK) {
        g_free(c);
    }
    if (c || zero) {
        *chunk_slot(s, i) = zero ? ZERO_CHUNK : NULL;
    }
}

/* Frees the chunks from `first` on (and the L2 tables left empty). */
static void memory_free_from(MemoryState *s, int64_t first)
{
    int64_t l, j;

    for (l = first >> L2_BITS; l < s->nl1; l++) {
        int64_t base = l * L2_SIZE;
        bool empty = true;

        if (!s->l1[l]) {
            continue;
        }
        for (j = 0; j < L2_SIZE; j++) {
            char *c = s->l1[l][j];

            if (base + j < first) {
                empty = empty && !c;
                continue;
            }
            if (c != ZERO_CHUNK) {
                g_free(c);
            }
            s->l1[l][j] = NULL;
        }
        if (empty) {
            g_free(s->l1[l]);
            s->l1[l] = NULL;
        }
    }
}

/*
 * Grows or shrinks: chunks past the new end are freed and the tail of a
 * new partial last chunk is cleared, so that growing again later reads
 * zeroes there; new chunks are holes.
 */
static int memory_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    MemoryState *s = bs->opaque;
    int64_t nchunks = (size + CHUNK_SIZE - 1) / CHUNK_SIZE;
    int64_t nl1 = (nchunks + L2_SIZE - 1) / L2_SIZE;

    if (size > MEMORY_MAX_SIZE) {
        error_setg(errp, "Parameter 'size' is too large for driver 'memory' "
                         "(at most 1P)");
        return -EINVAL;
    }
    if (size < bs->total_bytes) {
        char *last;

        memory_free_from(s, nchunks);
        last = size % CHUNK_SIZE ? chunk_peek(s, size / CHUNK_SIZE) : NULL;
        if (last && last != ZERO_CHUNK) {
            memset(last + size % CHUNK_SIZE, 0, CHUNK_SIZE - size % CHUNK_SIZE);
        }
    }
    if (nl1 != s->nl1) {
        /* Past the new end every L2 table is gone (shrink) or was never
         * there (grow): only the array changes. */
        s->l1 = g_renew(char **, s->l1, nl1);
        if (nl1 > s->nl1) {
            memset(s->l1 + s->nl1, 0, (nl1 - s->nl1) * sizeof(*s->l1));
        }
        s->nl1 = nl1;
    }
    s->nchunks = nchunks;
    return 0;
}

static void memory_close(BlockDriverState *bs)
{
    MemoryState *s = bs->opaque;
    int64_t i, j;

    for (i = 0; i < s->nl1; i++) {
        if (!s->l1[i]) {
            continue;
        }
        for (j = 0; j < L2_SIZE; j++) {
            if (s->l1[i][j] != ZERO_CHUNK) {
                g_free(s->l1[i][j]);
            }
        }
        g_free(s->l1[i]);
    }
    g_free(s->l1);
}

/* A writable buffer for chunk i, allocating (zeroed) on first touch. */
static char *chunk_get(MemoryState *s, int64_t i)
{
    char **slot = chunk_slot(s, i);

    if (!*slot || *slot == ZERO_CHUNK) {
        *slot = g_malloc0(CHUNK_SIZE);
    }
    return *slot;
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
        char *c = chunk_peek(s, i);

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
            chunk_free(s, i, !unmap);
        } else {
            char *c = chunk_peek(s, i);

            if (c && c != ZERO_CHUNK) {
                memset(c + in, 0, n);
            }
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
    char *c = chunk_peek(s, i);

    if (!c) {
        return BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    }
    return c == ZERO_CHUNK ? BDRV_BLOCK_ZERO : 0;
}

static void memory_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    MemoryState *s = bs->opaque;
    int64_t end = req->offset + req->bytes;
    int64_t i = req->offset / CHUNK_SIZE;
    unsigned status = chunk_status(s, i);
    int64_t pos = (i + 1) * CHUNK_SIZE;

    while (pos < end) {
        int64_t next = pos / CHUNK_SIZE;

        if (!s->l1[next >> L2_BITS] &&
            status == (BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO)) {
            /* A missing L2 table: 256 MiB of hole at once. */
            pos = ((next >> L2_BITS) + 1) * L2_SIZE * (int64_t)CHUNK_SIZE;
            continue;
        }
        if (chunk_status(s, next) != status) {
            break;
        }
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
    .bdrv_truncate = memory_truncate,
    .supports_shrink = true,
};
