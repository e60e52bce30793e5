/*
 * The epoll backend: one epoll instance per context.  Registration changes
 * are system calls made at once from whichever thread changes a handler
 * (epoll_ctl is thread-safe); the wait uses epoll_pwait2 for a nanosecond
 * timeout.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"
#include "util/clock.h"

static int fdmon_epoll_init(AioContext *ctx)
{
    ctx->epollfd = epoll_create1(EPOLL_CLOEXEC);
    return ctx->epollfd < 0 ? -errno : 0;
}

static void fdmon_epoll_cleanup(AioContext *ctx)
{
    if (ctx->epollfd >= 0) {
        close(ctx->epollfd);
        ctx->epollfd = -1;
    }
}

static void fdmon_epoll_update(AioContext *ctx, AioHandler *old_node,
                               AioHandler *new_node)
{
    struct epoll_event ev = {0};
    int op;

    /*
     * A node that wants no events (only io_poll) is kept out of the epoll
     * set: epoll reports errors and hang-ups whatever was asked, and with
     * no handler to consume them every wait would return at once.
     */
    if (!new_node || !new_node->events) {
        if (old_node && old_node->events) {
            /* The fd may already be closed by its owner, which removes it
             * from the epoll set by itself; ignore errors. */
            epoll_ctl(ctx->epollfd, EPOLL_CTL_DEL, old_node->fd, NULL);
        }
        return;
    }
    ev.events = (uint32_t)new_node->events;
    ev.data.ptr = new_node;
    op = old_node && old_node->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ctx->epollfd, op, new_node->fd, &ev) == 0) {
        return;
    }
    if (errno == ENOENT) {
        /* The old fd was closed (which left the epoll set) and its number
         * reused: add it afresh. */
        epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, new_node->fd, &ev);
    } else if (errno == EEXIST) {
        epoll_ctl(ctx->epollfd, EPOLL_CTL_MOD, new_node->fd, &ev);
    }
}

static int fdmon_epoll_wait(AioContext *ctx, AioReadyEvent *events,
                            int max_events, int64_t timeout_ns)
{
    struct epoll_event evs[FDMON_MAX_EVENTS];
    int64_t deadline = timeout_ns > 0 ? clock_monotonic_ns() + timeout_ns : 0;
    struct timespec ts;
    int n;
    int i;

    if (max_events > FDMON_MAX_EVENTS) {
        max_events = FDMON_MAX_EVENTS;
    }
    for (;;) {
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
        }
        n = epoll_pwait2(ctx->epollfd, evs, max_events,
                         timeout_ns >= 0 ? &ts : NULL, NULL);
        if (n >= 0) {
            break;
        }
        if (errno != EINTR) {
            return -errno;
        }
        /*
         * Interrupted, by a signal or by io_uring task work queued to this
         * thread (any ring the thread uses, even one being torn down, can
         * do that).  That is no event: sleep for the rest of the timeout,
         * so that a blocking aio_poll() does not return early with nothing
         * done.  A signal handler wakes the loop with aio_notify().
         */
        if (timeout_ns == 0) {
            return 0;
        }
        if (timeout_ns > 0) {
            timeout_ns = deadline - clock_monotonic_ns();
            if (timeout_ns <= 0) {
                return 0;
            }
        }
    }
    /*
     * A node added by another thread reaches us through the kernel
     * (epoll_ctl, then our wake-up), which the C memory model and TSan do
     * not see.  Pairs with the release store that publishes the node on
     * ctx->handlers in set_handler_internal(), made before epoll_ctl: every
     * node the kernel can hand us is visible through this load.
     */
    if (n > 0) {
        (void)dp_atomic_load_acquire(&ctx->handlers);
    }
    for (i = 0; i < n; i++) {
        events[i].node = evs[i].data.ptr;
        events[i].revents = (int)evs[i].events;
    }
    return n;
}

/* epoll_ctl() takes effect at once: nothing to flush. */
static int fdmon_epoll_poll_fd(AioContext *ctx)
{
    return ctx->epollfd;
}

const FdMonOps fdmon_epoll_ops = {
    .name = "epoll",
    .init = fdmon_epoll_init,
    .cleanup = fdmon_epoll_cleanup,
    .update = fdmon_epoll_update,
    .wait = fdmon_epoll_wait,
    .poll_fd = fdmon_epoll_poll_fd,
};
