/*
 * The file driver's io_uring engine (aio=io_uring).
 *
 * Each node has its own ring, used only from the node's AioContext:
 *  - submission: requests prepare SQEs as they arrive; one BH per loop
 *    iteration calls io_uring_submit() for all of them (a batch: one
 *    system call for everything a loop iteration produced), or sooner,
 *    once the context's aio-max-batch SQEs are waiting;
 *  - completion: the ring signals an eventfd (io_uring_register_eventfd),
 *    watched by the context as an event notifier, whose poll function also
 *    lets adaptive polling reap completions without a system call.
 * Moving the node moves the notifier and the BH; the ring itself has no
 * thread affinity.
 *
 * Files on a memory file system (tmpfs, ramfs) are the exception: such a
 * file cannot be read or written without blocking as far as io_uring can
 * tell (no FMODE_NOWAIT), so the ring hands every one of its requests to a
 * kernel worker thread, and the request costs two context switches and a
 * wake-up for a copy of a few microseconds.  Their reads and writes of up to
 * INLINE_MAX_BYTES are therefore done with preadv/pwritev2 in the node's
 * thread when they arrive, and completed from submit_bh (never inside the
 * submit call), in arrival order.  Larger ones and everything else still
 * go through the ring, so a big copy does not stall the loop.
 *
 * No more SQEs than the ring has entries are ever in flight, so the
 * completion queue (twice as large) cannot overflow; requests beyond that
 * wait on uring_overflow until completions make room.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <sys/uio.h>
#include <sys/vfs.h>

#include "block/file-posix-int.h"

#define RING_ENTRIES 128
#define INLINE_MAX_BYTES (256 * 1024)

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
static void file_uring_complete_inline(FileState *s)
{
    STAILQ_HEAD(, FileReq) done = STAILQ_HEAD_INITIALIZER(done);
    FileReq *fr;

    STAILQ_CONCAT(&done, &s->inline_done);
    while ((fr = STAILQ_FIRST(&done))) {
        STAILQ_REMOVE_HEAD(&done, wait_next);
        file_op_complete(fr, fr->ret);
    }
}

/* Whether fr's FileOp is a small copy to do in the node's thread. */
static bool file_uring_try_inline(FileState *s, FileReq *fr)
{
    ssize_t ret;

    if (!s->uring_copy_inline || fr->len > INLINE_MAX_BYTES ||
        (fr->op != FILE_OP_READ && fr->op != FILE_OP_WRITE)) {
        return false;
    }
    do {
        if (fr->op == FILE_OP_READ) {
            ret = preadv(s->fd, fr->iov, fr->niov, fr->offset);
        } else {
            ret = pwritev2(s->fd, fr->iov, fr->niov, fr->offset, fr->rw_flags);
        }
    } while (ret < 0 && errno == EINTR);
    fr->ret = ret < 0 ? -errno : (int)ret;
    if (STAILQ_EMPTY(&s->inline_done)) {
        aio_bh_schedule(s->submit_bh);
    }
    STAILQ_INSERT_TAIL(&s->inline_done, fr, wait_next);
    return true;
}

static void file_uring_reap(FileState *s)
{
    struct io_uring_cqe *cqe;

    /* Take each CQE off the ring before running its completion: a
     * completion may submit, or drain (a nested aio_poll that reaps here
     * again), and must not see the same CQE twice. */
    while (io_uring_peek_cqe(&s->ring, &cqe) == 0) {
        FileReq *fr = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&s->ring, cqe);
        s->ring_in_flight--;
        file_op_complete(fr, res);
    }

    /* Completions made room: start requests that were waiting for it. */
    while (s->ring_in_flight < RING_ENTRIES &&
           !STAILQ_EMPTY(&s->uring_overflow)) {
        FileReq *fr = STAILQ_FIRST(&s->uring_overflow);

        STAILQ_REMOVE_HEAD(&s->uring_overflow, wait_next);
        file_uring_submit(s, fr);
    }
}

static void file_uring_notifier_cb(EventNotifier *e)
{
    FileState *s =
        (FileState *)((char *)e - offsetof(FileState, ring_notifier));

    event_notifier_test_and_clear(e);
    file_uring_reap(s);
}

static bool file_uring_notifier_poll(EventNotifier *e)
{
    FileState *s =
        (FileState *)((char *)e - offsetof(FileState, ring_notifier));

    if (!io_uring_cq_ready(&s->ring)) {
        return false;
    }
    file_uring_reap(s);
    return true;
}

/* Hands the prepared SQEs to the kernel; ring_queued counts what is left
 * (a partial submit, or none on -EAGAIN/-EBUSY). */
