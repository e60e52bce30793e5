/*
 * CompletionQueue: hands completions from threads the project does not own
 * (librbd's callback threads) to an AioContext, through one EventNotifier.
 *
 * A foreign thread pushes an entry (lock-free, a few atomic operations)
 * and writes the eventfd only when the queue was empty, so a burst of
 * completions costs one wake-up; the context's thread takes the whole
 * batch at once and runs fn on each entry in the order they were pushed.
 * While the context busy-polls (adaptive polling), the queue is polled
 * too and no eventfd write is waited for.
 *
 * Nothing of the block layer runs in the foreign thread: push only links
 * the entry.  Each queue is attached to at most one context at a time;
 * one that is moved is detached from the old context and attached to the
 * new one (entries pushed in between wait in the queue and run in the new
 * context).  The rbd driver keeps one queue per context (context-local
 * storage) and a request remembers the queue of the context it must
 * complete in, so its queues never move.
 *
 * Threading: completion_queue_push() any thread, no lock; the rest in the
 * thread of the context the queue is (to be) attached to, or holding it.
 */
#ifndef DATAPLANE_BLOCK_COMPLETION_QUEUE_H
#define DATAPLANE_BLOCK_COMPLETION_QUEUE_H

#include <stdint.h>

#include "dataplane/aio.h"

/* Embedded in the caller's request. */
typedef struct CompletionEntry {
    struct CompletionEntry *next;
} CompletionEntry;

typedef void CompletionQueueFunc(CompletionEntry *entry, void *opaque);

typedef struct CompletionQueue {
    CompletionEntry *head; /* atomic: pushed entries, newest first */
    EventNotifier notifier;
    AioContext *ctx; /* attached to, or NULL */
    CompletionQueueFunc *fn;
    void *opaque;
    /* Context's thread only. */
    uint64_t batches;     /* times entries were taken */
    uint64_t completions; /* entries run */
} CompletionQueue;

/* Returns 0 or -errno (no eventfd).  Detached. */
int completion_queue_init(CompletionQueue *q, CompletionQueueFunc *fn,
                          void *opaque);
/* The queue must be detached and empty. */
void completion_queue_cleanup(CompletionQueue *q);

/* Starts delivering in ctx (entries already queued are delivered too). */
void completion_queue_attach(CompletionQueue *q, AioContext *ctx);
/* Stops delivering; entries pushed from now on wait for the next attach. */
void completion_queue_detach(CompletionQueue *q);

/* Any thread.  e must stay valid until fn has run on it. */
void completion_queue_push(CompletionQueue *q, CompletionEntry *e);

#endif /* DATAPLANE_BLOCK_COMPLETION_QUEUE_H */
