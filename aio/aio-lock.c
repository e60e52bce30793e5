/*
 * aio_context_acquire/release: the context's RFifoLock, whose contention
 * callback kicks the owner's aio_poll() with aio_notify().
 *
 * Lock order: only one thread (the main loop thread) may hold more than one
 * context.  Every other thread holds at most one, so it never waits for a
 * context while holding another, and no cycle of waiters can form whatever
 * order the one multi-holder takes them in.  The rule is checked on every
 * acquire that would make a thread hold a second context.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"

/* Distinct contexts the calling thread holds (nesting not counted). */
static __thread unsigned held_contexts;

/* The context the calling thread runs (aio_get_current_context). */
static __thread AioContext *current_context;

/* Kernel tid of the one thread allowed to hold several contexts; 0 = none
 * designated yet. */
static pid_t multi_holder;

static void lock_contended(void *opaque)
{
    aio_notify(opaque);
}

void aio_context_lock_init(AioContext *ctx)
{
    rfifolock_init(&ctx->lock, lock_contended, ctx);
}

void aio_context_lock_destroy(AioContext *ctx)
{
    rfifolock_destroy(&ctx->lock);
}

void aio_context_lock_set_multi_holder(void)
{
    dp_atomic_store_seq_cst(&multi_holder, dp_thread_get_tid());
}

static void check_may_hold_another(void)
{
    pid_t self = dp_thread_get_tid();
    pid_t expected = 0;

    if (dp_atomic_cmpxchg_seq_cst(&multi_holder, &expected, self) ||
        expected == self) {
        return;
    }
    g_error("aio_context_acquire: thread %d already holds %u context(s) and "
            "takes another; only the main loop thread (%d) may hold several "
            "(see docs/iothreads.md: hand work across with a BH)",
            (int)self, held_contexts, (int)expected);
}

void aio_context_acquire(AioContext *ctx)
{
    if (rfifolock_depth_self(&ctx->lock) > 0) {
        rfifolock_lock(&ctx->lock); /* nesting: cannot block */
        return;
    }
    if (held_contexts > 0) {
        check_may_hold_another();
    }
    rfifolock_lock(&ctx->lock);
    held_contexts++;
}

void aio_context_release(AioContext *ctx)
{
    if (rfifolock_depth_self(&ctx->lock) == 1) {
        held_contexts--;
    }
    rfifolock_unlock(&ctx->lock);
}

AioContext *aio_get_current_context(void)
{
    return current_context;
}

void aio_set_current_context(AioContext *ctx)
{
    if (current_context) {
        dp_atomic_fetch_sub_seq_cst(&current_context->home_threads, 1);
    }
    current_context = ctx;
    if (ctx) {
        dp_atomic_fetch_add_seq_cst(&ctx->home_threads, 1);
    }
}

bool aio_context_in_current_thread(AioContext *ctx)
{
    return ctx == current_context || rfifolock_depth_self(&ctx->lock) > 0;
}

void aio_context_assert_may_run(AioContext *ctx)
{
    if (aio_context_in_current_thread(ctx)) {
        return;
    }
    /* A private loop that no thread calls home (a test, a small program,
     * a benchmark run from the main thread): whoever runs it, one thread at
     * a time, which is the caller's business. */
    if (dp_atomic_load_relaxed(&ctx->home_threads) == 0) {
        return;
    }
    g_error("aio_poll: this thread (%d) neither runs this AioContext nor "
            "holds it: take it with aio_context_acquire(), or hand the work "
            "to its thread with a BH (see docs/iothreads.md)",
            (int)dp_thread_get_tid());
}
