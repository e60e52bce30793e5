/*
 * RFifoLock: a recursive lock that grants waiters in FIFO (ticket) order.
 *
 * Why FIFO: an event loop thread that releases its context and takes it
 * again at once (the IOThread loop) would otherwise win the lock again and
 * again against a thread that waits for it.  With tickets, a thread that
 * queued first is served first.
 *
 * Why a contention callback: the owner of an AioContext's lock may sleep in
 * aio_poll() with the lock held, waiting for an event that may not come.  A
 * waiter calls the callback (aio_notify() for a context) before each time
 * it sleeps, so the owner wakes up, releases the lock and lets it in.  The
 * callback runs only when the lock is contended: it is never called by a
 * thread that gets the lock at once, nor by a thread that nests.
 *
 * Thread-safety: every function may be called from any thread, except that
 * rfifolock_unlock() must be called by the owner and rfifolock_destroy()
 * only on an unlocked lock that no thread waits for.
 */
#ifndef DATAPLANE_RFIFOLOCK_H
#define DATAPLANE_RFIFOLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef void RFifoLockCB(void *opaque);

typedef struct RFifoLock {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* broadcast when `head` advances and someone waits */
    /* Protected by `lock`. */
    unsigned head;   /* ticket being served */
    unsigned tail;   /* next ticket to hand out */
    RFifoLockCB *cb; /* contention callback, may be NULL */
    void *cb_opaque;
    /*
     * Written under `lock` when ownership changes, and by the owner alone
     * (atomically, without `lock`) while it nests; so a thread may read
     * them without `lock` to learn whether it is the owner.
     */
    unsigned nesting; /* owner's depth; 0 when free */
    pthread_t owner;  /* valid while nesting > 0 */
} RFifoLock;

/* cb (may be NULL) runs in a waiting thread, without the lock's internal
 * mutex held, each time that thread is about to sleep for the lock. */
void rfifolock_init(RFifoLock *r, RFifoLockCB *cb, void *opaque);
void rfifolock_destroy(RFifoLock *r);

/* Takes the lock, or nests one level deeper if the caller owns it. */
void rfifolock_lock(RFifoLock *r);
/* Leaves one level; the last one hands the lock to the next ticket. */
void rfifolock_unlock(RFifoLock *r);

/* The calling thread's nesting depth: 0 if it does not own the lock. */
unsigned rfifolock_depth_self(RFifoLock *r);

DP_API_END

#endif /* DATAPLANE_RFIFOLOCK_H */
