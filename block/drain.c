/*
 * Drain, drained sections, users of a node and moves between AioContexts.
 *
 * A node's whole connected graph (file children and parents) shares one
 * context and is drained and moved as a unit: requests of a parent end up
 * in its child, and a throttle node's queue holds requests that are in
 * flight on it but not yet on its child.
 */
#include <errno.h>

#include "block/block-int.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"
#include "util/thread.h"

static bool component_busy(GPtrArray *nodes)
{
    guint i;

    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        if (bdrv_in_flight_sum(n)) {
            return true;
        }
    }
    return false;
}

/*
 * Drainers asleep in aio_poll(), by the context they poll.  A request whose
 * completion brings a node's in_flight to zero while bdrv_drain_waiters is
 * non-zero notifies all of them (bdrv_drain_kick): the last request may
 * complete in any context, not only the one the drainer polls.  The
 * pairing is Dekker's: the drainer increments bdrv_drain_waiters, then
 * reads in_flight; the completer decrements in_flight, then reads
 * bdrv_drain_waiters (all seq_cst), so either the drainer sees the count
 * at zero or the completer sees the drainer and notifies it.
 */
unsigned bdrv_drain_waiters;
static DpMutex waiters_lock = {PTHREAD_MUTEX_INITIALIZER};
static GPtrArray *waiting_contexts; /* under waiters_lock, with repeats */

void bdrv_drain_kick(void)
{
    guint i;

    dp_mutex_lock(&waiters_lock);
    for (i = 0; waiting_contexts && i < waiting_contexts->len; i++) {
        aio_notify(g_ptr_array_index(waiting_contexts, i));
    }
    dp_mutex_unlock(&waiters_lock);
}

/*
 * Waits until nothing is in flight in nodes, running `poll` (their home
 * context, which the caller holds): the home's completions run here;
 * requests that complete in other contexts are run by those contexts'
 * threads, and the last one kicks us (bdrv_drain_kick).  Requests of the
 * caller's own context, if that is not the home, would wait for it to run:
 * a drainer must have none in flight (block.h).
 */
static void drain_component(AioContext *poll, GPtrArray *nodes)
{
    if (!component_busy(nodes)) {
        return;
    }
    dp_mutex_lock(&waiters_lock);
    if (!waiting_contexts) {
        waiting_contexts = g_ptr_array_new();
    }
    g_ptr_array_add(waiting_contexts, poll);
    dp_mutex_unlock(&waiters_lock);
    dp_atomic_fetch_add_seq_cst(&bdrv_drain_waiters, 1);

    while (component_busy(nodes)) {
        aio_poll(poll, true);
    }

    dp_atomic_fetch_sub_seq_cst(&bdrv_drain_waiters, 1);
    dp_mutex_lock(&waiters_lock);
    g_ptr_array_remove_fast(waiting_contexts, poll);
    dp_mutex_unlock(&waiters_lock);
}

/*
 * The thread that runs no context of its own, the main loop thread (which
 * may hold several) and a thread that runs or holds the node's context may
 * take the node's context and poll it.  A thread that runs another context
 * (an IOThread draining a node of another IOThread) may not: it would hold
 * two contexts (aio.h).
 */
static bool must_drain_elsewhere(BlockDriverState *bs)
{
    AioContext *own = aio_get_current_context();

    return own && !main_loop_is_main_thread() &&
           !aio_context_in_current_thread(bdrv_get_aio_context(bs));
}

typedef struct ForeignDrain {
    BlockDriverState *bs;
    AioContext *waiter; /* the context of the thread that asked */
    bool done;          /* in the waiter's thread */
} ForeignDrain;

static void foreign_drain_done(void *opaque)
{
    ForeignDrain *fd = opaque;

    fd->done = true;
}

/* In the node's context: drain, then tell the waiter. */
static void foreign_drain_bh(void *opaque)
{
    ForeignDrain *fd = opaque;

    bdrv_drain(fd->bs); /* hops on if the node has moved meanwhile */
    aio_bh_schedule_oneshot(fd->waiter, foreign_drain_done, fd);
}

void bdrv_drain(BlockDriverState *bs)
{
    if (must_drain_elsewhere(bs)) {
        /* The node's own thread drains; this one keeps running its own
         * loop until that is done, so that two threads draining each
         * other's nodes this way still both make progress. */
        ForeignDrain fd = {.bs = bs, .waiter = aio_get_current_context()};

        aio_bh_schedule_oneshot(bdrv_get_aio_context(bs), foreign_drain_bh,
                                &fd);
        while (!fd.done) {
            aio_poll(fd.waiter, true);
        }
        return;
    }
    /* A section of its own, as in QEMU: users pause and throttle nodes
     * let their queues go, so the wait is bounded by the storage, not by
     * what users keep submitting or by the limits. */
    bdrv_drained_begin(bs);
    bdrv_drained_end(bs);
}

static void assert_may_drain_here(BlockDriverState *bs, const char *fn)
{
    if (must_drain_elsewhere(bs)) {
        g_error("%s: node '%s' belongs to another thread's AioContext, and a "
                "drained section cannot be held from this one (block.h); "
                "bdrv_drain() can, or hand the section to the node's thread",
                fn, bdrv_get_node_name(bs));
    }
}

static void drain_one(BlockDriverState *bs, void *opaque)
{
    bdrv_drain(bs);
}

void bdrv_drain_all(void)
{
    bdrv_assert_main_loop(__func__);
    bdrv_foreach_node(drain_one, NULL);
}

/* A copy of the users, so that a hook may (un)register users. */
static GArray *users_snapshot(BlockDriverState *bs)
{
    GArray *copy =
        g_array_sized_new(false, false, sizeof(BlockUser), bs->users->len);

    g_array_append_vals(copy, bs->users->data, bs->users->len);
    return copy;
}

