/*
 * AioContext life cycle, aio_notify() and aio_poll().
 */
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aio/aio-internal.h"
#include "aio/doorbell-line.h"
#include "aio/poll-window.h"
#include "util/atomic.h"
#include "util/clock.h"

const char *aio_backend_name(AioBackend backend)
{
    return backend == AIO_BACKEND_IO_URING ? "io_uring" : "epoll";
}

bool aio_backend_parse(const char *name, AioBackend *backend, Error **errp)
{
    if (!strcmp(name, "epoll")) {
        *backend = AIO_BACKEND_EPOLL;
    } else if (!strcmp(name, "io_uring")) {
        *backend = AIO_BACKEND_IO_URING;
    } else {
        error_setg(errp, "unknown event loop backend '%s' (epoll or io_uring)",
                   name);
        return false;
    }
    return true;
}

/*
 * The context's own notifier fired: clear it.  This is the only place the
 * eventfd is read (aio_notify_accept() only resets the `notified` flag),
 * which also covers a write that comes after its flag was consumed (the
 * notifier stored `notified`, saw notify_me != 0, and wrote only after the
 * loop had already woken and accepted the flag): such a stale write would
 * otherwise keep the eventfd readable and turn every later blocking
 * aio_poll() into a busy loop.
 */
static void ctx_notifier_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

/* Polling sees aio_notify() without a system call. */
static bool ctx_notifier_poll(EventNotifier *e)
{
    AioContext *ctx =
        (AioContext *)((char *)e - offsetof(AioContext, notifier));

    return dp_atomic_load_relaxed(&ctx->notified);
}

/* aio_context_get_index's counter. */
static unsigned next_index;

AioContext *aio_context_new_with_backend(AioBackend backend, Error **errp)
{
    AioContext *ctx = g_aligned_alloc0(1, sizeof(AioContext), AIO_CACHELINE);
    int ret;

    ctx->refcnt = 1;
    ctx->doorbells_rung = aio_doorbell_word_get();
    ctx->index = dp_atomic_fetch_add_relaxed(&next_index, 1);
    ctx->backend = backend;
    ctx->fdmon = backend == AIO_BACKEND_IO_URING ? &fdmon_io_uring_ops
                                                 : &fdmon_epoll_ops;
    ctx->epollfd = -1;
    ctx->poll_grow = 2;
    ctx->fd_skip_limit = AIO_FD_SKIP_MIN;
    dp_mutex_init(&ctx->list_lock);
    aio_context_lock_init(ctx);
    aio_timers_init(ctx);

    ret = event_notifier_init(&ctx->notifier, false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot create the event loop's eventfd");
        goto fail_notifier;
    }
    ret = ctx->fdmon->init(ctx);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot start the %s event loop backend",
                         ctx->fdmon->name);
        goto fail_fdmon;
    }
    aio_set_event_notifier(ctx, &ctx->notifier, ctx_notifier_read,
                           ctx_notifier_poll);
    aio_defer_init(ctx);
    return ctx;

fail_fdmon:
    event_notifier_cleanup(&ctx->notifier);
fail_notifier:
    aio_timers_cleanup(ctx);
    aio_context_lock_destroy(ctx);
    dp_mutex_destroy(&ctx->list_lock);
    aio_doorbell_word_put(ctx->doorbells_rung);
    g_aligned_free(ctx);
    return NULL;
}

AioContext *aio_context_new(Error **errp)
{
    return aio_context_new_with_backend(AIO_BACKEND_EPOLL, errp);
}

unsigned aio_context_get_index(AioContext *ctx)
{
    return ctx->index;
}

AioBackend aio_context_get_backend(AioContext *ctx)
{
    return ctx->backend;
}

void aio_context_ref(AioContext *ctx)
{
    dp_atomic_fetch_add_relaxed(&ctx->refcnt, 1);
}

void aio_context_unref(AioContext *ctx)
{
    if (dp_atomic_fetch_sub_acq_rel(&ctx->refcnt, 1) != 1) {
        return;
    }
    aio_defer_cleanup(ctx);
    aio_set_event_notifier(ctx, &ctx->notifier, NULL, NULL);
    aio_bh_free_pending(ctx);
    ctx->fdmon->cleanup(ctx);
    aio_handlers_free_all(ctx);
    event_notifier_cleanup(&ctx->notifier);
    aio_timers_cleanup(ctx);
    aio_context_lock_destroy(ctx);
    dp_mutex_destroy(&ctx->list_lock);
    aio_doorbell_word_put(ctx->doorbells_rung);
    g_aligned_free(ctx);
}

