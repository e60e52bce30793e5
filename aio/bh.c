/*
 * Bottom halves.
 *
 * Two ways in, one per kind of BH:
 *
 * Doorbells.  The first AIO_DOORBELLS BHs made with aio_bh_new() in a
 * context (long-lived ones: a queue's notifier, a completion hand-off)
 * each own a bit of *ctx->doorbells_rung.  Scheduling one is a single
 * atomic OR on that word; the polling thread takes the word with one
 * exchange and runs the BHs whose bits it took.  Nothing else is written
 * by both sides: the BH itself stays read-only, and what only the polling
 * thread needs (bits taken but not run yet, the call each slot last ran
 * in) lives in the context.  A cross-thread hand-off thus moves one cache
 * line, where a push on the stack below moves three (the BH's flags, its
 * link, the stack head).  The word shares its line with the words of a few
 * other contexts (doorbell-line.h): between two of them, a hop and the
 * ring that answers it move that line once.  docs/aio.md has the
 * measurements.
 *
 * The stack.  Every other BH (oneshots, and aio_bh_new() BHs once the
 * doorbells are all claimed) is pushed on ctx->bh_pending, a lock-free
 * stack (a Treiber stack that only ever has one consumer, which takes the
 * whole stack with one exchange, so there is no ABA problem).  Each BH
 * carries atomic flags:
 *
 *   BH_PENDING    it is on the stack (only the pusher sets it, only the
 *                 consumer clears it), so it is pushed at most once;
 *   BH_SCHEDULED  it should run when the consumer reaches it;
 *   BH_DELETED    free it when the consumer reaches it;
 *   BH_ONESHOT    free it after it runs.
 *
 * aio_bh_poll() works in rounds.  Each round first runs the rung doorbells
 * (in slot order), then takes the stack as one batch (a slice) and runs it
 * in scheduling order.  A callback may run a nested aio_poll() (drain
 * does): the nested call's aio_bh_poll() first finishes what the outer
 * calls took (doorbell bits and slices, oldest slice first), then its own.
 * Otherwise a BH taken by an outer call, behind the callback that is
 * waiting, could not run until that callback returned, and a wait for it
 * (a request's completion BH) would never end.
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
    int doorbell;      /* its bit in ctx->doorbells_rung, or -1 (stack) */
    unsigned flags;    /* atomic; stack BHs only */
    AioBH *next;       /* link in ctx->bh_pending */
    uint64_t ran_call; /* consumer only: the aio_poll call it last ran in */
};

/* Rounds of one aio_bh_poll call: BHs scheduled by the BHs of a round run
 * in the next round of the same call (a chain such as "completion ->
 * reply" costs no loop iteration, no fd poll), up to this many rounds. */
#define BH_POLL_ROUNDS 4

static AioBH *bh_alloc(AioContext *ctx, AioBHFunc *cb, void *opaque,
                       unsigned flags)
{
    AioBH *bh = g_new0(AioBH, 1);

    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    bh->doorbell = -1;
    bh->flags = flags;
    return bh;
}

/* Gives bh a free doorbell of its context, if there is one. */
static void doorbell_claim(AioBH *bh)
{
    AioContext *ctx = bh->ctx;
    uint64_t claimed = dp_atomic_load_relaxed(&ctx->doorbells_claimed);
    uint64_t bit;
    int i;

    do {
        if (claimed == UINT64_MAX) {
            return; /* all taken: bh uses the stack */
        }
        i = __builtin_ctzll(~claimed);
        bit = UINT64_C(1) << i;
    } while (!dp_atomic_cmpxchg_seq_cst(&ctx->doorbells_claimed, &claimed,
                                        claimed | bit));
    bh->doorbell = i;
    /* The consumer looks the slot up when it finds the bit rung. */
    dp_atomic_store_release(&ctx->doorbell_bh[i], bh);
}

AioBH *aio_bh_new(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    AioBH *bh = bh_alloc(ctx, cb, opaque, 0);

    doorbell_claim(bh);
    return bh;
}

