/*
 * driver=file: a regular file or block device, through io_uring
 * (aio=io_uring, file-io-uring.c) or the threadlet pool (aio=threads).
 *
 * A block request becomes one or more system-level operations (FileOp),
 * run by the engine one at a time per request: a short transfer issues the
 * rest; with cache.direct=on (O_DIRECT) a request whose offset, length or
 * buffers are not aligned goes through a bounce buffer, and an unaligned
 * write becomes a read-modify-write of the aligned range.  Two
 * read-modify-writes, or one and any other write, must not overlap in time
 * or one would write back stale bytes of the other: such requests wait
 * (s->waiting) until the overlapping one is done.
 *
 * Discard and write-zeroes use fallocate (PUNCH_HOLE, ZERO_RANGE); flush is
 * fdatasync.
 *
 * Multiqueue: a request runs in the context that submitted it (its own
 * ring there, or threadlets completing there), concurrently with other
 * contexts' requests.  Shared state is the fd, the per-file flags
 * (relaxed atomics: a stale "supported" costs one EOPNOTSUPP) and the
 * O_DIRECT ordering lists under track_lock; a waiting request that another
 * context's completion unblocks is started in its own context
 * (aio_defer).  The threads engine's worker function touches nothing but
 * its FileReq's operation fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block/file-posix-int.h"
#include "dataplane/threadlet.h"
#include "util/atomic.h"

#define ZERO_CHUNK_MAX (1024 * 1024) /* write-zeroes fallback: bytes per op */

/* What the completion of the current FileOp means. */
enum {
    STAGE_RW,           /* the request's own read/write, flush, discard */
    STAGE_BOUNCE_READ,  /* O_DIRECT unaligned read into the bounce */
    STAGE_RMW_READ,     /* O_DIRECT unaligned write: reading old data */
    STAGE_RMW_WRITE,    /* ... writing the merged bounce */
    STAGE_ZERO_PUNCH,   /* write-zeroes by punching a hole */
    STAGE_ZERO_RANGE,   /* write-zeroes by FALLOC_FL_ZERO_RANGE */
    STAGE_ZERO_REALLOC, /* after a punch, allocating the range again */
    STAGE_ZERO_WRITE,   /* fallback: writing zero buffers */
};

static const char *const aio_choices[] = {"io_uring", "threads", NULL};
static const char *const discard_choices[] = {"unmap", "ignore", NULL};
static const char *const locking_choices[] = {"auto", "on", "off", NULL};

static const BlockOptDesc file_opts[] = {
    {"filename", BLOCK_OPT_STRING, NULL},
    {"aio", BLOCK_OPT_STRING, aio_choices},
    {"cache.direct", BLOCK_OPT_BOOL, NULL},
    {"discard", BLOCK_OPT_STRING, discard_choices},
    {"locking", BLOCK_OPT_STRING, locking_choices},
    {NULL},
};

const char *bdrv_file_get_filename(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    return s->filename;
}

/* ---- engines ------------------------------------------------------------ */