static void file_uring_flush_sqes(FileState *s)
{
    int ret = io_uring_submit(&s->ring);

    s->ring_submits++;
    if (ret > 0) {
        s->ring_queued -= MIN((unsigned)ret, s->ring_queued);
    }
}

/* aio-max-batch (aio_context_set_max_batch): a batch that has reached it
 * goes to the kernel now, not at the end of the loop iteration. */
static void file_uring_check_batch(FileState *s)
{
    int max = aio_context_get_max_batch(s->ctx);

    if (max > 0 && s->ring_queued >= (unsigned)max) {
        file_uring_flush_sqes(s);
    }
}

static void file_uring_submit_bh(void *opaque)
{
    FileState *s = opaque;

    if (!STAILQ_EMPTY(&s->inline_done)) {
        file_uring_complete_inline(s);
    }
    if (!s->ring_queued) {
        return;
    }
    file_uring_flush_sqes(s);
    if (s->ring_queued) {
        /* -EAGAIN/-EBUSY (the kernel is short of resources or completions
         * must be reaped first) or a partial submit: try again next
         * iteration, after this one has reaped. */
        aio_bh_schedule(s->submit_bh);
    }
}

void file_uring_submit(FileState *s, FileReq *fr)
{
    struct io_uring_sqe *sqe;

    if (file_uring_try_inline(s, fr)) {
        return;
    }
    if (s->ring_in_flight >= RING_ENTRIES) {
        STAILQ_INSERT_TAIL(&s->uring_overflow, fr, wait_next);
        return;
    }
    sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        /* The SQ ring is full of prepared entries: hand them over now. */
        file_uring_flush_sqes(s);
        sqe = io_uring_get_sqe(&s->ring);
        if (!sqe) {
            STAILQ_INSERT_TAIL(&s->uring_overflow, fr, wait_next);
            return;
        }
    }
    switch (fr->op) {
    case FILE_OP_READ:
        io_uring_prep_readv(sqe, s->fd, fr->iov, fr->niov, fr->offset);
        break;
    case FILE_OP_WRITE:
        io_uring_prep_writev(sqe, s->fd, fr->iov, fr->niov, fr->offset);
        sqe->rw_flags = fr->rw_flags;
        break;
    case FILE_OP_FSYNC:
        io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
        break;
    case FILE_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, s->fd, fr->mode, fr->offset, fr->len);
        break;
    }
    io_uring_sqe_set_data(sqe, fr);
    s->ring_in_flight++;
    if (s->ring_queued++ == 0) {
        aio_bh_schedule(s->submit_bh);
    }
    file_uring_check_batch(s);
}

int file_uring_init(FileState *s, Error **errp)
{
    int ret = io_uring_queue_init(RING_ENTRIES, &s->ring, 0);

    if (ret < 0) {
        error_setg_errno(errp, -ret,
                         "cannot set up io_uring for '%s' "
                         "(try aio=threads)",
                         s->filename);
        return ret;
    }
    ret = event_notifier_init(&s->ring_notifier, false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot create an eventfd for '%s'",
                         s->filename);
        goto fail_notifier;
    }
    ret = io_uring_register_eventfd(&s->ring,
                                    event_notifier_get_fd(&s->ring_notifier));
    if (ret < 0) {
        error_setg_errno(errp, -ret,
                         "cannot register an eventfd with "
                         "io_uring for '%s'",
                         s->filename);
        goto fail_register;
    }
    STAILQ_INIT(&s->uring_overflow);
    STAILQ_INIT(&s->inline_done);
    s->uring_copy_inline = file_is_in_memory(s->fd);
    s->ring_ready = true;
    return 0;

fail_register:
    event_notifier_cleanup(&s->ring_notifier);
fail_notifier:
    io_uring_queue_exit(&s->ring);
    return ret;
}

void file_uring_cleanup(FileState *s)
{
    if (!s->ring_ready) {
        return;
    }
    g_assert(s->ring_in_flight == 0);
    io_uring_unregister_eventfd(&s->ring);
    event_notifier_cleanup(&s->ring_notifier);
    io_uring_queue_exit(&s->ring);
    s->ring_ready = false;
}

void file_uring_attach(FileState *s, AioContext *ctx)
{
    s->submit_bh = aio_bh_new(ctx, file_uring_submit_bh, s);
    aio_set_event_notifier(ctx, &s->ring_notifier, file_uring_notifier_cb,
                           file_uring_notifier_poll);
}

void file_uring_detach(FileState *s)
{
    /* Drained: nothing is queued or in flight. */
    g_assert(s->ring_in_flight == 0 && s->ring_queued == 0 &&
             STAILQ_EMPTY(&s->inline_done));
    aio_set_event_notifier(s->ctx, &s->ring_notifier, NULL, NULL);
    aio_bh_delete(s->submit_bh);
    s->submit_bh = NULL;
}
