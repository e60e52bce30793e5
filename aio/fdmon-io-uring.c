/*
 * The io_uring backend: each fd handler is a one-shot IORING_OP_POLL_ADD,
 * re-armed after every completion.  One-shot (not multishot) keeps the
 * level-triggered behaviour handlers expect from epoll: a handler that leaves
 * data unread is called again, because re-arming checks readiness at once.
 *
 * Only the polling thread touches the ring.  Handler changes made from any
 * thread (under list_lock) put the node on ctx->fdmon_pending and notify the
 * loop; the next wait() turns pending nodes into POLL_ADD or POLL_REMOVE
 * submissions, all sent with the wait in one io_uring_enter().
 *
 * A node stays allocated (fdmon_busy) while a poll request refers to it: its
 * memory is the request's user_data.  It is released when its final
 * completion (a result or -ECANCELED) is reaped.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "aio/aio-internal.h"
#include "util/clock.h"

#define RING_ENTRIES 256

enum {
    FDMON_IN_PENDING = 1 << 0, /* on ctx->fdmon_pending */
    FDMON_NEED_ARM = 1 << 1,   /* a POLL_ADD should be submitted */
    FDMON_ARMED = 1 << 2,      /* a POLL_ADD is in the kernel */
    FDMON_NEED_CANCEL = 1 << 3 /* a POLL_REMOVE should be submitted */
};

/* user_data of POLL_REMOVE requests: their completions carry no event. */
#define CANCEL_TAG 0

static int fdmon_io_uring_init(AioContext *ctx)
{
    struct io_uring *ring = g_new0(struct io_uring, 1);
    int ret;

    ret = io_uring_queue_init(RING_ENTRIES, ring, 0);
    if (ret < 0) {
        g_free(ring);
        return ret;
    }
    ctx->uring = ring;
    return 0;
}

static void fdmon_io_uring_cleanup(AioContext *ctx)
{
    struct io_uring *ring = ctx->uring;

    if (ring) {
        io_uring_queue_exit(ring);
        g_free(ring);
        ctx->uring = NULL;
    }
}

/* Called with list_lock held. */
static void pending_add(AioContext *ctx, AioHandler *node, unsigned flag)
{
    node->fdmon_flags |= flag;
    if (!(node->fdmon_flags & FDMON_IN_PENDING)) {
        node->fdmon_flags |= FDMON_IN_PENDING;
        node->fdmon_next = ctx->fdmon_pending;
        ctx->fdmon_pending = node;
    }
}

/* Releases a node the backend no longer refers to.  list_lock held. */
static void release_locked(AioContext *ctx, AioHandler *node)
{
    if (!(node->fdmon_flags & (FDMON_ARMED | FDMON_IN_PENDING))) {
        node->fdmon_busy = false;
        ctx->sweep_needed = true;
    }
}

/* Called with list_lock held, from any thread. */
static void fdmon_io_uring_update(AioContext *ctx, AioHandler *old_node,
                                  AioHandler *new_node)
{
    if (old_node) {
        if (old_node->fdmon_flags & FDMON_ARMED) {
            pending_add(ctx, old_node, FDMON_NEED_CANCEL);
        }
        old_node->fdmon_flags &= ~FDMON_NEED_ARM;
        /* Neither armed nor pending (its poll failed with -EBADF and was
         * not re-armed): nothing will complete for it, release it now or
         * it is never freed. */
        release_locked(ctx, old_node);
    }
    /* A node that wants no events (only io_poll) is not armed: a poll
     * request reports errors and hang-ups whatever its mask, and with no
     * handler to consume them it would complete and re-arm for ever. */
    if (new_node && new_node->events) {
        new_node->fdmon_busy = true;
        pending_add(ctx, new_node, FDMON_NEED_ARM);
    }
}

static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

    while (!sqe) {
        /* The submission queue is full: send what is there. */
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Turns the pending list into submissions.  Polling thread only. */
static void flush_pending(AioContext *ctx)
{
    struct io_uring *ring = ctx->uring;
    AioHandler *node;

    dp_mutex_lock(&ctx->list_lock);
    node = ctx->fdmon_pending;
    ctx->fdmon_pending = NULL;
    while (node) {
        AioHandler *next = node->fdmon_next;
        unsigned flags = node->fdmon_flags;

        node->fdmon_flags &=
            ~(FDMON_IN_PENDING | FDMON_NEED_ARM | FDMON_NEED_CANCEL);
        if ((flags & FDMON_NEED_CANCEL) && (flags & FDMON_ARMED)) {
            struct io_uring_sqe *sqe = get_sqe(ring);

            io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)node);
            io_uring_sqe_set_data64(sqe, CANCEL_TAG);
        }
        if ((flags & FDMON_NEED_ARM) && !(flags & FDMON_ARMED) &&
            !aio_handler_is_deleted(node)) {
            struct io_uring_sqe *sqe = get_sqe(ring);
            unsigned mask = 0;

            if (node->events & EPOLLIN) {
                mask |= POLLIN | POLLRDHUP;
            }
            if (node->events & EPOLLOUT) {
                mask |= POLLOUT;
            }
            io_uring_prep_poll_add(sqe, node->fd, mask);
            io_uring_sqe_set_data(sqe, node);
            node->fdmon_flags |= FDMON_ARMED;
        }
        if (aio_handler_is_deleted(node)) {
            release_locked(ctx, node);
        }
        node = next;
    }
    dp_mutex_unlock(&ctx->list_lock);
}

