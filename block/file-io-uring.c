/*
 * The file driver's io_uring engine (aio=io_uring).
 *
 * One ring per AioContext (FileRing, context-local storage), shared by every
 * file node whose requests run in that context, used only from that
 * context's thread: this is what makes the file driver multiqueue-safe.  A
 * request takes the ring of the context it runs in when it starts
 * (bdrv_request_run_ctx) and keeps it until it completes, so its completion
 * runs in that context.  The ring goes when its context is freed.
 *  - submission: requests prepare SQEs as they arrive; one BH per loop
 *    iteration calls io_uring_submit() for all of them (a batch: one
 *    system call for everything a loop iteration produced), or at once
 *    when the context's aio-max-batch SQEs are waiting;
 *  - completion: the ring signals an eventfd (io_uring_register_eventfd),
 *    watched by the context as an event notifier, whose poll function also
 *    lets adaptive polling reap completions without a system call.
 * A node that moves has nothing to move here.
 *
 * Some transfers are better done in the submitting thread (file_try_inline):
 *  - files on a memory file system (tmpfs, ramfs) cannot be read or written
 *    without blocking as far as io_uring can tell (no FMODE_NOWAIT), so the
 *    ring hands every one of their requests to a kernel worker thread: a
 *    request costs two context switches and a wake-up for a copy of a few
 *    microseconds.  Their reads and writes of up to INLINE_MAX_BYTES are
 *    done with preadv/pwritev2 when they arrive;
 *  - on other file systems without O_DIRECT, a read of up to
 *    INLINE_MAX_BYTES first tries preadv2(RWF_NOWAIT): a page-cache hit is
 *    copied at once, a miss (EAGAIN, or a short read) goes to the ring for
 *    the rest.  Writes likewise try pwritev2(RWF_NOWAIT) where the file
 *    system accepts it; where it says EOPNOTSUPP (ext4), small writes are
 *    written inline and timed, and go to the ring for a while after one
 *    that blocked (file_try_inline_write).
 * Either way the request is completed from the ring's submit_bh (never
 * inside the submit call), in arrival order.
 *
 * No more SQEs than the ring has entries are ever in flight, so the
 * completion queue (twice as large) cannot overflow; requests beyond that
 * wait on the ring's overflow list until completions make room.  A context
 * that cannot get a ring (the kernel refused one) runs its requests
 * through the threadlet pool instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <sys/uio.h>
#include <sys/vfs.h>

#include "block/file-posix-int.h"
#include "dataplane/threadlet.h"
#include "util/atomic.h"
#include "util/clock.h"

#define RING_ENTRIES 128
#define INLINE_MAX_BYTES (256 * 1024)
#define INLINE_WRITE_SLOW_NS (500 * 1000)           /* 0.5 ms */
#define INLINE_WRITE_BACKOFF_NS (100 * 1000 * 1000) /* 100 ms */

struct FileRing {
    AioContext *ctx;
    bool ready; /* false: io_uring_queue_init failed in this context */
    struct io_uring ring;
    EventNotifier notifier;
    AioBH *submit_bh;
    unsigned queued;                 /* SQEs prepared since the last submit */
    uint64_t submits;                /* io_uring_submit() calls (tests) */
    unsigned in_flight;              /* SQEs prepared and not yet reaped */
    STAILQ_HEAD(, FileReq) overflow; /* waiting for ring space */
    STAILQ_HEAD(, FileReq) inline_done; /* copied, result in fr->ret */
};

/* Whether fd is on a file system whose data lives in memory. */
static bool file_is_in_memory(int fd)
{
    struct statfs st;

    if (fstatfs(fd, &st) < 0) {
        return false;
    }
    return st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC;
}

/* Completes the transfers copied inline since the last call.  Takes the
 * list first: a completion may start another transfer (a short read's
 * rest), which waits for the next run of submit_bh. */