typedef enum UserHook {
    HOOK_DRAINED_BEGIN,
    HOOK_DRAINED_END,
    HOOK_DETACH,
    HOOK_ATTACH,
    HOOK_RESIZE,
} UserHook;

static void call_users(BlockDriverState *bs, UserHook hook, AioContext *ctx)
{
    g_autoptr(GArray) users = users_snapshot(bs);
    guint i;

    for (i = 0; i < users->len; i++) {
        BlockUser *u = &g_array_index(users, BlockUser, i);

        switch (hook) {
        case HOOK_DRAINED_BEGIN:
            if (u->ops->drained_begin) {
                u->ops->drained_begin(u->opaque);
            }
            break;
        case HOOK_DRAINED_END:
            if (u->ops->drained_end) {
                u->ops->drained_end(u->opaque);
            }
            break;
        case HOOK_DETACH:
            if (u->ops->detach_aio_context) {
                u->ops->detach_aio_context(u->opaque);
            }
            break;
        case HOOK_ATTACH:
            if (u->ops->attach_aio_context) {
                u->ops->attach_aio_context(ctx, u->opaque);
            }
            break;
        case HOOK_RESIZE:
            if (u->ops->resize) {
                u->ops->resize(u->opaque);
            }
            break;
        }
    }
}

void bdrv_drained_begin(BlockDriverState *bs)
{
    g_autoptr(GPtrArray) nodes = NULL;
    AioContext *ctx = bdrv_get_aio_context(bs);
    guint i;

    assert_may_drain_here(bs, __func__);
    /* The edges change with the context held (block.c, graph_link). */
    aio_context_acquire(ctx);
    nodes = bdrv_graph_component(bs);
    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        if (n->quiesce_counter++ == 0) {
            call_users(n, HOOK_DRAINED_BEGIN, NULL);
            if (n->drv->bdrv_drained_begin) {
                n->drv->bdrv_drained_begin(n);
            }
        }
    }
    drain_component(ctx, nodes);
    aio_context_release(ctx);
}

void bdrv_drained_end(BlockDriverState *bs)
{
    g_autoptr(GPtrArray) nodes = NULL;
    AioContext *ctx = bdrv_get_aio_context(bs);
    guint i;

    assert_may_drain_here(bs, __func__);
    aio_context_acquire(ctx);
    nodes = bdrv_graph_component(bs);
    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        /* A node opened on top of a drained one joined the graph with a
         * counter of zero: it has no section to end. */
        if (n->quiesce_counter == 0) {
            continue;
        }
        if (--n->quiesce_counter == 0) {
            if (n->drv->bdrv_drained_end) {
                n->drv->bdrv_drained_end(n);
            }
            call_users(n, HOOK_DRAINED_END, NULL);
        }
    }
    aio_context_release(ctx);
}

void bdrv_users_resized(BlockDriverState *bs)
{
    call_users(bs, HOOK_RESIZE, NULL);
}

bool bdrv_is_drained(BlockDriverState *bs)
{
    return bs->quiesce_counter > 0;
}

void bdrv_add_aio_context_notifier(BlockDriverState *bs,
                                   const BlockUserOps *ops, void *opaque)
{
    BlockUser u = {.ops = ops, .opaque = opaque};

    g_array_append_val(bs->users, u);
    /* Joining inside a drained section: begin now, so that the section's
     * end (which the user will see) is balanced. */
    if (bs->quiesce_counter > 0 && ops->drained_begin) {
        ops->drained_begin(opaque);
    }
}

void bdrv_remove_aio_context_notifier(BlockDriverState *bs,
                                      const BlockUserOps *ops, void *opaque)
{
    guint i;

    for (i = 0; i < bs->users->len; i++) {
        BlockUser *u = &g_array_index(bs->users, BlockUser, i);

        if (u->ops == ops && u->opaque == opaque) {
            g_array_remove_index(bs->users, i);
            return;
        }
    }
    g_assert_not_reached(); /* removing a user that never registered */
}

bool bdrv_set_aio_context(BlockDriverState *bs, AioContext *ctx, Error **errp)
{
    g_autoptr(GPtrArray) nodes = NULL;
    AioContext *old = bdrv_get_aio_context(bs);
    guint i;

    bdrv_assert_main_loop(__func__);
    if (old == ctx) {
        return true;
    }
    nodes = bdrv_graph_component(bs);

    /* Users stop submitting and everything in flight completes in the old
     * context, so no completion can arrive there after the detach. */
    bdrv_drained_begin(bs);

    aio_context_acquire(old);
    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        call_users(n, HOOK_DETACH, NULL);
        if (n->drv->bdrv_detach_aio_context) {
            n->drv->bdrv_detach_aio_context(n);
        }
    }

    /* Both contexts are held from the first detach to the last attach
     * (only the main loop may hold two, so this cannot deadlock): neither
     * thread runs a callback while the graph is in neither context. */
    aio_context_acquire(ctx);
    for (i = 0; i < nodes->len; i++) {
        BlockDriverState *n = g_ptr_array_index(nodes, i);

        /* Release: a thread that reads the new context (acquire load in
         * bdrv_get_aio_context) sees the node's attached state. */
        dp_atomic_store_release(&n->ctx, ctx);
        if (n->drv->bdrv_attach_aio_context) {
            n->drv->bdrv_attach_aio_context(n, ctx);
        }
        call_users(n, HOOK_ATTACH, ctx);
    }
    aio_context_release(ctx);
    aio_context_release(old);

    bdrv_drained_end(bs);
    return true;
}