/*
 * The wake-up protocol (a Dekker-style pairing of two seq_cst accesses):
 *
 *   aio_poll():   notify_me++ (seq_cst)        aio_notify(): notified = true
 *                 load notified, BHs (seq_cst)                (seq_cst store)
 *                 block in the backend                       load notify_me
 *                                                            (seq_cst); if set,
 *                                                                write eventfd
 *
 * Either aio_notify() sees notify_me != 0 and writes the eventfd, or
 * aio_poll() sees the work (notified, a scheduled BH) and does not block.
 * When the loop is busy running callbacks (notify_me == 0) a notify costs
 * one store and one fence, no system call.
 */
void aio_notify_bh(AioContext *ctx)
{
    /* The seq_cst push of the BH stands for the store of `notified`: a
     * loop about to sleep looks at the stack after incrementing notify_me
     * (aio_compute_timeout), and a busy-polling one looks at it anyway.
     * Not setting `notified` keeps the flag's cache line, which the
     * sleeping side reads, out of every hand-off; and the loop's own
     * thread, running code rather than sleeping, pays nothing more than
     * this load. */
    if (dp_atomic_load_seq_cst(&ctx->notify_me)) {
        aio_notify(ctx);
    }
}

void aio_notify(AioContext *ctx)
{
    /* Both accesses seq_cst: the store cannot pass the load.  Pairs with the
     * seq_cst increment of notify_me and loads in aio_poll(). */
    dp_atomic_store_seq_cst(&ctx->notified, true);
    if (dp_atomic_load_seq_cst(&ctx->notify_me)) {
        /* A sleeper's clock for aio_sample_wake_latency(). */
        dp_atomic_store_relaxed(&ctx->notify_write_ns, clock_monotonic_ns());
        event_notifier_set(&ctx->notifier);
        dp_atomic_inc_relaxed(&ctx->stats.notify_writes);
    }
}

/* Clears the wake-up state after the loop woke (or decided not to sleep). */
static void aio_notify_accept(AioContext *ctx)
{
    /* The eventfd itself is cleared by its handler (ctx_notifier_read)
     * when it is readable: most notifies (a BH scheduled by the loop's own
     * thread, or while it spins) never write it, and a read here would be
     * a failing system call per iteration. */
    if (dp_atomic_load_relaxed(&ctx->notified)) {
        /* Only when set: a store per iteration would take the line from
         * the threads that read it. */
        dp_atomic_store_seq_cst(&ctx->notified, false);
    }
}

/* 0 if there is work already, else the time to the next timer (-1: none).
 * Also used by the GLib source's prepare (aio-gsource.c). */
int64_t aio_compute_timeout(AioContext *ctx)
{
    if (dp_atomic_load_seq_cst(&ctx->notified) || aio_bh_has_pending(ctx)) {
        return 0;
    }
    return aio_timers_deadline_ns(ctx);
}

/*
 * Busy-polls the io_poll handlers, the BHs and the notify flag for up to
 * the current polling window (never past the next timer).  Returns whether
 * it found work; *progress says whether a user handler did work.
 *
 * A rung doorbell BH runs at once, in this aio_poll() call (call): the
 * hand-off that polling exists for then costs the time to see the bell
 * and no more, not the rest of the iteration.  *bh_ran says whether one
 * ran.
 */
static bool aio_busy_poll(AioContext *ctx, int64_t start, int64_t timeout,
                          uint64_t call, bool *progress, bool *bh_ran)
{
    int64_t window = dp_atomic_load_relaxed(&ctx->poll_ns);
    int64_t deadline;
    bool found = false;

    if (timeout >= 0 && timeout < window) {
        window = timeout;
    }
    deadline = start + window;
    /* Handlers with polling-mode hooks (a virtqueue turning its kicks
     * off) enter it now; aio_poll() ends it before it blocks. */
    aio_poll_mode_begin(ctx);
    do {
        *progress |= aio_run_poll_handlers_once(ctx, &found);
        if (dp_atomic_load_relaxed(ctx->doorbells_rung)) {
            *bh_ran |= aio_bh_run_doorbells(ctx, call);
            found = true;
        } else if (aio_bh_has_pending(ctx)) {
            found = true;
        }
    } while (!found && clock_monotonic_ns() < deadline);
    return found;
}

/*
 * Whether polling could have seen what ended the wait: a BH or
 * aio_notify(), or a ready fd whose handler has a poll function.  A wait
 * ended only by fds without one (a socket waiting on its client) is one
 * that no polling window can shorten: spinning through it only takes the
 * CPU from whoever the loop is waiting for.
 */
static bool aio_wake_was_pollable(AioContext *ctx, AioReadyEvent *events, int n)
{
    int i;

    if (n <= 0 || dp_atomic_load_relaxed(&ctx->notified) ||
        aio_bh_has_pending(ctx)) {
        return true;
    }
    for (i = 0; i < n; i++) {
        if (events[i].node->en_poll || events[i].node->io_poll) {
            return true;
        }
    }
    return false;
}

/* Adjusts the polling window after a wait that polling did not cover
 * (the policy is in poll-window.c). */