static void file_ring_complete_inline(FileRing *r)
{
    STAILQ_HEAD(, FileReq) done = STAILQ_HEAD_INITIALIZER(done);
    FileReq *fr;

    STAILQ_CONCAT(&done, &r->inline_done);
    while ((fr = STAILQ_FIRST(&done))) {
        STAILQ_REMOVE_HEAD(&done, wait_next);
        file_op_complete(fr, fr->ret);
    }
}

static void file_ring_queue_inline(FileRing *r, FileReq *fr, int ret)
{
    fr->ret = ret;
    if (STAILQ_EMPTY(&r->inline_done)) {
        aio_bh_schedule(r->submit_bh);
    }
    STAILQ_INSERT_TAIL(&r->inline_done, fr, wait_next);
}

/*
 * A buffered write on a file system that cannot say "would block"
 * (RWF_NOWAIT: EOPNOTSUPP, as ext4): io_uring can only hand it to a kernel
 * worker (one per file at a time: buffered writes to one file are hashed
 * to one worker), a sleep and a wake-up for what is usually a copy into
 * the page cache.  So it is written here, and timed: a write that took
 * longer than INLINE_WRITE_SLOW_NS blocked (dirty-page throttling, a
 * journal commit), and the file's writes go to the ring for the next
 * INLINE_WRITE_BACKOFF_NS, so a throttled file does not stall the loop
 * for every request.  FUA writes (RWF_DSYNC) always go to the ring.
 */
static bool file_try_inline_write(FileRing *r, FileReq *fr)
{
    FileState *s = fr->s;
    int64_t start;
    int64_t took;
    ssize_t ret;

    if (fr->rw_flags) {
        return false;
    }
    start = clock_monotonic_ns();
    if (start < dp_atomic_load_relaxed(&s->inline_write_backoff_until)) {
        return false;
    }
    do {
        ret = pwritev(s->fd, fr->iov, fr->niov, fr->offset);
    } while (ret < 0 && errno == EINTR);
    took = clock_monotonic_ns() - start;
    if (took > INLINE_WRITE_SLOW_NS) {
        dp_atomic_store_relaxed(&s->inline_write_backoff_until,
                                start + took + INLINE_WRITE_BACKOFF_NS);
    }
    file_ring_queue_inline(r, fr, ret < 0 ? -errno : (int)ret);
    return true;
}

/*
 * Whether fr's FileOp was done in this thread (its completion queued): a
 * small copy on a memory file system, or a page-cache hit elsewhere.  A
 * NOWAIT transfer that did part of the job advances fr and returns false:
 * the ring does the rest.
 */
static bool file_try_inline(FileRing *r, FileReq *fr)
{
    FileState *s = fr->s;
    ssize_t ret;

    if (fr->len > INLINE_MAX_BYTES ||
        (fr->op != FILE_OP_READ && fr->op != FILE_OP_WRITE)) {
        return false;
    }
    if (s->uring_copy_inline) {
        do {
            if (fr->op == FILE_OP_READ) {
                ret = preadv(s->fd, fr->iov, fr->niov, fr->offset);
            } else {
                ret = pwritev2(s->fd, fr->iov, fr->niov, fr->offset,
                               fr->rw_flags);
            }
        } while (ret < 0 && errno == EINTR);
        file_ring_queue_inline(r, fr, ret < 0 ? -errno : (int)ret);
        return true;
    }
    if (s->direct) {
        return false;
    }
    if (fr->op == FILE_OP_WRITE && !dp_atomic_load_relaxed(&s->nowait_write)) {
        return file_try_inline_write(r, fr);
    }
    if (fr->op == FILE_OP_READ && !dp_atomic_load_relaxed(&s->nowait_read)) {
        return false;
    }
    if (fr->op == FILE_OP_READ) {
        ret = preadv2(s->fd, fr->iov, fr->niov, fr->offset, RWF_NOWAIT);
    } else {
        ret = pwritev2(s->fd, fr->iov, fr->niov, fr->offset,
                       fr->rw_flags | RWF_NOWAIT);
    }
    if (ret < 0) {
        if (errno == EOPNOTSUPP || errno == EINVAL) {
            /* The file system cannot say "would block": stop asking. */
            if (fr->op == FILE_OP_READ) {
                dp_atomic_store_relaxed(&s->nowait_read, false);
            } else {
                dp_atomic_store_relaxed(&s->nowait_write, false);
            }
        }
        return false; /* EAGAIN and the rest: the ring decides */
    }
    if (ret == fr->len || (ret == 0 && fr->op == FILE_OP_READ)) {
        /* Done, or end of file (file_op_complete zero-fills). */
        file_ring_queue_inline(r, fr, (int)ret);
        return true;
    }
    /* Part of it was cached: the ring reads the rest.  file_op_complete
     * sees only the ring's count, which is right for a request whose
     * FileOp now starts where the NOWAIT copy stopped. */
    file_op_advance(fr, ret);
    return false;
}