/* Rings bh's doorbell (bh->doorbell >= 0). */
static void doorbell_ring(AioBH *bh)
{
    AioContext *ctx = bh->ctx;

    /* As in bh_enqueue(): the BH may run, and its context go, as soon as
     * the bit is set. */
    aio_context_ref(ctx);
    /* A plain OR, not a test-and-set: the old value would cost a second
     * round trip for the line (load, then compare-and-swap), and a bit
     * that was set already only makes aio_notify_bh() look at notify_me
     * once more.  seq_cst: the store of the wake-up protocol. */
    dp_atomic_fetch_or_seq_cst(ctx->doorbells_rung, UINT64_C(1)
                                                        << bh->doorbell);
    aio_notify_bh(ctx);
    aio_context_unref(ctx);
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
    /* The consumer that takes the stack (acquire exchange in aio_bh_poll)
     * sees bh->next and everything written before scheduling.  seq_cst:
     * the push is the store of the wake-up protocol (aio_notify_bh). */
    while (!dp_atomic_cmpxchg_seq_cst(&ctx->bh_pending, &bh->next, bh)) {
    }
    aio_notify_bh(ctx);
    aio_context_unref(ctx);
}

void aio_bh_schedule(AioBH *bh)
{
    if (bh->doorbell >= 0) {
        doorbell_ring(bh);
        return;
    }
    bh_enqueue(bh, BH_SCHEDULED);
}

void aio_bh_schedule_oneshot(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    bh_enqueue(bh_alloc(ctx, cb, opaque, BH_ONESHOT), BH_SCHEDULED);
}

void aio_bh_cancel(AioBH *bh)
{
    if (bh->doorbell >= 0) {
        AioContext *ctx = bh->ctx;
        uint64_t bit = UINT64_C(1) << bh->doorbell;

        dp_atomic_fetch_and_seq_cst(ctx->doorbells_rung, ~bit);
        /* Taken but not run yet (a callback cancelling a BH of the same
         * pass): only the thread in aio_poll(ctx) may look at that, and
         * only it can be there, between the take and the run. */
        if (aio_poll_owned_by_self(ctx)) {
            ctx->doorbells_taken &= ~bit;
        }
        return;
    }
    dp_atomic_fetch_and_seq_cst(&bh->flags, ~(unsigned)BH_SCHEDULED);
}

/* aio_bh_delete() of a doorbell BH: the caller runs ctx or holds it, so
 * no aio_poll() looks at the slot meanwhile. */
static void doorbell_release(AioBH *bh)
{
    AioContext *ctx = bh->ctx;
    int i = bh->doorbell;
    uint64_t bit = UINT64_C(1) << i;

    dp_atomic_fetch_and_seq_cst(ctx->doorbells_rung, ~bit);
    ctx->doorbells_taken &= ~bit;
    ctx->doorbell_ran_call[i] = 0;
    dp_atomic_store_release(&ctx->doorbell_bh[i], NULL);
    dp_atomic_fetch_and_seq_cst(&ctx->doorbells_claimed, ~bit);
}

