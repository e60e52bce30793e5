/*
 * CompletionQueue: a lock-free stack pushed by foreign threads and taken
 * whole by the context's thread; see completion-queue.h.
 *
 * The one eventfd write per batch rests on this order:
 *  - a pusher links its entry with a CAS and writes the eventfd only if
 *    the stack was empty before its push;
 *  - the taker clears the eventfd first, then exchanges the stack for
 *    NULL.
 * A push that lands after the exchange finds the stack empty and writes,
 * and that write comes after the clear, so it wakes the context again; a
 * push that lands before the exchange is taken by it.  (Both sides order
 * their steps through system calls and seq_cst atomics.)
 */
#include <errno.h>

#include "block/completion-queue.h"
#include "util/atomic.h"

static void completion_queue_run(CompletionQueue *q)
{
    CompletionEntry *list = dp_atomic_xchg_seq_cst(&q->head, NULL);
    CompletionEntry *fifo = NULL;

    if (!list) {
        return;
    }
    /* Newest first on the stack: reverse to completion order. */
    while (list) {
        CompletionEntry *next = list->next;

        list->next = fifo;
        fifo = list;
        list = next;
    }
    q->batches++;
    while (fifo) {
        CompletionEntry *next = fifo->next;

        q->completions++;
        q->fn(fifo, q->opaque); /* may free fifo */
        fifo = next;
    }
}

static void completion_queue_notified(EventNotifier *e)
{
    CompletionQueue *q =
        (CompletionQueue *)((char *)e - offsetof(CompletionQueue, notifier));

    event_notifier_test_and_clear(e);
    completion_queue_run(q);
}

static bool completion_queue_poll(EventNotifier *e)
{
    CompletionQueue *q =
        (CompletionQueue *)((char *)e - offsetof(CompletionQueue, notifier));

    if (!dp_atomic_load_relaxed(&q->head)) {
        return false;
    }
    completion_queue_run(q);
    return true;
}

int completion_queue_init(CompletionQueue *q, CompletionQueueFunc *fn,
                          void *opaque)
{
    q->head = NULL;
    q->ctx = NULL;
    q->fn = fn;
    q->opaque = opaque;
    q->batches = 0;
    q->completions = 0;
    return event_notifier_init(&q->notifier, false);
}

void completion_queue_cleanup(CompletionQueue *q)
{
    g_assert(!q->ctx);
    g_assert(!dp_atomic_load_seq_cst(&q->head));
    event_notifier_cleanup(&q->notifier);
}

void completion_queue_attach(CompletionQueue *q, AioContext *ctx)
{
    g_assert(!q->ctx);
    q->ctx = ctx;
    aio_set_event_notifier(ctx, &q->notifier, completion_queue_notified,
                           completion_queue_poll);
    /* Entries pushed while detached wrote the eventfd (or found it
     * already written): the new context sees it readable at once. */
}

void completion_queue_detach(CompletionQueue *q)
{
    g_assert(q->ctx);
    aio_set_event_notifier(q->ctx, &q->notifier, NULL, NULL);
    q->ctx = NULL;
}

void completion_queue_push(CompletionQueue *q, CompletionEntry *e)
{
    CompletionEntry *old = dp_atomic_load_relaxed(&q->head);

    do {
        e->next = old;
    } while (!dp_atomic_cmpxchg_seq_cst(&q->head, &old, e));
    if (!old) {
        event_notifier_set(&q->notifier);
    }
}
