/*
 * Deferred calls and context-local storage.
 *
 * aio_defer(): a lock-free stack per context (ctx->defer_pending), emptied
 * by one BH (ctx->defer_bh) that runs the entries in the order they were
 * pushed.  The pusher that finds the stack empty schedules the BH: the BH
 * takes the whole stack with one exchange, so a push either lands on a
 * stack the BH has not taken yet (and runs in that BH) or finds it empty
 * and schedules the BH again.  The entries are the callers' own memory: a
 * deferral allocates nothing.
 *
 * Context-local storage: a small table of slots in each context, filled
 * lazily in the context's thread and emptied by the key's destroy function
 * when the context is freed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"

void aio_defer(AioContext *ctx, AioDeferred *d, AioDeferredFunc *fn)
{
    AioDeferred *head;

    d->fn = fn;
    head = dp_atomic_load_relaxed(&ctx->defer_pending);
    do {
        d->next = head;
        /* Release: the BH's acquire exchange sees *d and what the caller
         * wrote before deferring. */
    } while (!dp_atomic_cmpxchg_weak_release(&ctx->defer_pending, &head, d));
    if (!head) {
        /* aio_bh_schedule ends in aio_notify (DESIGN.md rule 6). */
        aio_bh_schedule(ctx->defer_bh);
    }
}

static void aio_defer_bh(void *opaque)
{
    AioContext *ctx = opaque;
    AioDeferred *lifo = dp_atomic_xchg_acquire(&ctx->defer_pending, NULL);
    AioDeferred *fifo = NULL;

    while (lifo) {
        AioDeferred *next = lifo->next;

        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    while (fifo) {
        AioDeferred *next = fifo->next;

        /* fn may free or re-defer its entry: read next first. */
        fifo->fn(fifo);
        fifo = next;
    }
}

/* Slots handed out to keys so far (process-wide). */
static int local_slots_used;

void *aio_context_get_local(AioContext *ctx, AioContextLocalKey *key)
{
    int slot = dp_atomic_load_acquire(&key->slot_plus_one) - 1;

    if (slot < 0) {
        static DpMutex slot_lock = {PTHREAD_MUTEX_INITIALIZER};

        dp_mutex_lock(&slot_lock);
        slot = key->slot_plus_one - 1;
        if (slot < 0) {
            if (local_slots_used == AIO_CONTEXT_LOCAL_SLOTS) {
                g_error("aio_context_get_local: more than %d keys",
                        AIO_CONTEXT_LOCAL_SLOTS);
            }
            slot = local_slots_used++;
            dp_atomic_store_release(&key->slot_plus_one, slot + 1);
        }
        dp_mutex_unlock(&slot_lock);
    }
    if (!ctx->local[slot].value) {
        ctx->local[slot].value = key->create(ctx);
        ctx->local[slot].key = key;
    }
    return ctx->local[slot].value;
}

void aio_defer_init(AioContext *ctx)
{
    ctx->defer_bh = aio_bh_new(ctx, aio_defer_bh, ctx);
}

void aio_defer_cleanup(AioContext *ctx)
{
    int i;

    for (i = 0; i < AIO_CONTEXT_LOCAL_SLOTS; i++) {
        if (ctx->local[i].value) {
            ctx->local[i].key->destroy(ctx, ctx->local[i].value);
            ctx->local[i].value = NULL;
        }
    }
    /* Whoever deferred into a context that is being freed broke the
     * contract (nothing may be pending on a context's last unref). */
    if (dp_atomic_load_acquire(&ctx->defer_pending)) {
        g_error("aio_context_unref: deferred calls still pending");
    }
    aio_bh_delete(ctx->defer_bh);
    ctx->defer_bh = NULL;
}