static void aio_adjust_polling(AioContext *ctx, int64_t block_ns, bool pollable)
{
    AioPollParams params = {
        .max_ns = dp_atomic_load_relaxed(&ctx->poll_max_ns),
        .grow = dp_atomic_load_relaxed(&ctx->poll_grow),
        .shrink = dp_atomic_load_relaxed(&ctx->poll_shrink),
    };
    int64_t poll_ns = dp_atomic_load_relaxed(&ctx->poll_ns);
    int64_t next = aio_poll_window_next(&params, poll_ns, block_ns, pollable,
                                        aio_wake_latency_ns());

    if (next != poll_ns) {
        dp_atomic_store_relaxed(&ctx->poll_ns, next);
    }
}

/* After a sleep: if an aio_notify() wrote the eventfd during it, how long
 * this thread took to run after that write is one sample of what a
 * sleeping wake-up costs (poll-window.c says why that matters). */
static void aio_sample_wake_latency(AioContext *ctx, int64_t slept_since,
                                    int64_t now)
{
    int64_t written = dp_atomic_load_relaxed(&ctx->notify_write_ns);

    if (written > slept_since && written <= now) {
        aio_wake_latency_sample(now - written);
    }
}

/* What aio_poll() stores in ctx->poll_owner: one per thread. */
static __thread char poll_owner_token;

bool aio_poll_owned_by_self(AioContext *ctx)
{
    return dp_atomic_load_relaxed(&ctx->poll_owner) == &poll_owner_token;
}

bool aio_poll(AioContext *ctx, bool blocking)
{
    AioReadyEvent events[FDMON_MAX_EVENTS];
    bool progress = false;
    bool polled_found = false;
    bool polled = false;
    bool will_block = false;
    int64_t timeout = 0;
    int64_t start = 0;
    int64_t block_start = 0;
    uint64_t call;
    bool bh_ran = false; /* doorbell BHs ran while busy-polling */
    bool skippable;
    const void *prev_owner;
    int n;

    aio_context_assert_may_run(ctx);
    /* Nested calls (a callback polling) find it set already. */
    prev_owner = dp_atomic_load_relaxed(&ctx->poll_owner);
    dp_atomic_store_relaxed(&ctx->poll_owner, &poll_owner_token);
    dp_atomic_inc_relaxed(&ctx->stats.iterations);
    aio_handlers_walk_begin(ctx);
    call = aio_bh_poll_begin(ctx);

    if (blocking) {
        timeout = aio_compute_timeout(ctx);
        if (timeout != 0 && dp_atomic_load_relaxed(&ctx->poll_max_ns) > 0) {
            start = clock_monotonic_ns();
            if (dp_atomic_load_relaxed(&ctx->poll_ns) > 0) {
                /* notify_me stays 0 while we spin: polling sees the
                 * notified flag itself, so aio_notify() needs no write. */
                polled = true;
                polled_found = aio_busy_poll(ctx, start, timeout, call,
                                             &progress, &bh_ran);
                dp_atomic_inc_relaxed(polled_found ? &ctx->stats.poll_hits
                                                   : &ctx->stats.poll_misses);
                if (polled_found) {
                    timeout = 0;
                }
            }
        }
        if (timeout != 0 && aio_poll_mode_end(ctx)) {
            /* Out of polling mode: handlers that turned their
             * notifications off turned them on again; anything that
             * arrived in between is found by one more poll, not left
             * waiting for a notification that was never sent. */
            bool found = false;

            progress |= aio_run_poll_handlers_once(ctx, &found);
            if (found) {
                timeout = 0;
            }
        }
        if (timeout != 0) {
            /* About to block.  Pairs with the seq_cst accesses in
             * aio_notify(): check again for work that arrived before the
             * increment (its notify saw notify_me == 0 and did not write),
             * and take the time polling used off the timer's timeout. */
            will_block = true;
            dp_atomic_inc_relaxed(&ctx->stats.sleeps);
            dp_atomic_fetch_add_seq_cst(&ctx->notify_me, 1);
            timeout = aio_compute_timeout(ctx);
            block_start = start;
        }
    }

    /*
     * When the loop does not sleep only because BHs are pending (a
     * cross-thread hand-off that polling noticed, a BH chain), the fd
     * harvest is a system call that usually finds nothing: a wake-up would
     * pay it on every hop (a system call costs 1-1.5 us on these VMs, more
     * than a whole iteration).  Skip it up to fd_skip_limit iterations in
     * a row, so that plain fd handlers still run within a bounded number
     * of iterations.  The limit adapts: a harvest forced by it that finds
     * nothing doubles it (up to AIO_FD_SKIP_MAX), any harvest that finds a
     * ready fd sets it back to AIO_FD_SKIP_MIN, so a loop whose fds are busy
     * looks at them often and one passing BHs back and forth rarely pays
     * the system call.  When a polled handler made progress, harvest as
     * always (fd handlers are never starved by polled ones); non-blocking
     * calls always harvest (callers loop on them until no progress,
     * expecting ready fds to be handled).
     */
    skippable = blocking && !will_block && !progress &&
                (bh_ran || aio_bh_has_pending(ctx));
    if (skippable && ctx->fd_skips < ctx->fd_skip_limit) {
        ctx->fd_skips++;
        n = 0;
    } else {
        ctx->fd_skips = 0;
        n = ctx->fdmon->wait(ctx, events, FDMON_MAX_EVENTS, timeout);
        if (n > 0) {
            ctx->fd_skip_limit = AIO_FD_SKIP_MIN;
        } else if (skippable && ctx->fd_skip_limit < AIO_FD_SKIP_MAX) {
            ctx->fd_skip_limit *= 2;
        }
    }

    if (blocking) {
        if (will_block) {
            dp_atomic_fetch_sub_seq_cst(&ctx->notify_me, 1);
        }
        if (start && !polled_found) {
            int64_t now = clock_monotonic_ns();

            if (block_start && n > 0) {
                aio_sample_wake_latency(ctx, block_start, now);
            }
            aio_adjust_polling(ctx, now - start,
                               aio_wake_was_pollable(ctx, events, n));
        } else if (!polled && dp_atomic_load_relaxed(&ctx->poll_max_ns) == 0 &&
                   dp_atomic_load_relaxed(&ctx->poll_ns)) {
            dp_atomic_store_relaxed(&ctx->poll_ns, 0);
        }
    }
    aio_notify_accept(ctx);

    progress |= bh_ran;
    progress |= aio_bh_poll(ctx, call);
    if (n > 0) {
        progress |= aio_dispatch_ready(ctx, events, n);
        /* What the fd handlers scheduled (a completion after a request
         * read from a socket, say) runs now, not after another fd poll. */
        if (aio_bh_has_pending(ctx)) {
            progress |= aio_bh_poll(ctx, call);
        }
    }
    progress |= aio_timers_run_expired(ctx);

    aio_handlers_walk_end(ctx);
    dp_atomic_store_relaxed(&ctx->poll_owner, prev_owner);
    return progress;
}