int file_op_run_sync(FileReq *fr)
{
    FileState *s = fr->s;
    ssize_t ret;

    do {
        switch (fr->op) {
        case FILE_OP_READ:
            ret = preadv(s->fd, fr->iov, fr->niov, fr->offset);
            break;
        case FILE_OP_WRITE:
            ret = pwritev2(s->fd, fr->iov, fr->niov, fr->offset, fr->rw_flags);
            break;
        case FILE_OP_FSYNC:
            ret = fdatasync(s->fd);
            break;
        case FILE_OP_FALLOCATE:
            ret = fallocate(s->fd, fr->mode, fr->offset, fr->len);
            break;
        default:
            g_assert_not_reached();
        }
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : (int)ret;
}

static int file_thread_fn(void *arg)
{
    return file_op_run_sync(arg);
}

static void file_thread_done(void *opaque, int ret)
{
    file_op_complete(opaque, ret);
}

/* Starts fr's current FileOp on the node's engine. */
static void file_op_start(FileReq *fr)
{
    FileState *s = fr->s;

    if (s->use_io_uring) {
        file_uring_submit(fr);
    } else {
        threadlet_submit_aio(fr->ctx, file_thread_fn, fr, file_thread_done, fr);
    }
}

/* ---- request bookkeeping ------------------------------------------------ */

static int64_t align_down(int64_t x, size_t a)
{
    return x & ~(int64_t)(a - 1);
}

static int64_t align_up(int64_t x, size_t a)
{
    return align_down(x + (int64_t)a - 1, a);
}

static void file_req_start(FileReq *fr);

static bool ranges_conflict(FileReq *a, FileReq *b)
{
    return (a->serialising || b->serialising) &&
           a->aoffset < b->aoffset + b->alen &&
           b->aoffset < a->aoffset + a->alen;
}

static bool file_req_conflicts(FileState *s, FileReq *fr)
{
    FileReq *t;

    TAILQ_FOREACH(t, &s->tracked, tracked_next)
    {
        if (ranges_conflict(fr, t)) {
            return true;
        }
    }
    return false;
}

static void file_req_start_deferred(AioDeferred *d)
{
    file_req_start(container_of(d, FileReq, defer));
}

/* Starts the waiting requests that no longer conflict, in arrival order,
 * each in its own context.  Called with track_lock held; drops it. */
static void file_kick_waiting_unlock(FileState *s)
{
    STAILQ_HEAD(, FileReq) again = STAILQ_HEAD_INITIALIZER(again);
    STAILQ_HEAD(, FileReq) go = STAILQ_HEAD_INITIALIZER(go);
    FileReq *fr;

    STAILQ_CONCAT(&again, &s->waiting);
    while ((fr = STAILQ_FIRST(&again))) {
        STAILQ_REMOVE_HEAD(&again, wait_next);
        if (file_req_conflicts(s, fr)) {
            STAILQ_INSERT_TAIL(&s->waiting, fr, wait_next);
        } else {
            TAILQ_INSERT_TAIL(&s->tracked, fr, tracked_next);
            fr->tracked = true;
            STAILQ_INSERT_TAIL(&go, fr, wait_next);
        }
    }
    dp_mutex_unlock(&s->track_lock);
    while ((fr = STAILQ_FIRST(&go))) {
        STAILQ_REMOVE_HEAD(&go, wait_next);
        if (aio_context_in_current_thread(fr->ctx)) {
            file_req_start(fr);
        } else {
            aio_defer(fr->ctx, &fr->defer, file_req_start_deferred);
        }
    }
}

/* Finishes the block request (from the engine's completion, in the
 * node's context: never inside the submit call). */
static void file_req_finish(FileReq *fr, int ret)
{
    FileState *s = fr->s;
    BdrvRequest *req = fr->req;

    if (fr->tracked) {
        dp_mutex_lock(&s->track_lock);
        TAILQ_REMOVE(&s->tracked, fr, tracked_next);
        file_kick_waiting_unlock(s);
    }
    free(fr->bounce);
    g_free(fr->iov);
    if (fr->defer_completion) {
        bdrv_request_complete_later(req, ret);
    } else {
        bdrv_request_complete(req, ret);
    }
    g_free(fr);
}

/* Sets fr's FileOp to a transfer of the single buffer [buf, buf + len). */
static void file_op_set_buf(FileReq *fr, FileOpType op, char *buf,
                            int64_t offset, int64_t len)
{
    g_free(fr->iov);
    fr->iov = g_new(struct iovec, 1);
    fr->iov[0].iov_base = buf;
    fr->iov[0].iov_len = len;
    fr->niov = 1;
    fr->op = op;
    fr->offset = offset;
    fr->len = len;
}

/* Sets fr's FileOp to a transfer of the whole request vector. */
static void file_op_set_qiov(FileReq *fr, FileOpType op)
{
    IOVector *q = fr->req->qiov;

    g_free(fr->iov);
    fr->iov = g_memdup2(q->iov, sizeof(struct iovec) * q->niov);
    fr->niov = q->niov;
    fr->op = op;
    fr->offset = fr->req->offset;
    fr->len = q->size;
}

static void file_op_set_fallocate(FileReq *fr, int mode, int64_t offset,
                                  int64_t len)
{
    fr->op = FILE_OP_FALLOCATE;
    fr->mode = mode;
    fr->offset = offset;
    fr->len = len;
}

/* Allocates an aligned bounce covering the request's aligned range. */
static void file_bounce_alloc(FileReq *fr)
{
    FileState *s = fr->s;

    if (posix_memalign((void **)&fr->bounce, MAX(s->align, 4096), fr->alen) !=
        0) {
        g_error("out of memory for a %" G_GINT64_FORMAT "-byte bounce buffer",
                fr->alen);
    }
}

void file_op_advance(FileReq *fr, size_t n)
{
    fr->offset += n;
    fr->len -= n;
    while (n > 0 && fr->niov > 0) {
        if (n >= fr->iov[0].iov_len) {
            n -= fr->iov[0].iov_len;
            memmove(fr->iov, fr->iov + 1,
                    sizeof(struct iovec) * (fr->niov - 1));
            fr->niov--;
        } else {
            fr->iov[0].iov_base = (char *)fr->iov[0].iov_base + n;
            fr->iov[0].iov_len -= n;
            n = 0;
        }
    }
}

/* Sets up and starts the next chunk of the write-zeroes fallback; returns
 * false when the whole range is done. */
static bool file_zero_write_next(FileReq *fr)
{
    FileState *s = fr->s;
    int64_t end = fr->req->offset + fr->req->bytes;
    int64_t len = MIN(end - fr->zero_pos, ZERO_CHUNK_MAX);

    if (fr->zero_pos >= end) {
        return false;
    }
    if (s->direct) {
        /* Chunks end aligned except the last, so only the first and the
         * last chunk can need a read-modify-write of their edges. */
        int64_t chunk_end = align_down(fr->zero_pos + len, s->align);

        if (chunk_end > fr->zero_pos && chunk_end < end) {
            len = chunk_end - fr->zero_pos;
        }
        fr->aoffset = align_down(fr->zero_pos, s->align);
        fr->alen = align_up(fr->zero_pos + len, s->align) - fr->aoffset;
    } else {
        fr->aoffset = fr->zero_pos;
        fr->alen = len;
    }
    free(fr->bounce);
    file_bounce_alloc(fr);
    if (fr->aoffset != fr->zero_pos || fr->alen != len) {
        fr->stage = STAGE_RMW_READ;
        file_op_set_buf(fr, FILE_OP_READ, fr->bounce, fr->aoffset, fr->alen);
    } else {
        memset(fr->bounce, 0, fr->alen);
        fr->stage = STAGE_ZERO_WRITE;
        file_op_set_buf(fr, FILE_OP_WRITE, fr->bounce, fr->aoffset, fr->alen);
    }
    fr->zero_pos += len;
    file_op_start(fr);
    return true;
}

/*
 * Chooses the next way to zero the request's range after the previous one
 * turned out to be unsupported, and starts it; or finishes the request.
 */
static void file_zero_next_method(FileReq *fr)
{
    FileState *s = fr->s;
    BdrvRequest *req = fr->req;

    bool punch = dp_atomic_load_relaxed(&s->has_punch_hole);
    bool zero_range = dp_atomic_load_relaxed(&s->has_zero_range);

    /* As in QEMU, unmapping is allowed only with discard=unmap. */
    if ((req->flags & BDRV_REQ_MAY_UNMAP) && !s->discard_ignore && punch &&
        fr->stage < STAGE_ZERO_PUNCH) {
        fr->stage = STAGE_ZERO_PUNCH;
        file_op_set_fallocate(fr, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              req->offset, req->bytes);
    } else if (zero_range && fr->stage < STAGE_ZERO_RANGE) {
        fr->stage = STAGE_ZERO_RANGE;
        file_op_set_fallocate(fr, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                              req->offset, req->bytes);
    } else if (punch && fr->stage < STAGE_ZERO_REALLOC) {
        /* Punch, then allocate again (STAGE_ZERO_REALLOC next). */
        fr->stage = STAGE_ZERO_REALLOC;
        file_op_set_fallocate(fr, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              req->offset, req->bytes);
    } else if (req->flags & BDRV_REQ_NO_FALLBACK) {
        /* This may run inside the submit call (when the file system is
         * already known to lack both fallocate modes). */
        fr->defer_completion = true;
        file_req_finish(fr, -ENOTSUP);
        return;
    } else {
        fr->zero_pos = req->offset;
        if (!file_zero_write_next(fr)) {
            file_req_finish(fr, 0);
        }
        return;
    }
    file_op_start(fr);
}

/* The first FileOp of a request (run when it no longer waits). */
static void file_req_start(FileReq *fr)
{
    FileState *s = fr->s;
    BdrvRequest *req = fr->req;
    bool aligned;

    switch (req->type) {
    case BDRV_REQUEST_READ:
    case BDRV_REQUEST_WRITE:
        aligned =
            !s->direct || ((req->offset | req->bytes) & (s->align - 1)) == 0;
        if (aligned && s->direct) {
            aligned = iov_is_aligned(req->qiov, s->align);
        }
        if (aligned) {
            fr->stage = STAGE_RW;
            file_op_set_qiov(fr, req->type == BDRV_REQUEST_READ
                                     ? FILE_OP_READ
                                     : FILE_OP_WRITE);
            if (req->flags & BDRV_REQ_FUA) {
                fr->rw_flags = RWF_DSYNC;
            }
        } else {
            file_bounce_alloc(fr);
            if (req->type == BDRV_REQUEST_WRITE &&
                (fr->aoffset != req->offset || fr->alen != req->bytes)) {
                fr->stage = STAGE_RMW_READ;
                file_op_set_buf(fr, FILE_OP_READ, fr->bounce, fr->aoffset,
                                fr->alen);
            } else if (req->type == BDRV_REQUEST_WRITE) {
                /* Only the buffers are unaligned: copy, no read needed. */
                iov_to_buf(req->qiov, 0, fr->bounce, req->bytes);
                fr->stage = STAGE_RMW_WRITE;
                file_op_set_buf(fr, FILE_OP_WRITE, fr->bounce, fr->aoffset,
                                fr->alen);
                if (req->flags & BDRV_REQ_FUA) {
                    fr->rw_flags = RWF_DSYNC;
                }
            } else {
                fr->stage = STAGE_BOUNCE_READ;
                file_op_set_buf(fr, FILE_OP_READ, fr->bounce, fr->aoffset,
                                fr->alen);
            }
        }
        break;
    case BDRV_REQUEST_FLUSH:
        fr->stage = STAGE_RW;
        fr->op = FILE_OP_FSYNC;
        break;
    case BDRV_REQUEST_DISCARD:
        fr->stage = STAGE_RW;
        file_op_set_fallocate(fr, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              req->offset, req->bytes);
        break;
    case BDRV_REQUEST_ZEROES:
        fr->stage = STAGE_RW;
        file_zero_next_method(fr);
        return;
    default:
        g_assert_not_reached();
    }
    file_op_start(fr);
}

static void file_submit(BlockDriverState *bs, BdrvRequest *req)
{
    FileState *s = bs->opaque;
    FileReq *fr = g_new0(FileReq, 1);

    fr->s = s;
    fr->req = req;
    fr->ctx = bdrv_request_run_ctx(req);
    if (s->use_io_uring) {
        fr->ring = file_ring_get(fr->ctx);
    }
    fr->aoffset = align_down(req->offset, s->align);
    fr->alen = align_up(req->offset + req->bytes, s->align) - fr->aoffset;

    if (s->direct && req->type != BDRV_REQUEST_READ &&
        req->type != BDRV_REQUEST_FLUSH) {
        /* Zeroing may fall back to read-modify-write: treat it as one. */
        fr->serialising = req->type == BDRV_REQUEST_ZEROES ||
                          fr->aoffset != req->offset || fr->alen != req->bytes;
        dp_mutex_lock(&s->track_lock);
        if (file_req_conflicts(s, fr) || !STAILQ_EMPTY(&s->waiting)) {
            /* Behind earlier waiters too, so that overlapping writes keep
             * their order. */
            STAILQ_INSERT_TAIL(&s->waiting, fr, wait_next);
            dp_mutex_unlock(&s->track_lock);
            return;
        }
        TAILQ_INSERT_TAIL(&s->tracked, fr, tracked_next);
        fr->tracked = true;
        dp_mutex_unlock(&s->track_lock);
    }
    file_req_start(fr);
}

/* ---- completions ------------------------------------------------------- */

static bool errno_is_unsupported(int ret)
{
    return ret == -EOPNOTSUPP || ret == -ENOTSUP || ret == -ENOSYS;
}

/* A READ or WRITE op completed with ret >= 0 bytes: true if it is done,
 * false if it started the rest. */
static bool file_transfer_progress(FileReq *fr, int ret)
{
    if (ret > 0 && ret < fr->len) {
        file_op_advance(fr, ret);
        file_op_start(fr);
        return false;
    }
    if (ret == 0 && fr->len > 0 && fr->op == FILE_OP_READ) {
        /* End of file inside the node (a file that shrank, or an O_DIRECT
         * read of the last block): the rest reads as zeroes. */
        int i;

        for (i = 0; i < fr->niov; i++) {
            memset(fr->iov[i].iov_base, 0, fr->iov[i].iov_len);
        }
    }
    return true;
}

/*
 * file_op_complete, one step per stage of a request (FileReq.stage).  Each
 * is given the result of the FileOp that just ended (bytes, or -errno) and
 * either starts the next FileOp or finishes the request.  A transfer that
 * moved fewer bytes than asked goes on first (file_transfer_progress).
 */

/* STAGE_RW: a plain read, write, flush, discard or fallocate. */
static void complete_rw(FileReq *fr, int ret)
{
    if (fr->req->type == BDRV_REQUEST_DISCARD && errno_is_unsupported(ret)) {
        /* Discard is advisory: a file system without holes ignores it. */
        dp_atomic_store_relaxed(&fr->s->has_punch_hole, false);
        ret = 0;
    }
    if (ret >= 0 && (fr->op == FILE_OP_READ || fr->op == FILE_OP_WRITE) &&
        !file_transfer_progress(fr, ret)) {
        return;
    }
    file_req_finish(fr, ret < 0 ? ret : 0);
}

/* STAGE_BOUNCE_READ: an unaligned O_DIRECT read, via the aligned bounce. */
static void complete_bounce_read(FileReq *fr, int ret)
{
    BdrvRequest *req = fr->req;

    if (ret >= 0 && !file_transfer_progress(fr, ret)) {
        return;
    }
    if (ret >= 0) {
        iov_from_buf(req->qiov, 0, fr->bounce + (req->offset - fr->aoffset),
                     req->bytes);
    }
    file_req_finish(fr, ret < 0 ? ret : 0);
}

/* STAGE_RMW_READ: the aligned range is read; patch it (with the data, or
 * with zeroes) and write it back. */
static void complete_rmw_read(FileReq *fr, int ret)
{
    BdrvRequest *req = fr->req;

    if (ret >= 0 && !file_transfer_progress(fr, ret)) {
        return;
    }
    if (ret < 0) {
        file_req_finish(fr, ret);
        return;
    }
    if (req->type == BDRV_REQUEST_ZEROES) {
        int64_t start = fr->zero_pos; /* already advanced past chunk */
        int64_t from = MAX(fr->aoffset, req->offset);
        int64_t to = MIN(start, fr->aoffset + fr->alen);

        memset(fr->bounce + (from - fr->aoffset), 0, to - from);
        fr->stage = STAGE_ZERO_WRITE;
    } else {
        iov_to_buf(req->qiov, 0, fr->bounce + (req->offset - fr->aoffset),
                   req->bytes);
        fr->stage = STAGE_RMW_WRITE;
        if (req->flags & BDRV_REQ_FUA) {
            fr->rw_flags = RWF_DSYNC;
        }
    }
    file_op_set_buf(fr, FILE_OP_WRITE, fr->bounce, fr->aoffset, fr->alen);
    file_op_start(fr);
}

/* STAGE_RMW_WRITE: the patched range is written back. */
static void complete_rmw_write(FileReq *fr, int ret)
{
    if (ret >= 0 && !file_transfer_progress(fr, ret)) {
        return;
    }
    file_req_finish(fr, ret < 0 ? ret : 0);
}

/* STAGE_ZERO_PUNCH, STAGE_ZERO_RANGE: a zeroing fallocate; a file system
 * without that mode is remembered, and the next method tried. */
static void complete_zero_fallocate(FileReq *fr, int ret)
{
    if (errno_is_unsupported(ret)) {
        if (fr->stage == STAGE_ZERO_PUNCH) {
            dp_atomic_store_relaxed(&fr->s->has_punch_hole, false);
        } else {
            dp_atomic_store_relaxed(&fr->s->has_zero_range, false);
        }
        file_zero_next_method(fr);
        return;
    }
    file_req_finish(fr, ret < 0 ? ret : 0);
}

/* STAGE_ZERO_REALLOC: punch a hole, then allocate it again (KEEP_SIZE). */
static void complete_zero_realloc(FileReq *fr, int ret)
{
    BdrvRequest *req = fr->req;

    if (errno_is_unsupported(ret) && fr->mode != FALLOC_FL_KEEP_SIZE) {
        dp_atomic_store_relaxed(&fr->s->has_punch_hole, false);
        file_zero_next_method(fr);
        return;
    }
    if (ret < 0 || fr->mode == FALLOC_FL_KEEP_SIZE) {
        /* Done: the hole reads as zeroes, and allocating it again is best
         * effort (a full disk must not fail the zeroing). */
        file_req_finish(fr,
                        ret < 0 && fr->mode != FALLOC_FL_KEEP_SIZE ? ret : 0);
        return;
    }
    file_op_set_fallocate(fr, FALLOC_FL_KEEP_SIZE, req->offset, req->bytes);
    file_op_start(fr);
}

/* STAGE_ZERO_WRITE: zeroes written from a buffer, chunk after chunk. */
static void complete_zero_write(FileReq *fr, int ret)
{
    if (ret >= 0 && !file_transfer_progress(fr, ret)) {
        return;
    }
    if (ret < 0 || !file_zero_write_next(fr)) {
        file_req_finish(fr, ret < 0 ? ret : 0);
    }
}

void file_op_complete(FileReq *fr, int ret)
{
    if (ret == -EINTR || ret == -EAGAIN) {
        file_op_start(fr);
        return;
    }
    if (ret == 0 && fr->op == FILE_OP_WRITE && fr->len > 0) {
        ret = -EIO; /* a write that makes no progress would loop forever */
    }
    switch (fr->stage) {
    case STAGE_RW:
        complete_rw(fr, ret);
        return;
    case STAGE_BOUNCE_READ:
        complete_bounce_read(fr, ret);
        return;
    case STAGE_RMW_READ:
        complete_rmw_read(fr, ret);
        return;
    case STAGE_RMW_WRITE:
        complete_rmw_write(fr, ret);
        return;
    case STAGE_ZERO_PUNCH:
    case STAGE_ZERO_RANGE:
        complete_zero_fallocate(fr, ret);
        return;
    case STAGE_ZERO_REALLOC:
        complete_zero_realloc(fr, ret);
        return;
    case STAGE_ZERO_WRITE:
        complete_zero_write(fr, ret);
        return;
    }
    g_assert_not_reached();
}

/* ---- the other ops ------------------------------------------------------ */

static void file_pdiscard(BlockDriverState *bs, BdrvRequest *req)
{
    FileState *s = bs->opaque;

    if (s->discard_ignore || !dp_atomic_load_relaxed(&s->has_punch_hole)) {
        bdrv_request_complete_later(req, 0);
        return;
    }
    file_submit(bs, req);
}

/*
 * SEEK_DATA/SEEK_HOLE are metadata lookups that do not wait for the disk
 * on the file systems that implement them, so they run inline; the answer
 * is still delivered later, from the completion BH.
 */
static void file_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    FileState *s = bs->opaque;
    int64_t end = req->offset + req->bytes;
    off_t data = lseek(s->fd, req->offset, SEEK_DATA);

    if (data < 0 && errno == ENXIO) {
        /* No data from here to the end of the file: all hole. */
        req->pnum = req->bytes;
        req->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    } else if (data < 0) {
        /* The file system cannot tell: everything is data. */
        req->pnum = req->bytes;
        req->status = 0;
    } else if (data > req->offset) {
        req->pnum = MIN(data, end) - req->offset;
        req->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    } else {
        off_t hole = lseek(s->fd, req->offset, SEEK_HOLE);

        req->pnum = hole < 0 ? req->bytes : MIN(hole, end) - req->offset;
        if (req->pnum <= 0) {
            req->pnum = req->bytes;
        }
        req->status = 0;
    }
    bdrv_request_complete_later(req, 0);
}

