/*
 * RFifoLock: recursive, FIFO-fair, with a contention callback.
 *
 * A ticket lock built on a mutex and a condition variable: a thread that
 * does not own the lock takes ticket `tail++` and sleeps until `head`
 * reaches it.  The owner's last unlock advances `head` and wakes every
 * sleeper (broadcast: the next ticket holder is among them, and the others
 * go back to sleep after kicking the new owner).
 */
#include <assert.h>

#include "dataplane/rfifolock.h"

void rfifolock_init(RFifoLock *r, RFifoLockCB *cb, void *opaque)
{
    dp_mutex_init(&r->lock);
    dp_cond_init(&r->cond);
    r->head = 0;
    r->tail = 0;
    r->nesting = 0;
    r->cb = cb;
    r->cb_opaque = opaque;
}

void rfifolock_destroy(RFifoLock *r)
{
    assert(r->nesting == 0 && r->head == r->tail);
    dp_cond_destroy(&r->cond);
    dp_mutex_destroy(&r->lock);
}

static bool owned_by_self_locked(RFifoLock *r)
{
    return r->nesting > 0 && pthread_equal(r->owner, pthread_self());
}

void rfifolock_lock(RFifoLock *r)
{
    unsigned ticket;

    dp_mutex_lock(&r->lock);
    if (owned_by_self_locked(r)) {
        r->nesting++;
        dp_mutex_unlock(&r->lock);
        return;
    }
    ticket = r->tail++;
    while (ticket != r->head) {
        if (r->cb) {
            /*
             * Kick the owner (and, after a hand-over, the new owner) out of
             * whatever it sleeps in.  The mutex is dropped so that the
             * callback may take locks of its own; `head` is checked again
             * before sleeping, so an unlock that happens meanwhile is not
             * missed.
             */
            dp_mutex_unlock(&r->lock);
            r->cb(r->cb_opaque);
            dp_mutex_lock(&r->lock);
            if (ticket == r->head) {
                break;
            }
        }
        dp_cond_wait(&r->cond, &r->lock);
    }
    assert(r->nesting == 0);
    r->owner = pthread_self();
    r->nesting = 1;
    dp_mutex_unlock(&r->lock);
}

void rfifolock_unlock(RFifoLock *r)
{
    dp_mutex_lock(&r->lock);
    assert(owned_by_self_locked(r));
    if (--r->nesting == 0) {
        r->head++;
        dp_cond_broadcast(&r->cond);
    }
    dp_mutex_unlock(&r->lock);
}

unsigned rfifolock_depth_self(RFifoLock *r)
{
    unsigned depth;

    dp_mutex_lock(&r->lock);
    depth = owned_by_self_locked(r) ? r->nesting : 0;
    dp_mutex_unlock(&r->lock);
    return depth;
}