bool aio_context_set_poll_params(AioContext *ctx, int64_t max_ns, int64_t grow,
                                 int64_t shrink, Error **errp)
{
    if (max_ns < 0) {
        error_setg(errp, "poll-max-ns must be >= 0");
        return false;
    }
    if (grow < 0 || grow == 1) {
        error_setg(errp, "poll-grow must be 0 (default) or >= 2");
        return false;
    }
    if (shrink < 0) {
        error_setg(errp, "poll-shrink must be >= 0");
        return false;
    }
    dp_atomic_store_relaxed(&ctx->poll_max_ns, max_ns);
    dp_atomic_store_relaxed(&ctx->poll_grow, grow);
    dp_atomic_store_relaxed(&ctx->poll_shrink, shrink);
    /* Start the new window from scratch at the next iteration. */
    dp_atomic_store_relaxed(&ctx->poll_ns, 0);
    aio_notify(ctx);
    return true;
}

void aio_context_get_poll_params(AioContext *ctx, int64_t *max_ns,
                                 int64_t *grow, int64_t *shrink)
{
    *max_ns = dp_atomic_load_relaxed(&ctx->poll_max_ns);
    *grow = dp_atomic_load_relaxed(&ctx->poll_grow);
    *shrink = dp_atomic_load_relaxed(&ctx->poll_shrink);
}

int64_t aio_context_get_poll_ns(AioContext *ctx)
{
    return dp_atomic_load_relaxed(&ctx->poll_ns);
}

bool aio_context_set_max_batch(AioContext *ctx, int64_t max_batch, Error **errp)
{
    if (max_batch < 0 || max_batch > INT_MAX) {
        error_setg(errp, "aio-max-batch must be between 0 and %d", INT_MAX);
        return false;
    }
    dp_atomic_store_relaxed(&ctx->max_batch, (int)max_batch);
    return true;
}

int aio_context_get_max_batch(AioContext *ctx)
{
    return dp_atomic_load_relaxed(&ctx->max_batch);
}

void aio_context_get_stats(AioContext *ctx, AioContextStats *stats)
{
    stats->iterations = dp_atomic_load_relaxed(&ctx->stats.iterations);
    stats->notify_writes = dp_atomic_load_relaxed(&ctx->stats.notify_writes);
    stats->poll_hits = dp_atomic_load_relaxed(&ctx->stats.poll_hits);
    stats->poll_misses = dp_atomic_load_relaxed(&ctx->stats.poll_misses);
    stats->sleeps = dp_atomic_load_relaxed(&ctx->stats.sleeps);
}