/* ---- open, close, moves ------------------------------------------------- */

/*
 * The O_DIRECT alignment: 512 if a 512-byte read at 512-byte aligned
 * address and offset works, else 4096 (what every Linux file system and
 * device accepts).  A file too short to tell gets 4096.
 */
static size_t file_probe_align(int fd)
{
    char *buf;
    ssize_t n;
    size_t align = 4096;

    if (posix_memalign((void **)&buf, 4096, 8192) != 0) {
        g_error("out of memory");
    }
    n = pread(fd, buf + 512, 512, 0);
    if (n == 512) {
        align = 512;
    }
    free(buf);
    return align;
}

static const char *file_type_name(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    return "not a disk";
}

/*
 * Only a regular file or a block device is a disk: a directory would read
 * as an 8 EiB disk, a FIFO or a character device as a stream.  For those
 * that are, the O_NONBLOCK of the open() is cleared again (it means
 * nothing to them today, and must not start meaning something).
 */
static int file_check_type(int fd, const char *filename, Error **errp)
{
    struct stat st;
    int fl;

    if (fstat(fd, &st) < 0) {
        int ret = -errno;

        error_setg_errno(errp, -ret, "Could not stat '%s'", filename);
        return ret;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        error_setg(errp,
                   "'%s' is %s: driver 'file' takes a regular file or a "
                   "block device",
                   filename, file_type_name(st.st_mode));
        return -EINVAL;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int ret = -errno;

        error_setg_errno(errp, -ret, "Could not set up '%s'", filename);
        return ret;
    }
    return 0;
}

