/*
 * RFifoLock: recursive, FIFO-fair, with a contention callback.
 *
 * A ticket lock built on a mutex and a condition variable: a thread that
 * does not own the lock takes ticket `tail++` and sleeps until `head`
 * reaches it.  The owner's last unlock advances `head` and wakes every
 * sleeper (broadcast: the next ticket holder is among them, and the others
 * go back to sleep after kicking the new owner).
 */

#include <glib.h>

#include "dataplane/rfifolock.h"
#include "util/atomic.h"
#include "util/thread.h"

/* The struct holds plain pthread types: its header is installed, and
 * util/thread.h is not.  Failures are programming errors, as there. */
#define CHECK(call) dp_pthread_check(call, #call)

void rfifolock_init(RFifoLock *r, RFifoLockCB *cb, void *opaque)
{
    CHECK(pthread_mutex_init(&r->lock, NULL));
    CHECK(pthread_cond_init(&r->cond, NULL));
    r->head = 0;
    r->tail = 0;
    r->nesting = 0;
    r->cb = cb;
    r->cb_opaque = opaque;
}

void rfifolock_destroy(RFifoLock *r)
{
    g_assert(dp_atomic_load_relaxed(&r->nesting) == 0 && r->head == r->tail);
    CHECK(pthread_cond_destroy(&r->cond));
    CHECK(pthread_mutex_destroy(&r->lock));
}

/*
 * Whether the caller owns r.  Safe without r->lock: only the owner changes
 * `nesting` while it is non-zero, and a new owner stores `owner` before it
 * publishes `nesting` (release), so a thread that sees a non-zero nesting
 * published by someone else also sees that someone's id, never its own.
 */
static unsigned depth_self(RFifoLock *r)
{
    unsigned nesting = dp_atomic_load_acquire(&r->nesting);
    pthread_t owner;

    if (nesting == 0) {
        return 0;
    }
    owner = dp_atomic_load_relaxed(&r->owner);
    return pthread_equal(owner, pthread_self()) ? nesting : 0;
}

void rfifolock_lock(RFifoLock *r)
{
    unsigned depth = depth_self(r);
    unsigned ticket;

    if (depth > 0) {
        /* Nesting: nobody else writes nesting while we own the lock. */
        dp_atomic_store_relaxed(&r->nesting, depth + 1);
        return;
    }
    CHECK(pthread_mutex_lock(&r->lock));
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
            CHECK(pthread_mutex_unlock(&r->lock));
            r->cb(r->cb_opaque);
            CHECK(pthread_mutex_lock(&r->lock));
            if (ticket == r->head) {
                break;
            }
        }
        CHECK(pthread_cond_wait(&r->cond, &r->lock));
    }
    g_assert(dp_atomic_load_relaxed(&r->nesting) == 0);
    dp_atomic_store_relaxed(&r->owner, pthread_self());
    /* Pairs with the acquire load in depth_self(). */
    dp_atomic_store_release(&r->nesting, 1);
    CHECK(pthread_mutex_unlock(&r->lock));
}

void rfifolock_unlock(RFifoLock *r)
{
    unsigned depth = depth_self(r);

    g_assert(depth > 0);
    if (depth > 1) {
        dp_atomic_store_relaxed(&r->nesting, depth - 1);
        return;
    }
    CHECK(pthread_mutex_lock(&r->lock));
    dp_atomic_store_release(&r->nesting, 0);
    r->head++;
    if (r->head != r->tail) {
        CHECK(pthread_cond_broadcast(
            &r->cond)); /* someone holds the next ticket */
    }
    CHECK(pthread_mutex_unlock(&r->lock));
}

unsigned rfifolock_depth_self(RFifoLock *r)
{
    return depth_self(r);
}