void aio_bh_delete(AioBH *bh)
{
    unsigned old;

    if (!bh) {
        return;
    }
    if (bh->doorbell >= 0) {
        doorbell_release(bh);
        g_free(bh);
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

    /* Taken doorbells and the slices: only the thread running ctx calls
     * this. */
    if (ctx->doorbells_taken) {
        return true;
    }
    for (s = ctx->bh_slices; s; s = s->next) {
        if (s->head) {
            return true;
        }
    }
    return dp_atomic_load_seq_cst(ctx->doorbells_rung) ||
           dp_atomic_load_seq_cst(&ctx->bh_pending) != NULL;
}

/* Takes the whole pending stack and returns it in scheduling order. */
static AioBH *bh_take_all_fifo(AioContext *ctx)
{
    AioBH *lifo;
    AioBH *fifo = NULL;

    /* Look before taking: an exchange on an empty stack would still take
     * its cache line from a thread about to push. */
    if (!dp_atomic_load_relaxed(&ctx->bh_pending)) {
        return NULL;
    }
    lifo = dp_atomic_xchg_acquire(&ctx->bh_pending, NULL);

    while (lifo) {
        AioBH *next = lifo->next;

        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return fifo;
}

/* Puts back BHs taken off the stack but left for the next call (their
 * PENDING flag is still set: they are on the stack again). */
static void bh_push_back(AioContext *ctx, AioBH *fifo)
{
    AioBH *lifo = NULL;
    AioBH *last;

    while (fifo) {
        AioBH *next = fifo->next;

        fifo->next = lifo;
        lifo = fifo;
        fifo = next;
    }
    if (!lifo) {
        return;
    }
    /* lifo's last element links to whatever is on the stack now. */
    for (last = lifo; last->next; last = last->next) {
    }
    last->next = dp_atomic_load_relaxed(&ctx->bh_pending);
    while (
        !dp_atomic_cmpxchg_weak_release(&ctx->bh_pending, &last->next, lifo)) {
    }
}

/*
 * Runs the rung doorbells, and those an outer aio_bh_poll() took and has
 * not run yet.  One that already ran in this aio_poll() call (it rang
 * itself) is rung again, for the next call (on the word, where
 * aio_bh_cancel() from any thread finds it).
 */
bool aio_bh_run_doorbells(AioContext *ctx, uint64_t call)
{
    uint64_t later = 0;
    bool progress = false;

    /* Look before taking, as bh_take_all_fifo() does. */
    if (dp_atomic_load_relaxed(ctx->doorbells_rung)) {
        ctx->doorbells_taken |= dp_atomic_xchg_acquire(ctx->doorbells_rung, 0);
    }
    while (ctx->doorbells_taken) {
        int i = __builtin_ctzll(ctx->doorbells_taken);
        uint64_t bit = UINT64_C(1) << i;
        AioBH *bh;

        ctx->doorbells_taken &= ~bit;
        bh = dp_atomic_load_acquire(&ctx->doorbell_bh[i]);
        if (!bh) {
            continue; /* deleted after it rang */
        }
        if (ctx->doorbell_ran_call[i] == call) {
            later |= bit;
            continue;
        }
        ctx->doorbell_ran_call[i] = call;
        /* The callback may delete bh, or claim the slot for another. */
        bh->cb(bh->opaque);
        progress = true;
    }
    if (later) {
        dp_atomic_fetch_or_seq_cst(ctx->doorbells_rung, later);
    }
    return progress;
}

uint64_t aio_bh_poll_begin(AioContext *ctx)
{
    return ++ctx->bh_poll_calls;
}

bool aio_bh_poll(AioContext *ctx, uint64_t call)
{
    bool progress = false;
    AioBH *later = NULL; /* ran in this call already: for the next one */
    AioBH **later_tail = &later;
    int round;

    /*
     * Each round takes the stack as one slice.  A BH scheduled while we run
     * goes on a new stack, which the next round of this call takes, unless
     * it already ran in this aio_poll() call (a BH that reschedules
     * itself): that one waits for the next aio_poll(), so aio_poll()
     * always returns.  Rounds are bounded, so fds and timers are never
     * starved by a BH chain.
     */
    for (round = 0; round < BH_POLL_ROUNDS; round++) {
        bool rang = aio_bh_run_doorbells(ctx, call);
        AioBHSlice slice = {.head = bh_take_all_fifo(ctx)};
        AioBHSlice **tail = &ctx->bh_slices;
        AioBHSlice *s;

        progress |= rang;
        if (!slice.head && !ctx->bh_slices) {
            if (rang) {
                continue; /* what the doorbells scheduled: next round */
            }
            break;
        }
        while (*tail) {
            tail = &(*tail)->next;
        }
        *tail = &slice;
        /* Outer calls' slices first (a nested aio_poll), then ours; when
         * the loop ends, every slice is done and unlinked. */
        while ((s = ctx->bh_slices)) {
            AioBH *bh = s->head;
            unsigned flags;

            if (!bh) {
                ctx->bh_slices = s->next; /* done (maybe an outer call's) */
                continue;
            }
            s->head = bh->next;
            if (bh->ran_call == call) {
                bh->next = NULL;
                *later_tail = bh;
                later_tail = &bh->next;
                continue;
            }
            /* Clearing PENDING lets another thread push the BH again. */
            flags = dp_atomic_fetch_and_seq_cst(
                &bh->flags, ~(unsigned)(BH_PENDING | BH_SCHEDULED));
            if ((flags & BH_SCHEDULED) && !(flags & BH_DELETED)) {
                bh->ran_call = call;
                bh->cb(bh->opaque);
                progress = true;
            }
            if (flags & (BH_DELETED | BH_ONESHOT)) {
                g_free(bh);
            }
        }
    }
    bh_push_back(ctx, later);
    return progress;
}

void aio_bh_free_pending(AioContext *ctx)
{
    AioBH *bh = bh_take_all_fifo(ctx);
    int i;

    /* Doorbell BHs still alive belong to their owners, who may delete
     * them after the context is gone: from now on they are plain BHs. */
    for (i = 0; i < AIO_DOORBELLS; i++) {
        AioBH *owned = dp_atomic_load_acquire(&ctx->doorbell_bh[i]);

        if (owned) {
            owned->doorbell = -1;
        }
    }

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
