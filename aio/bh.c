/*
 * Bottom halves.
 *
 * A scheduled BH sits on ctx->bh_pending, a lock-free stack (a Treiber
 * stack that only ever has one consumer, which takes the whole stack with
 * one exchange, so there is no ABA problem).  Each BH carries atomic flags:
 *
 *   BH_PENDING    it is on the stack (only the pusher sets it, only the
 *                 consumer clears it), so it is pushed at most once;
 *   BH_SCHEDULED  it should run when the consumer reaches it;
 *   BH_DELETED    free it when the consumer reaches it;
 *   BH_ONESHOT    free it after it runs.
 *
 * aio_bh_poll() takes the stack as one batch (a slice) and runs it.  A
 * callback may run a nested aio_poll() (drain does): the nested call's
 * aio_bh_poll() first finishes the slices of the outer calls, oldest first,
 * then its own.  Otherwise a BH taken by an outer call, behind the
 * callback that is waiting, could not run until that callback returned,
 * and a wait for it (a request's completion BH) would never end.
 */
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"

enum {
    BH_PENDING = 1 << 0,
    BH_SCHEDULED = 1 << 1,
    BH_DELETED = 1 << 2,
    BH_ONESHOT = 1 << 3,
};

struct AioBH {
    AioContext *ctx;
    AioBHFunc *cb;
    void *opaque;
    unsigned flags; /* atomic */
    AioBH *next;    /* link in ctx->bh_pending */
};

static AioBH *bh_alloc(AioContext *ctx, AioBHFunc *cb, void *opaque,
                       unsigned flags)
{
    AioBH *bh = g_new0(AioBH, 1);

    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    bh->flags = flags;
    return bh;
}

AioBH *aio_bh_new(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    return bh_alloc(ctx, cb, opaque, 0);
}

/* Pushes bh on the pending stack, unless it is there already. */
static void bh_enqueue(AioBH *bh, unsigned new_flags)
{
    AioContext *ctx = bh->ctx;
    unsigned old =
        dp_atomic_fetch_or_seq_cst(&bh->flags, new_flags | BH_PENDING);

    if (old & BH_PENDING) {
        return;
    }
    /*
     * Once the BH is on the stack it may run at once, and its callback may
     * let the owner drop the last reference to ctx: hold one of our own
     * until the notify below is done with ctx.
     */
    aio_context_ref(ctx);
    bh->next = dp_atomic_load_relaxed(&ctx->bh_pending);
    /* Release: the consumer that takes the stack (acquire exchange in
     * aio_bh_poll) sees bh->next and everything written before scheduling. */
    while (!dp_atomic_cmpxchg_weak_release(&ctx->bh_pending, &bh->next, bh)) {
    }
    aio_notify(ctx);
    aio_context_unref(ctx);
}

void aio_bh_schedule(AioBH *bh)
{
    bh_enqueue(bh, BH_SCHEDULED);
}

void aio_bh_schedule_oneshot(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    bh_enqueue(bh_alloc(ctx, cb, opaque, BH_ONESHOT), BH_SCHEDULED);
}

void aio_bh_cancel(AioBH *bh)
{
    dp_atomic_fetch_and_seq_cst(&bh->flags, ~(unsigned)BH_SCHEDULED);
}

void aio_bh_delete(AioBH *bh)
{
    unsigned old;

    if (!bh) {
        return;
    }
    old = dp_atomic_fetch_or_seq_cst(&bh->flags, BH_DELETED);
    if (old & BH_PENDING) {
        return; /* the consumer frees it when it pops it */
    }
    g_free(bh);
}

/* A batch of BHs being run (see the top of the file). */
typedef struct AioBHSlice {
    AioBH *head; /* the next to run */
    struct AioBHSlice *next;
} AioBHSlice;

bool aio_bh_has_pending(AioContext *ctx)
{
    AioBHSlice *s;

    /* The slices: only the thread running ctx calls this. */
    for (s = ctx->bh_slices; s; s = s->next) {
        if (s->head) {
            return true;
        }
    }
    return dp_atomic_load_seq_cst(&ctx->bh_pending) != NULL;
}

/* Takes the whole pending stack and returns it in scheduling order. */
static AioBH *bh_take_all_fifo(AioContext *ctx)
{
    AioBH *lifo = dp_atomic_xchg_acquire(&ctx->bh_pending, NULL);
    AioBH *fifo = NULL;

    while (lifo) {
        AioBH *next = lifo->next;

        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return fifo;
}

bool aio_bh_poll(AioContext *ctx)
{
    AioBHSlice slice = {.head = bh_take_all_fifo(ctx)};
    AioBHSlice **tail = &ctx->bh_slices;
    AioBHSlice *s;
    bool progress = false;

    if (!slice.head && !ctx->bh_slices) {
        return false;
    }
    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = &slice;
    /*
     * Only BHs already scheduled when a slice was taken run here; a BH
     * scheduled while we run (itself included) goes on a new stack that
     * the next aio_poll() takes, so aio_poll() always returns.
     */
    while ((s = ctx->bh_slices)) {
        AioBH *bh = s->head;
        unsigned flags;

        if (!bh) {
            ctx->bh_slices = s->next; /* done (maybe an outer call's) */
            continue;
        }
        s->head = bh->next;
        /* Clearing PENDING lets another thread push the BH again. */
        flags = dp_atomic_fetch_and_seq_cst(
            &bh->flags, ~(unsigned)(BH_PENDING | BH_SCHEDULED));
        if ((flags & BH_SCHEDULED) && !(flags & BH_DELETED)) {
            bh->cb(bh->opaque);
            progress = true;
        }
        if (flags & (BH_DELETED | BH_ONESHOT)) {
            g_free(bh);
        }
    }
    return progress;
}

void aio_bh_free_pending(AioContext *ctx)
{
    AioBH *bh = bh_take_all_fifo(ctx);

    while (bh) {
        AioBH *next = bh->next;
        unsigned flags =
            dp_atomic_fetch_and_seq_cst(&bh->flags, ~(unsigned)BH_PENDING);

        if (flags & (BH_DELETED | BH_ONESHOT)) {
            g_free(bh);
        }
        bh = next;
    }
}