static void file_ring_reap(FileRing *r)
{
    struct io_uring_cqe *cqe;

    /* Take each CQE off the ring before running its completion: a
     * completion may submit, or drain (a nested aio_poll that reaps here
     * again), and must not see the same CQE twice. */
    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        FileReq *fr = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&r->ring, cqe);
        r->in_flight--;
        file_op_complete(fr, res);
    }

    /* Completions made room: start requests that were waiting for it. */
    while (r->in_flight < RING_ENTRIES && !STAILQ_EMPTY(&r->overflow)) {
        FileReq *fr = STAILQ_FIRST(&r->overflow);

        STAILQ_REMOVE_HEAD(&r->overflow, wait_next);
        file_uring_submit(fr);
    }
}

static void file_ring_notifier_cb(EventNotifier *e)
{
    FileRing *r = container_of(e, FileRing, notifier);

    event_notifier_test_and_clear(e);
    file_ring_reap(r);
}

static bool file_ring_notifier_poll(EventNotifier *e)
{
    FileRing *r = container_of(e, FileRing, notifier);

    if (!io_uring_cq_ready(&r->ring)) {
        return false;
    }
    file_ring_reap(r);
    return true;
}

/* Hands the prepared SQEs to the kernel; queued counts what is left (a
 * partial submit, or none on -EAGAIN/-EBUSY). */
static void file_ring_flush_sqes(FileRing *r)
{
    int ret = io_uring_submit(&r->ring);

    r->submits++;
    if (ret > 0) {
        r->queued -= MIN((unsigned)ret, r->queued);
    }
}

/* aio-max-batch (aio_context_set_max_batch): a batch that has reached it
 * goes to the kernel now, not at the end of the loop iteration. */
static void file_ring_check_batch(FileRing *r)
{
    int max = aio_context_get_max_batch(r->ctx);

    if (max > 0 && r->queued >= (unsigned)max) {
        file_ring_flush_sqes(r);
    }
}

static void file_ring_submit_bh(void *opaque)
{
    FileRing *r = opaque;

    if (!STAILQ_EMPTY(&r->inline_done)) {
        file_ring_complete_inline(r);
    }
    if (!r->queued) {
        return;
    }
    file_ring_flush_sqes(r);
    if (r->queued) {
        /* -EAGAIN/-EBUSY (the kernel is short of resources or completions
         * must be reaped first) or a partial submit: try again next
         * iteration, after this one has reaped. */
        aio_bh_schedule(r->submit_bh);
    }
}

static int file_thread_fn(void *arg)
{
    return file_op_run_sync(arg);
}

static void file_thread_done(void *opaque, int ret)
{
    file_op_complete(opaque, ret);
}