static int file_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    FileState *s = bs->opaque;
    const char *filename = bdrv_opt_get(opts, "filename");
    const char *aio = bdrv_opt_get(opts, "aio");
    const char *discard = bdrv_opt_get(opts, "discard");
    int flags;
    off_t len;
    int ret;

    if (!filename) {
        error_setg(errp, "Parameter 'filename' is required by driver 'file'");
        return -EINVAL;
    }
    s->fd = -1;
    s->filename = g_strdup(filename);
    s->direct = bdrv_opt_get_bool(opts, "cache.direct", false);
    /* QEMU's default is to ignore discards: they cost a system call and
     * give up preallocation; discard=unmap turns them on. */
    s->discard_ignore = !discard || !strcmp(discard, "ignore");
    s->use_io_uring = !aio || !strcmp(aio, "io_uring");
    s->has_punch_hole = true;
    s->has_zero_range = true;
    s->align = 1;
    dp_mutex_init(&s->track_lock);
    TAILQ_INIT(&s->tracked);
    STAILQ_INIT(&s->waiting);

    /* O_NONBLOCK: open() of a FIFO (or of some character devices) would
     * block the main loop until a peer shows up; with it, open() returns
     * and file_check_type() refuses what is not a disk.  O_NOCTTY: a
     * terminal never becomes ours. */
    flags =
        (bs->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (s->direct) {
        flags |= O_DIRECT;
    }
    s->fd = open(filename, flags);
    if (s->fd < 0 && !bs->read_only &&
        (errno == EACCES || errno == EROFS || errno == EPERM) &&
        bdrv_opt_get_bool(opts, "auto-read-only", false)) {
        /* auto-read-only=on: a file we may only read opens read-only. */
        s->fd = open(filename, (flags & ~O_RDWR) | O_RDONLY);
        if (s->fd >= 0) {
            bs->read_only = true;
        }
    }
    if (s->fd < 0) {
        ret = -errno;
        if (ret == -EINVAL && s->direct) {
            error_setg(errp,
                       "Could not open '%s': the file system does not "
                       "support O_DIRECT (cache.direct=on)",
                       filename);
        } else {
            error_setg_errno(errp, -ret, "Could not open '%s'", filename);
        }
        goto fail;
    }
    ret = file_check_type(s->fd, filename, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = file_lock_image(s, bs, bdrv_opt_get(opts, "locking"), errp);
    if (ret < 0) {
        goto fail;
    }
    len = lseek(s->fd, 0, SEEK_END);
    if (len < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not get the size of '%s'",
                         filename);
        goto fail;
    }
    bs->total_bytes = len;
    if (s->direct) {
        s->align = file_probe_align(s->fd);
        if (len % s->align) {
            error_setg(errp,
                       "cache.direct=on needs '%s' to be a multiple of "
                       "%zu bytes long (it is %lld)",
                       filename, s->align, (long long)len);
            ret = -EINVAL;
            goto fail;
        }
    }
    if (s->use_io_uring) {
        Error *local_err = NULL;

        ret = file_uring_init(s, bs->ctx, &local_err);
        if (ret < 0 && aio) {
            error_propagate(errp, local_err);
            goto fail;
        }
        if (ret < 0) {
            /* aio was not asked for: the thread pool does the job. */
            error_free(local_err);
            s->use_io_uring = false;
        }
    }
    return 0;

fail:
    if (s->fd >= 0) {
        close(s->fd);
    }
    g_free(s->filename);
    dp_mutex_destroy(&s->track_lock);
    return ret;
}