static int fdmon_io_uring_wait(AioContext *ctx, AioReadyEvent *events,
                               int max_events, int64_t timeout_ns)
{
    struct io_uring *ring = ctx->uring;
    struct io_uring_cqe *cqe;
    unsigned head;
    unsigned seen = 0;
    int n = 0;
    int ret;

    int64_t deadline = timeout_ns > 0 ? clock_monotonic_ns() + timeout_ns : 0;

    flush_pending(ctx);
    for (;;) {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };

        if (timeout_ns == 0) {
            ret = io_uring_submit(ring);
            break;
        }
        ret = io_uring_submit_and_wait_timeout(
            ring, &cqe, 1, timeout_ns > 0 ? &ts : NULL, NULL);
        /* Interrupted (a signal, or task work of this or another ring) with
         * nothing to reap: wait for the rest of the timeout, as epoll does,
         * so that a blocking aio_poll() does not return early. */
        if (ret != -EINTR || io_uring_cq_ready(ring)) {
            break;
        }
        if (timeout_ns > 0) {
            timeout_ns = deadline - clock_monotonic_ns();
            if (timeout_ns <= 0) {
                break;
            }
        }
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY) {
        return ret;
    }

    dp_mutex_lock(&ctx->list_lock);
    io_uring_for_each_cqe(ring, head, cqe)
    {
        AioHandler *node = io_uring_cqe_get_data(cqe);

        if (n == max_events) {
            break; /* the rest stay in the ring for the next wait */
        }
        seen++;
        if (!node) {
            continue; /* a POLL_REMOVE's own completion */
        }
        /* One-shot: this is the request's final completion. */
        node->fdmon_flags &= ~FDMON_ARMED;
        if (aio_handler_is_deleted(node)) {
            release_locked(ctx, node);
            continue;
        }
        if (cqe->res > 0) {
            int revents = 0;

            if (cqe->res & (POLLIN | POLLRDHUP)) {
                revents |= EPOLLIN;
            }
            if (cqe->res & POLLOUT) {
                revents |= EPOLLOUT;
            }
            if (cqe->res & POLLERR) {
                revents |= EPOLLERR;
            }
            if (cqe->res & POLLHUP) {
                revents |= EPOLLHUP;
            }
            events[n].node = node;
            events[n].revents = revents;
            n++;
        } else if (cqe->res < 0 && cqe->res != -ECANCELED) {
            /* The poll itself failed (a closed fd, say): report an error to
             * the read handler, as epoll would with EPOLLERR. */
            events[n].node = node;
            events[n].revents = EPOLLERR;
            n++;
            if (cqe->res == -EBADF) {
                continue; /* re-arming a closed fd would fail forever */
            }
        }
        /* Re-armed at the next wait, after the handler ran: level-triggered. */
        pending_add(ctx, node, FDMON_NEED_ARM);
    }
    dp_mutex_unlock(&ctx->list_lock);
    io_uring_cq_advance(ring, seen);
    return n;
}

/* The ring fd polls readable while completions wait in the ring. */
static int fdmon_io_uring_poll_fd(AioContext *ctx)
{
    return ((struct io_uring *)ctx->uring)->ring_fd;
}

/* Arms pending polls without waiting, so that a sleep on the ring fd sees
 * every handler registered so far. */
static void fdmon_io_uring_flush(AioContext *ctx)
{
    flush_pending(ctx);
    io_uring_submit(ctx->uring);
}

const FdMonOps fdmon_io_uring_ops = {
    .name = "io_uring",
    .init = fdmon_io_uring_init,
    .cleanup = fdmon_io_uring_cleanup,
    .update = fdmon_io_uring_update,
    .wait = fdmon_io_uring_wait,
    .poll_fd = fdmon_io_uring_poll_fd,
    .flush = fdmon_io_uring_flush,
};