void file_uring_submit(FileReq *fr)
{
    FileRing *r = fr->ring;
    struct io_uring_sqe *sqe;

    if (!r->ready) {
        threadlet_submit_aio(r->ctx, file_thread_fn, fr, file_thread_done, fr);
        return;
    }
    if (file_try_inline(r, fr)) {
        return;
    }
    if (r->in_flight >= RING_ENTRIES) {
        STAILQ_INSERT_TAIL(&r->overflow, fr, wait_next);
        return;
    }
    sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) {
        /* The SQ ring is full of prepared entries: hand them over now. */
        file_ring_flush_sqes(r);
        sqe = io_uring_get_sqe(&r->ring);
        if (!sqe) {
            STAILQ_INSERT_TAIL(&r->overflow, fr, wait_next);
            return;
        }
    }
    switch (fr->op) {
    case FILE_OP_READ:
        io_uring_prep_readv(sqe, fr->s->fd, fr->iov, fr->niov, fr->offset);
        break;
    case FILE_OP_WRITE:
        io_uring_prep_writev(sqe, fr->s->fd, fr->iov, fr->niov, fr->offset);
        sqe->rw_flags = fr->rw_flags;
        break;
    case FILE_OP_FSYNC:
        io_uring_prep_fsync(sqe, fr->s->fd, IORING_FSYNC_DATASYNC);
        break;
    case FILE_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, fr->s->fd, fr->mode, fr->offset, fr->len);
        break;
    }
    io_uring_sqe_set_data(sqe, fr);
    r->in_flight++;
    if (r->queued++ == 0) {
        aio_bh_schedule(r->submit_bh);
    }
    file_ring_check_batch(r);
}

/* ---- one ring per context ---------------------------------------------- */

static void *file_ring_create(AioContext *ctx)
{
    FileRing *r = g_new0(FileRing, 1);
    int ret;

    r->ctx = ctx;
    STAILQ_INIT(&r->overflow);
    STAILQ_INIT(&r->inline_done);
    r->submit_bh = aio_bh_new(ctx, file_ring_submit_bh, r);
    if (io_uring_queue_init(RING_ENTRIES, &r->ring, 0) < 0) {
        return r; /* not ready: the threadlet pool serves this context */
    }
    if (event_notifier_init(&r->notifier, false) < 0) {
        io_uring_queue_exit(&r->ring);
        return r;
    }
    ret = io_uring_register_eventfd(&r->ring,
                                    event_notifier_get_fd(&r->notifier));
    if (ret < 0) {
        event_notifier_cleanup(&r->notifier);
        io_uring_queue_exit(&r->ring);
        return r;
    }
    aio_set_event_notifier(ctx, &r->notifier, file_ring_notifier_cb,
                           file_ring_notifier_poll);
    r->ready = true;
    return r;
}

static void file_ring_destroy(AioContext *ctx, void *value)
{
    FileRing *r = value;

    /* A context is freed only with no I/O in flight in it. */
    g_assert(r->in_flight == 0 && STAILQ_EMPTY(&r->inline_done) &&
             STAILQ_EMPTY(&r->overflow));
    if (r->ready) {
        aio_set_event_notifier(ctx, &r->notifier, NULL, NULL);
        io_uring_unregister_eventfd(&r->ring);
        event_notifier_cleanup(&r->notifier);
        io_uring_queue_exit(&r->ring);
    }
    aio_bh_delete(r->submit_bh);
    g_free(r);
}

static AioContextLocalKey file_ring_key = {
    .create = file_ring_create,
    .destroy = file_ring_destroy,
};

FileRing *file_ring_get(AioContext *ctx)
{
    return aio_context_get_local(ctx, &file_ring_key);
}

uint64_t file_ring_submits(AioContext *ctx)
{
    return file_ring_get(ctx)->submits;
}

int file_uring_init(FileState *s, AioContext *ctx, Error **errp)
{
    FileRing *r = file_ring_get(ctx);

    if (!r->ready) {
        error_setg(errp,
                   "cannot set up io_uring for '%s' "
                   "(try aio=threads)",
                   s->filename);
        return -ENOSYS;
    }
    s->uring_copy_inline = file_is_in_memory(s->fd);
    s->nowait_read = !s->uring_copy_inline;
    s->nowait_write = !s->uring_copy_inline;
    return 0;
}