static void file_close(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    /* Nothing is in flight; the rings belong to their contexts. */
    close(s->fd);
    g_free(s->filename);
    dp_mutex_destroy(&s->track_lock);
}

/*
 * block_resize, as QEMU's file driver does it without preallocation: a
 * regular file is set to the exact size with ftruncate (growing leaves a
 * hole that reads as zeroes; shrinking drops the tail); a block device
 * cannot change size, so it "resizes" only to at most what it is.
 * Nothing is in flight (the node is drained), so no request races it.
 */
static int file_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        int ret = -errno;

        error_setg_errno(errp, -ret, "Failed to stat '%s'", s->filename);
        return ret;
    }
    if (!S_ISREG(st.st_mode)) {
        off_t len = lseek(s->fd, 0, SEEK_END);

        if (len < 0) {
            int ret = -errno;

            error_setg_errno(errp, -ret, "Could not get the size of '%s'",
                             s->filename);
            return ret;
        }
        if (size > len) {
            error_setg(errp, "Cannot grow device files ('%s' is %lld bytes)",
                       s->filename, (long long)len);
            return -EINVAL;
        }
        return 0;
    }
    if (s->direct && size % s->align) {
        error_setg(errp,
                   "cache.direct=on needs '%s' to be a multiple of %zu "
                   "bytes long (asked for %lld)",
                   s->filename, s->align, (long long)size);
        return -EINVAL;
    }
    if (ftruncate(s->fd, size) < 0) {
        int ret = -errno;

        error_setg_errno(errp, -ret, "Failed to resize '%s'", s->filename);
        return ret;
    }
    return 0;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(FileState),
    .multiqueue = true,
    .options = file_opts,
    .supported_write_flags = BDRV_REQ_FUA,
    .can_grow = true,
    .bdrv_open = file_open,
    .bdrv_close = file_close,
    .bdrv_aio_preadv = file_submit,
    .bdrv_aio_pwritev = file_submit,
    .bdrv_aio_flush = file_submit,
    .bdrv_aio_pdiscard = file_pdiscard,
    .bdrv_aio_pwrite_zeroes = file_submit,
    .bdrv_aio_block_status = file_block_status,
    .bdrv_truncate = file_truncate,
    .supports_shrink = true,
};
